-- Streams a projection could not apply, held until an operator replays them.
-- Re-runnable, like every file here.
--
-- When a projection refuses an event of a stream (an account or a transfer),
-- the projector records the stream here in the same transaction as its
-- checkpoint, parks the event in the dead-letter stream, and from then on
-- applies none of that stream's events to that projection: the checkpoint
-- moves past them (other streams go on), `held` counts them, and the event
-- store keeps them, so `python -m projector.dead_letters --replay` re-reads
-- them from `position` up to the checkpoint and applies them in order once
-- the cause is fixed, deleting the row in the same transaction.
-- The query service reads this table to answer 503 `read-model-blocked`
-- instead of an old state.
CREATE TABLE IF NOT EXISTS projection_blocks (
    projection text NOT NULL,
    stream_id uuid NOT NULL,
    -- The first event of the stream this projection did not apply.
    position bigint NOT NULL CHECK (position > 0),
    event_type text NOT NULL,
    reason text NOT NULL,
    blocked_at timestamptz NOT NULL DEFAULT now(),
    -- Later events of the stream the checkpoint passed without applying them.
    held bigint NOT NULL DEFAULT 0 CHECK (held >= 0),
    last_held_position bigint,
    -- The last replay that failed, and why (NULL until one did).
    replay_failed_at timestamptz,
    replay_error text,
    PRIMARY KEY (projection, stream_id)
);
CREATE INDEX IF NOT EXISTS projection_blocks_stream_idx ON projection_blocks (stream_id);
