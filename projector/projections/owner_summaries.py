"""``owner_summaries``: per owner and currency, the accounts (open, closed) and their balance.

The proof that a read model is one module plus its DDL
(``schema/sql/008_owner_summaries.sql``): registering it in
:mod:`projector.projections` is all the projector needs; a database that was
projected before it existed catches it up from the event store at start-up.

Kept by deltas, like ``currency_totals``: each batch adds up what it changes
per (owner, currency) and adds that to the stored rows in one statement. Only
``AccountOpened`` names the owner, so for an account the batch did not open
the projection reads that account's opening from the event store (a
primary-key lookup of version 1), never another projection's table, so it
rebuilds on its own, in any order with the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from psycopg import AsyncConnection

from projector.projections.base import CannotProject, RecordedEvent
from projector.projections.movements import MOVEMENTS
from projector.projections.openings import account_openings
from projector.projections.reference_sql import decoded, signed_amount_sql, topic
from projector.projections.summed_rows import SummedRows, account_sums
from shared_kernel.language.events import AccountClosed, AccountOpened, LedgerEvent

NAME = "owner_summaries"
VERSION = 1
HANDLES: tuple[type[LedgerEvent], ...] = (AccountOpened, *MOVEMENTS, AccountClosed)
#: It adds up many streams: time travel cannot fold it from one (see base.py).
DESCRIBES: str | None = None
TABLES: tuple[str, ...] = ("owner_summaries",)

#: The independent fold a rebuild is verified against: every event under the
#: owner and currency of its account's opening, counted and summed per pair.
REFERENCE: Mapping[str, str] = {
    "owner_summaries": (
        f"WITH e AS ({decoded(*HANDLES)}),"
        " c AS (SELECT e.*, o.d->>'owner' AS owner, o.d->>'currency' AS currency FROM e"
        f"  JOIN e AS o ON o.stream_id = e.stream_id AND o.topic = {topic(AccountOpened)}),"
        " per AS (SELECT owner, currency,"
        f"  count(*) FILTER (WHERE topic = {topic(AccountOpened)}) AS accounts,"
        f"  count(*) FILTER (WHERE topic = {topic(AccountClosed)}) AS closed,"
        f"  sum({signed_amount_sql()}) AS balance,"
        "  max(position) AS last_position FROM c GROUP BY owner, currency)"
        " SELECT per.owner, per.currency::char(3), per.accounts, per.accounts - per.closed,"
        " per.closed, per.balance::numeric(39, 0), (l.d->>'timestamp')::timestamptz,"
        " per.last_position"
        " FROM per JOIN e AS l ON l.position = per.last_position"
    )
}

#: Sums per owner and currency: see :mod:`projector.projections.summed_rows`.
SUMMED = SummedRows(
    "owner_summaries",
    keys=[("owner", "text"), ("currency", "text")],
    sums=[("accounts", "bigint"), ("open_accounts", "bigint"), ("closed_accounts", "bigint"),
          ("balance", "numeric")],
)  # fmt: skip


async def apply(conn: AsyncConnection[Any], events: Sequence[RecordedEvent]) -> None:
    openings = await account_openings(conn, events, {r.event.originator_id for r in events})

    def owner_and_currency(recorded: RecordedEvent) -> tuple[str, str]:
        opened = openings.get(recorded.event.originator_id)
        if opened is None:
            raise CannotProject(f"account {recorded.event.originator_id} was never opened")
        return (opened.owner, opened.currency)

    await SUMMED.add(conn, account_sums(events, owner_and_currency))
