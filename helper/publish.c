/*
 * Publishing to a local origin directory.  ffmpeg writes into a hidden
 * temporary directory beside the final one (same filesystem), which then
 * replaces hls/<id>/ in one rename: viewers see the old ladder or the new
 * one, never half of either.  Ids cannot start with '.', so the temporary
 * names never collide with a video.
 */

#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vodlms_helper.h"

/*
 * Work directories of this video left by a helper that died mid-job: the
 * job is ours now, so nobody else is writing there.
 */
static void
remove_stale(const char *hls, const char *video_id)
{
    DIR            *d = opendir(hls);
    struct dirent  *e;
    char            prefix[128], path[4400];
    size_t          n;

    if (d == NULL) {
        return;
    }
    n = (size_t) snprintf(prefix, sizeof(prefix), ".tmp-%s.", video_id);
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, n) == 0) {
            snprintf(path, sizeof(path), "%s/%s", hls, e->d_name);
            vh_info("removing %s, left by an earlier attempt", path);
            vh_rm_rf(path);
        }
    }
    closedir(d);
}

int
vh_publish_tmpdir(const vh_conf_t *cf, const char *video_id, char *out,
    size_t len)
{
    static unsigned  seq;
    char             hls[4096];

    snprintf(hls, sizeof(hls), "%s/hls", cf->origin_dir);
    if (vh_mkdir_p(hls, 0755) != 0) {
        vh_error("cannot create %s: %s", hls, strerror(errno));
        return -1;
    }
    remove_stale(hls, video_id);
    snprintf(out, len, "%s/.tmp-%s.%ld.%u", hls, video_id, (long) getpid(),
             seq++);
    if (vh_rm_rf(out) != 0 || mkdir(out, 0755) != 0) {
        vh_error("cannot create %s: %s", out, strerror(errno));
        return -1;
    }
    return 0;
}

int
vh_publish_commit(const vh_conf_t *cf, const char *video_id,
    const char *tmpdir, char *err, size_t errlen)
{
    char         final[4096], old[4200];
    struct stat  st;

    snprintf(final, sizeof(final), "%s/hls/%s", cf->origin_dir, video_id);

    if (lstat(final, &st) != 0) {
        if (rename(tmpdir, final) == 0) {
            return 0;
        }
        snprintf(err, errlen, "rename %s -> %s: %s", tmpdir, final,
                 strerror(errno));
        return -1;
    }

    /* a re-run: swap atomically, then remove the previous ladder */
    if (renameat2(AT_FDCWD, tmpdir, AT_FDCWD, final, RENAME_EXCHANGE) == 0) {
        if (vh_rm_rf(tmpdir) != 0) {
            vh_warn("cannot remove the previous ladder in %s: %s", tmpdir,
                    strerror(errno));
        }
        return 0;
    }
    vh_debug("renameat2(RENAME_EXCHANGE) %s: %s; moving aside instead",
             final, strerror(errno));

    /* no RENAME_EXCHANGE on this filesystem: a short window without hls/<id> */
    snprintf(old, sizeof(old), "%s.old", tmpdir);
    if (rename(final, old) != 0) {
        snprintf(err, errlen, "rename %s -> %s: %s", final, old, strerror(errno));
        return -1;
    }
    if (rename(tmpdir, final) != 0) {
        snprintf(err, errlen, "rename %s -> %s: %s", tmpdir, final,
                 strerror(errno));
        if (rename(old, final) != 0) {
            vh_error("cannot restore %s from %s", final, old);
        }
        return -1;
    }
    vh_rm_rf(old);
    return 0;
}
