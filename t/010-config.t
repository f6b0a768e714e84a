# Configuration is checked at "nginx -t": every mistake an operator can make
# in the session gate's directives fails the test with a message that names
# the directive (or parameter) and the file:line.  Plain Test::More, since
# this is about "nginx -t" itself, not about requests.

use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use FindBin;

my $nginx  = $ENV{TEST_NGINX_BINARY} || 'nginx';
my $module = $ENV{TEST_NGINX_MODULE_PATH}
    or BAIL_OUT('TEST_NGINX_MODULE_PATH is not set (run ./build.sh test)');

my $dir = tempdir(CLEANUP => 1);
mkdir "$dir/logs";

# runs nginx -t on an http{} body; returns (exit ok?, all output)
sub nginx_t {
    my ($http) = @_;
    open my $fh, '>', "$dir/nginx.conf" or die $!;
    print $fh <<"EOF";
load_module $module;
error_log $dir/logs/error.log;
pid $dir/nginx.pid;
events {}
http {
    client_body_temp_path $dir/body;
$http
}
EOF
    close $fh;
    my $out = `$nginx -t -p $dir -c $dir/nginx.conf -e $dir/logs/error.log 2>&1`;
    return ($? == 0, $out);
}

# $line, if given: the line the message must name ($http begins on line 7)
sub rejects {
    my ($name, $http, $re, $line) = @_;
    my ($ok, $out) = nginx_t($http);
    ok(!$ok, "$name: nginx -t fails");
    like($out, $re, "$name: the message says why") or diag $out;
    like($out, qr/in \Q$dir\E\/nginx\.conf:\d+/, "$name: the message names the file and line");
    if (defined $line) {
        like($out, qr/in \Q$dir\E\/nginx\.conf:$line(?!\d)/,
             "$name: the message names line $line") or diag $out;
    }
}

sub accepts {
    my ($name, $http) = @_;
    my ($ok, $out) = nginx_t($http);
    ok($ok, "$name: nginx -t passes") or diag $out;
}

my $server = 'server { listen 127.0.0.1:1; location / { vodlms_auth on; } }';

accepts('a minimal token gate',
    "vodlms_redis 127.0.0.1:6379; $server");

accepts('every redis parameter',
    "vodlms_redis 127.0.0.1:6379 db=2 user=lms password=pw pool_size=8 "
  . "connect_timeout=250ms timeout=2s; $server");

accepts('a unix-socket redis',
    "vodlms_redis unix:/run/redis/redis.sock; $server");

accepts('an express gate with rotation and a cache',
    "vodlms_redis 127.0.0.1:6379; vodlms_cache_zone zone=s:1m;
     server { listen 127.0.0.1:1; location / {
         vodlms_auth on; vodlms_session_type express;
         vodlms_session_secret new old; vodlms_session_cache s valid=5m invalid=2s;
         vodlms_auth_require_role instructor admin; } }");

accepts('the module loaded but unused',
    'server { listen 127.0.0.1:1; }');

# Debian's default error_log shows "error" and above, not the start-up
# notice with the version: "nginx -t" prints it, "nginx -t -q" does not
# (issue #16).
{
    my ($ver) = do {
        open my $vh, '<', "$FindBin::Bin/../ngx_http_vodlms_module/ngx_http_vodlms_version.h" or die $!;
        map { /^#define NGX_HTTP_VODLMS_VERSION\s+"([^"]+)"/ ? $1 : () } <$vh>;
    };
    my ($ok, $out) = nginx_t('server { listen 127.0.0.1:1; }');
    like($out, qr/^nginx: vodlms\/\Q$ver\E \(built for nginx \d+\.\d+\.\d+; OpenSSL [^,]+, hiredis [\d.]+, libpq [\d.]+, jansson [\d.]+, yajl [\d.]+\)\n.*test is successful/ms,
         'nginx -t prints the module\'s version') or diag $out;
    $out = `$nginx -t -q -p $dir -c $dir/nginx.conf -e $dir/logs/error.log 2>&1`;
    is($out, '', 'nginx -t -q (systemd\'s check before a reload) prints nothing');
}

rejects('an unknown session type',
    "vodlms_redis 127.0.0.1:6379; server { listen 127.0.0.1:1; location / {
         vodlms_auth on; vodlms_session_type jwt; } }",
    qr/invalid value "jwt" in "vodlms_session_type" directive, expected one of "token", "express"/);

rejects('an unknown value format',
    "vodlms_redis 127.0.0.1:6379; server { listen 127.0.0.1:1; location / {
         vodlms_auth on; vodlms_session_value xml; } }",
    qr/invalid value "xml" in "vodlms_session_value" directive, expected one of "json", "hash"/);

rejects('express sessions without a secret',
    "vodlms_redis 127.0.0.1:6379; server { listen 127.0.0.1:1; location / {
         vodlms_auth on; vodlms_session_type express; } }",
    qr/"vodlms_session_type express" needs at least one "vodlms_session_secret"/, 7);

# Checks across directives run when the locations are merged, after the
# whole http{} block is read: the message names the location that fails and
# the line where it begins, not the closing brace of http{} (issue #16).
rejects('express sessions without a secret: the location and its line',
    "vodlms_redis 127.0.0.1:6379;
     server { listen 127.0.0.1:1;
         location /ok { vodlms_auth on; }
         location /videos/ {
             vodlms_auth on;
             vodlms_session_type express;
         }
     }",
    qr/"vodlms_session_type express" needs at least one "vodlms_session_secret" \(location "\/videos\/"\) in \Q$dir\E\/nginx\.conf:10$/m, 10);

rejects('the gate in a server block without a store: the server and its line',
    "server { listen 127.0.0.1:1;
         vodlms_auth on;
         location / { }
     }",
    qr/"vodlms_auth" needs a session store: add "vodlms_redis" to the http block \(server block\) in \Q$dir\E\/nginx\.conf:7$/m, 7);

rejects('express sessions stored as a hash',
    "vodlms_redis 127.0.0.1:6379; server { listen 127.0.0.1:1; location / {
         vodlms_auth on; vodlms_session_type express; vodlms_session_secret s;
         vodlms_session_value hash; } }",
    qr/"vodlms_session_value hash" does not apply to express sessions/);

rejects('an expiry field for express sessions',
    "vodlms_redis 127.0.0.1:6379; server { listen 127.0.0.1:1; location / {
         vodlms_auth on; vodlms_session_type express; vodlms_session_secret s;
         vodlms_session_expires_field cookie.expires; } }",
    qr/"vodlms_session_expires_field" does not apply to express sessions/);

rejects('a dotted path for a hash field',
    "vodlms_redis 127.0.0.1:6379; server { listen 127.0.0.1:1; location / {
         vodlms_auth on; vodlms_session_value hash; vodlms_session_user_field a.b; } }",
    qr/hash sessions have flat fields/);

rejects('an empty secret',
    "vodlms_redis 127.0.0.1:6379; server { listen 127.0.0.1:1; location / {
         vodlms_auth on; vodlms_session_type express; vodlms_session_secret \"\"; } }",
    qr/"vodlms_session_secret" directive has an empty secret/);

rejects('vodlms_auth without vodlms_redis',
    'server { listen 127.0.0.1:1; location / { vodlms_auth on; } }',
    qr/"vodlms_auth" needs a session store: add "vodlms_redis"/);

rejects('a zero-size cache zone',
    "vodlms_redis 127.0.0.1:6379; vodlms_cache_zone zone=s:0; $server",
    qr/zone "s" is too small/);

rejects('a cache zone without a size',
    "vodlms_redis 127.0.0.1:6379; vodlms_cache_zone zone=s; $server",
    qr/invalid zone "zone=s", expected "name:size"/);

rejects('an unknown cache zone',
    "vodlms_redis 127.0.0.1:6379; server { listen 127.0.0.1:1; location / {
         vodlms_auth on; vodlms_session_cache nosuch; } }",
    qr/unknown vodlms_cache_zone "nosuch"/);

rejects('a bad cache time',
    "vodlms_redis 127.0.0.1:6379; vodlms_cache_zone zone=s:1m;
     server { listen 127.0.0.1:1; location / {
         vodlms_auth on; vodlms_session_cache s valid=forever; } }",
    qr/invalid time in "valid=forever"/);

rejects('a bad redis timeout',
    'vodlms_redis 127.0.0.1:6379 timeout=soon;',
    qr/invalid parameter "timeout=soon"/);

rejects('a zero redis timeout',
    'vodlms_redis 127.0.0.1:6379 timeout=0;',
    qr/invalid parameter "timeout=0"/);

rejects('a zero connect timeout',
    'vodlms_redis 127.0.0.1:6379 connect_timeout=0s;',
    qr/invalid parameter "connect_timeout=0s"/);

rejects('a zero pool size',
    'vodlms_redis 127.0.0.1:6379 pool_size=0;',
    qr/invalid parameter "pool_size=0"/);

rejects('an unknown redis parameter',
    'vodlms_redis 127.0.0.1:6379 tls=on;',
    qr/invalid parameter "tls=on"/);

rejects('a redis user without a password',
    'vodlms_redis 127.0.0.1:6379 user=lms;',
    qr/redis "user=" needs "password=" as well/);

rejects('a bad redis address',
    'vodlms_redis 127.0.0.1:99999;',
    qr/invalid redis address "127\.0\.0\.1:99999"/);

rejects('a host name with no resolver that does not resolve',
    "vodlms_redis no-such-host.invalid:6379;\n$server",
    qr/host not found in "no-such-host\.invalid:6379" of the "vodlms_redis" directive/, 7);

rejects('a host name without "resolve" is resolved by nginx -t, even with a resolver for other things',
    "resolver 127.0.0.1:1;\nvodlms_redis no-such-host.invalid:6379;\n$server",
    qr/host not found in "no-such-host\.invalid:6379" of the "vodlms_redis" directive \(without "resolve"/, 8);

accepts('a host name with "resolve" and a resolver: resolved at run time, not by nginx -t',
    "resolver 127.0.0.1:1; vodlms_redis no-such-host.invalid:6379 resolve; $server");

rejects('"resolve" without a resolver',
    "vodlms_redis no-such-host.invalid:6379 resolve;\n$server",
    qr/"vodlms_redis no-such-host\.invalid:6379 \.\.\. resolve" needs a "resolver" at the http level/, 7);

rejects('sentinels with "resolve" but no resolver',
    "vodlms_redis sentinel:mymaster;\nvodlms_redis_sentinel sentinel.invalid resolve;\n$server",
    qr/"vodlms_redis_sentinel \.\.\. resolve" needs a "resolver" at the http level/, 8);

accepts('Redis Sentinel with every option',
    "vodlms_redis sentinel:mymaster db=1 password=pw timeout=300ms;
     vodlms_redis_sentinel 127.0.0.1:26379 127.0.0.2 [::1]:26380 user=sen password=spw; $server");

accepts('sentinels by name, resolved at run time ("resolve")',
    "resolver 127.0.0.1:1; vodlms_redis sentinel:mymaster;
     vodlms_redis_sentinel sentinel.invalid:26379 resolve; $server");

rejects('sentinel:NAME without vodlms_redis_sentinel',
    "vodlms_redis sentinel:mymaster;\n$server",
    qr/"vodlms_redis sentinel:mymaster" needs "vodlms_redis_sentinel" with the sentinels' addresses/, 7);

rejects('vodlms_redis_sentinel without vodlms_redis',
    "vodlms_redis_sentinel 127.0.0.1:26379;",
    qr/"vodlms_redis_sentinel" needs "vodlms_redis sentinel:<master name>"/, 7);

rejects('vodlms_redis_sentinel with an address in vodlms_redis',
    "vodlms_redis 127.0.0.1:6379;\nvodlms_redis_sentinel 127.0.0.1:26379; $server",
    qr/"vodlms_redis_sentinel" is set, so "vodlms_redis" names the master as sentinel:<master name>, not "127\.0\.0\.1:6379"/, 7);

rejects('a sentinel user without a password',
    'vodlms_redis sentinel:m; vodlms_redis_sentinel 127.0.0.1 user=sen;',
    qr/sentinel "user=" needs "password=" as well/);

rejects('a sentinel on a unix socket',
    'vodlms_redis sentinel:m; vodlms_redis_sentinel unix:/run/sentinel.sock;',
    qr/sentinel address "unix:\/run\/sentinel\.sock" must be host\[:port\]/);

rejects('an unknown sentinel parameter',
    'vodlms_redis sentinel:m; vodlms_redis_sentinel 127.0.0.1 db=2;',
    qr/invalid parameter "db=2"/);

rejects('vodlms_redis_sentinel with no sentinel',
    'vodlms_redis sentinel:m; vodlms_redis_sentinel password=x;',
    qr/"vodlms_redis_sentinel" names no sentinel/);

rejects('vodlms_redis_sentinel twice',
    'vodlms_redis sentinel:m; vodlms_redis_sentinel 127.0.0.1; vodlms_redis_sentinel 127.0.0.2;',
    qr/"vodlms_redis_sentinel" directive is duplicate/);

rejects('vodlms_redis twice',
    'vodlms_redis 127.0.0.1:6379; vodlms_redis 127.0.0.1:6380;',
    qr/"vodlms_redis" directive is duplicate/);

rejects('a zero Retry-After',
    "vodlms_redis 127.0.0.1:6379; vodlms_retry_after 0; $server",
    qr/"vodlms_retry_after" must be at least 1s/);

rejects('vodlms_auth with a bad flag',
    "vodlms_redis 127.0.0.1:6379; server { listen 127.0.0.1:1; location / { vodlms_auth maybe; } }",
    qr/invalid value "maybe" in "vodlms_auth" directive, it must be "on" or "off"/);

rejects('a role with a comma',
    "vodlms_redis 127.0.0.1:6379; server { listen 127.0.0.1:1; location / {
         vodlms_auth on; vodlms_auth_require_role a,b; } }",
    qr/invalid role "a,b"/);

rejects('an empty cookie name',
    "vodlms_redis 127.0.0.1:6379; server { listen 127.0.0.1:1; location / {
         vodlms_auth on; vodlms_session_cookie \"\"; } }",
    qr/"vodlms_session_cookie" and "vodlms_session_user_field" must not be empty/);

# --- PostgreSQL, enrollment, playback ---------------------------------

my $vectors = $ENV{VODLMS_VECTORS_DIR} || "$FindBin::Bin/../../shared/vectors/cloudfront";
my $key = "$vectors/test_private_key.pem";
-f $key or BAIL_OUT("no CloudFront test key at $key");

open my $junk, '>', "$dir/junk.pem" or die $!;
print $junk "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n";
close $junk;
system("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out $dir/rsa1024.pem 2>/dev/null") == 0
    or die "openssl genpkey failed";

my $pg = 'vodlms_redis 127.0.0.1:6379; vodlms_pg "host=127.0.0.1 port=5432 dbname=vodlms";';
sub video_location {
    my ($extra) = @_;
    return "$pg server { listen 127.0.0.1:1;
        location ~ ^/v/(?<vid>[^/]+)\$ {
            vodlms_auth on; vodlms_enrollment_check on; vodlms_video_id \$vid;
            $extra } }";
}
my $play = "vodlms_cloudfront_url https://cdn.example.test; vodlms_cloudfront_key K2JCJMDEHXQW5F $key;";

accepts('an enrollment check with the default query',
    video_location(''));

accepts('a playback location with every option',
    "vodlms_cache_zone zone=c:1m; vodlms_pg_replica \"host=127.0.0.1 port=5433 dbname=vodlms\" pool_size=4 timeout=500ms;"
  . video_location("$play vodlms_cloudfront_key KOTHER $vectors/test_other_private_key.pem;
        vodlms_cloudfront_signing_key K2JCJMDEHXQW5F; vodlms_cloudfront_ttl 15m;
        vodlms_cloudfront_expiry_bucket 5m; vodlms_cloudfront_hash sha256;
        vodlms_cloudfront_ip_binding on; vodlms_cloudfront_cookie_domain .example.test;
        vodlms_cloudfront_cookie_samesite none; vodlms_cloudfront_signature_cache c;
        vodlms_enrollment_cache c valid=1m invalid=5s; vodlms_enrollment_no_row 403;
        vodlms_cors_origins https://lms.example.test; vodlms_playback cookies;"));

accepts('a playback location answering a signed manifest URL',
    video_location("$play vodlms_cloudfront_ip_binding on; vodlms_playback url;"));

rejects('an unknown playback mode',
    video_location("$play vodlms_playback urls;"),
    qr/invalid value "urls" in "vodlms_playback" directive, expected one of "cookies", "redirect", "url", "off"/);

rejects('an enrollment check without vodlms_pg',
    'vodlms_redis 127.0.0.1:6379; server { listen 127.0.0.1:1; location / {
         vodlms_auth on; vodlms_enrollment_check on; vodlms_video_id $uri; } }',
    qr/"vodlms_enrollment_check" needs a database: add "vodlms_pg"/);

rejects('an enrollment check without the session gate',
    "$pg server { listen 127.0.0.1:1; location / {
         vodlms_enrollment_check on; vodlms_video_id \$uri; } }",
    qr/"vodlms_enrollment_check" needs the user: add "vodlms_auth on"/);

rejects('an enrollment check without a video id',
    "$pg server { listen 127.0.0.1:1; location / { vodlms_auth on; vodlms_enrollment_check on; } }",
    qr/"vodlms_enrollment_check" needs "vodlms_video_id"/, 7);

rejects('an enrollment check without a video id: the location and its line',
    "$pg
     server { listen 127.0.0.1:1;
         location / { return 204; }

         location = /play {
             vodlms_auth on;
             vodlms_enrollment_check on;
         }
     }",
    qr/"vodlms_enrollment_check" needs "vodlms_video_id", e\.g\. a capture from the location's regex \(location "\/play"\) in \Q$dir\E\/nginx\.conf:11$/m, 11);

rejects('a query whose $N do not match its values',
    video_location('vodlms_enrollment_query "SELECT 1 WHERE $1 = $2" $vid;'),
    qr/the query uses \$1\.\.\$2 but 1 value is given/);

rejects('a bad conninfo',
    'vodlms_pg "host=127.0.0.1 nosuchoption=1";',
    qr/invalid conninfo in "vodlms_pg": invalid connection option "nosuchoption"/);

rejects('a bad database timeout',
    'vodlms_pg "host=127.0.0.1 dbname=x" timeout=never;',
    qr/invalid parameter "timeout=never"/);

# vodlms_pg_schema: the schema sql/migrate.sh --schema installed into
accepts('a schema of vodlms\'s own tables',
    "$pg vodlms_pg_schema media_v2;");
accepts('a schema that is a keyword (written quoted)',
    "$pg vodlms_pg_schema user;");
for my $bad ('Vodlms', 'vod-lms', 'vodlms.videos', '2vodlms', 'pg_vodlms', '',
             'a' x 64, 'x\\"y')
{
    rejects("vodlms_pg_schema \"$bad\"",
        "$pg vodlms_pg_schema '$bad';",
        qr/invalid "vodlms_pg_schema" ".*": want a plain lower-case SQL identifier/);
}
rejects('vodlms_pg_schema twice',
    "$pg vodlms_pg_schema a; vodlms_pg_schema b;",
    qr/"vodlms_pg_schema" directive is duplicate/);
rejects('vodlms_pg_schema in a server',
    'server { listen 127.0.0.1:1; vodlms_pg_schema vodlms; }',
    qr/"vodlms_pg_schema" directive is not allowed here/);

# high availability (#21): libpq's multi-host conninfo, both forms, with
# target_session_attrs; names resolved at nginx -t (localhost: two
# addresses on most machines, so more hosts than were written)
accepts('a multi-host primary that must be read-write',
    'vodlms_pg "host=127.0.0.1,127.0.0.2 port=5432,5433 dbname=vodlms target_session_attrs=read-write";');
accepts('the same as a URI',
    'vodlms_pg "postgresql://127.0.0.1:5432,localhost:5433/vodlms?target_session_attrs=read-write";');
accepts('a replica endpoint that prefers a standby, beside the primary',
    'vodlms_pg "host=127.0.0.1 dbname=vodlms"; '
  . 'vodlms_pg_replica "host=127.0.0.2,127.0.0.3 dbname=vodlms target_session_attrs=prefer-standby";');
for my $attrs (qw(any read-write read-only primary standby prefer-standby)) {
    accepts("target_session_attrs=$attrs",
        "vodlms_pg \"host=127.0.0.1 dbname=vodlms target_session_attrs=$attrs\";");
}
for my $bad (qw(readwrite master prefer-primary Read-Write)) {
    rejects("target_session_attrs=$bad, which libpq refuses when it connects",
        "vodlms_pg \"host=127.0.0.1 dbname=vodlms target_session_attrs=$bad\";",
        qr/invalid target_session_attrs "\Q$bad\E" in the postgres conninfo: libpq takes any, read-write, read-only, primary, standby or prefer-standby/);
}
rejects('a multi-host URI with a bad target_session_attrs',
    'vodlms_pg "postgresql://127.0.0.1:5432,127.0.0.2:5433/vodlms?target_session_attrs=writable";',
    qr/invalid target_session_attrs "writable"/);
rejects('more ports than hosts',
    'vodlms_pg "host=127.0.0.1,127.0.0.2 port=1,2,3 dbname=vodlms";',
    qr/postgres conninfo has 3 ports for 2 hosts/);

# PostgreSQL names (#21): resolved by nginx -t; with "resolve" and a
# resolver, by the workers when they connect (t/174)
rejects('a postgres host name with no resolver that does not resolve',
    "vodlms_pg \"host=no-such-host.invalid dbname=vodlms\";\nvodlms_redis 127.0.0.1:6379; $server",
    qr/postgres host "no-such-host\.invalid" could not be resolved.* in the conninfo of the "vodlms_pg" directive \(without "resolve" and a "resolver" at the http level, names are resolved when the configuration is read\)/, 7);
rejects('a resolver kept for something else does not make postgres names run-time ones',
    "resolver 127.0.0.1:1;\nvodlms_pg \"host=no-such-host.invalid dbname=vodlms\";\nvodlms_redis 127.0.0.1:6379; $server",
    qr/postgres host "no-such-host\.invalid" could not be resolved.* in the conninfo of the "vodlms_pg" directive/, 8);
rejects('"resolve" with no resolver',
    "vodlms_pg \"host=127.0.0.1 dbname=vodlms\" resolve;\nvodlms_redis 127.0.0.1:6379; $server",
    qr/"resolve" of the "vodlms_pg" directive needs a "resolver" at the http level/);
rejects('a replica host name with no resolver that does not resolve',
    "vodlms_pg \"host=127.0.0.1 dbname=vodlms\";\nvodlms_pg_replica \"host=127.0.0.1,no-such-host.invalid dbname=vodlms\";",
    qr/postgres host "no-such-host\.invalid" could not be resolved.* of the "vodlms_pg_replica" directive/, 8);
accepts('a postgres host name with "resolve" and a resolver: resolved at run time, not by nginx -t',
    "resolver 127.0.0.1:1; vodlms_pg \"host=no-such-host.invalid,127.0.0.1 dbname=vodlms\" resolve; "
  . "vodlms_pg_replica \"postgresql://no-such-host.invalid:5433/vodlms\" resolve; vodlms_redis 127.0.0.1:6379; $server");

rejects('a replica without a primary',
    'vodlms_pg_replica "host=127.0.0.1 dbname=x";',
    qr/"vodlms_pg_replica" needs "vodlms_pg"/);

rejects('an unknown no_row answer',
    video_location('vodlms_enrollment_no_row 410;'),
    qr/invalid value "410" in "vodlms_enrollment_no_row" directive, expected one of "404", "403"/);

rejects('a missing CloudFront key file',
    video_location("vodlms_cloudfront_url https://cdn.example.test; vodlms_cloudfront_key K1 $dir/nope.pem; vodlms_playback cookies;"),
    qr/cannot open the key file "\Q$dir\E\/nope\.pem"/);

rejects('a CloudFront key that is not a key',
    video_location("vodlms_cloudfront_url https://cdn.example.test; vodlms_cloudfront_key K1 $dir/junk.pem; vodlms_playback cookies;"),
    qr/bad CloudFront key "\Q$dir\E\/junk\.pem"/);

rejects('an RSA key shorter than 2048 bits',
    video_location("vodlms_cloudfront_url https://cdn.example.test; vodlms_cloudfront_key K1 $dir/rsa1024.pem; vodlms_playback cookies;"),
    qr/bad CloudFront key "\Q$dir\E\/rsa1024\.pem": .*2048/);

rejects('a bad key pair id',
    video_location("vodlms_cloudfront_url https://cdn.example.test; vodlms_cloudfront_key K/1 $key; vodlms_playback cookies;"),
    qr/invalid key pair id "K\/1"/);

rejects('a signing key nobody defined',
    video_location("$play vodlms_cloudfront_signing_key KNOPE; vodlms_playback cookies;"),
    qr/"vodlms_cloudfront_signing_key" names "KNOPE", which no "vodlms_cloudfront_key" defines/);

rejects('playback without a signing key',
    video_location('vodlms_cloudfront_url https://cdn.example.test; vodlms_playback cookies;'),
    qr/"vodlms_playback" needs a signing key/);

rejects('playback without the CloudFront URL',
    video_location("vodlms_cloudfront_key K2JCJMDEHXQW5F $key; vodlms_playback cookies;"),
    qr/"vodlms_playback" needs "vodlms_cloudfront_url"/);

rejects('playback without the enrollment check',
    "$pg server { listen 127.0.0.1:1; location / { vodlms_auth on; $play vodlms_playback cookies; } }",
    qr/"vodlms_playback" needs the video/);

rejects('a CloudFront URL that is not one',
    video_location('vodlms_cloudfront_url ftp://cdn.example.test;'),
    qr/invalid CloudFront URL "ftp:\/\/cdn\.example\.test"/);

accepts('a CloudFront URL with a path, trailing slash dropped',
    video_location("vodlms_cloudfront_url https://cdn.example.test/lms/; vodlms_cloudfront_key K2JCJMDEHXQW5F $key; vodlms_playback cookies;"));

for my $bad ('https://cdn.example.test/hls?x=1', 'https://cdn.example.test/*',
             'https:///hls', 'https://') {
    rejects("the CloudFront URL \"$bad\"",
        video_location("vodlms_cloudfront_url $bad;"),
        qr/invalid CloudFront URL "\Q$bad\E"/);
}

rejects('a TTL under a minute',
    video_location("$play vodlms_cloudfront_ttl 30s; vodlms_playback cookies;"),
    qr/"vodlms_cloudfront_ttl" must be at least 1m/);

rejects('an unknown playback mode',
    video_location("$play vodlms_playback json;"),
    qr/invalid value "json" in "vodlms_playback" directive/);

rejects('an unknown hash',
    video_location("$play vodlms_cloudfront_hash md5;"),
    qr/invalid value "md5" in "vodlms_cloudfront_hash" directive, expected one of "sha1", "sha256"/);

rejects('SameSite=None without Secure',
    video_location("$play vodlms_cloudfront_cookie_samesite none; vodlms_cloudfront_cookie_secure off;"),
    qr/"vodlms_cloudfront_cookie_samesite none" needs "vodlms_cloudfront_cookie_secure on"/);

rejects('a wildcard CORS origin',
    video_location("$play vodlms_cors_origins *; vodlms_playback cookies;"),
    qr/invalid origin "\*": an exact "scheme:\/\/host\[:port\]" is required, never "\*"/);

rejects('an unknown signature cache zone',
    video_location("$play vodlms_cloudfront_signature_cache nope; vodlms_playback cookies;"),
    qr/unknown vodlms_cache_zone "nope" in "vodlms_cloudfront_signature_cache"/);

# A private key that other users can read is one they can sign with: a
# warning (a 0644 key kept working before, and keeps working), never for
# a 0600 key, and never for a public key (issue #16).
{
    open my $in, '<', $key or die "$key: $!";
    my $pem = do { local $/; <$in> };
    close $in;
    for my $m (0644, 0640, 0600) {
        my $f = sprintf '%s/key%04o.pem', $dir, $m;
        open my $out, '>', $f or die "$f: $!";
        print $out $pem;
        close $out;
        chmod $m, $f or die "chmod $f: $!";
    }
    system('cp', "$vectors/test_public_key.pem", "$dir/pub0644.pem") == 0 or die 'cp failed';
    chmod 0644, "$dir/pub0644.pem" or die "chmod: $!";
}

for my $m ('0644', '0640') {
    my ($ok, $out) = nginx_t(video_location(
        "vodlms_cloudfront_url https://cdn.example.test; vodlms_cloudfront_key K1 $dir/key$m.pem; vodlms_playback cookies;"));
    ok($ok, "a $m private key: nginx -t still passes") or diag $out;
    like($out, qr/\[warn\] vodlms: the private key "\Q$dir\E\/key$m\.pem" is readable by group or others \(mode $m\): chmod 600 it in \Q$dir\E\/nginx\.conf:\d+/,
         "a $m private key: nginx -t warns, naming the file, its mode and the fix") or diag $out;
}

{
    my ($ok, $out) = nginx_t(video_location(
        "vodlms_cloudfront_url https://cdn.example.test; vodlms_cloudfront_key K1 $dir/key0600.pem; vodlms_playback cookies;"));
    ok($ok, 'a 0600 private key: nginx -t passes') or diag $out;
    unlike($out, qr/\[warn\]/, 'a 0600 private key: no warning') or diag $out;
}

{
    my ($ok, $out) = nginx_t("server { listen 127.0.0.1:1; location /hls/ { vodlms_edge on; vodlms_edge_public_key K1 $dir/pub0644.pem; } }");
    ok($ok, 'a 0644 public key: nginx -t passes') or diag $out;
    unlike($out, qr/\[warn\]/, 'a 0644 public key: no warning (it is public)') or diag $out;
}

# --- the self-hosted edge ---------------------------------------------

my $pub = "$vectors/test_public_key.pem";
my $edge = "vodlms_edge on; vodlms_edge_public_key K2JCJMDEHXQW5F $pub;";

accepts('an edge with every option',
    "vodlms_cache_zone zone=e:1m; server { listen 127.0.0.1:1; location /hls/ {
         $edge vodlms_edge_url https://cdn.example.test; vodlms_edge_wildcard anywhere;
         vodlms_edge_signature_cache e; vodlms_edge_playlist_max_age 2s;
         vodlms_edge_segment_max_age 30d; } }");

rejects('an edge without keys',
    'server { listen 127.0.0.1:1; location /hls/ { vodlms_edge on; } }',
    qr/"vodlms_edge" needs the trusted keys: add "vodlms_edge_public_key"/);

rejects('a missing public key file',
    "server { listen 127.0.0.1:1; location /hls/ { vodlms_edge on; vodlms_edge_public_key K1 $dir/nope.pem; } }",
    qr/cannot open the key file "\Q$dir\E\/nope\.pem"/);

rejects('a public key that is not a key',
    "server { listen 127.0.0.1:1; location /hls/ { vodlms_edge on; vodlms_edge_public_key K1 $dir/junk.pem; } }",
    qr/bad CloudFront public key "\Q$dir\E\/junk\.pem"/);

rejects('the same key pair id twice',
    "server { listen 127.0.0.1:1; location /hls/ { $edge vodlms_edge_public_key K2JCJMDEHXQW5F $pub; } }",
    qr/duplicate key pair id "K2JCJMDEHXQW5F"/);

rejects('an edge URL with a path',
    "server { listen 127.0.0.1:1; location /hls/ { $edge vodlms_edge_url https://cdn.example.test/hls; } }",
    qr/invalid edge URL "https:\/\/cdn\.example\.test\/hls", expected "https:\/\/host\[:port\]"/);

accepts('an edge URL with a port, trailing slash dropped',
    "server { listen 127.0.0.1:1; location /hls/ { $edge vodlms_edge_url http://cdn.example.test:8080/; } }");

for my $bad ('https://cdn.example.test#x', 'https://cdn example.test', 'cdn.example.test') {
    rejects("the edge URL \"$bad\"",
        "server { listen 127.0.0.1:1; location /hls/ { $edge vodlms_edge_url \"$bad\"; } }",
        qr/invalid edge URL "\Q$bad\E"/);
}

accepts('signed playlists with every option',
    "server { listen 127.0.0.1:1; location /hls/ {
         $edge vodlms_edge_url https://cdn.example.test; vodlms_hls_sign on;
         vodlms_hls_sign_absolute edge_url; vodlms_hls_sign_max_size 1m; } }");

accepts('signed playlists, the query once (define)',
    "server { listen 127.0.0.1:1; location /hls/ { $edge vodlms_hls_sign define; } }");

rejects('an unknown signed-playlist mode',
    "server { listen 127.0.0.1:1; location /hls/ { $edge vodlms_hls_sign yes; } }",
    qr/invalid value "yes" in "vodlms_hls_sign" directive, expected one of "off", "on", "define"/);

rejects('signed playlists (define) without the edge',
    "server { listen 127.0.0.1:1; location /hls/ { vodlms_hls_sign define; } }",
    qr/"vodlms_hls_sign" signs playlists that "vodlms_edge" let through with a signed URL: add "vodlms_edge on"/);

rejects('signed playlists without the edge',
    "server { listen 127.0.0.1:1; location /hls/ { vodlms_hls_sign on; } }",
    qr/"vodlms_hls_sign" signs playlists that "vodlms_edge" let through with a signed URL: add "vodlms_edge on"/);

rejects('"vodlms_hls_sign_absolute edge_url" without vodlms_edge_url',
    "server { listen 127.0.0.1:1; location /hls/ { $edge vodlms_hls_sign on; vodlms_hls_sign_absolute edge_url; } }",
    qr/"vodlms_hls_sign_absolute edge_url" signs the absolute URIs on "vodlms_edge_url": set it/);

rejects('an unknown absolute-URI policy',
    "server { listen 127.0.0.1:1; location /hls/ { $edge vodlms_hls_sign on; vodlms_hls_sign_absolute sign; } }",
    qr/invalid value "sign" in "vodlms_hls_sign_absolute" directive, expected one of "keep", "refuse", "edge_url"/);

rejects('a zero playlist size',
    "server { listen 127.0.0.1:1; location /hls/ { $edge vodlms_hls_sign on; vodlms_hls_sign_max_size 0; } }",
    qr/"vodlms_hls_sign_max_size" must be more than 0/);

rejects('an unknown wildcard reading',
    "server { listen 127.0.0.1:1; location /hls/ { $edge vodlms_edge_wildcard glob; } }",
    qr/invalid value "glob" in "vodlms_edge_wildcard" directive, expected one of "sections", "anywhere"/);

rejects('an unknown edge signature cache zone',
    "server { listen 127.0.0.1:1; location /hls/ { $edge vodlms_edge_signature_cache nope; } }",
    qr/unknown vodlms_cache_zone "nope" in "vodlms_edge_signature_cache"/);

# --- watch progress ----------------------------------------------------

my $progress = video_location('vodlms_progress on;');

accepts('a progress endpoint with every option',
    "vodlms_progress_zone zone=p:1m flush=5s batch=500;
     vodlms_progress_flush_query \"SELECT 1 FROM unnest(\$1::text[], \$2::text[], \$3::numeric[], \$4::numeric[], \$5::numeric[], \$6::numeric[], \$7::float8[])\";"
  . video_location('vodlms_progress on; vodlms_progress_rate 2r/s; vodlms_progress_complete 0.95;'));

accepts('a flush query that takes the played seconds as $8',
    "vodlms_progress_zone zone=p:1m;
     vodlms_progress_flush_query \"SELECT 1 FROM unnest(\$1::text[], \$2::text[], \$3::numeric[], \$4::numeric[], \$5::numeric[], \$6::numeric[], \$7::float8[], \$8::numeric[])\";"
  . video_location('vodlms_progress on;'));

rejects('a flush query that leaves parameters untyped (PostgreSQL would refuse every flush)',
    "vodlms_progress_zone zone=p:1m;
     vodlms_progress_flush_query \"SELECT 1 WHERE \$1::text[] IS NOT NULL\";"
  . video_location('vodlms_progress on;'),
    qr/"vodlms_progress_flush_query" must use the parameters \$1 to \$7, and may go on to \$8 \(the played seconds\), \$9 \(the coverage\) and \$10 \(the completion fraction\)/, 9);

accepts('a flush query that takes the coverage and the completion fraction as $9 and $10',
    "vodlms_progress_zone zone=p:1m;
     vodlms_progress_flush_query \"SELECT 1 FROM unnest(\$1::text[], \$2::text[], \$3::numeric[], \$4::numeric[], \$5::numeric[], \$6::numeric[], \$7::float8[], \$8::numeric[], \$9::varbit[], \$10::numeric[])\";"
  . video_location('vodlms_progress on;'));

rejects('a flush query that takes $9 but skips $8 (PostgreSQL cannot type $8)',
    "vodlms_progress_zone zone=p:1m;
     vodlms_progress_flush_query \"SELECT 1 FROM unnest(\$1::text[], \$2::text[], \$3::numeric[], \$4::numeric[], \$5::numeric[], \$6::numeric[], \$7::float8[], \$9::varbit[])\";"
  . video_location('vodlms_progress on;'),
    qr/"vodlms_progress_flush_query" uses \$9 but not \$8: a statement that goes on to a parameter uses every one before it/, 9);

rejects('a flush query that takes $11',
    "vodlms_progress_zone zone=p:1m;
     vodlms_progress_flush_query \"SELECT 1 FROM unnest(\$1::text[], \$2::text[], \$3::numeric[], \$4::numeric[], \$5::numeric[], \$6::numeric[], \$7::float8[], \$8::numeric[], \$9::varbit[], \$10::numeric[], \$11::int[])\";"
  . video_location('vodlms_progress on;'),
    qr/"vodlms_progress_flush_query" must use the parameters \$1 to \$7/, 9);

rejects('a progress endpoint without a zone',
    $progress,
    qr/"vodlms_progress" needs a buffer and a database: add "vodlms_progress_zone" and "vodlms_pg"/, 8);

my $progress_regex = quotemeta('^/v/(?<vid>[^/]+)/progress$');
rejects('a progress endpoint without a zone: the location and its line',
    "$pg
     server { listen 127.0.0.1:1;
         location ~ ^/v/(?<vid>[^/]+)/progress\$ {
             vodlms_auth on; vodlms_enrollment_check on; vodlms_video_id \$vid;
             vodlms_progress on;
         }
     }",
    qr/"vodlms_progress" needs a buffer and a database: add "vodlms_progress_zone" and "vodlms_pg" \(location "$progress_regex"\) in \Q$dir\E\/nginx\.conf:9$/m, 9);

rejects('a progress endpoint without the enrollment check',
    "vodlms_progress_zone zone=p:1m; $pg server { listen 127.0.0.1:1; location / { vodlms_auth on; vodlms_progress on; } }",
    qr/"vodlms_progress" needs the user and the video/);

rejects('a progress zone that is too small',
    'vodlms_progress_zone zone=p:1k;',
    qr/invalid size in "zone=p:1k"/);

rejects('a zero flush interval',
    'vodlms_progress_zone zone=p:1m flush=0;',
    qr/invalid parameter "flush=0"/);

rejects('a bad progress rate',
    "vodlms_progress_zone zone=p:1m;" . video_location('vodlms_progress on; vodlms_progress_rate fast;'),
    qr/invalid rate "fast", expected e\.g\. "60r\/m", "2r\/s" or "off"/);

rejects('an upload endpoint without a spool',
    video_location('vodlms_upload on; vodlms_upload_course $arg_course;'),
    qr/"vodlms_upload" needs "vodlms_upload_spool"/);

rejects('an upload spool that is not a directory',
    video_location("vodlms_upload on; vodlms_upload_course \$arg_course; vodlms_upload_spool $dir/nope;"),
    qr/"vodlms_upload_spool" "\Q$dir\E\/nope" is not a directory/);

rejects('an upload endpoint without a course',
    video_location("vodlms_upload on; vodlms_upload_spool $dir;"),
    qr/"vodlms_upload" needs "vodlms_upload_course"/);

rejects('a new-video upload whose id the client names',
    video_location("vodlms_upload new; vodlms_upload_course \$arg_course; vodlms_upload_spool $dir;"),
    qr/"vodlms_upload new" needs "vodlms_video_id \$request_id": the server draws a new video's id, a client never names it/);

rejects('an upload mode that does not exist',
    video_location("vodlms_upload maybe; vodlms_upload_course \$arg_course; vodlms_upload_spool $dir;"),
    qr/invalid value "maybe" in "vodlms_upload", expected "on" \(into a row the LMS created\), "new" \(a new row under a server-drawn id\), "captions" \(a caption file of a row the LMS created\) or "off"/);

rejects('an upload quota with no limit',
    video_location("vodlms_upload on; vodlms_upload_course \$arg_course; vodlms_upload_spool $dir; vodlms_upload_quota lease=1h;"),
    qr/"vodlms_upload_quota" needs bytes= or concurrent=/);

rejects('an upload quota of zero bytes',
    video_location("vodlms_upload on; vodlms_upload_course \$arg_course; vodlms_upload_spool $dir; vodlms_upload_quota bytes=0;"),
    qr/invalid "vodlms_upload_quota" parameter "bytes=0" \(bytes=SIZE, concurrent=N, lease=TIME of at least 1s, retry=TIME\)/);

rejects('an upload quota with an unknown parameter',
    video_location("vodlms_upload on; vodlms_upload_course \$arg_course; vodlms_upload_spool $dir; vodlms_upload_quota concurrent=2 files=9;"),
    qr/invalid "vodlms_upload_quota" parameter "files=9"/);

rejects('an upload lease shorter than a second',
    video_location("vodlms_upload on; vodlms_upload_course \$arg_course; vodlms_upload_spool $dir; vodlms_upload_quota concurrent=2 lease=500ms;"),
    qr/invalid "vodlms_upload_quota" parameter "lease=500ms"/);

accepts('an upload quota per uploader, and fair turns by course',
    video_location("vodlms_upload on; vodlms_upload_course \$arg_course; vodlms_upload_spool $dir; vodlms_upload_owner \$arg_course; vodlms_upload_quota bytes=20g concurrent=2 lease=2h retry=1m;"));

# vodlms_upload captions: a caption file per language, from the location's regex
sub caption_location {
    my ($extra) = @_;
    return "$pg server { listen 127.0.0.1:1;
        location ~ ^/v/(?<vid>[^/]+)/captions/(?<lang>[A-Za-z0-9-]+)\$ {
            vodlms_auth on; vodlms_enrollment_check on; vodlms_video_id \$vid;
            vodlms_upload_course \$arg_course; vodlms_upload_spool $dir;
            $extra } }";
}

accepts('a caption upload with a label and a default flag',
    caption_location('vodlms_upload captions; vodlms_upload_caption $lang label=$arg_label default=$arg_default;'));

accepts('a caption upload with only the language (label: the language; not the default)',
    caption_location('vodlms_upload captions; vodlms_upload_caption $lang;'));

rejects('a caption upload without vodlms_upload_caption',
    caption_location('vodlms_upload captions;'),
    qr/"vodlms_upload captions" needs "vodlms_upload_caption" \(the language, e\.g\. from the location's regex\)/);

rejects('vodlms_upload_caption in a video upload',
    caption_location('vodlms_upload on; vodlms_upload_caption $lang;'),
    qr/"vodlms_upload_caption" needs "vodlms_upload captions"/);

rejects('vodlms_upload_caption without any upload',
    caption_location('vodlms_upload_caption $lang;'),
    qr/"vodlms_upload_caption" needs "vodlms_upload captions"/);

rejects('vodlms_upload_caption with an unknown parameter',
    caption_location('vodlms_upload captions; vodlms_upload_caption $lang name=$arg_label;'),
    qr/invalid "vodlms_upload_caption" parameter "name=\$arg_label" \(lang, then label=VALUE and default=VALUE, each once\)/);

rejects('vodlms_upload_caption with label= twice',
    caption_location('vodlms_upload captions; vodlms_upload_caption $lang label=$arg_a label=$arg_b;'),
    qr/invalid "vodlms_upload_caption" parameter "label=\$arg_b"/);

rejects('vodlms_upload_caption with an empty default=',
    caption_location('vodlms_upload captions; vodlms_upload_caption $lang default=;'),
    qr/empty "vodlms_upload_caption" parameter "default="/);

rejects('vodlms_upload_caption twice',
    caption_location('vodlms_upload captions; vodlms_upload_caption $lang; vodlms_upload_caption en;'),
    qr/"vodlms_upload_caption" directive is duplicate/);

rejects('vodlms_upload_caption in a server',
    "$pg server { listen 127.0.0.1:1; vodlms_upload_caption en; }",
    qr/"vodlms_upload_caption" directive is not allowed here/);

rejects('a caption upload without a spool',
    "$pg server { listen 127.0.0.1:1; location ~ ^/v/(?<vid>[^/]+)/c/(?<lang>.+)\$ {
        vodlms_auth on; vodlms_enrollment_check on; vodlms_video_id \$vid;
        vodlms_upload captions; vodlms_upload_caption \$lang; vodlms_upload_course \$arg_course; } }",
    qr/"vodlms_upload" needs "vodlms_upload_spool"/);

accepts('a new-video upload under a server-drawn id',
    "$pg server { listen 127.0.0.1:1;
        location ~ ^/courses/(?<course>[^/]+)/videos\$ {
            vodlms_auth on; vodlms_enrollment_check on; vodlms_video_id \$request_id;
            vodlms_upload new; vodlms_upload_course \$course; vodlms_upload_spool $dir; } }");

rejects('a bad skip policy',
    "vodlms_progress_zone zone=p:1m;" . video_location('vodlms_progress on; vodlms_progress_skip 30s warn;'),
    qr/invalid "vodlms_progress_skip", expected "off", "<time> flag", "<time> refuse" or "<time> unwatched"/);

accepts('vodlms_progress_skip ... unwatched',
    "vodlms_progress_zone zone=p:1m;" . video_location('vodlms_progress on; vodlms_progress_skip 60s unwatched;'));

rejects('a completion fraction over 1',
    "vodlms_progress_zone zone=p:1m;" . video_location('vodlms_progress on; vodlms_progress_complete 1.5;'),
    qr/invalid fraction "1\.5" in "vodlms_progress_complete", expected a number in \[0\.000001, 1\]/);

rejects('a completion fraction under a millionth (the flush sends millionths; 0 would be refused by the table)',
    "vodlms_progress_zone zone=p:1m;" . video_location('vodlms_progress on; vodlms_progress_complete 0.0000001;'),
    qr/invalid fraction "0\.0000001" in "vodlms_progress_complete", expected a number in \[0\.000001, 1\]/);

accepts('a metrics location with the helpers\' group named',
    "vodlms_redis 127.0.0.1:6379; server { listen 127.0.0.1:1;
         location = /m { vodlms_status group=transcoders; } }");

rejects('a metrics location with an unknown parameter',
    "vodlms_redis 127.0.0.1:6379; server { listen 127.0.0.1:1;
         location = /m { vodlms_status transcoders; } }",
    qr/invalid parameter "transcoders" of "vodlms_status", expected "group=name"/);

# the per-user query limit and the denial log (issue #18)

accepts('a per-user query limit with a burst',
    "vodlms_user_query_zone zone=users:1m rate=5r/s;"
  . video_location('vodlms_user_query_limit zone=users burst=20;'));

accepts('a per-minute rate, and the limit off in one location',
    "vodlms_user_query_zone zone=users:1m rate=30r/m; vodlms_user_query_limit zone=users;"
  . video_location('vodlms_user_query_limit off;'));

rejects('a query limit naming no zone of its kind',
    video_location('vodlms_user_query_limit zone=nowhere;'),
    qr/unknown vodlms_user_query_zone "nowhere" in "vodlms_user_query_limit"/);

rejects('a query limit naming a cache zone',
    "vodlms_cache_zone zone=answers:1m;"
  . video_location('vodlms_user_query_limit zone=answers;'),
    qr/the shared memory zone "answers" is already declared for a different use/);

rejects('a query zone without a rate',
    "vodlms_user_query_zone zone=users:1m rate=fast;" . video_location(''),
    qr/invalid rate "rate=fast", expected e\.g\. "rate=10r\/s" or "rate=300r\/m"/);

rejects('a query zone with a rate of zero',
    "vodlms_user_query_zone zone=users:1m rate=0r/s;" . video_location(''),
    qr/invalid rate "rate=0r\/s", expected e\.g\. "rate=10r\/s" or "rate=300r\/m"/);

# kept in thousandths per minute: 2^59 r/s wrapped to 0, and the first
# refusal divided by it (SIGFPE in the worker)
rejects('a query zone rate that would wrap around (2^59 r/s)',
    "vodlms_user_query_zone zone=users:1m rate=576460752303423488r/s;" . video_location(''),
    qr/rate "rate=576460752303423488r\/s" is too high, at most 60000000r\/m \(1000000r\/s\)/);

rejects('a query zone rate just past the bound, per second',
    "vodlms_user_query_zone zone=users:1m rate=1000001r/s;" . video_location(''),
    qr/rate "rate=1000001r\/s" is too high/);

rejects('a query zone rate just past the bound, per minute',
    "vodlms_user_query_zone zone=users:1m rate=60000001r/m;" . video_location(''),
    qr/rate "rate=60000001r\/m" is too high/);

accepts('a query zone rate at the bound',
    "vodlms_user_query_zone zone=users:1m rate=1000000r/s;"
  . video_location('vodlms_user_query_limit zone=users;'));

rejects('a query limit with a negative burst',
    "vodlms_user_query_zone zone=users:1m rate=5r/s;"
  . video_location('vodlms_user_query_limit zone=users burst=-1;'),
    qr/invalid burst "burst=-1", expected a number of queries from 0 to 1000000/);

accepts('denials logged at notice, at most 5 lines a second',
    video_location('vodlms_denial_log_level notice; vodlms_denial_log_limit 5;'));

rejects('a denial log level nginx has no use for here',
    video_location('vodlms_denial_log_level debug;'),
    qr/invalid value "debug" in "vodlms_denial_log_level" directive, expected one of "info", "notice", "warn", "error"/);

rejects('a denial log limit of zero (off says so)',
    video_location('vodlms_denial_log_limit 0;'),
    qr/invalid value "0" in "vodlms_denial_log_limit" directive, expected lines per second from 1 to 100000, or "off"/);

# vodlms_hls_key (issue #22): keys only behind both gates; limits need Redis
accepts('a key endpoint with every option',
    "vodlms_cache_zone zone=keys:1m;"
  . video_location('vodlms_hls_key $arg_v $arg_k budget=20/10m pace=1.5x allowance=45s pace_reset=12h redis_down=closed log=info; vodlms_hls_key_cache keys valid=1h invalid=10s;'));

rejects('a key endpoint without the enrollment check',
    "$pg server { listen 127.0.0.1:1; location /k { vodlms_auth on; vodlms_hls_key \$arg_v \$arg_k; } }",
    qr/"vodlms_hls_key" serves keys only behind the gates: add "vodlms_auth on", "vodlms_enrollment_check on" and "vodlms_video_id"/);

# the key is vodlms_video_id's video: an enrollment query that asks about
# another value would admit one video and serve another's keys (#22 red team)
rejects('a key endpoint whose enrollment query checks another value than the video id',
    video_location('vodlms_enrollment_query "SELECT true AS allowed WHERE $1 <> \'\' AND $2 <> \'\'" $arg_v $vodlms_user_id; vodlms_hls_key $arg_ver $arg_k;'),
    qr/"vodlms_hls_key" serves the keys of the video of "vodlms_video_id": the "vodlms_enrollment_query" here must take it/);

rejects('the same, with the query inherited from the server',
    "$pg server { listen 127.0.0.1:1;
        vodlms_enrollment_query \"SELECT true AS allowed WHERE \$1 <> '' AND \$2 <> ''\" \$arg_v \$vodlms_user_id;
        location ~ ^/k/(?<kv>[^/]+)/(?<kver>[^/]+)/(?<kk>[0-9]+)\$ {
            vodlms_auth on; vodlms_enrollment_check on; vodlms_video_id \$kv;
            vodlms_hls_key \$kver \$kk; } }",
    qr/"vodlms_hls_key" serves the keys of the video of "vodlms_video_id"/);

accepts('a key endpoint whose own query takes $vodlms_video_id',
    video_location('vodlms_enrollment_query "SELECT true AS allowed WHERE $1 <> \'\' AND $2 <> \'\'" $vodlms_video_id $vodlms_user_id; vodlms_hls_key $arg_ver $arg_k;'));

accepts('a key endpoint whose own query takes the same capture as vodlms_video_id',
    video_location('vodlms_enrollment_query "SELECT true AS allowed WHERE $1 <> \'\' AND $2 <> \'\'" $vid $vodlms_user_id; vodlms_hls_key $arg_ver $arg_k;'));

rejects('a key budget without a window',
    video_location('vodlms_hls_key $arg_v $arg_k budget=20;'),
    qr/invalid "vodlms_hls_key" parameter "budget=20" \(budget=N\/TIME of at least 1s/);

rejects('a pace limit faster than 100x',
    video_location('vodlms_hls_key $arg_v $arg_k pace=101x;'),
    qr/invalid "vodlms_hls_key" parameter "pace=101x"/);

rejects('an unknown redis_down mode',
    video_location('vodlms_hls_key $arg_v $arg_k budget=5/1m redis_down=maybe;'),
    qr/invalid "vodlms_hls_key" parameter "redis_down=maybe"/);

rejects('a key cache in a zone nobody defined',
    video_location('vodlms_hls_key $arg_v $arg_k; vodlms_hls_key_cache nokeys;'),
    qr/unknown vodlms_cache_zone "nokeys" in "vodlms_hls_key_cache"/);

done_testing();
