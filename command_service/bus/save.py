"""The innermost step of the batch pipeline: load, decide, save in one transaction, answer.

Every event of the batch, the id of every command it records (one
``ledger_commands`` row each: the store refuses a second recording) and the
snapshots the events make due go in ONE statement and one transaction.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, PersistenceError

from command_service import command_spans, metrics
from command_service.bus.aggregates import AggregateType
from command_service.bus.attempt import Attempt, SaveRefused, SaveUnknown, Writing
from command_service.bus.decision import Decision, decide_batch
from command_service.bus.registry import registration_of
from command_service.bus.unit_of_work import UnitOfWork, cached_state
from command_service.errors import StoreUnavailable
from command_service.pending import Pending
from command_service.recorder import CommandRecord, refused_by_recorded_command
from shared_kernel import tracing

log = logging.getLogger(__name__)

#: PostgreSQL's detail of a unique violation on the events' primary key:
#: ``Key (originator_id, originator_version)=(<uuid>, <n>) already exists.``
_TAKEN_KEY = re.compile(r"=\(([0-9a-f-]{36}), \d+\)")


class SaveBatch:
    """Decides an attempt against a fresh unit of work and saves what it decided."""

    def __init__(self, writing: Writing, *, snapshot_interval: int) -> None:
        self._writing = writing
        self._snapshot_interval = snapshot_interval

    def __call__(self, attempt: Attempt) -> None:
        preloaded = attempt.preloaded
        if preloaded is None:
            preloaded = self._load_uncached(attempt.batch)
        uow = UnitOfWork(self._writing.store, self._writing.cache, preloaded)
        decision = decide_batch([p.command for p in attempt.batch], uow)
        positions = self._save(attempt.batch, decision, uow)
        self._commit(attempt.batch, decision, positions, uow)

    def _load_uncached(self, batch: list[Pending]) -> dict[UUID, Any]:
        """Every stream the batch reads that the cache lacks, one statement per type.

        When the store fails here, nothing is preloaded: deciding then loads each
        stream itself and refuses only the commands whose streams it cannot read.
        """
        missing: dict[AggregateType, dict[UUID, None]] = {}
        for pending in batch:
            for kind, stream_id in registration_of(pending.command).reads(pending.command):
                if cached_state(self._writing.cache, stream_id) is None:
                    missing.setdefault(kind, {})[stream_id] = None
        preloaded: dict[UUID, Any] = {}
        try:
            for kind, ids in missing.items():
                preloaded.update(self._writing.store.get_streams(kind, ids))
        except PersistenceError:
            return {}
        return preloaded

    def _save(self, batch: list[Pending], decision: Decision, uow: UnitOfWork) -> list[int]:
        """Positions of the saved events, in order; raises SaveRefused or SaveUnknown."""
        if not decision.events:
            return []
        snapshots = uow.snapshots_due(self._snapshot_interval)
        records = [
            CommandRecord(batch[index].command.command_id, event.originator_id,
                          event.originator_version)
            for index, event in _first_events(decision)
            if registration_of(batch[index].command).recorded
        ]  # fmt: skip
        store = self._writing.store
        try:
            if tracing.enabled():
                with command_spans.save(len(decision.events)):
                    positions = store.record(decision.events, records, snapshots)
            else:
                positions = store.record(decision.events, records, snapshots)
        except IntegrityError as error:
            recorded = refused_by_recorded_command(error)
            if not recorded:
                metrics.APPEND_CONFLICTS.inc()
            raise SaveRefused(
                decision, uow, stream=conflicting_stream(error), recorded_command=recorded
            ) from error
        except PersistenceError as error:
            metrics.UNKNOWN_OUTCOMES.inc()
            log.warning(
                "saving a batch failed; finding out from the store what it recorded",
                extra={"events": len(decision.events), "error": str(error)},
            )
            raise SaveUnknown(decision, uow, StoreUnavailable.because(error)) from error
        metrics.EVENTS_APPENDED.inc(len(positions))
        metrics.SNAPSHOTS_WRITTEN.inc(len(snapshots))
        return positions

    def _commit(
        self, batch: list[Pending], decision: Decision, positions: list[int], uow: UnitOfWork
    ) -> None:
        """The batch is in the store: answer everyone, remember states."""
        last_position = dict(zip(decision.accepted, positions, strict=True))
        for index, pending in enumerate(batch):
            refusal = decision.refusals.get(index)
            if refusal is not None:
                self._writing.resolve(pending, refusal)
            else:
                self._writing.resolve(pending, decision.answers[index](last_position.get(index, 0)))
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
        cache = self._writing.cache
        if cache is not None:
            for stream_id, state in uow.working.items():
                if state is not None:
                    cache.put(stream_id, state)


def _first_events(decision: Decision) -> list[tuple[int, Any]]:
    """Each accepted command with its first event: the key its command record names."""
    first: dict[int, Any] = {}
    for index, event in zip(decision.accepted, decision.events, strict=True):
        first.setdefault(index, event)
    return list(first.items())


def conflicting_stream(error: IntegrityError) -> UUID | None:
    """The stream whose version key a refused append hit, when PostgreSQL names it."""
    diag = getattr(error.__cause__, "diag", None)
    detail = getattr(diag, "message_detail", None) or ""
    match = _TAKEN_KEY.search(detail)
    return UUID(match.group(1)) if match else None
