"""What accounts, holds and transfers share: the next event's header, and the fold.

An aggregate's next event goes to its stream at the version after its own. In
the fold, a stream's first event makes the aggregate (each kind knows how);
every later one moves its version and ``modified_at`` and changes what its
type registered. An event before the first, or of a type the kind does not know,
is a broken stream: folding on would leave the state silently wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, NoReturn, Protocol, TypedDict, TypeVar
from uuid import UUID

import msgspec

from shared_kernel.language.events import EventMetadata, LedgerEvent

S = TypeVar("S", bound=msgspec.Struct)


class Versioned(Protocol):
    @property
    def id(self) -> UUID: ...
    @property
    def version(self) -> int: ...


class EventHeader(TypedDict):
    originator_id: UUID
    originator_version: int
    metadata: EventMetadata


def next_event_of(aggregate: Versioned, metadata: EventMetadata) -> EventHeader:
    """Where the event that follows ``aggregate``'s last goes, and why it happens."""
    return {
        "originator_id": aggregate.id,
        "originator_version": aggregate.version + 1,
        "metadata": metadata,
    }


def evolve(
    state: S | None,
    event: LedgerEvent,
    first: type[LedgerEvent],
    changes: Callable[[Any, S], dict[str, Any]],
) -> S:
    """``state`` after ``event``, a later event of its stream (``first`` opens the stream)."""
    if state is None:
        msg = f"{type(event).__name__} before {first.__name__} in stream {event.originator_id}"
        raise ValueError(msg)
    return msgspec.structs.replace(
        state,
        version=event.originator_version,
        modified_at=event.timestamp,
        **changes(event, state),
    )


def foreign(event: LedgerEvent, kind: str) -> NoReturn:
    """Refuse an event of a type the fold of ``kind`` streams does not know."""
    msg = f"{type(event).__name__} does not belong on {kind} stream {event.originator_id}"
    raise ValueError(msg)


def fold(
    apply: Callable[[S | None, LedgerEvent], S], state: S | None, events: Iterable[LedgerEvent]
) -> S | None:
    """Fold ``events`` onto ``state`` (None before the first) with ``apply``."""
    for event in events:
        state = apply(state, event)
    return state
