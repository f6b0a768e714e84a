-- 0006_video_versions: every encode of a video has its own storage prefix
-- ('hls/{id}/{version}/', version e.g. '20261204T221500Z-3f9a1c2b': UTC time of the
-- publish + 8 random hex digits), so a re-encode never rewrites a URL that CDNs and
-- browsers cache as immutable. The helper publishes the new version, then switches
-- videos.storage_prefix to it in the UPDATE that marks the row ready.
--
-- videos_superseded remembers, for each prefix a video stopped using, when that
-- happened: old versions stay readable for a grace period (viewers mid-playback),
-- then are removed -- by vodlms-helper for a local origin (old_version_grace), by an
-- operator job for S3 (docs/s3.md, "Old versions"). The trigger fills it in the
-- same transaction as the switch, whoever makes it (helper, operator, seed).
-- No foreign key: a deleted video's old versions still need removing.
-- removed_at: set when a remover took the row (NULL: still on storage).

CREATE TABLE videos_superseded (
    video_id        vodlms_id   NOT NULL,
    storage_prefix  text        NOT NULL,
    superseded_at   timestamptz NOT NULL DEFAULT now(),
    removed_at      timestamptz,
    PRIMARY KEY (video_id, storage_prefix)
);

-- What a remover looks for: not yet removed, oldest first.
CREATE INDEX videos_superseded_pending_idx ON videos_superseded (superseded_at)
    WHERE removed_at IS NULL;

CREATE FUNCTION vodlms_videos_superseded_log() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO videos_superseded (video_id, storage_prefix)
    VALUES (OLD.id, OLD.storage_prefix)
    ON CONFLICT (video_id, storage_prefix) DO UPDATE
        SET superseded_at = now(), removed_at = NULL;
    -- a prefix taken back into use (an operator's rollback) is not old any more
    DELETE FROM videos_superseded
     WHERE video_id = NEW.id AND storage_prefix = NEW.storage_prefix;
    RETURN NULL;
END $$;

CREATE TRIGGER videos_superseded_log
    AFTER UPDATE OF storage_prefix ON videos
    FOR EACH ROW
    WHEN (OLD.storage_prefix IS NOT NULL
          AND OLD.storage_prefix IS DISTINCT FROM NEW.storage_prefix)
    EXECUTE FUNCTION vodlms_videos_superseded_log();
