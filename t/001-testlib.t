# Demonstrates (and checks) the prologue helpers of t/lib/VodlmsTest.pm
# against plain nginx (no vodlms module): a private redis-server, the
# RESP client, a control server that nginx proxies to (so that one
# pipelined request sequence can stop and restart Redis between requests),
# a blackhole upstream and a port with nothing listening.

use Test::Nginx::Socket 'no_plan';
use FindBin;
use lib "$FindBin::Bin/lib";
use VodlmsTest;
use IO::Select;
use IO::Socket::INET;

#--- redis_cmd against a private redis-server ------------------------------

my $redis = start_redis();
is(redis_cmd($redis->port, 'PING'), 'PONG', 'start_redis: answers PING');
is(redis_cmd($redis, 'SET', 'greeting', 'hello'), 'OK', 'redis_cmd: +status reply');
is(redis_cmd($redis, 'GET', 'greeting'), 'hello', 'redis_cmd: bulk reply');
is(redis_cmd($redis, 'GET', 'missing'), undef, 'redis_cmd: nil reply');
is(redis_cmd($redis, 'INCR', 'n'), 1, 'redis_cmd: integer reply');
redis_cmd($redis, 'RPUSH', 'list', 'a', "b c\r\nd");
is_deeply(redis_cmd($redis, 'LRANGE', 'list', 0, -1), ['a', "b c\r\nd"],
          'redis_cmd: array reply, binary-safe arguments');
my $err = redis_cmd($redis, 'NO-SUCH-COMMAND');
isa_ok($err, 'VodlmsTest::RedisError', 'redis_cmd: error reply');
like("$err", qr/^ERR unknown command/, 'redis_cmd: error reply stringifies to the message');
ok(!eval { redis_cmd(free_port(), 'PING'); 1 }, 'redis_cmd: dies when nothing listens');

#--- stop / start: same port, pid file shared by all processes ------------

my $first_pid = $redis->pid;
$redis->stop;
ok(!$redis->running, 'stop: redis-server is gone');
ok(!eval { redis_cmd($redis, 'PING'); 1 }, 'stop: the port is closed');
$redis->start;
is(redis_cmd($redis, 'PING'), 'PONG', 'start: answers again on the same port');
isnt($redis->pid, $first_pid, 'start: a new process');
is(redis_cmd($redis, 'GET', 'greeting'), undef, 'start: --save "": the data is gone');
redis_cmd($redis, 'SET', 'greeting', 'hello');

#--- requirepass, an ACL user, a unix socket -------------------------------

{
    my $locked = start_redis(requirepass => 's3cret', acl_user => 'alice',
                             acl_password => 'pw', unixsocket => 1);
    like(redis_cmd($locked->port, 'PING'), qr/^NOAUTH/, 'requirepass: anonymous PING refused');
    is(redis_cmd($locked, 'PING'), 'PONG', 'requirepass: the object authenticates');
    is(redis_cmd({ port => $locked->port, user => 'alice', password => 'pw' }, 'PING'),
       'PONG', 'ACL user: AUTH alice');
    ok(-S $locked->unixsocket, 'unixsocket: the socket file exists');
    # $locked is stopped and its directory removed when it goes out of scope
}

#--- another loopback address, a sentinel, a DNS responder ---------------

my $other = start_redis(bind => '127.0.0.2');
is($other->host, '127.0.0.2', 'start_redis bind=: the address it listens on');
is(redis_cmd($other, 'PING'), 'PONG', 'redis_cmd: to the object\'s address');
ok(!eval { redis_cmd($other->port, 'PING'); 1 }, 'bind=: nothing on 127.0.0.1');

my $sentinel = start_sentinel(master => $redis, name => 'lib');
is_deeply(redis_cmd($sentinel, 'SENTINEL', 'get-master-addr-by-name', 'lib'),
          ['127.0.0.1', $redis->port], 'start_sentinel: names its master');
$sentinel->stop;
ok(!$sentinel->running, 'start_sentinel: ->stop stops it');

{
    require VodlmsDNS;
    my $dns = VodlmsDNS->start(ttl => 7);
    $dns->set('lib.test' => '127.0.0.9');
    my $q = sub {    # one A query: (rcode, answers, ip, ttl)
        my ($name) = @_;
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $dns->port,
                                      Proto => 'udp') or die $!;
        my $qname = join('', map { chr(length) . $_ } split /\./, $name) . "\0";
        $s->send(pack('n n n n n n', 4242, 0x0100, 1, 0, 0, 0) . $qname . pack('n n', 1, 1));
        IO::Select->new($s)->can_read(5) or return ('timeout');
        $s->recv(my $r, 512);
        my ($id, $flags, undef, $an) = unpack 'n n n n', $r;
        return ($flags & 0xf, $an, '', 0) unless $an;       # NXDOMAIN: no answer to read
        my ($ttl, undef, @ip) = unpack 'N n C4', substr $r, 12 + length($qname) + 4 + 6;
        return ($flags & 0xf, $an, join('.', @ip), $ttl);
    };
    is_deeply([$q->('lib.test')], [0, 1, '127.0.0.9', 7], 'VodlmsDNS: answers A with the TTL');
    $dns->set('lib.test' => '127.0.0.10');
    is(($q->('lib.test'))[2], '127.0.0.10', 'VodlmsDNS: set() moves the name at once');
    is(($q->('nx.test'))[0], 3, 'VodlmsDNS: NXDOMAIN for other names');
    is($dns->queries('lib.test'), 2, 'VodlmsDNS: counts the A queries answered');
}

#--- a control server, a blackhole, a dead port ------------------------------

my ($ctl_port, $ctl_guard) = control_server(
    '/redis/ping'  => sub {
        my $r = eval { redis_cmd({ port => $redis->port, timeout => 1 }, 'PING') };
        defined $r ? "$r\n" : "down\n";
    },
    '/redis/stop'  => sub { $redis->stop;  "stopped\n" },
    '/redis/start' => sub { $redis->start; "started\n" },
    '/redis/get'   => sub {
        my (undef, $key) = @_;
        my $v = redis_cmd($redis, 'GET', $key);
        (defined $v ? $v : 'nil') . "\n";
    },
    '/echo' => sub {
        my ($path, $query, $body, $headers) = @_;
        "query=$query body=$body type=$headers->{'content-type'}\n";
    },
);
$ENV{TEST_NGINX_CTL_PORT} = $ctl_port;

my ($bh_port, $bh_guard) = blackhole();
$ENV{TEST_NGINX_BLACKHOLE_PORT} = $bh_port;
$ENV{TEST_NGINX_DEAD_PORT} = free_port();

no_shuffle();   # TEST 2 restarts Redis, which empties it
run_tests();

__DATA__

=== TEST 1: nginx proxies to the control server, which reads Redis
--- config
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- request
GET /ctl/redis/get?greeting
--- response_body
hello
--- no_error_log
[error]



=== TEST 2: one pipelined sequence stops and restarts Redis between requests
--- config
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- pipelined_requests eval
["GET /ctl/redis/ping", "GET /ctl/redis/stop", "GET /ctl/redis/ping",
 "GET /ctl/redis/start", "GET /ctl/redis/ping", "GET /ctl/redis/get?greeting"]
--- response_body eval
["PONG\n", "stopped\n", "down\n", "started\n", "PONG\n", "nil\n"]
--- error_code eval
[200, 200, 200, 200, 200, 200]
--- no_error_log
[error]



=== TEST 3: request body and headers reach the handler; unknown paths are 404
--- config
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- more_headers
Content-Type: text/x-demo
--- request eval
["POST /ctl/echo?a=1\nabc", "GET /ctl/nothing"]
--- error_code eval
[200, 404]
--- response_body eval
["query=a=1 body=abc type=text/x-demo\n", "no handler for /nothing\n"]



=== TEST 4: a blackhole upstream accepts the connection and never answers
--- config
    location = /bh {
        proxy_connect_timeout 1s;
        proxy_read_timeout 300ms;
        proxy_pass http://127.0.0.1:$TEST_NGINX_BLACKHOLE_PORT;
    }
--- request
GET /bh
--- error_code: 504
--- error_log
upstream timed out (110: Connection timed out) while reading response header from upstream



=== TEST 5: nothing listens on free_port()
--- config
    location = /dead {
        proxy_pass http://127.0.0.1:$TEST_NGINX_DEAD_PORT;
    }
--- request
GET /dead
--- error_code: 502
--- error_log
(111: Connection refused) while connecting to upstream
