/*
 * Redis Sentinel: where the master is (redis_sentinels + redis_master_name),
 * after the Sentinel client guidelines
 * (https://redis.io/docs/latest/develop/reference/sentinel-clients/):
 *
 *   - the sentinels are asked in order, SENTINEL get-master-addr-by-name,
 *     each within redis_timeout (connect, then the answer); the first that
 *     names the master moves to the front of the list;
 *   - the caller connects to that address and checks ROLE (queue.c); a
 *     server that is not the master, or answers READONLY, sends the
 *     sentinel that named it to the back (it may not have heard of the
 *     failover yet), and the sentinels are asked again.
 *
 * The helper is its own process, one job at a time: these calls block,
 * bounded by redis_timeout per sentinel, and a stop (SIGTERM) ends the
 * round between two sentinels.  hiredis resolves a host name on every
 * connect (getaddrinfo), so a sentinel or master named by a name that
 * moved is found at its new address.
 */

#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "vodlms_helper.h"

struct vh_sentinel_s {
    const vh_conf_t  *cf;
    int               order[VH_MAX_SENTINELS];   /* indexes into cf->sentinel */
    int               named_by;                  /* who named the last answer, -1 */
    char              master[300];               /* "host:port" last confirmed */
    char              label[300];
};

vh_sentinel_t *
vh_sentinel_new(const vh_conf_t *cf)
{
    vh_sentinel_t  *s = calloc(1, sizeof(*s));
    int             i;

    if (s == NULL) {
        return NULL;
    }
    s->cf = cf;
    for (i = 0; i < cf->nsentinels; i++) {
        s->order[i] = i;
    }
    s->named_by = -1;
    return s;
}

void
vh_sentinel_free(vh_sentinel_t *s)
{
    free(s);
}

static const char *
addr_text(const vh_addr_t *a, char *buf, size_t len)
{
    snprintf(buf, len, strchr(a->host, ':') ? "[%s]:%d" : "%s:%d", a->host, a->port);
    return buf;
}

const char *
vh_sentinel_named_by(vh_sentinel_t *s)
{
    if (s->named_by < 0) {
        return "-";
    }
    return addr_text(&s->cf->sentinel[s->named_by], s->label, sizeof(s->label));
}

/* moves order[from] to position to, shifting the others */
static void
order_move(vh_sentinel_t *s, int from, int to)
{
    int  idx = s->order[from];

    if (from > to) {
        memmove(&s->order[to + 1], &s->order[to], (size_t) (from - to) * sizeof(int));
    } else {
        memmove(&s->order[from], &s->order[from + 1], (size_t) (to - from) * sizeof(int));
    }
    s->order[to] = idx;
}

/* one sentinel's answer: 0 with host and port, or -1 with why */
static int
ask(const vh_conf_t *cf, const vh_addr_t *a, char *host, size_t hlen, int *port,
    char *why, size_t wlen)
{
    redisContext  *ctx;
    redisReply    *r;
    struct timeval tv;
    const char    *argv[3];
    int            rc = -1;

    tv.tv_sec = (long) cf->redis_timeout;
    tv.tv_usec = (long) ((cf->redis_timeout - tv.tv_sec) * 1e6);
    ctx = redisConnectWithTimeout(a->host, a->port, tv);
    if (ctx == NULL || ctx->err) {
        snprintf(why, wlen, "connect failed: %s", ctx ? ctx->errstr : "out of memory");
        goto done;
    }
    redisSetTimeout(ctx, tv);

    if (cf->redis_sentinel_password[0]) {
        if (cf->redis_sentinel_username[0]) {
            r = redisCommand(ctx, "AUTH %s %s", cf->redis_sentinel_username,
                             cf->redis_sentinel_password);
        } else {
            r = redisCommand(ctx, "AUTH %s", cf->redis_sentinel_password);
        }
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            /* the reply names no secret (WRONGPASS ...) */
            snprintf(why, wlen, "rejected AUTH (redis_sentinel_password): %s",
                     r ? r->str : ctx->errstr);
            if (r) freeReplyObject(r);
            goto done;
        }
        freeReplyObject(r);
    }

    argv[0] = "SENTINEL";
    argv[1] = "get-master-addr-by-name";
    argv[2] = cf->redis_master_name;
    r = redisCommandArgv(ctx, 3, argv, NULL);
    if (r == NULL) {
        snprintf(why, wlen, "did not answer: %s", ctx->errstr);
    } else if (r->type == REDIS_REPLY_ERROR) {
        snprintf(why, wlen, "answered %s", r->str);
    } else if (r->type == REDIS_REPLY_NIL) {
        snprintf(why, wlen, "does not know a master \"%s\"", cf->redis_master_name);
    } else if (r->type != REDIS_REPLY_ARRAY || r->elements != 2
               || r->element[0]->type != REDIS_REPLY_STRING
               || r->element[1]->type != REDIS_REPLY_STRING
               || r->element[0]->len == 0 || r->element[0]->len >= hlen
               || atoi(r->element[1]->str) < 1 || atoi(r->element[1]->str) > 65535)
    {
        snprintf(why, wlen, "gave an answer that is not [host, port]");
    } else {
        memcpy(host, r->element[0]->str, r->element[0]->len);
        host[r->element[0]->len] = '\0';
        *port = atoi(r->element[1]->str);
        rc = 0;
    }
    if (r) freeReplyObject(r);

done:
    if (ctx) redisFree(ctx);
    return rc;
}

int
vh_sentinel_master(vh_sentinel_t *s, char *host, size_t hlen, int *port)
{
    const vh_conf_t  *cf = s->cf;
    char              why[512] = "", label[300];
    int               i, idx = -1;

    for (i = 0; i < cf->nsentinels && !vh_stop; i++) {
        idx = s->order[i];
        if (ask(cf, &cf->sentinel[idx], host, hlen, port, why, sizeof(why)) == 0) {
            if (i > 0) {
                order_move(s, i, 0);
            }
            s->named_by = idx;
            vh_debug("redis sentinel %s names master \"%s\" at %s:%d",
                     addr_text(&cf->sentinel[idx], label, sizeof(label)),
                     cf->redis_master_name, host, *port);
            return 0;
        }
        vh_info("redis sentinel %s %s, asking the next sentinel",
                addr_text(&cf->sentinel[idx], label, sizeof(label)), why);
    }
    s->named_by = -1;
    if (idx >= 0 && why[0]) {
        vh_error("redis master \"%s\": no sentinel named it (last: sentinel %s %s)",
                 cf->redis_master_name,
                 addr_text(&cf->sentinel[idx], label, sizeof(label)), why);
    }
    return -1;
}

void
vh_sentinel_distrust(vh_sentinel_t *s)
{
    int  i;

    for (i = 0; i < s->cf->nsentinels; i++) {
        if (s->order[i] == s->named_by) {
            order_move(s, i, s->cf->nsentinels - 1);
            break;
        }
    }
}

void
vh_sentinel_confirm(vh_sentinel_t *s, const char *host, int port)
{
    char  now[300];

    snprintf(now, sizeof(now), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    if (s->master[0] != '\0' && strcmp(s->master, now) != 0) {
        vh_warn("redis master \"%s\" moved: now at %s (was %s), named by sentinel %s",
                s->cf->redis_master_name, now, s->master, vh_sentinel_named_by(s));
    }
    memcpy(s->master, now, sizeof(now));
}
