#!/usr/bin/perl

# vodlms-helper end to end: a private Redis and PostgreSQL, sources made
# with ffmpeg, jobs on the stream, the real helper binary, and checks of
# what it published (playlists, keyframe alignment, segment durations) and
# wrote to the videos row.  The binary is $VODLMS_BUILD_DIR/helper/
# vodlms-helper (default build/helper/); it is built with make if missing,
# and a missing binary is a failure, never a skip.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Path qw(remove_tree);
use POSIX qw(:sys_wait_h);
use Test::More;
use Time::HiRes qw(sleep time);

use VodlmsTest;
use VodlmsHelperTest qw(slurp make_clip insert_video xadd_job video_row write_helper_conf);

my $T0 = time;
# the helper, the tools, a temporary directory, Redis and PostgreSQL (t/lib);
# HELPER_TEST_KEEP=1 keeps the sources, logs and origin for a look afterwards
my %env = helper_env(name => 'helper', ports => 25000, tools => [qw(ffmpeg ffprobe)]);
my ($bin, $tmp, $src, $origin, $redis, $pg) = @env{qw(bin tmp src origin redis pg)};

# every transition to ready, to prove each job was done exactly once
$pg->psql(<<'SQL');
CREATE TABLE helper_test_ready (video_id text, at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION helper_test_ready_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO helper_test_ready (video_id) VALUES (NEW.id); RETURN NEW; END $$;
CREATE TRIGGER helper_test_ready AFTER UPDATE ON vodlms.videos FOR EACH ROW
  WHEN (NEW.status = 'ready') EXECUTE FUNCTION helper_test_ready_log();
SQL

my $SEG = 2;
my $STREAM = 'vodlms:transcode';
my $GROUP = 'vodlms-helpers';

write_helper_conf("$tmp/helper.conf", redis => $redis, conninfo => $pg->conninfo, origin => $origin,
                  settings => [ segment_duration => $SEG,
                                ladder => '240p:300k, 360p:500k, 480p:800k, 720p:1200k, 1080p:2000k',
                                claim_idle => 2, retry_backoff => 0.5 ]);

#---------------------------------------------------------------------------
# helpers
#---------------------------------------------------------------------------

sub make_source {
    my ($name, %o) = @_;
    return make_clip("$src/$name", size => $o{size} // '1280x720', duration => $o{duration} // 5,
                     rate => $o{rate}, no_audio => $o{no_audio}, extra => [ '-g', '250' ]);
}

sub add_video {
    my ($id, $source) = @_;
    # as the module's upload does: the row names the job's source
    insert_video($pg, $id, source => $source);
    return xadd_job($redis, $id, $source, enqueued_at => time);
}

sub video { video_row($pg, $_[0], qw(status progress duration prefix renditions error)) }

my %Running;

sub start_helper {
    my ($log, @args) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>>', $log or die $!;
        open STDERR, '>&', \*STDOUT or die $!;
        exec $bin, '--config', "$tmp/helper.conf", @args or POSIX::_exit(127);
    }
    $Running{$pid} = 1;
    return $pid;
}

# waits for a helper we started; its exit status, or undef at the deadline
sub wait_helper {
    my ($pid, $timeout) = @_;
    my $deadline = time + $timeout;
    while (time < $deadline) {
        my $r = waitpid($pid, WNOHANG);
        if ($r == $pid) {
            delete $Running{$pid};
            return $? >> 8;
        }
        sleep 0.05;
    }
    return undef;
}

sub stop_helper {
    my $pid = shift;
    return unless $Running{$pid};
    kill 'TERM', $pid;
    my $rc = wait_helper($pid, 20);
    unless (defined $rc) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
        delete $Running{$pid};
    }
    return $rc;
}

END { kill 'KILL', $_ for keys %Running; waitpid($_, 0) for keys %Running; }

sub wait_for {
    my ($what, $timeout, $cond) = @_;
    my $deadline = time + $timeout;
    while (time < $deadline) {
        my $r = $cond->();
        return $r if $r;
        sleep 0.05;
    }
    diag("timed out after ${timeout}s waiting for $what");
    return undef;
}

sub pending_count {
    my $r = $redis->cmd('XPENDING', $STREAM, $GROUP);
    return ref $r eq 'ARRAY' ? $r->[0] : -1;
}

sub run_capture {
    my @cmd = @_;
    my $pid = open my $fh, '-|' // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>', '/dev/null';
        exec @cmd or POSIX::_exit(127);
    }
    local $/;
    my $out = <$fh>;
    close $fh;
    return ($? >> 8, $out // '');
}

# every check of a published ladder; $heights: the rungs expected
sub check_ladder {
    my ($id, $heights, %o) = @_;
    my $v = video($id);
    # every encode has its own version (t/094-helper-versions.t)
    my $dir = "$origin/$v->{prefix}";

    is($v->{status}, 'ready', "$id: status ready") or diag("error: $v->{error}");
    like($v->{prefix}, qr{^hls/$id/\d{8}T\d{6}Z-[0-9a-f]{8}/$}, "$id: storage_prefix");
    is($v->{progress}, '100.00', "$id: progress 100");
    is($v->{error}, '', "$id: no error");
    ok(abs(($v->{duration} || 0) - $o{duration}) < 0.5,
       "$id: duration_seconds $v->{duration} ~ $o{duration}");

    my $rend = eval { JSON::PP::decode_json($v->{renditions}) } || [];
    # with audio, the audio-only rendition last (audio_only = on, t/099-helper-preview.t)
    my @arend = grep { $_->{name} eq 'audio' } @$rend;
    $rend = [ grep { $_->{name} ne 'audio' } @$rend ];
    is_deeply([map { $_->{height} } @$rend], $heights, "$id: renditions heights");
    ok(!grep({ !($_->{width} && $_->{bandwidth} && $_->{playlist} && $_->{codecs}) } @$rend),
       "$id: every rendition has width, bandwidth, playlist, codecs");
    is(scalar(grep { $_->{codecs} eq 'mp4a.40.2' && $_->{playlist} eq 'audio/index.m3u8' } @arend),
       $o{audio} ? 1 : 0, "$id: " . ($o{audio} ? 'an' : 'no') . ' audio-only rendition');

    my $master = slurp("$dir/master.m3u8") // '';
    my @inf = $master =~ /^#EXT-X-STREAM-INF:(.*)$/mg;
    my @ainf = grep { /CODECS="mp4a\.40\.2"$/ && !/RESOLUTION=/ } @inf;
    @inf = grep { /RESOLUTION=/ } @inf;
    is(scalar @ainf, $o{audio} ? 1 : 0, "$id: master lists " . ($o{audio} ? 'an' : 'no')
       . ' audio-only variant');
    is(scalar @inf, scalar @$heights, "$id: master lists " . scalar(@$heights) . " video variants");
    for my $attr (qw(BANDWIDTH AVERAGE-BANDWIDTH RESOLUTION CODECS FRAME-RATE)) {
        is(scalar(grep { /(^|,)\Q$attr\E=/ } @inf), scalar @inf,
           "$id: every variant has $attr");
    }
    my @codecs = map { /CODECS="([^"]+)"/ ? $1 : '' } @inf;
    if ($o{audio}) {
        is(scalar(grep { /^avc1\.[0-9a-f]{6},mp4a\.40\.2$/ } @codecs), scalar @inf,
           "$id: CODECS avc1 + mp4a") or diag("@codecs");
    } else {
        is(scalar(grep { /^avc1\.[0-9a-f]{6}$/ } @codecs), scalar @inf,
           "$id: CODECS avc1 only (no audio)") or diag("@codecs");
    }
    ok(!-d "$dir/1080p", "$id: no 1080p rung");
    ok(-s "$dir/poster.jpg", "$id: poster.jpg");
    like(slurp("$dir/thumbs/storyboard.vtt") // '', qr/\AWEBVTT\n\n00:00:00\.000 --> /,
         "$id: thumbs/storyboard.vtt");

    my ($rc, $out) = run_capture('ffprobe', '-v', 'error', '-of', 'json',
        '-show_entries', 'stream=codec_type,height', "$dir/master.m3u8");
    is($rc, 0, "$id: ffprobe reads master.m3u8");
    my %seen = map { $_ => 1 } $out =~ /"height": (\d+)/g;
    is_deeply([sort { $a <=> $b } keys %seen], $heights, "$id: ffprobe sees every rung");

    my (%keys, $bad_seg);
    for my $h (@$heights) {
        my $pl = "$dir/${h}p/index.m3u8";
        my $text = slurp($pl) // '';
        ($rc) = run_capture('ffprobe', '-v', 'error', '-show_format', $pl);
        is($rc, 0, "$id: ffprobe reads ${h}p/index.m3u8");
        like($text, qr/#EXT-X-PLAYLIST-TYPE:VOD/, "$id ${h}p: VOD playlist");
        like($text, qr/^seg_\d{5}\.ts$/m, "$id ${h}p: seg_NNNNN.ts names");
        for my $d ($text =~ /^#EXTINF:([\d.]+)/mg) {
            $bad_seg = "${h}p: $d s" if $d > $SEG + 0.1;
        }
        ($rc, my $kf) = run_capture('ffprobe', '-v', 'error', '-select_streams', 'v:0',
            '-skip_frame', 'nokey', '-show_entries', 'frame=pts_time', '-of', 'csv=p=0',
            $pl);
        $keys{$h} = join ',', map { sprintf '%.2f', $_ } grep { /\d/ } split /[\s,]+/, $kf;
    }
    ok(!$bad_seg, "$id: every segment <= ${SEG}s (+0.1)") or diag($bad_seg);
    my $first = $keys{$heights->[0]};
    ok(length($first) && (split /,/, $first) >= int($o{duration} / $SEG),
       "$id: a keyframe every segment ($first)");
    is(scalar(grep { $keys{$_} eq $first } @$heights), scalar @$heights,
       "$id: keyframes aligned across variants")
        or diag(join "\n", map { "$_: $keys{$_}" } @$heights);
    ok(!glob("$origin/hls/.tmp-*"), "$id: no work directories left");
}

require JSON::PP;

#---------------------------------------------------------------------------
# flags and configuration
#---------------------------------------------------------------------------

{
    my ($rc, $out) = run_capture($bin, '--version');
    is($rc, 0, '--version exits 0');
    # the project's one version string, where the module takes it from too
    open my $vh, '<', "$FindBin::Bin/../ngx_http_vodlms_module/ngx_http_vodlms_version.h" or die $!;
    my ($version) = map { /^#define NGX_HTTP_VODLMS_VERSION\s+"([^"]+)"/ ? $1 : () } <$vh>;
    ok($version, "the version header says $version");
    is($out, "vodlms-helper $version\n", '--version prints the version');
    ($rc, $out) = run_capture($bin, '--help');
    is($rc, 0, '--help exits 0');
    like($out, qr/^  $_ /m, "--help lists $_") for qw(origin_dir segment_duration claim_idle shutdown);
    ($rc, $out) = run_capture($bin, '--config', "$tmp/helper.conf", '--check-config',
                              '--segment-duration', '4', '--consumer', 'c1');
    is($rc, 0, '--check-config accepts the test configuration');
    like($out, qr/^segment_duration = 4$/m, 'a flag overrides the file');
    like($out, qr/^consumer = c1$/m, '--consumer sets the consumer name');
    ($rc, $out) = run_capture($bin, '--check-config', '--origin-dir', '/x');
    like($out, qr/^consumer = .+-\d+$/m, 'the default consumer is hostname-pid');

    open my $bad, '>', "$tmp/bad.conf" or die $!;
    print $bad "segment_duration = 11\n";
    close $bad;
    my $err = `$bin --config $tmp/bad.conf 2>&1`;
    isnt($? >> 8, 0, 'segment_duration 11 is refused');
    like($err, qr/bad\.conf:1: "segment_duration" must be an integer in 2\.\.10/,
         'the error names the file, line and key');
    $err = `$bin --config $tmp/helper.conf --no-such-key 1 2>&1`;
    like($err, qr/unknown option "--no-such-key"/, 'unknown flags are refused');
}

#---------------------------------------------------------------------------
# one helper: a 720p lecture, one without audio, one that is not a video
#---------------------------------------------------------------------------

my $s720 = make_source('lecture720.mp4', duration => 5);
my $snoa = make_source('noaudio.mp4', size => '640x360', duration => 4, no_audio => 1);
my $junk = "$src/junk.mp4";
{
    open my $out, '>', $junk or die $!;
    print $out join '', map { chr int rand 256 } 1 .. 65536;
    close $out;
}

add_video('h720', $s720);
add_video('hnoaudio', $snoa);
my $junk_entry = add_video('hjunk', $junk);

my $pid = start_helper("$tmp/one.log", '--exit-when-idle');
my $rc = wait_helper($pid, 60);
is($rc, 0, 'helper exits 0 when the queue is idle') or diag(slurp("$tmp/one.log"));

check_ladder('h720', [240, 360, 480, 720], duration => 5, audio => 1);
check_ladder('hnoaudio', [240, 360], duration => 4, audio => 0);

{
    my $v = video('hjunk');
    is($v->{status}, 'failed', 'a file that is not a video ends failed');
    # about 1 in 200 random files probes as a format outside the allow-list (lrc, h263)
    like($v->{error}, qr/^(?:not a video|unsupported_source): /, "with a clear error: $v->{error}");
    ok(!-e "$origin/hls/hjunk", 'nothing published for it');
    is(pending_count(), 0, 'every job is acknowledged, the failed one too');
}

like(slurp("$tmp/one.log"), qr/progress|ready/, 'the helper logs');
ok($pg->psql("SELECT count(*) FROM vodlms.videos WHERE id = 'h720' AND progress_percent = 100") == 1,
   'progress ends at 100');

# re-running a job republishes cleanly over the old ladder
{
    my $old = video('h720')->{prefix};
    open my $junkfile, '>', "$origin/${old}stale.txt" or die $!;
    close $junkfile;
    $redis->cmd('XADD', $STREAM, '*', 'video_id', 'h720', 'source', $s720,
                'enqueued_at', time);
    $pid = start_helper("$tmp/rerun.log", '--exit-when-idle');
    is(wait_helper($pid, 60), 0, 're-run: helper exits 0');
    my $new = video('h720')->{prefix};
    isnt($new, $old, 're-run: a new version');
    ok(!-e "$origin/${new}stale.txt", 're-run: the old ladder is replaced as a whole');
    check_ladder('h720', [240, 360, 480, 720], duration => 5, audio => 1);
    is($pg->psql("SELECT count(*) FROM helper_test_ready WHERE video_id = 'h720'"), 2,
       're-run: a second ready update');
}

#---------------------------------------------------------------------------
# two helpers, several jobs: each done exactly once
#---------------------------------------------------------------------------

my @multi = map { "multi$_" } 1 .. 5;
my $small = make_source('small.mp4', size => '426x240', duration => 3);
add_video($_, $small) for @multi;

my @pids = map { start_helper("$tmp/multi$_.log", '--exit-when-idle', '--consumer', "m$_") } 1, 2;
is(wait_helper($_, 60), 0, "helper $_ exits 0") for @pids;

for my $id (@multi) {
    is(video($id)->{status}, 'ready', "$id ready");
}
is($pg->psql("SELECT string_agg(video_id || '=' || n, ',' ORDER BY video_id) FROM "
             . "(SELECT video_id, count(*) n FROM helper_test_ready WHERE video_id LIKE 'multi%' "
             . "GROUP BY video_id) x"),
   join(',', map { "$_=1" } @multi), 'every job done exactly once');
{
    my $logs = join '', map { slurp("$tmp/multi$_.log") // '' } 1, 2;
    my %runs;
    $runs{$1}++ while $logs =~ /video (multi\d) ready/g;
    is_deeply(\%runs, { map { $_ => 1 } @multi }, 'one transcode per job across both helpers');
}
is(pending_count(), 0, 'nothing left pending');
check_ladder('multi1', [240], duration => 3, audio => 1);

#---------------------------------------------------------------------------
# a helper killed mid-job: the other reclaims the job (claim_idle 2 s),
# and a SIGTERM during that job lets it finish (shutdown = finish)
#---------------------------------------------------------------------------

{
    my $long = make_source('long.mp4', size => '1280x720', duration => 8);
    add_video('hkill', $long);
    my $a = start_helper("$tmp/killA.log", '--consumer', 'killA');
    ok(wait_for('helper A to start the job', 20, sub {
        my $v = video('hkill');
        $v->{status} eq 'processing' && $v->{progress} > 0 }), 'helper A is transcoding');
    kill 'KILL', $a;
    waitpid($a, 0);
    delete $Running{$a};
    my @left = glob("$origin/hls/.tmp-hkill.*");
    is(scalar @left, 1, 'helper A left its work directory behind');

    my $b = start_helper("$tmp/killB.log", '--consumer', 'killB');
    ok(wait_for('helper B to reclaim the job', 20, sub {
        (slurp("$tmp/killB.log") // '') =~ /reclaimed job \S+ \(video hkill\)/ }),
       'helper B reclaims the job of the dead helper');
    kill 'TERM', $b;
    my $brc = wait_helper($b, 60);
    is($brc, 0, 'helper B stops cleanly on SIGTERM');
    like(slurp("$tmp/killB.log"), qr/video hkill ready/,
         'and finishes the running job first');
    is(pending_count(), 0, 'the reclaimed job is acknowledged');
    is($pg->psql("SELECT count(*) FROM helper_test_ready WHERE video_id = 'hkill'"), 1,
       'the killed job is done once');
    check_ladder('hkill', [240, 360, 480, 720], duration => 8, audio => 1);
}

#---------------------------------------------------------------------------
# shutdown = abandon: SIGTERM stops ffmpeg, the job stays pending (no XACK),
# the row goes back to queued, and another helper picks the job up
#---------------------------------------------------------------------------

{
    add_video('habandon', "$src/long.mp4");
    my $a = start_helper("$tmp/abandonA.log", '--consumer', 'abandonA',
                         '--shutdown', 'abandon');
    ok(wait_for('helper A to start the job', 20, sub {
        my $v = video('habandon');
        $v->{status} eq 'processing' && $v->{progress} > 0 }), 'abandon: helper A is transcoding');
    my $t = time;
    kill 'TERM', $a;
    is(wait_helper($a, 10), 0, 'abandon: helper A exits 0 on SIGTERM');
    delete $Running{$a};
    ok(time - $t < 5, 'abandon: without finishing the job');
    like(slurp("$tmp/abandonA.log"), qr/abandoned on shutdown/, 'abandon: logged');
    is(video('habandon')->{status}, 'queued', 'abandon: the row is queued again');
    is(pending_count(), 1, 'abandon: the job is still pending (not acknowledged)');
    ok(!glob("$origin/hls/.tmp-habandon.*"), 'abandon: work directory removed');

    my $b = start_helper("$tmp/abandonB.log", '--consumer', 'abandonB');
    ok(wait_for('helper B to finish the job', 30, sub {
        video('habandon')->{status} eq 'ready' }), 'abandon: another helper finishes the job');
    is(stop_helper($b), 0, 'abandon: helper B stops cleanly');
    is(pending_count(), 0, 'abandon: acknowledged by helper B');
}

#---------------------------------------------------------------------------
# retries: a transient failure is retried, then failed after max_attempts
#---------------------------------------------------------------------------

{
    # an ffmpeg that always fails: ffprobe works, the ladder does not
    my $fake = "$tmp/fake-ffmpeg";
    open my $f, '>', $fake or die $!;
    print $f "#!/bin/sh\necho 'simulated encoder crash' >&2\nexit 1\n";
    close $f;
    chmod 0755, $fake;
    add_video('hretry', $small);
    my $p = start_helper("$tmp/retry.log", '--exit-when-idle', '--ffmpeg', $fake,
                         '--max-attempts', '3', '--retry-backoff', '0.2');
    is(wait_helper($p, 60), 0, 'retry: helper exits 0');
    my $v = video('hretry');
    is($v->{status}, 'failed', 'retry: failed after max_attempts');
    like($v->{error}, qr/failed after 3 attempts: ffmpeg exited with status 1: simulated encoder crash/,
         "retry: the error says why ($v->{error})");
    my @attempts = (slurp("$tmp/retry.log") // '') =~ /attempt (\d)\/3/g;
    is("@attempts", '1 2 3', 'retry: three deliveries');
    is(pending_count(), 0, 'retry: acknowledged at the end');
}

# a malformed job is dropped (acked), never retried forever
{
    $redis->cmd('XADD', $STREAM, '*', 'video_id', '../etc', 'source', 'relative');
    my $p = start_helper("$tmp/malformed.log", '--exit-when-idle');
    is(wait_helper($p, 30), 0, 'malformed: helper exits 0');
    like(slurp("$tmp/malformed.log"), qr/malformed/, 'malformed: logged');
    is(pending_count(), 0, 'malformed: acknowledged');
}

# how long it took is said, never asserted (speed is measured in
# ./build.sh bench, not in tests: a loaded machine is not a failure)
diag(sprintf 'wall time %.1f s', time - $T0) if $ENV{TEST_VERBOSE};

done_testing();
