#!/usr/bin/perl

# Accessible lectures, the helper's side (issue #23): the audio-only
# rendition and the preview thumbnails, made by the ladder's one ffmpeg,
# against a private Redis and PostgreSQL and the real ffmpeg.
#
#   1. the settings (audio_only, audio_only_bitrate, thumbnails,
#      storyboard_*) and their errors at start;
#   2. defaults: the master lists the video rungs and an audio-only variant
#      (CODECS="mp4a.40.2", no RESOLUTION), as an independent parser
#      (video.js's m3u8-parser) reads it; the audio-only segments hold one
#      AAC stream and no video, at about audio_only_bitrate, for the whole
#      duration; the poster is a JPEG; the storyboard track's cues cover the
#      duration, each naming its sheet and tile; each tile is the frame ffmpeg
#      extracts at its cue's start (and clearly not the frame of another time);
#   3. encrypt = on (one key, and key_rotation): the audio-only playlist
#      carries EXT-X-KEY lines like the rungs, its segments are ciphertext
#      that decrypts with video_keys' key to the AAC stream; the thumbnails
#      are plain JPEG and WebVTT (not protected by the key: docs/security.md);
#   4. audio_only = off, thumbnails = off: the ladder alone, as before.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP qw(decode_json);
use POSIX qw(:sys_wait_h ceil);
use Test::More;
use Time::HiRes qw(sleep time);

use VodlmsTest;
use VodlmsHLS qw(media_segments decrypt_segment);
use VodlmsHelperTest qw(slurp sq make_clip insert_video xadd_job run_idle video_row write_helper_conf);

my %env = helper_env(name => 'preview', ports => 26000, tools => [qw(ffmpeg ffprobe openssl node)]);
my ($bin, $tmp, $src, $origin, $redis, $pg, $repo) = @env{qw(bin tmp src origin redis pg repo)};
my ($FFMPEG, $FFPROBE, $OPENSSL) = @env{qw(ffmpeg ffprobe openssl)};
my $parser = "$repo/t/fixtures/hls-parser";
unless (-f "$parser/node_modules/m3u8-parser/package.json") {
    fail("$parser/node_modules/m3u8-parser is missing (./build.sh deps)");
    done_testing();
    exit 1;
}

my $STREAM = 'vodlms:transcode';
my $VERSION = qr/\d{8}T\d{6}Z-[0-9a-f]{8}/;
my $SEG = 2;                # segment_duration
my $SECONDS = 21;
my $FPS = 25;
my $EVERY = 2;              # storyboard_interval
my ($TW, $TH) = (160, 90);  # storyboard_width, and 16:9
my ($COLS, $ROWS) = (4, 2); # 8 tiles a sheet: 11 tiles, a full sheet and a partial one
my @RUNGS = qw(240p 360p);

sub write_conf {
    my (%extra) = @_;
    write_helper_conf("$tmp/helper.conf", redis => $redis, conninfo => $pg->conninfo, origin => $origin,
                      settings => [ segment_duration => $SEG, ladder => '240p:300k, 360p:500k',
                                    audio_bitrate => '128k', storyboard_interval => $EVERY,
                                    storyboard_width => $TW, storyboard_columns => $COLS,
                                    storyboard_rows => $ROWS, max_attempts => 1,
                                    map { $_ => $extra{$_} } sort keys %extra ]);
}

# the source: testsrc2 whose hues turn a full circle every 8 s, so that a
# frame differs clearly from the frame a second away
my $source = make_clip("$src/lecture.mp4", size => '640x360', rate => $FPS, duration => $SECONDS,
                       filter => ',hue=H=2*PI*t/8');

sub add_video {
    my $id = shift;
    insert_video($pg, $id, source => $source);
    xadd_job($redis, $id, $source);
}

sub video { video_row($pg, $_[0], qw(status prefix duration renditions error)) }

sub keys_of {
    my $id = shift;
    my $out = $pg->psql("SELECT key_index || '|' || encode(key, 'hex') || '|' || first_segment"
        . " FROM vodlms.video_keys WHERE video_id = " . sq($id) . " ORDER BY version, key_index");
    return { map { my @f = split /\|/; ($f[0] => pack('H*', $f[1])) } grep { length } split /\n/, $out };
}

sub run_helper {
    my ($name) = @_;
    return run_idle(name => $name, bin => $bin, config => "$tmp/helper.conf",
                    log => "$tmp/$name.log", timeout => 180);
}

sub check_config {
    my @args = @_;
    my $out = `'$bin' --config '$tmp/helper.conf' --check-config @args 2>&1`;
    return ($? >> 8, $out);
}


sub decrypt { decrypt_segment($OPENSSL, @_) }

# the segments of a rendition, one after the other (MPEG-TS concatenates)
sub join_files {
    my ($out, @files) = @_;
    open my $o, '>:raw', $out or die $!;
    print $o slurp($_) // '' for @files;
    close $o;
}

# ffprobe's streams of a file: [codec_type, codec_name, bit_rate]
sub streams_of {
    my ($file, @fmt) = @_;
    my $out = `'$FFPROBE' -v error @fmt -show_entries stream=codec_type,codec_name,bit_rate -of json '$file' 2>/dev/null`;
    my $j = eval { decode_json($out) } || {};
    return [ map { [ @$_{qw(codec_type codec_name bit_rate)} ] } @{ $j->{streams} || [] } ];
}

sub duration_of {
    my ($file, @fmt) = @_;
    my $d = `'$FFPROBE' -v error @fmt -show_entries format=duration -of csv=p=0 '$file' 2>/dev/null`;
    chomp $d;
    return $d;
}

# 32x18 RGB bytes of a picture: a tile cropped from a sheet, or a frame of the source at t
sub tile_rgb {
    my ($sheet, $x, $y, $w, $h) = @_;
    return scalar `'$FFMPEG' -v error -i '$sheet' -vf crop=$w:$h:$x:$y,scale=32:18 -f rawvideo -pix_fmt rgb24 - 2>/dev/null`;
}

sub frame_rgb {
    my ($t) = @_;
    return scalar `'$FFMPEG' -v error -ss $t -i '$source' -frames:v 1 -vf scale=$TW:$TH,scale=32:18 -f rawvideo -pix_fmt rgb24 - 2>/dev/null`;
}

sub mad {
    my ($a, $b) = @_;
    return 255 if !length $a || length $a != length $b;
    my $s = 0;
    $s += abs(ord(substr($a, $_, 1)) - ord(substr($b, $_, 1))) for 0 .. length($a) - 1;
    return $s / length $a;
}

sub vtt_time {
    my ($h, $m, $s) = split /:/, shift;
    return $h * 3600 + $m * 60 + $s;
}

# the storyboard track: [from, to, sheet, x, y, w, h] per cue, or undef if malformed
sub storyboard_cues {
    my $text = shift // '';
    return undef unless $text =~ s/\AWEBVTT\r?\n//;
    my @cues;
    for my $block (grep { /\S/ } split /\r?\n\r?\n/, $text) {
        $block =~ s/\A\s+//;
        my ($from, $to, $ref) = $block
            =~ /\A(\d\d:\d\d:\d\d\.\d{3}) --> (\d\d:\d\d:\d\d\.\d{3})\r?\n(\S+)\s*\z/
            or return undef;
        my ($sheet, @xywh) = $ref =~ /\A(sprite_\d{3}\.jpg)#xywh=(\d+),(\d+),(\d+),(\d+)\z/
            or return undef;
        push @cues, [ vtt_time($from), vtt_time($to), $sheet, @xywh ];
    }
    return \@cues;
}

#---------------------------------------------------------------------------
# 1. settings
#---------------------------------------------------------------------------

write_conf();
{
    my ($rc, $out) = check_config();
    is($rc, 0, 'check-config: defaults accepted') or diag($out);
    like($out, qr/^audio_only = on \(64000 bit\/s\)$/m, 'audio_only on at 64k by default');
    like($out, qr/^thumbnails = on: a 4x2-tile sprite sheet, a 160 px tile every 2 s$/m,
         'thumbnails on, with the configured storyboard');
    ($rc, $out) = check_config('--storyboard-interval', '0');
    isnt($rc, 0, 'storyboard_interval = 0: refused at start');
    like($out, qr/storyboard_interval/, '... naming the setting');
    ($rc, $out) = check_config('--storyboard-width', '640', '--storyboard-columns', '20');
    isnt($rc, 0, 'sprite sheets 12800 px wide: refused');
    like($out, qr/sprite sheet would be 12800 pixels wide/, '... saying why');
    ($rc, $out) = check_config('--audio-only-bitrate', '8k');
    isnt($rc, 0, 'audio_only_bitrate = 8k: refused (below 16k)');
    ($rc, $out) = check_config('--thumbnails', 'maybe');
    isnt($rc, 0, 'thumbnails = maybe: refused (on or off)');
    ($rc, $out) = check_config('--thumbnails', 'off', '--audio-only', 'off');
    like($out, qr/^audio_only = off$/m, 'audio_only = off accepted');
    like($out, qr/^thumbnails = off$/m, 'thumbnails = off accepted');
}

#---------------------------------------------------------------------------
# 2. defaults: audio only and the storyboard
#---------------------------------------------------------------------------

add_video('pre1');
my $log = run_helper('pre1');
my $v = video('pre1');
is($v->{status}, 'ready', 'pre1: ready') or diag($v->{error});
like($log, qr/video pre1 ready: 2 rung\(s\) \+ audio only \+ storyboard/,
     'pre1: the log line names the audio-only rendition and the storyboard');
my $dir = "$origin/$v->{prefix}";

# the master, as an independent parser reads it
my $json = `node '$parser/variants.js' '${dir}master.m3u8' 2>&1`;
my $variants = eval { decode_json($json) };
ok($variants, 'pre1: m3u8-parser reads the master') or diag($json);
$variants ||= [];
is(scalar @$variants, 3, 'pre1: three variants: two rungs and audio only');
my ($audio) = grep { $_->{uri} eq 'audio/index.m3u8' } @$variants;
ok($audio, 'pre1: the audio-only variant is audio/index.m3u8');
$audio ||= { attributes => {} };
is($audio->{attributes}{CODECS}, 'mp4a.40.2', 'pre1: its CODECS is AAC-LC only');
ok(!exists $audio->{attributes}{RESOLUTION} && !exists $audio->{attributes}{'FRAME-RATE'},
   'pre1: no RESOLUTION, no FRAME-RATE');
my @video = grep { $_->{uri} ne 'audio/index.m3u8' } @$variants;
is_deeply([ map { $_->{attributes}{CODECS} =~ /^avc1\.[0-9a-f]{6},mp4a\.40\.2$/ ? 1 : 0 } @video ],
          [1, 1], 'pre1: the rungs keep video + audio');
my ($lowest) = sort { $a <=> $b } map { $_->{attributes}{BANDWIDTH} } @video;
ok(($audio->{attributes}{BANDWIDTH} // 1e9) < $lowest / 2,
   "pre1: audio only ($audio->{attributes}{BANDWIDTH} bit/s) well below the lowest rung ($lowest)");
my $rend = eval { decode_json($v->{renditions}) } || [];
is_deeply([ map { $_->{name} } @$rend ], [ @RUNGS, 'audio' ],
          'pre1: videos.renditions lists the rungs, then audio');

# the audio-only segments: one AAC stream, no video, ~64 kbit/s, the whole duration
my @aseg = media_segments(slurp("${dir}audio/index.m3u8") // '');
ok(@aseg >= 10, 'pre1: audio only has ' . scalar(@aseg) . ' segments');
my ($one_aac, $n) = (0, 0);
for my $s (@aseg) {
    my $st = streams_of("${dir}audio/$s->[0]");
    $one_aac++ if @$st == 1 && $st->[0][0] eq 'audio' && $st->[0][1] eq 'aac';
}
is($one_aac, scalar @aseg, 'pre1: every audio-only segment holds one AAC stream and nothing else');
join_files("$tmp/audio.ts", map { "${dir}audio/$_->[0]" } @aseg);
my $st = streams_of("$tmp/audio.ts");
my $rate = $st->[0][2] // 0;
ok($rate > 48000 && $rate < 80000, "pre1: its AAC stream is about 64 kbit/s ($rate)");
my $inf = 0;
$inf += $_->[4] for @aseg;
ok(abs($inf - $SECONDS) < 0.5, "pre1: the audio-only playlist lasts the source's $SECONDS s ($inf)");
my $adur = duration_of("$tmp/audio.ts");
ok(abs($adur - $SECONDS) < 0.5, "pre1: its segments hold $SECONDS s of audio ($adur)");
{
    my $rst = streams_of("${dir}240p/" . (media_segments(slurp("${dir}240p/index.m3u8")))[0][0]);
    is_deeply([ sort map { $_->[0] } @$rst ], [qw(audio video)], 'pre1: the rungs still mux audio with video');
}

# the poster
my $poster = slurp("${dir}poster.jpg") // '';
is(substr($poster, 0, 3), "\xff\xd8\xff", 'pre1: poster.jpg is a JPEG');

# the storyboard track
my $vtt = slurp("${dir}thumbs/storyboard.vtt");
my $cues = storyboard_cues($vtt);
ok($cues, 'pre1: thumbs/storyboard.vtt is WebVTT of sprite_NNN.jpg#xywh= cues') or diag($vtt);
$cues ||= [];
my $tiles = ceil($SECONDS / $EVERY);
is(scalar @$cues, $tiles, "pre1: $tiles cues, one per $EVERY s");
my ($contiguous, $placed) = (0, 0);
for my $k (0 .. $#$cues) {
    my ($from, $to, $sheet, $x, $y, $w, $h) = @{ $cues->[$k] };
    my $pos = $k % ($COLS * $ROWS);
    $contiguous++ if abs($from - $k * $EVERY) < 0.001
        && ($k == $#$cues || abs($to - ($k + 1) * $EVERY) < 0.001);
    $placed++ if $sheet eq sprintf('sprite_%03d.jpg', int($k / ($COLS * $ROWS)))
        && $x == ($pos % $COLS) * $TW && $y == int($pos / $COLS) * $TH && $w == $TW && $h == $TH;
}
is($contiguous, $tiles, 'pre1: the cues follow one another, every storyboard_interval');
ok(@$cues && abs($cues->[-1][1] - $SECONDS) < 0.1, 'pre1: the last cue ends at the duration');
is($placed, $tiles, 'pre1: each cue names its sheet and its tile (row by row, 160x90)');
for my $sheet (qw(sprite_000.jpg sprite_001.jpg)) {
    my $size = `'$FFPROBE' -v error -show_entries stream=codec_name,width,height -of csv=p=0 '${dir}thumbs/$sheet' 2>/dev/null`;
    chomp $size;
    is($size, 'mjpeg,' . ($COLS * $TW) . ',' . ($ROWS * $TH), "pre1: $sheet is a "
       . ($COLS * $TW) . 'x' . ($ROWS * $TH) . ' JPEG');
}
ok(!-e "${dir}thumbs/sprite_002.jpg", 'pre1: no third sheet');

# each tile is the frame at its cue's start; a frame of another time is not
my ($right, $wrong, @mads) = (0, 0);
for my $c (@$cues) {
    my ($from, undef, $sheet, $x, $y, $w, $h) = @$c;
    my $tile = tile_rgb("${dir}thumbs/$sheet", $x, $y, $w, $h);
    my $at = mad($tile, frame_rgb($from));
    my $off = mad($tile, frame_rgb($from + ($from + 1 < $SECONDS ? 1 : -1)));
    push @mads, sprintf('%.0f:%.1f/%.1f', $from, $at, $off);
    $right++ if $at < 8;
    $wrong++ if $off > 25;
}
is($right, $tiles, 'pre1: every tile matches the frame ffmpeg extracts at its time'
   . ' (mean absolute difference of 32x18 RGB below 8 of 255)') or diag("@mads");
is($wrong, $tiles, 'pre1: ... and differs clearly (above 25) from the frame a second away')
    or diag("@mads");

#---------------------------------------------------------------------------
# 3. encrypt = on: the audio-only rendition is encrypted like the rungs
#---------------------------------------------------------------------------

for my $case ([ 'enc1', 0 ], [ 'enc2', 2 ]) {
    my ($id, $rotation) = @$case;
    write_conf(encrypt => 'on', key_rotation => $rotation);
    add_video($id);
    run_helper($id);
    my $e = video($id);
    is($e->{status}, 'ready', "$id: ready (encrypt = on, key_rotation = $rotation)") or diag($e->{error});
    my $d = "$origin/$e->{prefix}";
    my $keys = keys_of($id);
    my @segs = media_segments(slurp("${d}audio/index.m3u8") // '');
    my ($keyed, $cipher, $plain, $k_used) = (0, 0, 0, {});
    for my $s (@segs) {
        my ($name, $seq, $uri, $iv) = @$s;
        my ($k) = ($uri // '') =~ m{^/vodlms/keys/\Q$id\E/$VERSION/(\d+)\.key$};
        next unless defined $k && $keys->{$k};
        $keyed++;
        $k_used->{$k}++;
        $cipher++ unless @{ streams_of("${d}audio/$name", '-f', 'mpegts') };
        my $ivhex = $iv // sprintf('%032x', $seq);
        if (decrypt("${d}audio/$name", $keys->{$k}, $ivhex, "$tmp/plain.ts")) {
            my $ps = streams_of("$tmp/plain.ts");
            $plain++ if @$ps == 1 && $ps->[0][0] eq 'audio' && $ps->[0][1] eq 'aac';
        }
    }
    ok(@segs >= 10, "$id: audio only has " . scalar(@segs) . ' segments');
    is($keyed, scalar @segs, "$id: each under an EXT-X-KEY of a key in video_keys");
    is($cipher, scalar @segs, "$id: each is ciphertext (ffprobe finds no stream)");
    is($plain, scalar @segs, "$id: each decrypts with its key and IV to one AAC stream");
    if ($rotation) {
        ok(keys(%$k_used) >= ceil(@segs / $rotation) - 1,
           "$id: a key every $rotation segments (" . join(',', sort keys %$k_used) . ')');
    }
    like(slurp("${d}master.m3u8") // '', qr{CODECS="mp4a\.40\.2"\naudio/index\.m3u8\n},
         "$id: the master lists it");
    is(substr(slurp("${d}thumbs/sprite_000.jpg") // '', 0, 3), "\xff\xd8\xff",
       "$id: the sprite sheets are plain JPEG (not protected by the key)");
    like(slurp("${d}thumbs/storyboard.vtt") // '', qr/\AWEBVTT\n/, "$id: the track is plain WebVTT");
}

#---------------------------------------------------------------------------
# 4. audio_only = off, thumbnails = off: the ladder alone
#---------------------------------------------------------------------------

write_conf(audio_only => 'off', thumbnails => 'off');
add_video('off1');
$log = run_helper('off1');
my $o = video('off1');
is($o->{status}, 'ready', 'off1: ready') or diag($o->{error});
my $od = "$origin/$o->{prefix}";
my $master = slurp("${od}master.m3u8") // '';
is(scalar(() = $master =~ /^#EXT-X-STREAM-INF:/mg), 2, 'off1: the master lists the two rungs only');
ok(!-e "${od}audio" && !-e "${od}thumbs", 'off1: no audio/ and no thumbs/');
ok(-f "${od}poster.jpg", 'off1: the poster is still made');
like($log, qr/video off1 ready: 2 rung\(s\), /, 'off1: the log line names the rungs only');

done_testing();
