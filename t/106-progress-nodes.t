# Coverage and completion are exact on several nodes (issue #19): two nginx
# instances, each with its own progress zone, on one PostgreSQL, with no
# affinity.  One viewer ("pair") sends every other beacon to the other node;
# a second viewer ("solo") watches the same way at the same time on one
# node.  Two more do the same with two seeks ("spair", "ssolo"): 0-10 s,
# 19-28 s, 38-60 s.  Their bits have holes and do not reach the 90% (a
# bitmap of all ones could not show a merge that counts too much), and
# neither node alone proves all of the single node's: node A never sees
# the "ended" beacon at 60 s, node B never sees the 10 s one.  Half-way,
# node B's worker is killed while its flush waits on a lock: the statement
# commits after the worker is gone (its answer lost) and the worker the
# master starts in its place writes the same entries again, a replayed
# flush.  The rows must say the same: the coverage bits equal, bit for
# bit, the whole viewing completed and the one with seeks not; the replay
# is in B's log.
#
# Plain Test::More: nginx runs as direct children of this script (fork +
# exec, then waitpid), one worker each, with a private PostgreSQL and the
# suite's Redis.  The viewers watch a 60 s lecture at 2x: a beacon every
# 0.5 s, 1 s further each time (about 35 s of wall time).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use HTTP::Tiny;
use IPC::Open2 qw(open2);
use Test::More;
use VodlmsTest;

$ENV{TEST_NGINX_MODULE_PATH}
    or plan skip_all => 'TEST_NGINX_MODULE_PATH is not set (./build.sh test sets it)';
my $redis_port = $ENV{TEST_NGINX_REDIS_PORT} || 6379;

redis_cmd($redis_port, 'SET', 'session:t106-solo', '{"user_id":"2001"}', 'EX', 3600);
redis_cmd($redis_port, 'SET', 'session:t106-pair', '{"user_id":"2002"}', 'EX', 3600);
redis_cmd($redis_port, 'SET', 'session:t106-ssolo', '{"user_id":"2003"}', 'EX', 3600);
redis_cmd($redis_port, 'SET', 'session:t106-spair', '{"user_id":"2004"}', 'EX', 3600);

my $pg = start_pg();
for my $u (2001 .. 2004) {
    $pg->psql(qq{INSERT INTO vodlms.users (id, email, role) VALUES ('$u', 'u$u\@example.com', 'student')});
    $pg->psql(qq{INSERT INTO vodlms.enrollments (user_id, course_id, status) VALUES ('$u', 'course-intro', 'active')});
}
$pg->psql(q{INSERT INTO vodlms.videos (id, course_id, title, duration_seconds, status, storage_prefix)
            VALUES ('lec-60', 'course-intro', 'One minute', 60, 'ready', 'hls/lec-60/')});

# poll a condition (up to 20 s); its last value, true or not
sub wait_for {
    my ($cond) = @_;
    my $v;
    for (1 .. 1000) {
        last if $v = $cond->();
        select undef, undef, undef, 0.02;
    }
    return $v;
}

my @nodes;

sub start_node {
    my ($name) = @_;
    my $port = free_port();
    my $conninfo = $pg->conninfo . " application_name=vodlms-t106-$name";
    my $node = nginx_child(name => "t106-$name", listen => $port, http => <<"HTTP");
    vodlms_redis 127.0.0.1:$redis_port;
    vodlms_pg "$conninfo";
    vodlms_progress_zone zone=progress:1m flush=300ms;

    server {
        listen 127.0.0.1:$port;
        location ~ ^/api/videos/(?<vid>[^/]+)/progress\$ {
            vodlms_auth on;
            vodlms_enrollment_check on;
            vodlms_video_id \$vid;
            vodlms_progress on;
            vodlms_progress_rate off;
        }
    }
HTTP
    $node->{port} = $port;
    ok(IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port"), "node $name is up");
    push @nodes, $node;
    return $node;
}

my $http = HTTP::Tiny->new(timeout => 10);

sub beacon {
    my ($node, $who, $t, $event) = @_;
    my $e = $event ? qq(,"event":"$event") : '';
    my $res = $http->post("http://127.0.0.1:$node->{port}/api/videos/lec-60/progress", {
        headers => { 'Cookie' => "session=t106-$who", 'Content-Type' => 'text/plain' },
        content => qq({"videoId":"lec-60","currentTime":$t,"duration":60$e}),
    });
    return $res->{status};
}

sub row {
    my ($user) = @_;
    return $pg->psql("SELECT coverage::text || ' ' || (completed_at IS NOT NULL)"
                   . " FROM vodlms.watch_progress WHERE user_id = '$user' AND video_id = 'lec-60'");
}

# node B's flush, waiting on the lock (its backend's pid)
sub blocked_flush_of_b {
    return $pg->psql("SELECT pid FROM pg_stat_activity WHERE application_name = 'vodlms-t106-b'"
                   . " AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO%watch_progress%'");
}

my $a = start_node('a');
my $b = start_node('b');

my (@refused, $killed);

for my $k (0 .. 60) {
    my $ev = $k == 60 ? 'ended' : undef;
    my ($locker, $in, $out);

    if ($k == 31) {
        # hold the table first, then give B the pair's beacon at 31: B's
        # next flush then waits in PostgreSQL, and B's worker is killed
        # meanwhile
        $locker = open2($out, $in, 'psql', '-X', '-qAt', '-h', '127.0.0.1',
                        '-p', $pg->port, '-U', 'postgres', '-d', 'vodlms');
        print $in "BEGIN; LOCK TABLE vodlms.watch_progress IN EXCLUSIVE MODE; SELECT 'locked';\n";
        $in->flush;
        my $line = <$out> // '';
        is($line, "locked\n", 'the table is locked');
    }

    push @refused, "solo at $k" if beacon($a, 'solo', $k, $ev) != 204;
    push @refused, "pair at $k" if beacon($k % 2 ? $b : $a, 'pair', $k, $ev) != 204;

    # the viewers with seeks: 0-10 s, a jump of 8 s, 19-28 s, a jump of
    # 9 s, 38-60 s, at 2x; "ended" at 60 s
    if ($k <= 43) {
        my $t = $k <= 10 ? $k : $k <= 20 ? $k + 8 : $k + 17;
        my $sev = $k == 43 ? 'ended' : undef;
        push @refused, "ssolo at $t" if beacon($a, 'ssolo', $t, $sev) != 204;
        push @refused, "spair at $t" if beacon($k % 2 ? $b : $a, 'spair', $t, $sev) != 204;
    }

    if ($locker) {
        ok(wait_for(\&blocked_flush_of_b), "node B's flush waits on the lock");

        my ($w) = $b->workers;
        ok($w && kill('KILL', $w), "node B's worker ($w) killed during its flush");
        ok(wait_for(sub { my @n = $b->workers; @n == 1 && $n[0] != $w }),
           "node B's master started another worker");

        print $in "COMMIT;\n";
        close $in;
        waitpid $locker, 0;

        # the killed worker's statement went on without it: committed,
        # its answer to nobody
        ok(wait_for(sub { !blocked_flush_of_b() }), "the killed worker's flush ran on");
        $killed = $w;
    }

    select undef, undef, undef, 0.5;
}

is_deeply(\@refused, [], 'every beacon was acknowledged');

my $all = '1' x 12;
my $solo = wait_for(sub { my $r = row(2001); $r eq "$all true" ? $r : undef }) || row(2001);
my $pair = wait_for(sub { my $r = row(2002); $r eq "$all true" ? $r : undef }) || row(2002);

is($solo, "$all true", 'one node: every 5 s part watched, completed');
is($pair, $solo, 'two nodes, alternating, a worker killed mid-flush: the same bits and completion');

# 0-10 s: parts 0 and 1; a jump proves nothing before where it lands, so
# 19-28 s is part 4 (20-25) only, and 38-60 s parts 8-11.  30 s of 60: not
# completed.  Node A alone proves 110010001110, node B 100010001111
my $holed = '110010001111';
my $ssolo = wait_for(sub { my $r = row(2003); $r eq "$holed false" ? $r : undef }) || row(2003);
my $spair = wait_for(sub { my $r = row(2004); $r eq "$holed false" ? $r : undef }) || row(2004);

is($ssolo, "$holed false", 'one node, two seeks: the parts played, holes where the seeks went, not completed');
is($spair, $ssolo, 'two nodes, alternating, two seeks, a worker killed mid-flush: the same bits, not completed either');

like($b->log, qr/worker process $killed exited during its flush; its entries are written again/,
     "node B wrote the killed worker's entries again (a replayed flush)")
    if $killed;

# watch time is at-least-once (documented): each node counts the wall time
# between the beacons it sees, and the replay may add B's last flush again;
# coverage and completion are not affected
diag('watched seconds: solo ' . $pg->psql("SELECT watched_seconds FROM vodlms.watch_progress WHERE user_id = '2001'")
   . ', pair ' . $pg->psql("SELECT watched_seconds FROM vodlms.watch_progress WHERE user_id = '2002'"));

for my $node (@nodes) {
    ok($node->stop('QUIT'), "node $node->{name} stopped");
    # but the master's line about the worker this test killed
    unlike($node->log =~ s/^.*\[alert\].* exited on signal 9\n//mgr,
           qr/\[(alert|emerg|crit)\]/, "node $node->{name}: no other alert in its log");
}

done_testing();
