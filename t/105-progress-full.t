# A full progress buffer during a database outage (issue #18), and what
# "error_log ... debug" says about beacons and flushes (issue #17).
#
# Before: a beacon for a new entry, with the zone full, walked every entry
# under the zone's lock looking for a clean one to evict, and did so before
# the rate check; during an outage every entry is dirty, so every refused
# beacon walked the whole buffer for nothing, and slowed everyone else's
# beacons.  Now clean entries are on their own queue: eviction takes its
# tail, and with nothing clean the beacon is refused at once.  The speed is
# measured by "./build.sh bench" (the "full zone during DB outage"
# scenario); here, what a user and an operator see.
#
# A control server stops and starts PostgreSQL and sends the many beacons;
# waits are conditions (the metrics page), never sleeps.

use FindBin;
use lib "$FindBin::Bin/lib";
use VodlmsTest;
use IO::Socket::INET;
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_REDIS_PORT} ||= 6379;
redis_cmd($ENV{TEST_NGINX_REDIS_PORT}, 'SET', "session:t105-$_->[0]",
          qq({"user_id":"$_->[1]"}), 'EX', 3600)
    for ['alice', 1001], ['bob', 1002];

my $pg = start_pg();
$ENV{TEST_NGINX_PRIVATE_PG} = $pg->conninfo;

sub wait_until {
    my ($what, $cond) = @_;
    for (1 .. 1500) {
        my $v = eval { $cond->() };
        return $v if $v;
        select undef, undef, undef, 0.02;
    }
    return "timed out waiting for $what\n";
}

# one request to nginx -> (status, body)
sub http {
    my ($method, $path, $who, $body) = @_;
    $body //= '';
    my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ENV{TEST_NGINX_SERVER_PORT},
                                  Timeout => 10) or return (0, "connect: $!");
    print $c "$method $path HTTP/1.0\r\nHost: localhost\r\n"
           . ($who ? "Cookie: session=t105-$who\r\n" : '')
           . "Content-Length: " . length($body) . "\r\n\r\n$body";
    local $/;
    my $resp = <$c> // '';
    my ($code) = $resp =~ m{^HTTP/1\.\d (\d+)};
    my (undef, $b) = split /\r\n\r\n/, $resp, 2;
    $b //= '';
    $b =~ s/\s+\z//;
    return ($code // 0, $b);
}

sub beacon {
    my ($who, $video, $t) = @_;
    http('POST', "/api/videos/$video/progress", $who,
         qq({"videoId":"$video","currentTime":$t,"duration":600}));
}

# the position GET answers: this node's buffer, else the database's (none
# here: the enrollment query has no resume columns), so 0.000
sub resume {
    my ($who, $video) = @_;
    my ($code, $b) = http('GET', "/api/videos/$video/progress", $who);
    $b =~ /"position":([\d.]+)/ ? $1 : "$code $b";
}

sub metric {
    my ($name) = @_;
    my (undef, $b) = http('GET', '/metrics');
    $b =~ /^\Q$name\E (\S+)$/m ? $1 : undef;
}

sub wait_flushed {
    wait_until('the flush', sub {
        my ($p, $f) = (metric('vodlms_progress_pending'),
                       metric('vodlms_progress_flushes_total'));
        defined $p && $p == 0 && $f > 0 ? "flushed, none pending\n" : undef });
}

my ($ctl_port, $ctl) = control_server(
    # one beacon, then its flush
    '/debug' => sub {
        my ($code) = http('POST', '/api/videos/intro-ready/progress', 'alice',
                          '{"videoId":"intro-ready","currentTime":12.5,"duration":634.5}');
        "beacon: $code\n" . wait_flushed();
    },

    '/outage' => sub {
        my @out;

        # the enrollment answers, cached while PostgreSQL is up (a GET
        # makes no entry), so that beacons pass the access check without it
        for my $i (1 .. 300) {
            my ($code, $b) = http('GET', "/api/videos/v$i/progress", 'alice');
            return "warming v$i: $code $b" if $code != 200;
        }

        $pg->stop;
        push @out, "database stopped";

        # one viewer opens entries until the zone is full of dirty ones
        my $accepted;
        for my $i (1 .. 300) {
            my ($code, $body) = beacon('alice', "v$i", $i);
            next if $code == 204;
            $accepted = $i - 1;
            push @out, "filled: " . ($accepted > 10 ? 'many' : $accepted)
                     . " accepted, then $code $body";
            last;
        }
        return join("\n", @out, "never refused\n") unless $accepted;

        my ($code, $body) = beacon('alice', 'v' . ($accepted + 2), 1);
        push @out, "another new entry: $code $body";

        ($code) = beacon('alice', "v$accepted", $accepted + 0.5);
        push @out, "an entry it has: $code";

        push @out, wait_until('a failed flush', sub {
            (metric('vodlms_progress_flush_failures_total') // 0) > 0
                ? "a flush failed" : undef });

        $pg->start;
        push @out, "database started";
        push @out, wait_flushed() =~ s/\n//r;

        # three new users' entries: room is made by evicting the oldest
        my @codes = map { (beacon("bob", "v$_", 1))[0] } 1 .. 3;
        push @out, "another user: @codes";
        push @out, "evicted, so resumed from the database: "
                 . join(' ', map { resume('alice', "v$_") } 1 .. 3);
        my $newest = resume('alice', "v$accepted");
        push @out, "still buffered: " . resume('alice', 'v4') . ' '
                 . ($newest == $accepted + 0.5 ? 'and the newest' : $newest);
        join("\n", @out) . "\n";
    },
);
$ENV{TEST_NGINX_CTL_PORT} = $ctl_port;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: error_log debug tells what happened to a beacon and to its flush
--- main_config
    load_module $TEST_NGINX_MODULE_PATH;
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
    vodlms_progress_zone zone=progress:1m flush=300ms;
--- config
    location ~ ^/api/videos/(?<vid>[^/]+)/progress$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_progress on;
    }
    location = /metrics { vodlms_status; }
    location /ctl/ { proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/; }
--- log_level: debug
--- request
GET /ctl/debug
--- response_body
beacon: 204
flushed, none pending
--- error_log
vodlms progress: beacon merged into the new entry of user "1001" video "intro-ready" (version 1,
vodlms progress: merged: position 12.500, highest 12.500, duration 634.500, watched pending 0.000
vodlms progress: flush claimed by process
: 1 of 1 dirty entries (batch 1000)
vodlms progress: flushed 1 entries, 1 rows written: 1 clean, 0 changed since (still dirty), 0 no longer buffered
vodlms progress: flush claim released by process
(written), 0 dirty entries left
--- no_error_log
[error]
--- timeout: 40



=== TEST 2: a zone full of entries waiting for a database that is down refuses new ones at once with 503, keeps taking beacons for the ones it has, and makes room, oldest first, once a flush lands
--- main_config
    load_module $TEST_NGINX_MODULE_PATH;
--- http_config
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
    vodlms_progress_zone zone=progress:32k flush=200ms;
    vodlms_cache_zone zone=answers:1m;
--- config
    # any video id is "enrolled" here, so the client can open many entries
    location ~ ^/api/videos/(?<vid>[^/]+)/progress$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $vid;
        vodlms_enrollment_query "SELECT $1::text AS id" $vodlms_video_id;
        vodlms_enrollment_cache answers valid=10m;
        vodlms_progress on;
        vodlms_progress_rate off;
    }
    location = /metrics { vodlms_status; }
    location /ctl/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_CTL_PORT/;
        proxy_read_timeout 120s;
    }
--- log_level: debug
--- request
GET /ctl/outage
--- response_body
database stopped
filled: many accepted, then 503 {"error":"progress_buffer_full","message":"progress buffer full"}
another new entry: 503 {"error":"progress_buffer_full","message":"progress buffer full"}
an entry it has: 204
a flush failed
database started
flushed, none pending
another user: 204 204 204
evicted, so resumed from the database: 0.000 0.000 0.000
still buffered: 4.000 and the newest
--- error_log
vodlms: progress buffer full: every entry is waiting for the database, answering 503
vodlms progress: no clean entry to evict, all
vodlms progress: entry evicted (clean, least recently cleaned): user "1001" video "v1"
vodlms progress: entry evicted (clean, least recently cleaned): user "1001" video "v3"
--- timeout: 120
