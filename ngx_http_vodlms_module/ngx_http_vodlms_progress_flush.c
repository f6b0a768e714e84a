/*
 * Watch progress: the flush.
 *
 * A flush timer runs in every worker; one worker at a time claims the
 * flush under the zone's mutex and writes the oldest dirty entries (up to
 * batch=) in ONE statement (an upsert from arrays).  An entry is marked
 * clean only if no beacon changed it since the snapshot, and only after
 * the commit: a failed flush leaves everything dirty for the next try.
 * Nothing is marked "in flight" in shared memory, so a worker that dies
 * mid-flush loses nothing: another one takes the claim over once it is
 * stale and flushes again.  A worker leaving on a fast shutdown writes
 * what is left itself, blocking, within about a second.
 */

#include "ngx_http_vodlms_progress_internal.h"


/* what a worker leaving on SIGTERM spends on the last flush: nginx's master
   sends SIGKILL about 1.5 s after the first SIGTERM */
#define NGX_HTTP_VODLMS_EXIT_FLUSH 1000

/* how long a gracefully exiting worker keeps trying a failing database */
#define NGX_HTTP_VODLMS_QUIT_WAIT  30000


/* what a flush's answer did to its entries, for the debug log */
typedef struct {
    ngx_uint_t                  cleaned;
    ngx_uint_t                  again;      /* changed since the snapshot */
    ngx_uint_t                  gone;       /* no longer in the zone */
    ngx_uint_t                  dirty;      /* left after it */
} ngx_http_vodlms_flush_tally_t;


static void ngx_http_vodlms_progress_flush(ngx_event_t *ev);
static void ngx_http_vodlms_progress_flushed(void *data,
    ngx_vodlms_pg_status_e status, PGresult *res, const char *reason);
static void ngx_http_vodlms_progress_schedule(
    ngx_http_vodlms_main_conf_t *vmcf);


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
 * Claim the flush and snapshot the oldest dirty entries (up to the batch
 * size) into the statement's seven to ten parallel arrays.  NGX_OK: *fp and values[]
 * are ready and the claim is ours, to be released by _flushed(), which also
 * destroys the pool; NGX_DECLINED: nothing dirty, or another worker is
 * flushing; NGX_ERROR: no memory, with *fp left NULL if nothing was
 * claimed, or set (the claim taken) for _flushed() to release.
 */

static ngx_int_t
ngx_http_vodlms_progress_batch(ngx_http_vodlms_main_conf_t *vmcf,
    ngx_log_t *log, ngx_http_vodlms_flush_t **fp, ngx_str_t *values)
{
    u_char                            *p[10];
    size_t                             len[10];
    size_t                             nbytes;
    vodlms_coverage_t                  cv, *c;
    ngx_uint_t                         i, k, limit, nk;
    ngx_pool_t                        *pool;
    ngx_queue_t                       *q;
    ngx_http_vodlms_flush_t           *f;
    ngx_pid_t                          dead;
    ngx_http_vodlms_progress_node_t   *node;
    ngx_http_vodlms_progress_snap_t   *snap;
    ngx_http_vodlms_progress_zone_t   *z;
#if (NGX_DEBUG)
    ngx_uint_t                         dirty;
#endif

    z = vmcf->progress.zone->data;

    ngx_shmtx_lock(&z->shpool->mutex);

    if (z->sh->dirty_n == 0) {
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
                dead = z->sh->flusher;
                ngx_shmtx_unlock(&z->shpool->mutex);

                ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log, 0,
                               "vodlms progress: flush not claimed by "
                               "process %P: process %P holds the claim",
                               ngx_pid, dead);
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
    nk = vmcf->progress.flush_nparams;

    /* the dirty queue holds nothing else: no walk past clean entries */

    for (q = ngx_queue_last(&z->sh->dirty);
         q != ngx_queue_sentinel(&z->sh->dirty) && f->snaps->nelts < limit;
         q = ngx_queue_prev(q))
    {
        node = ngx_queue_data(q, ngx_http_vodlms_progress_node_t, queue);

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
        snap->complete_micro = node->complete_micro;
        snap->cov.bits = NULL;

        c = ngx_http_vodlms_progress_coverage(node, &cv);

        if (c && nk >= 9) {
            nbytes = (c->nbits + 7) / 8;
            snap->cov = *c;
            snap->cov.bits = ngx_pnalloc(pool, nbytes);

            if (snap->cov.bits == NULL) {
                f->snaps->nelts--;
                break;
            }

            ngx_memcpy(snap->cov.bits, c->bits, nbytes);
        }
    }

#if (NGX_DEBUG)
    dirty = z->sh->dirty_n;
#endif

    ngx_shmtx_unlock(&z->shpool->mutex);

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, log, 0,
                   "vodlms progress: flush claimed by process %P: %ui of "
                   "%ui dirty entries (batch %ui)", ngx_pid,
                   f->snaps->nelts, dirty, limit);

    if (dead) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "vodlms progress: worker process %P exited during its "
                      "flush; its entries are written again by process %P",
                      dead, ngx_pid);
    }

    /* seven to ten parallel arrays, one statement */

    snap = f->snaps->elts;

    ngx_memzero(len, sizeof(len));
    for (i = 0; i < f->snaps->nelts; i++) {
        len[0] += 2 * snap[i].user.len + 3;
        len[1] += 2 * snap[i].video.len + 3;

        if (nk >= 9) {
            len[8] += snap[i].cov.bits
                      ? VODLMS_COVERAGE_HEX_LEN(snap[i].cov.nbits) + 1
                      : sizeof("NULL,");
        }
    }

    for (k = 0; k < nk; k++) {
        if (k >= 2 && k != 8) {
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

        if (nk >= 8) {
            p[7] = ngx_sprintf(p[7], "%.3f", snap[i].p.played);
        }

        /*
         * the bitmap as PostgreSQL's hex bit string ('x' and hex digits,
         * nothing to quote), and the fraction it is judged by, in
         * millionths as the core judges it; NULL for an entry without
         * one (the database gave no duration)
         */
        if (nk >= 9) {
            if (snap[i].cov.bits) {
                p[8] += vodlms_coverage_hex(&snap[i].cov, (char *) p[8],
                               VODLMS_COVERAGE_HEX_LEN(snap[i].cov.nbits));
            } else {
                p[8] = ngx_cpymem(p[8], "NULL", 4);
            }
        }

        if (nk >= 10) {
            if (snap[i].cov.bits) {
                p[9] = ngx_sprintf(p[9], "%L.%06L",
                                   snap[i].complete_micro / 1000000,
                                   snap[i].complete_micro % 1000000);
            } else {
                p[9] = ngx_cpymem(p[9], "NULL", 4);
            }
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
    ngx_str_t                  values[10];
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


/*
 * An abandoned flush: counted as written (see the caller) if it may have
 * reached the database; one that never left the worker (credit == 0)
 * only gives the claim up.
 */

static void
ngx_http_vodlms_progress_forget(ngx_http_vodlms_main_conf_t *vmcf,
    ngx_http_vodlms_flush_t *f, ngx_uint_t credit)
{
    ngx_uint_t                        i;
    ngx_http_vodlms_progress_snap_t  *snap;
    ngx_http_vodlms_progress_zone_t  *z;

    z = vmcf->progress.zone->data;
    snap = f->snaps->elts;

    ngx_shmtx_lock(&z->shpool->mutex);

    for (i = 0; credit && i < f->snaps->nelts; i++) {
        (void) ngx_http_vodlms_progress_credit(z, &snap[i]);
    }

    if (z->sh->flusher == ngx_pid) {
        z->sh->flusher = 0;
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "vodlms progress: flush claim released by process %P "
                   "(abandoned %s, %ui entries kept dirty)", ngx_pid,
                   credit ? "under way" : "unsent", f->snaps->nelts);
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
    ngx_str_t                         values[10];
    ngx_uint_t                        refused, unsent;
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
     * never credit not watched.  A flush still waiting in the pool for a
     * connection (the pool busy, or down and holding its queries for the
     * next connect) never left the worker: it keeps its watched seconds.
     */
    if (vmcf->progress.flush) {
        unsent = (vmcf->pg_pool != NULL
                  && ngx_vodlms_pg_unsent(vmcf->pg_pool,
                                          ngx_http_vodlms_progress_flushed,
                                          vmcf->progress.flush));

        ngx_http_vodlms_progress_forget(vmcf, vmcf->progress.flush, !unsent);
        ngx_destroy_pool(vmcf->progress.flush_pool);
        vmcf->progress.flush_pool = NULL;
        vmcf->progress.flush = NULL;
    }

    ngx_shmtx_lock(&z->shpool->mutex);
    left = z->sh->dirty_n;
    ngx_shmtx_unlock(&z->shpool->mutex);

    ngx_time_update();
    deadline = ngx_current_msec + NGX_HTTP_VODLMS_EXIT_FLUSH;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, cycle->log, 0,
                   "vodlms progress: process %P exiting fast with %i dirty "
                   "entries, writing them within %M ms", ngx_pid, left,
                   (ngx_msec_t) NGX_HTTP_VODLMS_EXIT_FLUSH);

    while (left > 0 && (ngx_msec_int_t) (deadline - ngx_current_msec) > 0) {

        f = NULL;
        rc = ngx_http_vodlms_progress_batch(vmcf, cycle->log, &f, values);

        if (rc == NGX_DECLINED) {
            ngx_shmtx_lock(&z->shpool->mutex);
            left = ngx_min(left, (ngx_int_t) z->sh->dirty_n);
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
        left = ngx_min(left, (ngx_int_t) z->sh->dirty_n);
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
    ngx_http_vodlms_flush_tally_t     tally;
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

    ngx_memzero(&tally, sizeof(ngx_http_vodlms_flush_tally_t));

    ngx_shmtx_lock(&z->shpool->mutex);

    if (status == NGX_VODLMS_PG_OK) {

        for (i = 0; i < n; i++) {
            node = ngx_http_vodlms_progress_credit(z, &snap[i]);
            if (node == NULL) {
                tally.gone++;
                continue;
            }

            /* clean only if no beacon came in since the snapshot */
            if (ngx_http_vodlms_progress_written(z, node, snap[i].version)) {
                tally.cleaned++;

            } else {
                tally.again++;
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

        if (node) {
            (void) ngx_http_vodlms_progress_written(z, node,
                                                    snap[0].version);
        }

    } else {
        z->sh->flush_failures++;
    }

    if (z->sh->flusher == ngx_pid) {
        z->sh->flusher = 0;
    }

    tally.dirty = z->sh->dirty_n;

    ngx_shmtx_unlock(&z->shpool->mutex);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "vodlms progress: flush claim released by process %P "
                   "(%s), %ui dirty entries left", ngx_pid,
                   status == NGX_VODLMS_PG_OK ? "written"
                   : (refused ? "refused" : "failed"), tally.dirty);

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

        ngx_log_debug5(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "vodlms progress: flushed %ui entries, %ui rows "
                       "written: %ui clean, %ui changed since (still dirty), "
                       "%ui no longer buffered", n, written, tally.cleaned,
                       tally.again, tally.gone);

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
    dirty = z->sh->dirty_n;
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


/*
 * The timer stays cancelable while nothing is dirty, so that an idle
 * worker may exit at once; schedule() only looks at its tick, up to 500 ms
 * away.  A graceful stop inside that window would let every worker leave
 * with the beacon just acknowledged unwritten (and, on a stop, lost): so
 * the worker that acknowledges one holds on from now.
 */

void
ngx_http_vodlms_progress_hold(ngx_http_vodlms_main_conf_t *vmcf)
{
    ngx_event_t  *ev;

    ev = &vmcf->progress.flush_timer;

    if (ev->handler == NULL || vmcf->progress.exit_gave_up) {
        return;
    }

    ev->cancelable = 0;

    /* a flush of ours on its way reschedules when it is answered */
    if (!ev->timer_set && vmcf->progress.flush == NULL) {
        /* exiting, and had nothing left to write until this beacon */
        ngx_add_timer(ev, ngx_min(vmcf->progress.flush_interval,
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

