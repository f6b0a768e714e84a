/* ffprobe (JSON output): is the source a usable video, and what is it? */

#define _GNU_SOURCE

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "vodlms_helper.h"

static double
rational(const char *s)
{
    long  n = 0, d = 0;

    if (s == NULL || sscanf(s, "%ld/%ld", &n, &d) != 2 || n <= 0 || d <= 0) {
        return 0;
    }
    return (double) n / d;
}

static double
num_string(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    if (json_is_string(v)) {
        return atof(json_string_value(v));
    }
    if (json_is_number(v)) {
        return json_number_value(v);
    }
    return 0;
}

/* last non-empty line of ffprobe's stderr, for an error message */
static void
last_line(const vh_buf_t *b, char *out, size_t len)
{
    const char *s = b->data ? b->data : "", *e = s + strlen(s), *start;

    while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ')) {
        e--;
    }
    start = e;
    while (start > s && start[-1] != '\n') {
        start--;
    }
    snprintf(out, len, "%.*s", (int) (e - start), start);
}

/*
 * ffprobe of one local file: only the demuxers in formats, only the file
 * protocol (so nothing a playlist, a script or a reference names is ever
 * opened), and the path as file:<path> so that no prefix in the name is
 * read as a protocol.  *refused is set when FFmpeg refused the format or a
 * protocol.  The mov demuxer's external references (drefs) are off by
 * default in FFmpeg 5.1; we say so anyway (ffprobe ignores the two options
 * for other demuxers).
 */
static int
run_ffprobe(const vh_conf_t *cf, const char *path, const char *formats,
    int show_format, vh_buf_t *out, char *err, size_t errlen, int *refused)
{
    vh_buf_t      errb = { 0 };
    char         *argv[24], *url = NULL;
    int           i = 0, status;

    *refused = 0;
    if (path[0] != '/' || asprintf(&url, "file:%s", path) < 0) {
        snprintf(err, errlen, "%s", path[0] != '/' ? "not an absolute path"
                                                   : "out of memory");
        return path[0] != '/' ? 1 : -1;
    }

    argv[i++] = cf->ffprobe;
    argv[i++] = "-v";
    argv[i++] = "error";
    argv[i++] = "-format_whitelist";
    argv[i++] = (char *) formats;
    argv[i++] = "-protocol_whitelist";
    argv[i++] = "file";
    argv[i++] = "-enable_drefs";
    argv[i++] = "0";
    argv[i++] = "-use_absolute_path";
    argv[i++] = "0";
    argv[i++] = "-print_format";
    argv[i++] = "json";
    if (show_format) {
        argv[i++] = "-show_format";
    }
    argv[i++] = "-show_streams";
    argv[i++] = url;
    argv[i] = NULL;

    status = vh_run_capture(argv, out, &errb, 120);
    if (status != 0) {
        char line[400];
        last_line(&errb, line, sizeof(line));
        snprintf(err, errlen, "%s", line[0] ? line : "ffprobe failed");
        /* "Format not on whitelist '...'", "Protocol 'http' not on whitelist 'file'!" */
        *refused = errb.data != NULL && strstr(errb.data, "not on whitelist") != NULL;
    }
    vh_buf_free(&errb);
    free(url);
    return status;
}

/*
 * The VH_SOURCE_FORMATS name that ffprobe's format_name ("mov,mp4,m4a,3gp,
 * 3g2,mj2", "matroska,webm") matches, as av_match_list() does: any of the
 * comma-separated names equal to any of the list.  "" if none.
 */
static void
allowed_demuxer(const char *format_name, char *out, size_t len)
{
    const char  *f, *a, *fe, *ae;

    out[0] = '\0';
    for (f = format_name; *f != '\0'; f = *fe ? fe + 1 : fe) {
        fe = f + strcspn(f, ",");
        for (a = VH_SOURCE_FORMATS; *a != '\0'; a = *ae ? ae + 1 : ae) {
            ae = a + strcspn(a, ",");
            if (fe - f == ae - a && fe > f && !strncmp(f, a, fe - f)
                && (size_t) (ae - a) < len)
            {
                snprintf(out, len, "%.*s", (int) (ae - a), a);
                return;
            }
        }
    }
}

#define VH_UNSUPPORTED_SOURCE \
    "unsupported_source: not a media file the helper accepts (MP4/MOV/3GP," \
    " Matroska/WebM, MPEG-TS, MPEG-PS, AVI, FLV, MXF, Ogg, ASF/WMV); playlists," \
    " concat scripts, image sequences and URLs are refused"

int
vh_probe_source(const vh_conf_t *cf, const char *path, vh_probe_t *p)
{
    vh_buf_t  out = { 0 };
    int       status, refused;
    char      err[400] = "";

    memset(p, 0, sizeof(*p));
    status = run_ffprobe(cf, path, VH_SOURCE_FORMATS, 1, &out, err, sizeof(err),
                         &refused);
    if (status != 0) {
        vh_buf_free(&out);
        if (refused) {
            /* the same words whatever the file names: nothing to learn from it */
            snprintf(p->error, sizeof(p->error), "%s", VH_UNSUPPORTED_SOURCE);
            return 0;
        }
        if (status == 127 || status < 0) {
            snprintf(p->error, sizeof(p->error), "cannot run %s: %s",
                     cf->ffprobe, err);
            return -1;          /* our problem, not the file's */
        }
        snprintf(p->error, sizeof(p->error),
                 "not a video: ffprobe cannot read the file (%s)", err);
        return 0;
    }
    vh_probe_source_json(cf, out.data ? out.data : "", out.len, p);
    vh_buf_free(&out);
    return 0;
}

void
vh_probe_source_json(const vh_conf_t *cf, const char *text, size_t len,
    vh_probe_t *p)
{
    json_t        *root, *streams, *format, *s, *video = NULL;
    json_error_t   jerr;
    size_t         i;
    int            rotation = 0;
    const char    *fmt;
    double         d;

    memset(p, 0, sizeof(*p));
    root = json_loadb(text, len, 0, &jerr);
    if (root == NULL) {
        snprintf(p->error, sizeof(p->error),
                 "not a video: ffprobe cannot read the file (ffprobe printed no JSON: %s)",
                 jerr.text);
        return;
    }

    format = json_object_get(root, "format");
    streams = json_object_get(root, "streams");
    fmt = json_string_value(json_object_get(format, "format_name"));
    fmt = fmt ? fmt : "";

    allowed_demuxer(fmt, p->demuxer, sizeof(p->demuxer));
    if (p->demuxer[0] == '\0') {
        /* FFmpeg should have refused it already */
        snprintf(p->error, sizeof(p->error), "%s", VH_UNSUPPORTED_SOURCE);
        goto done;
    }

    json_array_foreach(streams, i, s) {
        const char *type = json_string_value(json_object_get(s, "codec_type"));
        json_t     *disp = json_object_get(s, "disposition");

        if (type == NULL) {
            continue;
        }
        if (!strcmp(type, "audio")) {
            p->has_audio = 1;
        } else if (!strcmp(type, "video") && video == NULL
                   && json_integer_value(json_object_get(disp, "attached_pic")) == 0)
        {
            /* ffmpeg encodes this very stream (0:<index>), never cover art */
            video = s;
            p->video_index = (int) json_integer_value(json_object_get(s, "index"));
        }
    }

    if (video == NULL) {
        snprintf(p->error, sizeof(p->error),
                 "not a video: no video stream (format \"%s\"%s)", fmt,
                 p->has_audio ? ", audio only" : "");
        goto done;
    }
    if (!strcmp(fmt, "tty") || !strcmp(fmt, "image2") || strstr(fmt, "_pipe")
        || !strcmp(fmt, "gif"))
    {
        snprintf(p->error, sizeof(p->error),
                 "not a video: \"%s\" is a text or image format", fmt);
        goto done;
    }

    p->width = (int) json_integer_value(json_object_get(video, "width"));
    p->height = (int) json_integer_value(json_object_get(video, "height"));
    p->fps = rational(json_string_value(json_object_get(video, "avg_frame_rate")));
    if (p->fps <= 0 || p->fps > 240) {
        p->fps = rational(json_string_value(json_object_get(video, "r_frame_rate")));
    }
    p->duration = num_string(format, "duration");
    d = num_string(video, "duration");
    if (p->duration <= 0 || isnan(p->duration)) {
        p->duration = d;
    }

    /* phones record portrait as landscape + a rotation: ffmpeg autorotates */
    {
        const char *rot = json_string_value(json_object_get(
                              json_object_get(video, "tags"), "rotate"));
        rotation = rot ? atoi(rot) : 0;
    }
    {
        json_t *sd, *e;
        size_t  j;
        sd = json_object_get(video, "side_data_list");
        json_array_foreach(sd, j, e) {
            if (json_object_get(e, "rotation") != NULL) {
                rotation = (int) json_number_value(json_object_get(e, "rotation"));
            }
        }
    }
    if (abs(rotation) % 180 == 90) {
        int t = p->width;
        p->width = p->height;
        p->height = t;
    }

    if (p->width < 16 || p->height < 16) {
        snprintf(p->error, sizeof(p->error),
                 "not a video: picture size %dx%d is too small", p->width,
                 p->height);
        goto done;
    }
    if (p->duration < 0.1 || isnan(p->duration) || isinf(p->duration)) {
        snprintf(p->error, sizeof(p->error),
                 "not a video: no usable duration (a still image?)");
        goto done;
    }
    if (p->fps <= 0) {
        p->fps = 25;
    }

    /*
     * What decoding will cost.  Every rate in the container is the
     * uploader's: take the largest claim that describes decoded frames.
     * avg_frame_rate (frames over time, as FFmpeg measured them), and
     * nb_frames over the duration where the container counts its frames
     * (MP4/MOV: the sample table, exactly the packets the demuxer will
     * hand over).  r_frame_rate is a timebase guess (90000/1, 1000/1 for
     * variable rates) and only counts when nothing else says anything.
     * A container that lies low about its rate is still stopped by
     * job_timeout.
     */
    {
        double avg, nb, r;

        avg = rational(json_string_value(json_object_get(video, "avg_frame_rate")));
        nb = num_string(video, "nb_frames");
        r = rational(json_string_value(json_object_get(video, "r_frame_rate")));
        if (isnan(nb) || isinf(nb) || nb < 0) {
            nb = 0;
        }
        p->rate = avg;
        if (nb > 0 && nb / p->duration > p->rate) {
            p->rate = nb / p->duration;
        }
        if (p->rate <= 0) {
            p->rate = r > 0 ? r : p->fps;
        }
        p->frames = p->duration * p->rate;
        if (nb > p->frames) {
            p->frames = nb;
        }
    }

    /* what a small file may claim, and so cost: refused before any encoding */
    if (p->duration > cf->max_source_duration) {
        snprintf(p->error, sizeof(p->error),
                 "source_too_large: it lasts %.0f s, more than max_source_duration"
                 " (%.0f s)", p->duration, cf->max_source_duration);
        goto done;
    }
    if ((long) p->width * p->height > cf->max_source_pixels) {
        snprintf(p->error, sizeof(p->error),
                 "source_too_large: %dx%d is %ld pixels a frame, more than"
                 " max_source_pixels (%ld)", p->width, p->height,
                 (long) p->width * p->height, cf->max_source_pixels);
        goto done;
    }
    if (p->rate > cf->max_source_fps) {
        snprintf(p->error, sizeof(p->error),
                 "source_too_large: it claims %.0f frames a second, more than"
                 " max_source_fps (%g)", p->rate, cf->max_source_fps);
        goto done;
    }
    if (p->frames * p->width * p->height > cf->max_source_work) {
        snprintf(p->error, sizeof(p->error),
                 "source_too_large: %.0f s x %.3g frames a second x %dx%d is %.3g"
                 " pixel-frames to decode, more than max_source_work (%.3g)",
                 p->duration, p->rate, p->width, p->height,
                 p->frames * p->width * p->height, cf->max_source_work);
        goto done;
    }
    p->ok = 1;

done:
    json_decref(root);
}

static void
avc_codec(const char *profile, int level, char *out, size_t len)
{
    int prof = 0x64, flags = 0x00;

    if (profile == NULL) {
        profile = "High";
    }
    if (!strcmp(profile, "Constrained Baseline")) {
        prof = 0x42; flags = 0xC0;
    } else if (!strcmp(profile, "Baseline")) {
        prof = 0x42; flags = 0x00;
    } else if (!strcmp(profile, "Main")) {
        prof = 0x4D; flags = 0x40;
    } else if (!strcmp(profile, "High 10")) {
        prof = 0x6E;
    }
    snprintf(out, len, "avc1.%02x%02x%02x", prof, flags, level & 0xff);
}

int
vh_probe_variant(const vh_conf_t *cf, const char *segment, int audio_only,
    vh_variant_info_t *vi)
{
    vh_buf_t  out = { 0 };
    int       refused, rc;
    char      err[400];

    memset(vi, 0, sizeof(*vi));
    if (run_ffprobe(cf, segment, "mpegts", 0, &out, err, sizeof(err), &refused) != 0) {
        vh_buf_free(&out);
        vh_error("ffprobe %s: %s", segment, err);
        return -1;
    }
    rc = (audio_only ? vh_probe_audio_json : vh_probe_variant_json)
             (out.data ? out.data : "", out.len, vi, err, sizeof(err));
    vh_buf_free(&out);
    if (rc != 0) {
        vh_error("ffprobe %s: %s", segment, err);
    }
    return rc;
}

/*
 * The smallest start_pts of the streams of a segment (MPEG-TS: 90 kHz):
 * where its media starts, the MPEGTS of subtitle segments' X-TIMESTAMP-MAP
 * (docs/helper.md "Captions").  0 when no stream says.
 */
static long long
min_start_pts(json_t *streams)
{
    json_t     *s, *v;
    size_t      i;
    long long   pts, min = 0;

    json_array_foreach(streams, i, s) {
        v = json_object_get(s, "start_pts");
        if (!json_is_integer(v)) {
            continue;
        }
        pts = (long long) json_integer_value(v);
        if (pts > 0 && (min == 0 || pts < min)) {
            min = pts;
        }
    }
    return min;
}

int
vh_probe_variant_json(const char *text, size_t len, vh_variant_info_t *vi,
    char *err, size_t errlen)
{
    json_t        *root, *streams, *s;
    json_error_t   jerr;
    size_t         i;
    char           v[32] = "", a[32] = "";

    memset(vi, 0, sizeof(*vi));
    root = json_loadb(text, len, 0, &jerr);
    if (root == NULL) {
        snprintf(err, errlen, "ffprobe printed no JSON: %s", jerr.text);
        return -1;
    }
    streams = json_object_get(root, "streams");
    json_array_foreach(streams, i, s) {
        const char *type = json_string_value(json_object_get(s, "codec_type"));
        const char *prof = json_string_value(json_object_get(s, "profile"));

        if (type && !strcmp(type, "video") && v[0] == '\0') {
            vi->width = (int) json_integer_value(json_object_get(s, "width"));
            vi->height = (int) json_integer_value(json_object_get(s, "height"));
            vi->fps = rational(json_string_value(json_object_get(s, "avg_frame_rate")));
            if (vi->fps <= 0) {
                vi->fps = rational(json_string_value(json_object_get(s, "r_frame_rate")));
            }
            avc_codec(prof, (int) json_integer_value(json_object_get(s, "level")),
                      v, sizeof(v));
        } else if (type && !strcmp(type, "audio") && a[0] == '\0') {
            snprintf(a, sizeof(a), "mp4a.40.%d",
                     prof && !strcmp(prof, "HE-AAC") ? 5
                     : prof && !strcmp(prof, "HE-AACv2") ? 29 : 2);
        }
    }
    vi->mpegts_start = min_start_pts(streams);
    json_decref(root);
    if (v[0] == '\0') {
        snprintf(err, errlen, "no video stream in the output");
        return -1;
    }
    snprintf(vi->codecs, sizeof(vi->codecs), "%s%s%s", v, a[0] ? "," : "", a);
    return 0;
}

int
vh_probe_audio_json(const char *text, size_t len, vh_variant_info_t *vi,
    char *err, size_t errlen)
{
    json_t        *root, *streams, *s;
    json_error_t   jerr;
    size_t         i;
    int            audio = 0, other = 0;
    const char    *prof = NULL;

    memset(vi, 0, sizeof(*vi));
    root = json_loadb(text, len, 0, &jerr);
    if (root == NULL) {
        snprintf(err, errlen, "ffprobe printed no JSON: %s", jerr.text);
        return -1;
    }
    streams = json_object_get(root, "streams");
    json_array_foreach(streams, i, s) {
        const char *type = json_string_value(json_object_get(s, "codec_type"));

        if (type && !strcmp(type, "audio")) {
            if (audio++ == 0) {
                prof = json_string_value(json_object_get(s, "profile"));
                snprintf(vi->codecs, sizeof(vi->codecs), "mp4a.40.%d",
                         prof && !strcmp(prof, "HE-AAC") ? 5
                         : prof && !strcmp(prof, "HE-AACv2") ? 29 : 2);
            }
        } else {
            other++;
        }
    }
    vi->mpegts_start = min_start_pts(streams);
    json_decref(root);
    if (audio != 1 || other != 0) {
        snprintf(err, errlen, "the audio-only output has %d audio and %d other"
                 " stream(s), not one audio stream", audio, other);
        vi->codecs[0] = '\0';
        return -1;
    }
    return 0;
}
