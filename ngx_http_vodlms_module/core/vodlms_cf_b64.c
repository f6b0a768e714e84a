/*
 * vodlms core: CloudFront's URL-safe base64, the alphabet of Policy,
 * Signature, CloudFront-Policy and CloudFront-Signature.
 *
 * Standard base64 with its padding, then '+' -> '-', '=' -> '_' and
 * '/' -> '~'.  Not RFC 4648's base64url ('-', '_', no padding): '_' is the
 * pad here.  Our own table, so that the decoder can be strict.
 */

#include <string.h>

#include "vodlms_cloudfront.h"


static const char  vodlms_cf_b64_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-~";

#define VODLMS_CF_B64_PAD  '_'


vodlms_rc_t
vodlms_cf_b64url_encode(const void *in, size_t len, char *out,
    size_t out_size, size_t *out_len)
{
    size_t                i, n;
    uint32_t              v;
    const unsigned char  *s;

    *out_len = 0;

    if (len > (SIZE_MAX - 2) / 4 * 3) {
        return VODLMS_ETOOLONG;
    }

    n = VODLMS_CF_B64_LEN(len);

    if (out_size < n) {
        return VODLMS_ETOOLONG;
    }

    s = in;

    for (i = 0, n = 0; len - i >= 3; i += 3) {
        v = (uint32_t) s[i] << 16 | (uint32_t) s[i + 1] << 8 | s[i + 2];
        out[n++] = vodlms_cf_b64_chars[v >> 18];
        out[n++] = vodlms_cf_b64_chars[(v >> 12) & 0x3f];
        out[n++] = vodlms_cf_b64_chars[(v >> 6) & 0x3f];
        out[n++] = vodlms_cf_b64_chars[v & 0x3f];
    }

    if (len - i == 1) {
        v = (uint32_t) s[i] << 16;
        out[n++] = vodlms_cf_b64_chars[v >> 18];
        out[n++] = vodlms_cf_b64_chars[(v >> 12) & 0x3f];
        out[n++] = VODLMS_CF_B64_PAD;
        out[n++] = VODLMS_CF_B64_PAD;

    } else if (len - i == 2) {
        v = (uint32_t) s[i] << 16 | (uint32_t) s[i + 1] << 8;
        out[n++] = vodlms_cf_b64_chars[v >> 18];
        out[n++] = vodlms_cf_b64_chars[(v >> 12) & 0x3f];
        out[n++] = vodlms_cf_b64_chars[(v >> 6) & 0x3f];
        out[n++] = VODLMS_CF_B64_PAD;
    }

    *out_len = n;

    return VODLMS_OK;
}


static int
vodlms_cf_b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }

    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }

    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }

    if (c == '-') {
        return 62;
    }

    if (c == '~') {
        return 63;
    }

    return -1;
}


vodlms_rc_t
vodlms_cf_b64url_decode(const char *in, size_t len, unsigned char *out,
    size_t out_size, size_t *out_len)
{
    int       d[4];
    size_t    i, k, n, pad;
    uint32_t  v;

    *out_len = 0;

    if (len % 4 != 0) {
        return VODLMS_EMALFORMED;
    }

    if (len == 0) {
        return VODLMS_OK;
    }

    pad = 0;

    if (in[len - 1] == VODLMS_CF_B64_PAD) {
        pad = in[len - 2] == VODLMS_CF_B64_PAD ? 2 : 1;
    }

    if (out_size < len / 4 * 3 - pad) {
        return VODLMS_ETOOLONG;
    }

    for (i = 0, n = 0; i < len; i += 4) {
        for (k = 0; k < 4; k++) {
            /* the pad is only legal in the last quantum's tail */
            if (i + 4 == len && k >= 4 - pad) {
                d[k] = 0;
                continue;
            }

            d[k] = vodlms_cf_b64_val((unsigned char) in[i + k]);

            if (d[k] < 0) {
                return VODLMS_EMALFORMED;
            }
        }

        v = (uint32_t) d[0] << 18 | (uint32_t) d[1] << 12
            | (uint32_t) d[2] << 6 | (uint32_t) d[3];

        if (i + 4 < len || pad == 0) {
            out[n++] = (unsigned char) (v >> 16);
            out[n++] = (unsigned char) (v >> 8);
            out[n++] = (unsigned char) v;
            continue;
        }

        /* non-zero unused bits would give a second spelling of the bytes */
        if ((pad == 2 && (v & 0xffff) != 0) || (pad == 1 && (v & 0xff) != 0))
        {
            return VODLMS_EMALFORMED;
        }

        out[n++] = (unsigned char) (v >> 16);

        if (pad == 1) {
            out[n++] = (unsigned char) (v >> 8);
        }
    }

    *out_len = n;

    return VODLMS_OK;
}
