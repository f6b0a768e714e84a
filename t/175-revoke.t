# Instant session revocation across nodes (issue #21): two nginx nodes on
# one Redis cache sessions for 10 minutes (valid=10m), and a logout (the
# session key's DEL) is refused on both long before that, through Redis's
# invalidation messages (vodlms_session_invalidate).  A third node without
# the directive shows what it fixes: its cached answer outlives the logout.
# Token and express-session locations side by side (two key prefixes).
# A negative answer goes when the session is created; a lost invalidation
# connection is logged, falls back to the TTL, and is made again; a Redis
# restart drops what was cached before it.
#
# Redis is private to this suite, with a password for the default user
# (so nothing works without AUTH) and an ACL user that vodlms logs in as,
# on database 3 (timeout=3s: a PING unanswered for that long is a loss, and
# a loaded machine must not make one up).  Plain Test::More: nginx runs as
# direct children of this script, two workers each (the cache zone is
# shared by a node's workers; one of them holds the invalidation link).
# Also: nginx -t, a unix socket, a silent Redis (SIGSTOP), a reload and a
# killed worker 0.
#
# The delay from DEL to the first refusal is measured and printed (diag);
# VODLMS_REVOKE_SAMPLES=100 measures over 100 logouts (default 20).  The
# assertion is functional: refused within a few seconds, where valid= is
# ten minutes.

use strict;
use warnings;

use File::Temp ();
use FindBin;
use lib "$FindBin::Bin/lib";
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP ();
use Test::More;
use Time::HiRes qw(time sleep);
use VodlmsTest;

$ENV{TEST_NGINX_MODULE_PATH}
    or plan skip_all => 'TEST_NGINX_MODULE_PATH is not set (./build.sh test sets it)';

my $SAMPLES = $ENV{VODLMS_REVOKE_SAMPLES} || 20;
my $SOON = 5;       # seconds: "refused long before valid=10m", under CI load
my $DB = 3;
my $PASSWORD = 't175-pw';

my $redis = start_redis(requirepass => 't175-default-pw', unixsocket => 1,
                        acl_user => 'vodlms', acl_password => $PASSWORD);
my $rport = $redis->port;
# the workers may run as another user (nobody): let them reach the socket
chmod 0711, $redis->dir;

# a persistent client, as the LMS would be: AUTH as the ACL user, SELECT 3
my ($rsock, $reader);
sub rconnect {
    $rsock = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$rport", Proto => 'tcp')
        or die "cannot connect to redis: $!";
    $rsock->autoflush(1);
    $reader = VodlmsTest::RespReader->new($rsock, 5);
    rcmd('AUTH', 'vodlms', $PASSWORD) eq 'OK' or die "AUTH failed";
    rcmd('SELECT', $DB) eq 'OK' or die "SELECT failed";
}
sub rcmd {
    my $out = '*' . @_ . "\r\n";
    $out .= '$' . length($_) . "\r\n$_\r\n" for @_;
    print $rsock $out;
    return $reader->reply;
}
rconnect();

my $http = HTTP::Tiny->new(timeout => 10);

sub start_node {
    my ($name, $invalidate, $address) = @_;
    $address //= "127.0.0.1:$rport";
    my $port = free_port();
    my $node = nginx_child(name => "t175-$name", listen => $port, workers => 2,
                           check => 1, http => <<"HTTP");
    vodlms_redis $address user=vodlms password=$PASSWORD db=$DB timeout=3s;
    vodlms_cache_zone zone=sessions:1m;
    vodlms_session_invalidate $invalidate;

    server {
        listen 127.0.0.1:$port;
        location = /t {
            vodlms_auth on;
            vodlms_session_cache sessions valid=10m invalid=10m;
            add_header X-Cache \$vodlms_session_cache always;
            add_header X-User \$vodlms_user_id always;
            proxy_pass http://127.0.0.1:$port/app;
        }
        location = /x {
            vodlms_auth on;
            vodlms_session_type express;
            vodlms_session_secret 'keyboard cat';
            vodlms_session_cache sessions valid=10m invalid=10m;
            add_header X-Cache \$vodlms_session_cache always;
            add_header X-User \$vodlms_user_id always;
            proxy_pass http://127.0.0.1:$port/app;
        }
        location = /app { return 200 "ok\\n"; }
        location = /metrics { vodlms_status; }
    }
HTTP
    $node->{port} = $port;
    $node->{name} = $name;
    return $node;
}

# GET /t as the holder of a token: "status cache user"; a token "x:<cookie>"
# is an express-session cookie, for /x
sub as {
    my ($node, $token) = @_;
    my ($path, $cookie) = $token =~ /^x:(.*)/s ? ('/x', $1) : ('/t', "session=$token");
    my $r = $http->get("http://127.0.0.1:$node->{port}$path",
                       { headers => { Cookie => $cookie } });
    return join ' ', $r->{status}, $r->{headers}{'x-cache'} // '-',
                     $r->{headers}{'x-user'} // '-';
}

# GET until the answer is a cache hit (up to 50 requests, 5 ms apart); the
# last answer.
# The first answer after a login may not be kept: the SET's own
# invalidation can still be on its way when the GET goes out, and an answer
# whose key changed meanwhile is not kept (it could be the stale one).
sub until_hit {
    my ($node, $token) = @_;
    my $r;
    for (1 .. 50) {
        $r = as($node, $token);
        last if $r =~ / HIT /;
        sleep 0.005;
    }
    return $r;
}

# how many lines of the node's log match $re
sub log_count {
    my ($node, $re) = @_;
    return scalar grep { /$re/ } split /\n/, $node->log;
}

# poll until the node's log has $n lines matching $re (up to 20 s)
sub wait_log {
    my ($node, $re, $n) = @_;
    $n //= 1;
    for (1 .. 1000) {
        return 1 if log_count($node, $re) >= $n;
        sleep 0.02;
    }
    return 0;
}

# poll the nodes until each answers $want for $token; seconds each took
# (undef: not within $SOON)
sub until_each {
    my ($want, $token, $t0, @nodes) = @_;
    my %took;
    while (time - $t0 < $SOON && keys %took < @nodes) {
        for my $n (@nodes) {
            next if defined $took{$n->{name}};
            $took{$n->{name}} = time - $t0 if (as($n, $token) =~ /^(\d+)/)[0] == $want;
        }
    }
    return map { $took{$_->{name}} } @nodes;
}

# one figure of the node's vodlms_status page
sub metric {
    my ($node, $name) = @_;
    my $page = $http->get("http://127.0.0.1:$node->{port}/metrics")->{content} // '';
    return $page =~ /^\Q$name\E (\d+)$/m ? $1 : 'absent';
}

sub ms { defined $_[0] ? sprintf('%.1f ms', $_[0] * 1000) : 'never' }

my $ON = qr/\[notice\].*session invalidation is on: redis 127\.0\.0\.1:$rport/;
my $LOST = qr/\[warn\].*session invalidation from redis 127\.0\.0\.1:$rport lost/;
my $BACK = qr/\[notice\].*session invalidation from redis 127\.0\.0\.1:$rport .* is back/;


# ---------------------------------------------------------------------------
# nginx -t
# ---------------------------------------------------------------------------

sub nginx_t {
    my ($http_conf) = @_;
    my $dir = File::Temp::tempdir('vodlms-t175-conf-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    mkdir "$dir/logs";
    open my $fh, '>', "$dir/nginx.conf" or die;
    print $fh "load_module $ENV{TEST_NGINX_MODULE_PATH};\nerror_log $dir/logs/error.log;\n"
            . "pid $dir/nginx.pid;\nevents {}\nhttp {\n    access_log off;\n$http_conf\n}\n";
    close $fh;
    my $nginx = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
    my $out = `'$nginx' -p '$dir' -c '$dir/nginx.conf' -t 2>&1`;
    return ($? == 0, $out);
}

{
    my ($ok, $out) = nginx_t(<<'EOF');
    vodlms_session_invalidate on;
    server { listen 127.0.0.1:1; location / { } }
EOF
    ok(!$ok, 'nginx -t: vodlms_session_invalidate without vodlms_redis is refused');
    like($out, qr/"vodlms_session_invalidate" listens to the Redis the sessions are in: add "vodlms_redis"/,
         '... and says what to add');

    ($ok, $out) = nginx_t(<<'EOF');
    vodlms_redis 127.0.0.1:1;
    vodlms_session_invalidate soon;
    server { listen 127.0.0.1:1; location / { } }
EOF
    ok(!$ok, 'nginx -t: vodlms_session_invalidate takes on or off');
    like($out, qr/invalid value "soon" in "vodlms_session_invalidate"/, '... named');
}


# ---------------------------------------------------------------------------
# two nodes with invalidation, one without
# ---------------------------------------------------------------------------

my $A = start_node('a', 'on');
my $B = start_node('b', 'on');
my $C = start_node('c', 'off');

ok(wait_log($A, $ON), 'node A: the invalidation link is up') or diag $A->log;
like($A->log, qr/tells this node of changes to ("session:", "sess:"|"sess:", "session:")/,
     'node A: tracking covers both locations\' key prefixes');
ok(wait_log($B, $ON), 'node B: the invalidation link is up') or diag $B->log;
is(log_count($C, qr/session invalidation/), 0, 'node C (off) has no link');
is(metric($A, 'vodlms_session_invalidation_up'), 1, 'node A: vodlms_session_invalidation_up 1');
is(metric($C, 'vodlms_session_invalidation_up'), 'absent', 'node C: no invalidation metrics');

# one link per node (worker 0), whatever the number of workers
is(log_count($A, $ON), 1, 'node A: one link for its two workers');


# --- a logout ----------------------------------------------------------------

rcmd('SET', 'session:t175-alice', '{"user_id":"501"}', 'EX', 3600);

for my $n ($A, $B, $C) {
    is(as($n, 't175-alice'), '200 MISS 501', "node \U$n->{name}\E: first request asks Redis");
    is(until_hit($n, 't175-alice'), '200 HIT 501', "node \U$n->{name}\E: then it is a cache hit");
}

my $t0 = time;
is(rcmd('DEL', 'session:t175-alice'), 1, 'logout: the session key is deleted');
my ($da, $db) = until_each(401, 't175-alice', $t0, $A, $B);

ok(defined $da, "node A refuses the logged-out session at once (valid=10m): after " . ms($da));
ok(defined $db, "node B refuses the logged-out session at once (valid=10m): after " . ms($db));
diag sprintf 'logout -> refused: node A %s, node B %s', ms($da), ms($db);

is(as($C, 't175-alice'), '200 HIT 501',
   'node C (no vodlms_session_invalidate) still serves it from its cache: what this fixes');
like(as($A, 't175-alice'), qr/^401 /, 'node A: still refused (the refusal is cached in turn)');
cmp_ok(metric($A, 'vodlms_session_invalidation_evictions_total'), '>=', 1,
       'node A counts the eviction');


# --- Redis on a unix socket ---------------------------------------------------

{
    my $D = start_node('d', 'on', 'unix:' . $redis->unixsocket);
    ok(wait_log($D, qr/session invalidation is on: redis unix:/),
       'node D: the link is made over a unix socket too') or diag $D->log;
    rcmd('SET', 'session:t175-uma', '{"user_id":"508"}', 'EX', 3600);
    is(until_hit($D, 't175-uma'), '200 HIT 508', 'node D caches uma');
    my $t = time;
    rcmd('DEL', 'session:t175-uma');
    my ($d) = until_each(401, 't175-uma', $t, $D);
    ok(defined $d, 'node D refuses her logout at once: ' . ms($d));
    ok($D->stop('QUIT'), 'node D stops');
}


# --- an express-session logout ------------------------------------------------

# a real express-session + connect-redis session, minted on the suite's
# Redis (no password there) and copied into this one's database 3
my $redis_port = $ENV{TEST_NGINX_REDIS_PORT} || 6379;
my $mint = `node $FindBin::Bin/fixtures/express/mint.js --redis-port $redis_port --secret 'keyboard cat' --user 507`;
my $express = eval { JSON::PP::decode_json($mint) };
SKIP: {
    skip 'mint.js failed (node and the fixture packages are needed)', 3 unless $express;
    rcmd('SET', $express->{redis_key}, $express->{redis_value}, 'EX', 3600);
    my $x = "x:$express->{cookie_header_value}";
    is(as($A, $x), '200 MISS 507', 'express: node A asks Redis for sess:<sid>');
    is(until_hit($B, $x), '200 HIT 507', 'express: node B has it cached');
    until_hit($A, $x);
    $t0 = time;
    rcmd('DEL', $express->{redis_key});
    ($da, $db) = until_each(401, $x, $t0, $A, $B);
    ok(defined $da && defined $db,
       'express: the logout (DEL sess:<sid>) is refused at once on both: ' . ms($da) . ', ' . ms($db));
}


# --- a login after a cached "no such session" --------------------------------

for my $n ($A, $B) {
    is(as($n, 't175-bob'), '401 MISS -', "node \U$n->{name}\E: an unknown token asks Redis");
    is(as($n, 't175-bob'), '401 HIT -', "node \U$n->{name}\E: the refusal is cached (invalid=10m)");
}

$t0 = time;
rcmd('SET', 'session:t175-bob', '{"user_id":"502"}', 'EX', 3600);
($da, $db) = until_each(200, 't175-bob', $t0, $A, $B);
ok(defined $da && defined $db,
   'a login is let in on both nodes at once, despite the cached refusal: '
   . ms($da) . ', ' . ms($db));
is(as($A, 't175-bob'), '200 HIT 502', 'node A: the new answer is cached in turn');


# --- the invalidation connection is killed -----------------------------------

rcmd('SET', 'session:t175-carol', '{"user_id":"503"}', 'EX', 3600);
until_hit($_, 't175-carol') for $A, $B;

my $killed = rcmd('CLIENT', 'KILL', 'TYPE', 'pubsub');
ok($killed >= 2, "CLIENT KILL TYPE pubsub: both nodes' subscribers killed ($killed)");

for my $n ($A, $B) {
    ok(wait_log($n, $LOST), "node \U$n->{name}\E logs that invalidation is lost and the TTL rules")
        or diag $n->log;
    ok(wait_log($n, $BACK), "node \U$n->{name}\E logs that it is back") or diag $n->log;
    cmp_ok(log_count($n, $LOST), '>=', 1, "node \U$n->{name}\E: a warning for the loss");
    like($n->log, qr/cached session answers live up to their valid= time until it is back/,
         "node \U$n->{name}\E: the warning says what that means");
}

# answers cached before the link came back are dropped: carol's is a miss
is(as($A, 't175-carol'), '200 MISS 503', 'node A: what was cached before the loss is asked again');
is(until_hit($A, 't175-carol'), '200 HIT 503', 'node A: and cached again');
until_hit($B, 't175-carol');

$t0 = time;
rcmd('DEL', 'session:t175-carol');
($da, $db) = until_each(401, 't175-carol', $t0, $A, $B);
ok(defined $da && defined $db,
   'after the reconnection a logout is refused at once again: ' . ms($da) . ', ' . ms($db));


# --- the tracking connection is killed ---------------------------------------

# the tracker is a plain client: find it by its command name
my $clients = rcmd('CLIENT', 'LIST');
my @trackers = $clients =~ /^id=(\d+) .*flags=t\b/mg;
@trackers = map { /^id=(\d+) .* cmd=client\|tracking/ ? $1 : () } split /\n/, $clients
    unless @trackers;
ok(@trackers >= 2, 'the two trackers are in CLIENT LIST (' . scalar(@trackers) . ')')
    or diag $clients;
rcmd('CLIENT', 'KILL', 'ID', $_) for @trackers;

for my $n ($A, $B) {
    ok(wait_log($n, $LOST, 2), "node \U$n->{name}\E: a lost tracker is a loss too");
    ok(wait_log($n, $BACK, 2), "node \U$n->{name}\E: and back");
}

rcmd('SET', 'session:t175-dave', '{"user_id":"504"}', 'EX', 3600);
until_hit($_, 't175-dave') for $A, $B;
$t0 = time;
rcmd('DEL', 'session:t175-dave');
($da, $db) = until_each(401, 't175-dave', $t0, $A, $B);
ok(defined $da && defined $db, 'revocation works after that: ' . ms($da) . ', ' . ms($db));


# --- Redis goes silent (a network that drops everything) ---------------------

# SIGSTOP: the sockets stay open, nothing answers; only the PINGs can tell
kill 'STOP', $redis->pid;
ok(wait_log($A, qr/lost \(\w+: no answer to PING in 9000 ms\)/),
   'a silent Redis is found out by the PINGs, within seconds') or diag $A->log;
kill 'CONT', $redis->pid;
ok(wait_log($A, $BACK, 3), 'and the link is made again when it answers') or diag $A->log;
rconnect();


# --- Redis restarts ----------------------------------------------------------

# The link may still be settling after the SIGSTOP above (a connect
# attempted while Redis was stopped is answered, or times out, only now),
# and every time it comes back the answers cached before are dropped.  So
# erin is cached while the link is up, and again if it came back once more
# before Redis stops: what is asserted below is what a loss does to a
# cached answer, not what a late reconnection does.
my ($lost0, $back0, $erin_first, $erin_hit, $erin_tok);
for my $try (1 .. 5) {
    $erin_tok = $try == 1 ? 't175-erin' : "t175-erin$try";
    for (1 .. 500) {
        last if log_count($A, $LOST) == log_count($A, $BACK);
        sleep 0.02;
    }
    ($lost0, $back0) = (log_count($A, $LOST), log_count($A, $BACK));
    rcmd('SET', "session:$erin_tok", '{"user_id":"505"}', 'EX', 3600);
    $erin_first = as($A, $erin_tok);
    $erin_hit = until_hit($A, $erin_tok);
    last if $lost0 == $back0
        && log_count($A, $LOST) == $lost0 && log_count($A, $BACK) == $back0;
    diag("the link of node A moved while erin was cached (try $try): again");
}
is($erin_first, '200 MISS 505', 'node A caches erin');
is($erin_hit, '200 HIT 505', '... a hit');

$redis->stop;
ok(wait_log($A, $LOST, $lost0 + 1), 'Redis stopped: node A says invalidation is lost');
is(as($A, $erin_tok), '200 HIT 505',
   'meanwhile the cached answer is served: the TTL rules, as without invalidation');
is(metric($A, 'vodlms_session_invalidation_up'), 0, 'node A: vodlms_session_invalidation_up 0');
cmp_ok(metric($A, 'vodlms_session_invalidation_losses_total'), '>=', 4, 'node A: the losses counted (four at least)');

# the restarted Redis has no data: erin's session is gone, as if deleted
# while nobody listened
$redis->start;
ok(wait_log($A, $BACK, $back0 + 1), 'Redis back: node A resubscribes') or diag $A->log;
rconnect();
# the pools may be in their back-off still (the metrics page asked Redis
# during the outage): 503 until they connect again
my $erin;
for (1 .. 250) {
    $erin = as($A, $erin_tok);
    last unless $erin =~ /^503/;
    sleep 0.02;
}
is($erin, '401 MISS -', 'what was cached before the outage is dropped: erin is refused');


# --- a reload, and a worker that dies ----------------------------------------

sub logout_on_a {
    my ($token, $what) = @_;
    rcmd('SET', "session:$token", '{"user_id":"506"}', 'EX', 3600);
    my $hit = until_hit($A, $token);
    my $t = time;
    rcmd('DEL', "session:$token");
    my ($d) = until_each(401, $token, $t, $A);
    ok($hit =~ / HIT / && defined $d, "$what: a logout is refused at once: " . ms($d));
}

kill 'HUP', $A->{pid};
ok(wait_log($A, $ON, 2), 'reload: the new worker 0 makes its own link') or diag $A->log;
logout_on_a('t175-frank', 'after a reload');

my ($holder) = reverse($A->log =~ /\[notice\] (\d+)#\d+: vodlms: session invalidation is on/g);
ok($holder && kill('KILL', $holder), "the worker holding the link ($holder) is killed");
ok(wait_log($A, $ON, 3), 'the master starts it again, and it makes the link again') or diag $A->log;
logout_on_a('t175-gina', 'after the worker died');
is(metric($A, 'vodlms_session_invalidation_up'), 1,
   'node A: vodlms_session_invalidation_up 1 again (not cleared by the old workers)');


# --- invalidation off by one reload, on again by the next --------------------

# the cache zone is kept across both; what it cached before must not count
# as fresh under the new invalidation zone (a node of its own: the new
# zone's generations would otherwise start where the old one's did)
{
    my $T = start_node('toggle', 'on');
    ok(wait_log($T, $ON), 'toggle: a new node, its link up') or diag $T->log;
    my $conf = "$T->{dir}/nginx.conf";
    my $edit = sub {
        my ($from, $to) = @_;
        open my $in, '<', $conf or die "$conf: $!";
        my $text = do { local $/; <$in> };
        close $in;
        $text =~ s/\Q$from\E/$to/ or die "no '$from' in $conf";
        open my $out, '>', $conf or die "$conf: $!";
        print $out $text;
        close $out;
    };
    rcmd('SET', 'session:t175-hana', '{"user_id":"507"}', 'EX', 3600);
    is(until_hit($T, 't175-hana'), '200 HIT 507', 'toggle: hana is cached with invalidation on');
    $edit->('vodlms_session_invalidate on;', 'vodlms_session_invalidate off;');
    kill 'HUP', $T->{pid};
    sleep 1.5;
    rcmd('DEL', 'session:t175-hana');
    like(as($T, 't175-hana'), qr/^401 /, 'toggle: invalidation off, hana logs out: refused');
    $edit->('vodlms_session_invalidate off;', 'vodlms_session_invalidate on;');
    kill 'HUP', $T->{pid};
    ok(wait_log($T, $ON, 2), 'toggle: invalidation on again, the link is up') or diag $T->log;
    sleep 0.5;                 # its first generation is taken by then
    my @again = map { sleep 0.1; as($T, 't175-hana') } 1 .. 3;
    is(scalar(grep { /^401 / } @again), 3,
       'toggle: what was cached under the first invalidation zone is not fresh under the new one: hana stays refused')
        or diag "@again";
    ok($T->stop('QUIT'), 'toggle: the node stops');
}


# --- the delay, over many logouts --------------------------------------------

my (@delays, @rtt, $late);
for my $i (1 .. $SAMPLES) {
    my $token = "t175-m$i";
    rcmd('SET', "session:$token", '{"user_id":"600"}', 'EX', 3600);
    my @c = map { until_hit($_, $token) } $A, $B;
    unless ($c[0] =~ /HIT/ && $c[1] =~ /HIT/) {
        $late++;
        next;
    }
    # the baseline: one cached request's round trip, in the same run
    my $t = time;
    as($A, $token);
    push @rtt, time - $t;
    $t = time;
    rcmd('DEL', "session:$token");
    my @d = until_each(401, $token, $t, $A, $B);
    if (grep { !defined } @d) { $late++; next }
    push @delays, @d;
}
ok(!$late, "$SAMPLES logouts: each refused on both nodes within ${SOON}s (" . ($late // 0) . ' not)');
@delays = sort { $a <=> $b } @delays;
@rtt = sort { $a <=> $b } @rtt;
if (@delays) {
    my $pct = sub { my $l = shift; $l->[int($_[0] * $#$l + 0.5)] };
    diag sprintf 'revocation delay over %d logouts x 2 nodes: median %s, p95 %s, max %s; '
        . 'a cached request\'s round trip (the poll\'s own resolution): median %s; '
        . 'median delay / median round trip = %.2f',
        scalar(@delays) / 2, ms($pct->(\@delays, 0.5)), ms($pct->(\@delays, 0.95)),
        ms($delays[-1]), ms($pct->(\@rtt, 0.5)),
        $pct->(\@delays, 0.5) / ($pct->(\@rtt, 0.5) || 1e-6);
}


# ---------------------------------------------------------------------------

if ($ENV{T175_LOGS}) { diag "--- node $_->{name}\n" . $_->log for $A, $B }

for my $n ($A, $B, $C) {
    my @bad = grep { /\[(alert|crit|emerg)\]/ || (/\[error\]/ && /invalidation|revoke/) }
              grep { !/worker process \d+ exited on signal 9/ }     # the one killed above
              split /\n/, $n->log;
    is(scalar @bad, 0, "node \U$n->{name}\E: no alert, crit or invalidation error in the log")
        or diag join "\n", @bad;
    ok($n->stop('QUIT'), "node \U$n->{name}\E stops gracefully");
}

done_testing();
