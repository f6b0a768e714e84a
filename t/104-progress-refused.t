# One entry the flush statement refuses must not stop everyone's progress
# (issue #16).  Before: one statement carried the whole batch, so a single
# row PostgreSQL refused (a user id the LMS's integer column cannot take, or
# a flagged skip that broke watch_progress's CHECK) failed every flush on
# that node for ever: the others' beacons were acknowledged and never
# written, the zone filled, and "nginx -s quit" never finished.
#
# Now the batch is written in halves until the refused entry is alone; that
# one is set aside (logged once, counted), the rest land.  A worker on its
# way out backs off like any other and leaves after a bounded wait.
#
# Plain Test::More, like t/102: nginx is a direct child of this script,
# signalled and reaped here.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use HTTP::Tiny;
use POSIX qw(WNOHANG);
use Test::More;
use VodlmsTest;

my $module = $ENV{TEST_NGINX_MODULE_PATH}
    or plan skip_all => 'TEST_NGINX_MODULE_PATH is not set (./build.sh test sets it)';
my $nginx = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
my $redis_port = $ENV{TEST_NGINX_REDIS_PORT} || 6379;

# the LMS's sessions: integer user ids, and one that is not (a session the
# LMS wrote by mistake, or an id from another system)
my %users = (u1 => '2001', u2 => '2002', bad => 'x-2003', u4 => '2004', al => '1001');
redis_cmd($redis_port, 'SET', "session:t104-$_", qq({"user_id":"$users{$_}"}), 'EX', 3600)
    for keys %users;

my $pg = start_pg();

# the LMS's own progress table: integer user ids
$pg->psql(q{CREATE TABLE lms_progress (
                user_id integer NOT NULL, video_id text NOT NULL,
                position numeric NOT NULL, max_position numeric NOT NULL,
                watched numeric NOT NULL DEFAULT 0, completed_at timestamptz,
                PRIMARY KEY (user_id, video_id))});

my $lms_flush = q{INSERT INTO lms_progress AS lp (user_id, video_id, position, max_position, watched, completed_at) }
  . q{SELECT b.u::integer, b.v, b.p, b.m, b.w, CASE WHEN b.c > 0 THEN to_timestamp(b.c) END }
  . q{FROM unnest($1::text[], $2::text[], $3::numeric[], $4::numeric[], $5::numeric[], $6::numeric[], $7::float8[]) AS b(u, v, p, m, d, w, c) }
  . q{ON CONFLICT (user_id, video_id) DO UPDATE SET position = EXCLUDED.position, }
  . q{max_position = greatest(lp.max_position, EXCLUDED.max_position), watched = lp.watched + EXCLUDED.watched, }
  . q{completed_at = coalesce(lp.completed_at, EXCLUDED.completed_at)};

# every video exists, every user may watch: the flush is what is tested
my $allow = q{SELECT $1::text AS id, true AS allowed, 'ready' AS status, 600 AS duration_seconds WHERE $2::text <> ''};

sub wait_for {
    my ($cond, $secs) = @_;
    my $v;
    for (1 .. ($secs || 10) * 50) {
        last if $v = $cond->();
        select undef, undef, undef, 0.02;
    }
    return $v;
}

sub slurp { my ($f) = @_; open my $fh, '<', $f or return ''; local $/; <$fh> }

# nginx with the given location extras and flush query; returns a handle
sub start_nginx {
    my (%o) = (flush => '300ms', workers => 2, http => '', loc => '', @_);

    my $dir = tempdir('vodlms-t104-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    chmod 0755, $dir;
    mkdir "$dir/logs";
    my $port = free_port();
    my $conninfo = $pg->conninfo;

    open my $conf, '>', "$dir/nginx.conf" or die $!;
    print $conf <<"CONF";
load_module $module;
daemon off;
master_process on;
worker_processes $o{workers};
error_log $dir/logs/error.log notice;
pid $dir/logs/nginx.pid;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;

    vodlms_redis 127.0.0.1:$redis_port;
    vodlms_pg "$conninfo" timeout=5s;
    vodlms_progress_zone zone=progress:1m flush=$o{flush};
$o{http}

    server {
        listen 127.0.0.1:$port;
        location ~ ^/api/videos/(?<vid>[^/]+)/progress\$ {
            vodlms_auth on;
            vodlms_enrollment_check on;
            vodlms_video_id \$vid;
$o{loc}
            vodlms_progress on;
        }
        location = /metrics { vodlms_status; }
    }
}
CONF
    close $conf;

    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        exec $nginx, '-p', $dir, '-c', "$dir/nginx.conf", '-e', "$dir/logs/error.log";
        die "exec $nginx: $!";
    }

    ok(wait_for(sub { IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port") }),
       "$o{label}: nginx is up");

    return { pid => $pid, port => $port, dir => $dir, log => "$dir/logs/error.log",
             label => $o{label} };
}

sub beacon {
    my ($n, $who, $video, $t) = @_;
    my $res = HTTP::Tiny->new(timeout => 10)->post(
        "http://127.0.0.1:$n->{port}/api/videos/$video/progress", {
            headers => { 'Cookie' => "session=t104-$who", 'Content-Type' => 'text/plain' },
            content => qq({"videoId":"$video","currentTime":$t,"duration":600}),
        });
    return $res->{status};
}

sub metric {
    my ($n, $name) = @_;
    my $res = HTTP::Tiny->new(timeout => 10)->get("http://127.0.0.1:$n->{port}/metrics");
    return $res->{content} =~ /^\Q$name\E (\S+)$/m ? $1 : 'missing';
}

# signal the master, and wait (up to $secs) for it to exit
sub stop {
    my ($n, $sig, $secs) = @_;
    kill $sig, $n->{pid};
    my $gone = wait_for(sub { waitpid($n->{pid}, WNOHANG) == $n->{pid} }, $secs);
    unless ($gone) {
        # workers that never finish would outlive a killed master, holding
        # prove's pipe open: a failing test must not hang the suite
        my @workers = grep { $_ } map { chomp; $_ } `pgrep -P $n->{pid}`;
        kill 'KILL', $n->{pid}, @workers;
        waitpid $n->{pid}, 0;
    }
    return $gone;
}

sub lms_row {
    my ($user, $video) = @_;
    $pg->psql("SELECT position || ' ' || max_position FROM lms_progress"
            . " WHERE user_id = $user AND video_id = '$video'");
}

# ---------------------------------------------------------------- 1

{
    my $n = start_nginx(label => 'one refused entry', http => qq{    vodlms_progress_flush_query "$lms_flush";},
                        loc => "            vodlms_enrollment_query \"$allow\" \$vid \$vodlms_user_id;");

    # the refused one among others, in one batch: acknowledged alike
    is(beacon($n, 'u1', 'lec-a', 10), 204, 'one refused entry: u1 acknowledged');
    is(beacon($n, 'bad', 'lec-a', 20), 204, 'one refused entry: the non-integer user acknowledged');
    is(beacon($n, 'u2', 'lec-a', 30), 204, 'one refused entry: u2 acknowledged');
    is(beacon($n, 'u4', 'lec-b', 40), 204, 'one refused entry: u4 acknowledged');

    ok(wait_for(sub { lms_row(2001, 'lec-a') && lms_row(2002, 'lec-a') && lms_row(2004, 'lec-b') }),
       'one refused entry: every other viewer\'s progress is in the LMS table');
    is(lms_row(2002, 'lec-a'), '30.000 30.000', 'one refused entry: u2\'s position, as sent');

    ok(wait_for(sub { metric($n, 'vodlms_progress_pending') eq '0' }),
       'one refused entry: nothing left pending');
    is(metric($n, 'vodlms_progress_set_aside_total'), '1', 'one refused entry: one set aside, counted');

    my $log = slurp($n->{log});
    my @aside = $log =~ /^([^\n]*vodlms progress: the flush query refused the entry of user "x-2003" for video "lec-a"[^\n]*)$/mg;
    is(scalar @aside, 1, 'one refused entry: logged once, naming the user and the video');
    like($aside[0] // '', qr/\[error\].*position 20\.000.*set aside and not sent again: .*22P02/,
         'one refused entry: with its values and the SQLSTATE');
    like($log, qr/\[warn\].*the flush query refused a batch of \d+ entries, written again in batches of/,
         'one refused entry: the search for it is logged');

    # progress goes on: a later beacon lands, the refused one is not retried
    is(beacon($n, 'u1', 'lec-a', 50), 204, 'one refused entry: u1 again');
    ok(wait_for(sub { lms_row(2001, 'lec-a') eq '50.000 50.000' }), 'one refused entry: and it lands');
    is(scalar(() = slurp($n->{log}) =~ /refused the entry of user "x-2003"/g), 1,
       'one refused entry: the set-aside entry is not sent again');

    # a reload and a stop both finish
    my $old = [grep { $_ } map { chomp; $_ } `pgrep -P $n->{pid}`];
    kill 'HUP', $n->{pid};
    ok(wait_for(sub { !grep { kill 0, $_ } @$old }, 15), 'one refused entry: the old workers of a reload exit');
    ok(stop($n, 'QUIT', 15), 'one refused entry: nginx -s quit finishes');
}

# ---------------------------------------------------------------- 2

{
    # vodlms's own schema and flush: a flagged skip must agree with the
    # table's CHECK (max_position_seconds >= position_seconds)
    my $n = start_nginx(label => 'flagged skip', loc => '            vodlms_progress_skip 30s flag;');

    is(beacon($n, 'al', 'intro-ready', 10), 204, 'flagged skip: a first beacon');
    is(beacon($n, 'al', 'intro-ready', 300), 204, 'flagged skip: a jump far ahead, flagged');
    my $row = sub { $pg->psql("SELECT position_seconds || ' ' || max_position_seconds FROM vodlms.watch_progress"
                            . " WHERE user_id = '1001' AND video_id = 'intro-ready'") };
    ok(wait_for(sub { $row->() ne '' }), 'flagged skip: the entry is written by the default flush');
    is($row->(), '40.000 40.000', 'flagged skip: the credited position (10 + 30 s), never above the highest');
    unlike(slurp($n->{log}), qr/refused|23514|flush of \d+ entries failed/, 'flagged skip: no refusal');
    ok(stop($n, 'QUIT', 15), 'flagged skip: nginx -s quit finishes');
}

# ---------------------------------------------------------------- 3

{
    # a flush query that can never work (a missing table: the operator's
    # mistake, SQLSTATE 42P01): a graceful stop backs off and gives up
    my $broken = $lms_flush =~ s/INSERT INTO lms_progress/INSERT INTO no_such_table/r;
    my $n = start_nginx(label => 'broken flush query', workers => 1,
                        http => qq{    vodlms_progress_flush_query "$broken";},
                        loc => "            vodlms_enrollment_query \"$allow\" \$vid \$vodlms_user_id;");

    is(beacon($n, 'u1', 'lec-c', 10), 204, 'broken flush query: acknowledged');
    ok(wait_for(sub { slurp($n->{log}) =~ /flush of 1 entries failed, kept for the next try/ }),
       'broken flush query: the flush fails');

    my $t0 = time;
    ok(stop($n, 'QUIT', 50), 'broken flush query: nginx -s quit finishes anyway');
    my $took = time - $t0;
    ok($took >= 25, "broken flush query: after the bounded wait, not at once ($took s)");

    my $log = slurp($n->{log});
    like($log, qr/\[alert\].*vodlms progress: worker exiting after 30000 ms of failed flushes with 1 acknowledged entries not written/,
         'broken flush query: the alert says how many were not written');
    my $tries = () = $log =~ /flush of 1 entries failed/g;
    ok($tries < 20, "broken flush query: the exiting worker backs off ($tries failed flushes, not one every 500 ms)");
}

# ---------------------------------------------------------------- 4

{
    # sql/README.md's suggested flush query, as printed there, through a
    # real flush with a completion in the batch ($7 is epoch seconds: it
    # once said boolean[], and every such batch failed with 22P02)
    my $readme = slurp("$FindBin::Bin/../sql/README.md");
    my ($snippet) = $readme =~ /## Watch progress.*?```sql\n(.*?)```/s;
    ok($snippet, 'README snippet: found in sql/README.md');
    $snippet =~ s/\s+/ /g;
    $snippet =~ s/"/\\"/g;

    my $short = q{SELECT $1::text AS id, true AS allowed, 'ready' AS status, 6 AS duration_seconds WHERE $2::text <> ''};
    redis_cmd($redis_port, 'SET', 'session:t104-bob', '{"user_id":"1002"}', 'EX', 3600);
    my $n = start_nginx(label => 'README snippet', http => qq{    vodlms_progress_flush_query "$snippet";},
                        loc => "            vodlms_enrollment_query \"$short\" \$vid \$vodlms_user_id;");

    is(beacon($n, 'bob', 'intro-ready', 0), 204, 'README snippet: a first beacon');
    # 2.5 s later: 6 s of content at 2.4x, within the 2x of the wall clock
    # plus the 2 s allowance that coverage grants a step
    select undef, undef, undef, 2.5;
    my $res = HTTP::Tiny->new(timeout => 10)->post(
        "http://127.0.0.1:$n->{port}/api/videos/intro-ready/progress", {
            headers => { 'Cookie' => 'session=t104-bob', 'Content-Type' => 'text/plain' },
            content => q({"videoId":"intro-ready","currentTime":6,"duration":6,"event":"ended"}),
        });
    is($res->{status}, 204, 'README snippet: the end of a 6 s video, 2.5 s later');

    my $row = sub { $pg->psql("SELECT position_seconds || ' ' || (completed_at IS NOT NULL) || ' '"
                            . " || (played_seconds > 0) FROM vodlms.watch_progress"
                            . " WHERE user_id = '1002' AND video_id = 'intro-ready'") };
    ok(wait_for(sub { $row->() =~ /^6\.000 / }), 'README snippet: the flush writes the last beacon');
    is($row->(), '6.000 true true', 'README snippet: position, completion and played seconds written');
    unlike(slurp($n->{log}), qr/refused|failed/, 'README snippet: no refusal, no failure');
    ok(stop($n, 'QUIT', 15), 'README snippet: nginx -s quit finishes');
}

done_testing();
