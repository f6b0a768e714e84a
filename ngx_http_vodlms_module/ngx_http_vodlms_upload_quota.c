/*
 * Upload quotas (vodlms_upload_quota): per uploader (the owner the helpers
 * take turns by), before the body is read.
 *
 *   concurrent=N   uploads in progress: a lease per upload in a sorted set
 *                  <stream>:uploading:<owner> (score: when it lapses),
 *                  taken here, given back when the request ends (a pool
 *                  cleanup), or lapsing after lease= if the worker died;
 *                  over: 429 with Retry-After;
 *   bytes=SIZE     spooled bytes waiting for or in transcoding: a hash
 *                  <stream>:spool:<owner> of source path -> bytes, written
 *                  with the job (MULTI: XADD + HSET, one transaction) and
 *                  cleared by the helper when the job ends; the upload's
 *                  Content-Length must fit what is left; over: 413.
 *
 * Both live in the Redis of the job queue, next to the stream: they hold
 * across workers, reloads and every nginx node that queues to that Redis.
 * The check and the lease are one script (atomic); the bytes are checked
 * against the announced length, so uploads admitted together may exceed
 * bytes= by at most (concurrent - 1) bodies (docs/directives.md).
 */

#include "ngx_http_vodlms_module.h"


struct ngx_http_vodlms_upload_quota_s {
    ngx_http_request_t             *r;
    ngx_http_vodlms_main_conf_t    *vmcf;
    ngx_str_t                       uploading;    /* key: the leases */
    ngx_str_t                       spool;        /* key: the bytes */
    u_char                          member[64];   /* this upload's lease */
    size_t                          member_len;
    ngx_int_t                       verdict;      /* 0, 413, 429; -1 */
    int64_t                         number;       /* bytes used, or seconds */
    ngx_uint_t                      admitted;
    ngx_http_vodlms_upload_quota_pt handler;
};


typedef struct {
    ngx_pool_t                     *pool;
} ngx_http_vodlms_upload_release_t;


/*
 * KEYS: leases, bytes.  ARGV: concurrent (0: none), bytes (0: none), the
 * announced length, lease ms, this upload's member.
 * Returns {0, used}, {429, seconds until a lease lapses}, {413, used}.
 */
static ngx_str_t  ngx_http_vodlms_upload_quota_lua = ngx_string(
    "local t = redis.call('TIME')\n"
    "local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"
    "local maxc, maxb = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "local len, lease = tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
    "if maxc > 0 and redis.call('ZCARD', KEYS[1]) >= maxc then\n"
    "  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')\n"
    "  return {429, math.ceil((tonumber(first[2]) - now) / 1000)}\n"
    "end\n"
    "local used = 0\n"
    "for _, v in ipairs(redis.call('HVALS', KEYS[2])) do\n"
    "  used = used + (tonumber(v) or 0)\n"
    "end\n"
    "if maxb > 0 and used + len > maxb then return {413, used} end\n"
    "redis.call('ZADD', KEYS[1], now + lease, ARGV[5])\n"
    "redis.call('PEXPIRE', KEYS[1], lease)\n"
    "return {0, used}\n");


static void ngx_http_vodlms_upload_quota_reply(void *data, ngx_uint_t i,
    redisReply *reply);
static void ngx_http_vodlms_upload_quota_done(void *data,
    ngx_vodlms_redis_status_e status, const char *reason);
static void ngx_http_vodlms_upload_quota_cleanup(void *data);
static void ngx_http_vodlms_upload_quota_released(void *data,
    ngx_vodlms_redis_status_e status, const char *reason);


static ngx_int_t
ngx_http_vodlms_upload_quota_key(ngx_pool_t *pool, ngx_str_t *stream,
    const char *kind, ngx_str_t *owner, ngx_str_t *key)
{
    size_t  n = ngx_strlen(kind);

    key->len = stream->len + 1 + n + 1 + owner->len;
    key->data = ngx_pnalloc(pool, key->len);
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(key->data, "%V:%s:%V", stream, kind, owner);

    return NGX_OK;
}


ngx_int_t
ngx_http_vodlms_upload_quota_check(ngx_http_request_t *r, ngx_str_t *owner,
    ngx_http_vodlms_upload_quota_pt handler,
    ngx_http_vodlms_upload_quota_t **qp)
{
    u_char                       *p;
    off_t                         len;
    ngx_int_t                     rc;
    const char                   *argv[10], *reason;
    size_t                        argvlen[10];
    ngx_vodlms_redis_cmd_t        cmd;
    ngx_vodlms_redis_status_e     status;
    ngx_http_vodlms_upload_quota_t *q;
    ngx_http_vodlms_loc_conf_t   *vlcf;
    ngx_http_vodlms_main_conf_t  *vmcf;
    ngx_http_vodlms_upload_conf_t *ucf;

    u_char  nc[NGX_INT_T_LEN], nb[NGX_OFF_T_LEN], nl[NGX_OFF_T_LEN],
            ml[NGX_INT_T_LEN];

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);
    vmcf = ngx_http_get_module_main_conf(r, ngx_http_vodlms_module);
    ucf = &vlcf->upload;

    q = ngx_pcalloc(r->pool, sizeof(ngx_http_vodlms_upload_quota_t));
    if (q == NULL) {
        return NGX_ERROR;
    }

    q->r = r;
    q->vmcf = vmcf;
    q->handler = handler;
    *qp = q;

    if (ngx_http_vodlms_upload_quota_key(r->pool, &ucf->stream, "uploading",
                                         owner, &q->uploading) != NGX_OK
        || ngx_http_vodlms_upload_quota_key(r->pool, &ucf->stream, "spool",
                                            owner, &q->spool) != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* unique across workers and nodes: the pid, the connection, 64 bits */
    q->member_len = ngx_sprintf(q->member, "%P-%uA-%08xD%08xD", ngx_pid,
                                r->connection->number,
                                (uint32_t) ngx_random(),
                                (uint32_t) ngx_random())
                    - q->member;

    len = r->headers_in.content_length_n > 0
          ? r->headers_in.content_length_n : 0;

    argv[0] = "EVAL";
    argv[1] = (char *) ngx_http_vodlms_upload_quota_lua.data;
    argv[2] = "2";
    argv[3] = (char *) q->uploading.data;
    argv[4] = (char *) q->spool.data;
    argv[5] = (char *) nc;
    argv[6] = (char *) nb;
    argv[7] = (char *) nl;
    argv[8] = (char *) ml;
    argv[9] = (char *) q->member;

    argvlen[0] = 4;
    argvlen[1] = ngx_http_vodlms_upload_quota_lua.len;
    argvlen[2] = 1;
    argvlen[3] = q->uploading.len;
    argvlen[4] = q->spool.len;
    p = ngx_sprintf(nc, "%ui", ucf->quota_concurrent);
    argvlen[5] = p - nc;
    p = ngx_sprintf(nb, "%O", ucf->quota_bytes);
    argvlen[6] = p - nb;
    p = ngx_sprintf(nl, "%O", len);
    argvlen[7] = p - nl;
    p = ngx_sprintf(ml, "%M", ucf->quota_lease);
    argvlen[8] = p - ml;
    argvlen[9] = q->member_len;

    cmd.argc = 10;
    cmd.argv = argv;
    cmd.argvlen = argvlen;

    q->verdict = -1;

    rc = ngx_vodlms_redis_send(vmcf->redis_pool, r->pool, r->connection->log,
                               &cmd, 1, ngx_http_vodlms_upload_quota_reply,
                               ngx_http_vodlms_upload_quota_done, q, &status,
                               &reason);
    if (rc == NGX_OK) {
        return NGX_AGAIN;
    }

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "vodlms upload: cannot check the quota of \"%V\": %s",
                  owner, reason);

    return status == NGX_VODLMS_REDIS_TIMEOUT
           ? NGX_HTTP_VODLMS_BACKEND_TIMEOUT : NGX_HTTP_VODLMS_BACKEND_DOWN;
}


static void
ngx_http_vodlms_upload_quota_reply(void *data, ngx_uint_t i,
    redisReply *reply)
{
    ngx_http_vodlms_upload_quota_t  *q = data;

    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, q->r->connection->log, 0,
                      "vodlms upload: the quota script failed: %*s",
                      (size_t) reply->len, reply->str);
        return;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_INTEGER
        || reply->element[1]->type != REDIS_REPLY_INTEGER)
    {
        ngx_log_error(NGX_LOG_ERR, q->r->connection->log, 0,
                      "vodlms upload: the quota script gave an unexpected "
                      "reply");
        return;
    }

    q->verdict = (ngx_int_t) reply->element[0]->integer;
    q->number = reply->element[1]->integer;
}


static void
ngx_http_vodlms_upload_quota_done(void *data,
    ngx_vodlms_redis_status_e status, const char *reason)
{
    ngx_http_vodlms_upload_quota_t  *q = data;

    ngx_http_request_t          *r = q->r;
    ngx_pool_cleanup_t          *cln;
    ngx_http_vodlms_err_e        err;

    if (status != NGX_VODLMS_REDIS_OK || q->verdict < 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "vodlms upload: cannot check the upload quota: %s",
                      reason ? reason : "the script failed");
        err = status == NGX_VODLMS_REDIS_TIMEOUT
              ? NGX_HTTP_VODLMS_BACKEND_TIMEOUT
              : NGX_HTTP_VODLMS_BACKEND_DOWN;
        q->handler(r, q, err);
        return;
    }

    if (q->verdict == 0) {
        /* the lease is ours until the request ends */
        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            q->handler(r, q, NGX_HTTP_VODLMS_INTERNAL);
            return;
        }

        cln->handler = ngx_http_vodlms_upload_quota_cleanup;
        cln->data = q;
        q->admitted = 1;
    }

    q->handler(r, q, q->verdict == 413 ? NGX_HTTP_VODLMS_UPLOAD_QUOTA
                     : q->verdict == 429 ? NGX_HTTP_VODLMS_TOO_MANY_UPLOADS
                     : NGX_HTTP_VODLMS_OK);
}


/* the refusal: 413 or 429, with what the uploader needs to know */

ngx_int_t
ngx_http_vodlms_upload_quota_deny(ngx_http_request_t *r,
    ngx_http_vodlms_upload_quota_t *q, ngx_http_vodlms_err_e err)
{
    u_char                         *p;
    ngx_str_t                       extra, detail, v;
    ngx_http_vodlms_loc_conf_t     *vlcf;
    ngx_http_vodlms_upload_conf_t  *ucf;

    u_char  retry[NGX_TIME_T_LEN];

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);
    ucf = &vlcf->upload;

    extra.data = ngx_pnalloc(r->pool, 3 * NGX_OFF_T_LEN + 64);
    detail.data = ngx_pnalloc(r->pool, 3 * NGX_OFF_T_LEN + 80
                                       + q->spool.len);
    if (extra.data == NULL || detail.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (err == NGX_HTTP_VODLMS_UPLOAD_QUOTA) {
        p = ngx_sprintf(extra.data, ",\"quotaBytes\":%O,\"usedBytes\":%L",
                        ucf->quota_bytes, q->number);
        extra.len = p - extra.data;
        p = ngx_sprintf(detail.data, "%V holds %L bytes, %O more would pass "
                        "bytes=%O", &q->spool, q->number,
                        r->headers_in.content_length_n, ucf->quota_bytes);
        detail.len = p - detail.data;

    } else {
        /* a slot frees when an upload ends: retry= is the usual wait */
        v.data = retry;
        v.len = ngx_sprintf(retry, "%T", ucf->quota_retry) - retry;
        v.data = ngx_pstrdup(r->pool, &v);
        if (v.data == NULL
            || ngx_http_vodlms_add_header(r, "Retry-After", &v) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = ngx_sprintf(extra.data, ",\"concurrent\":%ui,\"retryAfter\":%T",
                        ucf->quota_concurrent, ucf->quota_retry);
        extra.len = p - extra.data;
        p = ngx_sprintf(detail.data, "%V has %ui in progress (the oldest "
                        "lease lapses in %L s)", &q->uploading,
                        ucf->quota_concurrent, q->number);
        detail.len = p - detail.data;
    }

    return ngx_http_vodlms_deny_extra(r, err, &detail, &extra);
}


/* the request is over (any way at all): its lease goes back */

static void
ngx_http_vodlms_upload_quota_cleanup(void *data)
{
    ngx_http_vodlms_upload_quota_t  *q = data;

    ngx_int_t                          rc;
    ngx_pool_t                        *pool;
    const char                        *argv[3], *reason;
    size_t                             argvlen[3];
    ngx_vodlms_redis_cmd_t             cmd;
    ngx_vodlms_redis_status_e          status;
    ngx_http_vodlms_main_conf_t       *vmcf = q->vmcf;
    ngx_http_vodlms_upload_release_t  *rel;

    if (!q->admitted) {
        return;
    }

    /* the request's pool is going: the command gets one of its own */
    pool = ngx_create_pool(512, ngx_cycle->log);
    if (pool == NULL) {
        return;                 /* the lease lapses after lease= */
    }

    rel = ngx_palloc(pool, sizeof(ngx_http_vodlms_upload_release_t));
    argv[1] = ngx_pnalloc(pool, q->uploading.len);
    argv[2] = ngx_pnalloc(pool, q->member_len);
    if (rel == NULL || argv[1] == NULL || argv[2] == NULL) {
        ngx_destroy_pool(pool);
        return;
    }

    rel->pool = pool;
    ngx_memcpy((u_char *) argv[1], q->uploading.data, q->uploading.len);
    ngx_memcpy((u_char *) argv[2], q->member, q->member_len);

    argv[0] = "ZREM";
    argvlen[0] = 4;
    argvlen[1] = q->uploading.len;
    argvlen[2] = q->member_len;

    cmd.argc = 3;
    cmd.argv = argv;
    cmd.argvlen = argvlen;

    rc = ngx_vodlms_redis_send(vmcf->redis_pool, pool, ngx_cycle->log, &cmd,
                               1, NULL, ngx_http_vodlms_upload_quota_released,
                               rel, &status, &reason);
    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "vodlms upload: cannot give back an upload lease of "
                      "\"%V\" (it lapses after lease=): %s", &q->uploading,
                      rc == NGX_DECLINED ? reason : "no memory");
        ngx_destroy_pool(pool);
    }
}


static void
ngx_http_vodlms_upload_quota_released(void *data,
    ngx_vodlms_redis_status_e status, const char *reason)
{
    ngx_http_vodlms_upload_release_t  *rel = data;

    if (status != NGX_VODLMS_REDIS_OK) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "vodlms upload: cannot give back an upload lease (it "
                      "lapses after lease=): %s", reason ? reason : "error");
    }

    ngx_destroy_pool(rel->pool);
}


/* the spool hash the enqueue transaction writes: see upload.c */

ngx_str_t *
ngx_http_vodlms_upload_quota_spool_key(ngx_http_vodlms_upload_quota_t *q)
{
    return &q->spool;
}


/*
 * vodlms_upload_quota [bytes=size] [concurrent=number] [lease=time]
 *     [retry=time];
 */

char *
ngx_http_vodlms_upload_quota(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vodlms_loc_conf_t  *vlcf = conf;

    off_t                           n;
    ngx_int_t                       c;
    ngx_str_t                      *value, s;
    ngx_uint_t                      i;
    ngx_http_vodlms_upload_conf_t  *ucf = &vlcf->upload;

    if (ucf->quota_bytes != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    ucf->quota_bytes = 0;
    ucf->quota_concurrent = 0;
    ucf->quota_lease = 3600000;
    ucf->quota_retry = 30;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "bytes=", 6) == 0) {
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;
            n = ngx_parse_offset(&s);
            if (n <= 0) {
                goto invalid;
            }
            ucf->quota_bytes = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "concurrent=", 11) == 0) {
            c = ngx_atoi(value[i].data + 11, value[i].len - 11);
            if (c <= 0) {
                goto invalid;
            }
            ucf->quota_concurrent = c;
            continue;
        }

        if (ngx_strncmp(value[i].data, "lease=", 6) == 0) {
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;
            c = ngx_parse_time(&s, 0);
            if (c == NGX_ERROR || c < 1000) {
                goto invalid;
            }
            ucf->quota_lease = c;
            continue;
        }

        if (ngx_strncmp(value[i].data, "retry=", 6) == 0) {
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;
            c = ngx_parse_time(&s, 1);
            if (c == NGX_ERROR || c < 1) {
                goto invalid;
            }
            ucf->quota_retry = c;
            continue;
        }

        goto invalid;
    }

    if (ucf->quota_bytes == 0 && ucf->quota_concurrent == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"vodlms_upload_quota\" needs bytes= or "
                           "concurrent=");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid \"vodlms_upload_quota\" parameter \"%V\" "
                       "(bytes=SIZE, concurrent=N, lease=TIME of at least "
                       "1s, retry=TIME)", &value[i]);
    return NGX_CONF_ERROR;
}
