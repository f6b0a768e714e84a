/*
 * SigV4 signer against the vectors in <repo>/../shared/vectors/sigv4
 * (or $VODLMS_SIGV4_VECTORS): the AWS signing test suite (header and
 * presigned forms) and the S3 documentation examples.  TAP on stdout.
 * Missing vectors are a failure, never a skip.
 */

#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "sigv4.h"

#ifndef VH_REPO_ROOT
#define VH_REPO_ROOT "."
#endif

static int  tests, failures;

static void
ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#include <stdarg.h>

static void
ok(int cond, const char *fmt, ...)
{
    va_list ap;

    tests++;
    if (!cond) {
        failures++;
    }
    printf("%sok %d - ", cond ? "" : "not ", tests);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

static int
is_str(const char *got, const char *want, const char *what, const char *name)
{
    int same = got && want && strcmp(got, want) == 0;

    ok(same, "%s: %s", name, what);
    if (!same) {
        printf("#   got:  '%s'\n#   want: '%s'\n", got ? got : "(null)",
               want ? want : "(null)");
    }
    return same;
}

static char *
slurp(const char *dir, const char *file, size_t *len)
{
    char    path[8800];
    FILE   *f;
    char   *buf;
    long    n;

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc(n + 1);
    if (buf == NULL || fread(buf, 1, n, f) != (size_t) n) {
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    if (len) {
        *len = n;
    }
    return buf;
}

typedef struct {
    char               *method, *path, *query;
    vh_sigv4_header_t   h[32];
    size_t              nh;
    char               *body;
    size_t              body_len;
    char               *mem;
} http_req_t;

/* "METHOD target HTTP/1.1\nName:value\n...\n\nbody" */
static int
parse_request(char *text, size_t len, http_req_t *r)
{
    char *line, *nl, *sp1, *sp2, *q;

    memset(r, 0, sizeof(*r));
    r->mem = text;
    nl = strchr(text, '\n');
    if (nl == NULL) {
        return -1;
    }
    *nl = '\0';
    sp1 = strchr(text, ' ');
    sp2 = strrchr(text, ' ');
    if (sp1 == NULL || sp2 == NULL || sp1 == sp2) {
        return -1;
    }
    *sp1 = '\0';
    *sp2 = '\0';
    r->method = text;
    r->path = sp1 + 1;
    q = strchr(r->path, '?');
    if (q != NULL) {
        *q = '\0';
        r->query = q + 1;
    }
    line = nl + 1;
    while (line < text + len && *line != '\n' && *line != '\0') {
        char *colon;
        nl = strchr(line, '\n');
        if (nl != NULL) {
            *nl = '\0';
        }
        colon = strchr(line, ':');
        if (colon == NULL || r->nh == 32) {
            return -1;
        }
        *colon = '\0';
        r->h[r->nh].name = line;
        r->h[r->nh++].value = colon + 1;
        if (nl == NULL) {
            line = text + len;
            break;
        }
        line = nl + 1;
    }
    if (line < text + len && *line == '\n') {
        r->body = line + 1;
        r->body_len = text + len - r->body;
    }
    return 0;
}

/* the value of "Name:value" in an HTTP message (case-insensitive name) */
static char *
header_line(const char *msg, const char *name)
{
    const char *p = msg;
    size_t      n = strlen(name);

    while ((p = strchr(p, '\n')) != NULL) {
        p++;
        if (*p == '\n') {
            break;
        }
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *e = strchr(p, '\n');
            size_t      len = e ? (size_t) (e - p - n - 1) : strlen(p + n + 1);
            char       *v = malloc(len + 1);
            memcpy(v, p + n + 1, len);
            v[len] = '\0';
            return v;
        }
    }
    return NULL;
}

static void
suite_case(const char *base, const char *name)
{
    char                dir[8192], date[17], *ctxs, *req, *want, *want2;
    size_t              reqlen;
    json_t             *ctx, *cred;
    json_error_t        jerr;
    http_req_t          r;
    vh_sigv4_params_t   p;
    vh_sigv4_request_t  rq;
    vh_sigv4_result_t   out;
    const char         *ts;
    size_t              i;

    snprintf(dir, sizeof(dir), "%s/%s", base, name);
    ctxs = slurp(dir, "context.json", NULL);
    req = slurp(dir, "request.txt", &reqlen);
    ctx = ctxs ? json_loads(ctxs, 0, &jerr) : NULL;
    if (ctx == NULL || req == NULL || parse_request(req, reqlen, &r) != 0) {
        ok(0, "%s: read context.json and request.txt", name);
        free(ctxs); free(req); json_decref(ctx);
        return;
    }
    cred = json_object_get(ctx, "credentials");
    ts = json_string_value(json_object_get(ctx, "timestamp"));
    /* 2015-08-30T12:36:00Z -> 20150830T123600Z */
    snprintf(date, sizeof(date), "%.4s%.2s%.2sT%.2s%.2s%.2sZ", ts, ts + 5, ts + 8,
             ts + 11, ts + 14, ts + 17);

    memset(&p, 0, sizeof(p));
    p.access_key = json_string_value(json_object_get(cred, "access_key_id"));
    p.secret_key = json_string_value(json_object_get(cred, "secret_access_key"));
    p.session_token = json_string_value(json_object_get(cred, "token"));
    p.region = json_string_value(json_object_get(ctx, "region"));
    p.service = json_string_value(json_object_get(ctx, "service"));
    p.amz_date = date;
    p.normalize_path = json_is_true(json_object_get(ctx, "normalize"));
    p.sign_body = json_is_true(json_object_get(ctx, "sign_body"));
    p.expires = (long) json_integer_value(json_object_get(ctx, "expiration_in_seconds"));

    memset(&rq, 0, sizeof(rq));
    rq.method = r.method;
    rq.path = r.path;
    rq.query = r.query;
    rq.headers = r.h;
    rq.nheaders = r.nh;
    rq.body = r.body;
    rq.body_len = r.body_len;

    /* the Authorization header form */
    if (vh_sigv4_sign_headers(&p, &rq, &out) != 0) {
        ok(0, "%s: header form signs", name);
    } else {
        want = slurp(dir, "header-canonical-request.txt", NULL);
        is_str(out.canonical_request, want, "header canonical request", name);
        free(want);
        want = slurp(dir, "header-string-to-sign.txt", NULL);
        is_str(out.string_to_sign, want, "header string to sign", name);
        free(want);
        want = slurp(dir, "header-signature.txt", NULL);
        is_str(out.signature, want, "header signature", name);
        free(want);
        want = slurp(dir, "header-signed-request.txt", NULL);
        want2 = want ? header_line(want, "Authorization") : NULL;
        is_str(out.authorization, want2, "Authorization header", name);
        free(want2);
        for (i = 0; i < out.nadd; i++) {
            char what[128];
            want2 = want ? header_line(want, out.add[i].name) : NULL;
            snprintf(what, sizeof(what), "added header %s", out.add[i].name);
            is_str(out.add[i].value, want2, what, name);
            free(want2);
        }
        free(want);
        vh_sigv4_result_free(&out);
    }

    /* the presigned (query string) form */
    if (vh_sigv4_presign(&p, &rq, &out) != 0) {
        ok(0, "%s: query form signs", name);
    } else {
        char line[8192];
        want = slurp(dir, "query-canonical-request.txt", NULL);
        is_str(out.canonical_request, want, "query canonical request", name);
        free(want);
        want = slurp(dir, "query-string-to-sign.txt", NULL);
        is_str(out.string_to_sign, want, "query string to sign", name);
        free(want);
        want = slurp(dir, "query-signature.txt", NULL);
        is_str(out.signature, want, "query signature", name);
        free(want);
        want = slurp(dir, "query-signed-request.txt", NULL);
        if (want && strchr(want, '\n')) {
            *strchr(want, '\n') = '\0';
        }
        snprintf(line, sizeof(line), "%s %s?%s HTTP/1.1", r.method, r.path,
                 out.presigned_query);
        is_str(line, want, "presigned request line", name);
        free(want);
        vh_sigv4_result_free(&out);
    }

    free(ctxs);
    free(req);
    json_decref(ctx);
}

static int
cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

static void
test_suite(const char *vectors)
{
    char            base[4096];
    DIR            *d;
    struct dirent  *e;
    char           *names[256];
    size_t          n = 0, i;

    snprintf(base, sizeof(base), "%s/aws-signing-test-suite/v4", vectors);
    d = opendir(base);
    if (d == NULL) {
        ok(0, "open %s", base);
        return;
    }
    while ((e = readdir(d)) != NULL && n < 256) {
        if (e->d_name[0] != '.') {
            names[n++] = strdup(e->d_name);
        }
    }
    closedir(d);
    qsort(names, n, sizeof(char *), cmp_names);
    ok(n == 22, "the AWS suite has 22 cases (found %zu)", n);
    for (i = 0; i < n; i++) {
        suite_case(base, names[i]);
        free(names[i]);
    }
}

static void
strip_comma_space(char *s)
{
    char *w = s, prev = '\0';

    for (; *s; s++) {
        char c = *s;
        if (!(c == ' ' && prev == ',')) {
            *w++ = c;
        }
        prev = c;
    }
    *w = '\0';
}

static void
test_s3(const char *vectors)
{
    char                dir[4096], *text;
    json_t             *root, *ctx, *cases, *c;
    json_error_t        jerr;
    size_t              i, j;
    unsigned char       key[32];
    char                keyhex[65];

    snprintf(dir, sizeof(dir), "%s/s3-doc-examples", vectors);
    text = slurp(dir, "s3-doc-examples.json", NULL);
    root = text ? json_loads(text, 0, &jerr) : NULL;
    free(text);
    if (root == NULL) {
        ok(0, "read %s/s3-doc-examples.json", dir);
        return;
    }
    ctx = json_object_get(root, "context");
    cases = json_object_get(root, "cases");
    ok(json_array_size(cases) == 4, "four S3 examples");

    vh_sigv4_signing_key(json_string_value(json_object_get(ctx, "secretAccessKey")),
                         json_string_value(json_object_get(ctx, "dateStamp")),
                         json_string_value(json_object_get(ctx, "region")),
                         json_string_value(json_object_get(ctx, "service")), key);
    for (i = 0; i < 32; i++) {
        sprintf(keyhex + 2 * i, "%02x", key[i]);
    }
    is_str(keyhex, json_string_value(json_object_get(ctx, "signingKeyHex_computed")),
           "signing key", "s3");

    json_array_foreach(cases, i, c) {
        json_t             *req = json_object_get(c, "request"),
                           *exp = json_object_get(c, "expected"), *hs;
        const char         *name = json_string_value(json_object_get(c, "name"));
        vh_sigv4_header_t   h[16];
        vh_sigv4_params_t   p;
        vh_sigv4_request_t  rq;
        vh_sigv4_result_t   out;
        const char         *payload;
        char                sub[8192], *want;

        memset(&p, 0, sizeof(p));
        p.access_key = json_string_value(json_object_get(ctx, "accessKeyId"));
        p.secret_key = json_string_value(json_object_get(ctx, "secretAccessKey"));
        p.region = json_string_value(json_object_get(ctx, "region"));
        p.service = json_string_value(json_object_get(ctx, "service"));
        p.amz_date = json_string_value(json_object_get(ctx, "amzDate"));
        p.normalize_path = 0;      /* S3 */

        hs = json_object_get(req, "headers");
        memset(&rq, 0, sizeof(rq));
        for (j = 0; j < json_array_size(hs) && j < 16; j++) {
            h[j].name = json_string_value(json_array_get(json_array_get(hs, j), 0));
            h[j].value = json_string_value(json_array_get(json_array_get(hs, j), 1));
        }
        rq.method = json_string_value(json_object_get(req, "method"));
        rq.path = json_string_value(json_object_get(req, "path"));
        rq.query = json_string_value(json_object_get(req, "query"));
        rq.headers = h;
        rq.nheaders = j;
        payload = json_string_value(json_object_get(req, "payload"));
        rq.body = payload;
        rq.body_len = payload ? strlen(payload) : 0;

        {
            char phash[65];
            vh_sigv4_sha256_hex(rq.body ? rq.body : "", rq.body_len, phash);
            is_str(phash, json_string_value(json_object_get(req, "payloadSha256")),
                   "payload sha256", name);
        }
        {
            char *cq = vh_sigv4_canonical_query(rq.query);
            char *cu = vh_sigv4_canonical_path(rq.path, 0);
            is_str(cu, json_string_value(json_object_get(exp, "canonicalUri")),
                   "canonical URI", name);
            is_str(cq, json_string_value(json_object_get(exp, "canonicalQuery")),
                   "canonical query", name);
            free(cq);
            free(cu);
        }
        if (vh_sigv4_sign_headers(&p, &rq, &out) != 0) {
            ok(0, "%s: signs", name);
            continue;
        }
        ok(out.nadd == 0, "%s: nothing to add (x-amz-date and x-amz-content-sha256 given)",
           name);
        is_str(out.signed_headers, json_string_value(json_object_get(exp, "signedHeaders")),
               "signed headers", name);
        is_str(out.canonical_request,
               json_string_value(json_object_get(exp, "canonicalRequest")),
               "canonical request", name);
        is_str(out.string_to_sign, json_string_value(json_object_get(exp, "stringToSign")),
               "string to sign", name);
        is_str(out.signature, json_string_value(json_object_get(exp, "signature")),
               "signature", name);
        strip_comma_space(out.authorization);
        is_str(out.authorization, json_string_value(json_object_get(exp, "authorization")),
               "Authorization (published form, ',' without space)", name);

        /* the raw files say the same */
        snprintf(sub, sizeof(sub), "%s/%s", dir, name);
        want = slurp(sub, "canonical-request.txt", NULL);
        is_str(out.canonical_request, want, "canonical-request.txt", name);
        free(want);
        want = slurp(sub, "string-to-sign.txt", NULL);
        is_str(out.string_to_sign, want, "string-to-sign.txt", name);
        free(want);
        want = slurp(sub, "signature.txt", NULL);
        is_str(out.signature, want, "signature.txt", name);
        free(want);
        want = slurp(sub, "authorization.txt", NULL);
        is_str(out.authorization, want, "authorization.txt", name);
        free(want);
        vh_sigv4_result_free(&out);
    }
    json_decref(root);
}

static void
test_pieces(void)
{
    struct { const char *in; int norm; const char *out; } paths[] = {
        { "/", 1, "/" },
        { "", 1, "/" },
        { "/a/./b/../c", 1, "/a/c" },
        { "/a/./b/../c", 0, "/a/./b/../c" },
        { "//a//b//", 1, "/a/b/" },
        { "/../..", 1, "/" },
        { "/hls/abc-1/720p/seg_00001.ts", 0, "/hls/abc-1/720p/seg_00001.ts" },
        { "/key with space+plus", 0, "/key%20with%20space%2Bplus" },
    };
    struct { const char *in; const char *out; } queries[] = {
        { "", "" },
        { "uploads", "uploads=" },
        { "partNumber=2&uploadId=a%2Fb", "partNumber=2&uploadId=a%2Fb" },
        { "b=2&a=1&a=0", "a=0&a=1&b=2" },
        { "x=a b", "x=a%20b" },
        { "&&k=v&", "k=v" },
    };
    size_t i;

    for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        char *s = vh_sigv4_canonical_path(paths[i].in, paths[i].norm);
        is_str(s, paths[i].out, paths[i].in, paths[i].norm ? "path normalized" : "path as is");
        free(s);
    }
    for (i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
        char *s = vh_sigv4_canonical_query(queries[i].in);
        is_str(s, queries[i].out, queries[i].in, "query");
        free(s);
    }
    {
        vh_sigv4_params_t   p = { 0 };
        vh_sigv4_request_t  r = { 0 };
        vh_sigv4_result_t   out;
        ok(vh_sigv4_sign_headers(&p, &r, &out) == -1, "missing credentials are refused");
        p.access_key = "A"; p.secret_key = "S"; p.region = "r"; p.service = "s3";
        p.amz_date = "2015-08-30";
        r.method = "GET";
        ok(vh_sigv4_sign_headers(&p, &r, &out) == -1, "a malformed amz_date is refused");
        p.amz_date = "20150830T123600Z";
        ok(vh_sigv4_presign(&p, &r, &out) == -1, "presigning needs expires > 0");
    }
}

int
main(void)
{
    const char *env = getenv("VODLMS_SIGV4_VECTORS");
    char        vectors[1024];
    DIR        *d;

    setvbuf(stdout, NULL, _IONBF, 0);
    if (env != NULL && env[0] != '\0') {
        snprintf(vectors, sizeof(vectors), "%s", env);
    } else {
        snprintf(vectors, sizeof(vectors), "%s/../shared/vectors/sigv4", VH_REPO_ROOT);
    }
    d = opendir(vectors);
    if (d == NULL) {
        printf("1..1\nnot ok 1 - SigV4 vectors not found in %s"
               " (set VODLMS_SIGV4_VECTORS)\n", vectors);
        return 1;
    }
    closedir(d);
    printf("# vectors: %s\n", vectors);

    test_pieces();
    test_suite(vectors);
    test_s3(vectors);

    printf("1..%d\n", tests);
    if (failures) {
        printf("# %d of %d failed\n", failures, tests);
    }
    return failures ? 1 : 0;
}
