/*
 * PostgreSQL host names resolved at run time, per worker and per pool, with
 * nginx's own non-blocking resolver (the "resolver" directive at the http{}
 * level): an RDS Multi-AZ, Aurora or Patroni endpoint name that moves to
 * another address on failover is followed without a reload.
 *
 * - When: before a connect (ngx_vodlms_pg_names_fresh()), for each name
 *   whose answer is no longer fresh (its TTL, or the resolver's "valid=").
 *   nginx's resolver caches answers for as long, so the names are asked
 *   again only when nginx would ask the DNS server again.  A name never
 *   resolved holds the connect: the pool's queries wait in its FIFO within
 *   their own timeout=.  A name with a known address does not: the
 *   connect goes to the last known addresses at once while the lookup runs
 *   (stale while refreshing), so a slow or dead DNS server costs no
 *   request; a changed answer then goes through the pool's "moved".
 * - What libpq gets: host as written (TLS verify-full and libpq's messages
 *   use it) and hostaddr the address found, so that PQconnectPoll never
 *   calls getaddrinfo().  Socket directories and numeric hosts go as they
 *   are, without a lookup.
 * - A name with several addresses: every one (up to
 *   NGX_VODLMS_RESOLVE_MAX_ADDRS), each its own host of the conninfo with
 *   the name repeated, as at nginx -t.  libpq tries them in turn, so a
 *   dead first address costs one refused connect, not the request; a
 *   silent one is rotated past as any silent host (ngx_vodlms_pg.c).
 *   Connections go to the first address that answers: this is failover,
 *   not load balancing.  nginx may return the addresses in another order
 *   on the next lookup; only a change of the set counts as a move.
 * - A lookup that fails keeps the last known addresses, asked again a
 *   second later; a name never resolved leaves its host out of the connect,
 *   and with no host left the pool fails its waiting queries (503).
 * - A set of addresses that changed is logged, and the pool ends its
 *   back-off and closes its idle connections (ngx_vodlms_pg.c).
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
    ngx_uint_t                  naddrs;
    size_t                      lens[NGX_VODLMS_RESOLVE_MAX_ADDRS];
    u_char                      addrs[NGX_VODLMS_RESOLVE_MAX_ADDRS]
                                     [NGX_SOCKADDR_STRLEN + 1];
    unsigned                    known:1;      /* addrs hold addresses */
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
static ngx_uint_t ngx_vodlms_pg_names_has(ngx_vodlms_pg_name_t *item,
    ngx_addr_t *addr);
static u_char *ngx_vodlms_pg_names_list(ngx_vodlms_pg_name_t *item,
    u_char *buf, u_char *last);
static ngx_vodlms_pg_name_t *ngx_vodlms_pg_names_at(ngx_vodlms_pg_names_t *nm,
    ngx_uint_t slot, ngx_uint_t *addr);


ngx_vodlms_pg_names_t *
ngx_vodlms_pg_names_create(ngx_cycle_t *cycle, ngx_vodlms_pg_conf_t *conf,
    ngx_vodlms_pg_names_pt handler, void *data)
{
    size_t                  hlen;
    ngx_uint_t              i, n, k, m;
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
    m = NGX_VODLMS_RESOLVE_MAX_ADDRS;
    nm->hostbuf = ngx_pnalloc(cycle->pool, m * hlen + 1);
    nm->addrbuf = ngx_pnalloc(cycle->pool,
                              m * n * (NGX_SOCKADDR_STRLEN + 1) + 1);
    nm->portbuf = ngx_pnalloc(cycle->pool, m * n * 6 + 1);
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
                item->lens[0] = ngx_min(item->host->name.len,
                                        NGX_SOCKADDR_STRLEN);
                ngx_memcpy(item->addrs[0], item->host->name.data,
                           item->lens[0]);
            }

            item->naddrs = 1;
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
    ngx_uint_t             i, waits;
    ngx_vodlms_pg_name_t  *item;

    *moved = 0;
    *err = nm->err;

    now = ngx_time();
    nm->inside = 1;

    for (i = 0; i < nm->conf->nnames; i++) {
        item = &nm->items[i];

        if (item->asking || now <= item->valid) {
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

    /* only a name never resolved holds the connect; the others are stale */
    waits = 0;

    for (i = 0; i < nm->conf->nnames; i++) {
        if (nm->items[i].asking && !nm->items[i].known) {
            waits = 1;
        }
    }

    if (nm->asking == 0) {
        /* the round ended in here: no handler call follows */
        *moved = nm->moved;
        nm->moved = 0;

    } else if (!waits) {
        ngx_log_debug2(NGX_LOG_DEBUG_EVENT, nm->log, 0,
                       "vodlms pg: resolve, %V: %ui lookups under way, "
                       "connecting to the last known addresses",
                       &nm->conf->name, nm->asking);
    }

    if (waits) {
        return NGX_AGAIN;
    }

    return ngx_vodlms_pg_names_usable(nm) ? NGX_OK : NGX_ERROR;
}


static void
ngx_vodlms_pg_names_answer(ngx_vodlms_resolve_t *rs, ngx_addr_t *addrs,
    ngx_uint_t naddrs, time_t valid, const char *err)
{
    ngx_vodlms_pg_name_t   *item = rs->data;

    u_char                 *p, *last;
    ngx_uint_t              i, moved;
    ngx_vodlms_pg_names_t  *nm;

    u_char  why[NGX_VODLMS_PG_REASON_LEN];
    u_char  was[NGX_VODLMS_RESOLVE_MAX_ADDRS * (NGX_SOCKADDR_STRLEN + 1)];
    u_char  now[NGX_VODLMS_RESOLVE_MAX_ADDRS * (NGX_SOCKADDR_STRLEN + 1)];

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
                          ngx_vodlms_pg_names_list(item, was,
                                                   was + sizeof(was) - 1));

        } else {
            ngx_cpystrn((u_char *) nm->err, why, sizeof(nm->err));

            ngx_log_error(NGX_LOG_ERR, nm->log, 0,
                          "vodlms: postgres %V: %s, no connect to it until "
                          "it resolves", &nm->conf->name, why);
        }

    } else {
        naddrs = ngx_min(naddrs, NGX_VODLMS_RESOLVE_MAX_ADDRS);

        /* the same set in another order (nginx rotates answers): no move */
        moved = !item->known || naddrs != item->naddrs;

        for (i = 0; !moved && i < naddrs; i++) {
            moved = !ngx_vodlms_pg_names_has(item, &addrs[i]);
        }

        if (moved && item->known) {
            (void) ngx_vodlms_pg_names_list(item, was, was + sizeof(was) - 1);
        }

        /* the order of this answer: the next connects try them so */
        for (i = 0; i < naddrs; i++) {
            /* without a port, IPv6 addresses come without brackets */
            item->lens[i] = ngx_sock_ntop(addrs[i].sockaddr, addrs[i].socklen,
                                          item->addrs[i], NGX_SOCKADDR_STRLEN,
                                          0);
            item->addrs[i][item->lens[i]] = '\0';
        }

        item->naddrs = naddrs;

        if (moved) {
            last = now + sizeof(now) - 1;
            p = ngx_vodlms_pg_names_list(item, now, last);

            if (item->known) {
                ngx_log_error(NGX_LOG_NOTICE, nm->log, 0,
                              "vodlms: postgres %V: host \"%V\" moved from "
                              "%s to %s", &nm->conf->name, &item->host->name,
                              was, p);

            } else {
                ngx_log_debug3(NGX_LOG_DEBUG_EVENT, nm->log, 0,
                               "vodlms pg: resolved, %V: host \"%V\" is %s",
                               &nm->conf->name, &item->host->name, p);
            }

            item->known = 1;
            nm->moved = 1;
        }
    }

    if (nm->asking || nm->inside) {
        return;
    }

    moved = nm->moved;
    nm->moved = 0;

    nm->handler(nm->data, moved,
                ngx_vodlms_pg_names_usable(nm) ? NULL : nm->err);
}


/* is addr one of the item's addresses? */

static ngx_uint_t
ngx_vodlms_pg_names_has(ngx_vodlms_pg_name_t *item, ngx_addr_t *addr)
{
    size_t      len;
    ngx_uint_t  i;
    u_char      text[NGX_SOCKADDR_STRLEN + 1];

    len = ngx_sock_ntop(addr->sockaddr, addr->socklen, text,
                        NGX_SOCKADDR_STRLEN, 0);

    for (i = 0; i < item->naddrs; i++) {
        if (item->lens[i] == len
            && ngx_memcmp(item->addrs[i], text, len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/* the item's addresses as "a1,a2", NUL-ended, for a log line */

static u_char *
ngx_vodlms_pg_names_list(ngx_vodlms_pg_name_t *item, u_char *buf,
    u_char *last)
{
    u_char      *p;
    ngx_uint_t   i;

    p = buf;

    for (i = 0; i < item->naddrs; i++) {
        p = ngx_slprintf(p, last, "%s%*s", i ? "," : "", item->lens[i],
                         item->addrs[i]);
    }

    *p = '\0';

    return buf;
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


/*
 * The hosts of a connect are slots: every known address of every name, in
 * the order of the conninfo, each name's addresses in the order of its
 * last answer.  The pool's rotation counts in slots.
 */

ngx_uint_t
ngx_vodlms_pg_names_slots(ngx_vodlms_pg_names_t *nm)
{
    ngx_uint_t  i, n;

    n = 0;

    for (i = 0; i < nm->conf->nnames; i++) {
        if (nm->items[i].known) {
            n += nm->items[i].naddrs;
        }
    }

    return n;
}


static ngx_vodlms_pg_name_t *
ngx_vodlms_pg_names_at(ngx_vodlms_pg_names_t *nm, ngx_uint_t slot,
    ngx_uint_t *addr)
{
    ngx_uint_t             i;
    ngx_vodlms_pg_name_t  *item;

    for (i = 0; i < nm->conf->nnames; i++) {
        item = &nm->items[i];

        if (!item->known) {
            continue;
        }

        if (slot < item->naddrs) {
            *addr = slot;
            return item;
        }

        slot -= item->naddrs;
    }

    return NULL;
}


const char **
ngx_vodlms_pg_names_values(ngx_vodlms_pg_names_t *nm, ngx_uint_t start)
{
    u_char                *hp, *ap, *pp;
    ngx_uint_t             i, j, k, n;
    ngx_vodlms_pg_name_t  *item;

    n = ngx_vodlms_pg_names_slots(nm);

    hp = nm->hostbuf;
    ap = nm->addrbuf;
    pp = nm->portbuf;

    /* a name never resolved is left out: libpq would look it up */
    for (k = 0; k < n; k++) {
        item = ngx_vodlms_pg_names_at(nm, (start + k) % n, &j);

        if (k) {
            *hp++ = ',';
            *ap++ = ',';
            *pp++ = ',';
        }

        hp = ngx_cpymem(hp, item->host->name.data, item->host->name.len);
        ap = ngx_cpymem(ap, item->addrs[j], item->lens[j]);
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
    ngx_uint_t             i, j, slot;
    ngx_vodlms_pg_name_t  *item;

    len = addr ? ngx_strlen(addr) : 0;
    slot = 0;

    for (i = 0; i < nm->conf->nnames; i++) {
        item = &nm->items[i];

        if (!item->known) {
            continue;
        }

        for (j = 0; j < item->naddrs; j++, slot++) {
            if (item->lens[j] == len
                && ngx_strncmp(item->addrs[j], addr, len) == 0
                && item->host->port == port)
            {
                return slot;
            }
        }
    }

    return -1;
}


u_char *
ngx_vodlms_pg_names_label(ngx_vodlms_pg_names_t *nm, ngx_uint_t slot,
    u_char *buf, u_char *last)
{
    u_char                *p;
    ngx_uint_t             j;
    ngx_vodlms_pg_name_t  *item;

    item = ngx_vodlms_pg_names_at(nm, slot, &j);

    if (item == NULL) {
        p = ngx_slprintf(buf, last, "?");

    } else if (item->host->lookup) {
        p = ngx_slprintf(buf, last, "%V (%*s)", &item->host->label,
                         item->lens[j], item->addrs[j]);

    } else {
        p = ngx_slprintf(buf, last, "%V", &item->host->label);
    }

    *p = '\0';

    return buf;
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
