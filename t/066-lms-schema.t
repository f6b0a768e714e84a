# The worked example of docs/lms-schema.md, end to end (issue #16): vodlms
# in front of a NestJS/TypeORM LMS's own schema -- integer ids, camelCase
# columns, express-session sessions, its own lesson_progress table.
#
# Nothing of the example is copied here: the schema (the ```sql block after
# <!-- lms-schema.sql -->) and the nginx configuration (the ```nginx block
# after <!-- lms-schema.conf -->) are read from the doc, so doc and test
# cannot drift.  The configuration's http {} part is the blocks' http_config
# and its server {} body their config; only addresses, the key's path and
# the flush interval are replaced, each exactly once.  The sessions are real
# express-session cookies (t/fixtures/express/mint.js) signed with the
# doc's own secret.

use FindBin;
use lib "$FindBin::Bin/lib";
use VodlmsTest;
use File::Temp qw(tempdir);
use JSON::PP ();
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_REDIS_PORT} ||= 6379;
my $r = $ENV{TEST_NGINX_REDIS_PORT};

my $vectors = $ENV{VODLMS_VECTORS_DIR} || "$FindBin::Bin/../../shared/vectors/cloudfront";
-f "$vectors/test_private_key.pem" or die "no CloudFront test vectors at $vectors\n";

# a copy of the key that only its owner reads, as an operator keeps it
# (nginx -t warns about one that group or others can read)
my $keydir = tempdir('vodlms-t066-XXXXXX', TMPDIR => 1, CLEANUP => 1);
system('cp', "$vectors/test_private_key.pem", "$keydir/cloudfront.pem") == 0 or die "cp: $?\n";
chmod 0600, "$keydir/cloudfront.pem";

# ------------------------------------------------------------- the doc

my $doc = do {
    my $f = "$FindBin::Bin/../docs/lms-schema.md";
    open my $fh, '<', $f or die "$f: $!";
    local $/;
    <$fh>;
};

my ($schema) = $doc =~ /^<!-- lms-schema\.sql -->\n```sql\n(.*?)^```$/ms
    or die "docs/lms-schema.md: no ```sql block after <!-- lms-schema.sql -->\n";
my ($conf) = $doc =~ /^<!-- lms-schema\.conf -->\n```nginx\n(.*?)^```$/ms
    or die "docs/lms-schema.md: no ```nginx block after <!-- lms-schema.conf -->\n";

my ($http, $server) = $conf =~ /\A(.*?)^server \{\n(.*)^\}\n\z/ms
    or die "docs/lms-schema.md: the configuration is not \"http {} lines, then server { ... }\"\n";

my ($secret) = $server =~ /^\s*vodlms_session_secret "([^"]+)";/m
    or die "docs/lms-schema.md: no vodlms_session_secret \"...\" in the server block\n";

$ENV{TEST_NGINX_LMS_SECRET} = $secret;

# the test's addresses instead of the doc's, each replaced exactly once
sub replace_once {
    my ($text, $from, $to) = @_;
    my $n = () = $$text =~ /\Q$from\E/g;
    $n == 1 or die "docs/lms-schema.md: expected \"$from\" once in the configuration, found it $n times\n";
    $$text =~ s/\Q$from\E/$to/;
}

replace_once(\$http, 'vodlms_redis 127.0.0.1:6379;', 'vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;');
replace_once(\$http, '"host=127.0.0.1 dbname=lms user=vodlms"', '"$TEST_NGINX_LMS_PG"');
replace_once(\$http, 'flush=10s', 'flush=500ms');
replace_once(\$server, '/etc/vodlms/keys/cloudfront.pem', "$keydir/cloudfront.pem");
replace_once(\$server, 'proxy_pass http://127.0.0.1:3000;', 'proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT;');

# ------------------------------------------------- the LMS's database

# its own database beside start_pg()'s vodlms one: nothing of vodlms's in it
my $pg = start_pg();
$pg->psql('CREATE DATABASE lms', 'postgres');
(my $lms_pg = $pg->conninfo) =~ s/dbname=vodlms/dbname=lms/;
$ENV{TEST_NGINX_LMS_PG} = $lms_pg;

# psql on the LMS's database; the SQL goes as one argument, comments and
# newlines intact (VodlmsTest's psql passes it through a shell line)
sub lms {
    my ($sql) = @_;
    open my $fh, '-|', 'psql', '-X', '-qAt', '-h', '127.0.0.1', '-p', $pg->port,
                       '-U', 'postgres', '-d', 'lms', '-v', 'ON_ERROR_STOP=1', '-c', $sql
        or die "psql: $!";
    my $out = do { local $/; <$fh> };
    close $fh or die "psql failed: $sql\n";
    chomp $out;
    return $out;
}

lms($schema);

lms(q{INSERT INTO users (id, email, role) VALUES
        (1, 'ann@example.com', 'student'),  -- enrolled
        (2, 'ben@example.com', 'student'),  -- not enrolled
        (3, 'cat@example.com', 'student'),  -- enrolled, expired
        (4, 'dee@example.com', 'admin'),    -- no enrollment, admin
        (5, 'eve@example.com', 'student'),  -- enrolled: completion
        (6, 'fay@example.com', 'student'),  -- enrolled: a lesson deleted under her
        (7, 'gus@example.com', 'student')   -- enrolled: watching meanwhile});
lms(q{INSERT INTO courses (id, title) VALUES (1, 'Video Engineering')});
lms(q{INSERT INTO course_enrollments ("userId", "courseId", status, "expiresAt") VALUES
        (1, 1, 'active', NULL), (3, 1, 'active', '2024-01-01T00:00:00Z'),
        (5, 1, 'active', NULL), (6, 1, 'active', NULL), (7, 1, 'active', NULL)});
lms(q{INSERT INTO lessons (id, "courseId", title, "durationSeconds", "hlsPrefix", status) VALUES
        (11, 1, 'Welcome', 600, 'hls/lessons/11/', 'published'),
        (12, 1, 'Ten seconds', 10, 'hls/lessons/12/', 'published'),
        (13, 1, 'Coming soon', NULL, NULL, 'draft'),
        (14, 1, 'Withdrawn', 300, 'hls/lessons/14/', 'published')});

# ------------------------------------------------------------ sessions

# real express-session + connect-redis sessions, as the NestJS app writes
# them: passport.user is the integer id
sub mint {
    my ($user) = @_;
    my $script = "$FindBin::Bin/fixtures/express/mint.js";
    open my $fh, '-|', 'node', $script, '--redis-port', $r, '--secret', $secret,
                       '--user', $user
        or die "node: $!";
    my $out = do { local $/; <$fh> };
    close $fh or die "mint.js --user $user failed (did ./build.sh deps run npm ci?)\n";
    return "Cookie: " . JSON::PP::decode_json($out)->{cookie_header_value};
}

our %cookie = map { $_->[0] => mint($_->[1]) }
    [ann => 1], [ben => 2], [cat => 3], [dee => 4], [eve => 5], [fay => 6], [gus => 7];

# ------------------------------------- the app, and what the test reads

sub wait_until {
    my ($what, $cond) = @_;
    for (1 .. 500) {
        my $v = eval { $cond->() };
        return $v if $v;
        select undef, undef, undef, 0.02;
    }
    return "timed out waiting for $what\n";
}

sub arg { my ($q, $k) = @_; ($q // '') =~ /(?:^|&)\Q$k\E=([\w.]+)/ ? $1 : undef }

my ($ctl_port, $ctl) = control_server(
    # a lesson_progress row, once the flush has written this position
    '/ctl/row' => sub {
        my ($path, $q) = @_;
        my ($user, $lesson, $pos) = (arg($q, 'user'), arg($q, 'lesson'), arg($q, 'pos'));
        $user =~ /^\d+$/ && $lesson =~ /^\d+$/ or return "bad query\n";
        wait_until("the row of $user/$lesson", sub {
            my $v = lms(qq{SELECT position || ' max=' || "maxPosition" || ' watched=' || "watchedSeconds"
                              || ' played=' || "playedSeconds" || ' completed=' || ("completedAt" IS NOT NULL)
                             FROM lesson_progress WHERE "userId" = $user AND "lessonId" = $lesson});
            return undef if $v eq '' || (defined $pos && $v !~ /^\Q$pos\E /);
            "$v\n";
        });
    },
    '/ctl/rows' => sub {
        my ($path, $q) = @_;
        my $user = arg($q, 'user');
        $user =~ /^\d+$/ or return "bad query\n";
        lms(qq{SELECT count(*) FROM lesson_progress WHERE "userId" = $user}) . " rows\n";
    },
    # an instructor deletes a lesson while it is being watched
    '/ctl/delete' => sub {
        my ($path, $q) = @_;
        my $lesson = arg($q, 'lesson');
        $lesson =~ /^\d+$/ or return "bad query\n";
        lms(qq{DELETE FROM lessons WHERE id = $lesson});
        "deleted\n";
    },
    # the entry the flush refused: once its error line is in the log, and
    # a second more for a retry that must not come, the lines about it
    '/ctl/refused' => sub {
        my ($path, $q) = @_;
        my ($user, $lesson) = (arg($q, 'user'), arg($q, 'lesson'));
        no warnings 'once';    # the real runner's variable, or t/compat's
        my $log = $Test::Nginx::Util::ErrLogFile // $Test::Nginx::Socket::ErrLogFile;
        my $pat = qr/\[(\w+)\] .*the flush query refused the entry of user "\Q$user\E" for video "\Q$lesson\E".*?(set aside).*?(foreign key)/;
        my $lines = sub {
            open my $fh, '<', $log or return ();
            map { /$pat/ ? "[$1] $2: $3" : () } <$fh>;
        };
        wait_until("the refused entry in $log", sub { scalar $lines->() }) =~ /^timed out/
            and return "no line about it in $log\n";
        select undef, undef, undef, 1.0;
        my @l = $lines->();
        scalar(@l) . " line(s): @l\n";
    },
    # a second of real time between two beacons
    '/ctl/second' => sub { select undef, undef, undef, 1.0; "a second later\n" },
    # the NestJS app behind "location /": everything else is its own 404
    '*' => sub {
        my ($path) = @_;
        [404, qq({"statusCode":404,"message":"Cannot GET $path","error":"Not Found"}\n)];
    },
);
$ENV{TEST_NGINX_CTL_PORT} = $ctl_port;

# every block runs the doc's configuration, and nothing else (but the last,
# which shows what the column table says of camelCase column names)
add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('main_config', "    load_module \$TEST_NGINX_MODULE_PATH;\n");
    $block->set_value('http_config', $http) unless defined $block->http_config;
    $block->set_value('config', $server) unless defined $block->config;
});

# a beacon as the LMS's player sends it: the lesson's id as a JSON integer
my %duration = (11 => 600, 12 => 10, 14 => 300);
sub beacon {
    my ($lesson, $t, $ev) = @_;
    my $e = $ev ? qq(,"event":"$ev") : '';
    "POST /api/lessons/$lesson/progress\n"
        . qq({"videoId":$lesson,"currentTime":$t,"duration":$duration{$lesson}$e});
}

our $json_11 = qr{^\{"videoId":"11","title":"Welcome","duration":600.0,"status":"ready","manifestUrl":"https://media\.lms\.example\.com/hls/lessons/11/master\.m3u8","expiresAt":\d+,"resumeAt":0\}$};
our $attrs = qr{; Path=/hls/lessons/11/; Expires=[^;]+; Secure; HttpOnly; SameSite=Lax};

no_root_location();
no_shuffle();
run_tests();

__DATA__

=== TEST 1: an enrolled student: 200, the lesson's JSON and the CloudFront cookies for its hlsPrefix
--- request
GET /api/lessons/11/stream
--- more_headers eval
$::cookie{ann}
--- error_code: 200
--- response_body_like eval
$::json_11
--- raw_response_headers_like eval
qr/\r\nSet-Cookie: CloudFront-Policy=[A-Za-z0-9_~-]+$::attrs\r\nSet-Cookie: CloudFront-Signature=[A-Za-z0-9_~-]+$::attrs\r\nSet-Cookie: CloudFront-Key-Pair-Id=K2JCJMDEHXQW5F$::attrs\r\n/
--- no_error_log
[error]
[warn]



=== TEST 2: an admin without an enrollment plays; no session is 401
--- request eval
[("GET /api/lessons/11/stream") x 2]
--- more_headers eval
[$::cookie{dee}, ""]
--- error_code eval
[200, 401]
--- response_body_like eval
[qr/^\{"videoId":"11","title":"Welcome",/,
 qr/^\{"error":"no_session",/]
--- no_error_log
[error]
[warn]



=== TEST 3: a student who is not enrolled: 403, the log says why
--- request
GET /api/lessons/11/stream
--- more_headers eval
$::cookie{ben}
--- error_code: 403
--- response_body_like eval
qr/^\{"error":"not_enrolled",/
--- error_log eval
qr/\[info\] .*enrollment "none", answering 403/
--- no_error_log
[error]



=== TEST 4: an expired enrollment: 403, the log says why
--- request
GET /api/lessons/11/stream
--- more_headers eval
$::cookie{cat}
--- error_code: 403
--- response_body_like eval
qr/^\{"error":"not_enrolled",/
--- error_log eval
qr/\[info\] .*enrollment "expired", answering 403/
--- no_error_log
[error]



=== TEST 5: no such lesson is 404, a draft is 409 (403 for someone not enrolled), "abc" is the app's own 404
--- request eval
["GET /api/lessons/999/stream", "GET /api/lessons/13/stream", "GET /api/lessons/13/stream",
 "GET /api/lessons/abc/stream"]
--- more_headers eval
[$::cookie{ann}, $::cookie{ann}, $::cookie{ben}, $::cookie{ann}]
--- error_code eval
[404, 409, 403, 404]
--- response_body_like eval
[qr/^\Q{"error":"video_not_found","message":"no such video"}\E$/,
 qr/^\{"error":"video_not_ready",.*"status":"draft"\}$/,
 qr/^\{"error":"not_enrolled",/,
 qr{^\Q{"statusCode":404,"message":"Cannot GET /api/lessons/abc/stream","error":"Not Found"}\E$}]
--- no_error_log
[error]
[warn]



=== TEST 6: a run of digits that is no int is 404 before any query
--- request
GET /api/lessons/99999999999/stream
--- more_headers eval
$::cookie{ann}
--- error_code: 404
--- response_body
{"error":"video_not_found","message":"no such video"}
--- error_log eval
qr/\[info\] .*video id not an int: "99999999999", answering 404/
--- no_error_log
[error]
[warn]



=== TEST 7: beacons land in lesson_progress; GET progress and playback's resumeAt say where to resume
--- request eval
[main::beacon(11, 0), "GET /ctl/second", main::beacon(11, 1), "GET /ctl/second", main::beacon(11, 2, 'pause'),
 "GET /api/lessons/11/progress",
 "GET /ctl/row?user=1&lesson=11&pos=2.000",
 "GET /api/lessons/11/stream"]
--- more_headers eval
[$::cookie{ann}, "", $::cookie{ann}, "", ($::cookie{ann}) x 2, "", $::cookie{ann}]
--- error_code eval
[204, 200, 204, 200, 204, 200, 200, 200]
--- response_body_like eval
[qr/^$/, qr/^a second later$/, qr/^$/, qr/^a second later$/, qr/^$/,
 qr/^\{"videoId":"11","position":2\.000,"duration":600\.000,"completed":false\}$/,
 qr/^2\.000 max=2\.000 watched=[12]\.\d{3} played=[12]\.\d{3} completed=false$/,
 qr/"resumeAt":2\}$/]
--- no_error_log
[error]
[warn]
--- timeout: 30



=== TEST 8: a 10 s lesson played at 1x, a beacon a second and "ended" at the end, is completed in lesson_progress (by this node's coverage: the 8-parameter flush has no coverage column)
--- request eval
[(map { (main::beacon(12, $_), "GET /ctl/second") } 0 .. 8),
 main::beacon(12, 10, 'ended'),
 "GET /api/lessons/12/progress",
 "GET /ctl/row?user=5&lesson=12&pos=10.000"]
--- more_headers eval
[(($::cookie{eve}, "") x 9), $::cookie{eve}, $::cookie{eve}, ""]
--- error_code eval
[((204, 200) x 9), 204, 200, 200]
--- response_body_like eval
[((qr/^$/, qr/^a second later$/) x 9), qr/^$/,
 qr/^\{"videoId":"12","position":10\.000,"duration":10\.000,"completed":true\}$/,
 qr/^10\.000 max=10\.000 watched=\d+\.\d{3} played=\d+\.\d{3} completed=true$/]
--- no_error_log
[error]
[warn]
--- timeout: 40



=== TEST 9: a lesson deleted while it is watched: the flush refuses that entry (FK), sets it aside once, and the others' progress lands
--- request eval
["GET /api/lessons/14/progress",
 "GET /ctl/delete?lesson=14",
 main::beacon(14, 3),
 main::beacon(11, 5),
 "GET /ctl/row?user=7&lesson=11&pos=5.000",
 "GET /ctl/refused?user=6&lesson=14",
 "GET /ctl/rows?user=6",
 main::beacon(11, 6),
 "GET /ctl/row?user=7&lesson=11&pos=6.000"]
--- more_headers eval
[$::cookie{fay}, "", $::cookie{fay}, $::cookie{gus}, "", "", "", $::cookie{gus}, ""]
--- error_code eval
[200, 200, 204, 204, 200, 200, 200, 204, 200]
--- response_body_like eval
[qr/^\{"videoId":"14","position":0\.000,"duration":300\.000,"completed":false\}$/,
 qr/^deleted$/, qr/^$/, qr/^$/,
 qr/^5\.000 max=5\.000 /,
 qr/^1 line\(s\): \[error\] set aside: foreign key$/,
 qr/^0 rows$/,
 qr/^$/,
 qr/^6\.000 max=6\.000 /]
--- timeout: 30



=== TEST 10: nginx lower-cases variable names: $vodlms_video_hlsPrefix cannot reach a "hlsPrefix" column, an alias can
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_LMS_PG";
--- config
    location ~ ^/api/lessons/(?<lesson>[0-9]+)/meta$ {
        vodlms_auth on;
        vodlms_session_type express;
        vodlms_session_secret "$TEST_NGINX_LMS_SECRET";
        vodlms_enrollment_check on;
        vodlms_video_id $lesson;
        vodlms_video_id_type int;
        vodlms_enrollment_query 'SELECT l.title, l."hlsPrefix", l."hlsPrefix" AS hls_prefix
                                   FROM lessons l WHERE l.id = $1::int AND $2::int > 0'
                                $vodlms_video_id $vodlms_user_id;
        proxy_set_header X-Camel $vodlms_video_hlsPrefix;
        proxy_set_header X-Alias $vodlms_video_hls_prefix;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$lesson;
    }
    location /app/ { return 200 "camel=[$http_x_camel] alias=[$http_x_alias]\n"; }
--- request
GET /api/lessons/11/meta
--- more_headers eval
$::cookie{ann}
--- response_body
camel=[] alias=[hls/lessons/11/]
--- no_error_log
[error]
