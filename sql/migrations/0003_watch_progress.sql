-- 0003_watch_progress: one row per (user, video), upserted in batches by the module's
-- POST /progress flush.
--
-- position_seconds      last reported playhead
-- max_position_seconds  furthest playhead ever reported (>= position_seconds)
-- duration_seconds      duration as the player saw it (may differ slightly from videos)
-- watched_seconds       accumulated seconds actually played (sum of beacon deltas)
-- completed_at          first time the video counted as completed; never reset
-- started_at            first beacon; updated_at: last flush (trigger)
-- All seconds are numeric, non-negative and finite ('NaN'/'Infinity' rejected).

CREATE TABLE watch_progress (
    user_id               vodlms_id   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    video_id              vodlms_id   NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    position_seconds      numeric     NOT NULL DEFAULT 0
                          CONSTRAINT watch_progress_position_finite
                          CHECK (position_seconds >= 0 AND position_seconds < 'Infinity'),
    max_position_seconds  numeric     NOT NULL DEFAULT 0
                          CONSTRAINT watch_progress_max_position_finite
                          CHECK (max_position_seconds >= 0 AND max_position_seconds < 'Infinity'),
    duration_seconds      numeric
                          CONSTRAINT watch_progress_duration_finite
                          CHECK (duration_seconds >= 0 AND duration_seconds < 'Infinity'),
    watched_seconds       numeric     NOT NULL DEFAULT 0
                          CONSTRAINT watch_progress_watched_finite
                          CHECK (watched_seconds >= 0 AND watched_seconds < 'Infinity'),
    completed_at          timestamptz,
    started_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, video_id),
    CONSTRAINT watch_progress_max_ge_position CHECK (max_position_seconds >= position_seconds)
);

CREATE TRIGGER watch_progress_set_updated_at
    BEFORE UPDATE ON watch_progress
    FOR EACH ROW EXECUTE FUNCTION vodlms_set_updated_at();

-- Per-video analytics and cascades from videos.
CREATE INDEX watch_progress_video_idx ON watch_progress (video_id);
