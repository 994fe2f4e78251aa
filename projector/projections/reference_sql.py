"""Building blocks of the projections' ``REFERENCE`` folds: the store's events, decoded in SQL.

A reference fold recomputes a read model from ``ledger_events`` with SQL
aggregates over the stored JSON, never through the Python ``apply`` code it
checks. These helpers only spell the parts every fold repeats: which events,
up to which position, and the literal wire names of event types.
"""

from __future__ import annotations

from shared_kernel.events import (
    LedgerEvent,
    MoneyDeposited,
    MoneyRefunded,
    MoneyTransferredIn,
    MoneyTransferredOut,
    MoneyWithdrawn,
)
from shared_kernel.settings import EVENTS_TABLE

#: Events that add their amount to an account's balance, and those that take it away.
INFLOWS: tuple[type[LedgerEvent], ...] = (MoneyDeposited, MoneyTransferredIn, MoneyRefunded)
OUTFLOWS: tuple[type[LedgerEvent], ...] = (MoneyWithdrawn, MoneyTransferredOut)


def topic(event_type: type[LedgerEvent]) -> str:
    """The SQL literal of an event type's wire name."""
    return "'" + event_type.TOPIC.replace("'", "''") + "'"


def topics(*event_types: type[LedgerEvent]) -> str:
    """An SQL list of wire names, for ``topic IN (...)``."""
    return ", ".join(topic(event_type) for event_type in event_types)


def decoded(*event_types: type[LedgerEvent]) -> str:
    """SELECT of the events of ``event_types`` up to ``%(up_to)s``, their JSON as ``d``.

    Columns: ``position``, ``stream_id``, ``version``, ``topic``, ``d`` (jsonb).
    """
    return (
        "SELECT notification_id AS position, originator_id AS stream_id,"
        " originator_version AS version, topic, convert_from(state, 'UTF8')::jsonb AS d"
        f" FROM {EVENTS_TABLE}"
        f" WHERE notification_id <= %(up_to)s AND topic IN ({topics(*event_types)})"
    )


def signed_amount_sql() -> str:
    """SQL for the signed amount of an event row of :func:`decoded` (0 when no money moved)."""
    return (
        f"(CASE WHEN topic IN ({topics(*INFLOWS)}) THEN 1"
        f" WHEN topic IN ({topics(*OUTFLOWS)}) THEN -1 ELSE 0 END)"
        " * COALESCE((d->>'amount')::numeric, 0)"
    )
