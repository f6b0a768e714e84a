-- 0007_played_seconds: the evidence completion needs, merged exactly.
--
-- played_seconds  forward play credited to this (user, video), each step at most
--                 twice the wall-clock time between two beacons (the module's
--                 VODLMS_PROGRESS_MAX_RATE). The module's flush writes each entry's
--                 running total and the database keeps the greatest: greatest() is
--                 idempotent and commutative, so a retried flush, a crashed worker or
--                 several nginx nodes writing the same viewing never add it twice
--                 (watched_seconds, a sum of deltas, may). Completion needs
--                 played_seconds to reach the completion fraction of the video's
--                 duration, so it cannot be had faster than at 2x speed.
--
-- Existing rows start from what they already show: the watched seconds, but never
-- more than the furthest position reached.

ALTER TABLE watch_progress
    ADD COLUMN played_seconds numeric NOT NULL DEFAULT 0
        CONSTRAINT watch_progress_played_finite
        CHECK (played_seconds >= 0 AND played_seconds < 'Infinity');

UPDATE watch_progress
   SET played_seconds = least(watched_seconds, max_position_seconds);

COMMENT ON COLUMN watch_progress.played_seconds IS
    'forward play credited at most 2x wall-clock; merged with greatest(), never added';
