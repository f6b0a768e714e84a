/*
 * PostgreSQL at configuration time: the arguments of a directive that names
 * a server (vodlms_pg, vodlms_pg_replica), its conninfo checked with libpq's
 * own parser, a name for the logs that holds no secret, and host names
 * resolved once into hostaddr (libpq would resolve them with a blocking
 * getaddrinfo() in every connect).  With "resolve" (and a "resolver" at
 * the http{} level), the hosts as written are kept as well, for the workers to resolve at run
 * time (ngx_vodlms_pg_names.c); the addresses found here then serve only
 * the exit path until a worker has its own.  Everything here runs in the
 * master at nginx -t or a reload, never in a worker's event loop.
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_vodlms_pg_internal.h"
#include "ngx_vodlms_backoff.h"
#include "ngx_vodlms_resolve.h"


#define NGX_VODLMS_PG_DEFAULT_POOL_SIZE  4
#define NGX_VODLMS_PG_MAX_SECRETS        32


/* what the conninfo says, as far as this file needs to know */
typedef struct {
    ngx_str_t                   host;
    ngx_str_t                   hostaddr;
    ngx_str_t                   port;
    ngx_str_t                   db;          /* dbname, or else user */
    ngx_str_t                   attrs;       /* target_session_attrs */
    ngx_uint_t                  nopts;       /* options with a value */
} ngx_vodlms_pg_conninfo_t;


static char *ngx_vodlms_pg_conf_params(ngx_conf_t *cf,
    ngx_vodlms_pg_conf_t *pcf, PQconninfoOption *opts);
static void ngx_vodlms_pg_conf_scan(ngx_vodlms_pg_conf_t *pcf,
    PQconninfoOption *opts, ngx_vodlms_pg_conninfo_t *ci);
static char *ngx_vodlms_pg_conf_name(ngx_conf_t *cf,
    ngx_vodlms_pg_conf_t *pcf, ngx_vodlms_pg_conninfo_t *ci);
static char *ngx_vodlms_pg_conf_arrays(ngx_conf_t *cf,
    ngx_vodlms_pg_conf_t *pcf, PQconninfoOption *opts,
    ngx_vodlms_pg_conninfo_t *ci);
static char *ngx_vodlms_pg_conf_attrs(ngx_conf_t *cf, ngx_str_t *attrs);
static char *ngx_vodlms_pg_conf_rotations(ngx_conf_t *cf,
    ngx_vodlms_pg_conf_t *pcf, ngx_vodlms_pg_conninfo_t *ci);
static ngx_int_t ngx_vodlms_pg_keyword(ngx_vodlms_pg_conf_t *pcf,
    const char *keyword);
static char *ngx_vodlms_pg_conf_hosts(ngx_conf_t *cf,
    ngx_vodlms_pg_conf_t *pcf, ngx_str_t *host, ngx_str_t *port,
    ngx_str_t *hostaddr);
static ngx_int_t ngx_vodlms_pg_conf_resolve(ngx_conf_t *cf,
    ngx_vodlms_pg_conf_t *pcf, ngx_str_t *host, ngx_array_t *addrs);
static char *ngx_vodlms_pg_conf_names(ngx_conf_t *cf,
    ngx_vodlms_pg_conf_t *pcf, ngx_vodlms_pg_conninfo_t *ci);
static char *ngx_vodlms_pg_conf_rt(ngx_conf_t *cf, ngx_vodlms_pg_conf_t *pcf);
static ngx_uint_t ngx_vodlms_pg_split(ngx_pool_t *pool, char *s,
    ngx_array_t *a);
static void ngx_vodlms_pg_conf_mask(ngx_str_t *conninfo, const char *msg,
    u_char *buf, size_t size);
static ngx_uint_t ngx_vodlms_pg_conf_secrets(ngx_str_t *conninfo,
    ngx_str_t *secrets, ngx_uint_t *np);
static u_char *ngx_vodlms_pg_conf_value_end(u_char *q, u_char *end,
    ngx_uint_t uri);


char *
ngx_vodlms_pg_parse(ngx_conf_t *cf, ngx_vodlms_pg_conf_t **pcfp)
{
    char                  *err, *rv;
    ngx_int_t              rc;
    ngx_str_t             *value;
    ngx_uint_t             i;
    PQconninfoOption      *opts;
    ngx_vodlms_pg_conf_t  *pcf;

    u_char  buf[NGX_VODLMS_PG_REASON_LEN];

    pcf = ngx_pcalloc(cf->pool, sizeof(ngx_vodlms_pg_conf_t));
    if (pcf == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    pcf->conninfo = value[1];
    pcf->file = cf->conf_file->file.name;
    pcf->line = cf->conf_file->line;
    pcf->pool_size = NGX_VODLMS_PG_DEFAULT_POOL_SIZE;
    pcf->connect_timeout = NGX_CONF_UNSET_MSEC;
    pcf->timeout = 1000;

    for (i = 2; i < cf->args->nelts; i++) {

        rc = ngx_vodlms_pool_param(&value[i], &pcf->pool_size,
                                   &pcf->connect_timeout, &pcf->timeout);
        if (rc == NGX_OK) {
            continue;
        }

        if (rc == NGX_ERROR) {
            goto invalid;
        }

        if (value[i].len == 7
            && ngx_strncmp(value[i].data, "resolve", 7) == 0)
        {
            pcf->resolve = 1;
            continue;
        }

        goto invalid;
    }

    /* the parser NUL-ends every argument; libpq stops at the first NUL */
    if (value[1].len == 0 || ngx_strlen(value[1].data) != value[1].len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "empty or invalid conninfo in \"%V\"",
                           &value[0]);
        return NGX_CONF_ERROR;
    }

    err = NULL;
    opts = PQconninfoParse((char *) value[1].data, &err);

    if (opts == NULL) {
        if (err == NULL) {
            return NGX_CONF_ERROR;
        }

        /* libpq quotes pieces of the conninfo: never the password */
        ngx_vodlms_pg_conf_mask(&value[1], err, buf, sizeof(buf));
        PQfreemem(err);

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid conninfo in \"%V\": %s",
                           &value[0], buf);
        return NGX_CONF_ERROR;
    }

    rv = ngx_vodlms_pg_conf_params(cf, pcf, opts);

    PQconninfoFree(opts);

    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (pcf->connect_timeout == NGX_CONF_UNSET_MSEC) {
        pcf->connect_timeout = 1000;
    }

    *pcfp = pcf;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);

    return NGX_CONF_ERROR;
}


static char *
ngx_vodlms_pg_conf_params(ngx_conf_t *cf, ngx_vodlms_pg_conf_t *pcf,
    PQconninfoOption *opts)
{
    ngx_vodlms_pg_conninfo_t  ci;

    ngx_vodlms_pg_conf_scan(pcf, opts, &ci);

    if (ngx_vodlms_pg_conf_attrs(cf, &ci.attrs) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_vodlms_pg_conf_name(cf, pcf, &ci) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (ci.host.data && ci.hostaddr.data == NULL) {
        /* before the hosts become one per address */
        if (ngx_vodlms_pg_conf_names(cf, pcf, &ci) != NGX_CONF_OK) {
            return NGX_CONF_ERROR;
        }

        if (ngx_vodlms_pg_conf_hosts(cf, pcf, &ci.host, &ci.port,
                                     &ci.hostaddr)
            != NGX_CONF_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    if (ngx_vodlms_pg_conf_arrays(cf, pcf, opts, &ci) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (pcf->lookups && ngx_vodlms_pg_conf_rt(cf, pcf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    return ngx_vodlms_pg_conf_rotations(cf, pcf, &ci);
}


ngx_int_t
ngx_vodlms_pg_init_conf(ngx_conf_t *cf, ngx_vodlms_pg_conf_t *pcf,
    const char *directive)
{
    ngx_msec_t       timeout;
    ngx_resolver_t  *resolver;

    if (pcf == NULL) {
        return NGX_OK;
    }

    timeout = 30000;
    resolver = ngx_vodlms_resolver_conf(cf, &timeout);

    if (pcf->resolve && resolver == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"resolve\" of the \"%s\" directive needs a "
                      "\"resolver\" at the http level in %V:%ui",
                      directive, &pcf->file, pcf->line);
        return NGX_ERROR;
    }

    /*
     * Run-time names only when asked for: nginx's resolver reads no
     * /etc/hosts, so a "resolver" kept for something else must not turn
     * "host=localhost" into a DNS question
     */
    if (!pcf->resolve) {
        resolver = NULL;
    }

    if (pcf->lookups == 0) {
        return NGX_OK;
    }

    if (resolver) {
        /* the workers ask it when they connect; nginx -t's answer is moot */
        pcf->resolver = resolver;
        pcf->resolver_timeout = timeout;
        return NGX_OK;
    }

    if (pcf->unresolved.len) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "%V, in the conninfo of the \"%s\" directive (without "
                      "\"resolve\" and a \"resolver\" at the http level, "
                      "names are resolved when the configuration is read) "
                      "in %V:%ui",
                      &pcf->unresolved, directive, &pcf->file, pcf->line);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The hosts as written, each with its port, for the workers to resolve at
 * run time with "resolve" (and the http{} level's resolver).  Socket directories and
 * addresses need no lookup.
 */

static char *
ngx_vodlms_pg_conf_names(ngx_conf_t *cf, ngx_vodlms_pg_conf_t *pcf,
    ngx_vodlms_pg_conninfo_t *ci)
{
    u_char                *p;
    ngx_int_t              port;
    ngx_str_t             *hosts, *ports, *item;
    ngx_uint_t             i;
    ngx_array_t            ha, pa;
    ngx_vodlms_pg_host_t  *h;

#if (NGX_HAVE_INET6)
    u_char                 a6[16];
#endif

    if (ngx_array_init(&ha, cf->pool, 4, sizeof(ngx_str_t)) != NGX_OK
        || ngx_array_init(&pa, cf->pool, 4, sizeof(ngx_str_t)) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    ngx_vodlms_pg_split(cf->pool, (char *) ci->host.data, &ha);

    if (ci->port.data) {
        ngx_vodlms_pg_split(cf->pool, (char *) ci->port.data, &pa);
    }

    hosts = ha.elts;
    ports = pa.elts;

    pcf->hosts = ngx_pcalloc(cf->pool,
                             ha.nelts * sizeof(ngx_vodlms_pg_host_t));
    if (pcf->hosts == NULL) {
        return NGX_CONF_ERROR;
    }

    pcf->nnames = ha.nelts;

    for (i = 0; i < ha.nelts; i++) {
        h = &pcf->hosts[i];

        /* copied: the conninfo options are freed soon */
        h->name.len = hosts[i].len;
        h->name.data = ngx_pnalloc(cf->pool, hosts[i].len + 1);
        if (h->name.data == NULL) {
            return NGX_CONF_ERROR;
        }
        ngx_memcpy(h->name.data, hosts[i].data, hosts[i].len);
        h->name.data[h->name.len] = '\0';

        port = 5432;

        if (pa.nelts) {
            item = &ports[pa.nelts > 1 ? i : 0];

            if (item->len) {
                port = ngx_atoi(item->data, item->len);
            }
        }

        h->port = (in_port_t) ((port > 0 && port <= 65535) ? port : 5432);

        p = h->name.data;

        h->lookup = !(h->name.len == 0 || p[0] == '/' || p[0] == '@'
                      || ngx_inet_addr(p, h->name.len) != INADDR_NONE
#if (NGX_HAVE_INET6)
                      || ngx_inet6_addr(p, h->name.len, a6) == NGX_OK
#endif
                      );

        pcf->lookups += h->lookup;

        h->label.data = ngx_pnalloc(cf->pool, h->name.len + 1 + NGX_INT_T_LEN);
        if (h->label.data == NULL) {
            return NGX_CONF_ERROR;
        }

        h->label.len = ngx_sprintf(h->label.data, "%V:%d", &h->name,
                                   (int) h->port)
                       - h->label.data;
    }

    return NGX_CONF_OK;
}


/*
 * The options for a connect with names resolved at run time: those of
 * pcf->keywords other than host, hostaddr and port, then those three,
 * whose values each connect fills in.
 */

static char *
ngx_vodlms_pg_conf_rt(ngx_conf_t *cf, ngx_vodlms_pg_conf_t *pcf)
{
    ngx_uint_t  i, k, n;

    for (n = 0; pcf->keywords[n]; n++) {
        /* void */
    }

    pcf->rt_keywords = ngx_pcalloc(cf->pool, (n + 4) * sizeof(char *));
    pcf->rt_values = ngx_pcalloc(cf->pool, (n + 4) * sizeof(char *));
    if (pcf->rt_keywords == NULL || pcf->rt_values == NULL) {
        return NGX_CONF_ERROR;
    }

    k = 0;

    for (i = 0; i < n; i++) {
        if (ngx_strcmp(pcf->keywords[i], "host") == 0
            || ngx_strcmp(pcf->keywords[i], "hostaddr") == 0
            || ngx_strcmp(pcf->keywords[i], "port") == 0)
        {
            continue;
        }

        pcf->rt_keywords[k] = pcf->keywords[i];
        pcf->rt_values[k++] = pcf->values[i];
    }

    pcf->rt_host = k;

    pcf->rt_keywords[k++] = "host";
    pcf->rt_keywords[k++] = "hostaddr";
    pcf->rt_keywords[k++] = "port";
    pcf->rt_keywords[k] = NULL;

    return NGX_CONF_OK;
}


/*
 * libpq checks target_session_attrs only when it connects, in a worker;
 * here it is checked at nginx -t, against the values libpq 15 takes.
 */

static char *
ngx_vodlms_pg_conf_attrs(ngx_conf_t *cf, ngx_str_t *attrs)
{
    ngx_uint_t  i;

    static const char  *known[] = {
        "any", "read-write", "read-only", "primary", "standby",
        "prefer-standby"
    };

    if (attrs->data == NULL) {
        return NGX_CONF_OK;
    }

    for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (ngx_strcmp(attrs->data, known[i]) == 0) {
            return NGX_CONF_OK;
        }
    }

    /* the value of this option is no secret */
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid target_session_attrs \"%V\" in the "
                       "postgres conninfo: libpq takes any, read-write, "
                       "read-only, primary, standby or prefer-standby",
                       attrs);

    return NGX_CONF_ERROR;
}


/* the options this file looks at; libpq keeps the values (opts) */

static void
ngx_vodlms_pg_conf_scan(ngx_vodlms_pg_conf_t *pcf, PQconninfoOption *opts,
    ngx_vodlms_pg_conninfo_t *ci)
{
    ngx_int_t          n;
    PQconninfoOption  *o;

    ngx_memzero(ci, sizeof(ngx_vodlms_pg_conninfo_t));

    for (o = opts; o->keyword; o++) {
        if (o->val == NULL) {
            continue;
        }

        ci->nopts++;

        if (ngx_strcmp(o->keyword, "host") == 0) {
            ci->host.data = (u_char *) o->val;
            ci->host.len = ngx_strlen(o->val);

        } else if (ngx_strcmp(o->keyword, "hostaddr") == 0) {
            ci->hostaddr.data = (u_char *) o->val;
            ci->hostaddr.len = ngx_strlen(o->val);

        } else if (ngx_strcmp(o->keyword, "port") == 0) {
            ci->port.data = (u_char *) o->val;
            ci->port.len = ngx_strlen(o->val);

        } else if (ngx_strcmp(o->keyword, "target_session_attrs") == 0) {
            ci->attrs.data = (u_char *) o->val;
            ci->attrs.len = ngx_strlen(o->val);

        } else if (ngx_strcmp(o->keyword, "dbname") == 0
                   || (ci->db.data == NULL
                       && ngx_strcmp(o->keyword, "user") == 0))
        {
            /* libpq's default database is the user's name */
            ci->db.data = (u_char *) o->val;
            ci->db.len = ngx_strlen(o->val);

        } else if (ngx_strcmp(o->keyword, "connect_timeout") == 0
                   && pcf->connect_timeout == NGX_CONF_UNSET_MSEC)
        {
            /* in seconds, at least 2, as libpq reads it */
            n = ngx_atoi((u_char *) o->val, ngx_strlen(o->val));
            if (n > 0) {
                pcf->connect_timeout = (ngx_msec_t) ngx_max(n, 2) * 1000;
            }
        }
    }
}


/* the name for logs: host:port,.../dbname, nothing else */

static char *
ngx_vodlms_pg_conf_name(ngx_conf_t *cf, ngx_vodlms_pg_conf_t *pcf,
    ngx_vodlms_pg_conninfo_t *ci)
{
    u_char       *p;
    size_t        len;
    ngx_str_t    *hosts, *ports;
    ngx_uint_t    i, k;
    ngx_array_t   ha, pa;

    if (ngx_array_init(&ha, cf->pool, 4, sizeof(ngx_str_t)) != NGX_OK
        || ngx_array_init(&pa, cf->pool, 4, sizeof(ngx_str_t)) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ci->host.data) {
        ngx_vodlms_pg_split(cf->pool, (char *) ci->host.data, &ha);

    } else if (ci->hostaddr.data) {
        ngx_vodlms_pg_split(cf->pool, (char *) ci->hostaddr.data, &ha);
    }

    if (ci->port.data) {
        ngx_vodlms_pg_split(cf->pool, (char *) ci->port.data, &pa);
    }

    if (ha.nelts == 0 && pa.nelts <= 1) {
        /* the server's default socket */
        hosts = ngx_array_push(&ha);
        if (hosts == NULL) {
            return NGX_CONF_ERROR;
        }
        ngx_str_null(hosts);
    }

    if (pa.nelts > 1 && pa.nelts != ha.nelts) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "postgres conninfo has %ui ports for %ui hosts",
                           pa.nelts, ha.nelts);
        return NGX_CONF_ERROR;
    }

    hosts = ha.elts;
    ports = pa.elts;

    len = ci->db.len + 1;
    for (i = 0; i < ha.nelts; i++) {
        len += (hosts[i].len ? hosts[i].len : sizeof("(default)") - 1)
               + 1 + 5 + 1;
    }

    p = ngx_pnalloc(cf->pool, len + 16);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    pcf->name.data = p;

    for (i = 0; i < ha.nelts; i++) {
        if (i) {
            *p++ = ',';
        }

        if (hosts[i].len) {
            p = ngx_cpymem(p, hosts[i].data, hosts[i].len);

        } else {
            p = ngx_cpymem(p, "(default)", sizeof("(default)") - 1);
        }

        *p++ = ':';

        k = (pa.nelts > 1) ? i : 0;

        if (pa.nelts && ports[k].len && ports[k].len <= 5) {
            p = ngx_cpymem(p, ports[k].data, ports[k].len);

        } else {
            p = ngx_cpymem(p, "5432", 4);
        }
    }

    *p++ = '/';

    /* a dbname that is itself a conninfo could hold a password */
    if (ci->db.len
        && ngx_strlchr(ci->db.data, ci->db.data + ci->db.len, '=') == NULL)
    {
        p = ngx_cpymem(p, ci->db.data, ci->db.len);
    }

    pcf->name.len = p - pcf->name.data;

    return NGX_CONF_OK;
}


/*
 * The arrays for PQconnectStartParams: every option as written, except
 * host, port and hostaddr, which come from ci (resolved by
 * ngx_vodlms_pg_conf_hosts()).  Copied: opts are freed soon.
 */

static char *
ngx_vodlms_pg_conf_arrays(ngx_conf_t *cf, ngx_vodlms_pg_conf_t *pcf,
    PQconninfoOption *opts, ngx_vodlms_pg_conninfo_t *ci)
{
    u_char            *p;
    size_t             len;
    ngx_uint_t         k;
    PQconninfoOption  *o;

    pcf->keywords = ngx_pcalloc(cf->pool, (ci->nopts + 2) * sizeof(char *));
    pcf->values = ngx_pcalloc(cf->pool, (ci->nopts + 2) * sizeof(char *));
    if (pcf->keywords == NULL || pcf->values == NULL) {
        return NGX_CONF_ERROR;
    }

    k = 0;

    for (o = opts; o->keyword; o++) {
        if (o->val == NULL) {
            continue;
        }

        if (ngx_strcmp(o->keyword, "hostaddr") == 0) {
            continue;
        }

        if (ngx_strcmp(o->keyword, "host") == 0) {
            p = ci->host.data;

        } else if (ngx_strcmp(o->keyword, "port") == 0) {
            p = ci->port.data;

        } else {
            p = (u_char *) o->val;
        }

        if (p == (u_char *) o->val) {
            /* not rewritten: copied, as opts are freed soon */
            len = ngx_strlen(o->val);
            p = ngx_pnalloc(cf->pool, len + 1);
            if (p == NULL) {
                return NGX_CONF_ERROR;
            }
            ngx_memcpy(p, o->val, len + 1);
        }

        len = ngx_strlen(o->keyword);
        pcf->keywords[k] = ngx_pnalloc(cf->pool, len + 1);
        if (pcf->keywords[k] == NULL) {
            return NGX_CONF_ERROR;
        }
        ngx_memcpy((char *) pcf->keywords[k], o->keyword, len + 1);

        pcf->values[k++] = (char *) p;
    }

    if (ci->hostaddr.data) {
        len = ci->hostaddr.len;
        p = ngx_pnalloc(cf->pool, len + 1);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }
        ngx_memcpy(p, ci->hostaddr.data, len);
        p[len] = '\0';

        pcf->keywords[k] = "hostaddr";
        pcf->values[k++] = (char *) p;
    }

    pcf->keywords[k] = NULL;
    pcf->values[k] = NULL;

    return NGX_CONF_OK;
}


/*
 * For a conninfo with several hosts (after resolution): each host's
 * address and port, to tell which one a timed-out connect was waiting
 * for, a label for the logs, and the values for PQconnectStartParams with
 * the host lists (host, hostaddr, and port if it is a list) starting at
 * each host in turn.  ci holds the lists as ngx_vodlms_pg_conf_arrays()
 * gave them to libpq.
 */

static char *
ngx_vodlms_pg_conf_rotations(ngx_conf_t *cf, ngx_vodlms_pg_conf_t *pcf,
    ngx_vodlms_pg_conninfo_t *ci)
{
    u_char        *p;
    size_t         len;
    ngx_int_t      key[3], port;
    ngx_str_t      v, *item, *list[3];
    ngx_uint_t     i, j, k, r, n, nkeys;
    ngx_array_t    lists[3];
    const char   **values;

    pcf->nhosts = 1;

    for (j = 0; j < 3; j++) {
        if (ngx_array_init(&lists[j], cf->pool, 4, sizeof(ngx_str_t))
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    /* 0: host, 1: hostaddr, 2: port; as NUL-ended copies */

    key[0] = ngx_vodlms_pg_keyword(pcf, "host");
    key[1] = ngx_vodlms_pg_keyword(pcf, "hostaddr");
    key[2] = ngx_vodlms_pg_keyword(pcf, "port");

    n = 0;

    for (j = 0; j < 3; j++) {
        if (key[j] < 0) {
            continue;
        }

        v.data = (u_char *) pcf->values[key[j]];
        v.len = ngx_strlen(v.data) + 1;

        p = ngx_pstrdup(cf->pool, &v);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_vodlms_pg_split(cf->pool, (char *) p, &lists[j]);

        if (lists[j].nelts > n) {
            n = lists[j].nelts;
        }
    }

    if (n <= 1) {
        return NGX_CONF_OK;
    }

    pcf->nhosts = n;

    for (j = 0; j < 3; j++) {
        list[j] = lists[j].elts;
    }

    pcf->hostaddrs = ngx_pcalloc(cf->pool, n * sizeof(ngx_str_t));
    pcf->ports = ngx_pcalloc(cf->pool, n * sizeof(ngx_uint_t));
    pcf->labels = ngx_pcalloc(cf->pool, n * sizeof(ngx_str_t));
    pcf->rotations = ngx_pcalloc(cf->pool, n * sizeof(char **));
    if (pcf->hostaddrs == NULL || pcf->ports == NULL || pcf->labels == NULL
        || pcf->rotations == NULL)
    {
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < n; i++) {
        if (lists[1].nelts == n) {
            pcf->hostaddrs[i] = list[1][i];
        }

        port = 5432;

        if (lists[2].nelts) {
            item = &list[2][lists[2].nelts == n ? i : 0];

            if (item->len) {
                port = ngx_atoi(item->data, item->len);
            }
        }

        pcf->ports[i] = (port > 0) ? (ngx_uint_t) port : 5432;

        item = (lists[0].nelts == n) ? &list[0][i] : &pcf->hostaddrs[i];

        pcf->labels[i].data = ngx_pnalloc(cf->pool,
                                          item->len + 1 + NGX_INT_T_LEN);
        if (pcf->labels[i].data == NULL) {
            return NGX_CONF_ERROR;
        }

        pcf->labels[i].len = ngx_sprintf(pcf->labels[i].data, "%V:%ui", item,
                                         pcf->ports[i])
                             - pcf->labels[i].data;
    }

    for (nkeys = 0; pcf->keywords[nkeys]; nkeys++) {
        /* void */
    }

    pcf->rotations[0] = pcf->values;

    for (r = 1; r < n; r++) {
        values = ngx_pcalloc(cf->pool, (nkeys + 1) * sizeof(char *));
        if (values == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(values, pcf->values, nkeys * sizeof(char *));

        for (j = 0; j < 3; j++) {
            if (key[j] < 0 || lists[j].nelts != n) {
                continue;
            }

            len = 0;
            for (i = 0; i < n; i++) {
                len += list[j][i].len + 1;
            }

            p = ngx_pnalloc(cf->pool, len);
            if (p == NULL) {
                return NGX_CONF_ERROR;
            }

            values[key[j]] = (char *) p;

            for (i = 0; i < n; i++) {
                k = (r + i) % n;

                if (i) {
                    *p++ = ',';
                }

                p = ngx_cpymem(p, list[j][k].data, list[j][k].len);
            }

            *p = '\0';
        }

        pcf->rotations[r] = values;
    }

    return NGX_CONF_OK;
}


/* the index of keyword in pcf->keywords, or -1 */

static ngx_int_t
ngx_vodlms_pg_keyword(ngx_vodlms_pg_conf_t *pcf, const char *keyword)
{
    ngx_int_t  i;

    for (i = 0; pcf->keywords[i]; i++) {
        if (ngx_strcmp(pcf->keywords[i], keyword) == 0) {
            return i;
        }
    }

    return -1;
}


/*
 * libpq would resolve host names in PQconnectPoll with a blocking
 * getaddrinfo().  They are resolved here, once (a DNS change needs a
 * reload, unless "resolve" has them resolved at run time), into hostaddr; a name with
 * several addresses becomes as many hosts, so that libpq still tries them
 * in turn.  host is kept for sslmode=verify-full and .pgpass.  Socket
 * paths are left alone.  A name that does not resolve leaves the lists as
 * they were and pcf->unresolved saying why: an error unless the workers
 * resolve names themselves (ngx_vodlms_pg_init_conf()).
 */

static char *
ngx_vodlms_pg_conf_hosts(ngx_conf_t *cf, ngx_vodlms_pg_conf_t *pcf,
    ngx_str_t *host, ngx_str_t *port, ngx_str_t *hostaddr)
{
    ngx_int_t     rc;
    u_char       *hp, *ap, *pp;
    size_t        hlen, alen, plen;
    ngx_str_t    *hosts, *ports, *a;
    ngx_uint_t    i, j, k, n, nports, *counts;
    ngx_array_t   ha, pa, addrs;

    if (ngx_array_init(&ha, cf->pool, 4, sizeof(ngx_str_t)) != NGX_OK
        || ngx_array_init(&pa, cf->pool, 4, sizeof(ngx_str_t)) != NGX_OK
        || ngx_array_init(&addrs, cf->pool, 4, sizeof(ngx_str_t)) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    ngx_vodlms_pg_split(cf->pool, (char *) host->data, &ha);

    nports = 0;
    if (port->data) {
        nports = ngx_vodlms_pg_split(cf->pool, (char *) port->data, &pa);
    }

    hosts = ha.elts;
    ports = pa.elts;

    counts = ngx_pcalloc(cf->pool, ha.nelts * sizeof(ngx_uint_t));
    if (counts == NULL) {
        return NGX_CONF_ERROR;
    }

    hlen = 0;
    alen = 0;
    plen = 0;

    for (i = 0; i < ha.nelts; i++) {

        n = addrs.nelts;

        rc = ngx_vodlms_pg_conf_resolve(cf, pcf, &hosts[i], &addrs);

        if (rc == NGX_DECLINED) {
            return NGX_CONF_OK;
        }

        if (rc != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        counts[i] = addrs.nelts - n;

        hlen += counts[i] * (hosts[i].len + 1);
        plen += counts[i] * ((nports > 1 ? ports[i].len : 0) + 1);
    }

    a = addrs.elts;

    for (k = 0; k < addrs.nelts; k++) {
        alen += a[k].len + 1;
    }

    /* join: host=h1,h1,h2 hostaddr=a1,a2,a3 [port=p1,p1,p2] */

    host->data = ngx_pnalloc(cf->pool, hlen + 1);
    hostaddr->data = ngx_pnalloc(cf->pool, alen + 1);
    pp = ngx_pnalloc(cf->pool, plen + 1);
    if (host->data == NULL || hostaddr->data == NULL || pp == NULL) {
        return NGX_CONF_ERROR;
    }

    hp = host->data;
    ap = hostaddr->data;

    if (nports > 1) {
        port->data = pp;
    }

    k = 0;

    for (i = 0; i < ha.nelts; i++) {
        for (j = 0; j < counts[i]; j++, k++) {
            if (k) {
                *hp++ = ',';
                *ap++ = ',';

                if (nports > 1) {
                    *pp++ = ',';
                }
            }

            hp = ngx_cpymem(hp, hosts[i].data, hosts[i].len);
            ap = ngx_cpymem(ap, a[k].data, a[k].len);

            if (nports > 1) {
                pp = ngx_cpymem(pp, ports[i].data, ports[i].len);
            }
        }
    }

    *hp = '\0';
    *ap = '\0';
    *pp = '\0';

    host->len = hp - host->data;
    hostaddr->len = ap - hostaddr->data;

    if (nports > 1) {
        port->len = pp - port->data;
    }

    return NGX_CONF_OK;
}


/*
 * One host's addresses, each once, pushed to addrs; a socket directory is
 * one empty entry (libpq's "no hostaddr for this host").  NGX_DECLINED:
 * the name did not resolve, pcf->unresolved says so.
 */

static ngx_int_t
ngx_vodlms_pg_conf_resolve(ngx_conf_t *cf, ngx_vodlms_pg_conf_t *pcf,
    ngx_str_t *host, ngx_array_t *addrs)
{
    u_char      *addr;
    size_t       len;
    ngx_str_t   *a;
    ngx_url_t    u;
    ngx_uint_t   j, k, n;

    if (host->len == 0 || host->data[0] == '/' || host->data[0] == '@') {
        a = ngx_array_push(addrs);
        if (a == NULL) {
            return NGX_ERROR;
        }
        a->data = (u_char *) "";
        a->len = 0;

        return NGX_OK;
    }

    ngx_memzero(&u, sizeof(ngx_url_t));
    u.host = *host;

    if (ngx_inet_resolve_host(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
        pcf->unresolved.data = ngx_pnalloc(cf->pool, host->len + 128);
        if (pcf->unresolved.data == NULL) {
            return NGX_ERROR;
        }

        pcf->unresolved.len = ngx_snprintf(pcf->unresolved.data,
                                           host->len + 128,
                                           "postgres host \"%V\" could not "
                                           "be resolved%s%s", host,
                                           u.err ? ": " : "",
                                           u.err ? u.err : "")
                              - pcf->unresolved.data;
        return NGX_DECLINED;
    }

    n = addrs->nelts;

    for (j = 0; j < u.naddrs; j++) {
        addr = ngx_pnalloc(cf->pool, NGX_SOCKADDR_STRLEN);
        if (addr == NULL) {
            return NGX_ERROR;
        }

        /* without a port, IPv6 addresses come without brackets */
        len = ngx_sock_ntop(u.addrs[j].sockaddr, u.addrs[j].socklen,
                            addr, NGX_SOCKADDR_STRLEN, 0);

        a = addrs->elts;

        for (k = n; k < addrs->nelts; k++) {
            if (a[k].len == len && ngx_memcmp(a[k].data, addr, len) == 0) {
                break;
            }
        }

        if (k < addrs->nelts) {
            continue;
        }

        a = ngx_array_push(addrs);
        if (a == NULL) {
            return NGX_ERROR;
        }

        a->data = addr;
        a->len = len;
    }

    return NGX_OK;
}


/* splits a NUL-ended comma-separated list, as libpq does: no trimming */

static ngx_uint_t
ngx_vodlms_pg_split(ngx_pool_t *pool, char *s, ngx_array_t *a)
{
    char       *e;
    ngx_str_t  *item;

    for ( ;; ) {
        e = strchr(s, ',');

        item = ngx_array_push(a);
        if (item == NULL) {
            return a->nelts;
        }

        item->data = (u_char *) s;
        item->len = e ? (size_t) (e - s) : ngx_strlen(s);

        if (e == NULL) {
            return a->nelts;
        }

        s = e + 1;
    }
}


/*
 * Copies libpq's parse error with every word of the password masked.  The
 * password is not known when the parse fails, so it is looked for here:
 * the words after "password=" up to the next "keyword=" (a stray word of an
 * unquoted password is what libpq would quote), a URI's userinfo after
 * ':', and URI "password=" parameters.  With too many words, every quoted
 * piece of the message is masked.
 */

static void
ngx_vodlms_pg_conf_mask(ngx_str_t *conninfo, const char *msg, u_char *buf,
    size_t size)
{
    u_char       *p, *d, *last;
    ngx_str_t     secrets[NGX_VODLMS_PG_MAX_SECRETS];
    ngx_uint_t    i, n, overflow;

    overflow = ngx_vodlms_pg_conf_secrets(conninfo, secrets, &n);

    /* copy on one line, masking */

    d = buf;
    last = buf + size - 4;
    p = (u_char *) msg;

    while (*p && d < last) {

        if (overflow && *p == '"') {
            d = ngx_cpymem(d, "\"***\"", 5);

            for (p++; *p && *p != '"'; p++) {
                /* void */
            }

            if (*p) {
                p++;
            }

            continue;
        }

        for (i = 0; i < n; i++) {
            if (ngx_strncmp(p, secrets[i].data, secrets[i].len) == 0) {
                break;
            }
        }

        if (i < n) {
            d = ngx_cpymem(d, "***", 3);
            p += secrets[i].len;
            continue;
        }

        *d++ = (*p == '\n' || *p == '\t') ? ' ' : *p;
        p++;
    }

    while (d > buf && d[-1] == ' ') {
        d--;
    }

    *d = '\0';
}


/*
 * The pieces of a conninfo that may be password: up to
 * NGX_VODLMS_PG_MAX_SECRETS of them in secrets, *np of them; returns 1
 * when there were more (the caller then masks every quoted piece).
 */

static ngx_uint_t
ngx_vodlms_pg_conf_secrets(ngx_str_t *conninfo, ngx_str_t *secrets,
    ngx_uint_t *np)
{
    u_char      *p, *q, *e, *w, *d, *s, *end;
    ngx_uint_t   n, uri;

    n = 0;
    s = conninfo->data;
    end = s + conninfo->len;

    uri = (ngx_strncmp(s, "postgresql://", 13) == 0
           || ngx_strncmp(s, "postgres://", 11) == 0);

    if (uri) {
        p = (u_char *) ngx_strstr(s, "://") + 3;

        for (q = p; q < end && *q != '@' && *q != '/' && *q != '?'; q++) {
            /* void */
        }

        if (q < end && *q == '@') {
            e = ngx_strlchr(p, q, ':');

            if (e && e + 1 < q) {
                secrets[n].data = e + 1;
                secrets[n++].len = q - e - 1;
            }
        }
    }

    for (p = s; p < end; p++) {

        if (ngx_strncmp(p, "password", 8) != 0) {
            continue;
        }

        if (p > s && p[-1] != ' ' && p[-1] != '\t' && p[-1] != '\n'
            && p[-1] != '?' && p[-1] != '&')
        {
            continue;
        }

        for (q = p + 8; q < end && (*q == ' ' || *q == '\t'); q++) {
            /* void */
        }

        if (q == end || *q != '=') {
            continue;
        }

        for (q++; q < end && (*q == ' ' || *q == '\t'); q++) {
            /* void */
        }

        e = ngx_vodlms_pg_conf_value_end(q, end, uri);

        /* each word of it, quotes aside */

        for (w = q; w < e; w = d) {

            while (w < e && (*w == ' ' || *w == '\t' || *w == '\'')) {
                w++;
            }

            for (d = w; d < e && *d != ' ' && *d != '\t' && *d != '\''; d++) {
                /* void */
            }

            if (d == w) {
                continue;
            }

            if (n == NGX_VODLMS_PG_MAX_SECRETS) {
                *np = n;
                return 1;
            }

            secrets[n].data = w;
            secrets[n++].len = d - w;
        }

        p = e - 1;
    }

    *np = n;

    return 0;
}


/* a password's value: up to '&' in a URI, else up to the next "word=" */

static u_char *
ngx_vodlms_pg_conf_value_end(u_char *q, u_char *end, ngx_uint_t uri)
{
    u_char  ch, *e, *w, *d;

    for (e = q; e < end; e++) {

        if (uri) {
            if (*e == '&') {
                break;
            }

            continue;
        }

        if (*e != ' ' && *e != '\t') {
            continue;
        }

        for (w = e; w < end && (*w == ' ' || *w == '\t'); w++) {
            /* void */
        }

        for (d = w; d < end; d++) {
            ch = (u_char) (*d | 0x20);

            if (!((ch >= 'a' && ch <= 'z') || (*d >= '0' && *d <= '9')
                  || *d == '_'))
            {
                break;
            }
        }

        while (d < end && (*d == ' ' || *d == '\t')) {
            d++;
        }

        if (d > w && d < end && *d == '=') {
            break;
        }
    }

    return e;
}
