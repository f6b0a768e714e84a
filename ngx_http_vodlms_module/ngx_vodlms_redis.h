/*
 * Non-blocking Redis for nginx workers: hiredis' async context driven by
 * nginx events, a per-worker keep-alive pool, timeouts on nginx timers and
 * reconnection with back-off.  Nothing here ever blocks a worker.
 */

#ifndef NGX_VODLMS_REDIS_H
#define NGX_VODLMS_REDIS_H

#include <ngx_config.h>
#include <ngx_core.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>


#define NGX_VODLMS_REDIS_MAX_CMDS  4


typedef enum {
    NGX_VODLMS_REDIS_OK = 0,
    NGX_VODLMS_REDIS_ERROR,        /* connect failed, refused, reset, AUTH */
    NGX_VODLMS_REDIS_TIMEOUT,      /* connect or read timed out */
    NGX_VODLMS_REDIS_DOWN          /* in back-off after failures: not tried */
} ngx_vodlms_redis_status_e;


typedef struct {
    ngx_str_t                   name;          /* as written, for logs */
    ngx_str_t                   host;          /* numeric address, NUL-ended */
    in_port_t                   port;
    ngx_str_t                   unix_path;     /* NUL-ended, or empty */
    ngx_int_t                   db;
    ngx_str_t                   user;
    ngx_str_t                   password;
    ngx_uint_t                  pool_size;
    ngx_msec_t                  connect_timeout;
    ngx_msec_t                  timeout;
} ngx_vodlms_redis_conf_t;


typedef struct ngx_vodlms_redis_pool_s  ngx_vodlms_redis_pool_t;


/*
 * A command batch is pipelined on one connection.  on_reply runs once per
 * reply, in order, while the reply is valid (hiredis frees it right after).
 * on_done runs exactly once: after the last reply (OK), or on failure.
 * Neither runs after the owner's pool (the request's) has been destroyed.
 */
typedef void (*ngx_vodlms_redis_reply_pt)(void *data, ngx_uint_t i,
    redisReply *reply);
typedef void (*ngx_vodlms_redis_done_pt)(void *data,
    ngx_vodlms_redis_status_e status, const char *reason);


typedef struct {
    int                         argc;
    const char                **argv;
    const size_t               *argvlen;
} ngx_vodlms_redis_cmd_t;


char *ngx_vodlms_redis_parse(ngx_conf_t *cf, ngx_vodlms_redis_conf_t **rcfp);

ngx_vodlms_redis_pool_t *ngx_vodlms_redis_pool_create(ngx_cycle_t *cycle,
    ngx_vodlms_redis_conf_t *conf);
void ngx_vodlms_redis_pool_destroy(ngx_vodlms_redis_pool_t *pool);

/*
 * Returns NGX_OK when the batch is under way (callbacks will follow), or
 * NGX_DECLINED when it could not even be started: *status and *reason say
 * why (callbacks will not run).  NGX_ERROR on allocation failure.
 */
ngx_int_t ngx_vodlms_redis_send(ngx_vodlms_redis_pool_t *pool,
    ngx_pool_t *owner, ngx_log_t *log, ngx_vodlms_redis_cmd_t *cmds,
    ngx_uint_t ncmds, ngx_vodlms_redis_reply_pt on_reply,
    ngx_vodlms_redis_done_pt on_done, void *data,
    ngx_vodlms_redis_status_e *status, const char **reason);

/*
 * Where the pool connects now, for callers' connections of their own (the
 * session invalidation link): copied to *sa, its length to *socklen.
 * NGX_OK; NGX_AGAIN while it is being found out (ask again later);
 * NGX_ERROR.
 */
ngx_int_t ngx_vodlms_redis_current_address(ngx_vodlms_redis_pool_t *pool,
    ngx_sockaddr_t *sa, socklen_t *socklen);


#endif /* NGX_VODLMS_REDIS_H */
