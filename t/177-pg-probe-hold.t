# The PostgreSQL pool that holds requests for its next connect while the
# database is down (issue #21), where a red-team read of it found faults:
# each part failed before its fix.
#
#   (A) a multi-host conninfo whose hosts are all silent: every connect
#       timeout rotates to the next host, and a rotated timeout is never
#       counted as a failure, so the pool never enters its "down" regime:
#       docs/directives.md promises "each worker has one connect at a time
#       under way, never more" and "at most four a second from each
#       worker" once a connect failed.  (Failed before rotated timeouts were counted.)
#   (B) a refused database under load, clients that give up while their
#       requests wait for the next connect, a reload (HUP) and a graceful
#       stop (QUIT) with requests waiting: every request is answered 503,
#       nothing worse than an error is logged, the workers exit by
#       themselves.  (Run with TEST_NGINX_BINARY set to a valgrind
#       wrapper for memory errors.)

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use HTTP::Tiny;
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(time sleep);
use VodlmsTest;
use File::Temp qw(tempdir);

$ENV{TEST_NGINX_MODULE_PATH}
    or plan skip_all => 'TEST_NGINX_MODULE_PATH is not set (./build.sh test sets it)';
my $redis_port = $ENV{TEST_NGINX_REDIS_PORT} || 6379;

redis_cmd($redis_port, 'SET', 'session:t177-alice', '{"user_id":"1001"}', 'EX', 3600);

my $root = tempdir('vodlms-t177-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $root;
mkdir "$root/static";
{ open my $fh, '>', "$root/static/hello.txt" or die $!; print $fh "hello\n"; close $fh; }
chmod 0644, "$root/static/hello.txt";

sub node {
    my ($name, $pg_lines, %o) = @_;
    my $port = free_port();
    my $node = nginx_child(name => "t177-$name", listen => $port, workers => 1,
                           log_level => $o{log_level} || 'info', http => <<"HTTP");
    vodlms_redis 127.0.0.1:$redis_port;
$pg_lines

    server {
        listen 127.0.0.1:$port;
        root $root;

        location ~ ^/videos/(?<vid>[^/]+)/meta\$ {
            vodlms_auth on;
            vodlms_enrollment_check on;
            vodlms_video_id \$vid;
            try_files /static/hello.txt =404;
        }
    }
HTTP
    $node->{port} = $port;
    return $node;
}

sub request_bytes {
    return "GET /videos/intro-ready/meta HTTP/1.0\r\nHost: x\r\n"
         . "Cookie: session=t177-alice\r\n\r\n";
}

# $n concurrent raw clients: [socket, ...] with the request sent
sub open_clients {
    my ($node, $n) = @_;
    my @s;
    for (1 .. $n) {
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$node->{port}", Timeout => 5)
            or last;
        print $s request_bytes();
        push @s, $s;
    }
    return @s;
}

# the status of each client's answer (0: none within $secs)
sub statuses {
    my ($secs, @s) = @_;
    my %st;
    my $deadline = time + $secs;
    for my $s (@s) {
        my $left = $deadline - time;
        $left = 0.01 if $left < 0.01;
        my $sel = IO::Select->new($s);
        my $line = '';
        if ($sel->can_read($left)) {
            $line = <$s> // '';
        }
        my ($code) = $line =~ m{^HTTP/1\.\d (\d+)};
        $st{$code // 0}++;
        close $s;
    }
    return \%st;
}

sub show { my $h = shift; join ', ', map { "$h->{$_} x $_" } sort keys %$h }

#---------------------------------------------------------------------------
# (A) all hosts of a multi-host conninfo silent
#---------------------------------------------------------------------------

{
    my ($p1, $bh1) = blackhole();
    my ($p2, $bh2) = blackhole();
    my $n = node('a', qq{    vodlms_pg "host=127.0.0.1,127.0.0.1 port=$p1,$p2 user=postgres dbname=vodlms"}
                    . ' connect_timeout=100ms timeout=1s;', log_level => 'debug');

    # one request first: one connect under way, which times out and rotates
    my $st = statuses(5, open_clients($n, 1));
    is(show($st), '1 x 503', 'a lone request: 503');

    # then a burst, for 2 s
    my $t0 = time;
    my %all;
    while (time - $t0 < 2) {
        my $s = statuses(5, open_clients($n, 8));
        $all{$_} += $s->{$_} for keys %$s;
    }
    diag('(A) burst: ' . show(\%all));
    ok(!$all{0}, 'every request was answered');

    # from the first failed connect on: connects under way, and how many
    my ($failed, $more, $connects, $first, $last) = (0, 0, 0);
    for (split /\n/, $n->log) {
        $failed = 1 if /vodlms pg: close, \S+ fd:-?\d+, connecting: /;
        next unless $failed;
        if (/vodlms pg: connect, \S+ fd:\d+, (\d+) of pool_size=4/) {
            $connects++;
            $more++ if $1 > 1;
        }
    }
    my $rotations = () = $n->log =~ /did not answer within 100 ms, the next connect starts with/g;
    diag("(A) after the first failed connect: $connects connects, $more with another under way; "
         . "$rotations rotations logged at [warn]");
    is($more, 0, 'never a second connect under way once a connect failed (directives.md)');
    # the log covers the lone request (~1 s) and the 2 s burst: 3 s
    cmp_ok($connects, '<=', 3 * 4 + 2,
           'at most four connects a second from the worker once a connect failed (directives.md)');
    ok($n->stop('QUIT'), 'graceful stop: the workers exit');
}

#---------------------------------------------------------------------------
# (B) refused database: clients that go, a reload and a stop with waiters
#---------------------------------------------------------------------------

{
    my $dead = free_port();    # nothing listens: connects are refused at once
    my $n = node('b', qq{    vodlms_pg "host=127.0.0.1 port=$dead user=postgres dbname=vodlms"}
                    . ' connect_timeout=1s timeout=2s;', log_level => 'debug');

    # get the pool into back-off
    my $st = statuses(5, open_clients($n, 3));
    is($st->{0} || 0, 0, 'the first requests are answered');

    my %all;
    for my $round (1 .. 10) {
        my @s = open_clients($n, 40);
        # half of them give up at once: their waiting queries are dropped
        close $_ for @s[0 .. 19];
        my $s = statuses(5, @s[20 .. 39]);
        $all{$_} += $s->{$_} for keys %$s;
    }
    diag('(B) 10 rounds of 20 kept: ' . show(\%all));
    is($all{0} || 0, 0, 'no request left unanswered');
    is($all{503} || 0, 200, 'every kept request: 503');

    # a reload with requests waiting: the old worker answers them and goes
    my @w = open_clients($n, 30);
    sleep 0.05;
    open my $pf, '<', "$n->{dir}/logs/nginx.pid" or die;
    chomp(my $master = <$pf>);
    kill 'HUP', $master;
    my $s = statuses(5, @w);
    diag('(B) across a reload: ' . show($s));
    is($s->{0} || 0, 0, 'requests waiting across a reload are answered');

    # a graceful stop with requests waiting (retry timer armed)
    @w = open_clients($n, 30);
    sleep 0.05;
    my $t = time;
    ok($n->stop('QUIT'), 'graceful stop with requests waiting: the workers exit');
    my $took = time - $t;
    diag(sprintf '(B) the stop took %.2f s', $took);
    $s = statuses(1, @w);
    diag('(B) waiting at the stop: ' . show($s));

    my $log = $n->log;
    unlike($log, qr/\[(crit|alert|emerg)\]/, 'nothing worse than an error in the log')
        or diag join "\n", grep { /\[(crit|alert|emerg)\]/ } split /\n/, $log;
    unlike($log, qr/open socket .* left in connection/, 'no socket left at exit');
    my $detached = () = $log =~ /vodlms pg: detach, .*its waiting query is dropped/g;
    diag("(B) $detached waiting queries dropped by clients that went");
}

#---------------------------------------------------------------------------
# (C) worker_shutdown_timeout ends requests whose queries wait (detach),
#     with a probe under way and the retry timer armed
#---------------------------------------------------------------------------

{
    my ($bh, $guard) = blackhole();
    my $n = node('c', qq{    vodlms_pg "host=127.0.0.1 port=$bh user=postgres dbname=vodlms"}
                    . ' connect_timeout=3s timeout=8s;', log_level => 'debug');

    # the main context: worker_shutdown_timeout, through a reload
    my $conf = do { local (@ARGV, $/) = "$n->{dir}/nginx.conf"; <> };
    $conf =~ s/^daemon off;/daemon off;\nworker_shutdown_timeout 500ms;/m;
    open my $out, '>', "$n->{dir}/nginx.conf" or die;
    print $out $conf;
    close $out;
    kill 'HUP', $n->{pid};
    for (1 .. 500) {
        last if $n->log =~ /gracefully shutting down/;
        sleep 0.02;
    }
    sleep($ENV{T901_SLOW} ? 3 : 0.5);

    # down: the first connects time out, then requests wait for the next
    my @w = open_clients($n, 60);
    @w or diag("(C) no client could connect:\n" . join "\n", (split /\n/, $n->log)[-15 .. -1]);
    sleep 3.3;    # their connects timed out: the pool is down, a probe under way
    push @w, open_clients($n, 60);
    sleep 0.3;
    my $t = time;
    ok($n->stop('QUIT'), 'graceful stop with requests waiting: the workers exit');
    diag(sprintf '(C) the stop took %.2f s', time - $t);
    my $s = statuses(1, @w);
    diag('(C) waiting at the stop: ' . show($s));

    my $log = $n->log;
    my $detached = () = $log =~ /vodlms pg: detach, .*its waiting query is dropped/g;
    diag("(C) $detached waiting queries dropped when their requests ended");
    ok($detached > 0, 'requests ended by worker_shutdown_timeout dropped their waiting queries');
    unlike($log, qr/\[(crit|alert|emerg)\]/, 'nothing worse than an error in the log')
        or diag join "\n", grep { /\[(crit|alert|emerg)\]/ } split /\n/, $log;
}

#---------------------------------------------------------------------------
# (D) a flush that waits for a connection (never sent) at a fast stop: its
#     watched seconds are dropped as if PostgreSQL might have committed it
#---------------------------------------------------------------------------

SKIP: {
    my $pgport = $ENV{TEST_NGINX_PG_PORT} or skip 'no TEST_NGINX_PG_PORT', 3;
    my $psql = sub {
        my $out = `psql -h 127.0.0.1 -p $pgport -U postgres -d vodlms -Atc "$_[0]" 2>&1`;
        chomp $out;
        return $out;
    };
    my $row = sub {
        $psql->("SELECT max_position_seconds || ' ' || watched_seconds FROM vodlms.watch_progress"
              . " WHERE user_id = '1001' AND video_id = 'intro-ready'");
    };
    my $port = free_port();
    my $conn = "host=127.0.0.1 port=$pgport user=postgres dbname=vodlms";
    my $n = nginx_child(name => 't177-d', listen => $port, workers => 1, log_level => 'debug', http => <<"HTTP");
    vodlms_redis 127.0.0.1:$redis_port;
    vodlms_pg "$conn" pool_size=1 timeout=10s;
    vodlms_enrollment_query "SELECT \$1::text AS id, 'ready' AS status, (\$2::text <> '') AS allowed FROM pg_sleep(3)" \$vodlms_video_id \$vodlms_user_id;
    vodlms_progress_zone zone=progress:1m flush=300ms;
    vodlms_cache_zone zone=cache:1m;

    server {
        listen 127.0.0.1:$port;
        root $root;

        location ~ ^/videos/(?<vid>[^/]+)/meta\$ {
            vodlms_auth on;
            vodlms_enrollment_check on;
            vodlms_video_id \$vid;
            try_files /static/hello.txt =404;
        }

        location ~ ^/api/videos/(?<vid>[^/]+)/progress\$ {
            vodlms_auth on;
            vodlms_enrollment_check on;
            vodlms_enrollment_cache cache valid=60s;
            vodlms_video_id \$vid;
            vodlms_progress on;
            vodlms_progress_rate off;
        }
    }
HTTP
    my $http = HTTP::Tiny->new(timeout => 10);
    my $beacon = sub {
        $http->post("http://127.0.0.1:$port/api/videos/intro-ready/progress", {
            headers => { Cookie => 'session=t177-alice', 'Content-Type' => 'text/plain' },
            content => sprintf('{"videoId":"intro-ready","currentTime":%.1f,"duration":634.5}', $_[0]),
        })->{status};
    };
    is($beacon->(10.0), 204, 'first beacon acknowledged (its enrollment answer cached)');
    my $t0 = time;
    sleep 0.8;
    my $before = $row->();
    diag("(D) the row after the first flush: '$before'");
    my ($w0) = $before =~ / ([\d.]+)$/;
    $w0 //= 0;

    # the only connection is busy for 3 s with a (sleeping) enrollment check
    my $other = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port") or die;
    print $other "GET /videos/other-video/meta HTTP/1.0\r\nHost: x\r\nCookie: session=t177-alice\r\n\r\n";
    my @busy = ($other);
    sleep 0.3;
    sleep 0.05 while time - $t0 < 1.2;
    is($beacon->(11.0), 204, 'a beacon one second of playback later: acknowledged');
    sleep 0.8;    # the flush is taken, and waits for the connection
    like($n->log, qr/vodlms pg: wait, .*one-off SQL waits for a connection/, 'the flush waits for a connection');
    like($n->log, qr/watched pending 1\.000/, 'the second beacon left one watched second pending');
    $n->stop('TERM');
    close $_ for @busy;
    my $after = $row->();
    diag("(D) the row after the fast stop: '$after'");
    my ($pos, $w1) = split ' ', $after;
    is($pos + 0, 11, 'the last position was written at exit');
    cmp_ok($w1 - $w0, '>=', 0.9, 'the acknowledged second of playback is credited (the waiting flush was never sent)');
}

done_testing();
