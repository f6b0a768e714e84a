/*
 * Small request-time helpers shared by the nginx glue files: JSON string
 * quoting (through jansson), numbers and numeric columns, CDN base URLs,
 * the client's IPv4 address, response headers and whole answers from
 * memory.  The configuration-time ones are in ngx_http_vodlms_conf.c.
 */

#include "ngx_http_vodlms_module.h"

#include <jansson.h>


ngx_int_t
ngx_http_vodlms_json_quote(ngx_pool_t *pool, ngx_str_t *in, ngx_str_t *out)
{
    char    *s;
    json_t  *j;

    j = json_stringn((char *) in->data, in->len);
    if (j == NULL) {
        /* not UTF-8: say so rather than pass bytes through */
        ngx_str_set(out, "\"(invalid UTF-8)\"");
        return NGX_OK;
    }

    s = json_dumps(j, JSON_ENCODE_ANY);
    json_decref(j);

    if (s == NULL) {
        return NGX_ERROR;
    }

    out->len = ngx_strlen(s);
    out->data = ngx_pnalloc(pool, out->len);

    if (out->data == NULL) {
        free(s);
        return NGX_ERROR;
    }

    ngx_memcpy(out->data, s, out->len);
    free(s);

    return NGX_OK;
}


ngx_int_t
ngx_http_vodlms_is_number(ngx_str_t *s)
{
    size_t      i;
    ngx_uint_t  dot, digits;

    /* what PostgreSQL prints for numeric and integer columns */

    dot = 0;
    digits = 0;

    for (i = 0; i < s->len; i++) {
        if (s->data[i] >= '0' && s->data[i] <= '9') {
            digits++;

        } else if (s->data[i] == '.' && !dot && digits) {
            dot = 1;

        } else if (!(i == 0 && s->data[i] == '-')) {
            return 0;
        }
    }

    return digits > 0 && s->data[s->len - 1] != '.';
}


/*
 * A column's numeral as a double.  The usual ones ("634.5") take the
 * exact fast path.  For the rest: column bytes (from libpq or from the
 * shared cache) are not NUL-terminated, and strtod() reads until it meets
 * something that is not part of a number: it gets a terminated copy.
 */
ngx_int_t
ngx_http_vodlms_column_double(ngx_http_vodlms_column_t *col, double *out)
{
    u_char  buf[64];

    if (col == NULL || col->null || col->value.len >= sizeof(buf)
        || !ngx_http_vodlms_is_number(&col->value))
    {
        return NGX_DECLINED;
    }

    if (vodlms_numeral_fast((char *) col->value.data, col->value.len, out)) {
        return NGX_OK;
    }

    ngx_memcpy(buf, col->value.data, col->value.len);
    buf[col->value.len] = '\0';

    *out = strtod((char *) buf, NULL);

    return NGX_OK;
}


/*
 * A column's seconds in whole milliseconds, exactly as PostgreSQL's
 * round(x * 1000) takes a numeric: a plain decimal ("130.0005" is 130001,
 * half away from zero) read digit by digit, with no binary rounding on the
 * way, so nginx's bitmaps agree with vodlms.coverage_bits().  Other forms
 * (an exponent from a double precision column) go through a double.
 * NGX_DECLINED: missing, NULL, not a number, negative, or past 10^12 s.
 */
ngx_int_t
ngx_http_vodlms_column_ms(ngx_http_vodlms_column_t *col, int64_t *ms)
{
    u_char   *p, *last;
    double    d;
    int64_t   v;
    ngx_int_t digits, frac;

    if (col == NULL || col->null || col->value.len == 0) {
        return NGX_DECLINED;
    }

    p = col->value.data;
    last = p + col->value.len;

    if (*p == '+') {
        p++;
    }

    v = 0;
    digits = 0;

    while (p < last && *p >= '0' && *p <= '9') {
        if (++digits > 12) {
            return NGX_DECLINED;
        }
        v = v * 10 + (*p++ - '0');
    }

    frac = 0;

    if (p < last && *p == '.') {
        p++;

        for (frac = 0; p < last && *p >= '0' && *p <= '9'; p++, frac++) {
            if (frac < 3) {
                v = v * 10 + (*p - '0');

            } else if (frac == 3 && *p >= '5') {
                v++;                    /* the rest cannot change it */
            }
        }
    }

    if (p == last && (digits || frac)) {
        for (/* void */; frac < 3; frac++) {
            v *= 10;
        }

        *ms = v;
        return NGX_OK;
    }

    /* "1e3", "1.5E+2": what float8 may print */

    if (ngx_http_vodlms_column_double(col, &d) != NGX_OK
        || !(d >= 0 && d < 1e12))
    {
        return NGX_DECLINED;
    }

    *ms = (int64_t) (d * 1000.0 + 0.5);

    return NGX_OK;
}


/*
 * A CDN base URL, as vodlms_cloudfront_url and vodlms_edge_url take it:
 * "http(s)://host[:port]", with allow_path a "/path" after it too;
 * trailing slashes are dropped.  No query, fragment, wildcard, space,
 * control or non-ASCII byte.  NGX_OK with *out pointing into *in, or
 * NGX_ERROR (the caller says what was expected).
 */

ngx_int_t
ngx_http_vodlms_parse_base_url(ngx_str_t *in, ngx_uint_t allow_path,
    ngx_str_t *out)
{
    u_char     *p, *last;
    ngx_str_t   u;

    u = *in;

    while (u.len && u.data[u.len - 1] == '/') {
        u.len--;
    }

    if (u.len > 8 && ngx_strncmp(u.data, "https://", 8) == 0) {
        p = u.data + 8;

    } else if (u.len > 7 && ngx_strncmp(u.data, "http://", 7) == 0) {
        p = u.data + 7;

    } else {
        return NGX_ERROR;
    }

    if (*p == '/') {
        return NGX_ERROR;                       /* no host */
    }

    for (last = u.data + u.len; p < last; p++) {
        if ((*p == '/' && !allow_path)
            || *p == '?' || *p == '#' || *p == '*' || *p <= ' ' || *p >= 0x7f)
        {
            return NGX_ERROR;
        }
    }

    *out = u;

    return NGX_OK;
}


/*
 * The client's IPv4 address as text, for CloudFront's AWS:SourceIp: from
 * an AF_INET connection, or from an IPv4-mapped address (::ffff:a.b.c.d),
 * which is how an IPv4 client reaches a dual-stack listener (listen [::]:80
 * ipv6only=off).  NGX_DECLINED for a real IPv6 client.  buf holds at least
 * NGX_INET_ADDRSTRLEN bytes.
 */
ngx_int_t
ngx_http_vodlms_client_ipv4(ngx_connection_t *c, u_char *buf, ngx_str_t *out)
{
    struct sockaddr_in    sin;
#if (NGX_HAVE_INET6)
    u_char               *a;
    struct sockaddr_in6  *sin6;
#endif

    switch (c->sockaddr->sa_family) {

    case AF_INET:
        out->data = buf;
        out->len = ngx_sock_ntop(c->sockaddr, c->socklen, buf,
                                 NGX_INET_ADDRSTRLEN, 0);
        return out->len ? NGX_OK : NGX_DECLINED;

#if (NGX_HAVE_INET6)
    case AF_INET6:
        sin6 = (struct sockaddr_in6 *) c->sockaddr;

        if (!IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
            return NGX_DECLINED;
        }

        a = &sin6->sin6_addr.s6_addr[12];

        ngx_memzero(&sin, sizeof(struct sockaddr_in));
        sin.sin_family = AF_INET;
        ngx_memcpy(&sin.sin_addr, a, 4);

        out->data = buf;
        out->len = ngx_sock_ntop((struct sockaddr *) &sin,
                                 sizeof(struct sockaddr_in), buf,
                                 NGX_INET_ADDRSTRLEN, 0);
        return out->len ? NGX_OK : NGX_DECLINED;
#endif

    default:
        (void) sin;
        return NGX_DECLINED;
    }
}


/* one response header, name a literal */
ngx_int_t
ngx_http_vodlms_add_header(ngx_http_request_t *r, char *name,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value = *value;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    return NGX_OK;
}


/*
 * A whole answer from memory: status, Content-Type (a literal), the body
 * b->pos..b->last.  The header, then the body unless it is a HEAD request.
 * Returns what a content handler returns.
 */
ngx_int_t
ngx_http_vodlms_send(ngx_http_request_t *r, ngx_uint_t status, char *type,
    ngx_buf_t *b)
{
    ngx_int_t    rc;
    ngx_chain_t  out;

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = status;
    r->headers_out.content_length_n = b->last - b->pos;
    r->headers_out.content_type.data = (u_char *) type;
    r->headers_out.content_type.len = ngx_strlen(type);
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
