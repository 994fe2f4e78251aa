"""How an account was opened, for projections keyed by what only the opening says.

Totals per currency and summaries per owner need an account's currency or
owner, which later events do not repeat. Reading it from the event store (not
from another projection's table) keeps each projection rebuildable on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection

from projector.projections.base import RecordedEvent
from shared_kernel.language.events import AccountOpened, decode_event
from shared_kernel.settings import EVENTS_TABLE

_OPENINGS = (
    f"SELECT originator_id, topic, state FROM {EVENTS_TABLE}"
    " WHERE originator_id = ANY(%s) AND originator_version = 1"
)


async def account_openings(
    conn: AsyncConnection[Any], events: Sequence[RecordedEvent], wanted: set[UUID]
) -> dict[UUID, AccountOpened]:
    """The batch's own openings, plus those of ``wanted`` accounts opened before it."""
    openings: dict[UUID, AccountOpened] = {}
    for recorded in events:
        if isinstance(recorded.event, AccountOpened):
            openings[recorded.event.originator_id] = recorded.event
    missing = wanted - openings.keys()
    if missing:
        cursor = await conn.execute(_OPENINGS, (list(missing),))
        for account_id, topic, state in await cursor.fetchall():
            opened = decode_event(topic, bytes(state))
            if isinstance(opened, AccountOpened):
                openings[account_id] = opened
    return openings
