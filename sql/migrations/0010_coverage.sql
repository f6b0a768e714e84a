-- 0010_coverage: which parts of a video a viewer has played, merged exactly (issue #19).
--
-- A maximum position plus played seconds can be faked by small steps, and a sum of
-- deltas counts a retried flush twice. Coverage replaces both as completion's evidence:
--
-- coverage           a bit string, bit i (0-based, leftmost first: PostgreSQL's bit
--                    order) for the content [5i, 5i+5) seconds, the last bit for
--                    [5i, duration). The module (core/vodlms_coverage.c, the rule in
--                    core/vodlms_core.h) sets a bit only when the whole of its span was
--                    played in one run the wall clock allows. At most 17280 bits (24 h);
--                    a longer video keeps bits for its first 24 hours only, so it cannot
--                    complete by coverage (fails closed). The module sends hex
--                    ('x...'), so its bitmaps are rounded up to 4 bits, the extra bits 0.
--                    The flush merges with coverage_or(): OR is idempotent, commutative
--                    and associative, so a retried flush, a worker killed mid-flush and
--                    several nginx nodes all give the same bits, with no affinity.
-- complete_fraction  the vodlms_progress_complete in force at the latest flush that sent
--                    a bitmap; NULL: the row was never judged by coverage.
--
-- Durations are taken to the nearest millisecond, as the module does, so these
-- functions count what core/vodlms_coverage.c counts to the millisecond
-- (t/068-coverage-sql.t holds them to it):
--
--   coverage_bits(duration)             the bits a bitmap for the duration has:
--                                       least(ceil(duration / 5), 17280); 0 when the
--                                       duration is NULL, <= 0, under 1 ms or not finite
--   coverage_or(a, b)                   the union: the shorter padded with 0 on the right
--                                       (PostgreSQL's | and bit_or need equal lengths);
--                                       NULL acts as empty, the answer is never NULL
--   coverage_union(bits)                aggregate of coverage_or (B'' over no rows)
--   coverage_seconds(cov, duration)     the content seconds the set bits stand for (the
--                                       last bit of the video is shorter); bits past
--                                       coverage_bits(duration) count for nothing; 0 for
--                                       a duration coverage_bits() gives 0
--   coverage_complete(cov, duration, fraction)
--                                       coverage_seconds >= fraction * duration; false
--                                       when fraction or duration is NULL or <= 0
--   coverage_first_unwatched(cov, duration)
--                                       where the first unset bit starts (seconds); the
--                                       duration when every bit is set (the end of the
--                                       tracked 24 h beyond that); 0 without a duration
--   coverage_hex(cov)                   'x' and hex digits, the bits rounded up to 4:
--                                       what nginx reads (resume_coverage)
--   coverage_span(duration, from, to)   the bitmap (coverage_bits(duration) bits) of
--                                       the parts wholly inside [from, to] (from 0 when
--                                       `from` is at most 2 s): what one run from `from`
--                                       to `to` marks
--
-- Existing rows have no bitmap. They get the best honest estimate of what they show:
-- the parts wholly inside [0, least(played_seconds, max_position_seconds)] of the
-- video's duration (videos.duration_seconds, else the row's duration_seconds; no
-- bitmap when neither is known), as if the viewer had watched from the start as far as
-- the play credited to them. completed_at is kept as it is, complete_fraction stays
-- NULL, and updated_at is not touched (the upgrade is not a watch).
--
-- The functions have SQL-standard bodies (RETURN ...): PostgreSQL parses them when they
-- are created, with migrate.sh's search_path (this schema, then pg_catalog), and binds
-- every function and operator they use then. So they need no search_path of their own
-- and work from nginx's connection, which names them qualified (vodlms.coverage_or) and
-- does not put the schema on its path; and, unlike a function with SET search_path, the
-- planner can still inline them.

CREATE FUNCTION coverage_bits(duration numeric) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN duration > 0 AND duration < 'Infinity'
            THEN least(ceil(round(duration * 1000) / 5000), 17280)::integer
            ELSE 0 END;

CREATE FUNCTION coverage_or(a bit varying, b bit varying) RETURNS bit varying
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (SELECT (pg_catalog.bit(x, n, true) | pg_catalog.bit(y, n, true))::bit varying
          FROM (SELECT coalesce(a, B'') AS x, coalesce(b, B'') AS y,
                       coalesce(greatest(length(a), length(b)), 0) AS n) s);

CREATE AGGREGATE coverage_union(bit varying) (
    SFUNC = coverage_or,
    STYPE = bit varying,
    INITCOND = '',
    COMBINEFUNC = coverage_or,
    PARALLEL = SAFE
);

CREATE FUNCTION coverage_seconds(cov bit varying, duration numeric) RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (SELECT CASE WHEN n = 0 THEN 0
                    ELSE round((bit_count(substring(c FROM 1 FOR n)) * 5000
                                - CASE WHEN n * 5000 >= ms   -- bit n-1 ends at the duration
                                       THEN bit_count(substring(c FROM n FOR 1))
                                            * (n * 5000 - ms)
                                       ELSE 0 END) / 1000.0, 3) END
          FROM (SELECT coalesce(cov, B'') AS c, coverage_bits(duration) AS n,
                       round(duration * 1000) AS ms) s);

CREATE FUNCTION coverage_complete(cov bit varying, duration numeric, fraction numeric)
    RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN fraction > 0 AND coverage_bits(duration) > 0
            THEN coverage_seconds(cov, duration) >= fraction * round(duration, 3)
            ELSE false END;

CREATE FUNCTION coverage_first_unwatched(cov bit varying, duration numeric) RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (SELECT CASE WHEN n = 0 THEN 0
                    WHEN i = 0 THEN round(least(n * 5000, ms) / 1000.0, 3)
                    ELSE (i - 1) * 5.000 END
          FROM (SELECT n, ms,
                       CASE WHEN n > 0
                            THEN position(B'0' IN pg_catalog.bit(
                                     substring(coalesce(cov, B'') FROM 1 FOR n), n, true))
                       END AS i
                  FROM (SELECT coverage_bits(duration) AS n,
                               round(duration * 1000) AS ms) d) s);

-- Positions as the module takes them: to the nearest ms, at most the duration. The
-- first bit is the first that starts at or after `from`, or bit 0 when `from` is at most
-- 2 s into it (a run's first beacon there starts at 0, as the module's does); the bits
-- go on while they end by `to` (bit i ends at 5(i+1) or at the duration, whichever is
-- first).
CREATE FUNCTION coverage_span(duration numeric, from_seconds numeric, to_seconds numeric)
    RETURNS bit varying
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (SELECT (repeat('0', f) || repeat('1', k) || repeat('0', n - f - k))::bit varying
          FROM (SELECT n, f,
                       greatest(0, least(n, CASE WHEN t >= ms THEN n
                                                 ELSE floor(t / 5000)::integer END) - f) AS k
                  FROM (SELECT n, ms, t,
                               CASE WHEN least(round(from_seconds * 1000), ms) <= 2000 THEN 0
                                    ELSE least(n, ceil(least(round(from_seconds * 1000), ms)
                                                       / 5000)::integer) END AS f
                          FROM (SELECT coverage_bits(duration) AS n,
                                       round(duration * 1000) AS ms,
                                       greatest(0, round(to_seconds * 1000)) AS t) d) e) s);

-- The form nginx reads a row's bits in (the enrollment query's resume_coverage): 'x' and
-- lower-case hex digits, the bits rounded up to 4 with zeros, as the module's
-- vodlms_coverage_hex() writes them: a quarter of the binary text, so that the enrollment
-- row of a long lecture stays small enough for nginx's cache. 64 bits at a time.
CREATE FUNCTION coverage_hex(cov bit varying) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN (SELECT 'x' || left(coalesce(string_agg(lpad(to_hex(substring(p FROM 64 * i + 1 FOR 64)
                                                           ::bit(64)::bigint), 16, '0'),
                                               '' ORDER BY i), ''),
                           (length(cov) + 3) / 4)
          FROM (SELECT pg_catalog.bit(cov, greatest(64, (length(cov) + 63) / 64 * 64), true)
                       AS p) s,
               generate_series(0, (length(cov) + 63) / 64 - 1) AS i);

ALTER TABLE watch_progress
    ADD COLUMN coverage bit varying NOT NULL DEFAULT B''
        CONSTRAINT watch_progress_coverage_length CHECK (length(coverage) <= 17280),
    ADD COLUMN complete_fraction numeric
        CONSTRAINT watch_progress_complete_fraction_range
        CHECK (complete_fraction > 0 AND complete_fraction <= 1);

-- the upgrade estimate (above); the trigger would stamp every row as watched now
ALTER TABLE watch_progress DISABLE TRIGGER watch_progress_set_updated_at;
UPDATE watch_progress wp
   SET coverage = coverage_span(coalesce(v.duration_seconds, wp.duration_seconds), 0,
                                least(wp.played_seconds, wp.max_position_seconds))
  FROM videos v
 WHERE v.id = wp.video_id
   AND coverage_bits(coalesce(v.duration_seconds, wp.duration_seconds)) > 0;
ALTER TABLE watch_progress ENABLE TRIGGER watch_progress_set_updated_at;

COMMENT ON COLUMN watch_progress.coverage IS
    'bit i: content [5i, 5i+5) s played (the last bit ends at the duration); merged with coverage_or()';
COMMENT ON COLUMN watch_progress.complete_fraction IS
    'vodlms_progress_complete at the latest flush that sent a bitmap; NULL: never judged by coverage';

-- Analytics (0005) from the bitmaps. A viewer's coverage is coverage_seconds() over
-- the video's duration (videos.duration_seconds: NULL until probed, and then these are
-- NULL too), 0..1; a row with an empty bitmap counts as 0.
--   avg_coverage              average over viewers
--   median_coverage           the median (percentile_cont(0.5)) over viewers
--   coverage_completion_rate  viewers whose coverage reaches the complete_fraction their
--                             row was last judged by, over viewers (rows never judged by
--                             coverage count as not complete): completion as coverage
--                             proves it today, beside completion_rate's completed_at;
--                             NULL without a duration
CREATE OR REPLACE VIEW video_stats AS
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
       max(wp.updated_at) AS last_watched_at,
       round(avg(coverage_seconds(wp.coverage, v.duration_seconds)
                 / nullif(v.duration_seconds, 0)) FILTER (WHERE wp.user_id IS NOT NULL), 4)
           AS avg_coverage,
       round(percentile_cont(0.5) WITHIN GROUP (
                 ORDER BY coverage_seconds(wp.coverage, v.duration_seconds)
                          / nullif(v.duration_seconds, 0))
             FILTER (WHERE wp.user_id IS NOT NULL)::numeric, 4) AS median_coverage,
       CASE WHEN v.duration_seconds > 0
            THEN round(count(wp.user_id) FILTER (
                           WHERE coverage_complete(wp.coverage, v.duration_seconds,
                                                   wp.complete_fraction))::numeric
                       / nullif(count(wp.user_id), 0), 4) END AS coverage_completion_rate
  FROM videos v
  LEFT JOIN watch_progress wp ON wp.video_id = v.id
 GROUP BY v.id;

-- Where viewers drop off: one row per video and 5-second part (a bit of the bitmaps),
-- for every video with a known duration (a video without viewers has its parts with
-- 0 viewers). Parts, not minutes: a bit is the unit coverage is proven in, so a
-- viewer either played a part or did not; a minute would have to say "played some of
-- it", and a chart can still sum parts into minutes (part / 12).
--   part            bit number, 0-based
--   start_seconds   5 * part
--   end_seconds     where the part ends (the video's end for the last)
--   video_viewers   users with a progress row for the video
--   viewers         of those, the ones whose coverage has this part
--   share           viewers / video_viewers (NULL without viewers)
--   stopped_here    viewers whose furthest played part is this one (for the last
--                   part: who played to the end)
CREATE VIEW video_audience AS
SELECT v.id AS video_id,
       p.part,
       5 * p.part AS start_seconds,
       round(least(5 * (p.part + 1), v.duration_seconds), 3) AS end_seconds,
       count(wp.user_id) AS video_viewers,
       count(wp.user_id) FILTER (WHERE substring(wp.coverage FROM p.part + 1 FOR 1) = B'1')
           AS viewers,
       round(count(wp.user_id) FILTER (WHERE substring(wp.coverage FROM p.part + 1 FOR 1) = B'1')::numeric
             / nullif(count(wp.user_id), 0), 4) AS share,
       count(wp.user_id) FILTER (WHERE wp.last_part = p.part) AS stopped_here
  FROM videos v
 CROSS JOIN LATERAL generate_series(0, coverage_bits(v.duration_seconds) - 1) AS p(part)
  LEFT JOIN (SELECT video_id, user_id, coverage,
                    length(rtrim(coverage::text, '0')) - 1 AS last_part
               FROM watch_progress) wp ON wp.video_id = v.id
 GROUP BY v.id, p.part;
