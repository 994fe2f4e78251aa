"""The loop of a process of which one works at a time: the outbox relay, the transfer saga.

A term of office runs on one dedicated connection, which holds a PostgreSQL
advisory lock and LISTENs for appends (:mod:`command_service.relay.leadership`),
and one pooled connection that does the work. Keepalives make a silently dead
lock connection fail within seconds, so the process stops believing it leads
about when PostgreSQL frees the lock. Whatever breaks ends the term: the loop
logs why, waits with jittered exponential backoff and starts a new term, which
stands by until it holds the lock.

A subclass says what a term does (:meth:`LeaderLoop._term`): it marks itself
active once it knows where to resume, then works and idles until an append.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from prometheus_client import Gauge
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from command_service.relay.leadership import listen_for_appends, try_to_lead, wait_for_append
from shared_kernel.retries import RetryPause

#: How often a standby asks for the lock.
STANDBY_RETRY_SECONDS = 1.0


class Role(StrEnum):
    STARTING = "starting"
    STANDBY = "standby"
    ACTIVE = "active"
    FAILING = "failing"


@dataclass
class LeaderStatus:
    """What /health/ready reports about the process's loop."""

    role: Role = Role.STARTING
    position: int = 0
    last_error: str = ""


@dataclass(frozen=True)
class LoopLog:
    """Where and how a loop logs its outages, failures and standing by."""

    logger: logging.Logger
    outage: str
    failure: str
    standby: str
    standby_extra: Mapping[str, object] = field(default_factory=dict)


class LeaderLoop(ABC):
    def __init__(
        self,
        *,
        database_url: str,
        pool: AsyncConnectionPool[Any],
        lock_key: int,
        poll_seconds: float,
        outages: tuple[type[Exception], ...],
        active: Gauge,
        loop_log: LoopLog,
        wakes_for: frozenset[str] | None = None,
    ) -> None:
        self._database_url = database_url
        #: The wire names whose append is worth waking for (None: every append).
        self._wakes_for = wakes_for
        self._pool = pool
        self._lock_key = lock_key
        self._poll_seconds = poll_seconds
        self._outages = outages
        self._active = active
        self._log = loop_log
        self._retry = RetryPause()
        self.status = LeaderStatus()

    async def run(self) -> None:
        """Work until cancelled; every failure is logged and retried with backoff."""
        logger = self._log.logger
        while True:
            try:
                await self._serve_one_term()
            except self._outages as error:
                self._failed(error)
                logger.warning(
                    self._log.outage,
                    extra={
                        "error": f"{type(error).__name__}: {error}",
                        "failures": self._retry.failures,
                    },
                )
            except Exception as error:
                self._failed(error)
                logger.exception(self._log.failure, extra={"failures": self._retry.failures})
            await self._retry.after_failure()

    @abstractmethod
    async def _term(self, conn: AsyncConnection[Any], reader: AsyncConnection[Any]) -> None:
        """One term as leader: resume, :meth:`_became_active`, then work and :meth:`_idle`.

        ``conn`` holds the lock and listens for appends; ``reader`` is pooled.
        Returns only by raising.
        """

    def _became_active(self) -> None:
        self.status.role, self.status.last_error = Role.ACTIVE, ""
        self._active.set(1)

    async def _idle(self, conn: AsyncConnection[Any], seconds: float | None = None) -> bool:
        """The work went well: wait on ``conn`` for an append, or ``seconds`` (by default
        the poll interval); False when none came."""
        self._retry.recovered()
        wait = self._poll_seconds if seconds is None else seconds
        return await wait_for_append(conn, wait, self._wakes_for)

    def _failed(self, error: Exception) -> None:
        self.status.role = Role.FAILING
        self.status.last_error = f"{type(error).__name__}: {error}"
        self._active.set(0)

    async def _serve_one_term(self) -> None:
        conn = await AsyncConnection.connect(
            self._database_url,
            autocommit=True,
            connect_timeout=10,
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=3,
        )
        async with conn:
            await self._await_leadership(conn)
            await listen_for_appends(conn, self._wakes_for)
            async with self._pool.connection() as reader:
                await self._term(conn, reader)

    async def _await_leadership(self, conn: AsyncConnection[Any]) -> None:
        announced = False
        while not await try_to_lead(conn, self._lock_key):
            if not announced:
                self._log.logger.info(self._log.standby, extra=dict(self._log.standby_extra))
                announced = True
            self.status.role, self.status.last_error = Role.STANDBY, ""
            self._active.set(0)
            self._retry.recovered()
            await asyncio.sleep(STANDBY_RETRY_SECONDS)
