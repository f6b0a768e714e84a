/*
 * The enrollment check (access phase, after the session gate).
 *
 * One parameterised query per request, through a prepared statement on a
 * pooled non-blocking PostgreSQL connection (the replica's when one is
 * configured; the primary's when the replica cannot serve it).  Request
 * values only ever travel as parameters.  The answer:
 *   no row                   -> 404 video_not_found (or 403, see no_row)
 *   a value the query's cast
 *   cannot take (22P02...)   -> the same as no row, at info
 *   a row, "allowed" false   -> 403 not_enrolled
 *   a row, "status" != ready -> 409 video_not_ready, with the status
 *                               (in a vodlms_hls_key location, "queued" and
 *                               "processing" pass: a re-encode's viewers
 *                               need the playing version's keys)
 *   otherwise                -> allowed; columns become $vodlms_video_<name>
 * With no_row 404, "no row" is cached per video id for every user; a query
 * that has to go out first passes the user's vodlms_user_query_limit.
 */

#include "ngx_http_vodlms_module.h"


/*
 * The default query matches sql/: one row per existing video, whether or
 * not the user may watch it, so 404, 403 and 409 come apart.  Instructors
 * of the course and admins are allowed too.
 */
static ngx_str_t  ngx_http_vodlms_default_query = ngx_string(
    "SELECT v.id, v.course_id, v.title, v.duration_seconds, v.status,"
    " v.progress_percent, v.storage_prefix,"
    " CASE WHEN e.user_id IS NULL THEN 'none'"
    "  WHEN e.status = 'active' AND e.expires_at <= now() THEN 'expired'"
    "  ELSE e.status END AS enrollment_status,"
    " (coalesce(e.status = 'active'"
    "    AND (e.expires_at IS NULL OR e.expires_at > now()), false)"
    "  OR ci.user_id IS NOT NULL OR coalesce(u.role = 'admin', false))"
    "  AS allowed,"
    " coalesce(wp.position_seconds, 0) AS resume_position,"
    " coalesce(wp.max_position_seconds, 0) AS resume_max_position,"
    " coalesce(wp.played_seconds, 0) AS resume_played_seconds,"
    " (wp.completed_at IS NOT NULL) AS resume_completed,"
    " coalesce(vodlms.coverage_hex(wp.coverage), '') AS resume_coverage"
    " FROM vodlms.videos v"
    " LEFT JOIN vodlms.enrollments e ON e.course_id = v.course_id"
    "  AND e.user_id = $2::text"
    " LEFT JOIN vodlms.course_instructors ci ON ci.course_id = v.course_id"
    "  AND ci.user_id = $2::text"
    " LEFT JOIN vodlms.users u ON u.id = $2::text"
    " LEFT JOIN vodlms.watch_progress wp ON wp.video_id = v.id"
    "  AND wp.user_id = $2::text"
    " WHERE v.id = $1::text");


ngx_conf_enum_t  ngx_http_vodlms_no_row_codes[] = {
    { ngx_string("404"), NGX_HTTP_NOT_FOUND },
    { ngx_string("403"), NGX_HTTP_FORBIDDEN },
    { ngx_null_string, 0 }
};


/* vodlms_video_id_type: the integer's bits, 0 for text (no check) */
ngx_conf_enum_t  ngx_http_vodlms_video_id_types[] = {
    { ngx_string("text"), 0 },
    { ngx_string("int"), 32 },
    { ngx_string("bigint"), 64 },
    { ngx_null_string, 0 }
};


#define NGX_HTTP_VODLMS_ENROLL_NO_ROW  'N'
#define NGX_HTTP_VODLMS_ENROLL_ROW     'R'


static ngx_uint_t ngx_http_vodlms_enroll_param_is(
    ngx_http_complex_value_t *cv, char *name);
static ngx_uint_t ngx_http_vodlms_enroll_builtin(
    ngx_http_vodlms_enroll_conf_t *conf, ngx_str_t *builtin);
static ngx_uint_t ngx_http_vodlms_enroll_video_only(
    ngx_http_vodlms_enroll_conf_t *conf);
static ngx_uint_t ngx_http_vodlms_enroll_encoding_key(ngx_http_request_t *r,
    ngx_str_t *status);
static ngx_int_t ngx_http_vodlms_enroll_decide(ngx_http_request_t *r,
    ngx_http_vodlms_enroll_conf_t *ecf, ngx_http_vodlms_enroll_ctx_t *ectx);
static void ngx_http_vodlms_enroll_done(void *data,
    ngx_vodlms_pg_status_e status, PGresult *res, const char *reason);
static ngx_int_t ngx_http_vodlms_enroll_key(ngx_http_request_t *r,
    ngx_http_vodlms_enroll_conf_t *ecf, ngx_str_t *values, ngx_uint_t n,
    ngx_str_t *key);
static void ngx_http_vodlms_enroll_cache_store(ngx_http_request_t *r,
    ngx_http_vodlms_enroll_conf_t *ecf, ngx_http_vodlms_enroll_ctx_t *ectx,
    ngx_str_t *key);
static ngx_int_t ngx_http_vodlms_enroll_cache_fetch(ngx_http_request_t *r,
    ngx_http_vodlms_enroll_conf_t *ecf, ngx_http_vodlms_enroll_ctx_t *ectx,
    ngx_str_t *key);
static void ngx_http_vodlms_enroll_set_detail(ngx_http_request_t *r,
    ngx_http_vodlms_enroll_ctx_t *ectx, const char *what, ngx_str_t *s);
static ngx_uint_t ngx_http_vodlms_enroll_cast_error(PGresult *res,
    u_char *sqlstate);


ngx_int_t
ngx_http_vodlms_video_id_valid(ngx_str_t *id)
{
    /* the same rule as the database's vodlms_id domain: URL- and key-safe */
    return vodlms_id_valid((char *) id->data, id->len,
                           NGX_HTTP_VODLMS_VIDEO_ID_MAX);
}


ngx_int_t
ngx_http_vodlms_enroll_handler(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    ngx_str_t                       *values, key, none;
    ngx_uint_t                       i, n;
    const char                      *reason;
    ngx_vodlms_pg_pool_t            *pool;
    ngx_vodlms_pg_status_e           status;
    ngx_http_vodlms_ctx_t           *ctx;
    ngx_http_complex_value_t        *cv;
    ngx_http_vodlms_loc_conf_t      *vlcf;
    ngx_http_vodlms_main_conf_t     *vmcf;
    ngx_http_vodlms_enroll_ctx_t    *ectx;
    ngx_http_vodlms_enroll_conf_t   *ecf;

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);
    ecf = &vlcf->enroll;

    if (!ecf->enable) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_vodlms_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ectx = &ctx->enroll;

    switch (ectx->state) {

    case NGX_HTTP_VODLMS_ENROLL_PENDING:
        return NGX_AGAIN;

    case NGX_HTTP_VODLMS_ENROLL_DONE:
        return ngx_http_vodlms_enroll_decide(r, ecf, ectx);

    default: /* NGX_HTTP_VODLMS_ENROLL_NEW */
        break;
    }

    ectx->state = NGX_HTTP_VODLMS_ENROLL_DONE;

    /* a hostile id never reaches the database */

    if (ngx_http_complex_value(r, ecf->video_id, &ectx->video_id) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!ngx_http_vodlms_video_id_valid(&ectx->video_id)) {
        ectx->result = NGX_HTTP_VODLMS_BAD_VIDEO_ID;
        ngx_str_set(&none, "not 1-64 of [A-Za-z0-9_-]");
        ngx_http_vodlms_enroll_set_detail(r, ectx, "video id", &none);
        return ngx_http_vodlms_enroll_decide(r, ecf, ectx);
    }

    if (ecf->video_id_type
        && !vodlms_id_integer_valid((char *) ectx->video_id.data,
                                    ectx->video_id.len, ecf->video_id_type))
    {
        /* "abc" or 99999999999 for an int key: no such video, no query */
        ectx->result = NGX_HTTP_VODLMS_VIDEO_NOT_FOUND;
        ngx_http_vodlms_enroll_set_detail(r, ectx,
                                          ecf->video_id_type == 32
                                          ? "video id not an int:"
                                          : "video id not a bigint:",
                                          &ectx->video_id);
        return ngx_http_vodlms_enroll_decide(r, ecf, ectx);
    }

    n = ecf->params->nelts;
    cv = ecf->params->elts;

    values = ngx_pcalloc(r->pool, n * sizeof(ngx_str_t));
    if (values == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < n; i++) {
        if (ngx_http_complex_value(r, &cv[i], &values[i]) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (ecf->cache) {
        if (ngx_http_vodlms_enroll_key(r, ecf, values, n, &key) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        /* "no such video" is the same answer for every user: asked first */
        if (ngx_http_vodlms_enroll_cache_fetch(r, ecf, ectx, NULL) == NGX_OK
            || ngx_http_vodlms_enroll_cache_fetch(r, ecf, ectx, &key)
               == NGX_OK)
        {
            ectx->cache_status = "HIT";
            return ngx_http_vodlms_enroll_decide(r, ecf, ectx);
        }

        ectx->cache_status = "MISS";
    }

    /*
     * Only a query that goes out counts against the user's rate.  A
     * refusal has answered (and maybe freed) the request: set first.
     */
    ectx->result = NGX_HTTP_VODLMS_TOO_MANY_QUERIES;

    rc = ngx_http_vodlms_limit_query(r, &ctx->session.user_id);
    if (rc != NGX_OK) {
        return rc;
    }

    ectx->result = NGX_HTTP_VODLMS_OK;

    vmcf = ngx_http_get_module_main_conf(r, ngx_http_vodlms_module);
    pool = vmcf->pg_replica_pool ? vmcf->pg_replica_pool : vmcf->pg_pool;

    rc = ngx_vodlms_pg_query(pool, r->pool, r->connection->log, ecf->stmt,
                             values, n, ngx_http_vodlms_enroll_done, r,
                             &status, &reason);

    if (rc == NGX_OK) {
        ectx->state = NGX_HTTP_VODLMS_ENROLL_PENDING;
        return NGX_AGAIN;
    }

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ectx->result = (status == NGX_VODLMS_PG_TIMEOUT)
                   ? NGX_HTTP_VODLMS_DB_TIMEOUT : NGX_HTTP_VODLMS_DB_DOWN;
    none.data = (u_char *) reason;
    none.len = ngx_strlen(reason);
    ngx_http_vodlms_enroll_set_detail(r, ectx, NULL, &none);

    return ngx_http_vodlms_enroll_decide(r, ecf, ectx);
}


static void
ngx_http_vodlms_enroll_done(void *data, ngx_vodlms_pg_status_e status,
    PGresult *res, const char *reason)
{
    ngx_http_request_t  *r = data;

    int                              i, ncols;
    ngx_str_t                        s, key, *values;
    ngx_uint_t                       j, n;
    ngx_http_vodlms_ctx_t           *ctx;
    ngx_http_complex_value_t        *cv;
    ngx_http_vodlms_column_t        *col;
    ngx_http_vodlms_loc_conf_t      *vlcf;
    ngx_http_vodlms_enroll_ctx_t    *ectx;
    ngx_http_vodlms_enroll_conf_t   *ecf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_vodlms_module);
    ectx = &ctx->enroll;
    ectx->state = NGX_HTTP_VODLMS_ENROLL_DONE;

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);
    ecf = &vlcf->enroll;

    if (status == NGX_VODLMS_PG_REFUSED
        && ngx_http_vodlms_enroll_cast_error(res, ectx->sqlstate))
    {
        /*
         * "abc" or 99999999999 for $1::int: a value the query cannot even
         * take names no row.  The client's doing, answered as no row (not
         * cached: the database stays the judge of its own types).
         */
        ectx->result = NGX_HTTP_VODLMS_OK;
        ectx->columns = NULL;
        goto wake;
    }

    if (status != NGX_VODLMS_PG_OK || res == NULL) {
        /* a refused statement is the operator's SQL: 500, not an outage */
        ectx->result = (status == NGX_VODLMS_PG_TIMEOUT)
                       ? NGX_HTTP_VODLMS_DB_TIMEOUT
                       : (status == NGX_VODLMS_PG_REFUSED)
                       ? NGX_HTTP_VODLMS_INTERNAL : NGX_HTTP_VODLMS_DB_DOWN;
        s.data = (u_char *) (reason ? reason : "no result");
        s.len = ngx_strlen(s.data);
        ngx_http_vodlms_enroll_set_detail(r, ectx, NULL, &s);
        goto wake;
    }

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        /* the query itself failed: the operator's SQL, not the client */
        ectx->result = NGX_HTTP_VODLMS_INTERNAL;
        s.data = (u_char *) PQresultErrorMessage(res);
        s.len = ngx_strlen(s.data);
        while (s.len && (s.data[s.len - 1] == '\n' || s.data[s.len - 1] == ' '))
        {
            s.len--;
        }
        ngx_http_vodlms_enroll_set_detail(r, ectx, "enrollment query failed",
                                          &s);
        goto wake;
    }

    ectx->result = NGX_HTTP_VODLMS_OK;

    if (PQntuples(res) > 0) {
        ncols = PQnfields(res);

        ectx->columns = ngx_array_create(r->pool, ncols ? ncols : 1,
                                         sizeof(ngx_http_vodlms_column_t));
        if (ectx->columns == NULL) {
            ectx->result = NGX_HTTP_VODLMS_INTERNAL;
            goto wake;
        }

        for (i = 0; i < ncols; i++) {
            col = ngx_array_push(ectx->columns);
            if (col == NULL) {
                ectx->result = NGX_HTTP_VODLMS_INTERNAL;
                goto wake;
            }

            s.data = (u_char *) PQfname(res, i);
            s.len = ngx_strlen(s.data);
            col->name.data = ngx_pstrdup(r->pool, &s);
            col->name.len = s.len;

            col->null = PQgetisnull(res, 0, i) ? 1 : 0;
            s.data = (u_char *) PQgetvalue(res, 0, i);
            s.len = PQgetlength(res, 0, i);
            col->value.len = s.len;
            col->value.data = s.len ? ngx_pstrdup(r->pool, &s)
                                    : (u_char *) "";

            if (col->name.data == NULL || col->value.data == NULL) {
                ectx->result = NGX_HTTP_VODLMS_INTERNAL;
                goto wake;
            }
        }
    }

    if (ecf->cache) {
        /* the parameters again, as the key: cheap next to a round trip */
        n = ecf->params->nelts;
        cv = ecf->params->elts;
        values = ngx_pcalloc(r->pool, n * sizeof(ngx_str_t));

        if (values != NULL) {
            for (j = 0; j < n; j++) {
                if (ngx_http_complex_value(r, &cv[j], &values[j]) != NGX_OK) {
                    goto wake;
                }
            }

            if (ngx_http_vodlms_enroll_key(r, ecf, values, n, &key) == NGX_OK)
            {
                ngx_http_vodlms_enroll_cache_store(r, ecf, ectx, &key);
            }
        }
    }

wake:

    ngx_http_vodlms_wake(r);
}


ngx_http_vodlms_column_t *
ngx_http_vodlms_enroll_column(ngx_http_request_t *r, u_char *name, size_t len)
{
    ngx_uint_t                 i;
    ngx_http_vodlms_ctx_t     *ctx;
    ngx_http_vodlms_column_t  *col;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_vodlms_module);

    if (ctx == NULL || ctx->enroll.columns == NULL) {
        return NULL;
    }

    col = ctx->enroll.columns->elts;

    for (i = 0; i < ctx->enroll.columns->nelts; i++) {
        if (col[i].name.len == len
            && ngx_strncmp(col[i].name.data, name, len) == 0)
        {
            return &col[i];
        }
    }

    return NULL;
}


/*
 * A key of encrypted HLS (vodlms_hls_key) for a video the helper is
 * encoding again (a re-upload: "queued", "processing"): the row still
 * names the version its viewers play, and with key rotation their players
 * need its next keys mid-lecture.  The keys of that version are served as
 * while it was ready; the playback location still answers 409, and any
 * other status (failed, or a schema's own "draft") still refuses the key.
 */

static ngx_uint_t
ngx_http_vodlms_enroll_encoding_key(ngx_http_request_t *r, ngx_str_t *status)
{
    ngx_http_vodlms_loc_conf_t  *vlcf;

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);

    if (vlcf->key.version == NULL) {
        return 0;
    }

    return (status->len == 6 && ngx_strncmp(status->data, "queued", 6) == 0)
           || (status->len == 10
               && ngx_strncmp(status->data, "processing", 10) == 0);
}


static ngx_int_t
ngx_http_vodlms_enroll_decide(ngx_http_request_t *r,
    ngx_http_vodlms_enroll_conf_t *ecf, ngx_http_vodlms_enroll_ctx_t *ectx)
{
    u_char                    *p;
    size_t                     len;
    ngx_str_t                  extra, quoted;
    ngx_http_vodlms_column_t  *allowed, *status, *progress, *why;

    if (ectx->result != NGX_HTTP_VODLMS_OK) {
        return ngx_http_vodlms_deny(r, ectx->result, &ectx->detail);
    }

    if (ectx->columns == NULL) {
        ectx->result = (ecf->no_row == NGX_HTTP_FORBIDDEN)
                       ? NGX_HTTP_VODLMS_NOT_ENROLLED
                       : NGX_HTTP_VODLMS_VIDEO_NOT_FOUND;

        if (ectx->sqlstate[0] == '\0') {
            ngx_http_vodlms_enroll_set_detail(r, ectx, "video",
                                              &ectx->video_id);
            return ngx_http_vodlms_deny(r, ectx->result, &ectx->detail);
        }

        /* the query's cast refused a value: say which error it was */
        len = ngx_min(ectx->video_id.len, 200);

        p = ngx_pnalloc(r->pool, len + sizeof("video \"\", a value the "
                                              "query cannot take (SQLSTATE "
                                              "12345)") - 1);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ectx->detail.data = p;
        p = ngx_sprintf(p, "video \"%*s\", a value the query cannot take "
                        "(SQLSTATE %s)", len, ectx->video_id.data,
                        ectx->sqlstate);
        ectx->detail.len = p - ectx->detail.data;

        return ngx_http_vodlms_deny(r, ectx->result, &ectx->detail);
    }

    allowed = ngx_http_vodlms_enroll_col(r, NGX_HTTP_VODLMS_COL_ALLOWED);

    if (allowed && (allowed->null || allowed->value.len != 1
                    || allowed->value.data[0] != 't'))
    {
        ectx->result = NGX_HTTP_VODLMS_NOT_ENROLLED;

        why = ngx_http_vodlms_enroll_col(r,
                                         NGX_HTTP_VODLMS_COL_ENROLLMENT_STATUS);
        ngx_http_vodlms_enroll_set_detail(r, ectx,
                                          why ? "enrollment" : "video",
                                          why ? &why->value : &ectx->video_id);

        return ngx_http_vodlms_deny(r, ectx->result, &ectx->detail);
    }

    status = ngx_http_vodlms_enroll_col(r, NGX_HTTP_VODLMS_COL_STATUS);

    if (status && !status->null
        && !(status->value.len == 5
             && ngx_strncmp(status->value.data, "ready", 5) == 0)
        && !ngx_http_vodlms_enroll_encoding_key(r, &status->value))
    {
        ectx->result = NGX_HTTP_VODLMS_VIDEO_NOT_READY;

        /* statuses are the schema's own words; quoted properly all the same */
        if (ngx_http_vodlms_json_quote(r->pool, &status->value, &quoted)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        progress = ngx_http_vodlms_enroll_col(r,
                                         NGX_HTTP_VODLMS_COL_PROGRESS_PERCENT);
        if (progress
            && (progress->null || !ngx_http_vodlms_is_number(&progress->value)))
        {
            progress = NULL;
        }

        len = sizeof(",\"status\":,\"progress\":") - 1 + quoted.len
              + (progress ? progress->value.len : 0);

        extra.data = ngx_pnalloc(r->pool, len);
        if (extra.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = ngx_sprintf(extra.data, ",\"status\":%V", &quoted);
        if (progress) {
            p = ngx_sprintf(p, ",\"progress\":%V", &progress->value);
        }
        extra.len = p - extra.data;

        ngx_http_vodlms_enroll_set_detail(r, ectx, "status", &status->value);

        return ngx_http_vodlms_deny_extra(r, ectx->result, &ectx->detail,
                                          &extra);
    }

    return NGX_OK;
}


/* cache: "N" (no row) or "R" then per column: flags, name\0, len, value */

static ngx_int_t
ngx_http_vodlms_enroll_key(ngx_http_request_t *r,
    ngx_http_vodlms_enroll_conf_t *ecf, ngx_str_t *values, ngx_uint_t n,
    ngx_str_t *key)
{
    u_char      *p;
    size_t       len;
    ngx_uint_t   i;

    len = 0;
    for (i = 0; i < n; i++) {
        len += values[i].len + 1;
    }

    key->data = ngx_pnalloc(r->pool, len + 1);
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    /* NUL-separated: ("a", "bc") and ("ab", "c") are different keys */
    p = key->data;
    for (i = 0; i < n; i++) {
        p = ngx_cpymem(p, values[i].data, values[i].len);
        *p++ = '\0';
    }

    key->len = p - key->data;

    return NGX_OK;
}


static void
ngx_http_vodlms_enroll_cache_store(ngx_http_request_t *r,
    ngx_http_vodlms_enroll_conf_t *ecf, ngx_http_vodlms_enroll_ctx_t *ectx,
    ngx_str_t *key)
{
    u_char                    *p, *last;
    ngx_uint_t                 i;
    ngx_http_vodlms_column_t  *col, *allowed;

    u_char  buf[NGX_VODLMS_CACHE_VALUE_MAX];

    if (ectx->result != NGX_HTTP_VODLMS_OK) {
        return;
    }

    if (ectx->columns == NULL) {
        buf[0] = NGX_HTTP_VODLMS_ENROLL_NO_ROW;

        /* no_row 404: no row means no such video, for anyone (see merge) */
        if (ecf->video_ns.len) {
            (void) ngx_vodlms_shm_cache_put_negative(ecf->cache,
                                                     r->connection->log,
                                                     &ecf->video_ns,
                                                     &ectx->video_id, buf, 1,
                                                     ecf->cache_invalid);
            return;
        }

        (void) ngx_vodlms_shm_cache_put_negative(ecf->cache,
                                                 r->connection->log,
                                                 &ecf->cache_ns, key, buf, 1,
                                                 ecf->cache_invalid);
        return;
    }

    p = buf;
    last = buf + sizeof(buf);
    *p++ = NGX_HTTP_VODLMS_ENROLL_ROW;

    col = ectx->columns->elts;

    for (i = 0; i < ectx->columns->nelts; i++) {
        if ((size_t) (last - p) < 1 + col[i].name.len + 1 + 2
                                  + col[i].value.len
            || col[i].name.len > 255 || col[i].value.len > 0xffff)
        {
            return;   /* too big to cache: ask the database next time */
        }

        *p++ = col[i].null ? '0' : '1';
        p = ngx_cpymem(p, col[i].name.data, col[i].name.len);
        *p++ = '\0';
        *p++ = (u_char) (col[i].value.len >> 8);
        *p++ = (u_char) (col[i].value.len & 0xff);
        p = ngx_cpymem(p, col[i].value.data, col[i].value.len);
    }

    /* a refusal is cached as briefly as "no such video", and as one */
    allowed = ngx_http_vodlms_enroll_col(r, NGX_HTTP_VODLMS_COL_ALLOWED);

    if (allowed && (allowed->null || allowed->value.data[0] != 't')) {
        (void) ngx_vodlms_shm_cache_put_negative(ecf->cache,
                                                 r->connection->log,
                                                 &ecf->cache_ns, key, buf,
                                                 p - buf, ecf->cache_invalid);
        return;
    }

    (void) ngx_vodlms_shm_cache_put(ecf->cache, r->connection->log,
                                    &ecf->cache_ns, key, buf, p - buf,
                                    ecf->cache_valid);
}


static ngx_int_t
ngx_http_vodlms_enroll_cache_fetch(ngx_http_request_t *r,
    ngx_http_vodlms_enroll_conf_t *ecf, ngx_http_vodlms_enroll_ctx_t *ectx,
    ngx_str_t *key)
{
    u_char                    *p, *last, *name;
    size_t                     len, vlen;
    ngx_http_vodlms_column_t  *col;

    u_char  buf[NGX_VODLMS_CACHE_VALUE_MAX];

    /* key NULL: the video's own entry, which only ever says "no row" */

    if (key == NULL) {
        if (ecf->video_ns.len == 0
            || ngx_vodlms_shm_cache_get(ecf->cache, r->connection->log,
                                        &ecf->video_ns, &ectx->video_id, buf,
                                        sizeof(buf), &len)
               != NGX_OK
            || len != 1 || buf[0] != NGX_HTTP_VODLMS_ENROLL_NO_ROW)
        {
            return NGX_DECLINED;
        }

        ectx->result = NGX_HTTP_VODLMS_OK;
        ectx->columns = NULL;

        return NGX_OK;
    }

    if (ngx_vodlms_shm_cache_get(ecf->cache, r->connection->log,
                                 &ecf->cache_ns, key, buf, sizeof(buf), &len)
        != NGX_OK
        || len == 0)
    {
        return NGX_DECLINED;
    }

    /*
     * One copy for the request; the columns point into it.  The NUL after
     * it keeps a look at value.data[0] of an empty last value in bounds.
     */

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return NGX_DECLINED;
    }

    ngx_memcpy(p, buf, len);
    p[len] = '\0';

    ectx->result = NGX_HTTP_VODLMS_OK;

    if (buf[0] == NGX_HTTP_VODLMS_ENROLL_NO_ROW) {
        return NGX_OK;
    }

    ectx->columns = ngx_array_create(r->pool, 8,
                                     sizeof(ngx_http_vodlms_column_t));
    if (ectx->columns == NULL) {
        return NGX_DECLINED;
    }

    last = p + len;
    p++;

    while (p < last) {
        col = ngx_array_push(ectx->columns);
        if (col == NULL) {
            return NGX_DECLINED;
        }

        col->null = (*p++ == '0');
        name = p;
        p = ngx_strlchr(p, last, '\0');

        if (p == NULL || last - p < 3) {
            ectx->columns = NULL;
            return NGX_DECLINED;
        }

        col->name.len = p - name;
        col->name.data = name;

        p++;
        vlen = (p[0] << 8) | p[1];
        p += 2;

        if ((size_t) (last - p) < vlen) {
            ectx->columns = NULL;
            return NGX_DECLINED;
        }

        col->value.len = vlen;
        col->value.data = p;
        p += vlen;
    }

    return NGX_OK;
}


static void
ngx_http_vodlms_enroll_set_detail(ngx_http_request_t *r,
    ngx_http_vodlms_enroll_ctx_t *ectx, const char *what, ngx_str_t *s)
{
    u_char  *p;
    size_t   len;

    /* "what "value"" or just the value; never longer than 200 bytes of it */
    len = ngx_min(s->len, 200);

    p = ngx_pnalloc(r->pool, len + (what ? ngx_strlen(what) + 3 : 0));
    if (p == NULL) {
        return;
    }

    ectx->detail.data = p;

    if (what) {
        p = ngx_sprintf(p, "%s \"%*s\"", what, len, s->data);
    } else {
        p = ngx_cpymem(p, s->data, len);
    }

    ectx->detail.len = p - ectx->detail.data;
}


/*
 * Is the refusal a cast of a parameter that failed, i.e. a value of the
 * request, not the query's own mistake?  22P02 invalid_text_representation
 * ("abc" as int), 22003 numeric_value_out_of_range (99999999999 as int),
 * 22007 invalid_datetime_format and 22008 datetime_field_overflow.  Other
 * class 22 errors (a division by zero...) stay the query's: 500.
 */
static ngx_uint_t
ngx_http_vodlms_enroll_cast_error(PGresult *res, u_char *sqlstate)
{
    char        *state;
    ngx_uint_t   i;

    static const char  *casts[] = { "22P02", "22003", "22007", "22008" };

    if (res == NULL) {
        return 0;
    }

    state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

    if (state == NULL || ngx_strlen(state) != 5) {
        return 0;
    }

    for (i = 0; i < sizeof(casts) / sizeof(casts[0]); i++) {
        if (ngx_strcmp(state, casts[i]) == 0) {
            ngx_memcpy(sqlstate, state, 6);
            return 1;
        }
    }

    return 0;
}


/* configuration */

void
ngx_http_vodlms_enroll_create_conf(ngx_http_vodlms_enroll_conf_t *ecf)
{
    ecf->enable = NGX_CONF_UNSET;
    ecf->video_id = NGX_CONF_UNSET_PTR;
    ecf->stmt = NGX_CONF_UNSET_PTR;
    ecf->params = NGX_CONF_UNSET_PTR;
    ecf->cache = NGX_CONF_UNSET_PTR;
    ecf->cache_valid = NGX_CONF_UNSET_MSEC;
    ecf->cache_invalid = NGX_CONF_UNSET_MSEC;
    ecf->no_row = NGX_CONF_UNSET_UINT;
    ecf->video_id_type = NGX_CONF_UNSET_UINT;
}


ngx_vodlms_pg_stmt_t *
ngx_http_vodlms_enroll_stmt(ngx_conf_t *cf, ngx_str_t *sql, ngx_uint_t n)
{
    ngx_uint_t                    i;
    ngx_vodlms_pg_stmt_t         *stmt;
    ngx_http_vodlms_main_conf_t  *vmcf;

    vmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_vodlms_module);

    /* one prepared statement per distinct query text */

    stmt = vmcf->pg_stmts.elts;
    for (i = 0; i < vmcf->pg_stmts.nelts; i++) {
        if (stmt[i].sql.len == sql->len
            && ngx_strncmp(stmt[i].sql.data, sql->data, sql->len) == 0)
        {
            return &stmt[i];
        }
    }

    if (vmcf->pg_stmts.nelts >= 100) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "too many distinct vodlms queries");
        return NULL;
    }

    stmt = ngx_array_push(&vmcf->pg_stmts);
    if (stmt == NULL) {
        return NULL;
    }

    stmt->name.data = ngx_pnalloc(cf->pool, sizeof("vodlms_q00"));
    if (stmt->name.data == NULL) {
        return NULL;
    }

    stmt->name.len = ngx_sprintf(stmt->name.data, "vodlms_q%ui%Z",
                                 vmcf->pg_stmts.nelts - 1)
                     - stmt->name.data - 1;

    /* libpq wants NUL-terminated SQL */
    stmt->sql.data = ngx_pnalloc(cf->pool, sql->len + 1);
    if (stmt->sql.data == NULL) {
        return NULL;
    }
    ngx_memcpy(stmt->sql.data, sql->data, sql->len);
    stmt->sql.data[sql->len] = '\0';
    stmt->sql.len = sql->len;
    stmt->nparams = n;

    return stmt;
}


static ngx_int_t
ngx_http_vodlms_compile(ngx_conf_t *cf, ngx_http_complex_value_t *cv,
    char *value)
{
    ngx_str_t                          v;
    ngx_http_compile_complex_value_t   ccv;

    v.data = (u_char *) value;
    v.len = ngx_strlen(value);

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));
    ccv.cf = cf;
    ccv.value = &v;
    ccv.complex_value = cv;

    return ngx_http_compile_complex_value(&ccv);
}


/* a parameter is exactly this variable */

static ngx_uint_t
ngx_http_vodlms_enroll_param_is(ngx_http_complex_value_t *cv, char *name)
{
    size_t  len;

    len = ngx_strlen(name);

    return cv->value.len == len
           && ngx_strncmp(cv->value.data, name, len) == 0;
}


/*
 * Does one of the query's values name the video of vodlms_video_id
 * ($vodlms_video_id, or the same text as vodlms_video_id's)?  The key
 * endpoint serves that video's keys: a query that asks about another
 * value (an argument, another capture) would admit one video and give
 * another's key.
 */

ngx_uint_t
ngx_http_vodlms_enroll_takes_video_id(ngx_http_vodlms_enroll_conf_t *conf)
{
    ngx_str_t                 *v;
    ngx_uint_t                 i;
    ngx_http_complex_value_t  *cv;

    if (conf->params == NULL || conf->video_id == NULL) {
        return 0;
    }

    cv = conf->params->elts;

    for (i = 0; i < conf->params->nelts; i++) {
        v = &cv[i].value;

        if (ngx_http_vodlms_enroll_param_is(&cv[i], "$vodlms_video_id")
            || (v->len == conf->video_id->value.len
                && ngx_strncmp(v->data, conf->video_id->value.data, v->len)
                   == 0))
        {
            return 1;
        }
    }

    return 0;
}


/* the built-in query with its own parameters (video, user) */

static ngx_uint_t
ngx_http_vodlms_enroll_builtin(ngx_http_vodlms_enroll_conf_t *conf,
    ngx_str_t *builtin)
{
    ngx_http_complex_value_t  *cv;

    if (builtin->len == 0
        || conf->stmt->sql.len != builtin->len
        || ngx_strncmp(conf->stmt->sql.data, builtin->data, builtin->len) != 0
        || conf->params == NULL || conf->params->nelts != 2)
    {
        return 0;
    }

    cv = conf->params->elts;

    return ngx_http_vodlms_enroll_param_is(&cv[0], "$vodlms_video_id")
           && ngx_http_vodlms_enroll_param_is(&cv[1], "$vodlms_user_id");
}


/* the statement's one parameter is the video id (nothing else can vary) */

static ngx_uint_t
ngx_http_vodlms_enroll_video_only(ngx_http_vodlms_enroll_conf_t *conf)
{
    ngx_str_t                 *v;
    ngx_http_complex_value_t  *cv;

    if (conf->params == NULL || conf->params->nelts != 1) {
        return 0;
    }

    cv = conf->params->elts;
    v = &cv[0].value;

    return ngx_http_vodlms_enroll_param_is(&cv[0], "$vodlms_video_id")
           || (v->len == conf->video_id->value.len
               && ngx_strncmp(v->data, conf->video_id->value.data, v->len)
                  == 0);
}


char *
ngx_http_vodlms_enroll_merge_conf(ngx_conf_t *cf,
    ngx_http_vodlms_enroll_conf_t *prev, ngx_http_vodlms_enroll_conf_t *conf)
{
    u_char                          *p;
    ngx_http_complex_value_t        *cv;
    ngx_http_vodlms_loc_conf_t      *vlcf;
    ngx_http_vodlms_main_conf_t     *vmcf;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_ptr_value(conf->video_id, prev->video_id, NULL);
    ngx_conf_merge_ptr_value(conf->cache, prev->cache, NULL);
    ngx_conf_merge_msec_value(conf->cache_valid, prev->cache_valid, 30000);
    ngx_conf_merge_msec_value(conf->cache_invalid, prev->cache_invalid,
                              5000);
    ngx_conf_merge_uint_value(conf->no_row, prev->no_row, NGX_HTTP_NOT_FOUND);
    ngx_conf_merge_uint_value(conf->video_id_type, prev->video_id_type, 0);

    if (conf->stmt == NGX_CONF_UNSET_PTR) {
        conf->stmt = prev->stmt;
        conf->params = prev->params;
    }

    if (!conf->enable) {
        if (conf->stmt == NGX_CONF_UNSET_PTR) {
            conf->stmt = NULL;
            conf->params = NULL;
        }
        return NGX_CONF_OK;
    }

    vmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_vodlms_module);
    vlcf = (ngx_http_vodlms_loc_conf_t *)
           ((u_char *) conf - offsetof(ngx_http_vodlms_loc_conf_t, enroll));

    if (vmcf->pg == NULL) {
        ngx_http_vodlms_merge_error(cf,
                                    "\"vodlms_enrollment_check\" needs a "
                                    "database: add \"vodlms_pg\" to the http "
                                    "block");
        return NGX_CONF_ERROR;
    }

    if (!vlcf->session.enable) {
        ngx_http_vodlms_merge_error(cf,
                                    "\"vodlms_enrollment_check\" needs the "
                                    "user: add \"vodlms_auth on\"");
        return NGX_CONF_ERROR;
    }

    if (conf->video_id == NULL) {
        ngx_http_vodlms_merge_error(cf,
                                    "\"vodlms_enrollment_check\" needs "
                                    "\"vodlms_video_id\", e.g. a capture from "
                                    "the location's regex");
        return NGX_CONF_ERROR;
    }

    if (conf->stmt == NGX_CONF_UNSET_PTR || conf->stmt == NULL) {

        /* the default query: ($vodlms_video_id, $vodlms_user_id) */

        if (vmcf->enroll_sql.len == 0
            && ngx_http_vodlms_sql_in_schema(cf,
                                             &ngx_http_vodlms_default_query,
                                             &vmcf->enroll_sql)
               != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }

        conf->stmt = ngx_http_vodlms_enroll_stmt(cf, &vmcf->enroll_sql, 2);
        if (conf->stmt == NULL) {
            return NGX_CONF_ERROR;
        }

        conf->params = ngx_array_create(cf->pool, 2,
                                        sizeof(ngx_http_complex_value_t));
        if (conf->params == NULL) {
            return NGX_CONF_ERROR;
        }

        cv = ngx_array_push_n(conf->params, 2);
        if (cv == NULL
            || ngx_http_vodlms_compile(cf, &cv[0], "$vodlms_video_id")
               != NGX_OK
            || ngx_http_vodlms_compile(cf, &cv[1], "$vodlms_user_id")
               != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    if (conf->cache && !ngx_vodlms_shm_cache_defined(conf->cache)) {
        ngx_http_vodlms_merge_error(cf,
                                    "unknown vodlms_cache_zone \"%V\" in "
                                    "\"vodlms_enrollment_cache\"",
                                    &conf->cache->shm.name);
        return NGX_CONF_ERROR;
    }

    /* answers of different queries must not mix */
    conf->cache_ns.data = ngx_pnalloc(cf->pool, sizeof("enroll|") + 2 * 10
                                                + 2);
    if (conf->cache_ns.data == NULL) {
        return NGX_CONF_ERROR;
    }

    p = ngx_sprintf(conf->cache_ns.data, "enroll|%uz|%08xD",
                    conf->stmt->sql.len,
                    ngx_crc32_long(conf->stmt->sql.data, conf->stmt->sql.len));
    conf->cache_ns.len = p - conf->cache_ns.data;

    /*
     * "No row" is cached per video id, not per user, only where it cannot
     * depend on who asks: a flood of made-up ids from many users then costs
     * one query per id per "invalid=" time.  That is the built-in query
     * (no row: no such video; the user only LEFT JOINs), or a query whose
     * one parameter is the video id itself.  An operator's query that also
     * takes the user may join on the enrollment, so that its "no row"
     * means "not enrolled": shared, one student's refusal would answer
     * 404 to every enrolled one.  And with no_row 403, no row is a refusal
     * by definition.
     */
    if (conf->no_row == NGX_HTTP_NOT_FOUND
        && (ngx_http_vodlms_enroll_builtin(conf, &vmcf->enroll_sql)
            || ngx_http_vodlms_enroll_video_only(conf)))
    {
        conf->video_ns.data = ngx_pnalloc(cf->pool, conf->cache_ns.len
                                                    + sizeof("|video") - 1);
        if (conf->video_ns.data == NULL) {
            return NGX_CONF_ERROR;
        }

        p = ngx_sprintf(conf->video_ns.data, "%V|video", &conf->cache_ns);
        conf->video_ns.len = p - conf->video_ns.data;
    }

    return NGX_CONF_OK;
}


/* vodlms_enrollment_query "SQL with $1..$n" value1 ... valueN; */

char *
ngx_http_vodlms_enroll_query(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vodlms_loc_conf_t  *vlcf = conf;

    ngx_str_t                          *value;
    ngx_uint_t                          i, n, max;
    ngx_http_complex_value_t           *cv;
    ngx_http_compile_complex_value_t    ccv;

    if (vlcf->enroll.stmt != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;
    n = cf->args->nelts - 2;

    /* every $N in the query must have a value, and every value a $N */

    max = ngx_http_vodlms_highest_param(&value[1]);

    if (max != n) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the query uses $1..$%ui but %ui value%s given",
                           max, n, n == 1 ? " is" : "s are");
        return NGX_CONF_ERROR;
    }

    vlcf->enroll.stmt = ngx_http_vodlms_enroll_stmt(cf, &value[1], n);
    if (vlcf->enroll.stmt == NULL) {
        return NGX_CONF_ERROR;
    }

    vlcf->enroll.params = ngx_array_create(cf->pool, n ? n : 1,
                                           sizeof(ngx_http_complex_value_t));
    if (vlcf->enroll.params == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < n; i++) {
        cv = ngx_array_push(vlcf->enroll.params);
        if (cv == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));
        ccv.cf = cf;
        ccv.value = &value[i + 2];
        ccv.complex_value = cv;

        if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* vodlms_enrollment_cache zone [valid=time] [invalid=time] | off; */

char *
ngx_http_vodlms_enroll_cache(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vodlms_loc_conf_t  *vlcf = conf;

    return ngx_http_vodlms_parse_cache(cf, &vlcf->enroll.cache,
                                       &vlcf->enroll.cache_valid,
                                       &vlcf->enroll.cache_invalid);
}


/*
 * vodlms_pg_schema name: the schema sql/migrate.sh installed vodlms's own
 * tables in (--schema, the same rule).  Only the built-in statements (the
 * default enrollment and flush queries, the upload's) name it; queries the
 * operator writes qualify their own tables.
 */

static char *
ngx_http_vodlms_pg_schema_check(ngx_conf_t *cf, void *post, void *data)
{
    ngx_str_t  *name = data;

    if (vodlms_sql_schema_valid((char *) name->data, name->len)) {
        return NGX_CONF_OK;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid \"vodlms_pg_schema\" \"%V\": want a plain "
                       "lower-case SQL identifier ([a-z_][a-z0-9_]*, at most "
                       "63 bytes, not pg_*), the name given to "
                       "\"sql/migrate.sh --schema\"", name);

    return NGX_CONF_ERROR;
}


ngx_conf_post_t  ngx_http_vodlms_pg_schema_post = {
    ngx_http_vodlms_pg_schema_check
};
