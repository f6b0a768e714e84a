# The session gate with express-session + connect-redis, the default of a
# NestJS/Express LMS.  Every session here is minted by the real npm packages
# (t/fixtures/express/mint.js) against the test Redis, so the cookie and the
# stored JSON are exactly what such an LMS produces.

use FindBin;
use lib "$FindBin::Bin/lib";
use VodlmsTest;
use JSON::PP ();
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_REDIS_PORT} ||= 6379;
my $r = $ENV{TEST_NGINX_REDIS_PORT};

sub mint {
    my @args = @_;
    my $script = "$FindBin::Bin/fixtures/express/mint.js";
    my $out = `node $script --redis-port $r @args`;
    die "mint.js @args failed (did ./build.sh deps run npm ci?)\n" if $? != 0;
    return JSON::PP::decode_json($out);
}

# a student and an instructor, signed with the current secret
our $alice = mint(q{--secret 'keyboard cat' --user 42 --role student});
our $carol = mint(q{--secret 'keyboard cat' --user 7 --role instructor});

# signed with a secret that has since been rotated out of first place
our $old = mint(q{--secret 'old secret' --user 43});

# a custom prefix and user path, as some LMSs configure connect-redis
our $custom = mint(q{--secret 'keyboard cat' --user 1001 --prefix myapp:sess: --user-path auth.userId --user-as-string});

# logged out: the cookie is genuine, the Redis key is gone
our $gone = mint(q{--secret 'keyboard cat' --user 44});
redis_cmd($r, 'DEL', $gone->{redis_key});

# a rolling session: connect-redis refreshes the key's TTL but never
# rewrites the JSON, so the stored cookie.expires goes stale
our $rolling = mint(q{--secret 'keyboard cat' --user 45});
{
    my $v = JSON::PP::decode_json($rolling->{redis_value});
    $v->{cookie}{expires} = '2020-01-01T00:00:00.000Z';
    redis_cmd($r, 'SET', $rolling->{redis_key}, JSON::PP::encode_json($v), 'KEEPTTL');
}

# one character of the signature changed
our $tampered = $alice->{cookie_value};
$tampered =~ s/(.)$/$1 eq 'A' ? 'B' : 'A'/e;

# carol's sid with alice's signature
(our $swapped = $carol->{cookie_value}) =~ s/\.[^.]*$//;
$alice->{cookie_value} =~ /(\.[^.]*)$/;
$swapped .= $1;

# the same cookie without URL-encoding, as some clients send it
our $raw = $alice->{cookie_value};
$raw =~ s/%([0-9A-Fa-f]{2})/chr(hex($1))/ge;

# sessions without a user, as an LMS leaves them (issue #16): express-session
# with saveUninitialized stores only the cookie; passport's logout leaves an
# empty "passport" object.  Genuine cookies, their Redis values rewritten.
sub rewrite {
    my ($sess, $edit) = @_;
    my $v = JSON::PP::decode_json($sess->{redis_value});
    $edit->($v);
    redis_cmd($r, 'SET', $sess->{redis_key}, JSON::PP::encode_json($v), 'KEEPTTL');
    return $sess;
}
our $anonymous = rewrite(mint(q{--secret 'keyboard cat' --user 46}),
                         sub { delete $_[0]{passport} });
our $logged_out = rewrite(mint(q{--secret 'keyboard cat' --user 47}),
                          sub { $_[0]{passport} = {} });
our $object_user = rewrite(mint(q{--secret 'keyboard cat' --user 48}),
                           sub { $_[0]{passport}{user} = { id => 48 } });

# an anonymous session that logs in on the same sid (no regenerate())
our $late_login = rewrite(mint(q{--secret 'keyboard cat' --user 49}),
                          sub { delete $_[0]{passport} });
my ($ctl_port, $ctl) = control_server(
    '/login' => sub {
        rewrite($::late_login, sub { $_[0]{passport} = { user => 49 } });
        "logged in\n";
    },
);
$ENV{TEST_NGINX_CTL_PORT} = $ctl_port;

# every block loads the module, and has these http{} lines unless it has its own
block_defaults(http_config => <<'EOF');
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
EOF

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a real express-session cookie lets the request through
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_type express;
        vodlms_session_secret "keyboard cat";
        vodlms_session_role_field role;
        proxy_set_header X-User $vodlms_user_id;
        proxy_set_header X-Role $vodlms_user_role;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "user=$http_x_user role=$http_x_role\n"; }
--- request
GET /t
--- more_headers eval
"Cookie: $::alice->{cookie_header_value}"
--- response_body
user=42 role=student
--- no_error_log
[error]
[warn]



=== TEST 2: the instructor's session carries the instructor role
--- config
    location = /upload {
        vodlms_auth on;
        vodlms_session_type express;
        vodlms_session_secret "keyboard cat";
        vodlms_session_role_field role;
        vodlms_auth_require_role instructor;
        proxy_set_header X-User $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "user=$http_x_user\n"; }
--- request
GET /upload
--- more_headers eval
"Cookie: theme=dark; $::carol->{cookie_header_value}; lang=en"
--- response_body
user=7



=== TEST 3: secret rotation: a cookie signed with an older secret still works
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_type express;
        vodlms_session_secret "keyboard cat" "old secret";
        proxy_set_header X-User $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "user=$http_x_user\n"; }
--- request
GET /t
--- more_headers eval
"Cookie: $::old->{cookie_header_value}"
--- response_body
user=43



=== TEST 4: a secret that is no longer listed: 401 bad_signature, logged as a warning
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_type express;
        vodlms_session_secret "keyboard cat";
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- more_headers eval
"Cookie: $::old->{cookie_header_value}"
--- error_code: 401
--- response_body
{"error":"bad_signature","message":"session cookie signature does not match"}
--- error_log
[warn]
vodlms: session cookie signature does not match, answering 401



=== TEST 5: one character of the signature changed: 401 bad_signature
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_type express;
        vodlms_session_secret "keyboard cat";
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- more_headers eval
"Cookie: connect.sid=$::tampered"
--- error_code: 401
--- response_body
{"error":"bad_signature","message":"session cookie signature does not match"}



=== TEST 6: one session's signature on another's sid: 401 bad_signature
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_type express;
        vodlms_session_secret "keyboard cat";
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- more_headers eval
"Cookie: connect.sid=$::swapped"
--- error_code: 401
--- response_body
{"error":"bad_signature","message":"session cookie signature does not match"}



=== TEST 7: a bare sid without "s:" is not a session
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_type express;
        vodlms_session_secret "keyboard cat";
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- more_headers eval
"Cookie: connect.sid=$::alice->{sid}"
--- error_code: 401
--- response_body
{"error":"invalid_session","message":"malformed session token"}
--- error_log
malformed session token: cookie is not signed (no "s:")



=== TEST 8: the cookie without URL-encoding is the same session
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_type express;
        vodlms_session_secret "keyboard cat";
        proxy_set_header X-User $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "user=$http_x_user\n"; }
--- request
GET /t
--- more_headers eval
"Cookie: connect.sid=$::raw"
--- response_body
user=42



=== TEST 9: bad percent-encoding is a malformed cookie
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_type express;
        vodlms_session_secret "keyboard cat";
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- more_headers
Cookie: connect.sid=s%3Aabc%ZZ.def
--- error_code: 401
--- response_body
{"error":"invalid_session","message":"malformed session token"}
--- error_log
malformed session token: bad percent-encoding



=== TEST 10: an encoded NUL byte is a malformed cookie
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_type express;
        vodlms_session_secret "keyboard cat";
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- more_headers
Cookie: connect.sid=s%3Aabc%00def.sig
--- error_code: 401
--- response_body
{"error":"invalid_session","message":"malformed session token"}



=== TEST 11: a genuine cookie whose session was logged out (key deleted): 401
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_type express;
        vodlms_session_secret "keyboard cat";
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- more_headers eval
"Cookie: $::gone->{cookie_header_value}"
--- error_code: 401
--- response_body
{"error":"unknown_session","message":"unknown or expired session"}



=== TEST 12: rolling sessions: a stale cookie.expires in the JSON is not an expiry
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_type express;
        vodlms_session_secret "keyboard cat";
        proxy_set_header X-User $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "user=$http_x_user\n"; }
--- request
GET /t
--- more_headers eval
"Cookie: $::rolling->{cookie_header_value}"
--- response_body
user=45



=== TEST 13: a custom connect-redis prefix and user path
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_type express;
        vodlms_session_secret "keyboard cat";
        vodlms_session_key_prefix myapp:sess:;
        vodlms_session_user_field auth.userId;
        proxy_set_header X-User $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "user=$http_x_user\n"; }
--- request
GET /t
--- more_headers eval
"Cookie: $::custom->{cookie_header_value}"
--- response_body
user=1001



=== TEST 14: connect.sid twice, a forged one first: the first counts
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_type express;
        vodlms_session_secret "keyboard cat";
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- more_headers eval
"Cookie: connect.sid=$::tampered; $::alice->{cookie_header_value}"
--- error_code: 401
--- response_body
{"error":"bad_signature","message":"session cookie signature does not match"}



=== TEST 15: connect.sid twice, the genuine one first: the first counts
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_type express;
        vodlms_session_secret "keyboard cat";
        proxy_set_header X-User $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "user=$http_x_user\n"; }
--- request
GET /t
--- more_headers eval
"Cookie: $::alice->{cookie_header_value}; connect.sid=$::tampered"
--- response_body
user=42



=== TEST 16: express sessions come from the cookie only, never a Bearer header
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_type express;
        vodlms_session_secret "keyboard cat";
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- more_headers eval
"Authorization: Bearer $::alice->{cookie_value}"
--- error_code: 401
--- response_body
{"error":"no_session","message":"no session token in the request"}



=== TEST 17: a custom cookie name
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_type express;
        vodlms_session_cookie lms.sid;
        vodlms_session_secret "keyboard cat";
        proxy_set_header X-User $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "user=$http_x_user\n"; }
--- request
GET /t
--- more_headers eval
"Cookie: connect.sid=junk; lms.sid=$::alice->{cookie_value}"
--- response_body
user=42



=== TEST 18: an anonymous session (saveUninitialized: only the cookie) is no session: 401 at info
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_type express;
        vodlms_session_secret "keyboard cat";
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- more_headers eval
"Cookie: $::anonymous->{cookie_header_value}"
--- error_code: 401
--- response_body
{"error":"unknown_session","message":"unknown or expired session"}
--- error_log eval
qr/\[info\] .*vodlms: unknown or expired session: no user at "passport\.user" \(anonymous or logged out\), answering 401/
--- no_error_log
[error]
[warn]



=== TEST 19: a logged-out session (passport's empty object) is no session: 401 at info
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_type express;
        vodlms_session_secret "keyboard cat";
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- more_headers eval
"Cookie: $::logged_out->{cookie_header_value}"
--- error_code: 401
--- response_body
{"error":"unknown_session","message":"unknown or expired session"}
--- error_log eval
qr/\[info\] .*no user at "passport\.user" \(anonymous or logged out\), answering 401/
--- no_error_log
[error]
[warn]



=== TEST 20: a user id of the wrong type (an object) is still the LMS's broken data: error
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_type express;
        vodlms_session_secret "keyboard cat";
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
--- request
GET /t
--- more_headers eval
"Cookie: $::object_user->{cookie_header_value}"
--- error_code: 401
--- response_body
{"error":"invalid_session_data","message":"session data unusable"}
--- error_log eval
qr/\[error\] .*vodlms: session data unusable: user id: /



=== TEST 21: an anonymous answer is not cached: a login on the same sid is seen at once
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_cache_zone zone=t030s:1m;
--- config
    location = /t {
        vodlms_auth on;
        vodlms_session_type express;
        vodlms_session_secret "keyboard cat";
        vodlms_session_cache t030s valid=1m invalid=1m;
        proxy_set_header X-User $vodlms_user_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "user=$http_x_user\n"; }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- request eval
["GET /t", "GET /ctl/login", "GET /t"]
--- more_headers eval
[("Cookie: $::late_login->{cookie_header_value}") x 3]
--- error_code eval
[401, 200, 200]
--- response_body eval
["{\"error\":\"unknown_session\",\"message\":\"unknown or expired session\"}\n",
 "logged in\n", "user=49\n"]
--- no_error_log
[error]
