/*
 * Concurrent streams per user: how many playbacks one user may have alive
 * at once, counted in Redis so that the limit holds across nginx nodes.
 *
 * A playback is alive while its beacons (or key fetches) arrive, and lapses
 * after "lapse" of silence.  The state is one Redis sorted set per user and
 * limit (playbackId -> last seen, by Redis' own clock), changed by one EVAL
 * per playback start, beacon or key fetch: no node's clock is used.
 */

#ifndef NGX_HTTP_VODLMS_STREAMS_H
#define NGX_HTTP_VODLMS_STREAMS_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "vodlms_core.h"


/* a playbackId: 128 bits from a CSPRNG, in lower-case hex */
#define NGX_HTTP_VODLMS_PLAYBACK_ID_LEN   VODLMS_PLAYBACK_ID_LEN


/* vodlms_streams_limit: one per name, shared by the locations naming it */
typedef struct {
    ngx_str_t                   name;        /* also the Redis namespace */
    ngx_uint_t                  max;
    ngx_msec_t                  lapse;
    ngx_msec_t                  keep;        /* how long "displaced" is
                                                remembered */
    ngx_flag_t                  takeover;    /* over=takeover */
    ngx_flag_t                  closed;      /* redis_down=closed */
    ngx_uint_t                  defined;     /* 0: only named so far */
    ngx_uint_t                  down;        /* per worker: the last EVAL
                                                failed (logged once) */
} ngx_http_vodlms_streams_limit_t;


/* what a location does with its limit (set at merge) */
#define NGX_HTTP_VODLMS_STREAMS_NONE    0    /* counts nothing here */
#define NGX_HTTP_VODLMS_STREAMS_START   1    /* vodlms_playback */
#define NGX_HTTP_VODLMS_STREAMS_BEACON  2    /* vodlms_progress */
#define NGX_HTTP_VODLMS_STREAMS_KEY     3    /* vodlms_hls_key */


/* headerless=: a key request without X-Vodlms-Playback */
#define NGX_HTTP_VODLMS_STREAMS_HEADERLESS_SERVE   0
#define NGX_HTTP_VODLMS_STREAMS_HEADERLESS_REFUSE  1


typedef struct {
    ngx_http_vodlms_streams_limit_t  *limit;     /* NULL: off */
    ngx_uint_t                        role;
    ngx_uint_t                        headerless;
} ngx_http_vodlms_streams_conf_t;


typedef enum {
    NGX_HTTP_VODLMS_STREAMS_NOT_ASKED = 0,   /* no check was made */
    NGX_HTTP_VODLMS_STREAMS_LIVE,            /* admitted or refreshed */
    NGX_HTTP_VODLMS_STREAMS_UNCHECKED,       /* Redis down, redis_down=open */
    NGX_HTTP_VODLMS_STREAMS_FULL,            /* 409 too_many_streams */
    NGX_HTTP_VODLMS_STREAMS_DISPLACED,       /* 409 stream_displaced */
    NGX_HTTP_VODLMS_STREAMS_CLOSED,          /* 503, redis_down=closed */
    NGX_HTTP_VODLMS_STREAMS_BAD_ID,          /* 400 bad_playback_id */
    NGX_HTTP_VODLMS_STREAMS_MISSING          /* 400 playback_required: a
                                                key request without the
                                                header, headerless=refuse */
} ngx_http_vodlms_streams_verdict_e;


typedef void (*ngx_http_vodlms_streams_done_pt)(ngx_http_request_t *r);


/* ngx_http_vodlms_streams_ctx_t.state */
#define NGX_HTTP_VODLMS_STREAMS_NEW      0
#define NGX_HTTP_VODLMS_STREAMS_PENDING  1     /* Redis is being asked */
#define NGX_HTTP_VODLMS_STREAMS_DONE     2     /* .verdict is in */


/* per request, in ngx_http_vodlms_ctx_t */
typedef struct {
    ngx_uint_t                          state;     /* NEW, PENDING, DONE */
    ngx_http_vodlms_streams_verdict_e   verdict;
    ngx_str_t                           id;        /* the playbackId, or
                                                      empty */
    ngx_int_t                           active;    /* live ones, after */
    ngx_int_t                           displaced; /* taken over by this */
    ngx_http_vodlms_streams_limit_t    *limit;
    ngx_str_t                           user;
    ngx_str_t                           detail;    /* why Redis failed */
    ngx_uint_t                          replied;   /* a well-formed reply */
    ngx_uint_t                          fresh;     /* id drawn here */
    ngx_http_vodlms_streams_done_pt     done;
    void                               *data;      /* the caller's */
    u_char                              id_buf[NGX_HTTP_VODLMS_PLAYBACK_ID_LEN];
} ngx_http_vodlms_streams_ctx_t;


/*
 * The C API (the three uses below: playback starts, beacons, key fetches).
 *
 * ngx_http_vodlms_streams_check() checks and refreshes the playback "id"
 * of "user" under "limit" (a beacon's or a key fetch's check: a displaced
 * one is refused and not refreshed; a lapsed or unknown one is admitted
 * again if there is room, never by taking over), or starts a new playback
 * when id is NULL (a new playbackId is drawn; over the limit, refused or
 * taking over the oldest, as configured).
 *
 * NGX_AGAIN: under way; done(r) runs once the verdict is in the request's
 * ctx->streams (read it with ngx_http_vodlms_streams_passed()).  NGX_OK:
 * the verdict is in already (a malformed id, or Redis known to be down);
 * done() is not called.  NGX_ERROR: no memory.  Everything is logged here.
 *
 * The playback location and the key location check in the access phase
 * (ngx_http_vodlms_streams_handler(), woken by ngx_http_vodlms_wake, runs
 * again and finds the verdict); a beacon checks in its body handler.
 */
ngx_int_t ngx_http_vodlms_streams_check(ngx_http_request_t *r,
    ngx_http_vodlms_streams_limit_t *limit, ngx_str_t *user, ngx_str_t *id,
    ngx_http_vodlms_streams_done_pt done);

/* may the request go on: LIVE or UNCHECKED */
ngx_uint_t ngx_http_vodlms_streams_passed(ngx_http_request_t *r);

/*
 * The refusal for the verdict (400 bad_playback_id, 400 playback_required,
 * 409 too_many_streams
 * with "active" and "limit", 409 stream_displaced, 503
 * streams_unavailable), as ngx_http_vodlms_deny() sends it.
 */
ngx_int_t ngx_http_vodlms_streams_deny(ngx_http_request_t *r);

/* the request's X-Vodlms-Playback header: NGX_OK and *id, or NGX_DECLINED */
ngx_int_t ngx_http_vodlms_streams_header(ngx_http_request_t *r,
    ngx_str_t *id);

ngx_uint_t ngx_http_vodlms_streams_id_valid(u_char *p, size_t len);


/*
 * The step of the playback and key locations in the access phase, after
 * the session gate and the enrollment check
 */
ngx_int_t ngx_http_vodlms_streams_handler(ngx_http_request_t *r);

/* the key handler's look: 1 if the check above admitted the key fetch */
ngx_uint_t ngx_http_vodlms_streams_key_passed(ngx_http_request_t *r);

/* $vodlms_playback_id */
ngx_int_t ngx_http_vodlms_streams_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

/* the playback answer's "playbackId" member: its length, then the bytes */
size_t ngx_http_vodlms_streams_json_len(ngx_http_request_t *r);
u_char *ngx_http_vodlms_streams_json(ngx_http_request_t *r, u_char *p);


void ngx_http_vodlms_streams_create_conf(ngx_http_vodlms_streams_conf_t *c);
char *ngx_http_vodlms_streams_merge_conf(ngx_conf_t *cf,
    ngx_http_vodlms_streams_conf_t *prev,
    ngx_http_vodlms_streams_conf_t *conf);

char *ngx_http_vodlms_streams_limit(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_vodlms_streams(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* NGX_HTTP_VODLMS_STREAMS_H */
