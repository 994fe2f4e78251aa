"""``currency_totals``: per currency, the sum of all balances and the number of accounts.

Kept by deltas: each batch adds up what its events change per currency and
adds them to the stored totals in one statement, inside the
batch transaction that also advances this projection's checkpoint. So
``GET /totals`` reads one row per currency, however many accounts exist,
instead of summing ``account_balances`` on every request.

Every event that changes a total names its currency, except ``AccountClosed``.
For that one the projection reads the account's ``AccountOpened`` from the
event store (a primary-key lookup of version 1) rather than another
projection's table: the store is the source of truth and is always at or past
this checkpoint, so the totals stay rebuildable on their own, in any order
with the other projections.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection

from projector.projections.base import CannotProject, RecordedEvent
from projector.projections.movements import MOVEMENTS, is_movement
from projector.projections.openings import account_openings
from projector.projections.reference_sql import decoded, signed_amount_sql, topic
from projector.projections.summed_rows import SummedRows, account_sums
from shared_kernel.language.events import AccountClosed, AccountOpened, LedgerEvent

NAME = "currency_totals"
VERSION = 1
HANDLES: tuple[type[LedgerEvent], ...] = (AccountOpened, *MOVEMENTS, AccountClosed)
#: It adds up many streams: time travel cannot fold it from one (see base.py).
DESCRIBES: str | None = None
TABLES: tuple[str, ...] = ("currency_totals",)

#: The independent fold a rebuild is verified against: every event in the
#: currency its account was opened in, then counted and summed per currency.
REFERENCE: Mapping[str, str] = {
    "currency_totals": (
        f"WITH e AS ({decoded(*HANDLES)}),"
        " c AS (SELECT e.*, o.d->>'currency' AS currency FROM e"
        f"  JOIN e AS o ON o.stream_id = e.stream_id AND o.topic = {topic(AccountOpened)}),"
        f" per AS (SELECT currency, sum({signed_amount_sql()}) AS balance,"
        f"  count(*) FILTER (WHERE topic = {topic(AccountOpened)}) AS accounts,"
        f"  count(*) FILTER (WHERE topic = {topic(AccountClosed)}) AS closed,"
        "  max(position) AS last_position FROM c GROUP BY currency)"
        " SELECT per.currency::char(3), per.balance::numeric(39, 0), per.accounts,"
        " per.accounts - per.closed, per.closed, (l.d->>'timestamp')::timestamptz,"
        " per.last_position"
        " FROM per JOIN e AS l ON l.position = per.last_position"
    )
}

#: Only whole sums per currency: see :mod:`projector.projections.summed_rows`.
SUMMED = SummedRows(
    "currency_totals",
    keys=[("currency", "text")],
    sums=[("balance", "numeric"), ("accounts", "bigint"), ("open_accounts", "bigint"),
          ("closed_accounts", "bigint")],
)  # fmt: skip


async def _currencies_of_closed(
    conn: AsyncConnection[Any], events: Sequence[RecordedEvent]
) -> dict[UUID, str]:
    """The currency of every account the batch opens or closes."""
    closing = {r.event.originator_id for r in events if isinstance(r.event, AccountClosed)}
    openings = await account_openings(conn, events, closing)
    return {account_id: opened.currency for account_id, opened in openings.items()}


async def apply(conn: AsyncConnection[Any], events: Sequence[RecordedEvent]) -> None:
    currencies = await _currencies_of_closed(conn, events)

    def currency_of(recorded: RecordedEvent) -> tuple[str] | None:
        event = recorded.event
        if is_movement(event):
            return (event.currency,)
        if isinstance(event, AccountOpened | AccountClosed):
            try:
                return (currencies[event.originator_id],)
            except KeyError:
                raise CannotProject(f"account {event.originator_id} was never opened") from None
        return None

    await SUMMED.add(conn, account_sums(events, currency_of))
