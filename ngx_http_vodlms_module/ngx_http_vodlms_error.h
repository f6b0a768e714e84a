/*
 * One place maps every outcome to an HTTP status, a JSON body, a
 * machine-readable code and one error-log line at the right level.
 * Handlers never invent their own.
 */

#ifndef NGX_HTTP_VODLMS_ERROR_H
#define NGX_HTTP_VODLMS_ERROR_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


typedef enum {
    NGX_HTTP_VODLMS_OK = 0,
    NGX_HTTP_VODLMS_NO_SESSION,
    NGX_HTTP_VODLMS_BAD_SESSION,
    NGX_HTTP_VODLMS_BAD_SIGNATURE,
    NGX_HTTP_VODLMS_UNKNOWN_SESSION,
    NGX_HTTP_VODLMS_SESSION_EXPIRED,
    NGX_HTTP_VODLMS_BAD_SESSION_DATA,
    NGX_HTTP_VODLMS_ROLE_FORBIDDEN,
    NGX_HTTP_VODLMS_BACKEND_DOWN,
    NGX_HTTP_VODLMS_BACKEND_TIMEOUT,
    NGX_HTTP_VODLMS_INTERNAL,
    NGX_HTTP_VODLMS_BAD_VIDEO_ID,
    NGX_HTTP_VODLMS_VIDEO_NOT_FOUND,
    NGX_HTTP_VODLMS_NOT_ENROLLED,
    NGX_HTTP_VODLMS_VIDEO_NOT_READY,
    NGX_HTTP_VODLMS_DB_DOWN,
    NGX_HTTP_VODLMS_DB_TIMEOUT,
    NGX_HTTP_VODLMS_EDGE_DENIED,
    NGX_HTTP_VODLMS_BAD_BEACON,
    NGX_HTTP_VODLMS_TOO_MANY_BEACONS,
    NGX_HTTP_VODLMS_PROGRESS_FULL,
    NGX_HTTP_VODLMS_EMPTY_UPLOAD,
    NGX_HTTP_VODLMS_BAD_PATH,
    NGX_HTTP_VODLMS_UPLOAD_QUOTA,
    NGX_HTTP_VODLMS_TOO_MANY_UPLOADS,
    NGX_HTTP_VODLMS_TOO_MANY_QUERIES,
    NGX_HTTP_VODLMS_LENGTH_REQUIRED,
    NGX_HTTP_VODLMS_BAD_KEY_REQUEST,
    NGX_HTTP_VODLMS_NO_SUCH_KEY,
    NGX_HTTP_VODLMS_KEY_BUDGET,
    NGX_HTTP_VODLMS_KEY_PACE,
    NGX_HTTP_VODLMS_KEY_LIMITS_DOWN,
    NGX_HTTP_VODLMS_BAD_PLAYBACK_ID,
    NGX_HTTP_VODLMS_TOO_MANY_STREAMS,
    NGX_HTTP_VODLMS_STREAM_DISPLACED,
    NGX_HTTP_VODLMS_STREAMS_UNAVAILABLE,
    NGX_HTTP_VODLMS_PLAYBACK_REQUIRED,
    NGX_HTTP_VODLMS_BAD_CAPTION_LANG,
    NGX_HTTP_VODLMS_BAD_CAPTION_LABEL,
    NGX_HTTP_VODLMS_BAD_CAPTION_DEFAULT,
    NGX_HTTP_VODLMS_CAPTION_NOT_FOUND,
    NGX_HTTP_VODLMS_NERRS
} ngx_http_vodlms_err_e;


/*
 * How denials are logged, per location: the level of those that are the
 * client's own doing (vodlms_denial_log_level), and how many lines one
 * client address may cause per outcome per second in one worker before
 * the rest are only counted (vodlms_denial_log_limit, 0: no limit).
 */
typedef struct {
    ngx_uint_t                  level;
    ngx_uint_t                  limit;
} ngx_http_vodlms_err_conf_t;


/* the outcome's short code, as in $vodlms_auth_status and "error" */
const char *ngx_http_vodlms_err_code(ngx_http_vodlms_err_e err);
ngx_uint_t ngx_http_vodlms_err_status(ngx_http_vodlms_err_e err);

/*
 * Logs one line (what, the detail) and sends the JSON error response.
 * For the access phase: finalizes the request and returns NGX_DONE, or
 * returns the bare status when an error_page handles it.
 */
ngx_int_t ngx_http_vodlms_deny(ngx_http_request_t *r,
    ngx_http_vodlms_err_e err, ngx_str_t *detail);

/* the same, with more members for the JSON body: already-escaped
 * ',"name":value' text, or NULL */
ngx_int_t ngx_http_vodlms_deny_extra(ngx_http_request_t *r,
    ngx_http_vodlms_err_e err, ngx_str_t *detail, ngx_str_t *extra);

/* the same, with a Retry-After of so many seconds (at least 1) */
ngx_int_t ngx_http_vodlms_deny_retry(ngx_http_request_t *r,
    ngx_http_vodlms_err_e err, ngx_str_t *detail, time_t retry_after);

void ngx_http_vodlms_err_create_conf(ngx_http_vodlms_err_conf_t *c);
char *ngx_http_vodlms_err_merge_conf(ngx_conf_t *cf,
    ngx_http_vodlms_err_conf_t *prev, ngx_http_vodlms_err_conf_t *conf);
char *ngx_http_vodlms_err_log_limit(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

extern ngx_conf_enum_t  ngx_http_vodlms_denial_log_levels[];


#endif /* NGX_HTTP_VODLMS_ERROR_H */
