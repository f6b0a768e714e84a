# A fast shutdown ("nginx -s stop", SIGTERM) loses no acknowledged beacon:
# the workers leave at once, without their timers, so each writes what is
# still dirty on its way out (ngx_http_vodlms_progress_exit).  And when
# PostgreSQL is down or silent at that moment, the loss is not silent: an
# [alert] line says how many entries were not written.
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

# one nginx, started, fed beacons, stopped with SIGTERM; returns the error log
sub fast_stop_after_beacons {
    my (%o) = @_;

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
worker_processes 2;
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
    vodlms_pg "$conninfo";
    vodlms_progress_zone zone=progress:1m flush=1h;

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
    my $up;
    for (1 .. 250) {
        last if $up = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port");
        select undef, undef, undef, 0.02;
    }
    ok($up, "$o{label}: nginx is up");

    for my $t (@{ $o{positions} }) {
        my $res = $http->post("http://127.0.0.1:$port/api/videos/intro-ready/progress", {
            headers => { 'Cookie' => 'session=t102-alice', 'Content-Type' => 'text/plain' },
            content => qq({"videoId":"intro-ready","currentTime":$t,"duration":634.5}),
        });
        is($res->{status}, 204, "$o{label}: beacon at $t acknowledged");
    }

    is(position(), $o{before}, "$o{label}: nothing written before the stop (flush=1h)");

    $o{before_stop}->() if $o{before_stop};

    kill 'TERM', $pid;
    my $gone;
    for (1 .. 500) {
        last if $gone = waitpid($pid, WNOHANG) == $pid;
        select undef, undef, undef, 0.02;
    }
    ok($gone, "$o{label}: nginx exited after SIGTERM");
    unless ($gone) {
        kill 'KILL', $pid;
        waitpid $pid, 0;
    }

    open my $log, '<', "$dir/logs/error.log" or die $!;
    local $/;
    return <$log>;
}

sub position {
    return $pg->psql("SELECT coalesce(max(position_seconds)::text, 'none') FROM watch_progress"
                   . " WHERE user_id = '1001' AND video_id = 'intro-ready'");
}

$pg->psql("DELETE FROM watch_progress WHERE user_id = '1001'");

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
like($log, qr/\[alert\] .*vodlms progress: fast shutdown with 1 acknowledged entries not written/,
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
like($log, qr/\[alert\] .*vodlms progress: fast shutdown with 1 acknowledged entries not written/,
     'database silent: the worker lived to say what was not written');
is(position(), '222.000', 'database silent: the database is as it was');

done_testing();
