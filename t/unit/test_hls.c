/*
 * Unit tests of the signed-playlist rewriter (core/vodlms_hls.c): TAP on
 * stdout.  Each case gives a playlist, the query and the options, and the
 * exact output (or the code, reason and line of the refusal); every run
 * measures first and then writes into a buffer of exactly that size, so
 * each case also checks that the two passes agree.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vodlms_hls.h"
#include "tap.h"
#include "helpers.h"


#define Q     "Policy=eyJ9&Signature=c2ln~_&Key-Pair-Id=K2ABC"
#define ORIG  "https://media.example.com"


static vodlms_hls_opts_t
opts_of(vodlms_hls_abs_e abs)
{
    vodlms_hls_opts_t  o;

    memset(&o, 0, sizeof(o));
    o.absolute = abs;
    o.origin = ORIG;
    o.origin_len = sizeof(ORIG) - 1;
    o.max_size = VODLMS_HLS_MAX_SIZE_DEFAULT;
    o.max_line = VODLMS_HLS_MAX_LINE_DEFAULT;

    return o;
}


/*
 * Measure, then write into an exact-size heap copy; *out is malloc()ed on
 * VODLMS_OK.  The two passes must give the same code and length.
 */
static vodlms_rc_t
run(const char *in, size_t len, const char *q, const vodlms_hls_opts_t *o,
    char **out, size_t *out_len, vodlms_hls_err_t *err)
{
    char             *dup, *buf;
    size_t            need, wrote;
    vodlms_rc_t       rc, rc2;
    vodlms_hls_err_t  e2;

    dup = xdup(in, len);
    need = (size_t) -1;
    memset(err, 0, sizeof(*err));

    rc = vodlms_hls_rewrite(dup, len, q, strlen(q), o, NULL, 0, &need, err);

    /* a refusal must come the same with room to spare: at most one
     * insertion per line */
    if (rc != VODLMS_OK) {
        need = len + (len + 1) * (strlen(q) + 1);
    }

    buf = malloc(need ? need : 1);
    if (buf == NULL) {
        abort();
    }

    wrote = (size_t) -2;
    memset(&e2, 0, sizeof(e2));
    rc2 = vodlms_hls_rewrite(dup, len, q, strlen(q), o, buf, need, &wrote,
                             &e2);
    free(dup);

    if (rc2 != rc || (rc == VODLMS_OK && wrote != need)
        || e2.line != err->line)
    {
        diag("measure and write disagree: rc %d/%d, len %zu/%zu", (int) rc,
             (int) rc2, need, wrote);
        rc = VODLMS_EINTERNAL;
    }

    if (rc != VODLMS_OK) {
        free(buf);
        *out = NULL;
        *out_len = 0;
        return rc;
    }

    *out = buf;
    *out_len = wrote;

    return rc;
}


static void
expect_abs(vodlms_hls_abs_e abs, const char *in, const char *exp,
    const char *name)
{
    char              *out;
    size_t             len;
    vodlms_rc_t        rc;
    vodlms_hls_err_t   err;
    vodlms_hls_opts_t  o;

    o = opts_of(abs);
    rc = run(in, strlen(in), Q, &o, &out, &len, &err);

    if (!is_rc(rc, VODLMS_OK, "%s: accepted", name)) {
        diag("reason: %s (line %zu)", err.reason ? err.reason : "-",
             err.line);
        return;
    }

    is_mem(out, len, exp, strlen(exp), "%s: output", name);
    free(out);
}


#define expect(in, exp, name)  expect_abs(VODLMS_HLS_ABS_KEEP, in, exp, name)


static void
refuse_o(const vodlms_hls_opts_t *o, const char *in, size_t len,
    const char *q, vodlms_rc_t exp, const char *reason, size_t line,
    const char *name)
{
    char              *out;
    size_t             out_len;
    vodlms_rc_t        rc;
    vodlms_hls_err_t   err;

    rc = run(in, len, q, o, &out, &out_len, &err);
    is_rc(rc, exp, "%s: refused", name);
    free(out);

    ok(err.reason != NULL && strstr(err.reason, reason) != NULL,
       "%s: reason \"%s\" (got \"%s\")", name, reason,
       err.reason ? err.reason : "(none)");
    is_int(err.line, line, "%s: at line %zu", name, line);

    /* the offset is where that line starts: after a '\n' (or a BOM) */
    if (line > 1) {
        ok(err.offset < len && in[err.offset - 1] == '\n',
           "%s: offset %zu starts line %zu", name, err.offset, line);

    } else {
        ok(err.offset == (len >= 3 && memcmp(in, "\xef\xbb\xbf", 3) == 0
                          && line == 1 ? 3 : 0),
           "%s: offset %zu of line %zu", name, err.offset, line);
    }
}


static void
refuse(const char *in, vodlms_rc_t exp, const char *reason, size_t line,
    const char *name)
{
    vodlms_hls_opts_t  o;

    o = opts_of(VODLMS_HLS_ABS_KEEP);
    refuse_o(&o, in, strlen(in), Q, exp, reason, line, name);
}


/* ------------------------------------------------------------- cases */

static void
test_media(void)
{
    expect("#EXTM3U\n"
           "#EXT-X-VERSION:7\n"
           "#EXT-X-TARGETDURATION:4\n"
           "#EXT-X-MEDIA-SEQUENCE:0\n"
           "#EXT-X-PLAYLIST-TYPE:VOD\n"
           "#EXT-X-KEY:METHOD=AES-128,URI=\"key.bin\",IV=0x0123456789abcdef0123456789abcdef\n"
           "#EXT-X-MAP:URI=\"init.mp4\",BYTERANGE=\"720@0\"\n"
           "#EXTINF:4.000,\n"
           "seg0.m4s\n"
           "#EXT-X-BYTERANGE:1000@720\n"
           "#EXTINF:4.000,title, with a comma\n"
           "main.m4s\n"
           "#EXT-X-DISCONTINUITY\n"
           "#EXTINF:2.5,\n"
           "sub/dir/seg2.m4s\n"
           "#EXT-X-ENDLIST\n",
           "#EXTM3U\n"
           "#EXT-X-VERSION:7\n"
           "#EXT-X-TARGETDURATION:4\n"
           "#EXT-X-MEDIA-SEQUENCE:0\n"
           "#EXT-X-PLAYLIST-TYPE:VOD\n"
           "#EXT-X-KEY:METHOD=AES-128,URI=\"key.bin\",IV=0x0123456789abcdef0123456789abcdef\n"
           "#EXT-X-MAP:URI=\"init.mp4?" Q "\",BYTERANGE=\"720@0\"\n"
           "#EXTINF:4.000,\n"
           "seg0.m4s?" Q "\n"
           "#EXT-X-BYTERANGE:1000@720\n"
           "#EXTINF:4.000,title, with a comma\n"
           "main.m4s?" Q "\n"
           "#EXT-X-DISCONTINUITY\n"
           "#EXTINF:2.5,\n"
           "sub/dir/seg2.m4s?" Q "\n"
           "#EXT-X-ENDLIST\n",
           "media playlist: map, byterange, discontinuity signed, the key not");

    expect("#EXTM3U\n#EXTINF:4,\na.ts",
           "#EXTM3U\n#EXTINF:4,\na.ts?" Q,
           "media: last line without a newline");

    expect("#EXTM3U\n#EXT-X-KEY:METHOD=NONE\n#EXTINF:4,\na.ts\n",
           "#EXTM3U\n#EXT-X-KEY:METHOD=NONE\n#EXTINF:4,\na.ts?" Q "\n",
           "media: EXT-X-KEY without URI left alone");
}


/* issue #22: the key of encrypted HLS comes from the LMS, unsigned */
static void
test_keys(void)
{
    expect("#EXTM3U\n"
           "#EXT-X-VERSION:3\n"
           "#EXT-X-MEDIA-SEQUENCE:0\n"
           "#EXT-X-KEY:METHOD=AES-128,URI=\"/vodlms/keys/42/v1/0.key\"\n"
           "#EXTINF:4,\n"
           "seg_000.ts\n"
           "#EXT-X-KEY:METHOD=AES-128,URI=\"https://lms.example.com/vodlms/keys/42/v1/1.key\",IV=0x00000000000000000000000000000001\n"
           "#EXTINF:4,\n"
           "seg_001.ts\n"
           "#EXT-X-KEY:METHOD=AES-128,URI=\"keys/2.key?v=1\"\n"
           "#EXTINF:4,\n"
           "seg_002.ts\n",
           "#EXTM3U\n"
           "#EXT-X-VERSION:3\n"
           "#EXT-X-MEDIA-SEQUENCE:0\n"
           "#EXT-X-KEY:METHOD=AES-128,URI=\"/vodlms/keys/42/v1/0.key\"\n"
           "#EXTINF:4,\n"
           "seg_000.ts?" Q "\n"
           "#EXT-X-KEY:METHOD=AES-128,URI=\"https://lms.example.com/vodlms/keys/42/v1/1.key\",IV=0x00000000000000000000000000000001\n"
           "#EXTINF:4,\n"
           "seg_001.ts?" Q "\n"
           "#EXT-X-KEY:METHOD=AES-128,URI=\"keys/2.key?v=1\"\n"
           "#EXTINF:4,\n"
           "seg_002.ts?" Q "\n",
           "keys: root-relative, absolute and relative key URIs never signed, "
           "the segments are");

    expect("#EXTM3U\n#EXT-X-SESSION-KEY:METHOD=AES-128,URI=\"/vodlms/keys/42/v1/0.key\"\n"
           "#EXT-X-STREAM-INF:BANDWIDTH=1\nv0/index.m3u8\n",
           "#EXTM3U\n#EXT-X-SESSION-KEY:METHOD=AES-128,URI=\"/vodlms/keys/42/v1/0.key\"\n"
           "#EXT-X-STREAM-INF:BANDWIDTH=1\nv0/index.m3u8?" Q "\n",
           "keys: an EXT-X-SESSION-KEY of a master is not signed either");

    /* the key's attributes are still checked */
    refuse("#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=/vodlms/keys/1.key\n",
           VODLMS_EMALFORMED, "unquoted URI", 2,
           "keys: an unquoted key URI refused");
    refuse("#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"\"\n",
           VODLMS_EMALFORMED, "empty URI", 2, "keys: an empty key URI refused");
    refuse("#EXTM3U\n#EXT-X-KEY:URI=\"a.key\",URI=\"b.key\"\n",
           VODLMS_EMALFORMED, "URI attribute given twice", 2,
           "keys: a key URI given twice refused");
}


static void
test_master(void)
{
    expect("#EXTM3U\n"
           "#EXT-X-INDEPENDENT-SEGMENTS\n"
           "#EXT-X-SESSION-KEY:METHOD=AES-128,URI=\"k/session.key\"\n"
           "#EXT-X-SESSION-DATA:DATA-ID=\"com.example.lecture\",URI=\"meta.json\"\n"
           "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"English, main\",LANGUAGE=\"en\",DEFAULT=YES,URI=\"audio/en.m3u8\"\n"
           "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"Deutsch\",LANGUAGE=\"de\",URI=\"subs/de.m3u8\"\n"
           "#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"CC1\",INSTREAM-ID=\"CC1\"\n"
           "#EXT-X-STREAM-INF:BANDWIDTH=1280000,CODECS=\"avc1.4d401f,mp4a.40.2\",RESOLUTION=1280x720,AUDIO=\"aud\",SUBTITLES=\"subs\"\n"
           "720p/index.m3u8\n"
           "#EXT-X-STREAM-INF:BANDWIDTH=640000,CODECS=\"avc1.4d401e,mp4a.40.2\",RESOLUTION=640x360,AUDIO=\"aud\"\n"
           "360p/index.m3u8\n"
           "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=86000,CODECS=\"avc1.4d401f\",URI=\"720p/iframes.m3u8\"\n",
           "#EXTM3U\n"
           "#EXT-X-INDEPENDENT-SEGMENTS\n"
           "#EXT-X-SESSION-KEY:METHOD=AES-128,URI=\"k/session.key\"\n"
           "#EXT-X-SESSION-DATA:DATA-ID=\"com.example.lecture\",URI=\"meta.json?" Q "\"\n"
           "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"English, main\",LANGUAGE=\"en\",DEFAULT=YES,URI=\"audio/en.m3u8?" Q "\"\n"
           "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"Deutsch\",LANGUAGE=\"de\",URI=\"subs/de.m3u8?" Q "\"\n"
           "#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"CC1\",INSTREAM-ID=\"CC1\"\n"
           "#EXT-X-STREAM-INF:BANDWIDTH=1280000,CODECS=\"avc1.4d401f,mp4a.40.2\",RESOLUTION=1280x720,AUDIO=\"aud\",SUBTITLES=\"subs\"\n"
           "720p/index.m3u8?" Q "\n"
           "#EXT-X-STREAM-INF:BANDWIDTH=640000,CODECS=\"avc1.4d401e,mp4a.40.2\",RESOLUTION=640x360,AUDIO=\"aud\"\n"
           "360p/index.m3u8?" Q "\n"
           "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=86000,CODECS=\"avc1.4d401f\",URI=\"720p/iframes.m3u8?" Q "\"\n",
           "master: session key and data, audio, subtitles, CC, variants, I-frames");
}


static void
test_low_latency(void)
{
    expect("#EXTM3U\n"
           "#EXT-X-PART-INF:PART-TARGET=1.0\n"
           "#EXT-X-PART:DURATION=1.0,URI=\"part1.mp4\",INDEPENDENT=YES\n"
           "#EXT-X-PART:DURATION=1.0,URI=\"seg.mp4\",BYTERANGE=\"100@0\"\n"
           "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part2.mp4\"\n"
           "#EXT-X-RENDITION-REPORT:URI=\"../720p/index.m3u8\",LAST-MSN=10,LAST-PART=2\n",
           "#EXTM3U\n"
           "#EXT-X-PART-INF:PART-TARGET=1.0\n"
           "#EXT-X-PART:DURATION=1.0,URI=\"part1.mp4?" Q "\",INDEPENDENT=YES\n"
           "#EXT-X-PART:DURATION=1.0,URI=\"seg.mp4?" Q "\",BYTERANGE=\"100@0\"\n"
           "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part2.mp4?" Q "\"\n"
           "#EXT-X-RENDITION-REPORT:URI=\"../720p/index.m3u8?" Q "\",LAST-MSN=10,LAST-PART=2\n",
           "low latency: part, preload hint, rendition report");

    /* tags that carry other URIs, or none we know of, are copied */
    expect("#EXTM3U\n"
           "#EXT-X-CONTENT-STEERING:SERVER-URI=\"/steer\",PATHWAY-ID=\"A\"\n"
           "#EXT-X-DATERANGE:ID=\"ad\",CLASS=\"com.apple.hls.interstitial\",START-DATE=\"2026-01-01T00:00:00Z\",X-ASSET-URI=\"ad.m3u8\"\n"
           "#EXT-X-VODLMS-FUTURE:URI=\"x\"\n"
           "#EXT-X-KEYFORMAT:URI=\"x\"\n",
           "#EXTM3U\n"
           "#EXT-X-CONTENT-STEERING:SERVER-URI=\"/steer\",PATHWAY-ID=\"A\"\n"
           "#EXT-X-DATERANGE:ID=\"ad\",CLASS=\"com.apple.hls.interstitial\",START-DATE=\"2026-01-01T00:00:00Z\",X-ASSET-URI=\"ad.m3u8\"\n"
           "#EXT-X-VODLMS-FUTURE:URI=\"x\"\n"
           "#EXT-X-KEYFORMAT:URI=\"x\"\n",
           "other tags, their URI-like attributes and unknown tags kept");
}


static void
test_known_bugs(void)
{
    expect("#EXTM3U\nseg.ts?v=2\n",
           "#EXTM3U\nseg.ts?v=2&" Q "\n",
           "bug: a URI with a query gets '&', never a second '?'");

    expect("#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4?v=2\"\n",
           "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4?v=2&" Q "\"\n",
           "bug: an attribute URI with a query gets '&'");

    expect("#EXTM3U\nseg.ts?\n",
           "#EXTM3U\nseg.ts?&" Q "\n",
           "a URI with an empty query: '&', still one '?'");

    expect("#EXTM3U\nseg.ts#t=10\nseg.ts?v=1#frag?x\n",
           "#EXTM3U\nseg.ts?" Q "#t=10\nseg.ts?v=1&" Q "#frag?x\n",
           "bug: the query goes before the fragment; '?' in it is no query");

    expect("#EXTM3U\n"
           "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://key-id-42\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\n"
           "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"data:text/plain;base64,AAAAPnBzc2g=\",KEYFORMAT=\"urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed\"\n"
           "#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI=\"SKD://upper\"\n"
           "blob:https://example.com/abc\n"
           "ftp://files.example.com/seg.ts\n"
           "#EXTINF:4,\n"
           "a.ts\n",
           "#EXTM3U\n"
           "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://key-id-42\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\n"
           "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"data:text/plain;base64,AAAAPnBzc2g=\",KEYFORMAT=\"urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed\"\n"
           "#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI=\"SKD://upper\"\n"
           "blob:https://example.com/abc\n"
           "ftp://files.example.com/seg.ts\n"
           "#EXTINF:4,\n"
           "a.ts?" Q "\n",
           "bug: skd:, data: and any non-http scheme never touched");

    expect("#EXTM3U\r\n#EXTINF:4,\r\na.ts\r\n\r\n# a comment, \"quoted\r\n#EXT-X-MAP:URI=\"i.mp4\"\r\n",
           "#EXTM3U\r\n#EXTINF:4,\r\na.ts?" Q "\r\n\r\n# a comment, \"quoted\r\n#EXT-X-MAP:URI=\"i.mp4?" Q "\"\r\n",
           "bug: CRLF kept, query before the CR");

    expect("\xef\xbb\xbf#EXTM3U\n#EXTINF:4,\na.ts\n",
           "\xef\xbb\xbf#EXTM3U\n#EXTINF:4,\na.ts?" Q "\n",
           "bug: a UTF-8 BOM kept");

    expect("#EXTM3U  \n\n\n#EXTINF:4,\n\n# just a comment\n#EXT-UNKNOWN-TAG:A=\"b\n   \n\t\na.ts\n\n",
           "#EXTM3U  \n\n\n#EXTINF:4,\n\n# just a comment\n#EXT-UNKNOWN-TAG:A=\"b\n   \n\t\na.ts?" Q "\n\n",
           "bug: comments, blank and all-space lines, unknown (even broken) tags kept");

    expect("#EXTM3U\n  a.ts \t\n\t#EXT-X-MAP:URI=\"m.mp4\" \n",
           "#EXTM3U\n  a.ts?" Q " \t\n\t#EXT-X-MAP:URI=\"m.mp4?" Q "\" \n",
           "spaces around a URI line and a tag: kept, the query inside");

    expect("#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO, GROUP-ID=\"a\", URI=\"a.m3u8\" ,NAME=\"x\"\n",
           "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO, GROUP-ID=\"a\", URI=\"a.m3u8?" Q "\" ,NAME=\"x\"\n",
           "spaces between attributes kept");

    expect("#EXTM3U\n#EXT-X-MEDIA:NAME=\"a,URI=x\",URI=\"real.m3u8\",X-NOTE=\"URI=\"\n",
           "#EXTM3U\n#EXT-X-MEDIA:NAME=\"a,URI=x\",URI=\"real.m3u8?" Q "\",X-NOTE=\"URI=\"\n",
           "quoted strings hold commas and URI= text: only the URI attribute");

    expect("#EXTM3U\n#EXT-X-MAP:uri=\"lower.mp4\",X-URI=\"x.mp4\",URIX=\"y\"\n",
           "#EXTM3U\n#EXT-X-MAP:uri=\"lower.mp4\",X-URI=\"x.mp4\",URIX=\"y\"\n",
           "lowercase uri, X-URI, URIX are not URI attributes");

    expect("#EXTM3U\n#ext-x-map:URI=\"lower-tag.mp4\"\n",
           "#EXTM3U\n#ext-x-map:URI=\"lower-tag.mp4\"\n",
           "a lowercase tag name is no tag (a comment)");

    expect("#EXTM3U\n/abs/path/a.ts\n../up.ts\n",
           "#EXTM3U\n/abs/path/a.ts?" Q "\n../up.ts?" Q "\n",
           "path-absolute and dot-dot references signed (same host)");
}


static void
test_absolute(void)
{
    const char  *in;

    in = "#EXTM3U\n"
         "https://media.example.com/hls/1/a.ts\n"
         "HTTPS://MEDIA.EXAMPLE.COM/hls/1/b.ts\n"
         "http://media.example.com/c.ts\n"
         "https://media.example.com:8443/d.ts\n"
         "https://user@media.example.com/e.ts\n"
         "https://media.example.com.evil.net/f.ts\n"
         "https://media.example.com?x=1\n"
         "//media.example.com/g.ts\n"
         "//other.example.com/h.ts\n"
         "#EXT-X-MAP:URI=\"https://media.example.com/init.mp4\"\n"
         "#EXT-X-KEY:METHOD=AES-128,URI=\"https://keys.example.net/k\"\n";

    expect_abs(VODLMS_HLS_ABS_KEEP, in, in, "absolute: KEEP leaves them all");

    expect_abs(VODLMS_HLS_ABS_ORIGIN, in,
         "#EXTM3U\n"
         "https://media.example.com/hls/1/a.ts?" Q "\n"
         "HTTPS://MEDIA.EXAMPLE.COM/hls/1/b.ts?" Q "\n"
         "http://media.example.com/c.ts\n"
         "https://media.example.com:8443/d.ts\n"
         "https://user@media.example.com/e.ts\n"
         "https://media.example.com.evil.net/f.ts\n"
         "https://media.example.com?x=1&" Q "\n"
         "//media.example.com/g.ts?" Q "\n"
         "//other.example.com/h.ts\n"
         "#EXT-X-MAP:URI=\"https://media.example.com/init.mp4?" Q "\"\n"
         "#EXT-X-KEY:METHOD=AES-128,URI=\"https://keys.example.net/k\"\n",
         "absolute: ORIGIN signs scheme+host equal to the origin only");

    expect_abs(VODLMS_HLS_ABS_ORIGIN,
               "#EXTM3U\nhttps:seg.ts\nhttps:/media.example.com/a.ts\n",
               "#EXTM3U\nhttps:seg.ts\nhttps:/media.example.com/a.ts\n",
               "absolute: ORIGIN leaves an http(s) URI with no authority");

    expect_abs(VODLMS_HLS_ABS_REFUSE, "#EXTM3U\na.ts\nskd://k\n",
               "#EXTM3U\na.ts?" Q "\nskd://k\n",
               "absolute: REFUSE takes relative and skd: URIs");

    expect_abs(VODLMS_HLS_ABS_REFUSE,
               "#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"Https://lms.example.com/vodlms/keys/42/v1/0.key\"\na.ts\n",
               "#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"Https://lms.example.com/vodlms/keys/42/v1/0.key\"\na.ts?" Q "\n",
               "absolute: REFUSE takes an absolute key URI, unsigned (#22)");

    expect_abs(VODLMS_HLS_ABS_ORIGIN,
               "#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"https://media.example.com/hls/1/k.key\"\n"
               "#EXT-X-SESSION-KEY:METHOD=AES-128,URI=\"//media.example.com/k.key\"\n",
               "#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"https://media.example.com/hls/1/k.key\"\n"
               "#EXT-X-SESSION-KEY:METHOD=AES-128,URI=\"//media.example.com/k.key\"\n",
               "absolute: ORIGIN leaves a key URI on the origin unsigned (#22)");

    {
        vodlms_hls_opts_t  o = opts_of(VODLMS_HLS_ABS_REFUSE);

        refuse_o(&o, LIT("#EXTM3U\na.ts\nhttps://cdn.example.com/b.ts\n"),
                 Q, VODLMS_EREFUSED, "absolute URI", 3,
                 "absolute: REFUSE refuses a URI line");
        refuse_o(&o, LIT("#EXTM3U\n#EXT-X-MAP:URI=\"Http://k/init.mp4\"\n"),
                 Q, VODLMS_EREFUSED, "absolute URI", 2,
                 "absolute: REFUSE refuses a map URI, scheme in any case");
        refuse_o(&o, LIT("#EXTM3U\n//cdn.example.com/b.ts\n"),
                 Q, VODLMS_EREFUSED, "absolute URI", 2,
                 "absolute: REFUSE refuses a network-path reference");
    }
}


static void
test_malformed(void)
{
    vodlms_hls_opts_t  o;
    char              *big;
    size_t             i;

    refuse("", VODLMS_EMALFORMED, "empty", 0, "empty input");
    refuse("\xef\xbb\xbf", VODLMS_EMALFORMED, "empty", 0, "a BOM alone");
    refuse("#EXTINF:4,\na.ts\n", VODLMS_EMALFORMED, "#EXTM3U", 1,
           "no #EXTM3U");
    refuse("\n#EXTM3U\na.ts\n", VODLMS_EMALFORMED, "#EXTM3U", 1,
           "#EXTM3U not on the first line");
    refuse(" #EXTM3U\na.ts\n", VODLMS_EMALFORMED, "#EXTM3U", 1,
           "#EXTM3U after a space");
    refuse("#EXTM3UX\na.ts\n", VODLMS_EMALFORMED, "#EXTM3U", 1,
           "#EXTM3UX is not #EXTM3U");
    refuse("\xef\xbb\xbf\xef\xbb\xbf#EXTM3U\n", VODLMS_EMALFORMED, "#EXTM3U",
           1, "two BOMs");

    o = opts_of(VODLMS_HLS_ABS_KEEP);
    refuse_o(&o, LIT("#EXTM3U\na\0.ts\n"), Q, VODLMS_EMALFORMED, "NUL", 2,
             "a NUL byte in a URI line");
    refuse_o(&o, LIT("#EXTM3U\n# a comment with \0\n"), Q, VODLMS_EMALFORMED,
             "NUL", 2, "a NUL byte in a comment");
    refuse("#EXTM3U\na.ts\rb.ts\n", VODLMS_EMALFORMED, "CR", 2,
           "a CR inside a line");
    refuse("#EXTM3U\na.ts\r", VODLMS_EMALFORMED, "CR", 2,
           "a CR at the end of the input");

    refuse("#EXTM3U\n#EXTINF:4,\n#EXT-X-KEY:METHOD=AES-128,URI=\"k.bin\n",
           VODLMS_EMALFORMED, "unterminated", 3, "unterminated quote");
    refuse("#EXTM3U\n#EXT-X-MAP:URI=\"\"\n", VODLMS_EMALFORMED, "empty URI",
           2, "URI=\"\" refused");
    refuse("#EXTM3U\n#EXT-X-MAP:URI=init.mp4\n", VODLMS_EMALFORMED,
           "unquoted URI", 2, "an unquoted URI refused");
    refuse("#EXTM3U\n#EXT-X-MAP:URI=\"a.mp4\",URI=\"b.mp4\"\n",
           VODLMS_EMALFORMED, "twice", 2, "a URI given twice");
    refuse("#EXTM3U\n#EXT-X-MAP:URI=\"a.mp4\"x\n", VODLMS_EMALFORMED,
           "junk", 2, "junk after the quoted URI");
    refuse("#EXTM3U\n#EXT-X-MAP:BYTERANGE,URI=\"a.mp4\"\n",
           VODLMS_EMALFORMED, "'='", 2, "an attribute without '='");
    refuse("#EXTM3U\n#EXT-X-MAP:#EXT-X-MAP:URI=\"a.mp4\"\n",
           VODLMS_EMALFORMED, "attribute name", 2,
           "a tag repeated inside its list: no attribute name");
    refuse("#EXTM3U\n#EXT-X-MAP:URI =\"a.mp4\"\n",
           VODLMS_EMALFORMED, "attribute name", 2,
           "a space before '=' refused, not taken for another name");
    refuse("#EXTM3U\n#EXT-X-MEDIA:X_Y=1,URI=\"a.mp4\"\n",
           VODLMS_EMALFORMED, "attribute name", 2,
           "an attribute name with '_' refused");
    refuse("#EXTM3U\n#EXT-X-MAP:=\"x\",URI=\"a.mp4\"\n", VODLMS_EMALFORMED,
           "'='", 2, "an attribute without a name");
    refuse("#EXTM3U\n#EXT-X-MEDIA:NAME=a\"b,URI=\"a.m3u8\"\n",
           VODLMS_EMALFORMED, "quote", 2, "a quote inside an unquoted value");

    /* accepted edge cases of the attribute list */
    expect("#EXTM3U\n#EXT-X-MAP:\n#EXT-X-MAP:URI=\"m.mp4\",\n#EXT-X-MEDIA:A=,URI=\"x\"\n",
           "#EXTM3U\n#EXT-X-MAP:\n#EXT-X-MAP:URI=\"m.mp4?" Q "\",\n#EXT-X-MEDIA:A=,URI=\"x?" Q "\"\n",
           "an empty list, a trailing comma, an empty enumerated value");

    /* limits: exactly at the limit passes, one byte more fails closed */
    o = opts_of(VODLMS_HLS_ABS_KEEP);
    o.max_line = 20;
    {
        char              *out;
        size_t             len;
        vodlms_hls_err_t   err;
        vodlms_rc_t        rc;

        rc = run(LIT("#EXTM3U\r\n0123456789012345678a\r\n"), Q, &o, &out,
                 &len, &err);
        is_rc(rc, VODLMS_OK, "limit: a line of exactly max_line (CRLF) passes");
        is_mem(out, len, "#EXTM3U\r\n0123456789012345678a?" Q "\r\n",
               sizeof("#EXTM3U\r\n0123456789012345678a?" Q "\r\n") - 1,
               "limit: ... signed");
        free(out);
    }
    refuse_o(&o, LIT("#EXTM3U\n#0123456789012345678a\n"), Q,
             VODLMS_ETOOLONG, "line too long", 2,
             "limit: one byte over max_line fails closed");
    refuse_o(&o, LIT("#EXTM3U\n0123456789012345678ab"), Q,
             VODLMS_ETOOLONG, "line too long", 2,
             "limit: the last line without a newline too");

    o = opts_of(VODLMS_HLS_ABS_KEEP);
    o.max_size = sizeof("#EXTM3U\n#EXTINF:4,\na.ts\n") - 2;
    refuse_o(&o, LIT("#EXTM3U\n#EXTINF:4,\na.ts\n"), Q, VODLMS_ETOOLONG,
             "playlist too large", 0, "limit: max_size + 1 fails closed");
    o.max_size++;
    {
        char              *out;
        size_t             len;
        vodlms_hls_err_t   err;

        is_rc(run(LIT("#EXTM3U\n#EXTINF:4,\na.ts\n"), Q, &o, &out, &len,
                  &err), VODLMS_OK, "limit: max_size exactly passes");
        free(out);
    }

    /* a very long line (64 KiB, the default limit) is kept whole */
    big = malloc(8 + VODLMS_HLS_MAX_LINE_DEFAULT + 2);
    if (big == NULL) {
        abort();
    }

    memcpy(big, "#EXTM3U\n", 8);
    big[8] = '#';
    for (i = 9; i < 8 + VODLMS_HLS_MAX_LINE_DEFAULT; i++) {
        big[i] = (char) ('a' + i % 26);
    }
    big[8 + VODLMS_HLS_MAX_LINE_DEFAULT] = '\n';
    {
        char              *out;
        size_t             len;
        vodlms_hls_err_t   err;

        o = opts_of(VODLMS_HLS_ABS_KEEP);
        is_rc(run(big, 8 + VODLMS_HLS_MAX_LINE_DEFAULT + 1, Q, &o, &out,
                  &len, &err), VODLMS_OK, "a 64 KiB comment line passes");
        is_mem(out, len, big, 8 + VODLMS_HLS_MAX_LINE_DEFAULT + 1,
               "... kept byte for byte");
        free(out);

        big[8] = 'u';                          /* now a 64 KiB URI line */
        is_rc(run(big, 8 + VODLMS_HLS_MAX_LINE_DEFAULT + 1, Q, &o, &out,
                  &len, &err), VODLMS_OK, "a 64 KiB URI line passes");
        is_int(len, 8 + VODLMS_HLS_MAX_LINE_DEFAULT + 1 + 1 + strlen(Q),
               "... and grows by the query alone");
        free(out);

        big[8 + VODLMS_HLS_MAX_LINE_DEFAULT] = 'x';
        big[8 + VODLMS_HLS_MAX_LINE_DEFAULT + 1] = '\n';
        refuse_o(&o, big, 8 + VODLMS_HLS_MAX_LINE_DEFAULT + 2, Q,
                 VODLMS_ETOOLONG, "line too long", 2,
                 "64 KiB + 1 fails closed");
    }
    free(big);
}


static void
test_query_and_opts(void)
{
    char               *out, buf[64];
    size_t              len;
    vodlms_rc_t         rc;
    vodlms_hls_err_t    err;
    vodlms_hls_opts_t   o;
    static const char   in[] = "#EXTM3U\na.ts\n#EXT-X-MAP:URI=\"m\"\n";

    o = opts_of(VODLMS_HLS_ABS_KEEP);

    rc = run(LIT(in), "", &o, &out, &len, &err);
    is_rc(rc, VODLMS_OK, "empty query: accepted");
    is_mem(out, len, in, sizeof(in) - 1, "empty query: output is the input");
    free(out);

    refuse_o(&o, LIT("#EXTM3U\n#EXT-X-MAP:URI=\"m\n"), "", VODLMS_EMALFORMED,
             "unterminated", 2, "empty query: the playlist still checked");

    rc = run(LIT(in), "a=%2F%41&b=~._-!$'()*+,;=:@/?", &o, &out, &len, &err);
    is_rc(rc, VODLMS_OK, "query: every RFC 3986 query character taken");
    free(out);

    refuse_o(&o, LIT(in), "a=\"b", VODLMS_EINTERNAL, "query", 0,
             "query with a '\"' refused (caller's bug)");
    refuse_o(&o, LIT(in), "a=b#c", VODLMS_EINTERNAL, "query", 0,
             "query with a '#' refused");
    refuse_o(&o, LIT(in), "a=b c", VODLMS_EINTERNAL, "query", 0,
             "query with a space refused");
    refuse_o(&o, LIT(in), "a=b\n", VODLMS_EINTERNAL, "query", 0,
             "query with a newline refused");
    refuse_o(&o, LIT(in), "a=%4", VODLMS_EINTERNAL, "query", 0,
             "query with a short %-escape refused");
    refuse_o(&o, LIT(in), "?a=b", VODLMS_EINTERNAL, "query", 0,
             "query starting with '?' refused");
    refuse_o(&o, LIT(in), "&a=b", VODLMS_EINTERNAL, "query", 0,
             "query starting with '&' refused");
    refuse_o(&o, LIT(in), "a=\xc3\xa9", VODLMS_EINTERNAL, "query", 0,
             "query with raw UTF-8 refused");

    o.max_line = 0;
    refuse_o(&o, LIT(in), Q, VODLMS_EINTERNAL, "zero limit", 0,
             "max_line 0 refused");

    o = opts_of(VODLMS_HLS_ABS_ORIGIN);
    o.origin = "https://h/x";
    o.origin_len = strlen(o.origin);
    refuse_o(&o, LIT(in), Q, VODLMS_EINTERNAL, "origin", 0,
             "an origin with a path refused");
    o.origin = "skd://h";
    o.origin_len = strlen(o.origin);
    refuse_o(&o, LIT(in), Q, VODLMS_EINTERNAL, "origin", 0,
             "an origin of another scheme refused");
    o.origin = "https://";
    o.origin_len = strlen(o.origin);
    refuse_o(&o, LIT(in), Q, VODLMS_EINTERNAL, "origin", 0,
             "an origin without a host refused");
    o.origin = NULL;
    o.origin_len = 0;
    refuse_o(&o, LIT(in), Q, VODLMS_EINTERNAL, "origin", 0,
             "ORIGIN without an origin refused");

    /* a buffer one byte short: refused, nothing past it written */
    o = opts_of(VODLMS_HLS_ABS_KEEP);
    rc = vodlms_hls_rewrite(in, sizeof(in) - 1, "q=1", 3, &o, NULL, 0, &len,
                            NULL);
    is_rc(rc, VODLMS_OK, "measure without err");
    is_int(len, sizeof(in) - 1 + 2 * 4, "measured: input + 2 x \"?q=1\"");
    memset(buf, 'Z', sizeof(buf));
    rc = vodlms_hls_rewrite(in, sizeof(in) - 1, "q=1", 3, &o, buf, len - 1,
                            &len, &err);
    is_rc(rc, VODLMS_EINTERNAL, "a buffer one byte short refused");
    ok(buf[sizeof(in) - 1 + 2 * 4 - 1] == 'Z',
       "... and nothing written past it");
}


/* protocol version 8's variable substitution: the query written once */
static void
expect_define(const char *in, size_t in_len, const char *exp, size_t exp_len,
    const char *name)
{
    char              *out;
    size_t             len;
    vodlms_rc_t        rc;
    vodlms_hls_err_t   err;
    vodlms_hls_opts_t  o;

    o = opts_of(VODLMS_HLS_ABS_KEEP);
    o.define = "vodlms";
    o.define_len = 6;
    rc = run(in, in_len, Q, &o, &out, &len, &err);

    if (!is_rc(rc, VODLMS_OK, "define: %s: accepted", name)) {
        diag("reason: %s (line %zu)", err.reason ? err.reason : "-",
             err.line);
        return;
    }

    is_mem(out, len, exp, exp_len, "define: %s: output", name);
    free(out);
}


#define DEF  "#EXT-X-DEFINE:NAME=\"vodlms\",VALUE=\"" Q "\""
#define REF  "{$vodlms}"


static void
test_define(void)
{
    char               *out;
    size_t              len;
    vodlms_rc_t         rc;
    vodlms_hls_err_t    err;
    vodlms_hls_opts_t   o;
    static const char   media[] =
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n"
        "#EXTINF:4,\na.ts\n#EXTINF:4,\nb.ts?v=2#t\n"
        "#EXT-X-MAP:URI=\"init.mp4\"\n#EXT-X-ENDLIST\n";

    expect_define(LIT(media), LIT(
        "#EXTM3U\n" DEF "\n#EXT-X-VERSION:8\n#EXT-X-TARGETDURATION:4\n"
        "#EXTINF:4,\na.ts?" REF "\n#EXTINF:4,\nb.ts?v=2&" REF "#t\n"
        "#EXT-X-MAP:URI=\"init.mp4?" REF "\"\n#EXT-X-ENDLIST\n"),
        "media playlist, version 3 raised to 8");

    expect_define(LIT(
        "\xef\xbb\xbf#EXTM3U\r\n"
        "#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI=\"skd://k\"\r\n"
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"en\","
        "URI=\"audio/en.m3u8\"\r\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=1\r\n720p/index.m3u8\r\n"
        "https://other.example.net/x.m3u8\r\n"),
        LIT("\xef\xbb\xbf#EXTM3U\r\n#EXT-X-VERSION:8\r\n" DEF "\r\n"
        "#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI=\"skd://k\"\r\n"
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"en\","
        "URI=\"audio/en.m3u8?" REF "\"\r\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=1\r\n720p/index.m3u8?" REF "\r\n"
        "https://other.example.net/x.m3u8\r\n"),
        "master with BOM and CRLF, no version: one added, CRLF kept");

    expect_define(LIT("#EXTM3U\n#EXT-X-VERSION:3\n"
        "#EXT-X-KEY:METHOD=AES-128,URI=\"/vodlms/keys/42/v1/0.key\"\n"
        "#EXTINF:4,\na.ts\n"),
        LIT("#EXTM3U\n" DEF "\n#EXT-X-VERSION:8\n"
        "#EXT-X-KEY:METHOD=AES-128,URI=\"/vodlms/keys/42/v1/0.key\"\n"
        "#EXTINF:4,\na.ts?" REF "\n"),
        "a key URI names no variable (#22)");

    expect_define(LIT("#EXTM3U\n#EXT-X-VERSION:12\na.ts"),
                  LIT("#EXTM3U\n" DEF "\n#EXT-X-VERSION:12\na.ts?" REF),
                  "version 12 kept, no final newline");

    expect_define(LIT("#EXTM3U\n  #EXT-X-VERSION:7  \na.ts\n"),
                  LIT("#EXTM3U\n" DEF "\n  #EXT-X-VERSION:8  \na.ts?" REF
                      "\n"),
                  "an indented version raised, its spaces kept");

    expect_define(LIT("#EXTM3U"),
                  LIT("#EXTM3U\n#EXT-X-VERSION:8\n" DEF "\n"),
                  "\"#EXTM3U\" alone: its line ended first");

    expect_define(LIT("#EXTM3U\n#EXT-X-DEFINE:NAME=\"other\",VALUE=\"x\"\n"
                      "a.ts\n"),
                  LIT("#EXTM3U\n#EXT-X-VERSION:8\n" DEF "\n"
                      "#EXT-X-DEFINE:NAME=\"other\",VALUE=\"x\"\na.ts?" REF
                      "\n"),
                  "the playlist's own variable of another name kept");

    o = opts_of(VODLMS_HLS_ABS_KEEP);
    o.define = "vodlms";
    o.define_len = 6;

    refuse_o(&o, LIT("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-VERSION:3\n"), Q,
             VODLMS_EMALFORMED, "twice", 3, "define: version given twice");
    refuse_o(&o, LIT("#EXTM3U\n#EXT-X-VERSION:3a\n"), Q, VODLMS_EMALFORMED,
             "bad EXT-X-VERSION", 2, "define: version not a number");
    refuse_o(&o, LIT("#EXTM3U\n#EXT-X-VERSION:\n"), Q, VODLMS_EMALFORMED,
             "bad EXT-X-VERSION", 2, "define: version empty");
    refuse_o(&o, LIT("#EXTM3U\n#EXT-X-DEFINE:NAME=\"vodlms\",VALUE=\"x\"\n"),
             Q, VODLMS_EMALFORMED, "defines the variable", 2,
             "define: the playlist's NAME of the same name");
    refuse_o(&o, LIT("#EXTM3U\n#EXT-X-DEFINE:IMPORT=\"vodlms\"\n"), Q,
             VODLMS_EMALFORMED, "defines the variable", 2,
             "define: IMPORT of the same name");
    refuse_o(&o, LIT("#EXTM3U\n#EXT-X-DEFINE:QUERYPARAM=\"vodlms\"\n"), Q,
             VODLMS_EMALFORMED, "defines the variable", 2,
             "define: QUERYPARAM of the same name");
    refuse_o(&o, LIT("#EXTM3U\na#EXT-X-VERSION:3.ts\n"), Q,
             VODLMS_EMALFORMED, "not at the start of a tag line", 0,
             "define: the version's text inside a URI");

    refuse_o(&o, LIT("#EXTM3U\n#EXT-X-VERSION:3\n"
                     "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"De {$de}\","
                     "URI=\"de.m3u8\"\n"), Q, VODLMS_EMALFORMED,
             "below version 8", 0,
             "define: literal \"{$\" in a version 3 playlist refused");
    refuse_o(&o, LIT("#EXTM3U\na{$x}.ts\n"), Q, VODLMS_EMALFORMED,
             "below version 8", 0,
             "define: literal \"{$\" in a playlist with no version refused");
    expect_define(LIT("#EXTM3U\n#EXT-X-VERSION:8\n"
                      "#EXT-X-DEFINE:NAME=\"x\",VALUE=\"1\"\na{$x}.ts\n"),
                  LIT("#EXTM3U\n" DEF "\n#EXT-X-VERSION:8\n"
                      "#EXT-X-DEFINE:NAME=\"x\",VALUE=\"1\"\na{$x}.ts?" REF
                      "\n"),
                  "the playlist's own references at version 8 kept");

    /* where the query went: the offset the writing pass reports */
    {
        size_t  at = 0, need;
        char    w[512];
        static const char  v[] = "#EXTM3U\r\na.ts\r\n";

        o.value_at = &at;
        rc = vodlms_hls_rewrite(v, sizeof(v) - 1, Q, sizeof(Q) - 1, &o, w,
                                sizeof(w), &need, &err);
        is_rc(rc, VODLMS_OK, "define, value_at: written");
        ok(at + sizeof(Q) - 1 < need && memcmp(w + at, Q, sizeof(Q) - 1) == 0
           && w[at + sizeof(Q) - 1] == '"',
           "define, value_at: the query is at offset %zu, then '\"'", at);
        o.value_at = NULL;
    }

    /* an empty query: checked and copied, nothing defined */
    rc = run(LIT(media), "", &o, &out, &len, &err);
    is_rc(rc, VODLMS_OK, "define, empty query: accepted");
    is_mem(out, len, media, sizeof(media) - 1,
           "define, empty query: output is the input");
    free(out);

    o.define = "a b";
    o.define_len = 3;
    refuse_o(&o, LIT(media), Q, VODLMS_EINTERNAL, "variable name", 0,
             "define: a name with a space refused");
    o.define = "";
    o.define_len = 0;
    refuse_o(&o, LIT(media), Q, VODLMS_EINTERNAL, "variable name", 0,
             "define: an empty name refused");
    o.define = "abcdefghijabcdefghijabcdefghijabc";
    o.define_len = 33;
    refuse_o(&o, LIT(media), Q, VODLMS_EINTERNAL, "variable name", 0,
             "define: a 33-byte name refused");
    o.define_len = 32;
    rc = run(LIT(media), Q, &o, &out, &len, &err);
    is_rc(rc, VODLMS_OK, "define: a 32-byte name taken");
    free(out);
}


int
main(void)
{
    test_media();
    test_keys();
    test_master();
    test_low_latency();
    test_known_bugs();
    test_absolute();
    test_malformed();
    test_query_and_opts();
    test_define();

    return done_testing();
}
