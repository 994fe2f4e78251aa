"""Advancing transfers: load them, decide with the pure domain, save each step in one go.

A step's events (the leg on the account, the transfer's next event, and on
completion the source's settlement) are saved in ONE append, with any
account snapshots they make due. The
transfer event carries the next version of the transfer stream, so a step
repeated by anyone (this saga after a crash, a second saga) is refused by
the store's (stream, version) key: :class:`IntegrityError`, and nothing of
that save happens.

For throughput the steps of many transfers are saved together: all debits
in one save, then all credits in another, decided against working copies of
the accounts (two transfers from one account see each other). If that save
is refused (a repeated step, or an account that moved since it was loaded),
each transfer of the batch is retried on its own from a fresh load, where a
refusal then means exactly one thing for that transfer.

Blocking (the eventsourcing library has no asyncio API): run it in a thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from command_service import snapshot_rule
from command_service.domain import account as accounts
from command_service.domain import transfer as transfers
from command_service.domain.account import Account, DomainError
from command_service.domain.transfer import Transfer, is_transfer_event, next_step
from command_service.event_store import LedgerEventStore
from command_service.transfer_saga import metrics
from shared_kernel.events import LedgerEvent

log = logging.getLogger(__name__)

Step = Literal["debit", "credit"]

#: Attempts at one transfer's step when accounts keep moving under it; after
#: that the transfer waits for the next pass (or the sweep).
MAX_ATTEMPTS = 20


class WorkingAccounts:
    """Accounts loaded fresh from the store, then kept current with the events decided."""

    def __init__(self, store: LedgerEventStore) -> None:
        self._store = store
        self._base: dict[UUID, int] = {}
        self.working: dict[UUID, Account | None] = {}

    def load(self, account_ids: Iterable[UUID]) -> None:
        """Load every one of ``account_ids`` not loaded yet, in one statement."""
        missing = [i for i in dict.fromkeys(account_ids) if i not in self.working]
        for account_id, account in self._store.get_accounts(missing).items():
            self.working[account_id] = account
            self._base[account_id] = account.version if account is not None else 0

    def get(self, account_id: UUID) -> Account | None:
        if account_id not in self.working:
            try:
                account: Account | None = self._store.get_account(account_id)
            except AggregateNotFoundError:
                account = None
            self.working[account_id] = account
            self._base[account_id] = account.version if account is not None else 0
        return self.working[account_id]

    def record(self, events: Iterable[LedgerEvent]) -> None:
        for event in events:
            if not is_transfer_event(event):
                self.working[event.originator_id] = accounts.apply(
                    self.working.get(event.originator_id), event
                )

    def forget(self) -> None:
        """After a refused save: every working copy may be wrong; load again when asked."""
        self._base.clear()
        self.working.clear()

    def snapshots_due(self, interval: int) -> list[Account]:
        """The accounts whose snapshot the save of the events recorded so far must write."""
        return snapshot_rule.snapshots_due(
            ((self._base.get(i, 0), a) for i, a in self.working.items()), interval
        )

    def saved(self, snapshots: Iterable[Account]) -> None:
        """After a save: the accounts snapshotted there are not due again in this pass."""
        for account in snapshots:
            self._base[account.id] = account.version


class TransferSteps:
    def __init__(self, store: LedgerEventStore, *, snapshot_interval: int = 100) -> None:
        self._store = store
        self._snapshot_interval = snapshot_interval

    def advance(self, transfer_ids: Iterable[UUID]) -> list[Transfer]:
        """Take each transfer as far as it goes now; their states afterwards.

        Ids that name no transfer are ignored. Each transfer normally ends
        here: debited in the first save, credited (or refunded) in the second.
        """
        loaded = self._store.get_transfers(transfer_ids).values()
        states = {t.id: t for t in loaded if t is not None}
        working = WorkingAccounts(self._store)
        requested = [t for t in states.values() if t.status == "requested"]
        working.load(t.from_account for t in requested)
        for after in self._step("debit", requested, working):
            states[after.id] = after
        debited = [t for t in states.values() if t.status == "debited"]
        working.load(a for t in debited for a in (t.from_account, t.to_account))
        for after in self._step("credit", debited, working):
            states[after.id] = after
        return list(states.values())

    def _step(
        self, step: Step, batch: list[Transfer], working: WorkingAccounts
    ) -> list[Transfer]:
        if not batch:
            return []
        started = time.perf_counter()
        decided: list[tuple[Transfer, list[LedgerEvent]]] = []
        for transfer in batch:
            events = self._decide(transfer, working)
            if events:
                working.record(events)
                decided.append((transfer, events))
        if not decided:
            return []
        snapshots = working.snapshots_due(self._snapshot_interval)
        try:
            self._store.record(
                [event for _, events in decided for event in events], snapshots=snapshots
            )
        except IntegrityError:
            metrics.STEP_CONFLICTS.inc()
            working.forget()
            log.info(
                "a batched step was refused; stepping each transfer alone",
                extra={"step": step, "transfers": len(decided)},
            )
            results = [self._alone(transfer) for transfer, _ in decided]
        else:
            working.saved(snapshots)
            results = [_after(transfer, events) for transfer, events in decided]
        metrics.STEP_DURATION.labels(step).observe(time.perf_counter() - started)
        metrics.STEP_BATCH.observe(len(decided))
        return results

    def _decide(self, transfer: Transfer, working: WorkingAccounts) -> list[LedgerEvent]:
        source = working.get(transfer.from_account)
        target = working.get(transfer.to_account) if transfer.status == "debited" else None
        try:
            return next_step(transfer, source, target)
        except (DomainError, ValueError):
            # A state the rules say cannot happen (a debited transfer whose source lost
            # track of it): leave the transfer for an operator, never guess.
            log.exception(
                "cannot decide the next step of a transfer",
                extra={"transfer_id": str(transfer.id), "status": transfer.status},
            )
            return []

    def _alone(self, seen: Transfer) -> Transfer:
        """Step one transfer to its end from fresh loads, retrying while its accounts move."""
        transfer: Transfer | None = seen
        for _ in range(MAX_ATTEMPTS):
            transfer = self._store.get_transfer(seen.id)
            assert transfer is not None  # ``seen`` was loaded from the store
            if transfer.version > seen.version:
                metrics.STEPS_ALREADY_DONE.inc()  # someone else took this step
                seen = transfer
            if transfer.terminal:
                return transfer
            working = WorkingAccounts(self._store)
            working.load((transfer.from_account, transfer.to_account))
            events = self._decide(transfer, working)
            if not events:
                return transfer
            working.record(events)
            try:
                self._store.record(events, snapshots=working.snapshots_due(self._snapshot_interval))
            except IntegrityError:
                metrics.STEP_CONFLICTS.inc()
                continue
            seen = _after(transfer, events)
            if seen.terminal:
                return seen
        log.warning(
            "a transfer's accounts kept moving; it waits for the next pass",
            extra={"transfer_id": str(seen.id), "status": seen.status},
        )
        return seen


def _after(transfer: Transfer, events: list[LedgerEvent]) -> Transfer:
    """The transfer after its saved step; counts the end it reached."""
    after = transfers.fold(transfer, (e for e in events if is_transfer_event(e)))
    assert after is not None
    if after.terminal:
        metrics.TRANSFERS.labels(after.status, after.reason or "").inc()
        elapsed = (datetime.now(tz=UTC) - after.requested_at).total_seconds()
        metrics.COMPLETION.observe(max(elapsed, 0.0))
    return after
