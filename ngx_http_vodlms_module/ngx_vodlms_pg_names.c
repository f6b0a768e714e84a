/*
 * PostgreSQL host names resolved at run time, per worker and per pool, with
 * nginx's own non-blocking resolver (the "resolver" directive at the http{}
 * level): an RDS Multi-AZ, Aurora or Patroni endpoint name that moves to
 * another address on failover is followed without a reload.
 *
 * - When: before a connect (ngx_vodlms_pg_names_fresh()), for each name
 *   whose answer is no longer fresh (its TTL, or the resolver's "valid=").
 *   nginx's resolver caches answers for as long, so the names are asked
 *   again only when nginx would ask the DNS server again.  While a lookup
 *   is under way, no connect starts: the pool's queries wait in its FIFO
 *   within their own timeout=.
 * - What libpq gets: host as written (TLS verify-full and libpq's messages
 *   use it) and hostaddr the address found, so that PQconnectPoll never
 *   calls getaddrinfo().  Socket directories and numeric hosts go as they
 *   are, without a lookup.
 * - A name with several addresses: the first of nginx's answer.  nginx
 *   rotates a cached answer on every lookup, so connects spread over the
 *   addresses (an Aurora reader endpoint) as nginx's own upstreams do, and
 *   the hosts of the conninfo stay the hosts libpq tries in turn, which
 *   the pool's rotation past a silent host counts on.  (At nginx -t, with
 *   no resolver, each address becomes a host instead: that list is fixed
 *   until a reload, so it must hold them all.)
 * - A lookup that fails keeps the last known address, asked again a
 *   second later; a name never resolved leaves its host out of the connect,
 *   and with no host left the pool fails its waiting queries (503).
 * - An address that changed is logged, and the pool ends its back-off and
 *   closes its idle connections (ngx_vodlms_pg.c).
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_vodlms_pg_internal.h"
#include "ngx_vodlms_resolve.h"


typedef struct {
    ngx_vodlms_resolve_t        rs;
    ngx_vodlms_pg_names_t      *names;
    ngx_vodlms_pg_host_t       *host;
    time_t                      valid;        /* fresh up to this second */
    size_t                      len;
    u_char                      addr[NGX_SOCKADDR_STRLEN + 1];
    unsigned                    known:1;      /* addr holds an address */
    unsigned                    asking:1;
} ngx_vodlms_pg_name_t;


struct ngx_vodlms_pg_names_s {
    ngx_vodlms_pg_conf_t       *conf;
    ngx_log_t                  *log;
    ngx_vodlms_pg_name_t       *items;        /* per conf->hosts */
    ngx_uint_t                  asking;       /* lookups in flight */
    ngx_uint_t                  moved;        /* in this round */
    const char                **values;
    u_char                     *hostbuf;
    u_char                     *addrbuf;
    u_char                     *portbuf;
    ngx_vodlms_pg_names_pt      handler;
    void                       *data;
    char                        err[NGX_VODLMS_PG_REASON_LEN];
    unsigned                    inside:1;     /* in fresh(): no handler */
};


static void ngx_vodlms_pg_names_answer(ngx_vodlms_resolve_t *rs,
    ngx_addr_t *addrs, ngx_uint_t naddrs, time_t valid, const char *err);
static ngx_uint_t ngx_vodlms_pg_names_usable(ngx_vodlms_pg_names_t *nm);


ngx_vodlms_pg_names_t *
ngx_vodlms_pg_names_create(ngx_cycle_t *cycle, ngx_vodlms_pg_conf_t *conf,
    ngx_vodlms_pg_names_pt handler, void *data)
{
    size_t                  hlen;
    ngx_uint_t              i, n, k;
    ngx_vodlms_pg_name_t   *item;
    ngx_vodlms_pg_names_t  *nm;

    n = conf->nnames;

    nm = ngx_pcalloc(cycle->pool, sizeof(ngx_vodlms_pg_names_t));
    if (nm == NULL) {
        return NULL;
    }

    nm->items = ngx_pcalloc(cycle->pool, n * sizeof(ngx_vodlms_pg_name_t));
    if (nm->items == NULL) {
        return NULL;
    }

    for (k = 0; conf->rt_keywords[k]; k++) {
        /* void */
    }

    nm->values = ngx_pcalloc(cycle->pool, (k + 1) * sizeof(char *));
    if (nm->values == NULL) {
        return NULL;
    }

    ngx_memcpy(nm->values, conf->rt_values, k * sizeof(char *));

    hlen = 0;

    for (i = 0; i < n; i++) {
        hlen += conf->hosts[i].name.len + 1;
    }

    /* the lists, rebuilt per connect in place: no memory grows */
    nm->hostbuf = ngx_pnalloc(cycle->pool, hlen + 1);
    nm->addrbuf = ngx_pnalloc(cycle->pool, n * (NGX_SOCKADDR_STRLEN + 1) + 1);
    nm->portbuf = ngx_pnalloc(cycle->pool, n * 6 + 1);
    if (nm->hostbuf == NULL || nm->addrbuf == NULL || nm->portbuf == NULL) {
        return NULL;
    }

    nm->conf = conf;
    nm->log = cycle->log;
    nm->handler = handler;
    nm->data = data;

    for (i = 0; i < n; i++) {
        item = &nm->items[i];

        item->names = nm;
        item->host = &conf->hosts[i];

        item->rs.resolver = conf->resolver;
        item->rs.timeout = conf->resolver_timeout;
        item->rs.log = cycle->log;
        item->rs.handler = ngx_vodlms_pg_names_answer;
        item->rs.data = item;

        if (!item->host->lookup) {
            /* a socket directory ("") or an address: as written */
            if (item->host->name.data[0] != '/'
                && item->host->name.data[0] != '@')
            {
                item->len = ngx_min(item->host->name.len,
                                    NGX_SOCKADDR_STRLEN);
                ngx_memcpy(item->addr, item->host->name.data, item->len);
            }

            item->known = 1;
            item->valid = NGX_MAX_TIME_T_VALUE;
        }
    }

    return nm;
}


ngx_int_t
ngx_vodlms_pg_names_fresh(ngx_vodlms_pg_names_t *nm, ngx_uint_t *moved,
    const char **err)
{
    time_t                 now;
    ngx_uint_t             i;
    ngx_vodlms_pg_name_t  *item;

    *moved = 0;
    *err = nm->err;

    if (nm->asking) {
        return NGX_AGAIN;
    }

    now = ngx_time();
    nm->moved = 0;
    nm->inside = 1;

    for (i = 0; i < nm->conf->nnames; i++) {
        item = &nm->items[i];

        if (now <= item->valid) {
            continue;
        }

        item->asking = 1;
        nm->asking++;

        /* a cached answer runs ngx_vodlms_pg_names_answer() right here */
        if (ngx_vodlms_resolve(&item->rs, &item->host->name, item->host->port)
            != NGX_OK)
        {
            item->asking = 0;
            nm->asking--;
            item->valid = now + 1;

            ngx_snprintf((u_char *) nm->err, sizeof(nm->err) - 1,
                         "host \"%V\" could not be resolved: the lookup "
                         "could not start%Z", &item->host->name);
        }
    }

    nm->inside = 0;

    if (nm->asking) {
        return NGX_AGAIN;
    }

    *moved = nm->moved;

    return ngx_vodlms_pg_names_usable(nm) ? NGX_OK : NGX_ERROR;
}


static void
ngx_vodlms_pg_names_answer(ngx_vodlms_resolve_t *rs, ngx_addr_t *addrs,
    ngx_uint_t naddrs, time_t valid, const char *err)
{
    ngx_vodlms_pg_name_t   *item = rs->data;

    size_t                  len;
    ngx_vodlms_pg_names_t  *nm;

    u_char  addr[NGX_SOCKADDR_STRLEN + 1], why[NGX_VODLMS_PG_REASON_LEN];

    static ngx_str_t  empty = ngx_null_string;

    nm = item->names;

    item->asking = 0;
    nm->asking--;

    /* a TTL of 0 still serves the connect that asked */
    item->valid = ngx_max(valid, ngx_time());

    if (naddrs == 0) {
        /* asked again a second later, not by every query meanwhile */
        item->valid = ngx_time() + 1;

        /* err names the host, or is "no addresses" */
        ngx_snprintf((u_char *) why, sizeof(why) - 1, "host %s%V%s%s%Z",
                     err[0] == '"' ? "" : "\"",
                     err[0] == '"' ? &empty : &item->host->name,
                     err[0] == '"' ? "" : "\": ", err);

        if (item->known) {
            ngx_log_error(NGX_LOG_WARN, nm->log, 0,
                          "vodlms: postgres %V: %s, connecting to the last "
                          "known address %s", &nm->conf->name, why,
                          item->addr);

        } else {
            ngx_cpystrn((u_char *) nm->err, why, sizeof(nm->err));

            ngx_log_error(NGX_LOG_ERR, nm->log, 0,
                          "vodlms: postgres %V: %s, no connect to it until "
                          "it resolves", &nm->conf->name, why);
        }

    } else {
        /* without a port, IPv6 addresses come without brackets */
        len = ngx_sock_ntop(addrs[0].sockaddr, addrs[0].socklen, addr,
                            NGX_SOCKADDR_STRLEN, 0);
        addr[len] = '\0';

        if (!item->known || len != item->len
            || ngx_memcmp(addr, item->addr, len) != 0)
        {
            if (item->known) {
                ngx_log_error(NGX_LOG_NOTICE, nm->log, 0,
                              "vodlms: postgres %V: host \"%V\" moved from "
                              "%s to %s", &nm->conf->name, &item->host->name,
                              item->addr, addr);

            } else {
                ngx_log_debug3(NGX_LOG_DEBUG_EVENT, nm->log, 0,
                               "vodlms pg: resolved, %V: host \"%V\" is %s",
                               &nm->conf->name, &item->host->name, addr);
            }

            ngx_memcpy(item->addr, addr, len + 1);
            item->len = len;
            item->known = 1;
            nm->moved = 1;
        }
    }

    if (nm->asking || nm->inside) {
        return;
    }

    nm->handler(nm->data, nm->moved,
                ngx_vodlms_pg_names_usable(nm) ? NULL : nm->err);
}


static ngx_uint_t
ngx_vodlms_pg_names_usable(ngx_vodlms_pg_names_t *nm)
{
    ngx_uint_t  i;

    for (i = 0; i < nm->conf->nnames; i++) {
        if (nm->items[i].known) {
            return 1;
        }
    }

    return 0;
}


const char **
ngx_vodlms_pg_names_values(ngx_vodlms_pg_names_t *nm, ngx_uint_t start)
{
    u_char                *hp, *ap, *pp;
    ngx_uint_t             i, k, n, first;
    ngx_vodlms_pg_name_t  *item;

    n = nm->conf->nnames;

    hp = nm->hostbuf;
    ap = nm->addrbuf;
    pp = nm->portbuf;
    first = 1;

    for (k = 0; k < n; k++) {
        item = &nm->items[(start + k) % n];

        /* a name never resolved is left out: libpq would look it up */
        if (!item->known) {
            continue;
        }

        if (!first) {
            *hp++ = ',';
            *ap++ = ',';
            *pp++ = ',';
        }

        first = 0;

        hp = ngx_cpymem(hp, item->host->name.data, item->host->name.len);
        ap = ngx_cpymem(ap, item->addr, item->len);
        pp = ngx_sprintf(pp, "%d", (int) item->host->port);
    }

    *hp = '\0';
    *ap = '\0';
    *pp = '\0';

    i = nm->conf->rt_host;

    nm->values[i] = (char *) nm->hostbuf;
    nm->values[i + 1] = (char *) nm->addrbuf;
    nm->values[i + 2] = (char *) nm->portbuf;

    /* the worker's own copy of the configuration: for its exit path */
    nm->conf->live_values = nm->values;

    return nm->values;
}


ngx_int_t
ngx_vodlms_pg_names_find(ngx_vodlms_pg_names_t *nm, const char *addr,
    ngx_uint_t port)
{
    size_t                 len;
    ngx_uint_t             i;
    ngx_vodlms_pg_name_t  *item;

    len = addr ? ngx_strlen(addr) : 0;

    for (i = 0; i < nm->conf->nnames; i++) {
        item = &nm->items[i];

        if (item->known && item->len == len
            && ngx_strncmp(item->addr, addr, len) == 0
            && item->host->port == port)
        {
            return i;
        }
    }

    return -1;
}


void
ngx_vodlms_pg_names_cancel(ngx_vodlms_pg_names_t *nm)
{
    ngx_uint_t  i;

    for (i = 0; i < nm->conf->nnames; i++) {
        if (nm->items[i].asking) {
            ngx_vodlms_resolve_cancel(&nm->items[i].rs);
            nm->items[i].asking = 0;
        }
    }

    nm->asking = 0;
}
