/*
 * libFuzzer target for the pure core: every parser gets the same bytes, and
 * what they return is checked against their contracts.
 *
 *     make -C t/unit fuzz [FUZZ_SECONDS=60]
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

    free(buf);
    free(in);

    return 0;
}
