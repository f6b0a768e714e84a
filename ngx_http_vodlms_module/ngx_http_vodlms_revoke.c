/*
 * Instant session revocation (see ngx_http_vodlms_revoke.h): configuration,
 * the shared zone, what requests check, and evictions.  The Redis side is
 * in ngx_http_vodlms_revoke_link.c.
 *
 * Cached session answers are keyed by a digest of (namespace, token), not
 * by the Redis key name.  Each location that caches with invalidation
 * registers its (zone, namespace, key prefix); an invalidated key name
 * prefix + token then names its cached answers exactly: one digest per
 * registered location, no scan.
 */

#include "ngx_http_vodlms_module.h"
#include "ngx_http_vodlms_revoke_internal.h"


static ngx_int_t ngx_http_vodlms_revoke_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);


/* the zone's tag: a zone of this kind only, as ngx_vodlms_shm_cache.c's */
static ngx_uint_t  ngx_http_vodlms_revoke_tag;


ngx_http_vodlms_revoke_t *
ngx_http_vodlms_revoke_register(ngx_conf_t *cf, ngx_shm_zone_t *zone,
    ngx_str_t *ns, ngx_str_t *prefix)
{
    ngx_str_t                         name;
    ngx_uint_t                        i;
    ngx_http_vodlms_revoke_t         *rv;
    ngx_http_vodlms_main_conf_t      *vmcf;
    ngx_http_vodlms_revoke_target_t  *t;

    vmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_vodlms_module);

    rv = vmcf->revoke;

    if (rv == NULL) {
        rv = ngx_pcalloc(cf->pool, sizeof(ngx_http_vodlms_revoke_t));
        if (rv == NULL) {
            return NULL;
        }

        if (ngx_array_init(&rv->targets, cf->pool, 4,
                           sizeof(ngx_http_vodlms_revoke_target_t))
            != NGX_OK)
        {
            return NULL;
        }

        ngx_str_set(&name, "vodlms_revoke");

        rv->shm_zone = ngx_shared_memory_add(cf, &name,
                                             NGX_HTTP_VODLMS_REVOKE_ZONE_SIZE,
                                             &ngx_http_vodlms_revoke_tag);
        if (rv->shm_zone == NULL) {
            return NULL;
        }

        rv->shm_zone->init = ngx_http_vodlms_revoke_init_zone;
        rv->shm_zone->data = rv;

        vmcf->revoke = rv;
    }

    /* locations inherit their parent's settings: one target each */

    t = rv->targets.elts;

    for (i = 0; i < rv->targets.nelts; i++) {
        if (t[i].zone == zone
            && t[i].ns.len == ns->len
            && ngx_memcmp(t[i].ns.data, ns->data, ns->len) == 0)
        {
            return rv;
        }
    }

    t = ngx_array_push(&rv->targets);
    if (t == NULL) {
        return NULL;
    }

    t->zone = zone;
    t->ns = *ns;
    t->prefix = *prefix;

    return rv;
}


static ngx_int_t
ngx_http_vodlms_revoke_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_vodlms_revoke_t  *orv = data;

    ngx_slab_pool_t           *shpool;
    ngx_http_vodlms_revoke_t  *rv;

    rv = shm_zone->data;

    if (orv) {
        /* a reload: the stamps and the generation go on */
        rv->sh = orv->sh;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        rv->sh = shpool->data;
        return NGX_OK;
    }

    rv->sh = ngx_slab_calloc(shpool, sizeof(ngx_http_vodlms_revoke_sh_t));
    if (rv->sh == NULL) {
        return NGX_ERROR;
    }

    /*
     * Unique to this zone's making: answers cached under an earlier zone
     * (invalidation switched off by one reload, on again by the next, the
     * cache zone kept) carry generations this one never takes, so none of
     * them counts as fresh
     */
    if (sizeof(ngx_atomic_uint_t) == 8) {
        rv->sh->generation = ((ngx_atomic_uint_t) ngx_time() << 20)
                             | (ngx_random() & 0xfffff);

    } else {
        /* room for 2^30 bumps before ngx_atoi()'s limit */
        rv->sh->generation = (ngx_atomic_uint_t) ngx_random() & 0x3fffffff;
    }

    shpool->data = rv->sh;

    return NGX_OK;
}


/* request time */

void
ngx_http_vodlms_revoke_seen(ngx_http_vodlms_revoke_t *rv, u_char *key,
    size_t len, ngx_http_vodlms_revoke_seen_t *seen)
{
    seen->slot = ngx_murmur_hash2(key, len) % NGX_HTTP_VODLMS_REVOKE_SLOTS;
    seen->generation = rv->sh->generation;
    seen->stamp = rv->sh->stamps[seen->slot];
}


/*
 * Called after the answer is stored.  The link bumps a key's stamp before
 * it evicts: either it evicted after our store, or we see the new stamp
 * here (both steps are full barriers: an atomic add, the zone's mutex).
 */

ngx_int_t
ngx_http_vodlms_revoke_moved(ngx_http_vodlms_revoke_t *rv,
    ngx_http_vodlms_revoke_seen_t *seen)
{
    return rv->sh->stamps[seen->slot] != seen->stamp
           || rv->sh->generation != seen->generation;
}


ngx_atomic_uint_t
ngx_http_vodlms_revoke_generation(ngx_http_vodlms_revoke_t *rv)
{
    return rv->sh->generation;
}


/* evictions (the link, in worker 0) */

void
ngx_http_vodlms_revoke_key(ngx_http_vodlms_revoke_t *rv, ngx_log_t *log,
    u_char *key, size_t len)
{
    ngx_str_t                         token;
    ngx_uint_t                        i, slot, n;
    ngx_http_vodlms_revoke_target_t  *t;

    slot = ngx_murmur_hash2(key, len) % NGX_HTTP_VODLMS_REVOKE_SLOTS;

    (void) ngx_atomic_fetch_add(&rv->sh->stamps[slot], 1);
    (void) ngx_atomic_fetch_add(&rv->sh->keys, 1);

    n = 0;
    t = rv->targets.elts;

    for (i = 0; i < rv->targets.nelts; i++) {

        if (len <= t[i].prefix.len
            || ngx_memcmp(key, t[i].prefix.data, t[i].prefix.len) != 0)
        {
            continue;
        }

        token.data = key + t[i].prefix.len;
        token.len = len - t[i].prefix.len;

        if (ngx_vodlms_shm_cache_drop(t[i].zone, log, &t[i].ns, &token)
            == NGX_OK)
        {
            n++;
        }
    }

    if (n) {
        (void) ngx_atomic_fetch_add(&rv->sh->evicted, n);
    }

    /* the key holds a token: never logged, not even in part */
    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, log, 0,
                   "vodlms revoke: a key of %uz bytes changed, stamp %ui, "
                   "%ui cached answers dropped", len, slot, n);
}


void
ngx_http_vodlms_revoke_flush(ngx_http_vodlms_revoke_t *rv)
{
    (void) ngx_atomic_fetch_add(&rv->sh->generation, 1);
    (void) ngx_atomic_fetch_add(&rv->sh->flushes, 1);
}


/* vodlms_status */

u_char *
ngx_http_vodlms_revoke_status(ngx_http_request_t *r, u_char *p, u_char *last)
{
    ngx_http_vodlms_revoke_sh_t  *sh;
    ngx_http_vodlms_main_conf_t  *vmcf;

    vmcf = ngx_http_get_module_main_conf(r, ngx_http_vodlms_module);

    if (vmcf->revoke == NULL || vmcf->revoke->sh == NULL) {
        return p;
    }

    sh = vmcf->revoke->sh;

    return ngx_slprintf(p, last,
        "# HELP vodlms_session_invalidation_up 1 while the node's Redis "
        "invalidation link is up (logouts are instant), 0 while cached "
        "session answers live their valid= time.\n"
        "# TYPE vodlms_session_invalidation_up gauge\n"
        "vodlms_session_invalidation_up %uA\n"
        "# HELP vodlms_session_invalidation_messages_total Invalidation "
        "messages from Redis.\n"
        "# TYPE vodlms_session_invalidation_messages_total counter\n"
        "vodlms_session_invalidation_messages_total %uA\n"
        "# HELP vodlms_session_invalidation_keys_total Session keys Redis "
        "said changed (deleted, set, expired).\n"
        "# TYPE vodlms_session_invalidation_keys_total counter\n"
        "vodlms_session_invalidation_keys_total %uA\n"
        "# HELP vodlms_session_invalidation_evictions_total Cached session "
        "answers dropped because their key changed.\n"
        "# TYPE vodlms_session_invalidation_evictions_total counter\n"
        "vodlms_session_invalidation_evictions_total %uA\n"
        "# HELP vodlms_session_invalidation_flushes_total Times every "
        "cached session answer was dropped (link up again, Redis "
        "flushed).\n"
        "# TYPE vodlms_session_invalidation_flushes_total counter\n"
        "vodlms_session_invalidation_flushes_total %uA\n"
        "# HELP vodlms_session_invalidation_losses_total Times the "
        "invalidation link was lost.\n"
        "# TYPE vodlms_session_invalidation_losses_total counter\n"
        "vodlms_session_invalidation_losses_total %uA\n",
        (ngx_atomic_uint_t) (sh->up != 0), (ngx_atomic_uint_t) sh->messages,
        (ngx_atomic_uint_t) sh->keys, (ngx_atomic_uint_t) sh->evicted,
        (ngx_atomic_uint_t) sh->flushes, (ngx_atomic_uint_t) sh->losses);
}


/* process hooks */

ngx_int_t
ngx_http_vodlms_revoke_init_process(ngx_cycle_t *cycle,
    ngx_http_vodlms_revoke_t *rv, ngx_vodlms_redis_conf_t *conf,
    ngx_vodlms_redis_pool_t *pool)
{
    /*
     * One link per node: the zones it evicts from are shared by all the
     * node's workers.  Worker 0, because the master starts a dead worker
     * again under the same number; not the cache manager or loader.
     */
    if ((ngx_process != NGX_PROCESS_WORKER
         && ngx_process != NGX_PROCESS_SINGLE)
        || ngx_worker != 0)
    {
        return NGX_OK;
    }

    rv->link = ngx_http_vodlms_revoke_link_start(cycle, rv, conf, pool);
    if (rv->link == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


void
ngx_http_vodlms_revoke_exit_process(ngx_http_vodlms_revoke_t *rv)
{
    if (rv->link) {
        ngx_http_vodlms_revoke_link_stop(rv->link);
        rv->link = NULL;
    }
}
