"""Advancing transfers through the command bus: each step of many transfers in one save.

For throughput the steps of many transfers are dispatched together
(:class:`~command_service.bus.inline.InlineBus`): all debits in one unit of
work and one save, then all credits in another, decided against working
copies of the accounts (two transfers from one account see each other). A
refused save (a repeated step, or an account that moved since it was loaded)
is decided again on fresh state by the bus's conflict retry, where the
repeated step is found done (:mod:`.advance`).

Blocking (the eventsourcing library has no asyncio API): run it in a thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

from command_service.bus.attempt import Attempt, SaveRefused
from command_service.bus.attempt import Step as Proceed
from command_service.bus.inline import InlineBus
from command_service.domain.transfer import Transfer
from command_service.errors import ServiceUnavailable
from command_service.event_store import LedgerEventStore
from command_service.transfer_saga import metrics
from command_service.transfer_saga.advance import AdvanceTransfer, StepTaken

log = logging.getLogger(__name__)

Step = Literal["debit", "credit"]
#: Which transfers each step takes, in order.
_STEPS: tuple[tuple[Step, str], ...] = (("debit", "requested"), ("credit", "debited"))

#: Attempts at one transfer's step when accounts keep moving under it; after
#: that the transfer waits for the next pass (or the sweep).
MAX_ATTEMPTS = 20


def _count_conflicts(attempt: Attempt, proceed: Proceed) -> Attempt | None:
    try:
        return proceed(attempt)
    except SaveRefused:
        metrics.STEP_CONFLICTS.inc()
        raise


#: States one pass may hold: its transfers and their two accounts (a pass starts afresh).
PASS_CACHE_SIZE = 100_000


class TransferSteps:
    def __init__(self, store: LedgerEventStore, *, snapshot_interval: int = 100) -> None:
        self._store = store
        # A cache that lives for one pass: accounts move under the command service, so a
        # pass loads them fresh, but its credit step decides on what its debit step just
        # loaded and saved (a target account that moved meanwhile is a conflict, decided
        # again on a fresh load). Saves the credit step's loads, and the debit step's
        # load of the transfers the pass has just read.
        self._bus = InlineBus(
            store,
            append_retries=MAX_ATTEMPTS,
            snapshot_interval=snapshot_interval,
            cache_size=PASS_CACHE_SIZE,
            around_save=[_count_conflicts],
        )

    def advance(self, transfer_ids: Iterable[UUID]) -> list[Transfer]:
        """Take each transfer as far as it goes now; their states afterwards.

        Ids that name no transfer are ignored. Each transfer normally ends
        here: debited in the first save, credited (or refunded) in the second.
        """
        loaded = self._store.get_transfers(transfer_ids).values()
        states = {t.id: t for t in loaded if t is not None}
        self._bus.start_over(states)
        for step, status in _STEPS:
            batch = [t for t in states.values() if t.status == status]
            for after in self._step(step, batch):
                states[after.id] = after
        return list(states.values())

    def _step(self, step: Step, batch: list[Transfer]) -> list[Transfer]:
        """The transfers of ``batch`` after dispatching their next step together."""
        if not batch:
            return []
        started = time.perf_counter()
        outcomes = self._bus.dispatch_together([AdvanceTransfer.of(t) for t in batch])
        results: list[Transfer] = []
        failure: ServiceUnavailable | None = None
        for seen, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, StepTaken):
                if outcome.stepped:
                    _count_end(outcome.transfer)
                results.append(outcome.transfer)
            elif isinstance(outcome, ServiceUnavailable):
                failure = failure or outcome
            else:
                log.warning(
                    "a transfer's accounts kept moving; it waits for the next pass",
                    extra={"transfer_id": str(seen.id), "status": seen.status},
                )
        metrics.STEP_DURATION.labels(step).observe(time.perf_counter() - started)
        metrics.STEP_BATCH.observe(len(batch))
        if failure is not None:
            raise failure  # the store failed: the saga retries the pass
        return results


def _count_end(transfer: Transfer) -> None:
    """Count the end a transfer reached by a step of this saga."""
    if transfer.terminal:
        metrics.TRANSFERS.labels(transfer.status, transfer.reason or "").inc()
        elapsed = (datetime.now(tz=UTC) - transfer.requested_at).total_seconds()
        metrics.COMPLETION.observe(max(elapsed, 0.0))
