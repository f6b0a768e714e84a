/*
 * What the three parts of the PostgreSQL client share, and nothing else:
 *
 *   ngx_vodlms_pg_conf.c   configuration time: the directive's arguments,
 *                          conninfo checks, host names resolved once
 *   ngx_vodlms_pg.c        the event-driven per-worker pool (never blocks)
 *   ngx_vodlms_pg_names.c  its host names, resolved at run time
 *   ngx_vodlms_pg_exit.c   the blocking statement of a worker on its way out
 *
 * Not for use outside these files: the interface is ngx_vodlms_pg.h.
 */

#ifndef NGX_VODLMS_PG_INTERNAL_H
#define NGX_VODLMS_PG_INTERNAL_H

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_vodlms_pg.h"


/* the longest message kept for a log line or a caller's reason */
#define NGX_VODLMS_PG_REASON_LEN  256


/*
 * libpq's (multi-line) message as one log line, without hints or repeats;
 * copies up to last and returns the end (not NUL-ended)
 */
u_char *ngx_vodlms_pg_cpymsg(u_char *p, u_char *last, const char *msg);

/* an error result as "ERROR 42P01: relation "x" does not exist" */
u_char *ngx_vodlms_pg_cpyerror(u_char *p, u_char *last, PGresult *res);

/* is the error the statement's own fault (bad SQL, types, constraints)? */
ngx_uint_t ngx_vodlms_pg_refusal(PGresult *res);

/* "ok", "error", "timeout", "down", "refused": for debug lines */
const char *ngx_vodlms_pg_status_name(ngx_vodlms_pg_status_e status);


/*
 * A pool's host names resolved at run time, with nginx's resolver
 * (conf->resolver), per worker: see ngx_vodlms_pg_names.c.
 */
typedef struct ngx_vodlms_pg_names_s  ngx_vodlms_pg_names_t;

/*
 * The end of a round of lookups that did not end inside
 * ngx_vodlms_pg_names_fresh(): moved, an address changed; err, NULL or
 * why no host has an address (it names the host).
 */
typedef void (*ngx_vodlms_pg_names_pt)(void *data, ngx_uint_t moved,
    const char *err);

ngx_vodlms_pg_names_t *ngx_vodlms_pg_names_create(ngx_cycle_t *cycle,
    ngx_vodlms_pg_conf_t *conf, ngx_vodlms_pg_names_pt handler, void *data);

/*
 * Before a connect: NGX_OK, the connect may start with the addresses
 * known (fresh, or the last known ones while a lookup refreshes them, or
 * after asking again failed); NGX_AGAIN, a name never resolved is being
 * looked up and the handler follows; NGX_ERROR, no host has an address
 * (*err says why).  *moved: a set of addresses changed in a round that
 * ended here.  The handler also follows lookups that refresh stale names
 * under way when NGX_OK is returned.
 */
ngx_int_t ngx_vodlms_pg_names_fresh(ngx_vodlms_pg_names_t *nm,
    ngx_uint_t *moved, const char **err);

/*
 * The hosts of a connect are slots, one per known address of each name
 * (a name with several addresses is repeated): how many there are now.
 */
ngx_uint_t ngx_vodlms_pg_names_slots(ngx_vodlms_pg_names_t *nm);

/*
 * the values for PQconnectStartParams (conf->rt_keywords), the slots from
 * start (modulo their number)
 */
const char **ngx_vodlms_pg_names_values(ngx_vodlms_pg_names_t *nm,
    ngx_uint_t start);

/* the slot with this address and port, or -1 */
ngx_int_t ngx_vodlms_pg_names_find(ngx_vodlms_pg_names_t *nm,
    const char *addr, ngx_uint_t port);

/* a slot for a log line: "host:port (address)", NUL-ended in buf */
u_char *ngx_vodlms_pg_names_label(ngx_vodlms_pg_names_t *nm,
    ngx_uint_t slot, u_char *buf, u_char *last);

/* drops the lookups in flight: their handler will not run */
void ngx_vodlms_pg_names_cancel(ngx_vodlms_pg_names_t *nm);


#endif /* NGX_VODLMS_PG_INTERNAL_H */
