/*
 * Upload intake: an instructor's video file, streamed to disk, becomes a
 * videos row and a transcode job on a Redis Stream; a caption file
 * ("vodlms_upload captions") a video_captions row and a caption job.
 */

#ifndef NGX_HTTP_VODLMS_UPLOAD_H
#define NGX_HTTP_VODLMS_UPLOAD_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_vodlms_error.h"


#define NGX_HTTP_VODLMS_UPLOAD_REPLACE  1    /* on: a row the LMS created */
#define NGX_HTTP_VODLMS_UPLOAD_NEW      2    /* new: a server-drawn id */
#define NGX_HTTP_VODLMS_UPLOAD_CAPTIONS 3    /* captions: a caption file of
                                                a row the LMS created */


typedef struct {
    ngx_int_t                   enable;      /* 0, or one of the above */
    ngx_http_complex_value_t   *course;
    ngx_http_complex_value_t   *title;
    ngx_http_complex_value_t   *owner;       /* NULL: the session's user */
    ngx_str_t                   spool;           /* NUL-ended */
    ngx_str_t                   stream;
    off_t                       quota_bytes;       /* 0: none */
    ngx_uint_t                  quota_concurrent;  /* 0: none */
    ngx_msec_t                  quota_lease;
    time_t                      quota_retry;

    /* vodlms_upload_caption: NULL lang when not set */
    ngx_http_complex_value_t   *caption_lang;
    ngx_http_complex_value_t   *caption_label;    /* NULL: the language */
    ngx_http_complex_value_t   *caption_default;  /* NULL: not the default */
} ngx_http_vodlms_upload_conf_t;


/* vodlms_upload_quota (ngx_http_vodlms_upload_quota.c) */

typedef struct ngx_http_vodlms_upload_quota_s  ngx_http_vodlms_upload_quota_t;

/* the verdict: NGX_HTTP_VODLMS_OK (admitted), a refusal, or a failure */
typedef void (*ngx_http_vodlms_upload_quota_pt)(ngx_http_request_t *r,
    ngx_http_vodlms_upload_quota_t *q, ngx_http_vodlms_err_e err);

/* NGX_AGAIN: handler follows; NGX_ERROR; or an ngx_http_vodlms_err_e */
ngx_int_t ngx_http_vodlms_upload_quota_check(ngx_http_request_t *r,
    ngx_str_t *owner, ngx_http_vodlms_upload_quota_pt handler,
    ngx_http_vodlms_upload_quota_t **qp);
ngx_int_t ngx_http_vodlms_upload_quota_deny(ngx_http_request_t *r,
    ngx_http_vodlms_upload_quota_t *q, ngx_http_vodlms_err_e err);
ngx_str_t *ngx_http_vodlms_upload_quota_spool_key(
    ngx_http_vodlms_upload_quota_t *q);
char *ngx_http_vodlms_upload_quota(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


/* the upload's statements, rendered in vodlms_pg_schema once */
typedef struct {
    ngx_str_t                   row;
    ngx_str_t                   undo_new;
    ngx_str_t                   undo_old;
    ngx_str_t                   caption_row;
    ngx_str_t                   caption_undo_new;
    ngx_str_t                   caption_undo_old;
    ngx_str_t                   caption_remove;
} ngx_http_vodlms_upload_main_t;


/* vodlms_upload_caption (ngx_http_vodlms_upload_captions.c) */

/* one caption upload's language, label and default flag, checked */
typedef struct {
    ngx_str_t                   lang;         /* canonical case */
    ngx_str_t                   label;        /* decoded; the lang if none */
    ngx_uint_t                  is_default;
} ngx_http_vodlms_upload_caption_t;

/* NGX_OK, NGX_ERROR, or NGX_DECLINED with *err and *detail: a 400 */
ngx_int_t ngx_http_vodlms_upload_caption_lang(ngx_http_request_t *r,
    ngx_http_vodlms_upload_caption_t *c, ngx_http_vodlms_err_e *err,
    ngx_str_t *detail);
ngx_int_t ngx_http_vodlms_upload_caption_values(ngx_http_request_t *r,
    ngx_http_vodlms_upload_caption_t *c, ngx_http_vodlms_err_e *err,
    ngx_str_t *detail);
char *ngx_http_vodlms_upload_caption_merge(ngx_conf_t *cf,
    ngx_http_vodlms_upload_conf_t *conf);
char *ngx_http_vodlms_upload_caption(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


void ngx_http_vodlms_upload_create_conf(ngx_http_vodlms_upload_conf_t *c);
char *ngx_http_vodlms_upload_merge_conf(ngx_conf_t *cf,
    ngx_http_vodlms_upload_conf_t *prev, ngx_http_vodlms_upload_conf_t *conf);

char *ngx_http_vodlms_upload(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_vodlms_upload_spool(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* NGX_HTTP_VODLMS_UPLOAD_H */
