/*
 * vodlms core: what a session stored in Redis says about its user, from a
 * JSON document (express-session + connect-redis) or from hash fields.
 */

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "vodlms_core.h"


static vodlms_rc_t
vodlms_set_user(vodlms_session_t *out, const char *s, size_t len)
{
    size_t  i;

    if (len > VODLMS_USER_ID_MAX) {
        return VODLMS_ETOOLONG;
    }

    if (len == 0) {
        return VODLMS_ETYPE;
    }

    for (i = 0; i < len; i++) {
        if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f) {
            return VODLMS_ETYPE;
        }
    }

    if (!vodlms_utf8_valid(s, len)) {
        return VODLMS_ETYPE;
    }

    memcpy(out->user_id, s, len);
    out->user_id[len] = '\0';
    out->user_id_len = len;

    return VODLMS_OK;
}


static vodlms_rc_t
vodlms_add_role(vodlms_session_t *out, const char *s, size_t len)
{
    size_t         i, sep;
    unsigned char  c;

    if (len == 0) {
        return VODLMS_ETYPE;
    }

    for (i = 0; i < len; i++) {
        c = (unsigned char) s[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
              || (c >= '0' && c <= '9')
              || c == '_' || c == '.' || c == ':' || c == '-'))
        {
            return VODLMS_ETYPE;
        }
    }

    sep = out->roles_len ? 1 : 0;

    /* roles_len may already be VODLMS_ROLES_MAX: no subtraction from it */
    if (len > VODLMS_ROLES_MAX
        || out->roles_len + sep + len > VODLMS_ROLES_MAX)
    {
        return VODLMS_ETOOLONG;
    }

    if (sep) {
        out->roles[out->roles_len++] = ',';
    }

    memcpy(out->roles + out->roles_len, s, len);
    out->roles_len += len;
    out->roles[out->roles_len] = '\0';

    return VODLMS_OK;
}


/*
 * JSON allows no raw NUL anywhere, but jansson's reader lets one through
 * after a number ({"user":7<NUL>} parses as {"user":7}, jansson issue 331),
 * so such a document is refused before it reaches the parser.
 */
static vodlms_rc_t
vodlms_json_load(const char *json, size_t len, json_t **root)
{
    json_error_t  err;

    *root = NULL;

    if (len == 0 || memchr(json, '\0', len) != NULL) {
        return VODLMS_EMALFORMED;
    }

    /*
     * express-session never writes a key twice; with duplicates, which
     * "user" counts would depend on the parser, so refuse the document.
     */
    *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err);

    if (*root == NULL) {
        return json_error_code(&err) == json_error_out_of_memory
               ? VODLMS_ENOMEM : VODLMS_EMALFORMED;
    }

    return VODLMS_OK;
}


static vodlms_rc_t
vodlms_roles_from_json(vodlms_session_t *out, json_t *v)
{
    size_t       i;
    json_t      *e;
    vodlms_rc_t  rc;

    if (json_is_string(v)) {
        return vodlms_add_role(out, json_string_value(v),
                               json_string_length(v));
    }

    if (!json_is_array(v)) {
        return VODLMS_ETYPE;
    }

    json_array_foreach(v, i, e) {
        if (!json_is_string(e)) {
            return VODLMS_ETYPE;
        }

        rc = vodlms_add_role(out, json_string_value(e),
                             json_string_length(e));
        if (rc != VODLMS_OK) {
            return rc;
        }
    }

    return VODLMS_OK;
}


/*
 * Epoch 0 means "no expiry" in vodlms_session_t, so a date at or before
 * 1970 must not read as 0: it is a session that expired long ago.
 */
static vodlms_rc_t
vodlms_set_expiry(vodlms_session_t *out, const char *s, size_t len)
{
    int64_t      t;
    vodlms_rc_t  rc;

    rc = vodlms_parse_expiry(s, len, &t);
    if (rc != VODLMS_OK) {
        return rc;
    }

    out->expires = t > 0 ? t : 1;

    return VODLMS_OK;
}


static vodlms_rc_t
vodlms_expiry_from_json(vodlms_session_t *out, json_t *v)
{
    int   n;
    char  buf[32];

    if (json_is_string(v)) {
        return vodlms_set_expiry(out, json_string_value(v),
                                 json_string_length(v));
    }

    /* a JSON number goes through the same rules as a string of digits */
    if (json_is_integer(v)) {
        n = snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
                     json_integer_value(v));
        if (n < 0 || (size_t) n >= sizeof(buf)) {
            return VODLMS_EINTERNAL;
        }

        return vodlms_set_expiry(out, buf, (size_t) n);
    }

    return VODLMS_ETYPE;
}


/*
 * Walk a dotted path through nested objects.  A missing key or a null on
 * the way means "absent" (VODLMS_ENOTFOUND, *found = NULL); a string or a
 * number where an object should be is VODLMS_ETYPE.  An empty component
 * ("a..b", ".a", "") is a configuration error: VODLMS_EINTERNAL.
 */
static vodlms_rc_t
vodlms_json_path(json_t *root, const char *path, json_t **found)
{
    size_t       n;
    json_t      *v;
    const char  *p, *dot;

    *found = NULL;
    v = root;

    for (p = path; /* void */; p = dot + 1) {
        dot = strchr(p, '.');
        n = dot ? (size_t) (dot - p) : strlen(p);

        if (n == 0) {
            return VODLMS_EINTERNAL;
        }

        if (json_is_null(v)) {
            return VODLMS_ENOTFOUND;
        }

        if (!json_is_object(v)) {
            return VODLMS_ETYPE;
        }

        v = json_object_getn(v, p, n);
        if (v == NULL) {
            return VODLMS_ENOTFOUND;
        }

        if (dot == NULL) {
            break;
        }
    }

    if (json_is_null(v)) {
        return VODLMS_ENOTFOUND;
    }

    *found = v;

    return VODLMS_OK;
}


static vodlms_rc_t
vodlms_session_json(json_t *root, const char *user_path,
    const char *role_path, const char *expires_path, vodlms_session_t *out)
{
    int          n;
    json_t      *v;
    vodlms_rc_t  rc;

    if (!json_is_object(root)) {
        return VODLMS_EMALFORMED;
    }

    rc = vodlms_json_path(root, user_path, &v);
    if (rc != VODLMS_OK) {
        return rc;
    }

    if (json_is_string(v)) {
        rc = vodlms_set_user(out, json_string_value(v),
                             json_string_length(v));
        if (rc != VODLMS_OK) {
            return rc;
        }

    } else if (json_is_integer(v)) {
        n = snprintf(out->user_id, sizeof(out->user_id),
                     "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        if (n < 0 || (size_t) n >= sizeof(out->user_id)) {
            return VODLMS_EINTERNAL;
        }

        out->user_id_len = (size_t) n;

    } else {
        return VODLMS_ETYPE;        /* real, boolean, object, array */
    }

    if (role_path != NULL) {
        rc = vodlms_json_path(root, role_path, &v);

        if (rc == VODLMS_OK) {
            rc = vodlms_roles_from_json(out, v);
        }

        if (rc != VODLMS_OK && rc != VODLMS_ENOTFOUND) {
            return rc;
        }
    }

    if (expires_path != NULL) {
        /* express-session writes "expires": null for a browser session */
        rc = vodlms_json_path(root, expires_path, &v);

        if (rc == VODLMS_OK) {
            rc = vodlms_expiry_from_json(out, v);
        }

        if (rc != VODLMS_OK && rc != VODLMS_ENOTFOUND) {
            return rc;
        }
    }

    return VODLMS_OK;
}


void
vodlms_session_field_set(vodlms_session_field_t *f, const char *s, size_t len)
{
    f->len = vodlms_utf8_cut(s, len, f->value, sizeof(f->value));
    f->found = 1;
}


static void
vodlms_session_field_json(vodlms_session_field_t *f, json_t *root,
    const char *path)
{
    int       n;
    json_t   *v;

    f->len = 0;
    f->found = 0;

    if (vodlms_json_path(root, path, &v) != VODLMS_OK) {
        return;
    }

    if (json_is_string(v)) {
        vodlms_session_field_set(f, json_string_value(v),
                                 json_string_length(v));
        return;
    }

    if (json_is_integer(v)) {
        n = snprintf(f->value, sizeof(f->value), "%" JSON_INTEGER_FORMAT,
                     json_integer_value(v));
        if (n > 0 && (size_t) n < sizeof(f->value)) {
            f->len = (size_t) n;
            f->found = 1;
        }
        return;
    }

    if (json_is_real(v)) {
        f->len = vodlms_json_real(f->value, sizeof(f->value),
                                  json_real_value(v));
        f->found = (f->len != 0);
        return;
    }

    if (json_is_boolean(v)) {
        vodlms_session_field_set(f, json_is_true(v) ? "true" : "false",
                                 json_is_true(v) ? 4 : 5);
    }

    /* an object or an array: not something to show */
}


vodlms_rc_t
vodlms_session_from_json(const char *json, size_t len, const char *user_path,
    const char *role_path, const char *expires_path, vodlms_session_t *out)
{
    return vodlms_session_from_json_ex(json, len, user_path, role_path,
                                       expires_path, NULL, 0, out, NULL);
}


vodlms_rc_t
vodlms_session_from_json_ex(const char *json, size_t len,
    const char *user_path, const char *role_path, const char *expires_path,
    const char *const *field_paths, size_t nfields, vodlms_session_t *out,
    vodlms_session_field_t *fields)
{
    size_t        i;
    json_t       *root;
    vodlms_rc_t   rc;

    memset(out, 0, sizeof(*out));

    if (nfields > VODLMS_SESSION_FIELDS_MAX) {
        return VODLMS_EINTERNAL;
    }

    for (i = 0; i < nfields; i++) {
        fields[i].len = 0;
        fields[i].found = 0;
    }

    if (user_path == NULL) {
        return VODLMS_EINTERNAL;
    }

    if (json == NULL) {
        return VODLMS_EMALFORMED;
    }

    rc = vodlms_json_load(json, len, &root);
    if (rc != VODLMS_OK) {
        return rc;
    }

    rc = vodlms_session_json(root, user_path, role_path, expires_path, out);

    for (i = 0; rc == VODLMS_OK && i < nfields; i++) {
        vodlms_session_field_json(&fields[i], root, field_paths[i]);
    }

    json_decref(root);

    if (rc != VODLMS_OK) {
        memset(out, 0, sizeof(*out));
    }

    return rc;
}


static vodlms_rc_t
vodlms_roles_from_field(vodlms_session_t *out, const char *s, size_t len)
{
    json_t       *root;
    const char   *p, *end, *q;
    vodlms_rc_t   rc;

    p = s;
    end = s + len;

    while (p < end && (*p == ' ' || *p == '\t')) {
        p++;
    }

    if (p < end && *p == '[') {
        rc = vodlms_json_load(p, (size_t) (end - p), &root);
        if (rc != VODLMS_OK) {
            return rc;
        }

        rc = vodlms_roles_from_json(out, root);
        json_decref(root);

        return rc;
    }

    /* "admin", "admin,teacher", "admin teacher", "admin, teacher" */
    while (p < end) {
        for (q = p; q < end && *q != ',' && *q != ' ' && *q != '\t'; q++) {
            /* void */
        }

        if (q > p) {
            rc = vodlms_add_role(out, p, (size_t) (q - p));
            if (rc != VODLMS_OK) {
                return rc;
            }
        }

        p = q < end ? q + 1 : q;
    }

    return VODLMS_OK;
}


vodlms_rc_t
vodlms_session_from_fields(const char *user, size_t user_len,
    const char *role, size_t role_len, const char *expires,
    size_t expires_len, vodlms_session_t *out)
{
    vodlms_rc_t  rc;

    memset(out, 0, sizeof(*out));

    if (user == NULL) {
        return VODLMS_ENOTFOUND;
    }

    rc = vodlms_set_user(out, user, user_len);

    if (rc == VODLMS_OK && role != NULL) {
        rc = vodlms_roles_from_field(out, role, role_len);
    }

    if (rc == VODLMS_OK && expires != NULL) {
        rc = vodlms_set_expiry(out, expires, expires_len);
    }

    if (rc != VODLMS_OK) {
        memset(out, 0, sizeof(*out));
    }

    return rc;
}
