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

from query_service.projection_position import SERVED_PROJECTIONS
from shared_kernel.settings import PROJECTION_CHANNEL


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

    def set_checkpoint(
        self,
        position: int,
        *,
        projections: tuple[str, ...] = SERVED_PROJECTIONS,
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
        projections: tuple[str, ...] = SERVED_PROJECTIONS,
    ) -> None:
        position = self.position if position is None else position
        for projection in projections:
            conn.execute(
                "INSERT INTO projection_checkpoints (projection, position, updated_at)"
                " VALUES (%s, %s, now()) ON CONFLICT (projection)"
                " DO UPDATE SET position = EXCLUDED.position, updated_at = now()",
                (projection, position),
            )
        if notify:
            conn.execute("SELECT pg_notify(%s, %s)", (PROJECTION_CHANNEL, str(position)))
