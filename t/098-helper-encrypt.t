#!/usr/bin/perl

# Encrypted HLS, the helper's side (issue #22): vodlms-helper with
# encrypt = on against a private Redis and PostgreSQL and the real ffmpeg.
#
#   1. the settings (encrypt, key_rotation, key_uri_base) and their errors;
#   2. encrypt = off: the ladder as before, no key anywhere;
#   3. one key per version (FFmpeg's HLS muxer encrypts): every segment of
#      every rendition is ciphertext (ffprobe cannot read it), decrypts with
#      the key of video_keys and the IV its playlist names into the MPEG-TS an
#      unencrypted encode starts with; ffmpeg as an HLS client, given the keys
#      by a small HTTP server of this test, decodes every frame of the ladder
#      (and fails without the keys); ffmpeg's key info file and key file were
#      0600 in a 0700 directory outside the origin, and are gone;
#   4. key_rotation = 2: a key per two segments, each segment under the key
#      whose first_segment covers it, all decrypting, the whole ladder read;
#   5. no file on the origin holds a key's bytes or is a key file;
#   6. the old version's key rows go with it (old_version_grace), done by a
#      role with only the grants docs/security.md lists for the helper.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Find;
use IO::Socket::INET;
use POSIX qw(:sys_wait_h);
use Test::More;
use Time::HiRes qw(sleep time);

use VodlmsTest;
use VodlmsHLS qw(media_segments decrypt_segment);
use VodlmsHelperTest qw(slurp sq make_clip insert_video xadd_job track run_idle video_row write_helper_conf);

my $T0 = time;
my %env = helper_env(name => 'encrypt', ports => 29000, tools => [qw(ffmpeg ffprobe openssl)]);
my ($bin, $tmp, $src, $origin, $redis, $pg) = @env{qw(bin tmp src origin redis pg)};
my ($FFMPEG, $FFPROBE, $OPENSSL) = @env{qw(ffmpeg ffprobe openssl)};

my $STREAM = 'vodlms:transcode';
my $VERSION = qr/\d{8}T\d{6}Z-[0-9a-f]{8}/;
my $SEG = 2;                # segment_duration
my $SECONDS = 9;            # the source: 5 segments of 2, 2, 2, 2, 1 s
my $FPS = 25;
my @RUNGS = qw(240p 360p);

# the helper's $TMPDIR: where its private key directories are made
my $ktmp = "$tmp/ktmp";
mkdir $ktmp or die $!;

write_helper_conf("$tmp/helper.conf", redis => $redis, conninfo => $pg->conninfo, origin => $origin,
                  settings => [ segment_duration => $SEG, ladder => '240p:300k, 360p:500k', max_attempts => 1,
                                old_version_grace => 3600 ]);

#---------------------------------------------------------------------------
# helpers
#---------------------------------------------------------------------------

my $source = make_clip("$src/lecture.mp4", size => '640x360', rate => $FPS, duration => $SECONDS);

sub add_video {
    my $id = shift;
    insert_video($pg, $id, source => $source);
    add_job($id);
}

sub add_job { xadd_job($redis, $_[0], $source) }

sub video { video_row($pg, $_[0], qw(status prefix error)) }

# video_keys of one video: [version, key_index, key (bytes), first_segment, starts_ms]
sub keys_of {
    my $id = shift;
    my $out = $pg->psql("SELECT version || '|' || key_index || '|' || encode(key, 'hex')"
        . " || '|' || first_segment || '|' || starts_ms FROM vodlms.video_keys"
        . " WHERE video_id = " . sq($id) . " ORDER BY version, key_index");
    return [ map { my @f = split /\|/; $f[2] = pack('H*', $f[2]); \@f } grep { length } split /\n/, $out ];
}

sub run_helper {
    my ($name, %o) = @_;
    return run_idle(name => $name, bin => $bin, config => "$tmp/helper.conf", log => "$tmp/$name.log",
                    env => { TMPDIR => $ktmp }, args => $o{args}, timeout => 120);
}

sub check_config {
    my @args = @_;
    my $out = `'$bin' --check-config @args 2>&1`;
    return ($? >> 8, $out);
}


sub ts_valid {
    my $bytes = shift;
    return 0 if !length($bytes) || length($bytes) % 188;
    for (my $i = 0; $i < length $bytes; $i += 188) {
        return 0 if substr($bytes, $i, 1) ne "\x47";
    }
    return 1;
}

# ffprobe reads it as MPEG-TS, with streams (random bytes may pass for another format)
sub ffprobe_ok {
    my $file = shift;
    my $out = `'$FFPROBE' -v error -f mpegts -show_entries stream=codec_type -of csv=p=0 '$file' 2>/dev/null`;
    return $? == 0 && $out =~ /^(video|audio)/m;
}

# openssl enc -d with the key and the IV; the plaintext or undef
sub decrypt {
    my ($file, $key, $iv) = @_;
    my $out = "$tmp/decrypted.ts";
    return decrypt_segment($OPENSSL, $file, $key, $iv, $out) ? slurp($out) : undef;
}

# every file under a directory
sub files_under {
    my $dir = shift;
    my @f;
    find({ wanted => sub { push @f, $File::Find::name if -f $_ }, no_chdir => 1 }, $dir)
        if -d $dir;
    return @f;
}

#---------------------------------------------------------------------------
# the key server: /hls/... from the origin, /vodlms/keys/<id>/<version>/<k>.key
# from video_keys (what nginx's vodlms_hls_key does, without its checks)
#---------------------------------------------------------------------------

my $keylog = "$tmp/keys.log";
my $KPORT = $env{pick_port}->();
my $ksock = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $KPORT,
                                  Proto => 'tcp', Listen => 32, ReuseAddr => 1)
    or die "key server: $!";
my $kpid = fork // die "fork: $!";
if ($kpid == 0) {
    while (my $c = $ksock->accept) {
        my $req = <$c> // '';
        while (my $h = <$c>) { last if $h =~ /^\r?\n$/ }
        my ($path) = $req =~ m{^GET (\S+) HTTP};
        my ($status, $body, $ct) = (404, "not found\n", 'text/plain');
        if (defined $path && $path =~ m{^/vodlms/keys/([A-Za-z0-9_-]+)/([A-Za-z0-9_.-]+)/(\d+)\.key$}) {
            my ($id, $ver, $k) = ($1, $2, $3);
            my $deny = -e "$tmp/deny-keys";
            my $hex = $deny ? '' : $pg->psql("SELECT encode(key, 'hex') FROM vodlms.video_keys"
                . " WHERE video_id = " . sq($id) . " AND version = " . sq($ver)
                . " AND key_index = $k");
            ($status, $body, $ct) = $deny ? (401, "no session\n", 'text/plain')
                                  : length $hex ? (200, pack('H*', $hex), 'application/octet-stream')
                                  : (404, "no key\n", 'text/plain');
            if (open my $l, '>>', $keylog) { print $l "$id $ver $k $status\n"; close $l }
        } elsif (defined $path && $path =~ m{^/(hls/[A-Za-z0-9_./-]+)$} && $path !~ /\.\./) {
            my $data = slurp("$origin/$1");
            ($status, $body, $ct) = (200, $data, 'application/octet-stream') if defined $data;
        }
        print $c "HTTP/1.0 $status X\r\nContent-Type: $ct\r\nContent-Length: "
            . length($body) . "\r\nConnection: close\r\n\r\n$body";
        close $c;
    }
    POSIX::_exit(0);
}
track($kpid);
close $ksock;

# ffmpeg as a native HLS client of the whole ladder: (exit status, frames per
# video stream, stderr)
sub play_ladder {
    my ($prefix) = @_;
    my $url = "http://127.0.0.1:$KPORT/${prefix}master.m3u8";
    my $out = "$tmp/play.framemd5";
    unlink $out;
    my $err = `'$FFMPEG' -hide_banner -nostdin -loglevel error -xerror -i '$url' -map 0:v -map 0:a -f framemd5 '$out' 2>&1`;
    my $rc = $? >> 8;
    my %frames;
    for (split /\n/, slurp($out) // '') {
        $frames{$1}++ if /^(\d+),/;
    }
    return ($rc, \%frames, $err);
}

my %PLAIN_HEAD;     # rung/segment -> the first 16 bytes of the unencrypted encode

# what a viewer of an encrypted version gets: every segment checked
sub check_encrypted {
    my ($id, $v, $keys, $rotation) = @_;
    my ($ver) = $v->{prefix} =~ m{^hls/\Q$id\E/($VERSION)/$};
    my %key_by_index = map { $_->[1] => $_ } @$keys;
    my ($segments, $cipher, $decrypts, $same_head, $right_key, $iv_is_seq) = (0, 0, 0, 0, 0, 0);
    my %keys_named;
    for my $rung (@RUNGS) {
        my $text = slurp("$origin/$v->{prefix}$rung/index.m3u8") // '';
        my @segs = media_segments($text);
        is(scalar @segs, 5, "$id $rung: 5 segments");
        for my $s (@segs) {
            my ($name, $seq, $uri, $iv) = @$s;
            my $file = "$origin/$v->{prefix}$rung/$name";
            $segments++;
            my ($k) = ($uri // '') =~ m{^/vodlms/keys/\Q$id\E/\Q$ver\E/(\d+)\.key$};
            unless (defined $k && $key_by_index{$k}) {
                diag("$rung/$name: key URI " . ($uri // 'none'));
                next;
            }
            $keys_named{$k}++;
            # the key whose period covers the segment, by video_keys.first_segment
            my ($cover) = grep { $_->[3] <= $seq } reverse @$keys;
            $right_key++ if $cover && $cover->[1] == $k;
            my $bytes = slurp($file);
            $cipher++ if !ts_valid($bytes) && !ffprobe_ok($file);
            # the IV the playlist implies: its IV attribute, else the sequence number
            my $ivhex = $iv // sprintf('%032x', $seq);
            $iv_is_seq++ if lc $ivhex eq sprintf('%032x', $seq);
            my $plain = decrypt($file, $key_by_index{$k}[2], $ivhex);
            if (defined $plain && ts_valid($plain)) {
                my $pf = "$tmp/decrypted.ts";
                $decrypts++ if ffprobe_ok($pf);
                $same_head++ if substr($plain, 0, 16) eq ($PLAIN_HEAD{"$rung/$name"} // '');
            } else {
                diag("$rung/$name: does not decrypt to MPEG-TS with key $k and IV $ivhex");
            }
        }
    }
    my $n = 5 * @RUNGS;
    is($segments, $n, "$id: $n segments in " . @RUNGS . " renditions, each under a key URI"
       . " <key_uri_base>/$id/<version>/<k>.key of its version");
    is($cipher, $n, "$id: every segment on the origin is ciphertext (no MPEG-TS sync bytes,"
       . " ffprobe -f mpegts finds no stream in it)");
    is($decrypts, $n, "$id: every segment decrypts (openssl enc -d -aes-128-cbc, its key from"
       . " video_keys, its IV) to MPEG-TS that ffprobe reads");
    is($same_head, $n, "$id: ... starting with the bytes an unencrypted encode starts with"
       . " (a wrong IV would change the first block)");
    is($iv_is_seq, $n, "$id: each segment's IV is its media sequence number");
    is($right_key, $n, "$id: each segment's key is the one whose first_segment covers it");
    is_deeply([sort { $a <=> $b } keys %keys_named], [map { $_->[1] } @$keys],
              "$id: the playlists name every key of video_keys, and no other");
    return $ver;
}

# no file on the origin holds a key's bytes, or is named like a key file
sub check_no_key_published {
    my ($what, $dir, @keys) = @_;
    my ($files, @bad) = (0);
    for my $f (files_under($dir)) {
        $files++;
        push @bad, "$f (name)" if $f =~ /\.key(info)?$/i;
        my $data = slurp($f) // '';
        for my $k (@keys) {
            push @bad, "$f (holds a key)" if index($data, $k) >= 0;
        }
    }
    ok($files > 0 && !@bad, "$what: none of the $files files holds a key or is a key file")
        or diag(join "\n", @bad);
}

#---------------------------------------------------------------------------
# 1. the settings
#---------------------------------------------------------------------------

{
    my ($rc, $out) = check_config();
    is($rc, 0, 'the default configuration is accepted');
    like($out, qr/^encrypt = off$/m, '... encrypt = off by default') or diag($out);

    ($rc, $out) = check_config('--encrypt', 'on');
    like($out, qr{^encrypt = on: AES-128, one key per version, key URIs /vodlms/keys/<id>/<version>/<k>\.key$}m,
         'encrypt = on: one key per version, key_uri_base /vodlms/keys') or diag($out);

    ($rc, $out) = check_config('--encrypt', 'on', '--key-rotation', '10', '--key-uri-base',
                               'https://lms.example.com/vodlms/keys//');
    is($rc, 0, 'key_rotation 10 and an https key_uri_base are accepted');
    like($out, qr{key URIs https://lms\.example\.com/vodlms/keys/<id>/<version>/<k>\.key$}m,
         '... the trailing slashes dropped') or diag($out);
    like($out, qr/^key_rotation = 10$/m, '... key_rotation printed');

    my @bad = (
        [ [ '--encrypt', 'maybe' ], qr/"encrypt" must be on or off, not "maybe"/ ],
        [ [ '--key-rotation', '-1' ], qr/"key_rotation" must be an integer in 0\.\.1e\+06, not "-1"/ ],
        [ [ '--key-rotation', 'ten' ], qr/"key_rotation" must be an integer/ ],
        [ [ '--key-uri-base', 'vodlms/keys' ], qr/"key_uri_base" must be an absolute path/ ],
        [ [ '--key-uri-base', '/' ], qr/"key_uri_base" must be an absolute path.*not \/, not "\/"/ ],
        [ [ '--key-uri-base', 'https://lms.example.com' ], qr/"key_uri_base" must be an absolute path/ ],
        [ [ '--key-uri-base', 'ftp://lms.example.com/k' ], qr/"key_uri_base" must be an absolute path/ ],
        [ [ '--key-uri-base', 'http://lms.example.com/vodlms/keys' ], qr/"key_uri_base" .*http:\/\/ key URI sends the key in cleartext/ ],
        [ [ '--key-uri-base', "'/keys\"x'" ], qr/"key_uri_base" .*no quote, space/ ],
        [ [ '--key-uri-base', "'/keys?a=1'" ], qr/"key_uri_base" .*no quote, space, \? or #/ ],
        [ [ '--key-uri-base', "'/keys x'" ], qr/"key_uri_base" .*no quote, space/ ],
    );
    for my $b (@bad) {
        my ($brc, $bout) = check_config(@{ $b->[0] });
        is($brc, 2, "refused: @{ $b->[0] }");
        like($bout, $b->[1], '... with a message naming the key and the rule') or diag($bout);
    }

    # encrypt = on without migration 0011: the helper says so and stops
    $pg->psql('ALTER TABLE vodlms.video_keys RENAME TO video_keys_away');
    my $log = "$tmp/no-table.log";
    my $out2 = `TMPDIR='$ktmp' '$bin' --config '$tmp/helper.conf' --exit-when-idle --encrypt on 2>&1`;
    my $rc2 = $? >> 8;
    $pg->psql('ALTER TABLE vodlms.video_keys_away RENAME TO video_keys');
    is($rc2, 1, 'encrypt = on without the table video_keys: the helper exits 1');
    like($out2, qr{encrypt = on needs the table video_keys in schema "vodlms": apply sql/migrations/0011_video_keys\.sql},
         '... naming the migration to apply') or diag($out2);
}

#---------------------------------------------------------------------------
# 2. encrypt = off: as before
#---------------------------------------------------------------------------

add_video('plain1');
run_helper('plain');
my $vp = video('plain1');
is($vp->{status}, 'ready', 'plain1: ready') or diag($vp->{error});
{
    my ($segs, $ts) = (0, 0);
    for my $rung (@RUNGS) {
        my $text = slurp("$origin/$vp->{prefix}$rung/index.m3u8") // '';
        unlike($text, qr/EXT-X-KEY/, "plain1 $rung: no EXT-X-KEY");
        for my $s (media_segments($text)) {
            my $file = "$origin/$vp->{prefix}$rung/$s->[0]";
            my $bytes = slurp($file);
            $segs++;
            $ts++ if ts_valid($bytes) && ffprobe_ok($file);
            $PLAIN_HEAD{"$rung/$s->[0]"} = substr($bytes, 0, 16);
        }
    }
    is($ts, 10, 'plain1: every segment is MPEG-TS on the origin (10)');
    is_deeply(keys_of('plain1'), [], 'plain1: no row in video_keys');
    my ($rc, $frames) = play_ladder($vp->{prefix});
    is($rc, 0, 'plain1: ffmpeg reads the whole ladder');
}

#---------------------------------------------------------------------------
# 3. one key per version, encrypted by FFmpeg's muxer
#---------------------------------------------------------------------------

# an ffmpeg that notes the key info file it is given, then runs the real one
my $wrap = "$tmp/wrap-ffmpeg";
my $seen = "$tmp/keyinfo-seen.txt";
open my $w, '>', $wrap or die $!;
print $w <<"SH";
#!/bin/sh
prev=
for a in "\$@"; do
    if [ "\$prev" = "-hls_key_info_file" ]; then
        dir=\$(dirname "\$a")
        keyfile=\$(sed -n 2p "\$a")
        {
            echo "info \$(stat -c %a "\$a") \$a"
            echo "dir \$(stat -c %a "\$dir") \$dir"
            echo "key \$(stat -c %a "\$keyfile") \$(stat -c %s "\$keyfile") \$keyfile"
            echo "uri \$(sed -n 1p "\$a")"
            echo "lines \$(wc -l < "\$a")"
        } >> '$seen'
    fi
    prev=\$a
done
exec '$FFMPEG' "\$@"
SH
close $w;
chmod 0755, $wrap;

add_video('enc1');
my $log1 = run_helper('enc1', args => [ '--encrypt', 'on', '--ffmpeg', $wrap ]);
my $v1 = video('enc1');
is($v1->{status}, 'ready', 'enc1: ready') or diag($v1->{error}, $log1);
like($v1->{prefix}, qr{^hls/enc1/$VERSION/$}, 'enc1: storage_prefix hls/enc1/<version>/');
my $k1 = keys_of('enc1');
my ($ver1) = $v1->{prefix} =~ m{/($VERSION)/};
is(scalar @$k1, 1, 'enc1: one key in video_keys');
is_deeply([ map { [ @$_[0, 1, 3, 4] ] } @$k1 ], [ [ $ver1, 0, 0, 0 ] ],
          'enc1: key 0 of the version, first_segment 0, starts_ms 0');
is(length $k1->[0][2], 16, 'enc1: 16 bytes');
check_encrypted('enc1', $v1, $k1, 0);
{
    my $pl = slurp("$origin/$v1->{prefix}240p/index.m3u8");
    like($pl, qr{^#EXT-X-KEY:METHOD=AES-128,URI="/vodlms/keys/enc1/$ver1/0\.key",IV=0x0{32}\n#EXTINF}m,
         'enc1: EXT-X-KEY with METHOD=AES-128, the key URI and the IV before the first segment');

    my $s = slurp($seen) // '';
    like($s, qr{^info 600 \Q$ktmp\E/vodlms-keys-\w+/0\.keyinfo$}m,
         "ffmpeg's key info file: 0600, in a private directory under \$TMPDIR") or diag($s);
    like($s, qr{^dir 700 }m, '... the directory 0700');
    like($s, qr{^key 600 16 \Q$ktmp\E/vodlms-keys-\w+/0\.key$}m, '... the key file 0600, 16 bytes');
    like($s, qr{^uri /vodlms/keys/enc1/$ver1/0\.key$}m, '... the key URI of the version');
    like($s, qr{^lines 2$}m, '... two lines: no IV (the muxer uses the sequence number)');
    my @left = glob("$ktmp/*");
    is_deeply(\@left, [], 'the private key directory is removed after the job');

    my ($rc, $frames, $err) = play_ladder($v1->{prefix});
    is($rc, 0, 'enc1: ffmpeg as an HLS client reads the whole encrypted ladder') or diag($err);
    my @v = grep { $frames->{$_} } sort keys %$frames;
    ok(@v >= 3, 'enc1: frames of video and audio streams of both renditions') or diag(explain $frames);
    my $log = slurp($keylog) // '';
    like($log, qr{^enc1 \Q$ver1\E 0 200$}m, '... after fetching key 0 from the key server');

    # without the key, nothing plays
    open my $d, '>', "$tmp/deny-keys" or die $!;
    close $d;
    ($rc, $frames, $err) = play_ladder($v1->{prefix});
    unlink "$tmp/deny-keys";
    isnt($rc, 0, 'enc1: with the key refused (401), ffmpeg fails') or diag($err);
}

#---------------------------------------------------------------------------
# 4. key_rotation = 2: a key per two segments
#---------------------------------------------------------------------------

add_video('rot1');
my $logr = run_helper('rot', args => [ '--encrypt', 'on', '--key-rotation', '2' ]);
my $vr = video('rot1');
is($vr->{status}, 'ready', 'rot1: ready') or diag($vr->{error}, $logr);
my $kr = keys_of('rot1');
my ($verr) = $vr->{prefix} =~ m{/($VERSION)/};
is_deeply([ map { [ @$_[0, 1, 3, 4] ] } @$kr ],
          [ [ $verr, 0, 0, 0 ], [ $verr, 1, 2, 4000 ], [ $verr, 2, 4, 8000 ] ],
          'rot1: keys 0, 1, 2 from the segments 0, 2, 4 (0, 4, 8 s into the lecture)');
my %distinct = map { $_->[2] => 1 } @$kr;
is(scalar keys %distinct, 3, 'rot1: three different keys');
check_encrypted('rot1', $vr, $kr, 2);
{
    my ($rc, $frames, $err) = play_ladder($vr->{prefix});
    is($rc, 0, 'rot1: ffmpeg as an HLS client reads the whole ladder across the key changes')
        or diag($err);
    my $log = slurp($keylog) // '';
    my %got = map { $_ => 1 } $log =~ m{^rot1 \Q$verr\E (\d+) 200$}mg;
    is_deeply([ sort keys %got ], [ 0, 1, 2 ], '... fetching keys 0, 1 and 2');
    ok(!grep({ m{/\.plain} } files_under($origin)), 'rot1: no plain copy left in the work directory');
    is_deeply([ glob("$ktmp/*") ], [], 'rot1: the private key directory is removed');
}

#---------------------------------------------------------------------------
# 5. nothing key-like on the origin
#---------------------------------------------------------------------------

check_no_key_published('the local origin', $origin, map { $_->[2] } @$k1, @$kr);

#---------------------------------------------------------------------------
# 6. a re-encode: the old version goes after old_version_grace, its keys too
#---------------------------------------------------------------------------

# ... run as a role with only the grants docs/security.md lists for the helper
{
    my $doc = slurp("$FindBin::Bin/../docs/security.md");
    my ($sql) = $doc =~ /```sql\n(-- PostgreSQL: vodlms's own schema.*?)```/s;
    my @grants = grep { /\bvodlms_helper\b/ } map { s/--[^\n]*//gr } split /;/, $sql // '';
    ok(@grants >= 4, 'the helper\'s grants in docs/security.md: ' . scalar @grants);
    $pg->psql('CREATE ROLE vodlms_nginx; CREATE ROLE vodlms_helper LOGIN');
    $pg->psql($_) for @grants;
}
add_job('enc1');
my $log2 = run_helper('enc1-again', args => [ '--encrypt', 'on', '--old-version-grace', '0',
                                              '--pg-conninfo', $pg->conninfo =~ s/user=postgres/user=vodlms_helper/r ]);
my $v2 = video('enc1');
my ($ver2) = $v2->{prefix} =~ m{/($VERSION)/};
ok($v2->{status} eq 'ready' && $ver2 && $ver2 ne $ver1, 'enc1 again: ready under a new version')
    or diag($log2);
ok(!-e "$origin/$v1->{prefix}", 'enc1: the old version is removed (old_version_grace = 0)')
    or diag($log2);
my $k2 = keys_of('enc1');
is_deeply([ map { [ @$_[0, 1] ] } @$k2 ], [ [ $ver2, 0 ] ],
          'enc1: video_keys holds the new version\'s key only');
ok($k2->[0][2] ne $k1->[0][2], 'enc1: a new key for the new version');
like($log2, qr{video enc1: deleted the 1 key\(s\) of the old version hls/enc1/\Q$ver1\E/},
     'enc1: the deletion is logged');
check_encrypted('enc1', $v2, $k2, 0);
is_deeply(keys_of('rot1'), $kr, 'rot1: its keys untouched');

diag(sprintf "t/098-helper-encrypt.t: %.1f s", time - $T0);
done_testing();
