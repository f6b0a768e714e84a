/*
 * The helper's pure logic, unit-tested with the core's TAP producer
 * (t/unit/tap.h): which rungs a source gets (ladder.c), the ladder's ffmpeg
 * command line, what ffprobe's JSON says about a source and a rendition
 * (probe.c), the playlists' measures, the master playlist (with subtitle
 * tracks) and the renditions JSON (hls.c).  The configuration is the helper's own defaults
 * (vh_conf_init): ladder 240p:400k .. 1080p:5000k, max_height 1080,
 * max_fps 60, segment_duration 6.  Run by t/096-helper-logic.t.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "tap.h"
#include "vodlms_helper.h"

volatile sig_atomic_t  vh_stop;     /* main.c's, which is not linked */

static vh_conf_t  conf;

static void
defaults(void)
{
    vh_conf_free(&conf);
    if (vh_conf_init(&conf) != 0) {
        fprintf(stderr, "vh_conf_init failed\n");
        exit(1);
    }
}

/* ---------------------------------------------------------------- ladder plan */

static vh_probe_t
source(int w, int h, double fps, double duration)
{
    vh_probe_t p;

    memset(&p, 0, sizeof(p));
    p.ok = 1;
    p.width = w;
    p.height = h;
    p.fps = fps;
    p.duration = duration;
    p.has_audio = 1;
    snprintf(p.demuxer, sizeof(p.demuxer), "mov");
    return p;
}

/* "240p:426x240:400000 360p:..." */
static void
plan_text(const vh_plan_t *pl, char *out, size_t len)
{
    size_t  used = 0;
    int     i;

    out[0] = '\0';
    for (i = 0; i < pl->n && used < len; i++) {
        used += snprintf(out + used, len - used, "%s%s:%dx%d:%ld", i ? " " : "",
                         pl->rungs[i].rung.name, pl->rungs[i].width,
                         pl->rungs[i].height, pl->rungs[i].rung.video_bitrate);
    }
}

static void
plan_is(int w, int h, const char *want, const char *what)
{
    vh_probe_t  p = source(w, h, 25, 60);
    vh_plan_t   pl;
    char        got[1024];

    is_int(vh_ladder_plan(&conf, &p, &pl), 0, "%s: planned", what);
    plan_text(&pl, got, sizeof(got));
    is_str(got, want, "%s: %dx%d -> %s", what, w, h, want);
}

static void
test_plan(void)
{
    vh_probe_t  p;
    vh_plan_t   pl;
    int         i;

    defaults();
    plan_is(1920, 1080, "240p:426x240:400000 360p:640x360:800000 480p:854x480:1400000 "
            "720p:1280x720:2800000 1080p:1920x1080:5000000", "1080p source: every rung");
    plan_is(1280, 720, "240p:426x240:400000 360p:640x360:800000 480p:854x480:1400000 "
            "720p:1280x720:2800000", "720p source: never upscaled to 1080p");
    plan_is(1280, 719, "240p:428x240:400000 360p:640x360:800000 480p:854x480:1400000",
            "719 lines: 720p would upscale by one line");
    plan_is(3840, 2160, "240p:426x240:400000 360p:640x360:800000 480p:854x480:1400000 "
            "720p:1280x720:2800000 1080p:1920x1080:5000000", "4K source: capped at max_height");
    plan_is(1080, 1920, "240p:136x240:400000 360p:202x360:800000 480p:270x480:1400000 "
            "720p:406x720:2800000 1080p:608x1080:5000000",
            "portrait phone video: rungs by height, even widths");
    plan_is(2560, 1080, "240p:568x240:400000 360p:854x360:800000 480p:1138x480:1400000 "
            "720p:1706x720:2800000 1080p:2560x1080:5000000", "21:9: the aspect ratio kept");
    plan_is(854, 479, "240p:428x240:400000 360p:642x360:800000",
            "odd height: rungs at most the source's height");
    plan_is(640, 480, "240p:320x240:400000 360p:480x360:800000 480p:640x480:1400000",
            "4:3");
    plan_is(176, 144, "144p:176x144:400000",
            "smaller than the lowest rung: one rung at its own height, lowest bitrate");
    plan_is(177, 143, "142p:176x142:400000",
            "odd and small: the height made even (never above the source)");
    plan_is(16, 2000, "240p:2x240:400000 360p:2x360:800000 480p:4x480:1400000 "
            "720p:6x720:2800000 1080p:8x1080:5000000", "a sliver: widths at least 2, even");

    p = source(1920, 1080, 25, 60);
    vh_ladder_plan(&conf, &p, &pl);
    for (i = 0; i < pl.n; i++) {
        if (pl.rungs[i].width % 2 || pl.rungs[i].height % 2
            || pl.rungs[i].height > p.height || pl.rungs[i].width > p.width)
        {
            break;
        }
    }
    ok(i == pl.n, "1080p: every rung even-sized and within the source");
    is_int(pl.gop, 150, "25 fps, 6 s segments: a GOP of 150 frames");
    ok(pl.fps == 25, "25 fps kept");

    p = source(1920, 1080, 30000.0 / 1001, 60);
    vh_ladder_plan(&conf, &p, &pl);
    is_int(pl.gop, 180, "29.97 fps: GOP 180 (rounded)");
    p = source(1920, 1080, 120, 60);
    vh_ladder_plan(&conf, &p, &pl);
    ok(pl.fps == 60, "120 fps capped at max_fps 60");
    is_int(pl.gop, 360, "... GOP from the capped rate");
    p = source(1920, 1080, 0.1, 60);
    vh_ladder_plan(&conf, &p, &pl);
    is_int(pl.gop, 1, "a very low frame rate: GOP at least 1");

    p = source(1920, 1080, 25, 60);
    vh_ladder_plan(&conf, &p, &pl);
    ok(pl.timeout == 900, "job_timeout auto, 60 s source: the 900 s floor (%g)", pl.timeout);
    p = source(1920, 1080, 25, 600);
    vh_ladder_plan(&conf, &p, &pl);
    ok(pl.timeout == 3600, "job_timeout auto, 600 s source: 6 x 600 (%g)", pl.timeout);
    conf.job_timeout = 120;
    vh_ladder_plan(&conf, &p, &pl);
    ok(pl.timeout == 120, "job_timeout = 120: as configured");
    conf.job_timeout = 0;
    vh_ladder_plan(&conf, &p, &pl);
    ok(pl.timeout == 0, "job_timeout = 0: no limit");

    defaults();
    conf.max_height = 480;
    plan_is(1920, 1080, "240p:426x240:400000 360p:640x360:800000 480p:854x480:1400000",
            "max_height 480");
    conf.max_height = 200;
    plan_is(1920, 1080, "200p:356x200:400000",
            "max_height below the lowest rung: one rung at max_height");
    defaults();
}

/* ---------------------------------------------------------------- ffmpeg command */

/* the argument after flag (its n-th occurrence, 0-based), or NULL */
static const char *
after(const vh_args_t *a, const char *flag, int nth)
{
    int i;

    for (i = 0; i + 1 < a->n; i++) {
        if (!strcmp(a->argv[i], flag) && nth-- == 0) {
            return a->argv[i + 1];
        }
    }
    return NULL;
}

static int
count(const vh_args_t *a, const char *s)
{
    int i, n = 0;

    for (i = 0; i < a->n; i++) {
        n += !strcmp(a->argv[i], s);
    }
    return n;
}

static void
test_args(void)
{
    vh_probe_t  p = source(1920, 1080, 25, 60);
    vh_plan_t   pl;
    vh_args_t   a;
    int         rc;

    defaults();
    /* the ladder alone; audio only and the storyboard: test_args_extras() */
    conf.audio_only = 0;
    conf.thumbnails = 0;
    vh_ladder_plan(&conf, &p, &pl);
    memset(&a, 0, sizeof(a));
    rc = vh_ladder_args(&conf, "/up/lecture.mp4", &p, &pl, "/work/tmp", &a);
    is_int(rc, 0, "1080p with audio: command built");
    is_str(a.argv[0], conf.ffmpeg, "argv[0] is the configured ffmpeg");
    ok(a.argv[a.n] == NULL, "argv is NULL-terminated");
    is_str(after(&a, "-format_whitelist", 0), VH_SOURCE_FORMATS, "input: demuxer allow-list");
    is_str(after(&a, "-protocol_whitelist", 0), "file", "input: the file protocol only");
    is_str(after(&a, "-f", 0), "mov", "input: the demuxer ffprobe found, forced");
    is_str(after(&a, "-enable_drefs", 0), "0", "mov: external references off");
    is_str(after(&a, "-i", 0), "file:/up/lecture.mp4", "input: file:<path>");
    is_str(after(&a, "-filter_complex", 0),
           "[0:0]split=5[s0][s1][s2][s3][s4]"
           ";[s0]scale=426:240,setsar=1,format=yuv420p[v0]"
           ";[s1]scale=640:360,setsar=1,format=yuv420p[v1]"
           ";[s2]scale=854:480,setsar=1,format=yuv420p[v2]"
           ";[s3]scale=1280:720,setsar=1,format=yuv420p[v3]"
           ";[s4]scale=1920:1080,setsar=1,format=yuv420p[v4]",
           "one decode, split into the five rungs' sizes");
    is_str(after(&a, "-map", 0), "[v0]", "first map: the 240p video");
    is_int(count(&a, "0:a:0"), 5, "the audio mapped once per rung");
    is_str(after(&a, "-b:v:0", 0), "400000", "240p: 400k");
    is_str(after(&a, "-maxrate:v:0", 0), "440000", "240p: maxrate +10%");
    is_str(after(&a, "-bufsize:v:0", 0), "600000", "240p: bufsize +50%");
    is_str(after(&a, "-b:v:4", 0), "5000000", "1080p: 5000k");
    is_str(after(&a, "-g", 0), "150", "GOP: one segment of frames");
    is_str(after(&a, "-keyint_min", 0), "150", "no shorter GOP");
    is_str(after(&a, "-sc_threshold", 0), "0", "no scene-cut keyframes");
    is_str(after(&a, "-force_key_frames", 0), "expr:gte(t,n_forced*6)",
           "a keyframe on every segment boundary");
    is_str(after(&a, "-b:a", 0), "128000", "AAC at audio_bitrate");
    is_str(after(&a, "-hls_time", 0), "6", "segment_duration");
    is_str(after(&a, "-hls_playlist_type", 0), "vod", "VOD playlists");
    is_str(after(&a, "-hls_segment_filename", 0), "/work/tmp/%v/seg_%05d.ts",
           "segments in <dir>/<rung>/");
    is_str(after(&a, "-var_stream_map", 0),
           "v:0,a:0,name:240p v:1,a:1,name:360p v:2,a:2,name:480p v:3,a:3,name:720p "
           "v:4,a:4,name:1080p", "variant streams named after the rungs");
    is_str(after(&a, "-master_pl_name", 0), "master.m3u8", "ffmpeg's master name");
    is_str(a.argv[a.n - 1], "/work/tmp/%v/index.m3u8", "output: <dir>/<rung>/index.m3u8");
    is_int(count(&a, "-threads"), 0, "threads = 0: no -threads");
    is_int(count(&a, "-hls_key_info_file"), 0, "not encrypted: no key info file");
    is_str(after(&a, "-hls_flags", 0), "independent_segments",
           "not encrypted: independent segments only");
    vh_args_free(&a);

    /* encrypt = on, one key: the muxer reads the key info file at each segment */
    pl.key_info = "/tmp/vodlms-keys-x/0.keyinfo";
    memset(&a, 0, sizeof(a));
    is_int(vh_ladder_args(&conf, "/up/lecture.mp4", &p, &pl, "/work/tmp", &a), 0,
           "encrypted: command built");
    is_str(after(&a, "-hls_key_info_file", 0), "/tmp/vodlms-keys-x/0.keyinfo",
           "encrypted: the key info file");
    is_str(after(&a, "-hls_flags", 0), "independent_segments+periodic_rekey",
           "encrypted: periodic_rekey (the IV of each segment is its sequence number)");
    is_int(count(&a, "-hls_flags"), 1, "encrypted: one -hls_flags");
    vh_args_free(&a);
    pl.key_info = NULL;

    /* no audio, cover art first, 120 fps, matroska, 2 threads */
    p = source(1280, 720, 120, 60);
    p.has_audio = 0;
    p.video_index = 1;
    snprintf(p.demuxer, sizeof(p.demuxer), "matroska");
    conf.threads = 2;
    vh_ladder_plan(&conf, &p, &pl);
    memset(&a, 0, sizeof(a));
    is_int(vh_ladder_args(&conf, "/up/x.mkv", &p, &pl, "/d", &a), 0,
           "720p, no audio: command built");
    is_str(after(&a, "-filter_complex", 0),
           "[0:1]fps=60,split=4[s0][s1][s2][s3]"
           ";[s0]scale=426:240,setsar=1,format=yuv420p[v0]"
           ";[s1]scale=640:360,setsar=1,format=yuv420p[v1]"
           ";[s2]scale=854:480,setsar=1,format=yuv420p[v2]"
           ";[s3]scale=1280:720,setsar=1,format=yuv420p[v3]",
           "the probed stream (not the cover art at 0), frame rate capped, four rungs");
    is_int(count(&a, "0:a:0") + count(&a, "-c:a"), 0, "no audio: no audio map, no encoder");
    is_str(after(&a, "-var_stream_map", 0),
           "v:0,name:240p v:1,name:360p v:2,name:480p v:3,name:720p",
           "video-only variant streams");
    is_int(count(&a, "-enable_drefs"), 0, "not mov: no mov options");
    is_str(after(&a, "-threads", 0), "2", "threads = 2");
    is_str(after(&a, "-g", 0), "360", "GOP from the capped 60 fps");
    vh_args_free(&a);

    memset(&a, 0, sizeof(a));
    ok(vh_ladder_args(&conf, "relative.mp4", &p, &pl, "/d", &a) == -1,
       "a relative source path is refused");
    vh_args_free(&a);
    p.demuxer[0] = '\0';
    memset(&a, 0, sizeof(a));
    ok(vh_ladder_args(&conf, "/up/x.mkv", &p, &pl, "/d", &a) == -1,
       "no accepted demuxer: refused");
    vh_args_free(&a);
    snprintf(p.demuxer, sizeof(p.demuxer), "matroska");
    p.video_index = -1;
    memset(&a, 0, sizeof(a));
    ok(vh_ladder_args(&conf, "/up/x.mkv", &p, &pl, "/d", &a) == -1,
       "no video stream index: refused");
    vh_args_free(&a);
    defaults();
}

/* ---------------------------------------------------------------- probe JSON */

static vh_probe_t
probe(const char *json)
{
    vh_probe_t p;

    vh_probe_source_json(&conf, json, strlen(json), &p);
    return p;
}

#define MP4_FORMAT  "\"format\":{\"format_name\":\"mov,mp4,m4a,3gp,3g2,mj2\",\"duration\":\"12.500000\"}"
#define H264(w, h, extra) \
    "{\"index\":0,\"codec_type\":\"video\",\"width\":" #w ",\"height\":" #h \
    ",\"avg_frame_rate\":\"30000/1001\",\"r_frame_rate\":\"30000/1001\"" extra "}"
#define AAC "{\"index\":1,\"codec_type\":\"audio\"}"

static void
test_probe(void)
{
    vh_probe_t  p;

    defaults();
    p = probe("{\"streams\":[" H264(1920, 1080, "") "," AAC "]," MP4_FORMAT "}");
    ok(p.ok, "an MP4 with H.264 and AAC is usable (%s)", p.error);
    is_str(p.demuxer, "mov", "mov,mp4,...: the mov demuxer");
    ok(p.width == 1920 && p.height == 1080, "1920x1080");
    ok(p.fps > 29.969 && p.fps < 29.971, "30000/1001 fps (%g)", p.fps);
    ok(p.duration == 12.5, "duration from the format");
    ok(p.has_audio && p.video_index == 0, "audio found, video stream 0");

    p = probe("{\"streams\":[" H264(1280, 720, "") "],"
              "\"format\":{\"format_name\":\"matroska,webm\",\"duration\":\"3\"}}");
    ok(p.ok && !p.has_audio, "a WebM without audio is usable, has_audio 0");
    is_str(p.demuxer, "matroska", "matroska,webm: the matroska demuxer");

    p = probe("{\"streams\":[" H264(1280, 720, "") "],"
              "\"format\":{\"format_name\":\"hls\",\"duration\":\"3\"}}");
    ok(!p.ok && !strncmp(p.error, "unsupported_source:", 19),
       "an HLS playlist: unsupported_source (%s)", p.error);
    p = probe("{\"streams\":[" H264(1280, 720, "") "],"
              "\"format\":{\"format_name\":\"concat\",\"duration\":\"3\"}}");
    ok(!p.ok && !strncmp(p.error, "unsupported_source:", 19), "a concat script: refused");

    p = probe("{\"streams\":["
              "{\"index\":0,\"codec_type\":\"video\",\"width\":600,\"height\":600,"
              "\"disposition\":{\"attached_pic\":1}},"
              "{\"index\":1,\"codec_type\":\"video\",\"width\":1280,\"height\":720,"
              "\"avg_frame_rate\":\"25/1\"}]," MP4_FORMAT "}");
    ok(p.ok && p.video_index == 1 && p.width == 1280,
       "cover art first: the real video stream (1) is probed");

    p = probe("{\"streams\":[" AAC "]," MP4_FORMAT "}");
    is_str(p.error, "not a video: no video stream (format \"mov,mp4,m4a,3gp,3g2,mj2\", "
           "audio only)", "audio only: refused, and said so");

    p = probe("{\"streams\":[" H264(1920, 1080, ",\"tags\":{\"rotate\":\"90\"}") "],"
              MP4_FORMAT "}");
    ok(p.ok && p.width == 1080 && p.height == 1920, "rotate 90 (tag): portrait 1080x1920");
    p = probe("{\"streams\":[" H264(1920, 1080,
              ",\"side_data_list\":[{\"rotation\":-90}]") "]," MP4_FORMAT "}");
    ok(p.ok && p.width == 1080 && p.height == 1920, "rotation -90 (side data): portrait");
    p = probe("{\"streams\":[" H264(1920, 1080, ",\"tags\":{\"rotate\":\"180\"}") "],"
              MP4_FORMAT "}");
    ok(p.width == 1920 && p.height == 1080, "rotate 180: landscape still");

    p = probe("{\"streams\":[" H264(8, 8, "") "]," MP4_FORMAT "}");
    is_str(p.error, "not a video: picture size 8x8 is too small", "8x8: too small");

    p = probe("{\"streams\":[" H264(640, 360, "") "],"
              "\"format\":{\"format_name\":\"mov,mp4\"}}");
    is_str(p.error, "not a video: no usable duration (a still image?)", "no duration");
    p = probe("{\"streams\":[" H264(640, 360, ",\"duration\":\"7.5\"") "],"
              "\"format\":{\"format_name\":\"mov,mp4\"}}");
    ok(p.ok && p.duration == 7.5, "the stream's duration when the format has none");

    p = probe("{\"streams\":[{\"index\":0,\"codec_type\":\"video\",\"width\":640,"
              "\"height\":360,\"avg_frame_rate\":\"0/0\",\"r_frame_rate\":\"24/1\"}],"
              MP4_FORMAT "}");
    ok(p.fps == 24, "avg_frame_rate 0/0: r_frame_rate (%g)", p.fps);
    p = probe("{\"streams\":[{\"index\":0,\"codec_type\":\"video\",\"width\":640,"
              "\"height\":360}]," MP4_FORMAT "}");
    ok(p.ok && p.fps == 25, "no frame rate at all: 25 assumed");

    p = probe("{\"streams\":[" H264(640, 360, "") "],"
              "\"format\":{\"format_name\":\"mov,mp4\",\"duration\":\"21601\"}}");
    ok(!p.ok && strstr(p.error, "source_too_large: it lasts 21601 s") != NULL,
       "longer than max_source_duration: source_too_large (%s)", p.error);
    p = probe("{\"streams\":[" H264(8192, 4320, "") "]," MP4_FORMAT "}");
    ok(!p.ok && strstr(p.error, "source_too_large: 8192x4320") != NULL,
       "more pixels than max_source_pixels: source_too_large");

    p = probe("{\"streams\":[");
    ok(!p.ok && strstr(p.error, "ffprobe printed no JSON") != NULL, "truncated JSON: refused");
}

static void
variant_is(const char *streams, const char *codecs, const char *what)
{
    vh_variant_info_t  vi;
    char               json[2048], err[200] = "";

    snprintf(json, sizeof(json), "{\"streams\":[%s]}", streams);
    if (!is_int(vh_probe_variant_json(json, strlen(json), &vi, err, sizeof(err)), 0,
                "%s: parsed", what))
    {
        diag("%s", err);
    }
    is_str(vi.codecs, codecs, "%s: CODECS %s", what, codecs);
}

static void
test_variant(void)
{
    vh_variant_info_t  vi;
    char               err[200] = "";
    const char        *json;

    variant_is("{\"codec_type\":\"video\",\"profile\":\"High\",\"level\":31,\"width\":1280,"
               "\"height\":720,\"avg_frame_rate\":\"25/1\"},"
               "{\"codec_type\":\"audio\",\"profile\":\"LC\"}",
               "avc1.64001f,mp4a.40.2", "High 3.1 + AAC-LC");
    variant_is("{\"codec_type\":\"video\",\"profile\":\"Main\",\"level\":30}",
               "avc1.4d401e", "Main 3.0, no audio");
    variant_is("{\"codec_type\":\"video\",\"profile\":\"Constrained Baseline\",\"level\":21},"
               "{\"codec_type\":\"audio\",\"profile\":\"HE-AAC\"}",
               "avc1.42c015,mp4a.40.5", "Constrained Baseline 2.1 + HE-AAC");
    variant_is("{\"codec_type\":\"video\",\"profile\":\"High 10\",\"level\":40},"
               "{\"codec_type\":\"audio\",\"profile\":\"HE-AACv2\"}",
               "avc1.6e0028,mp4a.40.29", "High 10 4.0 + HE-AACv2");
    variant_is("{\"codec_type\":\"video\",\"level\":40}", "avc1.640028",
               "no profile: High");

    json = "{\"streams\":[{\"codec_type\":\"video\",\"profile\":\"High\",\"level\":30,"
           "\"width\":640,\"height\":360,\"avg_frame_rate\":\"0/0\","
           "\"r_frame_rate\":\"30000/1001\"}]}";
    is_int(vh_probe_variant_json(json, strlen(json), &vi, err, sizeof(err)), 0,
           "640x360 rendition parsed");
    ok(vi.width == 640 && vi.height == 360 && vi.fps > 29.96 && vi.fps < 29.98,
       "its size and r_frame_rate when avg_frame_rate is 0/0");

    json = "{\"streams\":[{\"codec_type\":\"audio\",\"profile\":\"LC\"}]}";
    ok(vh_probe_variant_json(json, strlen(json), &vi, err, sizeof(err)) == -1
       && !strcmp(err, "no video stream in the output"), "no video stream: an error");
    is_int(vh_probe_audio_json(json, strlen(json), &vi, err, sizeof(err)), 0,
           "audio only: one AAC stream accepted");
    is_str(vi.codecs, "mp4a.40.2", "audio only: CODECS mp4a.40.2");
    json = "{\"streams\":[{\"codec_type\":\"video\"},{\"codec_type\":\"audio\"}]}";
    ok(vh_probe_audio_json(json, strlen(json), &vi, err, sizeof(err)) == -1
       && strstr(err, "1 audio and 1 other") != NULL, "audio only with a video stream: an error");
    json = "not json";
    ok(vh_probe_variant_json(json, strlen(json), &vi, err, sizeof(err)) == -1
       && strstr(err, "no JSON") != NULL, "not JSON: an error");

    /* where the segment's media starts: the smallest start_pts (captions' MPEGTS) */
    json = "{\"streams\":[{\"codec_type\":\"video\",\"profile\":\"High\",\"level\":30,"
           "\"start_pts\":128090},{\"codec_type\":\"audio\",\"start_pts\":126000}]}";
    is_int(vh_probe_variant_json(json, strlen(json), &vi, err, sizeof(err)), 0,
           "a segment with start_pts parsed");
    is_int((int) vi.mpegts_start, 126000, "mpegts_start: the smallest start_pts of its streams");
    json = "{\"streams\":[{\"codec_type\":\"audio\",\"start_pts\":127500}]}";
    is_int(vh_probe_audio_json(json, strlen(json), &vi, err, sizeof(err)), 0,
           "audio only with start_pts parsed");
    is_int((int) vi.mpegts_start, 127500, "audio only: its mpegts_start");
    json = "{\"streams\":[{\"codec_type\":\"video\",\"level\":30,\"start_pts\":\"N/A\"}]}";
    is_int(vh_probe_variant_json(json, strlen(json), &vi, err, sizeof(err)), 0,
           "a segment without a numeric start_pts parsed");
    is_int((int) vi.mpegts_start, 0, "mpegts_start 0 (unknown) when no stream gives one");
}

/* ---------------------------------------------------------------- playlists */

static void
variant(vh_variant_t *v, const char *name, int w, int h, double fps, long bw,
    long avg, const char *codecs)
{
    memset(v, 0, sizeof(*v));
    snprintf(v->name, sizeof(v->name), "%s", name);
    v->width = w;
    v->height = h;
    v->fps = fps;
    v->bandwidth = bw;
    v->average_bandwidth = avg;
    snprintf(v->codecs, sizeof(v->codecs), "%s", codecs);
    snprintf(v->playlist, sizeof(v->playlist), "%s/index.m3u8", name);
}

static void
test_args_extras(void)
{
    vh_probe_t  p = source(1280, 720, 25, 95);
    vh_plan_t   pl;
    vh_args_t   a;
    vh_buf_t    out = { 0 };

    defaults();
    ok(conf.audio_only == 1 && conf.thumbnails == 1 && conf.storyboard_interval == 10
       && conf.storyboard_width == 160 && conf.audio_only_bitrate == 64000,
       "defaults: audio_only on at 64k, thumbnails on, a 160 px tile every 10 s");
    vh_ladder_plan(&conf, &p, &pl);
    is_int(pl.tile_width * 1000 + pl.tile_height, 160090, "tile 160x90 for 16:9");
    memset(&a, 0, sizeof(a));
    ok(vh_ladder_args(&conf, "/up/l.mp4", &p, &pl, "/w", &a) == -1,
       "thumbnails without a directory: refused");
    vh_args_free(&a);
    pl.tiles_dir = "/w/.tiles";
    memset(&a, 0, sizeof(a));
    is_int(vh_ladder_args(&conf, "/up/l.mp4", &p, &pl, "/w", &a), 0,
           "720p + audio only + storyboard: command built");
    ok(strstr(after(&a, "-filter_complex", 0), "split=5[s0][s1][s2][s3][s4];") != NULL
       && strstr(after(&a, "-filter_complex", 0),
                 ";[s4]fps=1/10:round=up,scale=160:90,setsar=1[sb]") != NULL,
       "one more branch of the split: fps, scale");
    is_int(count(&a, "0:a:0"), 5, "the audio mapped per rung and once more");
    is_str(after(&a, "-b:a:4", 0), "64000", "the audio-only stream at audio_only_bitrate");
    is_str(after(&a, "-var_stream_map", 0),
           "v:0,a:0,name:240p v:1,a:1,name:360p v:2,a:2,name:480p v:3,a:3,name:720p "
           "a:4,name:audio", "the audio-only variant stream");
    is_str(after(&a, "-map", 5 + 4), "[sb]", "the storyboard's map, after the HLS output");
    is_str(a.argv[a.n - 1], "/w/.tiles/tile_%06d.jpg", "second output: the tiles");
    vh_args_free(&a);

    /* the track: 95 s, 10 s a tile, 3x2 sheets: 10 tiles on 2 sheets */
    conf.storyboard_columns = 3;
    conf.storyboard_rows = 2;
    is_int(vh_storyboard_vtt(&conf, &pl, 95, 11, &out), 0, "storyboard VTT written");
    ok(out.data && !strncmp(out.data, "WEBVTT\n\n00:00:00.000 --> 00:00:10.000\n"
                            "sprite_000.jpg#xywh=0,0,160,90\n", 61),
       "first cue: the first tile of the first sheet");
    ok(out.data && strstr(out.data, "\n00:00:50.000 --> 00:01:00.000\n"
                          "sprite_000.jpg#xywh=320,90,160,90\n") != NULL,
       "sixth cue: last column, second row");
    ok(out.data && strstr(out.data, "\n00:01:00.000 --> 00:01:10.000\n"
                          "sprite_001.jpg#xywh=0,0,160,90\n") != NULL,
       "seventh cue: the next sheet");
    {
        const char *last = "\n00:01:30.000 --> 00:01:35.000\n"
                           "sprite_001.jpg#xywh=0,90,160,90\n";
        ok(out.data && out.len > strlen(last)
           && !strcmp(out.data + out.len - strlen(last), last),
           "tenth and last cue: ends at the duration");
    }
    vh_buf_free(&out);
    is_int(vh_storyboard_vtt(&conf, &pl, 95, 6, &out), 0, "six tiles only: written");
    ok(out.data && strstr(out.data, "sprite_001") == NULL
       && strstr(out.data, "00:00:50.000 --> 00:01:00.000") != NULL,
       "no cue names a tile ffmpeg did not write");
    vh_buf_free(&out);
    ok(vh_storyboard_vtt(&conf, &pl, 95, 0, &out) == -1, "no tile: no track");
    vh_buf_free(&out);
}

/* the master with subtitle tracks: exactly what players read */
static void
test_master_subtitles(void)
{
    vh_variant_t   v[2];
    vh_subtitle_t  s[4];
    vh_buf_t       out = { 0 };
    const char    *head = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n";
    const char    *v240 = "#EXT-X-STREAM-INF:BANDWIDTH=512345,AVERAGE-BANDWIDTH=401000,"
                          "RESOLUTION=426x240,FRAME-RATE=25.000,CODECS=\"avc1.64001e,mp4a.40.2\"";
    const char    *aud = "#EXT-X-STREAM-INF:BANDWIDTH=70000,AVERAGE-BANDWIDTH=66000,"
                         "CODECS=\"mp4a.40.2\"";
    char           want[2048];

    variant(&v[0], "240p", 426, 240, 25, 512345, 401000, "avc1.64001e,mp4a.40.2");
    variant(&v[1], "audio", 0, 0, 0, 70000, 66000, "mp4a.40.2");

    is_int(vh_hls_master(v, 2, NULL, 0, &out), 0, "no subtitle track: written");
    snprintf(want, sizeof(want), "%s%s\n240p/index.m3u8\n%s\naudio/index.m3u8\n",
             head, v240, aud);
    is_str(out.data, want, "no subtitle track: the master as before, no SUBTITLES");
    vh_buf_free(&out);

    s[0].lang = "en";
    s[0].label = "English";
    s[0].uri = "subs/en/20261205T121500Z-3f9a1c2b/index.m3u8";
    s[0].is_default = 1;
    is_int(vh_hls_master(v, 2, s, 1, &out), 0, "one subtitle track: written");
    snprintf(want, sizeof(want),
             "%s#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",LANGUAGE=\"en\",NAME=\"English\","
             "DEFAULT=YES,AUTOSELECT=YES,FORCED=NO,"
             "URI=\"subs/en/20261205T121500Z-3f9a1c2b/index.m3u8\"\n"
             "%s,SUBTITLES=\"subs\"\n240p/index.m3u8\n"
             "%s,SUBTITLES=\"subs\"\naudio/index.m3u8\n", head, v240, aud);
    is_str(out.data, want, "one track: EXT-X-MEDIA before the variants, SUBTITLES on "
           "every variant (the audio-only one too)");
    vh_buf_free(&out);

    s[0].is_default = 0;
    s[1].lang = "fr-CA";
    s[1].label = "Fran\xc3\xa7" "ais";
    s[1].uri = "subs/fr-CA/20261205T121501Z-00000001/index.m3u8";
    s[1].is_default = 1;
    is_int(vh_hls_master(v, 1, s, 2, &out), 0, "two subtitle tracks: written");
    snprintf(want, sizeof(want),
             "%s#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",LANGUAGE=\"en\",NAME=\"English\","
             "DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,"
             "URI=\"subs/en/20261205T121500Z-3f9a1c2b/index.m3u8\"\n"
             "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",LANGUAGE=\"fr-CA\","
             "NAME=\"Fran\xc3\xa7" "ais\",DEFAULT=YES,AUTOSELECT=YES,FORCED=NO,"
             "URI=\"subs/fr-CA/20261205T121501Z-00000001/index.m3u8\"\n"
             "%s,SUBTITLES=\"subs\"\n240p/index.m3u8\n", head, v240);
    is_str(out.data, want, "two tracks in the order given, the default one YES, the other NO");
    vh_buf_free(&out);

    /* NAME unique in the group */
    s[0].label = "Subtitles";
    s[0].is_default = 1;
    s[1].label = "Subtitles";
    s[2].lang = "pt";
    s[2].label = "Subtitles (fr-CA)";
    s[2].uri = "subs/pt/r/index.m3u8";
    s[2].is_default = 0;
    s[3].lang = "pt-BR";
    s[3].label = "Subtitles";
    s[3].uri = "subs/pt-BR/r/index.m3u8";
    s[3].is_default = 0;
    is_int(vh_hls_master(v, 1, s, 4, &out), 0, "repeated labels: written");
    ok(out.data
       && strstr(out.data, "LANGUAGE=\"en\",NAME=\"Subtitles\",DEFAULT=YES") != NULL
       && strstr(out.data, "LANGUAGE=\"fr-CA\",NAME=\"Subtitles (fr-CA)\",DEFAULT=NO")
          != NULL
       && strstr(out.data, "LANGUAGE=\"pt\",NAME=\"Subtitles (fr-CA) (pt)\",") != NULL
       && strstr(out.data, "LANGUAGE=\"pt-BR\",NAME=\"Subtitles (pt-BR)\",") != NULL,
       "a repeated label gets \" (<lang>)\"; a name still taken gets another; one "
       "DEFAULT=YES even if two tracks claim it");
    vh_buf_free(&out);
    s[2].lang = "fr-CA";
    s[2].label = "Subtitles";
    is_int(vh_hls_master(v, 1, s, 3, &out), 0, "the same lang twice: written");
    ok(out.data && strstr(out.data, "NAME=\"Subtitles (fr-CA) (2)\"") != NULL,
       "a name taken even with its lang: numbered");
    vh_buf_free(&out);

    /* what could break out of a quoted attribute or the version: refused */
    s[0].label = "Eng\"lish";
    is_int(vh_hls_master(v, 1, s, 1, &out), -1, "a label with '\"': refused");
    vh_buf_free(&out);
    s[0].label = "Eng\nlish";
    is_int(vh_hls_master(v, 1, s, 1, &out), -1, "a label with a newline: refused");
    vh_buf_free(&out);
    /*
     * hls.js finds EXT-X-MEDIA with /#EXT-X-MEDIA:(.*)/g, anywhere: JavaScript's '.'
     * stops at U+2028 and U+2029, so what follows one in a NAME is read as a track
     * of its own (this one with its URI on another host)
     */
    s[0].label = "x\xe2\x80\xa8#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=subs,NAME=x,"
                 "DEFAULT=YES,URI=https://evil.example/s.m3u8,X=";
    is_int(vh_hls_master(v, 1, s, 1, &out), -1,
           "a label with U+2028 (a line end to JavaScript): refused");
    vh_buf_free(&out);
    s[0].label = "English\xe2\x80\xa9";
    is_int(vh_hls_master(v, 1, s, 1, &out), -1, "a label with U+2029: refused");
    vh_buf_free(&out);
    s[0].label = "Eng\xc2\x85lish";
    is_int(vh_hls_master(v, 1, s, 1, &out), -1, "a label with U+0085 (C1 NEL): refused");
    vh_buf_free(&out);
    s[0].label = "Fran\xe7" "ais";
    is_int(vh_hls_master(v, 1, s, 1, &out), -1, "a label that is not UTF-8: refused");
    vh_buf_free(&out);
    s[0].label = "Eng\xe2\x80";
    is_int(vh_hls_master(v, 1, s, 1, &out), -1, "a label ending inside a sequence: refused");
    vh_buf_free(&out);
    s[0].label = "Eng\xc0\xa2";
    is_int(vh_hls_master(v, 1, s, 1, &out), -1, "an overlong '\"': refused");
    vh_buf_free(&out);
    /*
     * hls.js finds its other master tags with one regex over the whole text,
     * inside a quoted NAME too; "{$name}" is a variable reference to it
     */
    s[0].label = "#EXT-X-CONTENT-STEERING:SERVER-URI=https://evil.example/steer?x=";
    is_int(vh_hls_master(v, 1, s, 1, &out), -1,
           "a label with #EXT-X-CONTENT-STEERING (hls.js asks that server): refused");
    vh_buf_free(&out);
    s[0].label = "#EXT-X-STREAM-INF:BANDWIDTH=99,CODECS=avc1.640033,X=";
    is_int(vh_hls_master(v, 1, s, 1, &out), -1,
           "a label with #EXT-X-STREAM-INF (hls.js's first variant replaced): refused");
    vh_buf_free(&out);
    s[0].label = "English #ext-x-start:TIME-OFFSET=60";
    is_int(vh_hls_master(v, 1, s, 1, &out), -1, "#ext in any case: refused");
    vh_buf_free(&out);
    s[0].label = "English {$lang}";
    is_int(vh_hls_master(v, 1, s, 1, &out), -1,
           "a label with \"{$\" (hls.js refuses the master: no EXT-X-DEFINE): refused");
    vh_buf_free(&out);
    s[0].label = "C# #1 {x} $5 #EX";
    is_int(vh_hls_master(v, 1, s, 1, &out), 0, "'#', '{' and '$' otherwise: written");
    vh_buf_free(&out);
    s[0].label = "\xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80 \xe2\x80\xaf";
    is_int(vh_hls_master(v, 1, s, 1, &out), 0, "a label of CJK, an emoji, U+202F: written");
    vh_buf_free(&out);
    s[0].label = "";
    is_int(vh_hls_master(v, 1, s, 1, &out), -1, "an empty label: refused");
    vh_buf_free(&out);
    s[0].label = "English";
    s[0].lang = "en\",URI=\"x";
    is_int(vh_hls_master(v, 1, s, 1, &out), -1, "a lang with a quote: refused");
    vh_buf_free(&out);
    s[0].lang = "en";
    s[0].uri = "../../other/index.m3u8";
    is_int(vh_hls_master(v, 1, s, 1, &out), -1, "a uri out of the version: refused");
    vh_buf_free(&out);
    s[0].uri = "https://evil.example/x.m3u8";
    is_int(vh_hls_master(v, 1, s, 1, &out), -1, "an absolute uri: refused");
    vh_buf_free(&out);
    s[0].uri = "/subs/en/r/index.m3u8";
    is_int(vh_hls_master(v, 1, s, 1, &out), -1, "a uri from the root: refused");
    vh_buf_free(&out);
    s[0].uri = NULL;
    is_int(vh_hls_master(v, 1, s, 1, &out), -1, "no uri: refused");
    vh_buf_free(&out);
    is_int(vh_hls_master(v, 1, NULL, 1, &out), -1, "tracks counted but not given: refused");
    vh_buf_free(&out);

    /*
     * nothing bounds the languages of a video but this: 30000 tracks of one
     * label made a 5.5 MB master in 1.5 s (each NAME compared with all before)
     */
    {
        static vh_subtitle_t  many[VH_HLS_MAX_SUBTITLES + 1];
        static char           langs[VH_HLS_MAX_SUBTITLES + 1][16];
        static char           uris[VH_HLS_MAX_SUBTITLES + 1][64];
        int                   i;

        for (i = 0; i <= VH_HLS_MAX_SUBTITLES; i++) {
            snprintf(langs[i], sizeof(langs[i]), "en-x%d", i);
            snprintf(uris[i], sizeof(uris[i]), "subs/%s/r/index.m3u8", langs[i]);
            many[i].lang = langs[i];
            many[i].label = "English";
            many[i].uri = uris[i];
            many[i].is_default = 0;
        }
        is_int(vh_hls_master(v, 1, many, VH_HLS_MAX_SUBTITLES, &out), 0,
               "%d subtitle tracks: written", VH_HLS_MAX_SUBTITLES);
        ok(out.data && strstr(out.data, "NAME=\"English (en-x99)\"") != NULL,
           "the last one's NAME made unique");
        vh_buf_free(&out);
        is_int(vh_hls_master(v, 1, many, VH_HLS_MAX_SUBTITLES + 1, &out), -1,
               "%d subtitle tracks: refused", VH_HLS_MAX_SUBTITLES + 1);
        vh_buf_free(&out);
    }
}

static void
test_master(void)
{
    vh_variant_t   v[2];
    vh_buf_t       out = { 0 };
    json_t        *j, *e;
    json_error_t   jerr;

    variant(&v[0], "240p", 426, 240, 25, 512345, 401000, "avc1.64001e,mp4a.40.2");
    variant(&v[1], "720p", 1280, 720, 30000.0 / 1001, 3100000, 2790000,
            "avc1.64001f,mp4a.40.2");
    is_int(vh_hls_master(v, 2, NULL, 0, &out), 0, "master written");
    is_str(out.data,
           "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n"
           "#EXT-X-STREAM-INF:BANDWIDTH=512345,AVERAGE-BANDWIDTH=401000,"
           "RESOLUTION=426x240,FRAME-RATE=25.000,CODECS=\"avc1.64001e,mp4a.40.2\"\n"
           "240p/index.m3u8\n"
           "#EXT-X-STREAM-INF:BANDWIDTH=3100000,AVERAGE-BANDWIDTH=2790000,"
           "RESOLUTION=1280x720,FRAME-RATE=29.970,CODECS=\"avc1.64001f,mp4a.40.2\"\n"
           "720p/index.m3u8\n",
           "the master: BANDWIDTH, AVERAGE-BANDWIDTH, RESOLUTION, FRAME-RATE, CODECS, "
           "relative paths, lowest rung first");
    vh_buf_free(&out);

    variant(&v[0], "360p", 640, 360, 24, 900000, 800000, "avc1.64001e");
    is_int(vh_hls_master(v, 1, NULL, 0, &out), 0, "video-only master written");
    ok(out.data && strstr(out.data, "CODECS=\"avc1.64001e\"\n360p/index.m3u8\n") != NULL,
       "no audio: CODECS names the video codec only");
    vh_buf_free(&out);

    variant(&v[1], "audio", 0, 0, 0, 70000, 66000, "mp4a.40.2");
    is_int(vh_hls_master(v, 2, NULL, 0, &out), 0, "master with audio only written");
    ok(out.data && strstr(out.data, "\n#EXT-X-STREAM-INF:BANDWIDTH=70000,"
                          "AVERAGE-BANDWIDTH=66000,CODECS=\"mp4a.40.2\"\n"
                          "audio/index.m3u8\n") != NULL,
       "audio only: a variant with the audio codec, no RESOLUTION or FRAME-RATE");
    vh_buf_free(&out);
    is_int(vh_hls_renditions_json(v, 2, &out), 0, "renditions JSON with audio only");
    j = out.data ? json_loads(out.data, 0, &jerr) : NULL;
    e = json_array_get(j, 1);
    ok(e && !strcmp(json_string_value(json_object_get(e, "name")), "audio")
       && json_object_get(e, "width") == NULL
       && !strcmp(json_string_value(json_object_get(e, "codecs")), "mp4a.40.2"),
       "renditions: audio only without a picture size");
    json_decref(j);
    vh_buf_free(&out);

    variant(&v[1], "720p", 1280, 720, 30000.0 / 1001, 3100000, 2790000,
            "avc1.64001f,mp4a.40.2");
    variant(&v[0], "240p", 426, 240, 30000.0 / 1001, 512345, 401000, "avc1.64001e,mp4a.40.2");
    v[0].mpegts_start = 126000;
    is_int(vh_hls_renditions_json(v, 2, &out), 0, "renditions JSON written");
    j = out.data ? json_loads(out.data, 0, &jerr) : NULL;
    ok(json_is_array(j) && json_array_size(j) == 2, "an array of two renditions");
    e = json_array_get(j, 0);
    is_str(json_string_value(json_object_get(e, "name")), "240p", "[0].name");
    is_int(json_integer_value(json_object_get(e, "width")), 426, "[0].width");
    is_int(json_integer_value(json_object_get(e, "height")), 240, "[0].height");
    is_int(json_integer_value(json_object_get(e, "bandwidth")), 512345, "[0].bandwidth");
    is_int(json_integer_value(json_object_get(e, "average_bandwidth")), 401000,
           "[0].average_bandwidth");
    ok(json_real_value(json_object_get(e, "frame_rate")) == 29.97,
       "[0].frame_rate rounded to 3 decimals (%g)",
       json_real_value(json_object_get(e, "frame_rate")));
    is_str(json_string_value(json_object_get(e, "playlist")), "240p/index.m3u8",
           "[0].playlist");
    is_str(json_string_value(json_object_get(json_array_get(j, 1), "codecs")),
           "avc1.64001f,mp4a.40.2", "[1].codecs");
    is_int((int) json_integer_value(json_object_get(e, "mpegts_start")), 126000,
           "[0].mpegts_start: where its first segment starts (90 kHz)");
    ok(json_object_get(json_array_get(j, 1), "mpegts_start") == NULL,
       "[1]: no mpegts_start when it is unknown (0)");
    json_decref(j);
    vh_buf_free(&out);
}

static char  dir[64];

static void
segment(const char *name, size_t bytes)
{
    char   path[256];
    FILE  *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (f == NULL) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    while (bytes--) {
        fputc('G', f);
    }
    fclose(f);
}

static void
test_stats(void)
{
    vh_playlist_stats_t  st;
    const char          *pl;

    snprintf(dir, sizeof(dir), "/tmp/vh-test-logic-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        ok(0, "mkdtemp");
        return;
    }
    segment("seg_00000.ts", 300000);
    segment("seg_00001.ts", 450000);
    segment("seg_00002.ts", 100000);

    pl = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-PLAYLIST-TYPE:VOD\n"
         "#EXTINF:6.000000,\nseg_00000.ts\n#EXTINF:6.000000,\nseg_00001.ts\n"
         "#EXTINF:0.400000,\nseg_00002.ts\n#EXT-X-ENDLIST\n";
    is_int(vh_hls_playlist_stats(dir, pl, &st), 0, "a VOD playlist measured");
    is_int(st.segments, 3, "three segments");
    ok(st.total_duration > 12.39 && st.total_duration < 12.41, "12.4 s in all");
    ok(st.max_segment == 6.0, "longest segment 6 s");
    is_int(st.peak_bandwidth, 600000, "BANDWIDTH: the peak segment, 450000 B in 6 s "
           "(the 0.4 s tail is not counted)");
    is_int(st.average_bandwidth, 548387, "AVERAGE-BANDWIDTH: 850000 B over 12.4 s");
    is_str(st.first_segment, "seg_00000.ts", "first segment named");

    pl = "#EXTM3U\r\n#EXTINF:6.0,\r\nseg_00000.ts\r\n#EXT-X-ENDLIST\r\n";
    is_int(vh_hls_playlist_stats(dir, pl, &st), 0, "CRLF line ends");
    is_int(st.peak_bandwidth, 400000, "... 300000 B in 6 s");

    pl = "#EXTM3U\n#EXTINF:0.4,\nseg_00002.ts\n";
    is_int(vh_hls_playlist_stats(dir, pl, &st), 0, "one short segment");
    is_int(st.peak_bandwidth, st.average_bandwidth, "peak never below the average");
    is_int(st.average_bandwidth, 2000000, "... 100000 B in 0.4 s");

    ok(vh_hls_playlist_stats(dir, "#EXTM3U\nseg_00000.ts\n", &st) == -1,
       "a URI without #EXTINF: refused");
    ok(vh_hls_playlist_stats(dir, "#EXTM3U\n#EXTINF:6,\n../seg_00000.ts\n", &st) == -1,
       "a URI outside the rung's directory: refused");
    ok(vh_hls_playlist_stats(dir, "#EXTM3U\n#EXTINF:6,\nseg_00009.ts\n", &st) == -1,
       "a segment that is not there: refused");
    ok(vh_hls_playlist_stats(dir, "#EXTM3U\n#EXT-X-ENDLIST\n", &st) == -1,
       "no segment at all: refused");

    vh_rm_rf(dir);
}

int
main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    vh_log_open(VH_LOG_ERROR, 0);

    test_plan();
    test_args();
    test_args_extras();
    test_probe();
    test_variant();
    test_master();
    test_master_subtitles();
    test_stats();

    vh_conf_free(&conf);
    return done_testing();
}
