# PostgreSQL high availability (issue #21), on the real engine: a primary
# and a streaming replica (pg_basebackup -R) on loopback, nginx with two
# workers in front, under a bounded load of what users send: playback
# checks (the enrollment query), progress beacons (flushed to the primary)
# and a static file beside them.
#
#   (a) the replica stops: the enrollment checks move to the primary, and
#       come back to the replica when it is started again;
#   (b) failover: the primary stops and the replica is promoted; vodlms_pg
#       lists both with target_session_attrs=read-write, and the flushes
#       land on the new primary;
#   (c) switchover: the new primary's own replica is promoted and the old
#       one fenced (read-only, SQLSTATE 25006 to writes): the write is
#       retried on a fresh connection, which finds the new primary;
#   (d) a first host that never answers (a blackhole) does not stop the
#       pool from reaching the second.
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
use IO::Handle;
use POSIX qw(_exit);
use Test::More;
use Time::HiRes qw(time sleep);
use VodlmsTest;

$ENV{TEST_NGINX_MODULE_PATH}
    or plan skip_all => 'TEST_NGINX_MODULE_PATH is not set (./build.sh test sets it)';
my $redis_port = $ENV{TEST_NGINX_REDIS_PORT} || 6379;

# alice (1001) is enrolled in course-intro, whose intro-ready is ready
redis_cmd($redis_port, 'SET', 'session:t170-alice', '{"user_id":"1001"}', 'EX', 3600);

my $pa = start_pg();
my $pb = start_pg_replica($pa, log_statements => 1);
is($pb->psql('SELECT pg_is_in_recovery()'), 't', 'B is a streaming replica of A');

my $static = tempdir('vodlms-t170-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $static;
mkdir "$static/static";
open my $fh, '>', "$static/static/hello.txt" or die $!;
print $fh "hello\n";
close $fh;
chmod 0644, "$static/static/hello.txt";

my $WORKERS = 2;

sub node {
    my ($name, $pg_lines) = @_;
    my $port = free_port();
    my $node = nginx_child(name => "t170-$name", listen => $port, workers => $WORKERS,
                           http => <<"HTTP");
    vodlms_redis 127.0.0.1:$redis_port;
$pg_lines
    vodlms_progress_zone zone=progress:1m flush=300ms;

    server {
        listen 127.0.0.1:$port;
        root $static;

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
# The load: forked clients, one line per request: start end kind status
#---------------------------------------------------------------------------

my $LoadDir = tempdir('vodlms-t170-load-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $Beacon = 0;    # the video position beacons start from, per scenario

sub client {
    my ($node, $kind, $file) = @_;
    my $pid = fork // die "fork: $!";
    return $pid if $pid;

    $SIG{TERM} = sub { _exit(0) };
    open my $out, '>>', $file or _exit(1);
    $out->autoflush(1);
    my $http = HTTP::Tiny->new(timeout => 10, keep_alive => 0);
    my $base = "http://127.0.0.1:$node->{port}";
    my $pos = $Beacon;
    for (1 .. 3000) {    # bounded: 60 s at most
        my $t0 = time;
        my $res;
        if ($kind eq 'play') {
            $res = $http->get("$base/videos/intro-ready/meta",
                              { headers => { Cookie => 'session=t170-alice' } });
        } elsif ($kind eq 'beacon') {
            $pos += 0.1;
            $res = $http->post("$base/api/videos/intro-ready/progress", {
                headers => { Cookie => 'session=t170-alice', 'Content-Type' => 'text/plain' },
                content => sprintf('{"videoId":"intro-ready","currentTime":%.1f,"duration":634.5}', $pos),
            });
        } else {
            $res = $http->get("$base/static/hello.txt");
        }
        my $ok = $kind eq 'beacon' ? $res->{status} == 204
               : $res->{status} == 200 && $res->{content} eq "hello\n";
        printf $out "%.3f %.3f %s %d %d %s\n", $t0, time, $kind, $res->{status}, $ok ? 1 : 0,
               $kind eq 'beacon' ? sprintf('%.1f', $pos) : '-';
        sleep 0.02;
    }
    _exit(0);
}

# starts the load on $node; returns a function that stops it and returns
# the requests, each [start, end, kind, status, ok, position]
sub load {
    my ($node, $name, @kinds) = @_;
    my $file = "$LoadDir/$name";
    my @pids = map { client($node, $_, $file) } @kinds;
    return sub {
        kill 'TERM', $_ for @pids;
        waitpid $_, 0 for @pids;
        open my $in, '<', $file or return [];
        return [ map { [ split ' ' ] } <$in> ];
    };
}

# of the requests of $kind that started after $from: how many, how many
# failed, and when the first request that succeeded after the last failure
# ended (seconds after $from; 0: none failed)
sub outcome {
    my ($reqs, $kind, $from, $to) = @_;
    my @r = sort { $a->[0] <=> $b->[0] }
            grep { $_->[2] eq $kind && $_->[0] >= $from && (!defined $to || $_->[0] < $to) } @$reqs;
    my @failed = grep { !$_->[4] } @r;
    my $recovered = 0;
    if (@failed) {
        my $last = $failed[-1][0];
        my ($ok) = grep { $_->[4] && $_->[0] > $last } @r;
        $recovered = $ok ? $ok->[1] - $from : undef;
    }
    my $max_ms = 0;
    for (@r) { my $ms = ($_->[1] - $_->[0]) * 1000; $max_ms = $ms if $ms > $max_ms }
    return { n => scalar @r, failed => scalar @failed, recovered => $recovered,
             max_ms => $max_ms, statuses => join(',', map { $_->[3] } @failed) };
}

sub report {
    my ($what, $o) = @_;
    diag(sprintf '%-44s %4d requests, %3d failed%s, recovered %s, slowest %.0f ms',
         $what, $o->{n}, $o->{failed}, $o->{failed} ? " ($o->{statuses})" : '',
         defined $o->{recovered} ? sprintf('%.2f s after', $o->{recovered}) : 'never',
         $o->{max_ms});
}

sub count_lines {
    my ($node, $re) = @_;
    return scalar grep { /$re/ } split /\n/, $node->log;
}

sub executes_on {
    my ($pg) = @_;
    open my $in, '<', $pg->log_file or return 0;
    return scalar grep { /execute vodlms_q\d+/ } <$in>;
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
    my $n = node('a', qq{    vodlms_pg "} . $pa->conninfo . qq{ application_name=t170-primary";
    vodlms_pg_replica "} . $pb->conninfo . qq{ application_name=t170-replica";});

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
    unlike($n->log, qr/\[(error|crit|alert|emerg)\]/, 'no error in the log');
    $n->stop('QUIT');
}

done_testing();
