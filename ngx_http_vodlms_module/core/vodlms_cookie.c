/*
 * vodlms core: Cookie and Authorization header values, percent-decoding,
 * opaque token syntax.
 */

#include <string.h>

#include "vodlms_core.h"


static int
vodlms_is_ws(unsigned char c)
{
    return c == ' ' || c == '\t';
}


static void
vodlms_trim(const char **start, const char **end)
{
    while (*start < *end && vodlms_is_ws((unsigned char) **start)) {
        (*start)++;
    }

    while (*end > *start && vodlms_is_ws((unsigned char) (*end)[-1])) {
        (*end)--;
    }
}


vodlms_rc_t
vodlms_cookie_get(const char *hdr, size_t hdr_len, const char *name,
    size_t name_len, vodlms_cstr_t *value)
{
    const char  *p, *end, *pair_end, *eq, *ns, *ne, *vs, *ve;

    value->data = NULL;
    value->len = 0;

    /* memchr() on NULL is undefined even for 0 bytes */
    if (hdr == NULL || name == NULL || name_len == 0) {
        return VODLMS_ENOTFOUND;
    }

    p = hdr;
    end = hdr + hdr_len;

    while (p < end) {
        pair_end = memchr(p, ';', (size_t) (end - p));
        if (pair_end == NULL) {
            pair_end = end;
        }

        eq = memchr(p, '=', (size_t) (pair_end - p));

        if (eq != NULL) {
            ns = p;
            ne = eq;
            vodlms_trim(&ns, &ne);

            if ((size_t) (ne - ns) == name_len
                && memcmp(ns, name, name_len) == 0)
            {
                vs = eq + 1;
                ve = pair_end;
                vodlms_trim(&vs, &ve);

                if (ve - vs >= 2 && vs[0] == '"' && ve[-1] == '"') {
                    vs++;
                    ve--;
                }

                value->data = vs;
                value->len = (size_t) (ve - vs);
                return VODLMS_OK;
            }
        }

        if (pair_end == end) {
            break;
        }

        p = pair_end + 1;
    }

    return VODLMS_ENOTFOUND;
}


int
vodlms_hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


int
vodlms_id_valid(const char *id, size_t len, size_t max)
{
    size_t         i;
    unsigned char  c;

    if (id == NULL || len == 0 || len > max) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = (unsigned char) id[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '-'))
        {
            return 0;
        }
    }

    return 1;
}


int
vodlms_sql_schema_valid(const char *name, size_t len)
{
    size_t         i;
    unsigned char  c;

    if (name == NULL || len == 0 || len > 63
        || (len >= 3 && memcmp(name, "pg_", 3) == 0))
    {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = (unsigned char) name[i];

        if (!((c >= 'a' && c <= 'z') || c == '_'
              || (i > 0 && c >= '0' && c <= '9')))
        {
            return 0;
        }
    }

    return 1;
}


int
vodlms_storage_prefix_valid(const char *s, size_t len, size_t max)
{
    size_t         i, seg, first;
    unsigned char  c;

    if (s == NULL || len == 0 || len > max) {
        return 0;
    }

    if (s[len - 1] == '/') {
        len--;                          /* the optional final '/' */
    }

    seg = 0;                            /* the current segment's length */
    first = 1;

    for (i = 0; i <= len; i++) {

        if (i == len || s[i] == '/') {
            /* no empty segment ("//", a leading '/'), no "." or ".." */
            if (seg == 0
                || (seg == 1 && s[i - 1] == '.')
                || (seg == 2 && s[i - 1] == '.' && s[i - 2] == '.'))
            {
                return 0;
            }

            seg = 0;
            first = 0;
            continue;
        }

        c = (unsigned char) s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '-'
              || (c == '.' && !first)))
        {
            return 0;
        }

        seg++;
    }

    return 1;
}


int
vodlms_id_integer_valid(const char *id, size_t len, unsigned bits)
{
    size_t         i;
    uint64_t       v, limit;
    unsigned char  c;

    if (id == NULL || len == 0 || (bits != 32 && bits != 64)) {
        return 0;
    }

    i = 0;

    /* INT_MIN's magnitude is one more than INT_MAX */
    limit = ((uint64_t) 1 << (bits - 1)) - 1;

    if (id[0] == '-') {
        limit++;
        i = 1;
    }

    if (i == len) {
        return 0;
    }

    v = 0;

    for ( /* void */ ; i < len; i++) {
        c = (unsigned char) id[i];

        if (c < '0' || c > '9') {
            return 0;
        }

        /* v * 10 + d <= limit, without overflowing */
        if (v > (limit - (c - '0')) / 10) {
            return 0;
        }

        v = v * 10 + (c - '0');
    }

    return 1;
}


vodlms_rc_t
vodlms_pct_decode(const char *in, size_t len, char *out, size_t *out_len)
{
    int            hi, lo;
    size_t         i, n;
    unsigned char  c;

    *out_len = 0;

    for (i = 0, n = 0; i < len; /* void */) {
        c = (unsigned char) in[i];

        if (c == '%') {
            if (len - i < 3) {
                return VODLMS_EMALFORMED;
            }

            hi = vodlms_hex_value((unsigned char) in[i + 1]);
            lo = vodlms_hex_value((unsigned char) in[i + 2]);

            if (hi < 0 || lo < 0) {
                return VODLMS_EMALFORMED;
            }

            c = (unsigned char) (hi << 4 | lo);
            i += 3;

        } else {
            i++;
        }

        /* raw or decoded, a control byte has no business in an id */
        if (c < 0x20 || c == 0x7f) {
            return VODLMS_EMALFORMED;
        }

        out[n++] = (char) c;
    }

    *out_len = n;

    return VODLMS_OK;
}


vodlms_rc_t
vodlms_bearer_token(const char *hdr, size_t len, vodlms_cstr_t *token)
{
    size_t       i;
    const char  *p, *end;

    static const char  scheme[] = "bearer";

    token->data = NULL;
    token->len = 0;

    if (hdr == NULL) {
        return VODLMS_ENOTFOUND;
    }

    p = hdr;
    end = hdr + len;
    vodlms_trim(&p, &end);

    if ((size_t) (end - p) < sizeof(scheme) - 1) {
        return VODLMS_ENOTFOUND;
    }

    /* ASCII case folding by hand: tolower() would depend on the locale */
    for (i = 0; i < sizeof(scheme) - 1; i++) {
        if (((unsigned char) p[i] | 0x20) != (unsigned char) scheme[i]) {
            return VODLMS_ENOTFOUND;
        }
    }

    p += sizeof(scheme) - 1;

    if (p == end) {
        return VODLMS_EMALFORMED;
    }

    if (!vodlms_is_ws((unsigned char) *p)) {
        return VODLMS_ENOTFOUND;      /* e.g. "BearerX ..." */
    }

    vodlms_trim(&p, &end);

    if (p == end) {
        return VODLMS_EMALFORMED;
    }

    token->data = p;
    token->len = (size_t) (end - p);

    return VODLMS_OK;
}


int
vodlms_token_valid(const char *tok, size_t len)
{
    size_t         i;
    unsigned char  c;

    if (tok == NULL || len == 0 || len > VODLMS_TOKEN_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = (unsigned char) tok[i];

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
            || (c >= '0' && c <= '9'))
        {
            continue;
        }

        switch (c) {
        case '.': case '_': case '~': case '+': case '/': case '=': case '-':
            continue;
        }

        return 0;
    }

    return 1;
}
