-- 0002_videos: the videos table (one row per lecture, written by POST /upload and by
-- vodlms-helper as the transcode progresses).
--
-- renditions: JSON array written by the helper when the ladder is done, e.g.
--   [{"name":"720p","width":1280,"height":720,"bandwidth":2800000,
--     "codecs":"avc1.64001f,mp4a.40.2","playlist":"720p/index.m3u8"}, ...]
-- storage_prefix: where the HLS output lives relative to the bucket / origin root,
--   conventionally 'hls/{id}/' (master playlist = storage_prefix || 'master.m3u8').
-- source_location: where the uploaded original is (local path or s3://bucket/key),
--   for re-transcoding; never sent to clients.
-- error: why the transcode failed (operator-facing; do not show to students verbatim).
-- Numbers: numeric, and 'NaN'/'Infinity' are rejected: in PostgreSQL, NaN sorts above
--   Infinity, so "x < 'Infinity'" excludes both.

CREATE TABLE videos (
    id                vodlms_id   PRIMARY KEY,
    course_id         vodlms_id   NOT NULL REFERENCES courses (id) ON DELETE RESTRICT,
    title             text        NOT NULL
                      CONSTRAINT videos_title_nonempty CHECK (length(btrim(title)) > 0),
    duration_seconds  numeric
                      CONSTRAINT videos_duration_finite
                      CHECK (duration_seconds >= 0 AND duration_seconds < 'Infinity'),
    status            text        NOT NULL DEFAULT 'queued'
                      CONSTRAINT videos_status_valid
                      CHECK (status IN ('queued', 'processing', 'ready', 'failed')),
    progress_percent  numeric(5,2) NOT NULL DEFAULT 0
                      CONSTRAINT videos_progress_range CHECK (progress_percent BETWEEN 0 AND 100),
    renditions        jsonb       NOT NULL DEFAULT '[]'
                      CONSTRAINT videos_renditions_array CHECK (jsonb_typeof(renditions) = 'array'),
    storage_prefix    text
                      CONSTRAINT videos_storage_prefix_safe
                      CHECK (storage_prefix ~ '^[A-Za-z0-9_-]+(/[A-Za-z0-9_.-]+)*/?$'
                             AND storage_prefix !~ '(^|/)\.\.?(/|$)'),
    source_location   text,
    error             text,
    position          integer     NOT NULL DEFAULT 0
                      CONSTRAINT videos_position_nonneg CHECK (position >= 0),
    uploaded_by       vodlms_id   REFERENCES users (id) ON DELETE SET NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    -- A ready video can be played: it has somewhere to play from.
    CONSTRAINT videos_ready_has_prefix CHECK (status <> 'ready' OR storage_prefix IS NOT NULL),
    -- A failed video says why.
    CONSTRAINT videos_failed_has_error CHECK (status <> 'failed' OR error IS NOT NULL)
);

COMMENT ON COLUMN videos.position IS 'order within the course (ties broken by created_at, id)';

CREATE TRIGGER videos_set_updated_at
    BEFORE UPDATE ON videos
    FOR EACH ROW EXECUTE FUNCTION vodlms_set_updated_at();

-- Videos of a course, in course order.
CREATE INDEX videos_course_position_idx ON videos (course_id, position, created_at);
-- Operator / helper view of unfinished work.
CREATE INDEX videos_unfinished_idx ON videos (status, updated_at)
    WHERE status IN ('queued', 'processing');
CREATE INDEX videos_uploaded_by_idx ON videos (uploaded_by) WHERE uploaded_by IS NOT NULL;
