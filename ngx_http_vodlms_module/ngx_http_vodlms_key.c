/*
 * The key endpoint of encrypted HLS (content handler, vodlms_hls_key).
 *
 * The location's own gates run first, in the access phase: the session
 * (vodlms_auth) and the enrollment check for the video of the URI
 * (vodlms_enrollment_check, vodlms_video_id).  This handler serves only a
 * request both of them admitted, whatever "satisfy" says, and always the
 * key of the video the enrollment check was asked about.  Then:
 *
 *   1. the version and key index of the URI are checked (400);
 *   2. the key: from vodlms_hls_key_cache (a shared zone: keys never
 *      change, so every worker reuses every answer), else one prepared
 *      statement on the replica's pool (the primary's when the replica
 *      cannot serve it):
 *          SELECT encode(key, 'hex'), starts_ms, <the starts_ms of key
 *          index - 1> FROM <schema>.video_keys
 *          WHERE video_id = $1 AND version = $2 AND key_index = $3
 *      no row: 404 no_such_key; PostgreSQL down or timed out: 503;
 *   3. with budget= or pace=: one EVAL in Redis per fetch (the script
 *      below), counted per (video, user) across every nginx node;
 *      over the budget: 429 key_budget, ahead of the pace: 429 key_pace,
 *      both with Retry-After; Redis down: served without the limits
 *      (redis_down=open, logged once per change per worker) or 503
 *      (redis_down=closed);
 *   4. 200, the 16 bytes, Content-Type application/octet-stream and
 *      Cache-Control no-store.
 *
 * Every fetch gets one log line naming the user, the video, the version
 * and the key index: a key served at log= (notice by default), a refusal
 * as every denial of the module is logged (ngx_http_vodlms_error.c).
 */

#include "ngx_http_vodlms_module.h"
#include "vodlms_key.h"


/* decoded by the pure core: bytea text output depends on bytea_output */
static ngx_str_t  ngx_http_vodlms_key_sql = ngx_string(
    "SELECT encode(k.key, 'hex'), k.starts_ms,"
    " (SELECT p.starts_ms FROM vodlms.video_keys p"
    " WHERE p.video_id = $1 AND p.version = $2"
    " AND p.key_index = $3::integer - 1)"
    " FROM vodlms.video_keys k"
    " WHERE k.video_id = $1 AND k.version = $2 AND k.key_index = $3::integer");


/*
 * KEYS: the window's counter, the pace state (a hash: r, the start of the
 * furthest key released; p, where a viewer playing since the first fetch
 * would be, in thousandths of a content ms, at t).  ARGV: the window in ms
 * (0: no budget), the budget, how long the pace state outlives the
 * viewer's last fetch in ms (0: no pace limit), the speed in thousandths,
 * the allowance in ms, this key's start in ms and the start of the key
 * before it in its version (-1: none).
 *
 * The pace follows a virtual playhead, not the time since the first fetch:
 * it moves at speed, but never past what was released (the start of the
 * key after r: an idle viewer does not play on), so time spent idle buys
 * at most the rest of the current key.  Key s is released if s <= r
 * (content already released: seeking back is free) or s <= playhead +
 * allowance; for a key beyond the next one (the key before it starts after
 * r) the playhead stops at r.  Starts, not indexes: a viewer who reloads
 * onto a re-encoded version with other key periods goes on.  The first
 * fetch (no state) releases the key it asks for, wherever it starts (a
 * resume), and puts the playhead there.  A release beyond r stores r, the
 * playhead and now; every fetch keeps the state for pace_reset
 * from now.  All by the server's clock (TIME): the nodes' clocks do not
 * matter; one script, so two fetches never both advance from one state.
 *
 * Returns {fetches in the window, ms left of it, r before this fetch (-1:
 * none), the playhead (thousandths of a ms), 1 if released}; a fetch over
 * the budget releases nothing.  Integers below 2^53 throughout: exact in
 * Lua's doubles.
 */
static ngx_str_t  ngx_http_vodlms_key_lua = ngx_string(
    "local t = redis.call('TIME')\n"
    "local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"
    "local n, ttl, r, p, ok = 0, 0, -1, 0, 1\n"
    "if ARGV[1] ~= '0' then\n"
    "  n = redis.call('INCR', KEYS[1])\n"
    "  ttl = redis.call('PTTL', KEYS[1])\n"
    "  if ttl < 0 then\n"
    "    redis.call('PEXPIRE', KEYS[1], ARGV[1])\n"
    "    ttl = tonumber(ARGV[1])\n"
    "  end\n"
    "  if n > tonumber(ARGV[2]) then ok = 0 end\n"
    "end\n"
    "if ARGV[3] ~= '0' then\n"
    "  local s, prev = tonumber(ARGV[6]), tonumber(ARGV[7])\n"
    "  local st = redis.call('HMGET', KEYS[2], 'r', 'p', 't')\n"
    "  local adv = true\n"
    "  p = s * 1000\n"
    "  if st[1] and st[2] and st[3] then\n"
    "    r = tonumber(st[1])\n"
    "    local cap = r\n"
    "    if prev <= r then cap = s end\n"
    "    p = math.min(tonumber(st[2]) + math.max(now - tonumber(st[3]), 0)"
    " * tonumber(ARGV[4]), cap * 1000)\n"
    "    adv = s > r\n"
    "    if adv and s * 1000 > p + tonumber(ARGV[5]) * 1000 then\n"
    "      ok, adv = 0, false\n"
    "    end\n"
    "  end\n"
    "  if adv and ok == 1 then\n"
    "    redis.call('HSET', KEYS[2], 'r', string.format('%.0f', s),"
    " 'p', string.format('%.0f', p), 't', string.format('%.0f', now))\n"
    "  end\n"
    "  redis.call('PEXPIRE', KEYS[2], ARGV[3])\n"
    "end\n"
    "return {n, ttl, r, p, ok}\n");


/* a cached key: 'K', the 16 bytes, starts_ms and the previous key's
   starts_ms (-1: none), 8 bytes each, big-endian */
#define NGX_HTTP_VODLMS_KEY_CACHED    'K'
#define NGX_HTTP_VODLMS_KEY_NO_ROW    'N'
#define NGX_HTTP_VODLMS_KEY_CACHE_LEN (1 + VODLMS_KEY_LEN + 16)


typedef struct {
    ngx_http_request_t             *r;
    ngx_http_vodlms_key_conf_t     *kcf;
    ngx_str_t                       user;
    ngx_str_t                       video;
    ngx_str_t                       version;
    ngx_str_t                       index;        /* as in the URI */
    ngx_str_t                       who;          /* for the log line */
    ngx_str_t                       cache_key;
    int64_t                         starts_ms;
    int64_t                         prev_ms;      /* key index - 1's, or -1 */
    int64_t                         count;        /* from the script */
    int64_t                         ttl_ms;
    vodlms_key_pace_t               pace;
    const char                     *source;       /* "cache", "database" */
    const char                     *unlimited;    /* why not counted */
    u_char                          key[VODLMS_KEY_LEN];
    unsigned                        counted:1;    /* the script answered */
} ngx_http_vodlms_key_req_t;


/* redis_down=open: is this worker serving without the limits? */
static ngx_uint_t  ngx_http_vodlms_key_unlimited;


static ngx_conf_enum_t  ngx_http_vodlms_key_log_levels[] = {
    { ngx_string("info"), NGX_LOG_INFO },
    { ngx_string("notice"), NGX_LOG_NOTICE },
    { ngx_null_string, 0 }
};


static ngx_int_t ngx_http_vodlms_key_handler(ngx_http_request_t *r);
static void ngx_http_vodlms_key_lookup(ngx_http_vodlms_key_req_t *k);
static void ngx_http_vodlms_key_row(void *data,
    ngx_vodlms_pg_status_e status, PGresult *res, const char *reason);
static void ngx_http_vodlms_key_found(ngx_http_vodlms_key_req_t *k);
static void ngx_http_vodlms_key_reply(void *data, ngx_uint_t i,
    redisReply *reply);
static void ngx_http_vodlms_key_counted(void *data,
    ngx_vodlms_redis_status_e status, const char *reason);
static void ngx_http_vodlms_key_judge(ngx_http_vodlms_key_req_t *k);
static void ngx_http_vodlms_key_serve(ngx_http_vodlms_key_req_t *k);
static void ngx_http_vodlms_key_deny(ngx_http_vodlms_key_req_t *k,
    ngx_http_vodlms_err_e err, const char *why, ngx_str_t *extra);
static void ngx_http_vodlms_key_limits_down(ngx_http_vodlms_key_req_t *k,
    ngx_vodlms_redis_status_e status, const char *reason);


/*
 * The request holds one extra reference from here until one of the
 * outcomes below finalizes it, exactly once.
 */

static ngx_int_t
ngx_http_vodlms_key_handler(ngx_http_request_t *r)
{
    u_char                      *p;
    uint32_t                     index;
    ngx_int_t                    rc;
    ngx_http_vodlms_ctx_t       *ctx;
    ngx_http_vodlms_loc_conf_t  *vlcf;
    ngx_http_vodlms_key_req_t   *k;
    ngx_http_vodlms_key_conf_t  *kcf;

    /* vodlms_cors_origins: the preflight of a player on another origin */
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

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);
    kcf = &vlcf->key;

    ctx = ngx_http_get_module_ctx(r, ngx_http_vodlms_module);

    /*
     * Both gates must have admitted this very request: a subrequest (SSI,
     * auth_request: nginx skips their access phase) or "satisfy any" with
     * another access module that allowed it must never reach a key.
     */
    if (ctx == NULL
        || ctx->session.state != NGX_HTTP_VODLMS_SESSION_DONE
        || ctx->session.result != NGX_HTTP_VODLMS_OK
        || ctx->session.user_id.len == 0
        || ctx->enroll.state != NGX_HTTP_VODLMS_ENROLL_DONE
        || ctx->enroll.result != NGX_HTTP_VODLMS_OK
        || ctx->enroll.columns == NULL)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "vodlms: a key request that the session gate and the "
                      "enrollment check did not both admit, refused (keep "
                      "\"vodlms_auth\" and \"vodlms_enrollment_check\" in "
                      "this location, and no \"satisfy any\")");
        return NGX_HTTP_FORBIDDEN;
    }

    /* the same for vodlms_streams: a displaced playback gets no key */
    if (!ngx_http_vodlms_streams_key_passed(r)) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "vodlms: a key request that the stream limit did not "
                      "admit, refused (no \"satisfy any\" in a location "
                      "with \"vodlms_streams\")");
        return NGX_HTTP_FORBIDDEN;
    }

    ngx_http_vodlms_set_endpoint(ctx, NGX_HTTP_VODLMS_EP_KEY);

    k = ngx_pcalloc(r->pool, sizeof(ngx_http_vodlms_key_req_t));
    if (k == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    k->r = r;
    k->kcf = kcf;
    k->user = ctx->session.user_id;
    k->video = ctx->enroll.video_id;

    if (ngx_http_complex_value(r, kcf->version, &k->version) != NGX_OK
        || ngx_http_complex_value(r, kcf->index, &k->index) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /*
     * What every line of this fetch names; never more than 200 bytes of
     * what the client sent, and a refused value JSON-escaped (at most 6
     * bytes a byte): a newline or a quote in it never forges a log line.
     */
    k->who.data = ngx_pnalloc(r->pool, k->user.len + k->video.len
                                       + 2 * 6 * 200
                                       + sizeof("user \"\" video \"\" "
                                                "version \"\" key \"\""));
    if (k->who.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->main->count++;

    if (!vodlms_key_version_valid((char *) k->version.data, k->version.len)
        || !vodlms_key_index_parse((char *) k->index.data, k->index.len,
                                   &index))
    {
        p = ngx_sprintf(k->who.data, "user \"%V\" video \"%V\" version \"",
                        &k->user, &k->video);
        p = (u_char *) ngx_escape_json(p, k->version.data,
                                       ngx_min(k->version.len, 200));
        p = ngx_cpymem(p, "\" key \"", sizeof("\" key \"") - 1);
        p = (u_char *) ngx_escape_json(p, k->index.data,
                                       ngx_min(k->index.len, 200));
        *p++ = '"';
        k->who.len = p - k->who.data;

        ngx_http_vodlms_key_deny(k, NGX_HTTP_VODLMS_BAD_KEY_REQUEST,
                                 "a version of 1-64 [A-Za-z0-9_.-] and a key "
                                 "index of 1-9 digits are required", NULL);
        return NGX_DONE;
    }

    p = ngx_sprintf(k->who.data, "user \"%V\" video \"%V\" version \"%V\" "
                    "key %V", &k->user, &k->video, &k->version, &k->index);
    k->who.len = p - k->who.data;

    ngx_http_vodlms_key_lookup(k);

    return NGX_DONE;
}


static void
ngx_http_vodlms_key_lookup(ngx_http_vodlms_key_req_t *k)
{
    u_char                       *p;
    size_t                        len;
    ngx_int_t                     rc;
    ngx_str_t                     values[3];
    const char                   *reason;
    ngx_vodlms_pg_pool_t         *pool;
    ngx_vodlms_pg_status_e        status;
    ngx_http_request_t           *r = k->r;
    ngx_http_vodlms_key_conf_t   *kcf = k->kcf;
    ngx_http_vodlms_main_conf_t  *vmcf;

    u_char  buf[NGX_HTTP_VODLMS_KEY_CACHE_LEN];

    if (kcf->cache) {
        /* NUL-separated: (video, version, index) */
        len = k->video.len + k->version.len + k->index.len + 2;
        k->cache_key.data = ngx_pnalloc(r->pool, len);
        if (k->cache_key.data == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        p = ngx_cpymem(k->cache_key.data, k->video.data, k->video.len);
        *p++ = '\0';
        p = ngx_cpymem(p, k->version.data, k->version.len);
        *p++ = '\0';
        p = ngx_cpymem(p, k->index.data, k->index.len);
        k->cache_key.len = p - k->cache_key.data;

        if (ngx_vodlms_shm_cache_get(kcf->cache, r->connection->log,
                                     &kcf->cache_ns, &k->cache_key, buf,
                                     sizeof(buf), &len)
            == NGX_OK)
        {
            k->source = "cache";

            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "vodlms key: cache hit for %V, %uz bytes",
                           &k->who, len);

            if (len == 1 && buf[0] == NGX_HTTP_VODLMS_KEY_NO_ROW) {
                ngx_http_vodlms_key_deny(k, NGX_HTTP_VODLMS_NO_SUCH_KEY,
                                         "no such row (cached)", NULL);
                return;
            }

            if (len == NGX_HTTP_VODLMS_KEY_CACHE_LEN
                && buf[0] == NGX_HTTP_VODLMS_KEY_CACHED)
            {
                ngx_memcpy(k->key, buf + 1, VODLMS_KEY_LEN);
                p = buf + 1 + VODLMS_KEY_LEN;
                k->starts_ms = 0;
                k->prev_ms = 0;
                for (len = 0; len < 8; len++) {
                    k->starts_ms = (k->starts_ms << 8) | p[len];
                    k->prev_ms = (int64_t) (((uint64_t) k->prev_ms << 8)
                                            | p[8 + len]);
                }

                ngx_http_vodlms_key_found(k);
                return;
            }
        }
    }

    k->source = "database";

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "vodlms key: %V asked of PostgreSQL", &k->who);

    /* a query on the user's behalf: it counts to their query rate */
    rc = ngx_http_vodlms_limit_query(r, &k->user);
    if (rc != NGX_OK) {
        if (rc != NGX_DONE) {
            ngx_http_finalize_request(r, rc);
        }
        return;
    }

    values[0] = k->video;
    values[1] = k->version;
    values[2] = k->index;

    vmcf = ngx_http_get_module_main_conf(r, ngx_http_vodlms_module);
    pool = vmcf->pg_replica_pool ? vmcf->pg_replica_pool : vmcf->pg_pool;

    rc = ngx_vodlms_pg_query(pool, r->pool, r->connection->log, kcf->stmt,
                             values, 3, ngx_http_vodlms_key_row, k, &status,
                             &reason);
    if (rc == NGX_OK) {
        return;
    }

    if (rc == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_vodlms_key_deny(k, status == NGX_VODLMS_PG_TIMEOUT
                                ? NGX_HTTP_VODLMS_DB_TIMEOUT
                                : NGX_HTTP_VODLMS_DB_DOWN, reason, NULL);
}


static void
ngx_http_vodlms_key_row(void *data, ngx_vodlms_pg_status_e status,
    PGresult *res, const char *reason)
{
    ngx_http_vodlms_key_req_t  *k = data;

    char                        *v;
    u_char                       buf[NGX_HTTP_VODLMS_KEY_CACHE_LEN], *p;
    int64_t                      ms;
    ngx_int_t                    n;
    ngx_uint_t                   i;
    ngx_http_vodlms_key_conf_t  *kcf = k->kcf;

    if (status != NGX_VODLMS_PG_OK || res == NULL) {
        /* a refused statement is the schema's (no migration 0011): 500 */
        ngx_http_vodlms_key_deny(k, status == NGX_VODLMS_PG_TIMEOUT
                                    ? NGX_HTTP_VODLMS_DB_TIMEOUT
                                    : status == NGX_VODLMS_PG_REFUSED
                                    ? NGX_HTTP_VODLMS_INTERNAL
                                    : NGX_HTTP_VODLMS_DB_DOWN,
                                 reason ? reason : "no result", NULL);
        return;
    }

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != 3) {
        ngx_http_vodlms_key_deny(k, NGX_HTTP_VODLMS_INTERNAL,
                                 "the key query returned no key and "
                                 "starts_ms", NULL);
        return;
    }

    if (PQntuples(res) == 0) {
        if (kcf->cache) {
            buf[0] = NGX_HTTP_VODLMS_KEY_NO_ROW;
            (void) ngx_vodlms_shm_cache_put_negative(kcf->cache,
                                                     k->r->connection->log,
                                                     &kcf->cache_ns,
                                                     &k->cache_key, buf, 1,
                                                     kcf->cache_invalid);
        }

        ngx_http_vodlms_key_deny(k, NGX_HTTP_VODLMS_NO_SUCH_KEY,
                                 "no such row in video_keys", NULL);
        return;
    }

    v = PQgetvalue(res, 0, 0);

    if (PQgetisnull(res, 0, 0) || PQgetisnull(res, 0, 1)
        || vodlms_key_from_hex(v, PQgetlength(res, 0, 0), k->key)
           != VODLMS_OK)
    {
        ngx_http_vodlms_key_deny(k, NGX_HTTP_VODLMS_INTERNAL,
                                 "the row's key is not 16 bytes", NULL);
        return;
    }

    n = ngx_atoi((u_char *) PQgetvalue(res, 0, 1), PQgetlength(res, 0, 1));
    if (n == NGX_ERROR) {
        ngx_http_vodlms_key_deny(k, NGX_HTTP_VODLMS_INTERNAL,
                                 "the row's starts_ms is no number", NULL);
        return;
    }

    k->starts_ms = n;
    k->prev_ms = -1;

    if (!PQgetisnull(res, 0, 2)) {
        n = ngx_atoi((u_char *) PQgetvalue(res, 0, 2),
                     PQgetlength(res, 0, 2));
        if (n == NGX_ERROR) {
            ngx_http_vodlms_key_deny(k, NGX_HTTP_VODLMS_INTERNAL,
                                     "the previous row's starts_ms is no "
                                     "number", NULL);
            return;
        }

        k->prev_ms = n;
    }

    if (kcf->cache) {
        buf[0] = NGX_HTTP_VODLMS_KEY_CACHED;
        p = ngx_cpymem(buf + 1, k->key, VODLMS_KEY_LEN);
        ms = k->starts_ms;
        for (i = 0; i < 8; i++) {
            p[7 - i] = (u_char) (ms & 0xff);
            ms >>= 8;
        }

        ms = (uint64_t) k->prev_ms;
        for (i = 0; i < 8; i++) {
            p[15 - i] = (u_char) (ms & 0xff);
            ms >>= 8;
        }

        (void) ngx_vodlms_shm_cache_put(kcf->cache, k->r->connection->log,
                                        &kcf->cache_ns, &k->cache_key, buf,
                                        sizeof(buf), kcf->cache_valid);
    }

    ngx_http_vodlms_key_found(k);
}


/* the key is known: count the fetch, or serve it */

static void
ngx_http_vodlms_key_found(ngx_http_vodlms_key_req_t *k)
{
    u_char                       *p;
    size_t                        klen;
    ngx_int_t                     rc;
    const char                   *argv[12], *reason;
    size_t                        argvlen[12];
    ngx_vodlms_redis_cmd_t        cmd;
    ngx_vodlms_redis_status_e     status;
    ngx_http_request_t           *r = k->r;
    ngx_http_vodlms_key_conf_t   *kcf = k->kcf;
    ngx_http_vodlms_main_conf_t  *vmcf;

    u_char  nw[NGX_INT64_LEN], nb[NGX_INT64_LEN], nr[NGX_INT64_LEN],
            nv[NGX_INT64_LEN], na[NGX_INT64_LEN], ns[NGX_INT64_LEN],
            np[NGX_INT64_LEN];

    if (kcf->budget == 0 && kcf->speed == 0) {
        ngx_http_vodlms_key_serve(k);
        return;
    }

    /*
     * "vodlms:hlskey:{<video>:<user>}:n" and ":p": a video id has no ':',
     * so (video, user) pairs never collide; the braces keep both keys in
     * one slot of a Redis Cluster
     */
    klen = sizeof("vodlms:hlskey:{:}:n") - 1 + k->video.len + k->user.len;

    argv[3] = ngx_pnalloc(r->pool, 2 * klen);
    if (argv[3] == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = ngx_sprintf((u_char *) argv[3], "vodlms:hlskey:{%V:%V}:n", &k->video,
                    &k->user);
    argv[4] = (char *) p;
    ngx_sprintf(p, "vodlms:hlskey:{%V:%V}:p", &k->video, &k->user);

    argv[0] = "EVAL";
    argv[1] = (char *) ngx_http_vodlms_key_lua.data;
    argv[2] = "2";
    argv[5] = (char *) nw;
    argv[6] = (char *) nb;
    argv[7] = (char *) nr;
    argv[8] = (char *) nv;
    argv[9] = (char *) na;
    argv[10] = (char *) ns;
    argv[11] = (char *) np;

    argvlen[0] = 4;
    argvlen[1] = ngx_http_vodlms_key_lua.len;
    argvlen[2] = 1;
    argvlen[3] = klen;
    argvlen[4] = klen;
    argvlen[5] = ngx_sprintf(nw, "%M", kcf->budget ? kcf->window : 0) - nw;
    argvlen[6] = ngx_sprintf(nb, "%ui", kcf->budget) - nb;
    argvlen[7] = ngx_sprintf(nr, "%M", kcf->speed ? kcf->pace_reset : 0)
                 - nr;
    argvlen[8] = ngx_sprintf(nv, "%ui", kcf->speed) - nv;
    argvlen[9] = ngx_sprintf(na, "%M", kcf->allowance) - na;
    argvlen[10] = ngx_sprintf(ns, "%L", k->starts_ms) - ns;
    argvlen[11] = ngx_sprintf(np, "%L", k->prev_ms) - np;

    cmd.argc = 12;
    cmd.argv = argv;
    cmd.argvlen = argvlen;

    vmcf = ngx_http_get_module_main_conf(r, ngx_http_vodlms_module);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "vodlms key: counting %V in Redis (window %M ms, pace "
                   "state kept %M ms)", &k->who,
                   kcf->budget ? kcf->window : 0,
                   kcf->speed ? kcf->pace_reset : 0);

    rc = ngx_vodlms_redis_send(vmcf->redis_pool, r->pool, r->connection->log,
                               &cmd, 1, ngx_http_vodlms_key_reply,
                               ngx_http_vodlms_key_counted, k, &status,
                               &reason);
    if (rc == NGX_OK) {
        return;
    }

    if (rc == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_vodlms_key_limits_down(k, status, reason);
}


static void
ngx_http_vodlms_key_reply(void *data, ngx_uint_t i, redisReply *reply)
{
    ngx_http_vodlms_key_req_t  *k = data;

    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, k->r->connection->log, 0,
                      "vodlms key: the limits script failed: %*s",
                      (size_t) reply->len, reply->str);
        return;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 5
        || reply->element[0]->type != REDIS_REPLY_INTEGER
        || reply->element[1]->type != REDIS_REPLY_INTEGER
        || reply->element[2]->type != REDIS_REPLY_INTEGER
        || reply->element[3]->type != REDIS_REPLY_INTEGER
        || reply->element[4]->type != REDIS_REPLY_INTEGER)
    {
        ngx_log_error(NGX_LOG_ERR, k->r->connection->log, 0,
                      "vodlms key: the limits script gave an unexpected "
                      "reply");
        return;
    }

    k->count = reply->element[0]->integer;
    k->ttl_ms = reply->element[1]->integer;
    k->pace.released_ms = reply->element[2]->integer;
    k->pace.playhead = reply->element[3]->integer;
    k->pace.released = reply->element[4]->integer == 1;
    k->counted = 1;
}


static void
ngx_http_vodlms_key_counted(void *data, ngx_vodlms_redis_status_e status,
    const char *reason)
{
    ngx_http_vodlms_key_req_t  *k = data;

    if (status != NGX_VODLMS_REDIS_OK || !k->counted) {
        ngx_http_vodlms_key_limits_down(k, status,
                                        reason ? reason
                                               : "the limits script failed");
        return;
    }

    if (ngx_http_vodlms_key_unlimited) {
        ngx_http_vodlms_key_unlimited = 0;
        ngx_log_error(NGX_LOG_NOTICE, k->r->connection->log, 0,
                      "vodlms key: Redis answers again, the key budget and "
                      "pace limit hold again");
    }

    ngx_http_vodlms_key_judge(k);
}


/* Redis cannot count this fetch: redis_down= decides */

static void
ngx_http_vodlms_key_limits_down(ngx_http_vodlms_key_req_t *k,
    ngx_vodlms_redis_status_e status, const char *reason)
{
    if (k->kcf->redis_down == NGX_HTTP_VODLMS_KEY_REDIS_CLOSED) {
        ngx_http_vodlms_key_deny(k, NGX_HTTP_VODLMS_KEY_LIMITS_DOWN, reason,
                                 NULL);
        return;
    }

    /* once per change of state, per worker: an outage is one line */
    if (!ngx_http_vodlms_key_unlimited) {
        ngx_http_vodlms_key_unlimited = 1;
        ngx_log_error(NGX_LOG_WARN, k->r->connection->log, 0,
                      "vodlms key: keys are served without the key budget "
                      "and pace limit while Redis cannot count them "
                      "(redis_down=open): %s", reason);
    }

    k->unlimited = "limits not counted: Redis unavailable";

    ngx_http_vodlms_key_serve(k);
}


static void
ngx_http_vodlms_key_judge(ngx_http_vodlms_key_req_t *k)
{
    u_char                      *p;
    uint64_t                     retry;
    ngx_str_t                    extra, v;
    vodlms_key_limits_t          limits;
    ngx_http_request_t          *r = k->r;
    ngx_http_vodlms_key_conf_t  *kcf = k->kcf;
    vodlms_key_verdict_e         verdict;

    limits.budget = kcf->budget;
    limits.speed = kcf->speed;
    limits.allowance_ms = kcf->allowance;

    verdict = vodlms_key_judge(&limits, k->count, k->ttl_ms, &k->pace,
                               k->starts_ms, &retry);

    ngx_log_debug7(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "vodlms key: fetch %L in the window (%L ms left), "
                   "released up to %L ms, playhead at %L ms, the key "
                   "starts at %L ms: verdict %d, retry after %uL s",
                   k->count, k->ttl_ms, k->pace.released_ms,
                   k->pace.playhead / 1000, k->starts_ms, (int) verdict,
                   retry);

    if (verdict == VODLMS_KEY_ALLOW) {
        ngx_http_vodlms_key_serve(k);
        return;
    }

    extra.data = ngx_pnalloc(r->pool, 160);
    v.data = ngx_pnalloc(r->pool, NGX_INT64_LEN);
    if (extra.data == NULL || v.data == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    v.len = ngx_sprintf(v.data, "%uL", retry) - v.data;

    if (ngx_http_vodlms_add_header(r, "Retry-After", &v) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (verdict == VODLMS_KEY_OVER_BUDGET) {
        p = ngx_sprintf(extra.data, ",\"budget\":%ui,\"window\":%M,"
                        "\"retryAfter\":%uL", kcf->budget,
                        kcf->window / 1000, retry);
        extra.len = p - extra.data;

        ngx_http_vodlms_key_deny(k, NGX_HTTP_VODLMS_KEY_BUDGET,
                                 "budget= used up in this window", &extra);
        return;
    }

    p = ngx_sprintf(extra.data, ",\"startsAt\":%.3f,\"releasedTo\":%.3f,"
                    "\"retryAfter\":%uL", (double) k->starts_ms / 1000,
                    (double) ngx_max(k->pace.released_ms, 0) / 1000, retry);
    extra.len = p - extra.data;

    ngx_http_vodlms_key_deny(k, NGX_HTTP_VODLMS_KEY_PACE,
                             "ahead of pace=", &extra);
}


static void
ngx_http_vodlms_key_serve(ngx_http_vodlms_key_req_t *k)
{
    u_char                      *p, *last;
    ngx_buf_t                   *b;
    ngx_str_t                    v;
    ngx_http_request_t          *r = k->r;
    ngx_http_vodlms_key_conf_t  *kcf = k->kcf;

    u_char  limits[160];

    b = ngx_create_temp_buf(r->pool, VODLMS_KEY_LEN);
    if (b == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    b->last = ngx_cpymem(b->last, k->key, VODLMS_KEY_LEN);

    ngx_str_set(&v, "no-store");
    if (ngx_http_vodlms_add_header(r, "Cache-Control", &v) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* what the limits saw: "; fetch 3 of 20 in the window; released up to
       600 s before", or why they were not counted */
    p = limits;
    last = limits + sizeof(limits);

    if (k->counted && kcf->budget) {
        p = ngx_slprintf(p, last, "; fetch %L of %ui in the window",
                         k->count, kcf->budget);
    }

    if (k->counted && kcf->speed) {
        if (k->pace.released_ms < 0) {
            p = ngx_slprintf(p, last, "; the viewer's first key");

        } else {
            p = ngx_slprintf(p, last, "; released up to %L s before",
                             k->pace.released_ms / 1000);
        }
    }

    if (k->unlimited) {
        p = ngx_slprintf(p, last, "; %s", k->unlimited);
    }

    ngx_log_error(kcf->log_level, r->connection->log, 0,
                  "vodlms: key served: %V (from the %s%*s), answering 200",
                  &k->who, k->source, p - limits, limits);

    ngx_http_finalize_request(r, ngx_http_vodlms_send(r, NGX_HTTP_OK,
                                                 "application/octet-stream",
                                                 b));
}


/* a refusal: its one line names the fetch, then why */

static void
ngx_http_vodlms_key_deny(ngx_http_vodlms_key_req_t *k,
    ngx_http_vodlms_err_e err, const char *why, ngx_str_t *extra)
{
    u_char     *p;
    size_t      len;
    ngx_int_t   rc;
    ngx_str_t   detail;

    len = why ? ngx_min(ngx_strlen(why), 300) : 0;

    detail.data = ngx_pnalloc(k->r->pool, k->who.len + sizeof(" ()") + len);
    if (detail.data == NULL) {
        ngx_http_finalize_request(k->r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = ngx_cpymem(detail.data, k->who.data, k->who.len);
    if (len) {
        p = ngx_sprintf(p, " (%*s)", len, why);
    }
    detail.len = p - detail.data;

    rc = ngx_http_vodlms_deny_extra(k->r, err, &detail, extra);

    /* an error_page of the location's takes the status */
    if (rc != NGX_DONE) {
        ngx_http_finalize_request(k->r, rc);
    }
}


/* configuration */

void
ngx_http_vodlms_key_create_conf(ngx_http_vodlms_key_conf_t *kcf)
{
    kcf->version = NGX_CONF_UNSET_PTR;
    kcf->index = NGX_CONF_UNSET_PTR;
    kcf->budget = NGX_CONF_UNSET_UINT;
    kcf->window = NGX_CONF_UNSET_MSEC;
    kcf->speed = NGX_CONF_UNSET_UINT;
    kcf->allowance = NGX_CONF_UNSET_MSEC;
    kcf->pace_reset = NGX_CONF_UNSET_MSEC;
    kcf->redis_down = NGX_CONF_UNSET_UINT;
    kcf->log_level = NGX_CONF_UNSET_UINT;
    kcf->stmt = NGX_CONF_UNSET_PTR;
    kcf->cache = NGX_CONF_UNSET_PTR;
    kcf->cache_valid = NGX_CONF_UNSET_MSEC;
    kcf->cache_invalid = NGX_CONF_UNSET_MSEC;
}


char *
ngx_http_vodlms_key_merge_conf(ngx_conf_t *cf,
    ngx_http_vodlms_key_conf_t *prev, ngx_http_vodlms_key_conf_t *conf)
{
    u_char                       *p;
    ngx_str_t                     sql;
    ngx_http_vodlms_loc_conf_t   *vlcf;

    /* the endpoint itself is the location's own, as a content handler is */
    if (conf->version == NGX_CONF_UNSET_PTR) {
        conf->version = NULL;
        conf->index = NULL;
        conf->budget = 0;
        conf->window = 0;
        conf->speed = 0;
        conf->allowance = 0;
        conf->pace_reset = 0;
        conf->redis_down = NGX_HTTP_VODLMS_KEY_REDIS_OPEN;
        conf->log_level = NGX_LOG_NOTICE;
        conf->stmt = NULL;
    }

    ngx_conf_merge_ptr_value(conf->cache, prev->cache, NULL);
    ngx_conf_merge_msec_value(conf->cache_valid, prev->cache_valid, 3600000);
    ngx_conf_merge_msec_value(conf->cache_invalid, prev->cache_invalid,
                              5000);

    if (conf->cache && !ngx_vodlms_shm_cache_defined(conf->cache)) {
        ngx_http_vodlms_merge_error(cf,
                                    "unknown vodlms_cache_zone \"%V\" in "
                                    "\"vodlms_hls_key_cache\"",
                                    &conf->cache->shm.name);
        return NGX_CONF_ERROR;
    }

    if (conf->version == NULL) {
        return NGX_CONF_OK;
    }

    vlcf = (ngx_http_vodlms_loc_conf_t *)
           ((u_char *) conf - offsetof(ngx_http_vodlms_loc_conf_t, key));

    /* (the session gate needs vodlms_redis, so budget= and pace= have it) */
    if (!vlcf->session.enable || !vlcf->enroll.enable) {
        ngx_http_vodlms_merge_error(cf,
                                    "\"vodlms_hls_key\" serves keys only "
                                    "behind the gates: add \"vodlms_auth "
                                    "on\", \"vodlms_enrollment_check on\" "
                                    "and \"vodlms_video_id\"");
        return NGX_CONF_ERROR;
    }

    /* the key is of vodlms_video_id's video: the check must be about it */
    if (!ngx_http_vodlms_enroll_takes_video_id(&vlcf->enroll)) {
        ngx_http_vodlms_merge_error(cf,
                                    "\"vodlms_hls_key\" serves the keys of "
                                    "the video of \"vodlms_video_id\": the "
                                    "\"vodlms_enrollment_query\" here must "
                                    "take it as a value ($vodlms_video_id), "
                                    "or it would admit one video and serve "
                                    "another's keys");
        return NGX_CONF_ERROR;
    }

    if (conf->stmt == NULL) {
        if (ngx_http_vodlms_sql_in_schema(cf, &ngx_http_vodlms_key_sql, &sql)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }

        conf->stmt = ngx_http_vodlms_enroll_stmt(cf, &sql, 3);
        if (conf->stmt == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (conf->cache) {
        /* another schema is another table: its keys must not mix */
        conf->cache_ns.data = ngx_pnalloc(cf->pool, sizeof("hlskey|") + 8);
        if (conf->cache_ns.data == NULL) {
            return NGX_CONF_ERROR;
        }

        p = ngx_sprintf(conf->cache_ns.data, "hlskey|%08xD",
                        ngx_crc32_long(conf->stmt->sql.data,
                                       conf->stmt->sql.len));
        conf->cache_ns.len = p - conf->cache_ns.data;
    }

    return NGX_CONF_OK;
}


/*
 * vodlms_hls_key version index [budget=N/time] [pace=speed]
 *     [allowance=time] [pace_reset=time] [redis_down=open|closed]
 *     [log=notice|info];
 */

char *
ngx_http_vodlms_key(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vodlms_loc_conf_t  *vlcf = conf;

    u_char                            *slash;
    uint64_t                           speed;
    ngx_int_t                          n;
    ngx_str_t                         *value, s;
    ngx_uint_t                         i, j;
    ngx_msec_t                         ms;
    ngx_http_core_loc_conf_t          *clcf;
    ngx_http_vodlms_key_conf_t        *kcf = &vlcf->key;
    ngx_http_compile_complex_value_t   ccv;

    if (kcf->version != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    kcf->version = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    kcf->index = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (kcf->version == NULL || kcf->index == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i <= 2; i++) {
        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));
        ccv.cf = cf;
        ccv.value = &value[i];
        ccv.complex_value = (i == 1) ? kcf->version : kcf->index;

        if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    kcf->budget = 0;
    kcf->window = 0;
    kcf->speed = 0;
    kcf->allowance = 30000;
    kcf->pace_reset = 86400000;
    kcf->redis_down = NGX_HTTP_VODLMS_KEY_REDIS_OPEN;
    kcf->log_level = NGX_LOG_NOTICE;
    kcf->stmt = NULL;

    for (i = 3; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "budget=", 7) == 0) {
            s.data = value[i].data + 7;
            s.len = value[i].len - 7;

            slash = ngx_strlchr(s.data, s.data + s.len, '/');
            if (slash == NULL) {
                goto invalid;
            }

            n = ngx_atoi(s.data, slash - s.data);
            if (n <= 0 || n > 1000000) {
                goto invalid;
            }

            s.len -= slash + 1 - s.data;
            s.data = slash + 1;
            ms = ngx_parse_time(&s, 0);
            if (ms == (ngx_msec_t) NGX_ERROR || ms < 1000) {
                goto invalid;
            }

            kcf->budget = n;
            kcf->window = ms;
            continue;
        }

        if (ngx_strncmp(value[i].data, "pace=", 5) == 0) {
            if (!vodlms_key_speed_parse((char *) value[i].data + 5,
                                        value[i].len - 5, &speed))
            {
                goto invalid;
            }

            kcf->speed = (ngx_uint_t) speed;
            continue;
        }

        if (ngx_strncmp(value[i].data, "allowance=", 10) == 0
            || ngx_strncmp(value[i].data, "pace_reset=", 11) == 0)
        {
            j = (value[i].data[0] == 'a') ? 10 : 11;
            s.data = value[i].data + j;
            s.len = value[i].len - j;
            ms = ngx_parse_time(&s, 0);

            if (ms == (ngx_msec_t) NGX_ERROR
                || (j == 11 && ms < 60000)
                || ms > (ngx_msec_t) 30 * 86400000)
            {
                goto invalid;
            }

            if (j == 10) {
                kcf->allowance = ms;
            } else {
                kcf->pace_reset = ms;
            }
            continue;
        }

        if (ngx_strcmp(value[i].data, "redis_down=open") == 0) {
            kcf->redis_down = NGX_HTTP_VODLMS_KEY_REDIS_OPEN;
            continue;
        }

        if (ngx_strcmp(value[i].data, "redis_down=closed") == 0) {
            kcf->redis_down = NGX_HTTP_VODLMS_KEY_REDIS_CLOSED;
            continue;
        }

        if (ngx_strncmp(value[i].data, "log=", 4) == 0) {
            for (j = 0; ngx_http_vodlms_key_log_levels[j].name.len; j++) {
                if (ngx_strcmp(value[i].data + 4,
                               ngx_http_vodlms_key_log_levels[j].name.data)
                    == 0)
                {
                    break;
                }
            }

            if (ngx_http_vodlms_key_log_levels[j].name.len == 0) {
                goto invalid;
            }

            kcf->log_level = ngx_http_vodlms_key_log_levels[j].value;
            continue;
        }

        goto invalid;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_vodlms_key_handler;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid \"vodlms_hls_key\" parameter \"%V\" "
                       "(budget=N/TIME of at least 1s, pace=SPEED from 0.1x "
                       "to 100x, allowance=TIME, pace_reset=TIME of at "
                       "least 1m, both at most 30d, redis_down=open|closed, "
                       "log=notice|info)", &value[i]);
    return NGX_CONF_ERROR;
}


/* vodlms_hls_key_cache zone [valid=time] [invalid=time] | off; */

char *
ngx_http_vodlms_key_cache(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vodlms_loc_conf_t  *vlcf = conf;

    return ngx_http_vodlms_parse_cache(cf, &vlcf->key.cache,
                                       &vlcf->key.cache_valid,
                                       &vlcf->key.cache_invalid);
}
