"""Batching: commands from many requests, decided together, saved in one transaction.

The eventsourcing library blocks, and every save takes ``LOCK TABLE ... IN
EXCLUSIVE MODE`` on the events table, so concurrent writers queue on that lock
anyway (about 2,200 one-event saves/s here). The writer makes that queue
explicit and cheap: the bus's last step ``await batching.enqueue(command)``;
ONE writer thread takes everything waiting, decides each command in arrival
order against working copies of its aggregates (so two commands on one
account in one batch see each other), and saves all resulting events with one
``store.save(*events)``: one lock, one commit for the whole batch.

Correctness never rests on the in-memory cache: the primary key
``(originator_id, originator_version)`` rejects an event built on a stale
state with ``IntegrityError``, and a refusal is only given on a state fresh
from the store (or verified by the batch's commit). See :mod:`.unit_of_work`.
Each command is recorded at most once, whatever fails: see :mod:`.batch_writer`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from typing import Any, Unpack

from command_service import command_spans, metrics
from command_service.bus.batch_writer import BatchWriter, WriterOptions
from command_service.commands import Command
from command_service.errors import AppenderStopped, StoreUnavailable, WriterStalled
from command_service.event_store import LedgerEventStore
from command_service.pending import Outcome, Pending, Result
from shared_kernel import tracing
from shared_kernel.observability import log_context

log = logging.getLogger(__name__)

Answer = tuple["asyncio.Future[Result]", Outcome]


_STOP = object()


def _settle(answers: list[Answer]) -> None:
    """Runs on the callers' event loop: hand each awaiting caller its outcome."""
    for future, outcome in answers:
        if future.done():  # the caller went away (cancelled); the outcome stands regardless
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


class BatchingOptions(WriterOptions, total=False):
    batch_max_commands: int


class Batching:
    """Owns the writer thread and the cache of aggregate states it alone touches."""

    def __init__(
        self,
        store: LedgerEventStore,
        *,
        batch_max_commands: int = 500,
        **options: Unpack[WriterOptions],
    ) -> None:
        self._batch_max = batch_max_commands
        self._writer = BatchWriter(store, self._resolve, **options)
        #: When the writer last finished a batch (or started waiting for work).
        self._progress_at = time.monotonic()
        self._busy = False
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._accepting = True
        self._gate = threading.Lock()  # makes "accepting?" + enqueue atomic against stop()
        self._thread: threading.Thread | None = None
        #: Outcomes of the current batch by the loop awaiting them, handed over together:
        #: one wake-up of each loop per batch instead of one per command.
        self._answers: dict[asyncio.AbstractEventLoop, list[Answer]] = {}

    async def enqueue(self, command: Command[Any]) -> Result:
        """Queue ``command`` for the writer thread; its answer, or the refusal raised."""
        loop = asyncio.get_running_loop()
        trace = command_spans.current_trace()
        future: asyncio.Future[Result] = loop.create_future()
        pending = Pending(command, loop, future, trace=trace)
        with self._gate:
            if not self._accepting:
                raise AppenderStopped("the command service is not accepting commands")
            self._queue.put(pending)
        return await future

    # -- life cycle -------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread; commands submitted before it wait in the queue."""
        with self._gate:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="writer", daemon=True)
                self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        """Refuse new commands, answer every queued one, then end the thread (blocking)."""
        with self._gate:
            if not self._accepting:
                return
            self._accepting = False
            self._queue.put(_STOP)
        self.start()  # a never-started writer still answers what it queued
        assert self._thread is not None
        self._thread.join(timeout)

    @property
    def backlog(self) -> int:
        """Commands waiting for the writer thread (approximate)."""
        return self._queue.qsize()

    def stalled_seconds(self) -> float:
        """How long commands have waited without the writer finishing a batch (0: none wait)."""
        if not self._busy and self._queue.qsize() == 0:
            return 0.0
        return time.monotonic() - self._progress_at

    def check_progress(self, limit_seconds: float) -> None:
        """Raise :class:`WriterStalled` when work waits and no batch ended for ``limit_seconds``."""
        stalled = self.stalled_seconds()
        metrics.WRITER_STALLED_SECONDS.set(stalled)
        if stalled > limit_seconds:
            raise WriterStalled(
                f"{self.backlog} commands wait and the writer has not finished a batch"
                f" for {stalled:.0f}s"
            )

    # -- the writer thread ------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            self._progress_at, self._busy = time.monotonic(), False
            batch, stopping = self._take_batch()
            if not batch:
                continue
            self._busy = True
            metrics.APPEND_BATCH_SIZE.observe(len(batch))
            # A batch of one command logs with that command's correlation id.
            single = batch[0].command.correlation_id if len(batch) == 1 else None
            with log_context(correlation_id=single):
                self._process_batch(batch)
            self._hand_over()
        log.info("command writer stopped")

    def _process_batch(self, batch: list[Pending]) -> None:
        """Decide, save and answer ``batch`` (inside its span when tracing)."""
        if tracing.enabled():
            commands, traces = [p.command for p in batch], [p.trace for p in batch]
            with command_spans.append_batch(commands, traces):
                self._process_answering(batch)
        else:
            self._process_answering(batch)

    def _process_answering(self, batch: list[Pending]) -> None:
        try:
            self._writer.write(batch)
        except Exception as error:  # a bug must fail its batch, never kill the writer
            log.exception("the command writer failed a batch", extra={"batch_size": len(batch)})
            answered = {id(f) for settled in self._answers.values() for f, _ in settled}
            for pending in batch:
                if id(pending.future) not in answered:
                    self._resolve(pending, StoreUnavailable(f"the command failed: {error}"))

    def _take_batch(self) -> tuple[list[Pending], bool]:
        """Block for one command, then take whatever else waits, up to the batch limit."""
        batch: list[Pending] = []
        item = self._queue.get()
        while True:
            if item is _STOP:
                return batch, True
            assert isinstance(item, Pending)
            batch.append(item)
            if len(batch) >= self._batch_max:
                return batch, False
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return batch, False

    def _resolve(self, pending: Pending, outcome: Outcome) -> None:
        assert pending.loop is not None and pending.future is not None
        self._answers.setdefault(pending.loop, []).append((pending.future, outcome))
        for repeat in pending.repeats:
            self._resolve(repeat, outcome)

    def _hand_over(self) -> None:
        answers, self._answers = self._answers, {}
        for loop, settled in answers.items():
            # RuntimeError: the caller's loop is closed, so nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, settled)

