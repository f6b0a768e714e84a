/*
 * The session gate (access phase): who is this user?
 *
 * The token comes from a cookie or "Authorization: Bearer"; for
 * express-session cookies its HMAC signature is checked first, so a forged
 * cookie never costs a Redis round trip.  The answer comes from the shared
 * cache when it is fresh, otherwise from Redis (GET or HMGET, plus PTTL so
 * that a cached answer never outlives the session key), without blocking.
 */

#include "ngx_http_vodlms_module.h"


#define NGX_HTTP_VODLMS_CACHE_POSITIVE  'P'
#define NGX_HTTP_VODLMS_CACHE_NEGATIVE  'N'


ngx_conf_enum_t  ngx_http_vodlms_session_types[] = {
    { ngx_string("token"), NGX_HTTP_VODLMS_SESSION_TOKEN },
    { ngx_string("express"), NGX_HTTP_VODLMS_SESSION_EXPRESS },
    { ngx_null_string, 0 }
};


typedef struct {
    ngx_str_t  cookie;
    ngx_str_t  key_prefix;
    ngx_str_t  user_field;
} ngx_http_vodlms_session_defaults_t;


/* defaults by session type: token, express */
static ngx_http_vodlms_session_defaults_t  ngx_http_vodlms_session_defaults[] = {
    { ngx_string("session"), ngx_string("session:"), ngx_string("user_id") },
    { ngx_string("connect.sid"), ngx_string("sess:"),
      ngx_string("passport.user") }
};


ngx_conf_enum_t  ngx_http_vodlms_session_values[] = {
    { ngx_string("json"), NGX_HTTP_VODLMS_VALUE_JSON },
    { ngx_string("hash"), NGX_HTTP_VODLMS_VALUE_HASH },
    { ngx_null_string, 0 }
};


static ngx_http_vodlms_err_e ngx_http_vodlms_session_token(
    ngx_http_request_t *r, ngx_http_vodlms_session_conf_t *scf,
    ngx_http_vodlms_session_ctx_t *sctx);
static ngx_int_t ngx_http_vodlms_session_cookie(ngx_http_request_t *r,
    ngx_str_t *name, ngx_str_t *value);
static ngx_int_t ngx_http_vodlms_session_lookup(ngx_http_request_t *r,
    ngx_http_vodlms_session_conf_t *scf, ngx_http_vodlms_session_ctx_t *sctx);
static void ngx_http_vodlms_session_reply(void *data, ngx_uint_t i,
    redisReply *reply);
static void ngx_http_vodlms_session_done(void *data,
    ngx_vodlms_redis_status_e status, const char *reason);
static ngx_int_t ngx_http_vodlms_session_set_user(ngx_http_request_t *r,
    ngx_http_vodlms_session_ctx_t *sctx, vodlms_session_t *s);
static ngx_int_t ngx_http_vodlms_session_decide(ngx_http_request_t *r,
    ngx_http_vodlms_session_conf_t *scf, ngx_http_vodlms_session_ctx_t *sctx);
static void ngx_http_vodlms_session_cache_store(ngx_http_request_t *r,
    ngx_http_vodlms_session_conf_t *scf, ngx_http_vodlms_session_ctx_t *sctx);
static ngx_int_t ngx_http_vodlms_session_cache_fetch(ngx_http_request_t *r,
    ngx_http_vodlms_session_conf_t *scf, ngx_http_vodlms_session_ctx_t *sctx);
static void ngx_http_vodlms_session_set_detail(ngx_http_request_t *r,
    ngx_http_vodlms_session_ctx_t *sctx, const char *fmt, const char *arg);


ngx_int_t
ngx_http_vodlms_session_handler(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    ngx_http_vodlms_ctx_t           *ctx;
    ngx_http_vodlms_loc_conf_t      *vlcf;
    ngx_http_vodlms_session_ctx_t   *sctx;
    ngx_http_vodlms_session_conf_t  *scf;

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);
    scf = &vlcf->session;

    if (!scf->enable) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_vodlms_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    sctx = &ctx->session;

    switch (sctx->state) {

    case NGX_HTTP_VODLMS_SESSION_PENDING:
        return NGX_AGAIN;

    case NGX_HTTP_VODLMS_SESSION_DONE:
        return ngx_http_vodlms_session_decide(r, scf, sctx);

    default: /* NGX_HTTP_VODLMS_SESSION_NEW */
        break;
    }

    sctx->result = ngx_http_vodlms_session_token(r, scf, sctx);

    if (sctx->result != NGX_HTTP_VODLMS_OK) {
        sctx->state = NGX_HTTP_VODLMS_SESSION_DONE;
        return ngx_http_vodlms_session_decide(r, scf, sctx);
    }

    if (scf->cache) {
        rc = ngx_http_vodlms_session_cache_fetch(r, scf, sctx);

        if (rc == NGX_OK) {
            sctx->cache_status = "HIT";
            sctx->state = NGX_HTTP_VODLMS_SESSION_DONE;
            return ngx_http_vodlms_session_decide(r, scf, sctx);
        }

        sctx->cache_status = "MISS";
    }

    rc = ngx_http_vodlms_session_lookup(r, scf, sctx);

    if (rc == NGX_AGAIN) {
        sctx->state = NGX_HTTP_VODLMS_SESSION_PENDING;
        return NGX_AGAIN;
    }

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    sctx->state = NGX_HTTP_VODLMS_SESSION_DONE;

    return ngx_http_vodlms_session_decide(r, scf, sctx);
}


/* find, decode and check the token; sets sctx->key */

static ngx_http_vodlms_err_e
ngx_http_vodlms_session_token(ngx_http_request_t *r,
    ngx_http_vodlms_session_conf_t *scf, ngx_http_vodlms_session_ctx_t *sctx)
{
    u_char         *buf;
    size_t          len;
    ngx_str_t       value;
    vodlms_rc_t     rc;
    vodlms_cstr_t   tok, sid;

    ngx_str_null(&value);

    /* an explicit Authorization header wins over an ambient cookie */
    if (scf->type == NGX_HTTP_VODLMS_SESSION_TOKEN
        && scf->bearer
        && r->headers_in.authorization)
    {
        rc = vodlms_bearer_token(
                    (char *) r->headers_in.authorization->value.data,
                    r->headers_in.authorization->value.len, &tok);

        if (rc == VODLMS_OK) {
            value.data = (u_char *) tok.data;
            value.len = tok.len;

        } else if (rc == VODLMS_EMALFORMED) {
            ngx_http_vodlms_session_set_detail(r, sctx,
                                               "empty bearer token", NULL);
            return NGX_HTTP_VODLMS_BAD_SESSION;
        }
    }

    if (value.len == 0
        && ngx_http_vodlms_session_cookie(r, &scf->eff_cookie, &value) != NGX_OK)
    {
        return NGX_HTTP_VODLMS_NO_SESSION;
    }

    if (scf->type == NGX_HTTP_VODLMS_SESSION_TOKEN) {

        if (!vodlms_token_valid((char *) value.data, value.len)) {
            ngx_http_vodlms_session_set_detail(r, sctx,
                              "token has bad characters or length", NULL);
            return NGX_HTTP_VODLMS_BAD_SESSION;
        }

        sctx->key = value;
        return NGX_HTTP_VODLMS_OK;
    }

    /* express-session: URL-encoded "s:<sid>.<signature>" */

    if (value.len > VODLMS_TOKEN_MAX) {
        ngx_http_vodlms_session_set_detail(r, sctx, "cookie too long", NULL);
        return NGX_HTTP_VODLMS_BAD_SESSION;
    }

    buf = ngx_pnalloc(r->pool, value.len);
    if (buf == NULL) {
        return NGX_HTTP_VODLMS_INTERNAL;
    }

    if (vodlms_pct_decode((char *) value.data, value.len, (char *) buf, &len)
        != VODLMS_OK)
    {
        ngx_http_vodlms_session_set_detail(r, sctx,
                                           "bad percent-encoding", NULL);
        return NGX_HTTP_VODLMS_BAD_SESSION;
    }

    rc = vodlms_express_unsign((char *) buf, len, scf->secrets->elts,
                               scf->secrets->nelts, &sid);

    switch (rc) {

    case VODLMS_OK:
        sctx->key.data = (u_char *) sid.data;
        sctx->key.len = sid.len;
        return NGX_HTTP_VODLMS_OK;

    case VODLMS_EBADSIG:
        return NGX_HTTP_VODLMS_BAD_SIGNATURE;

    case VODLMS_ENOTSIGNED:
        ngx_http_vodlms_session_set_detail(r, sctx,
                                        "cookie is not signed (no \"s:\")",
                                        NULL);
        return NGX_HTTP_VODLMS_BAD_SESSION;

    default:
        ngx_http_vodlms_session_set_detail(r, sctx, "%s", vodlms_rc_str(rc));
        return NGX_HTTP_VODLMS_BAD_SESSION;
    }
}


/* the first cookie of that name across every Cookie header, in order */

static ngx_int_t
ngx_http_vodlms_session_cookie(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value)
{
    vodlms_cstr_t     v;
    ngx_table_elt_t  *h;

#if (nginx_version >= 1023000)

    for (h = r->headers_in.cookie; h; h = h->next) {

#else
    ngx_uint_t        i;
    ngx_table_elt_t **hh;

    hh = r->headers_in.cookies.elts;

    for (i = 0; i < r->headers_in.cookies.nelts; i++) {
        h = hh[i];
#endif

        if (vodlms_cookie_get((char *) h->value.data, h->value.len,
                              (char *) name->data, name->len, &v)
            == VODLMS_OK)
        {
            if (v.len == 0) {
                return NGX_DECLINED;
            }

            value->data = (u_char *) v.data;
            value->len = v.len;
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_vodlms_session_lookup(ngx_http_request_t *r,
    ngx_http_vodlms_session_conf_t *scf, ngx_http_vodlms_session_ctx_t *sctx)
{
    u_char                       *key;
    size_t                        keylen;
    ngx_int_t                     rc;
    ngx_uint_t                    n;
    const char                   *reason;
    ngx_vodlms_redis_cmd_t        cmds[2];
    ngx_vodlms_redis_status_e     status;
    ngx_http_vodlms_main_conf_t  *vmcf;

    /* the replies are read straight away: these can live on the stack */
    const char                   *argv0[5 + VODLMS_SESSION_FIELDS_MAX];
    const char                   *argv1[2];
    size_t                        argvlen0[5 + VODLMS_SESSION_FIELDS_MAX];
    size_t                        argvlen1[2];
    ngx_uint_t                    i;
    ngx_http_vodlms_session_field_t  *f;

    vmcf = ngx_http_get_module_main_conf(r, ngx_http_vodlms_module);

    keylen = scf->eff_key_prefix.len + sctx->key.len;

    key = ngx_pnalloc(r->pool, keylen);
    if (key == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(ngx_cpymem(key, scf->eff_key_prefix.data,
                          scf->eff_key_prefix.len),
               sctx->key.data, sctx->key.len);

    if (scf->value == NGX_HTTP_VODLMS_VALUE_HASH) {
        n = 0;
        argv0[n] = "HMGET";
        argvlen0[n++] = 5;
        argv0[n] = (char *) key;
        argvlen0[n++] = keylen;
        argv0[n] = (char *) scf->eff_user_field.data;
        argvlen0[n++] = scf->eff_user_field.len;

        if (scf->role_field.len) {
            argv0[n] = (char *) scf->role_field.data;
            argvlen0[n++] = scf->role_field.len;
        }

        if (scf->expires_field.len) {
            argv0[n] = (char *) scf->expires_field.data;
            argvlen0[n++] = scf->expires_field.len;
        }

        if (scf->fields) {
            f = scf->fields->elts;

            for (i = 0; i < scf->fields->nelts; i++) {
                argv0[n] = (char *) f[i].path.data;
                argvlen0[n++] = f[i].path.len;
            }
        }

    } else {
        n = 2;
        argv0[0] = "GET";
        argvlen0[0] = 3;
        argv0[1] = (char *) key;
        argvlen0[1] = keylen;
    }

    cmds[0].argc = n;
    cmds[0].argv = argv0;
    cmds[0].argvlen = argvlen0;

    argv1[0] = "PTTL";
    argvlen1[0] = 4;
    argv1[1] = (char *) key;
    argvlen1[1] = keylen;

    cmds[1].argc = 2;
    cmds[1].argv = argv1;
    cmds[1].argvlen = argvlen1;

    sctx->pttl = -1;
    sctx->sent_at = ngx_current_msec;

    if (scf->revoke) {
        /* a change to the key from now on: the answer is not kept */
        ngx_http_vodlms_revoke_seen(scf->revoke, key, keylen,
                                    &sctx->revoke_seen);
    }

    rc = ngx_vodlms_redis_send(vmcf->redis_pool, r->pool, r->connection->log,
                               cmds, 2, ngx_http_vodlms_session_reply,
                               ngx_http_vodlms_session_done, r,
                               &status, &reason);

    if (rc == NGX_OK) {
        return NGX_AGAIN;
    }

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    sctx->result = (status == NGX_VODLMS_REDIS_TIMEOUT)
                   ? NGX_HTTP_VODLMS_BACKEND_TIMEOUT
                   : NGX_HTTP_VODLMS_BACKEND_DOWN;
    ngx_http_vodlms_session_set_detail(r, sctx, "%s", reason);

    return NGX_DONE;
}


static void
ngx_http_vodlms_session_reply(void *data, ngx_uint_t i, redisReply *reply)
{
    ngx_http_request_t  *r = data;

    size_t                           j, k;
    vodlms_rc_t                      rc;
    vodlms_session_t                 s;
    redisReply                      *f[3 + VODLMS_SESSION_FIELDS_MAX];
    redisReply                      *role, *exp, *e;
    vodlms_session_field_t           fields[VODLMS_SESSION_FIELDS_MAX];
    ngx_http_vodlms_ctx_t           *ctx;
    ngx_http_vodlms_loc_conf_t      *vlcf;
    ngx_http_vodlms_session_ctx_t   *sctx;
    ngx_http_vodlms_session_conf_t  *scf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_vodlms_module);
    sctx = &ctx->session;

    if (i == 1) {
        if (reply->type == REDIS_REPLY_INTEGER) {
            sctx->pttl = reply->integer;
        }
        return;
    }

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);
    scf = &vlcf->session;

    sctx->result = NGX_HTTP_VODLMS_BAD_SESSION_DATA;

    switch (reply->type) {

    case REDIS_REPLY_NIL:
        sctx->result = NGX_HTTP_VODLMS_UNKNOWN_SESSION;
        return;

    case REDIS_REPLY_ERROR:
        /*
         * WRONGTYPE: a hash where JSON was configured, the LMS's data;
         * anything else (NOAUTH, LOADING, MISCONF...) is the store failing
         */
        if (ngx_strncmp(reply->str, "WRONGTYPE", 9) != 0) {
            sctx->result = NGX_HTTP_VODLMS_BACKEND_DOWN;
        }

        ngx_http_vodlms_session_set_detail(r, sctx, "redis said: %s",
                                           reply->str);
        return;

    case REDIS_REPLY_STRING:
        if (scf->value != NGX_HTTP_VODLMS_VALUE_JSON) {
            break;
        }

        rc = vodlms_session_from_json_ex(reply->str, reply->len,
                           (char *) scf->eff_user_field.data,
                           scf->role_field.len
                               ? (char *) scf->role_field.data : NULL,
                           scf->expires_field.len
                               ? (char *) scf->expires_field.data : NULL,
                           scf->field_paths,
                           scf->fields ? scf->fields->nelts : 0,
                           &s, fields);
        goto parsed;

    case REDIS_REPLY_ARRAY:
        if (scf->value != NGX_HTTP_VODLMS_VALUE_HASH) {
            break;
        }

        /* HMGET answers user[, role][, expires][, fields]; nil where absent */
        ngx_memzero(f, sizeof(f));
        for (j = 0; j < reply->elements && j < 3 + VODLMS_SESSION_FIELDS_MAX;
             j++)
        {
            f[j] = reply->element[j];
        }

        if (f[0] == NULL || f[0]->type == REDIS_REPLY_NIL) {
            /* HMGET on a missing key answers all nils */
            sctx->result = NGX_HTTP_VODLMS_UNKNOWN_SESSION;
            for (j = 1; j < reply->elements && j < 3; j++) {
                if (f[j] && f[j]->type != REDIS_REPLY_NIL) {
                    sctx->result = NGX_HTTP_VODLMS_BAD_SESSION_DATA;
                    ngx_http_vodlms_session_set_detail(r, sctx,
                                "user field \"%s\" missing from the hash",
                                (char *) scf->eff_user_field.data);
                }
            }
            return;
        }

        /* the role, then the expiry, each only when configured */
        j = 1;
        role = scf->role_field.len ? f[j++] : NULL;
        exp = scf->expires_field.len ? f[j++] : NULL;

        for (k = 0; scf->fields && k < scf->fields->nelts; k++, j++) {
            e = f[j];
            fields[k].len = 0;
            fields[k].found = 0;

            if (e && e->type == REDIS_REPLY_STRING) {
                vodlms_session_field_set(&fields[k], e->str, e->len);
            }
        }

        rc = vodlms_session_from_fields(
                 f[0]->type == REDIS_REPLY_STRING ? f[0]->str : NULL,
                 f[0]->type == REDIS_REPLY_STRING ? f[0]->len : 0,
                 (role && role->type == REDIS_REPLY_STRING) ? role->str : NULL,
                 (role && role->type == REDIS_REPLY_STRING) ? role->len : 0,
                 (exp && exp->type == REDIS_REPLY_STRING) ? exp->str : NULL,
                 (exp && exp->type == REDIS_REPLY_STRING) ? exp->len : 0,
                 &s);

        goto parsed;

    default:
        break;
    }

    ngx_http_vodlms_session_set_detail(r, sctx,
                            "redis value is not a %s",
                            scf->value == NGX_HTTP_VODLMS_VALUE_HASH
                                ? "hash" : "JSON string");
    return;

parsed:

    if (rc == VODLMS_ENOTFOUND
        && scf->type == NGX_HTTP_VODLMS_SESSION_EXPRESS)
    {
        /*
         * No user at the path: express-session's saveUninitialized, or
         * passport's {"passport":{}} after a logout.  Routine: no session.
         * An opaque token is only ever issued at login: without a user it
         * stays the LMS's broken data (t/020 TEST 23).
         */
        sctx->result = NGX_HTTP_VODLMS_UNKNOWN_SESSION;
        sctx->no_user = 1;
        ngx_http_vodlms_session_set_detail(r, sctx,
                            "no user at \"%s\" (anonymous or logged out)",
                            (char *) scf->eff_user_field.data);
        return;
    }

    if (rc != VODLMS_OK) {
        ngx_http_vodlms_session_set_detail(r, sctx, "user id: %s",
                                           vodlms_rc_str(rc));
        return;
    }

    if (ngx_http_vodlms_session_set_user(r, sctx, &s) != NGX_OK
        || ngx_http_vodlms_session_fields_keep(r, scf, sctx, fields) != NGX_OK)
    {
        sctx->result = NGX_HTTP_VODLMS_INTERNAL;
        return;
    }

    sctx->found = 1;
    sctx->result = NGX_HTTP_VODLMS_OK;
}


static void
ngx_http_vodlms_session_done(void *data, ngx_vodlms_redis_status_e status,
    const char *reason)
{
    ngx_http_request_t  *r = data;

    ngx_http_vodlms_ctx_t           *ctx;
    ngx_http_vodlms_loc_conf_t      *vlcf;
    ngx_http_vodlms_session_ctx_t   *sctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_vodlms_module);
    sctx = &ctx->session;

    if (status != NGX_VODLMS_REDIS_OK) {
        sctx->result = (status == NGX_VODLMS_REDIS_TIMEOUT)
                       ? NGX_HTTP_VODLMS_BACKEND_TIMEOUT
                       : NGX_HTTP_VODLMS_BACKEND_DOWN;
        ngx_http_vodlms_session_set_detail(r, sctx, "%s", reason);

    } else {
        if (sctx->found && sctx->pttl == -2) {
            /* the key expired between GET and PTTL */
            sctx->result = NGX_HTTP_VODLMS_UNKNOWN_SESSION;
        }

        vlcf = ngx_http_get_module_loc_conf(r, ngx_http_vodlms_module);

        if (vlcf->session.cache) {
            ngx_http_vodlms_session_cache_store(r, &vlcf->session, sctx);
        }
    }

    sctx->state = NGX_HTTP_VODLMS_SESSION_DONE;

    ngx_http_vodlms_wake(r);
}


static ngx_int_t
ngx_http_vodlms_session_set_user(ngx_http_request_t *r,
    ngx_http_vodlms_session_ctx_t *sctx, vodlms_session_t *s)
{
    sctx->user_id.len = s->user_id_len;
    sctx->user_id.data = ngx_pnalloc(r->pool, s->user_id_len);
    if (sctx->user_id.data == NULL) {
        return NGX_ERROR;
    }
    ngx_memcpy(sctx->user_id.data, s->user_id, s->user_id_len);

    sctx->roles.len = s->roles_len;
    if (s->roles_len) {
        sctx->roles.data = ngx_pnalloc(r->pool, s->roles_len);
        if (sctx->roles.data == NULL) {
            return NGX_ERROR;
        }
        ngx_memcpy(sctx->roles.data, s->roles, s->roles_len);
    }

    sctx->expires = s->expires;

    return NGX_OK;
}


/* the verdict, once the facts are in; also runs on every cache hit */

static ngx_int_t
ngx_http_vodlms_session_decide(ngx_http_request_t *r,
    ngx_http_vodlms_session_conf_t *scf, ngx_http_vodlms_session_ctx_t *sctx)
{
    u_char     *p, *last, *start;
    ngx_str_t  *role;
    ngx_uint_t  i;

    if (sctx->result == NGX_HTTP_VODLMS_OK
        && sctx->expires != 0
        && sctx->expires <= (int64_t) ngx_time())
    {
        sctx->result = NGX_HTTP_VODLMS_SESSION_EXPIRED;
    }

    if (sctx->result == NGX_HTTP_VODLMS_OK && scf->require_roles) {

        role = scf->require_roles->elts;
        last = sctx->roles.data + sctx->roles.len;

        for (p = sctx->roles.data; p < last; p = start + 1) {
            start = ngx_strlchr(p, last, ',');
            if (start == NULL) {
                start = last;
            }

            for (i = 0; i < scf->require_roles->nelts; i++) {
                if ((size_t) (start - p) == role[i].len
                    && ngx_strncmp(p, role[i].data, role[i].len) == 0)
                {
                    return NGX_OK;
                }
            }
        }

        sctx->result = NGX_HTTP_VODLMS_ROLE_FORBIDDEN;
        ngx_http_vodlms_session_set_detail(r, sctx, "user has roles \"%s\"",
                                           NULL);
        if (sctx->detail.data) {
            sctx->detail.len = ngx_snprintf(sctx->detail.data, 160,
                                            "user %V has roles \"%V\"",
                                            &sctx->user_id, &sctx->roles)
                               - sctx->detail.data;
        }
    }

    if (sctx->result == NGX_HTTP_VODLMS_OK) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "vodlms session: user \"%V\"", &sctx->user_id);
        return NGX_OK;
    }

    return ngx_http_vodlms_deny(r, sctx->result, &sctx->detail);
}


/*
 * Cached answers: "P<expires> <user>\n<roles>" or "N".  A positive answer
 * lives at most as long as the session key (PTTL) and its expiry field;
 * backend failures are never cached.  With vodlms_session_invalidate, the
 * answer starts with "R<generation>:", the revocation generation seen
 * before Redis was asked: a flush (the invalidation link was down) makes
 * every older answer stale at once.
 */

#define NGX_HTTP_VODLMS_CACHE_VALUE_LEN                                       \
    (sizeof("R:") + NGX_ATOMIC_T_LEN + NGX_INT64_LEN + VODLMS_USER_ID_MAX     \
     + VODLMS_ROLES_MAX + 4 + NGX_HTTP_VODLMS_SESSION_FIELDS_CACHE_LEN)

static void
ngx_http_vodlms_session_cache_store(ngx_http_request_t *r,
    ngx_http_vodlms_session_conf_t *scf, ngx_http_vodlms_session_ctx_t *sctx)
{
    u_char      *p, *v;
    int64_t      left;
    ngx_msec_t   ttl, elapsed;

    u_char  buf[NGX_HTTP_VODLMS_CACHE_VALUE_LEN];

    v = buf;

    if (scf->revoke) {
        v = ngx_sprintf(buf, "R%uA:", sctx->revoke_seen.generation);
    }

    if (sctx->result == NGX_HTTP_VODLMS_UNKNOWN_SESSION) {

        if (sctx->no_user) {
            /* a login may fill this very session in: ask Redis next time */
            return;
        }

        *v++ = NGX_HTTP_VODLMS_CACHE_NEGATIVE;
        (void) ngx_vodlms_shm_cache_put_negative(scf->cache,
                                                 r->connection->log,
                                                 &scf->cache_ns, &sctx->key,
                                                 buf, v - buf,
                                                 scf->cache_invalid);
        goto stored;
    }

    if (sctx->result != NGX_HTTP_VODLMS_OK) {
        return;
    }

    ttl = scf->cache_valid;

    if (sctx->pttl >= 0) {
        /* PTTL counted from when we asked: never outlive the key */
        elapsed = ngx_current_msec - sctx->sent_at;

        if ((ngx_msec_t) sctx->pttl <= elapsed) {
            return;
        }

        ttl = ngx_min(ttl, (ngx_msec_t) sctx->pttl - elapsed);
    }

    if (sctx->expires) {
        left = sctx->expires - (int64_t) ngx_time();
        if (left <= 0) {
            return;
        }
        ttl = ngx_min(ttl, (ngx_msec_t) left * 1000);
    }

    p = ngx_sprintf(v, "%c%L %V\n%V", NGX_HTTP_VODLMS_CACHE_POSITIVE,
                    sctx->expires, &sctx->user_id, &sctx->roles);
    p = ngx_http_vodlms_session_fields_encode(p, sctx);

    (void) ngx_vodlms_shm_cache_put(scf->cache, r->connection->log,
                                    &scf->cache_ns, &sctx->key, buf, p - buf,
                                    ttl);

stored:

    /*
     * The key changed while Redis was asked: its invalidation may have
     * come and gone before this answer was stored.  (Had it come after,
     * it dropped the answer itself.)
     */
    if (scf->revoke
        && ngx_http_vodlms_revoke_moved(scf->revoke, &sctx->revoke_seen))
    {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "vodlms session: the key changed while redis was "
                       "asked, the answer is not kept");

        (void) ngx_vodlms_shm_cache_drop(scf->cache, r->connection->log,
                                         &scf->cache_ns, &sctx->key);
    }
}


static ngx_int_t
ngx_http_vodlms_session_cache_fetch(ngx_http_request_t *r,
    ngx_http_vodlms_session_conf_t *scf, ngx_http_vodlms_session_ctx_t *sctx)
{
    u_char            *p, *last, *sp, *nl, *v, *end;
    size_t             len;
    ngx_int_t          generation;
    vodlms_session_t   s;

    u_char  buf[NGX_HTTP_VODLMS_CACHE_VALUE_LEN];

    if (ngx_vodlms_shm_cache_get(scf->cache, r->connection->log,
                                 &scf->cache_ns, &sctx->key, buf, sizeof(buf),
                                 &len)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    v = buf;
    last = buf + len;

    if (scf->revoke) {
        p = ngx_strlchr(buf, last, ':');

        if (len < 3 || buf[0] != 'R' || p == NULL) {
            return NGX_DECLINED;
        }

        generation = ngx_atoi(buf + 1, p - buf - 1);

        if (generation == NGX_ERROR
            || (ngx_atomic_uint_t) generation
               != ngx_http_vodlms_revoke_generation(scf->revoke))
        {
            ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "vodlms session: the cached answer is from "
                           "before the last invalidation flush, stale");
            return NGX_DECLINED;
        }

        v = p + 1;
        len = last - v;
    }

    if (len == 1 && v[0] == NGX_HTTP_VODLMS_CACHE_NEGATIVE) {
        sctx->result = NGX_HTTP_VODLMS_UNKNOWN_SESSION;
        return NGX_OK;
    }

    if (len < 4 || v[0] != NGX_HTTP_VODLMS_CACHE_POSITIVE) {
        return NGX_DECLINED;
    }

    sp = ngx_strlchr(v + 1, last, ' ');
    nl = sp ? ngx_strlchr(sp + 1, last, '\n') : NULL;

    /* the roles end at the fields' line, if any */
    end = nl ? ngx_strlchr(nl + 1, last, '\n') : NULL;
    if (end == NULL) {
        end = last;
    }

    if (nl == NULL
        || (size_t) (nl - sp - 1) > VODLMS_USER_ID_MAX
        || (size_t) (end - nl - 1) > VODLMS_ROLES_MAX)
    {
        return NGX_DECLINED;
    }

    p = v + 1;
    s.expires = ngx_atotm(p, sp - p);
    if (s.expires == NGX_ERROR) {
        return NGX_DECLINED;
    }

    s.user_id_len = nl - sp - 1;
    ngx_memcpy(s.user_id, sp + 1, s.user_id_len);
    s.roles_len = end - nl - 1;
    ngx_memcpy(s.roles, nl + 1, s.roles_len);

    if (ngx_http_vodlms_session_set_user(r, sctx, &s) != NGX_OK
        || ngx_http_vodlms_session_fields_decode(r, scf, sctx, end, last)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    sctx->result = NGX_HTTP_VODLMS_OK;

    return NGX_OK;
}


static void
ngx_http_vodlms_session_set_detail(ngx_http_request_t *r,
    ngx_http_vodlms_session_ctx_t *sctx, const char *fmt, const char *arg)
{
    u_char  *p;

    p = ngx_pnalloc(r->pool, 160);
    if (p == NULL) {
        return;
    }

    sctx->detail.data = p;

    if (ngx_strcmp(fmt, "%s") == 0) {
        sctx->detail.len = ngx_snprintf(p, 160, "%s", arg ? arg : "")
                           - p;
        return;
    }

    sctx->detail.len = ngx_snprintf(p, 160, fmt, arg ? arg : "") - p;
}


/* configuration */

void
ngx_http_vodlms_session_create_conf(ngx_http_vodlms_session_conf_t *scf)
{
    /* ngx_pcalloc'ed: strings are empty, pointers NULL */

    scf->enable = NGX_CONF_UNSET;
    scf->type = NGX_CONF_UNSET_UINT;
    scf->bearer = NGX_CONF_UNSET;
    scf->value = NGX_CONF_UNSET_UINT;
    scf->secrets = NGX_CONF_UNSET_PTR;
    scf->cache = NGX_CONF_UNSET_PTR;
    scf->cache_valid = NGX_CONF_UNSET_MSEC;
    scf->cache_invalid = NGX_CONF_UNSET_MSEC;
    scf->invalidate = NGX_CONF_UNSET;
    scf->require_roles = NGX_CONF_UNSET_PTR;
}


static ngx_int_t
ngx_http_vodlms_session_cstr(ngx_conf_t *cf, ngx_str_t *s)
{
    u_char  *p;

    /* the pure core takes NUL-terminated JSON paths */

    p = ngx_pnalloc(cf->pool, s->len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, s->data, s->len);
    p[s->len] = '\0';
    s->data = p;

    return NGX_OK;
}


char *
ngx_http_vodlms_session_merge_conf(ngx_conf_t *cf,
    ngx_http_vodlms_session_conf_t *prev, ngx_http_vodlms_session_conf_t *conf)
{
    u_char                       *p;
    ngx_http_vodlms_main_conf_t  *vmcf;
    ngx_http_vodlms_session_defaults_t  *d;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_uint_value(conf->type, prev->type,
                              NGX_HTTP_VODLMS_SESSION_TOKEN);
    ngx_conf_merge_value(conf->bearer, prev->bearer, 1);
    ngx_conf_merge_uint_value(conf->value, prev->value,
                              NGX_HTTP_VODLMS_VALUE_JSON);
    ngx_conf_merge_ptr_value(conf->secrets, prev->secrets, NULL);
    ngx_conf_merge_ptr_value(conf->cache, prev->cache, NULL);
    ngx_conf_merge_msec_value(conf->cache_valid, prev->cache_valid, 30000);
    ngx_conf_merge_msec_value(conf->cache_invalid, prev->cache_invalid, 5000);
    ngx_conf_merge_value(conf->invalidate, prev->invalidate, 0);
    ngx_conf_merge_ptr_value(conf->require_roles, prev->require_roles, NULL);

    /*
     * The cookie name, key prefix and user path default by session type.
     * Only explicit values are inherited: a parent merged as "token" must
     * not hand its token defaults to an "express" child.
     */
    if (conf->cookie.data == NULL) {
        conf->cookie = prev->cookie;
    }

    if (conf->key_prefix.data == NULL) {
        conf->key_prefix = prev->key_prefix;   /* "" is a valid prefix */
    }

    if (conf->user_field.data == NULL) {
        conf->user_field = prev->user_field;
    }

    d = &ngx_http_vodlms_session_defaults[
            conf->type == NGX_HTTP_VODLMS_SESSION_EXPRESS ? 1 : 0];

    conf->eff_cookie = conf->cookie.data ? conf->cookie : d->cookie;
    conf->eff_key_prefix = conf->key_prefix.data ? conf->key_prefix
                                                 : d->key_prefix;
    conf->eff_user_field = conf->user_field.data ? conf->user_field
                                                 : d->user_field;

    ngx_conf_merge_str_value(conf->role_field, prev->role_field, "");
    ngx_conf_merge_str_value(conf->expires_field, prev->expires_field, "");

    if (ngx_http_vodlms_session_fields_merge(cf, prev, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (conf->eff_cookie.len == 0 || conf->eff_user_field.len == 0) {
        ngx_http_vodlms_merge_error(cf,
                                    "\"vodlms_session_cookie\" and "
                                    "\"vodlms_session_user_field\" must not be "
                                    "empty");
        return NGX_CONF_ERROR;
    }

    if (ngx_http_vodlms_session_cstr(cf, &conf->eff_user_field) != NGX_OK
        || ngx_http_vodlms_session_cstr(cf, &conf->role_field) != NGX_OK
        || ngx_http_vodlms_session_cstr(cf, &conf->expires_field) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    vmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_vodlms_module);

    if (conf->invalidate && vmcf->redis == NULL) {
        ngx_http_vodlms_merge_error(cf,
                                    "\"vodlms_session_invalidate\" listens to "
                                    "the Redis the sessions are in: add "
                                    "\"vodlms_redis\" to the http block");
        return NGX_CONF_ERROR;
    }

    if (!conf->enable) {
        return NGX_CONF_OK;
    }

    if (vmcf->redis == NULL) {
        ngx_http_vodlms_merge_error(cf,
                                    "\"vodlms_auth\" needs a session store: "
                                    "add \"vodlms_redis\" to the http block");
        return NGX_CONF_ERROR;
    }

    if (conf->type == NGX_HTTP_VODLMS_SESSION_EXPRESS) {

        if (conf->secrets == NULL) {
            ngx_http_vodlms_merge_error(cf,
                                        "\"vodlms_session_type express\" needs "
                                        "at least one "
                                        "\"vodlms_session_secret\"");
            return NGX_CONF_ERROR;
        }

        if (conf->value == NGX_HTTP_VODLMS_VALUE_HASH) {
            ngx_http_vodlms_merge_error(cf,
                                        "\"vodlms_session_value hash\" does "
                                        "not apply to express sessions, which "
                                        "are JSON");
            return NGX_CONF_ERROR;
        }

        if (conf->expires_field.len) {
            /* connect-redis refreshes the key's TTL, not cookie.expires */
            ngx_http_vodlms_merge_error(cf,
                                        "\"vodlms_session_expires_field\" does "
                                        "not apply to express sessions: the "
                                        "Redis key's TTL is their expiry");
            return NGX_CONF_ERROR;
        }
    }

    if (conf->value == NGX_HTTP_VODLMS_VALUE_HASH
        && (ngx_strlchr(conf->eff_user_field.data,
                        conf->eff_user_field.data
                        + conf->eff_user_field.len, '.')
            || ngx_strlchr(conf->role_field.data,
                           conf->role_field.data + conf->role_field.len, '.')))
    {
        ngx_http_vodlms_merge_error(cf,
                                    "hash sessions have flat fields: a dotted "
                                    "path in \"vodlms_session_user_field\" or "
                                    "\"vodlms_session_role_field\" cannot "
                                    "match");
        return NGX_CONF_ERROR;
    }

    if (conf->cache && !ngx_vodlms_shm_cache_defined(conf->cache)) {
        ngx_http_vodlms_merge_error(cf,
                                    "unknown vodlms_cache_zone \"%V\" in "
                                    "\"vodlms_session_cache\"",
                                    &conf->cache->shm.name);
        return NGX_CONF_ERROR;
    }

    /*
     * Answers from differently configured gates must not mix; with
     * invalidation they carry a generation, and are kept apart too.
     */

    conf->cache_ns.len = sizeof("session") + NGX_INT_T_LEN * 2
                         + conf->eff_key_prefix.len + conf->eff_user_field.len
                         + conf->role_field.len + conf->expires_field.len + 6
                         + sizeof("|invalidate")
                         + ngx_http_vodlms_session_fields_ns_len(conf);

    conf->cache_ns.data = ngx_pnalloc(cf->pool, conf->cache_ns.len);
    if (conf->cache_ns.data == NULL) {
        return NGX_CONF_ERROR;
    }

    p = ngx_sprintf(conf->cache_ns.data, "session|%ui|%ui|%V|%V|%V|%V%s",
                    conf->type, conf->value, &conf->eff_key_prefix,
                    &conf->eff_user_field, &conf->role_field,
                    &conf->expires_field,
                    (conf->invalidate && conf->cache) ? "|invalidate" : "");
    p = ngx_http_vodlms_session_fields_ns(p, conf);
    conf->cache_ns.len = p - conf->cache_ns.data;

    conf->revoke = NULL;

    if (conf->invalidate && conf->cache) {
        conf->revoke = ngx_http_vodlms_revoke_register(cf, conf->cache,
                                                       &conf->cache_ns,
                                                       &conf->eff_key_prefix);
        if (conf->revoke == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


char *
ngx_http_vodlms_session_secret(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vodlms_loc_conf_t  *vlcf = conf;

    ngx_str_t       *value;
    ngx_uint_t       i;
    vodlms_cstr_t   *s;

    if (vlcf->session.secrets != NGX_CONF_UNSET_PTR) {
        return "is duplicate: list every secret in one directive, "
               "the signing one first";
    }

    vlcf->session.secrets = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                             sizeof(vodlms_cstr_t));
    if (vlcf->session.secrets == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (value[i].len == 0) {
            return "has an empty secret";
        }

        s = ngx_array_push(vlcf->session.secrets);
        if (s == NULL) {
            return NGX_CONF_ERROR;
        }

        s->data = (char *) value[i].data;
        s->len = value[i].len;
    }

    return NGX_CONF_OK;
}


/* vodlms_session_cache zone [valid=time] [invalid=time] | off; */

char *
ngx_http_vodlms_session_cache(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vodlms_loc_conf_t  *vlcf = conf;

    return ngx_http_vodlms_parse_cache(cf, &vlcf->session.cache,
                                       &vlcf->session.cache_valid,
                                       &vlcf->session.cache_invalid);
}


char *
ngx_http_vodlms_require_role(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_vodlms_loc_conf_t  *vlcf = conf;

    ngx_str_t   *value, *role;
    ngx_uint_t   i;

    if (vlcf->session.require_roles != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    vlcf->session.require_roles = ngx_array_create(cf->pool,
                                                   cf->args->nelts - 1,
                                                   sizeof(ngx_str_t));
    if (vlcf->session.require_roles == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (value[i].len == 0 || ngx_strlchr(value[i].data,
                                             value[i].data + value[i].len,
                                             ',')
            != NULL)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid role \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        role = ngx_array_push(vlcf->session.require_roles);
        if (role == NULL) {
            return NGX_CONF_ERROR;
        }

        *role = value[i];
    }

    return NGX_CONF_OK;
}
