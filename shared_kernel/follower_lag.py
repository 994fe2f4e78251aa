"""How far a follower of the event log (the relay, the saga) is behind the store's head.

Two gauges, named like the projector's: ``ledger_<process>_lag_events`` (head
minus position, as last read) and ``ledger_<process>_lag_seconds``: while
behind, the time since the follower last reached the head it had read, else 0.
Every event still waiting was appended after that moment, so the value is an
upper bound of the oldest waiting event's age; it grows while the follower is
stuck, without reading event times.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import REGISTRY, CollectorRegistry, Gauge


class FollowerLag:
    def __init__(
        self,
        process: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self.events = Gauge(
            f"ledger_{process}_lag_events",
            "Positions between the event store's head (when last read) and the newest handled.",
            registry=registry,
        )
        self.seconds = Gauge(
            f"ledger_{process}_lag_seconds",
            "While behind, time since the head last read was reached (an upper bound of the"
            " oldest waiting event's age), else 0.",
            registry=registry,
        )
        self._clock = clock
        self._caught_up_at = clock()
        self._behind = False
        self.seconds.set_function(self._seconds)

    def observe(self, head: int, position: int) -> None:
        """The follower has handled up to ``position``; the store's head was ``head``."""
        behind = max(0, head - position)
        self.events.set(behind)
        self._behind = behind > 0
        if not self._behind:
            self._caught_up_at = self._clock()

    def _seconds(self) -> float:
        return self._clock() - self._caught_up_at if self._behind else 0.0
