# The viewer watermark (issue #22, part 3): the playback answer carries
# "watermark", a text built from session fields (vodlms_session_field,
# $vodlms_session_<name>) and enrollment columns ($vodlms_video_<column>),
# JSON-escaped, cut to 256 bytes at a character boundary, and absent when
# vodlms_watermark is not configured.  A session field that is missing
# renders empty; a field never decides anything.  Mistakes in the
# configuration fail nginx -t.

use FindBin;
use lib "$FindBin::Bin/lib";
use VodlmsTest;
use JSON::PP ();
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_REDIS_PORT} ||= 6379;
my $r = $ENV{TEST_NGINX_REDIS_PORT};
my $json = JSON::PP->new->utf8->canonical;

# alice with the fields a watermark names: an email, a nested display name
redis_cmd($r, 'SET', 'session:t078-alice', $json->encode({
    user_id => '1001', email => 'alice@example.com',
    profile => { name => 'Alice Student' } }), 'EX', 3600);

# every character JSON must escape, and UTF-8 it must not; no email at all
redis_cmd($r, 'SET', 'session:t078-odd', $json->encode({
    user_id => 1001,
    profile => { name => qq(He said "hi"\\ \t\n\x01 caf\x{e9} \x{1F3AC} </b>) } }),
    'EX', 3600);

# a name of 401 bytes: "a" then 200 two-byte characters
redis_cmd($r, 'SET', 'session:t078-long', $json->encode({
    user_id => '1001', profile => { name => 'a' . ("\x{e9}" x 200) } }), 'EX', 3600);

# fields of every JSON type
redis_cmd($r, 'SET', 'session:t078-types', $json->encode({
    user_id => '1001', n => 42, x => 1.5, t => JSON::PP::true, f => JSON::PP::false,
    o => { k => 1 }, a => [1, 2], z => undef }), 'EX', 3600);

# a hash session (vodlms_session_value hash): fields are HMGET'ed with the user
redis_cmd($r, 'DEL', 'session:t078-hash');
redis_cmd($r, 'HSET', 'session:t078-hash', 'user_id', '1001',
          'email', 'alice@hash.example');

my $vectors = $ENV{VODLMS_VECTORS_DIR} || "$FindBin::Bin/../../shared/vectors/cloudfront";
-f "$vectors/test_private_key.pem" or die "no CloudFront test vectors at $vectors\n";
$ENV{TEST_NGINX_CF_KEY} = private_key("$vectors/test_private_key.pem");

my $pg = start_pg();
$ENV{TEST_NGINX_PRIVATE_PG} = $pg->conninfo;

# what every answer for alice and intro-ready starts with
our $head = '{"videoId":"intro-ready","title":"Lecture 1: What is a video codec?",'
    . '"duration":634.5,"status":"ready",'
    . '"manifestUrl":"https://cdn.example.test/hls/intro-ready/master.m3u8",'
    . '"expiresAt":2000000000,"resumeAt":0';

# (generous timeouts: the suite also runs under valgrind, ./build.sh test --valgrind)
block_defaults(http_config => <<'EOF');
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT connect_timeout=10s timeout=10s;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG" connect_timeout=10s timeout=10s;
    vodlms_cache_zone zone=t078:1m;
    vodlms_cloudfront_url https://cdn.example.test;
    vodlms_cloudfront_key K2JCJMDEHXQW5F $TEST_NGINX_CF_KEY;
    vodlms_cloudfront_expiry_bucket 1000000000s;
EOF

timeout(30) if $ENV{TEST_NGINX_USE_VALGRIND};
no_shuffle();
run_tests();

__DATA__

=== TEST 1: the answer carries the viewer's email, name and id from the session
--- config
    location ~ ^/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_session_field email;
        vodlms_session_field name profile.name;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_watermark "$vodlms_session_name <$vodlms_session_email> #$vodlms_user_id";
        vodlms_playback cookies;
    }
--- request
GET /videos/intro-ready/stream
--- more_headers
Cookie: session=t078-alice
--- response_body eval
$::head . ',"watermark":"Alice Student <alice@example.com> #1001"}' . "\n"
--- no_error_log
[error]
[warn]



=== TEST 2: without vodlms_watermark the answer has no "watermark" at all
--- config
    location ~ ^/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_session_field email;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_playback cookies;
    }
--- request
GET /videos/intro-ready/stream
--- more_headers
Cookie: session=t078-alice
--- response_body eval
$::head . "}\n"
--- no_error_log
[error]



=== TEST 3: "vodlms_watermark off" in a location turns off the server's
--- config
    vodlms_session_field email;
    vodlms_watermark "$vodlms_session_email";
    location ~ ^/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_playback cookies;
        vodlms_watermark off;
    }
--- request
GET /videos/intro-ready/stream
--- more_headers
Cookie: session=t078-alice
--- response_body eval
$::head . "}\n"
--- no_error_log
[error]



=== TEST 4: inherited from the server level, evaluated per viewer
--- config
    vodlms_session_field email;
    vodlms_watermark "$vodlms_session_email";
    location ~ ^/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_playback cookies;
    }
--- request
GET /videos/intro-ready/stream
--- more_headers
Cookie: session=t078-alice
--- response_body eval
$::head . ',"watermark":"alice@example.com"}' . "\n"
--- no_error_log
[error]



=== TEST 5: quotes, a backslash, tab, newline and a control character are escaped; UTF-8 and "</b>" are not
--- config
    location ~ ^/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_session_field name profile.name;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_watermark "$vodlms_session_name";
        vodlms_playback cookies;
    }
--- request
GET /videos/intro-ready/stream
--- more_headers
Cookie: session=t078-odd
--- response_body eval
$::head . ',"watermark":"He said \"hi\"\\\\ \\t\\n\\u0001 caf' . "\xc3\xa9 \xf0\x9f\x8e\xac" . ' </b>"}' . "\n"
--- no_error_log
[error]



=== TEST 6: a session field that is missing renders empty, and the rest of the text stays
--- config
    location ~ ^/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_session_field email;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_watermark "[$vodlms_session_email] $vodlms_user_id";
        vodlms_playback cookies;
    }
--- request
GET /videos/intro-ready/stream
--- more_headers
Cookie: session=t078-odd
--- response_body eval
$::head . ',"watermark":"[] 1001"}' . "\n"
--- no_error_log
[error]



=== TEST 7: a field is cut to 256 bytes, the watermark too, each at a character boundary
--- config
    location ~ ^/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_session_field name profile.name;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_watermark "xx$vodlms_session_name";
        vodlms_playback cookies;
        add_header X-Name-Length $vodlms_session_name;
    }
--- request
GET /videos/intro-ready/stream
--- more_headers
Cookie: session=t078-long
--- response_body eval
# the field: "a" + 127 x 2 bytes = 255 (a 128th would make 257); the
# watermark: "xx" + "a" + 126 x 2 bytes = 255 (a 127th would make 257)
$::head . ',"watermark":"xxa' . ("\xc3\xa9" x 126) . '"}' . "\n"
--- response_headers eval
"X-Name-Length: a" . ("\xc3\xa9" x 127)
--- no_error_log
[error]



=== TEST 8: a literal text longer than 256 bytes is cut to 256
--- config
    location ~ ^/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_watermark "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789";
        vodlms_playback cookies;
    }
--- request
GET /videos/intro-ready/stream
--- more_headers
Cookie: session=t078-alice
--- response_body eval
$::head . ',"watermark":"' . substr('0123456789' x 30, 0, 256) . '"}' . "\n"
--- no_error_log
[error]



=== TEST 9: enrollment columns: the viewer's email and name from the LMS's users table
--- config
    location ~ ^/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_enrollment_query 'SELECT v.id, v.title, v.duration_seconds, v.status,
              v.storage_prefix, true AS allowed,
              u.email AS viewer_email, u.display_name AS viewer_name
            FROM vodlms.videos v JOIN vodlms.users u ON u.id = $2::text
            WHERE v.id = $1' $vodlms_video_id $vodlms_user_id;
        vodlms_watermark "$vodlms_video_viewer_name $vodlms_video_viewer_email";
        vodlms_playback cookies;
    }
--- request
GET /videos/intro-ready/stream
--- more_headers
Cookie: session=t078-alice
--- response_body eval
$::head . ',"watermark":"Alice Student alice@example.com"}' . "\n"
--- no_error_log
[error]



=== TEST 10: fields of every JSON type: numbers and booleans as JSON writes them, objects, arrays and null empty
--- config
    location ~ ^/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_session_field n;
        vodlms_session_field x;
        vodlms_session_field t;
        vodlms_session_field f;
        vodlms_session_field o;
        vodlms_session_field a;
        vodlms_session_field z;
        vodlms_session_field deep o.k.nope;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_watermark "$vodlms_session_n|$vodlms_session_x|$vodlms_session_t|$vodlms_session_f|$vodlms_session_o|$vodlms_session_a|$vodlms_session_z|$vodlms_session_deep";
        vodlms_playback cookies;
    }
--- request
GET /videos/intro-ready/stream
--- more_headers
Cookie: session=t078-types
--- response_body eval
$::head . ',"watermark":"42|1.5|true|false||||"}' . "\n"
--- no_error_log
[error]



=== TEST 11: a hash session: the fields come with the user in the same HMGET
--- config
    location ~ ^/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_session_value hash;
        vodlms_session_field email;
        vodlms_session_field missing;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_watermark "$vodlms_session_email$vodlms_session_missing";
        vodlms_playback cookies;
    }
--- request
GET /videos/intro-ready/stream
--- more_headers
Cookie: session=t078-hash
--- response_body eval
$::head . ',"watermark":"alice@hash.example"}' . "\n"
--- no_error_log
[error]



=== TEST 12: a cached session keeps its fields: the second answer is a cache hit with the same watermark
--- config
    location ~ ^/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_session_cache t078 valid=1m;
        vodlms_session_field email;
        vodlms_session_field name profile.name;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_watermark "$vodlms_session_name $vodlms_session_email";
        vodlms_playback cookies;
        add_header X-Session-Cache $vodlms_session_cache;
    }
--- pipelined_requests eval
["GET /videos/intro-ready/stream", "GET /videos/intro-ready/stream"]
--- more_headers
Cookie: session=t078-alice
--- response_body eval
[$::head . ',"watermark":"Alice Student alice@example.com"}' . "\n",
 $::head . ',"watermark":"Alice Student alice@example.com"}' . "\n"]
--- raw_response_headers_like eval
[qr/X-Session-Cache: MISS/, qr/X-Session-Cache: HIT/]
--- no_error_log
[error]



=== TEST 13: a gate with other fields does not read the first gate's cached answer
--- config
    location ~ ^/a/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_session_cache t078 valid=1m;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_playback cookies;
        add_header X-Session-Cache $vodlms_session_cache;
    }
    location ~ ^/b/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_session_cache t078 valid=1m;
        vodlms_session_field email;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_watermark "$vodlms_session_email";
        vodlms_playback cookies;
        add_header X-Session-Cache $vodlms_session_cache;
    }
--- pipelined_requests eval
["GET /a/videos/intro-ready/stream", "GET /b/videos/intro-ready/stream"]
--- more_headers
Cookie: session=t078-alice
--- response_body eval
[$::head . "}\n", $::head . ',"watermark":"alice@example.com"}' . "\n"]
--- raw_response_headers_like eval
[qr/X-Session-Cache: MISS/, qr/X-Session-Cache: MISS/]
--- no_error_log
[error]



=== TEST 14: $vodlms_session_<name> is a variable like the others (here in a header); empty without a session
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_field email;
        add_header X-Email "[$vodlms_session_email]" always;
        try_files /index.html =404;
    }
--- user_files
>>> index.html
ok
--- pipelined_requests eval
["GET /t", "GET /t"]
--- more_headers eval
["Cookie: session=t078-alice", "Cookie: session=t078-nobody"]
--- error_code eval
[200, 401]
--- raw_response_headers_like eval
[qr/X-Email: \[alice\@example\.com\]/, qr/X-Email: \[\]/]



=== TEST 15: nginx -t: a watermark naming a session field that is not configured
--- config
    location ~ ^/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_session_field email;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_watermark "$vodlms_session_emial";
        vodlms_playback cookies;
    }
--- must_die
--- error_log
"vodlms_watermark" uses $vodlms_session_emial, but no "vodlms_session_field emial" applies here



=== TEST 16: nginx -t: a field name that cannot be a variable name
--- config
    location / {
        vodlms_session_field E-mail;
    }
--- must_die
--- error_log
invalid field name "E-mail"



=== TEST 17: nginx -t: "cache" is taken by $vodlms_session_cache
--- config
    location / {
        vodlms_session_field cache;
    }
--- must_die
--- error_log
cannot name a field "cache"



=== TEST 18: nginx -t: a dotted path cannot match a hash session's flat fields
--- config
    location / {
        vodlms_auth on;
        vodlms_session_value hash;
        vodlms_session_field name profile.name;
    }
--- must_die
--- error_log
hash sessions have flat fields: the dotted path "profile.name"



=== TEST 19: nginx -t: at most 8 fields
--- config
    location / {
        vodlms_session_field a1; vodlms_session_field a2; vodlms_session_field a3;
        vodlms_session_field a4; vodlms_session_field a5; vodlms_session_field a6;
        vodlms_session_field a7; vodlms_session_field a8; vodlms_session_field a9;
    }
--- must_die
--- error_log
too many session fields: at most 8
