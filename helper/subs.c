/*
 * Captions in versions (issue #23, docs/helper.md "Captions"): the caption
 * job, and the subtitle tracks of every version.
 *
 * A caption job (kind captions) reads one uploaded WebVTT or SRT file,
 * validates and normalizes it (captions.c), writes (or uploads) its track,
 * subs/<lang>/<revision>/ (index.m3u8 + seg_NNNNN.vtt), into the video's
 * current version when it is ready, holding no lock and no row (a new
 * revision is invisible until a master names it; an upload of the same
 * language never waits on a long S3 upload), then publishes it in ONE
 * short transaction holding the video's caption lock (vh_db_caption_lock):
 * the video_captions row gets the WebVTT and the revision, and the
 * version's master.m3u8 is rewritten to list every published caption of
 * the video.  Nothing is re-encoded: the master is rebuilt from
 * videos.renditions.  A failure before COMMIT rolls the row back and the
 * job is retried; the track written first is then removed (local) or left
 * unnamed (S3), as when the job turns out superseded.
 *
 * A video job writes the video's published captions into its work
 * directory (so the new version has them from its first byte), and its
 * switch's transaction takes the same lock, reads them again and, if they
 * changed meanwhile (a caption job published into the previous version),
 * writes the tracks the new version lacks and its master before COMMIT: a
 * failure there fails the switch, so a ready version lists every caption.
 *
 * Segment URLs are immutable: every publish has a fresh revision, so a
 * replacement never reuses a URL; older revisions stay in the version
 * (they are small) until the version is removed.  Locally, a track is
 * written into a hidden directory and renamed into place, then the master
 * is replaced (temp file + rename).  On S3, the track goes up first, the
 * master last.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "vodlms_helper.h"

/* ---------------------------------------------------------------- fields */

/* ^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}$ (nginx's rule, and the table's) */
static int
valid_lang(const char *s)
{
    size_t  n = 0, sub = 0, i;

    while (s[n] != '\0' && ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z'))) {
        n++;
    }
    if (n < 2 || n > 3) {
        return 0;
    }
    while (s[n] == '-') {
        n++;
        for (i = 0; s[n] != '\0' && ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z')
                                     || (s[n] >= '0' && s[n] <= '9')); i++)
        {
            n++;
        }
        if (i < 1 || i > 8 || ++sub > 3) {
            return 0;
        }
    }
    return s[n] == '\0';
}

/*
 * 1..64 bytes of what the master writes as NAME="..." (vh_hls_label_ok):
 * valid UTF-8, no control character (C0, DEL, C1), no '"', U+2028, U+2029,
 * "#EXT" or "{$"; refused here, the row fails with a clear error rather
 * than every later master of the video
 */
static int
valid_label(const char *s)
{
    size_t  n = strlen(s);

    return n >= 1 && n <= VH_LABEL_MAX && vh_hls_label_ok(s);
}

int
vh_caption_job_fields(const vh_job_t *job, char *err, size_t errlen)
{
    if (job->lang == NULL || !valid_lang(job->lang)) {
        snprintf(err, errlen, "the lang field is missing or not a language tag"
                 " (^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}$)");
        return -1;
    }
    if (job->label != NULL && job->label[0] != '\0' && !valid_label(job->label)) {
        snprintf(err, errlen, "the label field is not 1..64 bytes of UTF-8"
                 " without control characters, '\"', U+2028, U+2029, \"#EXT\" or \"{$\"");
        return -1;
    }
    if (job->is_default != NULL && strcmp(job->is_default, "0") != 0
        && strcmp(job->is_default, "1") != 0)
    {
        snprintf(err, errlen, "the default field is not 0 or 1");
        return -1;
    }
    return vh_caption_remove_fields(job, err, errlen);
}

/* ---------------------------------------------------------------- a version */

/* what a version's master is made of: its renditions, where its media starts */
typedef struct {
    vh_variant_t  vars[VH_MAX_RUNGS + 1];
    int           n;
    long long     mpegts;           /* the first video rung's, or the default */
    long long     duration_ms;
} version_t;

/* a string of the renditions JSON that goes into the master as is */
static int
json_field(json_t *o, const char *key, char *out, size_t len)
{
    const char  *v = json_string_value(json_object_get(o, key));
    size_t       i;

    if (v == NULL || strlen(v) >= len) {
        return -1;
    }
    for (i = 0; v[i] != '\0'; i++) {
        if ((unsigned char) v[i] < 0x20 || v[i] == '"' || v[i] == 0x7f) {
            return -1;
        }
    }
    memcpy(out, v, i + 1);
    return 0;
}

/*
 * videos.renditions (vh_hls_renditions_json) back into variants: the master
 * they describe is the one the encode wrote, without captions.  0 or -1.
 */
static int
parse_renditions(const char *text, double duration, version_t *ver,
    char *err, size_t errlen)
{
    json_t        *root, *o;
    json_error_t   jerr;
    size_t         i;

    memset(ver, 0, sizeof(*ver));
    root = text != NULL ? json_loads(text, 0, &jerr) : NULL;
    if (!json_is_array(root) || json_array_size(root) == 0
        || json_array_size(root) > VH_MAX_RUNGS + 1)
    {
        snprintf(err, errlen, "videos.renditions is not the helper's list of renditions");
        json_decref(root);
        return -1;
    }
    json_array_foreach(root, i, o) {
        vh_variant_t  *v = &ver->vars[ver->n];
        json_t        *m;

        if (json_field(o, "name", v->name, sizeof(v->name)) != 0
            || json_field(o, "codecs", v->codecs, sizeof(v->codecs)) != 0
            || json_field(o, "playlist", v->playlist, sizeof(v->playlist)) != 0
            || !json_is_integer(json_object_get(o, "bandwidth")))
        {
            snprintf(err, errlen, "videos.renditions[%zu] lacks a name, codecs,"
                     " playlist or bandwidth", i);
            json_decref(root);
            return -1;
        }
        v->bandwidth = (long) json_integer_value(json_object_get(o, "bandwidth"));
        v->average_bandwidth = (long) json_integer_value(json_object_get(o,
                                                         "average_bandwidth"));
        v->width = (int) json_integer_value(json_object_get(o, "width"));
        v->height = (int) json_integer_value(json_object_get(o, "height"));
        v->fps = json_number_value(json_object_get(o, "frame_rate"));
        m = json_object_get(o, "mpegts_start");
        v->mpegts_start = json_is_integer(m) ? (long long) json_integer_value(m) : 0;
        if (ver->mpegts == 0 && v->width > 0) {
            /* the first video rung's: where the player's timeline starts */
            ver->mpegts = v->mpegts_start > 0 ? v->mpegts_start
                                              : VH_CAPTION_MPEGTS_DEFAULT;
        }
        ver->n++;
    }
    json_decref(root);
    if (ver->mpegts == 0) {
        ver->mpegts = ver->vars[0].mpegts_start > 0 ? ver->vars[0].mpegts_start
                                                    : VH_CAPTION_MPEGTS_DEFAULT;
    }
    ver->duration_ms = llround(duration * 1000);
    if (ver->duration_ms <= 0) {
        snprintf(err, errlen, "the video has no duration");
        return -1;
    }
    return 0;
}

/* "hls/<id>/" or "hls/<id>/<version>/": a prefix the helper made */
static int
helper_prefix(const char *video_id, const char *prefix)
{
    size_t      n = strlen(video_id);
    const char *rest;
    char        token[VH_VERSION_TOKEN_LEN + 1];

    if (strncmp(prefix, "hls/", 4) != 0 || strncmp(prefix + 4, video_id, n) != 0
        || prefix[4 + n] != '/')
    {
        return 0;
    }
    rest = prefix + 4 + n + 1;
    if (*rest == '\0') {
        return 1;
    }
    if (strlen(rest) != VH_VERSION_TOKEN_LEN + 1 || rest[VH_VERSION_TOKEN_LEN] != '/') {
        return 0;
    }
    memcpy(token, rest, VH_VERSION_TOKEN_LEN);
    token[VH_VERSION_TOKEN_LEN] = '\0';
    return vh_publish_is_version(token);
}

/* stored WebVTT, normalized by us: parsed again without the upload's limits */
static int
parse_stored(const vh_db_caption_t *c, vh_captions_t *caps, char *err,
    size_t errlen)
{
    vh_caption_limits_t  lim = { VH_CAPTION_MAX_VTT + 1, 10000000, VH_CAPTION_MAX_VTT,
                                 100000 };
    char                 why[512];

    memset(caps, 0, sizeof(*caps));
    if (c->vtt == NULL
        || vh_captions_parse(c->vtt, strlen(c->vtt), &lim, caps, why, sizeof(why)) != 0)
    {
        snprintf(err, errlen, "the stored WebVTT of %s does not parse: %s", c->lang,
                 c->vtt == NULL ? "none" : why);
        vh_captions_free(caps);
        return -1;
    }
    return 0;
}

/*
 * About how many bytes the segments of a track take: a cue is written into
 * every segment it overlaps, so cues that overlap each other and many
 * segments multiply (2 MiB of cues that all run to the end of a six-hour
 * lecture would be 720 copies of 2 MiB at 30 s a segment)
 */
static long long
track_bytes(const vh_captions_t *caps, long long seg_ms, long long duration_ms)
{
    long long  nseg = (long long) vh_captions_segments(seg_ms, duration_ms);
    long long  total = nseg * 64, first, last, end;
    size_t     k;

    for (k = 0; k < caps->n; k++) {
        const vh_cue_t  *c = &caps->cues[k];

        if (c->start_ms >= duration_ms) {
            continue;                           /* left out of the segments */
        }
        end = c->end_ms < duration_ms ? c->end_ms : duration_ms;
        first = c->start_ms / seg_ms;
        last = end > c->start_ms ? (end - 1) / seg_ms : first;
        if (last >= nseg) {
            last = nseg - 1;
        }
        total += (last - first + 1)
                 * (long long) ((c->text ? strlen(c->text) : 0)
                                + (c->settings ? strlen(c->settings) : 0) + 32);
    }
    return total;
}

/* 1 (why set) when a track's segments for duration_ms are over caption_max_track_bytes */
static int
track_too_large(const vh_conf_t *cf, const vh_captions_t *caps, long long duration_ms,
    char *why, size_t whylen)
{
    long long  seg_ms = (long long) cf->caption_segment_duration * 1000;
    long long  n = track_bytes(caps, seg_ms, duration_ms);

    if (n <= cf->caption_max_track_bytes) {
        return 0;
    }
    snprintf(why, whylen, "caption_too_large: segmented for the video's %.3f s, its"
             " cues would take about %lld bytes (a cue is in every %d s segment it"
             " overlaps), over caption_max_track_bytes (%ld)", duration_ms / 1000.0, n,
             cf->caption_segment_duration, cf->caption_max_track_bytes);
    return 1;
}

/* the master of a version: its renditions and every published caption */
static int
build_master(const version_t *ver, const vh_db_captions_t *cs, vh_buf_t *out)
{
    vh_subtitle_t  *s = NULL;
    char          (*uri)[128] = NULL;
    int             i, rc;

    if (cs->n > 0) {
        s = calloc(cs->n, sizeof(*s));
        uri = calloc(cs->n, sizeof(*uri));
        if (s == NULL || uri == NULL) {
            free(s);
            free(uri);
            return -1;
        }
    }
    for (i = 0; i < cs->n; i++) {
        snprintf(uri[i], sizeof(uri[i]), VH_SUBS_DIR "/%s/%s/index.m3u8",
                 cs->c[i].lang, cs->c[i].revision);
        s[i].lang = cs->c[i].lang;
        s[i].label = cs->c[i].label;
        s[i].uri = uri[i];
        s[i].is_default = cs->c[i].is_default;
    }
    rc = vh_hls_master(ver->vars, ver->n, s, cs->n, out);
    free(s);
    free(uri);
    return rc;
}

/*
 * Publishes a version's captions: the tracks marked in need (and, on a
 * local origin, any published track missing from the version), then the
 * master listing every caption in cs.  Inside the caller's transaction.
 * 0, or -1 with err (the caller rolls back and retries).
 */
static int
publish_version(const vh_conf_t *cf, const char *video_id, const char *prefix,
    const version_t *ver, const vh_db_captions_t *cs, const int *need,
    char *err, size_t errlen)
{
    char           dir[4096], path[4400];
    vh_buf_t          master = { 0 };
    vh_captions_t     caps;
    vh_db_captions_t  listed = { 0 };
    struct stat       sb;
    int               i, written, staged = 0, rc = -1;

    if (cf->publish_s3) {
        /* a work directory holding what goes up: the new tracks, the master */
        if (vh_publish_tmpdir(cf, video_id, dir, sizeof(dir)) != 0) {
            snprintf(err, errlen, "cannot create a work directory in %s", cf->origin_dir);
            return -1;
        }
        staged = 1;
    } else {
        snprintf(dir, sizeof(dir), "%s/%s", cf->origin_dir, prefix);
        dir[strlen(dir) - 1] = '\0';                /* the prefix's '/' */
        if (lstat(dir, &sb) != 0) {
            snprintf(err, errlen, "the version %s is not on the origin: %s", dir,
                     strerror(errno));
            return -1;
        }
        if (!S_ISDIR(sb.st_mode)) {
            snprintf(err, errlen, "the version %s is not a directory", dir);
            return -1;
        }
    }

    /* the tracks the master lists: shallow copies of cs's */
    listed.n = 0;
    listed.c = calloc(cs->n > 0 ? cs->n : 1, sizeof(*listed.c));
    if (listed.c == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (i = 0; i < cs->n; i++) {
        if (!need[i]) {
            if (staged) {
                listed.c[listed.n++] = cs->c[i];
                continue;
            }
            snprintf(path, sizeof(path), "%s/" VH_SUBS_DIR "/%s/%s/index.m3u8",
                     dir, cs->c[i].lang, cs->c[i].revision);
            if (stat(path, &sb) == 0) {
                listed.c[listed.n++] = cs->c[i];
                continue;
            }
        }
        if (parse_stored(&cs->c[i], &caps, err, errlen) != 0
            || track_too_large(cf, &caps, ver->duration_ms, err, errlen))
        {
            /* never every other language's publish lost over one track */
            vh_error("video %s: the %s captions: %s: left out of %s", video_id,
                     cs->c[i].lang, err, prefix);
            err[0] = '\0';
            vh_captions_free(&caps);
            continue;
        }
        written = vh_subs_write_track(cf, dir, cs->c[i].lang, cs->c[i].revision, &caps,
                                      ver->duration_ms, ver->mpegts, video_id, err,
                                      errlen);
        vh_captions_free(&caps);
        if (written != 0) {
            goto out;
        }
        listed.c[listed.n++] = cs->c[i];
    }

    if (build_master(ver, &listed, &master) != 0) {
        snprintf(err, errlen, "out of memory writing the master");
        goto out;
    }
    snprintf(path, sizeof(path), "%s/master.m3u8", dir);
    if (vh_write_file_atomic(path, master.data, master.len) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        goto out;
    }
    if (staged && vh_s3_publish(cf, video_id, prefix, dir, NULL, NULL, err, errlen) != 0) {
        goto out;
    }
    rc = 0;
out:
    if (staged) {
        if (vh_rm_rf(dir) != 0) {
            vh_warn("cannot remove %s: %s", dir, strerror(errno));
        }
        vh_publish_tmpdir_done();
    }
    free(listed.c);
    vh_buf_free(&master);
    return rc;
}

/*
 * In the caption transaction: the video's current version, and whether the
 * captions can go into it now.  1: yes (ver filled), 0: not now (logged:
 * stored, its encode publishes them), -1: error (rolled back).
 */
static int
current_version(vh_db_t *db, const char *video_id, vh_db_video_t *video,
    version_t *ver)
{
    char  why[256];

    if (vh_db_caption_video(db, video_id, video) != 0) {
        return -1;
    }
    if (!video->found || strcmp(video->status, "ready") != 0
        || video->storage_prefix[0] == '\0')
    {
        return 0;
    }
    if (!helper_prefix(video_id, video->storage_prefix)) {
        vh_warn("video %s: storage_prefix %s is not one the helper made: captions"
                " stored, not published into it", video_id, video->storage_prefix);
        return 0;
    }
    if (parse_renditions(video->renditions, video->duration, ver, why, sizeof(why)) != 0) {
        vh_warn("video %s: %s: captions stored, not published into %s", video_id,
                why, video->storage_prefix);
        return 0;
    }
    return 1;
}

/* ---------------------------------------------------------------- the caption job */

/*
 * A publish whose COMMIT failed wrote its track and the master already:
 * the master names a revision no row has.  It is written again from what
 * the rows say, under the lock (the tracks are there: only the master).
 * Best effort: a failure is logged, and the next publish writes it anyway.
 */
static void
restore_master(const vh_conf_t *cf, vh_db_t *db, const char *video_id)
{
    vh_db_video_t     video;
    vh_db_captions_t  cs = { 0 };
    version_t         ver;
    char              err[1024];
    int              *need = NULL, now;

    memset(&video, 0, sizeof(video));
    if (vh_db_caption_lock(db, video_id) != 0) {
        vh_error("video %s: cannot take the caption lock to restore its master",
                 video_id);
        return;
    }
    now = current_version(db, video_id, &video, &ver);
    if (now <= 0) {
        vh_db_rollback(db);
        goto out;
    }
    if (vh_db_caption_list_tx(db, video_id, 1, &cs) != 0) {
        vh_error("video %s: cannot read its captions to restore its master", video_id);
        goto out;
    }
    need = calloc(cs.n > 0 ? cs.n : 1, sizeof(*need));
    if (need == NULL
        || publish_version(cf, video_id, video.storage_prefix, &ver, &cs, need, err,
                           sizeof(err)) != 0)
    {
        vh_error("video %s: its master in %s may name captions not published: %s",
                 video_id, video.storage_prefix, need ? err : "out of memory");
    } else {
        vh_info("video %s: its master in %s written again from the published"
                " captions (%d track(s))", video_id, video.storage_prefix, cs.n);
    }
    vh_db_rollback(db);             /* nothing written in it: only read under the lock */
out:
    free(need);
    vh_db_captions_free(&cs);
    vh_db_video_free(&video);
}

/* a new language past caption_max_tracks (cs: the published ones): 1 with why */
static int
too_many(const vh_conf_t *cf, const vh_db_captions_t *cs, const char *lang, char *why,
    size_t whylen)
{
    int  i;

    for (i = 0; i < cs->n; i++) {
        if (!strcmp(cs->c[i].lang, lang)) {
            return 0;               /* a replacement */
        }
    }
    if (cs->n < cf->caption_max_tracks) {
        return 0;
    }
    snprintf(why, whylen, "caption_too_many: the video has %d caption languages"
             " published, caption_max_tracks (%d): replace one of them instead",
             cs->n, cf->caption_max_tracks);
    return 1;
}

/*
 * Step 4a: the new revision's track into the video's current version,
 * outside any transaction (no lock, no row held), after the limits that
 * would refuse it.  at: the storage_prefix written into ("" when none: the
 * video is not ready, or its version is gone).  0, 1 (refused: why), -1 (err)
 */
static int
pre_publish(const vh_conf_t *cf, vh_db_t *db, const vh_job_t *job,
    const vh_captions_t *caps, const char *revision, char *at, size_t atlen,
    char *why, size_t whylen, char *err, size_t errlen)
{
    vh_db_video_t     video;
    vh_db_captions_t  cs = { 0 };
    version_t         ver;
    char              dir[4096];
    int               w, now, rc = -1;

    at[0] = '\0';
    memset(&video, 0, sizeof(video));
    if (vh_db_captions(db, job->video_id, 0, &cs) != 0) {
        snprintf(err, errlen, "cannot read the video's captions");
        return -1;
    }
    if (too_many(cf, &cs, job->lang, why, whylen)) {
        rc = 1;
        goto out;
    }
    now = current_version(db, job->video_id, &video, &ver);
    if (now < 0) {
        snprintf(err, errlen, "cannot read the videos row");
        goto out;
    }
    if (video.found && video.duration > 0
        && track_too_large(cf, caps, llround(video.duration * 1000), why, whylen))
    {
        rc = 1;
        goto out;
    }
    if (now == 0) {
        rc = 0;                     /* stored only: its encode publishes it */
        goto out;
    }
    if (cf->publish_s3) {
        /* a work directory holding the track alone: no master goes up now */
        if (vh_publish_tmpdir(cf, job->video_id, dir, sizeof(dir)) != 0) {
            snprintf(err, errlen, "cannot create a work directory in %s", cf->origin_dir);
            goto out;
        }
        w = vh_subs_write_track(cf, dir, job->lang, revision, caps, ver.duration_ms,
                                ver.mpegts, job->video_id, err, errlen);
        if (w == 0) {
            w = vh_s3_publish_tree(cf, job->video_id, video.storage_prefix, dir, NULL,
                                   NULL, err, errlen);
        }
        if (vh_rm_rf(dir) != 0) {
            vh_warn("cannot remove %s: %s", dir, strerror(errno));
        }
        vh_publish_tmpdir_done();
        if (w != 0) {
            goto out;
        }
    } else {
        snprintf(dir, sizeof(dir), "%s/%s", cf->origin_dir, video.storage_prefix);
        dir[strlen(dir) - 1] = '\0';                /* the prefix's '/' */
        w = vh_subs_write_track(cf, dir, job->lang, revision, caps, ver.duration_ms,
                                ver.mpegts, job->video_id, err, errlen);
        if (w == VH_SUBS_GONE) {
            /* switched and swept since it was read: the transaction sees the new one */
            vh_info("video %s captions %s: %s", job->video_id, job->lang, err);
            err[0] = '\0';
            rc = 0;
            goto out;
        }
        if (w != 0) {
            goto out;
        }
    }
    snprintf(at, atlen, "%s", video.storage_prefix);
    rc = 0;
out:
    vh_db_captions_free(&cs);
    vh_db_video_free(&video);
    return rc;
}

/*
 * The track of step 4a when no row will name it (superseded, refused, or
 * rolled back before COMMIT): removed from a local version; on S3 the
 * helper deletes nothing: left unnamed, it goes with the version's prefix
 */
static void
drop_pre(const vh_conf_t *cf, const vh_job_t *job, const char *at,
    const char *revision)
{
    char  path[4400];

    if (at[0] == '\0') {
        return;
    }
    if (cf->publish_s3) {
        vh_info("video %s captions %s: the track %s" VH_SUBS_DIR "/%s/%s/ stays in the"
                " bucket, named by no master (it goes with the version)", job->video_id,
                job->lang, at, job->lang, revision);
        return;
    }
    snprintf(path, sizeof(path), "%s/%s" VH_SUBS_DIR "/%s/%s", cf->origin_dir, at,
             job->lang, revision);
    if (vh_rm_rf(path) != 0) {
        vh_warn("video %s captions %s: cannot remove %s, which no row names: %s",
                job->video_id, job->lang, path, strerror(errno));
    }
}

static int
caption_fail(vh_db_t *db, const vh_job_t *job, const char *error)
{
    int rows = vh_db_caption_failed(db, job->video_id, job->lang, job->source, error);

    if (rows < 0) {
        return VH_JOB_RETRY;
    }
    if (rows == 0) {
        vh_job_superseded(job, "not marked failed");
        return VH_JOB_SUPERSEDED;
    }
    vh_info("video %s captions %s failed: %s (job %s)", job->video_id, job->lang,
            error, job->id);
    return VH_JOB_DONE;
}

/* the uploaded file, refused over caption_max_bytes before it is read: 0, 1 (refused), -1 */
static int
read_caption(const vh_conf_t *cf, const vh_job_t *job, vh_buf_t *b, char *why,
    size_t whylen)
{
    struct stat  sb;
    char         chunk[65536];
    ssize_t      n;
    int          fd;

    fd = open(job->source, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        vh_warn("video %s captions %s: cannot read %s: %s", job->video_id, job->lang,
                job->source, fd < 0 ? strerror(errno) : "not a regular file");
        snprintf(why, whylen, "caption_source: the uploaded file is gone or is not"
                 " a regular file");
        if (fd >= 0) {
            close(fd);
        }
        return 1;
    }
    if (sb.st_size > cf->caption_max_bytes) {
        snprintf(why, whylen, "caption_too_large: the file is %lld bytes, over"
                 " caption_max_bytes (%ld)", (long long) sb.st_size,
                 cf->caption_max_bytes);
        close(fd);
        return 1;
    }
    for (;;) {
        n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        if (b->len + (size_t) n > (size_t) cf->caption_max_bytes) {
            snprintf(why, whylen, "caption_too_large: the file grew over"
                     " caption_max_bytes (%ld)", cf->caption_max_bytes);
            close(fd);
            return 1;
        }
        if (vh_buf_append(b, chunk, (size_t) n) != 0) {
            close(fd);
            return -1;
        }
    }
    close(fd);
    if (n < 0) {
        vh_error("video %s captions %s: read %s: %s", job->video_id, job->lang,
                 job->source, strerror(errno));
        return -1;
    }
    return 0;
}

int
vh_caption_job_run(const vh_conf_t *cf, vh_queue_t *q, vh_db_t *db,
    vh_job_t *job, char *err, size_t errlen)
{
    vh_caption_limits_t  lim;
    vh_captions_t        caps;
    vh_buf_t             file = { 0 }, vtt = { 0 };
    vh_db_video_t        video;
    vh_db_captions_t     cs = { 0 };
    version_t            ver;
    const char          *label;
    char                 why[1024], revision[VH_VERSION_TOKEN_LEN + 1], at[256];
    int                 *need = NULL, is_default, i, rows, now, rc = VH_JOB_RETRY;

    err[0] = '\0';
    at[0] = '\0';
    memset(&caps, 0, sizeof(caps));
    memset(&video, 0, sizeof(video));
    label = job->label != NULL && job->label[0] != '\0' ? job->label : job->lang;
    is_default = job->is_default != NULL && !strcmp(job->is_default, "1");

    /* 2. still the language's newest upload?  Nothing is read otherwise */
    rows = vh_db_caption_start(db, job->video_id, job->lang, job->source);
    if (rows < 0) {
        snprintf(err, errlen, "cannot update the video_captions row");
        return VH_JOB_RETRY;
    }
    if (rows != VH_DB_OURS) {
        vh_job_superseded(job, rows == VH_DB_NO_ROW ? "no caption row (the video"
                          " is gone?)" : "before it started");
        return VH_JOB_SUPERSEDED;
    }

    /* 3. read, validate, convert: refused -> failed, nothing published */
    if (!vh_job_source_allowed(cf, job->source, why, sizeof(why))) {
        vh_warn("video %s captions %s: %s", job->video_id, job->lang, why);
        return caption_fail(db, job, "caption_source: the uploaded file is outside"
                            " the spool (source_root)");
    }
    rows = read_caption(cf, job, &file, why, sizeof(why));
    if (rows != 0) {
        vh_buf_free(&file);
        if (rows < 0) {
            snprintf(err, errlen, "cannot read the caption file");
            return VH_JOB_RETRY;
        }
        return caption_fail(db, job, why);
    }
    lim.max_bytes = (size_t) cf->caption_max_bytes;
    lim.max_cues = (size_t) cf->caption_max_cues;
    lim.max_cue_bytes = (size_t) cf->caption_max_cue_bytes;
    lim.max_cue_lines = (size_t) cf->caption_max_cue_lines;
    rows = vh_captions_parse(file.data ? file.data : "", file.len, &lim, &caps, why,
                             sizeof(why));
    vh_buf_free(&file);
    if (rows == VH_CAPTIONS_NOMEM) {
        snprintf(err, errlen, "out of memory reading the captions");
        return VH_JOB_RETRY;            /* ours, not the file's */
    }
    if (rows != 0) {
        return caption_fail(db, job, why);
    }
    if (vh_captions_vtt(&caps, &vtt) != 0) {
        snprintf(err, errlen, "out of memory writing the WebVTT");
        goto out;
    }
    if (vtt.len > VH_CAPTION_MAX_VTT) {
        snprintf(why, sizeof(why), "caption_too_large: the WebVTT made of it is %zu"
                 " bytes, over %d", vtt.len, VH_CAPTION_MAX_VTT);
        rc = caption_fail(db, job, why);
        goto out;
    }
    if (vh_queue_heartbeat(q, job) != 0) {
        rc = VH_JOB_LOST;
        goto out;
    }
    if (vh_publish_version(revision, sizeof(revision)) != 0) {
        snprintf(err, errlen, "cannot make a revision token");
        goto out;
    }

    /*
     * 4a. the track, before the transaction: into the video's current
     * version (uploaded, on S3: 720 PUTs for a 6 h lecture), holding no
     * lock and no row, so an upload of the same language never waits on it.
     * A new revision's directory is invisible until a master names it.
     */
    rows = pre_publish(cf, db, job, &caps, revision, at, sizeof(at), why, sizeof(why),
                       err, errlen);
    if (rows != 0) {
        if (rows > 0) {
            rc = caption_fail(db, job, why);
        }
        goto out;
    }
    if (vh_queue_heartbeat(q, job) != 0) {
        drop_pre(cf, job, at, revision);
        rc = VH_JOB_LOST;
        goto out;
    }

    /* 4b. a short transaction, under the video's caption lock: the row, the master */
    if (vh_db_caption_lock(db, job->video_id) != 0) {
        snprintf(err, errlen, "cannot take the video's caption lock");
        goto dropped;
    }
    /*
     * a new language past caption_max_tracks (at most VH_HLS_MAX_SUBTITLES,
     * what a master lists), whether the video is ready or not: every version
     * carries them all, and its encode lists them
     */
    if (vh_db_caption_list_tx(db, job->video_id, 0, &cs) != 0) {
        snprintf(err, errlen, "cannot read the video's captions");
        goto dropped;
    }
    if (too_many(cf, &cs, job->lang, why, sizeof(why))) {
        vh_db_rollback(db);
        drop_pre(cf, job, at, revision);
        rc = caption_fail(db, job, why);
        goto out;
    }
    vh_db_captions_free(&cs);
    rows = vh_db_caption_publish_row(db, job->video_id, job->lang, job->source,
                                     vtt.data, revision, label, is_default,
                                     (long) caps.n);
    if (rows < 0) {
        snprintf(err, errlen, "cannot update the video_captions row");
        goto dropped;
    }
    if (rows == 0) {
        vh_db_rollback(db);
        drop_pre(cf, job, at, revision);
        vh_job_superseded(job, "before publishing");
        rc = VH_JOB_SUPERSEDED;
        goto out;
    }
    now = current_version(db, job->video_id, &video, &ver);
    if (now < 0) {
        snprintf(err, errlen, "cannot read the videos row");
        goto dropped;
    }
    /* against the video's duration (a re-encode keeps the previous one meanwhile) */
    if (video.found && video.duration > 0
        && track_too_large(cf, &caps, llround(video.duration * 1000), why, sizeof(why)))
    {
        vh_db_rollback(db);
        drop_pre(cf, job, at, revision);
        rc = caption_fail(db, job, why);
        goto out;
    }
    if (now > 0) {
        if (vh_db_caption_list_tx(db, job->video_id, 1, &cs) != 0) {
            snprintf(err, errlen, "cannot read the video's captions");
            goto dropped;
        }
        need = calloc(cs.n > 0 ? cs.n : 1, sizeof(*need));
        if (need == NULL) {
            vh_db_rollback(db);
            snprintf(err, errlen, "out of memory");
            goto dropped;
        }
        for (i = 0; i < cs.n; i++) {
            /* written in 4a, unless the video switched to another version since */
            need[i] = !strcmp(cs.c[i].lang, job->lang)
                      && strcmp(video.storage_prefix, at) != 0;
        }
        if (publish_version(cf, job->video_id, video.storage_prefix, &ver, &cs,
                            need, err, errlen) != 0)
        {
            vh_db_rollback(db);
            goto dropped;
        }
    }
    if (vh_db_commit(db) != 0) {
        snprintf(err, errlen, "cannot commit the captions");
        if (now > 0) {
            restore_master(cf, db, job->video_id);
        }
        goto out;
    }
    if (now > 0) {
        vh_info("video %s captions %s ready: %zu cue(s), revision %s, published into"
                " %s with %d caption track(s) (job %s)", job->video_id, job->lang,
                caps.n, revision, video.storage_prefix, cs.n, job->id);
    } else {
        vh_info("video %s captions %s ready: %zu cue(s), revision %s, stored (the"
                " video is %s: its encode publishes them) (job %s)", job->video_id,
                job->lang, caps.n, revision,
                video.found ? video.status : "gone", job->id);
    }
    rc = VH_JOB_DONE;
    goto out;
dropped:
    /* rolled back before COMMIT: no row names the track written in 4a */
    drop_pre(cf, job, at, revision);
out:
    free(need);
    vh_db_captions_free(&cs);
    vh_db_video_free(&video);
    vh_captions_free(&caps);
    vh_buf_free(&vtt);
    return rc;
}

/* ---------------------------------------------------------------- video jobs */

/* what the master says of the captions: (lang, revision, label, default) */
static char *
signature(const vh_db_captions_t *cs)
{
    vh_buf_t  b = { 0 };
    int       i;

    if (vh_buf_append(&b, "", 1) != 0) {
        return NULL;
    }
    b.len = 0;
    for (i = 0; i < cs->n; i++) {
        if (vh_buf_printf(&b, "%s\t%s\t%s\t%d\n", cs->c[i].lang, cs->c[i].revision,
                          cs->c[i].label, cs->c[i].is_default) != 0)
        {
            vh_buf_free(&b);
            return NULL;
        }
    }
    return b.data;
}

int
vh_subs_load(vh_db_t *db, const char *video_id, vh_subs_t *s)
{
    int  i;

    memset(s, 0, sizeof(*s));
    if (vh_db_captions(db, video_id, 1, &s->db) != 0) {
        return -1;
    }
    s->signature = signature(&s->db);
    s->list = calloc(s->db.n > 0 ? s->db.n : 1, sizeof(*s->list));
    s->uri = calloc(s->db.n > 0 ? s->db.n : 1, sizeof(*s->uri));
    if (s->signature == NULL || s->list == NULL || s->uri == NULL) {
        vh_subs_free(s);
        return -1;
    }
    for (i = 0; i < s->db.n; i++) {
        snprintf(s->uri[i], sizeof(s->uri[i]), VH_SUBS_DIR "/%s/%s/index.m3u8",
                 s->db.c[i].lang, s->db.c[i].revision);
        s->list[i].lang = s->db.c[i].lang;
        s->list[i].label = s->db.c[i].label;
        s->list[i].uri = s->uri[i];
        s->list[i].is_default = s->db.c[i].is_default;
    }
    s->n = s->db.n;
    return 0;
}

void
vh_subs_free(vh_subs_t *s)
{
    vh_db_captions_free(&s->db);
    free(s->list);
    free(s->uri);
    free(s->signature);
    memset(s, 0, sizeof(*s));
}

int
vh_subs_write_all(const vh_conf_t *cf, vh_subs_t *s, const char *dir,
    double duration, long long mpegts, const char *video_id, char *err,
    size_t errlen)
{
    vh_captions_t  caps;
    long long      duration_ms = llround(duration * 1000);
    int            i, j, rc;

    if (mpegts <= 0) {
        mpegts = VH_CAPTION_MPEGTS_DEFAULT;
    }
    for (i = 0, j = 0; i < s->n; i++) {
        if (parse_stored(&s->db.c[i], &caps, err, errlen) != 0) {
            /* never ours to lose the lecture over: the version goes without it */
            vh_error("video %s: %s: published without that caption track", video_id,
                     err);
            err[0] = '\0';
            continue;
        }
        if (track_too_large(cf, &caps, duration_ms, err, errlen)) {
            vh_error("video %s: the %s captions: %s: published without that caption"
                     " track", video_id, s->db.c[i].lang, err);
            err[0] = '\0';
            vh_captions_free(&caps);
            continue;
        }
        rc = vh_subs_write_track(cf, dir, s->db.c[i].lang, s->db.c[i].revision, &caps,
                                 duration_ms, mpegts, video_id, err, errlen);
        vh_captions_free(&caps);
        if (rc != 0) {
            return -1;
        }
        s->list[j++] = s->list[i];
    }
    s->n = j;
    return 0;
}

int
vh_subs_switch(vh_db_t *db, void *data)
{
    const vh_subs_switch_t  *sw = data;
    const vh_subs_t         *s = sw->subs;
    vh_db_video_t            video;
    vh_db_captions_t         cs = { 0 };
    version_t                ver;
    char                    *sig = NULL, err[1024];
    int                     *need = NULL, i, j, now, written = 0, rc = -1;

    memset(&video, 0, sizeof(video));
    if (s->n == 0 && vh_db_captions_table(db) == 0) {
        return 0;               /* no migration 0012: no captions */
    }
    /* the row as this transaction switched it: its renditions, its duration */
    now = current_version(db, sw->video_id, &video, &ver);
    if (now < 0) {
        vh_error("video %s: cannot read its row to check its captions", sw->video_id);
        goto out;
    }
    if (now == 0 || strcmp(video.storage_prefix, sw->prefix) != 0) {
        rc = 0;                 /* logged by current_version: no master to write */
        goto out;
    }
    if (vh_db_caption_list_tx(db, sw->video_id, 1, &cs) != 0) {
        vh_error("video %s: cannot read its captions again before its switch",
                 sw->video_id);
        goto out;
    }
    sig = signature(&cs);
    need = calloc(cs.n > 0 ? cs.n : 1, sizeof(*need));
    if (sig == NULL || need == NULL) {
        vh_error("video %s: out of memory checking its captions", sw->video_id);
        goto out;
    }
    if (!strcmp(sig, s->signature)) {
        rc = 0;                 /* the master written with the version is right */
        goto out;
    }
    for (i = 0; i < cs.n; i++) {
        char  uri[128];

        snprintf(uri, sizeof(uri), VH_SUBS_DIR "/%s/%s/index.m3u8", cs.c[i].lang,
                 cs.c[i].revision);
        need[i] = 1;
        for (j = 0; j < s->n; j++) {
            if (!strcmp(uri, s->list[j].uri)) {
                need[i] = 0;    /* written with the version */
            }
        }
        written += need[i];
    }
    if (publish_version(sw->cf, sw->video_id, sw->prefix, &ver, &cs, need, err,
                        sizeof(err)) != 0)
    {
        vh_error("video %s: its captions changed during the encode, and cannot be"
                 " published into %s: %s", sw->video_id, sw->prefix, err);
        goto out;
    }
    vh_info("video %s: its captions changed during the encode: %d caption track(s)"
            " written and its master listing %d published into %s before its switch",
            sw->video_id, written, cs.n, sw->prefix);
    rc = 0;
out:
    free(need);
    free(sig);
    vh_db_captions_free(&cs);
    vh_db_video_free(&video);
    return rc;
}

/* ---------------------------------------------------------------- removals */

/*
 * A removal's fields (nginx's DELETE on a caption location): "delete 1"
 * with a VH_CAPTION_REMOVE marker as its source, never one without the
 * other.  The marker is "delete:<video>-<msec>-<pid>-<conn>": its tail is
 * checked as an id's characters, so it can never be taken for a path.
 */
int
vh_caption_remove_fields(const vh_job_t *job, char *err, size_t errlen)
{
    size_t       n = sizeof(VH_CAPTION_REMOVE) - 1, i;
    const char  *s = job->source;
    int          marker;

    marker = s != NULL && strncmp(s, VH_CAPTION_REMOVE, n) == 0;
    if (job->remove != NULL && strcmp(job->remove, "1") != 0) {
        snprintf(err, errlen, "the delete field is not 1");
        return -1;
    }
    if (job->remove != NULL && !marker) {
        snprintf(err, errlen, "delete 1 needs a source of " VH_CAPTION_REMOVE "...");
        return -1;
    }
    if (job->remove == NULL && marker) {
        snprintf(err, errlen, "a " VH_CAPTION_REMOVE " source needs delete 1");
        return -1;
    }
    if (marker) {
        for (i = n; s[i] != '\0'; i++) {
            if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
                  || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
            {
                break;
            }
        }
        if (s[i] != '\0' || i == n || i - n > 200) {
            snprintf(err, errlen, "the " VH_CAPTION_REMOVE " source is not 1..200 of"
                     " [A-Za-z0-9_-] after " VH_CAPTION_REMOVE);
            return -1;
        }
    }
    return 0;
}

/*
 * A removal (docs/helper.md "Removing a language"): the row, while it
 * names the job's marker, is deleted and the current version's master
 * rewritten from the captions that remain, in one short transaction under
 * the video's caption lock (the publish's).  Nothing else is written: the
 * language's tracks stay in the version (their URLs are immutable: a
 * player holding the old master keeps playing) and go with it; a later
 * encode reads the rows, so it never carries the language.  A video not
 * ready: only the row goes.  VH_JOB_* like vh_caption_job_run.
 */
int
vh_caption_remove_run(const vh_conf_t *cf, vh_queue_t *q, vh_db_t *db,
    vh_job_t *job, char *err, size_t errlen)
{
    vh_db_video_t     video;
    vh_db_captions_t  cs = { 0 };
    version_t         ver;
    int              *need = NULL, rows, now, rc = VH_JOB_RETRY;

    err[0] = '\0';
    memset(&video, 0, sizeof(video));

    /* still the language's newest request?  (a later upload supersedes it) */
    rows = vh_db_caption_start(db, job->video_id, job->lang, job->source);
    if (rows < 0) {
        snprintf(err, errlen, "cannot update the video_captions row");
        return VH_JOB_RETRY;
    }
    if (rows != VH_DB_OURS) {
        vh_job_superseded(job, rows == VH_DB_NO_ROW ? "no caption row (the video"
                          " is gone?)" : "before it started");
        return VH_JOB_SUPERSEDED;
    }
    if (vh_queue_heartbeat(q, job) != 0) {
        return VH_JOB_LOST;
    }

    if (vh_db_caption_lock(db, job->video_id) != 0) {
        snprintf(err, errlen, "cannot take the video's caption lock");
        return VH_JOB_RETRY;
    }
    rows = vh_db_caption_remove_row(db, job->video_id, job->lang, job->source);
    if (rows < 0) {
        snprintf(err, errlen, "cannot delete the video_captions row");
        return VH_JOB_RETRY;
    }
    if (rows == 0) {
        vh_db_rollback(db);
        vh_job_superseded(job, "before removing");
        return VH_JOB_SUPERSEDED;
    }
    now = current_version(db, job->video_id, &video, &ver);
    if (now < 0) {
        snprintf(err, errlen, "cannot read the videos row");
        goto out;
    }
    if (now > 0) {
        /* the master from what remains: no track is written, none removed */
        if (vh_db_caption_list_tx(db, job->video_id, 1, &cs) != 0) {
            snprintf(err, errlen, "cannot read the video's captions");
            goto out;
        }
        need = calloc(cs.n > 0 ? cs.n : 1, sizeof(*need));
        if (need == NULL) {
            vh_db_rollback(db);
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        if (publish_version(cf, job->video_id, video.storage_prefix, &ver, &cs,
                            need, err, errlen) != 0)
        {
            vh_db_rollback(db);
            goto out;
        }
    }
    if (vh_db_commit(db) != 0) {
        snprintf(err, errlen, "cannot commit the removal");
        if (now > 0) {
            /* the master lacks a language its row still has: written again */
            restore_master(cf, db, job->video_id);
        }
        goto out;
    }
    if (now > 0) {
        vh_info("video %s captions %s removed: the master of %s lists %d caption"
                " track(s) (job %s)", job->video_id, job->lang, video.storage_prefix,
                cs.n, job->id);
    } else {
        vh_info("video %s captions %s removed (the video is %s: nothing published to"
                " rewrite) (job %s)", job->video_id, job->lang,
                video.found ? video.status : "gone", job->id);
    }
    rc = VH_JOB_DONE;
out:
    free(need);
    vh_db_captions_free(&cs);
    vh_db_video_free(&video);
    return rc;
}
