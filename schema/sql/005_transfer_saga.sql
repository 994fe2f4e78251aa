-- The transfer saga: how far it has followed the event log, and swept it.
--
-- ``position``: the saga reads the log after it, advances every transfer it
-- sees there, and only then moves it on; a crash in between repeats steps
-- that the transfer stream's (originator_id, originator_version) key then
-- refuses, so a repeat costs a little time and never moves money twice.
--
-- ``swept_to``: the sweep (at start-up, then periodically) looks for
-- transfers that never reached an end; every transfer requested at or below
-- this position was found finished, so the next sweep scans only the log
-- after it (by the notification_id index) instead of all of history.
CREATE TABLE IF NOT EXISTS saga_positions (
    saga text PRIMARY KEY,
    position bigint NOT NULL CHECK (position >= 0),
    swept_to bigint NOT NULL DEFAULT 0 CHECK (swept_to >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
