"""Which partitions this projector process applies: leases held as PostgreSQL advisory locks.

Each partition of the log must be applied by one process at a time and in
order (a statement line needs the balance before it). A Redis consumer group
cannot promise that (it hands each *entry* to one consumer, so two processes
would split one partition); a session-level advisory lock can: PostgreSQL
releases it the moment the session ends, including when the process is killed
with -9 (its socket closes), with no timeout to tune, and the projector
already depends on PostgreSQL for every batch. The checkpoint rows stay the
real guard: were two processes ever to apply one partition at once (a lease
connection lost while a batch still runs), their batches serialise on the
rows' ``FOR UPDATE`` and the second skips what the first applied.

Balance: every process also holds a *member* lock (one of :data:`MAX_MEMBERS`
slots), counts the members in ``pg_locks`` and aims for ``ceil(partitions /
members)`` partitions: a process releases its extras when another joins and
takes free ones when one leaves, so work moves within a balance period or two.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from shared_kernel.advisory_locks import advisory_lock_class

#: Most projector processes that can share one log's partitions.
MAX_MEMBERS = 256
LEASE_APPLICATION_NAME = "projector.partition_leases"

_TRY = "SELECT pg_try_advisory_lock(%s, %s)"
_RELEASE = "SELECT pg_advisory_unlock(%s, %s)"
_HOLDERS = (
    "SELECT objid::bigint, pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND objsubid = 2 AND classid = %s::bigint::oid"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def lock_class(stream_name: str, what: str) -> int:
    """The first key of a (class, number) advisory lock, per log and kind of lease."""
    return advisory_lock_class(f"ledger-projector-{what}:{stream_name}")


class PartitionLeases:
    """The advisory locks of one projector process, all on one dedicated session."""

    def __init__(self, conn: AsyncConnection[Any], stream_name: str) -> None:
        self._conn = conn
        self._members = lock_class(stream_name, "members")
        self._partitions = lock_class(stream_name, "partitions")
        self.member: int | None = None

    async def join(self) -> int:
        """Take a free member slot; counts this process in every member's share."""
        for slot in range(MAX_MEMBERS):
            if await self._try(self._members, slot):
                self.member = slot
                return slot
        msg = f"all {MAX_MEMBERS} projector member slots are taken"
        raise RuntimeError(msg)

    async def members(self) -> int:
        """How many projector processes share the partitions now (this one included)."""
        return max(1, len(await self._holders(self._members)))

    async def holders(self) -> dict[int, int]:
        """Each leased partition and the backend pid of the session holding it."""
        return await self._holders(self._partitions)

    async def take(self, partition: int) -> bool:
        """Lease ``partition`` if nobody holds it; never waits."""
        return await self._try(self._partitions, partition)

    async def release(self, partition: int) -> None:
        await self._conn.execute(_RELEASE, (self._partitions, partition))

    async def _try(self, key: int, number: int) -> bool:
        cursor = await self._conn.execute(_TRY, (key, number))
        row = await cursor.fetchone()
        return bool(row and row[0])

    async def _holders(self, key: int) -> dict[int, int]:
        cursor = await self._conn.execute(_HOLDERS, (key,))
        return {int(number): int(pid) for number, pid in await cursor.fetchall()}
