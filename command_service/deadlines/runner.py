"""The deadline runner: follow the log for scheduling events, run each command once due.

One runner works at a time, like the relay and the saga: the one holding an
advisory lock (:mod:`command_service.leader_loop`). A term resumes from the
position in ``saga_positions`` (row ``deadlines``), then loops:

1. file the deadlines of the events after its position up to the head, and
   the new position, in one transaction (a crash files them again, which the
   table's key makes harmless);
2. dispatch every due command through the bus and drop its row once its
   answer (or refusal) is in: a crash in between runs it again, which
   decides nothing new;
3. sleep until an append, the next due time or the poll interval.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any
from uuid import UUID

from prometheus_client import Counter, Gauge
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from command_service.bus.inline import InlineBus
from command_service.deadlines import command_for, deadline_of, scheduling_events
from command_service.errors import ServiceUnavailable
from command_service.event_store import LedgerEventStore
from command_service.leader_loop import LeaderLoop, LoopLog
from command_service.relay.leadership import wait_for_append
from shared_kernel.advisory_locks import advisory_lock_key
from shared_kernel.event_log import head_position
from shared_kernel.language.events import decode_event, utc_now
from shared_kernel.language.upcasting import wire_names
from shared_kernel.settings import EVENTS_TABLE

log = logging.getLogger(__name__)

ACTIVE = Gauge("ledger_deadlines_active", "1 while this process runs the deadlines.")
RUN = Counter("ledger_deadlines_run_total", "Scheduled commands dispatched once due, by kind.",
              ["kind"])  # fmt: skip
#: The row of the runner in ``saga_positions``.
POSITION_ROW = "deadlines"
#: Shortest sleep before a due time, so a deadline a moment away is not spun on.
MIN_WAIT_SECONDS = 0.05

_POSITION = "SELECT position FROM saga_positions WHERE saga = %s"
_SAVE_POSITION = (
    "INSERT INTO saga_positions (saga, position) VALUES (%s, %s) ON CONFLICT (saga) DO UPDATE"
    " SET position = GREATEST(saga_positions.position, EXCLUDED.position), updated_at = now()"
)
_SCHEDULING = (
    f"SELECT notification_id, topic, state FROM {EVENTS_TABLE}"
    " WHERE notification_id > %s AND notification_id <= %s AND topic = ANY(%s)"
    " ORDER BY notification_id LIMIT %s"
)
_FILE = (
    "INSERT INTO scheduled_commands (kind, stream_id, due_at, scheduled_position)"
    " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING"
)
_DUE = (
    "SELECT kind, stream_id FROM scheduled_commands WHERE due_at <= %s"
    " ORDER BY due_at LIMIT %s"
)
_DONE = "DELETE FROM scheduled_commands WHERE kind = %s AND stream_id = %s"
_NEXT_DUE = "SELECT min(due_at) FROM scheduled_commands"


def deadline_lock_key() -> int:
    """A constant advisory-lock key: runners of one database exclude each other."""
    return advisory_lock_key("ledger-deadlines")


class DeadlineRunner(LeaderLoop):
    def __init__(
        self,
        *,
        database_url: str,
        pool: AsyncConnectionPool[Any],
        store: LedgerEventStore,
        poll_seconds: float,
        batch_size: int,
        outages: tuple[type[Exception], ...],
    ) -> None:
        #: Only these appends wake the runner; it files deadlines from nothing else.
        topics = frozenset(name for t in scheduling_events() for name in wire_names(t))
        super().__init__(
            database_url=database_url,
            pool=pool,
            lock_key=deadline_lock_key(),
            wakes_for=topics,
            poll_seconds=poll_seconds,
            outages=outages,
            active=ACTIVE,
            loop_log=LoopLog(
                log,
                outage="deadline runner lost PostgreSQL; retrying",
                failure="deadline runner failed; retrying",
                standby="another process runs the deadlines; standing by",
            ),
        )
        self._bus = InlineBus(store, cache_size=0)
        self._batch_size = batch_size
        self._topics = topics

    async def _term(self, conn: AsyncConnection[Any], reader: AsyncConnection[Any]) -> None:
        cursor = await reader.execute(_POSITION, (POSITION_ROW,))
        row = await cursor.fetchone()
        position = int(row[0]) if row else 0
        self._became_active()
        log.info("deadline runner active", extra={"position": position})
        while True:
            position = await self._file(reader, position)
            self.status.position = position
            await self._run_due(reader)
            self._retry.recovered()
            await wait_for_append(conn, await self._sleep_seconds(reader), self._topics)

    async def _file(self, reader: AsyncConnection[Any], position: int) -> int:
        """File the deadlines of the log after ``position`` up to the head; the new position."""
        head = await head_position(reader)
        while position < head:
            cursor = await reader.execute(
                _SCHEDULING, (position, head, sorted(self._topics), self._batch_size)
            )
            found = await cursor.fetchall()
            reached = int(found[-1][0]) if len(found) == self._batch_size else head
            async with reader.transaction():
                for at, topic, state in found:
                    deadline = deadline_of(decode_event(topic, bytes(state)))
                    if deadline is not None:
                        await reader.execute(
                            _FILE, (deadline.kind, deadline.stream_id, deadline.due_at, at)
                        )
                await reader.execute(_SAVE_POSITION, (POSITION_ROW, reached))
            position = reached
        return position

    async def _run_due(self, reader: AsyncConnection[Any]) -> None:
        while True:
            cursor = await reader.execute(_DUE, (utc_now(), self._batch_size))
            due: list[tuple[str, UUID]] = [(k, s) for k, s in await cursor.fetchall()]
            if not due:
                return
            await asyncio.to_thread(self._dispatch, due)
            for kind, stream_id in due:
                await reader.execute(_DONE, (kind, stream_id))
                RUN.labels(kind).inc()
            log.info("ran due deadlines", extra={"commands": len(due)})
            if len(due) < self._batch_size:
                return

    def _dispatch(self, due: list[tuple[str, UUID]]) -> None:
        """Dispatch the due commands in one batch; raise when the store failed (the term
        ends and the rows stay), otherwise every answer or refusal settles its deadline."""
        commands = [c for kind, s in due if (c := command_for(kind, s)) is not None]
        for outcome in self._bus.dispatch_together(commands):
            if isinstance(outcome, ServiceUnavailable):
                raise outcome

    async def _sleep_seconds(self, reader: AsyncConnection[Any]) -> float:
        cursor = await reader.execute(_NEXT_DUE)
        row = await cursor.fetchone()
        next_due: datetime | None = row[0] if row else None
        if next_due is None:
            return self._poll_seconds
        until = (next_due - utc_now()).total_seconds()
        return min(self._poll_seconds, max(until, MIN_WAIT_SECONDS))
