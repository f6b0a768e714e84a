#!/usr/bin/perl

# The fuzzing smoke pass CI runs: each libFuzzer target of the pure core
# (t/unit/fuzz_core.c, fuzz_cf.c, fuzz_coverage.c, fuzz_hls.c) and of the
# helper's caption parser (fuzz_captions.c); ASan + UBSan, for a few
# seconds each from the seed corpus in t/unit/corpus.  A crash,
# a sanitizer report, a leak or a failed contract check makes libFuzzer
# exit non-zero: not ok.
# Longer runs: ./build.sh fuzz (VODLMS_FUZZ_SECONDS per target).
#
# VODLMS_FUZZ_SMOKE_SECONDS sets the time per target (default 5).

use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;

my $unit = File::Spec->rel2abs(dirname(__FILE__));
my $repo = File::Spec->catdir($unit, '..', '..');
my $build = (defined $ENV{VODLMS_BUILD_DIR} && length $ENV{VODLMS_BUILD_DIR})
            ? $ENV{VODLMS_BUILD_DIR}
            : File::Spec->catdir($repo, 'build');
my $secs = $ENV{VODLMS_FUZZ_SMOKE_SECONDS} || 5;

$| = 1;
print "1..5\n";

my $out = qx{make -C '$unit' BUILD='$build' fuzz-smoke SMOKE_SECONDS=$secs 2>&1};
my $rc = $? >> 8;

# libFuzzer's last words for each target, in the Makefile's order
my @done = $out =~ /^Done (\d+) runs in (\d+) second/mg;
my @cov = $out =~ /^#\d+\s+DONE\s+cov: (\d+) ft: (\d+)/mg;

my $n = 0;
for my $target (qw(fuzz_core fuzz_cf fuzz_coverage fuzz_hls fuzz_captions)) {
    my ($runs, $s) = splice @done, 0, 2;
    my ($edges, $features) = splice @cov, 0, 2;
    $n++;
    if (defined $runs) {
        print "ok $n - $target: $runs runs in $s s, $edges edges, $features features, nothing found\n";
    } else {
        print "not ok $n - $target did not finish its run (make exit $rc)\n";
        my @tail = (split /\n/, $out)[-40 .. -1];
        print STDERR "# $_\n" for grep { defined } @tail;
    }
}
