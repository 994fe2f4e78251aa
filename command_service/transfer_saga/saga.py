"""The transfer saga's loop: lead, sweep, then follow the event log and advance transfers.

Driven by the event store's log, never by an HTTP request: the saga reads
the log after its position up to the head (woken by the store's NOTIFY, or a
fallback poll), only the transfer events that call for a step (a request, a
debit: :mod:`.log_reading`), and advances those transfers (:mod:`.steps`). Only then does it record
its new position, so a crash repeats steps rather than skipping them, and a
repeated step is refused by the transfer stream's version key.

One saga works at a time: the one holding a PostgreSQL advisory lock on a
dedicated connection (:mod:`command_service.leader_loop`, shared with the relay).
The lock dies with the session, so after a kill -9 a standby takes over within
about a second.

On taking the lead, and then periodically, it *sweeps*: every transfer
requested after the last sweep's mark that has not reached an end gets its
next step, whatever the log position says.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing import persistence as eventsourcing_persistence
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from command_service.domain.transfer import Transfer
from command_service.leader_loop import LeaderLoop, LoopLog, Role
from command_service.settings import TransferSagaSettings
from command_service.transfer_saga import metrics
from command_service.transfer_saga.log_reading import (
    ACTIONABLE_TOPICS,
    Actionable,
    actionable_events,
)
from command_service.transfer_saga.positions import (
    load_saga_position,
    save_saga_position,
    save_swept_to,
    unfinished_transfers,
)
from command_service.transfer_saga.steps import TransferSteps
from shared_kernel.advisory_locks import advisory_lock_key
from shared_kernel.event_log import head_position

__all__ = ["OUTAGES", "Role", "TransferSaga", "saga_lock_key"]

log = logging.getLogger(__name__)

#: Failures that are an outage, not a bug (the event store wraps psycopg's own).
OUTAGES: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    eventsourcing_persistence.OperationalError,
    eventsourcing_persistence.InterfaceError,
    OSError,
)
#: Transfers whose latest version the saga knows, so its own events on the log cost nothing.
KNOWN_TRANSFERS = 100_000
#: How often a pass that advanced no transfer still records the saga's position.
POSITION_SAVE_SECONDS = 1.0


def saga_lock_key() -> int:
    """A constant advisory-lock key: sagas of one database exclude each other."""
    return advisory_lock_key("ledger-transfer-saga")


class TransferSaga(LeaderLoop):
    def __init__(
        self,
        settings: TransferSagaSettings,
        pool: AsyncConnectionPool[Any],
        steps: TransferSteps,
    ) -> None:
        super().__init__(
            database_url=settings.database_url,
            pool=pool,
            lock_key=saga_lock_key(),
            poll_seconds=settings.transfer_saga_poll_seconds,
            outages=OUTAGES,
            active=metrics.ACTIVE,
            # A deposit asks nothing of the saga: only a transfer's request or debit wakes it.
            wakes_for=frozenset(ACTIONABLE_TOPICS),
            loop_log=LoopLog(
                log,
                outage="saga lost PostgreSQL; retrying",
                failure="saga failed; retrying",  # the event store's errors among them
                standby="another saga holds the lock; standing by",
            ),
        )
        self._settings = settings
        self._steps = steps
        self._known: OrderedDict[UUID, int] = OrderedDict()
        self._swept_to = 0
        self._next_sweep = 0.0
        self._next_save = 0.0

    async def _term(self, conn: AsyncConnection[Any], reader: AsyncConnection[Any]) -> None:
        position, self._swept_to = await load_saga_position(reader)
        self._became_active()
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
            await self._idle(conn)

    async def _follow(self, reader: AsyncConnection[Any], position: int) -> int:
        """Advance the transfers of the events after ``position`` up to the head; the new position.

        Positions are in commit order, so every event up to the head read here
        is visible: once no actionable event is left below it, the head itself
        is the new position.
        """
        head = await head_position(reader)
        batch_size = self._settings.transfer_saga_batch_size
        while position < head:
            found = await actionable_events(reader, position, head, batch_size)
            transfer_ids = self._to_advance(found)
            if transfer_ids:
                self._remember(await asyncio.to_thread(self._steps.advance, transfer_ids))
            position = found[-1].position if len(found) == batch_size else head
            if transfer_ids or time.monotonic() >= self._next_save:
                # A pass that advanced nothing need not be written each time: a
                # crash then re-reads at most a second of log, through the index.
                await save_saga_position(reader, position)
                self._next_save = time.monotonic() + POSITION_SAVE_SECONDS
            self.status.position = position
            metrics.POSITION.set(position)
            metrics.LAG.observe(head, position)
            log.debug(
                "followed the log",
                extra={"position": position, "events": len(found), "advanced": len(transfer_ids)},
            )
        head = max(head, position)
        metrics.STORE_HEAD.set(head)
        metrics.LAG.observe(head, position)
        return position

    def _to_advance(self, found: list[Actionable]) -> list[UUID]:
        """Transfers with a step to take after these events, minus those the saga moved itself."""
        wanted: dict[UUID, None] = {}
        for event in found:
            if self._known.get(event.transfer_id, 0) < event.version:
                wanted[event.transfer_id] = None
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
