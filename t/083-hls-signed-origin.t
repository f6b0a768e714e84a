# Signed playlists behind CloudFront (issue #20, docs/cloudfront.md "Signed
# playlists: a behaviour for *.m3u8"): nginx is the origin of the playlist
# behaviour, reads each playlist from the bucket once through a proxy_cache
# keyed by $uri (the query, which holds the viewer's signature, left out),
# and signs it per request.  Here the bucket is a second server block of the
# same nginx, serving the raw files with its own access log.
#
#   - two viewers with different signed URLs (different expiry, so a
#     different Policy and Signature) each get the playlist signed with
#     their own parameters, in either order, from one origin read;
#   - the cache holds the origin's bytes, never a viewer's signature;
#   - the answer says "Cache-Control: private, no-store", and only that,
#     whatever Cache-Control or Expires the origin sent;
#   - a malformed playlist from the origin is a 502 every time (the cache
#     keeps the origin's bytes, not a signed answer), with no cache header
#     of the origin's;
#   - a chunked origin answer, one larger than the proxy buffers (a temp
#     file) and "proxy_buffering off" are signed whole, with the right
#     Content-Length;
#   - no credentials: 403 and the origin is not asked.
#
# Plain Test::More: nginx runs as a direct child (nginx_child: fork + exec,
# waitpid).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use File::Find ();
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Socket::INET;
use MIME::Base64 qw(encode_base64);
use Test::More;
use VodlmsTest;

$ENV{TEST_NGINX_MODULE_PATH}
    or plan skip_all => 'TEST_NGINX_MODULE_PATH is not set (./build.sh test sets it)';

my $vectors = $ENV{VODLMS_VECTORS_DIR} || "$FindBin::Bin/../../shared/vectors/cloudfront";
-f "$vectors/test_public_key.pem" or die "no CloudFront vectors at $vectors\n";
my $key = "$vectors/test_private_key.pem";
my $pub = "$vectors/test_public_key.pem";

sub slurp { open my $fh, '<:raw', $_[0] or return ''; local $/; <$fh> }
sub spew { open my $fh, '>:raw', $_[0] or die "$_[0]: $!"; print $fh $_[1]; close $fh }

my $dir = tempdir('vodlms-t083-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $dir;
make_path("$dir/logs", "$dir/origin/hls/lec/v0", "$dir/cache");

# CloudFront's custom-policy signed URL, made here with openssl: the query
# a viewer's manifest URL carries (a wildcard over the lecture's tree)
sub cf_b64 { (my $s = encode_base64($_[0], '')) =~ tr{+=/}{-_~}; $s }

sub signed_query {
    my ($resource, $expires) = @_;
    my $policy = qq({"Statement":[{"Resource":"$resource","Condition":{"DateLessThan":{"AWS:EpochTime":$expires}}}]});
    spew("$dir/policy.json", $policy);
    my $sig = `openssl dgst -sha1 -sign '$key' '$dir/policy.json'`;
    die "openssl dgst -sign failed\n" if $? || !length $sig;
    return 'Policy=' . cf_b64($policy) . '&Signature=' . cf_b64($sig) . '&Key-Pair-Id=K2JCJMDEHXQW5F';
}

# ------------------------------------------------------------ the bucket

# a media playlist of a 60-minute lecture: 900 segments of 4 s (~28 KB,
# more than the proxy buffers below hold: the upstream's temp file)
my $media = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXT-X-PLAYLIST-TYPE:VOD\n"
          . join('', map { sprintf "#EXTINF:4.000000,\nseg_%05d.ts\n", $_ } 1 .. 900)
          . "#EXT-X-ENDLIST\n";
spew("$dir/origin/hls/lec/v0/index.m3u8", $media);
my $master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\nv0/index.m3u8\n"
           . "#EXT-X-STREAM-INF:BANDWIDTH=400000\nv1/index.m3u8?rev=2\n";
spew("$dir/origin/hls/lec/master.m3u8", $master);
spew("$dir/origin/hls/lec/bad.m3u8", "<html>an error page from the bucket</html>\n");

# ------------------------------------------------------------ nginx

my $port = free_port();
my $oport = free_port();
$oport = free_port() while $oport == $port;
my $base = "http://127.0.0.1:$port";

my $nginx = nginx_child(name => 't083', listen => $port, check => 1, http => <<"HTTP");
    types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; }

    log_format origin '\$request_uri';
    proxy_cache_path $dir/cache keys_zone=playlists:1m max_size=10m;

    # the bucket: raw files, its own cache headers, every read logged
    server {
        listen 127.0.0.1:$oport;
        access_log $dir/logs/origin.log origin;
        root $dir/origin;
        expires 1h;
        add_header Cache-Control public;

        # an answer with no Content-Length (chunked to HTTP/1.1)
        location /chunked/ {
            alias $dir/origin/;
            ssi on;                 # built by default, unlike sub_filter:
            ssi_types application/vnd.apple.mpegurl;   # no Content-Length
        }
    }

    # the path as the viewer sent it (and the edge verified it), without
    # the query: never the decoded \$uri, whose %3F or %0D%0A would become
    # part of the request to the bucket
    map \$request_uri \$vodlms_raw_path {
        "~^(?<p>[^?]*)"  \$p;
    }

    # this nginx as CloudFront's origin for *.m3u8 (docs/cloudfront.md);
    # the regular expressions in order: the last one is the docs' location
    server {
        listen 127.0.0.1:$port;

        vodlms_edge_url $base;
        vodlms_edge_public_key K2JCJMDEHXQW5F $pub;

        location ~ ^/chunked/.*\\.m3u8\$ {
            vodlms_edge on;
            vodlms_hls_sign on;
            proxy_pass http://127.0.0.1:$oport\$vodlms_raw_path;
            proxy_http_version 1.1;
        }

        location ~ ^/unbuffered/(?<rest>.*\\.m3u8)\$ {
            vodlms_edge on;
            vodlms_hls_sign on;
            proxy_pass http://127.0.0.1:$oport/\$rest;
            proxy_buffering off;
            proxy_buffer_size 4k;
        }

        location ~ \\.m3u8\$ {
            vodlms_edge on;
            vodlms_hls_sign on;
            proxy_pass http://127.0.0.1:$oport\$vodlms_raw_path;    # the viewer's query is not the bucket's
            proxy_cache playlists;
            proxy_cache_key \$vodlms_raw_path;
            proxy_cache_valid 200 5m;
            proxy_ignore_headers Set-Cookie;
            proxy_buffer_size 4k;
            proxy_buffers 4 4k;
            add_header X-Cache \$upstream_cache_status;
        }
    }
HTTP
ok(IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port"), 'nginx is up');

my $http = HTTP::Tiny->new(timeout => 10, max_redirect => 0);

# the origin's reads of one path (its access log is written per request)
sub origin_reads {
    my ($path) = @_;
    return scalar grep { $_ eq $path } split /\n/, slurp("$dir/logs/origin.log");
}

# every URI of a playlist, as a player takes them
sub uris {
    my @u;
    for my $line (split /\r?\n/, $_[0]) {
        push @u, $line if $line =~ /\S/ && $line !~ /^#/;
    }
    return @u;
}

# Cache-Control as the client got it: one header, or several joined
sub cache_control {
    my $v = $_[0]{headers}{'cache-control'};
    return ref $v ? join(' | ', @$v) : ($v // '(none)');
}

my $now = time;
my $qa = signed_query("$base/hls/lec/*", $now + 600);
my $qb = signed_query("$base/hls/lec/*", $now + 7200);
isnt($qa, $qb, 'two viewers, two different signed URLs');

# ------------------------------------------------------------ two viewers

my $path = '/hls/lec/v0/index.m3u8';
my $ra = $http->get("$base$path?$qa");
is($ra->{status}, 200, 'viewer A: 200');
is($ra->{headers}{'x-cache'}, 'MISS', '... read from the origin (cache MISS)');
my @a = uris($ra->{content});
is(scalar @a, 900, '... 900 segments');
is(scalar(grep { /^seg_\d{5}\.ts\?\Q$qa\E$/ } @a), 900,
   '... every one signed with A\'s parameters');
is(cache_control($ra), 'private, no-store',
   '... Cache-Control is "private, no-store" alone (the origin\'s "public" and max-age dropped)');
ok(!exists $ra->{headers}{expires}, '... and the origin\'s Expires is dropped');
is(length $ra->{content}, $ra->{headers}{'content-length'}, '... Content-Length is the signed playlist\'s');
(my $raw = $ra->{content}) =~ s/\?\Q$qa\E//g;
is($raw, $media, '... which is the origin\'s playlist byte for byte but the parameters');

my $rb = $http->get("$base$path?$qb");
is($rb->{status}, 200, 'viewer B: 200');
is($rb->{headers}{'x-cache'}, 'HIT', '... from the cache (HIT)');
my @b = uris($rb->{content});
is(scalar(grep { /^seg_\d{5}\.ts\?\Q$qb\E$/ } @b), 900, '... every segment signed with B\'s own parameters');
unlike($rb->{content}, qr/\Q$qa\E/, '... and none of A\'s');
is(cache_control($rb), 'private, no-store', '... Cache-Control "private, no-store"');
is(length $rb->{content}, $rb->{headers}{'content-length'}, '... Content-Length is B\'s playlist\'s');

$ra = $http->get("$base$path?$qa");
is(scalar(grep { /^seg_\d{5}\.ts\?\Q$qa\E$/ } uris($ra->{content})), 900,
   'viewer A again, after B, from the cache: A\'s parameters');
unlike($ra->{content}, qr/\Q$qb\E/, '... none of B\'s');

is(origin_reads($path), 1, 'the origin was read once for three answers');
unlike(slurp("$dir/logs/origin.log"), qr/Signature=/, '... and never saw a viewer\'s signature (the query is not passed on)');

my $leak = 0;
File::Find::find(sub { $leak++ if -f $_ && slurp($_) =~ /Signature=/ }, "$dir/cache");
is($leak, 0, 'the cache holds the origin\'s bytes, no signature');

my $res = $http->get("$base$path");
is($res->{status}, 403, 'no credentials: 403');
$res = $http->get("$base$path?" . ($qa =~ s/(Signature=[A-Za-z0-9_~-]{10})([A-Za-z0-9_~-])/$1 . ($2 eq 'A' ? 'B' : 'A')/er));
is($res->{status}, 403, 'one character of the signature changed: 403');
is(origin_reads($path), 1, '... and the origin was not asked');

$res = $http->get("$base/hls/lec/master.m3u8?$qb");
is($res->{status}, 200, 'the master through the cache: 200');
is(join(' ', uris($res->{content})), "v0/index.m3u8?$qb v1/index.m3u8?rev=2&$qb",
   '... its variants signed with the viewer\'s parameters ("&" after a query)');

# ------------------------------------------------------------ a bad playlist

$res = $http->get("$base/hls/lec/bad.m3u8?$qa");
is($res->{status}, 502, 'an origin playlist that is not one: 502');
is($res->{content}, qq({"error":"bad_playlist"}\n), '... with the JSON reason');
unlike(cache_control($res), qr/public|max-age/, '... and no cache header of the origin\'s on it');
ok(!exists $res->{headers}{expires}, '... nor its Expires');
$res = $http->get("$base/hls/lec/bad.m3u8?$qb");
is($res->{status}, 502, 'another viewer: 502 again, never a cached answer');
unlike($res->{content}, qr/html/, '... and never the origin\'s bytes');
is(origin_reads('/hls/lec/bad.m3u8'), 1, '... the origin read once all the same');

# ------------------------------------------------------------ other upstream shapes

$res = $http->get("$base/chunked/hls/lec/v0/index.m3u8?" . signed_query("$base/chunked/hls/lec/*", $now + 600));
is($res->{status}, 200, 'a chunked origin answer (no Content-Length): 200');
ok(!defined $res->{headers}{'transfer-encoding'}, '... sent with a Content-Length, not chunked');
is(length $res->{content}, $res->{headers}{'content-length'} // -1, '... the signed playlist\'s');
is(scalar(grep { /^seg_\d{5}\.ts\?Policy=/ } uris($res->{content})), 900, '... every segment signed');
like(slurp("$dir/logs/origin.log"), qr{^/chunked/hls/lec/v0/index\.m3u8$}m, '... and it came from the origin');

my $qu = signed_query("$base/unbuffered/hls/lec/*", $now + 600);
$res = $http->get("$base/unbuffered/hls/lec/v0/index.m3u8?$qu");
is($res->{status}, 200, 'proxy_buffering off (buffers smaller than the playlist): 200');
is(length $res->{content}, $res->{headers}{'content-length'} // -1, '... Content-Length is the signed playlist\'s');
is(scalar(grep { /^seg_\d{5}\.ts\?\Q$qu\E$/ } uris($res->{content})), 900, '... every segment signed');
is(cache_control($res), 'private, no-store', '... Cache-Control "private, no-store"');

my $log = $nginx->log;
like($log, qr/vodlms hls: the playlist "\/hls\/lec\/bad\.m3u8" cannot be signed: malformed/,
     'the 502 is logged with the playlist and the reason');

ok($nginx->stop('QUIT'), 'nginx stopped');
unlike($nginx->log, qr/\[(alert|emerg|crit)\]/, 'no alert in the log');

done_testing();
