#!/usr/bin/perl

# Runs the C unit test of the helper's pure logic (helper/tests/test_logic.c:
# ladder planning, the ffmpeg command, ffprobe JSON, playlist measures, the
# master playlist) under prove.  The binary is built by
# `make -C helper BUILD=<dir>/helper` into <dir>/helper/test_logic: <dir> is
# $VODLMS_BUILD_DIR, or the repository's build/ when that is unset.  A
# missing binary is a failure, never a skip.

use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;

my $repo = File::Spec->rel2abs(File::Spec->catdir(dirname(__FILE__), '..'));
my $build = (defined $ENV{VODLMS_BUILD_DIR} && length $ENV{VODLMS_BUILD_DIR})
            ? $ENV{VODLMS_BUILD_DIR}
            : File::Spec->catdir($repo, 'build');
my $bin = File::Spec->catfile($build, 'helper', 'test_logic');

$| = 1;

unless (-f $bin && -x _) {
    print "1..1\n";
    print "not ok 1 - unit test binary not built: $bin\n";
    print STDERR "# build it with: make -C helper BUILD=$build/helper\n";
    exit 1;
}

exec { $bin } $bin
    or do {
        print "1..1\n";
        print "not ok 1 - cannot run $bin: $!\n";
        exit 1;
    };
