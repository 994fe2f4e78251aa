-- Every command the ledger recorded, by its command id: exactly once by construction.
--
-- The command service inserts one row per accepted command in the SAME
-- transaction as the command's event (under the events table lock), so a
-- second recording of one command fails on this primary key, whoever tries
-- it: the library retrying an INSERT whose COMMIT reply was lost, an
-- Idempotency-Key retry that took over a slow first attempt, a second command
-- service. The row also says where the command's event went, so an attempt
-- whose outcome was unknown answers from what was recorded instead of
-- deciding the command again. The event's global position is found through
-- the events table's primary key (originator_id, originator_version).
--
-- Rows are tiny and kept as long as the events: a retry may come at any time.
CREATE TABLE IF NOT EXISTS ledger_commands (
    command_id uuid PRIMARY KEY,
    originator_id uuid NOT NULL,
    originator_version bigint NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

-- Commands recorded before this table existed: each event names the command
-- that caused it in its metadata ("causation_id", written by msgspec without
-- spaces; read as text because an old event may hold JSON that jsonb refuses);
-- the earliest event of a command is where it was recorded. Transfer steps
-- name "<transfer>@<version>" as their cause, which is no uuid and not taken.
INSERT INTO ledger_commands (command_id, originator_id, originator_version)
SELECT DISTINCT ON (causation_id) causation_id::uuid, originator_id, originator_version
FROM (
    SELECT substring(
               convert_from(state, 'UTF8')
               FROM '"causation_id":"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"'
           ) AS causation_id,
           originator_id, originator_version, notification_id
    FROM ledger_events
) AS caused
WHERE causation_id IS NOT NULL
ORDER BY causation_id, notification_id
ON CONFLICT (command_id) DO NOTHING;
