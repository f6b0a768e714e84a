/*
 * Unit tests of the pure core (ngx_http_vodlms_module/core/): TAP on stdout.
 *
 * Inputs are copied into buffers of exactly their length (no trailing NUL),
 * so that under ASan/valgrind a read past `len` is caught.
 */

#define _DEFAULT_SOURCE             /* timegm(), only as a test oracle */

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "vodlms_core.h"
#include "tap.h"
#include "helpers.h"
#include "oracle_beacon.h"


/* ------------------------------------------------------------------ rc */

static void
test_rc(void)
{
    int          i, j, distinct;
    const char  *s[VODLMS_EREFUSED + 1];

    distinct = 1;

    for (i = 0; i <= VODLMS_EREFUSED; i++) {
        s[i] = vodlms_rc_str((vodlms_rc_t) i);

        if (s[i] == NULL || s[i][0] == '\0') {
            distinct = 0;
            continue;
        }

        for (j = 0; j < i; j++) {
            if (s[j] != NULL && strcmp(s[i], s[j]) == 0) {
                distinct = 0;
            }
        }
    }

    ok(distinct, "rc_str: every code has its own non-empty text");
    is_str(vodlms_rc_str(VODLMS_OK), "ok", "rc_str: OK");
    is_str(vodlms_rc_str(VODLMS_EBADSIG), "bad signature", "rc_str: EBADSIG");
    is_str(vodlms_rc_str((vodlms_rc_t) 999), "unknown error",
           "rc_str: out of range code");
}


/* -------------------------------------------------------------- cookie */

static void
cookie_at(const char *file, int line, const char *t, const char *hdr,
    size_t hdr_len, const char *name, vodlms_rc_t erc, const char *ev)
{
    char           *h;
    vodlms_rc_t     rc;
    vodlms_cstr_t   v;

    h = xdup(hdr, hdr_len);
    rc = vodlms_cookie_get(h, hdr_len, name, strlen(name), &v);

    if (is_rc_at(rc, erc, file, line, "cookie: %s: rc", t)
        && rc == VODLMS_OK)
    {
        tap_is_mem(v.data, v.len, ev, strlen(ev), file, line,
                   "cookie: %s: value", t);
        tap_ok(v.data >= h && v.data + v.len <= h + hdr_len, file, line,
               "cookie: %s: value points into the header", t);
    }

    free(h);
}

#define COOKIE(t, hdr, name, erc, ev)                                         \
    cookie_at(__FILE__, __LINE__, t, LIT(hdr), name, erc, ev)


static void
test_cookie(void)
{
    char           *big;
    size_t          n;
    vodlms_cstr_t   v;

    COOKIE("only cookie", "connect.sid=abc", "connect.sid", VODLMS_OK, "abc");
    COOKIE("among others", "a=1; connect.sid=abc; b=2", "connect.sid",
           VODLMS_OK, "abc");
    COOKIE("last", "a=1; connect.sid=abc", "connect.sid", VODLMS_OK, "abc");
    COOKIE("no space after ';'", "a=1;connect.sid=abc;b=2", "connect.sid",
           VODLMS_OK, "abc");
    COOKIE("tabs", "a=1;\tconnect.sid=abc\t;\tb=2", "connect.sid",
           VODLMS_OK, "abc");
    COOKIE("leading and trailing whitespace", "  \t connect.sid=abc \t ",
           "connect.sid", VODLMS_OK, "abc");
    COOKIE("empty pairs", ";;; ;connect.sid=abc;;", "connect.sid",
           VODLMS_OK, "abc");
    COOKIE("spaces around '='", "connect.sid = abc", "connect.sid",
           VODLMS_OK, "abc");
    COOKIE("duplicate: first wins", "connect.sid=first; connect.sid=second",
           "connect.sid", VODLMS_OK, "first");
    COOKIE("duplicate: first wins even if empty",
           "connect.sid=; connect.sid=second", "connect.sid", VODLMS_OK, "");
    COOKIE("longer name before", "xconnect.sid=bad; connect.sid=good",
           "connect.sid", VODLMS_OK, "good");
    COOKIE("name with suffix before", "connect.sid2=bad; connect.sid=good",
           "connect.sid", VODLMS_OK, "good");
    COOKIE("only similar names",
           "xconnect.sid=1; connect.sid2=2; connect.si=3; Connect.sid=4; "
           "CONNECT.SID=5; connect_sid=6", "connect.sid",
           VODLMS_ENOTFOUND, NULL);
    COOKIE("name is case-sensitive", "SID=1; sid=2", "sid", VODLMS_OK, "2");
    COOKIE("name as a value is no match", "a=connect.sid; b=x",
           "connect.sid", VODLMS_ENOTFOUND, NULL);
    COOKIE("quoted value", "connect.sid=\"s%3Aabc.def\"", "connect.sid",
           VODLMS_OK, "s%3Aabc.def");
    COOKIE("quoted empty value", "connect.sid=\"\"", "connect.sid",
           VODLMS_OK, "");
    COOKIE("a lone quote is a value", "connect.sid=\"", "connect.sid",
           VODLMS_OK, "\"");
    COOKIE("an open quote is kept", "connect.sid=\"abc", "connect.sid",
           VODLMS_OK, "\"abc");
    COOKIE("empty value", "connect.sid=", "connect.sid", VODLMS_OK, "");
    COOKIE("empty value then more", "connect.sid=; x=1", "connect.sid",
           VODLMS_OK, "");
    COOKIE("value with '='", "t=a=b==", "t", VODLMS_OK, "a=b==");
    COOKIE("pair without '=' skipped", "connect.sid; connect.sid=v",
           "connect.sid", VODLMS_OK, "v");
    COOKIE("pair without '=' only", "connect.sid", "connect.sid",
           VODLMS_ENOTFOUND, NULL);
    COOKIE("'=' in a later pair is not ours", "connect.sid; x=y",
           "connect.sid", VODLMS_ENOTFOUND, NULL);
    COOKIE("empty header", "", "connect.sid", VODLMS_ENOTFOUND, NULL);
    COOKIE("only separators", " ; ; ", "connect.sid", VODLMS_ENOTFOUND,
           NULL);
    COOKIE("NUL inside an earlier value", "a=\0x; connect.sid=v",
           "connect.sid", VODLMS_OK, "v");
    COOKIE("NUL inside the name", "connect\0.sid=v", "connect.sid",
           VODLMS_ENOTFOUND, NULL);
    COOKIE("NUL after the name", "connect.sid\0=v", "connect.sid",
           VODLMS_ENOTFOUND, NULL);

    is_rc(vodlms_cookie_get("connect.sid=abc", 5, LIT("connect.sid"), &v),
          VODLMS_ENOTFOUND, "cookie: length is honoured, not the NUL");
    is_rc(vodlms_cookie_get("connect.sid=abc", 13, LIT("connect.sid"), &v),
          VODLMS_OK, "cookie: cut inside the value: rc");
    is_int(v.len, 1, "cookie: cut inside the value: length");
    is_rc(vodlms_cookie_get(NULL, 0, LIT("connect.sid"), &v),
          VODLMS_ENOTFOUND, "cookie: NULL header");
    is_rc(vodlms_cookie_get(LIT("=v; a=b"), "", 0, &v), VODLMS_ENOTFOUND,
          "cookie: empty name never matches");
    ok(v.data == NULL && v.len == 0, "cookie: not found clears the value");

    big = xrepeat("a=b; ", 20000, &n);
    memcpy(big + n - 5, "c=d; ", 5);
    cookie_at(__FILE__, __LINE__, "100 KB of other cookies", big, n, "c",
              VODLMS_OK, "d");
    cookie_at(__FILE__, __LINE__, "100 KB, name absent", big, n,
              "connect.sid", VODLMS_ENOTFOUND, NULL);
    free(big);

    big = xrepeat("v", 100000, &n);
    memcpy(big, "k=", 2);
    cookie_at(__FILE__, __LINE__, "100 KB value", big, n, "k", VODLMS_OK,
              big + 2);
    free(big);
}


/* ---------------------------------------------------------- pct_decode */

static void
pct_at(const char *file, int line, const char *in, size_t len,
    vodlms_rc_t erc, const char *eout, size_t eout_len)
{
    char         *p, *out;
    size_t        n;
    vodlms_rc_t   rc;

    p = xdup(in, len);
    out = malloc(len ? len : 1);        /* the documented room: len bytes */
    if (out == NULL) {
        abort();
    }

    n = 12345;

    rc = vodlms_pct_decode(p, len, out, &n);

    if (is_rc_at(rc, erc, file, line, "pct_decode(\"%.*s\"): rc",
                 (int) (len > 40 ? 40 : len), in))
    {
        if (rc == VODLMS_OK) {
            tap_is_mem(out, n, eout, eout_len, file, line,
                       "pct_decode(\"%.*s\"): output",
                       (int) (len > 40 ? 40 : len), in);
        } else {
            tap_is_int((long long) n, 0, file, line,
                       "pct_decode(\"%.*s\"): out_len 0 on error",
                       (int) (len > 40 ? 40 : len), in);
        }
    }

    free(out);
    free(p);
}

#define PCT_OK(in, out)                                                       \
    pct_at(__FILE__, __LINE__, LIT(in), VODLMS_OK, LIT(out))
#define PCT_BAD(in)                                                           \
    pct_at(__FILE__, __LINE__, LIT(in), VODLMS_EMALFORMED, NULL, 0)


static void
test_pct_decode(void)
{
    int     b, good, bad;
    char    in[3], buf[64], hexs[] = "0123456789abcdef";
    size_t  n;

    PCT_OK("s%3Aabc.def", "s:abc.def");
    PCT_OK("s%3aabc.def", "s:abc.def");
    PCT_OK("%2B%2F%3D", "+/=");
    PCT_OK("%2b%2f%3d", "+/=");
    PCT_OK("a+b", "a+b");
    PCT_OK("", "");
    PCT_OK("plain", "plain");
    PCT_OK("%20", " ");
    PCT_OK("%25", "%");
    PCT_OK("%2541", "%41");
    PCT_OK("%C3%BC", "\xc3\xbc");
    PCT_OK("%80%ff", "\x80\xff");
    PCT_OK("%41%42%43", "ABC");

    PCT_BAD("%");
    PCT_BAD("abc%");
    PCT_BAD("abc%4");
    PCT_BAD("%G1");
    PCT_BAD("%1G");
    PCT_BAD("%0");
    PCT_BAD("%%");
    PCT_BAD("%%41");
    PCT_BAD("% 41");
    PCT_BAD("%-1");
    PCT_BAD("%+1");
    PCT_BAD("%00");
    PCT_BAD("abc%00def");
    PCT_BAD("%0A");
    PCT_BAD("%0d");
    PCT_BAD("%09");
    PCT_BAD("%1f");
    PCT_BAD("%7F");
    PCT_BAD("%7f");
    PCT_BAD("a\0b");
    PCT_BAD("a\nb");
    PCT_BAD("a\tb");
    PCT_BAD("a\x7f");

    /* every %XX: exactly the 33 control bytes are refused */
    good = 0;
    bad = 0;

    for (b = 0; b < 256; b++) {
        in[0] = '%';
        in[1] = hexs[b >> 4];
        in[2] = hexs[b & 15];

        if (vodlms_pct_decode(in, 3, buf, &n) == VODLMS_OK) {
            good += n == 1 && (unsigned char) buf[0] == b
                    && b >= 0x20 && b != 0x7f;
        } else {
            bad += b < 0x20 || b == 0x7f;
        }
    }

    is_int(good, 223, "pct_decode: all 223 printable/high %%XX decode");
    is_int(bad, 33, "pct_decode: all 33 control %%XX are refused");

    memcpy(buf, "s%3Aab%2Fc.x%3D", 16);
    ok(vodlms_pct_decode(buf, 15, buf, &n) == VODLMS_OK
       && n == 9 && memcmp(buf, "s:ab/c.x=", 9) == 0,
       "pct_decode: in place");
}


/* ------------------------------------------------------- bearer, token */

static void
bearer_at(const char *file, int line, const char *in, size_t len,
    vodlms_rc_t erc, const char *etok)
{
    char           *p;
    vodlms_rc_t     rc;
    vodlms_cstr_t   tok;

    p = xdup(in, len);
    rc = vodlms_bearer_token(p, len, &tok);

    if (is_rc_at(rc, erc, file, line, "bearer(\"%s\"): rc", in)
        && rc == VODLMS_OK)
    {
        tap_is_mem(tok.data, tok.len, etok, strlen(etok), file, line,
                   "bearer(\"%s\"): token", in);
    }

    free(p);
}

#define BEARER(in, erc, etok)                                                 \
    bearer_at(__FILE__, __LINE__, LIT(in), erc, etok)


static void
test_bearer(void)
{
    char           *p;
    vodlms_cstr_t   tok;

    BEARER("Bearer abc", VODLMS_OK, "abc");
    BEARER("bearer abc", VODLMS_OK, "abc");
    BEARER("BEARER abc", VODLMS_OK, "abc");
    BEARER("BeArEr abc", VODLMS_OK, "abc");
    BEARER("Bearer     abc", VODLMS_OK, "abc");
    BEARER("Bearer\tabc", VODLMS_OK, "abc");
    BEARER("Bearer abc   ", VODLMS_OK, "abc");
    BEARER("  Bearer abc", VODLMS_OK, "abc");
    BEARER("Bearer eyJhbGciOi.J9-_~+/==", VODLMS_OK, "eyJhbGciOi.J9-_~+/==");
    BEARER("Bearer a b", VODLMS_OK, "a b");
    BEARER("Basic dXNlcjpwYXNz", VODLMS_ENOTFOUND, NULL);
    BEARER("Bearerabc", VODLMS_ENOTFOUND, NULL);
    BEARER("Bearer,abc", VODLMS_ENOTFOUND, NULL);
    BEARER("Bear abc", VODLMS_ENOTFOUND, NULL);
    BEARER("Bear", VODLMS_ENOTFOUND, NULL);
    BEARER("", VODLMS_ENOTFOUND, NULL);
    BEARER("   ", VODLMS_ENOTFOUND, NULL);
    BEARER("Bearer", VODLMS_EMALFORMED, NULL);
    BEARER("bearer", VODLMS_EMALFORMED, NULL);
    BEARER("Bearer    ", VODLMS_EMALFORMED, NULL);
    BEARER("Bearer \t ", VODLMS_EMALFORMED, NULL);
    BEARER("\x42\xc5\x61rer abc", VODLMS_ENOTFOUND, NULL);
    BEARER("Bearer\0abc", VODLMS_ENOTFOUND, NULL);

    is_rc(vodlms_bearer_token(NULL, 0, &tok), VODLMS_ENOTFOUND,
          "bearer: NULL header");

    p = xdup("Bearer a\0b", 10);
    ok(vodlms_bearer_token(p, 10, &tok) == VODLMS_OK && tok.len == 3
       && !vodlms_token_valid(tok.data, tok.len),
       "bearer: a NUL inside the token is kept, and token_valid refuses it");
    free(p);
}


static void
test_token_valid(void)
{
    char    *p;
    size_t   n;

    ok(vodlms_token_valid(LIT("abc")), "token_valid: abc");
    ok(vodlms_token_valid(LIT("ABCxyz019._~+/=-")),
       "token_valid: every allowed class");
    ok(vodlms_token_valid(LIT("=")), "token_valid: one byte");
    ok(!vodlms_token_valid(LIT("")), "token_valid: empty");
    ok(!vodlms_token_valid(NULL, 0), "token_valid: NULL");
    ok(!vodlms_token_valid(LIT("a b")), "token_valid: space");
    ok(!vodlms_token_valid(LIT("a%20b")), "token_valid: percent");
    ok(!vodlms_token_valid(LIT("a;b")), "token_valid: semicolon");
    ok(!vodlms_token_valid(LIT("a,b")), "token_valid: comma");
    ok(!vodlms_token_valid(LIT("a\"b")), "token_valid: quote");
    ok(!vodlms_token_valid(LIT("a:b")), "token_valid: colon");
    ok(!vodlms_token_valid(LIT("a*b")), "token_valid: star");
    ok(!vodlms_token_valid(LIT("a\0b")), "token_valid: NUL");
    ok(!vodlms_token_valid(LIT("a\nb")), "token_valid: LF");
    ok(!vodlms_token_valid(LIT("\xc3\xbc")), "token_valid: UTF-8");

    p = xrepeat("x", VODLMS_TOKEN_MAX + 1, &n);
    ok(vodlms_token_valid(p, VODLMS_TOKEN_MAX), "token_valid: 512 bytes");
    ok(!vodlms_token_valid(p, VODLMS_TOKEN_MAX + 1),
       "token_valid: 513 bytes");
    free(p);
}


/* ------------------------------------------------------- sql_schema */

static void
test_sql_schema(void)
{
    ok(vodlms_sql_schema_valid(LIT("vodlms")), "sql_schema: vodlms");
    ok(vodlms_sql_schema_valid(LIT("public")), "sql_schema: public");
    ok(vodlms_sql_schema_valid(LIT("_v2_media")), "sql_schema: _v2_media");
    ok(vodlms_sql_schema_valid(LIT("user")),
       "sql_schema: a keyword (always written quoted)");
    ok(vodlms_sql_schema_valid(LIT(
        "a23456789012345678901234567890123456789012345678901234567890123")),
       "sql_schema: 63 bytes");
    ok(!vodlms_sql_schema_valid(LIT(
        "a234567890123456789012345678901234567890123456789012345678901234")),
       "sql_schema: 64 bytes is too long (NAMEDATALEN)");
    ok(!vodlms_sql_schema_valid(LIT("")), "sql_schema: empty");
    ok(!vodlms_sql_schema_valid(LIT("Vodlms")), "sql_schema: upper case");
    ok(!vodlms_sql_schema_valid(LIT("2vodlms")), "sql_schema: a digit first");
    ok(!vodlms_sql_schema_valid(LIT("vod-lms")), "sql_schema: '-'");
    ok(!vodlms_sql_schema_valid(LIT("vodlms.x")), "sql_schema: '.'");
    ok(!vodlms_sql_schema_valid(LIT("a\"b")), "sql_schema: a quote");
    ok(!vodlms_sql_schema_valid(LIT("pg_vodlms")), "sql_schema: pg_*");
    ok(vodlms_sql_schema_valid(LIT("pgvodlms")), "sql_schema: pgvodlms");
    ok(!vodlms_sql_schema_valid("vod\0lms", 7), "sql_schema: a NUL");
}


/* ---------------------------------------------------------- id_integer */

static void
test_id_integer(void)
{
    ok(vodlms_id_integer_valid(LIT("42"), 32), "id_integer: 42 is an int");
    ok(vodlms_id_integer_valid(LIT("0"), 32), "id_integer: 0");
    ok(vodlms_id_integer_valid(LIT("007"), 32),
       "id_integer: leading zeros, as int4in takes them");
    ok(vodlms_id_integer_valid(LIT("-5"), 32), "id_integer: negative");
    ok(vodlms_id_integer_valid(LIT("2147483647"), 32), "id_integer: INT_MAX");
    ok(!vodlms_id_integer_valid(LIT("2147483648"), 32),
       "id_integer: INT_MAX + 1 is out of range (22003)");
    ok(vodlms_id_integer_valid(LIT("-2147483648"), 32), "id_integer: INT_MIN");
    ok(!vodlms_id_integer_valid(LIT("-2147483649"), 32),
       "id_integer: INT_MIN - 1");
    ok(!vodlms_id_integer_valid(LIT("99999999999"), 32),
       "id_integer: 99999999999 is no int");
    ok(vodlms_id_integer_valid(LIT("99999999999"), 64),
       "id_integer: 99999999999 is a bigint");
    ok(vodlms_id_integer_valid(LIT("00000000000000000000000000000001"), 32),
       "id_integer: many leading zeros do not overflow");
    ok(vodlms_id_integer_valid(LIT("9223372036854775807"), 64),
       "id_integer: INT8_MAX");
    ok(!vodlms_id_integer_valid(LIT("9223372036854775808"), 64),
       "id_integer: INT8_MAX + 1");
    ok(vodlms_id_integer_valid(LIT("-9223372036854775808"), 64),
       "id_integer: INT8_MIN");
    ok(!vodlms_id_integer_valid(LIT("-9223372036854775809"), 64),
       "id_integer: INT8_MIN - 1");
    ok(!vodlms_id_integer_valid(LIT("18446744073709551616"), 64),
       "id_integer: 2^64 does not wrap");
    ok(!vodlms_id_integer_valid(LIT("184467440737095516160"), 64),
       "id_integer: 2^64 * 10 does not wrap");
    ok(!vodlms_id_integer_valid(LIT("abc"), 32), "id_integer: letters");
    ok(!vodlms_id_integer_valid(LIT("12a"), 32), "id_integer: trailing letter");
    ok(!vodlms_id_integer_valid(LIT("1_000"), 32),
       "id_integer: an underscore (PostgreSQL 16 syntax) is refused");
    ok(!vodlms_id_integer_valid(LIT("-"), 32), "id_integer: a lone minus");
    ok(!vodlms_id_integer_valid(LIT("--1"), 32), "id_integer: two minuses");
    ok(!vodlms_id_integer_valid(LIT("1-"), 32), "id_integer: minus after");
    ok(!vodlms_id_integer_valid(LIT("+1"), 32), "id_integer: plus");
    ok(!vodlms_id_integer_valid(LIT(" 1"), 32), "id_integer: space");
    ok(!vodlms_id_integer_valid(LIT(""), 32), "id_integer: empty");
    ok(!vodlms_id_integer_valid(NULL, 0, 32), "id_integer: NULL");
    ok(!vodlms_id_integer_valid(LIT("1"), 16),
       "id_integer: 16 bits unsupported");
    ok(!vodlms_id_integer_valid(LIT("1\0"), 32), "id_integer: NUL");
}


/* ------------------------------------------------------------- express */

/*
 * Known answers, made outside this code with
 *     printf %s SID | openssl dgst -sha256 -hmac SECRET -binary \
 *         | base64 | tr -d '='
 * (binary secret: -mac HMAC -macopt hexkey:610062; empty secret: Python's
 * hmac).  "hello"/"tobiiscool" is also the example in the README of the
 * npm cookie-signature package.
 */
#define KAT_SID      "kE3tXK0B1uYEr2Cx7HqHJfoOlrTNTeQW"
#define KAT_SIG      "AHT6tqjFftTfzBaQOCcivGr2MwA8YL/L9uG6Fdjk3Vo"
#define KAT_SIG_NEW  "z2e983GhcAvHvBbnhL6ypHK02YOhmfgIrejMLNMpugk"
#define KAT_SID2     "lzX-4AhvrUeS0w_5qMbzgHu-6cXhjL0w"
#define KAT_SIG2     "6La01DyS7AC5/nTgRh0XFy4/fJR2x63IJ5CvoSpGymI"
#define KAT_DOTS     "G8ReS2HiYVtvMBGFvZUGp5RaCauWFLUTjnnTm/EQ2aE"
#define KAT_X        "QbtlXSTVNejzRVcfI9s8EX1VrPh6zJMbOtCoEMLgPmM"
#define KAT_HELLO    "DGDUkGlIkCzPz+C0B064FNgHdEjox7ch8tOBGslZ5QI"
#define KAT_BINKEY   "unCR72DVj5CAqEW057UajWc+8VpB2TxTQV8xMsh5BgE"
#define KAT_LONGKEY  "P9V412Gk9nAwCektLooK6iKrmrUNStJQ3JXYw2new/U"
#define KAT_NOKEY    "Q1KybjP+DXaaiSKmuikAQQnwFojiasyebLNH5aWvxNo"

static const vodlms_cstr_t  kc_only[] = { { LIT("keyboard cat") } };
static const vodlms_cstr_t  kc_first[] = {
    { LIT("keyboard cat") }, { LIT("new-secret-2026") }, { LIT("x") }
};
static const vodlms_cstr_t  kc_last[] = {
    { LIT("new-secret-2026") }, { LIT("x") }, { LIT("keyboard cat") }
};
static const vodlms_cstr_t  kc_none[] = {
    { LIT("keyboard dog") }, { LIT("keyboard ca") }, { LIT("keyboard cat ") },
    { LIT("Keyboard cat") }, { LIT("") }
};


static void
unsign_at(const char *file, int line, const char *t, const char *val,
    size_t len, const vodlms_cstr_t *secrets, size_t n, vodlms_rc_t erc,
    const char *esid)
{
    char           *p;
    vodlms_rc_t     rc;
    vodlms_cstr_t   sid;

    p = xdup(val, len);
    sid.data = "junk";
    sid.len = 4;

    rc = vodlms_express_unsign(p, len, secrets, n, &sid);

    if (is_rc_at(rc, erc, file, line, "unsign: %s: rc", t)) {
        if (rc == VODLMS_OK) {
            tap_is_mem(sid.data, sid.len, esid, strlen(esid), file, line,
                       "unsign: %s: sid", t);
            tap_ok(sid.data == p + 2, file, line,
                   "unsign: %s: sid points into the value", t);
        } else {
            tap_ok(sid.data == NULL && sid.len == 0, file, line,
                   "unsign: %s: no sid on error", t);
        }
    }

    free(p);
}

#define UNSIGN(t, val, secrets, erc, esid)                                    \
    unsign_at(__FILE__, __LINE__, t, LIT(val), secrets,                       \
              sizeof(secrets) / sizeof(secrets[0]), erc, esid)


static void
sign_at(const char *file, int line, const char *sid, size_t sid_len,
    const char *secret, size_t secret_len, const char *expect)
{
    char         out[2 + VODLMS_SID_MAX + 1 + 64];
    size_t       n;
    vodlms_rc_t  rc;

    rc = vodlms_express_sign(sid, sid_len, secret, secret_len, out,
                             sizeof(out), &n);

    if (is_rc_at(rc, VODLMS_OK, file, line, "sign(%.*s, secret %zu bytes)",
                 (int) sid_len, sid, secret_len))
    {
        tap_is_mem(out, n, expect, strlen(expect), file, line,
                   "sign(%.*s): known answer", (int) sid_len, sid);
    }
}


static void
test_express(void)
{
    int            i, bad;
    char           buf[512], small[2 + 32 + 1 + 43];
    char          *p, *hdr;
    size_t         n, m, len;
    vodlms_rc_t    rc;
    vodlms_cstr_t  sid, v;

    static const char  b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    /* known answers, signing side */
    sign_at(__FILE__, __LINE__, LIT("hello"), LIT("tobiiscool"),
            "s:hello." KAT_HELLO);
    sign_at(__FILE__, __LINE__, LIT(KAT_SID), LIT("keyboard cat"),
            "s:" KAT_SID "." KAT_SIG);
    sign_at(__FILE__, __LINE__, LIT(KAT_SID), LIT("new-secret-2026"),
            "s:" KAT_SID "." KAT_SIG_NEW);
    sign_at(__FILE__, __LINE__, LIT(KAT_SID2), LIT("keyboard cat"),
            "s:" KAT_SID2 "." KAT_SIG2);
    sign_at(__FILE__, __LINE__, LIT("a.b.c"), LIT("keyboard cat"),
            "s:a.b.c." KAT_DOTS);
    sign_at(__FILE__, __LINE__, LIT("x"), LIT("keyboard cat"),
            "s:x." KAT_X);
    sign_at(__FILE__, __LINE__, LIT("hello"), LIT("a\0b"),
            "s:hello." KAT_BINKEY);
    sign_at(__FILE__, __LINE__, LIT("hello"), NULL, 0, "s:hello." KAT_NOKEY);
    sign_at(__FILE__, __LINE__, LIT("hello"), "", 0, "s:hello." KAT_NOKEY);

    p = xrepeat("k", 100, &n);
    sign_at(__FILE__, __LINE__, LIT("hello"), p, n, "s:hello." KAT_LONGKEY);
    free(p);

    /* known answers, checking side */
    UNSIGN("known answer", "s:" KAT_SID "." KAT_SIG, kc_only,
           VODLMS_OK, KAT_SID);
    UNSIGN("known answer 2", "s:" KAT_SID2 "." KAT_SIG2, kc_only,
           VODLMS_OK, KAT_SID2);
    UNSIGN("cookie-signature README", "s:hello." KAT_HELLO,
           ((const vodlms_cstr_t[]) { { LIT("tobiiscool") } }),
           VODLMS_OK, "hello");
    UNSIGN("binary secret", "s:hello." KAT_BINKEY,
           ((const vodlms_cstr_t[]) { { LIT("a\0b") } }), VODLMS_OK, "hello");
    UNSIGN("binary secret cut at its NUL", "s:hello." KAT_BINKEY,
           ((const vodlms_cstr_t[]) { { "a", 1 } }), VODLMS_EBADSIG, NULL);

    /* rotation: the matching secret anywhere in the list */
    UNSIGN("rotation: first of three", "s:" KAT_SID "." KAT_SIG, kc_first,
           VODLMS_OK, KAT_SID);
    UNSIGN("rotation: last of three", "s:" KAT_SID "." KAT_SIG, kc_last,
           VODLMS_OK, KAT_SID);
    UNSIGN("rotation: new secret, second", "s:" KAT_SID "." KAT_SIG_NEW,
           kc_first, VODLMS_OK, KAT_SID);
    UNSIGN("rotation: new secret, first", "s:" KAT_SID "." KAT_SIG_NEW,
           kc_last, VODLMS_OK, KAT_SID);
    UNSIGN("near-miss secrets", "s:" KAT_SID "." KAT_SIG, kc_none,
           VODLMS_EBADSIG, NULL);
    UNSIGN("new-secret cookie, old secret only", "s:" KAT_SID "." KAT_SIG_NEW,
           kc_only, VODLMS_EBADSIG, NULL);

    is_rc(vodlms_express_unsign(LIT("s:" KAT_SID "." KAT_SIG), NULL, 0, &sid),
          VODLMS_EBADSIG, "unsign: no secrets at all");

    /* forged and tampered */
    UNSIGN("signature of another sid", "s:" KAT_SID2 "." KAT_SIG, kc_last,
           VODLMS_EBADSIG, NULL);
    UNSIGN("signature of another sid, short sid", "s:x." KAT_SIG2,
           kc_only, VODLMS_EBADSIG, NULL);
    UNSIGN("sid with one char changed",
           "s:kE3tXK0B1uYEr2Cx7HqHJfoOlrTNTeQX." KAT_SIG, kc_only,
           VODLMS_EBADSIG, NULL);
    UNSIGN("sid with a char appended", "s:" KAT_SID "x." KAT_SIG, kc_only,
           VODLMS_EBADSIG, NULL);
    UNSIGN("signature with '=' padding", "s:" KAT_SID "." KAT_SIG "=",
           kc_only, VODLMS_EBADSIG, NULL);
    UNSIGN("signature one char short",
           "s:" KAT_SID ".AHT6tqjFftTfzBaQOCcivGr2MwA8YL/L9uG6Fdjk3V",
           kc_only, VODLMS_EBADSIG, NULL);
    UNSIGN("signature in base64url", "s:" KAT_SID2 "."
           "6La01DyS7AC5_nTgRh0XFy4_fJR2x63IJ5CvoSpGymI", kc_only,
           VODLMS_EBADSIG, NULL);
    UNSIGN("signature lower-cased", "s:x."
           "qbtlxstvnejzrvcfi9s8ex1vrph6zjmbotcoemlgpmm", kc_only,
           VODLMS_EBADSIG, NULL);

    /* every position of the signature, changed to every other character */
    len = sizeof("s:" KAT_SID "." KAT_SIG) - 1;
    p = xdup("s:" KAT_SID "." KAT_SIG, len);
    bad = 0;

    for (i = (int) (len - 43); i < (int) len; i++) {
        char  keep = p[i];

        for (m = 0; m < 64; m++) {
            if (b64[m] == keep) {
                continue;
            }

            p[i] = b64[m];
            bad += vodlms_express_unsign(p, len, kc_last, 3, &sid)
                   != VODLMS_EBADSIG;
        }

        p[i] = keep;
    }

    is_int(bad, 0, "unsign: each of 43 x 63 one-char signature changes "
           "is EBADSIG");
    is_rc(vodlms_express_unsign(p, len, kc_last, 3, &sid), VODLMS_OK,
          "unsign: the untouched value still verifies");
    free(p);

    /* not an express cookie, or broken */
    UNSIGN("no s: prefix", KAT_SID "." KAT_SIG, kc_only,
           VODLMS_ENOTSIGNED, NULL);
    UNSIGN("S: upper case", "S:" KAT_SID "." KAT_SIG, kc_only,
           VODLMS_ENOTSIGNED, NULL);
    UNSIGN("still percent-encoded", "s%3A" KAT_SID "." KAT_SIG, kc_only,
           VODLMS_ENOTSIGNED, NULL);
    UNSIGN("j: (a JSON cookie)", "j:{\"a\":1}", kc_only,
           VODLMS_ENOTSIGNED, NULL);
    UNSIGN("empty", "", kc_only, VODLMS_ENOTSIGNED, NULL);
    UNSIGN("just s", "s", kc_only, VODLMS_ENOTSIGNED, NULL);
    UNSIGN("just s:", "s:", kc_only, VODLMS_EMALFORMED, NULL);
    UNSIGN("no dot", "s:" KAT_SID, kc_only, VODLMS_EMALFORMED, NULL);
    UNSIGN("empty sid", "s:." KAT_SIG, kc_only, VODLMS_EMALFORMED, NULL);
    UNSIGN("empty signature", "s:" KAT_SID ".", kc_only,
           VODLMS_EMALFORMED, NULL);
    UNSIGN("only a dot", "s:.", kc_only, VODLMS_EMALFORMED, NULL);
    UNSIGN("sid with a space", "s:a b." KAT_SIG, kc_only,
           VODLMS_EMALFORMED, NULL);
    UNSIGN("sid with a tab", "s:a\tb." KAT_SIG, kc_only,
           VODLMS_EMALFORMED, NULL);
    UNSIGN("sid with a NUL", "s:a\0b." KAT_SIG, kc_only,
           VODLMS_EMALFORMED, NULL);
    UNSIGN("sid with a DEL", "s:a\x7f" "b." KAT_SIG, kc_only,
           VODLMS_EMALFORMED, NULL);
    UNSIGN("sid with CR LF", "s:a\r\nb." KAT_SIG, kc_only,
           VODLMS_EMALFORMED, NULL);

    /* the sid may contain dots: split at the last one */
    UNSIGN("sid with dots", "s:a.b.c." KAT_DOTS, kc_only, VODLMS_OK,
           "a.b.c");
    UNSIGN("split at the first dot would be wrong", "s:a.b.c." KAT_DOTS,
           ((const vodlms_cstr_t[]) { { LIT("nope") } }), VODLMS_EBADSIG,
           NULL);
    UNSIGN("dot inside the signature part", "s:x." KAT_X ".", kc_only,
           VODLMS_EMALFORMED, NULL);

    /* limits: VODLMS_SID_MAX, sign and unsign agree */
    p = xrepeat("A", VODLMS_SID_MAX + 1, &n);

    rc = vodlms_express_sign(p, VODLMS_SID_MAX, LIT("keyboard cat"), buf,
                             sizeof(buf), &m);
    is_rc(rc, VODLMS_OK, "sign: sid of VODLMS_SID_MAX bytes");
    is_int(m, 2 + VODLMS_SID_MAX + 1 + 43, "sign: output length");
    is_rc(vodlms_express_unsign(buf, m, kc_last, 3, &sid), VODLMS_OK,
          "unsign: sid of VODLMS_SID_MAX bytes");
    is_int(sid.len, VODLMS_SID_MAX, "unsign: long sid length");

    is_rc(vodlms_express_sign(p, VODLMS_SID_MAX + 1, LIT("keyboard cat"),
                              buf, sizeof(buf), &m),
          VODLMS_EMALFORMED, "sign: sid over VODLMS_SID_MAX");

    memcpy(buf, "s:", 2);
    memcpy(buf + 2, p, n);
    memcpy(buf + 2 + n, "." KAT_SIG, 44);
    is_rc(vodlms_express_unsign(buf, 2 + n + 44, kc_only, 1, &sid),
          VODLMS_EMALFORMED, "unsign: sid over VODLMS_SID_MAX");
    free(p);

    /* a huge value: no dot -> EMALFORMED, with dot -> sid too long */
    p = xrepeat("s", 1000000, &n);
    p[1] = ':';
    is_rc(vodlms_express_unsign(p, n, kc_only, 1, &sid), VODLMS_EMALFORMED,
          "unsign: 1 MB without a dot");
    p[n - 44] = '.';
    is_rc(vodlms_express_unsign(p, n, kc_only, 1, &sid), VODLMS_EMALFORMED,
          "unsign: 1 MB sid");
    free(p);

    /* sign: output buffer sizes, refused sids */
    rc = vodlms_express_sign(LIT(KAT_SID), LIT("keyboard cat"), small,
                             sizeof(small), &m);
    ok(rc == VODLMS_OK && m == sizeof(small)
       && memcmp(small, "s:" KAT_SID "." KAT_SIG, m) == 0,
       "sign: an output buffer of exactly the right size");
    m = 99;
    is_rc(vodlms_express_sign(LIT(KAT_SID), LIT("keyboard cat"), small,
                              sizeof(small) - 1, &m),
          VODLMS_ETOOLONG, "sign: an output buffer one byte short");
    is_int(m, 0, "sign: out_len 0 on error");
    is_rc(vodlms_express_sign("", 0, LIT("k"), buf, sizeof(buf), &m),
          VODLMS_EMALFORMED, "sign: empty sid");
    is_rc(vodlms_express_sign(LIT("a b"), LIT("k"), buf, sizeof(buf), &m),
          VODLMS_EMALFORMED, "sign: sid with a space");

    /* round trip over a spread of sids and secrets */
    bad = 0;

    for (i = 1; i <= VODLMS_SID_MAX; i += 7) {
        char  s[VODLMS_SID_MAX];

        for (n = 0; n < (size_t) i; n++) {
            s[n] = (char) (0x21 + (i * 31 + n * 7) % 94);
        }

        if (vodlms_express_sign(s, (size_t) i, kc_first[i % 3].data,
                                kc_first[i % 3].len, buf, sizeof(buf), &m)
            != VODLMS_OK
            || vodlms_express_unsign(buf, m, kc_last, 3, &sid) != VODLMS_OK
            || sid.len != (size_t) i || memcmp(sid.data, s, n) != 0
            || vodlms_express_unsign(buf, m, kc_none, 5, &sid)
               != VODLMS_EBADSIG)
        {
            bad++;
        }
    }

    is_int(bad, 0, "sign/unsign: round trip of 37 sids of 1..253 bytes");

    /* the whole path: Cookie header -> cookie -> percent-decode -> unsign */
    hdr = xdup(LIT("theme=dark; connect.sid=s%3A" KAT_SID "."
                   "AHT6tqjFftTfzBaQOCcivGr2MwA8YL%2FL9uG6Fdjk3Vo; lang=en"));
    len = sizeof("theme=dark; connect.sid=s%3A" KAT_SID "."
                 "AHT6tqjFftTfzBaQOCcivGr2MwA8YL%2FL9uG6Fdjk3Vo; lang=en") - 1;

    ok(vodlms_cookie_get(hdr, len, LIT("connect.sid"), &v) == VODLMS_OK
       && vodlms_pct_decode(v.data, v.len, buf, &n) == VODLMS_OK
       && vodlms_express_unsign(buf, n, kc_last, 3, &sid) == VODLMS_OK
       && sid.len == 32 && memcmp(sid.data, KAT_SID, 32) == 0,
       "express: Cookie header to sid, as a browser sends it");
    free(hdr);
}


/* ------------------------------------------------------------- expiry */

static void
expiry_at(const char *file, int line, const char *s, size_t len,
    vodlms_rc_t erc, int64_t eepoch)
{
    char         *p;
    int64_t       t;
    vodlms_rc_t   rc;

    p = xdup(s, len);
    t = 12345;
    rc = vodlms_parse_expiry(p, len, &t);

    if (is_rc_at(rc, erc, file, line, "expiry(\"%s\"): rc", s)
        && rc == VODLMS_OK)
    {
        tap_is_int(t, eepoch, file, line, "expiry(\"%s\"): epoch", s);
    }

    free(p);
}

#define EXPIRY(s, e)                                                          \
    expiry_at(__FILE__, __LINE__, LIT(s), VODLMS_OK, e)
#define EXPIRY_BAD(s)                                                         \
    expiry_at(__FILE__, __LINE__, LIT(s), VODLMS_EMALFORMED, 0)


/* timegm() is the oracle for days-from-civil and month lengths */
static void
test_expiry_oracle(void)
{
    int        y, mi, di, bad, checked, valid;
    char       s[40];
    int64_t    t;
    struct tm  tm;

    static const int  mons[] = { 1, 2, 3, 4, 6, 9, 12 };
    static const int  days[] = { 1, 28, 29, 30, 31, 32 };

    bad = 0;
    checked = 0;

    for (y = 0; y <= 9999; y += (y >= 1890 && y <= 2110) ? 1 : 3) {
        for (mi = 0; mi < (int) (sizeof(mons) / sizeof(mons[0])); mi++) {
            for (di = 0; di < (int) (sizeof(days) / sizeof(days[0])); di++) {
                memset(&tm, 0, sizeof(tm));
                tm.tm_year = y - 1900;
                tm.tm_mon = mons[mi] - 1;
                tm.tm_mday = days[di];
                tm.tm_hour = (y + di) % 24;
                tm.tm_min = (y * 7 + mi) % 60;
                tm.tm_sec = (y * 13 + di) % 60;

                snprintf(s, sizeof(s), "%04d-%02d-%02dT%02d:%02d:%02dZ", y,
                         mons[mi], days[di], tm.tm_hour, tm.tm_min,
                         tm.tm_sec);

                t = (int64_t) timegm(&tm);
                valid = tm.tm_mday == days[di];   /* timegm normalises */

                if (valid) {
                    int64_t  got;

                    bad += vodlms_parse_expiry(s, strlen(s), &got)
                               != VODLMS_OK || got != t;
                } else {
                    bad += vodlms_parse_expiry(s, strlen(s), &t)
                           != VODLMS_EMALFORMED;
                }

                checked++;
            }
        }
    }

    is_int(bad, 0, "expiry: %d dates of years 0000-9999 agree with timegm()",
           checked);
}


static void
test_expiry(void)
{
    char    *p;
    size_t   n;
    int64_t  t;

    /* numbers */
    EXPIRY("0", 0);
    EXPIRY("1", 1);
    EXPIRY("1795600800", 1795600800);
    EXPIRY("00042", 42);
    EXPIRY("100000000000", 100000000000LL);
    EXPIRY("100000000001", 100000000);
    EXPIRY("1795600800000", 1795600800);
    EXPIRY("1795600800999", 1795600800);
    EXPIRY("9223372036854775807", 9223372036854775LL);
    EXPIRY_BAD("9223372036854775808");
    EXPIRY_BAD("123456789012345678901234567890");
    EXPIRY_BAD("-1");
    EXPIRY_BAD("+1");
    EXPIRY_BAD(" 1");
    EXPIRY_BAD("1 ");
    EXPIRY_BAD("1.5");
    EXPIRY_BAD("1795600800.000");
    EXPIRY_BAD("1e9");
    EXPIRY_BAD("0x10");
    EXPIRY_BAD("12\0" "3");

    /* RFC 3339; expected values from `date -u -d ... +%s` */
    EXPIRY("2026-11-25T10:00:00Z", 1795600800);
    EXPIRY("2026-11-25T10:00:00.000Z", 1795600800);
    EXPIRY("2026-11-25T10:00:00.999999999Z", 1795600800);
    EXPIRY("2026-11-25T10:00:00.5Z", 1795600800);
    EXPIRY("2026-11-25t10:00:00z", 1795600800);
    EXPIRY("2026-11-25 10:00:00Z", 1795600800);
    EXPIRY("2026-11-25T10:00:00+00:00", 1795600800);
    EXPIRY("2026-11-25T10:00:00-00:00", 1795600800);
    EXPIRY("2026-11-25T10:00:00+01:00", 1795597200);
    EXPIRY("2026-11-25T10:00:00.123+01:00", 1795597200);
    EXPIRY("2026-11-25T10:00:00-05:30", 1795620600);
    EXPIRY("2026-11-25T10:00:00+23:59", 1795600800 - 23 * 3600 - 59 * 60);
    EXPIRY("2024-02-29T12:34:56Z", 1709210096);
    EXPIRY("1970-01-01T00:00:00Z", 0);
    EXPIRY("1969-12-31T23:59:59Z", -1);
    EXPIRY("0000-01-01T00:00:00Z", -62167219200LL);
    EXPIRY("9999-12-31T23:59:59Z", 253402300799LL);
    EXPIRY("2026-12-31T23:59:60Z", 1798761600);       /* leap second */
    EXPIRY("2000-02-29T00:00:00Z", 951782400);

    EXPIRY_BAD("");
    EXPIRY_BAD("garbage");
    EXPIRY_BAD("Tue Nov 25 2026 10:00:00 GMT+0000");
    EXPIRY_BAD("Tue, 25 Nov 2026 10:00:00 GMT");
    EXPIRY_BAD("2026-11-25");
    EXPIRY_BAD("2026-11-25T10:00Z");
    EXPIRY_BAD("2026-11-25T10:00:00");                /* no offset */
    EXPIRY_BAD("2026-11-25T10:00:00.000");
    EXPIRY_BAD("2026-11-25T10:00:00.Z");
    EXPIRY_BAD("2026-11-25T10:00:00,5Z");
    EXPIRY_BAD("2026-11-25T10:00:00ZZ");
    EXPIRY_BAD("2026-11-25T10:00:00Z ");
    EXPIRY_BAD(" 2026-11-25T10:00:00Z");
    EXPIRY_BAD("2026-11-25T10:00:00Z\0");
    EXPIRY_BAD("2026-11-25T10:00:00\0Z");
    EXPIRY_BAD("2026-11-25T10:00:00+01");
    EXPIRY_BAD("2026-11-25T10:00:00+0100");
    EXPIRY_BAD("2026-11-25T10:00:00+01:0");
    EXPIRY_BAD("2026-11-25T10:00:00+01:000");
    EXPIRY_BAD("2026-11-25T10:00:00+24:00");
    EXPIRY_BAD("2026-11-25T10:00:00+01:60");
    EXPIRY_BAD("2026-11-25T10:00:00+0a:00");
    EXPIRY_BAD("2026-11-25T10:00:00 +01:00");
    EXPIRY_BAD("2026-11-25T10:00:00UTC");
    EXPIRY_BAD("2026-11-25X10:00:00Z");
    EXPIRY_BAD("2026/11/25T10:00:00Z");
    EXPIRY_BAD("2026-1-25T10:00:00Z");
    EXPIRY_BAD("26-11-25T10:00:00Z");
    EXPIRY_BAD("+2026-11-25T10:00:00Z");
    EXPIRY_BAD("+275760-09-13T00:00:00.000Z");
    EXPIRY_BAD("-2026-11-25T10:00:00Z");
    EXPIRY_BAD("2026-13-01T00:00:00Z");
    EXPIRY_BAD("2026-00-10T00:00:00Z");
    EXPIRY_BAD("2026-01-32T00:00:00Z");
    EXPIRY_BAD("2026-01-00T00:00:00Z");
    EXPIRY_BAD("2026-04-31T00:00:00Z");
    EXPIRY_BAD("2023-02-29T00:00:00Z");
    EXPIRY_BAD("2100-02-29T00:00:00Z");
    EXPIRY_BAD("1900-02-29T00:00:00Z");
    EXPIRY_BAD("2026-11-25T24:00:00Z");
    EXPIRY_BAD("2026-11-25T99:00:00Z");
    EXPIRY_BAD("2026-11-25T23:60:00Z");
    EXPIRY_BAD("2026-11-25T23:59:61Z");
    EXPIRY_BAD("2026-11-25T1a:00:00Z");
    EXPIRY_BAD("2026-11-25T10:00:0aZ");
    EXPIRY_BAD("2026-11-25T10:00:-1Z");
    EXPIRY_BAD("2026-11-2 T10:00:00Z");
    EXPIRY_BAD("2026-11-25T10:00:00.1.2Z");
    EXPIRY_BAD("2026-11-25T10:00:00.-1Z");

    is_rc(vodlms_parse_expiry(NULL, 0, &t), VODLMS_EMALFORMED,
          "expiry: NULL");

    p = xrepeat("9", 1000000, &n);
    is_rc(vodlms_parse_expiry(p, n, &t), VODLMS_EMALFORMED,
          "expiry: a million digits");
    free(p);

    p = xrepeat("0", 1000000, &n);
    memcpy(p, "2026-11-25T10:00:00.", 20);
    p[n - 1] = 'Z';
    expiry_at(__FILE__, __LINE__, p, n, VODLMS_OK, 1795600800);
    free(p);

    test_expiry_oracle();
}


/* ------------------------------------------------------------ session */

typedef struct {
    vodlms_rc_t   rc;
    const char   *user;
    const char   *roles;
    int64_t       expires;
} sess_expect_t;


static void
sess_check(const char *file, int line, const char *t, vodlms_rc_t rc,
    const vodlms_session_t *s, const sess_expect_t *e)
{
    if (!is_rc_at(rc, e->rc, file, line, "%s: rc", t)) {
        return;
    }

    if (rc != VODLMS_OK) {
        tap_ok(s->user_id_len == 0 && s->user_id[0] == '\0'
               && s->roles_len == 0 && s->roles[0] == '\0'
               && s->expires == 0, file, line, "%s: zeroed on error", t);
        return;
    }

    tap_is_mem(s->user_id, s->user_id_len, e->user, strlen(e->user), file,
               line, "%s: user", t);
    tap_ok(s->user_id[s->user_id_len] == '\0', file, line,
           "%s: user NUL-terminated", t);
    tap_is_mem(s->roles, s->roles_len, e->roles, strlen(e->roles), file,
               line, "%s: roles", t);
    tap_ok(s->roles[s->roles_len] == '\0', file, line,
           "%s: roles NUL-terminated", t);
    tap_is_int(s->expires, e->expires, file, line, "%s: expires", t);
}


static void
json_at(const char *file, int line, const char *t, const char *json,
    size_t len, const char *upath, const char *rpath, const char *epath,
    sess_expect_t e)
{
    char              *p;
    vodlms_rc_t        rc;
    vodlms_session_t   s;

    p = xdup(json, len);
    memset(&s, 0xa5, sizeof(s));

    rc = vodlms_session_from_json(p, len, upath, rpath, epath, &s);
    sess_check(file, line, t, rc, &s, &e);

    free(p);
}

/* express-session's layout: passport.user, cookie.expires, roles */
#define JSON(t, json, erc, euser, eroles, eexp)                               \
    json_at(__FILE__, __LINE__, "json: " t, LIT(json), "passport.user",       \
            "roles", "cookie.expires",                                        \
            (sess_expect_t) { erc, euser, eroles, eexp })
#define JSON_BAD(t, json, erc)                                                \
    JSON(t, json, erc, NULL, NULL, 0)


static void
fields_at(const char *file, int line, const char *t, const char *user,
    size_t ulen, const char *role, size_t rlen, const char *exp,
    size_t elen, sess_expect_t e)
{
    char              *u, *r, *x;
    vodlms_rc_t        rc;
    vodlms_session_t   s;

    u = user ? xdup(user, ulen) : NULL;
    r = role ? xdup(role, rlen) : NULL;
    x = exp ? xdup(exp, elen) : NULL;
    memset(&s, 0xa5, sizeof(s));

    rc = vodlms_session_from_fields(u, ulen, r, rlen, x, elen, &s);
    sess_check(file, line, t, rc, &s, &e);

    free(u);
    free(r);
    free(x);
}

/* a NULL field comes with sizeof(NULL) - 1 as its length: it must not matter */
#define FIELDS(t, user, role, exp, erc, euser, eroles, eexp)                  \
    fields_at(__FILE__, __LINE__, "fields: " t, user, sizeof(user) - 1,       \
              role, sizeof(role) - 1, exp, sizeof(exp) - 1,                   \
              (sess_expect_t) { erc, euser, eroles, eexp })

#define EXPRESS_DOC(user)                                                     \
    "{\"cookie\":{\"originalMaxAge\":86400000,"                               \
    "\"expires\":\"2026-11-25T10:00:00.000Z\",\"secure\":true,"               \
    "\"httpOnly\":true,\"path\":\"/\",\"sameSite\":\"lax\"},"                 \
    "\"passport\":{\"user\":" user "}}"


static void
test_session_json(void)
{
    int               i;
    char             *p, *doc;
    size_t            n, m;
    vodlms_rc_t       rc;
    vodlms_session_t  s;

    /* what connect-redis stores for a passport login */
    JSON("express-session, integer user", EXPRESS_DOC("42"),
         VODLMS_OK, "42", "", 1795600800);
    JSON("express-session, string user", EXPRESS_DOC("\"u_8f3a\""),
         VODLMS_OK, "u_8f3a", "", 1795600800);
    JSON("express-session, UUID user",
         EXPRESS_DOC("\"0b5e8a9c-1d2f-4e3a-9b7c-6d5e4f3a2b1c\""),
         VODLMS_OK, "0b5e8a9c-1d2f-4e3a-9b7c-6d5e4f3a2b1c", "", 1795600800);
    JSON("browser-session cookie (expires null)",
         "{\"cookie\":{\"originalMaxAge\":null,\"expires\":null},"
         "\"passport\":{\"user\":7}}", VODLMS_OK, "7", "", 0);
    JSON("no cookie object", "{\"passport\":{\"user\":7}}",
         VODLMS_OK, "7", "", 0);
    JSON("whitespace around", " \n\t{ \"passport\" : { \"user\" : 7 } }\n ",
         VODLMS_OK, "7", "", 0);

    /* user id types */
    JSON("user 0", EXPRESS_DOC("0"), VODLMS_OK, "0", "", 1795600800);
    JSON("negative user", EXPRESS_DOC("-7"), VODLMS_OK, "-7", "", 1795600800);
    JSON("largest integer", EXPRESS_DOC("9223372036854775807"), VODLMS_OK,
         "9223372036854775807", "", 1795600800);
    JSON("smallest integer", EXPRESS_DOC("-9223372036854775808"), VODLMS_OK,
         "-9223372036854775808", "", 1795600800);
    JSON_BAD("integer beyond int64", EXPRESS_DOC("9223372036854775808"),
             VODLMS_EMALFORMED);
    JSON_BAD("real user", EXPRESS_DOC("42.0"), VODLMS_ETYPE);
    JSON_BAD("exponent user", EXPRESS_DOC("4e1"), VODLMS_ETYPE);
    JSON_BAD("boolean user", EXPRESS_DOC("true"), VODLMS_ETYPE);
    JSON_BAD("object user", EXPRESS_DOC("{\"id\":1}"), VODLMS_ETYPE);
    JSON_BAD("array user", EXPRESS_DOC("[1]"), VODLMS_ETYPE);
    JSON_BAD("empty string user", EXPRESS_DOC("\"\""), VODLMS_ETYPE);
    JSON_BAD("user with LF", EXPRESS_DOC("\"a\\nb\""), VODLMS_ETYPE);
    JSON_BAD("user with ESC", EXPRESS_DOC("\"a\\u001bb\""), VODLMS_ETYPE);
    JSON_BAD("user with DEL", EXPRESS_DOC("\"a\\u007fb\""), VODLMS_ETYPE);
    JSON_BAD("user with \\u0000", EXPRESS_DOC("\"a\\u0000b\""),
             VODLMS_EMALFORMED);
    JSON_BAD("null user", EXPRESS_DOC("null"), VODLMS_ENOTFOUND);
    JSON("UTF-8 user", EXPRESS_DOC("\"J\\u00fcrgen \xe2\x9c\x93\""),
         VODLMS_OK, "J\xc3\xbcrgen \xe2\x9c\x93", "", 1795600800);
    JSON_BAD("invalid UTF-8 in the document", EXPRESS_DOC("\"a\xff\""),
             VODLMS_EMALFORMED);

    doc = malloc(200 + VODLMS_USER_ID_MAX);
    p = xrepeat("u", VODLMS_USER_ID_MAX + 1, &n);
    n = (size_t) sprintf(doc, "{\"passport\":{\"user\":\"%.*s\"}}",
                         VODLMS_USER_ID_MAX, p);
    json_at(__FILE__, __LINE__, "json: user of VODLMS_USER_ID_MAX bytes", doc,
            n, "passport.user", NULL, NULL,
            (sess_expect_t) { VODLMS_OK, p + 1, "", 0 });
    n = (size_t) sprintf(doc, "{\"passport\":{\"user\":\"%s\"}}", p);
    json_at(__FILE__, __LINE__, "json: user one byte too long", doc, n,
            "passport.user", NULL, NULL,
            (sess_expect_t) { VODLMS_ETOOLONG, NULL, NULL, 0 });
    free(p);
    free(doc);

    /* the path */
    JSON_BAD("empty object", "{}", VODLMS_ENOTFOUND);
    JSON_BAD("passport without user", "{\"passport\":{}}", VODLMS_ENOTFOUND);
    JSON_BAD("passport null", "{\"passport\":null}", VODLMS_ENOTFOUND);
    JSON_BAD("passport a string", "{\"passport\":\"7\"}", VODLMS_ETYPE);
    JSON_BAD("passport an array", "{\"passport\":[{\"user\":7}]}",
             VODLMS_ETYPE);
    JSON_BAD("passport a number", "{\"passport\":7}", VODLMS_ETYPE);

    /*
     * Absent (anonymous, logged out) and unusable (a wrong type) must stay
     * apart: the gate answers the first as "no session" at info, the
     * second as invalid_session_data at error (t/030 TESTS 18-20).
     */
    JSON_BAD("express, saveUninitialized: only the cookie",
             "{\"cookie\":{\"originalMaxAge\":null,\"expires\":null,"
             "\"httpOnly\":true,\"path\":\"/\"}}", VODLMS_ENOTFOUND);
    JSON_BAD("passport after logout: an empty object",
             "{\"cookie\":{\"path\":\"/\"},\"passport\":{}}",
             VODLMS_ENOTFOUND);
    JSON_BAD("passport.user null", EXPRESS_DOC("null"), VODLMS_ENOTFOUND);
    JSON_BAD("passport.user an object", EXPRESS_DOC("{\"id\":7}"),
             VODLMS_ETYPE);
    JSON_BAD("passport.user a boolean", EXPRESS_DOC("true"), VODLMS_ETYPE);
    JSON_BAD("user at the top, not under passport", "{\"user\":7}",
             VODLMS_ENOTFOUND);
    JSON_BAD("key with a dot is not a path", "{\"passport.user\":7}",
             VODLMS_ENOTFOUND);
    JSON_BAD("Passport is another key", "{\"Passport\":{\"user\":7}}",
             VODLMS_ENOTFOUND);

    json_at(__FILE__, __LINE__, "json: top-level path", LIT("{\"uid\":5}"),
            "uid", NULL, NULL, (sess_expect_t) { VODLMS_OK, "5", "", 0 });
    json_at(__FILE__, __LINE__, "json: deep path",
            LIT("{\"a\":{\"b\":{\"c\":{\"d\":\"x\"}}}}"), "a.b.c.d", NULL,
            NULL, (sess_expect_t) { VODLMS_OK, "x", "", 0 });
    json_at(__FILE__, __LINE__, "json: deep path, missing last",
            LIT("{\"a\":{\"b\":{\"c\":{}}}}"), "a.b.c.d", NULL, NULL,
            (sess_expect_t) { VODLMS_ENOTFOUND, NULL, NULL, 0 });
    json_at(__FILE__, __LINE__, "json: UTF-8 key",
            LIT("{\"\xc3\xbc\":{\"id\":3}}"), "\xc3\xbc.id", NULL, NULL,
            (sess_expect_t) { VODLMS_OK, "3", "", 0 });
    json_at(__FILE__, __LINE__, "json: empty path component",
            LIT("{\"a\":{\"\":{\"b\":1}}}"), "a..b", NULL, NULL,
            (sess_expect_t) { VODLMS_EINTERNAL, NULL, NULL, 0 });
    json_at(__FILE__, __LINE__, "json: leading dot", LIT("{\"a\":1}"), ".a",
            NULL, NULL, (sess_expect_t) { VODLMS_EINTERNAL, NULL, NULL, 0 });
    json_at(__FILE__, __LINE__, "json: trailing dot", LIT("{\"a\":1}"), "a.",
            NULL, NULL, (sess_expect_t) { VODLMS_EINTERNAL, NULL, NULL, 0 });
    json_at(__FILE__, __LINE__, "json: empty path", LIT("{\"a\":1}"), "",
            NULL, NULL, (sess_expect_t) { VODLMS_EINTERNAL, NULL, NULL, 0 });
    json_at(__FILE__, __LINE__, "json: NULL user path", LIT("{\"a\":1}"),
            NULL, NULL, NULL,
            (sess_expect_t) { VODLMS_EINTERNAL, NULL, NULL, 0 });

    /* broken documents */
    JSON_BAD("empty", "", VODLMS_EMALFORMED);
    JSON_BAD("whitespace only", "  ", VODLMS_EMALFORMED);
    JSON_BAD("open brace", "{", VODLMS_EMALFORMED);
    JSON_BAD("trailing comma", "{\"passport\":{\"user\":7},}",
             VODLMS_EMALFORMED);
    JSON_BAD("single quotes", "{'passport':{'user':7}}", VODLMS_EMALFORMED);
    JSON_BAD("unquoted key", "{passport:{user:7}}", VODLMS_EMALFORMED);
    JSON_BAD("trailing garbage", "{\"passport\":{\"user\":7}} x",
             VODLMS_EMALFORMED);
    JSON_BAD("two documents", "{\"passport\":{\"user\":7}}{}",
             VODLMS_EMALFORMED);
    JSON_BAD("NUL after the document", "{\"passport\":{\"user\":7}}\0",
             VODLMS_EMALFORMED);
    JSON_BAD("NUL after a number (jansson would skip it)",
             "{\"passport\":{\"user\":7\0}}", VODLMS_EMALFORMED);
    JSON_BAD("NUL after a number in an array",
             "{\"passport\":{\"user\":7},\"a\":[1\0]}", VODLMS_EMALFORMED);
    JSON_BAD("NUL as whitespace", "{\"passport\":\0{\"user\":7}}",
             VODLMS_EMALFORMED);
    JSON_BAD("cut short", "{\"passport\":{\"user\":7", VODLMS_EMALFORMED);
    JSON_BAD("top-level array", "[{\"passport\":{\"user\":7}}]",
             VODLMS_EMALFORMED);
    JSON_BAD("top-level string", "\"7\"", VODLMS_EMALFORMED);
    JSON_BAD("top-level number", "7", VODLMS_EMALFORMED);
    JSON_BAD("top-level null", "null", VODLMS_EMALFORMED);
    JSON_BAD("not JSON at all", "a:1:{s:4:\"user\";i:7;}", VODLMS_EMALFORMED);

    /* duplicates are refused wherever they are */
    JSON_BAD("duplicate user",
             "{\"passport\":{\"user\":1,\"user\":2}}", VODLMS_EMALFORMED);
    JSON_BAD("duplicate passport",
             "{\"passport\":{\"user\":1},\"passport\":{\"user\":2}}",
             VODLMS_EMALFORMED);
    JSON_BAD("duplicate elsewhere",
             "{\"passport\":{\"user\":1},\"x\":{\"a\":1,\"a\":1}}",
             VODLMS_EMALFORMED);
    JSON_BAD("duplicate by escape",
             "{\"passport\":{\"user\":1,\"us\\u0065r\":2}}",
             VODLMS_EMALFORMED);

    json_at(__FILE__, __LINE__, "json: NULL document", NULL, 0,
            "passport.user", NULL, NULL,
            (sess_expect_t) { VODLMS_EMALFORMED, NULL, NULL, 0 });

    /* deep nesting must fail, not overflow the stack */
    n = 300000;
    m = sizeof("{\"passport\":{\"user\":7},\"x\":") - 1;
    doc = malloc(n + m + 1);
    memcpy(doc, "{\"passport\":{\"user\":7},\"x\":", m);
    memset(doc + m, '[', n);
    doc[m + n] = '}';
    json_at(__FILE__, __LINE__, "json: 300000 nested arrays", doc, m + n + 1,
            "passport.user", NULL, NULL,
            (sess_expect_t) { VODLMS_EMALFORMED, NULL, NULL, 0 });
    free(doc);

    /* a big but valid document */
    p = xrepeat("{\"k\":[1,2,3,\"xyz\"]},", 50000, &n);
    doc = malloc(n + 64);
    n = (size_t) sprintf(doc, "{\"pad\":[%.*s],\"passport\":{\"user\":9}}",
                         (int) n - 1, p);
    json_at(__FILE__, __LINE__, "json: 1 MB document", doc, n,
            "passport.user", NULL, NULL,
            (sess_expect_t) { VODLMS_OK, "9", "", 0 });
    free(doc);
    free(p);

    /* roles */
    JSON("roles array", "{\"passport\":{\"user\":1},"
         "\"roles\":[\"student\",\"teacher\"]}", VODLMS_OK, "1",
         "student,teacher", 0);
    JSON("roles string", "{\"passport\":{\"user\":1},\"roles\":\"admin\"}",
         VODLMS_OK, "1", "admin", 0);
    JSON("roles with all allowed characters", "{\"passport\":{\"user\":1},"
         "\"roles\":[\"Az09_.:-\"]}", VODLMS_OK, "1", "Az09_.:-", 0);
    JSON("roles empty array", "{\"passport\":{\"user\":1},\"roles\":[]}",
         VODLMS_OK, "1", "", 0);
    JSON("roles null", "{\"passport\":{\"user\":1},\"roles\":null}",
         VODLMS_OK, "1", "", 0);
    JSON_BAD("roles empty string",
             "{\"passport\":{\"user\":1},\"roles\":\"\"}", VODLMS_ETYPE);
    JSON_BAD("roles comma list in one string",
             "{\"passport\":{\"user\":1},\"roles\":\"a,b\"}", VODLMS_ETYPE);
    JSON_BAD("role with a space",
             "{\"passport\":{\"user\":1},\"roles\":[\"a b\"]}", VODLMS_ETYPE);
    JSON_BAD("role with a comma",
             "{\"passport\":{\"user\":1},\"roles\":[\"a,admin\"]}",
             VODLMS_ETYPE);
    JSON_BAD("roles number", "{\"passport\":{\"user\":1},\"roles\":5}",
             VODLMS_ETYPE);
    JSON_BAD("roles object", "{\"passport\":{\"user\":1},\"roles\":{}}",
             VODLMS_ETYPE);
    JSON_BAD("roles array of numbers",
             "{\"passport\":{\"user\":1},\"roles\":[\"a\",1]}", VODLMS_ETYPE);
    JSON_BAD("roles nested array",
             "{\"passport\":{\"user\":1},\"roles\":[[\"a\"]]}", VODLMS_ETYPE);
    JSON_BAD("roles array with null",
             "{\"passport\":{\"user\":1},\"roles\":[null]}", VODLMS_ETYPE);
    JSON_BAD("a missing user wins over bad roles",
             "{\"roles\":5}", VODLMS_ENOTFOUND);

    /* roles at the limit: 64 x "abc" + 63 commas = 255, then 259 */
    doc = malloc(2000);
    p = xrepeat("\"abc\",", 65, &n);
    n = (size_t) sprintf(doc, "{\"u\":1,\"r\":[%.*s\"abcd\"]}", 6 * 63, p);
    memset(&s, 0, sizeof(s));
    rc = vodlms_session_from_json(doc, n, "u", "r", NULL, &s);
    ok(rc == VODLMS_OK && s.roles_len == 256
       && strlen(s.roles) == 256 && memcmp(s.roles + 252, "abcd", 4) == 0,
       "json: roles of exactly VODLMS_ROLES_MAX bytes");
    n = (size_t) sprintf(doc, "{\"u\":1,\"r\":[%.*s\"abcde\"]}", 6 * 63, p);
    is_rc(vodlms_session_from_json(doc, n, "u", "r", NULL, &s),
          VODLMS_ETOOLONG, "json: roles one byte too long");
    n = (size_t) sprintf(doc, "{\"u\":1,\"r\":[%.*s\"abcd\",\"x\"]}",
                         6 * 63, p);
    is_rc(vodlms_session_from_json(doc, n, "u", "r", NULL, &s),
          VODLMS_ETOOLONG, "json: a role after VODLMS_ROLES_MAX bytes");
    n = (size_t) sprintf(doc, "{\"u\":1,\"r\":[%s\"x\"]}", p);
    is_rc(vodlms_session_from_json(doc, n, "u", "r", NULL, &s),
          VODLMS_ETOOLONG, "json: 66 roles");
    free(p);
    free(doc);

    /* expiry */
    JSON("expires in seconds",
         "{\"passport\":{\"user\":1},\"cookie\":{\"expires\":1795600800}}",
         VODLMS_OK, "1", "", 1795600800);
    JSON("expires in milliseconds",
         "{\"passport\":{\"user\":1},\"cookie\":{\"expires\":1795600800123}}",
         VODLMS_OK, "1", "", 1795600800);
    JSON("expires as a string of digits",
         "{\"passport\":{\"user\":1},\"cookie\":{\"expires\":\"1795600800\"}}",
         VODLMS_OK, "1", "", 1795600800);
    JSON("expires with an offset",
         "{\"passport\":{\"user\":1},\"cookie\":{\"expires\":"
         "\"2026-11-25T10:00:00.000-05:30\"}}",
         VODLMS_OK, "1", "", 1795620600);
    JSON("expires 0 is long expired, not none",
         "{\"passport\":{\"user\":1},\"cookie\":{\"expires\":0}}",
         VODLMS_OK, "1", "", 1);
    JSON("expires 1969 is long expired, not none",
         "{\"passport\":{\"user\":1},\"cookie\":{\"expires\":"
         "\"1969-07-20T20:17:40Z\"}}", VODLMS_OK, "1", "", 1);
    JSON("expires absent (cookie without it)",
         "{\"passport\":{\"user\":1},\"cookie\":{}}", VODLMS_OK, "1", "", 0);
    JSON_BAD("expires garbage",
             "{\"passport\":{\"user\":1},\"cookie\":{\"expires\":\"soon\"}}",
             VODLMS_EMALFORMED);
    JSON_BAD("expires month 13",
             "{\"passport\":{\"user\":1},\"cookie\":{\"expires\":"
             "\"2026-13-25T10:00:00.000Z\"}}", VODLMS_EMALFORMED);
    JSON_BAD("expires negative",
             "{\"passport\":{\"user\":1},\"cookie\":{\"expires\":-1}}",
             VODLMS_EMALFORMED);
    JSON_BAD("expires real",
             "{\"passport\":{\"user\":1},\"cookie\":{\"expires\":1.7956e12}}",
             VODLMS_ETYPE);
    JSON_BAD("expires boolean",
             "{\"passport\":{\"user\":1},\"cookie\":{\"expires\":true}}",
             VODLMS_ETYPE);
    JSON_BAD("expires object",
             "{\"passport\":{\"user\":1},\"cookie\":{\"expires\":{}}}",
             VODLMS_ETYPE);
    JSON_BAD("cookie is a string",
             "{\"passport\":{\"user\":1},\"cookie\":\"x\"}", VODLMS_ETYPE);

    /* NULL paths: the field is not looked at */
    json_at(__FILE__, __LINE__, "json: role and expiry paths NULL",
            LIT(EXPRESS_DOC("1")), "passport.user", NULL, NULL,
            (sess_expect_t) { VODLMS_OK, "1", "", 0 });
    json_at(__FILE__, __LINE__, "json: NULL paths ignore bad fields",
            LIT("{\"u\":1,\"r\":5,\"e\":true}"), "u", NULL, NULL,
            (sess_expect_t) { VODLMS_OK, "1", "", 0 });
    json_at(__FILE__, __LINE__, "json: same doc, paths set",
            LIT("{\"u\":1,\"r\":5,\"e\":true}"), "u", "r", "e",
            (sess_expect_t) { VODLMS_ETYPE, NULL, NULL, 0 });

    /* the parser must not keep anything: many calls, then valgrind */
    rc = VODLMS_OK;

    for (i = 0; i < 2000 && rc == VODLMS_OK; i++) {
        rc = vodlms_session_from_json(LIT(EXPRESS_DOC("42")),
                                      "passport.user", "roles",
                                      "cookie.expires", &s);
    }

    is_rc(rc, VODLMS_OK, "json: 2000 calls in a row");
}


static void
test_session_fields(void)
{
    char              *p;
    size_t             n;
    vodlms_session_t   s;

    FIELDS("user only", "42", NULL, NULL, VODLMS_OK, "42", "", 0);
    FIELDS("all three", "42", "admin", "1795600800", VODLMS_OK, "42",
           "admin", 1795600800);
    FIELDS("expiry ms", "42", NULL, "1795600800123", VODLMS_OK, "42", "",
           1795600800);
    FIELDS("expiry ISO", "42", NULL, "2026-11-25T10:00:00+01:00", VODLMS_OK,
           "42", "", 1795597200);
    FIELDS("expiry 0 is long expired", "42", NULL, "0", VODLMS_OK, "42", "",
           1);
    FIELDS("expiry empty", "42", NULL, "", VODLMS_EMALFORMED, NULL, NULL, 0);
    FIELDS("expiry garbage", "42", NULL, "tomorrow", VODLMS_EMALFORMED,
           NULL, NULL, 0);
    FIELDS("expiry day 32", "42", NULL, "2026-01-32T00:00:00Z",
           VODLMS_EMALFORMED, NULL, NULL, 0);

    FIELDS("no user", NULL, "admin", "1", VODLMS_ENOTFOUND, NULL, NULL, 0);
    FIELDS("empty user", "", NULL, NULL, VODLMS_ETYPE, NULL, NULL, 0);
    FIELDS("user with LF", "4\n2", NULL, NULL, VODLMS_ETYPE, NULL, NULL, 0);
    FIELDS("user with NUL", "4\0" "2", NULL, NULL, VODLMS_ETYPE, NULL, NULL,
           0);
    FIELDS("user with DEL", "4\x7f", NULL, NULL, VODLMS_ETYPE, NULL, NULL, 0);
    FIELDS("user UTF-8", "J\xc3\xbcrgen \xf0\x9f\x8e\x93", NULL, NULL,
           VODLMS_OK, "J\xc3\xbcrgen \xf0\x9f\x8e\x93", "", 0);
    FIELDS("user with spaces is kept as is", " a b ", NULL, NULL, VODLMS_OK,
           " a b ", "", 0);
    FIELDS("user invalid UTF-8", "a\xff", NULL, NULL, VODLMS_ETYPE, NULL,
           NULL, 0);
    FIELDS("user overlong UTF-8 '/'", "\xc0\xaf", NULL, NULL, VODLMS_ETYPE,
           NULL, NULL, 0);
    FIELDS("user overlong 3-byte", "\xe0\x80\xaf", NULL, NULL, VODLMS_ETYPE,
           NULL, NULL, 0);
    FIELDS("user UTF-16 surrogate", "\xed\xa0\x80", NULL, NULL, VODLMS_ETYPE,
           NULL, NULL, 0);
    FIELDS("user beyond U+10FFFF", "\xf4\x90\x80\x80", NULL, NULL,
           VODLMS_ETYPE, NULL, NULL, 0);
    FIELDS("user truncated UTF-8", "ab\xe2\x82", NULL, NULL, VODLMS_ETYPE,
           NULL, NULL, 0);
    FIELDS("user lone continuation byte", "a\x80", NULL, NULL, VODLMS_ETYPE,
           NULL, NULL, 0);

    p = xrepeat("7", VODLMS_USER_ID_MAX + 1, &n);
    fields_at(__FILE__, __LINE__, "fields: user of VODLMS_USER_ID_MAX bytes",
              p, VODLMS_USER_ID_MAX, NULL, 0, NULL, 0,
              (sess_expect_t) { VODLMS_OK, p + 1, "", 0 });
    fields_at(__FILE__, __LINE__, "fields: user one byte too long", p, n,
              NULL, 0, NULL, 0,
              (sess_expect_t) { VODLMS_ETOOLONG, NULL, NULL, 0 });
    free(p);

    FIELDS("roles comma list", "1", "admin,teacher", NULL, VODLMS_OK, "1",
           "admin,teacher", 0);
    FIELDS("roles space list", "1", "admin teacher", NULL, VODLMS_OK, "1",
           "admin,teacher", 0);
    FIELDS("roles messy list", "1", " admin ,, \tteacher ,", NULL, VODLMS_OK,
           "1", "admin,teacher", 0);
    FIELDS("roles empty", "1", "", NULL, VODLMS_OK, "1", "", 0);
    FIELDS("roles only separators", "1", " , ", NULL, VODLMS_OK, "1", "", 0);
    FIELDS("roles JSON array", "1", "[\"a\",\"b:c\"]", NULL, VODLMS_OK, "1",
           "a,b:c", 0);
    FIELDS("roles JSON array after spaces", "1", "  [\"a\"] ", NULL,
           VODLMS_OK, "1", "a", 0);
    FIELDS("roles JSON empty array", "1", "[]", NULL, VODLMS_OK, "1", "", 0);
    FIELDS("roles JSON array of numbers", "1", "[1]", NULL, VODLMS_ETYPE,
           NULL, NULL, 0);
    FIELDS("roles broken JSON array", "1", "[\"a\"", NULL, VODLMS_EMALFORMED,
           NULL, NULL, 0);
    FIELDS("roles JSON array with duplicate keys inside", "1",
           "[{\"a\":1,\"a\":2}]", NULL, VODLMS_EMALFORMED, NULL, NULL, 0);
    FIELDS("roles JSON array with a NUL", "1", "[1\0]", NULL,
           VODLMS_EMALFORMED, NULL, NULL, 0);
    FIELDS("roles JSON object", "1", "{\"a\":1}", NULL, VODLMS_ETYPE, NULL,
           NULL, 0);
    FIELDS("role with a semicolon", "1", "ad;min", NULL, VODLMS_ETYPE, NULL,
           NULL, 0);
    FIELDS("role with a NUL", "1", "ad\0min", NULL, VODLMS_ETYPE, NULL, NULL,
           0);
    FIELDS("role with a LF", "1", "admin\nx", NULL, VODLMS_ETYPE, NULL, NULL,
           0);

    p = xrepeat("ab,", 100, &n);
    is_rc(vodlms_session_from_fields(LIT("1"), p, 255, NULL, 0, &s),
          VODLMS_OK, "fields: roles of 255 bytes");
    is_int(s.roles_len, 254, "fields: ... joined without the trailing comma");
    memcpy(p + 254, "cd,x", 4);
    is_rc(vodlms_session_from_fields(LIT("1"), p, 256, NULL, 0, &s),
          VODLMS_OK, "fields: roles of exactly VODLMS_ROLES_MAX bytes");
    is_int(s.roles_len, 256, "fields: ... all of them");
    is_rc(vodlms_session_from_fields(LIT("1"), p, 258, NULL, 0, &s),
          VODLMS_ETOOLONG, "fields: a role after VODLMS_ROLES_MAX bytes");
    is_rc(vodlms_session_from_fields(LIT("1"), p, n, NULL, 0, &s),
          VODLMS_ETOOLONG, "fields: 100 roles");
    free(p);
}


/* ------------------------------------------------------------ beacons */

static vodlms_rc_t
beacon(const char *json, vodlms_beacon_t *b, const char **why)
{
    return vodlms_beacon_parse(json, strlen(json), 5.0, b, why);
}


static void
test_beacon(void)
{
    int               i;
    char              big[2048];
    const char       *why;
    vodlms_beacon_t   b;

    static const struct { const char *json; const char *why; } bad[] = {
        { "", "malformed_json" },
        { "{\"videoId\":\"v1\",", "malformed_json" },
        { "[1,2]", "malformed_json" },
        { "{\"videoId\":\"v1\",\"videoId\":\"v2\",\"currentTime\":1,\"duration\":9}",
          "malformed_json" },
        { "{\"currentTime\":1,\"duration\":9}", "bad_video_id" },
        { "{\"videoId\":\"../x\",\"currentTime\":1,\"duration\":9}", "bad_video_id" },
        { "{\"videoId\":\"a'b\",\"currentTime\":1,\"duration\":9}", "bad_video_id" },
        { "{\"videoId\":42.0,\"currentTime\":1,\"duration\":9}", "bad_video_id" },
        { "{\"videoId\":4e1,\"currentTime\":1,\"duration\":9}", "bad_video_id" },
        { "{\"videoId\":true,\"currentTime\":1,\"duration\":9}", "bad_video_id" },
        { "{\"videoId\":99999999999999999999,\"currentTime\":1,\"duration\":9}", "malformed_json" },
        { "{\"videoId\":\"\",\"currentTime\":1,\"duration\":9}", "bad_video_id" },
        { "{\"videoId\":\"v1\",\"currentTime\":1}", "bad_duration" },
        { "{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":0}", "bad_duration" },
        { "{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":-5}", "bad_duration" },
        { "{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":1e400}", "malformed_json" },
        { "{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":\"9\"}", "bad_duration" },
        { "{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9e9}", "bad_duration" },
        { "{\"videoId\":\"v1\",\"duration\":9}", "bad_current_time" },
        { "{\"videoId\":\"v1\",\"currentTime\":null,\"duration\":9}", "bad_current_time" },
        { "{\"videoId\":\"v1\",\"currentTime\":-0.5,\"duration\":9}", "position_out_of_range" },
        { "{\"videoId\":\"v1\",\"currentTime\":14.5,\"duration\":9}", "position_out_of_range" },
        { "{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9,\"event\":\"seek\"}", "bad_event" },
        { "{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9,\"event\":3}", "bad_event" },
        { "{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9,\"playbackId\":\"0123456789abcdef0123456789ABCDEF\"}", "bad_playback_id" },
        { "{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9,\"playbackId\":\"0123456789abcdef0123456789abcde\"}", "bad_playback_id" },
        { "{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9,\"playbackId\":\"0123456789abcdef0123456789abcdef0\"}", "bad_playback_id" },
        { "{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9,\"playbackId\":\"0123456789abcdef0123456789abcdeg\"}", "bad_playback_id" },
        { "{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9,\"playbackId\":null}", "bad_playback_id" },
        { "{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9,\"playbackId\":7}", "bad_playback_id" },
        { "{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9,\"playbackId\":\"\"}", "bad_playback_id" },
    };

    for (i = 0; i < (int) (sizeof(bad) / sizeof(bad[0])); i++) {
        why = NULL;
        ok(beacon(bad[i].json, &b, &why) != VODLMS_OK
           && why != NULL && strcmp(why, bad[i].why) == 0,
           "beacon: %s -> %s (got %s)", bad[i].json, bad[i].why,
           why ? why : "OK");
    }

    /* a playbackId (vodlms_streams) is read when there, absent otherwise */
    why = "unset";
    ok(beacon("{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9,"
              "\"playbackId\":\"0123456789abcdef0123456789abcdef\"}", &b, &why)
       == VODLMS_OK && why == NULL && b.playback_id_len == 32
       && strcmp(b.playback_id, "0123456789abcdef0123456789abcdef") == 0,
       "beacon: playbackId is read");
    ok(beacon("{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9,"
              "\"x\":{\"playbackId\":7}}", &b, &why)
       == VODLMS_OK && b.playback_id_len == 0 && b.playback_id[0] == '\0',
       "beacon: no playbackId, none read (a nested one is not it)");

    /* a raw NUL after a valid document is not JSON */
    why = NULL;
    ok(vodlms_beacon_parse("{\"videoId\":\"v1\",\"currentTime\":1,"
                           "\"duration\":9}\0junk", 40, 5.0, &b, &why)
       != VODLMS_OK, "beacon: a raw NUL is refused");

    memset(big, ' ', sizeof(big));
    {
        const char *doc = "{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9}";
        memcpy(big, doc, strlen(doc));   /* then spaces: still one document */
    }
    ok(vodlms_beacon_parse(big, 1025, 5.0, &b, &why) == VODLMS_ETOOLONG
       && strcmp(why, "body_too_large") == 0, "beacon: 1025 bytes is too large");
    ok(vodlms_beacon_parse(big, 1024, 5.0, &b, &why) == VODLMS_OK,
       "beacon: 1024 bytes is fine");

    is_rc(beacon("{\"videoId\":\"intro-ready\",\"currentTime\":320,"
                 "\"duration\":1200.5,\"event\":\"pause\"}", &b, &why),
          VODLMS_OK, "beacon: a pause beacon");
    is_str(b.video_id, "intro-ready", "beacon: video id");
    ok(b.current_time == 320 && b.duration == 1200.5, "beacon: numbers");
    is_int(b.event, VODLMS_BEACON_PAUSE, "beacon: event");

    is_rc(beacon("{\"videoId\":\"v1\",\"currentTime\":12,\"duration\":9}",
                 &b, &why), VODLMS_OK, "beacon: within the end slack");
    is_int(b.event, VODLMS_BEACON_TICK, "beacon: event defaults to tick");

    /* an LMS with integer ids: the id its value prints as */
    is_rc(beacon("{\"videoId\":3,\"currentTime\":320,\"duration\":1200}",
                 &b, &why), VODLMS_OK, "beacon: an integer videoId");
    is_str(b.video_id, "3", "beacon: integer videoId 3 is \"3\"");
    ok(b.video_id_len == 1 && b.duration_known == 0,
       "beacon: its length; the parser never vouches for the duration");
    is_rc(beacon("{\"videoId\":9007199254740993,\"currentTime\":1,"
                 "\"duration\":9}", &b, &why), VODLMS_OK,
          "beacon: an integer videoId beyond 2^53");
    is_str(b.video_id, "9007199254740993", "beacon: its digits, not a double's");
    is_rc(beacon("{\"videoId\":-0,\"currentTime\":1,\"duration\":9}",
                 &b, &why), VODLMS_OK, "beacon: -0 is an integer");
    is_str(b.video_id, "0", "beacon: -0 names \"0\", as jansson reads it");
}


/*
 * The yajl parser against the jansson one it replaced (oracle_beacon.c):
 * the same verdict, reason and fields, first on the places where the two
 * libraries differ, then on random mutations of real beacons.
 */

/* bytes as a C string literal would spell them, for a failure's report */
static void
diag_bytes(const char *in, size_t len)
{
    char    out[4 * VODLMS_BEACON_MAX + 3], *p;
    size_t  i;

    p = out;
    *p++ = '"';

    for (i = 0; i < len && i < VODLMS_BEACON_MAX; i++) {
        unsigned char  c = (unsigned char) in[i];

        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            *p++ = (char) c;

        } else {
            p += sprintf(p, "\\x%02x", c);
        }
    }

    *p++ = '"';
    *p = '\0';

    diag("  %s", out);
}


static int
beacon_agree(const char *in, size_t len, const char *label)
{
    const char       *why1, *why2;
    vodlms_rc_t       rc1, rc2;
    vodlms_beacon_t   b1, b2;

    why1 = why2 = "unset";
    rc1 = vodlms_beacon_parse(in, len, 5.0, &b1, &why1);
    rc2 = oracle_beacon_parse(in, len, 5.0, &b2, &why2);

    if (rc1 == rc2
        && ((why1 == NULL && why2 == NULL)
            || (why1 != NULL && why2 != NULL && strcmp(why1, why2) == 0))
        && (rc1 != VODLMS_OK
            || (strcmp(b1.video_id, b2.video_id) == 0
                && b1.video_id_len == b2.video_id_len
                && memcmp(&b1.current_time, &b2.current_time,
                          sizeof(double)) == 0
                && memcmp(&b1.duration, &b2.duration, sizeof(double)) == 0
                && b1.event == b2.event
                && b1.playback_id_len == b2.playback_id_len
                && strcmp(b1.playback_id, b2.playback_id) == 0)))
    {
        return 1;
    }

    diag("%s: yajl says %s, jansson says %s, for %zu bytes:", label,
         why1 ? why1 : "OK", why2 ? why2 : "OK", len);
    diag_bytes(in, len);

    return 0;
}


static void
test_beacon_oracle(void)
{
    int            bad;
    char           buf[VODLMS_BEACON_MAX + 64];
    size_t         i, j, k, len, n;
    unsigned int   seed;

#define B(s)  { s, sizeof(s) - 1 }
    static const vodlms_cstr_t  cases[] = {
        /* where yajl alone would accept */
        B("{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9}\v"),
        B("\f{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9}"),
        B("{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9,\"x\":\"\\ud800\"}"),
        B("{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9,\"x\":\"\\ud800\\u0041\"}"),
        B("{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9,\"x\":\"\\udc00\"}"),
        B("{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9,\"x\":\"\\uDBFF\\uDFFF\"}"),
        B("{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9,\"x\":\"\\ud83d\\ude00\"}"),
        B("{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9,\"x\":\"\\\\ud800\"}"),
        B("{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9,\"x\":\"a\\u0000b\"}"),
        B("{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9,\"\\u0000\":1}"),
        B("{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9,\"x\":\"\xc0\x80\"}"),
        B("{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9,\"x\":\"\xed\xa0\x80\"}"),
        B("{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9,\"x\":\"\xf4\x90\x80\x80\"}"),
        B("{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9,\"x\":\"\xf0\x9f\x98\x80\"}"),
        B("{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9,\"\xe0\x80\xaf\":1}"),
        B("{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9,\"x\":\"\x01\"}"),
        B("{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9,\"x\":\"\x7f\"}"),
        /* duplicates, at any depth; siblings are separate objects */
        B("{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9,\"a\":{\"b\":1,\"b\":2}}"),
        B("{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9,\"a\":[{\"b\":1},{\"b\":2}]}"),
        B("{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9,\"a\":1,\"\\u0061\":2}"),
        B("{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9,\"a\":{\"a\":{\"a\":1}},\"b\":{\"a\":1}}"),
        B("{\"a\":{\"videoId\":\"x\"},\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9}"),
        /* numbers as jansson reads them */
        B("{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":99999999999999999999}"),
        B("{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9223372036854775807}"),
        B("{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9,\"x\":-9223372036854775809}"),
        B("{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9,\"x\":1e309}"),
        B("{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9,\"x\":[-1e309]}"),
        B("{\"videoId\":\"v1\",\"currentTime\":1e-400,\"duration\":9}"),
        B("{\"videoId\":\"v1\",\"currentTime\":-0,\"duration\":9}"),
        B("{\"videoId\":\"v1\",\"currentTime\":-0.0,\"duration\":9}"),
        B("{\"videoId\":\"v1\",\"currentTime\":1.,\"duration\":9}"),
        B("{\"videoId\":\"v1\",\"currentTime\":01,\"duration\":9}"),
        B("{\"videoId\":\"v1\",\"currentTime\":+1,\"duration\":9}"),
        B("{\"videoId\":\"v1\",\"currentTime\":1E+2,\"duration\":900}"),
        B("{\"videoId\":\"v1\",\"currentTime\":NaN,\"duration\":9}"),
        /* the root and the rest */
        B("null"), B("true"), B("1"), B("\"s\""), B("[]"), B("{}"), B(" "),
        B("{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9}{}"),
        B("{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9} x"),
        B("{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9,}"),
        B("{\"videoId\":\"v1\",/*c*/\"currentTime\":1,\"duration\":9}"),
        B("\xef\xbb\xbf{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9}"),
        B("{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9,\"event\":\"\\u0074ick\"}"),
        B("{\"videoId\":\"v\\u0031\",\"currentTime\":1,\"duration\":9}"),
        B("{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":9,\"event\":null}"),
        B("{\"videoId\":[\"v1\"],\"currentTime\":1,\"duration\":9}"),
        B("{\"videoId\":\"v1\",\"currentTime\":{},\"duration\":9}"),
        B("{\"videoId\":\"v1\",\"currentTime\":1,\"duration\":true}"),
    };
#undef B

    static const char  *seeds[] = {
        "{\"videoId\":\"intro-ready\",\"currentTime\":120,\"duration\":634.5,"
        "\"event\":\"tick\",\"playbackId\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\"}",
        "{ \"videoId\" : \"v_1\", \"currentTime\" : 1.5e1, \"duration\" : 9E1,"
        " \"event\" : \"ended\", \"extra\" : [ null, true, { \"k\" : \"\\u00e9\" } ] }",
        "{\"duration\":3600,\"currentTime\":0,\"videoId\":\"A-b\","
        "\"event\":\"pause\",\"n\":{\"o\":[1,-2.5e-3,\"\\ud83d\\ude00\\n\"]}}",
    };

    /* what mutations insert: structure, escapes, numerals, odd bytes */
    static const char  *pieces[] = {
        "{", "}", "[", "]", "\"", ",", ":", " ", "\\", "\\u", "\\ud800",
        "\\udc00", "\\ud800\\udc00", "\\u0000", "\\\\", "0", "-", ".", "e",
        "1e400", "99999999999999999999", "null", "true", "\"videoId\"",
        "\"event\"", "\"duration\":", "\"currentTime\":", "\"x\":", "\v",
        "\f", "\t", "\r\n", "\xc3\xa9", "\xc0\x80", "\xed\xa0\x80",
        "\xf4\x90\x80\x80", "\xe2\x82", "\x01", "\x7f", "{\"a\":1,\"a\":2}",
        "[{\"a\":1},{\"a\":1}]", "\"playbackId\":", "a", "F",
        "\"0123456789abcdef0123456789abcdef\"",
    };

    bad = 0;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bad += !beacon_agree(cases[i].data, cases[i].len, "case");
    }

    ok(bad == 0, "beacon: yajl agrees with jansson on %zu edge cases",
       sizeof(cases) / sizeof(cases[0]));

    /* 1024 bytes of brackets and braces, and of a deep valid document */
    memset(buf, '[', VODLMS_BEACON_MAX);
    bad = !beacon_agree(buf, VODLMS_BEACON_MAX, "brackets");

    /* {"a": per level and } to close it: 170 levels in 1021 bytes */
    for (i = 0, len = 0; i < (VODLMS_BEACON_MAX - 1) / 6; i++) {
        memcpy(buf + len, "{\"a\":", 5);
        len += 5;
    }
    memcpy(buf + len, "1", 1);
    len++;
    for (j = 0; j < i; j++) {
        buf[len++] = '}';
    }
    bad += !beacon_agree(buf, len, "deep");

    ok(bad == 0, "beacon: yajl agrees with jansson on deep nesting");

    /* random mutations of real beacons */
    seed = 20261125;
    bad = 0;

    for (i = 0; i < 300000 && bad < 5; i++) {
        len = strlen(seeds[i % 3]);
        memcpy(buf, seeds[i % 3], len);

        n = 1 + rand_r(&seed) % 4;

        for (k = 0; k < n; k++) {
            size_t       at, cut, plen;
            const char  *piece;

            at = len ? (size_t) rand_r(&seed) % (len + 1) : 0;

            switch (rand_r(&seed) % 4) {

            case 0:                                 /* flip a byte */
                if (at < len) {
                    buf[at] = (char) (rand_r(&seed) & 0xff);
                }
                break;

            case 1:                                 /* cut a few bytes */
                cut = 1 + rand_r(&seed) % 4;
                if (at + cut <= len) {
                    memmove(buf + at, buf + at + cut, len - at - cut);
                    len -= cut;
                }
                break;

            default:                                /* insert a piece */
                piece = pieces[rand_r(&seed)
                               % (sizeof(pieces) / sizeof(pieces[0]))];
                plen = strlen(piece);
                if (len + plen <= VODLMS_BEACON_MAX) {
                    memmove(buf + at + plen, buf + at, len - at);
                    memcpy(buf + at, piece, plen);
                    len += plen;
                }
            }
        }

        bad += !beacon_agree(buf, len, "mutant");
    }

    ok(bad == 0, "beacon: yajl agrees with jansson on 300000 mutated beacons");
}


static void
test_storage_prefix(void)
{
    size_t  i;

    static const char  *good[] = {
        "hls/intro-ready/", "hls/intro-ready", "hls/42/20261204T221500Z-3f9a1c2b/",
        "prod/hls/x/v1.2/", "a", "a/b.c/d_e-f/"
    };

    static const char  *bad[] = {
        "", "/hls/x/", "hls//x/", "hls/x//", "hls/../x/", "hls/./x/", "hls/x/..",
        "hls/x/../", ".hls/x/", "hls/x; Domain=evil.example", "hls/x\r\nX-Injected: 1",
        "hls/x y/", "hls/x%2f/", "hls/x?a=1", "hls/x#f", "hls\\x/", "hls/x\"/", "/",
        "hls/\xc3\xa9/"
    };

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        ok(vodlms_storage_prefix_valid(good[i], strlen(good[i]), 512),
           "storage prefix: \"%s\" is safe", good[i]);
    }

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ok(!vodlms_storage_prefix_valid(bad[i], strlen(bad[i]), 512),
           "storage prefix: refused #%u", (unsigned) i);
    }

    ok(!vodlms_storage_prefix_valid("hls/x/", 6, 5),
       "storage prefix: longer than max is refused");
    ok(!vodlms_storage_prefix_valid(NULL, 0, 512), "storage prefix: NULL");
}


/* a fresh bitmap for `duration` seconds and a run with no beacon yet */
static vodlms_coverage_t *
progress_cov(vodlms_coverage_t *c, vodlms_coverage_run_t *run,
    unsigned char *buf, size_t size, double duration)
{
    memset(run, 0, sizeof(*run));

    if (vodlms_coverage_init(c, buf, size, duration) != VODLMS_OK) {
        abort();
    }

    return c;
}


static void
test_progress(void)
{
    vodlms_beacon_t        b;
    vodlms_progress_t      p;
    vodlms_coverage_t      cv, *c;
    vodlms_coverage_run_t  run;
    unsigned char          buf[VODLMS_COVERAGE_BYTES_MAX];

    memset(&p, 0, sizeof(p));
    memset(&b, 0, sizeof(b));
    b.duration = 100;
    b.duration_known = 1;
    c = progress_cov(&cv, &run, buf, sizeof(buf), 100);

    /* the first beacon: a position, no watch time yet */
    b.current_time = 10;
    vodlms_progress_apply(&p, c, &run, &b, 1000000, 0.9);
    ok(p.position == 10 && p.watched_pending == 0, "progress: first beacon");

    /* 15 s later, 15 s further: 15 s watched, [10, 25] covered */
    b.current_time = 25;
    vodlms_progress_apply(&p, c, &run, &b, 1015000, 0.9);
    ok(p.watched_pending == 15, "progress: normal play counts (%g)",
       p.watched_pending);
    ok(vodlms_coverage_covered_ms(c) == 15000,
       "progress: normal play is coverage (%lld ms)",
       (long long) vodlms_coverage_covered_ms(c));

    /* a seek 50 s ahead 2 s later counts 2 s, not 50, and covers nothing */
    b.current_time = 75;
    vodlms_progress_apply(&p, c, &run, &b, 1017000, 0.9);
    ok(p.watched_pending == 17, "progress: a seek counts wall time only (%g)",
       p.watched_pending);
    ok(p.max_position == 75, "progress: max position");
    ok(vodlms_coverage_covered_ms(c) == 15000, "progress: a seek covers "
       "nothing");

    /* back to 30: nothing more watched, the max stays */
    b.current_time = 30;
    vodlms_progress_apply(&p, c, &run, &b, 1030000, 0.9);
    ok(p.watched_pending == 17 && p.max_position == 75 && p.position == 30,
       "progress: seeking back keeps the max and adds nothing");
    ok(p.completed_at == 0, "progress: not complete at 75%%");
    ok(p.played == 19, "progress: played 15 s, then 2 s at 2x (%g)", p.played);

    /* from 30 to 90 in real time: [10, 25] and [30, 90], 75 s: no */
    b.current_time = 90;
    vodlms_progress_apply(&p, c, &run, &b, 1090000, 0.9);
    ok(p.completed_at == 0 && vodlms_coverage_covered_ms(c) == 75000,
       "progress: 90%% reached, 75%% covered: not complete (%lld)",
       (long long) vodlms_coverage_covered_ms(c));

    /* the first 30 s, watched now: 90 s covered, complete */
    b.current_time = 0;
    vodlms_progress_apply(&p, c, &run, &b, 1100000, 0.9);
    b.current_time = 15;
    vodlms_progress_apply(&p, c, &run, &b, 1115000, 0.9);
    ok(p.completed_at == 0, "progress: 85 s covered: not yet");
    b.current_time = 30;
    vodlms_progress_apply(&p, c, &run, &b, 1130000, 0.9);
    ok(p.completed_at == 1130, "progress: the parts missed, watched after: "
       "90%% covered, complete (%lld ms)",
       (long long) vodlms_coverage_covered_ms(c));
    b.current_time = 99;
    vodlms_progress_apply(&p, c, &run, &b, 1300000, 0.9);
    ok(p.completed_at == 1130, "progress: completion is set once");

    /* rewatching the same minute for long does not complete */
    {
        int      k;
        int64_t  t;

        memset(&p, 0, sizeof(p));
        c = progress_cov(&cv, &run, buf, sizeof(buf), 600);
        b.duration = 600;
        t = 50000;

        for (k = 0; k < 40; k++) {
            b.current_time = (k % 7) * 10;
            vodlms_progress_apply(&p, c, &run, &b, t, 0.9);
            t += 10000;
        }

        ok(p.completed_at == 0 && p.played > 300
           && vodlms_coverage_covered_ms(c) == 60000,
           "progress: the first minute six times over: played %g s, "
           "covered 60 s, not complete", p.played);
        b.duration = 100;
    }

    /* a real viewer at 1x and at 2x completes; at 3x nothing is proven */
    {
        int     k, speed;
        int64_t t;

        for (speed = 1; speed <= 3; speed++) {
            memset(&p, 0, sizeof(p));
            c = progress_cov(&cv, &run, buf, sizeof(buf), 100);
            b.event = VODLMS_BEACON_TICK;
            t = 50000;

            for (k = 0; k * 10 <= 100; k++) {
                b.current_time = k * 10;
                b.event = k * 10 == 100 ? VODLMS_BEACON_ENDED
                                        : VODLMS_BEACON_TICK;
                vodlms_progress_apply(&p, c, &run, &b, t, 0.9);
                t += 10000 / speed;
            }

            ok((p.completed_at != 0) == (speed <= 2),
               "progress: a viewer at %dx %s (covered %lld ms)", speed,
               speed <= 2 ? "completes" : "does not complete",
               (long long) vodlms_coverage_covered_ms(c));
        }

        b.event = VODLMS_BEACON_TICK;
    }

    /* the step attack: 63 steps of +29 s in 0.38 s never complete */
    {
        int     k;

        memset(&p, 0, sizeof(p));
        b.duration = 1800;
        c = progress_cov(&cv, &run, buf, sizeof(buf), 1800);
        b.current_time = 0;
        vodlms_progress_apply(&p, c, &run, &b, 7000000, 0.9);

        for (k = 1; k <= 63; k++) {
            b.current_time = k * 29 > 1800 ? 1800 : k * 29;
            b.event = k == 63 ? VODLMS_BEACON_ENDED : VODLMS_BEACON_TICK;
            vodlms_progress_apply(&p, c, &run, &b, 7000000 + k * 6, 0.9);
        }

        ok(p.max_position == 1800 && p.completed_at == 0
           && vodlms_coverage_covered_ms(c) == 0,
           "progress: small fast steps to the end cover nothing (%lld ms)",
           (long long) vodlms_coverage_covered_ms(c));
        b.duration = 100;
        b.event = VODLMS_BEACON_TICK;
    }

    /* the player's duration decides nothing */
    memset(&p, 0, sizeof(p));
    c = progress_cov(&cv, &run, buf, sizeof(buf), 1);
    b.duration_known = 0;
    b.duration = 1;
    b.current_time = 0;
    vodlms_progress_apply(&p, c, &run, &b, 5000, 0.9);
    b.current_time = 1;
    b.event = VODLMS_BEACON_ENDED;
    vodlms_progress_apply(&p, c, &run, &b, 6000, 0.9);
    ok(p.completed_at == 0 && vodlms_coverage_covered_ms(c) == 1000,
       "progress: no completion without the database's duration");
    b.duration_known = 1;
    b.duration = 100;
    b.event = VODLMS_BEACON_TICK;

    /* no bitmap (the database gave no duration): nothing completes */
    memset(&p, 0, sizeof(p));
    b.current_time = 0;
    vodlms_progress_apply(&p, NULL, NULL, &b, 5000, 0.9);
    b.current_time = 100;
    vodlms_progress_apply(&p, NULL, NULL, &b, 105000, 0.9);
    ok(p.completed_at == 0 && p.watched_pending == 100,
       "progress: without a bitmap, watch time but no completion");

    /* what the database covered before counts (resume on another node) */
    memset(&p, 0, sizeof(p));
    c = progress_cov(&cv, &run, buf, sizeof(buf), 100);
    {
        size_t  dropped;

        /* [0, 80) */
        ok(vodlms_coverage_parse(c, "xffff", 5, &dropped) == VODLMS_OK,
           "progress: the database's bits loaded");
    }
    b.current_time = 82;
    vodlms_progress_apply(&p, c, &run, &b, 5000, 0.9);
    b.current_time = 91;
    vodlms_progress_apply(&p, c, &run, &b, 14000, 0.9);
    ok(p.completed_at == 14, "progress: 80 s covered before, a resume at 82 "
       "(in the bit after them) to 91: 90 s, complete (%lld ms)",
       (long long) vodlms_coverage_covered_ms(c));

    /* a fraction of 1 needs every bit, the short last one too */
    memset(&p, 0, sizeof(p));
    c = progress_cov(&cv, &run, buf, sizeof(buf), 12);
    b.duration = 12;
    b.current_time = 0;
    vodlms_progress_apply(&p, c, &run, &b, 5000, 1.0);
    b.current_time = 11.9;
    vodlms_progress_apply(&p, c, &run, &b, 17000, 1.0);
    ok(p.completed_at == 0, "progress: fraction 1, 11.9 of 12 s: not yet");
    b.current_time = 12;
    b.event = VODLMS_BEACON_ENDED;
    vodlms_progress_apply(&p, c, &run, &b, 17100, 1.0);
    ok(p.completed_at == 17, "progress: fraction 1, ended at 12 s: complete");

    /*
     * the player's end short of the database's duration (its playlist's
     * segments against the probe of the upload): "ended" within the last
     * 5 s is the end, so a 10 s clip played through completes at 0.9
     * (both of its parts) and a 12 s one at fraction 1
     */
    memset(&p, 0, sizeof(p));
    c = progress_cov(&cv, &run, buf, sizeof(buf), 10);
    b.duration = 10;
    b.event = VODLMS_BEACON_TICK;
    b.current_time = 0;
    vodlms_progress_apply(&p, c, &run, &b, 5000, 0.9);
    b.current_time = 9.96;
    b.event = VODLMS_BEACON_ENDED;
    vodlms_progress_apply(&p, c, &run, &b, 15000, 0.9);
    ok(p.completed_at == 15 && p.position == 9.96,
       "progress: 10 s clip, \"ended\" at the player's 9.96 s: the end "
       "for coverage, complete (%lld ms covered, position %g)",
       (long long) vodlms_coverage_covered_ms(c), p.position);

    memset(&p, 0, sizeof(p));
    c = progress_cov(&cv, &run, buf, sizeof(buf), 12);
    b.duration = 12;
    b.event = VODLMS_BEACON_TICK;
    b.current_time = 0;
    vodlms_progress_apply(&p, c, &run, &b, 5000, 1.0);
    b.current_time = 11.9;
    b.event = VODLMS_BEACON_ENDED;
    vodlms_progress_apply(&p, c, &run, &b, 17000, 1.0);
    ok(p.completed_at == 17, "progress: fraction 1, \"ended\" at 11.9 of "
       "12 s: complete");

    /* "ended" is not the end further back, and the clock still decides */
    memset(&p, 0, sizeof(p));
    c = progress_cov(&cv, &run, buf, sizeof(buf), 12);
    b.event = VODLMS_BEACON_TICK;
    b.current_time = 0;
    vodlms_progress_apply(&p, c, &run, &b, 5000, 0.5);
    b.current_time = 6.9;
    b.event = VODLMS_BEACON_ENDED;
    vodlms_progress_apply(&p, c, &run, &b, 12000, 0.5);
    ok(p.position == 6.9 && vodlms_coverage_covered_ms(c) == 5000,
       "progress: \"ended\" at 6.9 of 12 s is where it says (%g, %lld ms)",
       p.position, (long long) vodlms_coverage_covered_ms(c));

    memset(&p, 0, sizeof(p));
    c = progress_cov(&cv, &run, buf, sizeof(buf), 12);
    b.event = VODLMS_BEACON_TICK;
    b.current_time = 0;
    vodlms_progress_apply(&p, c, &run, &b, 5000, 0.5);
    b.current_time = 7.1;
    b.event = VODLMS_BEACON_ENDED;
    vodlms_progress_apply(&p, c, &run, &b, 5100, 0.5);
    ok(vodlms_coverage_covered_ms(c) == 0 && p.completed_at == 0,
       "progress: \"ended\" at 7.1 of 12 s 0.1 s after the start: the "
       "end, but a jump, nothing covered");
    b.current_time = 12;
    b.event = VODLMS_BEACON_TICK;
    vodlms_progress_apply(&p, c, &run, &b, 15100, 0.5);
    ok(vodlms_coverage_covered_ms(c) == 0,
       "progress: ... and the run starts at the end, not at 7.1 s (%lld ms)",
       (long long) vodlms_coverage_covered_ms(c));

    b.duration = 100;
    b.event = VODLMS_BEACON_TICK;

    /* paused for 30 s, then a seek 60 s ahead while paused: a jump */
    memset(&p, 0, sizeof(p));
    c = progress_cov(&cv, &run, buf, sizeof(buf), 100);
    b.current_time = 0.4;
    vodlms_progress_apply(&p, c, &run, &b, 1000, 0.9);
    b.current_time = 2.4;
    b.event = VODLMS_BEACON_PAUSE;
    vodlms_progress_apply(&p, c, &run, &b, 3000, 0.9);
    b.current_time = 62.4;
    vodlms_progress_apply(&p, c, &run, &b, 33000, 0.9);
    ok(vodlms_coverage_covered_ms(c) == 0,
       "progress: a pause, then a seek while paused, covers nothing "
       "(%lld ms)", (long long) vodlms_coverage_covered_ms(c));

    /* resumed there: play counts again from the next beacon */
    b.event = VODLMS_BEACON_TICK;
    vodlms_progress_apply(&p, c, &run, &b, 40000, 0.9);
    b.current_time = 72.4;
    vodlms_progress_apply(&p, c, &run, &b, 50000, 0.9);
    ok(vodlms_coverage_covered_ms(c) == 5000,
       "progress: after the pause, 10 s played from 62.4 s: one part "
       "(%lld ms)", (long long) vodlms_coverage_covered_ms(c));

    /*
     * played at 1x, the run carries 5 s of wall time it did not use; a
     * pause takes that back to the 2 s allowance, so a 5 s seek while
     * paused is a jump: the part it skipped is not played
     */
    memset(&p, 0, sizeof(p));
    c = progress_cov(&cv, &run, buf, sizeof(buf), 100);
    b.current_time = 0;
    vodlms_progress_apply(&p, c, &run, &b, 1000, 0.9);
    b.current_time = 5;
    vodlms_progress_apply(&p, c, &run, &b, 6000, 0.9);
    ok(run.credit == VODLMS_COVERAGE_CARRY_MS,
       "progress: 5 s played in 5 s leave the carry (%lld ms)",
       (long long) run.credit);
    b.event = VODLMS_BEACON_PAUSE;
    vodlms_progress_apply(&p, c, &run, &b, 6500, 0.9);
    b.event = VODLMS_BEACON_TICK;
    b.current_time = 10;
    vodlms_progress_apply(&p, c, &run, &b, 36500, 0.9);
    ok(vodlms_coverage_covered_ms(c) == 5000,
       "progress: a 5 s seek while paused is a jump, whatever the run "
       "carried: 0-5 s played, 5-10 s not (%lld ms)",
       (long long) vodlms_coverage_covered_ms(c));

    /* a pause of 30 s, then play resumed where it was: a run goes on */
    memset(&p, 0, sizeof(p));
    c = progress_cov(&cv, &run, buf, sizeof(buf), 100);
    b.current_time = 0;
    vodlms_progress_apply(&p, c, &run, &b, 1000, 0.9);
    b.current_time = 4;
    b.event = VODLMS_BEACON_PAUSE;
    vodlms_progress_apply(&p, c, &run, &b, 5000, 0.9);
    b.event = VODLMS_BEACON_TICK;
    vodlms_progress_apply(&p, c, &run, &b, 35000, 0.9);
    b.current_time = 14;
    vodlms_progress_apply(&p, c, &run, &b, 45000, 0.9);
    ok(vodlms_coverage_covered_ms(c) == 10000,
       "progress: play, a pause, play on: [0, 14] proven (%lld ms)",
       (long long) vodlms_coverage_covered_ms(c));

    /* an entry with a bitmap keeps the database's duration */
    b.duration_known = 0;
    b.duration = 1;
    b.current_time = 1;
    vodlms_progress_apply(&p, c, &run, &b, 46000, 0.9);
    ok(p.duration == 100 && p.completed_at == 0,
       "progress: a beacon with the player's duration does not change "
       "the entry's (%g)", p.duration);
    b.duration_known = 1;
    b.duration = 100;

    /* a clock going backwards adds nothing */
    memset(&p, 0, sizeof(p));
    c = progress_cov(&cv, &run, buf, sizeof(buf), 100);
    b.current_time = 10;
    vodlms_progress_apply(&p, c, &run, &b, 9000, 0.9);
    b.current_time = 20;
    vodlms_progress_apply(&p, c, &run, &b, 8000, 0.9);
    ok(p.watched_pending == 0, "progress: no watch time from a clock jump");
}


/* exact completion arithmetic: what PostgreSQL's numeric agrees with */
static void
test_coverage_complete(void)
{
    vodlms_coverage_t  c;
    unsigned char      buf[VODLMS_COVERAGE_BYTES_MAX];
    size_t             dropped;

    ok(vodlms_coverage_fraction_micro(0.9) == 900000
       && vodlms_coverage_fraction_micro(0.3333334) == 333333
       && vodlms_coverage_fraction_micro(1.5) == 1000000
       && vodlms_coverage_fraction_micro(0) == 0,
       "coverage: fractions in millionths");

    /* 1800 s at 0.9: 1620 s needed, 324 bits exactly */
    vodlms_coverage_init(&c, buf, sizeof(buf), 1800);
    (void) vodlms_coverage_parse(&c, "xffffffffffffffffffffffffffffffffffffffff"
                                 "fffffffffffffffffffffffffffffffffffffff", 80,
                                 &dropped);
    ok(vodlms_coverage_covered_ms(&c) == 1580000
       && !vodlms_coverage_complete(&c, 0.9), "coverage: 1580 of 1620 s");
    (void) vodlms_coverage_parse(&c, "xfffffffffffffffffffffffffffffffffffffff"
                                 "ffffffffffffffffffffffffffffffffffffffffff",
                                 82, &dropped);
    ok(vodlms_coverage_covered_ms(&c) == 1620000
       && vodlms_coverage_complete(&c, 0.9), "coverage: 1620 s of 1800 "
       "complete at 0.9, exactly");
    ok(!vodlms_coverage_complete(&c, 0.900001), "coverage: not at 0.900001");
}


/* ------------------------------------------------------ JSON output */

/*
 * jansson is the oracle: the playback answer switched from json_dumps() to
 * these functions, and its bytes must not change.
 */

static char *
oracle_string(const char *s, size_t len)
{
    char    *out;
    json_t  *j;

    j = json_stringn(s, len);
    if (j == NULL) {
        return NULL;                        /* jansson refuses bad UTF-8 */
    }

    out = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(j);

    return out;
}


static int
check_string(const char *s, size_t len, const char *name)
{
    int      pass;
    char    *exp, *got, *in, *end;
    size_t   n;

    in = xdup(s, len);
    exp = oracle_string(in, len);
    n = vodlms_json_escaped_len(in, len);

    if (exp == NULL) {
        pass = (n == VODLMS_JSON_INVALID);
        if (!pass) {
            tap_diag("jansson refuses %s, we took it (%zu)", name, n);
        }
        free(in);
        return pass;
    }

    if (n == VODLMS_JSON_INVALID) {
        tap_diag("we refuse %s, jansson writes %s", name, exp);
        free(exp);
        free(in);
        return 0;
    }

    got = malloc(n + 2);
    if (got == NULL) {
        abort();
    }

    got[0] = '"';
    end = vodlms_json_escape(got + 1, in, len);
    *end++ = '"';

    pass = ((size_t) (end - got) == strlen(exp) && n + 2 == strlen(exp)
            && memcmp(got, exp, n + 2) == 0);

    if (!pass) {
        tap_diag("%s: got %.*s, jansson %s", name, (int) (end - got), got,
                 exp);
    }

    free(got);
    free(exp);
    free(in);

    return pass;
}


static char *
oracle_real(double v)
{
    char    *out;
    json_t  *j;

    j = json_real(v);
    if (j == NULL) {
        return NULL;
    }

    out = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY
                        | JSON_REAL_PRECISION(15));
    json_decref(j);

    return out;
}


static int
check_decimal(const char *s, const char *name)
{
    int      pass;
    char    *exp, *in, out[VODLMS_JSON_NUMBER_MAX];
    size_t   n, len;

    len = strlen(s);
    in = xdup(s, len);
    exp = oracle_real(strtod(s, NULL));
    n = vodlms_json_decimal(in, len, out, sizeof(out));

    pass = (exp != NULL && n == strlen(exp) && memcmp(out, exp, n) == 0);

    if (!pass) {
        tap_diag("%s \"%s\": got %.*s, jansson %s", name, s, (int) n, out,
                 exp ? exp : "(null)");
    }

    free(exp);
    free(in);

    return pass;
}


static void
test_json_output(void)
{
    int            i, j, bad;
    char           buf[64], out[VODLMS_JSON_NUMBER_MAX];
    size_t         len, n;
    double         v;
    unsigned int   seed;

    static const struct {
        const char  *s;
        size_t       len;
        const char  *name;
    } fixed[] = {
        { LIT(""), "empty" },
        { LIT("Lecture 1: What is a video codec?"), "plain title" },
        { LIT("say \"hi\" \\ bye"), "quote and backslash" },
        { LIT("a\b\f\n\r\tb"), "short escapes" },
        { LIT("\x01\x1f\x7f"), "control characters and DEL" },
        { LIT("nul\0inside"), "a NUL inside" },
        { LIT("https://cdn.example.test/hls/x/master.m3u8"), "slashes" },
        { LIT("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\xac"), "UTF-8" },
        { LIT("\xe2\x80\xa8\xe2\x80\xa9"), "U+2028 and U+2029" },
        { LIT("\xef\xbf\xbf\xf4\x8f\xbf\xbf"), "U+FFFF, U+10FFFF" },
        { LIT("\xc3"), "truncated 2-byte" },
        { LIT("\xe2\x82"), "truncated 3-byte" },
        { LIT("\xc0\xaf"), "overlong slash" },
        { LIT("\xe0\x80\xaf"), "overlong 3-byte" },
        { LIT("\xf0\x80\x80\xaf"), "overlong 4-byte" },
        { LIT("\xed\xa0\x80"), "a surrogate" },
        { LIT("\xf4\x90\x80\x80"), "above U+10FFFF" },
        { LIT("\xf8\x88\x80\x80\x80"), "5-byte form" },
        { LIT("\x80"), "a lone continuation byte" },
        { LIT("\xff\xfe"), "0xff 0xfe" },
    };

    static const char  *decimals[] = {
        "0", "0.0", "00", "90", "90.000", "634.5", "634.500", "0.5",
        "0.0001", "0.00012", "0.00001", "0.000012345", "1.5e3",
        "123456789012345", "1234567890123456", "12345678901234.5",
        "1234567890.12345", "1234567890.123456", "0.123456789012345",
        "0.1234567890123456", "0.000123456789012345", "007.250",
        "99999999999999.9", "999999999999999.9", "-1", "-0", "-0.0",
        "-634.25", "1.", ".5", "0.30000000000000004", "100000000000000",
        "1000000000000000", "3.14159265358979",
    };

    for (i = 0; i < (int) (sizeof(fixed) / sizeof(fixed[0])); i++) {
        ok(check_string(fixed[i].s, fixed[i].len, fixed[i].name),
           "json string: %s as jansson writes it", fixed[i].name);
    }

    /* random bytes, biased towards UTF-8 lead and continuation bytes */

    static const unsigned char  pool[] = {
        'a', 'Z', '0', ' ', '"', '\\', '/', '\n', '\t', 0x00, 0x01, 0x1f,
        0x7f, 0x80, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xed, 0xef,
        0xf0, 0xf4, 0xf5, 0xff, 0xa0, 0x8f, 0x90, 0x9f
    };

    seed = 20261125;
    bad = 0;

    for (i = 0; i < 200000 && bad < 5; i++) {
        len = rand_r(&seed) % 12;

        for (j = 0; j < (int) len; j++) {
            buf[j] = (rand_r(&seed) & 1)
                     ? (char) pool[rand_r(&seed) % sizeof(pool)]
                     : (char) (rand_r(&seed) & 0xff);
        }

        if (!check_string(buf, len, "random")) {
            bad++;
        }
    }

    ok(bad == 0, "json string: 200000 random byte strings as jansson");

    for (i = 0; i < (int) (sizeof(decimals) / sizeof(decimals[0])); i++) {
        ok(check_decimal(decimals[i], "decimal"),
           "json number: \"%s\" as jansson prints strtod() of it",
           decimals[i]);
    }

    /* random numerals: integer and fraction digits of random lengths */

    bad = 0;

    for (i = 0; i < 100000 && bad < 5; i++) {
        len = 0;
        n = rand_r(&seed) % 18;

        for (j = 0; j < (int) n; j++) {
            buf[len++] = (char) ('0' + rand_r(&seed) % 10);
        }

        if (len == 0 || rand_r(&seed) % 2) {
            if (len == 0) {
                buf[len++] = '0';
            }

            buf[len++] = '.';
            n = 1 + rand_r(&seed) % 18;

            for (j = 0; j < (int) n; j++) {
                buf[len++] = (char) ('0' + ((rand_r(&seed) % 3)
                                            ? rand_r(&seed) % 10 : 0));
            }
        }

        buf[len] = '\0';

        if (!check_decimal(buf, "random")) {
            bad++;
        }
    }

    ok(bad == 0, "json number: 100000 random numerals as jansson");

    /* reals */

    for (v = 1e-7; v < 1e17; v *= 7.3) {
        char  *exp = oracle_real(v);

        n = vodlms_json_real(out, sizeof(out), v);
        if (exp == NULL || n != strlen(exp) || memcmp(out, exp, n) != 0) {
            bad++;
            tap_diag("real %.17g: got %.*s, jansson %s", v, (int) n, out,
                     exp ? exp : "(null)");
        }

        free(exp);
    }

    ok(bad == 0, "json real: powers of 7.3 from 1e-7 to 1e17 as jansson");

    is_int(vodlms_json_real(out, sizeof(out), 0.0 / 0.0), 0,
           "json real: NaN is refused");
    is_int(vodlms_json_real(out, sizeof(out), 1.0 / 0.0), 0,
           "json real: infinity is refused");
    is_int(vodlms_json_real(out, 8, 1.5), 0, "json real: a short buffer");
    is_int(vodlms_json_decimal(LIT("12abc"), out, sizeof(out)), 0,
           "json number: not a numeral");
    is_int(vodlms_json_decimal(LIT(""), out, sizeof(out)), 0,
           "json number: empty");
}


/*
 * The strtod()-free numeral path must give strtod()'s very double (bit for
 * bit, so -0 is told from 0) whenever it answers, and answer for the
 * numerals beacons and enrollment rows usually carry.
 */

static int
check_numeral(const char *s, size_t len, int *fast)
{
    char    z[128];
    char   *end;
    double  got, exp;

    *fast = vodlms_numeral_fast(s, len, &got);

    if (!*fast) {
        return 1;
    }

    if (len >= sizeof(z)) {
        tap_diag("numeral \"%.*s\": answered for an overlong input",
                 (int) len, s);
        return 0;
    }

    memcpy(z, s, len);
    z[len] = '\0';
    exp = strtod(z, &end);

    if (end != z + len || memcmp(&got, &exp, sizeof(double)) != 0) {
        tap_diag("numeral \"%s\": got %.17g, strtod %.17g (read %d of %d)",
                 z, got, exp, (int) (end - z), (int) len);
        return 0;
    }

    return 1;
}


static void
test_numeral_fast(void)
{
    int            i, j, n, fast, bad, answered;
    char           buf[96];
    size_t         len;
    double         v;
    unsigned int   seed;

    static const struct {
        const char  *s;
        int          fast;
    } fixed[] = {
        { "0", 1 }, { "-0", 1 }, { "-0.0", 1 }, { "120", 1 },
        { "634.5", 1 }, { "0.1", 1 }, { "0.30000000000000004", 0 },
        { "9007199254740992", 1 }, { "9007199254740993", 0 },
        { "1e22", 1 }, { "1e23", 0 }, { "1.5e-3", 1 }, { "15E+2", 1 },
        { "1e-22", 1 }, { "1e-23", 0 }, { "007.250", 1 },
        { "0.0000000000000000000000000001", 0 },
        { "123456789012345678901234567890", 0 },
        { "1e99999", 0 }, { "1e00010", 0 },
        /* 64 bytes, the most it reads; 65 go to strtod() */
        { "0000000000000000000000000000000"
          "0000000000000000000000000000001.5", 1 },
        { "0000000000000000000000000000000"
          "00000000000000000000000000000001.5", 0 },
        { "", 0 }, { "-", 0 }, { "1.", 0 }, { ".5", 0 }, { "1e", 0 },
        { "1e+", 0 }, { "+1", 0 }, { "1x", 0 }, { "0x10", 0 },
        { " 1", 0 }, { "1 ", 0 }, { "inf", 0 }, { "nan", 0 },
        { "1..2", 0 }, { "--1", 0 }, { "1e5.5", 0 }, { "1,5", 0 },
    };

    for (i = 0; i < (int) (sizeof(fixed) / sizeof(fixed[0])); i++) {
        len = strlen(fixed[i].s);
        ok(check_numeral(fixed[i].s, len, &fast) && fast == fixed[i].fast,
           "numeral \"%s\": %s", fixed[i].s,
           fixed[i].fast ? "strtod()'s double without strtod()"
                         : "left to strtod()");
    }

    is_int(vodlms_numeral_fast("634.5", 5, &v) && v == 634.5, 1,
           "numeral: 634.5 is 634.5");
    is_int(vodlms_numeral_fast("1234", 2, &v) && v == 12, 1,
           "numeral: only `len` bytes are read");

    /* random numerals: signs, leading zeros, fractions and exponents */

    static const char  *digits = "0123456789";

    seed = 20261125;
    bad = 0;
    answered = 0;

    for (i = 0; i < 1000000 && bad < 5; i++) {
        len = 0;

        if (rand_r(&seed) % 4 == 0) {
            buf[len++] = '-';
        }

        n = 1 + rand_r(&seed) % ((rand_r(&seed) % 3) ? 8 : 22);
        for (j = 0; j < n; j++) {
            buf[len++] = digits[(rand_r(&seed) % 3) ? rand_r(&seed) % 10 : 0];
        }

        if (rand_r(&seed) % 2) {
            buf[len++] = '.';
            n = 1 + rand_r(&seed) % ((rand_r(&seed) % 3) ? 6 : 24);
            for (j = 0; j < n; j++) {
                buf[len++] = digits[rand_r(&seed) % 10];
            }
        }

        if (rand_r(&seed) % 4 == 0) {
            buf[len++] = (rand_r(&seed) % 2) ? 'e' : 'E';
            if (rand_r(&seed) % 2) {
                buf[len++] = (rand_r(&seed) % 2) ? '-' : '+';
            }
            n = 1 + rand_r(&seed) % 3;
            for (j = 0; j < n; j++) {
                buf[len++] = digits[rand_r(&seed) % 10];
            }
        }

        /* now and then a byte out of place */
        if (rand_r(&seed) % 50 == 0) {
            buf[rand_r(&seed) % len] = ".eE-+x 0"[rand_r(&seed) % 8];
        }

        if (!check_numeral(buf, len, &fast)) {
            bad++;
        }

        answered += fast;
    }

    ok(bad == 0, "numeral: 1000000 random numerals, strtod()'s double "
       "each time the fast path answers");
    ok(answered > 500000, "numeral: the fast path answered %d of them "
       "(the short ones)", answered);
}


/* ------------------------------------------------------- switch-master */

static void
switch_at(const char *file, int line, const char *msg, size_t len,
    const char *name, vodlms_rc_t exp, const char *host, unsigned port)
{
    char                    *m;
    vodlms_rc_t              rc;
    vodlms_switch_master_t   sm;

    m = xdup(msg, len);
    memset(&sm, 0, sizeof(sm));

    rc = vodlms_switch_master_parse(m, len, name, strlen(name), &sm);

    ok(rc == exp, "switch-master \"%.*s\" for \"%s\": %s (want %s) at %s:%d",
       (int) len, msg, name, vodlms_rc_str(rc), vodlms_rc_str(exp), file, line);

    if (rc == VODLMS_OK && exp == VODLMS_OK) {
        is_mem(sm.host.data, sm.host.len, host, strlen(host),
               "  its new host");
        is_int(sm.port, port, "  its new port");
    }

    free(m);
}

#define SWITCH(msg, name, host, port)                                         \
    switch_at(__FILE__, __LINE__, LIT(msg), name, VODLMS_OK, host, port)
#define SWITCH_RC(msg, name, rc)                                              \
    switch_at(__FILE__, __LINE__, LIT(msg), name, rc, NULL, 0)


static void
test_switch_master(void)
{
    SWITCH("mymaster 127.0.0.1 6379 127.0.0.2 6380", "mymaster",
           "127.0.0.2", 6380);
    SWITCH("my master 10.0.0.1 6379 10.0.0.2 6379", "my master",
           "10.0.0.2", 6379);
    SWITCH("mymaster ::1 6379 fe80::1 6379", "mymaster", "fe80::1", 6379);
    SWITCH("mymaster old.example 6379 new.example 7000", "mymaster",
           "new.example", 7000);

    /* another master's news, even one whose name begins with ours */
    SWITCH_RC("other 127.0.0.1 6379 127.0.0.2 6380", "mymaster",
              VODLMS_ENOTFOUND);
    SWITCH_RC("mymaster extra 127.0.0.1 6379 127.0.0.2 6380", "mymaster",
              VODLMS_ENOTFOUND);
    SWITCH_RC("my 127.0.0.1 6379 127.0.0.2 6380", "my master",
              VODLMS_ENOTFOUND);
    SWITCH_RC("xmymaster 127.0.0.1 6379 127.0.0.2 6380", "mymaster",
              VODLMS_ENOTFOUND);

    /* not such a message */
    SWITCH_RC("", "mymaster", VODLMS_EMALFORMED);
    SWITCH_RC("127.0.0.1 6379 127.0.0.2 6380", "mymaster",
              VODLMS_EMALFORMED);
    SWITCH_RC("mymaster 127.0.0.1 6379 127.0.0.2", "mymaster",
              VODLMS_EMALFORMED);
    SWITCH_RC("mymaster 127.0.0.1 6379 127.0.0.2 ", "mymaster",
              VODLMS_EMALFORMED);
    SWITCH_RC("mymaster 127.0.0.1 6379 127.0.0.2 0", "mymaster",
              VODLMS_EMALFORMED);
    SWITCH_RC("mymaster 127.0.0.1 6379 127.0.0.2 65536", "mymaster",
              VODLMS_EMALFORMED);
    SWITCH_RC("mymaster 127.0.0.1 6379 127.0.0.2 63a9", "mymaster",
              VODLMS_EMALFORMED);
    SWITCH_RC("mymaster 127.0.0.1 6379 127.0.0.2 1234567", "mymaster",
              VODLMS_EMALFORMED);
}


/* ----------------------------------------- session fields, watermark text */

static void
test_session_extra(void)
{
    char                     out[16];
    size_t                   n;
    vodlms_rc_t              rc;
    vodlms_session_t         s;
    vodlms_session_field_t   f[VODLMS_SESSION_FIELDS_MAX];
    const char              *paths[] = { "email", "p.name", "n", "x", "t",
                                         "o", "a", "missing" };
    static const char        doc[] =
        "{\"u\":\"7\",\"email\":\"a@b.c\",\"p\":{\"name\":\"Z\\u00e9\"},"
        "\"n\":-3,\"x\":0.25,\"t\":false,\"o\":{},\"a\":[1]}";

    rc = vodlms_session_from_json_ex(doc, sizeof(doc) - 1, "u", NULL, NULL,
                                     paths, 8, &s, f);
    is_rc(rc, VODLMS_OK, "json_ex: parsed");
    is_mem(s.user_id, s.user_id_len, "7", 1, "json_ex: the user as before");
    is_mem(f[0].value, f[0].len, "a@b.c", 5, "json_ex: a string");
    is_mem(f[1].value, f[1].len, "Z\xc3\xa9", 3, "json_ex: a dotted path");
    is_mem(f[2].value, f[2].len, "-3", 2, "json_ex: an integer");
    is_mem(f[3].value, f[3].len, "0.25", 4, "json_ex: a real");
    is_mem(f[4].value, f[4].len, "false", 5, "json_ex: a boolean");
    ok(!f[5].found && !f[6].found && !f[7].found,
       "json_ex: an object, an array, a missing key: not found");

    /* a field never fails the session; a broken session fails the fields */
    rc = vodlms_session_from_json_ex("{\"u\":7,\"p\":3}", 13, "u", NULL, NULL,
                                     paths, 2, &s, f);
    is_rc(rc, VODLMS_OK, "json_ex: a path through a number is not an error");
    ok(!f[1].found, "json_ex: ... and the field is not found");

    rc = vodlms_session_from_json_ex("{\"email\":\"x\"}", 13, "u", NULL, NULL,
                                     paths, 1, &s, f);
    is_rc(rc, VODLMS_ENOTFOUND, "json_ex: no user, no session");
    ok(!f[0].found, "json_ex: ... and no fields");

    is_rc(vodlms_session_from_json_ex(doc, sizeof(doc) - 1, "u", NULL, NULL,
                                      paths, VODLMS_SESSION_FIELDS_MAX + 1,
                                      &s, f),
          VODLMS_EINTERNAL, "json_ex: more fields than the maximum");

    /* vodlms_utf8_cut: whole characters only, stray bytes replaced */
    n = vodlms_utf8_cut("abc", 3, out, sizeof(out));
    is_mem(out, n, "abc", 3, "utf8_cut: ASCII as it is");
    n = vodlms_utf8_cut("a\xc3\xa9\xc3\xa9", 5, out, 4);
    is_mem(out, n, "a\xc3\xa9", 3, "utf8_cut: stops before a split character");
    n = vodlms_utf8_cut("a\xff" "b", 3, out, sizeof(out));
    is_mem(out, n, "a\xef\xbf\xbd" "b", 5, "utf8_cut: a stray byte is U+FFFD");
    n = vodlms_utf8_cut("\xc3", 1, out, sizeof(out));
    is_mem(out, n, "\xef\xbf\xbd", 3, "utf8_cut: a truncated sequence too");
    n = vodlms_utf8_cut("\xed\xa0\x80", 3, out, sizeof(out));
    is_int(n, 9, "utf8_cut: a surrogate is three stray bytes");
    n = vodlms_utf8_cut("ab\xff", 3, out, 4);
    is_mem(out, n, "ab", 2, "utf8_cut: no room for U+FFFD, stops");
    n = vodlms_utf8_cut("a\0b", 3, out, sizeof(out));
    is_mem(out, n, "a\0b", 3, "utf8_cut: NUL is a character (escaped later)");

    vodlms_session_field_set(&f[0], "x\x80", 2);
    is_mem(f[0].value, f[0].len, "x\xef\xbf\xbd", 4,
           "field_set: hash bytes made UTF-8");
}


/* ------------------------------------------------------------ captions */

/* the language tag of an exact-size copy: its canonical form, or "BAD" */
static const char *
caption_lang(const char *in)
{
    char          *copy;
    size_t         len;
    vodlms_rc_t    rc;
    static char    out[VODLMS_CAPTION_LANG_MAX + 1];

    len = strlen(in);
    copy = xdup(in, len);
    memset(out, 0, sizeof(out));
    rc = vodlms_caption_lang(copy, len, len <= VODLMS_CAPTION_LANG_MAX ? out : NULL);
    free(copy);

    return rc == VODLMS_OK ? out : "BAD";
}


/* the decoded label of an exact-size copy, or "BAD" */
static const char *
caption_label(const char *in)
{
    char           *copy;
    size_t          len, n;
    static char     out[512];

    len = strlen(in);
    copy = xdup(in, len);
    n = 0;
    memset(out, 0, sizeof(out));

    if (vodlms_caption_label(copy, len, out, &n) != VODLMS_OK) {
        free(copy);
        return "BAD";
    }

    free(copy);
    out[n] = '\0';

    return out;
}


static void
test_caption(void)
{
    size_t        i;
    char          in[8];
    const char   *bad_langs[] = {
        "", "e", "english", "123", "1en", "e1", "en-", "-en", "en--US",
        "en-abcdefghi", "en-a-b-c-d", "en_US", "en US", "en-\xc3\xa9",
        "abc-12345678-12345678-123456789", "en-US\n"
    };
    const char   *bad_labels[] = {
        "Say \"hi\"", "two%0Alines", "tab%09", "del%7F", "nel%C2%85",
        "line%E2%80%A8sep", "para%E2%80%A9sep", "latin1%E9", "overlong%C0%AF",
        "surrogate%ED%A0%80", "bad%G1", "cut%4", "cut%", "nul%00", "%22",
        "raw\x01" "control", "%23EXT-X-CONTENT-STEERING:SERVER-URI=https://evil.example/",
        "a+%23ext-x-stream-inf", "%23eXt", "x%7B%24y%7D", "{$"
    };

    /* the canonical case of each kind of subtag */
    is_str(caption_lang("en"), "en", "caption_lang: a language as it is");
    is_str(caption_lang("EN-us"), "en-US", "caption_lang: region upper case");
    is_str(caption_lang("zh-hans"), "zh-Hans", "caption_lang: script Title case");
    is_str(caption_lang("ZH-HANS-CN"), "zh-Hans-CN", "caption_lang: script and region");
    is_str(caption_lang("es-419"), "es-419", "caption_lang: a numeric region as it is");
    is_str(caption_lang("SL-Rozaj-BISKE"), "sl-rozaj-biske", "caption_lang: variants lower case");
    is_str(caption_lang("gsw-u-sd-chzh"), "gsw-u-SD-Chzh",
           "caption_lang: the rule holds for any later subtag (two: upper, four: Title)");
    is_str(caption_lang("de-1996"), "de-1996", "caption_lang: four digits stay digits");
    is_str(caption_lang("en-a1"), "en-A1", "caption_lang: two alphanumerics upper case");
    is_str(caption_lang("abc-12345678-12345678-12345678"), "abc-12345678-12345678-12345678",
           "caption_lang: the longest tag (30 bytes)");

    for (i = 0; i < sizeof(bad_langs) / sizeof(bad_langs[0]); i++) {
        is_str(caption_lang(bad_langs[i]), "BAD", "caption_lang: \"%s\" is refused", bad_langs[i]);
    }

    /* labels: percent-decoded, '+' a space, 1-64 bytes of plain UTF-8 */
    is_str(caption_label("English"), "English", "caption_label: plain text as it is");
    is_str(caption_label("English+%28US%29"), "English (US)", "caption_label: '+' and escapes decoded");
    is_str(caption_label("Fran%c3%a7ais"), "Fran\xc3\xa7" "ais", "caption_label: lower-case escapes too");
    is_str(caption_label("%E6%97%A5%E6%9C%AC%E8%AA%9E"), "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
           "caption_label: CJK");
    is_str(caption_label("100%25+sure"), "100% sure", "caption_label: an escaped '%'");
    is_str(caption_label("%2B1"), "+1", "caption_label: an escaped '+'");
    is_str(caption_label("%F0%9F%98%80"), "\xf0\x9f\x98\x80", "caption_label: four-byte UTF-8");
    is_str(caption_label(" "), " ", "caption_label: one space is a label");
    is_str(caption_label("C%23+%23EX+%7B+%24"), "C# #EX { $",
           "caption_label: '#' and '{' alone, '#EX' and '$' alone are text");

    {
        size_t  n;
        char   *l64, *l65, *e32, *e32a;

        l64 = xrepeat("a", 64, &n);
        l65 = xrepeat("a", 65, &n);
        e32 = xrepeat("%C3%A9", 32, &n);
        e32a = xrepeat("%C3%A9", 33, &n);
        e32a[n - 6] = 'a';
        e32a[n - 5] = '\0';

        is_int(strlen(caption_label(l64)), 64, "caption_label: 64 bytes");
        is_str(caption_label(l65), "BAD", "caption_label: 65 bytes are refused");
        is_int(strlen(caption_label(e32)), 64, "caption_label: 32 two-byte characters (64 bytes)");
        is_str(caption_label(e32a), "BAD", "caption_label: ... and one byte more is refused");
        free(l64);
        free(l65);
        free(e32);
        free(e32a);
    }

    is_str(caption_label(""), "BAD", "caption_label: empty is refused (the caller uses the language)");

    for (i = 0; i < sizeof(bad_labels) / sizeof(bad_labels[0]); i++) {
        is_str(caption_label(bad_labels[i]), "BAD", "caption_label: \"%s\" is refused", bad_labels[i]);
    }

    /* the default flag */
    is_int(vodlms_caption_flag(NULL, 0), 0, "caption_flag: empty is no");
    is_int(vodlms_caption_flag(LIT("0")), 0, "caption_flag: 0");
    is_int(vodlms_caption_flag(LIT("False")), 0, "caption_flag: False");
    is_int(vodlms_caption_flag(LIT("no")), 0, "caption_flag: no");
    is_int(vodlms_caption_flag(LIT("OFF")), 0, "caption_flag: OFF");
    is_int(vodlms_caption_flag(LIT("1")), 1, "caption_flag: 1");
    is_int(vodlms_caption_flag(LIT("TRUE")), 1, "caption_flag: TRUE");
    is_int(vodlms_caption_flag(LIT("Yes")), 1, "caption_flag: Yes");
    is_int(vodlms_caption_flag(LIT("on")), 1, "caption_flag: on");
    is_int(vodlms_caption_flag(LIT("2")), -1, "caption_flag: 2");
    is_int(vodlms_caption_flag(LIT("y")), -1, "caption_flag: y");
    is_int(vodlms_caption_flag(LIT("yes ")), -1, "caption_flag: a trailing space");
    is_int(vodlms_caption_flag(LIT("truely")), -1, "caption_flag: a longer word");
    is_int(vodlms_caption_flag(LIT("o\0n")), -1, "caption_flag: a NUL inside");
    is_int(vodlms_caption_flag(LIT("no\0")), -1, "caption_flag: a NUL after a word");

    /* the canonical form is a fixed point, and never longer than the input */
    memcpy(in, "Zh-hANT", 7);
    is_rc(vodlms_caption_lang(in, 7, in), VODLMS_OK, "caption_lang: in place");
    is_mem(in, 7, "zh-Hant", 7, "caption_lang: ... gives the canonical form");
}


int
main(void)
{
    test_rc();
    test_cookie();
    test_pct_decode();
    test_bearer();
    test_token_valid();
    test_id_integer();
    test_sql_schema();
    test_express();
    test_expiry();
    test_session_json();
    test_session_fields();
    test_session_extra();
    test_beacon();
    test_beacon_oracle();
    test_storage_prefix();
    test_progress();
    test_coverage_complete();
    test_json_output();
    test_numeral_fast();
    test_switch_master();
    test_caption();

    return done_testing();
}
