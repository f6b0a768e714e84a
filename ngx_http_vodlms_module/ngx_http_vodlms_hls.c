/*
 * Signed playlists: the nginx side of core/vodlms_hls.c (issue #20).
 *
 * The edge (ngx_http_vodlms_edge.c) checks a playlist's signed URL in the
 * access phase and, when the location has "vodlms_hls_sign on" and the
 * policy is a custom one (a wildcard over the video's tree, which every URI
 * of the tree matches), keeps the request's own parameters
 * (ngx_http_vodlms_hls_prepare).  The header filter then holds the
 * response's header back, the body filter collects the playlist whole (it
 * is small: a 60-minute lecture's media playlist is ~40 KB), the core
 * inserts the parameters into every URI, and the header goes out with the
 * new length.  A playlist that cannot be signed (too large, malformed, an
 * absolute URI the configuration refuses, compressed) is never passed on
 * unsigned: it becomes a 502 with a JSON reason and one error line.
 *
 * "vodlms_hls_sign define" has the core write the parameters once (an
 * EXT-X-DEFINE) and a variable in every URI; such an answer is the same
 * for every viewer but for that line, and is kept per worker for files
 * nginx serves itself (ngx_http_vodlms_hls_cache.c).
 *
 * Nothing is fetched here: the playlist is whatever the location serves,
 * a file (the self-hosted edge's origin) or an upstream's answer through
 * proxy_cache (CloudFront's origin: S3 is read once per playlist, not once
 * per viewer, see docs/architecture.md).
 */

#include "ngx_http_vodlms_module.h"
#include "vodlms_hls.h"


#define NGX_HTTP_VODLMS_HLS_MIN_BUF  4096

/* Policy, Signature, Key-Pair-Id and Hash-Algorithm as CloudFront makes
   them (a custom policy with an IP condition and RSA-4096) fit in 2 KB */
#define NGX_HTTP_VODLMS_HLS_MAX_QUERY  4096


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


ngx_conf_enum_t  ngx_http_vodlms_hls_modes[] = {
    { ngx_string("off"), NGX_HTTP_VODLMS_HLS_OFF },
    { ngx_string("on"), NGX_HTTP_VODLMS_HLS_ON },
    { ngx_string("define"), NGX_HTTP_VODLMS_HLS_DEFINE },
    { ngx_null_string, 0 }
};


ngx_conf_enum_t  ngx_http_vodlms_hls_absolutes[] = {
    { ngx_string("keep"), VODLMS_HLS_ABS_KEEP },
    { ngx_string("refuse"), VODLMS_HLS_ABS_REFUSE },
    { ngx_string("edge_url"), VODLMS_HLS_ABS_ORIGIN },
    { ngx_null_string, 0 }
};


static ngx_int_t ngx_http_vodlms_hls_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_vodlms_hls_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_vodlms_hls_send(ngx_http_request_t *r,
    ngx_http_vodlms_hls_ctx_t *hctx);
static ngx_int_t ngx_http_vodlms_hls_out(ngx_http_request_t *r,
    ngx_chain_t *out, off_t out_len);
static ngx_int_t ngx_http_vodlms_hls_fail(ngx_http_request_t *r,
    ngx_http_vodlms_hls_ctx_t *hctx, const char *reason,
    vodlms_hls_err_t *err);


/*
 * The request's signed-URL parameters (Policy, Signature, Key-Pair-Id and
 * Hash-Algorithm, named exactly), raw and in the order they came, joined
 * by '&'; *custom: all of Policy, Signature and Key-Pair-Id were there.
 * Other parameters are not the signature's and are not copied.
 */

static ngx_int_t
ngx_http_vodlms_hls_query(ngx_http_request_t *r, ngx_str_t *out,
    ngx_uint_t *custom)
{
    u_char      *p, *last, *amp, *eq, *q;
    size_t       n;
    ngx_uint_t   i, seen;

    static ngx_str_t  names[] = {
        ngx_string("Policy"), ngx_string("Signature"),
        ngx_string("Key-Pair-Id"), ngx_string("Hash-Algorithm")
    };

    /* the query the edge verified: the request line's, not $args (which a
       rewrite or "set" may have changed since) */
    p = ngx_strlchr(r->unparsed_uri.data,
                    r->unparsed_uri.data + r->unparsed_uri.len, '?');
    last = r->unparsed_uri.data + r->unparsed_uri.len;

    if (p == NULL) {
        p = last;
    } else {
        p++;
    }

    out->data = ngx_pnalloc(r->pool, last - p + 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    q = out->data;
    seen = 0;

    for ( /* void */ ; p < last; p = amp + 1) {
        amp = ngx_strlchr(p, last, '&');
        if (amp == NULL) {
            amp = last;
        }

        eq = ngx_strlchr(p, amp, '=');
        if (eq == NULL) {
            continue;
        }

        n = eq - p;

        for (i = 0; i < 4; i++) {
            if (n == names[i].len && ngx_strncmp(p, names[i].data, n) == 0) {
                break;
            }
        }

        if (i == 4) {
            continue;
        }

        seen |= 1 << i;

        if (q != out->data) {
            *q++ = '&';
        }

        q = ngx_cpymem(q, p, amp - p);
    }

    out->len = q - out->data;
    *custom = ((seen & 7) == 7);

    return NGX_OK;
}


ngx_int_t
ngx_http_vodlms_hls_prepare(ngx_http_request_t *r)
{
    ngx_str_t                    query;
    ngx_uint_t                   custom;
    ngx_http_vodlms_ctx_t       *ctx;
    ngx_http_vodlms_loc_conf_t  *vlcf;

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);

    if (!vlcf->hls.enable
        || r->uri.len < 5
        || ngx_strncasecmp(r->uri.data + r->uri.len - 5,
                           (u_char *) ".m3u8", 5) != 0)
    {
        return NGX_OK;
    }

    ctx = ngx_http_vodlms_get_ctx(r);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_vodlms_hls_query(r, &query, &custom) != NGX_OK) {
        return NGX_ERROR;
    }

    /*
     * Only a custom policy covers the other URIs of the tree: a canned one
     * signs this one URL (it goes on unchanged, and its segments would be
     * refused without credentials of their own, as they would anywhere)
     */
    if (!custom) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "vodlms hls: not a custom policy (canned?): the "
                       "playlist is not signed");
        return NGX_OK;
    }

    /*
     * Every URI gets it: a viewer who pads their own parameters (percent-
     * encodings the verifier decodes) would multiply the answer's size
     */
    if (query.len > NGX_HTTP_VODLMS_HLS_MAX_QUERY) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "vodlms hls: the signed-URL parameters are %uz bytes, "
                      "over %d: the playlist is refused",
                      query.len, NGX_HTTP_VODLMS_HLS_MAX_QUERY);
        ctx->hls.query = query;
        ctx->hls.failed = "signed-URL parameters longer than they can be";
        r->disable_not_modified = 1;
        return NGX_OK;
    }

    ctx->hls.query = query;

    /*
     * A 304 would tell the player to keep a copy signed for somebody (or
     * some time) else: always the whole answer
     */
    r->disable_not_modified = 1;

    return NGX_OK;
}


/*
 * The upstream's Cache-Control and Expires (S3's object metadata, a
 * proxied origin's "public, max-age=3600") must not go out next to a
 * signed playlist's "private, no-store" or on its 502: a shared cache
 * would be free to keep one viewer's signature, or an error, for the
 * others.  Removed from the list by name, whichever way they came in.
 */

void
ngx_http_vodlms_hls_clear_cache_headers(ngx_http_request_t *r)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_out.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if ((h[i].key.len == sizeof("Cache-Control") - 1
             && ngx_strncasecmp(h[i].key.data, (u_char *) "Cache-Control",
                                sizeof("Cache-Control") - 1) == 0)
            || (h[i].key.len == sizeof("Expires") - 1
                && ngx_strncasecmp(h[i].key.data, (u_char *) "Expires",
                                   sizeof("Expires") - 1) == 0))
        {
            h[i].hash = 0;
        }
    }

    r->headers_out.expires = NULL;

#if (nginx_version >= 1023000)
    r->headers_out.cache_control = NULL;
#else
    r->headers_out.cache_control.nelts = 0;
#endif
}


static ngx_int_t
ngx_http_vodlms_hls_header_filter(ngx_http_request_t *r)
{
    ngx_http_vodlms_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_vodlms_module);

    if (ctx == NULL || ctx->hls.query.len == 0 || r != r->main
        || r->headers_out.status != NGX_HTTP_OK)
    {
        return ngx_http_next_header_filter(r);
    }

    /* the body changes: no ranges, no validator of the file's bytes */
    ngx_http_clear_accept_ranges(r);
    ngx_http_clear_etag(r);
    ngx_http_clear_last_modified(r);

    if (r->header_only || r->method == NGX_HTTP_HEAD) {
        /* HEAD: no body to measure the signed one by */
        ngx_http_clear_content_length(r);
        return ngx_http_next_header_filter(r);
    }

    ctx->hls.active = 1;

    if (r->headers_out.content_encoding
        && r->headers_out.content_encoding->value.len)
    {
        ctx->hls.failed = "a compressed playlist";
    }

    if (r->headers_out.content_length_n > 0) {
        ctx->hls.size = (size_t) r->headers_out.content_length_n;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "vodlms hls: signing the playlist, %O bytes announced",
                   r->headers_out.content_length_n);

    /* the header goes out with the signed playlist's length */
    return NGX_OK;
}


/*
 * Append a buffer's bytes to the playlist so far, within the limit.  This
 * filter runs before nginx's copy filter (a dynamic module's filters come
 * first), so a static file arrives as a file buffer: its bytes are read
 * here, as the copy filter would without aio.  A playlist is small (and
 * bounded by vodlms_hls_sign_max_size), and sits in the page cache.
 */

static ngx_int_t
ngx_http_vodlms_hls_collect(ngx_http_request_t *r,
    ngx_http_vodlms_hls_ctx_t *hctx, ngx_buf_t *b, size_t max)
{
    u_char   *nb;
    size_t    n, size;
    ssize_t   got;
    ngx_uint_t  file;

    file = !ngx_buf_in_memory(b) && b->in_file;

    n = file ? (size_t) (b->file_last - b->file_pos)
             : (size_t) (b->last - b->pos);

    if (n == 0 || hctx->failed) {
        return NGX_OK;
    }

    if (hctx->len + n > max) {
        hctx->failed = "larger than vodlms_hls_sign_max_size";
        return NGX_OK;
    }

    if (hctx->buf == NULL || hctx->len + n > hctx->size) {
        size = ngx_max(hctx->size, (size_t) NGX_HTTP_VODLMS_HLS_MIN_BUF);

        while (size < hctx->len + n) {
            size *= 2;
        }

        size = ngx_min(size, max);

        nb = ngx_pnalloc(r->pool, size);
        if (nb == NULL) {
            return NGX_ERROR;
        }

        if (hctx->len) {
            ngx_memcpy(nb, hctx->buf, hctx->len);
        }

        hctx->buf = nb;
        hctx->size = size;
    }

    if (!file) {
        ngx_memcpy(hctx->buf + hctx->len, b->pos, n);
        hctx->len += n;
        return NGX_OK;
    }

    got = ngx_read_file(b->file, hctx->buf + hctx->len, n, b->file_pos);

    if (got == NGX_ERROR) {
        hctx->failed = "the file cannot be read";
        return NGX_OK;
    }

    if ((size_t) got != n) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "vodlms hls: \"%V\" read %z of %uz bytes: it changed "
                      "while it was read", &b->file->name, got, n);
        hctx->failed = "the file changed while it was read";
        return NGX_OK;
    }

    hctx->len += n;

    return NGX_OK;
}


/*
 * Define mode: a response that is one whole file nginx serves itself can be
 * answered from (or kept in) ngx_http_vodlms_hls_cache.c: the file as
 * fstat() sees it now is the key.
 */

static void
ngx_http_vodlms_hls_keyable(ngx_http_request_t *r,
    ngx_http_vodlms_hls_ctx_t *hctx, ngx_buf_t *b)
{
    ngx_file_info_t  fi;

    if (r->upstream != NULL || hctx->failed
        || !b->in_file || ngx_buf_in_memory(b) || b->file == NULL
        || b->file->name.len == 0 || b->file->fd == NGX_INVALID_FILE
        || b->file_pos != 0)
    {
        return;
    }

    if (ngx_fd_info(b->file->fd, &fi) == NGX_FILE_ERROR) {
        return;
    }

    if (ngx_file_size(&fi) != b->file_last || b->file_last == 0) {
        return;                                  /* not the whole file */
    }

    hctx->key.path = b->file->name;
    hctx->key.uniq = ngx_file_uniq(&fi);
    hctx->key.mtime = ngx_file_mtime(&fi);
    hctx->key.ctime = fi.st_ctime;
    hctx->key.size = ngx_file_size(&fi);

    hctx->tpl = ngx_http_vodlms_hls_tpl_find(r, &hctx->key);
    hctx->cache_status = hctx->tpl ? "HIT" : "MISS";
}


static ngx_int_t
ngx_http_vodlms_hls_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_buf_t                   *b;
    ngx_uint_t                   last;
    ngx_chain_t                 *cl;
    ngx_http_vodlms_ctx_t       *ctx;
    ngx_http_vodlms_loc_conf_t  *vlcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_vodlms_module);

    if (ctx == NULL || !ctx->hls.active || r != r->main) {
        return ngx_http_next_body_filter(r, in);
    }

    if (ctx->hls.done) {
        /*
         * What comes after the answer is swallowed, but the call goes on
         * down: ngx_http_writer() flushes what the write filter still
         * holds of a large signed playlist with ngx_http_output_filter(r,
         * NULL), and that must reach it
         */
        for (cl = in; cl; cl = cl->next) {
            cl->buf->pos = cl->buf->last;
            cl->buf->file_pos = cl->buf->file_last;
        }

        return ngx_http_next_body_filter(r, NULL);
    }

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);
    last = 0;

    if (!ctx->hls.started && in != NULL) {
        ctx->hls.started = 1;

        if (vlcf->hls.enable == NGX_HTTP_VODLMS_HLS_DEFINE) {
            ngx_http_vodlms_hls_keyable(r, &ctx->hls, in->buf);
        }
    }

    for (cl = in; cl; cl = cl->next) {

        b = cl->buf;

        if (ngx_buf_size(b) > 0 && ctx->hls.nbufs++ && ctx->hls.tpl) {
            /*
             * another handler's or filter's bytes after the file's: not the
             * kept answer, and the file's were not read (a 502; no handler
             * nginx has sends a playlist file and more)
             */
            ctx->hls.failed = "more than the file in the answer";
        }

        if (ctx->hls.tpl == NULL
            && ngx_http_vodlms_hls_collect(r, &ctx->hls, b,
                                           vlcf->hls.max_size)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        b->pos = b->last;
        b->file_pos = b->file_last;

        if (b->last_buf) {
            last = 1;
        }
    }

    if (!last) {
        return NGX_OK;
    }

    ctx->hls.done = 1;

    return ngx_http_vodlms_hls_send(r, &ctx->hls);
}


/* the whole playlist is here: sign it, then the header and the body */

static ngx_int_t
ngx_http_vodlms_hls_send(ngx_http_request_t *r,
    ngx_http_vodlms_hls_ctx_t *hctx)
{
    off_t                         len;
    size_t                        out_len, size, value_at;
    ngx_int_t                     rc;
    ngx_buf_t                    *b;
    ngx_chain_t                   out, *cl;
    vodlms_rc_t                   vrc;
    vodlms_hls_err_t              err;
    vodlms_hls_opts_t             opts;
    ngx_http_vodlms_loc_conf_t   *vlcf;

    b = NULL;
    out_len = 0;

    if (hctx->failed) {
        return ngx_http_vodlms_hls_fail(r, hctx, hctx->failed, NULL);
    }

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);

    if (hctx->tpl) {
        rc = ngx_http_vodlms_hls_tpl_chain(r, hctx->tpl, &hctx->query, &cl,
                                           &len);
        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_DECLINED) {
            return ngx_http_vodlms_hls_fail(r, hctx,
                                            "signed-URL parameters that "
                                            "cannot go into a playlist",
                                            NULL);
        }

        return ngx_http_vodlms_hls_out(r, cl, len);
    }

    ngx_memzero(&opts, sizeof(vodlms_hls_opts_t));
    opts.absolute = vlcf->hls.absolute;
    opts.origin = (const char *) vlcf->edge.url.data;
    opts.origin_len = vlcf->edge.url.len;
    opts.max_size = vlcf->hls.max_size;
    opts.max_line = VODLMS_HLS_MAX_LINE_DEFAULT;

    value_at = 0;

    if (vlcf->hls.enable == NGX_HTTP_VODLMS_HLS_DEFINE) {
        opts.define = NGX_HTTP_VODLMS_HLS_VAR;
        opts.define_len = sizeof(NGX_HTTP_VODLMS_HLS_VAR) - 1;
        opts.value_at = &value_at;
    }

    ngx_memzero(&err, sizeof(vodlms_hls_err_t));

    vrc = vodlms_hls_rewrite((const char *) hctx->buf, hctx->len,
                             (const char *) hctx->query.data, hctx->query.len,
                             &opts, NULL, 0, &size, &err);

    if (vrc == VODLMS_OK) {
        b = ngx_create_temp_buf(r->pool, size ? size : 1);
        if (b == NULL) {
            return NGX_ERROR;
        }

        vrc = vodlms_hls_rewrite((const char *) hctx->buf, hctx->len,
                                 (const char *) hctx->query.data,
                                 hctx->query.len, &opts, (char *) b->pos,
                                 size, &out_len, &err);

        if (vrc == VODLMS_OK) {
            b->last = b->pos + out_len;
        }
    }

    if (vrc != VODLMS_OK) {
        return ngx_http_vodlms_hls_fail(r, hctx,
                                        vrc == VODLMS_ETOOLONG
                                        ? "too large"
                                        : vrc == VODLMS_EREFUSED
                                        ? "an absolute URI, which "
                                          "vodlms_hls_sign_absolute refuses"
                                        : vrc == VODLMS_EMALFORMED
                                        ? "malformed"
                                        : vodlms_rc_str(vrc),
                                        &err);
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "vodlms hls: playlist signed, %uz bytes in, %uz out",
                   hctx->len, out_len);

    if (opts.define && hctx->key.path.len && hctx->nbufs == 1) {
        ngx_http_vodlms_hls_tpl_keep(r, &hctx->key, b->pos, out_len, value_at,
                                     hctx->query.len);
    }

    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_vodlms_hls_out(r, &out, (off_t) out_len);
}


/* the held header with the signed length, then the signed playlist */

static ngx_int_t
ngx_http_vodlms_hls_out(ngx_http_request_t *r, ngx_chain_t *out,
    off_t out_len)
{
    ngx_int_t  rc;

    r->headers_out.content_length_n = out_len;

    if (r->headers_out.content_length) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }

    rc = ngx_http_next_header_filter(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_next_body_filter(r, out);
}


/*
 * Never the unsigned playlist: a 502 (the origin's playlist is what is
 * wrong) with a JSON reason, and one error line that says which and where
 */

static ngx_int_t
ngx_http_vodlms_hls_fail(ngx_http_request_t *r,
    ngx_http_vodlms_hls_ctx_t *hctx, const char *reason,
    vodlms_hls_err_t *err)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    static u_char  body[] = "{\"error\":\"bad_playlist\"}\n";
    static ngx_str_t  no_store = ngx_string("no-store");

    if (err && err->line) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "vodlms hls: the playlist \"%V\" cannot be signed: "
                      "%s (%s, line %uz)", &r->uri, reason,
                      err->reason ? err->reason : "", err->line);

    } else {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "vodlms hls: the playlist \"%V\" cannot be signed: %s",
                      &r->uri, reason);
    }

    hctx->done = 1;

    r->headers_out.status = NGX_HTTP_BAD_GATEWAY;
    r->headers_out.status_line.len = 0;
    r->headers_out.content_length_n = sizeof(body) - 1;

    if (r->headers_out.content_length) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }

    if (r->headers_out.content_encoding) {
        r->headers_out.content_encoding->hash = 0;
        r->headers_out.content_encoding = NULL;
    }

    ngx_http_clear_last_modified(r);

    /* an error of this viewer's request: for no cache to keep */
    ngx_http_vodlms_hls_clear_cache_headers(r);

    if (ngx_http_vodlms_add_header(r, "Cache-Control", &no_store) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.charset.len = 0;

    rc = ngx_http_next_header_filter(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = body;
    b->last = body + sizeof(body) - 1;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_next_body_filter(r, &out);
}


ngx_int_t
ngx_http_vodlms_hls_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_vodlms_hls_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_vodlms_hls_body_filter;

    return NGX_OK;
}


void
ngx_http_vodlms_hls_create_conf(ngx_http_vodlms_hls_conf_t *c)
{
    c->enable = NGX_CONF_UNSET_UINT;
    c->absolute = NGX_CONF_UNSET_UINT;
    c->max_size = NGX_CONF_UNSET_SIZE;
}


char *
ngx_http_vodlms_hls_merge_conf(ngx_conf_t *cf,
    ngx_http_vodlms_hls_conf_t *prev, ngx_http_vodlms_hls_conf_t *conf)
{
    ngx_http_vodlms_loc_conf_t  *vlcf;

    ngx_conf_merge_uint_value(conf->enable, prev->enable,
                              NGX_HTTP_VODLMS_HLS_OFF);
    ngx_conf_merge_uint_value(conf->absolute, prev->absolute,
                              VODLMS_HLS_ABS_KEEP);
    ngx_conf_merge_size_value(conf->max_size, prev->max_size,
                              VODLMS_HLS_MAX_SIZE_DEFAULT);

    if (conf->max_size == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"vodlms_hls_sign_max_size\" must be more "
                           "than 0");
        return NGX_CONF_ERROR;
    }

    if (!conf->enable) {
        return NGX_CONF_OK;
    }

    vlcf = (ngx_http_vodlms_loc_conf_t *)
           ((u_char *) conf - offsetof(ngx_http_vodlms_loc_conf_t, hls));

    if (!vlcf->edge.enable) {
        ngx_http_vodlms_merge_error(cf,
            "\"vodlms_hls_sign\" signs playlists that \"vodlms_edge\" let "
            "through with a signed URL: add \"vodlms_edge on\"");
        return NGX_CONF_ERROR;
    }

    if (conf->absolute == VODLMS_HLS_ABS_ORIGIN && vlcf->edge.url.len == 0) {
        ngx_http_vodlms_merge_error(cf,
            "\"vodlms_hls_sign_absolute edge_url\" signs the absolute URIs "
            "on \"vodlms_edge_url\": set it");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}
