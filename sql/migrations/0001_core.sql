-- 0001_core: identifiers, the updated_at trigger function, users, courses,
-- course_instructors, enrollments.
--
-- Applied once, in order, inside one transaction by sql/migrate.sh (psql -1), which
-- records the version in schema_migrations in that same transaction.
--
-- ID CHOICE: every id (users, courses, videos) is TEXT restricted to [A-Za-z0-9_-]{1,64}
-- (the domain vodlms_id below), not bigint. Why:
--   * Video ids appear in URLs (/videos/{id}/stream) and in storage keys (hls/{id}/...).
--     The character set is URL-safe with no percent-encoding and S3/file-name safe: no
--     '/', no '.', so no path traversal ('..') and no hidden files, whatever the caller
--     passes. The upload handler can mint an unguessable id (e.g. 16 random base64url
--     chars) before the row exists, and ids do not reveal how many videos exist.
--   * User ids come from the LMS's session (e.g. passport.user), which may be a JSON
--     number (42), a UUID or an ObjectId. As text, all of them fit without a cast; the
--     module sends the decimal text of a JSON number ("42"). Text parameters never fail
--     to cast, so a garbage id in a URL is "no such row", not a query error (503).
--   * One parameter type everywhere ($1::text, $2::text) keeps the configurable
--     queries simple.
-- Trade-off: numeric ids are compared as text, so "042" <> "42"; the LMS must store the
-- canonical form. Sites whose LMS uses bigint keys point the module's queries at their
-- own tables instead (queries are configuration).
--
-- Enumerations (role, status) are text + CHECK rather than CREATE TYPE ... AS ENUM so a
-- later migration can change the set inside a transaction with a plain ALTER TABLE.

CREATE DOMAIN vodlms_id AS text
    CONSTRAINT vodlms_id_url_safe CHECK (VALUE ~ '^[A-Za-z0-9_-]{1,64}$');

COMMENT ON DOMAIN vodlms_id IS
    'URL- and storage-key-safe identifier: 1..64 of [A-Za-z0-9_-]';

-- Sets updated_at on every UPDATE (used by videos and watch_progress).
CREATE FUNCTION vodlms_set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TABLE users (
    id            vodlms_id   PRIMARY KEY,
    email         text        NOT NULL
                  CONSTRAINT users_email_shape CHECK (email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
    display_name  text        NOT NULL DEFAULT ''
                  CONSTRAINT users_display_name_len CHECK (length(display_name) <= 200),
    role          text        NOT NULL DEFAULT 'student'
                  CONSTRAINT users_role_valid CHECK (role IN ('student', 'instructor', 'admin')),
    created_at    timestamptz NOT NULL DEFAULT now()
);
-- Emails are unique case-insensitively.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE courses (
    id          vodlms_id   PRIMARY KEY,
    title       text        NOT NULL
                CONSTRAINT courses_title_nonempty CHECK (length(btrim(title)) > 0),
    slug        text        NOT NULL
                CONSTRAINT courses_slug_shape CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(slug) <= 100),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT courses_slug_key UNIQUE (slug)
);

-- Who teaches a course (upload permission, and instructors may watch their courses).
CREATE TABLE course_instructors (
    course_id  vodlms_id   NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
    user_id    vodlms_id   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    added_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (course_id, user_id)
);
CREATE INDEX course_instructors_user_idx ON course_instructors (user_id);

CREATE TABLE enrollments (
    user_id      vodlms_id   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    course_id    vodlms_id   NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
    status       text        NOT NULL DEFAULT 'active'
                 CONSTRAINT enrollments_status_valid
                 CHECK (status IN ('active', 'suspended', 'completed', 'cancelled')),
    enrolled_at  timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,            -- NULL = never expires
    PRIMARY KEY (user_id, course_id)
);
-- The access check (user, course, active, not expired). The primary key already finds
-- the one row by (user_id, course_id); this partial covering index serves the active-only
-- lookups and listings ("my active courses") with index-only scans.
CREATE INDEX enrollments_active_idx ON enrollments (user_id, course_id)
    INCLUDE (expires_at) WHERE status = 'active';
-- Course rosters, and the foreign key's ON DELETE CASCADE from courses.
CREATE INDEX enrollments_course_idx ON enrollments (course_id);
