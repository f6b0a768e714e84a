# Configuration is checked at "nginx -t": every mistake an operator can make
# in the session gate's directives fails the test with a message that names
# the directive (or parameter) and the file:line.  Plain Test::More, since
# this is about "nginx -t" itself, not about requests.

use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);

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

sub rejects {
    my ($name, $http, $re) = @_;
    my ($ok, $out) = nginx_t($http);
    ok(!$ok, "$name: nginx -t fails");
    like($out, $re, "$name: the message says why") or diag $out;
    like($out, qr/in \Q$dir\E\/nginx\.conf:\d+/, "$name: the message names the file and line");
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
    qr/"vodlms_session_type express" needs at least one "vodlms_session_secret"/);

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

done_testing();
