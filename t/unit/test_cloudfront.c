/*
 * Unit tests of the CloudFront core (vodlms_cloudfront.h): TAP on stdout.
 *
 * The ground truth is the vectors in $VODLMS_VECTORS_DIR (default:
 * <repo>/../shared/vectors/cloudfront), read at run time: every RSA case
 * of sign-cases.json must come out byte-identical, every case of
 * verify-cases.json must get its reason code.  Missing vectors are a
 * failure, never a skip.
 *
 * Inputs to the functions under test are copied into buffers of exactly
 * their length (no trailing NUL), so that ASan/valgrind catch a read past
 * `len`.  ECDSA keys are generated here (EVP_PKEY_Q_keygen) rather than
 * shipped: nothing to keep in sync.
 */

#define _GNU_SOURCE                 /* memmem(), only in the tests */

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "vodlms_cloudfront.h"
#include "tap.h"
#include "helpers.h"


#ifndef VODLMS_REPO_ROOT
#define VODLMS_REPO_ROOT  "."
#endif


/* LIT() cannot be a macro argument: it would count as two */
#define is_lit(got, got_len, lit, ...)                                        \
    is_mem((got), (got_len), (lit), sizeof(lit) - 1, __VA_ARGS__)

#define KPID      "K2JCJMDEHXQW5F"
#define HOST      "https://cdn.example.test"
#define EXPIRES   1767225600
#define START     1764547200
#define NOW       1765000000
#define CLIENT    "203.0.113.7"


static char        vectors[1024];
static EVP_PKEY   *priv;            /* test_private_key.pem */
static EVP_PKEY   *pub;             /* test_public_key.pem */
static EVP_PKEY   *other_pub;       /* test_other_public_key.pem */


/* ------------------------------------------------------------- helpers */

static char *
xstrdup(const char *s)
{
    char    *p;
    size_t   n;

    n = strlen(s);
    p = xdup(s, n + 1);
    p[n] = '\0';

    return p;
}


/* printf into a new NUL-terminated string */
static char *
xfmt(const char *fmt, ...)
{
    int       n;
    char     *p;
    va_list   ap;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);

    if (n < 0) {
        abort();
    }

    p = malloc((size_t) n + 1);
    if (p == NULL) {
        abort();
    }

    va_start(ap, fmt);
    vsnprintf(p, (size_t) n + 1, fmt, ap);
    va_end(ap);

    return p;
}


/* the vectors are the point of this file: without them, fail and stop */
static void
bail(const char *fmt, ...)
{
    char     msg[1024];
    va_list  ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    ok(0, "%s", msg);
    diag("vectors directory: %s (set VODLMS_VECTORS_DIR)", vectors);
    done_testing();
    exit(1);
}


static char *
slurp(const char *name, size_t *len)
{
    FILE    *f;
    char    *p, path[1200];
    long     n;

    snprintf(path, sizeof(path), "%s/%s", vectors, name);

    f = fopen(path, "rb");
    if (f == NULL) {
        bail("cannot open %s", path);
    }

    /* bail() does not return, but the compilers are not told so */
    n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;

    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) {
        bail("cannot size %s", path);
    }

    p = malloc((size_t) n + 1);
    if (p == NULL || fread(p, 1, (size_t) n, f) != (size_t) n) {
        bail("cannot read %s", path);
    }

    fclose(f);
    p[n] = '\0';
    *len = (size_t) n;

    return p;
}


static EVP_PKEY *
load_key(const char *name, int private)
{
    char         err[256], *pem, *exact;
    size_t       len;
    EVP_PKEY    *key;
    vodlms_rc_t  rc;

    pem = slurp(name, &len);
    exact = xdup(pem, len);

    rc = private ? vodlms_cf_key_load_pem(exact, len, &key, err, sizeof(err))
                 : vodlms_cf_pubkey_load_pem(exact, len, &key, err,
                                             sizeof(err));

    free(exact);
    free(pem);

    if (rc != VODLMS_OK) {
        bail("cannot load %s: %s", name, err);
    }

    return key;
}


static json_t *
load_json(const char *name)
{
    char          *text;
    size_t         len;
    json_t        *j;
    json_error_t   err;

    text = slurp(name, &len);
    j = json_loadb(text, len, 0, &err);
    free(text);

    if (!json_is_array(j) || json_array_size(j) == 0) {
        bail("%s: not a non-empty JSON array (%s, line %d)", name, err.text,
             err.line);
    }

    return j;
}


/* a string member, or NULL when absent or null */
static const char *
jstr(json_t *obj, const char *key)
{
    json_t  *v;

    v = json_object_get(obj, key);

    return json_is_string(v) ? json_string_value(v) : NULL;
}


static const char *
source_str(vodlms_cf_source_t s)
{
    switch (s) {
    case VODLMS_CF_SRC_URL:     return "url";
    case VODLMS_CF_SRC_COOKIE:  return "cookie";
    case VODLMS_CF_SRC_NONE:    break;
    }

    return "none";
}


/* -------------------------------------------------------------- verify */

typedef struct {
    const char          *url;           /* whole request URL */
    const char          *cookie;        /* Cookie header or NULL */
    const char          *client;        /* client address or NULL */
    int64_t              now;
    vodlms_cf_match_t    match;
    const vodlms_cf_key_t *keys;        /* NULL: the vectors' one key */
    size_t               nkeys;
    const vodlms_cf_sig_cache_t *sig_cache;
} vreq_t;


/* verify through exact-length copies; 0 on a setup failure */
static int
run_verify(const vreq_t *q, vodlms_cf_result_t *res, vodlms_rc_t *rc)
{
    char                 *url, *cookie, *client;
    vodlms_cf_key_t       key;
    vodlms_cf_request_t   r;

    memset(&r, 0, sizeof(r));

    url = xdup(q->url, strlen(q->url));

    if (vodlms_cf_url_split(url, strlen(q->url), &r) != VODLMS_OK) {
        free(url);
        return 0;
    }

    cookie = q->cookie ? xdup(q->cookie, strlen(q->cookie)) : NULL;
    client = q->client ? xdup(q->client, strlen(q->client)) : NULL;

    r.cookie.data = cookie;
    r.cookie.len = q->cookie ? strlen(q->cookie) : 0;
    r.client_ip.data = client;
    r.client_ip.len = q->client ? strlen(q->client) : 0;
    r.now = q->now;
    r.match = q->match;
    r.sig_cache = q->sig_cache;

    if (q->keys != NULL) {
        r.keys = q->keys;
        r.nkeys = q->nkeys;

    } else {
        key.id = KPID;
        key.id_len = sizeof(KPID) - 1;
        key.key = pub;
        r.keys = &key;
        r.nkeys = 1;
    }

    *rc = vodlms_cf_verify(&r, res);

    free(client);
    free(cookie);
    free(url);

    return 1;
}


static int
verdict_at(const char *file, int line, const vreq_t *q,
    vodlms_cf_verdict_t exp, const char *t)
{
    int                  pass;
    vodlms_rc_t          rc;
    vodlms_cf_result_t   res;

    if (!run_verify(q, &res, &rc)) {
        return tap_ok(0, file, line, "%s: request url splits", t);
    }

    pass = tap_is_mem(vodlms_cf_verdict_str(res.verdict),
                      strlen(vodlms_cf_verdict_str(res.verdict)),
                      vodlms_cf_verdict_str(exp),
                      strlen(vodlms_cf_verdict_str(exp)), file, line,
                      "%s: %s", t, vodlms_cf_verdict_str(exp));

    if (!pass || rc != VODLMS_OK) {
        tap_diag("    detail: %s, rc %s", res.detail ? res.detail : "(null)",
                 vodlms_rc_str(rc));
    }

    return pass;
}

#define VERDICT(q, exp, t)  verdict_at(__FILE__, __LINE__, (q), (exp), (t))


/* sign policy bytes with a key, as cookies; the Cookie header */
static char *
signed_cookies(EVP_PKEY *key, vodlms_cf_hash_t hash, const char *policy,
    size_t len, const char *kpid)
{
    char         sig[VODLMS_CF_SIG_B64_MAX], *b64, *cookie;
    size_t       sig_len, b64_len;

    b64 = malloc(VODLMS_CF_B64_LEN(len) + 1);
    if (b64 == NULL) {
        abort();
    }

    if (vodlms_cf_sign_policy(key, hash, policy, len, sig, sizeof(sig),
                              &sig_len)
        != VODLMS_OK
        || vodlms_cf_b64url_encode(policy, len, b64, VODLMS_CF_B64_LEN(len),
                                   &b64_len)
           != VODLMS_OK)
    {
        free(b64);
        return NULL;
    }

    cookie = xfmt("CloudFront-Policy=%.*s; CloudFront-Signature=%.*s; "
                  "CloudFront-Key-Pair-Id=%s%s", (int) b64_len, b64,
                  (int) sig_len, sig, kpid,
                  hash == VODLMS_CF_SHA256
                  ? "; CloudFront-Hash-Algorithm=SHA256" : "");
    free(b64);

    return cookie;
}


/* a policy string signed with the vectors' key, checked as cookies */
static void
policy_at(const char *file, int line, const char *policy, const char *url,
    const char *client, int64_t now, vodlms_cf_verdict_t exp, const char *t)
{
    char    *cookie;
    vreq_t   q;

    cookie = signed_cookies(priv, VODLMS_CF_SHA1, policy, strlen(policy),
                            KPID);
    if (cookie == NULL) {
        tap_ok(0, file, line, "%s: signing", t);
        return;
    }

    memset(&q, 0, sizeof(q));
    q.url = url;
    q.cookie = cookie;
    q.client = client;
    q.now = now;

    verdict_at(file, line, &q, exp, t);

    free(cookie);
}

#define POLICY(policy, url, client, now, exp, t)                              \
    policy_at(__FILE__, __LINE__, (policy), (url), (client), (now), (exp), (t))

#define POL(cond)                                                             \
    "{\"Statement\":[{\"Resource\":\"" HOST "/hls/42/*\",\"Condition\":{"      \
    cond "}}]}"

#define DLT  "\"DateLessThan\":{\"AWS:EpochTime\":1767225600}"


/* ------------------------------------------------------------- base64 */

static void
b64_at(const char *file, int line, const char *raw, size_t raw_len,
    const char *enc)
{
    char            out[128], *in;
    size_t          n;
    unsigned char   dec[128];

    in = xdup(raw, raw_len);

    if (is_rc_at(vodlms_cf_b64url_encode(in, raw_len, out, sizeof(out), &n),
                 VODLMS_OK, file, line, "b64 encode %zu bytes: rc", raw_len))
    {
        tap_is_mem(out, n, enc, strlen(enc), file, line,
                   "b64 encode %zu bytes: %s", raw_len, enc);
    }

    free(in);
    in = xdup(enc, strlen(enc));

    if (is_rc_at(vodlms_cf_b64url_decode(in, strlen(enc), dec, sizeof(dec),
                                         &n),
                 VODLMS_OK, file, line, "b64 decode %s: rc", enc))
    {
        tap_is_mem((char *) dec, n, raw, raw_len, file, line,
                   "b64 decode %s: bytes", enc);
    }

    free(in);
}

#define B64(raw, enc)  b64_at(__FILE__, __LINE__, LIT(raw), enc)


static void
b64_bad_at(const char *file, int line, const char *enc, size_t len,
    const char *t)
{
    char           *in;
    size_t          n;
    unsigned char   dec[128];

    in = xdup(enc, len);
    is_rc_at(vodlms_cf_b64url_decode(in, len, dec, sizeof(dec), &n),
             VODLMS_EMALFORMED, file, line, "b64 decode refuses %s", t);
    free(in);
}

#define B64_BAD(enc, t)  b64_bad_at(__FILE__, __LINE__, LIT(enc), t)


static void
test_b64(void)
{
    int             i, good;
    char            enc[VODLMS_CF_B64_LEN(300)];
    size_t          len, n, m;
    unsigned char   raw[300], dec[300];

    /* RFC 4648 section 10, then CloudFront's transform */
    B64("", "");
    B64("f", "Zg__");
    B64("fo", "Zm8_");
    B64("foo", "Zm9v");
    B64("foob", "Zm9vYg__");
    B64("fooba", "Zm9vYmE_");
    B64("foobar", "Zm9vYmFy");

    /* the three characters that differ from standard base64 */
    B64("\xfb\xff", "-~8_");
    B64("\xfb\xef\xbe", "----");
    B64("\xff\xff\xff", "~~~~");
    B64("\x00\x00\x00", "AAAA");
    B64("\x00", "AA__");

    B64_BAD("Zg", "a length that is not a multiple of 4");
    B64_BAD("Zg==", "standard '=' padding");
    B64_BAD("-~8=", "standard '=' padding after URL-safe characters");
    B64_BAD("+/8_", "the standard '+' and '/'");
    B64_BAD("Zh__", "non-zero unused bits after one byte");
    B64_BAD("Zm9_", "non-zero unused bits after two bytes");
    B64_BAD("Z___", "three pad characters");
    B64_BAD("____", "only padding");
    B64_BAD("Zg__Zm9v", "padding in the middle");
    B64_BAD("Zm_v", "a pad before data");
    B64_BAD("Zm9v\0AAA", "a NUL");
    B64_BAD("Zm9 ", "a space");
    B64_BAD("Zm9v\n", "a newline");
    B64_BAD("Zm9%", "a percent sign");

    is_rc(vodlms_cf_b64url_decode("Zm9vYmFy", 8, raw, 5, &n),
          VODLMS_ETOOLONG, "b64 decode: short output buffer");
    is_rc(vodlms_cf_b64url_encode("foo", 3, enc, 3, &n), VODLMS_ETOOLONG,
          "b64 encode: short output buffer");
    is_rc(vodlms_cf_b64url_decode("Zm8_", 4, raw, 2, &n), VODLMS_OK,
          "b64 decode: an output buffer of exactly the decoded size");

    /* every length and every byte value, both ways */
    good = 1;
    srand(42);

    for (len = 0; len <= sizeof(raw); len++) {
        for (i = 0; i < (int) len; i++) {
            raw[i] = (unsigned char) (rand() & 0xff);
        }

        if (vodlms_cf_b64url_encode(raw, len, enc, sizeof(enc), &n)
            != VODLMS_OK
            || n != VODLMS_CF_B64_LEN(len)
            || vodlms_cf_b64url_decode(enc, n, dec, sizeof(dec), &m)
               != VODLMS_OK
            || m != len || memcmp(raw, dec, len) != 0)
        {
            good = 0;
            diag("round trip failed at length %zu", len);
            break;
        }

        for (i = 0; i < (int) n; i++) {
            if (strchr("+/=", enc[i]) != NULL) {
                good = 0;
            }
        }
    }

    ok(good, "b64: 0..300 random bytes round-trip, never '+', '/', '='");
}


/* ---------------------------------------------------------------- keys */

static char *
pem_of(EVP_PKEY *key, int private, size_t *len)
{
    BIO    *bio;
    char   *data, *p;
    long    n;

    bio = BIO_new(BIO_s_mem());

    if (bio == NULL
        || (private ? PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL,
                                               NULL)
                    : PEM_write_bio_PUBKEY(bio, key))
           != 1)
    {
        abort();
    }

    n = BIO_get_mem_data(bio, &data);
    p = xdup(data, (size_t) n);
    *len = (size_t) n;
    BIO_free(bio);

    return p;
}


static void
key_bad_at(const char *file, int line, const char *pem, size_t len,
    int private, vodlms_rc_t erc, const char *msg, const char *t)
{
    char         err[256], *in;
    EVP_PKEY    *key;
    vodlms_rc_t  rc;

    in = xdup(pem, len);
    key = (EVP_PKEY *) 1;

    rc = private ? vodlms_cf_key_load_pem(in, len, &key, err, sizeof(err))
                 : vodlms_cf_pubkey_load_pem(in, len, &key, err, sizeof(err));

    is_rc_at(rc, erc, file, line, "key: %s: refused", t);
    tap_ok(key == NULL, file, line, "key: %s: no key returned", t);

    if (!tap_ok(strstr(err, msg) != NULL, file, line,
                "key: %s: the message says \"%s\"", t, msg))
    {
        tap_diag("    message: %s", err);
    }

    tap_ok(ERR_peek_error() == 0, file, line,
           "key: %s: OpenSSL error queue left empty", t);

    if (key != NULL && key != (EVP_PKEY *) 1) {
        EVP_PKEY_free(key);
    }

    free(in);
}

#define KEY_BAD(pem, len, private, erc, msg, t)                               \
    key_bad_at(__FILE__, __LINE__, (pem), (len), (private), (erc), (msg), (t))


static void
test_keys(void)
{
    char         *pem, err[256];
    size_t        len;
    EVP_PKEY     *k1, *k8, *gen, *key;
    vodlms_rc_t   rc;

    k8 = load_key("test_private_key.pem", 1);
    k1 = load_key("test_private_key_pkcs1.pem", 1);

    ok(EVP_PKEY_eq(k1, k8) == 1, "key: PKCS#1 and PKCS#8 files load the "
       "same RSA key");
    is_int(EVP_PKEY_get_bits(k1), 2048, "key: ... of 2048 bits");
    ok(EVP_PKEY_eq(k8, pub) == 1, "key: the public key file matches it");
    ok(EVP_PKEY_eq(other_pub, pub) != 1,
       "key: the other public key is another key");

    EVP_PKEY_free(k1);
    EVP_PKEY_free(k8);

    /* the wrong PEM for the loader */
    pem = slurp("test_public_key.pem", &len);
    KEY_BAD(pem, len, 1, VODLMS_EMALFORMED, "BEGIN PRIVATE KEY",
            "a public key given as private");
    free(pem);

    pem = slurp("test_private_key.pem", &len);
    KEY_BAD(pem, len, 0, VODLMS_EMALFORMED, "BEGIN PUBLIC KEY",
            "a private key given as public");
    KEY_BAD(pem, len / 2, 1, VODLMS_EMALFORMED, "private key",
            "half a PEM");
    free(pem);

    KEY_BAD("", 0, 1, VODLMS_EMALFORMED, "empty", "an empty PEM");
    {
        static const char  junk[] = "-----BEGIN PRIVATE KEY-----\nAAAA\n"
                                    "-----END PRIVATE KEY-----\n";
        static const char  text[] = "not a pem at all";

        KEY_BAD(junk, sizeof(junk) - 1, 1, VODLMS_EMALFORMED, "private key",
                "junk in a PEM");
        KEY_BAD(text, sizeof(text) - 1, 0, VODLMS_EMALFORMED, "public key",
                "not a PEM");
    }

    pem = xrepeat("A", 70000, &len);
    KEY_BAD(pem, len, 1, VODLMS_ETOOLONG, "limit", "70000 bytes of PEM");
    free(pem);

    /* wrong sizes, curves and types, generated on the spot */
    gen = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 1024);
    ok(gen != NULL, "key: RSA-1024 generated");
    pem = pem_of(gen, 1, &len);
    KEY_BAD(pem, len, 1, VODLMS_ETYPE, "1024 bits", "RSA-1024 private");
    free(pem);
    pem = pem_of(gen, 0, &len);
    KEY_BAD(pem, len, 0, VODLMS_ETYPE, "1024 bits", "RSA-1024 public");
    free(pem);
    EVP_PKEY_free(gen);

    gen = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    ok(gen != NULL, "key: EC P-384 generated");
    pem = pem_of(gen, 1, &len);
    KEY_BAD(pem, len, 1, VODLMS_ETYPE, "secp384r1", "EC P-384 private");
    free(pem);
    pem = pem_of(gen, 0, &len);
    KEY_BAD(pem, len, 0, VODLMS_ETYPE, "need P-256", "EC P-384 public");
    free(pem);
    EVP_PKEY_free(gen);

    gen = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    ok(gen != NULL, "key: Ed25519 generated");
    pem = pem_of(gen, 1, &len);
    KEY_BAD(pem, len, 1, VODLMS_ETYPE, "unsupported ED25519 key",
            "Ed25519 private");
    free(pem);
    EVP_PKEY_free(gen);

    /* an encrypted key: refused, and without a passphrase prompt */
    gen = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ok(gen != NULL, "key: EC P-256 generated");
    {
        BIO   *bio;
        char  *data;
        long   n;

        bio = BIO_new(BIO_s_mem());
        if (bio == NULL
            || PEM_write_bio_PKCS8PrivateKey(bio, gen, EVP_aes_128_cbc(),
                                             "secret", 6, NULL, NULL)
               != 1)
        {
            abort();
        }

        n = BIO_get_mem_data(bio, &data);
        pem = xdup(data, (size_t) n);
        len = (size_t) n;
        BIO_free(bio);
    }
    KEY_BAD(pem, len, 1, VODLMS_EMALFORMED, "unencrypted",
            "an encrypted PKCS#8 key");
    free(pem);

    /* P-256 both ways, and err left empty on success */
    pem = pem_of(gen, 1, &len);
    strcpy(err, "stale");
    rc = vodlms_cf_key_load_pem(pem, len, &key, err, sizeof(err));
    is_rc(rc, VODLMS_OK, "key: EC P-256 private key loads");
    is_str(err, "", "key: ... with an empty message");
    ok(key != NULL && EVP_PKEY_eq(key, gen) == 1, "key: ... the same key");
    EVP_PKEY_free(key);
    free(pem);

    pem = pem_of(gen, 0, &len);
    rc = vodlms_cf_pubkey_load_pem(pem, len, &key, err, sizeof(err));
    is_rc(rc, VODLMS_OK, "key: EC P-256 public key loads");
    EVP_PKEY_free(key);
    free(pem);

    /* a NULL err buffer is allowed */
    rc = vodlms_cf_key_load_pem(LIT("x"), &key, NULL, 0);
    is_rc(rc, VODLMS_EMALFORMED, "key: no err buffer");

    EVP_PKEY_free(gen);
}


/* ---------------------------------------------------------------- IPv4 */

static void
ip_at(const char *file, int line, const char *s, int with_prefix,
    vodlms_rc_t erc, uint32_t eaddr, unsigned eprefix)
{
    char         *in;
    uint32_t      addr;
    unsigned      prefix;
    vodlms_rc_t   rc;

    in = xdup(s, strlen(s));
    prefix = 99;
    rc = vodlms_cf_ipv4_parse(in, strlen(s), &addr,
                              with_prefix ? &prefix : NULL);

    if (is_rc_at(rc, erc, file, line, "ipv4 \"%s\"%s: rc", s,
                 with_prefix ? " (cidr)" : "")
        && rc == VODLMS_OK)
    {
        tap_is_int(addr, eaddr, file, line, "ipv4 \"%s\": address", s);

        if (with_prefix) {
            tap_is_int(prefix, eprefix, file, line, "ipv4 \"%s\": prefix", s);
        }
    }

    free(in);
}

#define IP_OK(s, a, p)  ip_at(__FILE__, __LINE__, s, 1, VODLMS_OK, a, p)
#define IP_BAD(s)       ip_at(__FILE__, __LINE__, s, 1, VODLMS_EMALFORMED, 0, 0)


static void
test_ipv4(void)
{
    IP_OK("203.0.113.7", 0xcb007107, 32);
    IP_OK("198.51.100.0/24", 0xc6336400, 24);
    IP_OK("0.0.0.0/0", 0, 0);
    IP_OK("255.255.255.255/32", 0xffffffff, 32);
    IP_OK("10.0.0.1/8", 0x0a000001, 8);

    IP_BAD("203.0.113.7/33");
    IP_BAD("203.0.113.7/");
    IP_BAD("203.0.113.7/024");
    IP_BAD("203.0.113.7/-1");
    IP_BAD("203.0.113.7/24/8");
    IP_BAD("256.0.0.1");
    IP_BAD("01.2.3.4");
    IP_BAD("1.2.3");
    IP_BAD("1.2.3.4.5");
    IP_BAD("1..2.3");
    IP_BAD("1.2.3.4 ");
    IP_BAD(" 1.2.3.4");
    IP_BAD("-1.2.3.4");
    IP_BAD("1.2.3.4.");
    IP_BAD("1234.1.1.1");
    IP_BAD("a.b.c.d");
    IP_BAD("");
    IP_BAD("::1");
    IP_BAD("2001:db8::/32");
    IP_BAD("::ffff:1.2.3.4/32");

    ip_at(__FILE__, __LINE__, "::ffff:203.0.113.7", 0, VODLMS_OK, 0xcb007107,
          0);
    ip_at(__FILE__, __LINE__, "::FFFF:203.0.113.7", 0, VODLMS_OK, 0xcb007107,
          0);
    ip_at(__FILE__, __LINE__, "203.0.113.7/32", 0, VODLMS_EMALFORMED, 0, 0);
    ip_at(__FILE__, __LINE__, "::ffff:", 0, VODLMS_EMALFORMED, 0, 0);
    ip_at(__FILE__, __LINE__, "::fffe:1.2.3.4", 0, VODLMS_EMALFORMED, 0, 0);
}


/* -------------------------------------------------------------- policy */

static void
policy_build_at(const char *file, int line, const char *res, size_t res_len,
    int64_t e, int64_t s, const char *ip, vodlms_rc_t erc, const char *exp,
    const char *t)
{
    char         *in, *ipc, out[1024];
    size_t        n;
    vodlms_rc_t   rc;

    in = xdup(res, res_len);
    ipc = ip ? xdup(ip, strlen(ip)) : NULL;

    rc = vodlms_cf_policy_build(in, res_len, e, s, ipc, ip ? strlen(ip) : 0,
                                out, sizeof(out), &n);

    if (is_rc_at(rc, erc, file, line, "policy: %s: rc", t)
        && rc == VODLMS_OK)
    {
        tap_is_mem(out, n, exp, strlen(exp), file, line, "policy: %s", t);
    }

    free(ipc);
    free(in);
}

#define PB(res, e, s, ip, erc, exp, t)                                        \
    policy_build_at(__FILE__, __LINE__, LIT(res), e, s, ip, erc, exp, t)


static void
test_policy_build(void)
{
    int             i, good;
    char            res[40], out[512];
    size_t          n, full;
    json_t         *j, *r;
    json_error_t    err;

    PB(HOST "/a", 1767225600, 0, NULL, VODLMS_OK,
       "{\"Statement\":[{\"Resource\":\"" HOST "/a\",\"Condition\":"
       "{\"DateLessThan\":{\"AWS:EpochTime\":1767225600}}}]}",
       "canned form");
    PB(HOST "/a", 1767225600, 1764547200, "198.51.100.0/24", VODLMS_OK,
       "{\"Statement\":[{\"Resource\":\"" HOST "/a\",\"Condition\":"
       "{\"DateLessThan\":{\"AWS:EpochTime\":1767225600},"
       "\"DateGreaterThan\":{\"AWS:EpochTime\":1764547200},"
       "\"IpAddress\":{\"AWS:SourceIp\":\"198.51.100.0/24\"}}}]}",
       "every condition, in the SDK's order");
    PB(HOST "/a", 9, 0, "10.1.2.3", VODLMS_OK,
       "{\"Statement\":[{\"Resource\":\"" HOST "/a\",\"Condition\":"
       "{\"DateLessThan\":{\"AWS:EpochTime\":9},"
       "\"IpAddress\":{\"AWS:SourceIp\":\"10.1.2.3/32\"}}}]}",
       "a bare address becomes /32");
    PB(HOST "/a", INT64_MAX, 0, NULL, VODLMS_OK,
       "{\"Statement\":[{\"Resource\":\"" HOST "/a\",\"Condition\":"
       "{\"DateLessThan\":{\"AWS:EpochTime\":9223372036854775807}}}]}",
       "the largest epoch");

    /* what JSON.stringify does to a string */
    PB("a\"b\\c/d\ne\rf\tg\bh\fi\x01j\x1fk\x7fl", 5, 0, NULL, VODLMS_OK,
       "{\"Statement\":[{\"Resource\":\"a\\\"b\\\\c/d\\ne\\rf\\tg\\bh\\fi"
       "\\u0001j\\u001fk\x7fl\",\"Condition\":"
       "{\"DateLessThan\":{\"AWS:EpochTime\":5}}}]}",
       "JSON escapes, lower-case \\u00xx, DEL and '/' raw");
    PB("h\xc3\xa9\xe2\x82\xac\xf0\x9f\x8e\xac", 5, 0, NULL, VODLMS_OK,
       "{\"Statement\":[{\"Resource\":\"h\xc3\xa9\xe2\x82\xac\xf0\x9f\x8e\xac"
       "\",\"Condition\":{\"DateLessThan\":{\"AWS:EpochTime\":5}}}]}",
       "UTF-8 passes raw");

    PB("a\xff", 5, 0, NULL, VODLMS_EMALFORMED, NULL, "invalid UTF-8");
    PB("a\xc0\xaf", 5, 0, NULL, VODLMS_EMALFORMED, NULL, "overlong UTF-8");
    PB("a\xed\xa0\x80", 5, 0, NULL, VODLMS_EMALFORMED, NULL,
       "a UTF-16 surrogate");
    PB("a\xe2\x82", 5, 0, NULL, VODLMS_EMALFORMED, NULL, "truncated UTF-8");
    PB("", 5, 0, NULL, VODLMS_EMALFORMED, NULL, "an empty resource");
    PB("a", 0, 0, NULL, VODLMS_EMALFORMED, NULL, "expires 0");
    PB("a", -5, 0, NULL, VODLMS_EMALFORMED, NULL, "negative expires");
    PB("a", 5, 5, NULL, VODLMS_EMALFORMED, NULL, "start == expires");
    PB("a", 5, 6, NULL, VODLMS_EMALFORMED, NULL, "start after expires");
    PB("a", 5, -1, NULL, VODLMS_EMALFORMED, NULL, "negative start");
    PB("a", 5, 0, "1.2.3.4/33", VODLMS_EMALFORMED, NULL, "a /33");
    PB("a", 5, 0, "::ffff:1.2.3.4", VODLMS_EMALFORMED, NULL,
       "an IPv4-mapped IPv6 address");
    PB("a", 5, 0, "2001:db8::1", VODLMS_EMALFORMED, NULL, "IPv6");
    PB("a", 5, 0, "", VODLMS_EMALFORMED, NULL, "an empty ip");

    /* every short buffer is refused, never overrun */
    is_rc(vodlms_cf_policy_build(LIT("a\"b"), 5, 4, LIT("1.2.3.4"), out,
                                 sizeof(out), &full),
          VODLMS_OK, "policy: reference length");
    good = 1;

    for (n = 0; n < full; n++) {
        size_t  m;

        if (vodlms_cf_policy_build(LIT("a\"b"), 5, 4, LIT("1.2.3.4"), out, n,
                                   &m)
            != VODLMS_ETOOLONG)
        {
            good = 0;
        }
    }

    ok(good, "policy: every buffer shorter than %zu bytes is ETOOLONG", full);

    /* every control byte, through jansson and back */
    for (i = 0; i < 31; i++) {
        res[i] = (char) (i + 1);
    }

    memcpy(res + 31, "\"\\x", 3);
    is_rc(vodlms_cf_policy_build(res, 34, 5, 0, NULL, 0, out, sizeof(out),
                                 &n),
          VODLMS_OK, "policy: control bytes");
    j = json_loadb(out, n, JSON_REJECT_DUPLICATES, &err);
    r = json_object_get(json_array_get(json_object_get(j, "Statement"), 0),
                        "Resource");
    ok(json_is_string(r), "policy: ... the output is JSON");
    is_mem(json_string_value(r), json_string_length(r), res, 34,
           "policy: ... and gives the resource back");
    json_decref(j);
}


/* ------------------------------------------------------- normalisation */

static void
norm_at(const char *file, int line, const char *url, vodlms_rc_t erc,
    const char *exp)
{
    char         *in, out[512];
    size_t        n;
    vodlms_rc_t   rc;

    in = xdup(url, strlen(url));
    rc = vodlms_cf_url_normalize(in, strlen(url), out, sizeof(out), &n);

    if (is_rc_at(rc, erc, file, line, "normalize %s: rc", url)
        && rc == VODLMS_OK)
    {
        tap_is_mem(out, n, exp, strlen(exp), file, line, "normalize %s", url);
    }

    free(in);
}

#define NORM(url, exp)  norm_at(__FILE__, __LINE__, url, VODLMS_OK, exp)
#define NORM_BAD(url)   norm_at(__FILE__, __LINE__, url, VODLMS_EMALFORMED, \
                                NULL)


static void
test_normalize(void)
{
    char    out[64];
    size_t  n;

    NORM(HOST "/hls/42/my video~v2/master.m3u8",
         HOST "/hls/42/my%20video~v2/master.m3u8");
    NORM(HOST "/hls/42/master.m3u8", HOST "/hls/42/master.m3u8");
    NORM(HOST "/a%7eb%7Ec", HOST "/a~b~c");
    NORM(HOST "/a%2fb%2Fc", HOST "/a%2Fb%2Fc");
    NORM(HOST "/a%20b", HOST "/a%20b");
    NORM(HOST "/!'()*-_.~", HOST "/!'()*-_.~");
    NORM(HOST "/a+b,c;d=e:f@g$h&i", HOST "/a%2Bb%2Cc%3Bd%3De%3Af%40g%24h%26i");
    NORM(HOST "/caf\xc3\xa9/%C3%A9", HOST "/caf%C3%A9/%C3%A9");
    NORM(HOST "/a//b/./../c/", HOST "/a//b/./../c/");
    NORM(HOST "/\x01", HOST "/%01");
    NORM(HOST, HOST);
    NORM(HOST "/", HOST "/");
    NORM("http://h:8080/a b", "http://h:8080/a%20b");

    NORM(HOST "/m.m3u8?lang=en", HOST "/m.m3u8?lang=en");
    NORM(HOST "/m?a=b c&d=e+f", HOST "/m?a=b%20c&d=e+f");
    NORM(HOST "/m?q='x'", HOST "/m?q=%27x%27");
    NORM(HOST "/m?x=%2f%7e", HOST "/m?x=%2F%7E");
    NORM(HOST "/m?x=%&y=%zz", HOST "/m?x=%25&y=%25zz");
    NORM(HOST "/m?x=/y?z", HOST "/m?x=%2Fy%3Fz");
    NORM(HOST "/m?x=\xc3\xa9", HOST "/m?x=%C3%A9");
    NORM(HOST "/m?", HOST "/m");
    NORM(HOST "?a=1", HOST "?a=1");

    NORM_BAD("ftp://cdn.example.test/a");
    NORM_BAD("HTTPS://cdn.example.test/a");
    NORM_BAD("//cdn.example.test/a");
    NORM_BAD("https://");
    NORM_BAD(HOST "/a#frag");
    NORM_BAD(HOST "/a%zz");
    NORM_BAD(HOST "/a%2");
    NORM_BAD(HOST "/a%");
    NORM_BAD(HOST "/a%e9");
    NORM_BAD(HOST "/a%C3");
    NORM_BAD(HOST "/a\xff");
    NORM_BAD(HOST "/a%ed%a0%80");

    is_rc(vodlms_cf_url_normalize(LIT(HOST "/a b c d e f g h i j k l m"), out,
                                  40, &n),
          VODLMS_ETOOLONG, "normalize: short output buffer");
}


/* --------------------------------------------------- query and cookies */

static void
split_at(const char *file, int line, const char *q, const char *rest,
    unsigned present, unsigned dup, const char *sig)
{
    char                *in, out[512];
    size_t               n;
    vodlms_rc_t          rc;
    vodlms_cf_params_t   p;

    in = xdup(q, strlen(q));
    rc = vodlms_cf_query_split(in, strlen(q), &p, out, strlen(q), &n);

    if (is_rc_at(rc, VODLMS_OK, file, line, "split \"%s\": rc", q)) {
        tap_is_mem(out, n, rest, strlen(rest), file, line,
                   "split \"%s\": the rest", q);
        tap_is_int(p.present, present, file, line,
                   "split \"%s\": the parameters found", q);
        tap_is_int(p.dup, dup, file, line, "split \"%s\": the repeats", q);

        if (sig != NULL) {
            tap_is_mem(p.v[VODLMS_CF_P_SIGNATURE].data,
                       p.v[VODLMS_CF_P_SIGNATURE].len, sig, strlen(sig),
                       file, line, "split \"%s\": Signature", q);
        }
    }

    free(in);
}

#define SPLIT(q, rest, present, dup, sig)                                     \
    split_at(__FILE__, __LINE__, q, rest, present, dup, sig)

#define P_E  (1u << VODLMS_CF_P_EXPIRES)
#define P_P  (1u << VODLMS_CF_P_POLICY)
#define P_S  (1u << VODLMS_CF_P_SIGNATURE)
#define P_K  (1u << VODLMS_CF_P_KEY_PAIR_ID)
#define P_H  (1u << VODLMS_CF_P_HASH_ALGORITHM)


static void
test_params(void)
{
    char                 out[8];
    size_t               n;
    vodlms_cf_params_t   p;

    SPLIT("lang=en&Expires=1&Key-Pair-Id=K&Signature=S", "lang=en",
          P_E | P_K | P_S, 0, "S");
    SPLIT("Expires=1&a=1&Signature=S&b=2&Hash-Algorithm=SHA256&c",
          "a=1&b=2&c", P_E | P_S | P_H, 0, "S");
    SPLIT("Policy=P&Key-Pair-Id=K&Signature=S", "", P_P | P_K | P_S, 0, "S");
    SPLIT("a&&b=", "a&&b=", 0, 0, NULL);
    SPLIT("&Signature=S&", "&", P_S, 0, "S");
    SPLIT("Signature=1&Signature=2", "", P_S, P_S, "1");
    SPLIT("Signature", "", P_S, 0, "");
    SPLIT("Signature=a=b", "", P_S, 0, "a=b");
    SPLIT("signature=1&SIGNATURE=2&Signaturex=3&Key-Pair-Id%3D=4",
          "signature=1&SIGNATURE=2&Signaturex=3&Key-Pair-Id%3D=4", 0, 0,
          NULL);
    SPLIT("x=Signature=1", "x=Signature=1", 0, 0, NULL);

    is_rc(vodlms_cf_query_split(NULL, 0, &p, out, 0, &n), VODLMS_OK,
          "split: no query");
    is_int(p.present, 0, "split: ... no parameters");
    is_rc(vodlms_cf_query_split(LIT("abcdefghij"), &p, out, sizeof(out), &n),
          VODLMS_ETOOLONG, "split: a rest buffer shorter than the query");

    is_rc(vodlms_cf_cookie_params(LIT("a=1; CloudFront-Signature=\"S\"; "
                                      "CloudFront-Key-Pair-Id=K; "
                                      "CloudFront-Signature=T"), &p),
          VODLMS_OK, "cookies: found");
    is_int(p.present, P_S | P_K, "cookies: Signature and Key-Pair-Id");
    is_mem(p.v[VODLMS_CF_P_SIGNATURE].data, p.v[VODLMS_CF_P_SIGNATURE].len,
           "S", 1, "cookies: the first one, unquoted");
    is_rc(vodlms_cf_cookie_params(LIT("a=1; Signature=S; cloudfront-policy=x"),
                                  &p),
          VODLMS_ENOTFOUND, "cookies: none of CloudFront's");
    is_rc(vodlms_cf_cookie_params(NULL, 0, &p), VODLMS_ENOTFOUND,
          "cookies: no header");
}


/* ------------------------------------------------------------ matching */

static void
match_at(const char *file, int line, const char *pat, const char *url,
    int sections, int anywhere)
{
    int    m;
    char  *p, *u;

    p = xdup(pat, strlen(pat));
    u = xdup(url, strlen(url));

    if (vodlms_cf_resource_match(p, strlen(pat), u, strlen(url),
                                 VODLMS_CF_MATCH_SECTIONS, &m)
        != VODLMS_OK)
    {
        m = -1;
    }

    tap_is_int(m, sections, file, line, "match (sections) \"%s\" ~ \"%s\"",
               pat, url);

    if (vodlms_cf_resource_match(p, strlen(pat), u, strlen(url),
                                 VODLMS_CF_MATCH_ANYWHERE, &m)
        != VODLMS_OK)
    {
        m = -1;
    }

    tap_is_int(m, anywhere, file, line, "match (anywhere) \"%s\" ~ \"%s\"",
               pat, url);

    free(u);
    free(p);
}

#define MATCH(pat, url, s, a)  match_at(__FILE__, __LINE__, pat, url, s, a)


/*
 * "P*" (a literal prefix and one '*': the matcher's short cut) and "P**"
 * (the same pattern through the general table) must agree, in both
 * readings, on every url: 300000 random pairs over the bytes that matter.
 */
static unsigned int
next_rand(unsigned int *x)
{
    /* xorshift32: the same sequence everywhere, no libc extensions */
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x >> 1;
}


static void
test_match_shortcut(void)
{
    int            m1, m2, mode, bad;
    char           url[24], pat[26];
    size_t         ulen, plen, i;
    unsigned int   seed;

    static const char  alphabet[] = "ab/?:.*";

    seed = 1125;
    bad = 0;

    for (i = 0; i < 300000 && bad < 5; i++) {
        size_t  k;

        ulen = next_rand(&seed) % sizeof(url);
        for (k = 0; k < ulen; k++) {
            url[k] = alphabet[next_rand(&seed) % 6];     /* no '*' in urls */
        }

        /* a prefix of the url (mostly), sometimes changed */
        plen = ulen ? next_rand(&seed) % (ulen + 1) : 0;
        memcpy(pat, url, plen);
        if (plen && next_rand(&seed) % 4 == 0) {
            pat[next_rand(&seed) % plen] = alphabet[next_rand(&seed) % 5];
        }
        if (memchr(pat, '?', plen) != NULL) {
            continue;                       /* '?' takes the table anyway */
        }

        for (mode = 0; mode < 2; mode++) {
            char  *p1, *p2, *u;

            pat[plen] = '*';
            pat[plen + 1] = '*';
            p1 = xdup(pat, plen + 1);
            p2 = xdup(pat, plen + 2);
            u = xdup(url, ulen);

            if (vodlms_cf_resource_match(p1, plen + 1, u, ulen, mode, &m1)
                != VODLMS_OK
                || vodlms_cf_resource_match(p2, plen + 2, u, ulen, mode, &m2)
                   != VODLMS_OK
                || m1 != m2)
            {
                bad++;
                tap_diag("\"%.*s*\" ~ \"%.*s\" (%s): %d, with \"**\": %d",
                         (int) plen, pat, (int) ulen, url,
                         mode ? "anywhere" : "sections", m1, m2);
            }

            free(u);
            free(p2);
            free(p1);
        }
    }

    ok(bad == 0, "match: the prefix short cut agrees with the table "
       "on 300000 random pairs");
}


static void
test_match(void)
{
    int       m;
    char     *pat, *url, *p;
    size_t    plen, ulen, i;
    clock_t   t0;
    double    secs;

    MATCH(HOST "/hls/42/master.m3u8", HOST "/hls/42/master.m3u8", 1, 1);
    MATCH(HOST "/hls/42/master.m3u8", HOST "/hls/42/master.m3u", 0, 0);
    MATCH(HOST "/hls/42/*", HOST "/hls/42/seg_00001.ts", 1, 1);
    MATCH(HOST "/hls/42/*", HOST "/hls/42/", 1, 1);
    MATCH(HOST "/hls/42/*", HOST "/hls/42/720p/seg_00001.ts", 1, 1);
    MATCH(HOST "/hls/42/*", HOST "/hls/43/seg_00001.ts", 0, 0);
    MATCH(HOST "/hls/42/*", HOST "/hls/42", 0, 0);
    MATCH(HOST "/hls/42/seg_00?.ts", HOST "/hls/42/seg_009.ts", 1, 1);
    MATCH(HOST "/hls/42/seg_00?.ts", HOST "/hls/42/seg_00.ts", 0, 0);
    MATCH(HOST "/hls/42/seg_00?.ts", HOST "/hls/42/seg_0091.ts", 0, 0);

    /* where the two readings part */
    MATCH(HOST "/hls/42/*", HOST "/hls/42/seg.ts?v=1", 0, 1);
    MATCH("https://*.example.test/x", "https://cdn.example.test/x", 1, 1);
    MATCH("https://*.example.test/x", "https://evil.test/?.example.test/x",
          0, 1);
    MATCH("https://*/x", "https://a/b/x", 0, 1);
    MATCH("*", HOST "/a", 0, 1);
    MATCH("http*://cdn.example.test/*", HOST "/a", 1, 1);
    MATCH("http*://cdn.example.test/*", "http://cdn.example.test/a", 1, 1);

    /* '?' may stand for the query's own '?' in both */
    MATCH(HOST "/m.m3u8?lang=en", HOST "/m.m3u8?lang=en", 1, 1);
    MATCH(HOST "/m.m3u8?lang=*", HOST "/m.m3u8?lang=fr", 1, 1);
    MATCH(HOST "/m.m3u8*", HOST "/m.m3u8?lang=fr", 0, 1);

    ok(vodlms_cf_resource_match(LIT("*"), LIT(HOST "/a"),
                                (vodlms_cf_match_t) 7, &m) == VODLMS_OK
       && m == 0, "match: an unknown mode reads like sections");

    MATCH("", "", 1, 1);
    MATCH("*", "", 1, 1);
    MATCH("?", "", 0, 0);
    MATCH("", "a", 0, 0);
    MATCH("*?", "", 0, 0);
    MATCH("a*b*c", "aXbYc", 1, 1);
    MATCH("a*b*c", "aXbYd", 0, 0);
    MATCH("*a*b", "xaxb", 1, 1);
    MATCH("a*", "b", 0, 0);
    MATCH("**a**", "bab", 1, 1);
    MATCH(HOST "/?/*", HOST "/a/x", 1, 1);
    MATCH(HOST "/?/*", HOST "//x", 0, 0);

    /* many stars against a long url: linear after collapsing them */
    p = xrepeat("*", 3000, &plen);
    pat = xfmt(HOST "/%sx", p);
    free(p);
    p = xrepeat("a", 8000, &ulen);
    url = xfmt(HOST "/%sx", p);
    free(p);

    ok(vodlms_cf_resource_match(pat, strlen(pat), url, strlen(url),
                                VODLMS_CF_MATCH_SECTIONS, &m)
       == VODLMS_OK && m == 1,
       "match: 3000 stars then x against 8000 a's then x");
    free(pat);

    /*
     * The backtracking killer: "*a*a*...*a*b" against "aaaa...a" takes a
     * naive recursive matcher exponential time.  Here it is bounded by
     * 2000 x 8000 row steps.
     */
    p = xrepeat("*a", 1000, &plen);
    pat = xfmt(HOST "/%s*b", p);
    free(p);
    free(url);
    p = xrepeat("a", 8000, &ulen);
    url = xfmt(HOST "/%s", p);
    free(p);

    t0 = clock();

    for (i = 0; i < 2; i++) {
        ok(vodlms_cf_resource_match(pat, strlen(pat), url, strlen(url),
                                    i ? VODLMS_CF_MATCH_ANYWHERE
                                      : VODLMS_CF_MATCH_SECTIONS, &m)
           == VODLMS_OK && m == 0,
           "match: \"*a\" x 1000 + \"*b\" against 8000 a's: no match (%s)",
           i ? "anywhere" : "sections");
    }

    secs = (double) (clock() - t0) / CLOCKS_PER_SEC;
    diag("pathological match: %.3f s of CPU for both readings", secs);
    ok(secs < 30.0, "match: the pathological case is polynomial (%.3f s)",
       secs);

    free(pat);
    free(url);
}


/* ---------------------------------------------------------- url split */

static void
test_url_split(void)
{
    vodlms_cf_request_t  r;

    is_rc(vodlms_cf_url_split(LIT(HOST "/a/b?x=1&y"), &r), VODLMS_OK,
          "url split: rc");
    is_mem(r.scheme.data, r.scheme.len, "https", 5, "url split: scheme");
    is_mem(r.host.data, r.host.len, "cdn.example.test", 16, "url split: host");
    is_mem(r.path.data, r.path.len, "/a/b", 4, "url split: path");
    is_mem(r.query.data, r.query.len, "x=1&y", 5, "url split: query");

    is_rc(vodlms_cf_url_split(LIT("http://h:81"), &r), VODLMS_OK,
          "url split: no path");
    is_mem(r.host.data, r.host.len, "h:81", 4, "url split: host with port");
    is_int(r.path.len + r.query.len, 0, "url split: empty path and query");

    is_rc(vodlms_cf_url_split(LIT("http://h?q"), &r), VODLMS_OK,
          "url split: a query without a path");
    is_mem(r.query.data, r.query.len, "q", 1, "url split: ... the query");

    is_rc(vodlms_cf_url_split(LIT("/a/b"), &r), VODLMS_EMALFORMED,
          "url split: no scheme");
    is_rc(vodlms_cf_url_split(LIT("://h/a"), &r), VODLMS_EMALFORMED,
          "url split: an empty scheme");
    is_rc(vodlms_cf_url_split(LIT(HOST "/a#f"), &r), VODLMS_EMALFORMED,
          "url split: a fragment");
}


/* -------------------------------------------------- sign-cases.json */

static void
cookies_cmp(json_t *exp, const vodlms_cf_cookie_t *c, size_t n,
    const char *name)
{
    size_t       i;
    const char  *v;

    is_int(n, json_object_size(exp), "%s: cookie count", name);

    for (i = 0; i < n; i++) {
        char  cname[64];

        snprintf(cname, sizeof(cname), "%.*s", (int) c[i].name.len,
                 c[i].name.data);
        v = jstr(exp, cname);

        if (!ok(v != NULL, "%s: cookie %s expected", name, cname)) {
            continue;
        }

        is_mem(c[i].value.data, c[i].value.len, v, strlen(v),
               "%s: cookie %s", name, cname);
    }
}


static char *
cookie_header(const vodlms_cf_cookie_t *c, size_t n)
{
    char    *h, *p;
    size_t   i;

    h = xstrdup("other=1");

    for (i = 0; i < n; i++) {
        p = xfmt("%s; %.*s=%.*s", h, (int) c[i].name.len, c[i].name.data,
                 (int) c[i].value.len, c[i].value.data);
        free(h);
        h = p;
    }

    return h;
}


static void
sign_case(json_t *c)
{
    char                *buf, *url, *in_url, *in_res, *in_ip, *in_kpid;
    char                *cookie, t[256];
    size_t               size, n, nc;
    EVP_PKEY            *key;
    vodlms_rc_t          rc;
    const char          *name, *type, *pb64, *ip, *hash, *cpol, *res;
    json_t              *in, *exp, *start;
    vreq_t               q;
    vodlms_cf_sign_t     s;
    vodlms_cf_signed_t   out, out_c;
    vodlms_cf_cookie_t   ck[VODLMS_CF_COOKIES_MAX];

    name = jstr(c, "name");
    in = json_object_get(c, "inputs");
    exp = json_object_get(c, "expected");

    if (!ok(name != NULL && json_is_object(in) && json_is_object(exp)
            && jstr(in, "url") && jstr(in, "key") && jstr(in, "keyPairId")
            && json_is_integer(json_object_get(in, "expires"))
            && jstr(exp, "type") && jstr(exp, "policy")
            && jstr(exp, "signature") && jstr(exp, "signedUrl")
            && json_is_object(json_object_get(exp, "cookies")),
            "sign case %s: well-formed", name ? name : "?"))
    {
        return;
    }

    key = load_key(jstr(in, "key"), 1);

    /* exact-length copies: no NUL after any input */
    in_url = xdup(jstr(in, "url"), strlen(jstr(in, "url")));
    res = jstr(in, "resource");
    in_res = res ? xdup(res, strlen(res)) : NULL;
    ip = jstr(in, "ip");
    in_ip = ip ? xdup(ip, strlen(ip)) : NULL;
    in_kpid = xdup(jstr(in, "keyPairId"), strlen(jstr(in, "keyPairId")));
    hash = jstr(in, "hash");
    start = json_object_get(in, "start");

    memset(&s, 0, sizeof(s));
    s.url = in_url;
    s.url_len = strlen(jstr(in, "url"));
    s.resource = in_res;
    s.resource_len = res ? strlen(res) : 0;
    s.expires = json_integer_value(json_object_get(in, "expires"));
    s.start = json_is_integer(start) ? json_integer_value(start) : 0;
    s.ip = in_ip;
    s.ip_len = ip ? strlen(ip) : 0;
    s.key_pair_id = in_kpid;
    s.key_pair_id_len = strlen(jstr(in, "keyPairId"));
    s.hash = hash && strcmp(hash, "SHA256") == 0 ? VODLMS_CF_SHA256
                                                  : VODLMS_CF_SHA1;

    type = jstr(exp, "type");
    is_str(vodlms_cf_policy_type(&s) == VODLMS_CF_CANNED ? "canned"
                                                          : "custom",
           type, "%s: policy type", name);

    /* the signed URL */
    size = vodlms_cf_prepare_size(&s);
    buf = malloc(size);
    if (buf == NULL) {
        abort();
    }

    rc = vodlms_cf_sign(&s, VODLMS_CF_FOR_URL, key, buf, size, &out);
    is_rc(rc, VODLMS_OK, "%s: sign for a URL", name);

    if (rc == VODLMS_OK) {
        is_str(out.type == VODLMS_CF_CANNED ? "canned" : "custom", type,
               "%s: url: type", name);
        is_mem(out.policy.data, out.policy.len, jstr(exp, "policy"),
               strlen(jstr(exp, "policy")), "%s: url: policy bytes", name);

        pb64 = jstr(exp, "policyB64");

        if (pb64 == NULL) {
            ok(out.policy_b64.data == NULL && out.policy_b64.len == 0,
               "%s: url: no Policy for a canned policy", name);

        } else {
            is_mem(out.policy_b64.data, out.policy_b64.len, pb64,
                   strlen(pb64), "%s: url: policyB64", name);
        }

        is_mem(out.signature, out.signature_len, jstr(exp, "signature"),
               strlen(jstr(exp, "signature")), "%s: url: signature", name);

        n = vodlms_cf_url_size(&out);
        url = malloc(n + 1);
        if (url == NULL) {
            abort();
        }

        rc = vodlms_cf_url_build(&out, url, n, &n);
        is_rc(rc, VODLMS_OK, "%s: url: built in exactly url_size bytes",
              name);
        url[n] = '\0';
        is_str(rc == VODLMS_OK ? url : "", jstr(exp, "signedUrl"),
               "%s: url: signedUrl", name);

        /* and the edge lets it through */
        memset(&q, 0, sizeof(q));
        q.url = url;
        q.client = ip ? "198.51.100.1" : CLIENT;

        if (ip && strcmp(ip, CLIENT) == 0) {
            q.client = CLIENT;
        }

        q.now = s.start ? s.start + 1 : NOW;
        snprintf(t, sizeof(t), "%s: url: the verifier allows it", name);
        VERDICT(&q, VODLMS_CF_ALLOW, t);
        free(url);
    }

    /* the cookie set */
    rc = vodlms_cf_sign(&s, VODLMS_CF_FOR_COOKIES, key, buf, size, &out_c);
    is_rc(rc, VODLMS_OK, "%s: sign for cookies", name);

    if (rc == VODLMS_OK) {
        cpol = jstr(exp, "cookiePolicy");
        cpol = cpol ? cpol : jstr(exp, "policy");

        is_mem(out_c.policy.data, out_c.policy.len, cpol, strlen(cpol),
               "%s: cookies: policy bytes", name);

        nc = vodlms_cf_cookies(&out_c, ck);
        cookies_cmp(json_object_get(exp, "cookies"), ck, nc, name);

        /*
         * As the edge sees them on the URL the viewer fetches.  The SDK's
         * raw canned cookie for a path with a space is the one that fails.
         */
        cookie = cookie_header(ck, nc);
        memset(&q, 0, sizeof(q));
        q.url = jstr(exp, "signedUrl");
        q.cookie = cookie;
        q.client = ip && strcmp(ip, CLIENT) != 0 ? "198.51.100.1" : CLIENT;
        q.now = s.start ? s.start + 1 : NOW;

        /* the URL without its CloudFront parameters */
        url = xstrdup(q.url);
        {
            char  *qm;

            qm = strstr(url, out.type == VODLMS_CF_CANNED ? "Expires="
                                                          : "Policy=");
            if (qm != NULL) {
                qm[-1] = '\0';
            }
        }
        q.url = url;

        snprintf(t, sizeof(t), "%s: cookies: the verifier on the URL the "
                 "viewer fetches", name);
        VERDICT(&q, strcmp(name, "canned_space_and_tilde_in_path") == 0
                    ? VODLMS_CF_BAD_SIGNATURE : VODLMS_CF_ALLOW,
                t);

        free(url);
        free(cookie);
    }

    free(buf);
    free(in_kpid);
    free(in_ip);
    free(in_res);
    free(in_url);
    EVP_PKEY_free(key);
}


static void
test_sign_vectors(void)
{
    size_t   i;
    json_t  *cases, *c;

    cases = load_json("sign-cases.json");
    diag("sign-cases.json: %zu cases", json_array_size(cases));

    json_array_foreach(cases, i, c) {
        sign_case(c);
    }

    json_decref(cases);
}


/* ------------------------------------------------ verify-cases.json */

static void
test_verify_vectors(void)
{
    int                  m, allow;
    size_t               i, nallow;
    json_t              *cases, *c, *oracle;
    vreq_t               q;
    vodlms_rc_t          rc;
    const char          *name, *code, *expect, *osrc;
    vodlms_cf_result_t   res;

    cases = load_json("verify-cases.json");
    diag("verify-cases.json: %zu cases", json_array_size(cases));
    nallow = 0;

    json_array_foreach(cases, i, c) {
        name = jstr(c, "name");
        code = jstr(c, "reason_code");
        expect = jstr(c, "expect");
        oracle = json_object_get(c, "oracle");
        osrc = jstr(oracle, "source");

        if (!ok(name && code && expect && jstr(c, "request_url")
                && jstr(c, "client_ip") && osrc
                && json_is_integer(json_object_get(c, "now")),
                "verify case %zu: well-formed", i))
        {
            continue;
        }

        /* both readings of the wildcards must agree on every vector */
        for (m = 0; m < 2; m++) {
            memset(&q, 0, sizeof(q));
            q.url = jstr(c, "request_url");
            q.cookie = jstr(c, "cookies");
            q.client = jstr(c, "client_ip");
            q.now = json_integer_value(json_object_get(c, "now"));
            q.match = m ? VODLMS_CF_MATCH_ANYWHERE : VODLMS_CF_MATCH_SECTIONS;

            if (!ok(run_verify(&q, &res, &rc), "%s: request splits", name)) {
                break;
            }

            is_rc(rc, VODLMS_OK, "%s: verified (%s)", name,
                  m ? "anywhere" : "sections");

            allow = res.verdict == VODLMS_CF_ALLOW;

            is_str(allow ? "allow" : "deny", expect, "%s: expect (%s)", name,
                   m ? "anywhere" : "sections");

            if (!is_str(vodlms_cf_verdict_str(res.verdict), code,
                        "%s: reason_code (%s)", name,
                        m ? "anywhere" : "sections"))
            {
                diag("    detail: %s", res.detail);
            }

            is_str(source_str(res.source), osrc, "%s: credentials from %s",
                   name, osrc);

            nallow += allow && m == 0;
        }
    }

    ok(nallow > 0 && nallow < json_array_size(cases),
       "verify vectors: both allows (%zu) and denies", nallow);

    json_decref(cases);
}


/* --------------------------------------------------------------- ECDSA */

static void
test_ecdsa(void)
{
    int                  h;
    char                *buf, *cookie, *url, sig[VODLMS_CF_SIG_B64_MAX];
    size_t               size, n, nc, raw_len;
    EVP_PKEY            *ec, *ec_pub;
    vodlms_rc_t          rc;
    unsigned char        raw[VODLMS_CF_SIG_MAX];
    vreq_t               q;
    vodlms_cf_key_t      keys[2];
    vodlms_cf_sign_t     s;
    vodlms_cf_signed_t   out;
    vodlms_cf_cookie_t   ck[VODLMS_CF_COOKIES_MAX];

    ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!ok(ec != NULL, "ecdsa: P-256 key generated")) {
        return;
    }

    /* the public half through the loader, as the edge would get it */
    buf = pem_of(ec, 0, &n);
    rc = vodlms_cf_pubkey_load_pem(buf, n, &ec_pub, NULL, 0);
    is_rc(rc, VODLMS_OK, "ecdsa: public key loads");
    free(buf);

    if (rc != VODLMS_OK) {
        EVP_PKEY_free(ec);
        return;
    }

    keys[0].id = KPID;
    keys[0].id_len = sizeof(KPID) - 1;
    keys[0].key = pub;
    keys[1].id = "KECDSAP256TEST";
    keys[1].id_len = sizeof("KECDSAP256TEST") - 1;
    keys[1].key = ec_pub;

    for (h = 0; h < 2; h++) {
        const char  *hn = h ? "SHA256" : "SHA1";

        memset(&s, 0, sizeof(s));
        s.url = HOST "/hls/42/master.m3u8";
        s.url_len = strlen(s.url);
        s.resource = HOST "/hls/42/*";
        s.resource_len = strlen(s.resource);
        s.expires = EXPIRES;
        s.key_pair_id = "KECDSAP256TEST";
        s.key_pair_id_len = strlen(s.key_pair_id);
        s.hash = h ? VODLMS_CF_SHA256 : VODLMS_CF_SHA1;

        size = vodlms_cf_prepare_size(&s);
        buf = malloc(size);
        if (buf == NULL) {
            abort();
        }

        /* randomised: the same policy twice gives two signatures */
        rc = vodlms_cf_sign(&s, VODLMS_CF_FOR_COOKIES, ec, buf, size, &out);
        memcpy(sig, out.signature, out.signature_len);
        n = out.signature_len;

        /* cookies */
        rc = vodlms_cf_sign(&s, VODLMS_CF_FOR_COOKIES, ec, buf, size, &out);
        is_rc(rc, VODLMS_OK, "ecdsa %s: signed", hn);
        ok(n != out.signature_len || memcmp(sig, out.signature, n) != 0,
           "ecdsa %s: two signatures of one policy differ", hn);
        ok(out.signature_len > 0 && out.signature_len <= 96,
           "ecdsa %s: a DER signature (%zu base64 bytes)", hn,
           out.signature_len);

        nc = vodlms_cf_cookies(&out, ck);
        is_int(nc, h ? 4 : 3, "ecdsa %s: cookie count", hn);
        cookie = cookie_header(ck, nc);

        memset(&q, 0, sizeof(q));
        q.url = HOST "/hls/42/seg_00001.ts";
        q.cookie = cookie;
        q.client = CLIENT;
        q.now = NOW;
        q.keys = keys;
        q.nkeys = 2;

        VERDICT(&q, VODLMS_CF_ALLOW,
                "ecdsa: cookies verify with the public key");
        free(cookie);

        /* a key table with the id pointing at the RSA key */
        q.keys = keys;
        q.nkeys = 1;
        cookie = cookie_header(ck, nc);
        q.cookie = cookie;
        VERDICT(&q, VODLMS_CF_UNKNOWN_KEY_PAIR_ID,
                "ecdsa: its id missing from the key table");
        free(cookie);

        /* one bit of the DER signature flipped, at the start and the end */
        for (n = 0; n < 2; n++) {
            memcpy(sig, out.signature, out.signature_len);

            if (vodlms_cf_b64url_decode(sig, out.signature_len, raw,
                                        sizeof(raw), &raw_len)
                != VODLMS_OK)
            {
                ok(0, "ecdsa: signature decodes");
                continue;
            }

            raw[n ? raw_len - 1 : 8] ^= 0x01;
            vodlms_cf_b64url_encode(raw, raw_len, out.signature,
                                    sizeof(out.signature),
                                    &out.signature_len);

            nc = vodlms_cf_cookies(&out, ck);
            cookie = cookie_header(ck, nc);
            q.cookie = cookie;
            q.keys = keys;
            q.nkeys = 2;
            VERDICT(&q, VODLMS_CF_BAD_SIGNATURE,
                    n ? "ecdsa: last signature byte flipped"
                      : "ecdsa: a signature byte flipped");
            free(cookie);

            raw[n ? raw_len - 1 : 8] ^= 0x01;
            vodlms_cf_b64url_encode(raw, raw_len, out.signature,
                                    sizeof(out.signature),
                                    &out.signature_len);
        }

        /* a truncated DER signature */
        vodlms_cf_b64url_encode(raw, raw_len - 1, out.signature,
                                sizeof(out.signature), &out.signature_len);
        nc = vodlms_cf_cookies(&out, ck);
        cookie = cookie_header(ck, nc);
        q.cookie = cookie;
        VERDICT(&q, VODLMS_CF_BAD_SIGNATURE, "ecdsa: a truncated signature");
        free(cookie);

        /* a signed URL */
        rc = vodlms_cf_sign(&s, VODLMS_CF_FOR_URL, ec, buf, size, &out);
        is_rc(rc, VODLMS_OK, "ecdsa %s: URL signed", hn);

        n = vodlms_cf_url_size(&out);
        url = malloc(n + 1);
        if (url == NULL) {
            abort();
        }

        vodlms_cf_url_build(&out, url, n, &n);
        url[n] = '\0';

        memset(&q, 0, sizeof(q));
        q.url = url;
        q.client = CLIENT;
        q.now = NOW;
        q.keys = keys;
        q.nkeys = 2;
        VERDICT(&q, VODLMS_CF_ALLOW, "ecdsa: signed URL verifies");

        /* the other hash named than the one signed with */
        {
            char  *u2;

            u2 = h ? xfmt("%.*s", (int) (n - sizeof("&Hash-Algorithm=SHA256")
                                         + 1), url)
                   : xfmt("%s&Hash-Algorithm=SHA256", url);
            q.url = u2;
            VERDICT(&q, VODLMS_CF_BAD_SIGNATURE,
                    "ecdsa: verified with the other hash");
            free(u2);
        }

        free(url);
        free(buf);
    }

    EVP_PKEY_free(ec_pub);
    EVP_PKEY_free(ec);
}


/* ----------------------------------------------- hostile verifier input */

static void
test_verify_hostile(void)
{
    char               *p, *pol, *url, *cookie;
    size_t              n;
    vreq_t              q;
    vodlms_rc_t         rc;
    vodlms_cf_key_t     keys[2];
    vodlms_cf_result_t  res;
    vodlms_cf_request_t r;

    const char *seg = HOST "/hls/42/seg_00001.ts";

    /* canned signed URL of the vectors, to tamper with */
    static const char  canned_sig[] =
        "JZCd-Ez3yLFK~t3YEm8ChcpaJRWS5BPJ6VDLkC0QvwdmiKw9KVP7rDgd07IX9nvB6i0q"
        "g0V3sPgug0aaJuHroS-XAdLrI3QeeOO9De3HYXJhuoJI9dYScQ2gVR6mTP-~Rz6R0Nzj"
        "EQGlVmX6EqO1AAWJIVnbyTuQRC~c~LqTGpxWivHxVAiWkYNknGuZyISa~po2PgSPayhX"
        "F9WDDnjgdDqkIUThwfVIfIkT9vcY6C7HpjLhpbGj83xZtAU3wF6zmbseo7OBKXIkicQO"
        "Ye8O03A6JGU1d1egG6OPmCP96VM38kTRJdihm7gAAEP7t1h6AsA0BFSCLtvgUPlyM~jG"
        "GQ__";

#define M3U8  HOST "/hls/42/master.m3u8"

    memset(&q, 0, sizeof(q));
    q.client = CLIENT;
    q.now = NOW;

    url = xfmt(M3U8 "?Expires=1767225600&Key-Pair-Id=" KPID "&Signature=%s",
               canned_sig);
    q.url = url;
    VERDICT(&q, VODLMS_CF_ALLOW, "hostile: the untouched canned URL");
    free(url);

    /* parameter order does not matter to CloudFront, nor here */
    url = xfmt(M3U8 "?Signature=%s&Key-Pair-Id=" KPID "&Expires=1767225600",
               canned_sig);
    q.url = url;
    VERDICT(&q, VODLMS_CF_ALLOW, "hostile: parameters in another order");
    free(url);

    /* percent-encoded values are decoded first */
    p = xstrdup(canned_sig);
    url = xfmt(M3U8 "?Expires=1767225600&Key-Pair-Id=%%4B2JCJMDEHXQW5F"
               "&Signature=%s", p);
    q.url = url;
    VERDICT(&q, VODLMS_CF_ALLOW, "hostile: a percent-encoded Key-Pair-Id");
    free(url);
    free(p);

    url = xfmt(M3U8 "?Expires=1767225600&Key-Pair-Id=" KPID "&Signature=%s"
               "&Hash-Algorithm=SHA1", canned_sig);
    q.url = url;
    VERDICT(&q, VODLMS_CF_ALLOW, "hostile: Hash-Algorithm=SHA1 explicitly");
    free(url);

    {
        static const struct {
            const char           *q;
            vodlms_cf_verdict_t   v;
            const char           *t;
        } cases[] = {
            { "Expires=1767225600&Key-Pair-Id=" KPID "&Signature=%s"
              "&Hash-Algorithm=MD5", VODLMS_CF_BAD_SIGNATURE,
              "an unknown Hash-Algorithm" },
            { "Expires=1767225600&Key-Pair-Id=" KPID "&Signature=%s"
              "&Hash-Algorithm=sha256", VODLMS_CF_BAD_SIGNATURE,
              "a lower-case Hash-Algorithm" },
            { "Expires=1767225600&Key-Pair-Id=" KPID "&Signature=%s"
              "&Hash-Algorithm=", VODLMS_CF_BAD_SIGNATURE,
              "an empty Hash-Algorithm" },
            { "Expires=1767225600&Key-Pair-Id=" KPID "&Signature=%s"
              "&Signature=AAAA", VODLMS_CF_BAD_SIGNATURE,
              "a repeated Signature" },
            { "Expires=1767225600&Expires=1767225600&Key-Pair-Id=" KPID
              "&Signature=%s", VODLMS_CF_BAD_SIGNATURE,
              "a repeated Expires" },
            { "Expires=1767225601&Key-Pair-Id=" KPID "&Signature=%s",
              VODLMS_CF_BAD_SIGNATURE, "Expires moved by a second" },
            { "Expires=01767225600&Key-Pair-Id=" KPID "&Signature=%s",
              VODLMS_CF_ALLOW, "Expires with a leading zero: same number" },
            { "Expires=abc&Key-Pair-Id=" KPID "&Signature=%s",
              VODLMS_CF_BAD_SIGNATURE, "Expires not a number" },
            { "Expires=-1767225600&Key-Pair-Id=" KPID "&Signature=%s",
              VODLMS_CF_BAD_SIGNATURE, "a negative Expires" },
            { "Expires=+1767225600&Key-Pair-Id=" KPID "&Signature=%s",
              VODLMS_CF_BAD_SIGNATURE, "Expires with a '+'" },
            { "Expires=99999999999999999999&Key-Pair-Id=" KPID
              "&Signature=%s", VODLMS_CF_BAD_SIGNATURE,
              "an Expires beyond int64" },
            { "Expires=&Key-Pair-Id=" KPID "&Signature=%s",
              VODLMS_CF_BAD_SIGNATURE, "an empty Expires" },
            { "Expires=1767225600&Key-Pair-Id=" KPID "&Signature=%s!",
              VODLMS_CF_BAD_SIGNATURE, "a Signature with a '!'" },
            { "Expires=1767225600&Key-Pair-Id=" KPID "&Signature=%s_",
              VODLMS_CF_BAD_SIGNATURE, "a Signature of a bad length" },
            { "Expires=1767225600&Key-Pair-Id=" KPID "&Signature=%%zz%s",
              VODLMS_CF_BAD_SIGNATURE, "a broken percent escape" },
            { "Expires=1767225600&Key-Pair-Id=" KPID "&Signature=",
              VODLMS_CF_BAD_SIGNATURE, "an empty Signature" },
            { "Expires=1767225600&Key-Pair-Id=" KPID,
              VODLMS_CF_MISSING_SIGNATURE, "no Signature" },
            { "Expires=1767225600&Signature=%s", VODLMS_CF_MISSING_SIGNATURE,
              "no Key-Pair-Id" },
            { "Key-Pair-Id=" KPID "&Signature=%s", VODLMS_CF_MISSING_SIGNATURE,
              "neither Expires nor Policy" },
            { "Hash-Algorithm=SHA256", VODLMS_CF_MISSING_SIGNATURE,
              "a lone Hash-Algorithm" },
            { "Expires=1767225600&Key-Pair-Id=K2JCJMDEHXQW5f&Signature=%s",
              VODLMS_CF_UNKNOWN_KEY_PAIR_ID, "a Key-Pair-Id in another case" },
            { "Expires=1767225600&Key-Pair-Id=&Signature=%s",
              VODLMS_CF_UNKNOWN_KEY_PAIR_ID, "an empty Key-Pair-Id" },
            { "Expires=1767225600&Key-Pair-Id=%%00&Signature=%s",
              VODLMS_CF_UNKNOWN_KEY_PAIR_ID, "a NUL Key-Pair-Id" },
            { "Policy=%%&Key-Pair-Id=" KPID "&Signature=%s",
              VODLMS_CF_BAD_SIGNATURE, "a Policy with a broken escape" },
            { "Policy=!!!!&Key-Pair-Id=" KPID "&Signature=%s",
              VODLMS_CF_BAD_SIGNATURE, "a Policy outside the alphabet" },
            { "Policy=&Key-Pair-Id=" KPID "&Signature=%s",
              VODLMS_CF_BAD_SIGNATURE, "an empty Policy" },
            { "Policy=AAAA&Expires=1767225600&Key-Pair-Id=" KPID
              "&Signature=%s", VODLMS_CF_BAD_SIGNATURE,
              "Policy wins over a valid Expires" },
            { "foo=bar&Expires=1767225600&Key-Pair-Id=" KPID "&Signature=%s",
              VODLMS_CF_BAD_SIGNATURE, "an extra parameter before" },
            { "Expires=1767225600&Key-Pair-Id=" KPID "&Signature=%s&",
              VODLMS_CF_ALLOW,
              "a trailing '&' (an empty piece) adds nothing" },
            { "Expires=1767225600&&Key-Pair-Id=" KPID "&Signature=%s&",
              VODLMS_CF_BAD_SIGNATURE, "two empty pieces make a '&'" },
        };

        size_t  i;

        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            char  *qs;

            qs = xfmt(cases[i].q, canned_sig);
            url = xfmt(M3U8 "?%s", qs);
            q.url = url;
            VERDICT(&q, cases[i].v, cases[i].t);
            free(url);
            free(qs);
        }
    }

    /* a Signature longer than any key makes */
    p = xrepeat("AAAA", 200, &n);
    url = xfmt(M3U8 "?Expires=1767225600&Key-Pair-Id=" KPID "&Signature=%s",
               p);
    q.url = url;
    VERDICT(&q, VODLMS_CF_BAD_SIGNATURE, "hostile: an 800-byte Signature");
    free(url);
    free(p);

    /* a Policy over the limit */
    p = xrepeat("AAAA", VODLMS_CF_POLICY_B64_MAX / 4 + 1, &n);
    url = xfmt(M3U8 "?Policy=%s&Key-Pair-Id=" KPID "&Signature=%s", p,
               canned_sig);
    q.url = url;
    VERDICT(&q, VODLMS_CF_BAD_SIGNATURE, "hostile: a Policy over the limit");
    free(url);
    free(p);

    /* a query no edge should take */
    p = xrepeat("a", VODLMS_CF_URL_MAX + 2 * VODLMS_CF_POLICY_B64_MAX + 1, &n);
    url = xfmt(M3U8 "?x=%s", p);
    q.url = url;
    VERDICT(&q, VODLMS_CF_RESOURCE_MISMATCH, "hostile: a 40 KiB query");
    free(url);
    free(p);

    /* the same signature checked against the wrong key */
    keys[0].id = KPID;
    keys[0].id_len = sizeof(KPID) - 1;
    keys[0].key = other_pub;
    q.url = xfmt(M3U8 "?Expires=1767225600&Key-Pair-Id=" KPID
                 "&Signature=%s", canned_sig);
    q.keys = keys;
    q.nkeys = 1;
    VERDICT(&q, VODLMS_CF_BAD_SIGNATURE, "hostile: the id mapped to another "
            "key");

    /* ... and the right one found among several */
    keys[1] = keys[0];
    keys[0].id = "KOTHERKEY";
    keys[0].id_len = sizeof("KOTHERKEY") - 1;
    keys[1].key = pub;
    q.nkeys = 2;
    VERDICT(&q, VODLMS_CF_ALLOW, "hostile: the id is the second of two");
    q.nkeys = 0;
    VERDICT(&q, VODLMS_CF_UNKNOWN_KEY_PAIR_ID, "hostile: an empty key table");
    free((char *) q.url);
    q.keys = NULL;

    /* nothing at all, and NULLs everywhere */
    q.url = seg;
    q.cookie = NULL;
    VERDICT(&q, VODLMS_CF_MISSING_SIGNATURE, "hostile: no credentials");
    q.cookie = "a=1; CloudFront=2; cloudfront-policy=3";
    VERDICT(&q, VODLMS_CF_MISSING_SIGNATURE,
            "hostile: only look-alike cookies");
    q.cookie = "CloudFront-Key-Pair-Id=" KPID;
    VERDICT(&q, VODLMS_CF_MISSING_SIGNATURE, "hostile: a lone Key-Pair-Id "
            "cookie");

    memset(&r, 0, sizeof(r));
    rc = vodlms_cf_verify(&r, &res);
    is_rc(rc, VODLMS_OK, "hostile: an all-empty request");
    is_str(vodlms_cf_verdict_str(res.verdict), "missing_signature",
           "hostile: ... is missing_signature");
    is_str(source_str(res.source), "none", "hostile: ... from nowhere");

    /* --- signed, but not a policy this edge can enforce --- */

    POLICY("not json", seg, CLIENT, NOW, VODLMS_CF_BAD_SIGNATURE,
           "policy: not JSON");
    POLICY("", seg, CLIENT, NOW, VODLMS_CF_BAD_SIGNATURE, "policy: empty");
    POLICY("[]", seg, CLIENT, NOW, VODLMS_CF_BAD_SIGNATURE,
           "policy: an array");
    POLICY("{\"Statement\":[]}", seg, CLIENT, NOW, VODLMS_CF_BAD_SIGNATURE,
           "policy: no statement");
    POLICY("{\"Statement\":{}}", seg, CLIENT, NOW, VODLMS_CF_BAD_SIGNATURE,
           "policy: Statement an object");
    POLICY("{\"Statement\":[{\"Resource\":\"" HOST "/hls/42/*\","
           "\"Condition\":{" DLT "}},{\"Resource\":\"" HOST "/hls/42/*\","
           "\"Condition\":{" DLT "}}]}", seg, CLIENT, NOW,
           VODLMS_CF_BAD_SIGNATURE, "policy: two statements");
    POLICY("{\"Statement\":[1]}", seg, CLIENT, NOW, VODLMS_CF_BAD_SIGNATURE,
           "policy: a statement that is a number");
    POLICY(POL(DLT) " x", seg, CLIENT, NOW, VODLMS_CF_BAD_SIGNATURE,
           "policy: trailing garbage");
    POLICY("{\"Statement\":[{\"Resource\":\"" HOST "/hls/42/*\","
           "\"Resource\":\"*\",\"Condition\":{" DLT "}}]}", seg, CLIENT, NOW,
           VODLMS_CF_BAD_SIGNATURE, "policy: a duplicate key");
    POLICY("{\"Statement\":[{\"Condition\":{" DLT "}}]}", seg, CLIENT, NOW,
           VODLMS_CF_BAD_SIGNATURE, "policy: no Resource (AWS: any URL)");
    POLICY("{\"Statement\":[{\"Resource\":\"\",\"Condition\":{" DLT "}}]}",
           seg, CLIENT, NOW, VODLMS_CF_BAD_SIGNATURE,
           "policy: an empty Resource");
    POLICY("{\"Statement\":[{\"Resource\":[\"*\"],\"Condition\":{" DLT "}}]}",
           seg, CLIENT, NOW, VODLMS_CF_BAD_SIGNATURE,
           "policy: a Resource array");
    POLICY("{\"Statement\":[{\"Resource\":\"" HOST "/hls/42/\\u0000*\","
           "\"Condition\":{" DLT "}}]}", seg, CLIENT, NOW,
           VODLMS_CF_BAD_SIGNATURE, "policy: a NUL in the Resource");
    POLICY("{\"Statement\":[{\"Resource\":\"" HOST "/hls/42/*\","
           "\"Effect\":\"Allow\",\"Condition\":{" DLT "}}]}", seg, CLIENT,
           NOW, VODLMS_CF_BAD_SIGNATURE, "policy: an unknown statement key");
    POLICY("{\"Statement\":[{\"Resource\":\"" HOST "/hls/42/*\"}]}", seg,
           CLIENT, NOW, VODLMS_CF_BAD_SIGNATURE, "policy: no Condition");
    POLICY(POL(""), seg, CLIENT, NOW, VODLMS_CF_BAD_SIGNATURE,
           "policy: no DateLessThan");
    POLICY(POL(DLT ",\"DateFoo\":{\"AWS:EpochTime\":1}"), seg, CLIENT, NOW,
           VODLMS_CF_BAD_SIGNATURE, "policy: an unknown condition");
    POLICY(POL("\"DateLessThan\":{\"AWS:EpochTime\":1767225600,\"x\":1}"),
           seg, CLIENT, NOW, VODLMS_CF_BAD_SIGNATURE,
           "policy: a second key beside AWS:EpochTime");
    POLICY(POL("\"DateLessThan\":{\"AWS:EpochTime\":\"1767225600\"}"), seg,
           CLIENT, NOW, VODLMS_CF_BAD_SIGNATURE,
           "policy: an epoch as a string");
    POLICY(POL("\"DateLessThan\":{\"AWS:EpochTime\":1767225600.0}"), seg,
           CLIENT, NOW, VODLMS_CF_BAD_SIGNATURE, "policy: a real epoch");
    POLICY(POL("\"DateLessThan\":{\"AWS:EpochTime\":1e10}"), seg, CLIENT,
           NOW, VODLMS_CF_BAD_SIGNATURE, "policy: an epoch in e-notation");
    POLICY(POL("\"DateLessThan\":{\"AWS:EpochTime\":99999999999999999999}"),
           seg, CLIENT, NOW, VODLMS_CF_BAD_SIGNATURE,
           "policy: an epoch beyond int64");
    POLICY(POL("\"DateLessThan\":{\"AWS:EpochTime\":9223372036854775807}"),
           seg, CLIENT, NOW, VODLMS_CF_ALLOW, "policy: the largest epoch");
    POLICY(POL("\"DateLessThan\":{\"AWS:EpochTime\":-1}"), seg, CLIENT, NOW,
           VODLMS_CF_EXPIRED, "policy: a negative DateLessThan");
    POLICY(POL("\"DateLessThan\":{\"AWS:EpochTime\":0}"), seg, CLIENT, NOW,
           VODLMS_CF_EXPIRED, "policy: DateLessThan 0");
    POLICY(POL(DLT ",\"DateGreaterThan\":{\"AWS:EpochTime\":-100}"), seg,
           CLIENT, NOW, VODLMS_CF_ALLOW, "policy: a negative DateGreaterThan");
    POLICY(POL(DLT ",\"DateGreaterThan\":{\"AWS:EpochTime\":"
               "9223372036854775807}"), seg, CLIENT, NOW,
           VODLMS_CF_NOT_YET_VALID, "policy: DateGreaterThan at int64 max");
    POLICY(POL(DLT ",\"DateGreaterThan\":{\"AWS:EpochTime\":\"1\"}"), seg,
           CLIENT, NOW, VODLMS_CF_BAD_SIGNATURE,
           "policy: DateGreaterThan a string");
    POLICY(POL(DLT ",\"DateGreaterThan\":{\"AWS:EpochTime\":1765000000}"),
           seg, CLIENT, NOW, VODLMS_CF_NOT_YET_VALID,
           "policy: now == DateGreaterThan");
    POLICY(POL("\"DateLessThan\":{\"AWS:EpochTime\":1765000001}"), seg,
           CLIENT, NOW, VODLMS_CF_ALLOW, "policy: now == DateLessThan - 1");

    /* --- CIDRs and client addresses --- */

#define IPPOL(cidr)  POL(DLT ",\"IpAddress\":{\"AWS:SourceIp\":\"" cidr "\"}")

    POLICY(IPPOL("0.0.0.0/0"), seg, "198.18.0.1", NOW, VODLMS_CF_ALLOW,
           "ip: /0 lets any IPv4 in");
    POLICY(IPPOL("0.0.0.0/0"), seg, "2001:db8::1", NOW, VODLMS_CF_IP_MISMATCH,
           "ip: /0 is still IPv4 only");
    POLICY(IPPOL("203.0.113.7/32"), seg, CLIENT, NOW, VODLMS_CF_ALLOW,
           "ip: /32 exact");
    POLICY(IPPOL("203.0.113.7/32"), seg, "203.0.113.6", NOW,
           VODLMS_CF_IP_MISMATCH, "ip: /32 off by one");
    POLICY(IPPOL("203.0.113.7"), seg, CLIENT, NOW, VODLMS_CF_ALLOW,
           "ip: a bare address is /32");
    POLICY(IPPOL("203.0.113.7/33"), seg, CLIENT, NOW, VODLMS_CF_IP_MISMATCH,
           "ip: /33 fails closed");
    POLICY(IPPOL("203.0.113.0/31"), seg, CLIENT, NOW, VODLMS_CF_IP_MISMATCH,
           "ip: /31 without the client");
    POLICY(IPPOL("203.0.113.0/29"), seg, CLIENT, NOW, VODLMS_CF_ALLOW,
           "ip: /29 with the client");
    POLICY(IPPOL("203.0.113.255/24"), seg, CLIENT, NOW, VODLMS_CF_ALLOW,
           "ip: host bits set in the network are ignored");
    POLICY(IPPOL("128.0.0.0/1"), seg, CLIENT, NOW, VODLMS_CF_ALLOW,
           "ip: /1");
    POLICY(IPPOL("2001:db8::/32"), seg, CLIENT, NOW, VODLMS_CF_IP_MISMATCH,
           "ip: an IPv6 CIDR fails closed");
    POLICY(IPPOL(""), seg, CLIENT, NOW, VODLMS_CF_IP_MISMATCH,
           "ip: an empty CIDR");
    POLICY(POL(DLT ",\"IpAddress\":{\"AWS:SourceIp\":[\"0.0.0.0/0\"]}"), seg,
           CLIENT, NOW, VODLMS_CF_BAD_SIGNATURE, "ip: a CIDR list");
    POLICY(IPPOL("203.0.113.7/32"), seg, "2001:db8::1", NOW,
           VODLMS_CF_IP_MISMATCH, "ip: an IPv6 client");
    POLICY(IPPOL("203.0.113.7/32"), seg, "::ffff:203.0.113.7", NOW,
           VODLMS_CF_ALLOW, "ip: an IPv4-mapped client");
    POLICY(IPPOL("203.0.113.7/32"), seg, "", NOW, VODLMS_CF_IP_MISMATCH,
           "ip: no client address");
    POLICY(IPPOL("203.0.113.7/32"), seg, NULL, NOW, VODLMS_CF_IP_MISMATCH,
           "ip: a NULL client address");
    POLICY(POL(DLT), seg, "2001:db8::1", NOW, VODLMS_CF_ALLOW,
           "ip: an IPv6 client and no IpAddress condition");

    /* --- resources --- */

    POLICY(POL(DLT), HOST "/hls/42/seg.ts?v=1", CLIENT, NOW,
           VODLMS_CF_RESOURCE_MISMATCH,
           "resource: a '*' path does not cover a query (sections)");
    POLICY(POL(DLT), "http://cdn.example.test/hls/42/seg.ts", CLIENT, NOW,
           VODLMS_CF_RESOURCE_MISMATCH, "resource: the other scheme");
    POLICY(POL(DLT), "https://cdn.example.test:8443/hls/42/seg.ts", CLIENT,
           NOW, VODLMS_CF_RESOURCE_MISMATCH, "resource: another port");

    /* stars by the thousand: collapsed, linear */
    p = xrepeat("*", 3000, &n);
    pol = xfmt("{\"Statement\":[{\"Resource\":\"" HOST "/%sx\","
               "\"Condition\":{" DLT "}}]}", p);
    free(p);
    p = xrepeat("a", 6000, &n);
    url = xfmt(HOST "/%sx", p);
    POLICY(pol, url, CLIENT, NOW, VODLMS_CF_ALLOW,
           "resource: 3000 stars against 6000 bytes");
    free(url);
    url = xfmt(HOST "/%sy", p);
    POLICY(pol, url, CLIENT, NOW, VODLMS_CF_RESOURCE_MISMATCH,
           "resource: 3000 stars, no final x");
    free(url);
    free(pol);

    /* the backtracking killer, within the Resource limit */
    free(p);
    p = xrepeat("*a", 1500, &n);
    pol = xfmt("{\"Statement\":[{\"Resource\":\"" HOST "/%s*b\","
               "\"Condition\":{" DLT "}}]}", p);
    free(p);
    p = xrepeat("a", 6000, &n);
    url = xfmt(HOST "/%s", p);
    {
        clock_t  t0;
        double   secs;

        t0 = clock();
        POLICY(pol, url, CLIENT, NOW, VODLMS_CF_RESOURCE_MISMATCH,
               "resource: \"*a\" x 1500 + \"*b\" against 6000 a's");
        secs = (double) (clock() - t0) / CLOCKS_PER_SEC;
        ok(secs < 30.0, "resource: ... in %.3f s of CPU", secs);
    }
    free(url);
    free(pol);
    free(p);

    /* a Resource over VODLMS_CF_RESOURCE_MAX */
    p = xrepeat("a", VODLMS_CF_RESOURCE_MAX, &n);
    pol = xfmt("{\"Statement\":[{\"Resource\":\"" HOST "/%s\","
               "\"Condition\":{" DLT "}}]}", p);
    url = xfmt(HOST "/%s", p);
    POLICY(pol, url, CLIENT, NOW, VODLMS_CF_BAD_SIGNATURE,
           "resource: over the limit");
    free(url);
    free(pol);
    free(p);

    /* signed with SHA256 but the cookie does not say so, and vice versa */
    cookie = signed_cookies(priv, VODLMS_CF_SHA1, LIT(POL(DLT)), KPID);
    p = xfmt("%s; CloudFront-Hash-Algorithm=SHA256", cookie);
    memset(&q, 0, sizeof(q));
    q.url = seg;
    q.cookie = p;
    q.client = CLIENT;
    q.now = NOW;
    VERDICT(&q, VODLMS_CF_BAD_SIGNATURE,
            "hash: a SHA1 signature announced as SHA256");
    free(p);
    q.cookie = cookie;
    VERDICT(&q, VODLMS_CF_ALLOW, "hash: ... and as it is");
    free(cookie);

    /* a percent-encoded cookie value is decoded */
    cookie = signed_cookies(priv, VODLMS_CF_SHA1, LIT(POL(DLT)),
                            "%4B2JCJMDEHXQW5F");
    q.cookie = cookie;
    VERDICT(&q, VODLMS_CF_ALLOW, "cookie: a percent-encoded Key-Pair-Id");
    free(cookie);
}


/* ------------------------------------------------------------- issuer */

static void
test_issuer_errors(void)
{
    char                 buf[4096], url[64];
    size_t               n;
    vodlms_cf_sign_t     s, t;
    vodlms_cf_signed_t   out;
    vodlms_cf_cookie_t   ck[VODLMS_CF_COOKIES_MAX];

    memset(&s, 0, sizeof(s));
    s.url = HOST "/a.m3u8";
    s.url_len = strlen(s.url);
    s.expires = EXPIRES;
    s.key_pair_id = KPID;
    s.key_pair_id_len = sizeof(KPID) - 1;

    is_int(vodlms_cf_policy_type(&s), VODLMS_CF_CANNED, "type: the url alone");
    t = s;
    t.resource = HOST "/a.m3u8";
    t.resource_len = t.url_len;
    is_int(vodlms_cf_policy_type(&t), VODLMS_CF_CANNED,
           "type: a resource equal to the url");
    t.resource = HOST "/a.m3u";
    t.resource_len = strlen(t.resource);
    is_int(vodlms_cf_policy_type(&t), VODLMS_CF_CUSTOM,
           "type: another resource");
    t = s;
    t.url = HOST "/a*.m3u8";
    t.url_len = strlen(t.url);
    is_int(vodlms_cf_policy_type(&t), VODLMS_CF_CUSTOM,
           "type: a '*' in the url");
    t = s;
    t.start = 1;
    is_int(vodlms_cf_policy_type(&t), VODLMS_CF_CUSTOM, "type: a start");
    t = s;
    t.ip = CLIENT;
    t.ip_len = strlen(CLIENT);
    is_int(vodlms_cf_policy_type(&t), VODLMS_CF_CUSTOM, "type: an ip");

    /* a custom policy from the url itself, because of the ip */
    is_rc(vodlms_cf_sign(&t, VODLMS_CF_FOR_URL, priv, buf, sizeof(buf), &out),
          VODLMS_OK, "issuer: custom from the url and an ip");
    is_lit(out.policy.data, out.policy.len,
           ("{\"Statement\":[{\"Resource\":\"" HOST "/a.m3u8\","
               "\"Condition\":{\"DateLessThan\":{\"AWS:EpochTime\":"
               "1767225600},\"IpAddress\":{\"AWS:SourceIp\":"
               "\"203.0.113.7/32\"}}}]}"),
           "issuer: ... its policy");

    /* refusals */
#define REFUSE(field, val, len_field, len, t)                                 \
    do {                                                                      \
        vodlms_cf_sign_t  bad = s;                                            \
        bad.field = (val);                                                    \
        bad.len_field = (len);                                                \
        is_rc(vodlms_cf_prepare(&bad, VODLMS_CF_FOR_URL, buf, sizeof(buf),    \
                                &out),                                        \
              VODLMS_EMALFORMED, "issuer refuses %s", t);                     \
    } while (0)

    REFUSE(key_pair_id, "K P", key_pair_id_len, 3, "a space in the id");
    REFUSE(key_pair_id, "K&x=1", key_pair_id_len, 5, "a '&' in the id");
    REFUSE(key_pair_id, "", key_pair_id_len, 0, "an empty id");
    REFUSE(key_pair_id, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
           "AAAAAAAAAAAAAAA", key_pair_id_len, 65, "a 65-byte id");
    REFUSE(url, "ftp://x/a", url_len, 9, "an ftp url");
    REFUSE(url, HOST "/a#b", url_len, strlen(HOST) + 4, "a fragment");
    REFUSE(url, "", url_len, 0, "an empty url");
    REFUSE(url, NULL, url_len, 0, "a NULL url");
    REFUSE(url, HOST "/%zz", url_len, strlen(HOST) + 4,
           "a broken escape in the path");
    REFUSE(resource, "", resource_len, 0, "an empty resource");
    REFUSE(resource, "x\xff", resource_len, 2, "a resource of invalid UTF-8");
    REFUSE(ip, "1.2.3", ip_len, 5, "a bad ip");
    REFUSE(expires, 0, start, 0, "expires 0");
    REFUSE(start, EXPIRES, url_len, s.url_len, "start == expires");
    REFUSE(hash, (vodlms_cf_hash_t) 7, url_len, s.url_len, "an unknown hash");

    is_rc(vodlms_cf_prepare(&s, VODLMS_CF_FOR_URL, buf, 20, &out),
          VODLMS_ETOOLONG, "issuer: a short buffer");

    /* prepare only: nothing to build until a signature is in */
    is_rc(vodlms_cf_prepare(&s, VODLMS_CF_FOR_URL, buf, sizeof(buf), &out),
          VODLMS_OK, "issuer: prepared");
    is_int(out.signature_len, 0, "issuer: ... not signed");
    is_int(vodlms_cf_url_size(&out), 0, "issuer: ... no url size");
    is_rc(vodlms_cf_url_build(&out, url, sizeof(url), &n), VODLMS_EMALFORMED,
          "issuer: ... no url");
    is_int(vodlms_cf_cookies(&out, ck), 0, "issuer: ... no cookies");

    /* a cached signature dropped in */
    memcpy(out.signature, "c2ln", 4);
    out.signature_len = 4;
    is_int(vodlms_cf_url_size(&out),
           strlen(HOST "/a.m3u8?Expires=1767225600&Key-Pair-Id=" KPID
                  "&Signature=c2ln"), "issuer: url size with a cached "
           "signature");
    is_rc(vodlms_cf_url_build(&out, url, sizeof(url), &n), VODLMS_ETOOLONG,
          "issuer: url into a short buffer");
    is_rc(vodlms_cf_url_build(&out, buf, sizeof(buf), &n), VODLMS_OK,
          "issuer: url into a long one");
    is_lit(buf, n, (HOST "/a.m3u8?Expires=1767225600&Key-Pair-Id=" KPID
                       "&Signature=c2ln"), "issuer: ... the url");

    /* the worst case of vodlms_cf_prepare_size(): every byte expands */
    {
        char   *big, *b, *h, *pa, *qu;
        size_t  k, size;

        h = xrepeat("\x01", 300, &k);
        pa = xrepeat(" \"", 300, &k);
        qu = xrepeat("'", 300, &k);
        big = xfmt("https://%s/%s?%s", h, pa, qu);
        free(qu);
        free(pa);
        free(h);
        t = s;
        t.url = big;
        t.url_len = strlen(big);

        for (k = 0; k < 2; k++) {
            size = vodlms_cf_prepare_size(&t);
            b = malloc(size);
            if (b == NULL) {
                abort();
            }

            is_rc(vodlms_cf_sign(&t, k ? VODLMS_CF_FOR_COOKIES
                                       : VODLMS_CF_FOR_URL,
                                 priv, b, size, &out),
                  VODLMS_OK, "issuer: %s of a url where every byte expands, "
                  "in prepare_size() bytes", k ? "cookies" : "a URL");
            free(b);
        }

        free(big);
    }

    /* a public key cannot sign */
    is_rc(vodlms_cf_sign(&s, VODLMS_CF_FOR_URL, pub, buf, sizeof(buf), &out),
          VODLMS_EINTERNAL, "issuer: signing with a public key fails");
    ok(ERR_peek_error() == 0, "issuer: ... and leaves no OpenSSL error");
}


/* ------------------------------------------------------ signature cache */

typedef struct {
    int            answer;          /* what lookup() says */
    int            lookups;
    int            stores;
    int64_t        stored_expires;
    char           stored_kid[VODLMS_CF_KEY_PAIR_ID_MAX + 1];
    unsigned char  value[VODLMS_CF_SIG_CACHE_VALUE_MAX];
    size_t         value_len;       /* what store() kept, lookup() gives */
} fake_cache_t;


static int
fake_lookup(void *data, const char *key_id, size_t key_id_len,
    vodlms_cf_hash_t hash, const unsigned char *sig, size_t sig_len,
    const char *policy, size_t policy_len, unsigned char *val,
    size_t val_size, size_t *val_len)
{
    fake_cache_t  *c = data;

    (void) key_id; (void) key_id_len; (void) hash;
    (void) sig; (void) sig_len; (void) policy; (void) policy_len;

    c->lookups++;

    *val_len = 0;
    if (c->answer && c->value_len <= val_size) {
        memcpy(val, c->value, c->value_len);
        *val_len = c->value_len;
    }

    return c->answer;
}


static void
fake_store(void *data, const char *key_id, size_t key_id_len,
    vodlms_cf_hash_t hash, const unsigned char *sig, size_t sig_len,
    const char *policy, size_t policy_len, const unsigned char *val,
    size_t val_len, int64_t expires)
{
    fake_cache_t  *c = data;

    (void) hash; (void) sig; (void) sig_len; (void) policy; (void) policy_len;

    c->stores++;
    c->stored_expires = expires;
    snprintf(c->stored_kid, sizeof(c->stored_kid), "%.*s", (int) key_id_len,
             key_id);

    if (val_len <= sizeof(c->value)) {
        memcpy(c->value, val, val_len);
        c->value_len = val_len;
    }
}


static void
test_sig_cache(void)
{
    char                 *buf, *cookie, *bad;
    size_t                size, nc;
    vodlms_rc_t           rc;
    vreq_t                q;
    fake_cache_t          fc;
    vodlms_cf_sign_t      s;
    vodlms_cf_signed_t    out;
    vodlms_cf_result_t    res;
    vodlms_cf_cookie_t    ck[VODLMS_CF_COOKIES_MAX];
    vodlms_cf_sig_cache_t sc = { &fc, fake_lookup, fake_store };

    memset(&s, 0, sizeof(s));
    s.url = HOST "/hls/42/master.m3u8";
    s.url_len = strlen(s.url);
    s.resource = HOST "/hls/42/*";
    s.resource_len = strlen(s.resource);
    s.expires = EXPIRES;
    s.key_pair_id = KPID;
    s.key_pair_id_len = sizeof(KPID) - 1;

    size = vodlms_cf_prepare_size(&s);
    buf = malloc(size);
    if (buf == NULL) {
        abort();
    }

    rc = vodlms_cf_sign(&s, VODLMS_CF_FOR_COOKIES, priv, buf, size, &out);
    is_rc(rc, VODLMS_OK, "sig cache: cookies signed");
    nc = vodlms_cf_cookies(&out, ck);
    cookie = cookie_header(ck, nc);

    /* the same cookies with one signature character changed */
    bad = xstrdup(cookie);         /* NUL-ended: run_verify() takes strlen() */
    {
        char *p = strstr(bad, "CloudFront-Signature=");
        p += sizeof("CloudFront-Signature=") - 1;
        *p = (*p == 'A') ? 'B' : 'A';
    }

    memset(&q, 0, sizeof(q));
    q.url = HOST "/hls/42/seg_00001.ts";
    q.client = CLIENT;
    q.now = NOW;
    q.sig_cache = &sc;

    /* a miss: the real check runs, and a good signature is stored once,
       with its policy's expiry */
    memset(&fc, 0, sizeof(fc));
    q.cookie = cookie;
    ok(run_verify(&q, &res, &rc) && res.verdict == VODLMS_CF_ALLOW,
       "sig cache: a miss still allows valid cookies");
    is_int(res.sig_cached, 0, "sig cache: ... not from the cache");
    is_int(fc.lookups, 1, "sig cache: ... asked once");
    is_int(fc.stores, 1, "sig cache: ... stored once");
    is_int(fc.stored_expires, EXPIRES, "sig cache: ... until DateLessThan");
    is_str(fc.stored_kid, KPID, "sig cache: ... under its key pair id");

    /* a bad signature is never stored */
    memset(&fc, 0, sizeof(fc));
    q.cookie = bad;
    ok(run_verify(&q, &res, &rc) && res.verdict == VODLMS_CF_BAD_SIGNATURE,
       "sig cache: a miss with a bad signature denies");
    is_int(fc.stores, 0, "sig cache: ... and stores nothing");

    /* a hit is what the verifier trusts: the glue only answers 1 for bytes
       it stored after a real check, so a wrong signature "passes" here */
    memset(&fc, 0, sizeof(fc));
    fc.answer = 1;
    ok(run_verify(&q, &res, &rc) && res.verdict == VODLMS_CF_ALLOW,
       "sig cache: a hit skips the RSA check");
    is_int(res.sig_cached, 1, "sig cache: ... says so");
    is_int(fc.stores, 0, "sig cache: ... and does not store again");

    /* time, Resource and IP are still checked on a hit */
    q.cookie = cookie;
    q.now = EXPIRES;
    ok(run_verify(&q, &res, &rc) && res.verdict == VODLMS_CF_EXPIRED,
       "sig cache: a hit past DateLessThan is expired");

    q.now = NOW;
    q.url = HOST "/hls/43/seg_00001.ts";
    ok(run_verify(&q, &res, &rc) && res.verdict == VODLMS_CF_RESOURCE_MISMATCH,
       "sig cache: a hit for another video is resource_mismatch");

    /*
     * With the signature, the conditions the policy parsed to are stored,
     * and a hit uses them instead of parsing again.  White-box proof: the
     * same real cookies, but the cache's copy of the conditions doctored to
     * name video 43 -- the hit now allows 43 (the cache is trusted, as the
     * signature mark always was; only the glue writes it, for the bytes it
     * was told of).
     */
    memset(&fc, 0, sizeof(fc));
    q.cookie = cookie;
    q.url = HOST "/hls/42/seg_00001.ts";
    ok(run_verify(&q, &res, &rc) && res.verdict == VODLMS_CF_ALLOW
       && fc.stores == 1,
       "sig cache: a miss stores the signature with its conditions");
    ok(fc.value_len > 21 && fc.value[0] == 'P'
       && memmem(fc.value, fc.value_len, HOST "/hls/42/*",
                 strlen(HOST "/hls/42/*")) != NULL,
       "sig cache: ... the Resource among them");

    fc.answer = 1;
    ok(run_verify(&q, &res, &rc) && res.verdict == VODLMS_CF_ALLOW
       && res.sig_cached && res.expires == EXPIRES,
       "sig cache: a hit with stored conditions allows, with DateLessThan");

    {
        unsigned char *r42 = memmem(fc.value, fc.value_len, "/hls/42/", 8);
        r42[6] = '3';                               /* "/hls/43/" */
    }
    q.url = HOST "/hls/43/seg_00001.ts";
    ok(run_verify(&q, &res, &rc) && res.verdict == VODLMS_CF_ALLOW,
       "sig cache: a hit takes the stored conditions (no second parse)");

    /* a value that is not a packed policy: parsed again, as on a miss */
    fc.value_len = 1;
    fc.value[0] = '1';
    ok(run_verify(&q, &res, &rc) && res.verdict == VODLMS_CF_RESOURCE_MISMATCH,
       "sig cache: a hit without usable conditions parses the policy");

    /*
     * An empty AWS:SourceIp is a condition that can never hold: denied on
     * the miss, and still denied on the hit that takes the packed copy
     * (the copy says that there was a SourceIp, not only its bytes).
     */
    {
        char        *ipc;
        const char  *pol =
            "{\"Statement\":[{\"Resource\":\"" HOST "/hls/42/*\","
            "\"Condition\":{\"DateLessThan\":{\"AWS:EpochTime\":1767225600},"
            "\"IpAddress\":{\"AWS:SourceIp\":\"\"}}}]}";

        ipc = signed_cookies(priv, VODLMS_CF_SHA1, pol, strlen(pol), KPID);
        memset(&fc, 0, sizeof(fc));
        q.cookie = ipc;
        q.url = HOST "/hls/42/seg_00001.ts";
        ok(ipc && run_verify(&q, &res, &rc)
           && res.verdict == VODLMS_CF_IP_MISMATCH && fc.stores == 1,
           "sig cache: an empty SourceIp is ip_mismatch on a miss");
        fc.answer = 1;
        ok(run_verify(&q, &res, &rc) && res.sig_cached
           && res.verdict == VODLMS_CF_IP_MISMATCH,
           "sig cache: ... and on the hit that takes the packed conditions");
        free(ipc);
    }

    free(bad);
    free(cookie);
    free(buf);
}

/* the raw paths the edge refuses before any signature check */

static void
test_path_safe(void)
{
    size_t  i;

    static const struct {
        const char  *path;
        int          safe;
    } cases[] = {
        { "/hls/42/seg_00001.ts", 1 },
        { "/hls/42/master.m3u8", 1 },
        { "/", 1 },
        { "", 1 },
        { "/hls/42/.hidden", 1 },
        { "/hls/42/a..b.ts", 1 },
        { "/hls/42/.../x", 1 },
        { "/hls/42/%2e%2e%2e/x", 1 },
        { "/hls/42/seg%20a.ts", 1 },
        { "/hls/42/%252e%252e/x", 1 },         /* decoded once: "%2e%2e" */
        { "/hls/42/../43/seg.ts", 0 },
        { "/hls/42/./seg.ts", 0 },
        { "/hls/42/..", 0 },
        { "/hls/42/.", 0 },
        { "/..", 0 },
        { "/hls/42/%2e%2e/43/seg.ts", 0 },
        { "/hls/42/%2E%2E/43/seg.ts", 0 },
        { "/hls/42/.%2e/43/seg.ts", 0 },
        { "/hls/42/%2e./43/seg.ts", 0 },
        { "/hls/42/%2e/seg.ts", 0 },
        { "/hls/42%2f..%2f43/seg.ts", 0 },
        { "/hls/42/..%2F43/seg.ts", 0 },
        { "/hls/42/x%5c..%5c43", 0 },
        { "/hls/42/x%5C", 0 },
        { "/hls/42//../43/seg.ts", 0 },
        { "/hls/42/..#", 0 },
        { "/hls/42/%2e%2e#x", 0 },
        { "/hls/42/seg#1.ts", 0 },
        { "/hls/42/seg%23.ts", 1 },             /* a decoded '#' is a name */
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char    *p;
        size_t   n;

        n = strlen(cases[i].path);
        p = xdup(cases[i].path, n);

        is_int(vodlms_cf_path_safe(p, n), cases[i].safe,
               "path_safe: \"%s\" is %s", cases[i].path,
               cases[i].safe ? "served" : "refused");
        free(p);
    }
}


int
main(void)
{
    const char  *env;

    env = getenv("VODLMS_VECTORS_DIR");

    snprintf(vectors, sizeof(vectors), "%s",
             env && env[0] ? env
                           : VODLMS_REPO_ROOT "/../shared/vectors/cloudfront");
    diag("vectors from %s", vectors);

    priv = load_key("test_private_key.pem", 1);
    pub = load_key("test_public_key.pem", 0);
    other_pub = load_key("test_other_public_key.pem", 0);

    test_b64();
    test_keys();
    test_ipv4();
    test_policy_build();
    test_normalize();
    test_params();
    test_match();
    test_match_shortcut();
    test_url_split();
    test_path_safe();
    test_sign_vectors();
    test_verify_vectors();
    test_ecdsa();
    test_sig_cache();
    test_verify_hostile();
    test_issuer_errors();

    EVP_PKEY_free(other_pub);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(priv);

    return done_testing();
}
