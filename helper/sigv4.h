/*
 * AWS Signature Version 4 (AWS4-HMAC-SHA256), pure: no I/O, no clock, no
 * globals.  The caller gives the request and the time; the signer returns
 * the canonical request, the string to sign, the signature and what to
 * send (Authorization + extra headers, or a presigned query string).
 */

#ifndef VH_SIGV4_H
#define VH_SIGV4_H

#include <stddef.h>

typedef struct {
    const char  *name;
    const char  *value;
} vh_sigv4_header_t;

typedef struct {
    const char  *access_key;
    const char  *secret_key;
    const char  *session_token;     /* NULL: none */
    const char  *region;
    const char  *service;
    const char  *amz_date;          /* "20150830T123600Z" (UTC) */
    int          normalize_path;    /* remove . and .., collapse //; S3: 0 */
    int          sign_body;         /* header form: add + sign x-amz-content-sha256 */
    long         expires;           /* presigned form: X-Amz-Expires, seconds */
} vh_sigv4_params_t;

typedef struct {
    const char               *method;
    const char               *path;         /* raw (not percent-encoded) path */
    const char               *query;        /* without '?', NULL or "" for none */
    const vh_sigv4_header_t  *headers;      /* must include Host */
    size_t                    nheaders;
    const void               *body;
    size_t                    body_len;
    const char               *payload_hash; /* hex; NULL: sha256(body); or "UNSIGNED-PAYLOAD" */
} vh_sigv4_request_t;

#define VH_SIGV4_MAX_ADD 3

typedef struct {
    char               *canonical_request;
    char               *string_to_sign;
    char               *signed_headers;     /* "host;x-amz-date" */
    char                signature[65];
    char               *authorization;      /* header form: the Authorization value */
    vh_sigv4_header_t   add[VH_SIGV4_MAX_ADD];  /* header form: headers to add (owned) */
    size_t              nadd;
    char               *presigned_query;    /* query form: the query to send */
} vh_sigv4_result_t;

/* 0 on success, -1 on a bad argument or allocation failure */
int  vh_sigv4_sign_headers(const vh_sigv4_params_t *p,
    const vh_sigv4_request_t *r, vh_sigv4_result_t *out);
int  vh_sigv4_presign(const vh_sigv4_params_t *p,
    const vh_sigv4_request_t *r, vh_sigv4_result_t *out);
void vh_sigv4_result_free(vh_sigv4_result_t *out);

/* building blocks, exposed for tests */
int   vh_sigv4_signing_key(const char *secret, const char *date8,
    const char *region, const char *service, unsigned char key[32]);
void  vh_sigv4_sha256_hex(const void *data, size_t len, char hex[65]);
/* RFC 3986 unreserved kept, everything else %XX (upper case); '/' kept if keep_slash */
char *vh_sigv4_uri_encode(const char *s, size_t len, int keep_slash);
char *vh_sigv4_canonical_path(const char *path, int normalize);
char *vh_sigv4_canonical_query(const char *query);

#endif /* VH_SIGV4_H */
