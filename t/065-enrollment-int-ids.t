# The enrollment check in front of an LMS whose ids are integers (issue #16):
# its own tables, a query with `$1::int`, and the example's location regex,
# which lets "abc" and 99999999999 through.  Such an id names no lesson: it
# is the visitor's doing, never a 500 or an [error] line.  Either the
# operator declares the id's type (vodlms_video_id_type int), and the id is
# checked before any query runs; or the query's cast errors (SQLSTATE 22P02,
# 22003) are answered as "no row".

use FindBin;
use lib "$FindBin::Bin/lib";
use VodlmsTest;
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_REDIS_PORT} ||= 6379;
my $r = $ENV{TEST_NGINX_REDIS_PORT};

# the LMS's users 7 (enrolled in course 3) and 8 (not enrolled), as token
# sessions whose user ids are integers too
redis_cmd($r, 'SET', 'session:t065-ann', '{"user_id":7}', 'EX', 3600);
redis_cmd($r, 'SET', 'session:t065-ben', '{"user_id":8}', 'EX', 3600);

my $pg = start_pg();
$pg->psql(q{CREATE TABLE lessons (id integer PRIMARY KEY,
                                  "courseId" integer NOT NULL,
                                  title text NOT NULL)});
$pg->psql(q{CREATE TABLE course_enrollments ("userId" integer NOT NULL,
                                             "courseId" integer NOT NULL)});
$pg->psql(q{INSERT INTO lessons VALUES (1, 3, 'Lesson one'),
                                       (2147483647, 3, 'The last int')});
$pg->psql(q{INSERT INTO course_enrollments VALUES (7, 3)});
$ENV{TEST_NGINX_PRIVATE_PG} = $pg->conninfo;
$ENV{TEST_NGINX_DEAD_PORT} = free_port();

# the same query in every block: the LMS's tables, integer casts
add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('main_config',
                      "    load_module \$TEST_NGINX_MODULE_PATH;\n")
        unless defined $block->main_config;
    $block->set_value('http_config', <<'EOF') unless defined $block->http_config;
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
EOF
});

no_shuffle();
run_tests();

__DATA__

=== TEST 1: no type declared: an integer id works (200 enrolled, 403 not)
--- config
    location ~ ^/api/lessons/(?<id>[A-Za-z0-9_-]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $id;
        vodlms_enrollment_query 'SELECT l.id, l.title, (e."userId" IS NOT NULL) AS allowed FROM lessons l LEFT JOIN course_enrollments e ON e."courseId" = l."courseId" AND e."userId" = $2::int WHERE l.id = $1::int' $vodlms_video_id $vodlms_user_id;
        proxy_set_header X-Lesson $vodlms_video_title;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$id;
    }
    location /app/ { return 200 "$http_x_lesson\n"; }
--- request eval
["GET /api/lessons/1/stream", "GET /api/lessons/1/stream", "GET /api/lessons/2147483647/stream", "GET /api/lessons/5/stream"]
--- more_headers eval
["Cookie: session=t065-ann", "Cookie: session=t065-ben", "Cookie: session=t065-ann", "Cookie: session=t065-ann"]
--- error_code eval
[200, 403, 200, 404]
--- response_body eval
["Lesson one\n",
 "{\"error\":\"not_enrolled\",\"message\":\"the user is not enrolled in the video's course\"}\n",
 "The last int\n",
 "{\"error\":\"video_not_found\",\"message\":\"no such video\"}\n"]
--- no_error_log
[error]



=== TEST 2: vodlms_video_id_type int: "abc" is 404 before any query (the database is not even up)
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "host=127.0.0.1 port=$TEST_NGINX_DEAD_PORT dbname=vodlms user=postgres";
--- config
    location ~ ^/api/lessons/(?<id>[A-Za-z0-9_-]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $id;
        vodlms_video_id_type int;
        vodlms_enrollment_query 'SELECT l.id FROM lessons l WHERE l.id = $1::int AND $2::int IS NOT NULL' $vodlms_video_id $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$id;
    }
    location /app/ { return 200 "app\n"; }
--- request
GET /api/lessons/abc/stream
--- more_headers
Cookie: session=t065-ann
--- error_code: 404
--- response_body
{"error":"video_not_found","message":"no such video"}
--- error_log eval
qr/\[info\] .*vodlms: no such video: video id not an int: "abc", answering 404/
--- no_error_log
[error]
[warn]



=== TEST 3: vodlms_video_id_type int: 99999999999 is 404 before any query
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "host=127.0.0.1 port=$TEST_NGINX_DEAD_PORT dbname=vodlms user=postgres";
--- config
    location ~ ^/api/lessons/(?<id>[A-Za-z0-9_-]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $id;
        vodlms_video_id_type int;
        vodlms_enrollment_query 'SELECT l.id FROM lessons l WHERE l.id = $1::int AND $2::int IS NOT NULL' $vodlms_video_id $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$id;
    }
    location /app/ { return 200 "app\n"; }
--- request
GET /api/lessons/99999999999/stream
--- more_headers
Cookie: session=t065-ann
--- error_code: 404
--- response_body
{"error":"video_not_found","message":"no such video"}
--- error_log eval
qr/\[info\] .*vodlms: no such video: video id not an int: "99999999999", answering 404/
--- no_error_log
[error]
[warn]



=== TEST 4: vodlms_video_id_type int: below INT_MIN, and PostgreSQL 16's 1_000, are 404 before any query
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "host=127.0.0.1 port=$TEST_NGINX_DEAD_PORT dbname=vodlms user=postgres";
--- config
    location ~ ^/api/lessons/(?<id>[A-Za-z0-9_-]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $id;
        vodlms_video_id_type int;
        vodlms_enrollment_query 'SELECT l.id FROM lessons l WHERE l.id = $1::int AND $2::int IS NOT NULL' $vodlms_video_id $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$id;
    }
    location /app/ { return 200 "app\n"; }
--- request eval
["GET /api/lessons/-2147483649/stream", "GET /api/lessons/1_000/stream"]
--- more_headers eval
[("Cookie: session=t065-ann") x 2]
--- error_code eval
[404, 404]
--- no_error_log
[error]
[warn]



=== TEST 5: vodlms_video_id_type int: an integer id still reaches the database (it is down here: 503)
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "host=127.0.0.1 port=$TEST_NGINX_DEAD_PORT dbname=vodlms user=postgres";
--- config
    location ~ ^/api/lessons/(?<id>[A-Za-z0-9_-]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $id;
        vodlms_video_id_type int;
        vodlms_enrollment_query 'SELECT l.id FROM lessons l WHERE l.id = $1::int AND $2::int IS NOT NULL' $vodlms_video_id $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$id;
    }
    location /app/ { return 200 "app\n"; }
--- request
GET /api/lessons/2147483647/stream
--- more_headers
Cookie: session=t065-ann
--- error_code: 503
--- error_log
database unavailable



=== TEST 6: vodlms_video_id_type int with the real database: 200 enrolled, 403 not, 404 for "abc"
--- config
    location ~ ^/api/lessons/(?<id>[A-Za-z0-9_-]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $id;
        vodlms_video_id_type int;
        vodlms_enrollment_query 'SELECT l.id, l.title, (e."userId" IS NOT NULL) AS allowed FROM lessons l LEFT JOIN course_enrollments e ON e."courseId" = l."courseId" AND e."userId" = $2::int WHERE l.id = $1::int' $vodlms_video_id $vodlms_user_id;
        proxy_set_header X-Lesson $vodlms_video_title;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$id;
    }
    location /app/ { return 200 "$http_x_lesson\n"; }
--- request eval
["GET /api/lessons/1/stream", "GET /api/lessons/1/stream", "GET /api/lessons/abc/stream", "GET /api/lessons/99999999999/stream"]
--- more_headers eval
["Cookie: session=t065-ann", "Cookie: session=t065-ben", "Cookie: session=t065-ann", "Cookie: session=t065-ann"]
--- error_code eval
[200, 403, 404, 404]
--- response_body eval
["Lesson one\n",
 "{\"error\":\"not_enrolled\",\"message\":\"the user is not enrolled in the video's course\"}\n",
 "{\"error\":\"video_not_found\",\"message\":\"no such video\"}\n",
 "{\"error\":\"video_not_found\",\"message\":\"no such video\"}\n"]
--- no_error_log
[error]



=== TEST 7: vodlms_video_id_type bigint: 99999999999 is a bigint and goes to the query (no such lesson: 404)
--- config
    location ~ ^/api/lessons/(?<id>[A-Za-z0-9_-]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $id;
        vodlms_video_id_type bigint;
        vodlms_enrollment_query 'SELECT l.id, l.title FROM lessons l WHERE l.id = $1::bigint AND $2::int IS NOT NULL' $vodlms_video_id $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$id;
    }
    location /app/ { return 200 "app\n"; }
--- request
GET /api/lessons/99999999999/stream
--- more_headers
Cookie: session=t065-ann
--- error_code: 404
--- error_log eval
qr/\[info\] .*vodlms: no such video: video "99999999999", answering 404/
--- no_error_log
[error]



=== TEST 8: vodlms_video_id_type bigint: past INT8_MAX is 404 before any query; 1 still plays
--- config
    location ~ ^/api/lessons/(?<id>[A-Za-z0-9_-]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $id;
        vodlms_video_id_type bigint;
        vodlms_enrollment_query 'SELECT l.id, l.title FROM lessons l WHERE l.id = $1::bigint AND $2::int IS NOT NULL' $vodlms_video_id $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$id;
    }
    location /app/ { return 200 "app\n"; }
--- request eval
["GET /api/lessons/9223372036854775808/stream", "GET /api/lessons/1/stream"]
--- more_headers eval
[("Cookie: session=t065-ann") x 2]
--- error_code eval
[404, 200]
--- no_error_log
[error]



=== TEST 9: ... and the log says which type it is not
--- config
    location ~ ^/api/lessons/(?<id>[A-Za-z0-9_-]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $id;
        vodlms_video_id_type bigint;
        vodlms_enrollment_query 'SELECT l.id, l.title FROM lessons l WHERE l.id = $1::bigint AND $2::int IS NOT NULL' $vodlms_video_id $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$id;
    }
    location /app/ { return 200 "app\n"; }
--- request
GET /api/lessons/9223372036854775808/stream
--- more_headers
Cookie: session=t065-ann
--- error_code: 404
--- error_log eval
qr/\[info\] .*vodlms: no such video: video id not a bigint: "9223372036854775808", answering 404/



=== TEST 10: the type is inherited from the server level
--- config
    vodlms_video_id_type int;
    location ~ ^/api/lessons/(?<id>[A-Za-z0-9_-]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $id;
        vodlms_enrollment_query 'SELECT l.id FROM lessons l WHERE l.id = $1::int AND $2::int IS NOT NULL' $vodlms_video_id $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$id;
    }
    location ~ ^/api/slugs/(?<id>[A-Za-z0-9_-]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $id;
        vodlms_video_id_type text;
        vodlms_enrollment_query 'SELECT l.id FROM lessons l WHERE l.id::text = $1::text AND $2::int IS NOT NULL' $vodlms_video_id $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$id;
    }
    location /app/ { return 200 "app\n"; }
--- request
GET /api/lessons/abc/stream
--- more_headers
Cookie: session=t065-ann
--- error_code: 404
--- error_log
video id not an int: "abc", answering 404
--- no_error_log
[error]



=== TEST 11: a nested "vodlms_video_id_type text" turns the check off
--- config
    vodlms_video_id_type int;
    location ~ ^/api/lessons/(?<id>[A-Za-z0-9_-]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $id;
        vodlms_enrollment_query 'SELECT l.id FROM lessons l WHERE l.id = $1::int AND $2::int IS NOT NULL' $vodlms_video_id $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$id;
    }
    location ~ ^/api/slugs/(?<id>[A-Za-z0-9_-]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $id;
        vodlms_video_id_type text;
        vodlms_enrollment_query 'SELECT l.id FROM lessons l WHERE l.id::text = $1::text AND $2::int IS NOT NULL' $vodlms_video_id $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$id;
    }
    location /app/ { return 200 "app\n"; }
--- request
GET /api/slugs/abc/stream
--- more_headers
Cookie: session=t065-ann
--- error_code: 404
--- error_log
vodlms: no such video: video "abc", answering 404
--- no_error_log
[error]
not an int



=== TEST 12: no type declared: "abc" is no row (22P02 at info), not a 500
--- config
    location ~ ^/api/lessons/(?<id>[A-Za-z0-9_-]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $id;
        vodlms_enrollment_query 'SELECT l.id, l.title, (e."userId" IS NOT NULL) AS allowed FROM lessons l LEFT JOIN course_enrollments e ON e."courseId" = l."courseId" AND e."userId" = $2::int WHERE l.id = $1::int' $vodlms_video_id $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$id;
    }
    location /app/ { return 200 "app\n"; }
--- request
GET /api/lessons/abc/stream
--- more_headers
Cookie: session=t065-ann
--- error_code: 404
--- response_body
{"error":"video_not_found","message":"no such video"}
--- error_log eval
qr/\[info\] .*vodlms: no such video: video "abc", a value the query cannot take \(SQLSTATE 22P02\), answering 404/
--- no_error_log
[error]
[warn]



=== TEST 13: no type declared: 99999999999 is no row (22003 at info), not a 500
--- config
    location ~ ^/api/lessons/(?<id>[A-Za-z0-9_-]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $id;
        vodlms_enrollment_query 'SELECT l.id, l.title, (e."userId" IS NOT NULL) AS allowed FROM lessons l LEFT JOIN course_enrollments e ON e."courseId" = l."courseId" AND e."userId" = $2::int WHERE l.id = $1::int' $vodlms_video_id $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$id;
    }
    location /app/ { return 200 "app\n"; }
--- request
GET /api/lessons/99999999999/stream
--- more_headers
Cookie: session=t065-ann
--- error_code: 404
--- response_body
{"error":"video_not_found","message":"no such video"}
--- error_log eval
qr/\[info\] .*vodlms: no such video: video "99999999999", a value the query cannot take \(SQLSTATE 22003\), answering 404/
--- no_error_log
[error]
[warn]



=== TEST 14: no type declared: one past INT_MAX is no row too; the database stays usable
--- config
    location ~ ^/api/lessons/(?<id>[A-Za-z0-9_-]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $id;
        vodlms_enrollment_query 'SELECT l.id, l.title, (e."userId" IS NOT NULL) AS allowed FROM lessons l LEFT JOIN course_enrollments e ON e."courseId" = l."courseId" AND e."userId" = $2::int WHERE l.id = $1::int' $vodlms_video_id $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$id;
    }
    location /app/ { return 200 "app\n"; }
--- request eval
["GET /api/lessons/2147483648/stream", "GET /api/lessons/1/stream"]
--- more_headers eval
[("Cookie: session=t065-ann") x 2]
--- error_code eval
[404, 200]
--- no_error_log
[error]
[warn]



=== TEST 15: no type declared, vodlms_enrollment_no_row 403: a cast error is that answer too
--- config
    location ~ ^/api/lessons/(?<id>[A-Za-z0-9_-]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $id;
        vodlms_enrollment_query 'SELECT l.id, l.title FROM lessons l JOIN course_enrollments e ON e."courseId" = l."courseId" AND e."userId" = $2::int WHERE l.id = $1::int' $vodlms_video_id $vodlms_user_id;
        vodlms_enrollment_no_row 403;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$id;
    }
    location /app/ { return 200 "app\n"; }
--- request eval
["GET /api/lessons/abc/stream", "GET /api/lessons/1/stream", "GET /api/lessons/1/stream"]
--- more_headers eval
["Cookie: session=t065-ann", "Cookie: session=t065-ben", "Cookie: session=t065-ann"]
--- error_code eval
[403, 403, 200]
--- no_error_log
[error]



=== TEST 16: a data error that is the query's own (division by zero, 22012) stays 500
--- config
    location ~ ^/api/lessons/(?<id>[A-Za-z0-9_-]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $id;
        vodlms_enrollment_query 'SELECT l.id, 1 / 0 AS oops FROM lessons l WHERE l.id = $1::int AND $2::int IS NOT NULL' $vodlms_video_id $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$id;
    }
    location /app/ { return 200 "app\n"; }
--- request
GET /api/lessons/1/stream
--- more_headers
Cookie: session=t065-ann
--- error_code: 500
--- error_log eval
qr/\[error\] .*vodlms: internal error: postgres .* failed: ERROR 22012: division by zero, answering 500/
