/*
 * Playlists: measure the variants ffmpeg wrote (segment sizes and
 * durations) and write the master playlist with every attribute players
 * use to pick a rung: BANDWIDTH (peak segment bit rate), AVERAGE-BANDWIDTH,
 * RESOLUTION, CODECS and FRAME-RATE; and the subtitle tracks (captions.c
 * makes their playlists) as the group "subs" every variant names.
 */

#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "vodlms_helper.h"

int
vh_hls_playlist_stats(const char *dir, const char *text,
    vh_playlist_stats_t *st)
{
    const char  *p = text, *nl;
    double       extinf = -1, total_bits = 0;
    char         line[1024], path[4096];
    struct stat  sb;

    memset(st, 0, sizeof(*st));
    while (*p) {
        size_t len;

        nl = strchr(p, '\n');
        len = nl ? (size_t) (nl - p) : strlen(p);
        if (len >= sizeof(line)) {
            return -1;
        }
        memcpy(line, p, len);
        line[len] = '\0';
        if (len && line[len - 1] == '\r') {
            line[len - 1] = '\0';
        }
        p = nl ? nl + 1 : p + len;

        if (!strncmp(line, "#EXTINF:", 8)) {
            extinf = atof(line + 8);
            continue;
        }
        if (line[0] == '#' || line[0] == '\0') {
            continue;
        }
        if (extinf < 0 || strchr(line, '/') != NULL) {
            return -1;          /* a URI without EXTINF, or not beside us */
        }
        snprintf(path, sizeof(path), "%s/%s", dir, line);
        if (stat(path, &sb) != 0) {
            return -1;
        }
        if (st->segments == 0) {
            if (strlen(line) >= sizeof(st->first_segment)) {
                return -1;
            }
            memcpy(st->first_segment, line, strlen(line) + 1);
        }
        st->segments++;
        st->total_duration += extinf;
        total_bits += 8.0 * sb.st_size;
        if (extinf > st->max_segment) {
            st->max_segment = extinf;
        }
        /* a very short last segment would overstate the peak */
        if (extinf >= 0.5) {
            long bw = (long) (8.0 * sb.st_size / extinf);
            if (bw > st->peak_bandwidth) {
                st->peak_bandwidth = bw;
            }
        }
        extinf = -1;
    }
    if (st->segments == 0 || st->total_duration <= 0) {
        return -1;
    }
    st->average_bandwidth = (long) (total_bits / st->total_duration);
    if (st->peak_bandwidth < st->average_bandwidth) {
        st->peak_bandwidth = st->average_bandwidth;
    }
    return 0;
}

/*
 * A label for NAME="...": valid UTF-8 (shortest forms, no surrogate, up to
 * U+10FFFF) without '"', C0, DEL, C1 (U+0080..U+009F) or U+2028, U+2029:
 * players in JavaScript end a line there (hls.js reads EXT-X-MEDIA with
 * /#EXT-X-MEDIA:(.*)/g, and '.' stops at them, so the rest of the NAME
 * would be a track of its own).  Nor "#EXT" (any case): hls.js finds
 * EXT-X-STREAM-INF, EXT-X-CONTENT-STEERING, EXT-X-START ... with one regex
 * over the whole master, inside a quoted NAME too (a steering server of
 * the label's choosing, a variant replaced); nor "{$": a variable
 * reference to hls.js, which refuses a master that has one without its
 * EXT-X-DEFINE.  What nginx takes for a label (vodlms_upload_caption) and
 * nothing more, but for those two; the caption job refuses what this
 * refuses (vh_caption_job_fields), so a stored label is always written.
 */
int
vh_hls_label_ok(const char *label)
{
    const unsigned char  *p = (const unsigned char *) label;
    unsigned long         cp, min;
    int                   k, j;

    while (*p) {
        if (*p < 0x80) {
            if (*p < 0x20 || *p == 0x7f || *p == '"') {
                return 0;
            }
            if (*p == '#' && (p[1] | 0x20) == 'e' && (p[2] | 0x20) == 'x'
                && (p[3] | 0x20) == 't')
            {
                return 0;
            }
            if (*p == '{' && p[1] == '$') {
                return 0;
            }
            p++;
            continue;
        }
        if (*p >= 0xc2 && *p <= 0xdf) {
            k = 1; cp = *p & 0x1f; min = 0x80;
        } else if (*p >= 0xe0 && *p <= 0xef) {
            k = 2; cp = *p & 0x0f; min = 0x800;
        } else if (*p >= 0xf0 && *p <= 0xf4) {
            k = 3; cp = *p & 0x07; min = 0x10000;
        } else {
            return 0;
        }
        for (j = 1; j <= k; j++) {
            if ((p[j] & 0xc0) != 0x80) {
                return 0;               /* the NUL at the end too */
            }
            cp = (cp << 6) | (p[j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)
            || cp <= 0x9f || cp == 0x2028 || cp == 0x2029)
        {
            return 0;
        }
        p += k + 1;
    }
    return 1;
}

/*
 * A subtitle track's strings go into quoted attributes: nothing that could
 * end the quote or the line, and the URI stays a relative path in the version
 */
static int
subtitle_safe(const vh_subtitle_t *t)
{
    const unsigned char  *p;

    if (t->lang == NULL || t->label == NULL || t->uri == NULL
        || t->lang[0] == '\0' || t->label[0] == '\0' || t->uri[0] == '\0'
        || strlen(t->lang) > 35 || strlen(t->label) > 256 || strlen(t->uri) > 256
        || t->uri[0] == '/' || strstr(t->uri, "..") != NULL)
    {
        return 0;
    }
    for (p = (const unsigned char *) t->lang; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '-'))
        {
            return 0;
        }
    }
    if (!vh_hls_label_ok(t->label)) {
        return 0;
    }
    for (p = (const unsigned char *) t->uri; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'
              || *p == '/'))
        {
            return 0;
        }
    }
    return 1;
}

/*
 * The EXT-X-MEDIA lines of the group "subs": NAME unique in the group (a
 * label already taken gets " (<lang>)", then " (2)", " (3)" ... if still
 * taken), DEFAULT=YES on the first default track only
 */
static int
master_subtitles(const vh_subtitle_t *s, int ns, vh_buf_t *out)
{
    char  **names;
    int     i, j, k, taken, def = 0, rc = -1;
    size_t  len;

    names = calloc(ns, sizeof(char *));
    if (names == NULL) {
        return -1;
    }
    for (i = 0; i < ns; i++) {
        if (!subtitle_safe(&s[i])) {
            goto out;
        }
        len = strlen(s[i].label) + strlen(s[i].lang) + 32;
        names[i] = malloc(len);
        if (names[i] == NULL) {
            goto out;
        }
        snprintf(names[i], len, "%s", s[i].label);
        for (k = 0; ; k++) {
            for (taken = 0, j = 0; j < i && !taken; j++) {
                taken = strcmp(names[i], names[j]) == 0;
            }
            if (!taken) {
                break;
            }
            if (k == 0) {
                snprintf(names[i], len, "%s (%s)", s[i].label, s[i].lang);
            } else {
                snprintf(names[i], len, "%s (%s) (%d)", s[i].label, s[i].lang, k + 1);
            }
        }
        if (vh_buf_printf(out,
                "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",LANGUAGE=\"%s\","
                "NAME=\"%s\",DEFAULT=%s,AUTOSELECT=YES,FORCED=NO,URI=\"%s\"\n",
                s[i].lang, names[i], s[i].is_default && !def ? "YES" : "NO",
                s[i].uri) != 0)
        {
            goto out;
        }
        def |= s[i].is_default;
    }
    rc = 0;
out:
    for (i = 0; i < ns; i++) {
        free(names[i]);
    }
    free(names);
    return rc;
}

int
vh_hls_master(const vh_variant_t *v, int n, const vh_subtitle_t *s, int ns,
    vh_buf_t *out)
{
    const char  *subs = ns > 0 ? ",SUBTITLES=\"subs\"" : "";
    int          i;

    if (vh_buf_printf(out, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n") != 0) {
        return -1;
    }
    if (ns > 0 && (s == NULL || ns > VH_HLS_MAX_SUBTITLES
                   || master_subtitles(s, ns, out) != 0))
    {
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (v[i].width == 0) {
            /*
             * audio only: a variant with an audio codec and no RESOLUTION,
             * the lowest rung a native player may fall to (docs/helper.md)
             */
            if (vh_buf_printf(out,
                    "#EXT-X-STREAM-INF:BANDWIDTH=%ld,AVERAGE-BANDWIDTH=%ld,"
                    "CODECS=\"%s\"%s\n%s\n", v[i].bandwidth,
                    v[i].average_bandwidth, v[i].codecs, subs, v[i].playlist) != 0)
            {
                return -1;
            }
            continue;
        }
        if (vh_buf_printf(out,
                "#EXT-X-STREAM-INF:BANDWIDTH=%ld,AVERAGE-BANDWIDTH=%ld,"
                "RESOLUTION=%dx%d,FRAME-RATE=%.3f,CODECS=\"%s\"%s\n%s\n",
                v[i].bandwidth, v[i].average_bandwidth, v[i].width,
                v[i].height, v[i].fps, v[i].codecs, subs, v[i].playlist) != 0)
        {
            return -1;
        }
    }
    return 0;
}

int
vh_hls_renditions_json(const vh_variant_t *v, int n, vh_buf_t *out)
{
    json_t  *arr = json_array();
    char    *s;
    int      i;

    if (arr == NULL) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        json_t *o;

        if (v[i].width == 0) {
            /* audio only: no picture to describe */
            o = json_pack("{s:s,s:I,s:I,s:s,s:s}",
                "name", v[i].name,
                "bandwidth", (json_int_t) v[i].bandwidth,
                "average_bandwidth", (json_int_t) v[i].average_bandwidth,
                "codecs", v[i].codecs,
                "playlist", v[i].playlist);
        } else {
            o = json_pack("{s:s,s:i,s:i,s:I,s:I,s:s,s:f,s:s}",
                "name", v[i].name,
                "width", v[i].width,
                "height", v[i].height,
                "bandwidth", (json_int_t) v[i].bandwidth,
                "average_bandwidth", (json_int_t) v[i].average_bandwidth,
                "codecs", v[i].codecs,
                "frame_rate", (double) ((long) (v[i].fps * 1000 + 0.5)) / 1000,
                "playlist", v[i].playlist);
        }
        /* where its media starts (90 kHz): subtitle segments' X-TIMESTAMP-MAP */
        if (o != NULL && v[i].mpegts_start > 0) {
            json_object_set_new(o, "mpegts_start",
                                json_integer((json_int_t) v[i].mpegts_start));
        }
        json_array_append_new(arr, o);
    }
    s = json_dumps(arr, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(arr);
    if (s == NULL) {
        return -1;
    }
    n = vh_buf_append(out, s, strlen(s));
    free(s);
    return n;
}
