/*
 * vodlms-helper: the transcode worker of vodlms.  See docs/helper.md.
 *
 * The loop: take one job (our own backlog, a silent consumer's job after
 * claim_idle, or a new one), run it (a transcode, or a caption job:
 * subs.c), update its row, and only then XACK.  Failures that may pass are retried with back-off up to
 * max_attempts deliveries; then the video is marked failed and acked.
 */

#define _POSIX_C_SOURCE 200809L

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

#include "vodlms_helper.h"

volatile sig_atomic_t vh_stop;
static volatile sig_atomic_t abandon_on_stop;

static void
on_signal(int signo)
{
    (void) signo;
    /* a second signal means "now": abandon the running job */
    vh_stop = (vh_stop || abandon_on_stop) ? 2 : 1;
}

static void
install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

/* waits the retry delay, telling Redis that the job is still ours */
static int
backoff_wait(const vh_conf_t *cf, vh_queue_t *q, vh_job_t *job, double secs)
{
    double end = vh_now() + secs;

    while (!vh_stop && vh_now() < end) {
        double left = end - vh_now(), step = cf->claim_idle / 3;
        vh_sleep_interruptible(left < step ? left : step);
        if (vh_queue_heartbeat(q, job) != 0) {
            return -1;
        }
    }
    return vh_stop ? -1 : 0;
}

/*
 * The row a job updates: the video's (videos), or for a caption job its
 * language's (video_captions); each only while it names the job's source
 */
static int
job_failed(vh_db_t *db, const vh_job_t *job, const char *msg)
{
    if (job->kind == VH_KIND_CAPTIONS) {
        return vh_db_caption_failed(db, job->video_id, job->lang, job->source, msg);
    }
    return vh_db_failed(db, job->video_id, job->source, msg);
}

static int
job_requeue(vh_db_t *db, const vh_job_t *job, const char *msg)
{
    if (job->kind == VH_KIND_CAPTIONS) {
        return vh_db_caption_requeue(db, job->video_id, job->lang, job->source, msg);
    }
    return vh_db_requeue(db, job->video_id, job->source, msg);
}

static int
job_current(vh_db_t *db, const vh_job_t *job)
{
    if (job->kind == VH_KIND_CAPTIONS) {
        return vh_db_caption_current(db, job->video_id, job->lang, job->source);
    }
    return vh_db_current(db, job->video_id, job->source);
}

/* a malformed job: logged, its row marked failed when it can be named, acked */
static void
handle_malformed(const vh_conf_t *cf, vh_queue_t *q, vh_db_t *db, vh_job_t *job)
{
    char  why[512], msg[700];

    if (job->kind == VH_KIND_UNKNOWN) {
        vh_error("job %s: malformed (unknown kind; this helper knows video and"
                 " captions): dropped, nothing touched", job->id);
    } else if (job->kind == VH_KIND_CAPTIONS) {
        if (vh_caption_job_fields(job, why, sizeof(why)) == 0) {
            snprintf(why, sizeof(why), "needs video_id matching [A-Za-z0-9_-]{1,64}"
                     " and an absolute source path");
        }
        vh_error("job %s: malformed caption job (%s): dropped", job->id, why);
        if (vh_valid_id(job->video_id) && job->lang != NULL && job->source != NULL) {
            /* only while the row names this very source (a newer upload wins) */
            snprintf(msg, sizeof(msg), "caption_job: malformed caption job (%s)", why);
            vh_db_caption_failed(db, job->video_id, job->lang, job->source, msg);
        }
    } else if (job->remove != NULL) {
        vh_error("job %s: malformed (a delete field on a video job: a removal is a"
                 " caption job, kind captions): dropped, nothing touched", job->id);
    } else {
        vh_error("job %s: malformed (needs video_id matching [A-Za-z0-9_-]{1,64}"
                 " and an absolute source path): dropped", job->id);
        if (vh_valid_id(job->video_id)) {
            /* a URL or protocol prefix ("http://", "concat:", "subfile,") is never opened */
            /* only while the row names this very source (a newer upload wins) */
            vh_db_failed(db, job->video_id, job->source,
                         job->source != NULL && job->source[0] != '\0'
                         && job->source[0] != '/'
                         ? "unsupported_source: malformed transcode job (the source"
                           " is not an absolute path; URLs are refused)"
                         : "malformed transcode job (no usable source path)");
        }
    }
    vh_queue_ack(q, job);
    if (job->kind == VH_KIND_CAPTIONS) {
        vh_spool_remove(cf, db, job);
    }
}

static void
handle(const vh_conf_t *cf, vh_queue_t *q, vh_db_t *db, vh_job_t *job)
{
    char         err[1024], msg[1200], why[512];
    const char  *what;
    int          rc, captions;
    double       delay;

    captions = job->kind == VH_KIND_CAPTIONS;
    if (!job->malformed && captions
        && vh_caption_job_fields(job, why, sizeof(why)) != 0)
    {
        job->malformed = 1;
    }
    if (job->malformed) {
        handle_malformed(cf, q, db, job);
        return;
    }
    what = captions ? "caption job" : "transcode";

    for (;;) {
        if (job->deliveries > cf->max_attempts) {
            snprintf(msg, sizeof(msg),
                     "%s gave up after %d attempts (the helpers handling it"
                     " failed or died each time)", what, cf->max_attempts);
            vh_error("video %s: %s", job->video_id, msg);
            rc = job_failed(db, job, msg);
            if (rc < 0) {
                return;         /* not acked: another try later */
            }
            if (rc == 0) {
                vh_job_superseded(job, "not marked failed");
            }
            vh_queue_ack(q, job);
            if (captions) {
                vh_spool_remove(cf, db, job);
            }
            return;
        }

        if (captions) {
            vh_info("job %s: video %s, captions %s, source %s, attempt %ld/%d",
                    job->id, job->video_id, job->lang, job->source,
                    job->deliveries, cf->max_attempts);
            rc = job->remove != NULL
                 ? vh_caption_remove_run(cf, q, db, job, err, sizeof(err))
                 : vh_caption_job_run(cf, q, db, job, err, sizeof(err));
        } else {
            vh_info("job %s: video %s, source %s, attempt %ld/%d", job->id,
                    job->video_id, job->source, job->deliveries, cf->max_attempts);
            rc = vh_job_run(cf, q, db, job, err, sizeof(err));
        }

        switch (rc) {
        case VH_JOB_DONE:
            vh_queue_ack(q, job);
            if (captions) {
                /* read once: its WebVTT is in the row now (or it was refused) */
                vh_spool_remove(cf, db, job);
            }
            return;
        case VH_JOB_SUPERSEDED:
            vh_queue_ack(q, job);
            vh_spool_remove(cf, db, job);
            return;
        case VH_JOB_LOST:
            vh_warn("job %s: lost to another helper, not acknowledged", job->id);
            return;
        case VH_JOB_ABANDONED:
            vh_warn("job %s: abandoned on shutdown (not acknowledged: another helper"
                    " reclaims it after claim_idle)", job->id);
            job_requeue(db, job, NULL);
            return;
        }

        /* VH_JOB_RETRY */
        if (job->deliveries >= cf->max_attempts) {
            snprintf(msg, sizeof(msg), "%s failed after %ld attempts: %s",
                     what, job->deliveries, err);
            vh_error("video %s: %s", job->video_id, msg);
            rc = job_failed(db, job, msg);
            if (rc == 0) {
                vh_job_superseded(job, "not marked failed");
            }
            if (rc >= 0) {
                vh_queue_ack(q, job);
                if (captions) {
                    vh_spool_remove(cf, db, job);
                }
            }
            return;
        }
        delay = cf->retry_backoff;
        {
            long i;
            for (i = 1; i < job->deliveries && delay < cf->retry_backoff_max; i++) {
                delay *= 2;
            }
        }
        if (delay > cf->retry_backoff_max) {
            delay = cf->retry_backoff_max;
        }
        snprintf(msg, sizeof(msg), "attempt %ld failed, retrying in %.1f s: %s",
                 job->deliveries, delay, err);
        vh_warn("video %s: %s", job->video_id, msg);
        if (job_requeue(db, job, msg) == 0 && job_current(db, job) != VH_DB_OURS) {
            vh_job_superseded(job, "not retried");
            vh_queue_ack(q, job);
            vh_spool_remove(cf, db, job);
            return;
        }
        if (backoff_wait(cf, q, job, delay) != 0) {
            return;             /* stopping or lost: stays pending, reclaimed later */
        }
        if (vh_queue_redeliver(q, job) != 0) {
            return;
        }
    }
}

int
main(int argc, char **argv)
{
    vh_conf_t    cf;
    vh_queue_t  *q;
    vh_db_t     *db;
    vh_job_t     job;
    int          rc, jobs = 0;

    if (vh_conf_init(&cf) != 0) {
        fprintf(stderr, "vodlms-helper: out of memory\n");
        return 2;
    }
    rc = vh_conf_parse_args(&cf, argc, argv);
    if (rc != 0) {
        vh_conf_free(&cf);
        return rc > 0 ? 0 : 2;
    }

    vh_log_open(vh_log_level_parse(cf.log_level), !strcmp(cf.log_target, "syslog"));
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        vh_error("cannot initialise libcurl");
        vh_conf_free(&cf);
        return 1;
    }
    abandon_on_stop = !strcmp(cf.shutdown, "abandon");
    install_signals();

    q = vh_queue_new(&cf);
    db = vh_db_new(cf.pg_conninfo, cf.db_schema);
    if (q == NULL || db == NULL) {
        vh_error("out of memory");
        return 1;
    }
    vh_info("vodlms-helper " VH_VERSION " starting: stream \"%s\", group \"%s\","
            " consumer \"%s\", origin %s", cf.stream, cf.group, cf.consumer,
            cf.origin_dir);
    if (cf.publish_s3) {
        vh_info("publishing to s3://%s/%shls/<id>/ via %s (%s)", cf.s3_bucket,
                cf.s3_prefix, cf.s3_endpoint,
                cf.s3_path_style ? "path style" : "virtual host");
    }

    if (cf.encrypt) {
        vh_info("encrypting every rendition (AES-128, %s), key URIs %s/<id>/<version>/<k>.key",
                cf.key_rotation ? "key_rotation segments per key" : "one key per version",
                cf.key_uri_base);
        /* the keys go nowhere else: without their table no job could finish */
        if (vh_db_keys_table(db) == 0) {
            vh_error("encrypt = on needs the table video_keys in schema \"%s\":"
                     " apply sql/migrations/0011_video_keys.sql (sql/migrate.sh)",
                     cf.db_schema);
            vh_queue_free(q);
            vh_db_free(db);
            vh_conf_free(&cf);
            curl_global_cleanup();
            return 1;
        }
    }

    memset(&job, 0, sizeof(job));
    while (!vh_stop) {
        /* superseded local versions past old_version_grace (at most once a minute) */
        vh_publish_sweep(&cf, db);
        /* spooled uploads no video names, older than spool_grace (every 5 min) */
        vh_spool_sweep(&cf, db);
        rc = vh_queue_next(q, &job);
        if (rc < 0) {
            vh_sleep_interruptible(1);
            continue;
        }
        if (rc == 0) {
            if (cf.exit_when_idle) {
                vh_info("queue idle: exiting (--exit-when-idle)");
                break;
            }
            continue;
        }
        handle(&cf, q, db, &job);
        vh_job_clear(&job);
        jobs++;
        if (cf.once) {
            break;
        }
    }

    vh_info("stopping after %d job(s)", jobs);
    vh_queue_free(q);
    vh_db_free(db);
    vh_conf_free(&cf);
    curl_global_cleanup();
    return 0;
}
