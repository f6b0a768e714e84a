#!/usr/bin/perl

# The signed-playlist rewriter (core/vodlms_hls.c) held to an independent
# HLS parser: realistic playlists in t/fixtures/hls (a master with audio,
# subtitles, captions and I-frame streams; media playlists with keys, maps,
# byteranges, discontinuities and CRLF; one with FairPlay and Widevine keys
# and a BOM; a low-latency one with parts, preload hints and rendition
# reports) go through the rewriter ($VODLMS_BUILD_DIR/unit/hls_rewrite,
# built by `make -C t/unit`), and video.js's m3u8-parser (npm, installed in
# t/fixtures/hls-parser by ./build.sh deps) parses input and output: the
# same structure, every URI the original plus the query where it must be
# signed and untouched where not, keys never (t/fixtures/hls-parser/compare.js).  The
# bytes are checked too: the output less the inserted queries is the input.
# A missing binary, node or node_modules is a failure, never a skip.

use strict;
use warnings;

use FindBin;
use File::Temp qw(tempdir);
use IPC::Run qw(run);
use JSON::PP qw(decode_json);
use Test::More;

my $repo = "$FindBin::Bin/..";
my $build = (defined $ENV{VODLMS_BUILD_DIR} && length $ENV{VODLMS_BUILD_DIR})
          ? $ENV{VODLMS_BUILD_DIR} : "$repo/build";
my $bin = "$build/unit/hls_rewrite";
my $fx = "$repo/t/fixtures/hls";
my $parser = "$repo/t/fixtures/hls-parser";

my @missing;
push @missing, "$bin (make -C t/unit BUILD=$build)" unless -x $bin;
push @missing, "node (apt-get install nodejs)"
    unless grep { -x "$_/node" } split /:/, $ENV{PATH};
push @missing, "$parser/node_modules/m3u8-parser (./build.sh deps)"
    unless -f "$parser/node_modules/m3u8-parser/package.json";
if (@missing) {
    fail("missing: $_") for @missing;
    done_testing();
    exit 1;
}

# a CloudFront custom-policy query as the glue will build it: base64 with
# CloudFront's '-', '_' and '~'
my $query = 'Policy=eyJTdGF0ZW1lbnQiOlt7IlJlc291cmNlIjoiaHR0cHM6Ly9tZWRpYS5l'
          . 'eGFtcGxlLmNvbS9obHMvNDIvdjEvKiJ9XX0_'
          . '&Signature=Zm9v~YmFyLWJheg__&Key-Pair-Id=K2JCJMDEHXQW5F';
my $origin = 'https://media.example.com';

my $tmp = tempdir(CLEANUP => 1);

sub slurp { my ($f) = @_; open my $fh, '<:raw', $f or die "$f: $!"; local $/; <$fh> }

# rewrite FILE with extra args: (exit code, stdout, stderr)
sub rewrite {
    my ($file, @args) = @_;
    my ($out, $err) = ('', '');
    run([$bin, $query, @args], '<', $file, '>', \$out, '2>', \$err);
    return ($? >> 8, $out, $err);
}

# fixture => [URIs in the file, of them signed with absolute URIs kept,
#             and with those on $origin signed too;
#             URIs the parser sees (it repeats a key or map per segment),
#             of them signed in the same two modes]
my %case = (
    # (key URIs, of EXT-X-KEY and EXT-X-SESSION-KEY, are never signed:
    # issue #22; the parser does not report the master's session key)
    'master.m3u8'     => [11, 9, 10, 11, 10, 11],
    'media-crlf.m3u8' => [11, 8, 9, 26, 13, 14],
    'media-drm.m3u8'  => [6, 3, 3, 4, 3, 3],
    'media-ll.m3u8'   => [11, 11, 11, 13, 13, 13],
);

for my $name (sort keys %case) {
    my ($lines, $keep, $on_origin, $uris, $pkeep, $pon_origin)
        = @{ $case{$name} };
    my $in = slurp("$fx/$name");

    for my $mode (['keep', $keep, $pkeep],
                  ["origin=$origin", $on_origin, $pon_origin])
    {
        my ($arg, $want, $pwant) = @$mode;
        my $what = "$name, absolute URIs: " . ($arg eq 'keep' ? 'kept' : 'on the origin signed');

        my ($rc, $out, $err) = rewrite("$fx/$name", $arg);
        is($rc, 0, "$what: rewritten") or diag($err);
        is($err, '', "$what: nothing on stderr");

        # the bytes: only insertions, each separator + query
        (my $back = $out) =~ s/[?&]\Q$query\E//g;
        ok($back eq $in, "$what: output less the queries is the input, byte for byte");
        my $n = () = $out =~ /[?&]\Q$query\E/g;
        is($n, $want, "$what: $want of its $lines URIs signed");
        is(() = $out =~ /\r\n/g, () = $in =~ /\r\n/g, "$what: line endings kept");

        # the structure, through m3u8-parser
        my $of = "$tmp/$name.$n.out";
        open my $fh, '>:raw', $of or die "$of: $!";
        print $fh $out;
        close $fh;

        my ($jout, $jerr) = ('', '');
        run(['node', "$parser/compare.js", "$fx/$name", $of, $query,
             $arg eq 'keep' ? () : ($origin)], '>', \$jout, '2>', \$jerr);
        is($? >> 8, 0, "$what: m3u8-parser reads the same playlist, URIs signed")
            or diag($jerr);
        my $got = eval { decode_json($jout) } || {};
        is_deeply($got, { uris => $uris, signed => $pwant },
                  "$what: the parser saw $uris URIs, $pwant of them signed");
    }
}

# the define mode (vodlms_hls_sign define): the query once, in an
# EXT-X-DEFINE after #EXTM3U, and "{$vodlms}" where it went in every URI;
# m3u8-parser substitutes the variable (as hls.js and protocol-version-8
# players do) and must see exactly the URIs of the query mode
for my $name (sort keys %case) {
    my ($lines, $keep, undef, $uris, $pkeep) = @{ $case{$name} };
    my $what = "$name, define mode";
    my $in = slurp("$fx/$name");

    local $ENV{HLS_REWRITE_DEFINE} = 'vodlms';
    my ($rc, $out, $err) = rewrite("$fx/$name", 'keep');
    is($rc, 0, "$what: rewritten") or diag($err);

    my $eol = $in =~ /\A(?:\xef\xbb\xbf)?#EXTM3U[ \t]*(\r?\n)/ ? $1 : "\n";
    like($out, qr/\A(?:\xef\xbb\xbf)?#EXTM3U[ \t]*\r?\n(?:#EXT-X-VERSION:8\r?\n)?#EXT-X-DEFINE:NAME="vodlms",VALUE="\Q$query\E"\Q$eol\E/,
         "$what: the query once, in an EXT-X-DEFINE after #EXTM3U");
    is(() = $out =~ /\Q$query\E/g, 1, "$what: and nowhere else");
    my $n = () = $out =~ /[?&]\{\$vodlms\}/g;
    is($n, $keep, "$what: $keep URIs name the variable");
    ok(length($out) < length($in) + $keep * 10 + length($query) + 64,
       "$what: " . length($out) . ' bytes for ' . length($in) . ' (the query mode: '
       . (length($in) + $keep * (1 + length $query)) . ')');

    my $of = "$tmp/$name.define.out";
    open my $fh, '>:raw', $of or die "$of: $!";
    print $fh $out;
    close $fh;
    my ($jout, $jerr) = ('', '');
    run(['node', "$parser/compare.js", "$fx/$name", $of, $query, '-', 'define'],
        '>', \$jout, '2>', \$jerr);
    is($? >> 8, 0, "$what: m3u8-parser substitutes the variable: the query mode's URIs")
        or diag($jerr);
    my $got = eval { decode_json($jout) } || {};
    is_deeply($got, { uris => $uris, signed => $pkeep },
              "$what: the parser saw $uris URIs, $pkeep of them signed");
}

# refusals: nothing on stdout, the code and the line on stderr
{
    my ($rc, $out, $err) = rewrite("$fx/master.m3u8", 'refuse');
    is($rc, 1, 'absolute URIs refused: exit 1');
    is($out, '', 'absolute URIs refused: nothing written');
    like($err, qr/^hls_rewrite: refused: absolute URI \(line 18\)$/m,
         'absolute URIs refused: the reason and the line of the first');

    ($rc, $out, $err) = rewrite("$fx/media-crlf.m3u8", 'keep', 1 << 20, 60);
    is($rc, 1, 'a line over the limit: exit 1');
    is($out, '', 'a line over the limit: nothing written');
    like($err, qr/^hls_rewrite: too long: line too long \(line 6\)$/m,
         'a line over the limit: the reason and the line');

    ($rc, $out, $err) = rewrite("$fx/media-crlf.m3u8", 'keep', 100, 4096);
    is($rc, 1, 'a playlist over the limit: exit 1');
    like($err, qr/^hls_rewrite: too long: playlist too large/m,
         'a playlist over the limit: the reason');

    my $cut = "$tmp/cut.m3u8";
    open my $fh, '>:raw', $cut or die "$cut: $!";
    print $fh "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\n#EXTINF:4,\na.ts\n";
    close $fh;
    ($rc, $out, $err) = rewrite($cut, 'keep');
    is($rc, 1, 'an unterminated quote: exit 1');
    like($err, qr/^hls_rewrite: malformed: unterminated quoted string \(line 2\)$/m,
         'an unterminated quote: the reason and the line');
}

done_testing();
