# One uploader must not fill the spool or the queue for everyone (issue
# #18).  The job names its uploader (the helpers take turns by it), and
# vodlms_upload_quota bounds, per uploader and before a byte of the body is
# read, the spooled bytes waiting for transcoding (413) and the uploads in
# progress (429 with Retry-After).  A refused upload changes nothing: no
# row, no spooled file, no job, no bytes counted.
#
# The control server looks at the state itself: the row in PostgreSQL, the
# jobs (XRANGE) and the quota keys in Redis, the files in the spool.

use FindBin;
use lib "$FindBin::Bin/lib";
use VodlmsTest;
use File::Temp qw(tempdir);
use IO::Socket::INET ();
use Test::Nginx::Socket 'no_plan';

my $redis = start_redis();
$ENV{TEST_NGINX_PRIVATE_REDIS_PORT} = $redis->port;

sub sessions {
    $redis->cmd('SET', 'session:t111-carol', '{"user_id":"1003","role":"instructor"}', 'EX', 3600);
}
sessions();

my $pg = start_pg();
$ENV{TEST_NGINX_PRIVATE_PG} = $pg->conninfo;

# lectures the LMS created, waiting for their upload
$pg->psql(q{INSERT INTO vodlms.videos (id, course_id, title) VALUES } . join(', ',
    map { "('q-$_', 'course-intro', 'Week $_')" } 1 .. 8));

my $spool = tempdir('vodlms-spool-XXXXXX', TMPDIR => 1, CLEANUP => 1);
$ENV{TEST_NGINX_SPOOL} = $spool;

my $STREAM = 'vodlms:transcode';

sub state_of {
    my ($id) = @_;
    my $row = $pg->psql("SELECT status || ' ' || coalesce(source_location, '-')"
                      . " FROM vodlms.videos WHERE id = '$id'");
    my ($status, $src) = split / /, $row, 2;
    my $jobs = $redis->cmd('XRANGE', $STREAM, '-', '+');
    my @mine = grep { my %f = @{ $_->[1] }; $f{video_id} eq $id } @$jobs;
    my %job = @mine ? @{ $mine[-1][1] } : ();
    my @files = glob "$spool/*";
    return "row $status; jobs " . scalar(@mine)
         . (@mine ? "; owner $job{owner}" : '')
         . "; spool files " . scalar(@files) . "\n";
}

sub quota_of {
    my ($owner) = @_;
    my $h = $redis->cmd('HGETALL', "$STREAM:spool:$owner");
    my %h = @$h;
    my $bytes = 0;
    $bytes += $_ for values %h;
    my $leases = $redis->cmd('ZCARD', "$STREAM:uploading:$owner");
    my $named = grep { -f $_ } keys %h;
    return "spooled $bytes bytes in " . scalar(keys %h) . " file(s), $named on disk;"
         . " uploads in progress $leases\n";
}

my ($ctl_port, $ctl) = control_server(
    '/state'       => sub { my ($p, $q) = @_; my ($id) = $q =~ /id=([\w-]+)/; state_of($id) },
    '/quota'       => sub { my ($p, $q) = @_; my ($o) = $q =~ /owner=([\w-]+)/; quota_of($o) },
    # an upload of carol's in progress elsewhere (another worker, another node)
    '/busy'        => sub {
        $redis->cmd('ZADD', "$STREAM:uploading:1003", (time + 60) * 1000, 'elsewhere');
        "busy\n";
    },
    '/idle'        => sub { $redis->cmd('DEL', "$STREAM:uploading:1003"); "idle\n" },
    '/reset'       => sub {
        $redis->cmd('DEL', "$STREAM:spool:$_", "$STREAM:uploading:$_") for qw(1003 course-intro);
        "reset\n";
    },
    # an upload of carol's that the client abandons halfway: its lease is
    # taken, then given back when nginx sees the connection go
    '/abandon'     => sub {
        my $key = "$STREAM:uploading:1003";
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $ENV{TEST_NGINX_SERVER_PORT}) or return "connect: $!\n";
        print $s "POST /api/videos/q-6/upload?course=course-intro HTTP/1.1\r\nHost: localhost\r\n"
               . "Cookie: session=t111-carol\r\nContent-Length: 60000\r\n\r\nthe first bytes";
        my $held;
        for (1 .. 100) { $held = $redis->cmd('ZCARD', $key); last if $held; select undef, undef, undef, 0.05 }
        close $s;
        my $left;
        for (1 .. 100) { $left = $redis->cmd('ZCARD', $key); last if !$left; select undef, undef, undef, 0.05 }
        "held $held, then $left\n";
    },
    # an upload of carol's without a Content-Length (chunked): the status
    # line and the body of the answer
    '/chunked'     => sub {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $ENV{TEST_NGINX_SERVER_PORT}) or return "connect: $!\n";
        my $body = "c" x 5000;
        print $s "POST /api/videos/q-6/upload?course=course-intro HTTP/1.1\r\nHost: localhost\r\n"
               . "Cookie: session=t111-carol\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
               . sprintf("%x\r\n%s\r\n0\r\n\r\n", length $body, $body);
        my $answer = do { local $/; <$s> } // '';
        my ($status) = $answer =~ /^(HTTP\S+ \d+[^\r]*)\r\n/;
        my ($content) = $answer =~ /\r\n\r\n(.*)\z/s;
        ($status // 'no answer') . "\n" . ($content // '');
    },
    '/redis/stop'  => sub { $redis->stop; "stopped\n" },
    '/redis/start' => sub { $redis->start unless $redis->running; sessions(); "started\n" },
);
$ENV{TEST_NGINX_CTL_PORT} = $ctl_port;

our $Location = <<'CONF';
        client_max_body_size 64k;
        vodlms_auth on;
        vodlms_session_role_field role;
        vodlms_auth_require_role instructor admin;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_enrollment_query "SELECT 1 AS teaches FROM vodlms.course_instructors WHERE course_id = $1 AND user_id = $2" $arg_course $vodlms_user_id;
        vodlms_enrollment_no_row 403;
        vodlms_upload on;
        vodlms_upload_course $arg_course;
        vodlms_upload_spool $TEST_NGINX_SPOOL;
CONF

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('main_config', "    load_module \$TEST_NGINX_MODULE_PATH;\n")
        unless defined $block->main_config;
    $block->set_value('http_config', "    vodlms_redis 127.0.0.1:\$TEST_NGINX_PRIVATE_REDIS_PORT;\n"
                                   . "    vodlms_pg \"\$TEST_NGINX_PRIVATE_PG\";\n")
        unless defined $block->http_config;
    my $config = $block->config;
    $config =~ s/^\s*LOCATION\n/$Location/m;
    $block->set_value('config', $config
        . "    location /ctl/ { proxy_pass http://127.0.0.1:\$TEST_NGINX_CTL_PORT/; }\n");
});

no_shuffle();
run_tests();

__DATA__

=== TEST 1: the job names its uploader, whose turn it is among the helpers
--- config
    location ~ ^/api/videos/(?<vid>[A-Za-z0-9_-]+)/upload$ {
LOCATION
    }
--- request eval
["POST /api/videos/q-1/upload?course=course-intro\nten bytes!",
 "GET /ctl/state?id=q-1"]
--- more_headers eval
["Cookie: session=t111-carol", ""]
--- error_code eval
[202, 200]
--- response_body eval
["{\"videoId\":\"q-1\",\"status\":\"queued\"}\n",
 "row queued; jobs 1; owner 1003; spool files 1\n"]



=== TEST 2: vodlms_upload_owner makes the course the owner (fair turns by course)
--- config
    location ~ ^/api/videos/(?<vid>[A-Za-z0-9_-]+)/upload$ {
LOCATION
        vodlms_upload_owner $arg_course;
    }
--- request eval
["POST /api/videos/q-2/upload?course=course-intro\nbytes",
 "GET /ctl/state?id=q-2"]
--- more_headers eval
["Cookie: session=t111-carol", ""]
--- error_code eval
[202, 200]
--- response_body eval
["{\"videoId\":\"q-2\",\"status\":\"queued\"}\n",
 "row queued; jobs 1; owner course-intro; spool files 2\n"]



=== TEST 3: bytes=: the spooled bytes are counted with the job
--- config
    location ~ ^/api/videos/(?<vid>[A-Za-z0-9_-]+)/upload$ {
LOCATION
        vodlms_upload_quota bytes=100;
    }
--- request eval
["GET /ctl/reset",
 "POST /api/videos/q-3/upload?course=course-intro\n" . ("a" x 60),
 "GET /ctl/quota?owner=1003"]
--- more_headers eval
["", "Cookie: session=t111-carol", ""]
--- error_code eval
[200, 202, 200]
--- response_body eval
["reset\n",
 "{\"videoId\":\"q-3\",\"status\":\"queued\"}\n",
 "spooled 60 bytes in 1 file(s), 1 on disk; uploads in progress 0\n"]



=== TEST 4: bytes=: an upload that would pass them is 413, before its body is read
--- config
    location ~ ^/api/videos/(?<vid>[A-Za-z0-9_-]+)/upload$ {
LOCATION
        vodlms_upload_quota bytes=100;
    }
--- request eval
"POST /api/videos/q-4/upload?course=course-intro\n" . ("b" x 41)
--- more_headers
Cookie: session=t111-carol
--- error_code: 413
--- response_body
{"error":"upload_quota_exceeded","message":"the uploader's spooled bytes would pass the quota","quotaBytes":100,"usedBytes":60}
--- error_log
vodlms: the uploader's spooled bytes would pass the quota: vodlms:transcode:spool:1003 holds 60 bytes, 41 more would pass bytes=100, answering 413



=== TEST 5: the refused upload changed nothing; one that fits exactly is taken
--- config
    location ~ ^/api/videos/(?<vid>[A-Za-z0-9_-]+)/upload$ {
LOCATION
        vodlms_upload_quota bytes=100;
    }
--- request eval
["GET /ctl/state?id=q-4",
 "GET /ctl/quota?owner=1003",
 "POST /api/videos/q-4/upload?course=course-intro\n" . ("c" x 40),
 "GET /ctl/quota?owner=1003"]
--- more_headers eval
["", "", "Cookie: session=t111-carol", ""]
--- error_code eval
[200, 200, 202, 200]
--- response_body eval
["row queued; jobs 0; spool files 3\n",
 "spooled 60 bytes in 1 file(s), 1 on disk; uploads in progress 0\n",
 "{\"videoId\":\"q-4\",\"status\":\"queued\"}\n",
 "spooled 100 bytes in 2 file(s), 2 on disk; uploads in progress 0\n"]



=== TEST 6: concurrent=: an upload while another of the uploader's is in progress (on any worker or node) is 429 with Retry-After
--- config
    location ~ ^/api/videos/(?<vid>[A-Za-z0-9_-]+)/upload$ {
LOCATION
        vodlms_upload_quota concurrent=1 retry=20s;
    }
--- request eval
["GET /ctl/busy",
 "POST /api/videos/q-5/upload?course=course-intro\nwhile busy"]
--- more_headers eval
["", "Cookie: session=t111-carol"]
--- error_code eval
[200, 429]
--- response_body eval
["busy\n",
 "{\"error\":\"too_many_uploads\",\"message\":\"the uploader has too many uploads in progress\",\"concurrent\":1,\"retryAfter\":20}\n"]
--- response_headers eval
["", "Retry-After: 20\nCache-Control: no-store"]



=== TEST 7: the 429 is logged, at info
--- config
    location ~ ^/api/videos/(?<vid>[A-Za-z0-9_-]+)/upload$ {
LOCATION
        vodlms_upload_quota concurrent=1 retry=20s;
    }
--- request
POST /api/videos/q-5/upload?course=course-intro
still busy
--- more_headers
Cookie: session=t111-carol
--- error_code: 429
--- error_log eval
qr/\[info\].*vodlms: the uploader has too many uploads in progress: vodlms:transcode:uploading:1003 has 1 in progress \(the oldest lease lapses in \d+ s\), answering 429/



=== TEST 8: the refused uploads changed nothing; once the other upload ended, it is taken, and its lease given back
--- config
    location ~ ^/api/videos/(?<vid>[A-Za-z0-9_-]+)/upload$ {
LOCATION
        vodlms_upload_quota concurrent=1 retry=20s;
    }
--- request eval
["GET /ctl/state?id=q-5",
 "GET /ctl/idle",
 "POST /api/videos/q-5/upload?course=course-intro\nnow",
 "GET /ctl/quota?owner=1003"]
--- more_headers eval
["", "", "Cookie: session=t111-carol", ""]
--- error_code eval
[200, 200, 202, 200]
--- response_body eval
["row queued; jobs 0; spool files 4\n",
 "idle\n",
 "{\"videoId\":\"q-5\",\"status\":\"queued\"}\n",
 "spooled 103 bytes in 3 file(s), 3 on disk; uploads in progress 0\n"]



=== TEST 9: an upload the client abandons gives its lease back, and leaves nothing
--- config
    location ~ ^/api/videos/(?<vid>[A-Za-z0-9_-]+)/upload$ {
LOCATION
        vodlms_upload_quota concurrent=1;
    }
--- request eval
["GET /ctl/abandon",
 "GET /ctl/state?id=q-6"]
--- timeout: 15
--- error_code eval
[200, 200]
--- response_body eval
["held 1, then 0\n",
 "row queued; jobs 0; spool files 5\n"]



=== TEST 10: the quota's Redis is down: 503, and nothing is created
--- config
    location ~ ^/api/videos/(?<vid>[A-Za-z0-9_-]+)/upload$ {
LOCATION
        vodlms_upload_quota bytes=1m concurrent=2;
    }
--- request eval
["POST /api/videos/q-7/upload?course=course-intro\nwarm the session cache",
 "GET /ctl/redis/stop",
 "POST /api/videos/q-8/upload?course=course-intro\nno queue",
 "GET /ctl/redis/start",
 "GET /ctl/state?id=q-8"]
--- more_headers eval
["Cookie: session=t111-carol", "", "Cookie: session=t111-carol", "", ""]
--- error_code eval
[202, 200, 503, 200, 200]
--- response_body_like eval
[qr/queued/, qr/stopped/, qr/^\{"error":"backend_unavailable"/, qr/started/,
 qr/^row queued; jobs 0; spool files 6$/]



=== TEST 11: bytes=: an upload without a Content-Length (chunked) has no size to count: 411 before its body is read
--- config
    location ~ ^/api/videos/(?<vid>[A-Za-z0-9_-]+)/upload$ {
LOCATION
        vodlms_upload_quota bytes=100;
    }
--- request
GET /ctl/chunked
--- response_body
HTTP/1.1 411 Length Required
{"error":"length_required","message":"the upload must state its Content-Length"}
--- error_log
vodlms: the upload must state its Content-Length: no Content-Length with vodlms_upload_quota bytes=, answering 411



=== TEST 12: the refused chunked upload changed nothing
--- config
    location ~ ^/api/videos/(?<vid>[A-Za-z0-9_-]+)/upload$ {
LOCATION
        vodlms_upload_quota bytes=100;
    }
--- request
GET /ctl/state?id=q-6
--- response_body
row queued; jobs 0; spool files 6
