#!/usr/bin/perl

# Runs the C unit tests of the CloudFront core under prove, so that
# `prove -r t/` covers them too.  The binary is built by
# `make -C t/unit BUILD=<dir>` into <dir>/unit/test_cloudfront: <dir> is
# $VODLMS_BUILD_DIR, or the repository's build/ when that is unset.  It
# reads the vectors from $VODLMS_VECTORS_DIR, set here to the shared
# vectors beside the repository unless the environment already names a
# directory.  A missing binary or missing vectors are a failure, never a
# skip.

use strict;
use warnings;

use FindBin;
use File::Spec;

my $repo = File::Spec->rel2abs(
    File::Spec->catdir($FindBin::Bin, '..', '..'));
my $build = (defined $ENV{VODLMS_BUILD_DIR} && length $ENV{VODLMS_BUILD_DIR})
            ? $ENV{VODLMS_BUILD_DIR}
            : File::Spec->catdir($repo, 'build');
my $bin = File::Spec->catfile($build, 'unit', 'test_cloudfront');

$ENV{VODLMS_VECTORS_DIR} = File::Spec->rel2abs(
    File::Spec->catdir($FindBin::Bin, '..', '..', '..', 'shared', 'vectors',
                       'cloudfront'))
    unless defined $ENV{VODLMS_VECTORS_DIR} && length $ENV{VODLMS_VECTORS_DIR};

$| = 1;

unless (-f $bin && -x _) {
    print "1..1\n";
    print "not ok 1 - unit test binary not built: $bin\n";
    print STDERR "# build it with: make -C t/unit BUILD=$build\n";
    exit 1;
}

# the list form: no shell, whatever the path contains
exec { $bin } $bin
    or do {
        print "1..1\n";
        print "not ok 1 - cannot run $bin: $!\n";
        exit 1;
    };
