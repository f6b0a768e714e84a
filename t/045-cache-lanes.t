# The shared cache's bounds (issue #18): negative answers cost an attacker
# nothing to create, so they live in a lane of their own and never evict a
# session or an enrollment someone is using; expired answers are reclaimed
# wherever they sit in the LRU order, not only from its cold end; and the
# signature caches are on without a line of configuration.
#
# /as/<token> sends "Cookie: session=<token>" to the gated /t, so one block
# can speak for hundreds of users.  Redis counts its GETs (INFO
# commandstats): a cached session costs none.

use FindBin;
use lib "$FindBin::Bin/lib";
use VodlmsTest;
use Test::Nginx::Socket 'no_plan';

my $redis = start_redis();
$ENV{TEST_NGINX_PRIVATE_REDIS_PORT} = $redis->port;

# user ids long enough that a cached session takes a 256-byte slab chunk
# both before and after the expiry tree was added: the zone holds the
# same number of answers either way, so the blocks test the policy alone
my $pad = 'x' x 40;
our @users = map { sprintf "t045-%03d", $_ } 1 .. 260;
for my $u (@users) {
    $redis->cmd('SET', "session:$u", qq({"user_id":"$u-$pad"}), 'EX', 3600);
}
$redis->cmd('SET', "session:t045-long", qq({"user_id":"long-$pad"}), 'EX', 3600);

# the playback blocks: the shared Redis and the seeded database (alice is
# enrolled in course-intro, whose intro-ready is ready)
redis_cmd($ENV{TEST_NGINX_REDIS_PORT}, 'SET', 'session:t045-alice', '{"user_id":"1001"}', 'EX', 3600);
my $vectors = $ENV{VODLMS_VECTORS_DIR} || "$FindBin::Bin/../../shared/vectors/cloudfront";
-f "$vectors/test_private_key.pem" or die "no CloudFront test vectors at $vectors\n";
$ENV{TEST_NGINX_CF_KEY} = private_key("$vectors/test_private_key.pem");

my ($ctl_port, $ctl) = control_server(
    '/redis/resetstat' => sub { $redis->cmd('CONFIG', 'RESETSTAT'); "reset\n" },
    '/redis/gets'  => sub {
        my $info = $redis->cmd('INFO', 'commandstats');
        my ($n) = $info =~ /^cmdstat_get:calls=(\d+)/m;
        ($n // 0) . "\n";
    },
    # outlive valid=1s: the answers are expired, not evicted
    '/sleep' => sub { select undef, undef, undef, 1.5; "slept\n" },
);
$ENV{TEST_NGINX_CTL_PORT} = $ctl_port;

sub as { map { "GET /as/$_" } @_ }

# every block loads the module unless it says otherwise
block_defaults();

no_shuffle();
run_tests();

__DATA__

=== TEST 1: 600 unknown tokens do not evict 40 cached sessions
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_PRIVATE_REDIS_PORT;
    vodlms_cache_zone zone=c:64k;
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_cache c valid=1h invalid=1h;
        proxy_set_header X-Cache $vodlms_session_cache;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location ~ ^/as/(?<who>.+)$ {
        proxy_set_header Cookie "session=$who";
        rewrite ^ /t break;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT;
    }
    location = /app { return 200 "$http_x_cache\n"; }
    location = /status { vodlms_status; }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- pipelined_requests eval
[ main::as(@main::users[0 .. 39]),
  main::as(map { "t045-nobody-$_" } 1 .. 600),
  "GET /ctl/redis/resetstat",
  main::as(@main::users[0 .. 39]),
  "GET /ctl/redis/gets",
  "GET /status" ]
--- error_code eval
[ (200) x 40, (401) x 600, 200, (200) x 40, 200, 200 ]
--- response_body_like eval
[ ("^MISS\n\$") x 40,
  ('"error":"unknown_session"') x 600,
  "^reset\n\$",
  ("^HIT\n\$") x 40,
  "^0\n\$",
  'vodlms_cache_zone_evictions_total\{zone="c"\} 0\n.*vodlms_cache_zone_negative_evictions_total\{zone="c"\} [1-9]' ]
--- timeout: 60



=== TEST 2: expired answers behind a live one are reclaimed; the live one stays
The long-lived session is the oldest in LRU order.  Behind it, 120
one-second answers expire; then 120 new users arrive.  Without reclaiming
the expired answers wherever they are, the zone is full and the live one
(the coldest) is evicted.
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_PRIVATE_REDIS_PORT;
    vodlms_cache_zone zone=c:48k;
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_cache c valid=1s invalid=1s;
        proxy_set_header X-Cache $vodlms_session_cache;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /long {
        vodlms_auth on;
        vodlms_session_cache c valid=1h;
        proxy_set_header X-Cache $vodlms_session_cache;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location ~ ^/as/(?<who>.+)$ {
        proxy_set_header Cookie "session=$who";
        rewrite ^ /t break;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT;
    }
    location = /app { return 200 "$http_x_cache\n"; }
    location = /status { vodlms_status; }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- pipelined_requests eval
[ "GET /long",
  main::as(@main::users[0 .. 119]),
  "GET /ctl/sleep",
  main::as(@main::users[120 .. 239]),
  "GET /long",
  "GET /status" ]
--- more_headers
Cookie: session=t045-long
--- error_code eval
[ (200) x 244 ]
--- response_body_like eval
[ "^MISS\n\$",
  ("^MISS\n\$") x 120,
  "^slept\n\$",
  ("^MISS\n\$") x 120,
  "^HIT\n\$",
  'vodlms_cache_zone_evictions_total\{zone="c"\} 0\n' ]
--- timeout: 60



=== TEST 3: a signing location without a cache line caches signatures
No vodlms_cache_zone and no vodlms_cloudfront_signature_cache: the second
answer for the same video reuses the first signature.
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PG_CONNINFO";
--- config
    location ~ ^/videos/(?<vid>[A-Za-z0-9_-]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_playback cookies;
        vodlms_cloudfront_url https://d111111abcdef8.cloudfront.net;
        vodlms_cloudfront_key K2JCJMDEHXQW5F $TEST_NGINX_CF_KEY;
        add_header X-Sig-Cache $vodlms_signature_cache always;
    }
    location = /status { vodlms_status; }
--- pipelined_requests eval
["GET /videos/intro-ready/stream", "GET /videos/intro-ready/stream", "GET /status"]
--- more_headers
Cookie: session=t045-alice
--- error_code eval
[200, 200, 200]
--- response_body_like eval
['"videoId":"intro-ready"', '"videoId":"intro-ready"',
 'vodlms_cache_zone_entries\{zone="vodlms_signatures"\} 1\n']
--- raw_response_headers_like eval
["X-Sig-Cache: MISS", "X-Sig-Cache: HIT", ""]



=== TEST 4: "off" still turns it off, and no zone is made
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PG_CONNINFO";
--- config
    location ~ ^/videos/(?<vid>[A-Za-z0-9_-]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_playback cookies;
        vodlms_cloudfront_url https://d111111abcdef8.cloudfront.net;
        vodlms_cloudfront_key K2JCJMDEHXQW5F $TEST_NGINX_CF_KEY;
        vodlms_cloudfront_signature_cache off;
        add_header X-Sig-Cache "[$vodlms_signature_cache]" always;
    }
    location = /status { vodlms_status; }
--- pipelined_requests eval
["GET /videos/intro-ready/stream", "GET /videos/intro-ready/stream", "GET /status"]
--- more_headers
Cookie: session=t045-alice
--- error_code eval
[200, 200, 200]
--- response_body_like eval
['"videoId":"intro-ready"', '"videoId":"intro-ready"',
 '^(?!.*vodlms_signatures)']
--- raw_response_headers_like eval
['X-Sig-Cache: \[\]', 'X-Sig-Cache: \[\]', ""]
