-- 0012_video_captions: captions and subtitles of a lecture (issue #23).
--
-- One row per video and language. An instructor uploads a WebVTT or SRT file through
-- the nginx module (vodlms_upload captions): nginx writes the upload's state here
-- (status 'queued', the spooled file as source_location) and queues a job; vodlms-helper
-- validates the file, converts it to WebVTT, keeps the result in `vtt`, segments it into
-- the current version's HLS tree (subs/<lang>/<revision>/) and rewrites that version's
-- master playlist, without re-encoding the video. Every later encode of the video (a new
-- upload of the lecture) publishes the captions kept here into its own version.
--
-- Two kinds of columns:
--   the last upload     status, source_location, error, requested_at: what became of
--                       the newest file uploaded for this language ('failed' with
--                       `error` when the helper refused it: the published captions,
--                       if any, stay as they were)
--   what is published   label, is_default, vtt, revision, cues, published_at: NULL vtt
--                       = nothing published for this language yet
--
-- lang            BCP 47 language tag as the instructor gave it ('en', 'pt-BR',
--                 'zh-Hans'): the HLS LANGUAGE attribute and the directory name
-- label           the name players show in their caption menu (the HLS NAME)
-- is_default      at most one per video (the helper clears the others): DEFAULT=YES
-- vtt             the validated, normalized WebVTT the helper made (never the
--                 uploaded bytes); at most 4 MiB
-- revision        token of the published segmentation ('20261205T121500Z-3f9a1c2b'):
--                 segment URLs are immutable, so a replacement gets new ones
--
-- A deleted video takes its captions along (ON DELETE CASCADE).

CREATE TABLE video_captions (
    video_id         vodlms_id   NOT NULL
                     REFERENCES videos (id) ON DELETE CASCADE,
    lang             text        NOT NULL
                     CONSTRAINT video_captions_lang_tag
                     CHECK (lang ~ '^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}$'),
    label            text        NOT NULL
                     CONSTRAINT video_captions_label_sane
                     CHECK (length(label) BETWEEN 1 AND 64
                            AND label !~ '["[:cntrl:]]'),
    is_default       boolean     NOT NULL DEFAULT false,
    status           text        NOT NULL DEFAULT 'queued'
                     CONSTRAINT video_captions_status_valid
                     CHECK (status IN ('queued', 'processing', 'ready', 'failed')),
    source_location  text,
    error            text,
    requested_at     timestamptz NOT NULL DEFAULT now(),
    vtt              text
                     CONSTRAINT video_captions_vtt_size
                     CHECK (octet_length(vtt) <= 4194304),
    revision         text
                     CONSTRAINT video_captions_revision_token
                     CHECK (revision ~ '^[A-Za-z0-9_.-]{1,64}$'),
    cues             integer     CHECK (cues >= 0),
    published_at     timestamptz,
    PRIMARY KEY (video_id, lang),
    CONSTRAINT video_captions_published_whole
        CHECK ((vtt IS NULL) = (revision IS NULL))
);

CREATE UNIQUE INDEX video_captions_one_default
    ON video_captions (video_id) WHERE is_default AND vtt IS NOT NULL;

COMMENT ON TABLE video_captions IS
    'captions/subtitles per video and language: the last upload''s state and the published WebVTT';
