"""Conflict retry: after a refused save, decide again on fresh state, a bounded number of times.

The store refuses a save (``IntegrityError``) when another writer moved a
stream the batch wrote to, or when a command of the batch was recorded
before. The commands recorded before are answered from the record; the rest
are decided again on states loaded fresh. A command whose own streams keep
conflicting is refused after ``retries`` attempts.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from eventsourcing.persistence import PersistenceError

from command_service import metrics
from command_service.bus.attempt import Attempt, SaveRefused, Step, Writing
from command_service.bus.batch_failure import fail_batch
from command_service.bus.exactly_once import answer_from
from command_service.bus.unit_of_work import UnitOfWork
from command_service.errors import CommandNotRecorded, StoreUnavailable, version_refusal
from command_service.pending import Pending

log = logging.getLogger(__name__)


class RetryConflicts:
    def __init__(self, writing: Writing, *, retries: int) -> None:
        self._writing = writing
        self._retries = retries

    def __call__(self, attempt: Attempt, proceed: Step) -> Attempt | None:
        try:
            return proceed(attempt)
        except SaveRefused as refused:
            return self._after_refused(attempt.batch, refused)

    def _after_refused(self, batch: list[Pending], refused: SaveRefused) -> Attempt | None:
        """Answer what was recorded before, count conflicts, return the rest to decide again."""
        decision, uow = refused.decision, refused.uow
        writing = self._writing
        writing.evict(uow.working)
        accepted = decision.accepted_commands()
        try:
            recorded = (
                writing.store.recorded(batch[i].command.command_id for i in accepted)
                if refused.recorded_command
                else {}
            )
            fresh = uow.reload_changed()
        except (PersistenceError, StoreUnavailable) as error:
            fail_batch(writing, batch, decision, uow, StoreUnavailable.because(error))
            return None
        moved = {
            stream_id
            for stream_id, state in fresh.items()
            if (state.version if state is not None else 0) != uow.base_version(stream_id)
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
        # When nothing names a culprit, every accepted command counts as one (still bounded).
        blame_all = not moved and refused.stream is None and not recorded
        answer_from(writing, batch, recorded, "retried-save")
        again: list[Pending] = []
        for index, pending in enumerate(batch):
            command = pending.command
            if command.command_id in recorded:
                continue
            streams = decision.streams.get(index, set())
            culprit = bool(streams) and (
                blame_all or refused.stream in streams or not streams.isdisjoint(moved)
            )
            if culprit:
                pending.conflicts += 1
                if pending.conflicts > self._retries:
                    writing.resolve(pending, _gave_up(pending, uow, fresh))
                    continue
                metrics.APPEND_RETRIES.inc()
            again.append(pending)
        return Attempt(again, fresh)


def _gave_up(pending: Pending, uow: UnitOfWork, fresh: dict[UUID, Any]) -> Exception:
    """A command on an existing stream that kept moving is refused like a version mismatch;
    one whose new stream kept being taken was simply not recorded."""
    command = pending.command
    stream = command.stream_id
    if uow.base_version(stream) > 0:
        current = fresh.get(stream)
        return version_refusal(
            stream, current.version if current is not None else 0, command.expected_versions
        )
    return CommandNotRecorded(f"stream {stream} kept conflicting; the command was not recorded")
