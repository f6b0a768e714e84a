/*
 * $vodlms_* variables: what the module knows, for log_format, map,
 * add_header and other modules.  Tokens themselves are never exposed.
 */

#include "ngx_http_vodlms_module.h"


typedef enum {
    NGX_HTTP_VODLMS_VAR_USER_ID = 0,
    NGX_HTTP_VODLMS_VAR_USER_ROLE,
    NGX_HTTP_VODLMS_VAR_AUTH_STATUS,
    NGX_HTTP_VODLMS_VAR_SESSION_CACHE
} ngx_http_vodlms_var_e;


static ngx_int_t ngx_http_vodlms_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_http_variable_t  ngx_http_vodlms_vars[] = {

    { ngx_string("vodlms_user_id"), NULL, ngx_http_vodlms_variable,
      NGX_HTTP_VODLMS_VAR_USER_ID, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("vodlms_user_role"), NULL, ngx_http_vodlms_variable,
      NGX_HTTP_VODLMS_VAR_USER_ROLE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("vodlms_auth_status"), NULL, ngx_http_vodlms_variable,
      NGX_HTTP_VODLMS_VAR_AUTH_STATUS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("vodlms_session_cache"), NULL, ngx_http_vodlms_variable,
      NGX_HTTP_VODLMS_VAR_SESSION_CACHE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


ngx_int_t
ngx_http_vodlms_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_vodlms_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_vodlms_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    const char                     *s;
    ngx_str_t                       val;
    ngx_http_vodlms_ctx_t          *ctx;
    ngx_http_vodlms_session_ctx_t  *sctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_vodlms_module);

    if (ctx == NULL
        || ctx->session.state != NGX_HTTP_VODLMS_SESSION_DONE)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    sctx = &ctx->session;
    ngx_str_null(&val);

    switch (data) {

    case NGX_HTTP_VODLMS_VAR_USER_ID:
        if (sctx->result == NGX_HTTP_VODLMS_OK) {
            val = sctx->user_id;
        }
        break;

    case NGX_HTTP_VODLMS_VAR_USER_ROLE:
        if (sctx->result == NGX_HTTP_VODLMS_OK) {
            val = sctx->roles;
        }
        break;

    case NGX_HTTP_VODLMS_VAR_AUTH_STATUS:
        s = ngx_http_vodlms_err_code(sctx->result);
        val.data = (u_char *) s;
        val.len = ngx_strlen(s);
        break;

    default: /* NGX_HTTP_VODLMS_VAR_SESSION_CACHE */
        if (sctx->cache_status) {
            val.data = (u_char *) sctx->cache_status;
            val.len = ngx_strlen(sctx->cache_status);
        }
        break;
    }

    if (val.len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = val.len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = val.data;

    return NGX_OK;
}
