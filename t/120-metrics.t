# vodlms_status: Prometheus text from counters in shared memory.  Each
# block makes known requests, then reads the page and checks the counts
# those requests must have produced.

use FindBin;
use lib "$FindBin::Bin/lib";
use VodlmsTest;
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_REDIS_PORT} ||= 6379;
my $r = $ENV{TEST_NGINX_REDIS_PORT};
redis_cmd($r, 'SET', 'session:t120-alice', '{"user_id":"1001"}', 'EX', 3600);
redis_cmd($r, 'DEL', 'vodlms:t120-stream');
redis_cmd($r, 'XADD', 'vodlms:t120-stream', '*', 'video_id', 'a', 'source', '/x');
redis_cmd($r, 'XADD', 'vodlms:t120-stream', '*', 'video_id', 'b', 'source', '/y');
redis_cmd($r, 'XGROUP', 'CREATE', 'vodlms:t120-stream', 'vodlms-helpers', '0');
# one job handed to a helper and not yet acknowledged
redis_cmd($r, 'XREADGROUP', 'GROUP', 'vodlms-helpers', 't120', 'COUNT', '1',
          'STREAMS', 'vodlms:t120-stream', '>');

# a second group, named in vodlms_status group=: it has taken nothing yet
redis_cmd($r, 'XGROUP', 'CREATE', 'vodlms:t120-stream', 't120-transcoders', '0');

# a third group, as the helpers' fair turns leave it: both jobs read by the
# holding consumer "vodlms:waiting", one of them since handed to a helper
redis_cmd($r, 'XGROUP', 'CREATE', 'vodlms:t120-stream', 't120-fair', '0');
redis_cmd($r, 'XREADGROUP', 'GROUP', 't120-fair', 'vodlms:waiting', 'COUNT', '2',
          'STREAMS', 'vodlms:t120-stream', '>');
my $first = redis_cmd($r, 'XRANGE', 'vodlms:t120-stream', '-', '+', 'COUNT', '1');
redis_cmd($r, 'XCLAIM', 'vodlms:t120-stream', 't120-fair', 't120', '0', $first->[0][0]);

my $pg = start_pg();
$ENV{TEST_NGINX_PRIVATE_PG} = $pg->conninfo;

# every block loads the module, and has these http{} lines unless it has its own
block_defaults(http_config => <<'EOF');
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
EOF

no_shuffle();
run_tests();

__DATA__

=== TEST 1: session outcomes, cache hits and misses, Redis round trips and connections
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_cache_zone zone=answers:1m;
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_cache answers valid=1m invalid=1m;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
    location = /metrics {
        vodlms_upload_stream vodlms:t120-stream;
        vodlms_status;
    }
--- request eval
["GET /t", "GET /t", "GET /t", "GET /t", "GET /metrics"]
--- more_headers eval
["Cookie: session=t120-alice", "Cookie: session=t120-alice",
 "Cookie: session=t120-nobody", "", ""]
--- error_code eval
[200, 200, 401, 401, 200]
--- response_headers eval
["", "", "", "", "Content-Type: text/plain; version=0.0.4; charset=utf-8"]
--- response_body_like eval
[qr/app/, qr/app/, qr/unknown_session/, qr/no_session/,
 qr/
  (?=.*^vodlms_requests_total\{endpoint="session",outcome="ok"\}\ 2$)
  (?=.*^vodlms_requests_total\{endpoint="session",outcome="unknown_session"\}\ 1$)
  (?=.*^vodlms_requests_total\{endpoint="session",outcome="no_session"\}\ 1$)
  (?=.*^vodlms_cache_requests_total\{cache="session",result="hit"\}\ 1$)
  (?=.*^vodlms_cache_requests_total\{cache="session",result="miss"\}\ 2$)
  (?=.*^vodlms_cache_zone_entries\{zone="answers"\}\ 2$)
  (?=.*^vodlms_backend_duration_seconds_count\{backend="redis"\}\ 3$)
  (?=.*^vodlms_backend_duration_seconds_bucket\{backend="redis",le="\+Inf"\}\ 3$)
  (?=.*^vodlms_backend_errors_total\{backend="redis"\}\ 0$)
  (?=.*^vodlms_backend_connections\{backend="redis"\}\ 1$)
  (?=.*^vodlms_transcode_stream_entries\ 2$)
  (?=.*^vodlms_transcode_queue_length\ 1$)
  (?=.*^vodlms_transcode_queue_pending\ 1$)
 /smx]
--- no_error_log
[error]



=== TEST 2: enrollment, playback and PostgreSQL; progress beacons pending in the buffer
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
    location = /metrics { vodlms_status; }
--- request eval
["POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",\"currentTime\":5,\"duration\":634.5}",
 "POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",\"currentTime\":-5,\"duration\":634.5}",
 "POST /api/videos/nope/progress\n{\"videoId\":\"nope\",\"currentTime\":5,\"duration\":634.5}",
 "GET /metrics"]
--- more_headers eval
["Cookie: session=t120-alice", "Cookie: session=t120-alice", "Cookie: session=t120-alice", ""]
--- error_code eval
[204, 400, 404, 200]
--- response_body_like eval
[qr/^$/, qr/bad_beacon/, qr/video_not_found/,
 qr/
  (?=.*^vodlms_requests_total\{endpoint="enrollment",outcome="ok"\}\ 2$)
  (?=.*^vodlms_requests_total\{endpoint="enrollment",outcome="video_not_found"\}\ 1$)
  (?=.*^vodlms_requests_total\{endpoint="progress",outcome="ok"\}\ 1$)
  (?=.*^vodlms_requests_total\{endpoint="progress",outcome="bad_beacon"\}\ 1$)
  (?=.*^vodlms_backend_duration_seconds_count\{backend="postgres"\}\ 3$)
  (?=.*^vodlms_backend_connections\{backend="postgres"\}\ [1-9]$)
  (?=.*^vodlms_progress_beacons_total\ 1$)
  (?=.*^vodlms_progress_pending\ 1$)
  (?=.*^vodlms_progress_flushes_total\ 0$)
  (?=.*^vodlms_progress_buffer_fill\ 0\.\d+$)
 /smx]



=== TEST 3: the queue of a consumer group named with group=: two jobs waiting, none taken
--- config
    location = /metrics {
        vodlms_upload_stream vodlms:t120-stream;
        vodlms_status group=t120-transcoders;
    }
--- request
GET /metrics
--- response_body_like eval
qr/
  (?=.*^vodlms_transcode_stream_entries\ 2$)
  (?=.*^vodlms_transcode_queue_length\ 2$)
  (?=.*^vodlms_transcode_queue_pending\ 0$)
/smx
--- no_error_log
[error]



=== TEST 3b: jobs waiting for their owner's turn count as not taken, not as pending
--- config
    location = /metrics {
        vodlms_upload_stream vodlms:t120-stream;
        vodlms_status group=t120-fair;
    }
--- request
GET /metrics
--- response_body_like eval
qr/
  (?=.*^vodlms_transcode_stream_entries\ 2$)
  (?=.*^vodlms_transcode_queue_length\ 1$)
  (?=.*^vodlms_transcode_queue_pending\ 1$)
/smx
--- no_error_log
[error]



=== TEST 4: the version, which Debian's default error_log (level "error") does not show at start-up
--- config
    location = /metrics { vodlms_status; }
--- request
GET /metrics
--- response_body_like eval
my ($ver) = map { /^#define NGX_HTTP_VODLMS_VERSION\s+"([^"]+)"/ ? $1 : () }
    do { open my $fh, '<', "$FindBin::Bin/../ngx_http_vodlms_module/ngx_http_vodlms_version.h" or die $!; <$fh> };
qr/^\# TYPE vodlms_build_info gauge\nvodlms_build_info\{version="\Q$ver\E",nginx="1\.\d+\.\d+"\} 1$/m
--- no_error_log
[error]



=== TEST 5: a metrics page on a node without Redis (an edge): served, and the request ends cleanly
--- http_config
--- config
    location = /metrics { vodlms_status; }
--- request
GET /metrics
--- response_body_like eval
qr/^vodlms_build_info\{version="[^"]+",nginx="[^"]+"\} 1$/m
--- no_error_log
[error]
[alert]
