"""Fold one stream's events up to a position into scratch copies of the read models.

What did the read models say for account X when the log stood at position N?
The projector's tables only hold the present, so the answer is recomputed:
inside one transaction, every table of the projections that describe the
stream gets a TEMP twin (``CREATE TEMP TABLE t (LIKE <live t> INCLUDING ALL)
ON COMMIT DROP``: same columns, checks, keys and indexes). ``pg_temp`` is put
first on the transaction's ``search_path``, so the projections' own ``apply``
code, which names its tables unqualified, writes the twins; the stream's
events at or below N are fed through it as the projector feeds them, and the
caller reads the twins with the same unqualified SQL it reads the live
tables with. The transaction is then rolled back: the live tables are never
written, and the twins vanish.

The projections used describe one stream on their own: ``account_balances``
and ``account_transactions`` for an account, ``transfers`` for a transfer.
Each reads only its own table, so the stream's events are all they need
(``currency_totals`` and ``owner_summaries`` add up every account, which one
stream cannot answer). An event a projection refuses blocks the stream in
that projection, as the projector does (:mod:`projector.isolation`): the
projection applies none of its later events, and the fold reports the
refusal, so callers can say the state is incomplete instead of showing rows
that silently lack an event. An event no code here can decode blocks it in
every projection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import msgspec
from psycopg import AsyncConnection, sql

from projector.batch import recorded_event
from projector.isolation import describe, try_apply
from projector.projections import PROJECTIONS, Projection, RecordedEvent
from shared_kernel.event_log import LogEntry
from shared_kernel.language.events import decode_event
from shared_kernel.settings import EVENTS_TABLE

#: The kind of a stream, as the projections that describe one stream name it
#: (``DESCRIBES``: ``"account"``, ``"transfer"``, ``"hold"``, ...).
StreamKind = str


def projections_describing(kind: str) -> list[Projection]:
    """The registered projections that describe one stream of ``kind`` on their own."""
    return [projection for projection in PROJECTIONS if kind == projection.DESCRIBES]


def kind_of(first: LogEntry) -> StreamKind | None:
    """The kind of the stream whose first event is ``first``: what a projection that
    describes single streams and reads that event says (None when none does)."""
    try:
        event_type = type(decode_event(first.topic, first.data))
    except (msgspec.MsgspecError, ValueError):
        return None  # an unreadable first event: no projection could describe the stream
    for projection in PROJECTIONS:
        kind: str | None = projection.DESCRIBES
        if kind is not None and event_type in projection.HANDLES:
            return kind
    return None


#: The next chunk of a stream, walked along its primary key by version (a stream's
#: positions rise with its versions), so each chunk reads its own rows only; ordered
#: by position, every chunk would read or sort the stream's whole history again.
SELECT_STREAM = (
    "SELECT notification_id, originator_id, originator_version, topic, state"
    f" FROM {EVENTS_TABLE} WHERE originator_id = %s AND originator_version > %s"
    " AND notification_id <= %s ORDER BY originator_version LIMIT %s"
)
_FIRST_POSITION = f"SELECT min(notification_id) FROM {EVENTS_TABLE} WHERE originator_id = %s"
_LIVE_TABLE = (
    "SELECT n.nspname, c.relname FROM pg_class AS c"
    " JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)"
)
_RESOLVES_TO_TEMP = "SELECT to_regclass(%s)::oid = to_regclass(%s)::oid"
#: Events read, and applied, per round trip.
CHUNK = 2_000


class StreamNotFound(LookupError):
    """The stream has no event at or below the position (or none at all)."""

    def __init__(self, stream_id: UUID, position: int, first_position: int | None) -> None:
        if first_position is None:
            text = f"no stream {stream_id} in the event store"
        else:
            text = (
                f"stream {stream_id} has no event at or below position {position}"
                f" (its first is at position {first_position})"
            )
        super().__init__(text)
        self.stream_id = stream_id
        self.position = position
        self.first_position = first_position


@dataclass(frozen=True, slots=True)
class Refused:
    """The event a projection refused: the projector blocks the stream there for it."""

    position: int
    error: str
    projection: str


@dataclass
class ScratchFold:
    """What was folded into the scratch tables; read them on the same connection."""

    stream_id: UUID
    kind: StreamKind
    as_of: int
    projections: tuple[str, ...]
    last_position: int = 0
    blocked: dict[str, Refused] = field(default_factory=dict)
    """Per projection, the event it refused; it applied none of the stream's later ones."""
    applied: set[int] = field(default_factory=set)
    """Positions at least one projection applied."""

    @property
    def events(self) -> int:
        return len(self.applied)

    @property
    def complete(self) -> bool:
        """True when every projection applied every event of the stream it handles."""
        return not self.blocked

    @property
    def refused(self) -> list[Refused]:
        return sorted(self.blocked.values(), key=lambda refused: refused.position)

    def block(self, refused: Refused) -> None:
        self.blocked.setdefault(refused.projection, refused)


@asynccontextmanager
async def scratch_read_models(
    conn: AsyncConnection[Any], stream_id: UUID, as_of: int
) -> AsyncIterator[ScratchFold]:
    """Scratch read models of ``stream_id`` as of position ``as_of``, until the block ends.

    Raises :class:`StreamNotFound` when the stream has no event at or below
    ``as_of``. Everything happens in a transaction (a savepoint when ``conn``
    is already in one) that is always rolled back.
    """
    async with conn.transaction(force_rollback=True):
        first = await _read(conn, stream_id, as_of=as_of, after=None)
        if not first:
            cursor = await conn.execute(_FIRST_POSITION, (stream_id,))
            row = await cursor.fetchone()
            raise StreamNotFound(stream_id, as_of, row[0] if row else None)
        kind = kind_of(first[0])
        if kind is None:
            msg = f"no projection describes stream {stream_id} on its own ({first[0].topic})"
            raise LookupError(msg)
        projections = projections_describing(kind)
        names = tuple(projection.NAME for projection in projections)
        await _create_twins(conn, [table for p in projections for table in p.TABLES])
        fold = ScratchFold(stream_id, kind, as_of, names)
        entries = first
        while entries:
            await _apply(conn, projections, entries, fold)
            fold.last_position = entries[-1].position
            if len(entries) < CHUNK:
                break
            entries = await _read(conn, stream_id, as_of=as_of, after=entries[-1])
        yield fold


async def _read(
    conn: AsyncConnection[Any], stream_id: UUID, *, as_of: int, after: LogEntry | None
) -> list[LogEntry]:
    """The stream's next chunk after the entry ``after`` (from its start when None)."""
    after_version, previous = (after.version, after.position) if after else (0, 0)
    cursor = await conn.execute(SELECT_STREAM, (stream_id, after_version, as_of, CHUNK))
    entries: list[LogEntry] = []
    for position, originator_id, version, topic, state in await cursor.fetchall():
        entries.append(LogEntry(position, previous, originator_id, version, topic, bytes(state)))
        previous = position
    return entries


async def _create_twins(conn: AsyncConnection[Any], tables: Sequence[str]) -> None:
    """A TEMP twin of each live table, found first by unqualified names from now on."""
    live: dict[str, sql.Composable] = {}
    for table in tables:
        cursor = await conn.execute(_LIVE_TABLE, (table,))
        row = await cursor.fetchone()
        if row is None:
            msg = f"read-model table {table!r} does not exist (is the schema migrated?)"
            raise LookupError(msg)
        live[table] = sql.Identifier(row[0], row[1])
    await conn.execute(
        "SELECT set_config('search_path', 'pg_temp, ' || current_setting('search_path'), true)"
    )
    for table, source in live.items():
        await conn.execute(
            sql.SQL("CREATE TEMP TABLE {} (LIKE {} INCLUDING ALL) ON COMMIT DROP").format(
                sql.Identifier(table), source
            )
        )
        # Belt and braces: never let the projections' SQL reach a live table.
        cursor = await conn.execute(_RESOLVES_TO_TEMP, (table, f"pg_temp.{table}"))
        row = await cursor.fetchone()
        if not (row and row[0]):
            msg = f"{table!r} does not resolve to its scratch twin; refusing to write"
            raise RuntimeError(msg)


async def _apply(
    conn: AsyncConnection[Any],
    projections: Sequence[Projection],
    entries: Sequence[LogEntry],
    fold: ScratchFold,
) -> None:
    """Apply a chunk as the projector would, each projection up to the event it refuses."""
    recorded: list[RecordedEvent] = []
    undecodable: tuple[int, str] | None = None
    for entry in entries:
        try:
            recorded.append(recorded_event(entry))
        except (msgspec.MsgspecError, ValueError) as error:
            undecodable = (entry.position, describe(error))
            break  # no projection applies anything of the stream after it
    for projection in projections:
        if projection.NAME not in fold.blocked:
            mine = [one for one in recorded if isinstance(one.event, projection.HANDLES)]
            fold.applied.update(await _apply_until_refused(conn, projection, mine, fold))
    if undecodable is not None:
        for projection in projections:
            fold.block(Refused(*undecodable, projection.NAME))


async def _apply_until_refused(
    conn: AsyncConnection[Any],
    projection: Projection,
    events: Sequence[RecordedEvent],
    fold: ScratchFold,
) -> list[int]:
    """The positions ``projection`` applied: all at once, else one by one up to a refusal."""
    if not events:
        return []
    if await try_apply(conn, projection, events) is None:
        return [one.position for one in events]
    applied: list[int] = []
    for one in events:
        error = await try_apply(conn, projection, [one])
        if error is not None:
            reason = f"{projection.NAME}: {describe(error)}"
            fold.block(Refused(one.position, reason, projection.NAME))
            break
        applied.append(one.position)
    return applied
