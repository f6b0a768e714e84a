/*
 * Small helpers shared by the nginx glue files: JSON string quoting
 * (through jansson), the "zone [valid=] [invalid=] | off" parameters
 * every answer cache takes, CDN base URLs, numeric columns, response
 * headers and whole answers from memory, and CloudFront keys loaded at
 * configuration time.
 */

#include "ngx_http_vodlms_module.h"
#include "vodlms_cloudfront.h"

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


char *
ngx_http_vodlms_parse_cache(ngx_conf_t *cf, ngx_shm_zone_t **zone,
    ngx_msec_t *valid, ngx_msec_t *invalid)
{
    ngx_str_t   *value, s;
    ngx_uint_t   i;
    ngx_msec_t  *ms;

    if (*zone != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        if (cf->args->nelts != 2) {
            return "takes no parameters with \"off\"";
        }
        *zone = NULL;
        return NGX_CONF_OK;
    }

    *zone = ngx_vodlms_shm_cache_ref(cf, &value[1]);
    if (*zone == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "valid=", 6) == 0) {
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;
            ms = valid;

        } else if (ngx_strncmp(value[i].data, "invalid=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;
            ms = invalid;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        *ms = ngx_parse_time(&s, 0);

        if (*ms == (ngx_msec_t) NGX_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid time in \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/*
 * A check that needs several directives runs when locations are merged, after
 * the whole http{} block is read: cf->conf_file then points at its closing
 * brace.  So the message names the block being merged (which nginx puts in
 * cf->ctx during the merge) and where it was opened, in the usual
 * "in file:line" shape of ngx_conf_log_error().
 */

void ngx_cdecl
ngx_http_vodlms_merge_error(ngx_conf_t *cf, const char *fmt, ...)
{
    u_char                      *p, *last;
    va_list                      args;
    ngx_http_core_loc_conf_t    *clcf;
    ngx_http_vodlms_loc_conf_t  *vlcf;

    u_char  errstr[NGX_MAX_CONF_ERRSTR];

    last = errstr + NGX_MAX_CONF_ERRSTR;

    va_start(args, fmt);
    p = ngx_vslprintf(errstr, last, fmt, args);
    va_end(args);

    vlcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_vodlms_module);
    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (vlcf == NULL || clcf == NULL || vlcf->conf_file.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%*s", p - errstr, errstr);
        return;
    }

    if (clcf->name.len == 0) {
        /* the server{} block's own settings, or inherited from http{} */
        p = ngx_slprintf(p, last, " (server block)");

    } else if (clcf->noname) {
        /* "if" and "limit_except" blocks carry their location's name */
        p = ngx_slprintf(p, last, " (a block inside location \"%V\")",
                         &clcf->name);

    } else {
        p = ngx_slprintf(p, last, " (location \"%V\")", &clcf->name);
    }

    ngx_log_error(NGX_LOG_EMERG, cf->log, 0, "%*s in %V:%ui",
                  p - errstr, errstr, &vlcf->conf_file, vlcf->conf_line);
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


/* a small file read whole at configuration time (keys); errors logged */

ngx_int_t
ngx_http_vodlms_read_small_file(ngx_conf_t *cf, ngx_str_t *path, size_t max,
    ngx_str_t *out)
{
    ssize_t          n;
    ngx_file_t       file;
    ngx_file_info_t  fi;

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.name = *path;
    file.log = cf->log;

    file.fd = ngx_open_file(path->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot open the key file \"%V\"", path);
        return NGX_ERROR;
    }

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR
        || (size_t) ngx_file_size(&fi) > max)
    {
        ngx_close_file(file.fd);
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the key file \"%V\" is unreadable or larger "
                           "than %uz bytes", path, max);
        return NGX_ERROR;
    }

    out->data = ngx_pnalloc(cf->temp_pool, ngx_file_size(&fi) + 1);
    if (out->data == NULL) {
        ngx_close_file(file.fd);
        return NGX_ERROR;
    }

    n = ngx_read_file(&file, out->data, ngx_file_size(&fi), 0);
    ngx_close_file(file.fd);

    if (n == NGX_ERROR) {
        return NGX_ERROR;
    }

    out->len = n;

    return NGX_OK;
}


/* the highest $N in a statement's text: how many parameters it takes */
ngx_uint_t
ngx_http_vodlms_highest_param(ngx_str_t *sql)
{
    u_char      *p, *last;
    ngx_uint_t   n, max;

    max = 0;
    last = sql->data + sql->len;

    for (p = sql->data; p < last; p++) {
        if (*p == '$' && p + 1 < last && p[1] >= '1' && p[1] <= '9') {
            n = 0;

            for (p++; p < last && *p >= '0' && *p <= '9' && n < 100000; p++) {
                n = n * 10 + (*p - '0');
            }

            max = ngx_max(max, n);
            p--;
        }
    }

    return max;
}


/*
 * A built-in statement in vodlms_pg_schema: the code spells vodlms's own
 * tables "vodlms.videos" (so docs print the default as it runs by
 * default), and every "vodlms." becomes the schema, quoted ("name".), at
 * configuration time.  The name was checked as a plain identifier; the
 * quotes let it be a keyword too.
 */
ngx_int_t
ngx_http_vodlms_sql_in_schema(ngx_conf_t *cf, ngx_str_t *sql, ngx_str_t *out)
{
    u_char                       *p, *m, *q, *last;
    size_t                        len;
    ngx_uint_t                    n;
    ngx_str_t                    *schema;
    ngx_http_vodlms_main_conf_t  *vmcf;

    static ngx_str_t  mark = ngx_string("vodlms.");

    vmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_vodlms_module);
    schema = &vmcf->pg_schema;

    n = 0;
    last = sql->data + sql->len;

    for (p = sql->data; p < last; p += mark.len) {
        p = ngx_strlcasestrn(p, last, mark.data, mark.len - 1);
        if (p == NULL) {
            break;
        }
        n++;
    }

    len = sql->len - n * (mark.len - 1) + n * (schema->len + 2);

    out->data = ngx_pnalloc(cf->pool, len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    q = out->data;

    for (p = sql->data; p < last; /* void */) {
        m = ngx_strlcasestrn(p, last, mark.data, mark.len - 1);

        if (m == NULL) {
            q = ngx_cpymem(q, p, last - p);
            break;
        }

        q = ngx_cpymem(q, p, m - p);
        *q++ = '"';
        q = ngx_cpymem(q, schema->data, schema->len);
        *q++ = '"';
        p = m + mark.len - 1;             /* the '.' is copied with the rest */
    }

    out->len = q - out->data;

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


static void
ngx_http_vodlms_conf_key_free(void *data)
{
    EVP_PKEY_free(data);
}


/*
 * A private key other users can read is a key they can sign with.  Only a
 * warning: the key works, and existing deployments keep starting.  The
 * master reads it before workers drop privileges: root's 0600 is enough.
 */
static void
ngx_http_vodlms_conf_key_mode(ngx_conf_t *cf, ngx_str_t *path)
{
    ngx_uint_t       mode;
    ngx_file_info_t  fi;

    if (ngx_file_info(path->data, &fi) == NGX_FILE_ERROR) {
        return;     /* it was just read: nothing more to say */
    }

    mode = ngx_file_access(&fi);

    if (mode & (S_IRGRP|S_IROTH)) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "vodlms: the private key \"%V\" is readable by "
                           "group or others (mode 0%ui%ui%ui): chmod 600 it",
                           path, (mode >> 6) & 7, (mode >> 3) & 7, mode & 7);
    }
}


/*
 * "key_pair_id /path/to/key.pem", as vodlms_cloudfront_key (private) and
 * vodlms_edge_public_key (public) take it: the id is 1-64 of [A-Za-z0-9_-]
 * (it goes into URLs and cookies as it is), the file is read once, here,
 * and a private key's bytes are wiped from the temporary buffer at once.
 * The key is freed with the configuration.
 */
char *
ngx_http_vodlms_conf_key(ngx_conf_t *cf, ngx_str_t *id, ngx_str_t *file,
    ngx_uint_t private, EVP_PKEY **key)
{
    char                 err[256];
    ngx_str_t            path, pem;
    vodlms_rc_t          rc;
    ngx_pool_cleanup_t  *cln;

    if (!ngx_http_vodlms_video_id_valid(id)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid key pair id \"%V\": 1-64 of "
                           "[A-Za-z0-9_-]", id);
        return NGX_CONF_ERROR;
    }

    path = *file;
    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_vodlms_read_small_file(cf, &path, 65536, &pem) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (private) {
        rc = vodlms_cf_key_load_pem((char *) pem.data, pem.len, key, err,
                                    sizeof(err));

        /* the private key's bytes do not linger in the temp pool */
        ngx_explicit_memzero(pem.data, pem.len);

    } else {
        rc = vodlms_cf_pubkey_load_pem((char *) pem.data, pem.len, key, err,
                                       sizeof(err));
    }

    if (rc != VODLMS_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "bad CloudFront %skey "
                           "\"%V\": %s", private ? "" : "public ", &path,
                           err);
        return NGX_CONF_ERROR;
    }

    if (private) {
        ngx_http_vodlms_conf_key_mode(cf, &path);
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        EVP_PKEY_free(*key);
        *key = NULL;
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_vodlms_conf_key_free;
    cln->data = *key;

    return NGX_CONF_OK;
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
