package Test::Nginx::Socket;

# A stand-in for openresty's Test::Nginx::Socket, written for this project
# (vodlms) because Debian does not package Test::Nginx.  It runs .t files
# written for the real runner unchanged, for the subset of the format that
# t/compat/README.md lists.  build.sh only puts t/compat on @INC when the
# real module is not installed.
#
# Like the real runner it is a Test::Base subclass, so the __DATA__ parsing
# (blocks, sections, filters, ONLY/SKIP/LAST) is Test::Base's own and
# therefore identical.  What differs on purpose:
#   * nginx runs with "daemon off" as a direct child of this process; it is
#     stopped with SIGQUIT and waitpid()ed (SIGKILL after a bounded wait);
#   * readiness is detected by polling for the pid file and the LISTEN
#     socket, not by sleeps;
#   * a crash (exit on a signal, a non-zero exit, an "[alert]" line such as
#     "worker process N exited on signal 11") or valgrind errors fail a test;
#   * temp paths live under the server root, so Debian's compiled-in
#     /var/lib/nginx paths are never needed.

use strict;
use warnings;

# "-base" (lower case): inherit from Test::Base without Spiffy's source
# filter.  This also imports Test::Base's exports (is, like, pass, fail,
# skip, diag, plan, blocks, ...) into this package.
use Test::Base -base;

our $VERSION = '0.01';
our $IS_VODLMS_COMPAT = 1;    # lets a caller tell this runner from the real one

use Cwd ();
use Digest::MD5 ();
use Digest::SHA ();
use Errno qw(EAGAIN EWOULDBLOCK EINTR EADDRINUSE);
use File::Path qw(make_path remove_tree);
use File::Spec ();
use File::Temp ();
use HTTP::Response ();
use IO::Select ();
use IO::Socket::INET ();
use IO::Socket::UNIX ();
use List::Util qw(shuffle min max);
use POSIX qw(:sys_wait_h SIGQUIT SIGKILL SIGTERM);
use Scalar::Util qw(looks_like_number);
use Socket qw(SOCK_STREAM);
use Test::LongString ();
use Time::HiRes qw(sleep time);

our @EXPORT = qw(
    env_to_nginx is_str plan run_tests run_test repeat_each config_preamble
    worker_connections master_process_enabled no_long_string workers
    master_on master_off log_level no_shuffle no_root_location server_name
    server_addr server_root html_dir server_port server_port_for_client
    timeout check_accum_error_log add_block_preprocessor bail_out
    add_cleanup_handler add_response_body_check
);

sub gen_rand_port ($$);
sub value_contains ($$);

#---------------------------------------------------------------------------
# Settings (same environment variables and defaults as the real runner)
#---------------------------------------------------------------------------

our $ServerAddr           = '127.0.0.1';
our $ServerName           = 'localhost';
our $NginxBinary          = $ENV{TEST_NGINX_BINARY} || 'nginx';
our $Workers              = 1;
our $WorkerConnections    = 64;
our $LogLevel             = $ENV{TEST_NGINX_LOG_LEVEL} || 'debug';
our $MasterProcessEnabled = $ENV{TEST_NGINX_MASTER_PROCESS} || 'off';
our $ServerPort = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT} || 1984;
our $ServerPortForClient = $ENV{TEST_NGINX_CLIENT_PORT} || $ServerPort;
our $RepeatEach           = 1;
our $NoShuffle            = $ENV{TEST_NGINX_NO_SHUFFLE} || 0;
our $NoRootLocation       = 0;
our $Timeout              = $ENV{TEST_NGINX_TIMEOUT} || 3;
our $TestNginxSleep       = $ENV{TEST_NGINX_SLEEP} || 0.015;
our $CheckAccumErrLog     = $ENV{TEST_NGINX_CHECK_ACCUM_ERR_LOG};
our $UseValgrind          = $ENV{TEST_NGINX_USE_VALGRIND};
our $ValgrindSupp         = $ENV{TEST_NGINX_VALGRIND_SUPP};
our $LoadModules          = $ENV{TEST_NGINX_LOAD_MODULES};
our $NoClean              = $ENV{TEST_NGINX_NO_CLEAN};
our $EventType            = $ENV{TEST_NGINX_EVENT_TYPE};
our $PostponeOutput       = $ENV{TEST_NGINX_POSTPONE_OUTPUT};
our $ReusePort            = $ENV{TEST_NGINX_REUSE_PORT};
our $WorkerUser           = $ENV{TEST_NGINX_WORKER_USER};
our $Randomize            = $ENV{TEST_NGINX_RANDOMIZE};
our $Verbose              = $ENV{TEST_NGINX_VERBOSE};
our $NoLongString;
our $ConfigPreamble       = '';
our (@EnvToNginx, @BlockPreprocessors, @CleanupHandlers, @ResponseBodyChecks);
our ($NginxVersion, $NginxRawVersion);

# Baseline valgrind suppressions shipped next to this runner (t/compat/).
our $CoreSupp = do {
    (my $d = File::Spec->rel2abs(__FILE__)) =~ s{/Test/Nginx/Socket\.pm$}{};
    "$d/nginx-core.supp";
};

# How long nginx may take to start listening, and to exit after SIGQUIT.
our $StartTimeout = $UseValgrind ? 60 : 10;
our $StopTimeout  = $UseValgrind ? 60 : 10;

if (defined $WorkerUser && $WorkerUser !~ /^\w+(?:\s+\w+)?$/) {
    die "Bad value in the env TEST_NGINX_WORKER_USER: $WorkerUser\n";
}

if ($Randomize) {
    $ServerPort = gen_rand_port(1000, {})
        or die "Cannot find a free port for TEST_NGINX_RANDOMIZE\n";
    $ServerPortForClient = $ServerPort;
}

our $ServRoot = $Randomize
    ? File::Spec->rel2abs("t/servroot_$ServerPort")
    : File::Spec->rel2abs($ENV{TEST_NGINX_SERVROOT} || 't/servroot');
$ServRoot =~ s{/+$}{};
$ENV{TEST_NGINX_SERVER_ROOT} = $ServRoot;

our $LogDir     = "$ServRoot/logs";
our $ErrLogFile = "$LogDir/error.log";
our $AccLogFile = "$LogDir/access.log";
our $HtmlDir    = "$ServRoot/html";
our $ConfDir    = "$ServRoot/conf";
our $ConfFile   = "$ConfDir/nginx.conf";
our $PidFile    = "$LogDir/nginx.pid";

# Temp directories nginx would otherwise take from its compile-time paths
# (/var/lib/nginx/... on Debian, absent or root-only).
my @TempPaths = (
    [client_body_temp_path => 'client_body_temp'],
    [proxy_temp_path       => 'proxy_temp'],
    [fastcgi_temp_path     => 'fastcgi_temp'],
    [uwsgi_temp_path       => 'uwsgi_temp'],
    [scgi_temp_path        => 'scgi_temp'],
);

#---------------------------------------------------------------------------
# Run state
#---------------------------------------------------------------------------

my $OwnerPid = $$;      # forked helpers must never run our END cleanup
our $ErrLogFilePos = 0; # error.log offset already looked at by the checks
my $PrevConfig;         # last --- config seen (blocks without one reuse nginx)
my %Nginx;              # the running nginx: pid, block, name, valgrind
my $LastClosed;         # when the last request's connection was closed
my $TcpServerPid;
# prctl(PR_SET_PDEATHSIG) syscall number, if the h2ph headers are there.
my $PdeathsigSyscall = eval {
    local $SIG{__WARN__} = sub {};
    package main;
    require 'syscall.ph';
    SYS_prctl();
};

#---------------------------------------------------------------------------
# Helpers called from the .t prologue
#---------------------------------------------------------------------------

sub env_to_nginx (@) {
    die "env_to_nginx: no arguments specified\n" unless @_;
    for my $v (@_) {
        if ($v !~ /^[A-Za-z_]/ || $v =~ /\n/) {
            die "env_to_nginx: bad argument value: $v\n";
        }
        push @EnvToNginx, $v;
    }
}

sub no_long_string () { $NoLongString = 1 }
sub no_shuffle ()     { $NoShuffle = 1 }
sub no_root_location () { $NoRootLocation = 1 }
sub check_accum_error_log () { $CheckAccumErrLog = 1 }
sub master_on ()      { $MasterProcessEnabled = 'on' }
sub master_off ()     { $MasterProcessEnabled = 'off' }
sub config_preamble ($) { $ConfigPreamble = shift }
sub html_dir ()       { $HtmlDir }
sub server_root ()    { $ServRoot }
sub add_cleanup_handler ($) { unshift @CleanupHandlers, shift }
sub add_response_body_check ($) { push @ResponseBodyChecks, shift }
sub add_block_preprocessor (&) { unshift @BlockPreprocessors, shift }

# Getter/setter helpers: with an argument they set, without they return.
sub repeat_each (@)        { $RepeatEach = shift if @_; $RepeatEach }
sub workers (@)            { $Workers = shift if @_; $Workers }
sub worker_connections (@) { $WorkerConnections = shift if @_; $WorkerConnections }
sub log_level (@)          { $LogLevel = shift if @_; $LogLevel }
sub timeout (@)            { $Timeout = shift if @_; $Timeout }
sub server_addr (@)        { $ServerAddr = shift if @_; $ServerAddr }
sub server_name (@)        { $ServerName = shift if @_; $ServerName }
sub server_port (@)        { $ServerPort = shift if @_; $ServerPort }
sub server_port_for_client (@) {
    $ServerPortForClient = shift if @_;
    $ServerPortForClient;
}

sub master_process_enabled (@) {
    return $MasterProcessEnabled unless @_;
    $MasterProcessEnabled = shift() ? 'on' : 'off';
}

# String comparison honouring no_long_string() and qr// expectations.
sub is_str (@) {
    my ($got, $expected, $desc) = @_;
    if (ref $expected && ref $expected eq 'Regexp') {
        return Test::More::like($got, $expected, $desc);
    }
    return Test::Base::is($got, $expected, $desc) if $NoLongString;
    return Test::LongString::is_string($got, $expected, $desc);
}

sub bail_out (@) {
    cleanup();
    Test::More::BAIL_OUT(join '', @_);
}

#---------------------------------------------------------------------------
# Small utilities
#---------------------------------------------------------------------------

sub parse_time ($) {
    my $tm = shift;
    return undef unless defined $tm;
    if ($tm =~ s/([^_a-zA-Z])ms$/$1/) {
        $tm /= 1000;
    } else {
        $tm =~ s/([^_a-zA-Z])s$/$1/;
    }
    return $tm;
}

sub trim ($) {
    my $s = shift;
    return undef unless defined $s;
    $s =~ s/^\s+|\s+$//g;
    $s =~ s/\n/ /gs;
    $s =~ s/\s{2,}/ /gs;
    return $s;
}

# One-line rendering of a string for test names.
sub fmt_str ($) {
    my $s = shift;
    chomp $s;
    $s =~ s/"/\\"/g;
    $s =~ s/\r/\\r/g;
    $s =~ s/\n/\\n/g;
    return $s;
}

sub verbose { warn @_ if $Verbose }

sub can_run ($) {
    my $cmd = shift;
    if ($cmd =~ m{/}) {
        return -f $cmd && -x _ ? $cmd : undef;
    }
    for my $dir (split /:/, $ENV{PATH} // '') {
        next if $dir eq '';
        return "$dir/$cmd" if -f "$dir/$cmd" && -x _;
    }
    return undef;
}

sub get_nginx_version () {
    my $out = `$NginxBinary -V 2>&1`;
    if (!defined $out || $? != 0) {
        bail_out("Failed to get the version of the nginx binary "
                 . "\"$NginxBinary\": " . ($out // ''));
    }
    if ($out =~ m{(?:nginx|openresty)[^/]*/(\d+)\.(\d+)\.(\d+)}s
        || $out =~ m{\w+/(\d+)\.(\d+)\.(\d+)}s)
    {
        $NginxRawVersion = "$1.$2.$3";
        return sprintf '%d.%03d%03d', $1, $2, $3;
    }
    bail_out("Failed to parse the output of \"nginx -V\": $out\n");
}

sub canon_version { sprintf '%d.%03d%03d', @_ }

# A random port that can be bound on 127.0.0.1 right now.
sub gen_rand_port ($$) {
    my ($tries, $used) = @_;
    for (1 .. $tries) {
        my $port = int(rand 63550) + 1985;
        next if $used->{$port};
        my $sock = IO::Socket::INET->new(
            LocalAddr => $ServerAddr,
            LocalPort => $port,
            Proto     => 'tcp',
        ) or next;
        close $sock;
        return $port;
    }
    return undef;
}

# Replace $TEST_NGINX_* names from %ENV; $TEST_NGINX_RAND_PORT_N get a free
# port each (stable within the block).  An undefined variable aborts the run.
sub expand_env_in_text ($$$) {
    my ($text, $name, $rand_ports) = @_;
    return undef unless defined $text;

    my %used = ($ServerPort => 1, map { $_ => 1 } values %$rand_ports);

    $text =~ s{\$(TEST_NGINX_[_A-Z0-9]+)}{
        my $var = $1;
        my $val;
        if ($var =~ /^TEST_NGINX_RAND_PORT_[0-9]+$/) {
            $val = $rand_ports->{$var} //= do {
                my $p = gen_rand_port(1000, \%used)
                    // bail_out("$name - Cannot find an available listening "
                                . "port number for $var.\n");
                $used{$p} = 1;
                $p;
            };
        } else {
            bail_out("$name - No environment $var defined.\n")
                unless defined $ENV{$var};
            $val = $ENV{$var};
        }
        $val;
    }ge;

    return $text;
}

# Directives that appear at the top level of a config snippet (text inside
# braces removed), so that our defaults never duplicate the user's.
sub top_level_text ($) {
    my $text = shift // '';
    my ($out, $depth) = ('', 0);
    for my $c (split //, $text) {
        if ($c eq '{') { $depth++; next }
        if ($c eq '}') { $depth-- if $depth; next }
        $out .= $c unless $depth;
    }
    return $out;
}

#---------------------------------------------------------------------------
# Server root and nginx.conf
#---------------------------------------------------------------------------

sub setup_server_root () {
    if (-d $ServRoot) {
        # Only remove what we create, so that a mistaken TEST_NGINX_SERVROOT
        # cannot wipe unrelated data (rmdir fails if anything else is left).
        remove_tree($ConfDir, $HtmlDir, $LogDir,
                    glob("$ServRoot/*_cache"), glob("$ServRoot/*_temp"));
        rmdir $ServRoot
            or bail_out("Can't remove $ServRoot (not empty?): $!");
    }
    for my $dir ($ServRoot, $LogDir, $HtmlDir, $ConfDir) {
        make_path($dir) unless -d $dir;
        -d $dir or bail_out("Failed to do mkdir $dir\n");
    }
    open my $out, '>', "$HtmlDir/index.html"
        or bail_out("Can't open $HtmlDir/index.html for writing: $!\n");
    print $out '<html><head><title>It works!</title></head>'
             . '<body>It works!</body></html>';
    close $out;
}

sub write_user_files ($$) {
    my ($block, $rand_ports) = @_;
    my $name  = $block->name;
    my $files = $block->user_files;
    return unless $files;

    if (!ref $files) {
        # ">>> path [mtime]" starts a file; the following lines are its body.
        my @list;
        for my $line (split /^/, $files) {
            if ($line =~ /^>>> (\S+)(?:\s+(.+))?/) {
                push @list, [$1, undef, $2];
            } elsif (@list) {
                $list[-1][1] .= $line;
            }
        }
        $files = \@list;
    } elsif (ref $files ne 'ARRAY') {
        bail_out("$name - wrong value type: ", ref $files,
                 ", only scalar or ARRAY are accepted");
    }

    for my $file (@$files) {
        my ($fname, $body, $date) = @$file;
        $body //= '';
        my $path = $fname =~ m{^/} ? $fname : "$HtmlDir/$fname";
        if ($path =~ m{^(.*)/} && !-d $1) {
            make_path($1) or bail_out("$name - Cannot create directory $1");
        }
        $body = expand_env_in_text($body, $name, $rand_ports);
        open my $out, '>', $path
            or bail_out("$name - Cannot open $path for writing: $!\n");
        binmode $out;
        print $out $body;
        close $out;
        if ($date) {
            system('touch', '-t', $date, $path) == 0
                or bail_out("$name - Failed to set the mtime of $path\n");
        }
    }
}

sub write_config_file ($$$) {
    my ($block, $config, $rand_ports) = @_;
    my $name = $block->name;

    my $http_config =
        expand_env_in_text(scalar $block->http_config, $name, $rand_ports) // '';
    my $main_config = $block->main_config // '';
    if ($LoadModules) {
        my @mods = map { "load_module $_;" } grep { length } split /\s+/, $LoadModules;
        $main_config .= join ' ', @mods;
    }
    $main_config = expand_env_in_text($main_config, $name, $rand_ports);
    my $post_main_config =
        expand_env_in_text(scalar $block->post_main_config, $name, $rand_ports) // '';
    $config //= '';

    my $err_log_file = $block->error_log_file || $ErrLogFile;
    my $server_name  = $block->server_name // $ServerName;
    (my $quoted_server_name = $server_name) =~ s/(['\\])/\\$1/g;

    my $extra_http = '';
    my $http_top = top_level_text($http_config);
    for my $tp (@TempPaths) {
        my ($directive, $dir) = @$tp;
        next if $http_top =~ /(?:^|[;\s])\Q$directive\E\s/;
        $extra_http .= "    $directive $ServRoot/$dir;\n";
    }
    if (defined $PostponeOutput && $http_config !~ /\bpostpone_output\b/) {
        bail_out("Bad TEST_NGINX_POSTPONE_OUTPUT value: $PostponeOutput\n")
            unless $PostponeOutput =~ /^\d+$/;
        $extra_http .= "    postpone_output $PostponeOutput;\n";
    }

    my $env = '';
    for my $v (qw(MOCKEAGAIN_VERBOSE MOCKEAGAIN MOCKEAGAIN_WRITE_TIMEOUT_PATTERN
                  MOCKNOEAGAIN_VERBOSE MOCKNOEAGAIN LD_PRELOAD LD_LIBRARY_PATH
                  ASAN_OPTIONS))
    {
        $env .= "env $v;\n";
    }
    for my $v (@EnvToNginx) {
        $env .= $v =~ /\s/ ? "env '$v';\n" : "env $v;\n";
    }

    my $listen_opts = $ReusePort ? ' reuseport' : '';
    my $root_location = $NoRootLocation ? '' : <<"_EOC_";
        location / {
            root $HtmlDir;
            index index.html index.htm;
        }
_EOC_
    my $events_use = $EventType ? "    use $EventType;\n" : '';

    # Running as root: workers (with master_on) would otherwise switch to
    # "nobody" and lose access to the server root.
    my $user = '';
    if ("$main_config\n$post_main_config" !~ /^\s*user\s/m) {
        if (defined $WorkerUser) {
            $user = "user $WorkerUser;\n";
        } elsif ($> == 0) {
            $user = "user root;\n";
        }
    }

    open my $out, '>', $ConfFile
        or bail_out("Can't open $ConfFile for writing: $!\n");
    print $out <<"_EOC_";
# generated by the vodlms Test::Nginx::Socket compat runner for:
# $name
worker_processes  $Workers;
daemon off;
master_process $MasterProcessEnabled;
error_log $err_log_file $LogLevel;
pid       $PidFile;
$env$user
$main_config

http {
    access_log $AccLogFile;

    default_type text/plain;
    keepalive_timeout  68;

$extra_http
$http_config

    server {
        listen          $ServerPort$listen_opts;
        server_name     '$quoted_server_name';

        client_max_body_size 30M;

        # Begin preamble config...
$ConfigPreamble
        # End preamble config...

        # Begin test case config...
$config
        # End test case config.

$root_location    }
}

$post_main_config

events {
    accept_mutex off;

    worker_connections  $WorkerConnections;
$events_use}
_EOC_
    close $out;
}

#---------------------------------------------------------------------------
# nginx process management
#---------------------------------------------------------------------------

# True when something listens on TCP $port (any local address).  Read from
# /proc so that probing does not open connections that nginx would log.
sub port_listening ($) {
    my $port = shift;
    my $hex = sprintf '%04X', $port;
    my $have_proc;
    for my $f ('/proc/net/tcp', '/proc/net/tcp6') {
        open my $fh, '<', $f or next;
        $have_proc = 1;
        while (my $l = <$fh>) {
            # "  0: 00000000:07C0 00000000:0000 0A ..." (0A = LISTEN)
            return 1 if $l =~ /^\s*\d+:\s+[0-9A-F]+:$hex\s+\S+\s+0A\s/;
        }
    }
    return 0 if $have_proc;
    my $s = IO::Socket::INET->new(PeerAddr => $ServerAddr, PeerPort => $port,
                                  Proto => 'tcp', Timeout => 0.5);
    return $s ? 1 : 0;
}

sub nginx_command () {
    my @cmd = ($NginxBinary, '-p', "$ServRoot/", '-c', $ConfFile);
    return @cmd unless $UseValgrind;

    my @opts = $UseValgrind =~ /^\d+$/
        ? qw(--tool=memcheck --leak-check=full --show-possibly-lost=no)
        : split ' ', $UseValgrind;
    # Stock nginx's own exit-time leaks, then the project's suppressions.
    push @opts, "--suppressions=$CoreSupp" if -f $CoreSupp;
    my $supp = $ValgrindSupp;
    $supp = 'valgrind.suppress' if !defined $supp && -f 'valgrind.suppress';
    push @opts, "--suppressions=$supp" if defined $supp && length $supp;
    # -q: only errors reach the log file, so a non-empty file means errors.
    return ('valgrind', '-q', '--num-callers=100', '--gen-suppressions=all',
            "--log-file=$LogDir/valgrind.%p.log", @opts, @cmd);
}

# Fork and exec nginx as our direct child.  Returns its pid.
sub spawn_nginx () {
    my @cmd = nginx_command();
    verbose("starting: @cmd\n");
    my $pid = fork;
    bail_out("fork() failed: $!") unless defined $pid;
    if ($pid == 0) {
        # Own process group, so that workers can be killed along with it.
        setpgrp(0, 0);
        # Die with us (SIGTERM = nginx fast shutdown) if this runner is
        # killed outright; not wanted when the server must outlive us.
        syscall($PdeathsigSyscall, 1, SIGTERM)
            if $PdeathsigSyscall && !$NoClean;
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', '/dev/null';
        # Early messages (config errors, before error_log is open) go to
        # stderr with Debian's build; keep them in error.log too.
        open STDERR, '>>', $ErrLogFile;
        { no warnings 'exec'; exec { $cmd[0] } @cmd; }
        print STDERR "exec $cmd[0] failed: $!\n";
        POSIX::_exit(127);
    }
    return $pid;
}

sub describe_status ($) {
    my $st = shift;
    return "exited on signal " . WTERMSIG($st) if WIFSIGNALED($st);
    return "exited with code " . WEXITSTATUS($st);
}

sub log_tail ($) {
    my $n = shift;
    open my $in, '<', $ErrLogFile or return '';
    my @lines = <$in>;
    close $in;
    splice @lines, 0, @lines - $n if @lines > $n;
    return join '', @lines;
}

# Start nginx for $block and wait until it listens.  On failure, reports
# a failed test and returns false.
sub start_nginx ($) {
    my $block = shift;
    my $name = $block->name;

    # A listener already on our port would answer in nginx's place.
    my $deadline = time + 2;
    while (port_listening($ServerPort)) {
        if (time > $deadline) {
            Test::More::fail("$name - port $ServerPort is already in use by "
                             . "another process; cannot start nginx");
            return 0;
        }
        sleep 0.01;
    }

    unlink glob("$LogDir/valgrind.*.log");
    warn "$name\n" if $UseValgrind;

    my $pid = spawn_nginx();
    $deadline = time + $StartTimeout;
    while (1) {
        my $r = waitpid($pid, WNOHANG);
        if ($r == $pid) {
            my $st = $?;
            Test::More::fail("$name - nginx failed to start ("
                             . describe_status($st) . ")");
            Test::More::diag(log_tail(20));
            return 0;
        }
        # nginx writes its pid file once its listening sockets are open:
        # only then is /proc/net/tcp worth reading (milliseconds of CPU
        # each time, with thousands of connections in TIME_WAIT)
        last if -e $PidFile && port_listening($ServerPort);
        if (time > $deadline) {
            kill SIGKILL, -$pid;
            waitpid($pid, 0);
            Test::More::fail("$name - nginx did not listen on port "
                             . "$ServerPort within ${StartTimeout}s");
            Test::More::diag(log_tail(20));
            return 0;
        }
        sleep 0.005;
    }

    verbose(sprintf "nginx %d listening after %.3fs\n", $pid,
                    time - ($deadline - $StartTimeout));
    %Nginx = (pid => $pid, block => $block);
    return 1;
}

# Reap nginx if it has exited on its own; the status is kept for
# stop_nginx() to report.
sub poll_nginx () {
    return if !$Nginx{pid} || defined $Nginx{status};
    $Nginx{status} = $? if waitpid($Nginx{pid}, WNOHANG) == $Nginx{pid};
}

sub nginx_running () {
    poll_nginx();
    return $Nginx{pid} && !defined $Nginx{status};
}

# Stop the running nginx (SIGQUIT, then SIGKILL after $StopTimeout), reap
# it, and run the end-of-life checks for the last block that used it:
# crash detection, valgrind errors, --- shutdown_error_log.
# With $quiet (signal handlers), just make sure it is gone.
sub stop_nginx (;$) {
    my $quiet = shift;
    return unless $Nginx{pid};
    poll_nginx();
    my ($pid, $block, $status) = @Nginx{qw(pid block status)};
    my $name = $block ? $block->name : "$0 nginx";
    %Nginx = ();

    my ($exited_early, $killed);
    my $t0 = time;
    if (defined $status) {
        $exited_early = 1;
    } else {
        kill SIGQUIT, $pid;
        my $deadline = time + ($quiet ? 1 : $StopTimeout);
        while (1) {
            if (waitpid($pid, WNOHANG) == $pid) {
                $status = $?;
                last;
            }
            if (time > $deadline) {
                kill SIGKILL, -$pid;
                waitpid($pid, 0);
                ($status, $killed) = ($?, 1);
                last;
            }
            sleep 0.005;
        }
    }
    # Workers left behind by a dead master (master_on) die with the group.
    kill SIGKILL, -$pid if kill 0, -$pid;
    verbose(sprintf "nginx %d stopped in %.3fs\n", $pid, time - $t0);

    return if $quiet || !$block;

    if ($killed) {
        Test::More::fail("$name - nginx did not exit within ${StopTimeout}s "
                         . "after SIGQUIT (killed)");
    } elsif ($exited_early && WIFSIGNALED($status)) {
        Test::More::fail("$name - nginx " . describe_status($status)
                         . " before the runner stopped it");
        Test::More::diag(log_tail(20));
    } elsif ($status != 0) {
        Test::More::fail("$name - nginx " . describe_status($status)
                         . ($exited_early ? " before the runner stopped it" : ""));
        Test::More::diag(log_tail(20));
    }

    check_alerts($block);
    check_valgrind($block) if $UseValgrind;

    if (defined $block->shutdown_error_log
        || defined $block->no_shutdown_error_log)
    {
        check_shutdown_error_log($block) unless $NoClean;
    }
}

# "[alert]" lines (e.g. "worker process 123 exited on signal 11", "open
# socket left in connection") fail the block, unless the block's own log
# checks mention "[alert" (then it expects or handles them itself).
sub check_alerts ($) {
    my $block = shift;
    my $name = $block->name;
    for my $sec (qw(error_log no_error_log shutdown_error_log
                    no_shutdown_error_log grep_error_log))
    {
        my $v = $block->$sec;
        return if defined $v && value_contains($v, '[alert');
    }
    open my $in, '<', $ErrLogFile or return;
    my @alerts = grep { /\[alert\]|exited on signal/ } <$in>;
    close $in;
    return unless @alerts;
    Test::More::fail("$name - nginx logged " . scalar(@alerts)
                     . " [alert] line(s), e.g. \"" . fmt_str($alerts[0]) . "\"");
}

sub check_valgrind ($) {
    my $block = shift;
    my $name = $block->name;
    my $report = '';
    for my $f (sort glob("$LogDir/valgrind.*.log")) {
        open my $in, '<', $f or next;
        local $/;
        my $text = <$in>;
        close $in;
        $report .= "== $f\n$text" if defined $text && $text =~ /\S/;
    }
    return unless length $report;
    Test::More::fail("$name - valgrind reported errors");
    Test::More::diag($report);
}

sub kill_tcp_server () {
    return unless $TcpServerPid;
    kill SIGKILL, $TcpServerPid;
    waitpid($TcpServerPid, 0);
    undef $TcpServerPid;
}

# Called at the end of run_tests(), from bail_out(), at END and on signals.
sub cleanup (;$) {
    my $quiet = shift;
    return unless $$ == $OwnerPid;
    $_->() for @CleanupHandlers;
    kill_tcp_server();
    stop_nginx($quiet) unless $NoClean;
}

sub install_signal_handlers () {
    for my $sig (qw(INT TERM HUP)) {
        $SIG{$sig} = sub {
            $SIG{$sig} = 'DEFAULT';
            cleanup(1);
            kill $sig, $$;
            exit 1;
        };
    }
}

END {
    if ($$ == $OwnerPid) {
        local $?;    # keep the exit status Test::Builder computes
        cleanup();
        # per-run server roots of TEST_NGINX_RANDOMIZE (as the real runner)
        remove_tree($ServRoot)
            if $Randomize && !$NoClean && $ServRoot =~ m{/t/servroot_\d+$};
    }
}

#---------------------------------------------------------------------------
# Running the blocks
#---------------------------------------------------------------------------

sub run_tests () {
    can_run($NginxBinary)
        or bail_out("Cannot find the nginx executable \"$NginxBinary\"");
    $NginxVersion = get_nginx_version();
    $ENV{TEST_NGINX_SERVER_PORT} //= $ServerPort;
    install_signal_handlers();

    my @blocks = Test::Base::blocks();
    @blocks = shuffle @blocks unless $NoShuffle;
    for my $block (@blocks) {
        $_->($block) for @BlockPreprocessors;
        $block->set_value(name => "$0 " . $block->name);
        run_test($block);
    }

    cleanup();
}

# Decide whether the block's tests are skipped (skip_eval, skip_nginx,
# skip_nginx2) or todo.  Returns ($should_skip, $count, $reason, $todo).
sub skip_info ($) {
    my $block = shift;
    my $name = $block->name;
    my ($should_skip, $count, $reason, $todo);

    if (defined(my $se = $block->skip_eval)) {
        if ($se =~ /^\s*(\d+)\s*:\s*(.*)/s) {
            ($count, $reason) = ($1, 'skip_eval');
            my $code = $2;
            $should_skip = eval $code;
            bail_out("$name - skip_eval - failed to eval the Perl code "
                     . "\"$code\": $@") if $@;
        }
    }

    my $cmp = sub {
        my ($op, $v) = @_;
        return $op =~ /^</ unless defined $NginxVersion;
        return $op eq '<'  ? $NginxVersion <  $v
             : $op eq '<=' ? $NginxVersion <= $v
             : $op eq '>'  ? $NginxVersion >  $v
             :               $NginxVersion >= $v;
    };

    if (defined(my $sn = $block->skip_nginx)) {
        $sn =~ /^\s*(\d+)\s*:\s*([<>]=?)\s*(\d+)\.(\d+)\.(\d+)(?:\s*:\s*(.*))?\s*$/
            or bail_out("$name - Invalid --- skip_nginx spec: $sn");
        $count = $1;
        $reason = $6 || "nginx version $2 $3.$4.$5";
        $should_skip = 1 if $cmp->($2, canon_version($3, $4, $5));
    } elsif (defined(my $sn2 = $block->skip_nginx2)) {
        $sn2 =~ /^\s*(\d+)\s*:\s*([<>]=?)\s*(\d+)\.(\d+)\.(\d+)\s*(or|and)\s*
                  ([<>]=?)\s*(\d+)\.(\d+)\.(\d+)(?:\s*:\s*(.*))?\s*$/x
            or bail_out("$name - Invalid --- skip_nginx2 spec: $sn2");
        $count = $1;
        $reason = $11;
        my $x = $cmp->($2, canon_version($3, $4, $5));
        my $y = $cmp->($7, canon_version($8, $9, $10));
        $should_skip = 1 if !defined $NginxVersion
                         || ($6 eq 'or' ? ($x || $y) : ($x && $y));
    }

    if (defined(my $t = $block->todo)) {
        $t =~ /^\s*(\d+)\s*:\s*(.*)/s
            or bail_out("$name - Invalid --- todo spec: $t");
        ($count, $todo) = ($1, $2);
    }

    return ($should_skip, $count, $reason // 'various reasons', $todo);
}

sub run_test ($) {
    my $block = shift;
    return if defined $block->SKIP;

    my $name = $block->name;
    my $rand_ports = {};
    my $config = expand_env_in_text(scalar $block->config, $name, $rand_ports);

    local $LogLevel = $LogLevel;
    $LogLevel = $block->log_level if $block->log_level;

    my ($should_skip, $tests_to_skip, $skip_reason, $todo_reason) = skip_info($block);

    if (defined $block->must_die) {
        run_must_die($block, $config, $rand_ports);
        return;
    }

    if (!$should_skip) {
        if (!defined $config) {
            # Like the real runner: a block without --- config runs against
            # the nginx (and server root) of the previous block.
            bail_out("$name - No '--- config' section specified and could "
                     . "not get previous one.") unless defined $PrevConfig;
            if (!nginx_running()) {
                stop_nginx();
                start_nginx($block) or return;
            }
            $Nginx{block} = $block;
        } else {
            $PrevConfig = $config;
            stop_nginx();
            setup_server_root();
            write_user_files($block, $rand_ports);
            write_config_file($block, $config, $rand_ports);
            start_nginx($block) or return;
        }
    }

    if (defined(my $init = $block->init)) {
        eval $init;
        bail_out("$name - init failed: $@") if $@;
    }

    $ErrLogFilePos = 0;
    for my $i (1 .. $RepeatEach) {
        my ($tcp_socket, $tcp_query_file) = start_tcp_server($block);

        write_user_files($block, $rand_ports) if $i > 1;

        if ($should_skip && defined $tests_to_skip) {
            SKIP: {
                Test::More::skip("$name - $skip_reason", $tests_to_skip);
            }
        } elsif (defined $todo_reason) {
            TODO: {
                Test::More::todo_skip("$name - $todo_reason", $tests_to_skip);
            }
        } elsif (!$should_skip) {
            run_test_helper($block, $i - 1);
            run_tcp_server_tests($block, $tcp_socket, $tcp_query_file);
        }

        kill_tcp_server();
        if ($tcp_socket) {
            close $tcp_socket;
            unlink $tcp_query_file if $tcp_query_file;
        }
    }
}

# --- must_die: nginx must refuse to start (e.g. a bad directive).
sub run_must_die ($$$) {
    my ($block, $config, $rand_ports) = @_;
    my $name = $block->name;
    my $must_die = $block->must_die;

    stop_nginx();
    setup_server_root();
    write_user_files($block, $rand_ports);
    write_config_file($block, $config // '', $rand_ports);
    $PrevConfig = $config if defined $config;

    for my $i (0 .. $RepeatEach - 1) {
        $ErrLogFilePos = 0;
        my $pid = spawn_nginx();
        my $deadline = time + $StartTimeout;
        my $status;
        while (1) {
            if (waitpid($pid, WNOHANG) == $pid) {
                $status = $?;
                last;
            }
            if ((-e $PidFile && port_listening($ServerPort)) || time > $deadline) {
                warn "WARNING: $name - nginx must die but it does not; "
                   . "killing it (req $i)\n";
                kill SIGQUIT, $pid;
                my $d2 = time + $StopTimeout;
                while (waitpid($pid, WNOHANG) != $pid) {
                    if (time > $d2) { kill SIGKILL, -$pid; waitpid($pid, 0); last }
                    sleep 0.005;
                }
                $status = 0;    # it started fine
                last;
            }
            sleep 0.005;
        }

        if (WIFSIGNALED($status)) {
            Test::More::fail("$name - nginx crashed: " . describe_status($status));
        } elsif (looks_like_number($must_die) && $must_die =~ /\S/) {
            Test::More::is($must_die, WEXITSTATUS($status),
                           "$name - die with the expected exit code");
        } else {
            Test::More::isnt($status, 0, "$name - die as expected");
        }
        check_error_log($block, undef, $i, 0);
    }
}

#---------------------------------------------------------------------------
# Embedded TCP server (--- tcp_listen)
#---------------------------------------------------------------------------

sub start_tcp_server ($) {
    my $block = shift;
    my $target = $block->tcp_listen;
    return unless defined $target;
    my $name = $block->name;

    my $reply = $block->tcp_reply;
    if (!defined $reply && !defined $block->tcp_shutdown) {
        bail_out("$name - no --- tcp_reply specified but --- tcp_listen is specified");
    }

    my $req_len = $block->tcp_query_len;
    my $query_file;
    if (defined $block->tcp_query || defined $req_len) {
        $req_len //= length $block->tcp_query;
        (undef, $query_file) = File::Temp::tempfile('tcp_query_XXXXXX',
                                                    TMPDIR => 1, OPEN => 0);
    }

    my ($sock, $err);
    for (1 .. 30) {
        if ($target =~ /^\d+$/) {
            $sock = IO::Socket::INET->new(LocalHost => '127.0.0.1',
                LocalPort => $target, Proto => 'tcp', ReuseAddr => 1,
                Listen => 5);
        } elsif ($target =~ /\S+\.sock$/) {
            unlink $target if -e $target;
            $sock = IO::Socket::UNIX->new(Local => $target,
                Type => SOCK_STREAM, Listen => 5);
        } else {
            bail_out("$name - bad tcp_listen target: $target");
        }
        last if $sock;
        $err = $!;
        last unless $! == EADDRINUSE;
        sleep 0.1;
    }
    bail_out("$name - failed to create the tcp listening socket: $err")
        unless $sock;

    my $pid = fork;
    bail_out("$name - fork() failed: $!") unless defined $pid;
    if ($pid) {
        $TcpServerPid = $pid;
        return ($sock, $query_file);
    }

    # Child: serve one connection, then exit without running END blocks.
    $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP);
    my $client;
    until ($client = $sock->accept) { sleep $TestNginxSleep }

    my ($no_read, $no_write);
    if (defined(my $how = $block->tcp_shutdown)) {
        sleep parse_time($block->tcp_shutdown_delay) if $block->tcp_shutdown_delay;
        $client->shutdown($how);
        if ($how == 0 || $how == 2) { $no_read = 1 } else { $no_write = 1 }
    }

    my $buf = '';
    unless ($no_read) {
        while (1) {
            my $n = sysread $client, my $chunk, 4096;
            last unless $n;    # error or EOF
            $buf .= $chunk;
            if ($query_file && open my $out, '>', $query_file) {
                print $out $buf;
                close $out;
            }
            last if !$req_len || length($buf) >= $req_len;
        }
    }

    my $delay = parse_time($block->tcp_reply_delay);
    sleep $delay if $delay;

    if (!$no_write && defined $reply) {
        $reply = $reply->($buf) if ref $reply eq 'CODE';
        for my $r (ref $reply eq 'ARRAY' ? @$reply : ($reply)) {
            defined syswrite($client, $r)
                or warn "WARNING: tcp server failed to send reply: $!\n";
        }
    }

    if (defined $block->tcp_no_close) {
        sleep 1 while 1;
    }
    close $client;
    POSIX::_exit(0);
}

sub run_tcp_server_tests ($$$) {
    my ($block, $sock, $query_file) = @_;
    return unless defined $sock;
    my $name = $block->name;
    my $buf = '';
    if ($query_file && open my $in, '<', $query_file) {
        local $/;
        $buf = <$in> // '';
        close $in;
    }
    is_str($buf, $block->tcp_query, "$name - tcp_query ok")
        if defined $block->tcp_query;
    Test::More::is(length($buf), $block->tcp_query_len,
                   "$name - TCP query length ok")
        if defined $block->tcp_query_len;
}

#---------------------------------------------------------------------------
# Building requests
#---------------------------------------------------------------------------

# "Name: value" lines -> CRLF-terminated header text; also reports whether
# the request body is sent chunked.
sub parse_more_headers ($) {
    my $in = shift;
    my ($out, $is_chunked) = ('', 0);
    for my $line (split /\n+/, $in) {
        next if $line =~ /^\s*#/;
        my ($key, $val) = split /:\s*/, $line, 2;
        $val //= '';
        $is_chunked = 1 if lc($key) eq 'transfer-encoding' && $val eq 'chunked';
        $out .= "$key: $val\r\n";
    }
    return ($out, $is_chunked);
}

# Turn the packets of one request ("METHOD [URI [VERSION]]\n[body]", maybe
# split in several writes) into the packets to send: request line
# normalised, Host / Connection / Content-Length headers added, the body
# trimmed when we compute its length.  Packet boundaries keep their place
# relative to the request line and the body.
sub build_request ($$$$$) {
    my ($name, $hdr, $is_chunked, $conn, $packets) = @_;
    my @values = map { ref $_ ? $_->{value} : $_ } @$packets;
    my $orig = join '', map { $_ // '' } @values;

    my ($first, $content) = $orig =~ /\A([^\n]*\n?)(.*)\z/s;
    bail_out("$name - Request line should be non-empty") unless length $first;
    $first =~ /^\s*(\S+) *(?:(\S+) *)?(?:(\S+) *)?\s*$/
        or bail_out("$name - Request line is not valid. Should be "
                    . "'meth [url [version]]' but got \"$first\".");
    my ($meth, $url, $ver) = ($1, $2 // '/', $3 // 'HTTP/1.1');

    my ($lead, $len_header) = (0, '');
    if (!$is_chunked && $content ne ''
        && $hdr !~ /(?:^|\n)Content-Length:/)
    {
        $lead = length(($content =~ /^(\s*)/)[0]);
        $content =~ s/^\s+|\s+$//gs;
        $len_header = "Content-Length: " . length($content) . "\r\n";
    }

    $hdr =~ s/(?<!\r)\n/\r\n/gs;
    my $headers = '';
    $headers .= "Host: $ServerName\r\n" if $hdr !~ /(?:^|\n)Host:/msi;
    $headers .= "Connection: $conn\r\n" if $hdr !~ /(?:^|\n)Connection/msi;
    $headers .= "$hdr$len_header\r\n";

    my $line = "$meth $url $ver";
    my $head = "$line\r\n$headers";
    my $new = $head . $content;

    # Map each original packet boundary into the new text.
    my @cuts;
    my $pos = 0;
    for my $v (@values[0 .. $#values - 1]) {
        $pos += length($v // '');
        my $cut;
        if ($pos < length $first) {
            $cut = min($pos, length $line);
        } else {
            my $off = $pos - length($first) - $lead;
            $cut = length($head) + max(0, min($off, length $content));
        }
        push @cuts, $cut;
    }
    push @cuts, length $new;

    my @out;
    my $start = 0;
    for my $i (0 .. $#cuts) {
        my $end = max($cuts[$i], $start);
        my %pkt = ref $packets->[$i] ? %{ $packets->[$i] } : ();
        $pkt{value} = substr($new, $start, $end - $start);
        push @out, \%pkt;
        $start = $end;
    }
    return \@out;
}

# The list of requests of a block; each one is an arrayref of packets
# ({value => ..., delay_before => ...}) sent on its own connection.
sub get_req_from_block ($) {
    my $block = shift;
    my $name = $block->name;

    if (defined(my $raw = $block->raw_request)) {
        my @vals = ref $raw eq 'ARRAY' ? @$raw : ($raw);
        return [[map { { value => $_ } } @vals]];
    }

    my $request;
    if (defined $block->request_eval) {
        Test::More::diag("$name - request_eval DEPRECATED. Use request eval instead.");
        $request = eval $block->request_eval;
        warn $@ if $@;
    } else {
        $request = $block->request;
        if (defined $request && !ref $request) {
            1 while $request =~ s/^\s*\#[^\n]+\s+|^\s+//gs;
        }
    }

    my $more_headers = $block->more_headers // '';
    my $headers_for = sub {
        my $i = shift;
        my $h = $more_headers;
        if (ref $h eq 'ARRAY') {
            $h = $h->[$i];
            bail_out("--- more_headers lacks data for the request $i")
                unless defined $h;
        }
        return parse_more_headers($h);
    };

    if (my $reqs = $block->pipelined_requests) {
        bail_out("$name - invalid entries in --- pipelined_requests")
            unless ref $reqs eq 'ARRAY';
        # One connection, all requests written at once; every request but
        # the last asks for keep-alive.
        my $all = '';
        for my $i (0 .. $#$reqs) {
            my $conn = $i == $#$reqs ? 'close' : 'keep-alive';
            my ($hdr, $chunked) = $headers_for->($i);
            $all .= build_request($name, $hdr, $chunked, $conn, [$reqs->[$i]])->[0]{value};
        }
        return [[{ value => $all }]];
    }

    if (!ref $request) {
        my ($hdr, $chunked) = $headers_for->(0);
        return [build_request($name, $hdr, $chunked, 'close', [$request])];
    }

    bail_out("$name - invalid ---request : MUST be string or array of requests")
        unless ref $request eq 'ARRAY';

    my @list;
    for my $i (0 .. $#$request) {
        my $one = $request->[$i];
        my ($hdr, $chunked) = $headers_for->($i);
        if (!ref $one) {
            push @list, build_request($name, $hdr, $chunked, 'close', [$one]);
        } elsif (ref $one eq 'ARRAY') {
            for my $p (@$one) {
                bail_out("$name - Invalid syntax. $p should be a string or hash with value.")
                    if ref $p && ref $p ne 'HASH';
            }
            push @list, build_request($name, $hdr, $chunked, 'close', $one);
        } else {
            bail_out("$name - Invalid syntax. $one should be a string or an array of packets.");
        }
    }
    return \@list;
}

#---------------------------------------------------------------------------
# Sending a request and reading the response
#---------------------------------------------------------------------------

# Write the packets of one request on a fresh connection and read until the
# server closes it.  $timeout bounds every wait for I/O.  Returns the raw
# response and whether the request was a HEAD.
sub send_request ($$$$) {
    my ($req, $middle_delay, $timeout, $block) = @_;
    my $name = $block->name;
    my @bits = @$req;
    my $head_req = (join '', map { $_->{value} // '' } @bits) =~ /^\s*HEAD\s+/ ? 1 : 0;

    my $sock;
    for my $try (1 .. 5) {
        $sock = IO::Socket::INET->new(PeerAddr => $ServerAddr,
            PeerPort => $ServerPortForClient, Proto => 'tcp',
            Timeout => $timeout);
        last if $sock;
        sleep 0.05 * $try;
    }
    if (!$sock) {
        Test::More::fail("$name - Can't connect to $ServerAddr:"
                         . "$ServerPortForClient: $! (aborted)\n");
        $LastClosed = time;
        return (undef, $head_req);
    }
    $sock->blocking(0);
    local $SIG{PIPE} = 'IGNORE';

    my $resp = '';
    my $wbuf = (shift @bits)->{value} // '';
    my $woff = 0;
    my $writing = 1;
    my $sel = IO::Select->new($sock);

    while (1) {
        $! = 0;
        my ($r, $w) = IO::Select->select($sel, ($writing ? $sel : undef), undef, $timeout);
        if (!$r && !$w) {
            next if $! == EINTR;
            close $sock;
            if (!defined $block->abort) {
                Test::More::fail("ERROR: client socket timed out - $name\n");
            }
            last;
        }

        if ($w && @$w) {
            my $stop;
            while (1) {
                if ($woff < length $wbuf) {
                    my $n = syswrite $sock, $wbuf, length($wbuf) - $woff, $woff;
                    if (!defined $n) {
                        last if $! == EAGAIN || $! == EWOULDBLOCK;
                        warn "write failed: $!\n";
                        $resp = "write failed: $!" if $resp eq '';
                        $stop = 1;
                        last;
                    }
                    $woff += $n;
                    next;
                }
                my $next = shift @bits;
                if (!$next) {
                    $writing = 0;
                    if (defined(my $how = $block->shutdown)) {
                        shutdown $sock, ($how =~ /^\s*$/ ? 1 : $how);
                    }
                    last;
                }
                my $delay = $next->{delay_before} // $middle_delay;
                sleep $delay if $delay;
                ($wbuf, $woff) = ($next->{value} // '', 0);
            }
            if ($stop) { close $sock; last }
        }

        if ($r && @$r) {
            my $done;
            while (1) {
                my $n = sysread $sock, my $chunk, 16384;
                if (!defined $n) {
                    last if $! == EAGAIN || $! == EWOULDBLOCK;
                    warn "WARNING: $name - HTTP response read failure: $!";
                    $done = 1;
                    last;
                }
                if ($n == 0) { $done = 1; last }
                $resp .= $chunk;
            }
            if ($done) { close $sock; last }
        }
    }

    $LastClosed = time;
    return ($resp, $head_req);
}

# Split one response off $raw_resp.  Returns (HTTP::Response, raw header
# text, bytes left over for the next pipelined response); the body is
# de-chunked.
sub parse_response ($$$) {
    my ($name, $raw_resp, $head_req) = @_;
    my $left;
    my $raw_headers = $raw_resp =~ /(.*?\r\n)\r\n/s ? $1 : '';

    my $res = HTTP::Response->parse($raw_resp);
    my $code = $res->code;
    if ($code && $code !~ /^\d+$/) {
        undef $code;
        $res->code(undef);
    }
    return ($res, $raw_headers) if $code && ($code == 304 || $code == 101);

    my $enc = $res->header('Transfer-Encoding');
    my $len = $res->header('Content-Length');

    if (defined $enc && $enc eq 'chunked') {
        my $raw = $res->content // '';
        my $body = '';
        my $bad = sub {
            Test::More::fail("$name - $_[0]");
            return;
        };
        pos($raw) = 0;
        while (1) {
            if ($raw =~ /\G0[ \t]*\r\n\r\n/gc) {
                $left = $1 if $raw =~ /\G(.+)/gcs;
                last;
            }
            if ($raw =~ /\G[ \t]*([A-Fa-f0-9]+)[ \t]*\r\n/gc) {
                my $size = hex $1;
                my $at = pos $raw;
                return $bad->("invalid chunked data received (not enought "
                              . "octets for the data section)")
                    if length($raw) - $at < $size;
                $body .= substr $raw, $at, $size;
                pos($raw) = $at + $size;
                return $bad->("invalid chunked data received (expected CRLF).")
                    unless $raw =~ /\G\r\n/gc;
            } elsif ($raw =~ /\G(.+)/gcs) {
                return $bad->("invalid chunked body received: $1");
            } else {
                return $bad->("no last chunk found - $raw");
            }
        }
        $res->content($body);
    } elsif (defined $len && $len ne '' && $len >= 0) {
        my $raw = $res->content;
        if (length $raw < $len) {
            warn "WARNING: $name - response body truncated: $len expected, "
               . "but got ", length $raw, "\n" unless $head_req;
        } elsif (length $raw > $len) {
            $left = substr $raw, $len;
            $res->content(substr $raw, 0, $len);
        }
    }

    return ($res, $raw_headers, $left);
}

#---------------------------------------------------------------------------
# The checks
#---------------------------------------------------------------------------

# With several requests in a block, expected values must be arrays with
# one entry per request (as in the real runner).
sub get_indexed_value ($$$$) {
    my ($name, $value, $idx, $need_array) = @_;
    if ($need_array) {
        return $value->[$idx] if ref $value eq 'ARRAY';
        bail_out("$name - You asked for many requests, the expected results "
                 . "should be arrays as well.");
    }
    if (ref $value eq 'ARRAY') {
        bail_out("$name - SHOULD NOT HAPPEN: idx != 0 and don't need array.")
            if $idx != 0;
        return $value->[0];
    }
    return $value;
}

sub run_test_helper ($$) {
    my ($block, $repeated_req_idx) = @_;
    my $name = $block->name;

    my $req_list = get_req_from_block($block);
    bail_out("$name - request empty") unless @$req_list;

    my $timeout = parse_time(scalar $block->timeout) // $Timeout;
    my $pipelined = $block->pipelined_requests;
    my $need_array = $pipelined ? 1 : @$req_list > 1;
    my ($res, $req_idx) = (undef, 0);

    for my $one_req (@$req_list) {
        my ($raw_resp, $head_req) = send_request($one_req,
            scalar $block->raw_request_middle_delay, $timeout, $block);

        # Responses to pipelined requests arrive together on one
        # connection; peel them off one after another.
        my $n = $pipelined ? scalar @$pipelined : 0;
        while (1) {
            $raw_resp //= '';
            my ($raw_headers, $left);
            if (!defined $block->ignore_response) {
                if (defined $block->http09) {
                    $res = HTTP::Response->new(200, 'OK', [], $raw_resp);
                    $raw_headers = '';
                } else {
                    ($res, $raw_headers, $left) = parse_response($name, $raw_resp, $head_req);
                }
            }

            if ($n) {
                $raw_resp = $left;
                $n--;
            } elsif (defined $left && length $left) {
                (my $l = $left) =~ s/([\0-\037\200-\377])/sprintf('\x{%02x}', ord $1)/eg;
                warn "WARNING: $name - unexpected extra bytes after last chunk "
                   . "in response: \"$l\"\n";
            }

            if (!defined $block->ignore_response) {
                check_error_code($block, $res, $req_idx, $need_array);
                check_raw_response_headers($block, $raw_headers, $req_idx, $need_array);
                check_response_headers($block, $res, $raw_headers, $req_idx, $need_array);
                transform_response_body($block, $res, $req_idx);
                check_response_body($block, $res, $req_idx, $repeated_req_idx, $need_array);
            }

            # Between requests, the log checks see the lines added so far.
            if ($n || $req_idx < @$req_list - 1) {
                sleep $block->wait if $block->wait;
                check_error_log($block, $res, $repeated_req_idx, $need_array);
                check_access_log($block, $repeated_req_idx)
                    unless defined $block->ignore_response;
            }

            $req_idx++;
            last unless $n;
        }
    }

    sleep $block->wait if $block->wait;
    check_error_log($block, $res, $repeated_req_idx, $need_array);
    check_access_log($block, $repeated_req_idx) unless defined $block->ignore_response;
}

sub check_error_code ($$$$) {
    my ($block, $res, $idx, $need_array) = @_;
    my $name = $block->name;
    my $got = ($res && $res->code) || '';
    if (defined $block->error_code_like) {
        my $val = get_indexed_value($name, $block->error_code_like, $idx, $need_array);
        Test::More::like($got, qr/$val/sm, "$name - status code ok");
    } elsif (defined $block->error_code) {
        Test::Base::is($got, get_indexed_value($name, $block->error_code, $idx, $need_array),
                       "$name - status code ok");
    } else {
        Test::Base::is($got, 200, "$name - status code ok");
    }
}

sub check_raw_response_headers ($$$$) {
    my ($block, $raw_headers, $idx, $need_array) = @_;
    my $name = $block->name;
    $raw_headers //= '';
    if (defined $block->raw_response_headers_like) {
        my $re = get_indexed_value($name, $block->raw_response_headers_like, $idx, $need_array);
        Test::More::like($raw_headers, qr/$re/s, "$name - raw resp headers like");
    }
    if (defined $block->raw_response_headers_unlike) {
        my $re = get_indexed_value($name, $block->raw_response_headers_unlike, $idx, $need_array);
        Test::More::unlike($raw_headers, qr/$re/s, "$name - raw resp headers unlike");
    }
}

# "Name: value" lines; "!Name" means the header must be absent (undef).
sub parse_headers ($) {
    my $s = shift;
    my %h;
    for my $line (split /\n/, $s // '') {
        $line =~ s/^\s+|\s+$//g;
        if ($line =~ s/^!\s*//) {
            $h{$line} = undef;
        } else {
            my ($k, $v) = split /\s*:\s*/, $line, 2;
            $h{$k} = $v;
        }
    }
    return \%h;
}

sub check_response_headers ($$$$$) {
    my ($block, $res, $raw_headers, $idx, $need_array) = @_;
    my $name = $block->name;
    $raw_headers //= '';

    if (defined $block->response_headers) {
        my $h = parse_headers(get_indexed_value($name, $block->response_headers,
                                                $idx, $need_array));
        for my $key (sort keys %$h) {
            my $val = $h->{$key};
            if (!defined $val) {
                Test::More::unlike($raw_headers, qr/^\s*\Q$key\E\s*:/ms,
                                   "$name - header $key not present in the raw headers");
                next;
            }
            $val =~ s/\$ServerPort\b/$ServerPort/g;
            $val =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
            my $actual = $res ? scalar $res->header($key) : undef;
            Test::Base::is($actual // '', $val, "$name - header $key ok");
        }
    } elsif (defined $block->response_headers_like) {
        my $h = parse_headers(get_indexed_value($name, $block->response_headers_like,
                                                $idx, $need_array));
        for my $key (sort keys %$h) {
            my $val = $h->{$key} // '';
            my $actual = $res ? scalar $res->header($key) : undef;
            Test::More::like($actual // '', qr/^$val$/, "$name - header $key like ok");
        }
    }
}

sub transform_response_body ($$$) {
    my ($block, $res, $idx) = @_;
    return unless defined $res && defined $res->content;
    my $filters = $block->response_body_filters;
    return unless defined $filters;
    my $name = $block->name;

    if (!ref $filters) {
        $filters =~ s/^\s+|\s+$//gs;
        $filters = [split /\s+/, $filters];
    } elsif (ref $filters ne 'ARRAY') {
        $filters = [$filters];
    }
    if (ref $filters->[0] eq 'ARRAY') {
        # one filter list per request
        $filters = $filters->[$idx];
        bail_out("$name - the ---response_body_filters two-dimensional array "
                 . "unmatch the specified request($idx)") unless defined $filters;
        $filters = [$filters] unless ref $filters eq 'ARRAY';
    }

    my %builtin = (
        md5_hex  => \&Digest::MD5::md5_hex,
        sha1_hex => \&Digest::SHA::sha1_hex,
        uc => sub { uc $_[0] }, lc => sub { lc $_[0] },
        ucfirst => sub { ucfirst $_[0] }, lcfirst => sub { lcfirst $_[0] },
        length => sub { length $_[0] },
    );
    my $content = $res->content;
    for my $f (@$filters) {
        my $code = ref $f eq 'CODE' ? $f : $builtin{$f}
            or bail_out("$name - unknown filter, \"$f\", specified in the "
                        . "--- response_body_filters section");
        $content = $code->($content);
    }
    $res->content($content);
}

sub check_response_body ($$$$$) {
    my ($block, $res, $idx, $repeated_req_idx, $need_array) = @_;
    my $name = $block->name;

    my $content = $res ? $res->content : undef;
    if (defined $content) {
        # artifacts of clients that echo LWP's default request headers
        $content =~ s/^TE: deflate,gzip;q=0\.3\r\n//gms;
        $content =~ s/^Connection: TE, close\r\n//gms;
    }

    if (defined $block->response_body || defined $block->response_body_eval) {
        my $expected;
        if ($block->response_body_eval) {
            Test::More::diag("$name - response_body_eval is DEPRECATED. "
                             . "Use response_body eval instead.");
            $expected = eval get_indexed_value($name, $block->response_body_eval,
                                               $idx, $need_array);
            warn $@ if $@;
        } else {
            $expected = get_indexed_value($name, $block->response_body, $idx, $need_array);
        }
        if (defined $expected && !ref $expected) {
            $expected =~ s/\$ServerPort\b/$ServerPort/g;
            $expected =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
        }
        my $desc = "$name - response_body - ";
        if (ref $expected) {
            Test::More::like($content, $expected,
                "${desc}like (repeated req $repeated_req_idx, req $idx)");
        } elsif ($NoLongString) {
            Test::Base::is($content, $expected,
                "${desc}response is expected (repeated req $repeated_req_idx, req $idx)");
        } else {
            Test::LongString::is_string($content, $expected,
                "${desc}response is expected (repeated req $repeated_req_idx, req $idx)");
        }
    } elsif (defined $block->response_body_like || defined $block->response_body_unlike) {
        my ($type, $pats) = defined $block->response_body_like
            ? ('like', $block->response_body_like)
            : ('unlike', $block->response_body_unlike);
        my $pat = get_indexed_value($name, $pats, $idx, $need_array);
        $pat =~ s/\$ServerPort\b/$ServerPort/g;
        $pat =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
        my $summary = trim($content) // '';
        my $desc = "$name - response_body_$type - response is expected ($summary)";
        if ($type eq 'like') {
            Test::More::like($content, qr/$pat/s, $desc);
        } else {
            Test::More::unlike($content, qr/$pat/s, $desc);
        }
    }

    for my $check (@ResponseBodyChecks) {
        $check->($block, $content, $idx, $repeated_req_idx, 0);
    }
}

# True if $pat occurs in a string, or in any string of an array.
sub value_contains ($$) {
    my ($val, $pat) = @_;
    return $val =~ /\Q$pat\E/ if !ref $val || ref $val eq 'Regexp';
    if (ref $val eq 'ARRAY') {
        for my $v (@$val) {
            return 1 if defined $v && value_contains($v, $pat);
        }
    }
    return undef;
}

# The pause before reading a log: until TEST_NGINX_SLEEP x 3 has passed
# since the last request's connection was closed, for the lines nginx
# writes after that (log phase, lingering close).  Measured from the close,
# not from each check: the responses to pipelined requests are read at
# once, then checked one by one, and one pause after their connection's
# close covers all of them (a fixed pause per check cost 45 ms per
# response, 40 s for t/045's 960).
sub log_pause () {
    my $left = $TestNginxSleep * 3;
    $left -= time - $LastClosed if defined $LastClosed;
    sleep $left if $left > 0;
}

# The error.log lines not looked at yet (all of them with
# check_accum_error_log), after log_pause().
sub error_log_data () {
    log_pause();
    open my $in, '<', $ErrLogFile or return [];
    seek $in, $ErrLogFilePos, 0 if !$CheckAccumErrLog && $ErrLogFilePos > 0;
    my @lines = <$in>;
    $ErrLogFilePos = tell $in unless $CheckAccumErrLog;
    close $in;
    return \@lines;
}

sub access_log_data () {
    log_pause();
    open my $in, '<', $AccLogFile or return [];
    my @lines = <$in>;
    close $in;
    return \@lines;
}

# Section value -> list of patterns (strings are split into lines; a qr//
# or an array from "eval" is used as is).
sub patterns_of ($) {
    my $pats = shift;
    if (!ref $pats) {
        chomp $pats;
        return [split /\n+/, $pats];
    }
    return [$pats] if ref $pats eq 'Regexp';
    return [@$pats];
}

sub line_matches ($$) {
    my ($line, $pat) = @_;
    return (ref $pat && $line =~ /$pat/) || $line =~ /\Q$pat\E/;
}

# Every pattern must match some line: one pass or fail per pattern.
sub expect_patterns ($$$$) {
    my ($lines, $pats, $what, $suffix) = @_;
    my @left = @$pats;
    for my $line (@$lines) {
        for my $pat (@left) {
            next unless defined $pat;
            if (line_matches($line, $pat)) {
                Test::More::pass("$what->[0] - pattern \"$pat\" matches a line in $what->[1]$suffix");
                undef $pat;
            }
        }
    }
    for my $pat (grep { defined } @left) {
        Test::More::fail("$what->[0] - pattern \"$pat\" should match a line in $what->[1]$suffix");
    }
}

# No pattern may match: one fail per matching line, one pass per pattern
# that matched nothing.
sub reject_patterns ($$$$$) {
    my ($lines, $pats, $what, $suffix, $show_more) = @_;
    my %found;
    for my $i (0 .. $#$lines) {
        my $line = $lines->[$i];
        for my $pat (@$pats) {
            next unless defined $pat;
            next unless line_matches($line, $pat);
            $found{$pat}++;
            my $more = '';
            if ($show_more) {
                my $last = min($i + 10, @$lines - 1);
                $more = join '', @{$lines}[$i + 1 .. $last - 1] if $last - 1 >= $i + 1;
            }
            Test::More::fail("$what->[0] - pattern \"" . fmt_str($pat)
                . "\" should not match any line in $what->[1] but matches line \""
                . fmt_str($line) . "\"$suffix" . ($show_more ? "\n$more" : ''));
        }
    }
    for my $pat (@$pats) {
        next if !defined $pat || $found{$pat};
        Test::More::pass("$what->[0] - pattern \"" . fmt_str($pat)
                         . "\" does not match a line in $what->[1]$suffix");
    }
}

sub check_error_log ($$$$) {
    my ($block, $res, $repeated_req_idx, $need_array) = @_;
    my $name = $block->name;
    my $lines;
    my $suffix = " (req $repeated_req_idx)";
    my %warn_for = ('[crit]' => 1, '[emerg]' => 1);

    my $grep_pat = $block->grep_error_log;
    if (defined $grep_pat) {
        $grep_pat = $grep_pat->[$repeated_req_idx] if ref $grep_pat eq 'ARRAY';
        my $expected = $block->grep_error_log_out;
        bail_out("$name - No --- grep_error_log_out defined but --- "
                 . "grep_error_log is defined") unless defined $expected;
        $expected = $expected->[$repeated_req_idx] if ref $expected eq 'ARRAY';
        $lines ||= error_log_data();
        my $matched = '';
        for my $line (@$lines) {
            if ((ref $grep_pat && $line =~ /$grep_pat/) || $line =~ /\Q$grep_pat\E/) {
                $matched .= "$&\n" if $& !~ /\n/;
            }
        }
        is_str($matched, $expected, "$name - grep_error_log_out$suffix");
    } elsif (defined $block->grep_error_log_out) {
        bail_out("$name - No --- grep_error_log defined but --- "
                 . "grep_error_log_out is defined");
    }

    for my $sec (qw(error_log no_error_log)) {
        my $v = $block->$sec;
        next unless defined $v;
        for my $lvl (keys %warn_for) {
            (my $p = $lvl) =~ s/\]$//;
            delete $warn_for{$lvl} if value_contains($v, $p);
        }
    }

    if (defined $block->error_log) {
        $lines ||= error_log_data();
        expect_patterns($lines, patterns_of($block->error_log),
                        [$name, 'error.log'], $suffix);
    }

    if (defined $block->no_error_log) {
        $lines ||= error_log_data();
        reject_patterns($lines, patterns_of($block->no_error_log),
                        [$name, 'error.log'], $suffix, 1);
    }

    if (%warn_for) {
        $lines ||= error_log_data();
        for my $line (@$lines) {
            for my $lvl (keys %warn_for) {
                warn "WARNING: $name - " . fmt_str($line) . "\n"
                    if index($line, $lvl) >= 0;
            }
        }
    }

    for my $line (@{ $lines || [] }) {
        if ($line =~ /\bAssertion .*?failed\b/) {
            chomp(my $l = $line);
            Test::More::fail("$name - $l\n");
        }
    }
}

sub check_access_log ($$) {
    my ($block, $repeated_req_idx) = @_;
    my $name = $block->name;
    my $suffix = " (req $repeated_req_idx)";
    my $lines;
    if (defined $block->access_log) {
        $lines ||= access_log_data();
        expect_patterns($lines, patterns_of($block->access_log),
                        [$name, 'access.log'], $suffix);
    }
    if (defined $block->no_access_log) {
        $lines ||= access_log_data();
        reject_patterns($lines, patterns_of($block->no_access_log),
                        [$name, 'access.log'], $suffix, 1);
    }
}

# Run once nginx has exited: the lines written since the last check.
sub check_shutdown_error_log ($) {
    my $block = shift;
    my $name = $block->name;
    my $lines = error_log_data();

    if (defined $block->no_shutdown_error_log) {
        reject_patterns($lines, patterns_of($block->no_shutdown_error_log),
                        [$name, 'error.log'], '', 0);
    }
    if (defined $block->shutdown_error_log) {
        expect_patterns($lines, patterns_of($block->shutdown_error_log),
                        [$name, 'error.log'], '');
    }
    for my $line (@$lines) {
        if ($line =~ /\bAssertion .*? failed\.$/) {
            chomp(my $l = $line);
            Test::More::fail("$name - $l");
        }
    }
}

1;
