/*
 * Captions: an instructor's WebVTT or SRT file, validated and rewritten as
 * WebVTT we write ourselves, then cut into HLS subtitle segments.
 *
 * The file is hostile until proven otherwise: students' browsers render
 * its markup (hls.js and Safari parse WebVTT cue text natively) and it
 * lands in an HLS tree beside the video.  So nothing of the input passes
 * through as bytes: every timestamp is re-printed, cue settings are kept
 * only from a short list of checked values, identifiers, headers, NOTE,
 * STYLE and REGION blocks are dropped, and cue text is rebuilt character
 * by character: only <b> <i> <u> and <v name> survive as markup, balanced;
 * every other '<', '>' and '&' is escaped unless it is part of a known
 * entity; control characters are dropped; no line of a cue is blank.
 * The normalized text parses back to the same cues (held by the unit test
 * and the fuzzer t/unit/fuzz_captions.c).
 *
 * Errors are "<code>: line N: <why>", the codes of docs/helper.md
 * "What the helper accepts in a caption file".
 */

#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vodlms_helper.h"

#define VH_CAP_MAX_DEPTH  8         /* open tags in one cue: more are dropped */

typedef struct {
    const char  *p;                 /* the next line's start */
    const char  *end;
    long         next_no;           /* its number (1-based) */
    const char  *s;                 /* the peeked line, without its terminator */
    size_t       n;
    long         no;
    int          have;
} vh_cap_lines_t;

typedef struct {
    vh_caption_limits_t  lim;
    vh_captions_t       *out;
    char                *err;
    size_t               errlen;
    int                  srt;
    int                  nomem;
    long long            prev_start;
    size_t               vtt_len;   /* the normalized WebVTT's size so far */
    long long            shown[VH_CAPTION_MAX_OVERLAP];  /* the ends of the cues */
    size_t               nshown;    /* ... on screen at the last cue's start */
    vh_buf_t             raw;       /* one cue's text lines, '\n' between */
    vh_buf_t             text;      /* ... sanitized */
} vh_cap_ctx_t;

static void
cap_error(vh_cap_ctx_t *cx, const char *code, long line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
cap_error(vh_cap_ctx_t *cx, const char *code, long line, const char *fmt, ...)
{
    va_list  ap;
    int      n;

    if (cx->errlen == 0) {
        return;
    }
    if (line > 0) {
        n = snprintf(cx->err, cx->errlen, "%s: line %ld: ", code, line);
    } else {
        n = snprintf(cx->err, cx->errlen, "%s: ", code);
    }
    if (n < 0 || (size_t) n >= cx->errlen) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(cx->err + n, cx->errlen - n, fmt, ap);
    va_end(ap);
}

/*
 * A piece of the input for an error message: printable ASCII only (the
 * message goes to a log line and a database column), at most 40 bytes.
 */
static void
cap_quote(const char *s, size_t n, char *out, size_t len)
{
    size_t  i, o = 0;

    for (i = 0; i < n && o + 4 < len && i < 40; i++) {
        unsigned char c = (unsigned char) s[i];

        out[o++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char) c : '?';
    }
    if (i < n && o + 4 < len) {
        out[o++] = '.';
        out[o++] = '.';
        out[o++] = '.';
    }
    out[o] = '\0';
}

/* ---------------------------------------------------------------- lines */

/* CR, LF and CRLF end a line (WebVTT's rule, which SRT files follow too) */
static int
line_peek(vh_cap_lines_t *r)
{
    const char  *q;

    if (r->have) {
        return 1;
    }
    if (r->p >= r->end) {
        return 0;
    }
    for (q = r->p; q < r->end && *q != '\n' && *q != '\r'; q++) {
        /* the line */
    }
    r->s = r->p;
    r->n = (size_t) (q - r->p);
    r->no = r->next_no++;
    if (q < r->end && *q == '\r') {
        q++;
        if (q < r->end && *q == '\n') {
            q++;
        }
    } else if (q < r->end) {
        q++;
    }
    r->p = q;
    r->have = 1;
    return 1;
}

static void
line_take(vh_cap_lines_t *r)
{
    r->have = 0;
}

static int
line_blank(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (s[i] != ' ' && s[i] != '\t') {
            return 0;
        }
    }
    return 1;
}

static int
line_has_arrow(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i + 3 <= n; i++) {
        if (s[i] == '-' && s[i + 1] == '-' && s[i + 2] == '>') {
            return 1;
        }
    }
    return 0;
}

/* "WORD", "WORD ..." or "WORD\t...": a NOTE, STYLE or REGION block */
static int
line_keyword(const char *s, size_t n, const char *word)
{
    size_t  w = strlen(word);

    return n >= w && memcmp(s, word, w) == 0
           && (n == w || s[w] == ' ' || s[w] == '\t');
}

/* SRT: a line with "-->" that starts like a time (else it is text) */
static int
line_timing_like(const char *s, size_t n)
{
    size_t  i = 0;

    while (i < n && (s[i] == ' ' || s[i] == '\t')) {
        i++;
    }
    return i + 1 < n && s[i] >= '0' && s[i] <= '9'
           && ((s[i + 1] >= '0' && s[i + 1] <= '9') || s[i + 1] == ':');
}

/* a cue number: digits, spaces around allowed */
static int
line_number(const char *s, size_t n)
{
    size_t  i = 0, d = 0;

    while (i < n && (s[i] == ' ' || s[i] == '\t')) {
        i++;
    }
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        i++;
        d++;
    }
    while (i < n && (s[i] == ' ' || s[i] == '\t')) {
        i++;
    }
    return d > 0 && d <= 9 && i == n;
}

/* ---------------------------------------------------------------- encoding */

/*
 * Strict UTF-8 (RFC 3629): no overlong form, no surrogate, nothing past
 * U+10FFFF, no NUL.  0 or -1 with the error.
 */
static int
cap_utf8(vh_cap_ctx_t *cx, const unsigned char *s, size_t n)
{
    size_t          i = 0;
    long            line = 1;
    unsigned char   c;
    unsigned long   cp, min;
    int             k, j;

    while (i < n) {
        c = s[i];
        if (c == '\n' || (c == '\r' && !(i + 1 < n && s[i + 1] == '\n'))) {
            line++;
            i++;
            continue;
        }
        if (c == 0) {
            cap_error(cx, "caption_encoding", line,
                      "a NUL byte (UTF-16 or UTF-32 text without a byte order mark?): "
                      "save the file as UTF-8");
            return -1;
        }
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            k = 1; cp = c & 0x1f; min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2; cp = c & 0x0f; min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3; cp = c & 0x07; min = 0x10000;
        } else {
            cap_error(cx, "caption_encoding", line,
                      "invalid UTF-8 (byte 0x%02X%s): save the file as UTF-8",
                      c, (c == 0xc0 || c == 0xc1) ? ", an overlong sequence"
                         : c < 0xc0 ? ", Latin-1 or Windows-1252 text?" : "");
            return -1;
        }
        for (j = 1; j <= k; j++) {
            if (i + j >= n) {
                cap_error(cx, "caption_encoding", line,
                          "invalid UTF-8 (the file ends inside the sequence of byte "
                          "0x%02X)", c);
                return -1;
            }
            if ((s[i + j] & 0xc0) != 0x80) {
                cap_error(cx, "caption_encoding", line,
                          "invalid UTF-8 (byte 0x%02X does not continue 0x%02X, "
                          "Latin-1 or Windows-1252 text?): save the file as UTF-8",
                          s[i + j], c);
                return -1;
            }
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if (cp < min) {
            cap_error(cx, "caption_encoding", line,
                      "invalid UTF-8 (an overlong sequence for U+%04lX)", cp);
            return -1;
        }
        if (cp >= 0xd800 && cp <= 0xdfff) {
            cap_error(cx, "caption_encoding", line,
                      "invalid UTF-8 (the surrogate U+%04lX, CESU-8 or broken UTF-16?)",
                      cp);
            return -1;
        }
        if (cp > 0x10ffff) {
            cap_error(cx, "caption_encoding", line,
                      "invalid UTF-8 (U+%lX is past U+10FFFF)", cp);
            return -1;
        }
        i += k + 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- timing */

static void
ts_print(long long ms, char *out, size_t len)
{
    snprintf(out, len, "%02lld:%02lld:%02lld.%03lld", ms / 3600000,
             ms / 60000 % 60, ms / 1000 % 60, ms % 1000);
}

static size_t
digits(const char *s, size_t n, size_t i, long long *v)
{
    size_t  d = 0;

    *v = 0;
    while (i + d < n && s[i + d] >= '0' && s[i + d] <= '9' && d < 10) {
        *v = *v * 10 + (s[i + d] - '0');
        d++;
    }
    return d;
}

/*
 * [h+:]mm:ss.mmm (WebVTT) or hh:mm:ss,mmm (SRT, '.' accepted too) at s[*i]:
 * 0 with *ms and *i past it, or -1 with the error (line, the token quoted)
 */
static int
ts_parse(vh_cap_ctx_t *cx, long line, const char *s, size_t n, size_t *i,
    long long *ms)
{
    long long   g[3], frac;
    size_t      d[3], df, k, p = *i, t;
    int         ng = 0;
    char        tok[64];

    for (t = p; t < n && s[t] != ' ' && s[t] != '\t'; t++) {
        /* the token, for the messages */
    }
    if (t - p >= 3 && s[t - 1] == '>' && s[t - 2] == '-' && s[t - 3] == '-') {
        t -= 3;                     /* "00:01.000-->" */
    }
    cap_quote(s + p, t - p, tok, sizeof(tok));

    for (;;) {
        d[ng] = digits(s, n, p, &g[ng]);
        if (d[ng] == 0) {
            goto malformed;
        }
        p += d[ng];
        ng++;
        if (p < n && s[p] == ':' && ng < 3) {
            p++;
            continue;
        }
        break;
    }
    if (ng < 2 || p >= n) {
        goto malformed;
    }
    if (s[p] == ',' && !cx->srt) {
        cap_error(cx, "caption_timestamp", line,
                  "WebVTT writes \".\" before the milliseconds, not \",\", in \"%s\"",
                  tok);
        return -1;
    }
    if (s[p] != '.' && s[p] != ',') {
        goto malformed;
    }
    p++;
    df = digits(s, n, p, &frac);
    if (df != 3) {
        cap_error(cx, "caption_timestamp", line,
                  "milliseconds must be 3 digits in \"%s\"", tok);
        return -1;
    }
    p += df;
    /*
     * mm:ss or h:mm:ss: minutes and seconds are two digits each; hours as
     * many as digits() reads (10: no overflow), their value is checked below
     */
    for (k = (ng == 3); k < (size_t) ng; k++) {
        if (d[k] != 2) {
            goto malformed;
        }
    }
    if (g[ng - 2] > 59) {
        cap_error(cx, "caption_timestamp", line,
                  "minutes must be 00..59 in \"%s\"", tok);
        return -1;
    }
    if (g[ng - 1] > 59) {
        cap_error(cx, "caption_timestamp", line,
                  "seconds must be 00..59 in \"%s\"", tok);
        return -1;
    }
    *ms = (ng == 3 ? g[0] * 3600000 : 0) + g[ng - 2] * 60000 + g[ng - 1] * 1000 + frac;
    if (*ms > VH_CAPTION_MAX_MS) {
        cap_error(cx, "caption_timestamp", line,
                  "an absurd time (over 99 hours) in \"%s\"", tok);
        return -1;
    }
    *i = p;
    return 0;

malformed:
    cap_error(cx, "caption_timestamp", line, "malformed time \"%s\": expected %s",
              tok, cx->srt ? "hh:mm:ss,mmm" : "hh:mm:ss.mmm or mm:ss.mmm");
    return -1;
}

/* ---------------------------------------------------------------- cue settings */

/* 0..100 with up to 3 decimals, then '%' */
static int
pct_valid(const char *s, size_t n)
{
    size_t  i = 0, d = 0, f = 0;
    long    v = 0;

    while (i < n && s[i] >= '0' && s[i] <= '9' && d < 3) {
        v = v * 10 + (s[i] - '0');
        i++;
        d++;
    }
    if (d == 0) {
        return 0;
    }
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9' && f < 3) {
            if (s[i] != '0' && v >= 100) {
                return 0;
            }
            i++;
            f++;
        }
        if (f == 0) {
            return 0;
        }
    }
    return i + 1 == n && s[i] == '%' && v <= 100;
}

static int
word_in(const char *s, size_t n, const char *const *words)
{
    for (; *words; words++) {
        if (strlen(*words) == n && memcmp(s, *words, n) == 0) {
            return 1;
        }
    }
    return 0;
}

/* "<pct>" or "<pct>,<word>" */
static int
pct_with(const char *v, size_t n, const char *const *words)
{
    const char  *c = memchr(v, ',', n);

    if (c == NULL) {
        return pct_valid(v, n);
    }
    return pct_valid(v, (size_t) (c - v))
           && word_in(c + 1, n - (size_t) (c - v) - 1, words);
}

static const char *const  align_words[] = { "start", "center", "end", "left", "right", NULL };
static const char *const  line_words[] = { "start", "center", "end", NULL };
static const char *const  pos_words[] = { "line-left", "center", "line-right", NULL };

/* line:<pct> or line:[-]<1..3 digits>, then ",start|center|end" */
static int
line_valid(const char *v, size_t n)
{
    const char  *c = memchr(v, ',', n);
    size_t       m = c ? (size_t) (c - v) : n, i = 0, d;
    long long    x;

    if (c != NULL && !word_in(c + 1, n - m - 1, line_words)) {
        return 0;
    }
    if (pct_valid(v, m)) {
        return 1;
    }
    if (m > 0 && v[0] == '-') {
        i = 1;
    }
    d = digits(v, m, i, &x);
    return d >= 1 && d <= 3 && i + d == m;
}

/*
 * Keeps align, line, position and size with valid values (the last of
 * each), in that order; drops everything else (region, vertical, junk).
 */
static int
settings_normalize(const char *s, size_t n, vh_buf_t *out)
{
    static const char *const  names[] = { "align", "line", "position", "size" };
    const char  *val[4] = { NULL, NULL, NULL, NULL };
    size_t       vlen[4] = { 0, 0, 0, 0 };
    size_t       i = 0, t, k;
    const char  *c;
    int          first = 1;

    while (i < n) {
        while (i < n && (s[i] == ' ' || s[i] == '\t')) {
            i++;
        }
        for (t = i; t < n && s[t] != ' ' && s[t] != '\t'; t++) {
            /* a setting */
        }
        c = memchr(s + i, ':', t - i);
        if (c != NULL) {
            const char  *v = c + 1;
            size_t       vn = (size_t) (s + t - v), nn = (size_t) (c - (s + i));
            int          ok = 0;

            for (k = 0; k < 4; k++) {
                if (strlen(names[k]) == nn && memcmp(s + i, names[k], nn) == 0) {
                    break;
                }
            }
            switch (k) {
            case 0: ok = word_in(v, vn, align_words); break;
            case 1: ok = line_valid(v, vn); break;
            case 2: ok = pct_with(v, vn, pos_words); break;
            case 3: ok = pct_valid(v, vn); break;
            default: break;
            }
            if (ok) {
                val[k] = v;
                vlen[k] = vn;
            }
        }
        i = t;
    }
    for (k = 0; k < 4; k++) {
        if (val[k] == NULL) {
            continue;
        }
        if ((!first && vh_buf_append(out, " ", 1) != 0)
            || vh_buf_printf(out, "%s:", names[k]) != 0
            || vh_buf_append(out, val[k], vlen[k]) != 0)
        {
            return -1;
        }
        first = 0;
    }
    return vh_buf_append(out, "", 0);
}

/* ---------------------------------------------------------------- cue text */

/*
 * "&name;" or "&#N;" / "&#xH;" at s[i] that we keep: its length, else 0.
 * Numeric ones must name a character that is not a control, a surrogate
 * or past U+10FFFF.
 */
static size_t
entity_len(const char *s, size_t n, size_t i)
{
    static const char *const  named[] = { "amp", "lt", "gt", "nbsp", "lrm", "rlm", NULL };
    size_t         j = i + 1, d = 0;
    unsigned long  v = 0;

    if (j < n && s[j] == '#') {
        j++;
        if (j < n && (s[j] == 'x' || s[j] == 'X')) {
            j++;
            for (; j < n && d < 7; j++, d++) {
                char c = s[j];

                if (c >= '0' && c <= '9') {
                    v = v * 16 + (c - '0');
                } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
                    v = v * 16 + ((c | 0x20) - 'a' + 10);
                } else {
                    break;
                }
            }
        } else {
            for (; j < n && d < 8 && s[j] >= '0' && s[j] <= '9'; j++, d++) {
                v = v * 10 + (s[j] - '0');
            }
        }
        if (d == 0 || j >= n || s[j] != ';') {
            return 0;
        }
        if (v < 0x20 || (v >= 0x7f && v <= 0x9f) || (v >= 0xd800 && v <= 0xdfff)
            || v > 0x10ffff)
        {
            return 0;
        }
        return j + 1 - i;
    }
    for (; j < n && d < 5 && ((s[j] | 0x20) >= 'a' && (s[j] | 0x20) <= 'z'); j++, d++) {
        /* a name */
    }
    if (d == 0 || j >= n || s[j] != ';' || !word_in(s + i + 1, d, named)) {
        return 0;
    }
    return j + 1 - i;
}

/*
 * One character of text (not a tag) at s[*i] into out, escaped: '&' of no
 * kept entity, '<' and '>' as entities; controls dropped (C0 but tab, DEL,
 * C1); tab kept.
 */
static int
text_char(const char *s, size_t n, size_t *i, vh_buf_t *out)
{
    unsigned char  c = (unsigned char) s[*i];
    size_t         e;

    if (c == '&') {
        e = entity_len(s, n, *i);
        if (e) {
            *i += e;
            return vh_buf_append(out, s + *i - e, e);
        }
        (*i)++;
        return vh_buf_append(out, "&amp;", 5);
    }
    if (c == '<') {
        (*i)++;
        return vh_buf_append(out, "&lt;", 4);
    }
    if (c == '>') {
        (*i)++;
        return vh_buf_append(out, "&gt;", 4);
    }
    if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f) {
        (*i)++;
        return 0;
    }
    if (c == 0xc2 && *i + 1 < n && (unsigned char) s[*i + 1] <= 0x9f) {
        *i += 2;                    /* U+0080..U+009F */
        return 0;
    }
    (*i)++;
    return vh_buf_append(out, (const char *) &c, 1);
}

static int
tag_is(const char *name, size_t n, const char *want)
{
    size_t  i;

    if (strlen(want) != n) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if ((name[i] | 0x20) != want[i]) {
            return 0;
        }
    }
    return 1;
}

/*
 * The cue's text (lines joined by '\n') rebuilt into out: kept tags
 * balanced, the rest of the markup dropped, text escaped.  SRT's ASS
 * override blocks ("{\an8}") are dropped too.
 */
static int
text_sanitize(const char *s, size_t n, int srt, vh_buf_t *out)
{
    char    stack[VH_CAP_MAX_DEPTH];
    int     depth = 0, k;
    size_t  i = 0, j, a, nm, gt = 0, br = 0;

    /*
     * gt and br: where the last scan for a tag's '>' (a block's '}') stopped,
     * at it, a newline or the end; a '<' before that stops there too: each
     * byte is scanned once, however many '<' a line has
     */
    while (i < n) {
        if (srt && s[i] == '{' && i + 1 < n && s[i + 1] == '\\') {
            if (br <= i) {
                for (br = i + 2; br < n && s[br] != '}' && s[br] != '\n'; br++) {
                    /* an override block */
                }
            }
            if (br < n && s[br] == '}') {
                i = br + 1;
                continue;
            }
        }
        if (s[i] != '<') {
            if (text_char(s, n, &i, out) != 0) {
                return -1;
            }
            continue;
        }
        /* a tag: '<', then a letter, a '/' or a digit, up to '>' on this line */
        if (gt <= i) {
            for (gt = i + 1; gt < n && s[gt] != '>' && s[gt] != '\n'; gt++) {
                /* the tag's inside */
            }
        }
        j = gt;
        if (j >= n || s[j] != '>' || j == i + 1
            || !(((s[i + 1] | 0x20) >= 'a' && (s[i + 1] | 0x20) <= 'z')
                 || s[i + 1] == '/' || (s[i + 1] >= '0' && s[i + 1] <= '9')))
        {
            if (text_char(s, n, &i, out) != 0) {      /* a stray '<' */
                return -1;
            }
            continue;
        }
        if (s[i + 1] >= '0' && s[i + 1] <= '9') {
            /* a timestamp tag (karaoke): dropped; anything else is text */
            for (a = i + 1; a < j && ((s[a] >= '0' && s[a] <= '9') || s[a] == ':'
                                      || s[a] == '.'); a++)
            {
                /* digits */
            }
            if (a < j) {
                if (text_char(s, n, &i, out) != 0) {
                    return -1;
                }
                continue;
            }
            i = j + 1;
            continue;
        }
        if (s[i + 1] == '/') {
            const char  *name = s + i + 2;

            for (nm = 0; i + 2 + nm < j && ((name[nm] | 0x20) >= 'a'
                                            && (name[nm] | 0x20) <= 'z'); nm++)
            {
                /* the name */
            }
            for (k = depth - 1; k >= 0; k--) {
                if ((stack[k] == 'v' && tag_is(name, nm, "v"))
                    || (stack[k] == 'b' && tag_is(name, nm, "b"))
                    || (stack[k] == 'i' && tag_is(name, nm, "i"))
                    || (stack[k] == 'u' && tag_is(name, nm, "u")))
                {
                    break;
                }
            }
            /* closes it and whatever opened inside it; a stray end tag is dropped */
            while (k >= 0 && depth > k) {
                char close[5] = { '<', '/', stack[--depth], '>', '\0' };

                if (vh_buf_append(out, close, 4) != 0) {
                    return -1;
                }
            }
            i = j + 1;
            continue;
        }
        {
            const char  *name = s + i + 1;
            char         t = 0;

            for (nm = 0; i + 1 + nm < j && ((name[nm] | 0x20) >= 'a'
                                            && (name[nm] | 0x20) <= 'z'); nm++)
            {
                /* the name, up to a class ('.'), a space or the end */
            }
            if (tag_is(name, nm, "b")) {
                t = 'b';
            } else if (tag_is(name, nm, "i")) {
                t = 'i';
            } else if (tag_is(name, nm, "u")) {
                t = 'u';
            } else if (tag_is(name, nm, "v")) {
                t = 'v';
            }
            a = i + 1 + nm;
            if (t != 0 && a < j && s[a] != '.' && s[a] != ' ' && s[a] != '\t') {
                t = 0;              /* "<bold>", "<v2>" */
            }
            if (t == 0 || depth == VH_CAP_MAX_DEPTH) {
                i = j + 1;          /* dropped, its text stays */
                continue;
            }
            if (t == 'v') {
                vh_buf_t  name_out = { 0 };
                size_t    b, e, q;

                /* the voice: the annotation after the classes and a space */
                while (a < j && s[a] != ' ' && s[a] != '\t') {
                    a++;
                }
                for (q = a; q < j; ) {
                    if (s[q] == '\t') {
                        q++;
                        if (vh_buf_append(&name_out, " ", 1) != 0) {
                            vh_buf_free(&name_out);
                            return -1;
                        }
                        continue;
                    }
                    if (text_char(s, j, &q, &name_out) != 0) {
                        vh_buf_free(&name_out);
                        return -1;
                    }
                }
                for (b = 0; b < name_out.len && name_out.data[b] == ' '; b++) {
                    /* leading spaces */
                }
                for (e = name_out.len; e > b && name_out.data[e - 1] == ' '; e--) {
                    /* trailing spaces */
                }
                if (e == b) {
                    vh_buf_free(&name_out);
                    i = j + 1;      /* a voice without a name: dropped */
                    continue;
                }
                /* "<v a-->": a name ending in '-' would end in "-->" */
                k = name_out.data[e - 1] == '-';
                if (vh_buf_append(out, "<v ", 3) != 0
                    || vh_buf_append(out, name_out.data + b, e - b - k) != 0
                    || (k && vh_buf_append(out, "&#45;", 5) != 0)
                    || vh_buf_append(out, ">", 1) != 0)
                {
                    vh_buf_free(&name_out);
                    return -1;
                }
                vh_buf_free(&name_out);
            } else {
                char open[4] = { '<', t, '>', '\0' };

                if (vh_buf_append(out, open, 3) != 0) {
                    return -1;
                }
            }
            stack[depth++] = t;
            i = j + 1;
        }
    }
    while (depth > 0) {
        char close[5] = { '<', '/', stack[--depth], '>', '\0' };

        if (vh_buf_append(out, close, 4) != 0) {
            return -1;
        }
    }
    return vh_buf_append(out, "", 0);
}

/*
 * The sanitized text's lines, trailing blanks cut, blank lines dropped
 * (a blank line would end the cue in our output), into *text (malloc'd);
 * *lines counts them.  "" when nothing is left.
 */
static int
text_lines(const char *s, size_t n, char **text, size_t *lines)
{
    char    *o = malloc(n + 1);
    size_t   i = 0, len = 0, e, st;

    if (o == NULL) {
        return -1;
    }
    *lines = 0;
    while (i <= n) {
        st = i;
        while (i < n && s[i] != '\n') {
            i++;
        }
        for (e = i; e > st && (s[e - 1] == ' ' || s[e - 1] == '\t'); e--) {
            /* trailing blanks */
        }
        if (e > st && !line_blank(s + st, e - st)) {
            if (*lines) {
                o[len++] = '\n';
            }
            memcpy(o + len, s + st, e - st);
            len += e - st;
            (*lines)++;
        }
        i++;
    }
    o[len] = '\0';
    *text = o;
    return 0;
}

/* ---------------------------------------------------------------- cues */

static size_t
cue_vtt_len(const vh_cue_t *q)
{
    /* "\n" "hh:mm:ss.mmm --> hh:mm:ss.mmm" [" " settings] "\n" text "\n" */
    return 1 + 29 + (q->settings[0] ? 1 + strlen(q->settings) : 0) + 1
           + strlen(q->text) + 1;
}

/*
 * One cue: the timing line at r's current line (taken), then its text
 * lines up to a blank line, the end, or (as WebVTT parsers do) a line
 * with "-->", or in SRT a number line followed by one.
 */
static int
cue_parse(vh_cap_ctx_t *cx, vh_cap_lines_t *r)
{
    const char  *s = r->s;
    size_t       n = r->n, i = 0, k, lines;
    long         line = r->no, first_line;
    long long    start, end;
    vh_buf_t     settings = { 0 };
    vh_cue_t    *q;
    char        *text = NULL, a[32], b[32], tok[64];

    line_take(r);
    while (i < n && (s[i] == ' ' || s[i] == '\t')) {
        i++;
    }
    if (ts_parse(cx, line, s, n, &i, &start) != 0) {
        return -1;
    }
    while (i < n && (s[i] == ' ' || s[i] == '\t')) {
        i++;
    }
    if (n - i < 3 || memcmp(s + i, "-->", 3) != 0) {
        cap_quote(s, n, tok, sizeof(tok));
        cap_error(cx, "caption_timestamp", line,
                  "malformed cue timing \"%s\": expected \"start --> end\"", tok);
        return -1;
    }
    i += 3;
    while (i < n && (s[i] == ' ' || s[i] == '\t')) {
        i++;
    }
    if (ts_parse(cx, line, s, n, &i, &end) != 0) {
        return -1;
    }
    if (i < n && s[i] != ' ' && s[i] != '\t') {
        cap_quote(s, n, tok, sizeof(tok));
        cap_error(cx, "caption_timestamp", line,
                  "malformed cue timing \"%s\": a space must follow the end time", tok);
        return -1;
    }
    ts_print(start, a, sizeof(a));
    ts_print(end, b, sizeof(b));
    if (end <= start) {
        cap_error(cx, "caption_timestamp", line,
                  "the cue ends (%s) at or before it starts (%s)", b, a);
        return -1;
    }
    if (start < cx->prev_start) {
        char p[32];

        ts_print(cx->prev_start, p, sizeof(p));
        cap_error(cx, "caption_timestamp", line,
                  "the cue starts at %s, before the cue before it (%s): "
                  "cues must be in order of their start", a, p);
        return -1;
    }
    cx->prev_start = start;

    /* SRT's coordinates (X1:...) are dropped with the rest of the line */
    if (!cx->srt && settings_normalize(s + i, n - i, &settings) != 0) {
        goto nomem;
    }
    if (cx->srt && vh_buf_append(&settings, "", 0) != 0) {
        goto nomem;
    }

    cx->raw.len = 0;
    first_line = 0;
    /* WebVTT: an empty line ends the cue; SRT: spaces only too */
    while (line_peek(r) && r->n > 0 && !(cx->srt && line_blank(r->s, r->n))) {
        if (line_has_arrow(r->s, r->n)
            && (!cx->srt || line_timing_like(r->s, r->n)))
        {
            break;                  /* the next cue, without a blank line */
        }
        if (cx->srt && line_number(r->s, r->n)) {
            vh_cap_lines_t  ahead = *r;

            line_take(&ahead);
            if (line_peek(&ahead) && line_has_arrow(ahead.s, ahead.n)) {
                break;              /* the next cue's number */
            }
        }
        if (first_line == 0) {
            first_line = r->no;
        }
        if ((cx->raw.len && vh_buf_append(&cx->raw, "\n", 1) != 0)
            || vh_buf_append(&cx->raw, r->s, r->n) != 0)
        {
            goto nomem;
        }
        line_take(r);
    }

    cx->text.len = 0;
    if (text_sanitize(cx->raw.data ? cx->raw.data : "", cx->raw.len, cx->srt,
                      &cx->text) != 0
        || text_lines(cx->text.data, cx->text.len, &text, &lines) != 0)
    {
        goto nomem;
    }
    if (lines == 0) {
        /* nothing to show (an empty cue, or only markup): dropped */
        free(text);
        vh_buf_free(&settings);
        return 0;
    }
    if (strlen(text) > cx->lim.max_cue_bytes) {
        cap_error(cx, "caption_too_large", first_line,
                  "the cue at %s has %zu bytes of text, over the limit of %zu",
                  a, strlen(text), cx->lim.max_cue_bytes);
        goto fail;
    }
    if (lines > cx->lim.max_cue_lines) {
        cap_error(cx, "caption_too_large", first_line,
                  "the cue at %s has %zu lines, over the limit of %zu",
                  a, lines, cx->lim.max_cue_lines);
        goto fail;
    }
    /*
     * the cues before it still on screen when it starts (they all start at
     * or before it): at most VH_CAPTION_MAX_OVERLAP
     */
    for (i = 0, k = 0; i < cx->nshown; i++) {
        if (cx->shown[i] > start) {
            cx->shown[k++] = cx->shown[i];
        }
    }
    cx->nshown = k;
    if (cx->nshown == VH_CAPTION_MAX_OVERLAP) {
        cap_error(cx, "caption_too_large", line,
                  "the cue at %s starts while %d cues before it are still on screen, "
                  "over the limit of %d at once", a, VH_CAPTION_MAX_OVERLAP,
                  VH_CAPTION_MAX_OVERLAP);
        goto fail;
    }
    if (cx->out->n >= cx->lim.max_cues) {
        cap_error(cx, "caption_too_large", line,
                  "more than %zu cues", cx->lim.max_cues);
        goto fail;
    }
    if (cx->out->n == cx->out->cap) {
        size_t     cap = cx->out->cap ? cx->out->cap * 2 : 64;
        vh_cue_t  *nq = realloc(cx->out->cues, cap * sizeof(vh_cue_t));

        if (nq == NULL) {
            goto nomem;
        }
        cx->out->cues = nq;
        cx->out->cap = cap;
    }
    cx->shown[cx->nshown++] = end;
    q = &cx->out->cues[cx->out->n];
    q->start_ms = start;
    q->end_ms = end;
    q->settings = settings.data;
    q->text = text;
    cx->out->n++;
    cx->vtt_len += cue_vtt_len(q);
    if (cx->vtt_len > VH_CAPTION_MAX_VTT) {
        cap_error(cx, "caption_too_large", line,
                  "the WebVTT made of the file would be over %d bytes",
                  VH_CAPTION_MAX_VTT);
        return -1;
    }
    return 0;

nomem:
    cx->nomem = 1;
    cap_error(cx, "caption_internal", line, "out of memory");
fail:
    free(text);
    vh_buf_free(&settings);
    return -1;
}

static int
parse_vtt(vh_cap_ctx_t *cx, vh_cap_lines_t *r)
{
    char  tok[64];
    long  no;

    /*
     * Blocks end where browsers end them (the WebVTT parser's "collect a
     * block"): at an empty line, or before a line with "-->" that is not
     * the block's first or, after an identifier, its second line
     */

    /* the header: "WEBVTT" and whatever follows up to such an end, dropped */
    line_take(r);
    while (line_peek(r) && r->n > 0 && !line_has_arrow(r->s, r->n)) {
        line_take(r);
    }
    for (;;) {
        int  kw;

        while (line_peek(r) && line_blank(r->s, r->n)) {
            line_take(r);
        }
        if (!line_peek(r)) {
            return 0;
        }
        if (line_has_arrow(r->s, r->n)) {
            if (cue_parse(cx, r) != 0) {
                return -1;
            }
            continue;
        }
        /* a cue identifier (dropped) when the timing follows */
        kw = line_keyword(r->s, r->n, "NOTE") || line_keyword(r->s, r->n, "STYLE")
             || line_keyword(r->s, r->n, "REGION");
        cap_quote(r->s, r->n, tok, sizeof(tok));
        no = r->no;
        line_take(r);
        if (line_peek(r) && line_has_arrow(r->s, r->n)) {
            if (cue_parse(cx, r) != 0) {
                return -1;
            }
            continue;
        }
        if (!kw) {
            cap_error(cx, "caption_format", no,
                      "\"%s\" is neither a cue (no \"-->\" timing line after it) nor a "
                      "NOTE, STYLE or REGION block", tok);
            return -1;
        }
        while (line_peek(r) && r->n > 0 && !line_has_arrow(r->s, r->n)) {
            line_take(r);               /* NOTE, STYLE, REGION: dropped */
        }
    }
}

static int
parse_srt(vh_cap_ctx_t *cx, vh_cap_lines_t *r)
{
    char  tok[64];
    long  no;

    for (;;) {
        while (line_peek(r) && line_blank(r->s, r->n)) {
            line_take(r);
        }
        if (!line_peek(r)) {
            return 0;
        }
        if (line_has_arrow(r->s, r->n)) {
            if (cue_parse(cx, r) != 0) {
                return -1;
            }
            continue;
        }
        cap_quote(r->s, r->n, tok, sizeof(tok));
        no = r->no;
        if (!line_number(r->s, r->n)) {
            cap_error(cx, "caption_format", no,
                      "expected a cue number or a timing line, not \"%s\"", tok);
            return -1;
        }
        line_take(r);
        if (!line_peek(r) || !line_has_arrow(r->s, r->n)) {
            cap_error(cx, "caption_format", no,
                      "cue \"%s\" has no timing line (hh:mm:ss,mmm --> hh:mm:ss,mmm) "
                      "after its number", tok);
            return -1;
        }
        if (cue_parse(cx, r) != 0) {
            return -1;
        }
    }
}

int
vh_captions_parse(const char *data, size_t len, const vh_caption_limits_t *lim,
    vh_captions_t *out, char *err, size_t errlen)
{
    const unsigned char  *u = (const unsigned char *) data;
    vh_cap_ctx_t          cx;
    vh_cap_lines_t        r;
    int                   rc;

    memset(out, 0, sizeof(*out));
    memset(&cx, 0, sizeof(cx));
    cx.out = out;
    cx.err = err;
    cx.errlen = errlen;
    if (errlen) {
        err[0] = '\0';
    }
    if (lim != NULL) {
        cx.lim = *lim;
    }
    if (cx.lim.max_bytes == 0) {
        cx.lim.max_bytes = VH_CAPTION_MAX_BYTES;
    }
    if (cx.lim.max_cues == 0) {
        cx.lim.max_cues = VH_CAPTION_MAX_CUES;
    }
    if (cx.lim.max_cue_bytes == 0) {
        cx.lim.max_cue_bytes = VH_CAPTION_MAX_CUE_BYTES;
    }
    if (cx.lim.max_cue_lines == 0) {
        cx.lim.max_cue_lines = VH_CAPTION_MAX_CUE_LINES;
    }

    if (len > cx.lim.max_bytes) {
        cap_error(&cx, "caption_too_large", 0,
                  "the file has %zu bytes, over the limit of %zu", len, cx.lim.max_bytes);
        return -1;
    }
    if (len >= 4 && ((u[0] == 0xff && u[1] == 0xfe && u[2] == 0 && u[3] == 0)
                     || (u[0] == 0 && u[1] == 0 && u[2] == 0xfe && u[3] == 0xff)))
    {
        cap_error(&cx, "caption_encoding", 0,
                  "the file is UTF-32 (%s byte order mark): save it as UTF-8",
                  u[0] ? "a little-endian" : "a big-endian");
        return -1;
    }
    if (len >= 2 && ((u[0] == 0xff && u[1] == 0xfe) || (u[0] == 0xfe && u[1] == 0xff))) {
        cap_error(&cx, "caption_encoding", 0,
                  "the file is UTF-16 (%s byte order mark): save it as UTF-8",
                  u[0] == 0xff ? "a little-endian" : "a big-endian");
        return -1;
    }
    if (len >= 3 && u[0] == 0xef && u[1] == 0xbb && u[2] == 0xbf) {
        data += 3;                  /* UTF-8's BOM: dropped */
        len -= 3;
    }
    if (cap_utf8(&cx, (const unsigned char *) data, len) != 0) {
        return -1;
    }

    memset(&r, 0, sizeof(r));
    r.p = data;
    r.end = data + len;
    r.next_no = 1;
    cx.vtt_len = 7;                 /* "WEBVTT\n" */

    if (line_peek(&r) && r.n >= 6 && memcmp(r.s, "WEBVTT", 6) == 0
        && (r.n == 6 || r.s[6] == ' ' || r.s[6] == '\t'))
    {
        rc = parse_vtt(&cx, &r);
    } else {
        /* SRT: a cue number then a timing line, or a timing line */
        while (line_peek(&r) && line_blank(r.s, r.n)) {
            line_take(&r);
        }
        if (!line_peek(&r)) {
            cap_error(&cx, "caption_format", 0, "the file is empty");
            return -1;
        }
        if (r.n >= 6 && memcmp(r.s, "WEBVTT", 6) == 0) {
            cap_error(&cx, "caption_format", r.no, r.no == 1
                      ? "the WEBVTT header must end there, or go on after a space or a tab"
                      : "the WEBVTT header must be the first line of the file");
            return -1;
        }
        if (!line_has_arrow(r.s, r.n)) {
            vh_cap_lines_t  ahead = r;

            line_take(&ahead);
            if (!line_number(r.s, r.n) || !line_peek(&ahead)
                || !line_has_arrow(ahead.s, ahead.n))
            {
                cap_error(&cx, "caption_format", r.no,
                          "neither WebVTT (no WEBVTT header on line 1) nor SRT "
                          "(a cue number, then hh:mm:ss,mmm --> hh:mm:ss,mmm)");
                return -1;
            }
        }
        cx.srt = 1;
        rc = parse_srt(&cx, &r);
    }
    vh_buf_free(&cx.raw);
    vh_buf_free(&cx.text);
    if (rc == 0 && out->n == 0) {
        cap_error(&cx, "caption_format", 0, "no cues with text in the file");
        rc = -1;
    }
    if (rc != 0) {
        rc = cx.nomem ? VH_CAPTIONS_NOMEM : -1;
        vh_captions_free(out);
    }
    return rc;
}

void
vh_captions_free(vh_captions_t *c)
{
    size_t  i;

    for (i = 0; i < c->n; i++) {
        free(c->cues[i].settings);
        free(c->cues[i].text);
    }
    free(c->cues);
    memset(c, 0, sizeof(*c));
}

/* ---------------------------------------------------------------- output */

static int
cue_write(const vh_cue_t *q, long long end_ms, vh_buf_t *out)
{
    char  a[32], b[32];

    ts_print(q->start_ms, a, sizeof(a));
    ts_print(end_ms, b, sizeof(b));
    return vh_buf_printf(out, "%s --> %s%s%s\n%s\n", a, b,
                         q->settings[0] ? " " : "", q->settings, q->text);
}

int
vh_captions_vtt(const vh_captions_t *c, vh_buf_t *out)
{
    size_t  i;

    if (vh_buf_append(out, "WEBVTT\n", 7) != 0) {
        return -1;
    }
    for (i = 0; i < c->n; i++) {
        if (vh_buf_append(out, "\n", 1) != 0
            || cue_write(&c->cues[i], c->cues[i].end_ms, out) != 0)
        {
            return -1;
        }
    }
    return 0;
}

size_t
vh_captions_segments(long long seg_ms, long long duration_ms)
{
    if (seg_ms <= 0 || duration_ms <= seg_ms) {
        return 1;
    }
    return (size_t) ((duration_ms + seg_ms - 1) / seg_ms);
}

int
vh_captions_segment(const vh_captions_t *c, long long seg_ms, long long duration_ms,
    size_t k, long long mpegts, vh_buf_t *out)
{
    long long  from, to, end;
    size_t     i;
    int        first = 1;

    if (vh_buf_printf(out, "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:%lld,LOCAL:00:00:00.000\n\n",
                      mpegts) != 0)
    {
        return -1;
    }
    if (seg_ms <= 0) {
        return 0;
    }
    from = (long long) k * seg_ms;
    to = from + seg_ms;
    for (i = 0; i < c->n; i++) {
        const vh_cue_t *q = &c->cues[i];

        if (q->start_ms >= to) {
            break;                  /* in order of their start */
        }
        if (q->end_ms <= from || q->start_ms >= duration_ms) {
            continue;
        }
        end = q->end_ms < duration_ms ? q->end_ms : duration_ms;
        if ((!first && vh_buf_append(out, "\n", 1) != 0)
            || cue_write(q, end, out) != 0)
        {
            return -1;
        }
        first = 0;
    }
    return 0;
}

int
vh_captions_playlist(long long seg_ms, long long duration_ms, vh_buf_t *out)
{
    size_t     i, n = vh_captions_segments(seg_ms, duration_ms);
    long long  d;

    if (seg_ms <= 0) {
        return -1;
    }
    if (vh_buf_printf(out, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:%lld\n"
                      "#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n",
                      (seg_ms + 999) / 1000) != 0)
    {
        return -1;
    }
    for (i = 0; i < n; i++) {
        d = duration_ms - (long long) i * seg_ms;
        if (d > seg_ms || d <= 0) {
            d = seg_ms;
        }
        if (vh_buf_printf(out, "#EXTINF:%lld.%03lld,\nseg_%05zu.vtt\n",
                          d / 1000, d % 1000, i) != 0)
        {
            return -1;
        }
    }
    return vh_buf_printf(out, "#EXT-X-ENDLIST\n");
}
