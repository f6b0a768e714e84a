/*
 * The playback endpoint: the video's metadata plus CloudFront signed
 * cookies for its HLS tree (or a redirect to a signed URL), so the video
 * bytes flow CloudFront -> S3 and never through the app.
 */

#ifndef NGX_HTTP_VODLMS_PLAYBACK_H
#define NGX_HTTP_VODLMS_PLAYBACK_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/evp.h>


#define NGX_HTTP_VODLMS_PLAYBACK_OFF       0
#define NGX_HTTP_VODLMS_PLAYBACK_COOKIES   1
#define NGX_HTTP_VODLMS_PLAYBACK_REDIRECT  2
#define NGX_HTTP_VODLMS_PLAYBACK_URL       3

#define NGX_HTTP_VODLMS_SAMESITE_LAX       1
#define NGX_HTTP_VODLMS_SAMESITE_STRICT    2
#define NGX_HTTP_VODLMS_SAMESITE_NONE      3


typedef struct {
    ngx_str_t                   id;
    EVP_PKEY                   *key;
} ngx_http_vodlms_cf_key_t;


typedef struct {
    ngx_uint_t                  mode;
    ngx_array_t                *keys;            /* of ngx_http_vodlms_cf_key_t */
    ngx_str_t                   signing_key;
    ngx_http_vodlms_cf_key_t   *signer;          /* resolved at merge */
    ngx_str_t                   base_url;        /* no trailing '/' */
    ngx_str_t                   base_path;       /* base_url's own path:
                                                    "/media" or "" */
    time_t                      ttl;
    time_t                      bucket;
    ngx_uint_t                  hash;
    ngx_flag_t                  ip_binding;
    ngx_uint_t                  url_policy;
    ngx_str_t                   cookie_domain;
    ngx_flag_t                  cookie_secure;
    ngx_uint_t                  cookie_samesite;
    ngx_shm_zone_t             *sig_cache;
    ngx_array_t                *cors_origins;    /* of ngx_str_t */
    ngx_str_t                   sig_cache_ns;
} ngx_http_vodlms_playback_conf_t;


typedef struct {
    const char                 *sig_cache_status;
} ngx_http_vodlms_playback_ctx_t;


ngx_int_t ngx_http_vodlms_playback_is_preflight(ngx_http_request_t *r);
ngx_int_t ngx_http_vodlms_playback_preflight(ngx_http_request_t *r);
ngx_int_t ngx_http_vodlms_key_cors(ngx_http_request_t *r);

void ngx_http_vodlms_playback_create_conf(ngx_http_vodlms_playback_conf_t *c);
char *ngx_http_vodlms_playback_merge_conf(ngx_conf_t *cf,
    ngx_http_vodlms_playback_conf_t *prev,
    ngx_http_vodlms_playback_conf_t *conf);

char *ngx_http_vodlms_playback(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_vodlms_cloudfront_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_vodlms_cloudfront_url(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_vodlms_signature_cache(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_vodlms_cors_origins(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

extern ngx_conf_enum_t  ngx_http_vodlms_cf_hashes[];
extern ngx_conf_enum_t  ngx_http_vodlms_cf_policies[];
extern ngx_conf_enum_t  ngx_http_vodlms_samesite[];


#endif /* NGX_HTTP_VODLMS_PLAYBACK_H */
