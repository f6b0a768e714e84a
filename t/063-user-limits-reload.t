# The per-user query buckets live in shared memory and outlive a reload
# (issue #18): a student held to the rate before "nginx -s reload" is still
# held after it.  A master and its workers here, unlike t/062.

use FindBin;
use lib "$FindBin::Bin/lib";
use VodlmsTest;
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_REDIS_PORT} ||= 6379;
my $r = $ENV{TEST_NGINX_REDIS_PORT};

for my $u (['alice', 1001], ['bob', 1002]) {
    redis_cmd($r, 'SET', "session:t063-$u->[0]", qq({"user_id":"$u->[1]"}), 'EX', 3600);
}

my $pg = start_pg();
$ENV{TEST_NGINX_PRIVATE_PG} = $pg->conninfo;

my $servroot = $ENV{TEST_NGINX_SERVROOT} || "$FindBin::Bin/servroot";

my ($ctl_port, $ctl) = control_server(
    # HUP, then wait until the worker proxying this request has stopped
    # listening (it logs so first): the next connection reaches a new one
    '/reload' => sub {
        my (undef, undef, undef, $h) = @_;
        my $old = $h->{'x-worker'};
        reload_nginx($servroot, $old);
    },
);
$ENV{TEST_NGINX_CTL_PORT} = $ctl_port;

master_on();
workers(1);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: a reload keeps the buckets: a student at the rate before it is still at it after
--- main_config
    load_module $TEST_NGINX_MODULE_PATH;
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
    vodlms_user_query_zone zone=users:1m rate=1r/m;
--- config
    location ~ ^/as/(?<who>[^/]+)(?<rest>/.*)$ {
        proxy_set_header Authorization "Bearer $who";
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT$rest;
    }
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_user_query_limit zone=users;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
    location /app/ { return 200 "app\n"; }
    location /ctl/ {
        proxy_set_header X-Worker $pid;
        proxy_read_timeout 60s;
        proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/;
    }
--- request eval
["GET /as/t063-bob/videos/made-up-1/meta",
 "GET /ctl/reload",
 "GET /as/t063-bob/videos/made-up-2/meta",
 "GET /as/t063-alice/videos/intro-ready/meta"]
--- error_code eval
[404, 200, 429, 200]
--- response_body eval
["{\"error\":\"video_not_found\",\"message\":\"no such video\"}\n",
 "reloaded\n",
 "{\"error\":\"too_many_queries\",\"message\":\"too many database queries for this user, try again later\"}\n",
 "app\n"]
--- timeout: 30
--- no_error_log
[alert]
[emerg]
