/*
 * Reconnection back-off shared by the backend pools, and the parameters
 * their directives share (see ngx_vodlms_backoff.h).
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_vodlms_backoff.h"


#define NGX_VODLMS_BACKOFF_FIRST  100
#define NGX_VODLMS_BACKOFF_MAX    2000


void
ngx_vodlms_backoff_failed(ngx_vodlms_backoff_t *b, ngx_log_t *log,
    const char *backend, ngx_str_t *name)
{
    ngx_msec_t  ms;

    b->failures++;

    /* the first retry is immediate; then 100ms, 200ms, ... up to 2s */

    if (b->failures < 2) {
        ms = 0;

    } else if (b->failures > 7) {
        ms = NGX_VODLMS_BACKOFF_MAX;

    } else {
        ms = (ngx_msec_t) NGX_VODLMS_BACKOFF_FIRST << (b->failures - 2);
        ms = ngx_min(ms, NGX_VODLMS_BACKOFF_MAX);
    }

    b->retry_at = ngx_current_msec + ms;

    ngx_log_debug4(NGX_LOG_DEBUG_EVENT, log, 0,
                   "vodlms %s: back-off, %V: %ui failed connects, "
                   "next try in %M ms", backend, name, b->failures, ms);
}


ngx_msec_t
ngx_vodlms_backoff_left(ngx_vodlms_backoff_t *b)
{
    if (b->failures > 1 && ngx_current_msec < b->retry_at) {
        return b->retry_at - ngx_current_msec;
    }

    return 0;
}


ngx_uint_t
ngx_vodlms_backoff_ok(ngx_vodlms_backoff_t *b)
{
    ngx_uint_t  n;

    n = b->failures;
    b->failures = 0;

    return n;
}


ngx_int_t
ngx_vodlms_pool_param(ngx_str_t *v, ngx_uint_t *pool_size,
    ngx_msec_t *connect_timeout, ngx_msec_t *timeout)
{
    ngx_int_t    n;
    ngx_str_t    s;
    ngx_msec_t  *ms;

    if (ngx_strncmp(v->data, "pool_size=", 10) == 0) {
        n = ngx_atoi(v->data + 10, v->len - 10);
        if (n == NGX_ERROR || n == 0) {
            return NGX_ERROR;
        }

        *pool_size = n;
        return NGX_OK;
    }

    if (ngx_strncmp(v->data, "connect_timeout=", 16) == 0) {
        s.data = v->data + 16;
        s.len = v->len - 16;
        ms = connect_timeout;

    } else if (ngx_strncmp(v->data, "timeout=", 8) == 0) {
        s.data = v->data + 8;
        s.len = v->len - 8;
        ms = timeout;

    } else {
        return NGX_DECLINED;
    }

    *ms = ngx_parse_time(&s, 0);

    if (*ms == (ngx_msec_t) NGX_ERROR || *ms == 0) {
        return NGX_ERROR;
    }

    return NGX_OK;
}
