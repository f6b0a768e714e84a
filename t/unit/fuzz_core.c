/*
 * libFuzzer target for the pure core: every parser gets the same bytes, and
 * what they return is checked against their contracts.
 *
 *     make -C t/unit fuzz [FUZZ_SECONDS=60]
 */

#include <regex.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "vodlms_core.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static const vodlms_cstr_t  secrets[] = {
    { "old secret", 10 }, { "keyboard cat", 12 }
};


static void
check(int cond)
{
    if (!cond) {
        abort();
    }
}


static int
role_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
           || (c >= '0' && c <= '9')
           || c == '_' || c == '.' || c == ':' || c == '-' || c == ',';
}


/*
 * A storage prefix: the hand-written check must agree with the schema's own
 * CHECK (sql/migrations/0002_videos.sql), run here by POSIX regexec().
 */
static void
check_storage_prefix(const char *in, size_t size)
{
    int             ours, theirs;
    char           *z;
    static int      ready;
    static regex_t  shape, dots;

    if (!ready) {
        check(regcomp(&shape, "^[A-Za-z0-9_-]+(/[A-Za-z0-9_.-]+)*/?$",
                      REG_EXTENDED | REG_NOSUB) == 0);
        check(regcomp(&dots, "(^|/)[.][.]?(/|$)", REG_EXTENDED | REG_NOSUB)
              == 0);
        ready = 1;
    }

    ours = vodlms_storage_prefix_valid(in, size, 512);

    if (memchr(in, '\0', size) != NULL) {
        check(!ours);                   /* the regex cannot see past a NUL */
        return;
    }

    z = malloc(size + 1);
    check(z != NULL);
    memcpy(z, in, size);
    z[size] = '\0';

    theirs = size <= 512
             && regexec(&shape, z, 0, NULL, 0) == 0
             && regexec(&dots, z, 0, NULL, 0) != 0;

    free(z);

    check(ours == theirs);
}


/*
 * A caption upload's language and label (vodlms_caption.c): the language
 * check must agree with the schema's CHECK on video_captions.lang
 * (sql/migrations/0012_video_captions.sql), and its canonical form is the
 * input up to case and a fixed point; a label that passes is what the
 * schema's label CHECK and an HLS quoted attribute accept.
 */
static void
check_caption(const char *in, size_t size)
{
    int             ours, theirs;
    char           *z, out[VODLMS_CAPTION_LANG_MAX], again[VODLMS_CAPTION_LANG_MAX];
    char           *label;
    size_t          i, n;
    static int      ready;
    static regex_t  tag;

    if (!ready) {
        check(regcomp(&tag, "^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}$",
                      REG_EXTENDED | REG_NOSUB) == 0);
        ready = 1;
    }

    ours = vodlms_caption_lang(in, size, out) == VODLMS_OK;

    if (memchr(in, '\0', size) != NULL) {
        check(!ours);                   /* the regex cannot see past a NUL */

    } else {
        z = malloc(size + 1);
        check(z != NULL);
        memcpy(z, in, size);
        z[size] = '\0';
        theirs = regexec(&tag, z, 0, NULL, 0) == 0;
        free(z);

        check(ours == theirs);
    }

    if (ours) {
        for (i = 0; i < size; i++) {
            check((out[i] | 0x20) == (in[i] | 0x20));
        }

        check(vodlms_caption_lang(out, size, again) == VODLMS_OK);
        check(memcmp(out, again, size) == 0);
    }

    label = malloc(size ? size : 1);
    check(label != NULL);

    if (vodlms_caption_label(in, size, label, &n) == VODLMS_OK) {
        check(n >= 1 && n <= VODLMS_CAPTION_LABEL_MAX && n <= size);
        check(vodlms_utf8_valid(label, n));

        for (i = 0; i < n; i++) {
            check((unsigned char) label[i] >= 0x20 && label[i] != 0x7f
                  && label[i] != '"');
            /* nothing hls.js reads as a tag or a variable in a master */
            check(!(label[i] == '#' && i + 3 < n
                    && (label[i + 1] | 0x20) == 'e'
                    && (label[i + 2] | 0x20) == 'x'
                    && (label[i + 3] | 0x20) == 't'));
            check(!(label[i] == '{' && i + 1 < n && label[i + 1] == '$'));
        }
    }

    free(label);

    i = (size_t) vodlms_caption_flag(in, size) + 1;
    check(i <= 2);
}


/*
 * Session fields and the watermark's text: whatever the input, a field or a
 * cut is well-formed UTF-8 within its bound, and the fields never change
 * the session's own verdict.
 */
static void
check_session_extra(const char *in, size_t size)
{
    char                     cut[64];
    size_t                   i, n;
    vodlms_rc_t              rc, rc2;
    vodlms_session_t         s, s2;
    vodlms_session_field_t   f[4];
    const char              *paths[] = { "email", "a.b", "n", "passport" };

    n = vodlms_utf8_cut(in, size, cut, sizeof(cut));
    check(n <= sizeof(cut) && vodlms_utf8_valid(cut, n));
    check(n + 4 > sizeof(cut) || n >= size);     /* stopped: full, or done */

    memset(f, 0x5a, sizeof(f));
    rc = vodlms_session_from_json_ex(in, size, "passport.user", "roles",
                                     "cookie.expires", paths, 4, &s, f);
    rc2 = vodlms_session_from_json(in, size, "passport.user", "roles",
                                   "cookie.expires", &s2);
    check(rc == rc2 && memcmp(&s, &s2, sizeof(s)) == 0);

    for (i = 0; i < 4; i++) {
        check(f[i].len <= VODLMS_SESSION_FIELD_MAX
              && vodlms_utf8_valid(f[i].value, f[i].len)
              && (f[i].found || f[i].len == 0)
              && (rc == VODLMS_OK || !f[i].found));
    }

    vodlms_session_field_set(&f[0], in, size);
    check(f[0].found && f[0].len <= VODLMS_SESSION_FIELD_MAX
          && vodlms_utf8_valid(f[0].value, f[0].len));
}


/*
 * JSON output: the escaper must agree with jansson on every input (the
 * playback answer's bytes), and a numeral must print as jansson prints
 * strtod() of it.
 */
static void
check_json_output(const char *in, size_t size)
{
    char     *exp, *got, *end, num[VODLMS_JSON_NUMBER_MAX], *z;
    size_t    n, dots;
    json_t   *j;

    j = json_stringn(in, size);
    n = vodlms_json_escaped_len(in, size);

    if (j == NULL) {
        check(n == VODLMS_JSON_INVALID);

    } else {
        exp = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(j);
        check(exp != NULL && n != VODLMS_JSON_INVALID
              && n + 2 == strlen(exp));

        got = malloc(n + 2);
        check(got != NULL);
        got[0] = '"';
        end = vodlms_json_escape(got + 1, in, size);
        *end = '"';
        check((size_t) (end + 1 - got) == n + 2
              && memcmp(got, exp, n + 2) == 0);
        free(got);
        free(exp);
    }

    /* the strtod()-free path: strtod()'s double, bit for bit, or no answer */
    {
        double  fast, slow;
        char    nz[VODLMS_NUMERAL_FAST_MAX + 1], *end;

        if (vodlms_numeral_fast(in, size, &fast)) {
            check(size <= VODLMS_NUMERAL_FAST_MAX);
            memcpy(nz, in, size);
            nz[size] = '\0';
            slow = strtod(nz, &end);
            check(end == nz + size
                  && memcmp(&fast, &slow, sizeof(double)) == 0);
        }
    }

    /* as a numeral: only plain digits with at most one inner dot */
    dots = 0;

    for (n = 0; n < size; n++) {
        if (in[n] == '.') {
            dots++;

        } else if (in[n] < '0' || in[n] > '9') {
            return;
        }
    }

    if (size == 0 || size > 60 || dots > 1 || in[0] == '.'
        || in[size - 1] == '.')
    {
        return;
    }

    z = malloc(size + 1);
    check(z != NULL);
    memcpy(z, in, size);
    z[size] = '\0';

    j = json_real(strtod(z, NULL));
    check(j != NULL);
    exp = json_dumps(j, JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    json_decref(j);

    n = vodlms_json_decimal(in, size, num, sizeof(num));
    check(exp != NULL && n == strlen(exp) && memcmp(num, exp, n) == 0);

    free(exp);
    free(z);
}


static void
check_session(vodlms_rc_t rc, const vodlms_session_t *s)
{
    size_t  i;

    if (rc != VODLMS_OK) {
        check(s->user_id_len == 0 && s->roles_len == 0 && s->expires == 0);
        return;
    }

    check(s->user_id_len >= 1 && s->user_id_len <= VODLMS_USER_ID_MAX);
    check(strlen(s->user_id) == s->user_id_len);
    check(s->roles_len <= VODLMS_ROLES_MAX);
    check(strlen(s->roles) == s->roles_len);

    for (i = 0; i < s->roles_len; i++) {
        check(role_char((unsigned char) s->roles[i]));
    }

    check(s->expires >= 0);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char              *in, *buf, signed_buf[2 + VODLMS_SID_MAX + 1 + 64];
    size_t             n, m, i;
    int64_t            t;
    const char        *f[3];
    size_t             fl[3];
    vodlms_rc_t        rc;
    vodlms_cstr_t      v, sid, tok;
    vodlms_session_t   s;

    /* an exact-size copy: reading past `size` is an ASan report */
    in = malloc(size ? size : 1);
    buf = malloc(size ? size : 1);
    check(in != NULL && buf != NULL);
    memcpy(in, data, size);

    if (vodlms_cookie_get(in, size, "connect.sid", 11, &v) == VODLMS_OK) {
        check(v.data >= in && v.data + v.len <= in + size);

        if (vodlms_pct_decode(v.data, v.len, buf, &n) == VODLMS_OK) {
            check(n <= v.len);

            if (vodlms_express_unsign(buf, n, secrets, 2, &sid) == VODLMS_OK)
            {
                check(sid.len >= 1 && sid.len <= VODLMS_SID_MAX);
            }
        }
    }

    /* the whole input as a cookie value, and a sign/unsign round trip */
    rc = vodlms_express_unsign(in, size, secrets, 2, &sid);
    check(rc != VODLMS_OK || (sid.data == in + 2 && sid.len <= VODLMS_SID_MAX));

    if (vodlms_express_sign(in, size, "keyboard cat", 12, signed_buf,
                            sizeof(signed_buf), &m) == VODLMS_OK)
    {
        check(vodlms_express_unsign(signed_buf, m, secrets, 2, &sid)
              == VODLMS_OK);
        check(sid.len == size && memcmp(sid.data, in, size) == 0);
        check(vodlms_express_unsign(signed_buf, m, secrets, 1, &sid)
              == VODLMS_EBADSIG);
    }

    if (vodlms_bearer_token(in, size, &tok) == VODLMS_OK) {
        check(tok.len > 0 && tok.data >= in && tok.data + tok.len <= in + size);
        (void) vodlms_token_valid(tok.data, tok.len);
    }

    (void) vodlms_token_valid(in, size);
    (void) vodlms_parse_expiry(in, size, &t);

    memset(&s, 0x5a, sizeof(s));
    rc = vodlms_session_from_json(in, size, "passport.user", "roles",
                                  "cookie.expires", &s);
    check_session(rc, &s);

    check_session_extra(in, size);

    /* three hash fields, split at the first two NULs */
    for (i = 0, n = 0; i < 3; i++) {
        f[i] = NULL;
        fl[i] = 0;
    }

    for (i = 0, m = 0; i <= size && n < 3; i++) {
        if (i == size || in[i] == '\0') {
            f[n] = in + m;
            fl[n] = i - m;
            n++;
            m = i + 1;
        }
    }

    memset(&s, 0x5a, sizeof(s));
    rc = vodlms_session_from_fields(f[0], fl[0], f[1], fl[1], f[2], fl[2],
                                    &s);
    check_session(rc, &s);

    check_json_output(in, size);
    check_storage_prefix(in, size);
    check_caption(in, size);

    free(buf);
    free(in);

    return 0;
}
