# What one client can cost the others (issue #18): a per-user limit on the
# queries the module sends for a user (vodlms_user_query_zone/_limit),
# "no such video" cached per video for everyone, and denial log lines
# limited per client address and outcome (vodlms_denial_log_limit/_level).
#
# PostgreSQL logs every statement here, so "how many queries ran" is read
# from its log, not guessed.  Each user is chosen by the path: /as/<token>/
# sets "Authorization: Bearer <token>" on the way to the gated location.
#
# Seed (sql/seed/demo.sql): 1001 alice is enrolled in intro-ready's course,
# 1002 bob is not; intro-queued is not ready.

use FindBin;
use lib "$FindBin::Bin/lib";
use VodlmsTest;
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_REDIS_PORT} ||= 6379;
my $r = $ENV{TEST_NGINX_REDIS_PORT};

for my $u (['alice', 1001], ['bob', 1002]) {
    redis_cmd($r, 'SET', "session:t062-$u->[0]", qq({"user_id":"$u->[1]"}), 'EX', 3600);
}

my $vectors = $ENV{VODLMS_VECTORS_DIR} || "$FindBin::Bin/../../shared/vectors/cloudfront";
$ENV{TEST_NGINX_CF_PUBKEY} = "$vectors/test_public_key.pem";

my $pg = start_pg(log_statements => 1);
$ENV{TEST_NGINX_PRIVATE_PG} = $pg->conninfo;

my $servroot = $ENV{TEST_NGINX_SERVROOT} || "$FindBin::Bin/servroot";
my %mark;

sub pg_log_count {
    open my $fh, '<', $pg->log_file or return 0;
    return scalar grep { /LOG:  execute vodlms_q/ } <$fh>;
}

# every "no session" denial in error.log: logged as a line, or counted in
# a later line's "(N more like it not logged)"; and the most lines logged
# in any one second (the log's timestamps are nginx's own seconds)
sub denial_lines {
    open my $fh, '<', "$servroot/logs/error.log" or return "no error.log\n";
    my ($lines, $counted, %per_sec) = (0, 0);
    while (<$fh>) {
        next unless /vodlms: no session token in the request/;
        $lines++;
        $per_sec{substr $_, 0, 19}++;
        $counted += $1 if /\((\d+) more like it not logged\)/;
    }
    my ($most) = sort { $b <=> $a } values %per_sec;
    return ($lines + $counted) . " denials accounted for, "
         . ($most // 0) . " lines at most in a second\n";
}

my ($ctl_port, $ctl) = control_server(
    '/pg/mark' => sub { $mark{pg} = pg_log_count(); "marked\n" },
    '/pg/queries' => sub { (pg_log_count() - $mark{pg}) . " enrollment queries since the mark\n" },
    # into the next second of the clock nginx logs by
    '/next-second' => sub { select undef, undef, undef, 1.1; "later\n" },
    '/log/denials' => sub { denial_lines() },
    # warnings are never held back: every refused path trick is a line
    '/log/badpath' => sub {
        open my $fh, '<', "$servroot/logs/error.log" or return "no error.log\n";
        my $n = grep { /\[warn\].*vodlms: edge request path refused/ } <$fh>;
        "$n path lines\n";
    },
    # the line each refusal logs, with the user it refused
    '/log/refusals' => sub {
        open my $fh, '<', "$servroot/logs/error.log" or return "no error.log\n";
        my @l = grep { /\[info\] .*vodlms: too many database queries for this user, try again later: user "(\d+)" over the query rate, answering 429/ } <$fh>;
        my %who = map { /user "(\d+)"/; ($1 => 1) } @l;
        scalar(@l) . " refusals logged at info, for user " . join(',', sort keys %who) . "\n";
    },
);
$ENV{TEST_NGINX_CTL_PORT} = $ctl_port;

our $http_config = <<'EOF';
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
    vodlms_cache_zone zone=answers:1m;
EOF

our $as_user = <<'EOF';
    location ~ ^/as/(?<who>[^/]+)(?<rest>/.*)$ {
        proxy_set_header Authorization "Bearer $who";
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT$rest;
    }
    location /app/ { return 200 "app\n"; }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
EOF

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('main_config', "    load_module \$TEST_NGINX_MODULE_PATH;\n")
        unless defined $block->main_config;
    $block->set_value('http_config', $http_config . ($block->http_config // ''));
    $block->set_value('config', $as_user . ($block->config // ''));
});

our $nf = qq({"error":"video_not_found","message":"no such video"}\n);
our $tmq = qq({"error":"too_many_queries","message":"too many database queries for this user, try again later"}\n);

no_shuffle();
run_tests();

__DATA__

=== TEST 1: one student's flood of made-up video ids: 429 after the burst, no query sent; another student still gets a query and the normal answer
--- http_config
    vodlms_user_query_zone zone=users:1m rate=1r/m;
--- config
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_enrollment_cache answers valid=1m invalid=1m;
        vodlms_user_query_limit zone=users burst=3;
        add_header X-Cache $vodlms_enrollment_cache always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
--- pipelined_requests eval
["GET /ctl/pg/mark",
 (map { "GET /as/t062-bob/videos/made-up-$_/meta" } 1 .. 8),
 "GET /as/t062-alice/videos/intro-ready/meta",
 "GET /ctl/pg/queries", "GET /ctl/log/refusals"]
--- error_code eval
[200, 404, 404, 404, 404, 429, 429, 429, 429, 200, 200, 200]
--- response_body eval
["marked\n", ($main::nf) x 4, ($main::tmq) x 4, "app\n",
 "5 enrollment queries since the mark\n",
 "4 refusals logged at info, for user 1002\n"]
--- response_headers eval
["", ("X-Cache: MISS") x 4, ("Retry-After: 60") x 4, "X-Cache: MISS", "", ""]
--- no_error_log
[error]



=== TEST 2: answers from the cache are free: only a query that goes out counts
--- http_config
    vodlms_user_query_zone zone=users:1m rate=1r/m;
--- config
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_enrollment_cache answers valid=1m invalid=1m;
        vodlms_user_query_limit zone=users;
        add_header X-Cache $vodlms_enrollment_cache always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
--- pipelined_requests eval
["GET /as/t062-alice/videos/intro-ready/meta",
 "GET /as/t062-alice/videos/intro-ready/meta",
 "GET /as/t062-alice/videos/intro-ready/meta",
 "GET /as/t062-alice/videos/intro-queued/meta"]
--- error_code eval
[200, 200, 200, 429]
--- response_headers eval
["X-Cache: MISS", "X-Cache: HIT", "X-Cache: HIT", "X-Cache: MISS"]
--- no_error_log
[error]



=== TEST 3: "no such video" is cached per video: a second user's 404 for the same id sends no query
--- config
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_enrollment_cache answers valid=1m invalid=1m;
        add_header X-Cache $vodlms_enrollment_cache always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
--- pipelined_requests eval
["GET /ctl/pg/mark",
 "GET /as/t062-bob/videos/gone-1/meta",
 "GET /as/t062-alice/videos/gone-1/meta",
 "GET /as/t062-alice/videos/intro-ready/meta",
 "GET /ctl/pg/queries"]
--- error_code eval
[200, 404, 404, 200, 200]
--- response_body eval
["marked\n", $main::nf, $main::nf, "app\n", "2 enrollment queries since the mark\n"]
--- response_headers eval
["", "X-Cache: MISS", "X-Cache: HIT", "X-Cache: MISS", ""]
--- no_error_log
[error]



=== TEST 4: with vodlms_enrollment_no_row 403 "no row" may depend on the user: never shared
--- config
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_enrollment_query "SELECT v.title FROM vodlms.videos v JOIN vodlms.enrollments e ON e.course_id = v.course_id WHERE v.id = $1 AND e.user_id = $2 AND e.status = 'active'" $vodlms_video_id $vodlms_user_id;
        vodlms_enrollment_no_row 403;
        vodlms_enrollment_cache answers valid=1m invalid=1m;
        add_header X-Cache $vodlms_enrollment_cache always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
--- pipelined_requests eval
["GET /ctl/pg/mark",
 "GET /as/t062-bob/videos/intro-ready/meta",
 "GET /as/t062-alice/videos/intro-ready/meta",
 "GET /as/t062-bob/videos/intro-ready/meta",
 "GET /ctl/pg/queries"]
--- error_code eval
[200, 403, 200, 403, 200]
--- response_headers eval
["", "X-Cache: MISS", "X-Cache: MISS", "X-Cache: HIT", ""]
--- response_body eval
["marked\n",
 "{\"error\":\"not_enrolled\",\"message\":\"the user is not enrolled in the video's course\"}\n",
 "app\n",
 "{\"error\":\"not_enrolled\",\"message\":\"the user is not enrolled in the video's course\"}\n",
 "2 enrollment queries since the mark\n"]
--- no_error_log
[error]



=== TEST 4b: no_row 404 with a query that also takes the user: "no row" stays per user
The query joins on the enrollment, so its "no row" means "not enrolled".
Shared per video, bob's 404 would answer alice's request for the same
video from the cache: one student could make a lecture 404 for everyone.
--- config
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_enrollment_query "SELECT v.title FROM vodlms.videos v JOIN vodlms.enrollments e ON e.course_id = v.course_id WHERE v.id = $1 AND e.user_id = $2 AND e.status = 'active'" $vodlms_video_id $vodlms_user_id;
        vodlms_enrollment_cache answers valid=1m invalid=1m;
        add_header X-Cache $vodlms_enrollment_cache always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
--- pipelined_requests eval
["GET /ctl/pg/mark",
 "GET /as/t062-bob/videos/intro-ready/meta",
 "GET /as/t062-alice/videos/intro-ready/meta",
 "GET /as/t062-bob/videos/intro-ready/meta",
 "GET /ctl/pg/queries"]
--- error_code eval
[200, 404, 200, 404, 200]
--- response_headers eval
["", "X-Cache: MISS", "X-Cache: MISS", "X-Cache: HIT", ""]
--- response_body eval
["marked\n", $main::nf, "app\n", $main::nf,
 "2 enrollment queries since the mark\n"]
--- no_error_log
[error]



=== TEST 4c: a query whose one parameter is the video id: "no row" is shared
--- config
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_enrollment_query "SELECT v.title FROM vodlms.videos v WHERE v.id = $1" $vodlms_video_id;
        vodlms_enrollment_cache answers valid=1m invalid=1m;
        add_header X-Cache $vodlms_enrollment_cache always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
--- pipelined_requests eval
["GET /ctl/pg/mark",
 "GET /as/t062-bob/videos/gone-2/meta",
 "GET /as/t062-alice/videos/gone-2/meta",
 "GET /ctl/pg/queries"]
--- error_code eval
[200, 404, 404, 200]
--- response_headers eval
["", "X-Cache: MISS", "X-Cache: HIT", ""]
--- response_body eval
["marked\n", $main::nf, $main::nf, "1 enrollment queries since the mark\n"]
--- no_error_log
[error]



=== TEST 5: a flood of identical denials from one client: at most vodlms_denial_log_limit lines a second, the rest counted in the next line
--- http_config
    vodlms_denial_log_limit 3;
--- config
    location = /gated {
        vodlms_auth on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/;
    }
--- pipelined_requests eval
[("GET /gated") x 20, "GET /ctl/next-second", "GET /gated", "GET /ctl/log/denials"]
--- error_code eval
[(401) x 20, 200, 401, 200]
--- response_body eval
[("{\"error\":\"no_session\",\"message\":\"no session token in the request\"}\n") x 20,
 "later\n",
 "{\"error\":\"no_session\",\"message\":\"no session token in the request\"}\n",
 "21 denials accounted for, 3 lines at most in a second\n"]
--- timeout: 10
--- no_error_log
[error]



=== TEST 5b: the default is 10 lines a second: a flood of 25 writes 10, and the count
--- config
    location = /gated {
        vodlms_auth on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/;
    }
--- pipelined_requests eval
[("GET /gated") x 25, "GET /ctl/next-second", "GET /gated", "GET /ctl/log/denials"]
--- error_code eval
[(401) x 25, 200, 401, 200]
--- response_body eval
[("{\"error\":\"no_session\",\"message\":\"no session token in the request\"}\n") x 25,
 "later\n",
 "{\"error\":\"no_session\",\"message\":\"no session token in the request\"}\n",
 "26 denials accounted for, 10 lines at most in a second\n"]
--- timeout: 10
--- no_error_log
[error]



=== TEST 5c: warnings are not limited: 25 path tricks against the edge, 25 lines
--- config
    location /hls/ {
        vodlms_edge on;
        vodlms_edge_public_key K2JCJMDEHXQW5F $TEST_NGINX_CF_PUBKEY;
    }
--- pipelined_requests eval
[("GET /hls/v1/%2e%2e/secret.ts") x 25, "GET /ctl/log/badpath"]
--- error_code eval
[(400) x 25, 200]
--- response_body_like eval
[('"error":"bad_path"') x 25, "^25 path lines\n\$"]
--- timeout: 10



=== TEST 6: vodlms_denial_log_level: the client's own mistakes at the operator's level
--- http_config
    vodlms_denial_log_level warn;
--- config
    location = /gated {
        vodlms_auth on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/;
    }
--- request
GET /gated
--- error_code: 401
--- error_log eval
qr/\[warn\] .*vodlms: no session token in the request, answering 401/
--- no_error_log eval
qr/\[info\] .*vodlms: no session token/
