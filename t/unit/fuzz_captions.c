/*
 * libFuzzer target for the helper's caption validation (helper/captions.c):
 * what an instructor uploads, students' browsers render, so the output is
 * held to properties, not to a copy of the parser.  The first byte picks
 * the limits (the defaults, or small ones that the input can reach) and
 * the duration the segments are cut for; the rest is the file.
 *
 *   - a refusal is "<code>: <why>" with one of the four codes, printable
 *     ASCII on one line, and leaves no cue behind;
 *   - an accepted file's WebVTT (vh_captions_vtt) parses back to the same
 *     cues, and writing those gives the same bytes;
 *   - every line of it is one we write: "WEBVTT", then for each cue a
 *     blank line, a timing line (hh:mm:ss.mmm --> hh:mm:ss.mmm with
 *     settings only from align, line, position, size) and 1..max lines of
 *     text; cues in order of their start, each ending after it starts;
 *   - no cue text has "-->", a control character, a '<' that does not
 *     start <b> <i> <u> <v name> or their end tags (balanced, the voice's
 *     name with no '<' or '>'), a '>' outside a tag or an '&' that does
 *     not start &amp; &lt; &gt; &nbsp; &lrm; &rlm; or a numeric reference;
 *   - no cue starts while VH_CAPTION_MAX_OVERLAP cues before it are still
 *     on screen;
 *   - each segment holds exactly the cues that overlap it and start before
 *     the duration, with their times, the end clipped to the duration;
 *     it parses (its X-TIMESTAMP-MAP line is header text to our parser);
 *     it is no larger than its header, the cues starting in it and
 *     VH_CAPTION_MAX_OVERLAP of the largest cue (a cue across many segments
 *     is in each: what bounds a published track);
 *     the playlist lists as many segments as vh_captions_segments says.
 *
 *     make -C t/unit fuzz [FUZZ_SECONDS=60]
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "vodlms_helper.h"


volatile sig_atomic_t  vh_stop;             /* main.c's, which is not linked */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void
fail(const char *what)
{
    fprintf(stderr, "fuzz_captions: %s\n", what);
    abort();
}


static int
starts(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}


static void
check_error(const char *err)
{
    static const char  *codes[] = {
        "caption_encoding: ", "caption_format: ", "caption_timestamp: ",
        "caption_too_large: "
    };
    size_t  i;

    for (i = 0; i < 4; i++) {
        if (starts(err, codes[i])) {
            break;
        }
    }
    if (i == 4) {
        fail("a refusal without its code");
    }
    for (i = 0; err[i]; i++) {
        if ((unsigned char) err[i] < 0x20 || (unsigned char) err[i] > 0x7e) {
            fail("a refusal with a byte that is not printable ASCII");
        }
    }
}


static size_t
digits(const char *s, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
    }
    return 1;
}


/* "hh:mm:ss.mmm" with minutes and seconds under 60 */
static int
ts_ok(const char *s)
{
    return digits(s, 2) && s[2] == ':' && digits(s + 3, 2) && s[3] < '6'
           && s[5] == ':' && digits(s + 6, 2) && s[6] < '6' && s[8] == '.'
           && digits(s + 9, 3);
}


static void
check_settings(const char *s)
{
    const char  *t;

    while (*s) {
        if (!starts(s, "align:") && !starts(s, "line:") && !starts(s, "position:")
            && !starts(s, "size:"))
        {
            fail("a cue setting we do not keep");
        }
        t = strchr(s, ' ');
        for (; *s && s != t; s++) {
            if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')
                  || *s == ':' || *s == '%' || *s == '.' || *s == ',' || *s == '-'))
            {
                fail("a cue setting with a character no valid value has");
            }
        }
        if (t == NULL) {
            break;
        }
        s = t + 1;
        if (*s == '\0' || *s == ' ') {
            fail("an empty cue setting");
        }
    }
}


static void
check_text(const char *t, size_t max_lines)
{
    char    stack[64];
    size_t  depth = 0, lines = 1, i;
    const char  *p, *e;

    if (*t == '\0') {
        fail("a cue without text");
    }
    if (strstr(t, "-->") != NULL) {
        fail("\"-->\" in a cue's text");
    }
    for (p = t; *p; p++) {
        unsigned char  c = (unsigned char) *p;

        if (c == '\n') {
            if (p == t || p[-1] == '\n' || p[-1] == ' ' || p[-1] == '\t' || p[1] == '\0') {
                fail("a blank line or trailing blanks in a cue's text");
            }
            lines++;
            continue;
        }
        if ((c < 0x20 && c != '\t') || c == 0x7f
            || (c == 0xc2 && (unsigned char) p[1] <= 0x9f))
        {
            fail("a control character in a cue's text");
        }
        if (c == '>') {
            fail("a '>' outside a tag");
        }
        if (c == '&') {
            static const char  *ents[] = { "&amp;", "&lt;", "&gt;", "&nbsp;", "&lrm;",
                                           "&rlm;" };
            int  found = 0;

            for (i = 0; i < 6 && !found; i++) {
                found = starts(p, ents[i]);
            }
            if (!found) {
                if (p[1] != '#') {
                    fail("an '&' that starts no entity we keep");
                }
                e = p + 2;
                if (*e == 'x' || *e == 'X') {
                    e++;
                }
                for (i = 0; e[i] && e[i] != ';'; i++) {
                    /* digits */
                }
                if (i == 0 || e[i] != ';') {
                    fail("a numeric reference without digits or ';'");
                }
            }
            continue;
        }
        if (c != '<') {
            continue;
        }
        if (starts(p, "<b>") || starts(p, "<i>") || starts(p, "<u>")) {
            if (depth == sizeof(stack)) {
                fail("too deep");
            }
            stack[depth++] = p[1];
            p += 2;
            continue;
        }
        if (starts(p, "<v ")) {
            e = strchr(p, '>');
            if (e == NULL || memchr(p + 3, '<', (size_t) (e - p - 3)) != NULL
                || memchr(p + 3, '\n', (size_t) (e - p - 3)) != NULL
                || e == p + 3 || p[3] == ' ' || e[-1] == ' ')
            {
                fail("a voice tag with a bad name");
            }
            if (depth == sizeof(stack)) {
                fail("too deep");
            }
            stack[depth++] = 'v';
            p = e;
            continue;
        }
        if (p[1] == '/' && p[2] && p[3] == '>' && strchr("biuv", p[2]) != NULL) {
            if (depth == 0 || stack[depth - 1] != p[2]) {
                fail("an end tag that closes no open tag");
            }
            depth--;
            p += 3;
            continue;
        }
        fail("a '<' that starts no tag we keep");
    }
    if (depth != 0) {
        fail("a tag left open");
    }
    if (lines > max_lines) {
        fail("more lines than the limit");
    }
}


/* the normalized WebVTT, line by line */
static void
check_vtt(const char *v, size_t n, const vh_captions_t *c, size_t max_lines)
{
    const char  *p = v, *nl;
    size_t       i = 0, len;

    if (n < 7 || memcmp(v, "WEBVTT\n", 7) != 0) {
        fail("no WEBVTT line first");
    }
    p += 7;
    for (i = 0; i < c->n; i++) {
        const vh_cue_t  *q = &c->cues[i];

        if (*p != '\n') {
            fail("no blank line before a cue");
        }
        p++;
        nl = strchr(p, '\n');
        if (nl == NULL) {
            fail("a cue's timing line without its end");
        }
        len = (size_t) (nl - p);
        if (len < 29 || !ts_ok(p) || memcmp(p + 12, " --> ", 5) != 0 || !ts_ok(p + 17)
            || (len > 29 && p[29] != ' '))
        {
            fail("a timing line we do not write");
        }
        if (q->end_ms <= q->start_ms || (i > 0 && q->start_ms < c->cues[i - 1].start_ms)
            || q->end_ms > VH_CAPTION_MAX_MS)
        {
            fail("cue times out of order or of range");
        }
        check_settings(q->settings);
        check_text(q->text, max_lines);
        p = nl + 1;
        len = strlen(q->text);
        if (strncmp(p, q->text, len) != 0 || p[len] != '\n') {
            fail("a cue's text is not what the WebVTT has");
        }
        p += len + 1;
    }
    if (p != v + n) {
        fail("bytes after the last cue");
    }
}


/* "\n" timing [" " settings] "\n" text "\n": as it is written in a segment */
static size_t
cue_len(const vh_cue_t *q)
{
    return 1 + 29 + (q->settings[0] ? 1 + strlen(q->settings) : 0) + 1
           + strlen(q->text) + 1;
}


static int
same_cue(const vh_cue_t *a, const vh_cue_t *b, long long end)
{
    return a->start_ms == b->start_ms && end == b->end_ms
           && strcmp(a->settings, b->settings) == 0 && strcmp(a->text, b->text) == 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vh_caption_limits_t  lim, big;
    vh_captions_t        c, c2, sc;
    vh_buf_t             vtt = { 0 }, vtt2 = { 0 }, seg = { 0 }, pl = { 0 };
    char                 err[512];
    int                  rc;
    size_t               i, k, ns, want, lines, on, biggest, bound;
    long long            dur, seg_ms = 10000, end;
    uint8_t              sel;
    const char          *pp;

    if (size < 1) {
        return 0;
    }
    sel = data[0];
    data++;
    size--;

    memset(&lim, 0, sizeof(lim));          /* the defaults */
    if (sel & 1) {
        lim.max_bytes = 2048;
        lim.max_cues = 4;
        lim.max_cue_bytes = 40;
        lim.max_cue_lines = 2;
    }
    memset(&big, 0, sizeof(big));
    big.max_bytes = 64 * 1024 * 1024;
    big.max_cues = 1000000;
    big.max_cue_bytes = 1024 * 1024;
    big.max_cue_lines = 100000;

    rc = vh_captions_parse((const char *) data, size, &lim, &c, err, sizeof(err));
    if (rc != 0) {
        if (rc != -1) {
            fail("a refusal that is not -1");
        }
        check_error(err);
        if (c.n != 0 || c.cues != NULL) {
            fail("a refusal left cues");
        }
        return 0;
    }
    if (c.n == 0) {
        fail("accepted without cues");
    }
    if (c.n > (lim.max_cues ? lim.max_cues : VH_CAPTION_MAX_CUES)) {
        fail("more cues than the limit");
    }

    if (vh_captions_vtt(&c, &vtt) != 0) {
        fail("vh_captions_vtt");
    }
    if (vtt.len > VH_CAPTION_MAX_VTT) {
        fail("the WebVTT is over its ceiling");
    }
    lines = lim.max_cue_lines ? lim.max_cue_lines : VH_CAPTION_MAX_CUE_LINES;
    check_vtt(vtt.data, vtt.len, &c, lines);
    for (i = 0; i < c.n; i++) {
        if (strlen(c.cues[i].text)
            > (lim.max_cue_bytes ? lim.max_cue_bytes : VH_CAPTION_MAX_CUE_BYTES))
        {
            fail("a cue over the byte limit");
        }
    }

    /* cues on screen at once, at each one's start */
    for (i = 0, biggest = 0; i < c.n; i++) {
        for (k = 0, on = 0; k < i; k++) {
            on += c.cues[k].end_ms > c.cues[i].start_ms;
        }
        if (on >= VH_CAPTION_MAX_OVERLAP) {
            fail("a cue starts while the most cues at once are on screen");
        }
        if (cue_len(&c.cues[i]) > biggest) {
            biggest = cue_len(&c.cues[i]);
        }
    }

    /* parses back to the same cues, and writes the same bytes */
    if (vh_captions_parse(vtt.data, vtt.len, &lim, &c2, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        fail("our WebVTT does not parse back");
    }
    if (c2.n != c.n) {
        fail("our WebVTT parses back to another number of cues");
    }
    for (i = 0; i < c.n; i++) {
        if (!same_cue(&c.cues[i], &c2.cues[i], c.cues[i].end_ms)) {
            fail("our WebVTT parses back to another cue");
        }
    }
    if (vh_captions_vtt(&c2, &vtt2) != 0 || vtt2.len != vtt.len
        || memcmp(vtt.data, vtt2.data, vtt.len) != 0)
    {
        fail("the WebVTT of the WebVTT differs");
    }
    vh_captions_free(&c2);

    /* segments: a duration around the last cue's end */
    dur = c.cues[c.n - 1].end_ms - 20000 + (long long) (sel >> 1) * 400;
    if (dur < 1) {
        dur = 1;
    }
    if (sel & 0x80) {
        seg_ms = 1000 + (sel & 0x7f) * 50;
    }
    ns = vh_captions_segments(seg_ms, dur);
    if (ns < 1 || (long long) (ns - 1) * seg_ms >= dur || (long long) ns * seg_ms < dur) {
        fail("vh_captions_segments");
    }
    if (ns > 2000) {
        goto done;                  /* hours of a lecture: slow, and nothing new */
    }
    if (vh_captions_playlist(seg_ms, dur, &pl) != 0) {
        fail("vh_captions_playlist");
    }
    for (k = 0, pp = pl.data; (pp = strstr(pp, ".vtt\n")) != NULL; pp++) {
        k++;
    }
    if (pl.len < 15 || strcmp(pl.data + pl.len - 15, "#EXT-X-ENDLIST\n") != 0) {
        fail("a playlist without its end");
    }
    if (k != ns) {
        fail("the playlist lists another number of segments");
    }
    for (k = 0; k < ns && k < 64; k++) {
        long long  from = (long long) k * seg_ms, to = from + seg_ms;
        size_t     j = 0;

        seg.len = 0;
        if (vh_captions_segment(&c, seg_ms, dur, k, 126000, &seg) != 0) {
            fail("vh_captions_segment");
        }
        if (!starts(seg.data, "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000\n\n")) {
            fail("a segment without its header");
        }
        bound = 56 + VH_CAPTION_MAX_OVERLAP * biggest;
        for (want = 0, i = 0; i < c.n; i++) {
            want += c.cues[i].start_ms < to && c.cues[i].end_ms > from
                    && c.cues[i].start_ms < dur;
            if (c.cues[i].start_ms >= from && c.cues[i].start_ms < to) {
                bound += cue_len(&c.cues[i]);
            }
        }
        if (seg.len > bound) {
            fail("a segment larger than its cues and the most cues at once");
        }
        rc = vh_captions_parse(seg.data, seg.len, &big, &sc, err, sizeof(err));
        if (want == 0) {
            if (rc == 0) {
                fail("a segment with cues where none overlaps");
            }
            continue;
        }
        if (rc != 0) {
            fprintf(stderr, "%s\n", err);
            fail("a segment does not parse");
        }
        if (sc.n != want) {
            fail("a segment with other cues than those overlapping it");
        }
        for (i = 0; i < c.n; i++) {
            if (!(c.cues[i].start_ms < to && c.cues[i].end_ms > from
                  && c.cues[i].start_ms < dur))
            {
                continue;
            }
            end = c.cues[i].end_ms < dur ? c.cues[i].end_ms : dur;
            if (!same_cue(&c.cues[i], &sc.cues[j++], end)) {
                fail("a segment's cue is not the source's, clipped");
            }
        }
        vh_captions_free(&sc);
    }

done:
    vh_buf_free(&pl);
    vh_buf_free(&seg);
    vh_buf_free(&vtt);
    vh_buf_free(&vtt2);
    vh_captions_free(&c);
    return 0;
}
