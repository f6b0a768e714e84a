# Redis Sentinel, case by case (issue #21): the sentinels' own password and
# the master's, sentinels passed over (down, or not knowing the master),
# none answering, a wrong sentinel password, and a "master" that answers
# ROLE as a replica (never asked anything else: a demoted server may hold a
# deleted session).  Real redis-server sentinels on loopback; the
# failovers themselves are t/170's.

use FindBin;
use lib "$FindBin::Bin/lib";
use VodlmsTest;
use Test::Nginx::Socket 'no_plan';

# a master with a password, watched as "mymaster" by a sentinel with a
# password of its own, and as "other" by a second one
my $m = start_redis(requirepass => 'm-pw');
$m->cmd('SET', 'session:t172-alice', '{"user_id":"172"}', 'EX', 3600);
my $s1 = start_sentinel(master => $m, auth_pass => 'm-pw', requirepass => 's-pw');
my $s2 = start_sentinel(master => $m, name => 'other', auth_pass => 'm-pw',
                        requirepass => 's-pw');
$ENV{TEST_NGINX_S1_PORT} = $s1->port;
$ENV{TEST_NGINX_S2_PORT} = $s2->port;

# "stale": a sentinel still names x, but x has become a replica of y
my $y = start_redis();
$y->cmd('SET', 'session:t172-alice', '{"user_id":"172"}', 'EX', 3600);
my $x = start_redis();
my $s3 = start_sentinel(master => $x, name => 'stale');
$x->cmd('REPLICAOF', '127.0.0.1', $y->port);
for (1 .. 500) {
    last if $x->cmd('INFO', 'replication') =~ /master_link_status:up/;
    select undef, undef, undef, 0.02;
}
$ENV{TEST_NGINX_S3_PORT} = $s3->port;

# nothing listens here
$ENV{TEST_NGINX_DEAD_PORT} = free_port();

# accepts connections, never answers
my ($bh_port, $bh) = blackhole();
$ENV{TEST_NGINX_BLACKHOLE_PORT} = $bh_port;

block_defaults();

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('config', <<'EOF') unless defined $block->config;
    location = /t {
        vodlms_auth on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
EOF
    $block->set_value('request', "GET /t\n") unless defined $block->request;
    $block->set_value('more_headers', "Cookie: session=t172-alice\n")
        unless defined $block->more_headers;
});

no_shuffle();
run_tests();

__DATA__

=== TEST 1: the master the sentinel names, with the sentinel's password and the master's (the first request waits for the answer: no 503; nginx knows Redis only through the sentinel)
--- http_config
    vodlms_redis sentinel:mymaster password=m-pw;
    vodlms_redis_sentinel 127.0.0.1:$TEST_NGINX_S1_PORT password=s-pw;
--- response_body
app
--- no_error_log
[error]
[alert]



=== TEST 2: a sentinel that is down and one that does not know the master are passed over
--- http_config
    vodlms_redis sentinel:mymaster password=m-pw;
    vodlms_redis_sentinel 127.0.0.1:$TEST_NGINX_DEAD_PORT 127.0.0.1:$TEST_NGINX_S2_PORT
                          127.0.0.1:$TEST_NGINX_S1_PORT password=s-pw;
--- response_body
app
--- error_log eval
[qr/vodlms: sentinel 127\.0\.0\.1:$ENV{TEST_NGINX_DEAD_PORT} connect failed: Connection refused, asking the next sentinel/,
 qr/vodlms: sentinel 127\.0\.0\.1:$ENV{TEST_NGINX_S2_PORT} does not know master "mymaster", asking the next sentinel/]
--- no_error_log
[error]
[alert]



=== TEST 3: no sentinel names the master: 503 at once, and the log says why
--- http_config
    vodlms_redis sentinel:mymaster password=m-pw;
    vodlms_redis_sentinel 127.0.0.1:$TEST_NGINX_DEAD_PORT;
--- error_code: 503
--- response_body
{"error":"backend_unavailable","message":"session store unavailable"}
--- error_log eval
qr/\[error\] .*vodlms: session store unavailable: redis sentinel:mymaster: no sentinel named the master \(last: sentinel 127\.0\.0\.1:\d+ connect failed: Connection refused\), answering 503/
--- no_error_log
[alert]
[crit]



=== TEST 4: a wrong sentinel password: 503, and the log says the sentinel refused AUTH
--- http_config
    vodlms_redis sentinel:mymaster password=m-pw;
    vodlms_redis_sentinel 127.0.0.1:$TEST_NGINX_S1_PORT password=nope;
--- error_code: 503
--- error_log eval
qr/\[error\] .*vodlms: session store unavailable: redis sentinel:mymaster: no sentinel named the master \(last: sentinel 127\.0\.0\.1:\d+ AUTH rejected: WRONGPASS/
--- no_error_log
[alert]
[crit]



=== TEST 5: a server the sentinel still names but that answers ROLE as a replica is never asked (it may hold old data): 503, and the sentinels are asked again
--- http_config
    vodlms_redis sentinel:stale;
    vodlms_redis_sentinel 127.0.0.1:$TEST_NGINX_S3_PORT;
--- error_code: 503
--- response_body
{"error":"backend_unavailable","message":"session store unavailable"}
--- error_log eval
[qr/\[info\] .*vodlms redis: sentinel:stale at 127\.0\.0\.1:\d+ answers ROLE "slave", not "master": asking the sentinels again/,
 qr/\[error\] .*vodlms: session store unavailable: redis sentinel:stale (at 127\.0\.0\.1:\d+ is not the master \(ROLE\)|is down \(\d+ failed attempts\))/]
--- no_error_log
[alert]
[crit]



=== TEST 6: a silent sentinel costs the waiting request its own timeout (503 backend_timeout), no more
--- http_config
    vodlms_redis sentinel:mymaster password=m-pw timeout=300ms;
    vodlms_redis_sentinel 127.0.0.1:$TEST_NGINX_BLACKHOLE_PORT;
--- error_code: 503
--- response_body
{"error":"backend_timeout","message":"session store timed out"}
--- error_log eval
qr/\[error\] .*vodlms: session store timed out: redis sentinel:mymaster: no address after 300 ms \(still asking\), answering 503/
--- no_error_log
[alert]
[crit]
