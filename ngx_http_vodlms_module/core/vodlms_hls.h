/*
 * Signed HLS playlists (issue #20): the rewriter that gives every URI of a
 * master or media playlist but a key's (issue #22) the same query string
 * (CloudFront's signed-URL parameters, built by the caller), so that a
 * player with no cookie jar can play the whole lecture from the manifest
 * URL alone.
 *
 * Contract
 *
 *   The output is the input, byte for byte, with the query inserted into
 *   each URI it signs, and nothing else changed: line endings (LF or CRLF),
 *   a UTF-8 BOM, comments, blank lines, unknown tags, attribute order and
 *   spacing are all kept.  Removing every inserted string gives the input.
 *
 *   What is a URI (RFC 8216 and draft-pantos-hls-rfc8216bis):
 *     - a URI line: a line whose first byte other than SP/HT is not '#' and
 *       that is not empty or all SP/HT;
 *     - the URI="..." attribute of EXT-X-KEY, EXT-X-SESSION-KEY, EXT-X-MAP,
 *       EXT-X-MEDIA, EXT-X-I-FRAME-STREAM-INF, EXT-X-SESSION-DATA,
 *       EXT-X-PART, EXT-X-PRELOAD-HINT and EXT-X-RENDITION-REPORT.  The
 *       attribute list of those tags is parsed (a quoted string may hold
 *       commas); only an attribute named exactly "URI" counts ("uri",
 *       "X-URI" do not).  Other tags are copied unparsed (so the
 *       SERVER-URI of EXT-X-CONTENT-STEERING and the X-ASSET-URI of an
 *       interstitial EXT-X-DATERANGE are NOT signed: they name other
 *       servers).
 *   The URI is the line without leading and trailing SP/HT (what players
 *   take), or the attribute's quoted value.
 *
 *   Where the query goes: before the fragment (the first '#' of the URI),
 *   as "?" + query when the URI has no '?' before it, else "&" + query
 *   ("a.ts" -> "a.ts?Q", "a.ts?v=2#t" -> "a.ts?v=2&Q#t", and "a.ts?" ->
 *   "a.ts?&Q": always a separator, so the inserted strings are exactly
 *   the ones to remove and never a second '?').
 *
 *   Which URIs are signed:
 *     - the URI of EXT-X-KEY and EXT-X-SESSION-KEY: never, whatever its
 *       form and the options (its attributes are checked all the same).
 *       A key of encrypted HLS is served by the LMS behind its session
 *       and enrollment check (vodlms_hls_key), never by the media's host:
 *       the media's signature would be of no use there, would leak into
 *       the LMS's logs, and a key URI relative to the playlist would be
 *       one under the media tree, where keys must never be; unsigned, the
 *       edge refuses such a key (403) instead of serving it;
 *     - a relative reference (no scheme, not "//"): always;
 *     - a URI with a scheme other than http/https (skd:, data:, blob:...):
 *       never, whatever the options;
 *     - http://, https:// and network-path "//host/..." references: as
 *       opts->absolute says: VODLMS_HLS_ABS_KEEP leaves them alone,
 *       VODLMS_HLS_ABS_REFUSE refuses the playlist (VODLMS_EREFUSED),
 *       VODLMS_HLS_ABS_ORIGIN signs those whose scheme and authority equal
 *       opts->origin ("https://media.example.com[:port]": scheme and host
 *       compared case-insensitively, the port exactly, no default-port or
 *       userinfo folding; a "//" reference is compared on its authority)
 *       and leaves the others alone.
 *
 *   What is refused (nothing is written that the caller should serve):
 *     VODLMS_ETOOLONG    in_len > opts->max_size, a line (without its
 *                        terminator) longer than opts->max_line, or an
 *                        output size that would not fit a size_t;
 *     VODLMS_EMALFORMED  no "#EXTM3U" line first (after an optional BOM),
 *                        a NUL byte, a CR not followed by LF, in a tag
 *                        above: an attribute name not of [A-Za-z0-9-] or
 *                        without '=', an unterminated quoted string, junk
 *                        after a quoted value, a '"' in an unquoted one, a
 *                        URI that is unquoted, empty (URI="") or given
 *                        twice;
 *     VODLMS_EREFUSED    an absolute URI under VODLMS_HLS_ABS_REFUSE (a
 *                        key's is not: it is never signed);
 *     VODLMS_EINTERNAL   the caller's mistake: opts or query invalid (a
 *                        query must be URI query characters only, RFC 3986
 *                        pchar / "/" / "?", no '#', '"', space or control
 *                        byte, and must not start with '?' or '&'; origin
 *                        must be "http(s)://authority" with no path), zero
 *                        limits, or out_size below the size needed.
 *   An empty query is valid: the playlist is checked and copied unchanged.
 *
 *   With opts->define (a variable name of [A-Za-z0-9_-], 1 to
 *   VODLMS_HLS_DEFINE_MAX bytes), the query is written once, not into
 *   every URI (protocol version 8's variable substitution):
 *     - right after the #EXTM3U line, with its line ending,
 *       #EXT-X-DEFINE:NAME="<define>",VALUE="<query>"
 *       and, when the playlist has no EXT-X-VERSION tag, before it
 *       #EXT-X-VERSION:8;
 *     - every URI that would be signed gets "{$<define>}" where the query
 *       would go (with the same '?' or '&');
 *     - an EXT-X-VERSION tag below 8 is raised to 8 (its digits replaced).
 *   When opts->value_at is not NULL, the writing pass stores there the
 *   offset in the output of the query's first byte in that EXT-X-DEFINE
 *   (it is followed by '"'): the output less those query_len bytes is the
 *   same for every query.
 *   Refused as VODLMS_EMALFORMED as well: an EXT-X-DEFINE of the playlist
 *   that names the same variable (NAME, IMPORT or QUERYPARAM), an
 *   EXT-X-VERSION that is not a decimal-integer or is given twice, the
 *   text "#EXT-X-VERSION" anywhere but at the start of a tag line, or the
 *   text "{$" in a playlist below version 8 (literal there, it would
 *   become a reference to an undefined variable, which a player must
 *   refuse).  A
 *   player that substitutes variables requests exactly the URIs the query
 *   mode writes; one that does not requests "{$...}" literally, and the
 *   edge refuses it.
 *
 *   Two passes, one function: with out == NULL, vodlms_hls_rewrite() only
 *   computes *out_len, the exact size of the output; with a buffer of at
 *   least that size it writes the output and sets *out_len to the bytes
 *   written.  Both passes run the same code, so for the same input and
 *   options they return the same code and the same length; the caller
 *   (nginx) allocates once.  Nothing is allocated, `in` need not be
 *   NUL-terminated, nothing is NUL-terminated.
 *
 *   On an error, err (if not NULL) says where: the 1-based line number,
 *   the byte offset of that line, and a short lower-case reason for the
 *   log line ("line too long", "unterminated quoted string"...).
 */

#ifndef VODLMS_HLS_H
#define VODLMS_HLS_H

#include "vodlms_core.h"


/* the longest variable name opts->define may have */
#define VODLMS_HLS_DEFINE_MAX  32

/* the protocol version that has EXT-X-DEFINE */
#define VODLMS_HLS_DEFINE_VERSION  8

/* defaults for the limits: a 60-minute lecture's media playlist in 4 s
 * segments is ~60 KB; a data: URI key or a long signed URI fits a line */
#define VODLMS_HLS_MAX_SIZE_DEFAULT  (4 * 1024 * 1024)
#define VODLMS_HLS_MAX_LINE_DEFAULT  (64 * 1024)


typedef enum {
    VODLMS_HLS_ABS_KEEP = 0,       /* absolute http(s) URIs left alone */
    VODLMS_HLS_ABS_REFUSE,         /* any absolute http(s) URI: refused */
    VODLMS_HLS_ABS_ORIGIN          /* those on opts->origin signed */
} vodlms_hls_abs_e;


typedef struct {
    vodlms_hls_abs_e   absolute;
    const char        *origin;         /* "https://host[:port]", ABS_ORIGIN */
    size_t             origin_len;
    const char        *define;         /* a variable name, or NULL */
    size_t             define_len;
    size_t            *value_at;       /* define: where the query went */
    size_t             max_size;       /* bytes of input, > 0 */
    size_t             max_line;       /* bytes of one line, > 0 */
} vodlms_hls_opts_t;


typedef struct {
    size_t             line;           /* 1-based, 0 when not about a line */
    size_t             offset;         /* of that line's first byte */
    const char        *reason;         /* static, lower-case */
} vodlms_hls_err_t;


/*
 * Rewrite (or with out == NULL, measure) `in`, inserting `query` into every
 * URI it signs; see the contract above.  *out_len is set on VODLMS_OK only.
 */
vodlms_rc_t vodlms_hls_rewrite(const char *in, size_t in_len,
    const char *query, size_t query_len, const vodlms_hls_opts_t *opts,
    char *out, size_t out_size, size_t *out_len, vodlms_hls_err_t *err);


/*
 * 1 when `query` is what vodlms_hls_rewrite() takes as a query (RFC 3986
 * query characters, no '#', '"', space or control byte, not starting with
 * '?' or '&'), else 0: for a caller that writes the query itself next to
 * output made before (the define mode's EXT-X-DEFINE line).
 */
int vodlms_hls_query_ok(const char *query, size_t query_len);


#endif /* VODLMS_HLS_H */
