#!/usr/bin/env bash
# Apply pending vodlms schema migrations (sql/migrations/NNNN_name.sql) in order.
#
#   sql/migrate.sh [CONNINFO] [--seed]
#   DATABASE_URL=postgresql://... sql/migrate.sh [--seed]
#
# CONNINFO is anything psql accepts ("host=... dbname=..." or a postgresql:// URL);
# without it $DATABASE_URL is used. Each pending migration runs in ONE transaction
# together with the INSERT that records it in schema_migrations, so a migration is
# either applied and recorded or neither. Running again applies nothing.
#
#   --seed     afterwards load sql/seed/demo.sql (upserts: safe to repeat)
#   --status   list migrations and whether they are applied; change nothing
#
# Environment: PSQL (default: psql), plus the usual libpq PG* variables.
# Two runs at the same time: the INSERT into schema_migrations comes first in each
# transaction, so the second run waits for the first and then fails on the duplicate
# version (rolled back, nothing applied twice); run it again.
set -euo pipefail

usage() {
    sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
}

seed=0
status_only=0
conninfo=""
for arg in "$@"; do
    case "$arg" in
        --seed) seed=1 ;;
        --status) status_only=1 ;;
        -h|--help) usage; exit 0 ;;
        -*) echo "migrate.sh: unknown option: $arg" >&2; exit 2 ;;
        *)
            if [ -n "$conninfo" ]; then
                echo "migrate.sh: more than one conninfo given" >&2; exit 2
            fi
            conninfo="$arg" ;;
    esac
done
if [ -z "$conninfo" ]; then
    conninfo="${DATABASE_URL:-}"
fi
if [ -z "$conninfo" ]; then
    echo "migrate.sh: no database: pass a conninfo as the first argument or set DATABASE_URL" >&2
    exit 2
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
migrations_dir="$here/migrations"
seed_file="$here/seed/demo.sql"
PSQL="${PSQL:-psql}"
export PGAPPNAME="${PGAPPNAME:-vodlms-migrate}"

run_psql() {
    "$PSQL" "$conninfo" -X -q -v ON_ERROR_STOP=1 "$@"
}

# Collect migration files; refuse anything in the directory that does not follow the
# naming rule, and duplicate numbers, rather than silently skipping or misordering.
files=()
declare -A seen_number=()
while IFS= read -r f; do
    name="$(basename "$f")"
    if ! [[ "$name" =~ ^([0-9]{4})_[a-z0-9_]+\.sql$ ]]; then
        echo "migrate.sh: bad migration file name: $name (want NNNN_lowercase_name.sql)" >&2
        exit 2
    fi
    number="${BASH_REMATCH[1]}"
    if [ -n "${seen_number[$number]:-}" ]; then
        echo "migrate.sh: two migrations numbered $number: ${seen_number[$number]} and $name" >&2
        exit 2
    fi
    seen_number[$number]="$name"
    files+=("$f")
done < <(find "$migrations_dir" -maxdepth 1 -type f | LC_ALL=C sort)

if [ "${#files[@]}" -eq 0 ]; then
    echo "migrate.sh: no migrations in $migrations_dir" >&2
    exit 2
fi

run_psql -c "SET client_min_messages = warning;
             CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    text        PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now())" >/dev/null

declare -A applied=()
while IFS= read -r v; do
    [ -n "$v" ] && applied[$v]=1
done < <(run_psql -At -c "SELECT version FROM schema_migrations ORDER BY version")

declare -A known=()
for f in "${files[@]}"; do
    known[$(basename "$f" .sql)]=1
done
for v in "${!applied[@]}"; do
    if [ -z "${known[$v]:-}" ]; then
        echo "migrate.sh: warning: database has migration $v that is not in $migrations_dir" >&2
    fi
done

if [ "$status_only" -eq 1 ]; then
    for f in "${files[@]}"; do
        v="$(basename "$f" .sql)"
        if [ -n "${applied[$v]:-}" ]; then echo "applied  $v"; else echo "pending  $v"; fi
    done
    exit 0
fi

n_applied=0
n_skipped=0
for f in "${files[@]}"; do
    v="$(basename "$f" .sql)"
    if [ -n "${applied[$v]:-}" ]; then
        n_skipped=$((n_skipped + 1))
        continue
    fi
    echo "migrate.sh: applying $v"
    # $v matched ^[0-9]{4}_[a-z0-9_]+$ above, so it is safe inside the literal.
    run_psql -1 \
        -c "INSERT INTO schema_migrations (version) VALUES ('$v')" \
        -f "$f"
    n_applied=$((n_applied + 1))
done
echo "migrate.sh: $n_applied applied, $n_skipped already applied"

if [ "$seed" -eq 1 ]; then
    echo "migrate.sh: loading seed $(basename "$seed_file")"
    run_psql -1 -f "$seed_file"
fi
