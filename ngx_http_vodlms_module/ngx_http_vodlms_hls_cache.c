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
 * A kept answer is found by the file's path, and used when the file's
 * modification time and size (what nginx's own ETag is made of) and the
 * location's configuration are the ones it was made with; otherwise it is
 * replaced.  One entry a path.  Only files served by nginx itself are
 * kept (no upstream: its answer may change with no sign in these three).
 * The worker keeps at most NGX_HTTP_VODLMS_HLS_CACHE_MAX bytes, least recently used out; an
 * answer that a request is still sending is freed when that request ends.
 */

#include "ngx_http_vodlms_module.h"
#include "vodlms_hls.h"


#define NGX_HTTP_VODLMS_HLS_CACHE_MAX    (4 * 1024 * 1024)
#define NGX_HTTP_VODLMS_HLS_CACHE_ENTRY  (512 * 1024)


struct ngx_http_vodlms_hls_tpl_s {
    ngx_str_node_t              sn;          /* the path, and its crc32 */
    ngx_queue_t                 lru;
    void                       *conf;        /* the location's options */
    time_t                      mtime;
    off_t                       size;
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

static const char  ngx_http_vodlms_hls_define[] =
    "#EXT-X-DEFINE:NAME=\"" NGX_HTTP_VODLMS_HLS_VAR "\",VALUE=\"";


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
    return sizeof(ngx_http_vodlms_hls_tpl_t) + t->sn.str.len + t->prefix
           + t->suffix;
}


ngx_http_vodlms_hls_tpl_t *
ngx_http_vodlms_hls_tpl_find(ngx_http_request_t *r, void *conf,
    ngx_str_t *path, time_t mtime, off_t size)
{
    ngx_pool_cleanup_t           *cln;
    ngx_http_vodlms_hls_tpl_t    *t;
    ngx_http_vodlms_hls_cache_t  *c;

    c = ngx_http_vodlms_hls_cache_get();

    t = (ngx_http_vodlms_hls_tpl_t *)
        ngx_str_rbtree_lookup(&c->tree, path,
                              ngx_crc32_short(path->data, path->len));

    if (t == NULL || t->conf != conf || t->mtime != mtime || t->size != size)
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
                   path, t->prefix + t->suffix);

    return t;
}


/*
 * Keep the define-mode answer `out` (its parameters, query_len bytes, in
 * the first EXT-X-DEFINE) for later requests of the same file.  Nothing
 * is kept on any failure: the request goes on regardless.
 */

void
ngx_http_vodlms_hls_tpl_keep(ngx_http_request_t *r, void *conf,
    ngx_str_t *path, time_t mtime, off_t size, u_char *out, size_t len,
    size_t query_len)
{
    u_char                       *p;
    size_t                        prefix, suffix, need;
    ngx_queue_t                  *q;
    ngx_http_vodlms_hls_tpl_t    *t, *old;
    ngx_http_vodlms_hls_cache_t  *c;

    /* ours is the first: only the #EXTM3U line and a version come before */
    p = ngx_strlcasestrn(out, out + ngx_min(len, (size_t) 256),
                         (u_char *) ngx_http_vodlms_hls_define,
                         sizeof(ngx_http_vodlms_hls_define) - 2);

    if (p == NULL
        || ngx_strncmp(p, ngx_http_vodlms_hls_define,
                       sizeof(ngx_http_vodlms_hls_define) - 1) != 0)
    {
        return;
    }

    prefix = (size_t) (p - out) + sizeof(ngx_http_vodlms_hls_define) - 1;

    if (len - prefix < query_len + 1 || out[prefix + query_len] != '"') {
        return;
    }

    suffix = len - prefix - query_len;
    need = sizeof(ngx_http_vodlms_hls_tpl_t) + path->len + prefix + suffix;

    if (need > NGX_HTTP_VODLMS_HLS_CACHE_ENTRY) {
        return;
    }

    c = ngx_http_vodlms_hls_cache_get();

    /* one entry a path: an older one (the file changed) goes first */
    old = (ngx_http_vodlms_hls_tpl_t *)
          ngx_str_rbtree_lookup(&c->tree, path,
                                ngx_crc32_short(path->data, path->len));
    if (old != NULL) {
        ngx_http_vodlms_hls_tpl_drop(old);
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

    t->conf = conf;
    t->mtime = mtime;
    t->size = size;
    t->sn.str.data = (u_char *) t + sizeof(ngx_http_vodlms_hls_tpl_t);
    t->sn.str.len = path->len;
    t->data = t->sn.str.data + path->len;
    t->prefix = prefix;
    t->suffix = suffix;

    ngx_memcpy(t->sn.str.data, path->data, path->len);
    ngx_memcpy(t->data, out, prefix);
    ngx_memcpy(t->data + prefix, out + prefix + query_len, suffix);

    t->sn.node.key = ngx_crc32_short(path->data, path->len);
    ngx_rbtree_insert(&c->tree, &t->sn.node);
    ngx_queue_insert_head(&c->lru, &t->lru);
    c->bytes += need;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "vodlms hls: \"%V\" signed (define) kept, %uz bytes, %uz "
                   "in the worker", path, need, c->bytes);
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
