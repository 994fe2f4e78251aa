-- Deadlines: commands that events scheduled (a hold's expiry), filed by the
-- deadline runner as it follows the event log, in the same transaction as its
-- position (saga_positions row 'deadlines'). A row goes once its command ran;
-- the log stays the source, so a row lost is filed again by reading it.
CREATE TABLE IF NOT EXISTS scheduled_commands (
    kind text NOT NULL,
    stream_id uuid NOT NULL,
    due_at timestamptz NOT NULL,
    scheduled_position bigint NOT NULL,
    PRIMARY KEY (kind, stream_id)
);
CREATE INDEX IF NOT EXISTS scheduled_commands_due_idx ON scheduled_commands (due_at);
