/*
 * What the three parts of the PostgreSQL client share, and nothing else:
 *
 *   ngx_vodlms_pg_conf.c   configuration time: the directive's arguments,
 *                          conninfo checks, host names resolved once
 *   ngx_vodlms_pg.c        the event-driven per-worker pool (never blocks)
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


#endif /* NGX_VODLMS_PG_INTERNAL_H */
