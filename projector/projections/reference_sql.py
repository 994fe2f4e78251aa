"""Building blocks of the projections' ``REFERENCE`` folds: the store's events, decoded in SQL.

A reference fold recomputes a read model from ``ledger_events`` with SQL
aggregates over the stored JSON, never through the Python ``apply`` code it
checks. These helpers only spell the parts every fold repeats: which events,
up to which position, and the literal wire names of event types.

Events stored under a retired wire name (:mod:`shared_kernel.language.upcasting`) are
selected too, their ``topic`` column showing the version they read as, so a
fold compares wire names with the current ones only. A fold reads the stored
JSON's fields itself: a new version that renames or retypes a field a fold
reads must have that fold read the old spelling as well.
"""

from __future__ import annotations

from psycopg import sql

from shared_kernel.language.events import (
    LedgerEvent,
    MoneyDeposited,
    MoneyRefunded,
    MoneyTransferredIn,
    MoneyTransferredOut,
    MoneyWithdrawn,
)
from shared_kernel.language.upcasting import reads_as, wire_names
from shared_kernel.settings import EVENTS_TABLE

#: Events that add their amount to an account's balance, and those that take it away.
INFLOWS: tuple[type[LedgerEvent], ...] = (MoneyDeposited, MoneyTransferredIn, MoneyRefunded)
OUTFLOWS: tuple[type[LedgerEvent], ...] = (MoneyWithdrawn, MoneyTransferredOut)


def _literal(text: str) -> str:
    return sql.Literal(text).as_string(None)


def topic(event_type: type[LedgerEvent]) -> str:
    """The SQL literal of an event type's (current) wire name."""
    return _literal(event_type.TOPIC)


def topics(*event_types: type[LedgerEvent]) -> str:
    """An SQL list of current wire names, for ``topic IN (...)``."""
    return ", ".join(topic(event_type) for event_type in event_types)


def _stored_topic(*event_types: type[LedgerEvent]) -> tuple[str, str]:
    """SQL for ``topic IN (...)`` over every wire name stored for ``event_types``, and the
    expression of the wire name each is read as."""
    names = [name for event_type in event_types for name in wire_names(event_type)]
    retired = [name for name in names if reads_as(name) != name]
    read_as = "topic"
    if retired:
        cases = " ".join(f"WHEN {_literal(n)} THEN {_literal(reads_as(n))}" for n in retired)
        read_as = f"(CASE topic {cases} ELSE topic END)"
    return ", ".join(_literal(name) for name in names), read_as


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
    ``topic`` is the wire name each event is read as.
    """
    stored, read_as = _stored_topic(*event_types)
    return (
        "SELECT notification_id AS position, originator_id AS stream_id,"
        f" originator_version AS version, {read_as} AS topic, {_JSON} AS d"
        f" FROM {EVENTS_TABLE} AS ev CROSS JOIN LATERAL"
        " (SELECT convert_from(ev.state, 'UTF8') AS t) AS x"
        f" WHERE notification_id <= %(up_to)s AND topic IN ({stored})"
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
