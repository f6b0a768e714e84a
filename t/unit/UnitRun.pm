package UnitRun;

# The runner every t/unit/*.t shares: exec the C unit test binary
# <build>/unit/<name> (built by `make -C t/unit BUILD=<build>`), <build>
# being $VODLMS_BUILD_DIR or the repository's build/, so that `prove -r t/`
# runs the C tests too.  A missing binary is a failure, never a skip.

use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;

sub run {
    my ($name) = @_;

    my $repo = File::Spec->rel2abs(
        File::Spec->catdir(dirname(__FILE__), '..', '..'));
    my $build = (defined $ENV{VODLMS_BUILD_DIR} && length $ENV{VODLMS_BUILD_DIR})
                ? $ENV{VODLMS_BUILD_DIR}
                : File::Spec->catdir($repo, 'build');
    my $bin = File::Spec->catfile($build, 'unit', $name);

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
}

1;
