/*
 * Configuration time of the Redis client: vodlms_redis and
 * vodlms_redis_sentinel, and what is settled once the http{} block is read
 * (names resolved here, or, with "resolve", left to nginx's resolver at
 * run time).
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_vodlms_redis_internal.h"


#define NGX_VODLMS_REDIS_SENTINEL_PORT  26379


static char *ngx_vodlms_redis_parse_server(ngx_conf_t *cf, ngx_str_t *value,
    in_port_t default_port, ngx_vodlms_redis_server_t *server,
    ngx_str_t *unix_path);
static ngx_int_t ngx_vodlms_redis_resolve_now(ngx_conf_t *cf,
    ngx_vodlms_redis_server_t *server, in_port_t default_port,
    const char *directive, ngx_str_t *file, ngx_uint_t line);


/* vodlms_redis address|sentinel:NAME [resolve] [parameters] */

char *
ngx_vodlms_redis_parse(ngx_conf_t *cf, ngx_vodlms_redis_conf_t **rcfp)
{
    char                     *rv;
    ngx_int_t                 n, rc;
    ngx_str_t                *value;
    ngx_uint_t                i;
    ngx_vodlms_redis_conf_t  *rcf;

    rcf = ngx_pcalloc(cf->pool, sizeof(ngx_vodlms_redis_conf_t));
    if (rcf == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    rcf->name = value[1];
    rcf->pool_size = 16;
    rcf->connect_timeout = 1000;
    rcf->timeout = 1000;
    rcf->file = cf->conf_file->file.name;
    rcf->line = cf->conf_file->line;

    if (value[1].len > 9 && ngx_strncmp(value[1].data, "sentinel:", 9) == 0) {
        rcf->mode = NGX_VODLMS_REDIS_SENTINEL;
        rcf->master_name.data = value[1].data + 9;
        rcf->master_name.len = value[1].len - 9;

    } else {
        rv = ngx_vodlms_redis_parse_server(cf, &value[1],
                                           NGX_VODLMS_REDIS_DEFAULT_PORT,
                                           &rcf->server, &rcf->unix_path);
        if (rv != NGX_CONF_OK) {
            return rv;
        }

        /* a name: at the end of the http{} block, or at run time */
        rcf->mode = NGX_VODLMS_REDIS_FIXED;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (value[i].len == 7
            && ngx_strncmp(value[i].data, "resolve", 7) == 0)
        {
            rcf->resolve = 1;
            continue;
        }

        if (ngx_strncmp(value[i].data, "db=", 3) == 0) {
            n = ngx_atoi(value[i].data + 3, value[i].len - 3);
            if (n == NGX_ERROR || n > 1024) {
                goto invalid;
            }
            rcf->db = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "user=", 5) == 0) {
            rcf->user.data = value[i].data + 5;
            rcf->user.len = value[i].len - 5;
            if (rcf->user.len == 0) {
                goto invalid;
            }
            continue;
        }

        if (ngx_strncmp(value[i].data, "password=", 9) == 0) {
            rcf->password.data = value[i].data + 9;
            rcf->password.len = value[i].len - 9;
            if (rcf->password.len == 0) {
                goto invalid;
            }
            continue;
        }

        rc = ngx_vodlms_pool_param(&value[i], &rcf->pool_size,
                                   &rcf->connect_timeout, &rcf->timeout);
        if (rc == NGX_OK) {
            continue;
        }

        if (rc == NGX_ERROR) {
            goto invalid;
        }


        goto invalid;
    }

    if (rcf->user.len && rcf->password.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "redis \"user=\" needs \"password=\" as well");
        return NGX_CONF_ERROR;
    }

    /* only a name is resolved at run time (as nginx's "server ... resolve") */
    if (rcf->resolve && rcf->mode == NGX_VODLMS_REDIS_FIXED
        && rcf->server.addr.sockaddr == NULL)
    {
        rcf->mode = NGX_VODLMS_REDIS_RESOLVE;
    }

    *rcfp = rcf;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);

    return NGX_CONF_ERROR;
}


/* vodlms_redis_sentinel address ... [resolve] [user=name] [password=secret] */

char *
ngx_vodlms_redis_sentinel_parse(ngx_conf_t *cf,
    ngx_vodlms_redis_sentinels_t **scfp)
{
    char                          *rv;
    ngx_str_t                     *value, unix_path;
    ngx_uint_t                     i;
    ngx_vodlms_redis_server_t     *server;
    ngx_vodlms_redis_sentinels_t  *scf;

    scf = ngx_pcalloc(cf->pool, sizeof(ngx_vodlms_redis_sentinels_t));
    if (scf == NULL) {
        return NGX_CONF_ERROR;
    }

    if (ngx_array_init(&scf->servers, cf->pool, 3,
                       sizeof(ngx_vodlms_redis_server_t))
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    scf->file = cf->conf_file->file.name;
    scf->line = cf->conf_file->line;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (value[i].len == 7
            && ngx_strncmp(value[i].data, "resolve", 7) == 0)
        {
            scf->resolve = 1;
            continue;
        }

        if (ngx_strncmp(value[i].data, "user=", 5) == 0) {
            scf->user.data = value[i].data + 5;
            scf->user.len = value[i].len - 5;
            if (scf->user.len == 0) {
                goto invalid;
            }
            continue;
        }

        if (ngx_strncmp(value[i].data, "password=", 9) == 0) {
            scf->password.data = value[i].data + 9;
            scf->password.len = value[i].len - 9;
            if (scf->password.len == 0) {
                goto invalid;
            }
            continue;
        }

        if (ngx_strlchr(value[i].data, value[i].data + value[i].len, '=')) {
            goto invalid;
        }

        server = ngx_array_push(&scf->servers);
        if (server == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_str_null(&unix_path);

        rv = ngx_vodlms_redis_parse_server(cf, &value[i],
                                           NGX_VODLMS_REDIS_SENTINEL_PORT,
                                           server, &unix_path);
        if (rv != NGX_CONF_OK) {
            return rv;
        }

        if (unix_path.len) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "sentinel address \"%V\" must be host[:port]",
                               &value[i]);
            return NGX_CONF_ERROR;
        }
    }

    if (scf->servers.nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"vodlms_redis_sentinel\" names no sentinel");
        return NGX_CONF_ERROR;
    }

    if (scf->user.len && scf->password.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "sentinel \"user=\" needs \"password=\" as well");
        return NGX_CONF_ERROR;
    }

    *scfp = scf;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);

    return NGX_CONF_ERROR;
}


/*
 * host[:port] or unix:path.  A numeric address (or unix:) is kept in
 * server->addr; a name is left for later (addr.sockaddr NULL).
 */

static char *
ngx_vodlms_redis_parse_server(ngx_conf_t *cf, ngx_str_t *value,
    in_port_t default_port, ngx_vodlms_redis_server_t *server,
    ngx_str_t *unix_path)
{
    size_t               len;
    ngx_url_t            u;
    struct sockaddr_un  *saun;

    ngx_memzero(server, sizeof(ngx_vodlms_redis_server_t));
    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url = *value;
    u.default_port = default_port;
    u.no_resolve = 1;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid redis address \"%V\"%s%s",
                           value, u.err ? ": " : "", u.err ? u.err : "");
        return NGX_CONF_ERROR;
    }

    server->name = *value;
    server->port = u.port;
    server->host = u.host;

    /* ngx_parse_url keeps IPv6 brackets in the host */
    if (server->host.len > 2 && server->host.data[0] == '[') {
        server->host.data++;
        server->host.len -= 2;
    }

    if (u.naddrs) {
        server->addr = u.addrs[0];
    }

    if (u.family == AF_UNIX) {
        saun = (struct sockaddr_un *) u.addrs[0].sockaddr;
        len = ngx_strlen(saun->sun_path);
        unix_path->data = ngx_pnalloc(cf->pool, len + 1);
        if (unix_path->data == NULL) {
            return NGX_CONF_ERROR;
        }
        ngx_memcpy(unix_path->data, saun->sun_path, len + 1);
        unix_path->len = len;
    }

    return NGX_CONF_OK;
}


ngx_int_t
ngx_vodlms_redis_init_conf(ngx_conf_t *cf, ngx_vodlms_redis_conf_t *rcf,
    ngx_vodlms_redis_sentinels_t *scf)
{
    u_char                     *p;
    size_t                      len;
    ngx_uint_t                  i;
    ngx_msec_t                  timeout;
    ngx_resolver_t             *resolver;
    ngx_vodlms_redis_server_t  *server;

    if (rcf == NULL) {
        if (scf) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"vodlms_redis_sentinel\" needs "
                          "\"vodlms_redis sentinel:<master name>\" in %V:%ui",
                          &scf->file, scf->line);
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (rcf->mode == NGX_VODLMS_REDIS_SENTINEL && scf == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"vodlms_redis %V\" needs \"vodlms_redis_sentinel\" "
                      "with the sentinels' addresses in %V:%ui",
                      &rcf->name, &rcf->file, rcf->line);
        return NGX_ERROR;
    }

    if (rcf->mode != NGX_VODLMS_REDIS_SENTINEL && scf) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"vodlms_redis_sentinel\" is set, so \"vodlms_redis\" "
                      "names the master as sentinel:<master name>, not "
                      "\"%V\" in %V:%ui", &rcf->name, &rcf->file, rcf->line);
        return NGX_ERROR;
    }

    rcf->sentinels = scf;

    timeout = 30000;
    resolver = ngx_vodlms_resolver_conf(cf, &timeout);

    /* (also for the host names sentinels may announce: resolve-hostnames) */
    rcf->resolver = resolver;
    rcf->resolver_timeout = timeout;

    if (rcf->resolve && resolver == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"vodlms_redis %V ... resolve\" needs a \"resolver\" "
                      "at the http level (or drop \"resolve\" to resolve "
                      "the name once, at load time) in %V:%ui",
                      &rcf->name, &rcf->file, rcf->line);
        return NGX_ERROR;
    }

    if (scf && scf->resolve && resolver == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"vodlms_redis_sentinel ... resolve\" needs a "
                      "\"resolver\" at the http level (or drop \"resolve\" "
                      "to resolve the names once, at load time) in %V:%ui",
                      &scf->file, scf->line);
        return NGX_ERROR;
    }

    /*
     * Without "resolve", names are resolved here, once, as nginx does
     * (/etc/hosts included; hiredis would block a worker).  nginx's
     * resolver only asks DNS servers: a site's "resolver" for something
     * else must not change what "localhost" means here.
     */

    if (rcf->mode == NGX_VODLMS_REDIS_FIXED && rcf->unix_path.len == 0
        && rcf->server.addr.sockaddr == NULL)
    {
        if (ngx_vodlms_redis_resolve_now(cf, &rcf->server,
                                         NGX_VODLMS_REDIS_DEFAULT_PORT,
                                         "vodlms_redis", &rcf->file,
                                         rcf->line)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (scf && !scf->resolve) {
        server = scf->servers.elts;

        for (i = 0; i < scf->servers.nelts; i++) {
            if (server[i].addr.sockaddr == NULL
                && ngx_vodlms_redis_resolve_now(cf, &server[i],
                                        NGX_VODLMS_REDIS_SENTINEL_PORT,
                                        "vodlms_redis_sentinel", &scf->file,
                                        scf->line)
                   != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    if (rcf->mode == NGX_VODLMS_REDIS_FIXED && rcf->unix_path.len == 0) {
        p = ngx_pnalloc(cf->pool, NGX_SOCKADDR_STRLEN + 1);
        if (p == NULL) {
            return NGX_ERROR;
        }

        len = ngx_sock_ntop(rcf->server.addr.sockaddr,
                            rcf->server.addr.socklen, p,
                            NGX_SOCKADDR_STRLEN, 0);
        p[len] = '\0';

        rcf->host.data = p;
        rcf->host.len = len;
        rcf->port = rcf->server.port;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_vodlms_redis_resolve_now(ngx_conf_t *cf,
    ngx_vodlms_redis_server_t *server, in_port_t default_port,
    const char *directive, ngx_str_t *file, ngx_uint_t line)
{
    ngx_url_t  u;

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url = server->name;
    u.default_port = default_port;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "%s in \"%V\" of the \"%s\" directive (without "
                      "\"resolve\", names are resolved when the "
                      "configuration is read) in %V:%ui",
                      u.err ? u.err : "host not found", &server->name,
                      directive, file, line);
        return NGX_ERROR;
    }

    server->addr = u.addrs[0];

    return NGX_OK;
}
