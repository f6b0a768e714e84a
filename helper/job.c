/*
 * One job: probe, plan, transcode (one ffmpeg), measure, write the master
 * playlist (with the video's published captions, subs.c) and poster,
 * publish, update the videos row.  The caller acks.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vodlms_helper.h"

typedef struct {
    const vh_conf_t  *cf;
    vh_queue_t       *q;
    vh_db_t          *db;
    vh_job_t         *job;
    double            duration;
    double            last_beat;
    double            last_pct;
    int               lost;
    int               superseded;  /* the row names another source now */
} tick_ctx_t;

static int
abandon_requested(const vh_conf_t *cf)
{
    return vh_stop == 2 || (vh_stop == 1 && !strcmp(cf->shutdown, "abandon"));
}

void
vh_job_superseded(const vh_job_t *job, const char *when)
{
    vh_info("job for video %s superseded by a newer upload: dropped (job %s,"
            " source %s, %s)", job->video_id, job->id,
            job->source ? job->source : "none", when);
}

/* the row's status when the job fails for good; superseded: untouched */
static int
fail_job(vh_db_t *db, const vh_job_t *job, const char *err)
{
    int rows = vh_db_failed(db, job->video_id, job->source, err);

    if (rows < 0) {
        return VH_JOB_RETRY;
    }
    if (rows == 0) {
        vh_job_superseded(job, "not marked failed");
        return VH_JOB_SUPERSEDED;
    }
    return VH_JOB_DONE;
}

/* called by the ffmpeg loop about once a second */
static int
on_tick(void *data, double out_s)
{
    tick_ctx_t  *t = data;
    double       now = vh_now(), every;

    if (abandon_requested(t->cf)) {
        return 1;
    }
    /* at most once a second, and only when it moved */
    if (t->duration > 0) {
        double pct = 100.0 * out_s / t->duration;
        if (pct - t->last_pct >= 0.01) {
            /* no row updated: still ours, or re-queued for a newer upload? */
            if (vh_db_progress(t->db, t->job->video_id, t->job->source, pct) == 0
                && vh_db_current(t->db, t->job->video_id, t->job->source)
                   != VH_DB_OURS)
            {
                t->superseded = 1;
                return 1;
            }
            t->last_pct = pct;
        }
    }
    every = t->cf->claim_idle / 3;
    if (every > 10) {
        every = 10;
    }
    if (now - t->last_beat >= every) {
        t->last_beat = now;
        if (vh_queue_heartbeat(t->q, t->job) != 0) {
            t->lost = 1;
            return 1;
        }
    }
    return 0;
}

static int
read_file(const char *path, vh_buf_t *b)
{
    FILE   *f = fopen(path, "r");
    char    chunk[8192];
    size_t  n;

    if (f == NULL) {
        return -1;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        vh_buf_append(b, chunk, n);
    }
    fclose(f);
    return b->data ? 0 : -1;
}

/*
 * thumbs/: the sprite sheets from the ladder's tiles, and storyboard.vtt;
 * 0 or -1 (logged: the version is published without a storyboard)
 */
static int
write_storyboard(const vh_conf_t *cf, const vh_plan_t *plan, const char *dir,
    double duration, const vh_job_t *job)
{
    vh_buf_t  vtt = { 0 };
    char      path[4400], err[512];
    long      tiles = 0;
    int       rc = -1;

    if (vh_storyboard_run(cf, plan, dir, &tiles, err, sizeof(err)) != 0) {
        vh_warn("video %s: %s (published without a storyboard)", job->video_id, err);
        goto done;
    }
    if (vh_storyboard_vtt(cf, plan, duration, tiles, &vtt) != 0) {
        vh_warn("video %s: no storyboard track (%ld tile(s) for %.1f s):"
                " published without one", job->video_id, tiles, duration);
        goto done;
    }
    snprintf(path, sizeof(path), "%s/storyboard.vtt", dir);
    if (vh_write_file_atomic(path, vtt.data, vtt.len) != 0) {
        vh_warn("video %s: cannot write %s: %s (published without a storyboard)",
                job->video_id, path, strerror(errno));
        goto done;
    }
    rc = 0;
done:
    vh_buf_free(&vtt);
    return rc;
}

int
vh_job_source_allowed(const vh_conf_t *cf, const char *source, char *err,
    size_t errlen)
{
    char    real[PATH_MAX], root[PATH_MAX];
    size_t  n;

    if (cf->source_root[0] == '\0') {
        return 1;
    }
    if (realpath(source, real) == NULL || realpath(cf->source_root, root) == NULL) {
        snprintf(err, errlen, "source not found: %s", source);
        return 0;
    }
    n = strlen(root);
    if (strncmp(real, root, n) != 0 || (real[n] != '/' && root[n - 1] != '/')) {
        snprintf(err, errlen, "source %s is outside source_root %s", source,
                 cf->source_root);
        return 0;
    }
    return 1;
}

int
vh_job_run(const vh_conf_t *cf, vh_queue_t *q, vh_db_t *db, vh_job_t *job,
    char *err, size_t errlen)
{
    vh_probe_t    probe;
    vh_plan_t     plan;
    vh_variant_t  vars[VH_MAX_RUNGS + 1];
    tick_ctx_t    t;
    vh_keys_t     keys;
    vh_subs_t     subs;
    vh_subs_switch_t  sw;
    char          tmp[4096], path[4800], prefix[128], key_info[4200];
    char          plain[4200], version[VH_VERSION_TOKEN_LEN + 1], thumbs[4200];
    char          tiles[4200];
    const char   *out_dir;
    vh_buf_t      text = { 0 }, master = { 0 }, rend = { 0 };
    struct stat   sb;
    double        started = vh_now(), duration;
    int           i, nv, rows, lrc, storyboard = 0, rc = VH_JOB_RETRY;

    err[0] = '\0';
    tmp[0] = '\0';
    memset(&keys, 0, sizeof(keys));
    memset(&subs, 0, sizeof(subs));

    /* first of all: is this still the row's upload?  Nothing runs otherwise */
    rows = vh_db_start(db, job->video_id, job->source);
    if (rows < 0) {
        snprintf(err, errlen, "cannot update the videos row");
        return VH_JOB_RETRY;
    }
    if (rows == VH_DB_NO_ROW) {
        vh_warn("job %s: video %s does not exist (deleted?): dropping the job",
                job->id, job->video_id);
        snprintf(err, errlen, "no such video");
        return VH_JOB_DONE;
    }
    if (rows == VH_DB_SUPERSEDED) {
        vh_job_superseded(job, "before it started");
        return VH_JOB_SUPERSEDED;
    }

    if (!vh_job_source_allowed(cf, job->source, err, errlen)) {
        return fail_job(db, job, err);
    }
    if (stat(job->source, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "source not found or not a file: %s", job->source);
        return fail_job(db, job, err);
    }

    if (vh_probe_source(cf, job->source, &probe) != 0) {
        snprintf(err, errlen, "%s", probe.error);
        return VH_JOB_RETRY;
    }
    if (!probe.ok) {
        snprintf(err, errlen, "%s", probe.error);
        vh_info("video %s failed: %s", job->video_id, err);
        return fail_job(db, job, err);
    }

    vh_ladder_plan(cf, &probe, &plan);
    vh_info("video %s: %dx%d %.3f fps %.1f s%s -> %d rung(s) %s..%s", job->video_id,
            probe.width, probe.height, probe.fps, probe.duration,
            probe.has_audio ? "" : " (no audio)", plan.n,
            plan.rungs[0].rung.name, plan.rungs[plan.n - 1].rung.name);

    if (vh_publish_tmpdir(cf, job->video_id, tmp, sizeof(tmp)) != 0) {
        snprintf(err, errlen, "cannot create a work directory in %s", cf->origin_dir);
        return VH_JOB_RETRY;
    }

    /*
     * Every encode gets its own prefix: URLs already served (and cached as
     * immutable) never change bytes.  The row switches to it last.  The
     * token is drawn before ffmpeg runs: the key URIs in the playlists name
     * it.  A version that never becomes the row's (the job fails, or is
     * superseded) leaves no key behind: the keys are written with the switch.
     */
    if (vh_publish_version(version, sizeof(version)) != 0) {
        snprintf(err, errlen, "cannot make a version token");
        goto out;
    }
    out_dir = tmp;
    if (cf->encrypt) {
        if (vh_keys_open(&keys, err, errlen) != 0) {
            goto out;
        }
        if (cf->key_rotation == 0) {
            /* one key, and ffmpeg's muxer encrypts with it */
            if (vh_keys_add(&keys, 0, 0) != 0
                || vh_keys_write_info(cf, &keys, job->video_id, version, 0,
                                      key_info, sizeof(key_info)) != 0)
            {
                snprintf(err, errlen, "cannot make the key of the version");
                goto out;
            }
            plan.key_info = key_info;
        } else {
            /* plain into a directory only the helper reads, encrypted below */
            snprintf(plain, sizeof(plain), "%s/.plain", tmp);
            if (mkdir(plain, 0700) != 0) {
                snprintf(err, errlen, "cannot create %s: %s", plain, strerror(errno));
                goto out;
            }
            out_dir = plain;
        }
    }

    if (plan.thumbs) {
        /* images are not encrypted: beside the renditions, never in .plain */
        snprintf(thumbs, sizeof(thumbs), "%s/" VH_THUMBS_DIR, tmp);
        snprintf(tiles, sizeof(tiles), "%s/.tiles", tmp);
        if (mkdir(thumbs, 0755) != 0 || mkdir(tiles, 0755) != 0) {
            snprintf(err, errlen, "cannot create %s: %s", tiles, strerror(errno));
            goto out;
        }
        plan.tiles_dir = tiles;
    }
    /* the rungs, then the audio-only rendition */
    nv = plan.n + (plan.audio_only ? 1 : 0);

    memset(&t, 0, sizeof(t));
    t.cf = cf;
    t.q = q;
    t.db = db;
    t.job = job;
    t.duration = probe.duration;
    t.last_beat = vh_now();

    lrc = vh_ladder_run(cf, job->source, &probe, &plan, out_dir, on_tick, &t,
                        err, errlen);
    if (lrc != 0) {
        if (t.superseded) {
            vh_job_superseded(job, "ffmpeg stopped");
            rc = VH_JOB_SUPERSEDED;
        } else if (t.lost) {
            rc = VH_JOB_LOST;
        } else if (abandon_requested(cf)) {
            rc = VH_JOB_ABANDONED;
        } else if (lrc == VH_LADDER_TIMEOUT) {
            /* the same file takes as long again: failed for good, not retried */
            vh_info("video %s failed: %s", job->video_id, err);
            rc = fail_job(db, job, err);
        }
        goto out;
    }

    if (out_dir != tmp) {
        /* key_rotation: each rendition encrypted, a key per period (keys.c) */
        for (i = 0; i < nv; i++) {
            const char *name = i < plan.n ? plan.rungs[i].rung.name
                                          : VH_AUDIO_ONLY_NAME;
            char        from[4400];

            snprintf(from, sizeof(from), "%s/%s", plain, name);
            snprintf(path, sizeof(path), "%s/%s", tmp, name);
            if (mkdir(path, 0755) != 0) {
                snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
                goto out;
            }
            if (vh_keys_encrypt_rendition(cf, &keys, job->video_id, version,
                                          from, path, err, errlen) != 0)
            {
                goto out;
            }
        }
        if (vh_rm_rf(plain) != 0) {
            snprintf(err, errlen, "cannot remove %s: %s", plain, strerror(errno));
            goto out;
        }
    }

    /* measure what ffmpeg wrote, and describe it in the master playlist */
    for (i = 0; i < nv; i++) {
        vh_playlist_stats_t  st;
        vh_variant_info_t    vi;
        const char          *name = i < plan.n ? plan.rungs[i].rung.name
                                               : VH_AUDIO_ONLY_NAME;
        char                 dir[4400];

        snprintf(dir, sizeof(dir), "%s/%s", tmp, name);
        snprintf(path, sizeof(path), "%s/index.m3u8", dir);
        text.len = 0;
        if (read_file(path, &text) != 0
            || vh_hls_playlist_stats(dir, text.data, &st) != 0)
        {
            snprintf(err, errlen, "ffmpeg wrote no usable playlist for %s", name);
            goto out;
        }
        if (st.max_segment > cf->segment_duration + 0.5) {
            vh_warn("video %s %s: a segment lasts %.3f s (target %d s)",
                    job->video_id, name, st.max_segment, cf->segment_duration);
        }
        snprintf(path, sizeof(path), "%s/%s", dir, st.first_segment);
        if (keys.n > 0) {
            /* a ciphertext: ffprobe reads a plain copy in the private directory */
            char plain_seg[4200];

            snprintf(plain_seg, sizeof(plain_seg), "%s/probe-%d.ts", keys.dir, i);
            if (vh_keys_crypt_file(keys.keys[0].key, keys.keys[0].first_segment,
                                   path, plain_seg, 0, err, errlen) != 0)
            {
                goto out;
            }
            snprintf(path, sizeof(path), "%s", plain_seg);
        }
        if (vh_probe_variant(cf, path, i >= plan.n, &vi) != 0) {
            snprintf(err, errlen, "cannot probe the %s output", name);
            goto out;
        }
        memset(&vars[i], 0, sizeof(vars[i]));
        snprintf(vars[i].name, sizeof(vars[i].name), "%s", name);
        vars[i].width = vi.width;
        vars[i].height = vi.height;
        vars[i].fps = vi.fps > 0 || i >= plan.n ? vi.fps : plan.fps;
        vars[i].bandwidth = st.peak_bandwidth;
        vars[i].average_bandwidth = st.average_bandwidth;
        snprintf(vars[i].codecs, sizeof(vars[i].codecs), "%s", vi.codecs);
        snprintf(vars[i].playlist, sizeof(vars[i].playlist), "%s/index.m3u8", name);
        vars[i].mpegts_start = vi.mpegts_start;
        if (i == 0) {
            duration = st.total_duration;
        }
    }
    duration = probe.duration;
    /* the key files are no longer needed: the keys stay in memory for the switch */
    vh_keys_drop_dir(&keys);

    /*
     * The video's published captions go into the version (subs/), listed by
     * its master; a caption published from now until the switch is caught
     * by the check in it (vh_subs_switch)
     */
    if (vh_subs_load(db, job->video_id, &subs) != 0) {
        snprintf(err, errlen, "cannot read the video's captions");
        goto out;
    }
    if (subs.n > 0
        && vh_subs_write_all(cf, &subs, tmp, duration, vars[0].mpegts_start,
                             job->video_id, err, errlen) != 0)
    {
        goto out;
    }
    if (vh_hls_master(vars, nv, subs.list, subs.n, &master) != 0
        || vh_hls_renditions_json(vars, nv, &rend) != 0)
    {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    snprintf(path, sizeof(path), "%s/master.m3u8", tmp);
    if (vh_write_file_atomic(path, master.data, master.len) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        goto out;
    }

    if (plan.thumbs) {
        if (write_storyboard(cf, &plan, thumbs, duration, job) == 0) {
            storyboard = 1;
        } else if (vh_rm_rf(thumbs) != 0) {
            /* a lecture without previews is still a lecture; but not half of them */
            snprintf(err, errlen, "cannot remove %s: %s", thumbs, strerror(errno));
            goto out;
        }
        if (vh_rm_rf(tiles) != 0) {
            snprintf(err, errlen, "cannot remove %s: %s", tiles, strerror(errno));
            goto out;
        }
    }

    snprintf(path, sizeof(path), "%s/poster.jpg", tmp);
    if (vh_poster_run(cf, job->source, &probe, path, err, errlen) != 0) {
        vh_warn("video %s: %s (published without a poster)", job->video_id, err);
        err[0] = '\0';
    }

    /* another helper may have taken the job while we were slow */
    if (vh_queue_heartbeat(q, job) != 0) {
        rc = VH_JOB_LOST;
        goto out;
    }
    /* nor publish what a newer upload replaced (the switch checks again) */
    rows = vh_db_current(db, job->video_id, job->source);
    if (rows < 0) {
        snprintf(err, errlen, "cannot read the videos row");
        goto out;
    }
    if (rows != VH_DB_OURS) {
        vh_job_superseded(job, "before publishing");
        rc = VH_JOB_SUPERSEDED;
        goto out;
    }
    snprintf(prefix, sizeof(prefix), "hls/%s/%s/", job->video_id, version);
    if (cf->publish_s3) {
        /* variants and segments first, master.m3u8 last; tmp is removed below */
        if (vh_s3_publish(cf, job->video_id, prefix, tmp, on_tick, &t, err,
                          errlen) != 0)
        {
            if (t.lost) {
                rc = VH_JOB_LOST;
            } else if (abandon_requested(cf)) {
                rc = VH_JOB_ABANDONED;
            }
            goto out;
        }
        if (vh_rm_rf(tmp) != 0) {
            vh_warn("cannot remove %s: %s", tmp, strerror(errno));
        }
    } else if (vh_publish_commit(cf, job->video_id, version, tmp, err,
                                 errlen) != 0)
    {
        goto out;
    }
    tmp[0] = '\0';

    /*
     * The switch: viewers of the old version keep it until old_version_grace.
     * In its transaction, under the caption lock: a caption job may have
     * published into the previous version since the captions were read
     * (vh_subs_switch writes what this version lacks before COMMIT)
     */
    sw.cf = cf;
    sw.video_id = job->video_id;
    sw.prefix = prefix;
    sw.subs = &subs;
    rows = vh_db_ready(db, job->video_id, job->source, duration, rend.data,
                       prefix, version, cf->encrypt ? &keys : NULL, vh_subs_switch,
                       &sw);
    if (rows == VH_DB_IN_TX_FAILED) {
        /* no row ever pointed at it: gone now (local), for the prune job (S3) */
        snprintf(err, errlen, "the check of its captions before the switch failed"
                 " (the log says why: the database, or captions that changed during"
                 " the encode and could not be published into its version): the"
                 " switch is rolled back");
        if (cf->publish_s3 || vh_publish_discard(cf, job->video_id, version) != 0) {
            vh_db_orphan(db, job->video_id, prefix);
        }
        goto out;
    }
    if (rows < 0) {
        snprintf(err, errlen, "published, but cannot update the videos row");
        goto out;
    }
    if (rows == 0) {
        /*
         * A newer upload (or an undo) took the row between the check above
         * and here: no row ever pointed at this version.  Local: removed
         * now.  S3 (the helper cannot delete): recorded in videos_superseded,
         * where the operator's prune job finds it like any old version.
         */
        vh_job_superseded(job, "its version was never used");
        if (cf->publish_s3 || vh_publish_discard(cf, job->video_id, version) != 0) {
            vh_db_orphan(db, job->video_id, prefix);
        }
        rc = VH_JOB_SUPERSEDED;
        goto out;
    }
    vh_info("video %s ready: %d rung(s)%s%s, %.1f s of video in %.1f s (job %s,"
            " version %s%s%d key(s), %d caption track(s))", job->video_id, plan.n,
            plan.audio_only ? " + audio only" : "",
            storyboard ? " + storyboard" : "", duration,
            vh_now() - started, job->id, version,
            cf->encrypt ? ", AES-128, " : ", not encrypted, ", keys.n, subs.n);
    rc = VH_JOB_DONE;

out:
    if (tmp[0] != '\0' && vh_rm_rf(tmp) != 0) {
        vh_warn("cannot remove %s: %s", tmp, strerror(errno));
    }
    vh_publish_tmpdir_done();
    vh_keys_close(&keys);
    vh_subs_free(&subs);
    vh_buf_free(&text);
    vh_buf_free(&master);
    vh_buf_free(&rend);
    return rc;
}
