#!/usr/bin/env bash
# vodlms build driver.  Every subcommand is idempotent and safe to re-run.
#
#   ./build.sh deps    install what building, testing and running need (apt, npm)
#   ./build.sh build   build the nginx module (.so) against Debian's nginx, and vodlms-helper
#   ./build.sh test    deps + build, throwaway Redis/PostgreSQL, unit + Test::Nginx suites
#   ./build.sh run     the product locally on http://127.0.0.1:8080 (Ctrl-C stops it)

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=${VODLMS_BUILD_DIR:-$ROOT/build}
NGX_SRC=${NGX_SRC:-/usr/share/nginx/src}
NGINX_BIN=${NGINX_BIN:-/usr/sbin/nginx}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
MODULE_SO=$BUILD/ngx_http_vodlms_module.so

APT_PACKAGES=(
    build-essential pkg-config
    nginx nginx-dev
    libhiredis-dev libpq-dev libssl-dev libjansson-dev
    redis-server postgresql postgresql-contrib
    nodejs
    perl libtest-base-perl libtext-diff-perl libwww-perl liburi-perl
    libtest-longstring-perl liblist-moreutils-perl libipc-run-perl
    libjson-pp-perl
    libfaketime
    ffmpeg
    curl
)

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- deps

cmd_deps() {
    local missing=() p
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' \
            || missing+=("$p")
    done

    if ((${#missing[@]})); then
        log "installing: ${missing[*]}"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo=sudo
        $sudo apt-get update -qq
        # packaged services must not start on their default ports here
        DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 \
            $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi

    # some nodejs builds bundle npm; Debian's splits it out
    if ! command -v npm >/dev/null 2>&1; then
        log "installing: npm"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null
    fi

    # the express-session fixture: real express-session + connect-redis
    local fx=$ROOT/t/fixtures/express
    if [ -f "$fx/package-lock.json" ]; then
        local stamp=$fx/node_modules/.vodlms-lock.sha
        local want; want=$(sha256sum "$fx/package-lock.json" | cut -d' ' -f1)
        if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
            log "npm ci in t/fixtures/express"
            (cd "$fx" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
            echo "$want" > "$stamp"
        fi
    fi
}

# ---------------------------------------------------------------- build

cmd_build() {
    [ -f "$NGX_SRC/conf_flags" ] || die "no $NGX_SRC/conf_flags: run ./build.sh deps (nginx-dev)"

    local src=$BUILD/nginx-src
    local ver; ver=$("$NGINX_BIN" -v 2>&1 | sed 's|.*/||')
    local stamp; stamp=$( (echo "$ver"; cat "$ROOT/config" "$NGX_SRC/conf_flags") | sha256sum | cut -d' ' -f1)

    mkdir -p "$BUILD"

    if [ ! -f "$src/.vodlms-configured" ] || [ "$(cat "$src/.vodlms-configured")" != "$stamp" ]; then
        log "configuring nginx $ver from $NGX_SRC (Debian's conf_flags)"
        rm -rf "$src"
        cp -a "$NGX_SRC" "$src"
        # shellcheck disable=SC1091
        NGX_CONF_FLAGS=()
        . "$NGX_SRC/conf_flags"
        (cd "$src" && ./configure "${NGX_CONF_FLAGS[@]}" --add-dynamic-module="$ROOT" \
            > "$BUILD/configure.log" 2>&1) \
            || { tail -30 "$BUILD/configure.log" >&2; die "configure failed (see $BUILD/configure.log)"; }
        echo "$stamp" > "$src/.vodlms-configured"
    fi

    log "building ngx_http_vodlms_module.so"
    make -s -C "$src" -f objs/Makefile modules -j"$(nproc)" >"$BUILD/make.log" 2>&1 \
        || { grep -E 'error|warning' -A3 "$BUILD/make.log" | head -60 >&2; die "module build failed (see $BUILD/make.log)"; }
    cp "$src/objs/ngx_http_vodlms_module.so" "$MODULE_SO"

    # it must load into Debian's own nginx
    local tmp; tmp=$(mktemp -d)
    mkdir -p "$tmp/logs"
    cat > "$tmp/nginx.conf" <<EOF
load_module $MODULE_SO;
error_log $tmp/logs/error.log;
pid $tmp/nginx.pid;
events {}
http { vodlms_redis 127.0.0.1:6379; server { listen 127.0.0.1:1; location / { vodlms_auth on; } } }
EOF
    "$NGINX_BIN" -t -q -p "$tmp" -c "$tmp/nginx.conf" -e "$tmp/logs/error.log" \
        || { cat "$tmp/logs/error.log" >&2; rm -rf "$tmp"; die "the module does not load into $NGINX_BIN"; }
    rm -rf "$tmp"

    log "unit tests: building"
    make -s -C "$ROOT/t/unit" BUILD="$BUILD" >/dev/null

    log "building vodlms-helper"
    make -s -C "$ROOT/helper" BUILD="$BUILD/helper" >/dev/null
    log "built $MODULE_SO"
}

# ---------------------------------------------------------------- services

free_port() {
    perl -MIO::Socket::INET -e \
        'my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1", LocalPort => 0, ReuseAddr => 1) or die $!; print $s->sockport'
}

# start_redis DIR PORT -> sets REDIS_PID
start_redis() {
    local dir=$1 port=$2
    mkdir -p "$dir"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' \
        --appendonly no --daemonize no --logfile "$dir/redis.log" &
    REDIS_PID=$!
    local i
    for i in $(seq 1 200); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
        kill -0 "$REDIS_PID" 2>/dev/null || break
        sleep 0.05
    done
    cat "$dir/redis.log" >&2
    die "redis-server did not start on port $port"
}

# start_pg DIR PORT -> sets PG_DIR; PostgreSQL refuses root, so it runs as postgres
start_pg() {
    local dir=$1 port=$2
    PG_DIR=$dir
    mkdir -p "$dir"
    chown postgres: "$dir"
    chmod 700 "$dir"
    if [ ! -f "$dir/PG_VERSION" ]; then
        runuser -u postgres -- "$PG_BIN/initdb" -D "$dir" -A trust -U postgres \
            --no-sync -E UTF8 --locale=C.UTF-8 >"$dir/../initdb.log" 2>&1 \
            || { cat "$dir/../initdb.log" >&2; die "initdb failed"; }
    fi
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir" -w -t 60 -l "$dir/server.log" \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c log_statement=all" start >/dev/null \
        || { cat "$dir/server.log" >&2; die "PostgreSQL did not start on port $port"; }
}

stop_pid() {
    local pid=$1
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    local i
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

stop_pg() {
    [ -n "${PG_DIR:-}" ] && [ -f "$PG_DIR/postmaster.pid" ] || return 0
    # fast shutdown of the postmaster we started, by its PID
    stop_pid "$(head -1 "$PG_DIR/postmaster.pid")"
}

# ---------------------------------------------------------------- test

cmd_test() {
    local valgrind=0 a
    for a in "$@"; do
        case $a in
            --valgrind) valgrind=1 ;;
            *) die "test: unknown option $a" ;;
        esac
    done

    cmd_deps
    cmd_build

    local tmp; tmp=$(mktemp -d /tmp/vodlms-test.XXXXXX)
    chmod 755 "$tmp"
    REDIS_PID="" PG_DIR=""
    # shellcheck disable=SC2064
    trap "stop_pid \"\$REDIS_PID\"; stop_pg; rm -rf '$tmp'" EXIT
    trap 'exit 130' INT TERM

    local redis_port pg_port
    redis_port=$(free_port)
    pg_port=$(free_port)

    log "redis on 127.0.0.1:$redis_port, postgres on 127.0.0.1:$pg_port (in $tmp)"
    start_redis "$tmp/redis" "$redis_port"
    start_pg "$tmp/pg" "$pg_port"

    psql -h 127.0.0.1 -p "$pg_port" -U postgres -qc 'create database vodlms' >/dev/null
    "$ROOT/sql/migrate.sh" "host=127.0.0.1 port=$pg_port user=postgres dbname=vodlms" --seed >/dev/null

    export TEST_NGINX_BINARY=$NGINX_BIN
    export TEST_NGINX_MODULE_PATH=$MODULE_SO
    export TEST_NGINX_REDIS_PORT=$redis_port
    export TEST_NGINX_PG_PORT=$pg_port
    export TEST_NGINX_PG_CONNINFO="host=127.0.0.1 port=$pg_port user=postgres dbname=vodlms"
    export TEST_NGINX_SERVROOT=$tmp/servroot
    export TEST_NGINX_SERVER_PORT; TEST_NGINX_SERVER_PORT=$(free_port)
    export VODLMS_BUILD_DIR=$BUILD
    export VODLMS_ROOT=$ROOT
    if ((valgrind)); then
        export TEST_NGINX_USE_VALGRIND=1
        export TEST_NGINX_VALGRIND_SUPP=$ROOT/t/compat/nginx-core.supp
    fi

    local inc=()
    if perl -MTest::Nginx::Socket -e1 2>/dev/null; then
        log "using the installed Test::Nginx::Socket"
    else
        log "Test::Nginx::Socket not installed: using t/compat"
        inc=(-I "$ROOT/t/compat")
    fi

    cd "$ROOT"
    local rc=0
    prove "${inc[@]}" -I "$ROOT/t/lib" -r t/ || rc=$?
    return $rc
}

# ---------------------------------------------------------------- run

cmd_run() {
    cmd_deps
    cmd_build

    local var=$ROOT/var
    local redis_port=${VODLMS_REDIS_PORT:-16379}
    local pg_port=${VODLMS_PG_PORT:-15432}
    local http_port=${VODLMS_HTTP_PORT:-8080}
    NGINX_PID="" REDIS_PID="" PG_DIR=""

    mkdir -p "$var/nginx" "$var/redis"
    trap 'log "stopping"; stop_pid "$NGINX_PID"; stop_pid "$REDIS_PID"; stop_pg' EXIT
    trap 'exit 0' INT TERM

    log "redis on 127.0.0.1:$redis_port, postgres on 127.0.0.1:$pg_port (data in var/)"
    start_redis "$var/redis" "$redis_port"
    start_pg "$var/pg" "$pg_port"

    local conninfo="host=127.0.0.1 port=$pg_port user=postgres dbname=vodlms"
    psql -h 127.0.0.1 -p "$pg_port" -U postgres -tAc "select 1 from pg_database where datname='vodlms'" \
        | grep -q 1 || psql -h 127.0.0.1 -p "$pg_port" -U postgres -qc 'create database vodlms'
    "$ROOT/sql/migrate.sh" "$conninfo" --seed >/dev/null

    # demo sessions, written the way an LMS writes them (ids from sql/seed/demo.sql)
    redis-cli -p "$redis_port" set session:demo-alice '{"user_id":"1001","role":"student"}' >/dev/null
    redis-cli -p "$redis_port" set session:demo-bob '{"user_id":"1002","role":"student"}' >/dev/null
    redis-cli -p "$redis_port" set session:demo-carol '{"user_id":"1003","role":"instructor"}' >/dev/null

    # a CloudFront-style signing key for the demo, made once; never committed
    mkdir -p "$var/keys"
    if [ ! -f "$var/keys/cloudfront.pem" ]; then
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
            -out "$var/keys/cloudfront.pem" 2>/dev/null
        openssl pkey -in "$var/keys/cloudfront.pem" -pubout -out "$var/keys/cloudfront.pub.pem"
        chmod 600 "$var/keys/cloudfront.pem"
    fi

    sed -e "s|@MODULE@|$MODULE_SO|g" -e "s|@VAR@|$var|g" \
        -e "s|@REDIS_PORT@|$redis_port|g" -e "s|@HTTP_PORT@|$http_port|g" \
        -e "s|@PG_PORT@|$pg_port|g" -e "s|@CDN_URL@|http://127.0.0.1:$http_port|g" \
        -e "s|@KEY_PAIR_ID@|KDEMOLOCAL|g" -e "s|@KEY_FILE@|$var/keys/cloudfront.pem|g" \
        -e "s|@COOKIE_SECURE@|off|g" \
        "$ROOT/docs/examples/nginx.conf" > "$var/nginx/nginx.conf"

    "$NGINX_BIN" -t -q -p "$var/nginx" -c "$var/nginx/nginx.conf" -e "$var/nginx/error.log" \
        || die "nginx -t failed for $var/nginx/nginx.conf"

    # a direct child, not a daemon: Ctrl-C stops it with everything else
    "$NGINX_BIN" -p "$var/nginx" -c "$var/nginx/nginx.conf" -e "$var/nginx/error.log" \
        -g 'daemon off;' &
    NGINX_PID=$!

    local i
    for i in $(seq 1 100); do
        curl -fsS -o /dev/null "http://127.0.0.1:$http_port/" 2>/dev/null && break
        kill -0 "$NGINX_PID" 2>/dev/null || die "nginx exited; see $var/nginx/error.log"
        sleep 0.05
    done

    cat <<MSG

vodlms is running on http://127.0.0.1:$http_port  (Ctrl-C stops everything)

Demo accounts (sessions in Redis, as the LMS would write them):
  alice   student, enrolled       Cookie: session=demo-alice
  bob     student, not enrolled   Cookie: session=demo-bob
  carol   instructor              Cookie: session=demo-carol

Try:
  curl -i http://127.0.0.1:$http_port/api/whoami                                    # 401, no session
  curl -i -H 'Cookie: session=demo-alice' http://127.0.0.1:$http_port/api/whoami    # 200, user 1001
  curl -i -H 'Cookie: session=demo-alice' http://127.0.0.1:$http_port/api/videos/intro-ready/stream  # 200 + signed cookies
  curl -i -H 'Cookie: session=demo-bob' http://127.0.0.1:$http_port/api/videos/intro-ready/stream    # 403, not enrolled
  curl -i -H 'Cookie: session=demo-alice' http://127.0.0.1:$http_port/api/videos/intro-processing/stream  # 409
  curl -i -H 'Authorization: Bearer demo-carol' http://127.0.0.1:$http_port/api/instructor/uploads  # 200
  curl -i -H 'Cookie: session=demo-alice' http://127.0.0.1:$http_port/api/instructor/uploads        # 403

Logs: $var/nginx/error.log and access.log; config: $var/nginx/nginx.conf
MSG
    wait "$NGINX_PID" || true
}

# ---------------------------------------------------------------- main

case ${1:-} in
    deps)  shift; cmd_deps "$@" ;;
    build) shift; cmd_build "$@" ;;
    test)  shift; cmd_test "$@" ;;
    run)   shift; cmd_run "$@" ;;
    *) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
