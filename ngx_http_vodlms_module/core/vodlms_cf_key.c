/*
 * vodlms core: CloudFront signing and verification keys from PEM.
 *
 * Only what CloudFront takes (RSA-2048, ECDSA P-256), plus larger RSA for
 * a self-hosted edge; anything else is a configuration error that
 * "nginx -t" reports, not a surprise at the first request.
 */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "vodlms_cloudfront.h"


#define VODLMS_CF_PEM_MAX      65536
#define VODLMS_CF_RSA_MIN      2048
#define VODLMS_CF_RSA_MAX      4096


static void
vodlms_cf_err(char *err, size_t err_size, const char *fmt, ...)
{
    va_list  ap;

    if (err == NULL || err_size == 0) {
        return;
    }

    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}


/* the default callback would prompt on the controlling terminal */
static int
vodlms_cf_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void) buf;
    (void) size;
    (void) rwflag;
    (void) u;

    return -1;
}


static vodlms_rc_t
vodlms_cf_key_check(EVP_PKEY *key, char *err, size_t err_size)
{
    int          bits;
    char         group[64];
    size_t       group_len;
    const char  *name;

    if (EVP_PKEY_is_a(key, "RSA")) {
        bits = EVP_PKEY_get_bits(key);

        if (bits < VODLMS_CF_RSA_MIN || bits > VODLMS_CF_RSA_MAX) {
            vodlms_cf_err(err, err_size, "RSA key of %d bits, need %d to %d "
                          "(CloudFront takes RSA-2048)", bits,
                          VODLMS_CF_RSA_MIN, VODLMS_CF_RSA_MAX);
            return VODLMS_ETYPE;
        }

        return VODLMS_OK;
    }

    if (EVP_PKEY_is_a(key, "EC")) {
        if (EVP_PKEY_get_group_name(key, group, sizeof(group), &group_len)
            != 1)
        {
            vodlms_cf_err(err, err_size, "EC key without a named curve, "
                          "need P-256");
            return VODLMS_ETYPE;
        }

        if (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0)
        {
            vodlms_cf_err(err, err_size, "EC key on curve %s, need P-256",
                          group);
            return VODLMS_ETYPE;
        }

        return VODLMS_OK;
    }

    name = EVP_PKEY_get0_type_name(key);

    vodlms_cf_err(err, err_size, "unsupported %s key, need RSA-2048 or EC "
                  "P-256", name ? name : "unknown");

    return VODLMS_ETYPE;
}


static vodlms_rc_t
vodlms_cf_load(const char *pem, size_t len, int private, EVP_PKEY **key,
    char *err, size_t err_size)
{
    BIO            *bio;
    char            reason[160];
    EVP_PKEY       *k;
    vodlms_rc_t     rc;
    unsigned long   e;

    *key = NULL;

    vodlms_cf_err(err, err_size, "%s", "");

    if (pem == NULL || len == 0) {
        vodlms_cf_err(err, err_size, "empty PEM");
        return VODLMS_EMALFORMED;
    }

    if (len > VODLMS_CF_PEM_MAX) {
        vodlms_cf_err(err, err_size, "PEM of %zu bytes, the limit is %d",
                      len, VODLMS_CF_PEM_MAX);
        return VODLMS_ETOOLONG;
    }

    ERR_clear_error();

    bio = BIO_new_mem_buf(pem, (int) len);
    if (bio == NULL) {
        vodlms_cf_err(err, err_size, "BIO_new_mem_buf() failed");
        return VODLMS_EINTERNAL;
    }

    if (private) {
        k = PEM_read_bio_PrivateKey(bio, NULL, vodlms_cf_no_passphrase, NULL);

    } else {
        k = PEM_read_bio_PUBKEY(bio, NULL, vodlms_cf_no_passphrase, NULL);
    }

    BIO_free(bio);

    if (k == NULL) {
        e = ERR_peek_last_error();
        reason[0] = '\0';

        if (e != 0) {
            ERR_error_string_n(e, reason, sizeof(reason));
        }

        ERR_clear_error();

        vodlms_cf_err(err, err_size, "%s (%s)",
                      private
                      ? "no unencrypted private key in PEM, expected "
                        "\"BEGIN PRIVATE KEY\", \"BEGIN RSA PRIVATE KEY\" "
                        "or \"BEGIN EC PRIVATE KEY\""
                      : "no public key in PEM, expected "
                        "\"BEGIN PUBLIC KEY\"",
                      reason[0] ? reason : "no OpenSSL error");

        return VODLMS_EMALFORMED;
    }

    rc = vodlms_cf_key_check(k, err, err_size);

    ERR_clear_error();

    if (rc != VODLMS_OK) {
        EVP_PKEY_free(k);
        return rc;
    }

    *key = k;

    return VODLMS_OK;
}


vodlms_rc_t
vodlms_cf_key_load_pem(const char *pem, size_t len, EVP_PKEY **key,
    char *err, size_t err_size)
{
    return vodlms_cf_load(pem, len, 1, key, err, err_size);
}


vodlms_rc_t
vodlms_cf_pubkey_load_pem(const char *pem, size_t len, EVP_PKEY **key,
    char *err, size_t err_size)
{
    return vodlms_cf_load(pem, len, 0, key, err, err_size);
}
