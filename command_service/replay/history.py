"""One stream of the event store as the command side recorded it, read for a replay.

Events come in version order from ``ledger_events`` through a server-side
cursor, so a stream of millions of events is printed as it is read rather
than held in memory. Snapshots come from ``ledger_snapshots`` and are decoded
by the event store's own mapper, exactly as the repository decodes them when
the command service loads an account.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from psycopg import Connection

from command_service import aggregate_types  # noqa: F401  (every aggregate type registered)
from command_service.bus.aggregates import AggregateType, type_of
from command_service.event_store import AccountSnapshot, MsgspecMapper, UnusedTranscoder
from shared_kernel.language.events import LedgerEvent, decode_event
from shared_kernel.settings import EVENTS_TABLE, SNAPSHOTS_TABLE

#: The name of the registered aggregate type whose stream is replayed ("account", ...).
StreamKind = str

_SUMMARY = f"SELECT count(*), max(originator_version) FROM {EVENTS_TABLE} WHERE originator_id = %s"
_EVENTS = (
    f"SELECT originator_version, notification_id, topic, state FROM {EVENTS_TABLE}"
    " WHERE originator_id = %s AND originator_version <= %s ORDER BY originator_version"
)
_LATEST_SNAPSHOT = (
    f"SELECT originator_version, topic, state FROM {SNAPSHOTS_TABLE}"
    " WHERE originator_id = %s AND originator_version <= %s"
    " ORDER BY originator_version DESC LIMIT 1"
)
#: Rows fetched per round trip by the server-side cursor.
_ITERSIZE = 2_000


class UnknownStream(LookupError):
    """No event in the store has this stream id."""


class UnreadableEvent(ValueError):
    """A stored event this code cannot decode: the replay stops there."""


@dataclass(frozen=True, slots=True)
class StreamSummary:
    stream_id: UUID
    events: int
    last_version: int


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One recorded event of the stream: its version, global position and decoded event."""

    version: int
    position: int
    topic: str
    event: LedgerEvent


@dataclass(frozen=True, slots=True)
class SnapshotRow:
    """The latest snapshot at or below a version: decoded, or the reason it is not."""

    version: int
    snapshot: AccountSnapshot | None
    error: str | None = None


def kind_of(event: LedgerEvent) -> AggregateType:
    """The registered aggregate type whose stream ``event`` belongs to."""
    return type_of(event)


def summary(conn: Connection[Any], stream_id: UUID) -> StreamSummary:
    """How many events the stream has; raises :class:`UnknownStream` when none."""
    row = conn.execute(_SUMMARY, (stream_id,)).fetchone()
    if row is None or not row[0]:
        raise UnknownStream(f"no stream {stream_id} in the event store")
    return StreamSummary(stream_id, int(row[0]), int(row[1]))


def stream_events(
    conn: Connection[Any], stream_id: UUID, up_to_version: int
) -> Iterator[StreamEvent]:
    """The stream's events up to ``up_to_version``, in version order, decoded.

    Runs in its own transaction (a server-side cursor needs one); raises
    :class:`UnreadableEvent` at the first event that does not decode.
    """
    with conn.transaction(), conn.cursor(name="replay_stream") as cursor:
        cursor.itersize = _ITERSIZE
        cursor.execute(_EVENTS, (stream_id, up_to_version))
        for version, position, topic, state in cursor:
            try:
                event = decode_event(topic, bytes(state))
            except Exception as error:
                raise UnreadableEvent(
                    f"v{version} at position {position} ({topic}) cannot be decoded: {error}"
                ) from error
            yield StreamEvent(int(version), int(position), topic, event)


def latest_snapshot(
    conn: Connection[Any], stream_id: UUID, up_to_version: int
) -> SnapshotRow | None:
    """The snapshot the repository would start from when loading ``up_to_version``."""
    row = conn.execute(_LATEST_SNAPSHOT, (stream_id, up_to_version)).fetchone()
    if row is None:
        return None
    version, topic, state = int(row[0]), str(row[1]), bytes(row[2])
    stored = StoredEvent(
        originator_id=stream_id, originator_version=version, topic=topic, state=state
    )
    try:
        decoded = MsgspecMapper(transcoder=UnusedTranscoder()).to_domain_event(stored)
    except Exception as error:
        return SnapshotRow(version, None, f"{type(error).__name__}: {error}")
    if not isinstance(decoded, AccountSnapshot):
        return SnapshotRow(version, None, f"topic {topic} is not a snapshot of an account")
    return SnapshotRow(version, decoded)
