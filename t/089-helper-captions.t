#!/usr/bin/perl

# Captions, the helper's side (issue #23): caption jobs (kind captions) and
# the subtitle tracks of every version, against a private Redis and
# PostgreSQL, the real ffmpeg, and for publish = s3 the local S3 of t/092.
# A caption upload is queued as nginx's vodlms_upload captions does it: the
# file in the spool (source_root), the video_captions row queued with it as
# source_location, a job on the stream.
#
#   1. the settings (caption_*) at start;
#   2. an upload, then two caption languages (en: WebVTT, the default; fr:
#      SRT with non-ASCII text): the master's subtitle group, as an
#      independent parser (video.js's m3u8-parser) reads it; the segmented
#      WebVTT parses back to the source's cues (times and text; a cue past
#      the end dropped, one across a segment boundary in both); each
#      segment's X-TIMESTAMP-MAP MPEGTS is the first segment's start PTS
#      (ffprobe); nothing re-encoded (the version's files untouched, no new
#      version, storage_prefix unchanged); the spooled files removed;
#   3. replacing a language: new segment URLs, the master names the new
#      revision only; markup is rewritten, never passed through;
#   4. hostile files (bad timestamps, a huge cue, UTF-16, invalid UTF-8,
#      binary, over caption_max_bytes): failed with the error's code,
#      nothing published (master byte-identical, no subs/ for it), a
#      published language stays published; malformed caption jobs (a bad
#      field: the row failed; an unknown kind: nothing touched);
#   5. a superseded caption job (two uploads of one language, the older job
#      last) changes nothing; the spool sweep keeps a caption file whose row
#      is queued and removes one whose row failed or that no row names;
#   6. a re-upload of the video: its new version carries the captions; a
#      caption published while an encode is held before its switch (an
#      ffmpeg wrapper holds the poster) is published into it by the switch;
#      when that fails the switch fails (retried), never a ready version
#      without it;
#   7. publish = s3: a caption job puts the track (text/vtt) and then the
#      master, last; a re-upload's version goes up with the captions; the
#      track goes up before the publish transaction: an upload of the same
#      language meanwhile does not wait on the row (the job is superseded);
#      a switch whose PostgreSQL connection was dropped during the upload
#      connects again (a video without captions, as before them).
#   8. removing a language (a caption job with "delete 1", nginx's DELETE):
#      the row goes, the master is rewritten without it and is otherwise
#      byte-identical, no other file changes (S3: the master is the only
#      PUT); a removal superseded by a newer upload changes nothing; removed
#      then uploaded again works; a re-encode no longer carries it; a video
#      not ready: only the row; malformed delete jobs.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Encode qw(decode);
use File::Copy qw(copy);
use JSON::PP qw(decode_json encode_json);
use POSIX qw(:sys_wait_h ceil);
use Test::More;
use Time::HiRes qw(sleep time);

use VodlmsTest;
use VodlmsS3;
use VodlmsHLS qw(media_segments);
use VodlmsHelperTest qw(slurp spew sq make_clip xadd_job run_idle video_row write_helper_conf);

my %env = helper_env(name => 'captions', ports => 27000, tools => [qw(ffmpeg ffprobe node)]);
my ($bin, $tmp, $src, $origin, $redis, $pg, $repo) = @env{qw(bin tmp src origin redis pg repo)};
my ($FFMPEG, $FFPROBE) = @env{qw(ffmpeg ffprobe)};
my $parser = "$repo/t/fixtures/hls-parser";
unless (-f "$parser/node_modules/m3u8-parser/package.json") {
    fail("$parser/node_modules/m3u8-parser is missing (./build.sh deps)");
    done_testing();
    exit 1;
}

my %Running;
END {
    local $?;
    for my $pid (keys %Running) { kill 'TERM', $pid; }
    for my $pid (keys %Running) { waitpid($pid, 0); }
}

my $STREAM = 'vodlms:transcode';
my $VERSION = qr/\d{8}T\d{6}Z-[0-9a-f]{8}/;
my $SEG = 2;                # segment_duration
my $CSEG = 4;               # caption_segment_duration
my $SECONDS = 10;
my $SPOOL = "$tmp/spool";
mkdir $SPOOL or die "$SPOOL: $!";

# the helper runs as a role with only the grants docs/security.md lists for it
{
    open my $in, '<', "$FindBin::Bin/../docs/security.md" or die $!;
    my $doc = do { local $/; <$in> };
    my ($sql) = $doc =~ /```sql\n(-- PostgreSQL: vodlms's own schema.*?)```/s;
    my @grants = grep { /\bvodlms_helper\b/ } map { s/--[^\n]*//gr } split /;/, $sql // '';
    ok((grep { /video_captions/ } @grants), 'docs/security.md grants the helper video_captions');
    $pg->psql('CREATE ROLE vodlms_nginx; CREATE ROLE vodlms_helper LOGIN');
    $pg->psql($_) for @grants;
}
my $HELPER_PG = $pg->conninfo =~ s/user=postgres/user=vodlms_helper/r;

sub write_conf {
    my (%extra) = @_;
    write_helper_conf("$tmp/helper.conf", redis => $redis, conninfo => $HELPER_PG, origin => $origin,
                      settings => [ source_root => $SPOOL, segment_duration => $SEG,
                                    caption_segment_duration => $CSEG, ladder => '240p:300k',
                                    thumbnails => 'off', max_attempts => 1,
                                    map { $_ => $extra{$_} } sort keys %extra ]);
}

# the lecture: 10 s of testsrc2 and a tone
my $source = make_clip("$src/lecture.mp4", size => '320x180', duration => $SECONDS);

my $upload_seq = 0;

# an upload of the lecture, as vodlms_upload does it: a new spooled file, the row queued
sub upload_video {
    my ($id) = @_;
    my $path = sprintf('%s/%s-%d-%d-%d.upload', $SPOOL, $id, int(time * 1000), $$, ++$upload_seq);
    copy($source, $path) or die "copy: $!";
    $pg->psql("INSERT INTO vodlms.videos (id, course_id, title, status, source_location)"
              . " VALUES (" . join(', ', sq($id), sq('course-intro'), sq("Test $id"),
                                   sq('queued'), sq($path)) . ")"
              . " ON CONFLICT (id) DO UPDATE SET status = 'queued',"
              . " source_location = EXCLUDED.source_location");
    xadd_job($redis, $id, $path, owner => 'carol');
    return $path;
}

# a caption upload, as vodlms_upload captions does it (docs/helper.md "Captions")
sub upload_caption {
    my ($id, $lang, $bytes, %o) = @_;
    my $label = $o{label} // $lang;
    my $path = sprintf('%s/%s-%d-%d-%d.captions', $SPOOL, $id, int(time * 1000), $$, ++$upload_seq);
    spew($path, $bytes);
    $pg->psql("INSERT INTO vodlms.video_captions (video_id, lang, label, source_location)"
              . " VALUES (" . join(', ', sq($id), sq($lang), sq($label), sq($path)) . ")"
              . " ON CONFLICT (video_id, lang) DO UPDATE SET status = 'queued',"
              . " source_location = EXCLUDED.source_location, error = NULL,"
              . " requested_at = now()");
    queue_caption($id, $lang, $path, %o) unless $o{no_job};
    return $path;
}

sub queue_caption {
    my ($id, $lang, $path, %o) = @_;
    xadd_job($redis, $id, $path, kind => 'captions', lang => $lang, label => $o{label} // $lang,
             default => $o{default} ? 1 : 0, owner => 'carol');
}

sub video { video_row($pg, $_[0], qw(status prefix duration renditions error)) }

sub caption {
    my ($id, $lang) = @_;
    my $row = $pg->psql("SELECT status || '|' || coalesce(revision, '') || '|' || label || '|' || "
        . "is_default || '|' || coalesce(cues::text, '') || '|' || coalesce(error, '') || '|' || "
        . "(vtt IS NOT NULL) || '|' || coalesce(source_location, '')"
        . " FROM vodlms.video_captions WHERE video_id = " . sq($id) . " AND lang = " . sq($lang));
    return undef unless length $row;
    my %c;
    @c{qw(status revision label default cues error published source)} = split /\|/, $row, 8;
    return \%c;
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

# m3u8-parser's reading of a playlist
sub parse_playlist {
    my $file = shift;
    my $json = `node '$parser/manifest.js' '$file' 2>&1`;
    my $m = eval { decode_json($json) };
    diag("m3u8-parser on $file: $json") unless $m;
    return $m;
}

# the smallest start_pts of a segment's streams, by ffprobe
sub start_pts {
    my $file = shift;
    my @pts = grep { /^\d+$/ } split /\s+/,
        `'$FFPROBE' -v error -show_entries stream=start_pts -of csv=p=0 '$file' 2>/dev/null`;
    my ($min) = sort { $a <=> $b } @pts;
    return $min;
}

sub ms {
    my $t = shift;
    my ($h, $m, $s, $f) = $t =~ /^(?:(\d+):)?(\d\d):(\d\d)[.,](\d{3})$/ or return undef;
    return ((($h // 0) * 60 + $m) * 60 + $s) * 1000 + $f;
}

# cues of a WebVTT or SRT text, by this test's own reading: [start_ms, end_ms, text]
sub cues_of {
    my $text = shift;
    $text =~ s/\r\n?/\n/g;
    $text =~ s/\A\x{ef}\x{bb}\x{bf}//;
    my @cues;
    for my $block (split /\n{2,}/, $text) {
        my @l = split /\n/, $block;
        shift @l while @l && $l[0] !~ /-->/;
        next unless @l;
        my ($a, $b) = $l[0] =~ /^(\S+)\s+-->\s+(\S+)/ or next;
        shift @l;
        push @cues, [ ms($a), ms($b), join("\n", @l) ];
    }
    return \@cues;
}

# a segment of a subtitle track: (mpegts, local, [cues]) or () if its header is not WebVTT's
sub segment_of {
    my $text = shift // '';
    my ($head) = $text =~ /\A(WEBVTT\n(?:[^\n]+\n)*)(?:\n|\z)/ or return ();
    my ($mpegts, $local) = $head =~ /^X-TIMESTAMP-MAP=MPEGTS:(\d+),LOCAL:(\S+)$/m or return ();
    return ($mpegts, $local, cues_of(substr($text, length $head)));
}

sub key_of { my $c = shift; return "$c->[0]|$c->[1]|$c->[2]" }

# the files of a version but its master: path -> inode:mtime:size
sub files_of {
    my $dir = shift;
    my %f;
    my @todo = ($dir);
    while (my $d = shift @todo) {
        opendir my $dh, $d or next;
        for my $e (grep { !/^\.\.?$/ } readdir $dh) {
            my $p = "$d/$e";
            if (-d $p) { push @todo, $p; next }
            next if $p eq "$dir/master.m3u8";
            my @st = stat $p;
            $f{substr($p, length($dir) + 1)} = "$st[1]:$st[9]:$st[7]";
        }
        closedir $dh;
    }
    return \%f;
}

sub versions_of {
    my $id = shift;
    opendir my $dh, "$origin/hls/$id" or return [];
    my @v = sort grep { /^$VERSION$/ } readdir $dh;
    closedir $dh;
    return \@v;
}

# checks one published track of a version against its source; returns its segment URIs
sub check_track {
    my (%o) = @_;
    my ($name, $dir, $uri, $source_cues, $duration, $mpegts) = @o{qw(name dir uri cues duration mpegts)};
    my $pl = parse_playlist("$dir$uri");
    ok($pl, "$name: m3u8-parser reads $uri") or return [];
    (my $base = $uri) =~ s{[^/]+$}{};
    my $n = ceil($duration / $CSEG);
    is($pl->{targetDuration}, $CSEG, "$name: TARGETDURATION is caption_segment_duration");
    ok($pl->{endList} && ($pl->{playlistType} // '') eq 'VOD', "$name: a VOD playlist with ENDLIST");
    is_deeply([ map { $_->{uri} } @{ $pl->{segments} } ],
              [ map { sprintf('seg_%05d.vtt', $_) } 0 .. $n - 1 ],
              "$name: $n segments seg_00000.vtt.. cover the video");
    my $total = 0;
    $total += $_->{duration} for @{ $pl->{segments} };
    ok(abs($total - $duration) < 0.01, "$name: their EXTINFs add up to the duration ($total)");

    my %seen;
    my ($maps, $inside) = (0, 0);
    my @segs = @{ $pl->{segments} };
    for my $k (0 .. $#segs) {
        my ($ts, $local, $cues) = segment_of(slurp("$dir$base$segs[$k]{uri}"));
        $maps++ if defined $ts && $ts == $mpegts && $local eq '00:00:00.000';
        my $ok = 1;
        for my $c (@{ $cues || [] }) {
            $seen{key_of($c)}++;
            $ok = 0 unless $c->[1] > $k * $CSEG * 1000 && $c->[0] < ($k + 1) * $CSEG * 1000;
        }
        $inside += $ok;
    }
    is($maps, scalar @segs, "$name: every segment has X-TIMESTAMP-MAP=MPEGTS:$mpegts,LOCAL:00:00:00.000");
    is($inside, scalar @segs, "$name: every segment holds only cues overlapping its "
       . "$CSEG s (absolute times)");
    my $end = int($duration * 1000 + 0.5);
    my @want = map { [ $_->[0], ($_->[1] > $end ? $end : $_->[1]), $_->[2] ] }
               grep { $_->[0] < $end } @$source_cues;
    is_deeply([ sort keys %seen ], [ sort map { key_of($_) } @want ],
              "$name: the segments' cues are the source's (start, end, text; past the end dropped)")
        or diag(explain([ sort keys %seen ]));
    return [ map { "$base$_->{uri}" } @segs ];
}

#---------------------------------------------------------------------------
# 1. settings
#---------------------------------------------------------------------------

write_conf();
{
    my ($rc, $out) = check_config();
    is($rc, 0, 'check-config: accepted') or diag($out);
    like($out, qr/^captions: files up to 2097152 bytes, 20000 cues, 1024 bytes and 8 lines a cue; subtitle segments of $CSEG s; at most 20 languages a video, 33554432 bytes of segments a track$/m,
         'check-config prints the caption limits and the segment duration');
    ($rc, $out) = check_config('--caption-segment-duration', '0');
    isnt($rc, 0, 'caption_segment_duration = 0: refused at start');
    like($out, qr/caption_segment_duration/, '... naming the setting');
    ($rc, $out) = check_config('--caption-segment-duration', $SEG - 1);
    isnt($rc, 0, 'caption_segment_duration shorter than segment_duration: refused at start');
    like($out, qr/"caption_segment_duration" 1 is shorter than "segment_duration" 2: at least that/,
         '... saying so');
    ($rc, $out) = check_config('--caption-max-bytes', '5M');
    isnt($rc, 0, 'caption_max_bytes above 4M (video_captions.vtt\'s limit): refused');
    my $help = `'$bin' --help 2>&1`;
    like($help, qr/^  caption_max_bytes\b/m, '--help lists caption_max_bytes');
}

#---------------------------------------------------------------------------
# 2. an upload, then two caption languages
#---------------------------------------------------------------------------

upload_video('cap1');
run_helper('cap1-video');
my $v0 = video('cap1');
is($v0->{status}, 'ready', 'cap1: ready') or diag($v0->{error});
my $dir = "$origin/$v0->{prefix}";
my $master0 = slurp("${dir}master.m3u8") // '';
unlike($master0, qr/SUBTITLES/, 'cap1: no captions yet: the master has no subtitle group');
my $files0 = files_of("${dir}");
my $versions0 = versions_of('cap1');
my $duration = $v0->{duration};

# mpegts_start: measured on the first segment of the first rung
my $rend = eval { decode_json($v0->{renditions}) } || [];
my ($rung) = ($rend->[0]{playlist} // '') =~ m{^(\w+)/index\.m3u8$};
my ($first_seg) = map { $_->[0] } media_segments(slurp("${dir}$rung/index.m3u8") // '');
my $pts = start_pts("${dir}$rung/$first_seg");
ok(defined $pts && $pts > 0, "cap1: ffprobe reads the first segment's start PTS ($pts)");
is($rend->[0]{mpegts_start}, $pts, 'cap1: videos.renditions keeps it as mpegts_start');

my $EN = <<'VTT';
WEBVTT - lecture captions

NOTE the speaker's notes are not published

intro
00:00:00.500 --> 00:00:02.000
Welcome to the lecture.

00:00:02.500 --> 00:00:03.600 align:start
Today: captions.

00:00:03.500 --> 00:00:04.500
A cue across the boundary

00:00:06.000 --> 00:00:07.250
Two lines,
the second one.

00:00:09.500 --> 00:00:11.000
Past the end of the video

00:00:12.000 --> 00:00:13.000
After the end: dropped
VTT
my $FR = "1\r\n00:00:01,000 --> 00:00:02,500\r\nBonjour \xc3\xa0 tous\r\n\r\n"
       . "2\r\n00:00:05,000 --> 00:00:08,000\r\n\xc3\x87a va ? \xe2\x80\x94 \xc2\xaboui\xc2\xbb\r\n"
       . "d\xc3\xa9j\xc3\xa0 vu\r\n\r\n";
my $FR_LABEL = "Fran\xc3\xa7ais";
my $FR_NAME = decode('UTF-8', $FR_LABEL);      # as the JSON of m3u8-parser gives it
my $en_src = upload_caption('cap1', 'en', $EN, label => 'English', default => 1);
my $fr_src = upload_caption('cap1', 'fr', $FR, label => $FR_LABEL);
my $log = run_helper('cap1-captions');

my $en = caption('cap1', 'en');
my $fr = caption('cap1', 'fr');
is($en->{status}, 'ready', 'en: ready') or diag($en->{error});
is($fr->{status}, 'ready', 'fr: ready') or diag($fr->{error});
like($en->{revision}, qr/^$VERSION$/, "en: a revision token ($en->{revision})");
isnt($en->{revision}, $fr->{revision}, 'fr: a revision of its own');
is($en->{cues}, 6, 'en: 6 cues kept in the row');
is($fr->{cues}, 2, 'fr: 2 cues');
is("$en->{label}|$en->{default}|$fr->{label}|$fr->{default}", "English|true|$FR_LABEL|false",
   'the labels and the default flag as uploaded');
like($log, qr/video cap1 captions en ready: 6 cue\(s\), revision $VERSION, published into \Q$v0->{prefix}\E/,
     'the log says where en went');
like($log, qr/1 cue\(s\) of the en captions start after the video's end/,
     'the cue after the end is named in a warning');

# nothing re-encoded
my $v1 = video('cap1');
is($v1->{prefix}, $v0->{prefix}, 'no re-encode: storage_prefix unchanged');
is_deeply(versions_of('cap1'), $versions0, 'no re-encode: no new version');
my $files1 = files_of("${dir}");
is_deeply({ map { $_ => $files1->{$_} } grep { !m{^subs/} } keys %$files1 }, $files0,
          'no re-encode: every file of the version but the master is untouched (inode, mtime, size)');
unlike($log, qr/ffmpeg/i, 'no ffmpeg ran for the captions');
ok(!-e $en_src && !-e $fr_src, 'the spooled caption files are removed once read');

# the master, as m3u8-parser reads it
my $master1 = slurp("${dir}master.m3u8") // '';
my $m = parse_playlist("${dir}master.m3u8") || {};
my $group = $m->{subtitles}{subs} || {};
is_deeply([ sort keys %$group ], [ 'English', $FR_NAME ], 'the master: one subtitle group "subs", English and Français');
my $en_uri = "subs/en/$en->{revision}/index.m3u8";
my $fr_uri = "subs/fr/$fr->{revision}/index.m3u8";
is_deeply($group->{English}, { default => JSON::PP::true, autoselect => JSON::PP::true,
                               forced => JSON::PP::false, language => 'en', uri => $en_uri },
          'en: DEFAULT=YES, AUTOSELECT, LANGUAGE="en", its revision\'s playlist');
is_deeply($group->{$FR_NAME}, { default => JSON::PP::false, autoselect => JSON::PP::true,
                                 forced => JSON::PP::false, language => 'fr', uri => $fr_uri },
          'fr: DEFAULT=NO, AUTOSELECT');
is_deeply([ map { $_->{attributes}{SUBTITLES} // '' } @{ $m->{variants} || [] } ], [ 'subs', 'subs' ],
          'every variant (the rung and audio only) names the group: SUBTITLES="subs"');
like($master1, qr/\A#EXTM3U\n(?:#EXT-X-(?:VERSION|INDEPENDENT-SEGMENTS)[^\n]*\n)*#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="en",NAME="English",DEFAULT=YES,AUTOSELECT=YES,FORCED=NO,URI="\Q$en_uri\E"\n#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="fr",NAME="\Q$FR_LABEL\E",DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI="\Q$fr_uri\E"\n#EXT-X-STREAM-INF/,
     'the EXT-X-MEDIA lines come before the first STREAM-INF, sorted by language');
(my $stripped = $master1) =~ s/^#EXT-X-MEDIA:TYPE=SUBTITLES[^\n]*\n//mg;
$stripped =~ s/,SUBTITLES="subs"//g;
is($stripped, $master0, 'the rest of the master is the encode\'s, byte for byte');

# the tracks: times and text as in the sources, the MPEGTS of the first segment
my $en_cues = cues_of($EN);
my $en_segs = check_track(name => 'en', dir => $dir, uri => $en_uri, cues => $en_cues,
                          duration => $duration, mpegts => $pts);
check_track(name => 'fr', dir => $dir, uri => $fr_uri, cues => cues_of($FR),
            duration => $duration, mpegts => $pts);
{
    my (undef, undef, $c0) = segment_of(slurp("${dir}subs/en/$en->{revision}/seg_00000.vtt"));
    my (undef, undef, $c1) = segment_of(slurp("${dir}subs/en/$en->{revision}/seg_00001.vtt"));
    ok((grep { $_->[2] eq 'A cue across the boundary' } @{ $c0 || [] })
       && (grep { $_->[2] eq 'A cue across the boundary' } @{ $c1 || [] }),
       'en: the cue across 4 s is in segments 0 and 1');
    my $all = join '', map { slurp("$dir$_") // '' } @$en_segs;
    unlike($all, qr/speaker's notes|lecture captions|^intro$/m,
           'en: the NOTE block, the header text and the cue identifier are not published');
    like(slurp("${dir}subs/en/$en->{revision}/seg_00000.vtt") // '',
         qr/^00:00:02\.500 --> 00:00:03\.600 align:start$/m, 'en: a valid cue setting is kept');
    my $vtt = $pg->psql("SELECT vtt FROM vodlms.video_captions WHERE video_id = 'cap1' AND lang = 'fr'");
    like($vtt, qr/\AWEBVTT\n/, 'fr: the row keeps the SRT as WebVTT');
    is_deeply(cues_of($vtt), cues_of($FR), 'fr: ... with the same cues (times, non-ASCII text)');
}

#---------------------------------------------------------------------------
# 3. replacing a language; markup
#---------------------------------------------------------------------------

my $EN2 = "WEBVTT\n\n00:00:01.000 --> 00:00:03.000\n<b>Welcome</b> <script>alert(1)</script>"
        . "<font color=\"red\">back</font> & <i>again</i>\n\n00:00:05.000 --> 00:00:06.000\n"
        . "<v Prof <x>>Second</v> cue\n";
upload_caption('cap1', 'en', $EN2, label => 'English', default => 1);
run_helper('cap1-replace');
my $en2 = caption('cap1', 'en');
is($en2->{status}, 'ready', 'en replaced: ready') or diag($en2->{error});
isnt($en2->{revision}, $en->{revision}, 'en replaced: a new revision');
my $master2 = slurp("${dir}master.m3u8") // '';
my $en2_uri = "subs/en/$en2->{revision}/index.m3u8";
like($master2, qr/URI="\Q$en2_uri\E"/, 'the master names the new revision');
unlike($master2, qr/\Q$en->{revision}\E/, '... and no longer the old one');
like($master2, qr/URI="\Q$fr_uri\E"/, 'fr is listed as before (same revision)');
my @new_segs = map { "subs/en/$en2->{revision}/$_->{uri}" }
               @{ (parse_playlist("$dir$en2_uri") || {})->{segments} || [] };
my %old = map { $_ => 1 } @$en_segs;
ok(@new_segs && !grep({ $old{$_} } @new_segs), 'new segment URLs (never a URL served before)');
ok(-f "${dir}subs/en/$en->{revision}/seg_00000.vtt", 'the old revision stays in the version (cached players)');
is(video('cap1')->{prefix}, $v0->{prefix}, 'still the same version');
{
    my $all = join '', map { slurp("$dir$_") // '' } @new_segs;
    unlike($all, qr/<script|<font|alert\(1\)<|color=/, 'markup: <script> and <font> are not published');
    like($all, qr/<b>Welcome<\/b>/, 'markup: <b> is kept');
    like($all, qr/&amp;/, 'markup: a bare & is escaped');
    unlike($all, qr/<x>/, 'markup: a tag inside a voice name is escaped');
}

#---------------------------------------------------------------------------
# 4. hostile files: failed with their code, nothing published
#---------------------------------------------------------------------------

my $master3 = slurp("${dir}master.m3u8");
my $files3 = files_of("${dir}");
my $huge = "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n" . ('x' x 5000) . "\n";
my @hostile = (
    [ 'en', 'bad timestamps', "WEBVTT\n\n00:00:05.000 --> 00:00:02.000\nbackwards\n", 'caption_timestamp' ],
    [ 'en', 'minutes over 59', "WEBVTT\n\n00:75:00.000 --> 00:76:00.000\nx\n", 'caption_timestamp' ],
    [ 'de', 'a huge cue', $huge, 'caption_too_large' ],
    [ 'de', 'UTF-16', "\xff\xfe" . join("\0", split //, "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nhi\n") . "\0",
      'caption_encoding' ],
    [ 'de', 'invalid UTF-8', "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nbad \xc3\x28 byte\n", 'caption_encoding' ],
    [ 'de', 'binary (the video itself)', slurp($source), 'caption_(?:encoding|format|too_large)' ],
    [ 'it', 'over caption_max_bytes', "WEBVTT\n\n" . ("00:00:01.000 --> 00:00:02.000\nx\n\n" x 80000),
      'caption_too_large' ],
    [ 'it', 'no cues', "WEBVTT\n\nNOTE nothing here\n", 'caption_format' ],
);
for my $h (@hostile) {
    my ($lang, $what, $bytes, $code) = @$h;
    my $path = upload_caption('cap1', $lang, $bytes, label => "Hostile $lang");
    run_helper("hostile $what");
    my $c = caption('cap1', $lang);
    is($c->{status}, 'failed', "$what: failed");
    like($c->{error}, qr/^$code: \S/, "$what: error \"$c->{error}\"");
    is(slurp("${dir}master.m3u8"), $master3, "$what: the master is byte-identical");
    is_deeply(files_of("${dir}"), $files3, "$what: no file added or changed in the version");
    ok(!-e $path, "$what: the refused file is removed from the spool");
    if ($lang eq 'en') {
        is("$c->{revision}|$c->{published}", "$en2->{revision}|true",
           "$what: the published en stays published (same revision)");
    } else {
        ok(!-e "${dir}subs/$lang", "$what: no subs/$lang");
        is($c->{published}, 'false', "$what: nothing published for $lang");
    }
}

# malformed caption jobs: logged, the row failed when it can be named, nothing published
{
    my $path = upload_caption('cap1', 'sv', "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nHej\n",
                              label => 'Svenska', no_job => 1);
    my $e = $redis->cmd('XADD', $STREAM, '*', 'video_id', 'cap1', 'kind', 'captions',
                        'source', $path, 'lang', 'sv', 'label', 'Svenska', 'default', 'yes');
    die "XADD: $e" if ref $e;
    $e = $redis->cmd('XADD', $STREAM, '*', 'video_id', 'cap1', 'kind', 'subtitles',
                     'source', $path, 'lang', 'sv');
    die "XADD: $e" if ref $e;
    # a label the master cannot carry: hls.js reads tags anywhere in the master, a NAME too
    my $da = upload_caption('cap1', 'da', "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nHej\n",
                            label => 'Dansk', no_job => 1);
    $e = $redis->cmd('XADD', $STREAM, '*', 'video_id', 'cap1', 'kind', 'captions', 'source', $da,
                     'lang', 'da', 'label', '#EXT-X-CONTENT-STEERING:SERVER-URI=https://evil.example/s?x=',
                     'default', '0');
    die "XADD: $e" if ref $e;
    my $l = run_helper('malformed');
    my $d = caption('cap1', 'da');
    is("$d->{status}|$d->{error}", 'failed|caption_job: malformed caption job (the label field is not'
       . ' 1..64 bytes of UTF-8 without control characters, \'"\', U+2028, U+2029, "#EXT" or "{$")',
       'a label with "#EXT" (a tag to hls.js): the row failed, the error says why');
    ok(!-e "${dir}subs/da" && !-e $da, 'that label: nothing published, its file removed');
    my $c = caption('cap1', 'sv');
    is($c->{status}, 'failed', 'malformed caption job (default "yes"): the row failed');
    is($c->{error}, 'caption_job: malformed caption job (the default field is not 0 or 1)',
       'malformed caption job: the error says which field');
    like($l, qr/malformed \(unknown kind; this helper knows video and captions\): dropped, nothing touched/,
         'an unknown kind: dropped, nothing touched');
    is(slurp("${dir}master.m3u8"), $master3, 'malformed: the master is byte-identical');
    ok(!-e "${dir}subs/sv", 'malformed: no subs/sv');
    ok(!-e $path, 'malformed: its file is removed from the spool');
    is(video('cap1')->{status}, 'ready', 'malformed: the video is untouched');
}

#---------------------------------------------------------------------------
# 4b. an instructor cannot make a version huge: cues that overlap every
#     segment (each cue is written into every segment it overlaps: 20000 cues
#     spanning a 6-hour lecture are 720 copies of 2 MiB), nor one language
#     after another (every language is in every version, the master and
#     every re-encode)
#---------------------------------------------------------------------------

{
    write_conf(caption_max_track_bytes => '64k');
    # 8 cues of 1000 bytes running from the start to the end (each is in
    # every one of the 3 segments), and 50 short ones of 1000 bytes beside
    # them (9 on screen at once, within the parser's 16): the WebVTT itself
    # is under 64 KiB, its segments are not
    my $vtt = "WEBVTT\n\n";
    for my $i (0 .. 7) {
        $vtt .= sprintf("00:00:00.%03d --> 00:00:10.000\n%s\n\n", $i, 'y' x 1000);
    }
    for my $i (0 .. 49) {
        my $ms = 100 + $i * 190;
        $vtt .= sprintf("00:00:%02d.%03d --> 00:00:%02d.%03d\n%s\n\n", int($ms / 1000), $ms % 1000,
                        int(($ms + 180) / 1000), ($ms + 180) % 1000, 'z' x 1000);
    }
    cmp_ok(length($vtt), '<', 65536, 'overlapping cues: the WebVTT is under caption_max_track_bytes');
    my $path = upload_caption('cap1', 'ja', $vtt, label => 'Overlap');
    my $l = run_helper('overlap');
    my $c = caption('cap1', 'ja');
    is($c->{status}, 'failed', 'overlapping cues: failed');
    like($c->{error}, qr/^caption_too_large: .*caption_max_track_bytes/,
         "overlapping cues: caption_too_large naming caption_max_track_bytes (\"$c->{error}\")");
    is($c->{published}, 'false', 'overlapping cues: nothing published');
    ok(!-e "${dir}subs/ja", 'overlapping cues: no subs/ja in the version');
    is(slurp("${dir}master.m3u8"), $master3, 'overlapping cues: the master is byte-identical');
    ok(!-e $path, 'overlapping cues: the refused file is removed from the spool');

    # en and fr are published: a third language is one too many
    write_conf(caption_max_tracks => 2);
    $path = upload_caption('cap1', 'ko', "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nannyeong\n",
                           label => 'Korean');
    run_helper('too many');
    $c = caption('cap1', 'ko');
    is($c->{status}, 'failed', 'a language past caption_max_tracks: failed');
    like($c->{error}, qr/^caption_too_many: .*caption_max_tracks \(2\)/,
         "a language past caption_max_tracks: caption_too_many (\"$c->{error}\")");
    is($c->{published}, 'false', 'a language past caption_max_tracks: nothing published');
    ok(!-e "${dir}subs/ko", 'a language past caption_max_tracks: no subs/ko');
    is(slurp("${dir}master.m3u8"), $master3, 'a language past caption_max_tracks: the master is byte-identical');
    is_deeply(files_of("${dir}"), $files3, 'refused: no file added or changed in the version');
    # at the limit, a published language is still replaced
    my $fr_before = caption('cap1', 'fr');
    upload_caption('cap1', 'fr', $FR, label => $FR_LABEL);
    run_helper('replace at the limit');
    my $fr_after = caption('cap1', 'fr');
    is($fr_after->{status}, 'ready', 'at caption_max_tracks: replacing fr is published') or diag($fr_after->{error});
    isnt($fr_after->{revision}, $fr_before->{revision}, 'at caption_max_tracks: fr has a new revision');
    like(slurp("${dir}master.m3u8"), qr{URI="subs/fr/\Q$fr_after->{revision}\E/index\.m3u8"},
         'at caption_max_tracks: the master names the new fr');
    $pg->psql("DELETE FROM vodlms.video_captions WHERE video_id = 'cap1' AND lang IN ('ja', 'ko')");
    write_conf();
}

# a publish whose COMMIT fails after the master was written (a deferred
# constraint refuses it at COMMIT): the row is rolled back, so the master
# must not name a revision no row has (players would show a language the
# LMS says is not published, until the next publish drops it again)
{
    $pg->psql(q{CREATE FUNCTION vodlms.t089_refuse() RETURNS trigger LANGUAGE plpgsql
                AS $$ BEGIN RAISE EXCEPTION 't089: the COMMIT is refused'; END $$});
    $pg->psql(q{CREATE CONSTRAINT TRIGGER t089_refuse AFTER UPDATE ON vodlms.video_captions
                DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
                WHEN (NEW.lang = 'pl' AND NEW.vtt IS NOT NULL) EXECUTE FUNCTION vodlms.t089_refuse()});
    my $before = slurp("${dir}master.m3u8");
    upload_caption('cap1', 'pl', "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nDzien dobry\n",
                   label => 'Polski');
    my $l = run_helper('commit refused');
    my $c = caption('cap1', 'pl');
    like($l, qr/t089: the COMMIT is refused/, 'commit refused: the helper logs the refusal');
    is($c->{status}, 'failed', 'commit refused: failed (max_attempts 1)');
    is($c->{published}, 'false', 'commit refused: nothing published in the row');
    is(slurp("${dir}master.m3u8"), $before,
       'commit refused: the master is as before (it does not name pl)');
    $pg->psql("DROP TRIGGER t089_refuse ON vodlms.video_captions");
    $pg->psql("DROP FUNCTION vodlms.t089_refuse()");
    $pg->psql("DELETE FROM vodlms.video_captions WHERE video_id = 'cap1' AND lang = 'pl'");
}

#---------------------------------------------------------------------------
# 5. a superseded caption job changes nothing
#---------------------------------------------------------------------------

{
    my $older = upload_caption('cap1', 'es', "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nviejo\n",
                               label => 'Viejo', no_job => 1);
    my $newer = upload_caption('cap1', 'es', "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nnuevo\n",
                               label => 'Nuevo', no_job => 1);
    # the newer upload's job runs first, the older one's last
    queue_caption('cap1', 'es', $newer, label => 'Nuevo');
    run_helper('es-newer');
    my $es = caption('cap1', 'es');
    is($es->{status}, 'ready', 'es: the newer upload is published');
    my $master5 = slurp("${dir}master.m3u8");
    my $files5 = files_of("${dir}");
    queue_caption('cap1', 'es', $older, label => 'Viejo');
    my $l = run_helper('es-older');
    like($l, qr/superseded by a newer upload/, 'the older job is dropped as superseded');
    my $es2 = caption('cap1', 'es');
    is_deeply($es2, $es, 'the row is unchanged (revision, label, status, source)');
    is(slurp("${dir}master.m3u8"), $master5, 'the master is byte-identical');
    is_deeply(files_of("${dir}"), $files5, 'no file added or changed');
    like($pg->psql("SELECT vtt FROM vodlms.video_captions WHERE video_id = 'cap1' AND lang = 'es'"),
         qr/nuevo/, 'the newer text is the one kept');
    ok(!-e $older, "the superseded job's file is removed from the spool");
}

# a language per upload without end: at most 100 published (what a master lists), ready or not
{
    $pg->psql("INSERT INTO vodlms.videos (id, course_id, title, status, error) VALUES"
              . " ('capmany', 'course-intro', 'Many languages', 'failed', 'test: never encoded')");
    $pg->psql("INSERT INTO vodlms.video_captions (video_id, lang, label, status, vtt, revision, cues)"
              . " SELECT 'capmany', 'en-x' || i, 'English', 'ready',"
              . " E'WEBVTT\\n\\n00:00:01.000 --> 00:00:02.000\\nx\\n', 'r1', 1"
              . " FROM generate_series(1, 100) AS i");
    # caption_max_tracks at its ceiling: 100, what a master lists
    write_conf(caption_max_tracks => 100);
    upload_caption('capmany', 'fr', "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nBonjour\n", label => 'Fran');
    upload_caption('capmany', 'en-x7', "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nHello\n");
    my $l = run_helper('many');
    write_conf();
    my ($fr, $x7) = (caption('capmany', 'fr'), caption('capmany', 'en-x7'));
    is("$fr->{status}|$fr->{published}|$fr->{error}", 'failed|false|caption_too_many: the video has'
       . ' 100 caption languages published, caption_max_tracks (100): replace one of them instead',
       'a 101st language: failed, not stored, the error says why');
    is("$x7->{status}|$x7->{published}|$x7->{cues}", 'ready|true|1',
       'one of the 100 replaced: published');
    is($pg->psql("SELECT count(*) FROM vodlms.video_captions WHERE video_id = 'capmany'"
                 . " AND vtt IS NOT NULL"), 100, 'still 100 languages published');
    $pg->psql("DELETE FROM vodlms.video_captions WHERE video_id = 'capmany'");
    $pg->psql("DELETE FROM vodlms.videos WHERE id = 'capmany'");
}

#---------------------------------------------------------------------------
# 5b. the spool sweep: a caption file waiting for its job stays
#---------------------------------------------------------------------------

{
    my $old = time - 7200;          # past spool_grace (3600 s)
    my %f;
    for my $case (qw(queued failed none)) {
        $f{$case} = sprintf('%s/cap1-%d-%d-%d.captions', $SPOOL, int(time * 1000), $$, ++$upload_seq);
        spew($f{$case}, "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n$case\n");
        utime $old, $old, $f{$case};
    }
    # a language whose upload waits for its job, and one whose job failed
    $pg->psql("INSERT INTO vodlms.video_captions (video_id, lang, label, status, source_location) VALUES"
              . " ('cap1', 'pt', 'pt', 'queued', " . sq($f{queued}) . "),"
              . " ('cap1', 'nl', 'nl', 'failed', " . sq($f{failed}) . ")");
    my $l = run_helper('sweep');
    ok(-e $f{queued}, 'sweep: a caption file whose row is queued is kept (its job is to come)');
    ok(!-e $f{failed}, 'sweep: a caption file whose row failed is removed');
    ok(!-e $f{none}, 'sweep: a caption file no row names is removed');
    like($l, qr/spool sweep: removed 2 source\(s\)/, 'sweep: the log counts 2');
    $pg->psql("DELETE FROM vodlms.video_captions WHERE video_id = 'cap1' AND lang IN ('pt', 'nl')");
}

#---------------------------------------------------------------------------
# 6. a re-upload: the new version carries the captions
#---------------------------------------------------------------------------

my %published = map { my ($l, $r, $d) = split /\|/; ($l => { rev => $r, default => $d }) }
    split /\n/, $pg->psql("SELECT lang || '|' || revision || '|' || is_default FROM vodlms.video_captions"
                         . " WHERE video_id = 'cap1' AND vtt IS NOT NULL ORDER BY lang");
is_deeply([ sort keys %published ], [qw(en es fr)], 'published before the re-upload: en, es, fr');
upload_video('cap1');
$log = run_helper('cap1-reupload');
my $v2 = video('cap1');
is($v2->{status}, 'ready', 're-upload: ready') or diag($v2->{error});
isnt($v2->{prefix}, $v0->{prefix}, 're-upload: a new version');
like($log, qr/video cap1 ready: .*3 caption track\(s\)/, 're-upload: the log counts 3 caption tracks');
{
    my $d2 = "$origin/$v2->{prefix}";
    my $m2 = parse_playlist("${d2}master.m3u8") || {};
    my $g2 = $m2->{subtitles}{subs} || {};
    is_deeply({ map { $_->{language} => $_->{uri} } values %$g2 },
              { map { $_ => "subs/$_/$published{$_}{rev}/index.m3u8" } keys %published },
              're-upload: its master lists every published caption');
    is_deeply([ map { $_->{attributes}{SUBTITLES} // '' } @{ $m2->{variants} || [] } ], [ 'subs', 'subs' ],
              're-upload: every variant names the group');
    my $r2 = eval { decode_json($v2->{renditions}) } || [];
    my ($s0) = map { $_->[0] } media_segments(slurp("${d2}$rung/index.m3u8") // '');
    my $pts2 = start_pts("${d2}$rung/$s0");
    is($r2->[0]{mpegts_start}, $pts2, 're-upload: mpegts_start measured again');
    check_track(name => 're-upload fr', dir => $d2, uri => "subs/fr/$published{fr}{rev}/index.m3u8",
                cues => cues_of($FR), duration => $v2->{duration}, mpegts => $pts2);
    check_track(name => 're-upload es', dir => $d2, uri => "subs/es/$published{es}{rev}/index.m3u8",
                cues => cues_of("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nnuevo\n"),
                duration => $v2->{duration}, mpegts => $pts2);
    ok(-f "${d2}subs/en/$published{en}{rev}/index.m3u8", 're-upload: en is there too');
}

#---------------------------------------------------------------------------
# 6b. a caption published while an encode is held before its switch
#---------------------------------------------------------------------------

# ffmpeg behind a gate (as t/095): the poster, the last ffmpeg of a job,
# runs after the master is written and before the switch
my $gated = "$tmp/ffmpeg-gated";
spew($gated, <<"SH");
#!/bin/sh
case " \$* " in
*" -update "*)
    : > "\$GATE.waiting"
    while [ ! -e "\$GATE.go" ]; do sleep 0.1; done ;;
esac
exec $FFMPEG "\$@"
SH
chmod 0755, $gated;
{
    my $gate = "$tmp/gate";
    upload_video('cap1');
    my $slow = fork // die "fork: $!";
    if ($slow == 0) {
        $ENV{GATE} = $gate;
        open STDOUT, '>>', "$tmp/held.log" or die $!;
        open STDERR, '>&', \*STDOUT or die $!;
        exec $bin, '--config', "$tmp/helper.conf", '--once', '--ffmpeg', $gated,
             '--consumer', 'slow' or POSIX::_exit(127);
    }
    $Running{$slow} = 1;
    my $deadline = time + 120;
    sleep 0.1 until -e "$gate.waiting" || time > $deadline;
    ok(-e "$gate.waiting", 'held: the encode is done, its master written, the switch held')
        or diag(slurp("$tmp/held.log"));
    my $DE = "WEBVTT\n\n00:00:02.000 --> 00:00:03.000\nGuten Tag\n";
    upload_caption('cap1', 'de', $DE, label => 'Deutsch');
    my $l = run_helper('held-de');
    like($l, qr/video cap1 captions de ready: 1 cue\(s\), revision $VERSION, stored \(the video is processing/,
         'held: the caption job stores de (the video is encoding)');
    spew("$gate.go", '');
    $deadline = time + 120;
    my $rc;
    while (time < $deadline) {
        if (waitpid($slow, WNOHANG) == $slow) { $rc = $? >> 8; last }
        sleep 0.05;
    }
    delete $Running{$slow};
    is($rc, 0, 'held: the encode\'s helper exits 0');
    my $held = slurp("$tmp/held.log") // '';
    my $v3 = video('cap1');
    my $de = caption('cap1', 'de');
    is($v3->{status}, 'ready', 'held: the video is ready') or diag($held);
    isnt($v3->{prefix}, $v2->{prefix}, 'held: at a new version');
    like($held, qr/video cap1 ready: .*3 caption track\(s\)/, 'held: it was written with the 3 captions it read');
    like($held, qr/video cap1: its captions changed during the encode: 1 caption track\(s\) written and its master listing 4 published into \Q$v3->{prefix}\E before its switch/,
         'held: its switch finds de and publishes it into the version');
    my $d3 = "$origin/$v3->{prefix}";
    my $g3 = (parse_playlist("${d3}master.m3u8") || {})->{subtitles}{subs} || {};
    is_deeply([ sort map { $_->{language} } values %$g3 ], [qw(de en es fr)],
              'held: the new version\'s master lists de too');
    is(($g3->{Deutsch} || {})->{uri}, "subs/de/$de->{revision}/index.m3u8", 'held: at its revision');
    my $r3 = eval { decode_json($v3->{renditions}) } || [];
    check_track(name => 'held de', dir => $d3, uri => "subs/de/$de->{revision}/index.m3u8",
                cues => cues_of($DE), duration => $v3->{duration}, mpegts => $r3->[0]{mpegts_start});
}

# 6c. the same, but writing the new caption into the new version fails (the
#     version's subs/sv is a file, not a directory): a ready version must
#     list every published caption, so the switch fails and the job is
#     retried (max_attempts 2), never a ready version without sv
{
    my $gate = "$tmp/gate-c";
    my $before = video('cap1');
    my %had = map { $_ => 1 } @{ versions_of('cap1') };
    upload_video('cap1');
    my $slow = fork // die "fork: $!";
    if ($slow == 0) {
        $ENV{GATE} = $gate;
        open STDOUT, '>>', "$tmp/held-c.log" or die $!;
        open STDERR, '>&', \*STDOUT or die $!;
        exec $bin, '--config', "$tmp/helper.conf", '--once', '--ffmpeg', $gated,
             '--consumer', 'slow', '--max_attempts', 2, '--retry_backoff', 0
            or POSIX::_exit(127);
    }
    $Running{$slow} = 1;
    my $deadline = time + 120;
    sleep 0.1 until -e "$gate.waiting" || time > $deadline;
    ok(-e "$gate.waiting", 'held-c: the switch held') or diag(slurp("$tmp/held-c.log"));
    my @work = glob("$origin/hls/.tmp-cap1.*");
    is(scalar @work, 1, 'held-c: one work directory (the held encode\'s)');
    my $SV = "WEBVTT\n\n00:00:03.000 --> 00:00:04.000\nGod dag\n";
    upload_caption('cap1', 'sv', $SV, label => 'Svenska');
    run_helper('held-sv');
    is(caption('cap1', 'sv')->{status}, 'ready', 'held-c: sv is published (into the current version)');
    # what goes wrong writing sv into the new version: a file where its directory goes
    spew("$work[0]/subs/sv", '') if @work;
    spew("$gate.go", '');
    $deadline = time + 180;
    my $rc;
    while (time < $deadline) {
        if (waitpid($slow, WNOHANG) == $slow) { $rc = $? >> 8; last }
        sleep 0.05;
    }
    delete $Running{$slow};
    is($rc, 0, 'held-c: the encode\'s helper exits 0');
    my $held = slurp("$tmp/held-c.log") // '';
    my $v = video('cap1');
    my $sv = caption('cap1', 'sv');
    is($v->{status}, 'ready', 'held-c: the video is ready') or diag($held);
    isnt($v->{prefix}, $before->{prefix}, 'held-c: at a new version');
    my $g = (parse_playlist("$origin/$v->{prefix}master.m3u8") || {})->{subtitles}{subs} || {};
    is(($g->{Svenska} || {})->{uri}, "subs/sv/$sv->{revision}/index.m3u8",
       'held-c: the ready version\'s master lists sv, which its row says is published')
        or diag($held);
    ok(-f "$origin/$v->{prefix}subs/sv/$sv->{revision}/index.m3u8", 'held-c: its sv track is there');
    like($held, qr/video cap1: its captions changed during the encode, and cannot be published into hls\/cap1\/$VERSION\/: cannot create .*subs\/sv\/.*Not a directory/,
         'held-c: the log says why the first switch failed');
    like($held, qr/video cap1: attempt 1 failed, retrying in [\d.]+ s: the check of its captions before the switch failed/,
         'held-c: the first switch failed and was retried');
    is_deeply([ map { "hls/cap1/$_/" } grep { !$had{$_} } @{ versions_of('cap1') } ], [ $v->{prefix} ],
              'held-c: one new version, the ready one (the failed switch\'s is removed: no row used it)');
}

# a version encoded before mpegts_start was measured: MPEGTS 126000
{
    $pg->psql("UPDATE vodlms.videos SET renditions = (SELECT jsonb_agg(r - 'mpegts_start')"
              . " FROM jsonb_array_elements(renditions) r) WHERE id = 'cap1'");
    my $v = video('cap1');
    unlike($v->{renditions}, qr/mpegts_start/, 'older version: renditions without mpegts_start');
    upload_caption('cap1', 'it', "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nCiao\n", label => 'Italiano');
    run_helper('older-it');
    my $c = caption('cap1', 'it');
    is($c->{status}, 'ready', 'older version: it published') or diag($c->{error});
    my ($ts) = segment_of(slurp("$origin/$v->{prefix}subs/it/$c->{revision}/seg_00000.vtt"));
    is($ts, 126000, 'older version: X-TIMESTAMP-MAP MPEGTS:126000 (FFmpeg\'s MPEG-TS start)');
}

#---------------------------------------------------------------------------
# 7. publish = s3
#---------------------------------------------------------------------------

my $s3dir = "$repo/helper/test-s3";
unless (-d "$s3dir/node_modules/s3rver") {
    fail("$s3dir/node_modules/s3rver is missing (./build.sh deps)");
    done_testing();
    exit 1;
}
my $BUCKET = 'vodlms';
my ($AK, $SK, $REGION) = ('S3RVER', 'vodlms-test-secret', 'eu-west-3');
my $S3PORT = $env{pick_port}->();
my $S3LOG = "$tmp/s3-requests.log";
my $s3 = VodlmsS3->start(dir => $s3dir, tmp => $tmp, port => $S3PORT, backend_port => $env{pick_port}->(),
                         log => $S3LOG, region => $REGION, access_key => $AK, secret_key => $SK,
                         bucket => $BUCKET);
ok($s3->up, 'the local S3 server is up') or diag($s3->server_output);
sub s3_request { $s3->request(@_) }

sub list_keys { $s3->list_keys(@_) }

# the PUTs of the proxy's log under a prefix, in order
sub puts_under {
    my $prefix = shift;
    my @p;
    for (split /\n/, slurp($S3LOG) // '') {
        my ($n, $method, $host, $url, $status) = split / /, $_, 6;
        next unless $method eq 'PUT' && $status =~ /^2/;
        my ($path) = split /\?/, $url, 2;
        $path =~ s{^/\Q$BUCKET\E/}{/} if $host =~ /^127\.0\.0\.1/;
        $path =~ s{^/}{};
        push @p, $path if index($path, $prefix) == 0;
    }
    return @p;
}

write_conf(publish => 's3', s3_endpoint => "http://127.0.0.1:$S3PORT", s3_bucket => $BUCKET,
           s3_path_style => 'on', s3_region => $REGION, s3_access_key => $AK,
           s3_secret_key => $SK, s3_retries => 2, s3_timeout => 20);
upload_video('s3c');
run_helper('s3c-video');
my $vs = video('s3c');
is($vs->{status}, 'ready', 's3c: ready (publish = s3)') or diag($vs->{error});
# the version's mpegts_start, as the caption job reads it (a value ffmpeg never starts at)
$pg->psql("UPDATE vodlms.videos SET renditions = jsonb_set(renditions, '{0,mpegts_start}', '133200')"
          . " WHERE id = 's3c'");
$vs = video('s3c');
my $before = list_keys($vs->{prefix});
my $m_before = s3_request('GET', "/$BUCKET/$vs->{prefix}master.m3u8")->{content} // '';
upload_caption('s3c', 'en', $EN, label => 'English', default => 1);
run_helper('s3c-captions');
my $cs = caption('s3c', 'en');
is($cs->{status}, 'ready', 's3c en: ready') or diag($cs->{error});
{
    my $base = "$vs->{prefix}subs/en/$cs->{revision}/";
    my $after = list_keys($vs->{prefix});
    my @added = sort grep { !exists $before->{$_} } keys %$after;
    my $n = ceil($vs->{duration} / $CSEG);
    is_deeply(\@added, [ "${base}index.m3u8", map { sprintf("${base}seg_%05d.vtt", $_) } 0 .. $n - 1 ],
              's3c en: the bucket gains the track: its playlist and its segments, nothing else');
    my @puts = puts_under($vs->{prefix});
    my ($master_at) = grep { $puts[$_] eq "$vs->{prefix}master.m3u8" } reverse 0 .. $#puts;
    my ($track_first) = grep { index($puts[$_], $base) == 0 } 0 .. $#puts;
    my ($playlist_at) = grep { $puts[$_] eq "${base}index.m3u8" } 0 .. $#puts;
    my @segs_at = grep { $puts[$_] =~ /\.vtt$/ && index($puts[$_], $base) == 0 } 0 .. $#puts;
    ok(defined $master_at && defined $track_first && $master_at > $track_first
       && $master_at == $#puts, 's3c en: master.m3u8 is put last, after the track');
    ok(defined $playlist_at && !grep({ $_ > $playlist_at } @segs_at),
       's3c en: the track\'s playlist after its segments');
    my $bad = 0;
    for my $key (@added, "$vs->{prefix}master.m3u8") {
        my $h = s3_request('HEAD', "/$BUCKET/$key");
        my ($ct, $cc) = map { $h->{headers}{$_} // '' } qw(content-type cache-control);
        my $want = $key =~ /\.vtt$/ ? [ 'text/vtt', 'max-age=31536000, immutable' ]
                                    : [ 'application/vnd.apple.mpegurl', 'max-age=5' ];
        unless ($h->{success} && $ct eq $want->[0] && $cc eq $want->[1]) {
            diag("$key: $h->{status} $ct / $cc");
            $bad++;
        }
    }
    is($bad, 0, 's3c en: segments text/vtt (media cache control), playlists application/vnd.apple.mpegurl');
    my $m_after = s3_request('GET', "/$BUCKET/$vs->{prefix}master.m3u8")->{content} // '';
    like($m_after, qr{^#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="en",NAME="English",DEFAULT=YES,AUTOSELECT=YES,FORCED=NO,URI="subs/en/\Q$cs->{revision}\E/index\.m3u8"$}m,
         's3c en: the master in the bucket lists the track');
    (my $strip = $m_after) =~ s/^#EXT-X-MEDIA:TYPE=SUBTITLES[^\n]*\n//mg;
    $strip =~ s/,SUBTITLES="subs"//g;
    is($strip, $m_before, 's3c en: the rest of the master is the encode\'s');
    my $seg0 = s3_request('GET', "/$BUCKET/${base}seg_00000.vtt")->{content} // '';
    my ($ts) = segment_of($seg0);
    is($ts, 133200, 's3c en: X-TIMESTAMP-MAP MPEGTS is the version\'s mpegts_start from videos.renditions');
    is(video('s3c')->{prefix}, $vs->{prefix}, 's3c: same version (no re-encode)');
}

# a re-upload with publish = s3: the new version goes up with its captions
upload_video('s3c');
run_helper('s3c-reupload');
{
    my $v = video('s3c');
    is($v->{status}, 'ready', 's3c re-upload: ready') or diag($v->{error});
    isnt($v->{prefix}, $vs->{prefix}, 's3c re-upload: a new version');
    my $base = "$v->{prefix}subs/en/$cs->{revision}/";
    my $keys = list_keys($v->{prefix});
    my $n = ceil($v->{duration} / $CSEG);
    is_deeply([ sort grep { index($_, "$v->{prefix}subs/") == 0 } keys %$keys ],
              [ "${base}index.m3u8", map { sprintf("${base}seg_%05d.vtt", $_) } 0 .. $n - 1 ],
              's3c re-upload: the new version holds the en track');
    my $m = s3_request('GET', "/$BUCKET/$v->{prefix}master.m3u8")->{content} // '';
    like($m, qr{^#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="en",[^\n]*URI="subs/en/\Q$cs->{revision}\E/index\.m3u8"$}m,
         's3c re-upload: its master lists it');
    my @puts = puts_under($v->{prefix});
    ok(@puts && $puts[-1] eq "$v->{prefix}master.m3u8", 's3c re-upload: the master is put last');
    my $rs = eval { decode_json($v->{renditions}) } || [];
    my ($ts) = segment_of(s3_request('GET', "/$BUCKET/${base}seg_00000.vtt")->{content} // '');
    ok($rs->[0]{mpegts_start} && $ts == $rs->[0]{mpegts_start},
       "s3c re-upload: its segments' MPEGTS is the new encode's mpegts_start ($ts)");
}

#---------------------------------------------------------------------------
# 7b. the track goes up before the transaction: while its PUTs run (held by
#     the local S3), neither the row nor the caption lock is held, so an
#     upload of the same language (nginx's UPDATE) never waits on the job;
#     the job then finds itself superseded and publishes nothing
#---------------------------------------------------------------------------

{
    my $v = video('s3c');
    my $gate = "$tmp/s3gate";
    my $m0 = s3_request('GET', "/$BUCKET/$v->{prefix}master.m3u8")->{content} // '';
    my $r = $s3->control(hold_put => "$v->{prefix}subs/fr/", hold_gate => $gate);
    ok($r->{success}, 's3c fr: the local S3 holds the first PUT of the fr track');
    upload_caption('s3c', 'fr', $FR, label => 'French');
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>>', "$tmp/s3-fr.log" or die $!;
        open STDERR, '>&', \*STDOUT or die $!;
        exec $bin, '--config', "$tmp/helper.conf", '--exit-when-idle' or POSIX::_exit(127);
    }
    $Running{$pid} = 1;
    my $deadline = time + 60;
    sleep 0.05 until -e "$gate.waiting" || time > $deadline;
    ok(-e "$gate.waiting", 's3c fr: the track\'s upload is under way (held)')
        or diag(slurp("$tmp/s3-fr.log"));
    # nginx's caption upload of fr now: its UPDATE must find the row free
    my $newer = sprintf('%s/s3c-%d-%d-%d.captions', $SPOOL, int(time * 1000), $$, ++$upload_seq);
    spew($newer, $FR);
    my $upd = eval {
        $pg->psql("WITH free AS (SELECT 1 FROM vodlms.video_captions WHERE video_id = 's3c'"
                  . " AND lang = 'fr' FOR UPDATE NOWAIT)"
                  . " UPDATE vodlms.video_captions c SET status = 'queued', source_location = "
                  . sq($newer) . ", error = NULL, requested_at = now() FROM free"
                  . " WHERE c.video_id = 's3c' AND c.lang = 'fr' RETURNING c.status")
    } // "error: $@";
    is($upd, 'queued', 's3c fr: during the upload the row is not locked (an upload of fr updates it at once)');
    is($pg->psql("SELECT pg_try_advisory_xact_lock(hashtextextended('vodlms.video_captions ' || 's3c', 0))"),
       't', 's3c fr: nor is the video\'s caption lock held');
    spew("$gate.go", '');
    $deadline = time + 120;
    my $rc;
    while (time < $deadline) {
        if (waitpid($pid, WNOHANG) == $pid) { $rc = $? >> 8; last }
        sleep 0.05;
    }
    delete $Running{$pid};
    is($rc, 0, 's3c fr: the helper exits 0');
    my $l = slurp("$tmp/s3-fr.log") // '';
    like($l, qr/superseded by a newer upload/, 's3c fr: the job is superseded by the newer upload');
    like($l, qr{the track \Q$v->{prefix}\Esubs/fr/$VERSION/ stays in the bucket, named by no master},
         's3c fr: the log names the track left in the bucket');
    my $c = caption('s3c', 'fr');
    is_deeply([ @$c{qw(status source published)} ], [ 'queued', $newer, 'false' ],
              's3c fr: the row is the newer upload\'s, queued, nothing published');
    is(s3_request('GET', "/$BUCKET/$v->{prefix}master.m3u8")->{content} // '', $m0,
       's3c fr: the master is unchanged (it never names the superseded track)');
}

#---------------------------------------------------------------------------
# 7c. a video without captions whose switch finds its PostgreSQL connection
#     dropped (a restart, a failover, an idle timeout) during the upload:
#     the switch's transaction (it takes the caption lock) connects again,
#     as the single UPDATE it was before did; the video is ready at the
#     version it uploaded, not failed with that version left in the bucket
#---------------------------------------------------------------------------

{
    my $gate = "$tmp/s3gate-n";
    upload_video('s3n');
    my $r = $s3->control(hold_put => 'hls/s3n/', hold_gate => $gate);
    ok($r->{success}, 's3n: the local S3 holds the first PUT of the upload');
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>>', "$tmp/s3-n.log" or die $!;
        open STDERR, '>&', \*STDOUT or die $!;
        exec $bin, '--config', "$tmp/helper.conf", '--exit-when-idle' or POSIX::_exit(127);
    }
    $Running{$pid} = 1;
    my $deadline = time + 120;
    sleep 0.05 until -e "$gate.waiting" || time > $deadline;
    ok(-e "$gate.waiting", 's3n: the upload is under way (held)') or diag(slurp("$tmp/s3-n.log"));
    my $killed = $pg->psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                           . " WHERE usename = 'vodlms_helper'");
    cmp_ok($killed, '>=', 1, "s3n: the helper's PostgreSQL connection is dropped ($killed)");
    spew("$gate.go", '');
    $deadline = time + 120;
    my $rc;
    while (time < $deadline) {
        if (waitpid($pid, WNOHANG) == $pid) { $rc = $? >> 8; last }
        sleep 0.05;
    }
    delete $Running{$pid};
    is($rc, 0, 's3n: the helper exits 0');
    my $l = slurp("$tmp/s3-n.log") // '';
    my $v = video('s3n');
    is($v->{status}, 'ready', 's3n: the video is ready (max_attempts 1: the one attempt switched)')
        or diag($l);
    unlike($l, qr/cannot update the videos row/, 's3n: the switch did not fail');
    my %versions = map { m{^hls/s3n/($VERSION)/} ? ($1 => 1) : () } keys %{ list_keys('hls/s3n/') };
    is_deeply([ map { "hls/s3n/$_/" } sort keys %versions ], [ $v->{prefix} ],
              's3n: one version in the bucket, the ready one');
}

#---------------------------------------------------------------------------
# 8. removing a language (nginx's DELETE: the row's last upload is the
#    removal, a "delete:" marker in place of a file, and a caption job with
#    "delete 1"): the row goes and the master is rewritten, nothing else
#---------------------------------------------------------------------------

# a removal, as vodlms_upload captions queues it for a DELETE
sub queue_removal {
    my ($id, $lang, %o) = @_;
    my $marker = sprintf('delete:%s-%d-%d-%d', $id, int(time * 1000), $$, ++$upload_seq);
    $pg->psql("UPDATE vodlms.video_captions SET status = 'queued', source_location = "
              . sq($marker) . ", error = NULL, requested_at = now()"
              . " WHERE video_id = " . sq($id) . " AND lang = " . sq($lang));
    unless ($o{no_job}) {
        my $e = $redis->cmd('XADD', $STREAM, '*', 'video_id', $id, 'kind', 'captions',
                            'source', $marker, 'lang', $lang, 'delete', 1,
                            'enqueued_at', int time, 'owner', 'carol');
        die "XADD: $e" if ref $e;
    }
    return $marker;
}

# 8a. publish = s3 (still configured): the master is the only PUT, the track stays
{
    my $v = video('s3c');
    my $en = caption('s3c', 'en');
    my $keys0 = list_keys($v->{prefix});
    my $m0 = s3_request('GET', "/$BUCKET/$v->{prefix}master.m3u8")->{content} // '';
    like($m0, qr/LANGUAGE="en"/, 's3c remove en: the master lists en before');
    my $nputs = () = puts_under($v->{prefix});
    queue_removal('s3c', 'en');
    my $l = run_helper('s3c-remove-en');
    like($l, qr/video s3c captions en removed: the master of \Q$v->{prefix}\E lists 0 caption track\(s\)/,
         's3c remove en: the log says it');
    is(caption('s3c', 'en'), undef, 's3c remove en: the row is gone');
    my @puts = puts_under($v->{prefix});
    is_deeply([ @puts[$nputs .. $#puts] ], [ "$v->{prefix}master.m3u8" ],
              's3c remove en: one PUT, the master (nothing else written, nothing after it)');
    is_deeply([ sort keys %{ list_keys($v->{prefix}) } ], [ sort keys %$keys0 ],
              's3c remove en: the bucket keeps every key (the track stays for players holding the old master)');
    my $m1 = s3_request('GET', "/$BUCKET/$v->{prefix}master.m3u8")->{content} // '';
    unlike($m1, qr/SUBTITLES/, 's3c remove en: the master in the bucket has no subtitle group left');
    (my $strip = $m0) =~ s/^#EXT-X-MEDIA:TYPE=SUBTITLES[^\n]*\n//mg;
    $strip =~ s/,SUBTITLES="subs"//g;
    is($m1, $strip, 's3c remove en: ... and is the encode\'s master otherwise, byte for byte');
}

write_conf();

# 8b. a local origin: two languages published, one removed
upload_video('cdel');
run_helper('cdel-video');
my $vd = video('cdel');
is($vd->{status}, 'ready', 'cdel: ready') or diag($vd->{error});
my $ddir = "$origin/$vd->{prefix}";
my $dmaster0 = slurp("${ddir}master.m3u8") // '';
upload_caption('cdel', 'en', $EN, label => 'English', default => 1);
upload_caption('cdel', 'fr', $FR, label => $FR_LABEL);
run_helper('cdel-captions');
my $den = caption('cdel', 'en');
my $dfr = caption('cdel', 'fr');
is("$den->{status}|$dfr->{status}", 'ready|ready', 'cdel: en and fr published');
my $dmaster1 = slurp("${ddir}master.m3u8") // '';
my $dfiles1 = files_of($ddir);
my $fr_line = qr/^#EXT-X-MEDIA:TYPE=SUBTITLES,[^\n]*LANGUAGE="fr"[^\n]*\n/m;
like($dmaster1, $fr_line, 'cdel: the master lists fr');
{
    my $marker = queue_removal('cdel', 'fr');
    my $c = caption('cdel', 'fr');
    is_deeply([ @$c{qw(status source published)} ], [ 'queued', $marker, 'true' ],
              'cdel remove fr: until the helper acts, fr is published and its last upload is the removal');
    my $l = run_helper('cdel-remove-fr');
    like($l, qr/video cdel captions fr removed: the master of \Q$vd->{prefix}\E lists 1 caption track\(s\)/,
         'cdel remove fr: the log says it');
    is(caption('cdel', 'fr'), undef, 'cdel remove fr: the row is gone');
    is_deeply(caption('cdel', 'en'), $den, 'cdel remove fr: en\'s row is untouched');
    my $m = slurp("${ddir}master.m3u8") // '';
    unlike($m, qr/LANGUAGE="fr"/, 'cdel remove fr: the master no longer lists fr');
    my $pm = parse_playlist("${ddir}master.m3u8") || {};
    is_deeply([ sort keys %{ $pm->{subtitles}{subs} || {} } ], [ 'English' ],
              'cdel remove fr: m3u8-parser reads one subtitle track, English');
    (my $want = $dmaster1) =~ s/$fr_line//;
    is($m, $want, 'cdel remove fr: the master is the previous one without fr\'s line, byte for byte');
    is_deeply(files_of($ddir), $dfiles1,
              'cdel remove fr: no other file written or removed (segments untouched: no re-encode; fr\'s track stays)');
    is(video('cdel')->{prefix}, $vd->{prefix}, 'cdel remove fr: the same version');
    unlike($l, qr/ffmpeg/i, 'cdel remove fr: no ffmpeg ran');
}

# a removal superseded by a newer upload of the same language changes nothing
{
    queue_removal('cdel', 'en');
    my $newer = upload_caption('cdel', 'en', $EN2, label => 'English', default => 1, no_job => 1);
    my $m = slurp("${ddir}master.m3u8");
    my $f = files_of($ddir);
    my $l = run_helper('cdel-remove-en-superseded');
    like($l, qr/superseded by a newer upload/, 'cdel remove en, then an upload of en: the removal is superseded');
    my $c = caption('cdel', 'en');
    is_deeply([ @$c{qw(status source published revision)} ], [ 'queued', $newer, 'true', $den->{revision} ],
              '... the row stays, published as before, its last upload the newer file');
    is(slurp("${ddir}master.m3u8"), $m, '... the master is byte-identical');
    is_deeply(files_of($ddir), $f, '... no file changed');
    queue_caption('cdel', 'en', $newer, label => 'English', default => 1);
    run_helper('cdel-en-newer');
    my $c2 = caption('cdel', 'en');
    ok($c2->{status} eq 'ready' && $c2->{revision} ne $den->{revision}, '... and the newer upload then publishes');
    $den = $c2;
}

# removed, then uploaded again: a language as any new one
{
    upload_caption('cdel', 'fr', $FR, label => 'French again');
    run_helper('cdel-fr-again');
    my $c = caption('cdel', 'fr');
    is($c->{status}, 'ready', 'cdel fr uploaded again after its removal: ready') or diag($c->{error});
    isnt($c->{revision}, $dfr->{revision}, '... a new revision');
    like(slurp("${ddir}master.m3u8") // '',
         qr{LANGUAGE="fr",NAME="French again",DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI="subs/fr/\Q$c->{revision}\E/index\.m3u8"},
         '... the master lists it again, with its new label and revision');
}

# removed, then re-encoded: the new version does not carry it
{
    queue_removal('cdel', 'fr');
    run_helper('cdel-remove-fr-2');
    is(caption('cdel', 'fr'), undef, 'cdel fr removed again');
    upload_video('cdel');
    run_helper('cdel-reencode');
    my $v = video('cdel');
    is($v->{status}, 'ready', 'cdel re-encode: ready') or diag($v->{error});
    isnt($v->{prefix}, $vd->{prefix}, 'cdel re-encode: a new version');
    my $m = slurp("$origin/$v->{prefix}master.m3u8") // '';
    like($m, qr/LANGUAGE="en"/, 'cdel re-encode: its master lists en');
    unlike($m, qr/LANGUAGE="fr"/, 'cdel re-encode: ... and not the removed fr');
    ok(!-e "$origin/$v->{prefix}subs/fr", 'cdel re-encode: no subs/fr in the new version');
}

# a video not ready: only the row goes
{
    $pg->psql("INSERT INTO vodlms.videos (id, course_id, title, status) VALUES"
              . " ('cdel-nr', 'course-intro', 'Not ready', 'queued')");
    upload_caption('cdel-nr', 'de', "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nHallo\n");
    run_helper('cdel-nr-de');
    is(caption('cdel-nr', 'de')->{status}, 'ready', 'cdel-nr de: stored (the video is not ready)');
    queue_removal('cdel-nr', 'de');
    my $l = run_helper('cdel-nr-remove');
    is(caption('cdel-nr', 'de'), undef, 'cdel-nr de removed: the row is gone');
    like($l, qr/video cdel-nr captions de removed \(the video is queued: nothing published to rewrite\)/,
         '... and the log says there was nothing to rewrite');
}

# malformed: "delete" without kind captions, delete 1 with a file, a marker without delete 1
{
    $vd = video('cdel');      # the re-encode's version, not ${ddir}
    my $m = slurp("$origin/$vd->{prefix}master.m3u8");
    my $path = upload_caption('cdel', 'de', "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nHallo\n", no_job => 1);
    my $e = $redis->cmd('XADD', $STREAM, '*', 'video_id', 'cdel', 'kind', 'captions', 'source', $path,
                        'lang', 'de', 'delete', 1, 'enqueued_at', int time, 'owner', 'carol');
    my $l = run_helper('cdel-malformed-file');
    like($l, qr/malformed caption job \(delete 1 needs a source of delete:\.\.\.\)/,
         'delete 1 with a file as its source: malformed');
    like(caption('cdel', 'de')->{error}, qr/^caption_job: malformed caption job/, '... the row failed');
    is(caption('cdel', 'en')->{status}, 'ready', '... nothing else touched');

    my $marker = queue_removal('cdel', 'en', no_job => 1);
    $e = $redis->cmd('XADD', $STREAM, '*', 'video_id', 'cdel', 'kind', 'captions', 'source', $marker,
                     'lang', 'en', 'enqueued_at', int time, 'owner', 'carol');
    $l = run_helper('cdel-malformed-marker');
    like($l, qr/malformed caption job \(a delete: source needs delete 1\)/,
         'a delete: source without delete 1: malformed');
    my $c = caption('cdel', 'en');
    is_deeply([ @$c{qw(status published revision)} ], [ 'failed', 'true', $den->{revision} ],
              '... the row failed, en still published');

    $e = $redis->cmd('XADD', $STREAM, '*', 'video_id', 'cdel', 'source', "$SPOOL/none.upload",
                     'delete', 1, 'enqueued_at', int time, 'owner', 'carol');
    $l = run_helper('cdel-malformed-video');
    like($l, qr/malformed \(a delete field on a video job/, 'delete on a video job (no kind captions): malformed');
    is(video('cdel')->{prefix}, $vd->{prefix}, '... the video untouched');
    is(slurp("$origin/$vd->{prefix}master.m3u8"), $m, 'the master is byte-identical after the three');
}

done_testing();
