package VodlmsDNS;

# A tiny authoritative DNS responder for tests, over UDP on 127.0.0.1, in a
# forked child: it answers A queries from a records file that the test
# rewrites to move a name (as ElastiCache or RDS move theirs on failover),
# AAAA queries for a known name with no answer, and anything else with
# NXDOMAIN.  Enough for nginx's resolver; not a general DNS server.
#
#   my $dns = VodlmsDNS->start(ttl => 1);
#   $dns->set('redis.test' => '127.0.0.1');       # takes effect at once
#   $dns->set('pg.test' => '127.0.0.3,127.0.0.1');   # several A records, in order
#   "resolver 127.0.0.1:" . $dns->port . " ipv6=off;"
#   $dns->queries('redis.test')                   # A queries answered so far
#
# The child is stopped (SIGTERM, by its pid) when the object goes away.

use strict;
use warnings;

use Carp qw(croak);
use File::Temp qw(tempdir);
use IO::Socket::INET ();
use POSIX qw(WNOHANG SIGTERM SIGKILL);
use Time::HiRes qw(time sleep);

sub start {
    my ($class, %o) = @_;
    my $dir = tempdir('vodlms-dns-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $sock = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                     Proto => 'udp')
        or croak "VodlmsDNS: cannot bind a UDP socket: $!";
    my $self = bless { dir => $dir, port => $sock->sockport,
                       ttl => $o{ttl} // 1, owner => $$ }, $class;
    $self->set();

    my $pid = fork // croak "VodlmsDNS: fork: $!";
    if ($pid == 0) {
        open STDOUT, '>', '/dev/null';
        $SIG{TERM} = sub { POSIX::_exit(0) };
        $self->_serve($sock);
        POSIX::_exit(0);
    }
    close $sock;
    $self->{pid} = $pid;
    return $self;
}

sub port { $_[0]{port} }

# set(name => ip, ...): the whole table, replaced at once
sub set {
    my ($self, %rec) = @_;
    my $tmp = "$self->{dir}/records.$$";
    open my $fh, '>', $tmp or croak "VodlmsDNS: $tmp: $!";
    print $fh "$_ $rec{$_}\n" for sort keys %rec;
    close $fh;
    rename $tmp, "$self->{dir}/records" or croak "VodlmsDNS: rename: $!";
}

# how many A queries for $name the responder has answered
sub queries {
    my ($self, $name) = @_;
    open my $fh, '<', "$self->{dir}/log" or return 0;
    return scalar grep { $_ eq "$name\n" } <$fh>;
}

sub _records {
    my $self = shift;
    my %rec;
    open my $fh, '<', "$self->{dir}/records" or return {};
    while (<$fh>) {
        my ($n, $ip) = split;
        $rec{lc $n} = $ip if defined $ip;
    }
    return \%rec;
}

sub _serve {
    my ($self, $sock) = @_;
    while (1) {
        my $peer = $sock->recv(my $q, 512);
        next unless defined $peer && length $q >= 12;
        my $resp = eval { $self->_answer($q) } or next;
        $sock->send($resp, 0, $peer);
    }
}

sub _answer {
    my ($self, $q) = @_;
    my ($id, $flags, $qd) = unpack 'n n n', $q;
    return undef unless $qd == 1;

    # the question: labels, then type and class
    my ($pos, @labels) = (12);
    while (1) {
        my $len = ord substr $q, $pos, 1;
        $pos++;
        last if $len == 0;
        push @labels, substr $q, $pos, $len;
        $pos += $len;
    }
    my ($qtype, $qclass) = unpack 'n n', substr $q, $pos, 4;
    my $question = substr $q, 12, $pos + 4 - 12;
    my $name = lc join '.', @labels;

    my $ip = $self->_records->{$name};
    my $rd = $flags & 0x0100;
    my ($rcode, @answers) = (0);

    if (!defined $ip) {
        $rcode = 3;                                   # NXDOMAIN
    } elsif ($qtype == 1) {
        # "ip1,ip2": several A records, in this order
        push @answers, pack('n n n N n', 0xc00c, 1, 1, $self->{ttl}, 4)
                     . pack('C4', split /\./, $_)
            for split /,/, $ip;
        if (open my $log, '>>', "$self->{dir}/log") { print $log "$name\n" }
    }                                                 # AAAA etc.: no data

    return pack('n n n n n n', $id, 0x8400 | $rd | 0x0080 | $rcode, 1,
                scalar @answers, 0, 0) . $question . join '', @answers;
}

sub stop {
    my $self = shift;
    my $pid = delete $self->{pid} or return;
    return unless $self->{owner} == $$;
    kill SIGTERM, $pid;
    my $deadline = time + 5;
    while (waitpid($pid, WNOHANG) == 0) {
        if (time > $deadline) { kill SIGKILL, $pid; waitpid($pid, 0); last }
        sleep 0.005;
    }
}

sub DESTROY { local ($., $@, $!, $^E, $?); $_[0]->stop }

1;
