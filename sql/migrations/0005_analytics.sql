-- 0005_analytics: read-only reporting views over watch_progress.
--
-- A "viewer" of a video is a user with a watch_progress row for it (at least one beacon
-- was flushed). Rates are fractions 0..1, NULL when there is nothing to divide by.

-- Per video.
--   viewers                  users with a progress row
--   completions              viewers with completed_at set
--   completion_rate          completions / viewers
--   total_watch_seconds      sum of watched_seconds over viewers
--   avg_watch_seconds        total_watch_seconds / viewers
--   avg_dropoff_seconds      average max_position_seconds of viewers who did NOT complete
--                            (where people stop), NULL if everyone completed
--   avg_dropoff_percent      the same as a percentage of the video's duration
CREATE VIEW video_stats AS
SELECT v.id AS video_id,
       v.course_id,
       v.title,
       v.status,
       v.duration_seconds,
       count(wp.user_id) AS viewers,
       count(wp.completed_at) AS completions,
       round(count(wp.completed_at)::numeric / nullif(count(wp.user_id), 0), 4) AS completion_rate,
       coalesce(sum(wp.watched_seconds), 0) AS total_watch_seconds,
       round(avg(wp.watched_seconds), 3) AS avg_watch_seconds,
       round(avg(wp.max_position_seconds) FILTER (WHERE wp.completed_at IS NULL), 3)
           AS avg_dropoff_seconds,
       round(100 * avg(wp.max_position_seconds) FILTER (WHERE wp.completed_at IS NULL)
                 / nullif(v.duration_seconds, 0), 2) AS avg_dropoff_percent,
       max(wp.updated_at) AS last_watched_at
  FROM videos v
  LEFT JOIN watch_progress wp ON wp.video_id = v.id
 GROUP BY v.id;

-- Per course per user: everyone enrolled in the course (any status) plus anyone with
-- progress on one of its videos (e.g. instructors, lapsed students).
--   enrollment_status active|suspended|completed|cancelled|expired, NULL if not enrolled
--   videos_started    videos with a progress row
--   videos_completed  of those, with completed_at set
--   watch_seconds     sum of watched_seconds
--   ready_videos      videos of the course with status 'ready' (the denominator)
--   completion_rate   videos_completed / ready_videos
CREATE VIEW course_user_progress AS
WITH p AS (
    SELECT v.course_id,
           wp.user_id,
           count(*) AS videos_started,
           count(wp.completed_at) AS videos_completed,
           sum(wp.watched_seconds) AS watch_seconds,
           max(wp.updated_at) AS last_watched_at
      FROM watch_progress wp
      JOIN videos v ON v.id = wp.video_id
     GROUP BY v.course_id, wp.user_id
), r AS (
    SELECT course_id, count(*) AS ready_videos
      FROM videos
     WHERE status = 'ready'
     GROUP BY course_id
)
SELECT k.course_id,
       k.user_id,
       CASE WHEN e.status = 'active' AND e.expires_at <= now() THEN 'expired'
            ELSE e.status END AS enrollment_status,   -- NULL: not enrolled
       coalesce(p.videos_started, 0) AS videos_started,
       coalesce(p.videos_completed, 0) AS videos_completed,
       coalesce(p.watch_seconds, 0) AS watch_seconds,
       coalesce(r.ready_videos, 0) AS ready_videos,
       round(coalesce(p.videos_completed, 0)::numeric / nullif(r.ready_videos, 0), 4)
           AS completion_rate,
       p.last_watched_at
  FROM (SELECT course_id, user_id FROM enrollments
        UNION
        SELECT course_id, user_id FROM p) k
  LEFT JOIN p ON p.course_id = k.course_id AND p.user_id = k.user_id
  LEFT JOIN enrollments e ON e.course_id = k.course_id AND e.user_id = k.user_id
  LEFT JOIN r ON r.course_id = k.course_id;

-- Per course totals.
CREATE VIEW course_stats AS
SELECT c.id AS course_id,
       c.slug,
       c.title,
       count(DISTINCT v.id) AS videos,
       count(DISTINCT v.id) FILTER (WHERE v.status = 'ready') AS ready_videos,
       count(DISTINCT wp.user_id) AS viewers,
       coalesce(sum(wp.watched_seconds), 0) AS total_watch_seconds,
       count(wp.completed_at) AS completions
  FROM courses c
  LEFT JOIN videos v ON v.course_id = c.id
  LEFT JOIN watch_progress wp ON wp.video_id = v.id
 GROUP BY c.id;
