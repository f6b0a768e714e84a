#!/usr/bin/perl

# vodlms-helper publishing to S3, end to end: a private Redis and
# PostgreSQL, a local S3 (s3rver from npm, helper/test-s3/) behind a proxy
# that verifies every request's SigV4 signature and x-amz-content-sha256
# (s3rver checks neither), the real helper binary with publish = s3, and
# signed GETs/HEADs of what landed in the bucket: every key, Content-Type,
# Cache-Control, the upload order (master.m3u8 last), multipart uploads,
# retries of 503s, AbortMultipartUpload on a permanent part failure.
# Virtual-host (vodlms.s3.localhost) and path-style endpoints are both used.
# Needs node + npm; runs `npm ci` in helper/test-s3 if node_modules is
# missing.  Never skipped: a missing tool is a failure.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP ();
use POSIX qw(:sys_wait_h);
use Test::More;
use Time::HiRes qw(sleep time);

use VodlmsTest;
use VodlmsS3;
use VodlmsHelperTest qw(slurp make_clip insert_video xadd_job spawn wait_exit video_row write_helper_conf);

my $T0 = time;
# the helper, the tools, a temporary directory, Redis and PostgreSQL (t/lib)
my %env = helper_env(name => 's3', ports => 26000, tools => [qw(ffmpeg ffprobe node npm)]);
my ($repo, $bin, $tmp, $src, $origin, $redis, $pg) = @env{qw(repo bin tmp src origin redis pg)};
my $s3dir = "$repo/helper/test-s3";
sub pick_port { $env{pick_port}->() }

sub bail { fail($_[0]); done_testing(); exit 1; }

unless (-d "$s3dir/node_modules/s3rver") {
    diag("npm ci in $s3dir");
    system("cd '$s3dir' && npm ci --no-audit --no-fund --loglevel=error >&2");
    bail("npm ci failed in $s3dir") unless -d "$s3dir/node_modules/s3rver";
}

#---------------------------------------------------------------------------
# the local S3: s3rver behind the verifying proxy
#---------------------------------------------------------------------------

my $BUCKET = 'vodlms';
my $AK = 'S3RVER';                  # the only key s3rver knows
my $SK = 'vodlms-test-secret';      # checked by the proxy
my $REGION = 'eu-west-3';
my $S3PORT = pick_port();
my $S3LOG = "$tmp/s3-requests.log";
my $s3 = VodlmsS3->start(dir => $s3dir, tmp => $tmp, port => $S3PORT, backend_port => pick_port(),
                         log => $S3LOG, region => $REGION, access_key => $AK, secret_key => $SK,
                         bucket => $BUCKET);
$s3->up or bail("s3 server did not start: " . $s3->server_output);

sub s3_request { $s3->request(@_) }

sub list_keys { $s3->list_keys(@_) }

sub control {
    my $r = $s3->control(@_);
    die "control: $r->{status}\n" unless $r->{success};
}

# proxy log lines: [seq, method, host, url, status, sig]
sub requests {
    my @r;
    for (split /\n/, slurp($S3LOG) // '') {
        my ($n, $m, $h, $u, $s, $sig) = split / /, $_, 6;
        $sig =~ s/^sig //;
        push @r, { n => $n, method => $m, host => $h, url => $u, status => $s, sig => $sig };
    }
    return @r;
}

#---------------------------------------------------------------------------
# the helper
#---------------------------------------------------------------------------

my $SEG = 2;
my $STREAM = 'vodlms:transcode';

write_helper_conf("$tmp/helper.conf", redis => $redis, conninfo => $pg->conninfo, origin => $origin,
                  settings => [ segment_duration => $SEG, ladder => '240p:300k, 360p:600k', claim_idle => 5,
                                max_attempts => 1, publish => 's3',
                                s3_endpoint => "http://s3.localhost:$S3PORT", s3_bucket => $BUCKET,
                                s3_path_style => 'off', s3_multipart_threshold => '64k',
                                s3_part_size => '32k', s3_retries => 3, s3_timeout => 20 ]);

# 640x360, 4 s, 440 Hz: two rungs of two segments, each segment > 64 KiB
my $source = make_clip("$src/lecture.mp4", size => '640x360', duration => 4);

sub add_video {
    my $id = shift;
    # as the module's upload does: the row names the job's source
    insert_video($pg, $id, source => $source);
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
                           cmd => [ $bin, '--config', "$tmp/helper.conf", '--exit-when-idle', @args ]), 40);
}

sub check_config {
    my @args = @_;
    my $pid = open my $fh, '-|' // die "fork: $!";
    if ($pid == 0) {
        delete @ENV{qw(AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
                       AWS_REGION AWS_DEFAULT_REGION)};
        open STDERR, '>&', \*STDOUT;
        exec $bin, '--config', "$tmp/helper.conf", '--check-config', @args
            or POSIX::_exit(127);
    }
    local $/;
    my $out = <$fh>;
    close $fh;
    return ($? >> 8, $out // '');
}

my %CT = (m3u8 => 'application/vnd.apple.mpegurl', ts => 'video/mp2t', jpg => 'image/jpeg',
          vtt => 'text/vtt');
my %CC = (m3u8 => 'max-age=5', ts => 'max-age=31536000, immutable',
          jpg => 'max-age=31536000, immutable', vtt => 'max-age=31536000, immutable');

# everything about one published ladder under $base ("hls/<id>/")
sub check_bucket {
    my ($id, $base) = @_;
    my $keys = list_keys($base);
    my %want = ("${base}master.m3u8" => 1, "${base}poster.jpg" => 1);
    my $m = s3_request('GET', "/$BUCKET/${base}master.m3u8");
    ok($m->{success}, "$id: GET master.m3u8") or return;
    my @variants = $m->{content} =~ /^([^#\s]\S*)$/mg;
    is_deeply(\@variants, ['240p/index.m3u8', '360p/index.m3u8', 'audio/index.m3u8'],
              "$id: master names both variants and the audio-only rendition");
    # the storyboard (thumbnails = on) and the sheets its cues name
    $want{"${base}thumbs/storyboard.vtt"} = 1;
    my $sb = s3_request('GET', "/$BUCKET/${base}thumbs/storyboard.vtt");
    ok($sb->{success} && $sb->{content} =~ /\AWEBVTT\n/, "$id: GET thumbs/storyboard.vtt");
    $want{"${base}thumbs/$_"} = 1 for ($sb->{content} // '') =~ /^(sprite_\d{3}\.jpg)#/mg;
    my $segments = 0;
    for my $v (@variants) {
        $want{"$base$v"} = 1;
        my $p = s3_request('GET', "/$BUCKET/$base$v");
        ok($p->{success} && $p->{content} =~ /#EXT-X-ENDLIST/, "$id: GET $v (VOD playlist)");
        (my $dir = $v) =~ s{/[^/]+$}{/};
        for my $seg ($p->{content} =~ /^([^#\s]\S*)$/mg) {
            $want{"$base$dir$seg"} = 1;
            $segments++;
        }
    }
    ok($segments >= 4, "$id: $segments segments named by the variant playlists");
    is_deeply([sort keys %$keys], [sort keys %want], "$id: the bucket holds exactly master, "
              . "poster, variant playlists, every segment and the storyboard under $base");
    my ($kinds, $bad) = (0, 0);
    my %seen;
    for my $key (sort keys %want) {
        my ($ext) = $key =~ /\.(\w+)$/;
        my $h = s3_request('HEAD', "/$BUCKET/$key");
        my $ct = $h->{headers}{'content-type'} // '';
        my $cc = $h->{headers}{'cache-control'} // '';
        my $len = $h->{headers}{'content-length'} // -1;
        unless ($h->{success} && $ct eq $CT{$ext} && $cc eq $CC{$ext} && $len == $keys->{$key}) {
            diag("$key: $h->{status} content-type \"$ct\" cache-control \"$cc\" length $len");
            $bad++;
        }
        $seen{$ext}++;
    }
    is($bad, 0, "$id: every object has its Content-Type and Cache-Control (" .
       join(', ', map { "$seen{$_} .$_" } sort keys %seen) . ")");
    my $big = grep { $keys->{$_} > 64 * 1024 } keys %$keys;
    ok($big >= 2, "$id: $big objects above the 64 KiB multipart threshold");
    return $keys;
}

# per key: the sequence number of the request that made the object visible
sub completions {
    my ($prefix, @reqs) = @_;
    my %done;
    for my $r (@reqs) {
        next unless $r->{status} =~ /^2/;
        my ($path, $q) = split /\?/, $r->{url}, 2;
        $path =~ s{^/\Q$BUCKET\E/}{/} if $r->{host} =~ /^127\.0\.0\.1/;
        $path =~ s{^/}{};
        next unless index($path, $prefix) == 0;
        if (($r->{method} eq 'PUT' && !defined $q)
            || ($r->{method} eq 'POST' && defined $q && $q =~ /^uploadId=/))
        {
            $done{$path} = $r->{n};
        }
    }
    return \%done;
}

sub check_order {
    my ($id, $base, $done) = @_;
    my $master = $done->{"${base}master.m3u8"} // 0;
    my @late = grep { $_ ne "${base}master.m3u8" && $done->{$_} > $master } keys %$done;
    ok($master && !@late, "$id: master.m3u8 became visible after every other object")
        or diag("after the master: @late");
    my @early;
    for my $pl (grep { m{/index\.m3u8$} } keys %$done) {
        (my $dir = $pl) =~ s{index\.m3u8$}{};
        push @early, grep { index($_, $dir) == 0 && /\.ts$/ && $done->{$_} > $done->{$pl} }
            keys %$done;
    }
    ok(!@early, "$id: each variant playlist after its segments") or diag("@early");
}

#---------------------------------------------------------------------------
# configuration checks
#---------------------------------------------------------------------------

{
    my ($rc, $out) = check_config('--s3-bucket', '');
    is($rc, 2, 'publish = s3 without a bucket: exit 2');
    like($out, qr/s3_bucket/, '... names s3_bucket');
    ($rc, $out) = check_config();
    is($rc, 2, 'publish = s3 without credentials (no key, no AWS_* variables): exit 2');
    like($out, qr/s3_access_key.*AWS_ACCESS_KEY_ID/, '... names the key and the variable');
    ($rc, $out) = check_config('--s3-access-key', 'a', '--s3-secret-key', 'b',
                               '--s3-endpoint', 'ftp://x');
    is($rc, 2, 'an s3_endpoint that is not http(s): exit 2');
    ($rc, $out) = check_config('--s3-access-key', 'a', '--s3-secret-key', 'b',
                               '--s3-path-style', 'maybe');
    is($rc, 2, 's3_path_style must be on or off');
    ($rc, $out) = check_config('--s3-access-key', 'a', '--s3-secret-key', 'b',
                               '--s3-prefix', 'x/y');
    is($rc, 0, 'a complete s3 configuration is accepted');
    like($out, qr{s3 = s3://vodlms/x/y/hls/<id>/ via http://s3\.localhost:\d+ \(virtual host, region us-east-1, multipart above 65536 bytes in parts of 32768\)},
         '... and printed (prefix gets its /, region defaults to us-east-1)') or diag($out);
}

#---------------------------------------------------------------------------
# 1. virtual-host endpoint, credentials and region from AWS_* variables
#---------------------------------------------------------------------------

my %awsenv = (AWS_ACCESS_KEY_ID => $AK, AWS_SECRET_ACCESS_KEY => $SK, AWS_REGION => $REGION);
add_video('s3a');
my $rc = run_helper("$tmp/helper-a.log", \%awsenv);
is($rc, 0, 'helper (virtual host) exits 0 when idle');
my $va = video('s3a');
is($va->{status}, 'ready', 's3a: ready') or diag($va->{error}, slurp("$tmp/helper-a.log"));
like($va->{prefix}, qr{^hls/s3a/\d{8}T\d{6}Z-[0-9a-f]{8}/$},
     's3a: storage_prefix hls/s3a/<version>/');
ok(!-e "$origin/hls/s3a", 's3a: nothing left in the local work dir');
my @ra = requests();
ok(@ra && !grep({ $_->{host} ne "$BUCKET.s3.localhost:$S3PORT" } @ra),
   's3a: every request went to the virtual host vodlms.s3.localhost');
check_bucket('s3a', $va->{prefix});
my @mp = grep { $_->{method} eq 'POST' && $_->{url} =~ /\?uploads=?$/ } @ra;
my @parts = grep { $_->{url} =~ /[?&]partNumber=(\d+)/ && $1 >= 2 } @ra;
my @complete = grep { $_->{method} eq 'POST' && $_->{url} =~ /\?uploadId=/ && $_->{status} == 200 } @ra;
ok(@mp >= 2 && @parts >= 2 && @complete == @mp,
   's3a: multipart uploads (' . scalar(@mp) . ' created, ' . scalar(@complete)
   . ' completed, with parts numbered 2 and up)');
check_order('s3a', $va->{prefix}, completions($va->{prefix}, @ra));

#---------------------------------------------------------------------------
# 2. path style, key prefix, keys from the configuration, 503s retried
#---------------------------------------------------------------------------

control(fail_put => 3);
add_video('s3b');
my $nb = scalar requests();
$rc = run_helper("$tmp/helper-b.log", {}, '--s3-endpoint', "http://127.0.0.1:$S3PORT",
                 '--s3-path-style', 'on', '--s3-prefix', 'tenant-b',
                 '--s3-access-key', $AK, '--s3-secret-key', $SK, '--s3-region', $REGION);
is($rc, 0, 'helper (path style) exits 0 when idle');
my $vb = video('s3b');
is($vb->{status}, 'ready', 's3b: ready despite three 503s') or diag($vb->{error}, slurp("$tmp/helper-b.log"));
my @rb = (requests())[$nb .. scalar(requests()) - 1];
is(scalar(grep { $_->{status} == 503 } @rb), 3, 's3b: three PUTs answered 503 ...');
like(slurp("$tmp/helper-b.log") // '', qr/SlowDown.*retrying in/, '... and retried with back-off');
ok(!grep({ $_->{url} !~ m{^/\Q$BUCKET\E/tenant-b/hls/s3b/} } @rb),
   's3b: path-style requests, every key under tenant-b/hls/s3b/');
check_bucket('s3b', "tenant-b/$vb->{prefix}");
check_order('s3b', "tenant-b/$vb->{prefix}", completions("tenant-b/$vb->{prefix}", @rb));

#---------------------------------------------------------------------------
# 3. a part rejected for good: the upload is aborted, the video fails
#---------------------------------------------------------------------------

control(fail_put => 0, reject_part => '/hls/s3c/');
add_video('s3c');
my $nc = scalar requests();
$rc = run_helper("$tmp/helper-c.log", \%awsenv);
is($rc, 0, 'helper exits 0 after a failed job');
my $vc = video('s3c');
is($vc->{status}, 'failed', 's3c: failed (max_attempts = 1)');
like($vc->{error}, qr/UploadPart .*HTTP 400 InvalidPart/, 's3c: the error names the S3 failure')
    or diag($vc->{error});
my @rc = (requests())[$nc .. scalar(requests()) - 1];
ok(grep({ $_->{method} eq 'DELETE' && $_->{url} =~ /\?uploadId=/ && $_->{status} =~ /^2/ } @rc),
   's3c: AbortMultipartUpload sent (answered by the proxy: s3rver 3.7 lacks it)');
is(scalar(grep { $_->{status} == 400 } @rc), 1, 's3c: a 400 is not retried');
my $kc = list_keys('hls/s3c/');
ok(!grep({ m{/master\.m3u8$} } keys %$kc), 's3c: no master.m3u8 published (in any version)');
ok(!-e "$origin/hls/s3c", 's3c: no local ladder either');

#---------------------------------------------------------------------------
# 4. encrypt = on (issue #22): ciphertext in the bucket, the keys only in
#    PostgreSQL -- no object holds a key's bytes or is a key file
#---------------------------------------------------------------------------

control(reject_part => '');
add_video('s3e');
my $ktmp = "$tmp/ktmp";
mkdir $ktmp or die $!;
# the ladder alone: the audio-only rendition's segments need not end with the
# video's (a last short one may need a key of its own; t/099 covers it encrypted)
$rc = run_helper("$tmp/helper-e.log", { %awsenv, TMPDIR => $ktmp }, '--encrypt', 'on',
                 '--key-rotation', '1', '--audio-only', 'off', '--thumbnails', 'off');
is($rc, 0, 'helper (encrypt = on, key_rotation = 1) exits 0 when idle');
my $ve = video('s3e');
is($ve->{status}, 'ready', 's3e: ready') or diag($ve->{error}, slurp("$tmp/helper-e.log"));
my ($ever) = $ve->{prefix} =~ m{^hls/s3e/([^/]+)/$};
my %ekeys = map { my ($k, $hex, $first) = split /\|/; $k => [ pack('H*', $hex), $first ] }
    split /\n/, $pg->psql("SELECT key_index || '|' || encode(key, 'hex') || '|' || first_segment"
                          . " FROM vodlms.video_keys WHERE video_id = 's3e' AND version = '$ever'");
is_deeply([ sort keys %ekeys ], [ 0, 1 ], 's3e: two keys in video_keys (two segments, one each)');
{
    my $objects = list_keys($ve->{prefix});
    my ($n, $segs, $cipher, $decrypts, @bad) = (0, 0, 0, 0);
    for my $key (sort keys %$objects) {
        $n++;
        push @bad, "$key (name)" if $key =~ /\.key(info)?$/i;
        my $r = s3_request('GET', "/$BUCKET/$key");
        my $body = $r->{content} // '';
        for my $k (keys %ekeys) {
            push @bad, "$key (holds key $k)" if index($body, $ekeys{$k}[0]) >= 0;
        }
        if ($key =~ m{/index\.m3u8$}) {
            push @bad, "$key (no EXT-X-KEY)" unless $body =~ m{^#EXT-X-KEY:METHOD=AES-128,URI="/vodlms/keys/s3e/\Q$ever\E/1\.key",IV=0x0{31}1$}m;
        }
        next unless $key =~ m{/seg_(\d+)\.ts$};
        my $seq = $1 + 0;
        $segs++;
        $cipher++ if substr($body, 0, 1) ne "\x47";
        open my $o, '>:raw', "$tmp/seg.enc" or die $!;
        print $o $body;
        close $o;
        unlink "$tmp/seg.ts";
        system('openssl', 'enc', '-d', '-aes-128-cbc', '-K', unpack('H*', $ekeys{$seq}[0]),
               '-iv', sprintf('%032x', $seq), '-in', "$tmp/seg.enc", '-out', "$tmp/seg.ts");
        my $plain = slurp("$tmp/seg.ts") // '';
        $decrypts++ if length($plain) && length($plain) % 188 == 0 && substr($plain, 0, 1) eq "\x47"
                       && substr($plain, 188, 1) eq "\x47";
    }
    ok($n >= 7 && !@bad, "s3e: none of the $n objects holds a key or is a key file, every"
       . " playlist names its keys") or diag(join "\n", @bad);
    ok($segs >= 4 && $cipher == $segs, "s3e: the $segs segments in the bucket are ciphertext");
    is($decrypts, $segs, 's3e: each decrypts to MPEG-TS with the key of its period and its'
       . ' sequence number as IV');
    ok(!-e "$origin/hls/s3e" && !glob("$ktmp/*"), 's3e: no work directory, no private key'
       . ' directory left');
}

#---------------------------------------------------------------------------

my @all = requests();
my @bad = grep { $_->{sig} ne 'ok' } @all;
is(scalar @bad, 0, 'every request (' . scalar(@all) . ') had a valid SigV4 signature and '
   . 'x-amz-content-sha256 = SHA-256 of the body (checked by the proxy)')
    or diag(join "\n", map { "$_->{method} $_->{url}: $_->{sig}" } @bad[0 .. ($#bad > 4 ? 4 : $#bad)]);

{
    # the proxy is no rubber stamp: a wrong secret is refused
    my $wrong = VodlmsS3->new(port => $S3PORT, region => $REGION, access_key => $AK,
                              secret_key => 'not-the-secret', bucket => $BUCKET);
    my $r = $wrong->request('HEAD', "/$BUCKET/$va->{prefix}master.m3u8");
    is($r->{status}, 403, 'a request signed with a wrong secret is refused by the proxy');
}

diag(sprintf "t/092-s3.t: %.1f s", time - $T0);
done_testing();
