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
 * The verdict on one key fetch, from what the script returned: count, the
 * fetches in the current window (this one included) and ttl_ms, what is
 * left of the window; elapsed_ms, the time since the viewer's first key
 * fetch of the video; starts_ms, where the key's content starts.
 *
 *   over budget (count > budget)                  VODLMS_KEY_OVER_BUDGET,
 *       *retry_after: seconds until the window ends;
 *   starts_ms > elapsed_ms * speed + allowance    VODLMS_KEY_TOO_EARLY,
 *       *retry_after: seconds until it is not;
 *   otherwise VODLMS_KEY_ALLOW (*retry_after 0).
 *
 * The budget is judged first.  Negative inputs count as 0; retry_after is
 * at least 1 whenever a fetch is refused.
 */
vodlms_key_verdict_e vodlms_key_judge(const vodlms_key_limits_t *limits,
    int64_t count, int64_t ttl_ms, int64_t elapsed_ms, int64_t starts_ms,
    uint64_t *retry_after);


#endif /* VODLMS_KEY_H */
