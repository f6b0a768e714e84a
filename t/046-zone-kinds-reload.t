# A zone's kind survives a reload: a progress zone turned into a cache zone
# of the same name and size (or the other way round) must not be taken over
# with the other kind's data in it.  nginx reuses a zone on reload when its
# name, size and tag match; cache and progress zones now have tags of their
# own, so the new kind gets a fresh zone.  With one tag for both, every
# worker crashed on its first request after the reload (red-team finding).
# A master and its worker here, and a real HUP.

use FindBin;
use lib "$FindBin::Bin/lib";
use VodlmsTest;
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_REDIS_PORT} ||= 6379;
my $r = $ENV{TEST_NGINX_REDIS_PORT};

for my $u (['alice', 1001], ['bob', 1002]) {
    redis_cmd($r, 'SET', "session:t046-$u->[0]", qq({"user_id":"$u->[1]"}), 'EX', 3600);
}

my $pg = start_pg();
$ENV{TEST_NGINX_PRIVATE_PG} = $pg->conninfo;

my $servroot = $ENV{TEST_NGINX_SERVROOT} || "$FindBin::Bin/servroot";

my ($ctl_port, $ctl) = control_server(
    # HUP, then wait until the worker proxying this request has stopped
    # listening (it logs so first): the next connection reaches a new one
    '/swap-reload' => sub {
        my (undef, undef, undef, $h) = @_;
        my $old = $h->{'x-worker'};
        my $conf = "$servroot/conf/nginx.conf";
        open my $in, '<', $conf or return "no conf\n";
        local $/; my $c = <$in>; close $in;
        $c =~ s/vodlms_progress_zone zone=shared1:1m flush=1h;/vodlms_cache_zone zone=shared1:1m;/ or return "no progress zone line\n";
        $c =~ s/#SWAP //g;
        open my $out, '>', $conf or return "cannot write\n"; print $out $c; close $out;
        reload_nginx($servroot, $old);
    },
);
$ENV{TEST_NGINX_CTL_PORT} = $ctl_port;

master_on();
workers(1);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: a progress zone renamed into a cache zone of the same name and size across a reload
--- main_config
    load_module $TEST_NGINX_MODULE_PATH;
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
    vodlms_progress_zone zone=shared1:1m flush=1h;
--- config
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        #SWAP vodlms_enrollment_cache shared1;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
    location /app/ { return 200 "app\n"; }
    location /ctl/ {
        proxy_set_header X-Worker $pid;
        proxy_read_timeout 60s;
        proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/;
    }
--- request eval
["GET /videos/intro-ready/meta",
 "GET /ctl/swap-reload",
 "GET /videos/intro-ready/meta",
 "GET /videos/intro-ready/meta",
 "GET /videos/made-up/meta",
 "GET /videos/made-up/meta"]
--- more_headers
Cookie: session=t046-alice
--- error_code eval
[200, 200, 200, 200, 404, 404]
--- timeout: 30
--- no_error_log
[alert]
[emerg]
