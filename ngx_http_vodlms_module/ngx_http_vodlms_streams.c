/*
 * Concurrent streams per user (see ngx_http_vodlms_streams.h).
 *
 * The state of one user under one vodlms_streams_limit is three sorted
 * sets in Redis, all under one hash tag:
 *
 *   vodlms:streams:{<limit>:<user>}:live     playbackId -> last seen (ms)
 *   vodlms:streams:{<limit>:<user>}:start    playbackId -> started (ms)
 *   vodlms:streams:{<limit>:<user>}:gone     playbackId -> displaced (ms)
 *
 * One EVAL per playback start, beacon or key fetch reads Redis' TIME,
 * drops what lapsed, and decides; the sets expire by themselves when the
 * user stops watching.  "Oldest", for a takeover, is the earliest started:
 * start times are kept strictly increasing per user (two starts in one
 * millisecond are one millisecond apart), so the order is never a tie.
 * A lapsed or unknown playbackId is admitted again when there is room (a
 * long pause is not a ban), but never by taking over: only a new playback
 * (the user pressing play somewhere) displaces another.
 *
 * Redis down: redis_down=open lets requests go on unchecked (one log line
 * when that starts, one when Redis answers again, per worker); closed
 * answers 503 streams_unavailable.
 */

#include "ngx_http_vodlms_module.h"

#include <openssl/rand.h>


#define NGX_HTTP_VODLMS_STREAMS_MAX      10000
#define NGX_HTTP_VODLMS_STREAMS_NAME_MAX 64

/* how long a displaced playback is told so, at least */
#define NGX_HTTP_VODLMS_STREAMS_KEEP     (3600 * 1000)


/*
 * KEYS: live, start, gone.  ARGV: op (start|touch), id, max, lapse (ms),
 * takeover (0|1), keep (ms).  Answers {verdict, live ones, max, taken
 * over}, verdict "live", "full" or "displaced".
 */
static ngx_str_t  ngx_http_vodlms_streams_lua = ngx_string(
"if redis.replicate_commands then redis.replicate_commands() end\n"
"local t = redis.call('TIME')\n"
"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
"local id, max = ARGV[2], tonumber(ARGV[3])\n"
"local lapse, keep = tonumber(ARGV[4]), tonumber(ARGV[6])\n"
"local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - lapse)\n"
"for i = 1, #old do\n"
"  redis.call('ZREM', KEYS[1], old[i])\n"
"  redis.call('ZREM', KEYS[2], old[i])\n"
"end\n"
"redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - keep)\n"
"local n = redis.call('ZCARD', KEYS[1])\n"
"if ARGV[1] == 'touch' then\n"
"  if redis.call('ZSCORE', KEYS[3], id) then\n"
"    return {'displaced', n, max, 0}\n"
"  end\n"
"  if redis.call('ZSCORE', KEYS[1], id) then\n"
"    redis.call('ZADD', KEYS[1], now, id)\n"
"    redis.call('PEXPIRE', KEYS[1], lapse)\n"
"    redis.call('PEXPIRE', KEYS[2], lapse)\n"
"    return {'live', n, max, 0}\n"
"  end\n"
"end\n"
"local gone = {}\n"
"if n >= max then\n"
"  if ARGV[1] ~= 'start' or ARGV[5] ~= '1' then\n"
"    return {'full', n, max, 0}\n"
"  end\n"
"  gone = redis.call('ZRANGE', KEYS[2], 0, n - max)\n"
"  for i = 1, #gone do\n"
"    redis.call('ZREM', KEYS[1], gone[i])\n"
"    redis.call('ZREM', KEYS[2], gone[i])\n"
"    redis.call('ZADD', KEYS[3], now, gone[i])\n"
"  end\n"
"  redis.call('PEXPIRE', KEYS[3], keep)\n"
"  n = n - #gone\n"
"end\n"
"local at = now\n"
"local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')\n"
"if top[2] and tonumber(top[2]) >= at then at = tonumber(top[2]) + 1 end\n"
"redis.call('ZADD', KEYS[1], now, id)\n"
"redis.call('ZADD', KEYS[2], at, id)\n"
"redis.call('PEXPIRE', KEYS[1], lapse)\n"
"redis.call('PEXPIRE', KEYS[2], lapse)\n"
"return {'live', n + 1, max, #gone}\n");


static void ngx_http_vodlms_streams_reply(void *data, ngx_uint_t i,
    redisReply *reply);
static void ngx_http_vodlms_streams_done(void *data,
    ngx_vodlms_redis_status_e status, const char *reason);
static void ngx_http_vodlms_streams_down(ngx_http_request_t *r,
    ngx_http_vodlms_streams_ctx_t *st, const char *why);
static ngx_http_vodlms_streams_ctx_t *ngx_http_vodlms_streams_ctx(
    ngx_http_request_t *r);


ngx_uint_t
ngx_http_vodlms_streams_id_valid(u_char *p, size_t len)
{
    return vodlms_playback_id_valid((const char *) p, len);
}


ngx_int_t
ngx_http_vodlms_streams_check(ngx_http_request_t *r,
    ngx_http_vodlms_streams_limit_t *limit, ngx_str_t *user, ngx_str_t *id,
    ngx_http_vodlms_streams_done_pt done)
{
    u_char                          *p, *buf;
    size_t                           len;
    ngx_int_t                        rc;
    ngx_uint_t                       i;
    const char                      *reason, *op;
    ngx_vodlms_redis_cmd_t           cmd;
    ngx_vodlms_redis_status_e        status;
    ngx_http_vodlms_main_conf_t     *vmcf;
    ngx_http_vodlms_streams_ctx_t   *st;

    u_char                           raw[NGX_HTTP_VODLMS_PLAYBACK_ID_LEN / 2];
    const char                      *argv[12];
    size_t                           argvlen[12];

    static const char               *set[3] = { "live", "start", "gone" };

    st = ngx_http_vodlms_streams_ctx(r);
    if (st == NULL) {
        return NGX_ERROR;
    }

    st->limit = limit;
    st->user = *user;
    st->done = done;
    st->active = 0;
    st->displaced = 0;
    st->replied = 0;
    st->fresh = (id == NULL);
    ngx_str_null(&st->detail);

    if (id) {
        if (!ngx_http_vodlms_streams_id_valid(id->data, id->len)) {
            st->verdict = NGX_HTTP_VODLMS_STREAMS_BAD_ID;
            st->state = NGX_HTTP_VODLMS_STREAMS_DONE;
            return NGX_OK;
        }

        ngx_memcpy(st->id_buf, id->data, id->len);
        op = "touch";

    } else {
        /* a new playback: 128 bits nobody can guess or predict */
        if (RAND_bytes(raw, sizeof(raw)) != 1) {
            ngx_ssl_error(NGX_LOG_ERR, r->connection->log, 0,
                          "vodlms streams: RAND_bytes() failed, no "
                          "playbackId can be drawn");
            return NGX_ERROR;
        }

        ngx_hex_dump(st->id_buf, raw, sizeof(raw));
        op = "start";
    }

    st->id.data = st->id_buf;
    st->id.len = NGX_HTTP_VODLMS_PLAYBACK_ID_LEN;

    /* the three keys, then the numbers, in one buffer */

    len = 3 * (sizeof("vodlms:streams:{:}:start") - 1 + limit->name.len
               + user->len)
          + 4 * NGX_INT_T_LEN;

    buf = ngx_pnalloc(r->pool, len);
    if (buf == NULL) {
        return NGX_ERROR;
    }

    argv[0] = "EVAL";
    argvlen[0] = 4;
    argv[1] = (char *) ngx_http_vodlms_streams_lua.data;
    argvlen[1] = ngx_http_vodlms_streams_lua.len;
    argv[2] = "3";
    argvlen[2] = 1;

    p = buf;

    for (i = 0; i < 3; i++) {
        argv[3 + i] = (char *) p;
        p = ngx_sprintf(p, "vodlms:streams:{%V:%V}:%s", &limit->name, user,
                        set[i]);
        argvlen[3 + i] = p - (u_char *) argv[3 + i];
    }

    argv[6] = op;
    argvlen[6] = ngx_strlen(op);
    argv[7] = (char *) st->id.data;
    argvlen[7] = st->id.len;

    argv[8] = (char *) p;
    p = ngx_sprintf(p, "%ui", limit->max);
    argvlen[8] = p - (u_char *) argv[8];

    argv[9] = (char *) p;
    p = ngx_sprintf(p, "%M", limit->lapse);
    argvlen[9] = p - (u_char *) argv[9];

    argv[10] = limit->takeover ? "1" : "0";
    argvlen[10] = 1;

    argv[11] = (char *) p;
    p = ngx_sprintf(p, "%M", limit->keep);
    argvlen[11] = p - (u_char *) argv[11];

    cmd.argc = 12;
    cmd.argv = argv;
    cmd.argvlen = argvlen;

    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "vodlms streams: %s playback %V of user \"%V\" under "
                   "limit \"%V\" (max %ui)", op, &st->id, user, &limit->name,
                   limit->max);

    vmcf = ngx_http_get_module_main_conf(r, ngx_http_vodlms_module);

    rc = ngx_vodlms_redis_send(vmcf->redis_pool, r->pool, r->connection->log,
                               &cmd, 1, ngx_http_vodlms_streams_reply,
                               ngx_http_vodlms_streams_done, r,
                               &status, &reason);

    if (rc == NGX_OK) {
        st->state = NGX_HTTP_VODLMS_STREAMS_PENDING;
        return NGX_AGAIN;
    }

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    /* not even sent: the pool is backing off after failures */
    ngx_http_vodlms_streams_down(r, st, reason ? reason : "redis unavailable");
    st->state = NGX_HTTP_VODLMS_STREAMS_DONE;

    return NGX_OK;
}


static void
ngx_http_vodlms_streams_reply(void *data, ngx_uint_t i, redisReply *reply)
{
    ngx_http_request_t  *r = data;

    u_char                         *p;
    redisReply                    **e;
    ngx_http_vodlms_streams_ctx_t  *st;

    st = ngx_http_vodlms_streams_ctx(r);
    if (st == NULL) {
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        /* NOSCRIPT cannot happen (EVAL); BUSY, OOM, READONLY, NOAUTH can */
        st->detail.data = ngx_pnalloc(r->pool,
                                      sizeof("redis said: ") + reply->len);
        if (st->detail.data) {
            /* NUL-terminated: it is read as a C string once the batch ends */
            p = ngx_sprintf(st->detail.data, "redis said: %*s%Z",
                            (size_t) reply->len, reply->str);
            st->detail.len = p - 1 - st->detail.data;
        }
        return;
    }

    e = reply->element;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 4
        || e[0]->type != REDIS_REPLY_STRING
        || e[1]->type != REDIS_REPLY_INTEGER
        || e[3]->type != REDIS_REPLY_INTEGER)
    {
        ngx_str_set(&st->detail, "unexpected reply to the streams script");
        return;
    }

    if (e[0]->len == 4 && ngx_strncmp(e[0]->str, "live", 4) == 0) {
        st->verdict = NGX_HTTP_VODLMS_STREAMS_LIVE;

    } else if (e[0]->len == 4 && ngx_strncmp(e[0]->str, "full", 4) == 0) {
        st->verdict = NGX_HTTP_VODLMS_STREAMS_FULL;

    } else if (e[0]->len == 9
               && ngx_strncmp(e[0]->str, "displaced", 9) == 0)
    {
        st->verdict = NGX_HTTP_VODLMS_STREAMS_DISPLACED;

    } else {
        ngx_str_set(&st->detail, "unexpected verdict from the streams "
                                 "script");
        return;
    }

    st->active = (ngx_int_t) e[1]->integer;
    st->displaced = (ngx_int_t) e[3]->integer;
    st->replied = 1;
}


static void
ngx_http_vodlms_streams_done(void *data, ngx_vodlms_redis_status_e status,
    const char *reason)
{
    ngx_http_request_t  *r = data;

    ngx_http_vodlms_streams_ctx_t    *st;
    ngx_http_vodlms_streams_limit_t  *limit;

    st = ngx_http_vodlms_streams_ctx(r);
    if (st == NULL) {
        return;
    }

    limit = st->limit;

    if (status != NGX_VODLMS_REDIS_OK) {
        ngx_http_vodlms_streams_down(r, st, reason ? reason
                                                   : "redis unavailable");

    } else if (!st->replied) {
        ngx_http_vodlms_streams_down(r, st,
                                     st->detail.len
                                     ? (const char *) st->detail.data
                                     : "no reply to the streams script");

    } else {
        if (limit->down) {
            limit->down = 0;
            ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                          "vodlms streams: Redis answers again: the limit "
                          "\"%V\" is enforced again", &limit->name);
        }

        if (st->displaced) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "vodlms streams: user %V started playback %V over "
                          "the limit \"%V\" (%ui): it took over %i older "
                          "playback(s)", &st->user, &st->id, &limit->name,
                          limit->max, st->displaced);
        }

        ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "vodlms streams: playback %V: verdict %ui, %i of %ui "
                       "alive", &st->id, (ngx_uint_t) st->verdict,
                       st->active, limit->max);
    }

    st->state = NGX_HTTP_VODLMS_STREAMS_DONE;

    st->done(r);
}


/* the store cannot answer: open or closed, logged once while it lasts */

static void
ngx_http_vodlms_streams_down(ngx_http_request_t *r,
    ngx_http_vodlms_streams_ctx_t *st, const char *why)
{
    u_char                           *p;
    size_t                            len;
    ngx_http_vodlms_streams_limit_t  *limit;

    limit = st->limit;

    if (!limit->down) {
        limit->down = 1;
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "vodlms streams: the limit \"%V\" cannot be checked "
                      "(%s): %s until Redis answers", &limit->name, why,
                      limit->closed
                      ? "playbacks are refused (redis_down=closed)"
                      : "playbacks go on unchecked (redis_down=open)");
    }

    st->verdict = limit->closed ? NGX_HTTP_VODLMS_STREAMS_CLOSED
                                : NGX_HTTP_VODLMS_STREAMS_UNCHECKED;

    len = ngx_strlen(why);
    if (len > 200) {
        len = 200;
    }

    st->detail.data = ngx_pnalloc(r->pool, sizeof("limit \"\": ") - 1
                                           + limit->name.len + len);
    if (st->detail.data == NULL) {
        ngx_str_null(&st->detail);
        return;
    }

    p = ngx_sprintf(st->detail.data, "limit \"%V\": %*s", &limit->name, len,
                    why);
    st->detail.len = p - st->detail.data;
}


ngx_uint_t
ngx_http_vodlms_streams_passed(ngx_http_request_t *r)
{
    ngx_http_vodlms_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_vodlms_module);

    return ctx != NULL
           && (ctx->streams.verdict == NGX_HTTP_VODLMS_STREAMS_LIVE
               || ctx->streams.verdict == NGX_HTTP_VODLMS_STREAMS_UNCHECKED);
}


ngx_int_t
ngx_http_vodlms_streams_deny(ngx_http_request_t *r)
{
    u_char                         *p;
    ngx_str_t                       detail, extra;
    ngx_http_vodlms_streams_ctx_t  *st;

    st = ngx_http_vodlms_streams_ctx(r);
    if (st == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    switch (st->verdict) {

    case NGX_HTTP_VODLMS_STREAMS_BAD_ID:
        ngx_str_set(&detail, "a playbackId is 32 lower-case hex digits");
        return ngx_http_vodlms_deny(r, NGX_HTTP_VODLMS_BAD_PLAYBACK_ID,
                                    &detail);

    case NGX_HTTP_VODLMS_STREAMS_FULL:
        detail.data = ngx_pnalloc(r->pool, 160 + st->user.len
                                           + st->limit->name.len);
        extra.data = ngx_pnalloc(r->pool, sizeof(",\"active\":,\"limit\":")
                                          + 2 * NGX_INT_T_LEN);
        if (detail.data == NULL || extra.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = ngx_sprintf(detail.data, "user %V has %i of %ui playbacks "
                        "alive under limit \"%V\"", &st->user, st->active,
                        st->limit->max, &st->limit->name);
        detail.len = p - detail.data;

        p = ngx_sprintf(extra.data, ",\"active\":%i,\"limit\":%ui",
                        st->active, st->limit->max);
        extra.len = p - extra.data;

        return ngx_http_vodlms_deny_extra(r, NGX_HTTP_VODLMS_TOO_MANY_STREAMS,
                                          &detail, &extra);

    case NGX_HTTP_VODLMS_STREAMS_DISPLACED:
        detail.data = ngx_pnalloc(r->pool, 80 + st->user.len + st->id.len);
        if (detail.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = ngx_sprintf(detail.data, "playback %V of user %V was taken over "
                        "by a newer one", &st->id, &st->user);
        detail.len = p - detail.data;

        return ngx_http_vodlms_deny(r, NGX_HTTP_VODLMS_STREAM_DISPLACED,
                                    &detail);

    case NGX_HTTP_VODLMS_STREAMS_CLOSED:
        return ngx_http_vodlms_deny(r, NGX_HTTP_VODLMS_STREAMS_UNAVAILABLE,
                                    &st->detail);

    case NGX_HTTP_VODLMS_STREAMS_MISSING:
        detail.data = ngx_pnalloc(r->pool, 120 + st->user.len
                                           + st->limit->name.len);
        if (detail.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = ngx_sprintf(detail.data, "a key request of user %V without "
                        "X-Vodlms-Playback under limit \"%V\" "
                        "(headerless=refuse)", &st->user, &st->limit->name);
        detail.len = p - detail.data;

        return ngx_http_vodlms_deny(r, NGX_HTTP_VODLMS_PLAYBACK_REQUIRED,
                                    &detail);

    default:
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "vodlms streams: no refusal for verdict %ui",
                      (ngx_uint_t) st->verdict);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}


ngx_int_t
ngx_http_vodlms_streams_header(ngx_http_request_t *r, ngx_str_t *id)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NGX_DECLINED;
            }
            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == sizeof("X-Vodlms-Playback") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "X-Vodlms-Playback",
                               sizeof("X-Vodlms-Playback") - 1) == 0)
        {
            *id = h[i].value;
            return NGX_OK;
        }
    }
}


static ngx_http_vodlms_streams_ctx_t *
ngx_http_vodlms_streams_ctx(ngx_http_request_t *r)
{
    ngx_http_vodlms_ctx_t  *ctx;

    ctx = ngx_http_vodlms_get_ctx(r);

    return ctx ? &ctx->streams : NULL;
}


/*
 * In the access phase after the enrollment check.
 *
 * The playback location: no X-Vodlms-Playback header starts a new
 * playback; a playbackId in it renews that one (the player refreshing its
 * cookies, or moving to the next video in the same tab), checked as a
 * beacon is; "none" asks for the answer without starting anything (a
 * course page listing videos).
 *
 * The key location: the playbackId in the header is checked and refreshed
 * as a beacon's is (a displaced playback gets no key; a lapsed one comes
 * back only if there is room), before the key handler counts the fetch
 * against its budget.  Without the header: served unchecked
 * (headerless=serve: ffmpeg, native HLS players cannot send it) or 400
 * playback_required (headerless=refuse).
 */

ngx_int_t
ngx_http_vodlms_streams_handler(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    ngx_str_t                        id;
    ngx_http_vodlms_ctx_t           *ctx;
    ngx_http_vodlms_loc_conf_t      *vlcf;
    ngx_http_vodlms_streams_ctx_t   *st;
    ngx_http_vodlms_streams_conf_t  *scf;

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);
    scf = &vlcf->streams;

    if (scf->limit == NULL) {
        return NGX_DECLINED;
    }

    if (scf->role == NGX_HTTP_VODLMS_STREAMS_START) {
        if (r->method != NGX_HTTP_GET) {
            return NGX_DECLINED;
        }

    } else if (scf->role == NGX_HTTP_VODLMS_STREAMS_KEY) {
        /* the key handler answers these two only */
        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
            return NGX_DECLINED;
        }

    } else {
        return NGX_DECLINED;
    }

    ctx = ngx_http_vodlms_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    st = &ctx->streams;

    switch (st->state) {

    case NGX_HTTP_VODLMS_STREAMS_PENDING:
        return NGX_AGAIN;

    case NGX_HTTP_VODLMS_STREAMS_DONE:
        goto decide;

    default:
        break;
    }

    if (ctx->session.state != NGX_HTTP_VODLMS_SESSION_DONE
        || ctx->session.result != NGX_HTTP_VODLMS_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "vodlms streams: no session user to count the "
                      "playback for");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_vodlms_streams_header(r, &id);

    if (scf->role == NGX_HTTP_VODLMS_STREAMS_KEY) {

        if (rc != NGX_OK) {
            st->state = NGX_HTTP_VODLMS_STREAMS_DONE;
            st->limit = scf->limit;
            st->user = ctx->session.user_id;
            st->verdict = (scf->headerless
                           == NGX_HTTP_VODLMS_STREAMS_HEADERLESS_REFUSE)
                          ? NGX_HTTP_VODLMS_STREAMS_MISSING
                          : NGX_HTTP_VODLMS_STREAMS_NOT_ASKED;
            goto decide;
        }

    } else if (rc == NGX_OK && id.len == 4
               && ngx_strncmp(id.data, "none", 4) == 0)
    {
        st->state = NGX_HTTP_VODLMS_STREAMS_DONE;
        st->verdict = NGX_HTTP_VODLMS_STREAMS_NOT_ASKED;
        return NGX_DECLINED;
    }

    rc = ngx_http_vodlms_streams_check(r, scf->limit, &ctx->session.user_id,
                                       rc == NGX_OK ? &id : NULL,
                                       ngx_http_vodlms_wake);

    if (rc == NGX_AGAIN) {
        return NGX_AGAIN;
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

decide:

    if (st->verdict == NGX_HTTP_VODLMS_STREAMS_NOT_ASKED) {
        return NGX_DECLINED;
    }

    if (ngx_http_vodlms_streams_passed(r)) {
        return NGX_OK;
    }

    return ngx_http_vodlms_streams_deny(r);
}


/*
 * The key handler's own look, whatever "satisfy" let through: a location
 * counting keys serves one only to a request whose check above passed, or
 * that headerless=serve let go unchecked
 */

ngx_uint_t
ngx_http_vodlms_streams_key_passed(ngx_http_request_t *r)
{
    ngx_http_vodlms_ctx_t           *ctx;
    ngx_http_vodlms_loc_conf_t      *vlcf;

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);

    if (vlcf->streams.limit == NULL
        || vlcf->streams.role != NGX_HTTP_VODLMS_STREAMS_KEY)
    {
        return 1;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_vodlms_module);

    return ctx != NULL
           && ctx->streams.state == NGX_HTTP_VODLMS_STREAMS_DONE
           && (ctx->streams.verdict == NGX_HTTP_VODLMS_STREAMS_NOT_ASKED
               || ngx_http_vodlms_streams_passed(r));
}


/*
 * $vodlms_playback_id: the playback the request started, renewed or named
 * (a beacon's, a key fetch's); empty when there was none, when it was
 * malformed, and when a new one was refused (its id never left nginx)
 */

ngx_int_t
ngx_http_vodlms_streams_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_vodlms_ctx_t          *ctx;
    ngx_http_vodlms_streams_ctx_t  *st;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_vodlms_module);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    st = &ctx->streams;

    if (st->id.len == 0 || st->verdict == NGX_HTTP_VODLMS_STREAMS_BAD_ID
        || st->verdict == NGX_HTTP_VODLMS_STREAMS_NOT_ASKED
        || (st->fresh && !ngx_http_vodlms_streams_passed(r->main)))
    {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = st->id.len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = st->id.data;

    return NGX_OK;
}


size_t
ngx_http_vodlms_streams_json_len(ngx_http_request_t *r)
{
    ngx_http_vodlms_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_vodlms_module);

    if (ctx == NULL || ctx->streams.id.len == 0
        || !ngx_http_vodlms_streams_passed(r))
    {
        return 0;
    }

    return sizeof(",\"playbackId\":\"\"") - 1 + ctx->streams.id.len;
}


u_char *
ngx_http_vodlms_streams_json(ngx_http_request_t *r, u_char *p)
{
    ngx_http_vodlms_ctx_t  *ctx;

    if (ngx_http_vodlms_streams_json_len(r) == 0) {
        return p;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_vodlms_module);

    /* lower-case hex: nothing to escape */
    return ngx_sprintf(p, ",\"playbackId\":\"%V\"", &ctx->streams.id);
}


/* configuration */

void
ngx_http_vodlms_streams_create_conf(ngx_http_vodlms_streams_conf_t *scf)
{
    scf->limit = NGX_CONF_UNSET_PTR;
    scf->headerless = NGX_CONF_UNSET_UINT;
}


char *
ngx_http_vodlms_streams_merge_conf(ngx_conf_t *cf,
    ngx_http_vodlms_streams_conf_t *prev,
    ngx_http_vodlms_streams_conf_t *conf)
{
    ngx_uint_t                    set_here;
    ngx_http_vodlms_loc_conf_t   *vlcf;
    ngx_http_vodlms_main_conf_t  *vmcf;

    set_here = (conf->headerless != NGX_CONF_UNSET_UINT);

    ngx_conf_merge_ptr_value(conf->limit, prev->limit, NULL);
    ngx_conf_merge_uint_value(conf->headerless, prev->headerless,
                              NGX_HTTP_VODLMS_STREAMS_HEADERLESS_SERVE);

    conf->role = NGX_HTTP_VODLMS_STREAMS_NONE;

    if (conf->limit == NULL) {
        return NGX_CONF_OK;
    }

    if (!conf->limit->defined) {
        ngx_http_vodlms_merge_error(cf,
                                    "\"vodlms_streams\" names \"%V\", which "
                                    "no \"vodlms_streams_limit\" defines",
                                    &conf->limit->name);
        return NGX_CONF_ERROR;
    }

    vmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_vodlms_module);

    if (vmcf->redis == NULL) {
        ngx_http_vodlms_merge_error(cf,
                                    "\"vodlms_streams\" needs "
                                    "\"vodlms_redis\": the playbacks are "
                                    "counted there");
        return NGX_CONF_ERROR;
    }

    vlcf = (ngx_http_vodlms_loc_conf_t *)
           ((u_char *) conf - offsetof(ngx_http_vodlms_loc_conf_t, streams));

    if (vlcf->playback.mode == NGX_HTTP_VODLMS_PLAYBACK_REDIRECT) {
        ngx_http_vodlms_merge_error(cf,
                                    "\"vodlms_streams\" cannot count "
                                    "\"vodlms_playback redirect\": a "
                                    "redirect has no answer to carry the "
                                    "playbackId (use \"cookies\" or "
                                    "\"url\")");
        return NGX_CONF_ERROR;
    }

    if (vlcf->playback.mode != NGX_HTTP_VODLMS_PLAYBACK_OFF) {
        conf->role = NGX_HTTP_VODLMS_STREAMS_START;

    } else if (vlcf->progress.enable) {
        conf->role = NGX_HTTP_VODLMS_STREAMS_BEACON;

    } else if (vlcf->key.version != NULL) {
        conf->role = NGX_HTTP_VODLMS_STREAMS_KEY;
    }

    if (set_here && (conf->role == NGX_HTTP_VODLMS_STREAMS_START
                     || conf->role == NGX_HTTP_VODLMS_STREAMS_BEACON))
    {
        ngx_http_vodlms_merge_error(cf,
                                    "\"vodlms_streams\" \"headerless=\" "
                                    "applies to key requests only (a "
                                    "location with \"vodlms_hls_key\"), "
                                    "not to %s",
                                    conf->role
                                    == NGX_HTTP_VODLMS_STREAMS_START
                                    ? "\"vodlms_playback\""
                                    : "\"vodlms_progress\"");
        return NGX_CONF_ERROR;
    }

    if (conf->role != NGX_HTTP_VODLMS_STREAMS_NONE && !vlcf->session.enable) {
        ngx_http_vodlms_merge_error(cf,
                                    "\"vodlms_streams\" needs "
                                    "\"vodlms_auth on\": streams are "
                                    "counted per user");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* the limit called "name", made on first mention, defined or not */

static ngx_http_vodlms_streams_limit_t *
ngx_http_vodlms_streams_find(ngx_conf_t *cf, ngx_str_t *name)
{
    ngx_uint_t                         i;
    ngx_http_vodlms_main_conf_t       *vmcf;
    ngx_http_vodlms_streams_limit_t  **l, *limit;

    if (name->len == 0 || name->len > NGX_HTTP_VODLMS_STREAMS_NAME_MAX
        || !vodlms_id_valid((char *) name->data, name->len,
                            NGX_HTTP_VODLMS_STREAMS_NAME_MAX))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid stream limit name \"%V\", expected 1 to "
                           "%d of [A-Za-z0-9_-]", name,
                           NGX_HTTP_VODLMS_STREAMS_NAME_MAX);
        return NULL;
    }

    vmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_vodlms_module);

    if (vmcf->streams_limits == NULL) {
        vmcf->streams_limits = ngx_array_create(cf->pool, 2, sizeof(void *));
        if (vmcf->streams_limits == NULL) {
            return NULL;
        }
    }

    l = vmcf->streams_limits->elts;

    for (i = 0; i < vmcf->streams_limits->nelts; i++) {
        if (l[i]->name.len == name->len
            && ngx_strncmp(l[i]->name.data, name->data, name->len) == 0)
        {
            return l[i];
        }
    }

    limit = ngx_pcalloc(cf->pool, sizeof(ngx_http_vodlms_streams_limit_t));
    if (limit == NULL) {
        return NULL;
    }

    limit->name = *name;

    l = ngx_array_push(vmcf->streams_limits);
    if (l == NULL) {
        return NULL;
    }

    *l = limit;

    return limit;
}


/*
 * vodlms_streams_limit name max=number [lapse=time]
 *     [over=refuse|takeover] [redis_down=open|closed];
 */

char *
ngx_http_vodlms_streams_limit(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_int_t                         max;
    ngx_str_t                        *value, s;
    ngx_msec_t                        lapse;
    ngx_uint_t                        i, takeover, closed;
    ngx_http_vodlms_streams_limit_t  *limit;

    value = cf->args->elts;

    max = 0;
    lapse = 90000;
    takeover = 0;
    closed = 0;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "max=", 4) == 0) {
            max = ngx_atoi(value[i].data + 4, value[i].len - 4);

            if (max <= 0 || max > NGX_HTTP_VODLMS_STREAMS_MAX) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\", expected a number of "
                                   "playbacks from 1 to %d", &value[i],
                                   NGX_HTTP_VODLMS_STREAMS_MAX);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "lapse=", 6) == 0) {
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;

            lapse = ngx_parse_time(&s, 0);

            if (lapse == (ngx_msec_t) NGX_ERROR || lapse < 1000
                || lapse > 86400000)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\", expected a time from "
                                   "1s to 1d (longer than the player's "
                                   "beacon interval)", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strcmp(value[i].data, "over=refuse") == 0) {
            takeover = 0;
            continue;
        }

        if (ngx_strcmp(value[i].data, "over=takeover") == 0) {
            takeover = 1;
            continue;
        }

        if (ngx_strcmp(value[i].data, "redis_down=open") == 0) {
            closed = 0;
            continue;
        }

        if (ngx_strcmp(value[i].data, "redis_down=closed") == 0) {
            closed = 1;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\", expected "
                           "\"max=number\", \"lapse=time\", "
                           "\"over=refuse|takeover\" or "
                           "\"redis_down=open|closed\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (max == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" needs \"max=number\"", &cmd->name);
        return NGX_CONF_ERROR;
    }

    limit = ngx_http_vodlms_streams_find(cf, &value[1]);
    if (limit == NULL) {
        return NGX_CONF_ERROR;
    }

    if (limit->defined) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate stream limit \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    limit->defined = 1;
    limit->max = max;
    limit->lapse = lapse;
    limit->keep = ngx_max(NGX_HTTP_VODLMS_STREAMS_KEEP, 2 * lapse);
    limit->takeover = takeover;
    limit->closed = closed;

    return NGX_CONF_OK;
}


/* vodlms_streams name [headerless=serve|refuse] | off; */

char *
ngx_http_vodlms_streams(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vodlms_loc_conf_t  *vlcf = conf;

    ngx_str_t  *value;

    if (vlcf->streams.limit != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        if (cf->args->nelts > 2) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"vodlms_streams off\" takes no "
                               "parameters, \"%V\" given", &value[2]);
            return NGX_CONF_ERROR;
        }

        vlcf->streams.limit = NULL;
        return NGX_CONF_OK;
    }

    if (cf->args->nelts > 2) {
        if (ngx_strcmp(value[2].data, "headerless=serve") == 0) {
            vlcf->streams.headerless =
                                    NGX_HTTP_VODLMS_STREAMS_HEADERLESS_SERVE;

        } else if (ngx_strcmp(value[2].data, "headerless=refuse") == 0) {
            vlcf->streams.headerless =
                                    NGX_HTTP_VODLMS_STREAMS_HEADERLESS_REFUSE;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\", expected "
                               "\"headerless=serve\" or "
                               "\"headerless=refuse\"", &value[2]);
            return NGX_CONF_ERROR;
        }
    }

    /* defined later in the file is fine: checked at merge */
    vlcf->streams.limit = ngx_http_vodlms_streams_find(cf, &value[1]);

    return vlcf->streams.limit ? NGX_CONF_OK : NGX_CONF_ERROR;
}
