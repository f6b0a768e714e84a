/*
 * Cases for t/068-coverage-sql.t, which holds the SQL functions of
 * sql/migrations/0010_coverage.sql to core/vodlms_coverage.c: this prints
 * what the core says, as tab-separated lines for COPY, and the test asks
 * PostgreSQL the same and compares every line in one query.
 *
 *   coverage_cases bitmaps N SEED
 *     duration_s  hex_a  covered_ms  first_unwatched_ms
 *     k  hex_k  covered_ms_k  first_unwatched_ms_k
 *     hex_b  hex_or
 *   a: a bitmap for duration_s, built by vodlms_coverage_mark() from a
 *   simulated viewer or from random bits; k: a number of bits, hex_k: a
 *   with every bit from k on cleared (what substring(a FROM 1 FOR k) keeps);
 *   b: a bitmap of another duration, hex_or: the union of a and b in a
 *   bitmap as long as the longer (vodlms_coverage_or()).
 *
 *   coverage_cases spans N SEED
 *     duration_s  from_ms  to_ms  hex
 *   hex: what one run of beacons from `from` to `to` marks (a beacon every
 *   60 s of wall clock, 120 s of content: the rule's fastest continued run).
 *
 * Deterministic for a seed (its own PRNG, not rand()).  Exit 1 when the core
 * refuses something it should take: then there are no cases to trust.
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vodlms_core.h"


static uint64_t  state;


/* splitmix64 */
static uint64_t
next(void)
{
    uint64_t  z;

    z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;

    return z ^ (z >> 31);
}


/* 0..n-1 */
static int64_t
below(int64_t n)
{
    return n > 0 ? (int64_t) (next() % (uint64_t) n) : 0;
}


static void
die(const char *what)
{
    fprintf(stderr, "coverage_cases: %s\n", what);
    exit(1);
}


/* a duration in ms: tiny, whole parts, odd, a lecture, past 24 h */
static int64_t
duration_ms(void)
{
    switch (below(10)) {
    case 0:  return 1 + below(4999);                          /* < 1 bit */
    case 1:  return 5000 * (1 + below(12));                   /* few, whole */
    case 2:  return 5000 * (1 + below(2160));                 /* whole, <= 3 h */
    case 3:  return 5000 * (1 + below(12)) + 1 + below(4999); /* few, odd */
    case 4:  return 86400000 + below(2) * (1 + below(5000));  /* the cap */
    case 5:  return 86400001 + below(6 * 86400000LL);         /* past 24 h */
    case 6:  return 86395001 + below(4999);                   /* the last bit */
    default: return 1 + below(3 * 3600000);                  /* up to 3 h */
    }
}


static void
init(vodlms_coverage_t *c, unsigned char *buf, int64_t ms)
{
    if (vodlms_coverage_init(c, buf, VODLMS_COVERAGE_BYTES_MAX,
                             (double) ms / 1000.0)
        != VODLMS_OK)
    {
        die("vodlms_coverage_init() refused a duration");
    }

    if (c->duration_ms != ms) {
        die("vodlms_coverage_init() did not keep the duration to the ms");
    }
}


static void
set_bit(vodlms_coverage_t *c, size_t i)
{
    c->bits[i / 8] |= (unsigned char) (0x80 >> (i % 8));
}


/* a viewer: plays at 1x to 2x, pauses, seeks both ways, lies */
static void
viewer(vodlms_coverage_t *c)
{
    vodlms_coverage_run_t  run;
    int64_t                pos, now, dt;
    int                    i, steps;

    memset(&run, 0, sizeof(run));
    pos = below(3) ? 0 : below(c->duration_ms);
    now = 1000000 + below(1000000);
    steps = (int) below(400);

    for (i = 0; i < steps; i++) {
        vodlms_coverage_mark(c, &run, (double) pos / 1000.0, now);

        switch (below(12)) {
        case 0:                                         /* seek forward */
            pos += below(c->duration_ms / 4 + 1);
            now += below(3000);
            break;
        case 1:                                         /* seek back */
            pos -= below(pos + 1);
            now += below(3000);
            break;
        case 2:                                         /* pause */
            now += below(600000);
            break;
        case 3:                                         /* a fast lie */
            pos += 29000;
            now += below(20);
            break;
        default:                                        /* play */
            dt = 10000 + below(5001);
            now += dt;
            pos += dt * (10 + below(11)) / 10 + below(3001) - 1500;
            if (pos < 0) {
                pos = 0;
            }
        }

        if (pos > c->duration_ms + 10000) {
            pos = c->duration_ms + below(10000);        /* past the end */
        }
    }
}


static void
random_bits(vodlms_coverage_t *c)
{
    size_t    i;
    int64_t   per_mille;

    switch (below(5)) {
    case 0:  per_mille = 0; break;
    case 1:  per_mille = 1000; break;
    case 2:  per_mille = 50; break;
    case 3:  per_mille = 950; break;
    default: per_mille = 500;
    }

    for (i = 0; i < c->nbits; i++) {
        if (below(1000) < per_mille) {
            set_bit(c, i);
        }
    }
}


static void
build(vodlms_coverage_t *c)
{
    if (below(2)) {
        viewer(c);
    } else {
        random_bits(c);
    }
}


static void
print_hex(const vodlms_coverage_t *c)
{
    char    out[VODLMS_COVERAGE_HEX_LEN(VODLMS_COVERAGE_BITS_MAX)];
    size_t  n;

    n = vodlms_coverage_hex(c, out, sizeof(out));
    if (n == 0) {
        die("vodlms_coverage_hex() had no room");
    }

    fwrite(out, 1, n, stdout);
}


static void
print_duration(int64_t ms)
{
    printf("%" PRId64 ".%03" PRId64, ms / 1000, ms % 1000);
}


static void
bitmaps(long n)
{
    long               i;
    size_t             k, j;
    int64_t            da, db;
    vodlms_coverage_t  a, t, b, u;
    static unsigned char  abuf[VODLMS_COVERAGE_BYTES_MAX],
                          tbuf[VODLMS_COVERAGE_BYTES_MAX],
                          bbuf[VODLMS_COVERAGE_BYTES_MAX],
                          ubuf[VODLMS_COVERAGE_BYTES_MAX];

    for (i = 0; i < n; i++) {
        da = duration_ms();
        init(&a, abuf, da);
        build(&a);

        /* a cut at k bits: at 0, inside, at the end, inside the last byte */
        switch (below(4)) {
        case 0:  k = 0; break;
        case 1:  k = a.nbits; break;
        case 2:  k = a.nbits - (size_t) below(a.nbits < 8 ? a.nbits : 8);
                 break;
        default: k = (size_t) below((int64_t) a.nbits + 1);
        }

        init(&t, tbuf, da);
        for (j = 0; j < k; j++) {
            if (a.bits[j / 8] & (0x80 >> (j % 8))) {
                set_bit(&t, j);
            }
        }

        db = below(4) ? duration_ms() : da;
        init(&b, bbuf, db);
        build(&b);

        init(&u, ubuf, da > db ? da : db);
        if (vodlms_coverage_or(&u, &a) != 0 || vodlms_coverage_or(&u, &b) != 0) {
            die("vodlms_coverage_or() dropped bits into the longer bitmap");
        }

        print_duration(da);
        putchar('\t');
        print_hex(&a);
        printf("\t%" PRId64 "\t%" PRId64 "\t%zu\t",
               vodlms_coverage_covered_ms(&a),
               vodlms_coverage_first_unwatched_ms(&a), k);
        print_hex(&t);
        printf("\t%" PRId64 "\t%" PRId64 "\t",
               vodlms_coverage_covered_ms(&t),
               vodlms_coverage_first_unwatched_ms(&t));
        print_hex(&b);
        putchar('\t');
        print_hex(&u);
        putchar('\n');
    }
}


/* a position: 0, the end, past it, a part's edge, or anywhere */
static int64_t
position_ms(int64_t d)
{
    switch (below(6)) {
    case 0:  return 0;
    case 1:  return d;
    case 2:  return d + 1 + below(20000);
    case 3:  return 5000 * below(d / 5000 + 1) + below(3) - 1;
    default: return below(d + 1);
    }
}


static void
spans(long n)
{
    long                   i;
    int64_t                d, from, to, p, now;
    vodlms_coverage_t      c;
    vodlms_coverage_run_t  run;
    static unsigned char   buf[VODLMS_COVERAGE_BYTES_MAX];

    for (i = 0; i < n; i++) {
        d = below(3) ? 1 + below(600000) : duration_ms();
        from = position_ms(d);
        to = below(5) ? from + below(d - from + 20000) : position_ms(d);
        if (from < 0) {
            from = 0;
        }
        if (to < 0) {
            to = 0;
        }

        init(&c, buf, d);
        memset(&run, 0, sizeof(run));
        now = 0;
        p = from;
        vodlms_coverage_mark(&c, &run, (double) p / 1000.0, now);

        if (to < from) {
            vodlms_coverage_mark(&c, &run, (double) to / 1000.0, now + 1000);

        } else {
            do {
                p = to - p > 120000 ? p + 120000 : to;
                now += 60000;
                if (vodlms_coverage_mark(&c, &run, (double) p / 1000.0, now)
                    != VODLMS_COVERAGE_CONTINUED)
                {
                    die("a run at 2x did not continue");
                }
            } while (p < to);
        }

        print_duration(d);
        printf("\t%" PRId64 "\t%" PRId64 "\t", from, to);
        print_hex(&c);
        putchar('\n');
    }
}


int
main(int argc, char **argv)
{
    long  n;

    if (argc != 4 || (strcmp(argv[1], "bitmaps") != 0
                      && strcmp(argv[1], "spans") != 0))
    {
        fprintf(stderr, "usage: coverage_cases bitmaps|spans N SEED\n");
        return 2;
    }

    n = strtol(argv[2], NULL, 10);
    state = strtoull(argv[3], NULL, 10);

    if (argv[1][0] == 'b') {
        bitmaps(n);
    } else {
        spans(n);
    }

    return ferror(stdout) || fflush(stdout) != 0;
}
