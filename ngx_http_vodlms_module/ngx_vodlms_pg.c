/*
 * Non-blocking PostgreSQL client for nginx workers.
 *
 * libpq (15 on Debian 12) provides the protocol and an asynchronous API;
 * this file wraps each connection's socket in an ngx_connection_t so that
 * nginx's event loop drives all I/O.  Design notes:
 *
 * - One query at a time per connection (no pipeline mode): a query takes an
 *   idle connection, or opens a new one while the pool has room, or waits
 *   in a FIFO.  Its one timer (timeout=) runs from the call to the answer,
 *   waiting included, so a caller's latency is bounded by timeout=.
 * - Connecting: PQconnectStartParams + PQconnectPoll on socket readiness,
 *   with connect_timeout= on a timer (libpq's own connect_timeout only works
 *   in its blocking calls).  libpq may close its socket and open another
 *   during a connect (next address or host, SSL retry), even under the same
 *   number: the socket's inode tells, and the new one is wrapped afresh.
 *   Host names are resolved at nginx -t into hostaddr, since libpq would
 *   resolve them with a blocking getaddrinfo; with "resolve" (and a
 *   "resolver" at the http{} level), before the connect instead (ngx_vodlms_pg_names.c): a
 *   name never resolved holds the connects (the queries wait in the FIFO),
 *   a known name whose answer expired does not (its last addresses serve
 *   while the lookup runs), and a name that moved ends the back-off.
 *   The connect timer is cancelable: a graceful stop does not wait for it.
 * - Sockets are watched level-triggered, and only in the direction libpq
 *   wants: a level-triggered write interest on a writable socket would spin.
 *   Idle connections keep read interest, so a server that goes away is seen
 *   at once (EOF), not by the next query.
 * - Named statements are prepared lazily, once per connection; a
 *   reconnected connection prepares them again.
 * - A query that times out costs its connection: PQcancel() would block the
 *   worker, so the connection is closed instead and the server aborts the
 *   query when it notices the client is gone (see the query timer).
 * - A failed connect is counted for back-off (first retry at once, then
 *   100ms doubling to 250ms; connects that fail together count once).
 *   From then on until a connect succeeds, the pool is down and connects
 *   one at a time: each a probe, started by a query when the back-off
 *   allows, or by the retry timer for the queries that wait.  A query is
 *   failed only on the word of a connect that started after it came: the
 *   queries waiting when a probe starts share its fate, those that come
 *   while it runs wait for the next one (at most
 *   NGX_VODLMS_PG_DOWN_WAITING of them; more fail at once), each within
 *   its own timeout=.  So a server that is back (a new primary) is found by
 *   the first connect after it came back, and no query that came after
 *   that fails; a dead one gets one connect per back-off step per worker.
 *   A lost established connection is just replaced.
 * - The socket belongs to libpq (PQfinish closes it): the ngx_connection_t
 *   is freed without closing, as the Redis layer does.
 * - Failover.  A multi-host conninfo is libpq's: PQconnectPoll tries the
 *   hosts in order and, with target_session_attrs=read-write, skips
 *   standbys.  Our connect timer covers the whole attempt, so one silent
 *   host would time out every attempt from the first host on: after a
 *   timeout the next attempt starts with the host after the silent one
 *   (conf->rotations, or the names' slots), at once for the queries
 *   waiting.  A server that answers SQLSTATE 25006 (read-only
 *   transaction: an old primary back as a standby, or fenced) had no
 *   effect from the statement: every connection opened before it is
 *   retired, and the query is tried once more on a fresh connection.
 * - A pool with a fallback (the replica's: the primary) hands the reads it
 *   cannot serve over to it; see ngx_vodlms_pg_pool_fallback().
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_vodlms_pg_internal.h"
#include "ngx_vodlms_backoff.h"
#include "ngx_vodlms_metrics.h"


#define NGX_VODLMS_PG_MAX_PARAMS         65535
#define NGX_VODLMS_PG_NO_STMT            ((ngx_uint_t) -1)

/*
 * The shared back-off waits up to 2 s; a PostgreSQL pool at most 250 ms.
 * While the pool is down its queries wait for the next connect instead of
 * failing at once, so a step must fit well within the default timeout=
 * (1 s) with two connects: the one under way when a query comes, and the
 * next.  A dead server then gets at most 4 connects a second per worker,
 * one at a time and only while queries come: what it got before at the
 * old 1 s cap, when each retry opened up to pool_size=4 connects at once.
 */
#define NGX_VODLMS_PG_RETRY_MAX          250

/*
 * Queries of one pool and worker that may wait for a down server's next
 * connect: a 250 ms step's worth at 1,000 gated requests a second.  More
 * are refused at once, as every query was before.
 */
#define NGX_VODLMS_PG_DOWN_WAITING       256


typedef enum {
    NGX_VODLMS_PG_CONNECTING = 0,
    NGX_VODLMS_PG_IDLE,
    NGX_VODLMS_PG_PREPARE,
    NGX_VODLMS_PG_EXECUTE
} ngx_vodlms_pg_state_e;


#if (NGX_DEBUG)
/* for debug lines, by ngx_vodlms_pg_state_e */
static const char  *ngx_vodlms_pg_states[] = {
    "connecting", "idle", "prepare", "execute"
};
#endif


typedef struct ngx_vodlms_pg_conn_s   ngx_vodlms_pg_conn_t;
typedef struct ngx_vodlms_pg_query_s  ngx_vodlms_pg_query_t;


/* a statement as libpq wants it: NUL-ended */
typedef struct {
    char                       *name;
    char                       *sql;
    int                         nparams;
} ngx_vodlms_pg_prep_t;


struct ngx_vodlms_pg_pool_s {
    ngx_vodlms_pg_conf_t       *conf;
    ngx_log_t                  *log;
    ngx_vodlms_pg_stmt_t       *stmts;        /* the caller's array */
    ngx_vodlms_pg_prep_t       *preps;        /* the same, NUL-ended */
    ngx_uint_t                  nstmts;
    ngx_queue_t                 conns;        /* usable connections */
    ngx_uint_t                  nconns;
    ngx_uint_t                  nconnecting;
    ngx_queue_t                 waiting;      /* queries, FIFO */
    ngx_uint_t                  nwaiting;
    ngx_vodlms_backoff_t        backoff;
    ngx_vodlms_pg_pool_t       *fallback;     /* for reads, or NULL */
    ngx_uint_t                  start;        /* of conf->rotations */
    ngx_uint_t                  epoch;        /* read-only answers seen */
    ngx_uint_t                  round;        /* failed connects counted */
    ngx_uint_t                  attempts;     /* connects started */
    ngx_event_t                 retry;        /* the next connect, down */
    ngx_vodlms_pg_names_t      *names;        /* resolved at run time */
    char                        reason[NGX_VODLMS_PG_REASON_LEN];
    unsigned                    exiting:1;
    unsigned                    fallen_back:1; /* down: reads go to fallback */
    unsigned                    resolving:1;  /* connects wait for names */
};


struct ngx_vodlms_pg_conn_s {
    ngx_queue_t                 queue;
    ngx_vodlms_pg_pool_t       *pool;
    PGconn                     *pg;
    ngx_connection_t           *connection;
    ngx_file_uniq_t             uniq;         /* the wrapped socket's inode */
    ngx_event_t                 timer;        /* connect timeout */
    ngx_vodlms_pg_query_t      *query;        /* running, or NULL */
    PGresult                   *result;       /* of the running step */
    ngx_vodlms_pg_state_e       state;
    u_char                     *prepared;     /* per statement: done here */
    ngx_uint_t                  epoch;        /* the pool's, when opened */
    ngx_uint_t                  round;        /* the pool's, when opened */
    char                        reason[NGX_VODLMS_PG_REASON_LEN];
    unsigned                    flushing:1;
    unsigned                    rotated:1;    /* timed out, start moved on */
};


struct ngx_vodlms_pg_query_s {
    ngx_queue_t                 queue;        /* in pool->waiting */
    ngx_vodlms_pg_pool_t       *pool;
    ngx_vodlms_pg_conn_t       *conn;
    ngx_uint_t                  stmt;         /* or NGX_VODLMS_PG_NO_STMT */
    char                       *sql;          /* one-off SQL */
    int                         nvalues;
    char                      **values;
    ngx_vodlms_pg_done_pt       on_done;
    void                       *data;
    ngx_event_t                 timer;
    ngx_pool_cleanup_t         *cleanup;
    ngx_msec_t                  started;      /* for the latency metric */
    ngx_uint_t                  attempt;      /* pool->attempts when placed */
    unsigned                    waiting:1;
    unsigned                    detached:1;
    unsigned                    retried:1;    /* after a read-only answer */
    unsigned                    moved:1;      /* to the fallback pool */
};


static ngx_int_t ngx_vodlms_pg_submit(ngx_vodlms_pg_pool_t *pool,
    ngx_pool_t *owner, ngx_log_t *log, ngx_uint_t stmt, ngx_str_t *sql,
    ngx_str_t *values, ngx_uint_t nvalues, ngx_vodlms_pg_done_pt on_done,
    void *data, ngx_vodlms_pg_status_e *status, const char **reason);

static ngx_int_t ngx_vodlms_pg_place(ngx_vodlms_pg_pool_t *pool,
    ngx_vodlms_pg_query_t *query, ngx_log_t *log,
    ngx_vodlms_pg_status_e *status, const char **reason);
static void ngx_vodlms_pg_move(ngx_vodlms_pg_query_t *query);
static ngx_uint_t ngx_vodlms_pg_may_move(ngx_vodlms_pg_query_t *query);
static void ngx_vodlms_pg_fall_back(ngx_vodlms_pg_pool_t *pool);
static void ngx_vodlms_pg_close_idle(ngx_vodlms_pg_pool_t *pool,
    const char *why);
static void ngx_vodlms_pg_probe(ngx_vodlms_pg_pool_t *pool);
static ngx_uint_t ngx_vodlms_pg_holds(ngx_vodlms_pg_pool_t *pool);
static void ngx_vodlms_pg_retry_later(ngx_vodlms_pg_pool_t *pool);
static void ngx_vodlms_pg_retry(ngx_event_t *ev);
static ngx_uint_t ngx_vodlms_pg_rotate(ngx_vodlms_pg_conn_t *conn);
static void ngx_vodlms_pg_backoff(ngx_vodlms_pg_pool_t *pool);
static const char **ngx_vodlms_pg_resolve(ngx_vodlms_pg_pool_t *pool);
static void ngx_vodlms_pg_resolved(void *data, ngx_uint_t moved,
    const char *err);
static void ngx_vodlms_pg_moved(ngx_vodlms_pg_pool_t *pool);
static ngx_int_t ngx_vodlms_pg_read_only(ngx_vodlms_pg_conn_t *conn,
    PGresult *res, const char *reason);
static ngx_vodlms_pg_conn_t *ngx_vodlms_pg_idle(ngx_vodlms_pg_pool_t *pool,
    ngx_log_t *log);
static ngx_vodlms_pg_query_t *ngx_vodlms_pg_query_new(
    ngx_vodlms_pg_pool_t *pool, ngx_log_t *log, ngx_uint_t stmt,
    ngx_str_t *sql, ngx_str_t *values, ngx_uint_t nvalues, size_t size);
#if (NGX_DEBUG)
static const char *ngx_vodlms_pg_what(ngx_vodlms_pg_pool_t *pool,
    ngx_uint_t stmt);
#endif
static ngx_vodlms_pg_conn_t *ngx_vodlms_pg_connect(ngx_vodlms_pg_pool_t *pool);
static void ngx_vodlms_pg_maybe_connect(ngx_vodlms_pg_pool_t *pool);
static ngx_int_t ngx_vodlms_pg_wrap(ngx_vodlms_pg_conn_t *conn,
    ngx_socket_t fd);
static void ngx_vodlms_pg_unwrap(ngx_vodlms_pg_conn_t *conn);
static ngx_int_t ngx_vodlms_pg_rewrap(ngx_vodlms_pg_conn_t *conn);
static ngx_int_t ngx_vodlms_pg_watch(ngx_vodlms_pg_conn_t *conn,
    ngx_uint_t read, ngx_uint_t write);
static void ngx_vodlms_pg_fail(ngx_vodlms_pg_conn_t *conn,
    ngx_vodlms_pg_status_e status, const char *reason);
static void ngx_vodlms_pg_fail_waiting(ngx_vodlms_pg_pool_t *pool,
    ngx_vodlms_pg_status_e status, const char *reason);
static void ngx_vodlms_pg_close(ngx_vodlms_pg_conn_t *conn);

static void ngx_vodlms_pg_event_handler(ngx_event_t *ev);
static void ngx_vodlms_pg_connect_timeout(ngx_event_t *ev);
static void ngx_vodlms_pg_connect_poll(ngx_vodlms_pg_conn_t *conn);
static void ngx_vodlms_pg_connected(ngx_vodlms_pg_conn_t *conn);
static void ngx_vodlms_pg_io(ngx_vodlms_pg_conn_t *conn, ngx_uint_t write);
static void ngx_vodlms_pg_lost(ngx_vodlms_pg_conn_t *conn);
static ngx_int_t ngx_vodlms_pg_results(ngx_vodlms_pg_conn_t *conn);
static ngx_int_t ngx_vodlms_pg_step_done(ngx_vodlms_pg_conn_t *conn);
static ngx_int_t ngx_vodlms_pg_send(ngx_vodlms_pg_conn_t *conn);
static ngx_int_t ngx_vodlms_pg_done(ngx_vodlms_pg_conn_t *conn,
    ngx_vodlms_pg_status_e status, PGresult *res, const char *reason);
static ngx_int_t ngx_vodlms_pg_release(ngx_vodlms_pg_conn_t *conn);
static ngx_int_t ngx_vodlms_pg_next(ngx_vodlms_pg_conn_t *conn);
static void ngx_vodlms_pg_notice(void *arg, const char *message);
#if (NGX_OPENSSL)
static ngx_uint_t ngx_vodlms_pg_ssl_pending(PGconn *pg);
#endif

static void ngx_vodlms_pg_finish(ngx_vodlms_pg_query_t *q,
    ngx_vodlms_pg_status_e status, PGresult *res, const char *reason);
static void ngx_vodlms_pg_query_timeout(ngx_event_t *ev);
static void ngx_vodlms_pg_query_detach(void *data);


/* configuration */



/* the per-worker pool */

ngx_vodlms_pg_pool_t *
ngx_vodlms_pg_pool_create(ngx_cycle_t *cycle, ngx_vodlms_pg_conf_t *conf,
    ngx_array_t *stmts)
{
    ngx_uint_t             i;
    ngx_vodlms_pg_stmt_t  *st;
    ngx_vodlms_pg_prep_t  *pp;
    ngx_vodlms_pg_pool_t  *pool;

    pool = ngx_pcalloc(cycle->pool, sizeof(ngx_vodlms_pg_pool_t));
    if (pool == NULL) {
        return NULL;
    }

    pool->conf = conf;
    pool->log = cycle->log;
    ngx_queue_init(&pool->conns);
    ngx_queue_init(&pool->waiting);

    pool->retry.handler = ngx_vodlms_pg_retry;
    pool->retry.data = pool;
    pool->retry.log = cycle->log;
    pool->retry.cancelable = 1;       /* a graceful stop does not wait */

    if (conf->resolver) {
        pool->names = ngx_vodlms_pg_names_create(cycle, conf,
                                                 ngx_vodlms_pg_resolved, pool);
        if (pool->names == NULL) {
            return NULL;
        }
    }

    if (stmts == NULL || stmts->nelts == 0) {
        return pool;
    }

    pool->stmts = stmts->elts;
    pool->nstmts = stmts->nelts;

    pool->preps = ngx_pcalloc(cycle->pool,
                              stmts->nelts * sizeof(ngx_vodlms_pg_prep_t));
    if (pool->preps == NULL) {
        return NULL;
    }

    st = stmts->elts;
    pp = pool->preps;

    for (i = 0; i < stmts->nelts; i++) {

        /* "" is the unnamed statement, which one-off queries overwrite */
        if (st[i].name.len == 0 || st[i].sql.len == 0
            || st[i].nparams > NGX_VODLMS_PG_MAX_PARAMS)
        {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "vodlms: invalid postgres statement \"%V\"",
                          &st[i].name);
            return NULL;
        }

        pp[i].name = ngx_pnalloc(cycle->pool, st[i].name.len + 1);
        pp[i].sql = ngx_pnalloc(cycle->pool, st[i].sql.len + 1);
        if (pp[i].name == NULL || pp[i].sql == NULL) {
            return NULL;
        }

        ngx_cpystrn((u_char *) pp[i].name, st[i].name.data,
                    st[i].name.len + 1);
        ngx_cpystrn((u_char *) pp[i].sql, st[i].sql.data, st[i].sql.len + 1);
        pp[i].nparams = (int) st[i].nparams;
    }

    return pool;
}


void
ngx_vodlms_pg_pool_destroy(ngx_vodlms_pg_pool_t *pool)
{
    ngx_queue_t            *q;
    ngx_vodlms_pg_conn_t   *conn;
    ngx_vodlms_pg_query_t  *query;

    pool->exiting = 1;

    if (pool->retry.timer_set) {
        ngx_del_timer(&pool->retry);
    }

    if (pool->names) {
        ngx_vodlms_pg_names_cancel(pool->names);
    }

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                   "vodlms pg: destroy, %V: %ui open, %ui waiting",
                   &pool->conf->name, pool->nconns, pool->nwaiting);

    while (!ngx_queue_empty(&pool->conns)) {
        q = ngx_queue_head(&pool->conns);
        conn = ngx_queue_data(q, ngx_vodlms_pg_conn_t, queue);
        ngx_vodlms_pg_fail(conn, NGX_VODLMS_PG_ERROR, "worker is exiting");
    }

    while (!ngx_queue_empty(&pool->waiting)) {
        q = ngx_queue_head(&pool->waiting);
        query = ngx_queue_data(q, ngx_vodlms_pg_query_t, queue);

        ngx_queue_remove(q);
        pool->nwaiting--;
        query->waiting = 0;

        ngx_vodlms_pg_finish(query, NGX_VODLMS_PG_ERROR, NULL,
                             "worker is exiting");
    }
}


void
ngx_vodlms_pg_pool_fallback(ngx_vodlms_pg_pool_t *pool,
    ngx_vodlms_pg_pool_t *fallback)
{
    pool->fallback = fallback;
}


ngx_uint_t
ngx_vodlms_pg_unsent(ngx_vodlms_pg_pool_t *pool, ngx_vodlms_pg_done_pt on_done,
    void *data)
{
    ngx_queue_t            *q;
    ngx_vodlms_pg_query_t  *query;

    for (q = ngx_queue_head(&pool->waiting);
         q != ngx_queue_sentinel(&pool->waiting);
         q = ngx_queue_next(q))
    {
        query = ngx_queue_data(q, ngx_vodlms_pg_query_t, queue);

        if (query->on_done == on_done && query->data == data) {
            return 1;
        }
    }

    return 0;
}


ngx_int_t
ngx_vodlms_pg_query(ngx_vodlms_pg_pool_t *pool, ngx_pool_t *owner,
    ngx_log_t *log, ngx_vodlms_pg_stmt_t *stmt, ngx_str_t *values,
    ngx_uint_t nvalues, ngx_vodlms_pg_done_pt on_done, void *data,
    ngx_vodlms_pg_status_e *status, const char **reason)
{
    ngx_uint_t  i;

    /* the caller's own item, or one of the same name */

    if (stmt >= pool->stmts && stmt < pool->stmts + pool->nstmts) {
        i = stmt - pool->stmts;

    } else {
        for (i = 0; i < pool->nstmts; i++) {
            if (pool->stmts[i].name.len == stmt->name.len
                && ngx_strncmp(pool->stmts[i].name.data, stmt->name.data,
                               stmt->name.len)
                   == 0)
            {
                break;
            }
        }

        if (i == pool->nstmts) {
            ngx_snprintf((u_char *) pool->reason, sizeof(pool->reason) - 1,
                         "postgres statement \"%V\" is not known to the "
                         "pool%Z", &stmt->name);
            *status = NGX_VODLMS_PG_ERROR;
            *reason = pool->reason;
            return NGX_DECLINED;
        }
    }

    if (nvalues != (ngx_uint_t) pool->preps[i].nparams) {
        ngx_snprintf((u_char *) pool->reason, sizeof(pool->reason) - 1,
                     "postgres statement \"%V\" takes %d parameters, "
                     "not %ui%Z", &stmt->name, pool->preps[i].nparams,
                     nvalues);
        *status = NGX_VODLMS_PG_ERROR;
        *reason = pool->reason;
        return NGX_DECLINED;
    }

    return ngx_vodlms_pg_submit(pool, owner, log, i, NULL, values, nvalues,
                                on_done, data, status, reason);
}


ngx_int_t
ngx_vodlms_pg_query_sql(ngx_vodlms_pg_pool_t *pool, ngx_pool_t *owner,
    ngx_log_t *log, ngx_str_t *sql, ngx_str_t *values, ngx_uint_t nvalues,
    ngx_vodlms_pg_done_pt on_done, void *data,
    ngx_vodlms_pg_status_e *status, const char **reason)
{
    if (sql->len == 0 || ngx_strlchr(sql->data, sql->data + sql->len, '\0')) {
        *status = NGX_VODLMS_PG_ERROR;
        *reason = "empty or invalid SQL";
        return NGX_DECLINED;
    }

    return ngx_vodlms_pg_submit(pool, owner, log, NGX_VODLMS_PG_NO_STMT, sql,
                                values, nvalues, on_done, data, status,
                                reason);
}


static ngx_int_t
ngx_vodlms_pg_submit(ngx_vodlms_pg_pool_t *pool, ngx_pool_t *owner,
    ngx_log_t *log, ngx_uint_t stmt, ngx_str_t *sql, ngx_str_t *values,
    ngx_uint_t nvalues, ngx_vodlms_pg_done_pt on_done, void *data,
    ngx_vodlms_pg_status_e *status, const char **reason)
{
    size_t                  size;
    ngx_int_t               rc;
    ngx_uint_t              i;
    ngx_pool_cleanup_t     *cln;
    ngx_vodlms_pg_query_t  *query;

    if (log == NULL) {
        log = pool->log;
    }

    if (pool->exiting) {
        *status = NGX_VODLMS_PG_ERROR;
        *reason = "worker is exiting";
        return NGX_DECLINED;
    }

    if (nvalues > NGX_VODLMS_PG_MAX_PARAMS) {
        *status = NGX_VODLMS_PG_ERROR;
        *reason = "too many query parameters";
        return NGX_DECLINED;
    }

    /* text parameters are C strings: a NUL would cut one silently */

    size = sizeof(ngx_vodlms_pg_query_t) + nvalues * sizeof(char *)
           + (sql ? sql->len + 1 : 0);

    for (i = 0; i < nvalues; i++) {
        if (values[i].data == NULL) {
            continue;
        }

        if (ngx_strlchr(values[i].data, values[i].data + values[i].len, '\0'))
        {
            ngx_snprintf((u_char *) pool->reason, sizeof(pool->reason) - 1,
                         "query parameter $%ui holds a NUL byte%Z", i + 1);
            *status = NGX_VODLMS_PG_ERROR;
            *reason = pool->reason;
            return NGX_DECLINED;
        }

        size += values[i].len + 1;
    }

    cln = NULL;

    if (owner) {
        cln = ngx_pool_cleanup_add(owner, 0);
        if (cln == NULL) {
            return NGX_ERROR;
        }
    }

    query = ngx_vodlms_pg_query_new(pool, log, stmt, sql, values, nvalues,
                                    size);
    if (query == NULL) {
        return NGX_ERROR;
    }

    query->on_done = on_done;
    query->data = data;
    query->started = ngx_current_msec;

    rc = ngx_vodlms_pg_place(pool, query, log, status, reason);

    if (rc == NGX_DECLINED && pool->fallback && !pool->fallback->exiting) {
        /* the replica cannot take it now: the primary can */
        ngx_log_debug3(NGX_LOG_DEBUG_EVENT, log, 0,
                       "vodlms pg: fallback, %V: %s goes to %V",
                       &pool->conf->name, ngx_vodlms_pg_what(pool, stmt),
                       &pool->fallback->conf->name);

        query->pool = pool->fallback;
        query->moved = 1;

        rc = ngx_vodlms_pg_place(pool->fallback, query, log, status, reason);
    }

    if (rc != NGX_OK) {
        /* the caller hears of it from the return value, not on_done */
        ngx_free(query);
        return rc;
    }

    if (cln) {
        cln->handler = ngx_vodlms_pg_query_detach;
        cln->data = query;
        query->cleanup = cln;
    }

    ngx_add_timer(&query->timer, query->pool->conf->timeout);

    return NGX_OK;
}


/*
 * A query that no connection runs yet is given one: an idle connection,
 * or a place in the FIFO, with a new connection while the pool has room.
 * NGX_DECLINED: the pool cannot take it (*status and *reason say why; the
 * query is the caller's again).
 */

static ngx_int_t
ngx_vodlms_pg_place(ngx_vodlms_pg_pool_t *pool, ngx_vodlms_pg_query_t *query,
    ngx_log_t *log, ngx_vodlms_pg_status_e *status, const char **reason)
{
    ngx_uint_t             attempts;
    ngx_vodlms_pg_conn_t  *conn;

    if (pool->fallen_back && pool->fallback && !query->moved) {
        /* known down: the query does not wait for it, a probe does */
        ngx_vodlms_pg_probe(pool);

        *status = NGX_VODLMS_PG_DOWN;
        *reason = pool->reason;
        return NGX_DECLINED;
    }

    /* only a connect that starts from now on may fail it */
    query->attempt = pool->attempts;

    conn = ngx_vodlms_pg_idle(pool, log);

    if (conn) {
        conn->query = query;
        query->conn = conn;

        if (ngx_vodlms_pg_send(conn) != NGX_OK) {
            conn->query = NULL;
            query->conn = NULL;

            ngx_vodlms_pg_fail(conn, NGX_VODLMS_PG_ERROR, conn->reason);

            *status = NGX_VODLMS_PG_ERROR;
            *reason = pool->reason;
            return NGX_DECLINED;
        }

        return NGX_OK;
    }

    if (pool->backoff.failures && pool->nconns == pool->nconnecting
        && pool->nwaiting >= NGX_VODLMS_PG_DOWN_WAITING)
    {
        /* down, and enough queries wait for its next connect already */
        *status = NGX_VODLMS_PG_DOWN;
        *reason = pool->reason;
        return NGX_DECLINED;
    }

    /* down (a connect has failed): one connect at a time, a probe */

    if (pool->nconns < pool->conf->pool_size
        && (pool->backoff.failures ? pool->nconnecting == 0
                                   : pool->nconnecting <= pool->nwaiting))
    {
        attempts = pool->attempts;

        if (ngx_vodlms_pg_connect(pool) == NULL && pool->nconns == 0
            && !pool->resolving
            && (pool->attempts != attempts || !ngx_vodlms_pg_holds(pool)))
        {
            /*
             * The connect failed at once (refused, no address), or a
             * replica in back-off: its reads go to the primary
             */
            *status = ngx_vodlms_backoff_left(&pool->backoff)
                      ? NGX_VODLMS_PG_DOWN : NGX_VODLMS_PG_ERROR;
            *reason = pool->reason;

            if (pool->fallback && !query->moved) {
                ngx_vodlms_pg_fall_back(pool);
            }

            return NGX_DECLINED;
        }
    }

    ngx_queue_insert_tail(&pool->waiting, &query->queue);
    pool->nwaiting++;
    query->waiting = 1;

    if (pool->nconns == 0 && !pool->resolving) {
        /* in back-off: the query waits for the next connect, not a 503 */
        ngx_vodlms_pg_retry_later(pool);
    }

    ngx_log_debug5(NGX_LOG_DEBUG_EVENT, log, 0,
                   "vodlms pg: wait, %V: %s waits for a connection, "
                   "%ui waiting, %ui of pool_size=%ui open",
                   &pool->conf->name, ngx_vodlms_pg_what(pool, query->stmt),
                   pool->nwaiting, pool->nconns, pool->conf->pool_size);

    return NGX_OK;
}


/*
 * A query under way on a pool that cannot serve it goes on to the
 * fallback pool, once, with a timer of that pool's timeout=: the replica
 * did not answer, so the time spent on it says nothing of the primary.
 */

static void
ngx_vodlms_pg_move(ngx_vodlms_pg_query_t *query)
{
    const char              *reason;
    ngx_vodlms_pg_pool_t    *pool, *fallback;
    ngx_vodlms_pg_status_e   status;

    pool = query->pool;
    fallback = pool->fallback;

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                   "vodlms pg: fallback, %V: %s goes to %V",
                   &pool->conf->name, ngx_vodlms_pg_what(pool, query->stmt),
                   &fallback->conf->name);

    if (query->timer.timer_set) {
        ngx_del_timer(&query->timer);
    }

    query->pool = fallback;
    query->moved = 1;

    if (ngx_vodlms_pg_place(fallback, query, fallback->log, &status, &reason)
        != NGX_OK)
    {
        ngx_vodlms_pg_finish(query, status, NULL, reason);
        return;
    }

    ngx_add_timer(&query->timer, fallback->conf->timeout);
}


/* may a query that this pool could not serve go to the fallback? */

static ngx_uint_t
ngx_vodlms_pg_may_move(ngx_vodlms_pg_query_t *query)
{
    ngx_vodlms_pg_pool_t  *pool;

    pool = query->pool;

    return pool->fallback != NULL && !query->moved && !query->detached
           && !pool->exiting && !pool->fallback->exiting;
}


/* the pool is down: reads go to the fallback until it connects again */

static void
ngx_vodlms_pg_fall_back(ngx_vodlms_pg_pool_t *pool)
{
    if (pool->fallen_back) {
        return;
    }

    pool->fallen_back = 1;

    ngx_log_error(NGX_LOG_WARN, pool->log, 0,
                  "vodlms: postgres replica %V is unavailable, reading "
                  "from %V until it answers again: %s",
                  &pool->conf->name, &pool->fallback->conf->name,
                  pool->reason);

    /* to a silent server, likely; and the probes need the room */
    ngx_vodlms_pg_close_idle(pool, "the replica is unavailable");
}


/* closes the idle connections quietly: no query, no callback, no connect */

static void
ngx_vodlms_pg_close_idle(ngx_vodlms_pg_pool_t *pool, const char *why)
{
    ngx_queue_t           *q, *next;
    ngx_vodlms_pg_conn_t  *c;

    for (q = ngx_queue_head(&pool->conns);
         q != ngx_queue_sentinel(&pool->conns);
         q = next)
    {
        next = ngx_queue_next(q);
        c = ngx_queue_data(q, ngx_vodlms_pg_conn_t, queue);

        if (c->state != NGX_VODLMS_PG_IDLE) {
            continue;
        }

        ngx_log_debug3(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                       "vodlms pg: close, %V fd:%d, idle: %s",
                       &pool->conf->name, c->connection->fd, why);

        ngx_queue_remove(&c->queue);
        pool->nconns--;
        ngx_vodlms_pg_close(c);
    }
}


/* a down pool tries to connect again, with no query waiting for it */

static void
ngx_vodlms_pg_probe(ngx_vodlms_pg_pool_t *pool)
{
    if (pool->nconnecting == 0
        && pool->nconns < pool->conf->pool_size
        && ngx_vodlms_backoff_left(&pool->backoff) == 0)
    {
        ngx_log_debug1(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                       "vodlms pg: probe, %V: is it back?",
                       &pool->conf->name);

        (void) ngx_vodlms_pg_connect(pool);
    }
}


/*
 * Do queries wait for this pool's next connect when it has none?  Not a
 * replica's: its reads go to the primary instead.
 */

static ngx_uint_t
ngx_vodlms_pg_holds(ngx_vodlms_pg_pool_t *pool)
{
    return !pool->exiting
           && (pool->fallback == NULL || pool->fallback->exiting);
}


/* queries wait, and no connect is under way: the next one when allowed */

static void
ngx_vodlms_pg_retry_later(ngx_vodlms_pg_pool_t *pool)
{
    ngx_msec_t  left;

    if (pool->retry.timer_set || pool->exiting) {
        return;
    }

    left = ngx_vodlms_backoff_left(&pool->backoff);

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                   "vodlms pg: retry, %V: %ui waiting, the next connect in "
                   "%M ms", &pool->conf->name, pool->nwaiting, left);

    ngx_add_timer(&pool->retry, left);
}


/*
 * The back-off is over and queries wait with no connection: one connect,
 * a probe, for all of them.  If it fails at once, they fail with it.
 */

static void
ngx_vodlms_pg_retry(ngx_event_t *ev)
{
    ngx_vodlms_pg_pool_t  *pool = ev->data;

    ngx_vodlms_pg_status_e  status;

    u_char  buf[NGX_VODLMS_PG_REASON_LEN];

    if (pool->exiting || pool->nwaiting == 0 || pool->nconns
        || pool->resolving)
    {
        /* nobody waits (any more), or a connect is under way already */
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                   "vodlms pg: probe, %V: one connect for %ui waiting",
                   &pool->conf->name, pool->nwaiting);

    if (ngx_vodlms_pg_connect(pool) != NULL || pool->nconns
        || pool->resolving)
    {
        return;
    }

    /* those it answered for fail; the timer is set again for the others */

    status = ngx_vodlms_backoff_left(&pool->backoff)
             ? NGX_VODLMS_PG_DOWN : NGX_VODLMS_PG_ERROR;

    ngx_cpystrn(buf, (u_char *) pool->reason, sizeof(buf));
    ngx_vodlms_pg_fail_waiting(pool, status, (char *) buf);
}


/* the caller's log: the "get" and "wait" lines name the request */

static ngx_vodlms_pg_conn_t *
ngx_vodlms_pg_idle(ngx_vodlms_pg_pool_t *pool, ngx_log_t *log)
{
    ngx_queue_t           *q;
    ngx_vodlms_pg_conn_t  *c;

    for (q = ngx_queue_head(&pool->conns);
         q != ngx_queue_sentinel(&pool->conns);
         q = ngx_queue_next(q))
    {
        c = ngx_queue_data(q, ngx_vodlms_pg_conn_t, queue);

        if (c->state == NGX_VODLMS_PG_IDLE) {
            ngx_log_debug2(NGX_LOG_DEBUG_EVENT, log, 0,
                           "vodlms pg: get, %V fd:%d: an idle connection",
                           &pool->conf->name, c->connection->fd);
            return c;
        }
    }

    return NULL;
}


/* the query and its values in one allocation of size bytes (checked) */

static ngx_vodlms_pg_query_t *
ngx_vodlms_pg_query_new(ngx_vodlms_pg_pool_t *pool, ngx_log_t *log,
    ngx_uint_t stmt, ngx_str_t *sql, ngx_str_t *values, ngx_uint_t nvalues,
    size_t size)
{
    u_char                 *p;
    ngx_uint_t              i;
    ngx_vodlms_pg_query_t  *query;

    query = ngx_alloc(size, log);
    if (query == NULL) {
        return NULL;
    }

    ngx_memzero(query, sizeof(ngx_vodlms_pg_query_t));

    query->pool = pool;
    query->stmt = stmt;
    query->nvalues = (int) nvalues;
    query->values = (char **) (query + 1);

    p = (u_char *) (query->values + nvalues);

    for (i = 0; i < nvalues; i++) {
        if (values[i].data == NULL) {
            query->values[i] = NULL;
            continue;
        }

        query->values[i] = (char *) p;
        p = ngx_cpymem(p, values[i].data, values[i].len);
        *p++ = '\0';
    }

    if (sql) {
        query->sql = (char *) p;
        p = ngx_cpymem(p, sql->data, sql->len);
        *p = '\0';
    }

    query->timer.handler = ngx_vodlms_pg_query_timeout;
    query->timer.data = query;
    query->timer.log = pool->log;

    return query;
}


#if (NGX_DEBUG)

/* a query's statement name for debug lines; never its SQL or values */

static const char *
ngx_vodlms_pg_what(ngx_vodlms_pg_pool_t *pool, ngx_uint_t stmt)
{
    if (stmt == NGX_VODLMS_PG_NO_STMT) {
        return "one-off SQL";
    }

    return pool->preps[stmt].name;
}

#endif


static ngx_vodlms_pg_conn_t *
ngx_vodlms_pg_connect(ngx_vodlms_pg_pool_t *pool)
{
    u_char                *p, *last;
    PGconn                *pg;
    ngx_msec_t             left;
    const char           **keywords, **values;
    ngx_vodlms_pg_conf_t  *conf;
    ngx_vodlms_pg_conn_t  *conn;

    conf = pool->conf;
    last = (u_char *) pool->reason + sizeof(pool->reason) - 1;

    keywords = conf->keywords;
    values = conf->rotations ? conf->rotations[pool->start] : conf->values;

    if (pool->names) {
        /* asked even in back-off: a name that moved ends it */
        values = ngx_vodlms_pg_resolve(pool);
        if (values == NULL) {
            if (!pool->resolving) {
                /* no host has an address: as good as a failed connect */
                pool->attempts++;
            }

            return NULL;
        }

        keywords = conf->rt_keywords;
    }

    left = ngx_vodlms_backoff_left(&pool->backoff);

    if (left) {
        ngx_log_debug2(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                       "vodlms pg: down, %V: no connect for %M ms more",
                       &conf->name, left);

        ngx_snprintf((u_char *) pool->reason, sizeof(pool->reason) - 1,
                     "postgres %V is down (%ui failed attempts), next try "
                     "in %M ms%Z", &conf->name, pool->backoff.failures, left);
        return NULL;
    }

    /* the queries waiting from now on are answered by this one */
    pool->attempts++;

    /* neither this nor PQconnectPoll blocks: hosts come with hostaddr */
    pg = PQconnectStartParams(keywords, values, 0);

    if (pg == NULL) {
        ngx_snprintf((u_char *) pool->reason, sizeof(pool->reason) - 1,
                     "postgres %V: out of memory%Z", &conf->name);
        return NULL;
    }

    if (PQstatus(pg) == CONNECTION_BAD) {
        /* e.g. a refused connection on loopback is known at once */
        p = ngx_snprintf((u_char *) pool->reason, last - (u_char *) pool->reason,
                         "postgres %V connect failed: ", &conf->name);
        p = ngx_vodlms_pg_cpymsg(p, last, PQerrorMessage(pg));
        *p = '\0';

        PQfinish(pg);
        ngx_vodlms_pg_backoff(pool);
        return NULL;
    }

    conn = ngx_calloc(sizeof(ngx_vodlms_pg_conn_t) + pool->nstmts, pool->log);
    if (conn == NULL) {
        PQfinish(pg);
        ngx_snprintf((u_char *) pool->reason, sizeof(pool->reason) - 1,
                     "postgres %V: out of memory%Z", &conf->name);
        return NULL;
    }

    conn->pool = pool;
    conn->pg = pg;
    conn->prepared = (u_char *) (conn + 1);
    conn->state = NGX_VODLMS_PG_CONNECTING;
    conn->epoch = pool->epoch;
    conn->round = pool->round;

    /* libpq would print notices on stderr */
    PQsetNoticeProcessor(pg, ngx_vodlms_pg_notice, conn);

    /* counted from here; ngx_vodlms_pg_close() counts it out */
    ngx_vodlms_metrics_connection(NGX_VODLMS_BACKEND_PG, 1);

    if (ngx_vodlms_pg_wrap(conn, PQsocket(pg)) != NGX_OK) {
        ngx_vodlms_metrics_connection(NGX_VODLMS_BACKEND_PG, -1);
        PQfinish(pg);
        ngx_free(conn);
        ngx_snprintf((u_char *) pool->reason, sizeof(pool->reason) - 1,
                     "postgres %V: no free nginx connection "
                     "(worker_connections)%Z", &conf->name);
        return NULL;
    }

    conn->timer.handler = ngx_vodlms_pg_connect_timeout;
    conn->timer.data = conn;
    conn->timer.log = pool->log;

    /*
     * A graceful stop does not wait for a silent server's connect_timeout:
     * pool_destroy() closes the connect (a query keeps its own timer).
     */
    conn->timer.cancelable = 1;

    ngx_queue_insert_tail(&pool->conns, &conn->queue);
    pool->nconns++;
    pool->nconnecting++;

    ngx_add_timer(&conn->timer, conf->connect_timeout);

    /* "behave as if PQconnectPoll last returned PGRES_POLLING_WRITING" */
    if (ngx_vodlms_pg_watch(conn, 0, 1) != NGX_OK) {
        ngx_vodlms_pg_fail(conn, NGX_VODLMS_PG_ERROR,
                           "could not watch the socket");
        return NULL;
    }

    ngx_log_debug4(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                   "vodlms pg: connect, %V fd:%d, %ui of pool_size=%ui",
                   &conf->name, conn->connection->fd, pool->nconns,
                   conf->pool_size);

    return conn;
}


/* enough connections under way for the queries waiting */

static void
ngx_vodlms_pg_maybe_connect(ngx_vodlms_pg_pool_t *pool)
{
    while (pool->nwaiting > pool->nconnecting
           && pool->nconns < pool->conf->pool_size
           && (pool->backoff.failures == 0 || pool->nconnecting == 0))
    {
        if (ngx_vodlms_pg_connect(pool) == NULL) {
            return;
        }
    }
}


/*
 * With names resolved at run time: the values for a connect, or NULL when
 * none may start now (lookups under way: pool->resolving, and
 * ngx_vodlms_pg_resolved() follows; or no host has an address:
 * pool->reason says which).
 */

static const char **
ngx_vodlms_pg_resolve(ngx_vodlms_pg_pool_t *pool)
{
    ngx_int_t    rc;
    ngx_uint_t   moved;
    const char  *err;

    rc = ngx_vodlms_pg_names_fresh(pool->names, &moved, &err);

    if (rc == NGX_AGAIN) {
        pool->resolving = 1;

        ngx_log_debug1(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                       "vodlms pg: resolve, %V: connects wait for the "
                       "lookup", &pool->conf->name);

        ngx_snprintf((u_char *) pool->reason, sizeof(pool->reason) - 1,
                     "postgres %V: its host names are being resolved%Z",
                     &pool->conf->name);
        return NULL;
    }

    if (moved) {
        ngx_vodlms_pg_moved(pool);
    }

    if (rc != NGX_OK) {
        ngx_snprintf((u_char *) pool->reason, sizeof(pool->reason) - 1,
                     "postgres %V: %s%Z", &pool->conf->name, err);
        return NULL;
    }

    return ngx_vodlms_pg_names_values(pool->names, pool->start);
}


/* the lookups before a connect are over: the connects the queries need */

static void
ngx_vodlms_pg_resolved(void *data, ngx_uint_t moved, const char *err)
{
    ngx_vodlms_pg_pool_t  *pool = data;

    ngx_vodlms_pg_status_e  status;

    u_char  buf[NGX_VODLMS_PG_REASON_LEN];

    pool->resolving = 0;

    if (pool->exiting) {
        return;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                   "vodlms pg: resolved, %V: %s, %ui waiting",
                   &pool->conf->name,
                   err ? err : (moved ? "an address changed" : "no change"),
                   pool->nwaiting);

    if (moved) {
        ngx_vodlms_pg_moved(pool);
    }

    if (err) {
        /* the queries that waited for the lookup fail with it */
        pool->attempts++;

        ngx_snprintf((u_char *) pool->reason, sizeof(pool->reason) - 1,
                     "postgres %V: %s%Z", &pool->conf->name, err);

    } else {
        ngx_vodlms_pg_maybe_connect(pool);

        if (pool->fallen_back && pool->fallback) {
            ngx_vodlms_pg_probe(pool);
        }
    }

    if (pool->nconns == 0 && !pool->resolving) {
        /* no connect could start: the queries waiting fail as they would */
        status = (err == NULL && ngx_vodlms_backoff_left(&pool->backoff))
                 ? NGX_VODLMS_PG_DOWN : NGX_VODLMS_PG_ERROR;

        ngx_cpystrn(buf, (u_char *) pool->reason, sizeof(buf));
        ngx_vodlms_pg_fail_waiting(pool, status, (char *) buf);
    }
}


/* a name moved: connects go to the new address now, not after back-off */

static void
ngx_vodlms_pg_moved(ngx_vodlms_pg_pool_t *pool)
{
    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                   "vodlms pg: moved, %V: back-off of %ui failures ended",
                   &pool->conf->name, pool->backoff.failures);

    (void) ngx_vodlms_backoff_ok(&pool->backoff);

    /* the old address's connections are not reused; busy ones finish */
    ngx_vodlms_pg_close_idle(pool, "a host name moved");
}


static ngx_int_t
ngx_vodlms_pg_wrap(ngx_vodlms_pg_conn_t *conn, ngx_socket_t fd)
{
    ngx_file_info_t    fi;
    ngx_connection_t  *c;

    if (fd == (ngx_socket_t) -1) {
        return NGX_ERROR;
    }

    c = ngx_get_connection(fd, conn->pool->log);
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->data = conn;
    c->read->handler = ngx_vodlms_pg_event_handler;
    c->write->handler = ngx_vodlms_pg_event_handler;
    c->read->log = conn->pool->log;
    c->write->log = conn->pool->log;

    conn->connection = c;
    conn->uniq = (ngx_fd_info(fd, &fi) == 0) ? ngx_file_uniq(&fi) : 0;

    return NGX_OK;
}


/* frees the ngx_connection_t; libpq has closed the socket, or will */

static void
ngx_vodlms_pg_unwrap(ngx_vodlms_pg_conn_t *conn)
{
    ngx_connection_t  *c;

    c = conn->connection;
    conn->connection = NULL;

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    /* a closed socket leaves epoll by itself */

    if (ngx_del_conn) {
        ngx_del_conn(c, NGX_CLOSE_EVENT);

    } else {
        if (c->read->active) {
            ngx_del_event(c->read, NGX_READ_EVENT, NGX_CLOSE_EVENT);
        }

        if (c->write->active) {
            ngx_del_event(c->write, NGX_WRITE_EVENT, NGX_CLOSE_EVENT);
        }
    }

    ngx_free_connection(c);
    c->fd = (ngx_socket_t) -1;
}


/*
 * During a connect libpq may close its socket and open another: the next
 * address or host, or a retry without SSL.  The number may even be the
 * same, so the inode is compared too.  The new socket gets a new
 * ngx_connection_t, whose flipped "instance" bit voids stale events.
 */

static ngx_int_t
ngx_vodlms_pg_rewrap(ngx_vodlms_pg_conn_t *conn)
{
    ngx_socket_t      fd;
    ngx_file_info_t   fi;

    fd = PQsocket(conn->pg);

    if (fd == conn->connection->fd
        && ngx_fd_info(fd, &fi) == 0
        && ngx_file_uniq(&fi) == conn->uniq)
    {
        return NGX_OK;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, conn->pool->log, 0,
                   "vodlms pg: socket, %V: libpq moved from fd:%d to fd:%d",
                   &conn->pool->conf->name, conn->connection->fd, fd);

    ngx_vodlms_pg_unwrap(conn);

    return ngx_vodlms_pg_wrap(conn, fd);
}


/*
 * libpq reads and writes as much as it needs, not as much as there is, so
 * the socket is watched level-triggered: with nginx's default
 * edge-triggered epoll, bytes left unread would never be signalled again.
 */

static ngx_int_t
ngx_vodlms_pg_watch(ngx_vodlms_pg_conn_t *conn, ngx_uint_t read,
    ngx_uint_t write)
{
    ngx_connection_t  *c;

    c = conn->connection;

    if (read && !c->read->active) {
        if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT) != NGX_OK) {
            return NGX_ERROR;
        }

    } else if (!read && c->read->active) {
        if (ngx_del_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (write && !c->write->active) {
        if (ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (!write && c->write->active) {
        if (ngx_del_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * Drops a connection: the query on it fails, and so do the queries waiting
 * for it when it was the last connection and could not even connect.
 */

static void
ngx_vodlms_pg_fail(ngx_vodlms_pg_conn_t *conn, ngx_vodlms_pg_status_e status,
    const char *reason)
{
    u_char                 *p, *last;
    ngx_uint_t              connecting, rotated, level;
    ngx_vodlms_pg_pool_t   *pool;
    ngx_vodlms_pg_query_t  *query;

    u_char  buf[NGX_VODLMS_PG_REASON_LEN];

#if (NGX_DEBUG)
    u_char                 *m;
#endif

    pool = conn->pool;
    query = conn->query;
    connecting = (conn->state == NGX_VODLMS_PG_CONNECTING);
    rotated = conn->rotated;

    /* before PQfinish: reason may be PQerrorMessage's */
    last = buf + sizeof(buf) - 1;
    p = ngx_snprintf(buf, last - buf, "postgres %V %s", &pool->conf->name,
                     connecting ? "connect failed: " : "");
#if (NGX_DEBUG)
    m = p;
#endif
    p = ngx_vodlms_pg_cpymsg(p, last, reason);
    *p = '\0';

    ngx_queue_remove(&conn->queue);
    pool->nconns--;

    if (connecting) {
        pool->nconnecting--;

        /*
         * Connects started together (pool_size of them under load) fail
         * together: they count as one failure, not pool_size, so that
         * the back-off grows with time down, not with the load.  A
         * timeout that moved the start on to the next host counts too:
         * the first failure still lets the next connect start at once
         * (below), but hosts that are all silent put the pool down (one
         * connect at a time, its waiters bounded, the back-off growing)
         * instead of rotating through them without end.
         */
        if (conn->round == pool->round) {
            ngx_vodlms_pg_backoff(pool);
        }
    }

    ngx_cpystrn((u_char *) pool->reason, buf, sizeof(pool->reason));

    ngx_log_debug4(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                   "vodlms pg: close, %V fd:%d, %s: %s",
                   &pool->conf->name,
                   conn->connection ? conn->connection->fd : -1,
                   ngx_vodlms_pg_states[conn->state], m);

    if (!pool->exiting) {
        level = NGX_LOG_INFO;

        if (status == NGX_VODLMS_PG_TIMEOUT && !connecting) {
            /* a connection is sacrificed: say so even if the caller logs */
            level = NGX_LOG_WARN;

        } else if (connecting && pool->fallen_back) {
            /* a replica known down, probed again: its log line was once */
            level = NGX_LOG_DEBUG;
        }

        if (level == NGX_LOG_WARN || query == NULL || query->detached) {
            ngx_log_error(level, pool->log, 0, "vodlms: %s", buf);
        }
    }

    ngx_vodlms_pg_close(conn);

    if (status == NGX_VODLMS_PG_TIMEOUT && !connecting && pool->fallback
        && !pool->exiting && !pool->fallback->exiting)
    {
        /* a replica silent under a query: the next ones go to the primary */
        ngx_vodlms_pg_fall_back(pool);
    }

    if (query) {
        query->conn = NULL;

        if ((status == NGX_VODLMS_PG_ERROR || status == NGX_VODLMS_PG_TIMEOUT)
            && ngx_vodlms_pg_may_move(query))
        {
            /* the replica went away or silent under a read: the primary */
            ngx_vodlms_pg_move(query);

        } else {
            ngx_vodlms_pg_finish(query, status, NULL, (char *) buf);
        }
    }

    if (pool->exiting) {
        return;
    }

    if (connecting) {
        if (pool->nconns == 0 && rotated && pool->nwaiting
            && (pool->fallback == NULL || pool->fallback->exiting))
        {
            /*
             * One silent host, not the pool: the next connect starts after
             * it, now, and the queries keep waiting within their timeout=
             */
            ngx_log_debug2(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                           "vodlms pg: rotated, %V: %ui waiting go to the "
                           "next host", &pool->conf->name, pool->nwaiting);

            if (ngx_vodlms_pg_connect(pool) != NULL) {
                return;
            }
        }

        if (pool->nconns == 0) {
            /* the server looks unreachable: fail fast (or fall back) */
            if (pool->fallback && !pool->fallback->exiting) {
                ngx_vodlms_pg_fall_back(pool);
            }

            ngx_vodlms_pg_fail_waiting(pool, status, (char *) buf);
        }

        return;
    }

    if (pool->fallen_back && pool->fallback && !pool->fallback->exiting) {
        /* a replica gone silent: what waits for it goes to the primary */
        ngx_vodlms_pg_fail_waiting(pool, status, (char *) buf);
        return;
    }

    /* an established connection was lost or closed: replace it */

    ngx_vodlms_pg_maybe_connect(pool);

    /* a lookup under way: ngx_vodlms_pg_resolved() serves or fails them */
    if (pool->nconns == 0 && !pool->resolving) {
        status = ngx_vodlms_backoff_left(&pool->backoff)
                 ? NGX_VODLMS_PG_DOWN : NGX_VODLMS_PG_ERROR;
        ngx_cpystrn(buf, (u_char *) pool->reason, sizeof(buf));
        ngx_vodlms_pg_fail_waiting(pool, status, (char *) buf);
    }
}


/*
 * No connection is left and none is under way: the queries waiting fail
 * (or move to the fallback), except, in a pool without a fallback, those
 * that came after the last connect started, which it did not answer for:
 * they wait for the next connect (ngx_vodlms_pg_retry()).
 */

static void
ngx_vodlms_pg_fail_waiting(ngx_vodlms_pg_pool_t *pool,
    ngx_vodlms_pg_status_e status, const char *reason)
{
    ngx_uint_t              hold;
    ngx_queue_t             failing, *q, *next;
    ngx_vodlms_pg_query_t  *query;

    if (ngx_queue_empty(&pool->waiting)) {
        return;
    }

    /* callbacks may queue new queries: those are not failed here */

    hold = ngx_vodlms_pg_holds(pool);

    ngx_queue_init(&failing);

    for (q = ngx_queue_head(&pool->waiting);
         q != ngx_queue_sentinel(&pool->waiting);
         q = next)
    {
        next = ngx_queue_next(q);
        query = ngx_queue_data(q, ngx_vodlms_pg_query_t, queue);

        if (hold && query->attempt == pool->attempts) {
            continue;
        }

        ngx_queue_remove(q);
        pool->nwaiting--;
        ngx_queue_insert_tail(&failing, q);
    }

    if (pool->nwaiting) {
        ngx_log_debug2(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                       "vodlms pg: hold, %V: %ui waiting came after the "
                       "last connect started, they wait for the next",
                       &pool->conf->name, pool->nwaiting);

        if (pool->nconns == 0 && !pool->resolving) {
            ngx_vodlms_pg_retry_later(pool);
        }
    }

    if (pool->fallback && !pool->exiting && !pool->fallback->exiting) {
        /* a replica that cannot be reached: its reads go to the primary */
        ngx_vodlms_pg_fall_back(pool);
    }

    while (!ngx_queue_empty(&failing)) {
        q = ngx_queue_head(&failing);
        query = ngx_queue_data(q, ngx_vodlms_pg_query_t, queue);

        ngx_queue_remove(q);
        query->waiting = 0;

        if (ngx_vodlms_pg_may_move(query)) {
            ngx_vodlms_pg_move(query);
            continue;
        }

        ngx_vodlms_pg_finish(query, status, NULL, reason);
    }
}


static void
ngx_vodlms_pg_close(ngx_vodlms_pg_conn_t *conn)
{
    if (conn->timer.timer_set) {
        ngx_del_timer(&conn->timer);
    }

    if (conn->connection) {
        ngx_vodlms_pg_unwrap(conn);
    }

    if (conn->result) {
        PQclear(conn->result);
    }

    /* closes the socket; a Terminate message is sent if it can be */
    PQfinish(conn->pg);

    ngx_vodlms_metrics_connection(NGX_VODLMS_BACKEND_PG, -1);

    ngx_free(conn);
}


/* events */

static void
ngx_vodlms_pg_event_handler(ngx_event_t *ev)
{
    ngx_connection_t      *c = ev->data;
    ngx_vodlms_pg_conn_t  *conn = c->data;

    if (conn->state == NGX_VODLMS_PG_CONNECTING) {
        ngx_vodlms_pg_connect_poll(conn);
        return;
    }

    ngx_vodlms_pg_io(conn, ev->write);
}


static void
ngx_vodlms_pg_connect_timeout(ngx_event_t *ev)
{
    ngx_vodlms_pg_conn_t  *conn = ev->data;

    u_char  buf[64];

    ngx_snprintf(buf, sizeof(buf) - 1, "timed out after %M ms%Z",
                 conn->pool->conf->connect_timeout);

    conn->rotated = ngx_vodlms_pg_rotate(conn);

    ngx_vodlms_pg_fail(conn, NGX_VODLMS_PG_TIMEOUT, (char *) buf);
}


/* a failed connect counted: the next one waits a little longer */

static void
ngx_vodlms_pg_backoff(ngx_vodlms_pg_pool_t *pool)
{
    pool->round++;

    ngx_vodlms_backoff_failed(&pool->backoff, pool->log, "pg",
                              &pool->conf->name);

    if ((ngx_msec_int_t) (pool->backoff.retry_at - ngx_current_msec)
        > NGX_VODLMS_PG_RETRY_MAX)
    {
        pool->backoff.retry_at = ngx_current_msec + NGX_VODLMS_PG_RETRY_MAX;
    }
}


/*
 * libpq applies connect_timeout only in its blocking calls, and ours
 * covers the whole attempt: with a silent first host, every attempt would
 * time out there and never reach the second.  The next attempt starts
 * with the host after the one this attempt was waiting for.
 */

static ngx_uint_t
ngx_vodlms_pg_rotate(ngx_vodlms_pg_conn_t *conn)
{
    char                  *addr, *port;
    size_t                 len;
    ngx_int_t              n, found;
    ngx_uint_t             i, next, nhosts;
    ngx_vodlms_pg_pool_t  *pool;
    ngx_vodlms_pg_conf_t  *conf;

    u_char  silent[NGX_VODLMS_PG_REASON_LEN], then[NGX_VODLMS_PG_REASON_LEN];

    pool = conn->pool;
    conf = pool->conf;

    /* with names resolved at run time: one slot per address known */
    nhosts = pool->names ? ngx_vodlms_pg_names_slots(pool->names)
                         : conf->nhosts;

    if (nhosts <= 1) {
        return 0;
    }

    addr = PQhostaddr(conn->pg);
    port = PQport(conn->pg);

    len = addr ? ngx_strlen(addr) : 0;
    n = (port && *port) ? ngx_atoi((u_char *) port, ngx_strlen(port)) : 5432;

    if (pool->names) {
        found = ngx_vodlms_pg_names_find(pool->names, addr, (ngx_uint_t) n);
        i = (found < 0) ? nhosts : (ngx_uint_t) found;

    } else {
        for (i = 0; i < nhosts; i++) {
            if (conf->hostaddrs[i].len == len
                && ngx_strncmp(conf->hostaddrs[i].data, addr, len) == 0
                && conf->ports[i] == (ngx_uint_t) n)
            {
                break;
            }
        }
    }

    /* not found (a socket path, say): one on from this attempt's first */
    if (i == nhosts) {
        i = pool->start % nhosts;
    }

    next = (i + 1) % nhosts;

    if (pool->names) {
        (void) ngx_vodlms_pg_names_label(pool->names, i, silent,
                                         silent + sizeof(silent) - 1);
        (void) ngx_vodlms_pg_names_label(pool->names, next, then,
                                         then + sizeof(then) - 1);

    } else {
        (void) ngx_cpystrn(silent, conf->labels[i].data,
                           ngx_min(conf->labels[i].len + 1, sizeof(silent)));
        (void) ngx_cpystrn(then, conf->labels[next].data,
                           ngx_min(conf->labels[next].len + 1, sizeof(then)));
    }

    ngx_log_error(NGX_LOG_WARN, pool->log, 0,
                  "vodlms: postgres %V: %s did not answer within %M ms, "
                  "the next connect starts with %s", &conf->name, silent,
                  conf->connect_timeout, then);

    if (pool->start == next) {
        return 0;
    }

    pool->start = next;

    return 1;
}


static void
ngx_vodlms_pg_connect_poll(ngx_vodlms_pg_conn_t *conn)
{
    ngx_uint_t                 read;
    PostgresPollingStatusType  rc;

    rc = PQconnectPoll(conn->pg);

    switch (rc) {

    case PGRES_POLLING_OK:
        ngx_vodlms_pg_connected(conn);
        return;

    case PGRES_POLLING_READING:
        read = 1;
        break;

    case PGRES_POLLING_WRITING:
        read = 0;
        break;

    default: /* PGRES_POLLING_FAILED */
        ngx_vodlms_pg_fail(conn, NGX_VODLMS_PG_ERROR,
                           PQerrorMessage(conn->pg));
        return;
    }

    if (ngx_vodlms_pg_rewrap(conn) != NGX_OK) {
        ngx_vodlms_pg_fail(conn, NGX_VODLMS_PG_ERROR,
                           "no free nginx connection for the new socket");
        return;
    }

    /* exactly what libpq waits for: a level-triggered write would spin */

    if (ngx_vodlms_pg_watch(conn, read, !read) != NGX_OK) {
        ngx_vodlms_pg_fail(conn, NGX_VODLMS_PG_ERROR,
                           "could not watch the socket");
        return;
    }

#if (NGX_OPENSSL)
    if (read && ngx_vodlms_pg_ssl_pending(conn->pg)) {
        ngx_post_event(conn->connection->read, &ngx_posted_events);
    }
#endif
}


static void
ngx_vodlms_pg_connected(ngx_vodlms_pg_conn_t *conn)
{
    ngx_uint_t             failures;
    ngx_vodlms_pg_pool_t  *pool;

    pool = conn->pool;

    /* PQsend* and PQflush must not block */
    if (PQsetnonblocking(conn->pg, 1) != 0) {
        ngx_vodlms_pg_fail(conn, NGX_VODLMS_PG_ERROR,
                           PQerrorMessage(conn->pg));
        return;
    }

    if (ngx_vodlms_pg_rewrap(conn) != NGX_OK) {
        ngx_vodlms_pg_fail(conn, NGX_VODLMS_PG_ERROR,
                           "no free nginx connection for the new socket");
        return;
    }

    /* read interest stays while idle: a server going away is seen at once */
    if (ngx_vodlms_pg_watch(conn, 1, 0) != NGX_OK) {
        ngx_vodlms_pg_fail(conn, NGX_VODLMS_PG_ERROR,
                           "could not watch the socket");
        return;
    }

    if (conn->timer.timer_set) {
        ngx_del_timer(&conn->timer);
    }

    conn->state = NGX_VODLMS_PG_IDLE;
    pool->nconnecting--;

    failures = ngx_vodlms_backoff_ok(&pool->backoff);

    if (pool->fallen_back) {
        pool->fallen_back = 0;

        ngx_log_error(NGX_LOG_NOTICE, pool->log, 0,
                      "vodlms: postgres replica %V answers again, reads go "
                      "back to it", &pool->conf->name);

    } else if (failures) {
        ngx_log_error(NGX_LOG_NOTICE, pool->log, 0,
                      "vodlms: postgres %V: connected again after %ui "
                      "failed attempts", &pool->conf->name, failures);
    }

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                   "vodlms pg: connected, %V fd:%d, %s",
                   &pool->conf->name, conn->connection->fd,
                   PQsslInUse(conn->pg) ? "SSL" : "no SSL");

    (void) ngx_vodlms_pg_next(conn);

    if (failures && !pool->exiting) {
        /* back after a failure: the others waiting need connections too */
        ngx_vodlms_pg_maybe_connect(pool);
    }
}


static void
ngx_vodlms_pg_io(ngx_vodlms_pg_conn_t *conn, ngx_uint_t write)
{
    int        rc;
    PGconn    *pg;
    PGnotify  *notify;

    pg = conn->pg;

    if (conn->state == NGX_VODLMS_PG_IDLE) {

        /* an idle connection hears only of EOF, notices and the like */

        if (!PQconsumeInput(pg)) {
            ngx_vodlms_pg_lost(conn);
            return;
        }

        /* this also parses them: notices go to ngx_vodlms_pg_notice() */
        while ((notify = PQnotifies(pg)) != NULL) {
            PQfreemem(notify);
        }

        if (PQstatus(pg) == CONNECTION_BAD) {
            ngx_vodlms_pg_lost(conn);
        }

        return;
    }

    /* a query is under way; see "PQflush" in libpq's documentation */

    if (!write) {
        if (!PQconsumeInput(pg)) {
            ngx_vodlms_pg_lost(conn);
            return;
        }

        /* nobody LISTENs, but libpq would keep them until PQfinish */
        while ((notify = PQnotifies(pg)) != NULL) {
            PQfreemem(notify);
        }
    }

    if (conn->flushing) {
        rc = PQflush(pg);

        if (rc < 0) {
            ngx_vodlms_pg_lost(conn);
            return;
        }

        conn->flushing = (rc == 1);
    }

    /* libpq may hold whole results already: take them all */

    if (ngx_vodlms_pg_results(conn) != NGX_OK) {
        return;
    }

    if (conn->state == NGX_VODLMS_PG_IDLE) {
        /* ngx_vodlms_pg_next() has set the interest */
        return;
    }

    if (ngx_vodlms_pg_watch(conn, 1, conn->flushing) != NGX_OK) {
        ngx_vodlms_pg_fail(conn, NGX_VODLMS_PG_ERROR,
                           "could not watch the socket");
        return;
    }

#if (NGX_OPENSSL)
    if (ngx_vodlms_pg_ssl_pending(pg)) {
        ngx_post_event(conn->connection->read, &ngx_posted_events);
    }
#endif
}


static void
ngx_vodlms_pg_lost(ngx_vodlms_pg_conn_t *conn)
{
    u_char  *p, buf[NGX_VODLMS_PG_REASON_LEN];

    p = ngx_cpymem(buf, "connection lost: ", 17);
    p = ngx_vodlms_pg_cpymsg(p, buf + sizeof(buf) - 1,
                             PQerrorMessage(conn->pg));
    *p = '\0';

    ngx_vodlms_pg_fail(conn, NGX_VODLMS_PG_ERROR, (char *) buf);
}


#if (NGX_OPENSSL)

/* bytes OpenSSL has decrypted but libpq has not taken leave no readiness */

static ngx_uint_t
ngx_vodlms_pg_ssl_pending(PGconn *pg)
{
    SSL  *ssl;

    if (!PQsslInUse(pg)) {
        return 0;
    }

    ssl = PQsslStruct(pg, "OpenSSL");

    return (ssl != NULL && SSL_pending(ssl) > 0);
}

#endif


/*
 * Takes every result libpq can give without blocking.  Returns NGX_DONE
 * when the connection was dropped (conn is freed).
 */

static ngx_int_t
ngx_vodlms_pg_results(ngx_vodlms_pg_conn_t *conn)
{
    PGresult        *res;
    ExecStatusType   st;

    while (conn->state == NGX_VODLMS_PG_PREPARE
           || conn->state == NGX_VODLMS_PG_EXECUTE)
    {
        if (PQisBusy(conn->pg)) {
            return NGX_OK;
        }

        res = PQgetResult(conn->pg);

        if (res == NULL) {
            if (ngx_vodlms_pg_step_done(conn) != NGX_OK) {
                return NGX_DONE;
            }

            continue;
        }

        st = PQresultStatus(res);

        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT
            || st == PGRES_COPY_BOTH)
        {
            /* libpq would wait for COPY data forever */
            PQclear(res);
            ngx_vodlms_pg_fail(conn, NGX_VODLMS_PG_ERROR,
                               "COPY is not supported");
            return NGX_DONE;
        }

        /* one result per step; an error wins over an earlier result */

        if (conn->result == NULL) {
            conn->result = res;

        } else if (st == PGRES_FATAL_ERROR
                   && PQresultStatus(conn->result) != PGRES_FATAL_ERROR)
        {
            PQclear(conn->result);
            conn->result = res;

        } else {
            PQclear(res);
        }
    }

    return NGX_OK;
}


/*
 * Is this error the statement's own fault, the same every time it runs
 * (bad SQL, a type or constraint error), rather than the server's state
 * (a timeout, a conflict with recovery, a deadlock, a read-only standby
 * after a failover, a dropped prepared statement, resources)?  Only the
 * former is answered as the operator's mistake; the latter stay outages,
 * 503 with Retry-After.  By SQLSTATE class.
 */
ngx_uint_t
ngx_vodlms_pg_refusal(PGresult *res)
{
    char        *sqlstate;
    ngx_uint_t   i;

    static const char  *classes[] = {
        "0A",       /* feature not supported */
        "21",       /* cardinality violation */
        "22",       /* data exception */
        "23",       /* integrity constraint violation */
        "2F",       /* SQL routine exception */
        "39",       /* external routine invocation */
        "3F",       /* invalid schema name */
        "42",       /* syntax error or access rule violation */
        "44",       /* WITH CHECK OPTION violation */
        "54",       /* program limit exceeded */
        "P0"        /* PL/pgSQL: RAISE and friends */
    };

    if (res == NULL) {
        return 0;
    }

    sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);

    if (sqlstate == NULL || ngx_strlen(sqlstate) != 5) {
        return 0;
    }

    for (i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
        if (sqlstate[0] == classes[i][0] && sqlstate[1] == classes[i][1]) {
            return 1;
        }
    }

    return 0;
}


/*
 * Of a refusal: did the statement refuse the values it was given (data
 * exception 22, integrity constraint 23), rather than being wrong itself?
 * The same statement with other values may then go through.
 */
ngx_uint_t
ngx_vodlms_pg_data_error(PGresult *res)
{
    char  *sqlstate;

    if (res == NULL) {
        return 0;
    }

    sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);

    return sqlstate != NULL && ngx_strlen(sqlstate) == 5
           && sqlstate[0] == '2' && (sqlstate[1] == '2' || sqlstate[1] == '3');
}


/* a PREPARE or a query has all its results; NGX_DONE: conn is freed */

static ngx_int_t
ngx_vodlms_pg_step_done(ngx_vodlms_pg_conn_t *conn)
{
    char                   *sqlstate;
    u_char                 *p, *last;
    PGresult               *res;
    ExecStatusType          st;
    ngx_vodlms_pg_status_e  status;
    ngx_vodlms_pg_pool_t   *pool;
    ngx_vodlms_pg_query_t  *query;

    u_char  buf[NGX_VODLMS_PG_REASON_LEN];

    pool = conn->pool;
    query = conn->query;

    res = conn->result;
    conn->result = NULL;

    st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

    last = buf + sizeof(buf) - 1;

    if (PQstatus(conn->pg) == CONNECTION_BAD) {
        /* e.g. FATAL: terminating connection due to administrator command */
        p = ngx_cpymem(buf, "connection lost: ", 17);
        p = res ? ngx_vodlms_pg_cpyerror(p, last, res)
                : ngx_vodlms_pg_cpymsg(p, last, PQerrorMessage(conn->pg));
        *p = '\0';

        if (res) {
            PQclear(res);
        }

        ngx_vodlms_pg_fail(conn, NGX_VODLMS_PG_ERROR, (char *) buf);
        return NGX_DONE;
    }

    if (conn->state == NGX_VODLMS_PG_PREPARE) {

        if (st != PGRES_COMMAND_OK) {
            p = ngx_snprintf(buf, last - buf, "postgres %V prepare \"%s\" "
                             "failed: ", &pool->conf->name,
                             pool->preps[query->stmt].name);
            p = res ? ngx_vodlms_pg_cpyerror(p, last, res)
                    : ngx_vodlms_pg_cpymsg(p, last, "no result");
            *p = '\0';

            status = ngx_vodlms_pg_refusal(res) ? NGX_VODLMS_PG_REFUSED
                                                : NGX_VODLMS_PG_ERROR;

            if (res) {
                PQclear(res);
            }

            return ngx_vodlms_pg_done(conn, status, NULL, (char *) buf);
        }

        PQclear(res);

        conn->prepared[query->stmt] = 1;

        if (query->detached) {
            /* nobody waits for the answer: do not ask */
            return ngx_vodlms_pg_done(conn, NGX_VODLMS_PG_ERROR, NULL,
                                      "detached");
        }

        if (ngx_vodlms_pg_send(conn) != NGX_OK) {
            ngx_vodlms_pg_fail(conn, NGX_VODLMS_PG_ERROR, conn->reason);
            return NGX_DONE;
        }

        return NGX_OK;
    }

    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        return ngx_vodlms_pg_done(conn, NGX_VODLMS_PG_OK, res, NULL);
    }

    p = ngx_snprintf(buf, last - buf, "postgres %V query failed: ",
                     &pool->conf->name);
    p = res ? ngx_vodlms_pg_cpyerror(p, last, res)
            : ngx_vodlms_pg_cpymsg(p, last, "no result");
    *p = '\0';

    sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    if (sqlstate && query->stmt != NGX_VODLMS_PG_NO_STMT
        && ngx_strcmp(sqlstate, "26000") == 0)
    {
        /* "prepared statement does not exist", e.g. after DISCARD ALL */
        conn->prepared[query->stmt] = 0;
    }

    if (sqlstate && ngx_strcmp(sqlstate, "25006") == 0) {
        /* read_only_sql_transaction: the server is no primary (any more) */
        return ngx_vodlms_pg_read_only(conn, res, (char *) buf);
    }

    if (sqlstate
        && (ngx_strcmp(sqlstate, "40001") == 0
            || ngx_strcmp(sqlstate, "57014") == 0)
        && ngx_vodlms_pg_may_move(query))
    {
        /*
         * A replica cancelled the read (a conflict with recovery, its
         * statement_timeout): it had no effect, the primary answers it
         */
        ngx_log_error(NGX_LOG_INFO, pool->log, 0,
                      "vodlms: %s, the read goes to %V", buf,
                      &pool->fallback->conf->name);

        PQclear(res);

        conn->query = NULL;
        query->conn = NULL;

        ngx_vodlms_pg_move(query);

        return ngx_vodlms_pg_release(conn);
    }

    /* a refusal comes with its result, for the caller's SQLSTATE */
    if (ngx_vodlms_pg_refusal(res)) {
        return ngx_vodlms_pg_done(conn, NGX_VODLMS_PG_REFUSED, res,
                                  (char *) buf);
    }

    if (res) {
        PQclear(res);
    }

    return ngx_vodlms_pg_done(conn, NGX_VODLMS_PG_ERROR, NULL, (char *) buf);
}


/*
 * SQLSTATE 25006: the server this connection reaches is read-only, e.g. an
 * old primary that came back as a standby, or one fenced before a
 * switchover.  The statement had no effect, so the query is tried once
 * more, at the head of the FIFO, on a fresh connection: a multi-host
 * conninfo with target_session_attrs=read-write then finds the primary.
 * Every connection opened so far may reach the same server: idle ones are
 * closed now, busy ones when their query is over.  NGX_DONE: conn is freed.
 */

static ngx_int_t
ngx_vodlms_pg_read_only(ngx_vodlms_pg_conn_t *conn, PGresult *res,
    const char *reason)
{
    ngx_queue_t            *q;
    ngx_vodlms_pg_conn_t   *c;
    ngx_vodlms_pg_pool_t   *pool;
    ngx_vodlms_pg_query_t  *query;

    u_char  *p, buf[NGX_VODLMS_PG_REASON_LEN], err[NGX_VODLMS_PG_REASON_LEN];

    pool = conn->pool;
    query = conn->query;

    ngx_cpystrn(buf, (u_char *) reason, sizeof(buf));

    p = ngx_vodlms_pg_cpyerror(err, err + sizeof(err) - 1, res);
    *p = '\0';

    PQclear(res);

    pool->epoch++;

    ngx_log_error(NGX_LOG_WARN, pool->log, 0,
                  "vodlms: postgres %V answers read-only at %s:%s (%s), "
                  "its connections are closed%s", &pool->conf->name,
                  PQhostaddr(conn->pg), PQport(conn->pg), err,
                  (query->retried || query->detached)
                  ? "" : "; the statement is tried once more");

    for (q = ngx_queue_head(&pool->conns);
         q != ngx_queue_sentinel(&pool->conns);
         q = ngx_queue_next(q))
    {
        c = ngx_queue_data(q, ngx_vodlms_pg_conn_t, queue);

        if (c->state == NGX_VODLMS_PG_CONNECTING) {
            /* opened now: libpq checks read-write on connect if told to */
            c->epoch = pool->epoch;
        }
    }

    ngx_vodlms_pg_close_idle(pool, "opened before a read-only answer");

    if (query->retried || query->detached) {
        ngx_vodlms_pg_fail(conn, NGX_VODLMS_PG_ERROR, (char *) buf);
        return NGX_DONE;
    }

    /* the query waits again, first in line, its timer running on */

    query->retried = 1;
    query->conn = NULL;
    query->attempt = pool->attempts;
    conn->query = NULL;

    ngx_queue_insert_head(&pool->waiting, &query->queue);
    pool->nwaiting++;
    query->waiting = 1;

    ngx_vodlms_pg_fail(conn, NGX_VODLMS_PG_ERROR, (char *) buf);

    return NGX_DONE;
}


/* sends the running query's next step: PREPARE first if need be */

static ngx_int_t
ngx_vodlms_pg_send(ngx_vodlms_pg_conn_t *conn)
{
    int                     rc;
    u_char                 *p, *last;
    ngx_vodlms_pg_prep_t   *prep;
    ngx_vodlms_pg_query_t  *query;

    query = conn->query;

    if (query->stmt == NGX_VODLMS_PG_NO_STMT) {
        conn->state = NGX_VODLMS_PG_EXECUTE;
        rc = PQsendQueryParams(conn->pg, query->sql, query->nvalues, NULL,
                               (const char * const *) query->values,
                               NULL, NULL, 0);

    } else {
        prep = &conn->pool->preps[query->stmt];

        if (!conn->prepared[query->stmt]) {
            conn->state = NGX_VODLMS_PG_PREPARE;
            rc = PQsendPrepare(conn->pg, prep->name, prep->sql,
                               prep->nparams, NULL);

        } else {
            conn->state = NGX_VODLMS_PG_EXECUTE;
            rc = PQsendQueryPrepared(conn->pg, prep->name, query->nvalues,
                                     (const char * const *) query->values,
                                     NULL, NULL, 0);
        }
    }

    if (rc != 1) {
        goto failed;
    }

    /* 1: libpq keeps the rest, to be flushed when the socket is writable */

    rc = PQflush(conn->pg);
    if (rc < 0) {
        goto failed;
    }

    conn->flushing = (rc == 1);

    ngx_log_debug5(NGX_LOG_DEBUG_EVENT, conn->pool->log, 0,
                   "vodlms pg: %s, %V fd:%d, %s%s",
                   ngx_vodlms_pg_states[conn->state], &conn->pool->conf->name,
                   conn->connection->fd,
                   ngx_vodlms_pg_what(conn->pool, query->stmt),
                   conn->flushing ? ", flushing" : "");

    if (ngx_vodlms_pg_watch(conn, 1, conn->flushing) != NGX_OK) {
        ngx_cpystrn((u_char *) conn->reason,
                    (u_char *) "could not watch the socket",
                    sizeof(conn->reason));
        return NGX_ERROR;
    }

    return NGX_OK;

failed:

    last = (u_char *) conn->reason + sizeof(conn->reason) - 1;
    p = ngx_cpymem(conn->reason, "could not send the query: ", 26);
    p = ngx_vodlms_pg_cpymsg(p, last, PQerrorMessage(conn->pg));
    *p = '\0';

    return NGX_ERROR;
}


/*
 * The running query is over (the connection is fine): its caller hears of
 * it, then the connection takes the next waiting query.  It is not idle
 * during the callback, so that a query started there does not jump the
 * queue.  NGX_DONE: conn is freed.
 */

static ngx_int_t
ngx_vodlms_pg_done(ngx_vodlms_pg_conn_t *conn, ngx_vodlms_pg_status_e status,
    PGresult *res, const char *reason)
{
    ngx_vodlms_pg_query_t  *query;

    query = conn->query;
    conn->query = NULL;
    query->conn = NULL;

    ngx_log_debug5(NGX_LOG_DEBUG_EVENT, conn->pool->log, 0,
                   "vodlms pg: done, %V fd:%d, %s: %s, %M ms",
                   &conn->pool->conf->name, conn->connection->fd,
                   ngx_vodlms_pg_what(conn->pool, query->stmt),
                   ngx_vodlms_pg_status_name(status),
                   ngx_current_msec - query->started);

    ngx_vodlms_pg_finish(query, status, res, reason);

    if (res) {
        PQclear(res);
    }

    return ngx_vodlms_pg_release(conn);
}


/* a connection whose query is over: idle again, or closed if unfit */

static ngx_int_t
ngx_vodlms_pg_release(ngx_vodlms_pg_conn_t *conn)
{
    /* a pooled connection must come back clean, e.g. after a lone BEGIN */

    if (PQtransactionStatus(conn->pg) != PQTRANS_IDLE) {
        ngx_vodlms_pg_fail(conn, NGX_VODLMS_PG_ERROR,
                           "a statement left a transaction open, "
                           "connection closed");
        return NGX_DONE;
    }

    if (conn->epoch != conn->pool->epoch) {
        ngx_vodlms_pg_fail(conn, NGX_VODLMS_PG_ERROR,
                           "opened before a server of the pool answered "
                           "read-only, connection closed");
        return NGX_DONE;
    }

    conn->state = NGX_VODLMS_PG_IDLE;

    return ngx_vodlms_pg_next(conn);
}


/* an idle connection takes the oldest waiting query; NGX_DONE: freed */

static ngx_int_t
ngx_vodlms_pg_next(ngx_vodlms_pg_conn_t *conn)
{
    ngx_queue_t            *q;
    ngx_vodlms_pg_pool_t   *pool;
    ngx_vodlms_pg_query_t  *query;

    pool = conn->pool;

    if (ngx_queue_empty(&pool->waiting)) {
        if (ngx_vodlms_pg_watch(conn, 1, 0) != NGX_OK) {
            ngx_vodlms_pg_fail(conn, NGX_VODLMS_PG_ERROR,
                               "could not watch the socket");
            return NGX_DONE;
        }

        ngx_log_debug3(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                       "vodlms pg: idle, %V fd:%d, %ui open",
                       &pool->conf->name, conn->connection->fd,
                       pool->nconns);

        return NGX_OK;
    }

    q = ngx_queue_head(&pool->waiting);
    query = ngx_queue_data(q, ngx_vodlms_pg_query_t, queue);

    ngx_queue_remove(q);
    pool->nwaiting--;
    query->waiting = 0;

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                   "vodlms pg: get, %V fd:%d: takes a waiting query, "
                   "%ui more waiting", &pool->conf->name,
                   conn->connection->fd, pool->nwaiting);

    conn->query = query;
    query->conn = conn;

    if (ngx_vodlms_pg_send(conn) != NGX_OK) {
        ngx_vodlms_pg_fail(conn, NGX_VODLMS_PG_ERROR, conn->reason);
        return NGX_DONE;
    }

    return NGX_OK;
}


static void
ngx_vodlms_pg_notice(void *arg, const char *message)
{
    ngx_vodlms_pg_conn_t  *conn = arg;

    u_char  *p, buf[NGX_VODLMS_PG_REASON_LEN];

    p = ngx_vodlms_pg_cpymsg(buf, buf + sizeof(buf) - 1, message);
    *p = '\0';

    ngx_log_error(NGX_LOG_INFO, conn->pool->log, 0,
                  "vodlms: postgres %V: %s", &conn->pool->conf->name, buf);
}


/* queries */

static void
ngx_vodlms_pg_finish(ngx_vodlms_pg_query_t *query,
    ngx_vodlms_pg_status_e status, PGresult *res, const char *reason)
{
    ngx_vodlms_metrics_backend(NGX_VODLMS_BACKEND_PG,
                               ngx_current_msec - query->started,
                               status == NGX_VODLMS_PG_OK);

    if (query->timer.timer_set) {
        ngx_del_timer(&query->timer);
    }

    if (query->cleanup) {
        query->cleanup->handler = NULL;
        query->cleanup = NULL;
    }

    if (!query->detached && !query->pool->exiting) {
        query->on_done(query->data, status, res, reason);
    }

    ngx_free(query);
}


static void
ngx_vodlms_pg_query_timeout(ngx_event_t *ev)
{
    ngx_vodlms_pg_query_t  *query = ev->data;

    u_char                 *p, buf[NGX_VODLMS_PG_REASON_LEN];
    ngx_vodlms_pg_pool_t   *pool;

    pool = query->pool;

    if (query->waiting) {
        ngx_queue_remove(&query->queue);
        pool->nwaiting--;
        query->waiting = 0;

        if (ngx_vodlms_pg_may_move(query)) {
            /* the replica gave it no connection in time: the primary */
            ngx_vodlms_pg_move(query);
            return;
        }

        if (pool->backoff.failures && pool->nconns == pool->nconnecting) {
            p = ngx_snprintf(buf, sizeof(buf) - 1,
                             "postgres %V is down (%ui failed attempts), "
                             "no connect answered within %M ms",
                             &pool->conf->name, pool->backoff.failures,
                             pool->conf->timeout);

        } else {
            p = ngx_snprintf(buf, sizeof(buf) - 1,
                             "postgres %V has no free connection after %M ms "
                             "(%ui of pool_size=%ui open)",
                             &pool->conf->name, pool->conf->timeout,
                             pool->nconns, pool->conf->pool_size);
        }

        *p = '\0';

        ngx_log_debug2(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                       "vodlms pg: timeout, %V: a waiting query, after %M ms",
                       &pool->conf->name, pool->conf->timeout);

        ngx_vodlms_pg_finish(query, NGX_VODLMS_PG_TIMEOUT, NULL, (char *) buf);
        return;
    }

    /*
     * PQcancel() would block the worker: it connects to the server and
     * waits for the answer.  The connection is closed instead; the server
     * aborts the query when it finds the client gone: when it sends rows,
     * or, for a silent query such as pg_sleep(), within
     * client_connection_check_interval (PostgreSQL 14+; it can be set in
     * the conninfo: options='-c client_connection_check_interval=1s').
     */

    p = ngx_snprintf(buf, sizeof(buf) - 1,
                     "query timed out after %M ms, connection closed",
                     pool->conf->timeout);
    *p = '\0';

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                   "vodlms pg: timeout, %V fd:%d, after %M ms",
                   &pool->conf->name, query->conn->connection->fd,
                   pool->conf->timeout);

    ngx_vodlms_pg_fail(query->conn, NGX_VODLMS_PG_TIMEOUT, (char *) buf);
}


static void
ngx_vodlms_pg_query_detach(void *data)
{
    ngx_vodlms_pg_query_t  *query = data;

    /* the owner is gone: a waiting query is dropped, a running one ends */

    query->cleanup = NULL;

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, query->pool->log, 0,
                   "vodlms pg: detach, %V: the caller is gone, %s",
                   &query->pool->conf->name,
                   query->waiting ? "its waiting query is dropped"
                                  : "its running query runs to its end");

    if (query->waiting) {
        ngx_queue_remove(&query->queue);
        query->pool->nwaiting--;

        if (query->timer.timer_set) {
            ngx_del_timer(&query->timer);
        }

        ngx_free(query);
        return;
    }

    query->detached = 1;

    /*
     * The timer stays armed (its log is the cycle's): a silent server must
     * still cost this connection its life, not park it forever.
     */
}


/* messages */

/*
 * libpq's messages end with a newline and may have several lines: one per
 * host or attempt (the same one twice when sslmode=prefer retries without
 * SSL), and hints on lines of their own that begin with a tab.  For the
 * log they become one line, without hints or repeats.
 */

u_char *
ngx_vodlms_pg_cpymsg(u_char *p, u_char *last, const char *msg)
{
    u_char      *line;
    size_t       len, i;
    const char  *e;

    line = NULL;

    for ( /* void */ ; *msg && p < last; msg = e ? e + 1 : msg + len) {

        e = strchr(msg, '\n');
        len = e ? (size_t) (e - msg) : ngx_strlen(msg);

        if (len == 0 || (line && *msg == '\t')) {
            continue;
        }

        if (line && (size_t) (p - line) == len
            && ngx_strncmp(line, msg, len) == 0)
        {
            continue;
        }

        if (line) {
            if (last - p < 3) {
                break;
            }

            *p++ = ';';
            *p++ = ' ';
        }

        line = p;

        for (i = 0; i < len && p < last; i++) {
            *p++ = (msg[i] == '\t' || msg[i] == '\r') ? ' ' : (u_char) msg[i];
        }
    }

    return p;
}


/* "ERROR 42P01: relation "x" does not exist" */

u_char *
ngx_vodlms_pg_cpyerror(u_char *p, u_char *last, PGresult *res)
{
    char  *severity, *sqlstate, *primary;

    severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

    if (primary == NULL) {
        return ngx_vodlms_pg_cpymsg(p, last, PQresultErrorMessage(res));
    }

    p = ngx_slprintf(p, last, "%s %s: ", severity ? severity : "ERROR",
                     sqlstate ? sqlstate : "?????");

    return ngx_vodlms_pg_cpymsg(p, last, primary);
}


const char *
ngx_vodlms_pg_status_name(ngx_vodlms_pg_status_e status)
{
    switch (status) {
    case NGX_VODLMS_PG_OK:
        return "ok";
    case NGX_VODLMS_PG_TIMEOUT:
        return "timeout";
    case NGX_VODLMS_PG_DOWN:
        return "down";
    case NGX_VODLMS_PG_REFUSED:
        return "refused";
    default:
        return "error";
    }
}
