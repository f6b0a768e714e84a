/*
 * libFuzzer target for the pure core's other parsers: progress beacons,
 * CloudFront URL-safe base64, policy building and wildcard matching, and
 * the whole edge verifier fed a request built from the input.
 *
 *   make -C t/unit BUILD=... fuzz   (or ./build.sh fuzz)
 *
 * The first input byte picks the parser; the rest is its input.  Nothing
 * may crash, leak or read out of bounds (ASan/UBSan), whatever it returns,
 * and the beacon parser (yajl) must give the verdict, reason and fields
 * the jansson parser it replaced gives (oracle_beacon.c).
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "vodlms_core.h"
#include "vodlms_cloudfront.h"
#include "oracle_beacon.h"


static void
fuzz_verify(const char *in, size_t size)
{
    const char           *nl;
    vodlms_cf_result_t    res;
    vodlms_cf_request_t   r;

    /* "url\ncookie": the parts of a viewer's request; no keys trusted */
    memset(&r, 0, sizeof(r));
    nl = memchr(in, '\n', size);

    if (vodlms_cf_url_split(in, nl ? (size_t) (nl - in) : size, &r)
        != VODLMS_OK)
    {
        return;
    }

    (void) vodlms_cf_path_safe(r.path.data, r.path.len);

    if (nl) {
        r.cookie.data = nl + 1;
        r.cookie.len = size - (size_t) (nl + 1 - in);
    }

    r.client_ip.data = "203.0.113.7";
    r.client_ip.len = 11;
    r.now = 1765000000;

    (void) vodlms_cf_verify(&r, &res);
}


/*
 * The input as a custom policy that carries a valid signature: without
 * one, the verifier stops before it parses anything, so this is the way
 * into the policy parser and the condition checks.  The key is made once,
 * P-256 for speed; nothing of it is secret.
 */
static void
fuzz_signed_policy(const char *in, size_t size)
{
    char                 *cookie, *p;
    size_t                n, sig_len;
    vodlms_cf_key_t       key;
    vodlms_cf_result_t    res;
    vodlms_cf_request_t   r;
    char                  sig[VODLMS_CF_SIG_B64_MAX];

    static EVP_PKEY      *pkey;

    if (pkey == NULL) {
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        if (pkey == NULL) {
            abort();
        }
    }

    if (size > VODLMS_CF_POLICY_B64_MAX / 4 * 3 - 4
        || vodlms_cf_sign_policy(pkey, VODLMS_CF_SHA256, in, size, sig,
                                 sizeof(sig), &sig_len) != VODLMS_OK)
    {
        return;
    }

    cookie = malloc(2 * size + sig_len + 256);
    if (cookie == NULL) {
        abort();
    }

    p = cookie;
    memcpy(p, "CloudFront-Policy=", 18);
    p += 18;

    if (vodlms_cf_b64url_encode(in, size, p, 2 * size + 8, &n)
        != VODLMS_OK)
    {
        free(cookie);
        return;
    }

    p += n;
    p += sprintf(p, "; CloudFront-Signature=%.*s; CloudFront-Key-Pair-Id="
                 "KFUZZ; CloudFront-Hash-Algorithm=SHA256",
                 (int) sig_len, sig);

    memset(&r, 0, sizeof(r));
    r.scheme.data = "https";
    r.scheme.len = 5;
    r.host.data = "cdn.example.test";
    r.host.len = 16;
    r.path.data = "/hls/42/seg_00001.ts";
    r.path.len = 20;
    r.cookie.data = cookie;
    r.cookie.len = (size_t) (p - cookie);
    r.client_ip.data = "203.0.113.7";
    r.client_ip.len = 11;
    r.now = 1765000000;

    key.id = "KFUZZ";
    key.id_len = 5;
    key.key = pkey;
    r.keys = &key;
    r.nkeys = 1;

    (void) vodlms_cf_verify(&r, &res);

    free(cookie);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                 match;
    char               *in, *out;
    size_t              n, half;
    vodlms_rc_t         rc, orc;
    const char         *why, *owhy;
    vodlms_beacon_t     b, ob;
    vodlms_progress_t   p;

    if (size < 1) {
        return 0;
    }

    /* an exact-length copy: any read past it is ASan's to see */
    in = malloc(size - 1 ? size - 1 : 1);
    out = malloc(2 * size + 64);
    if (in == NULL || out == NULL) {
        abort();
    }
    memcpy(in, data + 1, size - 1);
    size--;

    switch (data[0] % 6) {

    case 0:
        rc = vodlms_beacon_parse(in, size, 5.0, &b, &why);
        orc = oracle_beacon_parse(in, size, 5.0, &ob, &owhy);

        if (rc != orc || (why == NULL) != (owhy == NULL)
            || (why != NULL && strcmp(why, owhy) != 0)
            || (rc == VODLMS_OK
                && (strcmp(b.video_id, ob.video_id) != 0
                    || memcmp(&b.current_time, &ob.current_time,
                              sizeof(double)) != 0
                    || memcmp(&b.duration, &ob.duration, sizeof(double)) != 0
                    || b.event != ob.event
                    || b.playback_id_len != ob.playback_id_len
                    || strcmp(b.playback_id, ob.playback_id) != 0)))
        {
            abort();
        }

        if (rc == VODLMS_OK) {
            memset(&p, 0, sizeof(p));
            vodlms_progress_apply(&p, NULL, NULL, &b, 1000, 0.9);
            vodlms_progress_apply(&p, NULL, NULL, &b, 16000, 0.9);
        }
        break;

    case 1:
        (void) vodlms_cf_b64url_decode(in, size, (unsigned char *) out,
                                       2 * size + 64, &n);
        (void) vodlms_cf_b64url_encode(in, size, out, 2 * size + 64, &n);
        break;

    case 2:
        /* pattern and url split at the middle */
        half = size / 2;
        (void) vodlms_cf_resource_match(in, half, in + half, size - half,
                                        VODLMS_CF_MATCH_SECTIONS, &match);
        (void) vodlms_cf_resource_match(in, half, in + half, size - half,
                                        VODLMS_CF_MATCH_ANYWHERE, &match);

        /* "P*" takes the matcher's short cut, "P**" its table: one answer */
        if (half > 0 && in[half - 1] == '*') {
            int   again;
            char *p2 = malloc(half + 1);

            if (p2 == NULL) {
                abort();
            }
            memcpy(p2, in, half);
            p2[half] = '*';

            (void) vodlms_cf_resource_match(in, half, in + half, size - half,
                                            VODLMS_CF_MATCH_SECTIONS, &match);
            (void) vodlms_cf_resource_match(p2, half + 1, in + half,
                                            size - half,
                                            VODLMS_CF_MATCH_SECTIONS, &again);
            if (match != again) {
                abort();
            }
            free(p2);
        }
        break;

    case 3:
        (void) vodlms_cf_policy_build(in, size, 1767225600, 0, NULL, 0, out,
                                      2 * size + 64, &n);
        break;

    case 5:
        fuzz_signed_policy(in, size);
        break;

    default:
        fuzz_verify(in, size);
        break;
    }

    free(out);
    free(in);

    return 0;
}
