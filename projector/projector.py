"""The projector loop: read the stream, apply batches, catch up from the store when needed.

One session runs until something breaks; then the loop logs why, waits with
jittered exponential backoff and starts a new session, which first retries
its own unacknowledged entries, then claims those of dead consumers, then
reads new ones. The store is the source of truth: whenever the stream lacks
events (an entry's ``previous`` is beyond the checkpoint, or the store is
ahead while the stream is silent), they are read from the store and applied
through the same :class:`~projector.batch.BatchApplier`. The same path brings
a projection whose checkpoint is behind the others (one newly added to a
database already projected) level with them when a session starts.

One :class:`Projector` applies one partition of the log (see
:mod:`shared_kernel.partitions`): its consumer reads that partition's stream,
its applier moves that partition's checkpoints, and a catch-up reads the store
and keeps that partition's events. :mod:`projector.replica` runs one per
partition this process holds.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from projector import metrics
from projector.batch import OUTAGES, BatchApplier, BatchOutcome, Item, Unreadable
from projector.blocks import blocked_counts
from projector.checkpoints import lay_out_partitions, read_checkpoints
from projector.consumer import StreamConsumer, StreamEntry, to_items
from projector.settings import ProjectorSettings
from shared_kernel.event_log import head_position, of_partition, read_log
from shared_kernel.language.events import utc_now
from shared_kernel.retries import RetryPause

log = logging.getLogger(__name__)

#: How often the lag gauges are refreshed from the store's head.
LAG_REFRESH_SECONDS = 1.0


@dataclass
class ProjectorStatus:
    """What /health/ready and the metrics report about the loop itself."""

    checkpoint: int = 0
    last_event_at: datetime | None = None
    store_head: int = 0
    failing: str = ""
    blocked: dict[str, int] = field(default_factory=dict)
    """Blocked streams per projection (only those with some), as last read."""


def show_status(statuses: Sequence[ProjectorStatus]) -> None:
    """Set the checkpoint and lag gauges from the partitions this process applies.

    The checkpoint shown is the lowest (every position up to it is applied in
    each of them), the lag that of the partition furthest behind.
    """
    if not statuses:
        return
    slowest = min(statuses, key=lambda status: status.checkpoint)
    head = max(status.store_head for status in statuses)
    metrics.CHECKPOINT.set(slowest.checkpoint)
    behind = max(0, head - slowest.checkpoint)
    metrics.LAG_EVENTS.set(behind)
    if behind and slowest.last_event_at is not None:
        metrics.LAG_SECONDS.set(max(0.0, (utc_now() - slowest.last_event_at).total_seconds()))
    else:
        metrics.LAG_SECONDS.set(0)


class Projector:
    def __init__(
        self,
        settings: ProjectorSettings,
        pool: AsyncConnectionPool[Any],
        consumer: StreamConsumer,
        applier: BatchApplier,
        *,
        report: Callable[[], None] | None = None,
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._consumer = consumer
        self._applier = applier
        self._retry = RetryPause()
        #: The session's own connection: batches reuse it instead of checking one out (and
        #: pinging it) from the pool every time; an outage ends the session, and with it this.
        self._conn: AsyncConnection[Any] | None = None
        self.status = ProjectorStatus()
        #: Shows this partition's progress (with its siblings') on the gauges.
        self._report = report or (lambda: show_status([self.status]))

    @property
    def partition(self) -> int:
        return self._applier.partition

    async def run(self) -> None:
        """Project until cancelled; every failure is logged and retried with backoff."""
        while True:
            try:
                await self._session()
            except OUTAGES as error:
                self.status.failing = f"{type(error).__name__}: {error}"
                log.warning(
                    "projector lost PostgreSQL or Redis; retrying",
                    extra={
                        "error": f"{type(error).__name__}: {error}",
                        "failures": self._retry.failures,
                    },
                )
            except Exception as error:
                self.status.failing = f"{type(error).__name__}: {error}"
                log.exception(
                    "projector failed unexpectedly; retrying",
                    extra={"failures": self._retry.failures},
                )
            await self._retry.after_failure()

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        if self._conn is not None:
            yield self._conn
        else:
            async with self._pool.connection() as conn:
                yield conn

    async def _session(self) -> None:
        async with self._pool.connection() as conn:
            self._conn = conn
            try:
                await self._consume()
            finally:
                self._conn = None

    async def _consume(self) -> None:
        settings = self._settings
        applier = self._applier
        async with self._connection() as conn:
            versions = applier.versions
            await lay_out_partitions(conn, applier.names, versions, applier.partitions)
            checkpoints = await read_checkpoints(
                conn, applier.names, versions=versions, partition=applier.partition
            )
        self._observe(checkpoints.floor, checkpoints.last_event_at)
        await self._refresh_lag()
        if checkpoints.stale:
            log.warning(
                "projections built by another version of their code are left alone until rebuilt",
                extra={"projections": sorted(checkpoints.stale)},
            )
        leading = max(checkpoints.live.values(), default=0)
        if checkpoints.floor < leading:
            # A projection added to a database the others have projected (or
            # rebuilt from nothing) starts at 0: bring it level with the others
            # from the store before the stream, whose entries start far past it.
            behind = sorted(name for name, at in checkpoints.live.items() if at < leading)
            log.info(
                "projections behind the others; catching them up from the event store",
                extra={"projections": behind, "from": checkpoints.floor, "up_to": leading},
            )
            await self.catch_up(leading)
        await self._consumer.ensure_group()
        while pending := await self._consumer.read_own_pending():
            await self._project_entries(pending)
        await self._claim_abandoned()
        log.info(
            "projector consuming",
            extra={
                "checkpoint": self.status.checkpoint,
                "stream": self._consumer.stream_name,
                "consumer": self._consumer.consumer,
            },
        )
        self.status.failing = ""
        last_arrival = last_claim = last_lag = time.monotonic()
        applied: list[bytes] = []  # acknowledged with the next read, in its round trip
        while True:
            entries = await self._consumer.read_new(acknowledging=applied)
            applied = []
            now = time.monotonic()
            if entries:
                await self.project(to_items(entries))
                applied = [entry_id for entry_id, _ in entries]
                last_arrival = now
            elif now - last_arrival >= settings.idle_catch_up_seconds:
                await self._catch_up_to_head()
                last_arrival = now
            if now - last_claim >= settings.claim_idle_ms / 1000:
                await self._claim_abandoned()
                last_claim = now
            if now - last_lag >= LAG_REFRESH_SECONDS:
                await self._refresh_lag()
                last_lag = now
            self._retry.recovered()

    async def _claim_abandoned(self) -> None:
        min_idle_ms = self._settings.claim_idle_ms
        async for claimed in self._consumer.claim_abandoned(min_idle_ms):
            await self._project_entries(claimed)
        await self._consumer.forget_idle_consumers(min_idle_ms)

    async def _project_entries(self, entries: Sequence[StreamEntry]) -> None:
        """Apply stream entries, then XACK them all (entries deleted meanwhile included)."""
        await self.project(to_items(entries))
        await self._consumer.ack([entry_id for entry_id, _ in entries])

    async def project(self, items: Sequence[Item]) -> None:
        """Apply ``items`` in order, fetching from the store whatever the stream lost."""
        remaining = list(items)
        while remaining:
            async with self._connection() as conn:
                outcome = await self._apply(conn, remaining, live=True)
            remaining = remaining[outcome.consumed :]
            if outcome.gap_before is None:
                continue
            log.warning(
                "the stream lacks events; catching up from the event store",
                extra={"checkpoint": outcome.checkpoint, "up_to": outcome.gap_before},
            )
            reached = await self.catch_up(outcome.gap_before)
            if reached < outcome.gap_before:
                # Only a bogus entry can point past the store's head; park it without
                # letting it move the checkpoint, so the loop always makes progress.
                first = remaining[0]
                error = f"position {outcome.gap_before} before it is not in the event store"
                fields = first.fields if isinstance(first, Unreadable) else first.to_fields()
                remaining[0] = Unreadable(first.position, fields, error, advances_checkpoint=False)

    async def catch_up(self, up_to: int) -> int:
        """Apply the store's events after the checkpoint up to ``up_to`` (bounded by the head).

        Only this partition's events are applied; the checkpoint still passes
        every position read, since the other partitions' events are not its to apply.
        """
        batch_size = self._settings.catch_up_batch_size
        applier = self._applier
        async with self._connection() as conn:
            head = await head_position(conn)
            target = min(up_to, head)
            checkpoints = await read_checkpoints(
                conn, applier.names, versions=applier.versions, partition=applier.partition
            )
            checkpoint = checkpoints.floor
            while checkpoint < target:
                entries = await read_log(conn, after=checkpoint, limit=batch_size, up_to=target)
                done = len(entries) < batch_size
                mine = of_partition(
                    entries, applier.partition, applier.partitions, after=checkpoint
                )
                # Everything up to `target` is committed (or never will be): a hole
                # at the end may be passed over; so may the others' events read.
                outcome = await self._apply(
                    conn, mine, advance_to=target if done else entries[-1].position
                )
                metrics.CATCH_UP.inc(outcome.applied)
                checkpoint = outcome.checkpoint
                if done:
                    break
        self.status.store_head = max(self.status.store_head, head)
        return checkpoint

    async def _catch_up_to_head(self) -> None:
        """The stream is silent: make sure it is not silent because Redis lost events."""
        async with self._connection() as conn:
            head = await head_position(conn)
        if head > self.status.checkpoint:
            log.info(
                "stream silent while the store is ahead; catching up from the event store",
                extra={"checkpoint": self.status.checkpoint, "store_head": head},
            )
            await self.catch_up(head)

    async def _apply(
        self, conn: AsyncConnection[Any], items: Sequence[Item], *,
        advance_to: int | None = None, live: bool = False,
    ) -> BatchOutcome:  # fmt: skip
        """One batch through the applier, timed and counted (see :meth:`_record`)."""
        started = time.perf_counter()
        outcome = await self._applier.apply(conn, items, advance_to=advance_to)
        self._record(outcome, time.perf_counter() - started, live=live)
        return outcome

    def _record(self, outcome: BatchOutcome, seconds: float, *, live: bool = False) -> None:
        """Count a batch that took ``seconds``; ``live``: from the stream, not a catch-up
        of older events (whose age says nothing of how fast the read models follow)."""
        self.status.store_head = max(self.status.store_head, outcome.store_head)
        metrics.APPLIED.inc(outcome.applied)
        if outcome.consumed:
            metrics.BATCH_SIZE.observe(outcome.consumed)
            metrics.BATCH_SECONDS.observe(seconds)
        if live and outcome.applied and outcome.last_event_at is not None:
            age = time.time() - outcome.last_event_at.timestamp()
            metrics.APPLIED_EVENT_AGE.observe(max(0.0, age))
        metrics.DEAD_LETTERED.inc(len(outcome.dead_lettered))
        metrics.HELD.inc(outcome.held)
        for block in outcome.blocked:
            self.status.blocked[block.projection] = self.status.blocked.get(block.projection, 0) + 1
        if outcome.blocked:
            metrics.blocked_streams(self.status.blocked, self._applier.names)
        self._observe(outcome.checkpoint, outcome.last_event_at)

    def _observe(self, checkpoint: int, last_event_at: datetime | None) -> None:
        self.status.checkpoint = checkpoint
        self.status.last_event_at = last_event_at
        self._report()

    async def _refresh_lag(self) -> None:
        async with self._connection() as conn:
            head = await head_position(conn)
            # A replay elsewhere unblocks streams: re-read rather than count here.
            self.status.blocked = await blocked_counts(conn)
        metrics.blocked_streams(self.status.blocked, self._applier.names)
        self.status.store_head = max(self.status.store_head, head)
        self._report()
