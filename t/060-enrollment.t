# The enrollment check: may this user watch this video?  Answered from a
# private PostgreSQL (sql/ migrations + demo seed) without blocking, cached
# in shared memory; every denial a JSON reason; hostile ids stopped before
# any query runs.
#
# Seed (sql/seed/demo.sql): users 1001 alice (enrolled), 1002 bob (not
# enrolled), 1003 carol (instructor), 1004 dave (suspended), 1005 erin
# (admin), 1006 frank (enrollment expired); videos intro-ready (ready),
# intro-processing (42.50%), intro-failed, intro-queued.

use FindBin;
use lib "$FindBin::Bin/lib";
use VodlmsTest;
use IO::Socket::INET;
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_REDIS_PORT} ||= 6379;
my $r = $ENV{TEST_NGINX_REDIS_PORT};

for my $u (['alice', 1001], ['bob', 1002], ['carol', 1003], ['dave', 1004],
           ['erin', 1005], ['frank', 1006])
{
    redis_cmd($r, 'SET', "session:t060-$u->[0]", qq({"user_id":"$u->[1]"}), 'EX', 3600);
}
# a user id full of SQL: it only ever travels as a parameter
redis_cmd($r, 'SET', 'session:t060-sqli', q({"user_id":"1001' OR '1'='1"}), 'EX', 3600);

my $pg = start_pg();

# a server-side failure that is not the query's fault: what a replica says
# when a query conflicts with recovery (SQLSTATE 40001)
$pg->psql(q{CREATE FUNCTION t060_conflict() RETURNS boolean LANGUAGE plpgsql AS $f$
            BEGIN RAISE EXCEPTION USING ERRCODE = '40001',
                  MESSAGE = 'canceling statement due to conflict with recovery'; END $f$});
$ENV{TEST_NGINX_PRIVATE_PG} = $pg->conninfo;

# the non-blocking proof's silent database, and its second request
my ($proof_port, $proof_bh) = blackhole();
$ENV{TEST_NGINX_PROOF_BLACKHOLE_PORT} = $proof_port;

sub fetch_fast_once_db_is_waited_on {
    my $rin = '';
    vec($rin, fileno($proof_bh), 1) = 1;
    select(my $rout = $rin, undef, undef, 10) > 0
        or return "nginx never connected to the silent database\n";
    my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ENV{TEST_NGINX_SERVER_PORT},
                                  Timeout => 10)
        or return "cannot connect to nginx: $!\n";
    print $c "GET /fast HTTP/1.0\r\nHost: localhost\r\n\r\n";
    local $/;
    my $resp = <$c> // '';
    $resp =~ s/\A.*?\r\n\r\n//s;
    return $resp;
}

my ($ctl_port, $ctl) = control_server(
    '/pg/stop'   => sub { $pg->stop; "stopped\n" },
    '/pg/start'  => sub { $pg->start; "started\n" },
    '/proof/fast' => sub { fetch_fast_once_db_is_waited_on() },
);
$ENV{TEST_NGINX_CTL_PORT} = $ctl_port;

my ($bh_port, $bh) = blackhole();
$ENV{TEST_NGINX_BLACKHOLE_PORT} = $bh_port;
$ENV{TEST_NGINX_DEAD_PORT} = free_port();

# every block loads the module, and has these http{} lines unless it has its own.
# The timeouts are generous: these blocks test answers, not speed, and a
# loaded machine (a fresh one installing packages beside two passes of the
# suites) once took over the default 1 s for a first connect and query.  The
# blocks about timeouts set their own.
block_defaults(http_config => <<'EOF');
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT connect_timeout=5s timeout=5s;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG" connect_timeout=5s timeout=5s;
EOF

no_shuffle();
run_tests();

__DATA__

=== TEST 1: an enrolled student may watch a ready video; its columns become variables
--- config
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        proxy_set_header X-Video "$vodlms_video_id|$vodlms_video_title|$vodlms_video_status|$vodlms_video_duration_seconds";
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
    location /app/ { return 200 "$http_x_video\n"; }
--- request
GET /videos/intro-ready/meta
--- more_headers
Cookie: session=t060-alice
--- response_body
intro-ready|Lecture 1: What is a video codec?|ready|634.5
--- no_error_log
[error]
[warn]



=== TEST 2: a student who is not enrolled: 403 not_enrolled
--- config
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
    location /app/ { return 200 "app\n"; }
--- request
GET /videos/intro-ready/meta
--- more_headers
Cookie: session=t060-bob
--- error_code: 403
--- response_body
{"error":"not_enrolled","message":"the user is not enrolled in the video's course"}
--- error_log
vodlms: the user is not enrolled in the video's course: enrollment "none", answering 403
--- no_error_log
[error]



=== TEST 3: a suspended enrollment: 403, and the log says why
--- config
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
    location /app/ { return 200 "app\n"; }
--- request
GET /videos/intro-ready/meta
--- more_headers
Cookie: session=t060-dave
--- error_code: 403
--- error_log
enrollment "suspended", answering 403



=== TEST 4: an enrollment past its end date: 403 "expired"
--- config
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
    location /app/ { return 200 "app\n"; }
--- request
GET /videos/intro-ready/meta
--- more_headers
Cookie: session=t060-frank
--- error_code: 403
--- error_log
enrollment "expired", answering 403



=== TEST 5: the course's instructor may watch without an enrollment
--- config
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
    location /app/ { return 200 "app\n"; }
--- request
GET /videos/intro-ready/meta
--- more_headers
Cookie: session=t060-carol
--- response_body
app



=== TEST 6: an admin may watch any video
--- config
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
    location /app/ { return 200 "app\n"; }
--- request
GET /videos/intro-ready/meta
--- more_headers
Cookie: session=t060-erin
--- response_body
app



=== TEST 7: no such video: 404 video_not_found
--- config
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
    location /app/ { return 200 "app\n"; }
--- request
GET /videos/no-such-video/meta
--- more_headers
Cookie: session=t060-alice
--- error_code: 404
--- response_body
{"error":"video_not_found","message":"no such video"}
--- error_log
vodlms: no such video: video "no-such-video", answering 404



=== TEST 8: a video still processing: 409 with its status and progress
--- config
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
    location /app/ { return 200 "app\n"; }
--- request
GET /videos/intro-processing/meta
--- more_headers
Cookie: session=t060-alice
--- error_code: 409
--- response_body
{"error":"video_not_ready","message":"the video is not ready yet","status":"processing","progress":42.50}



=== TEST 9: a failed video: 409 with status "failed"
--- config
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
    location /app/ { return 200 "app\n"; }
--- request
GET /videos/intro-failed/meta
--- more_headers
Cookie: session=t060-alice
--- error_code: 409
--- response_body_like: "status":"failed"



=== TEST 10: a not-enrolled user never learns a video's status (403 before 409)
--- config
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
    location /app/ { return 200 "app\n"; }
--- request
GET /videos/intro-processing/meta
--- more_headers
Cookie: session=t060-bob
--- error_code: 403



=== TEST 11: hostile ids get 400 before any query runs (the database here is unreachable)
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "host=127.0.0.1 port=$TEST_NGINX_DEAD_PORT dbname=vodlms user=postgres";
--- config
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
    location /app/ { return 200 "app\n"; }
--- request eval
["GET /videos/intro%27%20OR%20%271%27=%271/meta",
 "GET /videos/" . ("9" x 80) . "/meta", "GET /videos/a%22b/meta",
 "GET /videos/a;DROP%20TABLE%20videos/meta", "GET /videos/caf%C3%A9/meta",
 "GET /videos/a%2e%2e/meta"]
--- more_headers
Cookie: session=t060-alice
--- error_code eval
[400, 400, 400, 400, 400, 400]
--- response_body eval
[("{\"error\":\"bad_video_id\",\"message\":\"malformed video id\"}\n") x 6]
--- no_error_log
database unavailable



=== TEST 12: SQL in the user id is only ever a parameter: not enrolled, nothing else
--- config
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
    location /app/ { return 200 "app\n"; }
--- request
GET /videos/intro-ready/meta
--- more_headers
Cookie: session=t060-sqli
--- error_code: 403
--- no_error_log
[error]



=== TEST 13: PostgreSQL refusing connections: 503 database_unavailable with Retry-After
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "host=127.0.0.1 port=$TEST_NGINX_DEAD_PORT dbname=vodlms user=postgres";
--- config
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
    location /app/ { return 200 "app\n"; }
--- request
GET /videos/intro-ready/meta
--- more_headers
Cookie: session=t060-alice
--- error_code: 503
--- response_headers
Retry-After: 2
--- response_body
{"error":"database_unavailable","message":"database unavailable"}
--- error_log eval
qr/\[error\] .*vodlms: database unavailable: .*, answering 503/



=== TEST 14: a silent PostgreSQL: 503 database_timeout when the timer fires
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "host=127.0.0.1 port=$TEST_NGINX_BLACKHOLE_PORT dbname=vodlms user=postgres" connect_timeout=300ms timeout=300ms;
--- config
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
    location /app/ { return 200 "app\n"; }
--- request
GET /videos/intro-ready/meta
--- more_headers
Cookie: session=t060-alice
--- error_code: 503
--- response_body
{"error":"database_timeout","message":"database timed out"}



=== TEST 15: the non-blocking proof: while one request waits on a silent PostgreSQL, the same worker serves another
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "host=127.0.0.1 port=$TEST_NGINX_PROOF_BLACKHOLE_PORT dbname=vodlms user=postgres" connect_timeout=2s timeout=2s;
    log_format order '$uri $status';
--- config
    # as in t/050 TEST 4: the second request is sent only once nginx's
    # connection sits in the silent database's accept queue
    location = /probe.html { ssi on; }
    location = /p/gated { proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/videos/intro-ready/meta; }
    location = /p/fast  { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/proof/fast; }

    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        access_log logs/order.log order;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
    location /app/ { return 200 "app\n"; }
    location = /fast {
        access_log logs/order.log order;
        return 200 "fast\n";
    }
    location = /order { alias logs/order.log; }
--- user_files
>>> probe.html
<!--# include virtual="/p/gated" --><!--# include virtual="/p/fast" -->
--- pipelined_requests eval
["GET /probe.html", "GET /order"]
--- more_headers
Cookie: session=t060-alice
--- response_body eval
["{\"error\":\"database_timeout\",\"message\":\"database timed out\"}\nfast\n\n",
 "/fast 200\n/videos/intro-ready/meta 503\n"]
--- timeout: 15
--- no_error_log
[alert]
[crit]



=== TEST 16: recovery without a reload: PostgreSQL stopped (503), started again (200)
--- config
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
    location /app/ { return 200 "app\n"; }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- pipelined_requests eval
["GET /videos/intro-ready/meta", "GET /ctl/pg/stop", "GET /videos/intro-ready/meta",
 "GET /ctl/pg/start", "GET /videos/intro-ready/meta"]
--- more_headers
Cookie: session=t060-alice
--- error_code eval
[200, 200, 503, 200, 200]
--- response_body eval
["app\n", "stopped\n",
 "{\"error\":\"database_unavailable\",\"message\":\"database unavailable\"}\n",
 "started\n", "app\n"]
--- no_error_log
[alert]
[crit]



=== TEST 17: cached answers skip PostgreSQL: with it stopped, a cached answer is still served
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
    vodlms_cache_zone zone=answers:1m;
--- config
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_enrollment_cache answers valid=1m invalid=1m;
        proxy_set_header X-Video "$vodlms_video_title $vodlms_enrollment_cache";
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
    location /app/ { return 200 "$http_x_video\n"; }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- pipelined_requests eval
["GET /ctl/pg/start", "GET /videos/intro-ready/meta", "GET /ctl/pg/stop",
 "GET /videos/intro-ready/meta", "GET /videos/intro-queued/meta", "GET /ctl/pg/start"]
--- more_headers
Cookie: session=t060-alice
--- error_code eval
[200, 200, 200, 200, 503, 200]
--- response_body eval
["started\n", "Lecture 1: What is a video codec? MISS\n", "stopped\n",
 "Lecture 1: What is a video codec? HIT\n",
 "{\"error\":\"database_unavailable\",\"message\":\"database unavailable\"}\n",
 "started\n"]



=== TEST 18: refusals and unknown videos are cached too, and still answered from the cache
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
    vodlms_cache_zone zone=answers:1m;
--- config
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_enrollment_cache answers valid=1m invalid=1m;
        add_header X-Cache $vodlms_enrollment_cache always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
    location /app/ { return 200 "app\n"; }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- pipelined_requests eval
["GET /ctl/pg/start", "GET /videos/nope/meta", "GET /videos/intro-processing/meta",
 "GET /ctl/pg/stop", "GET /videos/nope/meta", "GET /videos/intro-processing/meta",
 "GET /ctl/pg/start"]
--- more_headers
Cookie: session=t060-alice
--- error_code eval
[200, 404, 409, 200, 404, 409, 200]
--- response_headers eval
["", "X-Cache: MISS", "X-Cache: MISS", "", "X-Cache: HIT", "X-Cache: HIT", ""]



=== TEST 19: an operator's own query, with nginx variables as parameters and no_row 403
--- config
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_enrollment_query "SELECT v.title AS name, $3::text AS via FROM vodlms.videos v JOIN vodlms.enrollments e ON e.course_id = v.course_id WHERE v.id = $1 AND e.user_id = $2 AND e.status = 'active'" $vodlms_video_id $vodlms_user_id $http_x_via;
        vodlms_enrollment_no_row 403;
        proxy_set_header X-Video "$vodlms_video_name via $vodlms_video_via";
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
    location /app/ { return 200 "$http_x_video\n"; }
--- request eval
["GET /videos/intro-ready/meta", "GET /videos/intro-ready/meta"]
--- more_headers eval
["Cookie: session=t060-alice\nX-Via: mobile", "Cookie: session=t060-bob\nX-Via: mobile"]
--- error_code eval
[200, 403]
--- response_body eval
["Lecture 1: What is a video codec? via mobile\n",
 "{\"error\":\"not_enrolled\",\"message\":\"the user is not enrolled in the video's course\"}\n"]



=== TEST 19b: an operator's query that PostgreSQL refuses is 500 internal_error with PostgreSQL's words, not an outage; the database stays usable
--- config
    location ~ ^/broken/(?<vid>[^/]+)$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_enrollment_query "SELECT v.no_such_column AS allowed FROM vodlms.videos v WHERE v.id = $1 AND $2::text IS NOT NULL" $vodlms_video_id $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        proxy_set_header X-Video "$vodlms_video_title";
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
    location /app/ { return 200 "$http_x_video\n"; }
--- request eval
["GET /broken/intro-ready", "GET /videos/intro-ready/meta", "GET /broken/intro-ready"]
--- more_headers eval
[("Cookie: session=t060-alice") x 3]
--- error_code eval
[500, 200, 500]
--- response_body eval
["{\"error\":\"internal_error\",\"message\":\"internal error\"}\n",
 "Lecture 1: What is a video codec?\n",
 "{\"error\":\"internal_error\",\"message\":\"internal error\"}\n"]



=== TEST 19c: ... and the error line carries PostgreSQL's own message
--- config
    location ~ ^/broken/(?<vid>[^/]+)$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_enrollment_query "SELECT v.no_such_column AS allowed FROM vodlms.videos v WHERE v.id = $1 AND $2::text IS NOT NULL" $vodlms_video_id $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        proxy_set_header X-Video "$vodlms_video_title";
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
    location /app/ { return 200 "$http_x_video\n"; }
--- request
GET /broken/intro-ready
--- more_headers
Cookie: session=t060-alice
--- error_code: 500
--- error_log eval
qr/\[error\] .*vodlms: internal error: postgres .* failed: ERROR 42703: column v\.no_such_column does not exist, answering 500/



=== TEST 19d: but a server-side failure on a sound query (40001, a conflict with recovery) stays an outage: 503 with Retry-After
--- config
    location ~ ^/conflict/(?<vid>[^/]+)$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_enrollment_query "SELECT t060_conflict() AS allowed FROM vodlms.videos v WHERE v.id = $1 AND $2::text IS NOT NULL" $vodlms_video_id $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
    location /app/ { return 200 "never\n"; }
--- request
GET /conflict/intro-ready
--- more_headers
Cookie: session=t060-alice
--- error_code: 503
--- response_headers
Retry-After: 2
--- error_log eval
qr/database unavailable: .*40001: canceling statement due to conflict with recovery, answering 503/



=== TEST 20: reads go to vodlms_pg_replica when one is configured (here the primary is down: the check does not need it)
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "host=127.0.0.1 port=$TEST_NGINX_DEAD_PORT dbname=vodlms user=postgres";
    vodlms_pg_replica "$TEST_NGINX_PRIVATE_PG";
--- config
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
    location /app/ { return 200 "app\n"; }
--- request
GET /videos/intro-ready/meta
--- more_headers
Cookie: session=t060-alice
--- response_body
app
--- no_error_log
[warn]



=== TEST 20b: a replica that refuses connections: the check runs on the primary, and the log says so
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
    vodlms_pg_replica "host=127.0.0.1 port=$TEST_NGINX_DEAD_PORT dbname=vodlms user=postgres";
--- config
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
    location /app/ { return 200 "app\n"; }
--- request
GET /videos/intro-ready/meta
--- more_headers
Cookie: session=t060-alice
--- response_body
app
--- error_log eval
qr/\[warn\] .*postgres replica 127\.0\.0\.1:\d+\/vodlms is unavailable, reading from 127\.0\.0\.1:\d+\/vodlms until it answers again: .*connect/
--- no_error_log
[error]



=== TEST 20c: a silent replica (connects, never answers): after its connect_timeout the check runs on the primary
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
    vodlms_pg_replica "host=127.0.0.1 port=$TEST_NGINX_BLACKHOLE_PORT dbname=vodlms user=postgres" connect_timeout=300ms timeout=5s;
--- config
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
    location /app/ { return 200 "app\n"; }
--- request
GET /videos/intro-ready/meta
--- more_headers
Cookie: session=t060-alice
--- response_body
app
--- error_log eval
qr/postgres replica 127\.0\.0\.1:\d+\/vodlms is unavailable, reading from .*timed out after 300 ms/
--- no_error_log
[error]



=== TEST 20d: ... and so does a check that times out waiting for the silent replica's connect (timeout= shorter than connect_timeout=)
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
    vodlms_pg_replica "host=127.0.0.1 port=$TEST_NGINX_BLACKHOLE_PORT dbname=vodlms user=postgres" connect_timeout=5s timeout=300ms;
--- config
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
    location /app/ { return 200 "app\n"; }
--- request
GET /videos/intro-ready/meta
--- more_headers
Cookie: session=t060-alice
--- response_body
app
--- no_error_log
[error]



=== TEST 20e: with neither the replica nor the primary answering, it is 503 database unavailable
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "host=127.0.0.1 port=$TEST_NGINX_DEAD_PORT dbname=vodlms user=postgres";
    vodlms_pg_replica "host=127.0.0.1 port=$TEST_NGINX_DEAD_PORT dbname=vodlms user=postgres";
--- config
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
    location /app/ { return 200 "app\n"; }
--- request
GET /videos/intro-ready/meta
--- more_headers
Cookie: session=t060-alice
--- error_code: 503
--- error_log eval
qr/database unavailable: .*\d+.*answering 503/



=== TEST 21: no session: the gate answers 401 before the database is asked
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "host=127.0.0.1 port=$TEST_NGINX_DEAD_PORT dbname=vodlms user=postgres";
--- config
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
    location /app/ { return 200 "app\n"; }
--- request
GET /videos/intro-ready/meta
--- error_code: 401
--- no_error_log
database
