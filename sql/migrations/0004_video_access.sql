-- 0004_video_access: "may user U watch video V", as a view and as the one-row query
-- the nginx module runs.
--
-- The rule: a user may watch a video of course C when
--   * they have an enrollment in C with status 'active' and (expires_at IS NULL OR
--     expires_at > now()), or
--   * they teach C (course_instructors), or
--   * their users.role is 'admin'.
-- Whether the video can be PLAYED is separate: only status 'ready' has a manifest.
-- 'completed', 'suspended' and 'cancelled' enrollments do not grant access.
--
-- DEFAULT ENROLLMENT QUERY (the module's default; $1 = video id from the URL,
-- $2 = user id from the session, both sent as text). It returns ZERO rows when the video
-- does not exist, otherwise exactly ONE row (every join is on a primary key), so one
-- round trip tells apart:
--   no row                      -> video does not exist            (404)
--   allowed = false             -> not enrolled / suspended / expired (403; the reason
--                                  is enrollment_status: none|suspended|cancelled|
--                                  completed|expired)
--   allowed, status <> 'ready'  -> video not ready (queued/processing with
--                                  progress_percent, or failed)      (409)
--   allowed, status = 'ready'   -> allowed                         (200)
-- The $n::text casts make any string a valid parameter (an id outside vodlms_id's
-- character set simply matches nothing) and let libpq send untyped text parameters.
--
--   SELECT v.id, v.course_id, v.title, v.duration_seconds, v.status, v.progress_percent,
--          v.storage_prefix, v.renditions,
--          coalesce(e.status = 'active' AND (e.expires_at IS NULL OR e.expires_at > now()),
--                   false) AS enrolled,
--          CASE WHEN e.user_id IS NULL THEN 'none'
--               WHEN e.status = 'active' AND e.expires_at <= now() THEN 'expired'
--               ELSE e.status END AS enrollment_status,
--          (ci.user_id IS NOT NULL) AS instructor,
--          coalesce(u.role = 'admin', false) AS admin,
--          (coalesce(e.status = 'active' AND (e.expires_at IS NULL OR e.expires_at > now()),
--                    false)
--           OR ci.user_id IS NOT NULL OR coalesce(u.role = 'admin', false)) AS allowed
--     FROM videos v
--     LEFT JOIN enrollments e ON e.course_id = v.course_id AND e.user_id = $2::text
--     LEFT JOIN course_instructors ci ON ci.course_id = v.course_id AND ci.user_id = $2::text
--     LEFT JOIN users u ON u.id = $2::text
--    WHERE v.id = $1::text
--
-- The same text is in sql/README.md; keep the two in step.

-- Every (user, video) pair that is allowed, with the video's metadata and why
-- ("via": enrollment | instructor | admin; a user can appear once per reason).
-- For listings and reports; SELECT ... FROM video_access WHERE video_id = $1 AND
-- user_id = $2 answers yes/no but cannot tell "no such video" from "not enrolled",
-- which is why the module uses the query above.
CREATE VIEW video_access AS
SELECT g.user_id,
       v.id AS video_id,
       v.course_id,
       v.title,
       v.duration_seconds,
       v.status,
       v.progress_percent,
       v.storage_prefix,
       v.renditions,
       v.position,
       g.via,
       g.expires_at
  FROM videos v
  JOIN (SELECT e.user_id, e.course_id, 'enrollment'::text AS via, e.expires_at
          FROM enrollments e
         WHERE e.status = 'active'
           AND (e.expires_at IS NULL OR e.expires_at > now())
        UNION ALL
        SELECT ci.user_id, ci.course_id, 'instructor'::text, NULL::timestamptz
          FROM course_instructors ci) g
    ON g.course_id = v.course_id
UNION ALL
SELECT u.id,
       v.id,
       v.course_id,
       v.title,
       v.duration_seconds,
       v.status,
       v.progress_percent,
       v.storage_prefix,
       v.renditions,
       v.position,
       'admin'::text,
       NULL::timestamptz
  FROM users u
 CROSS JOIN videos v
 WHERE u.role = 'admin';

COMMENT ON VIEW video_access IS
    'allowed (user_id, video_id) pairs with video metadata; via = enrollment|instructor|admin';
