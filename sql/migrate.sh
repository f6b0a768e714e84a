#!/usr/bin/env bash
# Apply pending vodlms schema migrations (sql/migrations/NNNN_name.sql) in order.
#
#   sql/migrate.sh [CONNINFO] [--schema NAME] [--seed] [--status]
#   DATABASE_URL=postgresql://... sql/migrate.sh [--seed]
#
# CONNINFO is anything psql accepts ("host=... dbname=..." or a postgresql:// URL);
# without it $DATABASE_URL is used. Everything vodlms creates goes into ONE PostgreSQL
# schema (default "vodlms"), created if missing, so it installs beside an LMS's own
# tables (users, courses, a schema_migrations of its own) without touching them. Each
# pending migration runs in ONE transaction together with the INSERT that records it
# in NAME.schema_migrations, with search_path set to NAME (then pg_catalog) for that
# transaction only: a migration is either applied and recorded or neither. Running
# again applies nothing.
#
#   --schema NAME  the schema (default vodlms): a plain lower-case SQL identifier
#                  ([a-z_][a-z0-9_]*, at most 63 bytes, not pg_*). nginx finds it with
#                  vodlms_pg_schema, vodlms-helper with db_schema.
#   --seed         afterwards load sql/seed/demo.sql (upserts: safe to repeat)
#   --status       list migrations and whether they are applied; change nothing
#
# An install from before schemas has its tables in "public": migrate.sh then refuses
# to create a second copy in "vodlms" and says to pass --schema public.
#
# Environment: PSQL (default: psql), plus the usual libpq PG* variables.
# Two runs at the same time: the INSERT into schema_migrations comes first in each
# transaction, so the second run waits for the first and then fails on the duplicate
# version (rolled back, nothing applied twice); run it again.
set -euo pipefail

usage() {
    sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'
}

seed=0
status_only=0
conninfo=""
schema="vodlms"
while [ "$#" -gt 0 ]; do
    arg="$1"
    shift
    case "$arg" in
        --seed) seed=1 ;;
        --status) status_only=1 ;;
        --schema)
            if [ "$#" -eq 0 ]; then
                echo "migrate.sh: --schema needs a name" >&2; exit 2
            fi
            schema="$1"; shift ;;
        --schema=*) schema="${arg#--schema=}" ;;
        -h|--help) usage; exit 0 ;;
        -*) echo "migrate.sh: unknown option: $arg" >&2; exit 2 ;;
        *)
            if [ -n "$conninfo" ]; then
                echo "migrate.sh: more than one conninfo given" >&2; exit 2
            fi
            conninfo="$arg" ;;
    esac
done
# A plain lower-case identifier: the same rule as nginx's vodlms_pg_schema and the
# helper's db_schema. It is always written quoted ("$schema"), so a keyword is fine,
# and the rule keeps it free of quotes, dots and case folding surprises; pg_* is
# reserved for the system.
schema_ok() {
    local LC_ALL=C          # ranges are ASCII, whatever the locale collates
    [[ "$1" =~ ^[a-z_][a-z0-9_]{0,62}$ ]] && [[ "$1" != pg_* ]]
}
if ! schema_ok "$schema"; then
    echo "migrate.sh: bad --schema \"$schema\": want a plain lower-case SQL identifier" \
         "([a-z_][a-z0-9_]*, at most 63 bytes, not pg_*), e.g. vodlms" >&2
    exit 2
fi
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

q="\"$schema\""                    # the schema, quoted (validated above)
# inside each migration's transaction only: unqualified names land in the schema
set_path="SET LOCAL search_path = $q, pg_catalog"

# What is there already: the schema's own record, and a record of vodlms's
# migrations in public from before schemas (a "version" column holding one of our
# versions; an LMS's own schema_migrations, Rails' or golang-migrate's, holds none).
known_list=""
for f in "${files[@]}"; do
    known_list="$known_list${known_list:+,}'$(basename "$f" .sql)'"
done
state="$(run_psql -At -F ' ' -c "
    SELECT to_regclass('$q.schema_migrations') IS NOT NULL,
           EXISTS (SELECT 1 FROM information_schema.columns
                    WHERE table_schema = 'public' AND table_name = 'schema_migrations'
                      AND column_name = 'version')")"
read -r has_record legacy <<<"$state"
if [ "$legacy" = "t" ] && [ "$schema" != "public" ]; then
    legacy="$(run_psql -At -c "SELECT count(*) FROM public.schema_migrations
                                WHERE version::text IN ($known_list)")"
    n_here=0
    if [ "$has_record" = "t" ]; then
        n_here="$(run_psql -At -c "SELECT count(*) FROM $q.schema_migrations")"
    fi
    if [ "$legacy" -gt 0 ] && [ "$n_here" -eq 0 ]; then
        echo "migrate.sh: vodlms is already installed in schema \"public\" (public.schema_migrations" \
             "records $legacy of its migrations): run migrate.sh with --schema public, and set" \
             "\"vodlms_pg_schema public;\" in nginx and \"db_schema = public\" for vodlms-helper" \
             "(docs/operations.md, \"Upgrading an install in public\"); nothing was changed" >&2
        exit 3
    fi
fi

declare -A applied=()
if [ "$has_record" = "t" ]; then
    while IFS= read -r v; do
        [ -n "$v" ] && applied[$v]=1
    done < <(run_psql -At -c "SELECT version FROM $q.schema_migrations ORDER BY version")
fi

declare -A known=()
for f in "${files[@]}"; do
    known[$(basename "$f" .sql)]=1
done
for v in "${!applied[@]}"; do
    if [ -z "${known[$v]:-}" ]; then
        echo "migrate.sh: warning: schema $schema has migration $v that is not in $migrations_dir" >&2
    fi
done

if [ "$status_only" -eq 1 ]; then
    echo "schema   $schema"
    for f in "${files[@]}"; do
        v="$(basename "$f" .sql)"
        if [ -n "${applied[$v]:-}" ]; then echo "applied  $v"; else echo "pending  $v"; fi
    done
    exit 0
fi

run_psql -c "SET client_min_messages = warning;
             CREATE SCHEMA IF NOT EXISTS $q;
             CREATE TABLE IF NOT EXISTS $q.schema_migrations (
                 version    text        PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now())" >/dev/null

n_applied=0
n_skipped=0
for f in "${files[@]}"; do
    v="$(basename "$f" .sql)"
    if [ -n "${applied[$v]:-}" ]; then
        n_skipped=$((n_skipped + 1))
        continue
    fi
    echo "migrate.sh: applying $v (schema $schema)"
    # $v matched ^[0-9]{4}_[a-z0-9_]+$ above, so it is safe inside the literal.
    run_psql -1 \
        -c "$set_path" \
        -c "INSERT INTO $q.schema_migrations (version) VALUES ('$v')" \
        -f "$f"
    n_applied=$((n_applied + 1))
done
echo "migrate.sh: $n_applied applied, $n_skipped already applied (schema $schema)"

if [ "$seed" -eq 1 ]; then
    echo "migrate.sh: loading seed $(basename "$seed_file") (schema $schema)"
    run_psql -1 -c "$set_path" -f "$seed_file"
fi
