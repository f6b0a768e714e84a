#!/usr/bin/perl

# Whose job is it?  vodlms-helper against a private Redis and PostgreSQL
# with the real ffmpeg:
#
#   1. every update of a job's row is tied to the job's source: a job whose
#      row was re-queued for a newer upload (or whose upload was undone) is
#      dropped, acknowledged, and never touches the row -- not at its start
#      (ffprobe never runs), not when it fails, not when it finishes last
#      (its version is removed, the row stays on the newer upload's);
#   2. the old-version sweep never removes a prefix in use: spelt with or
#      without its trailing '/', used by another video, or taken back into
#      use (the trigger of migration 0008 then refuses a removed prefix);
#   3. ffmpeg encodes the stream ffprobe looked at, never cover art
#      (an attached picture placed before the real video stream).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Path qw(make_path);
use POSIX qw(:sys_wait_h);
use Test::More;
use Time::HiRes qw(sleep time);

use VodlmsTest;
use VodlmsHelperTest qw(slurp write_file sq ffmpeg_make make_clip insert_video xadd_job spawn wait_exit run_idle video_row write_helper_conf);

my $T0 = time;
# the helper, the tools, a temporary directory, Redis and PostgreSQL (t/lib)
my %env = helper_env(name => 'jobs', ports => 28000, tools => [qw(ffmpeg ffprobe)]);
my ($bin, $tmp, $src, $origin, $redis, $pg) = @env{qw(bin tmp src origin redis pg)};
my ($FFMPEG, $FFPROBE) = @env{qw(ffmpeg ffprobe)};

my $STREAM = 'vodlms:transcode';
my $GROUP = 'vodlms-helpers';
my $VERSION = qr/\d{8}T\d{6}Z-[0-9a-f]{8}/;

# claim_idle is long: a helper held at a gate keeps its job
write_helper_conf("$tmp/helper.conf", redis => $redis, conninfo => $pg->conninfo, origin => $origin,
                  settings => [ ladder => '240p:300k', claim_idle => 120, max_attempts => 1,
                                old_version_grace => 3600 ]);

#---------------------------------------------------------------------------
# helpers
#---------------------------------------------------------------------------

sub make_source {
    my ($name, $video, $freq) = @_;
    return make_clip("$src/$name", video => $video, freq => $freq, size => '426x240', duration => 4);
}

my $first = make_source('first.mp4', 'testsrc2', 440);
my $second = make_source('second.mp4', 'smptebars', 880);

sub add_row {
    my ($id, %o) = @_;
    insert_video($pg, $id, status => $o{status}, prefix => $o{prefix}, source => $o{source});
}

# what the module's upload does for a new file: re-queue the row, then XADD
sub upload {
    my ($id, $source) = @_;
    $pg->psql("UPDATE vodlms.videos SET status = 'queued', progress_percent = 0,"
              . " source_location = " . sq($source) . ", error = NULL WHERE id = " . sq($id));
    add_job($id, $source);
}

sub add_job {
    my ($id, $source) = @_;
    xadd_job($redis, $id, $source);
}

# the whole row, as text: "untouched" means this does not change
sub row_text {
    my $id = shift;
    return $pg->psql("SELECT v::text FROM vodlms.videos v WHERE id = " . sq($id));
}

sub video { video_row($pg, $_[0], qw(status prefix error source)) }

sub pending_count {
    my $r = $redis->cmd('XPENDING', $STREAM, $GROUP);
    return ref $r eq 'ARRAY' ? $r->[0] : -1;
}

sub start_helper {
    my ($log, $env, @args) = @_;
    return spawn(log => $log, env => $env, cmd => [ $bin, '--config', "$tmp/helper.conf", @args ]);
}

sub wait_helper { wait_exit(@_) }

# runs a helper until the queue is idle; its log
my $runs = 0;
sub run_helper {
    my ($name, @args) = @_;
    return run_idle(name => $name, bin => $bin, config => "$tmp/helper.conf",
                    log => "$tmp/$name.log", args => \@args, timeout => 90);
}

sub versions_of {
    my $id = shift;
    opendir my $d, "$origin/hls/$id" or return ();
    return sort grep { /^$VERSION$/ } readdir $d;
}

#---------------------------------------------------------------------------
# 1. an older job that finishes last
#---------------------------------------------------------------------------

# ffmpeg behind a gate: the poster (the last ffmpeg of a job, after the
# ladder is encoded and before anything is published) waits for $GATE.go
my $gated = write_file("$tmp/ffmpeg-gated", <<"SH", 0755);
#!/bin/sh
case " \$* " in
*" -update "*)
    : > "\$GATE.waiting"
    while [ ! -e "\$GATE.go" ]; do sleep 0.1; done ;;
esac
exec $FFMPEG "\$@"
SH

{
    my $gate = "$tmp/gate-race";
    add_row('race', source => $first);
    add_job('race', $first);
    my $slow = start_helper("$tmp/race-old.log", { GATE => $gate }, '--once',
                            '--ffmpeg', $gated, '--consumer', 'slow');
    my $deadline = time + 60;
    sleep 0.1 until -e "$gate.waiting" || time > $deadline;
    ok(-e "$gate.waiting", 'race: the job for the first upload is encoded and held before publishing')
        or diag(slurp("$tmp/race-old.log"));

    # the lecturer uploads again meanwhile; another helper does that job at once
    upload('race', $second);
    run_helper('race-new', '--consumer', 'quick');
    my $new = video('race');
    is($new->{status}, 'ready', 'race: the newer upload is ready') or diag($new->{error});
    like($new->{prefix}, qr{^hls/race/$VERSION/$}, "race: at its version ($new->{prefix})");
    unlike(slurp("$tmp/race-new.log") // '', qr/removing \S*\.tmp-race\./,
           'race: the newer job leaves the running older job\'s work directory alone');

    # now the older job goes on
    write_file("$gate.go", '');
    is(wait_helper($slow, 60), 0, 'race: the older job\'s helper exits 0');
    my $log = slurp("$tmp/race-old.log") // '';
    my $v = video('race');
    is($v->{status}, 'ready', 'race: still ready');
    is($v->{prefix}, $new->{prefix}, 'race: the row still points at the newer upload\'s version')
        or diag($log);
    is($v->{source}, $second, 'race: and names the newer source');
    like($log, qr/\[info\][^\n]*job for video race superseded by a newer upload: dropped/,
         'race: the older job is logged as superseded, at info');
    unlike($log, qr/poster: ffmpeg failed/, 'race: the older job could finish its encode');
    is_deeply([versions_of('race')], [substr($new->{prefix}, length 'hls/race/', 25)],
              'race: the older job\'s version, which no row ever used, is removed')
        or diag(join ' ', versions_of('race'));
    is($pg->psql("SELECT count(*) FROM vodlms.videos_superseded WHERE video_id = 'race'"), 0,
       'race: the newer version was never superseded (nothing queued for removal)');
    is(pending_count(), 0, 'race: both jobs acknowledged');
}

# the same, with the newer upload landing between the helper's last look at
# the row and its switch: the test holds the row locked while the job
# publishes, so the switch waits, then re-queues the row and lets go
{
    my $gate = "$tmp/gate-lock";
    add_row('lock', source => $first);
    add_job('lock', $first);
    my $pid = start_helper("$tmp/lock.log", { GATE => $gate }, '--once',
                           '--ffmpeg', $gated);
    my $deadline = time + 60;
    sleep 0.1 until -e "$gate.waiting" || time > $deadline;
    ok(-e "$gate.waiting", 'switch race: the job is encoded') or diag(slurp("$tmp/lock.log"));
    open my $tx, '|-', "psql -X -qAt -h 127.0.0.1 -p ${\ $pg->port} -U postgres -d vodlms"
        . " -v ON_ERROR_STOP=1 >'$tmp/lock-psql.out' 2>&1" or die "psql: $!";
    select((select($tx), $| = 1)[0]);
    print $tx "BEGIN;\nSELECT id FROM vodlms.videos WHERE id = 'lock' FOR UPDATE;\n";
    sleep 0.1 until (slurp("$tmp/lock-psql.out") // '') =~ /^lock$/m || time > $deadline;
    write_file("$gate.go", '');
    my $waiting = 0;
    until ($waiting || time > $deadline) {
        $waiting = $pg->psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                             . " AND query LIKE 'UPDATE \"vodlms\".videos SET status = ''ready''%'");
        sleep 0.1 unless $waiting;
    }
    ok($waiting, 'switch race: the switch waits for the row');
    my @published = versions_of('lock');
    is(scalar @published, 1, 'switch race: its version is published (' . "@published" . ')');
    print $tx "UPDATE vodlms.videos SET status = 'queued', progress_percent = 0, error = NULL,"
            . " source_location = '$second' WHERE id = 'lock';\nCOMMIT;\n";
    close $tx;
    is(wait_helper($pid, 60), 0, 'switch race: helper exits 0');
    my $log = slurp("$tmp/lock.log") // '';
    my $v = video('lock');
    is("$v->{status}|$v->{prefix}|$v->{source}", "queued||$second",
       'switch race: the row stays queued for the newer upload, pointing at no version');
    is_deeply([versions_of('lock')], [], 'switch race: the version no row ever used is removed');
    like($log, qr/job for video lock superseded by a newer upload: dropped/, 'switch race: logged');
    like($log, qr/removed the version \Q$published[0]\E, which no row ever used/,
         'switch race: the removal logged');
    is(pending_count(), 0, 'switch race: acknowledged');
}

#---------------------------------------------------------------------------
# 2. a job whose row no longer names its source is dropped at its start
#---------------------------------------------------------------------------

my $probe_log = "$tmp/ffprobe-calls";
my $counted = write_file("$tmp/ffprobe-counted", <<"SH", 0755);
#!/bin/sh
echo "\$*" >> $probe_log
exec $FFPROBE "\$@"
SH

{
    # re-queued for the second upload: the job of the first is stale
    add_row('stale', status => 'queued', source => $second);
    add_job('stale', $first);
    # an upload undone: the module put the previous (ready) row back and
    # deleted the new file, whose job was already queued
    add_row('undone', status => 'ready', source => $second,
            prefix => 'hls/undone/20261101T000000Z-0a0b0c0d/');
    add_job('undone', "$src/deleted-by-the-undo.mp4");
    my %before = map { $_ => row_text($_) } qw(stale undone);
    my $log = run_helper('stale', '--ffprobe', $counted);
    is(row_text('stale'), $before{stale}, 'stale job: the row is untouched (status, source, updated_at)');
    is(row_text('undone'), $before{undone},
       'undone upload: the row restored to ready stays ready (not failed for the missing file)');
    ok(!-e $probe_log, 'stale job: ffprobe never ran') or diag(slurp($probe_log));
    like($log, qr/job for video stale superseded by a newer upload: dropped/, 'stale job: logged');
    like($log, qr/job for video undone superseded by a newer upload: dropped/, 'undone upload: logged');
    ok(!-e "$origin/hls/stale" && !-e "$origin/hls/undone", 'nothing published for either');
    is(pending_count(), 0, 'both acknowledged');
}

#---------------------------------------------------------------------------
# 3. the sweep: prefixes still in use stay
#---------------------------------------------------------------------------

my @V = map { sprintf '2026110%dT000000Z-0000000%d', $_, $_ } 1 .. 6;

sub make_version {
    my ($id, $v) = @_;
    make_path("$origin/hls/$id/$v/240p");
    write_file("$origin/hls/$id/$v/master.m3u8", "#EXTM3U\n");
    write_file("$origin/hls/$id/$v/240p/seg_00000.ts", "ts");
}

sub superseded_state {
    my ($id, $prefix) = @_;
    return $pg->psql("SELECT coalesce(max(CASE WHEN removed_at IS NULL THEN 'pending'"
                     . " ELSE 'removed' END), 'none') FROM vodlms.videos_superseded"
                     . " WHERE video_id = " . sq($id) . " AND storage_prefix = " . sq($prefix));
}

sub backdate {
    $pg->psql("UPDATE vodlms.videos_superseded SET superseded_at = now() - interval '1 day'"
              . " WHERE removed_at IS NULL");
}

# (a) a rollback spelt without the trailing '/'
make_version('slash', $_) for @V[0, 1];
add_row('slash', status => 'ready', prefix => "hls/slash/$V[0]/", source => $first);
$pg->psql("UPDATE vodlms.videos SET storage_prefix = 'hls/slash/$V[1]/' WHERE id = 'slash'");
is(superseded_state('slash', "hls/slash/$V[0]/"), 'pending', 'slash: the re-encode supersedes the first version');
$pg->psql("UPDATE vodlms.videos SET storage_prefix = 'hls/slash/$V[0]' WHERE id = 'slash'");
is(superseded_state('slash', "hls/slash/$V[0]/"), 'none',
   'slash: a rollback to it without the trailing / cancels its removal (trigger)');
# and a row recorded before that trigger (migration 0008) existed
make_version('slash2', $_) for @V[0, 1];
add_row('slash2', status => 'ready', prefix => "hls/slash2/$V[0]", source => $first);
$pg->psql("INSERT INTO vodlms.videos_superseded (video_id, storage_prefix) VALUES"
          . " ('slash2', 'hls/slash2/$V[0]/')");

# (b) another video's row on the same prefix
make_version('share', $_) for @V[2, 3];
add_row('share', status => 'ready', prefix => "hls/share/$V[2]/", source => $first);
add_row('share-b', status => 'ready', prefix => "hls/share/$V[2]/", source => $first);
$pg->psql("UPDATE vodlms.videos SET storage_prefix = 'hls/share/$V[3]/' WHERE id = 'share'");
is(superseded_state('share', "hls/share/$V[2]/"), 'pending', 'share: its first version is superseded for video share');

# a control: a truly old version goes
make_version('gone', $_) for @V[4, 5];
add_row('gone', status => 'ready', prefix => "hls/gone/$V[4]/", source => $first);
$pg->psql("UPDATE vodlms.videos SET storage_prefix = 'hls/gone/$V[5]/' WHERE id = 'gone'");

backdate();
my $log = run_helper('sweep');
ok(-f "$origin/hls/slash/$V[0]/master.m3u8", 'slash: the version the row uses (no trailing /) is kept');
ok(-f "$origin/hls/slash2/$V[0]/master.m3u8",
   'slash: a pending row for it with the trailing / does not remove it either');
is(superseded_state('slash2', "hls/slash2/$V[0]/"), 'pending', 'slash: that row is left pending');
ok(-f "$origin/hls/share/$V[2]/master.m3u8", 'share: the prefix another video uses is kept');
is(superseded_state('share', "hls/share/$V[2]/"), 'pending', 'share: and left pending');
ok(!-e "$origin/hls/gone/$V[4]", 'the sweep still removes an old version nobody uses')
    or diag($log);
is(superseded_state('gone', "hls/gone/$V[4]/"), 'removed', 'and records it as removed');
ok(-f "$origin/hls/gone/$V[5]/master.m3u8", 'the current version stays');
ok(!grep({ /^\.trash-/ } do { opendir my $d, "$origin/hls/gone"; readdir $d }),
   'no trash directory is left behind');

# (c) a prefix already removed cannot be switched back to
{
    my $out = eval { $pg->psql("UPDATE vodlms.videos SET storage_prefix = 'hls/gone/$V[4]' WHERE id = 'gone'"); 1 }
              ? '' : $@;
    like($out, qr/was removed as an old version/, 'a rollback to a removed version is refused');
    is(video('gone')->{prefix}, "hls/gone/$V[5]/", 'the row keeps its current version');
}

#---------------------------------------------------------------------------
# 4. cover art before the real video stream
#---------------------------------------------------------------------------

sub mp4_boxes {
    my $d = shift;
    my ($o, @b) = (0);
    while ($o + 8 <= length $d) {
        my ($size, $type) = unpack 'Na4', substr($d, $o, 8);
        die "mp4: a box of $size bytes\n" if $size < 8 || $o + $size > length $d;
        push @b, [$type, substr($d, $o, $size)];
        $o += $size;
    }
    return @b;
}

sub udta_first {
    my @top = mp4_boxes(shift);
    for my $moov (grep { $_->[0] eq 'moov' } @top) {
        my @kids = mp4_boxes(substr($moov->[1], 8));
        my @udta = grep { $_->[0] eq 'udta' } @kids;
        my @out;
        for my $k (grep { $_->[0] ne 'udta' } @kids) {
            push @out, splice(@udta) if $k->[0] eq 'trak';
            push @out, $k;
        }
        $moov->[1] = substr($moov->[1], 0, 8) . join '', map { $_->[1] } @out, @udta;
    }
    return join '', map { $_->[1] } @top;
}

{
    my $cover = "$src/cover.png";
    ffmpeg_make($cover, '-f', 'lavfi', '-i', 'color=c=red:size=1280x720', '-frames:v', '1');
    # the mov muxer writes cover art as metadata (moov/udta) after the
    # tracks, and the demuxer adds its stream when it meets that box: moved
    # before the first trak, the picture becomes stream 0 (sizes unchanged,
    # so the sample offsets still hold)
    my $made = "$src/with-cover-last.mp4";
    ffmpeg_make($made, '-i', $cover,
                '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=3',
                '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000:duration=3',
                '-map', '0:v', '-map', '1:v', '-map', '2:a',
                '-c:v:0', 'png', '-disposition:v:0', 'attached_pic',
                '-c:v:1', 'libx264', '-preset', 'ultrafast', '-disposition:v:1', 'default',
                '-c:a', 'aac', '-t', '3');
    my $clip = "$src/with-cover.mp4";
    write_file($clip, udta_first(slurp($made)));
    my $streams = `ffprobe -v error -show_entries stream=index,codec_type,width,height:stream_disposition=attached_pic -of csv=p=0 '$clip'`;
    like($streams, qr/^0,video,1280,720,1\n1,video,320,240,0\n/s,
         'the source: a 1280x720 cover picture first, then the 320x240 video') or diag($streams);
    add_row('cover', source => $clip);
    add_job('cover', $clip);
    my $log = run_helper('cover');
    my $v = video('cover');
    is($v->{status}, 'ready', 'cover art: ready') or diag($v->{error}, $log);
    my $pl = slurp("$origin/$v->{prefix}240p/index.m3u8") // '';
    my $total = 0;
    $total += $_ for $pl =~ /^#EXTINF:([\d.]+),/mg;
    ok(abs($total - 3) < 0.5, "cover art: the rung lasts as long as the real video (3 s, got $total s)")
        or diag($pl);
    my $frames = `ffprobe -v error -select_streams v:0 -count_frames -show_entries stream=nb_read_frames,width,height -of csv=p=0 '$origin/$v->{prefix}240p/seg_00000.ts'`;
    ($frames) = $frames =~ /^(\d+,\d+,\d+)$/m;
    $frames //= '';
    like($frames, qr/^320,240,(\d+)$/, "cover art: 320x240 output ($frames)");
    my ($n) = $frames =~ /,(\d+)$/;
    ok(($n // 0) >= 40, 'cover art: the first segment holds the real video\'s frames (2 s at 25 fps),'
       . ' not one picture');
    ok(-s "$origin/$v->{prefix}poster.jpg", 'cover art: a poster');
    my $poster = `ffprobe -v error -show_entries stream=width,height -of csv=p=0 '$origin/$v->{prefix}poster.jpg'`;
    chomp $poster;
    is($poster, '320,240', 'cover art: the poster is a frame of the video, not the cover');
}

diag(sprintf 't/095-helper-jobs.t: %.1f s', time - $T0);
done_testing();
