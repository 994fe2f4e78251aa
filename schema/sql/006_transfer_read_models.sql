-- Read models for money moving between accounts (issue 3). Re-runnable: an
-- existing database was migrated with 003, and migrate re-applies a file
-- whenever it changes, so every statement here is idempotent.

-- Statement lines for the transfer legs: they name the other account and the
-- transfer. Deposits and withdrawals keep both columns null.
ALTER TABLE account_transactions ADD COLUMN IF NOT EXISTS counterparty uuid;
ALTER TABLE account_transactions ADD COLUMN IF NOT EXISTS transfer_id uuid;
ALTER TABLE account_transactions DROP CONSTRAINT IF EXISTS account_transactions_kind_check;
ALTER TABLE account_transactions ADD CONSTRAINT account_transactions_kind_check
    CHECK (kind IN ('deposit', 'withdrawal', 'transfer_out', 'transfer_in', 'refund'));
ALTER TABLE account_transactions DROP CONSTRAINT IF EXISTS account_transactions_transfer_check;
ALTER TABLE account_transactions ADD CONSTRAINT account_transactions_transfer_check
    CHECK ((kind IN ('deposit', 'withdrawal')) = (transfer_id IS NULL AND counterparty IS NULL));

-- One row per transfer, folded from the transfer stream. requested_position
-- (the position of TransferRequested) orders an account's transfers newest
-- first; it is unique, so it is a keyset for pages.
CREATE TABLE IF NOT EXISTS transfers (
    transfer_id uuid PRIMARY KEY,
    from_account uuid NOT NULL,
    to_account uuid NOT NULL,
    amount bigint NOT NULL CHECK (amount > 0),
    currency char(3) NOT NULL,
    status text NOT NULL
        CHECK (status IN ('requested', 'debited', 'completed', 'refunded', 'failed')),
    reason text,
    requested_at timestamptz NOT NULL,
    debited_at timestamptz,
    finished_at timestamptz,
    updated_at timestamptz NOT NULL,
    version bigint NOT NULL,
    requested_position bigint NOT NULL UNIQUE,
    last_position bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS transfers_from_account_idx
    ON transfers (from_account, requested_position DESC);
CREATE INDEX IF NOT EXISTS transfers_to_account_idx
    ON transfers (to_account, requested_position DESC);

-- Totals per currency, kept by deltas in the projector's batch transaction so
-- that GET /totals reads a handful of rows however many accounts there are.
-- The balance is numeric: each account stays below 2^62, their sum need not
-- fit a bigint.
CREATE TABLE IF NOT EXISTS currency_totals (
    currency char(3) PRIMARY KEY,
    balance numeric(39, 0) NOT NULL CHECK (balance >= 0),
    accounts bigint NOT NULL CHECK (accounts >= 0),
    open_accounts bigint NOT NULL CHECK (open_accounts >= 0),
    closed_accounts bigint NOT NULL CHECK (closed_accounts >= 0),
    updated_at timestamptz NOT NULL,
    last_position bigint NOT NULL
);
