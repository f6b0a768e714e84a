/*
 * Upload intake: an instructor's video file, streamed to disk, becomes a
 * videos row and a transcode job on a Redis Stream.
 */

#ifndef NGX_HTTP_VODLMS_UPLOAD_H
#define NGX_HTTP_VODLMS_UPLOAD_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


#define NGX_HTTP_VODLMS_UPLOAD_REPLACE  1    /* on: a row the LMS created */
#define NGX_HTTP_VODLMS_UPLOAD_NEW      2    /* new: a server-drawn id */


typedef struct {
    ngx_int_t                   enable;      /* 0, or one of the above */
    ngx_http_complex_value_t   *course;
    ngx_http_complex_value_t   *title;
    ngx_str_t                   spool;           /* NUL-ended */
    ngx_str_t                   stream;
} ngx_http_vodlms_upload_conf_t;


/* the upload's statements, rendered in vodlms_pg_schema once */
typedef struct {
    ngx_str_t                   row;
    ngx_str_t                   undo_new;
    ngx_str_t                   undo_old;
} ngx_http_vodlms_upload_main_t;


void ngx_http_vodlms_upload_create_conf(ngx_http_vodlms_upload_conf_t *c);
char *ngx_http_vodlms_upload_merge_conf(ngx_conf_t *cf,
    ngx_http_vodlms_upload_conf_t *prev, ngx_http_vodlms_upload_conf_t *conf);

char *ngx_http_vodlms_upload(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_vodlms_upload_spool(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* NGX_HTTP_VODLMS_UPLOAD_H */
