# Coverage against the attacks a red-team read found in its first version
# (issue #19), each a reproduction that failed before the fix:
#   TEST 1  a node that has seen the viewer kept its own bits: after another
#           node flushed 0-30 s, "10s unwatched" still refused 32 s here and
#           GET's seekLimit stayed 10 (a fresh node allowed it);
#   TEST 3  an entry kept the bitmap of the duration it was made with: 10 s
#           watched of a 10 s video re-encoded to 1800 s completed it;
#   TEST 4  the player's duration reached the database's judge: with the
#           row's duration gone, {"currentTime":1,"duration":1} completed an
#           1800 s lecture of which 5 s were played.
# (A fraction under a millionth, which made every row be set aside, is now
# refused by nginx -t: t/010-config.t.)

use FindBin;
use lib "$FindBin::Bin/lib";
use VodlmsTest;
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_REDIS_PORT} ||= 6379;
my $r = $ENV{TEST_NGINX_REDIS_PORT};

my $pg = start_pg();
$ENV{TEST_NGINX_PRIVATE_PG} = $pg->conninfo;

# one student per block, so that no block sees another's entry
my @students = (['ra', 1901], ['rc', 1903], ['rd', 1904]);
for my $u (@students) {
    redis_cmd($r, 'SET', "session:t107-$u->[0]", qq({"user_id":"$u->[1]"}), 'EX', 3600);
    $pg->psql(qq{INSERT INTO vodlms.users (id, email, role) VALUES ('$u->[1]', '$u->[0]\@example.com', 'student')});
    $pg->psql(qq{INSERT INTO vodlms.enrollments (user_id, course_id, status) VALUES ('$u->[1]', 'course-intro', 'active')});
}

# a minute, a clip that a re-encode makes 1800 s, and a lecture whose
# duration the LMS clears
$pg->psql(q{INSERT INTO vodlms.videos (id, course_id, title, duration_seconds, status, storage_prefix)
            VALUES ('lec-60', 'course-intro', 'One minute', 60, 'ready', 'hls/lec-60/'),
                   ('lec-chg', 'course-intro', 'Re-encoded', 10, 'ready', 'hls/lec-chg/'),
                   ('lec-nul', 'course-intro', 'Duration goes NULL', 1800, 'ready', 'hls/lec-nul/')});


my ($ctl_port, $ctl) = control_server(
    # /row, /cov and /second (t/lib/VodlmsTest.pm)
    progress_row_handlers($pg),
    # what another node's flush would write, and changes of the video's duration
    '/othernode' => sub {
        $pg->psql(q{INSERT INTO vodlms.watch_progress (user_id, video_id, position_seconds, max_position_seconds, duration_seconds, coverage)
                    VALUES ('1901', 'lec-60', 30, 30, 60, B'111111000000')
                    ON CONFLICT (user_id, video_id) DO UPDATE SET coverage = B'111111000000', position_seconds = 30, max_position_seconds = 30});
        "other node flushed\n";
    },
    '/nullduration' => sub {
        $pg->psql(q{UPDATE vodlms.videos SET duration_seconds = NULL WHERE id = 'lec-nul'});
        "duration gone\n";
    },
    '/reencode' => sub {
        $pg->psql(q{UPDATE vodlms.videos SET duration_seconds = 1800 WHERE id = 'lec-chg'});
        "re-encoded\n";
    },
);
$ENV{TEST_NGINX_CTL_PORT} = $ctl_port;

# every block loads the module, and has these http{} lines unless it has its own
block_defaults(http_config => <<'EOF');
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
    vodlms_progress_zone zone=progress:1m flush=200ms;
EOF

no_shuffle();
run_tests();

__DATA__

=== TEST 1: this node saw the viewer at 1 s; another node then flushed 0-30 s: "10s unwatched" takes 32 s here too, and GET's seekLimit is 40
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/progress$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_progress on;
        vodlms_progress_rate off;
        vodlms_progress_skip 10s unwatched;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- request eval
["POST /api/videos/lec-60/progress\n{\"videoId\":\"lec-60\",\"currentTime\":1,\"duration\":60}",
 "GET /ctl/row?user=1901&video=lec-60",
 "GET /ctl/othernode",
 "GET /ctl/cov?user=1901&video=lec-60&want=111111000000",
 "POST /api/videos/lec-60/progress\n{\"videoId\":\"lec-60\",\"currentTime\":32,\"duration\":60}",
 "GET /api/videos/lec-60/progress"]
--- more_headers eval
["Cookie: session=t107-ra", "", "", "", "Cookie: session=t107-ra", "Cookie: session=t107-ra"]
--- error_code eval
[204, 200, 200, 200, 204, 200]
--- response_body_like eval
[qr/^$/, qr/completed=false/, qr/flushed/, qr/^111111000000 /, qr/^$/, qr/"seekLimit":40\.000/]
--- timeout: 30



=== TEST 3: a re-encode while the entry lives (10 s, then 1800 s): 10 s watched does not complete the 1800 s lecture, in the buffer or in the database
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/progress$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_progress on;
        vodlms_progress_rate off;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- request eval
["POST /api/videos/lec-chg/progress\n{\"videoId\":\"lec-chg\",\"currentTime\":0.4,\"duration\":1800}", "GET /ctl/second", "POST /api/videos/lec-chg/progress\n{\"videoId\":\"lec-chg\",\"currentTime\":2,\"duration\":1800}", "GET /ctl/second", "POST /api/videos/lec-chg/progress\n{\"videoId\":\"lec-chg\",\"currentTime\":4,\"duration\":1800}",
 "GET /ctl/reencode", "GET /ctl/second",
 "POST /api/videos/lec-chg/progress\n{\"videoId\":\"lec-chg\",\"currentTime\":6,\"duration\":1800}", "GET /ctl/second", "POST /api/videos/lec-chg/progress\n{\"videoId\":\"lec-chg\",\"currentTime\":8,\"duration\":1800}", "GET /ctl/second", "POST /api/videos/lec-chg/progress\n{\"videoId\":\"lec-chg\",\"currentTime\":10,\"duration\":1800}",
 "GET /api/videos/lec-chg/progress",
 "GET /ctl/row?user=1903&video=lec-chg&max=10.000"]
--- more_headers eval
["Cookie: session=t107-rc", "", "Cookie: session=t107-rc", "", "Cookie: session=t107-rc", "", "",
 "Cookie: session=t107-rc", "", "Cookie: session=t107-rc", "", "Cookie: session=t107-rc",
 "Cookie: session=t107-rc", ""]
--- error_code eval
[204, 200, 204, 200, 204, 200, 200, 204, 200, 204, 200, 204, 200, 200]
--- response_body_like eval
[qr/^$/, qr/second/, qr/^$/, qr/second/, qr/^$/, qr/re-encoded/, qr/second/,
 qr/^$/, qr/second/, qr/^$/, qr/second/, qr/^$/,
 qr/"duration":1800\.000,"completed":false/, qr/completed=false/]
--- timeout: 30



=== TEST 4: an entry with a bitmap (5 s played of 1800), then a beacon while the row gives no duration, {"currentTime":1,"duration":1}: nothing completes
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/progress$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_progress on;
        vodlms_progress_rate off;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- request eval
["POST /api/videos/lec-nul/progress\n{\"videoId\":\"lec-nul\",\"currentTime\":0.4,\"duration\":1800}", "GET /ctl/second", "POST /api/videos/lec-nul/progress\n{\"videoId\":\"lec-nul\",\"currentTime\":2,\"duration\":1800}", "GET /ctl/second", "POST /api/videos/lec-nul/progress\n{\"videoId\":\"lec-nul\",\"currentTime\":4,\"duration\":1800}", "GET /ctl/second", "POST /api/videos/lec-nul/progress\n{\"videoId\":\"lec-nul\",\"currentTime\":6,\"duration\":1800}",
 "GET /ctl/cov?user=1904&video=lec-nul&want=1" . ("0" x 359),
 "GET /ctl/nullduration",
 "POST /api/videos/lec-nul/progress\n{\"videoId\":\"lec-nul\",\"currentTime\":1,\"duration\":1}",
 "GET /ctl/second",
 "GET /ctl/row?user=1904&video=lec-nul"]
--- more_headers eval
["Cookie: session=t107-rd", "", "Cookie: session=t107-rd", "", "Cookie: session=t107-rd", "", "Cookie: session=t107-rd",
 "", "", "Cookie: session=t107-rd", "", ""]
--- error_code eval
[204, 200, 204, 200, 204, 200, 204, 200, 200, 204, 200, 200]
--- response_body_like eval
[qr/^$/, qr/second/, qr/^$/, qr/second/, qr/^$/, qr/second/, qr/^$/,
 qr/^1/, qr/gone/, qr/^$/, qr/second/, qr/completed=false/]
--- timeout: 30
