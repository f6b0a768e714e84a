/*
 * An S3 request signed with AWS Signature V4 by libcurl (CURLOPT_AWS_SIGV4),
 * and the parts of SigV4 that libcurl 7.88 (Debian 12) leaves to the caller:
 *
 *   - the canonical URI: curl signs the URL's path as it is given, so the
 *     key is percent-encoded here, once, as S3 wants it;
 *   - the canonical query: 7.88 signs the query as it is given (no sorting,
 *     no re-encoding, "uploads" not made "uploads="; curl 8.3.0 does that),
 *     so it is put in canonical form here;
 *   - the payload hash: 7.88 hashes CURLOPT_POSTFIELDS only; for a body
 *     sent by a read callback it signs the SHA-256 of nothing, so the caller
 *     hashes the body (or says UNSIGNED-PAYLOAD) and it goes in
 *     x-amz-content-sha256, which curl then signs and uses;
 *   - the session token: sent as X-Amz-Security-Token (curl signs it).
 *
 * curl adds X-Amz-Date from the clock, builds the canonical headers (host,
 * x-amz-date and every header given here), the string to sign, the key and
 * the Authorization header.  docs/s3.md says why this split, case by case.
 */

#ifndef VH_S3_SIGN_H
#define VH_S3_SIGN_H

#include <stddef.h>

#include <curl/curl.h>

#define VH_S3_UNSIGNED_PAYLOAD  "UNSIGNED-PAYLOAD"

typedef struct {
    const char          *access_key;
    const char          *secret_key;
    const char          *session_token;  /* NULL or "": none */
    const char          *region;
    const char          *service;        /* NULL: "s3" */
    const char          *base;           /* "https://bucket.s3.eu-west-3.amazonaws.com" */
    const char          *path;           /* raw, not encoded: "/hls/abc/720p/seg_00000.ts" */
    const char          *query;          /* raw or encoded, without '?'; NULL: none */
    const char * const  *headers;        /* "Name: value" lines to send and sign */
    size_t               nheaders;
    const char          *payload_hash;   /* hex SHA-256 of the body, or UNSIGNED-PAYLOAD;
                                            NULL: no x-amz-content-sha256 (not for
                                            S3: curl then signs the SHA-256 of
                                            CURLOPT_POSTFIELDS, or of nothing) */
} vh_s3_sign_t;

/*
 * Sets CURLOPT_URL, CURLOPT_PATH_AS_IS, CURLOPT_AWS_SIGV4, the credentials
 * and CURLOPT_HTTPHEADER on c (the method and body are the caller's).
 * *list and *url must outlive the transfer; free them with
 * curl_slist_free_all() and free().  0, or -1 on a bad argument (a header
 * line without a value: curl 7.88 would sign it although it is not sent)
 * or out of memory.
 */
int   vh_s3_sign(CURL *c, const vh_s3_sign_t *s, struct curl_slist **list,
    char **url);

/* each byte outside A-Za-z0-9-._~ (and '/' if keep_slash) as %XX, upper case */
char *vh_s3_uri_encode(const char *s, size_t len, int keep_slash);
/* name=value pairs decoded, encoded as above, sorted by name then value */
char *vh_s3_canonical_query(const char *query);
void  vh_s3_sha256_hex(const void *data, size_t len, char hex[65]);

#endif /* VH_S3_SIGN_H */
