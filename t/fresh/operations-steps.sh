#!/usr/bin/env bash
# docs/operations.md, "Installing from the packages", followed step by step
# on a brand-new Debian 12, as root, then the site is used as a browser and
# an instructor would: play, progress, upload, transcode.
#
#   ../shared/tools/fresh-machine/check.sh . ../shared t/fresh/operations-steps.sh
#
# The LMS's own services (Redis, PostgreSQL) are installed here as stand-ins
# for the LMS's; everything else is what the steps say, with three
# differences a chroot forces, each marked DIFFERENT below: no systemd (nginx
# and the helper are started by hand, as the unit would), self-made TLS and
# CloudFront keys, and sed instead of an editor.
#
# It changes the machine (packages, /etc/nginx, /etc/vodlms): run it only on
# a throwaway one.  It refuses to run anywhere else unless
# VODLMS_I_AM_A_THROWAWAY_MACHINE=1 or CI=true (the fresh-machine tool sets it).

set -euo pipefail

if [ "${CI:-}" != true ] && [ "${VODLMS_I_AM_A_THROWAWAY_MACHINE:-}" != 1 ]; then
    echo "operations-steps.sh installs packages and rewrites /etc/nginx: run it on a throwaway machine (see its header)" >&2
    exit 2
fi
[ "$(id -u)" -eq 0 ] || { echo "operations-steps.sh: needs root" >&2; exit 2; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# postgres and vodlms cannot enter a 0700 checkout in /root: work from /
cd /
work=$(mktemp -d /tmp/vodlms-ops.XXXXXX)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -f /run/nginx.pid ] && kill "$(cat /run/nginx.pid)" 2>/dev/null || true
    pg_ctlcluster 15 main stop 2>/dev/null || true
    [ -n "${redis_pid:-}" ] && kill "$redis_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n==> %s\n' "$*"; }
fail() {
    printf 'operations-steps: FAILED: %s\n' "$*" >&2
    tail -n 20 /var/log/nginx/error.log "$work/helper.log" >&2 2>/dev/null || true
    exit 1
}
export DEBIAN_FRONTEND=noninteractive

step "the packages (./build.sh deb)"
(cd "$repo" && ./build.sh deb)
ver=$(sed -n 's/^#define NGX_HTTP_VODLMS_VERSION *"\(.*\)"/\1/p' \
      "$repo/ngx_http_vodlms_module/ngx_http_vodlms_version.h")
debs=${VODLMS_BUILD_DIR:-$repo/build}/deb

step "the LMS's services (stand-ins): PostgreSQL and Redis"
apt-get install -y -qq --no-install-recommends postgresql redis-server curl openssl ca-certificates >/dev/null
pg_ctlcluster 15 main start
redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no --daemonize no >"$work/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 50); do redis-cli ping >/dev/null 2>&1 && break; sleep 0.1; done
runuser -u postgres -- psql -qc "CREATE DATABASE lms"
runuser -u postgres -- psql -qc "CREATE ROLE vodlms_nginx LOGIN PASSWORD 'nginx-pw'"
runuser -u postgres -- psql -qc "CREATE ROLE vodlms_helper LOGIN PASSWORD 'helper-pw'"
# the LMS's own tables, which vodlms must leave alone
runuser -u postgres -- psql -q lms <<'SQL'
CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL);
CREATE TABLE courses (id serial PRIMARY KEY, title text NOT NULL);
CREATE TABLE schema_migrations (version bigint PRIMARY KEY);
INSERT INTO users (email) VALUES ('a@example.com');
SQL

step "1. install, and check that the module loads (nginx -t prints its version)"
# DIFFERENT: no systemd; the postinst's attempt to start nginx may fail here
apt install -y "$debs/libnginx-mod-http-vodlms_${ver}_amd64.deb" "$debs/vodlms-helper_${ver}_amd64.deb" \
    || apt-get install -y -f
ls -l /etc/nginx/modules-enabled/50-mod-http-vodlms.conf
nginx -t 2>&1 | tee "$work/t1"
grep -q "vodlms/$ver" "$work/t1" || fail "nginx -t does not print vodlms/$ver"
[ -f /run/nginx.pid ] && { kill "$(cat /run/nginx.pid)" || true; sleep 1; }

step "2. the database objects (/usr/share/vodlms/sql/migrate.sh)"
conninfo="host=/var/run/postgresql dbname=lms user=postgres"
runuser -u postgres -- /usr/share/vodlms/sql/migrate.sh "dbname=lms"
runuser -u postgres -- /usr/share/vodlms/sql/migrate.sh "dbname=lms" | grep -q "0 applied" \
    || fail "a second migrate.sh applied something"
[ "$(runuser -u postgres -- psql -Atc "SELECT count(*) FROM public.users" lms)" = 1 ] \
    || fail "the LMS's users table was touched"
# the grants security.md gives
runuser -u postgres -- psql -q lms <<'SQL'
GRANT USAGE ON SCHEMA vodlms TO vodlms_nginx, vodlms_helper;
GRANT SELECT ON vodlms.users, vodlms.courses, vodlms.course_instructors, vodlms.enrollments,
                vodlms.videos, vodlms.watch_progress TO vodlms_nginx;
GRANT INSERT, UPDATE ON vodlms.watch_progress TO vodlms_nginx;
GRANT INSERT, UPDATE, DELETE ON vodlms.videos TO vodlms_nginx;
GRANT SELECT, UPDATE ON vodlms.videos TO vodlms_helper;
GRANT SELECT, INSERT, UPDATE, DELETE ON vodlms.videos_superseded TO vodlms_helper;
SQL
# the LMS's people and a lecture waiting for its upload, in the tables the
# example's default queries read
runuser -u postgres -- psql -q lms <<'SQL'
INSERT INTO vodlms.users (id, email, role) VALUES ('101', 's@example.com', 'student'),
                                                  ('102', 't@example.com', 'student'),
                                                  ('201', 'i@example.com', 'instructor');
INSERT INTO vodlms.courses (id, title, slug) VALUES ('7', 'Codecs', 'codecs');
INSERT INTO vodlms.enrollments (user_id, course_id, status) VALUES ('101', '7', 'active'),
                                                                   ('102', '7', 'active');
INSERT INTO vodlms.course_instructors (course_id, user_id) VALUES ('7', '201');
INSERT INTO vodlms.videos (id, course_id, title) VALUES ('lecture-1', '7', 'Lecture 1');
SQL

step "3. the example site, and the secrets in a 0600 file"
cp /usr/share/doc/libnginx-mod-http-vodlms/examples/vodlms.conf /etc/nginx/sites-available/vodlms
# DIFFERENT: sed for the editor; the domain stays lms.example.com
ln -s ../sites-available/vodlms /etc/nginx/sites-enabled/vodlms
install -d -m 0755 /etc/vodlms
install -m 0600 -o root -g root /dev/null /etc/vodlms/nginx-secrets.conf
cat >/etc/vodlms/nginx-secrets.conf <<'EOF'
vodlms_pg "host=127.0.0.1 dbname=lms user=vodlms_nginx password=nginx-pw" timeout=1s;
EOF
[ "$(stat -c '%a %U:%G' /etc/vodlms/nginx-secrets.conf)" = "600 root:root" ] || fail "secrets file mode"
# TLS: DIFFERENT: a self-made pair at the paths the example names
if [ ! -f /etc/ssl/private/ssl-cert-snakeoil.key ]; then
    install -d -m 0710 /etc/ssl/private
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=lms.example.com \
        -keyout /etc/ssl/private/ssl-cert-snakeoil.key -out /etc/ssl/certs/ssl-cert-snakeoil.pem 2>/dev/null
    chmod 0600 /etc/ssl/private/ssl-cert-snakeoil.key
fi

step "4. the CloudFront private key, root's, 0600; nginx -t; start"
openssl genrsa -out "$work/cloudfront_private_key.pem" 2048 2>/dev/null
install -d -m 0700 /etc/vodlms/keys
install -m 0600 -o root -g root "$work/cloudfront_private_key.pem" /etc/vodlms/keys/cloudfront.pem
nginx -t 2>&1 | tee "$work/t4"
if grep -q '\[warn\]' "$work/t4"; then fail "nginx -t warns: $(grep '\[warn\]' "$work/t4")"; fi
# DIFFERENT: `systemctl reload nginx` without systemd: start it
nginx
for _ in $(seq 50); do [ -f /run/nginx.pid ] && break; sleep 0.1; done

step "5. the helper: configure, check, start"
sed -i -e 's|^pg_conninfo = .*|pg_conninfo = "host=127.0.0.1 dbname=lms user=vodlms_helper password=helper-pw"|' \
    /etc/vodlms/helper.conf
vodlms-helper --config /etc/vodlms/helper.conf --check-config
# DIFFERENT: `systemctl enable --now vodlms-helper`: the unit's user and command
runuser -u vodlms -- vodlms-helper --config /etc/vodlms/helper.conf >"$work/helper.log" 2>&1 &
pids+=($!)

step "use: a student plays and beacons, an instructor uploads"
redis-cli SET session:ops-student '{"user_id":"101"}' EX 3600 >/dev/null
# a second student, who first asks once the lecture is ready: the first
# one's "not ready yet" is in the example's enrollment cache for valid=30s
redis-cli SET session:ops-student2 '{"user_id":"102"}' EX 3600 >/dev/null
redis-cli SET session:ops-teacher '{"user_id":"201","role":"instructor"}' EX 3600 >/dev/null
redis-cli SET session:ops-outsider '{"user_id":"999"}' EX 3600 >/dev/null
c() { curl -sk --resolve lms.example.com:443:127.0.0.1 "$@"; }

code=$(c -o "$work/play" -w '%{http_code}' -b session=ops-student https://lms.example.com/api/videos/lecture-1/stream)
# not transcoded yet: 409 with its status
[ "$code" = 409 ] || fail "play before upload: $code $(cat "$work/play")"
code=$(c -o /dev/null -w '%{http_code}' https://lms.example.com/api/videos/lecture-1/stream)
[ "$code" = 401 ] || fail "play without a session: $code"
code=$(c -o /dev/null -w '%{http_code}' -b session=ops-outsider https://lms.example.com/api/videos/lecture-1/stream)
[ "$code" = 403 ] || fail "play by someone not enrolled: $code"
code=$(c -o /dev/null -w '%{http_code}' -b session=ops-student https://lms.example.com/api/videos/nope/stream)
[ "$code" = 404 ] || fail "play of no such video: $code"

ffmpeg -v error -f lavfi -i testsrc=size=320x240:rate=25 -f lavfi -i sine=frequency=440 \
    -t 4 -c:v libx264 -pix_fmt yuv420p -c:a aac -shortest "$work/lecture.mp4"
code=$(c -o "$work/up" -w '%{http_code}' -b session=ops-teacher -H 'X-Title: Lecture 1' \
       --data-binary @"$work/lecture.mp4" 'https://lms.example.com/api/videos/lecture-1/upload?course=7')
[ "$code" = 202 ] || fail "upload: $code $(cat "$work/up")"
code=$(c -o /dev/null -w '%{http_code}' -b session=ops-student --data-binary @"$work/lecture.mp4" \
       'https://lms.example.com/api/videos/lecture-1/upload?course=7')
[ "$code" = 403 ] || fail "upload by a student: $code"

status=""
for _ in $(seq 240); do
    status=$(runuser -u postgres -- psql -Atc "SELECT status FROM vodlms.videos WHERE id = 'lecture-1'" lms)
    [ "$status" = ready ] || [ "$status" = failed ] && break
    sleep 0.5
done
[ "$status" = ready ] || { cat "$work/helper.log" >&2; fail "the upload did not become ready: $status"; }
prefix=$(runuser -u postgres -- psql -Atc "SELECT storage_prefix FROM vodlms.videos WHERE id = 'lecture-1'" lms)
[ -f "/var/lib/vodlms/origin/$prefix/master.m3u8" ] || fail "no master playlist under /var/lib/vodlms/origin/$prefix"

code=$(c -D "$work/play.h" -o "$work/play" -w '%{http_code}' -b session=ops-student2 \
       https://lms.example.com/api/videos/lecture-1/stream)
[ "$code" = 200 ] || fail "play after the transcode: $code $(cat "$work/play")"
grep -qi '^set-cookie: CloudFront-Signature=' "$work/play.h" || fail "no CloudFront cookies"
grep -q '"manifestUrl":"https://media.lms.example.com/' "$work/play" || fail "manifestUrl: $(cat "$work/play")"

code=$(c -o /dev/null -w '%{http_code}' -b session=ops-student2 -H 'Content-Type: application/json' \
       --data '{"videoId":"lecture-1","currentTime":2,"duration":4,"event":"pause"}' https://lms.example.com/api/videos/lecture-1/progress)
[ "$code" = 204 ] || fail "beacon: $code"
pos=""
for _ in $(seq 60); do
    pos=$(runuser -u postgres -- psql -Atc "SELECT position_seconds FROM vodlms.watch_progress WHERE user_id = '102' AND video_id = 'lecture-1'" lms)
    [ -n "$pos" ] && break
    sleep 0.5
done
[ -n "$pos" ] || fail "the beacon never reached vodlms.watch_progress"

step "stop: nginx -s quit ends"
nginx -s quit
for _ in $(seq 100); do [ -f /run/nginx.pid ] || break; sleep 0.1; done
[ ! -f /run/nginx.pid ] || fail "nginx -s quit did not finish"

echo
echo "operations-steps: every step of operations.md worked on this machine (vodlms $ver)"
