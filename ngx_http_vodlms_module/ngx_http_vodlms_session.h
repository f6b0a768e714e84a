/*
 * The session gate: who is this user, answered from Redis (or the shared
 * cache) in the access phase, without blocking the worker.
 */

#ifndef NGX_HTTP_VODLMS_SESSION_H
#define NGX_HTTP_VODLMS_SESSION_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "vodlms_core.h"
#include "ngx_http_vodlms_error.h"
#include "ngx_http_vodlms_revoke.h"


#define NGX_HTTP_VODLMS_SESSION_TOKEN    1
#define NGX_HTTP_VODLMS_SESSION_EXPRESS  2

#define NGX_HTTP_VODLMS_VALUE_JSON       1
#define NGX_HTTP_VODLMS_VALUE_HASH       2


/* vodlms_session_field name [path]: $vodlms_session_<name> */
typedef struct {
    ngx_str_t                   name;
    ngx_str_t                   path;             /* NUL-terminated */
} ngx_http_vodlms_session_field_t;


typedef struct {
    ngx_flag_t                  enable;
    ngx_uint_t                  type;
    ngx_str_t                   cookie;
    ngx_flag_t                  bearer;
    ngx_str_t                   key_prefix;
    ngx_uint_t                  value;
    ngx_str_t                   user_field;       /* NUL-terminated */
    ngx_str_t                   role_field;       /* NUL-terminated or "" */
    ngx_str_t                   expires_field;    /* NUL-terminated or "" */
    ngx_array_t                *secrets;          /* of vodlms_cstr_t */
    ngx_shm_zone_t             *cache;            /* NULL: no cache */
    ngx_msec_t                  cache_valid;
    ngx_msec_t                  cache_invalid;
    ngx_flag_t                  invalidate;
    ngx_array_t                *require_roles;    /* of ngx_str_t */
    ngx_str_t                   cache_ns;         /* computed at merge */
    ngx_http_vodlms_revoke_t   *revoke;           /* NULL: answers live their
                                                     valid= time */

    /* what the type's defaults make of the three above, at merge time */
    ngx_str_t                   eff_cookie;
    ngx_str_t                   eff_key_prefix;
    ngx_str_t                   eff_user_field;   /* NUL-terminated */

    ngx_array_t                *fields;           /* of ..._session_field_t,
                                                     NULL: none */
    const char                **field_paths;      /* theirs, at merge */
} ngx_http_vodlms_session_conf_t;


typedef enum {
    NGX_HTTP_VODLMS_SESSION_NEW = 0,
    NGX_HTTP_VODLMS_SESSION_PENDING,
    NGX_HTTP_VODLMS_SESSION_DONE
} ngx_http_vodlms_session_state_e;


typedef struct {
    ngx_http_vodlms_session_state_e  state;
    ngx_http_vodlms_err_e            result;
    ngx_str_t                        detail;       /* for the log line */
    ngx_str_t                        key;          /* sid or token */
    ngx_str_t                        user_id;
    ngx_str_t                        roles;
    int64_t                          expires;      /* 0: none */
    int64_t                          pttl;         /* ms; -1 none, -2 gone */
    ngx_msec_t                       sent_at;      /* when Redis was asked */
    ngx_http_vodlms_revoke_seen_t    revoke_seen;  /* ... and what it saw */
    const char                      *cache_status; /* HIT, MISS, or NULL */
    ngx_array_t                     *fields;       /* the gate's
                                                      vodlms_session_field */
    ngx_str_t                       *field_values; /* one per field */
    unsigned                         found:1;
    unsigned                         no_user:1;    /* anonymous, logged out */
} ngx_http_vodlms_session_ctx_t;


ngx_int_t ngx_http_vodlms_session_handler(ngx_http_request_t *r);

void ngx_http_vodlms_session_create_conf(ngx_http_vodlms_session_conf_t *c);
char *ngx_http_vodlms_session_merge_conf(ngx_conf_t *cf,
    ngx_http_vodlms_session_conf_t *prev,
    ngx_http_vodlms_session_conf_t *conf);

char *ngx_http_vodlms_session_secret(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_vodlms_session_cache(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_vodlms_require_role(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* ngx_http_vodlms_session_fields.c */
char *ngx_http_vodlms_session_field(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_vodlms_session_fields_merge(ngx_conf_t *cf,
    ngx_http_vodlms_session_conf_t *prev,
    ngx_http_vodlms_session_conf_t *conf);
size_t ngx_http_vodlms_session_fields_ns_len(
    ngx_http_vodlms_session_conf_t *conf);
u_char *ngx_http_vodlms_session_fields_ns(u_char *p,
    ngx_http_vodlms_session_conf_t *conf);
ngx_int_t ngx_http_vodlms_session_fields_keep(ngx_http_request_t *r,
    ngx_http_vodlms_session_conf_t *scf, ngx_http_vodlms_session_ctx_t *sctx,
    vodlms_session_field_t *fields);
u_char *ngx_http_vodlms_session_fields_encode(u_char *p,
    ngx_http_vodlms_session_ctx_t *sctx);
ngx_int_t ngx_http_vodlms_session_fields_decode(ngx_http_request_t *r,
    ngx_http_vodlms_session_conf_t *scf, ngx_http_vodlms_session_ctx_t *sctx,
    u_char *p, u_char *last);
ngx_int_t ngx_http_vodlms_session_field_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

/* what the fields add to a cached answer, at most */
#define NGX_HTTP_VODLMS_SESSION_FIELDS_CACHE_LEN                              \
    (1 + VODLMS_SESSION_FIELDS_MAX                                            \
         * (NGX_SIZE_T_LEN + 1 + VODLMS_SESSION_FIELD_MAX))

extern ngx_conf_enum_t  ngx_http_vodlms_session_types[];
extern ngx_conf_enum_t  ngx_http_vodlms_session_values[];


#endif /* NGX_HTTP_VODLMS_SESSION_H */
