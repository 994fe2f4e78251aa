"""What the folds of accounts, holds and transfers share: events after a stream's first.

A stream's first event makes the aggregate (each kind knows how); every later
one moves its version and ``modified_at`` and changes what its type
registered. An event before the first, or of a type the kind does not know,
is a broken stream: folding on would leave the state silently wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, NoReturn, TypeVar

import msgspec

from shared_kernel.language.events import LedgerEvent

S = TypeVar("S", bound=msgspec.Struct)


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
