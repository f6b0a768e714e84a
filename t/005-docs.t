#!/usr/bin/perl

# The documentation against the source:
#   - every directive the module registers (the ngx_command_t tables) has a
#     section in docs/directives.md in nginx.org form -- "### name", then
#     Syntax / Default / Context lines -- whose Context names exactly the
#     levels the directive is allowed at, and no section documents a
#     directive that does not exist;
#   - every variable (ngx_http_vodlms_variables.c) has a "### $name" section;
#   - the default enrollment and flush queries printed there are the code's;
#   - the nginx.conf example in README.md, and the production example
#     docs/examples/vodlms.conf, pass `nginx -t` with the module.

use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;
use File::Temp qw(tempdir);
use Test::More;

my $repo = File::Spec->rel2abs(File::Spec->catdir(dirname(__FILE__), '..'));
my $src = "$repo/ngx_http_vodlms_module";
my $module = $ENV{TEST_NGINX_MODULE_PATH}
    || ($ENV{VODLMS_BUILD_DIR} || "$repo/build") . '/ngx_http_vodlms_module.so';
my $nginx = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
my $vectors = "$repo/../shared/vectors/cloudfront";

sub slurp { my ($f) = @_; open my $fh, '<', $f or die "$f: $!"; local $/; <$fh> }

# ------------------------------------------------------- the source's view

my %directive;      # name -> { http => 1, server => 1, location => 1 }

for my $file (glob("$src/*.c"), glob("$src/*_commands.h")) {
    next if $file =~ /variables\.c$/;
    my $c = slurp($file);
    while ($c =~ /\{\s*ngx_string\("(vodlms_\w+)"\),\s*\n\s*(NGX_[A-Z_|0-9\s]+?),\s*\n/g) {
        my ($name, $flags) = ($1, $2);
        my %ctx;
        # the module's shorthand for http, server and location
        $flags .= '|NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF'
            if $flags =~ /NGX_HTTP_VODLMS_LOC_ANY/;
        $ctx{http} = 1 if $flags =~ /NGX_HTTP_MAIN_CONF/;
        $ctx{server} = 1 if $flags =~ /NGX_HTTP_SRV_CONF/;
        $ctx{location} = 1 if $flags =~ /NGX_HTTP_LOC_CONF/;
        $directive{$name} = \%ctx;
    }
}

my $vars = slurp("$src/ngx_http_vodlms_variables.c");
my @variables = $vars =~ /\{\s*ngx_string\("(vodlms_\w+)"\)/g;

cmp_ok(scalar keys %directive, '>=', 50, 'found the directive tables ('
       . scalar(keys %directive) . ' directives)');
cmp_ok(scalar @variables, '>=', 10, 'found the variables (' . scalar(@variables) . ')');

# ------------------------------------------------------ the docs' view

my $doc = slurp("$repo/docs/directives.md");
my %documented;

while ($doc =~ /^### (vodlms_\w+)\n\n((?:    .*\n)+)/mg) {
    my ($name, $block) = ($1, $2);
    $documented{$name} = $block;
}

for my $name (sort keys %directive) {
    my $block = $documented{$name};
    ok(defined $block, "$name is documented") or next;

    like($block, qr/^    Syntax:\s+\Q$name\E[ ;]/m, "$name: a Syntax line");
    like($block, qr/^    Default:\s+\S/m, "$name: a Default line");

    my ($ctx) = $block =~ /^    Context:\s+(.*)$/m;
    my $want = join ', ', grep { $directive{$name}{$_} } qw(http server location);
    is($ctx, $want, "$name: Context is where the module allows it");
}

for my $name (sort keys %documented) {
    ok($directive{$name}, "the documented $name exists in the source");
}

for my $v (@variables) {
    my $head = $v eq 'vodlms_video_' ? '### $vodlms_video_&lt;column&gt;'
             : $v eq 'vodlms_session_' ? '### $vodlms_session_&lt;name&gt;'
             : "### \$$v";
    like($doc, qr/^\Q$head\E$/m, "variable \$$v is documented");
}

# ------------------------------- the default queries, printed verbatim

# docs/directives.md prints the module's default enrollment and flush
# queries; they must be the code's, modulo whitespace, so they cannot drift
# (the C strings' literals are concatenated; runs of whitespace count as one
# space, and none is needed next to a parenthesis or before a comma)
sub sql_norm {
    my ($q) = @_;
    $q =~ s/\s+/ /g;
    $q =~ s/^ | $//g;
    $q =~ s/([(]) | (?=[),])//g;
    return $q;
}

for (['ngx_http_vodlms_enroll.c', 'ngx_http_vodlms_default_query', 'vodlms_enrollment_query'],
     ['ngx_http_vodlms_progress.c', 'ngx_http_vodlms_default_flush', 'vodlms_progress_flush_query'])
{
    my ($file, $var, $directive) = @$_;

    my ($lits) = slurp("$src/$file") =~ /\b\Q$var\E = ngx_string\(\n?(.*?)\);/s;
    ok($lits, "$file: found $var") or next;
    my $code = join '', $lits =~ /"((?:[^"\\]|\\.)*)"/g;

    my ($section) = $doc =~ /^### \Q$directive\E\n(.*?)^### /ms;
    my ($printed) = ($section // '') =~ /^```sql\n(.*?)^```$/ms;
    ok($printed, "directives.md prints the default of $directive") or next;

    is(sql_norm($printed), sql_norm($code),
       "the default of $directive in directives.md is the code's ($var)");
}

# ----------------- the examples' queries name vodlms's tables in its schema
# (sql/migrate.sh puts them in schema "vodlms"; nginx's connection does not
# look there, so an unqualified name is "relation does not exist" at run
# time, which nginx -t cannot see)

{
    my $tables = qr/videos|videos_superseded|video_captions|watch_progress|enrollments|users|courses|course_instructors|video_access|schema_migrations/;
    for my $f ('docs/examples/vodlms.conf', 'docs/examples/nginx.conf', 'README.md') {
        my $text = slurp("$repo/$f");
        my @bare;
        while ($text =~ /\b(?:FROM|JOIN|INTO|UPDATE)\s+($tables)\b/g) {
            push @bare, $1;
        }
        is("@bare", '', "$f: every vodlms table in a query is schema-qualified (vodlms.)");
    }
}

# ------------------------------------------ the examples pass nginx -t

SKIP: {
    skip "no module at $module (build it first)", 8 unless -f $module;

    my $tmp = tempdir('vodlms-docs-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    mkdir "$tmp/logs";
    mkdir "$tmp/spool";
    mkdir "$tmp/spool/.tmp";
    system("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
           . "-subj /CN=lms.example.com -keyout $tmp/tls.key -out $tmp/tls.crt >/dev/null 2>&1");

    # the CloudFront key as operations.md installs it: 0600 (a key others
    # can read makes nginx -t warn)
    my $key = "$tmp/cloudfront.pem";
    system('cp', "$vectors/test_private_key.pem", $key) == 0 or die "cp: $?";
    chmod 0600, $key or die "chmod $key: $!";

    # The secrets the examples include from a 0600 file: the lines the
    # example itself shows for that file
    my $example = slurp("$repo/docs/examples/vodlms.conf");
    my ($pg_line) = $example =~ /^#\s+(vodlms_pg "[^"]*password=[^"]*".*;)$/m;
    ok($pg_line, 'the example shows the vodlms_pg line, password included, of its secrets file');
    my ($secret_line) = $example =~ /^#\s+(vodlms_session_secret .*;)$/m;
    ok($secret_line, 'the example shows the express-session secret line of its secrets file');

    sub secrets {
        my ($tmp, @lines) = @_;
        open my $fh, '>', "$tmp/nginx-secrets.conf" or die $!;
        print $fh map { "$_\n" } grep { defined } @lines;
        close $fh;
        chmod 0600, "$tmp/nginx-secrets.conf" or die $!;
    }
    secrets($tmp, $pg_line);

    sub nginx_t {
        my ($tmp, $site) = @_;
        open my $fh, '>', "$tmp/site.conf" or die $!;
        print $fh $site;
        close $fh;
        open $fh, '>', "$tmp/nginx.conf" or die $!;
        print $fh "load_module $module;\nerror_log $tmp/logs/error.log;\n"
                . "pid $tmp/nginx.pid;\nevents {}\n"
                . "http {\n    client_body_temp_path $tmp/body;\n"
                . "    include $tmp/site.conf;\n}\n";
        close $fh;
        my $out = qx{$nginx -t -p $tmp -c $tmp/nginx.conf -e $tmp/logs/error.log 2>&1};
        return ($? >> 8, $out);
    }

    # README.md: the first nginx block
    my ($readme) = slurp("$repo/README.md") =~ /^```nginx\n(.*?)^```$/ms;
    ok($readme, 'README.md has an nginx example');
    $readme =~ s{/etc/vodlms/keys/cloudfront\.pem}{$key}g;
    $readme =~ s{/etc/vodlms/nginx-secrets\.conf}{$tmp/nginx-secrets.conf}g;
    my ($rc, $out) = nginx_t($tmp, $readme);
    is($rc, 0, 'the README example passes nginx -t') or diag($out);

    # the production example the package ships, with throwaway files where
    # an operator puts real ones
    my $site = $example;
    $site =~ s{/etc/vodlms/keys/cloudfront\.pem}{$key}g;
    $site =~ s{/etc/vodlms/nginx-secrets\.conf}{$tmp/nginx-secrets.conf}g;
    $site =~ s{/etc/ssl/certs/ssl-cert-snakeoil\.pem}{$tmp/tls.crt}g;
    $site =~ s{/etc/ssl/private/ssl-cert-snakeoil\.key}{$tmp/tls.key}g;
    $site =~ s{/var/lib/vodlms/uploads}{$tmp/spool}g;
    ok($site !~ m{/etc/vodlms|/var/lib/vodlms|snakeoil}, 'every host path of the example replaced');
    ($rc, $out) = nginx_t($tmp, $site);
    is($rc, 0, 'docs/examples/vodlms.conf passes nginx -t') or diag($out);
    unlike($out, qr/\[(?:warn|emerg)\]/, 'and without a warning') or diag($out);

    # the NestJS/Express variant: its commented lines uncommented, the
    # secret in the secrets file
    (my $express = $site) =~ s/^#(vodlms_session_\w+ .*)$/$1/mg;
    secrets($tmp, $pg_line, $secret_line);
    ($rc, $out) = nginx_t($tmp, $express);
    is($rc, 0, 'the example with express sessions passes nginx -t') or diag($out);
}

done_testing();
