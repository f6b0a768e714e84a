/*
 * Signed playlists, define mode: the answers kept per worker.
 *
 * With "vodlms_hls_sign define" the signed playlist is the same for every
 * viewer but for one line: the EXT-X-DEFINE that holds the viewer's
 * signed-URL parameters.  The rest (the file, every URI naming the
 * variable) depends only on the file and on the location's options.  So
 * the first request for a file rewrites it; the answer is kept here cut in
 * two around the parameters, and later requests for the same file send the
 * two halves with their own parameters between them: no read of the file,
 * no rewriting, no copy.
 *
 * A kept answer is found by the file's path, and used when the file as
 * fstat() sees it on this request (inode, size, modification and change
 * times) and the location's options are the ones it was made with;
 * otherwise it is replaced.  One entry a path.  A file changed within the
 * last second is not kept (a second change in the same second would not
 * show in the times).  Only the whole file, served by nginx itself in one
 * buffer, is kept (no upstream, no other filter's bytes).  The worker keeps
 * at most NGX_HTTP_VODLMS_HLS_CACHE_MAX bytes, least recently used out; an
 * answer that a request is still sending is freed when that request ends.
 */

#include "ngx_http_vodlms_module.h"
#include "vodlms_hls.h"


#define NGX_HTTP_VODLMS_HLS_CACHE_MAX    (4 * 1024 * 1024)
#define NGX_HTTP_VODLMS_HLS_CACHE_ENTRY  (512 * 1024)


struct ngx_http_vodlms_hls_tpl_s {
    ngx_str_node_t              sn;          /* the path, and its crc32 */
    ngx_queue_t                 lru;
    ngx_file_uniq_t             uniq;
    time_t                      mtime;
    time_t                      ctime;
    off_t                       size;
    ngx_uint_t                  absolute;    /* the options it was made */
    size_t                      max_size;    /* with, by value */
    ngx_str_t                   origin;      /* edge_url's, or empty */
    u_char                     *data;        /* prefix, then suffix */
    size_t                      prefix;      /* up to VALUE=" */
    size_t                      suffix;      /* from the closing '"' */
    ngx_uint_t                  refs;        /* requests sending it */
    unsigned                    gone:1;      /* out of the tree */
};


typedef struct {
    ngx_rbtree_t                tree;
    ngx_rbtree_node_t           sentinel;
    ngx_queue_t                 lru;         /* most recent first */
    size_t                      bytes;
    ngx_uint_t                  init;
} ngx_http_vodlms_hls_cache_t;


static ngx_http_vodlms_hls_cache_t  ngx_http_vodlms_hls_cache;

static void ngx_http_vodlms_hls_tpl_release(void *data);
static void ngx_http_vodlms_hls_tpl_drop(ngx_http_vodlms_hls_tpl_t *t);


static ngx_http_vodlms_hls_cache_t *
ngx_http_vodlms_hls_cache_get(void)
{
    ngx_http_vodlms_hls_cache_t  *c;

    c = &ngx_http_vodlms_hls_cache;

    if (!c->init) {
        ngx_rbtree_init(&c->tree, &c->sentinel, ngx_str_rbtree_insert_value);
        ngx_queue_init(&c->lru);
        c->init = 1;
    }

    return c;
}


static size_t
ngx_http_vodlms_hls_tpl_bytes(ngx_http_vodlms_hls_tpl_t *t)
{
    return sizeof(ngx_http_vodlms_hls_tpl_t) + t->sn.str.len + t->origin.len
           + t->prefix + t->suffix;
}


/* the options that shape the answer, as this request's location has them */

static void
ngx_http_vodlms_hls_tpl_opts(ngx_http_request_t *r, ngx_uint_t *absolute,
    size_t *max_size, ngx_str_t *origin)
{
    ngx_http_vodlms_loc_conf_t  *vlcf;

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);

    *absolute = vlcf->hls.absolute;
    *max_size = vlcf->hls.max_size;

    if (vlcf->hls.absolute == VODLMS_HLS_ABS_ORIGIN) {
        *origin = vlcf->edge.url;

    } else {
        ngx_str_null(origin);
    }
}


ngx_http_vodlms_hls_tpl_t *
ngx_http_vodlms_hls_tpl_find(ngx_http_request_t *r,
    ngx_http_vodlms_hls_key_t *key)
{
    size_t                        max_size;
    ngx_str_t                     origin;
    ngx_uint_t                    absolute;
    ngx_pool_cleanup_t           *cln;
    ngx_http_vodlms_hls_tpl_t    *t;
    ngx_http_vodlms_hls_cache_t  *c;

    c = ngx_http_vodlms_hls_cache_get();

    t = (ngx_http_vodlms_hls_tpl_t *)
        ngx_str_rbtree_lookup(&c->tree, &key->path,
                              ngx_crc32_short(key->path.data, key->path.len));

    if (t == NULL) {
        return NULL;
    }

    ngx_http_vodlms_hls_tpl_opts(r, &absolute, &max_size, &origin);

    if (t->uniq != key->uniq || t->mtime != key->mtime
        || t->ctime != key->ctime || t->size != key->size
        || t->absolute != absolute || t->max_size != max_size
        || t->origin.len != origin.len
        || (origin.len
            && ngx_memcmp(t->origin.data, origin.data, origin.len) != 0))
    {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_vodlms_hls_tpl_release;
    cln->data = t;
    t->refs++;

    ngx_queue_remove(&t->lru);
    ngx_queue_insert_head(&c->lru, &t->lru);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "vodlms hls: \"%V\" kept signed (define), %uz bytes",
                   &key->path, t->prefix + t->suffix);

    return t;
}


/*
 * Keep the define-mode answer `out` (its parameters, query_len bytes at
 * value_at, where the core wrote them) for later requests of the same
 * file.  Nothing is kept on any failure: the request goes on regardless.
 */

void
ngx_http_vodlms_hls_tpl_keep(ngx_http_request_t *r,
    ngx_http_vodlms_hls_key_t *key, u_char *out, size_t len, size_t value_at,
    size_t query_len)
{
    u_char                       *p;
    size_t                        prefix, suffix, need, max_size;
    ngx_str_t                     origin;
    ngx_uint_t                    absolute;
    ngx_queue_t                  *q;
    ngx_http_vodlms_hls_tpl_t    *t, *old;
    ngx_http_vodlms_hls_cache_t  *c;

    c = ngx_http_vodlms_hls_cache_get();

    /* one entry a path: an older one (the file changed) goes first */
    old = (ngx_http_vodlms_hls_tpl_t *)
          ngx_str_rbtree_lookup(&c->tree, &key->path,
                                ngx_crc32_short(key->path.data,
                                                key->path.len));
    if (old != NULL) {
        ngx_http_vodlms_hls_tpl_drop(old);
    }

    /* changed within the last second: a change in the same second as
       another would not show in the times; kept once it is older */
    if (ngx_max(key->mtime, key->ctime) + 1 >= ngx_time()) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "vodlms hls: \"%V\" changed within the last second: "
                       "not kept yet", &key->path);
        return;
    }

    prefix = value_at;

    if (prefix > len || len - prefix < query_len + 1
        || out[prefix + query_len] != '"')
    {
        return;
    }

    suffix = len - prefix - query_len;

    ngx_http_vodlms_hls_tpl_opts(r, &absolute, &max_size, &origin);

    need = sizeof(ngx_http_vodlms_hls_tpl_t) + key->path.len + origin.len
           + prefix + suffix;

    if (need > NGX_HTTP_VODLMS_HLS_CACHE_ENTRY) {
        return;
    }

    while (c->bytes + need > NGX_HTTP_VODLMS_HLS_CACHE_MAX
           && !ngx_queue_empty(&c->lru))
    {
        q = ngx_queue_last(&c->lru);
        old = ngx_queue_data(q, ngx_http_vodlms_hls_tpl_t, lru);
        ngx_http_vodlms_hls_tpl_drop(old);
    }

    t = ngx_alloc(need, r->connection->log);
    if (t == NULL) {
        return;
    }

    ngx_memzero(t, sizeof(ngx_http_vodlms_hls_tpl_t));

    t->uniq = key->uniq;
    t->mtime = key->mtime;
    t->ctime = key->ctime;
    t->size = key->size;
    t->absolute = absolute;
    t->max_size = max_size;

    p = (u_char *) t + sizeof(ngx_http_vodlms_hls_tpl_t);

    t->sn.str.data = p;
    t->sn.str.len = key->path.len;
    p = ngx_cpymem(p, key->path.data, key->path.len);

    t->origin.data = p;
    t->origin.len = origin.len;
    p = ngx_cpymem(p, origin.data, origin.len);

    t->data = p;
    t->prefix = prefix;
    t->suffix = suffix;
    p = ngx_cpymem(p, out, prefix);
    ngx_memcpy(p, out + prefix + query_len, suffix);

    t->sn.node.key = ngx_crc32_short(key->path.data, key->path.len);
    ngx_rbtree_insert(&c->tree, &t->sn.node);
    ngx_queue_insert_head(&c->lru, &t->lru);
    c->bytes += need;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "vodlms hls: \"%V\" signed (define) kept, %uz bytes, %uz "
                   "in the worker", &key->path, need, c->bytes);
}


/* the answer: the kept prefix, the request's parameters, the kept rest */

ngx_int_t
ngx_http_vodlms_hls_tpl_chain(ngx_http_request_t *r,
    ngx_http_vodlms_hls_tpl_t *t, ngx_str_t *query, ngx_chain_t **out,
    off_t *len)
{
    ngx_uint_t    i;
    ngx_buf_t    *b;
    ngx_chain_t  *cl, **ll;
    u_char       *pos[3];
    size_t        n[3];

    if (!vodlms_hls_query_ok((const char *) query->data, query->len)) {
        return NGX_DECLINED;
    }

    pos[0] = t->data;
    n[0] = t->prefix;
    pos[1] = query->data;
    n[1] = query->len;
    pos[2] = t->data + t->prefix;
    n[2] = t->suffix;

    ll = out;
    *len = 0;

    for (i = 0; i < 3; i++) {
        b = ngx_calloc_buf(r->pool);
        if (b == NULL) {
            return NGX_ERROR;
        }

        b->pos = pos[i];
        b->last = pos[i] + n[i];
        b->start = b->pos;
        b->end = b->last;
        b->memory = 1;

        cl = ngx_alloc_chain_link(r->pool);
        if (cl == NULL) {
            return NGX_ERROR;
        }

        cl->buf = b;
        *ll = cl;
        ll = &cl->next;
        *len += n[i];
    }

    *ll = NULL;
    b->last_buf = 1;
    b->last_in_chain = 1;

    return NGX_OK;
}


static void
ngx_http_vodlms_hls_tpl_drop(ngx_http_vodlms_hls_tpl_t *t)
{
    ngx_http_vodlms_hls_cache_t  *c;

    c = ngx_http_vodlms_hls_cache_get();

    ngx_rbtree_delete(&c->tree, &t->sn.node);
    ngx_queue_remove(&t->lru);
    c->bytes -= ngx_http_vodlms_hls_tpl_bytes(t);
    t->gone = 1;

    if (t->refs == 0) {
        ngx_free(t);
    }
}


static void
ngx_http_vodlms_hls_tpl_release(void *data)
{
    ngx_http_vodlms_hls_tpl_t  *t = data;

    if (--t->refs == 0 && t->gone) {
        ngx_free(t);
    }
}
