#!/usr/bin/perl
# Negative self-check of the compat Test::Nginx::Socket runner: proves that
# it FAILS when it should (so that a runner bug cannot turn every suite
# green), that it leaves no nginx behind, and that its plan counts match.
# Each case writes a small .t file to a temp dir, runs it with
# "perl -I t/compat", and looks at the TAP it prints.
#
#   TEST_NGINX_BINARY=/usr/sbin/nginx prove t/compat/selfcheck.pl
#   (or: perl t/compat/selfcheck.pl)
#
# Not a .t file on purpose: "prove -r t/" must not pick it up.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX qw(:sys_wait_h);
use Test::More;
use Time::HiRes qw(sleep time);

my $compat = dirname(abs_path(__FILE__));
my $tmp = tempdir('compat-selfcheck-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $servroot = "$tmp/servroot";

sub free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Listen => 1) or die "no free port: $!";
    return $s->sockport;
}

my %env = (
    TEST_NGINX_BINARY    => $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx',
    TEST_NGINX_PORT      => $ENV{TEST_NGINX_PORT} || free_port(),
    TEST_NGINX_SERVROOT  => $servroot,
    TEST_NGINX_NO_SHUFFLE => 1,
    TEST_NGINX_TCP_PORT  => free_port(),
);
delete $ENV{$_} for grep { /^TEST_NGINX_/ } keys %ENV;

# Processes whose command line mentions our server root (nginx, valgrind).
sub leftovers {
    my @found;
    for my $dir (glob '/proc/[0-9]*') {
        my ($pid) = $dir =~ /(\d+)$/;
        next if $pid == $$;
        open my $st, '<', "$dir/stat" or next;
        my $stat = <$st> // '';
        next if $stat =~ /\)\s+Z\s/;    # exited, waiting to be reaped
        open my $cl, '<', "$dir/cmdline" or next;
        my $cmd = do { local $/; <$cl> } // '';
        next unless index($cmd, $servroot) >= 0 && $cmd =~ /nginx|valgrind/;
        $cmd =~ s/\0/ /g;
        push @found, "$pid $cmd";
    }
    return @found;
}

sub wait_no_leftovers {
    my $deadline = time + 5;
    while (my @l = leftovers()) {
        return @l if time > $deadline;
        sleep 0.02;
    }
    return ();
}

# Run one generated .t file; returns (exit status, combined output).
sub run_t {
    my ($name, $src, %extra) = @_;
    (my $base = $name) =~ s/[^\w.-]/_/g;
    my $file = "$tmp/$base.t";
    open my $out, '>', $file or die "$file: $!";
    print $out $src;
    close $out;
    local %ENV = (%ENV, %env, %extra);
    my $output = `cd $tmp && timeout 120 $^X -I $compat $file 2>&1`;
    return ($? >> 8, $output);
}

# Assert that a case fails, with a "not ok" line matching each $re.
sub expect_failure {
    my ($name, $src, $res, %extra) = @_;
    my ($rc, $out) = run_t($name, $src, %extra);
    my $ok = $rc != 0;
    for my $re (@$res) {
        $ok &&= $out =~ $re;
    }
    ok($ok, "fails as it should: $name") or diag("exit $rc, output:\n$out");
    my @left = wait_no_leftovers();
    ok(!@left, "no nginx left after: $name") or diag(join "\n", @left);
}

my $head = "use Test::Nginx::Socket 'no_plan';\nrun_tests();\n__DATA__\n\n";

#---------------------------------------------------------------------------
# Positive control: a passing file with an exact plan passes.
#---------------------------------------------------------------------------

{
    my ($rc, $out) = run_t('positive_exact', <<'EOF');
use Test::Nginx::Socket;
repeat_each(2);
plan tests => repeat_each() * (3 * blocks() + 1);
no_shuffle();
run_tests();
__DATA__

=== TEST 1: body, status, a no_error_log pattern
--- config
    location = /t { return 200 "ok\n"; }
--- request
GET /t
--- response_body
ok
--- no_error_log
[error]

=== TEST 2: two pipelined requests
--- config
    location = /t { return 200 "ok\n"; }
--- pipelined_requests eval
["GET /t", "GET /t"]
--- response_body eval
["ok\n", "ok\n"]
--- error_code eval
[200, 200]
EOF
    # per repeat: TEST 1 = status + body + 1 log pattern, TEST 2 = 2 x
    # (status + body) and no log check: 7, twice.
    is($rc, 0, 'positive control: passes, with the exact plan of the real runner')
        or diag($out);
    my @oks = $out =~ /^ok \d+/mg;
    is(scalar(@oks), 14, 'positive control: 14 passing checks');
    unlike($out, qr/^not ok/m, 'positive control: no failing check');
    ok(!wait_no_leftovers(), 'no nginx left after the positive control');
}

#---------------------------------------------------------------------------
# Checks that must fail
#---------------------------------------------------------------------------

my $ok_config = <<'EOF';
--- config
    location = /t { return 200 "ok\n"; }
--- request
GET /t
EOF

expect_failure('wrong body', $head . <<"EOF", [qr/^not ok .* - response_body - response is expected/m]);
=== TEST 1: wrong body
$ok_config--- response_body
not ok
EOF

expect_failure('wrong status', $head . <<"EOF", [qr/^not ok .* - status code ok/m]);
=== TEST 1: wrong status
$ok_config--- error_code: 404
--- response_body
ok
EOF

my @hdr_fail = (qr/^not ok .* - header Content-Type ok/m, qr/^not ok .* - header Server not present/m);
expect_failure('wrong header', $head . <<"EOF", \@hdr_fail);
=== TEST 1: wrong and unexpected headers
$ok_config--- response_headers
Content-Type: application/json
!Server
EOF

expect_failure('body_like mismatch', $head . <<"EOF", [qr/^not ok .* - response_body_like/m]);
=== TEST 1: response_body_like
$ok_config--- response_body_like: ^nope\$
EOF

expect_failure('missing error_log line', $head . <<"EOF", [qr/^not ok .* pattern "no such line anywhere" should match a line in error\.log/m]);
=== TEST 1: missing error_log line
$ok_config--- error_log
no such line anywhere
EOF

expect_failure('unexpected [error]', $head . <<'EOF', [qr/^not ok .* pattern "\[error\]" should not match any line in error\.log/m]);
=== TEST 1: a 404 for a missing file logs an [error]
--- config
--- request
GET /missing.html
--- error_code: 404
--- no_error_log
[error]
EOF

expect_failure('unexpected qr// in no_error_log', $head . <<'EOF', [qr/^not ok .* should not match any line in error\.log/m]);
=== TEST 1: qr pattern
--- config
--- request
GET /missing.html
--- error_code: 404
--- no_error_log eval
[qr/open\(\) ".*missing\.html" failed/]
EOF

expect_failure('second pipelined response wrong', $head . <<'EOF', [qr/^not ok .* response is expected \(repeated req 0, req 1\)/m]);
=== TEST 1: pipelined
--- config
    location = /a { return 200 "a\n"; }
    location = /b { return 200 "b\n"; }
--- pipelined_requests eval
["GET /a", "GET /b"]
--- response_body eval
["a\n", "a\n"]
EOF

expect_failure('second request of an array: wrong status', $head . <<'EOF', [qr/^not ok .* - status code ok/m]);
=== TEST 1: request array
--- config
    location = /a { return 200 "a\n"; }
--- request eval
["GET /a", "GET /nope"]
--- error_code eval
[200, 200]
EOF

expect_failure('client timeout without abort', $head . <<'EOF', [qr/^not ok .* ERROR: client socket timed out/m]);
=== TEST 1: the response never completes
--- config
    location = /hang { proxy_read_timeout 5s; proxy_pass http://127.0.0.1:$TEST_NGINX_TCP_PORT/; }
--- tcp_listen eval: $ENV{TEST_NGINX_TCP_PORT}
--- tcp_reply:
--- tcp_no_close
--- request
GET /hang
--- timeout: 200ms
--- ignore_response
EOF

expect_failure('config error: nginx does not start', $head . <<'EOF', [qr/^not ok .* nginx failed to start/m]);
=== TEST 1: unknown directive
--- config
    no_such_directive on;
--- request
GET /t
EOF

{
    my ($rc, $out) = run_t('undefined env', $head . <<'EOF');
=== TEST 1: undefined $TEST_NGINX_ variable
--- config
    location = /t { return 200 "$TEST_NGINX_NOT_DEFINED_ANYWHERE"; }
--- request
GET /t
EOF
    ok($rc != 0 && $out =~ /Bail out!.*No environment TEST_NGINX_NOT_DEFINED_ANYWHERE defined/,
       'fails as it should: undefined $TEST_NGINX_ variable bails out') or diag($out);
}

# Real-runner parity: the log checks run after every pipelined response
# and only the first one sees the lines, so error_log cannot be used with
# pipelined_requests (the real Test::Nginx::Socket fails the same way).
expect_failure('error_log with pipelined requests (as the real runner)', $head . <<'EOF', [qr/^not ok .* pattern "open\(\)" should match a line in error\.log/m]);
=== TEST 1: pipelined + error_log
--- config
--- pipelined_requests eval
["GET /missing1", "GET /missing2"]
--- error_code eval
[404, 404]
--- error_log
open()
EOF

#---------------------------------------------------------------------------
# Crashes are failures
#---------------------------------------------------------------------------

my $kill_nginx = <<'EOF';
--- init
open my $f, '<', "$ENV{TEST_NGINX_SERVER_ROOT}/logs/nginx.pid" or die "pid: $!";
my $pid = <$f>; chomp $pid;
kill 'SEGV', $pid;
select undef, undef, undef, 0.2;
EOF

expect_failure('nginx killed by SIGSEGV', $head . <<"EOF", [qr/^not ok .* nginx exited on signal 11/m]);
=== TEST 1: nginx dies during the block
--- config
    location = /t { return 200 "ok\\n"; }
$kill_nginx--- request
GET /t
--- response_body
ok
EOF

my $kill_worker = <<'EOF';
--- init
open my $f, '<', "$ENV{TEST_NGINX_SERVER_ROOT}/logs/nginx.pid" or die "pid: $!";
my $master = <$f>; chomp $master;
my ($worker) = `pgrep -P $master` =~ /(\d+)/ or die "no worker";
kill 'SEGV', $worker;
select undef, undef, undef, 0.3;
EOF

my $master_head = "use Test::Nginx::Socket 'no_plan';\nmaster_on();\nrun_tests();\n__DATA__\n\n";
my @alert_fail = (qr/^not ok .* nginx logged 1 \[alert\] line\(s\), e\.g\. ".*exited on signal 11/m);
expect_failure('worker killed by SIGSEGV (master_on)', $master_head . <<"EOF", \@alert_fail);
=== TEST 1: a worker crashes; the master respawns it
--- config
    location = /t { return 200 "ok\\n"; }
$kill_worker--- request
GET /t
--- response_body
ok
EOF

#---------------------------------------------------------------------------
# No nginx survives the test file
#---------------------------------------------------------------------------

expect_failure('die() in the middle of run_tests', $head . <<'EOF', [qr/boom from a filter/]);
=== TEST 1: a body filter dies
--- config
    location = /t { return 200 "ok\n"; }
--- request
GET /t
--- response_body_filters eval
sub { die "boom from a filter\n" }
--- response_body
ok

=== TEST 2: never reached
--- config
    location = /t { return 200 "ok\n"; }
--- request
GET /t
EOF

for my $sig (qw(TERM KILL)) {
    my $file = "$tmp/killed_$sig.t";
    open my $out, '>', $file or die;
    print $out $head . <<'EOF';
=== TEST 1: sleeps while nginx runs
--- config
    location = /t { return 200 "ok\n"; }
--- init
sleep 30;
--- request
GET /t
EOF
    close $out;
    local %ENV = (%ENV, %env);
    my $pid = fork // die;
    if (!$pid) {
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', '/dev/null';
        exec $^X, '-I', $compat, $file or POSIX::_exit(127);
    }
    my $deadline = time + 10;
    sleep 0.02 until leftovers() || time > $deadline;
    ok(scalar(leftovers()), "SIG$sig case: nginx was running");
    kill $sig, $pid;
    waitpid($pid, 0);
    my @left = wait_no_leftovers();
    ok(!@left, "no nginx left after the runner got SIG$sig") or diag(join "\n", @left);
}

#---------------------------------------------------------------------------
# valgrind errors are failures (needs valgrind and a C compiler)
#---------------------------------------------------------------------------

SKIP: {
    my $have = !system('sh', '-c', 'command -v valgrind >/dev/null && command -v cc >/dev/null');
    skip 'valgrind or cc not installed', 2 unless $have;
    # A preloaded library that leaks at startup: a "definitely lost" block
    # that no suppression covers.
    open my $c, '>', "$tmp/leak.c" or die;
    print $c "#include <stdlib.h>\nvoid *keep;\n"
           . "__attribute__((constructor)) static void leak(void) "
           . "{ keep = malloc(100); keep = 0; }\n";
    close $c;
    system('cc', '-shared', '-fPIC', '-O0', '-o', "$tmp/leak.so", "$tmp/leak.c") == 0
        or skip 'cannot build the leaking library', 2;
    my %vg = (TEST_NGINX_USE_VALGRIND => 1, LD_PRELOAD => "$tmp/leak.so");
    expect_failure('valgrind reports a leak', $head . <<'EOF', [qr/^not ok .* valgrind reported errors/m], %vg);
=== TEST 1: leaky nginx
--- config
    location = /t { return 200 "ok\n"; }
--- request
GET /t
--- response_body
ok
EOF
}

done_testing();
