"""Settling a save whose outcome is unknown (the connection broke, the server restarted).

The store is asked, once every earlier append has ended, which commands it
holds. Those are answered from the record; the rest were not recorded and
are decided again, a bounded number of times; if the store cannot be asked,
the answer says the outcome is unknown and that a retry with the same
Idempotency-Key is safe.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from uuid import UUID

from eventsourcing.persistence import PersistenceError

from command_service.bus.attempt import Attempt, SaveUnknown, Step, Writing
from command_service.bus.batch_failure import fail_batch
from command_service.bus.exactly_once import answer_from
from command_service.errors import CommandNotRecorded, CommitOutcomeUnknown
from command_service.pending import Pending
from command_service.recorder import RecordedCommand

log = logging.getLogger(__name__)

#: Attempts at a command whose saves failed for the store's reasons, each time
#: found not recorded: then it is answered "not recorded" and the writer moves on.
MAX_OUTAGES = 2


class SettleUnknownOutcomes:
    def __init__(self, writing: Writing, *, settle_seconds: float) -> None:
        self._writing = writing
        self._settle_seconds = settle_seconds

    def __call__(self, attempt: Attempt, proceed: Step) -> Attempt | None:
        try:
            return proceed(attempt)
        except SaveUnknown as unknown:
            return self._after_unknown(attempt.batch, unknown)

    def _after_unknown(self, batch: list[Pending], unknown: SaveUnknown) -> Attempt | None:
        """Find out what the failed save recorded; answer that, return the rest to decide."""
        decision, uow = unknown.decision, unknown.uow
        writing = self._writing
        writing.evict(list(uow.changed) + [s for reads in decision.reads.values() for s in reads])
        recorded = self._settle(batch[i].command.command_id for i in decision.accepted_commands())
        if recorded is None:
            outcome_unknown = CommitOutcomeUnknown(
                "the event store failed while recording the command and could not be asked"
                " whether it did; retrying with the same Idempotency-Key is safe"
            )
            fail_batch(writing, batch, decision, uow, unknown.error, accepted=outcome_unknown)
            return None
        again: list[Pending] = []
        for pending in answer_from(writing, batch, recorded, "unknown-outcome"):
            pending.outages += 1
            if pending.outages >= MAX_OUTAGES:
                writing.resolve(
                    pending,
                    CommandNotRecorded(
                        "the event store failed while recording the command; it was not"
                        " recorded, so it is safe to retry"
                    ),
                )
                continue
            again.append(pending)
        return Attempt(again)

    def _settle(self, command_ids: Iterable[UUID]) -> dict[UUID, RecordedCommand] | None:
        """Ask the store (retrying for ``settle_seconds``) which commands it holds; None if it
        never answered."""
        ids = list(command_ids)
        deadline = time.monotonic() + self._settle_seconds
        pause = 0.05
        while True:
            remaining = deadline - time.monotonic()
            try:
                return self._writing.store.recorded(ids, settle_seconds=max(remaining, 0.1))
            except PersistenceError as error:
                if time.monotonic() + pause >= deadline:
                    log.error(
                        "the event store could not say whether a batch was recorded",
                        extra={"commands": len(ids), "error": str(error)},
                    )
                    return None
            time.sleep(pause)
            pause = min(pause * 2, 1.0)
