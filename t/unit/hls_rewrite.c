/*
 * The rewriter of core/vodlms_hls.c as a filter, for the tests that hold
 * it to an independent HLS parser (t/081-hls-rewrite-oracle.t):
 *
 *     hls_rewrite QUERY [keep|refuse|origin=https://host] [MAX_SIZE MAX_LINE]
 *         < playlist > signed playlist
 *
 * With HLS_REWRITE_DEFINE=NAME in the environment, the define mode
 * (protocol version 8: the query once, "{$NAME}" in every URI).
 *
 * Measures, allocates once, writes, and checks that the two agree.  On a
 * refusal: nothing on stdout, "hls_rewrite: <code>: <reason> (line N)" on
 * stderr, exit 1; a usage error exits 2.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vodlms_hls.h"


static int
usage(void)
{
    fprintf(stderr, "usage: hls_rewrite QUERY [keep|refuse|origin=URL] "
                    "[MAX_SIZE MAX_LINE] < in > out\n");
    return 2;
}


int
main(int argc, char **argv)
{
    char               *in, *out, *p;
    size_t              len, cap, need, wrote;
    vodlms_rc_t         rc;
    vodlms_hls_err_t    err;
    vodlms_hls_opts_t   o;

    if (argc != 2 && argc != 3 && argc != 5) {
        return usage();
    }

    memset(&o, 0, sizeof(o));
    o.absolute = VODLMS_HLS_ABS_KEEP;
    o.max_size = VODLMS_HLS_MAX_SIZE_DEFAULT;
    o.max_line = VODLMS_HLS_MAX_LINE_DEFAULT;

    if (argc >= 3) {
        if (strcmp(argv[2], "keep") == 0) {
            o.absolute = VODLMS_HLS_ABS_KEEP;

        } else if (strcmp(argv[2], "refuse") == 0) {
            o.absolute = VODLMS_HLS_ABS_REFUSE;

        } else if (strncmp(argv[2], "origin=", 7) == 0) {
            o.absolute = VODLMS_HLS_ABS_ORIGIN;
            o.origin = argv[2] + 7;
            o.origin_len = strlen(o.origin);

        } else {
            return usage();
        }
    }

    if (argc == 5) {
        o.max_size = strtoul(argv[3], NULL, 10);
        o.max_line = strtoul(argv[4], NULL, 10);
    }

    o.define = getenv("HLS_REWRITE_DEFINE");
    o.define_len = o.define ? strlen(o.define) : 0;

    /* read all of stdin, whatever it holds */
    cap = 65536;
    len = 0;
    in = malloc(cap);

    for ( ;; ) {
        if (in == NULL) {
            perror("hls_rewrite");
            return 2;
        }

        len += fread(in + len, 1, cap - len, stdin);

        if (len < cap) {
            break;
        }

        cap *= 2;
        p = realloc(in, cap);
        if (p == NULL) {
            free(in);
        }
        in = p;
    }

    if (ferror(stdin)) {
        perror("hls_rewrite: stdin");
        return 2;
    }

    memset(&err, 0, sizeof(err));
    rc = vodlms_hls_rewrite(in, len, argv[1], strlen(argv[1]), &o, NULL, 0,
                            &need, &err);
    if (rc == VODLMS_OK) {
        out = malloc(need ? need : 1);
        if (out == NULL) {
            perror("hls_rewrite");
            return 2;
        }

        rc = vodlms_hls_rewrite(in, len, argv[1], strlen(argv[1]), &o, out,
                                need, &wrote, &err);

        if (rc == VODLMS_OK && wrote != need) {
            fprintf(stderr, "hls_rewrite: measured %zu, wrote %zu\n", need,
                    wrote);
            return 3;
        }
    }

    if (rc != VODLMS_OK) {
        fprintf(stderr, "hls_rewrite: %s: %s (line %zu)\n", vodlms_rc_str(rc),
                err.reason ? err.reason : "-", err.line);
        return 1;
    }

    if (fwrite(out, 1, wrote, stdout) != wrote || fflush(stdout) != 0) {
        perror("hls_rewrite: stdout");
        return 2;
    }

    free(out);
    free(in);

    return 0;
}
