-- Holds on the read side.

-- What active holds reserve of each account's balance; available = balance - held.
ALTER TABLE account_balances ADD COLUMN IF NOT EXISTS held bigint NOT NULL DEFAULT 0
    CHECK (held >= 0 AND held <= balance);

-- One row per hold, folded from the hold stream. placed_position (the position
-- of HoldPlaced) orders an account's holds newest first and is unique: a keyset.
CREATE TABLE IF NOT EXISTS holds (
    hold_id uuid PRIMARY KEY,
    account_id uuid NOT NULL,
    amount bigint NOT NULL CHECK (amount > 0),
    currency char(3) NOT NULL,
    reference text,
    status text NOT NULL CHECK (status IN ('placed', 'captured', 'released', 'expired')),
    captured bigint NOT NULL CHECK (captured >= 0 AND captured <= amount),
    expires_at timestamptz NOT NULL,
    placed_at timestamptz NOT NULL,
    ended_at timestamptz,
    version bigint NOT NULL,
    placed_position bigint NOT NULL UNIQUE,
    last_position bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS holds_account_idx ON holds (account_id, placed_position DESC);
