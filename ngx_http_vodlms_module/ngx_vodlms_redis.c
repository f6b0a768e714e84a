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
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_vodlms_redis.h"
#include "ngx_vodlms_backoff.h"
#include "ngx_vodlms_metrics.h"


#define NGX_VODLMS_REDIS_DEFAULT_PORT     6379
#define NGX_VODLMS_REDIS_REASON_LEN       160


typedef struct ngx_vodlms_redis_conn_s  ngx_vodlms_redis_conn_t;


struct ngx_vodlms_redis_pool_s {
    ngx_vodlms_redis_conf_t    *conf;
    ngx_log_t                  *log;
    ngx_queue_t                 conns;        /* usable connections */
    ngx_uint_t                  nconns;
    ngx_vodlms_backoff_t        backoff;
    char                        reason[NGX_VODLMS_REDIS_REASON_LEN];
    unsigned                    exiting:1;
};


struct ngx_vodlms_redis_conn_s {
    ngx_queue_t                 queue;
    ngx_vodlms_redis_pool_t    *pool;
    redisAsyncContext          *ac;
    ngx_connection_t           *connection;
    ngx_uint_t                  pending;      /* user replies outstanding */
    ngx_uint_t                  setup;        /* AUTH/SELECT outstanding */
    ngx_uint_t                  setup_seen;   /* AUTH/SELECT answered */
    ngx_vodlms_redis_status_e   fail_status;
    char                        reason[NGX_VODLMS_REDIS_REASON_LEN];
    unsigned                    connected:1;
    unsigned                    ready:1;
    unsigned                    failed:1;
};


typedef struct {
    ngx_vodlms_redis_conn_t    *conn;
    ngx_uint_t                  ncmds;
    ngx_uint_t                  nreplies;
    ngx_vodlms_redis_reply_pt   on_reply;
    ngx_vodlms_redis_done_pt    on_done;
    void                       *data;
    ngx_event_t                 timer;
    ngx_pool_cleanup_t         *cleanup;
    ngx_msec_t                  started;      /* for the latency metric */
    unsigned                    done:1;
    unsigned                    detached:1;
    unsigned                    short_queued:1;
} ngx_vodlms_redis_batch_t;


static ngx_vodlms_redis_conn_t *ngx_vodlms_redis_connect(
    ngx_vodlms_redis_pool_t *pool);
static void ngx_vodlms_redis_mark_failed(ngx_vodlms_redis_conn_t *conn,
    ngx_vodlms_redis_status_e status, const char *reason);
static void ngx_vodlms_redis_fail(ngx_vodlms_redis_conn_t *conn,
    ngx_vodlms_redis_status_e status, const char *reason);
static void ngx_vodlms_redis_set_ready(ngx_vodlms_redis_conn_t *conn);

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

static void ngx_vodlms_redis_batch_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_vodlms_redis_batch_finish(ngx_vodlms_redis_batch_t *batch,
    ngx_vodlms_redis_status_e status, const char *reason);
static void ngx_vodlms_redis_batch_timeout(ngx_event_t *ev);
static void ngx_vodlms_redis_batch_detach(void *data);


/* configuration */

char *
ngx_vodlms_redis_parse(ngx_conf_t *cf, ngx_vodlms_redis_conf_t **rcfp)
{
    u_char                   *p;
    size_t                    len;
    ngx_int_t                 n;
    ngx_str_t                *value, s;
    ngx_uint_t                i;
    ngx_url_t                 u;
    ngx_vodlms_redis_conf_t  *rcf;
    struct sockaddr_un       *saun;

    rcf = ngx_pcalloc(cf->pool, sizeof(ngx_vodlms_redis_conf_t));
    if (rcf == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    rcf->name = value[1];
    rcf->pool_size = 16;
    rcf->connect_timeout = 1000;
    rcf->timeout = 1000;

    ngx_memzero(&u, sizeof(ngx_url_t));
    u.url = value[1];
    u.default_port = NGX_VODLMS_REDIS_DEFAULT_PORT;

    /* names are resolved here, once: hiredis would resolve them blocking */
    if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid redis address \"%V\"%s%s",
                           &value[1], u.err ? ": " : "",
                           u.err ? u.err : "");
        return NGX_CONF_ERROR;
    }

    if (u.naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "redis address \"%V\" resolves to nothing",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    if (u.family == AF_UNIX) {
        saun = (struct sockaddr_un *) u.addrs[0].sockaddr;
        len = ngx_strlen(saun->sun_path);
        rcf->unix_path.data = ngx_pnalloc(cf->pool, len + 1);
        if (rcf->unix_path.data == NULL) {
            return NGX_CONF_ERROR;
        }
        ngx_memcpy(rcf->unix_path.data, saun->sun_path, len + 1);
        rcf->unix_path.len = len;

    } else {
        p = ngx_pnalloc(cf->pool, NGX_SOCKADDR_STRLEN + 1);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        len = ngx_sock_ntop(u.addrs[0].sockaddr, u.addrs[0].socklen, p,
                            NGX_SOCKADDR_STRLEN, 0);
        p[len] = '\0';

        /* ngx_sock_ntop brackets IPv6 addresses; hiredis wants them bare */
        if (len > 2 && p[0] == '[') {
            p++;
            len -= 2;
            p[len] = '\0';
        }

        rcf->host.data = p;
        rcf->host.len = len;
        rcf->port = ngx_inet_get_port(u.addrs[0].sockaddr);
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "db=", 3) == 0) {
            n = ngx_atoi(value[i].data + 3, value[i].len - 3);
            if (n == NGX_ERROR || n > 1024) {
                goto invalid;
            }
            rcf->db = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "user=", 5) == 0) {
            rcf->user.data = value[i].data + 5;
            rcf->user.len = value[i].len - 5;
            if (rcf->user.len == 0) {
                goto invalid;
            }
            continue;
        }

        if (ngx_strncmp(value[i].data, "password=", 9) == 0) {
            rcf->password.data = value[i].data + 9;
            rcf->password.len = value[i].len - 9;
            if (rcf->password.len == 0) {
                goto invalid;
            }
            continue;
        }

        if (ngx_strncmp(value[i].data, "pool_size=", 10) == 0) {
            n = ngx_atoi(value[i].data + 10, value[i].len - 10);
            if (n == NGX_ERROR || n == 0) {
                goto invalid;
            }
            rcf->pool_size = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "connect_timeout=", 16) == 0) {
            s.data = value[i].data + 16;
            s.len = value[i].len - 16;
            rcf->connect_timeout = ngx_parse_time(&s, 0);
            if (rcf->connect_timeout == (ngx_msec_t) NGX_ERROR
                || rcf->connect_timeout == 0)
            {
                goto invalid;
            }
            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;
            rcf->timeout = ngx_parse_time(&s, 0);
            if (rcf->timeout == (ngx_msec_t) NGX_ERROR || rcf->timeout == 0) {
                goto invalid;
            }
            continue;
        }

        goto invalid;
    }

    if (rcf->user.len && rcf->password.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "redis \"user=\" needs \"password=\" as well");
        return NGX_CONF_ERROR;
    }

    *rcfp = rcf;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);

    return NGX_CONF_ERROR;
}


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

    return pool;
}


void
ngx_vodlms_redis_pool_destroy(ngx_vodlms_redis_pool_t *pool)
{
    ngx_queue_t              *q;
    ngx_vodlms_redis_conn_t  *conn;

    pool->exiting = 1;

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                   "vodlms redis: destroy, %V: %ui open",
                   &pool->conf->name, pool->nconns);

    while (!ngx_queue_empty(&pool->conns)) {
        q = ngx_queue_head(&pool->conns);
        conn = ngx_queue_data(q, ngx_vodlms_redis_conn_t, queue);
        ngx_vodlms_redis_fail(conn, NGX_VODLMS_REDIS_ERROR,
                              "worker is exiting");
    }
}


ngx_int_t
ngx_vodlms_redis_send(ngx_vodlms_redis_pool_t *pool, ngx_pool_t *owner,
    ngx_log_t *log, ngx_vodlms_redis_cmd_t *cmds, ngx_uint_t ncmds,
    ngx_vodlms_redis_reply_pt on_reply, ngx_vodlms_redis_done_pt on_done,
    void *data, ngx_vodlms_redis_status_e *status, const char **reason)
{
    ngx_uint_t                 i;
    ngx_queue_t               *q;
    ngx_pool_cleanup_t        *cln;
    ngx_vodlms_redis_conn_t   *conn, *best;
    ngx_vodlms_redis_batch_t  *batch;

    /* the least busy connection; a new one while all are busy */

    best = NULL;

    for (q = ngx_queue_head(&pool->conns);
         q != ngx_queue_sentinel(&pool->conns);
         q = ngx_queue_next(q))
    {
        conn = ngx_queue_data(q, ngx_vodlms_redis_conn_t, queue);

        if (best == NULL || conn->pending < best->pending) {
            best = conn;
        }
    }

    if (best == NULL
        || (best->pending > 0 && pool->nconns < pool->conf->pool_size))
    {
        conn = ngx_vodlms_redis_connect(pool);

        if (conn != NULL) {
            best = conn;

        } else if (best == NULL) {
            *status = ngx_vodlms_backoff_left(&pool->backoff)
                      ? NGX_VODLMS_REDIS_DOWN : NGX_VODLMS_REDIS_ERROR;
            *reason = pool->reason;
            return NGX_DECLINED;
        }
    }

    cln = ngx_pool_cleanup_add(owner, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    batch = ngx_calloc(sizeof(ngx_vodlms_redis_batch_t), log);
    if (batch == NULL) {
        return NGX_ERROR;
    }

    batch->conn = best;
    batch->ncmds = ncmds;
    batch->on_reply = on_reply;
    batch->on_done = on_done;
    batch->data = data;

    batch->timer.handler = ngx_vodlms_redis_batch_timeout;
    batch->timer.data = batch;
    batch->timer.log = pool->log;

    for (i = 0; i < ncmds; i++) {
        if (redisAsyncCommandArgv(best->ac, ngx_vodlms_redis_batch_reply,
                                  batch, cmds[i].argc, cmds[i].argv,
                                  cmds[i].argvlen)
            != REDIS_OK)
        {
            break;
        }
    }

    if (i == 0) {
        ngx_free(batch);
        *status = NGX_VODLMS_REDIS_ERROR;
        *reason = "could not queue the command";
        return NGX_DECLINED;
    }

    if (i < ncmds) {
        /* only part of the pipeline went out: wait for it, then fail */
        batch->ncmds = i;
        batch->short_queued = 1;
    }

    best->pending += batch->ncmds;

    /* the caller's log: its line names the request */
    ngx_log_debug4(NGX_LOG_DEBUG_EVENT, log, 0,
                   "vodlms redis: execute, %V fd:%d, %ui commands, "
                   "%ui pending", &pool->conf->name, best->connection->fd,
                   batch->ncmds, best->pending);

    cln->handler = ngx_vodlms_redis_batch_detach;
    cln->data = batch;
    batch->cleanup = cln;

    batch->started = ngx_current_msec;
    ngx_add_timer(&batch->timer, pool->conf->timeout);

    return NGX_OK;
}


static ngx_vodlms_redis_conn_t *
ngx_vodlms_redis_connect(ngx_vodlms_redis_pool_t *pool)
{
    int                        argc;
    size_t                     argvlen[3];
    const char                *argv[3];
    ngx_msec_t                 left;
    redisAsyncContext         *ac;
    ngx_connection_t          *c;
    ngx_vodlms_redis_conf_t   *conf;
    ngx_vodlms_redis_conn_t   *conn;

    conf = pool->conf;

    left = ngx_vodlms_backoff_left(&pool->backoff);

    if (left) {
        ngx_log_debug2(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                       "vodlms redis: down, %V: no connect for %M ms more",
                       &conf->name, left);

        ngx_snprintf((u_char *) pool->reason, sizeof(pool->reason) - 1,
                     "redis %V is down (%ui failed attempts), next try "
                     "in %M ms%Z", &conf->name, pool->backoff.failures, left);
        return NULL;
    }

    if (conf->unix_path.len) {
        ac = redisAsyncConnectUnix((char *) conf->unix_path.data);

    } else {
        ac = redisAsyncConnect((char *) conf->host.data, conf->port);
    }

    if (ac == NULL) {
        ngx_snprintf((u_char *) pool->reason, sizeof(pool->reason) - 1,
                     "redis %V: out of memory%Z", &conf->name);
        return NULL;
    }

    if (ac->err) {
        /* e.g. a refused connection on loopback is known at once */
        ngx_snprintf((u_char *) pool->reason, sizeof(pool->reason) - 1,
                     "redis %V connect failed: %s%Z", &conf->name,
                     ac->errstr);
        redisAsyncFree(ac);
        ngx_vodlms_backoff_failed(&pool->backoff, pool->log, "redis",
                                  &pool->conf->name);
        return NULL;
    }

    conn = ngx_calloc(sizeof(ngx_vodlms_redis_conn_t), pool->log);
    if (conn == NULL) {
        redisAsyncFree(ac);
        ngx_snprintf((u_char *) pool->reason, sizeof(pool->reason) - 1,
                     "redis %V: out of memory%Z", &conf->name);
        return NULL;
    }

    c = ngx_get_connection(ac->c.fd, pool->log);
    if (c == NULL) {
        ngx_free(conn);
        redisAsyncFree(ac);
        ngx_snprintf((u_char *) pool->reason, sizeof(pool->reason) - 1,
                     "redis %V: no free nginx connection "
                     "(worker_connections)%Z", &conf->name);
        return NULL;
    }

    c->data = conn;
    c->read->handler = ngx_vodlms_redis_read_handler;
    c->write->handler = ngx_vodlms_redis_write_handler;
    c->read->log = pool->log;
    c->write->log = pool->log;

    conn->pool = pool;
    conn->ac = ac;
    conn->connection = c;

    ac->data = conn;
    ac->ev.data = conn;
    ac->ev.addRead = ngx_vodlms_redis_add_read;
    ac->ev.delRead = ngx_vodlms_redis_del_read;
    ac->ev.addWrite = ngx_vodlms_redis_add_write;
    ac->ev.delWrite = ngx_vodlms_redis_del_write;
    ac->ev.cleanup = ngx_vodlms_redis_cleanup;

    redisAsyncSetConnectCallback(ac, ngx_vodlms_redis_on_connect);

    ngx_queue_insert_tail(&pool->conns, &conn->queue);
    pool->nconns++;

    /* counted out in ngx_vodlms_redis_cleanup() */
    ngx_vodlms_metrics_connection(NGX_VODLMS_BACKEND_REDIS, 1);

    /* the connect completes when the socket becomes writable */
    ngx_vodlms_redis_add_write(conn);
    ngx_add_timer(c->write, conf->connect_timeout);

    /* AUTH and SELECT go first in the pipeline */

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
            conn->setup++;
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
            conn->setup++;
        }
    }

    ngx_log_debug5(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                   "vodlms redis: connect, %V fd:%d, %ui of pool_size=%ui, "
                   "%ui setup commands (AUTH, SELECT)",
                   &conf->name, c->fd, pool->nconns, conf->pool_size,
                   conn->setup);

    return conn;
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

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, conn->pool->log, 0,
                   "vodlms redis: connected, %V fd:%d",
                   &conn->pool->conf->name, conn->connection->fd);

    if (conn->connection->write->timer_set) {
        ngx_del_timer(conn->connection->write);
    }

    if (conn->setup == 0) {
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

    conn->setup--;
    conn->setup_seen++;

    if (reply == NULL || conn->failed) {
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        /* AUTH, when configured, is always the first in the pipeline */
        what = (conn->pool->conf->password.len && conn->setup_seen == 1)
               ? "AUTH" : "SELECT";

        /* never log the password; the server's words are safe */
        ngx_snprintf(buf, sizeof(buf) - 1, "%s rejected: %*s%Z", what,
                     ngx_min((size_t) reply->len, (size_t) 100), reply->str);
        ngx_vodlms_redis_fail(conn, NGX_VODLMS_REDIS_ERROR, (char *) buf);
        return;
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

    ngx_snprintf((u_char *) conn->reason, sizeof(conn->reason) - 1,
                 "redis %V %s%s%Z", &pool->conf->name,
                 conn->connected ? "" : "connect failed: ", reason);

    ngx_log_debug5(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                   "vodlms redis: close, %V fd:%d, %s, %ui pending: %s",
                   &pool->conf->name, conn->connection->fd,
                   conn->ready ? "ready"
                               : (conn->connected ? "setup" : "connecting"),
                   conn->pending, reason);

    ngx_queue_remove(&conn->queue);
    pool->nconns--;

    if (!conn->ready) {
        ngx_vodlms_backoff_failed(&pool->backoff, pool->log, "redis",
                                  &pool->conf->name);
        ngx_cpystrn((u_char *) pool->reason, (u_char *) conn->reason,
                    sizeof(pool->reason));
    }

    if (conn->pending == 0 && !pool->exiting) {
        ngx_log_error(NGX_LOG_INFO, pool->log, 0,
                      "vodlms: %s", conn->reason);
    }
}


static void
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

static void
ngx_vodlms_redis_batch_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply                *reply = r;
    ngx_vodlms_redis_conn_t   *conn = ac->data;
    ngx_vodlms_redis_batch_t  *batch = privdata;

    batch->nreplies++;
    conn->pending--;

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
        ngx_free(batch);
    }

    /* conn lives on: hiredis frees it only after its callbacks return */

    if (conn->pending == 0 && !conn->failed) {
        ngx_log_debug2(NGX_LOG_DEBUG_EVENT, conn->pool->log, 0,
                       "vodlms redis: idle, %V fd:%d",
                       &conn->pool->conf->name, conn->connection->fd);
    }
}


static void
ngx_vodlms_redis_batch_finish(ngx_vodlms_redis_batch_t *batch,
    ngx_vodlms_redis_status_e status, const char *reason)
{
    batch->done = 1;

    ngx_log_debug5(NGX_LOG_DEBUG_EVENT, batch->conn->pool->log, 0,
                   "vodlms redis: done, %V fd:%d, %ui of %ui replies, %s",
                   &batch->conn->pool->conf->name,
                   batch->conn->connection->fd, batch->nreplies,
                   batch->ncmds,
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

    if (!batch->detached && !batch->conn->pool->exiting) {
        batch->on_done(batch->data, status, reason);
    }
}


static void
ngx_vodlms_redis_batch_timeout(ngx_event_t *ev)
{
    ngx_vodlms_redis_batch_t  *batch = ev->data;

    u_char  buf[64];

    ngx_snprintf(buf, sizeof(buf) - 1, "read timed out after %M ms%Z",
                 batch->conn->pool->conf->timeout);

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, batch->conn->pool->log, 0,
                   "vodlms redis: timeout, %V fd:%d, after %M ms",
                   &batch->conn->pool->conf->name,
                   batch->conn->connection->fd,
                   batch->conn->pool->conf->timeout);

    /* replies come in order: the connection is unusable now */
    ngx_vodlms_redis_fail(batch->conn, NGX_VODLMS_REDIS_TIMEOUT,
                          (char *) buf);
}


static void
ngx_vodlms_redis_batch_detach(void *data)
{
    ngx_vodlms_redis_batch_t  *batch = data;

    /* the owner is gone; the batch itself lives until hiredis is done */

    batch->detached = 1;
    batch->cleanup = NULL;

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, batch->conn->pool->log, 0,
                   "vodlms redis: detach, %V fd:%d: the caller is gone, "
                   "%ui replies still to come",
                   &batch->conn->pool->conf->name,
                   batch->conn->connection->fd,
                   batch->ncmds - batch->nreplies);

    /*
     * The timer stays armed (its log is the cycle's): a silent server must
     * still cost this connection its life, not park it forever.
     */
}


/*
 * The configured address, as a socket address.  Sentinel discovery and
 * run-time DNS will replace this with the master's current address
 * (NGX_AGAIN while it is being asked for).
 */

ngx_int_t
ngx_vodlms_redis_current_address(ngx_vodlms_redis_pool_t *pool,
    ngx_sockaddr_t *sa, socklen_t *socklen)
{
    in_addr_t                 inaddr;
    ngx_vodlms_redis_conf_t  *conf;

    conf = pool->conf;

    ngx_memzero(sa, sizeof(ngx_sockaddr_t));

#if (NGX_HAVE_UNIX_DOMAIN)

    if (conf->unix_path.len) {
        if (conf->unix_path.len >= sizeof(sa->sockaddr_un.sun_path)) {
            return NGX_ERROR;
        }

        sa->sockaddr_un.sun_family = AF_UNIX;
        ngx_memcpy(sa->sockaddr_un.sun_path, conf->unix_path.data,
                   conf->unix_path.len);
        *socklen = sizeof(struct sockaddr_un);

        return NGX_OK;
    }

#endif

    inaddr = ngx_inet_addr(conf->host.data, conf->host.len);

    if (inaddr != INADDR_NONE) {
        sa->sockaddr_in.sin_family = AF_INET;
        sa->sockaddr_in.sin_addr.s_addr = inaddr;
        sa->sockaddr_in.sin_port = htons(conf->port);
        *socklen = sizeof(struct sockaddr_in);

        return NGX_OK;
    }

#if (NGX_HAVE_INET6)

    if (ngx_inet6_addr(conf->host.data, conf->host.len,
                       sa->sockaddr_in6.sin6_addr.s6_addr)
        == NGX_OK)
    {
        sa->sockaddr_in6.sin6_family = AF_INET6;
        sa->sockaddr_in6.sin6_port = htons(conf->port);
        *socklen = sizeof(struct sockaddr_in6);

        return NGX_OK;
    }

#endif

    return NGX_ERROR;
}
