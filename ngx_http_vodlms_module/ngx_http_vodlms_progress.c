/*
 * Watch progress.
 *
 * Beacons (POST) are validated by the pure core, folded into a per-(user,
 * video) entry in shared memory and answered 204 at once.  A flush timer
 * runs in every worker; one worker at a time claims the flush under the
 * zone's mutex and writes ALL dirty entries in ONE statement (an upsert
 * from arrays).  An entry is marked clean only if no beacon changed it
 * since the snapshot, and only after the commit: a failed flush leaves
 * everything dirty for the next try.  Nothing is marked "in flight" in
 * shared memory, so a worker that dies mid-flush loses nothing: another
 * one takes the claim over once it is stale and flushes again.
 *
 * GET answers the saved position for resume: this node's buffer when it
 * has the entry, otherwise the enrollment query's resume columns.
 */

#include "ngx_http_vodlms_module.h"


#define NGX_HTTP_VODLMS_USER_MAX   VODLMS_USER_ID_MAX
#define NGX_HTTP_VODLMS_END_SLACK  5.0

/* what a worker leaving on SIGTERM spends on the last flush: nginx's master
   sends SIGKILL about 1.5 s after the first SIGTERM */
#define NGX_HTTP_VODLMS_EXIT_FLUSH 1000

/* how long a gracefully exiting worker keeps trying a failing database */
#define NGX_HTTP_VODLMS_QUIT_WAIT  30000


typedef struct {
    ngx_rbtree_node_t           node;       /* key: crc32(user\0video) */
    ngx_queue_t                 queue;      /* LRU, most recent first */
    vodlms_progress_t           p;
    ngx_uint_t                  version;    /* bumped by every beacon */
    ngx_uint_t                  flushed;    /* the version in the database */
    ngx_msec_t                  window_start;
    ngx_uint_t                  window_count;
    u_char                      user_len;
    u_char                      video_len;
    u_char                      data[1];    /* user, then video */
} ngx_http_vodlms_progress_node_t;


typedef struct {
    ngx_rbtree_t                rbtree;
    ngx_rbtree_node_t           sentinel;
    ngx_queue_t                 lru;
    ngx_uint_t                  dirty;
    ngx_pid_t                   flusher;
    ngx_msec_t                  flush_started;
    ngx_atomic_uint_t           beacons;
    ngx_atomic_uint_t           flushes;
    ngx_atomic_uint_t           flush_failures;
    ngx_atomic_uint_t           rows;
    ngx_atomic_uint_t           full;
    ngx_atomic_uint_t           set_aside;   /* entries the query refused */
    ngx_uint_t                  split;       /* 0, or the batch size while
                                                a refused entry is sought */
} ngx_http_vodlms_progress_sh_t;


typedef struct {
    ngx_http_vodlms_progress_sh_t  *sh;
    ngx_slab_pool_t                *shpool;
} ngx_http_vodlms_progress_zone_t;


/* one entry of a flush, copied out of shared memory */
typedef struct {
    ngx_str_t                   user;
    ngx_str_t                   video;
    vodlms_progress_t           p;
    ngx_uint_t                  version;
} ngx_http_vodlms_progress_snap_t;


typedef struct {
    ngx_http_vodlms_main_conf_t    *vmcf;
    ngx_array_t                    *snaps;
} ngx_http_vodlms_flush_t;


/*
 * The default flush: one upsert from arrays for the whole batch.  Rows for
 * users or videos the database does not know are skipped (they would fail
 * the whole batch on the foreign keys); the flush logs how many.
 */
static ngx_str_t  ngx_http_vodlms_default_flush = ngx_string(
    "INSERT INTO vodlms.watch_progress AS wp (user_id, video_id,"
    " position_seconds, max_position_seconds, duration_seconds,"
    " watched_seconds, completed_at, played_seconds)"
    " SELECT b.u, b.v, b.p, b.m, b.d, b.w,"
    "  CASE WHEN b.c > 0 THEN to_timestamp(b.c) END, b.pl"
    " FROM unnest($1::text[], $2::text[], $3::numeric[], $4::numeric[],"
    "  $5::numeric[], $6::numeric[], $7::float8[], $8::numeric[])"
    "  AS b(u, v, p, m, d, w, c, pl)"
    " JOIN vodlms.videos v ON v.id = b.v JOIN vodlms.users u ON u.id = b.u"
    " ON CONFLICT (user_id, video_id) DO UPDATE SET"
    "  position_seconds = EXCLUDED.position_seconds,"
    "  max_position_seconds = greatest(wp.max_position_seconds,"
    "   EXCLUDED.max_position_seconds),"
    "  duration_seconds = EXCLUDED.duration_seconds,"
    "  watched_seconds = wp.watched_seconds + EXCLUDED.watched_seconds,"
    "  completed_at = coalesce(wp.completed_at, EXCLUDED.completed_at),"
    "  played_seconds = greatest(wp.played_seconds, EXCLUDED.played_seconds)");


extern ngx_module_t  ngx_http_vodlms_module;


static ngx_int_t ngx_http_vodlms_progress_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_vodlms_bad_beacon(ngx_http_request_t *r,
    const char *why);
static void ngx_http_vodlms_progress_done(ngx_http_request_t *r,
    ngx_int_t rc);
static void ngx_http_vodlms_progress_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_vodlms_progress_get(ngx_http_request_t *r);
static ngx_http_vodlms_progress_node_t *ngx_http_vodlms_progress_find(
    ngx_http_vodlms_progress_zone_t *z, uint32_t hash, ngx_str_t *user,
    ngx_str_t *video);
static void ngx_http_vodlms_progress_flush(ngx_event_t *ev);
static void ngx_http_vodlms_progress_flushed(void *data,
    ngx_vodlms_pg_status_e status, PGresult *res, const char *reason);
static void ngx_http_vodlms_progress_schedule(
    ngx_http_vodlms_main_conf_t *vmcf);
static ngx_int_t ngx_http_vodlms_progress_init_zone(ngx_shm_zone_t *zone,
    void *data);
static void ngx_http_vodlms_progress_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);


static uint32_t
ngx_http_vodlms_progress_hash(ngx_str_t *user, ngx_str_t *video)
{
    uint32_t  crc;

    ngx_crc32_init(crc);
    ngx_crc32_update(&crc, user->data, user->len);
    ngx_crc32_update(&crc, (u_char *) "", 1);
    ngx_crc32_update(&crc, video->data, video->len);
    ngx_crc32_final(crc);

    return crc;
}


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
    col = ngx_http_vodlms_enroll_column(r, (u_char *) "id", 2);

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


static void
ngx_http_vodlms_progress_body(ngx_http_request_t *r)
{
    u_char                            *body;
    size_t                             len, n;
    uint32_t                           hash;
    ngx_int_t                          rc;
    ngx_str_t                          user, video, detail;
    ngx_msec_t                         now;
    ngx_chain_t                       *cl;
    ngx_queue_t                       *q;
    double                             cap, known, seen, played;
    ngx_uint_t                         skipped, have_seen;
    ngx_time_t                        *tp;
    vodlms_beacon_t                    b;
    const char                        *why;
    ngx_http_vodlms_loc_conf_t        *vlcf;
    ngx_http_vodlms_main_conf_t       *vmcf;
    ngx_http_vodlms_progress_node_t   *node, *old;
    ngx_http_vodlms_progress_zone_t   *z;
    ngx_http_vodlms_progress_conf_t   *pcf;
    ngx_http_vodlms_column_t          *col;

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);
    vmcf = ngx_http_get_module_main_conf(r, ngx_http_vodlms_module);
    pcf = &vlcf->progress;

    if (ngx_http_vodlms_progress_who(r, &user, &video) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* the body, in memory and small (sendBeacon: text/plain or a Blob) */

    if (r->request_body == NULL || r->request_body->temp_file) {
        ngx_http_vodlms_progress_done(r,
                              ngx_http_vodlms_bad_beacon(r, "body_too_large"));
        return;
    }

    len = 0;
    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len += ngx_buf_size(cl->buf);
    }

    if (len > VODLMS_BEACON_MAX) {
        ngx_http_vodlms_progress_done(r,
                              ngx_http_vodlms_bad_beacon(r, "body_too_large"));
        return;
    }

    cl = r->request_body->bufs;

    if (cl == NULL || cl->next == NULL) {
        /* one buffer (the usual beacon, pre-read with its headers): as is */
        body = (cl && cl->buf->pos) ? cl->buf->pos : (u_char *) "";
        n = len;

    } else {
        body = ngx_pnalloc(r->pool, len);
        if (body == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        n = 0;
        for ( /* void */ ; cl; cl = cl->next) {
            n += ngx_cpymem(body + n, cl->buf->pos, ngx_buf_size(cl->buf))
                 - (body + n);
        }
    }

    if (vodlms_beacon_parse((char *) body, n, pcf->slack, &b, &why)
        != VODLMS_OK)
    {
        ngx_http_vodlms_progress_done(r, ngx_http_vodlms_bad_beacon(r, why));
        return;
    }

    /* the body names the video the URL (and the access check) named */
    if ((b.video_id_len != video.len
         || ngx_strncmp(b.video_id, video.data, video.len) != 0)
        && !ngx_http_vodlms_progress_url_id(r, &b))
    {
        ngx_http_vodlms_progress_done(r,
                              ngx_http_vodlms_bad_beacon(r, "video_mismatch"));
        return;
    }

    /*
     * The video's real length, when the enrollment row has it, not the
     * player's word for it: {"currentTime": 95, "duration": 100} must not
     * complete a 60-minute lecture.
     */

    col = ngx_http_vodlms_enroll_column(r, (u_char *) "duration_seconds", 16);

    if (ngx_http_vodlms_column_double(col, &known) == NGX_OK) {

        if (known > 0) {
            if (b.current_time > known + pcf->slack) {
                ngx_http_vodlms_progress_done(r,
                      ngx_http_vodlms_bad_beacon(r, "position_out_of_range"));
                return;
            }

            b.duration = known;
            b.duration_known = 1;
        }
    }

    /* the highest position the database has seen: the skip check's floor */

    col = ngx_http_vodlms_enroll_column(r, (u_char *) "resume_max_position",
                                        19);

    have_seen = (ngx_http_vodlms_column_double(col, &seen) == NGX_OK);

    if (!have_seen) {
        seen = 0;
    }

    /*
     * and how much play the database has credited (completion's evidence):
     * merged with greatest() by the flush, so never inflated by several
     * entries, nodes or retried flushes writing the same viewing
     */

    col = ngx_http_vodlms_enroll_column(r, (u_char *) "resume_played_seconds",
                                        21);

    if (ngx_http_vodlms_column_double(col, &played) != NGX_OK
        || !(played > 0))
    {
        played = 0;
    }

    z = vmcf->progress.zone->data;
    hash = ngx_http_vodlms_progress_hash(&user, &video);
    now = ngx_current_msec;

    ngx_shmtx_lock(&z->shpool->mutex);

    node = ngx_http_vodlms_progress_find(z, hash, &user, &video);

    if (node == NULL) {
        n = offsetof(ngx_http_vodlms_progress_node_t, data)
            + user.len + video.len;

        node = ngx_slab_alloc_locked(z->shpool, n);

        /* full: clean entries make room, least recently used first */

        for (q = ngx_queue_last(&z->sh->lru);
             node == NULL && q != ngx_queue_sentinel(&z->sh->lru);
             /* void */)
        {
            old = ngx_queue_data(q, ngx_http_vodlms_progress_node_t, queue);
            q = ngx_queue_prev(q);

            if (old->version != old->flushed) {
                continue;       /* dirty: never dropped */
            }

            ngx_queue_remove(&old->queue);
            ngx_rbtree_delete(&z->sh->rbtree, &old->node);
            ngx_slab_free_locked(z->shpool, old);

            node = ngx_slab_alloc_locked(z->shpool, n);
        }

        if (node == NULL) {
            z->sh->full++;
            ngx_shmtx_unlock(&z->shpool->mutex);

            ngx_str_set(&detail, "every entry is waiting for the database");
            ngx_http_vodlms_progress_done(r,
                  ngx_http_vodlms_deny(r, NGX_HTTP_VODLMS_PROGRESS_FULL,
                                       &detail));
            return;
        }

        ngx_memzero(node, n);
        node->node.key = hash;
        node->user_len = (u_char) user.len;
        node->video_len = (u_char) video.len;
        ngx_memcpy(node->data, user.data, user.len);
        ngx_memcpy(node->data + user.len, video.data, video.len);

        /* where this user got to before, on any node, as far as flushed */
        node->p.max_position = seen > 0 ? seen : 0;
        node->p.played = played;

        ngx_rbtree_insert(&z->sh->rbtree, &node->node);
        ngx_queue_insert_head(&z->sh->lru, &node->queue);

    } else {
        ngx_queue_remove(&node->queue);
        ngx_queue_insert_head(&z->sh->lru, &node->queue);
    }

    /* too frequent: coalesced anyway; past the rate, refused */

    if (pcf->rate) {
        if (now - node->window_start >= pcf->rate_window) {
            node->window_start = now;
            node->window_count = 0;
        }

        if (++node->window_count > pcf->rate) {
            ngx_shmtx_unlock(&z->shpool->mutex);

            ngx_str_set(&detail, "more beacons than vodlms_progress_rate");
            ngx_http_vodlms_progress_done(r,
                  ngx_http_vodlms_deny(r, NGX_HTTP_VODLMS_TOO_MANY_BEACONS,
                                       &detail));
            return;
        }
    }

    /*
     * Courses that require watching: a jump far past the highest position
     * reached is refused, or "flagged": kept as the position, but the
     * highest position (and so completion) only advances by the allowance.
     */
    skipped = 0;

    /*
     * The first beacon on this node is checked too when the enrollment row
     * says how far the user got (resume_max_position, in the default
     * query); without that column a resume from another device would look
     * like a skip, so it goes unchecked.
     */

    if (pcf->skip > 0
        && b.current_time > node->p.max_position + pcf->skip
        && (node->p.last_beacon_ms != 0 || have_seen))
    {
        if (pcf->skip_refuse) {
            if (node->p.last_beacon_ms == 0) {
                /* made for this beacon: an empty entry would hide the
                   database's resume position from GET and playback */
                ngx_queue_remove(&node->queue);
                ngx_rbtree_delete(&z->sh->rbtree, &node->node);
                ngx_slab_free_locked(z->shpool, node);
            }

            ngx_shmtx_unlock(&z->shpool->mutex);
            ngx_http_vodlms_progress_done(r,
                              ngx_http_vodlms_bad_beacon(r, "skip_ahead"));
            return;
        }

        skipped = 1;
        cap = node->p.max_position + pcf->skip;
    }

    tp = ngx_timeofday();
    vodlms_progress_apply(&node->p, &b, (int64_t) tp->sec * 1000 + tp->msec,
                          pcf->complete, NGX_HTTP_VODLMS_END_SLACK);

    if (skipped) {
        node->p.max_position = cap;

        if (node->p.completed_at
            && cap < pcf->complete * node->p.duration)
        {
            node->p.completed_at = 0;
        }
    }

    if (node->version == node->flushed) {
        z->sh->dirty++;
    }

    node->version++;
    z->sh->beacons++;

    ngx_shmtx_unlock(&z->shpool->mutex);

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

    col = ngx_http_vodlms_enroll_column(r, (u_char *) "duration_seconds", 16);
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

    col = ngx_http_vodlms_enroll_column(r, (u_char *) "resume_position", 15);
    (void) ngx_http_vodlms_column_double(col, position);

    col = ngx_http_vodlms_enroll_column(r, (u_char *) "resume_completed", 16);
    if (col && !col->null && col->value.len && col->value.data[0] == 't') {
        *completed = 1;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_vodlms_progress_get(ngx_http_request_t *r)
{
    u_char       *p;
    double        position, duration;
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_str_t     id;
    ngx_uint_t    completed;

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
    b = ngx_create_temp_buf(r->pool, id.len + 128);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(b->last, "{\"videoId\":\"%V\",\"position\":%.3f,"
                    "\"duration\":%.3f,\"completed\":%s}\n", &id,
                    position, duration, completed ? "true" : "false");
    b->last = p;

    return ngx_http_vodlms_send(r, NGX_HTTP_OK, "application/json", b);
}


static ngx_http_vodlms_progress_node_t *
ngx_http_vodlms_progress_find(ngx_http_vodlms_progress_zone_t *z,
    uint32_t hash, ngx_str_t *user, ngx_str_t *video)
{
    ngx_int_t                         rc;
    ngx_rbtree_node_t                *node, *sentinel;
    ngx_http_vodlms_progress_node_t  *pn;

    node = z->sh->rbtree.root;
    sentinel = z->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        pn = (ngx_http_vodlms_progress_node_t *) node;

        rc = ngx_memn2cmp(user->data, pn->data, user->len, pn->user_len);
        if (rc == 0) {
            rc = ngx_memn2cmp(video->data, pn->data + pn->user_len,
                              video->len, pn->video_len);
        }

        if (rc == 0) {
            return pn;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static void
ngx_http_vodlms_progress_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_int_t                         rc;
    ngx_rbtree_node_t               **p;
    ngx_http_vodlms_progress_node_t  *n, *t;

    for ( ;; ) {

        if (node->key != temp->key) {
            p = (node->key < temp->key) ? &temp->left : &temp->right;

        } else {
            n = (ngx_http_vodlms_progress_node_t *) node;
            t = (ngx_http_vodlms_progress_node_t *) temp;

            rc = ngx_memn2cmp(n->data, t->data, n->user_len, t->user_len);
            if (rc == 0) {
                rc = ngx_memn2cmp(n->data + n->user_len,
                                  t->data + t->user_len, n->video_len,
                                  t->video_len);
            }

            p = (rc < 0) ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


/* flushing */

/* a PostgreSQL array literal of text: {"a","b"}, with " and \ escaped */

static u_char *
ngx_http_vodlms_text_array(u_char *p, ngx_str_t *s)
{
    size_t  i;

    *p++ = '"';

    for (i = 0; i < s->len; i++) {
        if (s->data[i] == '"' || s->data[i] == '\\') {
            *p++ = '\\';
        }
        *p++ = s->data[i];
    }

    *p++ = '"';

    return p;
}


/*
 * Claim the flush and snapshot the dirty entries (up to the batch size)
 * into the statement's seven (or eight) parallel arrays.  NGX_OK: *fp and values[]
 * are ready and the claim is ours, to be released by _flushed(), which also
 * destroys the pool; NGX_DECLINED: nothing dirty, or another worker is
 * flushing; NGX_ERROR: no memory, with *fp left NULL if nothing was
 * claimed, or set (the claim taken) for _flushed() to release.
 */

static ngx_int_t
ngx_http_vodlms_progress_batch(ngx_http_vodlms_main_conf_t *vmcf,
    ngx_log_t *log, ngx_http_vodlms_flush_t **fp, ngx_str_t *values)
{
    u_char                            *p[8];
    size_t                             len[8];
    ngx_uint_t                         i, k, limit, nk;
    ngx_pool_t                        *pool;
    ngx_queue_t                       *q;
    ngx_http_vodlms_flush_t           *f;
    ngx_pid_t                          dead;
    ngx_http_vodlms_progress_node_t   *node;
    ngx_http_vodlms_progress_snap_t   *snap;
    ngx_http_vodlms_progress_zone_t   *z;

    z = vmcf->progress.zone->data;

    ngx_shmtx_lock(&z->shpool->mutex);

    if (z->sh->dirty == 0) {
        ngx_shmtx_unlock(&z->shpool->mutex);
        return NGX_DECLINED;
    }

    /*
     * One flusher at a time.  Another worker's claim is dead when it is
     * older than a query can take, or when that worker is gone (killed or
     * crashed with its flush on the way: the master has reaped it, so the
     * pid names no process).  The entries it was writing are still dirty
     * and go in this batch.
     */
    dead = 0;

    if (z->sh->flusher != 0 && z->sh->flusher != ngx_pid) {
        if (ngx_current_msec - z->sh->flush_started
            < vmcf->pg->timeout + vmcf->progress.flush_interval)
        {
            if (kill(z->sh->flusher, 0) == 0 || ngx_errno != NGX_ESRCH) {
                ngx_shmtx_unlock(&z->shpool->mutex);
                return NGX_DECLINED;
            }

            dead = z->sh->flusher;
        }
    }

    pool = ngx_create_pool(4096, log);
    f = pool ? ngx_pcalloc(pool, sizeof(ngx_http_vodlms_flush_t)) : NULL;
    if (f) {
        f->snaps = ngx_array_create(pool, 64,
                                    sizeof(ngx_http_vodlms_progress_snap_t));
    }

    if (f == NULL || f->snaps == NULL) {
        ngx_shmtx_unlock(&z->shpool->mutex);
        if (pool) {
            ngx_destroy_pool(pool);
        }
        return NGX_ERROR;
    }

    f->vmcf = vmcf;

    z->sh->flusher = ngx_pid;
    z->sh->flush_started = ngx_current_msec;

    /* whatever happens next, _flushed() releases it */
    vmcf->progress.flush_pool = pool;
    vmcf->progress.flush = f;
    *fp = f;

    limit = z->sh->split ? z->sh->split : vmcf->progress.batch;

    for (q = ngx_queue_head(&z->sh->lru);
         q != ngx_queue_sentinel(&z->sh->lru) && f->snaps->nelts < limit;
         q = ngx_queue_next(q))
    {
        node = ngx_queue_data(q, ngx_http_vodlms_progress_node_t, queue);

        if (node->version == node->flushed) {
            continue;
        }

        snap = ngx_array_push(f->snaps);
        if (snap == NULL) {
            break;
        }

        snap->user.len = node->user_len;
        snap->user.data = ngx_pnalloc(pool, node->user_len);
        snap->video.len = node->video_len;
        snap->video.data = ngx_pnalloc(pool, node->video_len);

        if (snap->user.data == NULL || snap->video.data == NULL) {
            f->snaps->nelts--;
            break;
        }

        ngx_memcpy(snap->user.data, node->data, node->user_len);
        ngx_memcpy(snap->video.data, node->data + node->user_len,
                   node->video_len);
        snap->p = node->p;
        snap->version = node->version;
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    if (dead) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "vodlms progress: worker process %P exited during its "
                      "flush; its entries are written again by process %P",
                      dead, ngx_pid);
    }

    /* seven or eight parallel arrays, one statement */

    snap = f->snaps->elts;
    nk = vmcf->progress.flush_nparams;

    ngx_memzero(len, sizeof(len));
    for (i = 0; i < f->snaps->nelts; i++) {
        len[0] += 2 * snap[i].user.len + 3;
        len[1] += 2 * snap[i].video.len + 3;
    }

    for (k = 0; k < nk; k++) {
        if (k >= 2) {
            len[k] = f->snaps->nelts * (NGX_INT64_LEN + 6);
        }

        len[k] += 3;
        values[k].data = ngx_pnalloc(pool, len[k]);
        if (values[k].data == NULL) {
            return NGX_ERROR;
        }

        p[k] = values[k].data;
        *p[k]++ = '{';
    }

    for (i = 0; i < f->snaps->nelts; i++) {
        if (i) {
            for (k = 0; k < nk; k++) {
                *p[k]++ = ',';
            }
        }

        p[0] = ngx_http_vodlms_text_array(p[0], &snap[i].user);
        p[1] = ngx_http_vodlms_text_array(p[1], &snap[i].video);
        /*
         * vodlms_progress_skip ... flag keeps a skipper's position beyond
         * the highest position credited; what the database gets for resume
         * is the credited one (max_position >= position, as the schema
         * requires)
         */
        p[2] = ngx_sprintf(p[2], "%.3f",
                           ngx_min(snap[i].p.position,
                                   snap[i].p.max_position));
        p[3] = ngx_sprintf(p[3], "%.3f", snap[i].p.max_position);
        p[4] = ngx_sprintf(p[4], "%.3f", snap[i].p.duration);
        p[5] = ngx_sprintf(p[5], "%.3f", snap[i].p.watched_pending);
        p[6] = ngx_sprintf(p[6], "%L", snap[i].p.completed_at);

        if (nk == 8) {
            p[7] = ngx_sprintf(p[7], "%.3f", snap[i].p.played);
        }
    }

    for (k = 0; k < nk; k++) {
        *p[k]++ = '}';
        values[k].len = p[k] - values[k].data;
    }

    return NGX_OK;
}


static void
ngx_http_vodlms_progress_flush(ngx_event_t *ev)
{
    ngx_http_vodlms_main_conf_t  *vmcf = ev->data;

    ngx_int_t                  rc;
    ngx_str_t                  values[8];
    ngx_msec_t                 interval;
    const char                *reason;
    ngx_vodlms_pg_status_e     status;
    ngx_http_vodlms_flush_t   *f;

    /*
     * A tick: flush when the interval is over.  A worker on its way out
     * flushes at once, unless the database is failing: then it backs off
     * like any other (1 s, doubling, at most 8 s), so that a stop or a
     * reload does not hammer a database that is down.
     */
    if (ngx_exiting || ngx_terminate) {
        interval = vmcf->progress.failures
                   ? (ngx_msec_t) 500 << ngx_min(vmcf->progress.failures,
                                                 (ngx_uint_t) 4)
                   : 0;

    } else {
        interval = vmcf->progress.flush_interval
                   << ngx_min(vmcf->progress.failures, (ngx_uint_t) 3);
    }

    if (ngx_current_msec - vmcf->progress.last_flush < interval) {
        ngx_http_vodlms_progress_schedule(vmcf);
        return;
    }

    vmcf->progress.last_flush = ngx_current_msec;

    f = NULL;
    rc = ngx_http_vodlms_progress_batch(vmcf, ev->log, &f, values);

    if (rc == NGX_DECLINED || (rc == NGX_ERROR && f == NULL)) {
        ngx_http_vodlms_progress_schedule(vmcf);
        return;
    }

    if (rc == NGX_ERROR) {
        goto failed;
    }

    rc = ngx_vodlms_pg_query_sql(vmcf->pg_pool, NULL, ev->log,
                                 &vmcf->progress.flush_sql, values,
                                 vmcf->progress.flush_nparams,
                                 ngx_http_vodlms_progress_flushed, f,
                                 &status, &reason);
    if (rc == NGX_OK) {
        return;
    }

    if (rc == NGX_DECLINED) {
        /* not even started (e.g. the database refuses): the same failure */
        ngx_http_vodlms_progress_flushed(f, status, NULL, reason);
        return;
    }

failed:

    ngx_http_vodlms_progress_flushed(f, NGX_VODLMS_PG_ERROR, NULL,
                                     "out of memory");
}


/*
 * The database has (or will have) the watched seconds of this snapshot:
 * they are no longer pending.  Under the zone's lock; the entry, if any.
 */

static ngx_http_vodlms_progress_node_t *
ngx_http_vodlms_progress_credit(ngx_http_vodlms_progress_zone_t *z,
    ngx_http_vodlms_progress_snap_t *snap)
{
    uint32_t                          hash;
    ngx_http_vodlms_progress_node_t  *node;

    hash = ngx_http_vodlms_progress_hash(&snap->user, &snap->video);
    node = ngx_http_vodlms_progress_find(z, hash, &snap->user, &snap->video);

    if (node) {
        node->p.watched_pending -= snap->p.watched_pending;
        if (node->p.watched_pending < 1e-6) {
            node->p.watched_pending = 0;
        }
    }

    return node;
}


/* an abandoned flush: counted as written (see the caller) */

static void
ngx_http_vodlms_progress_forget(ngx_http_vodlms_main_conf_t *vmcf,
    ngx_http_vodlms_flush_t *f)
{
    ngx_uint_t                        i;
    ngx_http_vodlms_progress_snap_t  *snap;
    ngx_http_vodlms_progress_zone_t  *z;

    z = vmcf->progress.zone->data;
    snap = f->snaps->elts;

    ngx_shmtx_lock(&z->shpool->mutex);

    for (i = 0; i < f->snaps->nelts; i++) {
        (void) ngx_http_vodlms_progress_credit(z, &snap[i]);
    }

    if (z->sh->flusher == ngx_pid) {
        z->sh->flusher = 0;
    }

    ngx_shmtx_unlock(&z->shpool->mutex);
}


/*
 * A fast shutdown (SIGTERM: nginx -s stop) makes a worker leave at once,
 * without running its timers, and nginx's master kills what is left after
 * about 1.5 s.  So a worker that exits while entries are dirty writes them
 * here, blocking, on a connection of its own, within about a second.
 * Several exiting workers take turns through the flush claim.
 */

void
ngx_http_vodlms_progress_exit(ngx_cycle_t *cycle)
{
    ngx_int_t                         rc, left;
    ngx_str_t                         values[8];
    ngx_uint_t                        refused;
    ngx_msec_t                        deadline;
    PGresult                         *res;
    const char                       *reason;
    ngx_vodlms_pg_status_e            status;
    ngx_http_vodlms_flush_t          *f;
    ngx_http_vodlms_main_conf_t      *vmcf;
    ngx_http_vodlms_progress_zone_t  *z;

    /*
     * A graceful exit (a stop or a reload) flushed on its timer before it
     * got here; what is dirty now belongs to workers that stay, sharing the
     * zone after a reload.
     */
    if (!ngx_terminate) {
        return;
    }

    vmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_vodlms_module);

    if (vmcf == NULL || vmcf->progress.zone == NULL || vmcf->pg == NULL
        || vmcf->progress.zone->data == NULL)
    {
        return;
    }

    z = vmcf->progress.zone->data;

    /*
     * A flush of ours still waiting for its answer will never get it, but
     * PostgreSQL may well commit it.  Its entries stay dirty, so their
     * positions are written again (the same or newer: harmless); the
     * watched seconds it carried are taken off first, so they cannot be
     * added twice.  Should it not commit, that is watch time not credited,
     * never credit not watched.
     */
    if (vmcf->progress.flush) {
        ngx_http_vodlms_progress_forget(vmcf, vmcf->progress.flush);
        ngx_destroy_pool(vmcf->progress.flush_pool);
        vmcf->progress.flush_pool = NULL;
        vmcf->progress.flush = NULL;
    }

    ngx_shmtx_lock(&z->shpool->mutex);
    left = z->sh->dirty;
    ngx_shmtx_unlock(&z->shpool->mutex);

    ngx_time_update();
    deadline = ngx_current_msec + NGX_HTTP_VODLMS_EXIT_FLUSH;

    while (left > 0 && (ngx_msec_int_t) (deadline - ngx_current_msec) > 0) {

        f = NULL;
        rc = ngx_http_vodlms_progress_batch(vmcf, cycle->log, &f, values);

        if (rc == NGX_DECLINED) {
            ngx_shmtx_lock(&z->shpool->mutex);
            left = ngx_min(left, (ngx_int_t) z->sh->dirty);
            ngx_shmtx_unlock(&z->shpool->mutex);

            if (left == 0) {
                break;
            }

            /* another worker is writing: wait for its turn to end */
            ngx_msleep(10);
            ngx_time_update();
            continue;
        }

        if (rc == NGX_ERROR) {
            if (f) {
                ngx_http_vodlms_progress_flushed(f, NGX_VODLMS_PG_ERROR, NULL,
                                                 "out of memory");
            }
            break;
        }

        res = NULL;

        status = ngx_vodlms_pg_exec_blocking(vmcf->pg, cycle->log,
                                    &vmcf->progress.flush_sql, values,
                                    vmcf->progress.flush_nparams,
                                    deadline - ngx_current_msec, &res,
                                    &reason);

        refused = (status == NGX_VODLMS_PG_REFUSED
                   && ngx_vodlms_pg_data_error(res));

        /* counts it, marks the entries clean (or one set aside), logs */
        ngx_http_vodlms_progress_flushed(f, status, res, reason);

        if (res) {
            PQclear(res);
        }

        /* a refused entry: the halves, while the deadline allows */
        if (status != NGX_VODLMS_PG_OK && !refused) {
            break;
        }

        ngx_shmtx_lock(&z->shpool->mutex);
        left = ngx_min(left, (ngx_int_t) z->sh->dirty);
        ngx_shmtx_unlock(&z->shpool->mutex);

        ngx_time_update();
    }

    if (left > 0) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "vodlms progress: fast shutdown with %i acknowledged "
                      "entries not confirmed written to the database", left);
    }
}


/*
 * A flush's answer.  Written: the entries are clean (unless a beacon came
 * since).  A connection failure, a timeout, or SQL the server refuses as
 * such: all kept, and the next try backs off.
 *
 * The statement refused the values it was given (SQLSTATE class 22 or 23:
 * a bad number, a constraint): one entry must not stop everyone's progress,
 * so the batch is written in halves, at once, until the entry it refuses is
 * alone.  That entry is set aside: logged once with its values and the
 * reason, counted, marked clean at that version and never sent again.  Its
 * next beacon is new data, and is tried like any other.
 */

static void
ngx_http_vodlms_progress_flushed(void *data, ngx_vodlms_pg_status_e status,
    PGresult *res, const char *reason)
{
    ngx_http_vodlms_flush_t  *f = data;

    ngx_uint_t                        i, n, written, refused;
    ngx_pool_t                       *pool;
    ngx_http_vodlms_main_conf_t      *vmcf;
    ngx_http_vodlms_progress_zone_t  *z;
    ngx_http_vodlms_progress_node_t  *node;
    ngx_http_vodlms_progress_snap_t  *snap;

    vmcf = f->vmcf;
    z = vmcf->progress.zone->data;
    snap = f->snaps->elts;
    n = f->snaps->nelts;
    pool = vmcf->progress.flush_pool;
    vmcf->progress.flush_pool = NULL;
    vmcf->progress.flush = NULL;

    refused = (status == NGX_VODLMS_PG_REFUSED
               && ngx_vodlms_pg_data_error(res));

    ngx_shmtx_lock(&z->shpool->mutex);

    if (status == NGX_VODLMS_PG_OK) {

        for (i = 0; i < n; i++) {
            node = ngx_http_vodlms_progress_credit(z, &snap[i]);
            if (node == NULL) {
                continue;
            }

            /* clean only if no beacon came in since the snapshot */
            if (node->version == snap[i].version) {
                node->flushed = node->version;
                z->sh->dirty--;
            }
        }

        z->sh->flushes++;
        z->sh->rows += n;

        /* after a search for a refused entry, back to whole batches */
        if (z->sh->split) {
            z->sh->split *= 2;

            if (z->sh->split >= vmcf->progress.batch) {
                z->sh->split = 0;
            }
        }

    } else if (refused && n > 1) {
        z->sh->flush_failures++;
        z->sh->split = (n + 1) / 2;

    } else if (refused && n == 1) {
        z->sh->flush_failures++;
        z->sh->set_aside++;
        z->sh->split = 0;

        /* its watched seconds go with it: they are not sent again */
        node = ngx_http_vodlms_progress_credit(z, &snap[0]);

        if (node && node->version == snap[0].version) {
            node->flushed = node->version;
            z->sh->dirty--;
        }

    } else {
        z->sh->flush_failures++;
    }

    if (z->sh->flusher == ngx_pid) {
        z->sh->flusher = 0;
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    if (status == NGX_VODLMS_PG_OK) {
        vmcf->progress.failures = 0;

        written = (res && PQcmdTuples(res)[0])
                  ? (ngx_uint_t) ngx_atoi((u_char *) PQcmdTuples(res),
                                          ngx_strlen(PQcmdTuples(res)))
                  : n;

        if (written != n) {
            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "vodlms progress: flushed %ui entries, %ui written: "
                          "the rest name users or videos the database does "
                          "not have", n, written);
        }

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "vodlms progress: flushed %ui entries", n);

    } else if (refused && n > 1) {
        /* not the database's failure: no back-off, the halves go next */
        vmcf->progress.last_flush = ngx_current_msec
                                    - vmcf->progress.flush_interval;

        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "vodlms progress: the flush query refused a batch of "
                      "%ui entries, written again in batches of %ui to find "
                      "the entry it refuses: %s", n, (n + 1) / 2,
                      reason ? reason : "no reason given");

    } else if (refused) {
        vmcf->progress.last_flush = ngx_current_msec
                                    - vmcf->progress.flush_interval;

        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "vodlms progress: the flush query refused the entry "
                      "of user \"%V\" for video \"%V\" (position %.3f, "
                      "highest %.3f, duration %.3f, completed at %L); it is "
                      "set aside and not sent again: %s", &snap[0].user,
                      &snap[0].video, snap[0].p.position,
                      snap[0].p.max_position, snap[0].p.duration,
                      snap[0].p.completed_at,
                      reason ? reason : "no reason given");

    } else {
        vmcf->progress.failures++;

        if (reason) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "vodlms progress: flush of %ui entries failed, "
                          "kept for the next try: %s", n, reason);
        }
    }

    ngx_destroy_pool(pool);

    ngx_http_vodlms_progress_schedule(vmcf);
}


static void
ngx_http_vodlms_progress_schedule(ngx_http_vodlms_main_conf_t *vmcf)
{
    ngx_uint_t                        dirty;
    ngx_http_vodlms_progress_zone_t  *z;

    z = vmcf->progress.zone->data;

    ngx_shmtx_lock(&z->shpool->mutex);
    dirty = z->sh->dirty;
    ngx_shmtx_unlock(&z->shpool->mutex);

    /* exiting with nothing left to write: let the worker go */
    if ((ngx_exiting || ngx_terminate) && dirty == 0) {
        return;
    }

    /*
     * A graceful stop (or the old workers of a reload) waits for the
     * database, but not for ever: past NGX_HTTP_VODLMS_QUIT_WAIT the worker
     * leaves.  After a reload the entries stay in the zone for the new
     * workers; after a stop they are lost, and the alert says how many.
     */
    if (ngx_exiting || ngx_terminate) {

        if (vmcf->progress.exit_started == 0) {
            vmcf->progress.exit_started = ngx_current_msec;

        } else if (ngx_current_msec - vmcf->progress.exit_started
                   > NGX_HTTP_VODLMS_QUIT_WAIT)
        {
            if (!vmcf->progress.exit_gave_up) {
                vmcf->progress.exit_gave_up = 1;
                vmcf->progress.flush_timer.cancelable = 1;

                ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                              "vodlms progress: worker exiting after %M ms "
                              "of failed flushes with %ui acknowledged "
                              "entries not written (kept in the zone for "
                              "the workers of a reload, lost on a stop)",
                              (ngx_msec_t) NGX_HTTP_VODLMS_QUIT_WAIT, dirty);
            }

            return;
        }
    }

    /*
     * While anything is dirty the worker must not exit before flushing:
     * the timer is then not cancelable, and it ticks often enough that a
     * graceful stop or a reload flushes within half a second.
     */
    vmcf->progress.flush_timer.cancelable = (dirty == 0);

    if (!vmcf->progress.flush_timer.timer_set) {
        ngx_add_timer(&vmcf->progress.flush_timer,
                      ngx_min(vmcf->progress.flush_interval,
                              (ngx_msec_t) 500));
    }
}


ngx_int_t
ngx_http_vodlms_progress_init_process(ngx_cycle_t *cycle)
{
    ngx_http_vodlms_main_conf_t  *vmcf;

    vmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_vodlms_module);

    if (vmcf == NULL || vmcf->progress.zone == NULL || vmcf->pg_pool == NULL)
    {
        return NGX_OK;
    }

    vmcf->progress.flush_timer.handler = ngx_http_vodlms_progress_flush;
    vmcf->progress.flush_timer.data = vmcf;
    vmcf->progress.flush_timer.log = cycle->log;

    vmcf->progress.last_flush = ngx_current_msec;

    ngx_http_vodlms_progress_schedule(vmcf);

    return NGX_OK;
}


/* the zone */

static ngx_int_t
ngx_http_vodlms_progress_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_vodlms_progress_zone_t  *oz = data;

    size_t                            len;
    ngx_http_vodlms_progress_zone_t  *z;

    z = shm_zone->data;

    if (oz) {
        /* a reload: the buffer, dirty entries included, carries on */
        z->sh = oz->sh;
        z->shpool = oz->shpool;
        return NGX_OK;
    }

    z->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        z->sh = z->shpool->data;
        return NGX_OK;
    }

    z->sh = ngx_slab_calloc(z->shpool, sizeof(ngx_http_vodlms_progress_sh_t));
    if (z->sh == NULL) {
        return NGX_ERROR;
    }

    z->shpool->data = z->sh;

    ngx_rbtree_init(&z->sh->rbtree, &z->sh->sentinel,
                    ngx_http_vodlms_progress_insert_value);
    ngx_queue_init(&z->sh->lru);

    len = sizeof(" in vodlms_progress_zone \"\"") + shm_zone->shm.name.len;

    z->shpool->log_ctx = ngx_slab_alloc(z->shpool, len);
    if (z->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(z->shpool->log_ctx, " in vodlms_progress_zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full zone is handled (clean entries go, then 503): no log spam */
    z->shpool->log_nomem = 0;

    return NGX_OK;
}


/* vodlms_progress_zone zone=name:size [flush=10s] [batch=1000]; */

char *
ngx_http_vodlms_progress_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vodlms_main_conf_t  *vmcf = conf;

    u_char                           *p;
    ssize_t                           size;
    ngx_int_t                         n;
    ngx_str_t                        *value, name, s;
    ngx_uint_t                        i;
    ngx_http_vodlms_progress_zone_t  *z;

    if (vmcf->progress.zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strncmp(value[1].data, "zone=", 5) != 0
        || (p = (u_char *) ngx_strchr(value[1].data + 5, ':')) == NULL
        || p == value[1].data + 5)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\", expected "
                           "\"zone=name:size\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    name.data = value[1].data + 5;
    name.len = p - name.data;
    s.data = p + 1;
    s.len = value[1].data + value[1].len - s.data;

    size = ngx_parse_size(&s);
    if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid size in \"%V\": at least %uz bytes",
                           &value[1], 8 * ngx_pagesize);
        return NGX_CONF_ERROR;
    }

    vmcf->progress.flush_interval = 10000;
    vmcf->progress.batch = 1000;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "flush=", 6) == 0) {
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;
            vmcf->progress.flush_interval = ngx_parse_time(&s, 0);
            if (vmcf->progress.flush_interval == (ngx_msec_t) NGX_ERROR
                || vmcf->progress.flush_interval == 0)
            {
                goto invalid;
            }
            continue;
        }

        if (ngx_strncmp(value[i].data, "batch=", 6) == 0) {
            n = ngx_atoi(value[i].data + 6, value[i].len - 6);
            if (n == NGX_ERROR || n == 0 || n > 100000) {
                goto invalid;
            }
            vmcf->progress.batch = n;
            continue;
        }

        goto invalid;
    }

    z = ngx_pcalloc(cf->pool, sizeof(ngx_http_vodlms_progress_zone_t));
    if (z == NULL) {
        return NGX_CONF_ERROR;
    }

    vmcf->progress.zone = ngx_shared_memory_add(cf, &name, size,
                                                &ngx_http_vodlms_module);
    if (vmcf->progress.zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (vmcf->progress.zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    vmcf->progress.zone->init = ngx_http_vodlms_progress_init_zone;
    vmcf->progress.zone->data = z;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);
    return NGX_CONF_ERROR;
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
    pcf->skip_refuse = NGX_CONF_UNSET_UINT;
}


char *
ngx_http_vodlms_progress_merge_conf(ngx_conf_t *cf,
    ngx_http_vodlms_progress_conf_t *prev,
    ngx_http_vodlms_progress_conf_t *conf)
{
    ngx_http_vodlms_loc_conf_t   *vlcf;
    ngx_http_vodlms_main_conf_t  *vmcf;

    ngx_uint_t                    n;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_uint_value(conf->rate, prev->rate, 60);
    ngx_conf_merge_msec_value(conf->rate_window, prev->rate_window, 60000);

    if (conf->complete < 0) {
        conf->complete = prev->complete < 0 ? 0.9 : prev->complete;
    }

    if (conf->skip < 0) {
        conf->skip = prev->skip < 0 ? 0 : prev->skip;
        conf->skip_refuse = prev->skip_refuse;
    }

    ngx_conf_merge_uint_value(conf->skip_refuse, prev->skip_refuse, 0);

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

    /* $1..$7 always; $8, the played seconds, if the statement takes it */
    if (vmcf->progress.flush_nparams == 0) {
        n = ngx_http_vodlms_highest_param(&vmcf->progress.flush_sql);

        if (n != 7 && n != 8) {
            ngx_http_vodlms_merge_error(cf,
                "\"vodlms_progress_flush_query\" must use the parameters "
                "$1 to $7, and may use $8 (the played seconds)");
            return NGX_CONF_ERROR;
        }

        vmcf->progress.flush_nparams = n;
    }

    return NGX_CONF_OK;
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

    if (end != (char *) value[1].data + value[1].len || !(v > 0 && v <= 1)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid fraction \"%V\" in \"%V\", expected a "
                           "number in (0, 1]", &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    *d = v;

    return NGX_CONF_OK;
}


/* vodlms_progress_skip off | time flag | time refuse; */

char *
ngx_http_vodlms_progress_skip(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vodlms_loc_conf_t  *vlcf = conf;

    time_t      t;
    ngx_str_t  *value;

    if (vlcf->progress.skip >= 0) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        vlcf->progress.skip = 0;
        vlcf->progress.skip_refuse = 0;
        return NGX_CONF_OK;
    }

    t = (cf->args->nelts == 3) ? ngx_parse_time(&value[1], 1) : NGX_ERROR;

    if (t == (time_t) NGX_ERROR || t <= 0
        || (ngx_strcmp(value[2].data, "flag") != 0
            && ngx_strcmp(value[2].data, "refuse") != 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"vodlms_progress_skip\", expected "
                           "\"off\", \"<time> flag\" or \"<time> refuse\"");
        return NGX_CONF_ERROR;
    }

    vlcf->progress.skip = (double) t;
    vlcf->progress.skip_refuse = (value[2].data[0] == 'r');

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_vodlms_progress_stats(ngx_http_request_t *r,
    ngx_http_vodlms_progress_stats_t *st)
{
    ngx_http_vodlms_main_conf_t      *vmcf;
    ngx_http_vodlms_progress_zone_t  *z;

    vmcf = ngx_http_get_module_main_conf(r, ngx_http_vodlms_module);

    if (vmcf->progress.zone == NULL) {
        return NGX_DECLINED;
    }

    z = vmcf->progress.zone->data;

    ngx_shmtx_lock(&z->shpool->mutex);

    st->beacons = z->sh->beacons;
    st->pending = z->sh->dirty;
    st->flushes = z->sh->flushes;
    st->flush_failures = z->sh->flush_failures;
    st->rows = z->sh->rows;
    st->full = z->sh->full;
    st->set_aside = z->sh->set_aside;
    st->fill = 1.0 - (double) z->shpool->pfree
                     / (double) ((z->shpool->end - z->shpool->start)
                                 / ngx_pagesize);

    ngx_shmtx_unlock(&z->shpool->mutex);

    return NGX_OK;
}
