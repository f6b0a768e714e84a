/*
 * The job queue: a Redis Stream read through a consumer group (hiredis,
 * synchronous: a helper does one job at a time).
 *
 *   new jobs          XREADGROUP GROUP g c COUNT 1 BLOCK ms STREAMS key >
 *   dead consumers    XAUTOCLAIM key g c <claim_idle> <cursor> COUNT 1
 *   our own backlog   XREADGROUP ... STREAMS key 0   (once, at start)
 *   still working     XCLAIM key g c 0 id JUSTID     (resets the idle time)
 *   done              XACK key g id                  (after the videos row)
 */

#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "vodlms_helper.h"

struct vh_queue_s {
    const vh_conf_t  *cf;
    redisContext     *ctx;
    char              cursor[64];       /* XAUTOCLAIM scan position */
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
        return 1;
    }
    return 0;
}

static int
queue_connect(vh_queue_t *q)
{
    const vh_conf_t  *cf = q->cf;
    struct timeval    tv;
    redisReply       *r;
    double            t;

    if (q->ctx != NULL) {
        return 0;
    }
    if (vh_now() < q->next_connect) {
        vh_sleep_interruptible(q->next_connect - vh_now());
        if (vh_stop) {
            return -1;
        }
    }

    tv.tv_sec = (long) cf->redis_timeout;
    tv.tv_usec = (long) ((cf->redis_timeout - tv.tv_sec) * 1e6);
    q->ctx = redisConnectWithTimeout(cf->redis_host, cf->redis_port, tv);
    if (q->ctx == NULL || q->ctx->err) {
        vh_error("cannot connect to redis %s:%d: %s", cf->redis_host,
                 cf->redis_port, q->ctx ? q->ctx->errstr : "out of memory");
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

    vh_info("connected to redis %s:%d as consumer \"%s\"", cf->redis_host,
            cf->redis_port, cf->consumer);
    q->backoff = 0;
    return 0;

fail:
    queue_drop(q);
    q->backoff = q->backoff ? q->backoff * 2 : 0.5;
    if (q->backoff > 30) {
        q->backoff = 30;
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
    strcpy(q->cursor, "0-0");
    return q;
}

void
vh_queue_free(vh_queue_t *q)
{
    if (q != NULL) {
        queue_drop(q);
        free(q);
    }
}

void
vh_job_clear(vh_job_t *job)
{
    free(job->source);
    memset(job, 0, sizeof(*job));
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
            free(job->source);
            job->source = vh_strdup(v->str);
            if (strlen(v->str) != v->len) {
                job->malformed = 1;     /* a NUL inside the path */
            }
        } else if (!strcmp(k->str, "enqueued_at")) {
            job->enqueued_at = atol(v->str);
        }
    }
    if (!vh_valid_id(job->video_id) || job->source == NULL
        || job->source[0] != '/')
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
        vh_debug("job %s (%s) %s, delivery %ld", job->id, job->video_id, how,
                 job->deliveries);
        return 1;
    }
    return 0;
}

int
vh_queue_next(vh_queue_t *q, vh_job_t *job)
{
    const vh_conf_t  *cf = q->cf;
    redisReply       *r;
    int               got = 0;
    char              idle[32];

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

    /* 2. jobs of consumers silent for claim_idle (dead, or waiting to retry) */
    snprintf(idle, sizeof(idle), "%ld", (long) (cf->claim_idle * 1000));
    r = redisCommand(q->ctx, "XAUTOCLAIM %s %s %s %s %s COUNT 1", cf->stream,
                     cf->group, cf->consumer, idle, q->cursor);
    if (reply_is_error(q, r, "XAUTOCLAIM")) {
        if (r) freeReplyObject(r);
        return -1;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2) {
        if (r->element[0]->type == REDIS_REPLY_STRING
            && r->element[0]->len < sizeof(q->cursor))
        {
            memcpy(q->cursor, r->element[0]->str, r->element[0]->len);
            q->cursor[r->element[0]->len] = '\0';
        }
        if (r->element[1]->type == REDIS_REPLY_ARRAY) {
            got = take_first(q, r->element[1], job, "reclaimed");
        }
        if (r->elements >= 3 && r->element[2]->type == REDIS_REPLY_ARRAY
            && r->element[2]->elements > 0)
        {
            vh_warn("%zu pending job(s) deleted from the stream before they were done",
                    r->element[2]->elements);
        }
    }
    freeReplyObject(r);
    if (got) {
        vh_info("reclaimed job %s (video %s) from a silent consumer, delivery %ld",
                job->id, job->video_id, job->deliveries);
        return 1;
    }

    /* 3. new jobs */
    r = redisCommand(q->ctx,
                     "XREADGROUP GROUP %s %s COUNT 1 BLOCK %d STREAMS %s >",
                     cf->group, cf->consumer, cf->block_ms, cf->stream);
    if (reply_is_error(q, r, "XREADGROUP")) {
        if (r) freeReplyObject(r);
        return -1;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1
        && r->element[0]->elements == 2)
    {
        got = take_first(q, r->element[0]->element[1], job, "received");
        job->deliveries = got ? job->deliveries : 0;
    }
    freeReplyObject(r);
    return got;
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
