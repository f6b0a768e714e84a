# Concurrent streams per user (issue #22, part 2): vodlms_streams_limit and
# vodlms_streams.  A playback start (the playback endpoint) and every beacon
# run one EVAL in a private Redis; the limit holds across two nginx nodes
# sharing that Redis; a playback lapses after its beacons stop; over the
# limit a new playback is refused (409 too_many_streams) or takes over the
# oldest, whose next beacon is 409 stream_displaced; Redis down lets
# playbacks go on unchecked (open, the default) or refuses them (closed).
# Key fetches of encrypted HLS (vodlms_hls_key) in a location with
# vodlms_streams are checked and refreshed like beacons, by the playbackId
# in X-Vodlms-Playback: a displaced playback gets no key; without the
# header, headerless=serve (the default) serves, headerless=refuse is 400.
#
# Each block has users of its own (t077-uN -> user 20NN), so no block sees
# another's playbacks.  Multi-step scenarios run in the control server,
# which talks to the block's nginx and answers what it saw; waits are
# polled conditions, never timing assertions.

use FindBin;
use lib "$FindBin::Bin/lib";
use VodlmsTest;
use IO::Socket::INET;
use JSON::PP ();
use Test::Nginx::Socket 'no_plan';

# a Redis of its own: one block stops it
my $redis = start_redis();
$ENV{TEST_NGINX_REDIS_PORT} = $redis->port;

my $pg = start_pg();
$ENV{TEST_NGINX_PRIVATE_PG} = $pg->conninfo;

# the sessions, as the LMS writes them (again after a block restarts Redis:
# it keeps nothing on disk)
sub sessions {
    redis_cmd($redis, 'SET', "session:t077-u$_", '{"user_id":"' . (2000 + $_) . '"}', 'EX', 3600)
        for 1 .. 20;
}
sessions();

for my $n (1 .. 20) {
    my $id = 2000 + $n;
    $pg->psql(qq{INSERT INTO vodlms.users (id, email, role) VALUES ('$id', 'u$n\@example.com', 'student')});
    $pg->psql(qq{INSERT INTO vodlms.enrollments (user_id, course_id, status) VALUES ('$id', 'course-intro', 'active')});
}
# a key of intro-ready, as if it were encrypted
$pg->psql(q{INSERT INTO vodlms.video_keys (video_id, version, key_index, key, first_segment, starts_ms)
            VALUES ('intro-ready', 'v1', 0, '\x000102030405060708090a0b0c0d0e0f', 0, 0)});
my $key0 = join '', map { chr } 0x00 .. 0x0f;

my $vectors = $ENV{VODLMS_VECTORS_DIR} || "$FindBin::Bin/../../shared/vectors/cloudfront";
$ENV{TEST_NGINX_CF_KEY} = private_key("$vectors/test_private_key.pem");

my $servroot = $ENV{TEST_NGINX_SERVROOT} || "$FindBin::Bin/servroot";

# the limits every block may name, and what they need
my $http = <<'EOF';
    vodlms_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    vodlms_pg "$TEST_NGINX_PRIVATE_PG";
    vodlms_cache_zone zone=c:1m;
    vodlms_progress_zone zone=progress:1m flush=1h;
    vodlms_streams_limit refuse2 max=2;
    vodlms_streams_limit take2 max=2 over=takeover;
    vodlms_streams_limit short1 max=1 lapse=2s;
    vodlms_streams_limit one max=1;
    vodlms_streams_limit shared max=2 lapse=60s;
    vodlms_streams_limit open1 max=1 redis_down=open;
    vodlms_streams_limit closed1 max=1 redis_down=closed;
EOF
block_defaults(http_config => $http);

# a key location under /$prefix/keys/, with "vodlms_streams $streams" (and
# vodlms_hls_key's parameters $params)
sub keyloc {
    my ($prefix, $streams, $params) = @_;
    $params = $params ? " $params" : '';
    return <<"EOF";
    location ~ "^/$prefix/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\\.key\$" {
        vodlms_auth on;
        vodlms_session_cache c valid=60s invalid=5s;
        vodlms_enrollment_check on;
        vodlms_enrollment_cache c valid=60s invalid=5s;
        vodlms_video_id \$kv;
        vodlms_hls_key \$kver \$kk$params;
        vodlms_streams $streams;
        add_header X-Playback-Id \$vodlms_playback_id always;
    }
EOF
}

# the playback, beacon and key locations, counted under limit $name; keys
# under /strict/ refuse a fetch without X-Vodlms-Playback
sub locations {
    my ($name) = @_;
    return <<"EOF";
    location ~ ^/videos/(?<vid>[^/]+)/stream\$ {
        vodlms_auth on;
        vodlms_session_cache c valid=60s invalid=5s;
        vodlms_enrollment_check on;
        vodlms_enrollment_cache c valid=60s invalid=5s;
        vodlms_video_id \$vid;
        vodlms_cloudfront_url https://cdn.example.test;
        vodlms_cloudfront_key K2JCJMDEHXQW5F \$TEST_NGINX_CF_KEY;
        vodlms_playback cookies;
        vodlms_streams $name;
        add_header X-Playback-Id \$vodlms_playback_id always;
    }
    location ~ ^/videos/(?<vid>[^/]+)/progress\$ {
        vodlms_auth on;
        vodlms_session_cache c valid=60s invalid=5s;
        vodlms_enrollment_check on;
        vodlms_enrollment_cache c valid=60s invalid=5s;
        vodlms_video_id \$vid;
        vodlms_progress on;
        vodlms_streams $name;
        add_header X-Playback-Id \$vodlms_playback_id always;
    }
@{[ keyloc('vodlms', $name) . keyloc('strict', "$name headerless=refuse") ]}
    location /check/ { proxy_pass http://127.0.0.1:\$TEST_NGINX_CTL_PORT; }
EOF
}

# one request to an nginx: (status, body, raw headers)
sub hreq {
    my ($port, $method, $path, $user, $hdr, $body) = @_;
    my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 10)
        or return (0, "cannot connect: $!", '');
    my $h = "$method $path HTTP/1.0\r\nHost: localhost\r\nCookie: session=t077-$user\r\n";
    $h .= "$_: $hdr->{$_}\r\n" for sort keys %{ $hdr || {} };
    $h .= "Content-Length: " . length($body) . "\r\n" if defined $body;
    print $c "$h\r\n" . ($body // '');
    local $/;
    my $resp = <$c> // '';
    my ($head, $b) = split /\r\n\r\n/, $resp, 2;
    my ($code) = ($head // '') =~ m{^HTTP/1\.\d (\d+)};
    return ($code // 0, $b // '', $head // '');
}

my $node1 = sub { $ENV{TEST_NGINX_SERVER_PORT} };

# a playback start: "200 <id>" (the id checked), or "<status> <body>"
sub start_playback {
    my ($port, $user, $hdr) = @_;
    my ($code, $body) = hreq($port, 'GET', '/videos/intro-ready/stream', $user, $hdr);
    if ($code == 200) {
        my $d = eval { JSON::PP::decode_json($body) } || {};
        return ('200', $d->{playbackId}) if defined $d->{playbackId};
        return ('200', 'no playbackId');
    }
    chomp $body;
    return ($code, $body);
}

sub beacon {
    my ($port, $user, $id) = @_;
    my $pid = defined $id ? qq(,"playbackId":"$id") : '';
    my ($code, $body) = hreq($port, 'POST', '/videos/intro-ready/progress', $user, {},
                             qq({"videoId":"intro-ready","currentTime":10,"duration":634.5$pid}));
    chomp $body;
    return $code == 204 ? '204' : "$code $body";
}

my $hex = qr/^[0-9a-f]{32}$/;

# a key fetch: "200 key" (the 16 bytes of the key), or "<status> <body>";
# $id undef sends no X-Vodlms-Playback; $strict asks the location that
# refuses that (or, a word, the key location under /<word>/)
sub key {
    my ($port, $user, $id, $strict) = @_;
    my $prefix = !$strict ? 'vodlms' : $strict eq '1' ? 'strict' : $strict;
    my ($code, $body) = hreq($port, 'GET', "/$prefix/keys/intro-ready/v1/0.key",
                             $user, defined $id ? { 'X-Vodlms-Playback' => $id } : {});
    return '200 key' if $code == 200 && $body eq $key0;
    chomp $body;
    return "$code $body";
}

sub ids_ok {
    my (@ids) = @_;
    my %seen;
    return (grep { !/$hex/ || $seen{$_}++ } @ids) ? 'ids NOT distinct 128-bit hex' : 'ids distinct 128-bit hex';
}

sub log_count {
    my ($re) = @_;
    open my $fh, '<', "$servroot/logs/error.log" or return 0;
    return scalar grep { /$re/ } <$fh>;
}

# a second node (started below): its own nginx, the same Redis and PostgreSQL
my $port2 = free_port();

my ($ctl_port, $ctl) = control_server(
    # max=2, refuse: the third start is refused; beacons keep the two alive
    '/check/refuse' => sub {
        my @r;
        my (undef, $a) = start_playback($node1->(), 'u1');
        my (undef, $b) = start_playback($node1->(), 'u1');
        push @r, ids_ok($a, $b);
        push @r, join ' ', start_playback($node1->(), 'u1');
        push @r, 'beacon 1: ' . beacon($node1->(), 'u1', $a);
        push @r, 'beacon 2: ' . beacon($node1->(), 'u1', $b);
        push @r, 'another user: ' . (start_playback($node1->(), 'u2'))[0];
        join("\n", @r) . "\n";
    },
    # renewing a playback (X-Vodlms-Playback) keeps its id and its slot
    '/check/renew' => sub {
        my @r;
        my (undef, $a) = start_playback($node1->(), 'u3');
        my ($c, $same) = start_playback($node1->(), 'u3', { 'X-Vodlms-Playback' => $a });
        push @r, "renew: $c " . ($same eq $a ? 'same id' : "another id ($same)");
        push @r, 'a new one: ' . join ' ', start_playback($node1->(), 'u3');
        my ($nc, $none) = start_playback($node1->(), 'u3', { 'X-Vodlms-Playback' => 'none' });
        push @r, "none: $nc $none";
        # $vodlms_playback_id: the renewed id; none for a refused new one
        my $var = sub { ($_[0] =~ /\r\nX-Playback-Id: (\S+)/)[0] // 'empty' };
        my (undef, undef, $h1) = hreq($node1->(), 'GET', '/videos/intro-ready/stream', 'u3',
                                      { 'X-Vodlms-Playback' => $a });
        push @r, '$vodlms_playback_id, renewed: ' . ($var->($h1) eq $a ? 'its id' : $var->($h1));
        my (undef, undef, $h2) = hreq($node1->(), 'GET', '/videos/intro-ready/stream', 'u3');
        push @r, '$vodlms_playback_id, refused: ' . $var->($h2);
        my (undef, undef, $h3) = hreq($node1->(), 'POST', '/videos/intro-ready/progress', 'u3', {},
            qq({"videoId":"intro-ready","currentTime":10,"duration":634.5,"playbackId":"$a"}));
        push @r, '$vodlms_playback_id, beacon: ' . ($var->($h3) eq $a ? 'its id' : $var->($h3));
        join("\n", @r) . "\n";
    },
    # max=2, takeover: the third start displaces the oldest
    '/check/takeover' => sub {
        my @r;
        my (undef, $a) = start_playback($node1->(), 'u4');
        my (undef, $b) = start_playback($node1->(), 'u4');
        my ($cc, $c) = start_playback($node1->(), 'u4');
        push @r, "third: $cc " . ids_ok($a, $b, $c);
        push @r, 'first beacon: ' . beacon($node1->(), 'u4', $a);
        push @r, 'first renews: ' . join ' ', start_playback($node1->(), 'u4', { 'X-Vodlms-Playback' => $a });
        push @r, 'second beacon: ' . beacon($node1->(), 'u4', $b);
        push @r, 'third beacon: ' . beacon($node1->(), 'u4', $c);
        # the oldest left is the second: a fourth start displaces it
        my ($dc, $d) = start_playback($node1->(), 'u4');
        push @r, "fourth: $dc";
        push @r, 'second beacon: ' . beacon($node1->(), 'u4', $b);
        push @r, 'third beacon: ' . beacon($node1->(), 'u4', $c);
        join("\n", @r) . "\n";
    },
    # key fetches under max=2, takeover: a live playback's key is served, a
    # displaced one's is not; without the header, as the location says
    '/check/keys' => sub {
        my @r;
        my (undef, $a) = start_playback($node1->(), 'u14');
        my (undef, $b) = start_playback($node1->(), 'u14');
        push @r, 'key of the first: ' . key($node1->(), 'u14', $a);
        push @r, 'key of the second: ' . key($node1->(), 'u14', $b);
        my ($cc, $c) = start_playback($node1->(), 'u14');
        push @r, "third: $cc";
        push @r, 'key of the first: ' . key($node1->(), 'u14', $a);
        push @r, 'strict key of the first: ' . key($node1->(), 'u14', $a, 1);
        push @r, 'key of the third: ' . key($node1->(), 'u14', $c);
        push @r, 'strict key of the third: ' . key($node1->(), 'u14', $c, 1);
        push @r, 'key, no header: ' . key($node1->(), 'u14', undef);
        push @r, 'strict key, no header: ' . key($node1->(), 'u14', undef, 1);
        push @r, 'key, malformed: ' . key($node1->(), 'u14', 'A' x 32);
        push @r, 'key, "none": ' . key($node1->(), 'u14', 'none');
        push @r, 'first beacon: ' . beacon($node1->(), 'u14', $a);
        my (undef, undef, $h) = hreq($node1->(), 'GET', '/vodlms/keys/intro-ready/v1/0.key', 'u14',
                                     { 'X-Vodlms-Playback' => $c });
        push @r, '$vodlms_playback_id: ' . (($h =~ /\r\nX-Playback-Id: (\S+)/)[0] // 'empty') =~ s/^\Q$c\E$/its id/r;
        join("\n", @r) . "\n";
    },
    # a key fetch counts a playback as a beacon does: an unknown one is
    # admitted when there is room (and then holds a slot), refused when
    # there is none
    '/check/keyroom' => sub {
        my @r;
        my (undef, $a) = start_playback($node1->(), 'u15');
        push @r, 'an unknown playback\'s key: ' . key($node1->(), 'u15', 'a' x 32);
        push @r, 'a new playback: ' . join ' ', start_playback($node1->(), 'u15');
        push @r, 'another unknown one\'s key: ' . key($node1->(), 'u15', 'b' x 32);
        push @r, 'the first\'s key: ' . key($node1->(), 'u15', $a);
        join("\n", @r) . "\n";
    },
    # a key the limit refuses is not counted against the key budget (the
    # limit is checked first, in the access phase)
    '/check/keybudget' => sub {
        my @r;
        my (undef, $a) = start_playback($node1->(), 'u16');
        push @r, 'no room: ' . key($node1->(), 'u16', 'c' x 32, 'budget');
        push @r, 'no room again: ' . key($node1->(), 'u16', 'c' x 32, 'budget');
        push @r, 'the live one: ' . key($node1->(), 'u16', $a, 'budget');
        my $again = key($node1->(), 'u16', $a, 'budget');
        push @r, 'the live one again: ' . ($again =~ /^429 \{"error":"key_budget"/ ? '429 key_budget' : $again);
        join("\n", @r) . "\n";
    },
    # the takeover order is the order of admission, even against the clock:
    # a playback whose start Redis holds as later than now (two starts in
    # one millisecond look like that to the next one) stays the newer
    '/check/order' => sub {
        my @r;
        my $t = VodlmsTest::redis_cmd($redis, 'TIME');
        my $now = $t->[0] * 1000 + int($t->[1] / 1000);
        my $x = 'f' x 32;
        VodlmsTest::redis_cmd($redis, 'ZADD', 'vodlms:streams:{take2:2013}:live', $now, $x);
        VodlmsTest::redis_cmd($redis, 'ZADD', 'vodlms:streams:{take2:2013}:start', $now + 60000, $x);
        my (undef, $a) = start_playback($node1->(), 'u13');
        my ($bc) = start_playback($node1->(), 'u13');
        push @r, "third: $bc";
        push @r, 'the one started first: ' . beacon($node1->(), 'u13', $x);
        push @r, 'the one admitted next: ' . beacon($node1->(), 'u13', $a);
        join("\n", @r) . "\n";
    },
    # lapse=2s: silence frees the slot (polled); the lapsed one is then
    # refused while another holds the slot, and re-admitted when there is
    # room again
    '/check/lapse' => sub {
        my @r;
        my (undef, $a) = start_playback($node1->(), 'u5');
        push @r, 'second at once: ' . (start_playback($node1->(), 'u5'))[0];
        my $b = poll_until('a free slot', sub {
            my ($c, $id) = start_playback($node1->(), 'u5');
            $c == 200 ? $id : undef;
        });
        push @r, 'after the lapse: ' . ($b =~ $hex ? 'admitted' : $b);
        push @r, 'the lapsed one: ' . beacon($node1->(), 'u5', $a);
        my $key = 'vodlms:streams:{short1:2005}:live';
        my $gone = poll_until('the slot to lapse again', sub {
            VodlmsTest::redis_cmd($redis, 'EXISTS', $key) == 0 ? 'gone' : undef });
        push @r, "the set: $gone";
        push @r, 'the first, back: ' . beacon($node1->(), 'u5', $a);
        push @r, 'a new one now: ' . (start_playback($node1->(), 'u5'))[0];
        join("\n", @r) . "\n";
    },
    # the limit across nodes: two nginx, one Redis
    '/check/nodes' => sub {
        my @r;
        push @r, 'node 1: ' . (start_playback($node1->(), 'u6'))[0];
        my (undef, $b) = start_playback($port2, 'u6');
        push @r, 'node 2: ' . ($b =~ $hex ? '200' : $b);
        push @r, 'node 1 again: ' . join ' ', start_playback($node1->(), 'u6');
        push @r, 'node 2 again: ' . join ' ', start_playback($port2, 'u6');
        push @r, 'node 1, beacon of node 2\'s playback: ' . beacon($node1->(), 'u6', $b);
        join("\n", @r) . "\n";
    },
    # Redis answers the script with an error (a key of the wrong type
    # where the playbacks are): as down
    '/check/error' => sub {
        my @r;
        my $key = 'vodlms:streams:{open1:2012}:live';
        VodlmsTest::redis_cmd($redis, 'SET', $key, 'not a sorted set');
        my ($c, $id) = start_playback($node1->(), 'u12');
        VodlmsTest::redis_cmd($redis, 'DEL', $key);
        push @r, "refused by Redis: $c " . ($id =~ $hex ? 'with a playbackId' : $id);
        push @r, 'its beacon now: ' . beacon($node1->(), 'u12', $id);
        push @r, 'a new playback: ' . join ' ', start_playback($node1->(), 'u12');
        join("\n", @r) . "\n";
    },
    # Redis stops: the session and the enrollment come from the cache, the
    # streams cannot be checked
    '/check/down' => sub {
        my (undef, $q) = @_;
        my ($user) = ($q // '') =~ /user=(\w+)/;
        my @r;
        push @r, 'up: ' . ((start_playback($node1->(), $user))[0]);
        $redis->stop;
        my ($c1, $id1) = start_playback($node1->(), $user);
        my ($c2, $id2) = start_playback($node1->(), $user);
        push @r, "down: $c1 " . ($id1 =~ $hex ? 'with a playbackId' : $id1);
        push @r, "down again: $c2 " . ($id2 =~ $hex ? 'with a playbackId' : $id2);
        my (undef, undef, $head) = hreq($node1->(), 'GET', '/videos/intro-ready/stream', $user);
        push @r, 'Retry-After: ' . ($head =~ /\r\nRetry-After: (\d+)(?:\r\n|$)/ ? $1 : 'none');
        my ($bc) = beacon($node1->(), $user, $id1 =~ $hex ? $id1 : '0' x 32);
        push @r, "beacon: $bc";
        push @r, 'key: ' . key($node1->(), $user, $id1 =~ $hex ? $id1 : '0' x 32);
        push @r, 'lines logged: ' . log_count(qr/vodlms streams: the limit "\w+" cannot be checked/);
        $redis->start;
        sessions();
        my $back = poll_until('Redis answering again', sub {
            start_playback($node1->(), $user);
            log_count(qr/Redis answers again: the limit/) ? 'logged' : undef });
        push @r, "back: $back";
        join("\n", @r) . "\n";
    },
);
$ENV{TEST_NGINX_CTL_PORT} = $ctl_port;

# the second node
my $node2 = nginx_child(name => 't077-node2', listen => $port2, http => <<"EOF" =~ s/\$TEST_NGINX_(\w+)/$ENV{"TEST_NGINX_$1"}/gr);
    vodlms_redis 127.0.0.1:\$TEST_NGINX_REDIS_PORT;
    vodlms_pg "\$TEST_NGINX_PRIVATE_PG";
    vodlms_cache_zone zone=c:1m;
    vodlms_progress_zone zone=progress:1m flush=1h;
    vodlms_streams_limit shared max=2 lapse=60s;
    server {
        listen 127.0.0.1:$port2;
@{[ locations('shared') ]}
    }
EOF


# strings the expected bodies use
our $full2 = '{"error":"too_many_streams","message":"too many playbacks at once for this user","active":2,"limit":2}';
our $full1 = '{"error":"too_many_streams","message":"too many playbacks at once for this user","active":1,"limit":1}';
our $displaced = '{"error":"stream_displaced","message":"this playback was taken over by one on another device"}';

no_shuffle();
run_tests();

$node2->stop;

__DATA__

=== TEST 1: max=2, refuse: two playbacks get a playbackId each, the third is 409 too_many_streams with the count and the limit; beacons keep them alive; another user is not counted
--- config eval
main::locations('refuse2')
--- request
GET /check/refuse
--- response_body eval
"ids distinct 128-bit hex
409 $::full2
beacon 1: 204
beacon 2: 204
another user: 200
"
--- error_log
too many playbacks at once for this user: user 2001 has 2 of 2 playbacks alive under limit "refuse2", answering 409
--- no_error_log
[error]



=== TEST 2: the playback answer carries "playbackId" after the usual members
--- config eval
main::locations('refuse2')
--- request
GET /videos/intro-ready/stream
--- more_headers
Cookie: session=t077-u7
--- response_body_like chomp
^\{"videoId":"intro-ready","title":"Lecture 1: What is a video codec\?","duration":634.5,"status":"ready","manifestUrl":"https://cdn.example.test/hls/intro-ready/master.m3u8","expiresAt":\d+,"resumeAt":0,"playbackId":"[0-9a-f]{32}"\}$
--- no_error_log
[error]



=== TEST 3: X-Vodlms-Playback renews a playback (same id, same slot); "none" answers without counting or a playbackId; $vodlms_playback_id names the playback
--- config eval
main::locations('one')
--- request
GET /check/renew
--- response_body eval
"renew: 200 same id
a new one: 409 $::full1
none: 200 no playbackId
\$vodlms_playback_id, renewed: its id
\$vodlms_playback_id, refused: empty
\$vodlms_playback_id, beacon: its id
"
--- no_error_log
[error]



=== TEST 4: max=2, takeover: the third playback displaces the oldest, whose beacon and renewal are 409 stream_displaced; a fourth displaces the next oldest
--- config eval
main::locations('take2')
--- request
GET /check/takeover
--- response_body eval
"third: 200 ids distinct 128-bit hex
first beacon: 409 $::displaced
first renews: 409 $::displaced
second beacon: 204
third beacon: 204
fourth: 200
second beacon: 409 $::displaced
third beacon: 204
"
--- error_log eval
[qr/vodlms streams: user 2004 started playback [0-9a-f]{32} over the limit "take2" \(2\): it took over 1 older playback\(s\)/,
 qr/this playback was taken over by one on another device: playback [0-9a-f]{32} of user 2004 was taken over by a newer one, answering 409/]
--- no_error_log
[error]



=== TEST 4b: takeover displaces the earliest admitted, even when two starts share a millisecond (start times stay strictly increasing per user)
--- config eval
main::locations('take2')
--- request
GET /check/order
--- response_body eval
"third: 200
the one started first: 409 $::displaced
the one admitted next: 204
"
--- no_error_log
[error]



=== TEST 5: lapse=2s: a playback whose beacons stop lapses and frees its slot; the lapsed one is refused while the slot is taken, and admitted again once it is free
--- config eval
main::locations('short1')
--- request
GET /check/lapse
--- timeout: 30
--- response_body eval
"second at once: 409
after the lapse: admitted
the lapsed one: 409 $::full1
the set: gone
the first, back: 204
a new one now: 409
"
--- no_error_log
[error]



=== TEST 6: two nginx nodes share the limit through one Redis
--- config eval
main::locations('shared')
--- request
GET /check/nodes
--- response_body eval
"node 1: 200
node 2: 200
node 1 again: 409 $::full2
node 2 again: 409 $::full2
node 1, beacon of node 2's playback: 204
"
--- no_error_log
[error]



=== TEST 7: bad input: an X-Vodlms-Playback that is not a playbackId is 400 bad_playback_id, and nothing is counted
--- config eval
main::locations('one')
--- request
GET /videos/intro-ready/stream
--- more_headers
Cookie: session=t077-u8
X-Vodlms-Playback: 0123456789ABCDEF0123456789abcdef
--- error_code: 400
--- response_body
{"error":"bad_playback_id","message":"malformed playbackId"}
--- error_log
malformed playbackId: a playbackId is 32 lower-case hex digits, answering 400
--- no_error_log
[error]



=== TEST 8: bad input: a beacon with a malformed playbackId is 400 bad_beacon (reason bad_playback_id)
--- config eval
main::locations('one')
--- request
POST /videos/intro-ready/progress
{"videoId":"intro-ready","currentTime":10,"duration":634.5,"playbackId":"not-a-playback"}
--- more_headers
Cookie: session=t077-u8
--- error_code: 400
--- response_body
{"error":"bad_beacon","message":"progress beacon rejected","reason":"bad_playback_id"}
--- no_error_log
[error]



=== TEST 9: bad input: under vodlms_streams a beacon must say which playback it is (400, reason missing_playback_id)
--- config eval
main::locations('one')
--- request
POST /videos/intro-ready/progress
{"videoId":"intro-ready","currentTime":10,"duration":634.5}
--- more_headers
Cookie: session=t077-u8
--- error_code: 400
--- response_body
{"error":"bad_beacon","message":"progress beacon rejected","reason":"missing_playback_id"}
--- no_error_log
[error]



=== TEST 10: a beacon with a playbackId nobody started is admitted when there is room (a lapsed playback resuming)
--- config eval
main::locations('one')
--- request
POST /videos/intro-ready/progress
{"videoId":"intro-ready","currentTime":10,"duration":634.5,"playbackId":"00000000000000000000000000000abc"}
--- more_headers
Cookie: session=t077-u9
--- error_code: 204
--- response_body
--- no_error_log
[error]



=== TEST 11: Redis down, redis_down=open (the default): playbacks go on with a playbackId, unchecked; one log line while it lasts, one when Redis is back
--- config eval
main::locations('open1')
--- request
GET /check/down?user=u10
--- timeout: 30
--- response_body
up: 200
down: 200 with a playbackId
down again: 200 with a playbackId
Retry-After: none
beacon: 204
key: 200 key
lines logged: 1
back: logged
--- error_log
playbacks go on unchecked (redis_down=open) until Redis answers



=== TEST 11b: Redis answering the script with an error (WRONGTYPE) counts as down: open lets the playback go on, logged with Redis' words; once Redis writes again, that playback's beacon registers it, and it counts
--- config eval
main::locations('open1')
--- request
GET /check/error
--- response_body
refused by Redis: 200 with a playbackId
its beacon now: 204
a new playback: 409 {"error":"too_many_streams","message":"too many playbacks at once for this user","active":1,"limit":1}
--- error_log eval
qr/vodlms streams: the limit "open1" cannot be checked \(redis said: [^)]*WRONGTYPE[^)]*\): playbacks go on unchecked/



=== TEST 12: Redis down, redis_down=closed: 503 streams_unavailable with Retry-After, beacons too
--- config eval
main::locations('closed1')
--- request
GET /check/down?user=u11
--- timeout: 30
--- response_body
up: 200
down: 503 {"error":"streams_unavailable","message":"stream limit store unavailable"}
down again: 503 {"error":"streams_unavailable","message":"stream limit store unavailable"}
Retry-After: 2
beacon: 503 {"error":"streams_unavailable","message":"stream limit store unavailable"}
key: 503 {"error":"streams_unavailable","message":"stream limit store unavailable"}
lines logged: 1
back: logged
--- error_log
playbacks are refused (redis_down=closed) until Redis answers



=== TEST 12b: key fetches: a live playback's key is served and keeps it alive; a displaced one's is 409 stream_displaced with no key; no X-Vodlms-Playback is served (headerless=serve, the default) or 400 playback_required (headerless=refuse); a malformed one is 400
--- config eval
main::locations('take2')
--- request
GET /check/keys
--- response_body eval
"key of the first: 200 key
key of the second: 200 key
third: 200
key of the first: 409 $::displaced
strict key of the first: 409 $::displaced
key of the third: 200 key
strict key of the third: 200 key
key, no header: 200 key
strict key, no header: 400 {\"error\":\"playback_required\",\"message\":\"this key is served only to a playback: send X-Vodlms-Playback\"}
key, malformed: 400 {\"error\":\"bad_playback_id\",\"message\":\"malformed playbackId\"}
key, \"none\": 400 {\"error\":\"bad_playback_id\",\"message\":\"malformed playbackId\"}
first beacon: 409 $::displaced
\$vodlms_playback_id: its id
"
--- error_log eval
[qr/this playback was taken over by one on another device: playback [0-9a-f]{32} of user 2014 was taken over by a newer one, answering 409/,
 qr/this key is served only to a playback: send X-Vodlms-Playback: a key request of user 2014 without X-Vodlms-Playback under limit "take2" \(headerless=refuse\), answering 400/,
 qr/vodlms: key served: user "2014" video "intro-ready" version "v1" key 0/]
--- no_error_log
[error]



=== TEST 12c: a key fetch counts as a beacon: an unknown playbackId's key is served while there is room and takes a slot; with no room it is 409 too_many_streams
--- config eval
main::locations('refuse2')
--- request
GET /check/keyroom
--- response_body eval
"an unknown playback's key: 200 key
a new playback: 409 $::full2
another unknown one's key: 409 $::full2
the first's key: 200 key
"
--- no_error_log
[error]



=== TEST 12d: a key fetch the limit refuses never reaches the key budget (budget=1: the live playback's first key is still served)
--- config eval
main::locations('one') . main::keyloc('budget', 'one', 'budget=1/10m')
--- request
GET /check/keybudget
--- response_body eval
"no room: 409 $::full1
no room again: 409 $::full1
the live one: 200 key
the live one again: 429 key_budget
"
--- no_error_log
[error]



=== TEST 13: nginx -t: vodlms_streams naming no vodlms_streams_limit
--- config
    location /s { vodlms_auth on; vodlms_streams nosuch; }
--- must_die
--- error_log
"vodlms_streams" names "nosuch", which no "vodlms_streams_limit" defines



=== TEST 14: nginx -t: vodlms_streams with vodlms_playback redirect
--- config
    location /s {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id x;
        vodlms_cloudfront_url https://cdn.example.test;
        vodlms_cloudfront_key K2JCJMDEHXQW5F $TEST_NGINX_CF_KEY;
        vodlms_playback redirect;
        vodlms_streams one;
    }
--- must_die
--- error_log
"vodlms_streams" cannot count "vodlms_playback redirect"



=== TEST 15: nginx -t: vodlms_streams without vodlms_redis
--- http_config
    vodlms_streams_limit one max=1;
--- config
    location /s { vodlms_streams one; }
--- must_die
--- error_log
"vodlms_streams" needs "vodlms_redis"



=== TEST 16: nginx -t: vodlms_streams_limit without max=
--- http_config
    vodlms_streams_limit a lapse=10s;
--- config
--- must_die
--- error_log
"vodlms_streams_limit" needs "max=number"



=== TEST 17: nginx -t: a lapse under 1s
--- http_config
    vodlms_streams_limit a max=2 lapse=200ms;
--- config
--- must_die
--- error_log
invalid "lapse=200ms", expected a time from 1s to 1d



=== TEST 18: nginx -t: an unknown parameter
--- http_config
    vodlms_streams_limit a max=2 over=kick;
--- config
--- must_die
--- error_log
invalid parameter "over=kick", expected "max=number", "lapse=time", "over=refuse|takeover" or "redis_down=open|closed"



=== TEST 19: nginx -t: a limit defined twice
--- http_config
    vodlms_streams_limit a max=2;
    vodlms_streams_limit a max=3;
--- config
--- must_die
--- error_log
duplicate stream limit "a"



=== TEST 20: nginx -t: headerless= is for key locations only
--- config
    location /s {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id x;
        vodlms_progress on;
        vodlms_streams one headerless=refuse;
    }
--- must_die
--- error_log
"vodlms_streams" "headerless=" applies to key requests only (a location with "vodlms_hls_key"), not to "vodlms_progress"



=== TEST 21: nginx -t: an unknown vodlms_streams parameter, and "off" with one
--- config
    location /s { vodlms_streams one headerless=maybe; }
--- must_die
--- error_log
invalid parameter "headerless=maybe", expected "headerless=serve" or "headerless=refuse"



=== TEST 22: nginx -t: "vodlms_streams off" takes no parameters
--- config
    location /s { vodlms_streams off headerless=refuse; }
--- must_die
--- error_log
"vodlms_streams off" takes no parameters, "headerless=refuse" given



=== TEST 23: nginx -t: a key location naming a limit nobody defines
--- config
    location ~ ^/k/(?<v>[a-z]+)/([0-9]+)$ {
        vodlms_auth on;
        vodlms_enrollment_check on;
        vodlms_video_id $v;
        vodlms_hls_key v1 $2;
        vodlms_streams nosuch;
    }
--- must_die
--- error_log
"vodlms_streams" names "nosuch", which no "vodlms_streams_limit" defines
