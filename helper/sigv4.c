/*
 * AWS Signature Version 4 on OpenSSL 3 (EVP_Digest, EVP_Q_mac).
 *
 *   CanonicalRequest = Method \n CanonicalURI \n CanonicalQuery \n
 *                      CanonicalHeaders \n SignedHeaders \n PayloadHash
 *   StringToSign     = AWS4-HMAC-SHA256 \n AmzDate \n Scope \n hex(sha256(CR))
 *   SigningKey       = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")
 *   Signature        = hex(HMAC(SigningKey, StringToSign))
 */

#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "sigv4.h"

/* ---------------------------------------------------------------- strings */

typedef struct {
    char    *p;
    size_t   len, cap;
    int      failed;
} sb_t;

static void
sb_add(sb_t *b, const char *s, size_t n)
{
    if (b->failed) {
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t  cap = b->cap ? b->cap * 2 : 256;
        char   *np;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        np = realloc(b->p, cap);
        if (np == NULL) {
            b->failed = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void
sb_str(sb_t *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

static void
sb_printf(sb_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
sb_printf(sb_t *b, const char *fmt, ...)
{
    va_list  ap;
    char     small[1024];
    int      n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t) n >= sizeof(small)) {
        b->failed = 1;
        return;
    }
    sb_add(b, small, n);
}

/* the string, or NULL if anything failed; the buffer is given away */
static char *
sb_done(sb_t *b)
{
    if (b->failed || b->p == NULL) {
        free(b->p);
        if (!b->failed) {
            return calloc(1, 1);
        }
        return NULL;
    }
    return b->p;
}

static char *
dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);

    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static int
unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
           || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
           || c == '~';
}

static void
hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char  digits[] = "0123456789abcdef";
    size_t             i;

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0xf];
    }
    out[2 * n] = '\0';
}

char *
vh_sigv4_uri_encode(const char *s, size_t len, int keep_slash)
{
    static const char  digits[] = "0123456789ABCDEF";
    sb_t               b = { 0 };
    size_t             i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char) s[i];
        if (unreserved(c) || (keep_slash && c == '/')) {
            sb_add(&b, (const char *) &c, 1);
        } else {
            char e[3] = { '%', digits[c >> 4], digits[c & 0xf] };
            sb_add(&b, e, 3);
        }
    }
    return sb_done(&b);
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* %XX decoded (a malformed escape stays as it is) */
static char *
uri_decode(const char *s, size_t len, size_t *outlen)
{
    char    *d = malloc(len + 1);
    size_t   i, n = 0;

    if (d == NULL) {
        return NULL;
    }
    for (i = 0; i < len; i++) {
        if (s[i] == '%' && i + 2 < len
            && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0)
        {
            d[n++] = (char) (hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            d[n++] = s[i];
        }
    }
    d[n] = '\0';
    *outlen = n;
    return d;
}

/* ---------------------------------------------------------------- crypto */

void
vh_sigv4_sha256_hex(const void *data, size_t len, char hex[65])
{
    unsigned char  md[32];
    unsigned int   mdlen = 0;

    if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32) {
        memset(md, 0, sizeof(md));
    }
    hex_encode(md, 32, hex);
}

static int
hmac256(const void *key, size_t keylen, const void *data, size_t len,
    unsigned char out[32])
{
    size_t outlen = 0;

    if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, keylen, data, len,
                  out, 32, &outlen) == NULL || outlen != 32)
    {
        return -1;
    }
    return 0;
}

int
vh_sigv4_signing_key(const char *secret, const char *date8,
    const char *region, const char *service, unsigned char key[32])
{
    unsigned char  k[32];
    char          *k0;
    size_t         n = strlen(secret);
    int            rc;

    k0 = malloc(n + 5);
    if (k0 == NULL) {
        return -1;
    }
    memcpy(k0, "AWS4", 4);
    memcpy(k0 + 4, secret, n + 1);
    rc = hmac256(k0, n + 4, date8, strlen(date8), k);
    OPENSSL_cleanse(k0, n + 4);
    free(k0);
    if (rc != 0
        || hmac256(k, 32, region, strlen(region), k) != 0
        || hmac256(k, 32, service, strlen(service), k) != 0
        || hmac256(k, 32, "aws4_request", 12, key) != 0)
    {
        OPENSSL_cleanse(k, sizeof(k));
        return -1;
    }
    OPENSSL_cleanse(k, sizeof(k));
    return 0;
}

/* ---------------------------------------------------------------- canonical parts */

char *
vh_sigv4_canonical_path(const char *path, int normalize)
{
    sb_t     b = { 0 };
    char    *enc, *work, **segs, *seg, *save = NULL;
    size_t   nseg = 0, i, len;
    int      trailing;

    if (path == NULL || path[0] == '\0') {
        path = "/";
    }
    if (!normalize) {
        return vh_sigv4_uri_encode(path, strlen(path), 1);
    }

    /* RFC 3986 dot-segment removal, empty segments dropped */
    len = strlen(path);
    trailing = path[len - 1] == '/';
    work = dup_n(path, len);
    segs = calloc(len + 1, sizeof(char *));
    if (work == NULL || segs == NULL) {
        free(work);
        free(segs);
        return NULL;
    }
    for (seg = strtok_r(work, "/", &save); seg; seg = strtok_r(NULL, "/", &save)) {
        if (!strcmp(seg, ".")) {
            continue;
        }
        if (!strcmp(seg, "..")) {
            if (nseg > 0) {
                nseg--;
            }
            continue;
        }
        segs[nseg++] = seg;
    }
    for (i = 0; i < nseg; i++) {
        sb_str(&b, "/");
        sb_str(&b, segs[i]);
    }
    if (nseg == 0 || trailing) {
        sb_str(&b, "/");
    }
    free(segs);
    free(work);
    work = sb_done(&b);
    if (work == NULL) {
        return NULL;
    }
    enc = vh_sigv4_uri_encode(work, strlen(work), 1);
    free(work);
    return enc;
}

typedef struct {
    char  *name;
    char  *value;
} pair_t;

static int
pair_cmp(const void *a, const void *b)
{
    const pair_t *x = a, *y = b;
    int           c = strcmp(x->name, y->name);

    return c ? c : strcmp(x->value, y->value);
}

static void
pairs_free(pair_t *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        free(p[i].name);
        free(p[i].value);
    }
    free(p);
}

/* name=value pairs of a raw query, each decoded then encoded the SigV4 way */
static pair_t *
query_pairs(const char *query, size_t *count)
{
    pair_t      *p;
    size_t       n = 0, cap = 1;
    const char  *s, *amp;

    *count = 0;
    if (query == NULL) {
        query = "";
    }
    for (s = query; *s; s++) {
        cap += *s == '&';
    }
    p = calloc(cap + 8, sizeof(pair_t));     /* + room for the X-Amz-* */
    if (p == NULL) {
        return NULL;
    }
    for (s = query; *s; s = *amp ? amp + 1 : amp) {
        const char  *eq;
        size_t       len, dl;
        char        *d;

        amp = strchr(s, '&');
        if (amp == NULL) {
            amp = s + strlen(s);
        }
        len = amp - s;
        if (len == 0) {
            continue;
        }
        eq = memchr(s, '=', len);
        d = uri_decode(s, eq ? (size_t) (eq - s) : len, &dl);
        p[n].name = d ? vh_sigv4_uri_encode(d, dl, 0) : NULL;
        free(d);
        d = eq ? uri_decode(eq + 1, len - (eq + 1 - s), &dl) : dup_n("", 0);
        if (!eq) {
            dl = 0;
        }
        p[n].value = d ? vh_sigv4_uri_encode(d, dl, 0) : NULL;
        free(d);
        n++;
        if (p[n - 1].name == NULL || p[n - 1].value == NULL) {
            pairs_free(p, n);
            return NULL;
        }
    }
    *count = n;
    return p;
}

static char *
join_pairs(pair_t *p, size_t n)
{
    sb_t    b = { 0 };
    size_t  i;

    qsort(p, n, sizeof(pair_t), pair_cmp);
    for (i = 0; i < n; i++) {
        sb_printf(&b, "%s%s=%s", i ? "&" : "", p[i].name, p[i].value);
    }
    return sb_done(&b);
}

char *
vh_sigv4_canonical_query(const char *query)
{
    size_t   n;
    pair_t  *p = query_pairs(query, &n);
    char    *s;

    if (p == NULL) {
        return NULL;
    }
    s = join_pairs(p, n);
    pairs_free(p, n);
    return s;
}

typedef struct {
    char    name[128];
    sb_t    value;
    size_t  order;
} hdr_t;

static int
hdr_cmp(const void *a, const void *b)
{
    const hdr_t *x = a, *y = b;
    int          c = strcmp(x->name, y->name);

    if (c) {
        return c;
    }
    return x->order < y->order ? -1 : x->order > y->order;
}

/* trimmed, inner runs of spaces collapsed to one */
static void
add_trimmed(sb_t *b, const char *v)
{
    int space = 0, started = 0;

    for (; *v; v++) {
        if (*v == ' ' || *v == '\t') {
            space = started;
            continue;
        }
        if (space) {
            sb_add(b, " ", 1);
            space = 0;
        }
        sb_add(b, v, 1);
        started = 1;
    }
}

/*
 * Canonical headers ("name:value\n" each) and the signed-headers list from
 * the request's headers plus extra ones.
 */
static int
canonical_headers(const vh_sigv4_request_t *r, const vh_sigv4_header_t *extra,
    size_t nextra, char **canon, char **signed_list)
{
    size_t   total = r->nheaders + nextra, i, j, n = 0;
    hdr_t   *h = calloc(total ? total : 1, sizeof(hdr_t));
    sb_t     c = { 0 }, s = { 0 };

    if (h == NULL) {
        return -1;
    }
    for (i = 0; i < total; i++) {
        const vh_sigv4_header_t *src = i < r->nheaders ? &r->headers[i]
                                                       : &extra[i - r->nheaders];
        size_t                   len = strlen(src->name);
        hdr_t                   *dst = NULL;
        char                     lname[128];

        if (len == 0 || len >= sizeof(lname)) {
            goto fail;
        }
        for (j = 0; j <= len; j++) {
            char ch = src->name[j];
            lname[j] = (ch >= 'A' && ch <= 'Z') ? ch + 32 : ch;
        }
        /* a repeated header: values joined with ',' in order */
        for (j = 0; j < n; j++) {
            if (!strcmp(h[j].name, lname)) {
                dst = &h[j];
                sb_add(&dst->value, ",", 1);
                break;
            }
        }
        if (dst == NULL) {
            dst = &h[n];
            memcpy(dst->name, lname, len + 1);
            dst->order = n++;
        }
        add_trimmed(&dst->value, src->value ? src->value : "");
        if (dst->value.p == NULL) {
            sb_add(&dst->value, "", 0);
        }
    }
    qsort(h, n, sizeof(hdr_t), hdr_cmp);
    for (i = 0; i < n; i++) {
        sb_printf(&c, "%s:", h[i].name);
        sb_str(&c, h[i].value.p ? h[i].value.p : "");
        sb_add(&c, "\n", 1);
        sb_printf(&s, "%s%s", i ? ";" : "", h[i].name);
    }
    for (i = 0; i < n; i++) {
        free(h[i].value.p);
    }
    free(h);
    *canon = sb_done(&c);
    *signed_list = sb_done(&s);
    if (*canon == NULL || *signed_list == NULL) {
        free(*canon);
        free(*signed_list);
        return -1;
    }
    return 0;

fail:
    for (i = 0; i < n; i++) {
        free(h[i].value.p);
    }
    free(h);
    return -1;
}

static int
has_header(const vh_sigv4_request_t *r, const char *name)
{
    size_t i, j;

    for (i = 0; i < r->nheaders; i++) {
        const char *a = r->headers[i].name;
        for (j = 0; a[j] && name[j]; j++) {
            char x = (a[j] >= 'A' && a[j] <= 'Z') ? a[j] + 32 : a[j];
            if (x != name[j]) {
                break;
            }
        }
        if (a[j] == '\0' && name[j] == '\0') {
            return 1;
        }
    }
    return 0;
}

static int
valid_params(const vh_sigv4_params_t *p, const vh_sigv4_request_t *r)
{
    return p && r && p->access_key && p->secret_key && p->region && p->service
           && p->amz_date && strlen(p->amz_date) == 16 && p->amz_date[8] == 'T'
           && r->method && r->method[0] && (r->headers || r->nheaders == 0);
}

/* string to sign and signature from a finished canonical request */
static int
finish(const vh_sigv4_params_t *p, vh_sigv4_result_t *out)
{
    char           date8[9], hash[65];
    unsigned char  key[32], sig[32];
    sb_t           b = { 0 };
    int            rc;

    memcpy(date8, p->amz_date, 8);
    date8[8] = '\0';
    vh_sigv4_sha256_hex(out->canonical_request, strlen(out->canonical_request), hash);
    sb_printf(&b, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", p->amz_date,
              date8, p->region, p->service, hash);
    out->string_to_sign = sb_done(&b);
    if (out->string_to_sign == NULL) {
        return -1;
    }
    if (vh_sigv4_signing_key(p->secret_key, date8, p->region, p->service, key) != 0) {
        return -1;
    }
    rc = hmac256(key, 32, out->string_to_sign, strlen(out->string_to_sign), sig);
    OPENSSL_cleanse(key, sizeof(key));
    if (rc != 0) {
        return -1;
    }
    hex_encode(sig, 32, out->signature);
    return 0;
}


/*
 * The canonical request (method, path, query, headers, their names, the
 * payload hash, one per line) into out, then finish() signs it; the same
 * for a signed request and a presigned URL, which differ in the query.
 */
static int
sign_canonical(const vh_sigv4_params_t *p, vh_sigv4_result_t *out,
    const char *method, const char *path, const char *query,
    const char *canon, const char *phash)
{
    sb_t  b = { 0 };

    sb_printf(&b, "%s\n", method);
    sb_str(&b, path);
    sb_add(&b, "\n", 1);
    sb_str(&b, query);
    sb_add(&b, "\n", 1);
    sb_str(&b, canon);
    sb_add(&b, "\n", 1);
    sb_str(&b, out->signed_headers);
    sb_add(&b, "\n", 1);
    sb_str(&b, phash);
    out->canonical_request = sb_done(&b);

    return (out->canonical_request == NULL || finish(p, out) != 0) ? -1 : 0;
}

static void
payload_hash(const vh_sigv4_request_t *r, char hex[65])
{
    if (r->payload_hash != NULL) {
        snprintf(hex, 65, "%s", r->payload_hash);
    } else {
        vh_sigv4_sha256_hex(r->body ? r->body : "", r->body ? r->body_len : 0, hex);
    }
}

int
vh_sigv4_sign_headers(const vh_sigv4_params_t *p, const vh_sigv4_request_t *r,
    vh_sigv4_result_t *out)
{
    char   phash[80], *path = NULL, *query = NULL, *canon = NULL;
    sb_t   b = { 0 };
    size_t i;

    memset(out, 0, sizeof(*out));
    if (!valid_params(p, r)) {
        return -1;
    }
    payload_hash(r, phash);

    /* headers the signer adds (and the caller must send) */
    if (!has_header(r, "x-amz-date")) {
        out->add[out->nadd].name = "X-Amz-Date";
        out->add[out->nadd++].value = dup_n(p->amz_date, strlen(p->amz_date));
    }
    if (p->session_token && p->session_token[0] && !has_header(r, "x-amz-security-token")) {
        out->add[out->nadd].name = "X-Amz-Security-Token";
        out->add[out->nadd++].value = dup_n(p->session_token, strlen(p->session_token));
    }
    if (p->sign_body && !has_header(r, "x-amz-content-sha256")) {
        out->add[out->nadd].name = "x-amz-content-sha256";
        out->add[out->nadd++].value = dup_n(phash, strlen(phash));
    }
    for (i = 0; i < out->nadd; i++) {
        if (out->add[i].value == NULL) {
            goto fail;
        }
    }

    path = vh_sigv4_canonical_path(r->path, p->normalize_path);
    query = vh_sigv4_canonical_query(r->query);
    if (path == NULL || query == NULL
        || canonical_headers(r, out->add, out->nadd, &canon, &out->signed_headers) != 0)
    {
        goto fail;
    }
    if (sign_canonical(p, out, r->method, path, query, canon, phash) != 0) {
        goto fail;
    }

    b = (sb_t) { 0 };
    sb_printf(&b, "AWS4-HMAC-SHA256 Credential=%s/%.8s/%s/%s/aws4_request, SignedHeaders=",
              p->access_key, p->amz_date, p->region, p->service);
    sb_str(&b, out->signed_headers);
    sb_printf(&b, ", Signature=%s", out->signature);
    out->authorization = sb_done(&b);
    if (out->authorization == NULL) {
        goto fail;
    }
    free(path);
    free(query);
    free(canon);
    return 0;

fail:
    free(path);
    free(query);
    free(canon);
    vh_sigv4_result_free(out);
    return -1;
}

int
vh_sigv4_presign(const vh_sigv4_params_t *p, const vh_sigv4_request_t *r,
    vh_sigv4_result_t *out)
{
    char     phash[80], *path = NULL, *canon = NULL, *cred = NULL, *sh = NULL,
            *tok = NULL, *cquery = NULL;
    pair_t  *pairs = NULL;
    size_t   n = 0;
    sb_t     b = { 0 }, c = { 0 };

    memset(out, 0, sizeof(*out));
    if (!valid_params(p, r) || p->expires <= 0) {
        return -1;
    }
    payload_hash(r, phash);

    if (canonical_headers(r, NULL, 0, &canon, &out->signed_headers) != 0) {
        goto fail;
    }
    sb_printf(&c, "%s/%.8s/%s/%s/aws4_request", p->access_key, p->amz_date,
              p->region, p->service);
    {
        char *credraw = sb_done(&c);
        if (credraw == NULL) {
            goto fail;
        }
        cred = vh_sigv4_uri_encode(credraw, strlen(credraw), 0);
        free(credraw);
    }
    sh = vh_sigv4_uri_encode(out->signed_headers, strlen(out->signed_headers), 0);
    if (p->session_token && p->session_token[0]) {
        tok = vh_sigv4_uri_encode(p->session_token, strlen(p->session_token), 0);
    }
    pairs = query_pairs(r->query, &n);
    path = vh_sigv4_canonical_path(r->path, p->normalize_path);
    if (cred == NULL || sh == NULL || pairs == NULL || path == NULL
        || (p->session_token && p->session_token[0] && tok == NULL))
    {
        goto fail;
    }

    /* the X-Amz-* parameters join the request's own */
#define ADD_PAIR(k, v) do {                                   \
        pairs[n].name = dup_n(k, strlen(k));                  \
        pairs[n].value = dup_n(v, strlen(v));                 \
        n++;                                                  \
        if (!pairs[n - 1].name || !pairs[n - 1].value) {      \
            goto fail;                                        \
        }                                                     \
    } while (0)
    {
        char exp[32];
        snprintf(exp, sizeof(exp), "%ld", p->expires);
        ADD_PAIR("X-Amz-Algorithm", "AWS4-HMAC-SHA256");
        ADD_PAIR("X-Amz-Credential", cred);
        ADD_PAIR("X-Amz-Date", p->amz_date);
        ADD_PAIR("X-Amz-Expires", exp);
        if (tok != NULL) {
            ADD_PAIR("X-Amz-Security-Token", tok);
        }
        ADD_PAIR("X-Amz-SignedHeaders", sh);

        cquery = join_pairs(pairs, n);
        if (cquery == NULL) {
            goto fail;
        }
        if (sign_canonical(p, out, r->method, path, cquery, canon, phash)
            != 0)
        {
            goto fail;
        }

        /* what to send: the request's query as given, then ours */
        b = (sb_t) { 0 };
        if (r->query && r->query[0]) {
            sb_str(&b, r->query);
            sb_add(&b, "&", 1);
        }
        sb_printf(&b, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=");
        sb_str(&b, cred);
        sb_printf(&b, "&X-Amz-Date=%s&X-Amz-SignedHeaders=", p->amz_date);
        sb_str(&b, sh);
        sb_printf(&b, "&X-Amz-Expires=%s", exp);
        if (tok != NULL) {
            sb_str(&b, "&X-Amz-Security-Token=");
            sb_str(&b, tok);
        }
        sb_printf(&b, "&X-Amz-Signature=%s", out->signature);
        out->presigned_query = sb_done(&b);
        if (out->presigned_query == NULL) {
            goto fail;
        }
    }
#undef ADD_PAIR

    free(path); free(canon); free(cred); free(sh); free(tok); free(cquery);
    pairs_free(pairs, n);
    return 0;

fail:
    free(path); free(canon); free(cred); free(sh); free(tok); free(cquery);
    if (pairs) {
        pairs_free(pairs, n);
    }
    vh_sigv4_result_free(out);
    return -1;
}

void
vh_sigv4_result_free(vh_sigv4_result_t *out)
{
    size_t i;

    free(out->canonical_request);
    free(out->string_to_sign);
    free(out->signed_headers);
    free(out->authorization);
    free(out->presigned_query);
    for (i = 0; i < out->nadd; i++) {
        free((char *) out->add[i].value);
    }
    memset(out, 0, sizeof(*out));
}
