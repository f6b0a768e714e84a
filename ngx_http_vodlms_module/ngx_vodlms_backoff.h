/*
 * The back-off both backend pools keep (ngx_vodlms_redis.c, ngx_vodlms_pg.c)
 * after failed connects: the first retry at once, then 100 ms doubling to
 * 2 s; the first good connect clears it.  Per worker and per pool, so that
 * a server that is down costs each worker a connect attempt every 2 s at
 * most, not one per request.  (The PostgreSQL pool caps it at 250 ms, and
 * holds its queries for the next connect meanwhile: see ngx_vodlms_pg.c.)
 *
 * The pools' per-query timers look alike too, but stay in each pool: a
 * Redis batch is pipelined on a connection and lives until hiredis has
 * answered every command in it (its timeout closes the connection); a
 * PostgreSQL query waits in a FIFO for a connection of its own, may time
 * out while waiting without touching any connection, and is freed when it
 * ends.  What they have in common is three nginx calls (ngx_add_timer,
 * a pool cleanup, ngx_del_timer) bound up with those different lives.
 */

#ifndef NGX_VODLMS_BACKOFF_H
#define NGX_VODLMS_BACKOFF_H

#include <ngx_config.h>
#include <ngx_core.h>


typedef struct {
    ngx_uint_t                  failures;     /* consecutive failed connects */
    ngx_msec_t                  retry_at;
} ngx_vodlms_backoff_t;


/*
 * A connect failed: counted, and the next try set.  backend ("redis",
 * "pg") and name (the server, never a secret) are for the debug line.
 */
void ngx_vodlms_backoff_failed(ngx_vodlms_backoff_t *b, ngx_log_t *log,
    const char *backend, ngx_str_t *name);

/* how long until the next connect may be tried: 0 is now */
ngx_msec_t ngx_vodlms_backoff_left(ngx_vodlms_backoff_t *b);

/* a connect succeeded: returns how many failures that ends (0: none) */
ngx_uint_t ngx_vodlms_backoff_ok(ngx_vodlms_backoff_t *b);


/*
 * The parameters both pools' directives take (vodlms_redis, vodlms_pg,
 * vodlms_pg_replica): "pool_size=N", "connect_timeout=T", "timeout=T",
 * each more than 0.  NGX_OK: v was one of them, stored; NGX_DECLINED: it
 * is none of them; NGX_ERROR: it is one, with a bad value.
 */
ngx_int_t ngx_vodlms_pool_param(ngx_str_t *v, ngx_uint_t *pool_size,
    ngx_msec_t *connect_timeout, ngx_msec_t *timeout);


#endif /* NGX_VODLMS_BACKOFF_H */
