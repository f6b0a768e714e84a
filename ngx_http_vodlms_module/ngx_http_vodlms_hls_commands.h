/*
 * Signed playlists' directives; included into the module's command table.
 */

#define NGX_HTTP_VODLMS_HLS_OFFSET(field)                                     \
    (offsetof(ngx_http_vodlms_loc_conf_t, hls)                                \
     + offsetof(ngx_http_vodlms_hls_conf_t, field))

    { ngx_string("vodlms_hls_sign"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_http_vodlms_conf_set_enum,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VODLMS_HLS_OFFSET(enable),
      &ngx_http_vodlms_hls_modes },

    { ngx_string("vodlms_hls_sign_absolute"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_http_vodlms_conf_set_enum,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VODLMS_HLS_OFFSET(absolute),
      &ngx_http_vodlms_hls_absolutes },

    { ngx_string("vodlms_hls_sign_max_size"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VODLMS_HLS_OFFSET(max_size),
      NULL },
