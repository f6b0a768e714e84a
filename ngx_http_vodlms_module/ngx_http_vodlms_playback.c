/*
 * The playback endpoint (content handler), after the session gate and the
 * enrollment check have allowed the request.
 *
 * Cookies mode: JSON {videoId, title, duration, status, manifestUrl,
 * expiresAt, resumeAt} plus the CloudFront signed cookies for a custom
 * policy over the video's HLS tree (a wildcard under "<url>/hls/<id>/").
 * Redirect mode: 302 to a signed URL of the master playlist.
 *
 * Expiries are rounded up to a bucket, so that everyone watching a video
 * within a bucket gets the same policy bytes; signatures are cached by
 * those bytes in shared memory, so RSA runs once per video per bucket.
 */

#include "ngx_http_vodlms_module.h"


/* the longest storage prefix a playback answer carries */
#define NGX_HTTP_VODLMS_PREFIX_MAX  512
#include "vodlms_cloudfront.h"


ngx_conf_enum_t  ngx_http_vodlms_cf_hashes[] = {
    { ngx_string("sha1"), VODLMS_CF_SHA1 },
    { ngx_string("sha256"), VODLMS_CF_SHA256 },
    { ngx_null_string, 0 }
};


ngx_conf_enum_t  ngx_http_vodlms_cf_policies[] = {
    { ngx_string("canned"), VODLMS_CF_CANNED },
    { ngx_string("custom"), VODLMS_CF_CUSTOM },
    { ngx_null_string, 0 }
};


ngx_conf_enum_t  ngx_http_vodlms_samesite[] = {
    { ngx_string("lax"), NGX_HTTP_VODLMS_SAMESITE_LAX },
    { ngx_string("strict"), NGX_HTTP_VODLMS_SAMESITE_STRICT },
    { ngx_string("none"), NGX_HTTP_VODLMS_SAMESITE_NONE },
    { ngx_null_string, 0 }
};


static ngx_int_t ngx_http_vodlms_playback_handler(ngx_http_request_t *r);
static time_t ngx_http_vodlms_playback_left(ngx_http_request_t *r);
static ngx_int_t ngx_http_vodlms_playback_sign(ngx_http_request_t *r,
    ngx_http_vodlms_playback_conf_t *pcf, vodlms_cf_sign_t *in,
    vodlms_cf_target_t target, vodlms_cf_signed_t *out);
static ngx_int_t ngx_http_vodlms_playback_cookies(ngx_http_request_t *r,
    ngx_http_vodlms_playback_conf_t *pcf, vodlms_cf_signed_t *s,
    ngx_str_t *path, time_t expires);
static ngx_int_t ngx_http_vodlms_playback_json(ngx_http_request_t *r,
    ngx_str_t *id, ngx_str_t *manifest, time_t expires, ngx_str_t *out);
static ngx_int_t ngx_http_vodlms_cors(ngx_http_request_t *r,
    ngx_http_vodlms_playback_conf_t *pcf);


static ngx_int_t
ngx_http_vodlms_playback_handler(ngx_http_request_t *r)
{
    u_char                            *p, *buf;
    size_t                             len;
    time_t                             now, expires;
    ngx_int_t                          rc;
    ngx_buf_t                         *b;
    ngx_str_t                          prefix, url, resource, path, body;
    ngx_str_t                          cookie_path;
    ngx_str_t                          location, ip;
    vodlms_cf_sign_t                   in;
    vodlms_cf_signed_t                 s;
    ngx_http_vodlms_ctx_t             *ctx;
    ngx_http_vodlms_column_t          *col;
    ngx_http_vodlms_loc_conf_t        *vlcf;
    ngx_http_vodlms_playback_conf_t   *pcf;

    u_char  ipbuf[NGX_INET_ADDRSTRLEN + 4];

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);
    pcf = &vlcf->playback;

    if (r->method == NGX_HTTP_OPTIONS) {
        return ngx_http_vodlms_playback_preflight(r);
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_vodlms_module);

    if (ctx) {
        ngx_http_vodlms_set_endpoint(ctx, NGX_HTTP_VODLMS_EP_PLAYBACK);
    }

    /* the access phase must have allowed this very video */
    if (ctx == NULL || ctx->enroll.state != NGX_HTTP_VODLMS_ENROLL_DONE
        || ctx->enroll.result != NGX_HTTP_VODLMS_OK
        || ctx->enroll.columns == NULL)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "vodlms: playback without an enrollment answer "
                      "(an internal redirect loses it: keep "
                      "vodlms_enrollment_check in this location)");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* where the video's HLS tree lives: its storage prefix, or hls/<id>/ */

    col = ngx_http_vodlms_enroll_col(r, NGX_HTTP_VODLMS_COL_STORAGE_PREFIX);

    if (col && !col->null && col->value.len) {
        prefix = col->value;

        /*
         * It goes into the manifest URL, the signed policy and the cookies'
         * Path: an LMS's own column has no CHECK, and "x; Domain=evil" or a
         * line break would become a cookie attribute or a header of ours
         */
        if (!vodlms_storage_prefix_valid((char *) prefix.data, prefix.len,
                                         NGX_HTTP_VODLMS_PREFIX_MAX))
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "vodlms: the enrollment row's storage_prefix for "
                          "video \"%V\" is not a safe path (segments of "
                          "[A-Za-z0-9_.-] joined by \"/\", at most %d "
                          "bytes): refused", &ctx->enroll.video_id,
                          NGX_HTTP_VODLMS_PREFIX_MAX);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

    } else {
        prefix.len = sizeof("hls//") - 1 + ctx->enroll.video_id.len;
        prefix.data = ngx_pnalloc(r->pool, prefix.len);
        if (prefix.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        ngx_sprintf(prefix.data, "hls/%V/", &ctx->enroll.video_id);
    }

    len = pcf->base_url.len + 1 + prefix.len + sizeof("master.m3u8") + 1;

    buf = ngx_pnalloc(r->pool, 3 * len);
    if (buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* "<url>/<prefix>/" with exactly one '/' between and at the end */
    path.data = buf;
    p = ngx_sprintf(buf, "/%V", &prefix);
    if (p[-1] != '/') {
        *p++ = '/';
    }
    path.len = p - path.data;

    url.data = p;
    p = ngx_sprintf(p, "%V%Vmaster.m3u8", &pcf->base_url, &path);
    url.len = p - url.data;

    resource.data = p;
    p = ngx_sprintf(p, "%V%V*", &pcf->base_url, &path);
    resource.len = p - resource.data;

    /*
     * The cookies' Path is the resource's path: with a base URL that has
     * one of its own ("https://cdn/media"), browsers must send them to
     * /media/hls/<id>/..., not /hls/<id>/...
     */

    cookie_path = path;

    if (pcf->base_path.len) {
        cookie_path.len = pcf->base_path.len + path.len;
        cookie_path.data = ngx_pnalloc(r->pool, cookie_path.len);
        if (cookie_path.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        ngx_memcpy(ngx_cpymem(cookie_path.data, pcf->base_path.data,
                              pcf->base_path.len),
                   path.data, path.len);
    }

    now = ngx_time();
    expires = now + pcf->ttl;

    /*
     * A signed manifest URL is loaded once: a player cannot swap the URLs
     * of segments it already has.  It lives for what is left of the video
     * from where it resumes, plus the TTL as the margin for pauses and
     * buffering (docs/security.md: what a leaked one allows, how long).
     */
    if (pcf->mode == NGX_HTTP_VODLMS_PLAYBACK_URL) {
        expires += ngx_http_vodlms_playback_left(r);
    }

    if (pcf->bucket > 1) {
        expires = (expires + pcf->bucket - 1) / pcf->bucket * pcf->bucket;
    }

    ngx_memzero(&in, sizeof(vodlms_cf_sign_t));
    in.url = (char *) url.data;
    in.url_len = url.len;
    in.expires = expires;
    in.key_pair_id = (char *) pcf->signer->id.data;
    in.key_pair_id_len = pcf->signer->id.len;
    in.hash = pcf->hash;

    if (pcf->ip_binding
        && ngx_http_vodlms_client_ipv4(r->connection, ipbuf, &ip) == NGX_OK)
    {
        in.ip = (char *) ip.data;
        in.ip_len = ip.len;
    }

    if (pcf->mode == NGX_HTTP_VODLMS_PLAYBACK_REDIRECT) {

        if (pcf->url_policy == VODLMS_CF_CUSTOM) {
            in.resource = (char *) resource.data;
            in.resource_len = resource.len;
        }

        if (ngx_http_vodlms_playback_sign(r, pcf, &in, VODLMS_CF_FOR_URL, &s)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        location.len = vodlms_cf_url_size(&s);
        location.data = ngx_pnalloc(r->pool, location.len + 1);
        if (location.data == NULL
            || vodlms_cf_url_build(&s, (char *) location.data,
                                   location.len + 1, &location.len)
               != VODLMS_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_http_clear_location(r);

        r->headers_out.location = ngx_list_push(&r->headers_out.headers);
        if (r->headers_out.location == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        r->headers_out.location->hash = 1;
        ngx_str_set(&r->headers_out.location->key, "Location");
        r->headers_out.location->value = location;
#if (nginx_version >= 1023000)
        r->headers_out.location->next = NULL;
#endif

        ngx_str_set(&body, "no-store");
        if (ngx_http_vodlms_add_header(r, "Cache-Control", &body) != NGX_OK
            || ngx_http_vodlms_cors(r, pcf) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return NGX_HTTP_MOVED_TEMPORARILY;
    }

    if (pcf->mode == NGX_HTTP_VODLMS_PLAYBACK_URL) {

        /* a wildcard: vodlms_hls_sign gives every URI of the tree the same */
        in.resource = (char *) resource.data;
        in.resource_len = resource.len;

        if (ngx_http_vodlms_playback_sign(r, pcf, &in, VODLMS_CF_FOR_URL, &s)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        location.len = vodlms_cf_url_size(&s);
        location.data = ngx_pnalloc(r->pool, location.len + 1);
        if (location.data == NULL
            || vodlms_cf_url_build(&s, (char *) location.data,
                                   location.len + 1, &location.len)
               != VODLMS_OK
            || ngx_http_vodlms_playback_json(r, &ctx->enroll.video_id,
                                             &location, expires, &body)
               != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        goto send;
    }

    /* cookies: a wildcard over the tree, so always a custom policy */

    in.resource = (char *) resource.data;
    in.resource_len = resource.len;

    if (ngx_http_vodlms_playback_sign(r, pcf, &in, VODLMS_CF_FOR_COOKIES, &s)
        != NGX_OK
        || ngx_http_vodlms_playback_cookies(r, pcf, &s, &cookie_path, expires)
           != NGX_OK
        || ngx_http_vodlms_playback_json(r, &ctx->enroll.video_id, &url,
                                         expires, &body)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

send:

    ngx_str_set(&location, "no-store");
    if (ngx_http_vodlms_add_header(r, "Cache-Control", &location) != NGX_OK
        || ngx_http_vodlms_cors(r, pcf) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = body.data;
    b->last = body.data + body.len;
    b->memory = 1;

    return ngx_http_vodlms_send(r, NGX_HTTP_OK, "application/json", b);
}


/*
 * What is left of the video from where the viewer resumes, in whole
 * seconds (rounded up), by the enrollment row's duration_seconds only (a
 * progress entry's duration may be a player's word): 0 when the row has
 * none, and at most NGX_HTTP_VODLMS_URL_LEFT_MAX
 */

#define NGX_HTTP_VODLMS_URL_LEFT_MAX  86400

static time_t
ngx_http_vodlms_playback_left(ngx_http_request_t *r)
{
    double                     position, duration, left;
    int64_t                    ms;
    ngx_uint_t                 completed;
    ngx_http_vodlms_column_t  *col;

    col = ngx_http_vodlms_enroll_col(r, NGX_HTTP_VODLMS_COL_DURATION);

    if (ngx_http_vodlms_column_ms(col, &ms) != NGX_OK || ms <= 0) {
        return 0;
    }

    duration = (double) ms / 1000.0;

    if (ngx_http_vodlms_progress_resume(r, &position, &left, &completed)
        != NGX_OK)
    {
        position = 0;
    }

    left = duration - (position > 0 && position < duration ? position : 0);

    if (left > NGX_HTTP_VODLMS_URL_LEFT_MAX) {
        left = NGX_HTTP_VODLMS_URL_LEFT_MAX;
    }

    return (time_t) left + ((double) (time_t) left < left);
}


/* prepare, then the signature from the cache or from the key */

static ngx_int_t
ngx_http_vodlms_playback_sign(ngx_http_request_t *r,
    ngx_http_vodlms_playback_conf_t *pcf, vodlms_cf_sign_t *in,
    vodlms_cf_target_t target, vodlms_cf_signed_t *out)
{
    char                   *buf;
    size_t                  size, len;
    ngx_str_t               policy;
    vodlms_rc_t             rc;
    ngx_http_vodlms_ctx_t  *ctx;

    size = vodlms_cf_prepare_size(in);

    buf = ngx_pnalloc(r->pool, size);
    if (buf == NULL) {
        return NGX_ERROR;
    }

    rc = vodlms_cf_prepare(in, target, buf, size, out);
    if (rc != VODLMS_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "vodlms: cannot build the CloudFront policy: %s",
                      vodlms_rc_str(rc));
        return NGX_ERROR;
    }

    ctx = ngx_http_vodlms_get_ctx(r);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    policy.data = (u_char *) out->policy.data;
    policy.len = out->policy.len;

    if (pcf->sig_cache
        && ngx_vodlms_shm_cache_get(pcf->sig_cache, r->connection->log,
                                    &pcf->sig_cache_ns,
                                    &policy, (u_char *) out->signature,
                                    sizeof(out->signature) - 1, &len)
           == NGX_OK)
    {
        out->signature_len = len;
        ctx->playback.sig_cache_status = "HIT";
        return NGX_OK;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "vodlms cloudfront: signing a %uz-byte policy with "
                   "key %V", policy.len, &pcf->signer->id);

    rc = vodlms_cf_sign_policy(pcf->signer->key, pcf->hash, out->policy.data,
                               out->policy.len, out->signature,
                               sizeof(out->signature), &out->signature_len);
    if (rc != VODLMS_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "vodlms: signing the CloudFront policy with key \"%V\" "
                      "failed: %s", &pcf->signer->id, vodlms_rc_str(rc));
        return NGX_ERROR;
    }

    if (pcf->sig_cache) {
        ctx->playback.sig_cache_status = "MISS";

        /* valid as long as the policy itself */
        (void) ngx_vodlms_shm_cache_put(pcf->sig_cache, r->connection->log,
                                        &pcf->sig_cache_ns,
                                        &policy, (u_char *) out->signature,
                                        out->signature_len,
                                        (ngx_msec_t) (out->expires
                                                      - ngx_time()) * 1000);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_vodlms_playback_cookies(ngx_http_request_t *r,
    ngx_http_vodlms_playback_conf_t *pcf, vodlms_cf_signed_t *s,
    ngx_str_t *path, time_t expires)
{
    u_char              *p;
    size_t               len;
    ngx_str_t            v;
    ngx_uint_t           i, n;
    vodlms_cf_cookie_t   c[VODLMS_CF_COOKIES_MAX];

    static const char  *samesite[] = { "", "Lax", "Strict", "None" };

    n = vodlms_cf_cookies(s, c);
    if (n == 0) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        len = c[i].name.len + 1 + c[i].value.len
              + sizeof("; Path=") - 1 + path->len
              + sizeof("; Domain=") - 1 + pcf->cookie_domain.len
              + sizeof("; Expires=") - 1 + sizeof("Thu, 01-Jan-1970 00:00:00 GMT")
              + sizeof("; Secure; HttpOnly; SameSite=Strict");

        v.data = ngx_pnalloc(r->pool, len);
        if (v.data == NULL) {
            return NGX_ERROR;
        }

        p = ngx_sprintf(v.data, "%*s=%*s; Path=%V",
                        c[i].name.len, c[i].name.data,
                        c[i].value.len, c[i].value.data, path);

        if (pcf->cookie_domain.len) {
            p = ngx_sprintf(p, "; Domain=%V", &pcf->cookie_domain);
        }

        /* RFC 1123 dates, as RFC 6265 asks (not 2-digit Netscape years) */
        p = ngx_cpymem(p, "; Expires=", 10);
        p = ngx_http_time(p, expires);

        if (pcf->cookie_secure) {
            p = ngx_cpymem(p, "; Secure", 8);
        }

        /* players never need to read them: HttpOnly, always */
        p = ngx_sprintf(p, "; HttpOnly; SameSite=%s",
                        samesite[pcf->cookie_samesite]);

        v.len = p - v.data;

        if (ngx_http_vodlms_add_header(r, "Set-Cookie", &v) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * One JSON string field, or null: the text of a column, or NULL for SQL
 * NULL, a missing column or text that is not UTF-8 (which jansson refused
 * too).  Sizing first, writing second, into one pool buffer.
 */

typedef struct {
    const char  *name;         /* "\"title\":" */
    size_t       name_len;
    ngx_str_t   *value;        /* NULL: null */
    size_t       escaped;      /* its length escaped */
} ngx_http_vodlms_json_field_t;


static void
ngx_http_vodlms_json_field(ngx_http_vodlms_json_field_t *f, ngx_str_t *v)
{
    f->value = v;

    if (v != NULL) {
        f->escaped = vodlms_json_escaped_len((char *) v->data, v->len);

        if (f->escaped == VODLMS_JSON_INVALID) {
            f->value = NULL;
        }
    }
}


static size_t
ngx_http_vodlms_json_field_len(ngx_http_vodlms_json_field_t *f)
{
    return f->name_len + (f->value ? f->escaped + 2 : sizeof("null") - 1);
}


static u_char *
ngx_http_vodlms_json_field_write(u_char *p, ngx_http_vodlms_json_field_t *f)
{
    p = ngx_cpymem(p, f->name, f->name_len);

    if (f->value == NULL) {
        return ngx_cpymem(p, "null", 4);
    }

    *p++ = '"';
    p = (u_char *) vodlms_json_escape((char *) p, (char *) f->value->data,
                                      f->value->len);
    *p++ = '"';

    return p;
}


/*
 * {"videoId":..,"title":..,"duration":..,"status":..,"manifestUrl":..,
 *  "expiresAt":..,"resumeAt":..[,"playbackId":..]}\n -- the bytes jansson's compact dump
 * wrote before (t/unit/test_core.c holds the escaping to that).
 */

static ngx_int_t
ngx_http_vodlms_playback_json(ngx_http_request_t *r, ngx_str_t *id,
    ngx_str_t *manifest, time_t expires, ngx_str_t *out)
{
    u_char                        *p;
    size_t                         len, dlen, rlen;
    double                         position, duration;
    ngx_uint_t                     i, completed;
    ngx_http_vodlms_column_t      *col;
    ngx_str_t                      wm;
    ngx_http_vodlms_json_field_t   f[4];
    char                           dur[VODLMS_JSON_NUMBER_MAX];
    char                           resume[VODLMS_JSON_NUMBER_MAX];

#define ngx_http_vodlms_json_name(i, n)                                      \
    f[i].name = "\"" n "\":"; f[i].name_len = sizeof("\"" n "\":") - 1

#define ngx_http_vodlms_col_value(n)                                         \
    ((col = ngx_http_vodlms_enroll_col(r, n))                                \
     && !col->null ? &col->value : NULL)

    ngx_http_vodlms_json_name(0, "videoId");
    ngx_http_vodlms_json_field(&f[0], id);

    ngx_http_vodlms_json_name(1, "title");
    ngx_http_vodlms_json_field(&f[1], ngx_http_vodlms_col_value(NGX_HTTP_VODLMS_COL_TITLE));

    ngx_http_vodlms_json_name(2, "status");
    ngx_http_vodlms_json_field(&f[2], ngx_http_vodlms_col_value(NGX_HTTP_VODLMS_COL_STATUS));

    ngx_http_vodlms_json_name(3, "manifestUrl");
    ngx_http_vodlms_json_field(&f[3], manifest);

    col = ngx_http_vodlms_enroll_col(r, NGX_HTTP_VODLMS_COL_DURATION);

    dlen = (col && !col->null && ngx_http_vodlms_is_number(&col->value))
           ? vodlms_json_decimal((char *) col->value.data, col->value.len,
                                 dur, sizeof(dur))
           : 0;

#undef ngx_http_vodlms_json_name
#undef ngx_http_vodlms_col_value

    /* the saved position: this node's buffer, else the database's */
    if (ngx_http_vodlms_progress_resume(r, &position, &duration, &completed)
        != NGX_OK)
    {
        position = 0;
    }

    if (position == (double) (int64_t) position) {
        rlen = ngx_sprintf((u_char *) resume, "%L", (int64_t) position)
               - (u_char *) resume;

    } else {
        rlen = vodlms_json_real(resume, sizeof(resume), position);
    }

    /* ",\"watermark\":..." when vodlms_watermark is on, else "" */
    if (ngx_http_vodlms_watermark_json(r, &wm) != NGX_OK) {
        return NGX_ERROR;
    }

    len = wm.len
          + sizeof("{,\"duration\":,\"expiresAt\":,\"resumeAt\":}\n") - 1
          + 3                                       /* the other commas */
          + (dlen ? dlen : sizeof("null") - 1)
          + NGX_TIME_T_LEN
          + (rlen ? rlen : sizeof("null") - 1)
          + ngx_http_vodlms_streams_json_len(r);

    for (i = 0; i < 4; i++) {
        len += ngx_http_vodlms_json_field_len(&f[i]);
    }

    out->data = ngx_pnalloc(r->pool, len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    p = out->data;
    *p++ = '{';
    p = ngx_http_vodlms_json_field_write(p, &f[0]);
    *p++ = ',';
    p = ngx_http_vodlms_json_field_write(p, &f[1]);

    p = ngx_cpymem(p, ",\"duration\":", sizeof(",\"duration\":") - 1);
    p = dlen ? ngx_cpymem(p, dur, dlen) : ngx_cpymem(p, "null", 4);

    *p++ = ',';
    p = ngx_http_vodlms_json_field_write(p, &f[2]);
    *p++ = ',';
    p = ngx_http_vodlms_json_field_write(p, &f[3]);

    p = ngx_sprintf(p, ",\"expiresAt\":%T,\"resumeAt\":", expires);
    p = rlen ? ngx_cpymem(p, resume, rlen) : ngx_cpymem(p, "null", 4);
    if (wm.len) {
        p = ngx_cpymem(p, wm.data, wm.len);
    }
    p = ngx_http_vodlms_streams_json(r, p);
    *p++ = '}';
    *p++ = '\n';

    out->len = p - out->data;

    return NGX_OK;
}


/* CORS: exact origins only, with credentials; never "*" */

static ngx_str_t *
ngx_http_vodlms_cors_match(ngx_http_request_t *r,
    ngx_http_vodlms_playback_conf_t *pcf)
{
    ngx_str_t        *o, *origin;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    if (pcf->cors_origins == NULL) {
        return NULL;
    }

    origin = NULL;
    part = &r->headers_in.headers.part;
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

        if (h[i].key.len == 6
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Origin", 6) == 0)
        {
            origin = &h[i].value;
            break;
        }
    }

    if (origin == NULL) {
        return NULL;
    }

    o = pcf->cors_origins->elts;

    for (i = 0; i < pcf->cors_origins->nelts; i++) {
        if (o[i].len == origin->len
            && ngx_strncmp(o[i].data, origin->data, o[i].len) == 0)
        {
            return origin;
        }
    }

    return NULL;
}


static ngx_int_t
ngx_http_vodlms_cors(ngx_http_request_t *r,
    ngx_http_vodlms_playback_conf_t *pcf)
{
    ngx_str_t  *origin, v;

    if (pcf->cors_origins == NULL) {
        return NGX_OK;
    }

    /* the answer depends on Origin even when it is not allowed */
    ngx_str_set(&v, "Origin");
    if (ngx_http_vodlms_add_header(r, "Vary", &v) != NGX_OK) {
        return NGX_ERROR;
    }

    origin = ngx_http_vodlms_cors_match(r, pcf);
    if (origin == NULL) {
        return NGX_OK;
    }

    ngx_str_set(&v, "true");

    if (ngx_http_vodlms_add_header(r, "Access-Control-Allow-Origin", origin)
        != NGX_OK
        || ngx_http_vodlms_add_header(r, "Access-Control-Allow-Credentials", &v)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * A CORS preflight carries no credentials: the access phase lets it through
 * to here (see ngx_http_vodlms_access_handler), and it gets no more than
 * the CORS headers.
 */

ngx_int_t
ngx_http_vodlms_playback_is_preflight(ngx_http_request_t *r)
{
    ngx_http_vodlms_loc_conf_t       *vlcf;
    ngx_http_vodlms_playback_conf_t  *pcf;

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);
    pcf = &vlcf->playback;

    /* the playback location, and a key location (vodlms_hls_key) */
    return r->method == NGX_HTTP_OPTIONS
           && (pcf->mode != NGX_HTTP_VODLMS_PLAYBACK_OFF
               || vlcf->key.version != NULL)
           && ngx_http_vodlms_cors_match(r, pcf) != NULL;
}


/*
 * A key location with vodlms_cors_origins (hls.js on an allowed origin
 * fetching keys from the LMS): every answer carries the CORS headers, the
 * gates' denials included, so that the player can read why it got no key
 * (409 stream_displaced).  Added once, in the access phase, before any
 * check can answer.
 */

ngx_int_t
ngx_http_vodlms_key_cors(ngx_http_request_t *r)
{
    ngx_http_vodlms_ctx_t       *ctx;
    ngx_http_vodlms_loc_conf_t  *vlcf;

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);

    if (vlcf->key.version == NULL || vlcf->playback.cors_origins == NULL) {
        return NGX_OK;
    }

    ctx = ngx_http_vodlms_get_ctx(r);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    if (ctx->cors) {
        return NGX_OK;
    }

    ctx->cors = 1;

    return ngx_http_vodlms_cors(r, &vlcf->playback);
}


ngx_int_t
ngx_http_vodlms_playback_preflight(ngx_http_request_t *r)
{
    ngx_str_t                         v;
    ngx_http_vodlms_loc_conf_t       *vlcf;
    ngx_http_vodlms_playback_conf_t  *pcf;

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);
    pcf = &vlcf->playback;

    if (!ngx_http_vodlms_playback_is_preflight(r)) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    if (ngx_http_vodlms_cors(r, pcf) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&v, "GET, HEAD, OPTIONS");
    if (ngx_http_vodlms_add_header(r, "Access-Control-Allow-Methods", &v)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* X-Vodlms-Playback: vodlms_streams' playbackId, when renewing */
    ngx_str_set(&v, "Authorization, Content-Type, X-Vodlms-Playback");
    if (ngx_http_vodlms_add_header(r, "Access-Control-Allow-Headers", &v)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&v, "600");
    if (ngx_http_vodlms_add_header(r, "Access-Control-Max-Age", &v) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_NO_CONTENT;
    r->header_only = 1;
    r->headers_out.content_length_n = 0;

    (void) ngx_http_discard_request_body(r);

    return ngx_http_send_header(r);
}




/* configuration */

void
ngx_http_vodlms_playback_create_conf(ngx_http_vodlms_playback_conf_t *pcf)
{
    pcf->mode = NGX_CONF_UNSET_UINT;
    pcf->keys = NGX_CONF_UNSET_PTR;
    pcf->ttl = NGX_CONF_UNSET;
    pcf->bucket = NGX_CONF_UNSET;
    pcf->hash = NGX_CONF_UNSET_UINT;
    pcf->ip_binding = NGX_CONF_UNSET;
    pcf->url_policy = NGX_CONF_UNSET_UINT;
    pcf->cookie_secure = NGX_CONF_UNSET;
    pcf->cookie_samesite = NGX_CONF_UNSET_UINT;
    pcf->sig_cache = NGX_CONF_UNSET_PTR;
    pcf->cors_origins = NGX_CONF_UNSET_PTR;
}


char *
ngx_http_vodlms_playback_merge_conf(ngx_conf_t *cf,
    ngx_http_vodlms_playback_conf_t *prev,
    ngx_http_vodlms_playback_conf_t *conf)
{
    u_char                      *p;
    ngx_uint_t                   i;
    ngx_http_vodlms_cf_key_t    *k;
    ngx_http_vodlms_loc_conf_t  *vlcf;

    ngx_conf_merge_uint_value(conf->mode, prev->mode,
                              NGX_HTTP_VODLMS_PLAYBACK_OFF);
    ngx_conf_merge_ptr_value(conf->keys, prev->keys, NULL);
    ngx_conf_merge_str_value(conf->signing_key, prev->signing_key, "");
    ngx_conf_merge_str_value(conf->base_url, prev->base_url, "");

    /* "https://cdn/media" -> "/media", once, for the cookies' Path */
    ngx_str_null(&conf->base_path);

    if (conf->base_url.len) {
        u_char  *last, *q;

        last = conf->base_url.data + conf->base_url.len;
        q = ngx_strlchr(conf->base_url.data, last, ':');  /* "http[s]://" */
        q = ngx_strlchr(q + 3, last, '/');

        if (q != NULL) {
            conf->base_path.data = q;
            conf->base_path.len = last - q;
        }
    }
    ngx_conf_merge_sec_value(conf->ttl, prev->ttl, 600);
    ngx_conf_merge_sec_value(conf->bucket, prev->bucket, 60);
    ngx_conf_merge_uint_value(conf->hash, prev->hash, VODLMS_CF_SHA1);
    ngx_conf_merge_value(conf->ip_binding, prev->ip_binding, 0);
    ngx_conf_merge_uint_value(conf->url_policy, prev->url_policy,
                              VODLMS_CF_CUSTOM);
    ngx_conf_merge_str_value(conf->cookie_domain, prev->cookie_domain, "");
    ngx_conf_merge_value(conf->cookie_secure, prev->cookie_secure, 1);
    ngx_conf_merge_uint_value(conf->cookie_samesite, prev->cookie_samesite,
                              NGX_HTTP_VODLMS_SAMESITE_LAX);
    ngx_conf_merge_ptr_value(conf->sig_cache, prev->sig_cache,
                             NGX_HTTP_VODLMS_CACHE_AUTO);
    ngx_conf_merge_ptr_value(conf->cors_origins, prev->cors_origins, NULL);

    if (conf->ttl < 60) {
        ngx_http_vodlms_merge_error(cf,
                                    "\"vodlms_cloudfront_ttl\" must be at "
                                    "least 1m");
        return NGX_CONF_ERROR;
    }

    if (conf->bucket == 0) {
        conf->bucket = 1;
    }

    if (conf->cookie_samesite == NGX_HTTP_VODLMS_SAMESITE_NONE
        && !conf->cookie_secure)
    {
        ngx_http_vodlms_merge_error(cf,
                                    "\"vodlms_cloudfront_cookie_samesite "
                                    "none\" needs "
                                    "\"vodlms_cloudfront_cookie_secure on\": "
                                    "browsers drop such cookies otherwise");
        return NGX_CONF_ERROR;
    }

    if (conf->mode == NGX_HTTP_VODLMS_PLAYBACK_OFF) {
        return NGX_CONF_OK;
    }

    vlcf = (ngx_http_vodlms_loc_conf_t *)
           ((u_char *) conf - offsetof(ngx_http_vodlms_loc_conf_t, playback));

    if (!vlcf->enroll.enable) {
        ngx_http_vodlms_merge_error(cf,
                                    "\"vodlms_playback\" needs the video: add "
                                    "\"vodlms_enrollment_check on\" and "
                                    "\"vodlms_video_id\"");
        return NGX_CONF_ERROR;
    }

    if (conf->base_url.len == 0) {
        ngx_http_vodlms_merge_error(cf,
                                    "\"vodlms_playback\" needs "
                                    "\"vodlms_cloudfront_url\"");
        return NGX_CONF_ERROR;
    }

    if (conf->keys == NULL) {
        ngx_http_vodlms_merge_error(cf,
                                    "\"vodlms_playback\" needs a signing key: "
                                    "add \"vodlms_cloudfront_key\"");
        return NGX_CONF_ERROR;
    }

    k = conf->keys->elts;
    conf->signer = &k[0];

    if (conf->signing_key.len) {
        conf->signer = NULL;

        for (i = 0; i < conf->keys->nelts; i++) {
            if (k[i].id.len == conf->signing_key.len
                && ngx_strncmp(k[i].id.data, conf->signing_key.data,
                               k[i].id.len) == 0)
            {
                conf->signer = &k[i];
            }
        }

        if (conf->signer == NULL) {
            ngx_http_vodlms_merge_error(cf,
                                        "\"vodlms_cloudfront_signing_key\" "
                                        "names \"%V\", which no "
                                        "\"vodlms_cloudfront_key\" defines",
                                        &conf->signing_key);
            return NGX_CONF_ERROR;
        }
    }

    if (conf->sig_cache == NGX_HTTP_VODLMS_CACHE_AUTO) {
        conf->sig_cache = ngx_http_vodlms_auto_sig_cache(cf);
        if (conf->sig_cache == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (conf->sig_cache) {
        if (!ngx_vodlms_shm_cache_defined(conf->sig_cache)) {
            ngx_http_vodlms_merge_error(cf,
                                        "unknown vodlms_cache_zone \"%V\" in "
                                        "\"vodlms_cloudfront_signature_cache\"",
                                        &conf->sig_cache->shm.name);
            return NGX_CONF_ERROR;
        }

        /* a signature is only good for its key and hash */
        conf->sig_cache_ns.data = ngx_pnalloc(cf->pool,
                                              sizeof("cfsig||")
                                              + conf->signer->id.len + 1);
        if (conf->sig_cache_ns.data == NULL) {
            return NGX_CONF_ERROR;
        }

        p = ngx_sprintf(conf->sig_cache_ns.data, "cfsig|%V|%ui",
                        &conf->signer->id, conf->hash);
        conf->sig_cache_ns.len = p - conf->sig_cache_ns.data;
    }

    return NGX_CONF_OK;
}


/* vodlms_playback cookies | redirect | url | off; */

char *
ngx_http_vodlms_playback(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vodlms_loc_conf_t  *vlcf = conf;

    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *clcf;

    if (vlcf->playback.mode != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "cookies") == 0) {
        vlcf->playback.mode = NGX_HTTP_VODLMS_PLAYBACK_COOKIES;

    } else if (ngx_strcmp(value[1].data, "redirect") == 0) {
        vlcf->playback.mode = NGX_HTTP_VODLMS_PLAYBACK_REDIRECT;

    } else if (ngx_strcmp(value[1].data, "url") == 0) {
        vlcf->playback.mode = NGX_HTTP_VODLMS_PLAYBACK_URL;

    } else if (ngx_strcmp(value[1].data, "off") == 0) {
        vlcf->playback.mode = NGX_HTTP_VODLMS_PLAYBACK_OFF;
        return NGX_CONF_OK;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"vodlms_playback\" "
                           "directive, expected one of \"cookies\", "
                           "\"redirect\", \"url\", \"off\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_vodlms_playback_handler;

    return NGX_CONF_OK;
}


/* vodlms_cloudfront_key key_pair_id /path/to/private_key.pem; */

char *
ngx_http_vodlms_cloudfront_key(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vodlms_loc_conf_t  *vlcf = conf;

    ngx_str_t                 *value;
    ngx_uint_t                 i;
    ngx_http_vodlms_cf_key_t  *k;

    value = cf->args->elts;

    if (vlcf->playback.keys == NGX_CONF_UNSET_PTR) {
        vlcf->playback.keys = ngx_array_create(cf->pool, 2,
                                            sizeof(ngx_http_vodlms_cf_key_t));
        if (vlcf->playback.keys == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    k = vlcf->playback.keys->elts;
    for (i = 0; i < vlcf->playback.keys->nelts; i++) {
        if (k[i].id.len == value[1].len
            && ngx_strncmp(k[i].id.data, value[1].data, value[1].len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate key pair id \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    k = ngx_array_push(vlcf->playback.keys);
    if (k == NULL) {
        return NGX_CONF_ERROR;
    }

    k->id = value[1];
    k->key = NULL;

    /* read once, here: keys are never touched per request */
    return ngx_http_vodlms_conf_key(cf, &value[1], &value[2], 1, &k->key);
}


/* vodlms_cloudfront_url https://cdn.example.com; */

char *
ngx_http_vodlms_cloudfront_url(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vodlms_loc_conf_t  *vlcf = conf;

    ngx_str_t  *value;

    if (vlcf->playback.base_url.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_http_vodlms_parse_base_url(&value[1], 1, &vlcf->playback.base_url)
        != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid CloudFront URL \"%V\", expected "
                           "\"https://host[/path]\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


char *
ngx_http_vodlms_signature_cache(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_vodlms_loc_conf_t  *vlcf = conf;

    ngx_str_t  *value;

    if (vlcf->playback.sig_cache != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        vlcf->playback.sig_cache = NULL;
        return NGX_CONF_OK;
    }

    vlcf->playback.sig_cache = ngx_vodlms_shm_cache_ref(cf, &value[1]);

    return vlcf->playback.sig_cache ? NGX_CONF_OK : NGX_CONF_ERROR;
}


/* vodlms_cors_origins https://lms.example.com ...; */

char *
ngx_http_vodlms_cors_origins(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vodlms_loc_conf_t  *vlcf = conf;

    ngx_str_t   *value, *o;
    ngx_uint_t   i;

    if (vlcf->playback.cors_origins != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    vlcf->playback.cors_origins = ngx_array_create(cf->pool,
                                                   cf->args->nelts - 1,
                                                   sizeof(ngx_str_t));
    if (vlcf->playback.cors_origins == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        /* credentials are allowed, so a wildcard would hand them to anyone */
        if (ngx_strlchr(value[i].data, value[i].data + value[i].len, '*')
            || !((value[i].len > 8
                  && ngx_strncmp(value[i].data, "https://", 8) == 0)
                 || (value[i].len > 7
                     && ngx_strncmp(value[i].data, "http://", 7) == 0))
            || value[i].data[value[i].len - 1] == '/')
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid origin \"%V\": an exact "
                               "\"scheme://host[:port]\" is required, "
                               "never \"*\" (credentials are allowed)",
                               &value[i]);
            return NGX_CONF_ERROR;
        }

        o = ngx_array_push(vlcf->playback.cors_origins);
        if (o == NULL) {
            return NGX_CONF_ERROR;
        }

        *o = value[i];
    }

    return NGX_CONF_OK;
}
