/*
 * The helper's SigV4 (libcurl's CURLOPT_AWS_SIGV4 fed by s3_sign.c) against
 * the vectors in <repo>/../shared/vectors/sigv4 (or $VODLMS_SIGV4_VECTORS):
 * the AWS signing test suite (header form) and the S3 documentation
 * examples.  Each request goes through vh_s3_sign() and curl to a capture
 * server on 127.0.0.1 (CURLOPT_CONNECT_TO keeps the vector's Host); the
 * Authorization curl sent must be the vector's, and the canonical URI and
 * query made by s3_sign.c must be the vector's.  TAP on stdout.  Missing
 * vectors are a failure, never a skip.
 *
 * The vectors' X-Amz-Date is given as a header, which curl then signs
 * with; curl 7.88 sends that header twice (curl issue 11738, fixed in
 * 8.3.0), which does not matter to the capture server and is why the
 * helper itself never gives it.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "s3_sign.h"

#ifndef VH_REPO_ROOT
#define VH_REPO_ROOT "."
#endif

static int  tests, failures;

static void ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

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

static void
skip(const char *what, const char *why)
{
    tests++;
    printf("ok %d - %s # SKIP %s\n", tests, what, why);
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

/* line n (1-based) of text, or NULL */
static char *
nth_line(const char *text, int n)
{
    const char  *e;
    char        *l;

    while (text && --n > 0) {
        text = strchr(text, '\n');
        text = text ? text + 1 : NULL;
    }
    if (text == NULL) {
        return NULL;
    }
    e = strchr(text, '\n');
    l = strndup(text, e ? (size_t) (e - text) : strlen(text));
    return l;
}

/* the value of "Name:value" (or "Name: value") in an HTTP message head */
static char *
header_value(const char *msg, const char *name)
{
    const char *p = msg;
    size_t      n = strlen(name), len;

    while ((p = strchr(p, '\n')) != NULL) {
        p++;
        if (*p == '\n' || *p == '\r') {
            break;
        }
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            p += n + 1;
            p += strspn(p, " ");
            len = strcspn(p, "\r\n");
            return strndup(p, len);
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------- capture */

static int   port;
static char  sent[65536];
static size_t sentlen;

/* the child: answers every request 200 (100 Continue first when asked) */
static void
serve(int ls)
{
    char     buf[1 << 16];
    size_t   n, want;
    ssize_t  got;
    char    *end, *cl;
    int      c;

    for ( ;; ) {
        c = accept(ls, NULL, NULL);
        if (c < 0) {
            continue;
        }
        n = 0;
        while ((got = read(c, buf + n, sizeof(buf) - 1 - n)) > 0) {
            n += got;
            buf[n] = '\0';
            end = strstr(buf, "\r\n\r\n");
            if (end == NULL) {
                continue;
            }
            if (strcasestr(buf, "\nexpect: 100-continue") && n == (size_t) (end + 4 - buf)) {
                if (write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25) < 0) {
                    break;
                }
            }
            cl = strcasestr(buf, "\ncontent-length:");
            want = cl ? strtoul(cl + 16, NULL, 10) : 0;
            if (n >= (size_t) (end + 4 - buf) + want) {
                break;
            }
        }
        if (write(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                  57) < 0)
        {
            /* the client went away: nothing to do */
        }
        close(c);
    }
}

static int
on_debug(CURL *c, curl_infotype t, char *d, size_t n, void *u)
{
    (void) c;
    (void) u;
    if (t == CURLINFO_HEADER_OUT && sentlen + n < sizeof(sent)) {
        memcpy(sent + sentlen, d, n);
        sentlen += n;
        sent[sentlen] = '\0';
    }
    return 0;
}

static size_t
on_body(char *p, size_t size, size_t n, void *u)
{
    (void) p;
    (void) u;
    return size * n;
}

typedef struct {
    const char  *p;
    size_t       left;
} reader_t;

static size_t
on_read(char *buf, size_t size, size_t n, void *u)
{
    reader_t  *r = u;
    size_t     w = size * n < r->left ? size * n : r->left;

    memcpy(buf, r->p, w);
    r->p += w;
    r->left -= w;
    return w;
}

/*
 * Sends the request as the helper would (a PUT body from a read callback,
 * a POST body as CURLOPT_POSTFIELDS); the head curl sent is in sent[].
 */
static int
send_signed(const vh_s3_sign_t *s, const char *host, const char *method,
    const char *body, size_t body_len)
{
    CURL               *c = curl_easy_init();
    struct curl_slist  *list = NULL, *to = NULL;
    char               *url = NULL, line[600];
    reader_t            rd = { body, body_len };
    CURLcode            cc = CURLE_FAILED_INIT;

    sentlen = 0;
    sent[0] = '\0';
    if (c == NULL || vh_s3_sign(c, s, &list, &url) != 0) {
        curl_easy_cleanup(c);
        return -1;
    }
    snprintf(line, sizeof(line), "%s:80:127.0.0.1:%d", host, port);
    to = curl_slist_append(NULL, line);
    curl_easy_setopt(c, CURLOPT_CONNECT_TO, to);
    curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, on_debug);
    curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    if (!strcmp(method, "PUT")) {
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(c, CURLOPT_READDATA, &rd);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t) body_len);
    } else if (!strcmp(method, "POST")) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) body_len);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        printf("# curl: %s\n", curl_easy_strerror(cc));
    }
    curl_slist_free_all(list);
    curl_slist_free_all(to);
    free(url);
    curl_easy_cleanup(c);
    return cc == CURLE_OK ? 0 : -1;
}

/* ---------------------------------------------------------------- AWS suite */

typedef struct {
    char         *method, *path, *query, *host;
    const char   *h[32];
    size_t        nh;
    char         *body;
    size_t        body_len;
} http_req_t;

/* "METHOD target HTTP/1.1\nName:value\n...\n\nbody"; Host goes apart */
static int
parse_request(char *text, size_t len, http_req_t *r)
{
    char *line, *nl, *sp1, *sp2, *q;

    memset(r, 0, sizeof(*r));
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
        nl = strchr(line, '\n');
        if (nl != NULL) {
            *nl = '\0';
        }
        if (strchr(line, ':') == NULL || r->nh == 32) {
            return -1;
        }
        if (strncasecmp(line, "Host:", 5) == 0) {
            r->host = line + 5;
        } else {
            r->h[r->nh++] = line;
        }
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
    return r->host ? 0 : -1;
}

/* repeated header names: curl merges them only from 8.13.0 (its 3978bd4) */
static int
repeats_a_header(const http_req_t *r)
{
    size_t i, j, n;

    for (i = 0; i < r->nh; i++) {
        n = strcspn(r->h[i], ":");
        for (j = i + 1; j < r->nh; j++) {
            if (strncasecmp(r->h[i], r->h[j], n) == 0 && r->h[j][n] == ':') {
                return 1;
            }
        }
    }
    return 0;
}

static void
suite_case(const char *base, const char *name)
{
    char           dir[8192], date[17], datehdr[40], phash[65], *ctxs, *req,
                  *creq, *want, *signed_req, *got, *line, *s;
    size_t         reqlen;
    json_t        *ctx, *cred;
    json_error_t   jerr;
    http_req_t     r;
    vh_s3_sign_t   sg;
    const char    *ts;
    int            sign_body;

    snprintf(dir, sizeof(dir), "%s/%s", base, name);
    ctxs = slurp(dir, "context.json", NULL);
    req = slurp(dir, "request.txt", &reqlen);
    ctx = ctxs ? json_loads(ctxs, 0, &jerr) : NULL;
    if (ctx == NULL || req == NULL || parse_request(req, reqlen, &r) != 0) {
        ok(0, "%s: read context.json and request.txt", name);
        free(ctxs);
        free(req);
        json_decref(ctx);
        return;
    }
    cred = json_object_get(ctx, "credentials");
    ts = json_string_value(json_object_get(ctx, "timestamp"));
    /* 2015-08-30T12:36:00Z -> 20150830T123600Z */
    snprintf(date, sizeof(date), "%.4s%.2s%.2sT%.2s%.2s%.2sZ", ts, ts + 5, ts + 8,
             ts + 11, ts + 14, ts + 17);
    snprintf(datehdr, sizeof(datehdr), "X-Amz-Date: %s", date);
    r.h[r.nh++] = datehdr;
    sign_body = json_is_true(json_object_get(ctx, "sign_body"));
    vh_s3_sha256_hex(r.body ? r.body : "", r.body_len, phash);

    creq = slurp(dir, "header-canonical-request.txt", NULL);

    /* s3_sign.c's own part: the canonical URI (S3: not normalised) and query */
    s = vh_s3_uri_encode(r.path, strlen(r.path), 1);
    line = nth_line(creq, 2);
    if (json_is_true(json_object_get(ctx, "normalize")) && s && line && strcmp(s, line)) {
        skip("canonical URI", "a normalised path; S3 paths are signed as they are");
    } else {
        is_str(s, line, "canonical URI", name);
    }
    free(s);
    free(line);
    s = vh_s3_canonical_query(r.query);
    line = nth_line(creq, 3);
    is_str(s, line, "canonical query", name);
    free(s);
    free(line);

    /* curl's part, on that input */
    memset(&sg, 0, sizeof(sg));
    sg.access_key = json_string_value(json_object_get(cred, "access_key_id"));
    sg.secret_key = json_string_value(json_object_get(cred, "secret_access_key"));
    sg.session_token = json_string_value(json_object_get(cred, "token"));
    sg.region = json_string_value(json_object_get(ctx, "region"));
    sg.service = json_string_value(json_object_get(ctx, "service"));
    {
        char b[600];
        snprintf(b, sizeof(b), "http://%s", r.host);
        sg.base = b;
        sg.path = r.path;
        sg.query = r.query;
        sg.headers = r.h;
        sg.nheaders = r.nh;
        sg.payload_hash = sign_body ? phash : NULL;
        if (send_signed(&sg, r.host, r.method, r.body, r.body_len) != 0) {
            ok(0, "%s: sent", name);
            goto done;
        }
    }
    signed_req = slurp(dir, "header-signed-request.txt", NULL);
    want = signed_req ? header_value(signed_req, "Authorization") : NULL;
    got = header_value(sent, "Authorization");
    if (repeats_a_header(&r) && curl_version_info(CURLVERSION_NOW)->version_num < 0x080d00) {
        skip("Authorization",
             "curl < 8.13.0 signs a repeated header once per line; the helper repeats none");
    } else {
        is_str(got, want, "Authorization (signed by curl)", name);
    }
    free(got);
    free(want);
    if (sg.session_token != NULL) {
        want = header_value(signed_req, "X-Amz-Security-Token");
        got = header_value(sent, "X-Amz-Security-Token");
        is_str(got, want, "X-Amz-Security-Token sent", name);
        free(got);
        free(want);
    }
    if (sign_body) {
        want = header_value(signed_req, "x-amz-content-sha256");
        got = header_value(sent, "x-amz-content-sha256");
        is_str(got, want, "x-amz-content-sha256 sent", name);
        free(got);
        free(want);
    }
    free(signed_req);

done:
    free(creq);
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

/* ---------------------------------------------------------------- S3 examples */

static void
strip_comma_space(char *s)
{
    char *w = s, prev = '\0';

    for (; s && *s; s++) {
        char c = *s;
        if (!(c == ' ' && prev == ',')) {
            *w++ = c;
        }
        prev = c;
    }
    if (w) {
        *w = '\0';
    }
}

static void
test_s3(const char *vectors)
{
    char            dir[4096], *text;
    json_t         *root, *ctx, *cases, *c;
    json_error_t    jerr;
    size_t          i, j;

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

    json_array_foreach(cases, i, c) {
        json_t        *req = json_object_get(c, "request"),
                      *exp = json_object_get(c, "expected"), *hs;
        const char    *name = json_string_value(json_object_get(c, "name"));
        const char    *payload, *host, *method;
        char           lines[16][256], *h[16], *got, *want, phash[65], b[300];
        vh_s3_sign_t   sg;
        size_t         nh = 0;

        memset(&sg, 0, sizeof(sg));
        sg.access_key = json_string_value(json_object_get(ctx, "accessKeyId"));
        sg.secret_key = json_string_value(json_object_get(ctx, "secretAccessKey"));
        sg.region = json_string_value(json_object_get(ctx, "region"));
        sg.service = json_string_value(json_object_get(ctx, "service"));
        host = json_string_value(json_object_get(req, "host"));
        method = json_string_value(json_object_get(req, "method"));
        payload = json_string_value(json_object_get(req, "payload"));

        /* the payload hash: the helper's own, then given to curl */
        vh_s3_sha256_hex(payload ? payload : "", payload ? strlen(payload) : 0, phash);
        is_str(phash, json_string_value(json_object_get(req, "payloadSha256")),
               "payload sha256", name);

        hs = json_object_get(req, "headers");
        for (j = 0; j < json_array_size(hs) && nh < 16; j++) {
            const char *hn = json_string_value(json_array_get(json_array_get(hs, j), 0));
            const char *hv = json_string_value(json_array_get(json_array_get(hs, j), 1));
            if (!strcasecmp(hn, "host") || !strcasecmp(hn, "x-amz-content-sha256")) {
                continue;      /* curl's Host; the hash goes as payload_hash */
            }
            snprintf(lines[nh], sizeof(lines[nh]), "%s: %s", hn, hv);
            h[nh] = lines[nh];
            nh++;
        }
        {
            char *cu = vh_s3_uri_encode(json_string_value(json_object_get(req, "path")),
                           strlen(json_string_value(json_object_get(req, "path"))), 1);
            char *cq = vh_s3_canonical_query(json_string_value(json_object_get(req, "query")));
            is_str(cu, json_string_value(json_object_get(exp, "canonicalUri")),
                   "canonical URI", name);
            is_str(cq, json_string_value(json_object_get(exp, "canonicalQuery")),
                   "canonical query", name);
            free(cu);
            free(cq);
        }
        snprintf(b, sizeof(b), "http://%s", host);
        sg.base = b;
        sg.path = json_string_value(json_object_get(req, "path"));
        sg.query = json_string_value(json_object_get(req, "query"));
        sg.headers = (const char * const *) h;
        sg.nheaders = nh;
        sg.payload_hash = phash;
        if (send_signed(&sg, host, method, payload, payload ? strlen(payload) : 0) != 0) {
            ok(0, "%s: sent", name);
            continue;
        }
        got = header_value(sent, "Authorization");
        strip_comma_space(got);
        want = (char *) json_string_value(json_object_get(exp, "authorization"));
        is_str(got, want, "Authorization (signed by curl; published form)", name);
        free(got);
        got = header_value(sent, "x-amz-content-sha256");
        is_str(got, phash, "x-amz-content-sha256 sent", name);
        free(got);
    }
    json_decref(root);
}

/* ---------------------------------------------------------------- the helper's kind */

/*
 * An UploadPart as the helper sends it (streamed body, raw key with a
 * space, raw unsorted query, session token), with an unsigned and with a
 * signed payload.  The expected signatures were computed apart from this
 * code, with Python's hashlib/hmac following the chain in the vectors'
 * README (canonical request: PUT, /hls/a%20b/720p/seg_00000.ts,
 * partNumber=2&uploadId=x%2By, content-type;host;x-amz-content-sha256;
 * x-amz-date;x-amz-security-token, the payload hash).
 */
static void
test_upload_part(void)
{
    static const struct {
        const char  *what;
        const char  *payload_hash;
        const char  *signature;
    } cases[] = {
        { "UNSIGNED-PAYLOAD", VH_S3_UNSIGNED_PAYLOAD,
          "5c28acc58e6d4df654948239bc91c24256e64a53608b43f40fe756f131e9c438" },
        { "signed payload",
          "560e67b96c49975a2cf9adba2682e00cc6b74a879f2b6897e03b63d7434098e8",
          "d87683764d01e250476dfcd82b072a596a88c7550a67847b2ce99e61f1dd72c8" },
    };
    const char    *h[] = { "Content-Type: video/mp2t", "X-Amz-Date: 20130524T000000Z" };
    const char    *body = "segment bytes";
    char           phash[65], want[400], *got;
    vh_s3_sign_t   sg;
    size_t         i;

    vh_s3_sha256_hex(body, strlen(body), phash);
    is_str(phash, cases[1].payload_hash, "the body's SHA-256", "UploadPart");

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&sg, 0, sizeof(sg));
        sg.access_key = "AKIAIOSFODNN7EXAMPLE";
        sg.secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        sg.session_token = "AQoDYXdzEJr//session+token==";
        sg.region = "us-east-1";
        sg.base = "http://examplebucket.s3.amazonaws.com";
        sg.path = "/hls/a b/720p/seg_00000.ts";
        sg.query = "uploadId=x+y&partNumber=2";
        sg.headers = h;
        sg.nheaders = 2;
        sg.payload_hash = cases[i].payload_hash;
        if (send_signed(&sg, "examplebucket.s3.amazonaws.com", "PUT", body, strlen(body))
            != 0)
        {
            ok(0, "UploadPart, %s: sent", cases[i].what);
            continue;
        }
        snprintf(want, sizeof(want), "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/"
                 "20130524/us-east-1/s3/aws4_request, SignedHeaders=content-type;host;"
                 "x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature=%s",
                 cases[i].signature);
        got = header_value(sent, "Authorization");
        is_str(got, want, cases[i].what, "UploadPart (streamed, token, signed by curl)");
        free(got);
        ok(strncmp(sent, "PUT /hls/a%20b/720p/seg_00000.ts?partNumber=2&uploadId=x%2By ",
                   61) == 0, "UploadPart, %s: request line is the canonical URI and query",
           cases[i].what);
    }
}

/* ---------------------------------------------------------------- pieces */

static void
test_pieces(void)
{
    struct { const char *in; const char *out; } paths[] = {
        { "/", "/" },
        { "/a/./b/../c", "/a/./b/../c" },
        { "/hls/abc-1/720p/seg_00001.ts", "/hls/abc-1/720p/seg_00001.ts" },
        { "/key with space+plus", "/key%20with%20space%2Bplus" },
        { "/caf\xc3\xa9/\xe1\x88\xb4.ts", "/caf%C3%A9/%E1%88%B4.ts" },
        { "/a$b&c=d", "/a%24b%26c%3Dd" },
    };
    struct { const char *in; const char *out; } queries[] = {
        { "", "" },
        { NULL, "" },
        { "uploads", "uploads=" },
        { "partNumber=2&uploadId=a%2Fb", "partNumber=2&uploadId=a%2Fb" },
        { "uploadId=a/b+c&partNumber=10", "partNumber=10&uploadId=a%2Fb%2Bc" },
        { "b=2&a=1&a=0", "a=0&a=1&b=2" },
        { "x=a b", "x=a%20b" },
        { "x=%7e%2d", "x=~-" },
        { "&&k=v&", "k=v" },
        { "bad=%zz%4", "bad=%25zz%254" },
    };
    size_t              i;
    CURL               *c = curl_easy_init();
    struct curl_slist  *list;
    char               *url;
    vh_s3_sign_t        sg;
    const char         *h[1];

    for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        char *s = vh_s3_uri_encode(paths[i].in, strlen(paths[i].in), 1);
        is_str(s, paths[i].out, paths[i].in, "path encoded once, as it is");
        free(s);
    }
    for (i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
        char *s = vh_s3_canonical_query(queries[i].in);
        is_str(s, queries[i].out, queries[i].in ? queries[i].in : "(null)", "query");
        free(s);
    }

    memset(&sg, 0, sizeof(sg));
    sg.access_key = "AKID";
    sg.secret_key = "secret";
    sg.region = "eu-west-3";
    sg.base = "https://b.s3.eu-west-3.amazonaws.com";
    sg.path = "/hls/a b/master.m3u8";
    sg.query = "uploadId=x+y&partNumber=3";
    sg.payload_hash = VH_S3_UNSIGNED_PAYLOAD;
    i = (size_t) vh_s3_sign(c, &sg, &list, &url);
    ok(i == 0 && !strcmp(url, "https://b.s3.eu-west-3.amazonaws.com/hls/a%20b/master.m3u8"
                              "?partNumber=3&uploadId=x%2By"),
       "the URL sent is the canonical URI and query (%s)", url ? url : "(null)");
    {
        struct curl_slist *l;
        int sha = 0, tok = 0;
        for (l = list; l; l = l->next) {
            sha += !strcmp(l->data, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
            tok += !strncasecmp(l->data, "x-amz-security-token", 20);
        }
        ok(sha == 1 && tok == 0, "UNSIGNED-PAYLOAD sent as x-amz-content-sha256, no token");
    }
    curl_slist_free_all(list);
    free(url);

    sg.session_token = "tok/en+==";
    ok(vh_s3_sign(c, &sg, &list, &url) == 0 && list && list->next
       && !strcmp(list->next->data, "X-Amz-Security-Token: tok/en+=="),
       "a session token is sent as X-Amz-Security-Token");
    curl_slist_free_all(list);
    free(url);

    h[0] = "Expect:";
    sg.headers = h;
    sg.nheaders = 1;
    ok(vh_s3_sign(c, &sg, &list, &url) == -1 && list == NULL && url == NULL,
       "a header line without a value is refused (curl 7.88 would sign it unsent)");
    sg.nheaders = 0;
    sg.path = "no-slash";
    ok(vh_s3_sign(c, &sg, &list, &url) == -1, "a path without its leading / is refused");
    sg.path = "/k";
    sg.access_key = NULL;
    ok(vh_s3_sign(c, &sg, &list, &url) == -1, "missing credentials are refused");
    curl_easy_cleanup(c);
}

int
main(void)
{
    const char          *env = getenv("VODLMS_SIGV4_VECTORS");
    char                 vectors[1024];
    DIR                 *d;
    int                  ls, one = 1;
    struct sockaddr_in   a;
    socklen_t            al = sizeof(a);
    pid_t                pid;

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

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ls = socket(AF_INET, SOCK_STREAM, 0);
    if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0
        || bind(ls, (struct sockaddr *) &a, sizeof(a)) != 0 || listen(ls, 16) != 0
        || getsockname(ls, (struct sockaddr *) &a, &al) != 0)
    {
        printf("1..1\nnot ok 1 - cannot listen on 127.0.0.1 for the capture server\n");
        return 1;
    }
    port = ntohs(a.sin_port);
    pid = fork();
    if (pid < 0) {
        printf("1..1\nnot ok 1 - fork\n");
        return 1;
    }
    if (pid == 0) {
        serve(ls);
        _exit(0);
    }
    close(ls);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    printf("# vectors: %s\n# %s\n", vectors, curl_version());

    test_pieces();
    test_suite(vectors);
    test_s3(vectors);
    test_upload_part();

    curl_global_cleanup();
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    printf("1..%d\n", tests);
    if (failures) {
        printf("# %d of %d failed\n", failures, tests);
    }
    return failures ? 1 : 0;
}
