/*
 * The videos row, through libpq (synchronous, parameters only).  One
 * connection, re-established when it breaks.
 */

#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "vodlms_helper.h"

struct vh_db_s {
    char    *conninfo;
    PGconn  *conn;
};

vh_db_t *
vh_db_new(const char *conninfo)
{
    vh_db_t *db = calloc(1, sizeof(*db));

    if (db == NULL) {
        return NULL;
    }
    db->conninfo = vh_strdup(conninfo);
    return db;
}

void
vh_db_free(vh_db_t *db)
{
    if (db != NULL) {
        if (db->conn) {
            PQfinish(db->conn);
        }
        free(db->conninfo);
        free(db);
    }
}

static int
db_connect(vh_db_t *db)
{
    if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK) {
        return 0;
    }
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
        PQclear(res);
        if (PQstatus(db->conn) == CONNECTION_OK) {
            return -1;          /* a query error: retrying will not help */
        }
    }
    return -1;
}

int
vh_db_start(vh_db_t *db, const char *video_id, const char *source)
{
    const char *p[2] = { video_id, source };

    return db_exec(db, "start",
        "UPDATE videos SET status = 'processing', progress_percent = 0,"
        " error = NULL, source_location = coalesce(source_location, $2::text)"
        " WHERE id = $1::text", 2, p);
}

int
vh_db_progress(vh_db_t *db, const char *video_id, double percent)
{
    char        pct[32];
    const char *p[2] = { video_id, pct };

    if (percent < 0) {
        percent = 0;
    }
    if (percent > 99.99) {
        percent = 99.99;        /* 100 means ready */
    }
    snprintf(pct, sizeof(pct), "%.2f", percent);
    return db_exec(db, "progress",
        "UPDATE videos SET progress_percent = $2::numeric"
        " WHERE id = $1::text AND status = 'processing'", 2, p);
}

int
vh_db_ready(vh_db_t *db, const char *video_id, double duration,
    const char *renditions_json, const char *storage_prefix)
{
    char        dur[32];
    const char *p[4] = { video_id, dur, renditions_json, storage_prefix };

    snprintf(dur, sizeof(dur), "%.3f", duration);
    return db_exec(db, "ready",
        "UPDATE videos SET status = 'ready', progress_percent = 100,"
        " duration_seconds = $2::numeric, renditions = $3::jsonb,"
        " storage_prefix = $4::text, error = NULL"
        " WHERE id = $1::text", 4, p);
}

int
vh_db_failed(vh_db_t *db, const char *video_id, const char *error)
{
    const char *p[2] = { video_id, error };

    return db_exec(db, "failed",
        "UPDATE videos SET status = 'failed', error = $2::text"
        " WHERE id = $1::text", 2, p);
}

int
vh_db_requeue(vh_db_t *db, const char *video_id, const char *error)
{
    const char *p[2] = { video_id, error };

    return db_exec(db, "requeue",
        "UPDATE videos SET status = 'queued', progress_percent = 0,"
        " error = $2::text WHERE id = $1::text AND status <> 'ready'", 2, p);
}

/*
 * Old versions.  Rows are taken (removed_at set) before anything is
 * deleted, in one statement with SKIP LOCKED, so two helpers sweeping at
 * once never take the same row; a removal that fails gives its row back.
 */
int
vh_db_take_superseded(vh_db_t *db, double grace, int max,
    vh_db_superseded_pt cb, void *data)
{
    char        g[32], m[16];
    const char *p[2] = { g, m };
    const char *state;
    PGresult   *res;
    int         i, n;

    snprintf(g, sizeof(g), "%.3f", grace);
    snprintf(m, sizeof(m), "%d", max);
    if (db_connect(db) != 0) {
        return -1;
    }
    res = PQexecParams(db->conn,
        "UPDATE videos_superseded s SET removed_at = now()"
        " FROM (SELECT o.video_id, o.storage_prefix FROM videos_superseded o"
        "        WHERE o.removed_at IS NULL"
        "          AND o.superseded_at <= now() - make_interval(secs => $1::float8)"
        "          AND NOT EXISTS (SELECT 1 FROM videos v WHERE v.id = o.video_id"
        "                          AND v.storage_prefix = o.storage_prefix)"
        "        ORDER BY o.superseded_at LIMIT $2::int"
        "        FOR UPDATE SKIP LOCKED) t"
        " WHERE s.video_id = t.video_id AND s.storage_prefix = t.storage_prefix"
        " RETURNING s.video_id, s.storage_prefix",
        2, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (state != NULL && !strcmp(state, "42P01")) {
            PQclear(res);
            return -2;          /* undefined_table: migration 0006 not applied */
        }
        vh_error("postgres take superseded versions failed: %s",
                 res ? PQresultErrorMessage(res) : PQerrorMessage(db->conn));
        PQclear(res);
        return -1;
    }
    n = PQntuples(res);
    for (i = 0; i < n; i++) {
        const char *id = PQgetvalue(res, i, 0), *prefix = PQgetvalue(res, i, 1);

        if (cb(data, id, prefix) != 0) {
            vh_db_give_back_superseded(db, id, prefix);
        }
    }
    PQclear(res);
    return n;
}

int
vh_db_give_back_superseded(vh_db_t *db, const char *video_id,
    const char *storage_prefix)
{
    const char *p[2] = { video_id, storage_prefix };

    return db_exec(db, "give back a superseded version",
        "UPDATE videos_superseded SET removed_at = NULL"
        " WHERE video_id = $1::text AND storage_prefix = $2::text", 2, p);
}
