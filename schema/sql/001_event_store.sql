-- The event store, exactly as the eventsourcing library (9.5.6) creates it for the
-- application named "ledger", so the services can run with CREATE_TABLE=no.
-- The primary key (originator_id, originator_version) is the optimistic
-- concurrency check; notification_id is the global position (in commit order,
-- because every append takes LOCK TABLE ... IN EXCLUSIVE MODE, but with holes).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'stored_event_uuid') THEN
        CREATE TYPE stored_event_uuid AS (
            originator_id uuid,
            originator_version bigint,
            topic text,
            state bytea
        );
    END IF;
END
$$;

CREATE TABLE IF NOT EXISTS ledger_events (
    originator_id uuid NOT NULL,
    originator_version bigint NOT NULL,
    topic text,
    state bytea,
    notification_id bigserial,
    PRIMARY KEY (originator_id, originator_version)
) WITH (
    autovacuum_enabled = true,
    autovacuum_vacuum_threshold = 100000000,
    autovacuum_vacuum_scale_factor = 0.5,
    autovacuum_analyze_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.01
);

CREATE UNIQUE INDEX IF NOT EXISTS ledger_events_notification_id_idx
    ON ledger_events (notification_id ASC);

CREATE TABLE IF NOT EXISTS ledger_snapshots (
    originator_id uuid NOT NULL,
    originator_version bigint NOT NULL,
    topic text,
    state bytea,
    PRIMARY KEY (originator_id, originator_version)
) WITH (
    autovacuum_enabled = true,
    autovacuum_vacuum_threshold = 100000000,
    autovacuum_vacuum_scale_factor = 0.5,
    autovacuum_analyze_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.01
);
