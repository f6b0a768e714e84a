/*
 * Per-user query limit (see ngx_http_vodlms_limit.h).
 *
 * One node per user id in a red-black tree (key: CRC32 of the id, then the
 * id itself), under the slab pool's mutex, and an LRU queue.  Each node is
 * a leaky bucket: "excess" is how far the user is above the rate, in
 * thousandths of a query; it drains at the zone's rate (kept per minute,
 * so that 1r/m is exact) and each query sent
 * adds 1000.  A query is refused while excess would exceed burst, and the
 * refusal adds nothing, so a flood costs its sender no more than the rate.
 *
 * Memory is bounded by the zone: a bucket that has drained to zero holds
 * nothing a new bucket would not (both start at zero), so the oldest ones
 * are dropped as new users arrive; only when the zone is full of users
 * still above the rate is the least recently seen one forgotten.  The
 * rate lives in the configuration, the buckets in the zone: a reload that
 * keeps the zone's name and size keeps every bucket.
 */

#include "ngx_http_vodlms_module.h"


/* queries per minute: a million a second is past any one user's need */
#define NGX_HTTP_VODLMS_LIMIT_MAX_RATE  60000000


typedef struct {
    ngx_rbtree_node_t           node;      /* key: CRC32 of the user id */
    ngx_queue_t                 queue;     /* LRU: most recent at the head */
    ngx_msec_t                  last;      /* when excess was last set */
    ngx_uint_t                  excess;    /* thousandths of a query */
    u_short                     len;
    u_char                      data[1];
} ngx_http_vodlms_limit_node_t;


typedef struct {
    ngx_rbtree_t                rbtree;
    ngx_rbtree_node_t           sentinel;
    ngx_queue_t                 queue;
} ngx_http_vodlms_limit_sh_t;


typedef struct {
    ngx_http_vodlms_limit_sh_t  *sh;
    ngx_slab_pool_t             *shpool;
    uint64_t                     rate;     /* thousandths of a query/min */
} ngx_http_vodlms_limit_zone_t;


static ngx_int_t ngx_http_vodlms_limit_account(
    ngx_http_vodlms_limit_zone_t *lz, ngx_uint_t burst, ngx_str_t *user,
    ngx_log_t *log, ngx_msec_t *wait);
static ngx_http_vodlms_limit_node_t *ngx_http_vodlms_limit_lookup(
    ngx_http_vodlms_limit_zone_t *lz, ngx_str_t *user, uint32_t hash);
static void ngx_http_vodlms_limit_expire(ngx_http_vodlms_limit_zone_t *lz,
    ngx_uint_t force);
static ngx_uint_t ngx_http_vodlms_limit_drained(
    ngx_http_vodlms_limit_zone_t *lz, ngx_http_vodlms_limit_node_t *ln,
    ngx_msec_t now);
static void ngx_http_vodlms_limit_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_int_t ngx_http_vodlms_limit_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);


/* the zones' tag: a zone of this name used for a cache is a conflict */
static ngx_uint_t  ngx_http_vodlms_limit_tag;


ngx_int_t
ngx_http_vodlms_limit_query(ngx_http_request_t *r, ngx_str_t *user)
{
    u_char                        *p;
    ngx_int_t                      rc;
    ngx_str_t                      detail;
    ngx_msec_t                     wait;
    ngx_http_vodlms_loc_conf_t    *vlcf;
    ngx_http_vodlms_limit_zone_t  *lz;

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);

    if (vlcf->limit.zone == NULL || user->len == 0) {
        return NGX_OK;
    }

    lz = vlcf->limit.zone->data;

    rc = ngx_http_vodlms_limit_account(lz, vlcf->limit.burst, user,
                                       r->connection->log, &wait);

    if (rc == NGX_OK) {
        return NGX_OK;
    }

    /*
     * The user id is the LMS's, not a secret: the operator needs it.  The
     * session gate let through only printable ids of at most 128 bytes.
     */
    detail.len = sizeof("user \"\" over the query rate") - 1 + user->len;
    detail.data = ngx_pnalloc(r->pool, detail.len);
    if (detail.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(detail.data, "user \"%V\" over the query rate", user);
    detail.len = p - detail.data;

    /* whole seconds, rounded up: the bucket has room again by then */
    return ngx_http_vodlms_deny_retry(r, NGX_HTTP_VODLMS_TOO_MANY_QUERIES,
                                      &detail, (wait + 999) / 1000);
}


static ngx_int_t
ngx_http_vodlms_limit_account(ngx_http_vodlms_limit_zone_t *lz,
    ngx_uint_t burst, ngx_str_t *user, ngx_log_t *log, ngx_msec_t *wait)
{
    size_t                         size;
    uint32_t                       hash;
    ngx_uint_t                     excess;
    ngx_msec_t                     now;
    ngx_http_vodlms_limit_node_t  *ln;

    if (user->len > 0xffff) {
        /* no LMS issues such ids; never tracked, never refused */
        return NGX_OK;
    }

    hash = ngx_crc32_short(user->data, user->len);
    now = ngx_current_msec;

    ngx_shmtx_lock(&lz->shpool->mutex);

    ln = ngx_http_vodlms_limit_lookup(lz, user, hash);

    if (ln) {
        excess = ngx_http_vodlms_limit_drained(lz, ln, now) + 1000;

        ngx_queue_remove(&ln->queue);
        ngx_queue_insert_head(&lz->sh->queue, &ln->queue);

        if (excess > burst) {
            ngx_shmtx_unlock(&lz->shpool->mutex);

            /* until excess is back at burst, at the rate */
            *wait = (ngx_msec_t) ((uint64_t) (excess - burst) * 60000
                                  / lz->rate);

            ngx_log_debug3(NGX_LOG_DEBUG_HTTP, log, 0,
                           "vodlms limit: \"%V\" refused, excess %ui, "
                           "wait %M", user, excess, *wait);
            return NGX_BUSY;
        }

        ln->excess = excess;
        ln->last = now;

        ngx_shmtx_unlock(&lz->shpool->mutex);

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log, 0,
                       "vodlms limit: \"%V\" counted, excess %ui",
                       user, excess);
        return NGX_OK;
    }

    /* a new user: first make room from the users that have gone quiet */

    ngx_http_vodlms_limit_expire(lz, 0);

    size = offsetof(ngx_http_vodlms_limit_node_t, data) + user->len;

    ln = ngx_slab_alloc_locked(lz->shpool, size);

    if (ln == NULL) {
        ngx_http_vodlms_limit_expire(lz, 1);
        ln = ngx_slab_alloc_locked(lz->shpool, size);
    }

    if (ln == NULL) {
        ngx_shmtx_unlock(&lz->shpool->mutex);

        /* an empty zone cannot hold one user: the query goes out */
        ngx_log_error(NGX_LOG_CRIT, log, 0,
                      "vodlms limit: no memory for a %uz-byte user "
                      "bucket%s, query not limited",
                      size, lz->shpool->log_ctx);
        return NGX_OK;
    }

    ln->node.key = hash;
    ln->last = now;
    ln->excess = 0;     /* the first query; burst is room above the rate */
    ln->len = (u_short) user->len;
    ngx_memcpy(ln->data, user->data, user->len);

    ngx_rbtree_insert(&lz->sh->rbtree, &ln->node);
    ngx_queue_insert_head(&lz->sh->queue, &ln->queue);

    ngx_shmtx_unlock(&lz->shpool->mutex);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, log, 0,
                   "vodlms limit: \"%V\" new bucket", user);

    return NGX_OK;
}


/* the node's excess as of now, drained at the rate (mutex held) */

static ngx_uint_t
ngx_http_vodlms_limit_drained(ngx_http_vodlms_limit_zone_t *lz,
    ngx_http_vodlms_limit_node_t *ln, ngx_msec_t now)
{
    ngx_msec_int_t  ms;
    uint64_t        drain;

    ms = (ngx_msec_int_t) (now - ln->last);

    /* another worker set it a moment "later": nothing has drained */
    if (ms <= 0) {
        return ln->excess;
    }

    /* idle so long that the product would wrap: all drained */
    if ((uint64_t) ms > UINT64_MAX / lz->rate) {
        return 0;
    }

    drain = lz->rate * (uint64_t) ms / 60000;

    return (drain >= ln->excess) ? 0 : ln->excess - (ngx_uint_t) drain;
}


static ngx_http_vodlms_limit_node_t *
ngx_http_vodlms_limit_lookup(ngx_http_vodlms_limit_zone_t *lz,
    ngx_str_t *user, uint32_t hash)
{
    ngx_int_t                      rc;
    ngx_rbtree_node_t             *node, *sentinel;
    ngx_http_vodlms_limit_node_t  *ln;

    node = lz->sh->rbtree.root;
    sentinel = lz->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        ln = (ngx_http_vodlms_limit_node_t *) node;

        rc = ngx_memn2cmp(user->data, ln->data, user->len,
                          (size_t) ln->len);

        if (rc == 0) {
            return ln;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


/*
 * Drop up to three of the least recently seen buckets that have drained
 * (they hold nothing).  force: the zone is full; the oldest goes whatever
 * its state, so that a new user always gets a bucket.
 */

static void
ngx_http_vodlms_limit_expire(ngx_http_vodlms_limit_zone_t *lz,
    ngx_uint_t force)
{
    ngx_uint_t                     n;
    ngx_msec_t                     now;
    ngx_queue_t                   *q;
    ngx_http_vodlms_limit_node_t  *ln;

    now = ngx_current_msec;

    for (n = 0; n < 3; n++) {

        if (ngx_queue_empty(&lz->sh->queue)) {
            return;
        }

        q = ngx_queue_last(&lz->sh->queue);
        ln = ngx_queue_data(q, ngx_http_vodlms_limit_node_t, queue);

        if (!(force && n == 0)
            && ngx_http_vodlms_limit_drained(lz, ln, now) != 0)
        {
            return;
        }

        ngx_queue_remove(q);
        ngx_rbtree_delete(&lz->sh->rbtree, &ln->node);
        ngx_slab_free_locked(lz->shpool, ln);
    }
}


static void
ngx_http_vodlms_limit_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t            **p;
    ngx_http_vodlms_limit_node_t  *ln, *lnt;

    for ( ;; ) {

        if (node->key != temp->key) {
            p = (node->key < temp->key) ? &temp->left : &temp->right;

        } else {
            ln = (ngx_http_vodlms_limit_node_t *) node;
            lnt = (ngx_http_vodlms_limit_node_t *) temp;

            p = (ngx_memn2cmp(ln->data, lnt->data, ln->len, lnt->len) < 0)
                ? &temp->left : &temp->right;
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
ngx_http_vodlms_limit_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_vodlms_limit_zone_t  *olz = data;

    size_t                         len;
    ngx_http_vodlms_limit_zone_t  *lz;

    lz = shm_zone->data;

    if (olz) {
        /* a reload: the buckets carry over, the new rate applies to them */
        lz->sh = olz->sh;
        lz->shpool = olz->shpool;
        return NGX_OK;
    }

    lz->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        lz->sh = lz->shpool->data;
        return NGX_OK;
    }

    lz->sh = ngx_slab_alloc(lz->shpool, sizeof(ngx_http_vodlms_limit_sh_t));
    if (lz->sh == NULL) {
        return NGX_ERROR;
    }

    lz->shpool->data = lz->sh;

    ngx_rbtree_init(&lz->sh->rbtree, &lz->sh->sentinel,
                    ngx_http_vodlms_limit_insert_value);
    ngx_queue_init(&lz->sh->queue);

    len = sizeof(" in vodlms_user_query_zone \"\"") + shm_zone->shm.name.len;

    lz->shpool->log_ctx = ngx_slab_alloc(lz->shpool, len);
    if (lz->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(lz->shpool->log_ctx, " in vodlms_user_query_zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full zone is handled (the oldest bucket goes): no log line */
    lz->shpool->log_nomem = 0;

    return NGX_OK;
}


/* configuration */

void
ngx_http_vodlms_limit_create_conf(ngx_http_vodlms_limit_conf_t *c)
{
    c->zone = NGX_CONF_UNSET_PTR;
    c->burst = NGX_CONF_UNSET_UINT;
}


char *
ngx_http_vodlms_limit_merge_conf(ngx_conf_t *cf,
    ngx_http_vodlms_limit_conf_t *prev, ngx_http_vodlms_limit_conf_t *conf)
{
    if (conf->zone == NGX_CONF_UNSET_PTR) {
        conf->zone = prev->zone;
        conf->burst = prev->burst;
    }

    if (conf->zone == NGX_CONF_UNSET_PTR) {
        conf->zone = NULL;
        conf->burst = 0;
    }

    /* the http block has been read whole: every zone is known by now */
    if (conf->zone && conf->zone->data == NULL) {
        ngx_http_vodlms_merge_error(cf,
                                    "unknown vodlms_user_query_zone \"%V\" "
                                    "in \"vodlms_user_query_limit\"",
                                    &conf->zone->shm.name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* vodlms_user_query_zone zone=name:size rate=rate; */

char *
ngx_http_vodlms_limit_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    u_char                        *p;
    size_t                         len;
    ssize_t                        size;
    ngx_str_t                     *value, name, s;
    ngx_int_t                      rate, scale;
    ngx_uint_t                     i;
    ngx_shm_zone_t                *shm_zone;
    ngx_http_vodlms_limit_zone_t  *lz;

    value = cf->args->elts;

    size = 0;
    rate = 0;
    scale = 1;
    name.len = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {

            name.data = value[i].data + 5;

            p = (u_char *) ngx_strchr(name.data, ':');
            if (p == NULL || p == name.data) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid zone \"%V\", expected "
                                   "\"zone=name:size\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            name.len = p - name.data;

            s.data = p + 1;
            s.len = value[i].data + value[i].len - s.data;

            size = ngx_parse_size(&s);

            if (size == NGX_ERROR) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid zone size \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            if (size < (ssize_t) (8 * ngx_pagesize)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "zone \"%V\" is too small, at least %uz "
                                   "bytes are needed", &name,
                                   8 * ngx_pagesize);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "rate=", 5) == 0) {

            len = value[i].len;
            p = value[i].data + len - 3;

            if (len > 8 && ngx_strncmp(p, "r/s", 3) == 0) {
                scale = 1;
                len -= 3;

            } else if (len > 8 && ngx_strncmp(p, "r/m", 3) == 0) {
                scale = 60;
                len -= 3;

            } else {
                len = 0;
            }

            rate = len ? ngx_atoi(value[i].data + 5, len - 5) : NGX_ERROR;

            if (rate <= 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid rate \"%V\", expected e.g. "
                                   "\"rate=10r/s\" or \"rate=300r/m\"",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            /* kept in thousandths per minute: far from 64 bits' end */
            if (rate > NGX_HTTP_VODLMS_LIMIT_MAX_RATE / (60 / scale)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "rate \"%V\" is too high, at most "
                                   "%dr/m (%dr/s)", &value[i],
                                   NGX_HTTP_VODLMS_LIMIT_MAX_RATE,
                                   NGX_HTTP_VODLMS_LIMIT_MAX_RATE / 60);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\", expected "
                           "\"zone=name:size\" and \"rate=rate\"",
                           &value[i]);
        return NGX_CONF_ERROR;
    }

    if (name.len == 0 || rate == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" needs both \"zone=name:size\" and "
                           "\"rate=rate\"", &cmd->name);
        return NGX_CONF_ERROR;
    }

    lz = ngx_pcalloc(cf->pool, sizeof(ngx_http_vodlms_limit_zone_t));
    if (lz == NULL) {
        return NGX_CONF_ERROR;
    }

    /* per minute: 1r/m and 7r/s are both whole thousandths */
    lz->rate = (uint64_t) rate * 1000 * (60 / scale);

    shm_zone = ngx_shared_memory_add(cf, &name, size,
                                     &ngx_http_vodlms_limit_tag);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    shm_zone->init = ngx_http_vodlms_limit_init_zone;
    shm_zone->data = lz;

    return NGX_CONF_OK;
}


/* vodlms_user_query_limit zone=name [burst=number] | off; */

char *
ngx_http_vodlms_limit(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vodlms_loc_conf_t  *vlcf = conf;

    ngx_int_t    burst;
    ngx_str_t   *value, name;
    ngx_uint_t   i;

    if (vlcf->limit.zone != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        vlcf->limit.zone = NULL;
        vlcf->limit.burst = 0;
        return NGX_CONF_OK;
    }

    name.len = 0;
    burst = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0 && value[i].len > 5) {
            name.data = value[i].data + 5;
            name.len = value[i].len - 5;
            continue;
        }

        if (ngx_strncmp(value[i].data, "burst=", 6) == 0) {
            burst = ngx_atoi(value[i].data + 6, value[i].len - 6);

            if (burst == NGX_ERROR || burst > 1000000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid burst \"%V\", expected a number "
                                   "of queries from 0 to 1000000", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\", expected "
                           "\"zone=name\", \"burst=number\" or \"off\"",
                           &value[i]);
        return NGX_CONF_ERROR;
    }

    if (name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" needs \"zone=name\" (a "
                           "vodlms_user_query_zone) or \"off\"", &cmd->name);
        return NGX_CONF_ERROR;
    }

    /* size 0: a reference, resolved when the zone directive is seen */
    vlcf->limit.zone = ngx_shared_memory_add(cf, &name, 0,
                                             &ngx_http_vodlms_limit_tag);
    if (vlcf->limit.zone == NULL) {
        return NGX_CONF_ERROR;
    }

    vlcf->limit.burst = burst * 1000;

    return NGX_CONF_OK;
}
