/*
 * A shared-memory answer cache: every worker sees every answer.  Keys are
 * stored as SHA-256 digests of (namespace, key), so that session tokens
 * never sit in shared memory; values are small byte strings with their own
 * expiry.  A red-black tree for lookup, one ordered by expiry for
 * reclaiming, and an LRU queue per lane (positive, negative) for eviction,
 * under the slab pool's mutex.
 */

#ifndef NGX_VODLMS_SHM_CACHE_H
#define NGX_VODLMS_SHM_CACHE_H

#include <ngx_config.h>
#include <ngx_core.h>


/* an enrollment row with a 24-hour lecture's coverage in hex (4321 bytes) */
#define NGX_VODLMS_CACHE_VALUE_MAX  8192


typedef struct {
    ngx_atomic_uint_t           hits;
    ngx_atomic_uint_t           misses;
    ngx_atomic_uint_t           stores;
    ngx_atomic_uint_t           evictions;
    ngx_atomic_uint_t           entries;
    ngx_atomic_uint_t           negative_entries;
    ngx_atomic_uint_t           negative_evictions;
} ngx_vodlms_shm_cache_stats_t;


char *ngx_vodlms_shm_cache_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* a zone made by the module itself (NULL: logged) */
ngx_shm_zone_t *ngx_vodlms_shm_cache_add(ngx_conf_t *cf, ngx_str_t *name,
    size_t size, size_t negative);

/* a reference to a zone by name; NULL + "unknown" checked by the caller */
ngx_shm_zone_t *ngx_vodlms_shm_cache_ref(ngx_conf_t *cf, ngx_str_t *name);
ngx_int_t ngx_vodlms_shm_cache_defined(ngx_shm_zone_t *zone);

/*
 * NGX_OK: hit, *len bytes copied to buf; NGX_DECLINED: miss or expired.
 * log (the request's) gets the debug lines: hit, miss, expired, store,
 * evict; a key appears there only as the first bytes of its digest.
 */
ngx_int_t ngx_vodlms_shm_cache_get(ngx_shm_zone_t *zone, ngx_log_t *log,
    ngx_str_t *ns, ngx_str_t *key, u_char *buf, size_t size, size_t *len);

/* NGX_OK, or NGX_DECLINED when it did not fit (the caller goes on) */
ngx_int_t ngx_vodlms_shm_cache_put(ngx_shm_zone_t *zone, ngx_log_t *log,
    ngx_str_t *ns, ngx_str_t *key, u_char *value, size_t len,
    ngx_msec_t ttl);

/*
 * The same for a negative answer (no such session or video, a refusal):
 * it goes to the zone's negative lane, bounded by negative=, and makes
 * room only by evicting other negative answers.
 */
ngx_int_t ngx_vodlms_shm_cache_put_negative(ngx_shm_zone_t *zone,
    ngx_log_t *log, ngx_str_t *ns, ngx_str_t *key, u_char *value, size_t len,
    ngx_msec_t ttl);

/*
 * Drop the answer stored under (ns, key), in either lane: NGX_OK when there
 * was one, NGX_DECLINED when not.  For invalidation (a key changed in the
 * backend): a lookup by digest, no scan.
 */
ngx_int_t ngx_vodlms_shm_cache_drop(ngx_shm_zone_t *zone, ngx_log_t *log,
    ngx_str_t *ns, ngx_str_t *key);

/* is this one of ours a cache zone (and not another vodlms zone)? */
ngx_int_t ngx_vodlms_shm_cache_is(ngx_shm_zone_t *zone);

void ngx_vodlms_shm_cache_get_stats(ngx_shm_zone_t *zone,
    ngx_vodlms_shm_cache_stats_t *stats);


#endif /* NGX_VODLMS_SHM_CACHE_H */
