/*
 * Outcomes -> HTTP status, JSON body, log line (see ngx_http_vodlms_error.h).
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
};




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

    /* the detail never holds a token or a secret, only what went wrong */
    ngx_log_error(ei->level, r->connection->log, 0,
                  "vodlms: %s%s%V, answering %ui",
                  ei->message, (detail && detail->len) ? ": " : "",
                  detail ? detail : &none, ei->status);

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

    if (ei->status == NGX_HTTP_SERVICE_UNAVAILABLE) {
        vmcf = ngx_http_get_module_main_conf(r, ngx_http_vodlms_module);

        v.data = retry;
        v.len = ngx_sprintf(retry, "%T", vmcf->retry_after) - retry;

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


