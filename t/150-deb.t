#!/usr/bin/perl

# The Debian packages, as an operator meets them: `./build.sh deb` builds
# libnginx-mod-http-vodlms and vodlms-helper with dh-sequence-nginx; they
# are installed on this machine with `apt-get install ./...deb`, the module
# is enabled the Debian way (the modules-enabled symlink the package's
# postinst makes), the packaged example configuration passes `nginx -t`
# with the distribution's nginx, and both packages are purged again,
# leaving nothing behind.
#
# It installs system packages, so it needs root (CI runs as root); it
# refuses to touch a machine where either package was already installed by
# someone else.

use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;
use File::Temp qw(tempdir);
use Test::More;

use lib File::Spec->catdir(dirname(__FILE__), 'lib');
use VodlmsTest qw(package_lock);

my $repo = File::Spec->rel2abs(File::Spec->catdir(dirname(__FILE__), '..'));
my $build = $ENV{VODLMS_BUILD_DIR} || "$repo/build";
my @pkgs = qw(libnginx-mod-http-vodlms vodlms-helper);

plan skip_all => 'installs packages: needs root' if $> != 0;

sub installed {
    my ($pkg) = @_;
    my $s = qx{dpkg-query -W -f='\${Status}' $pkg 2>/dev/null};
    return $s =~ /ok installed/;
}

sub sh {
    my ($cmd) = @_;
    my $out = qx{$cmd 2>&1};
    return ($? >> 8, $out);
}

for my $p (@pkgs) {
    BAIL_OUT("$p is installed already: this test would remove it") if installed($p);
}

my ($ver) = do {
    open my $fh, '<', "$repo/ngx_http_vodlms_module/ngx_http_vodlms_version.h" or die $!;
    map { /^#define NGX_HTTP_VODLMS_VERSION\s+"([^"]+)"/ ? $1 : () } <$fh>;
};
ok($ver, "the one version string: $ver");

# ---------------------------------------------------------------- build

my ($rc, $out) = sh("VODLMS_BUILD_DIR='$build' '$repo/build.sh' deb");
is($rc, 0, './build.sh deb succeeds') or diag($out);

my $mod_deb = "$build/deb/libnginx-mod-http-vodlms_${ver}_amd64.deb";
my $helper_deb = "$build/deb/vodlms-helper_${ver}_amd64.deb";
ok(-f $mod_deb, "built $mod_deb");
ok(-f $helper_deb, "built $helper_deb");

# dh_nginx's ABI dependency: the module only ever meets the nginx it was
# built for
my $abi = do {
    open my $fh, '<', '/usr/share/nginx/src/debian/libnginx-mod.abisubstvars' or die $!;
    my ($a) = map { /^nginx:abi=(\S+)/ ? $1 : () } <$fh>;
    $a;
};
my $depends = qx{dpkg-deb -f '$mod_deb' Depends};
like($depends, qr/(^|, )\Q$abi\E(,|$)/m, "the module depends on $abi");

my $files = qx{dpkg-deb -c '$mod_deb'};
for my $f ('./usr/lib/nginx/modules/ngx_http_vodlms_module.so',
           './usr/share/nginx/modules-available/mod-http-vodlms.conf',
           './usr/share/doc/libnginx-mod-http-vodlms/directives.md.gz',
           './usr/share/doc/libnginx-mod-http-vodlms/operations.md.gz',
           './usr/share/doc/libnginx-mod-http-vodlms/security.md.gz',
           './usr/share/doc/libnginx-mod-http-vodlms/examples/vodlms.conf') {
    like($files, qr/ \Q$f\E$/m, "module package holds $f");
}

$files = qx{dpkg-deb -c '$helper_deb'};
for my $f ('./usr/bin/vodlms-helper', './etc/vodlms/helper.conf',
           './lib/systemd/system/vodlms-helper.service',
           './usr/share/vodlms/sql/migrate.sh',
           './usr/share/vodlms/sql/migrations/0001_core.sql') {
    like($files, qr/ \Q$f\E$/m, "helper package holds $f");
}

# ---------------------------------------------------------------- install

my $enabled = '/etc/nginx/modules-enabled/50-mod-http-vodlms.conf';
my $so = '/usr/lib/nginx/modules/ngx_http_vodlms_module.so';

# from the install to the purge, no `./build.sh run` beside this one
# checks which packages are installed (t/lib's package_lock)
my $packages_changing = package_lock('exclusive');

($rc, $out) = sh("DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
                 . "'$mod_deb' '$helper_deb'");
is($rc, 0, 'apt-get install ./libnginx-mod-http-vodlms ./vodlms-helper') or diag($out);

END {
    # never leave the machine with our packages on it, even after a failure
    local $?;
    if ($> == 0 && grep { installed($_) } @pkgs) {
        system("DEBIAN_FRONTEND=noninteractive apt-get purge -y -q @pkgs >/dev/null 2>&1");
    }
}

ok(-f $so, "the module is in $so");
is(readlink($enabled), '/usr/share/nginx/modules-available/mod-http-vodlms.conf',
   'enabled the Debian way: the modules-enabled symlink');
is(do { local $/; open my $fh, '<', $enabled or die $!; <$fh> },
   "load_module modules/ngx_http_vodlms_module.so;\n", 'which loads the module');
ok(-f '/usr/share/doc/libnginx-mod-http-vodlms/sql/README.md.gz',
   'the schema README where directives.md says (nginx nodes may have no helper package)');

my $conffiles = qx{dpkg-query -W -f='\${Conffiles}' vodlms-helper};
like($conffiles, qr{^ /etc/vodlms/helper\.conf }m, '/etc/vodlms/helper.conf is a conffile');

my @pw = getpwnam('vodlms');
ok(@pw, 'the helper\'s system user exists');
my @st = stat '/etc/vodlms/helper.conf';
is(sprintf('%04o %s', $st[2] & 07777, scalar getgrgid($st[5])), '0640 vodlms',
   'helper.conf: root and the helper\'s group only');
@st = stat '/var/lib/vodlms/uploads';
is(sprintf('%04o %s:%s', $st[2] & 07777, scalar getpwuid($st[4]), scalar getgrgid($st[5])),
   '2770 www-data:vodlms', 'the spool: nginx writes, the helper reads through a setgid group');

($rc, $out) = sh('/usr/bin/vodlms-helper --version');
is($out, "vodlms-helper $ver\n", 'vodlms-helper --version prints the same version');

# ---------------------------------------------------------------- nginx -t

# the packaged example, with a throwaway key and certificate where an
# operator puts real ones
my $tmp = tempdir('vodlms-deb-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $tmp;
sh("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out $tmp/cloudfront.pem");
sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
   . "-subj /CN=lms.example.com -keyout $tmp/tls.key -out $tmp/tls.crt");

my $example = do {
    open my $fh, '<', '/usr/share/doc/libnginx-mod-http-vodlms/examples/vodlms.conf' or die $!;
    local $/;
    <$fh>;
};
ok($example =~ s{/etc/vodlms/keys/cloudfront\.pem}{$tmp/cloudfront.pem}g
   && $example =~ s{/etc/ssl/certs/ssl-cert-snakeoil\.pem}{$tmp/tls.crt}g
   && $example =~ s{/etc/ssl/private/ssl-cert-snakeoil\.key}{$tmp/tls.key}g
   && $example =~ s{/etc/vodlms/nginx-secrets\.conf}{$tmp/nginx-secrets.conf}g,
   'the example names the key, the certificate and the secrets file an operator replaces');

# the secrets file as operations.md makes it (root, 0600; the master reads
# it as root), with the database line the example shows for it
my ($pg_line) = $example =~ /^#\s+(vodlms_pg .*;)$/m;
ok($pg_line, 'the example shows its secrets file\'s vodlms_pg line');
open my $sec, '>', "$tmp/nginx-secrets.conf" or die $!;
print $sec "$pg_line\n";
close $sec;
chmod 0600, "$tmp/nginx-secrets.conf" or die $!;
open my $fh, '>', "$tmp/vodlms.conf" or die $!;
print $fh $example;
close $fh;

# Debian's nginx.conf in miniature: user, modules-enabled, the site
open $fh, '>', "$tmp/nginx.conf" or die $!;
print $fh <<EOF;
user www-data;
include /etc/nginx/modules-enabled/*.conf;
error_log $tmp/error.log notice;
pid $tmp/nginx.pid;
events {}
http {
    include /etc/nginx/mime.types;
    access_log off;
    include $tmp/vodlms.conf;
}
EOF
close $fh;

($rc, $out) = sh("/usr/sbin/nginx -t -c $tmp/nginx.conf");
is($rc, 0, 'nginx -t with the packaged example') or diag($out);
like($out, qr/test is successful/, 'nginx says the configuration is good');

my $log = do { open my $l, '<', "$tmp/error.log" or die $!; local $/; <$l> };
like($log, qr/\[notice\] .*vodlms\/\Q$ver\E \(built for nginx 1\.22\.1; OpenSSL/,
     'the module logs its version at start-up');

# ---------------------------------------------------------------- remove

($rc, $out) = sh("DEBIAN_FRONTEND=noninteractive apt-get purge -y -q @pkgs");
is($rc, 0, 'apt-get purge removes both') or diag($out);
ok(!installed($_), "$_ is gone") for @pkgs;
undef $packages_changing;
ok(!-e $so, 'the module file is gone');
ok(!-l $enabled && !-e $enabled, 'the modules-enabled symlink is gone');
ok(!-e '/etc/vodlms', '/etc/vodlms is gone');
ok(!-e '/usr/share/vodlms', '/usr/share/vodlms is gone');
ok(!-e '/lib/systemd/system/vodlms-helper.service', 'the unit is gone');

($rc, $out) = sh("/usr/sbin/nginx -t -c $tmp/nginx.conf");
isnt($rc, 0, 'and nginx no longer knows the directives');
like($out, qr/unknown directive "vodlms_redis"/, '(unknown directive "vodlms_redis")');

done_testing();
