/*
 * vodlms core: express-session signed cookies, as made and checked by the
 * npm "cookie-signature" package (sign/unsign):
 *
 *     "s:" + sid + "." + base64(HMAC-SHA256(secret, sid)) without '='
 */

#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "vodlms_core.h"


/* base64 of a 32-byte MAC is 44 characters, the last one a '=' pad */
#define VODLMS_SIG_LEN  43


static int
vodlms_sid_ok(const char *sid, size_t len)
{
    size_t         i;
    unsigned char  c;

    if (len == 0 || len > VODLMS_SID_MAX) {
        return 0;
    }

    /* the sid becomes part of a Redis key and of log lines */
    for (i = 0; i < len; i++) {
        c = (unsigned char) sid[i];

        if (c < 0x21 || c == 0x7f) {
            return 0;
        }
    }

    return 1;
}


static vodlms_rc_t
vodlms_express_mac(const char *sid, size_t sid_len, const char *secret,
    size_t secret_len, char *sig)
{
    unsigned int   mac_len;
    unsigned char  mac[EVP_MAX_MD_SIZE];
    unsigned char  b64[4 * ((32 + 2) / 3) + 1];
    vodlms_rc_t    rc;

    if (secret_len > INT_MAX) {
        return VODLMS_EINTERNAL;
    }

    rc = VODLMS_EINTERNAL;

    /* an empty key must not be NULL: HMAC() would reuse a previous key */
    if (HMAC(EVP_sha256(), secret_len ? secret : "", (int) secret_len,
             (const unsigned char *) sid, sid_len, mac, &mac_len)
        != NULL
        && mac_len == 32
        && EVP_EncodeBlock(b64, mac, 32) == VODLMS_SIG_LEN + 1)
    {
        memcpy(sig, b64, VODLMS_SIG_LEN);
        rc = VODLMS_OK;
    }

    /* the MAC of an attacker-chosen sid is exactly what a forger needs */
    OPENSSL_cleanse(mac, sizeof(mac));
    OPENSSL_cleanse(b64, sizeof(b64));

    return rc;
}


vodlms_rc_t
vodlms_express_unsign(const char *val, size_t len,
    const vodlms_cstr_t *secrets, size_t nsecrets, vodlms_cstr_t *sid)
{
    int          match;
    char         expect[VODLMS_SIG_LEN];
    size_t       i, sid_len, sig_len;
    const char  *body, *dot, *sig;
    vodlms_rc_t  rc;

    sid->data = NULL;
    sid->len = 0;

    if (val == NULL || len < 2 || val[0] != 's' || val[1] != ':') {
        return VODLMS_ENOTSIGNED;
    }

    body = val + 2;

    /* the last '.': cookie-signature uses lastIndexOf(), sids may have dots */
    for (dot = val + len; dot > body && dot[-1] != '.'; dot--) {
        /* void */
    }

    if (dot == body) {
        return VODLMS_EMALFORMED;
    }

    dot--;
    sid_len = (size_t) (dot - body);
    sig = dot + 1;
    sig_len = (size_t) (val + len - sig);

    if (sig_len == 0 || !vodlms_sid_ok(body, sid_len)) {
        return VODLMS_EMALFORMED;
    }

    /* the length of a valid signature is public: no need to hide it */
    if (sig_len != VODLMS_SIG_LEN) {
        return VODLMS_EBADSIG;
    }

    match = 0;
    rc = VODLMS_OK;

    /* no early exit: every secret of the rotation list costs the same */
    for (i = 0; i < nsecrets; i++) {
        rc = vodlms_express_mac(body, sid_len, secrets[i].data,
                                secrets[i].len, expect);
        if (rc != VODLMS_OK) {
            break;
        }

        match |= CRYPTO_memcmp(expect, sig, VODLMS_SIG_LEN) == 0;
    }

    OPENSSL_cleanse(expect, sizeof(expect));

    if (rc != VODLMS_OK) {
        return rc;
    }

    if (!match) {
        return VODLMS_EBADSIG;
    }

    sid->data = body;
    sid->len = sid_len;

    return VODLMS_OK;
}


vodlms_rc_t
vodlms_express_sign(const char *sid, size_t sid_len, const char *secret,
    size_t secret_len, char *out, size_t out_size, size_t *out_len)
{
    size_t       need;
    vodlms_rc_t  rc;

    *out_len = 0;

    /* refuse what unsign would refuse, so fixtures cannot disagree */
    if (sid == NULL || !vodlms_sid_ok(sid, sid_len)) {
        return VODLMS_EMALFORMED;
    }

    need = 2 + sid_len + 1 + VODLMS_SIG_LEN;

    if (out_size < need) {
        return VODLMS_ETOOLONG;
    }

    rc = vodlms_express_mac(sid, sid_len, secret, secret_len,
                            out + 2 + sid_len + 1);
    if (rc != VODLMS_OK) {
        return rc;
    }

    out[0] = 's';
    out[1] = ':';
    memcpy(out + 2, sid, sid_len);
    out[2 + sid_len] = '.';

    *out_len = need;

    return VODLMS_OK;
}
