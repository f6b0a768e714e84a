/*
 * The files of one caption track (issue #23, docs/helper.md "Captions"):
 * subs/<lang>/<revision>/index.m3u8 and seg_NNNNN.vtt, segmented from the
 * normalized cues (captions.c).  Only files: the caption job and the video
 * job (subs.c) decide where and when; kept apart from them (no database,
 * no S3) so the unit tests (helper/tests/test_captions.c) run it.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vodlms_helper.h"

/* bytes into dir/name, 0644 */
static int
write_file(const char *dir, const char *name, const vh_buf_t *b, char *err,
    size_t errlen)
{
    char  path[4400];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (vh_write_file_atomic(path, b->data ? b->data : "", b->len) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* one directory level, there already or made now: 0, or -1 with errno */
static int
make_dir(const char *path)
{
    if (mkdir(path, 0755) == 0 || errno == EEXIST) {
        return 0;
    }
    return -1;
}

/*
 * One track into <dir>/subs/<lang>/<revision>/: written in a hidden
 * directory beside it, then renamed into place (a player never sees half a
 * track).  Already there: nothing to do (a revision's bytes never change).
 */
int
vh_subs_write_track(const vh_conf_t *cf, const char *dir, const char *lang,
    const char *revision, const vh_captions_t *caps, long long duration_ms,
    long long mpegts, const char *video_id, char *err, size_t errlen)
{
    char         subs_dir[4200], lang_dir[4400], final[4600], tmp[4600], name[32];
    vh_buf_t     b = { 0 };
    long long    seg_ms = (long long) cf->caption_segment_duration * 1000;
    size_t       k, nseg, past = 0;
    struct stat  sb;
    int          rc = -1;

    snprintf(lang_dir, sizeof(lang_dir), "%s/" VH_SUBS_DIR "/%s", dir, lang);
    snprintf(final, sizeof(final), "%s/%s", lang_dir, revision);
    snprintf(tmp, sizeof(tmp), "%s/.tmp-%s", lang_dir, revision);
    if (lstat(final, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        return 0;
    }
    /*
     * Inside an existing version only, never the version itself (no mkdir
     * -p): the sweep may have removed it since the caller looked
     * (old_version_grace 0), and a version made again would be a directory
     * no row names and nothing ever removes
     */
    snprintf(subs_dir, sizeof(subs_dir), "%s/" VH_SUBS_DIR, dir);
    if (make_dir(subs_dir) != 0 || make_dir(lang_dir) != 0 || vh_rm_rf(tmp) != 0
        || mkdir(tmp, 0755) != 0)
    {
        if (errno == ENOENT) {
            snprintf(err, errlen, "the version %s is gone (removed): the %s captions"
                     " are not written into it", dir, lang);
            return VH_SUBS_GONE;
        }
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    nseg = vh_captions_segments(seg_ms, duration_ms);
    for (k = 0; k < nseg; k++) {
        b.len = 0;
        snprintf(name, sizeof(name), "seg_%05zu.vtt", k);
        if (vh_captions_segment(caps, seg_ms, duration_ms, k, mpegts, &b) != 0) {
            snprintf(err, errlen, "out of memory segmenting the %s captions", lang);
            goto out;
        }
        if (write_file(tmp, name, &b, err, errlen) != 0) {
            goto out;
        }
    }
    b.len = 0;
    if (vh_captions_playlist(seg_ms, duration_ms, &b) != 0) {
        snprintf(err, errlen, "out of memory writing the %s subtitle playlist", lang);
        goto out;
    }
    if (write_file(tmp, "index.m3u8", &b, err, errlen) != 0) {
        goto out;
    }
    if (rename(tmp, final) != 0) {
        snprintf(err, errlen, "rename %s -> %s: %s", tmp, final, strerror(errno));
        if (errno == ENOENT && lstat(dir, &sb) != 0) {
            rc = VH_SUBS_GONE;      /* removed while it was written */
        }
        goto out;
    }
    for (k = 0; k < caps->n; k++) {
        past += caps->cues[k].start_ms >= duration_ms;
    }
    if (past > 0) {
        vh_warn("video %s: %zu cue(s) of the %s captions start after the video's"
                " end (%.3f s): left out of its segments", video_id, past, lang,
                duration_ms / 1000.0);
    }
    rc = 0;
out:
    if (rc != 0) {
        vh_rm_rf(tmp);
    }
    vh_buf_free(&b);
    return rc;
}

