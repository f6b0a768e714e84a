/*
 * Coverage: which parts of a video a viewer has played, as a bitmap that
 * merges by OR (issue #19).  The rule and its bounds are in vodlms_core.h.
 *
 * Everything is integer milliseconds once the untrusted doubles are
 * checked, so the rule has no rounding and t/unit/oracle_coverage.c can
 * hold it to the exact bit.  OR makes the answer independent of how often
 * and in what order bitmaps arrive: a retried flush, a flush replayed after
 * a crash and several nodes each sending their part give the same bits.
 */

#include <math.h>             /* isnan(), isinf(): macros, no libm */
#include <string.h>

#include "vodlms_core.h"


#define R   ((int64_t) VODLMS_COVERAGE_RES_MS)
#define A   ((int64_t) VODLMS_COVERAGE_ALLOWANCE_MS)
#define C   ((int64_t) VODLMS_COVERAGE_CARRY_MS)


static int
vodlms_coverage_get(const vodlms_coverage_t *c, size_t i)
{
    return (c->bits[i / 8] >> (7 - i % 8)) & 1;
}


static void
vodlms_coverage_set(vodlms_coverage_t *c, size_t i)
{
    c->bits[i / 8] |= (unsigned char) (0x80 >> (i % 8));
}


static unsigned
vodlms_popcount8(unsigned v)
{
    v = v - ((v >> 1) & 0x55);
    v = (v & 0x33) + ((v >> 2) & 0x33);

    return (v + (v >> 4)) & 0x0f;
}


/* seconds to whole ms, half up, for 0 <= s <= 7 days (no libm) */
static int64_t
vodlms_coverage_ms(double s)
{
    return (int64_t) (s * 1000.0 + 0.5);
}


int64_t
vodlms_coverage_duration_ms(double duration)
{
    if (!(duration > 0 && duration <= VODLMS_COVERAGE_DURATION_MAX)) {
        return 0;                                   /* NaN fails too */
    }

    return vodlms_coverage_ms(duration);
}


static size_t
vodlms_coverage_nbits(int64_t duration_ms)
{
    int64_t  n;

    n = (duration_ms + R - 1) / R;

    return n > VODLMS_COVERAGE_BITS_MAX ? VODLMS_COVERAGE_BITS_MAX
                                        : (size_t) n;
}


size_t
vodlms_coverage_size(double duration)
{
    int64_t  ms;

    ms = vodlms_coverage_duration_ms(duration);
    if (ms <= 0) {
        return 0;
    }

    return (vodlms_coverage_nbits(ms) + 7) / 8;
}


vodlms_rc_t
vodlms_coverage_init(vodlms_coverage_t *c, unsigned char *buf, size_t size,
    double duration)
{
    size_t   need;
    int64_t  ms;

    ms = vodlms_coverage_duration_ms(duration);
    if (ms <= 0) {
        return VODLMS_EMALFORMED;
    }

    need = (vodlms_coverage_nbits(ms) + 7) / 8;
    if (size < need) {
        return VODLMS_ETOOLONG;
    }

    memset(buf, 0, need);
    c->bits = buf;
    c->nbits = vodlms_coverage_nbits(ms);
    c->duration_ms = ms;

    return VODLMS_OK;
}


/* where bit i ends: the next bit's start, or the end of the video */
static int64_t
vodlms_coverage_bit_end(const vodlms_coverage_t *c, size_t i)
{
    int64_t  end;

    end = ((int64_t) i + 1) * R;

    return end < c->duration_ms ? end : c->duration_ms;
}


/*
 * Set the bits whose whole span lies in [from, to].  Those wholly before
 * `done` were set by an earlier step of the same run.
 */
static void
vodlms_coverage_fill(vodlms_coverage_t *c, int64_t from, int64_t done,
    int64_t to)
{
    size_t   i;
    int64_t  f;

    f = (from + R - 1) / R;                 /* the first bit starting >= from */
    if (done / R > f) {
        f = done / R;
    }

    if (f >= (int64_t) c->nbits) {
        return;
    }

    for (i = (size_t) f; i < c->nbits; i++) {
        if (vodlms_coverage_bit_end(c, i) > to) {
            break;
        }

        vodlms_coverage_set(c, i);
    }
}


vodlms_coverage_step_e
vodlms_coverage_mark(vodlms_coverage_t *c, vodlms_coverage_run_t *r,
    double position, int64_t now_ms)
{
    size_t   i;
    int64_t  p, dt, w, moved;

    if (isnan(position) || position < 0 || isinf(position) || now_ms < 0) {
        return VODLMS_COVERAGE_INVALID;
    }

    /* a position past the end is the end (no overflow for a huge one) */
    if (position >= (double) c->duration_ms / 1000.0) {
        p = c->duration_ms;

    } else {
        p = vodlms_coverage_ms(position);
        if (p > c->duration_ms) {
            p = c->duration_ms;
        }
    }

    if (!r->active) {
        r->active = 1;
        r->run_start = p;

        /*
         * A run that starts where the played part ends goes on from it:
         * in the first bit (a player's first beacon comes a moment after
         * 0), or in a bit whose predecessor is played (a resume, on this
         * node or another, where the database's bits end), when the
         * beacon is at most A into the bit (players resume at the
         * position they saved, a beacon after it).  Otherwise the bit the
         * resume lands in would be proven by no run, a hole that "the
         * first unwatched part" could never pass.  Only the first beacon
         * of a run state, and at most A of content: never a free bit.
         */
        i = (size_t) (p / R);

        if (i < c->nbits && p - (int64_t) i * R <= A
            && (i == 0 || vodlms_coverage_get(c, i - 1)))
        {
            r->run_start = (int64_t) i * R;
        }

        r->position = p;
        r->time = now_ms;
        r->credit = A;
        return VODLMS_COVERAGE_FIRST;
    }

    /* the wall clock never goes back; one step uses at most STEP_MAX */
    dt = now_ms > r->time ? now_ms - r->time : 0;
    if (dt > VODLMS_COVERAGE_STEP_MAX_MS) {
        dt = VODLMS_COVERAGE_STEP_MAX_MS;
    }

    if (now_ms > r->time) {
        r->time = now_ms;
    }

    w = (int64_t) (VODLMS_PROGRESS_MAX_RATE * (double) dt);
    moved = p - r->position;

    if (moved < 0) {
        r->run_start = p;
        r->position = p;
        r->credit = A;
        return VODLMS_COVERAGE_BACK;
    }

    if (moved <= r->credit + w) {
        r->credit = r->credit + w - moved;
        if (r->credit > C) {
            r->credit = C;
        }

        vodlms_coverage_fill(c, r->run_start, r->position, p);
        r->position = p;
        return VODLMS_COVERAGE_CONTINUED;
    }

    if (moved <= A + w) {
        r->credit = A + w - moved;
        if (r->credit > C) {
            r->credit = C;
        }

        r->run_start = r->position;
        vodlms_coverage_fill(c, r->run_start, r->run_start, p);
        r->position = p;
        return VODLMS_COVERAGE_RESTARTED;
    }

    r->run_start = p;
    r->position = p;
    r->credit = A;

    return VODLMS_COVERAGE_JUMPED;
}


size_t
vodlms_coverage_or(vodlms_coverage_t *dst, const vodlms_coverage_t *src)
{
    size_t         i, dbytes, sbytes, dropped;
    unsigned char  keep, v;

    dbytes = (dst->nbits + 7) / 8;
    sbytes = (src->nbits + 7) / 8;
    dropped = 0;

    /* the bits of dst's last byte that lie inside dst */
    keep = (unsigned char) (0xff << ((8 - dst->nbits % 8) % 8));

    for (i = 0; i < sbytes; i++) {
        v = src->bits[i];

        if (i + 1 < dbytes) {
            dst->bits[i] |= v;

        } else if (i + 1 == dbytes) {
            dst->bits[i] |= v & keep;
            dropped += vodlms_popcount8(v & (unsigned char) ~keep);

        } else {
            dropped += vodlms_popcount8(v);
        }
    }

    return dropped;
}


int64_t
vodlms_coverage_covered_ms(const vodlms_coverage_t *c)
{
    size_t   i, n;
    int64_t  ms;

    n = 0;

    for (i = 0; i < (c->nbits + 7) / 8; i++) {
        n += vodlms_popcount8(c->bits[i]);
    }

    ms = (int64_t) n * R;

    /* the last bit may be shorter */
    if (c->nbits > 0 && vodlms_coverage_get(c, c->nbits - 1)) {
        ms -= R - (vodlms_coverage_bit_end(c, c->nbits - 1)
                   - (int64_t) (c->nbits - 1) * R);
    }

    return ms;
}


double
vodlms_coverage_fraction(const vodlms_coverage_t *c)
{
    return (double) vodlms_coverage_covered_ms(c) / (double) c->duration_ms;
}


int64_t
vodlms_coverage_fraction_micro(double fraction)
{
    if (!(fraction > 0)) {
        return 0;                                   /* NaN fails too */
    }

    if (fraction >= 1) {
        return 1000000;
    }

    return (int64_t) (fraction * 1000000.0 + 0.5);
}


int
vodlms_coverage_complete(const vodlms_coverage_t *c, double fraction)
{
    int64_t  micro;

    micro = vodlms_coverage_fraction_micro(fraction);

    if (micro <= 0 || c->nbits == 0 || c->duration_ms <= 0) {
        return 0;
    }

    /* at most 6.1e8 ms x 1e6: no overflow in 64 bits */
    return vodlms_coverage_covered_ms(c) * 1000000 >= micro * c->duration_ms;
}


int64_t
vodlms_coverage_first_unwatched_ms(const vodlms_coverage_t *c)
{
    size_t  i;

    for (i = 0; i < c->nbits; i++) {
        if (i % 8 == 0 && c->bits[i / 8] == 0xff && i + 8 <= c->nbits) {
            i += 7;
            continue;
        }

        if (!vodlms_coverage_get(c, i)) {
            return (int64_t) i * R;
        }
    }

    if (c->nbits == 0) {
        return 0;                   /* not made by init: nothing tracked */
    }

    return vodlms_coverage_bit_end(c, c->nbits - 1);
}


size_t
vodlms_coverage_hex(const vodlms_coverage_t *c, char *out, size_t size)
{
    size_t       i, n;
    unsigned     v;
    static const char  digits[] = "0123456789abcdef";

    n = (c->nbits + 3) / 4;

    if (size < 1 + n) {
        return 0;
    }

    out[0] = 'x';

    for (i = 0; i < n; i++) {
        v = c->bits[i / 2];
        out[1 + i] = digits[i % 2 ? v & 0x0f : v >> 4];
    }

    return 1 + n;
}


vodlms_rc_t
vodlms_coverage_parse(vodlms_coverage_t *c, const char *s, size_t len,
    size_t *dropped)
{
    int            hex, d, k, width;
    size_t         i, bit, nbits;
    unsigned char  b;

    *dropped = 0;
    hex = 0;

    if (len > 0 && (s[0] == 'x' || s[0] == 'X')) {
        hex = 1;
        s++;
        len--;

    } else if (len > 0 && (s[0] == 'b' || s[0] == 'B')) {
        s++;
        len--;
    }

    /* check everything first: a bad string changes nothing */
    nbits = hex ? 4 * len : len;
    if (len > VODLMS_COVERAGE_BITS_MAX || nbits > VODLMS_COVERAGE_BITS_MAX) {
        return VODLMS_ETOOLONG;
    }

    for (i = 0; i < len; i++) {
        b = (unsigned char) s[i];

        if (hex ? vodlms_hex_value(b) < 0 : (b != '0' && b != '1')) {
            return VODLMS_EMALFORMED;
        }
    }

    /* a character is `width` bits, the first one its highest */
    width = hex ? 4 : 1;

    for (i = 0; i < len; i++) {
        d = hex ? vodlms_hex_value((unsigned char) s[i]) : s[i] - '0';

        for (k = 0; k < width; k++) {
            if (!((d >> (width - 1 - k)) & 1)) {
                continue;
            }

            bit = i * width + k;

            if (bit < c->nbits) {
                vodlms_coverage_set(c, bit);

            } else {
                (*dropped)++;
            }
        }
    }

    return VODLMS_OK;
}
