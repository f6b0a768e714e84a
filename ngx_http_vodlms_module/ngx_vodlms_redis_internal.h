/*
 * What ngx_vodlms_redis.c (the pool: connections, batches, nginx event glue)
 * and ngx_vodlms_redis_discover.c (finding the server: the resolver, the
 * sentinels and their +switch-master announcements) share.
 *
 * The pool's target is where new connections go.  FIXED: set once, at
 * start.  RESOLVE: the name's answer, until its TTL runs out.  SENTINEL: the
 * master a sentinel named, until a connection to it fails, it answers ROLE
 * or a command as a replica would, or a sentinel announces +switch-master.
 * While the target is unknown, batches with no connection to go to wait in
 * pool->waiting (each bounded by its own timeout), and a posted event runs
 * or fails them once discovery ends.
 */

#ifndef NGX_VODLMS_REDIS_INTERNAL_H
#define NGX_VODLMS_REDIS_INTERNAL_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_vodlms_redis.h"
#include "ngx_vodlms_backoff.h"
#include "ngx_vodlms_resolve.h"


#define NGX_VODLMS_REDIS_DEFAULT_PORT     6379
#define NGX_VODLMS_REDIS_REASON_LEN       200
#define NGX_VODLMS_REDIS_MAX_SETUP        3       /* AUTH, SELECT, ROLE */
#define NGX_VODLMS_REDIS_RESUBSCRIBE      2000    /* ms */


typedef enum {
    NGX_VODLMS_REDIS_TARGET_NONE = 0,
    NGX_VODLMS_REDIS_TARGET_DISCOVERING,
    NGX_VODLMS_REDIS_TARGET_KNOWN
} ngx_vodlms_redis_target_e;


typedef struct ngx_vodlms_redis_conn_s  ngx_vodlms_redis_conn_t;


struct ngx_vodlms_redis_pool_s {
    ngx_vodlms_redis_conf_t    *conf;
    ngx_log_t                  *log;
    ngx_queue_t                 conns;        /* usable connections */
    ngx_uint_t                  nconns;
    ngx_vodlms_backoff_t        backoff;
    char                        reason[NGX_VODLMS_REDIS_REASON_LEN];

    /* where new connections go */
    ngx_vodlms_redis_target_e   target_state;
    ngx_uint_t                  target_gen;   /* 0: never known */
    time_t                      target_valid; /* RESOLVE: the TTL's end */
    ngx_addr_t                  target;       /* .name: host:port */
    ngx_sockaddr_t              target_sa;
    in_port_t                   target_port;
    u_char                      target_host[NGX_SOCKADDR_STRLEN + 1];
    u_char                      target_text[NGX_SOCKADDR_STRLEN + 1];

    ngx_queue_t                 waiting;      /* batches, for the target */
    ngx_event_t                 dispatch;     /* posted when discovery ends */

    /* discovery (ngx_vodlms_redis_discover.c) */
    ngx_vodlms_resolve_t        rs;
    ngx_uint_t                  resolving;    /* what rs is looking up */
    ngx_uint_t                 *order;        /* sentinels, best first */
    ngx_uint_t                  tried;        /* of order, this round */
    ngx_int_t                   named_by;     /* the sentinel that named
                                                 the target, or -1 */
    ngx_vodlms_redis_conn_t    *asking;       /* the sentinel being asked */
    ngx_sockaddr_t              asking_sa[NGX_VODLMS_RESOLVE_MAX_ADDRS];
    socklen_t                   asking_socklen[NGX_VODLMS_RESOLVE_MAX_ADDRS];
    ngx_uint_t                  asking_naddrs; /* its name's addresses */
    ngx_uint_t                  asking_next;   /* the next of them */
    ngx_vodlms_redis_conn_t   **subs;         /* +switch-master, one per
                                                 sentinel (conf order) */
    ngx_vodlms_resolve_t       *subs_rs;      /* their names, if any */
    ngx_event_t                 resubscribe;
    u_char                      master_host[NGX_SOCKADDR_STRLEN + 1];
    ngx_str_t                   master_name;  /* master_host, as ngx_str_t */

    unsigned                    target_failed:1; /* a connect to it failed:
                                                 a name's next address */
    unsigned                    round_failed:1; /* the last round found
                                                 nothing (pool->reason) */
    unsigned                    exiting:1;
};


struct ngx_vodlms_redis_conn_s {
    ngx_queue_t                 queue;
    ngx_vodlms_redis_pool_t    *pool;
    redisAsyncContext          *ac;
    ngx_connection_t           *connection;
    ngx_uint_t                  pending;      /* user replies outstanding */
    ngx_uint_t                  setup;        /* setup commands outstanding */
    ngx_uint_t                  setup_seen;   /* setup commands answered */
    ngx_uint_t                  nsetup;
    const char                 *setup_cmd[NGX_VODLMS_REDIS_MAX_SETUP];
    ngx_uint_t                  gen;          /* the target it went to */
    ngx_vodlms_redis_status_e   fail_status;
    char                        reason[NGX_VODLMS_REDIS_REASON_LEN];
    u_char                      peer[NGX_SOCKADDR_STRLEN + 1];
    ngx_uint_t                  index;        /* a sentinel's, in conf */
    unsigned                    connected:1;
    unsigned                    ready:1;
    unsigned                    failed:1;
    unsigned                    in_pool:1;    /* in pool->conns */
    unsigned                    draining:1;   /* no new batches; closes
                                                 when the last reply is in */
    unsigned                    sentinel:1;
    unsigned                    subscriber:1;
};


/*
 * The worker is on its way out (a reload, a graceful or fast stop, or the
 * pool is being destroyed): nothing is re-armed for later any more, or a
 * timer would keep the old worker alive (nginx waits for every timer that
 * is not cancelable).
 */
#define ngx_vodlms_redis_shutting_down(pool)                                  \
    ((pool)->exiting || ngx_exiting || ngx_quit || ngx_terminate)


/* ngx_vodlms_redis.c */
ngx_vodlms_redis_conn_t *ngx_vodlms_redis_open(ngx_vodlms_redis_pool_t *pool,
    struct sockaddr *sa, socklen_t socklen, ngx_uint_t sentinel,
    ngx_uint_t *refused);
void ngx_vodlms_redis_fail(ngx_vodlms_redis_conn_t *conn,
    ngx_vodlms_redis_status_e status, const char *reason);
void ngx_vodlms_redis_set_target(ngx_vodlms_redis_pool_t *pool,
    struct sockaddr *sa, socklen_t socklen, time_t valid);
void ngx_vodlms_redis_discovered(ngx_vodlms_redis_pool_t *pool,
    ngx_int_t rc);

/* ngx_vodlms_redis_discover.c */
ngx_int_t ngx_vodlms_redis_discover_init(ngx_cycle_t *cycle,
    ngx_vodlms_redis_pool_t *pool);
void ngx_vodlms_redis_discover(ngx_vodlms_redis_pool_t *pool);
void ngx_vodlms_redis_discover_lost(ngx_vodlms_redis_conn_t *conn);
void ngx_vodlms_redis_discover_destroy(ngx_vodlms_redis_pool_t *pool);
void ngx_vodlms_redis_discover_abort(ngx_vodlms_redis_pool_t *pool);
void ngx_vodlms_redis_discover_stale(ngx_vodlms_redis_pool_t *pool);


#endif /* NGX_VODLMS_REDIS_INTERNAL_H */
