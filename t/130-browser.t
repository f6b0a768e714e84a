# End-to-end browser test (issue #7): Debian's chromium, driven by
# playwright-core (t/e2e/), plays a lecture through the real player pages
# against nginx + the module (docs/examples/nginx.conf), vodlms-helper,
# Redis and PostgreSQL; and (issue #20) a viewer whose browser blocks
# third-party cookies, with the media on another site, plays on signed URLs
# past the first URL's life; and (issue #22) an AES-128 encrypted lecture
# plays through hls.js, its key from the key location with the session;
# and (issue #23) the instructor's caption uploads in the player's CC menu
# (the active cue of the chosen language, drawn over the video), preview
# thumbnails over the page's timeline, and "Audio only" and back.
# t/e2e/run.js does the work and prints the TAP;
# this wrapper only checks what it needs and hands it the environment.
#
# Uses the suite's PostgreSQL (TEST_NGINX_PG_PORT, from ./build.sh test) with
# its own database, or a private one when run alone.  Screenshots land in
# build/test-output/e2e/.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

my $root = $ENV{VODLMS_ROOT} || "$FindBin::Bin/..";
my $chromium = $ENV{VODLMS_CHROMIUM} || '/usr/bin/chromium';
my $e2e = "$FindBin::Bin/e2e";

sub skip_all { print "1..0 # SKIP $_[0]\n"; exit 0 }

skip_all("no $chromium (apt-get install chromium, or ./build.sh deps)") unless -x $chromium;

# from here on a missing piece is a failure, not a skip
sub bail { print "1..1\nnot ok 1 - $_[0]\n"; exit 1 }
system('node', '-e', '0') == 0 or bail('node is not installed');
# playwright-core 1.61.x (t/e2e/package.json) runs on Node >= 18, Debian
# 12's; an older one fails here with a plain word, not later obscurely
my ($node_major) = (`node -p process.versions.node` // '') =~ /^(\d+)\./;
bail("Node.js >= 18 is needed (this one: " . ($node_major // '?') . ")")
    unless ($node_major // 0) >= 18;
-d "$e2e/node_modules/playwright-core" or bail("no $e2e/node_modules/playwright-core: run ./build.sh deps");
my $build = $ENV{VODLMS_BUILD_DIR} || "$root/build";
-x "$build/helper/vodlms-helper" or bail("no $build/helper/vodlms-helper: run ./build.sh build");

my $pg;
unless ($ENV{TEST_NGINX_PG_PORT}) {
    require VodlmsTest;
    $pg = VodlmsTest::start_pg();
    $ENV{TEST_NGINX_PG_PORT} = $pg->port;
}

$ENV{VODLMS_ROOT} = $root;
$ENV{VODLMS_BUILD_DIR} = $build;
$ENV{VODLMS_CHROMIUM} = $chromium;
$| = 1;
my $rc = system('node', "$e2e/run.js");
exit($rc == 0 ? 0 : 1);
