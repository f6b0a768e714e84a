/*
 * The viewer watermark: text naming the viewer (session fields, enrollment
 * columns) that the playback answer carries for the player to draw.
 */

#ifndef NGX_HTTP_VODLMS_WATERMARK_H
#define NGX_HTTP_VODLMS_WATERMARK_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/* the longest watermark, in bytes of UTF-8, cut at a character boundary */
#define NGX_HTTP_VODLMS_WATERMARK_MAX  256


typedef struct {
    ngx_http_complex_value_t   *text;            /* NULL: off */
} ngx_http_vodlms_watermark_conf_t;


void ngx_http_vodlms_watermark_create_conf(
    ngx_http_vodlms_watermark_conf_t *c);
char *ngx_http_vodlms_watermark_merge_conf(ngx_conf_t *cf,
    ngx_http_vodlms_watermark_conf_t *prev,
    ngx_http_vodlms_watermark_conf_t *conf);
char *ngx_http_vodlms_watermark(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/*
 * ",\"watermark\":\"<text>\"" for the playback answer, JSON-escaped, or
 * an empty string when no watermark is configured
 */
ngx_int_t ngx_http_vodlms_watermark_json(ngx_http_request_t *r,
    ngx_str_t *out);


#endif /* NGX_HTTP_VODLMS_WATERMARK_H */
