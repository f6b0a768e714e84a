/*
 * The videos row, through libpq (synchronous, parameters only).  One
 * connection, re-established when it breaks or the server refuses writes
 * (SQLSTATE 25006: a fenced primary); the conninfo goes to libpq as given,
 * so a multi-host one with target_session_attrs=read-write finds the primary.
 *
 * vodlms's tables are in their own schema (db_schema, default "vodlms": where
 * sql/migrate.sh --schema put them).  Every statement names them qualified,
 * rendered once at start from the templates below ("vodlms." becomes
 * "<db_schema>".), rather than by setting search_path on the connection: a
 * qualified name holds on every connection, including a pooler's that
 * carries no session state (PgBouncer in transaction mode), and cannot fall
 * through to a same-named table elsewhere on the path (an LMS's own or an
 * old install's in public).
 */

#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "vodlms_helper.h"

enum {
    SQL_START = 0,
    SQL_CURRENT,
    SQL_PROGRESS,
    SQL_READY,
    SQL_FAILED,
    SQL_REQUEUE,
    SQL_ORPHAN,
    SQL_TAKE,
    SQL_REMOVED,
    SQL_IN_USE,
    SQL_SOURCE_IN_USE,
    SQL_KEY_INSERT,
    SQL_KEYS_DROP,
    SQL_KEYS_TABLE,
    SQL_CAP_START,
    SQL_CAP_CURRENT,
    SQL_CAP_FAILED,
    SQL_CAP_REQUEUE,
    SQL_CAP_LOCK,
    SQL_CAP_CLEAR_DEFAULT,
    SQL_CAP_PUBLISH,
    SQL_CAP_VIDEO,
    SQL_CAP_LIST,
    SQL_CAP_TABLE,
    SQL_SOURCE_IN_USE_VIDEOS,
    SQL_CAP_REMOVE,
    SQL_N
};

static const char *const db_templates[SQL_N] = {

    [SQL_START] =
        "WITH upd AS (UPDATE vodlms.videos SET status = 'processing',"
        "  progress_percent = 0, error = NULL"
        "  WHERE id = $1::text AND source_location = $2::text RETURNING 1)"
        " SELECT (SELECT count(*) FROM upd),"
        "        (SELECT count(*) FROM vodlms.videos WHERE id = $1::text)",

    [SQL_CURRENT] =
        "SELECT count(*) FILTER (WHERE source_location = $2::text), count(*)"
        " FROM vodlms.videos WHERE id = $1::text",

    [SQL_PROGRESS] =
        "UPDATE vodlms.videos SET progress_percent = $2::numeric"
        " WHERE id = $1::text AND source_location = $3::text"
        " AND status = 'processing'",

    [SQL_READY] =
        "UPDATE vodlms.videos SET status = 'ready', progress_percent = 100,"
        " duration_seconds = $2::numeric, renditions = $3::jsonb,"
        " storage_prefix = $4::text, error = NULL"
        " WHERE id = $1::text AND source_location = $5::text",

    [SQL_FAILED] =
        "UPDATE vodlms.videos SET status = 'failed', error = $2::text"
        " WHERE id = $1::text AND source_location = $3::text",

    [SQL_REQUEUE] =
        "UPDATE vodlms.videos SET status = 'queued', progress_percent = 0,"
        " error = $2::text WHERE id = $1::text AND source_location = $3::text"
        " AND status <> 'ready'",

    [SQL_ORPHAN] =
        "INSERT INTO vodlms.videos_superseded (video_id, storage_prefix)"
        " VALUES ($1::text, $2::text)"
        " ON CONFLICT (video_id, storage_prefix) DO UPDATE"
        " SET superseded_at = now(), removed_at = NULL",

    [SQL_TAKE] =
        "SELECT o.video_id, o.storage_prefix FROM vodlms.videos_superseded o"
        " WHERE o.removed_at IS NULL"
        "   AND o.superseded_at <= now() - make_interval(secs => $1::float8)"
        "   AND NOT EXISTS (SELECT 1 FROM vodlms.videos v"
        "                   WHERE rtrim(v.storage_prefix, '/')"
        "                         = rtrim(o.storage_prefix, '/'))"
        " ORDER BY o.superseded_at LIMIT $2::int"
        " FOR UPDATE OF o SKIP LOCKED",

    [SQL_REMOVED] =
        "UPDATE vodlms.videos_superseded SET removed_at = now()"
        " WHERE video_id = $1::text AND storage_prefix = $2::text",

    [SQL_IN_USE] =
        "SELECT count(*) FROM vodlms.videos"
        " WHERE rtrim(storage_prefix, '/') = rtrim($1::text, '/')",

    /*
     * by the path or by the file name within any directory: a row may spell
     * the spool differently (a trailing slash, "//", a symlink) from the
     * helper; the module's upload names are unique, so a same name is the
     * same file, and a false match only keeps a file
     */
    [SQL_SOURCE_IN_USE] =
        "SELECT EXISTS (SELECT 1 FROM vodlms.videos"
        " WHERE source_location = $1::text"
        "    OR right(source_location, length($2::text) + 1) = '/' || $2::text)"
        " OR EXISTS (SELECT 1 FROM vodlms.video_captions"
        " WHERE status IN ('queued', 'processing')"
        "   AND (source_location = $1::text"
        "        OR right(source_location, length($2::text) + 1) = '/' || $2::text))",

    /* the key as binary bytea ($4): never spelt out in a statement */
    [SQL_KEY_INSERT] =
        "INSERT INTO vodlms.video_keys"
        " (video_id, version, key_index, key, first_segment, starts_ms)"
        " VALUES ($1::text, $2::text, $3::int, $4::bytea, $5::int, $6::bigint)",

    /* the keys of a removed version hls/<id>/<version>/ (spelt with or without '/') */
    [SQL_KEYS_DROP] =
        "DELETE FROM vodlms.video_keys WHERE video_id = $1::text"
        " AND 'hls/' || video_id || '/' || version = rtrim($2::text, '/')",

    [SQL_KEYS_TABLE] =
        "SELECT to_regclass('vodlms.video_keys') IS NOT NULL",

    /*
     * Captions (migration 0012): the row of (video, lang) is a caption
     * job's while its source_location is the job's source, as for videos
     */
    [SQL_CAP_START] =
        "WITH upd AS (UPDATE vodlms.video_captions SET status = 'processing',"
        "  error = NULL"
        "  WHERE video_id = $1::text AND lang = $2::text"
        "  AND source_location = $3::text RETURNING 1)"
        " SELECT (SELECT count(*) FROM upd),"
        "        (SELECT count(*) FROM vodlms.video_captions"
        "         WHERE video_id = $1::text AND lang = $2::text)",

    [SQL_CAP_CURRENT] =
        "SELECT count(*) FILTER (WHERE source_location = $3::text), count(*)"
        " FROM vodlms.video_captions WHERE video_id = $1::text AND lang = $2::text",

    [SQL_CAP_FAILED] =
        "UPDATE vodlms.video_captions SET status = 'failed', error = $4::text"
        " WHERE video_id = $1::text AND lang = $2::text"
        " AND source_location = $3::text",

    [SQL_CAP_REQUEUE] =
        "UPDATE vodlms.video_captions SET status = 'queued', error = $4::text"
        " WHERE video_id = $1::text AND lang = $2::text"
        " AND source_location = $3::text AND status = 'processing'",

    /* one lock per video for every publish of its captions (any schema) */
    [SQL_CAP_LOCK] =
        "SELECT pg_advisory_xact_lock(hashtextextended("
        "'vodlms.video_captions ' || $1::text, 0))",

    /* at most one default per video (the index video_captions_one_default) */
    [SQL_CAP_CLEAR_DEFAULT] =
        "UPDATE vodlms.video_captions SET is_default = false"
        " WHERE video_id = $1::text AND lang <> $2::text AND is_default",

    [SQL_CAP_PUBLISH] =
        "UPDATE vodlms.video_captions SET vtt = $4::text, revision = $5::text,"
        " label = $6::text, is_default = $7::boolean, cues = $8::int,"
        " published_at = now(), status = 'ready', error = NULL"
        " WHERE video_id = $1::text AND lang = $2::text"
        " AND source_location = $3::text",

    [SQL_CAP_VIDEO] =
        "SELECT status, coalesce(storage_prefix, ''),"
        " coalesce(duration_seconds, 0)::float8, renditions::text"
        " FROM vodlms.videos WHERE id = $1::text",

    [SQL_CAP_TABLE] =
        "SELECT to_regclass('vodlms.video_captions') IS NOT NULL",

    /* SQL_SOURCE_IN_USE without migration 0012 */
    [SQL_SOURCE_IN_USE_VIDEOS] =
        "SELECT EXISTS (SELECT 1 FROM vodlms.videos"
        " WHERE source_location = $1::text"
        "    OR right(source_location, length($2::text) + 1) = '/' || $2::text)",

    [SQL_CAP_LIST] =
        "SELECT lang, label, is_default, revision,"
        " CASE WHEN $2::boolean THEN vtt END"
        " FROM vodlms.video_captions"
        " WHERE video_id = $1::text AND vtt IS NOT NULL ORDER BY lang COLLATE \"C\"",

    /* a removal (nginx's DELETE): the row goes while it names the removal */
    [SQL_CAP_REMOVE] =
        "DELETE FROM vodlms.video_captions WHERE video_id = $1::text"
        " AND lang = $2::text AND source_location = $3::text",
};

struct vh_db_s {
    char    *conninfo;
    PGconn  *conn;
    int      read_only;     /* the server refused a write: connect afresh */
    int      captions;      /* the table video_captions exists (0012): 1, else asked again */
    char    *sql[SQL_N];
};

/*
 * SQLSTATE 25006: the server takes no writes (a primary fenced read-only
 * in a switchover, a pooler pointed at a standby).  The connection is
 * replaced before the next statement, and libpq's multi-host conninfo with
 * target_session_attrs=read-write then finds the primary.
 */
static void
db_note(vh_db_t *db, const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    if (state != NULL && strcmp(state, "25006") == 0 && !db->read_only) {
        vh_warn("postgres %s:%s takes no writes (SQLSTATE 25006): connecting again"
                " to find the primary", PQhost(db->conn), PQport(db->conn));
        db->read_only = 1;
    }
}

/* a template with every "vodlms." as "<schema>". (the name is validated) */
static char *
db_render(const char *tmpl, const char *schema)
{
    static const char  mark[] = "vodlms.";
    const char        *p, *m;
    char              *out, *q;
    size_t             n = 0;

    for (p = tmpl; (m = strstr(p, mark)) != NULL; p = m + sizeof(mark) - 1) {
        n++;
    }
    out = malloc(strlen(tmpl) + n * (strlen(schema) + 2) + 1);
    if (out == NULL) {
        return NULL;
    }
    q = out;
    for (p = tmpl; (m = strstr(p, mark)) != NULL; p = m + sizeof(mark) - 2) {
        memcpy(q, p, (size_t) (m - p));
        q += m - p;
        q += sprintf(q, "\"%s\"", schema);
    }
    strcpy(q, p);
    return out;
}

vh_db_t *
vh_db_new(const char *conninfo, const char *schema)
{
    int       i;
    vh_db_t  *db = calloc(1, sizeof(*db));

    if (db == NULL) {
        return NULL;
    }
    db->conninfo = vh_strdup(conninfo);
    for (i = 0; i < SQL_N; i++) {
        db->sql[i] = db_render(db_templates[i], schema);
        if (db->sql[i] == NULL) {
            vh_db_free(db);
            return NULL;
        }
    }
    return db;
}

void
vh_db_free(vh_db_t *db)
{
    int  i;

    if (db != NULL) {
        if (db->conn) {
            PQfinish(db->conn);
        }
        for (i = 0; i < SQL_N; i++) {
            free(db->sql[i]);
        }
        free(db->conninfo);
        free(db);
    }
}

static int
db_connect(vh_db_t *db)
{
    if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK
        && !db->read_only)
    {
        return 0;
    }
    db->read_only = 0;
    if (db->conn != NULL) {
        PQfinish(db->conn);
    }
    db->conn = PQconnectdb(db->conninfo);
    if (PQstatus(db->conn) != CONNECTION_OK) {
        vh_error("cannot connect to postgres: %s", PQerrorMessage(db->conn));
        PQfinish(db->conn);
        db->conn = NULL;
        return -1;
    }
    return 0;
}

/* runs one statement; retries once on a broken connection; rows or -1 */
static int
db_exec(vh_db_t *db, const char *what, const char *sql, int n,
    const char *const *params)
{
    PGresult  *res;
    int        attempt, rows;

    for (attempt = 0; attempt < 2; attempt++) {
        if (db_connect(db) != 0) {
            continue;
        }
        res = PQexecParams(db->conn, sql, n, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) == PGRES_COMMAND_OK) {
            rows = atoi(PQcmdTuples(res));
            PQclear(res);
            return rows;
        }
        vh_error("postgres %s failed: %s", what,
                 res ? PQresultErrorMessage(res) : PQerrorMessage(db->conn));
        db_note(db, res);
        PQclear(res);
        if (PQstatus(db->conn) == CONNECTION_OK && !db->read_only) {
            return -1;          /* a query error: retrying will not help */
        }
    }
    return -1;
}

/*
 * Every update of a job's row is tied to the job's source: the row must
 * still name it in source_location.  A re-upload (the module re-queues the
 * row with a new source and adds a new job) or an upload undone (the
 * module's compensation puts the previous source back) makes the older job
 * superseded: its updates match no row, and it is dropped.
 */

/* runs a statement returning one row of two counts: ours, rows with the id */
static int
db_job_query(vh_db_t *db, const char *what, const char *sql, int n,
    const char *const *params)
{
    PGresult  *res;
    int        attempt, ours, exists;

    for (attempt = 0; attempt < 2; attempt++) {
        if (db_connect(db) != 0) {
            continue;
        }
        res = PQexecParams(db->conn, sql, n, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
            ours = atoi(PQgetvalue(res, 0, 0));
            exists = atoi(PQgetvalue(res, 0, 1));
            PQclear(res);
            return ours > 0 ? VH_DB_OURS : exists > 0 ? VH_DB_SUPERSEDED
                                                      : VH_DB_NO_ROW;
        }
        vh_error("postgres %s failed: %s", what,
                 res ? PQresultErrorMessage(res) : PQerrorMessage(db->conn));
        db_note(db, res);
        PQclear(res);
        if (PQstatus(db->conn) == CONNECTION_OK && !db->read_only) {
            return -1;          /* a query error: retrying will not help */
        }
    }
    return -1;
}

int
vh_db_start(vh_db_t *db, const char *video_id, const char *source)
{
    const char *p[2] = { video_id, source };

    return db_job_query(db, "start", db->sql[SQL_START], 2, p);
}

int
vh_db_current(vh_db_t *db, const char *video_id, const char *source)
{
    const char *p[2] = { video_id, source };

    return db_job_query(db, "source check", db->sql[SQL_CURRENT], 2, p);
}

int
vh_db_progress(vh_db_t *db, const char *video_id, const char *source,
    double percent)
{
    char        pct[32];
    const char *p[3] = { video_id, pct, source };

    if (percent < 0) {
        percent = 0;
    }
    if (percent > 99.99) {
        percent = 99.99;        /* 100 means ready */
    }
    snprintf(pct, sizeof(pct), "%.2f", percent);
    return db_exec(db, "progress", db->sql[SQL_PROGRESS], 3, p);
}

static int db_tx(vh_db_t *db, const char *sql);

static int db_tx_exec(vh_db_t *db, const char *what, const char *sql, int n,
    const char *const *params);

/* one video_keys row, in the caller's transaction: 0 or -1 */
static int
db_insert_key(vh_db_t *db, const char *video_id, const char *version, int k,
    const vh_hls_key_t *key)
{
    char        idx[16], first[24], starts[24];
    const char *p[6] = { video_id, version, idx, (const char *) key->key,
                         first, starts };
    int         lens[6] = { 0, 0, 0, VH_KEY_LEN, 0, 0 };
    int         fmts[6] = { 0, 0, 0, 1, 0, 0 };
    PGresult   *res;
    int         ok;

    snprintf(idx, sizeof(idx), "%d", k);
    snprintf(first, sizeof(first), "%ld", key->first_segment);
    snprintf(starts, sizeof(starts), "%lld", key->starts_ms);
    res = PQexecParams(db->conn, db->sql[SQL_KEY_INSERT], 6, NULL, p, lens,
                       fmts, 0);
    ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok) {
        vh_error("postgres insert the key %d of video %s version %s failed: %s",
                 k, video_id, version,
                 res ? PQresultErrorMessage(res) : PQerrorMessage(db->conn));
        db_note(db, res);
    }
    PQclear(res);
    return ok ? 0 : -1;
}

/*
 * BEGIN, retried once on a broken connection as db_exec retries a single
 * statement: a job's connection idles through a whole encode or upload,
 * and PostgreSQL may have restarted (or dropped it) meanwhile; nothing is
 * done before BEGIN, so it is safe to connect again.  0 or -1.
 */
static int
db_begin(vh_db_t *db)
{
    int  attempt;

    for (attempt = 0; attempt < 2; attempt++) {
        if (db_connect(db) != 0) {
            continue;
        }
        if (db_tx(db, "BEGIN") == 0) {
            return 0;
        }
        if (PQstatus(db->conn) == CONNECTION_OK && !db->read_only) {
            return -1;          /* a query error: retrying will not help */
        }
    }
    return -1;
}

int
vh_db_ready(vh_db_t *db, const char *video_id, const char *source,
    double duration, const char *renditions_json, const char *storage_prefix,
    const char *version, const struct vh_keys_s *keys, vh_db_in_tx_pt in_tx,
    void *data)
{
    char        dur[32];
    const char *p[5] = { video_id, dur, renditions_json, storage_prefix, source };
    PGresult   *res;
    int         i, rows;

    snprintf(dur, sizeof(dur), "%.3f", duration);
    if ((keys == NULL || keys->n == 0) && in_tx == NULL) {
        return db_exec(db, "ready", db->sql[SQL_READY], 5, p);
    }

    /*
     * A ready version always has its keys, and a version no row switched to
     * has none: the keys and the switch commit together or not at all.
     * in_tx (the captions, subs.c) runs under the video's caption lock,
     * taken first, so no caption publish interleaves with it
     */
    if (db_begin(db) != 0) {
        return -1;
    }
    if (in_tx != NULL
        && db_tx_exec(db, "caption lock", db->sql[SQL_CAP_LOCK], 1, p) < 0)
    {
        return -1;
    }
    for (i = 0; keys != NULL && i < keys->n; i++) {
        if (db_insert_key(db, video_id, version, i, &keys->keys[i]) != 0) {
            db_tx(db, "ROLLBACK");
            return -1;
        }
    }
    res = PQexecParams(db->conn, db->sql[SQL_READY], 5, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        vh_error("postgres ready failed: %s",
                 res ? PQresultErrorMessage(res) : PQerrorMessage(db->conn));
        db_note(db, res);
        PQclear(res);
        db_tx(db, "ROLLBACK");
        return -1;
    }
    rows = atoi(PQcmdTuples(res));
    PQclear(res);
    if (rows == 0) {
        return db_tx(db, "ROLLBACK") == 0 ? 0 : -1;
    }
    if (in_tx != NULL && in_tx(db, data) != 0) {
        vh_db_rollback(db);
        return VH_DB_IN_TX_FAILED;
    }
    return db_tx(db, "COMMIT") == 0 ? rows : -1;
}

int
vh_db_keys_table(vh_db_t *db)
{
    PGresult  *res;
    int        rc = -1;

    if (db_connect(db) != 0) {
        return -1;
    }
    res = PQexecParams(db->conn, db->sql[SQL_KEYS_TABLE], 0, NULL, NULL, NULL,
                       NULL, 0);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        rc = PQgetvalue(res, 0, 0)[0] == 't';
    } else {
        vh_error("postgres look for the table video_keys failed: %s",
                 res ? PQresultErrorMessage(res) : PQerrorMessage(db->conn));
    }
    PQclear(res);
    return rc;
}

int
vh_db_failed(vh_db_t *db, const char *video_id, const char *source,
    const char *error)
{
    const char *p[3] = { video_id, error, source };

    if (source == NULL) {
        return 0;               /* no source: no upload of this row */
    }
    return db_exec(db, "failed", db->sql[SQL_FAILED], 3, p);
}

int
vh_db_requeue(vh_db_t *db, const char *video_id, const char *source,
    const char *error)
{
    const char *p[3] = { video_id, error, source };

    return db_exec(db, "requeue", db->sql[SQL_REQUEUE], 3, p);
}

int
vh_db_orphan(vh_db_t *db, const char *video_id, const char *storage_prefix)
{
    const char *p[2] = { video_id, storage_prefix };

    return db_exec(db, "record an unused version", db->sql[SQL_ORPHAN], 2,
                   p);
}

/*
 * Old versions.  One transaction per sweep batch: the rows are taken with
 * FOR UPDATE SKIP LOCKED (two helpers never take the same one) and stay
 * locked while their directories are removed, and removed_at is set only
 * for what was removed.  A prefix counts as in use when any video's
 * storage_prefix names it, with or without its trailing '/'.  The lock is
 * what makes a rollback safe: the trigger of migration 0007, run by an
 * UPDATE that takes a prefix back into use, deletes its videos_superseded
 * row, so it waits for this transaction, and then refuses the switch if the
 * prefix was removed meanwhile.  Between the take and the removal the
 * callback re-checks (vh_db_prefix_in_use) on this same connection.
 */
static int
db_tx(vh_db_t *db, const char *sql)
{
    PGresult  *res = PQexec(db->conn, sql);
    int        ok = PQresultStatus(res) == PGRES_COMMAND_OK;

    if (!ok) {
        vh_error("postgres %s failed: %s", sql,
                 res ? PQresultErrorMessage(res) : PQerrorMessage(db->conn));
        db_note(db, res);
    }
    PQclear(res);
    return ok ? 0 : -1;
}

int
vh_db_take_superseded(vh_db_t *db, double grace, int max,
    vh_db_superseded_pt cb, void *data)
{
    char        g[32], m[16];
    const char *p[2] = { g, m };
    const char *state;
    PGresult   *res, *up;
    int         i, n, rc, keys, missing;

    snprintf(g, sizeof(g), "%.3f", grace);
    snprintf(m, sizeof(m), "%d", max);
    /* without migration 0011 there are no keys to remove with a version */
    keys = vh_db_keys_table(db);
    if (keys < 0 || db_tx(db, "BEGIN") != 0) {
        return -1;
    }
    res = PQexecParams(db->conn, db->sql[SQL_TAKE],
        2, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        /* read before PQclear: the field lives in res */
        state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        missing = state != NULL && !strcmp(state, "42P01");
        db_note(db, res);
        PQclear(res);
        db_tx(db, "ROLLBACK");
        if (missing) {
            return -2;          /* undefined_table: migration 0006 not applied */
        }
        vh_error("postgres take superseded versions failed: %s",
                 PQerrorMessage(db->conn));
        return -1;
    }
    n = PQntuples(res);
    for (i = 0; i < n; i++) {
        const char *id = PQgetvalue(res, i, 0), *prefix = PQgetvalue(res, i, 1);
        const char *q[2] = { id, prefix };

        rc = cb(data, id, prefix);
        if (rc != 0) {
            continue;           /* failed (next sweep), or in use again */
        }
        up = PQexecParams(db->conn, db->sql[SQL_REMOVED],
            2, NULL, q, NULL, NULL, 0);
        if (PQresultStatus(up) != PGRES_COMMAND_OK) {
            vh_error("postgres mark a superseded version removed failed: %s",
                     PQresultErrorMessage(up));
            PQclear(up);
            PQclear(res);
            db_tx(db, "ROLLBACK");
            return -1;          /* removed but unmarked: absent next time */
        }
        PQclear(up);
        if (!keys) {
            continue;
        }
        up = PQexecParams(db->conn, db->sql[SQL_KEYS_DROP],
            2, NULL, q, NULL, NULL, 0);
        if (PQresultStatus(up) != PGRES_COMMAND_OK) {
            vh_error("postgres delete the keys of the removed version %s failed: %s",
                     prefix, PQresultErrorMessage(up));
            PQclear(up);
            PQclear(res);
            db_tx(db, "ROLLBACK");
            return -1;          /* removed but unmarked: absent next time */
        }
        if (atoi(PQcmdTuples(up)) > 0) {
            vh_info("video %s: deleted the %s key(s) of the old version %s", id,
                    PQcmdTuples(up), prefix);
        }
        PQclear(up);
    }
    PQclear(res);
    if (db_tx(db, "COMMIT") != 0) {
        return -1;
    }
    return n;
}

int
vh_db_prefix_in_use(vh_db_t *db, const char *storage_prefix)
{
    const char *p[1] = { storage_prefix };
    PGresult   *res;
    int         rc = -1;

    res = PQexecParams(db->conn, db->sql[SQL_IN_USE],
        1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        rc = atoi(PQgetvalue(res, 0, 0)) > 0;
    } else {
        vh_error("postgres check a superseded version failed: %s",
                 PQresultErrorMessage(res));
    }
    PQclear(res);
    return rc;
}

/*
 * Does the table video_captions exist (migration 0012): 1, 0 or -1.  A
 * helper may run before the migration is applied: a video then has no
 * captions and a spooled file no caption row.  Once seen, never asked again.
 */
static int
db_captions_table(vh_db_t *db)
{
    PGresult  *res;
    int        rc = -1;

    if (db->captions) {
        return 1;
    }
    if (db_connect(db) != 0) {
        return -1;
    }
    res = PQexecParams(db->conn, db->sql[SQL_CAP_TABLE], 0, NULL, NULL, NULL,
                       NULL, 0);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        rc = PQgetvalue(res, 0, 0)[0] == 't';
        db->captions = rc;
        if (rc == 0) {
            vh_debug("no table video_captions (sql/migrations/0012_video_captions.sql):"
                     " no captions");
        }
    } else {
        vh_error("postgres look for the table video_captions failed: %s",
                 res ? PQresultErrorMessage(res) : PQerrorMessage(db->conn));
        db_note(db, res);
    }
    PQclear(res);
    return rc;
}

int
vh_db_source_in_use(vh_db_t *db, const char *source)
{
    const char *base = strrchr(source, '/');
    const char *p[2] = { source, base != NULL ? base + 1 : source };
    PGresult   *res;
    int         rc = -1;

    if (db_connect(db) != 0) {
        return -1;
    }
    if (p[1][0] == '\0') {
        return 1;   /* no file name to compare: keep it */
    }
    res = PQexecParams(db->conn, db->sql[db_captions_table(db) == 0
                                         ? SQL_SOURCE_IN_USE_VIDEOS
                                         : SQL_SOURCE_IN_USE],
                       2, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        rc = PQgetvalue(res, 0, 0)[0] == 't';
    } else {
        vh_error("postgres source check failed: %s",
                 res ? PQresultErrorMessage(res) : PQerrorMessage(db->conn));
    }
    PQclear(res);
    return rc;
}

/* ---------------------------------------------------------------- captions */

int
vh_db_captions_table(vh_db_t *db)
{
    return db_captions_table(db);
}

int
vh_db_caption_start(vh_db_t *db, const char *video_id, const char *lang,
    const char *source)
{
    const char *p[3] = { video_id, lang, source };

    return db_job_query(db, "caption start", db->sql[SQL_CAP_START], 3, p);
}

int
vh_db_caption_current(vh_db_t *db, const char *video_id, const char *lang,
    const char *source)
{
    const char *p[3] = { video_id, lang, source };

    return db_job_query(db, "caption source check", db->sql[SQL_CAP_CURRENT], 3,
                        p);
}

int
vh_db_caption_failed(vh_db_t *db, const char *video_id, const char *lang,
    const char *source, const char *error)
{
    const char *p[4] = { video_id, lang, source, error };

    if (source == NULL || lang == NULL) {
        return 0;
    }
    return db_exec(db, "caption failed", db->sql[SQL_CAP_FAILED], 4, p);
}

int
vh_db_caption_requeue(vh_db_t *db, const char *video_id, const char *lang,
    const char *source, const char *error)
{
    const char *p[4] = { video_id, lang, source, error };

    return db_exec(db, "caption requeue", db->sql[SQL_CAP_REQUEUE], 4, p);
}

void
vh_db_captions_free(vh_db_captions_t *cs)
{
    int  i;

    for (i = 0; i < cs->n; i++) {
        free(cs->c[i].vtt);
    }
    free(cs->c);
    cs->c = NULL;
    cs->n = 0;
}

void
vh_db_video_free(vh_db_video_t *v)
{
    free(v->renditions);
    memset(v, 0, sizeof(*v));
}

/* the published captions on the current connection (in a transaction or not) */
static int
db_captions_query(vh_db_t *db, const char *video_id, int with_vtt,
    vh_db_captions_t *out)
{
    const char  *p[2] = { video_id, with_vtt ? "true" : "false" };
    PGresult    *res;
    int          i, n, rc = -1;

    memset(out, 0, sizeof(*out));
    res = PQexecParams(db->conn, db->sql[SQL_CAP_LIST], 2, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        vh_error("postgres read the captions of video %s failed: %s", video_id,
                 res ? PQresultErrorMessage(res) : PQerrorMessage(db->conn));
        db_note(db, res);
        PQclear(res);
        return -1;
    }
    n = PQntuples(res);
    out->c = calloc(n > 0 ? n : 1, sizeof(*out->c));
    if (out->c == NULL) {
        vh_error("out of memory reading the captions of video %s", video_id);
        goto done;
    }
    for (i = 0; i < n; i++) {
        vh_db_caption_t *c = &out->c[i];

        /* the table's CHECKs hold these to their sizes; longer: not ours */
        if (PQgetlength(res, i, 0) > VH_LANG_MAX
            || PQgetlength(res, i, 1) > VH_LABEL_MAX
            || PQgetlength(res, i, 3) >= (int) sizeof(c->revision))
        {
            vh_warn("video %s: caption row %s has an oversized field: ignored",
                    video_id, PQgetvalue(res, i, 0));
            continue;
        }
        c = &out->c[out->n];
        snprintf(c->lang, sizeof(c->lang), "%s", PQgetvalue(res, i, 0));
        snprintf(c->label, sizeof(c->label), "%s", PQgetvalue(res, i, 1));
        c->is_default = PQgetvalue(res, i, 2)[0] == 't';
        snprintf(c->revision, sizeof(c->revision), "%s", PQgetvalue(res, i, 3));
        c->vtt = NULL;
        if (with_vtt) {
            c->vtt = vh_strdup(PQgetvalue(res, i, 4));
            if (c->vtt == NULL) {
                vh_error("out of memory reading the captions of video %s", video_id);
                vh_db_captions_free(out);
                goto done;
            }
        }
        out->n++;
    }
    rc = 0;
done:
    PQclear(res);
    return rc;
}

int
vh_db_captions(vh_db_t *db, const char *video_id, int with_vtt,
    vh_db_captions_t *out)
{
    int  table;

    memset(out, 0, sizeof(*out));
    if (db_connect(db) != 0) {
        return -1;
    }
    table = db_captions_table(db);
    if (table <= 0) {
        return table;           /* 0: no table, no captions */
    }
    return db_captions_query(db, video_id, with_vtt, out);
}

/* one statement inside the caption transaction: its rows, or -1 (rolled back) */
static int
db_tx_exec(vh_db_t *db, const char *what, const char *sql, int n,
    const char *const *params)
{
    PGresult  *res;
    int        rows;

    res = PQexecParams(db->conn, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK
        && PQresultStatus(res) != PGRES_TUPLES_OK)
    {
        vh_error("postgres %s failed: %s", what,
                 res ? PQresultErrorMessage(res) : PQerrorMessage(db->conn));
        db_note(db, res);
        PQclear(res);
        vh_db_rollback(db);
        return -1;
    }
    rows = PQresultStatus(res) == PGRES_TUPLES_OK ? PQntuples(res)
                                                   : atoi(PQcmdTuples(res));
    PQclear(res);
    return rows;
}

int
vh_db_caption_lock(vh_db_t *db, const char *video_id)
{
    const char *p[1] = { video_id };

    if (db_begin(db) != 0) {
        return -1;
    }
    return db_tx_exec(db, "caption lock", db->sql[SQL_CAP_LOCK], 1, p) < 0 ? -1 : 0;
}

int
vh_db_caption_publish_row(vh_db_t *db, const char *video_id, const char *lang,
    const char *source, const char *vtt, const char *revision,
    const char *label, int is_default, long cues)
{
    char        ncues[24];
    const char *p[8] = { video_id, lang, source, vtt, revision, label,
                         is_default ? "true" : "false", ncues };

    snprintf(ncues, sizeof(ncues), "%ld", cues);
    if (is_default
        && db_tx_exec(db, "clear the other default captions",
                      db->sql[SQL_CAP_CLEAR_DEFAULT], 2, p) < 0)
    {
        return -1;
    }
    return db_tx_exec(db, "caption publish", db->sql[SQL_CAP_PUBLISH], 8, p);
}

int
vh_db_caption_remove_row(vh_db_t *db, const char *video_id, const char *lang,
    const char *source)
{
    const char *p[3] = { video_id, lang, source };

    return db_tx_exec(db, "caption remove", db->sql[SQL_CAP_REMOVE], 3, p);
}

int
vh_db_caption_video(vh_db_t *db, const char *video_id, vh_db_video_t *v)
{
    const char *p[1] = { video_id };
    PGresult   *res;

    memset(v, 0, sizeof(*v));
    if (db_connect(db) != 0) {
        return -1;              /* in a transaction: connected, nothing done */
    }
    res = PQexecParams(db->conn, db->sql[SQL_CAP_VIDEO], 1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        vh_error("postgres read video %s for its captions failed: %s", video_id,
                 res ? PQresultErrorMessage(res) : PQerrorMessage(db->conn));
        db_note(db, res);
        PQclear(res);
        vh_db_rollback(db);
        return -1;
    }
    if (PQntuples(res) == 1) {
        v->found = 1;
        snprintf(v->status, sizeof(v->status), "%s", PQgetvalue(res, 0, 0));
        snprintf(v->storage_prefix, sizeof(v->storage_prefix), "%s",
                 PQgetvalue(res, 0, 1));
        v->duration = atof(PQgetvalue(res, 0, 2));
        if (!PQgetisnull(res, 0, 3)) {
            v->renditions = vh_strdup(PQgetvalue(res, 0, 3));
            if (v->renditions == NULL) {
                PQclear(res);
                vh_db_rollback(db);
                return -1;
            }
        }
    }
    PQclear(res);
    return 0;
}

/* the published captions inside the caption transaction */
int
vh_db_caption_list_tx(vh_db_t *db, const char *video_id, int with_vtt,
    vh_db_captions_t *out)
{
    if (db_captions_query(db, video_id, with_vtt, out) != 0) {
        vh_db_rollback(db);
        return -1;
    }
    return 0;
}

int
vh_db_commit(vh_db_t *db)
{
    /* a connection lost mid-transaction would COMMIT nothing, with a warning */
    if (db->conn == NULL || PQtransactionStatus(db->conn) != PQTRANS_INTRANS) {
        vh_error("postgres: the caption transaction was lost before COMMIT");
        vh_db_rollback(db);
        return -1;
    }
    return db_tx(db, "COMMIT");
}

void
vh_db_rollback(vh_db_t *db)
{
    if (db->conn != NULL && PQtransactionStatus(db->conn) != PQTRANS_IDLE
        && PQstatus(db->conn) == CONNECTION_OK)
    {
        db_tx(db, "ROLLBACK");
    }
}
