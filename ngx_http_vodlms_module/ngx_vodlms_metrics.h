/*
 * Counters in shared memory, so that every worker's share counts: request
 * outcomes, cache hits and misses, backend latency histograms and open
 * connections.  The backend layers (not HTTP-specific) record through the
 * two functions below; ngx_http_vodlms_metrics.c serves them.
 */

#ifndef NGX_VODLMS_METRICS_H
#define NGX_VODLMS_METRICS_H

#include <ngx_config.h>
#include <ngx_core.h>


typedef enum {
    NGX_VODLMS_BACKEND_REDIS = 0,
    NGX_VODLMS_BACKEND_PG,
    NGX_VODLMS_BACKEND_N
} ngx_vodlms_backend_e;


/* a finished round trip: its duration, and whether it succeeded */
void ngx_vodlms_metrics_backend(ngx_vodlms_backend_e b, ngx_msec_t ms,
    ngx_uint_t ok);

/* a connection opened (+1) or closed (-1) */
void ngx_vodlms_metrics_connection(ngx_vodlms_backend_e b, ngx_int_t delta);


#endif /* NGX_VODLMS_METRICS_H */
