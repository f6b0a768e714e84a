/*
 * Signed playlists (issue #20): at the self-hosted edge, or as the origin of
 * CloudFront's playlist behaviour, a playlist requested with a signed URL
 * (a custom policy over the video's tree) is answered with every URI in it
 * carrying the same signed-URL parameters, so that a player with no cookie
 * jar (Safari's native HLS, an app, a cast receiver, ffmpeg) plays the
 * whole lecture from the manifest URL alone.  The rewriting itself is the
 * pure core's (core/vodlms_hls.c); this is the nginx side: which responses,
 * buffering them whole, and failing closed with a clear error.
 */

#ifndef NGX_HTTP_VODLMS_HLS_H
#define NGX_HTTP_VODLMS_HLS_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


typedef struct {
    ngx_flag_t                  enable;          /* vodlms_hls_sign */
    ngx_uint_t                  absolute;        /* VODLMS_HLS_ABS_* */
    size_t                      max_size;        /* of one playlist */
} ngx_http_vodlms_hls_conf_t;


typedef struct {
    ngx_str_t                   query;           /* what every URI gets;
                                                    empty: not signed */
    u_char                     *buf;             /* the playlist so far */
    size_t                      len;
    size_t                      size;
    const char                 *failed;          /* why it cannot be signed */
    unsigned                    active:1;        /* the header is held */
    unsigned                    done:1;          /* the answer went out */
} ngx_http_vodlms_hls_ctx_t;


/*
 * In the access phase, after the edge let a signed-URL request through:
 * when the location signs playlists and this is one, keep the request's
 * own signed-URL parameters for its URIs.  NGX_OK, or NGX_ERROR (memory).
 */
ngx_int_t ngx_http_vodlms_hls_prepare(ngx_http_request_t *r);
void ngx_http_vodlms_hls_clear_cache_headers(ngx_http_request_t *r);

ngx_int_t ngx_http_vodlms_hls_init(ngx_conf_t *cf);

void ngx_http_vodlms_hls_create_conf(ngx_http_vodlms_hls_conf_t *c);
char *ngx_http_vodlms_hls_merge_conf(ngx_conf_t *cf,
    ngx_http_vodlms_hls_conf_t *prev, ngx_http_vodlms_hls_conf_t *conf);

extern ngx_conf_enum_t  ngx_http_vodlms_hls_absolutes[];


#endif /* NGX_HTTP_VODLMS_HLS_H */
