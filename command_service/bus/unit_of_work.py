"""The working copies of one attempt at a batch: aggregates of any registered type.

Which state may a decision trust?

- An *accepted* command may be decided on a cached state: its events carry
  version ``n + 1``, and the store's primary key rejects them if the stream
  had moved past ``n``. The commit is the check.
- A *refusal* (insufficient funds, version conflict, ...) writes nothing, so
  nothing would catch a stale state. It is only given on states read from the
  store in this attempt, or on ones that this batch's commit will verify. A
  refusal first decided on a cached state is decided again on fresh loads.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from eventsourcing.application import LRUCache
from eventsourcing.persistence import PersistenceError

from command_service.bus.aggregates import AggregateType, type_of
from command_service.errors import StoreUnavailable
from command_service.event_store import LedgerEventStore
from command_service.snapshot_rule import snapshots_due
from shared_kernel.language.events import LedgerEvent

#: Aggregate states by stream id, of any registered type, shared by the writer's batches.
StateCache = LRUCache[UUID, Any]


class UnitOfWork:
    """The aggregates one attempt works on: where each came from, where it is now."""

    def __init__(
        self,
        store: LedgerEventStore,
        cache: StateCache | None = None,
        preloaded: dict[UUID, Any] | None = None,
    ) -> None:
        self._store = store
        self._cache = cache
        self._preloaded = preloaded or {}
        #: The state each stream had when this attempt first needed it (None: no stream).
        self.base: dict[UUID, Any] = {}
        #: The state after the commands accepted so far in this attempt.
        self.working: dict[UUID, Any] = {}
        #: Streams read from the store in this attempt: safe grounds for a refusal.
        self.fresh: set[UUID] = set()
        #: Streams with events in this attempt: the commit will verify their base.
        self.changed: set[UUID] = set()
        #: Streams the decision under way has read (see :meth:`start_decision`).
        self.read: set[UUID] = set()
        self._types: dict[UUID, AggregateType] = {}

    def start_decision(self) -> None:
        self.read = set()

    def get(self, kind: AggregateType, stream_id: UUID, *, known_new: bool = False) -> Any:
        """The stream's working state (None when it does not exist), loaded the first time:
        preloaded, else cached, else from the store. ``known_new``: it cannot exist yet."""
        self.read.add(stream_id)
        self._types[stream_id] = kind
        if stream_id in self.working:
            return self.working[stream_id]
        if stream_id in self._preloaded:
            state = self._preloaded[stream_id]
            self.fresh.add(stream_id)
        elif known_new:
            state = None
            self.fresh.add(stream_id)
        else:
            state = self._cached(stream_id)
            if state is None:
                state = self.load(kind, [stream_id])[stream_id]
                self.fresh.add(stream_id)
        self.base[stream_id] = self.working[stream_id] = state
        return state

    def may_be_stale(self, stream_id: UUID) -> bool:
        return stream_id not in self.fresh and stream_id not in self.changed

    def refresh_stale_reads(self) -> bool:
        """Read again from the store every stream the decision read that may be stale
        (before refusing on it); False when there was none."""
        stale = [i for i in self.read if self.may_be_stale(i)]
        for stream_id in stale:
            state = self.load(self._types[stream_id], [stream_id])[stream_id]
            self.base[stream_id] = self.working[stream_id] = state
            self.fresh.add(stream_id)
        return bool(stale)

    def record(self, events: Iterable[LedgerEvent]) -> None:
        """Apply accepted ``events`` to the working copies of their streams."""
        for event in events:
            kind = type_of(event)
            stream_id = event.originator_id
            if stream_id not in self.working:  # a stream the decision created
                self.base[stream_id] = None
                self._types[stream_id] = kind
            self.working[stream_id] = kind.apply(self.working.get(stream_id), event)
            self.changed.add(stream_id)

    def base_version(self, stream_id: UUID) -> int:
        state = self.base.get(stream_id)
        return state.version if state is not None else 0

    def snapshots_due(self, interval: int) -> list[Any]:
        """The states whose snapshot the save of this attempt's events must write."""
        return snapshots_due(
            (
                (self.base_version(i), self.working[i])
                for i in self.changed
                if self._types[i].snapshotted
            ),
            interval,
        )

    def reload_changed(self) -> dict[UUID, Any]:
        """Every changed stream as the store holds it now (after a refused save)."""
        by_type: dict[AggregateType, list[UUID]] = {}
        for stream_id in self.changed:
            by_type.setdefault(self._types[stream_id], []).append(stream_id)
        fresh: dict[UUID, Any] = {}
        for kind, ids in by_type.items():
            fresh.update(self.load(kind, ids))
        return fresh

    def load(self, kind: AggregateType, ids: Iterable[UUID]) -> dict[UUID, Any]:
        """Streams of ``kind`` from the store (snapshot + tail) in one statement."""
        try:
            return self._store.get_streams(kind, ids)
        except PersistenceError as error:
            raise StoreUnavailable.because(error) from error

    def _cached(self, stream_id: UUID) -> Any:
        return cached_state(self._cache, stream_id)


def cached_state(cache: StateCache | None, stream_id: UUID) -> Any:
    """The state as the cache holds it, or None (no cache, or not in it)."""
    if cache is None:
        return None
    try:
        return cache.get(stream_id)
    except KeyError:
        return None
