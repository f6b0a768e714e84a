/*
 * ngx_http_vodlms_module: the video side of a learning-management system,
 * answered inside nginx.  Shared types of the nginx glue files.
 */

#ifndef NGX_HTTP_VODLMS_MODULE_H
#define NGX_HTTP_VODLMS_MODULE_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "vodlms_core.h"
#include "ngx_vodlms_redis.h"
#include "ngx_vodlms_metrics.h"
#include "ngx_vodlms_shm_cache.h"
#include "ngx_http_vodlms_error.h"
#include "ngx_vodlms_pg.h"
#include "ngx_http_vodlms_revoke.h"
#include "ngx_http_vodlms_session.h"
#include "ngx_http_vodlms_enroll.h"
#include "ngx_http_vodlms_playback.h"
#include "ngx_http_vodlms_edge.h"
#include "ngx_http_vodlms_hls.h"
#include "ngx_http_vodlms_progress.h"
#include "ngx_http_vodlms_upload.h"
#include "ngx_http_vodlms_limit.h"
#include "ngx_http_vodlms_watermark.h"
#include "ngx_http_vodlms_key.h"
#include "ngx_http_vodlms_streams.h"

#include "ngx_http_vodlms_version.h"


/* where the per-location directives may appear (every *_commands.h) */
#define NGX_HTTP_VODLMS_LOC_ANY                                               \
    (NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF)


typedef struct {
    ngx_vodlms_redis_conf_t          *redis;      /* NULL: no vodlms_redis */
    ngx_vodlms_redis_pool_t          *redis_pool; /* per worker, at runtime */
    ngx_vodlms_redis_sentinels_t     *redis_sentinel;
    time_t                            retry_after;

    ngx_vodlms_pg_conf_t             *pg;         /* NULL: no vodlms_pg */
    ngx_vodlms_pg_conf_t             *pg_replica;
    ngx_vodlms_pg_pool_t             *pg_pool;    /* per worker, at runtime */
    ngx_vodlms_pg_pool_t             *pg_replica_pool;
    ngx_array_t                       pg_stmts;   /* of ngx_vodlms_pg_stmt_t;
                                                     never grows: pointed to */
    ngx_str_t                         pg_schema;  /* vodlms_pg_schema: where
                                                     vodlms's own tables are */
    ngx_str_t                         enroll_sql; /* the default enrollment
                                                     query, in pg_schema */
    ngx_http_vodlms_upload_main_t     upload;
    ngx_http_vodlms_progress_main_t   progress;

    /* the signature caches' zone when none is named (made on first use) */
    ngx_shm_zone_t                   *auto_sig_cache;

    /* vodlms_session_invalidate: NULL when no location has it on */
    ngx_http_vodlms_revoke_t         *revoke;

    /* vodlms_streams_limit: of ngx_http_vodlms_streams_limit_t * */
    ngx_array_t                      *streams_limits;
} ngx_http_vodlms_main_conf_t;


typedef struct {
    ngx_http_vodlms_session_conf_t    session;
    ngx_http_vodlms_enroll_conf_t     enroll;
    ngx_http_vodlms_playback_conf_t   playback;
    ngx_http_vodlms_edge_conf_t       edge;
    ngx_http_vodlms_hls_conf_t        hls;
    ngx_http_vodlms_progress_conf_t   progress;
    ngx_http_vodlms_upload_conf_t     upload;
    ngx_http_vodlms_limit_conf_t      limit;
    ngx_http_vodlms_key_conf_t        key;
    ngx_http_vodlms_streams_conf_t    streams;
    ngx_http_vodlms_err_conf_t        denial;
    ngx_http_vodlms_watermark_conf_t  watermark;
    ngx_str_t                         status_group;   /* vodlms_status group= */

    /* where the block began: merge-time errors point there, not at "}" */
    ngx_str_t                         conf_file;
    ngx_uint_t                        conf_line;
} ngx_http_vodlms_loc_conf_t;


/* what metrics count requests and cache lookups by */
typedef enum {
    NGX_HTTP_VODLMS_EP_SESSION = 0,
    NGX_HTTP_VODLMS_EP_ENROLL,
    NGX_HTTP_VODLMS_EP_PLAYBACK,
    NGX_HTTP_VODLMS_EP_EDGE,
    NGX_HTTP_VODLMS_EP_PROGRESS,
    NGX_HTTP_VODLMS_EP_UPLOAD,
    NGX_HTTP_VODLMS_EP_KEY,
    NGX_HTTP_VODLMS_EP_N
} ngx_http_vodlms_endpoint_e;

typedef enum {
    NGX_HTTP_VODLMS_CACHE_SESSION = 0,
    NGX_HTTP_VODLMS_CACHE_ENROLL,
    NGX_HTTP_VODLMS_CACHE_SIGNATURE,
    NGX_HTTP_VODLMS_CACHE_EDGE,
    NGX_HTTP_VODLMS_CACHE_PLAYLIST,
    NGX_HTTP_VODLMS_CACHE_N
} ngx_http_vodlms_cache_e;

/* the content endpoint that answered, + 1 (0: none) */
#define ngx_http_vodlms_set_endpoint(ctx, ep)  (ctx)->endpoint = (ep) + 1


/* per-request state, kept across asynchronous backend round trips */
typedef struct {
    ngx_http_vodlms_session_ctx_t     session;
    ngx_http_vodlms_enroll_ctx_t      enroll;
    ngx_http_vodlms_playback_ctx_t    playback;
    ngx_http_vodlms_edge_ctx_t        edge;
    ngx_http_vodlms_hls_ctx_t         hls;
    ngx_http_vodlms_streams_ctx_t     streams;
    ngx_uint_t                        endpoint;
    ngx_http_vodlms_err_e             last_err;   /* the denial, if any */
    ngx_uint_t                        cors;       /* CORS headers added
                                                     (a key location) */
    void                             *caption;    /* a caption upload's
                                                     language, label, flag
                                                     (ngx_http_vodlms_upload_
                                                     caption_t), checked
                                                     before the body */
} ngx_http_vodlms_ctx_t;


extern ngx_module_t  ngx_http_vodlms_module;


ngx_http_vodlms_ctx_t *ngx_http_vodlms_get_ctx(ngx_http_request_t *r);
ngx_int_t ngx_http_vodlms_add_variables(ngx_conf_t *cf);

/* resume the phase engine after an asynchronous backend answer */
void ngx_http_vodlms_wake(ngx_http_request_t *r);

/* ngx_http_vodlms_util.c: request-time helpers */
ngx_int_t ngx_http_vodlms_json_quote(ngx_pool_t *pool, ngx_str_t *in,
    ngx_str_t *out);
ngx_int_t ngx_http_vodlms_is_number(ngx_str_t *s);
ngx_int_t ngx_http_vodlms_client_ipv4(ngx_connection_t *c, u_char *buf,
    ngx_str_t *out);
ngx_int_t ngx_http_vodlms_add_header(ngx_http_request_t *r, char *name,
    ngx_str_t *value);
ngx_int_t ngx_http_vodlms_send(ngx_http_request_t *r, ngx_uint_t status,
    char *type, ngx_buf_t *b);
ngx_int_t ngx_http_vodlms_column_double(ngx_http_vodlms_column_t *col,
    double *out);
/* seconds as whole ms, exactly as PostgreSQL's round(x * 1000) */
ngx_int_t ngx_http_vodlms_column_ms(ngx_http_vodlms_column_t *col,
    int64_t *ms);
ngx_int_t ngx_http_vodlms_parse_base_url(ngx_str_t *in,
    ngx_uint_t allow_path, ngx_str_t *out);

/* ngx_http_vodlms_conf.c: directive helpers, configuration time only */
char *ngx_http_vodlms_conf_set_enum(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_vodlms_parse_cache(ngx_conf_t *cf, ngx_shm_zone_t **zone,
    ngx_msec_t *valid, ngx_msec_t *invalid);
ngx_int_t ngx_http_vodlms_read_small_file(ngx_conf_t *cf, ngx_str_t *path,
    size_t max, ngx_str_t *out);
char *ngx_http_vodlms_conf_key(ngx_conf_t *cf, ngx_str_t *id,
    ngx_str_t *file, ngx_uint_t private, EVP_PKEY **key);
ngx_uint_t ngx_http_vodlms_highest_param(ngx_str_t *sql);
ngx_int_t ngx_http_vodlms_sql_in_schema(ngx_conf_t *cf, ngx_str_t *sql,
    ngx_str_t *out);
void ngx_cdecl ngx_http_vodlms_merge_error(ngx_conf_t *cf,
    const char *fmt, ...);

/*
 * The signature caches are on unless turned off: a location that signs or
 * verifies and names no zone uses this one, made once, on first use.
 */
#define NGX_HTTP_VODLMS_SIG_ZONE_NAME  "vodlms_signatures"
#define NGX_HTTP_VODLMS_SIG_ZONE_SIZE  (4 * 1024 * 1024)

extern ngx_shm_zone_t  ngx_http_vodlms_cache_auto;
#define NGX_HTTP_VODLMS_CACHE_AUTO  (&ngx_http_vodlms_cache_auto)

ngx_shm_zone_t *ngx_http_vodlms_auto_sig_cache(ngx_conf_t *cf);

/* ngx_http_vodlms_metrics.c */
ngx_int_t ngx_http_vodlms_metrics_zone(ngx_conf_t *cf);
ngx_int_t ngx_http_vodlms_metrics_log(ngx_http_request_t *r);
char *ngx_http_vodlms_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);


#endif /* NGX_HTTP_VODLMS_MODULE_H */
