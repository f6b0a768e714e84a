/*
 * The enrollment check: may this user watch this video?  An operator's
 * parameterised SQL query, run on PostgreSQL without blocking, its answer
 * cached in shared memory and its columns exposed as $vodlms_video_<name>.
 */

#ifndef NGX_HTTP_VODLMS_ENROLL_H
#define NGX_HTTP_VODLMS_ENROLL_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_vodlms_pg.h"
#include "ngx_http_vodlms_error.h"


#define NGX_HTTP_VODLMS_VIDEO_ID_MAX  64


typedef struct {
    ngx_flag_t                  enable;
    ngx_http_complex_value_t   *video_id;        /* vodlms_video_id */
    ngx_vodlms_pg_stmt_t       *stmt;            /* NULL: unset */
    ngx_array_t                *params;          /* of ngx_http_complex_value_t */
    ngx_shm_zone_t             *cache;
    ngx_msec_t                  cache_valid;
    ngx_msec_t                  cache_invalid;
    ngx_uint_t                  no_row;          /* 404 or 403 */
    ngx_uint_t                  video_id_type;   /* 0 text, 32 int, 64 bigint */
    ngx_str_t                   cache_ns;
    ngx_str_t                   video_ns;        /* no_row 404: per video */
} ngx_http_vodlms_enroll_conf_t;


typedef struct {
    ngx_str_t                   name;
    ngx_str_t                   value;
    unsigned                    null:1;
} ngx_http_vodlms_column_t;


typedef enum {
    NGX_HTTP_VODLMS_ENROLL_NEW = 0,
    NGX_HTTP_VODLMS_ENROLL_PENDING,
    NGX_HTTP_VODLMS_ENROLL_DONE
} ngx_http_vodlms_enroll_state_e;


typedef struct {
    ngx_http_vodlms_enroll_state_e   state;
    ngx_http_vodlms_err_e            result;
    ngx_str_t                        detail;
    ngx_str_t                        video_id;
    ngx_array_t                     *columns;     /* NULL: no row */
    const char                      *cache_status;
    u_char                           sqlstate[6]; /* no row: the cast's */
} ngx_http_vodlms_enroll_ctx_t;


ngx_int_t ngx_http_vodlms_enroll_handler(ngx_http_request_t *r);

void ngx_http_vodlms_enroll_create_conf(ngx_http_vodlms_enroll_conf_t *c);
char *ngx_http_vodlms_enroll_merge_conf(ngx_conf_t *cf,
    ngx_http_vodlms_enroll_conf_t *prev, ngx_http_vodlms_enroll_conf_t *conf);

char *ngx_http_vodlms_enroll_query(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_vodlms_enroll_cache(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* one of the query's values is the video id (vodlms_hls_key needs it) */
ngx_uint_t ngx_http_vodlms_enroll_takes_video_id(
    ngx_http_vodlms_enroll_conf_t *conf);

/* the prepared statement of this SQL text (one per distinct text, shared
   by the pools); also for vodlms_hls_key's query */
ngx_vodlms_pg_stmt_t *ngx_http_vodlms_enroll_stmt(ngx_conf_t *cf,
    ngx_str_t *sql, ngx_uint_t n);

/*
 * The columns the enrollment query may return, by name (docs/lms-schema.md
 * has the table: type, use, what a missing one means).  Look them up with
 * ngx_http_vodlms_enroll_col(r, NGX_HTTP_VODLMS_COL_...): the length comes
 * from the constant, and a misspelt name does not compile.
 */
#define NGX_HTTP_VODLMS_COL_ID                 "id"
#define NGX_HTTP_VODLMS_COL_ALLOWED            "allowed"
#define NGX_HTTP_VODLMS_COL_STATUS             "status"
#define NGX_HTTP_VODLMS_COL_TITLE              "title"
#define NGX_HTTP_VODLMS_COL_DURATION           "duration_seconds"
#define NGX_HTTP_VODLMS_COL_STORAGE_PREFIX     "storage_prefix"
#define NGX_HTTP_VODLMS_COL_PROGRESS_PERCENT   "progress_percent"
#define NGX_HTTP_VODLMS_COL_ENROLLMENT_STATUS  "enrollment_status"
#define NGX_HTTP_VODLMS_COL_RESUME_POSITION    "resume_position"
#define NGX_HTTP_VODLMS_COL_RESUME_MAX         "resume_max_position"
#define NGX_HTTP_VODLMS_COL_RESUME_PLAYED      "resume_played_seconds"
#define NGX_HTTP_VODLMS_COL_RESUME_COMPLETED   "resume_completed"
#define NGX_HTTP_VODLMS_COL_RESUME_COVERAGE    "resume_coverage"

#define ngx_http_vodlms_enroll_col(r, name)                                   \
    ngx_http_vodlms_enroll_column(r, (u_char *) name, sizeof(name) - 1)

extern ngx_conf_post_t  ngx_http_vodlms_pg_schema_post;

ngx_http_vodlms_column_t *ngx_http_vodlms_enroll_column(ngx_http_request_t *r,
    u_char *name, size_t len);
ngx_int_t ngx_http_vodlms_video_id_valid(ngx_str_t *id);

extern ngx_conf_enum_t  ngx_http_vodlms_no_row_codes[];
extern ngx_conf_enum_t  ngx_http_vodlms_video_id_types[];


#endif /* NGX_HTTP_VODLMS_ENROLL_H */
