/*
 * libFuzzer target for the signed-playlist rewriter (core/vodlms_hls.c).
 * The first byte picks the options (absolute mode, small limits), the rest
 * is the playlist.  Held to invariants, not to a copy of the parser:
 *
 *   - measuring and writing agree: the same code, and the measured size is
 *     the number of bytes written into a buffer of exactly that size; a
 *     refusal comes the same with room to spare;
 *   - when the input has no '~' the query starts with one, so every '~' of
 *     the output starts an inserted query: removing each, with the '?' or
 *     '&' before it, gives the input back exactly;
 *   - every URI of the output, found by a separate and simpler reading of
 *     the lines, carries the query when it must (relative; absolute on the
 *     origin) and not when it must not (skd:, data:, other hosts, and any
 *     URI of EXT-X-KEY or EXT-X-SESSION-KEY, issue #22), with
 *     '?' when the URI had no query before it and '&' when it had, never
 *     inside the fragment;
 *   - with the bit 0x10, protocol version 8's define mode runs as well: it
 *     measures and writes alike, refuses nothing the query mode takes but
 *     a clash (the playlist's own EXT-X-DEFINE or EXT-X-VERSION), and, for
 *     a playlist with neither and no "{$", is exactly the query mode's
 *     output with the #EXT-X-VERSION:8 and #EXT-X-DEFINE lines after the
 *     first line and "{$v}" where each query went.
 *
 *     make -C t/unit fuzz [FUZZ_SECONDS=60]
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE                               /* memmem() */
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vodlms_hls.h"


#define QA      "~Q=p&S=s_-&K=K2"            /* no '~' in the input */
#define QB      "Policy=p&Signature=s"       /* any input */
#define ORIGIN  "https://cdn.example.com"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void
fail(const char *what)
{
    fprintf(stderr, "fuzz_hls: %s\n", what);
    abort();
}


static int
ci_prefix(const char *s, size_t len, const char *p)
{
    size_t  i, n;

    n = strlen(p);
    if (len < n) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if ((s[i] | 0x20) != p[i]) {
            return 0;
        }
    }

    return 1;
}


/*
 * 1: must carry the query, 0: must not, -1: either (an absolute URI whose
 * host this simple reading does not judge)
 */
static int
must_sign(vodlms_hls_abs_e mode, const char *u, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (u[i] == ':' || u[i] == '/' || u[i] == '?' || u[i] == '#') {
            break;
        }
    }

    if (i < len && u[i] == ':' && i > 0
        && ((u[0] >= 'a' && u[0] <= 'z') || (u[0] >= 'A' && u[0] <= 'Z')))
    {
        size_t  j;

        for (j = 1; j < i; j++) {
            char  ch = u[j];

            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
                  || (ch >= '0' && ch <= '9') || ch == '+' || ch == '-'
                  || ch == '.'))
            {
                break;
            }
        }

        if (j == i) {                                     /* a scheme */
            if (!ci_prefix(u, len, "http:") && !ci_prefix(u, len, "https:")) {
                return 0;
            }

            goto absolute;
        }
    }

    if (len >= 2 && u[0] == '/' && u[1] == '/') {
        goto absolute;
    }

    return 1;

absolute:

    if (mode == VODLMS_HLS_ABS_REFUSE) {
        fail("an absolute URI passed under REFUSE");
    }

    return mode == VODLMS_HLS_ABS_KEEP ? 0 : -1;
}


/* one URI of the output: the query where the rules say, and well placed */
static void
check_uri(vodlms_hls_abs_e mode, const char *u, size_t len)
{
    int          want;
    const char  *t, *p;

    t = memchr(u, '~', len);

    if (t == NULL) {
        want = must_sign(mode, u, len);
        if (want == 1) {
            fail("a URI that must be signed is not");
        }

        return;
    }

    /* judge the URI as it was: up to the query, and after it */
    if (t == u || (t[-1] != '?' && t[-1] != '&')) {
        fail("a query without its separator");
    }

    if (len - (size_t) (t - u) < sizeof(QA) - 1
        || memcmp(t, QA, sizeof(QA) - 1) != 0)
    {
        fail("a '~' that is no whole query");
    }

    if (memchr(t + 1, '~', len - (size_t) (t + 1 - u)) != NULL) {
        fail("a URI signed twice");
    }

    if (memchr(u, '#', (size_t) (t - u)) != NULL) {
        fail("the query went into the fragment");
    }

    p = memchr(u, '?', (size_t) (t - 1 - u));
    if ((p != NULL) != (t[-1] == '&')) {
        fail("'?' where the URI had a query, or '&' where it had none");
    }

    want = must_sign(mode, u, (size_t) (t - 1 - u));
    if (want == 0) {
        fail("a URI that must not be signed is");
    }
}


static const char  *uri_tags[] = {
    "#EXT-X-KEY:", "#EXT-X-SESSION-KEY:", "#EXT-X-MAP:", "#EXT-X-MEDIA:",
    "#EXT-X-I-FRAME-STREAM-INF:", "#EXT-X-SESSION-DATA:", "#EXT-X-PART:",
    "#EXT-X-PRELOAD-HINT:", "#EXT-X-RENDITION-REPORT:"
};


static void
check_lines(vodlms_hls_abs_e mode, const char *o, size_t len)
{
    size_t       i, n;
    int          first, quoted, uri_tag, key_tag;
    const char  *p, *end, *nl, *s, *e, *v, *q;

    p = o;
    end = o + len;
    first = 1;

    if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) {
        p += 3;
    }

    for ( ; p < end; p = nl ? nl + 1 : end) {
        nl = memchr(p, '\n', (size_t) (end - p));
        s = p;
        e = nl ? nl : end;

        if (first) {
            first = 0;
            if (memchr(s, '~', (size_t) (e - s)) != NULL) {
                fail("a query in the #EXTM3U line");
            }
            continue;
        }

        while (e > s && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t')) {
            e--;
        }

        while (s < e && (*s == ' ' || *s == '\t')) {
            s++;
        }

        if (s == e) {
            continue;
        }

        if (*s != '#') {
            check_uri(mode, s, (size_t) (e - s));
            continue;
        }

        uri_tag = 0;
        key_tag = 0;
        for (i = 0; i < sizeof(uri_tags) / sizeof(uri_tags[0]); i++) {
            n = strlen(uri_tags[i]);
            if ((size_t) (e - s) >= n && memcmp(s, uri_tags[i], n) == 0) {
                uri_tag = 1;
                key_tag = (i < 2);                /* EXT-X-(SESSION-)KEY */
            }
        }

        if (!uri_tag) {
            if (memchr(s, '~', (size_t) (e - s)) != NULL) {
                fail("a query in a line that holds no URI");
            }
            continue;
        }

        /* URI="..." starting an attribute, outside quotes */
        quoted = 0;
        for (v = s; v < e; v++) {
            if (*v == '"') {
                quoted = !quoted;
                continue;
            }

            if (quoted || (size_t) (e - v) < 5
                || memcmp(v, "URI=\"", 5) != 0)
            {
                continue;
            }

            for (q = v - 1; q > s && (*q == ' ' || *q == '\t'); q--) {
                /* void */
            }

            if (*q != ':' && *q != ',') {
                continue;                            /* e.g. X-URI= */
            }

            v += 5;
            q = memchr(v, '"', (size_t) (e - v));
            if (q == NULL) {
                fail("an unterminated URI passed");
            }

            if (key_tag) {
                /* issue #22: a key is never signed, in any mode */
                if (memchr(v, '~', (size_t) (q - v)) != NULL) {
                    fail("a key URI was signed");
                }

            } else {
                check_uri(mode, v, (size_t) (q - v));
            }
            v = q;                                       /* closing '"' */
        }
    }
}


static int
has(const char *in, size_t size, const char *what)
{
    return memmem(in, size, what, strlen(what)) != NULL;
}


/* define mode next to the query mode's result (qrc, qout, qwrote) */
static void
check_define(const char *in, size_t size, vodlms_hls_opts_t *o,
    const char *query, size_t qlen, vodlms_rc_t qrc, const char *qout,
    size_t qwrote)
{
    char         *d, *exp, *x;
    size_t        need, wrote, room, i, eol, at;
    vodlms_rc_t   rc, rc2;

    o->define = "v";
    o->define_len = 1;

    rc = vodlms_hls_rewrite(in, size, query, qlen, o, NULL, 0, &need, NULL);
    room = (rc == VODLMS_OK) ? need : 2 * qlen + 64 + size + (size + 1) * 6;
    d = malloc(room ? room : 1);
    if (d == NULL) {
        goto done;
    }

    at = (size_t) -1;
    o->value_at = &at;
    rc2 = vodlms_hls_rewrite(in, size, query, qlen, o, d, room, &wrote, NULL);
    o->value_at = NULL;
    if (rc2 != rc || (rc == VODLMS_OK && wrote != need)) {
        fail("define: measuring and writing disagree");
    }

    if (rc == VODLMS_OK
        && (at > wrote || wrote - at < qlen + 1
            || memcmp(d + at, query, qlen) != 0 || d[at + qlen] != '"'))
    {
        fail("define: value_at is not where the query is");
    }

    if (rc == VODLMS_OK && qrc != VODLMS_OK) {
        fail("define: took a playlist the query mode refuses");
    }

    if (qrc == VODLMS_OK && rc != VODLMS_OK
        && !has(in, size, "#EXT-X-VERSION") && !has(in, size, "#EXT-X-DEFINE")
        && !has(in, size, "{$"))
    {
        fail("define: refused a playlist with no clash");
    }

    if (rc != VODLMS_OK || qrc != VODLMS_OK || memchr(in, '~', size)
        || has(in, size, "{$") || has(in, size, "#EXT-X-VERSION"))
    {
        free(d);
        goto done;
    }

    /* the expected output: the query mode's, each query "{$v}", the two
       lines after the first */
    exp = malloc(qwrote + 2 * qlen + 128);
    if (exp == NULL) {
        free(d);
        goto done;
    }

    x = exp;
    for (i = 0; i < qwrote && qout[i] != '\n'; i++) {
        *x++ = qout[i];
    }

    if (i < qwrote) {
        eol = (i > 0 && qout[i - 1] == '\r') ? 2 : 1;
        *x++ = qout[i++];

    } else {
        eol = 1;
        *x++ = '\n';
    }

#define PUT(s, n)  do { memcpy(x, s, n); x += n; } while (0)
#define EOL        do { if (eol == 2) { *x++ = '\r'; } *x++ = '\n'; } while (0)
    PUT("#EXT-X-VERSION:8", sizeof("#EXT-X-VERSION:8") - 1);
    EOL;
    PUT("#EXT-X-DEFINE:NAME=\"v\",VALUE=\"",
        sizeof("#EXT-X-DEFINE:NAME=\"v\",VALUE=\"") - 1);
    PUT(query, qlen);
    *x++ = '"';
    EOL;

    while (i < qwrote) {
        if (qout[i] == '~') {
            PUT("{$v}", 4);
            i += qlen;
            continue;
        }

        *x++ = qout[i++];
    }
#undef PUT
#undef EOL

    if ((size_t) (x - exp) != wrote || memcmp(exp, d, wrote) != 0) {
        fail("define: not the query mode's output with references");
    }

    free(exp);
    free(d);

done:

    o->define = NULL;
    o->define_len = 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                 tilde;
    char               *out;
    size_t              need, wrote, i, j, room, qlen;
    const char         *in, *query;
    vodlms_rc_t         rc, rc2;
    vodlms_hls_err_t    err, err2;
    vodlms_hls_opts_t   o;

    if (size == 0) {
        return 0;
    }

    memset(&o, 0, sizeof(o));
    o.absolute = (vodlms_hls_abs_e) (data[0] & 3) == 3
                 ? VODLMS_HLS_ABS_KEEP : (vodlms_hls_abs_e) (data[0] & 3);
    o.origin = ORIGIN;
    o.origin_len = sizeof(ORIGIN) - 1;
    o.max_size = (data[0] & 4) ? 600 : VODLMS_HLS_MAX_SIZE_DEFAULT;
    o.max_line = (data[0] & 8) ? 40 : VODLMS_HLS_MAX_LINE_DEFAULT;

    in = (const char *) data + 1;
    size--;

    tilde = memchr(in, '~', size) != NULL;
    query = tilde ? QB : QA;
    qlen = strlen(query);

    rc = vodlms_hls_rewrite(in, size, query, qlen, &o, NULL, 0, &need, &err);

    /* one insertion per line at most: room for any output */
    room = (rc == VODLMS_OK) ? need : size + (size + 1) * (qlen + 1);
    out = malloc(room ? room : 1);
    if (out == NULL) {
        return 0;
    }

    rc2 = vodlms_hls_rewrite(in, size, query, qlen, &o, out, room, &wrote,
                             &err2);

    if (rc2 != rc) {
        fail("measuring and writing return different codes");
    }

    if (data[0] & 0x10) {
        check_define(in, size, &o, query, qlen, rc, out, wrote);
    }

    if (rc != VODLMS_OK) {
        if (err.line != err2.line || err.reason == NULL
            || strcmp(err.reason, err2.reason) != 0)
        {
            fail("measuring and writing refuse differently");
        }

        if (rc != VODLMS_EMALFORMED && rc != VODLMS_ETOOLONG
            && rc != VODLMS_EREFUSED)
        {
            fail("a playlist refused with a caller's error code");
        }

        if (rc == VODLMS_EREFUSED && o.absolute != VODLMS_HLS_ABS_REFUSE) {
            fail("refused with absolute URIs allowed");
        }

        free(out);
        return 0;
    }

    if (wrote != need) {
        fail("measured size differs from the bytes written");
    }

    if (size > o.max_size) {
        fail("a playlist over max_size passed");
    }

    if (!tilde) {
        /* remove every "?~..." / "&~...": the input comes back */
        for (i = 0, j = 0; j < wrote; ) {
            if (out[j] == '~') {
                if (i == 0 || (out[i - 1] != '?' && out[i - 1] != '&')
                    || wrote - j < qlen || memcmp(out + j, QA, qlen) != 0)
                {
                    fail("an insertion that is not separator + query");
                }

                i--;                      /* the separator was inserted */
                j += qlen;
                continue;
            }

            out[i++] = out[j++];
        }

        if (i != size || memcmp(out, in, size) != 0) {
            fail("output less the queries is not the input");
        }

        /* the removal overwrote the buffer: write it again to read it */
        rc = vodlms_hls_rewrite(in, size, query, qlen, &o, out, need, &wrote,
                                NULL);
        if (rc != VODLMS_OK || wrote != need) {
            fail("a second write differs");
        }

        check_lines(o.absolute, out, wrote);
    }

    free(out);

    return 0;
}
