/*
 * The session gate's directives; included into the module's command table
 * (ngx_http_vodlms_module.c) so that they are declared beside their code.
 */

#define NGX_HTTP_VODLMS_SESSION_OFFSET(field)                                 \
    (offsetof(ngx_http_vodlms_loc_conf_t, session)                            \
     + offsetof(ngx_http_vodlms_session_conf_t, field))

    { ngx_string("vodlms_auth"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VODLMS_SESSION_OFFSET(enable),
      NULL },

    { ngx_string("vodlms_session_type"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_http_vodlms_conf_set_enum,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VODLMS_SESSION_OFFSET(type),
      &ngx_http_vodlms_session_types },

    { ngx_string("vodlms_session_cookie"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VODLMS_SESSION_OFFSET(cookie),
      NULL },

    { ngx_string("vodlms_session_bearer"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VODLMS_SESSION_OFFSET(bearer),
      NULL },

    { ngx_string("vodlms_session_key_prefix"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VODLMS_SESSION_OFFSET(key_prefix),
      NULL },

    { ngx_string("vodlms_session_value"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_http_vodlms_conf_set_enum,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VODLMS_SESSION_OFFSET(value),
      &ngx_http_vodlms_session_values },

    { ngx_string("vodlms_session_user_field"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VODLMS_SESSION_OFFSET(user_field),
      NULL },

    { ngx_string("vodlms_session_role_field"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VODLMS_SESSION_OFFSET(role_field),
      NULL },

    { ngx_string("vodlms_session_expires_field"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VODLMS_SESSION_OFFSET(expires_field),
      NULL },

    { ngx_string("vodlms_session_field"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE12,
      ngx_http_vodlms_session_field,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("vodlms_session_secret"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_1MORE,
      ngx_http_vodlms_session_secret,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("vodlms_session_cache"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_1MORE,
      ngx_http_vodlms_session_cache,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("vodlms_session_invalidate"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VODLMS_SESSION_OFFSET(invalidate),
      NULL },

    { ngx_string("vodlms_auth_require_role"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_1MORE,
      ngx_http_vodlms_require_role,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },
