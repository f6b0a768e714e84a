# Caption upload (issue #23): an instructor of the course uploads a WebVTT or
# SRT file for one language of a lecture ("vodlms_upload captions" with
# vodlms_upload_caption).  It streams to the spool, becomes a video_captions
# row (the last upload's columns only: what is published stays until the
# helper publishes the new file) and a job with "kind captions" on the
# stream, then 202.  Whoever may not, and whatever is malformed, is refused
# with a JSON reason and changes nothing: no row in video_captions or
# videos, no stream entry, no spooled file.  If the job cannot be queued,
# the row is put back as it was and the file removed.  A DELETE removes a
# language the same way (TEST 25 on): gated alike, no body, the row's last
# upload becomes the removal (a "delete:" marker), a job with "delete 1".
#
# The control server looks at the state itself: the rows in PostgreSQL, the
# entries of the stream (XRANGE), the files in the spool.  /snap remembers
# all of it, /changes says what differs since.  Redis is stopped with its
# data saved (as a production Redis keeps its stream), so a stream that
# comes back with no new entry really got none.

use FindBin;
use lib "$FindBin::Bin/lib";
use VodlmsTest;
use File::Temp qw(tempdir);
use Test::Nginx::Socket 'no_plan';

my $STREAM = 'vodlms:transcode';

my $redis = start_redis();
$ENV{TEST_NGINX_PRIVATE_REDIS_PORT} = $redis->port;

sub sessions {
    $redis->cmd('SET', 'session:t112-carol', '{"user_id":"1003","role":"instructor"}', 'EX', 3600);
    $redis->cmd('SET', 'session:t112-alice', '{"user_id":"1001","role":"student"}', 'EX', 3600);
    $redis->cmd('SET', 'session:t112-olga', '{"user_id":"2001","role":"instructor"}', 'EX', 3600);
}
sessions();

my $pg = start_pg();
$ENV{TEST_NGINX_PRIVATE_PG} = $pg->conninfo;

# carol teaches course-intro (the seed); olga teaches course-other only
$pg->psql(q{INSERT INTO vodlms.users (id, email, display_name, role) VALUES
            ('2001', 'olga@example.com', 'Olga Instructor', 'instructor')});
$pg->psql(q{INSERT INTO vodlms.courses (id, title, slug) VALUES ('course-other', 'Other', 'other')});
$pg->psql(q{INSERT INTO vodlms.course_instructors (course_id, user_id) VALUES ('course-other', '2001')});

# lectures of carol's course, and one of olga's
$pg->psql(q{INSERT INTO vodlms.videos (id, course_id, title) VALUES
            ('cap-1', 'course-intro', 'Week 1'), ('cap-2', 'course-intro', 'Week 2'),
            ('cap-3', 'course-intro', 'Week 3'), ('cap-4', 'course-intro', 'Week 4'), ('other-1', 'course-other', 'Theirs')});

# cap-1 has French captions published, and a later French file the helper
# refused; cap-2 has Japanese ones the same way
my $VTT = q{E'WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nBonjour\n'};      # SQL
for (['cap-1', 'fr', 'Français', 'true', 'caption_timestamp: line 7: end before start'],
     ['cap-2', 'ja', '日本語', 'false', 'caption_encoding: UTF-16 (BOM FF FE)'])
{
    my ($id, $lang, $label, $def, $error) = @$_;
    $pg->psql("INSERT INTO vodlms.video_captions (video_id, lang, label, is_default, status,"
            . " source_location, error, requested_at, vtt, revision, cues, published_at) VALUES"
            . " ('$id', '$lang', '$label', $def, 'failed', '/old/$id-$lang.srt', '$error',"
            . " '2026-12-01 10:00:00.123456+00', $VTT, '20261201T095900Z-0a1b2c3d', 1,"
            . " '2026-12-01 09:59:00+00')");
}

# what the published VTT is
my $VTT_MD5 = $pg->psql("SELECT md5($VTT)");
die "the published VTT is not as written\n"
    unless $pg->psql("SELECT count(*) FROM vodlms.video_captions WHERE vtt = $VTT AND vtt LIKE '%Bonjour' || chr(10)") == 2;

# the same tables in another schema (sql/migrate.sh --schema media), for
# vodlms_pg_schema
{
    my $root = "$FindBin::Bin/..";
    my $ci = $pg->conninfo;
    my $out = `$root/sql/migrate.sh '$ci' --schema media 2>&1`;
    die "migrate.sh --schema media: $out" if $?;
    $pg->psql(q{INSERT INTO media.courses (id, title, slug) VALUES ('course-intro', 'Intro', 'intro')});
    $pg->psql(q{INSERT INTO media.videos (id, course_id, title) VALUES ('m-1', 'course-intro', 'Media 1')});
}

# the spool, on the same filesystem as the servroot's client_body_temp
my $spool = tempdir('vodlms-spool-XXXXXX', TMPDIR => 1, CLEANUP => 1);
$ENV{TEST_NGINX_SPOOL} = $spool;

# a spooled file's name, with the parts that vary shown as what they are
sub spooled {
    my ($path) = @_;
    return $path =~ m{^\Q$spool\E/([A-Za-z0-9_-]+)-\d+-\d+-\d+\.(\w+)$}
         ? "SPOOL/$1-MSEC-PID-CONN.$2" : "not in the spool: $path";
}

sub jobs { $redis->running ? $redis->cmd('XRANGE', $STREAM, '-', '+') : [] }

# everything an upload may change
my %snap;
sub snapshot {
    my ($captions, $media, $videos) = split /\|/, $pg->psql(q{SELECT
        (SELECT md5(coalesce(string_agg(c::text, '|' ORDER BY video_id, lang), ''))
           FROM vodlms.video_captions c) || '|' ||
        (SELECT md5(coalesce(string_agg(c::text, '|' ORDER BY video_id, lang), ''))
           FROM media.video_captions c) || '|' ||
        (SELECT md5(string_agg(v::text, '|' ORDER BY id)) FROM vodlms.videos v)});
    return (
        video_captions => $captions,
        media_captions => $media,
        videos => $videos,
        stream => scalar(@{ jobs() }),
        spool  => scalar(my @f = glob "$spool/*"),
    );
}
sub changes {
    my %now = snapshot();
    return join('; ', map {
        my $k = $_;
        $k =~ /^(?:stream|spool)$/
            ? ($now{$k} == $snap{$k} ? "$k unchanged" : sprintf("%s %+d", $k, $now{$k} - $snap{$k}))
            : ($now{$k} eq $snap{$k} ? "$k unchanged" : "$k changed");
    } qw(video_captions media_captions videos stream spool)) . "\n";
}

# the video's caption rows, the last upload's columns and the published ones
sub captions_of {
    my ($id, $schema) = @_;
    $schema ||= 'vodlms';
    my $rows = $pg->psql("SELECT lang, label, is_default, status, coalesce(source_location, '-'),"
                       . " coalesce(error, '-'), requested_at > now() - interval '1 hour',"
                       . " coalesce(md5(vtt), '-'), coalesce(revision, '-')"
                       . " FROM $schema.video_captions WHERE video_id = '$id' ORDER BY lang");
    my $vtt = $VTT_MD5;
    my @jobs = grep { my %f = @{ $_->[1] }; $f{video_id} eq $id } @{ jobs() };
    my %job = @jobs ? @{ $jobs[-1][1] } : ();
    my $out = '';
    for (split /\n/, $rows) {
        my ($lang, $label, $def, $status, $src, $err, $recent, $md5, $rev) = split /\|/;
        $out .= "$lang: label \"$label\", default $def; last upload $status, "
              . ($src =~ m{^/old/} ? "source $src" : spooled($src))
              . ($jobs[-1] && $src eq ($job{source} // '') ? ' (the newest job\'s)' : '')
              . ", error $err, requested " . ($recent eq 't' ? 'now' : 'before')
              . "; published " . ($md5 eq '-' ? 'nothing' : $md5 eq $vtt ? "the old VTT, revision $rev" : 'another VTT')
              . "\n";
    }
    return $out || "no captions\n";
}

# the newest stream entry of the video: every field in order, and its file
sub job_of {
    my ($id) = @_;
    my @jobs = grep { my %f = @{ $_->[1] }; $f{video_id} eq $id } @{ jobs() };
    return "no job\n" unless @jobs;
    my @f = @{ $jobs[-1][1] };
    my ($src, $out) = ('', '');
    while (my ($k, $v) = splice @f, 0, 2) {
        $src = $v if $k eq 'source';
        $v = spooled($v) if $k eq 'source';
        $v = ($v =~ /^\d{10}$/ && abs($v - time) < 600 ? 'now' : "bad: $v") if $k eq 'enqueued_at';
        $out .= "$k=$v ";
    }
    my $content = -f $src ? do { local $/; open my $fh, '<', $src; <$fh> } : undef;
    return "jobs " . scalar(@jobs) . ": $out\n"
         . (defined $content
            ? "file \"$content\", " . (((stat $src)[2] & 0040) ? 'group-readable' : 'owner only') . "\n"
            : "no file\n");
}

my $squat = '';
my ($ctl_port, $ctl) = control_server(
    '/snap'        => sub { %snap = snapshot(); "snapped\n" },
    '/changes'     => sub { changes() },
    '/captions'    => sub { my ($p, $q) = @_; my ($id) = $q =~ /id=([\w-]+)/;
                            my ($s) = $q =~ /schema=(\w+)/; captions_of($id, $s) },
    '/job'         => sub { my ($p, $q) = @_; my ($id) = $q =~ /id=([\w-]+)/; job_of($id) },
    '/quota'       => sub {
        my %h = @{ $redis->cmd('HGETALL', "$STREAM:spool:1003") };
        join('', map { spooled($_) . " $h{$_} bytes\n" } sort keys %h) || "nothing counted\n";
    },
    # each language's last upload: its spooled file and what that file holds
    '/sources'     => sub { my ($p, $q) = @_; my ($id) = $q =~ /id=([\w-]+)/;
        my @rows = map { [ split /\|/ ] } split /\n/, $pg->psql(
            "SELECT lang, source_location FROM vodlms.video_captions"
          . " WHERE video_id = '$id' AND lang IN ('de', 'it') ORDER BY lang");
        my %files = map { $_->[1] => 1 } @rows;
        join('', map {
            my $c = -f $_->[1] ? do { local $/; open my $fh, '<', $_->[1]; <$fh> } : undef;
            "$_->[0]: " . (defined $c ? "\"$c\"" : 'no file') . "\n";
        } @rows) . scalar(keys %files) . " distinct file(s)\n" },
    # a file put where the next upload of the same tick would be named
    # (its language's row gives the name: <video>-<msec>-<pid>-<conn>): as
    # one left from before a reboot, or another node's on a shared spool
    '/squat'       => sub { my ($p, $q) = @_; my ($id) = $q =~ /id=([\w-]+)/;
        my $src = $pg->psql("SELECT source_location FROM vodlms.video_captions"
                          . " WHERE video_id = '$id' AND lang = 'de'");
        my ($dir, $ms, $rest) = $src =~ m{^(.*/\Q$id\E)-(\d+)-(\d+-\d+\.captions)$}
            or return "no spooled file of $id: $src\n";
        my $name = "$dir-" . ($ms + 1) . "-$rest";
        open my $fh, '>', $name or return "cannot create $name: $!\n";
        print $fh "not yours";
        close $fh;
        $squat = $name;
        "squatted the next name\n" },
    '/squatted'    => sub {
        my $c = -f $squat ? do { local $/; open my $fh, '<', $squat; <$fh> } : 'gone';
        my $it = $pg->psql("SELECT source_location FROM vodlms.video_captions"
                         . " WHERE video_id = 'cap-4' AND lang = 'it'");
        my $itc = -f $it ? do { local $/; open my $fh, '<', $it; <$fh> } : 'no file';
        "the file that was there: \"$c\"\n"
        . "it's upload " . ($it eq $squat ? 'took its name' : 'has a name of its own') . ": \"$itc\"\n" },
    '/redis/stop'  => sub { $redis->cmd('SAVE'); $redis->stop; "stopped\n" },
    '/redis/start' => sub { $redis->start unless $redis->running; sessions(); "started\n" },
);
$ENV{TEST_NGINX_CTL_PORT} = $ctl_port;

# the caption location of docs/directives.md; LOCATION in a block's config
our $Location = <<'CONF';
    location ~ ^/api/videos/(?<video_id>[A-Za-z0-9_-]+)/captions/(?<lang>[A-Za-z0-9-]+)$ {
        client_max_body_size 2m;
        vodlms_auth on;
        vodlms_session_role_field role;
        vodlms_session_cache answers valid=1m;
        vodlms_auth_require_role instructor admin;
        vodlms_enrollment_check on;
        vodlms_video_id $video_id;
        vodlms_enrollment_query "SELECT 1 AS teaches FROM vodlms.course_instructors WHERE course_id = $1 AND user_id = $2" $arg_course $vodlms_user_id;
        vodlms_enrollment_no_row 403;
        vodlms_upload captions;
        vodlms_upload_course $arg_course;
        vodlms_upload_caption $lang label=$arg_label default=$arg_default;
        vodlms_upload_spool $TEST_NGINX_SPOOL;
CONF

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('main_config', "    load_module \$TEST_NGINX_MODULE_PATH;\n")
        unless defined $block->main_config;
    $block->set_value('http_config', "    vodlms_redis 127.0.0.1:\$TEST_NGINX_PRIVATE_REDIS_PORT;\n"
                                   . "    vodlms_pg \"\$TEST_NGINX_PRIVATE_PG\";\n"
                                   . "    vodlms_cache_zone zone=answers:1m;\n")
        unless defined $block->http_config;
    # the control server runs psql: on a loaded machine it takes its time
    $block->set_value('timeout', 20) unless defined $block->timeout;
    my $config = $block->config // "LOCATION\n    }\n";
    $config =~ s/^\s*LOCATION\n/$Location/m;
    $block->set_value('config', $config
        . "    location /ctl/ { proxy_pass http://127.0.0.1:\$TEST_NGINX_CTL_PORT/; }\n");
});

no_shuffle();
run_tests();

__DATA__

=== TEST 1: an instructor of the course uploads English captions: 202, a queued row (nothing published yet), a caption job with every field, the spooled file; the video row untouched
--- request eval
["GET /ctl/snap",
 "POST /api/videos/cap-1/captions/EN-us?course=course-intro&label=English+%28US%29&default=1\nWEBVTT\n\n00:00:01.000 --> 00:00:02.000\nHello\n",
 "GET /ctl/changes",
 "GET /ctl/captions?id=cap-1",
 "GET /ctl/job?id=cap-1"]
--- more_headers eval
["", "Cookie: session=t112-carol\nContent-Type: text/vtt", "", "", ""]
--- error_code eval
[200, 202, 200, 200, 200]
--- response_body eval
["snapped\n",
 "{\"videoId\":\"cap-1\",\"lang\":\"en-US\",\"status\":\"queued\"}\n",
 "video_captions changed; media_captions unchanged; videos unchanged; stream +1; spool +1\n",
 "en-US: label \"English (US)\", default f; last upload queued, SPOOL/cap-1-MSEC-PID-CONN.captions (the newest job's), error -, requested now; published nothing\n"
 . "fr: label \"Français\", default t; last upload failed, source /old/cap-1-fr.srt, error caption_timestamp: line 7: end before start, requested before; published the old VTT, revision 20261201T095900Z-0a1b2c3d\n",
 "jobs 1: video_id=cap-1 kind=captions source=SPOOL/cap-1-MSEC-PID-CONN.captions lang=en-US label=English (US) default=1 enqueued_at=now owner=1003 \n"
 . "file \"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nHello\", group-readable\n"]
--- no_error_log
[error]



=== TEST 2: a new file for a language already published: the published label, default flag, VTT and revision stay (they play until the helper publishes the new file); the last upload is queued with the new file, its old error cleared
--- request eval
["GET /ctl/snap",
 "POST /api/videos/cap-1/captions/fr?course=course-intro&label=French+(new)&default=no\n1\n00:00:01,000 --> 00:00:02,500\nBonjour !\n",
 "GET /ctl/changes",
 "GET /ctl/captions?id=cap-1",
 "GET /ctl/job?id=cap-1"]
--- more_headers eval
["", "Cookie: session=t112-carol", "", "", ""]
--- error_code eval
[200, 202, 200, 200, 200]
--- response_body eval
["snapped\n",
 "{\"videoId\":\"cap-1\",\"lang\":\"fr\",\"status\":\"queued\"}\n",
 "video_captions changed; media_captions unchanged; videos unchanged; stream +1; spool +1\n",
 "en-US: label \"English (US)\", default f; last upload queued, SPOOL/cap-1-MSEC-PID-CONN.captions, error -, requested now; published nothing\n"
 . "fr: label \"Français\", default t; last upload queued, SPOOL/cap-1-MSEC-PID-CONN.captions (the newest job's), error -, requested now; published the old VTT, revision 20261201T095900Z-0a1b2c3d\n",
 "jobs 2: video_id=cap-1 kind=captions source=SPOOL/cap-1-MSEC-PID-CONN.captions lang=fr label=French (new) default=0 enqueued_at=now owner=1003 \n"
 . "file \"1\n00:00:01,000 --> 00:00:02,500\nBonjour !\", group-readable\n"]



=== TEST 3: no label and no default flag (empty, as a form sends them): the label is the language, not the default
--- request eval
["POST /api/videos/cap-3/captions/de?course=course-intro&label=&default=\nWEBVTT\n",
 "GET /ctl/captions?id=cap-3",
 "GET /ctl/job?id=cap-3"]
--- more_headers eval
["Cookie: session=t112-carol", "", ""]
--- error_code eval
[202, 200, 200]
--- response_body eval
["{\"videoId\":\"cap-3\",\"lang\":\"de\",\"status\":\"queued\"}\n",
 "de: label \"de\", default f; last upload queued, SPOOL/cap-3-MSEC-PID-CONN.captions (the newest job's), error -, requested now; published nothing\n",
 "jobs 1: video_id=cap-3 kind=captions source=SPOOL/cap-3-MSEC-PID-CONN.captions lang=de label=de default=0 enqueued_at=now owner=1003 \n"
 . "file \"WEBVTT\", group-readable\n"]



=== TEST 4: language tags in their canonical case (script Title, region upper, the rest lower); every yes and no of the default flag; a label of exactly 64 bytes of UTF-8
--- request eval
["POST /api/videos/cap-3/captions/ZH-HANS?course=course-intro&default=TRUE\nx",
 "POST /api/videos/cap-3/captions/sr-latn-rs?course=course-intro&default=yes\nx",
 "POST /api/videos/cap-3/captions/ES-419?course=course-intro&default=On\nx",
 "POST /api/videos/cap-3/captions/SL-Rozaj-BISKE?course=course-intro&default=false\nx",
 "POST /api/videos/cap-3/captions/pt-br?course=course-intro&default=OFF&label=" . ("%C3%A9" x 32) . "\nx",
 "GET /ctl/job?id=cap-3"]
--- more_headers eval
[("Cookie: session=t112-carol") x 5, ""]
--- error_code eval
[202, 202, 202, 202, 202, 200]
--- response_body eval
["{\"videoId\":\"cap-3\",\"lang\":\"zh-Hans\",\"status\":\"queued\"}\n",
 "{\"videoId\":\"cap-3\",\"lang\":\"sr-Latn-RS\",\"status\":\"queued\"}\n",
 "{\"videoId\":\"cap-3\",\"lang\":\"es-419\",\"status\":\"queued\"}\n",
 "{\"videoId\":\"cap-3\",\"lang\":\"sl-rozaj-biske\",\"status\":\"queued\"}\n",
 "{\"videoId\":\"cap-3\",\"lang\":\"pt-BR\",\"status\":\"queued\"}\n",
 "jobs 6: video_id=cap-3 kind=captions source=SPOOL/cap-3-MSEC-PID-CONN.captions lang=pt-BR label=" . ("é" x 32) . " default=0 enqueued_at=now owner=1003 \nfile \"x\", group-readable\n"]



=== TEST 5: a student is refused (403 forbidden_role), and nothing changes
--- request eval
["GET /ctl/snap",
 "POST /api/videos/cap-1/captions/en?course=course-intro&label=Mine\nWEBVTT\n",
 "GET /ctl/changes"]
--- more_headers eval
["", "Cookie: session=t112-alice", ""]
--- error_code eval
[200, 403, 200]
--- response_body eval
["snapped\n",
 "{\"error\":\"forbidden_role\",\"message\":\"the user's role is not allowed here\"}\n",
 "video_captions unchanged; media_captions unchanged; videos unchanged; stream unchanged; spool unchanged\n"]



=== TEST 6: an instructor of another course, naming her own course: 404 video_not_found (the video is not in her course), and nothing changes
--- request eval
["GET /ctl/snap",
 "POST /api/videos/cap-1/captions/en?course=course-other&label=Mine\nWEBVTT\n",
 "GET /ctl/changes"]
--- more_headers eval
["", "Cookie: session=t112-olga", ""]
--- error_code eval
[200, 404, 200]
--- response_body eval
["snapped\n",
 "{\"error\":\"video_not_found\",\"message\":\"no such video\"}\n",
 "video_captions unchanged; media_captions unchanged; videos unchanged; stream unchanged; spool unchanged\n"]



=== TEST 6b: ... the log line says which refusal it was
--- request
POST /api/videos/cap-1/captions/en?course=course-other&label=Mine
WEBVTT
--- more_headers
Cookie: session=t112-olga
--- error_code: 404
--- response_body
{"error":"video_not_found","message":"no such video"}
--- error_log
vodlms: no such video: the video belongs to another course, answering 404



=== TEST 7: an instructor of another course, naming the video's course: 403 not_enrolled (she does not teach it), and nothing changes
--- request eval
["GET /ctl/snap",
 "POST /api/videos/cap-1/captions/en?course=course-intro&label=Mine\nWEBVTT\n",
 "GET /ctl/changes"]
--- more_headers eval
["", "Cookie: session=t112-olga", ""]
--- error_code eval
[200, 403, 200]
--- response_body eval
["snapped\n",
 "{\"error\":\"not_enrolled\",\"message\":\"the user is not enrolled in the video's course\"}\n",
 "video_captions unchanged; media_captions unchanged; videos unchanged; stream unchanged; spool unchanged\n"]



=== TEST 8: no session: 401 no_session, and nothing changes
--- request eval
["GET /ctl/snap",
 "POST /api/videos/cap-1/captions/en?course=course-intro\nWEBVTT\n",
 "GET /ctl/changes"]
--- error_code eval
[200, 401, 200]
--- response_body eval
["snapped\n",
 "{\"error\":\"no_session\",\"message\":\"no session token in the request\"}\n",
 "video_captions unchanged; media_captions unchanged; videos unchanged; stream unchanged; spool unchanged\n"]



=== TEST 9: carol names her course for a video of another course: 404 video_not_found (ids of other courses cannot be probed), and nothing changes
--- request eval
["GET /ctl/snap",
 "POST /api/videos/other-1/captions/en?course=course-intro\nWEBVTT\n",
 "GET /ctl/changes",
 "GET /ctl/captions?id=other-1"]
--- more_headers eval
["", "Cookie: session=t112-carol", "", ""]
--- error_code eval
[200, 404, 200, 200]
--- response_body eval
["snapped\n",
 "{\"error\":\"video_not_found\",\"message\":\"no such video\"}\n",
 "video_captions unchanged; media_captions unchanged; videos unchanged; stream unchanged; spool unchanged\n",
 "no captions\n"]



=== TEST 9b: ... the log line says which refusal it was
--- request
POST /api/videos/other-1/captions/en?course=course-intro
WEBVTT
--- more_headers
Cookie: session=t112-carol
--- error_code: 404
--- response_body
{"error":"video_not_found","message":"no such video"}
--- error_log
vodlms: no such video: the video belongs to another course, answering 404



=== TEST 10: a video nobody created: 404 video_not_found, and nothing changes (no videos row appears either)
--- request eval
["GET /ctl/snap",
 "POST /api/videos/cap-404/captions/en?course=course-intro\nWEBVTT\n",
 "GET /ctl/changes"]
--- more_headers eval
["", "Cookie: session=t112-carol", ""]
--- error_code eval
[200, 404, 200]
--- response_body eval
["snapped\n",
 "{\"error\":\"video_not_found\",\"message\":\"no such video\"}\n",
 "video_captions unchanged; media_captions unchanged; videos unchanged; stream unchanged; spool unchanged\n"]



=== TEST 10b: ... the log line says which refusal it was
--- request
POST /api/videos/cap-404/captions/en?course=course-intro
WEBVTT
--- more_headers
Cookie: session=t112-carol
--- error_code: 404
--- response_body
{"error":"video_not_found","message":"no such video"}
--- error_log
vodlms: no such video: no videos row: the LMS creates the lecture before its upload, answering 404



=== TEST 11: languages that are not language tags: 400 bad_caption_language each, and nothing changes
--- request eval
["GET /ctl/snap",
 (map { "POST /api/videos/cap-1/captions/$_?course=course-intro\nWEBVTT\n" }
  qw(e english 123 1en e1 en- en--US -en en-abcdefghi en-a-b-c-d en-US-x-y-z)),
 "GET /ctl/changes"]
--- more_headers eval
["", ("Cookie: session=t112-carol") x 11, ""]
--- error_code eval
[200, (400) x 11, 200]
--- response_body eval
["snapped\n",
 ("{\"error\":\"bad_caption_language\",\"message\":\"the caption language is not a language tag such as en or pt-BR\"}\n") x 11,
 "video_captions unchanged; media_captions unchanged; videos unchanged; stream unchanged; spool unchanged\n"]



=== TEST 11b: ... one log line at info says what a language tag is
--- request
POST /api/videos/cap-1/captions/english?course=course-intro
WEBVTT
--- more_headers
Cookie: session=t112-carol
--- error_code: 400
--- response_body
{"error":"bad_caption_language","message":"the caption language is not a language tag such as en or pt-BR"}
--- error_log eval
qr/\[info\] .*vodlms: the caption language is not a language tag such as en or pt-BR: want 2-3 letters, then up to 3 subtags of 1-8 letters or digits, joined by "-", answering 400/



=== TEST 12: labels that are not 1-64 bytes of text: 400 bad_caption_label each, and nothing changes
--- request eval
["GET /ctl/snap",
 (map { "POST /api/videos/cap-1/captions/en?course=course-intro&label=$_\nWEBVTT\n" }
  ("a" x 65, ("%C3%A9" x 32) . "a", "Say+%22hi%22", "two%0Alines", "tab%09", "del%7F", "nel%C2%85",
   "line%E2%80%A8sep", "latin1%E9", "overlong%C0%AF", "surrogate%ED%A0%80", "bad%G1", "cut%4", "nul%00",
   "%23EXT-X-CONTENT-STEERING:SERVER-URI=https://evil.example/s", "x%23ext-x-stream-inf", "%7B%24v%7D")),
 "GET /ctl/changes"]
--- more_headers eval
["", ("Cookie: session=t112-carol") x 17, ""]
--- error_code eval
[200, (400) x 17, 200]
--- response_body eval
["snapped\n",
 ("{\"error\":\"bad_caption_label\",\"message\":\"the caption label is not 1-64 bytes of text without quotes, control characters, #EXT or {\$\"}\n") x 17,
 "video_captions unchanged; media_captions unchanged; videos unchanged; stream unchanged; spool unchanged\n"]



=== TEST 13: default flags that are neither yes nor no: 400 bad_caption_default each, and nothing changes
--- request eval
["GET /ctl/snap",
 (map { "POST /api/videos/cap-1/captions/en?course=course-intro&default=$_\nWEBVTT\n" }
  qw(2 maybe yes%20 y -1)),
 "GET /ctl/changes"]
--- more_headers eval
["", ("Cookie: session=t112-carol") x 5, ""]
--- error_code eval
[200, (400) x 5, 200]
--- response_body eval
["snapped\n",
 ("{\"error\":\"bad_caption_default\",\"message\":\"the caption default flag is not one of 1, true, yes, on, 0, false, no, off\"}\n") x 5,
 "video_captions unchanged; media_captions unchanged; videos unchanged; stream unchanged; spool unchanged\n"]



=== TEST 14: an empty caption file: 400 empty_upload, and nothing changes
--- request eval
["GET /ctl/snap",
 "POST /api/videos/cap-1/captions/en?course=course-intro",
 "GET /ctl/changes"]
--- more_headers eval
["", "Cookie: session=t112-carol", ""]
--- error_code eval
[200, 400, 200]
--- response_body eval
["snapped\n",
 "{\"error\":\"empty_upload\",\"message\":\"the upload has no body\"}\n",
 "video_captions unchanged; media_captions unchanged; videos unchanged; stream unchanged; spool unchanged\n"]



=== TEST 15: over client_max_body_size: 413, and nothing changes
--- request eval
["GET /ctl/snap",
 "POST /api/videos/cap-1/captions/en?course=course-intro\n" . ("x" x (2 * 1024 * 1024 + 1)),
 "GET /ctl/changes"]
--- more_headers eval
["", "Cookie: session=t112-carol", ""]
--- error_code eval
[200, 413, 200]
--- response_body_like eval
[qr/^snapped$/, qr/413/,
 qr/^video_captions unchanged; media_captions unchanged; videos unchanged; stream unchanged; spool unchanged$/]



=== TEST 16: Redis down when the job is queued, for a new language: 503, the row it inserted is deleted, the file removed, no job
--- request eval
["POST /api/videos/cap-2/captions/ko?course=course-intro\nthe session is cached now",
 "GET /ctl/snap",
 "GET /ctl/redis/stop",
 "POST /api/videos/cap-2/captions/es?course=course-intro&label=Espa%C3%B1ol\nWEBVTT\n",
 "GET /ctl/redis/start",
 "GET /ctl/changes",
 "GET /ctl/captions?id=cap-2"]
--- more_headers eval
["Cookie: session=t112-carol", "", "", "Cookie: session=t112-carol", "", "", ""]
--- error_code eval
[202, 200, 200, 503, 200, 200, 200]
--- response_body_like eval
[qr/"lang":"ko"/, qr/^snapped$/, qr/^stopped$/,
 qr/^\{"error":"backend_unavailable"/, qr/^started$/,
 qr/^video_captions unchanged; media_captions unchanged; videos unchanged; stream unchanged; spool unchanged$/,
 qr/^ja: label "日本語", default f; last upload failed, source \/old\/cap-2-ja.srt, error caption_encoding: UTF-16 \(BOM FF FE\), requested before; published the old VTT, revision 20261201T095900Z-0a1b2c3d\nko: /]
--- no_error_log
[alert]



=== TEST 17: Redis down when the job is queued, for a language already there: 503, the row gets its previous status, source, error and time back (published columns never touched), the file removed, no job
--- request eval
["POST /api/videos/cap-2/captions/ko?course=course-intro\nthe session is cached now",
 "GET /ctl/snap",
 "GET /ctl/redis/stop",
 "POST /api/videos/cap-2/captions/ja?course=course-intro&label=Japanese&default=1\nWEBVTT\n",
 "GET /ctl/redis/start",
 "GET /ctl/changes",
 "GET /ctl/captions?id=cap-2"]
--- more_headers eval
["Cookie: session=t112-carol", "", "", "Cookie: session=t112-carol", "", "", ""]
--- error_code eval
[202, 200, 200, 503, 200, 200, 200]
--- response_body_like eval
[qr/"lang":"ko"/, qr/^snapped$/, qr/^stopped$/,
 qr/^\{"error":"backend_unavailable"/, qr/^started$/,
 qr/^video_captions unchanged; media_captions unchanged; videos unchanged; stream unchanged; spool unchanged$/,
 qr/^ja: label "日本語", default f; last upload failed, source \/old\/cap-2-ja.srt, error caption_encoding: UTF-16 \(BOM FF FE\), requested before; published the old VTT, revision 20261201T095900Z-0a1b2c3d\nko: /]
--- no_error_log
[alert]



=== TEST 18: with vodlms_upload_quota, a caption file counts to the uploader's spooled bytes like a video
--- config
LOCATION
        vodlms_upload_quota bytes=1m;
    }
--- request eval
["POST /api/videos/cap-3/captions/it?course=course-intro\nWEBVTT\n\n",
 "GET /ctl/quota"]
--- more_headers eval
["Cookie: session=t112-carol", ""]
--- error_code eval
[202, 200]
--- response_body eval
["{\"videoId\":\"cap-3\",\"lang\":\"it\",\"status\":\"queued\"}\n",
 "SPOOL/cap-3-MSEC-PID-CONN.captions 6 bytes\n"]



=== TEST 19: vodlms_pg_schema: the row goes into that schema's video_captions (and the video must be in that schema's videos)
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_PRIVATE_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
    vodlms_pg_schema media;
    vodlms_cache_zone zone=answers:1m;
--- request eval
["GET /ctl/snap",
 "POST /api/videos/m-1/captions/nl?course=course-intro&label=Nederlands\nWEBVTT\n",
 "GET /ctl/changes",
 "GET /ctl/captions?id=m-1&schema=media",
 "POST /api/videos/cap-1/captions/nl?course=course-intro\nWEBVTT\n"]
--- more_headers eval
["", "Cookie: session=t112-carol", "", "", "Cookie: session=t112-carol"]
--- error_code eval
[200, 202, 200, 200, 404]
--- response_body eval
["snapped\n",
 "{\"videoId\":\"m-1\",\"lang\":\"nl\",\"status\":\"queued\"}\n",
 "video_captions unchanged; media_captions changed; videos unchanged; stream +1; spool +1\n",
 "nl: label \"Nederlands\", default f; last upload queued, SPOOL/m-1-MSEC-PID-CONN.captions (the newest job's), error -, requested now; published nothing\n",
 "{\"error\":\"video_not_found\",\"message\":\"no such video\"}\n"]



=== TEST 20: only POST and PUT upload: a GET is 405, and nothing changes
--- request eval
["GET /ctl/snap",
 "GET /api/videos/cap-1/captions/en?course=course-intro",
 "PUT /api/videos/cap-1/captions/ko?course=course-intro\nWEBVTT\n",
 "GET /ctl/changes"]
--- more_headers eval
["", "Cookie: session=t112-carol", "Cookie: session=t112-carol", ""]
--- error_code eval
[200, 405, 202, 200]
--- response_body_like eval
[qr/^snapped$/, qr/405/, qr/^\{"videoId":"cap-1","lang":"ko","status":"queued"\}$/,
 qr/^video_captions changed; media_captions unchanged; videos unchanged; stream \+1; spool \+1$/]



=== TEST 21: two languages of one video on one connection (pipelined), both in the same tick of nginx's clock (timer_resolution): each gets its own spooled file, with its own bytes (the second never replaces the first's)
--- main_config
    load_module $TEST_NGINX_MODULE_PATH;
    timer_resolution 60s;
--- pipelined_requests eval
["POST /api/videos/cap-3/captions/de?course=course-intro\nWEBVTT\n\n00:00:01.000 --> 00:00:02.000\nHallo\n",
 "POST /api/videos/cap-3/captions/it?course=course-intro\nWEBVTT\n\n00:00:01.000 --> 00:00:02.000\nCiao\n"]
--- more_headers
Cookie: session=t112-carol
--- error_code eval
[202, 202]
--- response_body eval
["{\"videoId\":\"cap-3\",\"lang\":\"de\",\"status\":\"queued\"}\n",
 "{\"videoId\":\"cap-3\",\"lang\":\"it\",\"status\":\"queued\"}\n"]



=== TEST 22: ... the rows of cap-3 name two files, de's says Hallo and it's says Ciao
--- request
GET /ctl/sources?id=cap-3
--- response_body
de: "WEBVTT

00:00:01.000 --> 00:00:02.000
Hallo"
it: "WEBVTT

00:00:01.000 --> 00:00:02.000
Ciao"
2 distinct file(s)



=== TEST 23: a name that is taken in the spool (a file from before a reboot, or another node's on a shared spool) is never replaced: the next upload of the tick finds it there and takes the name after it
--- main_config
    load_module $TEST_NGINX_MODULE_PATH;
    timer_resolution 60s;
--- pipelined_requests eval
["POST /api/videos/cap-4/captions/de?course=course-intro\nWEBVTT\n\n00:00:01.000 --> 00:00:02.000\nHallo\n",
 "GET /ctl/squat?id=cap-4",
 "POST /api/videos/cap-4/captions/it?course=course-intro\nWEBVTT\n\n00:00:01.000 --> 00:00:02.000\nCiao\n"]
--- more_headers
Cookie: session=t112-carol
--- error_code eval
[202, 200, 202]
--- response_body eval
["{\"videoId\":\"cap-4\",\"lang\":\"de\",\"status\":\"queued\"}\n",
 "squatted the next name\n",
 "{\"videoId\":\"cap-4\",\"lang\":\"it\",\"status\":\"queued\"}\n"]



=== TEST 24: ... the file that was there is untouched, and Italian's upload has its own file with its own bytes
--- request
GET /ctl/squatted
--- response_body
the file that was there: "not yours"
it's upload has a name of its own: "WEBVTT

00:00:01.000 --> 00:00:02.000
Ciao"



=== TEST 25: removing a language (DELETE, the language in any case): 202 with "remove":true; the row's last upload is the removal (queued, a "delete:" marker that names no file, error cleared, requested now) while its published captions stay until the helper acts; a caption job with "delete 1"; nothing spooled, the video row untouched
--- request eval
["GET /ctl/snap",
 "DELETE /api/videos/cap-2/captions/JA?course=course-intro",
 "GET /ctl/changes",
 "GET /ctl/captions?id=cap-2",
 "GET /ctl/job?id=cap-2"]
--- more_headers eval
["", "Cookie: session=t112-carol", "", "", ""]
--- error_code eval
[200, 202, 200, 200, 200]
--- response_body_like eval
[qr/^snapped$/,
 qr/^\{"videoId":"cap-2","lang":"ja","status":"queued","remove":true\}$/,
 qr/^video_captions changed; media_captions unchanged; videos unchanged; stream \+1; spool unchanged$/,
 qr/^ja: label "日本語", default f; last upload queued, not in the spool: delete:cap-2-\d+-\d+-\d+ \(the newest job's\), error -, requested now; published the old VTT, revision 20261201T095900Z-0a1b2c3d\nko: /,
 qr/^jobs \d+: video_id=cap-2 kind=captions source=not in the spool: delete:cap-2-\d+-\d+-\d+ lang=ja delete=1 enqueued_at=now owner=1003 \nno file$/]
--- no_error_log
[error]



=== TEST 26: ... the log line says a removal was queued
--- request
DELETE /api/videos/cap-2/captions/ko?course=course-intro
--- more_headers
Cookie: session=t112-carol
--- error_code: 202
--- response_body
{"videoId":"cap-2","lang":"ko","status":"queued","remove":true}
--- error_log eval
qr/vodlms upload: removal of captions ko of video cap-2 queued as job \d+-\d+/



=== TEST 27: a removal is gated as the upload is: a student (403 forbidden_role), an instructor of another course naming the video's course (403 not_enrolled), no session (401 no_session): refused, and nothing changes; then carol's removal of the same language is what changes it
--- request eval
["GET /ctl/snap",
 "DELETE /api/videos/cap-1/captions/fr?course=course-intro",
 "DELETE /api/videos/cap-1/captions/fr?course=course-intro",
 "DELETE /api/videos/cap-1/captions/fr?course=course-intro",
 "GET /ctl/changes",
 "DELETE /api/videos/cap-1/captions/fr?course=course-intro",
 "GET /ctl/changes"]
--- more_headers eval
["", "Cookie: session=t112-alice", "Cookie: session=t112-olga", "", "", "Cookie: session=t112-carol", ""]
--- error_code eval
[200, 403, 403, 401, 200, 202, 200]
--- response_body eval
["snapped\n",
 "{\"error\":\"forbidden_role\",\"message\":\"the user's role is not allowed here\"}\n",
 "{\"error\":\"not_enrolled\",\"message\":\"the user is not enrolled in the video's course\"}\n",
 "{\"error\":\"no_session\",\"message\":\"no session token in the request\"}\n",
 "video_captions unchanged; media_captions unchanged; videos unchanged; stream unchanged; spool unchanged\n",
 "{\"videoId\":\"cap-1\",\"lang\":\"fr\",\"status\":\"queued\",\"remove\":true}\n",
 "video_captions changed; media_captions unchanged; videos unchanged; stream +1; spool unchanged\n"]



=== TEST 28: an instructor of another course naming her own course: 404 video_not_found (the video is not in her course), and nothing changes
--- request eval
["GET /ctl/snap",
 "DELETE /api/videos/cap-1/captions/en-US?course=course-other",
 "GET /ctl/changes"]
--- more_headers eval
["", "Cookie: session=t112-olga", ""]
--- error_code eval
[200, 404, 200]
--- response_body eval
["snapped\n",
 "{\"error\":\"video_not_found\",\"message\":\"no such video\"}\n",
 "video_captions unchanged; media_captions unchanged; videos unchanged; stream unchanged; spool unchanged\n"]



=== TEST 28b: ... the log line says which refusal it was
--- request
DELETE /api/videos/cap-1/captions/en-US?course=course-other
--- more_headers
Cookie: session=t112-olga
--- error_code: 404
--- error_log
vodlms: no such video: the video belongs to another course, answering 404



=== TEST 29: carol names her course for a video of another course: 404 video_not_found, never caption_not_found (the languages of other courses' videos cannot be probed), and nothing changes
--- request eval
["GET /ctl/snap",
 "DELETE /api/videos/other-1/captions/en?course=course-intro",
 "DELETE /api/videos/cap-404/captions/en?course=course-intro",
 "GET /ctl/changes"]
--- more_headers eval
["", "Cookie: session=t112-carol", "Cookie: session=t112-carol", ""]
--- error_code eval
[200, 404, 404, 200]
--- response_body eval
["snapped\n",
 "{\"error\":\"video_not_found\",\"message\":\"no such video\"}\n",
 "{\"error\":\"video_not_found\",\"message\":\"no such video\"}\n",
 "video_captions unchanged; media_captions unchanged; videos unchanged; stream unchanged; spool unchanged\n"]



=== TEST 29b: ... the log line says which refusal it was (another course's video)
--- request
DELETE /api/videos/other-1/captions/en?course=course-intro
--- more_headers
Cookie: session=t112-carol
--- error_code: 404
--- error_log
vodlms: no such video: the video belongs to another course, answering 404



=== TEST 29c: ... (no such video)
--- request
DELETE /api/videos/cap-404/captions/en?course=course-intro
--- more_headers
Cookie: session=t112-carol
--- error_code: 404
--- error_log
vodlms: no such video: no videos row: the LMS creates the lecture before its upload, answering 404



=== TEST 30: a language the video does not have: 404 caption_not_found, and nothing changes (no row appears); the log line says which it was; a language that is not a language tag: 400 bad_caption_language
--- request eval
["GET /ctl/snap",
 "DELETE /api/videos/cap-1/captions/de?course=course-intro",
 "DELETE /api/videos/cap-1/captions/e?course=course-intro",
 "GET /ctl/changes",
 "GET /ctl/captions?id=cap-1"]
--- more_headers eval
["", "Cookie: session=t112-carol", "Cookie: session=t112-carol", "", ""]
--- error_code eval
[200, 404, 400, 200, 200]
--- response_body_like eval
[qr/^snapped$/,
 qr/^\{"error":"caption_not_found","message":"the video has no captions in this language"\}$/,
 qr/^\{"error":"bad_caption_language"/,
 qr/^video_captions unchanged; media_captions unchanged; videos unchanged; stream unchanged; spool unchanged$/,
 qr/^en-US: [^\n]*\nfr: [^\n]*\nko: [^\n]*$/]



=== TEST 30b: ... the log line says it was the language, not the video
--- request
DELETE /api/videos/cap-1/captions/de?course=course-intro
--- more_headers
Cookie: session=t112-carol
--- error_code: 404
--- response_body
{"error":"caption_not_found","message":"the video has no captions in this language"}
--- error_log
vodlms: the video has no captions in this language: no captions of this language to remove, answering 404



=== TEST 31: a body sent with a removal is discarded unread: the removal is queued as without it, nothing is spooled
--- request eval
["GET /ctl/snap",
 "DELETE /api/videos/cap-3/captions/de?course=course-intro\nWEBVTT\n\n00:00:01.000 --> 00:00:02.000\nnot read\n",
 "GET /ctl/changes",
 "GET /ctl/job?id=cap-3"]
--- more_headers eval
["", "Cookie: session=t112-carol", "", ""]
--- error_code eval
[200, 202, 200, 200]
--- response_body_like eval
[qr/^snapped$/,
 qr/^\{"videoId":"cap-3","lang":"de","status":"queued","remove":true\}$/,
 qr/^video_captions changed; media_captions unchanged; videos unchanged; stream \+1; spool unchanged$/,
 qr/ source=not in the spool: delete:cap-3-\d+-\d+-\d+ lang=de delete=1 enqueued_at=now owner=1003 \nno file$/]



=== TEST 32: Redis down when the removal is queued: 503, the row gets its previous status, source, error and time back (its published captions never touched), no job
--- request eval
["DELETE /api/videos/cap-1/captions/xx?course=course-intro",
 "GET /ctl/captions?id=cap-1",
 "GET /ctl/snap",
 "GET /ctl/redis/stop",
 "DELETE /api/videos/cap-1/captions/en-US?course=course-intro",
 "GET /ctl/redis/start",
 "GET /ctl/changes",
 "GET /ctl/captions?id=cap-1"]
--- more_headers eval
["Cookie: session=t112-carol", "", "", "", "Cookie: session=t112-carol", "", "", ""]
--- error_code eval
[404, 200, 200, 200, 503, 200, 200, 200]
--- response_body_like eval
[qr/"caption_not_found"/,
 qr/^en-US: label "English \(US\)", default f; last upload queued, SPOOL\/cap-1-MSEC-PID-CONN\.captions, error -, requested now; published nothing\n/,
 qr/^snapped$/, qr/^stopped$/,
 qr/^\{"error":"backend_unavailable"/, qr/^started$/,
 qr/^video_captions unchanged; media_captions unchanged; videos unchanged; stream unchanged; spool unchanged$/,
 qr/^en-US: label "English \(US\)", default f; last upload queued, SPOOL\/cap-1-MSEC-PID-CONN\.captions, error -, requested now; published nothing\n/]
--- no_error_log
[alert]



=== TEST 33: methods other than POST, PUT and DELETE stay 405, and nothing changes
--- request eval
["GET /ctl/snap",
 "PATCH /api/videos/cap-1/captions/fr?course=course-intro\nx",
 "OPTIONS /api/videos/cap-1/captions/fr?course=course-intro",
 "GET /ctl/changes"]
--- more_headers eval
["", "Cookie: session=t112-carol", "Cookie: session=t112-carol", ""]
--- error_code eval
[200, 405, 405, 200]
--- response_body_like eval
[qr/^snapped$/, qr/405/, qr/405/,
 qr/^video_captions unchanged; media_captions unchanged; videos unchanged; stream unchanged; spool unchanged$/]



=== TEST 34: vodlms_upload on (a video location) does not take DELETE: 405
--- config
    location ~ ^/api/videos/(?<video_id>[A-Za-z0-9_-]+)/upload$ {
        vodlms_auth on;
        vodlms_session_role_field role;
        vodlms_auth_require_role instructor admin;
        vodlms_video_id $video_id;
        vodlms_upload on;
        vodlms_upload_course $arg_course;
        vodlms_upload_spool $TEST_NGINX_SPOOL;
    }
--- request
DELETE /api/videos/cap-1/upload?course=course-intro
--- more_headers
Cookie: session=t112-carol
--- error_code: 405
