# The shared-memory session cache: hits skip Redis entirely, answers never
# outlive the session key, failures are never cached, and the negative TTL
# is the revocation latency for sessions created after a miss.
#
# A private redis-server that the test can stop and start between requests
# to the same running nginx, through a control server that nginx proxies to
# (/ctl/...).  /as/<who> locations send a fixed cookie to the gated /t, so
# one block can speak for several users.

use FindBin;
use lib "$FindBin::Bin/lib";
use VodlmsTest;
use JSON::PP ();
use Test::Nginx::Socket 'no_plan';

my $redis = start_redis();
$ENV{TEST_NGINX_PRIVATE_REDIS_PORT} = $redis->port;

our ($express_key, $express_value);

sub seed {
    $redis->cmd('SET', $express_key, $express_value, 'EX', 3600) if $express_key;
    $redis->cmd('SET', 'session:t040-alice', '{"user_id":42}', 'EX', 3600);
    $redis->cmd('SET', 'session:t040-bob', '{"user_id":43}', 'EX', 3600);
    $redis->cmd('DEL', 'session:t040-late', 'session:t040-short');
}
seed();

# express cookies for the signature-on-hit block, minted by the real packages
my $mint = `node $FindBin::Bin/fixtures/express/mint.js --redis-port $ENV{TEST_NGINX_PRIVATE_REDIS_PORT} --secret 'keyboard cat' --user 46`;
die "mint.js failed\n" if $?;
our $express = JSON::PP::decode_json($mint);
(our $express_tampered = $express->{cookie_value}) =~ s/(.)$/$1 eq 'A' ? 'B' : 'A'/e;
# Redis restarts empty: seed() re-creates the key from the minted value
$express_key = $express->{redis_key};
$express_value = $express->{redis_value};


my ($ctl_port, $ctl) = control_server(
    '/redis/stop'  => sub { $redis->stop; "stopped\n" },
    '/redis/start' => sub { $redis->start unless $redis->running; seed(); "started\n" },
    '/redis/resetstat' => sub { $redis->cmd('CONFIG', 'RESETSTAT'); "reset\n" },
    # how many GET commands Redis has executed since the last reset
    '/redis/gets'  => sub {
        my $info = $redis->cmd('INFO', 'commandstats');
        my ($n) = $info =~ /^cmdstat_get:calls=(\d+)/m;
        ($n // 0) . "\n";
    },
    '/seed/late'   => sub { $redis->cmd('SET', 'session:t040-late', '{"user_id":44}', 'EX', 3600); "seeded\n" },
    '/seed/short'  => sub { $redis->cmd('SET', 'session:t040-short', '{"user_id":45}', 'PX', 400); "seeded\n" },
    # a condition wait, not a sleep: Redis itself says the key is gone
    '/wait/short-gone' => sub {
        for (1 .. 200) {
            return "gone\n" unless $redis->cmd('EXISTS', 'session:t040-short');
            select undef, undef, undef, 0.02;
        }
        "still there\n";
    },
);
$ENV{TEST_NGINX_CTL_PORT} = $ctl_port;

# every block loads the module, and has these http{} lines unless it has its own
block_defaults(http_config => <<'EOF');
    vodlms_redis 127.0.0.1:$TEST_NGINX_PRIVATE_REDIS_PORT;
    vodlms_cache_zone zone=sessions:1m;
EOF

no_shuffle();
run_tests();

__DATA__

=== TEST 1: the first request asks Redis, the next is a cache hit
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_cache sessions valid=1m invalid=10s;
        proxy_set_header X-User $vodlms_user_id;
        proxy_set_header X-Cache $vodlms_session_cache;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "user=$http_x_user cache=$http_x_cache\n"; }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- pipelined_requests eval
["GET /ctl/redis/start", "GET /t", "GET /t"]
--- more_headers
Cookie: session=t040-alice
--- response_body eval
["started\n", "user=42 cache=MISS\n", "user=42 cache=HIT\n"]
--- no_error_log
[error]



=== TEST 2: five requests, one GET in Redis: hits skip Redis entirely
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_cache sessions valid=1m;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "ok\n"; }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- pipelined_requests eval
["GET /ctl/redis/start", "GET /ctl/redis/resetstat",
 "GET /t", "GET /t", "GET /t", "GET /t", "GET /t", "GET /ctl/redis/gets"]
--- more_headers
Cookie: session=t040-alice
--- response_body eval
["started\n", "reset\n", "ok\n", "ok\n", "ok\n", "ok\n", "ok\n", "1\n"]



=== TEST 3: without the cache every request is a GET in Redis
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_PRIVATE_REDIS_PORT;
--- config
    location = /t {
        vodlms_auth on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "ok\n"; }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- pipelined_requests eval
["GET /ctl/redis/start", "GET /ctl/redis/resetstat",
 "GET /t", "GET /t", "GET /t", "GET /ctl/redis/gets"]
--- more_headers
Cookie: session=t040-alice
--- response_body eval
["started\n", "reset\n", "ok\n", "ok\n", "ok\n", "3\n"]



=== TEST 4: with Redis stopped, a cached session is still served; an uncached one is 503
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_cache sessions valid=1m;
        proxy_set_header X-User $vodlms_user_id;
        proxy_set_header X-Cache $vodlms_session_cache;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "user=$http_x_user cache=$http_x_cache\n"; }
    location = /as/alice {
        proxy_set_header Cookie "session=t040-alice";
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/t;
    }
    location = /as/bob {
        proxy_set_header Cookie "session=t040-bob";
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/t;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- pipelined_requests eval
["GET /ctl/redis/start", "GET /as/alice", "GET /ctl/redis/stop",
 "GET /as/alice", "GET /as/bob", "GET /ctl/redis/start"]
--- error_code eval
[200, 200, 200, 200, 503, 200]
--- response_body eval
["started\n", "user=42 cache=MISS\n", "stopped\n",
 "user=42 cache=HIT\n",
 "{\"error\":\"backend_unavailable\",\"message\":\"session store unavailable\"}\n",
 "started\n"]



=== TEST 5: a backend failure is never cached: Redis back, the next request succeeds
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_cache sessions valid=1m invalid=1m;
        proxy_set_header X-User $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "user=$http_x_user\n"; }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- pipelined_requests eval
["GET /ctl/redis/stop", "GET /t", "GET /ctl/redis/start", "GET /t"]
--- more_headers
Cookie: session=t040-alice
--- error_code eval
[200, 503, 200, 200]
--- response_body eval
["stopped\n",
 "{\"error\":\"backend_unavailable\",\"message\":\"session store unavailable\"}\n",
 "started\n", "user=42\n"]



=== TEST 6: the negative TTL: a session created after a miss waits out "invalid="
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_cache sessions valid=1m invalid=1m;
        add_header X-Cache $vodlms_session_cache always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "ok\n"; }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
    location /seed/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT; }
--- pipelined_requests eval
["GET /ctl/redis/start", "GET /t", "GET /seed/late", "GET /t"]
--- more_headers
Cookie: session=t040-late
--- error_code eval
[200, 401, 200, 401]
--- response_headers eval
["", "X-Cache: MISS", "", "X-Cache: HIT"]



=== TEST 7: "invalid=0" turns the negative cache off: the new session works at once
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_cache sessions valid=1m invalid=0;
        proxy_set_header X-User $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "user=$http_x_user\n"; }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
    location /seed/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT; }
--- pipelined_requests eval
["GET /ctl/redis/start", "GET /t", "GET /seed/late", "GET /t"]
--- more_headers
Cookie: session=t040-late
--- error_code eval
[200, 401, 200, 200]
--- response_body eval
["started\n",
 "{\"error\":\"unknown_session\",\"message\":\"unknown or expired session\"}\n",
 "seeded\n", "user=44\n"]



=== TEST 8: a cached answer never outlives the session key in Redis
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_cache sessions valid=1h invalid=0;
        proxy_set_header X-User $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "user=$http_x_user\n"; }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
    location /seed/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT; }
    location /wait/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT; }
--- pipelined_requests eval
["GET /ctl/redis/start", "GET /seed/short", "GET /t", "GET /wait/short-gone", "GET /t"]
--- more_headers
Cookie: session=t040-short
--- error_code eval
[200, 200, 200, 200, 401]
--- response_body eval
["started\n", "seeded\n", "user=45\n", "gone\n",
 "{\"error\":\"unknown_session\",\"message\":\"unknown or expired session\"}\n"]



=== TEST 9: express cookies: a cache hit still needs a valid signature
--- config eval
<<"EOF"
    location = /t {
        vodlms_auth on;
        vodlms_session_type express;
        vodlms_session_secret "keyboard cat";
        vodlms_session_cache sessions valid=1m;
        proxy_set_header X-Cache \$vodlms_session_cache;
        proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "cache=\$http_x_cache\\n"; }
    location = /as/genuine {
        proxy_set_header Cookie "$::express->{cookie_header_value}";
        proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/t;
    }
    location = /as/forged {
        proxy_set_header Cookie "connect.sid=$::express_tampered";
        proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/t;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:\$TEST_NGINX_CTL_PORT/; }
EOF
--- pipelined_requests eval
["GET /ctl/redis/start", "GET /as/genuine", "GET /as/genuine", "GET /as/forged"]
--- error_code eval
[200, 200, 200, 401]
--- response_body eval
["started\n", "cache=MISS\n", "cache=HIT\n",
 "{\"error\":\"bad_signature\",\"message\":\"session cookie signature does not match\"}\n"]
