/*
 * The helper's caption validation and segmentation (captions.c), with the
 * core's TAP producer (t/unit/tap.h): every refusal with a hostile file and
 * its exact message, SRT to WebVTT, the markup and cue settings that are
 * kept or rewritten, the limits, the normalized WebVTT parsing back to the
 * same cues, the HLS subtitle segments and playlist at their boundaries,
 * and a track's files in a version (subs_track.c): never in a version that
 * is gone.  Run by t/096-helper-logic.t (with test_logic).
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "tap.h"
#include "vodlms_helper.h"

volatile sig_atomic_t  vh_stop;     /* main.c's, which is not linked */

/* parses; the normalized WebVTT, or "ERR <message>", malloc'd */
static char *
run(const char *data, size_t len, const vh_caption_limits_t *lim)
{
    vh_captions_t  c;
    vh_buf_t       b = { 0 };
    char           err[512], *r;

    if (vh_captions_parse(data, len, lim, &c, err, sizeof(err)) != 0) {
        if (c.n != 0 || c.cues != NULL) {
            return strdup("LEFT CUES BEHIND");
        }
        r = malloc(strlen(err) + 5);
        if (r == NULL) {
            exit(1);
        }
        sprintf(r, "ERR %s", err);
        return r;
    }
    if (vh_captions_vtt(&c, &b) != 0) {
        exit(1);
    }
    vh_captions_free(&c);
    return b.data;
}

static void
is_parse(const char *data, size_t len, const vh_caption_limits_t *lim,
    const char *want, const char *what)
{
    char *got = run(data, len, lim);

    is_str(got, want, "%s", what);
    free(got);
}

#define PARSE(lit, want, what) is_parse(lit, sizeof(lit) - 1, NULL, want, what)

/* ---------------------------------------------------------------- refusals */

static void
test_encoding(void)
{
    PARSE("\xff\xfeW\0E\0B\0V\0T\0T\0\n\0",
          "ERR caption_encoding: the file is UTF-16 (a little-endian byte order mark): "
          "save it as UTF-8", "UTF-16 LE named as such");
    PARSE("\xfe\xff\0W\0E\0B",
          "ERR caption_encoding: the file is UTF-16 (a big-endian byte order mark): "
          "save it as UTF-8", "UTF-16 BE named as such");
    PARSE("\xff\xfe\0\0W\0\0\0E\0\0\0",
          "ERR caption_encoding: the file is UTF-32 (a little-endian byte order mark): "
          "save it as UTF-8", "UTF-32 LE named as such, not as UTF-16");
    PARSE("\0\0\xfe\xff\0\0\0W",
          "ERR caption_encoding: the file is UTF-32 (a big-endian byte order mark): "
          "save it as UTF-8", "UTF-32 BE named as such");
    PARSE("W\0E\0B\0V\0T\0T\0",
          "ERR caption_encoding: line 1: a NUL byte (UTF-16 or UTF-32 text without a "
          "byte order mark?): save the file as UTF-8", "UTF-16 without a BOM: its NUL");
    PARSE("WEBVTT\n\n00:01.000 --> 00:02.000\nnul \0 here\n",
          "ERR caption_encoding: line 4: a NUL byte (UTF-16 or UTF-32 text without a "
          "byte order mark?): save the file as UTF-8", "a NUL inside a cue, its line");
    PARSE("WEBVTT\n\n00:01.000 --> 00:02.000\ncaf\xe9\n",
          "ERR caption_encoding: line 4: invalid UTF-8 (byte 0x0A does not continue 0xE9, "
          "Latin-1 or Windows-1252 text?): save the file as UTF-8",
          "Latin-1 (e-acute at the end of a line)");
    PARSE("WEBVTT\n\n00:01.000 --> 00:02.000\n\x93quoted\x94\n",
          "ERR caption_encoding: line 4: invalid UTF-8 (byte 0x93, Latin-1 or "
          "Windows-1252 text?): save the file as UTF-8", "Windows-1252 quotes");
    PARSE("WEBVTT\n\n00:01.000 --> 00:02.000\n..\xc0\xaf..\n",
          "ERR caption_encoding: line 4: invalid UTF-8 (byte 0xC0, an overlong sequence): "
          "save the file as UTF-8", "overlong '/' in 2 bytes");
    PARSE("WEBVTT\n\n00:01.000 --> 00:02.000\n..\xe0\x80\xbc..\n",
          "ERR caption_encoding: line 4: invalid UTF-8 (an overlong sequence for U+003C)",
          "overlong '<' in 3 bytes (a filter bypass)");
    PARSE("WEBVTT\n\n00:01.000 --> 00:02.000\n\xf0\x80\x80\xbc\n",
          "ERR caption_encoding: line 4: invalid UTF-8 (an overlong sequence for U+003C)",
          "overlong '<' in 4 bytes");
    PARSE("WEBVTT\r\n\r\n00:01.000 --> 00:02.000\r\n\xed\xa0\x80\r\n",
          "ERR caption_encoding: line 4: invalid UTF-8 (the surrogate U+D800, CESU-8 or "
          "broken UTF-16?)", "a surrogate (CRLF lines counted once)");
    PARSE("WEBVTT\r\r00:01.000 --> 00:02.000\r\xf4\x90\x80\x80\r",
          "ERR caption_encoding: line 4: invalid UTF-8 (U+110000 is past U+10FFFF)",
          "past U+10FFFF (CR-only lines counted)");
    PARSE("WEBVTT\n\n00:01.000 --> 00:02.000\n\xf8\x88\x80\x80\x80\n",
          "ERR caption_encoding: line 4: invalid UTF-8 (byte 0xF8): save the file as UTF-8",
          "a 5-byte form");
    PARSE("WEBVTT\n\n00:01.000 --> 00:02.000\nend \xe2\x82",
          "ERR caption_encoding: line 4: invalid UTF-8 (the file ends inside the sequence "
          "of byte 0xE2)", "cut short at the end of the file");
    PARSE("\xef\xbb\xbf\xef\xbb\xbf\xef",
          "ERR caption_encoding: line 1: invalid UTF-8 (the file ends inside the sequence "
          "of byte 0xEF)", "a BOM, then bytes that are not UTF-8");
}

static void
test_format(void)
{
    PARSE("", "ERR caption_format: the file is empty", "empty file");
    PARSE("\xef\xbb\xbf", "ERR caption_format: the file is empty", "a BOM alone");
    PARSE("\n \n\t\r\n", "ERR caption_format: the file is empty", "blank lines only");
    PARSE("hello\n",
          "ERR caption_format: line 1: neither WebVTT (no WEBVTT header on line 1) nor SRT "
          "(a cue number, then hh:mm:ss,mmm --> hh:mm:ss,mmm)", "plain text");
    PARSE("<html><script>alert(1)</script></html>\n",
          "ERR caption_format: line 1: neither WebVTT (no WEBVTT header on line 1) nor SRT "
          "(a cue number, then hh:mm:ss,mmm --> hh:mm:ss,mmm)", "an HTML page");
    PARSE("WEBVTTX\n\n00:01.000 --> 00:02.000\nx\n",
          "ERR caption_format: line 1: the WEBVTT header must end there, or go on after a "
          "space or a tab",
          "WEBVTT must be followed by a space, a tab or the line's end");
    PARSE("1\nhello\n",
          "ERR caption_format: line 1: neither WebVTT (no WEBVTT header on line 1) nor SRT "
          "(a cue number, then hh:mm:ss,mmm --> hh:mm:ss,mmm)", "a number without timing");
    PARSE("\n\nWEBVTT\n\n00:01.000 --> 00:02.000\nx\n",
          "ERR caption_format: line 3: the WEBVTT header must be the first line of the file",
          "WEBVTT after blank lines");
    PARSE("WEBVTT\n\nNOTE only a note\n\nSTYLE\n::cue { color: red }\n",
          "ERR caption_format: no cues with text in the file", "no cue at all");
    PARSE("WEBVTT\n\n00:01.000 --> 00:02.000\n<font></font>\n\n"
          "00:03.000 --> 00:04.000\n   \n",
          "ERR caption_format: no cues with text in the file",
          "cues with nothing to show (markup only, blanks)");
    PARSE("WEBVTT\n\n00:01.000 --> 00:02.000\nx\n\nsome words\nmore words\n",
          "ERR caption_format: line 6: \"some words\" is neither a cue (no \"-->\" timing "
          "line after it) nor a NOTE, STYLE or REGION block", "a stray block");
    PARSE("WEBVTT\n\n00:01.000 --> 00:02.000\nx\n\nlonely id",
          "ERR caption_format: line 6: \"lonely id\" is neither a cue (no \"-->\" timing "
          "line after it) nor a NOTE, STYLE or REGION block", "an identifier at the end");
    PARSE("1\n00:00:01,000 --> 00:00:02,000\nx\n\n2\nhello\n",
          "ERR caption_format: line 5: cue \"2\" has no timing line (hh:mm:ss,mmm --> "
          "hh:mm:ss,mmm) after its number", "SRT: a number without its timing");
    PARSE("1\n00:00:01,000 --> 00:00:02,000\nx\n\n\"quoted\\\" \x01 junk\n",
          "ERR caption_format: line 5: expected a cue number or a timing line, not "
          "\"?quoted?? ? junk\"", "SRT: junk, quoted safely in the message");
}

static void
test_timestamp(void)
{
    PARSE("WEBVTT\n\n00:61:00.000 --> 01:00:00.000\nx\n",
          "ERR caption_timestamp: line 3: minutes must be 00..59 in \"00:61:00.000\"",
          "minutes 61");
    PARSE("WEBVTT\n\n00:00.000 --> 00:60.000\nx\n",
          "ERR caption_timestamp: line 3: seconds must be 00..59 in \"00:60.000\"",
          "seconds 60");
    PARSE("WEBVTT\n\n75:00.000 --> 76:00.000\nx\n",
          "ERR caption_timestamp: line 3: minutes must be 00..59 in \"75:00.000\"",
          "mm:ss with 75 minutes");
    PARSE("WEBVTT\n\n00:01.00 --> 00:02.000\nx\n",
          "ERR caption_timestamp: line 3: milliseconds must be 3 digits in \"00:01.00\"",
          "2-digit milliseconds");
    PARSE("WEBVTT\n\n00:01.0000 --> 00:02.000\nx\n",
          "ERR caption_timestamp: line 3: milliseconds must be 3 digits in \"00:01.0000\"",
          "4-digit milliseconds");
    PARSE("WEBVTT\n\n1:2:3.000 --> 00:02.000\nx\n",
          "ERR caption_timestamp: line 3: malformed time \"1:2:3.000\": expected "
          "hh:mm:ss.mmm or mm:ss.mmm", "one-digit minutes and seconds");
    PARSE("WEBVTT\n\n00:01.000 --> \nx\n",
          "ERR caption_timestamp: line 3: malformed time \"\": expected "
          "hh:mm:ss.mmm or mm:ss.mmm", "no end time");
    PARSE("WEBVTT\n\n00:01 --> 00:02.000\nx\n",
          "ERR caption_timestamp: line 3: malformed time \"00:01\": expected "
          "hh:mm:ss.mmm or mm:ss.mmm", "no milliseconds");
    PARSE("WEBVTT\n\nab:cd.efg --> 00:02.000\nx\n",
          "ERR caption_timestamp: line 3: malformed time \"ab:cd.efg\": expected "
          "hh:mm:ss.mmm or mm:ss.mmm", "letters");
    PARSE("WEBVTT\n\n00:01.000 - -> 00:02.000 -->\nx\n",
          "ERR caption_timestamp: line 3: malformed cue timing \"00:01.000 - -> 00:02.000 "
          "-->\": expected \"start --> end\"", "a broken arrow");
    PARSE("WEBVTT\n\n00:01.000 --> 00:02.000x\nx\n",
          "ERR caption_timestamp: line 3: malformed cue timing \"00:01.000 --> 00:02.000x\": "
          "a space must follow the end time", "junk glued to the end time");
    PARSE("WEBVTT\n\n00:00:01,000 --> 00:00:02,000\nx\n",
          "ERR caption_timestamp: line 3: WebVTT writes \".\" before the milliseconds, "
          "not \",\", in \"00:00:01,000\"", "SRT's comma in a WebVTT file");
    PARSE("WEBVTT\n\n00:00:03.000 --> 00:00:02.000\nx\n",
          "ERR caption_timestamp: line 3: the cue ends (00:00:02.000) at or before it "
          "starts (00:00:03.000)", "end before start");
    PARSE("WEBVTT\n\n00:00:03.000 --> 00:00:03.000\nx\n",
          "ERR caption_timestamp: line 3: the cue ends (00:00:03.000) at or before it "
          "starts (00:00:03.000)", "end equal to start");
    PARSE("WEBVTT\n\n00:05.000 --> 00:06.000\na\n\n00:04.999 --> 00:07.000\nb\n",
          "ERR caption_timestamp: line 6: the cue starts at 00:00:04.999, before the cue "
          "before it (00:00:05.000): cues must be in order of their start", "out of order");
    PARSE("WEBVTT\n\n99:00:00.000 --> 99:00:00.001\nx\n",
          "ERR caption_timestamp: line 3: an absurd time (over 99 hours) in \"99:00:00.001\"",
          "just over 99 hours");
    PARSE("WEBVTT\n\n100:00:00.000 --> 100:00:01.000\nx\n",
          "ERR caption_timestamp: line 3: an absurd time (over 99 hours) in \"100:00:00.000\"",
          "three-digit hours");
    PARSE("WEBVTT\n\n99999999999999999999:00:00.000 --> 00:01.000\nx\n",
          "ERR caption_timestamp: line 3: malformed time \"99999999999999999999:00:00.000\": "
          "expected hh:mm:ss.mmm or mm:ss.mmm", "digits that would overflow");
    PARSE("1\n00:00:01,000 --> 00:00:00,500\nx\n",
          "ERR caption_timestamp: line 2: the cue ends (00:00:00.500) at or before it "
          "starts (00:00:01.000)", "SRT: end before start");
    PARSE("1\n00:00:01,000 --> 00:00:02,000\nx\n\n2\n00:00:01;000 --> 00:00:03,000\ny\n",
          "ERR caption_timestamp: line 6: malformed time \"00:00:01;000\": expected "
          "hh:mm:ss,mmm", "SRT: a semicolon");
    PARSE("WEBVTT\n\n98:59:59.000 --> 99:00:00.000\nlast second\n",
          "WEBVTT\n\n98:59:59.000 --> 99:00:00.000\nlast second\n", "99 hours is the limit");
    /* WebVTT's hours are "two or more digits": leading zeros are no absurd time */
    PARSE("WEBVTT\n\n000:00:01.000 --> 0000000002:00:00.000\nx\n",
          "WEBVTT\n\n00:00:01.000 --> 02:00:00.000\nx\n", "hours with leading zeros");
    PARSE("1\n000:00:01,000 --> 00:00:02,000\nx\n",
          "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nx\n", "SRT: hours with leading zeros");
    PARSE("WEBVTT\n\n00000000000:00:01.000 --> 00:00:02.000\nx\n",
          "ERR caption_timestamp: line 3: malformed time \"00000000000:00:01.000\": "
          "expected hh:mm:ss.mmm or mm:ss.mmm", "11 digits of hours: malformed");
}

static void
test_limits(void)
{
    vh_caption_limits_t  lim;
    vh_buf_t             b = { 0 };
    size_t               i;
    char                *got;

    memset(&lim, 0, sizeof(lim));
    lim.max_bytes = 40;
    is_parse("WEBVTT\n\n00:01.000 --> 00:02.000\n01234567", 40, &lim,
             "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n01234567\n", "a file of max_bytes");
    is_parse("WEBVTT\n\n00:01.000 --> 00:02.000\n012345678", 41, &lim,
             "ERR caption_too_large: the file has 41 bytes, over the limit of 40",
             "a file over max_bytes");

    memset(&lim, 0, sizeof(lim));
    lim.max_cues = 2;
    is_parse("WEBVTT\n\n00:01.000 --> 00:02.000\na\n\n00:02.000 --> 00:03.000\nb\n\n"
             "00:03.000 --> 00:04.000\nc\n", 88, &lim,
             "ERR caption_too_large: line 9: more than 2 cues", "more than max_cues");

    /* the defaults: 1024 bytes and 8 lines of normalized text a cue */
    vh_buf_printf(&b, "WEBVTT\n\n00:01.000 --> 00:02.000\n");
    for (i = 0; i < 1024; i++) {
        vh_buf_append(&b, "x", 1);
    }
    got = run(b.data, b.len, NULL);
    ok(got && strncmp(got, "WEBVTT\n", 7) == 0, "1024 bytes of text in a cue: taken");
    free(got);
    vh_buf_append(&b, "y", 1);
    is_parse(b.data, b.len, NULL,
             "ERR caption_too_large: line 4: the cue at 00:00:01.000 has 1025 bytes of "
             "text, over the limit of 1024", "1025 bytes: refused");
    b.len = 0;
    vh_buf_printf(&b, "WEBVTT\n\n00:01.000 --> 00:02.000\n");
    for (i = 0; i < 205; i++) {
        vh_buf_append(&b, "&", 1);
    }
    is_parse(b.data, b.len, NULL,
             "ERR caption_too_large: line 4: the cue at 00:00:01.000 has 1025 bytes of "
             "text, over the limit of 1024", "the limit counts the text as written (&amp;)");
    b.len = 0;
    vh_buf_printf(&b, "WEBVTT\n\n00:01.000 --> 00:02.000\n1\n2\n3\n4\n5\n6\n7\n8");
    got = run(b.data, b.len, NULL);
    ok(got && strstr(got, "\n8\n") != NULL, "8 lines: taken");
    free(got);
    vh_buf_printf(&b, "\n9\n");
    is_parse(b.data, b.len, NULL,
             "ERR caption_too_large: line 4: the cue at 00:00:01.000 has 9 lines, over "
             "the limit of 8", "9 lines: refused");

    /* each cue within its limit, the WebVTT over 4 MiB (the column's check) */
    b.len = 0;
    vh_buf_printf(&b, "WEBVTT\n");
    for (i = 0; b.len < VH_CAPTION_MAX_BYTES - 300; i++) {
        size_t j;

        vh_buf_printf(&b, "\n%02zu:%02zu:%02zu.000 --> %02zu:%02zu:%02zu.500\n",
                      i / 3600, i / 60 % 60, i % 60, i / 3600, i / 60 % 60, i % 60);
        for (j = 0; j < 200; j++) {
            vh_buf_append(&b, "&", 1);
        }
        vh_buf_append(&b, "\n", 1);
    }
    got = run(b.data, b.len, NULL);
    ok(got && strncmp(got, "ERR caption_too_large: line ", 28) == 0
       && strstr(got, ": the WebVTT made of the file would be over 4194304 bytes") != NULL,
       "a 2 MiB file whose WebVTT would pass 4 MiB: refused (%s)", got ? got : "NULL");
    free(got);

    /*
     * cues on screen at once: a cue is written into every HLS segment it
     * spans, so 20000 cues each spanning the lecture (a 600 KB file) made
     * every 30 s segment of a 2 h lecture 660 KB: 158 MB of segments
     */
    b.len = 0;
    vh_buf_printf(&b, "WEBVTT\n");
    for (i = 0; i < 20000; i++) {
        vh_buf_printf(&b, "\n00:00.000 --> 98:59:59.000\na\n");
    }
    is_parse(b.data, b.len, NULL,
             "ERR caption_too_large: line 51: the cue at 00:00:00.000 starts while 16 cues "
             "before it are still on screen, over the limit of 16 at once",
             "20000 cues each spanning the lecture: refused at the 17th");
    b.len = 0;
    vh_buf_printf(&b, "WEBVTT\n");
    for (i = 0; i < VH_CAPTION_MAX_OVERLAP; i++) {
        vh_buf_printf(&b, "\n00:00.000 --> 01:00.000\ncue %zu\n", i);
    }
    vh_buf_printf(&b, "\n00:30.000 --> 00:30.001\n<c></c>\n"
                      "\n01:00.000 --> 01:00.001\nwhen they end\n");
    got = run(b.data, b.len, NULL);
    ok(got && strncmp(got, "WEBVTT\n", 7) == 0 && strstr(got, "\nwhen they end\n") != NULL,
       "16 cues at once: taken; a cue dropped as empty is not on screen; one starting "
       "when they end is not over them (%.60s)", got ? got : "NULL");
    free(got);
    b.len = 0;
    vh_buf_printf(&b, "WEBVTT\n");
    for (i = 0; i < VH_CAPTION_MAX_OVERLAP; i++) {
        vh_buf_printf(&b, "\n00:%02zu.000 --> 01:00.000\ncue %zu\n", i, i);
    }
    vh_buf_printf(&b, "\n00:59.999 --> 01:00.001\none too many\n");
    is_parse(b.data, b.len, NULL,
             "ERR caption_too_large: line 51: the cue at 00:00:59.999 starts while 16 cues "
             "before it are still on screen, over the limit of 16 at once",
             "a 17th cue before the 16 end: refused");

    /* a line of a million '<': escaped in one pass, then over the cue limit */
    memset(&lim, 0, sizeof(lim));
    lim.max_bytes = 4 * 1024 * 1024;
    b.len = 0;
    vh_buf_printf(&b, "WEBVTT\n\n00:01.000 --> 00:02.000\n");
    for (i = 0; i < 1000000; i++) {
        vh_buf_append(&b, "<", 1);
    }
    is_parse(b.data, b.len, &lim,
             "ERR caption_too_large: line 4: the cue at 00:00:01.000 has 4000000 bytes of "
             "text, over the limit of 1024", "a million stray '<'");
    b.len = 0;
    vh_buf_printf(&b, "1\n00:00:01,000 --> 00:00:02,000\n");
    for (i = 0; i < 500000; i++) {
        vh_buf_append(&b, "{\\", 2);
    }
    is_parse(b.data, b.len, &lim,
             "ERR caption_too_large: line 3: the cue at 00:00:01.000 has 1000000 bytes of "
             "text, over the limit of 1024", "half a million unclosed \"{\\\"");
    vh_buf_free(&b);
}

/* ---------------------------------------------------------------- conversion */

static void
test_srt(void)
{
    PARSE("\xef\xbb\xbf"
          "1\r\n"
          "00:00:01,000 --> 00:00:04,500 X1:100 X2:600 Y1:10 Y2:50\r\n"
          "<font color=\"#ff0000\">Red</font> and <I>italic</I>\r\n"
          "{\\an8}at the top\r\n"
          "\r\n"
          "2\r\n"
          "00:00:04,500 --> 00:00:06,000\r\n"
          "- an arrow --> in text\r\n"
          "- <b>bold & brave\r\n"
          "3\r\n"
          "00:00:07.250 --> 00:00:09,000\r\n"
          "no blank line before me, a '.' too\r\n"
          "\r\n"
          "\r\n"
          "  4  \r\n"
          "01:02:03,004 --> 01:02:04,000\r\n"
          "<v a-->hello\r\n"
          "42\r\n",
          "WEBVTT\n"
          "\n"
          "00:00:01.000 --> 00:00:04.500\n"
          "Red and <i>italic</i>\n"
          "at the top\n"
          "\n"
          "00:00:04.500 --> 00:00:06.000\n"
          "- an arrow --&gt; in text\n"
          "- <b>bold &amp; brave</b>\n"
          "\n"
          "00:00:07.250 --> 00:00:09.000\n"
          "no blank line before me, a '.' too\n"
          "\n"
          "01:02:03.004 --> 01:02:04.000\n"
          "<v a-&#45;>hello\n"
          "42</v>\n",
          "SRT -> WebVTT: BOM and numbers dropped, ',' -> '.', CRLF -> LF, coordinates "
          "and {\\an8} dropped, <font> dropped, markup balanced, \"-->\" escaped, a cue "
          "without a blank line before its number");
    PARSE("00:00:01,000 --> 00:00:02,000\nno number\n",
          "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nno number\n", "SRT without cue numbers");
    PARSE("1\n00:01,000 --> 00:02,000\nshort\n",
          "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nshort\n", "SRT with mm:ss,mmm");
}

static void
test_vtt(void)
{
    /* where browsers end a block, not only at a blank line */
    PARSE("WEBVTT\n00:01.000 --> 00:02.000\nx\n",
          "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nx\n",
          "no blank line after the header: the cue is read, as browsers read it");
    PARSE("WEBVTT - title\nKind: captions\n00:01.000 --> 00:02.000\nx\n",
          "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nx\n",
          "header lines, then a cue without a blank line");
    PARSE("WEBVTT\n\nNOTE\n00:01.000 --> 00:02.000\nNOTE is its identifier\n\n"
          "STYLE\n00:02.000 --> 00:03.000\nSTYLE too\n",
          "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nNOTE is its identifier\n\n"
          "00:00:02.000 --> 00:00:03.000\nSTYLE too\n",
          "NOTE or STYLE followed by a timing line: a cue and its identifier");
    PARSE("WEBVTT\n\nNOTE a note\nof two lines\n00:01.000 --> 00:02.000\nafter the note\n",
          "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nafter the note\n",
          "a line with \"-->\" ends a NOTE block and starts a cue");

    PARSE("WEBVTT - <script>alert(1)</script>\n"
          "Kind: captions\n"
          "Language: en\n"
          "\n"
          "STYLE\n"
          "::cue { background: url(https://evil.example/x) }\n"
          "\n"
          "REGION\n"
          "id:fred width:40%\n"
          "\n"
          "NOTE This is a note\n"
          "over two lines\n"
          "\n"
          "NOTE\tanother\n"
          "\n"
          "intro <b>id</b>\n"
          "00:00:01.000 --> 00:00:04.000 region:fred align:start\n"
          "<v.loud Roger Bingham>We are in New York City</v>\n"
          "\n"
          "   \t\n"
          "\n"
          "00:03.500\t-->\t00:12.000\n"
          "a whitespace-only line is ignored between blocks\n"
          "\n"
          "00:00:13.000 --> 00:00:14.000\n"
          "a cue\n"
          "00:00:14.000 --> 00:00:15.000\n"
          "right after another, no blank line between\n",
          "WEBVTT\n"
          "\n"
          "00:00:01.000 --> 00:00:04.000 align:start\n"
          "<v Roger Bingham>We are in New York City</v>\n"
          "\n"
          "00:00:03.500 --> 00:00:12.000\n"
          "a whitespace-only line is ignored between blocks\n"
          "\n"
          "00:00:13.000 --> 00:00:14.000\n"
          "a cue\n"
          "\n"
          "00:00:14.000 --> 00:00:15.000\n"
          "right after another, no blank line between\n",
          "WebVTT: header text, STYLE, REGION, NOTE and identifiers dropped, region "
          "setting dropped, tabs around the arrow");
    PARSE("WEBVTT\n\n00:01.000 --> 00:02.000\n  indented  \n\t\n\n",
          "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n  indented\n",
          "trailing blanks cut, blank text lines dropped, leading blanks kept");
}

/* one cue's text through the parser */
static void
markup_is(const char *text, const char *want, const char *what)
{
    vh_buf_t  in = { 0 };
    char     *got, *t;

    vh_buf_printf(&in, "WEBVTT\n\n00:01.000 --> 00:02.000\n%s\n", text);
    got = run(in.data, in.len, NULL);
    t = got && strncmp(got, "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n", 38) == 0
        ? got + 38 : got;
    if (t && t != got && t[0] && t[strlen(t) - 1] == '\n') {
        t[strlen(t) - 1] = '\0';
    }
    is_str(t, want, "markup: %s", what);
    free(got);
    vh_buf_free(&in);
}

static void
test_markup(void)
{
    markup_is("<b>b</b> <i>i</i> <u>u</u>", "<b>b</b> <i>i</i> <u>u</u>", "b, i, u kept");
    markup_is("<B>x</B> <I>y</i>", "<b>x</b> <i>y</i>", "upper case tags lowered");
    markup_is("<b.red.big>x</b> <b >y</b >", "<b>x</b> <b>y</b>",
              "classes and annotations of b dropped");
    markup_is("<script>alert(1)</script>", "alert(1)", "script: the tag dropped, the text kept");
    markup_is("a<img src=x onerror=alert(1)>b", "ab", "an img with an event handler dropped");
    markup_is("<font color=\"red\">red</font>", "red", "font dropped, its text kept");
    markup_is("<c.yellow>c</c> <ruby>r<rt>t</rt></ruby> <lang en>l</lang>", "c rt l",
              "c, ruby, rt, lang dropped");
    markup_is("<bold>x</bold> <v2>y</v2> <br>", "x y", "names that only start like b or v");
    markup_is("<b>open", "<b>open</b>", "an open tag closed at the end");
    markup_is("</i>stray", "stray", "a stray end tag dropped");
    markup_is("<b><i>x</b>y</i>", "<b><i>x</i></b>y", "crossed tags: balanced");
    markup_is("<b>a\n<i>b</b>\nc", "<b>a\n<i>b</i></b>\nc", "tags across lines");
    markup_is("<b><b><b><b><b><b><b><b><b>x",
              "<b><b><b><b><b><b><b><b>x</b></b></b></b></b></b></b></b>",
              "8 open tags at most");
    markup_is("<v Mary>hi</v>", "<v Mary>hi</v>", "a voice kept");
    markup_is("<v.loud  Ann  >x</v>", "<v Ann>x</v>", "voice: classes dropped, name trimmed");
    markup_is("<v Mary & <Bob>hi", "<v Mary &amp; &lt;Bob>hi</v>",
              "voice name escaped, the tag closed");
    markup_is("<v Bob\tSmith>x", "<v Bob Smith>x</v>", "a tab in a voice name");
    markup_is("<v>nameless</v> <v   >x", "nameless x", "a voice without a name dropped");
    markup_is("<v a&lt;b>x", "<v a&lt;b>x</v>", "an entity in a voice name kept");
    markup_is("a <3 b > c", "a &lt;3 b &gt; c", "stray < and > escaped");
    markup_is("x < y", "x &lt; y", "'<' then a space: text");
    markup_is("<1x>", "&lt;1x&gt;", "'<' then a digit, not a time: text");
    markup_is("<<b>i>", "&lt;<b>i&gt;</b>", "'<' before a tag");
    markup_is("<b\n>x", "&lt;b\n&gt;x", "a tag does not span lines");
    markup_is("&<b>amp;", "&amp;<b>amp;</b>", "an entity split by a tag is not one");
    markup_is("<00:00:01.500>karaoke<00:01.750>!", "karaoke!", "timestamp tags dropped");
    markup_is("&amp; &lt; &gt; &nbsp; &lrm; &rlm; &#65; &#x41; &#X1F600;",
              "&amp; &lt; &gt; &nbsp; &lrm; &rlm; &#65; &#x41; &#X1F600;", "entities kept");
    markup_is("&foo; &#0; &#9; &#x7F; &#128; &#xD800; &#x110000; &#; &amp &#65 &quot;",
              "&amp;foo; &amp;#0; &amp;#9; &amp;#x7F; &amp;#128; &amp;#xD800; "
              "&amp;#x110000; &amp;#; &amp;amp &amp;#65 &amp;quot;",
              "other entities, controls, surrogates, past U+10FFFF: '&' escaped");
    markup_is("&#00000065; &#000000065;", "&#00000065; &amp;#000000065;",
              "numeric references of at most 8 digits");
    markup_is("a\x01" "b\x7f" "c\xc2\x85" "d\te\x1b[31m", "abcd\te[31m",
              "control characters dropped (C0, DEL, C1), tab kept");
    markup_is("{\\an8}kept in WebVTT", "{\\an8}kept in WebVTT",
              "ASS blocks are text in WebVTT");
    markup_is("\xe2\x80\xae" "bidi \xef\xbb\xbf ok \xf0\x9f\x98\x80",
              "\xe2\x80\xae" "bidi \xef\xbb\xbf ok \xf0\x9f\x98\x80",
              "other characters kept as they are");
}

static void
settings_is(const char *settings, const char *want, const char *what)
{
    vh_buf_t  in = { 0 };
    char      exp[512], *got;

    vh_buf_printf(&in, "WEBVTT\n\n00:01.000 --> 00:02.000 %s\nx\n", settings);
    snprintf(exp, sizeof(exp), "WEBVTT\n\n00:00:01.000 --> 00:00:02.000%s%s\nx\n",
             want[0] ? " " : "", want);
    got = run(in.data, in.len, NULL);
    is_str(got, exp, "settings: %s", what);
    free(got);
    vh_buf_free(&in);
}

static void
test_settings(void)
{
    settings_is("align:start line:-1 position:10%,line-left size:50%",
                "align:start line:-1 position:10%,line-left size:50%", "all four kept");
    settings_is("size:50% position:0% line:0 align:end",
                "align:end line:0 position:0% size:50%", "written in one order");
    settings_is("align:left align:right", "align:right", "the last of a name wins");
    settings_is("align:center line:50%,end position:100%,center size:100.000%",
                "align:center line:50%,end position:100%,center size:100.000%",
                "values at their bounds");
    settings_is("vertical:rl region:fred align:middle line:200% line:-1234 line:1,middle",
                "", "vertical, region, old or out-of-range values dropped");
    settings_is("position:101% position:50%,start size:100.001% size:% size:.5% size:5",
                "", "bad percentages and position alignments dropped");
    settings_is("align:<script> line:1<b> size:50%\"onload",
                "", "markup in settings dropped");
    settings_is("   align:end    size:5.25%  ", "align:end size:5.25%", "blanks around");
}

static void
test_roundtrip(void)
{
    static const char  src[] =
        "WEBVTT\n\n"
        "00:00:01.000 --> 00:00:04.000 size:80% align:start\n"
        "<v.a Ann & Bo->x<b>y</i>z\n"
        "a <3 &amp b &#65; &lrm;\n\n"
        "00:00:01.000 --> 00:00:02.000\n<font>only markup</font> <c>c\n\n"
        "00:00:03.000 --> 00:10:00.000 line:-3,end\n<u><i>a\n  b  \n</u>\n";
    vh_captions_t  a, b;
    vh_buf_t       va = { 0 }, vb = { 0 };
    char           err[512];
    size_t         i;
    int            same = 1;

    is_int(vh_captions_parse(src, sizeof(src) - 1, NULL, &a, err, sizeof(err)), 0,
           "a file with everything parses");
    is_int(a.n, 3, "3 cues");
    vh_captions_vtt(&a, &va);
    is_int(vh_captions_parse(va.data, va.len, NULL, &b, err, sizeof(err)), 0,
           "its WebVTT parses");
    ok(a.n == b.n, "to as many cues");
    for (i = 0; i < a.n && i < b.n; i++) {
        same &= a.cues[i].start_ms == b.cues[i].start_ms
                && a.cues[i].end_ms == b.cues[i].end_ms
                && strcmp(a.cues[i].settings, b.cues[i].settings) == 0
                && strcmp(a.cues[i].text, b.cues[i].text) == 0;
    }
    ok(same, "to the same cues");
    vh_captions_vtt(&b, &vb);
    is_str(vb.data, va.data, "and to the same WebVTT");
    is_str(a.cues[0].settings, "align:start size:80%", "cue 1: settings");
    is_str(a.cues[0].text, "<v Ann &amp; Bo&#45;>x<b>yz\na &lt;3 &amp;amp b &#65; "
           "&lrm;</b></v>", "cue 1: text");
    is_int(a.cues[2].end_ms, 600000, "cue 3: ends at 10 min");
    is_str(a.cues[2].text, "<u><i>a\n  b\n</i></u>", "cue 3: text");
    vh_captions_free(&a);
    vh_captions_free(&b);
    vh_buf_free(&va);
    vh_buf_free(&vb);
}

/* ---------------------------------------------------------------- segments */

static void
test_segments(void)
{
    static const char  src[] =
        "WEBVTT\n\n"
        "00:00.000 --> 00:10.000\nfirst ten\n\n"
        "00:09.999 --> 00:10.001\nacross\n\n"
        "00:10.000 --> 00:20.000 align:end\nsecond ten\n\n"
        "00:25.000 --> 00:40.000\npast the end\n\n"
        "00:30.000 --> 00:31.000\nafter the end\n";
    vh_captions_t  c;
    vh_buf_t       b = { 0 };
    char           err[512];

    is_int(vh_captions_segments(10000, 30000), 3, "30 s in 10 s: 3 segments");
    is_int(vh_captions_segments(10000, 30001), 4, "30.001 s: 4");
    is_int(vh_captions_segments(10000, 1), 1, "1 ms: 1");
    is_int(vh_captions_segments(10000, 0), 1, "no duration: 1");
    is_int(vh_captions_segments(30000, 7261500), 243, "2 h 1 min 1.5 s in 30 s: 243");

    is_int(vh_captions_parse(src, sizeof(src) - 1, NULL, &c, err, sizeof(err)), 0,
           "the cues parse");
    vh_captions_segment(&c, 10000, 27500, 0, 126000, &b);
    is_str(b.data,
           "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000\n\n"
           "00:00:00.000 --> 00:00:10.000\nfirst ten\n\n"
           "00:00:09.999 --> 00:00:10.001\nacross\n",
           "segment 0: the cues starting in it, the one across the boundary too");
    b.len = 0;
    vh_captions_segment(&c, 10000, 27500, 1, 900000, &b);
    is_str(b.data,
           "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:00.000\n\n"
           "00:00:09.999 --> 00:00:10.001\nacross\n\n"
           "00:00:10.000 --> 00:00:20.000 align:end\nsecond ten\n",
           "segment 1: the cue across again (absolute times), not the one ending at 10 s");
    b.len = 0;
    vh_captions_segment(&c, 10000, 27500, 2, 126000, &b);
    is_str(b.data,
           "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000\n\n"
           "00:00:25.000 --> 00:00:27.500\npast the end\n",
           "segment 2 (the last, 7.5 s): the end clipped to the duration, the cue "
           "starting after it dropped");
    b.len = 0;
    vh_captions_segment(&c, 10000, 8000, 0, 126000, &b);
    is_str(b.data,
           "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000\n\n"
           "00:00:00.000 --> 00:00:08.000\nfirst ten\n",
           "a video shorter than the captions: one segment");
    b.len = 0;
    vh_captions_segment(&c, 5000, 27500, 4, 126000, &b);
    is_str(b.data, "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000\n\n",
           "a segment without cues: the header alone");
    vh_captions_free(&c);

    b.len = 0;
    is_int(vh_captions_playlist(10000, 27500, &b), 0, "playlist written");
    is_str(b.data,
           "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n"
           "#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n"
           "#EXTINF:10.000,\nseg_00000.vtt\n"
           "#EXTINF:10.000,\nseg_00001.vtt\n"
           "#EXTINF:7.500,\nseg_00002.vtt\n"
           "#EXT-X-ENDLIST\n",
           "the subtitle playlist: segments of D, the last one shorter");
    b.len = 0;
    vh_captions_playlist(30000, 60000, &b);
    is_str(b.data,
           "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:30\n"
           "#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n"
           "#EXTINF:30.000,\nseg_00000.vtt\n"
           "#EXTINF:30.000,\nseg_00001.vtt\n"
           "#EXT-X-ENDLIST\n",
           "a duration of whole segments");
    b.len = 0;
    vh_captions_playlist(30000, 1, &b);
    ok(b.data && strstr(b.data, "#EXTINF:0.001,\nseg_00000.vtt\n#EXT-X-ENDLIST\n") != NULL,
       "a 1 ms video: one segment of 1 ms");
    vh_buf_free(&b);
}

/* ------------------------------------------------------------ the track's files */

static int
exists(const char *fmt, const char *a, const char *b)
{
    char         path[4096];
    struct stat  sb;

    snprintf(path, sizeof(path), fmt, a, b);
    return lstat(path, &sb) == 0;
}

/*
 * vh_subs_write_track writes into an existing version only: when the sweep
 * removed the version (old_version_grace 0) after the caller looked, the
 * version must not come back as a directory no one removes
 */
static void
test_track(void)
{
    vh_conf_t            cf;
    vh_caption_limits_t  lim = { 1 << 20, 1000, 4096, 16 };
    vh_captions_t        c;
    char                 base[] = "/tmp/vh-track-XXXXXX", v1[128], gone[128];
    char                 err[512], cmd[256];
    const char          *rev = "20261205T121500Z-3f9a1c2b";
    const char          *vtt = "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nHello\n";
    int                  rc;

    if (vh_conf_init(&cf) != 0 || mkdtemp(base) == NULL
        || vh_captions_parse(vtt, strlen(vtt), &lim, &c, err, sizeof(err)) != 0)
    {
        ok(0, "test_track: setup");
        return;
    }
    cf.caption_segment_duration = 4;
    snprintf(v1, sizeof(v1), "%s/hls/v/20261205T120000Z-00000001", base);
    snprintf(gone, sizeof(gone), "%s/hls/v/20261205T120000Z-00000002", base);
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", v1);
    if (system(cmd) != 0) {
        ok(0, "test_track: mkdir %s", v1);
        return;
    }

    err[0] = '\0';
    rc = vh_subs_write_track(&cf, v1, "en", rev, &c, 10000, 126000, "v", err, sizeof(err));
    is_int(rc, 0, "a track into an existing version: written (%s)", err);
    ok(exists("%s/subs/en/%s/index.m3u8", v1, rev)
       && exists("%s/subs/en/%s/seg_00002.vtt", v1, rev)
       && !exists("%s/subs/en/.tmp-%s", v1, rev),
       "its playlist and its 3 segments are in place, no hidden directory left");
    rc = vh_subs_write_track(&cf, v1, "en", rev, &c, 10000, 126000, "v", err, sizeof(err));
    is_int(rc, 0, "the same revision again: already there, nothing to do");

    err[0] = '\0';
    rc = vh_subs_write_track(&cf, gone, "fr", rev, &c, 10000, 126000, "v", err, sizeof(err));
    is_int(rc, VH_SUBS_GONE, "a version that is gone (removed by the sweep): VH_SUBS_GONE");
    ok(!exists("%s%s", gone, ""), "the removed version is not created again (no orphan"
       " directory)");
    ok(strstr(err, gone) != NULL, "the reason names the version: %s", err);

    vh_captions_free(&c);
    vh_conf_free(&cf);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    if (system(cmd) != 0) {
        diag("cannot remove %s", base);
    }
}

int
main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    vh_log_open(VH_LOG_ERROR, 0);

    test_encoding();
    test_format();
    test_timestamp();
    test_limits();
    test_srt();
    test_vtt();
    test_markup();
    test_settings();
    test_roundtrip();
    test_segments();
    test_track();

    return done_testing();
}
