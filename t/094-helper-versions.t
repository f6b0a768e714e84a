#!/usr/bin/perl

# Replacing a lecture: every encode has its own versioned prefix
# (hls/<id>/<version>/), so a re-encode never changes the bytes behind a URL
# that CDNs and browsers cache as immutable.  The row switches to the new
# version when it is marked ready; the old version stays on the origin for
# old_version_grace (viewers mid-playback), then the helper removes it --
# only version directories and the ladder from before versions, never a
# symbolic link's target, never the current prefix.  With publish = s3 the
# new version lands under its own key prefix and the old one is left for
# the operator's job (videos_superseded).  Private Redis and PostgreSQL,
# the real helper binary, s3rver behind the verifying proxy of t/092, and
# nginx with the module (playback cookies + the self-hosted edge serving
# the origin) to show that the module plays versions unchanged: the
# manifest URL and cookie scope follow storage_prefix, old cookies keep
# the old version, new cookies cover only the new one.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(sha256_hex);
use File::Find ();
use File::Path qw(make_path);
use HTTP::Tiny;
use IO::Socket::INET ();
use POSIX qw(:sys_wait_h);
use Test::More;
use Time::HiRes qw(sleep time);

use VodlmsTest;
use VodlmsS3;
use VodlmsHelperTest qw(slurp make_clip insert_video xadd_job spawn wait_exit video_row write_helper_conf);

my $T0 = time;
# the helper, the tools, a temporary directory, Redis and PostgreSQL (t/lib)
my %env = helper_env(name => 'versions', ports => 27000, tools => [qw(ffmpeg ffprobe node npm)]);
my ($repo, $build, $bin, $tmp, $src, $origin, $redis, $pg) = @env{qw(repo build bin tmp src origin redis pg)};
my $s3dir = "$repo/helper/test-s3";
sub pick_port { $env{pick_port}->() }

sub bail { fail($_[0]); done_testing(); exit 1; }

unless (-d "$s3dir/node_modules/s3rver") {
    diag("npm ci in $s3dir");
    system("cd '$s3dir' && npm ci --no-audit --no-fund --loglevel=error >&2");
    bail("npm ci failed in $s3dir") unless -d "$s3dir/node_modules/s3rver";
}

#---------------------------------------------------------------------------
# nginx with the module: playback (cookies) and the edge over the origin
#---------------------------------------------------------------------------

my $nginx_bin = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
my $module = $ENV{TEST_NGINX_MODULE_PATH} || "$build/ngx_http_vodlms_module.so";
bail("nginx module not built: $module (./build.sh build)") unless -f $module;
bail("no nginx binary: $nginx_bin") unless -x $nginx_bin;
my $vectors = $ENV{VODLMS_VECTORS_DIR} || "$repo/../shared/vectors/cloudfront";
bail("no CloudFront test keys in $vectors") unless -f "$vectors/test_private_key.pem";
my $CDN = 'http://cdn.example.test';
my $HTTP_PORT = pick_port();
make_path("$tmp/nginx/logs", "$origin/hls");
open my $nc, '>', "$tmp/nginx/nginx.conf" or die $!;
print $nc <<"NGINX";
load_module $module;
worker_processes 1;
daemon off;
master_process off;
error_log $tmp/nginx/logs/error.log info;
pid $tmp/nginx/logs/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    vodlms_redis 127.0.0.1:${\ $redis->port};
    vodlms_pg "${\ $pg->conninfo}";
    server {
        listen 127.0.0.1:$HTTP_PORT;
        location ~ ^/videos/(?<vid>[A-Za-z0-9_-]+)/stream\$ {
            vodlms_auth on;
            vodlms_enrollment_check on;
            vodlms_video_id \$vid;
            vodlms_cloudfront_url $CDN;
            vodlms_cloudfront_key K2JCJMDEHXQW5F ${\ private_key("$vectors/test_private_key.pem")};
            vodlms_playback cookies;
        }
        location /hls/ {
            vodlms_edge on;
            vodlms_edge_url $CDN;
            vodlms_edge_public_key K2JCJMDEHXQW5F $vectors/test_public_key.pem;
            root $origin;
        }
    }
}
NGINX
close $nc;
$redis->cmd('SET', 'session:t094-alice', '{"user_id":"1001"}', 'EX', 3600);

my $http = HTTP::Tiny->new(timeout => 10);
my $nginx_pid = spawn(log => "$tmp/nginx/logs/stdout",
                      cmd => [ $nginx_bin, '-p', "$tmp/nginx", '-c', "$tmp/nginx/nginx.conf" ]);
{
    my $deadline = time + 10;
    until (IO::Socket::INET->new(PeerAddr => "127.0.0.1:$HTTP_PORT", Timeout => 1)) {
        bail("nginx did not start: " . (slurp("$tmp/nginx/logs/error.log") // ''))
            if time > $deadline || waitpid($nginx_pid, WNOHANG) == $nginx_pid;
        sleep 0.1;
    }
}

# as alice (enrolled): the manifest URL and the Cookie header of the three cookies
sub play {
    my $id = shift;
    my $r = $http->get("http://127.0.0.1:$HTTP_PORT/videos/$id/stream",
                       { headers => { Cookie => 'session=t094-alice' } });
    my $sc = $r->{headers}{'set-cookie'} // [];
    $sc = [$sc] unless ref $sc;
    my %c = map { /^(CloudFront-[A-Za-z-]+)=([^;]*)/ ? ($1 => $2) : () } @$sc;
    my ($path) = map { /;\s*Path=([^;]+)/i ? $1 : () } @$sc;
    my ($url) = ($r->{content} // '') =~ /"manifestUrl":"([^"]+)"/;
    return { status => $r->{status}, url => $url // '', path => $path // '',
             cookie => join('; ', map { "$_=$c{$_}" } sort keys %c) };
}

# a GET through the edge with a cookie set: [status, body]
sub edge_get {
    my ($path, $cookie) = @_;
    my $r = $http->get("http://127.0.0.1:$HTTP_PORT/$path",
                       { headers => { Cookie => $cookie } });
    return [$r->{status}, $r->{content}];
}

my $STREAM = 'vodlms:transcode';
my $GRACE = 12;                 # old_version_grace of this test, seconds
my $VERSION = qr/\d{8}T\d{6}Z-[0-9a-f]{8}/;

write_helper_conf("$tmp/helper.conf", redis => $redis, conninfo => $pg->conninfo, origin => $origin,
                  settings => [ ladder => '240p:300k', claim_idle => 5, max_attempts => 1,
                                old_version_grace => $GRACE ]);

#---------------------------------------------------------------------------
# helpers
#---------------------------------------------------------------------------

# two different lectures of the same shape: the "replacement" differs in
# picture and sound, so its segments have other bytes under the same names
sub make_source {
    my ($name, $video, $freq) = @_;
    return make_clip("$src/$name", video => $video, freq => $freq, size => '426x240', duration => 4);
}

my $first = make_source('first.mp4', 'testsrc2', 440);
my $second = make_source('second.mp4', 'smptebars', 880);

sub add_row {
    my ($id, %o) = @_;
    insert_video($pg, $id, status => $o{status}, prefix => $o{prefix});
}

# a job, as the module's upload queues one: the row re-queued with the new
# source (the helper works only for the source the row names), then XADD
sub add_job {
    my ($id, $source) = @_;
    $pg->psql("UPDATE vodlms.videos SET source_location = '$source' WHERE id = '$id'");
    xadd_job($redis, $id, $source);
}

sub video { video_row($pg, $_[0], qw(status prefix error)) }

# the helper with no AWS_* of the environment: the configuration's keys only
my %NO_AWS = map { $_ => undef } qw(AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
                                    AWS_REGION AWS_DEFAULT_REGION);

# runs the helper until the queue is empty; its exit status
sub run_helper {
    my ($log, $env, @args) = @_;
    return wait_exit(spawn(log => $log, env => { %NO_AWS, %$env },
                           cmd => [ $bin, '--config', "$tmp/helper.conf", '--exit-when-idle', @args ]), 60);
}

# relative path => sha256 of every file under $dir (not following links)
sub tree {
    my $dir = shift;
    my %t;
    $dir =~ s{/+$}{};
    return \%t unless -d $dir;
    File::Find::find({ no_chdir => 1, wanted => sub {
        return unless -f $_ && !-l $_;
        (my $rel = $_) =~ s{^\Q$dir\E/}{};
        $t{$rel} = sha256_hex(slurp($_) // '');
    } }, $dir);
    return \%t;
}

# the URLs a player fetches for a published prefix: master, variants, segments
sub ladder_urls {
    my ($root, $prefix) = @_;
    my @urls = ("${prefix}master.m3u8");
    my $master = slurp("$root/${prefix}master.m3u8") // '';
    for my $v ($master =~ /^([^#\s]\S*)$/mg) {
        push @urls, "$prefix$v";
        (my $dir = $v) =~ s{[^/]+$}{};
        my $pl = slurp("$root/$prefix$v") // '';
        push @urls, map { "$prefix$dir$_" } $pl =~ /^([^#\s]\S*)$/mg;
    }
    return @urls;
}

sub superseded {
    my ($id, $prefix) = @_;
    return $pg->psql("SELECT CASE WHEN removed_at IS NULL THEN 'pending' ELSE 'removed' END"
                     . " FROM vodlms.videos_superseded WHERE video_id = '$id'"
                     . " AND storage_prefix = '$prefix'");
}

# waits until every pending superseded row is older than the grace period
sub wait_grace {
    my $deadline = time + $GRACE + 30;
    while (time < $deadline) {
        my $young = $pg->psql("SELECT count(*) FROM vodlms.videos_superseded WHERE removed_at IS NULL"
            . " AND superseded_at > now() - interval '" . ($GRACE + 0.5) . " seconds'");
        return 1 if $young == 0;
        sleep 0.25;
    }
    return 0;
}

#---------------------------------------------------------------------------
# 1. local origin: a lecture, then its replacement
#---------------------------------------------------------------------------

add_row('lec');
add_job('lec', $first);
is(run_helper("$tmp/run1.log", {}), 0, 'first encode: helper exits 0')
    or diag(slurp("$tmp/run1.log"));
my $v1 = video('lec');
is($v1->{status}, 'ready', 'first encode: ready') or diag($v1->{error});
my $p1 = $v1->{prefix};
like($p1, qr{^hls/lec/$VERSION/$}, "first encode: storage_prefix is a version ($p1)");
my $tree1 = tree("$origin/$p1");
ok(exists $tree1->{'master.m3u8'} && exists $tree1->{'240p/index.m3u8'}
   && exists $tree1->{'240p/seg_00000.ts'}, 'first encode: the ladder is under its version');
ok(!-e "$origin/hls/lec/master.m3u8", 'first encode: nothing at the unversioned hls/lec/');
my @urls1 = ladder_urls($origin, $p1);
my $play1 = play('lec');
is($play1->{status}, 200, 'first encode: the playback endpoint answers 200');
is($play1->{url}, "$CDN/${p1}master.m3u8", 'first encode: manifestUrl is the version\'s master');
is($play1->{path}, "/$p1", 'first encode: the cookies\' Path is the version');
my $seg1 = "${p1}240p/seg_00000.ts";
{
    my $g = edge_get("${p1}master.m3u8", $play1->{cookie});
    is($g->[0], 200, 'first encode: the edge serves the versioned master with its cookies');
    $g = edge_get($seg1, $play1->{cookie});
    is($g->[0], 200, 'first encode: and a segment under the version');
    is(sha256_hex($g->[1] // ''), $tree1->{'240p/seg_00000.ts'}, 'first encode: the segment\'s bytes');
}

# a video from before versions: its ladder right under hls/<id>/, plus a
# symbolic link shaped like a rung that points outside the origin
make_path("$origin/hls/old/240p", "$tmp/outside");
for my $f (keys %$tree1) {
    my ($d) = $f =~ m{^(.*)/} ? ($1) : ('');
    make_path("$origin/hls/old/$d") if $d ne '';
    open my $o, '>:raw', "$origin/hls/old/$f" or die $!;
    print $o slurp("$origin/$p1$f");
    close $o;
}
open my $keep, '>', "$tmp/outside/keep.ts" or die $!;
print $keep "not the helper's\n";
close $keep;
symlink("$tmp/outside", "$origin/hls/old/999p") or die "symlink: $!";
add_row('old', status => 'ready', prefix => 'hls/old/');
my $play_old = play('old');
is($play_old->{url}, "$CDN/hls/old/master.m3u8", 'old layout: a row from before versions still plays');
is(edge_get('hls/old/240p/seg_00000.ts', $play_old->{cookie})->[0], 200,
   'old layout: the edge serves its ladder');

# the replacement, and a re-encode of the old-layout video.  Tokens sort
# by their UTC second (the random part orders two encodes of one second
# arbitrarily), so the replacement starts in a later second than the
# first encode's token, as a real re-upload does
{
    my ($ymd, $hms) = $p1 =~ m{/(\d{8})T(\d{6})Z-};
    my $t1 = POSIX::mktime(substr($hms, 4, 2), substr($hms, 2, 2), substr($hms, 0, 2),
                           substr($ymd, 6, 2), substr($ymd, 4, 2) - 1, substr($ymd, 0, 4) - 1900);
    # mktime() is local time; the token is UTC: compare in one zone
    my $now = POSIX::mktime(gmtime);
    select undef, undef, undef, 0.1 while defined $t1 && ($now = POSIX::mktime(gmtime)) <= $t1;
}
add_job('lec', $second);
add_job('old', $first);
is(run_helper("$tmp/run2.log", {}), 0, 'replacement: helper exits 0')
    or diag(slurp("$tmp/run2.log"));
my $v2 = video('lec');
is($v2->{status}, 'ready', 'replacement: ready') or diag($v2->{error});
my $p2 = $v2->{prefix};
like($p2, qr{^hls/lec/$VERSION/$}, "replacement: storage_prefix is a version ($p2)");
isnt($p2, $p1, 'replacement: a different storage_prefix than the first encode');
ok(($p2 cmp $p1) > 0, 'replacement: versions sort in publishing order');

my $tree2 = tree("$origin/$p2");
my @urls2 = ladder_urls($origin, $p2);
ok(@urls2 >= 4, 'replacement: master, variant playlist and segments (' . scalar(@urls2) . ' URLs)');
my %u1 = map { $_ => 1 } @urls1;
is(scalar(grep { $u1{$_} } @urls2), 0,
   'replacement: no URL of the new version is a URL of the old one');
my @changed = grep { /\.ts$/ && exists $tree1->{$_} && $tree1->{$_} ne $tree2->{$_} }
              keys %$tree2;
ok(@changed >= 1, 'replacement: the segments have other bytes (' . scalar(@changed)
   . ' of the same names differ), so the same URLs would have been stale');
is_deeply(tree("$origin/$p1"), $tree1,
          'replacement: the old version is still there, byte for byte (viewers mid-playback)');
is(superseded('lec', $p1), 'pending', 'replacement: the old prefix is recorded as superseded');

my $play2 = play('lec');
is($play2->{url}, "$CDN/${p2}master.m3u8", 'replacement: a new play gets the new master');
is($play2->{path}, "/$p2", 'replacement: with cookies scoped to the new version');
{
    my $g = edge_get("${p2}240p/seg_00000.ts", $play2->{cookie});
    is($g->[0], 200, 'replacement: the edge serves the new segments with the new cookies');
    is(sha256_hex($g->[1] // ''), $tree2->{'240p/seg_00000.ts'}, 'replacement: their new bytes');
    $g = edge_get($seg1, $play1->{cookie});
    is($g->[0], 200, 'replacement: a viewer mid-playback still gets the old segment with the old cookies');
    is(sha256_hex($g->[1] // ''), $tree1->{'240p/seg_00000.ts'}, 'replacement: byte for byte');
    is(edge_get($seg1, $play2->{cookie})->[0], 403,
       'replacement: the new cookies do not open the old version');
    is(edge_get("${p2}240p/seg_00000.ts", $play1->{cookie})->[0], 403,
       'replacement: the old cookies do not open the new version');
}

my $vo = video('old');
like($vo->{prefix}, qr{^hls/old/$VERSION/$}, "old layout: re-encoded into a version ($vo->{prefix})");
ok(-f "$origin/hls/old/master.m3u8" && -f "$origin/hls/old/240p/seg_00000.ts",
   'old layout: the ladder from before versions still plays during the grace period');

# a run within the grace period removes nothing
is(run_helper("$tmp/run3.log", {}), 0, 'within the grace period: helper exits 0');
ok(-f "$origin/${p1}master.m3u8" && -f "$origin/${p1}240p/seg_00000.ts",
   'within the grace period: the old version is kept');

# rows the sweep must leave alone: a version-shaped symbolic link pointing
# outside, a directory that is no version, and the current prefix itself
my $fake = '20200101T000000Z-0badc0de';
make_path("$origin/hls/lec/keepme");
symlink("$tmp/outside", "$origin/hls/lec/$fake") or die "symlink: $!";
$pg->psql("INSERT INTO vodlms.videos_superseded (video_id, storage_prefix, superseded_at) VALUES "
          . "('lec', 'hls/lec/$fake/', now() - interval '1 day'), "
          . "('lec', 'hls/lec/keepme/', now() - interval '1 day'), "
          . "('lec', '$p2', now() - interval '1 day')");

#---------------------------------------------------------------------------
# 2. the grace period passes: the old version goes, the current one stays
#---------------------------------------------------------------------------

ok(wait_grace(), "waited for the grace period ($GRACE s)");
is(run_helper("$tmp/run4.log", {}), 0, 'after the grace period: helper exits 0')
    or diag(slurp("$tmp/run4.log"));
ok(!-e "$origin/$p1", 'after the grace period: the old version is removed');
is_deeply(tree("$origin/$p2"), $tree2, 'after the grace period: the current version is intact');
is(video('lec')->{prefix}, $p2, 'after the grace period: the row still points at it');
is(superseded('lec', $p1), 'removed', 'after the grace period: recorded as removed');
is(edge_get($seg1, $play1->{cookie})->[0], 404, 'after the grace period: the old segment is gone (404)');
is(edge_get("${p2}240p/seg_00000.ts", play('lec')->{cookie})->[0], 200,
   'after the grace period: the current version plays');
like(slurp("$tmp/run4.log") // '', qr/video lec: removed the old version \Q${\ substr($p1, 8, 25)}\E/,
     'after the grace period: logged');

ok(!-e "$origin/hls/old/master.m3u8" && !-e "$origin/hls/old/poster.jpg"
   && !-e "$origin/hls/old/240p", 'old layout: the ladder from before versions is removed');
ok(-f "$origin/$vo->{prefix}master.m3u8", 'old layout: its current version stays');
ok(-l "$origin/hls/old/999p" && -f "$tmp/outside/keep.ts",
   'a rung-shaped symbolic link is neither followed nor removed');
ok(-l "$origin/hls/lec/$fake" && -f "$tmp/outside/keep.ts",
   'a version-shaped symbolic link is neither followed nor removed');
ok(-d "$origin/hls/lec/keepme", 'a directory that is not a version is left alone');
ok(-f "$origin/${p2}master.m3u8", 'a current prefix recorded as superseded is never removed');

#---------------------------------------------------------------------------
# 3. S3: the replacement lands under its own prefix, the old one stays
#---------------------------------------------------------------------------

my $BUCKET = 'vodlms';
my $AK = 'S3RVER';
my $SK = 'vodlms-test-secret';
my $REGION = 'eu-west-3';
my $S3PORT = pick_port();
my $S3LOG = "$tmp/s3-requests.log";

my $s3 = VodlmsS3->start(dir => $s3dir, tmp => $tmp, port => $S3PORT, backend_port => pick_port(),
                         log => $S3LOG, region => $REGION, access_key => $AK, secret_key => $SK,
                         bucket => $BUCKET);
ok($s3->up, 'the local S3 is up') or diag($s3->server_output);
sub s3_request { $s3->request(@_) }

# key => sha256 of the object, for every key under $prefix
sub bucket_tree {
    my $prefix = shift;
    my $r = s3_request('GET', "/$BUCKET", 'list-type' => 2, prefix => $prefix);
    die "ListObjectsV2 $prefix: $r->{status} $r->{content}\n" unless $r->{success};
    my %t;
    for my $key ($r->{content} =~ m{<Key>(.*?)</Key>}g) {
        my $g = s3_request('GET', "/$BUCKET/$key");
        $t{$key} = $g->{success} ? sha256_hex($g->{content}) : "HTTP $g->{status}";
    }
    return \%t;
}

# object keys written (PUT or multipart completion) by the requests logged since line $from
sub written_keys {
    my $from = shift;
    my @lines = split /\n/, slurp($S3LOG) // '';
    my %k;
    for my $l (@lines[$from .. $#lines]) {
        my ($n, $m, $h, $u, $s) = split / /, $l;
        next unless $s =~ /^2/;
        my ($path, $q) = split /\?/, $u, 2;
        $path =~ s{^/\Q$BUCKET\E/}{} or next;
        $k{$path} = 1 if ($m eq 'PUT' && !defined $q)
                      || ($m eq 'POST' && defined $q && $q =~ /^uploadId=/);
    }
    return \%k;
}

sub log_lines { scalar(() = (slurp($S3LOG) // '') =~ /\n/g) }

my @s3args = ('--publish', 's3', '--s3-endpoint', "http://127.0.0.1:$S3PORT",
              '--s3-path-style', 'on', '--s3-bucket', $BUCKET, '--s3-region', $REGION,
              '--s3-access-key', $AK, '--s3-secret-key', $SK,
              '--old-version-grace', '0');

add_row('s3lec');
add_job('s3lec', $first);
my $n0 = log_lines();
is(run_helper("$tmp/s3-run1.log", {}, @s3args), 0, 's3 first encode: helper exits 0');
my $s1 = video('s3lec');
is($s1->{status}, 'ready', 's3 first encode: ready') or diag($s1->{error}, slurp("$tmp/s3-run1.log"));
like($s1->{prefix}, qr{^hls/s3lec/$VERSION/$}, "s3 first encode: a versioned prefix ($s1->{prefix})");
my $w1 = written_keys($n0);
ok(exists $w1->{"$s1->{prefix}master.m3u8"}, 's3 first encode: master.m3u8 under the version');
is(scalar(grep { index($_, $s1->{prefix}) != 0 } keys %$w1), 0,
   's3 first encode: every key under the version');
my $b1 = bucket_tree($s1->{prefix});

add_job('s3lec', $second);
my $n1 = log_lines();
is(run_helper("$tmp/s3-run2.log", {}, @s3args), 0, 's3 replacement: helper exits 0');
my $s2 = video('s3lec');
is($s2->{status}, 'ready', 's3 replacement: ready') or diag($s2->{error}, slurp("$tmp/s3-run2.log"));
like($s2->{prefix}, qr{^hls/s3lec/$VERSION/$}, "s3 replacement: a versioned prefix ($s2->{prefix})");
isnt($s2->{prefix}, $s1->{prefix}, 's3 replacement: not the first encode\'s prefix');
my $w2 = written_keys($n1);
ok(exists $w2->{"$s2->{prefix}master.m3u8"} && keys(%$w2) >= 4,
   's3 replacement: master.m3u8 and the ladder uploaded (' . scalar(keys %$w2) . ' objects)');
is(scalar(grep { index($_, $s2->{prefix}) != 0 } keys %$w2), 0,
   's3 replacement: every key under the new version, none overwritten elsewhere');
is_deeply(bucket_tree($s1->{prefix}), $b1,
          's3 replacement: the old version is still in the bucket, byte for byte');
my $b2 = bucket_tree($s2->{prefix});
my %old_rel = map { substr($_, length $s1->{prefix}) => $b1->{$_} } keys %$b1;
ok(scalar(grep { /\.ts$/ && exists $old_rel{substr($_, length $s2->{prefix})}
                 && $old_rel{substr($_, length $s2->{prefix})} ne $b2->{$_} } keys %$b2) >= 1,
   's3 replacement: segments of the same names have other bytes under the new prefix');
is(superseded('s3lec', $s1->{prefix}), 'pending',
   's3: the old prefix waits in videos_superseded for the operator job (the helper never deletes in S3)');
my @bad = grep { !/ sig ok$/ } split /\n/, slurp($S3LOG) // '';
is(scalar @bad, 0, 'every S3 request was correctly signed') or diag(join "\n", @bad[0 .. 4]);

my $wall = time - $T0;
diag(sprintf 't/094-helper-versions.t: %.1f s', $wall);
done_testing();
