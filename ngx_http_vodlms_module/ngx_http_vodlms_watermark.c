/*
 * The viewer watermark: "vodlms_watermark '$vodlms_session_email
 * $vodlms_user_id';" puts "watermark": "<text>" into the playback answer,
 * for the player page to draw over the video (docs/security.md says what
 * that stops and what it does not).
 *
 * The text is a complex value, evaluated per request from what the gates
 * already know: session fields (vodlms_session_field) and the enrollment
 * row's columns.  It is made well-formed UTF-8, cut to
 * NGX_HTTP_VODLMS_WATERMARK_MAX bytes at a character boundary, and
 * JSON-escaped.  A variable without a value contributes nothing.
 */

#include "ngx_http_vodlms_module.h"


static ngx_int_t ngx_http_vodlms_watermark_check_fields(ngx_conf_t *cf,
    ngx_http_vodlms_watermark_conf_t *conf);


ngx_int_t
ngx_http_vodlms_watermark_json(ngx_http_request_t *r, ngx_str_t *out)
{
    u_char                            *p;
    size_t                             len, escaped;
    ngx_str_t                          text;
    ngx_http_vodlms_loc_conf_t        *vlcf;

    u_char  buf[NGX_HTTP_VODLMS_WATERMARK_MAX];

    ngx_str_null(out);

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);

    if (vlcf->watermark.text == NULL) {
        return NGX_OK;
    }

    if (ngx_http_complex_value(r, vlcf->watermark.text, &text) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "vodlms: cannot evaluate \"vodlms_watermark\"");
        return NGX_ERROR;
    }

    len = vodlms_utf8_cut((char *) text.data, text.len, (char *) buf,
                          sizeof(buf));

    if (len < text.len) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "vodlms watermark: %uz bytes cut to %uz",
                       text.len, len);
    }

    /* well-formed now: the length cannot be VODLMS_JSON_INVALID */
    escaped = vodlms_json_escaped_len((char *) buf, len);

    out->data = ngx_pnalloc(r->pool, sizeof(",\"watermark\":\"\"") - 1
                                     + escaped);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(out->data, ",\"watermark\":\"",
                   sizeof(",\"watermark\":\"") - 1);
    p = (u_char *) vodlms_json_escape((char *) p, (char *) buf, len);
    *p++ = '"';

    out->len = p - out->data;

    return NGX_OK;
}


/* configuration */

void
ngx_http_vodlms_watermark_create_conf(ngx_http_vodlms_watermark_conf_t *wcf)
{
    wcf->text = NGX_CONF_UNSET_PTR;
}


char *
ngx_http_vodlms_watermark_merge_conf(ngx_conf_t *cf,
    ngx_http_vodlms_watermark_conf_t *prev,
    ngx_http_vodlms_watermark_conf_t *conf)
{
    ngx_conf_merge_ptr_value(conf->text, prev->text, NULL);

    if (conf->text == NULL) {
        return NGX_CONF_OK;
    }

    if (ngx_http_vodlms_watermark_check_fields(cf, conf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * Where the answer is made (vodlms_playback), every $vodlms_session_<name>
 * in the text must be a vodlms_session_field of that location: a typo
 * would otherwise be an empty watermark, found by nobody.
 */

static ngx_int_t
ngx_http_vodlms_watermark_check_fields(ngx_conf_t *cf,
    ngx_http_vodlms_watermark_conf_t *conf)
{
    u_char                           *p, *last, *name;
    size_t                            plen;
    ngx_str_t                         n;
    ngx_uint_t                        i, found;
    ngx_http_vodlms_loc_conf_t       *vlcf;
    ngx_http_vodlms_session_field_t  *f;

    vlcf = (ngx_http_vodlms_loc_conf_t *)
           ((u_char *) conf - offsetof(ngx_http_vodlms_loc_conf_t, watermark));

    if (vlcf->playback.mode == NGX_HTTP_VODLMS_PLAYBACK_OFF) {
        return NGX_OK;
    }

    plen = sizeof("vodlms_session_") - 1;
    p = conf->text->value.data;
    last = p + conf->text->value.len;

    for ( /* void */ ; p < last; p++) {

        if (*p != '$') {
            continue;
        }

        name = p + 1;
        if (name < last && *name == '{') {
            name++;
        }

        if ((size_t) (last - name) <= plen
            || ngx_strncasecmp(name, (u_char *) "vodlms_session_", plen) != 0)
        {
            continue;
        }

        n.data = name + plen;
        for (p = n.data; p < last; p++) {
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
                  || (*p >= '0' && *p <= '9') || *p == '_'))
            {
                break;
            }
        }
        n.len = p - n.data;
        p--;

        if (n.len == sizeof("cache") - 1
            && ngx_strncasecmp(n.data, (u_char *) "cache", n.len) == 0)
        {
            continue;
        }

        found = 0;

        if (vlcf->session.fields) {
            f = vlcf->session.fields->elts;

            for (i = 0; i < vlcf->session.fields->nelts; i++) {
                if (f[i].name.len == n.len
                    && ngx_strncasecmp(f[i].name.data, n.data, n.len) == 0)
                {
                    found = 1;
                    break;
                }
            }
        }

        if (!found) {
            ngx_http_vodlms_merge_error(cf,
                                        "\"vodlms_watermark\" uses "
                                        "$vodlms_session_%V, but no "
                                        "\"vodlms_session_field %V\" applies "
                                        "here", &n, &n);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* vodlms_watermark text | off; */

char *
ngx_http_vodlms_watermark(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vodlms_loc_conf_t  *vlcf = conf;

    ngx_str_t                         *value;
    ngx_http_compile_complex_value_t   ccv;

    if (vlcf->watermark.text != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        vlcf->watermark.text = NULL;
        return NGX_CONF_OK;
    }

    if (value[1].len == 0) {
        return "is empty: give the text, or \"off\"";
    }

    vlcf->watermark.text = ngx_palloc(cf->pool,
                                      sizeof(ngx_http_complex_value_t));
    if (vlcf->watermark.text == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[1];
    ccv.complex_value = vlcf->watermark.text;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}
