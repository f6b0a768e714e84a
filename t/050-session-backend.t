# Redis as a backend: down, silent, restarted, password-protected, on
# another database or a unix socket.  A dead or silent Redis costs a request
# its timeout (503 + Retry-After), never the worker: the non-blocking proof
# below has one nginx worker serve another location while a gated request
# waits on a Redis that accepts connections and never answers.

use FindBin;
use lib "$FindBin::Bin/lib";
use VodlmsTest;
use IO::Socket::INET;
use Test::Nginx::Socket 'no_plan';

# a Redis the test stops and starts between requests to the same nginx
my $redis = start_redis(unixsocket => 1);
$ENV{TEST_NGINX_PRIVATE_REDIS_PORT} = $redis->port;
$ENV{TEST_NGINX_PRIVATE_REDIS_SOCKET} = $redis->unixsocket;

# Redis restarts empty (no persistence): seed again after every start.
# The db-3 session is created in 0 and MOVEd: each helper call is a new
# connection, so SELECT would not stick.
sub seed {
    $redis->cmd('SET', 'session:t050-alice', '{"user_id":42}', 'EX', 3600);
    $redis->cmd('SET', 'session:t050-db3', '{"user_id":303}', 'EX', 3600);
    $redis->cmd('MOVE', 'session:t050-db3', 3);
}
seed();

# a password-protected Redis with an ACL user, as managed Redis services run
my $locked = start_redis(requirepass => 'r3d1s-pw', acl_user => 'vodlms',
                         acl_password => 'acl-pw');
$locked->cmd('SET', 'session:t050-alice', '{"user_id":42}', 'EX', 3600);
$ENV{TEST_NGINX_LOCKED_REDIS_PORT} = $locked->port;

# TEST 4's own silent Redis, and the proof's second request: sent only once
# nginx's connection to that Redis sits in its accept queue, i.e. once the
# gated request is waiting on it.  A condition, not a sleep.
my ($proof_port, $proof_bh) = blackhole();
$ENV{TEST_NGINX_PROOF_BLACKHOLE_PORT} = $proof_port;

sub fetch_fast_once_redis_is_waited_on {
    my $rin = '';
    vec($rin, fileno($proof_bh), 1) = 1;
    select(my $rout = $rin, undef, undef, 10) > 0
        or return "nginx never connected to the silent redis\n";

    my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ENV{TEST_NGINX_SERVER_PORT},
                                  Timeout => 10)
        or return "cannot connect to nginx: $!\n";
    print $c "GET /fast HTTP/1.0\r\nHost: localhost\r\n\r\n";
    local $/;
    my $resp = <$c> // '';
    $resp =~ s/\A.*?\r\n\r\n//s;
    return $resp;
}

my ($ctl_port, $ctl) = control_server(
    '/proof/fast'  => sub { fetch_fast_once_redis_is_waited_on() },
    '/redis/stop'  => sub { $redis->stop; "stopped\n" },
    '/redis/start' => sub {
        unless ($redis->running) {
            $redis->start;
            seed();
        }
        "started\n";
    },
);
$ENV{TEST_NGINX_CTL_PORT} = $ctl_port;

# accepts connections, never answers
my ($bh_port, $bh) = blackhole();
$ENV{TEST_NGINX_BLACKHOLE_PORT} = $bh_port;

# nothing listens here
$ENV{TEST_NGINX_DEAD_PORT} = free_port();

# every block loads the module, and has these http{} lines unless it has its own
block_defaults(http_config => <<'EOF');
    vodlms_redis 127.0.0.1:$TEST_NGINX_PRIVATE_REDIS_PORT;
EOF

no_shuffle();
run_tests();

__DATA__

=== TEST 1: Redis refusing connections: 503 at once, Retry-After, a JSON reason, one error line
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_DEAD_PORT;
--- config
    location = /t {
        vodlms_auth on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- more_headers
Cookie: session=t050-alice
--- error_code: 503
--- response_headers
Retry-After: 2
Content-Type: application/json
Cache-Control: no-store
--- response_body
{"error":"backend_unavailable","message":"session store unavailable"}
--- error_log eval
qr/\[error\] .*vodlms: session store unavailable: redis 127\.0\.0\.1:\d+ connect failed: Connection refused, answering 503/
--- no_error_log
[alert]
[crit]



=== TEST 2: vodlms_retry_after sets the Retry-After of 503 answers
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_DEAD_PORT;
    vodlms_retry_after 30s;
--- config
    location = /t {
        vodlms_auth on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- more_headers
Cookie: session=t050-alice
--- error_code: 503
--- response_headers
Retry-After: 30



=== TEST 3: a silent Redis: 503 backend_timeout when the configured timeout fires
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_BLACKHOLE_PORT timeout=300ms;
--- config
    location = /t {
        vodlms_auth on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- more_headers
Cookie: session=t050-alice
--- error_code: 503
--- response_headers
Retry-After: 2
--- response_body
{"error":"backend_timeout","message":"session store timed out"}
--- error_log eval
qr/vodlms: session store timed out: redis 127\.0\.0\.1:\d+ read timed out after 300 ms, answering 503/



=== TEST 4: the non-blocking proof: while a gated request waits on a silent Redis, the same worker serves another request
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_PROOF_BLACKHOLE_PORT timeout=2s;
    # the order in which requests finish, as nginx itself logs them
    log_format order '$uri $status';
--- config
    # SSI starts both includes at once.  The gated one connects to the
    # silent Redis and waits; the other goes through the control server,
    # which asks nginx for /fast only once that Redis connection exists.
    # One worker: if waiting on Redis blocked it, /fast could only finish
    # after /gated.
    location = /probe.html { ssi on; }
    location = /p/gated { proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/gated; }
    location = /p/fast  { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/proof/fast; }

    location = /gated {
        vodlms_auth on;
        access_log logs/order.log order;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /fast {
        access_log logs/order.log order;
        return 200 "fast\n";
    }
    location = /app { return 200 "app\n"; }
    location = /order { alias logs/order.log; }
--- user_files
>>> probe.html
<!--# include virtual="/p/gated" --><!--# include virtual="/p/fast" -->
--- pipelined_requests eval
["GET /probe.html", "GET /order"]
--- more_headers
Cookie: session=t050-alice
--- response_body eval
["{\"error\":\"backend_timeout\",\"message\":\"session store timed out\"}\nfast\n\n",
 "/fast 200\n/gated 503\n"]
--- timeout: 15
--- no_error_log
[alert]
[crit]



=== TEST 5: recovery without a reload: Redis stopped (503), started again (200)
--- config
    location = /t {
        vodlms_auth on;
        proxy_set_header X-User $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "user=$http_x_user\n"; }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- pipelined_requests eval
["GET /ctl/redis/stop", "GET /t", "GET /ctl/redis/start", "GET /t"]
--- more_headers
Cookie: session=t050-alice
--- error_code eval
[200, 503, 200, 200]
--- response_body eval
["stopped\n",
 "{\"error\":\"backend_unavailable\",\"message\":\"session store unavailable\"}\n",
 "started\n", "user=42\n"]



=== TEST 6: Redis restarted under a pooled keep-alive connection: 503 while down, then back
--- config
    location = /t {
        vodlms_auth on;
        proxy_set_header X-User $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "user=$http_x_user\n"; }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- pipelined_requests eval
["GET /ctl/redis/start", "GET /t", "GET /ctl/redis/stop", "GET /t",
 "GET /ctl/redis/start", "GET /t", "GET /t"]
--- more_headers
Cookie: session=t050-alice
--- error_code eval
[200, 200, 200, 503, 200, 200, 200]
--- response_body eval
["started\n", "user=42\n", "stopped\n",
 "{\"error\":\"backend_unavailable\",\"message\":\"session store unavailable\"}\n",
 "started\n", "user=42\n", "user=42\n"]
--- no_error_log
[alert]
[crit]



=== TEST 7: many concurrent gated requests share a pool of two pipelined connections
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_PRIVATE_REDIS_PORT pool_size=2;
--- config
    location = /many.html { ssi on; }
    location = /p { proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/t; }
    location = /t {
        vodlms_auth on;
        proxy_set_header X-User $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "$http_x_user,"; }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- user_files
>>> many.html
<!--# include virtual="/p" --><!--# include virtual="/p" --><!--# include virtual="/p" --><!--# include virtual="/p" --><!--# include virtual="/p" --><!--# include virtual="/p" --><!--# include virtual="/p" --><!--# include virtual="/p" -->
--- pipelined_requests eval
["GET /ctl/redis/start", "GET /many.html"]
--- more_headers
Cookie: session=t050-alice
--- response_body eval
["started\n", "42,42,42,42,42,42,42,42,\n"]
--- no_error_log
[error]



=== TEST 8: a unix-socket Redis
--- http_config
    vodlms_redis unix:$TEST_NGINX_PRIVATE_REDIS_SOCKET;
--- config
    location = /t {
        vodlms_auth on;
        proxy_set_header X-User $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "user=$http_x_user\n"; }
--- request
GET /t
--- more_headers
Cookie: session=t050-alice
--- response_body
user=42



=== TEST 9: db= selects the Redis database
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_PRIVATE_REDIS_PORT db=3;
--- config
    location = /t {
        vodlms_auth on;
        proxy_set_header X-User $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "user=$http_x_user\n"; }
--- request
GET /t
--- more_headers
Cookie: session=t050-db3
--- response_body
user=303



=== TEST 10: the same key is not found in database 0
--- config
    location = /t {
        vodlms_auth on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- more_headers
Cookie: session=t050-db3
--- error_code: 401



=== TEST 11: password= authenticates to a protected Redis
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_LOCKED_REDIS_PORT password=r3d1s-pw;
--- config
    location = /t {
        vodlms_auth on;
        proxy_set_header X-User $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "user=$http_x_user\n"; }
--- request
GET /t
--- more_headers
Cookie: session=t050-alice
--- response_body
user=42



=== TEST 12: user= and password= authenticate as an ACL user
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_LOCKED_REDIS_PORT user=vodlms password=acl-pw;
--- config
    location = /t {
        vodlms_auth on;
        proxy_set_header X-User $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "user=$http_x_user\n"; }
--- request
GET /t
--- more_headers
Cookie: session=t050-alice
--- response_body
user=42



=== TEST 13: a wrong password: 503, and the log names AUTH but never the password
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_LOCKED_REDIS_PORT password=wrong-pw-123;
--- config
    location = /t {
        vodlms_auth on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- more_headers
Cookie: session=t050-alice
--- error_code: 503
--- error_log eval
qr/session store unavailable: redis 127\.0\.0\.1:\d+ AUTH rejected: WRONGPASS/
--- no_error_log
wrong-pw-123



=== TEST 14: no password for a protected Redis: Redis' NOAUTH error is a 503, not a bad session
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_LOCKED_REDIS_PORT;
--- config
    location = /t {
        vodlms_auth on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- more_headers
Cookie: session=t050-alice
--- error_code: 503
--- response_body
{"error":"backend_unavailable","message":"session store unavailable"}
--- error_log
session store unavailable: redis said: NOAUTH
