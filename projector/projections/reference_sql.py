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


#: jsonb cannot hold ``\u0000`` (it refuses the whole document), so a NUL escape
#: (one not itself escaped: preceded by an even run of backslashes) is read as
#: U+FFFD, the way a fixed release stores such text. The projection code
#: refuses to store a NUL, so its stream is blocked and held out of the fold
#: anyway; reading it this way only keeps one such event from failing the fold.
_NUL_ESCAPE = r"'(?<!\\)((?:\\\\)*)\\u0000'"
_JSON = (
    r"(CASE WHEN strpos(x.t, '\u0000') > 0"
    rf" THEN regexp_replace(x.t, {_NUL_ESCAPE}, '\1\\ufffd', 'g') ELSE x.t END)::jsonb"
)


def decoded(*event_types: type[LedgerEvent]) -> str:
    """SELECT of the events of ``event_types`` up to ``%(up_to)s``, their JSON as ``d``.

    Columns: ``position``, ``stream_id``, ``version``, ``topic``, ``d`` (jsonb).
    Held events are left out: those of a stream blocked from a position on
    (``%(held_streams)s`` uuid[] and ``%(held_from)s`` bigint[], pairwise), so
    the fold gives what the projection shows, the stream as of its refused event.
    """
    return (
        "SELECT notification_id AS position, originator_id AS stream_id,"
        f" originator_version AS version, topic, {_JSON} AS d"
        f" FROM {EVENTS_TABLE} AS ev CROSS JOIN LATERAL"
        " (SELECT convert_from(ev.state, 'UTF8') AS t) AS x"
        f" WHERE notification_id <= %(up_to)s AND topic IN ({topics(*event_types)})"
        " AND NOT EXISTS (SELECT FROM unnest(%(held_streams)s::uuid[], %(held_from)s::bigint[])"
        " AS h (stream_id, position)"
        " WHERE h.stream_id = ev.originator_id AND ev.notification_id >= h.position)"
    )


def signed_amount_sql() -> str:
    """SQL for the signed amount of an event row of :func:`decoded` (0 when no money moved)."""
    return (
        f"(CASE WHEN topic IN ({topics(*INFLOWS)}) THEN 1"
        f" WHEN topic IN ({topics(*OUTFLOWS)}) THEN -1 ELSE 0 END)"
        " * COALESCE((d->>'amount')::numeric, 0)"
    )
