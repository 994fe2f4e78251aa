-- Read model `owner_summaries` (issue 4): per owner and currency, how many
-- accounts (open, closed) and the sum of their balances, kept by deltas in the
-- projector's batch transaction. GET /owners/{owner} reads an owner's rows.
-- The balance is numeric for the same reason as currency_totals'.
CREATE TABLE IF NOT EXISTS owner_summaries (
    owner text NOT NULL,
    currency char(3) NOT NULL,
    accounts bigint NOT NULL CHECK (accounts >= 0),
    open_accounts bigint NOT NULL CHECK (open_accounts >= 0),
    closed_accounts bigint NOT NULL CHECK (closed_accounts >= 0),
    balance numeric(39, 0) NOT NULL CHECK (balance >= 0),
    updated_at timestamptz NOT NULL,
    last_position bigint NOT NULL,
    PRIMARY KEY (owner, currency)
);
