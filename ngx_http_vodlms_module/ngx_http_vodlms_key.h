/*
 * The key endpoint of encrypted HLS (issue #22, vodlms_hls_key): the
 * AES-128 key of an encrypted version, 16 bytes, to a viewer the session
 * gate and the enrollment check of the location have admitted; with an
 * optional key budget and pace limit counted in Redis.
 */

#ifndef NGX_HTTP_VODLMS_KEY_H
#define NGX_HTTP_VODLMS_KEY_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_vodlms_pg.h"


#define NGX_HTTP_VODLMS_KEY_REDIS_OPEN    0    /* serve, unlimited; logged */
#define NGX_HTTP_VODLMS_KEY_REDIS_CLOSED  1    /* 503 */


typedef struct {
    ngx_http_complex_value_t   *version;       /* NULL: no key endpoint */
    ngx_http_complex_value_t   *index;
    ngx_uint_t                  budget;        /* keys per window; 0: off */
    ngx_msec_t                  window;
    ngx_uint_t                  speed;         /* pace, thousandths; 0: off */
    ngx_msec_t                  allowance;
    ngx_msec_t                  pace_reset;    /* how long the first fetch
                                                  is remembered */
    ngx_uint_t                  redis_down;
    ngx_uint_t                  log_level;     /* of the line of a key
                                                  served */
    ngx_vodlms_pg_stmt_t       *stmt;

    ngx_shm_zone_t             *cache;         /* vodlms_hls_key_cache */
    ngx_msec_t                  cache_valid;
    ngx_msec_t                  cache_invalid;
    ngx_str_t                   cache_ns;
} ngx_http_vodlms_key_conf_t;


void ngx_http_vodlms_key_create_conf(ngx_http_vodlms_key_conf_t *c);
char *ngx_http_vodlms_key_merge_conf(ngx_conf_t *cf,
    ngx_http_vodlms_key_conf_t *prev, ngx_http_vodlms_key_conf_t *conf);

char *ngx_http_vodlms_key(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_vodlms_key_cache(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* NGX_HTTP_VODLMS_KEY_H */
