"""``projection_checkpoints``: how far each projection has applied the log.

Rows are locked (``FOR UPDATE``) at the start of every batch transaction, so
two projector processes (or a catch-up beside the stream) never apply the
same positions at once: the second waits, then sees the first's checkpoint
and skips what it already did.

Each row also records the ``version`` of the projection code that built the
projection's tables. A projection whose code declares another version is
*stale*: batches leave it alone (no new rows in an old shape), its checkpoint
stays where the old code left it, and a rebuild brings it back (see
:mod:`projector.rebuild`). A row still at position 0 has built nothing, so it
simply takes the code's version.

With several partitions of the log (``STREAM_PARTITIONS``) each projection has
one row per partition: a partition's projector applies that partition's events
and moves that partition's rows only. A projection has reached position N once
all its rows have (readers take the lowest). See :func:`lay_out_partitions` for
what happens to the rows when the number of partitions changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from projector.projections.queued_writes import QueuedWrites
from shared_kernel.checkpoint_news import checkpoints_advanced
from shared_kernel.settings import PROJECTION_CHANNEL

_ENSURE = (
    "INSERT INTO projection_checkpoints (projection, partition, position, version)"
    " SELECT name, p, 0, version FROM unnest(%s::text[], %s::integer[]) AS t (name, version),"
    " generate_series(0, %s - 1) AS p"
    " ON CONFLICT (projection, partition) DO NOTHING"
)
#: The checkpoint rows of %(names)s in %(partition)s (NULL: every partition).
SELECT_CHECKPOINTS = (
    "SELECT projection, position, last_event_at, version FROM projection_checkpoints"
    " WHERE projection = ANY(%(names)s)"
    " AND (%(partition)s::smallint IS NULL OR partition = %(partition)s::smallint)"
    " ORDER BY projection, partition"
)
#: Rows of a layout with another number of partitions than the settings name.
_LAYOUT = (
    "SELECT projection, array_agg(partition ORDER BY partition), min(position), max(position)"
    " FROM projection_checkpoints WHERE projection = ANY(%s) GROUP BY projection"
)
_RELAY_OUT = (
    "WITH gone AS (DELETE FROM projection_checkpoints WHERE projection = %(name)s"
    " AND partition >= %(partitions)s)"
    " INSERT INTO projection_checkpoints (projection, partition, position, last_event_at, version)"
    " SELECT c.projection, p, c.position, c.last_event_at, c.version"
    " FROM (SELECT * FROM projection_checkpoints WHERE projection = %(name)s"
    "  ORDER BY partition LIMIT 1) AS c, generate_series(0, %(partitions)s - 1) AS p"
    " ON CONFLICT (projection, partition) DO NOTHING"
)
#: A projection that has applied nothing takes the version of the code about to apply.
_ADOPT = (
    "UPDATE projection_checkpoints AS c SET version = t.version, updated_at = now()"
    " FROM unnest(%s::text[], %s::integer[]) AS t (name, version)"
    " WHERE c.projection = t.name AND c.position = 0 AND c.version <> t.version"
)
#: Advances the checkpoints (a ``WITH`` item of the statement that queues the NOTIFY,
#: sent at commit, and sends the batch's queued row writes).
_ADVANCED = (
    "INSERT INTO projection_checkpoints (projection, partition, position, last_event_at)"
    " SELECT unnest(%(names)s::text[]), %(partition)s, %(position)s::bigint, %(at)s::timestamptz"
    # GREATEST: a batch that catches up a projection added later passes positions
    # the others applied long ago; it must never move THEIR checkpoints back.
    " ON CONFLICT (projection, partition) DO UPDATE"
    " SET position = GREATEST(projection_checkpoints.position, EXCLUDED.position),"
    " last_event_at = GREATEST(EXCLUDED.last_event_at, projection_checkpoints.last_event_at),"
    " updated_at = now() RETURNING 1"
)
_NOTIFY = "SELECT pg_notify(%(channel)s, %(news)s)"


@dataclass(frozen=True, slots=True)
class Checkpoints:
    """The checkpoint of each projection; they move together, but a new one starts at 0."""

    positions: dict[str, int]
    last_event_at: datetime | None
    complete: bool = True
    """False when a projection has no row yet (nothing to lock for it)."""
    stale: frozenset[str] = field(default_factory=frozenset)
    """Projections whose tables an other version of their code built (see the module doc)."""
    adoptable: bool = False
    """True when a row at position 0 records another version than the code's."""

    @property
    def live(self) -> dict[str, int]:
        """The checkpoints of the projections that are not stale."""
        return {name: at for name, at in self.positions.items() if name not in self.stale}

    @property
    def floor(self) -> int:
        """The lowest live checkpoint: every position at or below it is applied everywhere."""
        return min(self.live.values(), default=0)


class PartitionLayoutChanged(RuntimeError):
    """Checkpoints split over another number of partitions, not all at one position."""


async def ensure_checkpoints(
    conn: AsyncConnection[Any],
    names: Sequence[str],
    versions: Mapping[str, int] | None = None,
    *,
    partitions: int = 1,
) -> None:
    """Give every projection a row per partition, so ``FOR UPDATE`` always has one to lock."""
    chosen = versions or {}
    await conn.execute(_ENSURE, (list(names), [chosen.get(name, 1) for name in names], partitions))


async def lay_out_partitions(
    conn: AsyncConnection[Any],
    names: Sequence[str],
    versions: Mapping[str, int] | None,
    partitions: int,
) -> list[str]:
    """Give every projection exactly the rows of ``partitions``; returns those re-laid.

    Rows of another layout can only be carried over when they all stand at one
    position X: then every event up to X is applied whatever partition it is
    in now, so every new row starts at X. Rows at different positions cannot
    (events between them were applied in some old partitions and not others,
    and the new partitions mix them): the projector refuses to start, naming
    the way out (go back to the old number until the partitions meet, or rebuild).
    One partition's rows always carry over, so 1 -> N is never refused.
    """
    async with conn.transaction():
        await conn.execute("LOCK TABLE projection_checkpoints IN SHARE ROW EXCLUSIVE MODE")
        cursor = await conn.execute(_LAYOUT, (list(names),))
        relaid = []
        for name, present, lowest, highest in await cursor.fetchall():
            if list(present) == list(range(partitions)):
                continue
            if lowest != highest:
                msg = (
                    f"projection {name!r} has checkpoints for partitions {list(present)} at"
                    f" positions {lowest}..{highest}, but STREAM_PARTITIONS is {partitions}:"
                    " set STREAM_PARTITIONS back until the projector has caught up (the"
                    " partitions then meet at the relay's position), or rebuild the projection"
                )
                raise PartitionLayoutChanged(msg)
            await conn.execute(_RELAY_OUT, {"name": name, "partitions": partitions})
            relaid.append(str(name))
        await ensure_checkpoints(conn, names, versions, partitions=partitions)
    return relaid


async def read_checkpoints(
    conn: AsyncConnection[Any],
    names: Sequence[str],
    *,
    lock: bool = False,
    versions: Mapping[str, int] | None = None,
    partition: int | None = None,
) -> Checkpoints:
    """The checkpoints of ``names`` in ``partition`` (None: the lowest over all partitions).

    With ``versions`` (the code's), which of them are stale.
    """
    cursor = await conn.execute(
        SELECT_CHECKPOINTS + (" FOR UPDATE" if lock else ""),
        {"names": list(names), "partition": partition},
    )
    return checkpoints_of(await cursor.fetchall(), names, versions)


def checkpoints_of(
    rows: Sequence[Sequence[Any]], names: Sequence[str], versions: Mapping[str, int] | None
) -> Checkpoints:
    """:class:`Checkpoints` from rows of ``(projection, position, last_event_at, version)``."""
    found: dict[str, int] = {}
    recorded: dict[str, int] = {}
    for name, position, _, version in rows:
        found[name] = min(int(position), found.get(name, int(position)))
        recorded[name] = max(int(version), recorded.get(name, int(version)))
    times = [at for _, _, at, _ in rows if at is not None]
    expected = versions or {}
    differing = {name for name, at in recorded.items() if expected.get(name, at) != at}
    return Checkpoints(
        positions={name: found.get(name, 0) for name in names},
        last_event_at=max(times, default=None),
        complete=len(found) == len(names),
        stale=frozenset(name for name in differing if found[name] > 0),
        adoptable=any(found[name] == 0 for name in differing),
    )


async def lock_checkpoints(
    conn: AsyncConnection[Any],
    names: Sequence[str],
    versions: Mapping[str, int] | None = None,
    *,
    partition: int | None = None,
    partitions: int = 1,
) -> Checkpoints:
    """Read and lock the checkpoint rows of ``partition`` (None: all) until the transaction ends.

    A missing row cannot be locked, so two transactions could both start from
    0; creating it first makes the second wait for the first and then read
    the first's committed position. A row at 0 takes the code's version here.
    """
    async def read() -> Checkpoints:
        return await read_checkpoints(
            conn, names, lock=True, versions=versions, partition=partition
        )

    checkpoints = await read()
    if not checkpoints.complete:
        await ensure_checkpoints(conn, names, versions, partitions=partitions)
        checkpoints = await read()
    if checkpoints.adoptable and versions:
        await adopt_versions(conn, versions)
        checkpoints = await read()
    return checkpoints


async def adopt_versions(conn: AsyncConnection[Any], versions: Mapping[str, int]) -> None:
    """Record the code's version for every projection that has applied nothing yet."""
    await conn.execute(_ADOPT, (list(versions), list(versions.values())))


async def advance_checkpoints(
    conn: AsyncConnection[Any],
    names: Sequence[str],
    position: int,
    last_event_at: datetime | None,
    *,
    partition: int = 0,
    partitions: int,
    blocked: bool,
    writes: QueuedWrites | None = None,
) -> None:
    """Move ``partition``'s rows up to ``position`` (none back); tell LISTENers at commit
    what moved (:mod:`shared_kernel.checkpoint_news`); ``blocked``: the batch blocked a stream.

    The batch's queued ``writes`` go in the same statement, a round trip fewer each.
    """
    news = checkpoints_advanced(
        position, names, partition=partition, partitions=partitions, blocked=blocked
    )
    statement, params = (writes or QueuedWrites()).statement(
        {"advanced": _ADVANCED}, _NOTIFY,
        {"names": list(names), "position": position, "at": last_event_at,
         "partition": partition, "channel": PROJECTION_CHANNEL, "news": news},
    )  # fmt: skip
    await conn.execute(statement, params)
