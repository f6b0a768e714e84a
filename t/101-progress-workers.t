# Nothing acknowledged is lost when workers go: on "nginx -s reload" the
# exiting workers flush before they leave (the flush interval here is an
# hour, so nobody else would), and a worker killed with SIGKILL mid-stream
# loses nothing, since the buffer is shared memory that the other workers
# (and the one the master starts in its place) flush.
#
# A master and two workers; the control server signals them by pid, and
# waits for rows in the database (conditions, no sleeps).

use FindBin;
use lib "$FindBin::Bin/lib";
use VodlmsTest;
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_REDIS_PORT} ||= 6379;
redis_cmd($ENV{TEST_NGINX_REDIS_PORT}, 'SET', 'session:t101-alice', '{"user_id":"1001"}', 'EX', 3600);

my $pg = start_pg();
$ENV{TEST_NGINX_PRIVATE_PG} = $pg->conninfo;

my $servroot = $ENV{TEST_NGINX_SERVROOT} || "$FindBin::Bin/servroot";

sub wait_until {
    my ($what, $cond) = @_;
    for (1 .. 1000) {
        my $v = eval { $cond->() };
        return $v if $v;
        select undef, undef, undef, 0.02;
    }
    return "timed out waiting for $what\n";
}

sub master {
    open my $fh, '<', "$servroot/logs/nginx.pid" or return;
    my $pid = <$fh>;
    chomp $pid;
    return $pid;
}

sub worker_pids {
    my $m = master() or return ();
    return grep {
        # a process may end between the glob and the open or the read: no
        # line, no match
        my $fh;
        my $stat = open($fh, '<', "/proc/$_/stat") ? (<$fh> // '') : '';
        ((split ' ', $stat =~ s/^\d+ \(.*?\) //r)[1] // 0) == $m;
    } map { m{/proc/(\d+)$} ? $1 : () } glob '/proc/[0-9]*';
}

my ($ctl_port, $ctl) = control_server(
    # no waiting here: the old worker proxying this very request only
    # exits after answering it; the row in the database is the condition
    '/reload' => sub {
        kill('HUP', master()) ? "reloaded\n" : "no master\n";
    },
    # the worker that is not busy proxying this request (X-Worker: $pid)
    '/kill-a-worker' => sub {
        my ($path, $query, $body, $h) = @_;
        my $me = $h->{'x-worker'} // $h->{'X-Worker'} // 0;
        my ($w) = grep { $_ != $me } worker_pids() or return "no other worker\n";
        kill 'KILL', $w;
        wait_until('a worker to die', sub { kill(0, $w) ? undef : "killed\n" });
    },
    '/position' => sub {
        my ($path, $query) = @_;
        my ($want) = ($query // '') =~ /is=([\d.]+)/;
        wait_until("position $want", sub {
            my $v = $pg->psql("SELECT position_seconds FROM vodlms.watch_progress"
                            . " WHERE user_id = '1001' AND video_id = 'intro-ready'");
            $v eq $want ? "$v\n" : undef;
        });
    },
);
$ENV{TEST_NGINX_CTL_PORT} = $ctl_port;

master_on();
workers(2);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: a reload: the exiting workers flush what they acknowledged (flush interval: 1 hour)
--- main_config
    load_module $TEST_NGINX_MODULE_PATH;
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
    vodlms_progress_zone zone=progress:1m flush=1h;
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/progress$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_progress on;
    }
    location /ctl/ {
        proxy_set_header X-Worker $pid;
        proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/;
    }
--- request eval
["POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",\"currentTime\":111,\"duration\":634.5}",
 "GET /ctl/reload",
 "GET /ctl/position?is=111.000"]
--- more_headers eval
["Cookie: session=t101-alice", "", ""]
--- error_code eval
[204, 200, 200]
--- response_body eval
["", "reloaded\n", "111.000\n"]
--- timeout: 30
--- no_error_log
[alert]



=== TEST 2: a worker killed with SIGKILL mid-stream: every acknowledged beacon still arrives
--- main_config
    load_module $TEST_NGINX_MODULE_PATH;
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
    vodlms_progress_zone zone=progress:1m flush=300ms;
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/progress$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_progress on;
    }
    location /ctl/ {
        proxy_set_header X-Worker $pid;
        proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/;
    }
--- request eval
["POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",\"currentTime\":222,\"duration\":634.5}",
 "GET /ctl/kill-a-worker",
 "POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",\"currentTime\":333,\"duration\":634.5}",
 "GET /ctl/kill-a-worker",
 "POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",\"currentTime\":444,\"duration\":634.5}",
 "GET /ctl/position?is=444.000"]
--- more_headers eval
["Cookie: session=t101-alice", "", "Cookie: session=t101-alice", "", "Cookie: session=t101-alice", ""]
--- error_code eval
[204, 200, 204, 200, 204, 200]
--- response_body eval
["", "killed\n", "", "killed\n", "", "444.000\n"]
--- timeout: 30
--- no_error_log eval
[qr/\[alert\].*exited on signal (?!9\b)\d+/]
