/*
 * Unit tests of core/vodlms_key.c: what the key endpoint (vodlms_hls_key)
 * decides without nginx: the version and index of a key URI, the key as
 * PostgreSQL's hex, the pace limit's speed, and the verdict of the key
 * budget and the pace limit.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vodlms_key.h"
#include "tap.h"


#define LIT(s)  s, sizeof(s) - 1


static void
test_version(void)
{
    char  max[VODLMS_KEY_VERSION_MAX + 2];

    ok(vodlms_key_version_valid(LIT("20261204T221500Z-3f9a1c2b")),
       "version: the helper's token");
    ok(vodlms_key_version_valid(LIT("v1")), "version: v1");
    ok(vodlms_key_version_valid(LIT("a.b_c-D")), "version: . _ - and both cases");
    ok(vodlms_key_version_valid(LIT("...")), "version: three dots are a name");
    ok(!vodlms_key_version_valid(LIT(".")), "version: \".\" refused");
    ok(!vodlms_key_version_valid(LIT("..")), "version: \"..\" refused");
    ok(!vodlms_key_version_valid(LIT("")), "version: empty refused");
    ok(!vodlms_key_version_valid(NULL, 0), "version: NULL refused");
    ok(!vodlms_key_version_valid(LIT("v1/../v2")), "version: '/' refused");
    ok(!vodlms_key_version_valid(LIT("v1'")), "version: a quote refused");
    ok(!vodlms_key_version_valid(LIT("v 1")), "version: a space refused");
    ok(!vodlms_key_version_valid("v\0001", 3), "version: a NUL refused");
    ok(!vodlms_key_version_valid(LIT("v\xc3\xa9")), "version: UTF-8 refused");

    memset(max, 'a', sizeof(max));
    ok(vodlms_key_version_valid(max, VODLMS_KEY_VERSION_MAX),
       "version: 64 bytes taken");
    ok(!vodlms_key_version_valid(max, VODLMS_KEY_VERSION_MAX + 1),
       "version: 65 bytes refused");
}


static void
test_index(void)
{
    uint32_t  i;

    i = 7;
    ok(vodlms_key_index_parse(LIT("0"), &i) && i == 0, "index: 0");
    ok(vodlms_key_index_parse(LIT("42"), &i) && i == 42, "index: 42");
    ok(vodlms_key_index_parse(LIT("007"), &i) && i == 7,
       "index: leading zeros are the number");
    ok(vodlms_key_index_parse(LIT("999999999"), &i) && i == 999999999,
       "index: 9 digits, the largest");
    i = 5;
    ok(!vodlms_key_index_parse(LIT("1000000000"), &i) && i == 5,
       "index: 10 digits refused, *index untouched");
    ok(!vodlms_key_index_parse(LIT("4294967296"), &i),
       "index: 2^32 refused (no wrap)");
    ok(!vodlms_key_index_parse(LIT(""), &i), "index: empty refused");
    ok(!vodlms_key_index_parse(LIT("-1"), &i), "index: a sign refused");
    ok(!vodlms_key_index_parse(LIT("+1"), &i), "index: '+' refused");
    ok(!vodlms_key_index_parse(LIT("1e3"), &i), "index: 1e3 refused");
    ok(!vodlms_key_index_parse(LIT(" 1"), &i), "index: a space refused");
    ok(!vodlms_key_index_parse(LIT("0x1"), &i), "index: hex refused");
}


static void
test_hex(void)
{
    unsigned char  key[VODLMS_KEY_LEN];

    static const unsigned char  want[VODLMS_KEY_LEN] = {
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
        0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0xfe, 0xff
    };

    is_int(vodlms_key_from_hex(LIT("000102030405060708090a0b0c0dfeff"), key),
           VODLMS_OK, "hex: 32 digits");
    ok(memcmp(key, want, sizeof(want)) == 0, "hex: the 16 bytes");

    is_int(vodlms_key_from_hex(LIT("000102030405060708090A0B0C0DFEFF"), key),
           VODLMS_OK, "hex: upper case");
    ok(memcmp(key, want, sizeof(want)) == 0, "hex: the same bytes");

    is_int(vodlms_key_from_hex(LIT("\\x000102030405060708090a0b0c0dfeff"),
                               key),
           VODLMS_EMALFORMED, "hex: bytea's \\x form refused (encode() "
           "gives bare hex)");
    is_int(vodlms_key_from_hex(LIT("000102030405060708090a0b0c0dfe"), key),
           VODLMS_EMALFORMED, "hex: 15 bytes refused");
    is_int(vodlms_key_from_hex(LIT("000102030405060708090a0b0c0dfeff00"),
                               key),
           VODLMS_EMALFORMED, "hex: 17 bytes refused");
    is_int(vodlms_key_from_hex(LIT("000102030405060708090a0b0c0dfegg"), key),
           VODLMS_EMALFORMED, "hex: a non-hex digit refused");
    is_int(vodlms_key_from_hex(NULL, 32, key), VODLMS_EMALFORMED,
           "hex: NULL refused");
}


static void
test_speed(void)
{
    uint64_t  s;

    s = 0;
    ok(vodlms_key_speed_parse(LIT("2x"), &s) && s == 2000, "speed: 2x");
    ok(vodlms_key_speed_parse(LIT("2"), &s) && s == 2000, "speed: 2");
    ok(vodlms_key_speed_parse(LIT("1.5x"), &s) && s == 1500, "speed: 1.5x");
    ok(vodlms_key_speed_parse(LIT("0.25x"), &s) && s == 250, "speed: 0.25x");
    ok(vodlms_key_speed_parse(LIT("0.1x"), &s) && s == 100,
       "speed: 0.1x, the slowest");
    ok(vodlms_key_speed_parse(LIT("100x"), &s) && s == 100000,
       "speed: 100x, the fastest");
    ok(vodlms_key_speed_parse(LIT("1.125x"), &s) && s == 1125,
       "speed: three decimals");
    s = 9;
    ok(!vodlms_key_speed_parse(LIT("1.1255x"), &s) && s == 9,
       "speed: four decimals refused, *speed untouched");
    ok(!vodlms_key_speed_parse(LIT("0.09x"), &s), "speed: below 0.1x refused");
    ok(!vodlms_key_speed_parse(LIT("100.001x"), &s),
       "speed: above 100x refused");
    ok(!vodlms_key_speed_parse(LIT("0x"), &s), "speed: 0x refused");
    ok(!vodlms_key_speed_parse(LIT("x"), &s), "speed: x alone refused");
    ok(!vodlms_key_speed_parse(LIT(""), &s), "speed: empty refused");
    ok(!vodlms_key_speed_parse(LIT(".5x"), &s), "speed: .5x refused");
    ok(!vodlms_key_speed_parse(LIT("2.x"), &s), "speed: 2.x refused");
    ok(!vodlms_key_speed_parse(LIT("1..5x"), &s), "speed: two dots refused");
    ok(!vodlms_key_speed_parse(LIT("2xx"), &s), "speed: 2xx refused");
    ok(!vodlms_key_speed_parse(LIT("-2x"), &s), "speed: a sign refused");
    ok(!vodlms_key_speed_parse(LIT("99999999999x"), &s),
       "speed: eleven digits refused");
}


/* what the script answered: released up to r, the playhead (thousandths
   of a content ms), released or not */
static vodlms_key_pace_t *
pace(int64_t r, int64_t playhead, int released)
{
    static vodlms_key_pace_t  p;

    p.released_ms = r;
    p.playhead = playhead;
    p.released = released;

    return &p;
}


static void
test_judge(void)
{
    uint64_t             retry;
    vodlms_key_limits_t  l;

    memset(&l, 0, sizeof(l));

    /* no limits: everything goes */
    is_int(vodlms_key_judge(&l, 1000000, 5000, pace(-1, 0, 1), 3600000,
                            &retry),
           VODLMS_KEY_ALLOW, "no limits: allowed");
    is_int((int) retry, 0, "no limits: no Retry-After");

    /* budget 20 */
    l.budget = 20;
    is_int(vodlms_key_judge(&l, 20, 599000, pace(-1, 0, 1), 0, &retry),
           VODLMS_KEY_ALLOW, "budget: the 20th fetch of 20 allowed");
    is_int(vodlms_key_judge(&l, 21, 599000, pace(-1, 0, 0), 0, &retry),
           VODLMS_KEY_OVER_BUDGET, "budget: the 21st refused");
    is_int((int) retry, 599, "budget: Retry-After is what is left of the "
           "window");
    vodlms_key_judge(&l, 21, 598001, pace(-1, 0, 0), 0, &retry);
    is_int((int) retry, 599, "budget: rounded up to whole seconds");
    vodlms_key_judge(&l, 21, 0, pace(-1, 0, 0), 0, &retry);
    is_int((int) retry, 1, "budget: a window that just ended: Retry-After 1");
    vodlms_key_judge(&l, 21, -2, pace(-1, 0, 0), 0, &retry);
    is_int((int) retry, 1, "budget: a negative TTL counts as 0");

    /* pace 1x, allowance 30 s: the script decides, the judge follows */
    l.budget = 0;
    l.speed = 1000;
    l.allowance_ms = 30000;
    is_int(vodlms_key_judge(&l, 0, 0, pace(0, 0, 1), 600000, &retry),
           VODLMS_KEY_ALLOW, "pace: released by the script: allowed");
    is_int((int) retry, 0, "pace: ... no Retry-After");
    is_int(vodlms_key_judge(&l, 0, 0, pace(0, 0, 0), 600000, &retry),
           VODLMS_KEY_TOO_EARLY, "pace: not released: refused");
    is_int((int) retry, 570, "pace: 600 s past key 0, 30 s allowed: due in "
           "570 s");
    vodlms_key_judge(&l, 0, 0, pace(0, 100000000, 0), 600000, &retry);
    is_int((int) retry, 470, "pace: the playhead at 100 s: due in 470 s");
    vodlms_key_judge(&l, 0, 0, pace(1200000, 1300000000, 0), 1800000,
                     &retry);
    is_int((int) retry, 470, "pace: from the playhead, not from 0");
    vodlms_key_judge(&l, 0, 0, pace(0, 569999000, 0), 600000, &retry);
    is_int((int) retry, 1, "pace: due in 1 ms: Retry-After 1");
    vodlms_key_judge(&l, 0, 0, pace(0, 569999999, 0), 600000, &retry);
    is_int((int) retry, 1, "pace: due in a thousandth of a ms: 1");
    vodlms_key_judge(&l, 0, 0, pace(0, 900000000, 0), 600000, &retry);
    is_int((int) retry, 1, "pace: refused though due (a race): at least 1");
    vodlms_key_judge(&l, 0, 0, pace(0, -5000, 0), 600000, &retry);
    is_int((int) retry, 570, "pace: a negative playhead counts as 0");
    vodlms_key_judge(&l, 0, 0, pace(0, 0, 0), 20000, &retry);
    is_int((int) retry, 1, "pace: a key within the allowance (a race): 1");

    /* pace 2x, no allowance */
    l.speed = 2000;
    l.allowance_ms = 0;
    vodlms_key_judge(&l, 0, 0, pace(0, 0, 0), 600001, &retry);
    is_int((int) retry, 301, "pace 2x: due in 300.0005 s: 301");
    vodlms_key_judge(&l, 0, 0, pace(0, 599998000, 0), 600000, &retry);
    is_int((int) retry, 1, "pace 2x: 2 ms of content: 1 ms, Retry-After 1");
    vodlms_key_judge(&l, 0, 0, pace(0, 0, 0), 600000, &retry);
    is_int((int) retry, 300, "pace 2x: 600 s of content: 300 s");

    /* pace 1.5x: 1500.003 s of content take 1000.002 s, rounded up */
    l.speed = 1500;
    vodlms_key_judge(&l, 0, 0, pace(0, 0, 0), 1500003, &retry);
    is_int((int) retry, 1001, "pace 1.5x: 1500.003 s of content: 1000.002 s "
           "rounded up to 1001");

    /* both: the budget first */
    l.budget = 3;
    is_int(vodlms_key_judge(&l, 4, 10000, pace(0, 0, 0), 600000, &retry),
           VODLMS_KEY_OVER_BUDGET, "both: over budget and ahead: budget");
    is_int((int) retry, 10, "both: the budget's Retry-After");
    is_int(vodlms_key_judge(&l, 3, 10000, pace(0, 0, 0), 600000, &retry),
           VODLMS_KEY_TOO_EARLY, "both: within budget, ahead: pace");

    /* huge values: clamped, no overflow */
    l.speed = 100;
    l.allowance_ms = 0;
    is_int(vodlms_key_judge(&l, 0, 0, pace(-1, INT64_MIN, 0), INT64_MAX,
                            &retry),
           VODLMS_KEY_TOO_EARLY, "huge start at 0.1x: refused");
    ok(retry > 0 && retry <= 10000000000000ULL,
       "... with a finite Retry-After");
    vodlms_key_judge(&l, 0, 0, pace(INT64_MIN, INT64_MAX, 0), 1000, &retry);
    is_int((int) retry, 1, "huge playhead: clamped, Retry-After 1");
}


int
main(void)
{
    test_version();
    test_index();
    test_hex();
    test_speed();
    test_judge();

    return done_testing();
}
