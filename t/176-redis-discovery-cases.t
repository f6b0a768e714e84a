# Finding Redis at run time, the cases a review found (issue #21), each with
# real engines and nginx as a direct child (master_process on, so that the
# workers' own exit is what is checked):
#
#   - a worker with an unreachable sentinel still exits on a graceful stop;
#   - a "resolver" set for something else leaves "vodlms_redis localhost"
#     alone: only "resolve" asks nginx's resolver (which reads no
#     /etc/hosts) at run time;
#   - a server a stale sentinel still names, demoted and cut off with a
#     session the master no longer has, is never asked (its ROLE comes
#     first, and nothing is sent behind it);
#   - a stale sentinel does not cost every request a new connection and a
#     sentinel round: a ROLE refusal counts in the back-off;
#   - "resolve": a name's answer is asked again when its TTL runs out even
#     while an idle connection is kept (steady low load), and the pool
#     moves if the name did;
#   - "resolve": a name with several addresses keeps the one in use while
#     the answer has it (nginx's resolver rotates cached answers), and
#     takes the next one when that one refuses;
#   - a sentinel known by a name with several addresses: one that refuses
#     is passed over for the next;
#   - a DNS server that never answers ends a lookup after the pool's own
#     connect_timeout + timeout, not after resolver_timeout (30 s here).
#
# Plain Test::More: nginx runs as a direct child (nginx_child).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use HTTP::Tiny;
use IO::Socket::INET;
use Socket ();
use Test::More;
use Time::HiRes qw(time sleep);
use VodlmsDNS;
use VodlmsTest;

$ENV{TEST_NGINX_MODULE_PATH}
    or plan skip_all => 'TEST_NGINX_MODULE_PATH is not set (./build.sh test sets it)';

my $http = HTTP::Tiny->new(timeout => 10, keep_alive => 0);

sub play {
    my ($port, $sid) = @_;
    return $http->get("http://127.0.0.1:$port/play",
                      { headers => { Cookie => "session=$sid" } })->{status};
}

# a server{} with a gated location; $extra goes before it
sub gated {
    my ($port, $extra) = @_;
    return <<"HTTP";
$extra
    server {
        listen 127.0.0.1:$port;
        location = /play {
            vodlms_auth on;
            proxy_pass http://127.0.0.1:$port/app;
        }
        location = /app { return 200 "app\\n"; }
    }
HTTP
}

my $m = start_redis();
$m->cmd('SET', 'session:t176-alice', '{"user_id":"176"}', 'EX', 3600);
my $s = start_sentinel(master => $m, name => 'mymaster');

# 1. a sentinel that refuses every connection is subscribed to again every
#    2 s; a worker that shuts down must not wait for that
{
    my $dead = free_port();
    my $port = free_port();
    my $nginx = nginx_child(name => 't176-exit', listen => $port, check => 1,
                            http => gated($port, <<"CONF"));
    vodlms_redis sentinel:mymaster;
    vodlms_redis_sentinel 127.0.0.1:@{[$s->port]} 127.0.0.1:$dead;
CONF
    is(play($port, 't176-alice'), 200, 'one sentinel answers, the other is down: the session is checked');
    my @workers = $nginx->workers;
    my $t0 = time;
    ok($nginx->stop('QUIT'), 'a graceful stop ends the workers (the dead sentinel\'s retry does not hold them)');
    diag sprintf 'the graceful stop took %.2f s', time - $t0;
    is(scalar(grep { kill 0, $_ } @workers), 0, 'no worker is left');
}

# 2. a resolver for other things (proxy_pass with variables, OCSP...): a
#    name without "resolve" is still resolved at load time, /etc/hosts
#    included
{
    # "localhost" as the system resolves it (/etc/hosts, nss): nginx takes
    # its first address, ::1 on some machines; a Redis of its own listens
    # on each (optional for IPv6: "-" is Redis's "if there is one")
    my ($gerr, @ai) = Socket::getaddrinfo('localhost', '', { socktype => Socket::SOCK_STREAM() });
    my @local = grep { defined } map { (Socket::getnameinfo($_->{addr}, Socket::NI_NUMERICHOST()))[1] } @ai;
    diag('localhost is ' . join(', ', @local) . ' here');
    my $l = start_redis(args => ['--bind', (map { /:/ ? "-$_" : $_ } grep { $_ ne '127.0.0.1' } @local),
                                 '127.0.0.1']);
    $l->cmd('SET', 'session:t176-alice', '{"user_id":"176"}', 'EX', 3600);
    my $dns = VodlmsDNS->start(ttl => 1);
    my $port = free_port();
    my $nginx = nginx_child(name => 't176-hosts', listen => $port, check => 1,
                            http => gated($port, <<"CONF"));
    resolver 127.0.0.1:@{[$dns->port]} ipv6=off;
    vodlms_redis localhost:@{[$l->port]};
CONF
    is(play($port, 't176-alice'), 200,
       'vodlms_redis localhost with an http-level resolver for something else: the session is checked')
        or diag($nginx->log);
    is($dns->queries('localhost'), 0, '... and the resolver is never asked for it');
    ok($nginx->stop, 'nginx stops');
    $l->stop;
}

# 3. and 4. a sentinel that names a server that is a replica now
sub role_is {
    my ($r, $role) = @_;
    for (1 .. 250) {
        return 1 if (eval { $r->cmd('ROLE')->[0] } // '') eq $role;
        sleep 0.02;
    }
    return 0;
}

# clients connected to $r besides the one asking
sub others_connected {
    my $r = shift;
    my $list = $r->cmd('CLIENT', 'LIST');
    return scalar(grep { length } split /\n/, $list) - 1;
}

sub connections_received {
    my $r = shift;
    return $r->cmd('INFO', 'stats') =~ /total_connections_received:(\d+)/ ? $1 : -1;
}

{
    # the session was deleted on the real master; x, demoted to a replica
    # of a master it cannot reach, still holds it
    my $x = start_redis();
    $x->cmd('SET', 'session:t176-revoked', '{"user_id":"176"}', 'EX', 3600);
    my $stale = start_sentinel(master => $x, name => 'stale');
    $x->cmd('REPLICAOF', '127.0.0.1', free_port());
    ok(role_is($x, 'slave'), 'the server the sentinel names is a replica now');

    my $port = free_port();
    my $nginx = nginx_child(name => 't176-stale', listen => $port, check => 1,
                            http => gated($port, <<"CONF"));
    vodlms_redis sentinel:stale;
    vodlms_redis_sentinel 127.0.0.1:@{[$stale->port]};
CONF
    isnt(play($port, 't176-revoked'), 200, 'the demoted server is not asked: its stale session is not accepted');
    like($nginx->log, qr/answers ROLE "slave", not "master"/, 'the log says it answered ROLE as a replica');

    my $before = connections_received($x);
    my %codes;
    $codes{ play($port, 't176-revoked') }++ for 1 .. 100;
    my $opened = connections_received($x) - $before;
    diag sprintf '100 requests: %s; %d new connections to the replica',
        join(', ', map { "$_ x $codes{$_}" } sort keys %codes), $opened;
    ok(!$codes{200}, 'none of them is answered by the replica');
    cmp_ok($opened, '<', 50, 'the replica is not connected to once per request (the ROLE refusals back off)');
    ok($nginx->stop, 'nginx stops');
}

# 5. and 6. names resolved at run time: two Redis servers on one port of
#    127.0.0.1 and 127.0.0.2, a DNS responder with a TTL of 1 s
{
    my $dns = VodlmsDNS->start(ttl => 1);
    my $rport = free_port();
    my %redis = map { $_ => start_redis(port => $rport, bind => $_) } '127.0.0.1', '127.0.0.2';
    $_->cmd('SET', 'session:t176-alice', '{"user_id":"176"}', 'EX', 3600) for values %redis;

    my $http_dns = "resolver 127.0.0.1:@{[$dns->port]} ipv6=off;\n"
                 . "    vodlms_redis rr.test:$rport resolve;";

    # 5. one request at a time keeps one idle connection; the name moves
    $dns->set('rr.test' => '127.0.0.1');
    my $port = free_port();
    my $nginx = nginx_child(name => 't176-ttl', listen => $port, check => 1,
                            http => gated($port, $http_dns));
    is(play($port, 't176-alice'), 200, 'the name is resolved at run time');
    is(others_connected($redis{'127.0.0.2'}), 0, 'nothing is connected to the other address yet');
    $dns->set('rr.test' => '127.0.0.2');
    my ($t0, $moved) = (time, 0);
    while (time < $t0 + 20) {
        play($port, 't176-alice');
        last if $moved = others_connected($redis{'127.0.0.2'}) > 0;
        sleep 0.2;
    }
    diag sprintf 'the pool connected to the new address %.1f s after the name moved (TTL 1 s)', time - $t0;
    ok($moved, 'with an idle connection kept to the old address, the name is asked again and the pool moves');
    like($nginx->log, qr/rr\.test:$rport is now at 127\.0\.0\.2:$rport \(was 127\.0\.0\.1:$rport\)/,
         'the log says where the server moved');
    ok($nginx->stop, 'nginx stops');

    # 6. both addresses in the answer; connections lost now and then
    $dns->set('rr.test' => '127.0.0.1,127.0.0.2');
    $port = free_port();
    $nginx = nginx_child(name => 't176-rr', listen => $port, check => 1,
                         http => gated($port, $http_dns));
    my %codes;
    for (1 .. 20) {
        $codes{ play($port, 't176-alice') }++;
        eval { $_->cmd('CLIENT', 'KILL', 'TYPE', 'normal') } for values %redis;
        sleep 0.1;
    }
    my @moves = $nginx->log =~ /(is now at \S+ \(was \S+\))/g;
    diag sprintf '20 requests (%s), each connection killed after it: %d moves (%s)',
        join(', ', map { "$_ x $codes{$_}" } sort keys %codes), scalar @moves, join(' ', @moves[0 .. ($#moves < 3 ? $#moves : 3)]);
    is(scalar @moves, 0, 'the pool stays on one of the two addresses while the answer has it');

    # the one in use stops: the other address of the same answer is taken
    play($port, 't176-alice');
    my ($used) = grep { others_connected($redis{$_}) > 0 } sort keys %redis;
    ok($used, "the pool uses one of them ($used)") or $used = '127.0.0.1';
    $redis{$used}->stop;
    my $ok = 0;
    for (1 .. 50) { last if $ok = play($port, 't176-alice') == 200; sleep 0.1 }
    ok($ok, 'its server stops: the next address of the answer serves the requests');
    ok($nginx->stop, 'nginx stops');
}

# 8. a sentinel's name answers first an address where nothing listens
{
    my $dns = VodlmsDNS->start(ttl => 60);
    $dns->set('sentinels.test' => '127.0.0.3,127.0.0.1');
    my $port = free_port();
    my $nginx = nginx_child(name => 't176-sentinel-rr', listen => $port, check => 1,
                            http => gated($port, <<"CONF"));
    resolver 127.0.0.1:@{[$dns->port]} ipv6=off;
    vodlms_redis sentinel:mymaster;
    vodlms_redis_sentinel sentinels.test:@{[$s->port]} resolve;
CONF
    is(play($port, 't176-alice'), 200, 'the sentinel\'s name: its first address refuses, the next one is asked');
    ok($nginx->stop, 'nginx stops');
}

# 7. a DNS server that takes the questions and never answers
{
    my $silent = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'udp')
        or die "a UDP socket: $!";
    my $port = free_port();
    my $nginx = nginx_child(name => 't176-silent-dns', listen => $port, check => 1,
                            http => gated($port, <<"CONF"));
    resolver 127.0.0.1:@{[$silent->sockport]} ipv6=off;
    resolver_timeout 30s;
    vodlms_redis silent.test:@{[$m->port]} resolve connect_timeout=300ms timeout=300ms;
CONF
    is(play($port, 't176-alice'), 503, 'the name cannot be resolved: 503');
    my ($t0, $ended) = (time, 0);
    until ($ended = $nginx->log =~ /"silent\.test" could not be resolved \(110: Operation timed out\)/) {
        last if time > $t0 + 15;
        sleep 0.1;
    }
    diag sprintf 'the lookup ended %.1f s after the request was answered', time - $t0;
    ok($ended, 'the lookup ends with the pool\'s own timeouts (600 ms), not resolver_timeout (30 s)');
    ok($nginx->stop, 'nginx stops');
}

done_testing();
