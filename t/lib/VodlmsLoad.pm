package VodlmsLoad;

# A bounded load of the requests a player makes, for the failover suites
# (t/173, t/174): forked clients, each a loop of one kind of request 20 ms
# apart, one line per request in a file: start end kind status ok position.
#
#   $VodlmsLoad::Session = 't173-alice';     # the session cookie's value
#   $VodlmsLoad::Beacon  = 10;               # where beacons start from
#   my $stop = load($node, 'a', qw(play play beacon static));
#   ...
#   my $reqs = $stop->();                    # [start, end, kind, status, ok, position]
#   report('(a) play', outcome($reqs, 'play', $from, $to));
#
# $node->{port} serves /videos/intro-ready/meta (gated, 200 "hello\n"),
# /api/videos/intro-ready/progress (beacons, 204) and /static/hello.txt.

use strict;
use warnings;

use Exporter 'import';
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Handle;
use POSIX qw(_exit);
use Test::More ();
use Time::HiRes qw(time sleep);

our @EXPORT = qw(load outcome report);

our $Session = 'alice';
our $Beacon = 0;

my $Dir = tempdir('vodlms-load-XXXXXX', TMPDIR => 1, CLEANUP => 1);

sub _client {
    my ($node, $kind, $file) = @_;
    my $pid = fork // die "fork: $!";
    return $pid if $pid;

    $SIG{TERM} = sub { _exit(0) };
    open my $out, '>>', $file or _exit(1);
    $out->autoflush(1);
    my $http = HTTP::Tiny->new(timeout => 10, keep_alive => 0);
    my $base = "http://127.0.0.1:$node->{port}";
    my $pos = $Beacon;
    for (1 .. 3000) {    # bounded: 60 s at most
        my $t0 = time;
        my $res;
        if ($kind eq 'play') {
            $res = $http->get("$base/videos/intro-ready/meta",
                              { headers => { Cookie => "session=$Session" } });
        } elsif ($kind eq 'beacon') {
            $pos += 0.1;
            $res = $http->post("$base/api/videos/intro-ready/progress", {
                headers => { Cookie => "session=$Session", 'Content-Type' => 'text/plain' },
                content => sprintf('{"videoId":"intro-ready","currentTime":%.1f,"duration":634.5}', $pos),
            });
        } else {
            $res = $http->get("$base/static/hello.txt");
        }
        my $ok = $kind eq 'beacon' ? $res->{status} == 204
               : $res->{status} == 200 && $res->{content} eq "hello\n";
        printf $out "%.3f %.3f %s %d %d %s\n", $t0, time, $kind, $res->{status}, $ok ? 1 : 0,
               $kind eq 'beacon' ? sprintf('%.1f', $pos) : '-';
        sleep 0.02;
    }
    _exit(0);
}

# starts the load on $node; returns a function that stops it and returns
# the requests, each [start, end, kind, status, ok, position]
sub load {
    my ($node, $name, @kinds) = @_;
    my $file = "$Dir/$name";
    my @pids = map { _client($node, $_, $file) } @kinds;
    return sub {
        kill 'TERM', $_ for @pids;
        waitpid $_, 0 for @pids;
        open my $in, '<', $file or return [];
        return [ map { [ split ' ' ] } <$in> ];
    };
}

# of the requests of $kind that started after $from: how many, how many
# failed, and when the first request that succeeded after the last failure
# ended (seconds after $from; 0: none failed)
sub outcome {
    my ($reqs, $kind, $from, $to) = @_;
    my @r = sort { $a->[0] <=> $b->[0] }
            grep { $_->[2] eq $kind && $_->[0] >= $from && (!defined $to || $_->[0] < $to) } @$reqs;
    my @failed = grep { !$_->[4] } @r;
    my $recovered = 0;
    if (@failed) {
        my $last = $failed[-1][0];
        my ($ok) = grep { $_->[4] && $_->[0] > $last } @r;
        $recovered = $ok ? $ok->[1] - $from : undef;
    }
    my $max_ms = 0;
    for (@r) { my $ms = ($_->[1] - $_->[0]) * 1000; $max_ms = $ms if $ms > $max_ms }
    my %by;
    $by{$_->[3]}++ for @failed;
    return { n => scalar @r, failed => scalar @failed, recovered => $recovered,
             max_ms => $max_ms, statuses => join(', ', map { "$by{$_} x $_" } sort keys %by) };
}

sub report {
    my ($what, $o) = @_;
    Test::More::diag(sprintf '%-44s %4d requests, %3d failed%s, recovered %s, slowest %.0f ms',
         $what, $o->{n}, $o->{failed}, $o->{failed} ? " ($o->{statuses})" : '',
         defined $o->{recovered} ? sprintf('%.2f s after', $o->{recovered}) : 'never',
         $o->{max_ms});
}

1;
