# The self-hosted edge: nginx verifies CloudFront signed cookies and signed
# URLs the way CloudFront does, and serves the HLS tree with ranges and
# CDN cache headers.
#
# Blocks 1-7 replay every case of ../shared/vectors/cloudfront/
# verify-cases.json, read from the file at run time: one block per clock
# value the cases pin, nginx's clock frozen there by t/bin/nginx-test-clock
# (libfaketime), the client's address set through the realip module.

use FindBin;
BEGIN {
    $ENV{VODLMS_REAL_NGINX} = $ENV{TEST_NGINX_BINARY} || 'nginx';
    $ENV{TEST_NGINX_BINARY} = "$FindBin::Bin/bin/nginx-test-clock";
}
use lib "$FindBin::Bin/lib";
use VodlmsTest;
use IO::Socket::INET;
use JSON::PP ();
use MIME::Base64 ();
use Test::Nginx::Socket 'no_plan';

my $vectors = $ENV{VODLMS_VECTORS_DIR} || "$FindBin::Bin/../../shared/vectors/cloudfront";
-f "$vectors/verify-cases.json" or die "no CloudFront vectors at $vectors\n";
$ENV{TEST_NGINX_CF_PUBKEY} = "$vectors/test_public_key.pem";
$ENV{TEST_NGINX_CF_KEY} = private_key("$vectors/test_private_key.pem");

our @cases = @{ JSON::PP::decode_json(do {
    local $/;
    open my $fh, '<', "$vectors/verify-cases.json" or die $!;
    <$fh>;
}) };

# the clock values the blocks below cover; a new one in the file must fail
my %covered = map { $_ => 1 } qw(1765000000 1767225599 1767225600 1764547199
                                 1764547200 1764547201 2147483646);
for my $c (@cases) {
    die "verify case $c->{name} pins now=$c->{now}, which no block covers\n"
        unless $covered{$c->{now}};
}

sub at { my $now = shift; grep { $_->{now} == $now } @cases }

sub path_of {
    my $u = shift;
    $u =~ s{^https://cdn\.example\.test}{} or die "unexpected host in $u\n";
    return $u;
}

sub requests_at { [ map { 'GET ' . path_of($_->{request_url}) } at(@_) ] }

sub headers_at {
    [ map { "X-Real-IP: $_->{client_ip}"
            . (defined $_->{cookies} ? "\nCookie: $_->{cookies}" : '') } at(@_) ]
}

sub codes_at { [ map { $_->{expect} eq 'allow' ? 200 : 403 } at(@_) ] }

# an allowed request gets the file; a denied one the verifier's reason code
sub bodies_at {
    [ map {
        my $p = path_of($_->{request_url});
        $p =~ s/\?.*//;
        $p =~ s/%20/ /g;
        $_->{expect} eq 'allow'
            ? qr/\Afile \Q$p\E\n\z/
            : qr/\A\{"error":"forbidden","message":"CloudFront credentials rejected","reason":"\Q$_->{reason_code}\E"\}\n\z/
    } at(@_) ]
}

# every file the vectors ask for, each holding its own URL path (the runner
# takes a space in a file name for an mtime: "my video~v2" is stored under
# another name and reached through an alias in TEST 1)
our $files = join('', map { ">>> $_\nfile /$_\n" }
    ('hls/42/seg_00001.ts', 'hls/42/master.m3u8', 'hls/43/seg_00001.ts',
     'hls/42/seg_009.ts', 'hls/42/seg_0091.ts', 'hls/42/seg_00.ts'))
    . ">>> hls/42/my-video-v2/master.m3u8\nfile /hls/42/my video~v2/master.m3u8\n";

our $valid_cookies = (grep { $_->{name} eq 'cookies_custom_wildcard_segment_allow' } @cases)[0]{cookies}
    or die "the vectors lost cookies_custom_wildcard_segment_allow\n";
our $ip_cookies = (grep { $_->{name} eq 'cookies_ip_single_ip_allow' } @cases)[0]{cookies}
    or die "the vectors lost cookies_ip_single_ip_allow\n";

# --- the round trip: our own playback endpoint, then our own edge ---------

# an ECDSA P-256 pair for the ECDSA round trip, made for this run
use File::Temp qw(tempdir);
my $tmp = tempdir(CLEANUP => 1);
system("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out $tmp/ec.pem 2>/dev/null") == 0
    and system("openssl pkey -in $tmp/ec.pem -pubout -out $tmp/ec_pub.pem 2>/dev/null") == 0
    or die "cannot make an EC key\n";
$ENV{TEST_NGINX_EC_KEY} = "$tmp/ec.pem";
$ENV{TEST_NGINX_EC_PUBKEY} = "$tmp/ec_pub.pem";

redis_cmd($ENV{TEST_NGINX_REDIS_PORT} ||= 6379, 'SET', 'session:t080-alice', '{"user_id":"1001"}', 'EX', 3600);
my $pg = start_pg();
$ENV{TEST_NGINX_PRIVATE_PG} = $pg->conninfo;

# the port http_get() talks to: the test's server, or the dual-stack one
our $port;
our $extra_header = '';

sub http_get {
    my ($path, $cookie) = @_;
    my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $port || $ENV{TEST_NGINX_SERVER_PORT},
                                  Timeout => 10) or return (0, '', '');
    print $c "GET $path HTTP/1.0\r\nHost: cdn.example.test\r\n"
           . ($cookie ? "Cookie: $cookie\r\n" : '') . $extra_header . "\r\n";
    local $/;
    my $resp = <$c> // '';
    my ($head, $body) = split /\r\n\r\n/, $resp, 2;
    my ($status) = $head =~ m{^HTTP/1\.\d (\d+)};
    return ($status // 0, $head, $body // '');
}

# a viewer: playback first, then the segment with what playback gave
sub round_trip {
    my ($how) = @_;
    my ($st, $head, $body) = http_get('/api/videos/intro-ready/stream', 'session=t080-alice');
    my $out = "playback $st";

    if ($how eq 'redirect') {
        my ($loc) = $head =~ /^Location: (\S+)/m;
        (my $path = $loc // '') =~ s{^https://cdn\.example\.test}{};
        my ($s2, undef, $b2) = http_get($path);
        return "$out; master $s2: $b2";
    }

    my @c = $head =~ /^Set-Cookie: (CloudFront-[^;]+)/mg;
    my $cookie = join '; ', @c;

    # what the policy binds the cookies to, if anything
    if ($how =~ /^dual/) {
        my ($b64) = $head =~ /^Set-Cookie: CloudFront-Policy=([^;]+)/m;
        (my $std = $b64 // '') =~ tr/-_~/+=\//;
        my $pol = MIME::Base64::decode_base64($std);
        my ($ip) = $pol =~ /"AWS:SourceIp":"([^"]+)"/;
        $out .= " (bound to " . ($ip // 'nothing') . ")";
        # the same cookies from another address (set by realip)
        local $extra_header = "X-Real-IP: 192.0.2.7\r\n" if $how eq 'dual-elsewhere';
        my ($s2, undef, $b2) = http_get('/hls/intro-ready/seg_00001.ts', $cookie);
        $b2 = $b2 =~ /"reason":"([a-z_]+)"/ ? "reason $1\n" : $b2;
        return "$out; segment $s2: $b2";
    }
    my $seg = '/hls/intro-ready/seg_00001.ts';

    if ($how eq 'tampered') {
        $cookie =~ s/(CloudFront-Signature=.)(.)/$1 . ($2 eq 'A' ? 'B' : 'A')/e;
    } elsif ($how eq 'other-video') {
        $seg = '/hls/intro-processing/seg_00001.ts';
    } elsif ($how eq 'no-cookies') {
        $cookie = '';
    } elsif ($how =~ /^vtt/) {
        # a WebVTT segment of the captions (issue #23), under the same cookies
        $seg = '/hls/intro-ready/subs/en/20261205T121500Z-3f9a1c2b/seg_00000.vtt';
        $cookie = '' if $how eq 'vtt-no-cookies';
    } elsif ($how =~ /^path:(.*)/) {
        # the cookies for intro-ready, a path that nginx resolves elsewhere
        $seg = $1;
    }

    my ($s2, $h2, $b2) = http_get($seg, $cookie);
    $b2 = $b2 =~ /"reason":"([a-z_]+)"/ ? "reason $1\n"
        : $b2 =~ /"error":"([a-z_]+)"/ ? "error $1\n" : $b2;
    if ($how =~ /^vtt/ && $s2 == 200) {
        my ($type) = $h2 =~ /^Content-Type: ([^\r]*)/mi;
        my ($cc) = $h2 =~ /^Cache-Control: ([^\r]*)/mi;
        $out .= "; segment (" . ($type // 'no type') . ", " . ($cc // 'no Cache-Control') . ")";
    }
    return "$out; segment $s2: $b2";
}

# a dual-stack listener of its own ([::]:port ipv6only=off), set before the
# control server forks, which reaches it over IPv4
$ENV{TEST_NGINX_DUAL_PORT} = free_port();

my ($ctl_port, $ctl) = control_server(
    '/trip/cookies'     => sub { round_trip('cookies') },
    '/trip/redirect'    => sub { round_trip('redirect') },
    '/trip/tampered'    => sub { round_trip('tampered') },
    '/trip/other-video' => sub { round_trip('other-video') },
    '/trip/no-cookies'  => sub { round_trip('no-cookies') },
    '/trip/vtt'         => sub { round_trip('vtt') },
    '/trip/vtt-no-cookies' => sub { round_trip('vtt-no-cookies') },
    # path tricks: each would serve intro-processing under intro-ready's
    # policy if the edge trusted the raw path
    '/trip/dotdot'      => sub { round_trip('path:/hls/intro-ready/../intro-processing/seg_00001.ts') },
    '/trip/enc-dotdot'  => sub { round_trip('path:/hls/intro-ready/%2e%2E/intro-processing/seg_00001.ts') },
    '/trip/mixed-dotdot'=> sub { round_trip('path:/hls/intro-ready/.%2e/intro-processing/seg_00001.ts') },
    '/trip/enc-slash'   => sub { round_trip('path:/hls/intro-ready/..%2Fintro-processing/seg_00001.ts') },
    '/trip/dot'         => sub { round_trip('path:/hls/intro-ready/./seg_00001.ts') },
    # nginx ends a ".." segment at a raw '#' as at a '/': the parent tree
    '/trip/hash-dotdot' => sub { round_trip('path:/hls/intro-ready/..#x') },
    '/trip/dotfile'     => sub { round_trip('path:/hls/intro-ready/..seg_00001.ts') },
    # a dual-stack listener reached over IPv4: the client is ::ffff:127.0.0.1
    '/trip/dual'        => sub { local $port = $ENV{TEST_NGINX_DUAL_PORT}; round_trip('dual') },
    '/trip/dual-elsewhere' => sub { local $port = $ENV{TEST_NGINX_DUAL_PORT}; round_trip('dual-elsewhere') },
);
$ENV{TEST_NGINX_CTL_PORT} = $ctl_port;

# every block loads the module, and has these http{} lines unless it has its own
block_defaults(http_config => <<'EOF');
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Real-IP;
EOF

no_shuffle();
run_tests();

__DATA__

=== TEST 1: verify-cases.json at now=1765000000 (most cases)
--- main_config
    load_module $TEST_NGINX_MODULE_PATH;
    # vodlms-test-clock: 1765000000
--- config
    location /hls/ {
        vodlms_edge on;
        vodlms_edge_url https://cdn.example.test;
        vodlms_edge_public_key K2JCJMDEHXQW5F $TEST_NGINX_CF_PUBKEY;
        root html;
    }
    location "/hls/42/my video~v2/" {
        vodlms_edge on;
        vodlms_edge_url https://cdn.example.test;
        vodlms_edge_public_key K2JCJMDEHXQW5F $TEST_NGINX_CF_PUBKEY;
        alias html/hls/42/my-video-v2/;
    }
--- user_files eval
$::files
--- request eval
main::requests_at(1765000000)
--- more_headers eval
main::headers_at(1765000000)
--- error_code eval
main::codes_at(1765000000)
--- response_body_like eval
main::bodies_at(1765000000)
--- no_error_log
[error]
[alert]



=== TEST 2: verify-cases.json at now=1767225599 (one second before DateLessThan)
--- main_config
    load_module $TEST_NGINX_MODULE_PATH;
    # vodlms-test-clock: 1767225599
--- config
    location /hls/ {
        vodlms_edge on;
        vodlms_edge_url https://cdn.example.test;
        vodlms_edge_public_key K2JCJMDEHXQW5F $TEST_NGINX_CF_PUBKEY;
        root html;
    }
--- user_files eval
$::files
--- request eval
main::requests_at(1767225599)
--- more_headers eval
main::headers_at(1767225599)
--- error_code eval
main::codes_at(1767225599)
--- response_body_like eval
main::bodies_at(1767225599)



=== TEST 3: verify-cases.json at now=1767225600 (exactly DateLessThan: expired)
--- main_config
    load_module $TEST_NGINX_MODULE_PATH;
    # vodlms-test-clock: 1767225600
--- config
    location /hls/ {
        vodlms_edge on;
        vodlms_edge_url https://cdn.example.test;
        vodlms_edge_public_key K2JCJMDEHXQW5F $TEST_NGINX_CF_PUBKEY;
        root html;
    }
--- user_files eval
$::files
--- request eval
main::requests_at(1767225600)
--- more_headers eval
main::headers_at(1767225600)
--- error_code eval
main::codes_at(1767225600)
--- response_body_like eval
main::bodies_at(1767225600)



=== TEST 4: verify-cases.json at now=1764547199 (before DateGreaterThan)
--- main_config
    load_module $TEST_NGINX_MODULE_PATH;
    # vodlms-test-clock: 1764547199
--- config
    location /hls/ {
        vodlms_edge on;
        vodlms_edge_url https://cdn.example.test;
        vodlms_edge_public_key K2JCJMDEHXQW5F $TEST_NGINX_CF_PUBKEY;
        root html;
    }
--- user_files eval
$::files
--- request eval
main::requests_at(1764547199)
--- more_headers eval
main::headers_at(1764547199)
--- error_code eval
main::codes_at(1764547199)
--- response_body_like eval
main::bodies_at(1764547199)



=== TEST 5: verify-cases.json at now=1764547200 (exactly DateGreaterThan: not yet)
--- main_config
    load_module $TEST_NGINX_MODULE_PATH;
    # vodlms-test-clock: 1764547200
--- config
    location /hls/ {
        vodlms_edge on;
        vodlms_edge_url https://cdn.example.test;
        vodlms_edge_public_key K2JCJMDEHXQW5F $TEST_NGINX_CF_PUBKEY;
        root html;
    }
--- user_files eval
$::files
--- request eval
main::requests_at(1764547200)
--- more_headers eval
main::headers_at(1764547200)
--- error_code eval
main::codes_at(1764547200)
--- response_body_like eval
main::bodies_at(1764547200)



=== TEST 6: verify-cases.json at now=1764547201 (one second after DateGreaterThan)
--- main_config
    load_module $TEST_NGINX_MODULE_PATH;
    # vodlms-test-clock: 1764547201
--- config
    location /hls/ {
        vodlms_edge on;
        vodlms_edge_url https://cdn.example.test;
        vodlms_edge_public_key K2JCJMDEHXQW5F $TEST_NGINX_CF_PUBKEY;
        root html;
    }
--- user_files eval
$::files
--- request eval
main::requests_at(1764547201)
--- more_headers eval
main::headers_at(1764547201)
--- error_code eval
main::codes_at(1764547201)
--- response_body_like eval
main::bodies_at(1764547201)



=== TEST 7: verify-cases.json at now=2147483646 (Expires=2147483647)
--- main_config
    load_module $TEST_NGINX_MODULE_PATH;
    # vodlms-test-clock: 2147483646
--- config
    location /hls/ {
        vodlms_edge on;
        vodlms_edge_url https://cdn.example.test;
        vodlms_edge_public_key K2JCJMDEHXQW5F $TEST_NGINX_CF_PUBKEY;
        root html;
    }
--- user_files eval
$::files
--- request eval
main::requests_at(2147483646)
--- more_headers eval
main::headers_at(2147483646)
--- error_code eval
main::codes_at(2147483646)
--- response_body_like eval
main::bodies_at(2147483646)



=== TEST 8: a Range request on a verified segment: 206 and exactly those bytes
--- main_config
    load_module $TEST_NGINX_MODULE_PATH;
    # vodlms-test-clock: 1765000000
--- config
    location /hls/ {
        vodlms_edge on;
        vodlms_edge_url https://cdn.example.test;
        vodlms_edge_public_key K2JCJMDEHXQW5F $TEST_NGINX_CF_PUBKEY;
        root html;
    }
--- user_files eval
$::files
--- request
GET /hls/42/seg_00001.ts
--- more_headers eval
"X-Real-IP: 203.0.113.7\nCookie: $::valid_cookies\nRange: bytes=5-11"
--- error_code: 206
--- response_headers
Content-Range: bytes 5-11/26
Content-Length: 7
--- response_body chomp
/hls/42



=== TEST 9: HEAD on a verified segment: headers, no body
--- main_config
    load_module $TEST_NGINX_MODULE_PATH;
    # vodlms-test-clock: 1765000000
--- config
    location /hls/ {
        vodlms_edge on;
        vodlms_edge_url https://cdn.example.test;
        vodlms_edge_public_key K2JCJMDEHXQW5F $TEST_NGINX_CF_PUBKEY;
        root html;
    }
--- user_files eval
$::files
--- request
HEAD /hls/42/seg_00001.ts
--- more_headers eval
"X-Real-IP: 203.0.113.7\nCookie: $::valid_cookies"
--- response_headers
Content-Length: 26
Accept-Ranges: bytes
--- response_body



=== TEST 9b: the three cookies in three Cookie headers verify as in one (nginx 1.23 and later keep such headers in a list, 1.22 in an array)
--- main_config
    load_module $TEST_NGINX_MODULE_PATH;
    # vodlms-test-clock: 1765000000
--- config
    location /hls/ {
        vodlms_edge on;
        vodlms_edge_url https://cdn.example.test;
        vodlms_edge_public_key K2JCJMDEHXQW5F $TEST_NGINX_CF_PUBKEY;
        root html;
    }
--- user_files eval
$::files
--- request
GET /hls/42/seg_00001.ts
--- more_headers eval
"X-Real-IP: 203.0.113.7\nCookie: " . ($::valid_cookies =~ s/;\s*/\nCookie: /gr)
--- response_body
file /hls/42/seg_00001.ts
--- no_error_log
[info]



=== TEST 10: a seek past the end: 416, still only for verified viewers
--- main_config
    load_module $TEST_NGINX_MODULE_PATH;
    # vodlms-test-clock: 1765000000
--- config
    location /hls/ {
        vodlms_edge on;
        vodlms_edge_url https://cdn.example.test;
        vodlms_edge_public_key K2JCJMDEHXQW5F $TEST_NGINX_CF_PUBKEY;
        root html;
    }
--- user_files eval
$::files
--- request eval
["GET /hls/42/seg_00001.ts", "GET /hls/42/seg_00001.ts"]
--- more_headers eval
["X-Real-IP: 203.0.113.7\nCookie: $::valid_cookies\nRange: bytes=1000-",
 "X-Real-IP: 203.0.113.7\nRange: bytes=0-3"]
--- error_code eval
[416, 403]



=== TEST 11: cache headers: short for playlists, long and immutable for segments; no gzip on segments
--- main_config
    load_module $TEST_NGINX_MODULE_PATH;
    # vodlms-test-clock: 1765000000
--- http_config
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Real-IP;
    types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; }
    gzip on;
    gzip_min_length 1;
    gzip_types *;
--- config
    location /hls/ {
        vodlms_edge on;
        vodlms_edge_url https://cdn.example.test;
        vodlms_edge_public_key K2JCJMDEHXQW5F $TEST_NGINX_CF_PUBKEY;
        root html;
    }
--- user_files eval
$::files
--- request eval
["GET /hls/42/master.m3u8", "GET /hls/42/seg_00001.ts"]
--- more_headers eval
["X-Real-IP: 203.0.113.7\nCookie: $::valid_cookies\nAccept-Encoding: gzip",
 "X-Real-IP: 203.0.113.7\nCookie: $::valid_cookies\nAccept-Encoding: gzip"]
--- response_headers eval
["Cache-Control: max-age=5\nContent-Type: application/vnd.apple.mpegurl",
 "Cache-Control: max-age=31536000, immutable\nContent-Type: video/mp2t\n!Content-Encoding"]



=== TEST 12: the cache-header ages are configurable, and denials get none
--- main_config
    load_module $TEST_NGINX_MODULE_PATH;
    # vodlms-test-clock: 1765000000
--- config
    location /hls/ {
        vodlms_edge on;
        vodlms_edge_url https://cdn.example.test;
        vodlms_edge_public_key K2JCJMDEHXQW5F $TEST_NGINX_CF_PUBKEY;
        vodlms_edge_playlist_max_age 2s;
        vodlms_edge_segment_max_age 1d;
        root html;
    }
--- user_files eval
$::files
--- request eval
["GET /hls/42/master.m3u8", "GET /hls/42/seg_00001.ts", "GET /hls/42/seg_00001.ts"]
--- more_headers eval
["X-Real-IP: 203.0.113.7\nCookie: $::valid_cookies",
 "X-Real-IP: 203.0.113.7\nCookie: $::valid_cookies",
 "X-Real-IP: 203.0.113.7"]
--- error_code eval
[200, 200, 403]
--- response_headers eval
["Cache-Control: max-age=2", "Cache-Control: max-age=86400, immutable",
 "Cache-Control: no-store"]



=== TEST 13: good signatures are cached until their policy expires: RSA once per policy
--- main_config
    load_module $TEST_NGINX_MODULE_PATH;
    # vodlms-test-clock: 1765000000
--- http_config
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Real-IP;
    vodlms_cache_zone zone=edge:1m;
--- config
    location /hls/ {
        vodlms_edge on;
        vodlms_edge_url https://cdn.example.test;
        vodlms_edge_public_key K2JCJMDEHXQW5F $TEST_NGINX_CF_PUBKEY;
        vodlms_edge_signature_cache edge;
        add_header X-Signature $vodlms_edge_signature_cache always;
        add_header X-Edge $vodlms_edge_status always;
        root html;
    }
--- user_files eval
$::files
--- pipelined_requests eval
["GET /hls/42/seg_00001.ts", "GET /hls/42/master.m3u8", "GET /hls/42/seg_009.ts",
 "GET /hls/43/seg_00001.ts"]
--- more_headers eval
"X-Real-IP: 203.0.113.7\nCookie: $::valid_cookies"
--- error_code eval
[200, 200, 200, 403]
--- response_headers eval
["X-Signature: MISS\nX-Edge: allow", "X-Signature: HIT\nX-Edge: allow",
 "X-Signature: HIT\nX-Edge: allow", "X-Signature: HIT\nX-Edge: resource_mismatch"]



=== TEST 13b: a cached signature keeps its policy's conditions: an IP-bound policy hits from its address, and from another it still fails
--- main_config
    load_module $TEST_NGINX_MODULE_PATH;
    # vodlms-test-clock: 1765000000
--- http_config
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Real-IP;
    vodlms_cache_zone zone=edge:1m;
--- config
    location /hls/ {
        vodlms_edge on;
        vodlms_edge_url https://cdn.example.test;
        vodlms_edge_public_key K2JCJMDEHXQW5F $TEST_NGINX_CF_PUBKEY;
        vodlms_edge_signature_cache edge;
        add_header X-Signature $vodlms_edge_signature_cache always;
        add_header X-Edge $vodlms_edge_status always;
        root html;
    }
--- user_files eval
$::files
--- request eval
["GET /hls/42/seg_00001.ts", "GET /hls/42/seg_00001.ts", "GET /hls/42/seg_00001.ts",
 "GET /hls/43/seg_00001.ts"]
--- more_headers eval
["X-Real-IP: 203.0.113.7\nCookie: $::ip_cookies", "X-Real-IP: 203.0.113.7\nCookie: $::ip_cookies",
 "X-Real-IP: 203.0.113.8\nCookie: $::ip_cookies", "X-Real-IP: 203.0.113.7\nCookie: $::ip_cookies"]
--- error_code eval
[200, 200, 403, 403]
--- response_headers eval
["X-Signature: MISS\nX-Edge: allow", "X-Signature: HIT\nX-Edge: allow",
 "X-Signature: HIT\nX-Edge: ip_mismatch", "X-Signature: HIT\nX-Edge: resource_mismatch"]



=== TEST 14: the round trip: the playback endpoint's cookies, then the edge serves a segment
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_cloudfront_url https://cdn.example.test;
        vodlms_cloudfront_key K2JCJMDEHXQW5F $TEST_NGINX_CF_KEY;
        vodlms_playback cookies;
    }
    location /hls/ {
        vodlms_edge on;
        vodlms_edge_url https://cdn.example.test;
        vodlms_edge_public_key K2JCJMDEHXQW5F $TEST_NGINX_CF_PUBKEY;
        root html;
    }
    location /trip/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT; }
--- user_files
>>> hls/intro-ready/seg_00001.ts
segment 1 of intro-ready
>>> hls/intro-processing/seg_00001.ts
segment 1 of intro-processing
>>> hls/intro-ready/..seg_00001.ts
a name that starts with two dots is not a dot segment
--- request eval
["GET /trip/cookies", "GET /trip/tampered", "GET /trip/other-video", "GET /trip/no-cookies", "GET /trip/dotfile"]
--- response_body eval
["playback 200; segment 200: segment 1 of intro-ready\n",
 "playback 200; segment 403: reason bad_signature\n",
 "playback 200; segment 403: reason resource_mismatch\n",
 "playback 200; segment 403: reason missing_signature\n",
 "playback 200; segment 200: a name that starts with two dots is not a dot segment\n"]
--- timeout: 10



=== TEST 14b: path tricks cannot reach another video: dot segments and encoded separators are refused before the signature check
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_cloudfront_url https://cdn.example.test;
        vodlms_cloudfront_key K2JCJMDEHXQW5F $TEST_NGINX_CF_KEY;
        vodlms_playback cookies;
    }
    location /hls/ {
        vodlms_edge on;
        vodlms_edge_url https://cdn.example.test;
        vodlms_edge_public_key K2JCJMDEHXQW5F $TEST_NGINX_CF_PUBKEY;
        root html;
    }
    location /trip/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT; }
--- user_files
>>> hls/intro-ready/seg_00001.ts
segment 1 of intro-ready
>>> hls/intro-processing/seg_00001.ts
segment 1 of intro-processing
--- request eval
["GET /trip/dotdot", "GET /trip/enc-dotdot", "GET /trip/mixed-dotdot", "GET /trip/dot", "GET /trip/hash-dotdot", "GET /trip/enc-slash"]
--- response_body eval
["playback 200; segment 400: error bad_path\n",
 "playback 200; segment 400: error bad_path\n",
 "playback 200; segment 400: error bad_path\n",
 "playback 200; segment 400: error bad_path\n",
 "playback 200; segment 400: error bad_path\n",
 "playback 200; segment 400: error bad_path\n"]
--- error_log
edge request path refused
--- no_error_log
[alert]
[crit]
--- timeout: 10



=== TEST 14c: captions travel under the same cookies: the edge serves a WebVTT segment to the viewer the playback endpoint signed for, as text/vtt cached like any segment, and refuses it without the cookies
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
    types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; text/vtt vtt; }
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_cloudfront_url https://cdn.example.test;
        vodlms_cloudfront_key K2JCJMDEHXQW5F $TEST_NGINX_CF_KEY;
        vodlms_playback cookies;
    }
    location /hls/ {
        vodlms_edge on;
        vodlms_edge_url https://cdn.example.test;
        vodlms_edge_public_key K2JCJMDEHXQW5F $TEST_NGINX_CF_PUBKEY;
        root html;
    }
    location /trip/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT; }
--- user_files
>>> hls/intro-ready/subs/en/20261205T121500Z-3f9a1c2b/seg_00000.vtt
WEBVTT
X-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000

00:00:01.000 --> 00:00:03.000
Hello from the edge
--- request eval
["GET /trip/vtt", "GET /trip/vtt-no-cookies"]
--- response_body eval
["playback 200; segment (text/vtt, max-age=31536000, immutable); segment 200: WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000\n\n00:00:01.000 --> 00:00:03.000\nHello from the edge\n",
 "playback 200; segment 403: reason missing_signature\n"]
--- timeout: 10



=== TEST 15: the same round trip with the redirect mode's signed URL
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_cloudfront_url https://cdn.example.test;
        vodlms_cloudfront_key K2JCJMDEHXQW5F $TEST_NGINX_CF_KEY;
        vodlms_cloudfront_url_policy canned;
        vodlms_playback redirect;
    }
    location /hls/ {
        vodlms_edge on;
        vodlms_edge_url https://cdn.example.test;
        vodlms_edge_public_key K2JCJMDEHXQW5F $TEST_NGINX_CF_PUBKEY;
        root html;
    }
    location /trip/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT; }
--- user_files
>>> hls/intro-ready/master.m3u8
#EXTM3U
--- request
GET /trip/redirect
--- response_body
playback 302; master 200: #EXTM3U
--- timeout: 10



=== TEST 16: a denial is one info line naming the reason and where the credentials came from
--- main_config
    load_module $TEST_NGINX_MODULE_PATH;
    # vodlms-test-clock: 1767225600
--- config
    location /hls/ {
        vodlms_edge on;
        vodlms_edge_url https://cdn.example.test;
        vodlms_edge_public_key K2JCJMDEHXQW5F $TEST_NGINX_CF_PUBKEY;
        root html;
    }
--- user_files eval
$::files
--- request
GET /hls/42/seg_00001.ts
--- more_headers eval
"X-Real-IP: 203.0.113.7\nCookie: $::valid_cookies"
--- error_code: 403
--- error_log
vodlms: CloudFront credentials rejected: expired (now >= DateLessThan), cookies, answering 403
--- no_error_log
[error]



=== TEST 17: every variant the playback endpoint issues passes the edge: SHA-256, ECDSA, IP-bound cookies
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_cloudfront_url https://cdn.example.test;
        vodlms_cloudfront_key KECDSA0001 $TEST_NGINX_EC_KEY;
        vodlms_cloudfront_hash sha256;
        vodlms_cloudfront_ip_binding on;
        vodlms_playback cookies;
    }
    location /hls/ {
        vodlms_edge on;
        vodlms_edge_url https://cdn.example.test;
        vodlms_edge_public_key K2JCJMDEHXQW5F $TEST_NGINX_CF_PUBKEY;
        vodlms_edge_public_key KECDSA0001 $TEST_NGINX_EC_PUBKEY;
        root html;
    }
    location /trip/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT; }
--- user_files
>>> hls/intro-ready/seg_00001.ts
segment 1 of intro-ready
--- request eval
["GET /trip/cookies", "GET /trip/tampered"]
--- response_body eval
["playback 200; segment 200: segment 1 of intro-ready\n",
 "playback 200; segment 403: reason bad_signature\n"]
--- timeout: 10



=== TEST 17b: a dual-stack listener: an IPv4 client's cookies are bound to its address, pass the edge from it, and fail from another
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
    server {
        listen [::]:$TEST_NGINX_DUAL_PORT ipv6only=off;
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Real-IP;
        location ~ ^/api/videos/(?<vid>[^/]+)/stream$ {
            vodlms_auth on;
            vodlms_enrollment_check on;
            vodlms_video_id $vid;
            vodlms_cloudfront_url https://cdn.example.test;
            vodlms_cloudfront_key K2JCJMDEHXQW5F $TEST_NGINX_CF_KEY;
            vodlms_cloudfront_ip_binding on;
            vodlms_playback cookies;
        }
        location /hls/ {
            vodlms_edge on;
            vodlms_edge_url https://cdn.example.test;
            vodlms_edge_public_key K2JCJMDEHXQW5F $TEST_NGINX_CF_PUBKEY;
            root html;
        }
    }
--- config
    location /trip/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT; }
--- user_files
>>> hls/intro-ready/seg_00001.ts
segment 1 of intro-ready
--- request eval
["GET /trip/dual", "GET /trip/dual-elsewhere"]
--- response_body eval
["playback 200 (bound to 127.0.0.1/32); segment 200: segment 1 of intro-ready\n",
 "playback 200 (bound to 127.0.0.1/32); segment 403: reason ip_mismatch\n"]
--- timeout: 10



=== TEST 18: the custom-policy redirect URL passes the edge
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_cloudfront_url https://cdn.example.test;
        vodlms_cloudfront_key K2JCJMDEHXQW5F $TEST_NGINX_CF_KEY;
        vodlms_playback redirect;
    }
    location /hls/ {
        vodlms_edge on;
        vodlms_edge_url https://cdn.example.test;
        vodlms_edge_public_key K2JCJMDEHXQW5F $TEST_NGINX_CF_PUBKEY;
        root html;
    }
    location /trip/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT; }
--- user_files
>>> hls/intro-ready/master.m3u8
#EXTM3U
--- request
GET /trip/redirect
--- response_body
playback 302; master 200: #EXTM3U
--- timeout: 10
