#!/usr/bin/perl

# Runs the C unit test of the helper's SigV4 signing (libcurl's
# CURLOPT_AWS_SIGV4 fed by helper/s3_sign.c) under prove.  The binary is
# built by `make -C helper BUILD=<dir>/helper` into <dir>/helper/test_sigv4:
# <dir> is $VODLMS_BUILD_DIR, or the repository's build/ when that is unset.
# It reads the vectors from <repo>/../shared/vectors/sigv4 (or
# $VODLMS_SIGV4_VECTORS).  A missing binary or missing vectors are a
# failure, never a skip.

use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;

my $repo = File::Spec->rel2abs(File::Spec->catdir(dirname(__FILE__), '..'));
my $build = (defined $ENV{VODLMS_BUILD_DIR} && length $ENV{VODLMS_BUILD_DIR})
            ? $ENV{VODLMS_BUILD_DIR}
            : File::Spec->catdir($repo, 'build');
my $bin = File::Spec->catfile($build, 'helper', 'test_sigv4');

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
