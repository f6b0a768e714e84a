/*
 * ngx_http_vodlms_module: module definition, configuration and the phase
 * and process hooks.  Each area's directives live beside its code in
 * ngx_http_vodlms_<area>_commands.h.
 */

#include "ngx_http_vodlms_module.h"

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <yajl/yajl_version.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>


static ngx_int_t ngx_http_vodlms_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_vodlms_preconfiguration(ngx_conf_t *cf);
static void *ngx_http_vodlms_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_vodlms_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_vodlms_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_vodlms_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_vodlms_pg(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_vodlms_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_vodlms_redis_sentinel(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_vodlms_access_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_vodlms_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_vodlms_init_process(ngx_cycle_t *cycle);
static void ngx_http_vodlms_exit_process(ngx_cycle_t *cycle);


static ngx_command_t  ngx_http_vodlms_commands[] = {

    { ngx_string("vodlms_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_vodlms_redis,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("vodlms_redis_sentinel"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_vodlms_redis_sentinel,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("vodlms_pg"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_vodlms_pg,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("vodlms_pg_replica"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_vodlms_pg,
      NGX_HTTP_MAIN_CONF_OFFSET,
      1,
      NULL },

    { ngx_string("vodlms_pg_schema"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_vodlms_main_conf_t, pg_schema),
      &ngx_http_vodlms_pg_schema_post },

    { ngx_string("vodlms_cache_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_vodlms_shm_cache_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("vodlms_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_vodlms_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("vodlms_retry_after"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_vodlms_main_conf_t, retry_after),
      NULL },

#include "ngx_http_vodlms_session_commands.h"
#include "ngx_http_vodlms_enroll_commands.h"
#include "ngx_http_vodlms_playback_commands.h"
#include "ngx_http_vodlms_edge_commands.h"
#include "ngx_http_vodlms_hls_commands.h"
#include "ngx_http_vodlms_progress_commands.h"
#include "ngx_http_vodlms_upload_commands.h"
#include "ngx_http_vodlms_limit_commands.h"
#include "ngx_http_vodlms_streams_commands.h"
#include "ngx_http_vodlms_error_commands.h"
#include "ngx_http_vodlms_watermark_commands.h"
#include "ngx_http_vodlms_key_commands.h"

      ngx_null_command
};


static ngx_http_module_t  ngx_http_vodlms_module_ctx = {
    ngx_http_vodlms_preconfiguration,       /* preconfiguration */
    ngx_http_vodlms_postconfiguration,      /* postconfiguration */

    ngx_http_vodlms_create_main_conf,       /* create main configuration */
    ngx_http_vodlms_init_main_conf,         /* init main configuration */

    NULL,                                   /* create server configuration */
    NULL,                                   /* merge server configuration */

    ngx_http_vodlms_create_loc_conf,        /* create location configuration */
    ngx_http_vodlms_merge_loc_conf          /* merge location configuration */
};


ngx_module_t  ngx_http_vodlms_module = {
    NGX_MODULE_V1,
    &ngx_http_vodlms_module_ctx,            /* module context */
    ngx_http_vodlms_commands,               /* module directives */
    NGX_HTTP_MODULE,                        /* module type */
    NULL,                                   /* init master */
    ngx_http_vodlms_init_module,            /* init module */
    ngx_http_vodlms_init_process,           /* init process */
    NULL,                                   /* init thread */
    NULL,                                   /* exit thread */
    ngx_http_vodlms_exit_process,           /* exit process */
    NULL,                                   /* exit master */
    NGX_MODULE_V1_PADDING
};


/*
 * Start and every reload: which vodlms this is and what it runs on, as
 * nginx itself logs its version and build at notice level.  Debian's
 * default error_log logs only "error" and above, so "nginx -t" also prints
 * it, and vodlms_status serves the version as vodlms_build_info.
 */

static ngx_int_t
ngx_http_vodlms_init_module(ngx_cycle_t *cycle)
{
    int     pq, yajl;
    u_char  *p, build[512];

    pq = PQlibVersion();
    yajl = yajl_version();

    p = ngx_snprintf(build, sizeof(build),
                     "vodlms/" NGX_HTTP_VODLMS_VERSION " (built for nginx "
                     NGINX_VERSION "; %s, hiredis %d.%d.%d, libpq %d.%d, "
                     "jansson %s, yajl %d.%d.%d)",
                     OpenSSL_version(OPENSSL_VERSION),
                     HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH,
                     pq / 10000, pq % 10000, jansson_version_str(),
                     yajl / 10000, yajl / 100 % 100, yajl % 100);

    ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0, "%*s", p - build, build);

    if (ngx_test_config && !ngx_quiet_mode) {
        ngx_log_stderr(0, "%*s", p - build, build);
    }

    return NGX_OK;
}


ngx_http_vodlms_ctx_t *
ngx_http_vodlms_get_ctx(ngx_http_request_t *r)
{
    ngx_http_vodlms_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_vodlms_module);

    if (ctx == NULL) {
        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_vodlms_ctx_t));
        if (ctx == NULL) {
            return NULL;
        }

        ngx_http_set_ctx(r, ctx, ngx_http_vodlms_module);
    }

    return ctx;
}


void
ngx_http_vodlms_wake(ngx_http_request_t *r)
{
    ngx_connection_t  *c;

    c = r->connection;

    /* the phase handler that parked the request runs again and decides */
    ngx_http_core_run_phases(r);
    ngx_http_run_posted_requests(c);
}


static ngx_int_t
ngx_http_vodlms_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_vodlms_add_variables(cf);
}


static ngx_int_t
ngx_http_vodlms_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_handler_pt          *h;
    ngx_http_core_main_conf_t    *cmcf;
    ngx_http_vodlms_main_conf_t  *vmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    vmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_vodlms_module);

    /* after the merge: the http{} level "resolver" is known now */
    if (ngx_vodlms_redis_init_conf(cf, vmcf->redis, vmcf->redis_sentinel)
        != NGX_OK
        || ngx_vodlms_pg_init_conf(cf, vmcf->pg, "vodlms_pg") != NGX_OK
        || ngx_vodlms_pg_init_conf(cf, vmcf->pg_replica, "vodlms_pg_replica")
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_vodlms_access_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_vodlms_metrics_log;

    /* the edge's header filter first, then the signer's above it: the
       signer holds the header back, the edge's Cache-Control is added
       when it goes out */
    if (ngx_http_vodlms_edge_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_vodlms_hls_init(cf);
}


/*
 * The access phase in order: who is this user, then may they watch this.
 * Each step parks the request while its backend answers (NGX_AGAIN) and
 * is called again when woken; a finished step answers from its context.
 */

static ngx_int_t
ngx_http_vodlms_access_handler(ngx_http_request_t *r)
{
    ngx_int_t   rc;
    ngx_uint_t  allowed;

    /* a CORS preflight never carries credentials: it only gets CORS */
    if (r->method == NGX_HTTP_OPTIONS
        && ngx_http_vodlms_playback_is_preflight(r))
    {
        return NGX_DECLINED;
    }

    /* a key location answering cross-origin: CORS on every answer */
    if (ngx_http_vodlms_key_cors(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /*
     * Each check answers NGX_DECLINED (not configured here), NGX_OK
     * (passed), or ends the request (denied, or parked: NGX_AGAIN).  Any
     * pass is a pass for "satisfy any"; all of them must hold for "all".
     */

    allowed = 0;

    rc = ngx_http_vodlms_edge_handler(r);
    if (rc != NGX_OK && rc != NGX_DECLINED) {
        return rc;
    }
    allowed |= (rc == NGX_OK);

    rc = ngx_http_vodlms_session_handler(r);
    if (rc != NGX_OK && rc != NGX_DECLINED) {
        return rc;
    }
    allowed |= (rc == NGX_OK);

    rc = ngx_http_vodlms_enroll_handler(r);
    if (rc != NGX_OK && rc != NGX_DECLINED) {
        return rc;
    }
    allowed |= (rc == NGX_OK);

    /* a playback counted against the user's concurrent streams, once the
       user may watch this video */
    if (rc == NGX_OK) {
        rc = ngx_http_vodlms_streams_handler(r);
        if (rc != NGX_OK && rc != NGX_DECLINED) {
            return rc;
        }
    }

    return allowed ? NGX_OK : NGX_DECLINED;
}


static void *
ngx_http_vodlms_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_vodlms_main_conf_t  *vmcf;

    vmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_vodlms_main_conf_t));
    if (vmcf == NULL) {
        return NULL;
    }

    vmcf->retry_after = NGX_CONF_UNSET;

    /* sized once: loc confs point into it */
    if (ngx_array_init(&vmcf->pg_stmts, cf->pool, 100,
                       sizeof(ngx_vodlms_pg_stmt_t))
        != NGX_OK)
    {
        return NULL;
    }

    return vmcf;
}


static char *
ngx_http_vodlms_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_vodlms_main_conf_t  *vmcf = conf;

    ngx_conf_init_value(vmcf->retry_after, 2);

    if (vmcf->pg_schema.data == NULL) {
        ngx_str_set(&vmcf->pg_schema, "vodlms");
    }

    if (ngx_http_vodlms_metrics_zone(cf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (vmcf->pg_replica && vmcf->pg == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"vodlms_pg_replica\" needs \"vodlms_pg\" "
                           "(the primary) as well");
        return NGX_CONF_ERROR;
    }

    if (vmcf->retry_after == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"vodlms_retry_after\" must be at least 1s");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_vodlms_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_vodlms_loc_conf_t  *vlcf;

    vlcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_vodlms_loc_conf_t));
    if (vlcf == NULL) {
        return NULL;
    }

    ngx_http_vodlms_session_create_conf(&vlcf->session);
    ngx_http_vodlms_enroll_create_conf(&vlcf->enroll);
    ngx_http_vodlms_playback_create_conf(&vlcf->playback);
    ngx_http_vodlms_edge_create_conf(&vlcf->edge);
    ngx_http_vodlms_hls_create_conf(&vlcf->hls);
    ngx_http_vodlms_progress_create_conf(&vlcf->progress);
    ngx_http_vodlms_upload_create_conf(&vlcf->upload);
    ngx_http_vodlms_limit_create_conf(&vlcf->limit);
    ngx_http_vodlms_key_create_conf(&vlcf->key);
    ngx_http_vodlms_streams_create_conf(&vlcf->streams);
    ngx_http_vodlms_err_create_conf(&vlcf->denial);
    ngx_http_vodlms_watermark_create_conf(&vlcf->watermark);

    /* called as "location ... {" (or server, if...) is read: its line */
    if (cf->conf_file) {
        vlcf->conf_file = cf->conf_file->file.name;
        vlcf->conf_line = cf->conf_file->line;
    }

    return vlcf;
}


static char *
ngx_http_vodlms_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_vodlms_loc_conf_t  *prev = parent;
    ngx_http_vodlms_loc_conf_t  *conf = child;

    if (ngx_http_vodlms_session_merge_conf(cf, &prev->session,
                                           &conf->session)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_vodlms_enroll_merge_conf(cf, &prev->enroll, &conf->enroll)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_vodlms_playback_merge_conf(cf, &prev->playback,
                                            &conf->playback)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    /* after the session and playback: it checks their fields and mode */
    if (ngx_http_vodlms_watermark_merge_conf(cf, &prev->watermark,
                                             &conf->watermark)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_vodlms_edge_merge_conf(cf, &prev->edge, &conf->edge)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    /* after the edge: it needs the edge's switch and URL merged */
    if (ngx_http_vodlms_hls_merge_conf(cf, &prev->hls, &conf->hls)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_vodlms_progress_merge_conf(cf, &prev->progress,
                                            &conf->progress)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_vodlms_upload_merge_conf(cf, &prev->upload, &conf->upload)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_vodlms_limit_merge_conf(cf, &prev->limit, &conf->limit)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    /* after the session and enrollment: it needs both */
    if (ngx_http_vodlms_key_merge_conf(cf, &prev->key, &conf->key)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    /* after playback, progress and session: it counts what they answer */
    if (ngx_http_vodlms_streams_merge_conf(cf, &prev->streams,
                                           &conf->streams)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    return ngx_http_vodlms_err_merge_conf(cf, &prev->denial, &conf->denial);
}


static char *
ngx_http_vodlms_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vodlms_main_conf_t  *vmcf = conf;

    if (vmcf->redis) {
        return "is duplicate";
    }

    return ngx_vodlms_redis_parse(cf, &vmcf->redis);
}


static char *
ngx_http_vodlms_redis_sentinel(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_vodlms_main_conf_t  *vmcf = conf;

    if (vmcf->redis_sentinel) {
        return "is duplicate";
    }

    return ngx_vodlms_redis_sentinel_parse(cf, &vmcf->redis_sentinel);
}


/* vodlms_pg / vodlms_pg_replica conninfo [parameters] */

static char *
ngx_http_vodlms_pg(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vodlms_main_conf_t  *vmcf = conf;

    ngx_vodlms_pg_conf_t  **pcf;

    pcf = cmd->offset ? &vmcf->pg_replica : &vmcf->pg;

    if (*pcf) {
        return "is duplicate";
    }

    return ngx_vodlms_pg_parse(cf, pcf);
}


static ngx_int_t
ngx_http_vodlms_init_process(ngx_cycle_t *cycle)
{
    ngx_http_vodlms_main_conf_t  *vmcf;

    vmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_vodlms_module);

    /* no http block, or the module is loaded but not used */
    if (vmcf == NULL) {
        return NGX_OK;
    }

    if (vmcf->redis) {
        vmcf->redis_pool = ngx_vodlms_redis_pool_create(cycle, vmcf->redis);
        if (vmcf->redis_pool == NULL) {
            return NGX_ERROR;
        }
    }

    if (vmcf->pg) {
        vmcf->pg_pool = ngx_vodlms_pg_pool_create(cycle, vmcf->pg,
                                                  &vmcf->pg_stmts);
        if (vmcf->pg_pool == NULL) {
            return NGX_ERROR;
        }
    }

    if (vmcf->pg_replica) {
        vmcf->pg_replica_pool = ngx_vodlms_pg_pool_create(cycle,
                                                          vmcf->pg_replica,
                                                          &vmcf->pg_stmts);
        if (vmcf->pg_replica_pool == NULL) {
            return NGX_ERROR;
        }

        /* reads the replica cannot serve go to the primary */
        ngx_vodlms_pg_pool_fallback(vmcf->pg_replica_pool, vmcf->pg_pool);
    }

    if (vmcf->revoke
        && ngx_http_vodlms_revoke_init_process(cycle, vmcf->revoke,
                                               vmcf->redis, vmcf->redis_pool)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_vodlms_progress_init_process(cycle);
}


static void
ngx_http_vodlms_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_vodlms_main_conf_t  *vmcf;

    vmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_vodlms_module);

    if (vmcf == NULL) {
        return;
    }

    ngx_http_vodlms_progress_exit(cycle);

    if (vmcf->revoke) {
        ngx_http_vodlms_revoke_exit_process(vmcf->revoke);
    }

    if (vmcf->redis_pool) {
        ngx_vodlms_redis_pool_destroy(vmcf->redis_pool);
        vmcf->redis_pool = NULL;
    }

    if (vmcf->pg_pool) {
        ngx_vodlms_pg_pool_destroy(vmcf->pg_pool);
        vmcf->pg_pool = NULL;
    }

    if (vmcf->pg_replica_pool) {
        ngx_vodlms_pg_pool_destroy(vmcf->pg_replica_pool);
        vmcf->pg_replica_pool = NULL;
    }
}
