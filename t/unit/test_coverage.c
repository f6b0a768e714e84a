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
     * and lost the whole step (20-30 s of content): 1 in 15 of these
     * viewers fell under 90%, the lowest at 83.3%.
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

    return done_testing();
}
