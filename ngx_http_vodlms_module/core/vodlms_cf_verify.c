/*
 * vodlms core: the CloudFront verifier of a self-hosted edge, following
 * "Verification rules, in our own words" of the vectors' README.  The
 * signature is checked over the raw policy bytes before anything parses
 * them, so nothing an attacker wrote reaches jansson unsigned.
 */

#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "vodlms_cloudfront.h"


const char *
vodlms_cf_verdict_str(vodlms_cf_verdict_t v)
{
    switch (v) {
    case VODLMS_CF_ALLOW:                return "allow";
    case VODLMS_CF_EXPIRED:              return "expired";
    case VODLMS_CF_NOT_YET_VALID:        return "not_yet_valid";
    case VODLMS_CF_RESOURCE_MISMATCH:    return "resource_mismatch";
    case VODLMS_CF_BAD_SIGNATURE:        return "bad_signature";
    case VODLMS_CF_IP_MISMATCH:          return "ip_mismatch";
    case VODLMS_CF_UNKNOWN_KEY_PAIR_ID:  return "unknown_key_pair_id";
    case VODLMS_CF_MISSING_SIGNATURE:    return "missing_signature";
    }

    /* not a default: label, so that -Wswitch flags a new code left out */
    return "unknown";
}


/* ----------------------------------------------------------- parameters */

static const vodlms_cstr_t  vodlms_cf_query_names[VODLMS_CF_P_N] = {
    { "Expires", sizeof("Expires") - 1 },
    { "Policy", sizeof("Policy") - 1 },
    { "Signature", sizeof("Signature") - 1 },
    { "Key-Pair-Id", sizeof("Key-Pair-Id") - 1 },
    { "Hash-Algorithm", sizeof("Hash-Algorithm") - 1 },
};

static const vodlms_cstr_t  vodlms_cf_cookie_names[VODLMS_CF_P_N] = {
    { "CloudFront-Expires", sizeof("CloudFront-Expires") - 1 },
    { "CloudFront-Policy", sizeof("CloudFront-Policy") - 1 },
    { "CloudFront-Signature", sizeof("CloudFront-Signature") - 1 },
    { "CloudFront-Key-Pair-Id", sizeof("CloudFront-Key-Pair-Id") - 1 },
    { "CloudFront-Hash-Algorithm", sizeof("CloudFront-Hash-Algorithm") - 1 },
};


vodlms_rc_t
vodlms_cf_query_split(const char *query, size_t len, vodlms_cf_params_t *p,
    char *rest, size_t rest_size, size_t *rest_len)
{
    int          k, first;
    size_t       n;
    const char  *s, *e, *eq, *end;

    memset(p, 0, sizeof(vodlms_cf_params_t));
    *rest_len = 0;

    if (query == NULL || len == 0) {
        return VODLMS_OK;
    }

    if (rest_size < len) {
        return VODLMS_ETOOLONG;
    }

    first = 1;
    n = 0;
    end = query + len;

    for (s = query; s <= end; s = e + 1) {
        e = memchr(s, '&', (size_t) (end - s));
        if (e == NULL) {
            e = end;
        }

        eq = memchr(s, '=', (size_t) (e - s));

        for (k = 0; k < VODLMS_CF_P_N; k++) {
            if ((size_t) ((eq ? eq : e) - s) == vodlms_cf_query_names[k].len
                && memcmp(s, vodlms_cf_query_names[k].data,
                          vodlms_cf_query_names[k].len) == 0)
            {
                break;
            }
        }

        if (k < VODLMS_CF_P_N) {
            if (p->present & (1u << k)) {
                p->dup |= 1u << k;

            } else {
                p->present |= 1u << k;
                p->v[k].data = eq ? eq + 1 : e;
                p->v[k].len = eq ? (size_t) (e - eq - 1) : 0;
            }

        } else {
            /* the pieces between and around CloudFront's, as they came */
            if (!first) {
                rest[n++] = '&';
            }

            memcpy(rest + n, s, (size_t) (e - s));
            n += (size_t) (e - s);
            first = 0;
        }

        if (e == end) {
            break;
        }
    }

    *rest_len = n;

    return VODLMS_OK;
}


vodlms_rc_t
vodlms_cf_cookie_params(const char *cookie, size_t len, vodlms_cf_params_t *p)
{
    int  k;

    memset(p, 0, sizeof(vodlms_cf_params_t));

    for (k = 0; k < VODLMS_CF_P_N; k++) {
        if (vodlms_cookie_get(cookie, len, vodlms_cf_cookie_names[k].data,
                              vodlms_cf_cookie_names[k].len, &p->v[k])
            == VODLMS_OK)
        {
            p->present |= 1u << k;
        }
    }

    return p->present ? VODLMS_OK : VODLMS_ENOTFOUND;
}


/* ------------------------------------------------------------- matching */

/* the bytes of the url a '*' may not consume in the sections reading */
typedef struct {
    size_t  scheme;         /* "://" at [scheme, scheme + 3) */
    size_t  path;           /* the '/' that starts the path */
    size_t  query;          /* the '?' that starts the query */
} vodlms_cf_bars_t;


static void
vodlms_cf_bars(const char *s, size_t len, vodlms_cf_bars_t *b)
{
    size_t  i, host;

    b->scheme = SIZE_MAX;
    b->path = SIZE_MAX;
    b->query = SIZE_MAX;
    host = 0;

    for (i = 0; i + 3 <= len; i++) {
        if (s[i] == '/' || s[i] == '?') {
            break;
        }

        if (s[i] == ':' && s[i + 1] == '/' && s[i + 2] == '/') {
            b->scheme = i;
            host = i + 3;
            break;
        }
    }

    for (i = host; i < len && s[i] != '/' && s[i] != '?'; i++) {
        /* void */
    }

    if (i < len && s[i] == '/') {
        b->path = i;

        while (i < len && s[i] != '?') {
            i++;
        }
    }

    if (i < len) {
        b->query = i;
    }
}


static int
vodlms_cf_is_bar(const vodlms_cf_bars_t *b, size_t i)
{
    return (i >= b->scheme && i - b->scheme < 3) || i == b->path
           || i == b->query;
}


vodlms_rc_t
vodlms_cf_resource_match(const char *pat, size_t pat_len, const char *url,
    size_t url_len, vodlms_cf_match_t mode, int *match)
{
    int               alive;
    size_t            i, j;
    unsigned char    *row, c;
    vodlms_cf_bars_t  bars;

    *match = 0;

    if (pat == NULL || url == NULL) {
        return VODLMS_OK;
    }

    /* anything but an explicit ANYWHERE gets the stricter reading */
    if (mode != VODLMS_CF_MATCH_ANYWHERE) {
        vodlms_cf_bars(url, url_len, &bars);

    } else {
        bars.scheme = SIZE_MAX;
        bars.path = SIZE_MAX;
        bars.query = SIZE_MAX;
    }

    /*
     * The Resource the issuer writes (the tree of one video and a "*"): literal
     * bytes and one '*' at the end.  That is a prefix test, and the '*'
     * takes the rest of the url unless it would cross a bar -- the same
     * answer as the table below, without it (t/unit holds the two to each
     * other: "P*" and "P**" must agree, and "**" takes the table).
     */
    if (pat_len > 0 && pat[pat_len - 1] == '*'
        && (pat_len == 1 || pat[pat_len - 2] != '*')
        && memchr(pat, '?', pat_len - 1) == NULL
        && memchr(pat, '*', pat_len - 1) == NULL)
    {
        i = pat_len - 1;

        if (url_len < i || memcmp(pat, url, i) != 0) {
            return VODLMS_OK;
        }

        for (j = i; j < url_len; j++) {
            if (vodlms_cf_is_bar(&bars, j)) {
                return VODLMS_OK;
            }
        }

        *match = 1;
        return VODLMS_OK;
    }

    /* row[j]: the pattern so far matches exactly url[0..j) */
    row = malloc(url_len + 1);
    if (row == NULL) {
        return VODLMS_ENOMEM;
    }

    memset(row, 0, url_len + 1);
    row[0] = 1;

    for (i = 0; i < pat_len; i++) {
        c = (unsigned char) pat[i];
        alive = 0;

        if (c == '*') {
            /* "**" is "*": skipping repeats keeps "*****" cheap */
            if (i > 0 && pat[i - 1] == '*') {
                continue;
            }

            alive = row[0];

            for (j = 1; j <= url_len; j++) {
                if (!row[j] && row[j - 1] && !vodlms_cf_is_bar(&bars, j - 1))
                {
                    row[j] = 1;
                }

                alive |= row[j];
            }

        } else {
            /* right to left, so that row[j - 1] is still the old value */
            for (j = url_len; j > 0; j--) {
                row[j] = row[j - 1]
                         && (c == '?' || (unsigned char) url[j - 1] == c);
                alive |= row[j];
            }

            row[0] = 0;
        }

        if (!alive) {
            break;
        }
    }

    *match = row[url_len];

    free(row);

    return VODLMS_OK;
}


/* ------------------------------------------------------------------ URL */

int
vodlms_cf_path_safe(const char *path, size_t len)
{
    char    c;
    size_t  i, dots, other;

    /* per segment: how many dots (plain or %2e), how many other bytes */

    dots = 0;
    other = 0;

    for (i = 0; i <= len; i++) {

        if (i == len || path[i] == '/') {
            if (other == 0 && (dots == 1 || dots == 2)) {
                return 0;                       /* "." or ".." */
            }

            dots = 0;
            other = 0;
            continue;
        }

        c = path[i];

        /*
         * nginx's URI parser ends a ".." segment at a raw '#' as at a '/',
         * so "/hls/42/..#" is "/hls/": never in a real player's request
         */
        if (c == '#') {
            return 0;
        }

        if (c == '%' && i + 2 < len) {
            char  h = path[i + 1], l = path[i + 2];

            if (h == '2' && (l == 'e' || l == 'E')) {
                dots++;
                i += 2;
                continue;
            }

            if ((h == '2' && (l == 'f' || l == 'F'))
                || (h == '5' && (l == 'c' || l == 'C')))
            {
                return 0;                       /* an encoded separator */
            }
        }

        if (c == '.') {
            dots++;

        } else {
            other++;
        }
    }

    return 1;
}


vodlms_rc_t
vodlms_cf_url_split(const char *url, size_t len, vodlms_cf_request_t *r)
{
    size_t  i, host, path, query;

    if (url == NULL || memchr(url, '#', len) != NULL) {
        return VODLMS_EMALFORMED;
    }

    for (i = 0; i + 3 <= len; i++) {
        if (url[i] == ':' && url[i + 1] == '/' && url[i + 2] == '/') {
            break;
        }
    }

    if (i == 0 || i + 3 > len) {
        return VODLMS_EMALFORMED;
    }

    host = i + 3;

    for (path = host; path < len && url[path] != '/' && url[path] != '?';
         path++)
    {
        /* void */
    }

    for (query = path; query < len && url[query] != '?'; query++) {
        /* void */
    }

    r->scheme.data = url;
    r->scheme.len = i;
    r->host.data = url + host;
    r->host.len = path - host;
    r->path.data = url + path;
    r->path.len = query - path;
    r->query.data = query < len ? url + query + 1 : url + len;
    r->query.len = query < len ? len - query - 1 : 0;

    return VODLMS_OK;
}


/* --------------------------------------------------------------- policy */

typedef struct {
    const char  *resource;
    size_t       resource_len;
    int64_t      not_after;         /* DateLessThan */
    int64_t      not_before;        /* DateGreaterThan */
    int          has_not_before;
    const char  *ip;                /* AWS:SourceIp, NULL = none */
    size_t       ip_len;
} vodlms_cf_policy_t;


/* {"AWS:<name>": <value>} and nothing else */
static json_t *
vodlms_cf_aws_value(json_t *obj, const char *name)
{
    if (!json_is_object(obj) || json_object_size(obj) != 1) {
        return NULL;
    }

    return json_object_get(obj, name);
}


/* NULL when usable, else why not (the statement is kept in *root) */
static const char *
vodlms_cf_policy_parse(const unsigned char *p, size_t len, json_t **root,
    vodlms_cf_policy_t *out)
{
    json_t        *st, *s0, *res, *cond, *v, *e;
    const char    *key;
    json_error_t   err;

    memset(out, 0, sizeof(vodlms_cf_policy_t));

    /* no NULs, no duplicate keys: one reading of the signed bytes only */
    *root = json_loadb((const char *) p, len, JSON_REJECT_DUPLICATES, &err);

    if (*root == NULL) {
        return "policy is not JSON";
    }

    if (!json_is_object(*root) || json_object_size(*root) != 1) {
        return "policy is not an object with only \"Statement\"";
    }

    st = json_object_get(*root, "Statement");

    if (!json_is_array(st)) {
        return "\"Statement\" is not an array";
    }

    if (json_array_size(st) != 1) {
        return "\"Statement\" must hold exactly one statement";
    }

    s0 = json_array_get(st, 0);

    if (!json_is_object(s0)) {
        return "the statement is not an object";
    }

    json_object_foreach(s0, key, v) {
        if (strcmp(key, "Resource") != 0 && strcmp(key, "Condition") != 0) {
            return "unsupported key in the statement";
        }
    }

    /* AWS lets a policy omit Resource ("any URL"): this edge does not */
    res = json_object_get(s0, "Resource");

    if (!json_is_string(res) || json_string_length(res) == 0
        || json_string_length(res) > VODLMS_CF_RESOURCE_MAX)
    {
        return "no usable \"Resource\" string";
    }

    out->resource = json_string_value(res);
    out->resource_len = json_string_length(res);

    cond = json_object_get(s0, "Condition");

    if (!json_is_object(cond)) {
        return "no \"Condition\" object";
    }

    json_object_foreach(cond, key, v) {
        if (strcmp(key, "DateLessThan") != 0
            && strcmp(key, "DateGreaterThan") != 0
            && strcmp(key, "IpAddress") != 0)
        {
            return "unsupported condition";
        }
    }

    e = vodlms_cf_aws_value(json_object_get(cond, "DateLessThan"),
                            "AWS:EpochTime");

    if (!json_is_integer(e)) {
        return "no integer DateLessThan/AWS:EpochTime";
    }

    out->not_after = (int64_t) json_integer_value(e);

    v = json_object_get(cond, "DateGreaterThan");

    if (v != NULL) {
        e = vodlms_cf_aws_value(v, "AWS:EpochTime");

        if (!json_is_integer(e)) {
            return "DateGreaterThan/AWS:EpochTime is not an integer";
        }

        out->not_before = (int64_t) json_integer_value(e);
        out->has_not_before = 1;
    }

    v = json_object_get(cond, "IpAddress");

    if (v != NULL) {
        e = vodlms_cf_aws_value(v, "AWS:SourceIp");

        if (!json_is_string(e)) {
            return "IpAddress/AWS:SourceIp is not a string";
        }

        out->ip = json_string_value(e);
        out->ip_len = json_string_length(e);
    }

    return NULL;
}


/*
 * A parsed policy as the signature cache keeps it: 'P', DateLessThan and
 * DateGreaterThan (8 bytes each, little-endian), a flags byte (1: a
 * DateGreaterThan was given, 2: a SourceIp was given -- an empty one must
 * still fail), the Resource's and the SourceIp's lengths (2 and 1 bytes),
 * then their bytes.  0 when it does not fit: the policy is then parsed again on
 * every hit, which is only slower.
 */
static size_t
vodlms_cf_policy_pack(const vodlms_cf_policy_t *pol, unsigned char *out,
    size_t size)
{
    size_t    n, i;
    uint64_t  v;

    n = 1 + 8 + 8 + 1 + 2 + 1 + pol->resource_len + pol->ip_len;

    if (n > size || pol->resource_len > 0xffff || pol->ip_len > 0xff) {
        return 0;
    }

    out[0] = 'P';

    v = (uint64_t) pol->not_after;
    for (i = 0; i < 8; i++) {
        out[1 + i] = (unsigned char) (v >> (8 * i));
    }

    v = (uint64_t) pol->not_before;
    for (i = 0; i < 8; i++) {
        out[9 + i] = (unsigned char) (v >> (8 * i));
    }

    /* flags: a DateGreaterThan; a SourceIp (even an empty, unusable one) */
    out[17] = (unsigned char) ((pol->has_not_before != 0)
                               | ((pol->ip != NULL) << 1));
    out[18] = (unsigned char) (pol->resource_len & 0xff);
    out[19] = (unsigned char) (pol->resource_len >> 8);
    out[20] = (unsigned char) pol->ip_len;

    memcpy(out + 21, pol->resource, pol->resource_len);
    if (pol->ip_len) {
        memcpy(out + 21 + pol->resource_len, pol->ip, pol->ip_len);
    }

    return n;
}


/* 1 when val is a packed policy; pol then points into val */
static int
vodlms_cf_policy_unpack(const unsigned char *val, size_t len,
    vodlms_cf_policy_t *pol)
{
    size_t    i;
    uint64_t  a, b;

    if (len < 21 || val[0] != 'P') {
        return 0;
    }

    memset(pol, 0, sizeof(vodlms_cf_policy_t));

    for (i = 0, a = 0, b = 0; i < 8; i++) {
        a |= (uint64_t) val[1 + i] << (8 * i);
        b |= (uint64_t) val[9 + i] << (8 * i);
    }

    pol->not_after = (int64_t) a;
    pol->not_before = (int64_t) b;
    pol->has_not_before = val[17] & 1;
    pol->resource_len = val[18] | ((size_t) val[19] << 8);
    pol->ip_len = val[20];

    if (21 + pol->resource_len + pol->ip_len != len
        || pol->resource_len == 0)
    {
        return 0;
    }

    pol->resource = (const char *) val + 21;
    pol->ip = (val[17] & 2) ? (const char *) val + 21 + pol->resource_len
                            : NULL;

    return 1;
}


/* ----------------------------------------------------------------- verify */

static int
vodlms_cf_sig_ok(EVP_PKEY *key, vodlms_cf_hash_t hash,
    const unsigned char *sig, size_t sig_len, const unsigned char *tbs,
    size_t tbs_len)
{
    int          ok;
    EVP_MD_CTX  *ctx;

    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        return -1;
    }

    ok = EVP_DigestVerifyInit(ctx, NULL,
                              hash == VODLMS_CF_SHA256 ? EVP_sha256()
                                                       : EVP_sha1(),
                              NULL, key) == 1
         && EVP_DigestVerify(ctx, sig, sig_len, tbs, tbs_len) == 1;

    EVP_MD_CTX_free(ctx);

    /* a failed check queues errors nginx would later misattribute */
    ERR_clear_error();

    return ok;
}


/* strict decimal: digits only, no sign, fits int64_t */
static int
vodlms_cf_epoch(const char *s, size_t len, int64_t *v)
{
    size_t  i;

    if (len == 0 || len > 19) {
        return 0;
    }

    *v = 0;

    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }

        if (*v > (INT64_MAX - (s[i] - '0')) / 10) {
            return 0;
        }

        *v = *v * 10 + (s[i] - '0');
    }

    return 1;
}


/* percent-decode a parameter value into out (at least len bytes) */
static int
vodlms_cf_param(const vodlms_cstr_t *v, char *out, size_t out_size,
    size_t *out_len)
{
    *out_len = 0;

    if (v->len > out_size) {
        return 0;
    }

    return vodlms_pct_decode(v->data, v->len, out, out_len) == VODLMS_OK;
}


/* memcpy() from NULL is undefined even for 0 bytes, and parts may be */
static void
vodlms_cf_cat(char *dst, size_t *n, const char *src, size_t len)
{
    if (len > 0) {
        memcpy(dst + *n, src, len);
        *n += len;
    }
}


#define vodlms_cf_deny(res, v, why)                                           \
    do {                                                                      \
        (res)->verdict = (v);                                                 \
        (res)->detail = (why);                                                \
    } while (0)


vodlms_rc_t
vodlms_cf_verify(const vodlms_cf_request_t *r, vodlms_cf_result_t *res)
{
    int                  match;
    char                *work, *url, *rest, *pol;
    char                 kid[3 * VODLMS_CF_KEY_PAIR_ID_MAX];
    char                 hash_s[32], exp_s[64];
    char                 sig_s[3 * VODLMS_CF_SIG_B64_MAX];
    size_t               i, n, url_len, rest_len, pol_len, size, sig_len;
    size_t               kid_len, hash_len, exp_len, sig_s_len;
    int64_t              expires;
    json_t              *root;
    EVP_PKEY            *key;
    uint32_t             net, client;
    unsigned             prefix;
    vodlms_rc_t          rc;
    const char          *why;
    unsigned char        sig[VODLMS_CF_SIG_MAX];
    vodlms_cf_hash_t     hash;
    vodlms_cf_params_t   qp, cp, *p;
    vodlms_cf_policy_t   pol_st;
    size_t               cached_len;
    unsigned char        cached[VODLMS_CF_SIG_CACHE_VALUE_MAX];

    res->verdict = VODLMS_CF_BAD_SIGNATURE;
    res->source = VODLMS_CF_SRC_NONE;
    res->sig_cached = 0;
    res->detail = "internal error";
    res->expires = 0;

    work = NULL;
    root = NULL;

    if (r->query.len > VODLMS_CF_URL_MAX + 2 * VODLMS_CF_POLICY_B64_MAX
        || r->scheme.len + r->host.len + r->path.len > VODLMS_CF_URL_MAX)
    {
        vodlms_cf_deny(res, VODLMS_CF_RESOURCE_MISMATCH, "request too long");
        return VODLMS_OK;
    }

    /* the URL + its rebuilt canned policy, or the decoded Policy */
    url_len = r->scheme.len + 3 + r->host.len + r->path.len + 1
              + r->query.len;
    size = url_len + r->query.len + 1
           + 6 * url_len + 256 + 2 * VODLMS_CF_POLICY_B64_MAX;

    work = malloc(size);
    if (work == NULL) {
        return VODLMS_ENOMEM;
    }

    url = work;
    rest = url + url_len;
    pol = rest + r->query.len + 1;

    /* 1. the query's parameters, if any, else the cookies */
    rc = vodlms_cf_query_split(r->query.data, r->query.len, &qp, rest,
                               r->query.len + 1, &rest_len);
    if (rc != VODLMS_OK) {
        goto failed;
    }

    if (qp.present) {
        p = &qp;
        res->source = VODLMS_CF_SRC_URL;

    } else if (vodlms_cf_cookie_params(r->cookie.data, r->cookie.len, &cp)
               == VODLMS_OK)
    {
        p = &cp;
        res->source = VODLMS_CF_SRC_COOKIE;

    } else {
        vodlms_cf_deny(res, VODLMS_CF_MISSING_SIGNATURE,
                       "no CloudFront parameters or cookies");
        goto done;
    }

    /* 2. what must be there */
    if (p->dup) {
        vodlms_cf_deny(res, VODLMS_CF_BAD_SIGNATURE,
                       "a CloudFront parameter is repeated");
        goto done;
    }

    if (!(p->present & (1u << VODLMS_CF_P_SIGNATURE))
        || !(p->present & (1u << VODLMS_CF_P_KEY_PAIR_ID)))
    {
        vodlms_cf_deny(res, VODLMS_CF_MISSING_SIGNATURE,
                       "no Signature or no Key-Pair-Id");
        goto done;
    }

    if (!(p->present
          & (1u << VODLMS_CF_P_POLICY | 1u << VODLMS_CF_P_EXPIRES)))
    {
        vodlms_cf_deny(res, VODLMS_CF_MISSING_SIGNATURE,
                       "neither Policy nor Expires");
        goto done;
    }

    key = NULL;

    if (vodlms_cf_param(&p->v[VODLMS_CF_P_KEY_PAIR_ID], kid, sizeof(kid),
                        &kid_len))
    {
        for (i = 0; i < r->nkeys; i++) {
            if (r->keys[i].id_len == kid_len
                && memcmp(r->keys[i].id, kid, kid_len) == 0)
            {
                key = r->keys[i].key;
                break;
            }
        }
    }

    if (key == NULL) {
        vodlms_cf_deny(res, VODLMS_CF_UNKNOWN_KEY_PAIR_ID,
                       "unknown Key-Pair-Id");
        goto done;
    }

    hash = VODLMS_CF_SHA1;

    if (p->present & (1u << VODLMS_CF_P_HASH_ALGORITHM)) {
        if (!vodlms_cf_param(&p->v[VODLMS_CF_P_HASH_ALGORITHM], hash_s,
                             sizeof(hash_s), &hash_len))
        {
            hash_len = 0;
        }

        if (hash_len == 6 && memcmp(hash_s, "SHA256", 6) == 0) {
            hash = VODLMS_CF_SHA256;

        } else if (!(hash_len == 4 && memcmp(hash_s, "SHA1", 4) == 0)) {
            vodlms_cf_deny(res, VODLMS_CF_BAD_SIGNATURE,
                           "unsupported Hash-Algorithm");
            goto done;
        }
    }

    if (!vodlms_cf_param(&p->v[VODLMS_CF_P_SIGNATURE], sig_s, sizeof(sig_s),
                         &sig_s_len)
        || vodlms_cf_b64url_decode(sig_s, sig_s_len, sig, sizeof(sig),
                                   &sig_len)
           != VODLMS_OK
        || sig_len == 0)
    {
        vodlms_cf_deny(res, VODLMS_CF_BAD_SIGNATURE,
                       "Signature is not CloudFront base64");
        goto done;
    }

    /* 3. the request URL without the CloudFront parameters */
    n = 0;
    vodlms_cf_cat(url, &n, r->scheme.data, r->scheme.len);
    vodlms_cf_cat(url, &n, "://", 3);
    vodlms_cf_cat(url, &n, r->host.data, r->host.len);
    vodlms_cf_cat(url, &n, r->path.data, r->path.len);

    if (rest_len > 0) {
        vodlms_cf_cat(url, &n, "?", 1);
        vodlms_cf_cat(url, &n, rest, rest_len);
    }

    url_len = n;

    if (url_len > VODLMS_CF_URL_MAX) {
        vodlms_cf_deny(res, VODLMS_CF_RESOURCE_MISMATCH, "request too long");
        goto done;
    }

    /* ... and the policy bytes the signature must cover */
    expires = 0;

    if (p->present & (1u << VODLMS_CF_P_POLICY)) {
        if (p->v[VODLMS_CF_P_POLICY].len > VODLMS_CF_POLICY_B64_MAX
            || !vodlms_cf_param(&p->v[VODLMS_CF_P_POLICY], pol,
                                VODLMS_CF_POLICY_B64_MAX, &n)
            || vodlms_cf_b64url_decode(pol, n,
                                       (unsigned char *) pol
                                       + VODLMS_CF_POLICY_B64_MAX,
                                       VODLMS_CF_POLICY_B64_MAX, &pol_len)
               != VODLMS_OK)
        {
            vodlms_cf_deny(res, VODLMS_CF_BAD_SIGNATURE,
                           "Policy is not CloudFront base64");
            goto done;
        }

        pol += VODLMS_CF_POLICY_B64_MAX;

    } else {
        if (!vodlms_cf_param(&p->v[VODLMS_CF_P_EXPIRES], exp_s,
                             sizeof(exp_s), &exp_len)
            || !vodlms_cf_epoch(exp_s, exp_len, &expires))
        {
            vodlms_cf_deny(res, VODLMS_CF_BAD_SIGNATURE,
                           "Expires is not a decimal epoch");
            goto done;
        }

        if (vodlms_cf_policy_build(url, url_len, expires, 0, NULL, 0, pol,
                                   6 * url_len + 256, &pol_len)
            != VODLMS_OK)
        {
            vodlms_cf_deny(res, VODLMS_CF_BAD_SIGNATURE,
                           "no canned policy can be built for this url");
            goto done;
        }
    }

    /* 4. the signature, over the exact bytes, before any parsing */
    cached_len = 0;

    if (r->sig_cache
        && r->sig_cache->lookup(r->sig_cache->data, kid, kid_len, hash, sig,
                                sig_len, pol, pol_len, cached,
                                sizeof(cached), &cached_len))
    {
        res->sig_cached = 1;

    } else switch (vodlms_cf_sig_ok(key, hash, sig, sig_len,
                                    (const unsigned char *) pol, pol_len))
    {
    case 1:
        break;

    case 0:
        vodlms_cf_deny(res, VODLMS_CF_BAD_SIGNATURE,
                       "signature does not verify");
        goto done;

    default:
        rc = VODLMS_ENOMEM;
        goto failed;
    }

    if (!(p->present & (1u << VODLMS_CF_P_POLICY))) {
        res->expires = expires;

        if (r->sig_cache && !res->sig_cached) {
            r->sig_cache->store(r->sig_cache->data, kid, kid_len, hash, sig,
                                sig_len, pol, pol_len, NULL, 0, expires);
        }

        if (!(r->now < expires)) {
            vodlms_cf_deny(res, VODLMS_CF_EXPIRED, "now >= Expires");
            goto done;
        }

        vodlms_cf_deny(res, VODLMS_CF_ALLOW, "valid canned policy");
        goto done;
    }

    /*
     * 5. a custom policy: signed, so now worth parsing -- unless the cache
     * kept what these exact bytes parsed to
     */
    if (!(res->sig_cached
          && vodlms_cf_policy_unpack(cached, cached_len, &pol_st)))
    {
        why = vodlms_cf_policy_parse((const unsigned char *) pol, pol_len,
                                     &root, &pol_st);
        if (why != NULL) {
            vodlms_cf_deny(res, VODLMS_CF_BAD_SIGNATURE, why);
            goto done;
        }
    }

    res->expires = pol_st.not_after;

    /* a good signature over a policy we can enforce: worth remembering */
    if (r->sig_cache && !res->sig_cached) {
        cached_len = vodlms_cf_policy_pack(&pol_st, cached, sizeof(cached));
        r->sig_cache->store(r->sig_cache->data, kid, kid_len, hash, sig,
                            sig_len, pol, pol_len, cached, cached_len,
                            pol_st.not_after);
    }

    /* 6. its conditions */
    if (!(r->now < pol_st.not_after)) {
        vodlms_cf_deny(res, VODLMS_CF_EXPIRED, "now >= DateLessThan");
        goto done;
    }

    if (pol_st.has_not_before && !(r->now > pol_st.not_before)) {
        vodlms_cf_deny(res, VODLMS_CF_NOT_YET_VALID,
                       "now <= DateGreaterThan");
        goto done;
    }

    rc = vodlms_cf_resource_match(pol_st.resource, pol_st.resource_len, url,
                                  url_len, r->match, &match);
    if (rc != VODLMS_OK) {
        goto failed;
    }

    if (!match) {
        vodlms_cf_deny(res, VODLMS_CF_RESOURCE_MISMATCH,
                       "url does not match the policy Resource");
        goto done;
    }

    if (pol_st.ip != NULL) {
        if (vodlms_cf_ipv4_parse(pol_st.ip, pol_st.ip_len, &net, &prefix)
            != VODLMS_OK)
        {
            vodlms_cf_deny(res, VODLMS_CF_IP_MISMATCH,
                           "AWS:SourceIp is not an IPv4 CIDR");
            goto done;
        }

        if (vodlms_cf_ipv4_parse(r->client_ip.data, r->client_ip.len,
                                 &client, NULL)
            != VODLMS_OK)
        {
            vodlms_cf_deny(res, VODLMS_CF_IP_MISMATCH,
                           "client address is not IPv4");
            goto done;
        }

        /* a shift by 32 is undefined: /0 is the whole space */
        if (prefix > 0
            && (net ^ client) >> (32 - prefix) != 0)
        {
            vodlms_cf_deny(res, VODLMS_CF_IP_MISMATCH,
                           "client address outside AWS:SourceIp");
            goto done;
        }
    }

    vodlms_cf_deny(res, VODLMS_CF_ALLOW, "valid custom policy");

done:

    json_decref(root);
    free(work);

    return VODLMS_OK;

failed:

    /* fail closed: whatever the caller does with rc, this is a deny */
    vodlms_cf_deny(res, VODLMS_CF_BAD_SIGNATURE, "internal error");
    res->expires = 0;

    json_decref(root);
    free(work);

    return rc;
}
