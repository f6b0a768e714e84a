/*
 * Configuration: "key = value" lines with # comments, then command-line
 * flags: every key is also a flag (--key value or --key=value, with - or _).
 */

#define _GNU_SOURCE

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "vodlms_helper.h"

typedef enum { T_STR, T_INT, T_DBL, T_BITRATE, T_LADDER, T_BOOL, T_ONOFF, T_SIZE,
               T_TIMEOUT, T_PIXELS, T_WORK } vh_type_e;

typedef struct {
    const char  *key;
    vh_type_e    type;
    size_t       off;
    double       min, max;
    const char  *def;
    const char  *help;
} vh_key_t;

#define O(f) offsetof(vh_conf_t, f)

static const vh_key_t keys[] = {
    { "redis_host", T_STR, O(redis_host), 0, 0, "127.0.0.1", "Redis address (name or IP, resolved again on every reconnect)" },
    { "redis_port", T_INT, O(redis_port), 1, 65535, "6379", "Redis port" },
    { "redis_sentinels", T_STR, O(redis_sentinels), 0, 0, "", "Redis Sentinel addresses host[:port] (port 26379 by default), space or comma separated: the master is asked of them instead of redis_host" },
    { "redis_master_name", T_STR, O(redis_master_name), 0, 0, "", "with redis_sentinels: the name the sentinels monitor the master by (sentinel monitor NAME ...)" },
    { "redis_sentinel_username", T_STR, O(redis_sentinel_username), 0, 0, "", "ACL user of the sentinels (AUTH user pass)" },
    { "redis_sentinel_password", T_STR, O(redis_sentinel_password), 0, 0, "", "the sentinels' own requirepass (not the master's: redis_password); empty: no AUTH" },
    { "redis_username", T_STR, O(redis_username), 0, 0, "", "Redis ACL user (AUTH user pass)" },
    { "redis_password", T_STR, O(redis_password), 0, 0, "", "Redis password; empty: no AUTH" },
    { "redis_db", T_INT, O(redis_db), 0, 1024, "0", "Redis database number" },
    { "redis_timeout", T_DBL, O(redis_timeout), 0.1, 600, "5", "seconds for connect and each command" },
    { "stream", T_STR, O(stream), 0, 0, "vodlms:transcode", "Redis Stream key of the jobs" },
    { "group", T_STR, O(group), 0, 0, "vodlms-helpers", "consumer group (created with MKSTREAM)" },
    { "group_start_id", T_STR, O(group_start_id), 0, 0, "0", "where a new group starts: 0 = every entry, $ = new ones" },
    { "consumer", T_STR, O(consumer), 0, 0, "", "consumer name; empty: hostname-pid" },
    { "block_ms", T_INT, O(block_ms), 10, 60000, "2000", "XREADGROUP BLOCK (ms): how soon a stop is noticed when idle" },
    { "claim_idle", T_DBL, O(claim_idle), 0.1, 86400, "60", "seconds before a silent consumer's job is reclaimed (XPENDING IDLE, XCLAIM)" },
    { "max_attempts", T_INT, O(max_attempts), 1, 100, "3", "deliveries before a job is marked failed" },
    { "retry_backoff", T_DBL, O(retry_backoff), 0, 3600, "5", "seconds before the first retry, doubled each time" },
    { "retry_backoff_max", T_DBL, O(retry_backoff_max), 0, 86400, "300", "cap of the retry delay" },
    { "pg_conninfo", T_STR, O(pg_conninfo), 0, 0, "", "libpq conninfo or URL; empty: $DATABASE_URL, then PG* variables" },
    { "db_schema", T_STR, O(db_schema), 0, 0, "vodlms", "PostgreSQL schema of vodlms's tables (sql/migrate.sh --schema; nginx's vodlms_pg_schema)" },
    { "ffmpeg", T_STR, O(ffmpeg), 0, 0, "ffmpeg", "ffmpeg binary" },
    { "ffprobe", T_STR, O(ffprobe), 0, 0, "ffprobe", "ffprobe binary" },
    { "preset", T_STR, O(preset), 0, 0, "veryfast", "libx264 preset" },
    { "threads", T_INT, O(threads), 0, 256, "0", "ffmpeg threads; 0: ffmpeg decides" },
    { "segment_duration", T_INT, O(segment_duration), 2, 10, "6", "HLS segment (and GOP) duration, seconds" },
    { "max_height", T_INT, O(max_height), 144, 4320, "1080", "highest rung produced" },
    { "max_fps", T_DBL, O(max_fps), 1, 120, "60", "frame rate cap of the output" },
    { "audio_bitrate", T_BITRATE, O(audio_bitrate), 16000, 512000, "128k", "AAC bitrate of every rung" },
    { "ladder", T_LADDER, O(rungs), 0, 0, "240p:400k,360p:800k,480p:1400k,720p:2800k,1080p:5000k", "rungs: height p : video bitrate, comma separated" },
    { "poster_at", T_DBL, O(poster_at), 0, 0.99, "0.1", "poster.jpg position as a fraction of the duration" },
    { "audio_only", T_ONOFF, O(audio_only), 0, 0, "on", "on: an audio-only rendition (audio/, AAC) in the master beside the video rungs, made by the ladder's ffmpeg" },
    { "audio_only_bitrate", T_BITRATE, O(audio_only_bitrate), 16000, 256000, "64k", "AAC bitrate of the audio-only rendition" },
    { "thumbnails", T_ONOFF, O(thumbnails), 0, 0, "on", "on: a storyboard (thumbs/sprite_NNN.jpg + thumbs/storyboard.vtt) made by the ladder's ffmpeg; not encrypted" },
    { "storyboard_interval", T_INT, O(storyboard_interval), 1, 600, "10", "seconds of video per storyboard tile" },
    { "storyboard_width", T_INT, O(storyboard_width), 32, 640, "160", "width of a storyboard tile, pixels (height from the aspect ratio)" },
    { "storyboard_columns", T_INT, O(storyboard_columns), 1, 20, "10", "tiles across a sprite sheet" },
    { "storyboard_rows", T_INT, O(storyboard_rows), 1, 20, "10", "tiles down a sprite sheet" },
    { "caption_max_bytes", T_SIZE, O(caption_max_bytes), 64, 4194304, "2M", "largest caption file (WebVTT or SRT) a caption job reads; larger: failed, caption_too_large" },
    { "caption_max_cues", T_INT, O(caption_max_cues), 1, 1000000, "20000", "most cues in one caption file; more: failed, caption_too_large" },
    { "caption_max_cue_bytes", T_INT, O(caption_max_cue_bytes), 16, 65536, "1024", "longest text of one cue, bytes after normalizing; longer: failed, caption_too_large" },
    { "caption_max_cue_lines", T_INT, O(caption_max_cue_lines), 1, 100, "8", "most lines of text in one cue; more: failed, caption_too_large" },
    { "caption_max_tracks", T_INT, O(caption_max_tracks), 1, VH_HLS_MAX_SUBTITLES, "20", "most caption languages published for one video (each is in every version and its master; at most 100); a new language past it: failed, caption_too_many" },
    { "caption_max_track_bytes", T_SIZE, O(caption_max_track_bytes), 65536, 1073741824, "32M", "most bytes of the segments of one caption track in a version (a cue is in every segment it overlaps); more: failed, caption_too_large" },
    { "caption_segment_duration", T_INT, O(caption_segment_duration), 1, 600, "30", "seconds of a subtitle segment (subs/<lang>/<revision>/seg_NNNNN.vtt)" },
    { "job_timeout", T_TIMEOUT, O(job_timeout), 0, 604800, "auto", "seconds before ffmpeg is killed (failed, not retried); auto: 6 x the source's duration, at least 900; 0: no limit" },
    { "max_source_duration", T_DBL, O(max_source_duration), 1, 604800, "21600", "longest source accepted, seconds (longer: failed, source_too_large)" },
    { "max_source_pixels", T_PIXELS, O(max_source_pixels), 256, 268435456, "4096x2304", "largest source frame accepted, WIDTHxHEIGHT or pixels (larger: failed, source_too_large)" },
    { "max_source_fps", T_DBL, O(max_source_fps), 1, 100000, "240", "highest frame rate a source may claim by any measure (avg_frame_rate, frames / duration); higher: failed, source_too_large" },
    { "max_source_work", T_WORK, O(max_source_work), 1e6, 1e15, "900G", "most pixel-frames a source may cost (duration x frames a second x width x height, k/M/G/T: 10^3..10^12); 900G is about 4 h of 1080p30; more: failed, source_too_large" },
    { "source_root", T_STR, O(source_root), 0, 0, "", "if set, job sources must be inside this directory" },
    { "spool_grace", T_DBL, O(spool_grace), 0, 2592000, "3600", "seconds after which a spooled upload (*.upload, *.captions in source_root) that no video names (nor a caption upload waiting for its job) is removed; 0: never (the sources of superseded jobs and of finished caption jobs still go)" },
    { "origin_dir", T_STR, O(origin_dir), 0, 0, "/var/lib/vodlms/origin", "local origin root: output in <origin_dir>/hls/<id>/ (with publish = s3: the work directory)" },
    { "publish", T_STR, O(publish), 0, 0, "local", "local (rename into origin_dir) | s3 (upload to s3_bucket)" },
    { "encrypt", T_ONOFF, O(encrypt), 0, 0, "off", "on: every rendition AES-128 encrypted (keys in PostgreSQL video_keys, served by nginx's vodlms_hls_key)" },
    { "key_rotation", T_INT, O(key_rotation), 0, 1000000, "0", "with encrypt = on: a new key every N segments; 0: one key per version" },
    { "key_uri_base", T_STR, O(key_uri_base), 0, 0, "/vodlms/keys", "key URI in the playlists: <key_uri_base>/<id>/<version>/<k>.key (an absolute path, or https://lms.example.com/vodlms/keys)" },
    { "old_version_grace", T_DBL, O(old_version_grace), 0, 2592000, "21600", "seconds a re-encoded video's previous version stays on the local origin (viewers mid-playback); then removed" },
    { "s3_endpoint", T_STR, O(s3_endpoint), 0, 0, "", "http(s)://host[:port]; empty: https://s3.<s3_region>.amazonaws.com" },
    { "s3_region", T_STR, O(s3_region), 0, 0, "", "signing region; empty: $AWS_REGION, $AWS_DEFAULT_REGION, us-east-1" },
    { "s3_bucket", T_STR, O(s3_bucket), 0, 0, "", "bucket (required with publish = s3)" },
    { "s3_prefix", T_STR, O(s3_prefix), 0, 0, "", "key prefix before hls/<id>/ (a / is added)" },
    { "s3_path_style", T_ONOFF, O(s3_path_style), 0, 0, "off", "on: <endpoint>/<bucket>/<key>; off: <bucket>.<endpoint host>/<key>" },
    { "s3_access_key", T_STR, O(s3_access_key), 0, 0, "", "empty: $AWS_ACCESS_KEY_ID" },
    { "s3_secret_key", T_STR, O(s3_secret_key), 0, 0, "", "empty: $AWS_SECRET_ACCESS_KEY" },
    { "s3_session_token", T_STR, O(s3_session_token), 0, 0, "", "empty: $AWS_SESSION_TOKEN (temporary credentials)" },
    { "s3_multipart_threshold", T_SIZE, O(s3_multipart_threshold), 1024, 5368709120.0, "16M", "objects larger than this go by multipart upload" },
    { "s3_part_size", T_SIZE, O(s3_part_size), 16384, 5368709120.0, "8M", "multipart part size (AWS: at least 5M except the last)" },
    { "s3_retries", T_INT, O(s3_retries), 0, 20, "4", "retries of a request on network errors, 5xx, 429 (back-off 0.5 s doubling, max 10 s)" },
    { "s3_timeout", T_DBL, O(s3_timeout), 1, 86400, "300", "seconds for one request (one object or one part)" },
    { "s3_cache_control_playlist", T_STR, O(s3_cache_control_playlist), 0, 0, "max-age=5", "Cache-Control of the .m3u8 playlists" },
    { "s3_cache_control_media", T_STR, O(s3_cache_control_media), 0, 0, "max-age=31536000, immutable", "Cache-Control of the segments and the poster" },
    { "shutdown", T_STR, O(shutdown), 0, 0, "finish", "on SIGTERM/SIGINT: finish the running job, or abandon it (no XACK)" },
    { "log_level", T_STR, O(log_level), 0, 0, "info", "error | warn | info | debug" },
    { "log_target", T_STR, O(log_target), 0, 0, "stderr", "stderr | syslog" },
    { "once", T_BOOL, O(once), 0, 0, "no", "(flag) handle one job, then exit" },
    { "exit_when_idle", T_BOOL, O(exit_when_idle), 0, 0, "no", "(flag) exit when the queue has nothing for this helper" },
    { "check_config", T_BOOL, O(check_config), 0, 0, "no", "(flag) check the configuration, print it, exit" },
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static int
parse_bitrate(const char *s, long *out)
{
    char   *end;
    double  v;

    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || v <= 0) {
        return -1;
    }
    if (*end == 'k' || *end == 'K') {
        v *= 1000; end++;
    } else if (*end == 'm' || *end == 'M') {
        v *= 1000000; end++;
    }
    if (*end != '\0' || v > 1e9) {
        return -1;
    }
    *out = (long) v;
    return 0;
}

/* bytes, with an optional binary k/K, m/M or g/G suffix */
static int
parse_size(const char *s, double *out)
{
    char   *end;
    double  v;

    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || v < 0) {
        return -1;
    }
    switch (*end) {
    case 'k': case 'K': v *= 1024; end++; break;
    case 'm': case 'M': v *= 1024 * 1024; end++; break;
    case 'g': case 'G': v *= 1024 * 1024 * 1024; end++; break;
    }
    if (*end == 'i' || *end == 'B') {       /* 8MiB, 8MB */
        end += *end == 'i' ? 1 : 0;
        end += *end == 'B' ? 1 : 0;
    }
    if (*end != '\0') {
        return -1;
    }
    *out = v;
    return 0;
}

/* pixels of a frame: "4096x2304" or "9437184" */
static int
parse_pixels(const char *s, long *out)
{
    char  *end;
    long   w, h = 1;

    if (!isdigit((unsigned char) s[0])) {
        return -1;
    }
    errno = 0;
    w = strtol(s, &end, 10);
    if (*end == 'x' || *end == 'X') {
        s = end + 1;
        if (!isdigit((unsigned char) s[0])) {
            return -1;
        }
        h = strtol(s, &end, 10);
    }
    if (errno || *end != '\0' || w <= 0 || h <= 0 || w > 1000000000L / h) {
        return -1;
    }
    *out = w * h;
    return 0;
}

/* a count with an optional decimal k, M, G or T suffix */
static int
parse_count(const char *s, double *out)
{
    char   *end;
    double  v;

    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || !(v > 0)) {
        return -1;
    }
    switch (*end) {
    case 'k': case 'K': v *= 1e3; end++; break;
    case 'm': case 'M': v *= 1e6; end++; break;
    case 'g': case 'G': v *= 1e9; end++; break;
    case 't': case 'T': v *= 1e12; end++; break;
    }
    if (*end != '\0') {
        return -1;
    }
    *out = v;
    return 0;
}

static int
parse_ladder(vh_conf_t *cf, const char *s, char *err, size_t errlen)
{
    char  *copy = vh_strdup(s), *save = NULL, *tok;
    int    n = 0, i;

    if (copy == NULL) {
        return -1;
    }
    for (tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        char  *colon = strchr(tok, ':'), *end;
        long   h;

        if (n == VH_MAX_RUNGS) {
            snprintf(err, errlen, "at most %d rungs", VH_MAX_RUNGS);
            goto fail;
        }
        if (colon == NULL) {
            snprintf(err, errlen, "rung \"%s\" is not HEIGHTp:BITRATE", tok);
            goto fail;
        }
        *colon = '\0';
        h = strtol(tok, &end, 10);
        if (end == tok || (*end != '\0' && strcmp(end, "p") != 0)
            || h < 144 || h > 4320 || h % 2)
        {
            snprintf(err, errlen, "bad rung height \"%s\" (even, 144..4320)", tok);
            goto fail;
        }
        if (parse_bitrate(colon + 1, &cf->rungs[n].video_bitrate) != 0) {
            snprintf(err, errlen, "bad rung bitrate \"%s\"", colon + 1);
            goto fail;
        }
        cf->rungs[n].height = (int) h;
        snprintf(cf->rungs[n].name, sizeof(cf->rungs[n].name), "%ldp", h);
        for (i = 0; i < n; i++) {
            if (cf->rungs[i].height >= h) {
                snprintf(err, errlen, "rungs must be in increasing height order");
                goto fail;
            }
        }
        n++;
    }
    if (n == 0) {
        snprintf(err, errlen, "empty ladder");
        goto fail;
    }
    cf->nrungs = n;
    free(copy);
    return 0;
fail:
    free(copy);
    return -1;
}

static const vh_key_t *
find_key(const char *name, size_t len)
{
    size_t  i, j;

    for (i = 0; i < NKEYS; i++) {
        const char *k = keys[i].key;
        if (strlen(k) != len) {
            continue;
        }
        for (j = 0; j < len; j++) {
            char c = name[j] == '-' ? '_' : name[j];
            if (c != k[j]) {
                break;
            }
        }
        if (j == len) {
            return &keys[i];
        }
    }
    return NULL;
}

static int
set_key(vh_conf_t *cf, const vh_key_t *k, const char *val, const char *where)
{
    char   *p = (char *) cf + k->off, *end;
    char    err[256] = "";
    long    l;
    double  d;

    if (strcmp(where, "default") != 0
        && (k->off == O(redis_host) || k->off == O(redis_port)))
    {
        cf->redis_addr_set = 1;
    }

    switch (k->type) {
    case T_STR: {
        char *s = vh_strdup(val);
        if (s == NULL) {
            return -1;
        }
        free(*(char **) p);
        *(char **) p = s;
        return 0;
    }
    case T_INT:
        errno = 0;
        l = strtol(val, &end, 10);
        if (errno || end == val || *end || l < k->min || l > k->max) {
            fprintf(stderr, "vodlms-helper: %s: \"%s\" must be an integer in %g..%g, not \"%s\"\n",
                    where, k->key, k->min, k->max, val);
            return -1;
        }
        *(int *) p = (int) l;
        return 0;
    case T_DBL:
        errno = 0;
        d = strtod(val, &end);
        if (errno || end == val || *end || !(d >= k->min && d <= k->max)) {
            fprintf(stderr, "vodlms-helper: %s: \"%s\" must be a number in %g..%g, not \"%s\"\n",
                    where, k->key, k->min, k->max, val);
            return -1;
        }
        *(double *) p = d;
        return 0;
    case T_BITRATE:
        if (parse_bitrate(val, &l) != 0 || l < k->min || l > k->max) {
            fprintf(stderr, "vodlms-helper: %s: \"%s\" must be a bitrate like 128k in %g..%g, not \"%s\"\n",
                    where, k->key, k->min, k->max, val);
            return -1;
        }
        *(long *) p = l;
        return 0;
    case T_LADDER:
        if (parse_ladder(cf, val, err, sizeof(err)) != 0) {
            fprintf(stderr, "vodlms-helper: %s: \"ladder\": %s\n", where, err);
            return -1;
        }
        return 0;
    case T_TIMEOUT:
        if (!strcmp(val, "auto")) {
            *(double *) p = VH_JOB_TIMEOUT_AUTO;
            return 0;
        }
        errno = 0;
        d = strtod(val, &end);
        if (errno || end == val || *end || !(d >= k->min && d <= k->max)) {
            fprintf(stderr, "vodlms-helper: %s: \"%s\" must be auto or a number of"
                    " seconds in %g..%g (0: no limit), not \"%s\"\n",
                    where, k->key, k->min, k->max, val);
            return -1;
        }
        *(double *) p = d;
        return 0;
    case T_PIXELS:
        if (parse_pixels(val, &l) != 0 || l < k->min || l > k->max) {
            fprintf(stderr, "vodlms-helper: %s: \"%s\" must be WIDTHxHEIGHT (like"
                    " 4096x2304) or a number of pixels in %.0f..%.0f, not \"%s\"\n",
                    where, k->key, k->min, k->max, val);
            return -1;
        }
        *(long *) p = l;
        return 0;
    case T_WORK:
        if (parse_count(val, &d) != 0 || d < k->min || d > k->max) {
            fprintf(stderr, "vodlms-helper: %s: \"%s\" must be a number of pixel-frames"
                    " (seconds x frames/s x width x height), like 900G, in %g..%g,"
                    " not \"%s\"\n", where, k->key, k->min, k->max, val);
            return -1;
        }
        *(double *) p = d;
        return 0;
    case T_SIZE:
        if (parse_size(val, &d) != 0 || d < k->min || d > k->max) {
            fprintf(stderr, "vodlms-helper: %s: \"%s\" must be a size like 8M in %g..%g bytes, not \"%s\"\n",
                    where, k->key, k->min, k->max, val);
            return -1;
        }
        *(long *) p = (long) d;
        return 0;
    case T_ONOFF:
    case T_BOOL:
        if (!strcasecmp(val, "yes") || !strcasecmp(val, "on") || !strcasecmp(val, "true") || !strcmp(val, "1")) {
            *(int *) p = 1;
        } else if (!strcasecmp(val, "no") || !strcasecmp(val, "off") || !strcasecmp(val, "false") || !strcmp(val, "0")) {
            *(int *) p = 0;
        } else {
            fprintf(stderr, "vodlms-helper: %s: \"%s\" must be %s, not \"%s\"\n",
                    where, k->key, k->type == T_ONOFF ? "on or off" : "yes or no", val);
            return -1;
        }
        return 0;
    }
    return -1;
}

int
vh_conf_init(vh_conf_t *cf)
{
    size_t  i;

    memset(cf, 0, sizeof(*cf));
    for (i = 0; i < NKEYS; i++) {
        if (set_key(cf, &keys[i], keys[i].def, "default") != 0) {
            return -1;
        }
    }
    return 0;
}

static char *
trim(char *s)
{
    char *e;

    while (isspace((unsigned char) *s)) {
        s++;
    }
    e = s + strlen(s);
    while (e > s && isspace((unsigned char) e[-1])) {
        *--e = '\0';
    }
    return s;
}

static int
load_file(vh_conf_t *cf, const char *path)
{
    FILE   *f = fopen(path, "r");
    char    line[4096], where[4200];
    int     lineno = 0, rc = 0;

    if (f == NULL) {
        fprintf(stderr, "vodlms-helper: cannot open config %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char            *s, *eq, *key, *val;
        const vh_key_t  *k;

        lineno++;
        snprintf(where, sizeof(where), "%s:%d", path, lineno);
        if (strchr(line, '\n') == NULL && !feof(f)) {
            fprintf(stderr, "vodlms-helper: %s: line too long\n", where);
            rc = -1;
            break;
        }
        s = trim(line);
        if (*s == '\0' || *s == '#') {
            continue;
        }
        eq = strchr(s, '=');
        if (eq == NULL) {
            fprintf(stderr, "vodlms-helper: %s: expected \"key = value\"\n", where);
            rc = -1;
            continue;
        }
        *eq = '\0';
        key = trim(s);
        val = trim(eq + 1);
        /* a value may be quoted to keep spaces or a # */
        if (strlen(val) >= 2 && val[0] == '"' && val[strlen(val) - 1] == '"') {
            val[strlen(val) - 1] = '\0';
            val++;
        } else {
            char *hash = strstr(val, " #");
            if (hash != NULL) {
                *hash = '\0';
                val = trim(val);
            }
        }
        k = find_key(key, strlen(key));
        if (k == NULL || k->type == T_BOOL) {
            fprintf(stderr, "vodlms-helper: %s: unknown key \"%s\"\n", where, key);
            rc = -1;
            continue;
        }
        if (set_key(cf, k, val, where) != 0) {
            rc = -1;
        }
    }
    fclose(f);
    return rc;
}

static void
usage(FILE *out)
{
    size_t i;

    fprintf(out,
        "usage: vodlms-helper [--config FILE] [--KEY VALUE ...] [--once] [--exit-when-idle]\n"
        "                     [--check-config] [--help] [--version]\n\n"
        "Consumes transcode jobs from a Redis Stream (consumer group), turns each upload\n"
        "into an HLS ladder with one ffmpeg, publishes it to <origin_dir>/hls/<id>/ and\n"
        "updates the videos row in PostgreSQL.\n\n"
        "  --config FILE      key = value file (# comments); flags override it\n"
        "  --help, --version\n\n"
        "Keys (also flags: --redis-port 6380 or --redis_port=6380):\n");
    for (i = 0; i < NKEYS; i++) {
        fprintf(out, "  %-18s %s (default: %s)\n", keys[i].key, keys[i].help,
                *keys[i].def ? keys[i].def : "\"\"");
    }
}

/* an empty key takes the first environment variable that is set */
static int
from_env(char **field, const char *var1, const char *var2)
{
    const char *v = getenv(var1);

    if ((*field)[0] != '\0') {
        return 0;
    }
    if ((v == NULL || *v == '\0') && var2 != NULL) {
        v = getenv(var2);
    }
    if (v == NULL || *v == '\0') {
        return 0;
    }
    free(*field);
    *field = vh_strdup(v);
    return *field ? 0 : -1;
}

static int
set_str(char **field, const char *v)
{
    char *s = vh_strdup(v);

    if (s == NULL) {
        return -1;
    }
    free(*field);
    *field = s;
    return 0;
}

static int
validate_s3(vh_conf_t *cf)
{
    const char  *b = cf->s3_bucket, *host;
    char         buf[1024];
    size_t       i, n;

    if (!strcmp(cf->publish, "local")) {
        cf->publish_s3 = 0;
        return 0;
    }
    if (strcmp(cf->publish, "s3") != 0) {
        fprintf(stderr, "vodlms-helper: \"publish\" must be local or s3, not \"%s\"\n",
                cf->publish);
        return -1;
    }
    cf->publish_s3 = 1;
    if (from_env(&cf->s3_access_key, "AWS_ACCESS_KEY_ID", NULL) != 0
        || from_env(&cf->s3_secret_key, "AWS_SECRET_ACCESS_KEY", NULL) != 0
        || from_env(&cf->s3_session_token, "AWS_SESSION_TOKEN", NULL) != 0
        || from_env(&cf->s3_region, "AWS_REGION", "AWS_DEFAULT_REGION") != 0
        || (cf->s3_region[0] == '\0' && set_str(&cf->s3_region, "us-east-1") != 0))
    {
        return -1;
    }
    n = strlen(b);
    if (n < 3 || n > 63) {
        fprintf(stderr, "vodlms-helper: publish = s3 needs \"s3_bucket\" (3..63 characters)\n");
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (!(islower((unsigned char) b[i]) || isdigit((unsigned char) b[i])
              || b[i] == '-' || b[i] == '.'))
        {
            fprintf(stderr, "vodlms-helper: \"s3_bucket\" \"%s\": only a-z, 0-9, - and .\n", b);
            return -1;
        }
    }
    if (cf->s3_access_key[0] == '\0' || cf->s3_secret_key[0] == '\0') {
        fprintf(stderr, "vodlms-helper: publish = s3 needs \"s3_access_key\" and \"s3_secret_key\""
                " (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)\n");
        return -1;
    }
    for (i = 0; cf->s3_region[i]; i++) {
        if (!(isalnum((unsigned char) cf->s3_region[i]) || cf->s3_region[i] == '-')) {
            fprintf(stderr, "vodlms-helper: bad \"s3_region\" \"%s\"\n", cf->s3_region);
            return -1;
        }
    }
    if (cf->s3_endpoint[0] == '\0') {
        snprintf(buf, sizeof(buf), "https://s3.%s.amazonaws.com", cf->s3_region);
        if (set_str(&cf->s3_endpoint, buf) != 0) {
            return -1;
        }
    }
    if (strncmp(cf->s3_endpoint, "http://", 7) && strncmp(cf->s3_endpoint, "https://", 8)) {
        fprintf(stderr, "vodlms-helper: \"s3_endpoint\" must be http://host[:port] or"
                " https://host[:port], not \"%s\"\n", cf->s3_endpoint);
        return -1;
    }
    host = strstr(cf->s3_endpoint, "://") + 3;
    n = strcspn(host, "/");
    if (n == 0 || (host[n] == '/' && host[n + 1] != '\0')
        || strpbrk(cf->s3_endpoint, "?#@ ") != NULL)
    {
        fprintf(stderr, "vodlms-helper: \"s3_endpoint\" must be a scheme and a host[:port]"
                " only, not \"%s\"\n", cf->s3_endpoint);
        return -1;
    }
    /* the prefix: no leading '/', one trailing '/' */
    while (cf->s3_prefix[0] == '/') {
        memmove(cf->s3_prefix, cf->s3_prefix + 1, strlen(cf->s3_prefix));
    }
    n = strlen(cf->s3_prefix);
    if (n > 0 && cf->s3_prefix[n - 1] != '/') {
        snprintf(buf, sizeof(buf), "%s/", cf->s3_prefix);
        if (set_str(&cf->s3_prefix, buf) != 0) {
            return -1;
        }
    }
    if (strlen(cf->s3_prefix) > 512) {
        fprintf(stderr, "vodlms-helper: \"s3_prefix\" is too long\n");
        return -1;
    }
    return 0;
}

/*
 * key_uri_base: written into every media playlist and into ffmpeg's key info
 * file (one URI per line), so nothing that could end a line, a quoted
 * attribute or the path: an absolute path or an http(s) URL, no query.
 */
static int
validate_keys(vh_conf_t *cf)
{
    static const char  ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                              "0123456789-._~/:%@!$&'()*+,;=";
    char              *b = cf->key_uri_base;
    const char        *path;
    size_t             n;

    n = strlen(b);
    while (n > 1 && b[n - 1] == '/') {
        b[--n] = '\0';
    }
    if (n > 512 || strspn(b, ok) != n) {
        fprintf(stderr, "vodlms-helper: \"key_uri_base\" \"%s\": at most 512 characters"
                " of A-Z a-z 0-9 - . _ ~ / : %% @ ! $ & ' ( ) * + , ; = (no quote, space,"
                " ? or #)\n", b);
        return -1;
    }
    if (b[0] == '/') {
        path = b;
    } else if (!strncmp(b, "http://", 7)) {
        /* a player would fetch the key in cleartext: anyone on the path
         * gets it, and with it the lecture */
        fprintf(stderr, "vodlms-helper: \"key_uri_base\" \"%s\": an http:// key URI"
                " sends the key in cleartext; use https:// or a path on the LMS's"
                " own host (/vodlms/keys)\n", b);
        return -1;
    } else if (!strncmp(b, "https://", 8)) {
        path = strchr(strstr(b, "://") + 3, '/');
        if (path == NULL || path == strstr(b, "://") + 3) {
            path = "";
        }
    } else {
        path = "";
    }
    if (path[0] != '/' || path[1] == '\0' || path[1] == '/') {
        fprintf(stderr, "vodlms-helper: \"key_uri_base\" must be an absolute path"
                " (/vodlms/keys) or an https://host/path URL, with a path that is"
                " not /, not \"%s\"\n", b);
        return -1;
    }
    return 0;
}

/* one "host[:port]", "[v6]:port" or a bare IPv6 address of redis_sentinels */
static int
parse_sentinel(const char *tok, vh_addr_t *a)
{
    const char  *host = tok, *colon = NULL, *end;
    size_t       hlen;
    long         port = VH_SENTINEL_PORT;

    if (tok[0] == '[') {
        end = strchr(tok, ']');
        if (end == NULL || (end[1] != '\0' && end[1] != ':')) {
            return -1;
        }
        host = tok + 1;
        hlen = (size_t) (end - host);
        colon = end[1] == ':' ? end + 1 : NULL;
    } else {
        colon = strrchr(tok, ':');
        if (colon != NULL && strchr(tok, ':') != colon) {
            colon = NULL;               /* a bare IPv6 address */
        }
        hlen = colon ? (size_t) (colon - tok) : strlen(tok);
    }
    if (colon != NULL) {
        char *e;
        errno = 0;
        port = strtol(colon + 1, &e, 10);
        if (errno || e == colon + 1 || *e != '\0' || port < 1 || port > 65535) {
            return -1;
        }
    }
    if (hlen == 0 || hlen >= sizeof(a->host)) {
        return -1;
    }
    memcpy(a->host, host, hlen);
    a->host[hlen] = '\0';
    a->port = (int) port;
    return 0;
}

/* redis_host, or redis_sentinels + redis_master_name: one of the two */
static int
validate_redis(vh_conf_t *cf)
{
    char    *copy, *save = NULL, *tok;
    size_t   i;

    if (cf->redis_sentinels[0] == '\0') {
        if (cf->redis_master_name[0] || cf->redis_sentinel_username[0]
            || cf->redis_sentinel_password[0])
        {
            fprintf(stderr, "vodlms-helper: \"redis_master_name\", \"redis_sentinel_username\""
                    " and \"redis_sentinel_password\" need \"redis_sentinels\" (the sentinels"
                    " to ask for the master)\n");
            return -1;
        }
        if (cf->redis_host[0] == '\0') {
            fprintf(stderr, "vodlms-helper: \"redis_host\" must not be empty\n");
            return -1;
        }
        return 0;
    }
    if (cf->redis_addr_set) {
        fprintf(stderr, "vodlms-helper: \"redis_sentinels\" and \"redis_host\"/\"redis_port\""
                " exclude each other: with Sentinel the master's address comes from the"
                " sentinels (remove redis_host and redis_port)\n");
        return -1;
    }
    if (cf->redis_master_name[0] == '\0') {
        fprintf(stderr, "vodlms-helper: \"redis_sentinels\" needs \"redis_master_name\": the"
                " name the sentinels monitor the master by (sentinel monitor NAME ...)\n");
        return -1;
    }
    for (i = 0; cf->redis_master_name[i]; i++) {
        if (!isgraph((unsigned char) cf->redis_master_name[i])) {
            break;
        }
    }
    if (cf->redis_master_name[i] != '\0' || i > 128) {
        fprintf(stderr, "vodlms-helper: \"redis_master_name\" \"%s\": at most 128 printable"
                " characters, no spaces\n", cf->redis_master_name);
        return -1;
    }
    if (cf->redis_sentinel_username[0] && !cf->redis_sentinel_password[0]) {
        fprintf(stderr, "vodlms-helper: \"redis_sentinel_username\" needs"
                " \"redis_sentinel_password\" (AUTH user password)\n");
        return -1;
    }
    copy = vh_strdup(cf->redis_sentinels);
    if (copy == NULL) {
        return -1;
    }
    cf->nsentinels = 0;
    for (tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
        if (cf->nsentinels == VH_MAX_SENTINELS) {
            fprintf(stderr, "vodlms-helper: \"redis_sentinels\": at most %d sentinels\n",
                    VH_MAX_SENTINELS);
            free(copy);
            return -1;
        }
        if (parse_sentinel(tok, &cf->sentinel[cf->nsentinels]) != 0) {
            fprintf(stderr, "vodlms-helper: \"redis_sentinels\": \"%s\" is not host[:port]"
                    " (port 1..65535, default %d; [v6addr]:port)\n", tok, VH_SENTINEL_PORT);
            free(copy);
            return -1;
        }
        cf->nsentinels++;
    }
    free(copy);
    if (cf->nsentinels == 0) {
        fprintf(stderr, "vodlms-helper: \"redis_sentinels\" lists no sentinel\n");
        return -1;
    }
    return 0;
}

/* the rule of sql/migrate.sh --schema and nginx's vodlms_pg_schema */
int
vh_sql_schema_valid(const char *name)
{
    size_t  i, len = strlen(name);

    if (len == 0 || len > 63 || strncmp(name, "pg_", 3) == 0) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        char c = name[i];

        if (!((c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9'))) {
            return 0;
        }
    }
    return 1;
}

static int
validate(vh_conf_t *cf)
{
    char  host[256];

    if (strcmp(cf->shutdown, "finish") && strcmp(cf->shutdown, "abandon")) {
        fprintf(stderr, "vodlms-helper: \"shutdown\" must be finish or abandon, not \"%s\"\n",
                cf->shutdown);
        return -1;
    }
    if (vh_log_level_parse(cf->log_level) < 0) {
        fprintf(stderr, "vodlms-helper: \"log_level\" must be error, warn, info or debug, not \"%s\"\n",
                cf->log_level);
        return -1;
    }
    if (strcmp(cf->log_target, "stderr") && strcmp(cf->log_target, "syslog")) {
        fprintf(stderr, "vodlms-helper: \"log_target\" must be stderr or syslog, not \"%s\"\n",
                cf->log_target);
        return -1;
    }
    if (cf->origin_dir[0] != '/') {
        fprintf(stderr, "vodlms-helper: \"origin_dir\" must be an absolute path, not \"%s\"\n",
                cf->origin_dir);
        return -1;
    }
    if (cf->source_root[0] != '\0' && cf->source_root[0] != '/') {
        fprintf(stderr, "vodlms-helper: \"source_root\" must be an absolute path\n");
        return -1;
    }
    if (cf->source_root[0] != '\0') {
        /* "dir/" and "dir//" are "dir": paths are built from it */
        size_t n = strlen(cf->source_root);
        while (n > 1 && cf->source_root[n - 1] == '/') {
            cf->source_root[--n] = '\0';
        }
    }
    if (validate_redis(cf) != 0) {
        return -1;
    }
    if (!*cf->stream || !*cf->group) {
        fprintf(stderr, "vodlms-helper: \"stream\" and \"group\" must not be empty\n");
        return -1;
    }
    if (cf->retry_backoff_max < cf->retry_backoff) {
        cf->retry_backoff_max = cf->retry_backoff;
    }
    if (cf->redis_timeout * 1000 < 100) {
        cf->redis_timeout = 0.1;
    }
    if (cf->consumer[0] == '\0') {
        char name[320];
        if (gethostname(host, sizeof(host)) != 0) {
            strcpy(host, "helper");
        }
        host[sizeof(host) - 1] = '\0';
        snprintf(name, sizeof(name), "%s-%ld", host, (long) getpid());
        free(cf->consumer);
        cf->consumer = vh_strdup(name);
    }
    if (!strcmp(cf->consumer, VH_QUEUE_HOLD)) {
        fprintf(stderr, "vodlms-helper: \"consumer\": \"%s\" is the name of the"
                " consumer that holds waiting jobs; choose another\n", VH_QUEUE_HOLD);
        return -1;
    }
    if (validate_s3(cf) != 0 || validate_keys(cf) != 0) {
        return -1;
    }
    /*
     * a subtitle segment shorter than the video's multiplies the files of
     * every track (and the cues repeated across them) for no gain
     */
    if (cf->caption_segment_duration < cf->segment_duration) {
        fprintf(stderr, "vodlms-helper: \"caption_segment_duration\" %d is shorter"
                " than \"segment_duration\" %d: at least that\n",
                cf->caption_segment_duration, cf->segment_duration);
        return -1;
    }
    if ((long) cf->storyboard_width * cf->storyboard_columns > 8192) {
        fprintf(stderr, "vodlms-helper: a sprite sheet would be %d pixels wide"
                " (storyboard_width %d x storyboard_columns %d): at most 8192;"
                " lower one of them\n", cf->storyboard_width * cf->storyboard_columns,
                cf->storyboard_width, cf->storyboard_columns);
        return -1;
    }
    if (!vh_sql_schema_valid(cf->db_schema)) {
        fprintf(stderr, "vodlms-helper: \"db_schema\" must be a plain lower-case SQL identifier"
                " ([a-z_][a-z0-9_]*, at most 63 bytes, not pg_*), the name given to"
                " sql/migrate.sh --schema, not \"%s\"\n", cf->db_schema);
        return -1;
    }
    if (cf->pg_conninfo[0] == '\0' && getenv("DATABASE_URL") != NULL) {
        free(cf->pg_conninfo);
        cf->pg_conninfo = vh_strdup(getenv("DATABASE_URL"));
    }
    return 0;
}

static void
print_conf(const vh_conf_t *cf)
{
    int i;

    if (cf->nsentinels > 0) {
        printf("redis = sentinel:%s via", cf->redis_master_name);
        for (i = 0; i < cf->nsentinels; i++) {
            printf(strchr(cf->sentinel[i].host, ':') ? " [%s]:%d" : " %s:%d",
                   cf->sentinel[i].host, cf->sentinel[i].port);
        }
        printf("\n");
    } else {
        printf("redis = %s:%d\n", cf->redis_host, cf->redis_port);
    }
    printf("consumer = %s\nstream = %s\ngroup = %s\norigin_dir = %s\n"
           "segment_duration = %d\nmax_height = %d\nladder =",
           cf->consumer, cf->stream, cf->group, cf->origin_dir,
           cf->segment_duration, cf->max_height);
    for (i = 0; i < cf->nrungs; i++) {
        printf("%s %s:%ld", i ? "," : "", cf->rungs[i].name,
               cf->rungs[i].video_bitrate);
    }
    printf("\npublish = %s\n", cf->publish);
    if (cf->encrypt) {
        printf("encrypt = on: AES-128, %s, key URIs %s/<id>/<version>/<k>.key\n",
               cf->key_rotation ? "a new key every key_rotation segments"
                                : "one key per version", cf->key_uri_base);
        if (cf->key_rotation) {
            printf("key_rotation = %d\n", cf->key_rotation);
        }
    } else {
        printf("encrypt = off\n");
    }
    if (cf->audio_only) {
        printf("audio_only = on (%ld bit/s)\n", cf->audio_only_bitrate);
    } else {
        printf("audio_only = off\n");
    }
    if (cf->thumbnails) {
        printf("thumbnails = on: a %dx%d-tile sprite sheet, a %d px tile every %d s\n",
               cf->storyboard_columns, cf->storyboard_rows, cf->storyboard_width,
               cf->storyboard_interval);
    } else {
        printf("thumbnails = off\n");
    }
    printf("captions: files up to %ld bytes, %d cues, %d bytes and %d lines a cue;"
           " subtitle segments of %d s; at most %d languages a video, %ld bytes of"
           " segments a track\n", cf->caption_max_bytes, cf->caption_max_cues,
           cf->caption_max_cue_bytes, cf->caption_max_cue_lines,
           cf->caption_segment_duration, cf->caption_max_tracks,
           cf->caption_max_track_bytes);
    if (cf->job_timeout == VH_JOB_TIMEOUT_AUTO) {
        printf("job_timeout = auto (%d x the source's duration, at least %d s)\n",
               VH_JOB_TIMEOUT_FACTOR, VH_JOB_TIMEOUT_FLOOR);
    } else {
        printf("job_timeout = %g\n", cf->job_timeout);
    }
    printf("max_source_duration = %g\nmax_source_pixels = %ld\n",
           cf->max_source_duration, cf->max_source_pixels);
    printf("max_source_fps = %g\n", cf->max_source_fps);
    printf("max_source_work = %.0f pixel-frames (%.1f h of 1920x1080 at 30 fps)\n",
           cf->max_source_work, cf->max_source_work / (1920.0 * 1080 * 30 * 3600));
    if (cf->publish_s3) {
        printf("s3 = s3://%s/%shls/<id>/ via %s (%s, region %s, multipart above %ld bytes"
               " in parts of %ld)\n", cf->s3_bucket, cf->s3_prefix, cf->s3_endpoint,
               cf->s3_path_style ? "path style" : "virtual host", cf->s3_region,
               cf->s3_multipart_threshold, cf->s3_part_size);
    }
    printf("configuration ok\n");
}

/* returns 0 to run, 1 to exit successfully (help, version), -1 on error */
int
vh_conf_parse_args(vh_conf_t *cf, int argc, char **argv)
{
    int          i;
    const char  *config = NULL;

    /* the file first, wherever --config is, so that flags override it */
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 1;
        }
        if (!strcmp(argv[i], "--version") || !strcmp(argv[i], "-V")) {
            printf("vodlms-helper " VH_VERSION "\n");
            return 1;
        }
        if (!strcmp(argv[i], "--config") || !strcmp(argv[i], "-c")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "vodlms-helper: %s needs a file\n", argv[i]);
                return -1;
            }
            config = argv[++i];
        } else if (!strncmp(argv[i], "--config=", 9)) {
            config = argv[i] + 9;
        }
    }
    if (config != NULL && load_file(cf, config) != 0) {
        return -1;
    }

    for (i = 1; i < argc; i++) {
        const char      *a = argv[i], *name, *val, *eq;
        const vh_key_t  *k;
        size_t           len;

        if (!strcmp(a, "--config") || !strcmp(a, "-c")) {
            i++;
            continue;
        }
        if (!strncmp(a, "--config=", 9)) {
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "vodlms-helper: unexpected argument \"%s\" (see --help)\n", a);
            return -1;
        }
        name = a + 2;
        eq = strchr(name, '=');
        len = eq ? (size_t) (eq - name) : strlen(name);
        k = find_key(name, len);
        if (k == NULL) {
            fprintf(stderr, "vodlms-helper: unknown option \"%s\" (see --help)\n", a);
            return -1;
        }
        if (eq != NULL) {
            val = eq + 1;
        } else if (k->type == T_BOOL) {
            val = "yes";
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            fprintf(stderr, "vodlms-helper: %s needs a value\n", a);
            return -1;
        }
        if (set_key(cf, k, val, "command line") != 0) {
            return -1;
        }
    }

    if (validate(cf) != 0) {
        return -1;
    }
    if (cf->check_config) {
        print_conf(cf);
        return 1;
    }
    return 0;
}

void
vh_conf_free(vh_conf_t *cf)
{
    size_t i;

    for (i = 0; i < NKEYS; i++) {
        if (keys[i].type == T_STR) {
            free(*(char **) ((char *) cf + keys[i].off));
        }
    }
}
