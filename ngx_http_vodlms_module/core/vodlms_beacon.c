/*
 * Progress beacons: validation and the watch-time arithmetic.
 *
 * Every player sends a beacon every few seconds, so this is the module's
 * busiest parse.  It uses yajl's event parser: no tree of values is built,
 * and the few blocks yajl asks for come from a buffer on the stack, so a
 * beacon costs no malloc.  (jansson did this job before and remains the
 * reference: t/unit/test_core.c and the fuzzer hold this parser to the
 * verdicts json_loadb(JSON_REJECT_DUPLICATES) gave, on every input.)
 *
 * yajl accepts some documents jansson refuses, and each is closed here:
 *  - it checks only the shape of UTF-8; strings and keys are checked
 *    strictly (no overlong forms, surrogates or code points past U+10FFFF);
 *  - it decodes an escaped NUL; strings and keys may not hold one;
 *  - it turns a lone high-surrogate escape into '?' and pairs one with any
 *    \u escape that follows; unpaired surrogate escapes are refused before
 *    yajl runs;
 *  - it also skips \v and \f as whitespace; they are refused likewise;
 *  - it leaves duplicate keys to the caller; they are refused at any depth;
 *  - after the document it ignores an unfinished token ({...} "x or
 *    {...} tru); only whitespace may follow the root object.
 */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "vodlms_core.h"


#define VODLMS_DURATION_MAX  (7.0 * 86400.0)

/*
 * What yajl allocates for a body of VODLMS_BEACON_MAX bytes: its handle and
 * lexer (< 1 KB), a 2 KB decode buffer, and a byte stack that grows 128
 * bytes at a time with the nesting (at most 1024 levels: 8 blocks, 4.5 KB).
 * Anything past the arena still works, from malloc.
 */
#define VODLMS_ARENA_SIZE    16384
#define VODLMS_ARENA_HDR     16

/* a key needs at least 4 bytes ("":0), an open object 4 ({"":) */
#define VODLMS_BEACON_KEYS   (VODLMS_BEACON_MAX / 4 + 1)


typedef struct {
    union {
        long double     align;
        unsigned char   bytes[VODLMS_ARENA_SIZE];
    } mem;
    size_t              used;
} vodlms_arena_t;


/* the top-level members the checks read */
enum {
    VODLMS_BK_VIDEO_ID = 0,
    VODLMS_BK_CURRENT_TIME,
    VODLMS_BK_DURATION,
    VODLMS_BK_EVENT,
    VODLMS_BK_PLAYBACK_ID,
    VODLMS_BK_N,
    VODLMS_BK_OTHER = VODLMS_BK_N
};

typedef enum {
    VODLMS_BV_ABSENT = 0,
    VODLMS_BV_STRING,
    VODLMS_BV_NUMBER,
    VODLMS_BV_OTHER                 /* null, a boolean, an object, an array */
} vodlms_bv_kind_t;

typedef struct {
    vodlms_beacon_t    *b;
    yajl_handle         h;
    size_t              root_end;   /* offset just past the root's '}' */

    size_t              level;      /* open objects and arrays */
    int                 member;     /* the root member being read */

    vodlms_bv_kind_t    kind[VODLMS_BK_N];
    int                 id_ok;      /* videoId is a valid id (copied) */
    int                 pid_ok;     /* playbackId is one (copied) */
    int                 event;      /* a vodlms_beacon_event_t, or -1 */
    double              number[VODLMS_BK_N];

    /* the keys of the objects still open, for the duplicate check */
    size_t              nkeys;
    size_t              nopen;
    size_t              key_used;
    unsigned short      key_off[VODLMS_BEACON_KEYS];
    unsigned short      key_len[VODLMS_BEACON_KEYS];
    unsigned short      open[VODLMS_BEACON_KEYS];
    char                key_bytes[VODLMS_BEACON_MAX];

    char                numeral[VODLMS_BEACON_MAX + 1];
} vodlms_beacon_state_t;


/* the words the checks know: member names and event names */
typedef struct {
    const char         *name;
    size_t              len;
    int                 value;
} vodlms_beacon_word_t;

static const vodlms_beacon_word_t  vodlms_beacon_members[] = {
    { "videoId", 7, VODLMS_BK_VIDEO_ID },
    { "currentTime", 11, VODLMS_BK_CURRENT_TIME },
    { "duration", 8, VODLMS_BK_DURATION },
    { "event", 5, VODLMS_BK_EVENT },
    { "playbackId", 10, VODLMS_BK_PLAYBACK_ID },
    { NULL, 0, 0 }
};

static const vodlms_beacon_word_t  vodlms_beacon_event_words[] = {
    { "tick", 4, VODLMS_BEACON_TICK },
    { "pause", 5, VODLMS_BEACON_PAUSE },
    { "ended", 5, VODLMS_BEACON_ENDED },
    { NULL, 0, 0 }
};


static int
vodlms_beacon_word(const vodlms_beacon_word_t *w, const unsigned char *s,
    size_t len, int none)
{
    for ( /* void */ ; w->name; w++) {
        if (w->len == len && memcmp(w->name, s, len) == 0) {
            return w->value;
        }
    }

    return none;
}


/* ------------------------------------------------- yajl's allocator */

static void *
vodlms_arena_malloc(void *ctx, size_t n)
{
    size_t           need;
    unsigned char   *p;
    vodlms_arena_t  *a = ctx;

    need = VODLMS_ARENA_HDR + ((n + VODLMS_ARENA_HDR - 1)
                               & ~(size_t) (VODLMS_ARENA_HDR - 1));

    if (n > VODLMS_ARENA_SIZE || need > VODLMS_ARENA_SIZE - a->used) {
        return malloc(n);
    }

    p = a->mem.bytes + a->used;
    memcpy(p, &n, sizeof(size_t));
    a->used += need;

    return p + VODLMS_ARENA_HDR;
}


static int
vodlms_arena_owns(vodlms_arena_t *a, void *p)
{
    unsigned char  *c = p;

    return c >= a->mem.bytes && c < a->mem.bytes + VODLMS_ARENA_SIZE;
}


static void
vodlms_arena_free(void *ctx, void *p)
{
    size_t           n;
    unsigned char   *h;
    vodlms_arena_t  *a = ctx;

    if (p == NULL) {
        return;
    }

    if (!vodlms_arena_owns(a, p)) {
        free(p);
        return;
    }

    /* the newest block goes back; the rest goes with the arena */

    h = (unsigned char *) p - VODLMS_ARENA_HDR;
    memcpy(&n, h, sizeof(size_t));

    n = VODLMS_ARENA_HDR + ((n + VODLMS_ARENA_HDR - 1)
                            & ~(size_t) (VODLMS_ARENA_HDR - 1));

    if (h + n == a->mem.bytes + a->used) {
        a->used = (size_t) (h - a->mem.bytes);
    }
}


static void *
vodlms_arena_realloc(void *ctx, void *p, size_t n)
{
    size_t           old;
    void            *q;
    vodlms_arena_t  *a = ctx;

    if (p == NULL) {
        return vodlms_arena_malloc(a, n);
    }

    if (!vodlms_arena_owns(a, p)) {
        return realloc(p, n);
    }

    memcpy(&old, (unsigned char *) p - VODLMS_ARENA_HDR, sizeof(size_t));

    q = vodlms_arena_malloc(a, n);
    if (q == NULL) {
        return NULL;
    }

    memcpy(q, p, old < n ? old : n);
    vodlms_arena_free(a, p);

    return q;
}


/* ------------------------------------------------ what yajl misses */

static int
vodlms_hex4(const char *s, size_t len, unsigned *cp)
{
    size_t  i;
    int     d;

    if (len < 4) {
        return 0;
    }

    *cp = 0;

    for (i = 0; i < 4; i++) {
        d = vodlms_hex_value((unsigned char) s[i]);
        if (d < 0) {
            return 0;
        }

        *cp = (*cp << 4) | (unsigned) d;
    }

    return 1;
}


/*
 * NUL, \v and \f anywhere, and surrogate escapes that are not a high one
 * followed by a low one.  A backslash outside a string makes the document
 * invalid anyway, so pairing backslashes from the left is enough.
 */
static int
vodlms_beacon_prescan(const char *s, size_t len)
{
    size_t    i;
    unsigned  cp, lo;

    for (i = 0; i < len; i++) {

        switch (s[i]) {

        case '\0': case '\v': case '\f':
            return 0;

        case '\\':
            i++;

            if (i == len || s[i] != 'u'
                || !vodlms_hex4(s + i + 1, len - i - 1, &cp))
            {
                break;              /* any other escape: yajl's to judge */
            }

            i += 4;

            if (cp >= 0xdc00 && cp <= 0xdfff) {
                return 0;
            }

            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (len - i < 7 || s[i + 1] != '\\' || s[i + 2] != 'u'
                    || !vodlms_hex4(s + i + 3, len - i - 3, &lo)
                    || lo < 0xdc00 || lo > 0xdfff)
                {
                    return 0;
                }

                i += 6;
            }

            break;
        }
    }

    return 1;
}


/* a string or key as jansson takes them: strict UTF-8 and no NUL */
static int
vodlms_beacon_text_ok(const unsigned char *s, size_t len)
{
    return memchr(s, '\0', len) == NULL
           && vodlms_utf8_valid((const char *) s, len);
}


/* a playbackId: exactly 32 lower-case hex digits */
int
vodlms_playback_id_valid(const char *s, size_t len)
{
    size_t  i;

    if (len != VODLMS_PLAYBACK_ID_LEN) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
    }

    return 1;
}


/* ----------------------------------------------------- yajl's events */

static int
vodlms_beacon_value(vodlms_beacon_state_t *st, vodlms_bv_kind_t kind)
{
    /* the root must be an object */
    if (st->level == 0) {
        return 0;
    }

    /* a member of the root object: note what it holds */
    if (st->level == 1 && st->member != VODLMS_BK_OTHER) {
        st->kind[st->member] = kind;
    }

    return 1;
}


static int
vodlms_beacon_null(void *ctx)
{
    return vodlms_beacon_value(ctx, VODLMS_BV_OTHER);
}


static int
vodlms_beacon_boolean(void *ctx, int v)
{
    (void) v;

    return vodlms_beacon_value(ctx, VODLMS_BV_OTHER);
}


static int
vodlms_beacon_numeric_id(vodlms_beacon_state_t *st, const char *s,
    size_t len)
{
    int         n;
    char        id[24];
    long long   ll;

    memcpy(st->numeral, s, len);
    st->numeral[len] = '\0';

    st->id_ok = 0;

    if (strpbrk(st->numeral, ".eE") == NULL) {
        errno = 0;
        ll = strtoll(st->numeral, NULL, 10);
        if (errno == ERANGE) {
            return 0;               /* as jansson: not JSON it can read */
        }

        n = snprintf(id, sizeof(id), "%lld", ll);

        if (n > 0 && (size_t) n < sizeof(id)
            && vodlms_id_valid(id, (size_t) n, VODLMS_VIDEO_ID_MAX))
        {
            memcpy(st->b->video_id, id, (size_t) n + 1);
            st->b->video_id_len = (size_t) n;
            st->id_ok = 1;
        }

    } else if (isinf(strtod(st->numeral, NULL))) {
        return 0;                   /* as jansson: a real that overflows */
    }

    return vodlms_beacon_value(st, VODLMS_BV_NUMBER);
}


/*
 * A numeral as jansson reads it: an integer (no '.', 'e' or 'E') must fit
 * a long long, and a real must not overflow a double.
 */
static int
vodlms_beacon_number(void *ctx, const char *s, size_t len)
{
    double                  v;
    long long               ll;
    vodlms_beacon_state_t  *st = ctx;

    if (len > VODLMS_BEACON_MAX) {
        return 0;
    }

    /*
     * An LMS with integer ids sends {"videoId": 3}: an integer numeral
     * names the id its value prints as, the way jansson reads it (3 is
     * "3", and "-0" is "0").  A real ("3.0", "3e0") names none:
     * bad_video_id.
     */
    if (st->level == 1 && st->member == VODLMS_BK_VIDEO_ID) {
        return vodlms_beacon_numeric_id(st, s, len);
    }

    /*
     * The usual "120" or "634.5": exact, and inside both limits.  Zero
     * takes the long way: jansson reads "-0" as the integer 0 but "-0.0"
     * as the real -0.0.
     */
    if (vodlms_numeral_fast(s, len, &v) && v != 0) {
        goto done;
    }

    memcpy(st->numeral, s, len);
    st->numeral[len] = '\0';
    errno = 0;

    if (strpbrk(st->numeral, ".eE") == NULL) {
        ll = strtoll(st->numeral, NULL, 10);
        if (errno == ERANGE) {
            return 0;
        }

        v = (double) ll;

    } else {
        v = strtod(st->numeral, NULL);
        if ((v == HUGE_VAL || v == -HUGE_VAL) && errno == ERANGE) {
            return 0;
        }
    }

done:

    if (st->level == 1 && st->member != VODLMS_BK_OTHER) {
        st->number[st->member] = v;
    }

    return vodlms_beacon_value(st, VODLMS_BV_NUMBER);
}


static int
vodlms_beacon_string(void *ctx, const unsigned char *s, size_t len)
{
    vodlms_beacon_state_t  *st = ctx;

    if (!vodlms_beacon_text_ok(s, len)) {
        return 0;
    }

    if (st->level == 1) {

        switch (st->member) {

        case VODLMS_BK_VIDEO_ID:
            st->id_ok = vodlms_id_valid((const char *) s, len,
                                        VODLMS_VIDEO_ID_MAX);
            if (st->id_ok) {
                memcpy(st->b->video_id, s, len);
                st->b->video_id[len] = '\0';
                st->b->video_id_len = len;
            }

            break;

        case VODLMS_BK_EVENT:
            st->event = vodlms_beacon_word(vodlms_beacon_event_words, s, len,
                                           -1);
            break;

        case VODLMS_BK_PLAYBACK_ID:
            st->pid_ok = vodlms_playback_id_valid((const char *) s, len);
            if (st->pid_ok) {
                memcpy(st->b->playback_id, s, len);
                st->b->playback_id[len] = '\0';
                st->b->playback_id_len = len;
            }

            break;
        }
    }

    return vodlms_beacon_value(st, VODLMS_BV_STRING);
}


static int
vodlms_beacon_start_map(void *ctx)
{
    vodlms_beacon_state_t  *st = ctx;

    if (st->nopen == VODLMS_BEACON_KEYS) {
        return 0;
    }

    if (st->level > 0) {
        vodlms_beacon_value(st, VODLMS_BV_OTHER);
    }

    st->open[st->nopen++] = (unsigned short) st->nkeys;
    st->level++;

    return 1;
}


static int
vodlms_beacon_map_key(void *ctx, const unsigned char *s, size_t len)
{
    size_t                  i;
    vodlms_beacon_state_t  *st = ctx;

    if (!vodlms_beacon_text_ok(s, len)
        || st->nkeys == VODLMS_BEACON_KEYS
        || len > VODLMS_BEACON_MAX - st->key_used)
    {
        return 0;
    }

    for (i = st->open[st->nopen - 1]; i < st->nkeys; i++) {
        if (st->key_len[i] == len
            && memcmp(st->key_bytes + st->key_off[i], s, len) == 0)
        {
            return 0;                                   /* a duplicate */
        }
    }

    st->key_off[st->nkeys] = (unsigned short) st->key_used;
    st->key_len[st->nkeys] = (unsigned short) len;
    st->nkeys++;
    memcpy(st->key_bytes + st->key_used, s, len);
    st->key_used += len;

    if (st->level == 1) {
        st->member = vodlms_beacon_word(vodlms_beacon_members, s, len,
                                        VODLMS_BK_OTHER);
    }

    return 1;
}


static int
vodlms_beacon_end_map(void *ctx)
{
    size_t                  first;
    vodlms_beacon_state_t  *st = ctx;

    /* the object's keys go, so a sibling object starts afresh */

    first = st->open[--st->nopen];

    if (first < st->nkeys) {
        st->key_used = st->key_off[first];
        st->nkeys = first;
    }

    st->level--;

    if (st->level == 0) {
        st->root_end = yajl_get_bytes_consumed(st->h);
    }

    return 1;
}


static int
vodlms_beacon_start_array(void *ctx)
{
    vodlms_beacon_state_t  *st = ctx;

    if (!vodlms_beacon_value(st, VODLMS_BV_OTHER)) {
        return 0;
    }

    st->level++;

    return 1;
}


static int
vodlms_beacon_end_array(void *ctx)
{
    vodlms_beacon_state_t  *st = ctx;

    st->level--;

    return 1;
}


static const yajl_callbacks  vodlms_beacon_events = {
    vodlms_beacon_null,
    vodlms_beacon_boolean,
    NULL,                           /* integers and doubles arrive as */
    NULL,                           /* numerals, to vodlms_beacon_number */
    vodlms_beacon_number,
    vodlms_beacon_string,
    vodlms_beacon_start_map,
    vodlms_beacon_map_key,
    vodlms_beacon_end_map,
    vodlms_beacon_start_array,
    vodlms_beacon_end_array
};


static int
vodlms_beacon_json(const char *body, size_t len, vodlms_beacon_state_t *st)
{
    int               ok;
    size_t            i;
    yajl_handle       h;
    vodlms_arena_t    arena;
    yajl_alloc_funcs  af;

    arena.used = 0;
    af.malloc = vodlms_arena_malloc;
    af.realloc = vodlms_arena_realloc;
    af.free = vodlms_arena_free;
    af.ctx = &arena;

    h = yajl_alloc(&vodlms_beacon_events, &af, st);
    if (h == NULL) {
        return 0;
    }

    st->h = h;
    st->root_end = 0;

    ok = yajl_parse(h, (const unsigned char *) body, len) == yajl_status_ok
         && yajl_complete_parse(h) == yajl_status_ok
         && st->root_end > 0;

    yajl_free(h);

    for (i = st->root_end; ok && i < len; i++) {
        ok = (body[i] == ' ' || body[i] == '\t' || body[i] == '\n'
              || body[i] == '\r');
    }

    return ok;
}


/* ------------------------------------------------------- the beacon */

vodlms_rc_t
vodlms_beacon_parse(const char *body, size_t len, double slack,
    vodlms_beacon_t *b, const char **why)
{
    vodlms_beacon_state_t  st;

    memset(b, 0, sizeof(vodlms_beacon_t));

    if (len > VODLMS_BEACON_MAX) {
        *why = "body_too_large";
        return VODLMS_ETOOLONG;
    }

    st.b = b;
    st.level = 0;
    st.member = VODLMS_BK_OTHER;
    st.id_ok = 0;
    st.pid_ok = 0;
    st.event = -1;
    st.nkeys = 0;
    st.nopen = 0;
    st.key_used = 0;
    memset(st.kind, 0, sizeof(st.kind));
    memset(st.number, 0, sizeof(st.number));

    if (len == 0 || !vodlms_beacon_prescan(body, len)
        || !vodlms_beacon_json(body, len, &st))
    {
        memset(b, 0, sizeof(vodlms_beacon_t));
        *why = "malformed_json";
        return VODLMS_EMALFORMED;
    }

    if ((st.kind[VODLMS_BK_VIDEO_ID] != VODLMS_BV_STRING
         && st.kind[VODLMS_BK_VIDEO_ID] != VODLMS_BV_NUMBER)
        || !st.id_ok)
    {
        memset(b, 0, sizeof(vodlms_beacon_t));
        *why = "bad_video_id";
        return VODLMS_EMALFORMED;
    }

    b->duration = st.number[VODLMS_BK_DURATION];

    if (st.kind[VODLMS_BK_DURATION] != VODLMS_BV_NUMBER
        || !isfinite(b->duration)
        || b->duration <= 0 || b->duration > VODLMS_DURATION_MAX)
    {
        *why = "bad_duration";
        return VODLMS_EMALFORMED;
    }

    b->current_time = st.number[VODLMS_BK_CURRENT_TIME];

    if (st.kind[VODLMS_BK_CURRENT_TIME] != VODLMS_BV_NUMBER
        || !isfinite(b->current_time))
    {
        *why = "bad_current_time";
        return VODLMS_EMALFORMED;
    }

    if (b->current_time < 0 || b->current_time > b->duration + slack) {
        *why = "position_out_of_range";
        return VODLMS_EMALFORMED;
    }

    switch (st.kind[VODLMS_BK_EVENT]) {

    case VODLMS_BV_ABSENT:
        b->event = VODLMS_BEACON_TICK;
        break;

    case VODLMS_BV_STRING:
        if (st.event >= 0) {
            b->event = (vodlms_beacon_event_t) st.event;
            break;
        }

        /* fall through */

    default:
        *why = "bad_event";
        return VODLMS_EMALFORMED;
    }

    /* vodlms_streams: which playback this is, when the player says */
    if (st.kind[VODLMS_BK_PLAYBACK_ID] != VODLMS_BV_ABSENT
        && (st.kind[VODLMS_BK_PLAYBACK_ID] != VODLMS_BV_STRING || !st.pid_ok))
    {
        b->playback_id[0] = '\0';
        b->playback_id_len = 0;
        *why = "bad_playback_id";
        return VODLMS_EMALFORMED;
    }

    *why = NULL;

    return VODLMS_OK;
}


/*
 * "ended" short of the database's duration, for coverage: the step to the
 * end, or the player's position and then the rest to the end at the same
 * instant, whichever proves more.  At 2x the run has about the allowance
 * to spare, so the one step to the end can be a jump that would lose what
 * the position proves; and the two steps can lose the last part, which
 * the one step proves as a run of its own from the previous beacon.  Each
 * is a sequence a player could send, held to the wall clock, so the
 * better of them proves no more than the rule allows.
 */

static void
vodlms_progress_ended(vodlms_coverage_t *c, vodlms_coverage_run_t *run,
    const vodlms_beacon_t *b, int64_t now_ms)
{
    size_t                 bytes;
    unsigned char          bits[VODLMS_COVERAGE_BYTES_MAX];
    vodlms_coverage_t      one;
    vodlms_coverage_run_t  one_run;

    bytes = (c->nbits + 7) / 8;

    one = *c;
    one.bits = bits;
    memcpy(bits, c->bits, bytes);
    one_run = *run;

    (void) vodlms_coverage_mark(&one, &one_run, b->duration, now_ms);

    (void) vodlms_coverage_mark(c, run, b->current_time, now_ms);
    (void) vodlms_coverage_mark(c, run, b->duration, now_ms);

    if (vodlms_coverage_covered_ms(&one) > vodlms_coverage_covered_ms(c)) {
        memcpy(c->bits, bits, bytes);
        *run = one_run;
    }
}


void
vodlms_progress_apply(vodlms_progress_t *p, vodlms_coverage_t *c,
    vodlms_coverage_run_t *run, const vodlms_beacon_t *b, int64_t now_ms,
    double complete_fraction)
{
    double  position, moved, wall;

    /* a position past the end (within the slack) is the end */
    position = b->current_time > b->duration ? b->duration : b->current_time;

    if (p->last_beacon_ms > 0 && now_ms > p->last_beacon_ms) {
        moved = position - p->position;
        wall = (double) (now_ms - p->last_beacon_ms) / 1000.0;

        if (moved > 0) {
            p->watched_pending += moved < wall ? moved : wall;
            wall *= VODLMS_PROGRESS_MAX_RATE;
            p->played += moved < wall ? moved : wall;
        }
    }

    p->position = position;

    if (b->duration_known || c == NULL) {
        p->duration = b->duration;
    }

    /* only forward: workers' clocks differ by their cached time */
    if (now_ms > p->last_beacon_ms) {
        p->last_beacon_ms = now_ms;
    }

    if (position > p->max_position) {
        p->max_position = position;
    }

    if (c == NULL || run == NULL) {
        return;
    }

    /*
     * paused since the previous beacon: that wall time proves nothing, and
     * what the run carried from before is the allowance at most, so a seek
     * while paused is a jump as a new run's would be
     */
    if (p->paused && run->active) {
        if (now_ms > run->time) {
            run->time = now_ms;
        }

        if (run->credit > VODLMS_COVERAGE_ALLOWANCE_MS) {
            run->credit = VODLMS_COVERAGE_ALLOWANCE_MS;
        }
    }

    p->paused = (b->event == VODLMS_BEACON_PAUSE);

    /*
     * For coverage, "ended" up to one part (5 s) before the database's
     * duration is the end: a player's end is its playlist's, which the
     * encode may leave a little short of the probed duration, and a clip
     * under 50 s (or any video at fraction 1) needs its last part.  A
     * client gains nothing by it: it may send the duration itself, and
     * the step to it is held to the wall clock all the same.  The
     * position stays the player's.
     */
    if (b->event == VODLMS_BEACON_ENDED && b->duration_known
        && b->current_time < b->duration
        && b->current_time >= b->duration - VODLMS_COVERAGE_RES_MS / 1000.0)
    {
        vodlms_progress_ended(c, run, b, now_ms);

    } else {
        (void) vodlms_coverage_mark(c, run, b->current_time, now_ms);
    }

    if (p->completed_at == 0 && b->duration_known
        && vodlms_coverage_complete(c, complete_fraction))
    {
        p->completed_at = now_ms / 1000;
    }
}
