/*
 * Publishing to S3 (or any S3-compatible store) with libcurl, every request
 * signed by libcurl (CURLOPT_AWS_SIGV4, set up by s3_sign.c) with the
 * payload's SHA-256, computed here while reading the file, as
 * x-amz-content-sha256.
 *
 * Objects up to s3_multipart_threshold go up in one PUT; larger ones by
 * multipart upload (CreateMultipartUpload, UploadPart x N,
 * CompleteMultipartUpload; AbortMultipartUpload when a part or the
 * completion fails for good).  Each request is retried with back-off on
 * network errors, 5xx and 429.  A ladder goes up directory by directory
 * (each variant's segments, then its playlist; the storyboard; each
 * caption track's segments, then its playlist), with the poster, and
 * master.m3u8 last: a viewer who can fetch the master can fetch everything
 * it names.  A caption job uploads a tree holding only the new caption
 * track without a master (vh_s3_publish_tree), then, in its transaction, a
 * tree holding only the master (subs.c).
 */

#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "s3_sign.h"
#include "vodlms_helper.h"

#define S3_MAX_PARTS   10000
#define S3_BACKOFF     0.5          /* seconds before the first retry */
#define S3_BACKOFF_MAX 10.0

struct vh_s3_s {
    const vh_conf_t  *cf;
    CURL             *curl;
    char              scheme[8];     /* http | https */
    char              host[512];     /* Host header (with :port if any) */
    char              base[600];     /* scheme://host */
};

typedef struct {
    const char  *method;
    const char  *key;           /* object key, raw */
    const char  *query;         /* percent-encoded, without '?'; NULL: none */
    const char  *ctype;         /* NULL: none */
    const char  *cache;         /* NULL: none */
    FILE        *f;             /* body from a file range ... */
    off_t        off;
    size_t       len;
    const char  *body;          /* ... or from memory */
    size_t       body_len;
    const char  *payload_hash;  /* hex SHA-256 of the body */
} s3_req_t;

typedef struct {
    long      status;
    vh_buf_t  body;
    char      etag[160];
} s3_resp_t;

typedef struct {
    FILE    *f;
    size_t   left;
} s3_reader_t;

/* ---------------------------------------------------------------- helpers */

static void
s3_sleep(double seconds)
{
    double end = vh_now() + seconds;

    /* a "finish" stop lets the upload complete; only an abandon cuts it */
    while (vh_stop != 2 && vh_now() < end) {
        struct timespec ts = { 0, 100 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
}

static int
hash_file_range(FILE *f, off_t off, size_t len, char hex[65])
{
    EVP_MD_CTX     *ctx = EVP_MD_CTX_new();
    unsigned char   md[32], chunk[65536];
    unsigned int    mdlen = 0;
    size_t          n, want;
    int             i, rc = -1;

    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1
        || fseeko(f, off, SEEK_SET) != 0)
    {
        goto out;
    }
    while (len > 0) {
        want = len < sizeof(chunk) ? len : sizeof(chunk);
        n = fread(chunk, 1, want, f);
        if (n == 0) {
            goto out;
        }
        if (EVP_DigestUpdate(ctx, chunk, n) != 1) {
            goto out;
        }
        len -= n;
    }
    if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32) {
        goto out;
    }
    for (i = 0; i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    }
    rc = 0;
out:
    EVP_MD_CTX_free(ctx);
    return rc;
}

static size_t
on_write(char *p, size_t size, size_t n, void *data)
{
    s3_resp_t *r = data;

    if (r->body.len < 65536) {
        vh_buf_append(&r->body, p, size * n);
    }
    return size * n;
}

static size_t
on_header(char *p, size_t size, size_t n, void *data)
{
    s3_resp_t  *r = data;
    size_t      len = size * n, vlen;
    char       *v;

    if (len > 5 && strncasecmp(p, "etag:", 5) == 0) {
        v = p + 5;
        vlen = len - 5;
        while (vlen && (*v == ' ' || *v == '\t')) {
            v++;
            vlen--;
        }
        while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n'
                        || v[vlen - 1] == ' '))
        {
            vlen--;
        }
        if (vlen < sizeof(r->etag)) {
            memcpy(r->etag, v, vlen);
            r->etag[vlen] = '\0';
        }
    }
    return len;
}

static size_t
on_read(char *p, size_t size, size_t n, void *data)
{
    s3_reader_t  *rd = data;
    size_t        want = size * n, got;

    if (want > rd->left) {
        want = rd->left;
    }
    if (want == 0) {
        return 0;
    }
    got = fread(p, 1, want, rd->f);
    if (got == 0) {
        return CURL_READFUNC_ABORT;
    }
    rd->left -= got;
    return got;
}

/* the text of <tag>...</tag> in an XML body, or "" */
static void
xml_text(const char *xml, const char *tag, char *out, size_t len)
{
    char         open[64], close[64];
    const char  *a, *b;

    out[0] = '\0';
    if (xml == NULL) {
        return;
    }
    snprintf(open, sizeof(open), "<%s>", tag);
    snprintf(close, sizeof(close), "</%s>", tag);
    a = strstr(xml, open);
    if (a == NULL) {
        return;
    }
    a += strlen(open);
    b = strstr(a, close);
    if (b == NULL || (size_t) (b - a) >= len) {
        return;
    }
    memcpy(out, a, (size_t) (b - a));
    out[b - a] = '\0';
}

static void
describe_error(const char *what, const s3_resp_t *r, char *err, size_t errlen)
{
    char  code[128], msg[256];

    xml_text(r->body.data, "Code", code, sizeof(code));
    xml_text(r->body.data, "Message", msg, sizeof(msg));
    snprintf(err, errlen, "%s: HTTP %ld%s%s%s%s", what, r->status,
             code[0] ? " " : "", code, msg[0] ? ": " : "", msg);
}

/* ---------------------------------------------------------------- requests */

/* one attempt; 0 with r->status set, or -1 (network error) */
static int
s3_do(vh_s3_t *s3, const s3_req_t *q, s3_resp_t *r, char *err, size_t errlen)
{
    const vh_conf_t     *cf = s3->cf;
    vh_s3_sign_t         sg;
    struct curl_slist   *list = NULL;
    s3_reader_t          rd;
    vh_buf_t             path = { 0 }, ctype = { 0 }, cache = { 0 };
    const char          *h[2];
    char                *url = NULL;
    size_t               nh = 0;
    CURLcode             cc;
    int                  rc = -1;

    r->status = 0;
    r->body.len = 0;
    r->etag[0] = '\0';

    if (cf->s3_path_style) {
        vh_buf_printf(&path, "/%s/%s", cf->s3_bucket, q->key);
    } else {
        vh_buf_printf(&path, "/%s", q->key);
    }
    if (q->ctype != NULL && vh_buf_printf(&ctype, "Content-Type: %s", q->ctype) == 0) {
        h[nh++] = ctype.data;
    }
    if (q->cache != NULL && vh_buf_printf(&cache, "Cache-Control: %s", q->cache) == 0) {
        h[nh++] = cache.data;
    }
    if (path.data == NULL || (q->ctype != NULL && ctype.data == NULL)
        || (q->cache != NULL && cache.data == NULL))
    {
        snprintf(err, errlen, "out of memory");
        goto done;
    }

    curl_easy_reset(s3->curl);

    /* curl signs (CURLOPT_AWS_SIGV4); s3_sign.c gives it canonical input */
    memset(&sg, 0, sizeof(sg));
    sg.access_key = cf->s3_access_key;
    sg.secret_key = cf->s3_secret_key;
    sg.session_token = cf->s3_session_token;
    sg.region = cf->s3_region;
    sg.base = s3->base;
    sg.path = path.data;
    sg.query = q->query;
    sg.headers = h;
    sg.nheaders = nh;
    sg.payload_hash = q->payload_hash;
    if (vh_s3_sign(s3->curl, &sg, &list, &url) != 0) {
        snprintf(err, errlen, "cannot prepare the signed request for %s", q->key);
        goto done;
    }

    /*
     * No "Expect:" or "Content-Type:" lines to drop curl's own headers:
     * curl 7.88 signs such a line although it sends no such header
     * (curl issue 11664, fixed in 8.3.0).  So every PUT with a body waits
     * for "100 Continue", and every POST here names its Content-Type.
     */
    curl_easy_setopt(s3->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(s3->curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(s3->curl, CURLOPT_TIMEOUT_MS, (long) (cf->s3_timeout * 1000));
    curl_easy_setopt(s3->curl, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(s3->curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(s3->curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(s3->curl, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(s3->curl, CURLOPT_USERAGENT, "vodlms-helper/" VH_VERSION);

    if (!strcmp(q->method, "PUT")) {
        curl_easy_setopt(s3->curl, CURLOPT_UPLOAD, 1L);
        if (q->f != NULL) {
            if (fseeko(q->f, q->off, SEEK_SET) != 0) {
                snprintf(err, errlen, "seek: %s", strerror(errno));
                goto done;
            }
            rd.f = q->f;
            rd.left = q->len;
            curl_easy_setopt(s3->curl, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(s3->curl, CURLOPT_READDATA, &rd);
            curl_easy_setopt(s3->curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t) q->len);
        } else {
            curl_easy_setopt(s3->curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t) 0);
        }
    } else if (!strcmp(q->method, "POST")) {
        curl_easy_setopt(s3->curl, CURLOPT_POST, 1L);
        curl_easy_setopt(s3->curl, CURLOPT_POSTFIELDS, q->body ? q->body : "");
        curl_easy_setopt(s3->curl, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t) (q->body ? q->body_len : 0));
    } else {
        curl_easy_setopt(s3->curl, CURLOPT_CUSTOMREQUEST, q->method);
    }

    cc = curl_easy_perform(s3->curl);
    if (cc != CURLE_OK) {
        snprintf(err, errlen, "%s %s: %s", q->method, url,
                 curl_easy_strerror(cc));
        goto done;
    }
    curl_easy_getinfo(s3->curl, CURLINFO_RESPONSE_CODE, &r->status);
    vh_buf_append(&r->body, "", 1);   /* NUL-terminate */
    r->body.len--;
    rc = 0;

done:
    curl_slist_free_all(list);
    free(url);
    vh_buf_free(&path);
    vh_buf_free(&ctype);
    vh_buf_free(&cache);
    return rc;
}

/*
 * With retries: 0 with r->status < 300, else -1 with err.  A 200 whose
 * body is an <Error> (CompleteMultipartUpload can do that) counts as a 500.
 */
static int
s3_call(vh_s3_t *s3, const s3_req_t *q, s3_resp_t *r, const char *what,
    char *err, size_t errlen)
{
    double  delay = S3_BACKOFF;
    int     attempt, retryable;

    for (attempt = 0; ; attempt++) {
        retryable = 1;
        if (s3_do(s3, q, r, err, errlen) == 0) {
            if (r->status >= 200 && r->status < 300
                && (r->body.data == NULL || strstr(r->body.data, "<Error>") == NULL))
            {
                return 0;
            }
            if (r->status >= 200 && r->status < 300) {
                r->status = 500;
            }
            describe_error(what, r, err, errlen);
            retryable = r->status >= 500 || r->status == 429 || r->status == 408;
        }
        if (!retryable || attempt >= s3->cf->s3_retries || vh_stop == 2) {
            return -1;
        }
        vh_warn("s3: %s (attempt %d of %d, retrying in %.1f s)", err,
                attempt + 1, s3->cf->s3_retries + 1, delay);
        s3_sleep(delay);
        delay *= 2;
        if (delay > S3_BACKOFF_MAX) {
            delay = S3_BACKOFF_MAX;
        }
    }
}

/* ---------------------------------------------------------------- objects */

vh_s3_t *
vh_s3_new(const vh_conf_t *cf)
{
    vh_s3_t     *s3 = calloc(1, sizeof(*s3));
    const char  *ep = cf->s3_endpoint, *rest;
    size_t       n;

    if (s3 == NULL) {
        return NULL;
    }
    s3->cf = cf;
    if (!strncmp(ep, "https://", 8)) {
        strcpy(s3->scheme, "https");
        rest = ep + 8;
    } else {
        strcpy(s3->scheme, "http");
        rest = ep + 7;      /* validated by conf.c: http:// or https:// */
    }
    n = strcspn(rest, "/");
    if (cf->s3_path_style) {
        snprintf(s3->host, sizeof(s3->host), "%.*s", (int) n, rest);
    } else {
        snprintf(s3->host, sizeof(s3->host), "%s.%.*s", cf->s3_bucket, (int) n, rest);
    }
    snprintf(s3->base, sizeof(s3->base), "%s://%s", s3->scheme, s3->host);
    s3->curl = curl_easy_init();
    if (s3->curl == NULL) {
        free(s3);
        return NULL;
    }
    return s3;
}

void
vh_s3_free(vh_s3_t *s3)
{
    if (s3 != NULL) {
        curl_easy_cleanup(s3->curl);
        free(s3);
    }
}

static int
put_single(vh_s3_t *s3, const char *key, FILE *f, size_t size,
    const char *ctype, const char *cache, char *err, size_t errlen)
{
    s3_req_t   q;
    s3_resp_t  r;
    char       hash[65];
    int        rc;

    if (hash_file_range(f, 0, size, hash) != 0) {
        snprintf(err, errlen, "cannot read the file for %s", key);
        return -1;
    }
    memset(&q, 0, sizeof(q));
    memset(&r, 0, sizeof(r));
    q.method = "PUT";
    q.key = key;
    q.ctype = ctype;
    q.cache = cache;
    q.f = f;
    q.len = size;
    q.payload_hash = hash;
    rc = s3_call(s3, &q, &r, key, err, errlen);
    vh_buf_free(&r.body);
    return rc;
}

static void
abort_upload(vh_s3_t *s3, const char *key, const char *query)
{
    s3_req_t   q;
    s3_resp_t  r;
    char       hash[65], err[512];

    vh_s3_sha256_hex("", 0, hash);
    memset(&q, 0, sizeof(q));
    memset(&r, 0, sizeof(r));
    q.method = "DELETE";
    q.key = key;
    q.query = query;
    q.payload_hash = hash;
    if (s3_call(s3, &q, &r, "AbortMultipartUpload", err, sizeof(err)) != 0) {
        vh_warn("s3: cannot abort the multipart upload of %s: %s (the bucket's "
                "AbortIncompleteMultipartUpload rule will)", key, err);
    } else {
        vh_info("s3: aborted the multipart upload of %s", key);
    }
    vh_buf_free(&r.body);
}

static int
put_multipart(vh_s3_t *s3, const char *key, FILE *f, size_t size,
    const char *ctype, const char *cache, char *err, size_t errlen)
{
    const vh_conf_t  *cf = s3->cf;
    s3_req_t          q;
    s3_resp_t         r;
    vh_buf_t          xml = { 0 }, query = { 0 };
    char              hash[65], upload_id[1024], what[128], etag[160];
    char             *enc_id = NULL;
    size_t            part = (size_t) cf->s3_part_size, nparts, i;
    int               rc = -1;

    nparts = (size + part - 1) / part;
    if (nparts > S3_MAX_PARTS) {
        part = (size + S3_MAX_PARTS - 1) / S3_MAX_PARTS;
        nparts = (size + part - 1) / part;
    }

    /* CreateMultipartUpload: the object's headers are given here */
    memset(&r, 0, sizeof(r));
    memset(&q, 0, sizeof(q));
    vh_s3_sha256_hex("", 0, hash);
    q.method = "POST";
    q.key = key;
    q.query = "uploads";
    q.ctype = ctype;
    q.cache = cache;
    q.payload_hash = hash;
    if (s3_call(s3, &q, &r, "CreateMultipartUpload", err, errlen) != 0) {
        goto out;
    }
    xml_text(r.body.data, "UploadId", upload_id, sizeof(upload_id));
    if (upload_id[0] == '\0') {
        snprintf(err, errlen, "CreateMultipartUpload %s: no UploadId in the answer", key);
        goto out;
    }
    enc_id = vh_s3_uri_encode(upload_id, strlen(upload_id), 0);
    if (enc_id == NULL || vh_buf_printf(&xml, "<CompleteMultipartUpload>") != 0) {
        snprintf(err, errlen, "out of memory");
        goto abort;
    }
    vh_debug("s3: %s: multipart upload, %zu part(s) of %zu bytes", key, nparts, part);

    for (i = 0; i < nparts; i++) {
        off_t   off = (off_t) (i * part);
        size_t  len = size - i * part < part ? size - i * part : part;

        if (hash_file_range(f, off, len, hash) != 0) {
            snprintf(err, errlen, "cannot read the file for %s", key);
            goto abort;
        }
        query.len = 0;
        vh_buf_printf(&query, "partNumber=%zu&uploadId=%s", i + 1, enc_id);
        memset(&q, 0, sizeof(q));
        q.method = "PUT";
        q.key = key;
        q.query = query.data;
        q.f = f;
        q.off = off;
        q.len = len;
        q.payload_hash = hash;
        snprintf(what, sizeof(what), "UploadPart %zu of %s", i + 1, key);
        if (s3_call(s3, &q, &r, what, err, errlen) != 0) {
            goto abort;
        }
        if (r.etag[0] == '\0') {
            snprintf(err, errlen, "%s: no ETag in the answer", what);
            goto abort;
        }
        /* the ETag goes into XML: keep it to the characters it can have */
        snprintf(etag, sizeof(etag), "%s", r.etag);
        if (strpbrk(etag, "<>&") != NULL) {
            snprintf(err, errlen, "%s: odd ETag", what);
            goto abort;
        }
        vh_buf_printf(&xml, "<Part><PartNumber>%zu</PartNumber><ETag>%s</ETag></Part>",
                      i + 1, etag);
    }
    if (vh_buf_printf(&xml, "</CompleteMultipartUpload>") != 0) {
        snprintf(err, errlen, "out of memory");
        goto abort;
    }

    vh_s3_sha256_hex(xml.data, xml.len, hash);
    query.len = 0;
    vh_buf_printf(&query, "uploadId=%s", enc_id);
    memset(&q, 0, sizeof(q));
    q.method = "POST";
    q.key = key;
    q.query = query.data;
    q.ctype = "application/xml";
    q.body = xml.data;
    q.body_len = xml.len;
    q.payload_hash = hash;
    if (s3_call(s3, &q, &r, "CompleteMultipartUpload", err, errlen) != 0) {
        goto abort;
    }
    rc = 0;
    goto out;

abort:
    query.len = 0;
    if (enc_id != NULL && vh_buf_printf(&query, "uploadId=%s", enc_id) == 0) {
        abort_upload(s3, key, query.data);
    }
out:
    free(enc_id);
    vh_buf_free(&xml);
    vh_buf_free(&query);
    vh_buf_free(&r.body);
    return rc;
}

int
vh_s3_put_file(vh_s3_t *s3, const char *key, const char *path,
    const char *ctype, const char *cache, char *err, size_t errlen)
{
    FILE         *f = fopen(path, "rb");
    struct stat   sb;
    int           rc;
    double        t0 = vh_now();

    if (f == NULL || fstat(fileno(f), &sb) != 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        if (f != NULL) {
            fclose(f);
        }
        return -1;
    }
    if ((long) sb.st_size > s3->cf->s3_multipart_threshold) {
        rc = put_multipart(s3, key, f, (size_t) sb.st_size, ctype, cache, err, errlen);
    } else {
        rc = put_single(s3, key, f, (size_t) sb.st_size, ctype, cache, err, errlen);
    }
    fclose(f);
    if (rc == 0) {
        vh_debug("s3: put %s (%lld bytes, %s) in %.2f s", key,
                 (long long) sb.st_size, ctype, vh_now() - t0);
    }
    return rc;
}

/* ---------------------------------------------------------------- a ladder */

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

/* sorted names in dir (no dot files); *n entries, free with free_names */
static char **
list_dir(const char *dir, int want_dirs, size_t *n)
{
    DIR            *d = opendir(dir);
    struct dirent  *e;
    char          **v = NULL, **nv, path[4400];
    size_t          cap = 0;
    struct stat     sb;

    *n = 0;
    if (d == NULL) {
        return NULL;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (stat(path, &sb) != 0 || (want_dirs ? !S_ISDIR(sb.st_mode) : !S_ISREG(sb.st_mode))) {
            continue;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            nv = realloc(v, cap * sizeof(*v));
            if (nv == NULL) {
                break;
            }
            v = nv;
        }
        v[*n] = vh_strdup(e->d_name);
        if (v[*n] != NULL) {
            (*n)++;
        }
    }
    closedir(d);
    if (*n) {
        qsort(v, *n, sizeof(*v), cmp_str);
    }
    return v;
}

static void
free_names(char **v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        free(v[i]);
    }
    free(v);
}

static int
ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);

    return a >= b && !strcmp(s + a - b, suffix);
}

const char *
vh_s3_content_type(const char *name)
{
    if (ends_with(name, ".m3u8")) {
        return "application/vnd.apple.mpegurl";
    }
    if (ends_with(name, ".ts")) {
        return "video/mp2t";
    }
    if (ends_with(name, ".jpg") || ends_with(name, ".jpeg")) {
        return "image/jpeg";
    }
    if (ends_with(name, ".vtt")) {
        return "text/vtt";
    }
    return "application/octet-stream";
}

static int
put_one(vh_s3_t *s3, const char *base, const char *dir, const char *rel,
    vh_tick_pt tick, void *data, int *n, char *err, size_t errlen)
{
    const vh_conf_t  *cf = s3->cf;
    char              key[2048], path[4800];

    if (tick != NULL && tick(data, 0) != 0) {
        snprintf(err, errlen, "upload interrupted");
        return -1;
    }
    snprintf(key, sizeof(key), "%s%s%s", cf->s3_prefix, base, rel);
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    (*n)++;
    return vh_s3_put_file(s3, key, path, vh_s3_content_type(rel),
                          ends_with(rel, ".m3u8") ? cf->s3_cache_control_playlist
                                                  : cf->s3_cache_control_media,
                          err, errlen);
}

/*
 * One directory of the tree, rel ("" or "720p/", "subs/en/<rev>/"): its
 * files but the playlists, then its subdirectories (each the same way),
 * then its playlists, which name what went before; master.m3u8 of the top
 * is left for last.
 */
static int
put_tree(vh_s3_t *s3, const char *base, const char *dir, const char *rel,
    int depth, vh_tick_pt tick, void *data, int *n, char *err, size_t errlen)
{
    char     **files = NULL, **dirs = NULL, sub[4400], name[1200];
    size_t     nfiles = 0, ndirs = 0, i;
    int        pass, rc = -1;

    if (depth > 4) {
        snprintf(err, errlen, "%s%s: nested too deep for a version", dir, rel);
        return -1;
    }
    snprintf(sub, sizeof(sub), "%s/%s", dir, rel);
    files = list_dir(sub, 0, &nfiles);
    dirs = list_dir(sub, 1, &ndirs);
    for (pass = 0; pass < 3; pass++) {
        if (pass == 1) {
            for (i = 0; i < ndirs; i++) {
                snprintf(name, sizeof(name), "%s%s/", rel, dirs[i]);
                if (put_tree(s3, base, dir, name, depth + 1, tick, data, n, err,
                             errlen) != 0)
                {
                    goto out;
                }
            }
            continue;
        }
        for (i = 0; i < nfiles; i++) {
            if (ends_with(files[i], ".m3u8") != (pass == 2)
                || (depth == 0 && !strcmp(files[i], "master.m3u8")))
            {
                continue;
            }
            snprintf(name, sizeof(name), "%s%s", rel, files[i]);
            if (put_one(s3, base, dir, name, tick, data, n, err, errlen) != 0) {
                goto out;
            }
        }
    }
    rc = 0;
out:
    free_names(files, nfiles);
    free_names(dirs, ndirs);
    return rc;
}

static int
s3_publish(const vh_conf_t *cf, const char *video_id, const char *storage_prefix,
    const char *dir, int master, vh_tick_pt tick, void *data, char *err,
    size_t errlen)
{
    vh_s3_t   *s3 = vh_s3_new(cf);
    int        n = 0, rc = -1;
    double     t0 = vh_now();

    if (s3 == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (put_tree(s3, storage_prefix, dir, "", 0, tick, data, &n, err, errlen) != 0) {
        goto out;
    }
    /* last: only now may a viewer find the ladder (or the new captions) */
    if (master
        && put_one(s3, storage_prefix, dir, "master.m3u8", tick, data, &n, err,
                   errlen) != 0)
    {
        goto out;
    }
    vh_info("video %s: %d object(s) uploaded to s3://%s/%s%s in %.1f s",
            video_id, n, cf->s3_bucket, cf->s3_prefix, storage_prefix,
            vh_now() - t0);
    rc = 0;
out:
    vh_s3_free(s3);
    return rc;
}

int
vh_s3_publish(const vh_conf_t *cf, const char *video_id,
    const char *storage_prefix, const char *dir, vh_tick_pt tick, void *data,
    char *err, size_t errlen)
{
    return s3_publish(cf, video_id, storage_prefix, dir, 1, tick, data, err, errlen);
}

int
vh_s3_publish_tree(const vh_conf_t *cf, const char *video_id,
    const char *storage_prefix, const char *dir, vh_tick_pt tick, void *data,
    char *err, size_t errlen)
{
    return s3_publish(cf, video_id, storage_prefix, dir, 0, tick, data, err, errlen);
}
