/*
 * Non-blocking PostgreSQL for nginx workers: libpq's asynchronous API driven
 * by nginx events, a per-worker keep-alive pool, prepared statements,
 * timeouts on nginx timers and reconnection with back-off.  Nothing here
 * blocks a worker, except ngx_vodlms_pg_exec_blocking(): for a worker on
 * its way out only (see ngx_vodlms_pg_exit.c).
 *
 * The code: ngx_vodlms_pg_conf.c (configuration time), ngx_vodlms_pg.c
 * (the event-driven pool), ngx_vodlms_pg_exit.c (the exit path), sharing
 * ngx_vodlms_pg_internal.h.
 */

#ifndef NGX_VODLMS_PG_H
#define NGX_VODLMS_PG_H

#include <ngx_config.h>
#include <ngx_core.h>

#include <libpq-fe.h>


typedef enum {
    NGX_VODLMS_PG_OK = 0,
    NGX_VODLMS_PG_ERROR,           /* connect failed, connection lost */
    NGX_VODLMS_PG_TIMEOUT,         /* connect or query timed out */
    NGX_VODLMS_PG_DOWN,            /* in back-off after failures: not tried */
    NGX_VODLMS_PG_REFUSED          /* the server refused the statement
                                      itself (SQLSTATE classes 42, 22, 23,
                                      ...: bad SQL, types, constraints);
                                      timeouts, conflicts and the like stay
                                      NGX_VODLMS_PG_ERROR */
} ngx_vodlms_pg_status_e;


/* a host of the conninfo as written, for names resolved at run time */
typedef struct {
    ngx_str_t                   name;          /* a name, an address or a
                                                  socket directory */
    ngx_str_t                   label;         /* host:port, for logs */
    in_port_t                   port;
    unsigned                    lookup:1;      /* a name for the resolver */
} ngx_vodlms_pg_host_t;


typedef struct {
    ngx_str_t                   conninfo;      /* as written, NUL-ended;
                                                  never logged (password) */
    ngx_str_t                   name;          /* host:port/dbname, for logs */
    ngx_uint_t                  pool_size;     /* per worker */
    ngx_msec_t                  connect_timeout;
    ngx_msec_t                  timeout;       /* per query, from the call */

    /* for PQconnectStartParams: host names resolved at nginx -t */
    const char                **keywords;
    const char                **values;

    /*
     * A multi-host conninfo (host=a,b): libpq tries the hosts in order, and
     * a connect timed out on one of them starts next time after it, so
     * that a silent host never stops the others from being tried.
     * rotations[i] are the values with the host list starting at host i.
     */
    ngx_uint_t                  nhosts;       /* after resolution; >= 1 */
    const char               ***rotations;    /* NULL with one host */
    ngx_str_t                  *hostaddrs;    /* per host, to tell which */
    ngx_uint_t                 *ports;        /*   one a connect waits on */
    ngx_str_t                  *labels;       /* per host: host:port */

    /*
     * Host names resolved at run time (ngx_vodlms_pg_names.c), with the
     * "resolve" parameter (and the http{} level's "resolver") and a host
     * that is a name: the hosts as
     * written, and the options for PQconnectStartParams with host,
     * hostaddr and port last (at rt_host), filled in per connect.
     */
    ngx_uint_t                  resolve;      /* the "resolve" flag */
    ngx_resolver_t             *resolver;     /* NULL: the arrays above */
    ngx_msec_t                  resolver_timeout;
    ngx_vodlms_pg_host_t       *hosts;
    ngx_uint_t                  nnames;       /* of hosts */
    ngx_uint_t                  lookups;      /* hosts that are names */
    const char                **rt_keywords;
    const char                **rt_values;
    ngx_uint_t                  rt_host;

    /* a worker's own: the values it last connected with, for the exit */
    const char                **live_values;

    ngx_str_t                   unresolved;   /* nginx -t could not */
    ngx_str_t                   file;         /* of the directive */
    ngx_uint_t                  line;
} ngx_vodlms_pg_conf_t;


typedef struct ngx_vodlms_pg_pool_s  ngx_vodlms_pg_pool_t;


/* a named statement, prepared once per connection (again after reconnects) */
typedef struct {
    ngx_str_t                   name;          /* e.g. "vodlms_enroll" */
    ngx_str_t                   sql;           /* with $1..$n */
    ngx_uint_t                  nparams;
} ngx_vodlms_pg_stmt_t;


/*
 * on_done runs exactly once, never from inside ngx_vodlms_pg_query(): with
 * NGX_VODLMS_PG_OK and the result (PGRES_TUPLES_OK or PGRES_COMMAND_OK); with
 * NGX_VODLMS_PG_REFUSED, the error result (for PQresultErrorField) and a
 * reason; or with another status, res == NULL and a reason for the log (the
 * server's message for SQL errors, which may quote a parameter value).  res and
 * reason are valid only during the call.  on_done does not run after the
 * owner pool (the request's) has been destroyed, nor when the worker exits.
 */
typedef void (*ngx_vodlms_pg_done_pt)(void *data,
    ngx_vodlms_pg_status_e status, PGresult *res, const char *reason);


/*
 * For a directive: conninfo [pool_size=N] [connect_timeout=T] [timeout=T].
 * The conninfo (key=value or postgresql:// URI) is checked with
 * PQconninfoParse; host names in it are resolved here, once (see
 * ngx_vodlms_pg_init_conf() for names resolved at run time).
 */
char *ngx_vodlms_pg_parse(ngx_conf_t *cf, ngx_vodlms_pg_conf_t **pcfp);

/*
 * After the http{} level is merged (postconfiguration): with "resolve" (and
 * a "resolver" there, which it needs), host names are resolved at run time;
 * without it, a name that nginx -t could not resolve is an error.  directive is for the message.
 */
ngx_int_t ngx_vodlms_pg_init_conf(ngx_conf_t *cf, ngx_vodlms_pg_conf_t *pcf,
    const char *directive);

/* stmts: an array of ngx_vodlms_pg_stmt_t, or NULL; queries name its items */
ngx_vodlms_pg_pool_t *ngx_vodlms_pg_pool_create(ngx_cycle_t *cycle,
    ngx_vodlms_pg_conf_t *conf, ngx_array_t *stmts);
void ngx_vodlms_pg_pool_destroy(ngx_vodlms_pg_pool_t *pool);

/*
 * Reads the pool cannot serve go to fallback instead (vodlms_pg_replica
 * falls back to vodlms_pg, as libpq's target_session_attrs=prefer-standby
 * would): when the pool is in back-off, when its connect fails or times
 * out, when its connection is lost under a query, or when the query's
 * timer runs out on it (a silent or overloaded replica), each query once,
 * with fallback's timeout= afresh.  So is a read the pool's server
 * cancelled (SQLSTATE 40001, a conflict with recovery; 57014, its
 * statement_timeout): it had no effect.  Other SQL errors are answered as
 * they are.
 * While the pool is down (its connects fail), queries go straight to
 * fallback and the pool reconnects on its own (back-off permitting); the
 * first good connect takes reads back.  Both transitions are logged once
 * per worker.  The pools must share their statements (the same stmts
 * array).
 */
void ngx_vodlms_pg_pool_fallback(ngx_vodlms_pg_pool_t *pool,
    ngx_vodlms_pg_pool_t *fallback);

/*
 * Runs a prepared statement (one of the pool's stmts) with text parameters;
 * values[i].data == NULL is SQL NULL.  The values are copied.  owner may be
 * NULL (e.g. from a timer): the query then always runs to its end.
 * Returns NGX_OK when the query is under way (on_done will follow), or
 * NGX_DECLINED when it could not be started: *status and *reason say why
 * (on_done will not run; *reason is valid until the next call into the
 * pool).  NGX_ERROR on allocation failure.
 */
ngx_int_t ngx_vodlms_pg_query(ngx_vodlms_pg_pool_t *pool, ngx_pool_t *owner,
    ngx_log_t *log, ngx_vodlms_pg_stmt_t *stmt, ngx_str_t *values,
    ngx_uint_t nvalues, ngx_vodlms_pg_done_pt on_done, void *data,
    ngx_vodlms_pg_status_e *status, const char **reason);

/* the same with one-off SQL (PQsendQueryParams, one statement, no PREPARE) */
ngx_int_t ngx_vodlms_pg_query_sql(ngx_vodlms_pg_pool_t *pool,
    ngx_pool_t *owner, ngx_log_t *log, ngx_str_t *sql, ngx_str_t *values,
    ngx_uint_t nvalues, ngx_vodlms_pg_done_pt on_done, void *data,
    ngx_vodlms_pg_status_e *status, const char **reason);

/*
 * Is the query of this on_done and data still waiting for a connection,
 * never sent (or sent only to a server that answered read-only, SQLSTATE
 * 25006)?  It then has had no effect on the database.  For a worker's
 * exit path, which must tell a write that may have committed from one
 * that cannot have.
 */
ngx_uint_t ngx_vodlms_pg_unsent(ngx_vodlms_pg_pool_t *pool,
    ngx_vodlms_pg_done_pt on_done, void *data);

/*
 * One statement on a connection of its own, blocking: for a worker on its
 * way out only.  On NGX_VODLMS_PG_OK, and on NGX_VODLMS_PG_REFUSED (the
 * error result), *res is the caller's to PQclear(); otherwise *res is NULL.
 * *reason says why it failed (valid until the next call).
 */
ngx_vodlms_pg_status_e ngx_vodlms_pg_exec_blocking(ngx_vodlms_pg_conf_t *pcf,
    ngx_log_t *log, ngx_str_t *sql, ngx_str_t *values, ngx_uint_t nvalues,
    ngx_msec_t timeout, PGresult **res, const char **reason);


/* of a refused statement's result: SQLSTATE class 22 or 23, the values */
ngx_uint_t ngx_vodlms_pg_data_error(PGresult *res);


#endif /* NGX_VODLMS_PG_H */
