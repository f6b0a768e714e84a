package VodlmsHLS;

# What the helper suites read back from an encoded HLS tree (t/098, t/099):
# a media playlist's segments with the key each is under, and a segment
# decrypted with openssl as a player would.

use strict;
use warnings;

use Exporter 'import';
our @EXPORT_OK = qw(media_segments decrypt_segment);

# A media playlist's segments: [name, media sequence, key URI or undef,
# IV hex or undef, EXTINF].  Dies on a key method other than AES-128.
sub media_segments {
    my $text = shift;
    my ($seq) = $text =~ /^#EXT-X-MEDIA-SEQUENCE:(\d+)/m;
    $seq //= 0;
    my ($uri, $iv, $inf, @segs);
    for my $line (split /\r?\n/, $text) {
        if ($line =~ /^#EXT-X-KEY:(.*)$/) {
            my $attr = $1;
            ($uri) = $attr =~ /URI="([^"]*)"/;
            ($iv) = $attr =~ /IV=0[xX]([0-9a-fA-F]{32})/;
            $uri = undef if $attr =~ /METHOD=NONE/;
            die "not AES-128: $line" if defined $uri && $attr !~ /METHOD=AES-128/;
        } elsif ($line =~ /^#EXTINF:([\d.]+)/) {
            $inf = $1;
        } elsif ($line =~ /^[^#\s]/) {
            push @segs, [ $line, $seq++, $uri, $iv, $inf ];
        }
    }
    return @segs;
}

# openssl enc -d -aes-128-cbc of $file with the 16 bytes $key and the IV in
# hex into $out: true when openssl accepted it (the padding checked out)
sub decrypt_segment {
    my ($openssl, $file, $key, $iv, $out) = @_;
    unlink $out;
    return system($openssl, 'enc', '-d', '-aes-128-cbc', '-K', unpack('H*', $key),
                  '-iv', $iv, '-in', $file, '-out', $out) == 0;
}

1;
