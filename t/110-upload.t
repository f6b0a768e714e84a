# Upload intake: an instructor's file streams to disk, then a videos row
# (queued) and a job on the Redis Stream, then 202.  Who may upload is
# decided before the body is read.  If a step fails, nothing is left
# half-done: no orphan file, no row without a job, no job without a row.
#
# The control server looks at the state itself: the row in PostgreSQL, the
# job in the stream (XRANGE), the files in the spool.

use FindBin;
use lib "$FindBin::Bin/lib";
use VodlmsTest;
use File::Temp qw(tempdir);
use IO::Select ();
use IO::Socket::INET ();
use Test::Nginx::Socket 'no_plan';

my $redis = start_redis();
$ENV{TEST_NGINX_PRIVATE_REDIS_PORT} = $redis->port;

sub sessions {
    $redis->cmd('SET', 'session:t110-carol', '{"user_id":"1003","role":"instructor"}', 'EX', 3600);
    $redis->cmd('SET', 'session:t110-alice', '{"user_id":"1001","role":"student"}', 'EX', 3600);
}
sessions();

my $pg = start_pg();
$ENV{TEST_NGINX_PRIVATE_PG} = $pg->conninfo;

# the lectures the LMS created, waiting for their upload ("vodlms_upload on"
# only ever fills rows like these: ids belong to the LMS); and a lecture of
# a course carol does not teach
$pg->psql(q{INSERT INTO vodlms.videos (id, course_id, title) VALUES
            ('up-1', 'course-intro', 'Week 1'), ('up-5', 'course-intro', 'Week 5'),
            ('up-6', 'course-intro', 'Week 6')});
$pg->psql(q{INSERT INTO vodlms.courses (id, title, slug) VALUES ('course-other', 'Other', 'other')});
$pg->psql(q{INSERT INTO vodlms.videos (id, course_id, title) VALUES ('other-1', 'course-other', 'Theirs')});

# the spool, on the same filesystem as the servroot's client_body_temp
my $spool = tempdir('vodlms-spool-XXXXXX', TMPDIR => 1, CLEANUP => 1);
$ENV{TEST_NGINX_SPOOL} = $spool;

sub state_of {
    my ($id) = @_;
    my $row = $pg->psql("SELECT status || ' ' || coalesce(error, '-') || ' '"
                      . " || coalesce(source_location, '-') FROM vodlms.videos WHERE id = '$id'");
    my ($status, $error, $src) = $row eq '' ? ('none', '-', '-') : split / /, $row, 3;
    my $jobs = $redis->running ? $redis->cmd('XRANGE', 'vodlms:transcode', '-', '+') : [];
    my @mine = grep { my %f = @{ $_->[1] }; $f{video_id} eq $id } @$jobs;
    my %job = @mine ? @{ $mine[-1][1] } : ();
    my @files = glob "$spool/*";
    my $content = -f $src ? do { local $/; open my $fh, '<', $src; <$fh> } : '';
    return "row $status"
         . ($error ne '-' ? " ($error)" : '')
         . "; jobs " . scalar(@mine)
         . (@mine ? "; job source " . ($job{source} eq $src ? 'matches' : 'differs')
                  . ", enqueued_at " . ($job{enqueued_at} =~ /^\d{10}$/ ? 'set' : 'missing') : '')
         . "; file " . ($content ne '' ? "\"$content\"" : 'none')
         . ($content ne '' ? (((stat $src)[2] & 0040) ? ', group-readable' : ', owner only') : '')
         . "; spool files " . scalar(@files) . "\n";
}

# where nginx writes an upload's body while it reads it (TEST 11)
my $body_temp = tempdir('vodlms-body-XXXXXX', TMPDIR => 1, CLEANUP => 1);
$ENV{TEST_NGINX_BODY_TEMP} = $body_temp;

# an upload of carol's that announces 60000 bytes and sends 20000 (more
# than client_body_buffer_size: nginx reading it would write a body file),
# then waits for the answer without sending the rest: the answer's status
# line and body, and the files nginx holds for bodies meanwhile
sub early_answer {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ENV{TEST_NGINX_SERVER_PORT}) or return "connect: $!\n";
    print $s "POST /api/videos/up-7/upload?course=course-intro HTTP/1.1\r\nHost: localhost\r\n"
           . "Cookie: session=t110-carol\r\nContent-Length: 60000\r\n\r\n" . ("v" x 20000);
    my $answer = 'no answer';
    if (IO::Select->new($s)->can_read(10)) {
        my $status = <$s> // '';
        my $len = 0;
        while (defined(my $h = <$s>)) {
            last if $h eq "\r\n";
            $len = $1 if $h =~ /^Content-Length:\s*(\d+)/i;
        }
        my $body = '';
        read($s, $body, $len) if $len;
        $status =~ s/\r\n\z//;
        $answer = "$status\n$body";
    }
    my @held = glob "$body_temp/*/*/*";
    push @held, glob "$body_temp/*";
    @held = grep { -f } @held;
    close $s;
    return "$answer; body files held " . scalar(@held) . "\n";
}

my ($ctl_port, $ctl) = control_server(
    '/state'       => sub { my ($p, $q) = @_; my ($id) = $q =~ /id=([\w-]+)/; state_of($id) },
    '/redis/stop'  => sub { $redis->stop; "stopped\n" },
    '/redis/start' => sub { $redis->start unless $redis->running; sessions(); "started\n" },
    '/pg/stop'     => sub { $pg->stop; "stopped\n" },
    '/pg/start'    => sub { $pg->start; "started\n" },
    # the newest row of the course, by the id nginx drew for it
    '/newest'      => sub {
        my $id = $pg->psql("SELECT id FROM vodlms.videos WHERE course_id = 'course-intro'"
                         . " ORDER BY created_at DESC, id LIMIT 1");
        "$id: " . state_of($id);
    },
    '/early'       => \&early_answer,
    '/count'       => sub { $pg->psql("SELECT count(*) FROM vodlms.videos") . " rows\n" },
);
$ENV{TEST_NGINX_CTL_PORT} = $ctl_port;

# every block loads the module, and has these http{} lines unless it has its own
block_defaults(http_config => <<'EOF');
    vodlms_redis 127.0.0.1:$TEST_NGINX_PRIVATE_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
EOF

no_shuffle();
run_tests();

__DATA__

=== TEST 1: an instructor's upload becomes a queued row, a job and a spooled file: 202
--- config
    location ~ ^/api/videos/(?<vid>[A-Za-z0-9_-]+)/upload$ {
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
        vodlms_upload_title $http_x_title;
        vodlms_upload_spool $TEST_NGINX_SPOOL;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- request eval
["POST /api/videos/up-1/upload?course=course-intro\nfake video bytes, not really",
 "GET /ctl/state?id=up-1"]
--- more_headers eval
["Cookie: session=t110-carol\nX-Title: Week 1\nContent-Type: video/mp4", ""]
--- error_code eval
[202, 200]
--- response_body eval
["{\"videoId\":\"up-1\",\"status\":\"queued\"}\n",
 "row queued; jobs 1; job source matches, enqueued_at set; file \"fake video bytes, not really\", group-readable; spool files 1\n"]



=== TEST 2: a student is refused before the body is read (403), and nothing is created
--- config
    location ~ ^/api/videos/(?<vid>[A-Za-z0-9_-]+)/upload$ {
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
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- request eval
["POST /api/videos/up-2/upload?course=course-intro\nsneaky",
 "GET /ctl/state?id=up-2"]
--- more_headers eval
["Cookie: session=t110-alice", ""]
--- error_code eval
[403, 200]
--- response_body eval
["{\"error\":\"forbidden_role\",\"message\":\"the user's role is not allowed here\"}\n",
 "row none; jobs 0; file none; spool files 1\n"]



=== TEST 3: an instructor of another course is refused (403), and nothing is created
--- config
    location ~ ^/api/videos/(?<vid>[A-Za-z0-9_-]+)/upload$ {
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
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- request eval
["POST /api/videos/up-3/upload?course=someone-elses\nbytes",
 "GET /ctl/state?id=up-3"]
--- more_headers eval
["Cookie: session=t110-carol", ""]
--- error_code eval
[403, 200]
--- response_body eval
["{\"error\":\"not_enrolled\",\"message\":\"the user is not enrolled in the video's course\"}\n",
 "row none; jobs 0; file none; spool files 1\n"]



=== TEST 4: too large: 413 from client_max_body_size, and nothing is created
--- config
    location ~ ^/api/videos/(?<vid>[A-Za-z0-9_-]+)/upload$ {
        client_max_body_size 64k;
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_enrollment_query "SELECT 1 AS teaches FROM vodlms.course_instructors WHERE course_id = $1 AND user_id = $2" $arg_course $vodlms_user_id;
        vodlms_enrollment_no_row 403;
        vodlms_upload on;
        vodlms_upload_course $arg_course;
        vodlms_upload_spool $TEST_NGINX_SPOOL;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- request eval
["POST /api/videos/up-4/upload?course=course-intro\n" . ("x" x 70000),
 "GET /ctl/state?id=up-4"]
--- more_headers eval
["Cookie: session=t110-carol", ""]
--- error_code eval
[413, 200]
--- response_body_like eval
[qr/413/, qr/^row none; jobs 0; file none; spool files 1$/]



=== TEST 5: an empty upload is a 400
--- config
    location ~ ^/api/videos/(?<vid>[A-Za-z0-9_-]+)/upload$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_enrollment_query "SELECT 1 AS teaches FROM vodlms.course_instructors WHERE course_id = $1 AND user_id = $2" $arg_course $vodlms_user_id;
        vodlms_enrollment_no_row 403;
        vodlms_upload on;
        vodlms_upload_course $arg_course;
        vodlms_upload_spool $TEST_NGINX_SPOOL;
    }
--- request
POST /api/videos/up-5/upload?course=course-intro
--- more_headers
Cookie: session=t110-carol
--- error_code: 400
--- response_body
{"error":"empty_upload","message":"the upload has no body"}



=== TEST 6: Redis down: 503, the row is put back as the LMS created it, the file removed, no job
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_PRIVATE_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
    vodlms_cache_zone zone=answers:1m;
--- config
    location ~ ^/api/videos/(?<vid>[A-Za-z0-9_-]+)/upload$ {
        vodlms_auth on;
        vodlms_session_cache answers valid=1m;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_enrollment_query "SELECT 1 AS teaches FROM vodlms.course_instructors WHERE course_id = $1 AND user_id = $2" $arg_course $vodlms_user_id;
        vodlms_enrollment_no_row 403;
        vodlms_upload on;
        vodlms_upload_course $arg_course;
        vodlms_upload_spool $TEST_NGINX_SPOOL;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
    location = /prime { vodlms_auth on; vodlms_session_cache answers valid=1m; return 204; }
--- request eval
["POST /api/videos/up-1/upload?course=course-intro\nsecond version",
 "GET /ctl/redis/stop",
 "POST /api/videos/up-6/upload?course=course-intro\nwill not stay",
 "GET /ctl/redis/start",
 "GET /ctl/state?id=up-6"]
--- more_headers eval
["Cookie: session=t110-carol", "", "Cookie: session=t110-carol", "", ""]
--- error_code eval
[202, 200, 503, 200, 200]
--- response_body_like eval
[qr/"status":"queued"/, qr/^stopped$/,
 qr/^\{"error":"backend_unavailable"/, qr/^started$/,
 qr/^row queued; jobs 0; file none; spool files 2$/]



=== TEST 7: a re-upload that cannot be queued puts the previous row back, with its own source
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_PRIVATE_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
    vodlms_cache_zone zone=answers:1m;
--- config
    location ~ ^/api/videos/(?<vid>[A-Za-z0-9_-]+)/upload$ {
        vodlms_auth on;
        vodlms_session_cache answers valid=1m;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_enrollment_query "SELECT 1 AS teaches FROM vodlms.course_instructors WHERE course_id = $1 AND user_id = $2" $arg_course $vodlms_user_id;
        vodlms_enrollment_no_row 403;
        vodlms_upload on;
        vodlms_upload_course $arg_course;
        vodlms_upload_spool $TEST_NGINX_SPOOL;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- request eval
["GET /ctl/state?id=intro-failed",
 "POST /api/videos/intro-failed/upload?course=course-intro\nprime the caches",
 "GET /ctl/redis/stop",
 "POST /api/videos/intro-failed/upload?course=course-intro\nnew source",
 "GET /ctl/redis/start",
 "GET /ctl/state?id=intro-failed"]
--- more_headers eval
["", "Cookie: session=t110-carol", "", "Cookie: session=t110-carol", "", ""]
--- error_code eval
[200, 202, 200, 503, 200, 200]
--- response_body_like eval
[qr/^row failed \(/, qr/"status":"queued"/, qr/^stopped$/,
 qr/^\{"error":"backend_unavailable"/, qr/^started$/,
 qr/^row queued; jobs 0; file "prime the caches", group-readable; spool files 3$/]



=== TEST 8: an id nobody created cannot be claimed: 404, no row, no job, no file (a colleague's later lecture stays free)
--- config
    location ~ ^/api/videos/(?<vid>[A-Za-z0-9_-]+)/upload$ {
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
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- request
POST /api/videos/squat-2027-week-1/upload?course=course-intro
claiming an id in advance
--- more_headers
Cookie: session=t110-carol
X-Title: Mine now
--- error_code: 404
--- response_body
{"error":"video_not_found","message":"no such video"}
--- error_log
no videos row: the LMS creates the lecture before its upload



=== TEST 8b: ... and after it, the id is as free as before: no row, no job, no file
--- config
    location ~ ^/api/videos/(?<vid>[A-Za-z0-9_-]+)/upload$ {
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
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- request eval
["GET /ctl/state?id=squat-2027-week-1"]
--- response_body_like eval
[qr/^row none; jobs 0; file none; spool files \d+$/]



=== TEST 8c: an id of another course is answered like one nobody created (404), so other courses' ids cannot be probed; the row is untouched
--- config
    location ~ ^/api/videos/(?<vid>[A-Za-z0-9_-]+)/upload$ {
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
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- request
POST /api/videos/other-1/upload?course=course-intro
not mine
--- more_headers
Cookie: session=t110-carol
X-Title: Mine now
--- error_code: 404
--- response_body
{"error":"video_not_found","message":"no such video"}
--- error_log
the video belongs to another course



=== TEST 8d: ... and the other course's row is as it was: no job, no file
--- config
    location ~ ^/api/videos/(?<vid>[A-Za-z0-9_-]+)/upload$ {
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
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- request eval
["GET /ctl/state?id=other-1"]
--- response_body_like eval
[qr/^row queued; jobs 0; file none; spool files \d+$/]



=== TEST 9: "vodlms_upload new": the server draws the id (128 random bits); whatever the client says is not it
--- config
    location ~ ^/api/courses/(?<course>[A-Za-z0-9_-]+)/videos$ {
        client_max_body_size 64k;
        vodlms_auth on;
        vodlms_session_role_field role;
        vodlms_auth_require_role instructor admin;
        vodlms_enrollment_check on;
        vodlms_video_id $request_id;
        vodlms_enrollment_query "SELECT 1 AS teaches FROM vodlms.course_instructors WHERE course_id = $1 AND user_id = $2" $course $vodlms_user_id;
        vodlms_enrollment_no_row 403;
        vodlms_upload new;
        vodlms_upload_course $course;
        vodlms_upload_title $http_x_title;
        vodlms_upload_spool $TEST_NGINX_SPOOL;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- request eval
["POST /api/courses/course-intro/videos?id=up-1&video_id=up-1\na brand-new lecture",
 "GET /ctl/newest",
 "GET /ctl/state?id=up-1",
 "POST /api/courses/someone-elses/videos\nnot my course"]
--- more_headers eval
["Cookie: session=t110-carol\nX-Title: Week 9\nX-Video-Id: up-1", "", "", "Cookie: session=t110-carol"]
--- error_code eval
[202, 200, 200, 403]
--- response_body_like eval
[qr/^\{"videoId":"[0-9a-f]{32}","status":"queued"\}$/,
 qr/^[0-9a-f]{32}: row queued; jobs 1; job source matches, enqueued_at set; file "a brand-new lecture", group-readable; spool files \d+$/,
 qr/^row queued; jobs \d+; (job source matches, enqueued_at set; )?file "second version", group-readable; spool files \d+$/,
 qr/^\{"error":"not_enrolled"/]



=== TEST 10: the row is a query on the uploader's behalf: past vodlms_user_query_limit, 429 and nothing is created
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_PRIVATE_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
    vodlms_user_query_zone zone=users:1m rate=1r/m;
--- config
    location ~ ^/api/videos/(?<vid>[A-Za-z0-9_-]+)/upload$ {
        client_max_body_size 64k;
        vodlms_auth on;
        vodlms_session_role_field role;
        vodlms_auth_require_role instructor admin;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_enrollment_query "SELECT 1 AS teaches FROM vodlms.course_instructors WHERE course_id = $1 AND user_id = $2" $arg_course $vodlms_user_id;
        vodlms_enrollment_no_row 403;
        # the enrollment check takes the one query the rate allows now
        vodlms_user_query_limit zone=users;
        vodlms_upload on;
        vodlms_upload_course $arg_course;
        vodlms_upload_spool $TEST_NGINX_SPOOL;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- request eval
["POST /api/videos/up-7/upload?course=course-intro\none too many",
 "GET /ctl/state?id=up-7"]
--- more_headers eval
["Cookie: session=t110-carol", ""]
--- error_code eval
[429, 200]
--- response_headers eval
["Retry-After: 60", ""]
--- response_body eval
["{\"error\":\"too_many_queries\",\"message\":\"too many database queries for this user, try again later\"}\n",
 "row none; jobs 0; file none; spool files 4\n"]



=== TEST 11: ... and the uploader is refused before the body is read: answered while the client still holds its body back, nothing written
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_PRIVATE_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
    vodlms_user_query_zone zone=users:1m rate=1r/m;
--- config
    location ~ ^/api/videos/(?<vid>[A-Za-z0-9_-]+)/upload$ {
        client_max_body_size 64k;
        client_body_temp_path $TEST_NGINX_BODY_TEMP;
        vodlms_auth on;
        vodlms_session_role_field role;
        vodlms_auth_require_role instructor admin;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_enrollment_query "SELECT 1 AS teaches FROM vodlms.course_instructors WHERE course_id = $1 AND user_id = $2" $arg_course $vodlms_user_id;
        vodlms_enrollment_no_row 403;
        # the enrollment check takes the one query the rate allows now
        vodlms_user_query_limit zone=users;
        vodlms_upload on;
        vodlms_upload_course $arg_course;
        vodlms_upload_spool $TEST_NGINX_SPOOL;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- request eval
["GET /ctl/early",
 "GET /ctl/state?id=up-7"]
--- timeout: 20
--- error_code eval
[200, 200]
--- response_body eval
["HTTP/1.1 429 Too Many Requests\n{\"error\":\"too_many_queries\",\"message\":\"too many database queries for this user, try again later\"}\n; body files held 0\n",
 "row none; jobs 0; file none; spool files 4\n"]
