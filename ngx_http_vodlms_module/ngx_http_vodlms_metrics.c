/*
 * Metrics: counters in a small shared-memory zone (every worker's share
 * counts), served in Prometheus text format by "vodlms_status".
 *
 * Request outcomes and cache hits are recorded once per request, in the
 * log phase, from what the request's context says happened: no counting
 * scattered through the handlers.  Backend latencies and connections are
 * recorded by the Redis and PostgreSQL layers.  The transcode queue is
 * read from Redis (XLEN, XPENDING) when the page is asked for.
 */

#include "ngx_http_vodlms_module.h"


#define NGX_HTTP_VODLMS_METRICS_SIZE  (64 * 1024)
#define NGX_HTTP_VODLMS_BUCKETS       10


static ngx_msec_t  ngx_http_vodlms_buckets[NGX_HTTP_VODLMS_BUCKETS] = {
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1000
};

static const char  *ngx_http_vodlms_endpoints[NGX_HTTP_VODLMS_EP_N] = {
    "session", "enrollment", "playback", "edge", "progress", "upload", "key"
};

static const char  *ngx_http_vodlms_caches[NGX_HTTP_VODLMS_CACHE_N] = {
    "session", "enrollment", "signature", "edge_signature", "playlist"
};

static const char  *ngx_http_vodlms_backends[NGX_VODLMS_BACKEND_N] = {
    "redis", "postgres"
};


typedef struct {
    ngx_atomic_t   outcomes[NGX_HTTP_VODLMS_EP_N][NGX_HTTP_VODLMS_NERRS];
    ngx_atomic_t   other[NGX_HTTP_VODLMS_EP_N];   /* failed, no vodlms code */
    ngx_atomic_t   cache[NGX_HTTP_VODLMS_CACHE_N][2];
    ngx_atomic_t   hist[NGX_VODLMS_BACKEND_N][NGX_HTTP_VODLMS_BUCKETS + 1];
    ngx_atomic_t   sum_ms[NGX_VODLMS_BACKEND_N];
    ngx_atomic_t   errors[NGX_VODLMS_BACKEND_N];
    ngx_atomic_t   conns[NGX_VODLMS_BACKEND_N];
} ngx_http_vodlms_metrics_t;


/*
 * Like nginx's own ngx_stat_* counters: a pointer into shared memory, set
 * again by every cycle's zone init, so it never outlives a reload.
 */
static ngx_http_vodlms_metrics_t  *ngx_http_vodlms_metrics;


typedef struct {
    ngx_http_request_t         *r;
    ngx_str_t                   group;
    int64_t                     stream_entries;  /* -1: unknown */
    int64_t                     queue_length;    /* the group's lag */
    int64_t                     queue_pending;
    int64_t                     queue_waiting;   /* held for their turn */
} ngx_http_vodlms_status_ctx_t;


/* the helpers' consumer that holds jobs waiting for their owner's turn */
#define NGX_HTTP_VODLMS_WAITING_CONSUMER  "vodlms:waiting"


#define NGX_HTTP_VODLMS_DEFAULT_GROUP  "vodlms-helpers"


static ngx_int_t ngx_http_vodlms_metrics_init_zone(ngx_shm_zone_t *zone,
    void *data);
static ngx_int_t ngx_http_vodlms_status_handler(ngx_http_request_t *r);
static void ngx_http_vodlms_status_reply(void *data, ngx_uint_t i,
    redisReply *reply);
static void ngx_http_vodlms_status_waiting(ngx_http_vodlms_status_ctx_t *sc,
    redisReply *reply);
static void ngx_http_vodlms_status_done(void *data,
    ngx_vodlms_redis_status_e status, const char *reason);
static void ngx_http_vodlms_status_send(ngx_http_vodlms_status_ctx_t *sc);


/* recording */

void
ngx_vodlms_metrics_backend(ngx_vodlms_backend_e b, ngx_msec_t ms,
    ngx_uint_t ok)
{
    ngx_uint_t                  i;
    ngx_http_vodlms_metrics_t  *m = ngx_http_vodlms_metrics;

    if (m == NULL) {
        return;
    }

    for (i = 0; i < NGX_HTTP_VODLMS_BUCKETS; i++) {
        if (ms <= ngx_http_vodlms_buckets[i]) {
            break;
        }
    }

    /* per bucket here; cumulative when printed */
    ngx_atomic_fetch_add(&m->hist[b][i], 1);
    ngx_atomic_fetch_add(&m->sum_ms[b], ms);

    if (!ok) {
        ngx_atomic_fetch_add(&m->errors[b], 1);
    }
}


void
ngx_vodlms_metrics_connection(ngx_vodlms_backend_e b, ngx_int_t delta)
{
    if (ngx_http_vodlms_metrics) {
        ngx_atomic_fetch_add(&ngx_http_vodlms_metrics->conns[b],
                             (ngx_atomic_int_t) delta);
    }
}


static void
ngx_http_vodlms_metrics_cache(ngx_uint_t cache, const char *status)
{
    if (status == NULL) {
        return;
    }

    ngx_atomic_fetch_add(&ngx_http_vodlms_metrics->cache[cache]
                                                    [status[0] == 'H' ? 0 : 1],
                         1);
}


/* the log phase: one count per check that ran, from the context */

ngx_int_t
ngx_http_vodlms_metrics_log(ngx_http_request_t *r)
{
    ngx_uint_t                  ep;
    ngx_http_vodlms_ctx_t      *ctx;
    ngx_http_vodlms_metrics_t  *m = ngx_http_vodlms_metrics;

    if (m == NULL || r != r->main) {
        return NGX_OK;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_vodlms_module);
    if (ctx == NULL) {
        return NGX_OK;
    }

    if (ctx->session.state == NGX_HTTP_VODLMS_SESSION_DONE) {
        ngx_atomic_fetch_add(&m->outcomes[NGX_HTTP_VODLMS_EP_SESSION]
                                         [ctx->session.result], 1);
        ngx_http_vodlms_metrics_cache(NGX_HTTP_VODLMS_CACHE_SESSION,
                                      ctx->session.cache_status);
    }

    if (ctx->enroll.state == NGX_HTTP_VODLMS_ENROLL_DONE) {
        ngx_atomic_fetch_add(&m->outcomes[NGX_HTTP_VODLMS_EP_ENROLL]
                                         [ctx->enroll.result], 1);
        ngx_http_vodlms_metrics_cache(NGX_HTTP_VODLMS_CACHE_ENROLL,
                                      ctx->enroll.cache_status);
    }

    if (ctx->edge.verdict) {
        ngx_atomic_fetch_add(&m->outcomes[NGX_HTTP_VODLMS_EP_EDGE]
                                         [ctx->edge.verified
                                          ? NGX_HTTP_VODLMS_OK
                                          : ctx->last_err
                                            == NGX_HTTP_VODLMS_BAD_PATH
                                          ? NGX_HTTP_VODLMS_BAD_PATH
                                          : NGX_HTTP_VODLMS_EDGE_DENIED], 1);
        ngx_http_vodlms_metrics_cache(NGX_HTTP_VODLMS_CACHE_EDGE,
                                      ctx->edge.sig_cache_status);
    }

    ngx_http_vodlms_metrics_cache(NGX_HTTP_VODLMS_CACHE_SIGNATURE,
                                  ctx->playback.sig_cache_status);
    ngx_http_vodlms_metrics_cache(NGX_HTTP_VODLMS_CACHE_PLAYLIST,
                                  ctx->hls.cache_status);

    /* a content endpoint: its own denial, else the status says it all */
    if (ctx->endpoint) {
        ep = ctx->endpoint - 1;

        if (r->headers_out.status < NGX_HTTP_BAD_REQUEST) {
            ngx_atomic_fetch_add(&m->outcomes[ep][NGX_HTTP_VODLMS_OK], 1);

        } else if (ctx->last_err != NGX_HTTP_VODLMS_OK) {
            ngx_atomic_fetch_add(&m->outcomes[ep][ctx->last_err], 1);

        } else {
            ngx_atomic_fetch_add(&m->other[ep], 1);
        }
    }

    return NGX_OK;
}


/* the zone: made for every configuration with an http block */

ngx_int_t
ngx_http_vodlms_metrics_zone(ngx_conf_t *cf)
{
    ngx_str_t        name = ngx_string("vodlms_metrics");
    ngx_shm_zone_t  *zone;

    zone = ngx_shared_memory_add(cf, &name, NGX_HTTP_VODLMS_METRICS_SIZE,
                                 &ngx_http_vodlms_module);
    if (zone == NULL) {
        return NGX_ERROR;
    }

    zone->init = ngx_http_vodlms_metrics_init_zone;
    zone->data = (void *) 1;    /* not a reference: the zone is ours */

    return NGX_OK;
}


static ngx_int_t
ngx_http_vodlms_metrics_init_zone(ngx_shm_zone_t *zone, void *data)
{
    ngx_slab_pool_t  *shpool;

    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    if (data && data != (void *) 1) {
        /* a reload: the counters go on counting */
        ngx_http_vodlms_metrics = data;
        zone->data = data;
        return NGX_OK;
    }

    if (zone->shm.exists) {
        ngx_http_vodlms_metrics = shpool->data;
        zone->data = shpool->data;
        return NGX_OK;
    }

    ngx_http_vodlms_metrics = ngx_slab_calloc(shpool,
                                            sizeof(ngx_http_vodlms_metrics_t));
    if (ngx_http_vodlms_metrics == NULL) {
        return NGX_ERROR;
    }

    shpool->data = ngx_http_vodlms_metrics;
    zone->data = ngx_http_vodlms_metrics;

    return NGX_OK;
}


/* vodlms_status: the Prometheus page */

/* vodlms_status [group=name]; */

char *
ngx_http_vodlms_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vodlms_loc_conf_t  *vlcf = conf;

    u_char                    *p;
    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *clcf;

    value = cf->args->elts;

    if (cf->args->nelts == 2) {
        if (value[1].len <= 6
            || ngx_strncmp(value[1].data, "group=", 6) != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" of "
                               "\"vodlms_status\", expected "
                               "\"group=name\" (the helpers' consumer "
                               "group)", &value[1]);
            return NGX_CONF_ERROR;
        }

        for (p = value[1].data + 6; p < value[1].data + value[1].len; p++) {
            if (*p <= ' ' || *p >= 0x7f) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid consumer group in \"%V\"",
                                   &value[1]);
                return NGX_CONF_ERROR;
            }
        }

        vlcf->status_group.data = value[1].data + 6;
        vlcf->status_group.len = value[1].len - 6;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_vodlms_status_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_vodlms_status_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    const char                    *argv0[2], *argv1[3], *argv2[4], *reason;
    size_t                         argvlen0[2], argvlen1[3], argvlen2[4];
    ngx_vodlms_redis_cmd_t         cmds[3];
    ngx_vodlms_redis_status_e      status;
    ngx_http_vodlms_loc_conf_t    *vlcf;
    ngx_http_vodlms_main_conf_t   *vmcf;
    ngx_http_vodlms_status_ctx_t  *sc;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    sc = ngx_pcalloc(r->pool, sizeof(ngx_http_vodlms_status_ctx_t));
    if (sc == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    sc->r = r;
    sc->stream_entries = -1;
    sc->queue_length = -1;
    sc->queue_pending = -1;

    vmcf = ngx_http_get_module_main_conf(r, ngx_http_vodlms_module);
    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);

    sc->group = vlcf->status_group;

    if (sc->group.len == 0) {
        ngx_str_set(&sc->group, NGX_HTTP_VODLMS_DEFAULT_GROUP);
    }

    /* status_send() finalizes the request; NGX_DONE drops this reference */
    r->main->count++;

    if (vmcf->redis_pool == NULL) {
        ngx_http_vodlms_status_send(sc);
        return NGX_DONE;
    }

    /*
     * The transcode queue: the stream's entries (finished jobs too, until
     * trimmed), and the helpers' group: its lag (jobs no helper has taken
     * yet, Redis 7) and its pending jobs (taken, not yet acknowledged).
     * Jobs waiting for their owner's turn are pending to one consumer
     * (docs/helper.md, fair turns): they count as not taken.
     */

    argv0[0] = "XLEN";
    argvlen0[0] = 4;
    argv0[1] = (char *) vlcf->upload.stream.data;
    argvlen0[1] = vlcf->upload.stream.len;

    argv1[0] = "XINFO";
    argvlen1[0] = 5;
    argv1[1] = "GROUPS";
    argvlen1[1] = 6;
    argv1[2] = argv0[1];
    argvlen1[2] = argvlen0[1];

    argv2[0] = "XINFO";
    argvlen2[0] = 5;
    argv2[1] = "CONSUMERS";
    argvlen2[1] = 9;
    argv2[2] = argv0[1];
    argvlen2[2] = argvlen0[1];
    argv2[3] = (char *) sc->group.data;
    argvlen2[3] = sc->group.len;

    cmds[0].argc = 2;
    cmds[0].argv = argv0;
    cmds[0].argvlen = argvlen0;
    cmds[1].argc = 3;
    cmds[1].argv = argv1;
    cmds[1].argvlen = argvlen1;
    cmds[2].argc = 4;
    cmds[2].argv = argv2;
    cmds[2].argvlen = argvlen2;

    rc = ngx_vodlms_redis_send(vmcf->redis_pool, r->pool, r->connection->log,
                               cmds, 3, ngx_http_vodlms_status_reply,
                               ngx_http_vodlms_status_done, sc, &status,
                               &reason);
    if (rc != NGX_OK) {
        ngx_http_vodlms_status_send(sc);
    }

    return NGX_DONE;
}


static void
ngx_http_vodlms_status_reply(void *data, ngx_uint_t i, redisReply *reply)
{
    ngx_http_vodlms_status_ctx_t  *sc = data;

    size_t       g, k;
    redisReply  *grp, *key, *val;
    ngx_uint_t   ours;

    if (i == 0 && reply->type == REDIS_REPLY_INTEGER) {
        sc->stream_entries = reply->integer;
        return;
    }

    if (i == 2) {
        ngx_http_vodlms_status_waiting(sc, reply);
        return;
    }

    /* XINFO GROUPS: one flat [name, value, ...] array per group */

    if (i != 1 || reply->type != REDIS_REPLY_ARRAY) {
        return;
    }

    for (g = 0; g < reply->elements; g++) {
        grp = reply->element[g];

        if (grp->type != REDIS_REPLY_ARRAY) {
            continue;
        }

        ours = 0;

        for (k = 0; k + 1 < grp->elements; k += 2) {
            key = grp->element[k];
            val = grp->element[k + 1];

            if (key->type == REDIS_REPLY_STRING && key->len == 4
                && ngx_strncmp(key->str, "name", 4) == 0
                && val->type == REDIS_REPLY_STRING
                && val->len == sc->group.len
                && ngx_strncmp(val->str, sc->group.data, val->len) == 0)
            {
                ours = 1;
            }
        }

        if (!ours) {
            continue;
        }

        for (k = 0; k + 1 < grp->elements; k += 2) {
            key = grp->element[k];
            val = grp->element[k + 1];

            if (key->type != REDIS_REPLY_STRING
                || val->type != REDIS_REPLY_INTEGER)
            {
                continue;       /* lag is nil when Redis cannot tell */
            }

            if (key->len == 7 && ngx_strncmp(key->str, "pending", 7) == 0) {
                sc->queue_pending = val->integer;

            } else if (key->len == 3 && ngx_strncmp(key->str, "lag", 3) == 0)
            {
                sc->queue_length = val->integer;
            }
        }

        return;
    }
}


/* XINFO CONSUMERS: the waiting jobs are the holding consumer's pending */

static void
ngx_http_vodlms_status_waiting(ngx_http_vodlms_status_ctx_t *sc,
    redisReply *reply)
{
    size_t       c, k;
    redisReply  *con, *key, *val;
    int64_t      pending;
    ngx_uint_t   holder;

    if (reply->type != REDIS_REPLY_ARRAY) {
        return;                 /* no group yet */
    }

    for (c = 0; c < reply->elements; c++) {
        con = reply->element[c];

        if (con->type != REDIS_REPLY_ARRAY) {
            continue;
        }

        holder = 0;
        pending = 0;

        for (k = 0; k + 1 < con->elements; k += 2) {
            key = con->element[k];
            val = con->element[k + 1];

            if (key->type != REDIS_REPLY_STRING) {
                continue;
            }

            if (key->len == 4 && ngx_strncmp(key->str, "name", 4) == 0
                && val->type == REDIS_REPLY_STRING
                && val->len == sizeof(NGX_HTTP_VODLMS_WAITING_CONSUMER) - 1
                && ngx_strncmp(val->str, NGX_HTTP_VODLMS_WAITING_CONSUMER,
                               val->len) == 0)
            {
                holder = 1;

            } else if (key->len == 7
                       && ngx_strncmp(key->str, "pending", 7) == 0
                       && val->type == REDIS_REPLY_INTEGER)
            {
                pending = val->integer;
            }
        }

        if (holder) {
            sc->queue_waiting = pending;
            return;
        }
    }
}


static void
ngx_http_vodlms_status_done(void *data, ngx_vodlms_redis_status_e status,
    const char *reason)
{
    ngx_http_vodlms_status_send(data);
}


/* a gauge read from Redis: HELP and TYPE always, the sample if known */

static u_char *
ngx_http_vodlms_status_gauge(u_char *p, u_char *last, const char *name,
    const char *help, int64_t value)
{
    p = ngx_slprintf(p, last, "# HELP %s %s\n# TYPE %s gauge\n",
                     name, help, name);

    if (value >= 0) {
        p = ngx_slprintf(p, last, "%s %L\n", name, value);
    }

    return p;
}


static u_char *
ngx_http_vodlms_status_zones(ngx_http_request_t *r, u_char *p, u_char *last)
{
    ngx_uint_t                       i, pass;
    ngx_atomic_uint_t                v;
    ngx_list_part_t                 *part;
    ngx_shm_zone_t                  *zone;
    ngx_vodlms_shm_cache_stats_t     st;

    static const char  *head[4] = {
        "# HELP vodlms_cache_zone_entries Answers held by a cache zone.\n"
        "# TYPE vodlms_cache_zone_entries gauge\n",
        "# HELP vodlms_cache_zone_evictions_total Live answers evicted for "
        "room.\n"
        "# TYPE vodlms_cache_zone_evictions_total counter\n",
        "# HELP vodlms_cache_zone_negative_entries Negative answers (no such "
        "session or video, refusals) held, within the zone's negative= "
        "bound.\n"
        "# TYPE vodlms_cache_zone_negative_entries gauge\n",
        "# HELP vodlms_cache_zone_negative_evictions_total Negative answers "
        "evicted by other negative answers or for live ones.\n"
        "# TYPE vodlms_cache_zone_negative_evictions_total counter\n"
    };

    static const char  *name[4] = {
        "vodlms_cache_zone_entries",
        "vodlms_cache_zone_evictions_total",
        "vodlms_cache_zone_negative_entries",
        "vodlms_cache_zone_negative_evictions_total"
    };

    /* one family per pass: the text format wants their samples together */

    for (pass = 0; pass < 4; pass++) {

        p = ngx_slprintf(p, last, "%s", head[pass]);

        part = (ngx_list_part_t *) &ngx_cycle->shared_memory.part;
        zone = part->elts;

        for (i = 0; /* void */; i++) {

            if (i >= part->nelts) {
                if (part->next == NULL) {
                    break;
                }
                part = part->next;
                zone = part->elts;
                i = 0;
            }

            if (!ngx_vodlms_shm_cache_is(&zone[i])) {
                continue;
            }

            ngx_vodlms_shm_cache_get_stats(&zone[i], &st);

            v = (pass == 0) ? st.entries
                : (pass == 1) ? st.evictions
                : (pass == 2) ? st.negative_entries
                : st.negative_evictions;

            p = ngx_slprintf(p, last, "%s{zone=\"%V\"} %uA\n",
                             name[pass], &zone[i].shm.name, v);
        }
    }

    return p;
}


static void
ngx_http_vodlms_status_send(ngx_http_vodlms_status_ctx_t *sc)
{
    u_char                          *p, *last;
    ngx_buf_t                       *b;
    ngx_uint_t                       ep, e, c, k, i;
    ngx_atomic_uint_t                n, cum;
    ngx_http_request_t              *r = sc->r;
    ngx_http_vodlms_metrics_t       *m = ngx_http_vodlms_metrics;
    ngx_http_vodlms_progress_stats_t ps;

    b = ngx_create_temp_buf(r->pool, 64 * 1024);
    if (b == NULL || m == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = b->last;
    last = b->end;

    /* the Prometheus way to show a version: a constant 1 with labels */
    p = ngx_slprintf(p, last,
            "# HELP vodlms_build_info The vodlms module's version and the "
            "nginx it was built for.\n"
            "# TYPE vodlms_build_info gauge\n"
            "vodlms_build_info{version=\"" NGX_HTTP_VODLMS_VERSION "\","
            "nginx=\"" NGINX_VERSION "\"} 1\n");

    p = ngx_slprintf(p, last,
            "# HELP vodlms_requests_total Requests by vodlms check or "
            "endpoint, and outcome.\n"
            "# TYPE vodlms_requests_total counter\n");

    for (ep = 0; ep < NGX_HTTP_VODLMS_EP_N; ep++) {
        for (e = 0; e < NGX_HTTP_VODLMS_NERRS; e++) {
            n = m->outcomes[ep][e];
            if (n == 0) {
                continue;
            }
            p = ngx_slprintf(p, last,
                             "vodlms_requests_total{endpoint=\"%s\","
                             "outcome=\"%s\"} %uA\n",
                             ngx_http_vodlms_endpoints[ep],
                             ngx_http_vodlms_err_code(e), n);
        }

        if (m->other[ep]) {
            p = ngx_slprintf(p, last,
                             "vodlms_requests_total{endpoint=\"%s\","
                             "outcome=\"other_error\"} %uA\n",
                             ngx_http_vodlms_endpoints[ep], m->other[ep]);
        }
    }

    p = ngx_slprintf(p, last,
            "# HELP vodlms_cache_requests_total Cache lookups by cache and "
            "result.\n"
            "# TYPE vodlms_cache_requests_total counter\n");

    for (c = 0; c < NGX_HTTP_VODLMS_CACHE_N; c++) {
        p = ngx_slprintf(p, last,
                         "vodlms_cache_requests_total{cache=\"%s\","
                         "result=\"hit\"} %uA\n"
                         "vodlms_cache_requests_total{cache=\"%s\","
                         "result=\"miss\"} %uA\n",
                         ngx_http_vodlms_caches[c], m->cache[c][0],
                         ngx_http_vodlms_caches[c], m->cache[c][1]);
    }

    p = ngx_http_vodlms_status_zones(r, p, last);
    p = ngx_http_vodlms_revoke_status(r, p, last);

    p = ngx_slprintf(p, last,
            "# HELP vodlms_backend_duration_seconds Round trips to Redis "
            "and PostgreSQL.\n"
            "# TYPE vodlms_backend_duration_seconds histogram\n");

    for (k = 0; k < NGX_VODLMS_BACKEND_N; k++) {
        cum = 0;

        for (i = 0; i < NGX_HTTP_VODLMS_BUCKETS; i++) {
            cum += m->hist[k][i];
            p = ngx_slprintf(p, last,
                             "vodlms_backend_duration_seconds_bucket{"
                             "backend=\"%s\",le=\"%.3f\"} %uA\n",
                             ngx_http_vodlms_backends[k],
                             (double) ngx_http_vodlms_buckets[i] / 1000,
                             cum);
        }

        cum += m->hist[k][NGX_HTTP_VODLMS_BUCKETS];

        p = ngx_slprintf(p, last,
                         "vodlms_backend_duration_seconds_bucket{"
                         "backend=\"%s\",le=\"+Inf\"} %uA\n"
                         "vodlms_backend_duration_seconds_sum{"
                         "backend=\"%s\"} %.3f\n"
                         "vodlms_backend_duration_seconds_count{"
                         "backend=\"%s\"} %uA\n",
                         ngx_http_vodlms_backends[k], cum,
                         ngx_http_vodlms_backends[k],
                         (double) m->sum_ms[k] / 1000,
                         ngx_http_vodlms_backends[k], cum);
    }

    /* each family's samples together, as the text format requires */

    p = ngx_slprintf(p, last,
            "# HELP vodlms_backend_errors_total Failed round trips "
            "(refused, reset, timed out, errors).\n"
            "# TYPE vodlms_backend_errors_total counter\n");

    for (k = 0; k < NGX_VODLMS_BACKEND_N; k++) {
        p = ngx_slprintf(p, last,
                         "vodlms_backend_errors_total{backend=\"%s\"} %uA\n",
                         ngx_http_vodlms_backends[k], m->errors[k]);
    }

    p = ngx_slprintf(p, last,
            "# HELP vodlms_backend_connections Open connections, all "
            "workers.\n"
            "# TYPE vodlms_backend_connections gauge\n");

    for (k = 0; k < NGX_VODLMS_BACKEND_N; k++) {
        p = ngx_slprintf(p, last,
                         "vodlms_backend_connections{backend=\"%s\"} %A\n",
                         ngx_http_vodlms_backends[k],
                         (ngx_atomic_int_t) m->conns[k]);
    }

    if (ngx_http_vodlms_progress_stats(r, &ps) == NGX_OK) {
        p = ngx_slprintf(p, last,
            "# HELP vodlms_progress_beacons_total Beacons acknowledged.\n"
            "# TYPE vodlms_progress_beacons_total counter\n"
            "vodlms_progress_beacons_total %uA\n"
            "# HELP vodlms_progress_pending Entries not yet in the "
            "database.\n"
            "# TYPE vodlms_progress_pending gauge\n"
            "vodlms_progress_pending %ui\n"
            "# HELP vodlms_progress_flushes_total Successful flushes.\n"
            "# TYPE vodlms_progress_flushes_total counter\n"
            "vodlms_progress_flushes_total %uA\n"
            "# HELP vodlms_progress_flush_failures_total Failed flushes "
            "(kept for the next try).\n"
            "# TYPE vodlms_progress_flush_failures_total counter\n"
            "vodlms_progress_flush_failures_total %uA\n"
            "# HELP vodlms_progress_rows_total Entries written.\n"
            "# TYPE vodlms_progress_rows_total counter\n"
            "vodlms_progress_rows_total %uA\n"
            "# HELP vodlms_progress_refused_full_total Beacons refused: "
            "only unflushed entries left.\n"
            "# TYPE vodlms_progress_refused_full_total counter\n"
            "vodlms_progress_refused_full_total %uA\n"
            "# HELP vodlms_progress_set_aside_total Entries the flush "
            "query refused, set aside unwritten.\n"
            "# TYPE vodlms_progress_set_aside_total counter\n"
            "vodlms_progress_set_aside_total %uA\n"
            "# HELP vodlms_progress_buffer_fill Fraction of the buffer's "
            "pages in use.\n"
            "# TYPE vodlms_progress_buffer_fill gauge\n"
            "vodlms_progress_buffer_fill %.3f\n",
            ps.beacons, ps.pending, ps.flushes, ps.flush_failures, ps.rows,
            ps.full, ps.set_aside, ps.fill);
    }

    p = ngx_http_vodlms_status_gauge(p, last, "vodlms_transcode_stream_entries",
            "Entries in the transcode stream, finished jobs included until "
            "it is trimmed.", sc->stream_entries);
    /* the replies come in order: GROUPS (lag, pending), then CONSUMERS */
    if (sc->queue_waiting > 0 && sc->queue_pending >= sc->queue_waiting) {
        sc->queue_pending -= sc->queue_waiting;
        sc->queue_length = (sc->queue_length > 0 ? sc->queue_length : 0)
                           + sc->queue_waiting;
    }

    p = ngx_http_vodlms_status_gauge(p, last, "vodlms_transcode_queue_length",
            "Jobs no helper has taken yet (the consumer group's lag, and "
            "the jobs waiting for their owner's turn).",
            sc->queue_length);
    p = ngx_http_vodlms_status_gauge(p, last, "vodlms_transcode_queue_pending",
            "Jobs delivered to a helper and not yet acknowledged.",
            sc->queue_pending);

    b->last = p;

    ngx_http_finalize_request(r, ngx_http_vodlms_send(r, NGX_HTTP_OK,
                                  "text/plain; version=0.0.4; charset=utf-8",
                                  b));
}
