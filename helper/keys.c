/*
 * Encrypted HLS (AES-128, issue #22): the keys of one version.
 *
 * Keys are drawn with OpenSSL's RAND_bytes and kept in memory; the only
 * files that ever hold one are ffmpeg's key info file and key file, written
 * 0600 into a private directory (mkdtemp, 0700) under $TMPDIR or /tmp, never
 * under origin_dir, and removed as soon as the ladder is measured.  The
 * rows of video_keys are written with the switch to ready (db.c).
 *
 * Two ways to encrypt, both AES-128-CBC with PKCS#7 padding and the media
 * sequence number as the IV, written in the playlist (IV=0x...):
 *
 *   key_rotation = 0: FFmpeg's HLS muxer, in the ladder's one ffmpeg
 *     (-hls_key_info_file, -hls_flags periodic_rekey).  The key info file is
 *     written before ffmpeg starts and never changes, so periodic_rekey only
 *     makes the muxer take the IV from each segment's sequence number
 *     (without it FFmpeg 5.1 encrypts every segment with the IV of the first).
 *
 *   key_rotation = N: FFmpeg 5.1 cannot change keys at chosen segments.
 *     periodic_rekey re-reads the key info file when each variant stream
 *     starts a segment, at moments the helper cannot see (the variant streams
 *     of the one ffmpeg start their segments in packet order), so rewriting
 *     the file while ffmpeg runs would give segments whichever key was there.
 *     The ladder is written plain into a 0700 directory instead, then each
 *     segment is encrypted here with EVP (the same cipher, padding and IV as
 *     the muxer's crypto protocol), key k for the segments k*N .. k*N+N-1,
 *     and the playlist gets the same EXT-X-KEY lines the muxer writes.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "vodlms_helper.h"

int
vh_keys_open(vh_keys_t *ks, char *err, size_t errlen)
{
    const char  *base = getenv("TMPDIR");

    memset(ks, 0, sizeof(*ks));
    if (base == NULL || base[0] != '/') {
        base = "/tmp";
    }
    /* the paths go into a key info file, one a line, and are read by ffmpeg */
    if (strpbrk(base, "\n\r:") != NULL || strlen(base) > 3000) {
        snprintf(err, errlen, "TMPDIR \"%s\" cannot hold key files (a newline or"
                 " ':' in it, or too long)", base);
        return -1;
    }
    snprintf(ks->dir, sizeof(ks->dir), "%s/vodlms-keys-XXXXXX", base);
    if (mkdtemp(ks->dir) == NULL) {
        snprintf(err, errlen, "cannot create a private directory %s: %s",
                 ks->dir, strerror(errno));
        ks->dir[0] = '\0';
        return -1;
    }
    return 0;
}

int
vh_keys_add(vh_keys_t *ks, long first_segment, long long starts_ms)
{
    vh_hls_key_t  *k;

    if (ks->n == ks->cap) {
        int cap = ks->cap ? ks->cap * 2 : 8;
        /* a fresh array, the old one wiped: no key left in freed memory */
        k = calloc(cap, sizeof(*k));
        if (k == NULL) {
            return -1;
        }
        if (ks->n) {
            memcpy(k, ks->keys, ks->n * sizeof(*k));
            OPENSSL_cleanse(ks->keys, ks->n * sizeof(*k));
        }
        free(ks->keys);
        ks->keys = k;
        ks->cap = cap;
    }
    k = &ks->keys[ks->n];
    if (RAND_bytes(k->key, VH_KEY_LEN) != 1) {
        vh_error("RAND_bytes failed: no key drawn");
        return -1;
    }
    k->first_segment = first_segment;
    k->starts_ms = starts_ms;
    ks->n++;
    return 0;
}

void
vh_keys_drop_dir(vh_keys_t *ks)
{
    if (ks->dir[0] != '\0') {
        if (vh_rm_rf(ks->dir) != 0) {
            vh_error("cannot remove the private key directory %s: %s", ks->dir,
                     strerror(errno));
        }
        ks->dir[0] = '\0';
    }
}

void
vh_keys_close(vh_keys_t *ks)
{
    vh_keys_drop_dir(ks);
    if (ks->keys != NULL) {
        OPENSSL_cleanse(ks->keys, ks->cap * sizeof(*ks->keys));
        free(ks->keys);
    }
    memset(ks, 0, sizeof(*ks));
}

int
vh_keys_uri(const vh_conf_t *cf, const char *video_id, const char *version,
    int k, char *out, size_t len)
{
    int n = snprintf(out, len, "%s/%s/%s/%d.key", cf->key_uri_base, video_id,
                     version, k);

    return n < 0 || (size_t) n >= len ? -1 : 0;
}

static int
write_private(const char *path, const void *data, size_t len)
{
    int         fd;
    ssize_t     n;
    const char *p = data;

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        return -1;
    }
    while (len > 0) {
        n = write(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            close(fd);
            return -1;
        }
        p += n;
        len -= n;
    }
    return close(fd);
}

int
vh_keys_write_info(const vh_conf_t *cf, const vh_keys_t *ks,
    const char *video_id, const char *version, int k, char *path, size_t len)
{
    char      key[4200], uri[1024];
    vh_buf_t  info = { 0 };
    int       rc;

    if (ks->dir[0] == '\0' || k < 0 || k >= ks->n
        || vh_keys_uri(cf, video_id, version, k, uri, sizeof(uri)) != 0)
    {
        return -1;
    }
    snprintf(key, sizeof(key), "%s/%d.key", ks->dir, k);
    snprintf(path, len, "%s/%d.keyinfo", ks->dir, k);
    if (write_private(key, ks->keys[k].key, VH_KEY_LEN) != 0) {
        vh_error("cannot write %s: %s", key, strerror(errno));
        return -1;
    }
    /* URI, key file, no IV line: the muxer uses the media sequence number */
    if (vh_buf_printf(&info, "%s\n%s\n", uri, key) != 0) {
        return -1;
    }
    rc = write_private(path, info.data, info.len);
    if (rc != 0) {
        vh_error("cannot write %s: %s", path, strerror(errno));
    }
    vh_buf_free(&info);
    return rc;
}

/* the IV of a segment: its media sequence number, 16 bytes big-endian */
static void
seq_iv(long seq, unsigned char iv[16])
{
    int i;

    memset(iv, 0, 16);
    for (i = 15; i >= 8; i--) {
        iv[i] = (unsigned char) (seq & 0xff);
        seq >>= 8;
    }
}

int
vh_keys_crypt_file(const unsigned char *key, long seq, const char *in,
    const char *out, int encrypt, char *err, size_t errlen)
{
    EVP_CIPHER_CTX  *ctx = NULL;
    unsigned char    iv[16], ibuf[65536], obuf[65536 + 32];
    int              ifd = -1, ofd = -1, olen, rc = -1;
    ssize_t          n;

    seq_iv(seq, iv);
    ifd = open(in, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (ifd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", in, strerror(errno));
        goto done;
    }
    ofd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
               encrypt ? 0644 : 0600);
    if (ofd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", out, strerror(errno));
        goto done;
    }
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL
        || EVP_CipherInit_ex(ctx, EVP_aes_128_cbc(), NULL, key, iv, encrypt) != 1)
    {
        snprintf(err, errlen, "cannot set up AES-128-CBC");
        goto done;
    }
    for (;;) {
        n = read(ifd, ibuf, sizeof(ibuf));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            snprintf(err, errlen, "cannot read %s: %s", in, strerror(errno));
            goto done;
        }
        if (n == 0) {
            if (EVP_CipherFinal_ex(ctx, obuf, &olen) != 1) {
                snprintf(err, errlen, "%s: bad padding (not AES-128-CBC with this"
                         " key and IV)", in);
                goto done;
            }
        } else if (EVP_CipherUpdate(ctx, obuf, &olen, ibuf, (int) n) != 1) {
            snprintf(err, errlen, "AES-128-CBC failed on %s", in);
            goto done;
        }
        if (olen > 0 && write(ofd, obuf, olen) != olen) {
            snprintf(err, errlen, "cannot write %s: %s", out, strerror(errno));
            goto done;
        }
        if (n == 0) {
            break;
        }
    }
    if (close(ofd) != 0) {
        ofd = -1;
        snprintf(err, errlen, "cannot write %s: %s", out, strerror(errno));
        goto done;
    }
    ofd = -1;
    rc = 0;
done:
    OPENSSL_cleanse(obuf, sizeof(obuf));
    OPENSSL_cleanse(ibuf, sizeof(ibuf));
    EVP_CIPHER_CTX_free(ctx);
    if (ifd >= 0) {
        close(ifd);
    }
    if (ofd >= 0) {
        close(ofd);
    }
    if (rc != 0) {
        unlink(out);
    }
    return rc;
}

static int
read_all(const char *path, vh_buf_t *b)
{
    FILE   *f = fopen(path, "re");
    char    chunk[8192];
    size_t  n;

    if (f == NULL) {
        return -1;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (vh_buf_append(b, chunk, n) != 0) {
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    return b->data != NULL ? 0 : -1;
}

int
vh_keys_encrypt_rendition(const vh_conf_t *cf, vh_keys_t *ks,
    const char *video_id, const char *version, const char *plain_dir,
    const char *out_dir, char *err, size_t errlen)
{
    vh_buf_t     text = { 0 }, pl = { 0 };
    const char  *p, *nl;
    char         line[1024], uri[1024], in[4400], seg[4400], out[4400];
    long         media_seq = 0, j = 0, k = -1;
    double       elapsed = 0, extinf = -1;
    int          rc = -1, n = cf->key_rotation;

    snprintf(in, sizeof(in), "%s/index.m3u8", plain_dir);
    if (read_all(in, &text) != 0) {
        snprintf(err, errlen, "cannot read %s", in);
        goto done;
    }
    for (p = text.data; *p; p = nl ? nl + 1 : p + strlen(p)) {
        size_t len;

        nl = strchr(p, '\n');
        len = nl ? (size_t) (nl - p) : strlen(p);
        if (len >= sizeof(line)) {
            snprintf(err, errlen, "%s: a line too long", in);
            goto done;
        }
        memcpy(line, p, len);
        line[len] = '\0';
        if (len && line[len - 1] == '\r') {
            line[--len] = '\0';
        }
        if (!strncmp(line, "#EXT-X-MEDIA-SEQUENCE:", 22)) {
            media_seq = atol(line + 22);
        } else if (!strncmp(line, "#EXT-X-KEY:", 11)) {
            snprintf(err, errlen, "%s: already encrypted", in);
            goto done;
        } else if (!strncmp(line, "#EXTINF:", 8)) {
            /* the segment's key, before its EXTINF, as the muxer writes it */
            extinf = atof(line + 8);
            if (j / n != k) {
                k = j / n;
                if (k == ks->n
                    && vh_keys_add(ks, media_seq + j, llround(elapsed * 1000)) != 0)
                {
                    snprintf(err, errlen, "cannot draw a key");
                    goto done;
                }
                if (k > ks->n
                    || ks->keys[k].first_segment != media_seq + j
                    || vh_keys_uri(cf, video_id, version, (int) k, uri,
                                   sizeof(uri)) != 0)
                {
                    snprintf(err, errlen, "%s: the key periods do not match the"
                             " other renditions'", in);
                    goto done;
                }
            }
            vh_buf_printf(&pl, "#EXT-X-KEY:METHOD=AES-128,URI=\"%s\","
                          "IV=0x%016x%016lx\n", uri, 0, media_seq + j);
        } else if (line[0] != '#' && line[0] != '\0') {
            if (extinf < 0 || strchr(line, '/') != NULL || line[0] == '.') {
                snprintf(err, errlen, "%s: segment \"%s\" without EXTINF or not"
                         " beside its playlist", in, line);
                goto done;
            }
            snprintf(seg, sizeof(seg), "%s/%s", plain_dir, line);
            snprintf(out, sizeof(out), "%s/%s", out_dir, line);
            if (vh_keys_crypt_file(ks->keys[k].key, media_seq + j, seg, out, 1,
                                   err, errlen) != 0)
            {
                goto done;
            }
            elapsed += extinf;
            extinf = -1;
            j++;
        }
        vh_buf_printf(&pl, "%s\n", line);
    }
    if (j == 0 || pl.data == NULL) {
        snprintf(err, errlen, "%s: no segment", in);
        goto done;
    }
    snprintf(out, sizeof(out), "%s/index.m3u8", out_dir);
    if (vh_write_file_atomic(out, pl.data, pl.len) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", out, strerror(errno));
        goto done;
    }
    rc = 0;
done:
    vh_buf_free(&text);
    vh_buf_free(&pl);
    return rc;
}
