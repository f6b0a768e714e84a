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


/* vodlms_hls_sign's values */
#define NGX_HTTP_VODLMS_HLS_OFF     0
#define NGX_HTTP_VODLMS_HLS_ON      1            /* the query in every URI */
#define NGX_HTTP_VODLMS_HLS_DEFINE  2            /* once, EXT-X-DEFINE */

/* the variable the define mode names */
#define NGX_HTTP_VODLMS_HLS_VAR     "vodlms"


typedef struct {
    ngx_uint_t                  enable;          /* vodlms_hls_sign */
    ngx_uint_t                  absolute;        /* VODLMS_HLS_ABS_* */
    size_t                      max_size;        /* of one playlist */
} ngx_http_vodlms_hls_conf_t;


typedef struct ngx_http_vodlms_hls_tpl_s  ngx_http_vodlms_hls_tpl_t;


/* what a kept define-mode answer is for: the file as fstat() sees it */
typedef struct {
    ngx_str_t                   path;
    ngx_file_uniq_t             uniq;            /* its inode */
    time_t                      mtime;
    time_t                      ctime;           /* any change, utime too */
    off_t                       size;
} ngx_http_vodlms_hls_key_t;


typedef struct {
    ngx_str_t                   query;           /* what every URI gets;
                                                    empty: not signed */
    ngx_http_vodlms_hls_tpl_t  *tpl;             /* define: kept answer */
    ngx_http_vodlms_hls_key_t   key;             /* the file, if keyable */
    ngx_uint_t                  nbufs;           /* non-empty buffers */
    const char                 *cache_status;    /* "HIT", "MISS", NULL */
    u_char                     *buf;             /* the playlist so far */
    size_t                      len;
    size_t                      size;
    const char                 *failed;          /* why it cannot be signed */
    unsigned                    active:1;        /* the header is held */
    unsigned                    done:1;          /* the answer went out */
    unsigned                    started:1;       /* a body buffer came */
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

/* ngx_http_vodlms_hls_cache.c: define-mode answers kept per worker */
ngx_http_vodlms_hls_tpl_t *ngx_http_vodlms_hls_tpl_find(ngx_http_request_t *r,
    ngx_http_vodlms_hls_key_t *key);
void ngx_http_vodlms_hls_tpl_keep(ngx_http_request_t *r,
    ngx_http_vodlms_hls_key_t *key, u_char *out, size_t len, size_t value_at,
    size_t query_len);
ngx_int_t ngx_http_vodlms_hls_tpl_chain(ngx_http_request_t *r,
    ngx_http_vodlms_hls_tpl_t *t, ngx_str_t *query, ngx_chain_t **out,
    off_t *len);

extern ngx_conf_enum_t  ngx_http_vodlms_hls_absolutes[];
extern ngx_conf_enum_t  ngx_http_vodlms_hls_modes[];


#endif /* NGX_HTTP_VODLMS_HLS_H */
