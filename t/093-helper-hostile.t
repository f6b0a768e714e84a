#!/usr/bin/perl

# vodlms-helper against hostile uploads (issue #15): an instructor controls
# the bytes of her upload, and ffprobe/ffmpeg read whatever a file names.
# The helper accepts only real media containers (VH_SOURCE_FORMATS) and the
# file protocol, so that a playlist, a concat script, an image sequence or
# a URL is refused as unsupported_source before anything is opened besides
# the upload itself; it bounds what a small file may cost (max_source_*,
# job_timeout), and such failures are final: never retried.
#
# Same scaffolding as t/090-helper.t: private Redis and PostgreSQL, the real
# binary from $VODLMS_BUILD_DIR/helper/ (built with make if missing), real
# ffmpeg.  "Nothing read outside the upload" is checked with FIFO traps: a
# child blocks opening each trap for writing and notes when any reader
# opens it; and with a TCP listener that notes every connection.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use IO::Socket::INET ();
use MIME::Base64 qw(encode_base64);
use POSIX qw(:sys_wait_h mkfifo);
use Test::More;
use Time::HiRes qw(sleep time);

use VodlmsTest;
use VodlmsHelperTest qw(slurp write_file ffmpeg_make make_clip insert_video xadd_job track run_idle
                        video_row write_helper_conf);

my $T0 = time;
# the helper, the tools, a temporary directory, Redis and PostgreSQL (t/lib)
my %env = helper_env(name => 'helper-hostile', ports => 24000, tools => [qw(ffmpeg ffprobe)]);
my ($bin, $tmp, $origin, $redis, $pg) = @env{qw(bin tmp origin redis pg)};
my $spool = "$tmp/spool";          # every instructor's uploads, side by side
mkdir $spool;
sub pick_port { $env{pick_port}->() }

my $STREAM = 'vodlms:transcode';
my $GROUP = 'vodlms-helpers';

write_helper_conf("$tmp/helper.conf", redis => $redis, conninfo => $pg->conninfo, origin => $origin,
                  settings => [ ladder => '240p:300k, 360p:500k', claim_idle => 2, max_attempts => 3,
                                retry_backoff => 0.2 ]);

#---------------------------------------------------------------------------
# helpers
#---------------------------------------------------------------------------

# helpers, traps, the listener: all ours, killed at the end
$VodlmsHelperTest::END_SIGNAL = 'KILL';

sub add_video {
    my ($id, $source) = @_;
    # as the module's upload does: the row names the job's source
    insert_video($pg, $id, source => $source);
    return xadd_job($redis, $id, $source, enqueued_at => time);
}

sub video { video_row($pg, $_[0], qw(status prefix error)) }

sub pending_count {
    my $r = $redis->cmd('XPENDING', $STREAM, $GROUP);
    return ref $r eq 'ARRAY' ? $r->[0] : -1;
}

# runs one helper until the queue is idle; its log
sub run_helper {
    my ($name, @args) = @_;
    return run_idle(name => $name, bin => $bin, config => "$tmp/helper.conf", log => "$tmp/$name.log",
                    args => \@args, timeout => 120,
                    what => "$name: the helper exits 0 when the queue is idle");
}

# attempts the helper logged for a video
sub attempts {
    my ($log, $id) = @_;
    my @n = $log =~ /video \Q$id\E, source .*, attempt (\d+)\/\d+$/mg;
    return scalar @n;
}

# a FIFO that notes when anyone opens it for reading (ffprobe, ffmpeg)
sub trap {
    my $path = shift;
    mkfifo($path, 0644) or die "mkfifo $path: $!";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        # blocks until a reader opens the other end
        if (open my $w, '>', $path) {
            write_file("$path.opened", "opened\n");
            close $w;
        }
        POSIX::_exit(0);
    }
    track($pid);
    return $path;
}

sub trap_opened { return -e "$_[0].opened" }

# a TCP listener that notes every connection and closes it at once
my $http_port = pick_port();
my $http_hits = "$tmp/http-hits";
{
    my $ls = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $http_port,
                                   Proto => 'tcp', Listen => 16, ReuseAddr => 1)
        or die "listen on $http_port: $!";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        while (my $c = $ls->accept) {
            open my $h, '>>', $http_hits or POSIX::_exit(1);
            print $h "connection\n";
            close $h;
            close $c;
        }
        POSIX::_exit(0);
    }
    close $ls;
    track($pid);
}

# what a refused upload must look like: failed, unsupported_source, one
# attempt, acknowledged, nothing published
sub refused {
    my ($log, $id, $what, $reason) = @_;
    $reason //= qr/^unsupported_source: /;
    my $v = video($id);
    is($v->{status}, 'failed', "$what: the video ends failed");
    like($v->{error}, $reason, "$what: with the reason ($v->{error})");
    is(attempts($log, $id), 1, "$what: tried once, never retried");
    ok(!-e "$origin/hls/$id", "$what: nothing published under hls/$id/");
    ok(!glob("$origin/hls/.tmp-$id*"), "$what: no work directory left");
    return $v;
}

#---------------------------------------------------------------------------
# course A's lecture, a neighbour's upload, and real containers: all ready
#---------------------------------------------------------------------------

my $lectureA = make_clip("$spool/course-a-lecture.mp4");
my $neighbour = make_clip("$spool/other-instructor.mp4");
my %legit = (
    'legit-mp4'  => $lectureA,
    'legit-mkv'  => make_clip("$spool/upload-mkv.mkv"),
    'legit-webm' => make_clip("$spool/upload-webm.webm", duration => 2),
    'legit-ts'   => make_clip("$spool/upload-ts.ts"),
);
add_video($_, $legit{$_}) for sort keys %legit;
add_video('neighbour', $neighbour);

my $log = run_helper('legit');
for my $id (sort keys %legit, 'neighbour') {
    my $v = video($id);
    is($v->{status}, 'ready', "$id: a real container still transcodes to ready")
        or diag("error: $v->{error}");
    ok(-s "$origin/$v->{prefix}master.m3u8", "$id: published");
}
like($log, qr/ -format_whitelist mov,matroska,mpegts,avi,flv,mxf,ogg,asf,mpeg -protocol_whitelist file /,
     'the ladder ffmpeg gets the allow-list of demuxers');
like($log, qr/-protocol_whitelist file -f mov -enable_drefs 0 -use_absolute_path 0 -i file:\Q$lectureA\E /,
     'MP4: the demuxer ffprobe found is forced, mov drefs off, file protocol only');
like($log, qr/-protocol_whitelist file -f matroska -i file:/, 'MKV/WebM: -f matroska');
like($log, qr/-protocol_whitelist file -f mpegts -i file:/, 'TS: -f mpegts');

# course A's published rendition: what the attacker points at
my $prefixA = video('legit-mp4')->{prefix};
my ($variantA) = (slurp("$origin/${prefixA}master.m3u8") // '') =~ /^([^#\s][^\s]*\.m3u8)$/m;
ok($variantA, "course A's lecture has a variant playlist ($variantA)");
my $targetA = "$origin/$prefixA$variantA";
my ($segA) = (slurp($targetA) // '') =~ /^([^#\s]+\.ts)$/m;
$segA = ($targetA =~ s{[^/]+$}{}r) . ($segA // 'seg_00000.ts');
ok(-s $targetA && -s $segA, 'and its segments');

#---------------------------------------------------------------------------
# the attacks
#---------------------------------------------------------------------------

my %attack;

# (a) the reproduction: a 116-byte master playlist naming course A's
# rendition in the origin; and the same naming an id that does not exist
my $missing = $targetA =~ s{/hls/legit-mp4/}{/hls/no-such-video/}r;
$attack{'hls-a'} = write_file("$spool/evil-a.m3u8",
    "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=320x240\n$targetA\n");
$attack{'hls-missing'} = write_file("$spool/evil-missing.m3u8",
    "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=320x240\n$missing\n");
# the same playlist under a video's name: the content decides, not the name
$attack{'hls-as-mp4'} = write_file("$spool/evil-a-renamed.mp4", slurp($attack{'hls-a'}));
# a media playlist naming a segment of course A directly
$attack{'hls-media'} = write_file("$spool/evil-media.m3u8",
    "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n$segA\n#EXT-X-ENDLIST\n");

# (b) an ffconcat script naming the neighbouring upload (concat's safe mode
# allows a plain relative name)
$attack{'concat'} = write_file("$spool/evil-concat.ffconcat",
    "ffconcat version 1.0\nfile other-instructor.mp4\nduration 3\n");

# (c) URLs: playlists and a concat script naming a local listener
$attack{'http-master'} = write_file("$spool/evil-http.m3u8",
    "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nhttp://127.0.0.1:$http_port/lecture.m3u8\n");
$attack{'http-media'} = write_file("$spool/evil-http-media.m3u8",
    "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nhttp://127.0.0.1:$http_port/seg.ts\n#EXT-X-ENDLIST\n");
$attack{'http-concat'} = write_file("$spool/evil-http-concat.mp4",
    "ffconcat version 1.0\nfile 'http://127.0.0.1:$http_port/x.mp4'\n");

# (d) a master playlist with a file: URI and a data: URI (a playlist inside
# the playlist) naming course A's files
{
    my $inner = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nfile:$segA\n#EXT-X-ENDLIST\n";
    $attack{'file-data'} = write_file("$spool/evil-file-data.m3u8",
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nfile:$targetA\n"
        . "#EXT-X-STREAM-INF:BANDWIDTH=2\ndata:application/vnd.apple.mpegurl;base64,"
        . encode_base64($inner, '') . "\n");
}

# (e) an image sequence: a %d name makes the image2 demuxer read the
# neighbouring frame files
ffmpeg_make("$spool/frame%03d.jpg", '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=1');
$attack{'imgseq'} = "$spool/frame%03d.jpg";
write_file($attack{'imgseq'}, slurp("$spool/frame001.jpg"));

# traps: nothing outside the upload may be opened, by any of the ways
my %trap = (
    'trap-concat' => trap("$spool/trap-concat.mp4"),
    'trap-hls'    => trap("$spool/trap-hls.ts"),
    'trap-data'   => trap("$spool/trap-data.ts"),
    'trap-master' => trap("$spool/trap-master.m3u8"),
);
$attack{'trap-concat'} = write_file("$spool/evil-trap.ffconcat",
    "ffconcat version 1.0\nfile trap-concat.mp4\n");
$attack{'trap-hls'} = write_file("$spool/evil-trap.m3u8",
    "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n$trap{'trap-hls'}\n#EXT-X-ENDLIST\n");
$attack{'trap-data'} = write_file("$spool/evil-trap-data.m3u8",
    "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\ndata:application/vnd.apple.mpegurl;base64,"
    . encode_base64("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nfile:$trap{'trap-data'}\n"
                    . "#EXT-X-ENDLIST\n", '') . "\n");
$attack{'trap-master'} = write_file("$spool/evil-trap-master.m3u8",
    "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n$trap{'trap-master'}\n");

# URLs and protocol prefixes as the job's source itself
my %url_source = (
    'src-http'    => "http://127.0.0.1:$http_port/x.mp4",
    'src-subfile' => "subfile,,start,0,end,100000,,:$neighbour",
    'src-tee'     => "tee:$neighbour",
    'src-concat'  => "concat:$neighbour|$neighbour",
    'src-file'    => "file:$neighbour",
);

add_video("evil-$_", $attack{$_}) for sort keys %attack;
add_video($_, $url_source{$_}) for sort keys %url_source;

$log = run_helper('attacks');

for my $name (sort keys %attack) {
    refused($log, "evil-$name", "$name attack");
}
for my $name (sort keys %url_source) {
    my $v = video($name);
    is($v->{status}, 'failed', "$name: a URL as the source ends failed");
    like($v->{error}, qr/^unsupported_source: /, "$name: unsupported_source ($v->{error})");
    ok(!-e "$origin/hls/$name", "$name: nothing published");
}

{
    my ($a, $m) = (video('evil-hls-a'), video('evil-hls-missing'));
    is("$a->{status}|$a->{error}", "$m->{status}|$m->{error}",
       'naming an existing video and a missing one end alike: the outcome leaks nothing');
}
for my $t (sort keys %trap) {
    ok(!trap_opened($trap{$t}), "$t: the file the upload names is never opened");
}
# FFmpeg 5.1 already limits what a local file may name to file,crypto,data
# (the file protocol's default whitelist): this held before issue #15 too
ok(!-e $http_hits, 'the listener got no connection') or diag(slurp($http_hits));
is(pending_count(), 0, 'every refused job is acknowledged');

#---------------------------------------------------------------------------
# what a small file may claim: max_source_duration, max_source_pixels,
# max_source_fps, max_source_work
#---------------------------------------------------------------------------

{
    my $clip = make_clip("$spool/three-seconds.mp4");
    add_video('too-long', $clip);
    $log = run_helper('too-long', '--max-source-duration', '2');
    refused($log, 'too-long', 'max_source_duration 2 s, a 3 s clip',
            qr/^source_too_large: it lasts 3 s, more than max_source_duration \(2 s\)$/);

    add_video('too-big', $clip);
    $log = run_helper('too-big', '--max-source-pixels', '320x200');
    refused($log, 'too-big', 'max_source_pixels 320x200, a 320x240 clip',
            qr/^source_too_large: 320x240 is 76800 pixels a frame, more than max_source_pixels \(64000\)$/);

    # the work: seconds x frames a second x pixels; 3 s of 320x240 at 25 fps
    # is 5.76M pixel-frames, the same at 50 fps twice that
    my $fifty = make_clip("$spool/fifty-fps.mp4", rate => 50);
    add_video('too-much-work', $fifty);
    $log = run_helper('too-much-work', '--max-source-work', '6M');
    refused($log, 'too-much-work', 'max_source_work 6M, 3 s of 320x240 at 50 fps',
            qr/^source_too_large: 3 s x 50 frames a second x 320x240 is 1\.15e\+07 pixel-frames to decode, more than max_source_work \(6e\+06\)$/);

    # a tiny file claiming 1000 frames a second: MP4 counts its frames (nb_frames),
    # Matroska says 0/0 on average and 1000/1 as its timebase guess
    for my $ext (qw(mp4 mkv)) {
        my $fast = make_clip("$spool/thousand-fps.$ext", rate => 1000, size => '64x64',
                             duration => 1);
        add_video("too-fast-$ext", $fast);
        $log = run_helper("too-fast-$ext");
        refused($log, "too-fast-$ext", "max_source_fps 240 (the default), 1000 fps in $ext",
                qr/^source_too_large: it claims 1000 frames a second, more than max_source_fps \(240\)$/);
    }

    add_video('fits', $clip);
    $log = run_helper('fits', '--max-source-duration', '3.5', '--max-source-pixels', '76800',
                      '--max-source-work', '6M', '--max-source-fps', '25');
    is(video('fits')->{status}, 'ready', 'a clip within every limit is ready (3 s of 320x240 at 25 fps, 5.76M pixel-frames)');

    my $out = `$bin --config $tmp/helper.conf --check-config 2>&1`;
    like($out, qr/^job_timeout = auto \(6 x the source's duration, at least 900 s\)$/m,
         'job_timeout defaults to auto');
    like($out, qr/^max_source_duration = 21600$/m, 'max_source_duration defaults to 6 h');
    like($out, qr/^max_source_pixels = 9437184$/m, 'max_source_pixels defaults to 4096x2304');
    like($out, qr/^max_source_fps = 240$/m, 'max_source_fps defaults to 240');
    like($out, qr/^max_source_work = 900000000000 pixel-frames \(4\.0 h of 1920x1080 at 30 fps\)$/m,
         'max_source_work defaults to 900G: a 2-hour 1080p30 lecture (448G) fits twice');
    $out = `$bin --config $tmp/helper.conf --max-source-work 5x --check-config 2>&1`;
    like($out, qr/"max_source_work" must be a number of pixel-frames/, 'max_source_work: 5x is refused');
    $out = `$bin --config $tmp/helper.conf --max-source-pixels 15x15 --check-config 2>&1`;
    like($out, qr/"max_source_pixels" must be WIDTHxHEIGHT .* in 256\.\.268435456/,
         'max_source_pixels: 15x15 is too few') ;
    $out = `$bin --config $tmp/helper.conf --job-timeout forever --check-config 2>&1`;
    like($out, qr/"job_timeout" must be auto or a number of seconds/, 'job_timeout: a bad value is refused');
}

#---------------------------------------------------------------------------
# job_timeout: a file that keeps ffmpeg busy fails once, is not retried
#---------------------------------------------------------------------------

{
    # an ffmpeg that never finishes (ffprobe is the real one)
    my $slow = write_file("$tmp/slow-ffmpeg", "#!/bin/sh\nexec sleep 60\n");
    chmod 0755, $slow;
    add_video('timeout', "$spool/three-seconds.mp4");
    my $t = time;
    $log = run_helper('timeout', '--ffmpeg', $slow, '--job-timeout', '1');
    my $took = time - $t;
    refused($log, 'timeout', 'job_timeout 1 s',
            qr/^job_timeout: ffmpeg ran longer than 1 s \(job_timeout\), stopped and not retried$/);
    # the job is tried once: no second attempt after a back-off (the fake
    # ffmpeg would hold each attempt 60 s); how long it took is only said
    my @attempts = $log =~ /job [0-9]+-[0-9]+: video timeout, source .*, attempt (\d+)\//g;
    is("@attempts", '1', sprintf('the timeout ends the job at once: one attempt, no back-off and retry (%.1f s)', $took));
    is(pending_count(), 0, 'the timed-out job is acknowledged');
}

diag(sprintf 'wall time %.1f s', time - $T0) if $ENV{TEST_VERBOSE};

done_testing();
