"""The relay loop: lead, resume where the stream ends, publish every append.

A term of office runs on one dedicated connection (lock + LISTEN) and one
pooled connection that reads the log. Whatever breaks (PostgreSQL, Redis,
the lock connection) ends the term: the relay logs why, waits with jittered
exponential backoff and starts again from the resume point, which it
recomputes every time, so the first entry of a new term names that resume
point as its ``previous`` and consumers can see what Redis may have lost.
The term, standby and retry loop is :mod:`command_service.leader_loop`'s.

A wake costs what it must and no more: one read of the log and one XADD
pipeline. The store's head is read only when a full batch says a backlog is
waiting (a short batch reaches the head as that read saw it), and the
recorded position (``relay_positions``) is written at most every
:data:`POSITION_SAVE_SECONDS`, and that long after the last publish at the
latest: a crash that loses the newest only makes the next relay publish those
entries again, which Redis refuses by their ids.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from command_service.leader_loop import LeaderLoop, LoopLog, Role
from command_service.relay import metrics
from command_service.relay.leadership import leader_lock_key
from command_service.relay.positions import load_relay_position, save_relay_position
from command_service.relay.publisher import StreamPublisher
from command_service.settings import RelaySettings
from shared_kernel.event_log import LogEntry, head_position, log_batches
from shared_kernel.outages import OUTAGES

__all__ = ["OUTAGES", "OutboxRelay", "Role"]

log = logging.getLogger(__name__)

#: Longest the recorded position trails the published one.
POSITION_SAVE_SECONDS = 0.5

class OutboxRelay(LeaderLoop):
    def __init__(
        self, settings: RelaySettings, pool: AsyncConnectionPool[Any], publisher: StreamPublisher
    ) -> None:
        super().__init__(
            database_url=settings.database_url,
            pool=pool,
            lock_key=leader_lock_key(settings.stream_name),
            poll_seconds=settings.relay_poll_seconds,
            outages=OUTAGES,
            active=metrics.ACTIVE,
            loop_log=LoopLog(
                log,
                outage="relay lost PostgreSQL or Redis; retrying",
                failure="relay failed unexpectedly; retrying",
                standby="another relay holds the lock; standing by",
                standby_extra={"stream": settings.stream_name},
            ),
        )
        self._settings = settings
        self._publisher = publisher
        #: The published position not yet recorded, and when it must be.
        self._unsaved: int | None = None
        self._save_due = 0.0

    async def _term(self, conn: AsyncConnection[Any], reader: AsyncConnection[Any]) -> None:
        position = await self._resume_position(reader)
        self._became_active()
        while True:
            position = await self._publish_pending(reader, position)
            await self._idle(conn)

    async def _resume_position(self, reader: AsyncConnection[Any]) -> int:
        """Where every partition has got, or where PostgreSQL says we got, whichever is further."""
        stream_top = await self._publisher.last_published()
        recorded = await load_relay_position(reader, self._settings.stream_name)
        position = max(stream_top, recorded)
        head = await head_position(reader)
        metrics.STORE_HEAD.set(max(head, position))
        metrics.LAG.observe(head, position)
        log.info(
            "relay active; resuming",
            extra={
                "position": position,
                "stream_top": stream_top,
                "recorded_position": recorded,
                "stream": self._settings.stream_name,
            },
        )
        self._publisher.resume_from(position)
        self._unsaved = None
        self._published(position)
        return position

    async def _publish_pending(self, reader: AsyncConnection[Any], position: int) -> int:
        """Publish everything after ``position``, batch by batch; returns the new position."""
        head = position
        batch_size = self._settings.relay_batch_size
        async for entries in log_batches(reader, position, batch_size):
            if len(entries) == batch_size and head == position:
                head = await head_position(reader)  # a backlog: how long
            added = await self._publisher.publish(entries)
            position = entries[-1].position
            await self._record(reader, position)
            metrics.PUBLISHED.inc(added)
            self._observe(max(head, position), position, entries, added)
        return position

    async def _record(self, reader: AsyncConnection[Any], position: int) -> None:
        """Record ``position`` now if the last write is POSITION_SAVE_SECONDS old, else
        leave it to :meth:`_idle` or a later publish (at most that long)."""
        self._unsaved = position
        if time.monotonic() >= self._save_due:
            await self._save(reader)

    async def _save(self, reader: AsyncConnection[Any]) -> None:
        if self._unsaved is not None:
            await save_relay_position(reader, self._settings.stream_name, self._unsaved)
            self._unsaved = None
            self._save_due = time.monotonic() + POSITION_SAVE_SECONDS

    async def _idle(self, conn: AsyncConnection[Any], seconds: float | None = None) -> bool:
        """Wait for an append, recording the published position if its time comes first."""
        if self._unsaved is None:
            return await super()._idle(conn, seconds)
        woken = await super()._idle(conn, max(0.0, self._save_due - time.monotonic()))
        if not woken:
            await self._save(conn)
        return woken

    def _observe(self, head: int, position: int, entries: list[LogEntry], added: int) -> None:
        metrics.STORE_HEAD.set(head)
        metrics.LAG.observe(head, position)
        self._published(position)
        log.debug(
            "published", extra={"position": position, "events": len(entries), "added": added}
        )

    def _published(self, position: int) -> None:
        self.status.position = position
        metrics.POSITION.set(position)
