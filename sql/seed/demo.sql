-- Demo seed: one course, six users, four videos. Fixed ids so tests can refer to them
-- (listed in sql/README.md). Idempotent: every row is upserted back to the values below,
-- and bob's enrollment is removed if a test created one. watch_progress is not touched.
-- Load with: sql/migrate.sh CONNINFO --seed   (into schema vodlms, or --schema NAME; by hand:
-- psql -1 -v ON_ERROR_STOP=1 -c "SET LOCAL search_path = vodlms, pg_catalog" -f demo.sql)

INSERT INTO users (id, email, display_name, role, created_at) VALUES
    ('1001', 'alice@example.com', 'Alice Student',    'student',    '2025-01-01 00:00:00+00'),
    ('1002', 'bob@example.com',   'Bob Student',      'student',    '2025-01-01 00:00:00+00'),
    ('1003', 'carol@example.com', 'Carol Instructor', 'instructor', '2025-01-01 00:00:00+00'),
    ('1004', 'dave@example.com',  'Dave Student',     'student',    '2025-01-01 00:00:00+00'),
    ('1005', 'erin@example.com',  'Erin Admin',       'admin',      '2025-01-01 00:00:00+00'),
    ('1006', 'frank@example.com', 'Frank Student',    'student',    '2025-01-01 00:00:00+00')
ON CONFLICT (id) DO UPDATE
    SET email = EXCLUDED.email,
        display_name = EXCLUDED.display_name,
        role = EXCLUDED.role,
        created_at = EXCLUDED.created_at;

INSERT INTO courses (id, title, slug, created_at) VALUES
    ('course-intro', 'Intro to Video Engineering', 'intro-video', '2025-01-01 00:00:00+00')
ON CONFLICT (id) DO UPDATE
    SET title = EXCLUDED.title,
        slug = EXCLUDED.slug,
        created_at = EXCLUDED.created_at;

INSERT INTO course_instructors (course_id, user_id, added_at) VALUES
    ('course-intro', '1003', '2025-01-01 00:00:00+00')
ON CONFLICT (course_id, user_id) DO UPDATE
    SET added_at = EXCLUDED.added_at;

INSERT INTO enrollments (user_id, course_id, status, enrolled_at, expires_at) VALUES
    -- alice: active, no expiry
    ('1001', 'course-intro', 'active',    '2025-01-02 00:00:00+00', NULL),
    -- dave: suspended
    ('1004', 'course-intro', 'suspended', '2025-01-02 00:00:00+00', NULL),
    -- frank: status active but expired
    ('1006', 'course-intro', 'active',    '2024-01-02 00:00:00+00', '2024-07-01 00:00:00+00')
ON CONFLICT (user_id, course_id) DO UPDATE
    SET status = EXCLUDED.status,
        enrolled_at = EXCLUDED.enrolled_at,
        expires_at = EXCLUDED.expires_at;

-- bob (and carol, erin: access through teaching / admin role) are NOT enrolled.
DELETE FROM enrollments
 WHERE course_id = 'course-intro' AND user_id IN ('1002', '1003', '1005');

INSERT INTO videos (id, course_id, title, duration_seconds, status, progress_percent,
                    renditions, storage_prefix, source_location, error, position,
                    uploaded_by, created_at) VALUES
    ('intro-ready', 'course-intro', 'Lecture 1: What is a video codec?', 634.5, 'ready', 100,
     '[{"name": "1080p", "width": 1920, "height": 1080, "bandwidth": 5000000,
        "codecs": "avc1.640028,mp4a.40.2", "playlist": "1080p/index.m3u8"},
       {"name": "720p", "width": 1280, "height": 720, "bandwidth": 2800000,
        "codecs": "avc1.64001f,mp4a.40.2", "playlist": "720p/index.m3u8"},
       {"name": "480p", "width": 854, "height": 480, "bandwidth": 1400000,
        "codecs": "avc1.64001e,mp4a.40.2", "playlist": "480p/index.m3u8"}]',
     'hls/intro-ready/', '/var/lib/vodlms/uploads/intro-ready.mp4', NULL, 1,
     '1003', '2025-01-03 00:00:00+00'),
    ('intro-processing', 'course-intro', 'Lecture 2: Containers and HLS', 1201.25, 'processing', 42.5,
     '[]', NULL, '/var/lib/vodlms/uploads/intro-processing.mp4', NULL, 2,
     '1003', '2025-01-04 00:00:00+00'),
    ('intro-failed', 'course-intro', 'Lecture 3: Adaptive bitrate ladders', NULL, 'failed', 0,
     '[]', NULL, '/var/lib/vodlms/uploads/intro-failed.mp4',
     'ffprobe: moov atom not found (truncated upload?)', 3,
     '1003', '2025-01-05 00:00:00+00'),
    ('intro-queued', 'course-intro', 'Lecture 4: Signed delivery with CloudFront', NULL, 'queued', 0,
     '[]', NULL, '/var/lib/vodlms/uploads/intro-queued.mp4', NULL, 4,
     '1003', '2025-01-06 00:00:00+00')
ON CONFLICT (id) DO UPDATE
    SET course_id = EXCLUDED.course_id,
        title = EXCLUDED.title,
        duration_seconds = EXCLUDED.duration_seconds,
        status = EXCLUDED.status,
        progress_percent = EXCLUDED.progress_percent,
        renditions = EXCLUDED.renditions,
        storage_prefix = EXCLUDED.storage_prefix,
        source_location = EXCLUDED.source_location,
        error = EXCLUDED.error,
        position = EXCLUDED.position,
        uploaded_by = EXCLUDED.uploaded_by,
        created_at = EXCLUDED.created_at;
