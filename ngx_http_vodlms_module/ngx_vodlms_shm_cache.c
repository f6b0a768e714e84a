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


/*
 * Every answer is in three structures: the lookup tree (by digest), the
 * expiry tree (by expiry time: the soonest expired answer is reclaimed
 * wherever it sits in the LRU order), and its lane's LRU queue.  There are
 * two lanes.  Negative answers ("no such session", "no such video", a
 * refusal) cost an attacker nothing to create, so they live in a lane of
 * their own with its own byte bound: a flood of them evicts only other
 * negative answers, never a session or an enrollment someone is using.
 */
typedef struct {
    ngx_rbtree_node_t              node;      /* key: digest's first bytes */
    ngx_rbtree_node_t              expiry;    /* key: expiry time, msec */
    ngx_queue_t                    queue;     /* the lane's LRU, recent first */
    u_char                         digest[NGX_VODLMS_DIGEST_LEN];
    u_short                        len;
    u_char                         negative;
    u_char                         data[1];
} ngx_vodlms_shm_cache_node_t;


typedef struct {
    ngx_rbtree_t                   rbtree;
    ngx_rbtree_node_t              sentinel;
    ngx_rbtree_t                   expiry;
    ngx_rbtree_node_t              expiry_sentinel;
    ngx_queue_t                    lru;
    ngx_queue_t                    negative_lru;
    size_t                         negative_size;   /* slab bytes in use */
    size_t                         negative_max;
    ngx_vodlms_shm_cache_stats_t   stats;
} ngx_vodlms_shm_cache_sh_t;


typedef struct {
    ngx_vodlms_shm_cache_sh_t     *sh;
    ngx_slab_pool_t               *shpool;
    size_t                         negative_max;    /* from negative= */

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


/*
 * The zones' tag: cache zones only.  nginx reuses a zone on reload when its
 * name, size and tag match; with the module's own address as the tag, a
 * progress zone renamed into a cache zone of the same size would be taken
 * over with the other kind's data in it (every worker then crashes).  With
 * a tag of their own, nginx refuses that configuration instead.
 */
static ngx_uint_t  ngx_vodlms_shm_cache_tag;


/*
 * What the slab allocator takes for n bytes: the next power of two, at
 * least 8 (nodes are always below ngx_slab_max_size, half a page).  The
 * negative lane's bound counts these, not the bytes asked for.
 */
static ngx_inline size_t
ngx_vodlms_shm_cache_chunk(size_t n)
{
    size_t  chunk;

    for (chunk = 8; chunk < n; chunk <<= 1) { /* void */ }

    return chunk;
}


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
static void ngx_vodlms_shm_cache_reclaim(ngx_shm_zone_t *zone,
    ngx_log_t *log);
static ngx_int_t ngx_vodlms_shm_cache_evict(ngx_shm_zone_t *zone,
    ngx_log_t *log, ngx_queue_t *lru, ngx_atomic_uint_t *counter);
static ngx_int_t ngx_vodlms_shm_cache_store(ngx_shm_zone_t *zone,
    ngx_log_t *log, ngx_str_t *ns, ngx_str_t *key, u_char *value, size_t len,
    ngx_msec_t ttl, ngx_uint_t negative);
#if (NGX_DEBUG)
static ngx_str_t *ngx_vodlms_shm_cache_label(ngx_str_t *ns, ngx_str_t *label);
#endif


/* vodlms_cache_zone zone=name:size [negative=size]; */

char *
ngx_vodlms_shm_cache_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    u_char      *p;
    ssize_t      size, negative;
    ngx_str_t   *value, name, s;
    ngx_uint_t   i;

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

    negative = NGX_CONF_UNSET;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "negative=", 9) == 0) {
            s.data = value[i].data + 9;
            s.len = value[i].len - 9;

            negative = ngx_parse_size(&s);

            if (negative == NGX_ERROR || negative > size) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\" in zone \"%V\": a size "
                                   "no larger than the zone's", &value[i],
                                   &name);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\", expected "
                           "\"negative=size\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (negative == NGX_CONF_UNSET) {
        negative = size / 8;
    }

    if (ngx_vodlms_shm_cache_add(cf, &name, size, negative) == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


ngx_shm_zone_t *
ngx_vodlms_shm_cache_add(ngx_conf_t *cf, ngx_str_t *name, size_t size,
    size_t negative)
{
    ngx_shm_zone_t          *shm_zone;
    ngx_pool_cleanup_t      *cln;
    ngx_vodlms_shm_cache_t  *cache;

    if (size < 8 * ngx_pagesize) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small, at least %uz bytes "
                           "are needed", name, 8 * ngx_pagesize);
        return NULL;
    }

    cache = ngx_pcalloc(cf->pool, sizeof(ngx_vodlms_shm_cache_t));
    if (cache == NULL) {
        return NULL;
    }

    cache->negative_max = negative;

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_vodlms_shm_cache_free_md;
    cln->data = cache;

    cache->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    cache->md_ctx = EVP_MD_CTX_new();

    if (cache->sha256 == NULL || cache->md_ctx == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\": cannot set up SHA-256 for the "
                           "cache keys (OpenSSL: %s)", name,
                           cache->sha256 == NULL ? "no implementation"
                                                 : "out of memory");
        return NULL;
    }

    shm_zone = ngx_shared_memory_add(cf, name, size,
                                     &ngx_vodlms_shm_cache_tag);
    if (shm_zone == NULL) {
        return NULL;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\"", name);
        return NULL;
    }

    shm_zone->init = ngx_vodlms_shm_cache_init;
    shm_zone->data = cache;

    return shm_zone;
}


ngx_shm_zone_t *
ngx_vodlms_shm_cache_ref(ngx_conf_t *cf, ngx_str_t *name)
{
    /* size 0: a reference, resolved when the zone directive is seen */
    return ngx_shared_memory_add(cf, name, 0, &ngx_vodlms_shm_cache_tag);
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
        cache->sh->negative_max = cache->negative_max;
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
    ngx_rbtree_init(&cache->sh->expiry, &cache->sh->expiry_sentinel,
                    ngx_rbtree_insert_timer_value);
    ngx_queue_init(&cache->sh->lru);
    ngx_queue_init(&cache->sh->negative_lru);
    cache->sh->negative_max = cache->negative_max;

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
    if (cn->negative) {
        cache->sh->negative_size -= ngx_vodlms_shm_cache_chunk(
                        offsetof(ngx_vodlms_shm_cache_node_t, data) + cn->len);
        cache->sh->stats.negative_entries--;
    }

    ngx_queue_remove(&cn->queue);
    ngx_rbtree_delete(&cache->sh->rbtree, &cn->node);
    ngx_rbtree_delete(&cache->sh->expiry, &cn->expiry);
    ngx_slab_free_locked(cache->shpool, cn);
    cache->sh->stats.entries--;
}


/* up to NGX_VODLMS_EXPIRE_SCAN expired answers, the soonest first */

static void
ngx_vodlms_shm_cache_reclaim(ngx_shm_zone_t *zone, ngx_log_t *log)
{
    ngx_uint_t                    i;
    ngx_rbtree_node_t            *node;
    ngx_vodlms_shm_cache_t       *cache;
    ngx_vodlms_shm_cache_node_t  *cn;

    cache = zone->data;

    for (i = 0; i < NGX_VODLMS_EXPIRE_SCAN; i++) {

        if (cache->sh->expiry.root == cache->sh->expiry.sentinel) {
            return;
        }

        node = ngx_rbtree_min(cache->sh->expiry.root,
                              cache->sh->expiry.sentinel);

        if ((ngx_msec_int_t) (node->key - ngx_current_msec) > 0) {
            return;
        }

        cn = (ngx_vodlms_shm_cache_node_t *)
                 ((u_char *) node - offsetof(ngx_vodlms_shm_cache_node_t,
                                             expiry));

        ngx_log_debug5(NGX_LOG_DEBUG_HTTP, log, 0,
                       "vodlms cache: expire, %*xs in zone \"%V\"%s, "
                       "expired %M ms ago", (size_t) 4, cn->digest,
                       &zone->shm.name, cn->negative ? " (negative)" : "",
                       ngx_current_msec - cn->expiry.key);

        ngx_vodlms_shm_cache_delete(cache, cn);
    }
}


/* the oldest answer of a lane makes room; NGX_DECLINED: the lane is empty */

static ngx_int_t
ngx_vodlms_shm_cache_evict(ngx_shm_zone_t *zone, ngx_log_t *log,
    ngx_queue_t *lru, ngx_atomic_uint_t *counter)
{
    ngx_queue_t                  *q;
    ngx_vodlms_shm_cache_t       *cache;
    ngx_vodlms_shm_cache_node_t  *old;

    if (ngx_queue_empty(lru)) {
        return NGX_DECLINED;
    }

    cache = zone->data;

    q = ngx_queue_last(lru);
    old = ngx_queue_data(q, ngx_vodlms_shm_cache_node_t, queue);

    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, log, 0,
                   "vodlms cache: evict, %*xs in zone \"%V\"%s, the least "
                   "recently used, %M ms before it expires",
                   (size_t) 4, old->digest, &zone->shm.name,
                   old->negative ? " (negative lane)" : "",
                   old->expiry.key - ngx_current_msec);

    ngx_vodlms_shm_cache_delete(cache, old);
    (*counter)++;

    return NGX_OK;
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
        if ((ngx_msec_int_t) (cn->expiry.key - ngx_current_msec) <= 0) {
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
                           (size_t) cn->len, cn->expiry.key - ngx_current_msec);

            ngx_queue_remove(&cn->queue);
            ngx_queue_insert_head(cn->negative ? &cache->sh->negative_lru
                                               : &cache->sh->lru,
                                  &cn->queue);

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
    return ngx_vodlms_shm_cache_store(zone, log, ns, key, value, len, ttl, 0);
}


ngx_int_t
ngx_vodlms_shm_cache_put_negative(ngx_shm_zone_t *zone, ngx_log_t *log,
    ngx_str_t *ns, ngx_str_t *key, u_char *value, size_t len, ngx_msec_t ttl)
{
    return ngx_vodlms_shm_cache_store(zone, log, ns, key, value, len, ttl, 1);
}


static ngx_int_t
ngx_vodlms_shm_cache_store(ngx_shm_zone_t *zone, ngx_log_t *log,
    ngx_str_t *ns, ngx_str_t *key, u_char *value, size_t len, ngx_msec_t ttl,
    ngx_uint_t negative)
{
    u_char                        digest[NGX_VODLMS_DIGEST_LEN];
    size_t                        n, chunk;
    ngx_vodlms_shm_cache_t       *cache;
    ngx_vodlms_shm_cache_sh_t    *sh;
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
    chunk = ngx_vodlms_shm_cache_chunk(n);

    ngx_shmtx_lock(&cache->shpool->mutex);

    sh = cache->sh;

    old = ngx_vodlms_shm_cache_find(cache, digest);
    if (old) {
        ngx_log_debug4(NGX_LOG_DEBUG_HTTP, log, 0,
                       "vodlms cache: replace, \"%V\" %*xs in zone \"%V\"",
                       ngx_vodlms_shm_cache_label(ns, &label),
                       (size_t) 4, digest, &zone->shm.name);

        ngx_vodlms_shm_cache_delete(cache, old);
    }

    ngx_vodlms_shm_cache_reclaim(zone, log);

    if (negative) {

        /* the negative lane stays within its bound, by its own evictions */

        if (chunk > sh->negative_max) {
            goto declined;
        }

        while (sh->negative_size + chunk > sh->negative_max) {
            if (ngx_vodlms_shm_cache_evict(zone, log, &sh->negative_lru,
                                           &sh->stats.negative_evictions)
                != NGX_OK)
            {
                goto declined;
            }
        }

        cn = ngx_slab_alloc_locked(cache->shpool, n);

        /* a zone full of live answers: only negative ones make room */

        while (cn == NULL
               && ngx_vodlms_shm_cache_evict(zone, log, &sh->negative_lru,
                                             &sh->stats.negative_evictions)
                  == NGX_OK)
        {
            cn = ngx_slab_alloc_locked(cache->shpool, n);
        }

    } else {
        cn = ngx_slab_alloc_locked(cache->shpool, n);

        /* full: negative answers go first, then the least recently used */

        while (cn == NULL
               && (ngx_vodlms_shm_cache_evict(zone, log, &sh->negative_lru,
                                              &sh->stats.negative_evictions)
                   == NGX_OK
                   || ngx_vodlms_shm_cache_evict(zone, log, &sh->lru,
                                                 &sh->stats.evictions)
                      == NGX_OK))
        {
            cn = ngx_slab_alloc_locked(cache->shpool, n);
        }
    }

    if (cn == NULL) {
        goto declined;
    }

    ngx_memcpy(&cn->node.key, digest, sizeof(ngx_rbtree_key_t));
    ngx_memcpy(cn->digest, digest, NGX_VODLMS_DIGEST_LEN);
    cn->expiry.key = ngx_current_msec + ttl;
    cn->len = (u_short) len;
    cn->negative = (u_char) negative;
    ngx_memcpy(cn->data, value, len);

    ngx_rbtree_insert(&sh->rbtree, &cn->node);
    ngx_rbtree_insert(&sh->expiry, &cn->expiry);

    if (negative) {
        ngx_queue_insert_head(&sh->negative_lru, &cn->queue);
        sh->negative_size += chunk;
        sh->stats.negative_entries++;

    } else {
        ngx_queue_insert_head(&sh->lru, &cn->queue);
    }

    sh->stats.stores++;
    sh->stats.entries++;

    ngx_shmtx_unlock(&cache->shpool->mutex);

    ngx_log_debug7(NGX_LOG_DEBUG_HTTP, log, 0,
                   "vodlms cache: store, \"%V\" %*xs in zone \"%V\"%s, "
                   "%uz bytes, for %M ms",
                   ngx_vodlms_shm_cache_label(ns, &label),
                   (size_t) 4, digest, &zone->shm.name,
                   negative ? " (negative lane)" : "", len, ttl);

    return NGX_OK;

declined:

    ngx_shmtx_unlock(&cache->shpool->mutex);

    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, log, 0,
                   "vodlms cache: not stored, \"%V\" %*xs in zone \"%V\"%s: "
                   "no room", ngx_vodlms_shm_cache_label(ns, &label),
                   (size_t) 4, digest, &zone->shm.name,
                   negative ? " (negative lane)" : "");

    return NGX_DECLINED;
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
    return zone->tag == &ngx_vodlms_shm_cache_tag
           && zone->init == ngx_vodlms_shm_cache_init;
}


ngx_int_t
ngx_vodlms_shm_cache_drop(ngx_shm_zone_t *zone, ngx_log_t *log,
    ngx_str_t *ns, ngx_str_t *key)
{
    u_char                        digest[NGX_VODLMS_DIGEST_LEN];
    ngx_vodlms_shm_cache_t       *cache;
    ngx_vodlms_shm_cache_node_t  *cn;

#if (NGX_DEBUG)
    ngx_str_t                     label;
#endif

    cache = zone->data;

    if (ngx_vodlms_shm_cache_digest(cache, ns, key, digest) != NGX_OK) {
        return NGX_DECLINED;
    }

    ngx_shmtx_lock(&cache->shpool->mutex);

    cn = ngx_vodlms_shm_cache_find(cache, digest);

    if (cn != NULL) {
        ngx_log_debug5(NGX_LOG_DEBUG_HTTP, log, 0,
                       "vodlms cache: drop, \"%V\" %*xs in zone \"%V\"%s",
                       ngx_vodlms_shm_cache_label(ns, &label),
                       (size_t) 4, digest, &zone->shm.name,
                       cn->negative ? " (negative lane)" : "");

        ngx_vodlms_shm_cache_delete(cache, cn);
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);

    return cn != NULL ? NGX_OK : NGX_DECLINED;
}
