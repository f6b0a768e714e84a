#ifndef ORACLE_COVERAGE_H
#define ORACLE_COVERAGE_H

#include "vodlms_core.h"

/*
 * The reference for vodlms_coverage_*: a plain array of flags, one per bit,
 * decided at the end from the list of proven runs, where a run is checked
 * pair by pair (every two of its beacons) instead of by a running credit.
 */
typedef struct {
    int64_t   duration_ms;
    size_t    nbits;
    int64_t  *pos;          /* the beacons taken, positions clamped (ms) */
    int64_t  *clock;        /* their wall time as the rule counts it */
    size_t    n, cap;
    size_t    run;          /* index of the first beacon of the run */
    int64_t   last_time;    /* the latest wall clock seen */
    int64_t  *from, *to;    /* proven spans */
    size_t    spans, spans_cap;
    size_t    runs;         /* runs that proved a span */
    size_t    counted;      /* 1 + the run counted last, 0: none */
    int64_t   first_from;   /* where the first run's spans start: 0 when
                               the first beacon is in the first bit */
    int       first_live;   /* the first run is still the run */
} oracle_coverage_t;

void oracle_coverage_init(oracle_coverage_t *o, int64_t duration_ms);
void oracle_coverage_free(oracle_coverage_t *o);

/* a beacon of a valid position (ms, >= 0) at a wall time (ms, >= 0) */
vodlms_coverage_step_e oracle_coverage_beacon(oracle_coverage_t *o,
    int64_t pos_ms, int64_t now_ms);

/* one flag per bit (nbits of them), from the spans; the caller frees */
unsigned char *oracle_coverage_flags(const oracle_coverage_t *o);

int64_t oracle_flags_covered_ms(const unsigned char *f, size_t nbits,
    int64_t duration_ms);
int64_t oracle_flags_first_unwatched_ms(const unsigned char *f, size_t nbits,
    int64_t duration_ms);

/* PostgreSQL's varbit input read character by character: -1 malformed,
   -2 too long, else the number of bits written to flags[] (its room is
   VODLMS_COVERAGE_BITS_MAX) */
long oracle_varbit_parse(const char *s, size_t len, unsigned char *flags);

/*
 * The differential check fuzz_coverage.c runs, and test_coverage.c on its
 * seeds and on pseudo-random bytes: `data` is read as a duration and a
 * list of beacons (see the .c), sent to two nodes and to one node that sees
 * them all; the bitmaps must equal the oracle's, merge by the laws of OR,
 * count and serialise as it says, and `data` itself as a bit string must
 * parse as it does.  NULL when all agree, else what did not.
 */
const char *oracle_coverage_differ(const uint8_t *data, size_t size);

#endif
