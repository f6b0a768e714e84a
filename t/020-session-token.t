# The session gate with opaque tokens: a cookie or "Authorization: Bearer",
# looked up in Redis under a prefix, the value a JSON string or a hash.
# Denials are 401/403 with a JSON body and one log line.

use FindBin;
use lib "$FindBin::Bin/lib";
use VodlmsTest;
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_REDIS_PORT} ||= 6379;
my $r = $ENV{TEST_NGINX_REDIS_PORT};

# sessions as an LMS writes them (every key here is this file's own)
redis_cmd($r, 'SET', 'session:t020-alice', '{"user_id":42,"role":"student"}', 'EX', 600);
redis_cmd($r, 'SET', 'session:t020-carol', '{"user_id":"u-7","role":["instructor","admin"]}', 'EX', 600);
redis_cmd($r, 'SET', 'lms:t020-nested', '{"user":{"id":99,"roles":["ta"]}}', 'EX', 600);
redis_cmd($r, 'DEL', 'session:t020-hash');
redis_cmd($r, 'HSET', 'session:t020-hash', 'uid', '1001', 'role', 'student', 'exp', time() + 600);
redis_cmd($r, 'EXPIRE', 'session:t020-hash', 600);
redis_cmd($r, 'SET', 'session:t020-expired', '{"user_id":5,"expires_at":"2020-01-01T00:00:00Z"}', 'EX', 600);
redis_cmd($r, 'SET', 'session:t020-future', '{"user_id":6,"expires_at":' . ((time() + 3600) * 1000) . '}', 'EX', 600);
redis_cmd($r, 'SET', 'session:t020-nouser', '{"name":"who?"}', 'EX', 600);
redis_cmd($r, 'SET', 'session:t020-broken', '{"user_id":42', 'EX', 600);
redis_cmd($r, 'SET', 'session:t020-booluser', '{"user_id":true}', 'EX', 600);
redis_cmd($r, 'SET', 'session:t020-plain', 'hello', 'EX', 600);

# every block loads the module, and has these http{} lines unless it has its own
block_defaults(http_config => <<'EOF');
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
EOF

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a session cookie lets the request through, with the user id for the app
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_role_field role;
        proxy_set_header X-User $vodlms_user_id;
        proxy_set_header X-Role $vodlms_user_role;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "user=$http_x_user role=$http_x_role\n"; }
--- request
GET /t
--- more_headers
Cookie: session=t020-alice
--- response_body
user=42 role=student
--- no_error_log
[error]
[warn]



=== TEST 2: the same token as "Authorization: Bearer"
--- config
    location = /t {
        vodlms_auth on;
        proxy_set_header X-User $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "user=$http_x_user\n"; }
--- request
GET /t
--- more_headers
Authorization: Bearer t020-alice
--- response_body
user=42
--- no_error_log
[error]



=== TEST 3: an explicit Bearer token wins over an ambient cookie
--- config
    location = /t {
        vodlms_auth on;
        proxy_set_header X-User $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "user=$http_x_user\n"; }
--- request
GET /t
--- more_headers
Cookie: session=t020-alice
Authorization: bearer t020-carol
--- response_body
user=u-7



=== TEST 4: with vodlms_session_bearer off the Authorization header is not a session
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_bearer off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- more_headers
Authorization: Bearer t020-alice
--- error_code: 401
--- response_body
{"error":"no_session","message":"no session token in the request"}
--- error_log
vodlms: no session token in the request, answering 401



=== TEST 5: no token at all: 401, a JSON reason, WWW-Authenticate, never cached
--- config
    location = /t {
        vodlms_auth on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Bearer realm="vodlms"
--- response_body
{"error":"no_session","message":"no session token in the request"}
--- error_log
vodlms: no session token in the request, answering 401
--- no_error_log
[error]



=== TEST 6: an unknown token is 401 unknown_session
--- config
    location = /t {
        vodlms_auth on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- more_headers
Cookie: session=t020-nobody-has-this
--- error_code: 401
--- response_body
{"error":"unknown_session","message":"unknown or expired session"}
--- error_log
vodlms: unknown or expired session, answering 401
--- no_error_log
[error]



=== TEST 7: vodlms's log lines never carry the token (nginx's own debug log shows headers)
--- config
    location = /t {
        vodlms_auth on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- more_headers
Authorization: Bearer t020-secret-token-value
--- error_code: 401
--- error_log
unknown or expired session
--- no_error_log eval
qr/\[(?:info|notice|warn|error|crit|alert)\].*t020-secret-token-value/



=== TEST 8: a token with characters no token has is rejected before Redis
--- config
    location = /t {
        vodlms_auth on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- more_headers
Cookie: session="t020' OR 1=1 --"
--- error_code: 401
--- response_body
{"error":"invalid_session","message":"malformed session token"}
--- error_log
malformed session token: token has bad characters or length



=== TEST 9: an overlong token (600 bytes) is malformed
--- config
    location = /t {
        vodlms_auth on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- more_headers eval
"Cookie: session=" . ("a" x 600)
--- error_code: 401
--- response_body
{"error":"invalid_session","message":"malformed session token"}



=== TEST 10: an empty cookie value is no session
--- config
    location = /t {
        vodlms_auth on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- more_headers
Cookie: session=; other=1
--- error_code: 401
--- response_body
{"error":"no_session","message":"no session token in the request"}



=== TEST 11: an empty Bearer token is malformed
--- config
    location = /t {
        vodlms_auth on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- more_headers
Authorization: Bearer    
--- error_code: 401
--- response_body
{"error":"invalid_session","message":"malformed session token"}



=== TEST 12: a cookie sent twice: the first one counts (valid first)
--- config
    location = /t {
        vodlms_auth on;
        proxy_set_header X-User $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "user=$http_x_user\n"; }
--- request
GET /t
--- more_headers
Cookie: a=1; session=t020-alice; session=t020-carol
--- response_body
user=42



=== TEST 13: a cookie sent twice: the first one counts (bogus first)
--- config
    location = /t {
        vodlms_auth on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- more_headers
Cookie: session=t020-nobody; session=t020-alice
--- error_code: 401
--- response_body
{"error":"unknown_session","message":"unknown or expired session"}



=== TEST 14: two Cookie headers: the first header's cookie counts
--- config
    location = /t {
        vodlms_auth on;
        proxy_set_header X-User $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "user=$http_x_user\n"; }
--- request
GET /t
--- more_headers
Cookie: theme=dark; session=t020-carol
Cookie: session=t020-alice
--- response_body
user=u-7



=== TEST 14b: two Cookie headers: a session cookie only in the second one is found (nginx 1.23 and later keep such headers in a list, 1.22 in an array)
--- config
    location = /t {
        vodlms_auth on;
        proxy_set_header X-User $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "user=$http_x_user\n"; }
--- request
GET /t
--- more_headers
Cookie: theme=dark; lang=fr
Cookie: session=t020-alice
--- response_body
user=42



=== TEST 15: a cookie name only matches exactly
--- config
    location = /t {
        vodlms_auth on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- more_headers
Cookie: xsession=t020-alice; session2=t020-alice; Session=t020-alice
--- error_code: 401
--- response_body
{"error":"no_session","message":"no session token in the request"}



=== TEST 16: a custom cookie name, key prefix and dotted user path
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_cookie lms_token;
        vodlms_session_key_prefix lms:;
        vodlms_session_user_field user.id;
        vodlms_session_role_field user.roles;
        proxy_set_header X-User $vodlms_user_id;
        proxy_set_header X-Role $vodlms_user_role;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "user=$http_x_user role=$http_x_role\n"; }
--- request
GET /t
--- more_headers
Cookie: lms_token=t020-nested
--- response_body
user=99 role=ta



=== TEST 17: several roles from a JSON array, joined with commas
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_role_field role;
        proxy_set_header X-User $vodlms_user_id;
        proxy_set_header X-Role $vodlms_user_role;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "user=$http_x_user role=$http_x_role\n"; }
--- request
GET /t
--- more_headers
Cookie: session=t020-carol
--- response_body
user=u-7 role=instructor,admin



=== TEST 18: a session stored as a Redis hash, with role and expiry fields
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_value hash;
        vodlms_session_user_field uid;
        vodlms_session_role_field role;
        vodlms_session_expires_field exp;
        proxy_set_header X-User $vodlms_user_id;
        proxy_set_header X-Role $vodlms_user_role;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "user=$http_x_user role=$http_x_role\n"; }
--- request
GET /t
--- more_headers
Cookie: session=t020-hash
--- response_body
user=1001 role=student



=== TEST 19: an unknown key with hash sessions is 401 unknown_session
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_value hash;
        vodlms_session_user_field uid;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- more_headers
Cookie: session=t020-no-hash-here
--- error_code: 401
--- response_body
{"error":"unknown_session","message":"unknown or expired session"}



=== TEST 20: an explicit expiry field in the past is 401 session_expired
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_expires_field expires_at;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- more_headers
Cookie: session=t020-expired
--- error_code: 401
--- response_body
{"error":"session_expired","message":"session expired"}
--- error_log
vodlms: session expired, answering 401



=== TEST 21: an expiry field in the future (epoch milliseconds) lets it through
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_expires_field expires_at;
        proxy_set_header X-User $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "user=$http_x_user\n"; }
--- request
GET /t
--- more_headers
Cookie: session=t020-future
--- response_body
user=6



=== TEST 22: without vodlms_session_expires_field the field is not looked at
--- config
    location = /t {
        vodlms_auth on;
        proxy_set_header X-User $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "user=$http_x_user\n"; }
--- request
GET /t
--- more_headers
Cookie: session=t020-expired
--- response_body
user=5



=== TEST 23: a session without a user id fails closed with an error-level line
--- config
    location = /t {
        vodlms_auth on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- more_headers
Cookie: session=t020-nouser
--- error_code: 401
--- response_body
{"error":"invalid_session_data","message":"session data unusable"}
--- error_log
[error]
vodlms: session data unusable: user id:



=== TEST 24: broken JSON in Redis fails closed
--- config
    location = /t {
        vodlms_auth on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- more_headers
Cookie: session=t020-broken
--- error_code: 401
--- response_body
{"error":"invalid_session_data","message":"session data unusable"}



=== TEST 25: a user id that is neither a string nor an integer fails closed
--- config
    location = /t {
        vodlms_auth on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- more_headers
Cookie: session=t020-booluser
--- error_code: 401
--- response_body
{"error":"invalid_session_data","message":"session data unusable"}



=== TEST 26: a hash where JSON is configured: Redis' WRONGTYPE is logged, 401
--- config
    location = /t {
        vodlms_auth on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- more_headers
Cookie: session=t020-hash
--- error_code: 401
--- error_log
session data unusable: redis said: WRONGTYPE



=== TEST 27: a string where a hash is configured fails closed
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_value hash;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- more_headers
Cookie: session=t020-plain
--- error_code: 401
--- response_body
{"error":"invalid_session_data","message":"session data unusable"}
--- error_log
WRONGTYPE



=== TEST 28: vodlms_auth off in a nested location opens it again
--- config
    vodlms_auth on;
    location = /public/x {
        vodlms_auth off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { vodlms_auth off; return 200 "open\n"; }
--- request
GET /public/x
--- response_body
open



=== TEST 29: the gate is inherited from the server level
--- config
    vodlms_auth on;
    location = /lectures/x {
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { vodlms_auth off; return 200 "open\n"; }
--- request
GET /lectures/x
--- error_code: 401
--- response_body
{"error":"no_session","message":"no session token in the request"}



=== TEST 30: vodlms_auth_require_role: a student is 403 where instructors upload
--- config
    location = /upload {
        vodlms_auth on;
        vodlms_session_role_field role;
        vodlms_auth_require_role instructor admin;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /upload
--- more_headers
Cookie: session=t020-alice
--- error_code: 403
--- response_body
{"error":"forbidden_role","message":"the user's role is not allowed here"}
--- error_log
the user's role is not allowed here: user 42 has roles "student", answering 403



=== TEST 31: vodlms_auth_require_role: any one of the user's roles is enough
--- config
    location = /upload {
        vodlms_auth on;
        vodlms_session_role_field role;
        vodlms_auth_require_role admin;
        proxy_set_header X-Role $vodlms_user_role;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "role=$http_x_role\n"; }
--- request
GET /upload
--- more_headers
Cookie: session=t020-carol
--- response_body
role=instructor,admin



=== TEST 32: $vodlms_auth_status tells the outcome to logs and headers
--- config
    location = /t {
        vodlms_auth on;
        add_header X-Auth $vodlms_auth_status always;
        add_header X-User $vodlms_user_id always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- more_headers
Cookie: session=t020-nobody
--- error_code: 401
--- response_headers
X-Auth: unknown_session
!X-User



=== TEST 33: an operator's error_page for 401 wins over the JSON body
--- config
    location = /t {
        vodlms_auth on;
        error_page 401 = /login;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /login { return 302 https://lms.example.test/login; }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- error_code: 302
--- response_headers
Location: https://lms.example.test/login



=== TEST 34: a denied POST discards its body and the connection stays usable
--- config
    location = /t {
        vodlms_auth on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
    location = /next { return 200 "next\n"; }
--- pipelined_requests eval
["POST /t\n" . ("x" x 5000), "GET /next"]
--- error_code eval
[401, 200]
--- response_body eval
["{\"error\":\"no_session\",\"message\":\"no session token in the request\"}\n", "next\n"]



=== TEST 35: the user id reaches the access log through $vodlms_user_id
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    log_format who 'who=$vodlms_user_id auth=$vodlms_auth_status';
--- config
    location = /t {
        vodlms_auth on;
        access_log logs/who.log who;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
    location = /who { alias logs/who.log; }
--- pipelined_requests eval
["GET /t", "GET /who"]
--- more_headers
Cookie: session=t020-alice
--- response_body eval
["app\n", "who=42 auth=ok\n"]
