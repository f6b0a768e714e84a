/*
 * The reference for vodlms_coverage.c, written the slow and obvious way:
 * every beacon is kept, a run goes on only if EVERY pair of its beacons is
 * within the rate, with the allowance from the run's first beacon and the
 * carry between later ones (vodlms_core.h's rule before it is unrolled
 * into a credit), the proven spans are listed, and the bits are decided at the
 * end, one flag each, by looking at the spans.  test_coverage.c and
 * fuzz_coverage.c hold the bitmap to it bit for bit.
 */

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "oracle_coverage.h"


#define RES    VODLMS_COVERAGE_RES_MS
#define ALLOW  VODLMS_COVERAGE_ALLOWANCE_MS
#define CARRY  VODLMS_COVERAGE_CARRY_MS


static void *
oracle_grow(void *p, size_t *cap, size_t n, size_t size)
{
    if (n < *cap) {
        return p;
    }

    *cap = *cap ? *cap * 2 : 64;
    p = realloc(p, *cap * size);
    if (p == NULL) {
        abort();
    }

    return p;
}


void
oracle_coverage_init(oracle_coverage_t *o, int64_t duration_ms)
{
    int64_t  n;

    memset(o, 0, sizeof(oracle_coverage_t));
    o->duration_ms = duration_ms;

    n = duration_ms / RES + (duration_ms % RES != 0);
    o->nbits = n > VODLMS_COVERAGE_BITS_MAX ? VODLMS_COVERAGE_BITS_MAX
                                            : (size_t) n;
}


void
oracle_coverage_free(oracle_coverage_t *o)
{
    free(o->pos);
    free(o->clock);
    free(o->from);
    free(o->to);
    memset(o, 0, sizeof(oracle_coverage_t));
}


static void
oracle_span(oracle_coverage_t *o, int64_t from, int64_t to)
{
    size_t  cap;

    cap = o->spans_cap;
    o->from = oracle_grow(o->from, &cap, o->spans, sizeof(int64_t));
    cap = o->spans_cap;
    o->to = oracle_grow(o->to, &cap, o->spans, sizeof(int64_t));
    o->spans_cap = cap;

    /* a run counts once however many spans it proves */
    if (o->counted != o->run + 1) {
        o->counted = o->run + 1;
        o->runs++;
    }

    o->from[o->spans] = from;
    o->to[o->spans] = to;
    o->spans++;
}


/*
 * may beacon m and beacon k be in a run that starts at beacon `first`?  The
 * first beacon and any later one with the allowance, two later ones with
 * the carry
 */
static int
oracle_pair(const oracle_coverage_t *o, size_t first, size_t m, size_t k)
{
    return o->pos[k] - o->pos[m]
           <= 2 * (o->clock[k] - o->clock[m])
              + (m == first ? ALLOW : CARRY);
}


vodlms_coverage_step_e
oracle_coverage_beacon(oracle_coverage_t *o, int64_t pos_ms, int64_t now_ms)
{
    size_t   k, m, cap;
    int64_t  step;
    int      all;

    cap = o->cap;
    o->pos = oracle_grow(o->pos, &cap, o->n, sizeof(int64_t));
    cap = o->cap;
    o->clock = oracle_grow(o->clock, &cap, o->n, sizeof(int64_t));
    o->cap = cap;

    k = o->n++;
    o->pos[k] = pos_ms < o->duration_ms ? pos_ms : o->duration_ms;

    if (k == 0) {
        o->clock[k] = 0;
        o->last_time = now_ms;
        o->run = 0;
        /* a start a moment after 0 is a start at 0 (the bitmaps here
           start empty: no played bit before the first beacon's) */
        o->first_from = o->pos[0] <= ALLOW ? 0 : o->pos[0];
        o->first_live = 1;
        return VODLMS_COVERAGE_FIRST;
    }

    /* the clock the rule counts: never back, at most a minute a step */
    step = now_ms - o->last_time;
    if (step < 0) {
        step = 0;
    }

    if (step > VODLMS_COVERAGE_STEP_MAX_MS) {
        step = VODLMS_COVERAGE_STEP_MAX_MS;
    }

    if (now_ms > o->last_time) {
        o->last_time = now_ms;
    }

    o->clock[k] = o->clock[k - 1] + step;

    if (o->pos[k] < o->pos[k - 1]) {
        o->run = k;
        o->first_live = 0;
        return VODLMS_COVERAGE_BACK;
    }

    all = 1;
    for (m = o->run; m < k; m++) {
        if (!oracle_pair(o, o->run, m, k)) {
            all = 0;
            break;
        }
    }

    if (all) {
        oracle_span(o, o->first_live ? o->first_from : o->pos[o->run],
                    o->pos[k]);
        return VODLMS_COVERAGE_CONTINUED;
    }

    o->first_live = 0;

    if (oracle_pair(o, k - 1, k - 1, k)) {
        o->run = k - 1;
        oracle_span(o, o->pos[k - 1], o->pos[k]);
        return VODLMS_COVERAGE_RESTARTED;
    }

    o->run = k;

    return VODLMS_COVERAGE_JUMPED;
}


static int64_t
oracle_bit_end(size_t i, int64_t duration_ms)
{
    int64_t  end;

    end = (int64_t) (i + 1) * RES;

    return end > duration_ms ? duration_ms : end;
}


unsigned char *
oracle_coverage_flags(const oracle_coverage_t *o)
{
    size_t          s, i;
    unsigned char  *f;

    f = calloc(o->nbits ? o->nbits : 1, 1);
    if (f == NULL) {
        abort();
    }

    /* a bit is played when one span holds all of it */
    for (s = 0; s < o->spans; s++) {
        for (i = (size_t) (o->from[s] / RES);
             i < o->nbits && (int64_t) i * RES <= o->to[s];
             i++)
        {
            if ((int64_t) i * RES >= o->from[s]
                && oracle_bit_end(i, o->duration_ms) <= o->to[s])
            {
                f[i] = 1;
            }
        }
    }

    return f;
}


int64_t
oracle_flags_covered_ms(const unsigned char *f, size_t nbits,
    int64_t duration_ms)
{
    size_t   i;
    int64_t  ms;

    ms = 0;

    for (i = 0; i < nbits; i++) {
        if (f[i]) {
            ms += oracle_bit_end(i, duration_ms) - (int64_t) i * RES;
        }
    }

    return ms;
}


int64_t
oracle_flags_first_unwatched_ms(const unsigned char *f, size_t nbits,
    int64_t duration_ms)
{
    size_t  i;

    for (i = 0; i < nbits; i++) {
        if (!f[i]) {
            return (int64_t) i * RES;
        }
    }

    return oracle_bit_end(nbits - 1, duration_ms);
}


long
oracle_varbit_parse(const char *s, size_t len, unsigned char *flags)
{
    const char  *digits, *hit;
    size_t       i, width, n;
    int          b;

    width = 1;
    digits = "01";

    if (len && (s[0] == 'x' || s[0] == 'X')) {
        width = 4;
        digits = "0123456789abcdef";
        s++, len--;

    } else if (len && (s[0] == 'b' || s[0] == 'B')) {
        s++, len--;
    }

    if (len * width > VODLMS_COVERAGE_BITS_MAX) {
        return -2;
    }

    n = 0;

    for (i = 0; i < len; i++) {
        hit = s[i] ? strchr(digits, tolower((unsigned char) s[i])) : NULL;
        if (hit == NULL) {
            return -1;
        }

        for (b = (int) width - 1; b >= 0; b--) {
            flags[n++] = (unsigned char) (((hit - digits) >> b) & 1);
        }
    }

    return (long) n;
}


/* ------------------------------------------------ the differential check */

#define CHECK(cond, what)  do { if (!(cond)) { why = (what); goto done; } } \
                           while (0)

/* a node as the module holds it: a bitmap, its run, and the oracle */
typedef struct {
    vodlms_coverage_t      c;
    vodlms_coverage_run_t  r;
    unsigned char          buf[VODLMS_COVERAGE_BYTES_MAX];
    oracle_coverage_t      o;
} oracle_node_t;


static int
oracle_bit(const vodlms_coverage_t *c, size_t i)
{
    return (c->bits[i / 8] >> (7 - i % 8)) & 1;
}


/* the bitmap equals the flags, and every bit past nbits is 0 */
static int
oracle_same(const vodlms_coverage_t *c, const unsigned char *f)
{
    size_t  i;

    for (i = 0; i < c->nbits; i++) {
        if (oracle_bit(c, i) != (f[i] != 0)) {
            return 0;
        }
    }

    for (; i < (c->nbits + 7) / 8 * 8; i++) {
        if (oracle_bit(c, i)) {
            return 0;
        }
    }

    return 1;
}


static int
oracle_equal(const vodlms_coverage_t *a, const vodlms_coverage_t *b)
{
    return a->nbits == b->nbits
           && memcmp(a->bits, b->bits, (a->nbits + 7) / 8) == 0;
}


/* one valid beacon to a node: the step kinds must agree */
static int
oracle_send(oracle_node_t *n, int64_t pos_ms, double position, int64_t now)
{
    vodlms_coverage_step_e  got, exp;

    got = vodlms_coverage_mark(&n->c, &n->r, position, now);
    exp = oracle_coverage_beacon(&n->o, pos_ms, now);

    return got == exp;
}


/* an invalid beacon changes nothing at all */
static int
oracle_refused(oracle_node_t *n, double position, int64_t now)
{
    int                     same;
    unsigned char          *before;
    vodlms_coverage_run_t   r;

    before = malloc((n->c.nbits + 7) / 8);
    if (before == NULL) {
        abort();
    }

    memcpy(before, n->c.bits, (n->c.nbits + 7) / 8);
    r = n->r;

    same = vodlms_coverage_mark(&n->c, &n->r, position, now)
               == VODLMS_COVERAGE_INVALID
           && memcmp(before, n->c.bits, (n->c.nbits + 7) / 8) == 0
           && memcmp(&r, &n->r, sizeof(r)) == 0;

    free(before);

    return same;
}


static const char *
oracle_node_final(oracle_node_t *n, unsigned char **flags)
{
    int64_t         covered;
    unsigned char  *f;

    f = oracle_coverage_flags(&n->o);
    *flags = f;

    if (!oracle_same(&n->c, f)) {
        return "bitmap differs from the oracle";
    }

    covered = vodlms_coverage_covered_ms(&n->c);

    if (covered != oracle_flags_covered_ms(f, n->o.nbits, n->o.duration_ms)) {
        return "covered ms differ";
    }

    if (vodlms_coverage_fraction(&n->c)
        != (double) covered / (double) n->o.duration_ms)
    {
        return "fraction differs";
    }

    if (vodlms_coverage_first_unwatched_ms(&n->c)
        != oracle_flags_first_unwatched_ms(f, n->o.nbits, n->o.duration_ms))
    {
        return "first unwatched differs";
    }

    /* what wall time allows: rate x the clock, plus A per run */
    if (n->o.n > 0
        && covered > 2 * n->o.clock[n->o.n - 1]
                     + (int64_t) n->o.runs * VODLMS_COVERAGE_ALLOWANCE_MS
                     + (n->o.pos[0] - n->o.first_from))
    {
        return "more coverage than the wall clock allows";
    }

    return NULL;
}


const char *
oracle_coverage_differ(const uint8_t *data, size_t size)
{
    int             node, kind, tmode, j;
    long            nflags;
    size_t          i, k, rec, dropped, exp_dropped, len, nb;
    int64_t         dur, p, now, a, b, v;
    double          position;
    const char     *why;
    unsigned char  *fa, *fb, *fs, *pf;
    char           *text;
    oracle_node_t  *nodes;           /* A, B, the single node S */
    vodlms_coverage_t  u, w, x;
    unsigned char  *ubuf, *wbuf, *xbuf;
    const double    bad[] = { NAN, INFINITY, -INFINITY, -1e-3, -1e300 };

    if (size < 3) {
        return NULL;
    }

    why = NULL;
    fa = fb = fs = pf = NULL;
    text = NULL;

    nodes = calloc(3, sizeof(oracle_node_t));
    ubuf = calloc(3, VODLMS_COVERAGE_BYTES_MAX);
    if (nodes == NULL || ubuf == NULL) {
        abort();
    }

    wbuf = ubuf + VODLMS_COVERAGE_BYTES_MAX;
    xbuf = wbuf + VODLMS_COVERAGE_BYTES_MAX;

    v = data[1] | data[2] << 8;

    switch (data[0] & 3) {
    case 0:  dur = 1 + v; break;                        /* up to 65 s */
    case 1:  dur = 1 + v * 37; break;                   /* up to 40 min */
    case 2:  dur = 1000 + v * 1000; break;              /* up to 18 h */
    default:                                            /* about the cap */
        dur = (int64_t) VODLMS_COVERAGE_BITS_MAX * VODLMS_COVERAGE_RES_MS
              - 32768 + v;
    }

    for (j = 0; j < 3; j++) {
        CHECK(vodlms_coverage_init(&nodes[j].c, nodes[j].buf,
                                   sizeof(nodes[j].buf), dur / 1000.0)
              == VODLMS_OK, "init refused a duration");
        CHECK(nodes[j].c.duration_ms == dur, "duration not kept in ms");
        oracle_coverage_init(&nodes[j].o, dur);
        CHECK(nodes[j].c.nbits == nodes[j].o.nbits, "nbits differ");
        CHECK(vodlms_coverage_size(dur / 1000.0) == (nodes[j].o.nbits + 7) / 8,
              "size differs from the bits");
    }

    p = 0;
    now = (data[0] & 4) ? 1764900000000 : 0;

    for (rec = 0, i = 3; i + 5 <= size && rec < 600; i += 5, rec++) {
        node = data[i] & 3;
        kind = (data[i] >> 2) & 7;
        tmode = (data[i] >> 5) & 7;
        a = data[i + 1] | data[i + 2] << 8;
        b = data[i + 3] | data[i + 4] << 8;

        switch (tmode) {
        case 4:  now += b * 16; break;
        case 5:  now = now > b ? now - b : 0; break;
        case 6:  now += b / 64; break;
        case 7:  now += b * 1000000; break;
        default: now += b;
        }

        if (kind == 6) {
            /* an untrusted number: refused, nothing changes */
            for (j = 0; j < 3; j++) {
                if (j == 2 || j == (node & 1)) {
                    CHECK(oracle_refused(&nodes[j], bad[b % 5], now),
                          "a bad position changed something");
                    CHECK(oracle_refused(&nodes[j], p / 1000.0, -1 - a),
                          "a negative clock changed something");
                }
            }

            continue;
        }

        switch (kind) {
        case 0:  p += a; break;
        case 1:  p += a * 16; break;
        case 2:  p = p > a * 4 ? p - a * 4 : 0; break;
        case 3:  p = a * dur / 65535; break;
        case 5:  p += a * 256; break;
        default: break;                                 /* 4, 7: stays */
        }

        position = p / 1000.0;

        if (kind == 7) {
            position = (a & 1) ? 1e300 : 1.7976931348623157e308;
            p = dur;
        }

        for (j = 0; j < 2; j++) {
            if (node == 2 || (node == 3 && j == 0) || (node & 1) == j) {
                CHECK(oracle_send(&nodes[j], p, position, now),
                      "step kinds differ");
            }

            if (node == 3 && j == 0) {          /* delivered twice */
                CHECK(oracle_send(&nodes[j], p, position, now),
                      "step kinds differ on a repeat");
            }
        }

        CHECK(oracle_send(&nodes[2], p, position, now),
              "step kinds differ on the single node");

        if (nodes[2].c.nbits <= 256) {
            pf = oracle_coverage_flags(&nodes[2].o);
            CHECK(oracle_same(&nodes[2].c, pf), "bitmap differs mid-way");
            free(pf);
            pf = NULL;
        }
    }

    why = oracle_node_final(&nodes[0], &fa);
    if (why == NULL) {
        why = oracle_node_final(&nodes[1], &fb);
    }
    if (why == NULL) {
        why = oracle_node_final(&nodes[2], &fs);
    }
    if (why != NULL) {
        goto done;
    }

    nb = nodes[0].c.nbits;

    /* OR: u = A|B, w = B|A; the oracle's is the flags' union */
    vodlms_coverage_init(&u, ubuf, VODLMS_COVERAGE_BYTES_MAX, dur / 1000.0);
    vodlms_coverage_init(&w, wbuf, VODLMS_COVERAGE_BYTES_MAX, dur / 1000.0);
    CHECK(vodlms_coverage_or(&u, &nodes[0].c) == 0
          && vodlms_coverage_or(&u, &nodes[1].c) == 0, "OR dropped bits");
    CHECK(vodlms_coverage_or(&w, &nodes[1].c) == 0
          && vodlms_coverage_or(&w, &nodes[0].c) == 0, "OR dropped bits");
    CHECK(oracle_equal(&u, &w), "OR is not commutative");

    for (k = 0; k < nb; k++) {
        fa[k] |= fb[k];
    }

    CHECK(oracle_same(&u, fa), "OR differs from the union");

    /* idempotent: A again, the union again, changes nothing */
    vodlms_coverage_or(&w, &nodes[0].c);
    vodlms_coverage_or(&w, &u);
    CHECK(oracle_equal(&u, &w), "OR is not idempotent");

    /* associative: (A|B)|S == A|(B|S) */
    vodlms_coverage_or(&u, &nodes[2].c);
    memset(wbuf, 0, VODLMS_COVERAGE_BYTES_MAX);
    vodlms_coverage_or(&w, &nodes[1].c);
    vodlms_coverage_or(&w, &nodes[2].c);
    vodlms_coverage_init(&x, xbuf, VODLMS_COVERAGE_BYTES_MAX, dur / 1000.0);
    vodlms_coverage_or(&x, &nodes[0].c);
    vodlms_coverage_or(&x, &w);
    CHECK(oracle_equal(&u, &x), "OR is not associative");

    /* into a shorter bitmap: clipped, the rest counted */
    CHECK(vodlms_coverage_init(&x, xbuf, VODLMS_COVERAGE_BYTES_MAX,
                               (dur / 2 + 1) / 1000.0) == VODLMS_OK,
          "init of the shorter bitmap");
    exp_dropped = 0;
    for (k = x.nbits; k < nb; k++) {
        exp_dropped += fs[k];
    }
    CHECK(vodlms_coverage_or(&x, &nodes[2].c) == exp_dropped,
          "bits dropped by a shorter OR miscounted");
    CHECK(oracle_same(&x, fs), "a shorter OR kept the wrong bits");

    /* and a shorter one into a longer one: all kept */
    memset(wbuf, 0, VODLMS_COVERAGE_BYTES_MAX);
    CHECK(vodlms_coverage_or(&w, &x) == 0, "a longer OR dropped bits");
    for (k = 0; k < nb; k++) {
        CHECK(oracle_bit(&w, k) == (k < x.nbits && fs[k]),
              "a longer OR changed bits");
    }

    /* serialise: hex, its upper case, and the binary text, round trip */
    text = malloc(VODLMS_COVERAGE_HEX_LEN(VODLMS_COVERAGE_BITS_MAX) + nb + 2);
    if (text == NULL) {
        abort();
    }

    len = vodlms_coverage_hex(&nodes[2].c, text, VODLMS_COVERAGE_HEX_LEN(nb));
    CHECK(len == VODLMS_COVERAGE_HEX_LEN(nb), "hex length");
    CHECK(vodlms_coverage_hex(&nodes[2].c, text, len - 1) == 0,
          "hex wrote into too small a buffer");
    memset(wbuf, 0, VODLMS_COVERAGE_BYTES_MAX);
    CHECK(vodlms_coverage_parse(&w, text, len, &dropped) == VODLMS_OK
          && dropped == 0 && oracle_equal(&w, &nodes[2].c),
          "hex does not round-trip");

    for (k = 0; k < len; k++) {
        text[k] = (char) toupper((unsigned char) text[k]);
    }
    memset(wbuf, 0, VODLMS_COVERAGE_BYTES_MAX);
    CHECK(vodlms_coverage_parse(&w, text, len, &dropped) == VODLMS_OK
          && oracle_equal(&w, &nodes[2].c), "upper-case hex differs");

    for (k = 0; k < nb; k++) {
        text[k] = fs[k] ? '1' : '0';
    }
    memset(wbuf, 0, VODLMS_COVERAGE_BYTES_MAX);
    CHECK(vodlms_coverage_parse(&w, text, nb, &dropped) == VODLMS_OK
          && oracle_equal(&w, &nodes[2].c), "binary text differs");

    /* the input itself as a bit string, ORed into A */
    pf = malloc(VODLMS_COVERAGE_BITS_MAX);
    if (pf == NULL) {
        abort();
    }

    memcpy(wbuf, nodes[0].c.bits, (nb + 7) / 8);
    nflags = oracle_varbit_parse((const char *) data, size, pf);

    switch (vodlms_coverage_parse(&w, (const char *) data, size, &dropped)) {
    case VODLMS_OK:
        CHECK(nflags >= 0, "parsed what the oracle refuses");
        exp_dropped = 0;
        for (k = 0; k < (size_t) nflags; k++) {
            if (k < nb) {
                fa[k] = (unsigned char) (oracle_bit(&nodes[0].c, k) | pf[k]);
            } else {
                exp_dropped += pf[k];
            }
        }
        for (; k < nb; k++) {
            fa[k] = (unsigned char) oracle_bit(&nodes[0].c, k);
        }
        CHECK(dropped == exp_dropped, "parse dropped a different count");
        CHECK(oracle_same(&w, fa), "parse set other bits");
        break;

    case VODLMS_EMALFORMED:
        CHECK(nflags == -1, "refused as malformed what the oracle takes");
        CHECK(oracle_equal(&w, &nodes[0].c), "a refused text changed bits");
        break;

    case VODLMS_ETOOLONG:
        CHECK(nflags == -2, "refused as too long what the oracle takes");
        CHECK(oracle_equal(&w, &nodes[0].c), "a refused text changed bits");
        break;

    default:
        CHECK(0, "parse returned an unknown code");
    }

done:

    for (j = 0; j < 3; j++) {
        oracle_coverage_free(&nodes[j].o);
    }

    free(nodes);
    free(ubuf);
    free(fa);
    free(fb);
    free(fs);
    free(pf);
    free(text);

    return why;
}
