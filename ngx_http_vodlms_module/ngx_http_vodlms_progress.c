/*
 * Watch progress: the request side.
 *
 * Beacons (POST) are validated by the pure core, folded into a per-(user,
 * video) entry in shared memory (ngx_http_vodlms_progress_zone.c) and
 * answered 204 at once; the flush (ngx_http_vodlms_progress_flush.c)
 * writes them to PostgreSQL later.  GET answers the saved position for
 * resume: this node's buffer when it has the entry, otherwise the
 * enrollment query's resume columns.  The location directives are here.
 */

#include "ngx_http_vodlms_progress_internal.h"


/*
 * The default flush: one upsert from arrays for the whole batch.  Rows for
 * users or videos the database does not know are skipped (they would fail
 * the whole batch on the foreign keys); the flush logs how many.  The
 * coverage is merged by OR, and completion judged by the database from the
 * merged bits and the video's own duration (vodlms.videos, never $5), in
 * the row lock of the upsert: whichever node's flush comes first, or
 * twice, the row ends the same (see sql/migrations/0010_coverage.sql).
 * The node's verdict ($7) only dates a completion the database agrees to.
 */
static ngx_str_t  ngx_http_vodlms_default_flush = ngx_string(
    "INSERT INTO vodlms.watch_progress AS wp (user_id, video_id,"
    " position_seconds, max_position_seconds, duration_seconds,"
    " watched_seconds, completed_at, played_seconds, coverage,"
    " complete_fraction)"
    " SELECT b.u, b.v, b.p, b.m, b.d, b.w,"
    "  CASE WHEN vodlms.coverage_complete(b.cov, v.duration_seconds, b.f)"
    "   THEN coalesce(to_timestamp(nullif(b.c, 0)), now()) END, b.pl,"
    "  coalesce(b.cov, B''), b.f"
    " FROM unnest($1::text[], $2::text[], $3::numeric[], $4::numeric[],"
    "  $5::numeric[], $6::numeric[], $7::float8[], $8::numeric[],"
    "  $9::varbit[], $10::numeric[])"
    "  AS b(u, v, p, m, d, w, c, pl, cov, f)"
    " JOIN vodlms.videos v ON v.id = b.v JOIN vodlms.users u ON u.id = b.u"
    " ON CONFLICT (user_id, video_id) DO UPDATE SET"
    "  position_seconds = EXCLUDED.position_seconds,"
    "  max_position_seconds = greatest(wp.max_position_seconds,"
    "   EXCLUDED.max_position_seconds),"
    "  duration_seconds = EXCLUDED.duration_seconds,"
    "  watched_seconds = wp.watched_seconds + EXCLUDED.watched_seconds,"
    "  played_seconds = greatest(wp.played_seconds, EXCLUDED.played_seconds),"
    "  coverage = vodlms.coverage_or(wp.coverage, EXCLUDED.coverage),"
    "  complete_fraction = coalesce(EXCLUDED.complete_fraction,"
    "   wp.complete_fraction),"
    "  completed_at = coalesce(wp.completed_at,"
    "   CASE WHEN vodlms.coverage_complete(vodlms.coverage_or(wp.coverage,"
    "    EXCLUDED.coverage), (SELECT x.duration_seconds FROM vodlms.videos x"
    "    WHERE x.id = EXCLUDED.video_id), EXCLUDED.complete_fraction)"
    "   THEN coalesce(EXCLUDED.completed_at, now()) END)");


static ngx_int_t ngx_http_vodlms_progress_handler(ngx_http_request_t *r);
static ngx_uint_t ngx_http_vodlms_progress_uses(ngx_str_t *sql, ngx_uint_t k);
static ngx_int_t ngx_http_vodlms_bad_beacon(ngx_http_request_t *r,
    const char *why);
static void ngx_http_vodlms_progress_done(ngx_http_request_t *r,
    ngx_int_t rc);
static void ngx_http_vodlms_progress_body(ngx_http_request_t *r);
static void ngx_http_vodlms_progress_accept(ngx_http_request_t *r,
    vodlms_beacon_t *b);
static void ngx_http_vodlms_progress_streamed(ngx_http_request_t *r);
static ngx_int_t ngx_http_vodlms_progress_get(ngx_http_request_t *r);


/* the session's user and the checked video: both must be known here */

static ngx_int_t
ngx_http_vodlms_progress_who(ngx_http_request_t *r, ngx_str_t *user,
    ngx_str_t *video)
{
    ngx_http_vodlms_ctx_t     *ctx;
    ngx_http_vodlms_column_t  *col;

    ctx = ngx_http_get_module_ctx(r, ngx_http_vodlms_module);

    if (ctx == NULL
        || ctx->session.state != NGX_HTTP_VODLMS_SESSION_DONE
        || ctx->session.result != NGX_HTTP_VODLMS_OK
        || ctx->enroll.state != NGX_HTTP_VODLMS_ENROLL_DONE
        || ctx->enroll.result != NGX_HTTP_VODLMS_OK)
    {
        return NGX_ERROR;
    }

    *user = ctx->session.user_id;
    *video = ctx->enroll.video_id;

    /*
     * The row's own id, when the query returns one, names the entry: with
     * an integer key, /videos/7, /videos/07 and /videos/007 are one video,
     * and must be one entry (one rate window, one played total)
     */
    col = ngx_http_vodlms_enroll_col(r, NGX_HTTP_VODLMS_COL_ID);

    if (col && !col->null && ngx_http_vodlms_video_id_valid(&col->value)) {
        *video = col->value;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_vodlms_progress_handler(ngx_http_request_t *r)
{
    ngx_int_t               rc;
    ngx_http_vodlms_ctx_t  *ctx;

    ctx = ngx_http_vodlms_get_ctx(r);
    if (ctx) {
        ngx_http_vodlms_set_endpoint(ctx, NGX_HTTP_VODLMS_EP_PROGRESS);
    }

    if (r->method == NGX_HTTP_GET || r->method == NGX_HTTP_HEAD) {
        return ngx_http_vodlms_progress_get(r);
    }

    if (r->method != NGX_HTTP_POST) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    /*
     * Too big to be a beacon: refuse before reading it.  The denial
     * finalizes the request itself, and the content phase finalizes what
     * this returns once more: one more reference keeps the count right.
     */
    if (r->headers_in.content_length_n > VODLMS_BEACON_MAX) {
        r->main->count++;
        rc = ngx_http_vodlms_bad_beacon(r, "body_too_large");
        if (rc != NGX_DONE) {
            r->main->count--;
        }
        return rc;
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_vodlms_progress_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static ngx_int_t
ngx_http_vodlms_bad_beacon(ngx_http_request_t *r, const char *why)
{
    u_char     *p;
    ngx_str_t   extra, detail;

    extra.len = sizeof(",\"reason\":\"\"") + ngx_strlen(why);
    extra.data = ngx_pnalloc(r->pool, extra.len);
    if (extra.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* reasons are fixed ASCII words from the pure core */
    p = ngx_sprintf(extra.data, ",\"reason\":\"%s\"", why);
    extra.len = p - extra.data;

    detail.data = (u_char *) why;
    detail.len = ngx_strlen(why);

    return ngx_http_vodlms_deny_extra(r, NGX_HTTP_VODLMS_BAD_BEACON, &detail,
                                      &extra);
}


/* a denial has finalized the request already (NGX_DONE); else finalize */

static void
ngx_http_vodlms_progress_done(ngx_http_request_t *r, ngx_int_t rc)
{
    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


/* the body names the video as the URL spelled it */

static ngx_uint_t
ngx_http_vodlms_progress_url_id(ngx_http_request_t *r, vodlms_beacon_t *b)
{
    ngx_http_vodlms_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_vodlms_module);

    return ctx != NULL
           && b->video_id_len == ctx->enroll.video_id.len
           && ngx_strncmp(b->video_id, ctx->enroll.video_id.data,
                          b->video_id_len) == 0;
}


/*
 * The beacon in the body, checked against the request: NGX_OK; NGX_DECLINED
 * with *why, the reason it is refused; NGX_ERROR, no memory
 */

static ngx_int_t
ngx_http_vodlms_progress_beacon(ngx_http_request_t *r,
    ngx_http_vodlms_progress_conf_t *pcf, ngx_str_t *video,
    vodlms_beacon_t *b, const char **why)
{
    u_char                    *body;
    size_t                     len, n;
    double                     known;
    int64_t                    ms;
    ngx_chain_t               *cl;
    ngx_http_vodlms_column_t  *col;

    /* the body, in memory and small (sendBeacon: text/plain or a Blob) */

    *why = "body_too_large";

    if (r->request_body == NULL || r->request_body->temp_file) {
        return NGX_DECLINED;
    }

    len = 0;
    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len += ngx_buf_size(cl->buf);
    }

    if (len > VODLMS_BEACON_MAX) {
        return NGX_DECLINED;
    }

    cl = r->request_body->bufs;

    if (cl == NULL || cl->next == NULL) {
        /* one buffer (the usual beacon, pre-read with its headers): as is */
        body = (cl && cl->buf->pos) ? cl->buf->pos : (u_char *) "";
        n = len;

    } else {
        body = ngx_pnalloc(r->pool, len);
        if (body == NULL) {
            return NGX_ERROR;
        }

        n = 0;
        for ( /* void */ ; cl; cl = cl->next) {
            n += ngx_cpymem(body + n, cl->buf->pos, ngx_buf_size(cl->buf))
                 - (body + n);
        }
    }

    if (vodlms_beacon_parse((char *) body, n, pcf->slack, b, why)
        != VODLMS_OK)
    {
        return NGX_DECLINED;
    }

    /* the body names the video the URL (and the access check) named */
    if ((b->video_id_len != video->len
         || ngx_strncmp(b->video_id, video->data, video->len) != 0)
        && !ngx_http_vodlms_progress_url_id(r, b))
    {
        *why = "video_mismatch";
        return NGX_DECLINED;
    }

    /*
     * The video's real length, when the enrollment row has it, not the
     * player's word for it: {"currentTime": 95, "duration": 100} must not
     * complete a 60-minute lecture.
     */

    col = ngx_http_vodlms_enroll_col(r, NGX_HTTP_VODLMS_COL_DURATION);

    /* to the ms as PostgreSQL rounds it: the bitmap's grid is the SQL's */
    if (ngx_http_vodlms_column_ms(col, &ms) == NGX_OK && ms > 0) {
        known = (double) ms / 1000.0;

        if (b->current_time > known + pcf->slack) {
            *why = "position_out_of_range";
            return NGX_DECLINED;
        }

        b->duration = known;
        b->duration_known = 1;
    }

    return NGX_OK;
}


/* what the database had when the enrollment row was read */

static void
ngx_http_vodlms_progress_known(ngx_http_request_t *r, double *seen,
    ngx_uint_t *have_seen, double *played, ngx_http_vodlms_column_t **cov)
{
    ngx_http_vodlms_column_t  *col;

    /* the highest position the database has seen: the skip check's floor */

    col = ngx_http_vodlms_enroll_col(r, NGX_HTTP_VODLMS_COL_RESUME_MAX);

    *have_seen = (ngx_http_vodlms_column_double(col, seen) == NGX_OK);

    if (!*have_seen) {
        *seen = 0;
    }

    /*
     * and how much play the database has credited (completion's evidence):
     * merged with greatest() by the flush, so never inflated by several
     * entries, nodes or retried flushes writing the same viewing
     */

    col = ngx_http_vodlms_enroll_col(r, NGX_HTTP_VODLMS_COL_RESUME_PLAYED);

    if (ngx_http_vodlms_column_double(col, played) != NGX_OK
        || !(*played > 0))
    {
        *played = 0;
    }

    /* and which parts it has as played, as a bit string */

    *cov = ngx_http_vodlms_enroll_col(r, NGX_HTTP_VODLMS_COL_RESUME_COVERAGE);
}


/*
 * The bits the database has for this viewing (the enrollment row's
 * resume_coverage), read outside the zone's lock into a bitmap of the
 * beacon's duration: what was played on other nodes, or before a restart,
 * counts for completion and for "the first unwatched part".  NULL when
 * there are none, or they are not a bit string (one warn line).
 */

static vodlms_coverage_t *
ngx_http_vodlms_progress_db_bits(ngx_http_request_t *r, vodlms_coverage_t *c,
    size_t size, double duration, ngx_http_vodlms_column_t *col,
    ngx_str_t *user, ngx_str_t *video)
{
    size_t          dropped;
    u_char         *buf;
    vodlms_rc_t     rc;

    if (size == 0 || col == NULL || col->null || col->value.len == 0) {
        return NULL;
    }

    buf = ngx_pnalloc(r->pool, size);
    if (buf == NULL
        || vodlms_coverage_init(c, buf, size, duration) != VODLMS_OK)
    {
        return NULL;
    }

    rc = vodlms_coverage_parse(c, (char *) col->value.data, col->value.len,
                               &dropped);

    if (rc != VODLMS_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "vodlms progress: the enrollment row's "
                      "\"" NGX_HTTP_VODLMS_COL_RESUME_COVERAGE "\" of user "
                      "%V video %V is not a bit string (%s): not used",
                      user, video,
                      rc == VODLMS_ETOOLONG ? "too long" : "malformed");
        return NULL;
    }

    if (dropped) {
        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "vodlms progress: %uz played bits of user \"%V\" "
                       "lie past the video's %uz bits (its duration "
                       "changed): not kept", dropped, user, c->nbits);
    }

    return c;
}


/* an empty bitmap in the room a new entry was made with (none for 0) */

static void
ngx_http_vodlms_progress_cov_place(ngx_http_vodlms_progress_node_t *node,
    size_t size, double duration)
{
    vodlms_coverage_t  c;

    if (size
        && vodlms_coverage_init(&c, node->data + node->user_len
                                    + node->video_len, size, duration)
           == VODLMS_OK)
    {
        node->cov_nbits = (uint32_t) c.nbits;
        node->cov_duration_ms = c.duration_ms;
    }
}


/*
 * Under the zone's lock, before the beacon is folded in: the entry agrees
 * with the enrollment row.  A bitmap for the database's duration (made,
 * or remade when the duration changed: NULL if there is no room, the
 * entry then unchanged and not marked), with the database's bits ORed in;
 * the highest position and the played seconds at least the database's.
 */

static ngx_http_vodlms_progress_node_t *
ngx_http_vodlms_progress_sync(ngx_http_vodlms_progress_zone_t *z,
    ngx_http_vodlms_progress_node_t *node, size_t cov_size, double duration,
    vodlms_coverage_t *db, double seen, double played, ngx_log_t *log,
    ngx_uint_t *stale)
{
    vodlms_coverage_t                 cv, *c;
    ngx_http_vodlms_progress_node_t  *nn;

    *stale = 0;

    if (node->p.max_position < seen) {
        node->p.max_position = seen;
    }

    if (node->p.played < played) {
        node->p.played = played;
    }

    if (cov_size == 0) {
        return node;            /* the row gives no duration: as it is */
    }

    c = ngx_http_vodlms_progress_coverage(node, &cv);

    if (c == NULL || c->duration_ms != vodlms_coverage_duration_ms(duration)) {
        nn = ngx_http_vodlms_progress_resize(z, node, cov_size, duration, log);

        if (nn == NULL) {
            *stale = (c != NULL);
            return node;
        }

        node = nn;
        c = ngx_http_vodlms_progress_coverage(node, &cv);
    }

    if (c && db) {
        (void) vodlms_coverage_or(c, db);
    }

    return node;
}


/*
 * Under the zone's lock: fold the beacon into the entry.  NULL, or the
 * reason it is refused ("skip_ahead": the entry unchanged, or freed if it
 * was made for this beacon); *skipped: kept, but flagged.
 */

static const char *
ngx_http_vodlms_progress_merge(ngx_http_vodlms_progress_zone_t *z,
    ngx_http_vodlms_progress_node_t *node, vodlms_beacon_t *b,
    ngx_http_vodlms_progress_conf_t *pcf, ngx_uint_t have_seen,
    ngx_uint_t have_cov, ngx_uint_t stale, ngx_uint_t *skipped)
{
    double              cap, floor;
    ngx_uint_t          check;
    ngx_time_t         *tp;
    vodlms_coverage_t   cv, *c;

    /*
     * Courses that require watching: a jump far past the highest position
     * reached is refused, or "flagged": kept as the position, but the
     * highest position only advances by the allowance.  "unwatched"
     * refuses a position far past the first part not played (the
     * bitmap's), so nothing may be left out on the way.
     */
    *skipped = 0;
    cap = 0;
    c = stale ? NULL : ngx_http_vodlms_progress_coverage(node, &cv);

    /*
     * The first beacon on this node is checked too when the enrollment row
     * says how far the user got (resume_max_position, or resume_coverage
     * for "unwatched", in the default query); without it a resume from
     * another device would look like a skip, so it goes unchecked.
     */

    if (pcf->skip_mode == NGX_HTTP_VODLMS_SKIP_UNWATCHED && c) {
        floor = (double) vodlms_coverage_first_unwatched_ms(c) / 1000.0;
        check = (node->p.last_beacon_ms != 0 || have_cov);

    } else {
        floor = node->p.max_position;
        check = (node->p.last_beacon_ms != 0 || have_seen);
    }

    if (pcf->skip > 0 && b->current_time > floor + pcf->skip && check) {

        if (pcf->skip_mode != NGX_HTTP_VODLMS_SKIP_FLAG) {
            if (node->p.last_beacon_ms == 0) {
                /* made for this beacon: an empty entry would hide the
                   database's resume position from GET and playback */
                ngx_http_vodlms_progress_free(z, node);
            }

            return "skip_ahead";
        }

        *skipped = 1;
        cap = node->p.max_position + pcf->skip;
    }

    node->complete_micro =
                   (uint32_t) vodlms_coverage_fraction_micro(pcf->complete);

    tp = ngx_timeofday();
    vodlms_progress_apply(&node->p, c, c ? &node->run : NULL, b,
                          (int64_t) tp->sec * 1000 + tp->msec,
                          pcf->complete);

    if (*skipped && cap < node->p.max_position) {
        node->p.max_position = cap;
    }

    ngx_http_vodlms_progress_changed(z, node);
    z->sh->beacons++;

    return NULL;
}


static void
ngx_http_vodlms_progress_body(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    ngx_str_t                     user, video, id;
    vodlms_beacon_t               b, *copy;
    const char                   *why;
    ngx_http_vodlms_ctx_t        *ctx;
    ngx_http_vodlms_loc_conf_t   *vlcf;

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);

    if (ngx_http_vodlms_progress_who(r, &user, &video) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_vodlms_progress_beacon(r, &vlcf->progress, &video, &b,
                                         &why);

    if (rc == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (rc == NGX_DECLINED) {
        ngx_http_vodlms_progress_done(r, ngx_http_vodlms_bad_beacon(r, why));
        return;
    }

    if (vlcf->streams.role != NGX_HTTP_VODLMS_STREAMS_BEACON) {
        ngx_http_vodlms_progress_accept(r, &b);
        return;
    }

    /*
     * vodlms_streams: the beacon keeps its playback alive, or is refused
     * with it (displaced, or lapsed with no room left): nothing of it is
     * kept then.  It waits for Redis in the pool, not on the stack.
     */

    if (b.playback_id_len == 0) {
        ngx_http_vodlms_progress_done(r,
                         ngx_http_vodlms_bad_beacon(r, "missing_playback_id"));
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_vodlms_module);

    copy = ngx_palloc(r->pool, sizeof(vodlms_beacon_t));
    if (copy == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    *copy = b;
    ctx->streams.data = copy;

    id.data = (u_char *) copy->playback_id;
    id.len = copy->playback_id_len;

    rc = ngx_http_vodlms_streams_check(r, vlcf->streams.limit,
                                       &ctx->session.user_id, &id,
                                       ngx_http_vodlms_progress_streamed);

    if (rc == NGX_AGAIN) {
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (!ngx_http_vodlms_streams_passed(r)) {
        ngx_http_vodlms_progress_done(r, ngx_http_vodlms_streams_deny(r));
        return;
    }

    ngx_http_vodlms_progress_accept(r, copy);
}


/* Redis has answered for the beacon's playback */

static void
ngx_http_vodlms_progress_streamed(ngx_http_request_t *r)
{
    ngx_connection_t       *c;
    ngx_http_vodlms_ctx_t  *ctx;

    c = r->connection;
    ctx = ngx_http_get_module_ctx(r, ngx_http_vodlms_module);

    if (ngx_http_vodlms_streams_passed(r)) {
        ngx_http_vodlms_progress_accept(r, ctx->streams.data);

    } else {
        ngx_http_vodlms_progress_done(r, ngx_http_vodlms_streams_deny(r));
    }

    ngx_http_run_posted_requests(c);
}


/* a valid beacon, folded into this node's buffer and acknowledged */

static void
ngx_http_vodlms_progress_accept(ngx_http_request_t *r, vodlms_beacon_t *bp)
{
    uint32_t                           hash;
    ngx_int_t                          rc;
    ngx_str_t                          user, video, detail;
    double                             seen, played;
    size_t                             cov_size;
    ngx_uint_t                         skipped, have_seen, stale;
    vodlms_coverage_t                  dbc, *db;
    ngx_http_vodlms_column_t          *cov;
    vodlms_beacon_t                    b;
    const char                        *why;
    ngx_http_vodlms_entry_e            found;
    ngx_http_vodlms_loc_conf_t        *vlcf;
    ngx_http_vodlms_main_conf_t       *vmcf;
    ngx_http_vodlms_progress_node_t   *node;
    ngx_http_vodlms_progress_zone_t   *z;
    ngx_http_vodlms_progress_conf_t   *pcf;
#if (NGX_DEBUG)
    vodlms_progress_t                  merged;
    ngx_uint_t                         version, window;
#endif

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);
    vmcf = ngx_http_get_module_main_conf(r, ngx_http_vodlms_module);
    pcf = &vlcf->progress;

    if (ngx_http_vodlms_progress_who(r, &user, &video) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    b = *bp;

    ngx_http_vodlms_progress_known(r, &seen, &have_seen, &played, &cov);

    /* a bitmap only for the database's duration (at most 2160 bytes) */
    cov_size = b.duration_known ? vodlms_coverage_size(b.duration) : 0;
    db = ngx_http_vodlms_progress_db_bits(r, &dbc, cov_size, b.duration, cov,
                                          &user, &video);

    z = vmcf->progress.zone->data;
    hash = ngx_http_vodlms_progress_hash(&user, &video);

    ngx_shmtx_lock(&z->shpool->mutex);

    found = ngx_http_vodlms_progress_entry(z, hash, &user, &video, cov_size,
                                           pcf, ngx_current_msec,
                                           r->connection->log, &node);

    switch (found) {

    case NGX_HTTP_VODLMS_ENTRY_FULL:
        ngx_shmtx_unlock(&z->shpool->mutex);

        ngx_str_set(&detail, "every entry is waiting for the database");
        ngx_http_vodlms_progress_done(r,
              ngx_http_vodlms_deny(r, NGX_HTTP_VODLMS_PROGRESS_FULL, &detail));
        return;

    case NGX_HTTP_VODLMS_ENTRY_RATE:
        ngx_shmtx_unlock(&z->shpool->mutex);

        ngx_str_set(&detail, "more beacons than vodlms_progress_rate");
        ngx_http_vodlms_progress_done(r,
              ngx_http_vodlms_deny(r, NGX_HTTP_VODLMS_TOO_MANY_BEACONS,
                                   &detail));
        return;

    case NGX_HTTP_VODLMS_ENTRY_CREATED:
        /* made with room for its bitmap: an empty one, in place */
        ngx_http_vodlms_progress_cov_place(node, cov_size, b.duration);
        break;

    default: /* NGX_HTTP_VODLMS_ENTRY_FOUND */
        break;
    }

    /*
     * where this user got to before, on any node, as far as flushed: a new
     * entry starts from it, a found one catches up with it
     */
    node = ngx_http_vodlms_progress_sync(z, node, cov_size, b.duration, db,
                                         seen > 0 ? seen : 0, played,
                                         r->connection->log, &stale);

    why = ngx_http_vodlms_progress_merge(z, node, &b, pcf, have_seen,
                                         cov != NULL && !cov->null, stale,
                                         &skipped);

    if (why) {
        ngx_shmtx_unlock(&z->shpool->mutex);
        ngx_http_vodlms_progress_done(r, ngx_http_vodlms_bad_beacon(r, why));
        return;
    }

#if (NGX_DEBUG)
    merged = node->p;
    version = node->version;
    window = node->window_count;
#endif

    ngx_shmtx_unlock(&z->shpool->mutex);

    ngx_http_vodlms_progress_hold(vmcf);

#if (NGX_DEBUG)
    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "vodlms progress: beacon merged into the %s entry of "
                   "user \"%V\" video \"%V\" (version %ui, "
                   "vodlms_progress_rate count %ui)",
                   found == NGX_HTTP_VODLMS_ENTRY_CREATED ? "new" : "found",
                   &user, &video, version, window);

    ngx_log_debug6(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "vodlms progress: merged: position %.3f, highest %.3f, "
                   "duration %.3f, watched pending %.3f, played %.3f, "
                   "completed at %L", merged.position, merged.max_position,
                   merged.duration, merged.watched_pending, merged.played,
                   merged.completed_at);
#endif

    if (skipped) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "vodlms progress: user %V skipped ahead in video %V "
                      "to %.1f s, past the %.0f s allowed: flagged",
                      &user, &video, b.current_time, pcf->skip);
    }

    /* acknowledged: it is in shared memory, which outlives workers */

    r->headers_out.status = NGX_HTTP_NO_CONTENT;
    r->headers_out.content_length_n = 0;
    r->header_only = 1;

    rc = ngx_http_send_header(r);

    ngx_http_finalize_request(r, rc);
}


ngx_int_t
ngx_http_vodlms_progress_resume(ngx_http_request_t *r, double *position,
    double *duration, ngx_uint_t *completed)
{
    uint32_t                          hash;
    ngx_str_t                         user, video;
    ngx_http_vodlms_column_t         *col;
    ngx_http_vodlms_main_conf_t      *vmcf;
    ngx_http_vodlms_progress_zone_t  *z;
    ngx_http_vodlms_progress_node_t  *node;

    *position = 0;
    *duration = 0;
    *completed = 0;

    if (ngx_http_vodlms_progress_who(r, &user, &video) != NGX_OK) {
        return NGX_ERROR;
    }

    col = ngx_http_vodlms_enroll_col(r, NGX_HTTP_VODLMS_COL_DURATION);
    (void) ngx_http_vodlms_column_double(col, duration);

    vmcf = ngx_http_get_module_main_conf(r, ngx_http_vodlms_module);

    /* this node's buffer is at least as new as what it flushed */

    if (vmcf->progress.zone) {
        z = vmcf->progress.zone->data;
        hash = ngx_http_vodlms_progress_hash(&user, &video);

        ngx_shmtx_lock(&z->shpool->mutex);

        node = ngx_http_vodlms_progress_find(z, hash, &user, &video);

        if (node) {
            *position = node->p.position;
            *duration = node->p.duration;
            *completed = node->p.completed_at != 0;
        }

        ngx_shmtx_unlock(&z->shpool->mutex);

        if (node) {
            return NGX_OK;
        }
    }

    /* else what the enrollment query read from watch_progress */

    col = ngx_http_vodlms_enroll_col(r, NGX_HTTP_VODLMS_COL_RESUME_POSITION);
    (void) ngx_http_vodlms_column_double(col, position);

    col = ngx_http_vodlms_enroll_col(r, NGX_HTTP_VODLMS_COL_RESUME_COMPLETED);
    if (col && !col->null && col->value.len && col->value.data[0] == 't') {
        *completed = 1;
    }

    return NGX_OK;
}


/*
 * Where the first part not played starts (ms), for "unwatched": this
 * node's entry when it has a bitmap, else the enrollment row's
 * resume_coverage for its duration_seconds.  NGX_DECLINED when neither is
 * known (the first beacon is then not checked either).
 */

static ngx_int_t
ngx_http_vodlms_progress_first_unwatched(ngx_http_request_t *r,
    int64_t *ms)
{
    size_t                            size, nbytes;
    double                            duration;
    int64_t                           dms;
    uint32_t                          hash;
    ngx_str_t                         user, video;
    vodlms_coverage_t                 cv, dbc, *c, *db;
    ngx_http_vodlms_column_t         *col;
    ngx_http_vodlms_main_conf_t      *vmcf;
    ngx_http_vodlms_progress_zone_t  *z;
    ngx_http_vodlms_progress_node_t  *node;

    if (ngx_http_vodlms_progress_who(r, &user, &video) != NGX_OK) {
        return NGX_DECLINED;
    }

    /* the database's bits, for its duration */

    db = NULL;
    col = ngx_http_vodlms_enroll_col(r, NGX_HTTP_VODLMS_COL_DURATION);

    if (ngx_http_vodlms_column_ms(col, &dms) == NGX_OK && dms > 0) {
        duration = (double) dms / 1000.0;
        size = vodlms_coverage_size(duration);
        col = ngx_http_vodlms_enroll_col(r,
                                         NGX_HTTP_VODLMS_COL_RESUME_COVERAGE);

        if (size && col && !col->null) {
            /* an empty string is known too: nothing played yet */
            dbc.bits = ngx_pnalloc(r->pool, size);
            if (dbc.bits == NULL
                || vodlms_coverage_init(&dbc, dbc.bits, size, duration)
                   != VODLMS_OK
                || vodlms_coverage_parse(&dbc, (char *) col->value.data,
                                         col->value.len, &size)
                   != VODLMS_OK)
            {
                return NGX_DECLINED;
            }

            db = &dbc;
        }
    }

    /* and this node's, which may be newer */

    vmcf = ngx_http_get_module_main_conf(r, ngx_http_vodlms_module);
    z = vmcf->progress.zone->data;
    hash = ngx_http_vodlms_progress_hash(&user, &video);

    ngx_shmtx_lock(&z->shpool->mutex);

    node = ngx_http_vodlms_progress_find(z, hash, &user, &video);
    c = node ? ngx_http_vodlms_progress_coverage(node, &cv) : NULL;

    if (c) {
        nbytes = (c->nbits + 7) / 8;
        cv.bits = ngx_pnalloc(r->pool, nbytes);

        if (cv.bits == NULL) {
            ngx_shmtx_unlock(&z->shpool->mutex);
            return NGX_DECLINED;
        }

        ngx_memcpy(cv.bits, node->data + node->user_len + node->video_len,
                   nbytes);
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    if (c && db) {
        (void) vodlms_coverage_or(c, db);
    }

    if (c == NULL) {
        c = db;
    }

    if (c == NULL) {
        return NGX_DECLINED;
    }

    *ms = vodlms_coverage_first_unwatched_ms(c);

    return NGX_OK;
}


static ngx_int_t
ngx_http_vodlms_progress_get(ngx_http_request_t *r)
{
    u_char                           *p;
    double                            position, duration, limit;
    int64_t                           first;
    ngx_int_t                         rc;
    ngx_buf_t                        *b;
    ngx_str_t                         id;
    ngx_uint_t                        completed;
    ngx_http_vodlms_loc_conf_t       *vlcf;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_vodlms_progress_resume(r, &position, &duration, &completed)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_vodlms_progress_who(r, &id, &id) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the id is [A-Za-z0-9_-]: no JSON escaping needed */
    b = ngx_create_temp_buf(r->pool, id.len + 192);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(b->last, "{\"videoId\":\"%V\",\"position\":%.3f,"
                    "\"duration\":%.3f,\"completed\":%s", &id,
                    position, duration, completed ? "true" : "false");

    /*
     * "unwatched": how far the player may seek now, so that it can stop
     * the viewer there instead of sending beacons that are refused
     */
    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);

    if (vlcf->progress.skip > 0
        && vlcf->progress.skip_mode == NGX_HTTP_VODLMS_SKIP_UNWATCHED
        && ngx_http_vodlms_progress_first_unwatched(r, &first) == NGX_OK)
    {
        limit = (double) first / 1000.0 + vlcf->progress.skip;
        if (duration > 0 && limit > duration) {
            limit = duration;
        }

        p = ngx_sprintf(p, ",\"seekLimit\":%.3f", limit);
    }

    *p++ = '}';
    *p++ = LF;
    b->last = p;

    return ngx_http_vodlms_send(r, NGX_HTTP_OK, "application/json", b);
}


/* configuration of locations */

void
ngx_http_vodlms_progress_create_conf(ngx_http_vodlms_progress_conf_t *pcf)
{
    pcf->enable = NGX_CONF_UNSET;
    pcf->rate = NGX_CONF_UNSET_UINT;
    pcf->rate_window = NGX_CONF_UNSET_MSEC;
    pcf->complete = -1;
    pcf->slack = -1;
    pcf->skip = -1;
    pcf->skip_mode = NGX_CONF_UNSET_UINT;
}


char *
ngx_http_vodlms_progress_merge_conf(ngx_conf_t *cf,
    ngx_http_vodlms_progress_conf_t *prev,
    ngx_http_vodlms_progress_conf_t *conf)
{
    ngx_http_vodlms_loc_conf_t   *vlcf;
    ngx_http_vodlms_main_conf_t  *vmcf;

    ngx_uint_t                    n, k;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_uint_value(conf->rate, prev->rate, 60);
    ngx_conf_merge_msec_value(conf->rate_window, prev->rate_window, 60000);

    if (conf->complete < 0) {
        conf->complete = prev->complete < 0 ? 0.9 : prev->complete;
    }

    if (conf->skip < 0) {
        conf->skip = prev->skip < 0 ? 0 : prev->skip;
        conf->skip_mode = prev->skip_mode;
    }

    ngx_conf_merge_uint_value(conf->skip_mode, prev->skip_mode,
                              NGX_HTTP_VODLMS_SKIP_FLAG);

    if (conf->slack < 0) {
        conf->slack = prev->slack < 0 ? NGX_HTTP_VODLMS_END_SLACK
                                      : prev->slack;
    }

    if (!conf->enable) {
        return NGX_CONF_OK;
    }

    vmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_vodlms_module);
    vlcf = (ngx_http_vodlms_loc_conf_t *)
           ((u_char *) conf - offsetof(ngx_http_vodlms_loc_conf_t, progress));

    if (vmcf->progress.zone == NULL || vmcf->pg == NULL) {
        ngx_http_vodlms_merge_error(cf,
                                    "\"vodlms_progress\" needs a buffer and a "
                                    "database: add \"vodlms_progress_zone\" "
                                    "and \"vodlms_pg\"");
        return NGX_CONF_ERROR;
    }

    if (!vlcf->enroll.enable) {
        ngx_http_vodlms_merge_error(cf,
                                    "\"vodlms_progress\" needs the user and "
                                    "the video: add \"vodlms_auth on\", "
                                    "\"vodlms_enrollment_check on\" and "
                                    "\"vodlms_video_id\"");
        return NGX_CONF_ERROR;
    }

    if (vmcf->progress.flush_sql.len == 0) {
        if (ngx_http_vodlms_sql_in_schema(cf, &ngx_http_vodlms_default_flush,
                                          &vmcf->progress.flush_sql)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    /*
     * $1..$7 always; then $8 (the played seconds), $9 (the coverage) and
     * $10 (the completion fraction), each with those before it, as far as
     * the statement goes
     */
    if (vmcf->progress.flush_nparams == 0) {
        n = ngx_http_vodlms_highest_param(&vmcf->progress.flush_sql);

        if (n < 7 || n > 10) {
            ngx_http_vodlms_merge_error(cf,
                "\"vodlms_progress_flush_query\" must use the parameters "
                "$1 to $7, and may go on to $8 (the played seconds), $9 "
                "(the coverage) and $10 (the completion fraction)");
            return NGX_CONF_ERROR;
        }

        /* PostgreSQL cannot type a parameter the statement skips */
        for (k = 1; k <= n; k++) {
            if (!ngx_http_vodlms_progress_uses(&vmcf->progress.flush_sql, k)) {
                ngx_http_vodlms_merge_error(cf,
                    "\"vodlms_progress_flush_query\" uses $%ui but not "
                    "$%ui: a statement that goes on to a parameter uses "
                    "every one before it", n, k);
                return NGX_CONF_ERROR;
            }
        }

        vmcf->progress.flush_nparams = n;
    }

    return NGX_CONF_OK;
}


/* $k appears in the statement (not as the start of a longer $kN) */

static ngx_uint_t
ngx_http_vodlms_progress_uses(ngx_str_t *sql, ngx_uint_t k)
{
    u_char  *p, *last, *end;
    u_char   name[NGX_INT_T_LEN + 1];
    size_t   len;

    len = ngx_sprintf(name, "$%ui", k) - name;
    last = sql->data + sql->len;

    for (p = sql->data; p < last; p = end) {
        p = ngx_strlcasestrn(p, last, name, len - 1);
        if (p == NULL) {
            return 0;
        }

        end = p + len;

        if (end == last || *end < '0' || *end > '9') {
            return 1;
        }
    }

    return 0;
}


char *
ngx_http_vodlms_progress(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vodlms_loc_conf_t  *vlcf = conf;

    char                      *rv;
    ngx_http_core_loc_conf_t  *clcf;

    rv = ngx_conf_set_flag_slot(cf, cmd, &vlcf->progress);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (vlcf->progress.enable) {
        clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
        clcf->handler = ngx_http_vodlms_progress_handler;
    }

    return NGX_CONF_OK;
}


/* vodlms_progress_rate 60r/m | 2r/s | off; */

char *
ngx_http_vodlms_progress_rate(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vodlms_loc_conf_t  *vlcf = conf;

    size_t      len;
    ngx_int_t   n;
    ngx_str_t  *value;

    if (vlcf->progress.rate != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    len = value[1].len;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        vlcf->progress.rate = 0;
        vlcf->progress.rate_window = 60000;
        return NGX_CONF_OK;
    }

    if (len > 3 && ngx_strncmp(value[1].data + len - 3, "r/s", 3) == 0) {
        vlcf->progress.rate_window = 1000;

    } else if (len > 3 && ngx_strncmp(value[1].data + len - 3, "r/m", 3) == 0) {
        vlcf->progress.rate_window = 60000;

    } else {
        goto invalid;
    }

    n = ngx_atoi(value[1].data, len - 3);
    if (n == NGX_ERROR || n == 0) {
        goto invalid;
    }

    vlcf->progress.rate = n;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid rate \"%V\", expected e.g. \"60r/m\", "
                       "\"2r/s\" or \"off\"", &value[1]);
    return NGX_CONF_ERROR;
}


/* vodlms_progress_complete 0.9; */

char *
ngx_http_vodlms_progress_fraction(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    char  *p = conf;

    double     *d, v;
    ngx_str_t  *value;
    char       *end;

    d = (double *) (p + cmd->offset);

    if (*d >= 0) {
        return "is duplicate";
    }

    value = cf->args->elts;

    v = strtod((char *) value[1].data, &end);

    /* at least a millionth: what the flush sends ($10) and the core judges */
    if (end != (char *) value[1].data + value[1].len || !(v > 0 && v <= 1)
        || vodlms_coverage_fraction_micro(v) == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid fraction \"%V\" in \"%V\", expected a "
                           "number in [0.000001, 1]", &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    *d = v;

    return NGX_CONF_OK;
}


/* vodlms_progress_skip off | time flag | time refuse | time unwatched; */

static ngx_conf_enum_t  ngx_http_vodlms_skip_modes[] = {
    { ngx_string("flag"), NGX_HTTP_VODLMS_SKIP_FLAG },
    { ngx_string("refuse"), NGX_HTTP_VODLMS_SKIP_REFUSE },
    { ngx_string("unwatched"), NGX_HTTP_VODLMS_SKIP_UNWATCHED },
    { ngx_null_string, 0 }
};


char *
ngx_http_vodlms_progress_skip(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vodlms_loc_conf_t  *vlcf = conf;

    time_t            t;
    ngx_str_t        *value;
    ngx_conf_enum_t  *e;

    if (vlcf->progress.skip >= 0) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        vlcf->progress.skip = 0;
        vlcf->progress.skip_mode = NGX_HTTP_VODLMS_SKIP_FLAG;
        return NGX_CONF_OK;
    }

    t = (cf->args->nelts == 3) ? ngx_parse_time(&value[1], 1) : NGX_ERROR;

    for (e = ngx_http_vodlms_skip_modes; e->name.len; e++) {
        if (cf->args->nelts == 3 && value[2].len == e->name.len
            && ngx_strcmp(value[2].data, e->name.data) == 0)
        {
            break;
        }
    }

    if (t == (time_t) NGX_ERROR || t <= 0 || e->name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"vodlms_progress_skip\", expected "
                           "\"off\", \"<time> flag\", \"<time> refuse\" "
                           "or \"<time> unwatched\"");
        return NGX_CONF_ERROR;
    }

    vlcf->progress.skip = (double) t;
    vlcf->progress.skip_mode = e->value;

    return NGX_CONF_OK;
}
