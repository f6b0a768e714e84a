# Redis Sentinel, case by case (issue #21): the sentinels' own password and
# the master's, sentinels passed over (down, or not knowing the master),
# none answering, a wrong sentinel password, and a "master" that answers
# ROLE as a replica (never asked anything else: a demoted server may hold a
# deleted session), and a master demoted under nginx's feet that answers
# a write READONLY (the sentinels are asked again, and the next write lands
# on the master they name).  Real redis-server sentinels on loopback; the
# failovers themselves are t/170's.

use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use VodlmsTest;
use Test::Nginx::Socket 'no_plan';

# a master with a password, watched as "mymaster" by a sentinel with a
# password of its own, and as "other" by a second one
my $m = start_redis(requirepass => 'm-pw');
$m->cmd('SET', 'session:t172-alice', '{"user_id":"172"}', 'EX', 3600);
my $s1 = start_sentinel(master => $m, auth_pass => 'm-pw', requirepass => 's-pw');
my $s2 = start_sentinel(master => $m, name => 'other', auth_pass => 'm-pw',
                        requirepass => 's-pw');
$ENV{TEST_NGINX_S1_PORT} = $s1->port;
$ENV{TEST_NGINX_S2_PORT} = $s2->port;

# "stale": a sentinel still names x, but x has become a replica of y
my $y = start_redis();
$y->cmd('SET', 'session:t172-alice', '{"user_id":"172"}', 'EX', 3600);
my $x = start_redis();
my $s3 = start_sentinel(master => $x, name => 'stale');
$x->cmd('REPLICAOF', '127.0.0.1', $y->port);
for (1 .. 500) {
    last if $x->cmd('INFO', 'replication') =~ /master_link_status:up/;
    select undef, undef, undef, 0.02;
}
$ENV{TEST_NGINX_S3_PORT} = $s3->port;

# nothing listens here
$ENV{TEST_NGINX_DEAD_PORT} = free_port();

# accepts connections, never answers
my ($bh_port, $bh) = blackhole();
$ENV{TEST_NGINX_BLACKHOLE_PORT} = $bh_port;

# "writes": where uploads queue their jobs (XADD, a write; sessions are
# only ever read).  The control server demotes w behind nginx's back, as a
# manual failover, or one whose +switch-master nginx did not hear, would:
# w becomes a replica of v, and the sentinel watches v instead (no
# announcement is published for that).  Its quorum of 2 with one sentinel
# keeps it from failing over by itself.
my $v = start_redis();
my $w = start_redis();
for my $r ($v, $w) {
    $r->cmd('SET', 'session:t172-carol', '{"user_id":"1003","role":"instructor"}', 'EX', 3600);
}
# a replica's first sync at once (Redis 7 waits 5 s for more replicas)
$v->cmd('CONFIG', 'SET', 'repl-diskless-sync-delay', '0');
my $s4 = start_sentinel(master => $w, name => 'writes');
$ENV{TEST_NGINX_S4_PORT} = $s4->port;

# the lectures the uploads fill (carol, 1003, teaches course-intro)
my $pg = start_pg();
$ENV{TEST_NGINX_PRIVATE_PG} = $pg->conninfo;
$pg->psql(q{INSERT INTO vodlms.videos (id, course_id, title) VALUES
            ('t172-up-1', 'course-intro', 'Week 1'), ('t172-up-2', 'course-intro', 'Week 2')});
my $spool = tempdir('vodlms-spool-XXXXXX', TMPDIR => 1, CLEANUP => 1);
$ENV{TEST_NGINX_SPOOL} = $spool;

my $servroot = $ENV{TEST_NGINX_SERVROOT} || "$FindBin::Bin/servroot";

my ($ctl_port, $ctl) = control_server(
    '/demote' => sub {
        $w->cmd('REPLICAOF', '127.0.0.1', $v->port);
        my $r = poll_until('w to sync with v',
                           sub { $w->cmd('INFO', 'replication') =~ /master_link_status:up/ });
        return $r unless $r eq '1';
        $s4->cmd('SENTINEL', 'REMOVE', 'writes');
        $s4->cmd('SENTINEL', 'MONITOR', 'writes', '127.0.0.1', $v->port, 2);
        "w is a replica of v, the sentinel names v\n";
    },
    # the videos of the jobs in the stream of each server
    '/jobs' => sub {
        # w is v's replica by now: what v has reaches it asynchronously
        my $ids = sub { join ' ', map { $_->[0] } @{ $_[0]->cmd('XRANGE', 'vodlms:transcode', '-', '+') } };
        poll_until('w to have v\'s jobs', sub { $ids->($w) eq $ids->($v) });
        join '', map {
            my ($name, $r) = @$_;
            my $jobs = $r->cmd('XRANGE', 'vodlms:transcode', '-', '+');
            "$name: " . join(' ', map { my %f = @{ $_->[1] }; $f{video_id} } @$jobs) . "\n";
        } ['v', $v], ['w', $w];
    },
    # what the log says of w's READONLY and of the move to v, in order
    '/log' => sub {
        open my $fh, '<', "$servroot/logs/error.log" or return "no error.log\n";
        my ($W, $V) = ($w->port, $v->port);
        join '', map {
            /\[info\] .*vodlms redis: sentinel:writes at 127\.0\.0\.1:$W answers READONLY: asking where the master is again/
                ? "w answered READONLY: the sentinels are asked again\n"
          : /\[notice\] .*vodlms redis: sentinel:writes is now at 127\.0\.0\.1:$V \(was 127\.0\.0\.1:$W\)/
                ? "the pool moved from w to v\n"
          : ()
        } <$fh>;
    },
);
$ENV{TEST_NGINX_CTL_PORT} = $ctl_port;

block_defaults();

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('config', <<'EOF') unless defined $block->config;
    location = /t {
        vodlms_auth on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app;
    }
    location = /app { return 200 "app\n"; }
EOF
    $block->set_value('request', "GET /t\n") unless defined $block->request;
    $block->set_value('more_headers', "Cookie: session=t172-alice\n")
        unless defined $block->more_headers;
});

no_shuffle();
run_tests();

__DATA__

=== TEST 1: the master the sentinel names, with the sentinel's password and the master's (the first request waits for the answer: no 503; nginx knows Redis only through the sentinel)
--- http_config
    vodlms_redis sentinel:mymaster password=m-pw;
    vodlms_redis_sentinel 127.0.0.1:$TEST_NGINX_S1_PORT password=s-pw;
--- response_body
app
--- no_error_log
[error]
[alert]



=== TEST 2: a sentinel that is down and one that does not know the master are passed over
--- http_config
    vodlms_redis sentinel:mymaster password=m-pw;
    vodlms_redis_sentinel 127.0.0.1:$TEST_NGINX_DEAD_PORT 127.0.0.1:$TEST_NGINX_S2_PORT
                          127.0.0.1:$TEST_NGINX_S1_PORT password=s-pw;
--- response_body
app
--- error_log eval
[qr/vodlms: sentinel 127\.0\.0\.1:$ENV{TEST_NGINX_DEAD_PORT} connect failed: Connection refused, asking the next sentinel/,
 qr/vodlms: sentinel 127\.0\.0\.1:$ENV{TEST_NGINX_S2_PORT} does not know master "mymaster", asking the next sentinel/]
--- no_error_log
[error]
[alert]



=== TEST 3: no sentinel names the master: 503 at once, and the log says why
--- http_config
    vodlms_redis sentinel:mymaster password=m-pw;
    vodlms_redis_sentinel 127.0.0.1:$TEST_NGINX_DEAD_PORT;
--- error_code: 503
--- response_body
{"error":"backend_unavailable","message":"session store unavailable"}
--- error_log eval
qr/\[error\] .*vodlms: session store unavailable: redis sentinel:mymaster: no sentinel named the master \(last: sentinel 127\.0\.0\.1:\d+ connect failed: Connection refused\), answering 503/
--- no_error_log
[alert]
[crit]



=== TEST 4: a wrong sentinel password: 503, and the log says the sentinel refused AUTH
--- http_config
    vodlms_redis sentinel:mymaster password=m-pw;
    vodlms_redis_sentinel 127.0.0.1:$TEST_NGINX_S1_PORT password=nope;
--- error_code: 503
--- error_log eval
qr/\[error\] .*vodlms: session store unavailable: redis sentinel:mymaster: no sentinel named the master \(last: sentinel 127\.0\.0\.1:\d+ AUTH rejected: WRONGPASS/
--- no_error_log
[alert]
[crit]



=== TEST 5: a server the sentinel still names but that answers ROLE as a replica is never asked (it may hold old data): 503, and the sentinels are asked again
--- http_config
    vodlms_redis sentinel:stale;
    vodlms_redis_sentinel 127.0.0.1:$TEST_NGINX_S3_PORT;
--- error_code: 503
--- response_body
{"error":"backend_unavailable","message":"session store unavailable"}
--- error_log eval
[qr/\[info\] .*vodlms redis: sentinel:stale at 127\.0\.0\.1:\d+ answers ROLE "slave", not "master": asking the sentinels again/,
 qr/\[error\] .*vodlms: session store unavailable: redis sentinel:stale (at 127\.0\.0\.1:\d+ is not the master \(ROLE\)|is down \(\d+ failed attempts\))/]
--- no_error_log
[alert]
[crit]



=== TEST 6: a silent sentinel costs the waiting request its own timeout (503 backend_timeout), no more
--- http_config
    vodlms_redis sentinel:mymaster password=m-pw timeout=300ms;
    vodlms_redis_sentinel 127.0.0.1:$TEST_NGINX_BLACKHOLE_PORT;
--- error_code: 503
--- response_body
{"error":"backend_timeout","message":"session store timed out"}
--- error_log eval
qr/\[error\] .*vodlms: session store timed out: redis sentinel:mymaster: no address after 300 ms \(still asking\), answering 503/
--- no_error_log
[alert]
[crit]



=== TEST 7: a master demoted under nginx's feet answers an upload's write READONLY: 503 for that upload, the sentinels are asked again, and the next upload is queued on the master they name now
--- http_config
    vodlms_redis sentinel:writes;
    vodlms_redis_sentinel 127.0.0.1:$TEST_NGINX_S4_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
--- config
    location ~ ^/api/videos/(?<vid>[A-Za-z0-9_-]+)/upload$ {
        vodlms_auth on;
        vodlms_session_role_field role;
        vodlms_auth_require_role instructor;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_enrollment_query "SELECT 1 AS teaches FROM vodlms.course_instructors WHERE course_id = $1 AND user_id = $2" $arg_course $vodlms_user_id;
        vodlms_enrollment_no_row 403;
        vodlms_upload on;
        vodlms_upload_course $arg_course;
        vodlms_upload_spool $TEST_NGINX_SPOOL;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- pipelined_requests eval
["POST /api/videos/t172-up-1/upload?course=course-intro\nweek 1",
 "GET /ctl/demote",
 "POST /api/videos/t172-up-2/upload?course=course-intro\nweek 2",
 "POST /api/videos/t172-up-2/upload?course=course-intro\nweek 2, again",
 "GET /ctl/jobs",
 "GET /ctl/log"]
--- more_headers
Cookie: session=t172-carol
--- error_code eval
[202, 200, 503, 202, 200, 200]
--- response_body eval
["{\"videoId\":\"t172-up-1\",\"status\":\"queued\"}\n",
 "w is a replica of v, the sentinel names v\n",
 "{\"error\":\"backend_unavailable\",\"message\":\"session store unavailable\"}\n",
 "{\"videoId\":\"t172-up-2\",\"status\":\"queued\"}\n",
 "v: t172-up-2\nw: t172-up-2\n",
 "w answered READONLY: the sentinels are asked again\nthe pool moved from w to v\n"]
--- no_error_log
[alert]
[crit]
--- timeout: 15
