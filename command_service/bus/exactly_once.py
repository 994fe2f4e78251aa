"""Each command recorded at most once: answers of recorded commands come from the store.

Whatever retries a command (the library after a lost COMMIT reply, the
writer after a refused save, a client with the same Idempotency-Key), the
store refuses a second recording of its command id. A command it holds is
answered from that record, never decided a second time.
"""

from __future__ import annotations

import logging
from uuid import UUID

from eventsourcing.persistence import PersistenceError

from command_service import metrics
from command_service.bus.attempt import Writing
from command_service.bus.registry import registration_of
from command_service.errors import StoreUnavailable
from command_service.pending import Outcome, Pending
from command_service.recorder import RecordedCommand

log = logging.getLogger(__name__)


def join_repeats(batch: list[Pending]) -> list[Pending]:
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


def answer_recovered(
    writing: Writing, batch: list[Pending], settle_seconds: float
) -> list[Pending]:
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
        recorded = writing.store.recorded(
            (p.command.command_id for p in recovering), settle_seconds=settle_seconds
        )
    except PersistenceError as error:
        unavailable = StoreUnavailable.because(error)
        for pending in recovering:
            writing.resolve(pending, unavailable)
        return [p for p in batch if not p.command.recovering]
    for pending in recovering:
        metrics.RECOVERIES.labels("found" if pending.command.command_id in recorded
                                  else "not-found").inc()  # fmt: skip
    return answer_from(writing, batch, recorded, "recovering")


def answer_from(
    writing: Writing, batch: list[Pending], recorded: dict[UUID, RecordedCommand], when: str
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
        command = pending.command
        try:
            outcome: Outcome = registration_of(command).answer_recorded(
                command, writing.store, record
            )
        except PersistenceError as error:
            outcome = StoreUnavailable.because(error)
        writing.resolve(pending, outcome)
    return rest
