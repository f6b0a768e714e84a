/*
 * JSON output for answers of a fixed shape: string escaping and numbers,
 * written straight into the caller's buffer.
 *
 * The playback answer used to be built as a jansson object and dumped; that
 * cost a dozen mallocs and a printf per request.  These functions produce
 * the same bytes jansson's json_dumps(JSON_COMPACT | JSON_REAL_PRECISION(15))
 * does for the same values (t/unit/test_core.c compares them against jansson
 * on random input), so the answer did not change when the builder did.
 * Beacons are parsed with yajl (vodlms_beacon.c); everything else parsed
 * stays with jansson.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <float.h>

#include "vodlms_core.h"


/*
 * Length of the UTF-8 sequence starting at s[0] (1-4), or 0 if it is not
 * a well-formed one: no overlong forms, no surrogates, nothing above
 * U+10FFFF (RFC 3629 section 4).
 */

static size_t
vodlms_utf8_seq(const unsigned char *s, size_t len)
{
    unsigned char  c;

    c = s[0];

    if (c < 0x80) {
        return 1;
    }

    if (c >= 0xc2 && c <= 0xdf) {
        return (len >= 2 && (s[1] & 0xc0) == 0x80) ? 2 : 0;
    }

    if (c >= 0xe0 && c <= 0xef) {
        if (len < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80) {
            return 0;
        }

        if ((c == 0xe0 && s[1] < 0xa0)          /* overlong */
            || (c == 0xed && s[1] >= 0xa0))     /* surrogates */
        {
            return 0;
        }

        return 3;
    }

    if (c >= 0xf0 && c <= 0xf4) {
        if (len < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80
            || (s[3] & 0xc0) != 0x80)
        {
            return 0;
        }

        if ((c == 0xf0 && s[1] < 0x90)          /* overlong */
            || (c == 0xf4 && s[1] >= 0x90))     /* above U+10FFFF */
        {
            return 0;
        }

        return 4;
    }

    return 0;
}


int
vodlms_utf8_valid(const char *str, size_t len)
{
    size_t                i, k;
    const unsigned char  *s;

    s = (const unsigned char *) str;

    for (i = 0; i < len; i += k) {
        k = (s[i] < 0x80) ? 1 : vodlms_utf8_seq(s + i, len - i);

        if (k == 0) {
            return 0;
        }
    }

    return 1;
}


size_t
vodlms_utf8_cut(const char *str, size_t len, char *out, size_t max)
{
    size_t                i, k, n;
    const unsigned char  *s;

    s = (const unsigned char *) str;
    n = 0;

    for (i = 0; i < len; i += k) {
        k = (s[i] < 0x80) ? 1 : vodlms_utf8_seq(s + i, len - i);

        if (k == 0) {
            /* one stray byte: U+FFFD, the replacement character */
            if (n + 3 > max) {
                break;
            }

            memcpy(out + n, "\xef\xbf\xbd", 3);
            n += 3;
            k = 1;
            continue;
        }

        if (n + k > max) {
            break;
        }

        memcpy(out + n, s + i, k);
        n += k;
    }

    return n;
}


size_t
vodlms_json_escaped_len(const char *str, size_t len)
{
    size_t                n, i, k;
    unsigned char         c;
    const unsigned char  *s;

    s = (const unsigned char *) str;
    n = 0;

    for (i = 0; i < len; i += k) {
        c = s[i];

        if (c >= 0x80) {
            k = vodlms_utf8_seq(s + i, len - i);

            if (k == 0) {
                return VODLMS_JSON_INVALID;
            }

            n += k;
            continue;
        }

        k = 1;

        switch (c) {
        case '"': case '\\': case '\b': case '\f':
        case '\n': case '\r': case '\t':
            n += 2;
            break;

        default:
            n += (c < 0x20) ? 6 : 1;
        }
    }

    return n;
}


char *
vodlms_json_escape(char *dst, const char *str, size_t len)
{
    size_t                i;
    unsigned char         c;
    const unsigned char  *s;

    static const char     hex[] = "0123456789ABCDEF";

    /* the caller has checked the input with vodlms_json_escaped_len() */

    s = (const unsigned char *) str;

    for (i = 0; i < len; i++) {
        c = s[i];

        switch (c) {
        case '"':  *dst++ = '\\'; *dst++ = '"';  break;
        case '\\': *dst++ = '\\'; *dst++ = '\\'; break;
        case '\b': *dst++ = '\\'; *dst++ = 'b';  break;
        case '\f': *dst++ = '\\'; *dst++ = 'f';  break;
        case '\n': *dst++ = '\\'; *dst++ = 'n';  break;
        case '\r': *dst++ = '\\'; *dst++ = 'r';  break;
        case '\t': *dst++ = '\\'; *dst++ = 't';  break;

        default:
            if (c < 0x20) {
                memcpy(dst, "\\u00", 4);
                dst[4] = hex[c >> 4];
                dst[5] = hex[c & 0xf];
                dst += 6;

            } else {
                *dst++ = (char) c;
            }
        }
    }

    return dst;
}


size_t
vodlms_json_real(char *out, size_t size, double v)
{
    int    n;
    char  *e, *q;

    if (!isfinite(v) || size < VODLMS_JSON_NUMBER_MAX) {
        return 0;
    }

    n = snprintf(out, size, "%.15g", v);

    if (n <= 0 || (size_t) n >= size - 2) {
        return 0;
    }

    /* jansson's exponents are short: 1e+15 -> 1e15, 1e-07 -> 1e-7 */

    e = strchr(out, 'e');

    if (e != NULL) {
        q = ++e;

        if (*q == '+') {
            q++;

        } else if (*q == '-') {
            e++;
            q++;
        }

        while (*q == '0' && q[1] != '\0') {
            q++;
        }

        memmove(e, q, strlen(q) + 1);

        return (size_t) (e - out) + strlen(e);
    }

    /* a real stays a real when read back: 90 -> 90.0 */

    if (strchr(out, '.') == NULL) {
        memcpy(out + n, ".0", 3);
        n += 2;
    }

    return (size_t) n;
}


size_t
vodlms_json_decimal(const char *s, size_t len, char *out, size_t size)
{
    char    *p, *end, buf[128];
    size_t   i, ilen, flen, fz, dot;
    double   v;

    /*
     * A plain decimal numeral "digits[.digits]" (what PostgreSQL prints for
     * numeric columns) with at most 15 significant digits and a magnitude
     * %g prints without an exponent comes out of "%.15g" as its own digits
     * with the zeros trimmed: DBL_DIG is 15, so the round trip through a
     * double is exact.  Everything else goes through strtod() and
     * vodlms_json_real().
     */

    if (len == 0 || size < VODLMS_JSON_NUMBER_MAX) {
        return 0;
    }

    dot = len;

    for (i = 0; i < len; i++) {
        if (s[i] == '.' && dot == len && i > 0 && i + 1 < len) {
            dot = i;

        } else if (s[i] < '0' || s[i] > '9') {
            goto slow;
        }
    }

    /* integer part without leading zeros, fraction without trailing ones */

    for (i = 0; i < dot && s[i] == '0'; i++) { /* void */ }
    ilen = dot - i;
    s += i;
    dot -= i;
    len -= i;

    flen = (dot < len) ? len - dot - 1 : 0;

    while (flen && s[dot + flen] == '0') {
        flen--;
    }

    if (ilen > 0) {
        if (ilen + flen > 15) {
            goto slow;
        }

        p = out;
        memcpy(p, s, ilen);
        p += ilen;
        *p++ = '.';

        if (flen) {
            memcpy(p, s + dot + 1, flen);
            p += flen;

        } else {
            *p++ = '0';
        }

        return (size_t) (p - out);
    }

    /* below one: "0.000123" is printed as is down to 1e-04, then with "e" */

    for (fz = 0; fz < flen && s[dot + 1 + fz] == '0'; fz++) { /* void */ }

    if (flen == 0) {
        memcpy(out, "0.0", 3);
        return 3;
    }

    if (fz > 3 || flen - fz > 15) {
        goto slow;
    }

    memcpy(out, "0.", 2);
    memcpy(out + 2, s + dot + 1, flen);

    return 2 + flen;

slow:

    if (len >= sizeof(buf)) {
        return 0;
    }

    memcpy(buf, s, len);
    buf[len] = '\0';

    v = strtod(buf, &end);

    if (end != buf + len) {
        return 0;
    }

    return vodlms_json_real(out, size, v);
}


/*
 * A numeral to a double without strtod() when one exact operation does it
 * (W. D. Clinger, "How to read floating point numbers accurately", 1990):
 * the significant digits as an integer m <= 2^53 and a power of ten 10^k
 * with |k| <= 22 are both exact doubles, so m * 10^k or m / 10^k is a
 * single IEEE operation, rounded once to nearest: the double strtod()
 * returns.  That holds only where doubles are evaluated as doubles
 * (FLT_EVAL_METHOD 0, as with SSE2); with x87's wider registers the
 * result could be rounded twice, so there everything goes to strtod().
 */

#define VODLMS_2P53  (UINT64_C(1) << 53)

int
vodlms_numeral_fast(const char *s, size_t len, double *out)
{
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
    int        neg, k, e, eneg, edigits, fdigits;
    size_t     i, start;
    double     v;
    uint64_t   m, d;

    static const double  pow10[] = {
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
    };

    /* longer ones are strtod()'s; this also keeps the counts below small */
    if (len > VODLMS_NUMERAL_FAST_MAX) {
        return 0;
    }

    i = 0;
    neg = (len > 0 && s[0] == '-');
    i += neg;

    m = 0;
    fdigits = 0;

    /* integer digits, then fraction digits: all into m */

    for (start = i; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        d = (uint64_t) (s[i] - '0');
        if (m > (VODLMS_2P53 - d) / 10) {
            return 0;
        }
        m = m * 10 + d;
    }

    if (i == start) {
        return 0;
    }

    if (i < len && s[i] == '.') {
        for (start = ++i; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            d = (uint64_t) (s[i] - '0');
            if (m > (VODLMS_2P53 - d) / 10) {
                return 0;
            }
            m = m * 10 + d;
            fdigits++;
        }

        if (i == start) {
            return 0;
        }
    }

    e = 0;

    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        eneg = (i < len && s[i] == '-');

        if (i < len && (s[i] == '-' || s[i] == '+')) {
            i++;
        }

        for (edigits = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            if (++edigits > 4) {
                return 0;
            }
            e = e * 10 + (s[i] - '0');
        }

        if (edigits == 0) {
            return 0;
        }

        if (eneg) {
            e = -e;
        }
    }

    if (i != len) {
        return 0;
    }

    /* zeros after the point can make fdigits large: k says no then */

    k = e - fdigits;

    if (k < -22 || k > 22) {
        return 0;
    }

    /* the sign first: the one rounding then sees the true value */
    v = neg ? -(double) m : (double) m;

    *out = (k < 0) ? v / pow10[-k] : v * pow10[k];

    return 1;
#else
    (void) s;
    (void) len;
    (void) out;

    return 0;
#endif
}
