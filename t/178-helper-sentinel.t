#!/usr/bin/perl

# vodlms-helper follows a Redis failover itself (issue #21), with the real
# engines: Debian's redis-server as master, replica and three sentinels on
# loopback, PostgreSQL and ffmpeg.
#
#   1. the configuration: redis_sentinels + redis_master_name instead of
#      redis_host, each mistake refused by name at start (--check-config);
#   2. a job queued on the master (XADD, as nginx's upload intake does) is
#      transcoded; the first sentinel listed is down and is passed over;
#   3. SENTINEL FAILOVER: a job queued on the new master is transcoded by the
#      same helper process, and its log says the master moved;
#   4. the master killed outright (SIGKILL): the same, once the sentinels
#      have promoted the replica;
#   5. SIGTERM still stops it;
#   6. sentinels with their own password (redis_sentinel_password);
#   7. redis_host given as a name: the name is resolved again on every
#      reconnect, so a name that moves to another server is followed (the
#      helper runs with a private /etc/hosts: unshare -rm + a bind mount);
#   8. PostgreSQL: pg_conninfo goes to libpq unchanged (multi-host,
#      target_session_attrs=read-write); a primary fenced read-only
#      (SQLSTATE 25006) is left for the host that takes writes.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use POSIX qw(:sys_wait_h SIGKILL);
use Test::More;
use Time::HiRes qw(sleep time);

use VodlmsTest;
use VodlmsHelperTest qw(sq make_clip insert_video xadd_job spawn wait_exit);

my %env = helper_env(name => 'hsent', ports => 24000, tools => [qw(ffmpeg ffprobe)]);
my ($bin, $tmp, $src, $origin, $r1, $pg) = @env{qw(bin tmp src origin redis pg)};
my $pick = $env{pick_port};

my $STREAM = 'vodlms:transcode';

# a missing file reads as ''
sub slurp { VodlmsHelperTest::slurp($_[0]) // '' }

# poll a condition (up to $secs); its last value, true or not
sub wait_for {
    my ($secs, $cond) = @_;
    my $v;
    my $deadline = time + $secs;
    until ($v = eval { $cond->() }) {
        last if time > $deadline;
        sleep 0.1;
    }
    return $v;
}

sub role { my $r = eval { redis_cmd({ port => $_[0], timeout => 0.5 }, 'ROLE') }; ref $r ? $r->[0] // '' : '' }

# a 1 s clip
sub make_source {
    my ($name) = @_;
    return make_clip("$src/$name", size => '320x180', duration => 1);
}

# what the module's upload intake does: the row, then XADD ($redis: a start_redis object)
sub upload {
    my ($redis, $id, @pgs) = @_;
    my $source = make_source("$id.mp4");
    insert_video($_, $id, source => $source) for @pgs ? @pgs : ($pg);
    xadd_job($redis, $id, $source, owner => 'teacher');
}

sub status { ($_[1] // $pg)->psql("SELECT status FROM vodlms.videos WHERE id = " . sq($_[0])) }

sub start_helper {
    my ($log, @cmd) = @_;
    return spawn(log => $log, cmd => \@cmd);
}

sub check_config {
    my @args = @_;
    my $out = `'$bin' @args --check-config 2>&1`;
    return ($? >> 8, $out);
}

#---------------------------------------------------------------------------
# the engines: master, replica, three sentinels (and one listed that is down)
#---------------------------------------------------------------------------

my $r2 = start_redis(port => $pick->(), args => ['--replicaof', '127.0.0.1', $r1->port]);
my %server = ($r1->port => $r1, $r2->port => $r2);
ok(wait_for(20, sub { redis_cmd($r2, 'INFO', 'replication') =~ /master_link_status:up/ }),
   'the replica is in sync with the master');

my @sentinels = map { start_sentinel(master => $r1, port => $pick->(), down_after => 1000,
                                     failover_timeout => 4000) } 1 .. 3;
ok(wait_for(30, sub {
    for my $s (@sentinels) {
        return 0 unless @{ $s->cmd('SENTINEL', 'replicas', 'mymaster') } == 1
                     && @{ $s->cmd('SENTINEL', 'sentinels', 'mymaster') } == 2;
    }
    1;
}), 'the three sentinels know the replica and each other');

# every sentinel names $port, with no failover in progress, and it is the master
sub switched_to {
    my ($port) = @_;
    for my $s (@sentinels) {
        my $m = eval { redis_cmd({ port => $s->port, timeout => 0.5 }, 'SENTINEL', 'master', 'mymaster') };
        return 0 unless ref $m;
        my %f = @$m;
        return 0 if $f{port} != $port || $f{flags} =~ /failover_in_progress/;
    }
    return role($port) eq 'master';
}

my $dead = $pick->();        # a sentinel listed first that nobody runs
my $sentinel_list = join ' ', "127.0.0.1:$dead", map { '127.0.0.1:' . $_->port } @sentinels;

open my $cf, '>', "$tmp/helper.conf" or die $!;
print $cf <<"CONF";
redis_sentinels = $sentinel_list
redis_master_name = mymaster
redis_timeout = 1
pg_conninfo = "${\ $pg->conninfo}"
origin_dir = $origin
segment_duration = 2
preset = ultrafast
threads = 2
ladder = 180p:200k
audio_bitrate = 64k
block_ms = 200
claim_idle = 120
max_attempts = 3
retry_backoff = 1
log_level = debug
consumer = t178
CONF
close $cf;

#---------------------------------------------------------------------------
# 1. the configuration
#---------------------------------------------------------------------------

{
    my ($rc, $out) = check_config('--config', "$tmp/helper.conf");
    is($rc, 0, '--check-config accepts redis_sentinels + redis_master_name') or diag $out;
    like($out, qr/^redis = sentinel:mymaster via 127\.0\.0\.1:$dead 127\.0\.0\.1:\d+ 127\.0\.0\.1:\d+ 127\.0\.0\.1:\d+$/m,
         'it prints the master name and the sentinels in order');

    ($rc, $out) = check_config('--redis-sentinels', "'sentinel-a, [::1]:26380 10.0.0.3:26381'",
                               '--redis-master-name', 'jobs');
    is($rc, 0, 'sentinels by name, IPv6 and with ports');
    like($out, qr/^redis = sentinel:jobs via sentinel-a:26379 \[::1\]:26380 10\.0\.0\.3:26381$/m,
         'a sentinel without a port is on 26379');

    for my $case (['--redis-host', 'redis.example'], ['--redis-port', '6380']) {
        ($rc, $out) = check_config('--config', "$tmp/helper.conf", @$case);
        is($rc, 2, "redis_sentinels with $case->[0] is refused");
        like($out, qr/"redis_sentinels" and "redis_host"\/"redis_port" exclude each other/,
             "... the error says that $case->[0] and redis_sentinels exclude each other");
    }

    ($rc, $out) = check_config('--config', "$tmp/helper.conf", '--redis-master-name', "''");
    is($rc, 2, 'redis_sentinels without redis_master_name is refused');
    like($out, qr/"redis_sentinels" needs "redis_master_name"/, '... named');

    ($rc, $out) = check_config('--redis-master-name', 'mymaster');
    is($rc, 2, 'redis_master_name without redis_sentinels is refused');
    like($out, qr/need "redis_sentinels"/, '... named');

    ($rc, $out) = check_config('--redis-sentinel-password', 's3cret');
    is($rc, 2, 'a sentinel password without redis_sentinels is refused');

    for my $bad ('127.0.0.1:0', '127.0.0.1:x', ':26379', '[::1') {
        ($rc, $out) = check_config('--redis-sentinels', "'$bad'", '--redis-master-name', 'm');
        is($rc, 2, "sentinel address \"$bad\" is refused");
        like($out, qr/"redis_sentinels": "\Q$bad\E" is not host\[:port\]/, '... and named');
    }

    ($rc, $out) = check_config('--redis-sentinels', '127.0.0.1', '--redis-master-name', "'two words'");
    is($rc, 2, 'a master name with a space is refused');

    ($rc, $out) = check_config('--redis-sentinels', '127.0.0.1', '--redis-master-name', 'm',
                               '--redis-sentinel-username', 'helper');
    is($rc, 2, 'a sentinel user without a password is refused');
    like($out, qr/"redis_sentinel_username" needs "redis_sentinel_password"/, '... named');
}

#---------------------------------------------------------------------------
# 2. a job through the master the sentinels name
#---------------------------------------------------------------------------

my $log = "$tmp/helper.log";
my $helper = start_helper($log, $bin, '--config', "$tmp/helper.conf");

upload($r1, 'hs-1');
ok(wait_for(90, sub { status('hs-1') eq 'ready' }), 'a job queued on the master is transcoded')
    or diag slurp($log);
like(slurp($log), qr/redis sentinel 127\.0\.0\.1:$dead connect failed: .*, asking the next sentinel/,
     'the sentinel that is down is passed over');
like(slurp($log), qr/connected to redis master "mymaster" at 127\.0\.0\.1:${\ $r1->port} \(named by sentinel 127\.0\.0\.1:${\ $sentinels[0]->port}\)/,
     'the helper connected to the master the first live sentinel named');

#---------------------------------------------------------------------------
# 3. SENTINEL FAILOVER
#---------------------------------------------------------------------------

$sentinels[1]->cmd('SENTINEL', 'FAILOVER', 'mymaster');
ok(wait_for(30, sub { switched_to($r2->port) }), 'SENTINEL FAILOVER: the sentinels promoted the replica');

upload($r2, 'hs-2');
ok(wait_for(90, sub { status('hs-2') eq 'ready' }),
   'a job queued on the new master is transcoded, without a restart') or diag slurp($log);
ok(kill(0, $helper) && waitpid($helper, WNOHANG) == 0, 'by the same helper process');
like(slurp($log), qr/redis master "mymaster" moved: now at 127\.0\.0\.1:${\ $r2->port} \(was 127\.0\.0\.1:${\ $r1->port}\)/,
     'the log says the master moved');
is($r2->cmd('XPENDING', $STREAM, 'vodlms-helpers')->[0], 0,
   'both jobs are acknowledged on the new master (the group carried over)');

#---------------------------------------------------------------------------
# 4. the master killed outright
#---------------------------------------------------------------------------

ok(wait_for(30, sub { role($r1->port) eq 'slave'
                      && redis_cmd($r1, 'INFO', 'replication') =~ /master_link_status:up/ }),
   'the old master is a replica in sync with the new one');
ok(wait_for(30, sub {
    for my $s (@sentinels) {
        my $reps = $s->cmd('SENTINEL', 'replicas', 'mymaster');
        return 0 unless @$reps == 1 && join(' ', @{ $reps->[0] }) !~ /s_down|disconnected/;
    }
    1;
}), 'the sentinels see the replica up');

kill SIGKILL, $r2->pid;
ok(wait_for(30, sub { switched_to($r1->port) }), 'SIGKILL: the sentinels promoted the replica');
upload($r1, 'hs-3');
ok(wait_for(90, sub { status('hs-3') eq 'ready' }),
   'after the kill, a job queued on the new master is transcoded') or diag slurp($log);
like(slurp($log), qr/redis master "mymaster" moved: now at 127\.0\.0\.1:${\ $r1->port} \(was 127\.0\.0\.1:${\ $r2->port}\)/,
     'the log says the master moved back');

#---------------------------------------------------------------------------
# 5. SIGTERM
#---------------------------------------------------------------------------

kill 'TERM', $helper;
is(wait_exit($helper, 30), 0, 'SIGTERM stops the helper, exit 0');
like(slurp($log), qr/stopping after 3 job\(s\)/, 'after its three jobs');
unlike(slurp($log), qr/\[(?:alert|crit)\]/, 'no alert in its log');

#---------------------------------------------------------------------------
# 6. sentinels with a password of their own (redis_sentinel_password)
#---------------------------------------------------------------------------

{
    my $locked = start_sentinel(master => $r1, port => $pick->(), requirepass => 'sentinel-secret');
    my @args = ('--config', "$tmp/helper.conf", '--redis-sentinels', '127.0.0.1:' . $locked->port,
                '--consumer', 't178-auth', '--exit-when-idle');

    my $log7 = "$tmp/helper-wrongpass.log";
    my $pid = start_helper($log7, $bin, @args, '--redis-sentinel-password', 'wrong');
    ok(wait_for(20, sub { slurp($log7) =~ /no sentinel named it/ }),
       'a wrong redis_sentinel_password: no sentinel names the master');
    like(slurp($log7), qr/redis sentinel 127\.0\.0\.1:${\ $locked->port} rejected AUTH \(redis_sentinel_password\): WRONGPASS/,
         '... and the log says the sentinel rejected AUTH');
    unlike(slurp($log7), qr/sentinel-secret|\bwrong\b/, 'no password in the log');
    kill 'TERM', $pid;
    is(wait_exit($pid, 30), 0, 'SIGTERM stops it while it keeps asking');

    my $log8 = "$tmp/helper-pass.log";
    is(wait_exit(start_helper($log8, $bin, @args, '--redis-sentinel-password', 'sentinel-secret'), 60), 0,
       'the right redis_sentinel_password: the helper runs (until idle)');
    like(slurp($log8), qr/connected to redis master "mymaster" at 127\.0\.0\.1:${\ $r1->port}/,
         '... connected to the master that sentinel named');
}

#---------------------------------------------------------------------------
# 7. redis_host: a name that moves
#---------------------------------------------------------------------------

SKIP: {
    system('unshare -rm true 2>/dev/null') == 0
        or skip 'unshare -rm (a private mount namespace) is not allowed here', 6;

    # two servers on one port, on two loopback addresses
    my $port = $pick->();
    my $old = start_redis(port => $port);
    my $new = start_redis(port => $port, bind => '127.0.0.2');
    my $hosts = "$tmp/hosts";
    my $point = sub {
        open my $h, '>', $hosts or die $!;      # in place: the bind mount keeps the file
        print $h "$_[0] redis-primary.test\n";
        close $h;
    };
    $point->('127.0.0.1');

    my $log6 = "$tmp/helper-dns.log";
    my $pid = start_helper($log6, 'unshare', '-rm', 'sh', '-c',
        'mount --bind "$0" /etc/hosts && exec "$@"', $hosts,
        $bin, '--config', "$tmp/helper.conf", '--redis-sentinels', '', '--redis-master-name', '',
        '--redis-host', 'redis-primary.test', '--redis-port', $port, '--consumer', 't178-dns');

    upload($old, 'hs-4');
    ok(wait_for(90, sub { status('hs-4') eq 'ready' }), 'redis_host by name: a job is transcoded')
        or diag slurp($log6);
    like(slurp($log6), qr/connected to redis redis-primary\.test:$port \(address 127\.0\.0\.1\)/,
         'the log says where the name pointed');

    # the name moves to the other server, the old one goes away
    $point->('127.0.0.2');
    $old->stop;
    upload($new, 'hs-5');
    ok(wait_for(90, sub { status('hs-5') eq 'ready' }),
       'the name moved: the helper reconnects to its new address and transcodes the job there')
        or diag slurp($log6);
    like(slurp($log6), qr/connected to redis redis-primary\.test:$port \(address 127\.0\.0\.2\)/,
         'it connected by the name again, to its new address');
    is(scalar(() = slurp($log6) =~ /created consumer group "vodlms-helpers"/g), 2,
       'and created the consumer group there (one per server)');
    kill 'TERM', $pid;
    is(wait_exit($pid, 30), 0, 'SIGTERM stops it');
}

#---------------------------------------------------------------------------
# 8. PostgreSQL: a multi-host conninfo, the first host fenced read-only
#---------------------------------------------------------------------------

{
    my $pg2 = start_pg(port => $pick->());
    my $multi = 'host=127.0.0.1,127.0.0.1 port=' . $pg->port . ',' . $pg2->port
              . ' user=postgres dbname=vodlms target_session_attrs=read-write connect_timeout=5';
    my $log9 = "$tmp/helper-pg.log";
    my $pid = start_helper($log9, $bin, '--config', "$tmp/helper.conf", '--pg-conninfo', $multi,
                           '--consumer', 't178-pg');

    upload($r1, 'hs-6', $pg, $pg2);
    ok(wait_for(90, sub { status('hs-6', $pg) eq 'ready' }),
       'multi-host pg_conninfo: the row is updated on the first host, which takes writes')
        or diag slurp($log9);
    is(status('hs-6', $pg2), 'queued', '... and only there');

    # a switchover fences the old primary read-only; the other host takes writes
    $pg->psql('ALTER SYSTEM SET default_transaction_read_only = on');
    $pg->psql('SELECT pg_reload_conf()');
    ok(wait_for(10, sub { $pg->psql('SHOW default_transaction_read_only') eq 'on' }),
       'the first host is fenced read-only');

    upload($r1, 'hs-7', $pg2);
    ok(wait_for(90, sub { status('hs-7', $pg2) eq 'ready' }),
       'the next job\'s row is written on the host that takes writes, without a restart')
        or diag slurp($log9);
    like(slurp($log9), qr/postgres 127\.0\.0\.1:${\ $pg->port} takes no writes \(SQLSTATE 25006\): connecting again to find the primary/,
         'the log says why it left the first host');
    kill 'TERM', $pid;
    is(wait_exit($pid, 30), 0, 'SIGTERM stops it');
}

done_testing();
