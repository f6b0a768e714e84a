/*
 * The reference for vodlms_beacon_parse(): the jansson-based parser the
 * module used until the yajl event parser replaced it on the hot path.
 * test_core.c and fuzz_core.c hold the two to the same verdict, reason and
 * fields on every input.
 */

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "oracle_beacon.h"


#define ORACLE_DURATION_MAX  (7.0 * 86400.0)


static int
oracle_number(json_t *v, double *out)
{
    if (json_is_integer(v)) {
        *out = (double) json_integer_value(v);

    } else if (json_is_real(v)) {
        *out = json_real_value(v);

    } else {
        return 0;
    }

    return isfinite(*out);
}


vodlms_rc_t
oracle_beacon_parse(const char *body, size_t len, double slack,
    vodlms_beacon_t *b, const char **why)
{
    size_t        n;
    json_t       *root, *v;
    const char   *s;
    json_error_t  err;
    char          idbuf[32];

    memset(b, 0, sizeof(vodlms_beacon_t));

    if (len > VODLMS_BEACON_MAX) {
        *why = "body_too_large";
        return VODLMS_ETOOLONG;
    }

    /* a raw NUL is never JSON, and jansson stops at it after a number */
    if (len == 0 || memchr(body, '\0', len) != NULL) {
        *why = "malformed_json";
        return VODLMS_EMALFORMED;
    }

    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        *why = "malformed_json";
        return VODLMS_EMALFORMED;
    }

    /* the same rule as the schema's ids: URL- and key-safe */
    v = json_object_get(root, "videoId");
    s = json_is_string(v) ? json_string_value(v) : NULL;
    n = s ? json_string_length(v) : 0;

    /* an integer id (an LMS with integer keys) names its printed value */
    if (json_is_integer(v)) {
        n = (size_t) snprintf(idbuf, sizeof(idbuf), "%" JSON_INTEGER_FORMAT,
                              json_integer_value(v));
        s = idbuf;
    }

    if (!vodlms_id_valid(s, n, VODLMS_VIDEO_ID_MAX)) {
        goto bad_id;
    }

    memcpy(b->video_id, s, n);
    b->video_id[n] = '\0';
    b->video_id_len = n;

    if (!oracle_number(json_object_get(root, "duration"), &b->duration)
        || b->duration <= 0 || b->duration > ORACLE_DURATION_MAX)
    {
        json_decref(root);
        *why = "bad_duration";
        return VODLMS_EMALFORMED;
    }

    if (!oracle_number(json_object_get(root, "currentTime"),
                       &b->current_time))
    {
        json_decref(root);
        *why = "bad_current_time";
        return VODLMS_EMALFORMED;
    }

    if (b->current_time < 0 || b->current_time > b->duration + slack) {
        json_decref(root);
        *why = "position_out_of_range";
        return VODLMS_EMALFORMED;
    }

    v = json_object_get(root, "event");

    if (v == NULL) {
        b->event = VODLMS_BEACON_TICK;

    } else if (!json_is_string(v)) {
        goto bad_event;

    } else if (strcmp(json_string_value(v), "tick") == 0) {
        b->event = VODLMS_BEACON_TICK;

    } else if (strcmp(json_string_value(v), "pause") == 0) {
        b->event = VODLMS_BEACON_PAUSE;

    } else if (strcmp(json_string_value(v), "ended") == 0) {
        b->event = VODLMS_BEACON_ENDED;

    } else {
        goto bad_event;
    }

    /* optional; when there, 32 lower-case hex digits */
    v = json_object_get(root, "playbackId");

    if (v != NULL) {
        s = json_is_string(v) ? json_string_value(v) : NULL;

        if (s == NULL || json_string_length(v) != VODLMS_PLAYBACK_ID_LEN
            || strspn(s, "0123456789abcdef") != VODLMS_PLAYBACK_ID_LEN)
        {
            json_decref(root);
            *why = "bad_playback_id";
            return VODLMS_EMALFORMED;
        }

        memcpy(b->playback_id, s, VODLMS_PLAYBACK_ID_LEN + 1);
        b->playback_id_len = VODLMS_PLAYBACK_ID_LEN;
    }

    json_decref(root);
    *why = NULL;

    return VODLMS_OK;

bad_id:
    json_decref(root);
    *why = "bad_video_id";
    return VODLMS_EMALFORMED;

bad_event:
    json_decref(root);
    *why = "bad_event";
    return VODLMS_EMALFORMED;
}
