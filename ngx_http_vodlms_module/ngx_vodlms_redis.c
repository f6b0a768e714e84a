/*
 * Non-blocking Redis client for nginx workers.
 *
 * hiredis (0.14 on Debian 12) provides the protocol and an async context with
 * adapter hooks; this file wires those hooks to an ngx_connection_t made from
 * the context's socket, so that nginx's event loop drives all I/O.  hiredis'
 * async API has no timeouts of its own: connect and read timeouts are nginx
 * timers.  Commands are pipelined; replies arrive in order, so a timed-out
 * connection cannot be trusted any more and is closed (every command still
 * queued on it fails fast).
 *
 * New connections go to the pool's target address, which may move (a name's
 * new answer, a new master): ngx_vodlms_redis_discover.c finds it, this file
 * keeps it, holds the batches that wait for it, and retires connections to
 * an old one.  Configuration time is in ngx_vodlms_redis_conf.c.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_vodlms_redis_internal.h"
#include "ngx_vodlms_metrics.h"


typedef struct {
    ngx_vodlms_redis_pool_t    *pool;
    ngx_vodlms_redis_conn_t    *conn;         /* NULL while waiting */
    ngx_uint_t                  ncmds;
    ngx_uint_t                  nreplies;
    ngx_vodlms_redis_reply_pt   on_reply;
    ngx_vodlms_redis_done_pt    on_done;
    void                       *data;
    ngx_event_t                 timer;
    ngx_pool_cleanup_t         *cleanup;
    ngx_msec_t                  started;      /* for the latency metric */
    ngx_queue_t                 wait;         /* in pool->waiting */
    ngx_vodlms_redis_cmd_t      cmds[NGX_VODLMS_REDIS_MAX_CMDS];
    u_char                     *copy;         /* the waiting commands */
    unsigned                    done:1;
    unsigned                    detached:1;
    unsigned                    short_queued:1;
    unsigned                    waiting:1;
} ngx_vodlms_redis_batch_t;


static ngx_int_t ngx_vodlms_redis_pick(ngx_vodlms_redis_pool_t *pool,
    ngx_vodlms_redis_conn_t **connp);
static ngx_vodlms_redis_conn_t *ngx_vodlms_redis_best(
    ngx_vodlms_redis_pool_t *pool, ngx_uint_t *setting_up);
static ngx_vodlms_redis_conn_t *ngx_vodlms_redis_connect(
    ngx_vodlms_redis_pool_t *pool);
static void ngx_vodlms_redis_mark_failed(ngx_vodlms_redis_conn_t *conn,
    ngx_vodlms_redis_status_e status, const char *reason);
static void ngx_vodlms_redis_set_ready(ngx_vodlms_redis_conn_t *conn);
static void ngx_vodlms_redis_drain(ngx_vodlms_redis_conn_t *conn);
static void ngx_vodlms_redis_lost_target(ngx_vodlms_redis_conn_t *conn);
static void ngx_vodlms_redis_dispatch(ngx_event_t *ev);
static void ngx_vodlms_redis_post_dispatch(ngx_vodlms_redis_pool_t *pool);

static void ngx_vodlms_redis_read_handler(ngx_event_t *ev);
static void ngx_vodlms_redis_write_handler(ngx_event_t *ev);
static void ngx_vodlms_redis_add_read(void *privdata);
static void ngx_vodlms_redis_del_read(void *privdata);
static void ngx_vodlms_redis_add_write(void *privdata);
static void ngx_vodlms_redis_del_write(void *privdata);
static void ngx_vodlms_redis_cleanup(void *privdata);
static void ngx_vodlms_redis_on_connect(const redisAsyncContext *ac,
    int status);
static void ngx_vodlms_redis_setup_reply(redisAsyncContext *ac, void *r,
    void *privdata);

static ngx_int_t ngx_vodlms_redis_batch_attach(
    ngx_vodlms_redis_batch_t *batch, ngx_vodlms_redis_conn_t *conn,
    ngx_vodlms_redis_cmd_t *cmds, ngx_uint_t ncmds, ngx_log_t *log);
static ngx_int_t ngx_vodlms_redis_batch_copy(ngx_vodlms_redis_batch_t *batch,
    ngx_vodlms_redis_cmd_t *cmds, ngx_uint_t ncmds, ngx_log_t *log);
static void ngx_vodlms_redis_batch_free(ngx_vodlms_redis_batch_t *batch);
static void ngx_vodlms_redis_batch_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_vodlms_redis_batch_finish(ngx_vodlms_redis_batch_t *batch,
    ngx_vodlms_redis_status_e status, const char *reason);
static void ngx_vodlms_redis_batch_timeout(ngx_event_t *ev);
static void ngx_vodlms_redis_batch_detach(void *data);


/* the per-worker pool */

ngx_vodlms_redis_pool_t *
ngx_vodlms_redis_pool_create(ngx_cycle_t *cycle, ngx_vodlms_redis_conf_t *conf)
{
    ngx_vodlms_redis_pool_t  *pool;

    pool = ngx_pcalloc(cycle->pool, sizeof(ngx_vodlms_redis_pool_t));
    if (pool == NULL) {
        return NULL;
    }

    pool->conf = conf;
    pool->log = cycle->log;
    ngx_queue_init(&pool->conns);
    ngx_queue_init(&pool->waiting);

    pool->dispatch.handler = ngx_vodlms_redis_dispatch;
    pool->dispatch.data = pool;
    pool->dispatch.log = cycle->log;

    if (conf->mode == NGX_VODLMS_REDIS_FIXED) {
        ngx_vodlms_redis_set_target(pool, conf->server.addr.sockaddr,
                                    conf->server.addr.socklen,
                                    NGX_MAX_TIME_T_VALUE);

    } else if (ngx_vodlms_redis_discover_init(cycle, pool) != NGX_OK) {
        return NULL;
    }

    return pool;
}


void
ngx_vodlms_redis_pool_destroy(ngx_vodlms_redis_pool_t *pool)
{
    ngx_queue_t               *q;
    ngx_vodlms_redis_conn_t   *conn;
    ngx_vodlms_redis_batch_t  *batch;

    pool->exiting = 1;

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                   "vodlms redis: destroy, %V: %ui open",
                   &pool->conf->name, pool->nconns);

    if (pool->dispatch.posted) {
        ngx_delete_posted_event(&pool->dispatch);
    }

    while (!ngx_queue_empty(&pool->waiting)) {
        q = ngx_queue_head(&pool->waiting);
        batch = ngx_queue_data(q, ngx_vodlms_redis_batch_t, wait);
        ngx_vodlms_redis_batch_finish(batch, NGX_VODLMS_REDIS_ERROR,
                                      "worker is exiting");
        ngx_vodlms_redis_batch_free(batch);
    }

    if (pool->conf->mode != NGX_VODLMS_REDIS_FIXED) {
        ngx_vodlms_redis_discover_destroy(pool);
    }

    while (!ngx_queue_empty(&pool->conns)) {
        q = ngx_queue_head(&pool->conns);
        conn = ngx_queue_data(q, ngx_vodlms_redis_conn_t, queue);
        ngx_vodlms_redis_fail(conn, NGX_VODLMS_REDIS_ERROR,
                              "worker is exiting");
    }
}


ngx_int_t
ngx_vodlms_redis_current_address(ngx_vodlms_redis_pool_t *pool,
    ngx_addr_t **addr)
{
    if (pool->conf->mode == NGX_VODLMS_REDIS_RESOLVE
        && pool->target_state == NGX_VODLMS_REDIS_TARGET_KNOWN
        && ngx_time() >= pool->target_valid)
    {
        pool->target_state = NGX_VODLMS_REDIS_TARGET_NONE;
    }

    if (pool->target_state == NGX_VODLMS_REDIS_TARGET_KNOWN) {
        *addr = &pool->target;
        return NGX_OK;
    }

    if (pool->target_state == NGX_VODLMS_REDIS_TARGET_NONE) {
        if (ngx_vodlms_backoff_left(&pool->backoff)) {
            return NGX_DECLINED;
        }

        ngx_vodlms_redis_discover(pool);

        /* a cached answer may have come at once */
        if (pool->target_state == NGX_VODLMS_REDIS_TARGET_KNOWN) {
            *addr = &pool->target;
            return NGX_OK;
        }
    }

    return NGX_AGAIN;
}


ngx_int_t
ngx_vodlms_redis_send(ngx_vodlms_redis_pool_t *pool, ngx_pool_t *owner,
    ngx_log_t *log, ngx_vodlms_redis_cmd_t *cmds, ngx_uint_t ncmds,
    ngx_vodlms_redis_reply_pt on_reply, ngx_vodlms_redis_done_pt on_done,
    void *data, ngx_vodlms_redis_status_e *status, const char **reason)
{
    ngx_int_t                  rc;
    ngx_pool_cleanup_t        *cln;
    ngx_vodlms_redis_conn_t   *conn;
    ngx_vodlms_redis_batch_t  *batch;

    if (ncmds > NGX_VODLMS_REDIS_MAX_CMDS) {
        *status = NGX_VODLMS_REDIS_ERROR;
        *reason = "too many commands in one batch";
        return NGX_DECLINED;
    }

    rc = ngx_vodlms_redis_pick(pool, &conn);

    if (rc == NGX_DECLINED) {
        *status = ngx_vodlms_backoff_left(&pool->backoff)
                  ? NGX_VODLMS_REDIS_DOWN : NGX_VODLMS_REDIS_ERROR;
        *reason = pool->reason;
        return NGX_DECLINED;
    }

    cln = ngx_pool_cleanup_add(owner, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    batch = ngx_calloc(sizeof(ngx_vodlms_redis_batch_t), log);
    if (batch == NULL) {
        return NGX_ERROR;
    }

    batch->pool = pool;
    batch->on_reply = on_reply;
    batch->on_done = on_done;
    batch->data = data;

    batch->timer.handler = ngx_vodlms_redis_batch_timeout;
    batch->timer.data = batch;
    batch->timer.log = pool->log;

    if (rc == NGX_OK) {
        if (ngx_vodlms_redis_batch_attach(batch, conn, cmds, ncmds, log)
            != NGX_OK)
        {
            ngx_free(batch);
            *status = NGX_VODLMS_REDIS_ERROR;
            *reason = "could not queue the command";
            return NGX_DECLINED;
        }

    } else {
        /* NGX_AGAIN: the server's address is being found, or (Sentinel)
           a new connection's ROLE */

        if (ngx_vodlms_redis_batch_copy(batch, cmds, ncmds, log) != NGX_OK) {
            ngx_free(batch);
            return NGX_ERROR;
        }

        batch->waiting = 1;
        ngx_queue_insert_tail(&pool->waiting, &batch->wait);

        ngx_log_debug2(NGX_LOG_DEBUG_EVENT, log, 0,
                       "vodlms redis: wait, %V: %ui commands wait for the "
                       "server's address or a connection's ROLE",
                       &pool->conf->name, ncmds);
    }

    cln->handler = ngx_vodlms_redis_batch_detach;
    cln->data = batch;
    batch->cleanup = cln;

    batch->started = ngx_current_msec;
    ngx_add_timer(&batch->timer, pool->conf->timeout);

    return NGX_OK;
}


/*
 * The least busy connection, or a new one while all are busy.  NGX_AGAIN:
 * none to use yet (the address is being found, or, with Sentinel, the new
 * connection's ROLE is not in); NGX_DECLINED: none at all (pool->reason
 * says why).
 */

static ngx_int_t
ngx_vodlms_redis_pick(ngx_vodlms_redis_pool_t *pool,
    ngx_vodlms_redis_conn_t **connp)
{
    ngx_msec_t                left;
    ngx_uint_t                setting_up;
    ngx_vodlms_redis_conn_t  *conn, *best;

    /*
     * A name's answer is used for as long as its TTL says, then asked
     * again without waiting for it: the open connections serve until the
     * answer comes, and are drained if it moved (set_target).
     */
    if (pool->conf->mode == NGX_VODLMS_REDIS_RESOLVE
        && pool->target_state != NGX_VODLMS_REDIS_TARGET_DISCOVERING
        && ngx_time() >= pool->target_valid)
    {
        ngx_vodlms_redis_discover(pool);
    }

    /* (after discover(): a cached answer may have drained connections) */
    best = ngx_vodlms_redis_best(pool, &setting_up);

    *connp = best;

    if (best && (best->pending == 0 || pool->nconns >= pool->conf->pool_size))
    {
        return NGX_OK;
    }

    /* one new connection at a time while its ROLE is awaited */
    if (setting_up) {
        return best ? NGX_OK : NGX_AGAIN;
    }

    left = ngx_vodlms_backoff_left(&pool->backoff);

    if (left) {
        ngx_log_debug2(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                       "vodlms redis: down, %V: no connect for %M ms more",
                       &pool->conf->name, left);

        ngx_snprintf((u_char *) pool->reason, sizeof(pool->reason) - 1,
                     "redis %V is down (%ui failed attempts), next try "
                     "in %M ms%Z", &pool->conf->name, pool->backoff.failures,
                     left);

        return best ? NGX_OK : NGX_DECLINED;
    }

    if (pool->target_state != NGX_VODLMS_REDIS_TARGET_KNOWN) {
        ngx_vodlms_redis_discover(pool);

        /* a synchronous answer may have moved the target: look again */
        best = ngx_vodlms_redis_best(pool, &setting_up);
        *connp = best;

        if (pool->target_state == NGX_VODLMS_REDIS_TARGET_NONE) {
            /* it failed at once (pool->reason) */
            return best ? NGX_OK : NGX_DECLINED;
        }

        if (pool->target_state != NGX_VODLMS_REDIS_TARGET_KNOWN) {
            return best ? NGX_OK : NGX_AGAIN;
        }
    }

    conn = ngx_vodlms_redis_connect(pool);

    if (conn == NULL) {
        return best ? NGX_OK : NGX_DECLINED;
    }

    /*
     * With Sentinel, nothing goes to a new connection before its ROLE says
     * "master": a demoted server may still hold old data (a deleted
     * session).  The batch waits in pool->waiting; set_ready() runs it.
     */
    if (pool->conf->mode == NGX_VODLMS_REDIS_SENTINEL) {
        return best ? NGX_OK : NGX_AGAIN;
    }

    *connp = conn;
    return NGX_OK;
}


/*
 * The least busy usable connection, or NULL; *setting_up: one is still
 * being set up (Sentinel: its ROLE is awaited), and is not usable yet.
 */

static ngx_vodlms_redis_conn_t *
ngx_vodlms_redis_best(ngx_vodlms_redis_pool_t *pool, ngx_uint_t *setting_up)
{
    ngx_queue_t              *q;
    ngx_vodlms_redis_conn_t  *conn, *best;

    best = NULL;
    *setting_up = 0;

    for (q = ngx_queue_head(&pool->conns);
         q != ngx_queue_sentinel(&pool->conns);
         q = ngx_queue_next(q))
    {
        conn = ngx_queue_data(q, ngx_vodlms_redis_conn_t, queue);

        if (!conn->ready && pool->conf->mode == NGX_VODLMS_REDIS_SENTINEL) {
            *setting_up = 1;
            continue;
        }

        if (best == NULL || conn->pending < best->pending) {
            best = conn;
        }
    }

    return best;
}


/*
 * A new hiredis context on a socket driven by nginx events.  NULL on
 * failure, with conn-less reasons in pool->reason; *refused says the
 * server refused at once (a failed attempt, for the back-off).
 */

ngx_vodlms_redis_conn_t *
ngx_vodlms_redis_open(ngx_vodlms_redis_pool_t *pool, struct sockaddr *sa,
    socklen_t socklen, ngx_uint_t sentinel, ngx_uint_t *refused)
{
    size_t                     len;
    in_port_t                  port;
    redisAsyncContext         *ac;
    ngx_connection_t          *c;
    ngx_vodlms_redis_conn_t   *conn;

    u_char  host[NGX_SOCKADDR_STRLEN + 1], peer[NGX_SOCKADDR_STRLEN + 1];

    *refused = 0;

    len = ngx_sock_ntop(sa, socklen, peer, NGX_SOCKADDR_STRLEN, 1);
    peer[len] = '\0';

    if (sa->sa_family == AF_UNIX) {
        ac = redisAsyncConnectUnix(((struct sockaddr_un *) sa)->sun_path);

    } else {
        /* bare, as hiredis wants it: no port, no IPv6 brackets */
        len = ngx_sock_ntop(sa, socklen, host, NGX_SOCKADDR_STRLEN, 0);
        host[len] = '\0';
        port = ngx_inet_get_port(sa);

        ac = redisAsyncConnect((char *) host, port);
    }

    if (ac == NULL) {
        ngx_snprintf((u_char *) pool->reason, sizeof(pool->reason) - 1,
                     "redis %V: out of memory%Z", &pool->conf->name);
        return NULL;
    }

    if (ac->err) {
        /* e.g. a refused connection on loopback is known at once */
        if (sentinel) {
            ngx_snprintf((u_char *) pool->reason, sizeof(pool->reason) - 1,
                         "sentinel %s connect failed: %s%Z", peer,
                         ac->errstr);

        } else if (pool->conf->mode == NGX_VODLMS_REDIS_FIXED) {
            ngx_snprintf((u_char *) pool->reason, sizeof(pool->reason) - 1,
                         "redis %V connect failed: %s%Z", &pool->conf->name,
                         ac->errstr);
        } else {
            ngx_snprintf((u_char *) pool->reason, sizeof(pool->reason) - 1,
                         "redis %V at %s connect failed: %s%Z",
                         &pool->conf->name, peer, ac->errstr);
        }

        redisAsyncFree(ac);
        *refused = 1;
        return NULL;
    }

    conn = ngx_calloc(sizeof(ngx_vodlms_redis_conn_t), pool->log);
    if (conn == NULL) {
        redisAsyncFree(ac);
        ngx_snprintf((u_char *) pool->reason, sizeof(pool->reason) - 1,
                     "redis %V: out of memory%Z", &pool->conf->name);
        return NULL;
    }

    c = ngx_get_connection(ac->c.fd, pool->log);
    if (c == NULL) {
        ngx_free(conn);
        redisAsyncFree(ac);
        ngx_snprintf((u_char *) pool->reason, sizeof(pool->reason) - 1,
                     "redis %V: no free nginx connection "
                     "(worker_connections)%Z", &pool->conf->name);
        return NULL;
    }

    c->data = conn;
    c->read->handler = ngx_vodlms_redis_read_handler;
    c->write->handler = ngx_vodlms_redis_write_handler;
    c->read->log = pool->log;
    c->write->log = pool->log;

    /*
     * Its connect and answer timers are for discovery and the pool: a
     * batch that waits has a timer of its own, so a worker that shuts
     * down does not have to wait for these.
     */
    c->read->cancelable = 1;
    c->write->cancelable = 1;

    conn->pool = pool;
    conn->ac = ac;
    conn->connection = c;
    conn->sentinel = sentinel;
    ngx_memcpy(conn->peer, peer, sizeof(peer));

    ac->data = conn;
    ac->ev.data = conn;
    ac->ev.addRead = ngx_vodlms_redis_add_read;
    ac->ev.delRead = ngx_vodlms_redis_del_read;
    ac->ev.addWrite = ngx_vodlms_redis_add_write;
    ac->ev.delWrite = ngx_vodlms_redis_del_write;
    ac->ev.cleanup = ngx_vodlms_redis_cleanup;

    redisAsyncSetConnectCallback(ac, ngx_vodlms_redis_on_connect);

    /* counted out in ngx_vodlms_redis_cleanup() */
    ngx_vodlms_metrics_connection(NGX_VODLMS_BACKEND_REDIS, 1);

    /* the connect completes when the socket becomes writable */
    ngx_vodlms_redis_add_write(conn);
    ngx_add_timer(c->write, pool->conf->connect_timeout);

    return conn;
}


static ngx_vodlms_redis_conn_t *
ngx_vodlms_redis_connect(ngx_vodlms_redis_pool_t *pool)
{
    int                        argc;
    size_t                     argvlen[3];
    ngx_uint_t                 refused;
    const char                *argv[3];
    redisAsyncContext         *ac;
    ngx_vodlms_redis_conf_t   *conf;
    ngx_vodlms_redis_conn_t   *conn;

    conf = pool->conf;

    conn = ngx_vodlms_redis_open(pool, pool->target.sockaddr,
                                 pool->target.socklen, 0, &refused);

    if (conn == NULL) {
        if (refused) {
            ngx_vodlms_backoff_failed(&pool->backoff, pool->log, "redis",
                                      &pool->conf->name);

            if (conf->mode != NGX_VODLMS_REDIS_FIXED) {
                pool->target_state = NGX_VODLMS_REDIS_TARGET_NONE;
                pool->target_failed = 1;
            }
        }

        return NULL;
    }

    ac = conn->ac;
    conn->gen = pool->target_gen;

    ngx_queue_insert_tail(&pool->conns, &conn->queue);
    conn->in_pool = 1;
    pool->nconns++;

    /* AUTH, SELECT (and ROLE, for a master named by sentinels) go first */

    if (conf->password.len) {
        argc = 0;
        argv[argc] = "AUTH";
        argvlen[argc++] = 4;

        if (conf->user.len) {
            argv[argc] = (const char *) conf->user.data;
            argvlen[argc++] = conf->user.len;
        }

        argv[argc] = (const char *) conf->password.data;
        argvlen[argc++] = conf->password.len;

        if (redisAsyncCommandArgv(ac, ngx_vodlms_redis_setup_reply, conn,
                                  argc, argv, argvlen)
            == REDIS_OK)
        {
            conn->setup_cmd[conn->nsetup++] = "AUTH";
        }
    }

    if (conf->db) {
        u_char  db[NGX_INT_T_LEN];

        argv[0] = "SELECT";
        argvlen[0] = 6;
        argv[1] = (const char *) db;
        argvlen[1] = ngx_sprintf(db, "%i", conf->db) - db;

        if (redisAsyncCommandArgv(ac, ngx_vodlms_redis_setup_reply, conn,
                                  2, argv, argvlen)
            == REDIS_OK)
        {
            conn->setup_cmd[conn->nsetup++] = "SELECT";
        }
    }

    if (conf->mode == NGX_VODLMS_REDIS_SENTINEL) {
        argv[0] = "ROLE";
        argvlen[0] = 4;

        if (redisAsyncCommandArgv(ac, ngx_vodlms_redis_setup_reply, conn,
                                  1, argv, argvlen)
            == REDIS_OK)
        {
            conn->setup_cmd[conn->nsetup++] = "ROLE";
        }
    }

    conn->setup = conn->nsetup;

    ngx_log_debug8(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                   "vodlms redis: connect, %V%s%s fd:%d, %ui of "
                   "pool_size=%ui, %ui setup commands (AUTH, SELECT%s)",
                   &conf->name, conf->mode ? " at " : "",
                   conf->mode ? (char *) conn->peer : "",
                   conn->connection->fd, pool->nconns, conf->pool_size,
                   conn->setup,
                   conf->mode == NGX_VODLMS_REDIS_SENTINEL ? ", ROLE" : "");

    return conn;
}


/* where new connections go: see ngx_vodlms_redis_internal.h */

void
ngx_vodlms_redis_set_target(ngx_vodlms_redis_pool_t *pool,
    struct sockaddr *sa, socklen_t socklen, time_t valid)
{
    size_t                    len;
    ngx_uint_t                moved;
    ngx_queue_t              *q, *next;
    ngx_vodlms_redis_conn_t  *conn;

    u_char  was[NGX_SOCKADDR_STRLEN + 1];

    moved = pool->target_gen
            && ngx_cmp_sockaddr(sa, socklen, pool->target.sockaddr,
                                pool->target.socklen, 1)
               != NGX_OK;

    ngx_memcpy(was, pool->target_text, sizeof(was));

    pool->target_state = NGX_VODLMS_REDIS_TARGET_KNOWN;
    pool->target_valid = valid;

    if (pool->target_gen && !moved) {
        return;
    }

    pool->target_failed = 0;

    ngx_memcpy(&pool->target_sa, sa, socklen);
    pool->target.sockaddr = &pool->target_sa.sockaddr;
    pool->target.socklen = socklen;

    len = ngx_sock_ntop(sa, socklen, pool->target_text, NGX_SOCKADDR_STRLEN,
                        1);
    pool->target_text[len] = '\0';
    pool->target.name.data = pool->target_text;
    pool->target.name.len = len;

    pool->target_gen++;

    if (!moved) {
        /* (a fixed address is set at start: nothing found, nothing said) */
        if (pool->conf->mode != NGX_VODLMS_REDIS_FIXED) {
            ngx_log_debug2(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                           "vodlms redis: target, %V is at %V",
                           &pool->conf->name, &pool->target.name);
        }

        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, pool->log, 0,
                  "vodlms redis: %V is now at %V (was %s)",
                  &pool->conf->name, &pool->target.name, was);

    /* the back-off was for the old address: the new one is tried at once */
    (void) ngx_vodlms_backoff_ok(&pool->backoff);

    /* connections to the old address: idle ones go now, busy ones drain */

    for (q = ngx_queue_head(&pool->conns);
         q != ngx_queue_sentinel(&pool->conns);
         q = next)
    {
        next = ngx_queue_next(q);
        conn = ngx_queue_data(q, ngx_vodlms_redis_conn_t, queue);

        if (conn->gen != pool->target_gen) {
            ngx_vodlms_redis_drain(conn);

            if (conn->pending == 0) {
                ngx_vodlms_redis_fail(conn, NGX_VODLMS_REDIS_ERROR,
                                      "the server moved");
            }
        }
    }
}


/* discovery is over (ngx_vodlms_redis_discover.c): run the waiting batches */

void
ngx_vodlms_redis_discovered(ngx_vodlms_redis_pool_t *pool, ngx_int_t rc)
{
    pool->round_failed = (rc != NGX_OK);

    if (rc != NGX_OK) {
        pool->target_state = NGX_VODLMS_REDIS_TARGET_NONE;

        ngx_vodlms_backoff_failed(&pool->backoff, pool->log, "redis",
                                  &pool->conf->name);

        ngx_log_error(NGX_LOG_INFO, pool->log, 0, "vodlms: %s",
                      pool->reason);
    }

    /* never from inside ngx_vodlms_redis_send(): callers' callbacks wait */
    ngx_vodlms_redis_post_dispatch(pool);
}


static void
ngx_vodlms_redis_dispatch(ngx_event_t *ev)
{
    ngx_int_t                  rc;
    ngx_queue_t               *q;
    ngx_vodlms_redis_conn_t   *conn;
    ngx_vodlms_redis_pool_t   *pool = ev->data;
    ngx_vodlms_redis_batch_t  *batch;

    while (!ngx_queue_empty(&pool->waiting)) {

        if (pool->target_state == NGX_VODLMS_REDIS_TARGET_DISCOVERING) {
            return;    /* another round began: they wait for that one */
        }

        q = ngx_queue_head(&pool->waiting);
        batch = ngx_queue_data(q, ngx_vodlms_redis_batch_t, wait);

        /*
         * A failed round: they fail with its reason.  A target lost since
         * (a connection refused, a ROLE): pick() asks again, or declines
         * while backing off.
         */
        rc = (pool->target_state == NGX_VODLMS_REDIS_TARGET_NONE
              && pool->round_failed)
             ? NGX_DECLINED : ngx_vodlms_redis_pick(pool, &conn);

        if (rc == NGX_AGAIN) {
            return;
        }

        ngx_queue_remove(&batch->wait);
        batch->waiting = 0;

        if (rc == NGX_OK
            && ngx_vodlms_redis_batch_attach(batch, conn, batch->cmds,
                                             batch->ncmds, pool->log)
               == NGX_OK)
        {
            ngx_free(batch->copy);
            batch->copy = NULL;
            continue;
        }

        ngx_vodlms_redis_batch_finish(batch,
                            ngx_vodlms_backoff_left(&pool->backoff)
                            ? NGX_VODLMS_REDIS_DOWN : NGX_VODLMS_REDIS_ERROR,
                            pool->reason);
        ngx_vodlms_redis_batch_free(batch);
    }
}


static void
ngx_vodlms_redis_set_ready(ngx_vodlms_redis_conn_t *conn)
{
    ngx_uint_t                failures;
    ngx_vodlms_redis_pool_t  *pool;

    conn->ready = 1;
    pool = conn->pool;

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                   "vodlms redis: ready, %V fd:%d",
                   &pool->conf->name, conn->connection->fd);

    failures = ngx_vodlms_backoff_ok(&pool->backoff);

    if (failures) {
        ngx_log_error(NGX_LOG_NOTICE, pool->log, 0,
                      "vodlms redis: connected to %V again after %ui "
                      "failed attempts", &pool->conf->name, failures);
    }

    /* batches that waited for it (Sentinel: for its ROLE) */
    ngx_vodlms_redis_post_dispatch(pool);
}


/* the waiting batches get another look, outside of any caller's callback */

static void
ngx_vodlms_redis_post_dispatch(ngx_vodlms_redis_pool_t *pool)
{
    if (!ngx_queue_empty(&pool->waiting) && !pool->dispatch.posted
        && !pool->exiting)
    {
        ngx_post_event(&pool->dispatch, &ngx_posted_events);
    }
}


/* no new batches on this connection; it closes after its last reply */

static void
ngx_vodlms_redis_drain(ngx_vodlms_redis_conn_t *conn)
{
    if (conn->in_pool) {
        ngx_queue_remove(&conn->queue);
        conn->in_pool = 0;
        conn->pool->nconns--;
    }

    conn->draining = 1;

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, conn->pool->log, 0,
                   "vodlms redis: drain, %V fd:%d, %ui pending",
                   &conn->pool->conf->name, conn->connection->fd,
                   conn->pending);
}


/* this connection's server is not where the pool should go: ask again */

static void
ngx_vodlms_redis_lost_target(ngx_vodlms_redis_conn_t *conn)
{
    ngx_vodlms_redis_pool_t  *pool = conn->pool;

    if (pool->conf->mode != NGX_VODLMS_REDIS_FIXED
        && conn->gen == pool->target_gen
        && pool->target_state == NGX_VODLMS_REDIS_TARGET_KNOWN)
    {
        pool->target_state = NGX_VODLMS_REDIS_TARGET_NONE;

        if (pool->conf->mode == NGX_VODLMS_REDIS_SENTINEL) {
            ngx_vodlms_redis_discover_stale(pool);
        }
    }
}


static void
ngx_vodlms_redis_on_connect(const redisAsyncContext *ac, int status)
{
    ngx_vodlms_redis_conn_t  *conn;

    conn = ac->data;

    if (status != REDIS_OK) {
        /* hiredis frees the context after this returns */
        ngx_vodlms_redis_mark_failed(conn, NGX_VODLMS_REDIS_ERROR, NULL);
        return;
    }

    conn->connected = 1;

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, conn->pool->log, 0,
                   "vodlms redis: connected, %V fd:%d%s",
                   &conn->pool->conf->name, conn->connection->fd,
                   conn->sentinel ? " (a sentinel)" : "");

    if (conn->connection->write->timer_set) {
        ngx_del_timer(conn->connection->write);
    }

    if (conn->setup == 0 && !conn->sentinel) {
        ngx_vodlms_redis_set_ready(conn);
    }
}


static void
ngx_vodlms_redis_setup_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply               *reply = r;
    ngx_vodlms_redis_conn_t  *conn = privdata;

    u_char  buf[NGX_VODLMS_REDIS_REASON_LEN];

    const char               *what;
    redisReply               *role;
    ngx_vodlms_redis_pool_t  *pool;

    conn->setup--;
    conn->setup_seen++;

    if (reply == NULL || conn->failed) {
        return;
    }

    pool = conn->pool;
    what = conn->setup_cmd[conn->setup_seen - 1];

    if (reply->type == REDIS_REPLY_ERROR) {
        /* never log the password; the server's words are safe */
        ngx_snprintf(buf, sizeof(buf) - 1, "%s rejected: %*s%Z", what,
                     ngx_min((size_t) reply->len, (size_t) 100), reply->str);
        ngx_vodlms_redis_fail(conn, NGX_VODLMS_REDIS_ERROR, (char *) buf);
        return;
    }

    if (what[0] == 'R') {
        /* ROLE: the sentinels may name a master that is one no more */

        role = (reply->type == REDIS_REPLY_ARRAY && reply->elements)
               ? reply->element[0] : NULL;

        if (role == NULL || role->type != REDIS_REPLY_STRING
            || role->len != 6 || ngx_strncmp(role->str, "master", 6) != 0)
        {
            ngx_log_error(NGX_LOG_INFO, pool->log, 0,
                          "vodlms redis: %V at %s answers ROLE \"%*s\", not "
                          "\"master\": asking the sentinels again",
                          &pool->conf->name, conn->peer,
                          (role && role->type == REDIS_REPLY_STRING)
                          ? ngx_min((size_t) role->len, (size_t) 32) : 0,
                          (role && role->type == REDIS_REPLY_STRING)
                          ? role->str : "");

            /*
             * Nothing was sent behind ROLE (pick): the connection closes,
             * as a failed attempt (the back-off limits the rounds while a
             * sentinel keeps naming it), the sentinel that named it goes
             * to the back, and the next round asks another one first.
             */
            ngx_vodlms_redis_fail(conn, NGX_VODLMS_REDIS_ERROR,
                                  "is not the master (ROLE)");
            return;
        }
    }

    if (conn->setup == 0) {
        ngx_vodlms_redis_set_ready(conn);
    }
}


static void
ngx_vodlms_redis_mark_failed(ngx_vodlms_redis_conn_t *conn,
    ngx_vodlms_redis_status_e status, const char *reason)
{
    ngx_vodlms_redis_pool_t  *pool;

    if (conn->failed) {
        return;
    }

    pool = conn->pool;

    conn->failed = 1;
    conn->fail_status = status;

    if (reason == NULL) {
        /* ac->errstr is only filled in after the callbacks have run */
        reason = conn->ac->c.err ? conn->ac->c.errstr : "connection lost";
    }

    if (conn->sentinel) {
        ngx_snprintf((u_char *) conn->reason, sizeof(conn->reason) - 1,
                     "sentinel %s %s%s%Z", conn->peer,
                     conn->connected ? "" : "connect failed: ", reason);

    } else if (pool->conf->mode == NGX_VODLMS_REDIS_FIXED) {
        ngx_snprintf((u_char *) conn->reason, sizeof(conn->reason) - 1,
                     "redis %V %s%s%Z", &pool->conf->name,
                     conn->connected ? "" : "connect failed: ", reason);

    } else {
        ngx_snprintf((u_char *) conn->reason, sizeof(conn->reason) - 1,
                     "redis %V at %s %s%s%Z", &pool->conf->name, conn->peer,
                     conn->connected ? "" : "connect failed: ", reason);
    }

    ngx_log_debug5(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                   "vodlms redis: close, %V fd:%d, %s, %ui pending: %s",
                   &pool->conf->name, conn->connection->fd,
                   conn->ready ? "ready"
                               : (conn->connected ? "setup" : "connecting"),
                   conn->pending, conn->reason);

    if (conn->sentinel) {
        ngx_vodlms_redis_discover_lost(conn);
        return;
    }

    if (conn->in_pool) {
        ngx_queue_remove(&conn->queue);
        conn->in_pool = 0;
        pool->nconns--;
    }

    if (conn->draining) {
        return;
    }

    if (!pool->exiting) {
        ngx_vodlms_redis_lost_target(conn);
    }

    if (!conn->ready) {
        /* an attempt failed: a name with several addresses tries the next */
        if (conn->gen == pool->target_gen) {
            pool->target_failed = 1;
        }

        ngx_vodlms_backoff_failed(&pool->backoff, pool->log, "redis",
                                  &pool->conf->name);
        ngx_cpystrn((u_char *) pool->reason, (u_char *) conn->reason,
                    sizeof(pool->reason));
    }

    if (conn->pending == 0 && !pool->exiting) {
        ngx_log_error(NGX_LOG_INFO, pool->log, 0,
                      "vodlms: %s", conn->reason);
    }

    /* batches that waited for this one (Sentinel: for its ROLE) */
    ngx_vodlms_redis_post_dispatch(pool);
}


void
ngx_vodlms_redis_fail(ngx_vodlms_redis_conn_t *conn,
    ngx_vodlms_redis_status_e status, const char *reason)
{
    ngx_vodlms_redis_mark_failed(conn, status, reason);

    /* inside a hiredis callback this is deferred until it returns */
    redisAsyncFree(conn->ac);
}


/* events */

static void
ngx_vodlms_redis_read_handler(ngx_event_t *ev)
{
    ngx_connection_t         *c = ev->data;
    ngx_vodlms_redis_conn_t  *conn = c->data;

    u_char  buf[64];

    if (ev->timedout) {
        /* only a sentinel's answer is timed here (batches have their own) */
        ev->timedout = 0;
        ngx_snprintf(buf, sizeof(buf) - 1, "read timed out after %M ms%Z",
                     conn->pool->conf->timeout);
        ngx_vodlms_redis_fail(conn, NGX_VODLMS_REDIS_TIMEOUT, (char *) buf);
        return;
    }

    /* may free conn and c */
    redisAsyncHandleRead(conn->ac);
}


static void
ngx_vodlms_redis_write_handler(ngx_event_t *ev)
{
    ngx_connection_t         *c = ev->data;
    ngx_vodlms_redis_conn_t  *conn = c->data;

    u_char  buf[64];

    if (ev->timedout) {
        ev->timedout = 0;
        ngx_snprintf(buf, sizeof(buf) - 1, "timed out after %M ms%Z",
                     conn->pool->conf->connect_timeout);
        ngx_vodlms_redis_fail(conn, NGX_VODLMS_REDIS_TIMEOUT, (char *) buf);
        return;
    }

    /* may free conn and c */
    redisAsyncHandleWrite(conn->ac);
}


/*
 * hiredis reads and writes once per call, so the socket is watched
 * level-triggered: with nginx's default edge-triggered epoll, bytes left
 * unread would never be signalled again.
 */

static void
ngx_vodlms_redis_watch(ngx_vodlms_redis_conn_t *conn, ngx_event_t *ev,
    ngx_int_t event, ngx_uint_t on)
{
    if (on && !ev->active) {
        if (ngx_add_event(ev, event, NGX_LEVEL_EVENT) != NGX_OK) {
            ngx_log_error(NGX_LOG_ALERT, conn->pool->log, 0,
                          "vodlms redis: could not watch a socket for %s",
                          event == NGX_READ_EVENT ? "read" : "write");
        }

    } else if (!on && ev->active) {
        ngx_del_event(ev, event, NGX_LEVEL_EVENT);
    }
}


static void
ngx_vodlms_redis_add_read(void *privdata)
{
    ngx_vodlms_redis_conn_t  *conn = privdata;

    ngx_vodlms_redis_watch(conn, conn->connection->read, NGX_READ_EVENT, 1);
}


static void
ngx_vodlms_redis_del_read(void *privdata)
{
    ngx_vodlms_redis_conn_t  *conn = privdata;

    ngx_vodlms_redis_watch(conn, conn->connection->read, NGX_READ_EVENT, 0);
}


static void
ngx_vodlms_redis_add_write(void *privdata)
{
    ngx_vodlms_redis_conn_t  *conn = privdata;

    ngx_vodlms_redis_watch(conn, conn->connection->write, NGX_WRITE_EVENT, 1);
}


static void
ngx_vodlms_redis_del_write(void *privdata)
{
    ngx_vodlms_redis_conn_t  *conn = privdata;

    ngx_vodlms_redis_watch(conn, conn->connection->write, NGX_WRITE_EVENT, 0);
}


/* hiredis calls this when it frees the context, after every callback ran */

static void
ngx_vodlms_redis_cleanup(void *privdata)
{
    ngx_connection_t         *c;
    ngx_vodlms_redis_conn_t  *conn = privdata;

    ngx_vodlms_redis_mark_failed(conn, NGX_VODLMS_REDIS_ERROR, NULL);

    c = conn->connection;

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    /* hiredis closes the socket right after this returns */

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

    ngx_vodlms_metrics_connection(NGX_VODLMS_BACKEND_REDIS, -1);

    ngx_free(conn);
}


/* command batches */

static ngx_int_t
ngx_vodlms_redis_batch_attach(ngx_vodlms_redis_batch_t *batch,
    ngx_vodlms_redis_conn_t *conn, ngx_vodlms_redis_cmd_t *cmds,
    ngx_uint_t ncmds, ngx_log_t *log)
{
    ngx_uint_t  i;

    for (i = 0; i < ncmds; i++) {
        if (redisAsyncCommandArgv(conn->ac, ngx_vodlms_redis_batch_reply,
                                  batch, cmds[i].argc, cmds[i].argv,
                                  cmds[i].argvlen)
            != REDIS_OK)
        {
            break;
        }
    }

    if (i == 0) {
        return NGX_DECLINED;
    }

    batch->conn = conn;
    batch->ncmds = i;

    if (i < ncmds) {
        /* only part of the pipeline went out: wait for it, then fail */
        batch->short_queued = 1;
    }

    conn->pending += batch->ncmds;

    /* the caller's log: its line names the request */
    ngx_log_debug4(NGX_LOG_DEBUG_EVENT, log, 0,
                   "vodlms redis: execute, %V fd:%d, %ui commands, "
                   "%ui pending", &conn->pool->conf->name,
                   conn->connection->fd, batch->ncmds, conn->pending);

    return NGX_OK;
}


/* a waiting batch keeps its own copy: the caller's arrays are short-lived */

static ngx_int_t
ngx_vodlms_redis_batch_copy(ngx_vodlms_redis_batch_t *batch,
    ngx_vodlms_redis_cmd_t *cmds, ngx_uint_t ncmds, ngx_log_t *log)
{
    int          j;
    size_t       size;
    u_char      *p;
    ngx_uint_t   i, nargs;

    nargs = 0;
    size = 0;

    for (i = 0; i < ncmds; i++) {
        nargs += cmds[i].argc;

        for (j = 0; j < cmds[i].argc; j++) {
            size += cmds[i].argvlen[j];
        }
    }

    size += nargs * (sizeof(char *) + sizeof(size_t));

    batch->copy = ngx_alloc(size, log);
    if (batch->copy == NULL) {
        return NGX_ERROR;
    }

    p = batch->copy;

    for (i = 0; i < ncmds; i++) {
        batch->cmds[i].argc = cmds[i].argc;
        batch->cmds[i].argv = (const char **) p;
        p += cmds[i].argc * sizeof(char *);
        batch->cmds[i].argvlen = (const size_t *) p;
        ngx_memcpy(p, cmds[i].argvlen, cmds[i].argc * sizeof(size_t));
        p += cmds[i].argc * sizeof(size_t);
    }

    for (i = 0; i < ncmds; i++) {
        for (j = 0; j < cmds[i].argc; j++) {
            batch->cmds[i].argv[j] = (const char *) p;
            p = ngx_cpymem(p, cmds[i].argv[j], cmds[i].argvlen[j]);
        }
    }

    batch->ncmds = ncmds;

    return NGX_OK;
}


static void
ngx_vodlms_redis_batch_free(ngx_vodlms_redis_batch_t *batch)
{
    if (batch->copy) {
        ngx_free(batch->copy);
    }

    ngx_free(batch);
}


static void
ngx_vodlms_redis_batch_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply                *reply = r;
    ngx_vodlms_redis_conn_t   *conn = ac->data;
    ngx_vodlms_redis_batch_t  *batch = privdata;

    batch->nreplies++;
    conn->pending--;

    /* a replica's answer to a write: the master has moved */
    if (reply && reply->type == REDIS_REPLY_ERROR
        && reply->len >= 8 && ngx_strncmp(reply->str, "READONLY", 8) == 0
        && conn->pool->conf->mode != NGX_VODLMS_REDIS_FIXED
        && !conn->draining && !conn->failed)
    {
        ngx_log_error(NGX_LOG_INFO, conn->pool->log, 0,
                      "vodlms redis: %V at %s answers READONLY: asking "
                      "where the master is again",
                      &conn->pool->conf->name, conn->peer);

        ngx_vodlms_redis_lost_target(conn);
        ngx_vodlms_redis_drain(conn);
    }

    if (!batch->done) {

        if (reply == NULL) {
            ngx_vodlms_redis_mark_failed(conn, NGX_VODLMS_REDIS_ERROR, NULL);
            ngx_vodlms_redis_batch_finish(batch, conn->fail_status,
                                          conn->reason);

        } else {
            if (batch->on_reply && !batch->detached) {
                batch->on_reply(batch->data, batch->nreplies - 1, reply);
            }

            if (batch->nreplies == batch->ncmds) {
                if (batch->short_queued) {
                    ngx_vodlms_redis_batch_finish(batch,
                                        NGX_VODLMS_REDIS_ERROR,
                                        "could not queue the whole pipeline");
                } else {
                    ngx_vodlms_redis_batch_finish(batch, NGX_VODLMS_REDIS_OK,
                                                  NULL);
                }
            }
        }
    }

    if (batch->nreplies == batch->ncmds) {
        ngx_vodlms_redis_batch_free(batch);
    }

    /* conn lives on: hiredis frees it only after its callbacks return */

    if (conn->pending == 0 && !conn->failed) {
        ngx_log_debug2(NGX_LOG_DEBUG_EVENT, conn->pool->log, 0,
                       "vodlms redis: idle, %V fd:%d",
                       &conn->pool->conf->name, conn->connection->fd);

        if (conn->draining) {
            ngx_vodlms_redis_fail(conn, NGX_VODLMS_REDIS_ERROR, "drained");
        }
    }
}


static void
ngx_vodlms_redis_batch_finish(ngx_vodlms_redis_batch_t *batch,
    ngx_vodlms_redis_status_e status, const char *reason)
{
    ngx_vodlms_redis_pool_t  *pool = batch->pool;

    batch->done = 1;

    ngx_log_debug5(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                   "vodlms redis: done, %V fd:%d, %ui of %ui replies, %s",
                   &pool->conf->name,
                   batch->conn ? batch->conn->connection->fd : -1,
                   batch->nreplies, batch->ncmds,
                   status == NGX_VODLMS_REDIS_OK ? "ok"
                   : (status == NGX_VODLMS_REDIS_TIMEOUT ? "timeout"
                                                         : "error"));

    ngx_vodlms_metrics_backend(NGX_VODLMS_BACKEND_REDIS,
                               ngx_current_msec - batch->started,
                               status == NGX_VODLMS_REDIS_OK);

    if (batch->timer.timer_set) {
        ngx_del_timer(&batch->timer);
    }

    if (batch->cleanup) {
        batch->cleanup->handler = NULL;
        batch->cleanup = NULL;
    }

    if (!batch->detached && !pool->exiting) {
        batch->on_done(batch->data, status, reason);
    }
}


static void
ngx_vodlms_redis_batch_timeout(ngx_event_t *ev)
{
    ngx_vodlms_redis_batch_t  *batch = ev->data;

    u_char  buf[NGX_VODLMS_REDIS_REASON_LEN];

    ngx_vodlms_redis_pool_t  *pool = batch->pool;

    if (batch->waiting) {
        /* no connection has it: only the batch ends */
        ngx_queue_remove(&batch->wait);
        batch->waiting = 0;

        ngx_snprintf(buf, sizeof(buf) - 1, "redis %V: no address after "
                     "%M ms (%s)%Z", &pool->conf->name, pool->conf->timeout,
                     pool->target_state == NGX_VODLMS_REDIS_TARGET_DISCOVERING
                     ? "still asking" : pool->reason);

        ngx_vodlms_redis_batch_finish(batch, NGX_VODLMS_REDIS_TIMEOUT,
                                      (char *) buf);
        ngx_vodlms_redis_batch_free(batch);
        return;
    }

    ngx_snprintf(buf, sizeof(buf) - 1, "read timed out after %M ms%Z",
                 pool->conf->timeout);

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                   "vodlms redis: timeout, %V fd:%d, after %M ms",
                   &pool->conf->name, batch->conn->connection->fd,
                   pool->conf->timeout);

    /* replies come in order: the connection is unusable now */
    ngx_vodlms_redis_fail(batch->conn, NGX_VODLMS_REDIS_TIMEOUT,
                          (char *) buf);
}


static void
ngx_vodlms_redis_batch_detach(void *data)
{
    ngx_vodlms_redis_batch_t  *batch = data;

    batch->detached = 1;
    batch->cleanup = NULL;

    if (batch->waiting) {
        /* nothing was sent: the batch ends with its owner */
        ngx_queue_remove(&batch->wait);
        batch->waiting = 0;

        if (batch->timer.timer_set) {
            ngx_del_timer(&batch->timer);
        }

        ngx_log_debug1(NGX_LOG_DEBUG_EVENT, batch->pool->log, 0,
                       "vodlms redis: detach, %V: the caller is gone while "
                       "waiting", &batch->pool->conf->name);

        ngx_vodlms_redis_batch_free(batch);
        return;
    }

    /* the owner is gone; the batch itself lives until hiredis is done */

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, batch->pool->log, 0,
                   "vodlms redis: detach, %V fd:%d: the caller is gone, "
                   "%ui replies still to come",
                   &batch->pool->conf->name,
                   batch->conn->connection->fd,
                   batch->ncmds - batch->nreplies);

    /*
     * The timer stays armed (its log is the cycle's): a silent server must
     * still cost this connection its life, not park it forever.
     */
}
