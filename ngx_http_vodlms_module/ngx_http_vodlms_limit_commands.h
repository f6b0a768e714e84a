/*
 * Per-user query limit directives; included into the module's command
 * table.
 */

    { ngx_string("vodlms_user_query_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_vodlms_limit_zone,
      0,
      0,
      NULL },

    { ngx_string("vodlms_user_query_limit"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE12,
      ngx_http_vodlms_limit,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },
