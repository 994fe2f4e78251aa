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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from shared_kernel.settings import PROJECTION_CHANNEL

_ENSURE = (
    "INSERT INTO projection_checkpoints (projection, position, version)"
    " SELECT name, 0, version FROM unnest(%s::text[], %s::integer[]) AS t (name, version)"
    " ON CONFLICT (projection) DO NOTHING"
)
_SELECT = (
    "SELECT projection, position, last_event_at, version FROM projection_checkpoints"
    " WHERE projection = ANY(%s) ORDER BY projection"
)
#: A projection that has applied nothing takes the version of the code about to apply.
_ADOPT = (
    "UPDATE projection_checkpoints AS c SET version = t.version, updated_at = now()"
    " FROM unnest(%s::text[], %s::integer[]) AS t (name, version)"
    " WHERE c.projection = t.name AND c.position = 0 AND c.version <> t.version"
)
#: Advances the checkpoints and queues the NOTIFY (sent at commit) in one statement.
_ADVANCE = (
    "WITH advanced AS ("
    " INSERT INTO projection_checkpoints (projection, position, last_event_at)"
    " SELECT unnest(%(names)s::text[]), %(position)s::bigint, %(at)s::timestamptz"
    # GREATEST: a batch that catches up a projection added later passes positions
    # the others applied long ago; it must never move THEIR checkpoints back.
    " ON CONFLICT (projection) DO UPDATE"
    " SET position = GREATEST(projection_checkpoints.position, EXCLUDED.position),"
    " last_event_at = GREATEST(EXCLUDED.last_event_at, projection_checkpoints.last_event_at),"
    " updated_at = now() RETURNING 1)"
    " SELECT pg_notify(%(channel)s, %(position)s::text)"
)


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


async def ensure_checkpoints(
    conn: AsyncConnection[Any], names: Sequence[str], versions: Mapping[str, int] | None = None
) -> None:
    """Give every registered projection a row, so ``FOR UPDATE`` always has one to lock."""
    chosen = versions or {}
    await conn.execute(_ENSURE, (list(names), [chosen.get(name, 1) for name in names]))


async def read_checkpoints(
    conn: AsyncConnection[Any],
    names: Sequence[str],
    *,
    lock: bool = False,
    versions: Mapping[str, int] | None = None,
) -> Checkpoints:
    """The checkpoints of ``names``; with ``versions`` (the code's), which of them are stale."""
    cursor = await conn.execute(_SELECT + (" FOR UPDATE" if lock else ""), (list(names),))
    rows = await cursor.fetchall()
    found = {name: int(position) for name, position, _, _ in rows}
    times = [at for _, _, at, _ in rows if at is not None]
    recorded = {name: int(version) for name, _, _, version in rows}
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
    conn: AsyncConnection[Any], names: Sequence[str], versions: Mapping[str, int] | None = None
) -> Checkpoints:
    """Read and lock every checkpoint row until the transaction ends, creating missing rows.

    A missing row cannot be locked, so two transactions could both start from
    0; creating it first makes the second wait for the first and then read
    the first's committed position. A row at 0 takes the code's version here.
    """
    checkpoints = await read_checkpoints(conn, names, lock=True, versions=versions)
    if not checkpoints.complete:
        await ensure_checkpoints(conn, names, versions)
        checkpoints = await read_checkpoints(conn, names, lock=True, versions=versions)
    if checkpoints.adoptable and versions:
        await adopt_versions(conn, versions)
        checkpoints = await read_checkpoints(conn, names, lock=True, versions=versions)
    return checkpoints


async def adopt_versions(conn: AsyncConnection[Any], versions: Mapping[str, int]) -> None:
    """Record the code's version for every projection that has applied nothing yet."""
    await conn.execute(_ADOPT, (list(versions), list(versions.values())))


async def advance_checkpoints(
    conn: AsyncConnection[Any],
    names: Sequence[str],
    position: int,
    last_event_at: datetime | None,
) -> None:
    """Move every projection up to ``position`` (none back) and tell LISTENers at commit."""
    await conn.execute(
        _ADVANCE,
        {"names": list(names), "position": position, "at": last_event_at,
         "channel": PROJECTION_CHANNEL},
    )  # fmt: skip
