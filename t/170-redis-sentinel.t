# Redis Sentinel (issue #21): vodlms_redis sentinel:NAME finds the master
# through the sentinels and follows a failover without a reload.  A master,
# a replica and three sentinels, all Debian's redis-server, on loopback.
# Under a bounded load of gated requests (a session check against Redis,
# one after the other) and of a static location beside them:
#
#   1. SENTINEL FAILOVER: the sentinels promote the replica and turn the
#      old master into a replica;
#   2. the master is killed outright (SIGKILL): the sentinels notice after
#      down-after-milliseconds (1 s here) and promote the other server.
#
# Each time the failed requests and the time until none fail are counted
# (diag), against the engine's own failover: from the command (or the
# kill) until every sentinel names the new master, with no failover in
# progress, and it answers ROLE "master" (for SENTINEL FAILOVER, also until
# the old master is a replica).  What is asserted: no gated request that starts after the engine has
# finished fails, the gated requests succeed again, and every static
# request succeeds throughout (the worker never stalls).
#
# Plain Test::More: nginx runs as a direct child (nginx_child), two workers.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use HTTP::Tiny;
use POSIX qw(SIGKILL);
use Test::More;
use Time::HiRes qw(time sleep);
use VodlmsTest;

$ENV{TEST_NGINX_MODULE_PATH}
    or plan skip_all => 'TEST_NGINX_MODULE_PATH is not set (./build.sh test sets it)';

# poll a condition (up to $secs); its last value, true or not
sub wait_for {
    my ($secs, $cond) = @_;
    my $v;
    my $deadline = time + $secs;
    until ($v = eval { $cond->() }) {
        last if time > $deadline;
        sleep 0.05;
    }
    return $v;
}

sub role { my $r = eval { redis_cmd({ port => $_[0], timeout => 0.5 }, 'ROLE') }; ref $r ? $r->[0] // '' : '' }

my $r1 = start_redis();
my $r2 = start_redis(args => ['--replicaof', '127.0.0.1', $r1->port]);
my %server = ($r1->port => $r1, $r2->port => $r2);

ok(wait_for(20, sub { redis_cmd($r2, 'INFO', 'replication') =~ /master_link_status:up/ }),
   'the replica is in sync with the master');

my @sentinels = map { start_sentinel(master => $r1, down_after => 1000,
                                     failover_timeout => 4000) } 1 .. 3;

# the sentinels must know the replica and each other before a failover
ok(wait_for(30, sub {
    for my $s (@sentinels) {
        return 0 unless @{ $s->cmd('SENTINEL', 'replicas', 'mymaster') } == 1
                     && @{ $s->cmd('SENTINEL', 'sentinels', 'mymaster') } == 2;
    }
    1;
}), 'the three sentinels know the replica and each other');

# Every sentinel names the same master, that is not $old, with no failover
# in progress, and it answers ROLE "master": the engine has switched over
# (each sentinel announces +switch-master as it takes the new address).
sub switched_from {
    my ($old) = @_;
    my $port;
    for my $s (@sentinels) {
        my $m = eval { redis_cmd({ port => $s->port, timeout => 0.5 }, 'SENTINEL', 'master', 'mymaster') };
        return 0 unless ref $m;
        my %f = @$m;
        return 0 if $f{port} == $old || $f{flags} =~ /failover_in_progress/;
        return 0 if defined $port && $port != $f{port};
        $port = $f{port};
    }
    return role($port) eq 'master';
}

# some sentinel already names a new master, and it answers ROLE "master"
sub first_named_away_from {
    my ($old) = @_;
    for my $s (@sentinels) {
        my $r = eval { redis_cmd({ port => $s->port, timeout => 0.5 },
                                 'SENTINEL', 'get-master-addr-by-name', 'mymaster') };
        return 1 if ref $r && $r->[1] != $old && role($r->[1]) eq 'master';
    }
    return 0;
}

sub master_port {
    my $r = eval { redis_cmd({ port => $sentinels[0]->port, timeout => 0.5 },
                             'SENTINEL', 'get-master-addr-by-name', 'mymaster') };
    return ref $r ? $r->[1] : 0;
}

$r1->cmd('SET', 'session:t170-alice', '{"user_id":"170"}', 'EX', 3600);
ok(wait_for(10, sub { defined $r2->cmd('GET', 'session:t170-alice') }),
   'the session is on the replica too');

my $tmp = tempdir(CLEANUP => 1);
chmod 0755, $tmp;    # the workers may run as nobody
{ open my $fh, '>', "$tmp/static.txt" or die $!; print $fh "static\n"; }

my $port = free_port();
my $sentinel_addrs = join ' ', map { '127.0.0.1:' . $_->port } @sentinels;
my $nginx = nginx_child(name => 't170', workers => 2, listen => $port, check => 1,
                        http => <<"HTTP");
    vodlms_redis sentinel:mymaster connect_timeout=500ms timeout=500ms;
    vodlms_redis_sentinel $sentinel_addrs;
    vodlms_cache_zone zone=t170:1m;
    vodlms_session_invalidate on;

    server {
        listen 127.0.0.1:$port;
        location = /play {
            vodlms_auth on;
            proxy_pass http://127.0.0.1:$port/app;
        }
        location = /cached {
            vodlms_auth on;
            vodlms_session_cache t170 valid=10m;
            add_header X-Cache \$vodlms_session_cache always;
            proxy_pass http://127.0.0.1:$port/app;
        }
        location = /app { return 200 "app\\n"; }
        location = /static { alias $tmp/static.txt; }
    }
HTTP

my $http = HTTP::Tiny->new(timeout => 10, keep_alive => 0);

sub play   { $http->get("http://127.0.0.1:$port/play", { headers => { Cookie => 'session=t170-alice' } })->{status} }
sub static { $http->get("http://127.0.0.1:$port/static")->{status} }

is(play(), 200, 'a session check through the master the sentinels name');

# Requests one after the other (a play, then a static file) while $event
# runs once at the start; until $done returns true (the engine has finished
# failing over: its time is noted) and then 3 s more.  $switched: when a
# sentinel names the new master and it answers ROLE master (noted too).
# Returns a summary.
sub under_load {
    my ($event, $old, $done) = @_;
    my (@plays, @statics, $t_done, $t_switch, $t_first);
    my $t0 = time;
    $event->();
    my $next_check = 0;
    while (1) {
        my $now = time;
        last if defined $t_done && $now > $t_done + 3;
        last if $now > $t0 + 60;
        if (!defined $t_done && $now >= $next_check) {
            $t_first //= time if first_named_away_from($old);
            $t_switch //= time if switched_from($old);
            $t_done = time if defined $t_switch && $done->();
            $next_check = $now + 0.05;
        }
        my $s = time;
        push @plays, [$s - $t0, play()];
        my $st = time;
        push @statics, [$st - $t0, static(), time - $st];
        sleep 0.005;
    }
    my @failed = grep { $_->[1] != 200 } @plays;
    my %r = (
        plays     => scalar @plays,
        failed    => scalar @failed,
        last_fail => @failed ? $failed[-1][0] : 0,
        engine    => defined $t_done ? $t_done - $t0 : undef,
        switch    => defined $t_switch ? $t_switch - $t0 : undef,
        first     => defined $t_first ? $t_first - $t0 : undef,
        after_first => scalar(grep { defined $t_first && $_->[0] > $t_first - $t0 } @failed),
        after     => scalar(grep { defined $t_done && $_->[0] > $t_done - $t0 } @failed),
        after_switch => scalar(grep { defined $t_switch && $_->[0] > $t_switch - $t0 } @failed),
        tail_ok   => scalar(grep { $_->[1] == 200 && $_->[0] > ($t_done // 0) - $t0 } @plays),
        statics   => scalar @statics,
        static_failed => scalar(grep { $_->[1] != 200 } @statics),
        static_max => (sort { $b <=> $a } map { $_->[2] } @statics)[0] // 0,
        codes     => join(' ', map { $_->[1] } @failed[0 .. ($#failed < 9 ? $#failed : 9)]),
    );
    return \%r;
}

sub report {
    my ($what, $r) = @_;
    diag sprintf "%s: %d of %d gated requests failed (%s); the last failure "
        . "%.2f s after the start; a sentinel first named the new master after %s s "
        . "(%d failed after that), every sentinel after %s s, "
        . "the engine had finished after %s s; "
        . "%d failed after that; "
        . "%d static requests, %d failed, the slowest %.3f s",
        $what, $r->{failed}, $r->{plays}, $r->{codes} || 'none', $r->{last_fail},
        defined $r->{first} ? sprintf('%.2f', $r->{first}) : 'never', $r->{after_first},
        defined $r->{switch} ? sprintf('%.2f', $r->{switch}) : 'never',
        defined $r->{engine} ? sprintf('%.2f', $r->{engine}) : 'never',
        $r->{after_switch}, $r->{statics}, $r->{static_failed}, $r->{static_max};
}

# ---------------------------------------------------------- 1. SENTINEL FAILOVER

my $old = $r1->port;
my $r = under_load(
    sub { $sentinels[0]->cmd('SENTINEL', 'FAILOVER', 'mymaster') },
    $old,
    # the old master is turned into a replica last (the sentinels see it
    # in its INFO, every 10 s)
    sub { role($old) eq 'slave' },
);
report('SENTINEL FAILOVER', $r);
ok(defined $r->{engine}, 'the sentinels promoted the replica');
is($r->{after}, 0, 'SENTINEL FAILOVER: no gated request failed once the engine had finished');
cmp_ok($r->{tail_ok}, '>', 0, 'SENTINEL FAILOVER: gated requests succeed on the new master');
is($r->{static_failed}, 0, 'SENTINEL FAILOVER: every static request succeeded throughout');
like($nginx->log, qr/vodlms redis: sentinel 127\.0\.0\.1:\d+ announced \+switch-master: "mymaster" moved from 127\.0\.0\.1:$old to 127\.0\.0\.1:\d+/,
     'the log says which way the master moved');
$r->{what} = 'failover';
my @figures = ($r);

# ---------------------------------------------------------- 2. SIGKILL

my $victim = master_port();
my $survivor = $victim == $r1->port ? $r2 : $r1;
ok(wait_for(20, sub { redis_cmd($survivor, 'INFO', 'replication') =~ /master_link_status:up/ }),
   'the old master is a replica in sync with the new one');
# the sentinels must have seen the old master come back as a replica
ok(wait_for(20, sub {
    for my $s (@sentinels) {
        my $reps = $s->cmd('SENTINEL', 'replicas', 'mymaster');
        return 0 unless @$reps == 1 && join(' ', @{ $reps->[0] }) !~ /s_down|disconnected/;
    }
    1;
}), 'the sentinels see the replica up');

$r = under_load(
    sub { kill SIGKILL, $server{$victim}->pid },
    $victim,
    sub { 1 },
);
report('master killed (SIGKILL)', $r);
ok(defined $r->{engine}, 'the sentinels promoted the replica after the kill');
is($r->{after}, 0, 'SIGKILL: no gated request failed once the engine had finished');
cmp_ok($r->{tail_ok}, '>', 0, 'SIGKILL: gated requests succeed on the new master');
is($r->{static_failed}, 0, 'SIGKILL: every static request succeeded throughout');
$r->{what} = 'sigkill';
push @figures, $r;

{
    my $log = $nginx->log;
    my %n = map { my $re = $_->[1]; ($_->[0] => scalar(() = $log =~ /$re/g)) }
        ['+switch-master heard' => qr/announced \+switch-master/],
        ['moves'                => qr/vodlms redis: sentinel:mymaster is now at/],
        ['ROLE from a replica'  => qr/answers ROLE "slave"/],
        ['READONLY'             => qr/answers READONLY/],
        ['sentinel passed over' => qr/asking the next sentinel/],
        ['503 lines'            => qr/answering 503/];
    diag 'the error log (2 workers): ' . join ', ', map { "$_: $n{$_}" } sort keys %n;
}

# ---------------------------------------------------------- 3. revocation

# the invalidation link (worker 0's) followed the master: a logout on the
# new master still evicts a session answer cached for 10 minutes
{
    my $master = $server{master_port()} // die 'no master';
    $master->cmd('SET', 'session:t170-bob', '{"user_id":"171"}', 'EX', 3600);
    my $cached = sub {
        my $r = $http->get("http://127.0.0.1:$port/cached", { headers => { Cookie => 'session=t170-bob' } });
        return [$r->{status}, $r->{headers}{'x-cache'} // ''];
    };
    # both workers: a few requests each way until two answers in a row are hits
    my $hits = 0;
    my $until = time + 10;
    while (time < $until && $hits < 4) {
        my $r = $cached->();
        $hits = ($r->[0] == 200 && $r->[1] eq 'HIT') ? $hits + 1 : 0;
    }
    cmp_ok($hits, '>=', 4, 'after the failovers, bob\'s session answer is cached (valid=10m)');
    my $t0 = time;
    $master->cmd('DEL', 'session:t170-bob');
    my $refused = wait_for(5, sub { my $r = $cached->(); $r->[0] == 401 && $cached->()->[0] == 401 });
    diag sprintf 'revocation on the new master: refused %.3f s after the DEL', time - $t0;
    ok($refused, 'a logout on the new master is refused at once on both workers: the invalidation link moved with it');
    like($nginx->log, qr/session invalidation (?:follows it|from redis sentinel:mymaster .* is back)/,
         'the log says the invalidation link moved (or came back) with the master');
}

unlike($nginx->log, qr/\[(alert|crit|emerg)\]/, 'no alert in the error log');

ok($nginx->stop, 'a graceful stop (QUIT) ends nginx and its workers');
done_testing();
