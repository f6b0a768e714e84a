/*
 * PostgreSQL for a worker on its way out: one statement on a connection of
 * its own, and this file blocks the process to run it.
 *
 * When: only from the module's exit_process hook, after a fast shutdown
 * (SIGTERM, nginx -s stop), when progress beacons acknowledged with 204
 * are still unwritten (ngx_http_vodlms_progress_exit()).  Such a worker
 * leaves without running its timers, so the event-driven pool
 * (ngx_vodlms_pg.c) cannot carry the write: there is no event loop left to
 * wait on.
 *
 * Why that is acceptable: the worker accepts no more requests and serves no
 * one; blocking it delays nothing but its own exit, which nginx's master
 * bounds anyway (it kills what is left after about 1.5 s).  The caller's
 * timeout covers connecting and the statement together, kept here with
 * poll() (libpq's own connect_timeout is whole seconds, at least two), so
 * a dead server costs the exit that long and no more.
 *
 * Nothing else may call this: in a worker that still serves, it would stop
 * every request of the worker for up to the timeout.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <poll.h>

#include "ngx_vodlms_pg_internal.h"


static ngx_int_t ngx_vodlms_pg_exit_params(ngx_str_t *sql, ngx_str_t *values,
    ngx_uint_t nvalues, ngx_log_t *log, char ***params, char **query);
static void ngx_vodlms_pg_exit_free(char **params, char *query,
    ngx_uint_t nvalues);
static ngx_vodlms_pg_status_e ngx_vodlms_pg_exit_connect(PGconn *pg,
    ngx_msec_t deadline, u_char **pp, u_char *last);
static ngx_vodlms_pg_status_e ngx_vodlms_pg_exit_results(PGconn *pg,
    ngx_msec_t deadline, PGresult **res, u_char *buf, u_char **pp,
    u_char *last);
static ngx_int_t ngx_vodlms_pg_wait(PGconn *pg, ngx_uint_t write,
    ngx_msec_t deadline);
static void ngx_vodlms_pg_notice_ignore(void *arg, const char *message);


ngx_vodlms_pg_status_e
ngx_vodlms_pg_exec_blocking(ngx_vodlms_pg_conf_t *pcf, ngx_log_t *log,
    ngx_str_t *sql, ngx_str_t *values, ngx_uint_t nvalues, ngx_msec_t timeout,
    PGresult **res, const char **reason)
{
    int                      rc;
    char                   **params, *query;
    u_char                  *p, *last;
    PGconn                  *pg;
    ngx_msec_t               deadline;
    ngx_vodlms_pg_status_e   status;

    static u_char  buf[NGX_VODLMS_PG_REASON_LEN];

    *res = NULL;
    last = buf + sizeof(buf) - 1;
    p = buf;
    pg = NULL;
    status = NGX_VODLMS_PG_ERROR;

    ngx_time_update();
    deadline = ngx_current_msec + timeout;

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, log, 0,
                   "vodlms pg: exit, %V: one blocking statement, "
                   "within %M ms", &pcf->name, timeout);

    if (ngx_vodlms_pg_exit_params(sql, values, nvalues, log, &params, &query)
        != NGX_OK)
    {
        p = ngx_cpymem(p, "out of memory", 13);
        goto done;
    }

    /*
     * The configured connection (host names resolved at nginx -t), or,
     * with names resolved at run time, the addresses this worker last
     * connected to: no lookup on the way out.
     */

    if (pcf->live_values) {
        pg = PQconnectStartParams(pcf->rt_keywords, pcf->live_values, 0);

    } else if (pcf->resolver && pcf->unresolved.len) {
        /*
         * A worker that never connected, and a name nginx -t could not
         * resolve: libpq would look it up with a blocking getaddrinfo()
         */
        status = NGX_VODLMS_PG_DOWN;
        p = ngx_slprintf(p, last, "no address known: this worker never "
                         "connected, and %V", &pcf->unresolved);
        goto done;

    } else {
        pg = PQconnectStartParams(pcf->keywords, pcf->values, 0);
    }

    if (pg == NULL || PQstatus(pg) == CONNECTION_BAD) {
        status = NGX_VODLMS_PG_DOWN;
        p = ngx_vodlms_pg_cpymsg(p, last, pg ? PQerrorMessage(pg)
                                             : "out of memory");
        goto done;
    }

    PQsetNoticeProcessor(pg, ngx_vodlms_pg_notice_ignore, NULL);

    status = ngx_vodlms_pg_exit_connect(pg, deadline, &p, last);

    if (status != NGX_VODLMS_PG_OK) {
        goto done;
    }

    status = NGX_VODLMS_PG_ERROR;

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, log, 0,
                   "vodlms pg: exit, %V fd:%d: connected, execute",
                   &pcf->name, PQsocket(pg));

    /* the statement, sent and read without blocking past the deadline */

    if (PQsetnonblocking(pg, 1) != 0
        || PQsendQueryParams(pg, query, (int) nvalues, NULL,
                             (const char * const *) params, NULL, NULL, 0)
           == 0)
    {
        p = ngx_vodlms_pg_cpymsg(p, last, PQerrorMessage(pg));
        goto done;
    }

    while ((rc = PQflush(pg)) == 1) {
        if (!ngx_vodlms_pg_wait(pg, 1, deadline)) {
            status = NGX_VODLMS_PG_TIMEOUT;
            p = ngx_cpymem(p, "query timed out", 15);
            goto done;
        }
    }

    if (rc == -1) {
        p = ngx_vodlms_pg_cpymsg(p, last, PQerrorMessage(pg));
        goto done;
    }

    status = ngx_vodlms_pg_exit_results(pg, deadline, res, buf, &p, last);

done:

    *p = '\0';
    *reason = (const char *) buf;

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, log, 0,
                   "vodlms pg: exit, %V: close, %s",
                   &pcf->name, ngx_vodlms_pg_status_name(status));

    if (pg) {
        PQfinish(pg);
    }

    ngx_vodlms_pg_exit_free(params, query, nvalues);

    return status;
}


/* NUL-ended copies for libpq; NULL values stay SQL NULL */

static ngx_int_t
ngx_vodlms_pg_exit_params(ngx_str_t *sql, ngx_str_t *values,
    ngx_uint_t nvalues, ngx_log_t *log, char ***params, char **query)
{
    ngx_uint_t  i;

    *params = ngx_calloc((nvalues + 1) * sizeof(char *), log);
    *query = ngx_alloc(sql->len + 1, log);

    if (*params == NULL || *query == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < nvalues; i++) {
        if (values[i].data == NULL) {
            continue;
        }

        (*params)[i] = ngx_alloc(values[i].len + 1, log);
        if ((*params)[i] == NULL) {
            return NGX_ERROR;
        }

        *ngx_cpymem((*params)[i], values[i].data, values[i].len) = '\0';
    }

    *ngx_cpymem(*query, sql->data, sql->len) = '\0';

    return NGX_OK;
}


static void
ngx_vodlms_pg_exit_free(char **params, char *query, ngx_uint_t nvalues)
{
    ngx_uint_t  i;

    if (params) {
        for (i = 0; i < nvalues; i++) {
            if (params[i]) {
                ngx_free(params[i]);
            }
        }
        ngx_free(params);
    }

    if (query) {
        ngx_free(query);
    }
}


/* PQconnectPoll's loop, waiting with poll(); NGX_VODLMS_PG_OK: connected */

static ngx_vodlms_pg_status_e
ngx_vodlms_pg_exit_connect(PGconn *pg, ngx_msec_t deadline, u_char **pp,
    u_char *last)
{
    PostgresPollingStatusType  poll_st;

    poll_st = PGRES_POLLING_WRITING;

    while (poll_st != PGRES_POLLING_OK) {

        if (poll_st == PGRES_POLLING_FAILED) {
            *pp = ngx_vodlms_pg_cpymsg(*pp, last, PQerrorMessage(pg));
            return NGX_VODLMS_PG_DOWN;
        }

        if (!ngx_vodlms_pg_wait(pg, poll_st == PGRES_POLLING_WRITING,
                                deadline))
        {
            *pp = ngx_cpymem(*pp, "connect timed out", 17);
            return NGX_VODLMS_PG_TIMEOUT;
        }

        poll_st = PQconnectPoll(pg);
    }

    return NGX_VODLMS_PG_OK;
}


/*
 * Reads every result of the one statement: the first is kept in *res (a
 * success, or a refusal for the caller's SQLSTATE), anything after it is
 * dropped.  A message goes to buf, from *pp on.
 */

static ngx_vodlms_pg_status_e
ngx_vodlms_pg_exit_results(PGconn *pg, ngx_msec_t deadline, PGresult **res,
    u_char *buf, u_char **pp, u_char *last)
{
    u_char                  *p;
    PGresult                *r;
    ExecStatusType           st;
    ngx_vodlms_pg_status_e   status;

    p = *pp;
    status = NGX_VODLMS_PG_ERROR;

    for ( ;; ) {
        while (PQisBusy(pg)) {
            if (!ngx_vodlms_pg_wait(pg, 0, deadline)) {
                status = NGX_VODLMS_PG_TIMEOUT;
                p = ngx_cpymem(p, "query timed out", 15);
                goto done;
            }

            if (PQconsumeInput(pg) == 0) {
                p = ngx_vodlms_pg_cpymsg(p, last, PQerrorMessage(pg));
                goto done;
            }
        }

        r = PQgetResult(pg);
        if (r == NULL) {
            break;
        }

        /* one statement: keep its result, drop anything after it */
        if (*res == NULL && status == NGX_VODLMS_PG_ERROR
            && p == buf)
        {
            st = PQresultStatus(r);

            if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
                *res = r;
                status = NGX_VODLMS_PG_OK;
                continue;
            }

            p = ngx_vodlms_pg_cpyerror(p, last, r);

            if (ngx_vodlms_pg_refusal(r)) {
                /* kept, for the caller's SQLSTATE */
                status = NGX_VODLMS_PG_REFUSED;
                *res = r;
                continue;
            }
        }

        PQclear(r);
    }

    if (*res == NULL && p == buf) {
        p = ngx_cpymem(p, "no result", 9);
    }

done:

    *pp = p;

    return status;
}


/* wait until the socket can be read (or written); 0 when time is up */

static ngx_int_t
ngx_vodlms_pg_wait(PGconn *pg, ngx_uint_t write, ngx_msec_t deadline)
{
    int             n;
    struct pollfd   pfd;
    ngx_msec_int_t  left;

    for ( ;; ) {
        ngx_time_update();
        left = (ngx_msec_int_t) (deadline - ngx_current_msec);

        if (left <= 0) {
            return 0;
        }

        pfd.fd = PQsocket(pg);
        pfd.events = write ? POLLOUT : POLLIN;
        pfd.revents = 0;

        n = poll(&pfd, 1, (int) left);

        if (n > 0) {
            return 1;
        }

        if (n == 0 || ngx_errno != NGX_EINTR) {
            return 0;
        }

        /* a signal (the master repeats SIGTERM): wait for what is left */
    }
}


/* nobody is left to read a notice */

static void
ngx_vodlms_pg_notice_ignore(void *arg, const char *message)
{
    (void) arg;
    (void) message;
}
