/*
 * Instant session revocation, shared by its configuration/request-time
 * file (ngx_http_vodlms_revoke.c) and its event-driven one, the Redis
 * invalidation link (ngx_http_vodlms_revoke_link.c).
 */

#ifndef NGX_HTTP_VODLMS_REVOKE_INTERNAL_H
#define NGX_HTTP_VODLMS_REVOKE_INTERNAL_H

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_vodlms_revoke.h"


/*
 * Stamps by a hash of the Redis key name.  They only have to cover the
 * milliseconds a GET is in flight, so a collision costs at most one answer
 * not kept in the cache.
 */
#define NGX_HTTP_VODLMS_REVOKE_SLOTS      1024
#define NGX_HTTP_VODLMS_REVOKE_ZONE_SIZE  (64 * 1024)


typedef struct {
    ngx_atomic_t                generation;   /* bumped: everything stale */
    ngx_atomic_t                up;           /* the pid whose link is up,
                                                 0: none */
    ngx_atomic_t                messages;     /* invalidation messages */
    ngx_atomic_t                keys;         /* key names in them */
    ngx_atomic_t                evicted;      /* cached answers dropped */
    ngx_atomic_t                flushes;
    ngx_atomic_t                losses;
    ngx_atomic_t                stamps[NGX_HTTP_VODLMS_REVOKE_SLOTS];
} ngx_http_vodlms_revoke_sh_t;


/* one location's cached session answers: zone, namespace, Redis prefix */
typedef struct {
    ngx_shm_zone_t             *zone;
    ngx_str_t                   ns;
    ngx_str_t                   prefix;
} ngx_http_vodlms_revoke_target_t;


typedef struct ngx_http_vodlms_revoke_link_s  ngx_http_vodlms_revoke_link_t;


struct ngx_http_vodlms_revoke_s {
    ngx_shm_zone_t                 *shm_zone;
    ngx_http_vodlms_revoke_sh_t    *sh;        /* set when the zone is */
    ngx_array_t                     targets;   /* of ..._revoke_target_t */
    ngx_http_vodlms_revoke_link_t  *link;      /* worker 0, at run time */
};


/* a key changed in Redis: stamp it, drop the answers cached for it */
void ngx_http_vodlms_revoke_key(ngx_http_vodlms_revoke_t *rv, ngx_log_t *log,
    u_char *key, size_t len);

/* every cached session answer of the node is stale from now on */
void ngx_http_vodlms_revoke_flush(ngx_http_vodlms_revoke_t *rv);

/* the link (ngx_http_vodlms_revoke_link.c) */
ngx_http_vodlms_revoke_link_t *ngx_http_vodlms_revoke_link_start(
    ngx_cycle_t *cycle, ngx_http_vodlms_revoke_t *rv,
    ngx_vodlms_redis_conf_t *conf, ngx_vodlms_redis_pool_t *pool);
void ngx_http_vodlms_revoke_link_stop(ngx_http_vodlms_revoke_link_t *link);


#endif /* NGX_HTTP_VODLMS_REVOKE_INTERNAL_H */
