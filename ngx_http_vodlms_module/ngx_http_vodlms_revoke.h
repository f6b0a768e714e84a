/*
 * Instant session revocation: cached session answers are evicted when
 * Redis says their key changed (a logout's DEL, a login's SET, an expiry),
 * through Redis's client-side caching invalidation messages.
 *
 * One worker per node (ngx_worker 0, which the master respawns) keeps two
 * Redis connections: a subscriber (CLIENT ID, SUBSCRIBE __redis__:invalidate)
 * and a tracker (CLIENT TRACKING on REDIRECT <id> BCAST PREFIX <prefix>...),
 * which works over RESP2 and hiredis 0.14.  The cache zones are shared by
 * the node's workers, so one eviction serves them all.
 *
 * Three things in a small shared zone of its own keep every worker right:
 *   - per-key stamps (by a hash of the Redis key name), bumped before each
 *     eviction: an answer whose GET was in flight while its key changed is
 *     not kept (the invalidation may have come before it was stored);
 *   - a generation, bumped when the link (re)starts or Redis flushes: every
 *     cached session answer stored under an older one is a miss, because
 *     invalidations may have been missed while the link was down;
 *   - counters for the status page and the logs.
 * Without the link (Redis unreachable, not yet connected) answers live up
 * to their valid= time, as without this feature; the log says so.
 */

#ifndef NGX_HTTP_VODLMS_REVOKE_H
#define NGX_HTTP_VODLMS_REVOKE_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_vodlms_redis.h"


typedef struct ngx_http_vodlms_revoke_s  ngx_http_vodlms_revoke_t;


/* what a request saw before asking Redis, checked when it stores */
typedef struct {
    ngx_atomic_uint_t           generation;
    ngx_atomic_uint_t           stamp;
    ngx_uint_t                  slot;
} ngx_http_vodlms_revoke_seen_t;


/*
 * Configuration time (a location's merge): its cached session answers,
 * under namespace ns in zone, for Redis keys prefix + token, are to be
 * evicted on invalidation.  Returns the node's revocation state (made on
 * first use, with its shared zone), or NULL (logged).
 */
ngx_http_vodlms_revoke_t *ngx_http_vodlms_revoke_register(ngx_conf_t *cf,
    ngx_shm_zone_t *zone, ngx_str_t *ns, ngx_str_t *prefix);

/* request time: before the GET, and when storing its answer */
void ngx_http_vodlms_revoke_seen(ngx_http_vodlms_revoke_t *rv,
    u_char *key, size_t len, ngx_http_vodlms_revoke_seen_t *seen);
ngx_int_t ngx_http_vodlms_revoke_moved(ngx_http_vodlms_revoke_t *rv,
    ngx_http_vodlms_revoke_seen_t *seen);
ngx_atomic_uint_t ngx_http_vodlms_revoke_generation(
    ngx_http_vodlms_revoke_t *rv);

/* vodlms_status: the node's invalidation gauge and counters (p if off) */
u_char *ngx_http_vodlms_revoke_status(ngx_http_request_t *r, u_char *p,
    u_char *last);

/* process hooks (only worker 0 connects) */
ngx_int_t ngx_http_vodlms_revoke_init_process(ngx_cycle_t *cycle,
    ngx_http_vodlms_revoke_t *rv, ngx_vodlms_redis_conf_t *conf,
    ngx_vodlms_redis_pool_t *pool);
void ngx_http_vodlms_revoke_exit_process(ngx_http_vodlms_revoke_t *rv);


#endif /* NGX_HTTP_VODLMS_REVOKE_H */
