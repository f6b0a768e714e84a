/*
 * Caption upload ("vodlms_upload captions" with vodlms_upload_caption): an
 * instructor's WebVTT or SRT file for one language of a video.
 *
 * The upload itself is the video upload's (ngx_http_vodlms_upload.c): the
 * same gate, quota, spool, job stream and compensation.  This file holds
 * what differs: the language, label and default flag of the request,
 * checked before a byte of the body is read (nginx never parses the file:
 * the helper validates it), and the video_captions statements.
 *
 * The row keeps two things apart (sql/migrations/0012): the last upload
 * (status, source_location, error, requested_at), which is all this writes,
 * and what is published (label, is_default, vtt, revision), which only the
 * helper changes.  So replacing a language keeps its published captions
 * playing until the helper publishes the new file, and the video row is
 * never touched.
 */

#include "ngx_http_vodlms_module.h"


/*
 * $1 video, $2 course, $3 lang, $4 label, $5 the spooled file.
 *
 * A new language is inserted with the requested label (nothing published:
 * vtt NULL); an existing one gets only its last-upload columns.  Only a
 * video of this course takes captions.  Returns the previous last-upload
 * state (for the compensation), whether a row was written, and whether the
 * video exists at all (for the log line: no row, or another course's).
 */
static ngx_str_t  ngx_http_vodlms_upload_caption_sql = ngx_string(
    "WITH v AS (SELECT id FROM vodlms.videos"
    "  WHERE id = $1::text AND course_id = $2::text),"
    " old AS (SELECT status, source_location, error,"
    "  requested_at::text AS requested"
    "  FROM vodlms.video_captions"
    "  WHERE video_id = $1::text AND lang = $3::text),"
    " up AS (INSERT INTO vodlms.video_captions (video_id, lang, label,"
    "   status, source_location, error, requested_at)"
    "  SELECT v.id, $3::text, $4::text, 'queued', $5::text, NULL, now()"
    "  FROM v"
    "  ON CONFLICT (video_id, lang) DO UPDATE SET status = 'queued',"
    "   source_location = EXCLUDED.source_location, error = NULL,"
    "   requested_at = EXCLUDED.requested_at"
    "  RETURNING 1)"
    " SELECT old.status, old.source_location, old.error, old.requested,"
    "  (SELECT count(*) FROM up),"
    "  (SELECT count(*) FROM vodlms.videos WHERE id = $1::text)"
    " FROM (SELECT 1) AS one LEFT JOIN old ON true");


/* undo: delete the language we added (nothing published), or put back
   the previous upload's state; only while the row still names our file */
static ngx_str_t  ngx_http_vodlms_upload_caption_undo_new = ngx_string(
    "DELETE FROM vodlms.video_captions WHERE video_id = $1::text"
    " AND lang = $2::text AND source_location = $3::text AND vtt IS NULL");

static ngx_str_t  ngx_http_vodlms_upload_caption_undo_old = ngx_string(
    "UPDATE vodlms.video_captions SET status = $4::text,"
    " source_location = $5::text, error = $6::text,"
    " requested_at = $7::timestamptz"
    " WHERE video_id = $1::text AND lang = $2::text"
    " AND source_location = $3::text");


static ngx_int_t ngx_http_vodlms_upload_caption_lang(ngx_str_t *in,
    u_char *out);
static ngx_int_t ngx_http_vodlms_upload_caption_label(ngx_str_t *in,
    ngx_str_t *out);
static ngx_int_t ngx_http_vodlms_upload_caption_flag(ngx_str_t *in,
    ngx_uint_t *out);


/*
 * The request's language, label and default flag, checked: a bad one is
 * the client's mistake (400), refused before the body is read.
 */

ngx_int_t
ngx_http_vodlms_upload_caption_values(ngx_http_request_t *r,
    ngx_http_vodlms_upload_caption_t *c, ngx_http_vodlms_err_e *err,
    ngx_str_t *detail)
{
    ngx_str_t                    v;
    ngx_http_vodlms_loc_conf_t  *vlcf;

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);

    if (ngx_http_complex_value(r, vlcf->upload.caption_lang, &v) != NGX_OK) {
        return NGX_ERROR;
    }

    c->lang.data = ngx_pnalloc(r->pool, v.len);
    if (c->lang.data == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_vodlms_upload_caption_lang(&v, c->lang.data) != NGX_OK) {
        *err = NGX_HTTP_VODLMS_BAD_CAPTION_LANG;
        ngx_str_set(detail, "want 2-3 letters, then up to 3 subtags of 1-8 "
                            "letters or digits, joined by \"-\"");
        return NGX_DECLINED;
    }

    c->lang.len = v.len;

    ngx_str_null(&v);

    if (vlcf->upload.caption_label
        && ngx_http_complex_value(r, vlcf->upload.caption_label, &v)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (v.len == 0) {
        c->label = c->lang;

    } else {
        c->label.data = ngx_pnalloc(r->pool, v.len);
        if (c->label.data == NULL) {
            return NGX_ERROR;
        }

        if (ngx_http_vodlms_upload_caption_label(&v, &c->label) != NGX_OK) {
            *err = NGX_HTTP_VODLMS_BAD_CAPTION_LABEL;
            ngx_str_set(detail, "want 1-64 bytes of UTF-8, percent-encoded, "
                                "without control characters or '\"'");
            return NGX_DECLINED;
        }
    }

    ngx_str_null(&v);

    if (vlcf->upload.caption_default
        && ngx_http_complex_value(r, vlcf->upload.caption_default, &v)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_vodlms_upload_caption_flag(&v, &c->is_default) != NGX_OK) {
        *err = NGX_HTTP_VODLMS_BAD_CAPTION_DEFAULT;
        ngx_str_set(detail, "want 1, true, yes, on, 0, false, no or off");
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * A BCP 47 language tag as HLS players match it: 2-3 letters, then up to 3
 * subtags of 1-8 letters or digits.  Written in the canonical case (the
 * language lower, a 4-letter script Title, a 2-letter region upper, the
 * rest lower): "EN-us" is "en-US", "zh-hans" is "zh-Hans".  Same length.
 */

static ngx_int_t
ngx_http_vodlms_upload_caption_lang(ngx_str_t *in, u_char *out)
{
    size_t      i, j, start, n;
    u_char      c;
    ngx_uint_t  subtags;

    if (in->len == 0 || in->len > NGX_HTTP_VODLMS_CAPTION_LANG_MAX) {
        return NGX_DECLINED;
    }

    subtags = 0;
    start = 0;

    for (i = 0; i <= in->len; i++) {

        if (i < in->len && in->data[i] != '-') {
            continue;
        }

        n = i - start;

        if (subtags == 0 ? n < 2 || n > 3 : n < 1 || n > 8) {
            return NGX_DECLINED;
        }

        if (++subtags > 4) {
            return NGX_DECLINED;
        }

        for (j = start; j < i; j++) {
            c = in->data[j];

            if (c >= 'A' && c <= 'Z') {
                c |= 0x20;

            } else if (!(c >= 'a' && c <= 'z')
                       && !(subtags > 1 && c >= '0' && c <= '9'))
            {
                return NGX_DECLINED;
            }

            /* now lower case: a region upper, a script's first letter */
            if (subtags > 1 && (n == 2 || (n == 4 && j == start))) {
                c = ngx_toupper(c);
            }

            out[j] = c;
        }

        if (i < in->len) {
            out[i] = '-';
        }

        start = i + 1;
    }

    return NGX_OK;
}


/*
 * The label players show in their caption menu (the HLS NAME): from the
 * query string, so percent-decoded with "+" a space; then 1-64 bytes of
 * well-formed UTF-8 with no '"' (it is a quoted HLS attribute) and no
 * control character (C0, DEL, C1, and the line and paragraph separators:
 * what PostgreSQL's [:cntrl:] also refuses).  out->data has in->len bytes.
 */

static ngx_int_t
ngx_http_vodlms_upload_caption_label(ngx_str_t *in, ngx_str_t *out)
{
    u_char    *p, *q, *last, c;
    ngx_int_t  hi, lo;

    q = out->data;
    last = in->data + in->len;

    for (p = in->data; p < last; p++) {
        c = *p;

        if (c == '+') {
            c = ' ';

        } else if (c == '%') {
            if (last - p < 3) {
                return NGX_DECLINED;
            }

            hi = ngx_hextoi(p + 1, 1);
            lo = ngx_hextoi(p + 2, 1);

            if (hi == NGX_ERROR || lo == NGX_ERROR) {
                return NGX_DECLINED;
            }

            c = (u_char) (hi * 16 + lo);
            p += 2;
        }

        *q++ = c;
    }

    out->len = q - out->data;

    if (out->len == 0 || out->len > NGX_HTTP_VODLMS_CAPTION_LABEL_MAX
        || !vodlms_utf8_valid((const char *) out->data, out->len))
    {
        return NGX_DECLINED;
    }

    last = out->data + out->len;

    for (p = out->data; p < last; p++) {
        c = *p;

        if (c < 0x20 || c == 0x7f || c == '"') {
            return NGX_DECLINED;
        }

        /* U+0080-U+009F; U+2028, U+2029 (well-formed: the bytes exist) */
        if ((c == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
            || (c == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)))
        {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/* absent, empty, 0, false, no, off; or 1, true, yes, on (any case) */

static ngx_int_t
ngx_http_vodlms_upload_caption_flag(ngx_str_t *in, ngx_uint_t *out)
{
    ngx_uint_t  i;

    static ngx_str_t  no[] = {
        ngx_string("0"), ngx_string("false"), ngx_string("no"),
        ngx_string("off")
    };

    static ngx_str_t  yes[] = {
        ngx_string("1"), ngx_string("true"), ngx_string("yes"),
        ngx_string("on")
    };

    if (in->len == 0) {
        *out = 0;
        return NGX_OK;
    }

    for (i = 0; i < sizeof(no) / sizeof(ngx_str_t); i++) {
        if (in->len == no[i].len
            && ngx_strncasecmp(in->data, no[i].data, in->len) == 0)
        {
            *out = 0;
            return NGX_OK;
        }

        if (in->len == yes[i].len
            && ngx_strncasecmp(in->data, yes[i].data, in->len) == 0)
        {
            *out = 1;
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


/* the merge's share: called for every location, captions mode or not */

char *
ngx_http_vodlms_upload_caption_merge(ngx_conf_t *cf,
    ngx_http_vodlms_upload_conf_t *conf)
{
    ngx_http_vodlms_main_conf_t  *vmcf;

    if (conf->enable != NGX_HTTP_VODLMS_UPLOAD_CAPTIONS) {
        if (conf->caption_lang != NULL) {
            ngx_http_vodlms_merge_error(cf,
                                        "\"vodlms_upload_caption\" needs "
                                        "\"vodlms_upload captions\"");
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    if (conf->caption_lang == NULL) {
        ngx_http_vodlms_merge_error(cf,
                                    "\"vodlms_upload captions\" needs "
                                    "\"vodlms_upload_caption\" (the "
                                    "language, e.g. from the location's "
                                    "regex)");
        return NGX_CONF_ERROR;
    }

    vmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_vodlms_module);

    /* vodlms's own video_captions table, in vodlms_pg_schema: once */
    if (vmcf->upload.caption_row.len == 0
        && (ngx_http_vodlms_sql_in_schema(cf,
                                          &ngx_http_vodlms_upload_caption_sql,
                                          &vmcf->upload.caption_row)
            != NGX_OK
            || ngx_http_vodlms_sql_in_schema(cf,
                                     &ngx_http_vodlms_upload_caption_undo_new,
                                     &vmcf->upload.caption_undo_new)
               != NGX_OK
            || ngx_http_vodlms_sql_in_schema(cf,
                                     &ngx_http_vodlms_upload_caption_undo_old,
                                     &vmcf->upload.caption_undo_old)
               != NGX_OK))
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* vodlms_upload_caption lang [label=value] [default=value]; */

char *
ngx_http_vodlms_upload_caption(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_vodlms_loc_conf_t  *vlcf = conf;

    ngx_str_t                          *value, v;
    ngx_uint_t                          i;
    ngx_http_complex_value_t          **cvp;
    ngx_http_compile_complex_value_t    ccv;

    if (vlcf->upload.caption_lang != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        v = value[i];

        if (i == 1) {
            cvp = &vlcf->upload.caption_lang;

        } else if (ngx_strncmp(v.data, "label=", 6) == 0
                   && vlcf->upload.caption_label == NULL)
        {
            cvp = &vlcf->upload.caption_label;
            v.data += 6;
            v.len -= 6;

        } else if (ngx_strncmp(v.data, "default=", 8) == 0
                   && vlcf->upload.caption_default == NULL)
        {
            cvp = &vlcf->upload.caption_default;
            v.data += 8;
            v.len -= 8;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid \"%V\" parameter \"%V\" (lang, then "
                               "label=VALUE and default=VALUE, each once)",
                               &cmd->name, &value[i]);
            return NGX_CONF_ERROR;
        }

        if (v.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "empty \"%V\" parameter \"%V\"",
                               &cmd->name, &value[i]);
            return NGX_CONF_ERROR;
        }

        *cvp = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
        if (*cvp == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

        ccv.cf = cf;
        ccv.value = &v;
        ccv.complex_value = *cvp;

        if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}
