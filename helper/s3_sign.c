/*
 * S3 requests signed by libcurl's CURLOPT_AWS_SIGV4, with the canonical
 * URI, canonical query and payload hash made here (s3_sign.h says why).
 */

#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "s3_sign.h"

/* ---------------------------------------------------------------- strings */

typedef struct {
    char    *p;
    size_t   len, cap;
    int      failed;
} sb_t;

static void
sb_add(sb_t *b, const char *s, size_t n)
{
    char    *np;
    size_t   cap;

    if (b->failed) {
        return;
    }
    if (b->len + n + 1 > b->cap) {
        for (cap = b->cap ? b->cap * 2 : 128; cap < b->len + n + 1; cap *= 2) {
            /* void */
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

/* the string ("" if nothing was added), or NULL if anything failed */
static char *
sb_done(sb_t *b)
{
    if (b->failed) {
        free(b->p);
        return NULL;
    }
    return b->p ? b->p : calloc(1, 1);
}

static int
unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
           || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
           || c == '~';
}

char *
vh_s3_uri_encode(const char *s, size_t len, int keep_slash)
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

/* s[0..len) with %XX decoded (a malformed escape stays as it is), encoded again */
static char *
reencode(const char *s, size_t len)
{
    char    *d = malloc(len + 1), *e;
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
    e = vh_s3_uri_encode(d, n, 0);
    free(d);
    return e;
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

char *
vh_s3_canonical_query(const char *query)
{
    pair_t      *p;
    size_t       n = 0, cap = 1, i;
    const char  *s, *amp, *eq;
    sb_t         b = { 0 };
    char        *out = NULL;

    if (query == NULL) {
        query = "";
    }
    for (s = query; *s; s++) {
        cap += *s == '&';
    }
    p = calloc(cap, sizeof(pair_t));
    if (p == NULL) {
        return NULL;
    }
    for (s = query; *s; s = *amp ? amp + 1 : amp) {
        amp = strchr(s, '&');
        if (amp == NULL) {
            amp = s + strlen(s);
        }
        if (amp == s) {
            continue;
        }
        eq = memchr(s, '=', amp - s);
        p[n].name = reencode(s, eq ? (size_t) (eq - s) : (size_t) (amp - s));
        p[n].value = eq ? reencode(eq + 1, amp - eq - 1) : calloc(1, 1);
        if (p[n].name == NULL || p[n++].value == NULL) {
            goto done;
        }
    }
    qsort(p, n, sizeof(pair_t), pair_cmp);
    for (i = 0; i < n; i++) {
        if (i) {
            sb_add(&b, "&", 1);
        }
        sb_str(&b, p[i].name);
        sb_add(&b, "=", 1);
        sb_str(&b, p[i].value);
    }
    out = sb_done(&b);

done:
    for (i = 0; i < n; i++) {
        free(p[i].name);
        free(p[i].value);
    }
    free(p);
    return out;
}

void
vh_s3_sha256_hex(const void *data, size_t len, char hex[65])
{
    static const char  digits[] = "0123456789abcdef";
    unsigned char      md[32];
    unsigned int       mdlen = 0, i;

    if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32) {
        memset(md, 0, sizeof(md));
    }
    for (i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 0xf];
    }
    hex[64] = '\0';
}

/* ---------------------------------------------------------------- signing */

static struct curl_slist *
add_header(struct curl_slist *list, const char *name, const char *value, int *failed)
{
    sb_t                b = { 0 };
    char               *line;
    struct curl_slist  *l;

    sb_str(&b, name);
    sb_add(&b, ": ", 2);
    sb_str(&b, value);
    line = sb_done(&b);
    if (line == NULL) {
        *failed = 1;
        return list;
    }
    l = curl_slist_append(list, line);
    free(line);
    if (l == NULL) {
        *failed = 1;
        return list;
    }
    return l;
}

int
vh_s3_sign(CURL *c, const vh_s3_sign_t *s, struct curl_slist **list, char **url)
{
    struct curl_slist  *l = NULL;
    char               *path = NULL, *query = NULL, provider[160];
    sb_t                b = { 0 };
    size_t              i;
    int                 failed = 0, n;

    *list = NULL;
    *url = NULL;
    if (s->access_key == NULL || s->secret_key == NULL || s->region == NULL
        || s->base == NULL || s->path == NULL || s->path[0] != '/'
        || (s->payload_hash != NULL && s->payload_hash[0] == '\0'))
    {
        return -1;
    }
    n = snprintf(provider, sizeof(provider), "aws:amz:%s:%s", s->region,
                 s->service ? s->service : "s3");
    if (n < 0 || (size_t) n >= sizeof(provider)) {
        return -1;
    }

    for (i = 0; i < s->nheaders; i++) {
        const char *colon = strchr(s->headers[i], ':');

        /* "Name:" would make curl drop its own header, yet 7.88 signs it */
        if (colon == NULL || colon == s->headers[i]
            || colon[1 + strspn(colon + 1, " \t")] == '\0')
        {
            goto fail;
        }
        l = curl_slist_append(l, s->headers[i]);
        if (l == NULL) {
            goto fail;
        }
    }
    if (s->payload_hash != NULL) {
        l = add_header(l, "x-amz-content-sha256", s->payload_hash, &failed);
    }
    if (s->session_token != NULL && s->session_token[0] != '\0') {
        l = add_header(l, "X-Amz-Security-Token", s->session_token, &failed);
    }

    path = vh_s3_uri_encode(s->path, strlen(s->path), 1);
    query = vh_s3_canonical_query(s->query);
    if (failed || path == NULL || query == NULL) {
        goto fail;
    }
    sb_str(&b, s->base);
    sb_str(&b, path);
    if (query[0] != '\0') {
        sb_add(&b, "?", 1);
        sb_str(&b, query);
    }
    *url = sb_done(&b);
    if (*url == NULL) {
        goto fail;
    }

    if (curl_easy_setopt(c, CURLOPT_URL, *url) != CURLE_OK
        /* S3 signs the path as sent: no removal of "." and ".." */
        || curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L) != CURLE_OK
        || curl_easy_setopt(c, CURLOPT_AWS_SIGV4, provider) != CURLE_OK
        || curl_easy_setopt(c, CURLOPT_USERNAME, s->access_key) != CURLE_OK
        || curl_easy_setopt(c, CURLOPT_PASSWORD, s->secret_key) != CURLE_OK
        || curl_easy_setopt(c, CURLOPT_HTTPHEADER, l) != CURLE_OK)
    {
        goto fail;
    }
    free(path);
    free(query);
    *list = l;
    return 0;

fail:
    curl_slist_free_all(l);
    free(path);
    free(query);
    free(*url);
    *url = NULL;
    return -1;
}
