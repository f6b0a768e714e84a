# vodlms's own tables installed beside an LMS's (issue #16).  The LMS's
# database already has its users, courses, course_enrollments, lessons and
# lesson_progress (docs/lms-schema.md's schema: integer ids, camelCase) and a
# schema_migrations of its own framework, all in public.  sql/migrate.sh puts
# vodlms into its own schema ("vodlms"), leaves every LMS table as it was,
# applies nothing the second time and says so with --status.  An upload
# through nginx then lands in vodlms.videos for the LMS's course 1, which has
# no row in vodlms.courses, and vodlms-helper finds and transcodes it.  An
# install from before schemas (in public) is refused without --schema
# public, and upgraded with it; a bad schema name is refused; nginx's
# default queries follow vodlms_pg_schema to a second schema.
#
# Test::More checks first (migrate.sh, the helper's db_schema), then
# Test::Nginx blocks for nginx; the control server reads the database.

use FindBin;
use lib "$FindBin::Bin/lib";
use VodlmsTest;
use File::Temp qw(tempdir);
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(sleep time);
use Test::More ();
use Test::Nginx::Socket 'no_plan';

my $repo = "$FindBin::Bin/..";
my $migrate = "$repo/sql/migrate.sh";
my @versions = map { m{/(\d{4}_[a-z0-9_]+)\.sql$} ? $1 : () }
               sort glob "$repo/sql/migrations/*.sql";
my $n = @versions;

my $build = (defined $ENV{VODLMS_BUILD_DIR} && length $ENV{VODLMS_BUILD_DIR})
          ? $ENV{VODLMS_BUILD_DIR} : "$repo/build";
my $helper = "$build/helper/vodlms-helper";
system("make -s -C '$repo/helper' BUILD='$build/helper' >&2") unless -x $helper;
-x $helper or die "helper binary not built: $helper\n";

my $tmp = tempdir('vodlms-t067-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $tmp;

# ------------------------------------------------------------- helpers

my $pg = start_pg();
my $redis = start_redis();
$ENV{TEST_NGINX_PRIVATE_REDIS_PORT} = $redis->port;

sub conninfo { (my $ci = $pg->conninfo) =~ s/dbname=vodlms/dbname=$_[0]/; $ci }

# psql on one database; the SQL goes as one argument, newlines intact
sub sql {
    my ($db, $q) = @_;
    open my $fh, '-|', 'psql', '-X', '-qAt', '-h', '127.0.0.1', '-p', $pg->port,
                       '-U', 'postgres', '-d', $db, '-v', 'ON_ERROR_STOP=1', '-c', $q
        or die "psql: $!";
    my $out = do { local $/; <$fh> } // '';
    close $fh or die "psql failed on $db: $q\n";
    chomp $out;
    return $out;
}

# a command's exit code and its stdout and stderr together
sub run_cmd {
    my @cmd = @_;
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT or POSIX::_exit(126);
        exec @cmd or POSIX::_exit(127);
    }
    my $out = do { local $/; <$fh> } // '';
    close $fh;
    return ($? >> 8, $out);
}

sub migrate { my ($db, @args) = @_; run_cmd($migrate, conninfo($db), @args) }

# every table, view and constraint of public with a digest of its rows: the
# LMS's side, which vodlms must not touch
sub public_state {
    my ($db) = @_;
    sql($db, q{
        SELECT string_agg(c.relname || '=' || (xpath('/row/n/text()', query_to_xml(
                   format('SELECT md5(coalesce(string_agg(t::text, %L ORDER BY t::text), %L)) AS n'
                          || ' FROM public.%I t', ',', '', c.relname), false, true, '')))[1]::text,
                   ' ' ORDER BY c.relname)
               || ' columns=' || (SELECT md5(string_agg(table_name || '.' || column_name || ':'
                                                       || data_type || ':' || coalesce(column_default, ''),
                                                       ',' ORDER BY table_name, ordinal_position))
                                    FROM information_schema.columns WHERE table_schema = 'public')
               || ' constraints=' || (SELECT string_agg(conname, ',' ORDER BY conname)
                                        FROM pg_constraint k JOIN pg_namespace s ON s.oid = k.connamespace
                                       WHERE s.nspname = 'public')
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v')});
}

sub schemas {
    my ($db) = @_;
    sql($db, q{SELECT string_agg(nspname, ' ' ORDER BY nspname) FROM pg_namespace
                WHERE nspname NOT LIKE 'pg\_%' AND nspname <> 'information_schema'});
}

# ------------------------------------------------- the LMS's database

my $doc = do {
    open my $fh, '<', "$repo/docs/lms-schema.md" or die "lms-schema.md: $!";
    local $/;
    <$fh>;
};
my ($lms_schema) = $doc =~ /^<!-- lms-schema\.sql -->\n```sql\n(.*?)^```$/ms
    or die "docs/lms-schema.md: no ```sql block after <!-- lms-schema.sql -->\n";

$pg->psql('CREATE DATABASE lms', 'postgres');
sql('lms', $lms_schema);
# its framework's own migration record (Rails' shape), in public
sql('lms', q{CREATE TABLE schema_migrations (version varchar PRIMARY KEY);
             INSERT INTO schema_migrations VALUES ('20240101000000'), ('20240301120000')});
sql('lms', q{INSERT INTO users (id, email, role) VALUES
               (1, 'ann@example.com', 'student'), (8, 'ivy@example.com', 'instructor')});
sql('lms', q{INSERT INTO courses (id, title, "instructorId") VALUES (1, 'Video Engineering', 8),
                                                             (2, 'Someone Else''s', NULL)});
sql('lms', q{INSERT INTO course_enrollments ("userId", "courseId") VALUES (1, 1)});
sql('lms', q{INSERT INTO lessons (id, "courseId", title, status) VALUES (11, 1, 'Welcome', 'draft')});

my $lms_before = public_state('lms');

# ------------------------------------------------- migrate.sh beside it

my ($rc, $out) = migrate('lms');
Test::More::is($rc, 0, 'migrate.sh succeeds beside an LMS that has its own users, courses and schema_migrations')
    or Test::More::diag($out);
Test::More::like($out, qr/^migrate\.sh: $n applied, 0 already applied \(schema vodlms\)$/m,
                 "every migration is applied, into schema vodlms");
Test::More::is(public_state('lms'), $lms_before, "the LMS's tables, rows and constraints are untouched");
Test::More::is(sql('lms', q{SELECT string_agg(version, ',' ORDER BY version) FROM public.schema_migrations}),
               '20240101000000,20240301120000', "the LMS's own schema_migrations holds only its own versions");
Test::More::is(sql('lms', q{SELECT to_regclass('vodlms.videos') IS NOT NULL, to_regclass('vodlms.users') IS NOT NULL,
                                   to_regclass('public.videos') IS NULL}),
               't|t|t', "vodlms's tables are in vodlms, none in public");

($rc, $out) = migrate('lms');
Test::More::is($rc, 0, 'a second run succeeds') or Test::More::diag($out);
Test::More::like($out, qr/^migrate\.sh: 0 applied, $n already applied \(schema vodlms\)$/m,
                 'a second run applies nothing');

($rc, $out) = migrate('lms', '--status');
Test::More::is($out, "schema   vodlms\n" . join('', map { "applied  $_\n" } @versions),
               '--status lists every migration as applied in schema vodlms');

# the LMS's course 1 has no row in vodlms.courses: a video of it is fine
sql('lms', q{INSERT INTO vodlms.videos (id, course_id, title, uploaded_by, storage_prefix, status,
                                         progress_percent)
             VALUES ('t067-direct', '1', 'A lesson of the LMS''s course 1', '8', 'hls/t067-direct/a/',
                     'ready', 100)});
Test::More::is(sql('lms', q{SELECT count(*) FROM vodlms.courses WHERE id = '1'}), '0',
               "a video of the LMS's course 1 needs no copy of the course in vodlms.courses");

# the trigger that records an old version, fired from a connection whose
# search_path does not hold the schema (as nginx's and the helper's)
sql('lms', q{UPDATE vodlms.videos SET storage_prefix = 'hls/t067-direct/b/' WHERE id = 't067-direct'});
Test::More::is(sql('lms', q{SELECT string_agg(storage_prefix, ',') FROM vodlms.videos_superseded
                             WHERE video_id = 't067-direct'}),
               'hls/t067-direct/a/', 'the superseded version is recorded by a trigger fired outside the schema');

# ------------------------------------------------- bad schema names

my $schemas_before = schemas('lms');
for my $bad ('Vodlms', 'vod-lms', 'pg_vodlms', '2vodlms', 'vodlms.x', 'x"; DROP TABLE users; --',
             'a' x 64, '')
{
    ($rc, $out) = migrate('lms', '--schema', $bad);
    Test::More::is($rc, 2, "--schema '$bad' is refused");
    Test::More::like($out, qr/^migrate\.sh: bad --schema "\Q$bad\E": want a plain lower-case SQL identifier/m,
                     "--schema '$bad': the message says why") or Test::More::diag($out);
}
($rc, $out) = run_cmd($migrate, conninfo('lms'), '--schema');
Test::More::is($rc, 2, '--schema without a name is refused');
Test::More::is(schemas('lms'), $schemas_before, 'refused names create nothing');
Test::More::is(public_state('lms'), $lms_before, "... and the LMS's tables are as they were");

# ------------------------------------------------- an install in public

# what migrate.sh did before schemas: every migration into public, recorded
# in public.schema_migrations (the same psql line, without a search_path)
my @old = grep { $_ lt '0009' } @versions;
$pg->psql('CREATE DATABASE legacy', 'postgres');
sql('legacy', q{CREATE TABLE schema_migrations (version text PRIMARY KEY,
                                                applied_at timestamptz NOT NULL DEFAULT now())});
for my $v (@old) {
    my ($r, $o) = run_cmd('psql', conninfo('legacy'), '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-1',
                      '-c', "INSERT INTO schema_migrations (version) VALUES ('$v')",
                      '-f', "$repo/sql/migrations/$v.sql");
    die "legacy install of $v: $o" if $r;
}
my $legacy_before = public_state('legacy');

($rc, $out) = migrate('legacy');
Test::More::is($rc, 3, 'an install in public: migrate.sh refuses to make a second copy in vodlms');
Test::More::like($out, qr/vodlms is already installed in schema "public".*--schema public.*vodlms_pg_schema public.*db_schema = public/s,
                 '... and says to pass --schema public (and the nginx and helper settings)')
    or Test::More::diag($out);
Test::More::is(schemas('legacy'), 'public', '... and creates no schema');
($rc, $out) = migrate('legacy', '--status');
Test::More::is($rc, 3, '--status says the same');

($rc, $out) = migrate('legacy', '--schema', 'public');
Test::More::is($rc, 0, '--schema public upgrades the install in public') or Test::More::diag($out);
Test::More::like($out, qr/^migrate\.sh: ${\ ($n - @old)} applied, ${\ scalar @old} already applied \(schema public\)$/m,
                 '... applying only the migrations from 0009 on');
Test::More::is(sql('legacy', q{SELECT count(*) FROM pg_constraint WHERE conname IN
                                 ('videos_course_id_fkey', 'videos_uploaded_by_fkey')}),
               '0', "... which drops videos' keys to courses and users");
Test::More::is(sql('legacy', q{SELECT string_agg(proname || ' ' || array_to_string(proconfig, ';'), ', ' ORDER BY proname)
                                 FROM pg_proc WHERE proname LIKE 'vodlms\_%'}),
               'vodlms_set_updated_at search_path=public, pg_catalog, '
               . 'vodlms_videos_superseded_log search_path=public, pg_catalog',
               "... and pins the trigger functions' search_path to public");
($rc, $out) = migrate('legacy', '--schema', 'public', '--status');
Test::More::is($out, "schema   public\n" . join('', map { "applied  $_\n" } @versions),
               '--status --schema public: everything applied');
Test::More::is(schemas('legacy'), 'public', 'still no second copy');

# ------------------------------------------------- a second schema

($rc, $out) = migrate('lms', '--schema', 'media', '--seed');
Test::More::is($rc, 0, 'a second install, in schema media, beside the first') or Test::More::diag($out);
($rc, $out) = migrate('lms', '--seed');
Test::More::is($rc, 0, 'the seed into vodlms') or Test::More::diag($out);
# the same video in both schemas, told apart by its title
sql('lms', q{UPDATE media.videos SET title = 'From the media schema' WHERE id = 'intro-ready'});
Test::More::is(public_state('lms'), $lms_before, "the LMS's tables are still untouched");

# ------------------------------------------------- the helper's db_schema

($rc, $out) = run_cmd($helper, '--db_schema', 'Vodlms', '--check_config');
Test::More::isnt($rc, 0, 'vodlms-helper refuses db_schema "Vodlms"');
Test::More::like($out, qr/"db_schema" must be a plain lower-case SQL identifier/,
                 '... and says why') or Test::More::diag($out);

# ------------------------------------------------- nginx and the helper

my $spool = "$tmp/spool";
mkdir $spool;
mkdir "$tmp/origin";
chmod 0755, $spool;
$ENV{TEST_NGINX_SPOOL} = $spool;
$ENV{TEST_NGINX_LMS_PG} = conninfo('lms');

$redis->cmd('SET', 'session:t067-ivy', '{"user_id":"8"}', 'EX', 3600);   # the LMS's instructor
$redis->cmd('SET', 'session:t067-ann', '{"user_id":"1"}', 'EX', 3600);   # the LMS's student
$redis->cmd('SET', 'session:t067-alice', '{"user_id":"1001"}', 'EX', 3600); # the seed's

# a real two-second clip
my $clip_file = "$tmp/clip.mp4";
system('ffmpeg', '-hide_banner', '-nostdin', '-loglevel', 'error', '-y',
       '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=2',
       '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000:duration=2',
       '-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac', '-shortest', $clip_file) == 0
    or die "ffmpeg could not make the clip\n";
our $clip = do { open my $fh, '<:raw', $clip_file or die $!; local $/; <$fh> };

open my $cf, '>', "$tmp/helper.conf" or die $!;
print $cf <<"CONF";
redis_host = 127.0.0.1
redis_port = ${\ $redis->port}
pg_conninfo = "${\ conninfo('lms')}"
origin_dir = $tmp/origin
source_root = $spool
segment_duration = 2
preset = ultrafast
threads = 2
ladder = 240p:300k
audio_bitrate = 64k
block_ms = 200
log_level = info
CONF
close $cf;

# the newest video of the LMS's course 1, as the database and the queue see it
sub newest {
    my $row = sql('lms', q{SELECT id || ' ' || status || ' ' || course_id || ' ' || coalesce(storage_prefix, '-')
                             FROM vodlms.videos WHERE course_id = '1' AND id <> 't067-direct'
                            ORDER BY created_at DESC LIMIT 1});
    my ($id, $status, $course, $prefix) = split / /, $row;
    return "no row\n" unless defined $id;
    my $jobs = $redis->cmd('XRANGE', 'vodlms:transcode', '-', '+');
    my $n = grep { my %f = @{ $_->[1] }; $f{video_id} eq $id } @$jobs;
    (my $p = $prefix) =~ s{^hls/\Q$id\E/[^/]+/$}{hls/<id>/<version>/};
    return "$status, course $course, jobs $n, prefix $p, vodlms.courses has 1: "
         . sql('lms', q{SELECT count(*) FROM vodlms.courses WHERE id = '1'}) . "\n";
}

# one helper, until the queue is idle
sub run_helper {
    my $log = "$tmp/helper.log";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>>', $log or POSIX::_exit(126);
        open STDERR, '>&', \*STDOUT or POSIX::_exit(126);
        exec $helper, '--config', "$tmp/helper.conf", '--exit-when-idle' or POSIX::_exit(127);
    }
    my $deadline = time + 90;
    while (time < $deadline) {
        return "helper exit " . ($? >> 8) . "\n" if waitpid($pid, WNOHANG) == $pid;
        sleep 0.05;
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
    return "helper killed after 90 s\n";
}

my ($ctl_port, $ctl) = control_server(
    '/newest'   => sub { newest() },
    '/helper'   => sub { run_helper() . newest() },
    '/progress' => sub {
        join '', map { "$_: " . sql('lms', qq{SELECT count(*) || ' row(s)' || coalesce(' at ' || max(position_seconds), '')
                                               FROM $_.watch_progress WHERE user_id = '1001'}) . "\n" }
                 qw(media vodlms);
    },
);
$ENV{TEST_NGINX_CTL_PORT} = $ctl_port;

# every block loads the module unless it says otherwise
block_defaults();

no_shuffle();
run_tests();

__DATA__

=== TEST 1: an upload for the LMS's course 1 (no row in vodlms.courses) lands in vodlms.videos, with its job: 202
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_PRIVATE_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_LMS_PG";
--- config
    location ~ ^/api/courses/(?<course>[0-9]+)/videos$ {
        client_max_body_size 10m;
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $request_id;
        # who may upload: the LMS's own tables decide
        vodlms_enrollment_query 'SELECT 1 AS teaches FROM public.courses c
                                  WHERE c.id = $1::int AND c."instructorId" = $2::int'
                                $course $vodlms_user_id;
        vodlms_enrollment_no_row 403;
        vodlms_upload new;
        vodlms_upload_course $course;
        vodlms_upload_title $http_x_title;
        vodlms_upload_spool $TEST_NGINX_SPOOL;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- request eval
["POST /api/courses/1/videos\n" . $::clip, "GET /ctl/newest"]
--- more_headers eval
["Cookie: session=t067-ivy\nX-Title: Lesson 1\nContent-Type: video/mp4", ""]
--- error_code eval
[202, 200]
--- response_body_like eval
[qr/^\{"videoId":"[0-9a-f]{32}","status":"queued"\}$/,
 qr/^queued, course 1, jobs 1, prefix -, vodlms.courses has 1: 0$/]
--- no_error_log
[error]



=== TEST 2: a student of the LMS may not upload, nor an instructor into a course not theirs: 403, nothing created
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_PRIVATE_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_LMS_PG";
--- config
    location ~ ^/api/courses/(?<course>[0-9]+)/videos$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $request_id;
        vodlms_enrollment_query 'SELECT 1 AS teaches FROM public.courses c
                                  WHERE c.id = $1::int AND c."instructorId" = $2::int'
                                $course $vodlms_user_id;
        vodlms_enrollment_no_row 403;
        vodlms_upload new;
        vodlms_upload_course $course;
        vodlms_upload_spool $TEST_NGINX_SPOOL;
    }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- request eval
["POST /api/courses/1/videos\nbytes", "POST /api/courses/2/videos\nbytes", "GET /ctl/newest"]
--- more_headers eval
["Cookie: session=t067-ann", "Cookie: session=t067-ivy", ""]
--- error_code eval
[403, 403, 200]
--- response_body_like eval
[qr/"error":"not_enrolled"/, qr/"error":"not_enrolled"/,
 qr/^queued, course 1, jobs 1, prefix -, vodlms.courses has 1: 0$/]



=== TEST 3: vodlms-helper (db_schema: the default, vodlms) finds the upload's row and job and makes it ready
--- config
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; proxy_read_timeout 120s; }
--- request
GET /ctl/helper
--- timeout: 120
--- response_body
helper exit 0
ready, course 1, jobs 1, prefix hls/<id>/<version>/, vodlms.courses has 1: 0



=== TEST 4: vodlms_pg_schema media: the default enrollment query reads media's tables, not vodlms's
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_PRIVATE_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_LMS_PG";
    vodlms_pg_schema media;
--- config
    location ~ ^/videos/(?<vid>[^/]+)/meta$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        proxy_set_header X-Video "$vodlms_video_id|$vodlms_video_title|$vodlms_video_status";
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/app/$vid;
    }
    location /app/ { return 200 "$http_x_video\n"; }
--- request
GET /videos/intro-ready/meta
--- more_headers
Cookie: session=t067-alice
--- response_body
intro-ready|From the media schema|ready
--- no_error_log
[error]



=== TEST 5: vodlms_pg_schema media: the default flush writes media.watch_progress
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_PRIVATE_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_LMS_PG";
    vodlms_pg_schema media;
    vodlms_progress_zone zone=progress:1m flush=100ms;
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/progress$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_progress on;
    }
--- request
POST /api/videos/intro-ready/progress
{"videoId":"intro-ready","currentTime":12.5,"duration":634.5,"event":"pause"}
--- more_headers
Cookie: session=t067-alice
Content-Type: application/json
--- error_code: 204
--- wait: 1
--- no_error_log
[error]
[warn]



=== TEST 6: ... the row is in media, none in vodlms
--- config
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- request
GET /ctl/progress
--- response_body
media: 1 row(s) at 12.500
vodlms: 0 row(s)
