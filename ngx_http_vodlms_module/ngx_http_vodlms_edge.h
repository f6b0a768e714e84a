/*
 * The self-hosted edge: nginx plays CloudFront, serving the HLS tree only
 * to requests with a valid CloudFront signed cookie set or signed URL.
 */

#ifndef NGX_HTTP_VODLMS_EDGE_H
#define NGX_HTTP_VODLMS_EDGE_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


typedef struct {
    ngx_flag_t                  enable;
    ngx_array_t                *keys;            /* of vodlms_cf_key_t */
    ngx_str_t                   url;             /* scheme://host, or empty */
    ngx_uint_t                  match;
    ngx_shm_zone_t             *cache;
    ngx_str_t                   cache_ns;        /* "cfverify|" + the keys'
                                                    fingerprint */
    time_t                      playlist_max_age;
    time_t                      segment_max_age;
} ngx_http_vodlms_edge_conf_t;


typedef struct {
    const char                 *verdict;         /* NULL: not checked */
    const char                 *sig_cache_status;
    unsigned                    verified:1;
} ngx_http_vodlms_edge_ctx_t;


ngx_int_t ngx_http_vodlms_edge_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_vodlms_edge_init(ngx_conf_t *cf);

void ngx_http_vodlms_edge_create_conf(ngx_http_vodlms_edge_conf_t *c);
char *ngx_http_vodlms_edge_merge_conf(ngx_conf_t *cf,
    ngx_http_vodlms_edge_conf_t *prev, ngx_http_vodlms_edge_conf_t *conf);

char *ngx_http_vodlms_edge_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_vodlms_edge_url(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_vodlms_edge_cache(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

extern ngx_conf_enum_t  ngx_http_vodlms_edge_matches[];


#endif /* NGX_HTTP_VODLMS_EDGE_H */
