/*
 * vodlms-helper: Redis Stream transcode jobs -> ffmpeg HLS ladder -> origin.
 * Shared declarations of the helper's files (one concern per file).
 */

#ifndef VODLMS_HELPER_H
#define VODLMS_HELPER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "ngx_http_vodlms_version.h"   /* the project's one version */

#define VH_VERSION       NGX_HTTP_VODLMS_VERSION
#define VH_MAX_RUNGS     8
#define VH_ID_MAX        64
#define VH_JOB_TIMEOUT_AUTO    -1.0    /* job_timeout = auto: */
#define VH_JOB_TIMEOUT_FACTOR  6       /*   the source's duration x 6, */
#define VH_JOB_TIMEOUT_FLOOR   900     /*   at least 15 min */
#define VH_STR_(x)             #x
#define VH_STR(x)              VH_STR_(x)

/* ---------------------------------------------------------------- log.c */

enum { VH_LOG_ERROR = 0, VH_LOG_WARN, VH_LOG_INFO, VH_LOG_DEBUG };

int  vh_log_level_parse(const char *s);
void vh_log_open(int level, int use_syslog);
void vh_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define vh_error(...) vh_log(VH_LOG_ERROR, __VA_ARGS__)
#define vh_warn(...)  vh_log(VH_LOG_WARN, __VA_ARGS__)
#define vh_info(...)  vh_log(VH_LOG_INFO, __VA_ARGS__)
#define vh_debug(...) vh_log(VH_LOG_DEBUG, __VA_ARGS__)

/* ---------------------------------------------------------------- conf.c */

typedef struct {
    char  name[16];        /* "720p" */
    int   height;
    long  video_bitrate;   /* bits/s */
} vh_rung_t;

/* a Redis Sentinel's address */
#define VH_MAX_SENTINELS       16
#define VH_SENTINEL_PORT       26379

typedef struct {
    char  host[256];
    int   port;
} vh_addr_t;

typedef struct {
    /* redis */
    char  *redis_host;
    int    redis_port;
    int    redis_addr_set;     /* redis_host or redis_port given (not the defaults) */
    char  *redis_sentinels;    /* "host[:port] ...": Sentinel instead of redis_host */
    char  *redis_master_name;
    char  *redis_sentinel_username;
    char  *redis_sentinel_password;
    vh_addr_t sentinel[VH_MAX_SENTINELS];   /* redis_sentinels, parsed */
    int    nsentinels;
    char  *redis_username;
    char  *redis_password;
    int    redis_db;
    double redis_timeout;      /* seconds, connect + commands (BLOCK is added) */
    char  *stream;
    char  *group;
    char  *group_start_id;
    char  *consumer;
    int    block_ms;
    double claim_idle;         /* seconds */
    int    max_attempts;
    double retry_backoff;      /* seconds, doubled per attempt */
    double retry_backoff_max;
    /* postgres */
    char  *pg_conninfo;
    char  *db_schema;          /* vodlms's tables: "<db_schema>".videos */
    /* media */
    char  *ffmpeg;
    char  *ffprobe;
    char  *preset;
    int    threads;
    int    segment_duration;
    int    max_height;
    double max_fps;
    long   audio_bitrate;
    vh_rung_t rungs[VH_MAX_RUNGS];
    int    nrungs;
    double poster_at;          /* fraction of the duration */
    int    audio_only;         /* an audio-only rendition (audio/) */
    long   audio_only_bitrate; /* bits/s */
    int    thumbnails;         /* the storyboard (thumbs/) */
    int    storyboard_interval; /* seconds per tile */
    int    storyboard_width;   /* pixels */
    int    storyboard_columns;
    int    storyboard_rows;
    long   caption_max_bytes;       /* bytes of one uploaded caption file */
    int    caption_max_cues;
    int    caption_max_cue_bytes;   /* normalized text of one cue */
    int    caption_max_cue_lines;
    int    caption_segment_duration; /* seconds of a subtitle segment */
    int    caption_max_tracks;      /* published languages of one video */
    long   caption_max_track_bytes; /* the segments of one track in a version */
    double job_timeout;        /* seconds, 0: none, VH_JOB_TIMEOUT_AUTO: from the duration */
    double max_source_duration; /* seconds a source may last */
    long   max_source_pixels;  /* width x height of a source frame */
    double max_source_fps;     /* frames a second a source may claim */
    double max_source_work;    /* seconds x frames/s x pixels: pixel-frames decoded */
    char  *source_root;        /* "" = any absolute path */
    double spool_grace;        /* seconds before an unnamed source is swept */
    /* output */
    char  *origin_dir;
    char  *publish;            /* local | s3 */
    int    publish_s3;
    double old_version_grace;  /* seconds a superseded version stays (local) */
    int    encrypt;            /* AES-128 HLS (keys.c) */
    int    key_rotation;       /* segments per key, 0: one key per version */
    char  *key_uri_base;       /* no trailing '/' */
    char  *s3_endpoint;        /* http(s)://host[:port]; "": AWS for s3_region */
    char  *s3_region;
    char  *s3_bucket;
    char  *s3_prefix;          /* "" or ending in '/' */
    int    s3_path_style;
    char  *s3_access_key;
    char  *s3_secret_key;
    char  *s3_session_token;
    long   s3_multipart_threshold;   /* bytes: larger objects go multipart */
    long   s3_part_size;             /* bytes */
    int    s3_retries;
    double s3_timeout;               /* seconds per request */
    char  *s3_cache_control_playlist;
    char  *s3_cache_control_media;
    /* process */
    char  *shutdown;           /* finish | abandon */
    char  *log_level;
    char  *log_target;         /* stderr | syslog */
    /* test/ops flags (command line only) */
    int    once;
    int    exit_when_idle;
    int    check_config;
} vh_conf_t;

int  vh_conf_init(vh_conf_t *cf);
int  vh_conf_parse_args(vh_conf_t *cf, int argc, char **argv);
void vh_conf_free(vh_conf_t *cf);
int  vh_sql_schema_valid(const char *name);

/* ---------------------------------------------------------------- util.c */

typedef struct {
    char   *data;
    size_t  len;
    size_t  cap;
} vh_buf_t;

int   vh_buf_append(vh_buf_t *b, const char *p, size_t n);
int   vh_buf_printf(vh_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void  vh_buf_free(vh_buf_t *b);

char *vh_strdup(const char *s);
int   vh_valid_id(const char *id);
int   vh_mkdir_p(const char *path, int mode);
int   vh_rm_rf(const char *path);
int   vh_write_file_atomic(const char *path, const char *data, size_t len);
double vh_now(void);                     /* monotonic seconds */
void  vh_sleep_interruptible(double seconds);

/*
 * Runs argv, collecting stdout (and the last bytes of stderr) with a
 * deadline.  Returns the exit status (0..255), or -1 if it could not run,
 * was signalled or timed out (err says which).
 */
pid_t vh_spawn(char *const argv[], int *out_fd, int *err_fd);
int vh_run_capture(char *const argv[], vh_buf_t *out, vh_buf_t *err,
    double timeout);

/* ---------------------------------------------------------------- main.c */

extern volatile sig_atomic_t vh_stop;    /* 1: stop after the job, 2: abandon */

/* ---------------------------------------------------------------- queue.c */

typedef struct vh_queue_s vh_queue_t;

/* the consumer that holds jobs waiting for their turn; never a helper's name */
#define VH_QUEUE_HOLD  "vodlms:waiting"

/* a job's kind: the entry's "kind" field */
enum {
    VH_KIND_VIDEO = 0,               /* no kind, or "video": a transcode */
    VH_KIND_CAPTIONS,                /* "captions": a caption file (subs.c) */
    VH_KIND_UNKNOWN                  /* anything else: malformed */
};

#define VH_LANG_MAX   35             /* 3 + 3 x (1 + 8), and a margin */
#define VH_LABEL_MAX  64             /* bytes of UTF-8 */

typedef struct {
    char    id[64];                  /* stream entry id */
    char    video_id[VH_ID_MAX + 1];
    char   *source;
    char    owner[129];              /* whose turn it was: the uploader */
    long    enqueued_at;
    long    deliveries;
    int     malformed;               /* fields missing or invalid */
    int     kind;                    /* VH_KIND_* */
    /* a caption job's fields, as given (checked by vh_caption_job_fields) */
    char   *lang;
    char   *label;
    char   *is_default;              /* "0" | "1" */
    char   *remove;                  /* the "delete" field: "1", and the source
                                        is a VH_CAPTION_REMOVE marker */
} vh_job_t;

/* a caption removal's source: a marker, never a path (nginx's DELETE) */
#define VH_CAPTION_REMOVE  "delete:"

vh_queue_t *vh_queue_new(const vh_conf_t *cf);
void vh_queue_free(vh_queue_t *q);
/* 1: got a job, 0: nothing (timeout), -1: error (already logged) */
int  vh_queue_next(vh_queue_t *q, vh_job_t *job);
int  vh_queue_ack(vh_queue_t *q, const vh_job_t *job);
/* refresh the entry's idle time so no other helper reclaims it; 0 if still ours */
int  vh_queue_heartbeat(vh_queue_t *q, const vh_job_t *job);
/* count a new delivery of a job retried in place */
int  vh_queue_redeliver(vh_queue_t *q, vh_job_t *job);
void vh_job_clear(vh_job_t *job);

/* ---------------------------------------------------------------- sentinel.c */

typedef struct vh_sentinel_s vh_sentinel_t;

vh_sentinel_t *vh_sentinel_new(const vh_conf_t *cf);
void vh_sentinel_free(vh_sentinel_t *s);
/*
 * Asks the sentinels in order for redis_master_name's address (SENTINEL
 * get-master-addr-by-name); the first that names it goes to the front.
 * 0 with host and port, or -1 (logged: no sentinel named it).
 */
int  vh_sentinel_master(vh_sentinel_t *s, char *host, size_t hlen, int *port);
/* the server it named is not the master (ROLE, READONLY): that sentinel goes last */
void vh_sentinel_distrust(vh_sentinel_t *s);
/* the server it named answered ROLE master: logs a move from the last one */
void vh_sentinel_confirm(vh_sentinel_t *s, const char *host, int port);
/* "host:port" of a sentinel, for the log */
const char *vh_sentinel_named_by(vh_sentinel_t *s);

/* ---------------------------------------------------------------- db.c */

typedef struct vh_db_s vh_db_t;

vh_db_t *vh_db_new(const char *conninfo, const char *schema);
void vh_db_free(vh_db_t *db);
/*
 * Every update of a job's row names the job's source: it applies only
 * while videos.source_location is that source.  Once a newer upload
 * re-queued the row (or an upload was undone), the job is superseded.
 */
enum {
    VH_DB_SUPERSEDED = 0,      /* the row names another source */
    VH_DB_OURS = 1,            /* the row names this job's source */
    VH_DB_NO_ROW = 2           /* no such video (deleted?) */
};
/* marks the row processing: VH_DB_* or -1 */
int  vh_db_start(vh_db_t *db, const char *video_id, const char *source);
/* does the row still name this source: VH_DB_* or -1 (changes nothing) */
int  vh_db_current(vh_db_t *db, const char *video_id, const char *source);
/* these return the rows updated (0: not ours any more, or gone) or -1 */
int  vh_db_progress(vh_db_t *db, const char *video_id, const char *source,
    double percent);
struct vh_keys_s;
/* work done inside vh_db_ready's transaction: 0, or -1 (logged: rolled back) */
typedef int (*vh_db_in_tx_pt)(vh_db_t *db, void *data);
/* vh_db_ready: in_tx failed, the transaction rolled back, nothing switched */
#define VH_DB_IN_TX_FAILED  (-2)
/*
 * The switch to ready; with keys (encrypt = on), their video_keys rows are
 * inserted in the same transaction, and rolled back when no row is switched.
 * With in_tx: the video's caption lock (vh_db_caption_lock's) is taken
 * first, and in_tx runs after the switch, before COMMIT (it sees the row
 * switched); its failure rolls everything back: VH_DB_IN_TX_FAILED
 */
int  vh_db_ready(vh_db_t *db, const char *video_id, const char *source,
    double duration, const char *renditions_json, const char *storage_prefix,
    const char *version, const struct vh_keys_s *keys, vh_db_in_tx_pt in_tx,
    void *data);
/* does the table video_keys exist (migration 0011): 1, 0 or -1 */
int  vh_db_keys_table(vh_db_t *db);
int  vh_db_failed(vh_db_t *db, const char *video_id, const char *source,
    const char *error);
int  vh_db_requeue(vh_db_t *db, const char *video_id, const char *source,
    const char *error);
/* a version published that no row ever pointed at (S3): for the prune job */
int  vh_db_orphan(vh_db_t *db, const char *video_id, const char *storage_prefix);
/*
 * Old versions: takes up to max superseded prefixes older than grace
 * seconds that no video uses, locked in one transaction, and calls cb for
 * each; cb returns 0 when the prefix is gone (or is not ours to remove:
 * logged), and the row is then marked removed; non-zero leaves it for
 * later.  Rows taken or -1 (-2: no such table).
 */
typedef int (*vh_db_superseded_pt)(void *data, const char *video_id,
    const char *storage_prefix);
int  vh_db_take_superseded(vh_db_t *db, double grace, int max,
    vh_db_superseded_pt cb, void *data);
/* inside a cb: does any video use the prefix now: 1, 0 or -1 */
int  vh_db_prefix_in_use(vh_db_t *db, const char *storage_prefix);
/*
 * does any video name this source (source_location), or a caption upload
 * still waiting for its job (video_captions.source_location, status queued
 * or processing): 1, 0 or -1
 */
int  vh_db_source_in_use(vh_db_t *db, const char *source);

/* does the table video_captions exist (migration 0012): 1, 0 or -1 */
int  vh_db_captions_table(vh_db_t *db);
/* a caption job's row (video_id, lang), tied to its source like a video's */
int  vh_db_caption_start(vh_db_t *db, const char *video_id, const char *lang,
    const char *source);
int  vh_db_caption_current(vh_db_t *db, const char *video_id, const char *lang,
    const char *source);
/* rows updated (0: superseded) or -1 */
int  vh_db_caption_failed(vh_db_t *db, const char *video_id, const char *lang,
    const char *source, const char *error);
int  vh_db_caption_requeue(vh_db_t *db, const char *video_id, const char *lang,
    const char *source, const char *error);
/* in the caption transaction: delete the row while it names the removal's
   marker; rows (0: superseded) or -1 (rolled back) */
int  vh_db_caption_remove_row(vh_db_t *db, const char *video_id, const char *lang,
    const char *source);

/* one published caption track of a video (video_captions, vtt NOT NULL) */
typedef struct {
    char   lang[VH_LANG_MAX + 1];
    char   label[VH_LABEL_MAX + 1];
    char   revision[65];
    int    is_default;
    char  *vtt;                      /* malloc'd; NULL when not asked for */
} vh_db_caption_t;

typedef struct {
    vh_db_caption_t  *c;
    int               n;
} vh_db_captions_t;

void vh_db_captions_free(vh_db_captions_t *cs);

/* what a caption publish reads of the video, in its transaction */
typedef struct {
    int     found;
    char    status[16];
    char    storage_prefix[256];     /* "" when none */
    double  duration;                /* seconds, 0: unknown */
    char   *renditions;              /* JSON text, malloc'd; NULL when none */
} vh_db_video_t;

void vh_db_video_free(vh_db_video_t *v);

/*
 * The published captions of a video, sorted by lang (with their WebVTT
 * when with_vtt), outside any transaction: 0 or -1
 */
int  vh_db_captions(vh_db_t *db, const char *video_id, int with_vtt,
    vh_db_captions_t *out);
/*
 * A transaction holding the video's caption lock
 * (pg_advisory_xact_lock): every publish of a video's captions into its
 * versions happens inside one, so two publishers never interleave their
 * master writes.  0 or -1 (rolled back).
 */
int  vh_db_caption_lock(vh_db_t *db, const char *video_id);
/* in it: the published state of the caption job's row; rows (0: superseded) or -1 */
int  vh_db_caption_publish_row(vh_db_t *db, const char *video_id,
    const char *lang, const char *source, const char *vtt, const char *revision,
    const char *label, int is_default, long cues);
/* in it: the video's status, storage_prefix, duration, renditions: 0 or -1 */
int  vh_db_caption_video(vh_db_t *db, const char *video_id, vh_db_video_t *v);
/* in it: vh_db_captions's list, as this transaction sees it: 0 or -1 */
int  vh_db_caption_list_tx(vh_db_t *db, const char *video_id, int with_vtt,
    vh_db_captions_t *out);
/* COMMIT (0 or -1) and ROLLBACK */
int  vh_db_commit(vh_db_t *db);
void vh_db_rollback(vh_db_t *db);

/* ---------------------------------------------------------------- spool.c */

/* a superseded job's source, unless a row names it (see spool.c) */
void vh_spool_remove(const vh_conf_t *cf, vh_db_t *db, const vh_job_t *job);
/* sources older than spool_grace that no row names (every 5 min) */
void vh_spool_sweep(const vh_conf_t *cf, vh_db_t *db);

/* ---------------------------------------------------------------- probe.c */

typedef struct {
    int     ok;                /* a usable video */
    char    error[512];        /* why not */
    double  duration;
    int     width;             /* displayed (after rotation) */
    int     height;
    double  fps;
    double  frames;            /* frames ffmpeg will decode (the largest claim) */
    double  rate;              /* frames / duration, the largest claim */
    int     has_audio;
    char    demuxer[16];       /* the VH_SOURCE_FORMATS name ffprobe found */
    int     video_index;       /* the stream probed: the first video stream
                                  that is not an attached picture */
} vh_probe_t;

int vh_probe_source(const vh_conf_t *cf, const char *path, vh_probe_t *p);
/* the verdict from ffprobe's JSON (-show_format -show_streams): p->ok or p->error */
void vh_probe_source_json(const vh_conf_t *cf, const char *text, size_t len,
    vh_probe_t *p);

/*
 * The only demuxers an upload may use (FFmpeg's -format_whitelist; one name
 * of a demuxer's comma-separated names matches it): real containers, never
 * playlists (hls), scripts (concat), image sequences or anything else that
 * opens a second file or a URL.  Every ffprobe and ffmpeg of a source gets
 * it, with -protocol_whitelist file and the path as file:<path>.
 */
#define VH_SOURCE_FORMATS  "mov,matroska,mpegts,avi,flv,mxf,ogg,asf,mpeg"

typedef struct {
    int     width;
    int     height;
    double  fps;
    char    codecs[64];        /* RFC 6381: "avc1.64001f,mp4a.40.2" */
    long long mpegts_start;    /* smallest start_pts of its streams (90 kHz), 0: none */
} vh_variant_info_t;

int vh_probe_variant(const vh_conf_t *cf, const char *segment, int audio_only,
    vh_variant_info_t *vi);
/* the audio-only rendition: one audio stream, no video; codecs "mp4a.40.2" */
int vh_probe_audio_json(const char *text, size_t len, vh_variant_info_t *vi,
    char *err, size_t errlen);
/* size, frame rate and RFC 6381 codecs from ffprobe's JSON (-show_streams); 0 or -1 with err */
int vh_probe_variant_json(const char *text, size_t len, vh_variant_info_t *vi,
    char *err, size_t errlen);

/* ---------------------------------------------------------------- ladder.c */

typedef struct {
    vh_rung_t rung;
    int       width;
    int       height;
} vh_plan_rung_t;

typedef struct {
    vh_plan_rung_t rungs[VH_MAX_RUNGS];
    int            n;
    int            gop;
    double         fps;        /* output frame rate */
    double         timeout;    /* seconds the ladder's ffmpeg may run, 0: none */
    const char    *key_info;   /* ffmpeg's -hls_key_info_file, NULL: no encryption */
    int            audio_only; /* + the audio-only rendition VH_AUDIO_ONLY_NAME */
    int            thumbs;     /* + the storyboard's tiles into tiles_dir */
    int            tile_width;
    int            tile_height;
    const char    *tiles_dir;  /* never encrypted: not under a key_rotation's .plain */
} vh_plan_t;

/* the audio-only rendition's directory and var_stream_map name (not a rung's NNNp) */
#define VH_AUDIO_ONLY_NAME  "audio"
/* the storyboard's directory in a version: sprite_NNN.jpg, storyboard.vtt */
#define VH_THUMBS_DIR       "thumbs"

int vh_ladder_plan(const vh_conf_t *cf, const vh_probe_t *p, vh_plan_t *plan);

/* an argv under construction (NULL-terminated), with the strings it owns */
typedef struct {
    char   *argv[200];
    int     n;
    char   *owned[200];
    int     nowned;
    int     failed;        /* an argument was lost: do not run */
} vh_args_t;

/*
 * The ladder's ffmpeg command line into a (zeroed by the caller): the
 * source's input options, one split + scale per rung, per-rung bitrates,
 * the GOP and forced keyframes, the HLS muxer writing <dir>/<rung>/.
 * 0, or -1 (no accepted demuxer, no video stream, out of memory).
 */
int  vh_ladder_args(const vh_conf_t *cf, const char *source,
    const vh_probe_t *p, const vh_plan_t *plan, const char *dir, vh_args_t *a);
void vh_args_free(vh_args_t *a);

typedef int (*vh_tick_pt)(void *data, double out_seconds);

/*
 * Runs the one ffmpeg of the ladder into dir.  tick is called at least
 * every second with the encoded position; a non-zero return aborts.
 * Returns 0 on success; -1 with err filled; VH_LADDER_TIMEOUT with err
 * filled when ffmpeg ran longer than plan->timeout (a permanent failure).
 */
#define VH_LADDER_TIMEOUT  -2

int vh_ladder_run(const vh_conf_t *cf, const char *source,
    const vh_probe_t *p, const vh_plan_t *plan, const char *dir,
    vh_tick_pt tick, void *data, char *err, size_t errlen);

/*
 * The storyboard's sprite sheets: the ladder's tiles (plan->tiles_dir)
 * counted into *tiles and laid out row by row, columns x rows a sheet, as
 * <dir>/sprite_NNN.jpg by a second, small ffmpeg.  0 or -1 with err.
 */
int vh_storyboard_run(const vh_conf_t *cf, const vh_plan_t *plan,
    const char *dir, long *tiles, char *err, size_t errlen);
/*
 * The storyboard's WebVTT track: one cue per tile, tile k (the frame at
 * k x storyboard_interval) over [k x interval, (k+1) x interval), as
 * sprite_NNN.jpg#xywh=x,y,w,h; made: how many tiles ffmpeg wrote.
 * 0, or -1 (nothing to describe, or out of memory)
 */
int vh_storyboard_vtt(const vh_conf_t *cf, const vh_plan_t *plan,
    double duration, long made, vh_buf_t *out);

int vh_poster_run(const vh_conf_t *cf, const char *source,
    const vh_probe_t *p, const char *path, char *err, size_t errlen);

/* ---------------------------------------------------------------- hls.c */

typedef struct {
    double  total_duration;
    double  max_segment;
    long    peak_bandwidth;        /* max over segments of bits/s */
    long    average_bandwidth;     /* total bits / total seconds */
    int     segments;
    char    first_segment[256];
} vh_playlist_stats_t;

/* parses a media playlist; segment sizes are read from dir */
int  vh_hls_playlist_stats(const char *dir, const char *text,
    vh_playlist_stats_t *st);

typedef struct {
    char    name[16];
    int     width;
    int     height;
    double  fps;
    long    bandwidth;
    long    average_bandwidth;
    char    codecs[64];
    char    playlist[64];      /* "720p/index.m3u8" */
    long long mpegts_start;    /* 90 kHz PTS where its first segment starts, 0: unknown */
} vh_variant_t;

typedef struct {
    const char *lang;         /* LANGUAGE */
    const char *label;        /* NAME (made unique by the writer: " (<lang>)" appended) */
    const char *uri;          /* "subs/<lang>/<revision>/index.m3u8" */
    int         is_default;
} vh_subtitle_t;

/* the most subtitle tracks a master lists (each NAME is compared with all before) */
#define VH_HLS_MAX_SUBTITLES  100

/*
 * the master; ns == 0: exactly as before; else EXT-X-MEDIA lines (sorted by
 * lang as given: the caller sorts) and SUBTITLES="subs" on every STREAM-INF.
 * -1: out of memory, more than VH_HLS_MAX_SUBTITLES tracks, or a track that
 * cannot be written safely (a lang, label or uri with '"', a control
 * character, or outside its charset; a label that is not UTF-8, with U+2028,
 * U+2029, "#EXT" or "{$")
 */
int  vh_hls_master(const vh_variant_t *v, int n, const vh_subtitle_t *s, int ns,
    vh_buf_t *out);
/* 1: a label vh_hls_master writes as NAME (any length; the caller bounds it) */
int  vh_hls_label_ok(const char *label);
int  vh_hls_renditions_json(const vh_variant_t *v, int n, vh_buf_t *out);

/* ---------------------------------------------------------------- captions.c */

/*
 * Captions an instructor uploads (WebVTT or SRT), validated and rewritten
 * as WebVTT we write ourselves; docs/helper.md "Captions and subtitles".
 */
typedef struct {
    long long  start_ms;
    long long  end_ms;
    char      *settings;      /* normalized cue settings ("" if none), malloc'd */
    char      *text;          /* normalized cue text, lines joined by '\n', malloc'd */
} vh_cue_t;

typedef struct {
    vh_cue_t  *cues;
    size_t     n;
    size_t     cap;
} vh_captions_t;

typedef struct {
    size_t     max_bytes;      /* caption_max_bytes */
    size_t     max_cues;       /* caption_max_cues */
    size_t     max_cue_bytes;  /* caption_max_cue_bytes (normalized text of one cue) */
    size_t     max_cue_lines;
} vh_caption_limits_t;

/* the limits' defaults (a field 0, or lim NULL, takes its default) */
#define VH_CAPTION_MAX_BYTES      (2 * 1024 * 1024)
#define VH_CAPTION_MAX_CUES       20000
#define VH_CAPTION_MAX_CUE_BYTES  1024
#define VH_CAPTION_MAX_CUE_LINES  8
/* the normalized WebVTT's ceiling, whatever the limits: video_captions.vtt's CHECK */
#define VH_CAPTION_MAX_VTT        (4 * 1024 * 1024)
/*
 * the most cues on screen at once, whatever the limits: a cue is written
 * into every HLS segment it spans, so this bounds a published track to its
 * WebVTT plus as many cues a segment (docs/helper.md "Limits")
 */
#define VH_CAPTION_MAX_OVERLAP    16
/* the latest time a cue may end: 99 hours */
#define VH_CAPTION_MAX_MS         (99LL * 3600 * 1000)
/* X-TIMESTAMP-MAP's MPEGTS for a version whose renditions lack mpegts_start */
#define VH_CAPTION_MPEGTS_DEFAULT 126000
/* vh_captions_parse's answer when memory ran out (not the file's fault) */
#define VH_CAPTIONS_NOMEM         -2

/*
 * parse, validate and normalize WebVTT or SRT: 0, or -1 with err "<code>: <why>"
 * (VH_CAPTIONS_NOMEM when memory ran out); out is empty unless 0
 */
int  vh_captions_parse(const char *data, size_t len, const vh_caption_limits_t *lim,
         vh_captions_t *out, char *err, size_t errlen);
void vh_captions_free(vh_captions_t *c);
/* the whole normalized WebVTT: what video_captions.vtt keeps (parses back to the same cues) */
int  vh_captions_vtt(const vh_captions_t *c, vh_buf_t *out);
/* number of segments of seg_ms for duration_ms (ceil, at least 1) */
size_t vh_captions_segments(long long seg_ms, long long duration_ms);
/* segment k: "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:<mpegts>,LOCAL:00:00:00.000\n\n" + the cues
   overlapping [k*seg_ms, (k+1)*seg_ms) that start before duration_ms (end clipped to it) */
int  vh_captions_segment(const vh_captions_t *c, long long seg_ms, long long duration_ms,
         size_t k, long long mpegts, vh_buf_t *out);
/* the subtitle media playlist: seg_00000.vtt ... with EXTINF, ENDLIST (-1: seg_ms <= 0) */
int  vh_captions_playlist(long long seg_ms, long long duration_ms, vh_buf_t *out);

/* ---------------------------------------------------------------- publish.c */

int  vh_publish_tmpdir(const vh_conf_t *cf, const char *video_id,
    char *out, size_t len);
/* the job is over: its work directory is no longer locked as in use */
void vh_publish_tmpdir_done(void);
/* a new version token: "20261204T221500Z-3f9a1c2b" (UTC + 32 random bits) */
#define VH_VERSION_TOKEN_LEN  25
int  vh_publish_version(char *out, size_t len);
int  vh_publish_is_version(const char *s);
/* renames tmpdir to <origin_dir>/hls/<id>/<version> */
int  vh_publish_commit(const vh_conf_t *cf, const char *video_id,
    const char *version, const char *tmpdir, char *err, size_t errlen);
/* removes superseded local versions past old_version_grace (rate-limited) */
void vh_publish_sweep(const vh_conf_t *cf, vh_db_t *db);
/* removes <origin_dir>/hls/<id>/<version>, published for a superseded job */
int  vh_publish_discard(const vh_conf_t *cf, const char *video_id,
    const char *version);

/* ---------------------------------------------------------------- keys.c */

#define VH_KEY_LEN  16

typedef struct {
    unsigned char  key[VH_KEY_LEN];
    long           first_segment;   /* media sequence number of its first segment */
    long long      starts_ms;       /* content time where that segment starts */
} vh_hls_key_t;

/* the keys of one version, and the private directory of ffmpeg's key files */
typedef struct vh_keys_s {
    char           dir[4096];       /* 0700 under $TMPDIR or /tmp; "" once removed */
    vh_hls_key_t  *keys;
    int            n;
    int            cap;
} vh_keys_t;

/* creates the private directory; 0 or -1 with err */
int  vh_keys_open(vh_keys_t *ks, char *err, size_t errlen);
/* draws one more key (RAND_bytes): 0 or -1 */
int  vh_keys_add(vh_keys_t *ks, long first_segment, long long starts_ms);
/* <key_uri_base>/<id>/<version>/<k>.key */
int  vh_keys_uri(const vh_conf_t *cf, const char *video_id, const char *version,
    int k, char *out, size_t len);
/* writes key k and its key info file (0600) into the private directory */
int  vh_keys_write_info(const vh_conf_t *cf, const vh_keys_t *ks,
    const char *video_id, const char *version, int k, char *path, size_t len);
/* AES-128-CBC, PKCS#7, IV = seq (16 bytes big-endian); out is created (O_EXCL) */
int  vh_keys_crypt_file(const unsigned char *key, long seq, const char *in,
    const char *out, int encrypt, char *err, size_t errlen);
/*
 * key_rotation: encrypts plain_dir's index.m3u8 and segments into out_dir,
 * a key per key_rotation segments, drawing keys the first rendition needs
 * (the others must have the same periods); writes out_dir/index.m3u8
 */
int  vh_keys_encrypt_rendition(const vh_conf_t *cf, vh_keys_t *ks,
    const char *video_id, const char *version, const char *plain_dir,
    const char *out_dir, char *err, size_t errlen);
/* removes the private directory (and the key files in it) */
void vh_keys_drop_dir(vh_keys_t *ks);
/* ... and wipes the keys from memory */
void vh_keys_close(vh_keys_t *ks);

/* ---------------------------------------------------------------- s3.c */

typedef struct vh_s3_s vh_s3_t;

vh_s3_t *vh_s3_new(const vh_conf_t *cf);
void vh_s3_free(vh_s3_t *s3);
const char *vh_s3_content_type(const char *name);
/* one object: PUT, or multipart above s3_multipart_threshold; retried */
int  vh_s3_put_file(vh_s3_t *s3, const char *key, const char *path,
    const char *ctype, const char *cache, char *err, size_t errlen);
/*
 * Uploads the tree in dir to <s3_prefix><storage_prefix> (storage_prefix
 * "hls/<id>/<version>/", ending in '/'), directory by directory: in each,
 * the files, then the subdirectories, then the playlists (a variant's or a
 * caption track's segments before its playlist); master.m3u8 last.
 * tick(data, 0) is called before each object; non-zero stops the upload.
 */
int  vh_s3_publish(const vh_conf_t *cf, const char *video_id,
    const char *storage_prefix, const char *dir, vh_tick_pt tick, void *data,
    char *err, size_t errlen);
/*
 * The same without master.m3u8 (a caption track uploaded before the
 * transaction that names it: invisible until a master does)
 */
int  vh_s3_publish_tree(const vh_conf_t *cf, const char *video_id,
    const char *storage_prefix, const char *dir, vh_tick_pt tick, void *data,
    char *err, size_t errlen);

/* ---------------------------------------------------------------- subs_track.c */

/* a version's caption tracks: subs/<lang>/<revision>/ */
#define VH_SUBS_DIR              "subs"

/*
 * One track into <dir>/subs/<lang>/<revision>/ (index.m3u8, seg_NNNNN.vtt):
 * written in a hidden directory beside it and renamed into place; already
 * there: nothing to do (a revision's bytes never change).  Only subs/,
 * subs/<lang>/ and the hidden directory are created, never dir itself: a
 * version the sweep removed stays removed.  0, VH_SUBS_GONE (dir does not
 * exist: nothing written, err says so), or -1 with err
 */
#define VH_SUBS_GONE  1
int  vh_subs_write_track(const vh_conf_t *cf, const char *dir, const char *lang,
    const char *revision, const vh_captions_t *caps, long long duration_ms,
    long long mpegts, const char *video_id, char *err, size_t errlen);

/* ---------------------------------------------------------------- subs.c */

/* the fields of a caption job: 0, or -1 with err (malformed) */
int  vh_caption_job_fields(const vh_job_t *job, char *err, size_t errlen);
/* the caption job (docs/helper.md "Captions"): VH_JOB_* like vh_job_run */
int  vh_caption_job_run(const vh_conf_t *cf, vh_queue_t *q, vh_db_t *db,
    vh_job_t *job, char *err, size_t errlen);
/* a removal ("delete 1"): its fields (0, or -1 with err), and its job */
int  vh_caption_remove_fields(const vh_job_t *job, char *err, size_t errlen);
int  vh_caption_remove_run(const vh_conf_t *cf, vh_queue_t *q, vh_db_t *db,
    vh_job_t *job, char *err, size_t errlen);

/*
 * A video job's captions: read before its master is written (vh_subs_load),
 * written into its work directory with the master listing them
 * (vh_subs_write_all), and checked again inside the switch's transaction
 * (vh_subs_switch: published into the version when they changed).
 */
typedef struct {
    vh_db_captions_t  db;
    vh_subtitle_t    *list;
    char            (*uri)[128];
    int               n;
    char             *signature;    /* (lang, revision, label, default) of each */
} vh_subs_t;

int  vh_subs_load(vh_db_t *db, const char *video_id, vh_subs_t *s);
void vh_subs_free(vh_subs_t *s);
/*
 * subs/<lang>/<revision>/ of each caption into dir: 0 or -1 with err; a
 * stored caption that does not parse is logged and left out of s->list
 */
int  vh_subs_write_all(const vh_conf_t *cf, vh_subs_t *s, const char *dir,
    double duration, long long mpegts, const char *video_id, char *err,
    size_t errlen);
/* what vh_subs_switch needs: the job's version and the captions it read */
typedef struct {
    const vh_conf_t  *cf;
    const char       *video_id;
    const char       *prefix;       /* "hls/<id>/<version>/", being switched to */
    const vh_subs_t  *subs;
} vh_subs_switch_t;
/*
 * vh_db_ready's in_tx (data: a vh_subs_switch_t), under the caption lock:
 * the captions read again; when they differ from what the version has, the
 * tracks it lacks and its master are written.  0, or -1 (logged): the
 * switch is rolled back and the job retried
 */
int  vh_subs_switch(vh_db_t *db, void *data);

/* ---------------------------------------------------------------- job.c */

enum {
    VH_JOB_DONE = 0,       /* ready or failed for good: ack */
    VH_JOB_RETRY,          /* transient: retry later, do not ack */
    VH_JOB_ABANDONED,      /* shutdown: do not ack, another helper reclaims */
    VH_JOB_LOST,           /* no longer ours: do not ack */
    VH_JOB_SUPERSEDED      /* a newer upload replaced the source: ack, row untouched */
};

/* logs a superseded job at info */
void vh_job_superseded(const vh_job_t *job, const char *when);

int vh_job_run(const vh_conf_t *cf, vh_queue_t *q, vh_db_t *db,
    vh_job_t *job, char *err, size_t errlen);
/* a source inside source_root (any, when unset): 1, or 0 with err */
int vh_job_source_allowed(const vh_conf_t *cf, const char *source, char *err,
    size_t errlen);

#endif /* VODLMS_HELPER_H */
