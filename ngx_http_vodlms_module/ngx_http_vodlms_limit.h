/*
 * Per-user query limit: a leaky bucket per authenticated user, in a shared
 * memory zone every worker sees, for the queries the module sends to
 * PostgreSQL on a user's behalf (the enrollment check, the upload's row).
 * nginx's own limit_req runs before the access phase and cannot see the
 * user; this runs where the user is known and a query is about to go out,
 * so cached answers cost nothing.
 */

#ifndef NGX_HTTP_VODLMS_LIMIT_H
#define NGX_HTTP_VODLMS_LIMIT_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


typedef struct {
    ngx_shm_zone_t             *zone;     /* NULL: off */
    ngx_uint_t                  burst;    /* in 1/1000 of a query */
} ngx_http_vodlms_limit_conf_t;


/*
 * Call right before a query goes out for the request's user.  NGX_OK: send
 * it (it has been counted).  Anything else: the request was answered 429
 * too_many_queries (with Retry-After), as ngx_http_vodlms_deny() does:
 * NGX_DONE means it is finalized and may already be freed, so touch
 * nothing of it; return the value from the access handler, or hand a
 * status to ngx_http_finalize_request from a body handler.
 */
ngx_int_t ngx_http_vodlms_limit_query(ngx_http_request_t *r,
    ngx_str_t *user);

void ngx_http_vodlms_limit_create_conf(ngx_http_vodlms_limit_conf_t *c);
char *ngx_http_vodlms_limit_merge_conf(ngx_conf_t *cf,
    ngx_http_vodlms_limit_conf_t *prev, ngx_http_vodlms_limit_conf_t *conf);

char *ngx_http_vodlms_limit_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_vodlms_limit(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);


#endif /* NGX_HTTP_VODLMS_LIMIT_H */
