"""Recording one batch of commands, each exactly once, whatever the store answers.

A batch is decided against working copies of its accounts (:mod:`.batch`) and
saved in one transaction together with the id of every command it records
(:mod:`.recorder`). The save then ends one of three ways:

- **committed**: every command is answered from the decision;
- **refused** (``IntegrityError``): either another writer moved an account
  (decide again on fresh state, a bounded number of times), or a command of
  the batch was recorded before: by this very batch, when the library retried
  an INSERT whose COMMIT reply was lost, or by another attempt at the same
  request. Such commands are answered from what the store recorded, never
  decided a second time;
- **unknown** (the connection broke, the server restarted): the store is
  asked, once every earlier append has ended, which commands it holds. Those
  are answered from the record; the rest were not recorded and are decided
  again, once; if the store cannot be asked, the answer says the outcome is
  unknown and that a retry with the same Idempotency-Key is safe.

Every loop here is bounded, so one command can never wedge the writer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from uuid import UUID

from eventsourcing.application import LRUCache
from eventsourcing.persistence import IntegrityError, PersistenceError

from command_service import command_spans, metrics
from command_service.batch import AccountStates, Decision, decide_batch, uncached_accounts
from command_service.commands import CommandResult, TransferAccepted
from command_service.domain.account import Account
from command_service.errors import (
    CommandNotRecorded,
    CommitOutcomeUnknown,
    StoreUnavailable,
    version_refusal,
)
from command_service.event_store import LedgerEventStore
from command_service.pending import Outcome, Pending
from command_service.recorded_answers import answer_from_record, conflicting_stream
from command_service.recorder import CommandRecord, RecordedCommand, refused_by_recorded_command
from command_service.snapshot_rule import snapshots_due
from shared_kernel import tracing

log = logging.getLogger(__name__)

Resolve = Callable[[Pending, Outcome], None]

#: Attempts at a command whose saves failed for the store's reasons, each time
#: found not recorded: then it is answered "not recorded" and the writer moves on.
MAX_OUTAGES = 2


class SaveRefused(Exception):
    """The store refused the batch's save; nothing of it was written."""

    def __init__(self, stream: UUID | None, recorded_command: bool) -> None:
        super().__init__(stream, recorded_command)
        #: The stream whose version key was taken, when the error names it.
        self.stream = stream
        #: True when a command of the batch was recorded before.
        self.recorded_command = recorded_command


class BatchWriter:
    """Decides, saves and answers batches; owned by the appender's writer thread."""

    def __init__(
        self,
        store: LedgerEventStore,
        cache: LRUCache[UUID, Account] | None,
        resolve: Resolve,
        *,
        append_retries: int,
        snapshot_interval: int,
        settle_seconds: float,
    ) -> None:
        self._store = store
        self._cache = cache
        self._resolve = resolve
        self._retries = append_retries
        self._snapshot_interval = snapshot_interval
        self._settle_seconds = settle_seconds

    def write(self, batch: list[Pending]) -> None:
        """Answer every command of ``batch`` (through ``resolve``)."""
        remaining = self._answer_recovered(_join_repeats(batch))
        preloaded = self._load_uncached(remaining)
        while remaining:
            states = AccountStates(self._store, self._cache, preloaded)
            decision = decide_batch([p.command for p in remaining], states)
            try:
                positions = self._save(remaining, decision, states)
            except SaveRefused as refused:
                remaining, preloaded = self._after_refused(remaining, decision, states, refused)
            except StoreUnavailable as error:
                remaining, preloaded = self._after_unknown(remaining, decision, states, error), {}
            else:
                self._commit(remaining, decision, positions, states)
                return

    def _load_uncached(self, batch: list[Pending]) -> dict[UUID, Account | None]:
        """Every account of the batch the cache lacks, in one statement.

        When the store fails here, nothing is preloaded: deciding then loads each
        account itself and refuses only the commands whose account it cannot read.
        """
        missing = uncached_accounts((p.command for p in batch), self._cache)
        if not missing:
            return {}
        try:
            return self._store.get_accounts(missing)
        except PersistenceError:
            return {}

    # -- saving -------------------------------------------------------------------

    def _save(self, batch: list[Pending], decision: Decision, states: AccountStates) -> list[int]:
        """Positions of the saved events, in order; raises SaveRefused or StoreUnavailable.

        The snapshots the batch makes due go in the same statement as its events.
        """
        if not decision.events:
            return []
        snapshots = snapshots_due(
            ((states.base_version(i), states.working[i]) for i in states.changed),
            self._snapshot_interval,
        )
        records = [
            CommandRecord(batch[index].command.command_id, event.originator_id,
                          event.originator_version)
            for index, event in zip(decision.accepted, decision.events, strict=True)
        ]  # fmt: skip
        try:
            if tracing.enabled():
                with command_spans.save(len(decision.events)):
                    positions = self._store.record(decision.events, records, snapshots)
            else:
                positions = self._store.record(decision.events, records, snapshots)
        except IntegrityError as error:
            recorded = refused_by_recorded_command(error)
            if not recorded:
                metrics.APPEND_CONFLICTS.inc()
            raise SaveRefused(conflicting_stream(error), recorded) from error
        except PersistenceError as error:
            metrics.UNKNOWN_OUTCOMES.inc()
            log.warning(
                "saving a batch failed; finding out from the store what it recorded",
                extra={"events": len(decision.events), "error": str(error)},
            )
            raise StoreUnavailable.because(error) from error
        metrics.EVENTS_APPENDED.inc(len(positions))
        metrics.SNAPSHOTS_WRITTEN.inc(len(snapshots))
        return positions

    def _commit(
        self, batch: list[Pending], decision: Decision, positions: list[int], states: AccountStates
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
                outcome: Outcome = TransferAccepted(requested.originator_id, position_of[index])
            else:
                after = decision.after[index]
                outcome = CommandResult(after.id, after.version, position_of[index], after.balance)
            self._resolve(pending, outcome)
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

    # -- what the store already holds ------------------------------------------

    def _answer_recovered(self, batch: list[Pending]) -> list[Pending]:
        """Answer from the store every recovering attempt whose command it recorded.

        A recovering attempt replaces one that may still be committing (in
        another process); asking only after every earlier append has ended
        means a recorded command is never decided again, and a refusal is
        never given to a command whose first attempt was already committing.
        One case stays open: a first attempt still queued (not yet in a
        transaction) in another command service when this one is refused may
        record the command afterwards; it is then recorded once, but the two
        attempts answered differently.
        """
        recovering = [p for p in batch if p.command.recovering]
        if not recovering:
            return batch
        try:
            recorded = self._store.recorded(
                (p.command.command_id for p in recovering), settle_seconds=self._settle_seconds
            )
        except PersistenceError as error:
            unavailable = StoreUnavailable.because(error)
            for pending in recovering:
                self._resolve(pending, unavailable)
            return [p for p in batch if not p.command.recovering]
        for pending in recovering:
            metrics.RECOVERIES.labels("found" if pending.command.command_id in recorded
                                      else "not-found").inc()  # fmt: skip
        return self._answer_from(batch, recorded, "recovering")

    def _answer_from(
        self, batch: list[Pending], recorded: dict[UUID, RecordedCommand], when: str
    ) -> list[Pending]:
        """Answer the recorded commands of ``batch`` from the store; the others, to decide."""
        rest: list[Pending] = []
        for pending in batch:
            record = recorded.get(pending.command.command_id)
            if record is None:
                rest.append(pending)
                continue
            metrics.ALREADY_RECORDED.labels(when).inc()
            log.info(
                "command already recorded; answering from the store",
                extra={
                    "command_id": str(record.command_id),
                    "stream": str(record.stream_id),
                    "version": record.version,
                    "position": record.position,
                    "when": when,
                },
            )
            try:
                outcome: Outcome = answer_from_record(self._store, pending.command, record)
            except PersistenceError as error:
                outcome = StoreUnavailable.because(error)
            self._resolve(pending, outcome)
        return rest

    # -- after a refused save ------------------------------------------------------

    def _after_refused(
        self, batch: list[Pending], decision: Decision, states: AccountStates, refused: SaveRefused
    ) -> tuple[list[Pending], dict[UUID, Account | None]]:
        """Answer what was recorded before, count conflicts, return the rest to decide again."""
        self._evict(states.working)
        try:
            recorded = (
                self._store.recorded(batch[i].command.command_id for i in decision.accepted)
                if refused.recorded_command
                else {}
            )
            fresh = self._store.get_accounts(states.changed)
        except (PersistenceError, StoreUnavailable) as error:
            self._fail(batch, decision, states, StoreUnavailable.because(error))
            return [], {}
        moved = {
            account_id
            for account_id, account in fresh.items()
            if (account.version if account else 0) != states.base_version(account_id)
        }
        log.info(
            "append refused, deciding the batch again",
            extra={
                "moved_accounts": [str(a) for a in moved],
                "conflicting_stream": str(refused.stream) if refused.stream else None,
                "recorded_before": len(recorded),
                "commands": len(batch),
            },
        )
        accepted = set(decision.accepted)
        # When nothing names a culprit, every accepted command counts as one (still bounded).
        blame_all = not moved and refused.stream is None and not recorded
        self._answer_from(batch, recorded, "retried-save")
        again: list[Pending] = []
        for index, pending in enumerate(batch):
            command = pending.command
            if command.command_id in recorded:
                continue
            culprit = index in accepted and (
                blame_all
                or command.recorded_stream == refused.stream
                or (index in decision.after and command.account_id in moved)
            )
            if culprit:
                pending.conflicts += 1
                if pending.conflicts > self._retries:
                    self._resolve(pending, self._gave_up(pending, index, decision, fresh))
                    continue
                metrics.APPEND_RETRIES.inc()
            again.append(pending)
        return again, fresh

    def _gave_up(
        self, pending: Pending, index: int, decision: Decision, fresh: dict[UUID, Account | None]
    ) -> Exception:
        command = pending.command
        if index in decision.after:
            current = fresh.get(command.account_id)
            return version_refusal(
                command.account_id, current.version if current else 0, command.expected_versions
            )
        return CommandNotRecorded(
            f"stream {command.recorded_stream} kept conflicting; the command was not recorded"
        )

    # -- after a save whose outcome is unknown -----------------------------------------

    def _after_unknown(
        self,
        batch: list[Pending],
        decision: Decision,
        states: AccountStates,
        error: StoreUnavailable,
    ) -> list[Pending]:
        """Find out what the failed save recorded; answer that, return the rest to decide."""
        self._evict([p.command.account_id for p in batch] + list(states.changed))
        recorded = self._settle(batch[i].command.command_id for i in decision.accepted)
        if recorded is None:
            unknown = CommitOutcomeUnknown(
                "the event store failed while recording the command and could not be asked"
                " whether it did; retrying with the same Idempotency-Key is safe"
            )
            self._fail(batch, decision, states, error, accepted=unknown)
            return []
        again: list[Pending] = []
        for pending in self._answer_from(batch, recorded, "unknown-outcome"):
            pending.outages += 1
            if pending.outages >= MAX_OUTAGES:
                self._resolve(
                    pending,
                    CommandNotRecorded(
                        "the event store failed while recording the command; it was not"
                        " recorded, so it is safe to retry"
                    ),
                )
                continue
            again.append(pending)
        return again

    def _settle(self, command_ids: Iterable[UUID]) -> dict[UUID, RecordedCommand] | None:
        """Ask the store (retrying for ``settle_seconds``) which commands it holds; None if it
        never answered."""
        ids = list(command_ids)
        deadline = time.monotonic() + self._settle_seconds
        pause = 0.05
        while True:
            remaining = deadline - time.monotonic()
            try:
                return self._store.recorded(ids, settle_seconds=max(remaining, 0.1))
            except PersistenceError as error:
                if time.monotonic() + pause >= deadline:
                    log.error(
                        "the event store could not say whether a batch was recorded",
                        extra={"commands": len(ids), "error": str(error)},
                    )
                    return None
            time.sleep(pause)
            pause = min(pause * 2, 1.0)

    def _fail(
        self,
        batch: list[Pending],
        decision: Decision,
        states: AccountStates,
        error: Exception,
        *,
        accepted: Exception | None = None,
    ) -> None:
        """Answer a batch the store failed: a refusal stands if its state was fresh.

        Whether a failed commit happened may be unknown, so every account of the
        batch leaves the cache.
        """
        self._evict(pending.command.account_id for pending in batch)
        accepted_indexes = set(decision.accepted)
        for index, pending in enumerate(batch):
            if index in accepted_indexes:
                self._resolve(pending, accepted or error)
                continue
            refusal = decision.refusals.get(index)
            unverified = pending.command.account_id in states.changed
            self._resolve(pending, error if refusal is None or unverified else refusal)

    def _evict(self, account_ids: Iterable[UUID]) -> None:
        if self._cache is None:
            return
        for account_id in list(account_ids):
            try:
                self._cache.get(account_id, evict=True)
            except KeyError:
                continue


def _join_repeats(batch: list[Pending]) -> list[Pending]:
    """One attempt per command id: later ones ride along and get the first one's answer."""
    first: dict[UUID, Pending] = {}
    unique: list[Pending] = []
    for pending in batch:
        leader = first.get(pending.command.command_id)
        if leader is not None:
            leader.repeats.append(pending)
            continue
        first[pending.command.command_id] = pending
        unique.append(pending)
    return unique

