#!/usr/bin/perl

# Runs the C unit tests of the helper's pure logic under prove:
# helper/tests/test_logic.c (ladder planning, the ffmpeg command, ffprobe
# JSON, playlist measures, the master playlist with its subtitle tracks) and
# helper/tests/test_captions.c (caption validation, SRT to WebVTT, markup,
# limits, subtitle segments and playlist).  Their TAP streams are joined
# into one, renumbered.  The binaries are built by
# `make -C helper BUILD=<dir>/helper` into <dir>/helper/: <dir> is
# $VODLMS_BUILD_DIR, or the repository's build/ when that is unset.  A
# missing binary, a failed test, a wrong plan or a non-zero exit is a
# failure, never a skip.

use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;

my $repo = File::Spec->rel2abs(File::Spec->catdir(dirname(__FILE__), '..'));
my $build = (defined $ENV{VODLMS_BUILD_DIR} && length $ENV{VODLMS_BUILD_DIR})
            ? $ENV{VODLMS_BUILD_DIR}
            : File::Spec->catdir($repo, 'build');

$| = 1;

my $n = 0;

for my $name (qw(test_logic test_captions)) {
    my $bin = File::Spec->catfile($build, 'helper', $name);

    unless (-f $bin && -x _) {
        $n++;
        print "not ok $n - unit test binary not built: $bin\n";
        print STDERR "# build it with: make -C helper BUILD=$build/helper\n";
        next;
    }
    my ($ran, $plan) = (0, undef);
    open(my $fh, '-|', $bin) or do {
        $n++;
        print "not ok $n - cannot run $bin: $!\n";
        next;
    };
    while (my $line = <$fh>) {
        if ($line =~ /^(not ok|ok) \d+(.*)$/s) {
            $ran++;
            $n++;
            print "$1 $n$2";
        } elsif ($line =~ /^1\.\.(\d+)/) {
            $plan = $1;
        } else {
            print $line;
        }
    }
    close($fh);
    my $rc = $?;
    $n++;
    if ($rc == 0 && defined $plan && $plan == $ran) {
        print "ok $n - $name: exit 0, ran its $ran tests\n";
    } else {
        printf "not ok %d - %s: exit status %d, plan %s, ran %d\n", $n, $name,
               $rc >> 8, $plan // 'none', $ran;
    }
}

print "1..$n\n";
