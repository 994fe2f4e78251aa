"""Folding a replayed stream two ways, and whether the two agree.

The *full fold* applies every event from version 1 with the domain's own
``apply``, the one its aggregate type registered
(:mod:`command_service.aggregate_types`): the state
after each event is what the replay prints. The *snapshot fold* starts from
the latest snapshot at or below the replayed version and folds the tail with
:func:`~command_service.event_store.project_account`, the function the
event store's repository runs when the command service loads an account. If
the two differ, the command service is deciding on a state the history does
not support, and the operator has to know.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from command_service.bus.aggregates import AggregateType
from command_service.domain.account import Account
from command_service.event_store import project_account
from command_service.replay.history import SnapshotRow, StreamEvent, StreamKind, kind_of

#: The state of any registered aggregate type (an Account, a Transfer, ...).
State = Any


@dataclass(frozen=True, slots=True)
class Verdict:
    """The closing check: whether snapshot + tail equals the full fold, in words."""

    ok: bool
    message: str
    events: int
    snapshot_version: int | None
    tail_events: int | None


def count(events: int) -> str:
    return f"{events} event" if events == 1 else f"{events} events"


def differences(left: State | None, right: State | None) -> str:
    """``field: left vs right`` for every field that differs (``left`` is the snapshot side)."""
    if left is None or right is None or type(left) is not type(right):
        return f"{left!r} vs {right!r}"
    fields = left.__struct_fields__
    return ", ".join(
        f"{name}: {getattr(left, name)!r} vs {getattr(right, name)!r}"
        for name in fields
        if getattr(left, name) != getattr(right, name)
    )


class StreamFold:
    """Consumes a stream's events in order; :meth:`verdict` once they are all in."""

    def __init__(self, snapshot: SnapshotRow | None) -> None:
        self.kind: StreamKind | None = None
        self._type: AggregateType | None = None
        self.state: State | None = None
        self.events = 0
        self._snapshot = snapshot
        self._at_snapshot: State | None = None
        self._from_snapshot: Account | None = (
            snapshot.snapshot.state if snapshot is not None and snapshot.snapshot else None
        )
        self._tail = 0

    def step(self, recorded: StreamEvent) -> State:
        """The full fold's state after ``recorded`` (the domain refuses an out-of-place event)."""
        event = recorded.event
        if self._type is None:
            self._type = kind_of(event)
            self.kind = self._type.name
        self.state = self._type.apply(self.state, event)
        self.events += 1
        snapshot = self._snapshot
        if snapshot is not None and snapshot.snapshot is not None:
            if recorded.version == snapshot.version:
                self._at_snapshot = self.state
            elif recorded.version > snapshot.version:
                self._from_snapshot = project_account(self._from_snapshot, [event])
                self._tail += 1
        return self.state

    def verdict(self, bound: int | None) -> Verdict:
        """Compare the two folds; ``bound`` is the VERSION asked for, if any."""
        events, snapshot = self.events, self._snapshot
        if self._type is not None and not self._type.snapshotted:
            kind = self._type.name
            if snapshot is not None:
                return self._verdict(
                    False, f"MISMATCH: a snapshot at v{snapshot.version} exists for a {kind}"
                    f" stream, and {kind}s are never snapshotted", snapshot.version,
                )  # fmt: skip
            return self._verdict(
                True, f"{kind} streams are not snapshotted; full fold of {count(events)} only"
            )
        if snapshot is None:
            below = f" at or below v{bound}" if bound is not None else ""
            return self._verdict(True, f"no snapshot{below}; full fold of {count(events)} only")
        at = snapshot.version
        if snapshot.snapshot is None:
            return self._verdict(
                False, f"MISMATCH: snapshot at v{at} cannot be decoded ({snapshot.error})", at
            )
        if self._at_snapshot is None:
            return self._verdict(
                False, f"MISMATCH: snapshot at v{at} lies beyond the stream's last event"
                f" (v{self._last_version()})", at,
            )  # fmt: skip
        sides = f"snapshot at v{at} + {count(self._tail)}"
        full = f"full fold of {count(events)}"
        snapshot_state = snapshot.snapshot.state
        if self._from_snapshot == self.state and snapshot_state == self._at_snapshot:
            return self._verdict(True, f"{sides} == {full}: OK", at)
        parts = [f"MISMATCH: {sides} != {full}"]
        if self._from_snapshot != self.state:
            parts.append(f"they differ in {differences(self._from_snapshot, self.state)}")
        if snapshot_state != self._at_snapshot:
            parts.append(
                f"the snapshot itself differs from the fold of v1..v{at} in"
                f" {differences(snapshot_state, self._at_snapshot)}"
            )
        return self._verdict(False, "; ".join(parts), at)

    def _last_version(self) -> int:
        return self.state.version if self.state is not None else 0

    def _verdict(self, ok: bool, message: str, snapshot_version: int | None = None) -> Verdict:
        tail = self._tail if snapshot_version is not None else None
        return Verdict(ok, message, self.events, snapshot_version, tail)


def state_data(state: State) -> dict[str, object]:
    """The state as plain JSON-able data, sets sorted so the output is deterministic."""
    data: dict[str, object] = msgspec.to_builtins(state)
    if isinstance(pending := data.get("pending_transfers"), list):
        data["pending_transfers"] = sorted(pending)
    return data
