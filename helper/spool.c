/*
 * The spool: uploaded sources that no videos row names any more.
 *
 * Every re-upload leaves the previous file behind (issue #18: five uploads
 * of one lecture, five files).  A source is removed only when all hold:
 *
 *   - source_root is set and the file is inside it (the helper then owns
 *     that directory; without it a job could name any file);
 *   - its name is the module's, "<video>-<time>-<pid>-<conn>.upload", or
 *     "....captions" for a caption file (vodlms_upload captions);
 *   - no videos row names it (the CURRENT source of a video never goes,
 *     whatever its status; a running job's source is its row's), and no
 *     video_captions row names it while its job is to come (status queued
 *     or processing: a caption file is read once, by its job, and its
 *     WebVTT kept in the row, so a finished or superseded one goes).  A row
 *     names it by its path or by its file name in any directory: the
 *     module's names are unique, and nginx's vodlms_upload_spool may spell
 *     the directory otherwise than source_root ("dir/", "//", a symlink).
 *
 * Two moments: the helper that drops a superseded job (or finishes a
 * caption job) removes its source at once (vh_spool_remove), and a sweep every few minutes removes files
 * older than spool_grace that no row names: sources whose job never came
 * (the row was re-queued again before it ran, a lost stream, an undo that
 * failed).  The grace covers the moment between the module's rename into
 * the spool and its row.
 */

#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vodlms_helper.h"

#define VH_SPOOL_SUFFIX          ".upload"
#define VH_SPOOL_CAPTIONS_SUFFIX ".captions"

static int
has_suffix(const char *path, const char *suffix)
{
    size_t  n = strlen(path), s = strlen(suffix);

    return n > s && strcmp(path + n - s, suffix) == 0;
}

static int
spool_owned(const vh_conf_t *cf, const char *path)
{
    char    real[PATH_MAX], root[PATH_MAX];
    size_t  n;

    if (cf->source_root[0] == '\0'
        || !(has_suffix(path, VH_SPOOL_SUFFIX)
             || has_suffix(path, VH_SPOOL_CAPTIONS_SUFFIX)))
    {
        return 0;
    }
    if (realpath(path, real) == NULL || realpath(cf->source_root, root) == NULL) {
        return 0;
    }
    n = strlen(root);
    return strncmp(real, root, n) == 0 && (real[n] == '/' || root[n - 1] == '/');
}

/* 1: removed, 0: kept (in use, not ours, gone), -1: error (logged) */
static int
spool_remove(const vh_conf_t *cf, vh_db_t *db, const char *path,
    const char *why)
{
    int used;

    if (!spool_owned(cf, path)) {
        return 0;
    }
    used = vh_db_source_in_use(db, path);
    if (used != 0) {
        return used < 0 ? -1 : 0;
    }
    if (unlink(path) != 0) {
        if (errno == ENOENT) {
            return 0;
        }
        vh_warn("cannot remove the spooled source %s: %s", path, strerror(errno));
        return -1;
    }
    vh_info("removed the spooled source %s (%s; no video or waiting caption"
            " names it)", path, why);
    return 1;
}

void
vh_spool_remove(const vh_conf_t *cf, vh_db_t *db, const vh_job_t *job)
{
    if (job->source != NULL && job->source[0] == '/') {
        spool_remove(cf, db, job->source,
                     job->kind == VH_KIND_CAPTIONS ? "its caption job is over"
                                                   : "its upload was superseded");
    }
}

void
vh_spool_sweep(const vh_conf_t *cf, vh_db_t *db)
{
    static double   last;
    double          now = vh_now();
    DIR            *d;
    struct dirent  *e;
    struct stat     sb;
    char            path[PATH_MAX], root[PATH_MAX];
    time_t          cutoff = time(NULL) - (time_t) cf->spool_grace;
    int             n = 0;

    if (cf->source_root[0] == '\0' || cf->spool_grace <= 0
        || (last != 0 && now - last < 300))
    {
        return;
    }
    last = now;

    if (realpath(cf->source_root, root) == NULL) {
        vh_warn("cannot resolve source_root %s: %s", cf->source_root,
                strerror(errno));
        return;
    }
    d = opendir(root);
    if (d == NULL) {
        vh_warn("cannot read source_root %s: %s", cf->source_root, strerror(errno));
        return;
    }
    while ((e = readdir(d)) != NULL && !vh_stop) {
        if (snprintf(path, sizeof(path), "%s/%s", root, e->d_name)
            >= (int) sizeof(path)
            || lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode)
            || sb.st_mtime > cutoff)
        {
            continue;
        }
        if (spool_remove(cf, db, path, "left behind, older than spool_grace") > 0) {
            n++;
        }
    }
    closedir(d);
    if (n > 0) {
        vh_info("spool sweep: removed %d source(s) no video names", n);
    }
}
