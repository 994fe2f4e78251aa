"""How a replay is printed: readable lines for people, one JSON object per line for machines.

Text: a header, then per event ``v<version> @<position> <time> <type> <data>``
and an indented ``-> <state>`` line, then the verdict. JSON: one ``event``
record per event (its data, metadata and the full state after it) and one
``check`` record at the end, each on its own line, encoded with msgspec.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TextIO
from uuid import UUID

import msgspec

from command_service.domain.account import Account
from command_service.domain.transfer import Transfer
from command_service.replay.fold import State, Verdict, state_data
from command_service.replay.history import StreamEvent, StreamKind, StreamSummary

#: Fields every event carries; the rest is the event's own data.
_ENVELOPE = ("originator_id", "originator_version", "timestamp", "metadata")
_json = msgspec.json.Encoder()


class EventRecord(msgspec.Struct, kw_only=True, tag="event", tag_field="record"):
    """One event of the stream and the state after it (``FORMAT=json``)."""

    stream: UUID
    kind: StreamKind
    version: int
    position: int
    #: The wire name the event was stored under.
    type: str
    #: The version this code read it as (a later one when an upcaster ran).
    read_as: str
    recorded_at: datetime
    data: dict[str, Any]
    metadata: dict[str, Any]
    state: dict[str, Any]


class CheckRecord(msgspec.Struct, kw_only=True, tag="check", tag_field="record"):
    """The closing check (``FORMAT=json``)."""

    stream: UUID
    ok: bool
    events: int
    snapshot_version: int | None
    tail_events: int | None
    message: str


def event_data(recorded: StreamEvent) -> tuple[dict[str, Any], dict[str, Any]]:
    """The event's own data and its metadata, apart from the envelope every event has."""
    fields: dict[str, Any] = msgspec.to_builtins(recorded.event)
    metadata = fields.get("metadata") or {}
    return {k: v for k, v in fields.items() if k not in _ENVELOPE}, metadata


def _wire_name(recorded: StreamEvent) -> str:
    """The stored wire name, and the version it was read as when an upcaster ran."""
    read_as = recorded.event.TOPIC
    return recorded.topic if read_as == recorded.topic else f"{recorded.topic} (read as {read_as})"


def describe_state(state: State) -> str:
    """The state in a few words: what changes from event to event."""
    if isinstance(state, Account):
        words = f"balance {state.balance} {state.currency}, {state.status}"
        if state.pending_transfers:
            pending = ", ".join(sorted(str(t) for t in state.pending_transfers))
            words += f", pending transfers: {pending}"
        return words
    if isinstance(state, Transfer):
        words = (
            f"{state.status}: {state.amount} {state.currency}"
            f" from {state.from_account} to {state.to_account}"
        )
        return words + (f" ({state.reason})" if state.reason else "")
    # Any other aggregate: its status and what it is about, as far as it says.
    data = msgspec.to_builtins(state)
    money = " ".join(str(data[k]) for k in ("amount", "currency") if k in data)
    return ": ".join(str(part) for part in (data.get("status", f"v{state.version}"), money) if part)


class TextReport:
    def __init__(self, out: TextIO) -> None:
        self._out = out

    def header(self, summary: StreamSummary, kind: StreamKind, up_to: int) -> None:
        shown = min(up_to, summary.last_version)
        scope = "" if shown == summary.last_version else f", showing v1..v{shown}"
        print(
            f"{kind} {summary.stream_id}: {summary.events} events (v1..v{summary.last_version})"
            f"{scope}",
            file=self._out,
        )

    def event(self, stream_id: UUID, kind: StreamKind, recorded: StreamEvent, state: State) -> None:
        data, _ = event_data(recorded)
        at = recorded.event.timestamp.isoformat()
        print(
            f"v{recorded.version} @{recorded.position} {at} {_wire_name(recorded)}"
            f" {_json.encode(data).decode()}",
            file=self._out,
        )
        print(f"    -> {describe_state(state)}", file=self._out)

    def verdict(self, stream_id: UUID, verdict: Verdict) -> None:
        print(verdict.message, file=self._out)


class JsonReport:
    def __init__(self, out: TextIO) -> None:
        self._out = out

    def header(self, summary: StreamSummary, kind: StreamKind, up_to: int) -> None:
        """Every JSON line names its stream; no header line."""

    def event(self, stream_id: UUID, kind: StreamKind, recorded: StreamEvent, state: State) -> None:
        data, metadata = event_data(recorded)
        record = EventRecord(
            stream=stream_id,
            kind=kind,
            version=recorded.version,
            position=recorded.position,
            type=recorded.topic,
            read_as=recorded.event.TOPIC,
            recorded_at=recorded.event.timestamp,
            data=data,
            metadata=metadata,
            state=state_data(state),
        )
        print(_json.encode(record).decode(), file=self._out)

    def verdict(self, stream_id: UUID, verdict: Verdict) -> None:
        record = CheckRecord(
            stream=stream_id,
            ok=verdict.ok,
            events=verdict.events,
            snapshot_version=verdict.snapshot_version,
            tail_events=verdict.tail_events,
            message=verdict.message,
        )
        print(_json.encode(record).decode(), file=self._out)


Report = TextReport | JsonReport
