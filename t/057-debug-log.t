# Debug logging: with `error_log ... debug` on an nginx built --with-debug
# (Debian's is), the Redis and PostgreSQL pools log each connection's life
# and the shared-memory cache its hits and misses, so that an operator can
# follow what happened to a request.  Never a session token, never a
# password.
#
# Every block runs twice against the same nginx (repeat_each): the second
# request shows the pooled connection, or the cached answer, at work.
# grep_error_log keeps the state word of each line, in order.

use FindBin;
use lib "$FindBin::Bin/lib";
use VodlmsTest;
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_REDIS_PORT} ||= 6379;
$ENV{TEST_NGINX_PG_CONNINFO}
    ||= 'host=127.0.0.1 port=5432 user=postgres dbname=vodlms';

# debug lines exist only in a build --with-debug
my $nginx = $ENV{TEST_NGINX_BINARY} || 'nginx';
`$nginx -V 2>&1` =~ /--with-debug/
    or plan skip_all => "$nginx is not built --with-debug";

# alice (1001) is enrolled in the course of intro-ready (sql/seed/demo.sql)
redis_cmd($ENV{TEST_NGINX_REDIS_PORT}, 'SET', 'session:t057-alice',
          '{"user_id":"1001"}', 'EX', 3600);

$ENV{TEST_NGINX_DEAD_PORT} = free_port();

repeat_each(2);
# every block loads the module unless it says otherwise
block_defaults();

no_shuffle();
run_tests();

__DATA__

=== TEST 1: Redis: connect, the command pipelined at once, connected, ready, the reply, idle; then the idle connection is used again
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
--- config
    location = /t {
        vodlms_auth on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "ok\n"; }
--- request
GET /t
--- more_headers
Cookie: session=t057-alice
--- response_body
ok
--- grep_error_log eval
qr/vodlms redis: \w+/
--- grep_error_log_out eval
["vodlms redis: connect
vodlms redis: execute
vodlms redis: connected
vodlms redis: ready
vodlms redis: done
vodlms redis: idle
",
"vodlms redis: execute
vodlms redis: done
vodlms redis: idle
"]
--- error_log eval
qr/vodlms redis: execute, 127\.0\.0\.1:\d+ fd:\d+, \d+ commands, \d+ pending/
--- no_error_log eval
[qr/vodlms .*t057-alice/, qr/\[error\]/]



=== TEST 2: PostgreSQL: connect, the query waits, connected, prepare, execute, done, idle; then the idle connection, already prepared
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PG_CONNINFO password=t057-secret";
--- config
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
    location /app/ { return 200 "ok\n"; }
--- request
GET /videos/intro-ready/meta
--- more_headers
Cookie: session=t057-alice
--- response_body
ok
--- grep_error_log eval
qr/vodlms pg: \w+/
--- grep_error_log_out eval
["vodlms pg: connect
vodlms pg: wait
vodlms pg: connected
vodlms pg: get
vodlms pg: prepare
vodlms pg: execute
vodlms pg: done
vodlms pg: idle
",
"vodlms pg: get
vodlms pg: execute
vodlms pg: done
vodlms pg: idle
"]
--- error_log eval
qr{vodlms pg: done, 127\.0\.0\.1:\d+/vodlms fd:\d+, vodlms_q\d+: ok, \d+ ms}
--- no_error_log eval
["t057-secret", qr/vodlms .*t057-alice/, qr/\[error\]/]



=== TEST 3: the session cache: a miss and a store, then a hit; the key shows only as a digest
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_cache_zone zone=sessions:1m;
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_cache sessions valid=1m;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "ok\n"; }
--- request
GET /t
--- more_headers
Cookie: session=t057-alice
--- response_body
ok
--- grep_error_log eval
qr/vodlms cache: \w+/
--- grep_error_log_out eval
["vodlms cache: miss
vodlms cache: store
",
"vodlms cache: hit
"]
--- error_log eval
qr/vodlms cache: (miss|hit), "session" [0-9a-f]{8} in zone "sessions"/
--- no_error_log eval
[qr/vodlms .*t057-alice/, qr/\[error\]/]



=== TEST 4: back-off: a refused connect is retried at once, the next one only after 100 ms
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_DEAD_PORT;
--- config
    location = /t {
        vodlms_auth on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "ok\n"; }
--- request
GET /t
--- more_headers
Cookie: session=t057-alice
--- error_code: 503
--- grep_error_log eval
qr/vodlms redis: back-off, 127\.0\.0\.1:\d+: \d+ failed connects, next try in \d+ ms/
--- grep_error_log_out eval
["vodlms redis: back-off, 127.0.0.1:$ENV{TEST_NGINX_DEAD_PORT}: 1 failed connects, next try in 0 ms\n",
 "vodlms redis: back-off, 127.0.0.1:$ENV{TEST_NGINX_DEAD_PORT}: 2 failed connects, next try in 100 ms\n"]
