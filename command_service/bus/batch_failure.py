"""Answering a batch whose save the store failed: a refusal stands only on verified state."""

from __future__ import annotations

from command_service.bus.attempt import Writing
from command_service.bus.decision import Decision
from command_service.bus.unit_of_work import UnitOfWork
from command_service.pending import Pending


def fail_batch(
    writing: Writing,
    batch: list[Pending],
    decision: Decision,
    uow: UnitOfWork,
    error: Exception,
    *,
    accepted: Exception | None = None,
) -> None:
    """Answer every command of ``batch``: accepted ones with ``accepted`` (or ``error``),
    refused ones with their refusal when no state it read was waiting on the failed commit.

    Whether a failed commit happened may be unknown, so every stream the batch
    read leaves the cache.
    """
    writing.evict(stream for reads in decision.reads.values() for stream in reads)
    accepted_indexes = set(decision.accepted)
    for index, pending in enumerate(batch):
        if index in accepted_indexes:
            writing.resolve(pending, accepted or error)
            continue
        refusal = decision.refusals.get(index)
        unverified = not decision.reads.get(index, set()).isdisjoint(uow.changed)
        writing.resolve(pending, error if refusal is None or unverified else refusal)
