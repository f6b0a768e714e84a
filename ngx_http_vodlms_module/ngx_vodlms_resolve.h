/*
 * Host names resolved at run time, with nginx's own non-blocking resolver
 * (the "resolver" directive at the http{} level), per worker.  nginx's
 * resolver caches each answer for its TTL, or for "valid=": asking again
 * on every (re)connect costs nothing while the answer is fresh and follows
 * a name that moves (ElastiCache, RDS) once it is not.
 *
 * A backend keeps one ngx_vodlms_resolve_t per name it may be asking for,
 * in memory that outlives the lookup (its pool), and sets resolver,
 * timeout, log, handler and data once.
 */

#ifndef NGX_VODLMS_RESOLVE_H
#define NGX_VODLMS_RESOLVE_H

#include <ngx_config.h>
#include <ngx_core.h>


#define NGX_VODLMS_RESOLVE_MAX_ADDRS  8


typedef struct ngx_vodlms_resolve_s  ngx_vodlms_resolve_t;

/*
 * The answer: naddrs addresses with the port set (valid only during the
 * call), and valid, the time (ngx_time()) the answer stops being fresh; or
 * naddrs 0 and err saying why.  It may run before ngx_vodlms_resolve()
 * returns (a cached answer, a numeric name).
 */
typedef void (*ngx_vodlms_resolve_pt)(ngx_vodlms_resolve_t *rs,
    ngx_addr_t *addrs, ngx_uint_t naddrs, time_t valid, const char *err);


struct ngx_vodlms_resolve_s {
    ngx_resolver_t             *resolver;
    ngx_msec_t                  timeout;
    ngx_log_t                  *log;
    ngx_vodlms_resolve_pt       handler;
    void                       *data;

    /* private */
    ngx_resolver_ctx_t         *ctx;          /* a lookup in flight */
    in_port_t                   port;
};


/*
 * The http{} level "resolver", or NULL when none is configured (nginx then
 * makes one with no servers).  Configuration time, after the merge
 * (postconfiguration).  *timeout is its "resolver_timeout".
 */
ngx_resolver_t *ngx_vodlms_resolver_conf(ngx_conf_t *cf, ngx_msec_t *timeout);

/*
 * Starts a lookup of name (not NUL-ended; must outlive the lookup).
 * NGX_OK: the handler runs once, now or later.  NGX_ERROR: nothing could
 * be started (no memory, no resolver); the handler does not run.  One
 * lookup at a time per ngx_vodlms_resolve_t.
 */
ngx_int_t ngx_vodlms_resolve(ngx_vodlms_resolve_t *rs, ngx_str_t *name,
    in_port_t port);

/* drops a lookup in flight (its handler will not run); safe when idle */
void ngx_vodlms_resolve_cancel(ngx_vodlms_resolve_t *rs);


#endif /* NGX_VODLMS_RESOLVE_H */
