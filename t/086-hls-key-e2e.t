# Encrypted HLS end to end (issue #22), with ffmpeg as a native HLS client:
#
#   - ffmpeg makes an AES-128 encrypted two-rendition ladder here, its key
#     URI the nginx key location (vodlms_hls_key), its key a row of
#     video_keys; nginx serves the tree from a plain static location;
#   - ffmpeg (and ffprobe) with the LMS session cookie (-headers) read and
#     decode every frame of both renditions; without the cookie the key is
#     401 and ffmpeg fails; a viewer who is not enrolled gets 403 and fails;
#   - a segment fetched directly is ciphertext: ffprobe cannot read it as
#     MPEG-TS; decrypted with the key its playlist names and the IV the
#     HLS default gives it (the media sequence number), it is;
#   - with signed playlists (vodlms_playback url, the edge, vodlms_hls_sign
#     on) the key URI comes out of the rewriter unsigned, and ffmpeg with
#     the manifest URL plus the session cookie plays the lecture, the key
#     request going to the LMS's location with the cookie.
#
# Plain Test::More: nginx runs as a direct child (nginx_child), with the
# suite's Redis and a private PostgreSQL.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IPC::Run qw(run);
use JSON::PP ();
use Test::More;
use VodlmsTest;

$ENV{TEST_NGINX_MODULE_PATH}
    or plan skip_all => 'TEST_NGINX_MODULE_PATH is not set (./build.sh test sets it)';
my $redis_port = $ENV{TEST_NGINX_REDIS_PORT} || 6379;

my $vectors = $ENV{VODLMS_VECTORS_DIR} || "$FindBin::Bin/../../shared/vectors/cloudfront";
-f "$vectors/test_public_key.pem" or die "no CloudFront vectors at $vectors\n";
my $cfkey = private_key("$vectors/test_private_key.pem");
my $pub = "$vectors/test_public_key.pem";

redis_cmd($redis_port, 'SET', 'session:t086-eve', '{"user_id":"8601"}', 'EX', 3600);
redis_cmd($redis_port, 'SET', 'session:t086-mal', '{"user_id":"8602"}', 'EX', 3600);

my $pg = start_pg();
$pg->psql(q{INSERT INTO vodlms.users (id, email, role) VALUES
            ('8601', 't086-eve@example.com', 'student'), ('8602', 't086-mal@example.com', 'student')});
$pg->psql(q{INSERT INTO vodlms.enrollments (user_id, course_id, status) VALUES ('8601', 'course-intro', 'active')});
$pg->psql(q{INSERT INTO vodlms.videos (id, course_id, title, duration_seconds, status, storage_prefix)
            VALUES ('lec-enc', 'course-intro', 'Encrypted lecture', 6, 'ready', 'hls/lec-enc/v1/')});

sub slurp { open my $fh, '<:raw', $_[0] or die "$_[0]: $!"; local $/; <$fh> }
sub spew { open my $fh, '>:raw', $_[0] or die "$_[0]: $!"; print $fh $_[1]; close $fh }

my $port = free_port();
my $eport = free_port();
$eport = free_port() while $eport == $port;
my $base = "http://127.0.0.1:$port";
my $edge = "http://127.0.0.1:$eport";      # the media's host (CloudFront's part)

# ------------------------------------------------------------ the ladder

my $dir = tempdir('vodlms-t086-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $dir;
my $tree = "$dir/origin/hls/lec-enc/v1";
make_path($tree);

# the key: 16 bytes from the kernel's CSPRNG, in a private directory for
# ffmpeg only (the helper's way), and in video_keys for nginx
my $secret = tempdir('vodlms-t086-key-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0700, $secret;
my $key = do { open my $r, '<:raw', '/dev/urandom' or die $!; read $r, my $k, 16; $k };
is(length $key, 16, 'a 16-byte key');
spew("$secret/k0.key", $key);
chmod 0600, "$secret/k0.key";
# key info: the URI written into the playlists, then the key file; no IV
# line, so the IV is the segment's media sequence number (the HLS default)
spew("$secret/keyinfo", "$base/vodlms/keys/lec-enc/v1/0.key\n$secret/k0.key\n");

my @ff = ('ffmpeg', '-hide_banner', '-nostdin', '-loglevel', 'error', '-y');
my $rc = system(@ff, '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=10',
                '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
                '-t', '6', '-filter_complex', '[0:v]split=2[a][b];[b]scale=160:120[c]',
                '-map', '[a]', '-map', '[c]', '-map', '1:a', '-map', '1:a',
                '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '20', '-c:a', 'aac', '-b:a', '64k',
                '-f', 'hls', '-hls_time', '2', '-hls_playlist_type', 'vod',
                '-hls_key_info_file', "$secret/keyinfo",
                '-hls_segment_filename', "$tree/v%v/seg_%03d.ts",
                '-master_pl_name', 'master.m3u8',
                '-var_stream_map', 'v:0,a:0 v:1,a:1', "$tree/v%v/index.m3u8");
is($rc, 0, 'ffmpeg made an encrypted two-rendition ladder');
if (!-f "$tree/master.m3u8") {
    my ($m) = glob("$tree/v*/master.m3u8");
    rename $m, "$tree/master.m3u8" if $m;
}
ok(-f "$tree/master.m3u8", 'the master playlist is at the top of the tree');
my @variants = sort glob("$tree/v*/index.m3u8");
is(scalar @variants, 2, 'two variant playlists');
for my $v (@variants) {
    like(slurp($v), qr{^#EXT-X-KEY:METHOD=AES-128,URI="\Q$base\E/vodlms/keys/lec-enc/v1/0\.key"(?:,IV=0x[0-9a-fA-F]{32})?\r?$}m,
         "$v names the key at the LMS's key location");
}
is(scalar(() = glob("$tree/*.key") ), 0, 'no key file under the media tree');
my @segments = sort glob("$tree/v*/seg_*.ts");
cmp_ok(scalar @segments, '>=', 6, 'segments: ' . scalar @segments);

$pg->psql(sprintf(q{INSERT INTO vodlms.video_keys (video_id, version, key_index, key, first_segment, starts_ms)
                    VALUES ('lec-enc', 'v1', 0, '\x%s', 0, 0)}, unpack('H*', $key)));

# ------------------------------------------------------------ nginx

my $conninfo = $pg->conninfo;
my $nginx = nginx_child(name => 't086', listen => $port, check => 1, http => <<"HTTP");
    types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; }

    vodlms_redis 127.0.0.1:$redis_port;
    vodlms_pg "$conninfo";

    server {
        listen 127.0.0.1:$port;

        vodlms_cloudfront_url $edge;
        vodlms_cloudfront_key K2JCJMDEHXQW5F $cfkey;

        location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\\.key\$" {
            vodlms_auth on;
            vodlms_enrollment_check on;
            vodlms_video_id \$kv;
            vodlms_hls_key \$kver \$kk;
        }

        # the tree as a plain origin: anyone may fetch it, it is ciphertext
        location /hls/ { root $dir/origin; }

        # signed playlists: the manifest URL from vodlms_playback url
        location ~ ^/api/videos/(?<vid>[^/]+)/stream-url\$ {
            vodlms_auth on;
            vodlms_enrollment_check on;
            vodlms_video_id \$vid;
            vodlms_playback url;
        }
    }

    # the media's own host: the self-hosted edge checks the signed URL and
    # signs every URI of each playlist but the key's
    server {
        listen 127.0.0.1:$eport;

        location /hls/ {
            vodlms_edge on;
            vodlms_edge_url $edge;
            vodlms_edge_public_key K2JCJMDEHXQW5F $pub;
            vodlms_hls_sign on;
            root $dir/origin;
        }
    }
HTTP
ok($nginx, 'nginx is up');

my $http = HTTP::Tiny->new(timeout => 10, max_redirect => 0);
my $eve = 'Cookie: session=t086-eve';
my $master = "$base/hls/lec-enc/v1/master.m3u8";

# ------------------------------------------------------------ the key

my $res = $http->get("$base/vodlms/keys/lec-enc/v1/0.key", { headers => { Cookie => 'session=t086-eve' } });
is($res->{status}, 200, 'the key to the enrolled viewer: 200');
ok($res->{content} eq $key, 'the 16 bytes of video_keys');
is($res->{headers}{'cache-control'}, 'no-store', 'Cache-Control: no-store');
$res = $http->get("$base/vodlms/keys/lec-enc/v1/0.key");
is($res->{status}, 401, 'the key without a session: 401');

# ------------------------------------------------------------ ffmpeg, the whole ladder

# frames decoded per video stream of the master (every rendition), or the error
sub count_frames {
    my ($url, @headers) = @_;
    my ($out, $err) = ('', '');
    run(['ffprobe', '-v', 'error', @headers, '-count_frames', '-show_entries',
         'stream=index,codec_type,nb_read_frames', '-of', 'json', $url],
        '>', \$out, '2>', \$err);
    return ($? >> 8, $out, $err);
}

my ($prc, $pout, $perr) = count_frames($master, '-headers', "$eve\r\n");
is($prc, 0, 'ffprobe with the session cookie reads the encrypted master') or diag($perr);
my $doc = eval { JSON::PP::decode_json($pout) } || { streams => [] };
my @video = grep { $_->{codec_type} eq 'video' } @{ $doc->{streams} };
is(scalar @video, 2, 'both renditions');
is(join(',', map { $_->{nb_read_frames} } @video), '60,60',
   'every frame of both renditions decoded (6 s at 10 fps each)');

my ($out, $err) = ('', '');
run([@ff, '-headers', "$eve\r\n", '-i', $master, '-map', '0', '-f', 'null', '-'],
    '>', \$out, '2>', \$err);
is($? >> 8, 0, 'ffmpeg with the session cookie decodes the whole ladder to the end') or diag($err);
is($err, '', '... with no error at all');

run([@ff, '-i', $master, '-map', '0', '-f', 'null', '-'], '>', \$out, '2>', \$err);
isnt($? >> 8, 0, 'ffmpeg without the cookie fails');
like($err, qr{Unable to open key file \Q$base\E/vodlms/keys/lec-enc/v1/0\.key}, '... it could not have the key');
like($nginx->log, qr{no session token in the request, answering 401.*request: "GET /vodlms/keys/lec-enc/v1/0\.key },
     '... which was 401 (no session)');

run([@ff, '-headers', "Cookie: session=t086-mal\r\n", '-i', $master, '-map', '0', '-f', 'null', '-'],
    '>', \$out, '2>', \$err);
isnt($? >> 8, 0, 'ffmpeg of a viewer who is not enrolled fails');
like($err, qr{Unable to open key file}, '... it could not have the key');
like($nginx->log, qr{not enrolled in the video's course: enrollment "none".*answering 403.*request: "GET /vodlms/keys/lec-enc/v1/0\.key },
     '... which was 403 (not enrolled)');

# ------------------------------------------------------------ a segment on its own

$res = $http->get("$base/hls/lec-enc/v1/v0/seg_001.ts");
is($res->{status}, 200, 'a segment fetched directly: 200, from the plain origin');
spew("$dir/seg.ts", $res->{content});
ok(substr($res->{content}, 0, 1) ne "\x47" || substr($res->{content}, 188, 1) ne "\x47",
   'no MPEG-TS sync bytes where they would be');
run(['ffprobe', '-v', 'error', '-f', 'mpegts', '-show_streams', "$dir/seg.ts"], '>', \$out, '2>', \$err);
unlike($out, qr/codec_type=video/, 'ffprobe finds no video in it: ciphertext');

# every segment of both renditions decrypts with the key its playlist names
# and its IV: the EXT-X-KEY's IV attribute, else its media sequence number
# (RFC 8216 5.2); decrypted, it is MPEG-TS from its first byte
my ($segs, $good) = (0, 0);
for my $v (@variants) {
    (my $vdir = $v) =~ s{/index\.m3u8$}{};
    my ($seq, $ivattr, $uri) = (0, undef, undef);
    for my $line (split /\r?\n/, slurp($v)) {
        $seq = $1, next if $line =~ /^#EXT-X-MEDIA-SEQUENCE:(\d+)/;
        if ($line =~ /^#EXT-X-KEY:(.*)$/) {
            my $attrs = $1;
            ($uri) = $attrs =~ /URI="([^"]*)"/;
            ($ivattr) = $attrs =~ /IV=0x([0-9a-fA-F]{32})/;
            next;
        }
        next if $line =~ /^#/ || $line !~ /\S/;
        $segs++;
        my $iv = $ivattr // sprintf('%032x', $seq);
        $seq++;
        my $k = $http->get($uri, { headers => { Cookie => 'session=t086-eve' } });
        next unless $k->{status} == 200 && length $k->{content} == 16;
        run(['openssl', 'enc', '-d', '-aes-128-cbc', '-K', unpack('H*', $k->{content}), '-iv', $iv,
             '-in', "$vdir/$line", '-out', "$dir/plain.ts"], '>', \$out, '2>', \$err);
        next if $? >> 8;
        my $plain = slurp("$dir/plain.ts");
        next unless length $plain && length($plain) % 188 == 0
                    && !grep { substr($plain, $_ * 188, 1) ne "\x47" } 0 .. length($plain) / 188 - 1;
        $good++;
    }
}
cmp_ok($segs, '>=', 6, "segments in the playlists: $segs");
is($good, $segs, 'every one decrypts, with the key its playlist names and its IV, to whole MPEG-TS packets');

# ------------------------------------------------------------ signed playlists

$res = $http->get("$base/api/videos/lec-enc/stream-url", { headers => { Cookie => 'session=t086-eve' } });
is($res->{status}, 200, 'playback (url): 200');
my $info = eval { JSON::PP::decode_json($res->{content}) } || {};
my $murl = $info->{manifestUrl} // '';
like($murl, qr{^\Q$edge\E/hls/lec-enc/v1/master\.m3u8\?Policy=}, 'a signed manifest URL on the media\'s host');
my ($query) = $murl =~ /\?(.*)$/;
$query //= 'none';

$res = $http->get($murl);
is($res->{status}, 200, 'the signed master, no cookie: 200');
my ($v0) = $res->{content} =~ /^(v0\/index\.m3u8\?\S+)$/m;
ok($v0, 'its variants are signed');
$res = $http->get("$edge/hls/lec-enc/v1/" . ($v0 // 'none'));
is($res->{status}, 200, 'a signed variant: 200');
like($res->{content}, qr{^#EXT-X-KEY:METHOD=AES-128,URI="\Q$base\E/vodlms/keys/lec-enc/v1/0\.key"(?:,IV=0x[0-9a-fA-F]{32})?$}m,
     'its key URI is as the helper wrote it: unsigned, at the LMS\'s host');
like($res->{content}, qr{^seg_000\.ts\?\Q$query\E$}m, 'its segments carry the signature');

run([@ff, '-headers', "$eve\r\n", '-i', $murl, '-map', '0', '-f', 'null', '-'], '>', \$out, '2>', \$err);
is($? >> 8, 0, 'ffmpeg plays the signed, encrypted lecture with the session cookie for the key')
    or diag($err);
run([@ff, '-i', $murl, '-map', '0', '-f', 'null', '-'], '>', \$out, '2>', \$err);
isnt($? >> 8, 0, 'the signed manifest URL alone (no session) cannot decrypt it');
like($err, qr{Unable to open key file \Q$base\E/vodlms/keys/}, '... it could not have the key');

# ------------------------------------------------------------ the log

my $log = $nginx->log;
like($log, qr/key served: user "8601" video "lec-enc" version "v1" key 0 \(from the database\), answering 200/,
     'each key fetch is logged with the user, the video, the version and the key');
unlike($log, qr/\[(?:alert|crit|emerg)\]/, 'no alert, crit or emerg in the log');

$nginx->stop;
done_testing();
