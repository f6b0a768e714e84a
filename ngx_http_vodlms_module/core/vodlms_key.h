/*
 * Keys of encrypted HLS (issue #22): what the key endpoint (vodlms_hls_key)
 * decides without nginx.  The request's version and key index, the key as
 * PostgreSQL's encode(key, 'hex') gives it, the pace limit's speed as
 * written in the configuration ("2x", "1.5x"), and the verdict of the key
 * budget and the pace limit from what the Redis script counted.
 */

#ifndef VODLMS_KEY_H
#define VODLMS_KEY_H

#include "vodlms_core.h"


#define VODLMS_KEY_LEN          16            /* AES-128 */
#define VODLMS_KEY_VERSION_MAX  64            /* video_keys.version's CHECK */
#define VODLMS_KEY_INDEX_DIGITS 9             /* 0..999999999 */

/* the pace limit's speed in thousandths: 0.1x .. 100x */
#define VODLMS_KEY_SPEED_MIN    100
#define VODLMS_KEY_SPEED_MAX    100000


typedef enum {
    VODLMS_KEY_ALLOW = 0,
    VODLMS_KEY_OVER_BUDGET,
    VODLMS_KEY_TOO_EARLY
} vodlms_key_verdict_e;


typedef struct {
    uint64_t    budget;        /* keys per window; 0: no budget */
    uint64_t    speed;         /* pace: content ms per real ms, x1000;
                                  0: no pace limit */
    uint64_t    allowance_ms;  /* content a viewer may be ahead by */
} vodlms_key_limits_t;


/*
 * A version token as video_keys stores it: 1..64 of [A-Za-z0-9_.-], and
 * not "." or ".." (it names a directory of the media tree).  1 or 0.
 */
int vodlms_key_version_valid(const char *s, size_t len);

/* a key index: 1..9 decimal digits, no sign; 1 and *index, or 0 */
int vodlms_key_index_parse(const char *s, size_t len, uint32_t *index);

/* 32 hex digits (either case) -> 16 bytes; VODLMS_EMALFORMED otherwise */
vodlms_rc_t vodlms_key_from_hex(const char *hex, size_t len,
    unsigned char *key);

/*
 * "2", "2x", "1.5x", "0.25x" -> thousandths (2000, 1500, 250): at most 3
 * decimals, between VODLMS_KEY_SPEED_MIN and VODLMS_KEY_SPEED_MAX.
 * 1 and *speed, or 0.
 */
int vodlms_key_speed_parse(const char *s, size_t len, uint64_t *speed);

/*
 * What the Redis script saw of the pace state of a (video, user) and
 * decided, atomically with the update (see ngx_http_vodlms_key.c):
 *   released: 1 if the script released this key (or found no pace limit);
 *   released_ms: the start of the furthest key released before this
 *       fetch, -1 if this is the viewer's first fetch (no state);
 *   playhead: where a viewer playing at speed since the first fetch would
 *       be now, never past what was released (idle time buys at most the
 *       rest of the current key), in thousandths of a content ms.
 */
typedef struct {
    int64_t     released_ms;
    int64_t     playhead;
    int         released;
} vodlms_key_pace_t;


/*
 * The verdict on one key fetch, from what the script returned: count, the
 * fetches in the current window (this one included) and ttl_ms, what is
 * left of the window; pace, the pace state and the script's decision;
 * starts_ms, where the key's content starts.
 *
 *   over budget (count > budget)                  VODLMS_KEY_OVER_BUDGET,
 *       *retry_after: seconds until the window ends;
 *   not released by the script                    VODLMS_KEY_TOO_EARLY,
 *       *retry_after: seconds until the playhead, moving at speed,
 *       is within allowance of starts_ms;
 *   otherwise VODLMS_KEY_ALLOW (*retry_after 0).
 *
 * The budget is judged first.  Negative inputs count as 0; retry_after is
 * at least 1 whenever a fetch is refused.
 */
vodlms_key_verdict_e vodlms_key_judge(const vodlms_key_limits_t *limits,
    int64_t count, int64_t ttl_ms, const vodlms_key_pace_t *pace,
    int64_t starts_ms, uint64_t *retry_after);


#endif /* VODLMS_KEY_H */
