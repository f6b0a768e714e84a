/*
 * libFuzzer target for the coverage bitmap (core/vodlms_coverage.c): the
 * bytes are a duration and a list of beacons sent to two nodes and to one
 * node that sees them all, and the whole input is also read as a bit
 * string.  oracle_coverage_differ() holds every answer to the oracle.
 *
 *     make -C t/unit fuzz [FUZZ_SECONDS=60]
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "oracle_coverage.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char  *why;

    why = oracle_coverage_differ(data, size);

    if (why != NULL) {
        fprintf(stderr, "coverage: %s\n", why);
        abort();
    }

    return 0;
}
