/*
 * vodlms core: the CloudFront issuer.  Policies, signatures, signed URLs
 * and signed cookies, byte-identical to @aws-sdk/cloudfront-signer
 * 3.1166.0 for every RSA case of the vectors (ECDSA signatures are
 * randomised, so those are checked by verifying them).
 */

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "vodlms_cloudfront.h"


/* --------------------------------------------------------------- writer */

/* appends into a caller buffer; one overflow check at the end */
typedef struct {
    char    *start;
    size_t   len;
    size_t   size;
    int      overflow;
} vodlms_cf_buf_t;


static void
vodlms_cf_put(vodlms_cf_buf_t *b, const char *s, size_t n)
{
    if (b->overflow || b->size - b->len < n) {
        b->overflow = 1;
        return;
    }

    memcpy(b->start + b->len, s, n);
    b->len += n;
}


#define vodlms_cf_put_lit(b, s)  vodlms_cf_put(b, s, sizeof(s) - 1)


static void
vodlms_cf_put_int(vodlms_cf_buf_t *b, int64_t v)
{
    int   n;
    char  num[VODLMS_CF_INT_LEN + 2];

    n = snprintf(num, sizeof(num), "%lld", (long long) v);

    if (n > 0 && (size_t) n < sizeof(num)) {
        vodlms_cf_put(b, num, (size_t) n);

    } else {
        b->overflow = 1;
    }
}


static const char  vodlms_cf_hex[] = "0123456789ABCDEF";


static void
vodlms_cf_put_pct(vodlms_cf_buf_t *b, unsigned char c)
{
    char  e[3];

    e[0] = '%';
    e[1] = vodlms_cf_hex[c >> 4];
    e[2] = vodlms_cf_hex[c & 0xf];

    vodlms_cf_put(b, e, 3);
}


/* ---------------------------------------------------------------- UTF-8 */

/* byte-at-a-time, so that it can follow a percent-decoder */
typedef struct {
    unsigned  need;
    uint32_t  cp;
    uint32_t  min;
} vodlms_cf_utf8_t;


static int
vodlms_cf_utf8_step(vodlms_cf_utf8_t *u, unsigned char c)
{
    if (u->need == 0) {
        if (c < 0x80) {
            return 1;
        }

        if (c >= 0xc2 && c <= 0xdf) {
            u->need = 1;
            u->cp = c & 0x1f;
            u->min = 0x80;

        } else if (c >= 0xe0 && c <= 0xef) {
            u->need = 2;
            u->cp = c & 0x0f;
            u->min = 0x800;

        } else if (c >= 0xf0 && c <= 0xf4) {
            u->need = 3;
            u->cp = c & 0x07;
            u->min = 0x10000;

        } else {
            return 0;
        }

        return 1;
    }

    if ((c & 0xc0) != 0x80) {
        return 0;
    }

    u->cp = u->cp << 6 | (c & 0x3f);

    if (--u->need > 0) {
        return 1;
    }

    /* overlong forms, UTF-16 surrogates, beyond U+10FFFF */
    return u->cp >= u->min && u->cp <= 0x10ffff
           && !(u->cp >= 0xd800 && u->cp <= 0xdfff);
}


static int
vodlms_cf_utf8_valid(const char *s, size_t len)
{
    size_t            i;
    vodlms_cf_utf8_t  u;

    memset(&u, 0, sizeof(u));

    for (i = 0; i < len; i++) {
        if (!vodlms_cf_utf8_step(&u, (unsigned char) s[i])) {
            return 0;
        }
    }

    return u.need == 0;
}


/* ----------------------------------------------------------------- IPv4 */

static int
vodlms_cf_dec(const char *s, size_t len, unsigned max, unsigned *v)
{
    size_t  i;

    /* "010" is octal to inet_aton(): refuse the ambiguity */
    if (len == 0 || len > 3 || (len > 1 && s[0] == '0')) {
        return 0;
    }

    *v = 0;

    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }

        *v = *v * 10 + (unsigned) (s[i] - '0');
    }

    return *v <= max;
}


vodlms_rc_t
vodlms_cf_ipv4_parse(const char *s, size_t len, uint32_t *addr,
    unsigned *prefix)
{
    size_t       i, n;
    unsigned     octet, part;
    uint32_t     a;
    const char  *p, *end, *slash;

    static const char  mapped[] = "::ffff:";

    *addr = 0;

    if (prefix != NULL) {
        *prefix = 32;
    }

    if (s == NULL || len == 0) {
        return VODLMS_EMALFORMED;
    }

    end = s + len;

    if (prefix == NULL && len > sizeof(mapped) - 1) {
        for (i = 0; i < sizeof(mapped) - 1; i++) {
            /* ':' already has the 0x20 bit: one case-folding test */
            if (((unsigned char) s[i] | 0x20) != (unsigned char) mapped[i]) {
                break;
            }
        }

        if (i == sizeof(mapped) - 1) {
            s += i;
        }
    }

    slash = memchr(s, '/', (size_t) (end - s));

    if (slash != NULL) {
        if (prefix == NULL
            || !vodlms_cf_dec(slash + 1, (size_t) (end - slash - 1), 32,
                              prefix))
        {
            return VODLMS_EMALFORMED;
        }

        end = slash;
    }

    a = 0;
    p = s;

    for (part = 0; part < 4; part++) {
        for (n = 0; p + n < end && p[n] != '.'; n++) {
            /* void */
        }

        if (!vodlms_cf_dec(p, n, 255, &octet)) {
            return VODLMS_EMALFORMED;
        }

        a = a << 8 | octet;
        p += n;

        if (part < 3) {
            if (p == end) {
                return VODLMS_EMALFORMED;
            }

            p++;            /* the '.' */
        }
    }

    if (p != end) {
        return VODLMS_EMALFORMED;
    }

    *addr = a;

    return VODLMS_OK;
}


/* --------------------------------------------------------- normalisation */

/* encodeURIComponent's unreserved set: A-Z a-z 0-9 - _ . ! ~ * ' ( ) */
static int
vodlms_cf_unreserved(unsigned char c)
{
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
        || (c >= '0' && c <= '9'))
    {
        return 1;
    }

    switch (c) {
    case '-': case '_': case '.': case '!': case '~': case '*': case '\'':
    case '(': case ')':
        return 1;
    }

    return 0;
}


/* the next byte of a percent-encoded segment, or -1 for a broken escape */
static int
vodlms_cf_seg_byte(const char *s, size_t len, size_t *i)
{
    int  hi, lo;

    if (s[*i] != '%') {
        return (unsigned char) s[(*i)++];
    }

    if (len - *i < 3) {
        return -1;
    }

    hi = vodlms_hex_value((unsigned char) s[*i + 1]);
    lo = vodlms_hex_value((unsigned char) s[*i + 2]);

    if (hi < 0 || lo < 0) {
        return -1;
    }

    *i += 3;

    return hi << 4 | lo;
}


/* encodeURIComponent(decodeURIComponent(segment)) */
static vodlms_rc_t
vodlms_cf_norm_segment(vodlms_cf_buf_t *b, const char *s, size_t len)
{
    int               c;
    char              ch;
    size_t            i;
    vodlms_cf_utf8_t  u;

    /* first pass: decodeURIComponent would throw, so refuse */
    memset(&u, 0, sizeof(u));

    for (i = 0; i < len; /* void */) {
        c = vodlms_cf_seg_byte(s, len, &i);

        if (c < 0 || !vodlms_cf_utf8_step(&u, (unsigned char) c)) {
            return VODLMS_EMALFORMED;
        }
    }

    if (u.need != 0) {
        return VODLMS_EMALFORMED;
    }

    for (i = 0; i < len; /* void */) {
        c = vodlms_cf_seg_byte(s, len, &i);

        if (vodlms_cf_unreserved((unsigned char) c)) {
            ch = (char) c;
            vodlms_cf_put(b, &ch, 1);

        } else {
            vodlms_cf_put_pct(b, (unsigned char) c);
        }
    }

    return VODLMS_OK;
}


/*
 * The SDK (since aws-sdk-js-v3 PR #8283) keeps existing %XX escapes and
 * '+' in the query and encodeURIComponent()s the rest, "'" included.
 */
static void
vodlms_cf_norm_query(vodlms_cf_buf_t *b, const char *s, size_t len)
{
    int            hi, lo;
    char           e[3];
    size_t         i;
    unsigned char  c;

    for (i = 0; i < len; i++) {
        c = (unsigned char) s[i];

        if (c == '%' && len - i >= 3) {
            hi = vodlms_hex_value((unsigned char) s[i + 1]);
            lo = vodlms_hex_value((unsigned char) s[i + 2]);

            if (hi >= 0 && lo >= 0) {
                e[0] = '%';
                e[1] = vodlms_cf_hex[hi];
                e[2] = vodlms_cf_hex[lo];
                vodlms_cf_put(b, e, 3);
                i += 2;
                continue;
            }
        }

        if (c == '+' || c == '&' || c == '='
            || (c != '\'' && vodlms_cf_unreserved(c)))
        {
            vodlms_cf_put(b, (const char *) &s[i], 1);

        } else {
            vodlms_cf_put_pct(b, c);
        }
    }
}


/* "http://" or "https://", and the index just past "://" */
static size_t
vodlms_cf_http_prefix(const char *url, size_t len)
{
    if (len > 7 && memcmp(url, "http://", 7) == 0) {
        return 7;
    }

    if (len > 8 && memcmp(url, "https://", 8) == 0) {
        return 8;
    }

    return 0;
}


vodlms_rc_t
vodlms_cf_url_normalize(const char *url, size_t len, char *out,
    size_t out_size, size_t *out_len)
{
    size_t           i, auth, path, query, seg;
    vodlms_rc_t      rc;
    vodlms_cf_buf_t  b;

    *out_len = 0;

    if (url == NULL || len > VODLMS_CF_URL_MAX) {
        return VODLMS_EMALFORMED;
    }

    auth = vodlms_cf_http_prefix(url, len);

    /* a fragment never reaches the server, so it cannot be signed for */
    if (auth == 0 || memchr(url, '#', len) != NULL) {
        return VODLMS_EMALFORMED;
    }

    for (path = auth; path < len && url[path] != '/' && url[path] != '?';
         path++)
    {
        /* void */
    }

    for (query = path; query < len && url[query] != '?'; query++) {
        /* void */
    }

    b.start = out;
    b.len = 0;
    b.size = out_size;
    b.overflow = 0;

    vodlms_cf_put(&b, url, path);

    /* segment by segment, the '/' separators kept as they are */
    for (seg = path, i = path; i <= query; i++) {
        if (i < query && url[i] != '/') {
            continue;
        }

        rc = vodlms_cf_norm_segment(&b, url + seg, i - seg);
        if (rc != VODLMS_OK) {
            return rc;
        }

        if (i < query) {
            vodlms_cf_put_lit(&b, "/");
        }

        seg = i + 1;
    }

    if (query + 1 < len) {
        vodlms_cf_put_lit(&b, "?");
        vodlms_cf_norm_query(&b, url + query + 1, len - query - 1);
    }

    if (b.overflow) {
        return VODLMS_ETOOLONG;
    }

    *out_len = b.len;

    return VODLMS_OK;
}


/* --------------------------------------------------------------- policy */

/* what JSON.stringify writes for a string's contents */
static void
vodlms_cf_put_json(vodlms_cf_buf_t *b, const char *s, size_t len)
{
    char           e[6];
    size_t         i, run;
    unsigned char  c;

    for (i = 0, run = 0; i < len; i++) {
        c = (unsigned char) s[i];

        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }

        vodlms_cf_put(b, s + run, i - run);
        run = i + 1;

        switch (c) {
        case '"':  vodlms_cf_put_lit(b, "\\\""); break;
        case '\\': vodlms_cf_put_lit(b, "\\\\"); break;
        case '\b': vodlms_cf_put_lit(b, "\\b"); break;
        case '\f': vodlms_cf_put_lit(b, "\\f"); break;
        case '\n': vodlms_cf_put_lit(b, "\\n"); break;
        case '\r': vodlms_cf_put_lit(b, "\\r"); break;
        case '\t': vodlms_cf_put_lit(b, "\\t"); break;
        default:
            /* JSON.stringify writes lower-case hex here */
            memcpy(e, "\\u00", 4);
            e[4] = "0123456789abcdef"[c >> 4];
            e[5] = "0123456789abcdef"[c & 0xf];
            vodlms_cf_put(b, e, 6);
        }
    }

    vodlms_cf_put(b, s + run, len - run);
}


vodlms_rc_t
vodlms_cf_policy_build(const char *resource, size_t resource_len,
    int64_t expires, int64_t start, const char *ip, size_t ip_len,
    char *out, size_t out_size, size_t *out_len)
{
    unsigned         prefix;
    uint32_t         addr;
    vodlms_cf_buf_t  b;

    *out_len = 0;

    if (resource == NULL || resource_len == 0
        || resource_len > VODLMS_CF_URL_MAX
        || !vodlms_cf_utf8_valid(resource, resource_len)
        || expires <= 0 || start < 0 || (start > 0 && start >= expires))
    {
        return VODLMS_EMALFORMED;
    }

    if (ip != NULL
        && vodlms_cf_ipv4_parse(ip, ip_len, &addr, &prefix) != VODLMS_OK)
    {
        return VODLMS_EMALFORMED;
    }

    b.start = out;
    b.len = 0;
    b.size = out_size;
    b.overflow = 0;

    /* the key order of the SDK's object literal, which JSON.stringify keeps */
    vodlms_cf_put_lit(&b, "{\"Statement\":[{\"Resource\":\"");
    vodlms_cf_put_json(&b, resource, resource_len);
    vodlms_cf_put_lit(&b, "\",\"Condition\":{\"DateLessThan\":"
                          "{\"AWS:EpochTime\":");
    vodlms_cf_put_int(&b, expires);
    vodlms_cf_put_lit(&b, "}");

    if (start > 0) {
        vodlms_cf_put_lit(&b, ",\"DateGreaterThan\":{\"AWS:EpochTime\":");
        vodlms_cf_put_int(&b, start);
        vodlms_cf_put_lit(&b, "}");
    }

    if (ip != NULL) {
        vodlms_cf_put_lit(&b, ",\"IpAddress\":{\"AWS:SourceIp\":\"");
        vodlms_cf_put(&b, ip, ip_len);

        if (memchr(ip, '/', ip_len) == NULL) {
            vodlms_cf_put_lit(&b, "/32");
        }

        vodlms_cf_put_lit(&b, "\"}");
    }

    vodlms_cf_put_lit(&b, "}}]}");

    if (b.overflow) {
        return VODLMS_ETOOLONG;
    }

    *out_len = b.len;

    return VODLMS_OK;
}


/* ------------------------------------------------------------ signature */

vodlms_rc_t
vodlms_cf_sign_policy(EVP_PKEY *key, vodlms_cf_hash_t hash,
    const char *policy, size_t policy_len, char *sig, size_t sig_size,
    size_t *sig_len)
{
    size_t          n;
    EVP_MD_CTX     *ctx;
    vodlms_rc_t     rc;
    unsigned char   raw[VODLMS_CF_SIG_MAX];

    *sig_len = 0;

    if (key == NULL || policy == NULL) {
        return VODLMS_EINTERNAL;
    }

    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        return VODLMS_ENOMEM;
    }

    rc = VODLMS_EINTERNAL;

    /* RSA keys default to PKCS#1 v1.5 padding, which is CloudFront's */
    if (EVP_DigestSignInit(ctx, NULL,
                           hash == VODLMS_CF_SHA256 ? EVP_sha256()
                                                    : EVP_sha1(),
                           NULL, key)
        != 1)
    {
        goto done;
    }

    /* with no output buffer this is the largest signature the key makes */
    if (EVP_DigestSign(ctx, NULL, &n, (const unsigned char *) policy,
                       policy_len)
        != 1
        || n > sizeof(raw))
    {
        goto done;
    }

    if (EVP_DigestSign(ctx, raw, &n, (const unsigned char *) policy,
                       policy_len)
        != 1)
    {
        goto done;
    }

    rc = vodlms_cf_b64url_encode(raw, n, sig, sig_size, sig_len);

done:

    EVP_MD_CTX_free(ctx);
    ERR_clear_error();

    return rc;
}


/* ---------------------------------------------------------------- issuer */

/* the resource is the url itself: no explicit one, or the same bytes */
static int
vodlms_cf_resource_is_url(const vodlms_cf_sign_t *in)
{
    return in->resource == NULL
           || (in->resource_len == in->url_len
               && memcmp(in->resource, in->url, in->url_len) == 0);
}


vodlms_cf_type_t
vodlms_cf_policy_type(const vodlms_cf_sign_t *in)
{
    if (vodlms_cf_resource_is_url(in)
        && (in->url == NULL || memchr(in->url, '*', in->url_len) == NULL)
        && in->start == 0 && in->ip == NULL)
    {
        return VODLMS_CF_CANNED;
    }

    return VODLMS_CF_CUSTOM;
}


size_t
vodlms_cf_prepare_size(const vodlms_cf_sign_t *in)
{
    size_t  url, res, policy;

    url = in->url_len > VODLMS_CF_URL_MAX ? VODLMS_CF_URL_MAX : in->url_len;
    res = 3 * url;

    if (!vodlms_cf_resource_is_url(in)) {
        res = in->resource_len > VODLMS_CF_URL_MAX ? VODLMS_CF_URL_MAX
                                                   : in->resource_len;
    }

    policy = 6 * res + 256;

    return 3 * url + policy + VODLMS_CF_B64_LEN(policy);
}


vodlms_rc_t
vodlms_cf_prepare(const vodlms_cf_sign_t *in, vodlms_cf_target_t target,
    char *buf, size_t buf_size, vodlms_cf_signed_t *out)
{
    int               n;
    char             *p, *end;
    size_t            len;
    vodlms_rc_t       rc;
    const char       *res;
    size_t            res_len;
    vodlms_cf_type_t  type;

    memset(out, 0, sizeof(vodlms_cf_signed_t));

    if (in->url == NULL || in->url_len == 0 || in->url_len > VODLMS_CF_URL_MAX
        || vodlms_cf_http_prefix(in->url, in->url_len) == 0
        || memchr(in->url, '#', in->url_len) != NULL
        || !vodlms_id_valid(in->key_pair_id, in->key_pair_id_len,
                            VODLMS_CF_KEY_PAIR_ID_MAX)
        || (in->resource != NULL
            && (in->resource_len == 0
                || in->resource_len > VODLMS_CF_URL_MAX))
        || (in->hash != VODLMS_CF_SHA1 && in->hash != VODLMS_CF_SHA256))
    {
        return VODLMS_EMALFORMED;
    }

    p = buf;
    end = buf + buf_size;
    type = vodlms_cf_policy_type(in);

    if (target == VODLMS_CF_FOR_URL) {
        rc = vodlms_cf_url_normalize(in->url, in->url_len, p,
                                     (size_t) (end - p), &len);
        if (rc != VODLMS_OK) {
            return rc;
        }

        out->url.data = p;
        out->url.len = len;
        p += len;

    } else {
        out->url.data = in->url;
        out->url.len = in->url_len;
    }

    if (vodlms_cf_resource_is_url(in)) {
        res = out->url.data;
        res_len = out->url.len;

    } else {
        res = in->resource;
        res_len = in->resource_len;
    }

    rc = vodlms_cf_policy_build(res, res_len, in->expires, in->start, in->ip,
                                in->ip_len, p, (size_t) (end - p), &len);
    if (rc != VODLMS_OK) {
        return rc;
    }

    out->policy.data = p;
    out->policy.len = len;
    p += len;

    if (type == VODLMS_CF_CUSTOM) {
        rc = vodlms_cf_b64url_encode(out->policy.data, out->policy.len, p,
                                     (size_t) (end - p), &len);
        if (rc != VODLMS_OK) {
            return rc;
        }

        out->policy_b64.data = p;
        out->policy_b64.len = len;
    }

    n = snprintf(out->expires_str, sizeof(out->expires_str), "%lld",
                 (long long) in->expires);
    if (n <= 0 || (size_t) n >= sizeof(out->expires_str)) {
        return VODLMS_EINTERNAL;
    }

    out->type = type;
    out->hash = in->hash;
    out->expires = in->expires;
    out->expires_str_len = (size_t) n;
    out->key_pair_id.data = in->key_pair_id;
    out->key_pair_id.len = in->key_pair_id_len;

    return VODLMS_OK;
}


vodlms_rc_t
vodlms_cf_sign(const vodlms_cf_sign_t *in, vodlms_cf_target_t target,
    EVP_PKEY *key, char *buf, size_t buf_size, vodlms_cf_signed_t *out)
{
    vodlms_rc_t  rc;

    rc = vodlms_cf_prepare(in, target, buf, buf_size, out);
    if (rc != VODLMS_OK) {
        return rc;
    }

    return vodlms_cf_sign_policy(key, in->hash, out->policy.data,
                                 out->policy.len, out->signature,
                                 sizeof(out->signature), &out->signature_len);
}


static int
vodlms_cf_signed_ok(const vodlms_cf_signed_t *s)
{
    return s->signature_len > 0 && s->signature_len <= sizeof(s->signature)
           && s->url.data != NULL && s->key_pair_id.data != NULL
           && (s->type == VODLMS_CF_CANNED || s->policy_b64.data != NULL);
}


static void
vodlms_cf_url_write(const vodlms_cf_signed_t *s, vodlms_cf_buf_t *b)
{
    vodlms_cf_put(b, s->url.data, s->url.len);

    if (memchr(s->url.data, '?', s->url.len) != NULL) {
        vodlms_cf_put_lit(b, "&");

    } else {
        vodlms_cf_put_lit(b, "?");
    }

    if (s->type == VODLMS_CF_CANNED) {
        vodlms_cf_put_lit(b, "Expires=");
        vodlms_cf_put(b, s->expires_str, s->expires_str_len);

    } else {
        vodlms_cf_put_lit(b, "Policy=");
        vodlms_cf_put(b, s->policy_b64.data, s->policy_b64.len);
    }

    vodlms_cf_put_lit(b, "&Key-Pair-Id=");
    vodlms_cf_put(b, s->key_pair_id.data, s->key_pair_id.len);
    vodlms_cf_put_lit(b, "&Signature=");
    vodlms_cf_put(b, s->signature, s->signature_len);

    if (s->hash == VODLMS_CF_SHA256) {
        vodlms_cf_put_lit(b, "&Hash-Algorithm=SHA256");
    }
}


size_t
vodlms_cf_url_size(const vodlms_cf_signed_t *s)
{
    if (!vodlms_cf_signed_ok(s)) {
        return 0;
    }

    /* must add up to what vodlms_cf_url_write() writes */
    return s->url.len + 1
           + (s->type == VODLMS_CF_CANNED ? sizeof("Expires=") - 1
                                            + s->expires_str_len
                                          : sizeof("Policy=") - 1
                                            + s->policy_b64.len)
           + sizeof("&Key-Pair-Id=") - 1 + s->key_pair_id.len
           + sizeof("&Signature=") - 1 + s->signature_len
           + (s->hash == VODLMS_CF_SHA256
              ? sizeof("&Hash-Algorithm=SHA256") - 1 : 0);
}


vodlms_rc_t
vodlms_cf_url_build(const vodlms_cf_signed_t *s, char *out, size_t out_size,
    size_t *out_len)
{
    vodlms_cf_buf_t  b;

    *out_len = 0;

    if (!vodlms_cf_signed_ok(s)) {
        return VODLMS_EMALFORMED;
    }

    b.start = out;
    b.len = 0;
    b.size = out_size;
    b.overflow = 0;

    vodlms_cf_url_write(s, &b);

    if (b.overflow) {
        return VODLMS_ETOOLONG;
    }

    *out_len = b.len;

    return VODLMS_OK;
}


#define vodlms_cf_set(c, s)                                                   \
    do {                                                                      \
        (c).data = (s);                                                       \
        (c).len = sizeof(s) - 1;                                              \
    } while (0)


size_t
vodlms_cf_cookies(const vodlms_cf_signed_t *s,
    vodlms_cf_cookie_t out[VODLMS_CF_COOKIES_MAX])
{
    size_t  n;

    if (!vodlms_cf_signed_ok(s)) {
        return 0;
    }

    n = 0;

    if (s->type == VODLMS_CF_CANNED) {
        vodlms_cf_set(out[n].name, "CloudFront-Expires");
        out[n].value.data = s->expires_str;
        out[n].value.len = s->expires_str_len;

    } else {
        vodlms_cf_set(out[n].name, "CloudFront-Policy");
        out[n].value = s->policy_b64;
    }

    n++;

    vodlms_cf_set(out[n].name, "CloudFront-Signature");
    out[n].value.data = s->signature;
    out[n].value.len = s->signature_len;
    n++;

    vodlms_cf_set(out[n].name, "CloudFront-Key-Pair-Id");
    out[n].value = s->key_pair_id;
    n++;

    if (s->hash == VODLMS_CF_SHA256) {
        vodlms_cf_set(out[n].name, "CloudFront-Hash-Algorithm");
        vodlms_cf_set(out[n].value, "SHA256");
        n++;
    }

    return n;
}
