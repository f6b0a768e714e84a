/*
 * Watch progress directives; included into the module's command table.
 */

#define NGX_HTTP_VODLMS_PROGRESS_OFFSET(field)                                \
    (offsetof(ngx_http_vodlms_loc_conf_t, progress)                           \
     + offsetof(ngx_http_vodlms_progress_conf_t, field))

    { ngx_string("vodlms_progress_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_vodlms_progress_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("vodlms_progress_flush_query"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_vodlms_main_conf_t, progress)
      + offsetof(ngx_http_vodlms_progress_main_t, flush_sql),
      NULL },

    { ngx_string("vodlms_progress"),
      NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_http_vodlms_progress,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("vodlms_progress_rate"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_http_vodlms_progress_rate,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("vodlms_progress_complete"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_http_vodlms_progress_fraction,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VODLMS_PROGRESS_OFFSET(complete),
      NULL },

    { ngx_string("vodlms_progress_skip"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE12,
      ngx_http_vodlms_progress_skip,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },
