"""The relay loop: lead, resume where the stream ends, publish every append.

A term of office runs on one dedicated connection (lock + LISTEN) and one
pooled connection that reads the log. Whatever breaks (PostgreSQL, Redis,
the lock connection) ends the term: the relay logs why, waits with jittered
exponential backoff and starts again from the resume point, which it
recomputes every time, so the first entry of a new term names that resume
point as its ``previous`` and consumers can see what Redis may have lost.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from command_service.relay import metrics
from command_service.relay.leadership import (
    leader_lock_key,
    listen_for_appends,
    try_to_lead,
    wait_for_append,
)
from command_service.relay.positions import load_relay_position, save_relay_position
from command_service.relay.publisher import StreamPublisher
from command_service.settings import RelaySettings
from shared_kernel.event_log import head_position, read_log

log = logging.getLogger(__name__)

#: Failures that are an outage of a dependency, not a bug: retried quietly-ish.
OUTAGES: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
)

#: How often a standby relay asks for the lock.
STANDBY_RETRY_SECONDS = 1.0
#: Longest wait between retries during an outage: short, because the relay is
#: the only path to Redis and consumers wait for it once the outage ends.
RETRY_CAP_SECONDS = 2.0


class Role(StrEnum):
    STARTING = "starting"
    STANDBY = "standby"
    ACTIVE = "active"
    FAILING = "failing"


@dataclass
class RelayStatus:
    """What /health/ready reports about the relay itself."""

    role: Role = Role.STARTING
    position: int = 0
    last_error: str = ""


class OutboxRelay:
    def __init__(
        self, settings: RelaySettings, pool: AsyncConnectionPool[Any], publisher: StreamPublisher
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._publisher = publisher
        self._lock_key = leader_lock_key(settings.stream_name)
        self._backoff = ExponentialWithJitterBackoff(cap=RETRY_CAP_SECONDS, base=0.05)
        self._failures = 0
        self.status = RelayStatus()

    async def run(self) -> None:
        """Relay until cancelled; every failure is logged and retried with backoff."""
        while True:
            try:
                await self._serve_one_term()
            except OUTAGES as error:
                self._failed(error)
                log.warning(
                    "relay lost PostgreSQL or Redis; retrying",
                    extra={"error": f"{type(error).__name__}: {error}", "failures": self._failures},
                )
            except Exception as error:
                self._failed(error)
                log.exception(
                    "relay failed unexpectedly; retrying", extra={"failures": self._failures}
                )
            await asyncio.sleep(self._backoff.compute(self._failures))
            self._failures += 1

    def _failed(self, error: Exception) -> None:
        self.status.role = Role.FAILING
        self.status.last_error = f"{type(error).__name__}: {error}"
        metrics.ACTIVE.set(0)

    async def _serve_one_term(self) -> None:
        # Keepalives make a silently dead leader connection fail within seconds,
        # so this relay stops believing it leads about when PostgreSQL frees the lock.
        conn = await AsyncConnection.connect(
            self._settings.database_url,
            autocommit=True,
            connect_timeout=10,
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=3,
        )
        async with conn:
            await self._await_leadership(conn)
            await listen_for_appends(conn)
            async with self._pool.connection() as reader:
                position = await self._resume_position(reader)
                self.status.role, self.status.last_error = Role.ACTIVE, ""
                metrics.ACTIVE.set(1)
                while True:
                    position = await self._publish_pending(reader, position)
                    self._failures = 0
                    await wait_for_append(conn, self._settings.relay_poll_seconds)

    async def _await_leadership(self, conn: AsyncConnection[Any]) -> None:
        announced = False
        while not await try_to_lead(conn, self._lock_key):
            if not announced:
                log.info(
                    "another relay holds the lock; standing by",
                    extra={"stream": self._settings.stream_name},
                )
                announced = True
            self.status.role, self.status.last_error = Role.STANDBY, ""
            metrics.ACTIVE.set(0)
            self._failures = 0
            await asyncio.sleep(STANDBY_RETRY_SECONDS)

    async def _resume_position(self, reader: AsyncConnection[Any]) -> int:
        """Where the stream ends, or where PostgreSQL says we got, whichever is further."""
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
        self._published(position)
        return position

    async def _publish_pending(self, reader: AsyncConnection[Any], position: int) -> int:
        """Publish everything after ``position``, batch by batch; returns the new position."""
        head = await head_position(reader)
        batch_size = self._settings.relay_batch_size
        while True:
            entries = await read_log(reader, after=position, limit=batch_size)
            if not entries:
                break
            added = await self._publisher.publish(entries)
            position = entries[-1].position
            await save_relay_position(reader, self._settings.stream_name, position)
            metrics.PUBLISHED.inc(added)
            self._published(position)
            log.debug(
                "published",
                extra={"position": position, "events": len(entries), "added": added},
            )
            if len(entries) < batch_size:
                break
        metrics.STORE_HEAD.set(max(head, position))
        return position

    def _published(self, position: int) -> None:
        self.status.position = position
        metrics.POSITION.set(position)
