#!/usr/bin/perl

# `./build.sh run` from a checkout nobody else can enter (issue #15): a
# clone in root's home, in `mktemp -d`, in a 0700 home directory.  A copy of
# this working tree (its tracked files) goes into a fresh 0700 directory
# and `./build.sh run` is started from it on free ports, with a 6 s sample
# lecture; the test waits until the player page and alice's
# /api/videos/intro-ready/stream answer 200, stops it with SIGTERM, and
# checks that nothing it started is left (no process with its state
# directory or the checkout open, as its cwd or on its command line).
#
#   1. as root: PostgreSQL runs as postgres and nginx's workers as nobody,
#      neither of which can enter the checkout, so the state must live
#      elsewhere (build.sh: /var/lib/vodlms-dev/<name>-<hash>/); a second
#      start reuses it and does not transcode again
#   2. as an ordinary user (nobody, with runuser): everything runs as that
#      user, state in the checkout's var/
#
# The module and helper are the ones already built (VODLMS_BUILD_DIR),
# copied next to the checkout and run with VODLMS_SKIP_BUILD=1; hls.js is
# copied from this tree's docs/examples/player/node_modules when present.
# Needs root (to be root, and to become nobody).

use strict;
use warnings;

use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use File::Spec;
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);
use Test::More;

use lib File::Spec->catdir(dirname(__FILE__), 'lib');
use VodlmsTest qw(package_lock);

my $repo = $ENV{VODLMS_ROOT}
    || File::Spec->rel2abs(File::Spec->catdir(dirname(__FILE__), '..'));
my $build = $ENV{VODLMS_BUILD_DIR} || "$repo/build";
my $so = "$build/ngx_http_vodlms_module.so";
my $helper = "$build/helper/vodlms-helper";

plan skip_all => 'runs ./build.sh run as root and as nobody: needs root' if $> != 0;
plan skip_all => "no $so or $helper: ./build.sh build first"
    unless -f $so && -x $helper;

sub free_port {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                  LocalPort => 0, ReuseAddr => 1) or die $!;
    return $s->sockport;
}

sub slurp { my ($f) = @_; open my $fh, '<', $f or return ''; local $/; <$fh> }

# the tracked files of this tree, as they are now, into DEST
sub copy_tree {
    my ($dest) = @_;
    make_path($dest);
    my @files = grep { -e "$repo/$_" && !-d "$repo/$_" }
                split /\0/, qx{git -C '$repo' ls-files -z};
    die "git ls-files found nothing in $repo" unless @files;
    open my $tar, '|-', 'tar', '-C', $repo, '--null', '-T', '-', '-cf', "$dest.tar" or die $!;
    print $tar join("\0", @files), "\0";
    close $tar or die "tar failed";
    system('tar', '-C', $dest, '-xf', "$dest.tar") == 0 or die "untar failed";
    unlink "$dest.tar";
    # hls.js, as `npm ci` in that checkout would install it (saves the
    # registry round trip; the lock stamp tells build.sh it is current)
    my $nm = "$repo/docs/examples/player/node_modules";
    if (-f "$nm/.vodlms-lock.sha") {
        system('cp', '-R', $nm, "$dest/docs/examples/player/") == 0 or die "cp node_modules";
    }
}

# processes that have PATH open: as cwd, executable, a file, or on the command line
sub users_of {
    my (@paths) = @_;
    my @found;
    opendir my $d, '/proc' or die $!;
    for my $pid (grep { /^\d+$/ && $_ != $$ } readdir $d) {
        my @refs = grep { defined } (readlink("/proc/$pid/cwd"), readlink("/proc/$pid/exe"));
        if (opendir my $fd, "/proc/$pid/fd") {
            push @refs, grep { defined } map { readlink("/proc/$pid/fd/$_") } readdir $fd;
        }
        push @refs, join(' ', split /\0/, slurp("/proc/$pid/cmdline"));
        for my $p (@paths) {
            if (grep { index($_, $p) >= 0 } @refs) {
                my $cmd = join(' ', split /\0/, slurp("/proc/$pid/cmdline"));
                push @found, "$pid ($cmd)";
                last;
            }
        }
    }
    return @found;
}

my $http = HTTP::Tiny->new(timeout => 5);

# start `./build.sh run` in CHECKOUT as USER (undef: root) with ENV;
# returns (pid, log file)
sub start_run {
    my ($checkout, $user, $log, %env) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        setpgrp(0, 0);
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $log or die $!;
        open STDERR, '>&', \*STDOUT;
        chdir $checkout or die $!;
        # prove's -I paths point into this checkout, which the user may not
        # enter: perl scripts such as psql would die on them
        delete @ENV{qw(PERL5LIB PERLLIB PERL5OPT)};
        my @env = map { "$_=$env{$_}" } sort keys %env;
        if (defined $user) {
            # a login's environment, not ours; setpriv execs (runuser would
            # fork), so the pid is build.sh's, for SIGTERM
            my $group = getgrgid((getpwnam($user))[3]);
            exec 'setpriv', "--reuid=$user", "--regid=$group", '--init-groups',
                'env', '-i', "PATH=$ENV{PATH}", 'LANG=C.UTF-8', "USER=$user", @env,
                './build.sh', 'run';
        }
        exec 'env', @env, './build.sh', 'run';
        die "exec: $!";
    }
    return $pid;
}

sub exited { my ($pid) = @_; return waitpid($pid, WNOHANG) == $pid ? $? : undef }

# wait until the player page and alice's stream answer 200; returns the
# state directory the log names, or undef (with a diagnostic)
sub wait_ready {
    my ($pid, $log, $port, $secs) = @_;
    my $base = "http://127.0.0.1:$port";
    my $end = time + $secs;
    my ($player, $stream) = (0, 0);
    while (time < $end) {
        if (defined(my $st = exited($pid))) {
            diag("./build.sh run exited ($st) before it was ready:\n" . slurp($log));
            return (undef, $st);
        }
        $player = $http->get("$base/player/")->{status};
        $stream = $http->get("$base/api/videos/intro-ready/stream",
                             { headers => { Cookie => 'session=demo-alice' } })->{status};
        last if $player == 200 && $stream == 200;
        sleep 0.5;
    }
    unless ($player == 200 && $stream == 200) {
        diag("not ready after $secs s (player $player, stream $stream):\n" . slurp($log));
        return (undef, undef);
    }
    my ($state) = slurp($log) =~ /^==> state in (\S+)/m;
    return ($state, undef);
}

# SIGTERM, then its exit status (or undef after 60 s)
sub stop_run {
    my ($pid) = @_;
    kill 'TERM', $pid;
    my $end = time + 60;
    while (time < $end) {
        my $st = exited($pid);
        return $st if defined $st;
        sleep 0.1;
    }
    return undef;
}

my @cleanup;     # state directories outside the temporary ones
my @groups;      # process groups to take down if the test dies half-way
END {
    for my $g (@groups) { kill 'KILL', -$g if kill 0, -$g }
    for my $d (@cleanup) {
        remove_tree($d);
        rmdir dirname($d);      # /var/lib/vodlms-dev, if nothing else is there
    }
}

# one run: start, wait, probe, stop, look for leftovers
sub one_run {
    my (%o) = @_;
    my ($name, $checkout, $user, $log) = @o{qw(name checkout user log)};
    my ($port, %env, $t0, $pid, $state, $st);

    # The ports are free when picked, but other suites run beside this one
    # and may take one before ./build.sh run binds it: that (and only that)
    # is tried again on other ports, twice at most
    for my $try (1 .. 3) {
        if ($try > 1) { open my $fh, '>', $log or die "$log: $!" }     # this try's log only
        $port = free_port();
        %env = (VODLMS_HTTP_PORT => $port, VODLMS_REDIS_PORT => free_port(),
                VODLMS_PG_PORT => free_port(), VODLMS_BUILD_DIR => $o{prebuilt},
                VODLMS_SKIP_BUILD => 1, VODLMS_RUN_SAMPLE_SECONDS => 6,
                %{ $o{env} || {} });
        $t0 = time;
        # t/150 installs and purges packages; until this run is up (it
        # checks its packages first), not beside it (t/lib's package_lock)
        my $packages = package_lock('shared');
        $pid = start_run($checkout, $user, $log, %env);
        push @groups, $pid;
        ($state, $st) = wait_ready($pid, $log, $port, 150);
        undef $packages;
        last if defined $state || !defined $st || $try == 3
             || slurp($log) !~ /Address already in use|did not start on port/;
        diag("$name: a port was taken before ./build.sh run bound it; again on other ports");
    }
    ok(defined $state, sprintf("%s: player and alice's stream answer 200 after %.0f s", $name, time - $t0))
        or do { kill 'KILL', -$pid; waitpid $pid, 0; return };
    my $page = $http->get("http://127.0.0.1:$port/player/");
    like($page->{content}, qr/<script src="common\.js">/, "$name: /player/ is the player page");
    my $rc = stop_run($pid);
    is($rc, 0, "$name: ./build.sh run stops on SIGTERM, status 0");
    my @left = users_of($state, $checkout);
    is(scalar(@left), 0, "$name: nothing left running with $state or the checkout open")
        or diag(join("\n", @left));
    for my $p (@env{qw(VODLMS_HTTP_PORT VODLMS_REDIS_PORT VODLMS_PG_PORT)}) {
        ok(!IO::Socket::INET->new(PeerAddr => "127.0.0.1:$p"), "$name: nothing listens on port $p");
    }
    kill 'KILL', -$pid if kill 0, -$pid;
    return $state;
}

my $prebuilt_of = sub {
    my ($dir) = @_;
    make_path("$dir/helper");
    system('cp', $so, "$dir/") == 0 or die;
    system('cp', $helper, "$dir/helper/") == 0 or die;
    system('chmod', '-R', 'a+rX', $dir) == 0 or die;
    return $dir;
};

# ---------------------------------------------------------------- 1. root

{
    my $top = tempdir('vodlms-t160-root.XXXXXX', TMPDIR => 1, CLEANUP => 1);
    chmod 0700, $top;
    my $checkout = "$top/vodlms";
    copy_tree($checkout);
    my $prebuilt = $prebuilt_of->("$top/prebuilt");
    ok(system('runuser', '-u', 'postgres', '--', 'test', '-x', $checkout) != 0
       && system('runuser', '-u', 'nobody', '--', 'test', '-x', $checkout) != 0,
       "root: postgres and nobody cannot enter the checkout ($checkout)");

    my $log = "$top/run.log";
    my $state = one_run(name => 'root', checkout => $checkout, user => undef,
                        log => $log, prebuilt => $prebuilt);
    SKIP: {
        skip 'root: the first run did not come up', 5 unless defined $state;
        push @cleanup, $state if index($state, "$checkout/") != 0;
        ok(index($state, "$checkout/") != 0, "root: the state is outside the checkout: $state");
        ok(system('runuser', '-u', 'nobody', '--', 'test', '-r', "$state/nginx/nginx.conf") == 0,
           'root: nginx\'s workers (nobody) can reach it');
        like(slurp($log), qr/uploading it as carol/, 'root: the first run uploaded and transcoded the sample');

        # a second start reuses the state: the database says the lecture is ready
        my $log2 = "$top/run2.log";
        my $again = one_run(name => 'root, again', checkout => $checkout, user => undef,
                            log => $log2, prebuilt => $prebuilt);
        is($again, $state, 'root, again: the same state directory');
        unlike(slurp($log2), qr/uploading it as carol/, 'root, again: no second upload');
    }
}

# ---------------------------------------------------------------- 2. nobody

{
    my $top = tempdir('vodlms-t160-user.XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $checkout = "$top/vodlms";
    copy_tree($checkout);
    my $prebuilt = $prebuilt_of->("$top/prebuilt");
    make_path("$top/home");
    system('chown', '-R', 'nobody:nogroup', $top) == 0 or die 'chown';
    chmod 0700, $top;

    my $log = "$top/run.log";
    my $state = one_run(name => 'nobody', checkout => $checkout, user => 'nobody',
                        log => $log, prebuilt => $prebuilt, env => { HOME => "$top/home" });
    SKIP: {
        skip 'nobody: the run did not come up', 1 unless defined $state;
        is($state, "$checkout/var", 'nobody: the state is the checkout\'s var/');
    }
}

done_testing();
