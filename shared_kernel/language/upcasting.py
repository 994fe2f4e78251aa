"""Reading events of an older shape as the current one: upcasters by wire name.

Stored events are never rewritten. When an event's shape changes, the new
shape gets a new wire name (``ledger.MoneyDeposited.v2``) and the old one
stays as a *retired* version: a frozen struct that still decodes the old
bytes, plus one function that turns it into the next version. Decoding a
retired wire name runs the chain up to the current version, so the aggregate
fold, the projector, replay, rebuild and time travel (which all decode
through :func:`shared_kernel.language.events.decode_event`) only ever see current
events. Retired versions keep their JSON Schemas, generated from their frozen
structs, and the compatibility check (:mod:`schema.compatibility`) holds them
to the shape that was published.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_type_hints

import msgspec


@dataclass(frozen=True, slots=True)
class RetiredVersion:
    """A wire name no longer written: how to decode it and what it becomes."""

    struct: type[Any]
    upcast: Callable[[Any], Any]
    decoder: msgspec.json.Decoder[Any]
    #: The version ``upcast`` returns (its return annotation).
    becomes: type[Any]

    @property
    def topic(self) -> str:
        return str(self.struct.TOPIC)


#: Retired wire name -> its frozen shape and the step to the next version.
RETIRED: dict[str, RetiredVersion] = {}


def retire(struct: type[Any], upcast: Callable[[Any], Any]) -> None:
    """Register ``struct`` (with its ``TOPIC``) as retired, read through ``upcast``."""
    topic = str(struct.TOPIC)
    if topic in RETIRED:
        msg = f"{topic} is retired twice"
        raise ValueError(msg)
    try:
        becomes = get_type_hints(upcast).get("return")
    except NameError:  # an annotation naming something out of the function's reach
        becomes = None
    if not isinstance(becomes, type) or not hasattr(becomes, "TOPIC"):
        msg = f"the upcaster of {topic} must declare the event type it returns"
        raise TypeError(msg)
    RETIRED[topic] = RetiredVersion(struct, upcast, msgspec.json.Decoder(struct), becomes)


def upcast_retired(topic: str, data: bytes) -> Any:
    """Decode ``data`` of the retired ``topic`` and bring it up to the current version.

    Each step returns the next version's struct; a step may land on another
    retired version (its own upcaster then runs), never loop: a chain ends at a
    version that is not retired.
    """
    retired = RETIRED[topic]
    event = retired.upcast(retired.decoder.decode(data))
    seen = {topic}
    while (next_topic := str(type(event).TOPIC)) in RETIRED:
        if next_topic in seen:
            msg = f"the upcasters of {topic} loop at {next_topic}"
            raise ValueError(msg)
        seen.add(next_topic)
        event = RETIRED[next_topic].upcast(event)
    return event


def reads_as(topic: str) -> str:
    """The wire name of the version a stored ``topic`` is read as (itself unless retired)."""
    seen = set()
    while topic in RETIRED and topic not in seen:
        seen.add(topic)
        topic = str(RETIRED[topic].becomes.TOPIC)
    return topic


def wire_names(event_type: type[Any]) -> tuple[str, ...]:
    """Every wire name stored events of ``event_type`` may carry: its own, then its retired ones.

    SQL that selects events by wire name (reference folds, the saga's filters)
    must ask for all of them, or it silently misses what older code stored.
    """
    current = str(event_type.TOPIC)
    return (current, *sorted(t for t in RETIRED if reads_as(t) == current))
