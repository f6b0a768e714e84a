/*
 * Watch progress: the shared-memory buffer.
 *
 * One entry per (user, video) in a red-black tree keyed by crc32, on one
 * of two queues (see ngx_http_vodlms_progress_internal.h).  Room for a new
 * entry is made by evicting clean entries from the tail of their own
 * queue, so a full zone costs a refused beacon O(1) under the lock however
 * many entries wait for the database: with no clean entry there is nothing
 * to walk, and the beacon is refused at once.
 */

#include "ngx_http_vodlms_progress_internal.h"


/* progress zones only (see ngx_vodlms_shm_cache.c: a zone's kind is its tag) */
static ngx_uint_t  ngx_http_vodlms_progress_zone_tag;


static ngx_int_t ngx_http_vodlms_progress_init_zone(ngx_shm_zone_t *zone,
    void *data);
static ngx_http_vodlms_progress_node_t *ngx_http_vodlms_progress_alloc(
    ngx_http_vodlms_progress_zone_t *z, size_t n, ngx_log_t *log);
static void ngx_http_vodlms_progress_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);


uint32_t
ngx_http_vodlms_progress_hash(ngx_str_t *user, ngx_str_t *video)
{
    uint32_t  crc;

    ngx_crc32_init(crc);
    ngx_crc32_update(&crc, user->data, user->len);
    ngx_crc32_update(&crc, (u_char *) "", 1);
    ngx_crc32_update(&crc, video->data, video->len);
    ngx_crc32_final(crc);

    return crc;
}


ngx_http_vodlms_progress_node_t *
ngx_http_vodlms_progress_find(ngx_http_vodlms_progress_zone_t *z,
    uint32_t hash, ngx_str_t *user, ngx_str_t *video)
{
    ngx_int_t                         rc;
    ngx_rbtree_node_t                *node, *sentinel;
    ngx_http_vodlms_progress_node_t  *pn;

    node = z->sh->rbtree.root;
    sentinel = z->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        pn = (ngx_http_vodlms_progress_node_t *) node;

        rc = ngx_memn2cmp(user->data, pn->data, user->len, pn->user_len);
        if (rc == 0) {
            rc = ngx_memn2cmp(video->data, pn->data + pn->user_len,
                              video->len, pn->video_len);
        }

        if (rc == 0) {
            return pn;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


/* too frequent: coalesced anyway; past the rate, refused */

static ngx_uint_t
ngx_http_vodlms_progress_over_rate(ngx_http_vodlms_progress_node_t *node,
    ngx_http_vodlms_progress_conf_t *pcf, ngx_msec_t now)
{
    if (pcf->rate == 0) {
        return 0;
    }

    if (now - node->window_start >= pcf->rate_window) {
        node->window_start = now;
        node->window_count = 0;
    }

    return ++node->window_count > pcf->rate;
}


/*
 * n bytes for an entry.  Full: clean entries make room, least recently
 * cleaned first.  Each eviction is O(1), and each entry is evicted at most
 * once, so a new entry costs O(1) amortised.  Dirty entries are never on
 * that queue, never dropped.  NULL: only dirty entries are left.
 */

static ngx_http_vodlms_progress_node_t *
ngx_http_vodlms_progress_alloc(ngx_http_vodlms_progress_zone_t *z, size_t n,
    ngx_log_t *log)
{
    ngx_http_vodlms_progress_node_t  *node, *old;
#if (NGX_DEBUG)
    ngx_str_t                         ou, ov;
#endif

    node = ngx_slab_alloc_locked(z->shpool, n);

    while (node == NULL) {

        if (ngx_queue_empty(&z->sh->clean)) {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, log, 0,
                           "vodlms progress: no clean entry to evict, all "
                           "%ui entries are waiting for the database",
                           z->sh->dirty_n);

            return NULL;
        }

        old = ngx_queue_data(ngx_queue_last(&z->sh->clean),
                             ngx_http_vodlms_progress_node_t, queue);

#if (NGX_DEBUG)
        ou.len = old->user_len;
        ou.data = old->data;
        ov.len = old->video_len;
        ov.data = old->data + old->user_len;

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log, 0,
                       "vodlms progress: entry evicted (clean, least "
                       "recently cleaned): user \"%V\" video \"%V\"",
                       &ou, &ov);
#endif

        ngx_http_vodlms_progress_free(z, old);

        node = ngx_slab_alloc_locked(z->shpool, n);
    }

    return node;
}


ngx_http_vodlms_entry_e
ngx_http_vodlms_progress_entry(ngx_http_vodlms_progress_zone_t *z,
    uint32_t hash, ngx_str_t *user, ngx_str_t *video, size_t cov_size,
    ngx_http_vodlms_progress_conf_t *pcf, ngx_msec_t now, ngx_log_t *log,
    ngx_http_vodlms_progress_node_t **np)
{
    size_t                            n;
    ngx_http_vodlms_progress_node_t  *node;

    node = ngx_http_vodlms_progress_find(z, hash, user, video);

    if (node) {
        *np = node;

        /* before anything is allocated or evicted */
        if (ngx_http_vodlms_progress_over_rate(node, pcf, now)) {
            return NGX_HTTP_VODLMS_ENTRY_RATE;
        }

        return NGX_HTTP_VODLMS_ENTRY_FOUND;
    }

    n = offsetof(ngx_http_vodlms_progress_node_t, data)
        + user->len + video->len + cov_size;

    node = ngx_http_vodlms_progress_alloc(z, n, log);

    if (node == NULL) {
        z->sh->full++;
        return NGX_HTTP_VODLMS_ENTRY_FULL;
    }

    ngx_memzero(node, n);
    node->node.key = hash;
    node->user_len = (u_char) user->len;
    node->video_len = (u_char) video->len;
    ngx_memcpy(node->data, user->data, user->len);
    ngx_memcpy(node->data + user->len, video->data, video->len);

    /* this beacon opens the entry's first window */
    node->window_start = now;
    node->window_count = 1;

    ngx_rbtree_insert(&z->sh->rbtree, &node->node);

    /* version == flushed: clean until a beacon changes it */
    ngx_queue_insert_head(&z->sh->clean, &node->queue);

    *np = node;

    return NGX_HTTP_VODLMS_ENTRY_CREATED;
}


/*
 * The entry again, with room for a bitmap of cov_size bytes for `duration`
 * (the video's duration changed, or it was not known when the entry was
 * made): everything kept, the bits of the old bitmap that still fit (the
 * same 5-second grid) ORed in, the run started afresh.  NULL when there
 * is no room (the entry is then as it was).
 */

ngx_http_vodlms_progress_node_t *
ngx_http_vodlms_progress_resize(ngx_http_vodlms_progress_zone_t *z,
    ngx_http_vodlms_progress_node_t *node, size_t cov_size, double duration,
    ngx_log_t *log)
{
    size_t                            n;
    vodlms_coverage_t                 oc, nc, *old;
    ngx_http_vodlms_progress_node_t  *nn;

    n = offsetof(ngx_http_vodlms_progress_node_t, data)
        + node->user_len + node->video_len + cov_size;

    /* off its queue while room is made: never evicted for itself */
    ngx_queue_remove(&node->queue);

    nn = ngx_http_vodlms_progress_alloc(z, n, log);

    if (nn == NULL) {
        if (node->version != node->flushed) {
            ngx_queue_insert_head(&z->sh->dirty, &node->queue);
        } else {
            ngx_queue_insert_head(&z->sh->clean, &node->queue);
        }

        return NULL;
    }

    ngx_memcpy(nn, node, offsetof(ngx_http_vodlms_progress_node_t, data)
                         + node->user_len + node->video_len);

    ngx_memzero(&nn->run, sizeof(vodlms_coverage_run_t));
    nn->cov_nbits = 0;
    nn->cov_duration_ms = 0;

    if (vodlms_coverage_init(&nc, nn->data + nn->user_len + nn->video_len,
                             cov_size, duration)
        == VODLMS_OK)
    {
        nn->cov_nbits = (uint32_t) nc.nbits;
        nn->cov_duration_ms = nc.duration_ms;

        old = ngx_http_vodlms_progress_coverage(node, &oc);
        if (old) {
            (void) vodlms_coverage_or(&nc, old);
        }
    }

    ngx_rbtree_delete(&z->sh->rbtree, &node->node);
    ngx_rbtree_insert(&z->sh->rbtree, &nn->node);

    if (nn->version != nn->flushed) {
        ngx_queue_insert_head(&z->sh->dirty, &nn->queue);
    } else {
        ngx_queue_insert_head(&z->sh->clean, &nn->queue);
    }

    ngx_slab_free_locked(z->shpool, node);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log, 0,
                   "vodlms progress: entry remade for a duration of %.3f s "
                   "(%uz bytes of bitmap)", duration, cov_size);

    return nn;
}


void
ngx_http_vodlms_progress_free(ngx_http_vodlms_progress_zone_t *z,
    ngx_http_vodlms_progress_node_t *node)
{
    if (node->version != node->flushed) {
        z->sh->dirty_n--;
    }

    ngx_queue_remove(&node->queue);
    ngx_rbtree_delete(&z->sh->rbtree, &node->node);
    ngx_slab_free_locked(z->shpool, node);
}


void
ngx_http_vodlms_progress_changed(ngx_http_vodlms_progress_zone_t *z,
    ngx_http_vodlms_progress_node_t *node)
{
    if (node->version == node->flushed) {
        ngx_queue_remove(&node->queue);
        ngx_queue_insert_head(&z->sh->dirty, &node->queue);
        z->sh->dirty_n++;
    }

    node->version++;
}


ngx_uint_t
ngx_http_vodlms_progress_written(ngx_http_vodlms_progress_zone_t *z,
    ngx_http_vodlms_progress_node_t *node, ngx_uint_t version)
{
    if (node->version == node->flushed) {
        /* already clean (another worker's flush got there first) */
        return 1;
    }

    ngx_queue_remove(&node->queue);

    if (node->version != version) {
        /* a beacon came in since the snapshot: the back of the line */
        ngx_queue_insert_head(&z->sh->dirty, &node->queue);
        return 0;
    }

    node->flushed = node->version;
    z->sh->dirty_n--;

    ngx_queue_insert_head(&z->sh->clean, &node->queue);

    return 1;
}


static void
ngx_http_vodlms_progress_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_int_t                         rc;
    ngx_rbtree_node_t               **p;
    ngx_http_vodlms_progress_node_t  *n, *t;

    for ( ;; ) {

        if (node->key != temp->key) {
            p = (node->key < temp->key) ? &temp->left : &temp->right;

        } else {
            n = (ngx_http_vodlms_progress_node_t *) node;
            t = (ngx_http_vodlms_progress_node_t *) temp;

            rc = ngx_memn2cmp(n->data, t->data, n->user_len, t->user_len);
            if (rc == 0) {
                rc = ngx_memn2cmp(n->data + n->user_len,
                                  t->data + t->user_len, n->video_len,
                                  t->video_len);
            }

            p = (rc < 0) ? &temp->left : &temp->right;
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


static ngx_int_t
ngx_http_vodlms_progress_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_vodlms_progress_zone_t  *oz = data;

    size_t                            len;
    ngx_http_vodlms_progress_zone_t  *z;

    z = shm_zone->data;

    if (oz) {
        /* a reload: the buffer, dirty entries included, carries on */
        z->sh = oz->sh;
        z->shpool = oz->shpool;
        return NGX_OK;
    }

    z->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        z->sh = z->shpool->data;
        return NGX_OK;
    }

    z->sh = ngx_slab_calloc(z->shpool, sizeof(ngx_http_vodlms_progress_sh_t));
    if (z->sh == NULL) {
        return NGX_ERROR;
    }

    z->shpool->data = z->sh;

    ngx_rbtree_init(&z->sh->rbtree, &z->sh->sentinel,
                    ngx_http_vodlms_progress_insert_value);
    ngx_queue_init(&z->sh->clean);
    ngx_queue_init(&z->sh->dirty);

    len = sizeof(" in vodlms_progress_zone \"\"") + shm_zone->shm.name.len;

    z->shpool->log_ctx = ngx_slab_alloc(z->shpool, len);
    if (z->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(z->shpool->log_ctx, " in vodlms_progress_zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full zone is handled (clean entries go, then 503): no log spam */
    z->shpool->log_nomem = 0;

    return NGX_OK;
}


/* vodlms_progress_zone zone=name:size [flush=10s] [batch=1000]; */

char *
ngx_http_vodlms_progress_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vodlms_main_conf_t  *vmcf = conf;

    u_char                           *p;
    ssize_t                           size;
    ngx_int_t                         n;
    ngx_str_t                        *value, name, s;
    ngx_uint_t                        i;
    ngx_http_vodlms_progress_zone_t  *z;

    if (vmcf->progress.zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strncmp(value[1].data, "zone=", 5) != 0
        || (p = (u_char *) ngx_strchr(value[1].data + 5, ':')) == NULL
        || p == value[1].data + 5)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\", expected "
                           "\"zone=name:size\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    name.data = value[1].data + 5;
    name.len = p - name.data;
    s.data = p + 1;
    s.len = value[1].data + value[1].len - s.data;

    size = ngx_parse_size(&s);
    if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid size in \"%V\": at least %uz bytes",
                           &value[1], 8 * ngx_pagesize);
        return NGX_CONF_ERROR;
    }

    vmcf->progress.flush_interval = 10000;
    vmcf->progress.batch = 1000;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "flush=", 6) == 0) {
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;
            vmcf->progress.flush_interval = ngx_parse_time(&s, 0);
            if (vmcf->progress.flush_interval == (ngx_msec_t) NGX_ERROR
                || vmcf->progress.flush_interval == 0)
            {
                goto invalid;
            }
            continue;
        }

        if (ngx_strncmp(value[i].data, "batch=", 6) == 0) {
            n = ngx_atoi(value[i].data + 6, value[i].len - 6);
            if (n == NGX_ERROR || n == 0 || n > 100000) {
                goto invalid;
            }
            vmcf->progress.batch = n;
            continue;
        }

        goto invalid;
    }

    z = ngx_pcalloc(cf->pool, sizeof(ngx_http_vodlms_progress_zone_t));
    if (z == NULL) {
        return NGX_CONF_ERROR;
    }

    vmcf->progress.zone = ngx_shared_memory_add(cf, &name, size,
                                          &ngx_http_vodlms_progress_zone_tag);
    if (vmcf->progress.zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (vmcf->progress.zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    vmcf->progress.zone->init = ngx_http_vodlms_progress_init_zone;
    vmcf->progress.zone->data = z;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);
    return NGX_CONF_ERROR;
}


ngx_int_t
ngx_http_vodlms_progress_stats(ngx_http_request_t *r,
    ngx_http_vodlms_progress_stats_t *st)
{
    ngx_http_vodlms_main_conf_t      *vmcf;
    ngx_http_vodlms_progress_zone_t  *z;

    vmcf = ngx_http_get_module_main_conf(r, ngx_http_vodlms_module);

    if (vmcf->progress.zone == NULL) {
        return NGX_DECLINED;
    }

    z = vmcf->progress.zone->data;

    ngx_shmtx_lock(&z->shpool->mutex);

    st->beacons = z->sh->beacons;
    st->pending = z->sh->dirty_n;
    st->flushes = z->sh->flushes;
    st->flush_failures = z->sh->flush_failures;
    st->rows = z->sh->rows;
    st->full = z->sh->full;
    st->set_aside = z->sh->set_aside;
    st->fill = 1.0 - (double) z->shpool->pfree
                     / (double) ((z->shpool->end - z->shpool->start)
                                 / ngx_pagesize);

    ngx_shmtx_unlock(&z->shpool->mutex);

    return NGX_OK;
}
