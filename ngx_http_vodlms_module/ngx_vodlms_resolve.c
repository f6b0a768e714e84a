/*
 * Host names resolved at run time with nginx's resolver: see
 * ngx_vodlms_resolve.h.  Numeric names never reach the resolver.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_vodlms_resolve.h"


static ngx_int_t ngx_vodlms_resolve_numeric(ngx_str_t *name,
    ngx_sockaddr_t *sa, socklen_t *socklen);
static void ngx_vodlms_resolve_handler(ngx_resolver_ctx_t *ctx);
static void ngx_vodlms_resolve_answer(ngx_vodlms_resolve_t *rs,
    ngx_resolver_addr_t *raddrs, ngx_uint_t n, time_t valid);


ngx_resolver_t *
ngx_vodlms_resolver_conf(ngx_conf_t *cf, ngx_msec_t *timeout)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    /* nginx's stand-in for "no resolver" has no name servers */
    if (clcf == NULL || clcf->resolver == NULL
        || clcf->resolver->connections.nelts == 0)
    {
        return NULL;
    }

    /* the http{} level itself is never merged: nginx's default, then */
    *timeout = (clcf->resolver_timeout == NGX_CONF_UNSET_MSEC)
               ? 30000 : clcf->resolver_timeout;

    return clcf->resolver;
}


ngx_int_t
ngx_vodlms_resolve(ngx_vodlms_resolve_t *rs, ngx_str_t *name, in_port_t port)
{
    socklen_t            socklen;
    ngx_sockaddr_t       sa;
    ngx_resolver_ctx_t  *ctx;
    ngx_resolver_addr_t  raddr;

    rs->port = port;

    /* a numeric name is answered at once, as nginx's upstreams do */

    if (ngx_vodlms_resolve_numeric(name, &sa, &socklen) == NGX_OK) {
        raddr.sockaddr = &sa.sockaddr;
        raddr.socklen = socklen;
        ngx_vodlms_resolve_answer(rs, &raddr, 1, NGX_MAX_TIME_T_VALUE);
        return NGX_OK;
    }

    if (rs->resolver == NULL) {
        return NGX_ERROR;
    }

    ctx = ngx_resolve_start(rs->resolver, NULL);

    if (ctx == NULL || ctx == NGX_NO_RESOLVER) {
        ngx_log_error(NGX_LOG_ERR, rs->log, 0,
                      "vodlms: could not start resolving \"%V\"%s", name,
                      ctx ? ": no resolver" : "");
        return NGX_ERROR;
    }

    ctx->name = *name;
    ctx->handler = ngx_vodlms_resolve_handler;
    ctx->data = rs;
    ctx->timeout = rs->timeout;

    /* a lookup in flight does not keep a worker that shuts down alive */
    ctx->cancelable = 1;

    rs->ctx = ctx;

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, rs->log, 0,
                   "vodlms resolve: ask, \"%V\"", name);

    /* a cached answer calls the handler before this returns */
    if (ngx_resolve_name(ctx) != NGX_OK) {
        rs->ctx = NULL;
        ngx_log_error(NGX_LOG_ERR, rs->log, 0,
                      "vodlms: could not resolve \"%V\": out of memory",
                      name);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_vodlms_resolve_numeric(ngx_str_t *name, ngx_sockaddr_t *sa,
    socklen_t *socklen)
{
    in_addr_t  a;

    ngx_memzero(sa, sizeof(ngx_sockaddr_t));

    a = ngx_inet_addr(name->data, name->len);

    if (a != INADDR_NONE) {
        sa->sockaddr_in.sin_family = AF_INET;
        sa->sockaddr_in.sin_addr.s_addr = a;
        *socklen = sizeof(struct sockaddr_in);
        return NGX_OK;
    }

#if (NGX_HAVE_INET6)
    if (ngx_inet6_addr(name->data, name->len,
                       sa->sockaddr_in6.sin6_addr.s6_addr)
        == NGX_OK)
    {
        sa->sockaddr_in6.sin6_family = AF_INET6;
        *socklen = sizeof(struct sockaddr_in6);
        return NGX_OK;
    }
#endif

    return NGX_DECLINED;
}


void
ngx_vodlms_resolve_cancel(ngx_vodlms_resolve_t *rs)
{
    if (rs->ctx) {
        ngx_resolve_name_done(rs->ctx);
        rs->ctx = NULL;
    }
}


static void
ngx_vodlms_resolve_handler(ngx_resolver_ctx_t *ctx)
{
    ngx_vodlms_resolve_t  *rs = ctx->data;

    u_char  err[128];

    rs->ctx = NULL;

    if (ctx->state) {
        ngx_snprintf(err, sizeof(err) - 1, "\"%V\" could not be resolved "
                     "(%i: %s)%Z", &ctx->name, ctx->state,
                     ngx_resolver_strerror(ctx->state));
        ngx_resolve_name_done(ctx);
        rs->handler(rs, NULL, 0, 0, (char *) err);
        return;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, rs->log, 0,
                   "vodlms resolve: answer, \"%V\": %ui addresses, fresh "
                   "for %T s",
                   &ctx->name, ctx->naddrs, ctx->valid - ngx_time());

    /* the handler may start another lookup: this one is over first */
    ngx_vodlms_resolve_answer(rs, ctx->addrs, ctx->naddrs, ctx->valid);
    ngx_resolve_name_done(ctx);
}


static void
ngx_vodlms_resolve_answer(ngx_vodlms_resolve_t *rs,
    ngx_resolver_addr_t *raddrs, ngx_uint_t n, time_t valid)
{
    ngx_uint_t       i;
    ngx_addr_t       addrs[NGX_VODLMS_RESOLVE_MAX_ADDRS];
    ngx_sockaddr_t   sa[NGX_VODLMS_RESOLVE_MAX_ADDRS];

    n = ngx_min(n, NGX_VODLMS_RESOLVE_MAX_ADDRS);

    for (i = 0; i < n; i++) {
        ngx_memcpy(&sa[i], raddrs[i].sockaddr, raddrs[i].socklen);
        ngx_inet_set_port(&sa[i].sockaddr, rs->port);

        addrs[i].sockaddr = &sa[i].sockaddr;
        addrs[i].socklen = raddrs[i].socklen;
        ngx_str_null(&addrs[i].name);
    }

    rs->handler(rs, addrs, n, valid, n ? NULL : "no addresses");
}
