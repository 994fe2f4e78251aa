"""The relay loop: lead, resume where the stream ends, publish every append.

A term of office runs on one dedicated connection (lock + LISTEN) and one
pooled connection that reads the log. Whatever breaks (PostgreSQL, Redis,
the lock connection) ends the term: the relay logs why, waits with jittered
exponential backoff and starts again from the resume point, which it
recomputes every time, so the first entry of a new term names that resume
point as its ``previous`` and consumers can see what Redis may have lost.
The term, standby and retry loop is :mod:`command_service.leader_loop`'s.
"""

from __future__ import annotations

import logging
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from command_service.leader_loop import LeaderLoop, LoopLog, Role
from command_service.relay import metrics
from command_service.relay.leadership import leader_lock_key
from command_service.relay.positions import load_relay_position, save_relay_position
from command_service.relay.publisher import StreamPublisher
from command_service.settings import RelaySettings
from shared_kernel.event_log import head_position, log_batches
from shared_kernel.outages import OUTAGES

__all__ = ["OUTAGES", "OutboxRelay", "Role"]

log = logging.getLogger(__name__)

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
        self._published(position)
        return position

    async def _publish_pending(self, reader: AsyncConnection[Any], position: int) -> int:
        """Publish everything after ``position``, batch by batch; returns the new position."""
        head = await head_position(reader)
        metrics.STORE_HEAD.set(max(head, position))
        metrics.LAG.observe(head, position)
        batch_size = self._settings.relay_batch_size
        async for entries in log_batches(reader, position, batch_size):
            added = await self._publisher.publish(entries)
            position = entries[-1].position
            await save_relay_position(reader, self._settings.stream_name, position)
            metrics.PUBLISHED.inc(added)
            metrics.LAG.observe(head, position)
            self._published(position)
            log.debug(
                "published",
                extra={"position": position, "events": len(entries), "added": added},
            )
        metrics.STORE_HEAD.set(max(head, position))
        return position

    def _published(self, position: int) -> None:
        self.status.position = position
        metrics.POSITION.set(position)
