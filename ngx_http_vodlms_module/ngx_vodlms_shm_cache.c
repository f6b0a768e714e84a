/*
 * Shared-memory answer cache (see ngx_vodlms_shm_cache.h).
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include <openssl/evp.h>

#include "ngx_vodlms_shm_cache.h"


#define NGX_VODLMS_DIGEST_LEN   32
#define NGX_VODLMS_KEY_MAX      2048

/* how many expired entries one store may reclaim before it evicts live ones */
#define NGX_VODLMS_EXPIRE_SCAN  8


typedef struct {
    ngx_rbtree_node_t              node;      /* key: digest's first bytes */
    ngx_queue_t                    queue;     /* LRU, most recent first */
    ngx_msec_t                     expires;
    u_char                         digest[NGX_VODLMS_DIGEST_LEN];
    u_short                        len;
    u_char                         data[1];
} ngx_vodlms_shm_cache_node_t;


typedef struct {
    ngx_rbtree_t                   rbtree;
    ngx_rbtree_node_t              sentinel;
    ngx_queue_t                    lru;
    ngx_vodlms_shm_cache_stats_t   stats;
} ngx_vodlms_shm_cache_sh_t;


typedef struct {
    ngx_vodlms_shm_cache_sh_t     *sh;
    ngx_slab_pool_t               *shpool;

    /*
     * SHA-256, fetched once with the configuration: EVP_sha256() in every
     * EVP_Digest() makes OpenSSL 3 look the algorithm up (under a lock) on
     * each cache lookup.  The context is reused too: EVP_Digest() makes
     * and frees one (malloc, cleanse, free) per call.  Each worker has its
     * own copy of this structure after fork(), and a worker is one thread.
     * Both are freed with the configuration's pool.
     */
    EVP_MD                        *sha256;
    EVP_MD_CTX                    *md_ctx;
} ngx_vodlms_shm_cache_t;


extern ngx_module_t  ngx_http_vodlms_module;


static ngx_int_t ngx_vodlms_shm_cache_init(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_vodlms_shm_cache_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static void ngx_vodlms_shm_cache_free_md(void *data);
static ngx_int_t ngx_vodlms_shm_cache_digest(ngx_vodlms_shm_cache_t *cache,
    ngx_str_t *ns, ngx_str_t *key, u_char *digest);
static ngx_vodlms_shm_cache_node_t *ngx_vodlms_shm_cache_find(
    ngx_vodlms_shm_cache_t *cache, u_char *digest);
static void ngx_vodlms_shm_cache_delete(ngx_vodlms_shm_cache_t *cache,
    ngx_vodlms_shm_cache_node_t *cn);
#if (NGX_DEBUG)
static ngx_str_t *ngx_vodlms_shm_cache_label(ngx_str_t *ns, ngx_str_t *label);
#endif


/* vodlms_cache_zone zone=name:size; */

char *
ngx_vodlms_shm_cache_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    u_char                  *p;
    ssize_t                  size;
    ngx_str_t               *value, name, s;
    ngx_shm_zone_t          *shm_zone;
    ngx_pool_cleanup_t      *cln;
    ngx_vodlms_shm_cache_t  *cache;

    value = cf->args->elts;

    if (ngx_strncmp(value[1].data, "zone=", 5) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\", expected "
                           "\"zone=name:size\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    name.data = value[1].data + 5;

    p = (u_char *) ngx_strchr(name.data, ':');

    if (p == NULL || p == name.data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone \"%V\", expected \"name:size\"",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    name.len = p - name.data;

    s.data = p + 1;
    s.len = value[1].data + value[1].len - s.data;

    size = ngx_parse_size(&s);

    if (size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small, at least %uz bytes "
                           "are needed", &name, 8 * ngx_pagesize);
        return NGX_CONF_ERROR;
    }

    cache = ngx_pcalloc(cf->pool, sizeof(ngx_vodlms_shm_cache_t));
    if (cache == NULL) {
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_vodlms_shm_cache_free_md;
    cln->data = cache;

    cache->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    cache->md_ctx = EVP_MD_CTX_new();

    if (cache->sha256 == NULL || cache->md_ctx == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\": cannot set up SHA-256 for the "
                           "cache keys (OpenSSL: %s)", &name,
                           cache->sha256 == NULL ? "no implementation"
                                                 : "out of memory");
        return NGX_CONF_ERROR;
    }

    shm_zone = ngx_shared_memory_add(cf, &name, size, &ngx_http_vodlms_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    shm_zone->init = ngx_vodlms_shm_cache_init;
    shm_zone->data = cache;

    return NGX_CONF_OK;
}


ngx_shm_zone_t *
ngx_vodlms_shm_cache_ref(ngx_conf_t *cf, ngx_str_t *name)
{
    /* size 0: a reference, resolved when the zone directive is seen */
    return ngx_shared_memory_add(cf, name, 0, &ngx_http_vodlms_module);
}


ngx_int_t
ngx_vodlms_shm_cache_defined(ngx_shm_zone_t *zone)
{
    return zone->data != NULL;
}


static ngx_int_t
ngx_vodlms_shm_cache_init(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_vodlms_shm_cache_t  *ocache = data;

    size_t                   len;
    ngx_vodlms_shm_cache_t  *cache;

    cache = shm_zone->data;

    if (ocache) {
        /* a reload with the same zone: the answers stay valid */
        cache->sh = ocache->sh;
        cache->shpool = ocache->shpool;
        return NGX_OK;
    }

    cache->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        cache->sh = cache->shpool->data;
        return NGX_OK;
    }

    cache->sh = ngx_slab_calloc(cache->shpool,
                                sizeof(ngx_vodlms_shm_cache_sh_t));
    if (cache->sh == NULL) {
        return NGX_ERROR;
    }

    cache->shpool->data = cache->sh;

    ngx_rbtree_init(&cache->sh->rbtree, &cache->sh->sentinel,
                    ngx_vodlms_shm_cache_insert_value);
    ngx_queue_init(&cache->sh->lru);

    len = sizeof(" in vodlms_cache_zone \"\"") + shm_zone->shm.name.len;

    cache->shpool->log_ctx = ngx_slab_alloc(cache->shpool, len);
    if (cache->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(cache->shpool->log_ctx, " in vodlms_cache_zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full cache evicts; running out of slab memory is not news */
    cache->shpool->log_nomem = 0;

    return NGX_OK;
}


static void
ngx_vodlms_shm_cache_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t           **p;
    ngx_vodlms_shm_cache_node_t  *cn, *cnt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            cn = (ngx_vodlms_shm_cache_node_t *) node;
            cnt = (ngx_vodlms_shm_cache_node_t *) temp;

            p = (ngx_memcmp(cn->digest, cnt->digest, NGX_VODLMS_DIGEST_LEN)
                 < 0) ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


static void
ngx_vodlms_shm_cache_free_md(void *data)
{
    ngx_vodlms_shm_cache_t  *cache = data;

    EVP_MD_CTX_free(cache->md_ctx);
    EVP_MD_free(cache->sha256);
    cache->md_ctx = NULL;
    cache->sha256 = NULL;
}


static ngx_int_t
ngx_vodlms_shm_cache_digest(ngx_vodlms_shm_cache_t *cache, ngx_str_t *ns,
    ngx_str_t *key, u_char *digest)
{
    u_char        *p;
    unsigned int   dlen;

    u_char  buf[NGX_VODLMS_KEY_MAX];

    if (ns->len + 1 + key->len > NGX_VODLMS_KEY_MAX) {
        return NGX_DECLINED;
    }

    /*
     * "ns\0key": the separator keeps ("a", "bc") apart from ("ab", "c").
     * One update of the joined bytes: each EVP call is a provider dispatch.
     */

    p = ngx_cpymem(buf, ns->data, ns->len);
    *p++ = '\0';
    p = ngx_cpymem(p, key->data, key->len);

    if (EVP_DigestInit_ex2(cache->md_ctx, cache->sha256, NULL) != 1
        || EVP_DigestUpdate(cache->md_ctx, buf, p - buf) != 1
        || EVP_DigestFinal_ex(cache->md_ctx, digest, &dlen) != 1
        || dlen != NGX_VODLMS_DIGEST_LEN)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_vodlms_shm_cache_node_t *
ngx_vodlms_shm_cache_find(ngx_vodlms_shm_cache_t *cache, u_char *digest)
{
    ngx_int_t                     rc;
    ngx_rbtree_key_t              hash;
    ngx_rbtree_node_t            *node, *sentinel;
    ngx_vodlms_shm_cache_node_t  *cn;

    ngx_memcpy(&hash, digest, sizeof(ngx_rbtree_key_t));

    node = cache->sh->rbtree.root;
    sentinel = cache->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        cn = (ngx_vodlms_shm_cache_node_t *) node;

        rc = ngx_memcmp(digest, cn->digest, NGX_VODLMS_DIGEST_LEN);

        if (rc == 0) {
            return cn;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static void
ngx_vodlms_shm_cache_delete(ngx_vodlms_shm_cache_t *cache,
    ngx_vodlms_shm_cache_node_t *cn)
{
    ngx_queue_remove(&cn->queue);
    ngx_rbtree_delete(&cache->sh->rbtree, &cn->node);
    ngx_slab_free_locked(cache->shpool, cn);
    cache->sh->stats.entries--;
}


#if (NGX_DEBUG)

/* a namespace for debug lines: its kind ("session", "enroll", "cfsig"...) */

static ngx_str_t *
ngx_vodlms_shm_cache_label(ngx_str_t *ns, ngx_str_t *label)
{
    u_char  *bar;

    bar = ngx_strlchr(ns->data, ns->data + ns->len, '|');

    label->data = ns->data;
    label->len = bar ? (size_t) (bar - ns->data) : ns->len;

    return label;
}

#endif


ngx_int_t
ngx_vodlms_shm_cache_get(ngx_shm_zone_t *zone, ngx_log_t *log, ngx_str_t *ns,
    ngx_str_t *key, u_char *buf, size_t size, size_t *len)
{
    u_char                        digest[NGX_VODLMS_DIGEST_LEN];
    ngx_int_t                     rc;
    ngx_vodlms_shm_cache_t       *cache;
    ngx_vodlms_shm_cache_node_t  *cn;

#if (NGX_DEBUG)
    ngx_str_t                     label;
    const char                   *miss;
#endif

    cache = zone->data;

    if (ngx_vodlms_shm_cache_digest(cache, ns, key, digest) != NGX_OK) {
        return NGX_DECLINED;
    }
    rc = NGX_DECLINED;

    ngx_shmtx_lock(&cache->shpool->mutex);

    cn = ngx_vodlms_shm_cache_find(cache, digest);

#if (NGX_DEBUG)
    miss = "miss";
#endif

    if (cn != NULL) {
        if ((ngx_msec_int_t) (cn->expires - ngx_current_msec) <= 0) {
#if (NGX_DEBUG)
            miss = "miss, expired";
#endif
            ngx_vodlms_shm_cache_delete(cache, cn);

        } else if (cn->len <= size) {
            ngx_memcpy(buf, cn->data, cn->len);
            *len = cn->len;

            ngx_log_debug6(NGX_LOG_DEBUG_HTTP, log, 0,
                           "vodlms cache: hit, \"%V\" %*xs in zone \"%V\", "
                           "%uz bytes, expires in %M ms",
                           ngx_vodlms_shm_cache_label(ns, &label),
                           (size_t) 4, digest, &zone->shm.name,
                           (size_t) cn->len, cn->expires - ngx_current_msec);

            ngx_queue_remove(&cn->queue);
            ngx_queue_insert_head(&cache->sh->lru, &cn->queue);

            rc = NGX_OK;

#if (NGX_DEBUG)
        } else {
            miss = "miss, too large for the caller";
#endif
        }
    }

    if (rc == NGX_OK) {
        cache->sh->stats.hits++;

    } else {
        cache->sh->stats.misses++;

        ngx_log_debug5(NGX_LOG_DEBUG_HTTP, log, 0,
                       "vodlms cache: %s, \"%V\" %*xs in zone \"%V\"",
                       miss, ngx_vodlms_shm_cache_label(ns, &label),
                       (size_t) 4, digest, &zone->shm.name);
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);

    return rc;
}


ngx_int_t
ngx_vodlms_shm_cache_put(ngx_shm_zone_t *zone, ngx_log_t *log, ngx_str_t *ns,
    ngx_str_t *key, u_char *value, size_t len, ngx_msec_t ttl)
{
    u_char                        digest[NGX_VODLMS_DIGEST_LEN];
    size_t                        n;
    ngx_uint_t                    i;
    ngx_queue_t                  *q;
    ngx_vodlms_shm_cache_t       *cache;
    ngx_vodlms_shm_cache_node_t  *cn, *old;

#if (NGX_DEBUG)
    ngx_str_t                     label;
#endif

    if (ttl == 0 || len > NGX_VODLMS_CACHE_VALUE_MAX) {
        return NGX_DECLINED;
    }

    cache = zone->data;

    if (ngx_vodlms_shm_cache_digest(cache, ns, key, digest) != NGX_OK) {
        return NGX_DECLINED;
    }

    n = offsetof(ngx_vodlms_shm_cache_node_t, data) + len;

    ngx_shmtx_lock(&cache->shpool->mutex);

    old = ngx_vodlms_shm_cache_find(cache, digest);
    if (old) {
        ngx_log_debug4(NGX_LOG_DEBUG_HTTP, log, 0,
                       "vodlms cache: replace, \"%V\" %*xs in zone \"%V\"",
                       ngx_vodlms_shm_cache_label(ns, &label),
                       (size_t) 4, digest, &zone->shm.name);

        ngx_vodlms_shm_cache_delete(cache, old);
    }

    /* reclaim a few expired entries from the cold end on every store */

    for (i = 0; i < NGX_VODLMS_EXPIRE_SCAN; i++) {
        if (ngx_queue_empty(&cache->sh->lru)) {
            break;
        }

        q = ngx_queue_last(&cache->sh->lru);
        old = ngx_queue_data(q, ngx_vodlms_shm_cache_node_t, queue);

        if ((ngx_msec_int_t) (old->expires - ngx_current_msec) > 0) {
            break;
        }

        ngx_log_debug4(NGX_LOG_DEBUG_HTTP, log, 0,
                       "vodlms cache: expire, %*xs in zone \"%V\", "
                       "expired %M ms ago", (size_t) 4, old->digest,
                       &zone->shm.name, ngx_current_msec - old->expires);

        ngx_vodlms_shm_cache_delete(cache, old);
    }

    cn = ngx_slab_alloc_locked(cache->shpool, n);

    /* full: the least recently used answers make room */

    while (cn == NULL && !ngx_queue_empty(&cache->sh->lru)) {
        q = ngx_queue_last(&cache->sh->lru);
        old = ngx_queue_data(q, ngx_vodlms_shm_cache_node_t, queue);

        ngx_log_debug4(NGX_LOG_DEBUG_HTTP, log, 0,
                       "vodlms cache: evict, %*xs in zone \"%V\", "
                       "the least recently used, %M ms before it expires",
                       (size_t) 4, old->digest, &zone->shm.name,
                       old->expires - ngx_current_msec);

        ngx_vodlms_shm_cache_delete(cache, old);
        cache->sh->stats.evictions++;

        cn = ngx_slab_alloc_locked(cache->shpool, n);
    }

    if (cn == NULL) {
        ngx_shmtx_unlock(&cache->shpool->mutex);

        ngx_log_debug4(NGX_LOG_DEBUG_HTTP, log, 0,
                       "vodlms cache: not stored, \"%V\" %*xs in zone "
                       "\"%V\": no room",
                       ngx_vodlms_shm_cache_label(ns, &label),
                       (size_t) 4, digest, &zone->shm.name);

        return NGX_DECLINED;
    }

    ngx_memcpy(&cn->node.key, digest, sizeof(ngx_rbtree_key_t));
    ngx_memcpy(cn->digest, digest, NGX_VODLMS_DIGEST_LEN);
    cn->expires = ngx_current_msec + ttl;
    cn->len = (u_short) len;
    ngx_memcpy(cn->data, value, len);

    ngx_rbtree_insert(&cache->sh->rbtree, &cn->node);
    ngx_queue_insert_head(&cache->sh->lru, &cn->queue);

    cache->sh->stats.stores++;
    cache->sh->stats.entries++;

    ngx_shmtx_unlock(&cache->shpool->mutex);

    ngx_log_debug6(NGX_LOG_DEBUG_HTTP, log, 0,
                   "vodlms cache: store, \"%V\" %*xs in zone \"%V\", "
                   "%uz bytes, for %M ms",
                   ngx_vodlms_shm_cache_label(ns, &label),
                   (size_t) 4, digest, &zone->shm.name, len, ttl);

    return NGX_OK;
}


void
ngx_vodlms_shm_cache_get_stats(ngx_shm_zone_t *zone,
    ngx_vodlms_shm_cache_stats_t *stats)
{
    ngx_vodlms_shm_cache_t  *cache = zone->data;

    ngx_shmtx_lock(&cache->shpool->mutex);
    *stats = cache->sh->stats;
    ngx_shmtx_unlock(&cache->shpool->mutex);
}


ngx_int_t
ngx_vodlms_shm_cache_is(ngx_shm_zone_t *zone)
{
    return zone->init == ngx_vodlms_shm_cache_init;
}
