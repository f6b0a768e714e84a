# The hostile-input corpus: what an attacker (or a broken client) can send
# to the session gate, the enrollment check, the playback endpoint, the
# self-hosted edge and the progress beacons.  Every case sits beside its
# valid baseline, gets the documented status and JSON reason, changes
# nothing (no query for a refused id, no Redis lookup for a refused token,
# no progress row for a refused beacon, every table intact), and crashes
# nothing: every block refuses [alert] and [crit], the workers run under a
# master (a crashed worker is an "[alert] ... exited on signal" line), and
# the last block checks that one worker survived the whole corpus, with no
# core file left behind.
#
# The setup is a realistic one: a private Redis holding the sessions, a
# private PostgreSQL with sql/'s schema, the demo seed and this file's own
# course (ana, enrolled in course-t140, watching t140-lecture), CloudFront
# signing with the shared test key, the edge verifying over a small HLS
# tree, beacons buffered and flushed every 200 ms.  Expected CloudFront
# cookies are computed here with the openssl CLI; TEST 1 shows that the
# playback endpoint issues exactly those bytes (a huge expiry bucket pins
# every expiry to 2000000000).
#
# Replays of expired credentials freeze nginx's clock with
# t/bin/nginx-test-clock (libfaketime), as t/080-edge.t does.
#
# TEST 10 found a real hole (fixed in 2483c72): the edge matched the policy
# against the raw path while nginx served the resolved one, so a policy for
# one video fetched another video's files through "..".

use FindBin;
BEGIN {
    $ENV{VODLMS_REAL_NGINX} = $ENV{TEST_NGINX_BINARY} || 'nginx';
    $ENV{TEST_NGINX_BINARY} = "$FindBin::Bin/bin/nginx-test-clock";
}
use lib "$FindBin::Bin/lib";
use VodlmsTest;
use Digest::SHA qw(hmac_sha256_base64);
use File::Temp qw(tempdir);
use MIME::Base64 qw(encode_base64);
use Test::Nginx::Socket 'no_plan';

#---------------------------------------------------------------------------
# Backends: a private Redis and a private PostgreSQL
#---------------------------------------------------------------------------

my $redis = start_redis();
$ENV{TEST_NGINX_PRIVATE_REDIS_PORT} = $redis->port;

# sessions as an LMS writes them
$redis->cmd('SET', 'session:t140-ana', '{"user_id":"u140-ana","role":"student"}', 'EX', 3600);
$redis->cmd('SET', 'session:t140-alice', '{"user_id":"1001","role":"student"}', 'EX', 3600);
# a user id full of SQL: it only ever travels as a query parameter
$redis->cmd('SET', 'session:t140-sqli', q({"user_id":"u140-ana' OR '1'='1"}), 'EX', 3600);

# an express-session + connect-redis session (cookie-signature's format:
# "s:" + sid + "." + base64(HMAC-SHA256(secret, sid)) without padding)
our $express_secret = 't140 keyboard cat';
our $express_sid = 'Xk3f9QeZb1t140sidAbCdEfGhIjKlMnOp';
$redis->cmd('SET', "sess:$express_sid",
            '{"cookie":{"originalMaxAge":3600000,"httpOnly":true,"path":"/"},'
            . '"passport":{"user":"u140-ana"}}', 'EX', 3600);

sub uri_escape_sig { my $s = shift; $s =~ s/([^A-Za-z0-9._~-])/sprintf('%%%02X', ord $1)/ge; $s }
our $express_cookie = 's%3A' . $express_sid . '.'
    . uri_escape_sig(hmac_sha256_base64($express_sid, $express_secret));
(our $express_forged = $express_cookie) =~ s/(.)$/$1 eq 'A' ? 'B' : 'A'/e;

my $pg = start_pg(log_statements => 1);
$ENV{TEST_NGINX_PRIVATE_PG} = $pg->conninfo;

# this file's own course: ana is enrolled in course-t140 and nothing else;
# alice (demo seed) is enrolled in course-intro and nothing else
$pg->psql(q{
    INSERT INTO vodlms.users (id, email, display_name, role)
        VALUES ('u140-ana', 'ana@t140.example', 'Ana Student', 'student');
    INSERT INTO vodlms.courses (id, title, slug) VALUES ('course-t140', 'Reading untrusted bytes', 't140');
    INSERT INTO vodlms.enrollments (user_id, course_id, status) VALUES ('u140-ana', 'course-t140', 'active');
    INSERT INTO vodlms.videos (id, course_id, title, duration_seconds, status, progress_percent, storage_prefix)
        VALUES ('t140-lecture', 'course-t140', 'Lecture 1: Hostile input', 600, 'ready', 100,
                'hls/t140-lecture/');
});

# what "the database is intact" means: every table and its row count
sub db_state {
    $pg->psql(q{SELECT string_agg(c.relname || '=' || (xpath('/row/n/text()',
                    query_to_xml('SELECT count(*) AS n FROM vodlms.' || quote_ident(c.relname), false, true, '')))[1]::text,
                    ' ' ORDER BY c.relname)
                  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = 'vodlms' AND c.relkind IN ('r', 'v')
                   AND c.relname <> 'watch_progress'});
}
my $db_before = db_state();

#---------------------------------------------------------------------------
# CloudFront credentials, computed independently of the module
#---------------------------------------------------------------------------

my $vectors = $ENV{VODLMS_VECTORS_DIR} || "$FindBin::Bin/../../shared/vectors/cloudfront";
-f "$vectors/test_private_key.pem" or die "no CloudFront test vectors at $vectors\n";
$ENV{TEST_NGINX_CF_KEY} = private_key("$vectors/test_private_key.pem");
$ENV{TEST_NGINX_CF_PUBKEY} = "$vectors/test_public_key.pem";
my $other_key = "$vectors/test_other_private_key.pem";

my $tmp = tempdir(CLEANUP => 1);

# CloudFront's URL-safe base64: standard, padded, then + = / -> - _ ~
sub cf_b64 { my $b = encode_base64($_[0], ''); $b =~ tr{+=/}{-_~}; $b }

sub sign {
    my ($policy, $key) = @_;
    open my $fh, '>', "$tmp/policy" or die $!;
    print $fh $policy;
    close $fh;
    my $sig = `openssl dgst -sha1 -sign $key $tmp/policy`;
    die "openssl dgst failed\n" if $?;
    return cf_b64($sig);
}

my $cdn = 'https://cdn.example.test';
our $E = 2000000000;

sub policy {
    my ($res, $exp) = @_;
    return qq({"Statement":[{"Resource":"$res","Condition":{"DateLessThan":{"AWS:EpochTime":$exp}}}]});
}

sub cookies {
    my ($pol_b64, $sig, $kid) = @_;
    return "CloudFront-Policy=$pol_b64; CloudFront-Signature=$sig; "
         . "CloudFront-Key-Pair-Id=" . ($kid // 'K2JCJMDEHXQW5F');
}

# ana's credentials for her lecture, as the playback endpoint issues them
our $ana_pol = cf_b64(policy("$cdn/hls/t140-lecture/*", $E));
our $ana_sig = sign(policy("$cdn/hls/t140-lecture/*", $E), $ENV{TEST_NGINX_CF_KEY});
our $ana = cookies($ana_pol, $ana_sig);

# alice's, for another video in another course
our $alice_pol = cf_b64(policy("$cdn/hls/intro-ready/*", $E));
our $alice_sig = sign(policy("$cdn/hls/intro-ready/*", $E), $ENV{TEST_NGINX_CF_KEY});
our $alice = cookies($alice_pol, $alice_sig);

# the hostile variants
(our $forged_sig = $ana_sig) =~ s/^(.{10})(.)/$1 . ($2 eq 'A' ? 'B' : 'A')/e;
our $other_key_sig = sign(policy("$cdn/hls/t140-lecture/*", $E), $other_key);
our $everything_pol = cf_b64(policy("$cdn/*", $E));
our $everything_sig = sign(policy("$cdn/*", $E), $other_key);
our $expired_pol = cf_b64(policy("$cdn/hls/t140-lecture/*", 1000000000));
our $expired_sig = sign(policy("$cdn/hls/t140-lecture/*", 1000000000), $ENV{TEST_NGINX_CF_KEY});
our $notjson_pol = cf_b64('not json at all');
our $notjson_sig = sign('not json at all', $ENV{TEST_NGINX_CF_KEY});
our $huge_pol = 'A' x 17000;

#---------------------------------------------------------------------------
# Expected answers
#---------------------------------------------------------------------------

sub err { my ($code, $msg) = @_; qq({"error":"$code","message":"$msg"}\n) }
sub e401 { err($_[0], { no_session => 'no session token in the request',
                        invalid_session => 'malformed session token',
                        bad_signature => 'session cookie signature does not match',
                        unknown_session => 'unknown or expired session' }->{$_[0]}) }
our $bad_id = qq({"error":"bad_video_id","message":"malformed video id"}\n);
our $not_found = qq({"error":"video_not_found","message":"no such video"}\n);
our $not_enrolled = qq({"error":"not_enrolled","message":"the user is not enrolled in the video's course"}\n);
sub edge { qq({"error":"forbidden","message":"CloudFront credentials rejected","reason":"$_[0]"}\n) }
sub beacon { qq({"error":"bad_beacon","message":"progress beacon rejected","reason":"$_[0]"}\n) }

# nginx's own refusals, before any module code runs
our $ngx400 = qr{<title>400 Bad Request</title>};
our $ngx_too_large = qr{<title>400 Request Header Or Cookie Too Large</title>};
our $ngx414 = qr{<title>414 Request-URI Too Large</title>};
our $ngx404 = qr{<title>404 Not Found</title>};
our $ngx405 = qr{<title>405 Not Allowed</title>};

our $ana_playback = qr/\A\{"videoId":"t140-lecture","title":"Lecture 1: Hostile input","duration":600\.0,"status":"ready","manifestUrl":"\Q$cdn\E\/hls\/t140-lecture\/master\.m3u8","expiresAt":2000000000,"resumeAt":[\d.]+\}\n\z/;
our $intro_playback = qr/\A\{"videoId":"intro-ready",.*"status":"ready"/;
our $segment = "segment 1 of t140-lecture\n";

# a beacon body for ana's lecture; the defaults are a valid one
sub body {
    my %f = (videoId => '"t140-lecture"', currentTime => 100, duration => 600, @_);
    my @order = grep { defined $f{$_} } ('videoId', 'currentTime', 'duration',
                                         grep { !/^(videoId|currentTime|duration)$/ } sort keys %f);
    return '{' . join(',', map { qq("$_":$f{$_}) } @order) . '}';
}
sub post { "POST /api/videos/t140-lecture/progress\n" . $_[0] }

#---------------------------------------------------------------------------
# The control server: what a user would check, from outside nginx
#---------------------------------------------------------------------------

my $cores = tempdir('vodlms-t140-cores-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0777, $cores;
$ENV{TEST_NGINX_CORE_DIR} = $cores;

sub wait_until {
    my ($what, $cond) = @_;
    my $deadline = time + 10;
    while (time < $deadline) {
        my $v = eval { $cond->() };
        return $v if $v;
        select undef, undef, undef, 0.02;
    }
    return "timed out waiting for $what\n";
}

sub pg_log_count {
    my $re = shift;
    open my $fh, '<', $pg->log_file or return 0;
    return scalar grep { /$re/ } <$fh>;
}

sub redis_gets {
    my $info = $redis->cmd('INFO', 'commandstats');
    return $info =~ /^cmdstat_get:calls=(\d+)/m ? $1 : 0;
}

sub progress_row {
    my ($user, $video, $full) = @_;
    $pg->psql("SELECT user_id || ' ' || video_id || ' ' || position_seconds || ' '"
            . " || max_position_seconds || ' ' || (completed_at IS NOT NULL)"
            . ($full ? " || ' ' || watched_seconds || ' ' || updated_at" : '')
            . " FROM vodlms.watch_progress WHERE user_id = '$user' AND video_id = '$video'");
}

sub args { my %a = map { split /=/, $_, 2 } split /&/, ($_[0] // ''); %a }

my $servroot = $ENV{TEST_NGINX_SERVROOT} || "$FindBin::Bin/servroot";
my (%mark, %snapshot);

my ($ctl_port, $ctl) = control_server(
    # the worker that serves /ctl/ now: remembered, then compared
    '/worker/mark' => sub {
        my (undef, undef, undef, $h) = @_;
        $mark{worker} = $h->{'x-worker'};
        "marked\n";
    },
    '/worker/same' => sub {
        my (undef, undef, undef, $h) = @_;
        my @out;
        push @out, $h->{'x-worker'} eq ($mark{worker} // '')
            ? 'same worker' : "worker $mark{worker} replaced by $h->{'x-worker'}";
        open my $fh, '<', "$servroot/logs/error.log" or return "no error.log\n";
        my @exited = grep { /exited on signal|exited with fatal code/ } <$fh>;
        push @out, @exited ? "workers died: @exited" : 'no worker died';
        opendir my $d, $cores or return "no core dir\n";
        my @core = grep { !/^\.\.?$/ } readdir $d;
        push @out, @core ? "core files: @core" : 'no core file';
        join('; ', @out) . "\n";
    },
    # enrollment queries PostgreSQL ran (it logs every statement)
    '/pg/mark' => sub { $mark{pg} = pg_log_count(qr/LOG:  execute vodlms_q/); "marked\n" },
    '/pg/queries' => sub {
        (pg_log_count(qr/LOG:  execute vodlms_q/) - $mark{pg}) . " enrollment queries since the mark\n";
    },
    # session lookups Redis answered
    '/redis/mark' => sub { $mark{redis} = redis_gets(); "marked\n" },
    '/redis/gets' => sub { (redis_gets() - $mark{redis}) . " GETs since the mark\n" },
    '/db/intact' => sub {
        my $now = db_state();
        $now eq $db_before ? "every table and row is there\n" : "before: $db_before\nafter: $now\n";
    },
    # a progress row once it has this position (the flush is asynchronous)
    '/progress/wait' => sub {
        my %a = args($_[1]);
        my $row = wait_until("$a{user}'s row at $a{pos}", sub {
            my $r = progress_row($a{user}, $a{video});
            $r =~ /^\S+ \S+ \Q$a{pos}\E / ? $r : undef;
        });
        $snapshot{"$a{user}/$a{video}"} = progress_row($a{user}, $a{video}, 1);
        "$row\n";
    },
    '/progress/unchanged' => sub {
        my %a = args($_[1]);
        my $now = progress_row($a{user}, $a{video}, 1);
        my $before = $snapshot{"$a{user}/$a{video}"} // '';
        $now eq $before ? "unchanged\n" : "changed: before \"$before\", after \"$now\"\n";
    },
    '/progress/rows' => sub {
        $pg->psql(q{SELECT coalesce(string_agg(user_id || ' ' || video_id || ' ' || position_seconds, '; '
                                               ORDER BY user_id, video_id), 'none')
                      FROM vodlms.watch_progress}) . "\n";
    },
);
$ENV{TEST_NGINX_CTL_PORT} = $ctl_port;

#---------------------------------------------------------------------------
# The configuration every block shares, unless it says otherwise
#---------------------------------------------------------------------------

sub main_config {
    my $clock = shift;
    return "    load_module \$TEST_NGINX_MODULE_PATH;\n"
         . ($clock ? "    # vodlms-test-clock: $clock\n" : '')
         . "    # a crashed worker leaves its core here; the last block looks\n"
         . "    worker_rlimit_core 64m;\n"
         . "    working_directory \$TEST_NGINX_CORE_DIR;\n";
}

our $http_config = <<'EOF';
    # headers up to 32k reach the module; longer ones are nginx's 400/414
    large_client_header_buffers 4 32k;

    vodlms_redis 127.0.0.1:$TEST_NGINX_PRIVATE_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
    vodlms_cache_zone zone=answers:1m;
    vodlms_progress_zone zone=progress:1m flush=200ms;
EOF

our $config = <<'EOF';
    location ~ ^/api/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_session_cache answers;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_enrollment_cache answers;
        vodlms_cloudfront_url https://cdn.example.test;
        vodlms_cloudfront_key K2JCJMDEHXQW5F $TEST_NGINX_CF_KEY;
        vodlms_cloudfront_expiry_bucket 1000000000s;
        vodlms_cloudfront_signature_cache answers;
        vodlms_playback cookies;
    }

    # the same endpoint for players that pass the id in the query string:
    # $arg_v is the raw, undecoded value
    location = /api/watch {
        vodlms_auth on;
        vodlms_session_cache answers;
        vodlms_enrollment_check on;
        vodlms_video_id $arg_v;
        vodlms_enrollment_cache answers;
        vodlms_cloudfront_url https://cdn.example.test;
        vodlms_cloudfront_key K2JCJMDEHXQW5F $TEST_NGINX_CF_KEY;
        vodlms_cloudfront_expiry_bucket 1000000000s;
        vodlms_playback cookies;
    }

    location ~ ^/api/videos/(?<vid>[^/]+)/progress$ {
        vodlms_auth on;
        vodlms_session_cache answers;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_enrollment_cache answers;
        vodlms_progress on;
    }

    location /hls/ {
        vodlms_edge on;
        vodlms_edge_url https://cdn.example.test;
        vodlms_edge_public_key K2JCJMDEHXQW5F $TEST_NGINX_CF_PUBKEY;
        vodlms_edge_signature_cache answers;
        root html;
    }

    # any other API path: a plain 404, not a file lookup
    location /api/ { return 404; }

    location /ctl/ {
        proxy_set_header X-Worker $pid;
        proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/;
    }
EOF

our $user_files = <<'EOF';
>>> hls/t140-lecture/master.m3u8
#EXTM3U
>>> hls/t140-lecture/seg_00001.ts
segment 1 of t140-lecture
>>> hls/intro-ready/seg_00001.ts
segment 1 of intro-ready
EOF

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('main_config', main_config()) unless defined $block->main_config;
    $block->set_value('http_config', $http_config) unless defined $block->http_config;
    $block->set_value('config', $config) unless defined $block->config;
    $block->set_value('user_files', $user_files) unless defined $block->user_files;

    # the point of this file: no block may forget to look for a crash
    my $nel = $block->no_error_log // '';
    my $text = ref $nel ? join("\n", @$nel) : $nel;
    for my $level ('[alert]', '[crit]') {
        index($text, $level) >= 0
            or bail_out($block->name . " - no \"--- no_error_log $level\"");
    }
});

master_on();
workers(1);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: the baseline: ana's session, enrollment, playback cookies (byte-exact), edge and resume all work
--- request eval
["GET /api/videos/t140-lecture/stream",
 "GET /api/watch?v=t140-lecture",
 "GET /hls/t140-lecture/seg_00001.ts",
 "GET /api/videos/t140-lecture/progress"]
--- more_headers eval
["Cookie: session=t140-ana", "Cookie: session=t140-ana", "Cookie: $::ana",
 "Cookie: session=t140-ana"]
--- error_code eval
[200, 200, 200, 200]
--- response_body eval
[$::ana_playback, $::ana_playback, $::segment,
 qq({"videoId":"t140-lecture","position":0.000,"duration":600.000,"completed":false}\n)]
--- raw_response_headers_like eval
[qr/\r\nSet-Cookie: CloudFront-Policy=\Q$::ana_pol\E; .*\r\nSet-Cookie: CloudFront-Signature=\Q$::ana_sig\E; /,
 qr/\r\nSet-Cookie: CloudFront-Policy=\Q$::ana_pol\E; .*\r\nSet-Cookie: CloudFront-Signature=\Q$::ana_sig\E; /,
 qr/\r\nCache-Control: max-age=31536000, immutable\r\n/,
 qr/\r\nContent-Type: application\/json\r\n/]
--- no_error_log
[error]
[warn]
[alert]
[crit]



=== TEST 2: hostile session tokens: 8 KB, SQL, NUL, bad characters: 401 invalid_session, and Redis is never asked
--- request eval
["GET /api/videos/t140-lecture/stream",
 "GET /ctl/redis/mark",
 ("GET /api/videos/t140-lecture/stream") x 8,
 "GET /ctl/redis/gets",
 # a well-formed unknown token does reach Redis: the counter counts
 "GET /api/videos/t140-lecture/stream",
 "GET /ctl/redis/gets"]
--- more_headers eval
["Cookie: session=t140-ana",
 "",
 "Cookie: session=" . ("a" x 8300),
 "Cookie: session=t140-ana'; DROP TABLE vodlms.users;--",
 "Cookie: session=1 OR 1=1",
 "Cookie: session=t140-ana%00",
 "Cookie: session=t140-ana%zz",
 "Cookie: session=%2e%2e%2fsession:t140-ana",
 "Authorization: Bearer " . ("b" x 8300),
 "Authorization: Bearer {\"user_id\":\"1005\"}",
 "",
 "Cookie: session=t140-nobody-has-this",
 ""]
--- error_code eval
[200, 200, 401, 401, 401, 401, 401, 401, 401, 401, 200, 401, 200]
--- response_body eval
[$::ana_playback, "marked\n",
 (main::e401('invalid_session')) x 8,
 "0 GETs since the mark\n",
 main::e401('unknown_session'),
 "1 GETs since the mark\n"]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 3: a session cookie sent twice with different values: the first one counts, and a bad first one fails closed
# The module takes the first occurrence of the cookie, in one Cookie header
# or across several (ngx_http_vodlms_session.c:239-283, as docs/directives.md
# says under vodlms_session_cookie).  It never falls back to a later one: an
# empty or malformed first value fails closed.  An explicit Bearer token wins
# over any cookie.  nginx itself refuses a second Authorization header.
--- request eval
[("GET /api/videos/t140-lecture/stream") x 10]
--- more_headers eval
["Cookie: session=t140-ana; session=t140-nobody",
 "Cookie: session=t140-nobody; session=t140-ana",
 "Cookie: session=; session=t140-ana",
 "Cookie: session=t140-ana%00; session=t140-ana",
 "Cookie: session=t140-ana\nCookie: session=t140-nobody",
 "Cookie: session=t140-nobody\nCookie: session=t140-ana",
 "Cookie: Session=t140-ana; SESSION=t140-ana",
 "Cookie: session=t140-alice; session=t140-ana",
 "Authorization: Bearer t140-nobody\nCookie: session=t140-ana",
 "Authorization: Bearer t140-ana\nAuthorization: Bearer t140-nobody"]
--- error_code eval
[200, 401, 401, 401, 200, 401, 401, 403, 401, 400]
--- response_body eval
[$::ana_playback, main::e401('unknown_session'), main::e401('no_session'),
 main::e401('invalid_session'), $::ana_playback, main::e401('unknown_session'),
 main::e401('no_session'), $::not_enrolled, main::e401('unknown_session'), $::ngx400]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 4: headers past large_client_header_buffers, NUL bytes in headers: nginx's own 400/414, then business as usual
--- request eval
["GET /api/videos/t140-lecture/stream",
 "GET /api/videos/t140-lecture/stream",
 "GET /api/videos/t140-lecture/stream",
 "GET /api/videos/t140-lecture/stream?pad=" . ("p" x 40000),
 "GET /api/videos/t140-lecture/stream",
 "GET /api/videos/t140-lecture/stream"]
--- more_headers eval
["Cookie: session=t140-ana; pad=" . ("c" x 40000),
 "Cookie: session=t140-ana\0; x=1",
 "X-Padding: " . ("h" x 40000) . "\nCookie: session=t140-ana",
 "Cookie: session=t140-ana",
 "Cookie: " . CORE::join('; ', map { "c$_=v$_" } 1 .. 1500) . "; session=t140-ana",
 "Cookie: session=t140-ana"]
--- error_code eval
[400, 400, 400, 414, 200, 200]
--- response_body eval
[$::ngx_too_large, $::ngx400, $::ngx_too_large, $::ngx414, $::ana_playback, $::ana_playback]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 5: hostile video ids in the path: bad percent-encoding, NUL, 10 KB, SQL; none reaches PostgreSQL; traversals resolve first
# nginx decodes the path before the location's regex captures the id, so
# %zz, %00 and a truncated %4 are nginx's own 400.  What decodes is the
# module's: 400 bad_video_id, and no query runs.  A traversal (or an
# encoded slash) is resolved by nginx before the location is chosen, so
# the id the module checks is the id of the resolved path, and the
# enrollment check applies to it as to any request.
--- request eval
["GET /ctl/pg/mark",
 "GET /api/videos/%zz/stream",
 "GET /api/videos/%00/stream",
 "GET /api/videos/t140-lecture%00/stream",
 "GET /api/videos/t140-lecture%4/stream",
 "GET /api/videos/t140-lecture%4",
 "GET /api/videos/" . ("a" x 10240) . "/stream",
 "GET /api/videos/" . ("a" x 65) . "/stream",
 "GET /api/videos/%27%3B%20DROP%20TABLE%20videos%3B--/stream",
 "GET /api/videos/'%3B%20DROP%20TABLE%20videos;--/stream",
 "GET /api/videos/1%20OR%201=1/stream",
 "GET /api/videos/t140-lecture'--/stream",
 "GET /api/videos/t140-lecture%0d%0aX-Injected:%201/stream",
 "GET /api/videos/99999999999999999999999999999999999999999999999999999999999999999/stream",
 "GET /api/videos/%2e%2e/stream",
 "GET /api/videos/..%2f..%2f..%2fetc%2fpasswd/stream",
 "GET /ctl/pg/queries",
 # resolved by nginx: the resolved id is checked (ana may not watch intro-ready)
 "GET /api/videos/t140-lecture%2f..%2fintro-ready/stream",
 "GET /api/videos/intro-ready/../t140-lecture/stream",
 "GET /api/videos/t140-lecture%2fstream",
 # the longest id there is: a real lookup, no such video
 "GET /api/videos/" . ("a" x 64) . "/stream",
 "GET /ctl/pg/queries"]
--- more_headers eval
["", ("Cookie: session=t140-ana") x 15, "", ("Cookie: session=t140-ana") x 4, ""]
--- error_code eval
[200, (400) x 13, 404, 400, 200,
 403, 200, 200, 404, 200]
--- response_body eval
["marked\n", ($::ngx400) x 5, ($::bad_id) x 8, $::ngx404, $::ngx400,
 "0 enrollment queries since the mark\n",
 $::not_enrolled, $::ana_playback, $::ana_playback, $::not_found,
 "3 enrollment queries since the mark\n"]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 6: hostile video ids in the query string (raw, undecoded): every one is 400 bad_video_id, with no query
# $arg_v is the raw value: %zz, %00 and %4 reach the module as they are.
# A repeated v= is nginx's $arg_v: the first one.
--- request eval
["GET /api/watch?v=t140-lecture",
 "GET /ctl/pg/mark",
 "GET /api/watch?v=%zz",
 "GET /api/watch?v=%00",
 "GET /api/watch?v=t140-lecture%00",
 "GET /api/watch?v=t140-lecture%4",
 "GET /api/watch?v=t140-lecture%",
 "GET /api/watch?v=" . ("a" x 10240),
 "GET /api/watch?v='%3B%20DROP%20TABLE%20videos%3B--",
 "GET /api/watch?v=1+OR+1=1",
 "GET /api/watch?v=t140-lecture'+OR+'1'='1",
 "GET /api/watch?v=..%2f..%2fetc%2fpasswd",
 "GET /api/watch?v=%2e%2e",
 "GET /api/watch?v=t140%2Dlecture",
 "GET /api/watch?v=",
 "GET /api/watch",
 "GET /ctl/pg/queries",
 "GET /api/watch?v=t140-lecture&v=intro-ready",
 "GET /api/watch?v=intro-ready&v=t140-lecture"]
--- more_headers eval
["Cookie: session=t140-ana", "", ("Cookie: session=t140-ana") x 14, "",
 ("Cookie: session=t140-ana") x 2]
--- error_code eval
[200, 200, (400) x 14, 200, 200, 403]
--- response_body eval
[$::ana_playback, "marked\n", ($::bad_id) x 14, "0 enrollment queries since the mark\n",
 $::ana_playback, $::not_enrolled]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 7: after all that SQL, every table and row is still there, and a user id full of SQL is only a parameter
--- request eval
["GET /ctl/db/intact",
 "GET /api/videos/t140-lecture/stream",
 "GET /api/videos/t140-lecture/stream",
 "GET /api/videos/intro-ready/stream"]
--- more_headers eval
["", "Cookie: session=t140-sqli", "Cookie: session=t140-ana", "Cookie: session=t140-alice"]
--- error_code eval
[200, 403, 200, 200]
--- response_body eval
["every table and row is there\n", $::not_enrolled, $::ana_playback, $::intro_playback]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 8: the edge: forged, foreign-key, borrowed, swapped, garbage and expired credentials; a policy for another video
--- request eval
[("GET /hls/t140-lecture/seg_00001.ts") x 16,
 "GET /hls/intro-ready/seg_00001.ts",
 "GET /hls/intro-ready/seg_00001.ts"]
--- more_headers eval
[
 # the baseline: ana's cookies, as the playback endpoint issued them
 "Cookie: $::ana",
 # one character of the signature changed
 "Cookie: " . main::cookies($::ana_pol, $::forged_sig),
 # the right policy, signed by a key nobody trusts
 "Cookie: " . main::cookies($::ana_pol, $::other_key_sig),
 # a policy for everything, signed by a key nobody trusts
 "Cookie: " . main::cookies($::everything_pol, $::everything_sig),
 # ana's policy with the signature of alice's policy
 "Cookie: " . main::cookies($::ana_pol, $::alice_sig),
 # a policy for another video: alice's genuine cookies for intro-ready
 "Cookie: $::alice",
 # Signature and Policy swapped
 "Cookie: " . main::cookies($::ana_sig, $::ana_pol),
 # garbage where the base64 policy goes
 "Cookie: " . main::cookies('!!!not*base64***', $::ana_sig),
 "Cookie: " . main::cookies('%zz%00%4', $::ana_sig),
 "Cookie: " . main::cookies('', $::ana_sig),
 "Cookie: " . main::cookies($::huge_pol, $::ana_sig),
 # genuinely signed, but not a policy
 "Cookie: " . main::cookies($::notjson_pol, $::notjson_sig),
 # genuinely signed, but it expired in 2001: replayed
 "Cookie: " . main::cookies($::expired_pol, $::expired_sig),
 # a key pair id nobody configured; no signature at all; no cookies
 "Cookie: " . main::cookies($::ana_pol, $::ana_sig, 'KNOBODY0000000'),
 "Cookie: CloudFront-Policy=$::ana_pol; CloudFront-Key-Pair-Id=K2JCJMDEHXQW5F",
 "Cookie: session=t140-ana",
 # ana's genuine cookies on another video's path
 "Cookie: $::ana",
 # the baseline for that path
 "Cookie: $::alice",
]
--- error_code eval
[200, (403) x 16, 200]
--- response_body eval
[$::segment,
 main::edge('bad_signature'), main::edge('bad_signature'), main::edge('bad_signature'),
 main::edge('bad_signature'), main::edge('resource_mismatch'), main::edge('bad_signature'),
 main::edge('bad_signature'), main::edge('bad_signature'), main::edge('bad_signature'),
 main::edge('bad_signature'), main::edge('bad_signature'), main::edge('expired'),
 main::edge('unknown_key_pair_id'), main::edge('missing_signature'), main::edge('missing_signature'),
 main::edge('resource_mismatch'), "segment 1 of intro-ready\n"]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 9: duplicated CloudFront-* cookies: the first of each name counts; repeated signed-URL parameters are refused
# Cookies: vodlms_cf_cookie_params() takes the first occurrence of each
# name, across every Cookie header in order, like the session cookie.  A
# forged first Signature fails; a forged one after the genuine set is never
# read.  Query parameters are stricter: any repeated one is bad_signature.
--- request eval
[("GET /hls/t140-lecture/seg_00001.ts") x 7,
 "GET /hls/t140-lecture/seg_00001.ts?Policy=$::ana_pol&Signature=$::ana_sig&Key-Pair-Id=K2JCJMDEHXQW5F",
 "GET /hls/t140-lecture/seg_00001.ts?Policy=$::ana_pol&Signature=$::ana_sig&Signature=$::ana_sig&Key-Pair-Id=K2JCJMDEHXQW5F"]
--- more_headers eval
["Cookie: CloudFront-Signature=$::forged_sig; $::ana",
 "Cookie: $::ana; CloudFront-Signature=$::forged_sig",
 "Cookie: CloudFront-Policy=$::alice_pol; $::ana",
 "Cookie: CloudFront-Key-Pair-Id=KNOBODY0000000; $::ana",
 "Cookie: $::ana; CloudFront-Key-Pair-Id=KNOBODY0000000",
 "Cookie: CloudFront-Signature=$::forged_sig\nCookie: $::ana",
 "Cookie: $::ana\nCookie: CloudFront-Signature=$::forged_sig",
 "", ""]
--- error_code eval
[403, 200, 403, 403, 200, 403, 200, 200, 403]
--- response_body eval
[main::edge('bad_signature'), $::segment, main::edge('bad_signature'),
 main::edge('unknown_key_pair_id'), $::segment, main::edge('bad_signature'), $::segment,
 $::segment, main::edge('bad_signature')]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 10: path tricks on the edge: a policy for one video must not open another video's files
# ana's cookies cover hls/t140-lecture/*.  nginx serves the path it gets
# after decoding %XX and resolving "." and "..", so each of these would
# fetch intro-ready's segment if the edge trusted the raw path (it did
# before 2483c72).  They are refused with 400 bad_path before any
# credentials are read.
--- request eval
["GET /hls/t140-lecture/../intro-ready/seg_00001.ts",
 "GET /hls/t140-lecture/%2e%2e/intro-ready/seg_00001.ts",
 "GET /hls/t140-lecture/%2e%2e%2fintro-ready/seg_00001.ts",
 "GET /hls/t140-lecture/..%2Fintro-ready/seg_00001.ts",
 "GET /hls/t140-lecture//..//../hls/intro-ready/seg_00001.ts",
 "GET /hls/t140-lecture/./seg_00001.ts",
 # what nginx refuses on its own
 "GET /hls/t140-lecture/%00/seg_00001.ts",
 "GET /hls/t140-lecture/../../../etc/passwd",
 # the baseline: the file ana may fetch
 "GET /hls/t140-lecture/seg_00001.ts"]
--- more_headers eval
[("Cookie: $::ana") x 9]
--- error_code eval
[400, 400, 400, 400, 400, 400, 400, 400, 200]
--- response_body eval
[(main::err('bad_path', 'edge request path refused')) x 6, $::ngx400, $::ngx400, $::segment]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 11: replayed cookies, one second before they expire (nginx's clock frozen at 1999999999): still good
--- main_config eval: main::main_config(1999999999)
--- request eval
["GET /hls/t140-lecture/seg_00001.ts", "GET /hls/intro-ready/seg_00001.ts"]
--- more_headers eval
["Cookie: $::ana", "Cookie: $::ana"]
--- error_code eval
[200, 403]
--- response_body eval
[$::segment, main::edge('resource_mismatch')]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 12: the same cookies replayed at their DateLessThan (clock frozen at 2000000000): 403 expired
--- main_config eval: main::main_config(2000000000)
--- request
GET /hls/t140-lecture/seg_00001.ts
--- more_headers eval
"Cookie: $::ana"
--- error_code: 403
--- response_body eval
main::edge('expired')
--- error_log
vodlms: CloudFront credentials rejected: expired (now >= DateLessThan), cookies, answering 403
--- no_error_log
[error]
[alert]
[crit]



=== TEST 13: hostile beacons: each is a 400 with its reason, and neither the buffer nor PostgreSQL changes
--- request eval
[main::post(main::body()),
 "GET /ctl/progress/wait?user=u140-ana&video=t140-lecture&pos=100.000",
 # the body: too large, empty, truncated, not an object, not JSON
 main::post(main::body(pad => '"' . ("x" x 1100) . '"')),
 main::post(''),
 main::post('{"videoId":"t140-lecture","currentTime":1'),
 main::post('{"videoId":"t140-lecture","currentTime":100,"duration":600'),
 main::post('"t140-lecture"'),
 main::post('[' x 512 . ']' x 512),
 main::post('[' x 1024),
 main::post(main::body() . "\0"),
 main::post("{\"videoId\":\"t140-lect\xff\xfeure\",\"currentTime\":1,\"duration\":600}"),
 main::post(main::body() . main::body()),
 main::post('{"videoId":"t140-lecture","videoId":"intro-ready","currentTime":1,"duration":600}'),
 # deeply nested, and nothing the beacon needs
 main::post('{"a":' x 150 . '1' . '}' x 150),
 # wrong types
 # (an integer id is an id: 42 names video "42", not this one)
 main::post(main::body(videoId => 42)),
 main::post(main::body(videoId => '["t140-lecture"]')),
 main::post(main::body(currentTime => '"100"')),
 main::post(main::body(currentTime => 'null')),
 main::post(main::body(currentTime => '{"$gt":0}')),
 main::post(main::body(duration => '"600"')),
 main::post(main::body(duration => 'true')),
 main::post(main::body(event => 1)),
 main::post(main::body(event => '"DROP TABLE vodlms.watch_progress"')),
 # numbers: negative, NaN, Infinity, past the end, huge, overflowing
 main::post(main::body(currentTime => -1)),
 main::post(main::body(currentTime => -1e-9)),
 main::post(main::body(currentTime => 'NaN')),
 main::post(main::body(currentTime => 'Infinity')),
 main::post(main::body(currentTime => 606)),
 main::post(main::body(currentTime => '1e308')),
 main::post(main::body(currentTime => '1e999')),
 main::post(main::body(currentTime => '9223372036854775808')),
 main::post(main::body(duration => 0)),
 main::post(main::body(duration => -600)),
 main::post(main::body(duration => 604801)),
 main::post(main::body(duration => '1e308')),
 # ids: SQL, NUL, overlong, another video
 main::post(main::body(videoId => q("x'; DROP TABLE vodlms.watch_progress;--"))),
 main::post(main::body(videoId => '"t140-lecture\\u0000"')),
 main::post(main::body(videoId => '"' . ("a" x 65) . '"')),
 main::post(main::body(videoId => '"' . ("a" x 10240) . '"')),
 main::post(main::body(videoId => '"intro-ready"')),
 # not a beacon method
 "PUT /api/videos/t140-lecture/progress\n" . main::body(),
 "DELETE /api/videos/t140-lecture/progress",
 # nothing moved
 "GET /api/videos/t140-lecture/progress",
 # alice's beacon: the flush that writes it would write anything else dirty
 "POST /api/videos/intro-ready/progress\n{\"videoId\":\"intro-ready\",\"currentTime\":5.5,\"duration\":634.5}",
 "GET /ctl/progress/wait?user=1001&video=intro-ready&pos=5.500",
 "GET /ctl/progress/unchanged?user=u140-ana&video=t140-lecture",
 "GET /ctl/progress/rows"]
--- more_headers eval
["Cookie: session=t140-ana", "",
 ("Cookie: session=t140-ana") x 41,
 "Cookie: session=t140-alice", "", "", ""]
--- error_code eval
[204, 200, (400) x 38, 405, 405, 200, 204, 200, 200, 200]
--- response_body eval
["", "u140-ana t140-lecture 100.000 100.000 false\n",
 main::beacon('body_too_large'), main::beacon('malformed_json'), main::beacon('malformed_json'),
 main::beacon('malformed_json'), main::beacon('malformed_json'), main::beacon('malformed_json'),
 main::beacon('malformed_json'), main::beacon('malformed_json'), main::beacon('malformed_json'),
 main::beacon('malformed_json'), main::beacon('malformed_json'),
 main::beacon('bad_video_id'),
 main::beacon('video_mismatch'), main::beacon('bad_video_id'),
 main::beacon('bad_current_time'), main::beacon('bad_current_time'), main::beacon('bad_current_time'),
 main::beacon('bad_duration'), main::beacon('bad_duration'),
 main::beacon('bad_event'), main::beacon('bad_event'),
 main::beacon('position_out_of_range'), main::beacon('position_out_of_range'),
 main::beacon('malformed_json'), main::beacon('malformed_json'),
 main::beacon('position_out_of_range'), main::beacon('position_out_of_range'),
 main::beacon('malformed_json'), main::beacon('malformed_json'),
 main::beacon('bad_duration'), main::beacon('bad_duration'), main::beacon('bad_duration'),
 main::beacon('bad_duration'),
 main::beacon('bad_video_id'), main::beacon('malformed_json'), main::beacon('bad_video_id'),
 main::beacon('body_too_large'), main::beacon('video_mismatch'),
 $::ngx405, $::ngx405,
 qq({"videoId":"t140-lecture","position":100.000,"duration":600.000,"completed":false}\n),
 "", "1001 intro-ready 5.500 5.500 false\n", "unchanged\n",
 "1001 intro-ready 5.500; u140-ana t140-lecture 100.000\n"]
--- timeout: 20
--- no_error_log
[error]
[alert]
[crit]



=== TEST 14: a chunked beacon of 20 KB (spooled to a temp file): 400 body_too_large
--- raw_request eval
"POST /api/videos/t140-lecture/progress HTTP/1.1\r\nHost: localhost\r\nCookie: session=t140-ana\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
. sprintf("%x\r\n%s\r\n", 20000, " " x 20000) . "0\r\n\r\n"
--- error_code: 400
--- response_body eval
main::beacon('body_too_large')
--- no_error_log
[error]
[alert]
[crit]



=== TEST 15: a chunked beacon of 1100 bytes (in memory): 400 body_too_large
--- raw_request eval
"POST /api/videos/t140-lecture/progress HTTP/1.1\r\nHost: localhost\r\nCookie: session=t140-ana\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
. sprintf("%x\r\n%s\r\n", 1100, main::body(pad => '"' . ("x" x 1000) . '"') . (" " x (1100 - length main::body(pad => '"' . ("x" x 1000) . '"')))) . "0\r\n\r\n"
--- error_code: 400
--- response_body eval
main::beacon('body_too_large')
--- no_error_log
[error]
[alert]
[crit]



=== TEST 16: unknown fields are ignored, so a forged userId writes nothing for that user; any Content-Type works, a form body does not
--- request eval
[main::post(main::body(currentTime => 200, userId => '"1005"', user_id => '"1005"',
                       admin => 'true', '__proto__' => '{"user_id":"1005"}',
                       x => '[' x 200 . ']' x 200)),
 main::post('videoId=t140-lecture&currentTime=210&duration=600'),
 main::post(main::body(currentTime => 210)),
 "GET /ctl/progress/wait?user=u140-ana&video=t140-lecture&pos=210.000",
 "GET /ctl/progress/rows"]
--- more_headers eval
["Cookie: session=t140-ana\nContent-Type: multipart/form-data; boundary=x",
 "Cookie: session=t140-ana\nContent-Type: application/x-www-form-urlencoded",
 "Cookie: session=t140-ana\nContent-Type: application/x-www-form-urlencoded",
 "", ""]
--- error_code eval
[204, 400, 204, 200, 200]
--- response_body eval
["", main::beacon('malformed_json'), "", "u140-ana t140-lecture 210.000 210.000 false\n",
 "1001 intro-ready 5.500; u140-ana t140-lecture 210.000\n"]
--- timeout: 20
--- no_error_log
[error]
[alert]
[crit]



=== TEST 17: express-session cookies: bad percent-encoding, NUL, 8 KB, forged, duplicated
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/stream$ {
        vodlms_auth on;
        vodlms_session_type express;
        vodlms_session_secret "t140 keyboard cat";
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_cloudfront_url https://cdn.example.test;
        vodlms_cloudfront_key K2JCJMDEHXQW5F $TEST_NGINX_CF_KEY;
        vodlms_cloudfront_expiry_bucket 1000000000s;
        vodlms_playback cookies;
    }
--- request eval
[("GET /api/videos/t140-lecture/stream") x 11]
--- more_headers eval
["Cookie: connect.sid=$::express_cookie",
 "Cookie: connect.sid=s%3A$::express_sid%zz",
 "Cookie: connect.sid=s%3A$::express_sid%00." . substr($::express_cookie, -43),
 "Cookie: connect.sid=$::express_cookie%4",
 "Cookie: connect.sid=s%3A" . ("s" x 8300),
 "Cookie: connect.sid=s%3A$::express_sid",
 "Cookie: connect.sid=$::express_forged",
 "Cookie: connect.sid=$::express_cookie; connect.sid=$::express_forged",
 "Cookie: connect.sid=$::express_forged; connect.sid=$::express_cookie",
 "Cookie: connect.sid=s%3A'%3B%20DROP%20TABLE%20users%3B--." . substr($::express_cookie, -43),
 "Authorization: Bearer $::express_sid"]
--- error_code eval
[200, 401, 401, 401, 401, 401, 401, 200, 401, 401, 401]
--- response_body eval
[$::ana_playback, (main::e401('invalid_session')) x 5, main::e401('bad_signature'),
 $::ana_playback, main::e401('bad_signature'), main::e401('invalid_session'), main::e401('no_session')]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 18: one worker takes the whole corpus: still the same process, nothing died, no core, and it still answers
--- request eval
["GET /ctl/worker/mark",
 "GET /api/videos/t140-lecture/stream",
 "GET /api/videos/t140-lecture/stream",
 "GET /api/videos/t140-lecture/stream",
 "GET /api/videos/%zz/stream",
 "GET /api/videos/" . ("a" x 10240) . "/stream",
 "GET /api/watch?v=%00",
 "GET /api/watch?v='%3B%20DROP%20TABLE%20videos%3B--",
 "GET /hls/t140-lecture/seg_00001.ts",
 "GET /hls/t140-lecture/seg_00001.ts",
 "GET /hls/t140-lecture/seg_00001.ts",
 "GET /hls/t140-lecture/seg_00001.ts",
 main::post(main::body(pad => '"' . ("x" x 1100) . '"')),
 main::post('[' x 1024),
 main::post(main::body(currentTime => '1e999')),
 main::post(main::body(videoId => '"intro-ready"')),
 "GET /ctl/db/intact",
 "GET /ctl/progress/rows",
 "GET /api/videos/t140-lecture/stream",
 "GET /hls/t140-lecture/seg_00001.ts",
 "GET /ctl/worker/same"]
--- more_headers eval
["",
 "Cookie: session=" . ("a" x 8300),
 "Cookie: session=t140-nobody; session=t140-ana",
 "Cookie: session=t140-ana; pad=" . ("c" x 40000),
 ("Cookie: session=t140-ana") x 4,
 "Cookie: " . main::cookies($::ana_pol, $::forged_sig),
 "Cookie: " . main::cookies($::ana_sig, $::ana_pol),
 "Cookie: " . main::cookies($::huge_pol, $::ana_sig),
 "Cookie: CloudFront-Signature=$::forged_sig; $::ana",
 ("Cookie: session=t140-ana") x 4,
 "", "",
 "Cookie: session=t140-ana",
 "Cookie: $::ana",
 ""]
--- error_code eval
[200, 401, 401, 400, 400, 400, 400, 400, 403, 403, 403, 403, 400, 400, 400, 400, 200, 200, 200, 200, 200]
--- response_body eval
["marked\n", main::e401('invalid_session'), main::e401('unknown_session'), $::ngx_too_large,
 $::ngx400, $::bad_id, $::bad_id, $::bad_id,
 (main::edge('bad_signature')) x 4,
 main::beacon('body_too_large'), main::beacon('malformed_json'), main::beacon('malformed_json'),
 main::beacon('video_mismatch'),
 "every table and row is there\n",
 "1001 intro-ready 5.500; u140-ana t140-lecture 210.000\n",
 $::ana_playback, $::segment,
 "same worker; no worker died; no core file\n"]
--- no_error_log
[error]
[alert]
[crit]
exited on signal
