-- migrate: re-runnable
-- The whole append in one statement: one client round trip, and the table lock
-- held only while the server works, never while it waits on the client.
--
-- The command service and the transfer saga call it on an autocommit
-- connection, so the statement is its own transaction: the lock is taken
-- first (EXCLUSIVE, as the eventsourcing library takes it, so positions are
-- issued in commit order), the command ids and events are inserted, any
-- snapshots due are written with them, and the NOTIFY that wakes the relay and
-- the saga goes out at the commit that ends the statement, naming what was appended. The library's own
-- database function skips the lock, so positions could commit out of order:
-- that is why the project owns this one.
--
-- A taken (originator_id, originator_version) fails on ledger_events_pkey, a
-- command recorded before on ledger_commands_pkey: the caller tells the two
-- apart by the constraint name, as with the statements this replaces.
-- Positions come back in the order of the event arrays.
CREATE OR REPLACE FUNCTION ledger_append(
    event_ids uuid[],
    event_versions bigint[],
    event_topics text[],
    event_states bytea[],
    command_ids uuid[],
    command_stream_ids uuid[],
    command_versions bigint[],
    snapshot_ids uuid[],
    snapshot_versions bigint[],
    snapshot_topics text[],
    snapshot_states bytea[],
    lock_timeout text
) RETURNS SETOF bigint
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM set_config('lock_timeout', lock_timeout, true);
    LOCK TABLE ledger_events IN EXCLUSIVE MODE;
    -- The payload names the wire names appended, so a follower that acts on a few
    -- (the saga, the deadline runner) sleeps through the rest; '' (too many to name,
    -- or a NOTIFY from elsewhere) means "anything".
    PERFORM pg_notify('ledger_events', coalesce((
        SELECT CASE WHEN length(names) <= 7000 THEN names ELSE '' END
        FROM (SELECT string_agg(DISTINCT topic, ' ') AS names FROM unnest(event_topics) AS topic)
            AS appended), ''));
    -- And one channel per wire name appended, 'ledger_events:<wire name>', so a
    -- follower of a few LISTENs to those alone and is not even woken by the rest
    -- (a deposit's append reaches neither the saga nor the deadline runner). A
    -- name too long for a channel (63 bytes) has none: its followers listen above.
    PERFORM pg_notify(channel, '')
    FROM (SELECT DISTINCT 'ledger_events:' || topic AS channel FROM unnest(event_topics) AS topic)
        AS appended
    WHERE octet_length(channel) <= 63;
    INSERT INTO ledger_commands (command_id, originator_id, originator_version)
    SELECT * FROM unnest(command_ids, command_stream_ids, command_versions);
    RETURN QUERY
    INSERT INTO ledger_events (originator_id, originator_version, topic, state)
    SELECT * FROM unnest(event_ids, event_versions, event_topics, event_states)
    RETURNING notification_id;
    -- A snapshot is a cache of a fold: one already there for a version is the same state.
    INSERT INTO ledger_snapshots (originator_id, originator_version, topic, state)
    SELECT * FROM unnest(snapshot_ids, snapshot_versions, snapshot_topics, snapshot_states)
    ON CONFLICT DO NOTHING;
END;
$$;
