"""Writes read-model rows and checkpoints the way the projector does, for the query tests.

The query service must not care who fills its tables, so these tests stand
in for the projector: each change is one transaction that updates the rows,
moves the checkpoints and (unless told not to) NOTIFYs the new position.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal

import psycopg

from projector.projections import PROJECTIONS
from shared_kernel.settings import PROJECTION_CHANNEL

#: Every projection the query service reads (it serves each registered one).
SERVED = tuple(projection.NAME for projection in PROJECTIONS)

TransferStatus = Literal["requested", "debited", "completed", "refunded", "failed"]


@dataclass
class Line:
    """A statement line as the query service should serve it."""

    position: int
    version: int
    kind: str
    amount: int
    balance_after: int
    reference: str | None


@dataclass
class ReadModelWriter:
    database_url: str
    position: int = 0
    versions: dict[uuid.UUID, int] = field(default_factory=dict)
    balances: dict[uuid.UUID, int] = field(default_factory=dict)

    def open_account(
        self,
        owner: str,
        *,
        currency: str = "EUR",
        status: Literal["open", "closed"] = "open",
        balance: int = 0,
        account_id: uuid.UUID | None = None,
        checkpoint: bool = True,
    ) -> uuid.UUID:
        account_id = account_id or uuid.uuid4()
        self.position += 1
        self.versions[account_id] = 1
        self.balances[account_id] = balance
        with psycopg.connect(self.database_url) as conn, conn.transaction():
            conn.execute(
                "INSERT INTO account_balances (account_id, owner, currency, balance, status,"
                " version, opened_at, updated_at, last_position)"
                " VALUES (%s, %s, %s, %s, %s, 1, now(), now(), %s)",
                (account_id, owner, currency, balance, status, self.position),
            )
            if checkpoint:
                self._checkpoint(conn, notify=True)
        return account_id

    def record(
        self,
        account_id: uuid.UUID,
        kind: Literal["deposit", "withdrawal"],
        amount: int,
        *,
        reference: str | None = None,
        notify: bool = True,
    ) -> Line:
        """One deposit or withdrawal: the balance row, the line and the checkpoints, atomically."""
        self.position += 1
        version = self.versions[account_id] = self.versions[account_id] + 1
        balance = self.balances[account_id] + (amount if kind == "deposit" else -amount)
        self.balances[account_id] = balance
        with psycopg.connect(self.database_url) as conn, conn.transaction():
            conn.execute(
                "UPDATE account_balances SET balance = %s, version = %s, updated_at = now(),"
                " last_position = %s WHERE account_id = %s",
                (balance, version, self.position, account_id),
            )
            conn.execute(
                "INSERT INTO account_transactions (position, account_id, version, kind, amount,"
                " currency, balance_after, reference, recorded_at)"
                " SELECT %s, account_id, %s, %s, %s, currency, %s, %s, now()"
                " FROM account_balances WHERE account_id = %s",
                (self.position, version, kind, amount, balance, reference, account_id),
            )
            self._checkpoint(conn, notify=notify)
        return Line(self.position, version, kind, amount, balance, reference)

    def transfer(
        self,
        from_account: uuid.UUID,
        to_account: uuid.UUID,
        amount: int,
        *,
        status: TransferStatus = "requested",
        reason: str | None = None,
        currency: str = "EUR",
        transfer_id: uuid.UUID | None = None,
        notify: bool = True,
    ) -> tuple[uuid.UUID, int]:
        """A transfer row as the projector leaves it at ``status``; returns (id, position)."""
        self.position += 1
        transfer_id = transfer_id or uuid.uuid4()
        version = {"requested": 1, "debited": 2, "failed": 2}.get(status, 3)
        debited = status in ("debited", "completed", "refunded")
        finished = status in ("completed", "refunded", "failed")
        with psycopg.connect(self.database_url) as conn, conn.transaction():
            conn.execute(
                "INSERT INTO transfers (transfer_id, from_account, to_account, amount, currency,"
                " status, reason, requested_at, debited_at, finished_at, updated_at, version,"
                " requested_position, last_position)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, now(), CASE WHEN %s THEN now() END,"
                " CASE WHEN %s THEN now() END, now(), %s, %s, %s)",
                (transfer_id, from_account, to_account, amount, currency, status, reason,
                 debited, finished, version, self.position, self.position),
            )  # fmt: skip
            self._checkpoint(conn, notify=notify)
        return transfer_id, self.position

    def finish_transfer(
        self, transfer_id: uuid.UUID, status: TransferStatus, reason: str | None = None
    ) -> int:
        """Move a transfer on to ``status`` at a new position; returns the position."""
        self.position += 1
        with psycopg.connect(self.database_url) as conn, conn.transaction():
            conn.execute(
                "UPDATE transfers SET status = %s, reason = %s, version = version + 1,"
                " finished_at = now(), updated_at = now(), last_position = %s"
                " WHERE transfer_id = %s",
                (status, reason, self.position, transfer_id),
            )
            self._checkpoint(conn, notify=True)
        return self.position

    def add_totals(
        self, currency: str, balance: int, accounts: int, open_accounts: int, closed_accounts: int
    ) -> int:
        """Add to a currency's totals at a new position; returns the position."""
        self.position += 1
        with psycopg.connect(self.database_url) as conn, conn.transaction():
            values = (balance, accounts, open_accounts, closed_accounts, self.position, currency)
            updated = conn.execute(
                "UPDATE currency_totals SET balance = balance + %s, accounts = accounts + %s,"
                " open_accounts = open_accounts + %s, closed_accounts = closed_accounts + %s,"
                " updated_at = now(), last_position = %s WHERE currency = %s",
                values,
            )
            if not updated.rowcount:
                conn.execute(
                    "INSERT INTO currency_totals (balance, accounts, open_accounts,"
                    " closed_accounts, last_position, currency, updated_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, now())",
                    values,
                )
            self._checkpoint(conn, notify=True)
        return self.position

    def set_checkpoint(
        self,
        position: int,
        *,
        projections: tuple[str, ...] = SERVED,
        notify: bool = True,
    ) -> None:
        with psycopg.connect(self.database_url) as conn, conn.transaction():
            self._checkpoint(conn, notify=notify, position=position, projections=projections)

    def notify(self, payload: str) -> None:
        """A bare notification, with no checkpoint behind it."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute("SELECT pg_notify(%s, %s)", (PROJECTION_CHANNEL, payload))

    def _checkpoint(
        self,
        conn: psycopg.Connection[tuple[object, ...]],
        *,
        notify: bool,
        position: int | None = None,
        projections: tuple[str, ...] = SERVED,
    ) -> None:
        position = self.position if position is None else position
        for projection in projections:
            conn.execute(
                "INSERT INTO projection_checkpoints (projection, position, updated_at)"
                " VALUES (%s, %s, now()) ON CONFLICT (projection, partition)"
                " DO UPDATE SET position = EXCLUDED.position, updated_at = now()",
                (projection, position),
            )
        if notify:
            conn.execute("SELECT pg_notify(%s, %s)", (PROJECTION_CHANNEL, str(position)))
