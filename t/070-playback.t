# The playback endpoint: metadata plus CloudFront signed cookies (or a
# redirect to a signed URL), after the session gate and the enrollment
# check.  Expected cookies and URLs are computed here with the openssl CLI
# and the shared test key (../shared/vectors/cloudfront), independently of
# the module; a huge expiry bucket makes every expiry 2000000000, so they
# are byte-exact.  Randomised ECDSA signatures, and real clocks, are
# checked by a client that verifies with the public key.

use FindBin;
use lib "$FindBin::Bin/lib";
use VodlmsTest;
use IO::Socket::INET;
use File::Temp qw(tempdir);
use MIME::Base64 qw(encode_base64 decode_base64);
use POSIX qw(strftime);
use JSON::PP ();
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_REDIS_PORT} ||= 6379;
my $r = $ENV{TEST_NGINX_REDIS_PORT};
redis_cmd($r, 'SET', 'session:t070-alice', '{"user_id":"1001"}', 'EX', 3600);
redis_cmd($r, 'SET', 'session:t070-bob', '{"user_id":"1002"}', 'EX', 3600);

my $vectors = $ENV{VODLMS_VECTORS_DIR} || "$FindBin::Bin/../../shared/vectors/cloudfront";
-f "$vectors/test_private_key.pem" or die "no CloudFront test vectors at $vectors\n";
$ENV{TEST_NGINX_CF_KEY} = private_key("$vectors/test_private_key.pem");
$ENV{TEST_NGINX_CF_KEY_PKCS1} = private_key("$vectors/test_private_key_pkcs1.pem");
$ENV{TEST_NGINX_CF_OTHER_KEY} = private_key("$vectors/test_other_private_key.pem");

my $pg = start_pg();
$ENV{TEST_NGINX_PRIVATE_PG} = $pg->conninfo;

my $tmp = tempdir(CLEANUP => 1);

# an ECDSA P-256 key pair, made for this run
system("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out $tmp/ec.pem 2>/dev/null") == 0
    and system("openssl pkey -in $tmp/ec.pem -pubout -out $tmp/ec_pub.pem 2>/dev/null") == 0
    or die "cannot make an EC key\n";
$ENV{TEST_NGINX_EC_KEY} = "$tmp/ec.pem";

# CloudFront's URL-safe base64: standard, padded, then + = / -> - _ ~
sub cf_b64 { my $b = encode_base64($_[0], ''); $b =~ tr{+=/}{-_~}; $b }
sub cf_unb64 { my $b = $_[0]; $b =~ tr{-_~}{+=/}; decode_base64($b) }

sub openssl_sign {
    my ($policy, $key, $hash) = @_;
    open my $fh, '>', "$tmp/policy" or die $!;
    print $fh $policy;
    close $fh;
    my $sig = `openssl dgst -$hash -sign $key $tmp/policy`;
    die "openssl dgst failed\n" if $?;
    return cf_b64($sig);
}

my $E = 2000000000;
my $expires = strftime('%a, %d %b %Y %H:%M:%S GMT', gmtime $E);
my $cdn = 'https://cdn.example.test';

sub custom_policy {
    my ($res, $ip) = @_;
    my $cond = qq("DateLessThan":{"AWS:EpochTime":$E});
    $cond .= qq(,"IpAddress":{"AWS:SourceIp":"$ip"}) if $ip;
    return qq({"Statement":[{"Resource":"$res","Condition":{$cond}}]});
}

our $policy = custom_policy("$cdn/hls/intro-ready/*");
our $policy_b64 = cf_b64($policy);
our $sig1 = openssl_sign($policy, $ENV{TEST_NGINX_CF_KEY}, 'sha1');
our $sig256 = openssl_sign($policy, $ENV{TEST_NGINX_CF_KEY}, 'sha256');
our $ip_policy = custom_policy("$cdn/hls/intro-ready/*", '127.0.0.1/32');
our $ip_sig = openssl_sign($ip_policy, $ENV{TEST_NGINX_CF_KEY}, 'sha1');
our $canned = qq({"Statement":[{"Resource":"$cdn/hls/intro-ready/master.m3u8","Condition":{"DateLessThan":{"AWS:EpochTime":$E}}}]});
our $canned_sig = openssl_sign($canned, $ENV{TEST_NGINX_CF_KEY}, 'sha1');
our $attrs = "; Path=/hls/intro-ready/; Expires=$expires; Secure; HttpOnly; SameSite=Lax";
our $json = qq({"videoId":"intro-ready","title":"Lecture 1: What is a video codec?","duration":634.5,"status":"ready","manifestUrl":"$cdn/hls/intro-ready/master.m3u8","expiresAt":$E,"resumeAt":0}\n);

# a title with everything JSON must escape, and UTF-8 it must not: quotes,
# backslashes, a tab, a newline, a control character, an accent, an emoji
$pg->psql(q{INSERT INTO vodlms.videos (id, course_id, title, duration_seconds, status, progress_percent, storage_prefix)
            VALUES ('t070-quotes', 'course-intro',
                    E'Lecture "2": C:\\\\path\\\\tab\\tx\\ncaf\\u00e9 \\U0001F3AC\\x01', 5400.250, 'ready', 100,
                    'hls/t070-quotes/')});
our $quotes_json = '{"videoId":"t070-quotes","title":"Lecture \"2\": C:\\\\path\\\\tab\\tx\\ncaf'
    . "\xc3\xa9 \xf0\x9f\x8e\xac" . '\\u0001","duration":5400.25,"status":"ready",'
    . qq("manifestUrl":"$cdn/hls/t070-quotes/master.m3u8","expiresAt":$E,"resumeAt":0}\n);

# a viewer that fetches the playback endpoint and checks what it got with
# the public key: for randomised ECDSA signatures and the real clock
sub check_playback {
    my ($pub, $hash, $min_ttl, $max_ttl) = @_;
    my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ENV{TEST_NGINX_SERVER_PORT},
                                  Timeout => 10)
        or return "cannot connect: $!\n";
    print $c "GET /videos/intro-ready/stream HTTP/1.0\r\nHost: localhost\r\n"
           . "Cookie: session=t070-alice\r\n\r\n";
    local $/;
    my $resp = <$c> // '';
    my ($head, $body) = split /\r\n\r\n/, $resp, 2;
    my %c = $head =~ /^Set-Cookie: (CloudFront-[A-Za-z-]+)=([^;]*)/mg;
    my $pol = cf_unb64($c{'CloudFront-Policy'} // '');
    my $sig = cf_unb64($c{'CloudFront-Signature'} // '');
    open my $p, '>', "$tmp/got-policy" or die $!; print $p $pol; close $p;
    open my $s, '>', "$tmp/got-sig" or die $!; print $s $sig; close $s;
    my $v = `openssl dgst -$hash -verify $pub -signature $tmp/got-sig $tmp/got-policy 2>&1`;
    $v =~ s/\s+/ /g;
    $v =~ s/^ | $//g;
    my $doc = eval { JSON::PP::decode_json($body) } || {};
    my ($exp) = $pol =~ /"AWS:EpochTime":(\d+)/;
    my $left = ($exp // 0) - time;
    my $ttl_ok = ($left >= $min_ttl - 5 && $left <= $max_ttl) ? 'ttl ok' : "ttl $left out of range";
    my $same = ($doc->{expiresAt} // -1) == ($exp // -2) ? 'expiresAt matches' : 'expiresAt differs';
    return "$v; $ttl_ok; $same; key $c{'CloudFront-Key-Pair-Id'}\n";
}

my ($ctl_port, $ctl) = control_server(
    '/check/ecdsa' => sub { check_playback("$tmp/ec_pub.pem", 'sha256', 600, 660) },
    '/check/rsa'   => sub { check_playback("$vectors/test_public_key.pem", 'sha1', 600, 660) },
);
$ENV{TEST_NGINX_CTL_PORT} = $ctl_port;

# a dual-stack listener of its own ([::]:port ipv6only=off), reached over
# IPv4: the client arrives as ::ffff:127.0.0.1
$ENV{TEST_NGINX_DUAL_PORT} = free_port();

# every block loads the module, and has these http{} lines unless it has its own
block_defaults(http_config => <<'EOF');
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
EOF

no_shuffle();
run_tests();

__DATA__

=== TEST 1: the playback JSON and three signed cookies, byte-exact
--- config
    location ~ ^/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_cloudfront_url https://cdn.example.test/;
        vodlms_cloudfront_key K2JCJMDEHXQW5F $TEST_NGINX_CF_KEY;
        vodlms_cloudfront_expiry_bucket 1000000000s;
        vodlms_playback cookies;
    }
--- request
GET /videos/intro-ready/stream
--- more_headers
Cookie: session=t070-alice
--- response_headers
Content-Type: application/json
Cache-Control: no-store
--- response_body eval
$::json
--- raw_response_headers_like eval
qr/\r\nSet-Cookie: \QCloudFront-Policy=$::policy_b64$::attrs\E\r\nSet-Cookie: \QCloudFront-Signature=$::sig1$::attrs\E\r\nSet-Cookie: \QCloudFront-Key-Pair-Id=K2JCJMDEHXQW5F$::attrs\E\r\n/
--- no_error_log
[error]
[warn]



=== TEST 1b: a title JSON must escape (quotes, backslashes, tab, newline, a control character) and UTF-8 it must not, byte for byte
--- config
    location ~ ^/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_cloudfront_url https://cdn.example.test;
        vodlms_cloudfront_key K2JCJMDEHXQW5F $TEST_NGINX_CF_KEY;
        vodlms_cloudfront_expiry_bucket 1000000000s;
        vodlms_playback cookies;
    }
--- request
GET /videos/t070-quotes/stream
--- more_headers
Cookie: session=t070-alice
--- response_body eval
$::quotes_json
--- no_error_log
[error]



=== TEST 2: SHA-256 adds CloudFront-Hash-Algorithm and signs with RSA-SHA256
--- config
    location ~ ^/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_cloudfront_url https://cdn.example.test;
        vodlms_cloudfront_key K2JCJMDEHXQW5F $TEST_NGINX_CF_KEY;
        vodlms_cloudfront_expiry_bucket 1000000000s;
        vodlms_cloudfront_hash sha256;
        vodlms_playback cookies;
    }
--- request
GET /videos/intro-ready/stream
--- more_headers
Cookie: session=t070-alice
--- raw_response_headers_like eval
qr/\r\nSet-Cookie: \QCloudFront-Policy=$::policy_b64$::attrs\E\r\nSet-Cookie: \QCloudFront-Signature=$::sig256$::attrs\E\r\nSet-Cookie: \QCloudFront-Key-Pair-Id=K2JCJMDEHXQW5F$::attrs\E\r\nSet-Cookie: \QCloudFront-Hash-Algorithm=SHA256$::attrs\E\r\n/



=== TEST 3: a PKCS#1 key gives the same cookies as the PKCS#8 one
--- config
    location ~ ^/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_cloudfront_url https://cdn.example.test;
        vodlms_cloudfront_key K2JCJMDEHXQW5F $TEST_NGINX_CF_KEY_PKCS1;
        vodlms_cloudfront_expiry_bucket 1000000000s;
        vodlms_playback cookies;
    }
--- request
GET /videos/intro-ready/stream
--- more_headers
Cookie: session=t070-alice
--- raw_response_headers_like eval
qr/\r\nSet-Cookie: \QCloudFront-Signature=$::sig1$::attrs\E\r\n/



=== TEST 4: redirect mode, canned policy: 302 to a signed master playlist URL
--- config
    location ~ ^/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_cloudfront_url https://cdn.example.test;
        vodlms_cloudfront_key K2JCJMDEHXQW5F $TEST_NGINX_CF_KEY;
        vodlms_cloudfront_expiry_bucket 1000000000s;
        vodlms_cloudfront_url_policy canned;
        vodlms_playback redirect;
    }
--- request
GET /videos/intro-ready/stream
--- more_headers
Cookie: session=t070-alice
--- error_code: 302
--- response_headers eval
"Location: https://cdn.example.test/hls/intro-ready/master.m3u8?Expires=2000000000&Key-Pair-Id=K2JCJMDEHXQW5F&Signature=$::canned_sig\nCache-Control: no-store"



=== TEST 5: redirect mode, custom policy: the URL carries the wildcard policy
--- config
    location ~ ^/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_cloudfront_url https://cdn.example.test;
        vodlms_cloudfront_key K2JCJMDEHXQW5F $TEST_NGINX_CF_KEY;
        vodlms_cloudfront_expiry_bucket 1000000000s;
        vodlms_playback redirect;
    }
--- request
GET /videos/intro-ready/stream
--- more_headers
Cookie: session=t070-alice
--- error_code: 302
--- response_headers eval
"Location: https://cdn.example.test/hls/intro-ready/master.m3u8?Policy=$::policy_b64&Key-Pair-Id=K2JCJMDEHXQW5F&Signature=$::sig1"



=== TEST 6: IP binding puts the client's address in the policy
--- config
    location ~ ^/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_cloudfront_url https://cdn.example.test;
        vodlms_cloudfront_key K2JCJMDEHXQW5F $TEST_NGINX_CF_KEY;
        vodlms_cloudfront_expiry_bucket 1000000000s;
        vodlms_cloudfront_ip_binding on;
        vodlms_playback cookies;
    }
--- request
GET /videos/intro-ready/stream
--- more_headers
Cookie: session=t070-alice
--- raw_response_headers_like eval
my $b64 = main::cf_b64($::ip_policy);
qr/\r\nSet-Cookie: \QCloudFront-Policy=$b64$::attrs\E\r\nSet-Cookie: \QCloudFront-Signature=$::ip_sig$::attrs\E\r\n/



=== TEST 6b: IP binding on a dual-stack listener: an IPv4 client (::ffff:127.0.0.1) is bound as 127.0.0.1/32, not left unbound
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
    server {
        listen [::]:$TEST_NGINX_DUAL_PORT ipv6only=off;
        location ~ ^/videos/(?<vid>[^/]+)/stream$ {
            vodlms_auth on;
            vodlms_enrollment_check on;
            vodlms_video_id $vid;
            vodlms_cloudfront_url https://cdn.example.test;
            vodlms_cloudfront_key K2JCJMDEHXQW5F $TEST_NGINX_CF_KEY;
            vodlms_cloudfront_expiry_bucket 1000000000s;
            vodlms_cloudfront_ip_binding on;
            vodlms_playback cookies;
            add_header X-Client $remote_addr always;
        }
    }
--- config
    location /dual/ { proxy_pass http://127.0.0.1:$TEST_NGINX_DUAL_PORT/; }
--- request
GET /dual/videos/intro-ready/stream
--- more_headers
Cookie: session=t070-alice
--- response_headers
X-Client: ::ffff:127.0.0.1
--- raw_response_headers_like eval
my $b64 = main::cf_b64($::ip_policy);
qr/\r\nSet-Cookie: \QCloudFront-Policy=$b64$::attrs\E\r\nSet-Cookie: \QCloudFront-Signature=$::ip_sig$::attrs\E\r\n/



=== TEST 6c: an LMS's own storage prefix column is checked: "; Domain=..." or a line break never reaches Set-Cookie or a header (500, logged)
--- config
    location ~ ^/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_enrollment_query "SELECT $1::text AS id, 'A lecture' AS title, 'ready' AS status,
                                        true AS allowed, 60 AS duration_seconds,
                                        CASE $1::text WHEN 'semi' THEN 'hls/x; Domain=evil.example'
                                                      WHEN 'crlf' THEN E'hls/x\r\nX-Injected: 1'
                                                      WHEN 'dots' THEN 'hls/../other/'
                                                      ELSE 'hls/fine/' END AS storage_prefix
                                  WHERE $2::text <> ''" $vid $vodlms_user_id;
        vodlms_cloudfront_url https://cdn.example.test;
        vodlms_cloudfront_key K2JCJMDEHXQW5F $TEST_NGINX_CF_KEY;
        vodlms_playback cookies;
    }
--- request eval
["GET /videos/semi/stream", "GET /videos/crlf/stream", "GET /videos/dots/stream"]
--- more_headers
Cookie: session=t070-alice
--- error_code eval
[500, 500, 500]
--- raw_response_headers_unlike eval
[qr/evil|X-Injected|CloudFront/i, qr/evil|X-Injected|CloudFront/i, qr/other|CloudFront/]
--- error_log eval
qr/the enrollment row's storage_prefix for video "(semi|crlf|dots)" is not a safe path/



=== TEST 7: the signature cache: one RSA operation for many requests in one bucket
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
    vodlms_cache_zone zone=sigs:1m;
--- config
    location ~ ^/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_cloudfront_url https://cdn.example.test;
        vodlms_cloudfront_key K2JCJMDEHXQW5F $TEST_NGINX_CF_KEY;
        vodlms_cloudfront_signature_cache sigs;
        vodlms_playback cookies;
        add_header X-Signature $vodlms_signature_cache always;
    }
--- pipelined_requests eval
["GET /videos/intro-ready/stream", "GET /videos/intro-ready/stream",
 "GET /videos/intro-ready/stream", "GET /videos/intro-ready/stream"]
--- more_headers
Cookie: session=t070-alice
--- response_headers eval
["X-Signature: MISS", "X-Signature: HIT", "X-Signature: HIT", "X-Signature: HIT"]
--- response_body_like eval
[qr/"videoId":"intro-ready"/, qr/"videoId":"intro-ready"/,
 qr/"videoId":"intro-ready"/, qr/"videoId":"intro-ready"/]



=== TEST 8: a cached signature is only reused for the same policy bytes
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
    vodlms_cache_zone zone=sigs:1m;
--- config
    location ~ ^/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_cloudfront_url https://cdn.example.test;
        vodlms_cloudfront_key K2JCJMDEHXQW5F $TEST_NGINX_CF_KEY;
        vodlms_cloudfront_expiry_bucket 1000000000s;
        vodlms_cloudfront_signature_cache sigs;
        vodlms_playback cookies;
        add_header X-Signature $vodlms_signature_cache always;
    }
--- pipelined_requests eval
["GET /videos/intro-ready/stream", "GET /videos/intro-ready/stream"]
--- more_headers
Cookie: session=t070-alice
--- response_headers eval
["X-Signature: MISS", "X-Signature: HIT"]
--- raw_response_headers_like eval
[qr/\QCloudFront-Signature=$::sig1;\E/, qr/\QCloudFront-Signature=$::sig1;\E/]



=== TEST 9: ECDSA P-256 keys: the cookies verify with the public key
--- config
    location ~ ^/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_cloudfront_url https://cdn.example.test;
        vodlms_cloudfront_key KECTEST0001 $TEST_NGINX_EC_KEY;
        vodlms_cloudfront_hash sha256;
        vodlms_playback cookies;
    }
    location /check/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT; }
--- request
GET /check/ecdsa
--- response_body
Verified OK; ttl ok; expiresAt matches; key KECTEST0001
--- timeout: 10



=== TEST 10: the default TTL (10m, rounded up to 1m) and key rotation: the signing key is the one named
--- config
    location ~ ^/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_cloudfront_url https://cdn.example.test;
        vodlms_cloudfront_key KOLDKEY0000001 $TEST_NGINX_CF_OTHER_KEY;
        vodlms_cloudfront_key K2JCJMDEHXQW5F $TEST_NGINX_CF_KEY;
        vodlms_cloudfront_signing_key K2JCJMDEHXQW5F;
        vodlms_playback cookies;
    }
    location /check/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT; }
--- request
GET /check/rsa
--- response_body
Verified OK; ttl ok; expiresAt matches; key K2JCJMDEHXQW5F
--- timeout: 10



=== TEST 11: denials come from the access phase: not enrolled 403, still processing 409
--- config
    location ~ ^/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_cloudfront_url https://cdn.example.test;
        vodlms_cloudfront_key K2JCJMDEHXQW5F $TEST_NGINX_CF_KEY;
        vodlms_playback cookies;
    }
--- request eval
["GET /videos/intro-ready/stream", "GET /videos/intro-processing/stream",
 "GET /videos/nope/stream"]
--- more_headers eval
["Cookie: session=t070-bob", "Cookie: session=t070-alice", "Cookie: session=t070-alice"]
--- error_code eval
[403, 409, 404]
--- raw_response_headers_unlike eval
[qr/Set-Cookie/, qr/Set-Cookie/, qr/Set-Cookie/]



=== TEST 12: CORS: an allowed origin gets itself and credentials back, never "*"
--- config
    location ~ ^/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_cloudfront_url https://cdn.example.test;
        vodlms_cloudfront_key K2JCJMDEHXQW5F $TEST_NGINX_CF_KEY;
        vodlms_cors_origins https://player.example.test https://lms.example.test;
        vodlms_playback cookies;
    }
--- request
GET /videos/intro-ready/stream
--- more_headers
Cookie: session=t070-alice
Origin: https://lms.example.test
--- response_headers
Access-Control-Allow-Origin: https://lms.example.test
Access-Control-Allow-Credentials: true
Vary: Origin



=== TEST 13: CORS: another origin gets no CORS grant
--- config
    location ~ ^/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_cloudfront_url https://cdn.example.test;
        vodlms_cloudfront_key K2JCJMDEHXQW5F $TEST_NGINX_CF_KEY;
        vodlms_cors_origins https://lms.example.test;
        vodlms_playback cookies;
    }
--- request
GET /videos/intro-ready/stream
--- more_headers
Cookie: session=t070-alice
Origin: https://evil.example.test
--- response_headers
!Access-Control-Allow-Origin
!Access-Control-Allow-Credentials
Vary: Origin



=== TEST 14: a CORS preflight from an allowed origin needs no session
--- config
    location ~ ^/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_cloudfront_url https://cdn.example.test;
        vodlms_cloudfront_key K2JCJMDEHXQW5F $TEST_NGINX_CF_KEY;
        vodlms_cors_origins https://lms.example.test;
        vodlms_playback cookies;
    }
--- request
OPTIONS /videos/intro-ready/stream
--- more_headers
Origin: https://lms.example.test
Access-Control-Request-Method: GET
--- error_code: 204
--- response_headers
Access-Control-Allow-Origin: https://lms.example.test
Access-Control-Allow-Credentials: true
Access-Control-Allow-Methods: GET, HEAD, OPTIONS
!Set-Cookie



=== TEST 15: a preflight from another origin is just an unauthenticated request
--- config
    location ~ ^/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_cloudfront_url https://cdn.example.test;
        vodlms_cloudfront_key K2JCJMDEHXQW5F $TEST_NGINX_CF_KEY;
        vodlms_cors_origins https://lms.example.test;
        vodlms_playback cookies;
    }
--- request
OPTIONS /videos/intro-ready/stream
--- more_headers
Origin: https://evil.example.test
--- error_code: 401



=== TEST 16: cookie Domain and SameSite=None for a CDN on another site
--- config
    location ~ ^/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_cloudfront_url https://cdn.example.test;
        vodlms_cloudfront_key K2JCJMDEHXQW5F $TEST_NGINX_CF_KEY;
        vodlms_cloudfront_expiry_bucket 1000000000s;
        vodlms_cloudfront_cookie_domain .example.test;
        vodlms_cloudfront_cookie_samesite none;
        vodlms_playback cookies;
    }
--- request
GET /videos/intro-ready/stream
--- more_headers
Cookie: session=t070-alice
--- raw_response_headers_like eval
qr/\r\nSet-Cookie: \QCloudFront-Key-Pair-Id=K2JCJMDEHXQW5F; Path=\/hls\/intro-ready\/; Domain=.example.test; Expires=\E[^;]+; Secure; HttpOnly; SameSite=None\r\n/



=== TEST 16b: a CloudFront URL with a path of its own: the cookies' Path, the policy and the manifest all carry it
--- config
    location ~ ^/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_cloudfront_url https://cdn.example.test/media/;
        vodlms_cloudfront_key K2JCJMDEHXQW5F $TEST_NGINX_CF_KEY;
        vodlms_playback cookies;
    }
--- request
GET /videos/intro-ready/stream
--- more_headers
Cookie: session=t070-alice
--- raw_response_headers_like eval
qr/\r\nSet-Cookie: \QCloudFront-Key-Pair-Id=K2JCJMDEHXQW5F; Path=\/media\/hls\/intro-ready\/; Expires=\E[^;]+; Secure; HttpOnly; SameSite=Lax\r\n/
--- response_body_like eval
qr{"manifestUrl":"https://cdn\.example\.test/media/hls/intro-ready/master\.m3u8"}



=== TEST 17: only GET and HEAD: a POST is 405
--- config
    location ~ ^/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_cloudfront_url https://cdn.example.test;
        vodlms_cloudfront_key K2JCJMDEHXQW5F $TEST_NGINX_CF_KEY;
        vodlms_playback cookies;
    }
--- request
POST /videos/intro-ready/stream
body
--- more_headers
Cookie: session=t070-alice
--- error_code: 405
