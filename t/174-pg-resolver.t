# PostgreSQL host names resolved at run time (issue #21): with "resolve" and
# a "resolver" at the http level, the host names of vodlms_pg are asked through nginx's
# non-blocking resolver when a connection is opened and the last answer's
# TTL has run out, and given to libpq as hostaddr.  A name that moves, as an
# RDS Multi-AZ instance endpoint does on a failover, is followed without a
# reload.
#
# A small DNS responder (t/lib/VodlmsDNS.pm, TTL 1 s) answers pg.test; a
# primary A on 127.0.0.1 and its streaming replica B on 127.0.0.2 share one
# port.  Under a bounded load of playback checks (the enrollment query),
# progress beacons (flushed to the primary) and a static file, A stops, B
# is promoted and pg.test moves to 127.0.0.2, RDS's order.  The failed
# requests and the seconds until none fail are printed (diag) and written
# up in docs/operations.md; what is asserted is functional: the requests
# succeed again with no reload, the flushes land on B, the static file is
# served throughout, and nginx asked the name again (but not per request).
# Then: without a resolver, names are resolved when the configuration is
# read (the responder is never asked); a name that does not resolve at run
# time gives 503 and a log line naming it; in a multi-host conninfo it is
# left out and the other host answers; as the replica's name, the checks
# read from the primary.  A name with two addresses, the first dead, is
# served by the second.  Last, with the DNS server gone and the answer
# expired, every connect goes at once to the last known address while the
# lookup runs (none waits for it).  Every node stops with QUIT, and its
# workers exit by themselves.
#
# Plain Test::More: nginx runs as a direct child (nginx_child), the load as
# forked clients writing one line per request (as t/173 does).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(time sleep);
use VodlmsDNS;
use VodlmsLoad;
use VodlmsTest;

$ENV{TEST_NGINX_MODULE_PATH}
    or plan skip_all => 'TEST_NGINX_MODULE_PATH is not set (./build.sh test sets it)';
my $redis_port = $ENV{TEST_NGINX_REDIS_PORT} || 6379;

# alice (1001) is enrolled in course-intro, whose intro-ready is ready
redis_cmd($redis_port, 'SET', 'session:t174-alice', '{"user_id":"1001"}', 'EX', 3600);

my $dns = VodlmsDNS->start(ttl => 1);
my $dns_port = $dns->port;

my $pgport = free_port();
my $pa = start_pg(port => $pgport);
my $pb = start_pg_replica($pa, port => $pgport, listen => '127.0.0.2');
is($pb->psql('SELECT pg_is_in_recovery()'), 't', 'B (127.0.0.2) is a streaming replica of A (127.0.0.1), on the same port');

# localhost is in the records only to show that nobody asks for it
$dns->set('pg.test' => '127.0.0.1', 'localhost' => '127.0.0.9');

my $root = tempdir('vodlms-t174-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $root;
mkdir "$root/static";
{
    open my $fh, '>', "$root/static/hello.txt" or die $!;
    print $fh "hello\n";
    close $fh;
}
chmod 0644, "$root/static/hello.txt";

my $WORKERS = 2;

sub node {
    my ($name, $lines, $workers) = @_;
    my $port = free_port();
    my $node = nginx_child(name => "t174-$name", listen => $port, workers => $workers || $WORKERS,
                           http => <<"HTTP");
    vodlms_redis 127.0.0.1:$redis_port;
$lines
    vodlms_progress_zone zone=progress:1m flush=300ms;

    server {
        listen 127.0.0.1:$port;
        root $root;

        location ~ ^/videos/(?<vid>[^/]+)/meta\$ {
            vodlms_auth on;
            vodlms_enrollment_check on;
            vodlms_video_id \$vid;
            try_files /static/hello.txt =404;
        }

        location ~ ^/api/videos/(?<vid>[^/]+)/progress\$ {
            vodlms_auth on;
            vodlms_enrollment_check on;
            vodlms_video_id \$vid;
            vodlms_progress on;
            vodlms_progress_rate off;
        }

        location /static/ { }
    }
HTTP
    $node->{port} = $port;
    return $node;
}

my $http = HTTP::Tiny->new(timeout => 10, keep_alive => 0);

sub play {
    my ($node) = @_;
    return $http->get("http://127.0.0.1:$node->{port}/videos/intro-ready/meta",
                      { headers => { Cookie => 'session=t174-alice' } });
}

#---------------------------------------------------------------------------
# The load: t/lib/VodlmsLoad.pm (beacons from position 10)
#---------------------------------------------------------------------------

$VodlmsLoad::Session = 't174-alice';
$VodlmsLoad::Beacon = 10;

sub max_position {
    my ($pg) = @_;
    return $pg->psql("SELECT max_position_seconds FROM vodlms.watch_progress"
                   . " WHERE user_id = '1001' AND video_id = 'intro-ready'");
}

sub wait_for {
    my ($secs, $cond) = @_;
    my $v;
    for (1 .. $secs * 50) {
        last if $v = $cond->();
        sleep 0.02;
    }
    return $v;
}

#---------------------------------------------------------------------------
# No resolver: the name is resolved when the configuration is read
#---------------------------------------------------------------------------

{
    my $n = node('static-dns', "    vodlms_pg \"host=localhost port=$pgport user=postgres dbname=vodlms\";");
    is(play($n)->{status}, 200, 'no resolver: a host name is resolved when nginx reads the configuration');
    is($dns->queries('localhost'), 0, 'no resolver: the DNS server is never asked at run time');
    ok($n->stop('QUIT'), 'graceful stop: the workers exit');

    # a resolver kept for something else (proxy_pass with variables): the
    # names of a vodlms_pg without "resolve" are still nginx -t's (nginx's
    # resolver reads no /etc/hosts: "localhost" would not resolve)
    $n = node('resolver-no-resolve', "    resolver 127.0.0.1:$dns_port ipv6=off;\n"
        . "    vodlms_pg \"host=localhost port=$pgport user=postgres dbname=vodlms\";");
    is(play($n)->{status}, 200, 'a resolver but no "resolve": "localhost" is resolved when nginx reads the configuration');
    is($dns->queries('localhost'), 0, '... and the resolver is never asked for it');
    ok($n->stop('QUIT'), 'graceful stop: the workers exit');
}

#---------------------------------------------------------------------------
# The name moves: A stops, B is promoted, pg.test moves to B
#---------------------------------------------------------------------------

my $resolver = "    resolver 127.0.0.1:$dns_port ipv6=off;\n    resolver_timeout 2s;\n";

{
    my $n = node('moves', $resolver
        . "    vodlms_pg \"host=pg.test port=$pgport user=postgres dbname=vodlms\" connect_timeout=500ms resolve;");

    is(play($n)->{status}, 200, 'a host name only the resolver knows: nginx -t passed, the check is answered');
    cmp_ok($dns->queries('pg.test'), '>=', 1, 'the name was asked at run time');

    my $stop = load($n, 'moves', qw(play play beacon static));
    sleep 1.5;
    ok(wait_for(10, sub { (max_position($pa) || 0) >= 10 }), 'before: the flushes land on A');
    my $asked = $dns->queries('pg.test');

    my $t_down = time;
    $pa->stop;
    my $t_promote = time;
    $pb->promote;
    my $t_move = time;
    $dns->set('pg.test' => '127.0.0.2', 'localhost' => '127.0.0.9');
    my $t_moved = time;
    sleep 6;
    my $reqs = $stop->();

    is($pb->psql('SELECT pg_is_in_recovery()'), 'f', 'B is the primary now');

    diag(sprintf 'the engine: A stopped in %.2f s, B promoted in %.2f s, the name moved %.2f s after A\'s stop',
         $t_promote - $t_down, $t_move - $t_promote, $t_moved - $t_down);
    for my $kind (qw(play beacon)) {
        my $all = outcome($reqs, $kind, $t_down);
        my $after = outcome($reqs, $kind, $t_moved);
        report("$kind, from A's stop", $all);
        report("$kind, from the name's move", $after);
        ok(defined $after->{recovered}, "$kind: recovers after the name moved, with no reload");
        my $late = outcome($reqs, $kind, $t_moved + 3);
        ok($late->{n} > 0 && $late->{failed} == 0, "$kind: none fails from 3 s after the move on");
    }
    my $static = outcome($reqs, 'static', 0);
    report('the static file throughout', $static);
    is($static->{failed}, 0, 'the static file was served throughout');

    my @acked = sort { $a->[0] <=> $b->[0] } grep { $_->[2] eq 'beacon' && $_->[4] } @$reqs;
    my $acked = @acked ? $acked[-1][5] : 0;
    ok(wait_for(10, sub { my $m = max_position($pb); $m ne '' && $m >= $acked }),
       "the flushes land on B at its new address: its row is at $acked s")
        or diag 'B has ' . max_position($pb);

    my $plays = grep { $_->[2] ne 'static' } @$reqs;
    my $more = $dns->queries('pg.test') - $asked;
    diag("$more A queries for pg.test during $plays gated requests");
    cmp_ok($more, '>', 0, 'nginx asked the name again');
    cmp_ok($more, '<', $plays / 10, 'but not for every request: answers are kept for their TTL');

    like($n->log, qr/\[notice\] .*vodlms: postgres pg\.test:$pgport\/vodlms: host "pg\.test" moved from 127\.0\.0\.1 to 127\.0\.0\.2/,
         'the log says where the name moved');
    unlike($n->log, qr/\[(crit|alert|emerg)\]/, 'nothing worse than an error in the log');
    diag $n->log if $ENV{T174_DEBUG};
    ok($n->stop('QUIT'), 'graceful stop: the workers exit');
}

#---------------------------------------------------------------------------
# A name that does not resolve at run time
#---------------------------------------------------------------------------

{
    my $n = node('nx', $resolver
        . "    vodlms_pg \"host=nowhere.test port=$pgport user=postgres dbname=vodlms\" resolve;");
    my $res = play($n);
    is($res->{status}, 503, 'a name that does not resolve: 503');
    ok($res->{headers}{'retry-after'}, 'with Retry-After');
    like($res->{content}, qr/"error"/, 'and a JSON reason');
    like($n->log, qr/\[error\] .*vodlms: postgres nowhere\.test:$pgport\/vodlms: host "nowhere\.test" could not be resolved \(3: Host not found\)/,
         'the log names the host and the resolver\'s answer');

    # a multi-host conninfo: the other host answers
    my $m = node('nx-multi', $resolver
        . "    vodlms_pg \"host=nowhere.test,pg.test port=$pgport user=postgres dbname=vodlms target_session_attrs=read-write\" resolve;");
    is(play($m)->{status}, 200, 'a multi-host conninfo: the host that does not resolve is left out, the other answers');

    # a replica whose name does not resolve: the checks read from the primary
    my $r = node('nx-replica', $resolver
        . "    vodlms_pg \"host=pg.test port=$pgport user=postgres dbname=vodlms\" resolve;\n"
        . "    vodlms_pg_replica \"host=nowhere-replica.test port=$pgport user=postgres dbname=vodlms\" resolve;");
    is(play($r)->{status}, 200, 'a replica whose name does not resolve: the check is answered by the primary');
    like($r->log, qr/\[warn\] .*postgres replica nowhere-replica\.test:$pgport\/vodlms is unavailable, reading from pg\.test:$pgport\/vodlms until it answers again: postgres nowhere-replica\.test:$pgport\/vodlms: host "nowhere-replica\.test" could not be resolved/,
         'the fall-back is logged with the reason');

    unlike($n->log . $m->log . $r->log, qr/\[(crit|alert|emerg)\]/, 'no alert in the logs');
    ok($n->stop('QUIT'), 'graceful stop: the workers exit');
    ok($m->stop('QUIT'), 'graceful stop: the workers exit');
    ok($r->stop('QUIT'), 'graceful stop: the workers exit');
}

#---------------------------------------------------------------------------
# A name with two addresses, the first dead: libpq gets both and tries them
# in turn, as it does with the hosts resolved at nginx -t
#---------------------------------------------------------------------------

{
    # nothing listens on 127.0.0.3: a refused connect
    $dns->set('pg.test' => '127.0.0.2', 'pg-multi.test' => '127.0.0.3,127.0.0.2');
    my $n = node('multi', $resolver
        . "    vodlms_pg \"host=pg-multi.test port=$pgport user=postgres dbname=vodlms\" resolve;");
    my %status;
    for (1 .. 20) {
        $status{play($n)->{status}}++;
        sleep 0.1;
    }
    diag('a name with a dead first address: ' . join ', ', map { "$status{$_} x $_" } sort keys %status);
    is($status{200} || 0, 20, 'a name whose first address is dead: every check is answered by the second');
    cmp_ok($dns->queries('pg-multi.test'), '>=', 1, 'the name was asked at run time');
    unlike($n->log, qr/host "pg-multi\.test" moved/, 'the same addresses again are not a move');
    unlike($n->log, qr/\[(crit|alert|emerg)\]/, 'no alert in the log');
    ok($n->stop('QUIT'), 'graceful stop: the workers exit');
}

#---------------------------------------------------------------------------
# The DNS server goes away: the last known address is kept
#---------------------------------------------------------------------------

{
    # one worker, which has resolved the name: a worker that never did
    # has no address to fall back on, and waits for the lookup
    my $n = node('dns-down', $resolver
        . "    vodlms_pg \"host=pg.test port=$pgport user=postgres dbname=vodlms\" resolve;", 1);
    is(play($n)->{status}, 200, 'pg.test answered (127.0.0.2)');

    # the answer expires, the server restarts: the next connect must ask
    $dns->stop;
    sleep 2.2;
    $pb->stop;
    $pb->start;

    # the expired answer is served while the lookup runs (stale while
    # refreshing): no request waits for the dead DNS server
    my ($t0, %status) = (time);
    for (1 .. 10) {
        $status{play($n)->{status}}++;
        sleep 0.1;
    }
    diag(sprintf 'the DNS server gone, the server restarted: %s in %.2f s (resolver_timeout 2s)',
         join(', ', map { "$status{$_} x $_" } sort keys %status), time - $t0);
    is($status{200} || 0, 10, 'with the DNS server gone, every connect goes to the last known address at once')
        or diag(join "\n", grep { /vodlms/ } split /\n/, $n->log);
    ok(wait_for(10, sub { $n->log =~ /\[warn\] .*postgres pg\.test:$pgport\/vodlms: host "pg\.test" could not be resolved \(110: Operation timed out\), connecting to the last known address 127\.0\.0\.2/ }),
       'the log says the lookup failed and which address is used');
    unlike($n->log, qr/\[(crit|alert|emerg)\]/, 'no alert in the log');
    ok($n->stop('QUIT'), 'graceful stop: the workers exit');
}

#---------------------------------------------------------------------------
# A fast stop (nginx -s stop) of a worker that never connected to a name:
# its exit flush must not hand libpq the bare name (a blocking lookup)
#---------------------------------------------------------------------------

{
    # a DNS server that never answers: pg-exit.test never resolves, and
    # nginx -t could not resolve it either
    my $silent = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'udp')
        or die "udp: $!";
    my $sp = $silent->sockport;
    # the checks read from B (an address); the flushes wait for the name
    my $n = node('exit', "    resolver 127.0.0.1:$sp ipv6=off;\n    resolver_timeout 30s;\n"
        . "    vodlms_pg \"host=pg-exit.test port=$pgport user=postgres dbname=vodlms\" resolve;\n"
        . "    vodlms_pg_replica \"host=127.0.0.2 port=$pgport user=postgres dbname=vodlms\";", 1);
    my $res = $http->post("http://127.0.0.1:$n->{port}/api/videos/intro-ready/progress", {
        headers => { Cookie => 'session=t174-alice', 'Content-Type' => 'text/plain' },
        content => '{"videoId":"intro-ready","currentTime":500.0,"duration":634.5}',
    });
    is($res->{status}, 204, 'a beacon is acknowledged (the check read from the replica)');
    sleep 0.5;    # a flush is under way, waiting for the name
    $n->stop('TERM');
    like($n->log, qr/no address known: this worker never connected, and postgres host "pg-exit\.test" could not be resolved/,
         'the exit flush of a worker that never connected skips the name nginx -t could not resolve');
    unlike($n->log, qr/could not translate host name/, 'libpq was not given the name to look up (a blocking call)');
    like($n->log, qr/\[alert\] .*fast shutdown with 1 acknowledged entries not confirmed written/,
         'and says what it did not write');
}

#---------------------------------------------------------------------------
# A graceful stop while a lookup is under way: nginx's worker waits for its
# timers, and a lookup's must not hold it for resolver_timeout
#---------------------------------------------------------------------------

{
    my $silent = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'udp')
        or die "udp: $!";
    my $sp = $silent->sockport;
    my $n = node('quit-lookup', "    resolver 127.0.0.1:$sp ipv6=off;\n    resolver_timeout 60s;\n"
        . "    vodlms_pg \"host=pg-quit.test port=$pgport user=postgres dbname=vodlms\" timeout=500ms resolve;");
    is(play($n)->{status}, 503, 'a name the silent DNS server never answers: 503 after the query\'s timeout=');
    my $t0 = time;
    ok($n->stop('QUIT'), 'graceful stop with the lookup still under way (resolver_timeout 60s): the workers exit');
    diag(sprintf 'graceful stop with a lookup under way: %.2f s', time - $t0);
}

done_testing();
