# PostgreSQL high availability (issue #21), on the real engine: a primary
# and a streaming replica (pg_basebackup -R) on loopback, nginx with two
# workers in front, under a bounded load of what users send: playback
# checks (the enrollment query), progress beacons (flushed to the primary)
# and a static file beside them.
#
#   (a) the replica stops: the enrollment checks move to the primary, and
#       come back to the replica when it is started again; then it hangs
#       (SIGSTOP): the checks time out there once per worker, then move;
#   (b) failover: the primary stops and the replica is promoted; vodlms_pg
#       lists both with target_session_attrs=read-write, no check or beacon
#       that started after the promotion fails (the issue's target), and
#       the flushes land on the new primary; a second node that also reads
#       from the replica (vodlms_pg_replica) fails no request at all;
#   (c) switchover: the new primary's own replica is promoted and the old
#       one fenced (read-only, SQLSTATE 25006 to writes): the write is
#       retried on a fresh connection, which finds the new primary;
#   (d) a first host that never answers (a blackhole) does not stop the
#       pool from reaching the second, and costs no request;
#   (e) a graceful stop (QUIT) does not wait for a connect to a silent
#       replica (connect_timeout=60s);
#   (f) a read the replica cancels (57014, 40001) is answered by the
#       primary;
#   (g) a database that never answers, under load: each worker has one
#       connect under way at most once its first connect failed (the
#       requests wait for the next connect rather than open their own),
#       and every request gets its 503.
# Every node is stopped with QUIT, and its workers must exit by themselves.
# The static file is served throughout.  Failed requests and seconds to
# recover are printed (diag) and written up in docs/operations.md; the
# assertions are functional: which server answers, what fails, what lands
# where, and that it recovers at all.
#
# Plain Test::More: nginx runs as a direct child (nginx_child), the load
# as forked clients writing one line per request.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use HTTP::Tiny;
use Test::More;
use Time::HiRes qw(time sleep);
use VodlmsLoad;
use VodlmsTest;

$ENV{TEST_NGINX_MODULE_PATH}
    or plan skip_all => 'TEST_NGINX_MODULE_PATH is not set (./build.sh test sets it)';
my $redis_port = $ENV{TEST_NGINX_REDIS_PORT} || 6379;

# alice (1001) is enrolled in course-intro, whose intro-ready is ready
redis_cmd($redis_port, 'SET', 'session:t173-alice', '{"user_id":"1001"}', 'EX', 3600);

my $pa = start_pg();
my $pb = start_pg_replica($pa, log_statements => 1);
is($pb->psql('SELECT pg_is_in_recovery()'), 't', 'B is a streaming replica of A');

my $root = tempdir('vodlms-t173-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $root;
mkdir "$root/static";
open my $fh, '>', "$root/static/hello.txt" or die $!;
print $fh "hello\n";
close $fh;
chmod 0644, "$root/static/hello.txt";

my $WORKERS = 2;

sub node {
    my ($name, $pg_lines, %o) = @_;
    my $port = free_port();
    my $node = nginx_child(name => "t173-$name", listen => $port, workers => $WORKERS,
                           log_level => $o{log_level} || 'info', http => <<"HTTP");
    vodlms_redis 127.0.0.1:$redis_port;
$pg_lines
    vodlms_progress_zone zone=progress:1m flush=300ms;

    server {
        listen 127.0.0.1:$port;
        root $root;

        # what the player asks before it plays: behind the session and
        # enrollment gate (no enrollment cache: every request asks)
        location ~ ^/videos/(?<vid>[^/]+)/meta\$ {
            vodlms_auth on;
            vodlms_enrollment_check on;
            vodlms_video_id \$vid;
            try_files /static/hello.txt =404;
        }

        location ~ ^/api/videos/(?<vid>[^/]+)/progress\$ {
            vodlms_auth on;
            vodlms_enrollment_check on;
            vodlms_video_id \$vid;
            vodlms_progress on;
            vodlms_progress_rate off;
        }

        location /static/ { }
    }
HTTP
    $node->{port} = $port;
    return $node;
}

#---------------------------------------------------------------------------
# The load: t/lib/VodlmsLoad.pm
#---------------------------------------------------------------------------

$VodlmsLoad::Session = 't173-alice';

sub count_lines {
    my ($node, $re) = @_;
    return scalar grep { /$re/ } split /\n/, $node->log;
}

sub executes_on {
    my ($pg) = @_;
    open my $in, '<', $pg->log_file or return 0;
    return scalar grep { /execute vodlms_q\d+/ } <$in>;
}

# the postmaster of $pg and its children (backends, walreceiver, ...)
sub pg_processes {
    my ($pg) = @_;
    my $pm = $pg->pid or return ();
    my @kids;
    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $in, '<', $stat or next;
        my $line = <$in> // next;
        push @kids, $1 if $line =~ /^(\d+) \(.*\) \S (\d+) / && $2 == $pm;
    }
    return ($pm, @kids);
}

sub wait_for {
    my ($secs, $cond) = @_;
    my $v;
    for (1 .. $secs * 50) {
        last if $v = $cond->();
        sleep 0.02;
    }
    return $v;
}

#---------------------------------------------------------------------------
# (a) the replica stops, then starts again
#---------------------------------------------------------------------------

{
    my $n = node('a', qq{    vodlms_pg "} . $pa->conninfo . qq{ application_name=t173-primary";
    vodlms_pg_replica "} . $pb->conninfo . qq{ application_name=t173-replica";});

    my $stop = load($n, 'a', qw(play play static));
    sleep 1;
    my $before = executes_on($pb);
    ok($before > 0, "the replica runs the enrollment checks ($before so far)");

    my $t_stop = time;
    $pb->stop;
    my $t_stopped = time;
    sleep 3;
    my $t_start = time;
    my $before_restart = executes_on($pb);
    $pb->start;
    my $t_started = time;
    my $back = wait_for(10, sub { count_lines($n, qr/postgres replica .* answers again, reads go back to it/) >= 1 });
    my $t_back = time;
    sleep 1;
    my $reqs = $stop->();

    my $down = outcome($reqs, 'play', $t_stop, $t_start);
    my $up = outcome($reqs, 'play', $t_start);
    report('(a) replica stopped: playback checks', $down);
    report('(a) replica started again: playback checks', $up);
    diag(sprintf '(a) the replica took %.2f s to stop and %.2f s to start', $t_stopped - $t_stop,
         $t_started - $t_start);
    ok($down->{n} > 20, 'playback checks ran while the replica was down');
    is($down->{failed}, 0, 'none failed while the replica was down: the primary answered them');
    is($up->{failed}, 0, 'none failed while the replica came back');

    my $gone = count_lines($n, qr/\[warn\] .*postgres replica 127\.0\.0\.1:\d+\/vodlms is unavailable, reading from 127\.0\.0\.1:\d+\/vodlms until it answers again/);
    ok($gone >= 1 && $gone <= $WORKERS, "the fall-back is logged once per worker at most ($gone lines)")
        or diag $n->log;
    ok($back, 'the return to the replica is logged');
    my $after = executes_on($pb);
    ok($after > $before_restart, 'the replica runs the checks again (' . ($after - $before_restart) . ' since it started)');
    my $static = outcome($reqs, 'static', 0);
    report('(a) the static file throughout', $static);
    is($static->{failed}, 0, 'the static file was served throughout');

    # the replica hangs: every process of it stopped (SIGSTOP), so that
    # established connections go silent and new ones are never answered
    my $answers_again = count_lines($n, qr/answers again, reads go back to it/);
    my $stop_hang = load($n, 'a-hang', qw(play play static));
    sleep 1;
    my @procs = pg_processes($pb);
    my $t_hang = time;
    kill 'STOP', @procs;
    sleep 5;
    my $t_cont = time;
    kill 'CONT', @procs;
    my $again = wait_for(10, sub { count_lines($n, qr/answers again, reads go back to it/) > $answers_again });
    sleep 1;
    $reqs = $stop_hang->();
    my $hung = outcome($reqs, 'play', $t_hang, $t_cont);
    report('(a) replica hung (SIGSTOP): playback checks', $hung);
    my $slow = grep { $_->[2] eq 'play' && $_->[0] >= $t_hang && $_->[0] < $t_cont && $_->[1] - $_->[0] > 0.5 } @$reqs;
    diag("(a) $slow checks waited for the hung replica's timeout= (1 s) before they moved to the primary");
    is($hung->{failed}, 0, 'none failed while the replica hung: they timed out there and moved to the primary');
    ok($hung->{n} > 0, "checks ran while the replica hung ($hung->{n})");
    ok($again, 'the return of the hung replica is logged');
    $static = outcome($reqs, 'static', 0);
    report('(a) the static file while it hung', $static);
    is($static->{failed}, 0, 'the static file was served while the replica hung');

    unlike($n->log, qr/\[(error|crit|alert|emerg)\]/, 'no error in the log');
    ok($n->stop('QUIT'), 'graceful stop: the workers exit');
}

#---------------------------------------------------------------------------
# (b) failover: the primary stops, the replica is promoted
#---------------------------------------------------------------------------

# the max position of alice's row for intro-ready on $pg ('' if none)
sub max_position {
    my ($pg) = @_;
    return $pg->psql("SELECT max_position_seconds FROM vodlms.watch_progress"
                   . " WHERE user_id = '1001' AND video_id = 'intro-ready'");
}

# the position of the last beacon acknowledged (204)
sub last_acked {
    my ($reqs) = @_;
    my @acked = sort { $a->[0] <=> $b->[0] } grep { $_->[2] eq 'beacon' && $_->[4] } @$reqs;
    return @acked ? $acked[-1][5] : undef;
}

sub multi_host {
    my ($attrs, @pgs) = @_;
    return 'host=' . join(',', ('127.0.0.1') x @pgs) . ' port=' . join(',', map { $_->port } @pgs)
         . " user=postgres dbname=vodlms target_session_attrs=$attrs";
}

{
    # node b has no replica; node b2, beside it, reads from B (the replica
    # that is promoted), as operations.md advises
    my $n = node('b', '    vodlms_pg "' . multi_host('read-write', $pa, $pb) . '";');
    my $n2 = node('b2', '    vodlms_pg "' . multi_host('read-write', $pa, $pb) . qq{";
    vodlms_pg_replica "} . $pb->conninfo . '";');

    $VodlmsLoad::Beacon = 10;
    my $stop = load($n, 'b', qw(play play beacon static));
    my $stop2 = load($n2, 'b2', qw(play beacon));
    sleep 1.5;
    ok(wait_for(10, sub { (max_position($pa) || 0) >= 10 }), 'before: the flushes land on A');

    my $t_down = time;
    $pa->stop;
    my $t_promote = time;
    $pb->promote;
    my $t_promoted = time;
    sleep 4;
    my $reqs = $stop->();
    my $reqs2 = $stop2->();

    is($pb->psql('SELECT pg_is_in_recovery()'), 'f', 'B is the primary now');
    my $acked = last_acked($reqs);
    ok(defined $acked && $acked > 10, "beacons were acknowledged (the last at ${acked}s)");
    my $acked2 = last_acked($reqs2);
    $acked = $acked2 if defined $acked2 && $acked2 > $acked;
    my $landed = wait_for(10, sub { my $m = max_position($pb); $m ne '' && $m >= $acked ? $m : 0 });
    ok($landed, "the flushes land on B, the new primary: its row is at $acked s")
        or diag 'B has ' . max_position($pb);

    my $engine = $t_promoted - $t_down;
    diag(sprintf '(b) the engine: A stopped in %.2f s, B promoted in %.2f s: %.2f s without a primary',
         $t_promote - $t_down, $t_promoted - $t_promote, $engine);
    for my $kind (qw(play beacon)) {
        my $all = outcome($reqs, $kind, $t_down);
        my $after = outcome($reqs, $kind, $t_promoted);
        report("(b) failover: $kind, from A's stop", $all);
        report("(b) failover: $kind, from B's promotion", $after);
        # the issue's target: no failure once the engine has failed over
        # (A stopped, pg_ctl promote returned); a worker in back-off holds
        # a request for one connect started after it came, not a 503
        ok($after->{n} > 0, "$kind: requests ran after the promotion ($after->{n})");
        is($after->{failed}, 0, "$kind: none that started after the promotion failed");
    }
    for my $kind (qw(play beacon)) {
        my $o = outcome($reqs2, $kind, $t_down);
        report("(b) with the replica: $kind, from A's stop", $o);
        is($o->{failed}, 0, "with vodlms_pg_replica, no $kind failed: B, replica then primary, answered the checks");
    }
    my $static = outcome($reqs, 'static', 0);
    report('(b) the static file throughout', $static);
    is($static->{failed}, 0, 'the static file was served throughout');
    unlike($n->log . $n2->log, qr/\[(crit|alert|emerg)\]/, 'nothing worse than an error in the log');
    ok($n->stop('QUIT'), 'graceful stop: the workers exit');
    ok($n2->stop('QUIT'), 'graceful stop: the workers exit');
}

#---------------------------------------------------------------------------
# (c) switchover: B's replica C is promoted, B is fenced (read-only)
#---------------------------------------------------------------------------

my $pc = start_pg_replica($pb);

{
    my $n = node('c', '    vodlms_pg "' . multi_host('read-write', $pb, $pc) . '";');

    $VodlmsLoad::Beacon = 100;
    my $stop = load($n, 'c', qw(play play beacon static));
    sleep 1.5;
    ok(wait_for(10, sub { (max_position($pb) || 0) >= 100 }), 'before: the flushes land on B');

    my $t_promote = time;
    $pc->promote;
    my $t_fence = time;
    $pb->psql('ALTER SYSTEM SET default_transaction_read_only = on');
    $pb->psql('SELECT pg_reload_conf()');
    my $t_fenced = time;
    sleep 3;
    my $t_stop = time;
    $pb->stop;
    sleep 1.5;
    my $reqs = $stop->();

    my $acked = last_acked($reqs);
    my $landed = wait_for(10, sub { my $m = max_position($pc); $m ne '' && $m >= $acked ? $m : 0 });
    ok($landed, "the flushes land on C, the new primary: its row is at $acked s")
        or diag 'C has ' . max_position($pc);
    like($n->log, qr/\[warn\] .*postgres 127\.0\.0\.1:\d+,127\.0\.0\.1:\d+\/vodlms answers read-only at 127\.0\.0\.1:\d+ \(.*25006.*\), its connections are closed; the statement is tried once more/,
         'the read-only answer (25006) is logged, and the statement tried again');

    diag(sprintf '(c) the engine: C promoted in %.2f s, B fenced in %.2f s', $t_fence - $t_promote,
         $t_fenced - $t_fence);
    for my $kind (qw(play beacon)) {
        my $o = outcome($reqs, $kind, $t_promote);
        report("(c) switchover: $kind, from C's promotion", $o);
        is($o->{failed}, 0, "$kind: none failed in the switchover");
    }
    my $static = outcome($reqs, 'static', 0);
    report('(c) the static file throughout', $static);
    is($static->{failed}, 0, 'the static file was served throughout');
    ok($n->stop('QUIT'), 'graceful stop: the workers exit');
}

#---------------------------------------------------------------------------
# (d) a first host that never answers
#---------------------------------------------------------------------------

{
    my ($bh_port, $bh) = blackhole();
    my $n = node('d', '    vodlms_pg "host=127.0.0.1,127.0.0.1 port=' . "$bh_port," . $pc->port
                    . ' user=postgres dbname=vodlms target_session_attrs=read-write"'
                    . ' connect_timeout=500ms timeout=3s;');

    my $http = HTTP::Tiny->new(timeout => 10);
    my ($failed, $ok, $t0) = (0, 0, time);
    while ($ok < 10 && time - $t0 < 20) {
        my $res = $http->get("http://127.0.0.1:$n->{port}/videos/intro-ready/meta",
                             { headers => { Cookie => 'session=t173-alice' } });
        if ($res->{status} == 200) { $ok++ } else { $failed++; $ok = 0 }
    }
    diag(sprintf '(d) a silent first host: %d requests failed, %.2f s until 10 in a row succeeded',
         $failed, time - $t0);
    is($ok, 10, 'the pool reaches the second host: requests succeed');
    is($failed, 0, 'none failed: the connect that timed out on the first host is followed at once by one to the second');
    like($n->log, qr/\[warn\] .*127\.0\.0\.1:$bh_port did not answer within 500 ms, the next connect starts with 127\.0\.0\.1:${\ $pc->port}/,
         'the silent host is named, and the next connect starts after it');
    ok($n->stop('QUIT'), 'graceful stop: the workers exit');
}

#---------------------------------------------------------------------------
# (e) a graceful stop while a connect to a silent replica is under way
#---------------------------------------------------------------------------

{
    my ($bh_port, $bh) = blackhole();
    my $n = node('e', '    vodlms_pg "host=127.0.0.1 port=' . $pc->port . ' user=postgres dbname=vodlms";' . "\n"
                    . '    vodlms_pg_replica "host=127.0.0.1 port=' . $bh_port . ' user=postgres dbname=vodlms"'
                    . ' connect_timeout=60s timeout=300ms;');
    my $http = HTTP::Tiny->new(timeout => 10);
    my $res = $http->get("http://127.0.0.1:$n->{port}/videos/intro-ready/meta",
                         { headers => { Cookie => 'session=t173-alice' } });
    is($res->{status}, 200, 'a silent replica: the check times out there and the primary answers');

    # the replica's connect waits for connect_timeout=60s; nginx -s quit
    # must not (the harness kills nginx after 15 s and returns false)
    my $t0 = time;
    ok($n->stop('QUIT'), 'graceful stop with a connect to a silent replica under way: the workers exit');
    diag(sprintf '(e) the graceful stop took %.2f s (connect_timeout=60s)', time - $t0);
}

#---------------------------------------------------------------------------
# (f) the replica cancels a read (SQLSTATE 57014, its statement_timeout;
#     a conflict with recovery would be 40001): the primary answers it
#---------------------------------------------------------------------------

{
    # the same server as both pools: only the replica's has a statement
    # timeout shorter than the (sleeping) enrollment query
    my $conn = 'host=127.0.0.1 port=' . $pc->port . ' user=postgres dbname=vodlms';
    my $n = node('f', qq{    vodlms_pg "$conn";\n}
                    . qq{    vodlms_pg_replica "$conn options='-c statement_timeout=50'";\n}
                    . q{    vodlms_enrollment_query "SELECT $1::text AS id, 'ready' AS status, }
                    . q{($2::text <> '') AS allowed FROM pg_sleep(0.2)" $vodlms_video_id $vodlms_user_id;});
    my $http = HTTP::Tiny->new(timeout => 10);
    my %status;
    for (1 .. 4) {
        my $res = $http->get("http://127.0.0.1:$n->{port}/videos/intro-ready/meta",
                             { headers => { Cookie => 'session=t173-alice' } });
        $status{$res->{status}}++;
    }
    diag('(f) a read the replica cancels: ' . join ', ', map { "$status{$_} x $_" } sort keys %status);
    is($status{200} || 0, 4, 'a read the replica cancelled (statement_timeout) is answered by the primary');
    like($n->log, qr/\[info\] .*ERROR 57014: canceling statement due to statement timeout, the read goes to 127\.0\.0\.1:\d+\/vodlms/,
         'the cancelled read and where it went are logged');
    ok($n->stop('QUIT'), 'graceful stop: the workers exit');
}

#---------------------------------------------------------------------------
# (g) a database that never answers: one connect at a time, and 503s
#---------------------------------------------------------------------------

{
    my ($bh_port, $bh) = blackhole();
    my $n = node('g', '    vodlms_pg "host=127.0.0.1 port=' . $bh_port . ' user=postgres dbname=vodlms"'
                    . ' connect_timeout=100ms timeout=1s;', log_level => 'debug');
    my $stop = load($n, 'g', ('play') x 8);
    sleep 2;
    my $reqs = $stop->();
    my $o = outcome($reqs, 'play', 0);
    report('(g) a silent database: playback checks', $o);
    ok($o->{n} > 0 && $o->{failed} == $o->{n}, "every check failed closed ($o->{n})");
    is($o->{statuses}, "$o->{n} x 503", 'with 503');

    # per worker, from its first failed connect on: "connect, ... fd:N,
    # K of pool_size=4" is the pool's connections, the new one included
    my (%down, %probes, %more);
    for (split /\n/, $n->log) {
        my ($pid) = /\[debug\] (\d+)#/ or next;
        $down{$pid} = 1 if /vodlms pg: back-off, /;
        next unless $down{$pid} && /vodlms pg: connect, \S+ fd:\d+, (\d+) of pool_size=4/;
        $probes{$pid}++;
        $more{$pid}++ if $1 > 1;
    }
    my $probes = 0;
    $probes += $_ for values %probes;
    ok($probes >= 2, "the workers connected again after their first failure ($probes connects)");
    is(scalar(keys %more), 0, 'never a second connect under way once a connect failed')
        or diag join ', ', map { "worker $_: $more{$_} of $probes{$_}" } sort keys %more;
    diag("(g) connects after the first failure, per worker: "
         . join(', ', map { $probes{$_} } sort keys %probes) . ' in 2 s');
    ok($n->log =~ /vodlms pg: hold, 127\.0\.0\.1:$bh_port\/vodlms: \d+ waiting came after the last connect started, they wait for the next/,
       'checks that came during a connect waited for the next one');
    unlike($n->log, qr/\[(crit|alert|emerg)\]/, 'nothing worse than an error in the log');
    ok($n->stop('QUIT'), 'graceful stop: the workers exit');
}

done_testing();
