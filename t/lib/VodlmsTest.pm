package VodlmsTest;

# Helpers for the prologue of vodlms's Test::Nginx suites (the Perl code
# before run_tests()).  Plain Perl, no dependency on Test::Nginx internals,
# so the same .t files work with the real runner and with t/compat.
#
#   use FindBin; use lib "$FindBin::Bin/lib";
#   use VodlmsTest;
#
#   my $redis = start_redis();                 # private redis-server
#   $ENV{TEST_NGINX_REDIS_PORT} = $redis->port;
#   redis_cmd($redis, 'SET', 'sess:abc', '{"user":1}');
#
#   my ($ctl_port, $ctl) = control_server(     # forked HTTP server
#       '/redis/stop'  => sub { $redis->stop;  "stopped\n" },
#       '/redis/start' => sub { $redis->start; "started\n" },
#   );
#   $ENV{TEST_NGINX_CTL_PORT} = $ctl_port;
#
#   my ($bh_port, $bh) = blackhole();          # accepts, never answers
#   $ENV{TEST_NGINX_BLACKHOLE_PORT} = $bh_port;
#
# Everything started here is stopped at END (or when its guard object is
# dropped), only by the process that started it.

use strict;
use warnings;

use Carp qw(croak);
use Exporter 'import';
use File::Path qw(remove_tree);
use File::Spec ();
use File::Temp qw(tempdir);
use IO::Select ();
use IO::Socket::INET ();
use POSIX qw(:sys_wait_h SIGTERM SIGKILL);
use Scalar::Util qw(weaken);
use Socket qw(SOMAXCONN);
use Time::HiRes qw(sleep time);

our @EXPORT = qw(redis_cmd free_port blackhole start_redis start_sentinel start_pg start_pg_replica control_server
                 private_key block_defaults reload_nginx helper_env poll_until
                 progress_row_handlers nginx_child package_lock);

my $OwnerPid = $$;

# prctl(PR_SET_PDEATHSIG) syscall number, if the h2ph headers are there:
# children we start then die with us even if we are killed outright.
my $PrctlSyscall = eval {
    local $SIG{__WARN__} = sub {};
    package main;
    require 'syscall.ph';
    SYS_prctl();
};

sub _die_with_parent {
    syscall($PrctlSyscall, 1, SIGTERM) if $PrctlSyscall;
}

#---------------------------------------------------------------------------
# Block defaults
#---------------------------------------------------------------------------

# What every block of a suite shares, through the file format's own
# add_block_preprocessor, so that each block shows only what it is about:
# "load_module" unless the block has a main_config of its own (an empty
# "--- main_config" loads nothing), and the suite's usual http{} lines
# unless the block has its own (an empty "--- http_config" has none).
sub block_defaults {
    my %d = @_;
    Test::Nginx::Socket::add_block_preprocessor(sub {
        my $block = shift;
        $block->set_value('main_config',
                          "    load_module \$TEST_NGINX_MODULE_PATH;\n")
            unless defined $block->main_config;
        $block->set_value('http_config', $d{http_config})
            if defined $d{http_config} && !defined $block->http_config;
    });
}

#---------------------------------------------------------------------------
# Reloads (suites run with master_on())
#---------------------------------------------------------------------------

# HUP the master whose pid file is under SERVROOT, then wait until the
# worker OLD (the one that proxied the asking request) logs that it is
# shutting down: it has stopped listening, so the next connection reaches
# a new worker.  "reloaded\n", or what went wrong.
sub reload_nginx {
    my ($servroot, $old) = @_;
    open my $pf, '<', "$servroot/logs/nginx.pid" or return "no master\n";
    chomp(my $master = <$pf> // '');
    kill('HUP', $master) or return "no master\n";
    for (1 .. 1000) {
        if (open my $fh, '<', "$servroot/logs/error.log") {
            return "reloaded\n"
                if grep { /\[notice\] $old#\d+: gracefully shutting down/ } <$fh>;
        }
        select undef, undef, undef, 0.02;
    }
    return "timed out waiting for the old worker to shut down\n";
}

#---------------------------------------------------------------------------
# Keys
#---------------------------------------------------------------------------

# An nginx of a plain Test::More suite, as a direct child of the test (fork
# + exec; ->stop waits for it with waitpid): its own prefix directory, the
# module loaded, one worker unless told, and the http{} lines every suite
# needs (temp paths, no access log) before $o{http}.  $o{listen} is the
# port the caller put in its server{}; new() returns once it accepts.
#   my $n = nginx_child(name => 'a', listen => $port, http => "server {...}");
#   $n->{dir}, $n->{pid}, $n->log, $n->workers, $n->stop('QUIT')
sub nginx_child {
    my (%o) = (workers => 1, log_level => 'info', @_);
    return VodlmsTest::Nginx->new(%o);
}

# Poll $cond (every 20 ms, 500 times) until it returns something true, and
# return that; "timed out waiting for $what\n" otherwise.  For control
# server handlers that wait for a flush to reach the database.
sub poll_until {
    my ($what, $cond) = @_;
    for (1 .. 500) {
        my $v = eval { $cond->() };
        return $v if $v;
        select undef, undef, undef, 0.02;
    }
    return "timed out waiting for $what\n";
}

# Control-server handlers for the progress suites, reading $pg's
# vodlms.watch_progress once the flush has written the row:
#   /row?user=U&video=V[&max=M]    "<max position> completed=<bool>", once
#                                  the row (with that max position) is there
#   /cov?user=U&video=V[&want=B]   "<coverage bits> <fraction|none>", once
#                                  the row (with bits B exactly) is there
#   /second                        answers a second later (real time between
#                                  two beacons)
sub progress_row_handlers {
    my ($pg) = @_;
    my $row = sub {
        my ($query, $select, $what, $match) = @_;
        my ($user) = ($query // '') =~ /user=(\d+)/ or return "no user\n";
        my ($video) = ($query // '') =~ /video=([A-Za-z0-9_-]+)/ or return "no video\n";
        poll_until("the $what of $user/$video", sub {
            my $v = $pg->psql("SELECT $select FROM vodlms.watch_progress"
                            . " WHERE user_id = '$user' AND video_id = '$video'");
            return undef if $v eq '';
            return undef if defined $match && $v !~ /^\Q$match\E /;
            "$v\n";
        });
    };
    return (
        '/row' => sub {
            my ($path, $query) = @_;
            my ($max) = ($query // '') =~ /max=([\d.]+)/;
            $row->($query, "max_position_seconds || ' completed=' || (completed_at IS NOT NULL)",
                   'row', $max);
        },
        '/cov' => sub {
            my ($path, $query) = @_;
            my ($want) = ($query // '') =~ /want=([01]+)/;
            $row->($query, "coverage::text || ' ' || coalesce(complete_fraction::text, 'none')",
                   'coverage', $want);
        },
        '/second' => sub { select undef, undef, undef, 1.0; "a second later\n" },
    );
}

# A 0600 copy of a private key (the shared vectors are 0444): nginx warns
# about a private key that group or others can read, as it should in
# production, and a suite's "no_error_log [warn]" would see that warning.
my $KeyDir;
sub private_key {
    my ($src) = @_;
    $KeyDir ||= tempdir('vodlms-keys-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    (my $name = $src) =~ s{.*/}{};
    my $dst = "$KeyDir/$name";
    open my $in, '<', $src or croak "private_key: $src: $!";
    my $pem = do { local $/; <$in> };
    close $in;
    open my $out, '>', $dst or croak "private_key: $dst: $!";
    print $out $pem;
    close $out;
    chmod 0600, $dst or croak "private_key: chmod $dst: $!";
    return $dst;
}

#---------------------------------------------------------------------------
# The machine's package database
#---------------------------------------------------------------------------

# package_lock('exclusive' | 'shared'): a handle holding a lock that suites
# running side by side take around the machine's installed packages.
# t/150 installs and purges packages (exclusive): while dpkg runs its
# triggers, packages such as nginx are briefly not "installed", and a
# `./build.sh run` starting beside it (t/160, shared) would set out to
# install them.  The lock lasts as long as the handle.
sub package_lock {
    my ($mode) = @_;
    require Fcntl;
    my $dir = -d '/run/lock' && -w _ ? '/run/lock' : File::Spec->tmpdir;
    my $path = "$dir/vodlms-test-packages.lock";
    open my $fh, '>>', $path or croak "package_lock: $path: $!";
    flock($fh, $mode eq 'exclusive' ? Fcntl::LOCK_EX() : Fcntl::LOCK_SH())
        or croak "package_lock: flock $path: $!";
    return $fh;
}

#---------------------------------------------------------------------------
# Ports
#---------------------------------------------------------------------------

# A TCP port free on 127.0.0.1 right now (chosen by the kernel).
sub free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Proto => 'tcp', Listen => 1)
        or croak "free_port: cannot bind: $!";
    my $port = $s->sockport;
    close $s;
    return $port;
}

# A listening socket that is never accepted from: connects complete in the
# kernel backlog, and reads then hang until the peer gives up.  Returns
# ($port, $guard); the socket stays open while $guard is alive.
sub blackhole {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Proto => 'tcp', Listen => SOMAXCONN)
        or croak "blackhole: cannot bind: $!";
    return ($s->sockport, $s);
}

#---------------------------------------------------------------------------
# Redis protocol client
#---------------------------------------------------------------------------

# An error reply ("-ERR ..."): returned, not thrown, so that tests can look
# at it.  Stringifies to the message; tell it apart with ref().
package VodlmsTest::RedisError {
    use overload '""' => sub { $_[0]{message} }, bool => sub { 1 },
                 fallback => 1;
    sub new { bless { message => $_[1] }, $_[0] }
    sub message { $_[0]{message} }
}

# Reads RESP values from a socket, with a deadline for every wait.
package VodlmsTest::RespReader {
    sub new {
        my ($class, $sock, $timeout) = @_;
        bless { sock => $sock, buf => '', timeout => $timeout }, $class;
    }

    sub _fill {
        my $self = shift;
        my $sel = IO::Select->new($self->{sock});
        $sel->can_read($self->{timeout})
            or die "redis: timed out waiting for a reply\n";
        my $n = sysread $self->{sock}, my $chunk, 65536;
        die "redis: read failed: $!\n" unless defined $n;
        die "redis: connection closed by the server\n" unless $n;
        $self->{buf} .= $chunk;
    }

    sub _line {
        my $self = shift;
        $self->_fill until $self->{buf} =~ s/^(.*?)\r\n//s;
        return $1;
    }

    sub _bytes {
        my ($self, $n) = @_;
        $self->_fill while length $self->{buf} < $n + 2;
        my $data = substr $self->{buf}, 0, $n;
        substr($self->{buf}, 0, $n + 2) = '';
        return $data;
    }

    sub reply {
        my $self = shift;
        my $line = $self->_line;
        my ($type, $rest) = (substr($line, 0, 1), substr($line, 1));
        return $rest if $type eq '+';
        return VodlmsTest::RedisError->new($rest) if $type eq '-';
        return 0 + $rest if $type eq ':';
        if ($type eq '$') {
            return undef if $rest < 0;
            return $self->_bytes($rest);
        }
        if ($type eq '*') {
            return undef if $rest < 0;
            return [map { $self->reply } 1 .. $rest];
        }
        die "redis: unexpected reply line \"$line\"\n";
    }
}

package VodlmsTest;

sub _resp_command {
    my @args = @_;
    my $out = '*' . @args . "\r\n";
    for my $a (@args) {
        my $b = defined $a ? "$a" : '';
        utf8::encode($b) if utf8::is_utf8($b);
        $out .= '$' . length($b) . "\r\n$b\r\n";
    }
    return $out;
}

# redis_cmd($target, @command) -> reply.  $target is a port number, a
# start_redis() object (its requirepass is used), or a hashref
# {port, host, password, user, timeout} (host: default 127.0.0.1).  Replies: +status and $bulk -> string,
# :int -> number, nil -> undef, *array -> arrayref, -error ->
# VodlmsTest::RedisError.  Dies if it cannot connect or read.
sub redis_cmd {
    my ($target, @cmd) = @_;
    croak "redis_cmd: no command" unless @cmd;
    my %c;
    if (ref $target eq 'HASH') {
        %c = %$target;
    } elsif (ref $target && $target->can('port')) {
        %c = (port => $target->port, password => $target->requirepass,
              host => $target->host);
    } else {
        %c = (port => $target);
    }
    my $timeout = $c{timeout} // 5;
    croak "redis_cmd: no port" unless $c{port};

    my $host = $c{host} // '127.0.0.1';
    my $sock = IO::Socket::INET->new(PeerAddr => $host,
        PeerPort => $c{port}, Proto => 'tcp', Timeout => $timeout)
        or croak "redis_cmd: cannot connect to $host:$c{port}: $!";
    my $reader = VodlmsTest::RespReader->new($sock, $timeout);
    my $send = sub {
        my $data = _resp_command(@_);
        local $SIG{PIPE} = 'IGNORE';
        while (length $data) {
            my $n = syswrite $sock, $data;
            croak "redis_cmd: write failed: $!" unless defined $n;
            substr($data, 0, $n) = '';
        }
        my $r = eval { $reader->reply };
        croak "redis_cmd(@cmd): $@" if $@;
        return $r;
    };

    if (defined $c{password}) {
        my $r = $send->('AUTH', (defined $c{user} ? ($c{user}) : ()), $c{password});
        croak "redis_cmd: AUTH failed: $r" if ref $r;
    }
    my $reply = $send->(@cmd);
    close $sock;
    return $reply;
}

#---------------------------------------------------------------------------
# A private redis-server
#---------------------------------------------------------------------------

my @Live;    # weak refs to every object started here, for END

# start_redis(%opts) -> VodlmsTest::Redis, already answering PING.
#   port         => N            default: free_port()
#   requirepass  => 'secret'     password of the default user
#   acl_user     => 'alice', acl_password => 'pw'
#                                an ACL user allowed everything
#   acl          => ['bob on >pw ~sess:* +get', ...]   raw ACL user rules
#   unixsocket   => 1 | '/path'  also listen on a unix socket (1: in the dir)
#   args         => [...]        more redis-server arguments
#   binary       => '/usr/bin/redis-server'
#   bind         => '127.0.0.2'  another loopback address (default 127.0.0.1)
#   sentinel     => "sentinel monitor ...\n..."   run as a sentinel with
#                                this sentinel.conf (see start_sentinel)
sub start_redis {
    my %opts = @_;
    my $self = VodlmsTest::Redis->_new(%opts);
    $self->start;
    return $self;
}

# start_sentinel(master => $redis, name => 'mymaster', %opts) -> a sentinel
# (a start_redis() object: ->port, ->cmd, ->stop, ->pid) watching $redis as
# "name", quorum 2.  down_after => ms (default 1000), failover_timeout =>
# ms (default 5000), auth_pass => the master's password, plus start_redis
# options (requirepass => the sentinel's own password).
sub start_sentinel {
    my %o = @_;
    my $m = delete $o{master} or croak "start_sentinel: no master";
    my $name = delete $o{name} // 'mymaster';
    my $conf = "sentinel monitor $name 127.0.0.1 " . $m->port . " 2\n"
             . "sentinel down-after-milliseconds $name " . (delete $o{down_after} // 1000) . "\n"
             . "sentinel failover-timeout $name " . (delete $o{failover_timeout} // 5000) . "\n"
             . "sentinel parallel-syncs $name 1\n";
    my $auth = delete $o{auth_pass};
    $conf .= "sentinel auth-pass $name $auth\n" if defined $auth;
    return start_redis(%o, sentinel => $conf);
}

package VodlmsTest::Redis;

use Carp qw(croak);
use POSIX qw(:sys_wait_h SIGTERM SIGKILL);
use Time::HiRes qw(sleep time);

my %Spawned;    # pids this process forked (only those can be waitpid()ed)

sub _new {
    my ($class, %o) = @_;
    my $bin = $o{binary} // $ENV{VODLMS_REDIS_SERVER}
           // (-x '/usr/bin/redis-server' ? '/usr/bin/redis-server' : 'redis-server');
    my $dir = File::Temp::tempdir('vodlms-redis-XXXXXX', TMPDIR => 1, CLEANUP => 0);
    my $port = $o{port} // VodlmsTest::free_port();

    my $bind = $o{bind} // '127.0.0.1';
    my @args = ('--port', $port, '--bind', $bind, '--save', '',
                '--appendonly', 'no', '--daemonize', 'no', '--dir', $dir,
                '--logfile', '');
    my $unix;
    if ($o{unixsocket}) {
        $unix = $o{unixsocket} eq '1' ? "$dir/redis.sock" : $o{unixsocket};
        push @args, '--unixsocket', $unix, '--unixsocketperm', '777';
    }
    push @args, '--requirepass', $o{requirepass} if defined $o{requirepass};
    if (defined $o{acl_user}) {
        croak "start_redis: acl_user needs acl_password" unless defined $o{acl_password};
        push @args, '--user', $o{acl_user}, 'on', ">$o{acl_password}",
                    '~*', '&*', '+@all';
    }
    for my $rule (@{ $o{acl} || [] }) {
        push @args, '--user', split ' ', $rule;
    }
    push @args, @{ $o{args} || [] };
    if (defined $o{sentinel}) {
        # a sentinel rewrites its configuration file: one of its own
        open my $sc, '>', "$dir/sentinel.conf" or croak "$dir/sentinel.conf: $!";
        print $sc $o{sentinel};
        close $sc;
        @args = ("$dir/sentinel.conf", '--sentinel', @args);
    }

    my $self = bless {
        binary => $bin, dir => $dir, port => $port, unixsocket => $unix, host => $bind,
        requirepass => $o{requirepass}, args => \@args,
        pidfile => "$dir/redis.pid", log => "$dir/redis.log", owner => $$,
    }, $class;
    push @Live, $self;
    Scalar::Util::weaken($Live[-1]);
    return $self;
}

sub port        { $_[0]{port} }
sub host        { $_[0]{host} }
sub dir         { $_[0]{dir} }
sub unixsocket  { $_[0]{unixsocket} }
sub requirepass { $_[0]{requirepass} }
sub log_file    { $_[0]{log} }
sub cmd         { my $self = shift; VodlmsTest::redis_cmd($self, @_) }

# The pid of the running server, read from the pid file so that any
# process (e.g. a control_server child) sees the current one.
sub pid {
    my $self = shift;
    open my $in, '<', $self->{pidfile} or return undef;
    my $pid = <$in>;
    close $in;
    return undef unless defined $pid && $pid =~ /^(\d+)/;
    return $1;
}

# Reap the servers this process started that have exited (stopped from
# another process, say), and only those.
sub _reap {
    for my $pid (keys %Spawned) {
        delete $Spawned{$pid} if waitpid($pid, WNOHANG) == $pid;
    }
}

# Stop and reap every server this process started that still runs.
sub _stop_children {
    for my $pid (keys %Spawned) {
        next if waitpid($pid, WNOHANG) != 0;    # reaped now, or not ours
        kill SIGTERM, $pid;
        my $deadline = time + 5;
        while (waitpid($pid, WNOHANG) == 0) {
            if (time > $deadline) { kill SIGKILL, $pid; waitpid($pid, 0); last }
            sleep 0.005;
        }
    }
    %Spawned = ();
}

# Alive and really a redis-server (not a zombie, not a reused pid).
sub _alive {
    my $pid = shift;
    _reap();
    return 0 unless kill 0, $pid;
    if (open my $st, '<', "/proc/$pid/stat") {
        my $line = <$st> // '';
        return 0 if $line =~ /\)\s+Z\s/;
    }
    if (open my $cl, '<', "/proc/$pid/cmdline") {
        my $cmd = <$cl> // '';
        return 0 unless $cmd =~ /redis/;
    }
    return 1;
}

sub running {
    my $self = shift;
    my $pid = $self->pid;
    return $pid && _alive($pid);
}

sub _tail_log {
    my $self = shift;
    open my $in, '<', $self->{log} or return '';
    my @l = <$in>;
    return join '', @l[max0(@l - 15) .. $#l];
}
sub max0 { $_[0] > 0 ? $_[0] : 0 }

# Start (or restart) the server on the same port and directory; returns
# once it answers PING (an error reply such as NOAUTH counts as an answer).
sub start {
    my $self = shift;
    croak "redis on port $self->{port} is already running" if $self->running;

    my $pid = fork;
    croak "start_redis: fork failed: $!" unless defined $pid;
    if ($pid == 0) {
        VodlmsTest::_die_with_parent();
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $self->{log};
        open STDERR, '>&', \*STDOUT;
        { no warnings 'exec'; exec { $self->{binary} } $self->{binary}, @{ $self->{args} }; }
        print STDERR "exec $self->{binary} failed: $!\n";
        POSIX::_exit(127);
    }
    $Spawned{$pid} = 1;

    my $tmp = "$self->{pidfile}.$$";
    open my $out, '>', $tmp or croak "cannot write $tmp: $!";
    print $out "$pid\n";
    close $out;
    rename $tmp, $self->{pidfile} or croak "cannot rename $tmp: $!";

    my $deadline = time + 10;
    while (1) {
        if (waitpid($pid, WNOHANG) == $pid) {
            croak "redis-server exited at startup ($?):\n" . $self->_tail_log;
        }
        my $r = eval { VodlmsTest::redis_cmd({ port => $self->{port}, host => $self->{host},
                                               timeout => 0.5 }, 'PING') };
        last if defined $r;
        if (time > $deadline) {
            kill SIGKILL, $pid;
            croak "redis-server on port $self->{port} did not answer PING "
                . "within 10s:\n" . $self->_tail_log;
        }
        sleep 0.01;
    }
    return $self;
}

# SIGTERM, wait for it to go (SIGKILL after 10 s).  Works from any process.
sub stop {
    my $self = shift;
    my $pid = $self->pid or return;
    unless (_alive($pid)) {
        unlink $self->{pidfile};
        return;
    }
    kill SIGTERM, $pid;
    my $deadline = time + 10;
    while (_alive($pid)) {
        if (time > $deadline) {
            kill SIGKILL, $pid;
            $deadline = time + 5;
            while (_alive($pid) && time < $deadline) { sleep 0.01 }
            last;
        }
        sleep 0.005;
    }
    _reap();
    unlink $self->{pidfile};
    return 1;
}

sub _destroy {
    my $self = shift;
    return unless $self->{owner} == $$;
    $self->stop;
    File::Path::remove_tree($self->{dir}) if $self->{dir} && -d $self->{dir};
    $self->{owner} = 0;
}

sub DESTROY { local ($., $@, $!, $^E, $?); $_[0]->_destroy }

package VodlmsTest;

#---------------------------------------------------------------------------
# A tiny HTTP/1.1 server running Perl handlers, in a forked child
#---------------------------------------------------------------------------

my @Servers;    # pids of control servers started here, for END

# control_server('/path' => sub { ... }, ...) -> ($port, $guard)
# Each request is answered by the handler of its path (query string
# ignored; '*' is the fallback).  A handler gets ($path, $query, $body,
# \%headers) and returns the body string (status 200) or [$status, $body];
# if it dies the answer is 500 with the error.  Every response has a
# Content-Length and closes the connection.  Handlers run in the child
# process, one request at a time; a start_redis() object created in the
# parent works there (its pid lives in a file), e.g. '/redis/stop' =>
# sub { $redis->stop; "stopped\n" }.  The child is killed when $guard is
# dropped or at END, and then stops the redis-servers its handlers started.
sub control_server {
    my %handlers = @_;
    my $listener = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
        LocalPort => 0, Proto => 'tcp', Listen => SOMAXCONN)
        or croak "control_server: cannot bind: $!";
    my $port = $listener->sockport;

    my $pid = fork;
    croak "control_server: fork failed: $!" unless defined $pid;
    if ($pid == 0) {
        _control_child($listener, \%handlers);
        POSIX::_exit(0);
    }
    close $listener;
    push @Servers, $pid;
    return ($port, VodlmsTest::Guard->new(sub { _kill_server($pid) }));
}

sub _kill_server {
    my $pid = shift;
    return unless $pid && grep { $_ == $pid } @Servers;
    @Servers = grep { $_ != $pid } @Servers;
    kill SIGTERM, $pid;
    my $deadline = time + 5;
    while (waitpid($pid, WNOHANG) == 0) {
        if (time > $deadline) { kill SIGKILL, $pid; waitpid($pid, 0); last }
        sleep 0.005;
    }
}

sub _control_child {
    my ($listener, $handlers) = @_;
    $SIG{$_} = 'DEFAULT' for qw(INT HUP CHLD);
    $SIG{PIPE} = 'IGNORE';
    # redis-servers started by a handler are this child's children: stop
    # and reap them here, rather than leave zombies to init.  (At the end
    # of a .t, the guard and the redis object die in no particular order.)
    $SIG{TERM} = sub { VodlmsTest::Redis::_stop_children(); POSIX::_exit(0) };
    _die_with_parent();

    # Never write into the TAP stream; and do not keep the parent's other
    # sockets (e.g. a blackhole) alive: point every inherited descriptor
    # at /dev/null (dup2 keeps the numbers taken, so Perl handles that
    # still refer to them stay harmless).
    open STDOUT, '>', '/dev/null';
    if (opendir my $dh, '/proc/self/fd') {
        open my $null, '<', '/dev/null';
        my %keep = map { $_ => 1 } 0, 1, 2, fileno($listener), fileno($null);
        for my $fd (grep { /^\d+$/ && !$keep{$_} } readdir $dh) {
            POSIX::dup2(fileno($null), $fd);
        }
    }

    while (1) {
        my $client = $listener->accept or do { sleep 0.01; next };
        eval { _serve_one($client, $handlers); 1 }
            or warn "control_server: $@";
        close $client;
    }
}

sub _serve_one {
    my ($client, $handlers) = @_;
    my $sel = IO::Select->new($client);
    my $buf = '';
    until ($buf =~ /\r?\n\r?\n/) {
        $sel->can_read(5) or die "request timed out\n";
        my $n = sysread $client, $buf, 65536, length $buf;
        die "connection closed mid-request\n" unless $n;
    }
    my ($head, $body) = split /\r?\n\r?\n/, $buf, 2;
    my ($line, @hlines) = split /\r?\n/, $head;
    my ($method, $target) = $line =~ m{^(\S+)\s+(\S+)}
        or die "bad request line: $line\n";
    my %headers;
    for my $h (@hlines) {
        my ($k, $v) = $h =~ /^([^:]+):\s*(.*)$/ or next;
        $headers{lc $k} = $v;
    }
    my $len = $headers{'content-length'} // 0;
    while (length $body < $len) {
        $sel->can_read(5) or die "request body timed out\n";
        my $n = sysread $client, $body, $len - length $body, length $body;
        die "connection closed mid-body\n" unless $n;
    }
    my ($path, $query) = split /\?/, $target, 2;

    my $handler = $handlers->{$path} // $handlers->{'*'};
    my ($status, $out) = (404, "no handler for $path\n");
    if ($handler) {
        my $r = eval { $handler->($path, $query, $body, \%headers) };
        if ($@) {
            ($status, $out) = (500, "handler for $path died: $@");
        } elsif (ref $r eq 'ARRAY') {
            ($status, $out) = @$r;
        } else {
            ($status, $out) = (200, $r);
        }
    }
    $out //= '';
    utf8::encode($out) if utf8::is_utf8($out);
    my $resp = "HTTP/1.1 $status X\r\nContent-Type: text/plain\r\n"
             . "Content-Length: " . length($out) . "\r\nConnection: close\r\n\r\n$out";
    while (length $resp) {
        my $n = syswrite $client, $resp;
        last unless $n;
        substr($resp, 0, $n) = '';
    }
}

#---------------------------------------------------------------------------
# A private PostgreSQL, with the project's schema and demo seed
#---------------------------------------------------------------------------

# start_pg(%opts) -> VodlmsTest::Pg, already accepting connections, with
# database "vodlms" migrated and seeded from sql/.
#   port => N        default: free_port()
#   listen => '127.0.0.2'  another loopback address (default 127.0.0.1), so
#                    that two servers share a port (a DNS name that moves)
#   log_statements => 1   every statement in ->log_file (counted by tests)
#   bin  => '/usr/lib/postgresql/15/bin'
# PostgreSQL refuses to run as root: as root, its programs run as the
# "postgres" user.  ->stop and ->start work from any process (the
# postmaster's pid is in its pid file), e.g. in control_server handlers.
sub start_pg {
    my %opts = @_;
    my $self = VodlmsTest::Pg->_new(%opts);
    $self->start;
    $self->_migrate;
    return $self;
}

# start_pg_replica($primary, %opts) -> VodlmsTest::Pg: a streaming replica
# of $primary (pg_basebackup -R: a hot standby that follows it over
# loopback), already accepting read-only connections.  Options as
# start_pg's.  ->promote makes it a primary.
sub start_pg_replica {
    my ($primary, %opts) = @_;
    my $self = VodlmsTest::Pg->_new(%opts, primary => $primary);
    $self->start;
    return $self;
}

package VodlmsTest::Pg;

use strict;
use warnings;
use Carp qw(croak);
use File::Temp qw(tempdir);
use IO::Socket::INET;

my @PgServers;

sub _as_pg {
    my @cmd = @_;
    return $> == 0 ? ('runuser', '-u', 'postgres', '--', @cmd) : @cmd;
}

# system() with the child's stdout and stderr sent to a log file: TAP
# output must stay clean.  Returns the exit status like system().
sub _quiet {
    my ($log, @cmd) = @_;
    open my $out, '>&', \*STDOUT or die $!;
    open my $err, '>&', \*STDERR or die $!;
    open STDOUT, '>>', $log or die "$log: $!";
    open STDERR, '>&', \*STDOUT or die $!;
    my $rc = system(@cmd);
    open STDOUT, '>&', $out or die $!;
    open STDERR, '>&', $err or die $!;
    return $rc;
}

sub _new {
    my ($class, %opts) = @_;
    my $bin = $opts{bin} || '/usr/lib/postgresql/15/bin';
    my $dir = tempdir('vodlms-pg-XXXXXX', TMPDIR => 1, CLEANUP => 0);
    if ($> == 0) {
        my (undef, undef, $uid, $gid) = getpwnam('postgres')
            or croak "start_pg: no postgres user";
        chown $uid, $gid, $dir or croak "start_pg: chown $dir: $!";
    }
    chmod 0700, $dir;
    my $self = bless {
        bin   => $bin,
        dir   => $dir,
        data  => "$dir/data",
        port  => $opts{port} || VodlmsTest::free_port(),
        host  => $opts{listen} || '127.0.0.1',
        log_statements => $opts{log_statements},
        owner => $$,
    }, $class;
    if (my $p = $opts{primary}) {
        _quiet("$dir/basebackup.log",
               _as_pg("$bin/pg_basebackup", '-h', $p->host, '-p', $p->port,
                      '-U', 'postgres', '-D', $self->{data}, '-R', '-X', 'stream', '--checkpoint=fast',
                      '--no-sync')) == 0
            or croak "start_pg_replica: pg_basebackup failed: see $dir/basebackup.log";
        push @PgServers, $self;
        return $self;
    }
    _quiet("$dir/initdb.log",
           _as_pg("$bin/initdb", '-D', $self->{data}, '-A', 'trust',
                  '-U', 'postgres', '--no-sync', '-E', 'UTF8',
                  '--locale=C.UTF-8')) == 0
        or croak "start_pg: initdb failed: see $dir/initdb.log";
    push @PgServers, $self;
    return $self;
}

sub port     { $_[0]{port} }
sub host     { $_[0]{host} }
sub log_file { "$_[0]{dir}/server.log" }
sub conninfo { "host=$_[0]{host} port=$_[0]{port} user=postgres dbname=vodlms" }

sub pid {
    my $self = shift;
    open my $fh, '<', "$self->{data}/postmaster.pid" or return undef;
    my $pid = <$fh>;
    chomp $pid if defined $pid;
    return $pid;
}

sub running {
    my $self = shift;
    my $pid = $self->pid or return 0;
    return kill(0, $pid) ? 1 : 0;
}

# Start (or restart) on the same port and data; returns once it accepts
# connections (pg_ctl -w waits for that).
sub start {
    my $self = shift;
    return if $self->running;
    my $opts = "-p $self->{port} -k $self->{dir} -c listen_addresses=$self->{host}"
             . " -c fsync=off -c synchronous_commit=off"
             . ($self->{log_statements} ? " -c log_statement=all" : '');
    _quiet("$self->{dir}/pg_ctl.log",
           _as_pg("$self->{bin}/pg_ctl", '-D', $self->{data}, '-w', '-t', '60',
                  '-l', "$self->{dir}/server.log", '-o', $opts, 'start')) == 0
        or croak "start_pg: pg_ctl start failed: see $self->{dir}/server.log";
}

# A fast shutdown of the postmaster, by its pid; waits until it is gone.
sub stop {
    my $self = shift;
    my $pid = $self->pid or return;
    kill 'INT', $pid or return;
    for (1 .. 600) {
        return unless kill 0, $pid;
        select undef, undef, undef, 0.02;
    }
    kill 'KILL', $pid;
}

# pg_ctl promote: a standby becomes a primary; returns once it is one
sub promote {
    my $self = shift;
    _quiet("$self->{dir}/pg_ctl.log",
           _as_pg("$self->{bin}/pg_ctl", '-D', $self->{data}, '-w', '-t', '60',
                  'promote')) == 0
        or croak "promote: pg_ctl promote failed: see $self->{dir}/server.log";
}

sub psql {
    my ($self, $sql, $db) = @_;
    $db ||= 'vodlms';
    my $out = `psql -X -qAt -h $self->{host} -p $self->{port} -U postgres -d $db -v ON_ERROR_STOP=1 -c \Q$sql\E 2>&1`;
    croak "psql: $out" if $?;
    chomp $out;
    return $out;
}

sub _migrate {
    my $self = shift;
    $self->psql('create database vodlms', 'postgres');
    # this file is t/lib/VodlmsTest.pm: the repository is two levels up
    require Cwd;
    require File::Basename;
    my $root = $ENV{VODLMS_ROOT}
        || Cwd::abs_path(File::Basename::dirname(__FILE__) . '/../..');
    my $ci = $self->conninfo;
    my $out = `$root/sql/migrate.sh '$ci' --seed 2>&1`;
    croak "start_pg: migrations failed: $out" if $?;
}

sub _destroy {
    my $self = shift;
    return unless $self->{owner} == $$;
    $self->stop;
    system('rm', '-rf', $self->{dir});
}

# local $?: stopping the servers must not replace the test's exit status
END { local $?; $_->_destroy for @PgServers; @PgServers = () }

package VodlmsTest;

package VodlmsTest::Guard {
    sub new { my ($class, $code) = @_; bless { code => $code, owner => $$ }, $class }
    sub DESTROY {
        my $self = shift;
        local ($., $@, $!, $^E, $?);
        $self->{code}->() if $self->{owner} == $$;
    }
}

#---------------------------------------------------------------------------
# The helper's suites
#---------------------------------------------------------------------------

# What the suites that run vodlms-helper against a private Redis and
# PostgreSQL share before their first test (t/089 .. t/099, t/178):
#
#   my %env = helper_env(name => 'jobs', ports => 28000,
#                        tools => [qw(ffmpeg ffprobe)]);
#
# the helper binary, $VODLMS_BUILD_DIR/helper/vodlms-helper (or build/'s;
# made if missing); every tool on PATH; /tmp/NAME-XXXXXX, mode 0755, with
# src/ and origin/hls/ in it (kept, and named, with HELPER_TEST_KEEP=1);
# and Redis and PostgreSQL on ports from PORTS..PORTS+999, a range of the
# suite's own, so that suites side by side never pick the same one.  A
# missing piece fails the suite, named.  Returns repo, build, bin, tmp,
# src, origin, redis, pg, pick_port (one more port of the range, as a code
# reference) and the path of each tool under its name.
sub helper_env {
    my %o = @_;
    require FindBin;
    require Test::More;
    my $bail = sub { Test::More::fail($_[0]); Test::More::done_testing(); exit 1 };
    my %env = (repo => "$FindBin::Bin/..");
    $env{build} = (defined $ENV{VODLMS_BUILD_DIR} && length $ENV{VODLMS_BUILD_DIR})
                ? $ENV{VODLMS_BUILD_DIR} : "$env{repo}/build";
    my $bin = $env{bin} = "$env{build}/helper/vodlms-helper";

    system("make -s -C '$env{repo}/helper' BUILD='$env{build}/helper' >&2") unless -x $bin;
    $bail->("helper binary not built: $bin (make -C helper BUILD=$env{build}/helper)") unless -x $bin;
    for my $tool (@{ $o{tools} || [] }) {
        ($env{$tool}) = grep { -x } map { "$_/$tool" } split /:/, $ENV{PATH};
        $bail->("$tool is not installed") unless $env{$tool};
    }

    my $tmp = $env{tmp} = tempdir("$o{name}-XXXXXX", DIR => '/tmp', CLEANUP => !$ENV{HELPER_TEST_KEEP});
    Test::More::diag("keeping $tmp") if $ENV{HELPER_TEST_KEEP};
    chmod 0755, $tmp;
    $env{origin} = "$tmp/origin";
    $env{src} = "$tmp/src";
    File::Path::make_path($env{src}, "$env{origin}/hls");

    my ($first, %taken) = ($o{ports});
    $env{pick_port} = sub {
        for (1 .. 200) {
            my $p = $first + int rand 1000;
            next if $taken{$p};
            my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $p,
                                          Proto => 'tcp', Listen => 1, ReuseAddr => 0)
                or next;
            close $s;
            $taken{$p} = 1;
            return $p;
        }
        die "no free port in $first-" . ($first + 999) . "\n";
    };
    $env{redis} = start_redis(port => $env{pick_port}->());
    $env{pg} = start_pg(port => $env{pick_port}->());
    return %env;
}

END {
    if ($$ == $OwnerPid) {
        local $?;
        _kill_server($_) for @Servers;
        $_ && $_->_destroy for @Live;
    }
}


package VodlmsTest::Nginx;

use strict;
use warnings;
use Carp qw(croak);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX qw(WNOHANG);

sub new {
    my ($class, %o) = @_;
    my $module = $ENV{TEST_NGINX_MODULE_PATH}
        or croak 'nginx_child: TEST_NGINX_MODULE_PATH is not set';
    my $nginx = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
    my $name = $o{name} // 'n';
    my $dir = tempdir("vodlms-$name-XXXXXX", TMPDIR => 1, CLEANUP => 1);
    chmod 0755, $dir;
    mkdir "$dir/logs";

    open my $conf, '>', "$dir/nginx.conf" or croak "nginx_child: $dir/nginx.conf: $!";
    print $conf <<"CONF";
load_module $module;
daemon off;
master_process on;
worker_processes $o{workers};
error_log $dir/logs/error.log $o{log_level};
pid $dir/logs/nginx.pid;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
$o{http}
}
CONF
    close $conf;

    my $self = bless { name => $name, dir => $dir, nginx => $nginx, owner => $$ }, $class;

    if ($o{check}) {
        system($nginx, '-p', $dir, '-c', "$dir/nginx.conf", '-e', "$dir/logs/error.log", '-t', '-q') == 0
            or croak "nginx_child $name: nginx -t refused the configuration:\n" . $self->log;
    }

    my $pid = fork // croak "fork: $!";
    if ($pid == 0) {
        exec $nginx, '-p', $dir, '-c', "$dir/nginx.conf", '-e', "$dir/logs/error.log";
        die "exec $nginx: $!";
    }
    $self->{pid} = $pid;

    if ($o{listen}) {
        for (1 .. 500) {
            last if IO::Socket::INET->new(PeerAddr => "127.0.0.1:$o{listen}");
            croak "nginx_child $name exited:\n" . $self->log if waitpid($pid, WNOHANG) == $pid;
            select undef, undef, undef, 0.02;
        }
    }

    return $self;
}

sub log {
    my $self = shift;
    open my $fh, '<', "$self->{dir}/logs/error.log" or return '';
    local $/;
    return <$fh>;
}

# the worker processes of this master
sub workers {
    my $self = shift;
    return grep {
        my $stat = '';
        if (open my $fh, '<', "/proc/$_/stat") { $stat = <$fh> // '' }
        ((split ' ', $stat =~ s/^\d+ \(.*?\) //r)[1] // 0) == $self->{pid};
    } map { m{/proc/(\d+)$} ? $1 : () } glob '/proc/[0-9]*';
}

# signal the master (QUIT by default) and wait for it (15 s at most); 1 if
# it went, 0 if it (or a worker) had to be killed
sub stop {
    my ($self, $sig) = @_;
    return 1 unless $self->{pid};
    kill $sig || 'QUIT', $self->{pid};
    for (1 .. 750) {
        if (waitpid($self->{pid}, WNOHANG) == $self->{pid}) {
            delete $self->{pid};
            return 1;
        }
        select undef, undef, undef, 0.02;
    }
    # it did not go: its workers would be left behind without it
    my @workers = $self->workers;
    kill 'KILL', $self->{pid}, @workers;
    waitpid $self->{pid}, 0;
    delete $self->{pid};
    return 0;
}

sub DESTROY {
    my $self = shift;
    local ($., $@, $!, $^E, $?);
    $self->stop('TERM') if $self->{pid} && $self->{owner} == $$;
}

1;
