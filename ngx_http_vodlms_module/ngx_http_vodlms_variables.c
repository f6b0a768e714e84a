/*
 * $vodlms_* variables: what the module knows, for log_format, map,
 * add_header and other modules.  Tokens themselves are never exposed.
 */

#include "ngx_http_vodlms_module.h"


typedef enum {
    NGX_HTTP_VODLMS_VAR_USER_ID = 0,
    NGX_HTTP_VODLMS_VAR_USER_ROLE,
    NGX_HTTP_VODLMS_VAR_AUTH_STATUS,
    NGX_HTTP_VODLMS_VAR_SESSION_CACHE,
    NGX_HTTP_VODLMS_VAR_VIDEO_ID,
    NGX_HTTP_VODLMS_VAR_ENROLLMENT_CACHE,
    NGX_HTTP_VODLMS_VAR_SIGNATURE_CACHE,
    NGX_HTTP_VODLMS_VAR_EDGE_STATUS,
    NGX_HTTP_VODLMS_VAR_EDGE_CACHE
} ngx_http_vodlms_var_e;


static ngx_int_t ngx_http_vodlms_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_vodlms_video_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_vodlms_column_variable(ngx_http_request_t *r,
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

    { ngx_string("vodlms_video_id"), NULL, ngx_http_vodlms_video_variable,
      NGX_HTTP_VODLMS_VAR_VIDEO_ID, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("vodlms_enrollment_cache"), NULL,
      ngx_http_vodlms_video_variable, NGX_HTTP_VODLMS_VAR_ENROLLMENT_CACHE,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("vodlms_signature_cache"), NULL,
      ngx_http_vodlms_video_variable, NGX_HTTP_VODLMS_VAR_SIGNATURE_CACHE,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("vodlms_edge_status"), NULL,
      ngx_http_vodlms_video_variable, NGX_HTTP_VODLMS_VAR_EDGE_STATUS,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("vodlms_edge_signature_cache"), NULL,
      ngx_http_vodlms_video_variable, NGX_HTTP_VODLMS_VAR_EDGE_CACHE,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    /* $vodlms_session_<name>: a vodlms_session_field */
    { ngx_string("vodlms_session_"), NULL,
      ngx_http_vodlms_session_field_variable,
      0, NGX_HTTP_VAR_NOCACHEABLE|NGX_HTTP_VAR_PREFIX, 0 },
    /* vodlms_streams: the playback the request started, renewed or named */
    { ngx_string("vodlms_playback_id"), NULL,
      ngx_http_vodlms_streams_variable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    /* $vodlms_video_<column>: the enrollment query's answer */
    { ngx_string("vodlms_video_"), NULL, ngx_http_vodlms_column_variable,
      0, NGX_HTTP_VAR_NOCACHEABLE|NGX_HTTP_VAR_PREFIX, 0 },

      ngx_http_null_variable
};


static void
ngx_http_vodlms_set_var(ngx_http_variable_value_t *v, ngx_str_t *val)
{
    if (val->len == 0) {
        v->not_found = 1;
        return;
    }

    v->len = val->len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = val->data;
}


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


static ngx_int_t
ngx_http_vodlms_video_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                      val, id;
    ngx_http_vodlms_ctx_t         *ctx;
    ngx_http_vodlms_loc_conf_t    *vlcf;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_vodlms_module);

    ngx_str_null(&val);

    if (data == NGX_HTTP_VODLMS_VAR_EDGE_STATUS
        || data == NGX_HTTP_VODLMS_VAR_EDGE_CACHE)
    {
        if (ctx) {
            val.data = (u_char *) (data == NGX_HTTP_VODLMS_VAR_EDGE_STATUS
                                   ? ctx->edge.verdict
                                   : ctx->edge.sig_cache_status);
            val.len = val.data ? ngx_strlen(val.data) : 0;
        }

        ngx_http_vodlms_set_var(v, &val);
        return NGX_OK;
    }

    if (data == NGX_HTTP_VODLMS_VAR_SIGNATURE_CACHE) {
        if (ctx && ctx->playback.sig_cache_status) {
            val.data = (u_char *) ctx->playback.sig_cache_status;
            val.len = ngx_strlen(ctx->playback.sig_cache_status);
        }

        ngx_http_vodlms_set_var(v, &val);
        return NGX_OK;
    }

    if (data == NGX_HTTP_VODLMS_VAR_ENROLLMENT_CACHE) {
        if (ctx && ctx->enroll.cache_status) {
            val.data = (u_char *) ctx->enroll.cache_status;
            val.len = ngx_strlen(ctx->enroll.cache_status);
        }

        ngx_http_vodlms_set_var(v, &val);
        return NGX_OK;
    }

    /* the id the enrollment check saw, or vodlms_video_id, validated */

    if (ctx && ctx->enroll.video_id.len) {
        val = ctx->enroll.video_id;

    } else {
        vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);

        if (vlcf->enroll.video_id
            && ngx_http_complex_value(r, vlcf->enroll.video_id, &id) == NGX_OK
            && ngx_http_vodlms_video_id_valid(&id))
        {
            val = id;
        }
    }

    if (!ngx_http_vodlms_video_id_valid(&val)) {
        ngx_str_null(&val);
    }

    ngx_http_vodlms_set_var(v, &val);

    return NGX_OK;
}


static ngx_int_t
ngx_http_vodlms_column_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                 *name = (ngx_str_t *) data;

    size_t                     plen;
    ngx_str_t                  val;
    ngx_http_vodlms_column_t  *col;

    plen = sizeof("vodlms_video_") - 1;

    col = ngx_http_vodlms_enroll_column(r, name->data + plen,
                                        name->len - plen);

    ngx_str_null(&val);

    if (col && !col->null) {
        val = col->value;
    }

    ngx_http_vodlms_set_var(v, &val);

    return NGX_OK;
}
