/*
 * A caption upload's language, label and default flag, as the request
 * gives them (vodlms_upload_caption): checked and made canonical here, so
 * that what goes into video_captions, the job and the HLS master is always
 * one of the few forms players and PostgreSQL's checks accept.  The
 * caption file itself is never looked at in nginx: vodlms-helper parses it.
 */

#include <string.h>

#include "vodlms_core.h"


vodlms_rc_t
vodlms_caption_lang(const char *in, size_t len, char *out)
{
    size_t         i, j, start, n;
    unsigned       subtags;
    unsigned char  c;

    if (len == 0 || len > VODLMS_CAPTION_LANG_MAX) {
        return VODLMS_EMALFORMED;
    }

    subtags = 0;
    start = 0;

    for (i = 0; i <= len; i++) {

        if (i < len && in[i] != '-') {
            continue;
        }

        n = i - start;

        if (subtags == 0 ? n < 2 || n > 3 : n < 1 || n > 8) {
            return VODLMS_EMALFORMED;
        }

        if (++subtags > 4) {
            return VODLMS_EMALFORMED;
        }

        for (j = start; j < i; j++) {
            c = (unsigned char) in[j];

            if (c >= 'A' && c <= 'Z') {
                c |= 0x20;

            } else if (!(c >= 'a' && c <= 'z')
                       && !(subtags > 1 && c >= '0' && c <= '9'))
            {
                return VODLMS_EMALFORMED;
            }

            /* lower case now: a region upper, a script's first letter */
            if (subtags > 1 && (n == 2 || (n == 4 && j == start))
                && c >= 'a' && c <= 'z')
            {
                c &= ~0x20;
            }

            out[j] = (char) c;
        }

        if (i < len) {
            out[i] = '-';
        }

        start = i + 1;
    }

    return VODLMS_OK;
}


vodlms_rc_t
vodlms_caption_label(const char *in, size_t len, char *out, size_t *out_len)
{
    int                   hi, lo;
    size_t                i, n;
    unsigned char         c;
    const unsigned char  *p;

    n = 0;

    for (i = 0; i < len; i++) {
        c = (unsigned char) in[i];

        if (c == '+') {
            c = ' ';

        } else if (c == '%') {
            if (len - i < 3) {
                return VODLMS_EMALFORMED;
            }

            hi = vodlms_hex_value((unsigned char) in[i + 1]);
            lo = vodlms_hex_value((unsigned char) in[i + 2]);

            if (hi < 0 || lo < 0) {
                return VODLMS_EMALFORMED;
            }

            c = (unsigned char) (hi * 16 + lo);
            i += 2;
        }

        out[n++] = (char) c;
    }

    if (n == 0 || n > VODLMS_CAPTION_LABEL_MAX || !vodlms_utf8_valid(out, n)) {
        return VODLMS_EMALFORMED;
    }

    p = (const unsigned char *) out;

    for (i = 0; i < n; i++) {
        c = p[i];

        if (c < 0x20 || c == 0x7f || c == '"') {
            return VODLMS_EMALFORMED;
        }

        /* U+0080-U+009F; U+2028, U+2029 (well-formed: the bytes exist) */
        if ((c == 0xc2 && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f)
            || (c == 0xe2 && p[i + 1] == 0x80
                && (p[i + 2] == 0xa8 || p[i + 2] == 0xa9)))
        {
            return VODLMS_EMALFORMED;
        }

        /*
         * hls.js finds tags anywhere in a master's text, a quoted NAME
         * included ("#EXT-X-CONTENT-STEERING:SERVER-URI=..." in a label
         * would send every student's player to the instructor's server),
         * and reads "{$" as a variable reference
         */
        if ((c == '#' && n - i >= 4
             && (p[i + 1] == 'E' || p[i + 1] == 'e')
             && (p[i + 2] == 'X' || p[i + 2] == 'x')
             && (p[i + 3] == 'T' || p[i + 3] == 't'))
            || (c == '{' && i + 1 < n && p[i + 1] == '$'))
        {
            return VODLMS_EMALFORMED;
        }
    }

    *out_len = n;

    return VODLMS_OK;
}


int
vodlms_caption_flag(const char *in, size_t len)
{
    size_t        i, k;
    char          c, w[5];
    const char   *words[] = { "0", "false", "no", "off",
                              "1", "true", "yes", "on" };

    if (len == 0) {
        return 0;
    }

    if (len > sizeof(w)) {
        return -1;
    }

    for (i = 0; i < len; i++) {
        c = in[i];
        w[i] = (c >= 'A' && c <= 'Z') ? (char) (c | 0x20) : c;
    }

    /* the whole length: "no" followed by a NUL is not "no" */
    for (k = 0; k < sizeof(words) / sizeof(words[0]); k++) {
        if (strlen(words[k]) == len && memcmp(w, words[k], len) == 0) {
            return k < 4 ? 0 : 1;
        }
    }

    return -1;
}
