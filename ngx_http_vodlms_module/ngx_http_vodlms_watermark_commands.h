/*
 * The viewer watermark's directive; included into the module's command
 * table.
 */

    { ngx_string("vodlms_watermark"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_http_vodlms_watermark,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },
