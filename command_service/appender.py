"""The append path: commands from many requests, decided together, saved in one transaction.

The eventsourcing library blocks, and every save takes ``LOCK TABLE ... IN
EXCLUSIVE MODE`` on the events table, so concurrent writers queue on that lock
anyway (about 2,200 one-event saves/s here). The appender makes that queue
explicit and cheap: async callers ``await appender.submit(command)``; ONE
writer thread takes everything waiting, decides each command in arrival order
against a working copy of its account (so two commands on one account in one
batch see each other), and saves all resulting events with one
``store.save(*events)``: one lock, one commit for the whole batch.

Correctness never rests on the in-memory cache: the primary key
``(originator_id, originator_version)`` rejects an event built on a stale
state with ``IntegrityError``, and a refusal is only given on a state fresh
from the store (or verified by the batch's commit). See :mod:`.batch`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from uuid import UUID

from eventsourcing.application import LRUCache
from eventsourcing.persistence import IntegrityError, PersistenceError

from command_service import command_spans, metrics
from command_service.batch import AccountStates, Decision, decide_batch
from command_service.commands import Command, CommandResult, RequestTransfer, TransferAccepted
from command_service.domain.account import Account, DomainError
from command_service.errors import AppenderStopped, StoreUnavailable, VersionConflict
from command_service.event_store import LedgerEventStore
from command_service.handlers import command_name
from shared_kernel import tracing
from shared_kernel.observability import log_context

log = logging.getLogger(__name__)

Result = CommandResult | TransferAccepted
Outcome = Result | BaseException
Answer = tuple["asyncio.Future[Result]", Outcome]


@dataclass(slots=True, eq=False)
class Pending:
    """A submitted command, the future its caller awaits, and its conflicts so far."""

    command: Command
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Result]
    submitted_at: float = field(default_factory=time.perf_counter)
    conflicts: int = 0
    #: Only when tracing: where the writer thread tells the command's span its batch.
    trace: command_spans.CommandTrace | None = None


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


class Appender:
    """Owns the writer thread and the cache of account states it alone touches."""

    def __init__(
        self,
        store: LedgerEventStore,
        *,
        batch_max_commands: int = 500,
        append_retries: int = 5,
        snapshot_interval: int = 100,
        cache_size: int = 10_000,
    ) -> None:
        self._store = store
        self._batch_max = batch_max_commands
        self._retries = append_retries
        self._snapshot_interval = snapshot_interval
        self._cache: LRUCache[UUID, Account] | None = LRUCache(cache_size) if cache_size else None
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._accepting = True
        self._gate = threading.Lock()  # makes "accepting?" + enqueue atomic against stop()
        self._thread: threading.Thread | None = None
        #: Outcomes of the current batch by the loop awaiting them, handed over together:
        #: one wake-up of each loop per batch instead of one per command.
        self._answers: dict[asyncio.AbstractEventLoop, list[Answer]] = {}

    # -- the async side ---------------------------------------------------------

    async def submit(self, command: Command) -> CommandResult:
        """Decide and record ``command`` on an account; its result, or the refusal raised."""
        result = await self._submit(command)
        assert isinstance(result, CommandResult)
        return result

    async def request_transfer(self, command: RequestTransfer) -> TransferAccepted:
        """Record a transfer request; the saga takes it from there."""
        result = await self._submit(command)
        assert isinstance(result, TransferAccepted)
        return result

    async def _submit(self, command: Command) -> Result:
        if tracing.enabled():
            return await command_spans.traced(command, self._enqueue)
        return await self._enqueue(command)

    async def _enqueue(
        self, command: Command, trace: command_spans.CommandTrace | None = None
    ) -> Result:
        loop = asyncio.get_running_loop()
        pending = Pending(command, loop, loop.create_future(), trace=trace)
        with self._gate:
            if not self._accepting:
                raise AppenderStopped("the command service is not accepting commands")
            self._queue.put(pending)
        return await pending.future

    # -- life cycle -------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread; commands submitted before it wait in the queue."""
        with self._gate:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="appender", daemon=True)
                self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        """Refuse new commands, answer every queued one, then end the thread (blocking)."""
        with self._gate:
            if not self._accepting:
                return
            self._accepting = False
            self._queue.put(_STOP)
        self.start()  # a never-started appender still answers what it queued
        assert self._thread is not None
        self._thread.join(timeout)

    @property
    def backlog(self) -> int:
        """Commands waiting for the writer thread (approximate)."""
        return self._queue.qsize()

    # -- the writer thread ------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch, stopping = self._take_batch()
            if not batch:
                continue
            metrics.APPEND_BATCH_SIZE.observe(len(batch))
            # A batch of one command logs with that command's correlation id.
            single = batch[0].command.correlation_id if len(batch) == 1 else None
            with log_context(correlation_id=single):
                self._process_batch(batch)
            self._hand_over()
        log.info("appender stopped")

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
            self._process(batch)
        except Exception as error:  # a bug must fail its batch, never kill the writer
            log.exception("appender failed a batch", extra={"batch_size": len(batch)})
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

    def _process(self, batch: list[Pending]) -> None:
        """Decide and save ``batch``, deciding again after conflicts, until all are answered."""
        preloaded: dict[UUID, Account | None] = {}
        remaining = batch
        while remaining:
            states = AccountStates(self._store, self._cache, preloaded)
            decision = decide_batch([p.command for p in remaining], states)
            try:
                positions = self._save(decision)
            except StoreUnavailable as error:
                self._fail_on_store_error(remaining, decision, states, error)
                return
            if positions is not None:
                self._commit(remaining, decision, positions, states)
                return
            remaining, preloaded = self._after_conflict(remaining, decision, states)

    def _save(self, decision: Decision) -> list[int] | None:
        """Positions of the saved events in order; None when another writer got in first."""
        if not decision.events:
            return []
        try:
            if tracing.enabled():
                with command_spans.save(len(decision.events)):
                    recordings = self._store.save(*decision.events)
            else:
                recordings = self._store.save(*decision.events)
        except IntegrityError:
            metrics.APPEND_CONFLICTS.inc()
            return None
        except PersistenceError as error:
            log.exception("saving a batch failed", extra={"events": len(decision.events)})
            raise StoreUnavailable(f"the event store is unavailable: {error}") from error
        metrics.EVENTS_APPENDED.inc(len(recordings))
        return [recording.notification.id for recording in recordings]

    def _commit(
        self,
        batch: list[Pending],
        decision: Decision,
        positions: list[int],
        states: AccountStates,
    ) -> None:
        """The batch is in the store: answer everyone, remember states, take snapshots."""
        position_of = dict(zip(decision.accepted, positions, strict=True))
        for index, pending in enumerate(batch):
            refusal = decision.refusals.get(index)
            if refusal is not None:
                self._resolve(pending, refusal)
                continue
            requested = decision.transfers.get(index)
            if requested is not None:
                self._resolve(
                    pending, TransferAccepted(requested.originator_id, position_of[index])
                )
                continue
            after = decision.after[index]
            self._resolve(
                pending,
                CommandResult(after.id, after.version, position_of[index], after.balance),
            )
        if positions and log.isEnabledFor(logging.DEBUG):
            log.debug(
                "appended batch",
                extra={
                    "events": len(positions),
                    "first_position": positions[0],
                    "last_position": positions[-1],
                    "commands": len(batch),
                },
            )
        if self._cache is not None:
            for account in states.working.values():
                if account is not None:
                    self._cache.put(account.id, account)
        self._take_snapshots(states)

    def _take_snapshots(self, states: AccountStates) -> None:
        interval = self._snapshot_interval
        for account_id in states.changed:
            before, after = states.base_version(account_id), states.working[account_id]
            if after is None or after.version // interval == before // interval:
                continue
            try:
                self._store.put_snapshot(after)
            except Exception:  # the events are safe; a missing snapshot only slows loading
                metrics.SNAPSHOT_FAILURES.inc()
                log.exception(
                    "snapshot failed",
                    extra={"account_id": str(account_id), "version": after.version},
                )

    def _after_conflict(
        self, batch: list[Pending], decision: Decision, states: AccountStates
    ) -> tuple[list[Pending], dict[UUID, Account | None]]:
        """Reload what moved, answer commands out of retries, return the rest to decide again."""
        self._evict(states.working)
        try:
            fresh = {
                account_id: states.load_from_store(account_id) for account_id in states.changed
            }
        except StoreUnavailable as error:
            self._fail_on_store_error(batch, decision, states, error)
            return [], {}
        moved = {
            account_id
            for account_id, account in fresh.items()
            if (account.version if account else 0) != states.base_version(account_id)
        }
        log.info(
            "append conflict, deciding the batch again",
            extra={"moved_accounts": [str(a) for a in moved], "commands": len(batch)},
        )
        again: list[Pending] = []
        for index, pending in enumerate(batch):
            account_id = pending.command.account_id
            if index in decision.after and (account_id in moved or not moved):
                pending.conflicts += 1
                if pending.conflicts > self._retries:
                    current = fresh.get(account_id)
                    self._resolve(
                        pending,
                        VersionConflict(
                            account_id,
                            current.version if current else 0,
                            pending.command.expected_version,
                        ),
                    )
                    continue
                metrics.APPEND_RETRIES.inc()
            again.append(pending)
        return again, fresh

    def _fail_on_store_error(
        self,
        batch: list[Pending],
        decision: Decision,
        states: AccountStates,
        error: StoreUnavailable,
    ) -> None:
        """Commands that needed the save fail; a refusal stands if its state was fresh.

        Whether a failed commit happened is unknown, so every account of the
        batch leaves the cache.
        """
        self._evict(pending.command.account_id for pending in batch)
        for index, pending in enumerate(batch):
            refusal = decision.refusals.get(index)
            unverified = pending.command.account_id in states.changed
            self._resolve(pending, error if refusal is None or unverified else refusal)

    def _evict(self, account_ids: Iterable[UUID]) -> None:
        if self._cache is None:
            return
        for account_id in list(account_ids):
            with contextlib.suppress(KeyError):
                self._cache.get(account_id, evict=True)

    def _resolve(self, pending: Pending, outcome: Outcome) -> None:
        name = command_name(pending.command)
        outcome_label = "ok" if not isinstance(outcome, BaseException) else _code(outcome)
        metrics.COMMANDS.labels(name, outcome_label).inc()
        metrics.COMMAND_DURATION.labels(name).observe(time.perf_counter() - pending.submitted_at)
        if isinstance(outcome, DomainError) and log.isEnabledFor(logging.DEBUG):
            log.debug(
                "command refused",
                extra={
                    "command": name,
                    "code": outcome.code,
                    "account_id": str(pending.command.account_id),
                    "correlation_id": pending.command.correlation_id,
                },
            )
        self._answers.setdefault(pending.loop, []).append((pending.future, outcome))

    def _hand_over(self) -> None:
        answers, self._answers = self._answers, {}
        for loop, settled in answers.items():
            # RuntimeError: the caller's loop is closed, so nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, settled)


def _code(error: BaseException) -> str:
    return str(getattr(error, "code", type(error).__name__))
