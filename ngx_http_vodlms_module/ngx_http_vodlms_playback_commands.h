/*
 * The playback endpoint's directives (and CloudFront signing's); included
 * into the module's command table.
 */

#define NGX_HTTP_VODLMS_PLAYBACK_OFFSET(field)                                \
    (offsetof(ngx_http_vodlms_loc_conf_t, playback)                           \
     + offsetof(ngx_http_vodlms_playback_conf_t, field))

    { ngx_string("vodlms_playback"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_vodlms_playback,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("vodlms_cloudfront_url"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_http_vodlms_cloudfront_url,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("vodlms_cloudfront_key"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE2,
      ngx_http_vodlms_cloudfront_key,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("vodlms_cloudfront_signing_key"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VODLMS_PLAYBACK_OFFSET(signing_key),
      NULL },

    { ngx_string("vodlms_cloudfront_ttl"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VODLMS_PLAYBACK_OFFSET(ttl),
      NULL },

    { ngx_string("vodlms_cloudfront_expiry_bucket"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VODLMS_PLAYBACK_OFFSET(bucket),
      NULL },

    { ngx_string("vodlms_cloudfront_hash"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_http_vodlms_conf_set_enum,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VODLMS_PLAYBACK_OFFSET(hash),
      &ngx_http_vodlms_cf_hashes },

    { ngx_string("vodlms_cloudfront_ip_binding"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VODLMS_PLAYBACK_OFFSET(ip_binding),
      NULL },

    { ngx_string("vodlms_cloudfront_url_policy"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_http_vodlms_conf_set_enum,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VODLMS_PLAYBACK_OFFSET(url_policy),
      &ngx_http_vodlms_cf_policies },

    { ngx_string("vodlms_cloudfront_cookie_domain"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VODLMS_PLAYBACK_OFFSET(cookie_domain),
      NULL },

    { ngx_string("vodlms_cloudfront_cookie_secure"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VODLMS_PLAYBACK_OFFSET(cookie_secure),
      NULL },

    { ngx_string("vodlms_cloudfront_cookie_samesite"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_http_vodlms_conf_set_enum,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_VODLMS_PLAYBACK_OFFSET(cookie_samesite),
      &ngx_http_vodlms_samesite },

    { ngx_string("vodlms_cloudfront_signature_cache"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_TAKE1,
      ngx_http_vodlms_signature_cache,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("vodlms_cors_origins"),
      NGX_HTTP_VODLMS_LOC_ANY|NGX_CONF_1MORE,
      ngx_http_vodlms_cors_origins,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },
