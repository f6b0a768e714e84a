# Watch progress: beacons accepted in nginx (204 at once), buffered in
# shared memory, written to PostgreSQL in ONE statement per flush; resume
# from the buffer or the database; nothing acknowledged is lost when
# PostgreSQL is down, on reload, or when a worker is killed.
#
# A private PostgreSQL logs every statement, so "one upsert for many
# beacons" is proven from PostgreSQL itself.  Waits are conditions (rows in
# the database, lines in a log), polled by the control server.

use FindBin;
use lib "$FindBin::Bin/lib";
use VodlmsTest;
use IO::Socket::INET;
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_REDIS_PORT} ||= 6379;
my $r = $ENV{TEST_NGINX_REDIS_PORT};
for my $u (['alice', 1001], ['bob', 1002], ['carol', 1003], ['erin', 1005],
           ['gina', 1100], ['hank', 1101], ['ivy', 1102], ['jill', 1103]) {
    redis_cmd($r, 'SET', "session:t100-$u->[0]", qq({"user_id":"$u->[1]"}), 'EX', 3600);
}

my $vectors = $ENV{VODLMS_VECTORS_DIR} || "$FindBin::Bin/../../shared/vectors/cloudfront";
$ENV{TEST_NGINX_CF_KEY} = private_key("$vectors/test_private_key.pem");

my $pg = start_pg(log_statements => 1);
$ENV{TEST_NGINX_PRIVATE_PG} = $pg->conninfo;

# carol has watched intro-ready before, on another node: 77 s
$pg->psql(q{INSERT INTO vodlms.watch_progress (user_id, video_id, position_seconds, max_position_seconds, duration_seconds)
            VALUES ('1003', 'intro-ready', 77, 90, 634.5)});
# gina, hank, ivy: enrolled, never watched (no watch_progress row); each
# one is used by one block only, since a block's beacons reach PostgreSQL
# when its nginx stops
for my $u (['1100', 'gina'], ['1101', 'hank'], ['1102', 'ivy'], ['1103', 'jill']) {
    $pg->psql(qq{INSERT INTO vodlms.users (id, email, role) VALUES ('$u->[0]', '$u->[1]\@example.com', 'student')});
    $pg->psql(qq{INSERT INTO vodlms.enrollments (user_id, course_id, status) VALUES ('$u->[0]', 'course-intro', 'active')});
}

my $servroot = $ENV{TEST_NGINX_SERVROOT} || "$FindBin::Bin/servroot";

sub wait_until {
    my ($what, $cond) = @_;
    for (1 .. 500) {
        my $v = eval { $cond->() };
        return $v if $v;
        select undef, undef, undef, 0.02;
    }
    return "timed out waiting for $what\n";
}

sub upserts { scalar grep { /INSERT INTO "vodlms"\.watch_progress AS wp/ } do {
    open my $fh, '<', $pg->log_file or return 0; <$fh> } }

my $mark = 0;

# one chunk of a chunked body
sub chunk { sprintf "%x\r\n%s\r\n", length $_[0], $_[0] }

sub row {
    my ($user) = @_;
    $pg->psql("SELECT position_seconds || ' ' || max_position_seconds || ' '"
            . " || watched_seconds || ' ' || (completed_at IS NOT NULL)"
            . " FROM vodlms.watch_progress WHERE user_id = '$user' AND video_id = 'intro-ready'");
}

# a viewer that keeps opening entries (videos v1, v2, ...) until refused
sub post_beacon {
    my ($video) = @_;
    my $body = qq({"videoId":"$video","currentTime":1,"duration":60});
    my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ENV{TEST_NGINX_SERVER_PORT},
                                  Timeout => 10) or return (0, '');
    print $c "POST /api/videos/$video/progress HTTP/1.0\r\nHost: localhost\r\n"
           . "Cookie: session=t100-alice\r\nContent-Length: " . length($body)
           . "\r\n\r\n$body";
    local $/;
    my $resp = <$c> // '';
    my ($code) = $resp =~ m{^HTTP/1\.\d (\d+)};
    my (undef, $b) = split /\r\n\r\n/, $resp, 2;
    return ($code // 0, $b // '');
}

my ($ctl_port, $ctl) = control_server(
    '/fill' => sub {
        for my $i (1 .. 5000) {
            my ($code, $body) = post_beacon("v$i");
            next if $code == 204;
            return "accepted " . ($i - 1) . ", then $code $body";
        }
        "never refused\n";
    },
    '/again' => sub { my ($code) = post_beacon('v1'); "v1 again: $code\n" },
    '/pg/stop'  => sub { $pg->stop; "stopped\n" },
    '/pg/start' => sub { $pg->start; "started\n" },
    '/mark'     => sub { $mark = upserts(); "marked\n" },
    # the upserts since the mark, once alice's row shows position 600
    '/upserts-after-flush' => sub {
        my $ok = wait_until('the flush', sub { row('1001') =~ /^600\.000 / });
        return $ok if $ok =~ /^timed out/;
        (upserts() - $mark) . " upsert(s): " . row('1001') . "\n";
    },
    '/row/alice' => sub {
        wait_until('alice\'s row', sub { my $v = row('1001'); $v ne '' ? "$v\n" : undef });
    },
    '/row/erin'  => sub {
        wait_until('erin\'s row', sub { my $v = row('1005'); $v =~ /^420\.000 / ? "$v\n" : undef });
    },
    # a failed flush, as nginx logs it
    '/failed-flush' => sub {
        wait_until('a failed flush', sub {
            open my $fh, '<', "$servroot/logs/error.log" or return;
            (grep { /vodlms progress: flush of \d+ entries failed, kept for the next try/ } <$fh>)
                ? "a flush failed\n" : undef;
        });
    },
    '/kill-worker' => sub {
        my ($path, $query) = @_;
        my ($pid) = ($query // '') =~ /pid=(\d+)/ or return "no pid\n";
        kill 'KILL', $pid;
        wait_until('the worker to die', sub { !kill(0, $pid) ? "killed\n" : undef });
    },
    '/reload' => sub {
        open my $fh, '<', "$servroot/logs/nginx.pid" or return "no pid file\n";
        my $master = <$fh>;
        chomp $master;
        kill 'HUP', $master;
        "reloaded\n";
    },
);
$ENV{TEST_NGINX_CTL_PORT} = $ctl_port;

# every block loads the module, and has these http{} lines unless it has its own
block_defaults(http_config => <<'EOF');
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
    vodlms_progress_zone zone=progress:1m flush=1h;
EOF

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a beacon is acknowledged at once with 204
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/progress$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_progress on;
    }
--- request
POST /api/videos/intro-ready/progress
{"videoId":"intro-ready","currentTime":12.5,"duration":634.5,"event":"tick"}
--- more_headers
Cookie: session=t100-alice
Content-Type: application/json
--- error_code: 204
--- response_body
--- no_error_log
[error]



=== TEST 2: every invalid beacon is a 400 with its reason, and changes nothing
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/progress$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_progress on;
    }
--- request eval
[
 "POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",",
 "POST /api/videos/intro-ready/progress\n[1,2,3]",
 "POST /api/videos/intro-ready/progress\n{\"currentTime\":1,\"duration\":9}",
 "POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-queued\",\"currentTime\":1,\"duration\":9}",
 "POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",\"currentTime\":-1,\"duration\":9}",
 "POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",\"currentTime\":99,\"duration\":9}",
 "POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",\"currentTime\":1e999,\"duration\":9}",
 "POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",\"currentTime\":\"1\",\"duration\":9}",
 "POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",\"currentTime\":1,\"duration\":0}",
 "POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",\"currentTime\":1,\"duration\":9,\"event\":\"seek\"}",
 "POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",\"currentTime\":1,\"duration\":9,\"pad\":\"" . ("x" x 1100) . "\"}",
 "GET /api/videos/intro-ready/progress",
]
--- more_headers
Cookie: session=t100-alice
--- error_code eval
[400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 200]
--- response_body_like eval
[qr/"reason":"malformed_json"/, qr/"reason":"malformed_json"/,
 qr/"reason":"bad_video_id"/, qr/"reason":"video_mismatch"/,
 qr/"reason":"position_out_of_range"/, qr/"reason":"position_out_of_range"/,
 qr/"reason":"malformed_json"/, qr/"reason":"bad_current_time"/,
 qr/"reason":"bad_duration"/, qr/"reason":"bad_event"/,
 qr/"reason":"body_too_large"/,
 qr/^\{"videoId":"intro-ready","position":0\.000,"duration":634\.500,"completed":false\}$/]



=== TEST 3: sendBeacon bodies: text/plain, a Blob with no type, and JSON are all beacons
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/progress$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_progress on;
    }
--- request eval
["POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",\"currentTime\":5,\"duration\":634.5,\"event\":\"pause\"}",
 "POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",\"currentTime\":6,\"duration\":634.5}",
 "POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",\"currentTime\":7,\"duration\":634.5}"]
--- more_headers eval
["Cookie: session=t100-alice\nContent-Type: text/plain;charset=UTF-8",
 "Cookie: session=t100-alice",
 "Cookie: session=t100-alice\nContent-Type: application/json"]
--- error_code eval
[204, 204, 204]



=== TEST 4: a valid session and enrollment are required; an unknown video is 404
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/progress$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_progress on;
    }
--- request eval
["POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",\"currentTime\":5,\"duration\":634.5}",
 "POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",\"currentTime\":5,\"duration\":634.5}",
 "POST /api/videos/nope/progress\n{\"videoId\":\"nope\",\"currentTime\":5,\"duration\":634.5}"]
--- more_headers eval
["", "Cookie: session=t100-bob", "Cookie: session=t100-alice"]
--- error_code eval
[401, 403, 404]



=== TEST 5: resume via GET and via the playback JSON: from the buffer when this node has it
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/progress$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_progress on;
    }
    location ~ ^/api/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_cloudfront_url https://cdn.example.test;
        vodlms_cloudfront_key K2JCJMDEHXQW5F $TEST_NGINX_CF_KEY;
        vodlms_playback cookies;
    }
--- request eval
["POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",\"currentTime\":320,\"duration\":634.5}",
 "GET /api/videos/intro-ready/progress",
 "GET /api/videos/intro-ready/stream"]
--- more_headers eval
[("Cookie: session=t100-alice") x 3]
--- error_code eval
[204, 200, 200]
--- response_body_like eval
[qr/^$/, qr/^\{"videoId":"intro-ready","position":320\.000,"duration":634\.500,"completed":false\}$/,
 qr/"resumeAt":320[,}]/]



=== TEST 5b: a beacon whose body arrives in pieces, with a length or chunked, is the same beacon; an empty body, either way, is malformed
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/progress$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_progress on;
        vodlms_progress_rate off;
    }
--- request eval
[["POST /api/videos/intro-ready/progress\n{\"videoId\":\"int",
  {value => "ro-ready\",\"currentTime\":32", delay_before => 0.05},
  {value => "1,\"duration\":634.5}", delay_before => 0.05}],
 "GET /api/videos/intro-ready/progress",
 ["POST /api/videos/intro-ready/progress\n" . main::chunk('{"videoId":"int'),
  {value => main::chunk('ro-ready","currentTime":32'), delay_before => 0.05},
  {value => main::chunk('2.25,"duration":634.5}') . "0\r\n\r\n", delay_before => 0.05}],
 "GET /api/videos/intro-ready/progress",
 "POST /api/videos/intro-ready/progress",
 "POST /api/videos/intro-ready/progress\n0\r\n\r\n",
 "GET /api/videos/intro-ready/progress"]
--- more_headers eval
["Cookie: session=t100-jill", "Cookie: session=t100-jill",
 "Cookie: session=t100-jill\nTransfer-Encoding: chunked", "Cookie: session=t100-jill",
 "Cookie: session=t100-jill\nContent-Length: 0",
 "Cookie: session=t100-jill\nTransfer-Encoding: chunked", "Cookie: session=t100-jill"]
--- error_code eval
[204, 200, 204, 200, 400, 400, 200]
--- response_body_like eval
[qr/^$/,
 qr/^\{"videoId":"intro-ready","position":321\.000,"duration":634\.500,"completed":false\}$/,
 qr/^$/,
 qr/^\{"videoId":"intro-ready","position":322\.250,"duration":634\.500,"completed":false\}$/,
 qr/"reason":"malformed_json"/, qr/"reason":"malformed_json"/,
 qr/^\{"videoId":"intro-ready","position":322\.250,"duration":634\.500,"completed":false\}$/]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 6: resume from PostgreSQL when this node has no beacon for it
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/progress$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_progress on;
    }
--- request
GET /api/videos/intro-ready/progress
--- more_headers
Cookie: session=t100-carol
--- response_body
{"videoId":"intro-ready","position":77.000,"duration":634.500,"completed":false}



=== TEST 7: past vodlms_progress_rate, 429; below it, beacons are coalesced in the buffer
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/progress$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_progress on;
        vodlms_progress_rate 3r/m;
    }
--- request eval
["POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",\"currentTime\":1,\"duration\":634.5}",
 "POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",\"currentTime\":2,\"duration\":634.5}",
 "POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",\"currentTime\":3,\"duration\":634.5}",
 "POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",\"currentTime\":4,\"duration\":634.5}",
 "GET /api/videos/intro-ready/progress"]
--- more_headers eval
[("Cookie: session=t100-alice") x 5]
--- error_code eval
[204, 204, 204, 429, 200]
--- response_body_like eval
[qr/^$/, qr/^$/, qr/^$/, qr/"error":"too_many_beacons"/, qr/"position":3\.000/]



=== TEST 8: many beacons, one flush, exactly one upsert (counted in PostgreSQL's log); a 500 s jump in ms is not 500 s watched, nor a completion at 600 of 634.5 s
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
    vodlms_progress_zone zone=progress:1m flush=2s;
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/progress$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_progress on;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- request eval
["GET /ctl/mark",
 (map { "POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",\"currentTime\":$_,\"duration\":634.5}" } (100, 200, 300, 400, 500, 600)),
 (map { "POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",\"currentTime\":$_,\"duration\":634.5}" } (210, 420)),
 "GET /ctl/upserts-after-flush"]
--- more_headers eval
["", ("Cookie: session=t100-alice") x 6, ("Cookie: session=t100-erin") x 2, ""]
--- error_code eval
[200, (204) x 8, 200]
--- response_body_like eval
[qr/^marked$/, (qr/^$/) x 8,
 qr/^1 upsert\(s\): 600\.000 600\.000 0\.\d+ false$/]
--- timeout: 20



=== TEST 9: PostgreSQL down during flushes, then up: every acknowledged beacon arrives
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
    vodlms_progress_zone zone=progress:1m flush=300ms;
    vodlms_cache_zone zone=answers:1m;
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/progress$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_enrollment_cache answers valid=1m;
        vodlms_progress on;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- request eval
["GET /api/videos/intro-ready/progress",
 "GET /ctl/pg/stop",
 "POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",\"currentTime\":100,\"duration\":634.5}",
 "POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",\"currentTime\":420,\"duration\":634.5}",
 "GET /ctl/failed-flush",
 "GET /ctl/pg/start",
 "GET /ctl/row/erin"]
--- more_headers eval
["Cookie: session=t100-erin", "", "Cookie: session=t100-erin", "Cookie: session=t100-erin", "", "", ""]
--- error_code eval
[200, 200, 204, 204, 200, 200, 200]
--- response_body_like eval
[qr/"videoId":"intro-ready"/, qr/^stopped$/, qr/^$/, qr/^$/,
 qr/^a flush failed$/, qr/^started$/, qr/^420\.000 420\.000 [\d.]+ false$/]
--- timeout: 30



=== TEST 10: anti-skip, refuse: a jump far past the highest position is a 400 and changes nothing
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/progress$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_progress on;
        vodlms_progress_skip 30s refuse;
    }
--- request eval
["POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",\"currentTime\":10,\"duration\":634.5}",
 "POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",\"currentTime\":35,\"duration\":634.5}",
 "POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",\"currentTime\":600,\"duration\":634.5,\"event\":\"ended\"}",
 "GET /api/videos/intro-ready/progress"]
--- more_headers eval
[("Cookie: session=t100-hank") x 4]
--- error_code eval
[204, 204, 400, 200]
--- response_body_like eval
[qr/^$/, qr/^$/, qr/"reason":"skip_ahead"/, qr/"position":35\.000,.*"completed":false/]



=== TEST 11: anti-skip, flag: the jump is kept as the position, but completion cannot be skipped to
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/progress$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_progress on;
        vodlms_progress_skip 30s flag;
    }
--- request eval
["POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",\"currentTime\":10,\"duration\":634.5}",
 "POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",\"currentTime\":630,\"duration\":634.5,\"event\":\"ended\"}",
 "GET /api/videos/intro-ready/progress"]
--- more_headers eval
[("Cookie: session=t100-ivy") x 3]
--- error_code eval
[204, 204, 200]
--- response_body_like eval
[qr/^$/, qr/^$/, qr/"position":630\.000,.*"completed":false/]



=== TEST 11b: the player's word is not enough: the video's own duration decides completion, and a first beacon is checked against the database's highest position
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/progress$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_progress on;
        vodlms_progress_skip 30s refuse;
    }
--- request eval
# carol has watched to 90 s (in PostgreSQL); gina never started
["POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",\"currentTime\":110,\"duration\":115}",
 "GET /api/videos/intro-ready/progress",
 "POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",\"currentTime\":700,\"duration\":1000}",
 "POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",\"currentTime\":630,\"duration\":634.5,\"event\":\"ended\"}",
 "GET /api/videos/intro-ready/progress"]
--- more_headers eval
["Cookie: session=t100-carol", "Cookie: session=t100-carol", "Cookie: session=t100-carol",
 "Cookie: session=t100-gina", "Cookie: session=t100-gina"]
--- error_code eval
[204, 200, 400, 400, 200]
--- response_body_like eval
[qr/^$/,
 qr/^\{"videoId":"intro-ready","position":110\.000,"duration":634\.500,"completed":false\}$/,
 qr/"reason":"position_out_of_range"/,
 qr/"reason":"skip_ahead"/,
 qr/^\{"videoId":"intro-ready","position":0\.000,"duration":634\.500,"completed":false\}$/]



=== TEST 12: a full buffer refuses new entries with 503, never drops an acknowledged one
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
    vodlms_progress_zone zone=progress:32k flush=1h;
--- config
    # any video id is "enrolled" here, so the client can open many entries
    location ~ ^/api/videos/(?<vid>[^/]+)/progress$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_enrollment_query "SELECT $1::text AS id" $vodlms_video_id;
        vodlms_progress on;
        vodlms_progress_rate off;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- request eval
["GET /ctl/fill", "GET /ctl/again"]
--- response_body_like eval
[qr/^accepted \d{2,}, then 503 \{"error":"progress_buffer_full","message":"progress buffer full"\}$/,
 qr/^v1 again: 204$/]
--- timeout: 60
