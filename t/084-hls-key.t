# The key endpoint of encrypted HLS (issue #22, vodlms_hls_key): the
# AES-128 key of a version, 16 bytes with Cache-Control no-store, only to a
# viewer the location's session gate and enrollment check admit, and only
# the key of the video the enrollment check was asked about.  Unknown keys
# are 404, malformed requests 400, a database outage 503 (fail closed).
# The key budget and the pace limit count in Redis (429 key_budget,
# key_pace, with Retry-After); Redis down serves without them (open) or
# refuses (closed).  Every fetch is one log line naming user, video,
# version and key index.
#
# A private PostgreSQL (stopped and started by the control server), the
# suite's Redis for sessions and counts, and a private Redis for the
# blocks that stop it.

use FindBin;
use lib "$FindBin::Bin/lib";
use VodlmsTest;
use Test::Nginx::Socket 'no_plan';
use Time::HiRes qw(sleep);

$ENV{TEST_NGINX_REDIS_PORT} ||= 6379;
my $r = $ENV{TEST_NGINX_REDIS_PORT};

my %session = (
    't084-ann' => 8401,     # enrolled
    't084-bob' => 8402,     # not enrolled
    't084-cat' => 8403,     # enrolled: the budget's blocks
    't084-dan' => 8404,     # enrolled: the pace limit's blocks
    't084-eve' => 8405,     # enrolled: the pace blocks of lec-long
);

for my $s (keys %session) {
    redis_cmd($r, 'SET', "session:$s", qq({"user_id":"$session{$s}"}), 'EX', 3600);
    # a run before this one may have left counts
    for my $v (qw(lec-key lec-long)) {
        redis_cmd($r, 'DEL', map { "vodlms:hlskey:{$v:$session{$s}}:$_" } qw(n p t));
    }
}

my $pg = start_pg();
$ENV{TEST_NGINX_PRIVATE_PG} = $pg->conninfo;

$pg->psql(q{INSERT INTO vodlms.users (id, email, role) VALUES
            ('8401', 't084-ann@example.com', 'student'), ('8402', 't084-bob@example.com', 'student'),
            ('8403', 't084-cat@example.com', 'student'), ('8404', 't084-dan@example.com', 'student'),
            ('8405', 't084-eve@example.com', 'student')});
$pg->psql(q{INSERT INTO vodlms.enrollments (user_id, course_id, status) VALUES
            ('8401', 'course-intro', 'active'), ('8403', 'course-intro', 'active'),
            ('8404', 'course-intro', 'active'), ('8405', 'course-intro', 'active')});
$pg->psql(q{INSERT INTO vodlms.videos (id, course_id, title, duration_seconds, status, storage_prefix)
            VALUES ('lec-key', 'course-intro', 'Encrypted', 1800, 'ready', 'hls/lec-key/v1/')});
# key 0 from the start, key 1 from 10 minutes in, key 2 from 20
$pg->psql(q{INSERT INTO vodlms.video_keys (video_id, version, key_index, key, first_segment, starts_ms) VALUES
            ('lec-key', 'v1', 0, '\x000102030405060708090a0b0c0d0e0f', 0, 0),
            ('lec-key', 'v1', 1, '\x101112131415161718191a1b1c1d1e1f', 150, 600000),
            ('lec-key', 'v1', 2, '\x202122232425262728292a2b2c2d2e2f', 300, 1200000)});
# a 12-minute lecture with a key every minute: key k from k minutes in
$pg->psql(q{INSERT INTO vodlms.videos (id, course_id, title, duration_seconds, status, storage_prefix)
            VALUES ('lec-long', 'course-intro', 'Encrypted, rotated', 720, 'ready', 'hls/lec-long/v1/')});
$pg->psql(q{INSERT INTO vodlms.video_keys (video_id, version, key_index, key, first_segment, starts_ms)
            SELECT 'lec-long', 'v1', k, decode(lpad(to_hex(k), 32, '0'), 'hex'), k * 10, k * 60000
            FROM generate_series(0, 11) AS k});
# and a re-encode of it with a key every 30 s
$pg->psql(q{INSERT INTO vodlms.video_keys (video_id, version, key_index, key, first_segment, starts_ms)
            SELECT 'lec-long', 'v2', k, decode(lpad(to_hex(100 + k), 32, '0'), 'hex'), k * 5, k * 30000
            FROM generate_series(0, 23) AS k});

# The pace state of a (video, user) in Redis, aged as if time had passed
# (no test sleeps for it).  Older releases kept only the time of the first
# fetch, in a string ":t": it is aged the same way, so that these blocks
# show the difference against them.
sub pace_key {
    my ($video, $user) = @_;
    for my $k ("vodlms:hlskey:{$video:$user}:p", "vodlms:hlskey:{$video:$user}:t") {
        my $type = redis_cmd($r, 'TYPE', $k);
        return ($k, $type) if $type ne 'none';
    }
    die "no pace state for $video, $user\n";
}

sub pace_ctl {
    my ($path) = @_;
    my ($op, $video, $user, $arg) = $path =~ m{^/pace/(\w+)/([\w-]+)/(\d+)(?:/(\d+))?$}
        or return [404, "no such control\n"];
    if ($op eq 'forget') {
        redis_cmd($r, 'DEL', map { "vodlms:hlskey:{$video:$user}:$_" } qw(n p t));
        return "forgot\n";
    }
    my ($k, $type) = pace_key($video, $user);
    if ($op eq 'age') {
        # the last release (or the first fetch) $arg seconds earlier
        if ($type eq 'hash') { redis_cmd($r, 'HINCRBY', $k, 't', -1000 * $arg) }
        else { redis_cmd($r, 'DECRBY', $k, 1000 * $arg) }
        return "aged $arg s\n";
    }
    if ($op eq 'expire') {
        redis_cmd($r, 'PEXPIRE', $k, 1000 * $arg);
        return "expires in $arg s\n";
    }
    if ($op eq 'ttl') {
        return 'pttl ' . redis_cmd($r, 'PTTL', $k) . "\n";
    }
    return [404, "no such control\n"];
}

# a Redis of this suite's own, for the blocks that stop it
my $redis = start_redis();
$ENV{TEST_NGINX_OWN_REDIS_PORT} = $redis->port;
sub own_sessions { redis_cmd($redis, 'SET', 'session:t084-ann', '{"user_id":"8401"}', 'EX', 3600) }
own_sessions();

my ($ctl_port, $ctl) = control_server(
    '/pg/stop'    => sub { $pg->stop; "stopped\n" },
    '/pg/start'   => sub { $pg->start; "started\n" },
    '/redis/stop' => sub { $redis->stop; "stopped\n" },
    # answered once the pool's back-off (at most 2 s) has passed: the next
    # fetch connects again
    '/redis/start' => sub { $redis->start; own_sessions(); sleep 2.2; "started\n" },
    # a viewer's first key fetch and counts forgotten: the next fetch is the first
    '/forget/8404' => sub {
        redis_cmd($r, 'DEL', map { "vodlms:hlskey:{lec-key:8404}:$_" } qw(n p t));
        "forgot\n";
    },
    '*' => sub { pace_ctl($_[0]) },
);
$ENV{TEST_NGINX_CTL_PORT} = $ctl_port;

our $key0 = join '', map { chr } 0x00 .. 0x0f;
our $key1 = join '', map { chr } 0x10 .. 0x1f;
# lec-long's key k: 15 zero bytes, then k
sub long_key { ("\0" x 15) . chr(shift) }
sub long_key_v2 { ("\0" x 15) . chr(100 + shift) }

# every block: the module, these http{} lines, and the key location below
block_defaults(http_config => <<'EOF');
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG" connect_timeout=5s timeout=5s;
    vodlms_cache_zone zone=answers:1m;
EOF

# the log lines of a block's pipelined requests are checked together
check_accum_error_log();
no_shuffle();
run_tests();

__DATA__

=== TEST 1: an enrolled viewer gets the 16 bytes, never to be stored, and one log line
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_hls_key $kver $kk;
    }
--- request
GET /vodlms/keys/lec-key/v1/1.key
--- more_headers
Cookie: session=t084-ann
--- response_headers
Content-Type: application/octet-stream
Content-Length: 16
Cache-Control: no-store
--- response_body eval
$::key1
--- error_log
vodlms: key served: user "8401" video "lec-key" version "v1" key 1 (from the database), answering 200
--- no_error_log
[error]



=== TEST 2: no session: 401, and the key handler never runs
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_hls_key $kver $kk;
    }
--- request
GET /vodlms/keys/lec-key/v1/0.key
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
--- response_body
{"error":"no_session","message":"no session token in the request"}
--- no_error_log
key served
[error]



=== TEST 3: a viewer who is not enrolled: 403, no key
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_hls_key $kver $kk;
    }
--- request
GET /vodlms/keys/lec-key/v1/0.key
--- more_headers
Cookie: session=t084-bob
--- error_code: 403
--- response_body
{"error":"not_enrolled","message":"the user is not enrolled in the video's course"}
--- no_error_log
key served
[error]



=== TEST 4: a key index the version does not have: 404 no_such_key, logged with the fetch
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_hls_key $kver $kk;
    }
--- request
GET /vodlms/keys/lec-key/v1/9.key
--- more_headers
Cookie: session=t084-ann
--- error_code: 404
--- response_headers
Content-Type: application/json
Cache-Control: no-store
--- response_body
{"error":"no_such_key","message":"no such key"}
--- error_log
vodlms: no such key: user "8401" video "lec-key" version "v1" key 9 (no such row in video_keys), answering 404
--- no_error_log
[error]



=== TEST 5: a version the video does not have: 404
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_hls_key $kver $kk;
    }
--- request
GET /vodlms/keys/lec-key/v2/0.key
--- more_headers
Cookie: session=t084-ann
--- error_code: 404
--- response_body
{"error":"no_such_key","message":"no such key"}



=== TEST 6: the key of the video the enrollment check admitted, never another's (intro-ready has no version v1 keys)
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_hls_key $kver $kk;
    }
--- request
GET /vodlms/keys/intro-ready/v1/0.key
--- more_headers
Cookie: session=t084-ann
--- error_code: 404
--- response_body
{"error":"no_such_key","message":"no such key"}
--- error_log
user "8401" video "intro-ready" version "v1" key 0



=== TEST 7: a key index that is no number: 400 bad_key_request, no query
--- config
    location ~ ^/k/(?<kv>[^/]+)/(?<kver>[^/]+)/(?<kk>[^/]+)\.key$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_hls_key $kver $kk;
    }
--- request
GET /k/lec-key/v1/1e3.key
--- more_headers
Cookie: session=t084-ann
--- error_code: 400
--- response_body
{"error":"bad_key_request","message":"malformed key version or index"}
--- error_log
vodlms: malformed key version or index: user "8401" video "lec-key" version "v1" key "1e3"
--- no_error_log
[error]



=== TEST 8: a version with a byte a version never has: 400
--- config
    location ~ ^/k/(?<kv>[^/]+)/(?<kver>[^/]+)/(?<kk>[^/]+)\.key$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_hls_key $kver $kk;
    }
--- request
GET /k/lec-key/v1%27%3B/0.key
--- more_headers
Cookie: session=t084-ann
--- error_code: 400
--- response_body
{"error":"bad_key_request","message":"malformed key version or index"}



=== TEST 9: a key index of ten digits: 400
--- config
    location ~ ^/k/(?<kv>[^/]+)/(?<kver>[^/]+)/(?<kk>[^/]+)\.key$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_hls_key $kver $kk;
    }
--- request
GET /k/lec-key/v1/4294967296.key
--- more_headers
Cookie: session=t084-ann
--- error_code: 400
--- response_body
{"error":"bad_key_request","message":"malformed key version or index"}



=== TEST 10: PostgreSQL down when the key is asked for: 503 with Retry-After (the enrollment answer was cached)
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        vodlms_auth on;
        vodlms_session_cache answers;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_enrollment_cache answers;
        vodlms_hls_key $kver $kk;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- pipelined_requests eval
["GET /vodlms/keys/lec-key/v1/0.key", "GET /ctl/pg/stop", "GET /vodlms/keys/lec-key/v1/1.key",
 "GET /ctl/pg/start", "GET /vodlms/keys/lec-key/v1/1.key"]
--- more_headers
Cookie: session=t084-ann
--- error_code eval
[200, 200, 503, 200, 200]
--- response_body eval
[$::key0, "stopped\n", "{\"error\":\"database_unavailable\",\"message\":\"database unavailable\"}\n",
 "started\n", $::key1]
--- error_log eval
[qr/database unavailable: user "8401" video "lec-key" version "v1" key 1 \(.*\), answering 503/]



=== TEST 11: a cached key: PostgreSQL stopped, the key still comes from the zone, to an admitted viewer only
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        vodlms_auth on;
        vodlms_session_cache answers;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_enrollment_cache answers;
        vodlms_hls_key $kver $kk;
        vodlms_hls_key_cache answers;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- pipelined_requests eval
["GET /vodlms/keys/lec-key/v1/1.key", "GET /ctl/pg/stop", "GET /vodlms/keys/lec-key/v1/1.key",
 "GET /vodlms/keys/lec-key/v1/1.key?no-cookie", "GET /ctl/pg/start"]
--- more_headers eval
["Cookie: session=t084-ann", "", "Cookie: session=t084-ann", "", ""]
--- error_code eval
[200, 200, 200, 401, 200]
--- response_body eval
[$::key1, "stopped\n", $::key1,
 "{\"error\":\"no_session\",\"message\":\"no session token in the request\"}\n", "started\n"]
--- error_log
key 1 (from the database), answering 200
key 1 (from the cache), answering 200



=== TEST 12: a subrequest (SSI) skips the access phase: it never reaches a key, whoever asks
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_hls_key $kver $kk;
    }
    location = /page.html { ssi on; root html; }
--- user_files
>>> page.html
before <!--# include virtual="/vodlms/keys/lec-key/v1/0.key" --> after
--- request
GET /page.html
--- more_headers
Cookie: session=t084-ann
--- response_body_unlike eval
qr/\x00\x01\x02\x03/
--- error_log
a key request that the session gate and the enrollment check did not both admit, refused
--- no_error_log
key served



=== TEST 13: a key budget of 2 in 10 minutes: the third fetch is 429 key_budget with Retry-After
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_hls_key $kver $kk budget=2/10m;
    }
--- pipelined_requests eval
["GET /vodlms/keys/lec-key/v1/0.key", "GET /vodlms/keys/lec-key/v1/1.key", "GET /vodlms/keys/lec-key/v1/0.key"]
--- more_headers
Cookie: session=t084-cat
--- error_code eval
[200, 200, 429]
--- response_body eval
[$::key0, $::key1, qr/\A\{"error":"key_budget","message":"the key budget for this video is used up, try again later","budget":2,"window":600,"retryAfter":(?:[1-5]\d\d|600)\}\n\z/]
--- raw_response_headers_like eval
["", "", qr/\r\nRetry-After: (?:[1-5]\d\d|600)\r\n/]
--- error_log
key served: user "8403" video "lec-key" version "v1" key 0 (from the database; fetch 1 of 2 in the window), answering 200
key served: user "8403" video "lec-key" version "v1" key 1 (from the database; fetch 2 of 2 in the window), answering 200
the key budget for this video is used up, try again later: user "8403" video "lec-key" version "v1" key 0 (budget= used up in this window), answering 429



=== TEST 14: the budget holds across a restart of nginx (it lives in Redis): the same user is still over it
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_hls_key $kver $kk budget=2/10m;
    }
--- request
GET /vodlms/keys/lec-key/v1/2.key
--- more_headers
Cookie: session=t084-cat
--- error_code: 429
--- response_body_like chomp
"error":"key_budget"



=== TEST 15: a pace limit of 1x with 10 s of allowance: key 1 (10 minutes in) is refused right after key 0, 429 key_pace
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_hls_key $kver $kk pace=1x allowance=10s;
    }
--- pipelined_requests eval
["GET /vodlms/keys/lec-key/v1/0.key", "GET /vodlms/keys/lec-key/v1/1.key"]
--- more_headers
Cookie: session=t084-dan
--- error_code eval
[200, 429]
--- response_body eval
[$::key0, qr/\A\{"error":"key_pace","message":"this key is not released yet: the lecture plays no faster than its pace limit","startsAt":600\.000,"releasedTo":0\.000,"retryAfter":(?:58\d|590)\}\n\z/]
--- raw_response_headers_like eval
["", qr/\r\nRetry-After: (?:58\d|590)\r\n/]
--- error_log
this key is not released yet: the lecture plays no faster than its pace limit: user "8404" video "lec-key" version "v1" key 1 (ahead of pace=), answering 429



=== TEST 16: 60x with 5 minutes of allowance: key 1 as the first key is served, key 2 (due 5 s later) is not
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_hls_key $kver $kk pace=60x allowance=5m;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- pipelined_requests eval
["GET /ctl/forget/8404", "GET /vodlms/keys/lec-key/v1/1.key", "GET /vodlms/keys/lec-key/v1/2.key"]
--- more_headers
Cookie: session=t084-dan
--- error_code eval
[200, 200, 429]
--- response_body_like eval
["forgot", qr/\A\x10\x11/, qr/"error":"key_pace"/]



=== TEST 17: Redis down with redis_down=open (the default): keys are served without the limits, logged once per change
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_OWN_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG" connect_timeout=5s timeout=5s;
    vodlms_cache_zone zone=answers:1m;
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        vodlms_auth on;
        vodlms_session_cache answers;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_enrollment_cache answers;
        vodlms_hls_key $kver $kk budget=100/1m;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- pipelined_requests eval
["GET /vodlms/keys/lec-key/v1/0.key", "GET /ctl/redis/stop", "GET /vodlms/keys/lec-key/v1/0.key",
 "GET /vodlms/keys/lec-key/v1/1.key", "GET /ctl/redis/start", "GET /vodlms/keys/lec-key/v1/0.key"]
--- more_headers
Cookie: session=t084-ann
--- error_code eval
[200, 200, 200, 200, 200, 200]
--- response_body eval
[$::key0, "stopped\n", $::key0, $::key1, "started\n", $::key0]
--- grep_error_log eval
qr/keys are served without the key budget and pace limit[^:]*|Redis answers again/
--- grep_error_log_out
keys are served without the key budget and pace limit while Redis cannot count them (redis_down=open)
Redis answers again
--- error_log eval
[qr/key served: user "8401" video "lec-key" version "v1" key 0 \(from the database; fetch 1 of 100 in the window\)/,
 qr/\[warn\].*keys are served without the key budget and pace limit while Redis cannot count them \(redis_down=open\)/,
 qr/key served: user "8401" video "lec-key" version "v1" key 1 \(from the database; limits not counted: Redis unavailable\)/,
 qr/Redis answers again, the key budget and pace limit hold again/]
--- timeout: 10



=== TEST 18: Redis down with redis_down=closed: 503 key_limits_unavailable
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_OWN_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG" connect_timeout=5s timeout=5s;
    vodlms_cache_zone zone=answers:1m;
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        vodlms_auth on;
        vodlms_session_cache answers;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_enrollment_cache answers;
        vodlms_hls_key $kver $kk budget=100/1m redis_down=closed;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- pipelined_requests eval
["GET /vodlms/keys/lec-key/v1/0.key", "GET /ctl/redis/stop", "GET /vodlms/keys/lec-key/v1/0.key",
 "GET /ctl/redis/start"]
--- more_headers
Cookie: session=t084-ann
--- error_code eval
[200, 200, 503, 200]
--- response_body eval
[$::key0, "stopped\n",
 "{\"error\":\"key_limits_unavailable\",\"message\":\"the key limits cannot be checked (Redis unavailable)\"}\n",
 "started\n"]
--- error_log eval
[qr/the key limits cannot be checked \(Redis unavailable\): user "8401" video "lec-key" version "v1" key 0 \(.*\), answering 503/]
--- no_error_log
keys are served without
--- timeout: 10



=== TEST 19: log=info: a key served is logged at info
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_hls_key $kver $kk log=info;
    }
--- request
GET /vodlms/keys/lec-key/v1/0.key
--- more_headers
Cookie: session=t084-ann
--- response_body eval
$::key0
--- error_log eval
[qr/\[info\].*vodlms: key served: user "8401" video "lec-key" version "v1" key 0 \(from the database\), answering 200/]



=== TEST 20: HEAD: the headers of the answer, no key
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_hls_key $kver $kk;
    }
--- request
HEAD /vodlms/keys/lec-key/v1/0.key
--- more_headers
Cookie: session=t084-ann
--- response_headers
Content-Length: 16
Cache-Control: no-store
--- response_body



=== TEST 21: vodlms_status counts key fetches by outcome
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_hls_key $kver $kk;
    }
    location = /status { vodlms_status; }
--- pipelined_requests eval
["GET /vodlms/keys/lec-key/v1/0.key", "GET /vodlms/keys/lec-key/v1/7.key", "GET /vodlms/keys/lec-key/v1/0.key", "GET /status"]
--- more_headers
Cookie: session=t084-ann
--- error_code eval
[200, 404, 200, 200]
--- response_body_like eval
[qr/\A\x00\x01/, qr/no_such_key/, qr/\A\x00\x01/,
 qr/vodlms_requests_total\{endpoint="key",outcome="ok"\} 2\n.*vodlms_requests_total\{endpoint="key",outcome="no_such_key"\} 1\n/s]



=== TEST 22: the debug log follows a fetch: where the key came from, what Redis counted, the verdict
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_hls_key $kver $kk budget=1000/1m;
        vodlms_hls_key_cache answers;
    }
--- pipelined_requests eval
["GET /vodlms/keys/lec-key/v1/2.key", "GET /vodlms/keys/lec-key/v1/2.key"]
--- more_headers
Cookie: session=t084-ann
--- error_code eval
[200, 200]
--- error_log eval
[qr/\[debug\].*vodlms key: user "8401" video "lec-key" version "v1" key 2 asked of PostgreSQL/,
 qr/\[debug\].*vodlms key: cache hit for user "8401" video "lec-key" version "v1" key 2, 33 bytes/,
 qr/\[debug\].*vodlms key: counting user "8401" video "lec-key" version "v1" key 2 in Redis \(window 60000 ms, pace state kept 0 ms\)/,
 qr/\[debug\].*vodlms key: fetch \d+ in the window \(\d+ ms left\), released up to -1 ms, playhead at 0 ms, the key starts at 1200000 ms: verdict 0, retry after 0 s/]



=== TEST 23: a key query counts to the user's query limit; a cached key is free
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG" connect_timeout=5s timeout=5s;
    vodlms_cache_zone zone=answers:1m;
    vodlms_user_query_zone zone=users:1m rate=1r/m;
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_enrollment_cache answers;
        vodlms_user_query_limit zone=users burst=1;
        vodlms_hls_key $kver $kk;
        vodlms_hls_key_cache answers;
    }
--- pipelined_requests eval
["GET /vodlms/keys/lec-key/v1/0.key", "GET /vodlms/keys/lec-key/v1/1.key", "GET /vodlms/keys/lec-key/v1/0.key"]
--- more_headers
Cookie: session=t084-ann
--- error_code eval
[200, 429, 200]
--- response_body eval
[$::key0, qr/\A\{"error":"too_many_queries"/, $::key0]
--- error_log
key 0 (from the database), answering 200
key 0 (from the cache), answering 200



=== TEST 24: vodlms_cors_origins: a preflight from an allowed origin needs no session and allows X-Vodlms-Playback (vodlms_streams' playbackId)
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_cors_origins https://lms.example.test;
        vodlms_hls_key $kver $kk;
    }
--- request
OPTIONS /vodlms/keys/lec-key/v1/0.key
--- more_headers
Origin: https://lms.example.test
Access-Control-Request-Method: GET
Access-Control-Request-Headers: x-vodlms-playback
--- error_code: 204
--- response_headers
Access-Control-Allow-Origin: https://lms.example.test
Access-Control-Allow-Credentials: true
Access-Control-Allow-Methods: GET, HEAD, OPTIONS
Access-Control-Allow-Headers: Authorization, Content-Type, X-Vodlms-Playback
--- response_body
--- no_error_log
key served
[error]



=== TEST 25: vodlms_cors_origins: the key to an allowed origin carries the CORS headers
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_cors_origins https://lms.example.test;
        vodlms_hls_key $kver $kk;
    }
--- request
GET /vodlms/keys/lec-key/v1/0.key
--- more_headers
Cookie: session=t084-ann
Origin: https://lms.example.test
--- response_headers
Access-Control-Allow-Origin: https://lms.example.test
Access-Control-Allow-Credentials: true
Vary: Origin
Cache-Control: no-store
--- response_body eval
$::key0
--- no_error_log
[error]



=== TEST 26: vodlms_cors_origins: a refusal carries them too, so a player on that origin can read why it got no key
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_cors_origins https://lms.example.test;
        vodlms_hls_key $kver $kk;
    }
--- request
GET /vodlms/keys/lec-key/v1/0.key
--- more_headers
Origin: https://lms.example.test
--- error_code: 401
--- response_headers
Access-Control-Allow-Origin: https://lms.example.test
Access-Control-Allow-Credentials: true
--- response_body
{"error":"no_session","message":"no session token in the request"}
--- no_error_log
[error]



=== TEST 27: vodlms_cors_origins: another origin gets no CORS headers (and a preflight from it is an unauthenticated request)
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_cors_origins https://lms.example.test;
        vodlms_hls_key $kver $kk;
    }
--- request
OPTIONS /vodlms/keys/lec-key/v1/0.key
--- more_headers
Origin: https://evil.example.test
Access-Control-Request-Method: GET
--- error_code: 401
--- response_headers
!Access-Control-Allow-Origin
Vary: Origin
--- no_error_log
key served
[error]



=== TEST 28: the pace counts from the last release: a viewer who fetched key 0 yesterday gets the next key, not the whole lecture
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_hls_key $kver $kk pace=1x allowance=10s;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- pipelined_requests eval
["GET /ctl/pace/forget/lec-long/8405", "GET /vodlms/keys/lec-long/v1/0.key", "GET /ctl/pace/age/lec-long/8405/82800", "GET /vodlms/keys/lec-long/v1/1.key", "GET /vodlms/keys/lec-long/v1/11.key", "GET /vodlms/keys/lec-long/v1/2.key"]
--- more_headers
Cookie: session=t084-eve
--- error_code eval
[200, 200, 200, 200, 429, 429]
--- response_body eval
["forgot\n", ::long_key(0), "aged 82800 s\n", ::long_key(1),
 qr/\A\{"error":"key_pace","message":"[^"]+","startsAt":660\.000,"releasedTo":60\.000,"retryAfter":590\}\n\z/,
 qr/\A\{"error":"key_pace","message":"[^"]+","startsAt":120\.000,"releasedTo":60\.000,"retryAfter":50\}\n\z/]
--- raw_response_headers_like eval
["", "", "", "", qr/\r\nRetry-After: 590\r\n/, qr/\r\nRetry-After: 50\r\n/]
--- error_log
user "8405" video "lec-long" version "v1" key 1 (from the database; released up to 0 s before), answering 200
user "8405" video "lec-long" version "v1" key 11 (ahead of pace=), answering 429



=== TEST 29: a viewer at pace, asking each key 10 s before it plays, gets every key of the lecture
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_hls_key $kver $kk pace=1x allowance=10s;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- pipelined_requests eval
["GET /ctl/pace/forget/lec-long/8405", "GET /vodlms/keys/lec-long/v1/0.key",
 "GET /ctl/pace/age/lec-long/8405/50", "GET /vodlms/keys/lec-long/v1/1.key",
 map { ("GET /ctl/pace/age/lec-long/8405/60", "GET /vodlms/keys/lec-long/v1/$_.key") } 2 .. 11]
--- more_headers
Cookie: session=t084-eve
--- error_code eval
[(200) x 24]
--- response_body eval
["forgot\n", ::long_key(0), "aged 50 s\n", ::long_key(1),
 map { ("aged 60 s\n", ::long_key($_)) } 2 .. 11]
--- no_error_log
answering 429



=== TEST 30: seeking back is free and moves nothing: the next key is due when the playhead is 10 s from it
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_hls_key $kver $kk pace=1x allowance=10s;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- pipelined_requests eval
["GET /ctl/pace/forget/lec-long/8405", "GET /vodlms/keys/lec-long/v1/0.key",
 "GET /ctl/pace/age/lec-long/8405/50", "GET /vodlms/keys/lec-long/v1/1.key",
 "GET /ctl/pace/age/lec-long/8405/60", "GET /vodlms/keys/lec-long/v1/2.key",
 "GET /vodlms/keys/lec-long/v1/0.key", "GET /vodlms/keys/lec-long/v1/1.key",
 "GET /vodlms/keys/lec-long/v1/3.key"]
--- more_headers
Cookie: session=t084-eve
--- error_code eval
[200, 200, 200, 200, 200, 200, 200, 200, 429]
--- response_body eval
["forgot\n", ::long_key(0), "aged 50 s\n", ::long_key(1), "aged 60 s\n", ::long_key(2),
 ::long_key(0), ::long_key(1),
 qr/\A\{"error":"key_pace","message":"[^"]+","startsAt":180\.000,"releasedTo":120\.000,"retryAfter":60\}\n\z/]
--- raw_response_headers_like eval
["", "", "", "", "", "", "", "", qr/\r\nRetry-After: 60\r\n/]



=== TEST 31: a resume: the first key may be anywhere in the lecture, but releases only itself; the next one follows at pace
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_hls_key $kver $kk pace=1x allowance=10s;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- pipelined_requests eval
["GET /ctl/pace/forget/lec-long/8405", "GET /vodlms/keys/lec-long/v1/7.key",
 "GET /vodlms/keys/lec-long/v1/8.key", "GET /vodlms/keys/lec-long/v1/5.key",
 "GET /ctl/pace/age/lec-long/8405/50", "GET /vodlms/keys/lec-long/v1/8.key",
 "GET /vodlms/keys/lec-long/v1/9.key"]
--- more_headers
Cookie: session=t084-eve
--- error_code eval
[200, 200, 429, 200, 200, 200, 429]
--- response_body eval
["forgot\n", ::long_key(7),
 qr/\A\{"error":"key_pace","message":"[^"]+","startsAt":480\.000,"releasedTo":420\.000,"retryAfter":50\}\n\z/,
 ::long_key(5), "aged 50 s\n", ::long_key(8),
 qr/"retryAfter":60\}/]
--- error_log
user "8405" video "lec-long" version "v1" key 7 (from the database; the viewer's first key), answering 200



=== TEST 32: every fetch keeps the pace state for pace_reset from then: it never lapses under a viewer who is still watching
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_hls_key $kver $kk pace=1x allowance=10s pace_reset=1m;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- pipelined_requests eval
["GET /ctl/pace/forget/lec-long/8405", "GET /vodlms/keys/lec-long/v1/0.key",
 "GET /ctl/pace/expire/lec-long/8405/3", "GET /vodlms/keys/lec-long/v1/0.key",
 "GET /ctl/pace/ttl/lec-long/8405"]
--- more_headers
Cookie: session=t084-eve
--- error_code eval
[200, 200, 200, 200, 200]
--- response_body_like eval
["forgot", "", "expires in 3 s", "", qr/\Apttl (?:5\d{4}|60000)\n\z/]



=== TEST 33: the allowance is a lead, not a gift per key: asking each key the moment it is due gains nothing on real time
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_hls_key $kver $kk pace=1x allowance=10s;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- pipelined_requests eval
["GET /ctl/pace/forget/lec-long/8405", "GET /vodlms/keys/lec-long/v1/0.key",
 "GET /ctl/pace/age/lec-long/8405/50", "GET /vodlms/keys/lec-long/v1/1.key",
 "GET /ctl/pace/age/lec-long/8405/50", "GET /vodlms/keys/lec-long/v1/2.key",
 "GET /ctl/pace/age/lec-long/8405/10", "GET /vodlms/keys/lec-long/v1/2.key"]
--- more_headers
Cookie: session=t084-eve
--- error_code eval
[200, 200, 200, 200, 200, 429, 200, 200]
--- response_body eval
["forgot\n", ::long_key(0), "aged 50 s\n", ::long_key(1), "aged 50 s\n",
 qr/\A\{"error":"key_pace","message":"[^"]+","startsAt":120\.000,"releasedTo":60\.000,"retryAfter":10\}\n\z/,
 "aged 10 s\n", ::long_key(2)]



=== TEST 34: a reload onto a re-encoded version with other key periods goes on from where the viewer is: keys are placed by where they start, from the database or the cache
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_hls_key $kver $kk pace=1x allowance=10s;
        vodlms_hls_key_cache answers;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- pipelined_requests eval
["GET /ctl/pace/forget/lec-long/8405", "GET /vodlms/keys/lec-long/v1/0.key",
 "GET /ctl/pace/age/lec-long/8405/50", "GET /vodlms/keys/lec-long/v1/1.key",
 "GET /ctl/pace/age/lec-long/8405/60", "GET /vodlms/keys/lec-long/v2/3.key",
 "GET /ctl/pace/age/lec-long/8405/30", "GET /vodlms/keys/lec-long/v2/4.key",
 "GET /vodlms/keys/lec-long/v2/5.key",
 "GET /ctl/pace/age/lec-long/8405/30", "GET /vodlms/keys/lec-long/v2/5.key"]
--- more_headers
Cookie: session=t084-eve
--- error_code eval
[200, 200, 200, 200, 200, 200, 200, 200, 429, 200, 200]
--- response_body eval
["forgot\n", ::long_key(0), "aged 50 s\n", ::long_key(1), "aged 60 s\n", ::long_key_v2(3),
 "aged 30 s\n", ::long_key_v2(4),
 qr/\A\{"error":"key_pace","message":"[^"]+","startsAt":150\.000,"releasedTo":120\.000,"retryAfter":20\}\n\z/,
 "aged 30 s\n", ::long_key_v2(5)]
--- error_log
user "8405" video "lec-long" version "v2" key 3 (from the database; released up to 60 s before), answering 200
user "8405" video "lec-long" version "v2" key 5 (from the cache; released up to 120 s before), answering 200
