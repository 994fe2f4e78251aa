-- How far the outbox relay has published the event log into each Redis Stream.
-- Redis may lose the stream (FLUSHALL, restart without persistence); this row
-- lets a restarted relay resume without re-publishing all history, and the
-- "previous" field of each entry lets consumers notice what Redis lost.
CREATE TABLE IF NOT EXISTS relay_positions (
    stream_name text PRIMARY KEY,
    position bigint NOT NULL CHECK (position >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
