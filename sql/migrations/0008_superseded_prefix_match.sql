-- 0008_superseded_prefix_match: which prefixes are still in use, as the remover sees it.
--
-- 0006's trigger compared storage_prefix strings exactly and only within one video:
--   * 'hls/42/V' and 'hls/42/V/' name the same directory (videos_storage_prefix_safe
--     allows the trailing '/'), yet a switch back to one did not cancel the pending
--     removal of the other;
--   * a row of another video pointing at the same prefix did not either.
-- Here a prefix is compared with rtrim(prefix, '/'), against every video, and a switch
-- back to a prefix that a remover already took (removed_at set) is refused: its files
-- are gone or going (re-encode instead). The remover (vodlms-helper's sweep, or the
-- operator's S3 job) holds the videos_superseded row locked while it deletes, so such a
-- switch waits for it and then fails, instead of pointing a row at a removed prefix.
-- 0006 is left as applied; this replaces its function in place.

CREATE OR REPLACE FUNCTION vodlms_videos_superseded_log() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    taken timestamptz;
BEGIN
    -- 'hls/42/V' -> 'hls/42/V/' is the same directory: nothing is superseded
    IF rtrim(OLD.storage_prefix, '/') IS DISTINCT FROM rtrim(NEW.storage_prefix, '/') THEN
        INSERT INTO videos_superseded (video_id, storage_prefix)
        VALUES (OLD.id, OLD.storage_prefix)
        ON CONFLICT (video_id, storage_prefix) DO UPDATE
            SET superseded_at = now(), removed_at = NULL;
    END IF;
    -- a prefix taken back into use (an operator's rollback, by any video) is not old
    -- any more, however it is spelt
    IF NEW.storage_prefix IS NOT NULL THEN
        FOR taken IN
            DELETE FROM videos_superseded
             WHERE rtrim(storage_prefix, '/') = rtrim(NEW.storage_prefix, '/')
            RETURNING removed_at
        LOOP
            IF taken IS NOT NULL THEN
                RAISE EXCEPTION 'storage_prefix % of video % was removed as an old version'
                                ' (videos_superseded.removed_at %): re-encode the video instead',
                                NEW.storage_prefix, NEW.id, taken
                    USING ERRCODE = 'object_not_in_prerequisite_state';
            END IF;
        END LOOP;
    END IF;
    RETURN NULL;
END $$;

-- what the trigger and the remover look up
CREATE INDEX videos_storage_prefix_trim_idx ON videos (rtrim(storage_prefix, '/'))
    WHERE storage_prefix IS NOT NULL;
CREATE INDEX videos_superseded_prefix_trim_idx ON videos_superseded (rtrim(storage_prefix, '/'));
