"""Is the projector stuck? The store is ahead of it and its checkpoint has not moved.

A projector can be up, connected to PostgreSQL and Redis, and still do
nothing: an apply waiting on a lock, a stream read that never returns, a bug
that loops. Readiness then says so: the check reads the store's head, and
when the head stays ahead of an unchanged checkpoint for ``stall_seconds``
(measured from the first probe that saw it so), the projector is not ready.
A projector that is merely behind but advancing, or idle at the head, is fine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from psycopg_pool import AsyncConnectionPool

from shared_kernel.event_log import head_position
from shared_kernel.observability import HealthCheck


class ProjectorStalled(RuntimeError):
    """The store is ahead and the checkpoint has not moved for too long."""


class StallWatch:
    """Remembers since when the store has been ahead of one unchanged checkpoint."""

    def __init__(self, stall_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.stall_seconds = stall_seconds
        self._clock = clock
        self._checkpoint: int | None = None
        self._behind_since: float | None = None

    def observe(self, head: int, checkpoint: int) -> float:
        """Seconds the checkpoint has stood still with the store ahead (0 when not behind)."""
        now = self._clock()
        if head <= checkpoint:
            self._checkpoint, self._behind_since = checkpoint, None
            return 0.0
        if self._behind_since is None or checkpoint != self._checkpoint:
            self._checkpoint, self._behind_since = checkpoint, now
        return now - self._behind_since


def advancing_check(
    pool: AsyncConnectionPool[Any],
    checkpoint: Callable[[], int | None],
    watch: StallWatch,
    *,
    timeout: float = 2.0,
) -> HealthCheck:
    """A readiness check that fails while the projector stands still behind the store."""

    async def advancing() -> dict[str, int | bool]:
        async with pool.connection(timeout=timeout) as conn:
            head = await head_position(conn)
        at = checkpoint()
        if at is None:  # applies no partition: a standby replica cannot stall
            return {"standing_by": True, "store_head": head}
        still = watch.observe(head, at)
        if still >= watch.stall_seconds:
            msg = (
                f"checkpoint {at} has not moved for {still:.0f}s while the event store's"
                f" head is {head} ({head - at} positions behind)"
            )
            raise ProjectorStalled(msg)
        return {"checkpoint": at, "store_head": head, "lag_events": max(0, head - at)}

    return advancing
