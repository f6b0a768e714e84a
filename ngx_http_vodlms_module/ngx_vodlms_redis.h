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


/* where the pool finds its server (ngx_vodlms_redis_conf_t.mode) */
typedef enum {
    NGX_VODLMS_REDIS_FIXED = 0,    /* numeric, unix:, or resolved at load */
    NGX_VODLMS_REDIS_RESOLVE,      /* a name, resolved at run time */
    NGX_VODLMS_REDIS_SENTINEL      /* the master the sentinels name */
} ngx_vodlms_redis_mode_e;


/* a server as written: host[:port] */
typedef struct {
    ngx_str_t                   name;          /* as written, for logs */
    ngx_str_t                   host;          /* without port or [] */
    in_port_t                   port;
    ngx_addr_t                  addr;          /* sockaddr NULL: a name to
                                                  resolve at run time */
} ngx_vodlms_redis_server_t;


/* vodlms_redis_sentinel */
typedef struct {
    ngx_array_t                 servers;       /* of ..._server_t */
    ngx_str_t                   user;
    ngx_str_t                   password;
    ngx_str_t                   file;          /* where it was written */
    ngx_uint_t                  line;
    ngx_uint_t                  resolve;       /* "resolve": names at run
                                                  time */
} ngx_vodlms_redis_sentinels_t;


typedef struct {
    ngx_str_t                   name;          /* as written, for logs */
    ngx_str_t                   host;          /* numeric address, NUL-ended
                                                  (FIXED, not unix:) */
    in_port_t                   port;
    ngx_str_t                   unix_path;     /* NUL-ended, or empty */
    ngx_int_t                   db;
    ngx_str_t                   user;
    ngx_str_t                   password;
    ngx_uint_t                  pool_size;
    ngx_msec_t                  connect_timeout;
    ngx_msec_t                  timeout;

    ngx_vodlms_redis_mode_e     mode;
    ngx_uint_t                  resolve;       /* "resolve": the name at
                                                  run time */
    ngx_vodlms_redis_server_t   server;        /* unless SENTINEL */
    ngx_str_t                   master_name;   /* "sentinel:NAME" */
    ngx_vodlms_redis_sentinels_t  *sentinels;
    ngx_resolver_t             *resolver;      /* NULL: none configured */
    ngx_msec_t                  resolver_timeout;
    ngx_str_t                   file;          /* where it was written */
    ngx_uint_t                  line;
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
char *ngx_vodlms_redis_sentinel_parse(ngx_conf_t *cf,
    ngx_vodlms_redis_sentinels_t **scfp);

/*
 * After the http{} block is merged (postconfiguration): pairs vodlms_redis
 * with vodlms_redis_sentinel, picks up the http{} level "resolver", and
 * resolves host names now unless "resolve" asks for run time (which needs
 * the resolver).  Either may be NULL.
 */
ngx_int_t ngx_vodlms_redis_init_conf(ngx_conf_t *cf,
    ngx_vodlms_redis_conf_t *rcf, ngx_vodlms_redis_sentinels_t *scf);

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
 * The address the pool's new connections go to: NGX_OK and *addr (valid
 * until the next event), or NGX_AGAIN while it is being found (a sentinel
 * or the resolver is being asked; asking starts if it had not), or
 * NGX_DECLINED when the last attempt failed and the pool is backing off.
 * For another connection of one's own to the same server (a subscriber):
 * ask again whenever that connection is lost.
 */
ngx_int_t ngx_vodlms_redis_current_address(ngx_vodlms_redis_pool_t *pool,
    ngx_addr_t **addr);


#endif /* NGX_VODLMS_REDIS_H */
