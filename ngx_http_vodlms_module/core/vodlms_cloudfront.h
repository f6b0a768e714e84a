/*
 * vodlms pure core: CloudFront signed URLs and signed cookies, both the
 * issuer (policy, signature, URL, cookie set) and the verifier of a
 * self-hosted edge.
 *
 * The ground truth is /work/shared/vectors/cloudfront (sign-cases.json,
 * verify-cases.json and its README), checked byte for byte by
 * t/unit/test_cloudfront.c.  The rules of vodlms_core.h hold: (pointer,
 * length) inputs, caller buffers, nothing allocated outlives a call, no
 * nginx.  EVP_PKEY objects are loaded once at configuration time and then
 * only read, so one key may serve every worker and thread.
 *
 * Issuing, in the order the glue calls it:
 *
 *     vodlms_cf_key_load_pem()              at configuration time
 *     vodlms_cf_prepare()                   policy bytes (the cache key)
 *     vodlms_cf_sign_policy()               RSA/ECDSA, or a cached signature
 *     vodlms_cf_url_build() or vodlms_cf_cookies()
 *
 * vodlms_cf_sign() is prepare + sign_policy in one call.
 *
 * Verifying: vodlms_cf_verify() with the request as the viewer sent it and
 * a key table; the answer is one of the reason codes of the vectors.
 */

#ifndef VODLMS_CLOUDFRONT_H
#define VODLMS_CLOUDFRONT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "vodlms_core.h"


/* ---------------------------------------------------------------- limits */

/* a URL or Resource we sign, and the request URL the verifier rebuilds */
#define VODLMS_CF_URL_MAX           8192
/* a policy Resource (the verifier refuses longer ones) */
#define VODLMS_CF_RESOURCE_MAX      4096
#define VODLMS_CF_KEY_PAIR_ID_MAX   64
/* raw signature: RSA-4096 (512 bytes) is the largest key we load */
#define VODLMS_CF_SIG_MAX           512
/* the base64 of n bytes, padding included */
#define VODLMS_CF_B64_LEN(n)        (4 * (((size_t) (n) + 2) / 3))
#define VODLMS_CF_SIG_B64_MAX       VODLMS_CF_B64_LEN(VODLMS_CF_SIG_MAX)
/* a Policy / CloudFront-Policy value the verifier accepts, encoded */
#define VODLMS_CF_POLICY_B64_MAX    16384
/* decimal int64 and its sign */
#define VODLMS_CF_INT_LEN           20


typedef enum {
    VODLMS_CF_SHA1 = 0,             /* CloudFront's default */
    VODLMS_CF_SHA256                /* sent as Hash-Algorithm=SHA256 */
} vodlms_cf_hash_t;

typedef enum {
    VODLMS_CF_CANNED = 0,           /* Expires=; the policy is never sent */
    VODLMS_CF_CUSTOM                /* Policy= */
} vodlms_cf_type_t;


/* ------------------------------------------------------------------ keys */

/*
 * Load a PEM private key: RSA as PKCS#1 ("BEGIN RSA PRIVATE KEY") or
 * PKCS#8 ("BEGIN PRIVATE KEY"), or EC P-256 ("BEGIN EC PRIVATE KEY" or
 * PKCS#8).  RSA keys must have 2048..4096 bits (CloudFront itself takes
 * RSA-2048 and ECDSA P-256 only); other curves and key types (RSA-PSS,
 * Ed25519, DSA...) are refused.  Encrypted keys are refused without ever
 * prompting on a terminal.
 *
 * On success *key is a new reference (EVP_PKEY_free() it).  On failure
 * *key is NULL and err (if err_size > 0) holds a NUL-terminated lower-case
 * message without a trailing period, for "nginx -t":
 *   VODLMS_EMALFORMED  no PEM key could be read
 *   VODLMS_ETYPE       a key of an unsupported type, size or curve
 *   VODLMS_ETOOLONG    over 64 KiB of PEM
 *   VODLMS_EINTERNAL   an OpenSSL failure
 * The OpenSSL error queue is left empty either way.
 */
vodlms_rc_t vodlms_cf_key_load_pem(const char *pem, size_t len,
    EVP_PKEY **key, char *err, size_t err_size);

/* The same for a public key ("BEGIN PUBLIC KEY", SubjectPublicKeyInfo). */
vodlms_rc_t vodlms_cf_pubkey_load_pem(const char *pem, size_t len,
    EVP_PKEY **key, char *err, size_t err_size);


/* ---------------------------------------------------------------- base64 */

/*
 * CloudFront's URL-safe base64: standard base64 WITH padding, then
 * '+' -> '-', '=' -> '_', '/' -> '~'.  Writes VODLMS_CF_B64_LEN(len) bytes
 * (no NUL); VODLMS_ETOOLONG if out_size is smaller.
 */
vodlms_rc_t vodlms_cf_b64url_encode(const void *in, size_t len, char *out,
    size_t out_size, size_t *out_len);

/*
 * The reverse, strict: only the alphabet above, a length that is a
 * multiple of 4, at most two '_' and only at the end, and zero unused bits
 * in the last character (so every byte string has exactly one encoding).
 * out needs len / 4 * 3 bytes.  VODLMS_EMALFORMED for anything else.
 */
vodlms_rc_t vodlms_cf_b64url_decode(const char *in, size_t len,
    unsigned char *out, size_t out_size, size_t *out_len);


/* ----------------------------------------------------------------- IPv4 */

/*
 * Dotted-quad IPv4 "a.b.c.d", and with prefix != NULL also "a.b.c.d/n"
 * (n = 0..32; a bare address gives 32).  Octets 0..255 in decimal with no
 * leading zeros, no spaces.  *addr is in host byte order.  An
 * IPv4-mapped IPv6 address ("::ffff:a.b.c.d", as a dual-stack socket
 * reports it) is taken as its IPv4 address, without a prefix.
 * VODLMS_EMALFORMED for anything else (IPv6 included).
 */
vodlms_rc_t vodlms_cf_ipv4_parse(const char *s, size_t len, uint32_t *addr,
    unsigned *prefix);


/* ---------------------------------------------------------------- issuer */

/*
 * getSignedUrl's URL normalisation (@aws-sdk/cloudfront-signer 3.1166.0):
 * the scheme and host are kept as they are; every path segment is
 * percent-decoded and re-encoded like encodeURIComponent (space -> %20,
 * "~!'()*" stay literal, %7e -> '~', %2f stays %2F); in the query,
 * existing %XX escapes pass with upper-case hex, '+', '&' and '=' are
 * kept, "'" becomes %27 and the rest is encoded like encodeURIComponent.
 * An empty query ("x?") is dropped.
 *
 * The url must start with "http://" or "https://" and have no '#'; a path
 * '%' not followed by two hex digits, or a path segment that does not
 * decode to UTF-8, is VODLMS_EMALFORMED (decodeURIComponent would throw).
 * out needs at most 3 * len bytes.
 */
vodlms_rc_t vodlms_cf_url_normalize(const char *url, size_t len, char *out,
    size_t out_size, size_t *out_len);

/*
 * The policy, byte for byte as JSON.stringify writes it (no whitespace,
 * bare numbers):
 *
 *   {"Statement":[{"Resource":"<res>","Condition":{"DateLessThan":
 *   {"AWS:EpochTime":E}[,"DateGreaterThan":{"AWS:EpochTime":S}]
 *   [,"IpAddress":{"AWS:SourceIp":"a.b.c.d/n"}]}}]}
 *
 * With start == 0 and ip == NULL this is also the canned policy.  The
 * resource is JSON-escaped ('"', '\', control bytes as JSON.stringify
 * does) and must be 1..VODLMS_CF_URL_MAX bytes of valid UTF-8.  expires
 * must be > 0, start 0 (none) or 0 < start < expires; a bare IPv4 gets
 * "/32" (see vodlms_cf_ipv4_parse()).  VODLMS_EMALFORMED for a bad input,
 * VODLMS_ETOOLONG when out_size is short (6 * resource_len + 200 bytes is
 * always enough).
 */
vodlms_rc_t vodlms_cf_policy_build(const char *resource, size_t resource_len,
    int64_t expires, int64_t start, const char *ip, size_t ip_len,
    char *out, size_t out_size, size_t *out_len);

/*
 * Sign policy bytes: RSASSA-PKCS1-v1_5 for an RSA key (deterministic: the
 * same bytes as `openssl dgst -sha1 -sign`), ECDSA (DER, randomised) for
 * an EC key, with SHA1 or SHA256.  Writes the URL-safe base64 of the
 * signature into sig (VODLMS_CF_SIG_B64_MAX bytes are always enough).
 */
vodlms_rc_t vodlms_cf_sign_policy(EVP_PKEY *key, vodlms_cf_hash_t hash,
    const char *policy, size_t policy_len, char *sig, size_t sig_size,
    size_t *sig_len);


/* what the issuer is asked to sign */
typedef struct {
    const char        *url;             /* the URL the viewer will fetch */
    size_t             url_len;
    const char        *resource;        /* policy Resource; NULL: the url */
    size_t             resource_len;
    int64_t            expires;         /* DateLessThan, epoch seconds */
    int64_t            start;           /* DateGreaterThan; 0 = none */
    const char        *ip;              /* IPv4 or CIDR; NULL = none */
    size_t             ip_len;
    const char        *key_pair_id;     /* [A-Za-z0-9_-], 1..64 bytes */
    size_t             key_pair_id_len;
    vodlms_cf_hash_t   hash;
} vodlms_cf_sign_t;

typedef enum {
    VODLMS_CF_FOR_URL = 0,              /* getSignedUrl */
    VODLMS_CF_FOR_COOKIES               /* getSignedCookies */
} vodlms_cf_target_t;

/*
 * A prepared (and, once signature_len > 0, signed) credential set.  url,
 * policy and policy_b64 point into the caller's buffer, key_pair_id into
 * the request; the arrays are inline, so the struct may be copied but
 * must outlive what points into it (vodlms_cf_cookies()).
 */
typedef struct {
    vodlms_cf_type_t   type;
    vodlms_cf_hash_t   hash;
    int64_t            expires;
    vodlms_cstr_t      url;             /* the base of the signed URL */
    vodlms_cstr_t      policy;          /* the exact bytes signed */
    vodlms_cstr_t      policy_b64;      /* custom only, else NULL/0 */
    vodlms_cstr_t      key_pair_id;
    char               expires_str[VODLMS_CF_INT_LEN + 1];
    size_t             expires_str_len;
    char               signature[VODLMS_CF_SIG_B64_MAX];
    size_t             signature_len;   /* 0 until signed */
} vodlms_cf_signed_t;

/*
 * Canned or custom, by the README's rule: canned only when the Resource is
 * the url itself (resource NULL or byte-equal to url), it has no '*', and
 * there is no start and no ip.
 */
vodlms_cf_type_t vodlms_cf_policy_type(const vodlms_cf_sign_t *in);

/* a buffer size that is always enough for vodlms_cf_prepare() */
size_t vodlms_cf_prepare_size(const vodlms_cf_sign_t *in);

/*
 * Everything but the signature.  What is normalised, and why (it is what
 * makes every RSA case of sign-cases.json byte-identical):
 *
 *  - VODLMS_CF_FOR_URL: the url goes through vodlms_cf_url_normalize(), as
 *    getSignedUrl does, and that normalised url is both the base of the
 *    signed URL and, when resource is NULL, the Resource.  So a canned
 *    URL signs ".../my%20video~v2/..." and the viewer requests exactly it.
 *  - VODLMS_CF_FOR_COOKIES: the url is used as given, as getSignedCookies
 *    does (the vectors' cookiePolicy signs a literal space).  An edge
 *    rebuilds a canned policy from the percent-encoded request line, so
 *    pass an already normalised url (or, better, a wildcard resource:
 *    custom cookies are what a player needs anyway).
 *  - An explicit resource is signed byte for byte in both cases: it may
 *    hold wildcards, which normalisation would mangle ('?').
 *
 * buf (see vodlms_cf_prepare_size()) holds url, policy and policy_b64.
 * VODLMS_EMALFORMED for a bad input (a url that is not http(s), a '#', an
 * empty or over-long url/resource, invalid UTF-8, a bad ip, expires <= 0,
 * start >= expires, a bad key pair id), VODLMS_ETOOLONG for a short buf.
 */
vodlms_rc_t vodlms_cf_prepare(const vodlms_cf_sign_t *in,
    vodlms_cf_target_t target, char *buf, size_t buf_size,
    vodlms_cf_signed_t *out);

/* vodlms_cf_prepare() + vodlms_cf_sign_policy() into out->signature */
vodlms_rc_t vodlms_cf_sign(const vodlms_cf_sign_t *in,
    vodlms_cf_target_t target, EVP_PKEY *key, char *buf, size_t buf_size,
    vodlms_cf_signed_t *out);

/*
 * The signed URL, in the SDK's parameter order: canned "Expires",
 * "Key-Pair-Id", "Signature"; custom "Policy", "Key-Pair-Id",
 * "Signature"; then "Hash-Algorithm=SHA256" for SHA256.  Joined to url
 * with '?', or '&' when url already has a query.  vodlms_cf_url_size() is
 * the exact length.  VODLMS_EMALFORMED when s is not signed yet.
 */
size_t vodlms_cf_url_size(const vodlms_cf_signed_t *s);
vodlms_rc_t vodlms_cf_url_build(const vodlms_cf_signed_t *s, char *out,
    size_t out_size, size_t *out_len);

/*
 * The cookie set (names and values only; Path, Domain, Secure, HttpOnly
 * are the glue's): CloudFront-Expires (canned) or CloudFront-Policy
 * (custom), CloudFront-Signature, CloudFront-Key-Pair-Id, and
 * CloudFront-Hash-Algorithm=SHA256 for SHA256.  Returns how many were
 * written (3 or 4; 0 when s is not signed); the values point into *s.
 */
#define VODLMS_CF_COOKIES_MAX  4

typedef struct {
    vodlms_cstr_t  name;
    vodlms_cstr_t  value;
} vodlms_cf_cookie_t;

size_t vodlms_cf_cookies(const vodlms_cf_signed_t *s,
    vodlms_cf_cookie_t out[VODLMS_CF_COOKIES_MAX]);


/* -------------------------------------------------------------- verifier */

/* the reason codes of verify-cases.json, in this order */
typedef enum {
    VODLMS_CF_ALLOW = 0,
    VODLMS_CF_EXPIRED,
    VODLMS_CF_NOT_YET_VALID,
    VODLMS_CF_RESOURCE_MISMATCH,
    VODLMS_CF_BAD_SIGNATURE,
    VODLMS_CF_IP_MISMATCH,
    VODLMS_CF_UNKNOWN_KEY_PAIR_ID,
    VODLMS_CF_MISSING_SIGNATURE
} vodlms_cf_verdict_t;

/* "allow", "expired", ... exactly as in the vectors' reason_code */
const char *vodlms_cf_verdict_str(vodlms_cf_verdict_t v);


/* the CloudFront parameters, from a query string or from cookies */
enum {
    VODLMS_CF_P_EXPIRES = 0,
    VODLMS_CF_P_POLICY,
    VODLMS_CF_P_SIGNATURE,
    VODLMS_CF_P_KEY_PAIR_ID,
    VODLMS_CF_P_HASH_ALGORITHM,
    VODLMS_CF_P_N
};

typedef struct {
    vodlms_cstr_t  v[VODLMS_CF_P_N];    /* raw values; data NULL: absent */
    unsigned       present;             /* 1 << VODLMS_CF_P_* */
    unsigned       dup;                 /* ... seen more than once */
} vodlms_cf_params_t;

/*
 * Split a query string (without the '?', as sent) into the CloudFront
 * parameters (Expires, Policy, Signature, Key-Pair-Id, Hash-Algorithm,
 * names matched exactly) and the rest: every other '&'-separated piece,
 * byte for byte and in the original order, joined with '&'.  The rest is
 * what a canned Resource carries after its '?'.  A name given twice keeps
 * its first value and sets its dup bit.  rest_size >= len is enough;
 * VODLMS_ETOOLONG otherwise.
 */
vodlms_rc_t vodlms_cf_query_split(const char *query, size_t len,
    vodlms_cf_params_t *p, char *rest, size_t rest_size, size_t *rest_len);

/*
 * The CloudFront-* cookies of a Cookie header value (first of each name,
 * through vodlms_cookie_get()); other cookies are ignored.
 * VODLMS_ENOTFOUND when there is none.
 */
vodlms_rc_t vodlms_cf_cookie_params(const char *cookie, size_t len,
    vodlms_cf_params_t *p);


/*
 * The policy Resource against the request URL, '*' = zero or more bytes,
 * '?' = exactly one.  Two readings (the vectors pass under both):
 *
 *  - VODLMS_CF_MATCH_SECTIONS (the default, and the reference oracle's
 *    reading): a '*' stays inside its own part of the URL.  It never
 *    consumes the "://", the '/' that starts the path or the '?' that
 *    starts the query: a '*' in the host cannot reach into the path, and
 *    a Resource "<origin>/hls/42/" + '*' matches any path below hls/42/
 *    (inner '/' are fine) but no query string.  A '?' still matches any
 *    one byte, the query's '?' included, so a Resource that is a URL with
 *    a query ("...m3u8?lang=en") matches that URL, as AWS documents.
 *  - VODLMS_CF_MATCH_ANYWHERE: AWS's documented reading, wildcards match
 *    anything anywhere (that Resource also covers ".../seg.ts?x=1").
 *
 * Dynamic programming over (resource, url): O(resource_len * url_len)
 * time and O(url_len) memory whatever the pattern, never exponential.
 * *match is 1 or 0; VODLMS_ENOMEM if the row cannot be allocated.
 */
typedef enum {
    VODLMS_CF_MATCH_SECTIONS = 0,
    VODLMS_CF_MATCH_ANYWHERE
} vodlms_cf_match_t;

vodlms_rc_t vodlms_cf_resource_match(const char *pat, size_t pat_len,
    const char *url, size_t url_len, vodlms_cf_match_t mode, int *match);


/* one trusted key: the Key-Pair-Id (public key id) and its public key */
typedef struct {
    const char  *id;
    size_t       id_len;
    EVP_PKEY    *key;
} vodlms_cf_key_t;

/*
 * A request as the viewer sent it.  path and query are RAW (still
 * percent-encoded, i.e. from the request line, not nginx's decoded $uri),
 * query without its '?'.  host is the Host as the viewer sent it (with a
 * port if one was sent): a canned policy covers "scheme://host/path".
 * cookie is the whole Cookie header value (may be empty); client_ip the
 * viewer's address as text.
 */
/*
 * An optional cache of signature checks, supplied by the caller (the nginx
 * glue keeps it in shared memory): verifying RSA costs far more than the
 * rest.  lookup() says whether these exact bytes were verified before with
 * this key and hash; store() is told of a good signature once its policy
 * is known, with the policy's expiry (no use keeping it longer).
 *
 * With the signature, the verifier stores a value: for a custom policy the
 * conditions it parsed from those exact bytes (so a hit also spares the
 * JSON parse), for a canned one nothing.  lookup() copies it back into
 * val (at most val_size bytes, *val_len = 0 when there is none or it does
 * not fit).  A value comes back only with the bytes it was stored for.
 */
#define VODLMS_CF_SIG_CACHE_VALUE_MAX  512

typedef struct {
    void   *data;
    int   (*lookup)(void *data, const char *key_id, size_t key_id_len,
                    vodlms_cf_hash_t hash, const unsigned char *sig,
                    size_t sig_len, const char *policy, size_t policy_len,
                    unsigned char *val, size_t val_size, size_t *val_len);
    void  (*store)(void *data, const char *key_id, size_t key_id_len,
                   vodlms_cf_hash_t hash, const unsigned char *sig,
                   size_t sig_len, const char *policy, size_t policy_len,
                   const unsigned char *val, size_t val_len,
                   int64_t expires);
} vodlms_cf_sig_cache_t;

typedef struct {
    vodlms_cstr_t            scheme;    /* "https" */
    vodlms_cstr_t            host;
    vodlms_cstr_t            path;
    vodlms_cstr_t            query;
    vodlms_cstr_t            cookie;
    vodlms_cstr_t            client_ip;
    int64_t                  now;       /* epoch seconds */
    const vodlms_cf_key_t   *keys;
    size_t                   nkeys;
    vodlms_cf_match_t        match;
    const vodlms_cf_sig_cache_t  *sig_cache;   /* NULL: none */
} vodlms_cf_request_t;

typedef enum {
    VODLMS_CF_SRC_NONE = 0,
    VODLMS_CF_SRC_URL,
    VODLMS_CF_SRC_COOKIE
} vodlms_cf_source_t;

typedef struct {
    vodlms_cf_verdict_t  verdict;
    vodlms_cf_source_t   source;        /* the credentials used */
    const char          *detail;        /* static text for the log line */
    int64_t              expires;       /* DateLessThan, once the signature
                                           has checked out, else 0 */
    int                  sig_cached;    /* the sig_cache knew it */
} vodlms_cf_result_t;

/*
 * "https://host/path?query" -> the four parts of a vodlms_cf_request_t
 * (pointers into url).  VODLMS_EMALFORMED without "://" or with a '#'.
 * For tests and for the glue's logging; the glue has the parts already.
 */
vodlms_rc_t vodlms_cf_url_split(const char *url, size_t len,
    vodlms_cf_request_t *r);

/*
 * Is a raw request path (as sent, before any decoding) one the signature
 * check can be trusted with?  The policy is matched against these bytes,
 * but the web server serves the path it gets after decoding %XX, merging
 * slashes and resolving "." and "..": "/hls/42/../43/x.ts" and
 * "/hls/42/%2e%2e%2f43/x.ts" both match a wildcard Resource for video 42
 * and would serve video 43.  Returns 0 (refuse) for a "." or ".." segment,
 * plain or with %2e in it, for an encoded '/' or backslash (%2f, %5c)
 * anywhere, and for a raw '#' (nginx resolves "..#" like "../"); 1
 * otherwise.
 */
int vodlms_cf_path_safe(const char *path, size_t len);

/*
 * Verify a request, by the README's "Verification rules":
 *
 *  1. Any of Expires, Policy, Signature, Key-Pair-Id, Hash-Algorithm in
 *     the query makes it a signed-URL request and the cookies are not
 *     looked at, however valid.  Otherwise the CloudFront-* cookies are
 *     used; with none of them: missing_signature.
 *  2. No Signature or no Key-Pair-Id, or neither Policy nor Expires:
 *     missing_signature.  An unknown Key-Pair-Id: unknown_key_pair_id.
 *  3. Policy: the decoded Policy; canned: rebuilt from
 *     scheme://host/path[?rest] (the query minus the CloudFront params)
 *     and Expires.  Policy wins when both are sent.
 *  4. The signature is checked over those exact bytes BEFORE any parsing,
 *     SHA256 if Hash-Algorithm is "SHA256", SHA1 if it is absent or
 *     "SHA1".  Anything that stops the check (junk base64, a repeated
 *     parameter, an unknown Hash-Algorithm, an Expires that is not a
 *     decimal number) is bad_signature.
 *  5. The signed policy must then be exactly one Statement with a
 *     Resource string and a Condition of DateLessThan (integer) and
 *     optionally DateGreaterThan (integer) and IpAddress/AWS:SourceIp; any
 *     other key or shape fails closed as bad_signature (the bytes do not
 *     form a policy this edge can enforce), detail says what.
 *  6. now < DateLessThan (else expired), now > DateGreaterThan (else
 *     not_yet_valid), the Resource matches (r->match), the client's IPv4
 *     is inside the CIDR (an unparsable CIDR or a non-IPv4 client:
 *     ip_mismatch).
 *
 * Parameter values are percent-decoded before use (a client may send
 * "%7E" for '~').  A request URL (scheme://host/path, or with the query
 * minus the CloudFront parameters) over VODLMS_CF_URL_MAX, or a query over
 * VODLMS_CF_URL_MAX + 2 * VODLMS_CF_POLICY_B64_MAX, is resource_mismatch
 * ("request too long").  Returns VODLMS_OK with res filled whenever a verdict
 * was reached (deny included); VODLMS_ENOMEM / VODLMS_EINTERNAL otherwise,
 * and then res is a deny (bad_signature) all the same: fail closed.
 */
vodlms_rc_t vodlms_cf_verify(const vodlms_cf_request_t *r,
    vodlms_cf_result_t *res);


#endif /* VODLMS_CLOUDFRONT_H */
