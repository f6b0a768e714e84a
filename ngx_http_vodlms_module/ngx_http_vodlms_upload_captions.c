/*
 * Caption upload ("vodlms_upload captions" with vodlms_upload_caption): an
 * instructor's WebVTT or SRT file for one language of a video.
 *
 * The upload itself is the video upload's (ngx_http_vodlms_upload.c): the
 * same gate, quota, spool, job stream and compensation.  This file holds
 * what differs: the language, label and default flag of the request,
 * checked before a byte of the body is read (nginx never parses the file:
 * the helper validates it; the checks themselves are the pure
 * core/vodlms_caption.c), and the video_captions statements.
 *
 * The row keeps two things apart (sql/migrations/0012): the last upload
 * (status, source_location, error, requested_at), which is all this writes,
 * and what is published (label, is_default, vtt, revision), which only the
 * helper changes.  A DELETE (the removal of a language) is a job too: it
 * marks the row's last upload with a marker in place of a file, and the
 * helper deletes the row and rewrites the master.  So replacing a language keeps its published captions
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
 *
 * `old` is read in the statement's snapshot: of two first uploads of one
 * language at the same moment, the second may not see the row the first
 * inserted.  If the second then cannot queue its job, its compensation
 * deletes that row; the first one's job was superseded by the second's file
 * already (the row names the newest source), so only its label is lost.
 * The video upload has the same window.
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


/*
 * DELETE: the removal of a language.  $1 video, $2 course, $3 lang, $4 the
 * removal's marker ("delete:<video>-<msec>-<pid>-<conn>", never a path).
 *
 * Only the last-upload columns change, and only on an existing row of a
 * video of this course: the helper's job then deletes the row and
 * rewrites the master (the published columns keep playing until then).
 * Returns the previous last-upload state (for the compensation), whether
 * a row was written, whether the video exists at all and whether it is
 * this course's (so that "no such language" is said only to its course).
 */
static ngx_str_t  ngx_http_vodlms_upload_caption_remove_sql = ngx_string(
    "WITH v AS (SELECT id FROM vodlms.videos"
    "  WHERE id = $1::text AND course_id = $2::text),"
    " old AS (SELECT status, source_location, error,"
    "  requested_at::text AS requested"
    "  FROM vodlms.video_captions"
    "  WHERE video_id = $1::text AND lang = $3::text),"
    " up AS (UPDATE vodlms.video_captions AS c SET status = 'queued',"
    "   source_location = $4::text, error = NULL, requested_at = now()"
    "  FROM v WHERE c.video_id = v.id AND c.lang = $3::text"
    "  RETURNING 1)"
    " SELECT old.status, old.source_location, old.error, old.requested,"
    "  (SELECT count(*) FROM up),"
    "  (SELECT count(*) FROM vodlms.videos WHERE id = $1::text),"
    "  (SELECT count(*) FROM v)"
    " FROM (SELECT 1) AS one LEFT JOIN old ON true");


/*
 * The request's language, canonical: a bad one is the client's mistake
 * (400), refused before anything is read or written.
 */

ngx_int_t
ngx_http_vodlms_upload_caption_lang(ngx_http_request_t *r,
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

    /* the canonical case, in place of the request's (vodlms_caption.c) */
    if (vodlms_caption_lang((char *) v.data, v.len, (char *) c->lang.data)
        != VODLMS_OK)
    {
        *err = NGX_HTTP_VODLMS_BAD_CAPTION_LANG;
        ngx_str_set(detail, "want 2-3 letters, then up to 3 subtags of 1-8 "
                            "letters or digits, joined by \"-\"");
        return NGX_DECLINED;
    }

    c->lang.len = v.len;

    return NGX_OK;
}


/*
 * The request's language, label and default flag, checked: a bad one is
 * the client's mistake (400), refused before the body is read.
 */

ngx_int_t
ngx_http_vodlms_upload_caption_values(ngx_http_request_t *r,
    ngx_http_vodlms_upload_caption_t *c, ngx_http_vodlms_err_e *err,
    ngx_str_t *detail)
{
    int                          flag;
    ngx_int_t                    rc;
    ngx_str_t                    v;
    ngx_http_vodlms_loc_conf_t  *vlcf;

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);

    rc = ngx_http_vodlms_upload_caption_lang(r, c, err, detail);
    if (rc != NGX_OK) {
        return rc;
    }

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

        if (vodlms_caption_label((char *) v.data, v.len,
                                 (char *) c->label.data, &c->label.len)
            != VODLMS_OK)
        {
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

    flag = vodlms_caption_flag((char *) v.data, v.len);

    if (flag < 0) {
        *err = NGX_HTTP_VODLMS_BAD_CAPTION_DEFAULT;
        ngx_str_set(detail, "want 1, true, yes, on, 0, false, no or off");
        return NGX_DECLINED;
    }

    c->is_default = flag;

    return NGX_OK;
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
               != NGX_OK
            || ngx_http_vodlms_sql_in_schema(cf,
                                  &ngx_http_vodlms_upload_caption_remove_sql,
                                  &vmcf->upload.caption_remove)
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
