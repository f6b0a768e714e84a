/*
 * Publishing to a local origin directory.  ffmpeg writes into a hidden
 * temporary directory under hls/ (same filesystem, ids cannot start with
 * '.'), which is then renamed to hls/<id>/<version>/ in one step.  Every
 * encode has its own version, so a URL once served never changes bytes
 * (segments are cached as immutable); the videos row switches to the new
 * version afterwards, and superseded versions are removed once
 * old_version_grace has passed (vh_publish_sweep), so that viewers
 * mid-playback of the old one can finish.
 */

#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/random.h>
#include <time.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vodlms_helper.h"

/*
 * The work directory of the running job is locked (flock on the directory)
 * for as long as the job runs, so that another helper can tell it from one
 * left by a helper that died: two jobs of one video may run at once (a
 * re-upload while the first is encoding).
 */
static int  work_fd = -1;

void
vh_publish_tmpdir_done(void)
{
    if (work_fd >= 0) {
        close(work_fd);
        work_fd = -1;
    }
}

/* Work directories of this video left by a helper that died mid-job */
static void
remove_stale(const char *hls, const char *video_id)
{
    DIR            *d = opendir(hls);
    struct dirent  *e;
    char            prefix[128], path[4400];
    size_t          n;
    int             fd;

    if (d == NULL) {
        return;
    }
    n = (size_t) snprintf(prefix, sizeof(prefix), ".tmp-%s.", video_id);
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, n) != 0) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", hls, e->d_name);
        fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            continue;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            vh_debug("%s is in use by another job of video %s", path, video_id);
        } else {
            vh_info("removing %s, left by an earlier attempt", path);
            vh_rm_rf(path);
        }
        close(fd);
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
    vh_publish_tmpdir_done();
    work_fd = open(out, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (work_fd < 0 || flock(work_fd, LOCK_EX | LOCK_NB) != 0) {
        vh_error("cannot lock %s: %s", out, strerror(errno));
        vh_publish_tmpdir_done();
        return -1;
    }
    return 0;
}

int
vh_publish_version(char *out, size_t len)
{
    unsigned char  rnd[4];
    struct tm      tm;
    time_t         now = time(NULL);
    char           stamp[20];

    if (len < VH_VERSION_TOKEN_LEN + 1) {
        vh_error("a version token needs %d bytes, not %zu",
                 VH_VERSION_TOKEN_LEN + 1, len);
        return -1;
    }
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t) sizeof(rnd)) {
        vh_error("cannot read random bytes for a version token: %s",
                 strerror(errno));
        return -1;
    }
    if (gmtime_r(&now, &tm) == NULL
        || strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm) != 16)
    {
        vh_error("cannot format the time of a version token");
        return -1;
    }
    snprintf(out, len, "%s-%02x%02x%02x%02x", stamp, rnd[0], rnd[1], rnd[2],
             rnd[3]);
    return 0;
}

/* "YYYYMMDDTHHMMSSZ-xxxxxxxx", exactly */
int
vh_publish_is_version(const char *s)
{
    static const char  shape[] = "ddddddddTddddddZ-hhhhhhhh";
    size_t             i;

    for (i = 0; shape[i] != '\0'; i++) {
        switch (shape[i]) {
        case 'd':
            if (s[i] < '0' || s[i] > '9') {
                return 0;
            }
            break;
        case 'h':
            if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
                return 0;
            }
            break;
        default:
            if (s[i] != shape[i]) {
                return 0;
            }
        }
    }
    return s[i] == '\0';
}

int
vh_publish_commit(const vh_conf_t *cf, const char *video_id,
    const char *version, const char *tmpdir, char *err, size_t errlen)
{
    char         dir[4096], final[4200];
    struct stat  st;

    snprintf(dir, sizeof(dir), "%s/hls/%s", cf->origin_dir, video_id);

    /* hls/<id> holds the versions (and, for rows from before versions, a ladder) */
    if (lstat(dir, &st) != 0) {
        if (errno != ENOENT || mkdir(dir, 0755) != 0) {
            snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
            return -1;
        }
    } else if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "cannot publish into %s: not a directory%s", dir,
                 S_ISLNK(st.st_mode) ? " (a symbolic link)" : "");
        return -1;
    }

    snprintf(final, sizeof(final), "%s/%s", dir, version);
    if (renameat2(AT_FDCWD, tmpdir, AT_FDCWD, final, RENAME_NOREPLACE) == 0) {
        return 0;
    }
    if (errno == EINVAL || errno == ENOSYS) {
        /* no RENAME_NOREPLACE here: the token is unique, a plain rename will do */
        if (lstat(final, &st) != 0 && errno == ENOENT && rename(tmpdir, final) == 0) {
            return 0;
        }
    }
    snprintf(err, errlen, "rename %s -> %s: %s", tmpdir, final, strerror(errno));
    return -1;
}

/* ------------------------------------------------------ old versions */

int
vh_publish_discard(const vh_conf_t *cf, const char *video_id,
    const char *version)
{
    char         path[4400];
    struct stat  st;

    snprintf(path, sizeof(path), "%s/hls/%s/%s", cf->origin_dir, video_id,
             version);
    if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        return errno == ENOENT ? 0 : -1;
    }
    if (vh_rm_rf(path) != 0) {
        vh_error("cannot remove %s: %s", path, strerror(errno));
        return -1;
    }
    vh_info("video %s: removed the version %s, which no row ever used",
            video_id, version);
    return 0;
}

typedef struct {
    const vh_conf_t  *cf;
    vh_db_t          *db;
    int               removed;
    int               failed;
} sweep_ctx_t;

/*
 * Removes dir/name if it is a real directory (or regular file): never a
 * symbolic link nor what it points to.  0: removed or absent, 1: left alone.
 */
static int
remove_dir_entry(const char *dir, const char *name, int want_dir)
{
    char         path[4400];
    struct stat  st;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (lstat(path, &st) != 0) {
        return errno == ENOENT ? 0 : -1;
    }
    if (want_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
        vh_warn("old version: leaving %s alone: not a %s", path,
                want_dir ? "directory" : "regular file");
        return 1;
    }
    if (vh_rm_rf(path) != 0) {
        vh_error("cannot remove %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* a rung directory of the layout from before versions: "720p" */
static int
is_rung_name(const char *s)
{
    size_t n = strspn(s, "0123456789");

    return n >= 1 && n <= 4 && s[n] == 'p' && s[n + 1] == '\0';
}

/*
 * A version directory, hls/<id>/<token>: renamed out of the way to
 * hls/<id>/.trash-<token> (no URL reaches it any more), checked once more
 * in the database (the row is locked: a switch back to it waits for us),
 * then removed; renamed back if a row uses it again.  A trash directory
 * left by a helper that died here is removed on the next sweep.
 */
static int
sweep_version(sweep_ctx_t *sc, const char *video_id, const char *prefix,
    const char *dir, const char *token)
{
    char         path[4400], trash[4400], name[80];
    struct stat  st;
    int          rc, used;

    snprintf(path, sizeof(path), "%s/%s", dir, token);
    snprintf(name, sizeof(name), ".trash-%s", token);
    snprintf(trash, sizeof(trash), "%s/%s", dir, name);

    if (lstat(path, &st) != 0) {
        if (errno != ENOENT) {
            vh_error("cannot stat %s: %s", path, strerror(errno));
            sc->failed++;
            return -1;
        }
        /* gone already, or half removed by a helper that died */
        if (remove_dir_entry(dir, name, 1) < 0) {
            sc->failed++;
            return -1;
        }
        return 0;
    }
    if (!S_ISDIR(st.st_mode)) {
        vh_warn("old version: leaving %s alone: not a directory", path);
        return 0;               /* logged; the row stays taken: nothing of ours */
    }
    if (remove_dir_entry(dir, name, 1) < 0 || rename(path, trash) != 0) {
        vh_error("cannot move %s out of the way: %s", path, strerror(errno));
        sc->failed++;
        return -1;
    }

    used = vh_db_prefix_in_use(sc->db, prefix);
    if (used != 0) {
        if (rename(trash, path) != 0) {
            vh_error("cannot move %s back to %s: %s", trash, path,
                     strerror(errno));
        }
        if (used > 0) {
            vh_info("video %s: the old version %s is in use again: kept",
                    video_id, token);
            return 1;
        }
        sc->failed++;
        return -1;
    }

    rc = vh_rm_rf(trash);
    if (rc != 0) {
        vh_error("cannot remove %s: %s", trash, strerror(errno));
        sc->failed++;
        return -1;
    }
    vh_info("video %s: removed the old version %s", video_id, token);
    sc->removed++;
    return 0;
}

/*
 * One superseded prefix.  Only two shapes are ever removed: a version,
 * hls/<id>/<token>/ (the whole directory), and the ladder from before
 * versions, hls/<id>/ (its master.m3u8 first, then poster.jpg and the
 * <height>p/ directories; the versions beside them stay).  Anything else is
 * not ours: logged and left.
 */
static int
sweep_one(void *data, const char *video_id, const char *prefix)
{
    sweep_ctx_t  *sc = data;
    char          dir[4096], token[64];
    const char   *rest;
    size_t        n = strlen(video_id);
    struct stat   st;
    DIR          *d;
    struct dirent *e;
    int           rc = 0;

    if (!vh_valid_id(video_id) || strncmp(prefix, "hls/", 4) != 0
        || strncmp(prefix + 4, video_id, n) != 0 || prefix[4 + n] != '/')
    {
        vh_info("old version %s of video %s: not a helper prefix, left for the"
                " operator", prefix, video_id);
        return 0;
    }
    rest = prefix + 4 + n + 1;
    snprintf(dir, sizeof(dir), "%s/hls/%s", sc->cf->origin_dir, video_id);

    if (*rest == '\0') {
        /* the ladder from before versions */
        if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            return 0;
        }
        rc = vh_db_prefix_in_use(sc->db, prefix);
        if (rc != 0) {
            if (rc < 0) {
                sc->failed++;
            }
            return rc < 0 ? -1 : 1;     /* in use again (the row is locked) */
        }
        /* subs/: captions published into it (the versions have their own) */
        if (remove_dir_entry(dir, "master.m3u8", 0) < 0
            || remove_dir_entry(dir, "poster.jpg", 0) < 0
            || remove_dir_entry(dir, VH_SUBS_DIR, 1) < 0)
        {
            sc->failed++;
            return -1;
        }
        d = opendir(dir);
        if (d == NULL) {
            vh_error("cannot read %s: %s", dir, strerror(errno));
            sc->failed++;
            return -1;
        }
        while ((e = readdir(d)) != NULL) {
            if (is_rung_name(e->d_name) && remove_dir_entry(dir, e->d_name, 1) < 0) {
                rc = -1;
            }
        }
        closedir(d);
        if (rc != 0) {
            sc->failed++;
        } else {
            vh_info("video %s: removed the ladder from before versions in %s",
                    video_id, dir);
            sc->removed++;
        }
        return rc;
    }

    n = strlen(rest);
    if (n == 0 || n >= sizeof(token) || rest[n - 1] != '/') {
        vh_info("old version %s of video %s: not a helper prefix, left for the"
                " operator", prefix, video_id);
        return 0;
    }
    memcpy(token, rest, n - 1);
    token[n - 1] = '\0';
    if (!vh_publish_is_version(token)) {
        vh_info("old version %s of video %s: not a helper prefix, left for the"
                " operator", prefix, video_id);
        return 0;
    }
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        return 0;               /* nothing there (or not ours to walk into) */
    }
    return sweep_version(sc, video_id, prefix, dir, token);
}

void
vh_publish_sweep(const vh_conf_t *cf, vh_db_t *db)
{
    static double  last;
    static int     disabled;
    double         now = vh_now(), every;
    sweep_ctx_t    sc;
    int            rc;

    if (cf->publish_s3 || disabled) {
        return;                 /* S3: an operator job or lifecycle rule (docs/s3.md) */
    }
    every = cf->old_version_grace / 2;
    if (every > 60) {
        every = 60;
    }
    if (every < 1) {
        every = 1;
    }
    if (last != 0 && now - last < every) {
        return;
    }
    last = now;

    sc.cf = cf;
    sc.db = db;
    sc.removed = 0;
    sc.failed = 0;
    do {
        rc = vh_db_take_superseded(db, cf->old_version_grace, 50, sweep_one, &sc);
    } while (rc == 50 && sc.failed == 0 && !vh_stop);
    if (rc == -2) {
        vh_warn("table videos_superseded is missing (apply sql/migrations/"
                "0006_video_versions.sql): old versions are not removed");
        disabled = 1;
    }
}
