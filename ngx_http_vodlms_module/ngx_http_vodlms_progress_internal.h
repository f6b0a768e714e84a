/*
 * Watch progress, private to its three files:
 *
 *   ngx_http_vodlms_progress.c        the request side: POST (beacons), GET
 *                                     (resume), and the location directives
 *   ngx_http_vodlms_progress_zone.c   the shared-memory buffer: its entries,
 *                                     find-or-allocate with eviction, the
 *                                     rate check, the clean/dirty queues
 *   ngx_http_vodlms_progress_flush.c  the flush: the timer, the claim across
 *                                     workers, the answer, entries set
 *                                     aside, the flush on a fast exit
 *
 * Every entry is on exactly one of the zone's two queues, under its mutex:
 *
 *   clean  written (version == flushed): may be evicted to make room, least
 *          recently cleaned first, from the tail; O(1)
 *   dirty  changed since its last write (version != flushed): never
 *          evicted; the flush takes the oldest first, from the tail
 *
 * A beacon moves a clean entry to the dirty queue; a confirmed flush (or a
 * set-aside) moves it back, unless a beacon came in since its snapshot:
 * then it goes to the back of the dirty queue for the next flush.  Nothing
 * is marked "in flight", so a worker that dies mid-flush leaves its
 * entries dirty, on the dirty queue, for the next flusher.
 */

#ifndef NGX_HTTP_VODLMS_PROGRESS_INTERNAL_H
#define NGX_HTTP_VODLMS_PROGRESS_INTERNAL_H

#include "ngx_http_vodlms_module.h"


#define NGX_HTTP_VODLMS_END_SLACK  5.0


typedef struct {
    ngx_rbtree_node_t           node;       /* key: crc32(user\0video) */
    ngx_queue_t                 queue;      /* on sh->clean or sh->dirty */
    vodlms_progress_t           p;
    ngx_uint_t                  version;    /* bumped by every beacon */
    ngx_uint_t                  flushed;    /* the version in the database */
    ngx_msec_t                  window_start;
    ngx_uint_t                  window_count;
    vodlms_coverage_run_t       run;        /* this node's current run */
    int64_t                     cov_duration_ms;
    uint32_t                    cov_nbits;  /* 0: no bitmap (the database
                                               gave no duration) */
    uint32_t                    complete_micro;  /* the latest beacon's
                                               vodlms_progress_complete,
                                               in millionths */
    u_char                      user_len;
    u_char                      video_len;
    u_char                      data[1];    /* user, video, then the
                                               coverage bitmap */
} ngx_http_vodlms_progress_node_t;


/* the entry's coverage bitmap, or NULL when it has none */

static ngx_inline vodlms_coverage_t *
ngx_http_vodlms_progress_coverage(ngx_http_vodlms_progress_node_t *node,
    vodlms_coverage_t *c)
{
    if (node->cov_nbits == 0) {
        return NULL;
    }

    c->bits = node->data + node->user_len + node->video_len;
    c->nbits = node->cov_nbits;
    c->duration_ms = node->cov_duration_ms;

    return c;
}


typedef struct {
    ngx_rbtree_t                rbtree;
    ngx_rbtree_node_t           sentinel;
    ngx_queue_t                 clean;       /* evictable, most recent first */
    ngx_queue_t                 dirty;       /* waiting, newest first */
    ngx_uint_t                  dirty_n;     /* entries on sh->dirty */
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
    vodlms_coverage_t           cov;        /* bits NULL: none */
    int64_t                     complete_micro;
} ngx_http_vodlms_progress_snap_t;


typedef struct {
    ngx_http_vodlms_main_conf_t    *vmcf;
    ngx_array_t                    *snaps;
} ngx_http_vodlms_flush_t;


/* what ngx_http_vodlms_progress_entry() found */
typedef enum {
    NGX_HTTP_VODLMS_ENTRY_FOUND = 0,
    NGX_HTTP_VODLMS_ENTRY_CREATED,
    NGX_HTTP_VODLMS_ENTRY_RATE,      /* found, past vodlms_progress_rate */
    NGX_HTTP_VODLMS_ENTRY_FULL       /* not found, and no clean entry */
} ngx_http_vodlms_entry_e;


extern ngx_module_t  ngx_http_vodlms_module;


/* ngx_http_vodlms_progress_zone.c; all but the hash under the zone's lock */

uint32_t ngx_http_vodlms_progress_hash(ngx_str_t *user, ngx_str_t *video);
ngx_http_vodlms_progress_node_t *ngx_http_vodlms_progress_find(
    ngx_http_vodlms_progress_zone_t *z, uint32_t hash, ngx_str_t *user,
    ngx_str_t *video);

/*
 * The entry for (user, video): found, after the rate check (which needs no
 * allocation), or made, evicting clean entries least recently cleaned
 * first, with cov_size bytes of room for its coverage bitmap after the
 * ids.  A made entry is clean and empty: the caller fills it, then marks
 * it dirty or frees it.
 */
ngx_http_vodlms_entry_e ngx_http_vodlms_progress_entry(
    ngx_http_vodlms_progress_zone_t *z, uint32_t hash, ngx_str_t *user,
    ngx_str_t *video, size_t cov_size, ngx_http_vodlms_progress_conf_t *pcf,
    ngx_msec_t now, ngx_log_t *log, ngx_http_vodlms_progress_node_t **np);

void ngx_http_vodlms_progress_free(ngx_http_vodlms_progress_zone_t *z,
    ngx_http_vodlms_progress_node_t *node);

/*
 * The entry remade with a bitmap of cov_size bytes for `duration` (the
 * video's duration changed, or was not known when it was made): the new
 * node, or NULL when there is no room (the entry is then unchanged)
 */
ngx_http_vodlms_progress_node_t *ngx_http_vodlms_progress_resize(
    ngx_http_vodlms_progress_zone_t *z, ngx_http_vodlms_progress_node_t *node,
    size_t cov_size, double duration, ngx_log_t *log);

/* a beacon changed it: bumps the version, moves a clean entry to dirty */
void ngx_http_vodlms_progress_changed(ngx_http_vodlms_progress_zone_t *z,
    ngx_http_vodlms_progress_node_t *node);

/*
 * The database has the entry at this version: clean, evictable (returns
 * 1); or a beacon came since, and it goes to the back of the dirty queue
 * (returns 0)
 */
ngx_uint_t ngx_http_vodlms_progress_written(
    ngx_http_vodlms_progress_zone_t *z, ngx_http_vodlms_progress_node_t *node,
    ngx_uint_t version);


/* ngx_http_vodlms_progress_flush.c */

/* this worker acknowledged a beacon: it must not exit before a flush */
void ngx_http_vodlms_progress_hold(ngx_http_vodlms_main_conf_t *vmcf);


#endif /* NGX_HTTP_VODLMS_PROGRESS_INTERNAL_H */
