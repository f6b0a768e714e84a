/*
 * The key endpoint's directives (encrypted HLS); included into the
 * module's command table.
 */

    { ngx_string("vodlms_hls_key"),
      NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_vodlms_key,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("vodlms_hls_key_cache"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_1MORE,
      ngx_http_vodlms_key_cache,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },
