/*
 * Where the Redis server is, found at run time without blocking a worker:
 *
 *   - RESOLVE: vodlms_redis names a host with "resolve": the name is asked
 *     through nginx's resolver (ngx_vodlms_resolve.c) once the last
 *     answer's TTL has run out (the next pick(), open connections serving
 *     meanwhile), so a name that moves (ElastiCache, a DNS failover) is
 *     followed without a reload.
 *
 *   - SENTINEL: vodlms_redis sentinel:NAME, vodlms_redis_sentinel lists the
 *     sentinels.  As the Sentinel client guidelines say: the sentinels are
 *     asked in order (SENTINEL get-master-addr-by-name), the first that
 *     answers goes to the front of the list, each new connection to the
 *     master checks ROLE (ngx_vodlms_redis.c), and a lost connection, a
 *     refused or timed-out connect, or a READONLY answer make the pool ask
 *     again.  Every sentinel is subscribed to, +switch-master, so that a
 *     failover moves the pool at once: the first announcement wins (the
 *     leader's comes at once, the others' up to a hello period later).
 *
 * One round at a time per worker; batches that need a connection wait for
 * it in pool->waiting (ngx_vodlms_redis.c).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_vodlms_redis_internal.h"
#include "vodlms_core.h"


#define NGX_VODLMS_REDIS_RESOLVING_MASTER    0
#define NGX_VODLMS_REDIS_RESOLVING_SENTINEL  1


static void ngx_vodlms_redis_ask_next(ngx_vodlms_redis_pool_t *pool);
static ngx_int_t ngx_vodlms_redis_ask_addrs(ngx_vodlms_redis_pool_t *pool);
static ngx_int_t ngx_vodlms_redis_ask(ngx_vodlms_redis_pool_t *pool,
    struct sockaddr *sa, socklen_t socklen);
static void ngx_vodlms_redis_resolved(ngx_vodlms_resolve_t *rs,
    ngx_addr_t *addrs, ngx_uint_t naddrs, time_t valid, const char *err);
static ngx_addr_t *ngx_vodlms_redis_choose(ngx_vodlms_redis_pool_t *pool,
    ngx_addr_t *addrs, ngx_uint_t naddrs);
static void ngx_vodlms_redis_master_at(ngx_vodlms_redis_pool_t *pool,
    u_char *host, size_t len, ngx_int_t port, const char *who);
static void ngx_vodlms_redis_done(ngx_vodlms_redis_pool_t *pool,
    ngx_int_t rc);
static void ngx_vodlms_redis_sentinel_auth(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_vodlms_redis_sentinel_master(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_vodlms_redis_switch_master(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_vodlms_redis_resubscribe(ngx_event_t *ev);
static ngx_uint_t ngx_vodlms_redis_known(ngx_vodlms_redis_pool_t *pool,
    u_char *host, size_t len, ngx_int_t port);
static void ngx_vodlms_redis_subscribe_all(ngx_vodlms_redis_pool_t *pool);
static ngx_int_t ngx_vodlms_redis_subscribe(ngx_vodlms_redis_pool_t *pool,
    ngx_uint_t i, struct sockaddr *sa, socklen_t socklen);
static void ngx_vodlms_redis_sub_resolved(ngx_vodlms_resolve_t *rs,
    ngx_addr_t *addrs, ngx_uint_t naddrs, time_t valid, const char *err);


ngx_int_t
ngx_vodlms_redis_discover_init(ngx_cycle_t *cycle,
    ngx_vodlms_redis_pool_t *pool)
{
    ngx_uint_t                     i;
    ngx_vodlms_redis_sentinels_t  *scf;

    pool->rs.resolver = pool->conf->resolver;

    /*
     * No longer than a sentinel is given (connect_timeout + timeout): a
     * silent DNS server must not hold a round open for resolver_timeout
     * (30 s by default) while every request waits for it.
     */
    pool->rs.timeout = ngx_min(pool->conf->resolver_timeout,
                               pool->conf->connect_timeout
                               + pool->conf->timeout);
    pool->rs.log = cycle->log;
    pool->rs.handler = ngx_vodlms_redis_resolved;
    pool->rs.data = pool;

    pool->resubscribe.handler = ngx_vodlms_redis_resubscribe;
    pool->resubscribe.data = pool;
    pool->resubscribe.log = cycle->log;

    /* a worker that shuts down gracefully does not wait for it */
    pool->resubscribe.cancelable = 1;

    scf = pool->conf->sentinels;

    if (scf == NULL) {
        return NGX_OK;
    }

    pool->order = ngx_palloc(cycle->pool,
                             scf->servers.nelts * sizeof(ngx_uint_t));
    pool->subs = ngx_pcalloc(cycle->pool, scf->servers.nelts
                                          * sizeof(ngx_vodlms_redis_conn_t *));
    pool->subs_rs = ngx_pcalloc(cycle->pool, scf->servers.nelts
                                             * sizeof(ngx_vodlms_resolve_t));

    if (pool->order == NULL || pool->subs == NULL || pool->subs_rs == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < scf->servers.nelts; i++) {
        pool->order[i] = i;

        pool->subs_rs[i] = pool->rs;
        pool->subs_rs[i].handler = ngx_vodlms_redis_sub_resolved;
    }

    pool->named_by = -1;

    return NGX_OK;
}


/* starts a round unless one is under way */

void
ngx_vodlms_redis_discover(ngx_vodlms_redis_pool_t *pool)
{
    ngx_vodlms_redis_conf_t  *conf = pool->conf;

    if (pool->target_state == NGX_VODLMS_REDIS_TARGET_DISCOVERING
        || pool->exiting || conf->mode == NGX_VODLMS_REDIS_FIXED)
    {
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                   "vodlms redis: discover, %V", &conf->name);

    pool->target_state = NGX_VODLMS_REDIS_TARGET_DISCOVERING;
    pool->round_failed = 0;

    if (conf->mode == NGX_VODLMS_REDIS_RESOLVE) {
        pool->resolving = NGX_VODLMS_REDIS_RESOLVING_MASTER;

        if (ngx_vodlms_resolve(&pool->rs, &conf->server.host,
                               conf->server.port)
            != NGX_OK)
        {
            ngx_snprintf((u_char *) pool->reason, sizeof(pool->reason) - 1,
                         "redis %V: could not start resolving it%Z",
                         &conf->name);
            ngx_vodlms_redis_done(pool, NGX_ERROR);
        }

        return;
    }

    pool->tried = 0;
    ngx_snprintf((u_char *) pool->reason, sizeof(pool->reason) - 1,
                 "redis %V: no sentinel was asked%Z", &conf->name);

    ngx_vodlms_redis_ask_next(pool);
}


static void
ngx_vodlms_redis_done(ngx_vodlms_redis_pool_t *pool, ngx_int_t rc)
{
    u_char  reason[NGX_VODLMS_REDIS_REASON_LEN];

    if (rc != NGX_OK && pool->conf->mode == NGX_VODLMS_REDIS_SENTINEL) {
        ngx_snprintf(reason, sizeof(reason) - 1, "%s%Z", pool->reason);
        ngx_snprintf((u_char *) pool->reason, sizeof(pool->reason) - 1,
                     "redis %V: no sentinel named the master (last: %s)%Z",
                     &pool->conf->name, reason);
    }

    ngx_vodlms_redis_discovered(pool, rc);

    if (pool->conf->mode == NGX_VODLMS_REDIS_SENTINEL) {
        ngx_vodlms_redis_subscribe_all(pool);
    }
}


/* the next sentinel in order; the round fails when none is left */

static void
ngx_vodlms_redis_ask_next(ngx_vodlms_redis_pool_t *pool)
{
    ngx_vodlms_redis_server_t     *s;
    ngx_vodlms_redis_sentinels_t  *scf = pool->conf->sentinels;

    while (pool->tried < scf->servers.nelts) {

        s = (ngx_vodlms_redis_server_t *) scf->servers.elts
            + pool->order[pool->tried];

        pool->asking_naddrs = 0;

        if (s->addr.sockaddr) {
            if (ngx_vodlms_redis_ask(pool, s->addr.sockaddr, s->addr.socklen)
                == NGX_OK)
            {
                return;
            }

            ngx_log_error(NGX_LOG_INFO, pool->log, 0,
                          "vodlms: %s, asking the next sentinel",
                          pool->reason);

        } else {
            /* the handler asks it, or moves on */
            pool->resolving = NGX_VODLMS_REDIS_RESOLVING_SENTINEL;

            if (ngx_vodlms_resolve(&pool->rs, &s->host, s->port) == NGX_OK) {
                return;
            }

            ngx_snprintf((u_char *) pool->reason, sizeof(pool->reason) - 1,
                         "sentinel %V: could not start resolving it%Z",
                         &s->name);
        }

        pool->tried++;
    }

    ngx_vodlms_redis_done(pool, NGX_ERROR);
}


static ngx_int_t
ngx_vodlms_redis_ask(ngx_vodlms_redis_pool_t *pool, struct sockaddr *sa,
    socklen_t socklen)
{
    int                            argc;
    size_t                         argvlen[3];
    ngx_uint_t                     refused;
    const char                    *argv[3];
    ngx_vodlms_redis_conn_t       *conn;
    ngx_vodlms_redis_sentinels_t  *scf = pool->conf->sentinels;

    conn = ngx_vodlms_redis_open(pool, sa, socklen, 1, &refused);

    if (conn == NULL) {
        return NGX_DECLINED;
    }

    conn->index = pool->order[pool->tried];
    pool->asking = conn;

    /* the sentinel's own requirepass, not the master's */

    if (scf->password.len) {
        argc = 0;
        argv[argc] = "AUTH";
        argvlen[argc++] = 4;

        if (scf->user.len) {
            argv[argc] = (const char *) scf->user.data;
            argvlen[argc++] = scf->user.len;
        }

        argv[argc] = (const char *) scf->password.data;
        argvlen[argc++] = scf->password.len;

        redisAsyncCommandArgv(conn->ac, ngx_vodlms_redis_sentinel_auth, conn,
                              argc, argv, argvlen);
    }

    argv[0] = "SENTINEL";
    argvlen[0] = 8;
    argv[1] = "get-master-addr-by-name";
    argvlen[1] = 23;
    argv[2] = (const char *) pool->conf->master_name.data;
    argvlen[2] = pool->conf->master_name.len;

    if (redisAsyncCommandArgv(conn->ac, ngx_vodlms_redis_sentinel_master,
                              conn, 3, argv, argvlen)
        != REDIS_OK)
    {
        pool->asking = NULL;
        ngx_vodlms_redis_fail(conn, NGX_VODLMS_REDIS_ERROR,
                              "could not queue the command");
        return NGX_DECLINED;
    }

    /* connect_timeout, then timeout for the answer */
    ngx_add_timer(conn->connection->read,
                  pool->conf->connect_timeout + pool->conf->timeout);

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                   "vodlms redis: ask, sentinel %s fd:%d, master %V",
                   conn->peer, conn->connection->fd,
                   &pool->conf->master_name);

    return NGX_OK;
}


static void
ngx_vodlms_redis_sentinel_auth(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply               *reply = r;
    ngx_vodlms_redis_conn_t  *conn = privdata;

    u_char  buf[NGX_VODLMS_REDIS_REASON_LEN];

    if (reply == NULL || conn->failed || reply->type != REDIS_REPLY_ERROR) {
        return;
    }

    ngx_snprintf(buf, sizeof(buf) - 1, "AUTH rejected: %*s%Z",
                 ngx_min((size_t) reply->len, (size_t) 100), reply->str);
    ngx_vodlms_redis_fail(conn, NGX_VODLMS_REDIS_ERROR, (char *) buf);
}


static void
ngx_vodlms_redis_sentinel_master(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply               *reply = r;
    ngx_vodlms_redis_conn_t  *conn = privdata;

    u_char  buf[NGX_VODLMS_REDIS_REASON_LEN];

    ngx_int_t                 port;
    ngx_uint_t                first;
    redisReply               *host, *p;
    ngx_vodlms_redis_pool_t  *pool;

    if (reply == NULL || conn->failed) {
        return;
    }

    pool = conn->pool;

    if (conn->connection->read->timer_set) {
        ngx_del_timer(conn->connection->read);
    }

    if (reply->type == REDIS_REPLY_NIL) {
        ngx_snprintf(buf, sizeof(buf) - 1, "does not know master \"%V\"%Z",
                     &pool->conf->master_name);
        ngx_vodlms_redis_fail(conn, NGX_VODLMS_REDIS_ERROR, (char *) buf);
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_snprintf(buf, sizeof(buf) - 1, "said: %*s%Z",
                     ngx_min((size_t) reply->len, (size_t) 100), reply->str);
        ngx_vodlms_redis_fail(conn, NGX_VODLMS_REDIS_ERROR, (char *) buf);
        return;
    }

    host = (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2)
           ? reply->element[0] : NULL;
    p = host ? reply->element[1] : NULL;

    port = (p && p->type == REDIS_REPLY_STRING)
           ? ngx_atoi((u_char *) p->str, p->len) : NGX_ERROR;

    if (host == NULL || host->type != REDIS_REPLY_STRING || host->len == 0
        || host->len > NGX_SOCKADDR_STRLEN || port < 1 || port > 65535)
    {
        ngx_vodlms_redis_fail(conn, NGX_VODLMS_REDIS_ERROR,
                              "gave an answer that is not host and port");
        return;
    }

    /* the sentinel that answered is asked first from now on */

    first = pool->order[pool->tried];
    ngx_memmove(&pool->order[1], &pool->order[0],
                pool->tried * sizeof(ngx_uint_t));
    pool->order[0] = first;

    pool->asking = NULL;
    pool->named_by = first;

    ngx_log_debug4(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                   "vodlms redis: answer, sentinel %s: master %V is at %*s",
                   conn->peer, &pool->conf->master_name,
                   (size_t) host->len, host->str);

    ngx_vodlms_redis_fail(conn, NGX_VODLMS_REDIS_OK, "answered");

    ngx_vodlms_redis_master_at(pool, (u_char *) host->str, host->len, port,
                               (char *) conn->peer);
}


/*
 * A sentinel named the master: a numeric address, or a host name when
 * the sentinels announce names (resolve-hostnames), which needs the
 * resolver.
 */

static void
ngx_vodlms_redis_master_at(ngx_vodlms_redis_pool_t *pool, u_char *host,
    size_t len, ngx_int_t port, const char *who)
{
    ngx_memcpy(pool->master_host, host, len);
    pool->master_host[len] = '\0';
    pool->master_name.data = pool->master_host;
    pool->master_name.len = len;

    pool->resolving = NGX_VODLMS_REDIS_RESOLVING_MASTER;

    if (ngx_vodlms_resolve(&pool->rs, &pool->master_name, (in_port_t) port)
        != NGX_OK)
    {
        ngx_snprintf((u_char *) pool->reason, sizeof(pool->reason) - 1,
                     "sentinel %s named the master \"%V\", a host name: "
                     "add a \"resolver\" to the http block%Z", who,
                     &pool->master_name);
        ngx_vodlms_redis_done(pool, NGX_ERROR);
    }
}


static void
ngx_vodlms_redis_resolved(ngx_vodlms_resolve_t *rs, ngx_addr_t *addrs,
    ngx_uint_t naddrs, time_t valid, const char *err)
{
    ngx_uint_t                     i;
    ngx_addr_t                    *addr;
    ngx_vodlms_redis_pool_t       *pool = rs->data;
    ngx_vodlms_redis_server_t     *s;
    ngx_vodlms_redis_sentinels_t  *scf;

    if (pool->resolving == NGX_VODLMS_REDIS_RESOLVING_SENTINEL) {
        scf = pool->conf->sentinels;
        s = (ngx_vodlms_redis_server_t *) scf->servers.elts
            + pool->order[pool->tried];

        /* kept: a refused address (now or later) is followed by the next */
        for (i = 0; i < naddrs; i++) {
            ngx_memcpy(&pool->asking_sa[i], addrs[i].sockaddr,
                       addrs[i].socklen);
            pool->asking_socklen[i] = addrs[i].socklen;
        }

        pool->asking_naddrs = naddrs;
        pool->asking_next = 0;

        if (ngx_vodlms_redis_ask_addrs(pool) == NGX_OK) {
            return;
        }

        if (naddrs == 0) {
            ngx_snprintf((u_char *) pool->reason, sizeof(pool->reason) - 1,
                         "sentinel %V: %s%Z", &s->name, err);
        }

        pool->tried++;
        ngx_vodlms_redis_ask_next(pool);
        return;
    }

    /* the master (or the server) */

    if (naddrs == 0) {
        ngx_snprintf((u_char *) pool->reason, sizeof(pool->reason) - 1,
                     "redis %V: %s%Z", &pool->conf->name, err);
        ngx_vodlms_redis_done(pool, NGX_ERROR);
        return;
    }

    addr = ngx_vodlms_redis_choose(pool, addrs, naddrs);

    ngx_vodlms_redis_set_target(pool, addr->sockaddr, addr->socklen, valid);
    ngx_vodlms_redis_done(pool, NGX_OK);
}


/*
 * Which of a name's addresses: the current one while the answer still has
 * it (nginx's resolver rotates a cached answer on every ask); after a
 * failed connect to it, the one after it; else the first.
 */

static ngx_addr_t *
ngx_vodlms_redis_choose(ngx_vodlms_redis_pool_t *pool, ngx_addr_t *addrs,
    ngx_uint_t naddrs)
{
    ngx_uint_t  i;

    if (pool->target_gen == 0) {
        return &addrs[0];
    }

    for (i = 0; i < naddrs; i++) {
        if (ngx_cmp_sockaddr(addrs[i].sockaddr, addrs[i].socklen,
                             pool->target.sockaddr, pool->target.socklen, 1)
            == NGX_OK)
        {
            return pool->target_failed ? &addrs[(i + 1) % naddrs]
                                       : &addrs[i];
        }
    }

    return &addrs[0];
}


/* the sentinel's name's next address, while one is left */

static ngx_int_t
ngx_vodlms_redis_ask_addrs(ngx_vodlms_redis_pool_t *pool)
{
    ngx_uint_t  i;

    while (pool->asking_next < pool->asking_naddrs) {
        i = pool->asking_next++;

        if (ngx_vodlms_redis_ask(pool, &pool->asking_sa[i].sockaddr,
                                 pool->asking_socklen[i])
            == NGX_OK)
        {
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


/* ["message", "+switch-master", "<name> <old ip> <old port> <ip> <port>"] */

static void
ngx_vodlms_redis_switch_master(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply               *reply = r;
    ngx_vodlms_redis_conn_t  *conn = privdata;

    redisReply               *kind, *chan, *msg;
    vodlms_switch_master_t    sm;
    ngx_vodlms_redis_pool_t  *pool;

    if (reply == NULL || conn->failed) {
        return;
    }

    pool = conn->pool;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) {
        return;
    }

    kind = reply->element[0];
    chan = reply->element[1];
    msg = reply->element[2];

    if (kind->type != REDIS_REPLY_STRING || kind->len != 7
        || ngx_strncmp(kind->str, "message", 7) != 0
        || chan->type != REDIS_REPLY_STRING || chan->len != 14
        || ngx_strncmp(chan->str, "+switch-master", 14) != 0
        || msg->type != REDIS_REPLY_STRING)
    {
        return;
    }

    /* another master watched by the same sentinels, or not such a message */
    if (vodlms_switch_master_parse(msg->str, msg->len,
                                   (char *) pool->conf->master_name.data,
                                   pool->conf->master_name.len, &sm)
        != VODLMS_OK
        || sm.host.len > NGX_SOCKADDR_STRLEN)
    {
        return;
    }

    if (ngx_vodlms_redis_known(pool, (u_char *) sm.host.data, sm.host.len,
                               sm.port))
    {
        ngx_log_debug1(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                       "vodlms redis: sentinel %s announced +switch-master "
                       "to where the pool is already", conn->peer);
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, pool->log, 0,
                  "vodlms redis: sentinel %s announced +switch-master: "
                  "\"%V\" moved from %*s:%*s to %*s:%ui", conn->peer,
                  &pool->conf->master_name, sm.old_host.len,
                  sm.old_host.data, sm.old_port.len, sm.old_port.data,
                  sm.host.len, sm.host.data, (ngx_uint_t) sm.port);

    /* a round under way would only tell the same, or older news */
    ngx_vodlms_redis_discover_abort(pool);

    /* the new master is up: connect to it at once */
    if (ngx_vodlms_backoff_ok(&pool->backoff)) {
        ngx_log_debug0(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                       "vodlms redis: back-off cleared by the announcement");
    }

    pool->target_state = NGX_VODLMS_REDIS_TARGET_DISCOVERING;
    pool->round_failed = 0;
    pool->named_by = conn->index;

    ngx_vodlms_redis_master_at(pool, (u_char *) sm.host.data, sm.host.len,
                               (ngx_int_t) sm.port, (char *) conn->peer);
}


/* the announced address is the pool's already (another sentinel's news) */

static ngx_uint_t
ngx_vodlms_redis_known(ngx_vodlms_redis_pool_t *pool, u_char *host,
    size_t len, ngx_int_t port)
{
    size_t  n;
    u_char  text[NGX_SOCKADDR_STRLEN + 1];

    if (pool->target_state != NGX_VODLMS_REDIS_TARGET_KNOWN
        || pool->target.sockaddr == NULL
        || ngx_inet_get_port(pool->target.sockaddr) != port)
    {
        return 0;
    }

    n = ngx_sock_ntop(pool->target.sockaddr, pool->target.socklen, text,
                      NGX_SOCKADDR_STRLEN, 0);

    return n == len && ngx_strncmp(text, host, len) == 0;
}


/* every sentinel not subscribed to yet: +switch-master */

static void
ngx_vodlms_redis_subscribe_all(ngx_vodlms_redis_pool_t *pool)
{
    ngx_uint_t                     i, missing;
    ngx_vodlms_redis_server_t     *s;
    ngx_vodlms_redis_sentinels_t  *scf = pool->conf->sentinels;

    if (ngx_vodlms_redis_shutting_down(pool)) {
        return;
    }

    missing = 0;

    for (i = 0; i < scf->servers.nelts; i++) {

        if (pool->subs[i] || pool->subs_rs[i].ctx) {
            continue;
        }

        s = (ngx_vodlms_redis_server_t *) scf->servers.elts + i;

        if (s->addr.sockaddr) {
            if (ngx_vodlms_redis_subscribe(pool, i, s->addr.sockaddr,
                                           s->addr.socklen)
                != NGX_OK)
            {
                missing++;
            }

            continue;
        }

        pool->subs_rs[i].data = pool;

        if (ngx_vodlms_resolve(&pool->subs_rs[i], &s->host, s->port)
            != NGX_OK)
        {
            missing++;
        }
    }

    if (missing && !pool->resubscribe.timer_set) {
        ngx_add_timer(&pool->resubscribe, NGX_VODLMS_REDIS_RESUBSCRIBE);
    }
}


static void
ngx_vodlms_redis_sub_resolved(ngx_vodlms_resolve_t *rs, ngx_addr_t *addrs,
    ngx_uint_t naddrs, time_t valid, const char *err)
{
    ngx_vodlms_redis_pool_t  *pool = rs->data;

    ngx_uint_t  i, n;

    i = rs - pool->subs_rs;

    /* a refused address: the name's next one */
    for (n = 0; n < naddrs; n++) {
        if (ngx_vodlms_redis_subscribe(pool, i, addrs[n].sockaddr,
                                       addrs[n].socklen)
            == NGX_OK)
        {
            return;
        }
    }

    if (naddrs == 0) {
        ngx_log_error(NGX_LOG_INFO, pool->log, 0,
                      "vodlms: sentinel %s: not subscribed", err);
    }

    if (!pool->resubscribe.timer_set && !ngx_vodlms_redis_shutting_down(pool))
    {
        ngx_add_timer(&pool->resubscribe, NGX_VODLMS_REDIS_RESUBSCRIBE);
    }
}


static ngx_int_t
ngx_vodlms_redis_subscribe(ngx_vodlms_redis_pool_t *pool, ngx_uint_t i,
    struct sockaddr *sa, socklen_t socklen)
{
    int                            argc;
    size_t                         argvlen[3];
    ngx_uint_t                     refused;
    const char                    *argv[3];
    ngx_vodlms_redis_conn_t       *conn;
    ngx_vodlms_redis_sentinels_t  *scf = pool->conf->sentinels;

    conn = ngx_vodlms_redis_open(pool, sa, socklen, 1, &refused);

    if (conn == NULL) {
        ngx_log_error(NGX_LOG_INFO, pool->log, 0,
                      "vodlms: %s: not subscribed", pool->reason);
        return NGX_DECLINED;
    }

    conn->index = i;
    conn->subscriber = 1;
    pool->subs[i] = conn;

    if (scf->password.len) {
        argc = 0;
        argv[argc] = "AUTH";
        argvlen[argc++] = 4;

        if (scf->user.len) {
            argv[argc] = (const char *) scf->user.data;
            argvlen[argc++] = scf->user.len;
        }

        argv[argc] = (const char *) scf->password.data;
        argvlen[argc++] = scf->password.len;

        redisAsyncCommandArgv(conn->ac, ngx_vodlms_redis_sentinel_auth, conn,
                              argc, argv, argvlen);
    }

    if (redisAsyncCommand(conn->ac, ngx_vodlms_redis_switch_master, conn,
                          "SUBSCRIBE +switch-master")
        != REDIS_OK)
    {
        ngx_vodlms_redis_fail(conn, NGX_VODLMS_REDIS_ERROR,
                              "could not queue SUBSCRIBE");
        return NGX_DECLINED;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, pool->log, 0,
                   "vodlms redis: subscribe, sentinel %s fd:%d: "
                   "+switch-master", conn->peer, conn->connection->fd);

    return NGX_OK;
}


static void
ngx_vodlms_redis_resubscribe(ngx_event_t *ev)
{
    /* subscribe_all() stays quiet once the worker is shutting down */
    ngx_vodlms_redis_subscribe_all(ev->data);
}


/* a sentinel connection is gone (ngx_vodlms_redis_mark_failed) */

void
ngx_vodlms_redis_discover_lost(ngx_vodlms_redis_conn_t *conn)
{
    ngx_vodlms_redis_pool_t  *pool = conn->pool;

    if (conn == pool->asking) {
        pool->asking = NULL;

        ngx_cpystrn((u_char *) pool->reason, (u_char *) conn->reason,
                    sizeof(pool->reason));

        ngx_log_error(NGX_LOG_INFO, pool->log, 0, "vodlms: %s, asking the "
                      "next sentinel", conn->reason);

        if (!pool->exiting) {
            /* the same sentinel at another address of its name, or the next */
            if (ngx_vodlms_redis_ask_addrs(pool) == NGX_OK) {
                return;
            }

            pool->tried++;
            ngx_vodlms_redis_ask_next(pool);
        }

        return;
    }

    if (conn->subscriber && pool->subs[conn->index] == conn) {
        pool->subs[conn->index] = NULL;

        if (ngx_vodlms_redis_shutting_down(pool)) {
            return;
        }

        ngx_log_error(NGX_LOG_INFO, pool->log, 0,
                      "vodlms: %s: no +switch-master from it until it is "
                      "subscribed to again", conn->reason);

        if (!pool->resubscribe.timer_set) {
            ngx_add_timer(&pool->resubscribe, NGX_VODLMS_REDIS_RESUBSCRIBE);
        }
    }
}


/*
 * The master a sentinel named failed us (refused, lost, ROLE, READONLY):
 * that sentinel may not have heard of a failover yet, so it goes to the
 * back of the list, and the next round asks the others first.
 */

void
ngx_vodlms_redis_discover_stale(ngx_vodlms_redis_pool_t *pool)
{
    ngx_uint_t  i, n;

    n = pool->conf->sentinels->servers.nelts;

    for (i = 0; i < n; i++) {
        if ((ngx_int_t) pool->order[i] == pool->named_by) {
            ngx_memmove(&pool->order[i], &pool->order[i + 1],
                        (n - i - 1) * sizeof(ngx_uint_t));
            pool->order[n - 1] = pool->named_by;
            break;
        }
    }

    pool->named_by = -1;
}


/* the round under way, if any, is dropped; its waiting batches stay */

void
ngx_vodlms_redis_discover_abort(ngx_vodlms_redis_pool_t *pool)
{
    ngx_vodlms_redis_conn_t  *conn;

    ngx_vodlms_resolve_cancel(&pool->rs);

    if (pool->asking) {
        conn = pool->asking;
        pool->asking = NULL;
        ngx_vodlms_redis_fail(conn, NGX_VODLMS_REDIS_OK, "superseded");
    }

    if (pool->target_state == NGX_VODLMS_REDIS_TARGET_DISCOVERING) {
        pool->target_state = NGX_VODLMS_REDIS_TARGET_NONE;
    }
}


void
ngx_vodlms_redis_discover_destroy(ngx_vodlms_redis_pool_t *pool)
{
    ngx_uint_t                i;
    ngx_vodlms_redis_conn_t  *conn;

    if (pool->resubscribe.timer_set) {
        ngx_del_timer(&pool->resubscribe);
    }

    ngx_vodlms_redis_discover_abort(pool);

    if (pool->subs == NULL) {
        return;
    }

    for (i = 0; i < pool->conf->sentinels->servers.nelts; i++) {
        ngx_vodlms_resolve_cancel(&pool->subs_rs[i]);

        conn = pool->subs[i];

        if (conn) {
            pool->subs[i] = NULL;
            ngx_vodlms_redis_fail(conn, NGX_VODLMS_REDIS_OK,
                                  "worker is exiting");
        }
    }
}
