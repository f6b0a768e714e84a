/*
 * How denials are logged; included into the module's command table.
 */

    { ngx_string("vodlms_denial_log_level"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_http_vodlms_conf_set_enum,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_vodlms_loc_conf_t, denial)
      + offsetof(ngx_http_vodlms_err_conf_t, level),
      &ngx_http_vodlms_denial_log_levels },

    { ngx_string("vodlms_denial_log_limit"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_http_vodlms_err_log_limit,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },
