-- Read models kept by the projector and read by the query service.

-- One row per account: its current balance and status.
CREATE TABLE IF NOT EXISTS account_balances (
    account_id uuid PRIMARY KEY,
    owner text NOT NULL,
    currency char(3) NOT NULL,
    balance bigint NOT NULL CHECK (balance >= 0),
    status text NOT NULL CHECK (status IN ('open', 'closed')),
    version bigint NOT NULL,
    opened_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    last_position bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS account_balances_owner_idx ON account_balances (owner, account_id);
CREATE INDEX IF NOT EXISTS account_balances_status_idx ON account_balances (status, account_id);

-- One statement line per deposit or withdrawal. The global position is the key,
-- so the same event can never make two lines.
CREATE TABLE IF NOT EXISTS account_transactions (
    position bigint PRIMARY KEY,
    account_id uuid NOT NULL,
    version bigint NOT NULL,
    kind text NOT NULL CHECK (kind IN ('deposit', 'withdrawal')),
    amount bigint NOT NULL CHECK (amount > 0),
    currency char(3) NOT NULL,
    balance_after bigint NOT NULL,
    reference text,
    recorded_at timestamptz NOT NULL,
    UNIQUE (account_id, version)
);

-- How far each projection has applied the event log, written in the same
-- transaction as the projection's rows.
CREATE TABLE IF NOT EXISTS projection_checkpoints (
    projection text PRIMARY KEY,
    position bigint NOT NULL CHECK (position >= 0),
    last_event_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);
