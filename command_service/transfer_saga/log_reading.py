"""The part of the event log the transfer saga follows: the transfer events it acts on.

Most of the log is deposits, withdrawals and the saga's own legs, which ask
nothing of it. So PostgreSQL filters by topic and sends only each actionable
event's position, transfer and version (never the payload). The wire names
are literals in the statement, so the planner matches the partial index that
holds only these events (``schema/sql/012_transfer_steps_index.sql``): a
pass over a long run of other events reads none of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection, sql

from shared_kernel.language.events import TransferDebited, TransferRequested
from shared_kernel.language.upcasting import wire_names
from shared_kernel.settings import EVENTS_TABLE

#: Log events after which a transfer has a step to take.
ACTIONABLE_TOPICS: tuple[str, ...] = (
    *wire_names(TransferRequested), *wire_names(TransferDebited),
)  # fmt: skip

_TOPIC_LITERALS = ", ".join(sql.Literal(topic).as_string(None) for topic in ACTIONABLE_TOPICS)
ACTIONABLE = (
    f"SELECT notification_id, originator_id, originator_version FROM {EVENTS_TABLE}"
    f" WHERE notification_id > %s AND notification_id <= %s AND topic IN ({_TOPIC_LITERALS})"
    " ORDER BY notification_id LIMIT %s"
)


@dataclass(frozen=True, slots=True)
class Actionable:
    """A transfer event at ``position`` that calls for the transfer's next step."""

    position: int
    transfer_id: UUID
    version: int


async def actionable_events(
    conn: AsyncConnection[Any], after: int, up_to: int, limit: int
) -> list[Actionable]:
    """Up to ``limit`` actionable events in positions (``after``, ``up_to``], in log order."""
    cursor = await conn.execute(ACTIONABLE, (after, up_to, limit))
    return [
        Actionable(int(p), transfer_id, int(v)) for p, transfer_id, v in await cursor.fetchall()
    ]
