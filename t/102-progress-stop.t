# A fast shutdown ("nginx -s stop", SIGTERM) loses no acknowledged beacon:
# the workers leave at once, without their timers, so each writes what is
# still dirty on its way out (ngx_http_vodlms_progress_exit).  And when
# PostgreSQL is down or silent at that moment, the loss is not silent: an
# [alert] line says how many entries were not written.  And a worker
# killed with its flush on the way leaves no claim that makes the others
# wait.
#
# Plain Test::More: the test signals the master itself and waits for it,
# which Test::Nginx's blocks cannot do.  nginx runs as a direct child of
# this script (fork + exec, then waitpid), with two workers, a flush
# interval of an hour (so nothing but the shutdown writes), a private
# PostgreSQL and the suite's Redis.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use HTTP::Tiny;
use POSIX qw(WNOHANG);
use Test::More;
use VodlmsTest;

my $module = $ENV{TEST_NGINX_MODULE_PATH}
    or plan skip_all => 'TEST_NGINX_MODULE_PATH is not set (./build.sh test sets it)';
my $nginx = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
my $redis_port = $ENV{TEST_NGINX_REDIS_PORT} || 6379;

redis_cmd($redis_port, 'SET', 'session:t102-alice', '{"user_id":"1001"}', 'EX', 3600);

my $pg = start_pg();

# poll a condition (up to 10 s); its last value, true or not
sub wait_for {
    my ($cond) = @_;
    my $v;
    for (1 .. 500) {
        last if $v = $cond->();
        select undef, undef, undef, 0.02;
    }
    return $v;
}

# one nginx, started, fed beacons, stopped with SIGTERM (or signal =>
# 'QUIT'); returns the error log
sub fast_stop_after_beacons {
    my (%o) = (flush => '1h', workers => 2, http => '', pg => '', signal => 'TERM', @_);

    my $dir = tempdir('vodlms-t102-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    chmod 0755, $dir;
    mkdir "$dir/logs";
    my $port = free_port();
    my $conninfo = $pg->conninfo;

    open my $conf, '>', "$dir/nginx.conf" or die $!;
    print $conf <<"CONF";
load_module $module;
daemon off;
master_process on;
worker_processes $o{workers};
error_log $dir/logs/error.log notice;
pid $dir/logs/nginx.pid;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;

    vodlms_redis 127.0.0.1:$redis_port;
    vodlms_pg "$conninfo"$o{pg};
    vodlms_progress_zone zone=progress:1m flush=$o{flush};
$o{http}

    server {
        listen 127.0.0.1:$port;
        location ~ ^/api/videos/(?<vid>[^/]+)/progress\$ {
            vodlms_auth on;
            vodlms_enrollment_check on;
            vodlms_video_id \$vid;
            vodlms_progress on;
        }
    }
}
CONF
    close $conf;

    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        exec $nginx, '-p', $dir, '-c', "$dir/nginx.conf", '-e', "$dir/logs/error.log";
        die "exec $nginx: $!";
    }

    my $http = HTTP::Tiny->new(timeout => 10);
    ok(wait_for(sub { IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port") }),
       "$o{label}: nginx is up");

    for my $t (@{ $o{positions} }) {
        select undef, undef, undef, $o{pause} if $o{pause} && $t != $o{positions}[0];
        my $res = $http->post("http://127.0.0.1:$port/api/videos/intro-ready/progress", {
            headers => { 'Cookie' => 'session=t102-alice', 'Content-Type' => 'text/plain' },
            content => qq({"videoId":"intro-ready","currentTime":$t,"duration":634.5}),
        });
        is($res->{status}, 204, "$o{label}: beacon at $t acknowledged");
    }

    is(position(), $o{before}, "$o{label}: nothing written before the stop (flush=1h)")
        if defined $o{before};

    $o{before_stop}->($pid) if $o{before_stop};

    kill $o{signal}, $pid;
    my $gone = wait_for(sub { waitpid($pid, WNOHANG) == $pid });
    ok($gone, "$o{label}: nginx exited after SIG$o{signal}");
    unless ($gone) {
        kill 'KILL', $pid;
        waitpid $pid, 0;
    }

    open my $log, '<', "$dir/logs/error.log" or die $!;
    local $/;
    return <$log>;
}

sub watched {
    return $pg->psql("SELECT watched_seconds FROM vodlms.watch_progress"
                   . " WHERE user_id = '1001' AND video_id = 'intro-ready'");
}

# flushes of the slow query running now (and started after $since)
sub sleeping_flushes {
    my ($since) = @_;
    return $pg->psql("SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                   . " AND query LIKE '%pg_sleep(2)%' AND pid <> pg_backend_pid()"
                   . ($since ? " AND query_start > '$since'" : ''));
}

sub position {
    return $pg->psql("SELECT coalesce(max(position_seconds)::text, 'none') FROM vodlms.watch_progress"
                   . " WHERE user_id = '1001' AND video_id = 'intro-ready'");
}

$pg->psql("DELETE FROM vodlms.watch_progress WHERE user_id = '1001'");

my $log = fast_stop_after_beacons(
    label     => 'database up',
    positions => [111, 222],
    before    => 'none',
);
is(position(), '222.000', 'database up: the last acknowledged position is in the database');
unlike($log, qr/\[(alert|crit|emerg)\]/, 'database up: no [alert], [crit] or [emerg] in the log');
like($log, qr/signal 15 \(SIGTERM\) received/, 'database up: the master was told to stop fast (SIGTERM)');

$log = fast_stop_after_beacons(
    label       => 'database down',
    positions   => [333],
    before      => '222.000',
    before_stop => sub { $pg->stop },
);
like($log, qr/\[alert\] .*vodlms progress: fast shutdown with 1 acknowledged entries not confirmed written/,
     'database down: one [alert] line says what was not written');

$pg->start;
is(position(), '222.000', 'database down: the database is as it was');

# a database that accepts and never answers: the postmaster stopped with
# SIGSTOP takes connections into its backlog and starts no backend.  The
# worker gives up on its own deadline, well before the master's SIGKILL,
# so its [alert] is written.
$log = fast_stop_after_beacons(
    label       => 'database silent',
    positions   => [444],
    before      => '222.000',
    before_stop => sub { kill 'STOP', $pg->pid },
);
kill 'CONT', $pg->pid;
like($log, qr/\[error\] .*vodlms progress: flush of 1 entries failed, kept for the next try: connect timed out/,
     'database silent: the flush gave up on its deadline');
like($log, qr/\[alert\] .*vodlms progress: fast shutdown with 1 acknowledged entries not confirmed written/,
     'database silent: the worker lived to say what was not written');
is(position(), '222.000', 'database silent: the database is as it was');

# A flush already sent when SIGTERM comes: PostgreSQL commits it after the
# worker has gone.  The exit flush must not add its watched seconds again.
# The flush query sleeps 2 s, longer than the exit flush's 1 s deadline;
# both statements are then left to the server, which commits them both.
# Two beacons 1.2 s apart, 1 s of video: exactly 1 watched second to
# credit.  SIGTERM goes while a flush that started after the second beacon
# (so it carries that second) is running.
my $w0 = watched();
my $slow = q{vodlms_progress_flush_query "INSERT INTO vodlms.watch_progress AS wp (user_id, video_id, position_seconds, max_position_seconds, duration_seconds, watched_seconds, completed_at) SELECT b.u, b.v, b.p, b.m, b.d, b.w, CASE WHEN b.c > 0 THEN to_timestamp(b.c) END FROM unnest($1::text[], $2::text[], $3::numeric[], $4::numeric[], $5::numeric[], $6::numeric[], $7::float8[]) AS b(u, v, p, m, d, w, c) JOIN (SELECT pg_sleep(2)) AS pause ON true ON CONFLICT (user_id, video_id) DO UPDATE SET position_seconds = EXCLUDED.position_seconds, max_position_seconds = greatest(wp.max_position_seconds, EXCLUDED.max_position_seconds), duration_seconds = EXCLUDED.duration_seconds, watched_seconds = wp.watched_seconds + EXCLUDED.watched_seconds, completed_at = coalesce(wp.completed_at, EXCLUDED.completed_at)";};
$log = fast_stop_after_beacons(
    label       => 'flush in flight',
    workers     => 1,
    flush       => '1s',
    http        => $slow,
    positions   => [10, 11],
    pause       => 1.2,
    before_stop => sub {
        my $since = $pg->psql("SELECT clock_timestamp()");
        is(wait_for(sub { sleeping_flushes($since) }), 1, 'flush in flight: a flush with the watched second is running at SIGTERM');
    },
);
wait_for(sub { sleeping_flushes() == 0 });
is(sprintf('%.3f', watched() - $w0), '1.000',
   'flush in flight: the watched second is credited once, not twice');
is(position(), '11.000', 'flush in flight: the last position is in the database');

# A worker killed while its flush is on its way leaves its claim behind.
# Another worker takes over at once (the claim's pid names no process),
# not only once the claim is older than a query can take (here 31 s: the
# query timeout=30s plus flush=1s):
# otherwise the exit flush below would wait out its 1 s and give up.  The
# flush query sleeps 3 s while the marker row exists, so there is time to
# kill the workers during the first flush; the marker is gone before the
# master's new workers flush.
$pg->psql("CREATE TABLE t102_marker (x int)");
$pg->psql(q{CREATE FUNCTION t102_pause() RETURNS void LANGUAGE sql AS $$ SELECT pg_sleep(CASE WHEN EXISTS (SELECT 1 FROM t102_marker) THEN 3 ELSE 0 END) $$});
$pg->psql("INSERT INTO t102_marker VALUES (1)");
(my $marked = $slow) =~ s/pg_sleep\(2\)/t102_pause()/ or die 'no pg_sleep(2) in the slow query';

# the worker processes of a master, from /proc
sub workers_of {
    my ($master) = @_;
    my @w;
    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $fh, '<', $stat or next;
        my $line = <$fh> // next;
        my ($pid, $ppid) = $line =~ /^(\d+) \(.*\) \S+ (\d+) / or next;
        push @w, $pid if $ppid == $master;
    }
    return @w;
}

my @killed;
$log = fast_stop_after_beacons(
    label       => 'flusher killed',
    workers     => 2,
    flush       => '1s',
    pg          => ' timeout=30s',
    http        => $marked,
    positions   => [20],
    before_stop => sub {
        my ($master) = @_;
        ok(wait_for(sub { $pg->psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'"
                                  . " AND query LIKE '%t102_pause()%' AND pid <> pg_backend_pid()") == 1 }),
           'flusher killed: a flush is on its way');
        @killed = workers_of($master);
        is(scalar @killed, 2, 'flusher killed: two workers to kill');
        kill 'KILL', @killed;
        ok(wait_for(sub { !grep { kill 0, $_ } @killed }), 'flusher killed: both workers are gone');
        $pg->psql("DELETE FROM t102_marker");
        ok(wait_for(sub { my @w = workers_of($master); @w == 2 }),
           'flusher killed: the master started two new workers');
    },
);
my ($dead) = $log =~ /\[warn\] .*vodlms progress: worker process (\d+) exited during its flush; its entries are written again by process \d+/;
ok($dead && grep({ $_ == $dead } @killed),
   'flusher killed: a new worker took over the dead worker\'s flush, and said so')
    or diag($log);
unlike($log, qr/vodlms progress: fast shutdown with/,
       'flusher killed: no [alert] of unwritten entries: the exit flush did not wait for a dead claim');
unlike($log, qr/\[(crit|emerg)\]/, 'flusher killed: no [crit] or [emerg] (the [alert]s are the master\'s, on the SIGKILLs)');
wait_for(sub { $pg->psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%t102_pause()%'"
                       . " AND state = 'active' AND pid <> pg_backend_pid()") == 0 });
is(position(), '20.000', 'flusher killed: the acknowledged position is in the database');

# A graceful stop ("nginx -s quit") right after a beacon: the worker that
# acknowledged it does not leave before a flush has written it.  Before:
# its flush timer stayed cancelable until its next tick (up to 500 ms
# later), so a stop inside that window let every worker leave at once and
# lost the beacon (a reload left it in the zone for the new workers, to be
# written only at their flush interval: t/101 TEST 1 failed by chance).
# Three times, since each stop lands at a random point of the tick.
for my $t (31, 32, 33) {
    $log = fast_stop_after_beacons(
        label     => "graceful stop right after a beacon ($t)",
        signal    => 'QUIT',
        positions => [$t],
    );
    is(position(), "$t.000", "graceful stop right after a beacon ($t): the beacon is in the database");
    unlike($log, qr/\[(alert|crit|emerg)\]/, "graceful stop right after a beacon ($t): no [alert], [crit] or [emerg]");
}

done_testing();
