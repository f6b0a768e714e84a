# The edge's signature cache remembers which key verified a signature.
#
# The cache skips RSA for a (Key-Pair-Id, signature, policy) it has seen,
# and its zone survives "nginx -s reload".  Before, the key itself was not
# part of the cache key: an operator who replaced a compromised public key
# under the same Key-Pair-Id and reloaded still had every cookie the old
# key had signed accepted from the cache, until the policies expired.
#
# Plain Test::More (as t/102): a reload needs a master process, which this
# script starts as its own child, signals and reaps.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use HTTP::Tiny;
use POSIX qw(WNOHANG);
use Test::More;
use VodlmsTest;

my $module = $ENV{TEST_NGINX_MODULE_PATH}
    or plan skip_all => 'TEST_NGINX_MODULE_PATH is not set (./build.sh test sets it)';
my $nginx = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
my $redis_port = $ENV{TEST_NGINX_REDIS_PORT} || 6379;
my $vectors = $ENV{VODLMS_VECTORS_DIR} || "$FindBin::Bin/../../shared/vectors/cloudfront";

redis_cmd($redis_port, 'SET', 'session:t085-alice', '{"user_id":"1001"}', 'EX', 3600);
my $pg = start_pg();

my $dir = tempdir('vodlms-t085-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $dir;
mkdir "$dir/$_" for qw(logs html html/hls html/hls/intro-ready);
open my $seg, '>', "$dir/html/hls/intro-ready/seg_00001.ts" or die $!;
print $seg "segment 1 of intro-ready\n";
close $seg;

# the edge trusts this file under the Key-Pair-Id; the test replaces it
system("cp $vectors/test_public_key.pem $dir/edge_pub.pem") == 0 or die "cp: $?";
system("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out $dir/other.pem 2>/dev/null") == 0
    and system("openssl pkey -in $dir/other.pem -pubout -out $dir/other_pub.pem 2>/dev/null") == 0
    or die "openssl: cannot make a second key";

my $port = free_port();
my $conninfo = $pg->conninfo;

open my $conf, '>', "$dir/nginx.conf" or die $!;
print $conf <<"CONF";
load_module $module;
daemon off;
master_process on;
worker_processes 1;
error_log $dir/logs/error.log notice;
pid $dir/logs/nginx.pid;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;

    vodlms_redis 127.0.0.1:$redis_port;
    vodlms_pg "$conninfo";
    vodlms_cache_zone zone=sigs:1m;

    server {
        listen 127.0.0.1:$port;
        root $dir/html;

        location ~ ^/api/videos/(?<vid>[^/]+)/stream\$ {
            vodlms_auth on;
            vodlms_enrollment_check on;
            vodlms_video_id \$vid;
            vodlms_cloudfront_url https://cdn.example.test;
            vodlms_cloudfront_key K2JCJMDEHXQW5F ${\ private_key("$vectors/test_private_key.pem")};
            vodlms_playback cookies;
        }
        location /hls/ {
            vodlms_edge on;
            vodlms_edge_url https://cdn.example.test;
            vodlms_edge_public_key K2JCJMDEHXQW5F $dir/edge_pub.pem;
            vodlms_edge_signature_cache sigs;
            add_header X-Signature-Cache \$vodlms_edge_signature_cache always;
        }
    }
}
CONF
close $conf;

sub wait_for {
    my ($cond) = @_;
    my $v;
    for (1 .. 500) {
        last if $v = $cond->();
        select undef, undef, undef, 0.02;
    }
    return $v;
}

my $pid = fork // die "fork: $!";
if ($pid == 0) {
    exec $nginx, '-p', $dir, '-c', "$dir/nginx.conf", '-e', "$dir/logs/error.log";
    die "exec $nginx: $!";
}

my $http = HTTP::Tiny->new(timeout => 10);
ok(wait_for(sub { IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port") }), 'nginx is up');

my $play = $http->get("http://127.0.0.1:$port/api/videos/intro-ready/stream",
                      { headers => { Cookie => 'session=t085-alice' } });
is($play->{status}, 200, 'playback: 200 with signed cookies');
my @sc = ref $play->{headers}{'set-cookie'} ? @{ $play->{headers}{'set-cookie'} } : ($play->{headers}{'set-cookie'} // ());
my $cookie = join '; ', map { /^(CloudFront-[^;]+)/ ? $1 : () } @sc;

sub segment {
    my $r = $http->get("http://127.0.0.1:$port/hls/intro-ready/seg_00001.ts",
                       { headers => { Cookie => $cookie } });
    my $why = $r->{content} =~ /"reason":"([a-z_]+)"/ ? " $1" : '';
    return "$r->{status} " . ($r->{headers}{'x-signature-cache'} // '-') . $why;
}

is(segment(), '200 MISS', 'the segment: verified with the key');
is(segment(), '200 HIT', 'again: from the signature cache');

# the key replaced under the same id, and a reload: the zone is kept
system("cp $dir/other_pub.pem $dir/edge_pub.pem") == 0 or die "cp: $?";
my @old = grep { $_ } map { chomp; $_ } `pgrep -P $pid`;
kill 'HUP', $pid;
ok(wait_for(sub { !grep { kill 0, $_ } @old }), 'reloaded: the old worker has gone');

is(segment(), '403 MISS bad_signature',
   'after the key swap: what the old key signed is refused, not found in the cache');

kill 'QUIT', $pid;
ok(wait_for(sub { waitpid($pid, WNOHANG) == $pid }), 'nginx stops')
    or do {
        my @workers = grep { $_ } map { chomp; $_ } `pgrep -P $pid`;
        kill 'KILL', $pid, @workers;
        waitpid $pid, 0;
    };

done_testing();
