# Completion is earned by watching, not claimed by a player (issue #15,
# item 3), and beacons from an LMS with integer ids (item 5).
#
# The attacks, as reproduced against the module before the fix:
#   - with "vodlms_progress_skip 30s refuse" and an 1800 s lecture, 57
#     beacons that each step +29 s, sent in well under a second, all got
#     204 and the video was marked completed in PostgreSQL;
#   - with duration_seconds NULL, one {"currentTime":1,"duration":1}
#     completed the video.
# And what must still work: a real viewer at 1x and at 2x completes, also
# when the player's end stops 40 ms short of the database's duration (a
# 10 s clip needs both of its parts; before "ended" counted as the end, it
# stayed at 5 s covered, not completed).
#
# Every verdict is read twice: from the buffer (GET .../progress) and from
# the row the flush writes into a private PostgreSQL.

use FindBin;
use lib "$FindBin::Bin/lib";
use VodlmsTest;
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_REDIS_PORT} ||= 6379;
my $r = $ENV{TEST_NGINX_REDIS_PORT};

my $pg = start_pg();
$ENV{TEST_NGINX_PRIVATE_PG} = $pg->conninfo;

# one student per block, so that no block sees another's entry
my @students = (['kim', 1201], ['lou', 1202], ['max', 1203], ['ned', 1204],
                ['oda', 1205], ['pat', 1206], ['quin', 1207], ['rho', 1208],
                ['sam', 1209], ['tia', 1210], ['uma', 1211], ['vic', 1212],
                ['wes', 1213]);
for my $u (@students) {
    redis_cmd($r, 'SET', "session:t103-$u->[0]", qq({"user_id":"$u->[1]"}), 'EX', 3600);
    $pg->psql(qq{INSERT INTO vodlms.users (id, email, role) VALUES ('$u->[1]', '$u->[0]\@example.com', 'student')});
    $pg->psql(qq{INSERT INTO vodlms.enrollments (user_id, course_id, status) VALUES ('$u->[1]', 'course-intro', 'active')});
}

# an 1800 s lecture, one whose length nobody recorded, a 10 s clip, and a
# video of an LMS whose ids are integers
$pg->psql(q{INSERT INTO vodlms.videos (id, course_id, title, duration_seconds, status, storage_prefix)
            VALUES ('lec-1800', 'course-intro', 'Thirty minutes', 1800, 'ready', 'hls/lec-1800/'),
                   ('lec-null', 'course-intro', 'No duration', NULL, 'ready', 'hls/lec-null/'),
                   ('lec-10', 'course-intro', 'Ten seconds', 10, 'ready', 'hls/lec-10/'),
                   ('3', 'course-intro', 'Integer id', 600, 'ready', 'hls/3/'),
                   ('7', 'course-intro', 'Twenty seconds, integer id', 20, 'ready', 'hls/7/'),
                   ('lec-60', 'course-intro', 'One minute', 60, 'ready', 'hls/lec-60/')});

# uma watched the first 30 s of the minute on another node, yesterday
$pg->psql(q{INSERT INTO vodlms.watch_progress (user_id, video_id, position_seconds, max_position_seconds,
                                               duration_seconds, coverage)
            VALUES ('1211', 'lec-60', 30, 30, 60, B'111111000000')});

my ($ctl_port, $ctl) = control_server(
    # /row, /cov and /second (t/lib/VodlmsTest.pm)
    progress_row_handlers($pg),
);
$ENV{TEST_NGINX_CTL_PORT} = $ctl_port;

# beacons of one video: [position, event] pairs -> request strings
sub beacons {
    my ($video, @at) = @_;
    map {
        my ($t, $ev) = ref $_ ? @$_ : ($_);
        my $e = $ev ? qq(,"event":"$ev") : '';
        "POST /api/videos/$video/progress\n{\"videoId\":\"$video\",\"currentTime\":$t,\"duration\":1800$e}"
    } @at;
}

# every block loads the module, and has these http{} lines unless it has its own
block_defaults(http_config => <<'EOF');
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
    vodlms_progress_zone zone=progress:1m flush=200ms;
EOF

no_shuffle();
run_tests();

__DATA__

=== TEST 1: the step attack: 57 steps of +29 s under "skip 30s refuse", all in a burst: accepted, but not completed
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/progress$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_progress on;
        vodlms_progress_skip 30s refuse;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- request eval
[main::beacons('lec-1800', map { $_ * 29 } 0 .. 57),
 "GET /api/videos/lec-1800/progress",
 "GET /ctl/row?user=1201&video=lec-1800&max=1653.000"]
--- more_headers eval
[("Cookie: session=t103-kim") x 59, ""]
--- error_code eval
[(204) x 58, 200, 200]
--- response_body_like eval
[(qr/^$/) x 58,
 qr/^\{"videoId":"lec-1800","position":1653\.000,"duration":1800\.000,"completed":false\}$/,
 qr/^1653\.000 completed=false$/]
--- timeout: 30



=== TEST 2: the same burst ending with an "ended" beacon at the very end does not complete either
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/progress$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_progress on;
        vodlms_progress_rate off;
        vodlms_progress_skip 30s flag;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- request eval
[main::beacons('lec-1800', (map { $_ * 29 } 0 .. 62), [1800, 'ended']),
 "GET /api/videos/lec-1800/progress",
 "GET /ctl/row?user=1202&video=lec-1800&max=1800.000"]
--- more_headers eval
[("Cookie: session=t103-lou") x 65, ""]
--- error_code eval
[(204) x 64, 200, 200]
--- response_body_like eval
[(qr/^$/) x 64,
 qr/"position":1800\.000,"duration":1800\.000,"completed":false\}$/,
 qr/^1800\.000 completed=false$/]
--- timeout: 30



=== TEST 3: no duration in the database: the player's {"currentTime":1,"duration":1} completes nothing
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/progress$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_progress on;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- request eval
["POST /api/videos/lec-null/progress\n{\"videoId\":\"lec-null\",\"currentTime\":1,\"duration\":1}",
 "GET /ctl/second",
 "POST /api/videos/lec-null/progress\n{\"videoId\":\"lec-null\",\"currentTime\":1,\"duration\":1,\"event\":\"ended\"}",
 "GET /api/videos/lec-null/progress",
 "GET /ctl/row?user=1203&video=lec-null"]
--- more_headers eval
["Cookie: session=t103-max", "", "Cookie: session=t103-max", "Cookie: session=t103-max", ""]
--- error_code eval
[204, 200, 204, 200, 200]
--- response_body_like eval
[qr/^$/, qr/^a second later$/, qr/^$/,
 qr/^\{"videoId":"lec-null","position":1\.000,"duration":1\.000,"completed":false\}$/,
 qr/^1\.000 completed=false$/]
--- timeout: 30



=== TEST 4: a real viewer at 1x, a beacon a second and "ended" at the end as players send it, completes the 10 s clip
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/progress$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_progress on;
        vodlms_progress_skip 30s refuse;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- request eval
[(map { ("POST /api/videos/lec-10/progress\n{\"videoId\":\"lec-10\",\"currentTime\":$_,\"duration\":10}",
         "GET /ctl/second") } 0 .. 8),
 "POST /api/videos/lec-10/progress\n{\"videoId\":\"lec-10\",\"currentTime\":10,\"duration\":10,\"event\":\"ended\"}",
 "GET /api/videos/lec-10/progress",
 "GET /ctl/row?user=1204&video=lec-10&max=10.000"]
--- more_headers eval
[(("Cookie: session=t103-ned", "") x 9), "Cookie: session=t103-ned", "Cookie: session=t103-ned", ""]
--- error_code eval
[((204, 200) x 9), 204, 200, 200]
--- response_body_like eval
[((qr/^$/, qr/^a second later$/) x 9), qr/^$/,
 qr/^\{"videoId":"lec-10","position":10\.000,"duration":10\.000,"completed":true\}$/,
 qr/^10\.000 completed=true$/]
--- timeout: 40



=== TEST 4b: the same viewer whose player ends 40 ms short of the database's 10 s (its playlist is a little shorter than the probe said): "ended" at 9.96 is the end for coverage, and completes
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/progress$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_progress on;
        vodlms_progress_skip 30s refuse;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- request eval
[(map { ("POST /api/videos/lec-10/progress\n{\"videoId\":\"lec-10\",\"currentTime\":$_,\"duration\":9.96}",
         "GET /ctl/second") } 0 .. 8),
 "POST /api/videos/lec-10/progress\n{\"videoId\":\"lec-10\",\"currentTime\":9.96,\"duration\":9.96,\"event\":\"ended\"}",
 "GET /api/videos/lec-10/progress",
 "GET /ctl/row?user=1213&video=lec-10&max=9.960"]
--- more_headers eval
[(("Cookie: session=t103-wes", "") x 9), "Cookie: session=t103-wes", "Cookie: session=t103-wes", ""]
--- error_code eval
[((204, 200) x 9), 204, 200, 200]
--- response_body_like eval
[((qr/^$/, qr/^a second later$/) x 9), qr/^$/,
 qr/^\{"videoId":"lec-10","position":9\.960,"duration":10\.000,"completed":true\}$/,
 qr/^9\.960 completed=true$/]
--- timeout: 40



=== TEST 5: a real viewer at 2x (2 s of video a second) completes too
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/progress$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_progress on;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- request eval
[(map { ("POST /api/videos/lec-10/progress\n{\"videoId\":\"lec-10\",\"currentTime\":$_,\"duration\":10}",
         "GET /ctl/second") } (0, 2, 4, 6, 8)),
 "POST /api/videos/lec-10/progress\n{\"videoId\":\"lec-10\",\"currentTime\":10,\"duration\":10}",
 "GET /api/videos/lec-10/progress",
 "GET /ctl/row?user=1205&video=lec-10&max=10.000"]
--- more_headers eval
[(("Cookie: session=t103-oda", "") x 5), "Cookie: session=t103-oda", "Cookie: session=t103-oda", ""]
--- error_code eval
[((204, 200) x 5), 204, 200, 200]
--- response_body_like eval
[((qr/^$/, qr/^a second later$/) x 5), qr/^$/,
 qr/"position":10\.000,"duration":10\.000,"completed":true\}$/,
 qr/^10\.000 completed=true$/]
--- timeout: 30



=== TEST 6: a player of an LMS with integer ids sends {"videoId":3}: the same id as the URL's "3"
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/progress$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_progress on;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- request eval
["POST /api/videos/3/progress\n{\"videoId\":3,\"currentTime\":320,\"duration\":1200}",
 "POST /api/videos/3/progress\n{\"videoId\":4,\"currentTime\":320,\"duration\":1200}",
 "POST /api/videos/3/progress\n{\"videoId\":3.0,\"currentTime\":320,\"duration\":1200}",
 "POST /api/videos/3/progress\n{\"videoId\":\"3\",\"currentTime\":321,\"duration\":1200}",
 "GET /api/videos/3/progress",
 "GET /ctl/row?user=1206&video=3&max=321.000"]
--- more_headers eval
[("Cookie: session=t103-pat") x 5, ""]
--- error_code eval
[204, 400, 400, 204, 200, 200]
--- response_body_like eval
[qr/^$/, qr/"reason":"video_mismatch"/, qr/"reason":"bad_video_id"/, qr/^$/,
 qr/^\{"videoId":"3","position":321\.000,"duration":600\.000,"completed":false\}$/,
 qr/^321\.000 completed=false$/]
--- timeout: 30



=== TEST 7: an integer-id site: /7, /07 and /007 are one video, one entry, one played total; parallel spellings do not add up to a completion
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/progress$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_enrollment_query "SELECT v.id, v.duration_seconds, v.status, true AS allowed,
                                        coalesce(wp.max_position_seconds, 0) AS resume_max_position,
                                        coalesce(wp.played_seconds, 0) AS resume_played_seconds
                                   FROM vodlms.videos v
                                   LEFT JOIN vodlms.watch_progress wp ON wp.video_id = v.id AND wp.user_id = $2::text
                                  WHERE v.id = ($1::int)::text" $vid $vodlms_user_id;
        vodlms_progress on;
        vodlms_progress_rate off;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- request eval
[(map { my $t = 2 * $_;
        ((map { "POST /api/videos/$_/progress\n{\"videoId\":\"$_\",\"currentTime\":$t,\"duration\":20}" } qw(7 07 007)),
         "GET /ctl/second") } 0 .. 4),
 "GET /ctl/row?user=1208&video=7&max=8.000",
 "POST /api/videos/0007/progress\n{\"videoId\":\"0007\",\"currentTime\":19,\"duration\":20,\"event\":\"ended\"}",
 "GET /api/videos/007/progress"]
--- more_headers eval
[((("Cookie: session=t103-rho") x 3, "") x 5), "", "Cookie: session=t103-rho", "Cookie: session=t103-rho"]
--- error_code eval
[(((204) x 3, 200) x 5), 200, 204, 200]
--- response_body_like eval
[(((qr/^$/) x 3, qr/^a second later$/) x 5),
 qr/^8\.000 completed=false$/,
 qr/^$/,
 qr/^\{"videoId":"7","position":19\.000,"duration":20\.000,"completed":false\}$/]
--- timeout: 40



=== TEST 8: the step attack of TEST 1 left no part of the lecture as watched in the database: 360 bits, none set
--- config
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- request
GET /ctl/cov?user=1201&video=lec-1800
--- response_body_like eval
qr/^0{360} 0\.900000$/
--- timeout: 30



=== TEST 9: "10s unwatched": steps of +9 s in a burst pass "refuse" (each is 9 s past the highest), but not past the first unwatched part
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/progress$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_progress on;
        vodlms_progress_skip 10s unwatched;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- request eval
[(map { "POST /api/videos/lec-60/progress\n{\"videoId\":\"lec-60\",\"currentTime\":$_,\"duration\":60}" } (0, 9, 18, 27)),
 "GET /api/videos/lec-60/progress"]
--- more_headers eval
[("Cookie: session=t103-sam") x 5]
--- error_code eval
[204, 204, 400, 400, 200]
--- response_body_like eval
[qr/^$/, qr/^$/, qr/"reason":"skip_ahead"/, qr/"reason":"skip_ahead"/,
 qr/"position":9\.000,"duration":60\.000,"completed":false,"seekLimit":10\.000\}$/]
--- timeout: 30



=== TEST 10: "10s unwatched": after watching the first 5 s for real, the viewer may go 10 s past them, and no further
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
[(map { ("POST /api/videos/lec-60/progress\n{\"videoId\":\"lec-60\",\"currentTime\":$_,\"duration\":60}",
         "GET /ctl/second") } (0.4, 2, 4)),
 "POST /api/videos/lec-60/progress\n{\"videoId\":\"lec-60\",\"currentTime\":6,\"duration\":60}",
 "POST /api/videos/lec-60/progress\n{\"videoId\":\"lec-60\",\"currentTime\":16,\"duration\":60}",
 "POST /api/videos/lec-60/progress\n{\"videoId\":\"lec-60\",\"currentTime\":15,\"duration\":60}",
 "GET /ctl/cov?user=1210&video=lec-60"]
--- more_headers eval
[(("Cookie: session=t103-tia", "") x 3), ("Cookie: session=t103-tia") x 3, ""]
--- error_code eval
[((204, 200) x 3), 204, 400, 204, 200]
--- response_body_like eval
[((qr/^$/, qr/^a second later$/) x 3), qr/^$/, qr/"reason":"skip_ahead"/, qr/^$/,
 qr/^100000000000 0\.900000$/]
--- timeout: 30



=== TEST 10a: "10s unwatched": a viewer with no row yet is checked from the first beacon (the default query gives their bits as empty, not NULL)
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/progress$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_progress on;
        vodlms_progress_skip 10s unwatched;
    }
--- request eval
["GET /api/videos/lec-60/progress",
 "POST /api/videos/lec-60/progress\n{\"videoId\":\"lec-60\",\"currentTime\":50,\"duration\":60}"]
--- more_headers eval
["Cookie: session=t103-vic", "Cookie: session=t103-vic"]
--- error_code eval
[200, 400]
--- response_body_like eval
[qr/^\{"videoId":"lec-60","position":0\.000,"duration":60\.000,"completed":false,"seekLimit":10\.000\}$/,
 qr/"reason":"skip_ahead"/]
--- timeout: 30



=== TEST 10b: "10s unwatched": before any beacon on this node, GET says how far the player may seek, from the database's bits (30 s played, +10 s)
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/progress$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_progress on;
        vodlms_progress_skip 10s unwatched;
    }
--- request
GET /api/videos/lec-60/progress
--- more_headers
Cookie: session=t103-uma
--- response_body_like
^\{"videoId":"lec-60","position":30\.000,"duration":60\.000,"completed":false,"seekLimit":40\.000\}$
--- timeout: 30



=== TEST 11: "10s unwatched" on a node that has never seen the viewer: the database's bits count, and a resume where they end goes on from there
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
["POST /api/videos/lec-60/progress\n{\"videoId\":\"lec-60\",\"currentTime\":32,\"duration\":60}",
 "POST /api/videos/lec-60/progress\n{\"videoId\":\"lec-60\",\"currentTime\":45,\"duration\":60}",
 "GET /ctl/second",
 "POST /api/videos/lec-60/progress\n{\"videoId\":\"lec-60\",\"currentTime\":34,\"duration\":60}",
 "GET /ctl/second",
 "POST /api/videos/lec-60/progress\n{\"videoId\":\"lec-60\",\"currentTime\":36,\"duration\":60}",
 "POST /api/videos/lec-60/progress\n{\"videoId\":\"lec-60\",\"currentTime\":45,\"duration\":60}",
 "GET /api/videos/lec-60/progress",
 "GET /ctl/cov?user=1211&video=lec-60&want=111111100000"]
--- more_headers eval
["Cookie: session=t103-uma", "Cookie: session=t103-uma", "", "Cookie: session=t103-uma", "",
 "Cookie: session=t103-uma", "Cookie: session=t103-uma", "Cookie: session=t103-uma", ""]
--- error_code eval
[204, 400, 200, 204, 200, 204, 204, 200, 200]
--- response_body_like eval
[qr/^$/, qr/"reason":"skip_ahead"/, qr/^a second later$/, qr/^$/, qr/^a second later$/, qr/^$/, qr/^$/,
 qr/^\{"videoId":"lec-60","position":45\.000,"duration":60\.000,"completed":false,"seekLimit":45\.000\}$/,
 qr/^111111100000 0\.900000$/]
--- timeout: 30
