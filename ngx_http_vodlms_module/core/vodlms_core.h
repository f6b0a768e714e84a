/*
 * vodlms pure core: parsing and crypto checks with no nginx dependency.
 *
 * Everything here works on (pointer, length) byte ranges, never relies on NUL
 * termination of its inputs, allocates nothing that outlives a call, and is
 * unit-tested (t/unit/) and fuzzed on its own.  The nginx glue files adapt it.
 */

#ifndef VODLMS_CORE_H
#define VODLMS_CORE_H

#include <stddef.h>
#include <stdint.h>


typedef enum {
    VODLMS_OK = 0,
    VODLMS_ENOTFOUND,      /* no such cookie, header part or JSON field */
    VODLMS_EMALFORMED,     /* syntactically broken input */
    VODLMS_ENOTSIGNED,     /* express cookie value without the "s:" prefix */
    VODLMS_EBADSIG,        /* signature matches none of the secrets */
    VODLMS_ETOOLONG,       /* a value longer than its limit */
    VODLMS_ETYPE,          /* a JSON value of an unusable type */
    VODLMS_ENOMEM,
    VODLMS_EINTERNAL,      /* a library call failed (e.g. OpenSSL) */
    VODLMS_EREFUSED        /* well-formed, but refused by configuration */
} vodlms_rc_t;


typedef struct {
    const char  *data;
    size_t       len;
} vodlms_cstr_t;


/* the longest user id, role list and sid we accept (bytes) */
#define VODLMS_USER_ID_MAX   128
#define VODLMS_ROLES_MAX     256
#define VODLMS_SID_MAX       256
#define VODLMS_TOKEN_MAX     512


const char *vodlms_rc_str(vodlms_rc_t rc);


/*
 * Cookie header (RFC 6265 "cookie-string"): find the FIRST cookie called
 * `name` in one header value; pairs are separated by ';' with optional
 * spaces, a value may be wrapped in double quotes (returned without them).
 * VODLMS_ENOTFOUND when absent.  A pair without '=' is skipped.
 */
vodlms_rc_t vodlms_cookie_get(const char *hdr, size_t hdr_len,
    const char *name, size_t name_len, vodlms_cstr_t *value);

/* the value of a hex digit, either case; -1 for anything else */
int vodlms_hex_value(unsigned char c);

/*
 * The ids of the schema (videos, courses) and CloudFront's key pair ids:
 * 1..max of [A-Za-z0-9_-], safe in URLs, cookies and keys unencoded.
 */
int vodlms_id_valid(const char *id, size_t len, size_t max);

/*
 * The name of the PostgreSQL schema that holds vodlms's own tables
 * (vodlms_pg_schema, sql/migrate.sh --schema, the helper's db_schema): a
 * plain lower-case identifier, [a-z_][a-z0-9_]*, 1..63 bytes (PostgreSQL's
 * NAMEDATALEN - 1), not starting with "pg_" (reserved for the system).
 * Written quoted ("name"), it needs no escaping and folds no case.
 */
int vodlms_sql_schema_valid(const char *name, size_t len);

/*
 * An id that a query declares integer (`$1::int`, `$1::bigint`): an
 * optional '-' and 1 or more ASCII digits (leading zeros allowed) whose
 * value fits a signed integer of `bits` bits (32 or 64), i.e. what
 * PostgreSQL's int4/int8 input takes from an id of [A-Za-z0-9_-].
 * Returns 1 if so, 0 otherwise (also for any other `bits`).
 */
int vodlms_id_integer_valid(const char *id, size_t len, unsigned bits);

/*
 * A storage prefix (where a video's HLS tree lives, from the enrollment
 * row): the rule of the schema's videos_storage_prefix_safe CHECK.  One or
 * more segments joined by '/', the first of [A-Za-z0-9_-], the others of
 * [A-Za-z0-9_.-], none "." or "..", an optional final '/', at most max
 * bytes.  It goes into URLs, signed policies and Set-Cookie's Path, so
 * nothing else may pass: no ';', CR, LF, space, '%', '?', '#' or "//".
 */
int vodlms_storage_prefix_valid(const char *s, size_t len, size_t max);

/*
 * Strict percent-decoding (no '+' -> space).  Rejects a '%' not followed by
 * two hex digits, and any decoded byte < 0x20 or 0x7f (NUL, CR, LF...).
 * `out` must have room for `len` bytes; it may equal `in`.
 */
vodlms_rc_t vodlms_pct_decode(const char *in, size_t len, char *out,
    size_t *out_len);

/*
 * "Authorization: Bearer <token>" value -> token.  The scheme is matched
 * case-insensitively, one or more spaces follow it, trailing spaces are
 * trimmed.  VODLMS_ENOTFOUND for another scheme, VODLMS_EMALFORMED for an
 * empty token.
 */
vodlms_rc_t vodlms_bearer_token(const char *hdr, size_t len,
    vodlms_cstr_t *token);

/*
 * An opaque token is 1..VODLMS_TOKEN_MAX bytes of [A-Za-z0-9._~+/=-].
 * Returns 1 if valid, 0 otherwise.
 */
int vodlms_token_valid(const char *tok, size_t len);

/*
 * express-session signed cookie value, ALREADY percent-decoded:
 * "s:" + sid + "." + base64(HMAC-SHA256(secret, sid)) without '=' padding.
 * Split at the LAST '.'.  Every secret is tried (rotation); comparison is
 * constant-time.  On success *sid points into `val`.
 *   VODLMS_ENOTSIGNED  no "s:" prefix (not a session)
 *   VODLMS_EMALFORMED  no '.', empty sid or signature, sid > VODLMS_SID_MAX,
 *                      a sid byte < 0x21 or 0x7f
 *   VODLMS_EBADSIG     no secret matches
 */
vodlms_rc_t vodlms_express_unsign(const char *val, size_t len,
    const vodlms_cstr_t *secrets, size_t nsecrets, vodlms_cstr_t *sid);

/*
 * The signing side (what cookie-signature does), for tests and fixtures:
 * writes "s:" + sid + "." + sig into out (not percent-encoded, no NUL).
 * The sid rules are unsign's (VODLMS_EMALFORMED); VODLMS_ETOOLONG when
 * out_size is under sid_len + 46.
 */
vodlms_rc_t vodlms_express_sign(const char *sid, size_t sid_len,
    const char *secret, size_t secret_len, char *out, size_t out_size,
    size_t *out_len);


/* what a session document says about its user */
typedef struct {
    char      user_id[VODLMS_USER_ID_MAX + 1];
    size_t    user_id_len;
    char      roles[VODLMS_ROLES_MAX + 1];     /* comma-separated, may be "" */
    size_t    roles_len;
    int64_t   expires;    /* epoch seconds, 0 = none; a date <= 1970 is 1 */
} vodlms_session_t;

/*
 * Parse a JSON session document (jansson) and pull out:
 *  - the user id at dotted path `user_path` (e.g. "passport.user"): a JSON
 *    string (1..VODLMS_USER_ID_MAX bytes, no control characters) or an
 *    integer (decimal); anything else -> VODLMS_ETYPE, absent or null ->
 *    VODLMS_ENOTFOUND;
 *  - the roles at `role_path` if not NULL: a string or an array of strings,
 *    each [A-Za-z0-9_.:-]+, joined with ','; absent -> "" (not an error);
 *    a wrong type -> VODLMS_ETYPE;
 *  - the expiry at `expires_path` if not NULL: see vodlms_parse_expiry();
 *    absent -> 0.
 * Broken JSON, duplicate keys or a non-object top level ->
 * VODLMS_EMALFORMED.  On a path, a missing key or a null is "absent", a
 * non-object before the last component VODLMS_ETYPE, an empty component
 * ("a..b") VODLMS_EINTERNAL (a configuration error).  On error *out is
 * all zeroes.
 */
vodlms_rc_t vodlms_session_from_json(const char *json, size_t len,
    const char *user_path, const char *role_path, const char *expires_path,
    vodlms_session_t *out);

/*
 * The same from the fields of a Redis hash (each may be NULL = absent),
 * with the same rules; role_len bytes are one role or a comma/space
 * separated list, or a JSON array of strings.
 */
vodlms_rc_t vodlms_session_from_fields(const char *user, size_t user_len,
    const char *role, size_t role_len, const char *expires,
    size_t expires_len, vodlms_session_t *out);

/*
 * Other fields of a session, named by configuration (vodlms_session_field):
 * for display, e.g. a viewer watermark, never for decisions.  A value is at
 * most VODLMS_SESSION_FIELD_MAX bytes of well-formed UTF-8 (longer text is
 * cut at a character boundary, stray bytes become U+FFFD).
 */
#define VODLMS_SESSION_FIELDS_MAX  8
#define VODLMS_SESSION_FIELD_MAX   256

typedef struct {
    char      value[VODLMS_SESSION_FIELD_MAX];
    size_t    len;
    int       found;
} vodlms_session_field_t;

/*
 * vodlms_session_from_json() that also reads `nfields` more dotted paths
 * (at most VODLMS_SESSION_FIELDS_MAX) into fields[]: a string as it is, an
 * integer or real as its JSON numeral, true/false as "true"/"false".
 * Absent, null, an object, an array, or a path through a non-object leave
 * the field not found: a field never fails the session.  The document is
 * parsed once.
 */
vodlms_rc_t vodlms_session_from_json_ex(const char *json, size_t len,
    const char *user_path, const char *role_path, const char *expires_path,
    const char *const *field_paths, size_t nfields, vodlms_session_t *out,
    vodlms_session_field_t *fields);

/* a field from raw bytes (a Redis hash field): found, cut, made UTF-8 */
void vodlms_session_field_set(vodlms_session_field_t *f, const char *s,
    size_t len);

/*
 * An expiry value: an integer of epoch seconds, or of epoch milliseconds
 * when it is > 100000000000, or an RFC 3339 / ISO 8601 UTC date-time such
 * as "2026-11-25T10:00:00.000Z" or "2026-11-25T10:00:00+01:00".
 */
vodlms_rc_t vodlms_parse_expiry(const char *s, size_t len, int64_t *epoch);


/* -------------------------------------------------- progress beacons */

#define VODLMS_BEACON_MAX      1024        /* bytes of body */
#define VODLMS_VIDEO_ID_MAX    64
#define VODLMS_PLAYBACK_ID_LEN 32          /* lower-case hex */

typedef enum {
    VODLMS_BEACON_TICK = 0,
    VODLMS_BEACON_PAUSE,
    VODLMS_BEACON_ENDED
} vodlms_beacon_event_t;

typedef struct {
    char                    video_id[VODLMS_VIDEO_ID_MAX + 1];
    size_t                  video_id_len;
    double                  current_time;   /* seconds */
    double                  duration;       /* seconds */
    vodlms_beacon_event_t   event;
    char                    playback_id[VODLMS_PLAYBACK_ID_LEN + 1];
    size_t                  playback_id_len; /* 0: none in the beacon */
    int                     duration_known; /* duration is the database's,
                                               not the player's: set by the
                                               caller, never by the parser */
} vodlms_beacon_t;

/*
 * A player's beacon: {"videoId": "...", "currentTime": 320,
 * "duration": 1200, "event": "tick|pause|ended", "playbackId": "..."}
 * (event optional, tick; playbackId optional: 32 lower-case hex digits).
 * videoId is a string, or a non-negative JSON integer (an LMS with integer
 * ids), which names the id spelled by its digits: 3 is "3".
 * Numbers must be finite, 0 < duration <= 7 days, 0 <= currentTime <=
 * duration + slack.  On failure *why is a short machine-readable reason
 * ("body_too_large", "malformed_json", "bad_video_id", "bad_current_time",
 * "bad_duration", "bad_event", "position_out_of_range", "bad_playback_id").
 */
vodlms_rc_t vodlms_beacon_parse(const char *body, size_t len, double slack,
    vodlms_beacon_t *b, const char **why);

/* a playbackId (vodlms_streams): exactly 32 lower-case hex digits */
int vodlms_playback_id_valid(const char *s, size_t len);

/* what the buffer keeps per (user, video) */
typedef struct {
    double     position;
    double     duration;
    double     max_position;
    double     watched_pending;    /* watched seconds not yet flushed */
    double     played;             /* forward play credited for completion:
                                      the database's watched seconds when the
                                      entry was made, plus every step since,
                                      each at most VODLMS_PROGRESS_MAX_RATE x
                                      the wall-clock time it took */
    int64_t    last_beacon_ms;     /* wall clock of the previous beacon */
    int64_t    completed_at;       /* epoch seconds, 0: not yet */
    int        paused;             /* the previous beacon was "pause" */
} vodlms_progress_t;

/* the fastest playback credited as watching (players offer 2x) */
#define VODLMS_PROGRESS_MAX_RATE  2.0



/* ------------------------------------------------------------ coverage */

/*
 * Which parts of one video one user has played (issue #19), as a bitmap:
 * bit i stands for the content [i*R, (i+1)*R) with R =
 * VODLMS_COVERAGE_RES_MS, the last bit for [i*R, duration).  A bit is set
 * only when the WHOLE of its span lies inside one proven run (below): a
 * part of a bit proves nothing, so many short runs touching many bits do
 * not add up to coverage.
 *
 * R = 5 s: a beacon comes every 10-15 s, so a bit is finer than a beacon
 * and a run loses at most one partial bit at each end; a drop-off chart at
 * 5 s is finer than anyone reads; and a 3-hour lecture is 270 bytes.  It is
 * the unit of the stored bitmaps: changing it means rewriting them.
 *
 * The rule for a beacon at position p (ms, a position past the end is the
 * end) and wall time t (ms; an earlier t than the previous beacon's counts
 * as equal, as workers' cached clocks differ), with p0, t0 the previous
 * beacon's and w = VODLMS_PROGRESS_MAX_RATE * min(t - t0,
 * VODLMS_COVERAGE_STEP_MAX_MS) the content time the wall clock allows:
 *   - the first beacon starts a run at p, and marks nothing; when p lies
 *     at most A into the first bit, or into a bit whose predecessor is
 *     set (a resume where the played part ends), the run starts at that
 *     bit's start: a resume must not leave the bit it lands in
 *     unprovable, and the A of content it adds is the allowance any step
 *     has;
 *   - p < p0 (back): a run starts at p, nothing is marked (rewatching is
 *     not new coverage; what is played from p on is);
 *   - p - p0 <= credit + w: the run goes on to p,
 *     credit = min(C, credit + w - (p - p0));
 *   - p - p0 <= A + w: this step alone is proven: a run starts at p0 and
 *     goes to p, credit = min(C, A + w - (p - p0));
 *   - otherwise a jump (a seek, or a lie): a run starts at p, nothing is
 *     marked, not even p's own bit, credit = A.
 * Then every bit whose whole span lies in [run start, p] is set.  A =
 * VODLMS_COVERAGE_ALLOWANCE_MS is what a run starts with; C =
 * VODLMS_COVERAGE_CARRY_MS is what wall time the run did not use may leave
 * for later.  Unrolled, a run is a chain of beacons in which the first and
 * any later one are no further apart in content than w between them + A,
 * and any two later ones no further than w between them + C.  The first
 * condition bounds the run: it marks at most rate x its wall time + A
 * (+ A more from a run state's first beacon, the resume above), and as
 * 2 A < R a run that cost no wall time marks no whole bit (only a last
 * bit shorter than R: of at most A, or 2 A from a run state's first
 * beacon): sending beacons fast gains nothing, and the cheapest coverage
 * (steps of one bit restarting each time) is 2 R / (R - A) = 3.3x real
 * time, one bit per run state (R - 2 A) / 2 = 0.5 s, whatever C is (the
 * carry is wall time the run has paid for).  The second absorbs
 * arrival jitter: at 2x, a beacon that reaches the server up to C / 2
 * later than the next one costs nothing, where a jump would lose the whole
 * step.  (The wall time between two beacons is all the step's: a pause the
 * player reports with a "pause" beacon earns none, and takes the carry
 * back to A, as vodlms_progress_apply() sees to.)
 */

#define VODLMS_COVERAGE_RES_MS        5000    /* content per bit */
#define VODLMS_COVERAGE_ALLOWANCE_MS  2000    /* < RES_MS, see above */
#define VODLMS_COVERAGE_CARRY_MS      5000    /* >= ALLOWANCE_MS, see above */
#define VODLMS_COVERAGE_STEP_MAX_MS   60000   /* wall time one step may use */

/*
 * At most 24 hours of content are tracked (2160 bytes): the bitmap lives
 * in shared memory per (user, video).  A longer video keeps bits for its
 * first 24 hours only, and its fraction stays of its whole duration, so it
 * cannot complete by coverage beyond 24 h / duration (fails closed).
 */
#define VODLMS_COVERAGE_BITS_MAX      17280
#define VODLMS_COVERAGE_BYTES_MAX     (VODLMS_COVERAGE_BITS_MAX / 8)
#define VODLMS_COVERAGE_DURATION_MAX  (7.0 * 86400.0)   /* the beacon's */

/* room vodlms_coverage_hex() needs for nbits, with the 'x' */
#define VODLMS_COVERAGE_HEX_LEN(nbits)  (1 + ((nbits) + 3) / 4)

typedef struct {
    unsigned char  *bits;         /* bit i: bits[i / 8] & (0x80 >> i % 8),
                                     PostgreSQL's order; bits past nbits
                                     are always 0 */
    size_t          nbits;        /* 1..VODLMS_COVERAGE_BITS_MAX */
    int64_t         duration_ms;  /* the database's duration: the last
                                     bit ends there */
} vodlms_coverage_t;

/* one node's view of the current run (kept per entry beside the bitmap) */
typedef struct {
    int64_t   run_start;          /* ms of content where the run began */
    int64_t   position;           /* ms, the previous beacon's */
    int64_t   time;               /* ms, wall clock of the latest beacon */
    int64_t   credit;             /* ms, 0..VODLMS_COVERAGE_CARRY_MS */
    int       active;             /* 0: no previous beacon */
} vodlms_coverage_run_t;

typedef enum {
    VODLMS_COVERAGE_INVALID = 0,  /* NaN, inf, negative: nothing changed */
    VODLMS_COVERAGE_FIRST,        /* a run starts, nothing marked */
    VODLMS_COVERAGE_CONTINUED,    /* the run goes on */
    VODLMS_COVERAGE_RESTARTED,    /* a new run from the previous position */
    VODLMS_COVERAGE_JUMPED,       /* forward faster than the clock allows */
    VODLMS_COVERAGE_BACK          /* backwards */
} vodlms_coverage_step_e;

/*
 * The bytes a bitmap for `duration` seconds needs: (nbits + 7) / 8 with
 * nbits = ceil(duration / R) capped at VODLMS_COVERAGE_BITS_MAX; 0 when
 * the duration is not finite, under 1 ms or over
 * VODLMS_COVERAGE_DURATION_MAX.
 */
size_t vodlms_coverage_size(double duration);

/* the duration a bitmap for `duration` seconds ends at, in whole ms (half
   up); 0 when vodlms_coverage_size() refuses it */
int64_t vodlms_coverage_duration_ms(double duration);

/*
 * An empty bitmap for `duration` seconds over the caller's `buf` (zeroed
 * here).  VODLMS_EMALFORMED for a duration vodlms_coverage_size() refuses,
 * VODLMS_ETOOLONG when `size` is under what it needs; *c is then untouched.
 */
vodlms_rc_t vodlms_coverage_init(vodlms_coverage_t *c, unsigned char *buf,
    size_t size, double duration);

/*
 * Fold one beacon (position in seconds, taken to the nearest ms; wall
 * clock in ms) into the bitmap by the rule above.  A position that is NaN, infinite or negative, or a
 * negative now_ms, is VODLMS_COVERAGE_INVALID and changes nothing.  A zeroed
 * run is a run with no previous beacon.
 */
vodlms_coverage_step_e vodlms_coverage_mark(vodlms_coverage_t *c,
    vodlms_coverage_run_t *r, double position, int64_t now_ms);

/*
 * dst |= src: the union, clipped to dst's length.  Idempotent, commutative
 * and associative, as PostgreSQL's bit_or is on equal lengths.  Returns
 * how many set bits of src lie past dst's length (and were not kept).
 */
size_t vodlms_coverage_or(vodlms_coverage_t *dst, const vodlms_coverage_t *src);

/* played content: the spans of the set bits (the last one shorter) */
int64_t vodlms_coverage_covered_ms(const vodlms_coverage_t *c);

/* vodlms_coverage_covered_ms() / duration, 0..1 */
double vodlms_coverage_fraction(const vodlms_coverage_t *c);

/*
 * Where the first unplayed bit starts (ms): what "may not seek past the
 * first unwatched part" allows.  The duration when every bit is set, the
 * end of the tracked part when the video is longer than that.
 */
int64_t vodlms_coverage_first_unwatched_ms(const vodlms_coverage_t *c);

/*
 * The form the flush sends: PostgreSQL's hex bit-string input, 'x' then
 * ceil(nbits / 4) lower-case hex digits, most significant bit first:
 * `'x1f'::varbit` is 00011111, and an array of them is a `varbit[]`
 * parameter as they are (no quoting).  Hex is a quarter of the bytes of the
 * binary text form in a batch of rows.  The varbit is nbits rounded up to a
 * multiple of 4, the extra bits 0 (not watched).  `size` must be at least
 * VODLMS_COVERAGE_HEX_LEN(nbits); returns the length written (no NUL), 0
 * when it is not.
 */
size_t vodlms_coverage_hex(const vodlms_coverage_t *c, char *out,
    size_t size);

/*
 * Read a bit string as PostgreSQL's varbit input does, and OR it into c
 * (into a fresh bitmap it is a plain load; into a live one it merges what
 * the database has): 'x' or 'X' then hex digits, 'b' or 'B' then [01], or
 * [01] alone (what varbit::text gives back); "" is an empty string.  A bad
 * character is VODLMS_EMALFORMED, more than VODLMS_COVERAGE_BITS_MAX bits
 * (rounded up to 4 for hex) VODLMS_ETOOLONG; c is then unchanged.  Set
 * bits past c's length are counted in *dropped, as vodlms_coverage_or().
 */
vodlms_rc_t vodlms_coverage_parse(vodlms_coverage_t *c, const char *s,
    size_t len, size_t *dropped);

/*
 * Whether the covered content reaches `fraction` (0 < fraction <= 1) of
 * the duration, in exact arithmetic: the fraction is taken to millionths
 * (half up), as the flush prints it for PostgreSQL's numeric, so nginx and
 * vodlms.coverage_complete() in sql/ agree to the millisecond.
 */
int vodlms_coverage_complete(const vodlms_coverage_t *c, double fraction);

/* fraction in millionths, half up: what the flush sends as $10 */
int64_t vodlms_coverage_fraction_micro(double fraction);


/* --------------------------------------- progress: one beacon applied */

/*
 * Fold a beacon into the state.  Watched time grows by the forward
 * movement of the position, but never by more than the wall-clock time
 * since the previous beacon: seeking ahead or inflated reports cannot fake
 * watching.  "played" grows the same way with VODLMS_PROGRESS_MAX_RATE
 * times the wall-clock time as its bound.  Both are engagement figures.
 *
 * Coverage (c and run, both NULL when the entry has no bitmap: the
 * database did not give the video's duration) is marked by
 * vodlms_coverage_mark(), and completion is judged by it alone
 * (issue #19): set once, when the duration is the database's
 * (b->duration_known: a player's {"currentTime": 1, "duration": 1}
 * decides nothing) and vodlms_coverage_complete(c, complete_fraction).
 * Without a bitmap nothing completes here.  An entry with a bitmap keeps
 * the database's duration: a beacon without it (the row lost its
 * duration) changes the position, not the duration.  For coverage, an
 * "ended" beacon at most VODLMS_COVERAGE_RES_MS before the database's
 * duration is at the end (a player's end is its playlist's, which may
 * stop a little short): it proves the better of the one step to the
 * duration and its position then the rest to the duration at the same
 * instant, both held to the clock; its position stays the player's.
 *
 * The wall time after a "pause" beacon is not play: the next step gets
 * none for coverage (the player was paused; a seek while paused is a
 * jump), and the beacon after that counts normally again.
 */
void vodlms_progress_apply(vodlms_progress_t *p, vodlms_coverage_t *c,
    vodlms_coverage_run_t *run, const vodlms_beacon_t *b, int64_t now_ms,
    double complete_fraction);


/* ------------------------------------------------------- JSON output */

/* 1 if s is well-formed UTF-8 (RFC 3629: no overlongs or surrogates) */
int vodlms_utf8_valid(const char *s, size_t len);

/*
 * Copy s into out (at most max bytes), as well-formed UTF-8: a byte that
 * starts no well-formed sequence becomes U+FFFD, and the copy stops before
 * the first character that would not fit whole.  Returns the bytes written.
 * For text from outside (session fields, columns) shown to people.
 */
size_t vodlms_utf8_cut(const char *s, size_t len, char *out, size_t max);

/* vodlms_json_escaped_len() of a string that is not valid UTF-8 */
#define VODLMS_JSON_INVALID     ((size_t) -1)

/* room a number needs in vodlms_json_real() / vodlms_json_decimal() */
#define VODLMS_JSON_NUMBER_MAX  32

/*
 * The body of a JSON string (without the quotes) as jansson's json_dumps()
 * writes it: '"', '\\' and control characters escaped, '/' and non-ASCII
 * UTF-8 as they are.  vodlms_json_escaped_len() checks the input is
 * well-formed UTF-8 (VODLMS_JSON_INVALID if not) and returns the escaped
 * length; vodlms_json_escape() writes it and returns the end.
 */
size_t vodlms_json_escaped_len(const char *s, size_t len);
char *vodlms_json_escape(char *dst, const char *s, size_t len);

/*
 * A JSON real as json_dumps(JSON_REAL_PRECISION(15)) prints it: "%.15g",
 * with ".0" added when that looks like an integer.  `size` must be at least
 * VODLMS_JSON_NUMBER_MAX.  Returns the length, 0 for NaN and infinities.
 */
size_t vodlms_json_real(char *out, size_t size, double v);

/*
 * The same for a decimal numeral in text (a PostgreSQL numeric): the same
 * bytes as vodlms_json_real(strtod(s)), without the double and the printf
 * for the usual short numerals.  Returns 0 if `s` is not a numeral.
 */
size_t vodlms_json_decimal(const char *s, size_t len, char *out, size_t size);

/*
 * A JSON numeral "-?digits[.digits][(e|E)[+-]digits]" (leading zeros
 * allowed, at most VODLMS_NUMERAL_FAST_MAX bytes) read as a double, without
 * strtod() or the locale, when the exact fast path applies: up to 2^53 as
 * an integer of its digits, times or over a power of ten up to 10^22.
 * Returns 1 and sets *out to the very double strtod() gives (in the default
 * rounding mode); 0 otherwise (not a numeral, too long, or outside that
 * range): the caller then uses strtod().
 */
#define VODLMS_NUMERAL_FAST_MAX  64

int vodlms_numeral_fast(const char *s, size_t len, double *out);


/*
 * Redis Sentinel's +switch-master message, "<name> <old ip> <old port>
 * <ip> <port>" (vodlms_sentinel.c).  The name may hold spaces: the four
 * fields are taken from the end, and the rest must be `name` exactly.
 * VODLMS_ENOTFOUND: another master's news; VODLMS_EMALFORMED: not such a
 * message, or a host longer than VODLMS_SWITCH_HOST_MAX, or a bad port.
 * The strings in *sm point into msg.
 */
#define VODLMS_SWITCH_HOST_MAX  255

typedef struct {
    vodlms_cstr_t  old_host;
    vodlms_cstr_t  old_port;
    vodlms_cstr_t  host;
    unsigned       port;
} vodlms_switch_master_t;

vodlms_rc_t vodlms_switch_master_parse(const char *msg, size_t len,
    const char *name, size_t name_len, vodlms_switch_master_t *sm);



/* ------------------------------------------------- caption uploads */

/* a language tag at most this long: 3 + 3 x "-12345678" */
#define VODLMS_CAPTION_LANG_MAX   30
#define VODLMS_CAPTION_LABEL_MAX  64

/*
 * A language tag as HLS players match it (vodlms_caption.c): 2-3 letters,
 * then up to 3 subtags of 1-8 letters or digits, joined by '-'.  Written to
 * out (len bytes) in the canonical case: the language lower, a 4-letter
 * subtag (a script) Title, a 2-letter one (a region) upper, the rest lower
 * ("EN-us" -> "en-US", "zh-hans" -> "zh-Hans").  VODLMS_EMALFORMED if not.
 */
vodlms_rc_t vodlms_caption_lang(const char *in, size_t len, char *out);

/*
 * A caption label from a query argument: percent-decoded with '+' a space
 * into out (room for len bytes), then 1..VODLMS_CAPTION_LABEL_MAX bytes of
 * well-formed UTF-8 without '"' (it is a quoted HLS attribute) or a control
 * character (C0, DEL, C1, U+2028, U+2029: PostgreSQL's [:cntrl:] refuses
 * them too).  VODLMS_EMALFORMED if not; *out_len is set on VODLMS_OK.
 */
vodlms_rc_t vodlms_caption_label(const char *in, size_t len, char *out,
    size_t *out_len);

/* a default flag: empty, 0, false, no, off -> 0; 1, true, yes, on -> 1
   (any case); anything else -> -1 */
int vodlms_caption_flag(const char *in, size_t len);


#endif /* VODLMS_CORE_H */
