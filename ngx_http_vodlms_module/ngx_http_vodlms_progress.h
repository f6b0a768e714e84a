/*
 * Watch progress: beacons accepted in nginx, buffered in shared memory per
 * (user, video), written to PostgreSQL in one batched statement per flush.
 */

#ifndef NGX_HTTP_VODLMS_PROGRESS_H
#define NGX_HTTP_VODLMS_PROGRESS_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


typedef struct {
    ngx_shm_zone_t             *zone;
    ngx_msec_t                  flush_interval;
    ngx_uint_t                  batch;
    ngx_str_t                   flush_sql;
    ngx_uint_t                  flush_nparams;   /* 7 to 10: what the
                                                    statement uses */
    ngx_event_t                 flush_timer;     /* per worker */
    ngx_uint_t                  failures;        /* for the back-off */
    ngx_msec_t                  last_flush;      /* this worker's */
    ngx_pool_t                 *flush_pool;      /* per flush */
    void                       *flush;           /* the one in flight */
    ngx_msec_t                  exit_started;    /* first tick on the way
                                                    out, 0: not exiting */
    ngx_uint_t                  exit_gave_up;
} ngx_http_vodlms_progress_main_t;


/* vodlms_progress_skip's second word */
#define NGX_HTTP_VODLMS_SKIP_FLAG       0
#define NGX_HTTP_VODLMS_SKIP_REFUSE     1
#define NGX_HTTP_VODLMS_SKIP_UNWATCHED  2


typedef struct {
    ngx_flag_t                  enable;
    ngx_uint_t                  rate;            /* beacons per window */
    ngx_msec_t                  rate_window;
    double                      complete;        /* fraction, 0..1 */
    double                      slack;           /* seconds past the end */
    double                      skip;            /* 0: off, else seconds */
    ngx_uint_t                  skip_mode;       /* NGX_HTTP_VODLMS_SKIP_* */
} ngx_http_vodlms_progress_conf_t;


typedef struct {
    ngx_atomic_uint_t           beacons;
    ngx_uint_t                  pending;
    ngx_atomic_uint_t           flushes;
    ngx_atomic_uint_t           flush_failures;
    ngx_atomic_uint_t           rows;
    ngx_atomic_uint_t           full;
    ngx_atomic_uint_t           set_aside;
    double                      fill;            /* pages in use, 0..1 */
} ngx_http_vodlms_progress_stats_t;


ngx_int_t ngx_http_vodlms_progress_stats(ngx_http_request_t *r,
    ngx_http_vodlms_progress_stats_t *st);

/* the latest state this node knows for the request's user and video */
ngx_int_t ngx_http_vodlms_progress_resume(ngx_http_request_t *r,
    double *position, double *duration, ngx_uint_t *completed);

ngx_int_t ngx_http_vodlms_progress_init_process(ngx_cycle_t *cycle);

/* a worker on its way out writes what is still dirty (a fast shutdown) */
void ngx_http_vodlms_progress_exit(ngx_cycle_t *cycle);

void ngx_http_vodlms_progress_create_conf(
    ngx_http_vodlms_progress_conf_t *c);
char *ngx_http_vodlms_progress_merge_conf(ngx_conf_t *cf,
    ngx_http_vodlms_progress_conf_t *prev,
    ngx_http_vodlms_progress_conf_t *conf);

char *ngx_http_vodlms_progress_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_vodlms_progress(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_vodlms_progress_rate(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_vodlms_progress_fraction(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_vodlms_progress_skip(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* NGX_HTTP_VODLMS_PROGRESS_H */
