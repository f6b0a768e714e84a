#!/usr/bin/perl

# One client must not degrade everyone (issue #18): vodlms-helper against a
# private Redis and PostgreSQL with the real ffmpeg.
#
#   1. fair turns: jobs wait in their owner's lane (the entry's "owner", the
#      uploader) and the owner served least recently goes next, so an
#      instructor's short clip is not stuck behind another's long queue,
#      also when it arrives while one of those jobs runs;
#   2. still each job done once with two helpers, and a dead helper's job
#      reclaimed after claim_idle;
#   3. a superseded upload's spooled source is removed: by the helper that
#      drops its job, and the sweep for a source whose job never came; the
#      current source never.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use POSIX qw(:sys_wait_h);
use Test::More;
use Time::HiRes qw(sleep time);

use VodlmsTest;
use VodlmsHelperTest qw(slurp write_file sq make_clip insert_video xadd_job spawn wait_exit run_idle video_row write_helper_conf);

my $T0 = time;
# the helper, the tools, a temporary directory, Redis and PostgreSQL (t/lib)
my %env = helper_env(name => 'fair', ports => 29000, tools => [qw(ffmpeg ffprobe)]);
my ($bin, $tmp, $src, $origin, $redis, $pg) = @env{qw(bin tmp src origin redis pg)};
my $FFMPEG = $env{ffmpeg};

my $STREAM = 'vodlms:transcode';
my $GROUP = 'vodlms-helpers';
my $VERSION = qr/\d{8}T\d{6}Z-[0-9a-f]{8}/;

# claim_idle is long: a helper held at a gate keeps its job
write_helper_conf("$tmp/helper.conf", redis => $redis, conninfo => $pg->conninfo, origin => $origin,
                  settings => [ ladder => '240p:300k', claim_idle => 120, max_attempts => 3,
                                old_version_grace => 3600, source_root => $src ]);

#---------------------------------------------------------------------------
# helpers
#---------------------------------------------------------------------------

sub make_source {
    my ($name, $seconds) = @_;
    return make_clip("$src/$name", duration => $seconds);
}


sub add_row {
    my ($id, $source) = @_;
    insert_video($pg, $id, source => $source);
}

# what the module's upload does: the row names the source, then XADD with the uploader
sub enqueue {
    my ($owner, $id, $source) = @_;
    add_row($id, $source);
    add_job($owner, $id, $source);
}

sub add_job {
    my ($owner, $id, $source) = @_;
    xadd_job($redis, $id, $source, owner => $owner);
}

sub video { video_row($pg, $_[0], qw(status error source)) }

sub pending_count {
    my $r = $redis->cmd('XPENDING', $STREAM, $GROUP);
    return ref $r eq 'ARRAY' ? $r->[0] : -1;
}

sub start_helper {
    my ($log, $env, @args) = @_;
    return spawn(log => $log, env => $env, cmd => [ $bin, '--config', "$tmp/helper.conf", @args ]);
}

sub wait_helper { wait_exit(@_) }

sub run_helper {
    my ($name, @args) = @_;
    return run_idle(name => $name, bin => $bin, config => "$tmp/helper.conf",
                    log => "$tmp/$name.log", args => \@args, timeout => 120);
}

# the videos in the order the helper made them ready
sub ready_order {
    my $log = shift;
    return [ $log =~ /\[info\][^\n]*video (\S+) ready:/g ];
}

# ffmpeg behind a gate: the poster of a job (after its ladder) waits for $GATE.go
my $gated = write_file("$tmp/ffmpeg-gated", <<"SH", 0755);
#!/bin/sh
case " \$* " in
*" -update "*)
    : > "\$GATE.waiting"
    while [ ! -e "\$GATE.go" ]; do sleep 0.1; done ;;
esac
exec $FFMPEG "\$@"
SH

sub wait_for { my ($file, $secs) = @_; my $d = time + $secs; sleep 0.1 until -e $file || time > $d; return -e $file }

my $long = make_source('long.mp4', 4);
my $short = make_source('short.mp4', 1);

#---------------------------------------------------------------------------
# 1. fair turns
#---------------------------------------------------------------------------

# instructor A queues three long lectures, then B a short clip; one helper
{
    enqueue('instructor-a', "a-$_", $long) for 1 .. 3;
    enqueue('instructor-b', 'b-1', $short);
    my $log = run_helper('turns');
    is_deeply(ready_order($log), [qw(a-1 b-1 a-2 a-3)],
              "turns: B's clip is made right after A's first lecture, not after A's queue")
        or diag($log);
    is(video($_)->{status}, 'ready', "turns: $_ is ready") for qw(a-1 a-2 a-3 b-1);
    is(pending_count(), 0, 'turns: every job acknowledged');
    like($log, qr/job \S+ \(a-2, owner instructor-a\) received/, 'turns: the owner is logged');
}

# B's clip arrives while A's first lecture is being encoded: B goes next
{
    my $gate = "$tmp/gate-arrive";
    enqueue('instructor-a', "c-$_", $long) for 1 .. 3;
    my $pid = start_helper("$tmp/arrive.log", { GATE => $gate }, '--exit-when-idle',
                           '--ffmpeg', $gated);
    ok(wait_for("$gate.waiting", 60), "arrive: A's first lecture is encoding")
        or diag(slurp("$tmp/arrive.log"));
    enqueue('instructor-b', 'd-1', $short);
    write_file("$gate.go", '');
    is(wait_helper($pid, 120), 0, 'arrive: helper exits 0');
    my $log = slurp("$tmp/arrive.log") // '';
    is_deeply(ready_order($log), [qw(c-1 d-1 c-2 c-3)],
              "arrive: B, never served, goes before A's second lecture") or diag($log);
}

# owners never served before go in the order they arrived (not by name)
{
    enqueue('zoe', 'zoe-1', $short);
    enqueue('adam', 'adam-1', $short);
    enqueue('zoe', 'zoe-2', $short);
    my $log = run_helper('newcomers');
    is_deeply(ready_order($log), [qw(zoe-1 adam-1 zoe-2)],
              'newcomers: the first to arrive goes first, then they take turns') or diag($log);
}

# jobs with no owner (a producer that does not say) share one lane, "-"
{
    add_row("anon-$_", $short), $redis->cmd('XADD', $STREAM, '*', 'video_id', "anon-$_",
                                            'source', $short) for 1 .. 2;
    enqueue('instructor-b', 'e-1', $short);
    my $log = run_helper('anon');
    is_deeply(ready_order($log), [qw(anon-1 e-1 anon-2)],
              'no owner: the entries without one take turns as one owner, "-"') or diag($log);
}

#---------------------------------------------------------------------------
# 2. each job once; a dead helper's job reclaimed
#---------------------------------------------------------------------------

{
    my @ids;
    for my $o (qw(x y z)) {
        for my $n (1 .. 2) { enqueue("instructor-$o", "$o-$n", $short); push @ids, "$o-$n"; }
    }
    my @pids = map { start_helper("$tmp/pair-$_.log", {}, '--exit-when-idle',
                                  '--consumer', "pair-$_") } 1 .. 2;
    is(wait_helper($_, 120), 0, 'two helpers: exit 0') for @pids;
    my $logs = join '', map { slurp("$tmp/pair-$_.log") // '' } 1 .. 2;
    my %made;
    $made{$_}++ for @{ ready_order($logs) };
    is_deeply(\%made, { map { $_ => 1 } @ids }, 'two helpers: each job made exactly once')
        or diag($logs);
    is(pending_count(), 0, 'two helpers: every job acknowledged');
}

{
    my $gate = "$tmp/gate-dead";
    enqueue('instructor-a', 'dead-1', $short);
    my $pid = start_helper("$tmp/dead.log", { GATE => $gate }, '--once', '--ffmpeg', $gated,
                           '--consumer', 'doomed');
    ok(wait_for("$gate.waiting", 60), 'dead helper: its job is encoding');
    kill 'KILL', $pid;
    wait_helper($pid, 10);
    # the rescuer's claim_idle is 1 s: wait until the dead helper's job is that silent
    my ($silent, $deadline) = (0, time + 30);
    until ($silent || time > $deadline) {
        my $p = $redis->cmd('XPENDING', $STREAM, $GROUP, 'IDLE', 1500, '-', '+', 10, 'doomed');
        $silent = ref $p eq 'ARRAY' && @$p;
        sleep 0.1 unless $silent;
    }
    ok($silent, 'dead helper: its job is pending, silent past claim_idle');
    enqueue('instructor-b', 'dead-2', $short);
    my $log = run_helper('rescue', '--claim-idle', '1', '--consumer', 'rescuer');
    like($log, qr/reclaimed job \S+ \(video dead-1\) from a silent consumer, delivery 2/,
         "dead helper: its job is reclaimed after claim_idle");
    is(video($_)->{status}, 'ready', "dead helper: $_ is ready") for qw(dead-1 dead-2);
    is(pending_count(), 0, 'dead helper: every job acknowledged');
}

#---------------------------------------------------------------------------
# 3. the spool: a superseded upload's source is removed, the current never
#---------------------------------------------------------------------------

use File::Copy qw(copy);

# a spooled upload as the module names it: <video>-<msec>-<pid>-<conn>.upload
my $n = 0;
sub spooled {
    my ($id) = @_;
    my $path = sprintf '%s/%s-%d-%d-%d.upload', $src, $id, int(time * 1000), $$, ++$n;
    copy($short, $path) or die "copy: $!";
    return $path;
}

sub reupload {
    my ($id, $source) = @_;
    $pg->psql("UPDATE vodlms.videos SET status = 'queued', progress_percent = 0, error = NULL,"
              . " source_location = " . sq($source) . " WHERE id = " . sq($id));
}

# five uploads of one lecture before a helper runs: four superseded files go,
# the fifth (the row's) stays and is transcoded once
{
    my @up = map { spooled('five') } 1 .. 5;
    enqueue('instructor-a', 'five', $up[0]);
    for my $i (1 .. 4) { reupload('five', $up[$i]); add_job('instructor-a', 'five', $up[$i]); }
    # the module counts each job's bytes against its uploader's quota
    $redis->cmd('HSET', "$STREAM:spool:instructor-a", $_, -s $_) for @up;
    my $log = run_helper('five');
    is(video('five')->{status}, 'ready', 'five uploads: the last is ready');
    is_deeply([ map { -e $_ ? 1 : 0 } @up ], [0, 0, 0, 0, 1],
              'five uploads: the four superseded sources are removed, the current one stays');
    is(() = $log =~ /video five ready:/g, 1, 'five uploads: one transcode, not five');
    like($log, qr/removed the spooled source \Q$up[0]\E \(its upload was superseded; no video or waiting caption names it\)/,
         'five uploads: each removal is logged');
    is_deeply($redis->cmd('HKEYS', "$STREAM:spool:instructor-a"), [],
              'five uploads: no byte counts against the quota once the jobs ended');
}

# a source superseded while it is being encoded: the running job stops and
# its file goes only then; the newer upload is made from its own file
{
    my $gate = "$tmp/gate-spool";
    my $old = spooled('racing');
    enqueue('instructor-a', 'racing', $old);
    my $pid = start_helper("$tmp/racing-old.log", { GATE => $gate }, '--once', '--ffmpeg', $gated,
                           '--consumer', 'racing-old');
    ok(wait_for("$gate.waiting", 60), 'racing: the first upload is being encoded');
    my $new = spooled('racing');
    reupload('racing', $new);
    ok(-e $old, 'racing: the running job\'s source is still there while it runs');
    write_file("$gate.go", '');
    is(wait_helper($pid, 60), 0, 'racing: the older job\'s helper exits 0');
    ok(!-e $old, 'racing: its source is removed once the job was dropped')
        or diag(slurp("$tmp/racing-old.log"));
    add_job('instructor-a', 'racing', $new);
    run_helper('racing-new');
    is(video('racing')->{status}, 'ready', 'racing: the newer upload is ready');
    ok(-e $new, 'racing: and its source, the current one, stays');
}

# the sweep: spooled files older than spool_grace that no row names
{
    my $orphan = spooled('orphan');             # its job never came
    my $fresh = spooled('fresh');               # the module is writing its row
    my $named = spooled('named');
    add_row('named', $named);
    $pg->psql("UPDATE vodlms.videos SET status = 'ready', storage_prefix = 'hls/named/20261201T000000Z-00000000/' WHERE id = 'named'");
    my $mine = "$src/notes.txt";                # not an upload: never touched
    write_file($mine, "the operator's\n");
    my $old = time - 7200;
    utime $old, $old, $orphan, $named, $mine;
    my $log = run_helper('sweep', '--spool-grace', '3600');
    ok(!-e $orphan, 'sweep: an old upload no row names is removed');
    ok(-e $fresh, 'sweep: a fresh one is left (its row may be on its way)');
    ok(-e $named, 'sweep: an old one that a row names is kept, whatever its status');
    ok(-e $mine, 'sweep: a file that is not an upload is never touched');
    like($log, qr/spool sweep: removed 1 source\(s\) no video names/, 'sweep: logged');

    # source_root and the row may spell the spool otherwise ("dir/", "//",
    # a symlink): a file a row names is still named, an orphan still goes
    symlink($src, "$tmp/src-link") or die "symlink: $!";
    my %spelled = (slash => "$src/", double => "$src//", link => "$tmp/src-link");
    my (%named, %orphan);
    for my $k (sort keys %spelled) {
        my $f = spooled("spelled-$k");
        (my $name = $f) =~ s{.*/}{};
        add_row("spelled-$k", "$spelled{$k}/$name");
        $pg->psql("UPDATE vodlms.videos SET status = 'ready', storage_prefix = 'hls/spelled-$k/20261201T000000Z-00000000/' WHERE id = 'spelled-$k'");
        $named{$k} = $f;
        $orphan{$k} = spooled("lost-$k");
    }
    my $same = spooled('named-here');           # the row spells it as the helper does
    add_row('named-here', $same);
    utime $old, $old, values %named, values %orphan, $same;
    for my $root ("$src/", "$tmp/src-link") {
        $log = run_helper('sweep-spelled', '--spool-grace', '3600', '--source-root', $root);
        ok(-e $named{$_}, "sweep with source_root \"$root\": the source a row names as \"$spelled{$_}/...\" is kept")
            or diag($log) for sort keys %spelled;
        ok(-e $same, "sweep with source_root \"$root\": the source a row names as \"$src/...\" is kept");
    }
    ok(!-e $orphan{$_}, "sweep with source_root \"$src/\": an old upload no row names is still removed ($_)")
        for sort keys %orphan;

    # a job that spells its row's current source otherwise is not a newer
    # upload's leftover: its file stays
    my $cur = spooled('spelled-job');
    (my $curname = $cur) =~ s{.*/}{};
    enqueue('instructor-a', 'spelled-job', $cur);
    add_job('instructor-a', 'spelled-job', "$src//$curname");
    run_helper('spelled-job');
    is(video('spelled-job')->{status}, 'ready', 'a job spelling the source otherwise: the video is made');
    ok(-e $cur, 'a job spelling the source otherwise: the current source stays');

    # without source_root the helper removes nothing: a job could name any file
    my $kept = spooled('kept');
    utime $old, $old, $kept;
    run_helper('no-root', '--source-root', '');
    ok(-e $kept, 'no source_root: nothing is swept');
}


done_testing();
