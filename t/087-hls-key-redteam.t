# Red-team reproductions for the key endpoint of encrypted HLS (issue #22,
# vodlms_hls_key), beside t/084-hls-key.t.
#
#  - A lecture being re-encoded (a re-upload: the row is 'queued' or
#    'processing', its storage_prefix still the old version, whose segments
#    viewers mid-playback keep fetching until old_version_grace) keeps
#    serving the old version's keys to enrolled viewers: with key_rotation
#    a player fetches key k+1 mid-lecture, and a 409 there stops every
#    playback of the lecture for as long as the encode runs.
#  - What a client sends never forges a line of the error log: a refused
#    version or key index with a newline in it (a regex looser than the
#    documented one, as in t/084 TEST 7) is not written raw.
#  - "satisfy any" with an allowed address, and an internal redirect
#    (error_page) from a lecture of course A the viewer may watch to a key
#    of course B, never give a key the gates did not grant for that video
#    (security.md names t/084 for "satisfy any", which tested SSI only).
#
# A private PostgreSQL and the suite's Redis for sessions.

use FindBin;
use lib "$FindBin::Bin/lib";
use VodlmsTest;
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_REDIS_PORT} ||= 6379;
my $r = $ENV{TEST_NGINX_REDIS_PORT};

redis_cmd($r, 'SET', 'session:t087-amy', '{"user_id":"8701"}', 'EX', 3600);
redis_cmd($r, 'SET', 'session:t087-ben', '{"user_id":"8702"}', 'EX', 3600);

my $pg = start_pg();
$ENV{TEST_NGINX_PRIVATE_PG} = $pg->conninfo;

$pg->psql(q{INSERT INTO vodlms.users (id, email, role) VALUES
            ('8701', 't087-amy@example.com', 'student'), ('8702', 't087-ben@example.com', 'student')});
$pg->psql(q{INSERT INTO vodlms.enrollments (user_id, course_id, status) VALUES
            ('8701', 'course-intro', 'active')});
# re-uploaded: the helper is encoding the new upload; v1 is what viewers play
$pg->psql(q{INSERT INTO vodlms.videos (id, course_id, title, duration_seconds, status, storage_prefix)
            VALUES ('lec-reenc', 'course-intro', 'Being re-encoded', 1800, 'processing',
                    'hls/lec-reenc/v1/')});
# a ready lecture, for the "satisfy any" blocks
$pg->psql(q{INSERT INTO vodlms.videos (id, course_id, title, duration_seconds, status, storage_prefix)
            VALUES ('lec-ok', 'course-intro', 'Ready', 1800, 'ready', 'hls/lec-ok/v1/')});
$pg->psql(q{INSERT INTO vodlms.video_keys (video_id, version, key_index, key, first_segment, starts_ms) VALUES
            ('lec-ok', 'v1', 0, '\x000102030405060708090a0b0c0d0e0f', 0, 0)});
# course B: amy is not enrolled in it
$pg->psql(q{INSERT INTO vodlms.courses (id, title, slug) VALUES ('course-t087-b', 'Course B', 'course-t087-b')});
$pg->psql(q{INSERT INTO vodlms.videos (id, course_id, title, duration_seconds, status, storage_prefix)
            VALUES ('lec-b', 'course-t087-b', 'Course B lecture', 1800, 'ready', 'hls/lec-b/v1/')});
$pg->psql(q{INSERT INTO vodlms.video_keys (video_id, version, key_index, key, first_segment, starts_ms) VALUES
            ('lec-b', 'v1', 0, '\x303132333435363738393a3b3c3d3e3f', 0, 0)});
# a re-encode that failed: no longer being encoded, the lecture is withdrawn
$pg->psql(q{INSERT INTO vodlms.videos (id, course_id, title, duration_seconds, status, storage_prefix, error)
            VALUES ('lec-failed', 'course-intro', 'Re-encode failed', 1800, 'failed',
                    'hls/lec-failed/v1/', 'unsupported_source')});
$pg->psql(q{INSERT INTO vodlms.video_keys (video_id, version, key_index, key, first_segment, starts_ms) VALUES
            ('lec-failed', 'v1', 0, '\x000102030405060708090a0b0c0d0e0f', 0, 0)});
$pg->psql(q{INSERT INTO vodlms.video_keys (video_id, version, key_index, key, first_segment, starts_ms) VALUES
            ('lec-reenc', 'v1', 0, '\x000102030405060708090a0b0c0d0e0f', 0, 0),
            ('lec-reenc', 'v1', 1, '\x101112131415161718191a1b1c1d1e1f', 150, 600000)});

our $key0 = join '', map { chr } 0x00 .. 0x0f;
our $key1 = join '', map { chr } 0x10 .. 0x1f;

block_defaults(http_config => <<'EOF');
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG" connect_timeout=5s timeout=5s;
EOF

no_shuffle();
run_tests();

__DATA__

=== TEST 1: mid re-encode, an enrolled viewer still gets the playing version's next key
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_hls_key $kver $kk;
    }
--- request
GET /vodlms/keys/lec-reenc/v1/1.key
--- more_headers
Cookie: session=t087-amy
--- error_code: 200
--- response_body eval
$::key1
--- error_log
vodlms: key served: user "8701" video "lec-reenc" version "v1" key 1 (from the database), answering 200



=== TEST 2: mid re-encode, a viewer who is not enrolled still gets no key
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_hls_key $kver $kk;
    }
--- request
GET /vodlms/keys/lec-reenc/v1/1.key
--- more_headers
Cookie: session=t087-ben
--- error_code: 403
--- no_error_log
key served



=== TEST 3: a failed video's keys are still refused (409): only an encode in progress lets them through
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_hls_key $kver $kk;
    }
--- request
GET /vodlms/keys/lec-failed/v1/0.key
--- more_headers
Cookie: session=t087-amy
--- error_code: 409
--- no_error_log
key served



=== TEST 4: the playback location itself still says 409 for a lecture being encoded
--- config
    location ~ ^/s/(?<v>[A-Za-z0-9_-]+)$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $v;
        try_files /nonexistent =204;
    }
--- request
GET /s/lec-reenc
--- more_headers
Cookie: session=t087-amy
--- error_code: 409



=== TEST 5: a refused version with a newline forges no log line
--- config
    location ~ ^/k/(?<kv>[^/]+)/(?<kver>[^/]+)/(?<kk>[^/]+)\.key$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_hls_key $kver $kk;
    }
--- request
GET /k/intro-ready/v1%0AFORGED%20vodlms:%20key%20served:%20user%20%228702%22/0.key
--- more_headers
Cookie: session=t087-amy
--- error_code: 400
--- error_log
malformed key version or index: user "8701" video "intro-ready"
--- no_error_log eval
qr/^FORGED vodlms: key served: user "8702"" key "0"/



=== TEST 6: a refused key index with a newline forges no log line
--- config
    location ~ ^/k/(?<kv>[^/]+)/(?<kver>[^/]+)/(?<kk>[^/]+)\.key$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_hls_key $kver $kk;
    }
--- request
GET /k/intro-ready/v1/1%0AFORGED.key
--- more_headers
Cookie: session=t087-amy
--- error_code: 400
--- error_log
malformed key version or index: user "8701" video "intro-ready"
--- no_error_log eval
qr/^FORGED" \(/



=== TEST 7: "satisfy any" with an address allowed: no session is still no key
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        satisfy any;
        allow 127.0.0.1;
        deny all;
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_hls_key $kver $kk;
    }
--- request
GET /vodlms/keys/lec-ok/v1/0.key
--- error_code: 401
--- no_error_log
key served



=== TEST 8: "satisfy any" with an address allowed: a viewer who is not enrolled gets no key
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        satisfy any;
        allow 127.0.0.1;
        deny all;
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_hls_key $kver $kk;
    }
--- request
GET /vodlms/keys/lec-ok/v1/0.key
--- more_headers
Cookie: session=t087-ben
--- error_code: 403
--- no_error_log
key served



=== TEST 9: "satisfy any": an enrolled viewer still gets the key
--- config
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        satisfy any;
        allow 127.0.0.1;
        deny all;
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_hls_key $kver $kk;
    }
--- request
GET /vodlms/keys/lec-ok/v1/0.key
--- more_headers
Cookie: session=t087-amy
--- error_code: 200
--- response_body eval
$::key0



=== TEST 10: an internal redirect to course B's key from a location of course A the viewer may use runs the gates again, for B
--- config
    location ~ ^/open/(?<v>[A-Za-z0-9_-]+)$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $v;
        error_page 404 = /vodlms/keys/lec-b/v1/0.key;
        try_files /nonexistent =404;
    }
    location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\.key$" {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $kv;
        vodlms_hls_key $kver $kk;
    }
--- request
GET /open/intro-ready
--- more_headers
Cookie: session=t087-amy
--- error_code: 403
--- response_body
{"error":"not_enrolled","message":"the user is not enrolled in the video's course"}
--- no_error_log
key served
