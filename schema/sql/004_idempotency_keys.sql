-- Idempotency keys of the command service: one row per Idempotency-Key a client sent.
--
-- A request claims its key here BEFORE it executes (the primary key lets one
-- claim win among concurrent retries), then stores its answer in the same
-- row; a retry with the same key and the same request replays that answer.
-- ``command_id`` is kept across attempts: an attempt that takes over an
-- abandoned claim (lease expired: the first died, or answered 5xx) looks in
-- the event store for what that command id recorded before acting again.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    idempotency_key text PRIMARY KEY,
    -- sha256 of method, path and (canonical JSON) body: another request under
    -- the same key is refused (422 idempotency-key-reused).
    fingerprint bytea NOT NULL,
    command_id uuid NOT NULL,
    -- The attempt executing now and until when it may; both NULL once answered.
    owner uuid,
    locked_until timestamptz,
    -- The stored answer (any status below 500); NULL while executing.
    response_status integer CHECK (response_status BETWEEN 100 AND 499),
    response_headers jsonb,
    response_body bytea,
    attempts integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);

-- The periodic purge deletes by expiry.
CREATE INDEX IF NOT EXISTS idempotency_keys_expires_at_idx ON idempotency_keys (expires_at);
