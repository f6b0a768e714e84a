/*
 * Signed HLS playlists: the rewriter.  The contract is in vodlms_hls.h.
 *
 * One pass over the lines; the input is copied in chunks up to each place
 * a query goes, so the output is the input plus insertions by
 * construction.  The same code measures (out == NULL) and writes, which
 * is what makes the measured size the written size.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE                               /* memmem() */
#endif
#include <string.h>

#include "vodlms_hls.h"


typedef struct {
    char                     *out;         /* NULL: measure only */
    size_t                    size;
    size_t                    len;
    const char               *copied;      /* input copied up to here */
    const char               *query;
    size_t                    query_len;
    const vodlms_hls_opts_t  *opts;
    const char               *origin_auth; /* opts->origin after "://" */
    size_t                    origin_auth_len;
    size_t                    origin_scheme_len;
    vodlms_hls_err_t         *err;
    int                       define;       /* opts->define in use */
    int                       version_seen;
    size_t                    version;      /* its value, up to 1000 */
    char                      ref[VODLMS_HLS_DEFINE_MAX + 3]; /* "{$v}" */
    size_t                    line;
    const char               *line_start;
    const char               *in;
} vodlms_hls_ctx_t;


/*
 * The tags with a URI attribute, with their ':'.  The first
 * VODLMS_HLS_KEY_TAGS name a key: its URI is checked but never signed.
 */
#define VODLMS_HLS_KEY_TAGS  2

static const vodlms_cstr_t  vodlms_hls_uri_tags[] = {
    { "#EXT-X-KEY:", sizeof("#EXT-X-KEY:") - 1 },
    { "#EXT-X-SESSION-KEY:", sizeof("#EXT-X-SESSION-KEY:") - 1 },
    { "#EXT-X-MAP:", sizeof("#EXT-X-MAP:") - 1 },
    { "#EXT-X-MEDIA:", sizeof("#EXT-X-MEDIA:") - 1 },
    { "#EXT-X-I-FRAME-STREAM-INF:",
      sizeof("#EXT-X-I-FRAME-STREAM-INF:") - 1 },
    { "#EXT-X-SESSION-DATA:", sizeof("#EXT-X-SESSION-DATA:") - 1 },
    { "#EXT-X-PART:", sizeof("#EXT-X-PART:") - 1 },
    { "#EXT-X-PRELOAD-HINT:", sizeof("#EXT-X-PRELOAD-HINT:") - 1 },
    { "#EXT-X-RENDITION-REPORT:", sizeof("#EXT-X-RENDITION-REPORT:") - 1 }
};


static vodlms_rc_t
vodlms_hls_fail(vodlms_hls_ctx_t *c, vodlms_rc_t rc, const char *reason)
{
    if (c->err != NULL) {
        c->err->line = c->line;
        c->err->offset = c->line ? (size_t) (c->line_start - c->in) : 0;
        c->err->reason = reason;
    }

    return rc;
}


static vodlms_rc_t
vodlms_hls_emit(vodlms_hls_ctx_t *c, const char *p, size_t n)
{
    if (n > (size_t) -1 - c->len) {
        return vodlms_hls_fail(c, VODLMS_ETOOLONG, "output too large");
    }

    if (c->out != NULL) {
        if (n > c->size - c->len) {
            return vodlms_hls_fail(c, VODLMS_EINTERNAL,
                                   "output buffer too small");
        }

        if (n) {
            memcpy(c->out + c->len, p, n);
        }
    }

    c->len += n;

    return VODLMS_OK;
}


/* copy the input up to `at`, then the separator and the query */
static vodlms_rc_t
vodlms_hls_insert(vodlms_hls_ctx_t *c, const char *at, char sep)
{
    vodlms_rc_t  rc;

    rc = vodlms_hls_emit(c, c->copied, (size_t) (at - c->copied));
    if (rc != VODLMS_OK) {
        return rc;
    }

    c->copied = at;

    rc = vodlms_hls_emit(c, &sep, 1);
    if (rc != VODLMS_OK) {
        return rc;
    }

    if (c->define) {
        return vodlms_hls_emit(c, c->ref, c->opts->define_len + 3);
    }

    return vodlms_hls_emit(c, c->query, c->query_len);
}


static int
vodlms_hls_alpha(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}


static int
vodlms_hls_digit(unsigned char ch)
{
    return ch >= '0' && ch <= '9';
}


static int
vodlms_hls_ws(unsigned char ch)
{
    return ch == ' ' || ch == '\t';
}


static int
vodlms_hls_ci_eq(const char *a, const char *b, size_t n)
{
    size_t         i;
    unsigned char  x, y;

    for (i = 0; i < n; i++) {
        x = (unsigned char) a[i];
        y = (unsigned char) b[i];
        x = (x >= 'A' && x <= 'Z') ? (unsigned char) (x + 32) : x;
        y = (y >= 'A' && y <= 'Z') ? (unsigned char) (y + 32) : y;

        if (x != y) {
            return 0;
        }
    }

    return 1;
}


/* the length of the RFC 3986 scheme before ':', 0 when there is none */
static size_t
vodlms_hls_scheme(const char *u, size_t len)
{
    size_t         i;
    unsigned char  ch;

    if (len == 0 || !vodlms_hls_alpha((unsigned char) u[0])) {
        return 0;
    }

    for (i = 1; i < len; i++) {
        ch = (unsigned char) u[i];

        if (ch == ':') {
            return i;
        }

        if (!(vodlms_hls_alpha(ch) || vodlms_hls_digit(ch)
              || ch == '+' || ch == '-' || ch == '.'))
        {
            return 0;
        }
    }

    return 0;
}


/* the authority after "//" at u (up to '/', '?', '#' or the end) */
static size_t
vodlms_hls_authority(const char *u, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (u[i] == '/' || u[i] == '?' || u[i] == '#') {
            break;
        }
    }

    return i;
}


/* an absolute (or "//") URI on the configured origin? */
static int
vodlms_hls_on_origin(vodlms_hls_ctx_t *c, const char *u, size_t len,
    size_t scheme)
{
    size_t  a;

    if (scheme) {
        if (scheme != c->origin_scheme_len
            || !vodlms_hls_ci_eq(u, c->opts->origin, scheme))
        {
            return 0;
        }

        u += scheme + 1;
        len -= scheme + 1;
    }

    if (len < 2 || u[0] != '/' || u[1] != '/') {
        return 0;                                    /* "http:x" */
    }

    u += 2;
    len -= 2;
    a = vodlms_hls_authority(u, len);

    return a == c->origin_auth_len && memchr(u, '@', a) == NULL
           && vodlms_hls_ci_eq(u, c->origin_auth, a);
}


/* sign one URI [u, u + len) of the input, if the rules say so */
static vodlms_rc_t
vodlms_hls_sign(vodlms_hls_ctx_t *c, const char *u, size_t len)
{
    size_t       scheme;
    const char  *frag;
    int          absolute, has_query;

    scheme = vodlms_hls_scheme(u, len);

    if (scheme) {
        if (!((scheme == 4 && vodlms_hls_ci_eq(u, "http", 4))
              || (scheme == 5 && vodlms_hls_ci_eq(u, "https", 5))))
        {
            return VODLMS_OK;                     /* skd:, data:, ... */
        }

        absolute = 1;

    } else {
        absolute = len >= 2 && u[0] == '/' && u[1] == '/';
    }

    if (absolute) {
        switch (c->opts->absolute) {

        case VODLMS_HLS_ABS_REFUSE:
            return vodlms_hls_fail(c, VODLMS_EREFUSED, "absolute URI");

        case VODLMS_HLS_ABS_ORIGIN:
            if (vodlms_hls_on_origin(c, u, len, scheme)) {
                break;
            }

            return VODLMS_OK;

        default:
            return VODLMS_OK;
        }
    }

    if (c->query_len == 0) {
        return VODLMS_OK;
    }

    /* the fragment (the first '#'), and a '?' before it: one scan of a
       URI that is a dozen bytes in a media playlist */
    has_query = 0;

    for (frag = u; frag < u + len && *frag != '#'; frag++) {
        if (*frag == '?') {
            has_query = 1;
        }
    }

    return vodlms_hls_insert(c, frag, has_query ? '&' : '?');
}


/* the attribute list of a URI tag, [p, end): sign its URI attribute
   (key: check it only) */
static vodlms_rc_t
vodlms_hls_attrs(vodlms_hls_ctx_t *c, const char *p, const char *end,
    int key)
{
    int          seen;
    const char  *name, *eq, *v, *q;
    vodlms_rc_t  rc;

    seen = 0;

    for ( ;; ) {
        while (p < end && vodlms_hls_ws((unsigned char) *p)) {
            p++;
        }

        if (p == end) {
            return VODLMS_OK;
        }

        /* [A-Z0-9-] by the RFC; lower case taken (it is no URI) */
        name = p;
        while (p < end && (vodlms_hls_alpha((unsigned char) *p)
                           || vodlms_hls_digit((unsigned char) *p)
                           || *p == '-'))
        {
            p++;
        }

        if (p == end || *p != '=' || p == name) {
            return vodlms_hls_fail(c, VODLMS_EMALFORMED,
                                   "bad attribute name or no '='");
        }

        eq = p++;

        if (p < end && *p == '"') {
            v = p + 1;
            q = memchr(v, '"', (size_t) (end - v));
            if (q == NULL) {
                return vodlms_hls_fail(c, VODLMS_EMALFORMED,
                                       "unterminated quoted string");
            }

            p = q + 1;
            while (p < end && vodlms_hls_ws((unsigned char) *p)) {
                p++;
            }

            if (p < end && *p != ',') {
                return vodlms_hls_fail(c, VODLMS_EMALFORMED,
                                       "junk after a quoted string");
            }

        } else {
            v = NULL;
            q = NULL;
            while (p < end && *p != ',') {
                if (*p == '"') {
                    return vodlms_hls_fail(c, VODLMS_EMALFORMED,
                                           "quote inside an unquoted value");
                }

                p++;
            }
        }

        if (eq - name == 3 && memcmp(name, "URI", 3) == 0) {
            if (v == NULL) {
                return vodlms_hls_fail(c, VODLMS_EMALFORMED, "unquoted URI");
            }

            if (q == v) {
                return vodlms_hls_fail(c, VODLMS_EMALFORMED, "empty URI");
            }

            if (seen++) {
                return vodlms_hls_fail(c, VODLMS_EMALFORMED,
                                       "URI attribute given twice");
            }

            /* a key is served by the LMS behind its session, never by the
               media's host: its URI goes out as written */
            rc = key ? VODLMS_OK : vodlms_hls_sign(c, v, (size_t) (q - v));
            if (rc != VODLMS_OK) {
                return rc;
            }
        }

        if (p == end) {
            return VODLMS_OK;
        }

        p++;                                                  /* ',' */
    }
}


/* define mode: "#EXT-X-VERSION:n" at [s, e), raised to 8 when below */
static vodlms_rc_t
vodlms_hls_version(vodlms_hls_ctx_t *c, const char *s, const char *e)
{
    const char   *d;
    size_t        v;
    vodlms_rc_t   rc;

    d = s + sizeof("#EXT-X-VERSION") - 1;

    if (d == e || *d != ':' || ++d == e) {
        return vodlms_hls_fail(c, VODLMS_EMALFORMED, "bad EXT-X-VERSION");
    }

    if (c->version_seen++) {
        return vodlms_hls_fail(c, VODLMS_EMALFORMED,
                               "EXT-X-VERSION given twice");
    }

    v = 0;

    for (s = d; s < e; s++) {
        if (!vodlms_hls_digit((unsigned char) *s)) {
            return vodlms_hls_fail(c, VODLMS_EMALFORMED, "bad EXT-X-VERSION");
        }

        if (v < 1000) {
            v = v * 10 + (size_t) (*s - '0');
        }
    }

    c->version = v;

    if (v >= VODLMS_HLS_DEFINE_VERSION) {
        return VODLMS_OK;
    }

    /* the digits are replaced: copy up to them, skip them, write "8" */
    rc = vodlms_hls_emit(c, c->copied, (size_t) (d - c->copied));
    if (rc != VODLMS_OK) {
        return rc;
    }

    c->copied = e;

    return vodlms_hls_emit(c, "8", 1);
}


/* define mode: an EXT-X-DEFINE of the playlist's own, attributes [p, e):
   refused when it names our variable */
static vodlms_rc_t
vodlms_hls_defined(vodlms_hls_ctx_t *c, const char *p, const char *e)
{
    size_t       n;
    const char  *name, *v, *q;

    n = c->opts->define_len;

    while (p < e) {
        name = p;
        while (p < e && *p != '=' && *p != ',') {
            p++;
        }

        if (p == e || *p != '=') {
            return vodlms_hls_fail(c, VODLMS_EMALFORMED,
                                   "bad attribute name or no '='");
        }

        v = ++p;

        if (p < e && *p == '"') {
            q = memchr(p + 1, '"', (size_t) (e - p - 1));
            if (q == NULL) {
                return vodlms_hls_fail(c, VODLMS_EMALFORMED,
                                       "unterminated quoted string");
            }

            if ((size_t) (q - v - 1) == n
                && memcmp(v + 1, c->opts->define, n) == 0
                && ((p - name == 5 && memcmp(name, "NAME=", 5) == 0)
                    || (p - name == 7 && memcmp(name, "IMPORT=", 7) == 0)
                    || (p - name == 11
                        && memcmp(name, "QUERYPARAM=", 11) == 0)))
            {
                return vodlms_hls_fail(c, VODLMS_EMALFORMED,
                                       "the playlist defines the variable "
                                       "already");
            }

            p = q + 1;
        }

        while (p < e && *p != ',') {
            p++;
        }

        if (p < e) {
            p++;
        }
    }

    return VODLMS_OK;
}


/* define mode: after the #EXTM3U line, the EXT-X-DEFINE (and the
   EXT-X-VERSION the playlist lacks); eol is the #EXTM3U line's ending,
   at = where the next line starts */
static vodlms_rc_t
vodlms_hls_header(vodlms_hls_ctx_t *c, const char *at, const char *eol,
    size_t eol_len, int versioned)
{
    vodlms_rc_t  rc;

    rc = vodlms_hls_emit(c, c->copied, (size_t) (at - c->copied));
    if (rc != VODLMS_OK) {
        return rc;
    }

    c->copied = at;

    if (eol_len == 0) {
        /* "#EXTM3U" was the whole input: its line is ended first */
        eol = "\n";
        eol_len = 1;

        rc = vodlms_hls_emit(c, eol, eol_len);
        if (rc != VODLMS_OK) {
            return rc;
        }
    }

    if (!versioned) {
        rc = vodlms_hls_emit(c, "#EXT-X-VERSION:8", 16);
        if (rc == VODLMS_OK) {
            rc = vodlms_hls_emit(c, eol, eol_len);
        }

        if (rc != VODLMS_OK) {
            return rc;
        }
    }

    rc = vodlms_hls_emit(c, "#EXT-X-DEFINE:NAME=\"", 20);
    if (rc == VODLMS_OK) {
        rc = vodlms_hls_emit(c, c->opts->define, c->opts->define_len);
    }
    if (rc == VODLMS_OK) {
        rc = vodlms_hls_emit(c, "\",VALUE=\"", 9);
    }
    if (rc == VODLMS_OK && c->out != NULL && c->opts->value_at != NULL) {
        *c->opts->value_at = c->len;
    }
    if (rc == VODLMS_OK) {
        rc = vodlms_hls_emit(c, c->query, c->query_len);
    }
    if (rc == VODLMS_OK) {
        rc = vodlms_hls_emit(c, "\"", 1);
    }
    if (rc == VODLMS_OK) {
        rc = vodlms_hls_emit(c, eol, eol_len);
    }

    return rc;
}


static vodlms_rc_t
vodlms_hls_line(vodlms_hls_ctx_t *c, const char *s, const char *e)
{
    size_t  i, n;

    while (s < e && vodlms_hls_ws((unsigned char) *s)) {
        s++;
    }

    while (e > s && vodlms_hls_ws((unsigned char) e[-1])) {
        e--;
    }

    if (s == e) {
        return VODLMS_OK;                                     /* blank */
    }

    if (*s != '#') {
        return vodlms_hls_sign(c, s, (size_t) (e - s));
    }

    /* most lines of a media playlist are #EXTINF: one compare for them */
    if ((size_t) (e - s) < 7 || memcmp(s, "#EXT-X-", 7) != 0) {
        return VODLMS_OK;
    }

    if (c->define) {
        if ((size_t) (e - s) >= sizeof("#EXT-X-VERSION") - 1
            && memcmp(s, "#EXT-X-VERSION", sizeof("#EXT-X-VERSION") - 1) == 0)
        {
            return vodlms_hls_version(c, s, e);
        }

        if ((size_t) (e - s) >= sizeof("#EXT-X-DEFINE:") - 1
            && memcmp(s, "#EXT-X-DEFINE:", sizeof("#EXT-X-DEFINE:") - 1) == 0)
        {
            return vodlms_hls_defined(c, s + sizeof("#EXT-X-DEFINE:") - 1, e);
        }
    }

    for (i = 0; i < sizeof(vodlms_hls_uri_tags)
                    / sizeof(vodlms_hls_uri_tags[0]); i++)
    {
        n = vodlms_hls_uri_tags[i].len;

        if ((size_t) (e - s) >= n
            && memcmp(s, vodlms_hls_uri_tags[i].data, n) == 0)
        {
            return vodlms_hls_attrs(c, s + n, e, i < VODLMS_HLS_KEY_TAGS);
        }
    }

    return VODLMS_OK;                          /* comment, other tag */
}


static int
vodlms_hls_query_valid(const char *q, size_t len)
{
    size_t         i;
    unsigned char  ch;

    if (len && (q[0] == '?' || q[0] == '&')) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        ch = (unsigned char) q[i];

        if (ch == '%') {
            if (len - i < 3 || vodlms_hex_value((unsigned char) q[i + 1]) < 0
                || vodlms_hex_value((unsigned char) q[i + 2]) < 0)
            {
                return 0;
            }

            i += 2;
            continue;
        }

        if (vodlms_hls_alpha(ch) || vodlms_hls_digit(ch)
            || (ch != '\0' && strchr("-._~!$&'()*+,;=:@/?", ch) != NULL))
        {
            continue;
        }

        return 0;
    }

    return 1;
}


int
vodlms_hls_query_ok(const char *query, size_t query_len)
{
    return (query != NULL || query_len == 0)
           && vodlms_hls_query_valid(query, query_len);
}


static vodlms_rc_t
vodlms_hls_opts_check(vodlms_hls_ctx_t *c)
{
    const vodlms_hls_opts_t  *o;
    size_t                    s;
    const char               *a;

    o = c->opts;

    if (o->max_size == 0 || o->max_line == 0) {
        return vodlms_hls_fail(c, VODLMS_EINTERNAL, "zero limit");
    }

    if (o->define != NULL || o->define_len) {
        if (o->define == NULL || o->define_len == 0
            || o->define_len > VODLMS_HLS_DEFINE_MAX)
        {
            return vodlms_hls_fail(c, VODLMS_EINTERNAL, "bad variable name");
        }

        for (s = 0; s < o->define_len; s++) {
            if (!(vodlms_hls_alpha((unsigned char) o->define[s])
                  || vodlms_hls_digit((unsigned char) o->define[s])
                  || o->define[s] == '_' || o->define[s] == '-'))
            {
                return vodlms_hls_fail(c, VODLMS_EINTERNAL,
                                       "bad variable name");
            }
        }
    }

    switch (o->absolute) {

    case VODLMS_HLS_ABS_KEEP:
    case VODLMS_HLS_ABS_REFUSE:
        return VODLMS_OK;

    case VODLMS_HLS_ABS_ORIGIN:
        break;

    default:
        return vodlms_hls_fail(c, VODLMS_EINTERNAL, "unknown absolute mode");
    }

    if (o->origin == NULL) {
        return vodlms_hls_fail(c, VODLMS_EINTERNAL, "no origin");
    }

    s = vodlms_hls_scheme(o->origin, o->origin_len);

    if (!((s == 4 && vodlms_hls_ci_eq(o->origin, "http", 4))
          || (s == 5 && vodlms_hls_ci_eq(o->origin, "https", 5)))
        || o->origin_len - s < 4
        || memcmp(o->origin + s, "://", 3) != 0)
    {
        return vodlms_hls_fail(c, VODLMS_EINTERNAL,
                               "origin is not http(s)://authority");
    }

    a = o->origin + s + 3;
    c->origin_scheme_len = s;
    c->origin_auth = a;
    c->origin_auth_len = o->origin_len - s - 3;

    if (vodlms_hls_authority(a, c->origin_auth_len) != c->origin_auth_len
        || memchr(a, '@', c->origin_auth_len) != NULL
        || !vodlms_hls_query_valid(a, c->origin_auth_len))
    {
        return vodlms_hls_fail(c, VODLMS_EINTERNAL,
                               "origin is not http(s)://authority");
    }

    return VODLMS_OK;
}


vodlms_rc_t
vodlms_hls_rewrite(const char *in, size_t in_len, const char *query,
    size_t query_len, const vodlms_hls_opts_t *opts, char *out,
    size_t out_size, size_t *out_len, vodlms_hls_err_t *err)
{
    int                header, nul, cr, versioned;
    vodlms_rc_t        rc;
    const char        *p, *end, *nl, *e, *t;
    vodlms_hls_ctx_t   c;

    memset(&c, 0, sizeof(c));
    c.out = out;
    c.size = out_size;
    c.query = query;
    c.query_len = query_len;
    c.opts = opts;
    c.err = err;
    c.in = in;

    if (opts == NULL || out_len == NULL || (in == NULL && in_len)
        || (query == NULL && query_len))
    {
        return vodlms_hls_fail(&c, VODLMS_EINTERNAL, "bad arguments");
    }

    rc = vodlms_hls_opts_check(&c);
    if (rc != VODLMS_OK) {
        return rc;
    }

    if (!vodlms_hls_query_valid(query, query_len)) {
        return vodlms_hls_fail(&c, VODLMS_EINTERNAL,
                               "query string is not URI query characters");
    }

    if (in_len > opts->max_size) {
        return vodlms_hls_fail(&c, VODLMS_ETOOLONG, "playlist too large");
    }

    /* define mode: the query once, a reference to it in every URI */
    versioned = 0;

    if (opts->define != NULL && query_len) {
        c.define = 1;
        c.ref[0] = '{';
        c.ref[1] = '$';
        memcpy(c.ref + 2, opts->define, opts->define_len);
        c.ref[opts->define_len + 2] = '}';
        versioned = memmem(in, in_len, "#EXT-X-VERSION", 14) != NULL;
    }

    p = in;
    end = in + in_len;
    c.copied = in;

    if (in_len >= 3 && memcmp(in, "\xef\xbb\xbf", 3) == 0) {
        p += 3;                                           /* UTF-8 BOM */
    }

    header = 0;

    /*
     * A NUL or a CR anywhere at all?  Most playlists have neither (or no
     * CR): then the lines are not searched for them one by one, which is
     * two calls a line; the line of an error is found as before.
     */
    nul = memchr(p, '\0', (size_t) (end - p)) != NULL;
    cr = memchr(p, '\r', (size_t) (end - p)) != NULL;

    while (p < end) {
        c.line++;
        c.line_start = p;

        nl = memchr(p, '\n', (size_t) (end - p));
        e = (nl != NULL) ? nl : end;

        if (nl != NULL && e > p && e[-1] == '\r') {
            e--;
        }

        if ((size_t) (e - p) > opts->max_line) {
            return vodlms_hls_fail(&c, VODLMS_ETOOLONG, "line too long");
        }

        if (nul && memchr(p, '\0', (size_t) (e - p)) != NULL) {
            return vodlms_hls_fail(&c, VODLMS_EMALFORMED, "NUL byte");
        }

        if (cr && memchr(p, '\r', (size_t) (e - p)) != NULL) {
            return vodlms_hls_fail(&c, VODLMS_EMALFORMED,
                                   "CR not followed by LF");
        }

        if (!header) {
            if ((size_t) (e - p) < 7 || memcmp(p, "#EXTM3U", 7) != 0) {
                return vodlms_hls_fail(&c, VODLMS_EMALFORMED,
                                       "not a playlist (no #EXTM3U first)");
            }

            for (t = p + 7; t < e; t++) {
                if (!vodlms_hls_ws((unsigned char) *t)) {
                    return vodlms_hls_fail(&c, VODLMS_EMALFORMED,
                                        "not a playlist (no #EXTM3U first)");
                }
            }

            header = 1;

            if (c.define) {
                if (nl == NULL) {
                    rc = vodlms_hls_header(&c, end, NULL, 0, versioned);

                } else if (e < nl) {
                    rc = vodlms_hls_header(&c, nl + 1, "\r\n", 2, versioned);

                } else {
                    rc = vodlms_hls_header(&c, nl + 1, "\n", 1, versioned);
                }

                if (rc != VODLMS_OK) {
                    return rc;
                }
            }

        } else {
            rc = vodlms_hls_line(&c, p, e);
            if (rc != VODLMS_OK) {
                return rc;
            }
        }

        p = (nl != NULL) ? nl + 1 : end;
    }

    if (!header) {                             /* empty, or a BOM alone */
        return vodlms_hls_fail(&c, VODLMS_EMALFORMED,
                               "not a playlist (empty)");
    }

    if (c.define && c.version < VODLMS_HLS_DEFINE_VERSION
        && memmem(in, in_len, "{$", 2) != NULL)
    {
        c.line = 0;
        return vodlms_hls_fail(&c, VODLMS_EMALFORMED,
                               "\"{$\" in a playlist below version 8 (it "
                               "would name a variable)");
    }

    if (versioned && !c.version_seen) {
        /* the text is there, but not as a tag: the version written
           cannot be told from the one the player would read */
        c.line = 0;
        return vodlms_hls_fail(&c, VODLMS_EMALFORMED,
                               "\"#EXT-X-VERSION\" not at the start of a "
                               "tag line");
    }

    rc = vodlms_hls_emit(&c, c.copied, (size_t) (end - c.copied));
    if (rc != VODLMS_OK) {
        return rc;
    }

    *out_len = c.len;

    return VODLMS_OK;
}
