-- 0009_beside_lms: vodlms's tables installed beside an LMS's own.
--
-- sql/migrate.sh installs vodlms into its own PostgreSQL schema ("vodlms" by default)
-- so that it never meets the LMS's users, courses or schema_migrations. An upload
-- (nginx's vodlms_upload) writes a videos row for a course the LMS owns: its
-- course_id is the LMS's course id, and there is no reason for vodlms.courses to hold
-- a copy of the LMS's catalogue. So:
--
--   * videos.course_id no longer references courses, and videos.uploaded_by no
--     longer references users: both are ids of things the LMS owns. They keep their
--     type, the domain vodlms_id (1..64 of [A-Za-z0-9_-]; an integer id is its decimal
--     text), so a row still names a course the way URLs and storage keys can carry.
--     Trade-off: vodlms no longer stops a course with videos from being deleted
--     (0002's ON DELETE RESTRICT: its storage must be cleaned first) nor clears
--     uploaded_by when a user goes. A site that keeps its courses in vodlms.courses
--     and wants that guard back adds the constraint itself:
--       ALTER TABLE videos ADD CONSTRAINT videos_course_id_fkey
--           FOREIGN KEY (course_id) REFERENCES courses (id) ON DELETE RESTRICT;
--     A site whose LMS owns the courses cleans a deleted course's videos (and their
--     storage) from the LMS's side, as it deletes its lessons.
--   * watch_progress keeps its foreign keys (user_id -> users, video_id -> videos):
--     only the module's default flush writes it, and that flush joins vodlms's users
--     and videos anyway (an unknown user's entry is dropped), so the key refuses
--     nothing the flush would write and still removes a deleted user's progress. A
--     site whose users live in the LMS keeps progress in the LMS's own table with a
--     vodlms_progress_flush_query (docs/lms-schema.md), not here.
--     enrollments and course_instructors keep theirs too: they are the identity
--     tables of the default enrollment query, not used beside an LMS.
--
-- Functions resolve names when they run, with the search_path of whoever fires them:
-- nginx's and vodlms-helper's connections name vodlms's tables qualified
-- (vodlms.videos) and do not put the schema on their search_path, so the trigger that
-- writes videos_superseded would not find it. Each trigger function is pinned to the
-- search_path it was created with (the schema, then pg_catalog: migrate.sh sets it
-- for the transaction). Views, domains, defaults, CHECKs and indexes bind their
-- objects when they are created and need nothing.

ALTER TABLE videos DROP CONSTRAINT IF EXISTS videos_course_id_fkey;
ALTER TABLE videos DROP CONSTRAINT IF EXISTS videos_uploaded_by_fkey;

ALTER FUNCTION vodlms_set_updated_at() SET search_path FROM CURRENT;
ALTER FUNCTION vodlms_videos_superseded_log() SET search_path FROM CURRENT;
