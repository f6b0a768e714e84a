# Cookie-less playback (issue #20): "vodlms_playback url" answers with a
# manifest URL signed with a custom policy over the video's tree, and the
# edge, with "vodlms_hls_sign on", answers each playlist asked for with that
# URL with every URI in it carrying the same parameters.  A player with no
# cookie jar plays the whole lecture from the manifest URL alone:
#
#   - ffmpeg, a native HLS client with no cookie jar, reads the whole
#     ladder (master, both variant playlists, every segment) and fails with
#     403 when one byte of the signature is changed;
#   - the playlists keep every byte but the inserted parameters (CRLF, a
#     BOM, comments, blank lines), "?" or "&" as the URI needs, skd: and
#     data: URIs untouched, absolute URIs on other hosts left alone (or
#     refused by configuration), a fragment after the query;
#   - a playlist that cannot be signed (too large, malformed) is a 502 with
#     a JSON reason, never the unsigned playlist;
#   - a canned policy or cookies: the playlist goes out as it is;
#   - the URL lives for the rest of the video plus the TTL;
#   - captions (issue #23) travel under the same signature: a master with a
#     subtitle group gets its EXT-X-MEDIA URIs signed, a subtitle playlist
#     its .vtt segments, and ffmpeg reads the cues from the manifest URL.
#
# Plain Test::More: nginx runs as a direct child (nginx_child: fork + exec,
# waitpid),
# with the suite's Redis, a private PostgreSQL, and an HLS tree ffmpeg makes.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use JSON::PP ();
use Test::More;
use Time::HiRes qw(sleep time);
use VodlmsTest;

$ENV{TEST_NGINX_MODULE_PATH}
    or plan skip_all => 'TEST_NGINX_MODULE_PATH is not set (./build.sh test sets it)';
my $redis_port = $ENV{TEST_NGINX_REDIS_PORT} || 6379;

my $vectors = $ENV{VODLMS_VECTORS_DIR} || "$FindBin::Bin/../../shared/vectors/cloudfront";
-f "$vectors/test_public_key.pem" or die "no CloudFront vectors at $vectors\n";
my $key = private_key("$vectors/test_private_key.pem");
my $pub = "$vectors/test_public_key.pem";

redis_cmd($redis_port, 'SET', 'session:t082-ann', '{"user_id":"8201"}', 'EX', 3600);

my $pg = start_pg();
$pg->psql(q{INSERT INTO vodlms.users (id, email, role) VALUES ('8201', 'ann@example.com', 'student')});
$pg->psql(q{INSERT INTO vodlms.enrollments (user_id, course_id, status) VALUES ('8201', 'course-intro', 'active')});
$pg->psql(q{INSERT INTO vodlms.videos (id, course_id, title, duration_seconds, status, storage_prefix)
            VALUES ('lec-hls', 'course-intro', 'Signed playlists', 600, 'ready', 'hls/lec-hls/')});

sub slurp { open my $fh, '<:raw', $_[0] or die "$_[0]: $!"; local $/; <$fh> }
sub spew { open my $fh, '>:raw', $_[0] or die "$_[0]: $!"; print $fh $_[1]; close $fh }

# ------------------------------------------------------------ the tree

my $dir = tempdir('vodlms-t082-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $dir;
my $tree = "$dir/origin/hls/lec-hls";
make_path("$tree/fixtures");

# a real ladder: two renditions of 6 s in 2 s segments, and a master
my $ff = system('ffmpeg', '-hide_banner', '-nostdin', '-loglevel', 'error', '-y',
                '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=10',
                '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
                '-t', '6', '-filter_complex', '[0:v]split=2[a][b];[b]scale=160:120[c]',
                '-map', '[a]', '-map', '[c]', '-map', '1:a', '-map', '1:a',
                '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '20', '-c:a', 'aac', '-b:a', '64k',
                '-f', 'hls', '-hls_time', '2', '-hls_playlist_type', 'vod',
                '-hls_segment_filename', "$tree/v%v/seg_%03d.ts",
                '-master_pl_name', 'master.m3u8',
                '-var_stream_map', 'v:0,a:0 v:1,a:1', "$tree/v%v/index.m3u8");
is($ff, 0, 'ffmpeg made a two-rendition HLS tree');
# ffmpeg writes the master next to the variants' directory pattern
if (!-f "$tree/master.m3u8") {
    my ($m) = glob("$tree/v*/master.m3u8");
    rename $m, "$tree/master.m3u8" if $m;
}
ok(-f "$tree/master.m3u8", 'the master playlist is at the top of the tree');
my @variants = glob("$tree/v*/index.m3u8");
is(scalar @variants, 2, 'two variant playlists');

# the rewriter's fixtures, and playlists it must refuse
for my $f (glob("$FindBin::Bin/fixtures/hls/*.m3u8")) {
    (my $name = $f) =~ s{.*/}{};
    spew("$tree/fixtures/$name", slurp($f));
}
spew("$tree/fixtures/not-a-playlist.m3u8", "<html>an error page</html>\n");
spew("$tree/fixtures/huge.m3u8", "#EXTM3U\n" . ("#EXTINF:2.0,\nseg.ts\n" x 20000));
spew("$tree/fixtures/seg.ts", "a segment\n");
# captions as vodlms-helper publishes them (docs/helper.md): the master with
# a subtitle group (EXT-X-MEDIA before the first variant, SUBTITLES="subs" on
# every variant), and per language a VOD playlist of 4 s WebVTT segments
# under subs/<lang>/<revision>/
my $rev = '20261205T121500Z-3f9a1c2b';
my %cue = (en => 'Hello, signed captions', fr => 'Bonjour, sous-titres signés');
{
    my $master = slurp("$tree/master.m3u8");
    my $media = join '', map {
        sprintf qq{#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="%s",NAME="%s",DEFAULT=%s,}
              . qq{AUTOSELECT=YES,FORCED=NO,URI="subs/%s/$rev/index.m3u8"\n},
              $_, $_ eq 'en' ? 'English' : 'Français', $_ eq 'en' ? 'YES' : 'NO', $_
    } qw(en fr);
    $master =~ s/^(#EXT-X-STREAM-INF:.*)$/$1,SUBTITLES="subs"/mg;
    $master =~ s/^(?=#EXT-X-STREAM-INF:)/$media/m;
    spew("$tree/master-cc.m3u8", $master);
    for my $lang (qw(en fr)) {
        make_path("$tree/subs/$lang/$rev");
        spew("$tree/subs/$lang/$rev/index.m3u8",
             "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:0\n"
           . "#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:4.000,\nseg_00000.vtt\n#EXTINF:2.000,\nseg_00001.vtt\n"
           . "#EXT-X-ENDLIST\n");
        spew("$tree/subs/$lang/$rev/seg_00000.vtt",
             "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000\n\n"
           . "00:00:01.000 --> 00:00:03.000\n$cue{$lang}\n");
        spew("$tree/subs/$lang/$rev/seg_00001.vtt",
             "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000\n\n");
    }
}

# an hour in 4 s segments: signed, about 25 times its size, more than a
# small socket buffer takes at once
spew("$tree/fixtures/hour.m3u8", "#EXTM3U\n#EXT-X-TARGETDURATION:4\n"
     . join('', map { sprintf "#EXTINF:4.0,\nseg_%05d.ts\n", $_ } 1 .. 900) . "#EXT-X-ENDLIST\n");

# ------------------------------------------------------------ nginx

my $port = free_port();
my $sport = free_port();
$sport = free_port() while $sport == $port;
my $base = "http://127.0.0.1:$port";
my $conninfo = $pg->conninfo;

my $nginx = nginx_child(name => 't082', listen => $port, check => 1, http => <<"HTTP");
    types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; text/vtt vtt; }

    vodlms_redis 127.0.0.1:$redis_port;
    vodlms_pg "$conninfo";

    server {
        listen 127.0.0.1:$port;

        vodlms_cloudfront_url $base;
        vodlms_cloudfront_key K2JCJMDEHXQW5F $key;
        vodlms_cloudfront_ttl 300s;

        location ~ ^/api/videos/(?<vid>[^/]+)/stream-url\$ {
            vodlms_auth on;
            vodlms_enrollment_check on;
            vodlms_video_id \$vid;
            vodlms_playback url;
        }

        # another expiry: another Policy and Signature for the same tree
        location ~ ^/api/videos/(?<vid>[^/]+)/stream-url-later\$ {
            vodlms_auth on;
            vodlms_enrollment_check on;
            vodlms_video_id \$vid;
            vodlms_playback url;
            vodlms_cloudfront_ttl 900s;
        }

        location ~ ^/api/videos/(?<vid>[^/]+)/stream-canned\$ {
            vodlms_auth on;
            vodlms_enrollment_check on;
            vodlms_video_id \$vid;
            vodlms_playback redirect;
            vodlms_cloudfront_url_policy canned;
        }

        location /hls/ {
            vodlms_edge on;
            vodlms_edge_url $base;
            vodlms_edge_public_key K2JCJMDEHXQW5F $pub;
            vodlms_hls_sign on;
            vodlms_hls_sign_max_size 256k;
            root $dir/origin;
        }

        # protocol version 8's variable substitution: the query once
        location /hls/lec-hls/v8/ {
            vodlms_edge on;
            vodlms_edge_url $base;
            vodlms_edge_public_key K2JCJMDEHXQW5F $pub;
            vodlms_hls_sign define;
            alias $tree/;
        }

        location /hls/lec-hls/v8s/ {
            vodlms_edge on;
            vodlms_edge_url $base;
            vodlms_edge_public_key K2JCJMDEHXQW5F $pub;
            vodlms_hls_sign define;
            vodlms_hls_sign_absolute refuse;
            alias $tree/;
        }

        location = /status { vodlms_status; }

        location /hls/lec-hls/strict/ {
            vodlms_edge on;
            vodlms_edge_url $base;
            vodlms_edge_public_key K2JCJMDEHXQW5F $pub;
            vodlms_hls_sign on;
            vodlms_hls_sign_absolute refuse;
            alias $tree/fixtures/;
        }
    }

    # a socket buffer far smaller than a signed hour: the answer goes out
    # in many writes, the rest flushed by nginx's writer
    server {
        listen 127.0.0.1:$sport sndbuf=8k;
        send_timeout 5s;

        location /hls/ {
            vodlms_edge on;
            vodlms_edge_url $base;
            vodlms_edge_public_key K2JCJMDEHXQW5F $pub;
            vodlms_hls_sign on;
            root $dir/origin;
        }

        location /hls/lec-hls/v8/ {
            vodlms_edge on;
            vodlms_edge_url $base;
            vodlms_edge_public_key K2JCJMDEHXQW5F $pub;
            vodlms_hls_sign define;
            alias $tree/;
        }
    }
HTTP
ok(IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port"), 'nginx is up');

my $http = HTTP::Tiny->new(timeout => 10, max_redirect => 0);
my $cookie = { 'Cookie' => 'session=t082-ann' };

# ------------------------------------------------------------ the URL

my $t0 = time;
my $res = $http->get("$base/api/videos/lec-hls/stream-url", { headers => $cookie });
is($res->{status}, 200, 'playback (url): 200');
my $info = eval { JSON::PP::decode_json($res->{content}) } || {};
like($info->{manifestUrl} // '', qr{^\Q$base\E/hls/lec-hls/master\.m3u8\?Policy=[A-Za-z0-9_~-]+&Key-Pair-Id=K2JCJMDEHXQW5F&Signature=[A-Za-z0-9_~-]+$},
     'the manifest URL carries a custom policy, its signature and the key pair id');
unlike($res->{headers}{'set-cookie'} // '', qr/CloudFront/, 'and no cookie is set');
my $left = ($info->{expiresAt} // 0) - $t0;
ok($left >= 600 + 300 - 2 && $left <= 600 + 300 + 60 + 2,
   "the URL lives for the rest of the video (600 s) plus the TTL (300 s), rounded up to the minute: $left s");

my ($query) = ($info->{manifestUrl} // '') =~ /\?(.*)$/;
$query //= '';

sub get { $http->get($_[0], { headers => $_[1] || {} }) }

# every URI of a playlist, as a player takes them
sub uris {
    my ($text) = @_;
    my @u;
    for my $line (split /\r?\n/, $text) {
        if ($line =~ /^#/) {
            push @u, $1 while $line =~ /(?:^|[:,])URI="([^"]*)"/g;
        } elsif ($line =~ /\S/) {
            (my $u = $line) =~ s/^\s+|\s+$//g;
            push @u, $u;
        }
    }
    return @u;
}

# ------------------------------------------------------------ the ladder

$res = get($info->{manifestUrl});
is($res->{status}, 200, 'the master, with no cookie: 200');
is($res->{headers}{'cache-control'}, 'private, no-store', 'a signed playlist is never for a shared cache');
ok(!exists $res->{headers}{etag} && !exists $res->{headers}{'accept-ranges'},
   'no ETag and no ranges: the bytes are this answer\'s');
my @m = uris($res->{content});
is(scalar @m, 2, 'the master names two variants');
is(scalar(grep { /\?\Q$query\E$/ } @m), 2, 'both carry the signed-URL parameters');
is(length $res->{content}, $res->{headers}{'content-length'}, 'Content-Length is the signed playlist\'s');
(my $unsigned = $res->{content}) =~ s/\?\Q$query\E//g;
is($unsigned, slurp("$tree/master.m3u8"), 'without them, the master byte for byte');

for my $v (@m) {
    $res = get("$base/hls/lec-hls/$v");
    is($res->{status}, 200, "variant $v: 200 with no cookie");
    my @s = uris($res->{content});
    ok(@s >= 3 && @s == grep({ /\.ts\?\Q$query\E$/ } @s), "variant $v: every segment signed (" . scalar(@s) . ')');
    my $seg = get("$base/hls/lec-hls/" . ($v =~ s{[^/]+$}{}r) . $s[0]);
    is($seg->{status}, 200, "variant $v: its first segment, with no cookie: 200");
    like($seg->{headers}{'cache-control'} // '', qr/immutable/, 'segments keep their cache headers');
}

# ffmpeg as the native client: the whole ladder from the manifest URL
my $out = `ffmpeg -hide_banner -nostdin -loglevel error -i '$info->{manifestUrl}' -map 0 -c copy -f null - 2>&1`;
is($?, 0, 'ffmpeg, with no cookie jar, reads the whole ladder from the manifest URL')
    or diag($out);

(my $tampered = $info->{manifestUrl}) =~ s/(Signature=[A-Za-z0-9_~-]{10})([A-Za-z0-9_~-])/$1 . ($2 eq 'A' ? 'B' : 'A')/e;
$out = `ffmpeg -hide_banner -nostdin -loglevel error -i '$tampered' -map 0 -c copy -f null - 2>&1`;
isnt($?, 0, 'one changed character of the signature: ffmpeg fails');
like($out, qr/403/, '... with 403 Forbidden');

# ------------------------------------------------------------ captions

$res = get("$base/hls/lec-hls/master-cc.m3u8?$query");
is($res->{status}, 200, 'a master with a subtitle group, with no cookie: 200');
my @cc = $res->{content} =~ /^#EXT-X-MEDIA:TYPE=SUBTITLES,.*URI="([^"]*)"$/mg;
is_deeply(\@cc, ["subs/en/$rev/index.m3u8?$query", "subs/fr/$rev/index.m3u8?$query"],
          '... both subtitle playlists (EXT-X-MEDIA TYPE=SUBTITLES URI) carry the signed-URL parameters');
is(scalar(grep { /\?\Q$query\E$/ } uris($res->{content})), 4, '... and so do both variants');
($unsigned = $res->{content}) =~ s/\?\Q$query\E//g;
is($unsigned, slurp("$tree/master-cc.m3u8"), '... without them, the master byte for byte');

$res = get("$base/hls/lec-hls/$cc[0]");
is($res->{status}, 200, 'the English subtitle playlist, from its signed URI: 200');
is_deeply([uris($res->{content})], ["seg_00000.vtt?$query", "seg_00001.vtt?$query"],
          '... every WebVTT segment signed');
($unsigned = $res->{content}) =~ s/\?\Q$query\E//g;
is($unsigned, slurp("$tree/subs/en/$rev/index.m3u8"), '... without them, the playlist byte for byte');

$res = get("$base/hls/lec-hls/subs/en/$rev/seg_00000.vtt?$query");
is($res->{status}, 200, 'a WebVTT segment with the signed-URL parameters: 200');
is($res->{content}, slurp("$tree/subs/en/$rev/seg_00000.vtt"), '... the file as it is (a segment is never rewritten)');
is($res->{headers}{'content-type'}, 'text/vtt', '... as text/vtt');
like($res->{headers}{'cache-control'} // '', qr/immutable/, '... cached like any segment (its URL has its revision)');
is(get("$base/hls/lec-hls/subs/en/$rev/seg_00000.vtt")->{status}, 403, '... and without them: 403');
(my $bad = $query) =~ s/(Signature=[A-Za-z0-9_~-]{10})([A-Za-z0-9_~-])/$1 . ($2 eq 'A' ? 'B' : 'A')/e;
is(get("$base/hls/lec-hls/subs/fr/$rev/seg_00000.vtt?$bad")->{status}, 403, '... or with a changed signature: 403');

# ffmpeg as a native client: the cues of each language from the manifest URL
# (its HLS demuxer reads subtitle renditions only with -strict experimental)
(my $cc_url = $info->{manifestUrl}) =~ s/master\.m3u8/master-cc.m3u8/;
for my $i (0, 1) {
    my $lang = (qw(en fr))[$i];
    $out = `ffmpeg -hide_banner -nostdin -loglevel error -strict experimental -i '$cc_url' -map 0:s:$i -c:s webvtt -f webvtt - 2>&1`;
    like($out, qr/^\Q$cue{$lang}\E$/m, "ffmpeg, with no cookie jar, reads the $lang cue through the signed master")
        or diag($out);
}
(my $cc_bad = $tampered) =~ s/master\.m3u8/master-cc.m3u8/;
$out = `ffmpeg -hide_banner -nostdin -loglevel error -strict experimental -i '$cc_bad' -map 0:s:0 -c:s webvtt -f webvtt - 2>&1`;
isnt($?, 0, '... and not with a changed signature');

$res = get("$base/hls/lec-hls/v8/master-cc.m3u8?$query");
is_deeply([$res->{content} =~ /^#EXT-X-MEDIA:TYPE=SUBTITLES,.*URI="([^"]*)"$/mg],
          ["subs/en/$rev/index.m3u8?{\$vodlms}", "subs/fr/$rev/index.m3u8?{\$vodlms}"],
          'define: the subtitle playlists name the variable');
$res = get("$base/hls/lec-hls/v8/subs/en/$rev/index.m3u8?$query");
is_deeply([grep { /\.vtt/ } uris($res->{content})], ['seg_00000.vtt?{$vodlms}', 'seg_00001.vtt?{$vodlms}'],
          '... and so do the WebVTT segments');

# ------------------------------------------------------------ the playlists' bytes

sub signed_fixture {
    my ($name, $loc) = @_;
    $loc ||= 'fixtures';
    return get("$base/hls/lec-hls/$loc/$name?$query");
}

$res = signed_fixture('media-crlf.m3u8');
is($res->{status}, 200, 'a CRLF playlist with a BOM: 200');
like($res->{content}, qr{URI="\.\./keys/k1\.bin",IV=}, 'EXT-X-KEY URIs are not signed (#22)');
like($res->{content}, qr{URI="\.\./keys/k2\.bin\?kid=2",IV=}, '... with a query of their own either');
unlike($res->{content}, qr{\.bin[?&][^"]*Signature=}, '... no key URI carries the signature');
($unsigned = $res->{content}) =~ s/[?&]\Q$query\E//g;
is($unsigned, slurp("$tree/fixtures/media-crlf.m3u8"), '... every byte kept but the parameters');

$res = signed_fixture('master.m3u8');
my $body = $res->{content};
like($body, qr{^720p/index\.m3u8\?rev=2&\Q$query\E$}m, 'a URI with a query gets "&", not a second "?"');
like($body, qr{URI="subs/fr/index\.m3u8\?\Q$query\E#lang"}, 'the parameters go before a fragment');
like($body, qr{^https://media\.example\.com/hls/42/v1/360p/index\.m3u8$}m, 'an absolute URI on another host is left alone');
like($body, qr{URI="keys/session\.key\?v=3"}, 'EXT-X-SESSION-KEY left as written: keys come from the LMS, unsigned (#22)');
like($body, qr{URI="1080p/iframes\.m3u8\?\Q$query\E"}, 'EXT-X-I-FRAME-STREAM-INF signed');
like($body, qr{URI="audio/en/index\.m3u8\?\Q$query\E"}, 'EXT-X-MEDIA signed');

$res = signed_fixture('media-drm.m3u8');
like($res->{content}, qr{URI="skd://lecture-42"}, 'skd: URIs are never touched');
like($res->{content}, qr{URI="data:text/plain;base64,[^"?]*"}, 'data: URIs are never touched');
like($res->{content}, qr{^seg-1\.ts\?\Q$query\E#t=2\r?$}m, 'a segment with a fragment: the query before it');

# a signed hour through an 8 KB socket buffer: all of it, at once
$res = get("http://127.0.0.1:$sport/hls/lec-hls/fixtures/hour.m3u8?$query");
is($res->{status}, 200, 'a signed hour through a small socket buffer: 200');
is(length $res->{content}, $res->{headers}{'content-length'} // -1,
   '... all of it (' . length($res->{content}) . ' bytes), not cut off after the first writes');
is(scalar(grep { /^seg_\d{5}\.ts\?\Q$query\E$/ } uris($res->{content})), 900, '... every segment signed');

$res = signed_fixture('master.m3u8', 'strict');
is($res->{status}, 502, 'vodlms_hls_sign_absolute refuse: a master with an absolute URI is 502');
is($res->{content}, qq({"error":"bad_playlist"}\n), '... with a JSON reason');
$res = signed_fixture('media-ll.m3u8', 'strict');
is($res->{status}, 200, '... and one without is signed');

$res = signed_fixture('not-a-playlist.m3u8');
is($res->{status}, 502, 'not a playlist: 502, not the file');
is($res->{content}, qq({"error":"bad_playlist"}\n), '... with a JSON reason');
$res = signed_fixture('huge.m3u8');
is($res->{status}, 502, 'a playlist over vodlms_hls_sign_max_size: 502');

# define: the query once in an EXT-X-DEFINE, "{$vodlms}" in every URI
$res = get("$base/hls/lec-hls/v8/master.m3u8?$query");
is($res->{status}, 200, 'vodlms_hls_sign define: the master, with no cookie: 200');
like($res->{content}, qr/\A#EXTM3U\n(?:#EXT-X-VERSION:8\n)?#EXT-X-DEFINE:NAME="vodlms",VALUE="\Q$query\E"\n/,
     '... the parameters once, in an EXT-X-DEFINE after #EXTM3U');
my @v8 = uris($res->{content});
is(scalar(grep { /\?\{\$vodlms\}$/ } @v8), 2, '... both variants name the variable');
(my $substituted = $res->{content}) =~ s/\{\$vodlms\}/$query/g;
$substituted =~ s/^#EXT-X-DEFINE:.*\n//m;
$substituted =~ s/^#EXT-X-VERSION:8$/#EXT-X-VERSION:3/m;
my $on = get("$base/hls/lec-hls/master.m3u8?$query")->{content};
(my $on_v = $on) =~ s/^#EXT-X-VERSION:\d+$/#EXT-X-VERSION:3/m;
is($substituted, $on_v, '... substituted, the master "vodlms_hls_sign on" answers (but the version)');
like($res->{content}, qr/^#EXT-X-VERSION:([89]|\d\d+)$/m, '... at protocol version 8 at least');

$res = get("$base/hls/lec-hls/v8/fixtures/hour.m3u8?$query");
my $hour = slurp("$tree/fixtures/hour.m3u8");
is(scalar(grep { /^seg_\d{5}\.ts\?\{\$vodlms\}$/ } uris($res->{content})), 900,
   'define: an hour\'s 900 segments name the variable');
ok(length($res->{content}) < length($hour) + 900 * 10 + length($query) + 100,
   sprintf('... %d bytes for a %d-byte file (on: %d)', length $res->{content}, length $hour,
           length(get("$base/hls/lec-hls/fixtures/hour.m3u8?$query")->{content})));
my $first = (grep { /\.ts/ } uris($res->{content}))[0];
(my $literal = $first) =~ s/\?.*//;
$res = get("$base/hls/lec-hls/v8/fixtures/$literal?{\$vodlms}");
is($res->{status}, 403, 'a player that does not substitute asks for "{$vodlms}": 403');
$res = get("$base/hls/lec-hls/v8/$v8[0]" =~ s/\{\$vodlms\}/$query/r);
is($res->{status}, 200, 'one that does gets the variant: 200');
like($res->{content}, qr/\A#EXTM3U\n(?:#EXT-X-VERSION:8\n)?#EXT-X-DEFINE:NAME="vodlms",VALUE="\Q$query\E"\n/,
     '... the variant defines the variable too');
ok(scalar(grep({ /\.ts\?\{\$vodlms\}$/ } uris($res->{content}))) >= 3,
   '... and its segments name it');

# define mode keeps a file's signed answer per worker, cut around the
# parameters: every viewer gets their own, and a changed file is read again
$res = $http->get("$base/api/videos/lec-hls/stream-url-later", { headers => $cookie });
my ($bob) = ((eval { JSON::PP::decode_json($res->{content}) } || {})->{manifestUrl} // '') =~ /\?(.*)$/;
ok(defined $bob && $bob ne $query, 'a second manifest URL, with other parameters (a later expiry)');
$bob //= '';
my $hour_ann = get("$base/hls/lec-hls/v8/fixtures/hour.m3u8?$query")->{content};
$res = get("$base/hls/lec-hls/v8/fixtures/hour.m3u8?$bob");
is($res->{status}, 200, 'define, the same hour with the second URL: 200');
is(index($res->{content}, $query), -1, '... with nothing of the first URL\'s parameters');
is(() = $res->{content} =~ /\Q$bob\E/g, 1, '... its own, once');
is($res->{content}, $hour_ann =~ s/\Q$query\E/$bob/r, '... and otherwise the same bytes');
is(length $res->{content}, $res->{headers}{'content-length'}, '... Content-Length is its own');
for my $i (1 .. 3) {
    my $again = get("$base/hls/lec-hls/v8/fixtures/hour.m3u8?" . ($i % 2 ? $query : $bob))->{content};
    is($again, $i % 2 ? $hour_ann : $res->{content}, "define, request $i more: the same answer for the same URL");
}
# kept per worker: vodlms_status counts the answers that came from it
sub playlist_hits {
    my $m = get("$base/status")->{content} // '';
    return ($m =~ /^vodlms_cache_requests_total\{cache="playlist",result="hit"\} (\d+)$/m)[0] // 0;
}
sleep 2;                                    # hour.m3u8 is older than a second
my $h0 = playlist_hits();
my @again = map { get("$base/hls/lec-hls/v8/fixtures/hour.m3u8?" . ($_ % 2 ? $query : $bob))->{content} } 1 .. 4;
cmp_ok(playlist_hits() - $h0, '>=', 3, 'define: an unchanged file is answered from what the worker kept');
is($again[2], $again[0], '... the same answer for the same URL');
is($again[3], $again[1], '... and for the other one');

# a file rewritten in place, its size and modification time kept (as
# `touch -r` does): its change time moved, it is read again
my @st = stat("$tree/fixtures/hour.m3u8");
spew("$tree/fixtures/hour.m3u8", $hour =~ s/seg_00001/SEG_00001/r);
utime($st[8], $st[9], "$tree/fixtures/hour.m3u8");
like(get("$base/hls/lec-hls/v8/fixtures/hour.m3u8?$query")->{content}, qr/^SEG_00001\.ts\?\{\$vodlms\}$/m,
     'define: a file rewritten with the same size and modification time is read again');

# written twice within one second, the same size: what the second wrote is
# what is served afterwards (nothing changed within the last second is kept)
{
    my $f = "$tree/fixtures/race.m3u8";
    my $A = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXTINF:4.0,\nold_00001.ts\n#EXT-X-ENDLIST\n";
    (my $B = $A) =~ s/old_/new_/;
    my $t = time; sleep 0.01 while int(time) == int($t);
    spew($f, $A);
    my $first = get("$base/hls/lec-hls/v8/fixtures/race.m3u8?$query")->{content};
    spew($f, $B);
    sleep 2;
    like($first, qr/old_00001/, 'define: a file written twice in one second: the first answer is the first write');
    like(get("$base/hls/lec-hls/v8/fixtures/race.m3u8?$query")->{content}, qr/new_00001/,
         '... and the second write is what is served after it');
}

# the file changes (another size): the new one is signed
spew("$tree/fixtures/hour.m3u8", "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXTINF:4.0,\nnew_00001.ts\n#EXT-X-ENDLIST\n");
$res = get("$base/hls/lec-hls/v8/fixtures/hour.m3u8?$bob");
is($res->{content}, "#EXTM3U\n#EXT-X-DEFINE:NAME=\"vodlms\",VALUE=\"$bob\"\n#EXT-X-VERSION:8\n#EXT-X-TARGETDURATION:4\n#EXTINF:4.0,\nnew_00001.ts?{\$vodlms}\n#EXT-X-ENDLIST\n",
   'define: a file that changed is read and signed again');
spew("$tree/fixtures/hour.m3u8", $hour);

# the same file at two locations with other options: each its own answer
sleep 2;
my @two = map { get("$base/hls/lec-hls/$_/fixtures/master.m3u8?$query")->{status} } qw(v8s v8 v8s v8);
is("@two", '502 200 502 200',
   'define: a location that refuses absolute URIs still refuses after another kept the same file');

# a kept answer replaced while a slow client still receives it: that
# client gets every byte of the answer it started with
{
    use Socket qw(PF_INET SOCK_STREAM SOL_SOCKET SO_RCVBUF pack_sockaddr_in inet_aton);
    my $big = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n"
        . join('', map { sprintf("#EXTINF:4.0,\nbig_%05d.ts\n", $_) } 1 .. 8000) . "#EXT-X-ENDLIST\n";
    spew("$tree/fixtures/big.m3u8", $big);
    sleep 2;
    my $path = "/hls/lec-hls/v8/fixtures/big.m3u8?$query";
    my $want = get("http://127.0.0.1:$sport$path")->{content};
    is(get("http://127.0.0.1:$sport$path")->{content}, $want, 'define: a 300 KB answer, kept');
    my $hits_before = playlist_hits();
    socket(my $sock, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
    setsockopt($sock, SOL_SOCKET, SO_RCVBUF, 1024) or die "setsockopt: $!";
    connect($sock, pack_sockaddr_in($sport, inet_aton('127.0.0.1'))) or die "connect: $!";
    syswrite($sock, "GET $path HTTP/1.0\r\nHost: x\r\n\r\n");
    sleep 0.5;                              # it has sent what the buffers take
    spew("$tree/fixtures/big.m3u8", ($big =~ s/big_/BIG_/gr) . "#\n");
    sleep 2;
    my @n = map { get("http://127.0.0.1:$sport$path")->{content} =~ /^BIG_00001/m ? 1 : 0 } 1 .. 3;
    is("@n", '1 1 1', '... the file changed: the new answer is kept in its place');
    my $all = '';
    while (sysread($sock, my $chunk, 65536)) { $all .= $chunk }
    my (undef, $body) = split /\r\n\r\n/, $all, 2;
    ok(defined $body && $body eq $want, '... and the slow client got the old answer whole, byte for byte ('
       . length($body // '') . ' of ' . length($want) . ')');
    # counted as each request ends: the three after the change (a miss, two
    # hits) and the slow one, which must have been a hit too
    cmp_ok(playlist_hits() - $hits_before, '>=', 3, '... it was sent the kept answer (a hit)');
}

$res = $http->request('HEAD', "$base/hls/lec-hls/master.m3u8?$query");
is($res->{status}, 200, 'HEAD of a signed playlist: 200');
ok(!exists $res->{headers}{'content-length'}, '... with no Content-Length (the signed length is not known)');

# ------------------------------------------------------------ not signed

$res = $http->get("$base/api/videos/lec-hls/stream-canned", { headers => $cookie });
is($res->{status}, 302, 'playback (redirect, canned): 302');
my $canned = $res->{headers}{location} // '';
$res = get($canned);
is($res->{status}, 200, 'the master with a canned policy: 200');
is($res->{content}, slurp("$tree/master.m3u8"), '... as it is: a canned policy covers no other URI');

$res = get("$base/hls/lec-hls/master.m3u8");
is($res->{status}, 403, 'no credentials at all: 403');

my $log = $nginx->log;
like($log, qr/vodlms hls: the playlist "\/hls\/lec-hls\/strict\/master\.m3u8" cannot be signed: an absolute URI/,
     'the refusal is logged with the playlist and the reason');
like($log, qr/vodlms hls: the playlist "\/hls\/lec-hls\/fixtures\/not-a-playlist\.m3u8" cannot be signed: malformed \(not a playlist \(no #EXTM3U first\), line 1\)/,
     '... a malformed one with the line');
like($log, qr/vodlms hls: the playlist "\/hls\/lec-hls\/fixtures\/huge\.m3u8" cannot be signed: larger than vodlms_hls_sign_max_size/,
     '... an oversized one');

ok($nginx->stop('QUIT'), 'nginx stopped');
unlike($nginx->log, qr/\[(alert|emerg|crit)\]/, 'no alert in the log');

done_testing();
