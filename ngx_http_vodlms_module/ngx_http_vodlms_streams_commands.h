/*
 * Concurrent stream limit directives; included into the module's command
 * table.
 */

    { ngx_string("vodlms_streams_limit"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_vodlms_streams_limit,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("vodlms_streams"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE12,
      ngx_http_vodlms_streams,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },
