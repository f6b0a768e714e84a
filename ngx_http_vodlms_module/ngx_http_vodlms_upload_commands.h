/*
 * Upload intake directives; included into the module's command table.
 */

#define NGX_HTTP_VODLMS_UPLOAD_OFFSET(field)                                  \
    (offsetof(ngx_http_vodlms_loc_conf_t, upload)                             \
     + offsetof(ngx_http_vodlms_upload_conf_t, field))

    { ngx_string("vodlms_upload"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_vodlms_upload,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("vodlms_upload_caption"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE123,
      ngx_http_vodlms_upload_caption,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("vodlms_upload_course"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VODLMS_UPLOAD_OFFSET(course),
      NULL },

    { ngx_string("vodlms_upload_title"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VODLMS_UPLOAD_OFFSET(title),
      NULL },

    { ngx_string("vodlms_upload_owner"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VODLMS_UPLOAD_OFFSET(owner),
      NULL },

    { ngx_string("vodlms_upload_quota"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_1MORE,
      ngx_http_vodlms_upload_quota,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("vodlms_upload_spool"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_http_vodlms_upload_spool,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("vodlms_upload_stream"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VODLMS_UPLOAD_OFFSET(stream),
      NULL },
