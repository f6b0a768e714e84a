# Names resolved at run time (issue #21): with a "resolver" at the http
# level, vodlms_redis's host name is asked through nginx's non-blocking
# resolver whenever a connection is opened and the last answer's TTL has
# run out.  A name that moves, as ElastiCache's primary endpoint does on a
# failover, is followed without a reload.
#
# A small DNS responder (t/lib/VodlmsDNS.pm, TTL 1 s) answers redis.test;
# two Redis servers listen on the same port of 127.0.0.1 and 127.0.0.2.
# Under a bounded load of gated requests and of a static location, the
# answer moves to 127.0.0.2 and the server on 127.0.0.1 stops: the failed
# requests and the time until none fail are counted (diag); what is
# asserted is that requests succeed again (20 in a row) without a reload, that every
# static request succeeds throughout, and that nginx asked the name again.
# Then: a name that does not resolve (503, and why), and a sentinel known
# only by a name.
#
# Plain Test::More: nginx runs as a direct child (nginx_child).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use HTTP::Tiny;
use Test::More;
use Time::HiRes qw(time sleep);
use VodlmsDNS;
use VodlmsTest;

$ENV{TEST_NGINX_MODULE_PATH}
    or plan skip_all => 'TEST_NGINX_MODULE_PATH is not set (./build.sh test sets it)';

my $dns = VodlmsDNS->start(ttl => 1);
$dns->set('redis.test' => '127.0.0.1');

my $rport = free_port();
my $old = start_redis(port => $rport, bind => '127.0.0.1');
my $new = start_redis(port => $rport, bind => '127.0.0.2');
for my $r ($old, $new) {
    $r->cmd('SET', 'session:t171-alice', '{"user_id":"171"}', 'EX', 3600);
}

my $tmp = tempdir(CLEANUP => 1);
chmod 0755, $tmp;    # the workers may run as nobody
{ open my $fh, '>', "$tmp/static.txt" or die $!; print $fh "static\n"; }

my $port = free_port();
my $dns_port = $dns->port;
my $nginx = nginx_child(name => 't171', workers => 2, listen => $port, check => 1,
                        http => <<"HTTP");
    resolver 127.0.0.1:$dns_port ipv6=off;
    resolver_timeout 2s;

    vodlms_redis redis.test:$rport resolve connect_timeout=500ms timeout=500ms;

    server {
        listen 127.0.0.1:$port;
        location = /play {
            vodlms_auth on;
            proxy_pass http://127.0.0.1:$port/app;
        }
        location = /app { return 200 "app\\n"; }
        location = /static { alias $tmp/static.txt; }
    }
HTTP

my $http = HTTP::Tiny->new(timeout => 10, keep_alive => 0);

sub play   { $http->get("http://127.0.0.1:$port/play", { headers => { Cookie => 'session=t171-alice' } })->{status} }
sub static { $http->get("http://127.0.0.1:$port/static")->{status} }

is(play(), 200, 'nginx -t passed and the session is checked on a name only the resolver knows');
cmp_ok($dns->queries('redis.test'), '>=', 1, 'the name was asked at run time');
my $asked = $dns->queries('redis.test');

# the name moves, then the old server stops (ElastiCache's failover)
my (@plays, @statics);
my $t0 = time;
$dns->set('redis.test' => '127.0.0.2');
$old->stop;
my $t_moved = time - $t0;

# until 20 gated requests in a row succeed (60 s at most: a bound for a
# stuck pool, not a speed requirement; how long it took is printed)
my $in_a_row = 0;
while (time < $t0 + 60) {
    my $s = time;
    push @plays, [$s - $t0, play()];
    $in_a_row = $plays[-1][1] == 200 ? $in_a_row + 1 : 0;
    my $st = time;
    push @statics, [$st - $t0, static(), time - $st];
    last if $in_a_row >= 20 && time > $t0 + 2;
    sleep 0.005;
}

my @failed = grep { $_->[1] != 200 } @plays;
my $last_fail = @failed ? $failed[-1][0] : 0;
diag sprintf "the name moved and the old server stopped after %.2f s: %d of %d "
    . "gated requests failed (%s), the last %.2f s after the start (TTL 1 s); "
    . "%d static requests, %d failed, the slowest %.3f s",
    $t_moved, scalar @failed, scalar @plays,
    join(' ', map { $_->[1] } @failed[0 .. ($#failed < 9 ? $#failed : 9)]) || 'none',
    $last_fail, scalar @statics, scalar(grep { $_->[1] != 200 } @statics),
    (sort { $b <=> $a } map { $_->[2] } @statics)[0] // 0;

ok($in_a_row >= 20, 'the gated requests succeed again on the new address, with no reload');
is(scalar(grep { $_->[1] != 200 } @statics), 0, 'every static request succeeded throughout');
cmp_ok($dns->queries('redis.test'), '>', $asked, 'nginx asked the name again');
cmp_ok($dns->queries('redis.test') - $asked, '<', @plays / 10,
       'but not for every request: connections are kept, answers cached for their TTL');
diag sprintf "%d A queries for %d gated requests", $dns->queries('redis.test') - $asked, scalar @plays;
like($nginx->log, qr/vodlms redis: redis\.test:$rport is now at 127\.0\.0\.2:$rport \(was 127\.0\.0\.1:$rport\)/,
     'the log says where the server moved');

# a name the resolver does not know: 503, and the log says why
my $port2 = free_port();
my $nginx2 = nginx_child(name => 't171-nx', listen => $port2, http => <<"HTTP");
    resolver 127.0.0.1:$dns_port ipv6=off;
    vodlms_redis nowhere.test:$rport resolve;
    server {
        listen 127.0.0.1:$port2;
        location = /play {
            vodlms_auth on;
            proxy_pass http://127.0.0.1:$port2/app;
        }
        location = /app { return 200 "app\\n"; }
    }
HTTP
my $res = $http->get("http://127.0.0.1:$port2/play", { headers => { Cookie => 'session=t171-alice' } });
is($res->{status}, 503, 'a name that does not resolve: 503');
like($nginx2->log, qr/redis nowhere\.test:$rport: "nowhere\.test" could not be resolved \(3: Host not found\)/,
     'the log names the name and the resolver\'s answer');

# sentinels by name: resolved at run time too (the subscriptions as well)
my $sm = start_redis();
$sm->cmd('SET', 'session:t171-alice', '{"user_id":"171"}', 'EX', 3600);
my $sentinel = start_sentinel(master => $sm, name => 'named');
$dns->set('redis.test' => '127.0.0.2', 'sentinel.test' => '127.0.0.1');
my $sport = $sentinel->port;
my $port3 = free_port();
my $nginx3 = nginx_child(name => 't171-sentinel', listen => $port3, check => 1, http => <<"HTTP");
    resolver 127.0.0.1:$dns_port ipv6=off;
    vodlms_redis sentinel:named;
    vodlms_redis_sentinel sentinel.test:$sport resolve;
    server {
        listen 127.0.0.1:$port3;
        location = /play {
            vodlms_auth on;
            proxy_pass http://127.0.0.1:$port3/app;
        }
        location = /app { return 200 "app\\n"; }
    }
HTTP
$res = $http->get("http://127.0.0.1:$port3/play", { headers => { Cookie => 'session=t171-alice' } });
is($res->{status}, 200, 'a sentinel known only by a name the resolver answers');
cmp_ok($dns->queries('sentinel.test'), '>=', 1, 'the sentinel\'s name was asked at run time');

diag $nginx2->log if $ENV{T171_DEBUG};
unlike($nginx->log . $nginx2->log . $nginx3->log, qr/\[(alert|crit|emerg)\]/, 'no alert in the error logs');

ok($nginx->stop, 'a graceful stop (QUIT) ends nginx and its workers');
ok($nginx2->stop, 'and the second');
ok($nginx3->stop, 'and the third (its sentinel known by a name)');
done_testing();
