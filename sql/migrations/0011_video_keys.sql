-- 0011_video_keys: the AES-128 keys of encrypted HLS versions (issue #22).
--
-- vodlms-helper encrypts every rendition of a version with keys it draws from a
-- CSPRNG (one key per version, or one per rotation period of N segments) and writes
-- them here, never next to the media: not to S3, not under the local origin. nginx
-- (vodlms_hls_key) serves a key only to a viewer its session and enrollment checks
-- admit. This table is therefore as secret as the media: back it up with the
-- database, and grant SELECT on it only to the role nginx uses and to the helper.
--
-- version         the version token of the encode ('20261204T221500Z-3f9a1c2b',
--                 the last part of its storage prefix 'hls/{id}/{version}/'); a
--                 re-encode has new keys
-- key_index       0, 1, ...: the rotation period (0 only, without rotation)
-- key             the 16 bytes
-- first_segment   media sequence number of the first segment under this key
-- starts_ms       content time in milliseconds where that segment starts (what a
--                 pace limit compares with the time a viewer has been watching)
--
-- Rows of versions that are removed go with them (the helper deletes them when
-- it removes an old version; an operator's prune job for S3 should do the same),
-- and a deleted video takes its keys along (ON DELETE CASCADE): an id used again
-- later, perhaps in another course, must not open the old lecture's keys.

CREATE TABLE video_keys (
    video_id       vodlms_id   NOT NULL
                   REFERENCES videos (id) ON DELETE CASCADE,
    version        text        NOT NULL
                   CONSTRAINT video_keys_version_token
                   CHECK (version ~ '^[A-Za-z0-9_.-]{1,64}$'),
    key_index      integer     NOT NULL CHECK (key_index >= 0),
    key            bytea       NOT NULL CHECK (octet_length(key) = 16),
    first_segment  integer     NOT NULL CHECK (first_segment >= 0),
    starts_ms      bigint      NOT NULL CHECK (starts_ms >= 0),
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (video_id, version, key_index)
);

COMMENT ON TABLE video_keys IS
    'AES-128 keys of encrypted HLS versions: secret, served by nginx only after its checks';
