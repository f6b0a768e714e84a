#!/usr/bin/env bash
# vodlms build driver.  Every subcommand is idempotent and safe to re-run.
#
#   ./build.sh deps    install what building, testing and running need (apt, npm)
#   ./build.sh build   build the nginx module (.so) against Debian's nginx, and vodlms-helper
#   ./build.sh test    deps + build + matrix, throwaway Redis/PostgreSQL, unit + Test::Nginx
#                      suites (VODLMS_TEST_JOBS at a time, default 3; 1: one by one); at the
#                      same time, those that load the module again against nginx 1.31 built
#                      from source ([--valgrind] [t/NNN-suite.t ...]: only those suites;
#                      VODLMS_NGX_MATRIX=0: Debian's nginx only)
#   ./build.sh matrix  build the module against every nginx release users run
#                      (../shared/nginx: 1.24, 1.26, 1.30, 1.31), warnings as errors
#   ./build.sh run     the product locally on http://127.0.0.1:8080 (Ctrl-C stops it);
#                      state in var/; as root from a checkout postgres or nobody
#                      cannot enter, /var/lib/vodlms-dev/NAME-HASH/ (see state_dir)
#   ./build.sh bench   wrk against loopback, every scenario next to its baseline
#   ./build.sh fuzz    libFuzzer on every pure-core parser and the helper's caption parser (VODLMS_FUZZ_SECONDS each)
#   ./build.sh deb     Debian packages: libnginx-mod-http-vodlms, vodlms-helper

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=${VODLMS_BUILD_DIR:-$ROOT/build}
NGX_SRC=${NGX_SRC:-/usr/share/nginx/src}
NGINX_BIN=${NGINX_BIN:-/usr/sbin/nginx}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
MODULE_SO=$BUILD/ngx_http_vodlms_module.so

# The oldest Node.js the npm fixtures work with: the highest engines.node in
# the package-lock.json files (t/e2e's playwright-core 1.61.x needs 18;
# 1.62 and later need 20).  Debian 12's nodejs is 18.19/18.20.
NODE_MIN=18

APT_PACKAGES=(
    build-essential pkg-config debhelper dpkg-dev
    clang llvm libclang-rt-14-dev
    nginx nginx-dev
    libpcre2-dev zlib1g-dev
    libhiredis-dev libpq-dev libssl-dev libjansson-dev libyajl-dev
    libcurl4-openssl-dev
    redis-server postgresql postgresql-contrib
    nodejs
    perl libtest-base-perl libtext-diff-perl libwww-perl liburi-perl
    libtest-longstring-perl liblist-moreutils-perl libipc-run-perl
    libjson-pp-perl
    libfaketime
    ffmpeg
    chromium
    wrk
    curl
)

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# user_can USER TEST PATH: would `test TEST PATH` succeed as USER (every
# directory on the way searchable)?  Only meaningful as root.
user_can() { runuser -u "$1" -- test "$2" "$3" 2>/dev/null; }

# ---------------------------------------------------------------- deps

# cmd_deps [NPM_DIR...]: the Debian packages, then `npm ci` in the given
# directories (default: every npm fixture)
# apt_install PACKAGE...: those not installed yet (sudo for an ordinary user)
apt_install() {
    local missing=() p sudo=""
    is_root || sudo=sudo
    for p in "$@"; do
        # installed, or installed with its triggers still to run (as while
        # dpkg installs something else that triggers it)
        case $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) in
            installed|triggers-pending|triggers-awaited) ;;
            *) missing+=("$p") ;;
        esac
    done

    if ((${#missing[@]})); then
        if [ -n "$sudo" ] && ! command -v sudo >/dev/null 2>&1; then
            die "these Debian packages are missing: ${missing[*]}; as root, run ./build.sh deps (or apt-get install them), then again as $(id -un)"
        fi
        log "installing: ${missing[*]}"
        $sudo apt-get update -qq
        # packaged services must not start on their default ports here
        DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 \
            $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

cmd_deps() {
    local sudo=""
    is_root || sudo=sudo
    apt_install "${APT_PACKAGES[@]}"

    # some nodejs builds bundle npm; Debian's splits it out
    if ! command -v npm >/dev/null 2>&1; then
        [ -z "$sudo" ] || command -v sudo >/dev/null 2>&1 \
            || die "npm is missing; as root, run ./build.sh deps (or apt-get install npm), then again as $(id -un)"
        log "installing: npm"
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null
    fi

    # a clear word rather than a cryptic failure later
    local node_ver
    node_ver=$(node -p process.versions.node 2>/dev/null) || die "node does not run (apt-get install nodejs)"
    [ "${node_ver%%.*}" -ge "$NODE_MIN" ] \
        || die "Node.js $node_ver ($(command -v node)) is too old: vodlms needs Node.js >= $NODE_MIN (Debian 12's nodejs package, 18.19 or later, is enough)"

    # npm packages the tests use: the real express-session + connect-redis
    # (the session fixture), s3rver (the helper's S3 test), hls.js (the
    # player), playwright-core (t/130-browser.t, driving Debian's chromium)
    # and m3u8-parser (t/081-hls-rewrite-oracle.t)
    local fx dirs=("$@")
    ((${#dirs[@]})) || dirs=(t/fixtures/express helper/test-s3 docs/examples/player t/e2e t/fixtures/hls-parser)
    for fx in "${dirs[@]/#/$ROOT/}"; do
        [ -f "$fx/package-lock.json" ] || continue
        local stamp=$fx/node_modules/.vodlms-lock.sha
        local want; want=$(sha256sum "$fx/package-lock.json" | cut -d' ' -f1)
        if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
            log "npm ci in ${fx#"$ROOT"/}"
            # --engine-strict: a locked package that needs a newer Node is
            # named here, by npm, instead of failing later in a test
            (cd "$fx" && npm ci --engine-strict --no-audit --no-fund --loglevel=error >/dev/null) \
                || die "npm ci failed in ${fx#"$ROOT"/} with Node.js $node_ver (vodlms needs >= $NODE_MIN)"
            echo "$want" > "$stamp"
        fi
    done
}

# ---------------------------------------------------------------- build

# module_loads NGINX SO: `nginx -t` with the module loaded and a location
# using it (the error log goes to stderr if not)
module_loads() {
    local nginx=$1 so=$2 tmp rc=0
    tmp=$(mktemp -d)
    mkdir -p "$tmp/logs"
    cat > "$tmp/nginx.conf" <<EOF
load_module $so;
error_log $tmp/logs/error.log;
pid $tmp/nginx.pid;
events {}
http {
    # nothing in the binary's default paths or on a port only root may use
    access_log off;
    client_body_temp_path $tmp/body; proxy_temp_path $tmp/proxy; fastcgi_temp_path $tmp/fastcgi;
    uwsgi_temp_path $tmp/uwsgi; scgi_temp_path $tmp/scgi;
    vodlms_redis 127.0.0.1:6379; server { listen 127.0.0.1:$(free_port); location / { vodlms_auth on; } }
}
EOF
    "$nginx" -t -q -p "$tmp" -c "$tmp/nginx.conf" -e "$tmp/logs/error.log" \
        || { cat "$tmp/logs/error.log" >&2; rc=1; }
    rm -rf "$tmp"
    return $rc
}

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
    module_loads "$NGINX_BIN" "$MODULE_SO" || die "the module does not load into $NGINX_BIN"

    log "unit tests: building"
    make -s -C "$ROOT/t/unit" BUILD="$BUILD" >/dev/null

    log "building vodlms-helper"
    make -s -C "$ROOT/helper" BUILD="$BUILD/helper" >/dev/null
    log "built $MODULE_SO"
}

# ---------------------------------------------------------------- matrix

# The nginx releases users run besides Debian 12's 1.22 (who runs which:
# docs/operations.md, "Other nginx versions").  The module is built against
# each the way nginx.org documents for dynamic modules (the same version's
# source, --with-compat), warnings as errors; `test` also runs the suites
# that load the module against NGX_MATRIX_RUN, built from source.  The
# trees are nginx's own release tags (`auto/configure`, no `configure`).
NGX_MATRIX=(1.24.0 1.26.3 1.30.4 1.31.4)
# mainline: the newest API, and every change stable 1.30 has
NGX_MATRIX_RUN=1.31.4
NGX_TARBALLS=${VODLMS_NGINX_TARBALLS:-$ROOT/../shared/nginx}

# what nginx's own configure and the module's headers need
MATRIX_PACKAGES=(
    build-essential libpcre2-dev zlib1g-dev libssl-dev
    libhiredis-dev libpq-dev libjansson-dev libyajl-dev
)

# VODLMS_NGX_MATRIX=0: skip the matrix, knowingly (a checkout without
# ../shared); anything else runs it
matrix_wanted() { [ "${VODLMS_NGX_MATRIX:-1}" != 0 ]; }

# Every tarball, or a clear stop.  Not a silent skip: CI always has
# ../shared, so a missing tree there is a broken setup, and a run that
# quietly tested one nginx instead of five would pass for the wrong reason.
matrix_sources() {
    local v missing=()
    for v in "${NGX_MATRIX[@]}"; do
        [ -f "$NGX_TARBALLS/nginx-$v.tar.gz" ] || missing+=("nginx-$v.tar.gz")
    done
    ((${#missing[@]} == 0)) \
        || die "the nginx matrix needs ${missing[*]} in $NGX_TARBALLS (the checkout's ../shared/nginx/, or VODLMS_NGINX_TARBALLS=DIR); without them set VODLMS_NGX_MATRIX=0 to build and test against Debian's nginx only"
}

# matrix_tree VERSION NAME CONFIGURE-FLAG...: $BUILD/nginx-matrix/VERSION-NAME,
# unpacked and configured with the module once per version, flags, tarball
# and `config` (a rerun only runs make) -> MATRIX_TREE
matrix_tree() {
    local ver=$1 name=$2; shift 2
    local tgz=$NGX_TARBALLS/nginx-$ver.tar.gz
    local dir=$BUILD/nginx-matrix/$ver-$name
    local stamp
    stamp=$( (echo "$ver"; sha256sum <"$tgz"; cat "$ROOT/config"; printf '%s\n' "$@") \
             | sha256sum | cut -d' ' -f1)
    MATRIX_TREE=$dir
    [ "$(cat "$dir/.vodlms-configured" 2>/dev/null)" = "$stamp" ] && return 0

    log "against nginx $ver: configuring ($*)"
    rm -rf "$dir"
    mkdir -p "$dir"
    tar -xzf "$tgz" -C "$dir" --strip-components=1 || die "against nginx $ver: cannot unpack $tgz"
    (cd "$dir" && ./auto/configure "$@" --add-dynamic-module="$ROOT" >configure.log 2>&1) \
        || { tail -30 "$dir/configure.log" >&2; die "against nginx $ver: configure failed (see $dir/configure.log)"; }
    echo "$stamp" > "$dir/.vodlms-configured"
}

# matrix_make VERSION WHAT MAKE-ARG...: make in MATRIX_TREE; the errors
# (-Werror: every warning is one) named with the version
matrix_make() {
    local ver=$1 what=$2; shift 2
    make -s -C "$MATRIX_TREE" -f objs/Makefile -j"$(nproc)" "$@" >"$MATRIX_TREE/make.log" 2>&1 \
        && return 0
    grep -E 'error|warning' -A3 "$MATRIX_TREE/make.log" | head -60 >&2
    die "against nginx $ver: $what failed, warnings are errors (see $MATRIX_TREE/make.log)"
}

# The release the suites run against, as a binary: Debian's own flags
# without Debian's paths, so it has the modules and --with-debug that the
# suites and Debian's binary have (ssl, realip, stub_status, auth_request,
# v2, threads...); --error-log-path=stderr stays, as configuration errors
# then reach stderr as with Debian's.  The module is built in the same
# tree.  Sets MATRIX_NGINX and MATRIX_MODULE.
matrix_run_build() {
    local v=$NGX_MATRIX_RUN f flags=()
    [ -f "$NGX_SRC/conf_flags" ] || die "no $NGX_SRC/conf_flags: run ./build.sh deps (nginx-dev)"
    # shellcheck disable=SC1091
    NGX_CONF_FLAGS=()
    . "$NGX_SRC/conf_flags"
    for f in "${NGX_CONF_FLAGS[@]}"; do
        case $f in
            --error-log-path=stderr) flags+=("$f") ;;
            --prefix=*|--*-path=*) ;;
            *) flags+=("$f") ;;
        esac
    done
    matrix_tree "$v" run --prefix="$BUILD/nginx-matrix/$v-run/prefix" "${flags[@]}" \
        --with-cc-opt=-Werror
    log "against nginx $v: building nginx and the module (Debian's modules, --with-compat, -Werror)"
    matrix_make "$v" "the build of nginx and the module"
    MATRIX_NGINX=$MATRIX_TREE/objs/nginx
    MATRIX_MODULE=$MATRIX_TREE/objs/ngx_http_vodlms_module.so
    mkdir -p "$MATRIX_TREE/prefix/logs"
    module_loads "$MATRIX_NGINX" "$MATRIX_MODULE" \
        || die "against nginx $v: the module does not load into $MATRIX_NGINX"
}

cmd_matrix() {
    apt_install "${MATRIX_PACKAGES[@]}"
    matrix_sources
    local v
    for v in "${NGX_MATRIX[@]}"; do
        matrix_tree "$v" compat --with-compat --with-cc-opt=-Werror
        log "against nginx $v: building ngx_http_vodlms_module.so (--with-compat, -Werror)"
        matrix_make "$v" "the module's build" modules
    done
    matrix_run_build
    # the recipe users follow (docs/operations.md): a module built with
    # only --with-compat loads into a binary of that version built with
    # other flags, here Debian's set of modules
    module_loads "$MATRIX_NGINX" "$BUILD/nginx-matrix/$NGX_MATRIX_RUN-compat/objs/ngx_http_vodlms_module.so" \
        || die "against nginx $NGX_MATRIX_RUN: the module built with only --with-compat does not load into $MATRIX_NGINX"
    log "built against nginx ${NGX_MATRIX[*]}; nginx $NGX_MATRIX_RUN with the module: $MATRIX_NGINX"
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

# as_pg CMD...: PostgreSQL refuses root, so as root it runs as postgres
# (DIR must then be reachable by postgres); otherwise as the invoking user
as_pg() {
    # from a directory postgres can enter (the checkout may be 0700)
    if is_root; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

# start_pg DIR PORT -> sets PG_DIR
start_pg() {
    local dir=$1 port=$2
    PG_DIR=$dir
    mkdir -p "$dir"
    if is_root; then
        chown postgres: "$dir"
        user_can postgres -w "$dir" \
            || die "PostgreSQL runs as postgres, which cannot reach $dir (a parent directory is not searchable by it)"
    fi
    chmod 700 "$dir"
    if [ ! -f "$dir/PG_VERSION" ]; then
        as_pg "$PG_BIN/initdb" -D "$dir" -A trust -U postgres \
            --no-sync -E UTF8 --locale=C.UTF-8 >"$dir/../initdb.log" 2>&1 \
            || { cat "$dir/../initdb.log" >&2; die "initdb failed"; }
    fi
    as_pg "$PG_BIN/pg_ctl" -D "$dir" -w -t 60 -l "$dir/server.log" \
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

stop_pg() { stop_pg_dir "${PG_DIR:-}"; }

# stop_pg_dir DIR: fast shutdown of the postmaster we started there, by its PID
stop_pg_dir() {
    [ -n "$1" ] && [ -f "$1/postmaster.pid" ] || return 0
    stop_pid "$(head -1 "$1/postmaster.pid")"
}

# test_db PORT: the database the suites use, migrated and seeded
test_db() {
    psql -h 127.0.0.1 -p "$1" -U postgres -qc 'create database vodlms' >/dev/null
    "$ROOT/sql/migrate.sh" "host=127.0.0.1 port=$1 user=postgres dbname=vodlms" --seed >/dev/null
}

# ---------------------------------------------------------------- test

cmd_test() {
    local valgrind=0 a suites=()
    for a in "$@"; do
        case $a in
            --valgrind) valgrind=1 ;;
            -*) die "test: unknown option $a" ;;
            *) [ -e "$ROOT/$a" ] || [ -e "$a" ] || die "test: no such suite: $a"
               suites+=("$a") ;;
        esac
    done

    cmd_deps
    cmd_build
    # before any suite: a release the module does not compile against
    # stops the run here, named
    if matrix_wanted; then
        cmd_matrix
    else
        log "VODLMS_NGX_MATRIX=0: built and tested against Debian's nginx only, not against nginx ${NGX_MATRIX[*]}"
    fi

    local tmp; tmp=$(mktemp -d /tmp/vodlms-test.XXXXXX)
    chmod 755 "$tmp"
    REDIS_PID="" PG_DIR="" MATRIX_REDIS_PID="" MATRIX_PG_DIR="" MATRIX_PROVE_PID=""
    # shellcheck disable=SC2064
    trap "stop_pid \"\$MATRIX_PROVE_PID\"; stop_pid \"\$REDIS_PID\"; stop_pid \"\$MATRIX_REDIS_PID\"; stop_pg; stop_pg_dir \"\$MATRIX_PG_DIR\"; rm -rf '$tmp'" EXIT
    trap 'exit 130' INT TERM

    local redis_port pg_port
    redis_port=$(free_port)
    pg_port=$(free_port)

    log "redis on 127.0.0.1:$redis_port, postgres on 127.0.0.1:$pg_port (in $tmp)"
    start_redis "$tmp/redis" "$redis_port"
    start_pg "$tmp/pg" "$pg_port"

    test_db "$pg_port"

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
    local rc=0 mrc=0 again=() deb_ver; deb_ver=$("$NGINX_BIN" -v 2>&1 | sed 's|.*/||')
    # the longest suites (progress flushes, hostile input) are the last by
    # number: started first, they do not run alone at the end
    matrix_wanted && mapfile -t again < <(matrix_suites "${suites[@]}" | sort -r)

    # The pass against NGX_MATRIX_RUN runs alongside the one against
    # Debian's nginx: both mostly wait (timeouts, flush intervals, stopped
    # backends), so on 2 cores side by side they take little longer than
    # the longer of them.  Its output is shown when both are done.  Under
    # valgrind they compute: one after the other.
    local alongside=1
    [ -z "${TEST_NGINX_USE_VALGRIND:-}" ] || alongside=0
    if ((${#again[@]})) && ((alongside)); then
        matrix_start "$tmp" "${inc[@]}" -- "${again[@]}"
    fi

    # Three suites at a time against Debian's nginx as well, each with its
    # own Test::Nginx port and server root (t/bin/run-apart): the helper's
    # suites have backends of their own, the others keys of their own (as
    # in matrix_start), and what runs longest mostly waits (the browser run
    # on its cookies' expiry, ./build.sh run on its transcodes, the
    # progress suites on their flush intervals).  VODLMS_TEST_JOBS=1: one
    # by one, as under valgrind.
    local start=$SECONDS list=() jobs=${VODLMS_TEST_JOBS:-3}
    [ -z "${TEST_NGINX_USE_VALGRIND:-}" ] || jobs=1
    [[ $jobs =~ ^[1-9][0-9]*$ ]] || die "test: VODLMS_TEST_JOBS is a number of suites at a time, not '$jobs'"
    ((${#suites[@]})) || suites=(t/)
    if ((jobs > 1)); then
        # the longest (last by number) first, as in matrix_start
        mapfile -t list < <(prove --dry -r "${suites[@]}" | sort -r)
        log "against Debian's nginx $deb_ver: ${#list[@]} suites, $jobs at a time"
        local lib=("${inc[@]:1}"); lib+=("$ROOT/t/lib")
        (
            IFS=:
            export PERL5LIB="${lib[*]}${PERL5LIB:+:$PERL5LIB}"
            export VODLMS_APART_DIR=$tmp/apart-debian
            exec prove --timer -j"$jobs" --exec "$ROOT/t/bin/run-apart" "${list[@]}"
        ) || rc=$?
    else
        prove --timer "${inc[@]}" -I "$ROOT/t/lib" -r "${suites[@]}" || rc=$?
    fi
    log "against Debian's nginx $deb_ver: the suites in $((SECONDS - start)) s"
    matrix_wanted || return $rc

    if ((${#again[@]} == 0)); then
        log "none of these suites runs again against nginx $NGX_MATRIX_RUN (see matrix_suites)"
        return $rc
    fi
    ((alongside)) || matrix_start "$tmp" "${inc[@]}" -- "${again[@]}"
    matrix_finish || mrc=$?

    if ((rc)); then
        log "against Debian's nginx $deb_ver: FAILED (its prove run above)"
    else
        log "against Debian's nginx $deb_ver: all passed"
    fi
    if ((mrc)); then
        log "against nginx $NGX_MATRIX_RUN (built from source): FAILED: ${MATRIX_FAILED:-see its prove run above}"
    else
        log "against nginx $NGX_MATRIX_RUN (built from source): all ${#again[@]} suites passed"
    fi
    ((rc)) && return $rc
    return $mrc
}

# The suites that run again against NGX_MATRIX_RUN: those that load the
# module into TEST_NGINX_BINARY (they name TEST_NGINX_MODULE_PATH, or load
# it in every block through t/lib's block_defaults()), less
# those whose subject is not how nginx runs the module.  The rest (the
# runner's self-tests, the helper's, the browser's, the unit tests) do not
# depend on which nginx runs the module; they run once, against Debian's.
NGX_MATRIX_NOT=(
    005-docs.t              # the documentation against the source
    094-helper-versions.t   # the helper's ffmpeg output; nginx only serves it
    150-deb.t               # Debian's packages, made for Debian's nginx
)

# matrix_suites [SUITE...]: those of SUITE (default t/*.t) to run again
matrix_suites() {
    local f n
    (($#)) || set -- t/*.t
    for f in "$@"; do
        [ -f "$f" ] && [[ $f == *.t ]] || continue
        for n in "${NGX_MATRIX_NOT[@]}"; do
            [ "$(basename "$f")" = "$n" ] && continue 2
        done
        grep -qE 'TEST_NGINX_MODULE_PATH|^block_defaults\(' "$f" && printf '%s\n' "$f"
    done
}

# matrix_start TMP [-I DIR...] -- SUITE...: starts the suites against
# nginx NGX_MATRIX_RUN and its build of the module in the background, with
# a Redis and a PostgreSQL of their own (the same suite may be running
# against Debian's nginx at the same time, with the same keys and rows),
# output to MATRIX_LOG; matrix_finish waits for them.  Four at a time:
# they wait far more than they compute (timeouts, flush intervals, stopped
# backends: 20 suites take ~220 s one by one, ~85 s four at a time, on 2
# cores), and each has its own Test::Nginx port and server root
# (t/bin/run-apart) and its own backends, or keys of its own.  Under
# valgrind they compute: one per core.
matrix_start() {
    local tmp=$1 lib=() jobs=4; shift
    [ -z "${TEST_NGINX_USE_VALGRIND:-}" ] || jobs=$(nproc)
    while (($#)) && [ "$1" != -- ]; do
        [ "$1" = -I ] && { lib+=("$2"); shift; }
        shift
    done
    shift
    lib+=("$ROOT/t/lib")
    MATRIX_COUNT=$#

    # start_redis and start_pg set REDIS_PID and PG_DIR, which the EXIT
    # trap stops: keep the first ones
    local rport pport first_redis=$REDIS_PID first_pg=$PG_DIR
    rport=$(free_port)
    pport=$(free_port)
    start_redis "$tmp/redis-$NGX_MATRIX_RUN" "$rport"
    MATRIX_REDIS_PID=$REDIS_PID REDIS_PID=$first_redis
    start_pg "$tmp/pg-$NGX_MATRIX_RUN" "$pport"
    MATRIX_PG_DIR=$PG_DIR PG_DIR=$first_pg
    test_db "$pport"

    log "against nginx $NGX_MATRIX_RUN (built from source, $MATRIX_NGINX): the $# suites that load the module, $jobs at a time, in the background (redis on 127.0.0.1:$rport, postgres on 127.0.0.1:$pport)"
    MATRIX_LOG=$tmp/prove-$NGX_MATRIX_RUN.log
    MATRIX_START=$SECONDS
    (
        IFS=:
        export PERL5LIB="${lib[*]}${PERL5LIB:+:$PERL5LIB}"
        export TEST_NGINX_BINARY=$MATRIX_NGINX
        export TEST_NGINX_MODULE_PATH=$MATRIX_MODULE
        export TEST_NGINX_REDIS_PORT=$rport
        export TEST_NGINX_PG_PORT=$pport
        export TEST_NGINX_PG_CONNINFO="host=127.0.0.1 port=$pport user=postgres dbname=vodlms"
        export VODLMS_APART_DIR=$tmp/apart-$NGX_MATRIX_RUN
        exec prove --timer -j"$jobs" --exec "$ROOT/t/bin/run-apart" "$@"
    ) >"$MATRIX_LOG" 2>&1 &
    MATRIX_PROVE_PID=$!
}

# matrix_finish: waits for matrix_start's suites, shows their output and
# stops their backends.  Sets MATRIX_FAILED to the suites that failed.
matrix_finish() {
    local rc=0
    kill -0 "$MATRIX_PROVE_PID" 2>/dev/null \
        && log "against nginx $NGX_MATRIX_RUN: waiting for its suites"
    wait "$MATRIX_PROVE_PID" || rc=$?
    MATRIX_PROVE_PID=""
    log "against nginx $NGX_MATRIX_RUN (built from source): its prove run"
    cat "$MATRIX_LOG"
    MATRIX_FAILED=$(sed -n '/^Test Summary Report/,$ s/^\(t\/[^ ]*\.t\) .*/\1/p' "$MATRIX_LOG" | paste -sd' ')
    log "against nginx $NGX_MATRIX_RUN: $MATRIX_COUNT suites in $(sed -n 's/^Files=.* \([0-9]*\) wallclock secs.*/\1/p' "$MATRIX_LOG") s, done $((SECONDS - MATRIX_START)) s after they started"
    stop_pid "$MATRIX_REDIS_PID"
    stop_pg_dir "$MATRIX_PG_DIR"
    MATRIX_REDIS_PID="" MATRIX_PG_DIR=""
    return "$rc"
}

# ---------------------------------------------------------------- run

# Where `./build.sh run` keeps its state (database, Redis, nginx's logs,
# pid and temp files, the origin, uploads, the demo key):
#   VODLMS_VAR, if set;
#   var/ in the checkout when the processes that use it can reach it: always
#     for an ordinary user, since everything then runs as that user (nginx's
#     workers too); as root, when postgres and nobody (nginx's workers) can
#     reach the checkout;
#   otherwise (root, checkout in /root or another 0700 directory)
#     /var/lib/vodlms-dev/<name>-<hash of the checkout's path>/, mode 0755.
state_dir() {
    if [ -n "${VODLMS_VAR:-}" ]; then
        printf '%s\n' "$VODLMS_VAR"
    elif ! is_root || { user_can postgres -x "$ROOT" && user_can nobody -x "$ROOT"; }; then
        printf '%s\n' "$ROOT/var"
    else
        printf '/var/lib/vodlms-dev/%s-%s\n' "$(basename "$ROOT")" \
            "$(printf '%s' "$ROOT" | sha256sum | cut -c1-10)"
    fi
}

cmd_run() {
    # the player needs hls.js; the other npm fixtures are for the tests
    cmd_deps docs/examples/player
    # VODLMS_SKIP_BUILD=1: run the module and helper already in $BUILD as
    # they are (t/160-checkout-0700.t, which copies them from its build)
    if [ "${VODLMS_SKIP_BUILD:-0}" = 1 ]; then
        [ -f "$MODULE_SO" ] && [ -x "$BUILD/helper/vodlms-helper" ] \
            || die "VODLMS_SKIP_BUILD=1 but no $MODULE_SO and $BUILD/helper/vodlms-helper"
    else
        cmd_build
    fi

    # the services share files (the helper writes what nginx's workers serve)
    umask 022
    local var; var=$(state_dir)
    local redis_port=${VODLMS_REDIS_PORT:-16379}
    local pg_port=${VODLMS_PG_PORT:-15432}
    local http_port=${VODLMS_HTTP_PORT:-8080}
    local sample_secs=${VODLMS_RUN_SAMPLE_SECONDS:-90}
    NGINX_PID="" REDIS_PID="" PG_DIR="" HELPER_PID=""

    case $var in /var/lib/vodlms-dev/*) install -d -m 755 /var/lib/vodlms-dev ;; esac
    mkdir -p "$var"
    chmod 755 "$var"
    var=$(cd "$var" && pwd)
    if is_root; then
        local u
        for u in postgres nobody; do
            user_can "$u" -x "$var" \
                || die "$var: the user $u cannot reach it (a parent directory is not searchable); set VODLMS_VAR to a directory it can reach"
        done
    fi
    mkdir -p "$var/nginx" "$var/redis" "$var/origin" "$var/spool" "$var/upload-tmp"
    chmod 755 "$var/nginx" "$var/origin"
    # nginx's workers write uploads (nobody when run as root), the helper reads
    chmod 777 "$var/spool" "$var/upload-tmp"
    trap 'log "stopping"; stop_pid "$NGINX_PID"; stop_pid "$HELPER_PID"; stop_pid "$REDIS_PID"; stop_pg' EXIT
    trap 'exit 0' INT TERM

    # nginx's workers serve the player: as root they are nobody, which may
    # not read the checkout; then they serve a copy in the state directory
    local player=$ROOT/docs/examples/player
    if is_root && ! user_can nobody -r "$player/node_modules/hls.js/dist/hls.min.js"; then
        rm -rf "$var/player"
        cp -R "$player" "$var/player"
        chmod -R a+rX "$var/player"
        player=$var/player
    fi

    log "state in $var (redis on 127.0.0.1:$redis_port, postgres on 127.0.0.1:$pg_port, nginx on 127.0.0.1:$http_port)"
    start_redis "$var/redis" "$redis_port"
    start_pg "$var/pg" "$pg_port"

    local conninfo="host=127.0.0.1 port=$pg_port user=postgres dbname=vodlms"
    local fresh_db=0
    if ! psql -h 127.0.0.1 -p "$pg_port" -U postgres -tAc "select 1 from pg_database where datname='vodlms'" | grep -q 1; then
        psql -h 127.0.0.1 -p "$pg_port" -U postgres -qc 'create database vodlms'
        fresh_db=1
    fi
    if ((fresh_db)); then
        "$ROOT/sql/migrate.sh" "$conninfo" --seed >/dev/null
        # the seed lists the demo lecture as ready; here it is real only
        # once the helper has transcoded the sample uploaded below
        psql -h 127.0.0.1 -p "$pg_port" -U postgres -d vodlms -qc \
            "update vodlms.videos set status = 'queued', progress_percent = 0 where id = 'intro-ready'"
    else
        # later runs keep the database (and the demo lecture's row); one from
        # before schemas has vodlms in public, which the demo config does not
        # name: migrate.sh refuses it (exit 3)
        local mrc=0
        "$ROOT/sql/migrate.sh" "$conninfo" >/dev/null || mrc=$?
        if ((mrc == 3)); then
            die "run: the demo database in $var/pg is from before vodlms had its own schema; stop, remove $var/pg and run again (a fresh demo database)"
        elif ((mrc != 0)); then
            die "run: sql/migrate.sh failed (exit $mrc)"
        fi
    fi

    # demo sessions, written the way an LMS writes them (ids from sql/seed/demo.sql)
    redis-cli -p "$redis_port" set session:demo-alice '{"user_id":"1001","role":"student","email":"alice@example.com"}' >/dev/null
    redis-cli -p "$redis_port" set session:demo-bob '{"user_id":"1002","role":"student","email":"bob@example.com"}' >/dev/null
    redis-cli -p "$redis_port" set session:demo-carol '{"user_id":"1003","role":"instructor","email":"carol@example.com"}' >/dev/null

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
        -e "s|@COOKIE_SECURE@|off|g" -e "s|@PLAYER@|$player|g" \
        -e "s|@PUB_KEY_FILE@|$var/keys/cloudfront.pub.pem|g" -e "s|@ORIGIN@|$var/origin|g" \
        "$ROOT/docs/examples/nginx.conf" > "$var/nginx/nginx.conf"

    "$NGINX_BIN" -t -q -p "$var/nginx" -c "$var/nginx/nginx.conf" -e "$var/nginx/error.log" \
        || die "nginx -t failed for $var/nginx/nginx.conf"

    # a direct child, not a daemon: Ctrl-C stops it with everything else
    "$NGINX_BIN" -p "$var/nginx" -c "$var/nginx/nginx.conf" -e "$var/nginx/error.log" \
        -g 'daemon off;' &
    NGINX_PID=$!

    local i
    for i in $(seq 1 100); do
        curl -fsS -o /dev/null "http://127.0.0.1:$http_port/player/" 2>/dev/null && break
        kill -0 "$NGINX_PID" 2>/dev/null || die "nginx exited; see $var/nginx/error.log"
        sleep 0.05
    done
    curl -fsS -o /dev/null "http://127.0.0.1:$http_port/player/" \
        || die "nginx does not serve http://127.0.0.1:$http_port/player/; see $var/nginx/error.log"

    # the transcoding helper, publishing to the local origin the edge serves
    cat > "$var/helper.conf" <<CONF
redis_host = 127.0.0.1
redis_port = $redis_port
pg_conninfo = "$conninfo"
source_root = $var/spool
origin_dir = $var/origin
publish = local
preset = veryfast
max_height = 720
log_level = info
# the demo lecture is AES-128 encrypted: its keys stay in PostgreSQL and
# nginx's /vodlms/keys/ location (docs/examples/nginx.conf) serves them
encrypt = on
CONF
    "$BUILD/helper/vodlms-helper" --config "$var/helper.conf" 2>>"$var/helper.log" &
    HELPER_PID=$!

    # the sample lecture, uploaded through the real endpoint as the
    # instructor, unless the database says it is ready (a previous run)
    local st
    st=$(psql -h 127.0.0.1 -p "$pg_port" -U postgres -d vodlms -tAc \
         "select status from vodlms.videos where id = 'intro-ready'")
    if [ "$st" != ready ]; then
        local sample=$var/sample-${sample_secs}s.mp4
        if [ ! -f "$sample" ]; then
            log "making a $sample_secs s 720p sample lecture with ffmpeg"
            ffmpeg -hide_banner -loglevel error -y \
                -f lavfi -i "testsrc2=size=1280x720:rate=25:duration=$sample_secs" \
                -f lavfi -i "sine=frequency=440:duration=$sample_secs" \
                -c:v libx264 -preset ultrafast -crf 23 -pix_fmt yuv420p \
                -c:a aac -b:a 128k -shortest "$sample.tmp.mp4"
            mv "$sample.tmp.mp4" "$sample"
        fi

        log "uploading it as carol (instructor) through /api/videos/intro-ready/upload"
        curl -fsS -X POST -H 'Cookie: session=demo-carol' -H 'X-Title: Lecture 1: What is a video codec?' \
            --data-binary "@$sample" \
            "http://127.0.0.1:$http_port/api/videos/intro-ready/upload?course=course-intro" >/dev/null \
            || die "the upload failed; see $var/nginx/error.log"

        for i in $(seq 1 900); do
            st=$(psql -h 127.0.0.1 -p "$pg_port" -U postgres -d vodlms -tAc \
                 "select status || ' ' || progress_percent from vodlms.videos where id = 'intro-ready'")
            printf '\r==> transcoding: %-24s' "$st" >&2
            case $st in ready*|failed*) break ;; esac
            kill -0 "$HELPER_PID" 2>/dev/null || die "vodlms-helper exited; see $var/helper.log"
            sleep 1
        done
        echo >&2
        case $st in ready*) ;; *) die "the sample lecture did not become ready ($st); see $var/helper.log" ;; esac
    fi

    # its captions (docs/examples/captions: English WebVTT, French SRT),
    # uploaded through the caption endpoint as carol, unless both are
    # published already (a previous run); the helper adds them to the
    # lecture's master playlist without re-encoding it
    local caps
    caps=$(psql -h 127.0.0.1 -p "$pg_port" -U postgres -d vodlms -tAc \
           "select count(*) from vodlms.video_captions where video_id = 'intro-ready' and vtt is not null")
    if [ "$caps" != 2 ]; then
        log "uploading its captions (en, fr) as carol through /api/videos/intro-ready/captions/<lang>"
        curl -fsS -X POST -H 'Cookie: session=demo-carol' \
            --data-binary "@$ROOT/docs/examples/captions/intro.en.vtt" \
            "http://127.0.0.1:$http_port/api/videos/intro-ready/captions/en?course=course-intro&label=English&default=1" >/dev/null \
            || die "the caption upload failed; see $var/nginx/error.log"
        curl -fsS -X POST -H 'Cookie: session=demo-carol' \
            --data-binary "@$ROOT/docs/examples/captions/intro.fr.srt" \
            "http://127.0.0.1:$http_port/api/videos/intro-ready/captions/fr?course=course-intro&label=Fran%C3%A7ais" >/dev/null \
            || die "the caption upload failed; see $var/nginx/error.log"
        for i in $(seq 1 60); do
            st=$(psql -h 127.0.0.1 -p "$pg_port" -U postgres -d vodlms -tAc \
                 "select string_agg(lang || ' ' || status, ', ' order by lang) from vodlms.video_captions
                   where video_id = 'intro-ready' and status in ('ready', 'failed')")
            case $st in *", "*) break ;; esac
            kill -0 "$HELPER_PID" 2>/dev/null || die "vodlms-helper exited; see $var/helper.log"
            sleep 0.5
        done
        case $st in "en ready, fr ready") ;; *) die "the demo captions were not published ($st); see $var/helper.log" ;; esac
    fi

    cat <<MSG

vodlms is running: open http://127.0.0.1:$http_port/player/  (Ctrl-C stops everything)

Demo accounts (log in with the buttons on the page; sessions in Redis, as an LMS writes them):
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

State: $var (database, Redis, origin, uploads, demo key; kept between runs)
Logs: $var/nginx/error.log and access.log, $var/helper.log; config: $var/nginx/nginx.conf
MSG
    wait "$NGINX_PID" || true
}

# ---------------------------------------------------------------- bench

# wrk against loopback, each scenario next to a baseline measured in the
# same run (same nginx, same config, same machine state).  Speed is
# measured here, never asserted in tests.
# Scenario 5 of cmd_bench (issue #18): 1000 enrolled students play with no
# enrollment cache (a query each) while one student floods made-up video
# ids.  The students' req/s and p50 during the flood, without and with
# vodlms_user_query_limit, as ratios of the quiet run just before.
bench_user_flood() {
    local tmp=$1 base=$2 conninfo=$3 redis_port=$4
    local secs=${VODLMS_BENCH_SECONDS:-10} students=1000 i

    psql "$conninfo" -q >/dev/null <<SQL
INSERT INTO vodlms.users (id, email, display_name, role)
    SELECT 'bench-' || g, 'bench-' || g || '@example.com', 'Bench ' || g, 'student'
    FROM generate_series(1, $students) g ON CONFLICT DO NOTHING;
INSERT INTO vodlms.enrollments (user_id, course_id, status, enrolled_at)
    SELECT 'bench-' || g, 'course-intro', 'active', now()
    FROM generate_series(1, $students) g ON CONFLICT DO NOTHING;
SQL
    for ((i = 1; i <= students; i++)); do
        printf "SET session:bench-%d '{\"user_id\":\"bench-%d\"}'\n" "$i" "$i"
    done | redis-cli -p "$redis_port" >/dev/null
    redis-cli -p "$redis_port" set session:flooder '{"user_id":"1002"}' >/dev/null

    cat > "$tmp/students.lua" <<LUA
request = function()
    return wrk.format(nil, nil, { Cookie = "session=bench-" .. math.random($students) })
end
LUA
    cat > "$tmp/flood.lua" <<'LUA'
request = function()
    local path = wrk.path:gsub("RANDOM", tostring(math.random(1000000000)))
    return wrk.format(nil, path, { Cookie = "session=flooder" })
end
LUA

    # students [url] -> "req/s p50 p99 non2xx"
    students() {
        wrk -t1 -c20 -d"${secs}s" --latency -s "$tmp/students.lua" "$1" 2>/dev/null \
            | awk '/Requests\/sec/ {rps=$2} $1=="50%" {p50=$2} $1=="99%" {p99=$2}
                   /Non-2xx/ {bad=$NF} END {printf "%s %s %s %s\n", rps, p50, p99, bad+0}'
    }
    # enrollment queries PostgreSQL has run (it logs every statement)
    queries() { awk '/execute vodlms_q/ { n++ } END { print n + 0 }' "$tmp/pg/server.log"; }
    # ... of them the flooder's (user 1002: the statement log's parameters)
    flood_queries() { awk "/parameters: .*= '1002'/ { n++ } END { print n + 0 }" "$tmp/pg/server.log"; }
    # the flood runs from a second before the students until after them;
    # -> the students' figures, then the flood's req/s and non-2xx, then
    #    PostgreSQL's enrollment queries per second over the students' run
    flooded() {
        local prefix=$1 out q0 q1 f0 f1
        f0=$(flood_queries)
        if [ "$prefix" != quiet ]; then
            wrk -t1 -c8 -d"$((secs + 3))s" -s "$tmp/flood.lua" \
                "$base/$prefix/videos/RANDOM/stream" > "$tmp/flood.out" 2>&1 &
            local fpid=$!
            sleep 1
        else
            prefix=uq-on
            printf 'Requests/sec: 0\n' > "$tmp/flood.out"
        fi
        q0=$(queries)
        out=$(students "$base/$prefix/videos/intro-ready/stream")
        q1=$(queries)
        [ -z "${fpid:-}" ] || wait "$fpid"
        f1=$(flood_queries)
        printf '%s %s %s %s %s\n' "$out" \
            "$(awk '/Requests\/sec/ {print $2}' "$tmp/flood.out")" \
            "$(awk '/Non-2xx/ {n = $NF} END {print n + 0}' "$tmp/flood.out")" \
            "$(( (q1 - q0) / secs ))" "$(( (f1 - f0) / (secs + 3) ))"
    }
    ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) v = v / 1000; else if (v ~ /ms$/) v = v + 0;
                                   else if (v ~ /s$/) v = v * 1000; printf "%.3f", v }'; }

    log "bench: one student's flood vs everyone else's playback"
    students "$base/uq-on/videos/intro-ready/stream" >/dev/null   # warm-up
    local quiet off on
    quiet=$(flooded quiet)
    off=$(flooded uq-off)
    on=$(flooded uq-on)

    awk -v n="$students" -v q="$quiet" -v off="$off" -v on="$on" \
        -v q50="$(ms "$(cut -d' ' -f2 <<<"$quiet")")" \
        -v off50="$(ms "$(cut -d' ' -f2 <<<"$off")")" \
        -v on50="$(ms "$(cut -d' ' -f2 <<<"$on")")" 'BEGIN {
        split(q, Q, " "); split(off, F, " "); split(on, N, " ")
        printf "\n5. %d students, uncached playback, while one student floods made-up ids\n", n
        printf "   %-34s %10s %9s %9s %7s %9s\n", "students:", "req/s", "p50", "p99", "non2xx", "PG q/s"
        printf "   %-34s %10s %9s %9s %7s %9s\n", "quiet", Q[1], Q[2], Q[3], Q[4], Q[7]
        printf "   %-34s %10s %9s %9s %7s %9s  req/s %.3fx, p50 %.2fx of quiet; flood %s req/s (all 404), %s of its queries/s\n",
               "flood, no vodlms_user_query_limit", F[1], F[2], F[3], F[4], F[7], F[1] / Q[1], off50 / q50, F[5], F[8]
        printf "   %-34s %10s %9s %9s %7s %9s  req/s %.3fx, p50 %.2fx of quiet; flood %s req/s (%s of them 429), %s of its queries/s\n",
               "flood, limit 50r/s burst=50", N[1], N[2], N[3], N[4], N[7], N[1] / Q[1], on50 / q50, N[5], N[6], N[8]
    }'
    echo "   command: VODLMS_BENCH_SECONDS=$secs ./build.sh bench  (students: wrk -t1 -c20 over $students sessions; flood: wrk -t1 -c8, one session, a random id each request; PG q/s: enrollment queries PostgreSQL ran during the students' run; the flood's own queries/s counted by its user id in the statement log)"
}

cmd_bench() {
    cmd_deps
    command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
    cmd_build

    local secs=${VODLMS_BENCH_SECONDS:-10} conns=${VODLMS_BENCH_CONNECTIONS:-50}
    local tmp; tmp=$(mktemp -d /tmp/vodlms-bench.XXXXXX)
    chmod 755 "$tmp"
    NGINX_PID="" REDIS_PID="" PG_DIR=""
    # shellcheck disable=SC2064
    trap "stop_pid \"\$NGINX_PID\"; stop_pid \"\$REDIS_PID\"; stop_pg; rm -rf '$tmp'" EXIT
    trap 'exit 130' INT TERM

    local redis_port pg_port port
    redis_port=$(free_port); pg_port=$(free_port); port=$(free_port)
    start_redis "$tmp/redis" "$redis_port"
    start_pg "$tmp/pg" "$pg_port"
    psql -h 127.0.0.1 -p "$pg_port" -U postgres -qc 'create database vodlms' >/dev/null
    local conninfo="host=127.0.0.1 port=$pg_port user=postgres dbname=vodlms"
    "$ROOT/sql/migrate.sh" "$conninfo" --seed >/dev/null
    redis-cli -p "$redis_port" set session:bench '{"user_id":"1001"}' >/dev/null

    local key=$ROOT/../shared/vectors/cloudfront/test_private_key.pem
    local pub=$ROOT/../shared/vectors/cloudfront/test_public_key.pem
    [ -f "$key" ] || die "bench: no test key at $key"

    mkdir -p "$tmp/nginx/logs" "$tmp/html/hls/intro-ready" "$tmp/html/plain/hls/intro-ready"
    head -c 376000 /dev/urandom > "$tmp/html/hls/intro-ready/seg_00001.ts"
    cp "$tmp/html/hls/intro-ready/seg_00001.ts" "$tmp/html/plain/hls/intro-ready/"
    mkdir -p "$tmp/html/sl/hls/intro-ready"
    cp "$tmp/html/hls/intro-ready/seg_00001.ts" "$tmp/html/sl/hls/intro-ready/"

    # scenario 7c-7e's ECDSA P-256 key pair
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/ec-private.pem" 2>/dev/null \
        && openssl pkey -in "$tmp/ec-private.pem" -pubout -out "$tmp/ec-public.pem" 2>/dev/null \
        || die "bench: openssl could not make an ECDSA P-256 key"

    # a 60-minute lecture's variant playlist: 900 segments of 4 s (~40 KB)
    mkdir -p "$tmp/html/playlist"
    {
        printf '#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n'
        printf '#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n'
        for i in $(seq 1 900); do
            printf '#EXTINF:%d.%06d,\nseg_%05d.ts\n' 4 $(( (i * 7919) % 1000000 )) "$i"
        done
        printf '#EXT-X-ENDLIST\n'
    } > "$tmp/html/playlist/index.m3u8"

    cat > "$tmp/nginx/nginx.conf" <<EOF
load_module $MODULE_SO;
worker_processes 1;
error_log $tmp/nginx/logs/error.log warn;
pid $tmp/nginx/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;

    vodlms_redis 127.0.0.1:$redis_port pool_size=8;
    vodlms_pg "$conninfo" pool_size=8;
    vodlms_cache_zone zone=answers:10m;
    vodlms_progress_zone zone=progress:10m flush=10s;
    vodlms_user_query_zone zone=bench_users:1m rate=50r/s;

    server {
        listen 127.0.0.1:$port backlog=4096;

        location = /baseline/200 { return 200 "ok\n"; }
        location = /baseline/204 { return 204; }

        # 1. warm caches: session, enrollment and signature answers cached
        location ~ ^/warm/videos/(?<vid>[^/]+)/stream\$ {
            vodlms_auth on;
            vodlms_session_cache answers valid=10m;
            vodlms_enrollment_check on;
            vodlms_video_id \$vid;
            vodlms_enrollment_cache answers valid=10m;
            vodlms_cloudfront_url https://cdn.example.test;
            vodlms_cloudfront_key K2JCJMDEHXQW5F $key;
            vodlms_cloudfront_signature_cache answers;
            vodlms_playback cookies;
        }

        # 2. no caches: Redis, PostgreSQL and RSA on every request
        location ~ ^/cold/videos/(?<vid>[^/]+)/stream\$ {
            vodlms_auth on;
            vodlms_enrollment_check on;
            vodlms_video_id \$vid;
            vodlms_cloudfront_url https://cdn.example.test;
            vodlms_cloudfront_key K2JCJMDEHXQW5F $key;
            vodlms_playback cookies;
        }

        # 3. segments: edge-verified, plain, and nginx's secure_link
        location /hls/ {
            vodlms_edge on;
            vodlms_edge_url https://cdn.example.test;
            vodlms_edge_public_key K2JCJMDEHXQW5F $pub;
            vodlms_edge_signature_cache answers;
            root $tmp/html;
        }
        location /plain/ { root $tmp/html; }

        # 7. signed playlists (issue #20): a 60-minute lecture's variant
        #    playlist signed per request, against the same file static
        location /hls/intro-ready/signed/ {
            vodlms_edge on;
            vodlms_edge_url https://cdn.example.test;
            vodlms_edge_public_key K2JCJMDEHXQW5F $pub;
            vodlms_edge_signature_cache answers;
            vodlms_hls_sign on;
            alias $tmp/html/playlist/;
        }
        location /static-playlist/ { alias $tmp/html/playlist/; }
        # 7c-7e: an ECDSA P-256 key (CloudFront takes them since 2025: a
        # 64-byte signature instead of 256) and, as CloudFront and
        # browsers do, gzip, on the static file as much as on the answer
        location /hls/intro-ready/signed-ec/ {
            vodlms_edge on;
            vodlms_edge_url https://cdn.example.test;
            vodlms_edge_public_key KECDSABENCH01 $tmp/ec-public.pem;
            vodlms_edge_signature_cache answers;
            vodlms_hls_sign on;
            types { application/vnd.apple.mpegurl m3u8; }
            gzip on;
            gzip_types application/vnd.apple.mpegurl;
            alias $tmp/html/playlist/;
        }
        # 7f: protocol version 8's variable substitution (hls.js, players
        #     of version 8): the parameters once, "{\$vodlms}" per URI
        location /hls/intro-ready/signed-v8/ {
            vodlms_edge on;
            vodlms_edge_url https://cdn.example.test;
            vodlms_edge_public_key K2JCJMDEHXQW5F $pub;
            vodlms_edge_signature_cache answers;
            vodlms_hls_sign define;
            alias $tmp/html/playlist/;
        }
        location /static-playlist-gz/ {
            types { application/vnd.apple.mpegurl m3u8; }
            gzip on;
            gzip_types application/vnd.apple.mpegurl;
            alias $tmp/html/playlist/;
        }
        location ~ ^/url-ec/videos/(?<vid>[^/]+)/stream\$ {
            vodlms_auth on;
            vodlms_session_cache answers valid=10m;
            vodlms_enrollment_check on;
            vodlms_video_id \$vid;
            vodlms_enrollment_cache answers valid=10m;
            vodlms_cloudfront_url https://cdn.example.test;
            vodlms_cloudfront_key KECDSABENCH01 $tmp/ec-private.pem;
            vodlms_playback url;
        }
        location ~ ^/url/videos/(?<vid>[^/]+)/stream\$ {
            vodlms_auth on;
            vodlms_session_cache answers valid=10m;
            vodlms_enrollment_check on;
            vodlms_video_id \$vid;
            vodlms_enrollment_cache answers valid=10m;
            vodlms_cloudfront_url https://cdn.example.test;
            vodlms_cloudfront_key K2JCJMDEHXQW5F $key;
            vodlms_playback url;
        }
        location /sl/ {
            secure_link \$arg_md5,\$arg_expires;
            secure_link_md5 "\$secure_link_expires\$uri bench-secret";
            if (\$secure_link = "") { return 403; }
            root $tmp/html;
        }

        # 8. keys of encrypted HLS (issue #22): session, enrollment and key
        #    cached; then with the budget and pace limit (one EVAL a fetch)
        location ~ "^/vodlms/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\\.key\$" {
            vodlms_auth on;
            vodlms_session_cache answers valid=10m;
            vodlms_enrollment_check on;
            vodlms_video_id \$kv;
            vodlms_enrollment_cache answers valid=10m;
            vodlms_hls_key \$kver \$kk log=info;
            vodlms_hls_key_cache answers;
        }
        location ~ "^/limited/keys/(?<kv>[A-Za-z0-9_-]{1,64})/(?<kver>[A-Za-z0-9_.-]{1,64})/(?<kk>[0-9]{1,9})\\.key\$" {
            vodlms_auth on;
            vodlms_session_cache answers valid=10m;
            vodlms_enrollment_check on;
            vodlms_video_id \$kv;
            vodlms_enrollment_cache answers valid=10m;
            vodlms_hls_key \$kver \$kk budget=1000000/10s pace=2x log=info;
            vodlms_hls_key_cache answers;
        }

        # 4. beacons
        location ~ ^/api/videos/(?<vid>[^/]+)/progress\$ {
            vodlms_auth on;
            vodlms_session_cache answers valid=10m;
            vodlms_enrollment_check on;
            vodlms_video_id \$vid;
            vodlms_enrollment_cache answers valid=10m;
            vodlms_progress on;
            vodlms_progress_rate off;
        }

        # 5. one student's flood of made-up ids vs everyone else's uncached
        #    playback, without and with the per-user query limit (issue #18)
        location ~ ^/uq-off/videos/(?<vid>[^/]+)/stream\$ {
            vodlms_auth on;
            vodlms_session_cache answers valid=10m;
            vodlms_enrollment_check on;
            vodlms_video_id \$vid;
            vodlms_cloudfront_url https://cdn.example.test;
            vodlms_cloudfront_key K2JCJMDEHXQW5F $key;
            vodlms_cloudfront_signature_cache answers;
            vodlms_playback cookies;
        }
        location ~ ^/uq-on/videos/(?<vid>[^/]+)/stream\$ {
            vodlms_auth on;
            vodlms_session_cache answers valid=10m;
            vodlms_enrollment_check on;
            vodlms_video_id \$vid;
            vodlms_cloudfront_url https://cdn.example.test;
            vodlms_cloudfront_key K2JCJMDEHXQW5F $key;
            vodlms_cloudfront_signature_cache answers;
            vodlms_playback cookies;
            vodlms_user_query_limit zone=bench_users burst=50;
        }
    }
}
EOF
    "$NGINX_BIN" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/logs/error.log" -g 'daemon off;' &
    NGINX_PID=$!
    local i
    for i in $(seq 1 100); do
        curl -fsS -o /dev/null "http://127.0.0.1:$port/baseline/200" 2>/dev/null && break
        sleep 0.05
    done

    local base="http://127.0.0.1:$port"
    local cookie="Cookie: session=bench"

    # credentials for the segment scenarios, from the playback endpoint itself
    local cf
    cf=$(curl -s -D - -o /dev/null -H "$cookie" "$base/warm/videos/intro-ready/stream" \
         | sed -n 's/^Set-Cookie: \(CloudFront-[^;]*\);.*/\1/p' | paste -sd';' | sed 's/;/; /g')
    local exp=$(( $(date +%s) + 3600 ))
    local md5
    md5=$(printf '%s' "$exp/sl/hls/intro-ready/seg_00001.ts bench-secret" | openssl md5 -binary \
          | openssl base64 | tr +/ -_ | tr -d =)

    cat > "$tmp/beacon.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"videoId":"intro-ready","currentTime":120,"duration":634.5,"event":"tick"}'
wrk.headers["Content-Type"] = "text/plain"
EOF

    # run NAME URL [wrk args...] -> "req/s p50 p99" on stdout
    run() {
        local url=$1; shift
        wrk -t1 -c"$conns" -d2s "$@" "$url" >/dev/null 2>&1       # warm-up
        wrk -t1 -c"$conns" -d"${secs}s" --latency "$@" "$url" 2>/dev/null \
            | awk '/Requests\/sec/ {rps=$2} $1=="50%" {p50=$2} $1=="99%" {p99=$2}
                   /Non-2xx/ {bad=$NF} END {printf "%s %s %s %s\n", rps, p50, p99, bad+0}'
    }

    worker_rss() {
        local w; w=$(pgrep -P "$NGINX_PID" | head -1)
        awk '/VmRSS/ {print $2}' "/proc/${w:-$NGINX_PID}/status"
    }

    local rss_before; rss_before=$(worker_rss)

    # 5. A full progress zone during a database outage (issue #18).  Its own
    # nginx (one worker): the enrollment answers are cached while
    # PostgreSQL is up (GETs make no entry), then PostgreSQL stops and one
    # client fills the zone with entries that cannot be flushed.  Other
    # users' beacons (entries the zone has, accepted) are measured alone,
    # then next to a flood of beacons for new entries (refused 503), both
    # at a fixed rate (wrk's delay()), so latency is measured, not the
    # most the worker can take.  The figure: the others' p50 and p99 with
    # the flood over without it, per round.
    bench_full_zone() {
        local fz=${VODLMS_BENCH_FULL_ZONE:-32m} fill=${VODLMS_BENCH_FULL_ENTRIES:-140000}
        local fw=${VODLMS_BENCH_FULL_WORKERS:-1}
        local others=50 flooders=1000 fport fdir=$tmp/full fpid r
        fport=$(free_port)
        mkdir -p "$fdir/logs"
        cat > "$fdir/nginx.conf" <<EOF
load_module $MODULE_SO;
worker_processes $fw;
error_log $fdir/logs/error.log warn;
pid $fdir/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $fdir/body;
    proxy_temp_path $fdir/proxy;
    fastcgi_temp_path $fdir/fastcgi;
    uwsgi_temp_path $fdir/uwsgi;
    scgi_temp_path $fdir/scgi;

    vodlms_redis 127.0.0.1:$redis_port pool_size=8;
    vodlms_pg "$conninfo" pool_size=8;
    vodlms_cache_zone zone=answers:64m;
    vodlms_progress_zone zone=progress:$fz flush=2s;

    server {
        listen 127.0.0.1:$fport backlog=4096;
        keepalive_requests 1000000;     # pipe.pl: thousands per connection
        location ~ ^/api/videos/(?<vid>[^/]+)/progress\$ {
            vodlms_auth on;
            vodlms_session_cache answers valid=1h;
            vodlms_enrollment_check on;
            vodlms_video_id \$vid;
            # any video id is enrolled: one client can open many entries
            vodlms_enrollment_query "SELECT \$1::text AS id" \$vodlms_video_id;
            vodlms_enrollment_cache answers valid=1h;
            vodlms_progress on;
            vodlms_progress_rate off;
        }
        location = /metrics { vodlms_status; }
    }
}
EOF
        "$NGINX_BIN" -p "$fdir" -c "$fdir/nginx.conf" -e "$fdir/logs/error.log" -g 'daemon off;' &
        fpid=$!
        for r in $(seq 1 100); do
            curl -fsS -o /dev/null "http://127.0.0.1:$fport/metrics" 2>/dev/null && break
            sleep 0.05
        done

        # many requests, pipelined on 8 connections (wrk cannot stop after
        # N): "pipe.pl PORT METHOD prefix:from:to..." -> "status count" lines
        cat > "$fdir/pipe.pl" <<'EOF'
use strict; use warnings; use IO::Socket::INET;
my ($port, $method, @specs) = @ARGV;
my @ids = map { my ($p, $a, $b) = split /:/; map { "$p$_" } $a .. $b } @specs;
my $conns = 8;
my @kids;
for my $c (0 .. $conns - 1) {
    my @mine = @ids[grep { $_ % $conns == $c } 0 .. $#ids];
    pipe(my $rd, my $wr) or die $!;
    my $pid = fork // die $!;
    if (!$pid) {
        close $rd;
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port") or die $!;
        my %st;
        while (my @batch = splice @mine, 0, 100) {
            my $out = '';
            for my $v (@batch) {
                my $body = $method eq 'POST'
                    ? qq({"videoId":"$v","currentTime":120,"duration":634.5}) : '';
                $out .= "$method /api/videos/$v/progress HTTP/1.1\r\nHost: b\r\n"
                      . "Cookie: session=bench\r\nContent-Type: text/plain\r\n"
                      . "Content-Length: " . length($body) . "\r\n\r\n$body";
            }
            print $s $out;
            for (@batch) {
                local $/ = "\r\n\r\n";
                my $head = <$s> // die "connection closed\n";
                my ($code) = $head =~ m{^HTTP/1\.1 (\d+)};
                my ($len) = $head =~ /^Content-Length: (\d+)/mi;
                read $s, my $skip, $len if $len;
                $st{$code}++;
            }
        }
        print $wr "$_ $st{$_}\n" for keys %st;
        exit 0;
    }
    close $wr;
    push @kids, $rd;
}
my %all;
for my $rd (@kids) { while (<$rd>) { my ($k, $n) = split; $all{$k} += $n } }
wait for @kids;
print join(', ', map { "$all{$_} x $_" } sort keys %all), "\n";
EOF

        # a beacon script over a set of ids, at a fixed rate per connection
        rate_lua() {
            local prefix=$1 n=$2 ms=$3
            cat <<EOF
local i = 0
request = function()
  i = i % $n + 1
  local v = "$prefix" .. i
  return wrk.format("POST", "/api/videos/" .. v .. "/progress",
    { ["Cookie"] = "session=bench", ["Content-Type"] = "text/plain" },
    '{"videoId":"' .. v .. '","currentTime":120,"duration":634.5}')
end
delay = function() return $ms end
EOF
        }
        local oc=${VODLMS_BENCH_OTHERS_CONNECTIONS:-4} fc=${VODLMS_BENCH_FLOOD_CONNECTIONS:-10}
        rate_lua o "$others" 2 > "$fdir/others.lua"
        rate_lua x "$flooders" 9 > "$fdir/flood.lua"

        metric() {
            curl -s "http://127.0.0.1:$fport/metrics" | awk -v m="$1" '$1 == m { print $2 }'
        }

        log "bench: full zone: caching $((others + fill + flooders)) enrollment answers"
        echo "full zone, warm-up GETs: $(perl "$fdir/pipe.pl" "$fport" GET "o:1:$others" "f:1:$fill" "x:1:$flooders")" >&2
        # the outage (a fast shutdown: a smart one would wait for nginx's
        # pooled connections), then the other users' entries (dirty from
        # now on, so never evicted), then the zone filled
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR" -m fast -w stop >/dev/null
        log "bench: full zone: PostgreSQL stopped"
        perl "$fdir/pipe.pl" "$fport" POST "o:1:$others" >/dev/null
        local filled; filled=$(perl "$fdir/pipe.pl" "$fport" POST "f:1:$fill")
        local pending; pending=$(metric vodlms_progress_pending)
        # more refusals than the flood's own (its 503s prove the zone full)
        [ "$(metric vodlms_progress_refused_full_total)" -gt 0 ] \
            || { stop_pid "$fpid"; start_pg "$tmp/pg" "$pg_port"; die "bench: the zone of $fz did not fill with $fill entries: $filled"; }

        # wrk latency "123.45us" / "1.20ms" / "1.01s" -> ms
        lat() {
            wrk -t1 "$@" --latency 2>/dev/null | awk '
                function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
                /Requests\/sec/ {rps=$2} $1=="50%" {p50=ms($2)} $1=="99%" {p99=ms($2)}
                /Non-2xx/ {bad=$NF} END {printf "%s %.3f %.3f %s\n", rps, p50, p99, bad+0}'
        }

        local url="http://127.0.0.1:$fport/"
        wrk -t1 -c"$oc" -d2s -s "$fdir/others.lua" "$url" >/dev/null 2>&1     # warm-up
        declare -A F
        for ((k = 1; k <= rounds; k++)); do
            log "bench: full zone: round $k of $rounds"
            F[quiet]+="$(lat -c"$oc" -d"${secs}s" -s "$fdir/others.lua" "$url")"$'\n'
            lat -c"$fc" -d"$((secs + 3))s" -s "$fdir/flood.lua" "$url" > "$fdir/flood.out" &
            local flood=$!
            sleep 1
            F[flood]+="$(lat -c"$oc" -d"${secs}s" -s "$fdir/others.lua" "$url")"$'\n'
            wait "$flood"
            F[refused]+="$(cat "$fdir/flood.out")"$'\n'
        done

        local dirty_after; dirty_after=$(metric vodlms_progress_pending)
        stop_pid "$fpid"
        log "bench: full zone: PostgreSQL started again"
        start_pg "$tmp/pg" "$pg_port"

        fmed() { printf '%s' "${F[$1]}" | sort -n -k"$2,$2" | sed -n "$(( (rounds + 1) / 2 ))p" | cut -d' ' -f"$2"; }
        # the flood's figure over the quiet one, per round: median and all rounds
        fratio() {
            paste -d' ' <(printf '%s' "${F[flood]}" | cut -d' ' -f"$1") <(printf '%s' "${F[quiet]}" | cut -d' ' -f"$1") \
                | awk '$2 > 0 { printf "%.3f\n", $1 / $2 }' | sort -n \
                | awk '{ v[NR] = $1; all = all (NR > 1 ? " " : "") $1 } END { if (NR) printf "%.3fx (rounds: %s)", v[int((NR + 1) / 2)], all; else print "n/a" }'
        }
        printf '\n5. full zone during DB outage (zone %s: %s entries pending, all dirty; fill: %s; nginx: %s worker(s))\n' "$fz" "$pending" "$filled" "$fw"
        printf '   %-52s %9s %9s %9s %7s\n' "" req/s p50-ms p99-ms non2xx
        printf '   %-52s %9s %9s %9s %7s\n' "others' beacons, quiet (c$oc, 2 ms apart)" \
            "$(fmed quiet 1)" "$(fmed quiet 2)" "$(fmed quiet 3)" "$(fmed quiet 4)"
        printf '   %-52s %9s %9s %9s %7s\n' "others' beacons, next to the flood" \
            "$(fmed flood 1)" "$(fmed flood 2)" "$(fmed flood 3)" "$(fmed flood 4)"
        printf '   %-52s %9s %9s %9s %7s\n' "the flood: new entries, refused 503 (c$fc, 9 ms apart)" \
            "$(fmed refused 1)" "$(fmed refused 2)" "$(fmed refused 3)" "$(fmed refused 4)"
        echo "   others' p50 with the flood / quiet: $(fratio 2)"
        echo "   others' p99 with the flood / quiet: $(fratio 3)"
        echo "   entries pending after the runs: $dirty_after (nothing acknowledged was dropped)"
        echo "   command: VODLMS_BENCH_ONLY=fullzone VODLMS_BENCH_SECONDS=$secs VODLMS_BENCH_ROUNDS=$rounds ./build.sh bench  (VODLMS_BENCH_FULL_ZONE=$fz VODLMS_BENCH_FULL_ENTRIES=$fill VODLMS_BENCH_FULL_WORKERS=$fw)"
    }

    # 7. Signed playlists (issue #20): the variant playlist of a 60-minute
    # lecture (900 segments, ~40 KB) asked for with the custom-policy URL
    # "vodlms_playback url" issues, signed per request (every URI gets the
    # request's Policy/Key-Pair-Id/Signature; edge signature cache on),
    # next to the same file from a plain location, in the same round.
    bench_playlist() {
        local murl query size k
        murl=$(curl -s -H "$cookie" "$base/url/videos/intro-ready/stream" \
               | sed -n 's/.*"manifestUrl":"\([^"]*\)".*/\1/p')
        query=${murl#*\?}
        [ -n "$murl" ] && [ "$query" != "$murl" ] || die "bench: playlist: no manifest URL from vodlms_playback url"
        local surl="$base/hls/intro-ready/signed/index.m3u8?$query"
        local purl="$base/static-playlist/index.m3u8"
        size=$(curl -s -H "Host: cdn.example.test" "$surl" | grep -c "^seg_[0-9]*\.ts?$query\$" || true)
        [ "$size" = 900 ] || die "bench: playlist: the signed playlist has $size of 900 segments signed"
        # the signed bytes as a static file too: what sending them costs
        # with no signing at all (every URI gains ~570 bytes of Policy,
        # Key-Pair-Id and Signature: the answer is ~19 times the file)
        curl -s -H "Host: cdn.example.test" "$surl" > "$tmp/html/playlist/signed-bytes.m3u8"
        local burl="$base/static-playlist/signed-bytes.m3u8"
        # 7c-7e: the URL an ECDSA key signs; gzip for both sides
        local eurl equery gz="Accept-Encoding: gzip" ecsize gzsize gzstatic
        eurl=$(curl -s -H "$cookie" "$base/url-ec/videos/intro-ready/stream" \
               | sed -n 's/.*"manifestUrl":"\([^"]*\)".*/\1/p')
        equery=${eurl#*\?}
        [ -n "$eurl" ] && [ "$equery" != "$eurl" ] || die "bench: playlist: no manifest URL from the ECDSA key's vodlms_playback url"
        local ecurl="$base/hls/intro-ready/signed-ec/index.m3u8?$equery"
        local pgzurl="$base/static-playlist-gz/index.m3u8"
        size=$(curl -s -H "Host: cdn.example.test" --compressed "$ecurl" | grep -c "^seg_[0-9]*\.ts?$equery\$" || true)
        [ "$size" = 900 ] || die "bench: playlist: the ECDSA-signed playlist has $size of 900 segments signed"
        ecsize=$(curl -s -H "Host: cdn.example.test" "$ecurl" | wc -c)
        gzsize=$(curl -s -H "Host: cdn.example.test" -H "$gz" "$ecurl" | wc -c)
        gzstatic=$(curl -s -H "$gz" "$pgzurl" | wc -c)
        ((gzsize < ecsize / 4)) || die "bench: playlist: the ECDSA-signed answer is not gzipped ($gzsize of $ecsize bytes)"
        local v8url="$base/hls/intro-ready/signed-v8/index.m3u8?$query" v8size
        size=$(curl -s -H "Host: cdn.example.test" "$v8url" | grep -c '^seg_[0-9]*\.ts?{\$vodlms}$' || true)
        [ "$size" = 900 ] || die "bench: playlist: the define-mode playlist has $size of 900 segments naming the variable"
        v8size=$(curl -s -H "Host: cdn.example.test" "$v8url" | wc -c)
        echo
        echo "7. signed playlist (issue #20): 900 segments, $(wc -c < "$tmp/html/playlist/index.m3u8") bytes static, $(wc -c < "$tmp/html/playlist/signed-bytes.m3u8") bytes signed with RSA-2048, $ecsize with ECDSA P-256, $v8size in define mode (RSA); gzipped: $gzstatic bytes static, $gzsize signed (ECDSA)"
        for ((k = 1; k <= rounds; k++)); do
            log "bench: playlist: round $k of $rounds"
            R[static_pl]+="$(run "$purl")"$'\n'
            R[signed_pl]+="$(run "$surl" -H "Host: cdn.example.test")"$'\n'
            R[bytes_pl]+="$(run "$burl")"$'\n'
            R[ec_pl]+="$(run "$ecurl" -H "Host: cdn.example.test")"$'\n'
            R[static_gz]+="$(run "$pgzurl" -H "$gz")"$'\n'
            R[ec_gz]+="$(run "$ecurl" -H "Host: cdn.example.test" -H "$gz")"$'\n'
            R[v8_pl]+="$(run "$v8url" -H "Host: cdn.example.test")"$'\n'
        done
        printf '%-44s %12s %9s %9s %7s  %s\n' scenario req/s p50 p99 non2xx "ratio (median of $rounds rounds)"
        printf '%-44s %12s %9s %9s %7s\n' "static playlist (baseline)" \
            "$(field static_pl 1)" "$(field static_pl 2)" "$(field static_pl 3)" "$(field static_pl 4)"
        printf '%-44s %12s %9s %9s %7s  %s\n' "7. signed playlist" \
            "$(field signed_pl 1)" "$(field signed_pl 2)" "$(field signed_pl 3)" "$(field signed_pl 4)" \
            "$(ratio signed_pl static_pl)x of static (rounds: $(rounds_of signed_pl static_pl); target >= 0.7)"
        printf '%-44s %12s %9s %9s %7s  %s\n' "7b. the signed bytes, static" \
            "$(field bytes_pl 1)" "$(field bytes_pl 2)" "$(field bytes_pl 3)" "$(field bytes_pl 4)" \
            "7. is $(ratio signed_pl bytes_pl)x of this (rounds: $(rounds_of signed_pl bytes_pl))"
        printf '%-44s %12s %9s %9s %7s  %s\n' "7c. signed playlist, ECDSA P-256 key" \
            "$(field ec_pl 1)" "$(field ec_pl 2)" "$(field ec_pl 3)" "$(field ec_pl 4)" \
            "$(ratio ec_pl static_pl)x of static (rounds: $(rounds_of ec_pl static_pl))"
        printf '%-44s %12s %9s %9s %7s\n' "static playlist, gzip (baseline of 7e)" \
            "$(field static_gz 1)" "$(field static_gz 2)" "$(field static_gz 3)" "$(field static_gz 4)"
        printf '%-44s %12s %9s %9s %7s  %s\n' "7e. signed playlist, ECDSA, gzip" \
            "$(field ec_gz 1)" "$(field ec_gz 2)" "$(field ec_gz 3)" "$(field ec_gz 4)" \
            "$(ratio ec_gz static_gz)x of static with gzip (rounds: $(rounds_of ec_gz static_gz)); $(ratio ec_gz static_pl)x of static without"
        printf '%-44s %12s %9s %9s %7s  %s\n' "7f. signed playlist, define (version 8)" \
            "$(field v8_pl 1)" "$(field v8_pl 2)" "$(field v8_pl 3)" "$(field v8_pl 4)" \
            "$(ratio v8_pl static_pl)x of static (rounds: $(rounds_of v8_pl static_pl); target >= 0.7)"
        echo "per round (req/s p50 p99 non2xx): static | signed | signed bytes static | ECDSA | static gzip | ECDSA gzip | define"
        paste -d'|' <(printf '%s' "${R[static_pl]}") <(printf '%s' "${R[signed_pl]}") \
            <(printf '%s' "${R[bytes_pl]}") <(printf '%s' "${R[ec_pl]}") \
            <(printf '%s' "${R[static_gz]}") <(printf '%s' "${R[ec_gz]}") \
            <(printf '%s' "${R[v8_pl]}") | sed 's/^/   /; s/|/ | /g'
        echo "   command: VODLMS_BENCH_ONLY=playlist VODLMS_BENCH_SECONDS=$secs VODLMS_BENCH_CONNECTIONS=$conns VODLMS_BENCH_ROUNDS=$rounds ./build.sh bench  (wrk -t1 -c$conns -d${secs}s after a 2 s warm-up, per scenario per round; nginx: 1 worker)"
    }

    # 8. Keys of encrypted HLS (issue #22): a key fetch as players make it
    # (session, enrollment and key cached in the shared zone), and the same
    # with the key budget and pace limit on (one EVAL in Redis per fetch),
    # next to "return 200" in the same round.
    bench_key() {
        local k kurl="$base/vodlms/keys/intro-ready/bench-v1/0.key" lurl="$base/limited/keys/intro-ready/bench-v1/0.key"
        psql -h 127.0.0.1 -p "$pg_port" -U postgres -d vodlms -qc \
            "INSERT INTO vodlms.video_keys (video_id, version, key_index, key, first_segment, starts_ms)
             VALUES ('intro-ready', 'bench-v1', 0, '\\x000102030405060708090a0b0c0d0e0f', 0, 0)
             ON CONFLICT DO NOTHING" >/dev/null
        [ "$(curl -s -H "$cookie" "$kurl" | od -An -tx1 | tr -d ' \n')" = 000102030405060708090a0b0c0d0e0f ] \
            || die "bench: key: the key location does not answer the 16 bytes"
        [ "$(curl -s -o /dev/null -w '%{http_code}' -H "$cookie" "$lurl")" = 200 ] \
            || die "bench: key: the limited key location does not answer 200"
        echo
        echo "8. key delivery (issue #22): GET of a 16-byte key, session + enrollment + key cached; 8b adds budget= and pace= (one EVAL in Redis per fetch)"
        for ((k = 1; k <= rounds; k++)); do
            log "bench: key: round $k of $rounds"
            R[key200]+="$(run "$base/baseline/200")"$'\n'
            R[key]+="$(run "$kurl" -H "$cookie")"$'\n'
            R[keylim]+="$(run "$lurl" -H "$cookie")"$'\n'
        done
        printf '%-44s %12s %9s %9s %7s  %s\n' scenario req/s p50 p99 non2xx "ratio (median of $rounds rounds)"
        printf '%-44s %12s %9s %9s %7s\n' "return 200 (baseline)" \
            "$(field key200 1)" "$(field key200 2)" "$(field key200 3)" "$(field key200 4)"
        printf '%-44s %12s %9s %9s %7s  %s\n' "8. key fetch, all cached" \
            "$(field key 1)" "$(field key 2)" "$(field key 3)" "$(field key 4)" \
            "$(ratio key key200)x of return 200 (rounds: $(rounds_of key key200))"
        printf '%-44s %12s %9s %9s %7s  %s\n' "8b. key fetch, budget + pace (Redis EVAL)" \
            "$(field keylim 1)" "$(field keylim 2)" "$(field keylim 3)" "$(field keylim 4)" \
            "$(ratio keylim key200)x of return 200 (rounds: $(rounds_of keylim key200)); $(ratio keylim key)x of 8."
        echo "   command: VODLMS_BENCH_ONLY=key VODLMS_BENCH_SECONDS=$secs VODLMS_BENCH_CONNECTIONS=$conns VODLMS_BENCH_ROUNDS=$rounds ./build.sh bench  (wrk -t1 -c$conns -d${secs}s after a 2 s warm-up, per scenario per round; nginx: 1 worker)"
    }

    # VODLMS_BENCH_ONLY=core runs scenarios 1-4 (the main table) alone,
    # =userflood scenario 5, =fullzone scenario 6, =playlist scenario 7,
    # =key scenario 8
    local only=${VODLMS_BENCH_ONLY:-}
    case $only in ''|core|userflood|fullzone|playlist|key) ;; *) die "bench: VODLMS_BENCH_ONLY is empty, core, userflood, fullzone, playlist or key, not $only" ;; esac

    # Each round runs every scenario next to its baseline, one right after
    # the other; the table shows the median round's figures and the median
    # of the per-round ratios, so that a noisy moment skews one round only.
    local rounds=${VODLMS_BENCH_ROUNDS:-3} k
    declare -A R
    local stmts=0 beacon_secs=0 s0 s1 t0 t1
    for ((k = 1; k <= rounds; k++)); do
        [ -z "$only" ] || [ "$only" = core ] || break
        log "bench: round $k of $rounds"
        R[ret200]+="$(run "$base/baseline/200")"$'\n'
        R[warm]+="$(run "$base/warm/videos/intro-ready/stream" -H "$cookie")"$'\n'
        R[cold]+="$(run "$base/cold/videos/intro-ready/stream" -H "$cookie")"$'\n'
        R[plain]+="$(run "$base/plain/hls/intro-ready/seg_00001.ts")"$'\n'
        R[edge]+="$(run "$base/hls/intro-ready/seg_00001.ts" -H "Cookie: $cf" -H "Host: cdn.example.test")"$'\n'
        R[securelink]+="$(run "$base/sl/hls/intro-ready/seg_00001.ts?md5=$md5&expires=$exp")"$'\n'
        R[ret204]+="$(run "$base/baseline/204" -s "$tmp/beacon.lua")"$'\n'

        s0=$(grep -c 'watch_progress AS wp' "$tmp/pg/server.log" 2>/dev/null || true)
        t0=$(date +%s.%N)
        R[beacon]+="$(run "$base/api/videos/intro-ready/progress" -H "$cookie" -s "$tmp/beacon.lua")"$'\n'
        t1=$(date +%s.%N)
        s1=$(grep -c 'watch_progress AS wp' "$tmp/pg/server.log" 2>/dev/null || true)
        stmts=$(( stmts + ${s1:-0} - ${s0:-0} ))
        beacon_secs=$(awk -v a="$beacon_secs" -v b="$t0" -v c="$t1" 'BEGIN { print a + c - b }')
    done

    local rss_after; rss_after=$(worker_rss)

    # the median run of a scenario (by req/s), and the median per-round ratio
    median_run() { printf '%s' "${R[$1]}" | sort -n -k1,1 | sed -n "$(( (rounds + 1) / 2 ))p"; }
    field() { median_run "$1" | cut -d' ' -f"$2"; }
    ratio() {
        paste -d' ' <(printf '%s' "${R[$1]}" | cut -d' ' -f1) <(printf '%s' "${R[$2]}" | cut -d' ' -f1) \
            | awk '$2 > 0 { print $1 / $2 }' | sort -n \
            | awk '{ v[NR] = $1 } END { if (NR) printf "%.3f", v[int((NR + 1) / 2)]; else print "n/a" }'
    }
    # every round's ratio, lowest to highest: how far the median can be trusted
    rounds_of() {
        paste -d' ' <(printf '%s' "${R[$1]}" | cut -d' ' -f1) <(printf '%s' "${R[$2]}" | cut -d' ' -f1) \
            | awk '$2 > 0 { printf "%.3f\n", $1 / $2 }' | sort -n | paste -sd' '
    }

    if [ -z "$only" ] || [ "$only" = core ]; then
    printf '\n%-44s %12s %9s %9s %7s  %s\n' scenario req/s p50 p99 non2xx "ratio to baseline (median of $rounds rounds)"
    line() {
        printf '%-44s %12s %9s %9s %7s  %s\n' "$1" "$(field "$2" 1)" "$(field "$2" 2)" \
            "$(field "$2" 3)" "$(field "$2" 4)" "$3"
    }
    line "return 200 (baseline)" ret200 ""
    line "1. playback, warm caches" warm "$(ratio warm ret200)x of return 200 (rounds: $(rounds_of warm ret200); target >= 0.5)"
    line "2. playback, no caches (Redis+PG+RSA)" cold "$(ratio cold warm)x of scenario 1"
    line "static segment, unprotected (baseline)" plain ""
    line "3. edge-verified segment" edge "$(ratio edge plain)x of unprotected (rounds: $(rounds_of edge plain); target >= 0.9)"
    line "3b. secure_link segment" securelink "$(ratio securelink plain)x of unprotected"
    line "return 204 POST (baseline)" ret204 ""
    line "4. progress beacons" beacon "$(ratio beacon ret204)x of return 204 (rounds: $(rounds_of beacon ret204); target >= 0.7)"

    awk -v n="$stmts" -v t="$beacon_secs" -v rps="$(field beacon 1)" 'BEGIN {
            printf "\nbeacons: %.0f/s acknowledged (median round); PostgreSQL upserts during the beacon runs: %d in %.0f s (%.2f/s: the flush rate, not the beacon rate)\n",
                   rps, n, t, n / t }'
    echo "worker RSS: ${rss_before} kB before, ${rss_after} kB after the runs"
    echo "command: ${only:+VODLMS_BENCH_ONLY=$only }VODLMS_BENCH_SECONDS=$secs VODLMS_BENCH_CONNECTIONS=$conns VODLMS_BENCH_ROUNDS=$rounds ./build.sh bench  (wrk -t1 -c$conns -d${secs}s after a 2 s warm-up, per scenario per round; nginx: 1 worker)"
    fi

    if [ -z "$only" ] || [ "$only" = userflood ]; then
        bench_user_flood "$tmp" "$base" "$conninfo" "$redis_port"
    fi
    if [ -z "$only" ] || [ "$only" = fullzone ]; then
        bench_full_zone
    fi
    if [ -z "$only" ] || [ "$only" = playlist ]; then
        bench_playlist
    fi
    if [ -z "$only" ] || [ "$only" = key ]; then
        bench_key
    fi

    if [ -z "$only" ] && [ "${VODLMS_BENCH_LADDER:-1}" != 0 ] && [ -x "$ROOT/helper/bench/ladder.sh" ]; then
        echo
        "$ROOT/helper/bench/ladder.sh" || true
    fi
    # the audio-only rendition and the storyboard against the ladder alone (#23)
    if [ -z "$only" ] && [ "${VODLMS_BENCH_PREVIEW:-1}" != 0 ] && [ -x "$ROOT/helper/bench/preview.sh" ]; then
        echo
        "$ROOT/helper/bench/preview.sh" || true
    fi
}

# ---------------------------------------------------------------- fuzz

# libFuzzer (clang) on every pure-core parser and the helper's caption
# parser, ASan+UBSan, from the seeds
# in t/unit/corpus; VODLMS_FUZZ_SECONDS per target (default 60)
cmd_fuzz() {
    cmd_deps
    make -C "$ROOT/t/unit" BUILD="$BUILD" FUZZ_SECONDS="${VODLMS_FUZZ_SECONDS:-60}" fuzz
    log "core coverage reached by the seeds and this run's corpora"
    make -s -C "$ROOT/t/unit" BUILD="$BUILD" coverage
}

# ---------------------------------------------------------------- deb

# Debian packages, built the way Debian builds its own nginx modules:
# nginx-dev's dh-sequence-nginx compiles the .so against /usr/share/nginx/src
# with the distribution's flags, and dh_nginx writes mod-http-vodlms.conf,
# the modules-enabled symlink scripts and the nginx ABI dependency.
#   libnginx-mod-http-vodlms_<version>_<arch>.deb   module, docs, example
#   vodlms-helper_<version>_<arch>.deb              helper, systemd unit,
#                                                   /etc/vodlms/helper.conf,
#                                                   /usr/share/vodlms/sql
# The debian/ directory is written here, since the repository's layout is
# fixed; the packages land in $BUILD/deb/.
vodlms_version() {
    sed -n 's/^#define NGX_HTTP_VODLMS_VERSION *"\(.*\)"/\1/p' \
        "$ROOT/ngx_http_vodlms_module/ngx_http_vodlms_version.h"
}

deb_write_debian_dir() {
    local d=$1 ver=$2
    mkdir -p "$d/source"
    echo '3.0 (native)' > "$d/source/format"

    cat > "$d/changelog" <<CHANGELOG
vodlms ($ver) unstable; urgency=medium

  * Built by ./build.sh deb from the vodlms repository.

 -- vodlms developers <vodlms@example.invalid>  $(date -R)
CHANGELOG

    cat > "$d/control" <<'CONTROL'
Source: vodlms
Section: httpd
Priority: optional
Maintainer: vodlms developers <vodlms@example.invalid>
Build-Depends: debhelper-compat (= 13), dh-sequence-nginx, nginx-dev,
 libhiredis-dev, libpq-dev, libssl-dev, libjansson-dev, libyajl-dev,
 libcurl4-openssl-dev,
 pkg-config
Standards-Version: 4.6.2
Rules-Requires-Root: no

Package: libnginx-mod-http-vodlms
Architecture: any
Depends: ${misc:Depends}, ${shlibs:Depends}
Suggests: vodlms-helper, redis-server, postgresql
Description: nginx module for the video side of a learning-management system
 Checks the LMS session against Redis and the enrollment against
 PostgreSQL from inside nginx, without blocking a worker, and answers a
 play request with the video's metadata and AWS CloudFront signed cookies
 or a signed URL. It can also be the edge itself: verify the same signed
 cookies and URLs and serve the HLS files. Watch-progress beacons are
 buffered in shared memory and flushed in batches; uploads are queued for
 vodlms-helper. Prometheus metrics included.

Package: vodlms-helper
Architecture: any
Depends: ${misc:Depends}, ${shlibs:Depends}, adduser, ffmpeg
Recommends: libnginx-mod-http-vodlms
Description: transcoding helper for the vodlms nginx module
 Takes upload jobs from a Redis Stream (consumer group), transcodes each
 video with FFmpeg into an adaptive HLS ladder (240p-1080p and a master
 playlist) and publishes it to S3 or a local origin, recording progress
 in PostgreSQL. Ships the systemd unit, a default /etc/vodlms/helper.conf
 and the database migrations in /usr/share/vodlms/sql.
CONTROL

    cat > "$d/copyright" <<'COPYRIGHT'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: vodlms

Files: *
Copyright: the vodlms developers
License: none-chosen
 No licence has been chosen for vodlms yet: all rights are reserved by its
 authors. These packages are for the project's own deployments and tests.
COPYRIGHT

    cat > "$d/rules" <<'RULES'
#!/usr/bin/make -f
export DEB_BUILD_MAINT_OPTIONS = hardening=+all
include /usr/share/dpkg/buildflags.mk

%:
	dh $@

# the module through dh-sequence-nginx's build system (an override must
# name it again), then the helper
override_dh_auto_build:
	dh_auto_build --buildsystem=nginx_mod
	$(MAKE) -C helper BUILD=$(CURDIR)/debian/build-helper \
	    CFLAGS="$(CFLAGS) $(CPPFLAGS)" LDFLAGS="$(LDFLAGS)" \
	    $(CURDIR)/debian/build-helper/vodlms-helper

override_dh_auto_install:
	dh_auto_install --buildsystem=nginx_mod --destdir=debian/tmp
	install -D -m 0755 debian/build-helper/vodlms-helper debian/tmp/usr/bin/vodlms-helper
	install -D -m 0640 helper/vodlms-helper.conf.example debian/tmp/etc/vodlms/helper.conf

# the helper needs its configuration first: installed, not enabled
override_dh_installsystemd:
	dh_installsystemd --no-enable --no-start

override_dh_auto_clean:
	dh_auto_clean --buildsystem=nginx_mod
	rm -rf debian/build-helper
RULES
    chmod +x "$d/rules"

    printf '%s\n' 'usr/lib/nginx/modules/ngx_http_vodlms_module.so' \
        'sql/README.md usr/share/doc/libnginx-mod-http-vodlms/sql' \
        > "$d/libnginx-mod-http-vodlms.install"
    printf '%s\n' README.md docs/directives.md docs/architecture.md \
        docs/cloudfront.md docs/operations.md docs/security.md docs/PERFORMANCE.md \
        docs/lms-schema.md \
        > "$d/libnginx-mod-http-vodlms.docs"
    echo 'docs/examples/vodlms.conf' > "$d/libnginx-mod-http-vodlms.examples"

    printf '%s\n' 'usr/bin/vodlms-helper' 'etc/vodlms/helper.conf' \
        'sql/migrate.sh usr/share/vodlms/sql' 'sql/migrations usr/share/vodlms/sql' \
        'sql/seed usr/share/vodlms/sql' 'sql/README.md usr/share/vodlms/sql' \
        > "$d/vodlms-helper.install"
    printf '%s\n' docs/helper.md docs/s3.md helper/README.md > "$d/vodlms-helper.docs"
    cp "$ROOT/helper/vodlms-helper.service" "$d/vodlms-helper.service"

    cat > "$d/vodlms-helper.postinst" <<'POSTINST'
#!/bin/sh
set -e

if [ "$1" = configure ]; then
    adduser --system --group --quiet --home /var/lib/vodlms --no-create-home vodlms

    # the helper writes the origin; nginx (www-data) serves it
    install -d -o vodlms -g vodlms -m 0755 /var/lib/vodlms /var/lib/vodlms/origin

    # nginx writes uploads, the helper reads them through the group: setgid
    # directories give every new file the group vodlms
    for dir in /var/lib/vodlms/uploads /var/lib/vodlms/uploads/.tmp; do
        [ -d "$dir" ] || install -d -o www-data -g vodlms -m 2770 "$dir"
    done

    # the configuration holds passwords: root and the helper's group only
    if ! dpkg-statoverride --list /etc/vodlms/helper.conf >/dev/null 2>&1; then
        chown root:vodlms /etc/vodlms/helper.conf
        chmod 0640 /etc/vodlms/helper.conf
    fi
fi

#DEBHELPER#

exit 0
POSTINST

    cat > "$d/vodlms-helper.postrm" <<'POSTRM'
#!/bin/sh
set -e

# videos are data: a purge removes only directories that are empty, and
# keeps the system user (Debian's practice)
if [ "$1" = purge ]; then
    rmdir /var/lib/vodlms/uploads/.tmp /var/lib/vodlms/uploads \
          /var/lib/vodlms/origin /var/lib/vodlms 2>/dev/null || true
    rmdir /etc/vodlms 2>/dev/null || true
fi

#DEBHELPER#

exit 0
POSTRM
}

# What the packages' own build needs, and nothing of the tests (no
# Chromium, Redis, PostgreSQL, ffmpeg or npm): the Build-Depends of
# debian/control below (dh-sequence-nginx is nginx-dev's) and what
# dpkg-buildpackage itself runs.
DEB_BUILD_PACKAGES=(
    build-essential debhelper dpkg-dev pkg-config nginx-dev
    libhiredis-dev libpq-dev libssl-dev libjansson-dev libyajl-dev
    libcurl4-openssl-dev
)

cmd_deb() {
    apt_install "${DEB_BUILD_PACKAGES[@]}"
    local ver; ver=$(vodlms_version)
    [ -n "$ver" ] || die "deb: no version in ngx_http_vodlms_version.h"
    local out=$BUILD/deb
    local src=$out/vodlms-$ver
    rm -rf "$out"
    mkdir -p "$src"

    (cd "$ROOT" && tar -cf - --exclude=node_modules --exclude='*.o' \
        config ngx_http_vodlms_module helper docs sql README.md) | tar -xf - -C "$src"
    deb_write_debian_dir "$src/debian" "$ver"

    log "building the packages of vodlms $ver (dpkg-buildpackage, see $out/build.log)"
    (cd "$src" && dpkg-buildpackage -b -us -uc) >"$out/build.log" 2>&1 \
        || { tail -40 "$out/build.log" >&2; die "deb: dpkg-buildpackage failed (see $out/build.log)"; }
    ls "$out"/*.deb
}

# ---------------------------------------------------------------- main

case ${1:-} in
    deps)  shift; cmd_deps "$@" ;;
    build) shift; cmd_build "$@" ;;
    test)  shift; cmd_test "$@" ;;
    matrix) shift; cmd_matrix "$@" ;;
    run)   shift; cmd_run "$@" ;;
    bench) shift; cmd_bench "$@" ;;
    fuzz)  shift; cmd_fuzz "$@" ;;
    deb)   shift; cmd_deb "$@" ;;
    *) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
