/*
 * The self-hosted edge (access phase): verify CloudFront signed cookies or
 * signed URLs the way CloudFront does, for sites without CloudFront and for
 * every test and demo here.  The pure core (core/vodlms_cf_verify.c) does
 * the checking; this file feeds it the request as the viewer sent it,
 * remembers good signatures in shared memory until their policy expires,
 * and sets CDN-style cache headers on what it lets through.
 */

#include "ngx_http_vodlms_module.h"

#include "vodlms_cloudfront.h"


ngx_conf_enum_t  ngx_http_vodlms_edge_matches[] = {
    { ngx_string("sections"), VODLMS_CF_MATCH_SECTIONS },
    { ngx_string("anywhere"), VODLMS_CF_MATCH_ANYWHERE },
    { ngx_null_string, 0 }
};


typedef struct {
    ngx_http_request_t             *r;
    ngx_http_vodlms_edge_conf_t    *ecf;
    ngx_http_vodlms_edge_ctx_t     *ctx;
} ngx_http_vodlms_edge_cache_data_t;


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;


static ngx_int_t ngx_http_vodlms_edge_cookies(ngx_http_request_t *r,
    ngx_str_t *out);
static int ngx_http_vodlms_edge_sig_lookup(void *data, const char *key_id,
    size_t key_id_len, vodlms_cf_hash_t hash, const unsigned char *sig,
    size_t sig_len, const char *policy, size_t policy_len, unsigned char *val,
    size_t val_size, size_t *val_len);
static void ngx_http_vodlms_edge_sig_store(void *data, const char *key_id,
    size_t key_id_len, vodlms_cf_hash_t hash, const unsigned char *sig,
    size_t sig_len, const char *policy, size_t policy_len,
    const unsigned char *val, size_t val_len, int64_t expires);
static ngx_int_t ngx_http_vodlms_edge_sig_key(ngx_http_request_t *r,
    const char *key_id, size_t key_id_len, vodlms_cf_hash_t hash,
    const unsigned char *sig, size_t sig_len, const char *policy,
    size_t policy_len, ngx_str_t *key);
static ngx_int_t ngx_http_vodlms_edge_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_vodlms_edge_cache_ns(ngx_conf_t *cf,
    ngx_http_vodlms_edge_conf_t *conf);


ngx_int_t
ngx_http_vodlms_edge_handler(ngx_http_request_t *r)
{
    u_char                             *q;
    u_char                              ipbuf[NGX_INET_ADDRSTRLEN];
    ngx_str_t                           cookies, host, detail, extra, ip;
    vodlms_rc_t                         rc;
    vodlms_cf_result_t                  res;
    vodlms_cf_request_t                 req;
    vodlms_cf_sig_cache_t               sc;
    ngx_http_vodlms_ctx_t              *ctx;
    ngx_http_vodlms_loc_conf_t         *vlcf;
    ngx_http_vodlms_edge_conf_t        *ecf;
    ngx_http_vodlms_edge_cache_data_t   cd;

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);
    ecf = &vlcf->edge;

    if (!ecf->enable) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_vodlms_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->edge.verified) {
        return NGX_OK;
    }

    ngx_memzero(&req, sizeof(vodlms_cf_request_t));

    /* the URL as the viewer used it: the public base, then the raw line */

    if (ecf->url.len) {
        q = ngx_strlchr(ecf->url.data, ecf->url.data + ecf->url.len, ':');
        req.scheme.data = (char *) ecf->url.data;
        req.scheme.len = q - ecf->url.data;
        req.host.data = (char *) q + 3;
        req.host.len = ecf->url.data + ecf->url.len - (q + 3);

    } else {
#if (NGX_HTTP_SSL)
        if (r->connection->ssl) {
            req.scheme.data = "https";
            req.scheme.len = 5;
        } else
#endif
        {
            req.scheme.data = "http";
            req.scheme.len = 4;
        }

        host = r->headers_in.host ? r->headers_in.host->value
                                  : r->headers_in.server;
        req.host.data = (char *) host.data;
        req.host.len = host.len;
    }

    q = ngx_strlchr(r->unparsed_uri.data,
                    r->unparsed_uri.data + r->unparsed_uri.len, '?');

    req.path.data = (char *) r->unparsed_uri.data;

    if (q) {
        req.path.len = q - r->unparsed_uri.data;
        req.query.data = (char *) q + 1;
        req.query.len = r->unparsed_uri.data + r->unparsed_uri.len - q - 1;

    } else {
        req.path.len = r->unparsed_uri.len;
    }

    /*
     * The policy is matched against the raw path, but the file served is
     * the one nginx finds after decoding and resolving it: refuse what
     * would make the two differ (dot segments, encoded separators).
     */

    if (!vodlms_cf_path_safe(req.path.data, req.path.len)) {
        ctx->edge.verdict = "bad_path";
        ngx_str_set(&detail, "a \".\" or \"..\" segment or an encoded "
                             "separator in the path");
        return ngx_http_vodlms_deny(r, NGX_HTTP_VODLMS_BAD_PATH, &detail);
    }

    if (ngx_http_vodlms_edge_cookies(r, &cookies) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    req.cookie.data = (char *) cookies.data;
    req.cookie.len = cookies.len;
    /* an IPv4 client on a dual-stack listener is checked as IPv4 */
    if (ngx_http_vodlms_client_ipv4(r->connection, ipbuf, &ip) == NGX_OK) {
        req.client_ip.data = (char *) ip.data;
        req.client_ip.len = ip.len;

    } else {
        req.client_ip.data = (char *) r->connection->addr_text.data;
        req.client_ip.len = r->connection->addr_text.len;
    }
    req.now = ngx_time();
    req.keys = ecf->keys->elts;
    req.nkeys = ecf->keys->nelts;
    req.match = ecf->match;

    if (ecf->cache) {
        cd.r = r;
        cd.ecf = ecf;
        cd.ctx = &ctx->edge;

        sc.data = &cd;
        sc.lookup = ngx_http_vodlms_edge_sig_lookup;
        sc.store = ngx_http_vodlms_edge_sig_store;
        req.sig_cache = &sc;
    }

    rc = vodlms_cf_verify(&req, &res);

    if (rc != VODLMS_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "vodlms edge: verification failed: %s",
                      vodlms_rc_str(rc));
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->edge.verdict = vodlms_cf_verdict_str(res.verdict);

    if (ecf->cache) {
        ctx->edge.sig_cache_status = res.sig_cached ? "HIT" : "MISS";
    }

    if (res.verdict == VODLMS_CF_ALLOW) {
        ctx->edge.verified = 1;

        /* a playlist asked for with a signed URL: its URIs get the same */
        if (res.source == VODLMS_CF_SRC_URL
            && ngx_http_vodlms_hls_prepare(r) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return NGX_OK;
    }

    /* "expired (now >= DateLessThan), cookies" for the log line */

    detail.len = ngx_strlen(ctx->edge.verdict) + ngx_strlen(res.detail)
                 + sizeof(" (), no credentials");
    detail.data = ngx_pnalloc(r->pool, detail.len);

    extra.len = sizeof(",\"reason\":\"\"") + ngx_strlen(ctx->edge.verdict);
    extra.data = ngx_pnalloc(r->pool, extra.len);

    if (detail.data == NULL || extra.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    detail.len = ngx_sprintf(detail.data, "%s (%s), %s", ctx->edge.verdict,
                             res.detail,
                             res.source == VODLMS_CF_SRC_URL ? "signed URL"
                             : res.source == VODLMS_CF_SRC_COOKIE ? "cookies"
                             : "no credentials")
                 - detail.data;

    /* the verdict codes are fixed ASCII words */
    extra.len = ngx_sprintf(extra.data, ",\"reason\":\"%s\"",
                            ctx->edge.verdict)
                - extra.data;

    return ngx_http_vodlms_deny_extra(r, NGX_HTTP_VODLMS_EDGE_DENIED, &detail,
                                      &extra);
}


/* every Cookie header, in order, as one "a=1; b=2" string */

static ngx_int_t
ngx_http_vodlms_edge_cookies(ngx_http_request_t *r, ngx_str_t *out)
{
    u_char           *p;
    size_t            len;
    ngx_table_elt_t  *h;

#if (nginx_version >= 1023000)
    ngx_table_elt_t  *first = r->headers_in.cookie;
#   define ngx_http_vodlms_each_cookie(h)  for (h = first; h; h = h->next)
#else
    ngx_uint_t        i;
    ngx_table_elt_t **hh = r->headers_in.cookies.elts;
#   define ngx_http_vodlms_each_cookie(h)                                     \
        for (i = 0; i < r->headers_in.cookies.nelts && (h = hh[i]); i++)
#endif

    len = 0;
    ngx_http_vodlms_each_cookie(h) {
        len += h->value.len + 2;
    }

    ngx_str_null(out);

    if (len == 0) {
        return NGX_OK;
    }

    out->data = ngx_pnalloc(r->pool, len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    p = out->data;
    ngx_http_vodlms_each_cookie(h) {
        if (p != out->data) {
            *p++ = ';';
            *p++ = ' ';
        }
        p = ngx_cpymem(p, h->value.data, h->value.len);
    }

#undef ngx_http_vodlms_each_cookie

    out->len = p - out->data;

    return NGX_OK;
}


/* the signature cache: a digest of everything the check depends on */

static ngx_int_t
ngx_http_vodlms_edge_sig_key(ngx_http_request_t *r, const char *key_id,
    size_t key_id_len, vodlms_cf_hash_t hash, const unsigned char *sig,
    size_t sig_len, const char *policy, size_t policy_len, ngx_str_t *key)
{
    u_char  *p;

    key->len = key_id_len + 1 + 1 + 1 + sig_len + 1 + policy_len;
    key->data = ngx_pnalloc(r->pool, key->len);
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(key->data, key_id, key_id_len);
    *p++ = '\0';
    *p++ = (u_char) ('0' + hash);
    *p++ = '\0';
    p = ngx_cpymem(p, sig, sig_len);
    *p++ = '\0';
    ngx_memcpy(p, policy, policy_len);

    return NGX_OK;
}


static int
ngx_http_vodlms_edge_sig_lookup(void *data, const char *key_id,
    size_t key_id_len, vodlms_cf_hash_t hash, const unsigned char *sig,
    size_t sig_len, const char *policy, size_t policy_len, unsigned char *val,
    size_t val_size, size_t *val_len)
{
    ngx_http_vodlms_edge_cache_data_t  *cd = data;

    ngx_str_t  key, ns;

    *val_len = 0;

    if (ngx_http_vodlms_edge_sig_key(cd->r, key_id, key_id_len, hash, sig,
                                     sig_len, policy, policy_len, &key)
        != NGX_OK)
    {
        return 0;
    }

    ns = cd->ecf->cache_ns;

    /* the parsed conditions, or the one-byte mark of a canned policy */
    return ngx_vodlms_shm_cache_get(cd->ecf->cache, cd->r->connection->log,
                                    &ns, &key, val, val_size, val_len)
           == NGX_OK;
}


static void
ngx_http_vodlms_edge_sig_store(void *data, const char *key_id,
    size_t key_id_len, vodlms_cf_hash_t hash, const unsigned char *sig,
    size_t sig_len, const char *policy, size_t policy_len,
    const unsigned char *val, size_t val_len, int64_t expires)
{
    ngx_http_vodlms_edge_cache_data_t  *cd = data;

    int64_t    left;
    ngx_str_t  key, ns;

    left = expires - (int64_t) ngx_time();

    /* expired or absurd: nothing worth remembering */
    if (left <= 0 || left > 366 * 86400) {
        left = (left <= 0) ? 0 : 366 * 86400;
    }

    if (left == 0
        || ngx_http_vodlms_edge_sig_key(cd->r, key_id, key_id_len, hash, sig,
                                        sig_len, policy, policy_len, &key)
           != NGX_OK)
    {
        return;
    }

    ns = cd->ecf->cache_ns;

    if (val_len == 0) {
        val = (const unsigned char *) "1";
        val_len = 1;
    }

    (void) ngx_vodlms_shm_cache_put(cd->ecf->cache, cd->r->connection->log,
                                    &ns, &key, (u_char *) val, val_len,
                                    (ngx_msec_t) left * 1000);
}


/* CDN cache headers on what the edge let through; no gzip for media */

static ngx_int_t
ngx_http_vodlms_edge_header_filter(ngx_http_request_t *r)
{
    u_char                       *p;
    ngx_str_t                     v;
    ngx_uint_t                    playlist;
    ngx_http_vodlms_ctx_t        *ctx;
    ngx_http_vodlms_loc_conf_t   *vlcf;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_vodlms_module);

    if (ctx == NULL || !ctx->edge.verified
        || (r->headers_out.status != NGX_HTTP_OK
            && r->headers_out.status != NGX_HTTP_PARTIAL_CONTENT
            && r->headers_out.status != NGX_HTTP_NOT_MODIFIED))
    {
        return ngx_http_next_header_filter(r);
    }

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);

    playlist = (r->uri.len > 5
                && ngx_strncasecmp(r->uri.data + r->uri.len - 5,
                                   (u_char *) ".m3u8", 5) == 0);

    v.data = ngx_pnalloc(r->pool,
                         sizeof("max-age=, immutable") + NGX_TIME_T_LEN);
    if (v.data == NULL) {
        return NGX_ERROR;
    }

    if (playlist && ctx->hls.query.len) {
        /*
         * signed for this viewer: a shared cache must not hand the
         * signature to others (it grants the whole tree), nor keep it
         */
        p = ngx_cpymem(v.data, "private, no-store",
                       sizeof("private, no-store") - 1);

        /* and only that: not next to an upstream's "public, max-age" */
        ngx_http_vodlms_hls_clear_cache_headers(r);

    } else if (playlist) {
        /* playlists of a VOD are final, but keep them short: re-encodes */
        p = ngx_sprintf(v.data, "max-age=%T", vlcf->edge.playlist_max_age);

    } else {
        p = ngx_sprintf(v.data, "max-age=%T, immutable",
                        vlcf->edge.segment_max_age);

#if (NGX_HTTP_GZIP)
        /* segments are compressed media: gzip only burns CPU */
        r->gzip_tested = 1;
        r->gzip_ok = 0;
#endif
    }

    v.len = p - v.data;

    if (ngx_http_vodlms_add_header(r, "Cache-Control", &v) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_next_header_filter(r);
}


ngx_int_t
ngx_http_vodlms_edge_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_vodlms_edge_header_filter;

    return NGX_OK;
}


/* configuration */

void
ngx_http_vodlms_edge_create_conf(ngx_http_vodlms_edge_conf_t *ecf)
{
    ecf->enable = NGX_CONF_UNSET;
    ecf->keys = NGX_CONF_UNSET_PTR;
    ecf->match = NGX_CONF_UNSET_UINT;
    ecf->cache = NGX_CONF_UNSET_PTR;
    ecf->playlist_max_age = NGX_CONF_UNSET;
    ecf->segment_max_age = NGX_CONF_UNSET;
}


char *
ngx_http_vodlms_edge_merge_conf(ngx_conf_t *cf,
    ngx_http_vodlms_edge_conf_t *prev, ngx_http_vodlms_edge_conf_t *conf)
{
    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_ptr_value(conf->keys, prev->keys, NULL);
    ngx_conf_merge_str_value(conf->url, prev->url, "");
    ngx_conf_merge_uint_value(conf->match, prev->match,
                              VODLMS_CF_MATCH_SECTIONS);
    ngx_conf_merge_ptr_value(conf->cache, prev->cache,
                             NGX_HTTP_VODLMS_CACHE_AUTO);
    ngx_conf_merge_sec_value(conf->playlist_max_age, prev->playlist_max_age,
                             5);
    ngx_conf_merge_sec_value(conf->segment_max_age, prev->segment_max_age,
                             365 * 86400);

    if (!conf->enable) {
        return NGX_CONF_OK;
    }

    if (conf->keys == NULL) {
        ngx_http_vodlms_merge_error(cf,
                                    "\"vodlms_edge\" needs the trusted keys: "
                                    "add \"vodlms_edge_public_key\"");
        return NGX_CONF_ERROR;
    }

    if (conf->cache == NGX_HTTP_VODLMS_CACHE_AUTO) {
        conf->cache = ngx_http_vodlms_auto_sig_cache(cf);
        if (conf->cache == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (conf->cache && !ngx_vodlms_shm_cache_defined(conf->cache)) {
        ngx_http_vodlms_merge_error(cf,
                                    "unknown vodlms_cache_zone \"%V\" in "
                                    "\"vodlms_edge_signature_cache\"",
                                    &conf->cache->shm.name);
        return NGX_CONF_ERROR;
    }

    if (conf->cache && conf->cache_ns.len == 0
        && ngx_http_vodlms_edge_cache_ns(cf, conf) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * The signature cache's namespace names the keys it was verified with: a
 * SHA-256 over each Key-Pair-Id and its public key (DER).  A key replaced
 * under the same id (then a reload, which keeps the zone), or another
 * location trusting other keys under the same ids, never finds a verdict
 * made with the old or the other key.
 */

static ngx_int_t
ngx_http_vodlms_edge_cache_ns(ngx_conf_t *cf,
    ngx_http_vodlms_edge_conf_t *conf)
{
    int               n;
    u_char           *p;
    ngx_uint_t        i;
    unsigned char    *der, *q, md[EVP_MAX_MD_SIZE];
    unsigned int      mdlen;
    EVP_MD_CTX       *ctx;
    vodlms_cf_key_t  *k;

    ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0,
                      "vodlms edge: cannot start a SHA-256 digest");
        return NGX_ERROR;
    }

    k = conf->keys->elts;

    for (i = 0; i < conf->keys->nelts; i++) {
        n = i2d_PUBKEY(k[i].key, NULL);
        der = n > 0 ? ngx_alloc(n, cf->log) : NULL;

        if (der == NULL) {
            EVP_MD_CTX_free(ctx);
            ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0,
                          "vodlms edge: cannot encode the public key \"%*s\"",
                          k[i].id_len, k[i].id);
            return NGX_ERROR;
        }

        q = der;
        (void) i2d_PUBKEY(k[i].key, &q);

        if (EVP_DigestUpdate(ctx, k[i].id, k[i].id_len) != 1
            || EVP_DigestUpdate(ctx, "", 1) != 1
            || EVP_DigestUpdate(ctx, der, n) != 1)
        {
            ngx_free(der);
            EVP_MD_CTX_free(ctx);
            ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0,
                          "vodlms edge: SHA-256 of the keys failed");
            return NGX_ERROR;
        }

        ngx_free(der);
    }

    if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1) {
        EVP_MD_CTX_free(ctx);
        ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0,
                      "vodlms edge: SHA-256 of the keys failed");
        return NGX_ERROR;
    }

    EVP_MD_CTX_free(ctx);

    /* 128 bits of it in hex is plenty to tell key sets apart */
    conf->cache_ns.data = ngx_pnalloc(cf->pool, sizeof("cfverify|") - 1 + 32);
    if (conf->cache_ns.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(conf->cache_ns.data, "cfverify|", sizeof("cfverify|") - 1);
    p = ngx_hex_dump(p, md, 16);
    conf->cache_ns.len = p - conf->cache_ns.data;

    return NGX_OK;
}


/* vodlms_edge_public_key key_pair_id /path/to/public_key.pem; */

char *
ngx_http_vodlms_edge_key(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vodlms_loc_conf_t  *vlcf = conf;

    ngx_str_t        *value;
    ngx_uint_t        i;
    vodlms_cf_key_t  *k;

    value = cf->args->elts;

    if (vlcf->edge.keys == NGX_CONF_UNSET_PTR) {
        vlcf->edge.keys = ngx_array_create(cf->pool, 2,
                                           sizeof(vodlms_cf_key_t));
        if (vlcf->edge.keys == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    k = vlcf->edge.keys->elts;
    for (i = 0; i < vlcf->edge.keys->nelts; i++) {
        if (k[i].id_len == value[1].len
            && ngx_strncmp(k[i].id, value[1].data, value[1].len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate key pair id \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    k = ngx_array_push(vlcf->edge.keys);
    if (k == NULL) {
        return NGX_CONF_ERROR;
    }

    k->id = (char *) value[1].data;
    k->id_len = value[1].len;
    k->key = NULL;

    return ngx_http_vodlms_conf_key(cf, &value[1], &value[2], 0, &k->key);
}


/* vodlms_edge_url https://cdn.example.com; scheme and host only */

char *
ngx_http_vodlms_edge_url(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vodlms_loc_conf_t  *vlcf = conf;

    ngx_str_t  *value;

    if (vlcf->edge.url.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_http_vodlms_parse_base_url(&value[1], 0, &vlcf->edge.url)
        != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid edge URL \"%V\", expected "
                           "\"https://host[:port]\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


char *
ngx_http_vodlms_edge_cache(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vodlms_loc_conf_t  *vlcf = conf;

    ngx_str_t  *value;

    if (vlcf->edge.cache != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        vlcf->edge.cache = NULL;
        return NGX_CONF_OK;
    }

    vlcf->edge.cache = ngx_vodlms_shm_cache_ref(cf, &value[1]);

    return vlcf->edge.cache ? NGX_CONF_OK : NGX_CONF_ERROR;
}
