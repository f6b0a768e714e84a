package VodlmsS3;

# A test's own S3 client for the local S3 server (helper/test-s3): path-style
# requests signed with SigV4 by hand, never with the helper's signer, so a
# suite that reads what the helper published checks it with a second,
# independent implementation.  Used by t/089, t/092 and t/094.
#
#   my $s3 = VodlmsS3->new(port => $port, region => 'us-east-1',
#                          access_key => $ak, secret_key => $sk, bucket => $b);
#   my $r = $s3->request('GET', "/$b/hls/x/master.m3u8");   # HTTP::Tiny's answer
#   my $keys = $s3->list_keys('hls/x/');                     # { key => size }
#   $s3->control(hold_put => 'hls/x/subs/');                 # the server's test controls
#
#   my $s3 = VodlmsS3->start(dir => "$repo/helper/test-s3", tmp => $tmp,
#                            port => $port, backend_port => $other, log => $log,
#                            region => ..., access_key => ..., secret_key => ..., bucket => ...);
#   ok($s3->up, 'the local S3 is up') or diag($s3->server_output);

use strict;
use warnings;

use Digest::SHA qw(sha256_hex hmac_sha256 hmac_sha256_hex);
use HTTP::Tiny;
use JSON::PP ();
use POSIX qw(strftime);
use Time::HiRes qw(sleep time);

use VodlmsHelperTest ();

sub new {
    my ($class, %a) = @_;
    for (qw(port region access_key secret_key bucket)) {
        die "VodlmsS3->new: $_ is missing\n" unless defined $a{$_};
    }
    $a{http} = HTTP::Tiny->new(timeout => 10);
    return bless \%a, $class;
}

# starts the local S3 (DIR/server.js: s3rver behind the verifying proxy,
# objects in TMP/bucket, its requests logged to LOG, its output in
# TMP/s3-server.out) on PORT, s3rver on BACKEND_PORT, knowing one bucket and
# one key; waits for its "ready" line (20 s at most) and returns a client for
# it (new's options).  The server is stopped at END (VodlmsHelperTest)
sub start {
    my ($class, %o) = @_;
    my $out = "$o{tmp}/s3-server.out";
    mkdir "$o{tmp}/bucket";
    VodlmsHelperTest::spawn(log => $out, dir => $o{dir},
        cmd => [ 'node', 'server.js', '--port', $o{port}, '--backend-port', $o{backend_port},
                 '--dir', "$o{tmp}/bucket", '--bucket', $o{bucket}, '--log', $o{log},
                 '--access-key', $o{access_key}, '--secret-key', $o{secret_key} ]);
    my $self = $class->new(map { $_ => $o{$_} } qw(port region access_key secret_key bucket));
    $self->{server_out} = $out;
    my $deadline = time + 20;
    sleep 0.05 until $self->up || time > $deadline;
    return $self;
}

# what the server said (start)
sub server_output { VodlmsHelperTest::slurp($_[0]{server_out}) // '' }

# whether it said it is ready
sub up { $_[0]->server_output =~ /^ready /m }

# RFC 3986 unreserved characters stay; '/' too in a path
sub uri_enc {
    my ($s, $slash) = @_;
    $s =~ s{([^A-Za-z0-9\-._~/])}{sprintf '%%%02X', ord $1}ge;
    $s =~ s{/}{%2F}g unless $slash;
    return $s;
}

# $method on $path (with the bucket: "/bucket/key") and query %q, no body
sub request {
    my ($self, $method, $path, %q) = @_;
    my $host = "127.0.0.1:$self->{port}";
    my $amz = strftime('%Y%m%dT%H%M%SZ', gmtime);
    my $date = substr $amz, 0, 8;
    my $ph = sha256_hex('');
    my $cq = join '&', map { uri_enc($_) . '=' . uri_enc($q{$_}) } sort keys %q;
    my $cpath = uri_enc($path, 1);
    my $creq = join "\n", $method, $cpath, $cq,
        "host:$host\nx-amz-content-sha256:$ph\nx-amz-date:$amz\n",
        'host;x-amz-content-sha256;x-amz-date', $ph;
    my $scope = "$date/$self->{region}/s3/aws4_request";
    my $sts = join "\n", 'AWS4-HMAC-SHA256', $amz, $scope, sha256_hex($creq);
    my $k = hmac_sha256('aws4_request', hmac_sha256('s3', hmac_sha256($self->{region},
            hmac_sha256($date, "AWS4$self->{secret_key}"))));
    my $sig = hmac_sha256_hex($sts, $k);
    return $self->{http}->request($method, "http://$host$cpath" . ($cq ne '' ? "?$cq" : ''), {
        headers => {
            'x-amz-date' => $amz,
            'x-amz-content-sha256' => $ph,
            authorization => "AWS4-HMAC-SHA256 Credential=$self->{access_key}/$scope, "
                . "SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=$sig",
        } });
}

# the local S3 server's own controls (helper/test-s3/server.js: fail the
# next requests, hold a PUT, ...): HTTP::Tiny's answer
sub control {
    my ($self, %c) = @_;
    return $self->{http}->post("http://127.0.0.1:$self->{port}/__control",
        { content => JSON::PP::encode_json(\%c) });
}

# every key under $prefix with its size (ListObjectsV2); dies when refused
sub list_keys {
    my ($self, $prefix) = @_;
    my $r = $self->request('GET', "/$self->{bucket}", 'list-type' => 2, prefix => $prefix);
    die "ListObjectsV2 $prefix: $r->{status} $r->{content}\n" unless $r->{success};
    my %k;
    while ($r->{content} =~ m{<Contents>(.*?)</Contents>}sg) {
        my $c = $1;
        my ($key) = $c =~ m{<Key>(.*?)</Key>};
        my ($size) = $c =~ m{<Size>(\d+)</Size>};
        $k{$key} = $size;
    }
    return \%k;
}

1;
