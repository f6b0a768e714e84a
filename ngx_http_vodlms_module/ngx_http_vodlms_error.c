/*
 * Outcomes -> HTTP status, JSON body, log line (see ngx_http_vodlms_error.h).
 *
 * Every denial is logged here, so the log's volume is bounded here: a
 * client flooding one outcome (random video ids, a dead cookie replayed)
 * gets its first vodlms_denial_log_limit lines per second logged, the
 * rest counted, and the next line logged for that client and outcome says
 * how many were left out.  The bookkeeping is a small direct-mapped table
 * per worker: no lock, no shared memory, fixed size; a slot taken over by
 * another client first logs the count it held.
 */

#include "ngx_http_vodlms_module.h"


typedef struct {
    ngx_uint_t      status;
    ngx_uint_t      level;      /* info: the client's own doing */
    const char     *code;
    const char     *message;
} ngx_http_vodlms_err_info_t;


static ngx_http_vodlms_err_info_t  ngx_http_vodlms_errs[] = {

    /* NGX_HTTP_VODLMS_OK */
    { NGX_HTTP_OK, NGX_LOG_INFO, "ok", "ok" },

    { NGX_HTTP_UNAUTHORIZED, NGX_LOG_INFO, "no_session",
      "no session token in the request" },

    { NGX_HTTP_UNAUTHORIZED, NGX_LOG_INFO, "invalid_session",
      "malformed session token" },

    { NGX_HTTP_UNAUTHORIZED, NGX_LOG_WARN, "bad_signature",
      "session cookie signature does not match" },

    { NGX_HTTP_UNAUTHORIZED, NGX_LOG_INFO, "unknown_session",
      "unknown or expired session" },

    { NGX_HTTP_UNAUTHORIZED, NGX_LOG_INFO, "session_expired",
      "session expired" },

    /* the LMS wrote something we cannot read: fail closed, loudly */
    { NGX_HTTP_UNAUTHORIZED, NGX_LOG_ERR, "invalid_session_data",
      "session data unusable" },

    { NGX_HTTP_FORBIDDEN, NGX_LOG_INFO, "forbidden_role",
      "the user's role is not allowed here" },

    { NGX_HTTP_SERVICE_UNAVAILABLE, NGX_LOG_ERR, "backend_unavailable",
      "session store unavailable" },

    { NGX_HTTP_SERVICE_UNAVAILABLE, NGX_LOG_ERR, "backend_timeout",
      "session store timed out" },

    { NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_LOG_ERR, "internal_error",
      "internal error" },

    { NGX_HTTP_BAD_REQUEST, NGX_LOG_INFO, "bad_video_id",
      "malformed video id" },

    { NGX_HTTP_NOT_FOUND, NGX_LOG_INFO, "video_not_found",
      "no such video" },

    { NGX_HTTP_FORBIDDEN, NGX_LOG_INFO, "not_enrolled",
      "the user is not enrolled in the video's course" },

    { NGX_HTTP_CONFLICT, NGX_LOG_INFO, "video_not_ready",
      "the video is not ready yet" },

    { NGX_HTTP_SERVICE_UNAVAILABLE, NGX_LOG_ERR, "database_unavailable",
      "database unavailable" },

    { NGX_HTTP_SERVICE_UNAVAILABLE, NGX_LOG_ERR, "database_timeout",
      "database timed out" },

    /* the viewer's credentials, not ours: info; the reason is in the body */
    { NGX_HTTP_FORBIDDEN, NGX_LOG_INFO, "forbidden",
      "CloudFront credentials rejected" },

    { NGX_HTTP_BAD_REQUEST, NGX_LOG_INFO, "bad_beacon",
      "progress beacon rejected" },

    { NGX_HTTP_TOO_MANY_REQUESTS, NGX_LOG_INFO, "too_many_beacons",
      "too many progress beacons" },

    /* nothing acknowledged is dropped: refuse rather than evict */
    { NGX_HTTP_SERVICE_UNAVAILABLE, NGX_LOG_ERR, "progress_buffer_full",
      "progress buffer full" },

    { NGX_HTTP_BAD_REQUEST, NGX_LOG_INFO, "empty_upload",
      "the upload has no body" },

    /* players never send these: a path trick against the edge's check */
    { NGX_HTTP_BAD_REQUEST, NGX_LOG_WARN, "bad_path",
      "edge request path refused" },

    /* vodlms_upload_quota: the uploader's own limits */
    { NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, NGX_LOG_INFO, "upload_quota_exceeded",
      "the uploader's spooled bytes would pass the quota" },

    { NGX_HTTP_TOO_MANY_REQUESTS, NGX_LOG_INFO, "too_many_uploads",
      "the uploader has too many uploads in progress" },

    /* vodlms_user_query_limit: one user's queries, not everyone's */
    { NGX_HTTP_TOO_MANY_REQUESTS, NGX_LOG_INFO, "too_many_queries",
      "too many database queries for this user, try again later" },

    /* vodlms_upload_quota bytes=: a size unknown up front cannot be counted */
    { NGX_HTTP_LENGTH_REQUIRED, NGX_LOG_INFO, "length_required",
      "the upload must state its Content-Length" },

    /* vodlms_hls_key: the key of an encrypted HLS version */
    { NGX_HTTP_BAD_REQUEST, NGX_LOG_INFO, "bad_key_request",
      "malformed key version or index" },

    { NGX_HTTP_NOT_FOUND, NGX_LOG_INFO, "no_such_key",
      "no such key" },

    /* a viewer past the budget or the pace may be a downloader: notice */
    { NGX_HTTP_TOO_MANY_REQUESTS, NGX_LOG_NOTICE, "key_budget",
      "the key budget for this video is used up, try again later" },

    { NGX_HTTP_TOO_MANY_REQUESTS, NGX_LOG_NOTICE, "key_pace",
      "this key is not released yet: the lecture plays no faster than "
      "its pace limit" },

    /* redis_down=closed */
    { NGX_HTTP_SERVICE_UNAVAILABLE, NGX_LOG_ERR, "key_limits_unavailable",
      "the key limits cannot be checked (Redis unavailable)" },

    /* vodlms_streams: X-Vodlms-Playback that is not a playbackId */
    { NGX_HTTP_BAD_REQUEST, NGX_LOG_INFO, "bad_playback_id",
      "malformed playbackId" },

    { NGX_HTTP_CONFLICT, NGX_LOG_INFO, "too_many_streams",
      "too many playbacks at once for this user" },

    { NGX_HTTP_CONFLICT, NGX_LOG_INFO, "stream_displaced",
      "this playback was taken over by one on another device" },

    /* vodlms_streams_limit redis_down=closed */
    { NGX_HTTP_SERVICE_UNAVAILABLE, NGX_LOG_ERR, "streams_unavailable",
      "stream limit store unavailable" },

    /* vodlms_streams headerless=refuse: a key request names no playback */
    { NGX_HTTP_BAD_REQUEST, NGX_LOG_INFO, "playback_required",
      "this key is served only to a playback: send X-Vodlms-Playback" },

    /* vodlms_upload_caption: the caption upload's language, label, flag */
    { NGX_HTTP_BAD_REQUEST, NGX_LOG_INFO, "bad_caption_language",
      "the caption language is not a language tag such as en or pt-BR" },

    { NGX_HTTP_BAD_REQUEST, NGX_LOG_INFO, "bad_caption_label",
      "the caption label is not 1-64 bytes of text without quotes, "
      "control characters, #EXT or {$" },

    { NGX_HTTP_BAD_REQUEST, NGX_LOG_INFO, "bad_caption_default",
      "the caption default flag is not one of 1, true, yes, on, 0, false, "
      "no, off" },

    /* DELETE on "vodlms_upload captions": the video has no such language */
    { NGX_HTTP_NOT_FOUND, NGX_LOG_INFO, "caption_not_found",
      "the video has no captions in this language" },
};


ngx_conf_enum_t  ngx_http_vodlms_denial_log_levels[] = {
    { ngx_string("info"), NGX_LOG_INFO },
    { ngx_string("notice"), NGX_LOG_NOTICE },
    { ngx_string("warn"), NGX_LOG_WARN },
    { ngx_string("error"), NGX_LOG_ERR },
    { ngx_null_string, 0 }
};


/* one client address and outcome, in one worker, in the current second */

#define NGX_HTTP_VODLMS_LOG_SLOTS     256
#define NGX_HTTP_VODLMS_LOG_ADDR_MAX  NGX_INET6_ADDRSTRLEN

typedef struct {
    uint32_t                    hash;
    time_t                      sec;
    ngx_uint_t                  lines;        /* logged in sec */
    ngx_uint_t                  suppressed;   /* since the last line */
    ngx_uint_t                  level;
    ngx_http_vodlms_err_e       err;
    u_char                      addr_len;
    u_char                      addr[NGX_HTTP_VODLMS_LOG_ADDR_MAX];
} ngx_http_vodlms_log_slot_t;


static ngx_http_vodlms_log_slot_t
    ngx_http_vodlms_log_slots[NGX_HTTP_VODLMS_LOG_SLOTS];


static ngx_int_t ngx_http_vodlms_deny_send(ngx_http_request_t *r,
    ngx_http_vodlms_err_e err, ngx_str_t *detail, ngx_str_t *extra,
    time_t retry_after);
static void ngx_http_vodlms_deny_log(ngx_http_request_t *r,
    ngx_http_vodlms_err_e err, ngx_str_t *detail);




const char *
ngx_http_vodlms_err_code(ngx_http_vodlms_err_e err)
{
    if (err >= NGX_HTTP_VODLMS_NERRS) {
        err = NGX_HTTP_VODLMS_INTERNAL;
    }

    return ngx_http_vodlms_errs[err].code;
}


ngx_uint_t
ngx_http_vodlms_err_status(ngx_http_vodlms_err_e err)
{
    if (err >= NGX_HTTP_VODLMS_NERRS) {
        err = NGX_HTTP_VODLMS_INTERNAL;
    }

    return ngx_http_vodlms_errs[err].status;
}


ngx_int_t
ngx_http_vodlms_deny(ngx_http_request_t *r, ngx_http_vodlms_err_e err,
    ngx_str_t *detail)
{
    return ngx_http_vodlms_deny_extra(r, err, detail, NULL);
}


ngx_int_t
ngx_http_vodlms_deny_extra(ngx_http_request_t *r, ngx_http_vodlms_err_e err,
    ngx_str_t *detail, ngx_str_t *extra)
{
    return ngx_http_vodlms_deny_send(r, err, detail, extra, 0);
}


ngx_int_t
ngx_http_vodlms_deny_retry(ngx_http_request_t *r, ngx_http_vodlms_err_e err,
    ngx_str_t *detail, time_t retry_after)
{
    return ngx_http_vodlms_deny_send(r, err, detail, NULL,
                                     retry_after > 0 ? retry_after : 1);
}


static ngx_int_t
ngx_http_vodlms_deny_send(ngx_http_request_t *r, ngx_http_vodlms_err_e err,
    ngx_str_t *detail, ngx_str_t *extra, time_t retry_after)
{
    u_char                       *p;
    size_t                        len;
    ngx_int_t                     rc;
    ngx_buf_t                    *b;
    ngx_str_t                     v;
    ngx_uint_t                    i;
    ngx_http_err_page_t          *ep;
    ngx_http_core_loc_conf_t     *clcf;
    ngx_http_vodlms_ctx_t        *ctx;
    ngx_http_vodlms_err_info_t   *ei;
    ngx_http_vodlms_main_conf_t  *vmcf;

    u_char     retry[NGX_TIME_T_LEN];
    ngx_str_t  none = ngx_null_string;

    if (err >= NGX_HTTP_VODLMS_NERRS || err == NGX_HTTP_VODLMS_OK) {
        err = NGX_HTTP_VODLMS_INTERNAL;
    }

    ei = &ngx_http_vodlms_errs[err];

    /* for the metrics' log-phase count */
    ctx = ngx_http_vodlms_get_ctx(r);
    if (ctx) {
        ctx->last_err = err;
    }

    ngx_http_vodlms_deny_log(r, err, detail);

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    /* an operator's error_page for this status wins (e.g. a login page) */
    if (clcf->error_pages && r->uri_changes != 0) {
        ep = clcf->error_pages->elts;
        for (i = 0; i < clcf->error_pages->nelts; i++) {
            if (ep[i].status == (ngx_int_t) ei->status) {
                return ei->status;
            }
        }
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    len = sizeof("{\"error\":\"\",\"message\":\"\"}\n") - 1
          + ngx_strlen(ei->code) + ngx_strlen(ei->message)
          + (extra ? extra->len : 0);

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* codes and messages are fixed ASCII: no JSON escaping needed */
    p = ngx_sprintf(b->last, "{\"error\":\"%s\",\"message\":\"%s\"%V}\n",
                    ei->code, ei->message, extra ? extra : &none);
    b->last = p;

    ngx_str_set(&v, "no-store");
    if (ngx_http_vodlms_add_header(r, "Cache-Control", &v) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ei->status == NGX_HTTP_UNAUTHORIZED) {
        ngx_str_set(&v, "Bearer realm=\"vodlms\"");
        if (ngx_http_vodlms_add_header(r, "WWW-Authenticate", &v) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (ei->status == NGX_HTTP_SERVICE_UNAVAILABLE || retry_after) {
        vmcf = ngx_http_get_module_main_conf(r, ngx_http_vodlms_module);

        v.data = retry;
        v.len = ngx_sprintf(retry, "%T",
                            retry_after ? retry_after : vmcf->retry_after)
                - retry;

        v.data = ngx_pstrdup(r->pool, &v);
        if (v.data == NULL
            || ngx_http_vodlms_add_header(r, "Retry-After", &v) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    ngx_http_finalize_request(r, ngx_http_vodlms_send(r, ei->status,
                                                      "application/json", b));

    return NGX_DONE;
}




/*
 * The one log line of a denial (the detail never holds a token or a
 * secret, only what went wrong), unless this client has had its share of
 * lines for this outcome this second.
 */

static void
ngx_http_vodlms_deny_log(ngx_http_request_t *r, ngx_http_vodlms_err_e err,
    ngx_str_t *detail)
{
    size_t                        alen;
    time_t                        now;
    uint32_t                      hash;
    ngx_str_t                    *addr;
    ngx_str_t                     none = ngx_null_string;
    ngx_uint_t                    level, suppressed;
    ngx_log_t                    *log;
    ngx_http_vodlms_err_info_t   *ei;
    ngx_http_vodlms_log_slot_t   *slot;
    ngx_http_vodlms_loc_conf_t   *vlcf;

    u_char  more[64], *p;

    ei = &ngx_http_vodlms_errs[err];
    log = r->connection->log;
    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);

    /* the client's own doing: the operator's level (limit_req_log_level) */
    level = (ei->level == NGX_LOG_INFO) ? vlcf->denial.level : ei->level;

    if (log->log_level < level) {
        return;
    }

    suppressed = 0;

    /*
     * Warnings are never held back: a forged express signature or a path
     * trick against the edge is someone probing, and each one is news.
     */
    if (vlcf->denial.limit && ei->level != NGX_LOG_WARN) {
        addr = &r->connection->addr_text;
        alen = ngx_min(addr->len, NGX_HTTP_VODLMS_LOG_ADDR_MAX);

        /* the outcome spread over the slots: one client, several keys */
        hash = ngx_crc32_short(addr->data, alen)
               ^ ((uint32_t) err * 2654435761u);
        slot = &ngx_http_vodlms_log_slots[hash % NGX_HTTP_VODLMS_LOG_SLOTS];
        now = ngx_time();

        if (slot->hash != hash || slot->err != err || slot->addr_len != alen
            || ngx_memcmp(slot->addr, addr->data, alen) != 0)
        {
            if (slot->suppressed) {
                /* the count the slot held is not lost with it */
                ngx_log_error(slot->level, log, 0,
                              "vodlms: %ui more \"%s\" denials of client "
                              "%*s were not logged",
                              slot->suppressed,
                              ngx_http_vodlms_errs[slot->err].code,
                              (size_t) slot->addr_len, slot->addr);
            }

            slot->hash = hash;
            slot->err = err;
            slot->addr_len = (u_char) alen;
            ngx_memcpy(slot->addr, addr->data, alen);
            slot->sec = now;
            slot->lines = 0;
            slot->suppressed = 0;
        }

        slot->level = level;

        if (slot->sec != now) {
            slot->sec = now;
            slot->lines = 0;
        }

        if (slot->lines >= vlcf->denial.limit) {
            slot->suppressed++;
            return;
        }

        slot->lines++;
        suppressed = slot->suppressed;
        slot->suppressed = 0;
    }

    p = more;
    if (suppressed) {
        p = ngx_snprintf(more, sizeof(more),
                         " (%ui more like it not logged)", suppressed);
    }

    ngx_log_error(level, log, 0,
                  "vodlms: %s%s%V, answering %ui%*s",
                  ei->message, (detail && detail->len) ? ": " : "",
                  detail ? detail : &none, ei->status,
                  (size_t) (p - more), more);
}


/* configuration */

void
ngx_http_vodlms_err_create_conf(ngx_http_vodlms_err_conf_t *c)
{
    c->level = NGX_CONF_UNSET_UINT;
    c->limit = NGX_CONF_UNSET_UINT;
}


char *
ngx_http_vodlms_err_merge_conf(ngx_conf_t *cf,
    ngx_http_vodlms_err_conf_t *prev, ngx_http_vodlms_err_conf_t *conf)
{
    ngx_conf_merge_uint_value(conf->level, prev->level, NGX_LOG_INFO);
    ngx_conf_merge_uint_value(conf->limit, prev->limit, 10);

    return NGX_CONF_OK;
}


/* vodlms_denial_log_limit number | off; */

char *
ngx_http_vodlms_err_log_limit(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vodlms_loc_conf_t  *vlcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value;

    if (vlcf->denial.limit != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        vlcf->denial.limit = 0;
        return NGX_CONF_OK;
    }

    n = ngx_atoi(value[1].data, value[1].len);

    if (n <= 0 || n > 100000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive, "
                           "expected lines per second from 1 to 100000, or "
                           "\"off\"", &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    vlcf->denial.limit = n;

    return NGX_CONF_OK;
}
