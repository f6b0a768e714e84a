# Faults leave nothing behind.  One worker serves requests while its
# Redis and its PostgreSQL die and come back, and while silent backends
# time requests out.  Afterwards the worker holds exactly the descriptors
# it held before (no leaked sockets, timers closing what they opened), and
# it answers again without a reload.
#
# The control server counts /proc/<worker>/fd: "mark" remembers the set
# (by kind: socket, pipe, file), "same" compares.  The worker's pid comes
# from the X-Worker header nginx adds to the /ctl/ proxy request.
#
# Checked against a mutant whose Redis read timeout marks the connection
# failed but never frees it: "same" then reports socket=6 before and
# socket=7 after.

use FindBin;
use lib "$FindBin::Bin/lib";
use VodlmsTest;
use Test::Nginx::Socket 'no_plan';

# a Redis and a PostgreSQL that the test stops and starts
my $redis = start_redis();
sub seed {
    $redis->cmd('SET', 'session:t055-alice', '{"user_id":"1001"}', 'EX', 3600);
}
seed();
$ENV{TEST_NGINX_PRIVATE_REDIS_PORT} = $redis->port;

my $pg = start_pg();
$ENV{TEST_NGINX_PRIVATE_PG} = $pg->conninfo;

# accepts connections and never answers
my ($bh_port, $bh) = blackhole();
$ENV{TEST_NGINX_BLACKHOLE_PORT} = $bh_port;

# the worker's descriptors, as "kind" => count (socket, pipe, anon, file)
sub fd_kinds {
    my $pid = shift or return {};
    my %k;
    opendir my $d, "/proc/$pid/fd" or return {};
    for my $fd (grep { /^\d+$/ } readdir $d) {
        my $t = readlink("/proc/$pid/fd/$fd") // next;
        my $kind = $t =~ /^socket:/      ? 'socket'
                 : $t =~ /^pipe:/        ? 'pipe'
                 : $t =~ /^anon_inode:/  ? 'anon'
                 :                         'file';
        $k{$kind}++;
    }
    return \%k;
}

sub show { my $k = shift; join ' ', map { "$_=$k->{$_}" } sort keys %$k }

my $mark;
my ($ctl_port, $ctl) = control_server(
    '/mark' => sub {
        my ($path, $query, $body, $h) = @_;
        $mark = fd_kinds($h->{'x-worker'});
        %$mark ? "marked\n" : "no worker\n";
    },
    '/same' => sub {
        my ($path, $query, $body, $h) = @_;
        my $now = fd_kinds($h->{'x-worker'});
        show($now) eq show($mark // {}) ? "same\n"
            : "before: " . show($mark // {}) . "; after: " . show($now) . "\n";
    },
    '/redis/stop'  => sub { $redis->stop; "stopped\n" },
    '/redis/start' => sub {
        unless ($redis->running) { $redis->start; seed(); }
        "started\n";
    },
    '/redis/freeze' => sub { kill('STOP', $redis->pid) ? "frozen\n" : "no redis\n" },
    '/redis/thaw'   => sub { kill('CONT', $redis->pid) ? "thawed\n" : "no redis\n" },
    '/pg/stop'     => sub { $pg->stop; "stopped\n" },
    '/pg/start'    => sub { $pg->start; "started\n" },
);
$ENV{TEST_NGINX_CTL_PORT} = $ctl_port;

master_on();
workers(1);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: Redis and PostgreSQL die and come back, backends fall silent: no descriptor leaks
--- main_config
    load_module $TEST_NGINX_MODULE_PATH;
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_PRIVATE_REDIS_PORT timeout=300ms connect_timeout=300ms;
    # PostgreSQL is only stopped and started here, never silent: a generous
    # timeout, since the first connection to a server just started (a new
    # backend, cold catalogs) can take longer than 300 ms on a loaded machine
    vodlms_pg "$TEST_NGINX_PRIVATE_PG" timeout=2s connect_timeout=2s;
--- config
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        proxy_set_header X-Answer "$vodlms_user_id $vodlms_video_status";
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
    location /app/ { return 200 "$http_x_answer\n"; }
    location /ctl/ {
        proxy_set_header X-Worker $pid;
        proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/;
    }
--- request eval
[
 # warm: one pooled connection to each backend
 "GET /videos/intro-ready/meta", "GET /videos/intro-ready/meta",
 "GET /ctl/mark",
 # Redis dies: 503; comes back: answers again
 "GET /ctl/redis/stop", "GET /videos/intro-ready/meta",
 "GET /ctl/redis/start", "GET /videos/intro-ready/meta",
 # Redis falls silent (SIGSTOP): the request times out, nginx drops that
 # connection; Redis wakes up: answers again on a new one
 "GET /ctl/redis/freeze", "GET /videos/intro-ready/meta",
 "GET /ctl/redis/thaw", "GET /videos/intro-ready/meta",
 # PostgreSQL dies: 503; comes back: answers again
 "GET /ctl/pg/stop", "GET /videos/intro-ready/meta",
 "GET /ctl/pg/start", "GET /videos/intro-ready/meta",
 # hostile ids: refused before any backend is asked
 "GET /videos/..%5C..%5Cetc%5Cpasswd/meta", "GET /videos/x'%3BDROP%20TABLE%20videos--/meta",
 "GET /videos/intro-ready/meta",
 "GET /ctl/same",
]
--- more_headers eval
[
 "Cookie: session=t055-alice", "Cookie: session=t055-alice",
 "",
 "", "Cookie: session=t055-alice",
 "", "Cookie: session=t055-alice",
 "", "Cookie: session=t055-alice",
 "", "Cookie: session=t055-alice",
 "", "Cookie: session=t055-alice",
 "", "Cookie: session=t055-alice",
 "Cookie: session=t055-alice", "Cookie: session=t055-alice",
 "Cookie: session=t055-alice",
 "",
]
--- error_code eval
[200, 200, 200,
 200, 503, 200, 200,
 200, 503, 200, 200,
 200, 503, 200, 200,
 400, 400, 200,
 200]
--- response_body_like eval
["^1001 ready\n\$", "^1001 ready\n\$", "^marked\n\$",
 "^stopped\n\$", "\"backend_unavailable\"", "^started\n\$", "^1001 ready\n\$",
 "^frozen\n\$", "\"backend_timeout\"", "^thawed\n\$", "^1001 ready\n\$",
 "^stopped\n\$", "\"database_unavailable\"", "^started\n\$", "^1001 ready\n\$",
 "\"bad_video_id\"", "\"bad_video_id\"", "^1001 ready\n\$",
 "^same\n\$"]
--- timeout: 60
--- no_error_log
[alert]
[crit]
