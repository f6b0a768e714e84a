/*
 * Unit tests of the coverage bitmap (core/vodlms_coverage.c): TAP on
 * stdout.  Viewers and attackers as the module would see their beacons,
 * each answer also held to t/unit/oracle_coverage.c.
 */

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vodlms_core.h"
#include "tap.h"
#include "helpers.h"
#include "oracle_coverage.h"


#define SEC  1000                       /* ms */


/* a small deterministic generator: the same sequences on every run */
static uint64_t  rng_state = 0x9e3779b97f4a7c15ULL;

static uint32_t
rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;

    return (uint32_t) (rng_state >> 16);
}


/* a uniform integer in [lo, hi] */
static int64_t
rng_in(int64_t lo, int64_t hi)
{
    return lo + (int64_t) (rng() % (uint32_t) (hi - lo + 1));
}


typedef struct {
    double   position;
    int64_t  now;
} beacon_t;


/*
 * A real viewer: playing from `from` at `speed`, a tick every 10-15 s of
 * its own clock, each reaching the server after 50-600 ms, one in twenty
 * 1.5 s later still; the last one at the end.  Returns the count.
 */
static size_t
viewer(beacon_t *out, size_t max, double speed, double from, double to,
    int64_t start)
{
    size_t   n;
    double   pos;
    int64_t  client;

    n = 0;
    pos = from;
    client = 0;

    while (n < max) {
        out[n].position = pos;
        out[n].now = start + client + rng_in(50, 600)
                     + (rng() % 20 == 0 ? 1500 : 0);
        n++;

        if (pos >= to) {
            break;
        }

        client += rng_in(10 * SEC, 15 * SEC);
        pos = from + speed * client / 1000.0;
        if (pos > to) {
            /* the "ended" beacon, when playback reached the end */
            client -= (int64_t) ((pos - to) / speed * 1000.0);
            pos = to;
        }
    }

    return n;
}


/* send beacons to a bitmap and to the oracle; 1 if every step agreed */
static int
feed(vodlms_coverage_t *c, vodlms_coverage_run_t *r, oracle_coverage_t *o,
    const beacon_t *b, size_t n)
{
    size_t  i;
    int     agree;

    agree = 1;

    for (i = 0; i < n; i++) {
        if (vodlms_coverage_mark(c, r, b[i].position, b[i].now)
            != oracle_coverage_beacon(o, (int64_t) (b[i].position * 1000.0
                                                    + 0.5), b[i].now))
        {
            agree = 0;
        }
    }

    return agree;
}


static int
same_as_oracle(const vodlms_coverage_t *c, const oracle_coverage_t *o)
{
    size_t          i;
    int             same;
    unsigned char  *f;

    f = oracle_coverage_flags(o);
    same = 1;

    for (i = 0; i < c->nbits; i++) {
        if (((c->bits[i / 8] >> (7 - i % 8)) & 1) != f[i]) {
            same = 0;
        }
    }

    free(f);

    return same;
}


static int
bit(const vodlms_coverage_t *c, size_t i)
{
    return (c->bits[i / 8] >> (7 - i % 8)) & 1;
}


/* ---------------------------------------------------------------- sizes */

static void
test_size(void)
{
    unsigned char      buf[VODLMS_COVERAGE_BYTES_MAX];
    vodlms_coverage_t  c, keep;

    is_int(vodlms_coverage_size(5), 1, "size: 5 s is one bit, one byte");
    is_int(vodlms_coverage_size(40), 1, "size: 40 s is 8 bits");
    is_int(vodlms_coverage_size(40.001), 2, "size: 40.001 s is 9 bits");
    is_int(vodlms_coverage_size(3 * 3600), 270, "size: 3 hours, 270 bytes");
    is_int(vodlms_coverage_size(6 * 3600), 540, "size: 6 hours, 540 bytes");
    is_int(vodlms_coverage_size(24 * 3600), VODLMS_COVERAGE_BYTES_MAX,
           "size: 24 hours, the most");
    is_int(vodlms_coverage_size(30 * 3600), VODLMS_COVERAGE_BYTES_MAX,
           "size: 30 hours is capped at 24");
    is_int(vodlms_coverage_size(7 * 86400), VODLMS_COVERAGE_BYTES_MAX,
           "size: 7 days, the beacon's longest, capped");
    is_int(vodlms_coverage_size(7 * 86400 + 1), 0, "size: over 7 days: no");
    is_int(vodlms_coverage_size(0), 0, "size: 0 s: no");
    is_int(vodlms_coverage_size(0.0004), 0, "size: under a ms: no");
    is_int(vodlms_coverage_size(-5), 0, "size: negative: no");
    is_int(vodlms_coverage_size(NAN), 0, "size: NaN: no");
    is_int(vodlms_coverage_size(INFINITY), 0, "size: inf: no");
    is_int(vodlms_coverage_size(1e300), 0, "size: 1e300: no");

    memset(&keep, 0x5a, sizeof(keep));
    c = keep;
    is_rc(vodlms_coverage_init(&c, buf, 2, 80.5), VODLMS_ETOOLONG,
          "init: a buffer too small for 17 bits");
    is_rc(vodlms_coverage_init(&c, buf, sizeof(buf), NAN), VODLMS_EMALFORMED,
          "init: NaN duration");
    ok(memcmp(&c, &keep, sizeof(c)) == 0, "init: refused, *c untouched");

    memset(buf, 0xff, sizeof(buf));
    is_rc(vodlms_coverage_init(&c, buf, 3, 80.5), VODLMS_OK, "init: 80.5 s");
    ok(c.nbits == 17 && c.duration_ms == 80500 && buf[0] == 0 && buf[2] == 0
       && buf[3] == 0xff, "init: 17 bits in 3 zeroed bytes, no more");
    ok(vodlms_coverage_covered_ms(&c) == 0
       && vodlms_coverage_first_unwatched_ms(&c) == 0
       && vodlms_coverage_fraction(&c) == 0, "init: nothing watched");

    /* a bitmap not made by init, with no bits, answers without reading */
    c.nbits = 0;
    ok(vodlms_coverage_covered_ms(&c) == 0
       && vodlms_coverage_first_unwatched_ms(&c) == 0,
       "no bits: nothing covered, nothing to seek to");
}


/* --------------------------------------------------------- real viewers */

static void
test_viewers(void)
{
    int                    k, s, fails;
    size_t                 n, i;
    double                 frac, low;
    beacon_t               b[600];
    unsigned char          buf[VODLMS_COVERAGE_BYTES_MAX];
    vodlms_coverage_t      c;
    oracle_coverage_t      o;
    vodlms_coverage_run_t  r;
    static const double    speeds[] = { 1.0, 1.25, 1.5, 1.75, 2.0 };

    /* each speed, twenty viewers with their own ticks and jitter */
    for (s = 0; s < 5; s++) {
        low = 1;

        for (k = 0; k < 20; k++) {
            vodlms_coverage_init(&c, buf, sizeof(buf), 1800);
            oracle_coverage_init(&o, 1800000);
            memset(&r, 0, sizeof(r));

            n = viewer(b, 600, speeds[s], 0, 1800, 1764900000000);
            ok(feed(&c, &r, &o, b, n) && same_as_oracle(&c, &o),
               "viewer at %gx (%d): the oracle agrees", speeds[s], k);

            frac = vodlms_coverage_fraction(&c);
            if (frac < low) {
                low = frac;
            }

            oracle_coverage_free(&o);
        }

        ok(low >= 0.9, "viewers at %gx complete: the lowest coverage of 20 "
           "is %.4f", speeds[s], low);

        if (speeds[s] <= 1.5) {
            ok(low == 1, "viewers at %gx: every second, whatever the "
               "jitter", speeds[s]);
        }
    }

    /*
     * Many more at exactly 2x, the speed players offer: twenty viewers
     * are too few to meet the beacon that comes 1.5 s late and the
     * on-time one after it, at the wrong moment, often enough.  With a
     * credit that carried only the 2 s allowance, such a pair was a jump
     * and lost the whole step (20-30 s of content): 35 of these 500
     * viewers fell under 90%, the lowest at 85.6%.
     */
    fails = 0;
    low = 1;

    for (k = 0; k < 500; k++) {
        vodlms_coverage_init(&c, buf, sizeof(buf), 1800);
        memset(&r, 0, sizeof(r));

        n = viewer(b, 600, 2.0, 0, 1800, 1764900000000);
        for (i = 0; i < n; i++) {
            vodlms_coverage_mark(&c, &r, b[i].position, b[i].now);
        }

        fails += !vodlms_coverage_complete(&c, 0.9);

        frac = vodlms_coverage_fraction(&c);
        if (frac < low) {
            low = frac;
        }
    }

    ok(fails == 0, "500 viewers at 2x, late beacons and all: every one "
       "completes (%d do not; the lowest coverage is %.4f)", fails, low);

    /* a viewer at 3x is watching too fast to be credited in full */
    vodlms_coverage_init(&c, buf, sizeof(buf), 1800);
    memset(&r, 0, sizeof(r));
    n = viewer(b, 600, 3.0, 0, 1800, 1000000);
    for (k = 0; k < (int) n; k++) {
        vodlms_coverage_mark(&c, &r, b[k].position, b[k].now);
    }
    ok(vodlms_coverage_fraction(&c) < 0.9, "a viewer at 3x does not complete "
       "(%.4f)", vodlms_coverage_fraction(&c));

    /* a pause: the run goes on after it */
    vodlms_coverage_init(&c, buf, sizeof(buf), 100);
    memset(&r, 0, sizeof(r));
    vodlms_coverage_mark(&c, &r, 0, 1000);
    vodlms_coverage_mark(&c, &r, 12, 13000);
    vodlms_coverage_mark(&c, &r, 12.5, 13500);               /* pause */
    is_int(vodlms_coverage_mark(&c, &r, 27.5, 3600000), VODLMS_COVERAGE_CONTINUED,
           "pause: play an hour later goes on");
    is_int(vodlms_coverage_covered_ms(&c), 25 * SEC,
           "pause: 0-27.5 s played, 5 whole bits");
}


/* -------------------------------------------------------------- attacks */

static void
test_attacks(void)
{
    int                    k, steps, wall;
    int64_t                t;
    unsigned char          buf[VODLMS_COVERAGE_BYTES_MAX];
    vodlms_coverage_t      c;
    oracle_coverage_t      o;
    vodlms_coverage_run_t  r;
    beacon_t               b[1000];

    /* the step attack of issue #19: +29 s every 6 ms to the end */
    vodlms_coverage_init(&c, buf, sizeof(buf), 1800);
    oracle_coverage_init(&o, 1800000);
    memset(&r, 0, sizeof(r));

    for (k = 0; k <= 63; k++) {
        b[k].position = k * 29 > 1800 ? 1800 : k * 29;
        b[k].now = 7000000 + k * 6;
    }

    ok(feed(&c, &r, &o, b, 64) && same_as_oracle(&c, &o),
       "step attack: the oracle agrees");
    is_int(vodlms_coverage_covered_ms(&c), 0,
           "step attack: 57 steps of +29 s in 0.34 s cover nothing");
    is_int(vodlms_coverage_first_unwatched_ms(&c), 0,
           "step attack: the first unwatched second is still 0");
    oracle_coverage_free(&o);

    /* steps within the allowance, as fast as they can be sent */
    vodlms_coverage_init(&c, buf, sizeof(buf), 1800);
    memset(&r, 0, sizeof(r));

    for (k = 0; k <= 900; k++) {
        vodlms_coverage_mark(&c, &r, k * 2.0, 7000000 + k);
    }

    is_int(vodlms_coverage_covered_ms(&c), 0,
           "allowance attack: 900 steps of +2 s 1 ms apart cover nothing");

    /*
     * The cheapest coverage there is: one bit per step, in the least wall
     * time a step needs, (R - A) / 2 = 1.5 s.  450 s of wall time (a
     * "4x viewer") buys at most 3.33 x 450 = 1500 s: 83%, not 90%.
     */
    for (steps = 1; steps <= 3; steps++) {
        vodlms_coverage_init(&c, buf, sizeof(buf), 1800);
        memset(&r, 0, sizeof(r));
        t = 5000000;
        vodlms_coverage_mark(&c, &r, 0, t);
        wall = 0;

        for (k = 1; wall + 1500 * steps <= 450000 - 1500 * (steps - 1); k++) {
            wall += (5000 * steps - 2000) / 2;
            vodlms_coverage_mark(&c, &r, k * 5.0 * steps, t + wall);
        }

        ok(vodlms_coverage_fraction(&c) < 0.9
           && vodlms_coverage_covered_ms(&c) * 3 <= 10 * 450000,
           "best attack, %d bit(s) a step, 450 s of wall time: %.4f covered",
           steps, vodlms_coverage_fraction(&c));
    }

    /* what the first beacon claims is never coverage of its own */
    vodlms_coverage_init(&c, buf, sizeof(buf), 1800);
    memset(&r, 0, sizeof(r));
    is_int(vodlms_coverage_mark(&c, &r, 1799, 1000), VODLMS_COVERAGE_FIRST,
           "first beacon: starts a run");
    is_int(vodlms_coverage_covered_ms(&c), 0, "first beacon: marks nothing");

    /*
     * A first beacon at most A into the first part, or into the part after
     * played ones (a resume), runs from that part's start; further in, it
     * does not: 4.999 s then 6.9 s a moment later proves nothing.
     */
    vodlms_coverage_init(&c, buf, sizeof(buf), 1800);
    memset(&r, 0, sizeof(r));
    vodlms_coverage_mark(&c, &r, 4.999, 1000);
    vodlms_coverage_mark(&c, &r, 6.9, 1000);
    is_int(vodlms_coverage_covered_ms(&c), 0,
           "a first beacon 4.999 s into the first part: no part for free");

    vodlms_coverage_init(&c, buf, sizeof(buf), 1800);
    memset(&r, 0, sizeof(r));
    vodlms_coverage_mark(&c, &r, 2, 1000);
    vodlms_coverage_mark(&c, &r, 5, 2500);
    is_int(vodlms_coverage_covered_ms(&c), 5 * SEC,
           "a first beacon 2 s into the first part, then 3 s in 1.5 s: "
           "the part from 0");

    {
        size_t  dropped;

        vodlms_coverage_init(&c, buf, sizeof(buf), 1800);
        memset(&r, 0, sizeof(r));
        (void) vodlms_coverage_parse(&c, "xff", 3, &dropped);   /* 0-40 s */
        vodlms_coverage_mark(&c, &r, 41.5, 1000);
        vodlms_coverage_mark(&c, &r, 45, 3000);
        is_int(vodlms_coverage_covered_ms(&c), 45 * SEC,
               "a resume 1.5 s after the played part: its part from 40 s");

        vodlms_coverage_init(&c, buf, sizeof(buf), 1800);
        memset(&r, 0, sizeof(r));
        (void) vodlms_coverage_parse(&c, "xff", 3, &dropped);
        vodlms_coverage_mark(&c, &r, 42.5, 1000);
        vodlms_coverage_mark(&c, &r, 45, 3000);
        is_int(vodlms_coverage_covered_ms(&c), 40 * SEC,
               "a resume 2.5 s after the played part: not back-filled");
    }

    /*
     * A pause, then a seek far ahead: the minute a step may use keeps the
     * pause from paying for the skipped part.
     */
    vodlms_coverage_init(&c, buf, sizeof(buf), 7200);
    memset(&r, 0, sizeof(r));
    vodlms_coverage_mark(&c, &r, 0, 1000);
    vodlms_coverage_mark(&c, &r, 15, 16000);
    vodlms_coverage_mark(&c, &r, 20, 21000);                 /* pause */
    is_int(vodlms_coverage_mark(&c, &r, 3620, 3621000), VODLMS_COVERAGE_JUMPED,
           "pause an hour, seek an hour ahead: a jump");
    vodlms_coverage_mark(&c, &r, 3635, 3636000);
    is_int(vodlms_coverage_covered_ms(&c), 20 * SEC + 15 * SEC,
           "pause and seek: 0-20 s and 3620-3635 s, nothing between");
}


/* ------------------------------------------------------- seeks, rewinds */

static void
test_seeks(void)
{
    int                    k;
    unsigned char          buf[VODLMS_COVERAGE_BYTES_MAX];
    vodlms_coverage_t      c;
    vodlms_coverage_run_t  r;

    /* watch 0-300, seek to 902 (the next tick at 917), watch to 1202 */
    vodlms_coverage_init(&c, buf, sizeof(buf), 1800);
    memset(&r, 0, sizeof(r));

    for (k = 0; k <= 20; k++) {
        vodlms_coverage_mark(&c, &r, k * 15, 1000 + k * 15000);
    }

    is_int(vodlms_coverage_mark(&c, &r, 917, 1000 + 21 * 15000),
           VODLMS_COVERAGE_JUMPED, "seek: 615 s in 15 s is a jump");

    for (k = 1; k <= 19; k++) {
        vodlms_coverage_mark(&c, &r, 917 + k * 15, 1000 + (21 + k) * 15000);
    }

    is_int(vodlms_coverage_covered_ms(&c), 300 * SEC + 280 * SEC,
           "seek: 0-300 and 920-1200 covered (917-920 is part of a bit), "
           "the skipped part not");
    ok(bit(&c, 59) && !bit(&c, 60) && !bit(&c, 182) && !bit(&c, 183)
       && bit(&c, 184) && bit(&c, 239) && !bit(&c, 240),
       "seek: the bits at the edges");
    is_int(vodlms_coverage_first_unwatched_ms(&c), 300 * SEC,
           "seek: the first unwatched part starts at 300 s");

    /* back to 100 and watch to 400: only 300-400 is new */
    is_int(vodlms_coverage_mark(&c, &r, 100, 1000 + 41 * 15000),
           VODLMS_COVERAGE_BACK, "rewind: backwards");

    for (k = 1; k <= 20; k++) {
        vodlms_coverage_mark(&c, &r, 100 + k * 15, 1000 + (41 + k) * 15000);
    }

    is_int(vodlms_coverage_covered_ms(&c), 400 * SEC + 280 * SEC,
           "rewind: watching again adds only what was not watched");
    is_int(vodlms_coverage_first_unwatched_ms(&c), 400 * SEC,
           "rewind: the first unwatched part moves to 400 s");

    /* a jitter too large for one step costs one bit, not the step */
    vodlms_coverage_init(&c, buf, sizeof(buf), 100);
    memset(&r, 0, sizeof(r));
    vodlms_coverage_mark(&c, &r, 0, 0);
    vodlms_coverage_mark(&c, &r, 24, 12000);                 /* 2x, late */
    is_int(vodlms_coverage_mark(&c, &r, 48, 23000), VODLMS_COVERAGE_CONTINUED,
           "2x: a beacon 1 s early, within the allowance");
    is_int(vodlms_coverage_mark(&c, &r, 72, 34000), VODLMS_COVERAGE_RESTARTED,
           "2x: the next one 1 s early too: a new run from 48 s");
    is_int(vodlms_coverage_covered_ms(&c), 45 * SEC + 20 * SEC,
           "2x: 0-45 and 50-70: only the bit across 48 s is lost");

    /* the end: the last bit is shorter, and counted as long as it is */
    vodlms_coverage_init(&c, buf, sizeof(buf), 12.5);
    memset(&r, 0, sizeof(r));
    vodlms_coverage_mark(&c, &r, 0, 0);
    vodlms_coverage_mark(&c, &r, 10, 10000);
    is_int(vodlms_coverage_first_unwatched_ms(&c), 10 * SEC,
           "end: 10 of 12.5 s, the last bit not yet");
    vodlms_coverage_mark(&c, &r, 12.5, 12500);
    ok(vodlms_coverage_covered_ms(&c) == 12500
       && vodlms_coverage_fraction(&c) == 1.0
       && vodlms_coverage_first_unwatched_ms(&c) == 12500,
       "end: all 12.5 s, fraction 1, nothing unwatched");

    /* past the end is the end */
    vodlms_coverage_init(&c, buf, sizeof(buf), 12.5);
    memset(&r, 0, sizeof(r));
    vodlms_coverage_mark(&c, &r, 0, 0);
    vodlms_coverage_mark(&c, &r, 14, 13000);
    is_int(vodlms_coverage_covered_ms(&c), 12500, "end: 14 s of 12.5 is all");

    /* longer than 24 h: the first 24 h tracked, the fraction of it all */
    vodlms_coverage_init(&c, buf, sizeof(buf), 30 * 3600);
    memset(&r, 0, sizeof(r));
    for (k = 0; k <= 30 * 3600 / 15; k++) {
        vodlms_coverage_mark(&c, &r, k * 15, k * 15000);
    }
    ok(c.nbits == VODLMS_COVERAGE_BITS_MAX
       && vodlms_coverage_covered_ms(&c) == 24 * 3600 * SEC
       && vodlms_coverage_fraction(&c) == 0.8
       && vodlms_coverage_first_unwatched_ms(&c) == 24 * 3600 * SEC,
       "30 hours watched: 24 tracked, fraction 0.8 (%g)",
       vodlms_coverage_fraction(&c));
}


/* --------------------------------------------------------- bad numbers */

static void
test_untrusted(void)
{
    int                    i;
    unsigned char          buf[VODLMS_COVERAGE_BYTES_MAX], before[3];
    vodlms_coverage_t      c;
    vodlms_coverage_run_t  r, keep;
    static const double    bad[] = { NAN, -NAN, INFINITY, -INFINITY, -1e-9,
                                     -1, -1e300 };

    vodlms_coverage_init(&c, buf, sizeof(buf), 800);
    memset(&r, 0, sizeof(r));
    vodlms_coverage_mark(&c, &r, 0, 1000);
    vodlms_coverage_mark(&c, &r, 20, 21000);
    memcpy(before, buf, sizeof(before));
    keep = r;

    for (i = 0; i < (int) (sizeof(bad) / sizeof(bad[0])); i++) {
        is_int(vodlms_coverage_mark(&c, &r, bad[i], 22000),
               VODLMS_COVERAGE_INVALID, "untrusted: position %g refused",
               bad[i]);
    }

    is_int(vodlms_coverage_mark(&c, &r, 25, -1), VODLMS_COVERAGE_INVALID,
           "untrusted: a negative clock refused");
    is_int(vodlms_coverage_mark(&c, &r, 25, INT64_MIN),
           VODLMS_COVERAGE_INVALID, "untrusted: INT64_MIN refused");
    ok(memcmp(before, buf, sizeof(before)) == 0
       && memcmp(&keep, &r, sizeof(r)) == 0,
       "untrusted: refused beacons changed nothing");

    /*
     * -0 is 0; a huge position is the end (800 s); a huge clock does not
     * overflow, and a step still uses a minute of it at most
     */
    is_int(vodlms_coverage_mark(&c, &r, -0.0, 22000), VODLMS_COVERAGE_BACK,
           "untrusted: -0 is position 0");
    is_int(vodlms_coverage_mark(&c, &r, 1e300, INT64_MAX),
           VODLMS_COVERAGE_JUMPED,
           "untrusted: 1e300 at INT64_MAX is the end, too far for a minute");
    is_int(vodlms_coverage_mark(&c, &r, 1.7976931348623157e308, INT64_MAX),
           VODLMS_COVERAGE_CONTINUED, "untrusted: DBL_MAX at the same time");
    is_int(vodlms_coverage_covered_ms(&c), 20 * SEC,
           "untrusted: still the 20 s played");

    /* the clock going back counts as no time */
    vodlms_coverage_init(&c, buf, sizeof(buf), 80);
    memset(&r, 0, sizeof(r));
    vodlms_coverage_mark(&c, &r, 0, 100000);
    is_int(vodlms_coverage_mark(&c, &r, 10, 90000), VODLMS_COVERAGE_JUMPED,
           "clock back: 10 s in no time is a jump");
    is_int(vodlms_coverage_mark(&c, &r, 20, 105000), VODLMS_COVERAGE_CONTINUED,
           "clock back: then 10 s in 5 s from the latest clock");
    is_int(vodlms_coverage_covered_ms(&c), 10 * SEC,
           "clock back: only 10-20 s proven");
}


/* -------------------------------------------------------- nodes, merges */

static void
test_merge(void)
{
    int                    k, s;
    size_t                 n, i;
    beacon_t               b[600], half[2][600];
    size_t                 nh[2];
    unsigned char          buf[4][VODLMS_COVERAGE_BYTES_MAX];
    vodlms_coverage_t      single, node[2], u;
    vodlms_coverage_run_t  r, rn[2];
    static const double    speeds[] = { 1.0, 1.5 };

    for (s = 0; s < 2; s++) {
        for (k = 0; k < 10; k++) {
            n = viewer(b, 600, speeds[s], 0, 1800, 1764900000000);

            vodlms_coverage_init(&single, buf[0], sizeof(buf[0]), 1800);
            memset(&r, 0, sizeof(r));
            for (i = 0; i < n; i++) {
                vodlms_coverage_mark(&single, &r, b[i].position, b[i].now);
            }

            /* alternating between two nodes, each with its own zone */
            nh[0] = nh[1] = 0;
            for (i = 0; i < n; i++) {
                half[i % 2][nh[i % 2]++] = b[i];
            }

            vodlms_coverage_init(&u, buf[3], sizeof(buf[3]), 1800);

            for (i = 0; i < 2; i++) {
                size_t  j;

                vodlms_coverage_init(&node[i], buf[1 + i], sizeof(buf[1]),
                                     1800);
                memset(&rn[i], 0, sizeof(rn[i]));
                for (j = 0; j < nh[i]; j++) {
                    vodlms_coverage_mark(&node[i], &rn[i], half[i][j].position,
                                         half[i][j].now);
                }
            }

            /* node B's flush, node A's, and A's again (a replayed flush) */
            vodlms_coverage_or(&u, &node[1]);
            vodlms_coverage_or(&u, &node[0]);
            vodlms_coverage_or(&u, &node[0]);

            ok(memcmp(u.bits, single.bits, 225) == 0,
               "two nodes at %gx (%d), alternate beacons, a flush replayed: "
               "the single node's bitmap exactly", speeds[s], k);
        }
    }

    /*
     * Halves: the first half on one node, the rest on another.  The second
     * node's run starts at the first beacon it sees, so what it proves
     * starts there: seeing only the beacon at the switch, the bit across
     * it is proven by neither node; seeing the one before too (a client
     * moved while a request was retried), the union is exact.
     */
    for (s = 1; s <= 2; s++) {
        size_t  sw;

        rng_state = 0x5eed;
        n = viewer(b, 600, 1.0, 0, 1800, 1000000);
        sw = n / 2;
        vodlms_coverage_init(&single, buf[0], sizeof(buf[0]), 1800);
        vodlms_coverage_init(&node[0], buf[1], sizeof(buf[1]), 1800);
        vodlms_coverage_init(&node[1], buf[2], sizeof(buf[2]), 1800);
        memset(&r, 0, sizeof(r));
        memset(rn, 0, sizeof(rn));

        for (i = 0; i < n; i++) {
            vodlms_coverage_mark(&single, &r, b[i].position, b[i].now);
            if (i <= sw) {
                vodlms_coverage_mark(&node[0], &rn[0], b[i].position,
                                     b[i].now);
            }
            if (i + s > sw) {
                vodlms_coverage_mark(&node[1], &rn[1], b[i].position,
                                     b[i].now);
            }
        }

        ok(vodlms_coverage_fraction(&node[0]) < 0.6
           && vodlms_coverage_fraction(&node[1]) < 0.6,
           "halves, %zu shared: each node has about half (%.3f, %.3f)",
           (size_t) s, vodlms_coverage_fraction(&node[0]),
           vodlms_coverage_fraction(&node[1]));
        vodlms_coverage_or(&node[1], &node[0]);

        if (s == 2) {
            ok(memcmp(node[1].bits, single.bits, 225) == 0
               && vodlms_coverage_fraction(&node[1]) == 1.0,
               "halves, 2 beacons shared: the single node's bitmap, all");

        } else {
            ok(vodlms_coverage_covered_ms(&single)
               - vodlms_coverage_covered_ms(&node[1]) == 5 * SEC
               && !bit(&node[1], (size_t) (b[sw].position / 5)),
               "halves, 1 beacon shared: all but the bit at the switch "
               "(%g s)", b[sw].position);
        }
    }

    /* different lengths: clipped to the destination, the rest counted */
    {
        unsigned char      sb[2] = { 0xff, 0xc0 }, db[1] = { 0x00 };
        vodlms_coverage_t  src = { sb, 10, 50000 }, dst = { db, 3, 15000 };

        is_int(vodlms_coverage_or(&dst, &src), 7,
               "or: 10 bits into 3: 7 set bits did not fit");
        is_int(db[0], 0xe0, "or: the 3 that fit, the padding still 0");

        db[0] = 0xa0;
        sb[0] = 0x40;
        sb[1] = 0;
        is_int(vodlms_coverage_or(&src, &dst), 0, "or: 3 bits into 10");
        ok(sb[0] == 0xe0 && sb[1] == 0, "or: 3 bits into 10 are a union");
    }
}


/* -------------------------------------------------------- serialisation */

static void
test_text(void)
{
    char               out[VODLMS_COVERAGE_HEX_LEN(VODLMS_COVERAGE_BITS_MAX)];
    char              *big;
    size_t             n, dropped;
    unsigned char      buf[VODLMS_COVERAGE_BYTES_MAX];
    vodlms_coverage_t  c;

    /* 40 s: 8 bits, 15-40 s played */
    vodlms_coverage_init(&c, buf, sizeof(buf), 40);
    buf[0] = 0x1f;
    n = vodlms_coverage_hex(&c, out, sizeof(out));
    is_mem(out, n, "x1f", 3, "hex: 8 bits as PostgreSQL reads 'x1f'");
    is_int(vodlms_coverage_hex(&c, out, 2), 0, "hex: no room, nothing");

    /* 17 bits: 5 hex digits, the last one's extra bits 0 */
    vodlms_coverage_init(&c, buf, sizeof(buf), 85);
    buf[0] = 0x80;
    buf[2] = 0x80;
    n = vodlms_coverage_hex(&c, out, sizeof(out));
    is_mem(out, n, "x80008", 6, "hex: 17 bits, 20 in the text");

    /* parse every form PostgreSQL's varbit input takes */
    vodlms_coverage_init(&c, buf, sizeof(buf), 85);
    is_rc(vodlms_coverage_parse(&c, LIT("x80008"), &dropped), VODLMS_OK,
          "parse: hex");
    ok(buf[0] == 0x80 && buf[1] == 0 && buf[2] == 0x80 && dropped == 0,
       "parse: hex round trip");

    vodlms_coverage_init(&c, buf, sizeof(buf), 85);
    is_rc(vodlms_coverage_parse(&c, LIT("X0F"), &dropped), VODLMS_OK,
          "parse: upper-case X and digits");
    is_int(buf[0], 0x0f, "parse: X0F");

    vodlms_coverage_init(&c, buf, sizeof(buf), 85);
    is_rc(vodlms_coverage_parse(&c, LIT("00000000000000001"), &dropped),
          VODLMS_OK, "parse: binary text, as varbit::text gives it");
    ok(buf[0] == 0 && buf[1] == 0 && buf[2] == 0x80, "parse: bit 16");
    is_rc(vodlms_coverage_parse(&c, LIT("B1"), &dropped), VODLMS_OK,
          "parse: B prefix");
    ok(buf[0] == 0x80 && buf[2] == 0x80, "parse: ORs into what is there");
    is_rc(vodlms_coverage_parse(&c, LIT(""), &dropped), VODLMS_OK,
          "parse: empty string");
    is_rc(vodlms_coverage_parse(&c, LIT("x"), &dropped), VODLMS_OK,
          "parse: x alone, no bits");

    /* longer than the bitmap: what fits is kept, the rest counted */
    vodlms_coverage_init(&c, buf, sizeof(buf), 10);
    is_rc(vodlms_coverage_parse(&c, LIT("xff"), &dropped), VODLMS_OK,
          "parse: 8 bits into 2");
    ok(buf[0] == 0xc0 && dropped == 6, "parse: 2 kept, 6 dropped (%zu)",
       dropped);

    /* refused: nothing changes */
    vodlms_coverage_init(&c, buf, sizeof(buf), 85);
    buf[1] = 0x42;
    is_rc(vodlms_coverage_parse(&c, LIT("x1g"), &dropped), VODLMS_EMALFORMED,
          "parse: not hex");
    is_rc(vodlms_coverage_parse(&c, LIT("0120"), &dropped), VODLMS_EMALFORMED,
          "parse: a 2 in binary");
    is_rc(vodlms_coverage_parse(&c, LIT("xx1"), &dropped), VODLMS_EMALFORMED,
          "parse: two x");
    is_rc(vodlms_coverage_parse(&c, LIT("b0x1"), &dropped), VODLMS_EMALFORMED,
          "parse: x inside binary");
    is_rc(vodlms_coverage_parse(&c, "1\0" "1", 3, &dropped), VODLMS_EMALFORMED,
          "parse: a NUL");
    is_rc(vodlms_coverage_parse(&c, LIT(" 1"), &dropped), VODLMS_EMALFORMED,
          "parse: a space");

    big = malloc(VODLMS_COVERAGE_BITS_MAX + 2);
    if (big == NULL) {
        abort();
    }

    memset(big, 'f', VODLMS_COVERAGE_BITS_MAX + 2);
    is_rc(vodlms_coverage_parse(&c, big, 3, &dropped), VODLMS_EMALFORMED,
          "parse: f in binary");
    memset(big, '1', VODLMS_COVERAGE_BITS_MAX + 2);
    is_rc(vodlms_coverage_parse(&c, big, VODLMS_COVERAGE_BITS_MAX + 1,
                                &dropped),
          VODLMS_ETOOLONG, "parse: 17281 bits");
    memset(big, 'f', VODLMS_COVERAGE_BITS_MAX + 2);
    big[0] = 'x';
    is_rc(vodlms_coverage_parse(&c, big, VODLMS_COVERAGE_BITS_MAX / 4 + 2,
                                &dropped),
          VODLMS_ETOOLONG, "parse: 4321 hex digits");
    ok(buf[0] == 0 && buf[1] == 0x42 && buf[2] == 0,
       "parse: refused texts changed nothing");
    is_rc(vodlms_coverage_parse(&c, big, VODLMS_COVERAGE_BITS_MAX / 4 + 1,
                                &dropped),
          VODLMS_OK, "parse: 4320 hex digits, the most");
    ok(dropped == 17280 - 17 && buf[0] == 0xff && buf[1] == 0xff
       && buf[2] == 0x80,
       "parse: 17 kept, %zu dropped", dropped);
    free(big);
}


/* ---------------------------------------------- random runs vs the oracle */

static void
test_oracle(void)
{
    int            k, failed;
    size_t         n, i;
    uint8_t        in[3 + 5 * 200];
    const char    *why;

    failed = 0;

    for (k = 0; k < 3000; k++) {
        n = 3 + 5 * (size_t) rng_in(0, 200);

        for (i = 0; i < n; i++) {
            in[i] = (uint8_t) rng();
        }

        /* mostly small steps and short waits, as players send */
        for (i = 3; i + 5 <= n; i += 5) {
            if (rng() % 4 != 0) {
                in[i + 2] = (uint8_t) (in[i + 2] & 0x3f);
                in[i + 4] = (uint8_t) (in[i + 4] & 0x3f);
            }
        }

        why = oracle_coverage_differ(in, n);

        if (why != NULL && failed++ < 5) {
            ok(0, "oracle: random run %d: %s", k, why);
        }
    }

    ok(failed == 0, "oracle: 3000 random runs agree with the oracle "
       "(%d did not)", failed);
}

/* ------------------------------------- attacks through the beacon API */

/*
 * The attacks of issue #19's red team, as a student would send them to
 * their own entry: every beacon goes through vodlms_progress_apply(), with
 * its event, as the module folds it, and what they buy is held to the
 * bound docs/architecture.md gives: the cheapest coverage is one part per
 * (R - A) / 2 = 1.5 s of wall time (3.3x real time), and a run's first
 * beacon (once per entry) may start up to A before it, so one part may be
 * had for (R - 2 A) / 2 = 0.5 s.
 */

#define R_MS  ((int64_t) VODLMS_COVERAGE_RES_MS)
#define A_MS  ((int64_t) VODLMS_COVERAGE_ALLOWANCE_MS)

static void
apply_beacon(vodlms_progress_t *p, vodlms_coverage_t *c,
    vodlms_coverage_run_t *r, double duration, double position,
    vodlms_beacon_event_t event, int64_t now)
{
    vodlms_beacon_t  b;

    memset(&b, 0, sizeof(b));
    b.current_time = position;
    b.duration = duration;
    b.duration_known = 1;
    b.event = event;

    vodlms_progress_apply(p, c, r, &b, now, 0.9);
}


/* the bound for `wall` ms spent on one entry: whole parts it may buy */
static int64_t
parts_bound(int64_t wall)
{
    if (wall < (R_MS - 2 * A_MS) / 2) {
        return 0;
    }

    return 1 + (wall - (R_MS - 2 * A_MS) / 2) / ((R_MS - A_MS) / 2);
}


/*
 * A player at `speed` whose "ended" comes `short_s` before the database's
 * duration (its playlist ends there): the beacons of viewer(), the last
 * one sent as `last`, at the duration itself if `at_end`.  Returns the
 * content covered.
 */
static int64_t
short_ender(double duration, double speed, double short_s,
    vodlms_beacon_event_t last, int at_end, uint64_t seed)
{
    size_t                 n, i;
    beacon_t               b[64];
    unsigned char          buf[VODLMS_COVERAGE_BYTES_MAX];
    vodlms_progress_t      p;
    vodlms_coverage_t      c;
    vodlms_coverage_run_t  r;

    rng_state = seed;
    n = viewer(b, 64, speed, 0, duration - short_s, 1764900000000);

    vodlms_coverage_init(&c, buf, sizeof(buf), duration);
    memset(&r, 0, sizeof(r));
    memset(&p, 0, sizeof(p));

    for (i = 0; i < n; i++) {
        apply_beacon(&p, &c, &r, duration,
                     i + 1 == n && at_end ? duration : b[i].position,
                     i + 1 == n ? last : VODLMS_BEACON_TICK, b[i].now);
    }

    return vodlms_coverage_covered_ms(&c);
}


static void
test_ended_short(void)
{
    int       k, worse, done1x;
    double    dur, short_s, speed;
    int64_t   as_tick, as_end, as_ended;
    uint64_t  seed;

    /*
     * "ended" a little before the duration is the end for coverage, so
     * that a player whose playlist ends short completes.  Calling the last
     * beacon "ended" must never cost a viewer the parts its own position
     * proved.  A viewer at 2x of a 30 s clip, beacons on time, whose
     * player ends 2.5 s short: as a tick, 0-25 s are played; as "ended",
     * the step is judged to 30 s, which its 3.75 s of wall time (7.5 s
     * of content at 2x, plus the 2 s the run carries) cannot cover, so it
     * is a jump and 20-25 s is lost too.
     */
    {
        unsigned char          buf[VODLMS_COVERAGE_BYTES_MAX];
        vodlms_progress_t      p;
        vodlms_coverage_t      c;
        vodlms_coverage_run_t  r;
        int64_t                got[2];

        for (k = 0; k < 2; k++) {
            vodlms_coverage_init(&c, buf, sizeof(buf), 30);
            memset(&r, 0, sizeof(r));
            memset(&p, 0, sizeof(p));

            apply_beacon(&p, &c, &r, 30, 0, VODLMS_BEACON_TICK, 1000300);
            apply_beacon(&p, &c, &r, 30, 20, VODLMS_BEACON_TICK, 1010300);
            apply_beacon(&p, &c, &r, 30, 27.5,
                         k ? VODLMS_BEACON_ENDED : VODLMS_BEACON_TICK,
                         1014050);
            got[k] = vodlms_coverage_covered_ms(&c);
        }

        ok(got[1] >= got[0] && got[0] == 25 * SEC,
           "ended short: a 2x viewer of a 30 s clip ending at 27.5 s: "
           "\"ended\" keeps what the tick proves (%lld ms as ended, %lld "
           "as a tick)", (long long) got[1], (long long) got[0]);
    }

    /*
     * ... nor what judging it as one step to the end proves: a run with
     * no credit left at 20 s, "ended" at 27 s 4 s later (8 s of content
     * at 2x): the step to 30 s is a run of its own from 20 s (10 s <= 8
     * + the allowance), both parts; the step to 27 s alone proves only
     * 20-25 s, and the 3 s after it are more than the credit it leaves.
     */
    {
        unsigned char          buf[VODLMS_COVERAGE_BYTES_MAX];
        vodlms_progress_t      p;
        vodlms_coverage_t      c;
        vodlms_coverage_run_t  r;

        vodlms_coverage_init(&c, buf, sizeof(buf), 30);
        memset(&r, 0, sizeof(r));
        memset(&p, 0, sizeof(p));

        apply_beacon(&p, &c, &r, 30, 0, VODLMS_BEACON_TICK, 1000000);
        apply_beacon(&p, &c, &r, 30, 20, VODLMS_BEACON_TICK, 1009000);
        apply_beacon(&p, &c, &r, 30, 27, VODLMS_BEACON_ENDED, 1013000);

        ok(vodlms_coverage_covered_ms(&c) == 30 * SEC && p.completed_at,
           "ended short: 20 s to the end in 4 s, 7 s of it played: a run "
           "from 20 s to the end, complete (%lld ms)",
           (long long) vodlms_coverage_covered_ms(&c));
    }

    /* many such viewers, at 1x to 2x, ending 0 to 5 s short */
    worse = 0;
    done1x = 0;

    for (k = 0; k < 600; k++) {
        dur = 20 + (double) rng_in(0, 1600) / 10.0;
        short_s = (double) rng_in(0, 5000) / 1000.0;
        speed = k % 3 == 0 ? 1.0 : k % 3 == 1 ? 1.5 : 2.0;
        seed = 0x1234567ULL + (uint64_t) k * 7919;

        as_tick = short_ender(dur, speed, short_s, VODLMS_BEACON_TICK, 0,
                              seed);
        as_end = short_ender(dur, speed, short_s, VODLMS_BEACON_TICK, 1,
                             seed);
        as_ended = short_ender(dur, speed, short_s, VODLMS_BEACON_ENDED, 0,
                               seed);
        rng_state = seed ^ 0x5555;

        worse += as_ended < as_tick || as_ended < as_end;

        /* at 1x the run carries 5 s: the whole clip */
        if (speed == 1.0
            && as_ended == vodlms_coverage_duration_ms(dur))
        {
            done1x++;
        }
    }

    ok(worse == 0, "ended short: 600 viewers at 1x-2x ending 0-5 s short "
       "of 20-180 s clips: \"ended\" never covers less than a tick there "
       "or a tick at the duration would (%d did)", worse);
    ok(done1x == 200, "ended short: the 200 at 1x cover the whole clip "
       "(%d did)", done1x);
}


/*
 * A viewer at 2x of a 2-minute clip, beacons as the example player sends
 * them (one at "playing", then every 15 s: 30 s of content), 300 ms on the
 * way, the first one `late` ms later still; `early_tick`: a beacon 5 s
 * after the first too.  Returns the content covered.
 */
static int64_t
late_first(int64_t late, int early_tick)
{
    int                    k;
    double                 pos;
    unsigned char          buf[VODLMS_COVERAGE_BYTES_MAX];
    vodlms_progress_t      p;
    vodlms_coverage_t      c;
    vodlms_coverage_run_t  r;

    vodlms_coverage_init(&c, buf, sizeof(buf), 120);
    memset(&r, 0, sizeof(r));
    memset(&p, 0, sizeof(p));

    apply_beacon(&p, &c, &r, 120, 0, VODLMS_BEACON_TICK, 2000300 + late);

    if (early_tick) {
        apply_beacon(&p, &c, &r, 120, 10, VODLMS_BEACON_TICK, 2005300);
    }

    for (k = 1; k <= 4; k++) {
        pos = (early_tick ? 10 : 0) + 30.0 * k;
        pos = pos > 120 ? 120 : pos;
        apply_beacon(&p, &c, &r, 120, pos,
                     pos == 120 ? VODLMS_BEACON_ENDED : VODLMS_BEACON_TICK,
                     2000300 + (early_tick ? 5000 : 0) + 15000 * k
                     - (pos == 120 && early_tick ? 5000 : 0));
    }

    return vodlms_coverage_covered_ms(&c);
}


static void
test_late_first(void)
{
    int64_t  ms;

    /*
     * Against a run's first beacon only the allowance counts, so at
     * exactly 2x it may reach the server at most A / 2 = 1 s later than
     * the next one.  Later, the first step is a jump and its 30 s are
     * lost: a short clip then stays under 90%.  (The jitter model of
     * test_viewers() makes one first beacon in twenty 1.5 s late: about
     * one 2x viewer in twenty of a clip under five minutes.)  The allowance
     * cannot grow without making coverage cheaper; a player that sends a
     * beacon a few seconds after the first loses only that short step.
     */
    ms = late_first(1000, 0);
    ok(ms == 120 * SEC, "late first beacon: 1 s late at 2x costs nothing "
       "(%lld ms)", (long long) ms);

    ms = late_first(1500, 0);
    ok(ms == 90 * SEC, "late first beacon: 1.5 s late at 2x loses the "
       "first 30 s of a 2-minute clip, under 90%% (%lld ms)",
       (long long) ms);

    ms = late_first(1500, 1);
    ok(ms == 110 * SEC, "late first beacon: with a beacon 5 s after it, "
       "only 10 s are lost, 91.7%% (%lld ms)", (long long) ms);
}


static void
test_beacon_attacks(void)
{
    int                    k, ev;
    int64_t                t, t0, wall, parts;
    double                 pos;
    unsigned char          buf[VODLMS_COVERAGE_BYTES_MAX];
    vodlms_progress_t      p;
    vodlms_coverage_t      c;
    vodlms_coverage_run_t  r;

    /*
     * Bank wall time by idling without a "pause" (the carry fills to
     * C), then step a whole part at once; back to 0 and a jump to the
     * next part to start a run afresh, and again.  Each part costs the
     * idle that fills the credit: 1.5 s, the bound.
     */
    vodlms_coverage_init(&c, buf, sizeof(buf), 1800);
    memset(&r, 0, sizeof(r));
    memset(&p, 0, sizeof(p));
    t0 = t = 50000000;

    for (k = 0; k < 360; k++) {
        pos = k * 5.0;
        apply_beacon(&p, &c, &r, 1800, 0, VODLMS_BEACON_TICK, t);
        apply_beacon(&p, &c, &r, 1800, pos, VODLMS_BEACON_TICK, t);
        t += 1500;                          /* idle: credit to C */
        apply_beacon(&p, &c, &r, 1800, pos, VODLMS_BEACON_TICK, t);
        apply_beacon(&p, &c, &r, 1800, pos + 5.0, VODLMS_BEACON_TICK, t);
    }

    wall = t - t0;
    parts = vodlms_coverage_covered_ms(&c) / R_MS;
    ok(parts <= parts_bound(wall),
       "carry attack: idle to bank the carry, then 5 s at once: %lld "
       "parts in %.1f s of wall time (bound %lld), %.3f covered: the "
       "cheapest coverage, no cheaper",
       (long long) parts, (double) wall / 1000.0,
       (long long) parts_bound(wall), vodlms_coverage_fraction(&c));

    /*
     * What the resume rule gives each new run state (an entry made again:
     * evicted, another node, a bitmap remade), so what an attacker who
     * could have its entry evicted at will after every part would pay:
     * a first beacon 2 s into the part after the played ones runs from
     * its start, and 3 s more take 0.5 s.  0.5 s a part, 10x real time,
     * where one entry pays 1.5 s: the bound holds per run state only.
     */
    vodlms_coverage_init(&c, buf, sizeof(buf), 1800);
    memset(&p, 0, sizeof(p));
    t0 = t = 80000000;

    for (k = 0; k < 360; k++) {
        memset(&r, 0, sizeof(r));                   /* a new entry */
        apply_beacon(&p, &c, &r, 1800, k * 5.0 + 2, VODLMS_BEACON_TICK, t);
        t += 500;
        apply_beacon(&p, &c, &r, 1800, k * 5.0 + 5, VODLMS_BEACON_TICK, t);
    }

    ok(vodlms_coverage_covered_ms(&c) == 1800 * SEC && t - t0 == 180 * SEC,
       "a new run state per part: all 360 parts in %.0f s of wall time "
       "(0.5 s each; one entry pays 1.5 s)", (double) (t - t0) / 1000.0);

    /*
     * "ended" near the end, again and again, between ticks back to 5 s
     * before it, 10 ms apart: nothing (a jump each time)
     */
    vodlms_coverage_init(&c, buf, sizeof(buf), 1800);
    memset(&r, 0, sizeof(r));
    memset(&p, 0, sizeof(p));

    for (k = 0; k < 1000; k++) {
        apply_beacon(&p, &c, &r, 1800, 1795 + (k % 50) / 10.0,
                     k % 2 ? VODLMS_BEACON_ENDED : VODLMS_BEACON_TICK,
                     60000000 + k * 10);
    }

    is_int(vodlms_coverage_covered_ms(&c), 0,
           "ended attack: 1000 beacons, tick and \"ended\" in the last 5 s, "
           "10 s of wall time: nothing covered");

    /*
     * Random attackers: events, positions (mostly ahead, by up to 8 s,
     * sometimes back or far ahead) and waits (0-3 s) at random, 2000
     * beacons each on a 10-minute lecture.  None buys more than the bound.
     */
    {
        int      over;
        int64_t  worst_parts, worst_wall;

        over = 0;
        worst_parts = 0;
        worst_wall = 1;

        for (k = 0; k < 200; k++) {
            int  i;

            vodlms_coverage_init(&c, buf, sizeof(buf), 600);
            memset(&r, 0, sizeof(r));
            memset(&p, 0, sizeof(p));
            t0 = t = 70000000;
            pos = 0;

            for (i = 0; i < 2000; i++) {
                switch (rng() % 8) {
                case 0:
                    pos -= (double) rng_in(1, 10000) / 1000.0;
                    break;
                case 1:
                    pos += (double) rng_in(1, 60000) / 1000.0;
                    break;
                default:
                    pos += (double) rng_in(0, 8000) / 1000.0;
                }

                pos = pos < 0 ? 0 : pos > 600 ? rng_in(0, 600) : pos;

                ev = (int) (rng() % 3);
                t += rng() % 4 ? rng_in(0, 3000) : 0;

                apply_beacon(&p, &c, &r, 600, pos,
                             (vodlms_beacon_event_t) ev, t);
            }

            parts = vodlms_coverage_covered_ms(&c) / R_MS;

            if (parts > parts_bound(t - t0)) {
                over++;
            }

            if (parts * worst_wall > worst_parts * (t - t0)) {
                worst_parts = parts;
                worst_wall = t - t0;
            }
        }

        ok(over == 0, "random attackers: 200 x 2000 beacons of every "
           "event: none over the bound (%d; the best bought %lld parts in "
           "%.1f s)", over, (long long) worst_parts,
           (double) worst_wall / 1000.0);
    }
}


/*
 * Every strategy there is, on a small grid: Dijkstra over the states of
 * (bitmap, run, paused), each move a beacon of any event at any position
 * (every 0.5 s) after any wait of the set below, costing that wait.  The
 * least wall time that sets every part of a 15 s clip is what the bound
 * says: 0.5 s for the first part, 1.5 s for each other.
 */

typedef struct {
    unsigned char          bits;
    int                    paused;
    vodlms_coverage_run_t  run;             /* time: 0, the state's own */
} search_state_t;

typedef struct {
    search_state_t  s;
    int64_t         cost;
    int             done;
} search_node_t;

typedef struct {
    search_node_t  *node;
    size_t          n, size;
    int            *slot;                   /* 2^k slots, -1: free */
    size_t          mask;
    int            *heap;
    size_t          heap_n;
} search_t;


static uint64_t
search_hash(const search_state_t *s)
{
    size_t                i;
    uint64_t              h;
    const unsigned char  *b = (const unsigned char *) s;

    h = 1469598103934665603ULL;

    for (i = 0; i < sizeof(*s); i++) {
        h = (h ^ b[i]) * 1099511628211ULL;
    }

    return h;
}


static void
search_push(search_t *S, int i)
{
    int     t;
    size_t  k, up;

    k = S->heap_n++;
    S->heap[k] = i;

    while (k > 0) {
        up = (k - 1) / 2;
        if (S->node[S->heap[k]].cost >= S->node[S->heap[up]].cost) {
            break;
        }

        t = S->heap[k]; S->heap[k] = S->heap[up]; S->heap[up] = t;
        k = up;
    }
}


static int
search_pop(search_t *S)
{
    int     top, t;
    size_t  k, l, m;

    top = S->heap[0];
    S->heap[0] = S->heap[--S->heap_n];
    k = 0;

    for ( ;; ) {
        l = 2 * k + 1;
        m = k;

        if (l < S->heap_n
            && S->node[S->heap[l]].cost < S->node[S->heap[m]].cost)
        {
            m = l;
        }

        if (l + 1 < S->heap_n
            && S->node[S->heap[l + 1]].cost < S->node[S->heap[m]].cost)
        {
            m = l + 1;
        }

        if (m == k) {
            break;
        }

        t = S->heap[k]; S->heap[k] = S->heap[m]; S->heap[m] = t;
        k = m;
    }

    return top;
}


/* the least wall time (ms) that sets every part of a `duration` clip */
static int64_t
search_cheapest(double duration, double grid)
{
    int                   i, j, e, d, npos, pi;
    size_t                h;
    int64_t               cost, best, now;
    unsigned char         full, bits[1];
    search_t              S;
    search_state_t        s;
    vodlms_progress_t     p;
    vodlms_coverage_t     c;
    static const int      waits[] = { 0, 250, 500, 1000, 1500, 2000, 2500,
                                      5000 };

    memset(&S, 0, sizeof(S));
    S.size = 1 << 17;
    S.mask = (1 << 20) - 1;
    S.node = malloc(S.size * sizeof(search_node_t));
    S.slot = malloc((S.mask + 1) * sizeof(int));
    S.heap = malloc(64 * S.size * sizeof(int));
    if (S.node == NULL || S.slot == NULL || S.heap == NULL) {
        abort();
    }

    memset(S.slot, 0xff, (S.mask + 1) * sizeof(int));

    vodlms_coverage_init(&c, bits, sizeof(bits), duration);
    full = (unsigned char) (0xff << (8 - c.nbits));
    npos = (int) (duration / grid + 0.5) + 1;

    memset(&s, 0, sizeof(s));
    S.node[0].s = s;
    S.node[0].cost = 0;
    S.node[0].done = 0;
    S.n = 1;
    S.slot[search_hash(&s) & S.mask] = 0;
    search_push(&S, 0);
    best = -1;

    while (S.heap_n > 0) {
        i = search_pop(&S);

        if (S.node[i].done) {
            continue;
        }

        S.node[i].done = 1;
        cost = S.node[i].cost;

        if (S.node[i].s.bits == full) {
            best = cost;
            break;
        }

        for (e = 0; e < 3; e++) {
            for (pi = 0; pi < npos; pi++) {
                for (d = 0; d < (int) (sizeof(waits) / sizeof(waits[0]));
                     d++)
                {
                    s = S.node[i].s;
                    now = 1000000 + cost + waits[d];

                    if (s.run.active) {
                        s.run.time = 1000000 + cost;
                    }

                    memset(&p, 0, sizeof(p));
                    p.paused = s.paused;
                    bits[0] = s.bits;
                    c.bits = bits;

                    apply_beacon(&p, &c, &s.run, duration, pi * grid,
                                 (vodlms_beacon_event_t) e, now);

                    s.bits = bits[0];
                    s.paused = p.paused;
                    s.run.time = 0;

                    h = search_hash(&s) & S.mask;

                    while ((j = S.slot[h]) >= 0
                           && memcmp(&S.node[j].s, &s, sizeof(s)) != 0)
                    {
                        h = (h + 1) & S.mask;
                    }

                    if (j < 0) {
                        if (S.n == S.size) {
                            S.size *= 2;
                            S.node = realloc(S.node,
                                             S.size * sizeof(search_node_t));
                            if (S.node == NULL || S.size > (S.mask + 1) / 2)
                            {
                                abort();
                            }
                        }

                        j = (int) S.n++;
                        S.slot[h] = j;
                        S.node[j].s = s;
                        S.node[j].done = 0;
                        S.node[j].cost = cost + waits[d] + 1;

                    } else if (S.node[j].done
                               || S.node[j].cost <= cost + waits[d])
                    {
                        continue;
                    }

                    S.node[j].cost = cost + waits[d];

                    if (S.heap_n == 64 * (S.size / 2)) {
                        abort();
                    }

                    search_push(&S, j);
                }
            }
        }
    }

    free(S.node);
    free(S.slot);
    free(S.heap);

    return best;
}


static void
test_cheapest(void)
{
    int64_t  ms;

    ms = search_cheapest(15, 0.5);
    ok(ms >= 500 + 2 * 1500,
       "every strategy, a 15 s clip: the cheapest sets all three parts in "
       "%lld ms of wall time, no less than 0.5 + 2 x 1.5 s", (long long) ms);

    /*
     * A last part shorter than the allowance is proven by a run that took
     * no wall time (12 s: 10-12 s), and so is a clip no longer than twice
     * it, from the first beacon of an entry (a first beacon at 2 s runs
     * from 0, with 2 s of allowance still to go).  Never a whole 5 s part.
     */
    ms = search_cheapest(12, 0.5);
    ok(ms == 500 + 1500, "every strategy, a 12 s clip: %lld ms, the first "
       "two parts' price; the last 2 s cost nothing", (long long) ms);

    ms = search_cheapest(4, 0.5);
    ok(ms == 0, "every strategy, a 4 s clip: %lld ms (two beacons in one "
       "millisecond, at 2 s and at 4 s)", (long long) ms);
}


int
main(void)
{
    test_size();
    test_viewers();
    test_attacks();
    test_seeks();
    test_untrusted();
    test_merge();
    test_text();
    test_oracle();
    test_ended_short();
    test_late_first();
    test_beacon_attacks();
    test_cheapest();

    return done_testing();
}
