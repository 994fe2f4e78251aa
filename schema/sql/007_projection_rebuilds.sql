-- Projection versions and rebuilds (issue 4). Re-runnable, like every file here.

-- The version of the projection code that built each projection's live tables.
-- The projector compares it with the version its code declares: a projection
-- whose definition changed is rebuilt beside the live one (or flagged stale),
-- and the projector never applies new code to tables an older version built.
-- Rows written before versions existed were built by version 1.
ALTER TABLE projection_checkpoints ADD COLUMN IF NOT EXISTS version integer NOT NULL DEFAULT 1;

-- One row per rebuild of a projection (`python -m projector.rebuild`, or
-- POST /admin/projections/{name}/rebuild). The new tables are built in schema
-- rebuild_<id>; at the swap the live tables move to retired_<id>, where they
-- stay (for a rollback) until the operator drops them or the retention passes.
-- `built_position` advances in the same transaction as the rows written beside,
-- so a rebuild killed halfway resumes from it.
CREATE TABLE IF NOT EXISTS projection_rebuilds (
    id bigserial PRIMARY KEY,
    projection text NOT NULL,
    version integer NOT NULL,
    state text NOT NULL CHECK (state IN (
        'building', 'verifying', 'swapped', 'refused', 'failed', 'rolled_back', 'abandoned'
    )),
    built_position bigint NOT NULL DEFAULT 0 CHECK (built_position >= 0),
    verified_position bigint,
    events_done bigint NOT NULL DEFAULT 0,
    events_total bigint NOT NULL DEFAULT 0,
    -- The tables the swap retired: their version and the position they had reached.
    retired_version integer,
    retired_position bigint,
    started_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    old_dropped_at timestamptz,
    error text,
    -- What the verification compared: row counts and checksums per table, and
    -- the rows that differ when it refused the swap.
    report jsonb
);
CREATE INDEX IF NOT EXISTS projection_rebuilds_projection_idx
    ON projection_rebuilds (projection, id DESC);
