"""The aggregate types the unit of work can load, and which type each event belongs to.

An aggregate type is registered once, with the fold that rebuilds its state
and the event types of its streams; the unit of work then loads, applies and
snapshots any of them without knowing which it holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from shared_kernel.language.events import LedgerEvent


class Aggregate(Protocol):
    """What the unit of work needs of any aggregate's state."""

    @property
    def id(self) -> UUID: ...

    @property
    def version(self) -> int: ...


#: Folds stored items (events, and for a snapshotted type its snapshot first) onto a state.
Fold = Callable[[Any, Iterable[Any]], Any]
Apply = Callable[[Any, LedgerEvent], Any]


@dataclass(frozen=True, eq=False)
class AggregateType:
    """One kind of aggregate: how to load it, how each of its events changes it."""

    name: str
    #: Folds what the store returns for one stream (its snapshot, when it has one, first).
    load_fold: Fold
    apply: Apply
    events: tuple[type[LedgerEvent], ...]
    #: Whether its streams are snapshotted (loads then start from the latest snapshot).
    snapshotted: bool = False

    def __repr__(self) -> str:
        return f"AggregateType({self.name})"


_BY_EVENT: dict[type[LedgerEvent], AggregateType] = {}


def register_aggregate(kind: AggregateType) -> AggregateType:
    """Make ``kind``'s events known: :func:`type_of` then routes them to it."""
    for event_type in kind.events:
        registered = _BY_EVENT.setdefault(event_type, kind)
        if registered is not kind:
            msg = f"{event_type.__name__} is already an event of {registered.name}"
            raise ValueError(msg)
    return kind


def type_of(event: LedgerEvent) -> AggregateType:
    """The aggregate type whose stream ``event`` belongs to; an unregistered event raises."""
    try:
        return _BY_EVENT[type(event)]
    except KeyError:
        msg = f"{type(event).__name__} belongs to no registered aggregate type"
        raise ValueError(msg) from None
