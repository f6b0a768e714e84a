/*
 * Configuration-time helpers every directive file shares: the enum setter
 * whose message names the choices, the "zone [valid=] [invalid=] | off"
 * parameters every answer cache takes, merge-time errors that point at the
 * block that failed, small files (keys) read whole, CloudFront and edge
 * keys, and the parameter count of an SQL statement.  Nothing here runs
 * after the configuration is read.
 */

#include "ngx_http_vodlms_module.h"
#include "vodlms_cloudfront.h"


/* a signature cache's "not configured": the automatic zone, if it signs */
ngx_shm_zone_t  ngx_http_vodlms_cache_auto;


/* ngx_conf_set_enum_slot, but the message names the directive and choices */

char *
ngx_http_vodlms_conf_set_enum(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    u_char           *last, *q;
    ngx_str_t        *value;
    ngx_uint_t       *np, i;
    ngx_conf_enum_t  *e;

    u_char  choices[128];

    np = (ngx_uint_t *) (p + cmd->offset);

    if (*np != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    e = cmd->post;

    for (i = 0; e[i].name.len != 0; i++) {
        if (e[i].name.len == value[1].len
            && ngx_strcasecmp(e[i].name.data, value[1].data) == 0)
        {
            *np = e[i].value;
            return NGX_CONF_OK;
        }
    }

    q = choices;
    last = choices + sizeof(choices);

    for (i = 0; e[i].name.len != 0; i++) {
        q = ngx_slprintf(q, last, "%s\"%V\"", i ? ", " : "", &e[i].name);
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"%V\" directive, "
                       "expected one of %*s", &value[1], &cmd->name,
                       q - choices, choices);

    return NGX_CONF_ERROR;
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
 * The zone the signature caches use when the configuration names none.
 * Signatures and verdicts are cached by the exact policy bytes and key, so
 * caching them is always safe, and an RSA signature costs ~20x a cached
 * answer: the fast set-up is the one that needs no line.  4m holds about
 * 8,000 RSA-2048 signatures.
 */
ngx_shm_zone_t *
ngx_http_vodlms_auto_sig_cache(ngx_conf_t *cf)
{
    ngx_str_t                     name;
    ngx_http_vodlms_main_conf_t  *vmcf;

    vmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_vodlms_module);

    if (vmcf->auto_sig_cache == NULL) {
        ngx_str_set(&name, NGX_HTTP_VODLMS_SIG_ZONE_NAME);

        vmcf->auto_sig_cache = ngx_vodlms_shm_cache_add(cf, &name,
                                           NGX_HTTP_VODLMS_SIG_ZONE_SIZE,
                                           NGX_HTTP_VODLMS_SIG_ZONE_SIZE / 8);
    }

    return vmcf->auto_sig_cache;
}
