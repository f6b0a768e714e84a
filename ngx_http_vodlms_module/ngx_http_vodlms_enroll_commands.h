/*
 * The enrollment check's directives; included into the
 * module's command table.
 */

#define NGX_HTTP_VODLMS_ENROLL_OFFSET(field)                                  \
    (offsetof(ngx_http_vodlms_loc_conf_t, enroll)                             \
     + offsetof(ngx_http_vodlms_enroll_conf_t, field))

    { ngx_string("vodlms_enrollment_check"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VODLMS_ENROLL_OFFSET(enable),
      NULL },

    { ngx_string("vodlms_video_id"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VODLMS_ENROLL_OFFSET(video_id),
      NULL },

    { ngx_string("vodlms_video_id_type"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_http_vodlms_conf_set_enum,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VODLMS_ENROLL_OFFSET(video_id_type),
      &ngx_http_vodlms_video_id_types },

    { ngx_string("vodlms_enrollment_query"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_1MORE,
      ngx_http_vodlms_enroll_query,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("vodlms_enrollment_cache"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_1MORE,
      ngx_http_vodlms_enroll_cache,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("vodlms_enrollment_no_row"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_http_vodlms_conf_set_enum,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VODLMS_ENROLL_OFFSET(no_row),
      &ngx_http_vodlms_no_row_codes },
