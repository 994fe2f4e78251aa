"""The advisory-lock keys never change: old and new processes must exclude each other.

The values were computed by the derivations each worker wrote for itself before
they shared one helper; a rolling upgrade runs both generations side by side.
"""

from __future__ import annotations

from command_service.deadlines.runner import deadline_lock_key
from command_service.relay.leadership import leader_lock_key
from command_service.transfer_saga.saga import saga_lock_key
from projector.leases import lock_class


def test_the_relay_key_per_stream() -> None:
    assert leader_lock_key("ledger:events") == 6418763930800053006
    assert leader_lock_key("ledger.events") == 8769652878870024756


def test_the_transfer_saga_key() -> None:
    assert saga_lock_key() == 8689153425598377550


def test_the_deadline_runner_key() -> None:
    assert deadline_lock_key() == -1756294052467746082


def test_the_projector_lease_classes() -> None:
    assert lock_class("ledger:events", "members") == 1720466251
    assert lock_class("ledger:events", "partitions") == 244740677
    assert lock_class("ledger.events", "members") == 1964868502
