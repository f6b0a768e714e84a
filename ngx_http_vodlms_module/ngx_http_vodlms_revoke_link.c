/*
 * The Redis invalidation link of one node (worker 0): two connections that
 * live as long as the worker.
 *
 *   subscriber: [AUTH], CLIENT ID, SUBSCRIBE __redis__:invalidate
 *   tracker:    [AUTH], [SELECT], CLIENT TRACKING on REDIRECT <id> BCAST
 *               [PREFIX <session key prefix>]...
 *
 * Tracking belongs to the tracker's connection and sends to the subscriber:
 * when either goes, the other is useless and both are closed.  Every
 * second both answer a PING (a silent network is a loss too) and the pool's
 * current address is compared with the link's (a failover moves it).  A
 * loss is logged once (warn), the link is made again with the pools'
 * back-off, and when it is back every session answer cached meanwhile is
 * made stale (ngx_http_vodlms_revoke_flush): invalidations may have been
 * missed.
 *
 * The sockets are nginx connections of our own, fed to hiredis' reply
 * reader; hiredis 0.14's async context is not used here because, once
 * subscribed, it hands the reply to any other command (PING) to whatever
 * callback is queued first, so a PING and an invalidation message could
 * be mistaken for each other.  Nothing here blocks: connects are
 * non-blocking, and every wait is an nginx timer.
 */

#include "ngx_http_vodlms_module.h"
#include "ngx_http_vodlms_revoke_internal.h"
#include "ngx_vodlms_backoff.h"

#include <hiredis/hiredis.h>


#define NGX_HTTP_VODLMS_REVOKE_CHECK     1000   /* ms between PINGs */
#define NGX_HTTP_VODLMS_REVOKE_PING_MIN  3000   /* ms a PING may take, at
                                                   least: a stall (a fork
                                                   for BGSAVE) is no loss,
                                                   which would drop every
                                                   node's cache at once */
#define NGX_HTTP_VODLMS_REVOKE_AGAIN     100    /* ms: address not known yet */
#define NGX_HTTP_VODLMS_REVOKE_REASON    200
#define NGX_HTTP_VODLMS_REVOKE_CHANNEL   "__redis__:invalidate"


typedef enum {
    NGX_HTTP_VODLMS_REVOKE_AUTH = 1,
    NGX_HTTP_VODLMS_REVOKE_SELECT,
    NGX_HTTP_VODLMS_REVOKE_CLIENT_ID,
    NGX_HTTP_VODLMS_REVOKE_SUBSCRIBE,
    NGX_HTTP_VODLMS_REVOKE_TRACKING
} ngx_http_vodlms_revoke_step_e;


typedef enum {
    NGX_HTTP_VODLMS_LINK_DOWN = 0,
    NGX_HTTP_VODLMS_LINK_SUBSCRIBING,
    NGX_HTTP_VODLMS_LINK_TRACKING,
    NGX_HTTP_VODLMS_LINK_UP
} ngx_http_vodlms_link_state_e;


typedef struct {
    ngx_http_vodlms_revoke_link_t  *link;
    const char                     *role;        /* for the logs */
    ngx_connection_t               *connection;
    redisReader                    *reader;
    u_char                         *out;         /* commands not yet sent */
    size_t                          out_len;
    size_t                          out_size;
    u_char                          steps[4];    /* setup replies awaited */
    ngx_uint_t                      nsteps;
    ngx_uint_t                      step;
    ngx_uint_t                      pings;       /* PINGs unanswered */
    unsigned                        connected:1;
} ngx_http_vodlms_revoke_conn_t;


struct ngx_http_vodlms_revoke_link_s {
    ngx_http_vodlms_revoke_t       *revoke;
    ngx_vodlms_redis_conf_t        *conf;
    ngx_vodlms_redis_pool_t        *pool;
    ngx_log_t                      *log;
    ngx_array_t                     prefixes;    /* of ngx_str_t, minimal */
    ngx_uint_t                      all_keys;    /* a prefix is "" */

    ngx_sockaddr_t                  sockaddr;    /* where the link goes */
    socklen_t                       socklen;
    ngx_str_t                       addr;
    u_char                          addr_text[NGX_SOCKADDR_STRLEN];

    ngx_http_vodlms_revoke_conn_t   sub;
    ngx_http_vodlms_revoke_conn_t   trk;
    long long                       client_id;   /* the subscriber's */

    ngx_event_t                     timer;       /* retry, setup, check */
    ngx_vodlms_backoff_t            backoff;
    ngx_msec_t                      ping_sent;
    ngx_msec_t                      down_since;  /* this outage began */
    ngx_http_vodlms_link_state_e    state;
    unsigned                        warned:1;    /* this outage is logged */
    unsigned                        was_up:1;
    unsigned                        exiting:1;
};


static void ngx_http_vodlms_revoke_link_connect(
    ngx_http_vodlms_revoke_link_t *link);
static void ngx_http_vodlms_revoke_link_up(
    ngx_http_vodlms_revoke_link_t *link);
static void ngx_http_vodlms_revoke_link_fail(
    ngx_http_vodlms_revoke_link_t *link, ngx_http_vodlms_revoke_conn_t *conn,
    const char *reason);
static void ngx_http_vodlms_revoke_link_down(
    ngx_http_vodlms_revoke_link_t *link);
static void ngx_http_vodlms_revoke_link_close(
    ngx_http_vodlms_revoke_link_t *link);
static void ngx_http_vodlms_revoke_link_timer(ngx_event_t *ev);
static void ngx_http_vodlms_revoke_link_check(
    ngx_http_vodlms_revoke_link_t *link);
static ngx_int_t ngx_http_vodlms_revoke_link_prefixes(
    ngx_http_vodlms_revoke_link_t *link, ngx_pool_t *pool);

static ngx_int_t ngx_http_vodlms_revoke_open(
    ngx_http_vodlms_revoke_conn_t *conn);
static void ngx_http_vodlms_revoke_close(ngx_http_vodlms_revoke_conn_t *conn);
static ngx_int_t ngx_http_vodlms_revoke_queue(
    ngx_http_vodlms_revoke_conn_t *conn, int argc, const char **argv,
    const size_t *argvlen, ngx_uint_t step);
static ngx_int_t ngx_http_vodlms_revoke_queue_auth(
    ngx_http_vodlms_revoke_conn_t *conn);
static void ngx_http_vodlms_revoke_flush_out(
    ngx_http_vodlms_revoke_conn_t *conn);
static ngx_int_t ngx_http_vodlms_revoke_test_connect(
    ngx_http_vodlms_revoke_conn_t *conn);
static void ngx_http_vodlms_revoke_read_handler(ngx_event_t *rev);
static void ngx_http_vodlms_revoke_write_handler(ngx_event_t *wev);
static ngx_int_t ngx_http_vodlms_revoke_reply(
    ngx_http_vodlms_revoke_conn_t *conn, redisReply *reply);
static ngx_int_t ngx_http_vodlms_revoke_setup_reply(
    ngx_http_vodlms_revoke_conn_t *conn, redisReply *reply);
static void ngx_http_vodlms_revoke_message(
    ngx_http_vodlms_revoke_link_t *link, redisReply *keys);


ngx_http_vodlms_revoke_link_t *
ngx_http_vodlms_revoke_link_start(ngx_cycle_t *cycle,
    ngx_http_vodlms_revoke_t *rv, ngx_vodlms_redis_conf_t *conf,
    ngx_vodlms_redis_pool_t *pool)
{
    ngx_pid_t                       pid;
    ngx_http_vodlms_revoke_link_t  *link;

    link = ngx_pcalloc(cycle->pool, sizeof(ngx_http_vodlms_revoke_link_t));
    if (link == NULL) {
        return NULL;
    }

    link->revoke = rv;
    link->conf = conf;
    link->pool = pool;
    link->log = cycle->log;

    link->sub.link = link;
    link->sub.role = "subscriber";
    link->trk.link = link;
    link->trk.role = "tracker";

    link->timer.handler = ngx_http_vodlms_revoke_link_timer;
    link->timer.data = link;
    link->timer.log = cycle->log;
    link->timer.cancelable = 1;     /* a graceful exit does not wait for it */

    if (ngx_http_vodlms_revoke_link_prefixes(link, cycle->pool) != NGX_OK) {
        return NULL;
    }

    /* the worker this one replaces may have died with its link up */
    pid = (ngx_pid_t) rv->sh->up;

    if (pid && kill(pid, 0) == -1 && ngx_errno == NGX_ESRCH) {
        (void) ngx_atomic_cmp_set(&rv->sh->up, (ngx_atomic_uint_t) pid, 0);
    }

    ngx_http_vodlms_revoke_link_connect(link);

    return link;
}


void
ngx_http_vodlms_revoke_link_stop(ngx_http_vodlms_revoke_link_t *link)
{
    link->exiting = 1;

    ngx_http_vodlms_revoke_link_down(link);
    ngx_http_vodlms_revoke_link_close(link);

    if (link->timer.timer_set) {
        ngx_del_timer(&link->timer);
    }

    ngx_log_debug0(NGX_LOG_DEBUG_EVENT, link->log, 0,
                   "vodlms revoke: link stopped, the worker is exiting");
}


/*
 * The prefixes CLIENT TRACKING gets: one of each, none that another one
 * starts (Redis refuses overlapping prefixes), and none at all when a
 * location's prefix is "" (every key).
 */

static ngx_int_t
ngx_http_vodlms_revoke_link_prefixes(ngx_http_vodlms_revoke_link_t *link,
    ngx_pool_t *pool)
{
    ngx_str_t                        *p, *q;
    ngx_uint_t                        i, j, covered;
    ngx_http_vodlms_revoke_target_t  *t;

    if (ngx_array_init(&link->prefixes, pool, 4, sizeof(ngx_str_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    t = link->revoke->targets.elts;

    for (i = 0; i < link->revoke->targets.nelts; i++) {

        if (t[i].prefix.len == 0) {
            link->all_keys = 1;
            continue;
        }

        covered = 0;
        p = link->prefixes.elts;

        for (j = 0; j < link->prefixes.nelts; j++) {
            if (p[j].len <= t[i].prefix.len
                && ngx_memcmp(p[j].data, t[i].prefix.data, p[j].len) == 0)
            {
                covered = 1;        /* a shorter one (or the same) is in */
                break;
            }
        }

        if (covered) {
            continue;
        }

        /* this one is shorter than some already in: it replaces them */

        for (j = 0; j < link->prefixes.nelts; /* void */) {
            p = link->prefixes.elts;

            if (p[j].len > t[i].prefix.len
                && ngx_memcmp(p[j].data, t[i].prefix.data, t[i].prefix.len)
                   == 0)
            {
                p[j] = p[link->prefixes.nelts - 1];
                link->prefixes.nelts--;
                continue;
            }

            j++;
        }

        q = ngx_array_push(&link->prefixes);
        if (q == NULL) {
            return NGX_ERROR;
        }

        *q = t[i].prefix;
    }

    return NGX_OK;
}


/*
 * Where the session pool connects now (a sentinel's master, a name's
 * current address, or the configured one), copied: NGX_OK, NGX_AGAIN
 * while it is being found (ask again soon), NGX_ERROR (the pool is
 * backing off, or an address that does not fit)
 */

static ngx_int_t
ngx_http_vodlms_revoke_address(ngx_vodlms_redis_pool_t *pool,
    ngx_sockaddr_t *sa, socklen_t *socklen)
{
    ngx_int_t    rc;
    ngx_addr_t  *addr;

    rc = ngx_vodlms_redis_current_address(pool, &addr);

    if (rc == NGX_AGAIN) {
        return NGX_AGAIN;
    }

    if (rc != NGX_OK || addr->socklen > (socklen_t) sizeof(ngx_sockaddr_t)) {
        return NGX_ERROR;
    }

    ngx_memcpy(sa, addr->sockaddr, addr->socklen);
    *socklen = addr->socklen;

    return NGX_OK;
}


/* the link's life */

static void
ngx_http_vodlms_revoke_link_connect(ngx_http_vodlms_revoke_link_t *link)
{
    ngx_int_t                       rc;
    ngx_http_vodlms_revoke_conn_t  *sub;

    const char  *argv[2];
    size_t       argvlen[2];

    rc = ngx_http_vodlms_revoke_address(link->pool, &link->sockaddr,
                                          &link->socklen);

    if (rc == NGX_AGAIN) {
        ngx_log_debug0(NGX_LOG_DEBUG_EVENT, link->log, 0,
                       "vodlms revoke: the redis address is being found "
                       "out, asking again soon");
        link->state = NGX_HTTP_VODLMS_LINK_DOWN;
        ngx_add_timer(&link->timer, NGX_HTTP_VODLMS_REVOKE_AGAIN);
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_vodlms_revoke_link_fail(link, NULL,
                                         "no address to connect to");
        return;
    }

    link->addr.data = link->addr_text;
    link->addr.len = ngx_sock_ntop(&link->sockaddr.sockaddr, link->socklen,
                                   link->addr_text, NGX_SOCKADDR_STRLEN, 1);

    link->state = NGX_HTTP_VODLMS_LINK_SUBSCRIBING;

    /* the whole setup of both connections within one deadline */
    if (link->timer.timer_set) {
        ngx_del_timer(&link->timer);
    }

    ngx_add_timer(&link->timer,
                  link->conf->connect_timeout * 2 + link->conf->timeout);

    sub = &link->sub;

    if (ngx_http_vodlms_revoke_open(sub) != NGX_OK) {
        return;
    }

    if (ngx_http_vodlms_revoke_queue_auth(sub) != NGX_OK) {
        return;
    }

    argv[0] = "CLIENT";
    argvlen[0] = 6;
    argv[1] = "ID";
    argvlen[1] = 2;

    if (ngx_http_vodlms_revoke_queue(sub, 2, argv, argvlen,
                                     NGX_HTTP_VODLMS_REVOKE_CLIENT_ID)
        != NGX_OK)
    {
        return;
    }

    argv[0] = "SUBSCRIBE";
    argvlen[0] = 9;
    argv[1] = NGX_HTTP_VODLMS_REVOKE_CHANNEL;
    argvlen[1] = sizeof(NGX_HTTP_VODLMS_REVOKE_CHANNEL) - 1;

    (void) ngx_http_vodlms_revoke_queue(sub, 2, argv, argvlen,
                                        NGX_HTTP_VODLMS_REVOKE_SUBSCRIBE);
}


/* the subscriber is subscribed: tracking on, redirected to it */

static void
ngx_http_vodlms_revoke_link_track(ngx_http_vodlms_revoke_link_t *link)
{
    int                             argc;
    size_t                         *argvlen;
    u_char                          id[NGX_INT64_LEN], db[NGX_INT_T_LEN];
    ngx_str_t                      *p;
    ngx_uint_t                      i, n;
    const char                    **argv;
    ngx_http_vodlms_revoke_conn_t  *trk;

    link->state = NGX_HTTP_VODLMS_LINK_TRACKING;
    trk = &link->trk;

    if (ngx_http_vodlms_revoke_open(trk) != NGX_OK) {
        return;
    }

    if (ngx_http_vodlms_revoke_queue_auth(trk) != NGX_OK) {
        return;
    }

    /*
     * Invalidation is by key name in every database; SELECT only makes
     * this connection what the pool's are (and checks db= is allowed).
     */
    if (link->conf->db) {
        const char  *sargv[2];
        size_t       sargvlen[2];

        sargv[0] = "SELECT";
        sargvlen[0] = 6;
        sargv[1] = (const char *) db;
        sargvlen[1] = ngx_sprintf(db, "%i", link->conf->db) - db;

        if (ngx_http_vodlms_revoke_queue(trk, 2, sargv, sargvlen,
                                         NGX_HTTP_VODLMS_REVOKE_SELECT)
            != NGX_OK)
        {
            return;
        }
    }

    n = link->all_keys ? 0 : link->prefixes.nelts;

    argv = ngx_alloc((6 + 2 * n) * sizeof(char *), link->log);
    argvlen = ngx_alloc((6 + 2 * n) * sizeof(size_t), link->log);

    if (argv == NULL || argvlen == NULL) {
        if (argv) {
            ngx_free(argv);
        }
        ngx_http_vodlms_revoke_link_fail(link, trk, "out of memory");
        return;
    }

    argc = 0;
    argv[argc] = "CLIENT";
    argvlen[argc++] = 6;
    argv[argc] = "TRACKING";
    argvlen[argc++] = 8;
    argv[argc] = "on";
    argvlen[argc++] = 2;
    argv[argc] = "REDIRECT";
    argvlen[argc++] = 8;
    argv[argc] = (const char *) id;
    argvlen[argc++] = ngx_sprintf(id, "%L", (int64_t) link->client_id) - id;
    argv[argc] = "BCAST";
    argvlen[argc++] = 5;

    p = link->prefixes.elts;

    for (i = 0; i < n; i++) {
        argv[argc] = "PREFIX";
        argvlen[argc++] = 6;
        argv[argc] = (const char *) p[i].data;
        argvlen[argc++] = p[i].len;
    }

    (void) ngx_http_vodlms_revoke_queue(trk, argc, argv, argvlen,
                                        NGX_HTTP_VODLMS_REVOKE_TRACKING);

    ngx_free(argv);
    ngx_free(argvlen);
}


static void
ngx_http_vodlms_revoke_link_up(ngx_http_vodlms_revoke_link_t *link)
{
    u_char      *p, *last;
    ngx_str_t   *pf;
    ngx_uint_t   i;

    u_char  prefixes[256];

    link->state = NGX_HTTP_VODLMS_LINK_UP;

    /* invalidations may have been missed until now: all of it is stale */
    ngx_http_vodlms_revoke_flush(link->revoke);

    /* a reload's new worker 0 takes over from the old one's here */
    link->revoke->sh->up = (ngx_atomic_uint_t) ngx_pid;

    /*
     * The back-off is cleared only once both connections have answered a
     * PING (ngx_http_vodlms_revoke_link_check): a Redis that drops the
     * link as soon as it is made is not tried again in a tight loop.
     */

    if (link->was_up || link->warned) {
        ngx_log_error(NGX_LOG_NOTICE, link->log, 0,
                      "vodlms: session invalidation from redis %V (%V) is "
                      "back after %M ms: session answers cached meanwhile "
                      "are dropped, logouts are instant again",
                      &link->conf->name, &link->addr,
                      ngx_current_msec - link->down_since);

    } else {
        p = prefixes;
        last = prefixes + sizeof(prefixes);
        pf = link->prefixes.elts;

        if (link->all_keys) {
            p = ngx_slprintf(p, last, "every key");
        }

        for (i = 0; !link->all_keys && i < link->prefixes.nelts; i++) {
            p = ngx_slprintf(p, last, "%s\"%V\"", i ? ", " : "", &pf[i]);
        }

        ngx_log_error(NGX_LOG_NOTICE, link->log, 0,
                      "vodlms: session invalidation is on: redis %V (%V) "
                      "tells this node of changes to %*s",
                      &link->conf->name, &link->addr, p - prefixes, prefixes);
    }

    link->was_up = 1;
    link->warned = 0;
    link->sub.pings = 0;
    link->trk.pings = 0;

    if (link->timer.timer_set) {
        ngx_del_timer(&link->timer);
    }

    ngx_add_timer(&link->timer, NGX_HTTP_VODLMS_REVOKE_CHECK);
}


/* the node's gauge says "down", unless another worker's link is up now */

static void
ngx_http_vodlms_revoke_link_down(ngx_http_vodlms_revoke_link_t *link)
{
    (void) ngx_atomic_cmp_set(&link->revoke->sh->up,
                              (ngx_atomic_uint_t) ngx_pid, 0);
}


static void
ngx_http_vodlms_revoke_link_close(ngx_http_vodlms_revoke_link_t *link)
{
    ngx_http_vodlms_revoke_close(&link->sub);
    ngx_http_vodlms_revoke_close(&link->trk);
}


/*
 * Either connection failed (conn: which, or NULL): close both, say so
 * once per outage, try again after the back-off.
 */

static void
ngx_http_vodlms_revoke_link_fail(ngx_http_vodlms_revoke_link_t *link,
    ngx_http_vodlms_revoke_conn_t *conn, const char *reason)
{
    ngx_msec_t                    left;
    ngx_http_vodlms_link_state_e  state;

    u_char  buf[NGX_HTTP_VODLMS_REVOKE_REASON];

    /* reason may point into what is closed next */
    *ngx_snprintf(buf, sizeof(buf) - 1, "%s%s%s",
                  conn ? conn->role : "", conn ? ": " : "", reason) = '\0';

    state = link->state;
    link->state = NGX_HTTP_VODLMS_LINK_DOWN;

    ngx_http_vodlms_revoke_link_close(link);

    if (link->exiting) {
        return;
    }

    if (state == NGX_HTTP_VODLMS_LINK_UP) {
        ngx_http_vodlms_revoke_link_down(link);
        (void) ngx_atomic_fetch_add(&link->revoke->sh->losses, 1);
    }

    if (!link->warned) {
        link->warned = 1;
        link->down_since = ngx_current_msec;

        ngx_log_error(NGX_LOG_WARN, link->log, 0,
                      "vodlms: session invalidation from redis %V %s (%s): "
                      "cached session answers live up to their valid= time "
                      "until it is back; reconnecting", &link->conf->name,
                      state == NGX_HTTP_VODLMS_LINK_UP ? "lost"
                                                       : "not available",
                      buf);

    } else {
        ngx_log_error(NGX_LOG_INFO, link->log, 0,
                      "vodlms: session invalidation from redis %V still not "
                      "available (%s)", &link->conf->name, buf);
    }

    ngx_vodlms_backoff_failed(&link->backoff, link->log, "redis",
                              &link->conf->name);

    left = ngx_vodlms_backoff_left(&link->backoff);

    if (link->timer.timer_set) {
        ngx_del_timer(&link->timer);
    }

    ngx_add_timer(&link->timer, left);
}


static void
ngx_http_vodlms_revoke_link_timer(ngx_event_t *ev)
{
    ngx_http_vodlms_revoke_link_t  *link = ev->data;

    u_char  buf[64];

    /* no new connection while the worker shuts down (reload, stop) */
    if (link->exiting || ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    switch (link->state) {

    case NGX_HTTP_VODLMS_LINK_DOWN:
        ngx_http_vodlms_revoke_link_connect(link);
        return;

    case NGX_HTTP_VODLMS_LINK_UP:
        ngx_http_vodlms_revoke_link_check(link);
        return;

    default:
        *ngx_snprintf(buf, sizeof(buf) - 1, "set-up timed out after %M ms",
                      link->conf->connect_timeout * 2 + link->conf->timeout)
            = '\0';
        ngx_http_vodlms_revoke_link_fail(link,
                      link->state == NGX_HTTP_VODLMS_LINK_SUBSCRIBING
                      ? &link->sub : &link->trk, (char *) buf);
        return;
    }
}


/* every second while up: both connections answer, the address holds */

static void
ngx_http_vodlms_revoke_link_check(ngx_http_vodlms_revoke_link_t *link)
{
    u_char          text[NGX_SOCKADDR_STRLEN];
    size_t          len;
    socklen_t       socklen;
    ngx_int_t       rc;
    ngx_msec_t      deadline;
    ngx_sockaddr_t  sa;

    const char  *argv[1];
    size_t       argvlen[1];
    u_char       buf[64];

    if (link->sub.pings == 0 && link->trk.pings == 0) {
        (void) ngx_vodlms_backoff_ok(&link->backoff);

    } else {

        deadline = ngx_max(3 * link->conf->timeout,
                           NGX_HTTP_VODLMS_REVOKE_PING_MIN);

        if (ngx_current_msec - link->ping_sent >= deadline) {
            *ngx_snprintf(buf, sizeof(buf) - 1, "no answer to PING in %M ms",
                          deadline)
                = '\0';
            ngx_http_vodlms_revoke_link_fail(link,
                                link->sub.pings ? &link->sub : &link->trk,
                                (char *) buf);
            return;
        }

        ngx_add_timer(&link->timer, NGX_HTTP_VODLMS_REVOKE_CHECK);
        return;
    }

    /* a failover moved the pool: the link follows it */

    rc = ngx_http_vodlms_revoke_address(link->pool, &sa, &socklen);

    if (rc == NGX_OK
        && ngx_cmp_sockaddr(&sa.sockaddr, socklen, &link->sockaddr.sockaddr,
                            link->socklen, 1)
           != NGX_OK)
    {
        len = ngx_sock_ntop(&sa.sockaddr, socklen, text, NGX_SOCKADDR_STRLEN,
                            1);

        ngx_log_error(NGX_LOG_NOTICE, link->log, 0,
                      "vodlms: redis %V moved from %V to %*s: session "
                      "invalidation follows it", &link->conf->name,
                      &link->addr, len, text);

        link->state = NGX_HTTP_VODLMS_LINK_DOWN;
        link->down_since = ngx_current_msec;
        ngx_http_vodlms_revoke_link_down(link);
        ngx_http_vodlms_revoke_link_close(link);
        ngx_http_vodlms_revoke_link_connect(link);
        return;
    }

    argv[0] = "PING";
    argvlen[0] = 4;

    link->ping_sent = ngx_current_msec;

    if (ngx_http_vodlms_revoke_queue(&link->sub, 1, argv, argvlen, 0)
        != NGX_OK
        || ngx_http_vodlms_revoke_queue(&link->trk, 1, argv, argvlen, 0)
           != NGX_OK)
    {
        return;
    }

    link->sub.pings++;
    link->trk.pings++;

    ngx_add_timer(&link->timer, NGX_HTTP_VODLMS_REVOKE_CHECK);
}


/* one connection */

static ngx_int_t
ngx_http_vodlms_revoke_open(ngx_http_vodlms_revoke_conn_t *conn)
{
    int                             rc, tcp_nodelay;
    ngx_err_t                       err;
    ngx_int_t                       event;
    ngx_socket_t                    s;
    ngx_event_t                    *rev, *wev;
    ngx_connection_t               *c;
    ngx_http_vodlms_revoke_link_t  *link;

    u_char  buf[NGX_HTTP_VODLMS_REVOKE_REASON];

    link = conn->link;

    conn->reader = redisReaderCreate();
    if (conn->reader == NULL) {
        ngx_http_vodlms_revoke_link_fail(link, conn, "out of memory");
        return NGX_ERROR;
    }

    s = ngx_socket(link->sockaddr.sockaddr.sa_family, SOCK_STREAM, 0);

    if (s == (ngx_socket_t) -1) {
        err = ngx_socket_errno;
        *ngx_snprintf(buf, sizeof(buf) - 1, "socket() failed: %s",
                      strerror(err)) = '\0';
        ngx_http_vodlms_revoke_link_fail(link, conn, (char *) buf);
        return NGX_ERROR;
    }

    c = ngx_get_connection(s, link->log);

    if (c == NULL) {
        (void) ngx_close_socket(s);
        ngx_http_vodlms_revoke_link_fail(link, conn,
                         "no free nginx connection (worker_connections)");
        return NGX_ERROR;
    }

    conn->connection = c;

    if (ngx_nonblocking(s) == -1) {
        ngx_http_vodlms_revoke_link_fail(link, conn,
                                         ngx_nonblocking_n " failed");
        return NGX_ERROR;
    }

    if (link->sockaddr.sockaddr.sa_family != AF_UNIX) {
        tcp_nodelay = 1;
        (void) setsockopt(s, IPPROTO_TCP, TCP_NODELAY,
                          (const void *) &tcp_nodelay, sizeof(int));
    }

    /* in vodlms_backend_connections with the pools'; out in _close() */
    ngx_vodlms_metrics_connection(NGX_VODLMS_BACKEND_REDIS, 1);

    c->data = conn;
    c->recv = ngx_recv;
    c->send = ngx_send;
    c->log = link->log;
    c->log_error = NGX_ERROR_INFO;
    c->number = ngx_atomic_fetch_add(ngx_connection_counter, 1);

    rev = c->read;
    wev = c->write;
    rev->log = link->log;
    wev->log = link->log;
    rev->handler = ngx_http_vodlms_revoke_read_handler;
    wev->handler = ngx_http_vodlms_revoke_write_handler;

    /* as ngx_event_connect_peer(), which would log a refusal as an error */

    if (ngx_add_conn) {
        if (ngx_add_conn(c) == NGX_ERROR) {
            ngx_http_vodlms_revoke_link_fail(link, conn,
                                             "could not watch the socket");
            return NGX_ERROR;
        }
    }

    rc = connect(s, &link->sockaddr.sockaddr, link->socklen);

    if (rc == -1) {
        err = ngx_socket_errno;

        if (err != NGX_EINPROGRESS) {
            *ngx_snprintf(buf, sizeof(buf) - 1, "connect to %V failed: %s",
                          &link->addr, strerror(err)) = '\0';
            ngx_http_vodlms_revoke_link_fail(link, conn, (char *) buf);
            return NGX_ERROR;
        }
    }

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, link->log, 0,
                   "vodlms revoke: connect, %s to %V fd:%d",
                   conn->role, &link->addr, s);

    if (ngx_add_conn) {
        if (rc == 0) {
            wev->ready = 1;
            conn->connected = 1;
        }

        return NGX_OK;
    }

    event = (ngx_event_flags & NGX_USE_CLEAR_EVENT) ? NGX_CLEAR_EVENT
                                                    : NGX_LEVEL_EVENT;

    if (ngx_add_event(rev, NGX_READ_EVENT, event) != NGX_OK) {
        ngx_http_vodlms_revoke_link_fail(link, conn,
                                         "could not watch the socket");
        return NGX_ERROR;
    }

    if (rc == -1) {
        if (ngx_add_event(wev, NGX_WRITE_EVENT, event) != NGX_OK) {
            ngx_http_vodlms_revoke_link_fail(link, conn,
                                             "could not watch the socket");
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    wev->ready = 1;
    conn->connected = 1;

    return NGX_OK;
}


static void
ngx_http_vodlms_revoke_close(ngx_http_vodlms_revoke_conn_t *conn)
{
    if (conn->connection) {
        ngx_log_debug2(NGX_LOG_DEBUG_EVENT, conn->link->log, 0,
                       "vodlms revoke: close, %s fd:%d",
                       conn->role, conn->connection->fd);

        ngx_close_connection(conn->connection);
        conn->connection = NULL;

        ngx_vodlms_metrics_connection(NGX_VODLMS_BACKEND_REDIS, -1);
    }

    if (conn->reader) {
        redisReaderFree(conn->reader);
        conn->reader = NULL;
    }

    if (conn->out) {
        ngx_free(conn->out);
        conn->out = NULL;
    }

    conn->out_len = 0;
    conn->out_size = 0;
    conn->nsteps = 0;
    conn->step = 0;
    conn->pings = 0;
    conn->connected = 0;
}


/* step: the setup reply this command is, or 0 (PING) */

static ngx_int_t
ngx_http_vodlms_revoke_queue(ngx_http_vodlms_revoke_conn_t *conn, int argc,
    const char **argv, const size_t *argvlen, ngx_uint_t step)
{
    int      len;
    char    *cmd;
    u_char  *out;
    size_t   size;

    len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);

    if (len < 0) {
        ngx_http_vodlms_revoke_link_fail(conn->link, conn, "out of memory");
        return NGX_ERROR;
    }

    if (conn->out_len + len > conn->out_size) {
        size = ngx_max(conn->out_size * 2, conn->out_len + len + 256);

        out = ngx_alloc(size, conn->link->log);
        if (out == NULL) {
            redisFreeCommand(cmd);
            ngx_http_vodlms_revoke_link_fail(conn->link, conn,
                                             "out of memory");
            return NGX_ERROR;
        }

        if (conn->out) {
            ngx_memcpy(out, conn->out, conn->out_len);
            ngx_free(conn->out);
        }

        conn->out = out;
        conn->out_size = size;
    }

    ngx_memcpy(conn->out + conn->out_len, cmd, len);
    conn->out_len += len;
    redisFreeCommand(cmd);

    if (step) {
        conn->steps[conn->nsteps++] = (u_char) step;
    }

    if (conn->connected) {
        ngx_http_vodlms_revoke_flush_out(conn);

        /* the connection may be closed now: the caller checks the link */
        if (conn->connection == NULL) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_vodlms_revoke_queue_auth(ngx_http_vodlms_revoke_conn_t *conn)
{
    int                       argc;
    const char               *argv[3];
    size_t                    argvlen[3];
    ngx_vodlms_redis_conf_t  *conf;

    conf = conn->link->conf;

    if (conf->password.len == 0) {
        return NGX_OK;
    }

    argc = 0;
    argv[argc] = "AUTH";
    argvlen[argc++] = 4;

    if (conf->user.len) {
        argv[argc] = (const char *) conf->user.data;
        argvlen[argc++] = conf->user.len;
    }

    argv[argc] = (const char *) conf->password.data;
    argvlen[argc++] = conf->password.len;

    return ngx_http_vodlms_revoke_queue(conn, argc, argv, argvlen,
                                        NGX_HTTP_VODLMS_REVOKE_AUTH);
}


static void
ngx_http_vodlms_revoke_flush_out(ngx_http_vodlms_revoke_conn_t *conn)
{
    ssize_t            n;
    ngx_connection_t  *c;

    c = conn->connection;

    while (conn->out_len) {
        n = c->send(c, conn->out, conn->out_len);

        if (n == NGX_ERROR) {
            ngx_http_vodlms_revoke_link_fail(conn->link, conn,
                                             "write failed");
            return;
        }

        if (n == NGX_AGAIN || n == 0) {
            break;
        }

        ngx_memmove(conn->out, conn->out + n, conn->out_len - n);
        conn->out_len -= n;
    }

    if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
        ngx_http_vodlms_revoke_link_fail(conn->link, conn,
                                         "could not watch the socket");
    }
}


static ngx_int_t
ngx_http_vodlms_revoke_test_connect(ngx_http_vodlms_revoke_conn_t *conn)
{
    int        err;
    socklen_t  len;

    u_char  buf[NGX_HTTP_VODLMS_REVOKE_REASON];

    err = 0;
    len = sizeof(int);

    if (getsockopt(conn->connection->fd, SOL_SOCKET, SO_ERROR, (void *) &err,
                   &len)
        == -1)
    {
        err = ngx_socket_errno;
    }

    if (err) {
        *ngx_snprintf(buf, sizeof(buf) - 1, "connect to %V failed: %s",
                      &conn->link->addr, strerror(err)) = '\0';
        ngx_http_vodlms_revoke_link_fail(conn->link, conn, (char *) buf);
        return NGX_ERROR;
    }

    conn->connected = 1;

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, conn->link->log, 0,
                   "vodlms revoke: connected, %s fd:%d",
                   conn->role, conn->connection->fd);

    return NGX_OK;
}


static void
ngx_http_vodlms_revoke_write_handler(ngx_event_t *wev)
{
    ngx_connection_t               *c = wev->data;
    ngx_http_vodlms_revoke_conn_t  *conn = c->data;

    if (!conn->connected
        && ngx_http_vodlms_revoke_test_connect(conn) != NGX_OK)
    {
        return;
    }

    ngx_http_vodlms_revoke_flush_out(conn);
}


static void
ngx_http_vodlms_revoke_read_handler(ngx_event_t *rev)
{
    ngx_connection_t               *c = rev->data;
    ngx_http_vodlms_revoke_conn_t  *conn = c->data;

    void     *reply;
    ssize_t   n;
    u_char    buf[4096];

    if (!conn->connected) {
        if (ngx_http_vodlms_revoke_test_connect(conn) != NGX_OK) {
            return;
        }

        ngx_http_vodlms_revoke_flush_out(conn);

        if (conn->connection == NULL) {
            return;
        }
    }

    for ( ;; ) {
        n = c->recv(c, buf, sizeof(buf));

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == 0) {
            ngx_http_vodlms_revoke_link_fail(conn->link, conn,
                                             "connection closed by redis");
            return;
        }

        if (n == NGX_ERROR) {
            ngx_http_vodlms_revoke_link_fail(conn->link, conn,
                                             "read failed");
            return;
        }

        if (redisReaderFeed(conn->reader, (const char *) buf, n)
            != REDIS_OK)
        {
            ngx_http_vodlms_revoke_link_fail(conn->link, conn,
                                             "out of memory");
            return;
        }

        for ( ;; ) {
            if (redisReaderGetReply(conn->reader, &reply) != REDIS_OK) {
                ngx_http_vodlms_revoke_link_fail(conn->link, conn,
                                                 conn->reader->errstr);
                return;
            }

            if (reply == NULL) {
                break;
            }

            n = ngx_http_vodlms_revoke_reply(conn, reply);

            freeReplyObject(reply);

            /* the link failed: both connections are gone */
            if (n != NGX_OK || conn->connection == NULL) {
                return;
            }
        }
    }

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_http_vodlms_revoke_link_fail(conn->link, conn,
                                         "could not watch the socket");
    }
}


static ngx_int_t
ngx_http_vodlms_revoke_reply(ngx_http_vodlms_revoke_conn_t *conn,
    redisReply *reply)
{
    redisReply                     *kind;
    ngx_http_vodlms_revoke_link_t  *link;

    u_char  buf[NGX_HTTP_VODLMS_REVOKE_REASON];

    link = conn->link;

    if (conn->step < conn->nsteps) {
        return ngx_http_vodlms_revoke_setup_reply(conn, reply);
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        *ngx_snprintf(buf, sizeof(buf) - 1, "redis said: %*s",
                      ngx_min((size_t) reply->len, (size_t) 100), reply->str)
            = '\0';
        ngx_http_vodlms_revoke_link_fail(link, conn, (char *) buf);
        return NGX_ERROR;
    }

    if (conn == &link->trk) {
        /* only PINGs are sent here after the set-up */
        if (conn->pings) {
            conn->pings--;
        }
        return NGX_OK;
    }

    /* the subscriber: ["message", channel, keys | nil] or ["pong", ""] */

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2
        || reply->element[0]->type != REDIS_REPLY_STRING)
    {
        ngx_log_error(NGX_LOG_INFO, link->log, 0,
                      "vodlms: session invalidation: unexpected reply of "
                      "type %d from redis %V, ignored", reply->type,
                      &link->conf->name);
        return NGX_OK;
    }

    kind = reply->element[0];

    if (kind->len == 4 && ngx_strncasecmp((u_char *) kind->str,
                                          (u_char *) "pong", 4) == 0)
    {
        if (conn->pings) {
            conn->pings--;
        }
        return NGX_OK;
    }

    if (kind->len == 7
        && ngx_strncmp(kind->str, "message", 7) == 0
        && reply->elements == 3)
    {
        ngx_http_vodlms_revoke_message(link, reply->element[2]);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_vodlms_revoke_setup_reply(ngx_http_vodlms_revoke_conn_t *conn,
    redisReply *reply)
{
    ngx_uint_t                      step;
    const char                     *what;
    ngx_http_vodlms_revoke_link_t  *link;

    u_char  buf[NGX_HTTP_VODLMS_REVOKE_REASON];

    link = conn->link;
    step = conn->steps[conn->step++];

    switch (step) {
    case NGX_HTTP_VODLMS_REVOKE_AUTH:
        what = "AUTH";
        break;
    case NGX_HTTP_VODLMS_REVOKE_SELECT:
        what = "SELECT";
        break;
    case NGX_HTTP_VODLMS_REVOKE_CLIENT_ID:
        what = "CLIENT ID";
        break;
    case NGX_HTTP_VODLMS_REVOKE_SUBSCRIBE:
        what = "SUBSCRIBE";
        break;
    default:
        what = "CLIENT TRACKING (needs Redis 6 or later)";
        break;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        /* never the password: the server's words are safe */
        *ngx_snprintf(buf, sizeof(buf) - 1, "%s rejected: %*s", what,
                      ngx_min((size_t) reply->len, (size_t) 100), reply->str)
            = '\0';
        ngx_http_vodlms_revoke_link_fail(link, conn, (char *) buf);
        return NGX_ERROR;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, link->log, 0,
                   "vodlms revoke: %s: %s done", conn->role, what);

    switch (step) {

    case NGX_HTTP_VODLMS_REVOKE_CLIENT_ID:
        if (reply->type != REDIS_REPLY_INTEGER) {
            ngx_http_vodlms_revoke_link_fail(link, conn,
                                    "CLIENT ID did not answer a number");
            return NGX_ERROR;
        }

        link->client_id = reply->integer;
        return NGX_OK;

    case NGX_HTTP_VODLMS_REVOKE_SUBSCRIBE:
        ngx_http_vodlms_revoke_link_track(link);
        return link->state == NGX_HTTP_VODLMS_LINK_TRACKING ? NGX_OK
                                                            : NGX_ERROR;

    case NGX_HTTP_VODLMS_REVOKE_TRACKING:
        ngx_http_vodlms_revoke_link_up(link);
        return NGX_OK;

    default:
        return NGX_OK;
    }
}


/* keys: an array of key names, or nil when Redis flushed its keys */

static void
ngx_http_vodlms_revoke_message(ngx_http_vodlms_revoke_link_t *link,
    redisReply *keys)
{
    size_t       i;
    redisReply  *k;

    (void) ngx_atomic_fetch_add(&link->revoke->sh->messages, 1);

    switch (keys->type) {

    case REDIS_REPLY_NIL:
        ngx_log_error(NGX_LOG_NOTICE, link->log, 0,
                      "vodlms: redis %V flushed its keys: every cached "
                      "session answer is dropped", &link->conf->name);
        ngx_http_vodlms_revoke_flush(link->revoke);
        return;

    case REDIS_REPLY_STRING:
        ngx_http_vodlms_revoke_key(link->revoke, link->log,
                                   (u_char *) keys->str, keys->len);
        return;

    case REDIS_REPLY_ARRAY:
        for (i = 0; i < keys->elements; i++) {
            k = keys->element[i];

            if (k->type == REDIS_REPLY_STRING) {
                ngx_http_vodlms_revoke_key(link->revoke, link->log,
                                           (u_char *) k->str, k->len);
            }
        }
        return;

    default:
        return;
    }
}
