"""When an account's snapshot is due: one rule for the command service and the saga.

An account is snapshotted when a save carries its version across a multiple
of the interval, so loads read at most ``interval`` events after the latest
snapshot, however many a batch adds. The snapshots due are written in the
same statement as the events that make them due
(:meth:`~command_service.event_store.LedgerEventStore.record`), never after.
"""

from __future__ import annotations

from collections.abc import Iterable

from command_service.domain.account import Account


def snapshot_due(before_version: int, after: Account | None, interval: int) -> bool:
    """Whether going from ``before_version`` to ``after`` crosses a multiple of ``interval``."""
    return after is not None and after.version // interval != before_version // interval


def snapshots_due(
    changes: Iterable[tuple[int, Account | None]], interval: int
) -> list[Account]:
    """The accounts (as they are after the save) whose snapshot the save must write."""
    return [
        after
        for before_version, after in changes
        if after is not None and snapshot_due(before_version, after, interval)
    ]

