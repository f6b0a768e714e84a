/*
 * The job queue: a Redis Stream read through a consumer group (hiredis,
 * synchronous: a helper does one job at a time), handed out fairly.
 *
 * One stream, as before: each job done once, a dead helper's job
 * reclaimed.  What changes is who gets the next job.  A plain
 * XREADGROUP ">" is first come, first served, so one instructor who queues
 * ten lectures holds every helper for hours (issue #18).  Instead, one
 * script (EVAL: atomic, so any number of helpers on any hosts) does:
 *
 *   1. a silent consumer's job: per consumer, XPENDING IDLE claim_idle,
 *      XCLAIM (what XAUTOCLAIM did, minus the waiting jobs below);
 *   2. new entries: XREADGROUP as the holding consumer VH_QUEUE_HOLD; each
 *      entry stays pending to it (so never lost) and its id goes into its
 *      owner's lane, a list <stream>:lane:<owner>; an owner with waiting
 *      jobs is in the ring, a sorted set <stream>:lanes scored by when it
 *      was last served (<stream>:served, a hash; never: below every
 *      served owner, in order of arrival);
 *   3. the owner served least recently gives its oldest job (XCLAIM from
 *      the holder, only while the holder still has it): round robin, and
 *      an owner who arrives while another's job runs goes next.
 *
 * The owner is the entry's "owner" field (the module writes the uploader),
 * "-" when there is none.  Otherwise:
 *
 *   our own backlog   XREADGROUP ... STREAMS key 0   (once, at start)
 *   nothing to do     XREAD BLOCK ms STREAMS key <last delivered id>
 *   still working     XCLAIM key g c 0 id JUSTID     (resets the idle time)
 *   done              XACK key g id                  (after the videos row)
 *
 * The connection: to redis_host (resolved again by hiredis on every
 * connect, so a name that moved is followed), or to the master the
 * sentinels name (sentinel.c), checked with ROLE.  A lost connection, a
 * timeout, READONLY (a demoted master) or UNBLOCKED (a blocked XREAD ended
 * by the demotion) closes it; the next call connects again, after a
 * back-off (0.5 s doubling, up to 30 s; 5 s with Sentinel, whose answers
 * are cheap to ask again).  The consumer group lives in the stream, which
 * replicates: on a new master XGROUP CREATE answers BUSYGROUP and the
 * helper carries on where the group was.
 */

#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <hiredis/hiredis.h>

#include "vodlms_helper.h"

static const char vh_queue_fair_lua[] =
    "local stream, ring, served, seq = KEYS[1], KEYS[2], KEYS[3], KEYS[4]\n"
    "local group, me, hold, idle, lanes = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]\n"
    "local function field(t, k)\n"
    "  for i = 1, #t, 2 do if t[i] == k then return t[i + 1] end end\n"
    "end\n"
    "local function owner_of(f)\n"
    "  local o = f and field(f, 'owner')\n"
    "  if o == nil or o == '' then return '-' end\n"
    "  return o\n"
    "end\n"
    /* never served: below every served owner, by its first entry's time */
    "local function wait(id, f)\n"
    "  local o = owner_of(f)\n"
    "  if redis.call('RPUSH', lanes .. o, id) == 1 then\n"
    "    local ms = tonumber(string.match(id, '^(%d+)')) or 0\n"
    "    redis.call('ZADD', ring, redis.call('HGET', served, o)\n"
    "               or string.format('%.17g', ms / 1e13 - 1), o)\n"
    "  end\n"
    "end\n"
    /* 1. a silent consumer's job (never a waiting one) */
    "for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', stream, group)) do\n"
    "  local name = field(c, 'name')\n"
    "  if name ~= hold and (field(c, 'pending') or 0) > 0 then\n"
    "    local p = redis.call('XPENDING', stream, group, 'IDLE', idle, '-', '+', 1, name)\n"
    "    if #p > 0 then\n"
    "      local e = redis.call('XCLAIM', stream, group, me, idle, p[1][1])\n"
    "      if #e > 0 and e[1] then return {'reclaimed', e[1]} end\n"
    "    end\n"
    "  end\n"
    "end\n"
    /* 2. new entries wait in their owner's lane, pending to the holder */
    "local n, got = 0, 0\n"
    "repeat\n"
    "  got = 0\n"
    "  local r = redis.call('XREADGROUP', 'GROUP', group, hold, 'COUNT', 100, 'STREAMS', stream, '>')\n"
    "  if r then\n"
    "    for _, e in ipairs(r[1][2]) do got = got + 1; wait(e[1], e[2]) end\n"
    "  end\n"
    "  n = n + got\n"
    "until got < 100 or n >= 1000\n"
    /* the lanes lost (a key deleted by hand): rebuilt from the holder's entries */
    "if redis.call('ZCARD', ring) == 0 then\n"
    "  for _, p in ipairs(redis.call('XPENDING', stream, group, '-', '+', 1000, hold)) do\n"
    "    local e = redis.call('XRANGE', stream, p[1], p[1])\n"
    "    wait(p[1], e[1] and e[1][2])\n"
    "  end\n"
    "end\n"
    /* 3. the owner served least recently gives its oldest job */
    "for _ = 1, 1000 do\n"
    "  local top = redis.call('ZPOPMIN', ring)\n"
    "  if #top == 0 then break end\n"
    "  local o = top[1]\n"
    "  local id = redis.call('LPOP', lanes .. o)\n"
    "  if id and #redis.call('XPENDING', stream, group, id, id, 1, hold) == 1 then\n"
    "    local e = redis.call('XCLAIM', stream, group, me, 0, id, 'RETRYCOUNT', 1)\n"
    "    if #e > 0 and e[1] then\n"
    "      local s = redis.call('INCR', seq)\n"
    "      redis.call('HSET', served, o, s)\n"
    "      if redis.call('LLEN', lanes .. o) > 0 then redis.call('ZADD', ring, s, o) end\n"
    "      return {'received', e[1]}\n"
    "    end\n"
    "  end\n"
    "  if redis.call('LLEN', lanes .. o) > 0 then redis.call('ZADD', ring, top[2], o) end\n"
    "end\n"
    "for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do\n"
    "  if field(g, 'name') == group then return {'none', field(g, 'last-delivered-id')} end\n"
    "end\n"
    "return {'none', '0-0'}\n";

struct vh_queue_s {
    const vh_conf_t  *cf;
    redisContext     *ctx;
    vh_sentinel_t    *sentinel;         /* NULL: redis_host */
    char              host[256];        /* the server connected to */
    int               port;
    char              last_id[64];      /* the group's last delivered entry */
    int               history_done;     /* our own pending entries read */
    double            next_connect;
    double            backoff;
};

static void
queue_drop(vh_queue_t *q)
{
    if (q->ctx != NULL) {
        redisFree(q->ctx);
        q->ctx = NULL;
    }
}

static int
reply_is_error(vh_queue_t *q, redisReply *r, const char *what)
{
    if (r == NULL) {
        vh_error("redis %s failed: %s", what,
                 q->ctx && q->ctx->errstr[0] ? q->ctx->errstr : "no reply");
        queue_drop(q);
        return 1;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        vh_error("redis %s failed: %s", what, r->str);
        if (strstr(r->str, "NOGROUP") != NULL) {
            queue_drop(q);      /* the stream was deleted: recreate the group */
        }
        if (!strncmp(r->str, "READONLY", 8) || !strncmp(r->str, "UNBLOCKED", 9)) {
            /* a master demoted under us (a failover): find the master again */
            vh_warn("redis %s:%d is no longer the master: %s", q->host, q->port,
                    q->sentinel ? "asking the sentinels again"
                                : "reconnecting (redis_host is resolved again)");
            if (q->sentinel) {
                vh_sentinel_distrust(q->sentinel);
            }
            queue_drop(q);
        }
        return 1;
    }
    return 0;
}

/* " (address A)" when q->host is a name: where it resolved to this time */
static const char *
queue_peer(vh_queue_t *q, char *buf, size_t len)
{
    struct sockaddr_storage  ss;
    socklen_t                sl = sizeof(ss);
    char                     ip[INET6_ADDRSTRLEN] = "";
    const void              *a;

    buf[0] = '\0';
    if (getpeername(q->ctx->fd, (struct sockaddr *) &ss, &sl) != 0) {
        return buf;
    }
    a = ss.ss_family == AF_INET6
        ? (const void *) &((struct sockaddr_in6 *) &ss)->sin6_addr
        : (const void *) &((struct sockaddr_in *) &ss)->sin_addr;
    if (inet_ntop(ss.ss_family, a, ip, sizeof(ip)) != NULL && strcmp(ip, q->host) != 0) {
        snprintf(buf, len, " (address %s)", ip);
    }
    return buf;
}

/* ROLE says master (Sentinel): 0, or -1 (logged, the connection dropped) */
static int
queue_check_role(vh_queue_t *q)
{
    redisReply  *r;
    int          rc = 0;

    r = redisCommand(q->ctx, "ROLE");
    if (reply_is_error(q, r, "ROLE")) {
        if (r) freeReplyObject(r);
        return -1;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1
        || r->element[0]->type != REDIS_REPLY_STRING)
    {
        vh_error("redis %s:%d gave an unexpected reply to ROLE", q->host, q->port);
        rc = -1;
    } else if (strcmp(r->element[0]->str, "master") != 0) {
        vh_info("redis %s:%d, named master \"%s\" by sentinel %s, answers ROLE"
                " \"%s\", not \"master\": asking the sentinels again", q->host,
                q->port, q->cf->redis_master_name,
                vh_sentinel_named_by(q->sentinel), r->element[0]->str);
        vh_sentinel_distrust(q->sentinel);
        rc = -1;
    }
    freeReplyObject(r);
    return rc;
}

static int
queue_connect(vh_queue_t *q)
{
    const vh_conf_t  *cf = q->cf;
    struct timeval    tv;
    redisReply       *r;
    double            t, max;
    char              peer[80];

    if (q->ctx != NULL) {
        return 0;
    }
    if (vh_now() < q->next_connect) {
        vh_sleep_interruptible(q->next_connect - vh_now());
        if (vh_stop) {
            return -1;
        }
    }

    if (q->sentinel != NULL) {
        if (vh_sentinel_master(q->sentinel, q->host, sizeof(q->host), &q->port) != 0) {
            goto fail;
        }
    } else {
        snprintf(q->host, sizeof(q->host), "%s", cf->redis_host);
        q->port = cf->redis_port;
    }

    tv.tv_sec = (long) cf->redis_timeout;
    tv.tv_usec = (long) ((cf->redis_timeout - tv.tv_sec) * 1e6);
    /* a new context each time: hiredis resolves the name again (getaddrinfo) */
    q->ctx = redisConnectWithTimeout(q->host, q->port, tv);
    if (q->ctx == NULL || q->ctx->err) {
        vh_error("cannot connect to redis %s:%d%s%s%s: %s", q->host, q->port,
                 q->sentinel ? " (named master \"" : "",
                 q->sentinel ? cf->redis_master_name : "",
                 q->sentinel ? "\" by the sentinels)" : "",
                 q->ctx ? q->ctx->errstr : "out of memory");
        goto fail;
    }
    /* every command may wait BLOCK ms on top of the usual timeout */
    t = cf->redis_timeout + cf->block_ms / 1000.0;
    tv.tv_sec = (long) t;
    tv.tv_usec = (long) ((t - tv.tv_sec) * 1e6);
    redisSetTimeout(q->ctx, tv);

    if (cf->redis_password[0]) {
        if (cf->redis_username[0]) {
            r = redisCommand(q->ctx, "AUTH %s %s", cf->redis_username,
                             cf->redis_password);
        } else {
            r = redisCommand(q->ctx, "AUTH %s", cf->redis_password);
        }
        if (reply_is_error(q, r, "AUTH")) {
            if (r) freeReplyObject(r);
            goto fail;
        }
        freeReplyObject(r);
    }
    if (cf->redis_db) {
        r = redisCommand(q->ctx, "SELECT %d", cf->redis_db);
        if (reply_is_error(q, r, "SELECT")) {
            if (r) freeReplyObject(r);
            goto fail;
        }
        freeReplyObject(r);
    }
    /* nothing is read or written before the server says it is the master */
    if (q->sentinel != NULL && queue_check_role(q) != 0) {
        goto fail;
    }

    /* idempotent: on a new master the replicated group answers BUSYGROUP */
    r = redisCommand(q->ctx, "XGROUP CREATE %s %s %s MKSTREAM", cf->stream,
                     cf->group, cf->group_start_id);
    if (r == NULL) {
        reply_is_error(q, r, "XGROUP CREATE");
        goto fail;
    }
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0) {
        reply_is_error(q, r, "XGROUP CREATE");
        freeReplyObject(r);
        goto fail;
    }
    if (r->type != REDIS_REPLY_ERROR) {
        vh_info("created consumer group \"%s\" on stream \"%s\"", cf->group,
                cf->stream);
    }
    freeReplyObject(r);

    if (q->sentinel != NULL) {
        vh_sentinel_confirm(q->sentinel, q->host, q->port);
        vh_info("connected to redis master \"%s\" at %s:%d%s (named by sentinel %s)"
                " as consumer \"%s\"", cf->redis_master_name, q->host, q->port,
                queue_peer(q, peer, sizeof(peer)), vh_sentinel_named_by(q->sentinel),
                cf->consumer);
    } else {
        vh_info("connected to redis %s:%d%s as consumer \"%s\"", q->host, q->port,
                queue_peer(q, peer, sizeof(peer)), cf->consumer);
    }
    q->backoff = 0;
    return 0;

fail:
    queue_drop(q);
    max = q->sentinel != NULL ? 5 : 30;
    q->backoff = q->backoff ? q->backoff * 2 : 0.5;
    if (q->backoff > max) {
        q->backoff = max;
    }
    q->next_connect = vh_now() + q->backoff;
    return -1;
}

vh_queue_t *
vh_queue_new(const vh_conf_t *cf)
{
    vh_queue_t *q = calloc(1, sizeof(*q));

    if (q == NULL) {
        return NULL;
    }
    q->cf = cf;
    strcpy(q->last_id, "$");
    if (cf->nsentinels > 0) {
        q->sentinel = vh_sentinel_new(cf);
        if (q->sentinel == NULL) {
            free(q);
            return NULL;
        }
    }
    return q;
}

void
vh_queue_free(vh_queue_t *q)
{
    if (q != NULL) {
        queue_drop(q);
        vh_sentinel_free(q->sentinel);
        free(q);
    }
}

void
vh_job_clear(vh_job_t *job)
{
    free(job->source);
    free(job->lang);
    free(job->label);
    free(job->is_default);
    free(job->remove);
    memset(job, 0, sizeof(*job));
}

/* a field's value as a string of its own; a NUL inside: malformed */
static void
entry_str(vh_job_t *job, char **field, const redisReply *v)
{
    free(*field);
    *field = vh_strdup(v->str);
    if (*field == NULL || strlen(v->str) != v->len) {
        job->malformed = 1;
    }
}

/* entry = [id, [field, value, ...]]; fields may be nil (entry deleted) */
static int
parse_entry(redisReply *e, vh_job_t *job)
{
    size_t       i;
    redisReply  *f;

    memset(job, 0, sizeof(*job));
    if (e == NULL || e->type != REDIS_REPLY_ARRAY || e->elements < 2
        || e->element[0]->type != REDIS_REPLY_STRING
        || e->element[0]->len >= sizeof(job->id))
    {
        return -1;
    }
    memcpy(job->id, e->element[0]->str, e->element[0]->len);
    job->id[e->element[0]->len] = '\0';

    f = e->element[1];
    if (f->type != REDIS_REPLY_ARRAY) {
        job->malformed = 1;
        return 0;
    }
    for (i = 0; i + 1 < f->elements; i += 2) {
        redisReply *k = f->element[i], *v = f->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
            continue;
        }
        if (!strcmp(k->str, "video_id")) {
            if (v->len <= VH_ID_MAX) {
                memcpy(job->video_id, v->str, v->len);
                job->video_id[v->len] = '\0';
            }
        } else if (!strcmp(k->str, "source")) {
            entry_str(job, &job->source, v);
        } else if (!strcmp(k->str, "kind")) {
            /* no kind (or "video"): a transcode, as before kinds existed */
            job->kind = !strcmp(v->str, "video") ? VH_KIND_VIDEO
                      : !strcmp(v->str, "captions") ? VH_KIND_CAPTIONS
                      : VH_KIND_UNKNOWN;
        } else if (!strcmp(k->str, "lang")) {
            entry_str(job, &job->lang, v);
        } else if (!strcmp(k->str, "label")) {
            entry_str(job, &job->label, v);
        } else if (!strcmp(k->str, "default")) {
            entry_str(job, &job->is_default, v);
        } else if (!strcmp(k->str, "delete")) {
            entry_str(job, &job->remove, v);
        } else if (!strcmp(k->str, "owner")) {
            snprintf(job->owner, sizeof(job->owner), "%.*s", (int) v->len, v->str);
        } else if (!strcmp(k->str, "enqueued_at")) {
            job->enqueued_at = atol(v->str);
        }
    }
    /* a caption job's source may be a removal's marker (vh_caption_job_fields) */
    if (!vh_valid_id(job->video_id) || job->source == NULL
        || job->kind == VH_KIND_UNKNOWN
        || (job->source[0] != '/'
            && (job->kind != VH_KIND_CAPTIONS
                || strncmp(job->source, VH_CAPTION_REMOVE,
                           sizeof(VH_CAPTION_REMOVE) - 1) != 0))
        || (job->remove != NULL && job->kind != VH_KIND_CAPTIONS))
    {
        job->malformed = 1;
    }
    return 0;
}

/* deliveries of one pending entry, and its owner */
static long
pending_info(vh_queue_t *q, const char *id, char *owner, size_t olen)
{
    redisReply  *r, *e;
    long         n = -1;

    r = redisCommand(q->ctx, "XPENDING %s %s %s %s 1", q->cf->stream,
                     q->cf->group, id, id);
    if (reply_is_error(q, r, "XPENDING")) {
        if (r) freeReplyObject(r);
        return -1;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
        e = r->element[0];
        if (e->type == REDIS_REPLY_ARRAY && e->elements == 4) {
            if (owner != NULL) {
                snprintf(owner, olen, "%s", e->element[1]->str);
            }
            n = (long) e->element[3]->integer;
        }
    } else {
        n = 0;                  /* not pending any more */
    }
    freeReplyObject(r);
    return n;
}

static int
take_first(vh_queue_t *q, redisReply *entries, vh_job_t *job, const char *how)
{
    size_t i;

    for (i = 0; i < entries->elements; i++) {
        redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY) {
            continue;               /* Redis 6.2: nil for a deleted entry */
        }
        if (parse_entry(e, job) != 0) {
            continue;
        }
        job->deliveries = pending_info(q, job->id, NULL, 0);
        if (job->deliveries < 1) {
            job->deliveries = 1;
        }
        vh_debug("job %s (%s, owner %s) %s, delivery %ld", job->id,
                 job->video_id, job->owner[0] ? job->owner : "-", how,
                 job->deliveries);
        return 1;
    }
    return 0;
}

/* the script: 1 with a job (reclaimed or this owner's turn), 0, -1 */
static int
queue_fair(vh_queue_t *q, vh_job_t *job)
{
    const vh_conf_t  *cf = q->cf;
    redisReply       *r, *how;
    int               got = 0;
    char              idle[32], ring[512], served[512], seq[512], lanes[512];
    const char       *argv[12];

    snprintf(idle, sizeof(idle), "%ld", (long) (cf->claim_idle * 1000));
    snprintf(ring, sizeof(ring), "%s:lanes", cf->stream);
    snprintf(served, sizeof(served), "%s:served", cf->stream);
    snprintf(seq, sizeof(seq), "%s:served-seq", cf->stream);
    snprintf(lanes, sizeof(lanes), "%s:lane:", cf->stream);
    argv[0] = "EVAL";
    argv[1] = vh_queue_fair_lua;
    argv[2] = "4";
    argv[3] = cf->stream;
    argv[4] = ring;
    argv[5] = served;
    argv[6] = seq;
    argv[7] = cf->group;
    argv[8] = cf->consumer;
    argv[9] = VH_QUEUE_HOLD;
    argv[10] = idle;
    argv[11] = lanes;

    r = redisCommandArgv(q->ctx, 12, argv, NULL);
    if (reply_is_error(q, r, "EVAL (the fair pick)")) {
        if (r) freeReplyObject(r);
        return -1;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2
        || r->element[0]->type != REDIS_REPLY_STRING)
    {
        vh_error("redis EVAL (the fair pick) gave an unexpected reply");
        freeReplyObject(r);
        return -1;
    }
    how = r->element[0];
    if (!strcmp(how->str, "none")) {
        if (r->element[1]->type == REDIS_REPLY_STRING
            && r->element[1]->len < sizeof(q->last_id))
        {
            memcpy(q->last_id, r->element[1]->str, r->element[1]->len);
            q->last_id[r->element[1]->len] = '\0';
        }
        freeReplyObject(r);
        return 0;
    }

    /* take_first reads an array of entries: the reply's is one */
    {
        redisReply   one, *e = r->element[1];
        redisReply  *list[1];

        memset(&one, 0, sizeof(one));
        one.type = REDIS_REPLY_ARRAY;
        one.elements = 1;
        list[0] = e;
        one.element = list;
        got = take_first(q, &one, job, how->str);
    }
    if (got && !strcmp(how->str, "reclaimed")) {
        vh_info("reclaimed job %s (video %s) from a silent consumer, delivery %ld",
                job->id, job->video_id, job->deliveries);
    }
    freeReplyObject(r);
    return got;
}

int
vh_queue_next(vh_queue_t *q, vh_job_t *job)
{
    const vh_conf_t  *cf = q->cf;
    redisReply       *r;
    int               got = 0, arrived;

    if (queue_connect(q) != 0) {
        return -1;
    }

    /* 1. what this consumer name left pending (a restart with a fixed name) */
    if (!q->history_done) {
        r = redisCommand(q->ctx, "XREADGROUP GROUP %s %s COUNT 1 STREAMS %s 0",
                         cf->group, cf->consumer, cf->stream);
        if (reply_is_error(q, r, "XREADGROUP")) {
            if (r) freeReplyObject(r);
            return -1;
        }
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 1
            && r->element[0]->elements == 2
            && r->element[0]->element[1]->elements > 0)
        {
            got = take_first(q, r->element[0]->element[1], job, "resumed");
        }
        freeReplyObject(r);
        if (got) {
            return 1;
        }
        q->history_done = 1;
    }

    /* 2. a silent consumer's job, else the next owner's turn */
    got = queue_fair(q, job);
    if (got != 0) {
        return got;
    }

    /* 3. nothing for us: wait for a new entry, then look again */
    r = redisCommand(q->ctx, "XREAD COUNT 1 BLOCK %d STREAMS %s %s",
                     cf->block_ms, cf->stream, q->last_id);
    if (reply_is_error(q, r, "XREAD")) {
        if (r) freeReplyObject(r);
        return -1;
    }
    arrived = r->type == REDIS_REPLY_ARRAY && r->elements > 0;
    freeReplyObject(r);
    return arrived ? queue_fair(q, job) : 0;
}


/*
 * The job is over: its source no longer counts against its owner's spool
 * quota (the module's vodlms_upload_quota bytes=, a hash
 * <stream>:spool:<owner> of source -> bytes written with the job).
 */
static void
queue_spool_done(vh_queue_t *q, const vh_job_t *job)
{
    redisReply  *r;

    if (job->owner[0] == '\0' || job->source == NULL) {
        return;
    }
    r = redisCommand(q->ctx, "HDEL %s:spool:%s %s", q->cf->stream, job->owner,
                     job->source);
    if (!reply_is_error(q, r, "HDEL (the spool quota)")) {
        freeReplyObject(r);
    } else if (r) {
        freeReplyObject(r);
    }
}

int
vh_queue_ack(vh_queue_t *q, const vh_job_t *job)
{
    redisReply *r;
    int         tries;

    /* the row is already updated: try hard, a lost ACK means a redo */
    for (tries = 0; tries < 5; tries++) {
        if (queue_connect(q) != 0) {
            continue;
        }
        r = redisCommand(q->ctx, "XACK %s %s %s", q->cf->stream, q->cf->group,
                         job->id);
        if (!reply_is_error(q, r, "XACK")) {
            freeReplyObject(r);
            queue_spool_done(q, job);
            return 0;
        }
        if (r) freeReplyObject(r);
    }
    return -1;
}

int
vh_queue_heartbeat(vh_queue_t *q, const vh_job_t *job)
{
    redisReply  *r;
    char         owner[256] = "";
    long         n;

    if (queue_connect(q) != 0) {
        return 0;               /* cannot tell: keep working */
    }
    n = pending_info(q, job->id, owner, sizeof(owner));
    if (n < 0) {
        return 0;
    }
    if (n == 0 || strcmp(owner, q->cf->consumer) != 0) {
        vh_warn("job %s (video %s) is now %s", job->id, job->video_id,
                n == 0 ? "acknowledged by another helper"
                       : "claimed by another helper");
        return 1;
    }
    r = redisCommand(q->ctx, "XCLAIM %s %s %s 0 %s JUSTID", q->cf->stream,
                     q->cf->group, q->cf->consumer, job->id);
    if (!reply_is_error(q, r, "XCLAIM")) {
        freeReplyObject(r);
    } else if (r) {
        freeReplyObject(r);
    }
    return 0;
}

int
vh_queue_redeliver(vh_queue_t *q, vh_job_t *job)
{
    redisReply  *r;
    int          rc = -1;

    if (queue_connect(q) != 0) {
        return -1;
    }
    r = redisCommand(q->ctx, "XCLAIM %s %s %s 0 %s RETRYCOUNT %ld JUSTID",
                     q->cf->stream, q->cf->group, q->cf->consumer, job->id,
                     job->deliveries + 1);
    if (!reply_is_error(q, r, "XCLAIM")) {
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
            job->deliveries++;
            rc = 0;
        }
        freeReplyObject(r);
    } else if (r) {
        freeReplyObject(r);
    }
    return rc;
}
