/*
 * Upload intake (content handler): an instructor's video file becomes a
 * transcode job.
 *
 * Who may upload is decided in the access phase (the session gate with
 * vodlms_auth_require_role, and an enrollment-style query that checks the
 * user teaches the course), before any body is read.  The body then
 * streams to nginx's temp file (never memory; client_max_body_size gives
 * 413) and is renamed into the spool directory, on the same filesystem.
 * Then, in order:
 *
 *   1. upsert the videos row (status queued, the spool path), returning the
 *      row's previous state;
 *   2. XADD the job to the Redis Stream;
 *   3. 202 {"videoId", "status": "queued"}.
 *
 * Nothing is left half-done: if 1 fails, the spooled file is removed; if 2
 * fails, a compensating statement deletes the new row (or restores the
 * previous one) and the file is removed.  No orphan file, no row without a
 * job, no job without a row.
 *
 * "vodlms_upload captions" runs the same steps for a caption file of one
 * language: its row is in video_captions, its job has "kind captions"
 * (ngx_http_vodlms_upload_captions.c has what differs).  A DELETE there
 * removes a language the same way, with no body: step 1 marks the row's
 * last upload with a marker in place of a file ("delete:..."), step 2
 * queues a caption job with "delete 1", and the helper deletes the row and
 * rewrites the master; the compensation is the replacement's.
 */

#include "ngx_http_vodlms_module.h"


typedef struct {
    ngx_http_request_t                *r;
    ngx_str_t                          video;
    ngx_str_t                          course;
    ngx_str_t                          title;
    ngx_str_t                          owner;     /* whose turn, whose quota */
    ngx_str_t                          path;      /* the spooled file,
                                                     NUL-ended */
    ngx_str_t                          old[4];    /* status, source, progress,
                                                     error (captions: status,
                                                     source, error,
                                                     requested); data NULL:
                                                     SQL NULL */
    ngx_http_vodlms_upload_caption_t  *caption;   /* NULL: a video */
    ngx_uint_t                         remove;    /* a caption removal:
                                                     path is its marker,
                                                     no file */
    ngx_uint_t                         existed;
    ngx_http_vodlms_err_e              fail;      /* the answer after
                                                     undoing */
    ngx_str_t                          fail_detail;
    u_char                             job_id[64];
    size_t                             job_id_len;
} ngx_http_vodlms_upload_ctx_t;


/*
 * Ids are never claimed by whoever comes first (an instructor who uploads
 * to an unused id would block the colleague whose lecture the LMS later
 * creates under it), so the statement takes the mode as $5:
 *
 *   'replace' (vodlms_upload on): re-queue an existing row of this course,
 *             one the LMS created; no row: nothing happens (404);
 *   'new'     (vodlms_upload new): insert a row under the id the server
 *             drew ($request_id); never touches an existing one.
 *
 * It says what was there before (for the compensation) and whether a row
 * was written at all.  The previous state is read in a plain CTE: a FOR
 * UPDATE one is not visible to this statement form.
 */
static ngx_str_t  ngx_http_vodlms_upload_sql = ngx_string(
    "WITH old AS (SELECT status, source_location,"
    "  progress_percent::text AS progress, error"
    "  FROM vodlms.videos WHERE id = $1::text),"
    " ins AS (INSERT INTO vodlms.videos (id, course_id, title, status,"
    "  progress_percent, source_location, error)"
    "  SELECT $1::text, $2::text, $3::text, 'queued', 0, $4::text, NULL"
    "  WHERE $5::text = 'new'"
    "  ON CONFLICT (id) DO NOTHING"
    "  RETURNING id),"
    " upd AS (UPDATE vodlms.videos SET status = 'queued',"
    "   progress_percent = 0, source_location = $4::text,"
    "   error = NULL, title = $3::text"
    "  WHERE id = $1::text AND course_id = $2::text"
    "   AND $5::text = 'replace'"
    "  RETURNING id)"
    " SELECT old.status, old.source_location, old.progress, old.error,"
    "  (SELECT count(*) FROM ins) + (SELECT count(*) FROM upd)"
    " FROM (SELECT 1) AS one LEFT JOIN old ON true");


/* undo: delete what we created, or put back what was there */
static ngx_str_t  ngx_http_vodlms_upload_undo_new = ngx_string(
    "DELETE FROM vodlms.videos WHERE id = $1::text"
    " AND source_location = $2::text");

static ngx_str_t  ngx_http_vodlms_upload_undo_old = ngx_string(
    "UPDATE vodlms.videos SET status = $3::text,"
    " source_location = $4::text,"
    " progress_percent = coalesce($5::numeric, 0), error = $6::text"
    " WHERE id = $1::text AND source_location = $2::text");


/* the worker's last spool name stamp (ngx_http_vodlms_upload_body) */
static ngx_msec_t  ngx_http_vodlms_upload_stamp;


static ngx_int_t ngx_http_vodlms_upload_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_vodlms_upload_remove(ngx_http_request_t *r);
static void ngx_http_vodlms_upload_remove_row(ngx_http_request_t *r);
static ngx_int_t ngx_http_vodlms_upload_move(u_char *from, u_char *to);
static void ngx_http_vodlms_upload_admitted(ngx_http_request_t *r,
    ngx_http_vodlms_upload_quota_t *q, ngx_http_vodlms_err_e err);
static ngx_int_t ngx_http_vodlms_upload_read(ngx_http_request_t *r);
static ngx_int_t ngx_http_vodlms_upload_value(ngx_http_request_t *r,
    ngx_http_complex_value_t *cv, ngx_str_t *out);
static void ngx_http_vodlms_upload_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_vodlms_upload_owner(ngx_http_request_t *r,
    ngx_http_vodlms_upload_ctx_t *u);
static void ngx_http_vodlms_upload_row(void *data,
    ngx_vodlms_pg_status_e status, PGresult *res, const char *reason);
static void ngx_http_vodlms_upload_job_reply(void *data, ngx_uint_t i,
    redisReply *reply);
static void ngx_http_vodlms_upload_job(void *data,
    ngx_vodlms_redis_status_e status, const char *reason);
static void ngx_http_vodlms_upload_undo(ngx_http_vodlms_upload_ctx_t *u);
static void ngx_http_vodlms_upload_undone(void *data,
    ngx_vodlms_pg_status_e status, PGresult *res, const char *reason);
static void ngx_http_vodlms_upload_fail(ngx_http_vodlms_upload_ctx_t *u,
    ngx_http_vodlms_err_e err, const char *detail);
static void ngx_http_vodlms_upload_finish(ngx_http_request_t *r,
    ngx_int_t rc);


static ngx_int_t
ngx_http_vodlms_upload_handler(ngx_http_request_t *r)
{
    ngx_int_t                          rc;
    ngx_str_t                          detail;
    ngx_http_vodlms_ctx_t             *ctx;
    ngx_http_vodlms_loc_conf_t        *vlcf;
    ngx_http_vodlms_err_e              err;
    ngx_http_vodlms_upload_ctx_t       who;
    ngx_http_vodlms_upload_quota_t    *q;
    ngx_http_vodlms_upload_caption_t  *cap;

    ctx = ngx_http_vodlms_get_ctx(r);
    if (ctx) {
        ngx_http_vodlms_set_endpoint(ctx, NGX_HTTP_VODLMS_EP_UPLOAD);
    }

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);

    /* a caption location also removes its language */
    if (r->method == NGX_HTTP_DELETE
        && vlcf->upload.enable == NGX_HTTP_VODLMS_UPLOAD_CAPTIONS)
    {
        return ngx_http_vodlms_upload_remove(r);
    }

    if (!(r->method & (NGX_HTTP_POST|NGX_HTTP_PUT))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    /*
     * the row is a query on the uploader's behalf: it counts to their rate,
     * and a refusal comes before a byte of the body is read
     */
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* a caption's language, label and flag: checked before anything else */
    if (vlcf->upload.enable == NGX_HTTP_VODLMS_UPLOAD_CAPTIONS) {
        cap = ngx_pcalloc(r->pool, sizeof(ngx_http_vodlms_upload_caption_t));
        if (cap == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        rc = ngx_http_vodlms_upload_caption_values(r, cap, &err, &detail);

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc == NGX_DECLINED) {
            r->main->count++;
            ngx_http_vodlms_upload_finish(r,
                                          ngx_http_vodlms_deny(r, err, &detail));
            return NGX_DONE;
        }

        /* the body's turn uses these, not the variables evaluated again */
        ctx->caption = cap;
    }

    r->main->count++;

    rc = ngx_http_vodlms_limit_query(r, &ctx->session.user_id);
    if (rc != NGX_OK) {
        ngx_http_vodlms_upload_finish(r, rc);
        return NGX_DONE;
    }

    r->main->count--;

    if (vlcf->upload.quota_bytes == 0 && vlcf->upload.quota_concurrent == 0) {
        return ngx_http_vodlms_upload_read(r);
    }

    /*
     * bytes= counts the Content-Length before a byte is read: a body of
     * unknown size (chunked) could pass the quota by client_max_body_size
     */
    if (vlcf->upload.quota_bytes && r->headers_in.content_length_n < 0) {
        ngx_str_set(&detail, "no Content-Length with vodlms_upload_quota "
                             "bytes=");
        r->main->count++;
        ngx_http_vodlms_upload_finish(r,
            ngx_http_vodlms_deny(r, NGX_HTTP_VODLMS_LENGTH_REQUIRED, &detail));
        return NGX_DONE;
    }

    /* the uploader's quota first, before a byte of the body is read */

    ngx_memzero(&who, sizeof(ngx_http_vodlms_upload_ctx_t));

    if (ngx_http_vodlms_upload_value(r, vlcf->upload.course, &who.course)
        != NGX_OK
        || ngx_http_vodlms_upload_owner(r, &who) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->main->count++;

    rc = ngx_http_vodlms_upload_quota_check(r, &who.owner,
                                            ngx_http_vodlms_upload_admitted,
                                            &q);
    if (rc == NGX_AGAIN) {
        return NGX_DONE;
    }

    if (rc == NGX_ERROR) {
        r->main->count--;
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_vodlms_upload_admitted(r, q, (ngx_http_vodlms_err_e) rc);

    return NGX_DONE;
}


/*
 * DELETE on a caption location: the removal of a language, gated as its
 * upload is (the access phase, then the user's query rate).  No body is
 * read: one sent is discarded.  No quota either: a removal holds no spool
 * bytes and no encode.
 */

static ngx_int_t
ngx_http_vodlms_upload_remove(ngx_http_request_t *r)
{
    ngx_int_t                          rc;
    ngx_str_t                          detail;
    ngx_http_vodlms_ctx_t             *ctx;
    ngx_http_vodlms_err_e              err;
    ngx_http_vodlms_upload_caption_t   cap;

    ctx = ngx_http_vodlms_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* a body is none of ours: thrown away unread, whatever it says */
    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_vodlms_upload_caption_lang(r, &cap, &err, &detail);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->main->count++;

    if (rc == NGX_DECLINED) {
        ngx_http_vodlms_upload_finish(r,
                                      ngx_http_vodlms_deny(r, err, &detail));
        return NGX_DONE;
    }

    rc = ngx_http_vodlms_limit_query(r, &ctx->session.user_id);
    if (rc != NGX_OK) {
        ngx_http_vodlms_upload_finish(r, rc);
        return NGX_DONE;
    }

    ngx_http_vodlms_upload_remove_row(r);

    return NGX_DONE;
}


/* the quota's verdict; the request holds one extra reference here */

static void
ngx_http_vodlms_upload_admitted(ngx_http_request_t *r,
    ngx_http_vodlms_upload_quota_t *q, ngx_http_vodlms_err_e err)
{
    ngx_int_t  rc;

    if (err == NGX_HTTP_VODLMS_OK) {
        rc = ngx_http_vodlms_upload_read(r);
        ngx_http_finalize_request(r, rc >= NGX_HTTP_SPECIAL_RESPONSE
                                     ? rc : NGX_DONE);
        return;
    }

    if (err == NGX_HTTP_VODLMS_UPLOAD_QUOTA
        || err == NGX_HTTP_VODLMS_TOO_MANY_UPLOADS)
    {
        ngx_http_vodlms_upload_finish(r,
                                ngx_http_vodlms_upload_quota_deny(r, q, err));
        return;
    }

    ngx_http_vodlms_upload_finish(r, ngx_http_vodlms_deny(r, err, NULL));
}


/* the body, to disk; then ngx_http_vodlms_upload_body() */

static ngx_int_t
ngx_http_vodlms_upload_read(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    /* to disk, never memory; the size limit is client_max_body_size */
    r->request_body_in_file_only = 1;
    r->request_body_in_persistent_file = 1;
    r->request_body_in_clean_file = 1;

    /*
     * 0660, not nginx's 0600: the helper runs as its own user and reads the
     * file through the group (a setgid spool and client_body_temp_path
     * give it the helper's group; docs/operations.md)
     */
    r->request_body_file_group_access = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_vodlms_upload_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/* a denial finalizes the request itself (NGX_DONE); anything else: here */

static void
ngx_http_vodlms_upload_finish(ngx_http_request_t *r, ngx_int_t rc)
{
    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


static ngx_int_t
ngx_http_vodlms_upload_value(ngx_http_request_t *r,
    ngx_http_complex_value_t *cv, ngx_str_t *out)
{
    if (cv == NULL) {
        ngx_str_null(out);
        return NGX_OK;
    }

    return ngx_http_complex_value(r, cv, out);
}


/*
 * Whose upload this is: the helpers take turns by it (docs/helper.md, fair
 * turns).  vodlms_upload_owner, else the session's user, else the course.
 */

static ngx_int_t
ngx_http_vodlms_upload_owner(ngx_http_request_t *r,
    ngx_http_vodlms_upload_ctx_t *u)
{
    ngx_http_vodlms_ctx_t       *ctx;
    ngx_http_vodlms_loc_conf_t  *vlcf;

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);

    if (vlcf->upload.owner != NULL) {
        if (ngx_http_complex_value(r, vlcf->upload.owner, &u->owner)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else {
        ctx = ngx_http_get_module_ctx(r->main, ngx_http_vodlms_module);

        if (ctx != NULL
            && ctx->session.state == NGX_HTTP_VODLMS_SESSION_DONE
            && ctx->session.result == NGX_HTTP_VODLMS_OK)
        {
            u->owner.len = ctx->session.user_id.len;
            u->owner.data = ngx_pstrdup(r->pool, &ctx->session.user_id);
            if (u->owner.data == NULL) {
                return NGX_ERROR;
            }
        }
    }

    if (u->owner.len == 0 || u->owner.len > 128) {
        u->owner = u->course;
    }

    return NGX_OK;
}


/*
 * The body's temp file into the spool under a name nobody has: link(2)
 * fails with EEXIST where rename(2) would replace.  NGX_BUSY: the name is
 * taken; NGX_ERROR: ngx_errno says why.  A filesystem without hard links
 * gets the rename (the stamp alone keeps names apart there).
 */
static ngx_int_t
ngx_http_vodlms_upload_move(u_char *from, u_char *to)
{
    ngx_err_t  err;

    if (link((char *) from, (char *) to) == 0) {
        /* the temp file's own cleanup may still unlink the name: fine */
        (void) unlink((char *) from);
        return NGX_OK;
    }

    err = ngx_errno;

    if (err == NGX_EEXIST) {
        return NGX_BUSY;
    }

    if (err == NGX_EPERM || err == EOPNOTSUPP || err == ENOSYS
        || err == EMLINK)
    {
        if (ngx_rename_file(from, to) != NGX_FILE_ERROR) {
            return NGX_OK;
        }
    }

    return NGX_ERROR;
}

static void
ngx_http_vodlms_upload_body(ngx_http_request_t *r)
{
    u_char                        *p;
    ngx_str_t                      values[5], detail, *sql;
    ngx_int_t                      rc;
    ngx_msec_t                     stamp;
    ngx_uint_t                     tries;
    const char                    *reason, *suffix;
    ngx_temp_file_t               *tf;
    ngx_vodlms_pg_status_e         status;
    ngx_http_vodlms_loc_conf_t    *vlcf;
    ngx_http_vodlms_main_conf_t   *vmcf;
    ngx_http_vodlms_upload_ctx_t  *u;
    ngx_http_vodlms_ctx_t         *ctx;

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);
    vmcf = ngx_http_get_module_main_conf(r, ngx_http_vodlms_module);

    u = ngx_pcalloc(r->pool, sizeof(ngx_http_vodlms_upload_ctx_t));
    if (u == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    u->r = r;

    if (ngx_http_complex_value(r, vlcf->enroll.video_id, &u->video) != NGX_OK
        || ngx_http_vodlms_upload_value(r, vlcf->upload.course, &u->course)
           != NGX_OK
        || ngx_http_vodlms_upload_value(r, vlcf->upload.title, &u->title)
           != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* ids go into paths, keys and URLs: the schema's rule */
    if (!ngx_http_vodlms_video_id_valid(&u->video)
        || !ngx_http_vodlms_video_id_valid(&u->course))
    {
        ngx_str_set(&detail, "video or course id not 1-64 of [A-Za-z0-9_-]");
        ngx_http_vodlms_upload_finish(r,
            ngx_http_vodlms_deny(r, NGX_HTTP_VODLMS_BAD_VIDEO_ID, &detail));
        return;
    }

    if (u->title.len == 0 || u->title.len > 200) {
        u->title = u->video;
    }

    if (ngx_http_vodlms_upload_owner(r, u) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (vlcf->upload.enable == NGX_HTTP_VODLMS_UPLOAD_CAPTIONS) {
        /* as the handler checked them, before the body was read */
        ctx = ngx_http_vodlms_get_ctx(r);
        u->caption = ctx ? ctx->caption : NULL;

        if (u->caption == NULL) {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "vodlms upload: the caption's language, label and "
                          "flag were not kept from the access check");
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    tf = r->request_body ? r->request_body->temp_file : NULL;

    if (tf == NULL || r->headers_in.content_length_n == 0) {
        ngx_str_set(&detail, "empty upload");
        ngx_http_vodlms_upload_finish(r,
            ngx_http_vodlms_deny(r, NGX_HTTP_VODLMS_EMPTY_UPLOAD, &detail));
        return;
    }

    /* into the spool, by rename: same filesystem, never a copy */

    suffix = u->caption ? "captions" : "upload";

    u->path.len = vlcf->upload.spool.len + 1 + u->video.len
                  + sizeof("---.captions") + NGX_INT64_LEN * 3;
    u->path.data = ngx_pnalloc(r->pool, u->path.len);
    if (u->path.data == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /*
     * unique: the time, the worker and its connection.  The time is the
     * worker's cached clock, which stands still for a turn of its event
     * loop (or for timer_resolution): two requests of one connection
     * (pipelined, or HTTP/2 streams, which share their connection's number)
     * can be spooled in one tick, and the second rename would replace the
     * first one's file (two languages of a video, one file).  So the stamp
     * is one past the worker's previous one when the clock has not moved.
     *
     * The clock counts from boot, and nginx nodes may share one spool: a
     * name can still be taken, by a file from before a reboot or another
     * node's.  So the file is linked in, which never replaces anything,
     * and a name that exists is passed over for the next stamp.
     */
    stamp = ngx_current_msec > ngx_http_vodlms_upload_stamp
            ? ngx_current_msec : ngx_http_vodlms_upload_stamp + 1;

    for (tries = 0; /* void */; tries++) {
        ngx_http_vodlms_upload_stamp = stamp;

        p = ngx_sprintf(u->path.data, "%V/%V-%M-%P-%uA.%s%Z",
                        &vlcf->upload.spool, &u->video, stamp,
                        ngx_pid, r->connection->number, suffix);
        u->path.len = p - u->path.data - 1;

        rc = ngx_http_vodlms_upload_move(tf->file.name.data, u->path.data);

        if (rc == NGX_OK) {
            break;
        }

        if (rc == NGX_BUSY && tries < 64) {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "vodlms upload: \"%V\" exists, next name",
                           &u->path);
            stamp++;
            continue;
        }

        ngx_log_error(NGX_LOG_CRIT, r->connection->log,
                      rc == NGX_BUSY ? 0 : ngx_errno,
                      "vodlms upload: cannot move \"%V\" to \"%V\" %s",
                      &tf->file.name, &u->path,
                      rc == NGX_BUSY
                      ? "(64 names in a row exist already)"
                      : "(client_body_temp_path must be on the spool's "
                        "filesystem)");
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* step 1: the row */

    values[0] = u->video;
    values[1] = u->course;

    if (u->caption) {
        sql = &vmcf->upload.caption_row;
        values[2] = u->caption->lang;
        values[3] = u->caption->label;
        values[4] = u->path;

    } else {
        sql = &vmcf->upload.row;
        values[2] = u->title;
        values[3] = u->path;

        if (vlcf->upload.enable == NGX_HTTP_VODLMS_UPLOAD_NEW) {
            ngx_str_set(&values[4], "new");

        } else {
            ngx_str_set(&values[4], "replace");
        }
    }

    rc = ngx_vodlms_pg_query_sql(vmcf->pg_pool, r->pool, r->connection->log,
                                 sql, values, 5,
                                 ngx_http_vodlms_upload_row, u, &status,
                                 &reason);
    if (rc == NGX_OK) {
        return;
    }

    ngx_http_vodlms_upload_fail(u, status == NGX_VODLMS_PG_TIMEOUT
                                   ? NGX_HTTP_VODLMS_DB_TIMEOUT
                                   : NGX_HTTP_VODLMS_DB_DOWN,
                                rc == NGX_DECLINED ? reason : "no memory");
}


/*
 * The removal's step 1: the row's last upload becomes the removal, named
 * by a marker unique as a spool name is (the helper's supersede checks
 * compare it as they compare a file; no file has that name)
 */

static void
ngx_http_vodlms_upload_remove_row(ngx_http_request_t *r)
{
    u_char                        *p;
    ngx_str_t                      values[4], detail;
    ngx_int_t                      rc;
    ngx_msec_t                     stamp;
    const char                    *reason;
    ngx_http_vodlms_err_e          err;
    ngx_vodlms_pg_status_e         status;
    ngx_http_vodlms_loc_conf_t    *vlcf;
    ngx_http_vodlms_main_conf_t   *vmcf;
    ngx_http_vodlms_upload_ctx_t  *u;

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);
    vmcf = ngx_http_get_module_main_conf(r, ngx_http_vodlms_module);

    u = ngx_pcalloc(r->pool, sizeof(ngx_http_vodlms_upload_ctx_t));
    if (u == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    u->r = r;
    u->remove = 1;

    u->caption = ngx_pcalloc(r->pool,
                             sizeof(ngx_http_vodlms_upload_caption_t));
    if (u->caption == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ngx_http_complex_value(r, vlcf->enroll.video_id, &u->video) != NGX_OK
        || ngx_http_vodlms_upload_value(r, vlcf->upload.course, &u->course)
           != NGX_OK
        || ngx_http_vodlms_upload_caption_lang(r, u->caption, &err, &detail)
           != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (!ngx_http_vodlms_video_id_valid(&u->video)
        || !ngx_http_vodlms_video_id_valid(&u->course))
    {
        ngx_str_set(&detail, "video or course id not 1-64 of [A-Za-z0-9_-]");
        ngx_http_vodlms_upload_finish(r,
            ngx_http_vodlms_deny(r, NGX_HTTP_VODLMS_BAD_VIDEO_ID, &detail));
        return;
    }

    if (ngx_http_vodlms_upload_owner(r, u) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    u->path.len = sizeof("delete:---") + u->video.len + NGX_INT64_LEN * 3;
    u->path.data = ngx_pnalloc(r->pool, u->path.len);
    if (u->path.data == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* the spool names' stamp (ngx_http_vodlms_upload_body): one per name */
    stamp = ngx_current_msec > ngx_http_vodlms_upload_stamp
            ? ngx_current_msec : ngx_http_vodlms_upload_stamp + 1;
    ngx_http_vodlms_upload_stamp = stamp;

    p = ngx_sprintf(u->path.data, "delete:%V-%M-%P-%uA", &u->video, stamp,
                    ngx_pid, r->connection->number);
    u->path.len = p - u->path.data;

    values[0] = u->video;
    values[1] = u->course;
    values[2] = u->caption->lang;
    values[3] = u->path;

    rc = ngx_vodlms_pg_query_sql(vmcf->pg_pool, r->pool, r->connection->log,
                                 &vmcf->upload.caption_remove, values, 4,
                                 ngx_http_vodlms_upload_row, u, &status,
                                 &reason);
    if (rc == NGX_OK) {
        return;
    }

    ngx_http_vodlms_upload_fail(u, status == NGX_VODLMS_PG_TIMEOUT
                                   ? NGX_HTTP_VODLMS_DB_TIMEOUT
                                   : NGX_HTTP_VODLMS_DB_DOWN,
                                rc == NGX_DECLINED ? reason : "no memory");
}


static void
ngx_http_vodlms_upload_row(void *data, ngx_vodlms_pg_status_e status,
    PGresult *res, const char *reason)
{
    ngx_http_vodlms_upload_ctx_t  *u = data;

    int                            i;
    ngx_str_t                      s;
    ngx_int_t                      rc;
    off_t                          size;
    ngx_str_t                      key;
    ngx_uint_t                     ncmds;
    ngx_uint_t                     n;
    const char                    *argv[19], *hargv[4], *multi[1], *exec[1];
    const char                    *why;
    size_t                         argvlen[19], hargvlen[4], multilen[1],
                                   execlen[1];
    ngx_vodlms_redis_cmd_t         cmds[4];
    ngx_vodlms_redis_status_e      rstatus;
    ngx_http_request_t            *r = u->r;
    ngx_http_vodlms_loc_conf_t    *vlcf;
    ngx_http_vodlms_main_conf_t   *vmcf;

    u_char  ts[NGX_TIME_T_LEN], bytes[NGX_OFF_T_LEN];

    if (status != NGX_VODLMS_PG_OK) {
        ngx_http_vodlms_upload_fail(u, status == NGX_VODLMS_PG_TIMEOUT
                                       ? NGX_HTTP_VODLMS_DB_TIMEOUT
                                       : status == NGX_VODLMS_PG_REFUSED
                                       ? NGX_HTTP_VODLMS_INTERNAL
                                       : NGX_HTTP_VODLMS_DB_DOWN, reason);
        return;
    }

    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 4)) {
        ngx_http_vodlms_upload_fail(u, NGX_HTTP_VODLMS_INTERNAL,
                                    "the upload statement returned no "
                                    "verdict");
        return;
    }

    if (PQgetvalue(res, 0, 4)[0] == '0') {
        vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);

        if (vlcf->upload.enable == NGX_HTTP_VODLMS_UPLOAD_NEW) {
            /* 128 random bits met an existing id: never taken over */
            ngx_http_vodlms_upload_fail(u, NGX_HTTP_VODLMS_INTERNAL,
                                        "the drawn video id exists already");

        } else if (u->remove && PQnfields(res) >= 7
                   && PQgetvalue(res, 0, 6)[0] != '0')
        {
            /* this course's video, without that language */
            ngx_http_vodlms_upload_fail(u, NGX_HTTP_VODLMS_CAPTION_NOT_FOUND,
                                        "no captions of this language to "
                                        "remove");

        } else if (u->caption ? PQnfields(res) < 6
                                || PQgetvalue(res, 0, 5)[0] == '0'
                              : PQgetisnull(res, 0, 0))
        {
            /* ids belong to the LMS: it creates the lecture, then this */
            ngx_http_vodlms_upload_fail(u, NGX_HTTP_VODLMS_VIDEO_NOT_FOUND,
                                        "no videos row: the LMS creates the "
                                        "lecture before its upload");

        } else {
            /*
             * the id exists in another course: not this instructor's video,
             * and the same answer as no row, so that ids of other courses
             * cannot be probed; the log line tells the two apart
             */
            ngx_http_vodlms_upload_fail(u, NGX_HTTP_VODLMS_VIDEO_NOT_FOUND,
                                        "the video belongs to another course");
        }

        return;
    }

    u->existed = !PQgetisnull(res, 0, 0);

    for (i = 0; i < 4; i++) {
        if (PQgetisnull(res, 0, i)) {
            continue;
        }

        s.data = (u_char *) PQgetvalue(res, 0, i);
        s.len = PQgetlength(res, 0, i);
        u->old[i].data = ngx_pstrdup(r->pool, &s);
        u->old[i].len = s.len;

        if (u->old[i].data == NULL) {
            /* cannot remember the old state: undo cannot restore it */
            u->existed = 1;
        }
    }

    /* step 2: the job */

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);
    vmcf = ngx_http_get_module_main_conf(r, ngx_http_vodlms_module);

    argv[0] = "XADD";
    argvlen[0] = 4;
    argv[1] = (char *) vlcf->upload.stream.data;
    argvlen[1] = vlcf->upload.stream.len;
    argv[2] = "*";
    argvlen[2] = 1;
    argv[3] = "video_id";
    argvlen[3] = 8;
    argv[4] = (char *) u->video.data;
    argvlen[4] = u->video.len;
    n = 5;

    /* a caption job says so; a job without "kind" is a video's */
    if (u->caption) {
        argv[n] = "kind";
        argvlen[n++] = 4;
        argv[n] = "captions";
        argvlen[n++] = 8;
    }

    argv[n] = "source";
    argvlen[n++] = 6;
    argv[n] = (char *) u->path.data;
    argvlen[n++] = u->path.len;

    if (u->remove) {
        argv[n] = "lang";
        argvlen[n++] = 4;
        argv[n] = (char *) u->caption->lang.data;
        argvlen[n++] = u->caption->lang.len;
        argv[n] = "delete";
        argvlen[n++] = 6;
        argv[n] = "1";
        argvlen[n++] = 1;

    } else if (u->caption) {
        argv[n] = "lang";
        argvlen[n++] = 4;
        argv[n] = (char *) u->caption->lang.data;
        argvlen[n++] = u->caption->lang.len;
        argv[n] = "label";
        argvlen[n++] = 5;
        argv[n] = (char *) u->caption->label.data;
        argvlen[n++] = u->caption->label.len;
        argv[n] = "default";
        argvlen[n++] = 7;
        argv[n] = u->caption->is_default ? "1" : "0";
        argvlen[n++] = 1;
    }

    argv[n] = "enqueued_at";
    argvlen[n++] = 11;
    argv[n] = (char *) ts;
    argvlen[n++] = ngx_sprintf(ts, "%T", ngx_time()) - ts;
    argv[n] = "owner";
    argvlen[n++] = 5;
    argv[n] = (char *) u->owner.data;
    argvlen[n++] = u->owner.len;

    cmds[0].argc = n;
    cmds[0].argv = argv;
    cmds[0].argvlen = argvlen;
    ncmds = 1;

    /*
     * With a quota, the job and the bytes it holds in the spool are one
     * transaction: MULTI, XADD, HSET <stream>:spool:<owner> <path> <bytes>,
     * EXEC.  The helper clears the field when the job ends.
     */
    if ((vlcf->upload.quota_bytes || vlcf->upload.quota_concurrent)
        && !u->remove)
    {
        size = r->request_body && r->request_body->temp_file
               ? r->request_body->temp_file->offset
               : r->headers_in.content_length_n;

        key.len = vlcf->upload.stream.len + sizeof(":spool:") - 1
                  + u->owner.len;
        key.data = ngx_pnalloc(r->pool, key.len);
        if (key.data == NULL) {
            ngx_http_vodlms_upload_fail(u, NGX_HTTP_VODLMS_INTERNAL,
                                        "no memory");
            return;
        }

        ngx_sprintf(key.data, "%V:spool:%V", &vlcf->upload.stream, &u->owner);

        hargv[0] = "HSET";
        hargvlen[0] = 4;
        hargv[1] = (char *) key.data;
        hargvlen[1] = key.len;
        hargv[2] = (char *) u->path.data;
        hargvlen[2] = u->path.len;
        hargv[3] = (char *) bytes;
        hargvlen[3] = ngx_sprintf(bytes, "%O", size) - bytes;

        multi[0] = "MULTI";
        multilen[0] = 5;
        exec[0] = "EXEC";
        execlen[0] = 4;

        cmds[3] = cmds[0];
        cmds[0].argc = 1;
        cmds[0].argv = multi;
        cmds[0].argvlen = multilen;
        cmds[1] = cmds[3];
        cmds[2].argc = 4;
        cmds[2].argv = hargv;
        cmds[2].argvlen = hargvlen;
        cmds[3].argc = 1;
        cmds[3].argv = exec;
        cmds[3].argvlen = execlen;
        ncmds = 4;
    }

    rc = ngx_vodlms_redis_send(vmcf->redis_pool, r->pool, r->connection->log,
                               cmds, ncmds, ngx_http_vodlms_upload_job_reply,
                               ngx_http_vodlms_upload_job, u, &rstatus, &why);
    if (rc == NGX_OK) {
        return;
    }

    u->fail = (rstatus == NGX_VODLMS_REDIS_TIMEOUT)
              ? NGX_HTTP_VODLMS_BACKEND_TIMEOUT : NGX_HTTP_VODLMS_BACKEND_DOWN;
    u->fail_detail.data = (u_char *) (rc == NGX_DECLINED ? why : "no memory");
    u->fail_detail.len = ngx_strlen(u->fail_detail.data);
    u->fail_detail.data = ngx_pstrdup(r->pool, &u->fail_detail);

    ngx_http_vodlms_upload_undo(u);
}


static void
ngx_http_vodlms_upload_job_reply(void *data, ngx_uint_t i, redisReply *reply)
{
    ngx_http_vodlms_upload_ctx_t  *u = data;

    /* MULTI ... EXEC: the transaction's replies, the XADD's first */
    if (reply->type == REDIS_REPLY_STATUS) {
        return;                 /* OK, QUEUED */
    }

    if (reply->type == REDIS_REPLY_ARRAY) {
        if (reply->elements == 0) {
            u->job_id_len = 0;
            return;
        }

        reply = reply->element[0];
    }

    if (reply->type == REDIS_REPLY_STRING && reply->len < sizeof(u->job_id)) {
        ngx_memcpy(u->job_id, reply->str, reply->len);
        u->job_id_len = reply->len;

    } else if (reply->type == REDIS_REPLY_ERROR) {
        u->job_id_len = 0;
    }
}


static void
ngx_http_vodlms_upload_job(void *data, ngx_vodlms_redis_status_e status,
    const char *reason)
{
    ngx_http_vodlms_upload_ctx_t  *u = data;

    u_char              *p;
    ngx_buf_t           *b;
    ngx_http_request_t  *r = u->r;

    if (status != NGX_VODLMS_REDIS_OK || u->job_id_len == 0) {
        u->fail = (status == NGX_VODLMS_REDIS_TIMEOUT)
                  ? NGX_HTTP_VODLMS_BACKEND_TIMEOUT
                  : NGX_HTTP_VODLMS_BACKEND_DOWN;
        u->fail_detail.data = (u_char *) (reason ? reason
                                                 : "XADD was refused");
        u->fail_detail.len = ngx_strlen(u->fail_detail.data);
        u->fail_detail.data = ngx_pstrdup(r->pool, &u->fail_detail);

        ngx_http_vodlms_upload_undo(u);
        return;
    }

    if (u->remove) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "vodlms upload: removal of captions %V of video %V "
                      "queued as job %*s", &u->caption->lang, &u->video,
                      u->job_id_len, u->job_id);

    } else if (u->caption) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "vodlms upload: captions %V of video %V queued as job "
                      "%*s (%O bytes)", &u->caption->lang, &u->video,
                      u->job_id_len, u->job_id,
                      r->headers_in.content_length_n);

    } else {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "vodlms upload: video %V queued as job %*s (%O bytes)",
                      &u->video, u->job_id_len, u->job_id,
                      r->headers_in.content_length_n);
    }

    /*
     * step 3: accepted; the id is [A-Za-z0-9_-], a language tag
     * [A-Za-z0-9-]: no escaping needed
     */

    b = ngx_create_temp_buf(r->pool, u->video.len + 64
                                     + VODLMS_CAPTION_LANG_MAX);
    if (b == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (u->remove) {
        p = ngx_sprintf(b->last, "{\"videoId\":\"%V\",\"lang\":\"%V\","
                        "\"status\":\"queued\",\"remove\":true}\n",
                        &u->video, &u->caption->lang);

    } else if (u->caption) {
        p = ngx_sprintf(b->last, "{\"videoId\":\"%V\",\"lang\":\"%V\","
                        "\"status\":\"queued\"}\n",
                        &u->video, &u->caption->lang);

    } else {
        p = ngx_sprintf(b->last,
                        "{\"videoId\":\"%V\",\"status\":\"queued\"}\n",
                        &u->video);
    }

    b->last = p;

    ngx_http_finalize_request(r, ngx_http_vodlms_send(r, NGX_HTTP_ACCEPTED,
                                                      "application/json", b));
}


/* the job could not be queued: the row goes back to what it was */

static void
ngx_http_vodlms_upload_undo(ngx_http_vodlms_upload_ctx_t *u)
{
    ngx_str_t                     *sql, values[7];
    ngx_uint_t                     n;
    ngx_int_t                      rc;
    const char                    *reason;
    ngx_vodlms_pg_status_e         status;
    ngx_http_request_t            *r = u->r;
    ngx_http_vodlms_main_conf_t   *vmcf;

    vmcf = ngx_http_get_module_main_conf(r, ngx_http_vodlms_module);

    values[0] = u->video;
    values[1] = u->path;

    if (u->caption) {
        values[1] = u->caption->lang;
        values[2] = u->path;

        if (u->existed) {
            sql = &vmcf->upload.caption_undo_old;
            values[3] = u->old[0];
            values[4] = u->old[1];
            values[5] = u->old[2];
            values[6] = u->old[3];
            n = 7;

        } else {
            sql = &vmcf->upload.caption_undo_new;
            n = 3;
        }

    } else if (u->existed) {
        sql = &vmcf->upload.undo_old;
        values[2] = u->old[0];
        values[3] = u->old[1];
        values[4] = u->old[2];
        values[5] = u->old[3];
        n = 6;

    } else {
        sql = &vmcf->upload.undo_new;
        n = 2;
    }

    rc = ngx_vodlms_pg_query_sql(vmcf->pg_pool, r->pool, r->connection->log,
                                 sql, values, n, ngx_http_vodlms_upload_undone,
                                 u, &status, &reason);
    if (rc == NGX_OK) {
        return;
    }

    ngx_http_vodlms_upload_undone(u, NGX_VODLMS_PG_ERROR, NULL,
                                  rc == NGX_DECLINED ? reason : "no memory");
}


static void
ngx_http_vodlms_upload_undone(void *data, ngx_vodlms_pg_status_e status,
    PGresult *res, const char *reason)
{
    ngx_http_vodlms_upload_ctx_t  *u = data;

    if (status != NGX_VODLMS_PG_OK) {
        /* the row says "queued" with no job: say so loudly; the helper's
           stale-job sweep (or the operator) must look at it */
        if (u->caption) {
            ngx_log_error(NGX_LOG_ALERT, u->r->connection->log, 0,
                          "vodlms upload: captions %V of video %V%s are "
                          "queued without a job and could not be put back: "
                          "%s", &u->caption->lang, &u->video,
                          u->remove ? " (their removal)" : "",
                          reason ? reason : "unknown error");

        } else {
            ngx_log_error(NGX_LOG_ALERT, u->r->connection->log, 0,
                          "vodlms upload: video %V is queued without a job "
                          "and could not be put back: %s", &u->video,
                          reason ? reason : "unknown error");
        }
    }

    ngx_http_vodlms_upload_fail(u, u->fail, (char *) u->fail_detail.data);
}


/* remove the spooled file, answer the failure */

static void
ngx_http_vodlms_upload_fail(ngx_http_vodlms_upload_ctx_t *u,
    ngx_http_vodlms_err_e err, const char *detail)
{
    ngx_str_t            d;
    ngx_http_request_t  *r = u->r;

    /* a removal's marker names no file */
    if (u->path.len && !u->remove
        && ngx_delete_file(u->path.data) == NGX_FILE_ERROR
        && ngx_errno != NGX_ENOENT)
    {
        ngx_log_error(NGX_LOG_CRIT, r->connection->log, ngx_errno,
                      "vodlms upload: cannot remove \"%V\"", &u->path);
    }

    d.data = (u_char *) (detail ? detail : "");
    d.len = ngx_strlen(d.data);

    ngx_http_vodlms_upload_finish(r, ngx_http_vodlms_deny(r, err, &d));
}


/* configuration */

void
ngx_http_vodlms_upload_create_conf(ngx_http_vodlms_upload_conf_t *ucf)
{
    ucf->enable = NGX_CONF_UNSET;
    ucf->course = NGX_CONF_UNSET_PTR;
    ucf->title = NGX_CONF_UNSET_PTR;
    ucf->owner = NGX_CONF_UNSET_PTR;
    ucf->quota_bytes = NGX_CONF_UNSET;
}


char *
ngx_http_vodlms_upload_merge_conf(ngx_conf_t *cf,
    ngx_http_vodlms_upload_conf_t *prev, ngx_http_vodlms_upload_conf_t *conf)
{
    ngx_file_info_t               fi;
    ngx_http_vodlms_loc_conf_t   *vlcf;
    ngx_http_vodlms_main_conf_t  *vmcf;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_ptr_value(conf->course, prev->course, NULL);
    ngx_conf_merge_ptr_value(conf->title, prev->title, NULL);
    ngx_conf_merge_ptr_value(conf->owner, prev->owner, NULL);

    /* vodlms_upload_caption sets its three values together */
    if (conf->caption_lang == NULL) {
        conf->caption_lang = prev->caption_lang;
        conf->caption_label = prev->caption_label;
        conf->caption_default = prev->caption_default;
    }

    /* vodlms_upload_quota sets its four values together */
    if (conf->quota_bytes == NGX_CONF_UNSET) {
        if (prev->quota_bytes == NGX_CONF_UNSET) {
            conf->quota_bytes = 0;
            conf->quota_concurrent = 0;

        } else {
            conf->quota_bytes = prev->quota_bytes;
            conf->quota_concurrent = prev->quota_concurrent;
            conf->quota_lease = prev->quota_lease;
            conf->quota_retry = prev->quota_retry;
        }
    }
    ngx_conf_merge_str_value(conf->spool, prev->spool, "");
    ngx_conf_merge_str_value(conf->stream, prev->stream, "vodlms:transcode");

    if (ngx_http_vodlms_upload_caption_merge(cf, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (!conf->enable) {
        return NGX_CONF_OK;
    }

    vmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_vodlms_module);
    vlcf = (ngx_http_vodlms_loc_conf_t *)
           ((u_char *) conf - offsetof(ngx_http_vodlms_loc_conf_t, upload));

    if (vmcf->pg == NULL || vmcf->redis == NULL) {
        ngx_http_vodlms_merge_error(cf,
                                    "\"vodlms_upload\" needs \"vodlms_pg\" "
                                    "(the videos row) and \"vodlms_redis\" "
                                    "(the job queue)");
        return NGX_CONF_ERROR;
    }

    /* vodlms's own videos table, in vodlms_pg_schema: rendered once */
    if (vmcf->upload.row.len == 0
        && (ngx_http_vodlms_sql_in_schema(cf, &ngx_http_vodlms_upload_sql,
                                          &vmcf->upload.row)
            != NGX_OK
            || ngx_http_vodlms_sql_in_schema(cf,
                                             &ngx_http_vodlms_upload_undo_new,
                                             &vmcf->upload.undo_new)
               != NGX_OK
            || ngx_http_vodlms_sql_in_schema(cf,
                                             &ngx_http_vodlms_upload_undo_old,
                                             &vmcf->upload.undo_old)
               != NGX_OK))
    {
        return NGX_CONF_ERROR;
    }

    if (!vlcf->session.enable || vlcf->enroll.video_id == NULL) {
        ngx_http_vodlms_merge_error(cf,
                                    "\"vodlms_upload\" needs \"vodlms_auth "
                                    "on\" and \"vodlms_video_id\"");
        return NGX_CONF_ERROR;
    }

    /* a new video's id is the server's draw, never a client's choice */
    if (conf->enable == NGX_HTTP_VODLMS_UPLOAD_NEW
        && (vlcf->enroll.video_id->value.len != sizeof("$request_id") - 1
            || ngx_strncmp(vlcf->enroll.video_id->value.data, "$request_id",
                           sizeof("$request_id") - 1) != 0))
    {
        ngx_http_vodlms_merge_error(cf,
                                    "\"vodlms_upload new\" needs "
                                    "\"vodlms_video_id $request_id\": the "
                                    "server draws a new video's id, a client "
                                    "never names it (\"vodlms_upload on\" "
                                    "replaces the upload of a row the LMS "
                                    "created)");
        return NGX_CONF_ERROR;
    }

    if (conf->course == NULL) {
        ngx_http_vodlms_merge_error(cf,
                                    "\"vodlms_upload\" needs "
                                    "\"vodlms_upload_course\"");
        return NGX_CONF_ERROR;
    }

    if (conf->spool.len == 0) {
        ngx_http_vodlms_merge_error(cf,
                                    "\"vodlms_upload\" needs "
                                    "\"vodlms_upload_spool\"");
        return NGX_CONF_ERROR;
    }

    if (ngx_file_info(conf->spool.data, &fi) == NGX_FILE_ERROR
        || !ngx_is_dir(&fi))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"vodlms_upload_spool\" \"%V\" is not a directory",
                           &conf->spool);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* vodlms_upload on | new | captions | off; */

char *
ngx_http_vodlms_upload(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vodlms_loc_conf_t  *vlcf = conf;

    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *clcf;

    if (vlcf->upload.enable != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "on") == 0) {
        vlcf->upload.enable = NGX_HTTP_VODLMS_UPLOAD_REPLACE;

    } else if (ngx_strcmp(value[1].data, "new") == 0) {
        vlcf->upload.enable = NGX_HTTP_VODLMS_UPLOAD_NEW;

    } else if (ngx_strcmp(value[1].data, "captions") == 0) {
        vlcf->upload.enable = NGX_HTTP_VODLMS_UPLOAD_CAPTIONS;

    } else if (ngx_strcmp(value[1].data, "off") == 0) {
        vlcf->upload.enable = 0;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\", expected "
                           "\"on\" (into a row the LMS created), \"new\" "
                           "(a new row under a server-drawn id), "
                           "\"captions\" (a caption file of a row the LMS "
                           "created) or \"off\"",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (vlcf->upload.enable) {
        clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
        clcf->handler = ngx_http_vodlms_upload_handler;
    }

    return NGX_CONF_OK;
}


char *
ngx_http_vodlms_upload_spool(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vodlms_loc_conf_t  *vlcf = conf;

    ngx_str_t  *value;

    if (vlcf->upload.spool.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    vlcf->upload.spool = value[1];

    while (vlcf->upload.spool.len > 1
           && vlcf->upload.spool.data[vlcf->upload.spool.len - 1] == '/')
    {
        vlcf->upload.spool.len--;
    }

    /* NUL-ended for ngx_file_info() and the rename */
    if (ngx_conf_full_name(cf->cycle, &vlcf->upload.spool, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}
