"""How an account was opened, for projections keyed by what only the opening says.

Totals per currency and summaries per owner need an account's currency or
owner, which later events do not repeat. Reading it from the event store (not
from another projection's table) keeps each projection rebuildable on its own.

An opening never changes once stored (the store is append-only and it is its
stream's version 1), so the process keeps the openings it has seen, up to
:data:`REMEMBERED`, and asks the store only for the others: a batch of
deposits to accounts seen before costs no query (it was one per batch, and a
tenth of the projector's time).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection

from projector.projections.base import RecordedEvent
from shared_kernel.language.events import AccountOpened, decode_event
from shared_kernel.settings import EVENTS_TABLE

#: Openings kept in memory (about 200 bytes each), the oldest seen forgotten first.
REMEMBERED = 100_000
_seen: dict[UUID, AccountOpened] = {}

_OPENINGS = (
    f"SELECT originator_id, topic, state FROM {EVENTS_TABLE}"
    " WHERE originator_id = ANY(%b) AND originator_version = 1"
)


async def account_openings(
    conn: AsyncConnection[Any], events: Sequence[RecordedEvent], wanted: set[UUID]
) -> dict[UUID, AccountOpened]:
    """The batch's own openings, plus those of ``wanted`` accounts opened before it."""
    openings: dict[UUID, AccountOpened] = {}
    for recorded in events:
        if isinstance(recorded.event, AccountOpened):
            openings[recorded.event.originator_id] = recorded.event
    missing = []
    for account_id in wanted - openings.keys():
        known = _seen.get(account_id)
        if known is None:
            missing.append(account_id)
        else:
            openings[account_id] = known
    if missing:
        cursor = await conn.execute(_OPENINGS, (missing,))
        for account_id, topic, state in await cursor.fetchall():
            opened = decode_event(topic, bytes(state))
            if isinstance(opened, AccountOpened):
                openings[account_id] = opened
    _remember(openings)
    return openings


def _remember(openings: dict[UUID, AccountOpened]) -> None:
    _seen.update(openings)
    while len(_seen) > REMEMBERED:
        del _seen[next(iter(_seen))]
