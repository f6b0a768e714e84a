/*
 * The enrollment check's directives (and PostgreSQL's); included into the
 * module's command table.
 */

#define NGX_HTTP_VODLMS_ENROLL_OFFSET(field)                                  \
    (offsetof(ngx_http_vodlms_loc_conf_t, enroll)                             \
     + offsetof(ngx_http_vodlms_enroll_conf_t, field))

    { ngx_string("vodlms_pg"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_vodlms_pg,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("vodlms_pg_replica"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_vodlms_pg,
      NGX_HTTP_MAIN_CONF_OFFSET,
      1,
      NULL },

    { ngx_string("vodlms_pg_schema"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_vodlms_main_conf_t, pg_schema),
      &ngx_http_vodlms_pg_schema_post },

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
