/*
 * Session fields for display: "vodlms_session_field email user.email;"
 * reads one more field of the session the gate already fetches (the same
 * GET or HMGET, no other round trip) and exposes it as
 * $vodlms_session_email, e.g. for a viewer watermark (vodlms_watermark).
 *
 * They are kept with the answer in the session cache: an answer cached
 * with fields is stored under a namespace naming them, so a gate with
 * other fields never reads it.  Bounded: at most VODLMS_SESSION_FIELDS_MAX
 * fields of at most VODLMS_SESSION_FIELD_MAX bytes each.  A field decides
 * nothing: absent, null or an object, it is just empty.
 */

#include "ngx_http_vodlms_module.h"


#define NGX_HTTP_VODLMS_SESSION_VAR_PREFIX  "vodlms_session_"


/* vodlms_session_field name [path]; */

char *
ngx_http_vodlms_session_field(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vodlms_loc_conf_t  *vlcf = conf;

    u_char                           *p;
    ngx_str_t                        *value, path;
    ngx_uint_t                        i;
    ngx_http_vodlms_session_field_t  *f;

    value = cf->args->elts;

    for (i = 0; i < value[1].len; i++) {
        if (!((value[1].data[i] >= 'a' && value[1].data[i] <= 'z')
              || (value[1].data[i] >= '0' && value[1].data[i] <= '9')
              || value[1].data[i] == '_'))
        {
            break;
        }
    }

    if (value[1].len == 0 || i < value[1].len || value[1].len > 32) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid field name \"%V\": 1 to 32 of "
                           "[a-z0-9_], it names $vodlms_session_<name> "
                           "(nginx lower-cases variable names)", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (value[1].len == sizeof("cache") - 1
        && ngx_strncmp(value[1].data, "cache", 5) == 0)
    {
        return "cannot name a field \"cache\": $vodlms_session_cache is the "
               "session cache's status";
    }

    path = (cf->args->nelts == 3) ? value[2] : value[1];

    if (path.len == 0 || path.data[0] == '.' || path.data[path.len - 1] == '.'
        || ngx_strnstr(path.data, "..", path.len) != NULL
        || ngx_strlchr(path.data, path.data + path.len, '\0') != NULL)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid session field path \"%V\": expected "
                           "\"key\" or a dotted path such as \"user.email\"",
                           &path);
        return NGX_CONF_ERROR;
    }

    if (vlcf->session.fields == NULL) {
        vlcf->session.fields = ngx_array_create(cf->pool, 4,
                                    sizeof(ngx_http_vodlms_session_field_t));
        if (vlcf->session.fields == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    f = vlcf->session.fields->elts;

    for (i = 0; i < vlcf->session.fields->nelts; i++) {
        if (f[i].name.len == value[1].len
            && ngx_strncmp(f[i].name.data, value[1].data, value[1].len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate session field \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    if (vlcf->session.fields->nelts == VODLMS_SESSION_FIELDS_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "too many session fields: at most %d",
                           VODLMS_SESSION_FIELDS_MAX);
        return NGX_CONF_ERROR;
    }

    f = ngx_array_push(vlcf->session.fields);
    if (f == NULL) {
        return NGX_CONF_ERROR;
    }

    /* the pure core takes NUL-terminated paths */
    p = ngx_pnalloc(cf->pool, path.len + 1);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(p, path.data, path.len);
    p[path.len] = '\0';

    f->name = value[1];
    f->path.data = p;
    f->path.len = path.len;

    return NGX_CONF_OK;
}


/* called from the session gate's merge; the list is inherited whole */

char *
ngx_http_vodlms_session_fields_merge(ngx_conf_t *cf,
    ngx_http_vodlms_session_conf_t *prev,
    ngx_http_vodlms_session_conf_t *conf)
{
    ngx_uint_t                        i;
    ngx_http_vodlms_session_field_t  *f;

    if (conf->fields == NULL) {
        conf->fields = prev->fields;
    }

    conf->field_paths = NULL;

    if (conf->fields == NULL) {
        return NGX_CONF_OK;
    }

    f = conf->fields->elts;

    conf->field_paths = ngx_palloc(cf->pool,
                                   conf->fields->nelts * sizeof(char *));
    if (conf->field_paths == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < conf->fields->nelts; i++) {

        if (conf->value == NGX_HTTP_VODLMS_VALUE_HASH
            && ngx_strlchr(f[i].path.data, f[i].path.data + f[i].path.len,
                           '.'))
        {
            ngx_http_vodlms_merge_error(cf,
                                        "hash sessions have flat fields: the "
                                        "dotted path \"%V\" of "
                                        "\"vodlms_session_field %V\" cannot "
                                        "match", &f[i].path, &f[i].name);
            return NGX_CONF_ERROR;
        }

        conf->field_paths[i] = (const char *) f[i].path.data;
    }

    return NGX_CONF_OK;
}


/* "|f:path,path" for the cache namespace: answers keep their fields */

size_t
ngx_http_vodlms_session_fields_ns_len(ngx_http_vodlms_session_conf_t *conf)
{
    size_t                            len;
    ngx_uint_t                        i;
    ngx_http_vodlms_session_field_t  *f;

    if (conf->fields == NULL) {
        return 0;
    }

    len = sizeof("|f:") - 1;
    f = conf->fields->elts;

    for (i = 0; i < conf->fields->nelts; i++) {
        len += f[i].path.len + 1;
    }

    return len;
}


u_char *
ngx_http_vodlms_session_fields_ns(u_char *p,
    ngx_http_vodlms_session_conf_t *conf)
{
    ngx_uint_t                        i;
    ngx_http_vodlms_session_field_t  *f;

    if (conf->fields == NULL) {
        return p;
    }

    p = ngx_cpymem(p, "|f:", 3);
    f = conf->fields->elts;

    for (i = 0; i < conf->fields->nelts; i++) {
        p = ngx_sprintf(p, "%V,", &f[i].path);
    }

    return p;
}


/* the values the core read, into the request's pool */

ngx_int_t
ngx_http_vodlms_session_fields_keep(ngx_http_request_t *r,
    ngx_http_vodlms_session_conf_t *scf, ngx_http_vodlms_session_ctx_t *sctx,
    vodlms_session_field_t *fields)
{
    ngx_uint_t   i, n;
    ngx_str_t   *v;

    if (scf->fields == NULL) {
        return NGX_OK;
    }

    n = scf->fields->nelts;

    v = ngx_pcalloc(r->pool, n * sizeof(ngx_str_t));
    if (v == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        if (!fields[i].found || fields[i].len == 0) {
            continue;
        }

        v[i].data = ngx_pnalloc(r->pool, fields[i].len);
        if (v[i].data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(v[i].data, fields[i].value, fields[i].len);
        v[i].len = fields[i].len;
    }

    sctx->fields = scf->fields;
    sctx->field_values = v;

    return NGX_OK;
}


/*
 * In a cached answer, after the roles: "\n" then "<len>:<bytes>" per
 * field, in the order of the configuration (the namespace names it).
 */

u_char *
ngx_http_vodlms_session_fields_encode(u_char *p,
    ngx_http_vodlms_session_ctx_t *sctx)
{
    ngx_uint_t  i;

    if (sctx->fields == NULL) {
        return p;
    }

    *p++ = '\n';

    for (i = 0; i < sctx->fields->nelts; i++) {
        p = ngx_sprintf(p, "%uz:", sctx->field_values[i].len);
        p = ngx_cpymem(p, sctx->field_values[i].data,
                       sctx->field_values[i].len);
    }

    return p;
}


ngx_int_t
ngx_http_vodlms_session_fields_decode(ngx_http_request_t *r,
    ngx_http_vodlms_session_conf_t *scf, ngx_http_vodlms_session_ctx_t *sctx,
    u_char *p, u_char *last)
{
    u_char                  *colon;
    ngx_int_t                n;
    ngx_uint_t               i;
    vodlms_session_field_t   f[VODLMS_SESSION_FIELDS_MAX];

    if (scf->fields == NULL) {
        return p == last ? NGX_OK : NGX_DECLINED;
    }

    if (p == last || *p++ != '\n') {
        return NGX_DECLINED;
    }

    for (i = 0; i < scf->fields->nelts; i++) {
        colon = ngx_strlchr(p, last, ':');
        if (colon == NULL) {
            return NGX_DECLINED;
        }

        n = ngx_atoi(p, colon - p);

        if (n == NGX_ERROR || n > VODLMS_SESSION_FIELD_MAX
            || n > last - colon - 1)
        {
            return NGX_DECLINED;
        }

        ngx_memcpy(f[i].value, colon + 1, n);
        f[i].len = n;
        f[i].found = (n > 0);
        p = colon + 1 + n;
    }

    if (p != last) {
        return NGX_DECLINED;
    }

    return ngx_http_vodlms_session_fields_keep(r, scf, sctx, f);
}


/* $vodlms_session_<name>: empty without a session or without the field */

ngx_int_t
ngx_http_vodlms_session_field_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t  *name = (ngx_str_t *) data;

    size_t                            plen;
    ngx_uint_t                        i;
    ngx_http_vodlms_ctx_t            *ctx;
    ngx_http_vodlms_session_ctx_t    *sctx;
    ngx_http_vodlms_session_field_t  *f;

    v->not_found = 1;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_vodlms_module);

    if (ctx == NULL) {
        return NGX_OK;
    }

    sctx = &ctx->session;

    if (sctx->state != NGX_HTTP_VODLMS_SESSION_DONE
        || sctx->result != NGX_HTTP_VODLMS_OK
        || sctx->fields == NULL)
    {
        return NGX_OK;
    }

    plen = sizeof(NGX_HTTP_VODLMS_SESSION_VAR_PREFIX) - 1;
    f = sctx->fields->elts;

    for (i = 0; i < sctx->fields->nelts; i++) {

        if (f[i].name.len != name->len - plen
            || ngx_strncmp(f[i].name.data, name->data + plen, f[i].name.len)
               != 0)
        {
            continue;
        }

        if (sctx->field_values[i].len == 0) {
            return NGX_OK;
        }

        v->len = sctx->field_values[i].len;
        v->data = sctx->field_values[i].data;
        v->valid = 1;
        v->no_cacheable = 1;
        v->not_found = 0;

        return NGX_OK;
    }

    return NGX_OK;
}
