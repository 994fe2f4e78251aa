"""The transfer saga's loop: lead, sweep, then follow the event log and advance transfers.

Driven by the event store's log, never by an HTTP request: the saga reads
every event after its position (woken by the store's NOTIFY, or a fallback
poll), and for each transfer event that calls for a step (a request, a
debit) it advances that transfer (:mod:`.steps`). Only then does it record
its new position, so a crash repeats steps rather than skipping them, and a
repeated step is refused by the transfer stream's version key.

One saga works at a time: the one holding a PostgreSQL advisory lock on a
dedicated connection (the relay's pattern). The lock dies with the session,
so after a kill -9 a standby takes over within about a second.

On taking the lead, and then periodically, it *sweeps*: every transfer
requested after the last sweep's mark that has not reached an end gets its
next step, whatever the log position says.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing import persistence as eventsourcing_persistence
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from redis.backoff import ExponentialWithJitterBackoff

from command_service.domain.transfer import Transfer
from command_service.relay.leadership import listen_for_appends, try_to_lead, wait_for_append
from command_service.settings import TransferSagaSettings
from command_service.transfer_saga import metrics
from command_service.transfer_saga.positions import (
    load_saga_position,
    save_saga_position,
    save_swept_to,
    unfinished_transfers,
)
from command_service.transfer_saga.steps import TransferSteps
from shared_kernel.event_log import LogEntry, head_position, read_log
from shared_kernel.events import TransferDebited, TransferRequested

log = logging.getLogger(__name__)

#: Log events after which a transfer has a step to take.
ACTIONABLE_TOPICS = frozenset({TransferRequested.TOPIC, TransferDebited.TOPIC})
#: Failures that are an outage, not a bug (the event store wraps psycopg's own).
OUTAGES: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    eventsourcing_persistence.OperationalError,
    eventsourcing_persistence.InterfaceError,
    OSError,
)
STANDBY_RETRY_SECONDS = 1.0
RETRY_CAP_SECONDS = 2.0
#: Transfers whose latest version the saga knows, so its own events on the log cost nothing.
KNOWN_TRANSFERS = 100_000


def saga_lock_key() -> int:
    """A constant advisory-lock key: sagas of one database exclude each other."""
    digest = hashlib.blake2b(b"ledger-transfer-saga", digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class Role(StrEnum):
    STARTING = "starting"
    STANDBY = "standby"
    ACTIVE = "active"
    FAILING = "failing"


@dataclass
class SagaStatus:
    """What /health/ready reports about the saga itself."""

    role: Role = Role.STARTING
    position: int = 0
    last_error: str = ""


class TransferSaga:
    def __init__(
        self,
        settings: TransferSagaSettings,
        pool: AsyncConnectionPool[Any],
        steps: TransferSteps,
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._steps = steps
        self._backoff = ExponentialWithJitterBackoff(cap=RETRY_CAP_SECONDS, base=0.05)
        self._failures = 0
        self._known: OrderedDict[UUID, int] = OrderedDict()
        self._swept_to = 0
        self._next_sweep = 0.0
        self.status = SagaStatus()

    async def run(self) -> None:
        """Work until cancelled; every failure is logged and retried with backoff."""
        while True:
            try:
                await self._serve_one_term()
            except OUTAGES as error:
                self._failed(error)
                log.warning(
                    "saga lost PostgreSQL; retrying",
                    extra={"error": f"{type(error).__name__}: {error}", "failures": self._failures},
                )
            except Exception as error:  # the event store's errors among them
                self._failed(error)
                log.exception("saga failed; retrying", extra={"failures": self._failures})
            await asyncio.sleep(self._backoff.compute(self._failures))
            self._failures += 1

    def _failed(self, error: Exception) -> None:
        self.status.role = Role.FAILING
        self.status.last_error = f"{type(error).__name__}: {error}"
        metrics.ACTIVE.set(0)

    async def _serve_one_term(self) -> None:
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
                position, self._swept_to = await load_saga_position(reader)
                self.status.role, self.status.last_error = Role.ACTIVE, ""
                metrics.ACTIVE.set(1)
                log.info(
                    "saga active; sweeping, then following the log",
                    extra={"position": position, "swept_to": self._swept_to},
                )
                self._known.clear()  # another saga may have moved transfers meanwhile
                await self._sweep(reader)
                while True:
                    position = await self._follow(reader, position)
                    if time.monotonic() >= self._next_sweep:
                        await self._sweep(reader)
                    self._failures = 0
                    await wait_for_append(conn, self._settings.transfer_saga_poll_seconds)

    async def _await_leadership(self, conn: AsyncConnection[Any]) -> None:
        announced = False
        while not await try_to_lead(conn, saga_lock_key()):
            if not announced:
                log.info("another saga holds the lock; standing by")
                announced = True
            self.status.role, self.status.last_error = Role.STANDBY, ""
            metrics.ACTIVE.set(0)
            self._failures = 0
            await asyncio.sleep(STANDBY_RETRY_SECONDS)

    async def _follow(self, reader: AsyncConnection[Any], position: int) -> int:
        """Advance the transfers of every event after ``position``; returns the new position."""
        head = await head_position(reader)
        batch_size = self._settings.transfer_saga_batch_size
        while True:
            entries = await read_log(reader, after=position, limit=batch_size)
            if not entries:
                break
            transfer_ids = self._to_advance(entries)
            if transfer_ids:
                self._remember(await asyncio.to_thread(self._steps.advance, transfer_ids))
            position = entries[-1].position
            await save_saga_position(reader, position)
            self.status.position = position
            metrics.POSITION.set(position)
            metrics.LAG.set(max(head - position, 0))
            log.debug(
                "followed the log",
                extra={"position": position, "events": len(entries), "advanced": len(transfer_ids)},
            )
            if len(entries) < batch_size:
                break
        head = max(head, position)
        metrics.STORE_HEAD.set(head)
        metrics.LAG.set(head - position)
        return position

    def _to_advance(self, entries: list[LogEntry]) -> list[UUID]:
        """Transfers with a step to take after these events, minus those the saga moved itself."""
        wanted: dict[UUID, None] = {}
        for entry in entries:
            known = self._known.get(entry.stream_id, 0)
            if entry.topic in ACTIONABLE_TOPICS and known < entry.version:
                wanted[entry.stream_id] = None
        return list(wanted)

    def _remember(self, states: Iterable[Transfer]) -> None:
        for transfer in states:
            self._known[transfer.id] = transfer.version
            self._known.move_to_end(transfer.id)
        while len(self._known) > KNOWN_TRANSFERS:
            self._known.popitem(last=False)

    async def _sweep(self, reader: AsyncConnection[Any]) -> None:
        """Advance every unfinished transfer requested after the mark; move the mark on."""
        self._next_sweep = time.monotonic() + self._settings.transfer_saga_sweep_seconds
        head = await head_position(reader)
        batch_size = self._settings.transfer_saga_batch_size
        after, swept, first_unfinished = self._swept_to, 0, None
        while True:
            found = await unfinished_transfers(reader, after, batch_size)
            if not found:
                break
            states = await asyncio.to_thread(self._steps.advance, [t for _, t in found])
            self._remember(states)
            ended = {t.id for t in states if t.terminal}
            for requested_at, transfer_id in found:
                if transfer_id not in ended and first_unfinished is None:
                    first_unfinished = requested_at
            swept += len(found)
            after = found[-1][0]
            if len(found) < batch_size:
                break
        mark = head if first_unfinished is None else min(head, first_unfinished - 1)
        if mark > self._swept_to:
            await save_swept_to(reader, mark)
            self._swept_to = mark
        metrics.UNFINISHED_SWEPT.inc(swept)
        if swept:
            log.info(
                "swept unfinished transfers",
                extra={"transfers": swept, "swept_to": self._swept_to},
            )
