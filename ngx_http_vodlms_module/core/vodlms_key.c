/*
 * Keys of encrypted HLS: the key endpoint's pure decisions (vodlms_key.h).
 */

#include "vodlms_key.h"


int
vodlms_key_version_valid(const char *s, size_t len)
{
    size_t         i;
    unsigned char  ch;

    if (s == NULL || len == 0 || len > VODLMS_KEY_VERSION_MAX) {
        return 0;
    }

    if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
    {
        return 0;
    }

    for (i = 0; i < len; i++) {
        ch = (unsigned char) s[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
              || (ch >= '0' && ch <= '9') || ch == '_' || ch == '.'
              || ch == '-'))
        {
            return 0;
        }
    }

    return 1;
}


int
vodlms_key_index_parse(const char *s, size_t len, uint32_t *index)
{
    size_t    i;
    uint32_t  n;

    if (s == NULL || len == 0 || len > VODLMS_KEY_INDEX_DIGITS) {
        return 0;
    }

    n = 0;

    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }

        n = n * 10 + (uint32_t) (s[i] - '0');
    }

    *index = n;

    return 1;
}


vodlms_rc_t
vodlms_key_from_hex(const char *hex, size_t len, unsigned char *key)
{
    int     hi, lo;
    size_t  i;

    if (hex == NULL || len != 2 * VODLMS_KEY_LEN) {
        return VODLMS_EMALFORMED;
    }

    for (i = 0; i < VODLMS_KEY_LEN; i++) {
        hi = vodlms_hex_value((unsigned char) hex[2 * i]);
        lo = vodlms_hex_value((unsigned char) hex[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            return VODLMS_EMALFORMED;
        }

        key[i] = (unsigned char) (hi << 4 | lo);
    }

    return VODLMS_OK;
}


int
vodlms_key_speed_parse(const char *s, size_t len, uint64_t *speed)
{
    size_t    i, decimals;
    uint64_t  n;
    int       dot;

    if (s == NULL || len == 0) {
        return 0;
    }

    if (s[len - 1] == 'x') {
        len--;
    }

    if (len == 0 || len > 10 || s[0] == '.' || s[len - 1] == '.') {
        return 0;
    }

    n = 0;
    dot = 0;
    decimals = 0;

    for (i = 0; i < len; i++) {
        if (s[i] == '.') {
            if (dot++) {
                return 0;
            }
            continue;
        }

        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }

        if (dot && ++decimals > 3) {
            return 0;
        }

        n = n * 10 + (uint64_t) (s[i] - '0');
    }

    while (decimals++ < 3) {
        n *= 10;
    }

    if (n < VODLMS_KEY_SPEED_MIN || n > VODLMS_KEY_SPEED_MAX) {
        return 0;
    }

    *speed = n;

    return 1;
}


/* content beyond this (about 31 years) is no real lecture: clamped */
#define VODLMS_KEY_MS_MAX  ((int64_t) 1000000000000LL)


vodlms_key_verdict_e
vodlms_key_judge(const vodlms_key_limits_t *limits, int64_t count,
    int64_t ttl_ms, const vodlms_key_pace_t *pace, int64_t starts_ms,
    uint64_t *retry_after)
{
    int64_t   playhead;
    uint64_t  due, need, wait_ms;

    *retry_after = 0;

    if (count < 0) {
        count = 0;
    }

    if (ttl_ms < 0) {
        ttl_ms = 0;
    }

    if (limits->budget && (uint64_t) count > limits->budget) {
        *retry_after = ((uint64_t) ttl_ms + 999) / 1000;
        if (*retry_after == 0) {
            *retry_after = 1;
        }

        return VODLMS_KEY_OVER_BUDGET;
    }

    if (limits->speed == 0 || pace->released) {
        return VODLMS_KEY_ALLOW;
    }

    starts_ms = starts_ms < 0 ? 0
                : starts_ms > VODLMS_KEY_MS_MAX ? VODLMS_KEY_MS_MAX
                : starts_ms;
    playhead = pace->playhead < 0 ? 0
               : pace->playhead > VODLMS_KEY_MS_MAX * 1000
                 ? VODLMS_KEY_MS_MAX * 1000
               : pace->playhead;

    /* where the playhead must be, in thousandths of a content ms; the real
       time it takes to get there at speed, rounded up */
    due = (uint64_t) starts_ms > limits->allowance_ms
          ? ((uint64_t) starts_ms - limits->allowance_ms) * 1000 : 0;
    need = due > (uint64_t) playhead ? due - (uint64_t) playhead : 0;
    wait_ms = (need + limits->speed - 1) / limits->speed;

    *retry_after = (wait_ms + 999) / 1000;
    if (*retry_after == 0) {
        *retry_after = 1;
    }

    return VODLMS_KEY_TOO_EARLY;
}
