/*
 * The ladder: which rungs a source gets, and the one ffmpeg that decodes
 * the source once and encodes every rung (split + scale), keyframes
 * aligned on the segment boundaries so that players can switch anywhere.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vodlms_helper.h"

int
vh_ladder_plan(const vh_conf_t *cf, const vh_probe_t *p, vh_plan_t *plan)
{
    int  i, limit = p->height < cf->max_height ? p->height : cf->max_height;

    memset(plan, 0, sizeof(*plan));
    for (i = 0; i < cf->nrungs; i++) {
        const vh_rung_t *r = &cf->rungs[i];
        if (r->height > limit) {
            continue;           /* never upscale, never above the cap */
        }
        plan->rungs[plan->n].rung = *r;
        plan->rungs[plan->n].height = r->height;
        plan->n++;
    }
    if (plan->n == 0) {
        /* smaller than the lowest rung: one rung at the source's own size */
        plan->rungs[0].rung = cf->rungs[0];
        plan->rungs[0].height = limit & ~1;
        snprintf(plan->rungs[0].rung.name, sizeof(plan->rungs[0].rung.name),
                 "%dp", plan->rungs[0].height);
        plan->rungs[0].rung.height = plan->rungs[0].height;
        plan->n = 1;
    }
    for (i = 0; i < plan->n; i++) {
        double w = (double) p->width * plan->rungs[i].height / p->height;
        plan->rungs[i].width = 2 * (int) lround(w / 2);
        if (plan->rungs[i].width < 2) {
            plan->rungs[i].width = 2;
        }
    }
    plan->audio_only = cf->audio_only && p->has_audio;
    plan->thumbs = cf->thumbnails;
    if (plan->thumbs) {
        /* the displayed aspect ratio, as the rungs, even for the JPEG encoder */
        double h = (double) cf->storyboard_width * p->height / p->width;
        plan->tile_width = cf->storyboard_width & ~1;
        plan->tile_height = 2 * (int) lround(h / 2);
        if (plan->tile_height < 2) {
            plan->tile_height = 2;
        }
    }
    plan->fps = p->fps > cf->max_fps ? cf->max_fps : p->fps;
    plan->gop = (int) lround(plan->fps * cf->segment_duration);
    if (plan->gop < 1) {
        plan->gop = 1;
    }
    /* auto: what a slow host needs for a real file, not what a crafted one asks */
    if (cf->job_timeout == VH_JOB_TIMEOUT_AUTO) {
        plan->timeout = VH_JOB_TIMEOUT_FACTOR * p->duration;
        if (plan->timeout < VH_JOB_TIMEOUT_FLOOR) {
            plan->timeout = VH_JOB_TIMEOUT_FLOOR;
        }
    } else {
        plan->timeout = cf->job_timeout;
    }
    return 0;
}

static void
arg(vh_args_t *a, const char *s)
{
    if (a->n < 199 && s != NULL) {
        a->argv[a->n++] = (char *) s;
        a->argv[a->n] = NULL;
    } else {
        a->failed = 1;
    }
}

static void
argf(vh_args_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
argf(vh_args_t *a, const char *fmt, ...)
{
    va_list  ap;
    char    *s;

    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0) {
        s = NULL;
    }
    va_end(ap);
    if (s != NULL && a->nowned < 200) {
        a->owned[a->nowned++] = s;
        arg(a, s);
    } else {
        free(s);
        a->failed = 1;
    }
}

void
vh_args_free(vh_args_t *a)
{
    int i;

    for (i = 0; i < a->nowned; i++) {
        free(a->owned[i]);
    }
}

/*
 * The input of every ffmpeg of a source: the demuxer that ffprobe found,
 * forced (so the two cannot disagree, even if the file changes between
 * them), still within the allow-list; the file protocol only; the path as
 * file:<path>.  The mov demuxer's external references stay off (FFmpeg's
 * default; ffmpeg refuses the option for other demuxers, so mov only).
 */
static int
input_args(const vh_probe_t *p, const char *source, vh_args_t *a)
{
    if (source[0] != '/' || p->demuxer[0] == '\0') {
        return -1;
    }
    arg(a, "-format_whitelist");
    arg(a, VH_SOURCE_FORMATS);
    arg(a, "-protocol_whitelist");
    arg(a, "file");
    arg(a, "-f");
    arg(a, p->demuxer);
    if (!strcmp(p->demuxer, "mov")) {
        arg(a, "-enable_drefs");
        arg(a, "0");
        arg(a, "-use_absolute_path");
        arg(a, "0");
    }
    arg(a, "-i");
    argf(a, "file:%s", source);
    return 0;
}

int
vh_ladder_args(const vh_conf_t *cf, const char *source, const vh_probe_t *p,
    const vh_plan_t *plan, const char *dir, vh_args_t *a)
{
    vh_buf_t  fc = { 0 }, map = { 0 };
    int       i;

    arg(a, cf->ffmpeg);
    arg(a, "-hide_banner");
    arg(a, "-nostdin");
    arg(a, "-loglevel");
    arg(a, "error");
    arg(a, "-y");
    if (input_args(p, source, a) != 0) {
        return -1;
    }

    /*
     * The stream probed, by its index: "[0:v]" would also take an attached
     * picture (cover art, possibly first and of any size) and encode that.
     */
    if (p->video_index < 0) {
        return -1;
    }
    vh_buf_printf(&fc, "[0:%d]", p->video_index);
    if (p->fps > cf->max_fps) {
        vh_buf_printf(&fc, "fps=%g,", cf->max_fps);
    }
    vh_buf_printf(&fc, "split=%d", plan->n + (plan->thumbs ? 1 : 0));
    for (i = 0; i < plan->n + (plan->thumbs ? 1 : 0); i++) {
        vh_buf_printf(&fc, "[s%d]", i);
    }
    for (i = 0; i < plan->n; i++) {
        vh_buf_printf(&fc, ";[s%d]scale=%d:%d,setsar=1,format=yuv420p[v%d]", i,
                      plan->rungs[i].width, plan->rungs[i].height, i);
    }
    if (plan->thumbs) {
        /*
         * The storyboard from the same decode: round=up gives slot k the
         * last frame at or before k x interval (a still stretch of a
         * variable-rate source is repeated, so tile k is always time k x
         * interval).  One JPEG per tile, the sheets made after
         * (vh_storyboard_run): a tile filter here would hold its output
         * until the first sheet is full, and ffmpeg prints no -progress
         * before every output has started (16 min of a lecture at 10 s a
         * tile, 10x10).
         */
        vh_buf_printf(&fc, ";[s%d]fps=1/%d:round=up,scale=%d:%d,setsar=1[sb]",
                      plan->n, cf->storyboard_interval, plan->tile_width,
                      plan->tile_height);
    }
    arg(a, "-filter_complex");
    argf(a, "%s", fc.data);

    for (i = 0; i < plan->n; i++) {
        arg(a, "-map");
        argf(a, "[v%d]", i);
    }
    if (p->has_audio) {
        for (i = 0; i < plan->n + (plan->audio_only ? 1 : 0); i++) {
            arg(a, "-map");
            arg(a, "0:a:0");
        }
    }

    arg(a, "-c:v");
    arg(a, "libx264");
    arg(a, "-preset");
    arg(a, cf->preset);
    arg(a, "-profile:v");
    arg(a, "high");
    for (i = 0; i < plan->n; i++) {
        long br = plan->rungs[i].rung.video_bitrate;
        argf(a, "-b:v:%d", i);
        argf(a, "%ld", br);
        argf(a, "-maxrate:v:%d", i);
        argf(a, "%ld", br + br / 10);
        argf(a, "-bufsize:v:%d", i);
        argf(a, "%ld", br + br / 2);
    }
    /* a fixed GOP of one segment, and a forced keyframe on every boundary */
    arg(a, "-g");
    argf(a, "%d", plan->gop);
    arg(a, "-keyint_min");
    argf(a, "%d", plan->gop);
    arg(a, "-sc_threshold");
    arg(a, "0");
    arg(a, "-force_key_frames");
    argf(a, "expr:gte(t,n_forced*%d)", cf->segment_duration);

    if (p->has_audio) {
        arg(a, "-c:a");
        arg(a, "aac");
        arg(a, "-b:a");
        argf(a, "%ld", cf->audio_bitrate);
        arg(a, "-ac");
        arg(a, "2");
        arg(a, "-ar");
        arg(a, "48000");
        if (plan->audio_only) {
            /* after -b:a: the last option that names a stream wins */
            argf(a, "-b:a:%d", plan->n);
            argf(a, "%ld", cf->audio_only_bitrate);
        }
    }
    if (cf->threads > 0) {
        arg(a, "-threads");
        argf(a, "%d", cf->threads);
    }

    arg(a, "-f");
    arg(a, "hls");
    arg(a, "-hls_time");
    argf(a, "%d", cf->segment_duration);
    arg(a, "-hls_playlist_type");
    arg(a, "vod");
    if (plan->key_info != NULL) {
        /*
         * AES-128 by the muxer: the key info file (written before ffmpeg
         * starts, never changed) is read again at each segment, which makes
         * each segment's IV its media sequence number (keys.c)
         */
        arg(a, "-hls_key_info_file");
        arg(a, plan->key_info);
        arg(a, "-hls_flags");
        arg(a, "independent_segments+periodic_rekey");
    } else {
        arg(a, "-hls_flags");
        arg(a, "independent_segments");
    }
    arg(a, "-hls_segment_type");
    arg(a, "mpegts");
    arg(a, "-hls_segment_filename");
    argf(a, "%s/%%v/seg_%%05d.ts", dir);
    arg(a, "-master_pl_name");
    arg(a, "master.m3u8");
    for (i = 0; i < plan->n; i++) {
        if (p->has_audio) {
            vh_buf_printf(&map, "%sv:%d,a:%d,name:%s", i ? " " : "", i, i,
                          plan->rungs[i].rung.name);
        } else {
            vh_buf_printf(&map, "%sv:%d,name:%s", i ? " " : "", i,
                          plan->rungs[i].rung.name);
        }
    }
    if (plan->audio_only) {
        /* audio only: a variant of its own, as the rungs (hls.c, docs/helper.md) */
        vh_buf_printf(&map, " a:%d,name:" VH_AUDIO_ONLY_NAME, plan->n);
    }
    arg(a, "-var_stream_map");
    argf(a, "%s", map.data);
    arg(a, "-progress");
    arg(a, "pipe:1");
    arg(a, "-nostats");
    argf(a, "%s/%%v/index.m3u8", dir);

    if (plan->thumbs) {
        /* a second output of the same run: the tiles, JPEG */
        if (plan->tiles_dir == NULL) {
            a->failed = 1;
        }
        arg(a, "-map");
        arg(a, "[sb]");
        arg(a, "-c:v");
        arg(a, "mjpeg");
        arg(a, "-q:v");
        arg(a, "2");
        arg(a, "-an");
        arg(a, "-f");
        arg(a, "image2");
        arg(a, "-start_number");
        arg(a, "0");
        argf(a, "%s/tile_%%06d.jpg", plan->tiles_dir);
    }

    if (fc.data == NULL || map.data == NULL) {
        a->failed = 1;
    }
    vh_buf_free(&fc);
    vh_buf_free(&map);
    return a->failed ? -1 : 0;
}

static void
keep_tail(vh_buf_t *b, size_t max)
{
    if (b->len > max) {
        memmove(b->data, b->data + b->len - max, max);
        b->len = max;
        b->data[max] = '\0';
    }
}

static void
tail_text(const vh_buf_t *b, char *out, size_t len)
{
    const char *s = b->data ? b->data : "";
    size_t      n = strlen(s), i;

    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ')) {
        n--;
    }
    /* the last few lines, on one line */
    i = n > 300 ? n - 300 : 0;
    snprintf(out, len, "%.*s", (int) (n - i), s + i);
    for (i = 0; out[i]; i++) {
        if (out[i] == '\n' || out[i] == '\r') {
            out[i] = ' ';
        }
    }
}

static int
reap(pid_t pid, int kill_it)
{
    int     status, i;

    if (kill_it) {
        kill(pid, SIGTERM);
        for (i = 0; i < 50; i++) {
            if (waitpid(pid, &status, WNOHANG) == pid) {
                return -1;
            }
            usleep(100000);
        }
        kill(pid, SIGKILL);
    }
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            return -1;
        }
    }
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    return -1000 - WTERMSIG(status);
}

int
vh_ladder_run(const vh_conf_t *cf, const char *source, const vh_probe_t *p,
    const vh_plan_t *plan, const char *dir, vh_tick_pt tick, void *data,
    char *err, size_t errlen)
{
    vh_args_t         a;
    pid_t          pid;
    int            ofd, efd, rc, open_fds = 2, aborted = 0, i;
    struct pollfd  fds[2];
    vh_buf_t       line = { 0 }, errb = { 0 };
    double         out_s = 0, start = vh_now(), last_tick = 0;
    char           chunk[4096], tail[400];
    ssize_t        n;

    memset(&a, 0, sizeof(a));
    if (vh_ladder_args(cf, source, p, plan, dir, &a) != 0) {
        snprintf(err, errlen, "cannot build the ffmpeg command (out of memory,"
                 " or no accepted demuxer for %s)", source);
        vh_args_free(&a);
        return -1;
    }
    if (cf->preset[0] == '\0') {
        snprintf(err, errlen, "empty preset");
        vh_args_free(&a);
        return -1;
    }
    {
        vh_buf_t cmd = { 0 };
        for (i = 0; i < a.n; i++) {
            vh_buf_printf(&cmd, "%s%s", i ? " " : "", a.argv[i]);
        }
        vh_debug("running %s", cmd.data);
        vh_buf_free(&cmd);
    }

    pid = vh_spawn(a.argv, &ofd, &efd);
    if (pid < 0) {
        snprintf(err, errlen, "cannot start %s: %s", cf->ffmpeg, strerror(errno));
        vh_args_free(&a);
        return -1;
    }

    fds[0].fd = ofd;
    fds[0].events = POLLIN;
    fds[1].fd = efd;
    fds[1].events = POLLIN;

    while (open_fds > 0) {
        int r = poll(fds, 2, 250);

        if (r < 0 && errno != EINTR) {
            break;
        }
        for (i = 0; r > 0 && i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) {
                continue;
            }
            n = read(fds[i].fd, chunk, sizeof(chunk));
            if (n <= 0) {
                if (n < 0 && errno == EINTR) {
                    continue;
                }
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
                continue;
            }
            if (i == 1) {
                vh_buf_append(&errb, chunk, n);
                keep_tail(&errb, 4096);
                continue;
            }
            /* -progress: key=value lines; out_time_us is the position */
            vh_buf_append(&line, chunk, n);
            for (;;) {
                char *nl = memchr(line.data, '\n', line.len);
                size_t used;
                if (nl == NULL) {
                    break;
                }
                *nl = '\0';
                if (!strncmp(line.data, "out_time_us=", 12)) {
                    long long us = atoll(line.data + 12);
                    if (us > 0) {
                        out_s = us / 1e6;
                    }
                }
                used = nl - line.data + 1;
                memmove(line.data, nl + 1, line.len - used);
                line.len -= used;
                line.data[line.len] = '\0';
            }
        }
        if (vh_now() - last_tick >= 1.0) {
            last_tick = vh_now();
            if (tick != NULL && tick(data, out_s) != 0) {
                aborted = 1;
                break;
            }
        }
        if (plan->timeout > 0 && vh_now() - start > plan->timeout) {
            aborted = 2;
            break;
        }
    }
    for (i = 0; i < 2; i++) {
        if (fds[i].fd >= 0) {
            close(fds[i].fd);
        }
    }
    rc = reap(pid, aborted);
    vh_args_free(&a);
    vh_buf_free(&line);

    if (aborted == 1) {
        snprintf(err, errlen, "ffmpeg stopped: job abandoned");
        vh_buf_free(&errb);
        return -1;
    }
    if (aborted == 2) {
        snprintf(err, errlen, "job_timeout: ffmpeg ran longer than %.0f s (%s),"
                 " stopped and not retried", plan->timeout,
                 cf->job_timeout == VH_JOB_TIMEOUT_AUTO
                 ? "job_timeout = auto: the source's duration x "
                   VH_STR(VH_JOB_TIMEOUT_FACTOR) ", at least "
                   VH_STR(VH_JOB_TIMEOUT_FLOOR) " s"
                 : "job_timeout");
        vh_buf_free(&errb);
        return VH_LADDER_TIMEOUT;
    }
    if (rc != 0) {
        tail_text(&errb, tail, sizeof(tail));
        if (rc <= -1000) {
            snprintf(err, errlen, "ffmpeg killed by signal %d: %s", -rc - 1000, tail);
        } else {
            snprintf(err, errlen, "ffmpeg exited with status %d: %s", rc, tail);
        }
        vh_buf_free(&errb);
        return -1;
    }
    vh_buf_free(&errb);
    return 0;
}

int
vh_storyboard_vtt(const vh_conf_t *cf, const vh_plan_t *plan,
    double duration, long made, vh_buf_t *out)
{
    long    k, tiles, per_sheet = (long) cf->storyboard_columns * cf->storyboard_rows;
    double  from, to;
    int     rc;

    if (duration <= 0 || made <= 0 || !plan->thumbs) {
        return -1;
    }
    tiles = (long) ceil(duration / cf->storyboard_interval - 1e-6);
    if (tiles > made) {
        tiles = made;           /* what ffmpeg wrote, no more */
    }
    rc = vh_buf_printf(out, "WEBVTT\n");
    for (k = 0; rc == 0 && k < tiles; k++) {
        long  pos = k % per_sheet;
        int   ms_from, ms_to;

        from = (double) k * cf->storyboard_interval;
        to = from + cf->storyboard_interval;
        if (to > duration) {
            to = duration;
        }
        ms_from = (int) llround(from * 1000);
        ms_to = (int) llround(to * 1000);
        rc = vh_buf_printf(out,
            "\n%02d:%02d:%02d.%03d --> %02d:%02d:%02d.%03d\n"
            "sprite_%03ld.jpg#xywh=%ld,%ld,%d,%d\n",
            ms_from / 3600000, ms_from / 60000 % 60, ms_from / 1000 % 60, ms_from % 1000,
            ms_to / 3600000, ms_to / 60000 % 60, ms_to / 1000 % 60, ms_to % 1000,
            k / per_sheet,
            pos % cf->storyboard_columns * plan->tile_width,
            pos / cf->storyboard_columns * plan->tile_height,
            plan->tile_width, plan->tile_height);
    }
    return rc;
}

int
vh_storyboard_run(const vh_conf_t *cf, const vh_plan_t *plan, const char *dir,
    long *tiles, char *err, size_t errlen)
{
    vh_args_t    a;
    vh_buf_t     e = { 0 };
    struct stat  sb;
    char         path[4400], tail[300];
    int          rc;

    /* the tiles ffmpeg wrote: tile_000000.jpg, tile_000001.jpg, ... */
    for (*tiles = 0; ; (*tiles)++) {
        snprintf(path, sizeof(path), "%s/tile_%06ld.jpg", plan->tiles_dir, *tiles);
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            break;
        }
    }
    if (*tiles == 0) {
        snprintf(err, errlen, "storyboard: ffmpeg wrote no tile");
        return -1;
    }

    /* our own numbered files: the image2 demuxer, the file protocol only */
    memset(&a, 0, sizeof(a));
    arg(&a, cf->ffmpeg);
    arg(&a, "-hide_banner");
    arg(&a, "-nostdin");
    arg(&a, "-loglevel");
    arg(&a, "error");
    arg(&a, "-y");
    arg(&a, "-protocol_whitelist");
    arg(&a, "file");
    arg(&a, "-f");
    arg(&a, "image2");
    arg(&a, "-framerate");
    arg(&a, "1");
    arg(&a, "-start_number");
    arg(&a, "0");
    arg(&a, "-i");
    argf(&a, "file:%s/tile_%%06d.jpg", plan->tiles_dir);
    arg(&a, "-vf");
    argf(&a, "tile=%dx%d", cf->storyboard_columns, cf->storyboard_rows);
    arg(&a, "-c:v");
    arg(&a, "mjpeg");
    arg(&a, "-q:v");
    arg(&a, "5");
    arg(&a, "-f");
    arg(&a, "image2");
    arg(&a, "-start_number");
    arg(&a, "0");
    argf(&a, "%s/sprite_%%03d.jpg", dir);
    if (a.failed) {
        snprintf(err, errlen, "storyboard: cannot build the ffmpeg command (out of memory)");
        vh_args_free(&a);
        return -1;
    }
    rc = vh_run_capture(a.argv, NULL, &e, 300);
    vh_args_free(&a);
    if (rc != 0) {
        tail_text(&e, tail, sizeof(tail));
        snprintf(err, errlen, "storyboard: ffmpeg failed: %s", tail);
        vh_buf_free(&e);
        return -1;
    }
    vh_buf_free(&e);
    return 0;
}

int
vh_poster_run(const vh_conf_t *cf, const char *source, const vh_probe_t *p,
    const char *path, char *err, size_t errlen)
{
    char      at[32];
    vh_args_t    a;
    vh_buf_t  e = { 0 };
    int       rc;
    char      tail[300];

    memset(&a, 0, sizeof(a));
    snprintf(at, sizeof(at), "%.3f", p->duration * cf->poster_at);
    arg(&a, cf->ffmpeg);
    arg(&a, "-hide_banner");
    arg(&a, "-nostdin");
    arg(&a, "-loglevel");
    arg(&a, "error");
    arg(&a, "-y");
    arg(&a, "-ss");
    arg(&a, at);
    if (input_args(p, source, &a) != 0) {
        a.failed = 1;
    }
    arg(&a, "-map");
    argf(&a, "0:%d", p->video_index);
    arg(&a, "-frames:v");
    arg(&a, "1");
    arg(&a, "-vf");
    arg(&a, "scale=-2:'min(720,ih)'");
    arg(&a, "-q:v");
    arg(&a, "3");
    arg(&a, "-update");
    arg(&a, "1");
    arg(&a, path);
    if (a.failed) {
        snprintf(err, errlen, "poster: cannot build the ffmpeg command (out of"
                 " memory, or no accepted demuxer for %s)", source);
        vh_args_free(&a);
        return -1;
    }

    rc = vh_run_capture(a.argv, NULL, &e, 120);
    vh_args_free(&a);
    if (rc != 0) {
        tail_text(&e, tail, sizeof(tail));
        snprintf(err, errlen, "poster: ffmpeg failed: %s", tail);
        vh_buf_free(&e);
        return -1;
    }
    vh_buf_free(&e);
    return 0;
}
