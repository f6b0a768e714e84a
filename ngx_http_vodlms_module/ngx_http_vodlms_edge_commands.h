/*
 * The self-hosted edge's directives; included into the module's command
 * table.
 */

#define NGX_HTTP_VODLMS_EDGE_OFFSET(field)                                    \
    (offsetof(ngx_http_vodlms_loc_conf_t, edge)                               \
     + offsetof(ngx_http_vodlms_edge_conf_t, field))

    { ngx_string("vodlms_edge"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VODLMS_EDGE_OFFSET(enable),
      NULL },

    { ngx_string("vodlms_edge_public_key"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE2,
      ngx_http_vodlms_edge_key,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("vodlms_edge_url"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_http_vodlms_edge_url,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("vodlms_edge_wildcard"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_http_vodlms_conf_set_enum,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VODLMS_EDGE_OFFSET(match),
      &ngx_http_vodlms_edge_matches },

    { ngx_string("vodlms_edge_signature_cache"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_http_vodlms_edge_cache,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("vodlms_edge_playlist_max_age"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VODLMS_EDGE_OFFSET(playlist_max_age),
      NULL },

    { ngx_string("vodlms_edge_segment_max_age"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VODLMS_EDGE_OFFSET(segment_max_age),
      NULL },
