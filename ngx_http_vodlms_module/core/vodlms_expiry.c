/*
 * vodlms core: session expiry values, as epoch (milli)seconds or as
 * RFC 3339 date-times (what JSON.stringify(new Date()) writes).
 *
 * No mktime()/timegm(): the result must not depend on TZ or the locale.
 */

#include "vodlms_core.h"


/* a second count above this (year 5138) can only be milliseconds */
#define VODLMS_MS_THRESHOLD  100000000000LL


static int
vodlms_digits(const char *p, int n)
{
    int  i, v;

    for (i = 0, v = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return -1;
        }

        v = v * 10 + (p[i] - '0');
    }

    return v;
}


/* days since 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant) */
static int64_t
vodlms_days_from_civil(int64_t y, int m, int d)
{
    int64_t  era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + doe - 719468;
}


static int
vodlms_days_in_month(int y, int m)
{
    static const int  mdays[12] = { 31, 28, 31, 30, 31, 30,
                                    31, 31, 30, 31, 30, 31 };

    if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) {
        return 29;
    }

    return mdays[m - 1];
}


static vodlms_rc_t
vodlms_parse_rfc3339(const char *s, size_t len, int64_t *epoch)
{
    int          year, mon, mday, hour, min, sec, oh, om, sign;
    const char  *p, *end;

    /* shortest form: "YYYY-MM-DDTHH:MM:SSZ" */
    if (len < 20) {
        return VODLMS_EMALFORMED;
    }

    if (s[4] != '-' || s[7] != '-' || s[13] != ':' || s[16] != ':'
        || (s[10] != 'T' && s[10] != 't' && s[10] != ' '))
    {
        return VODLMS_EMALFORMED;
    }

    year = vodlms_digits(s, 4);
    mon = vodlms_digits(s + 5, 2);
    mday = vodlms_digits(s + 8, 2);
    hour = vodlms_digits(s + 11, 2);
    min = vodlms_digits(s + 14, 2);
    sec = vodlms_digits(s + 17, 2);

    if (year < 0 || mon < 1 || mon > 12 || mday < 1
        || mday > vodlms_days_in_month(year, mon)
        || hour < 0 || hour > 23 || min < 0 || min > 59
        || sec < 0 || sec > 60)            /* 60: a leap second */
    {
        return VODLMS_EMALFORMED;
    }

    p = s + 19;
    end = s + len;

    /* fractional seconds: at least one digit, truncated away */
    if (*p == '.') {
        p++;

        if (p == end || *p < '0' || *p > '9') {
            return VODLMS_EMALFORMED;
        }

        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    if (p == end) {
        return VODLMS_EMALFORMED;     /* no offset: local time is ambiguous */
    }

    if (*p == 'Z' || *p == 'z') {
        if (end - p != 1) {
            return VODLMS_EMALFORMED;
        }

        oh = 0;
        om = 0;
        sign = 1;

    } else if (*p == '+' || *p == '-') {
        if (end - p != 6 || p[3] != ':') {
            return VODLMS_EMALFORMED;
        }

        sign = *p == '-' ? -1 : 1;
        oh = vodlms_digits(p + 1, 2);
        om = vodlms_digits(p + 4, 2);

        if (oh < 0 || oh > 23 || om < 0 || om > 59) {
            return VODLMS_EMALFORMED;
        }

    } else {
        return VODLMS_EMALFORMED;
    }

    *epoch = vodlms_days_from_civil(year, mon, mday) * 86400
             + hour * 3600 + min * 60 + sec
             - sign * (oh * 3600 + om * 60);

    return VODLMS_OK;
}


vodlms_rc_t
vodlms_parse_expiry(const char *s, size_t len, int64_t *epoch)
{
    size_t   i;
    int64_t  v;

    *epoch = 0;

    if (s == NULL || len == 0) {
        return VODLMS_EMALFORMED;
    }

    for (i = 0, v = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            break;
        }

        if (v > (INT64_MAX - (s[i] - '0')) / 10) {
            return VODLMS_EMALFORMED;
        }

        v = v * 10 + (s[i] - '0');
    }

    if (i < len) {
        return vodlms_parse_rfc3339(s, len, epoch);
    }

    *epoch = v > VODLMS_MS_THRESHOLD ? v / 1000 : v;

    return VODLMS_OK;
}
