"""What an operator watches on the relay: how far it has published, and who leads.

``ledger_relay_lag_events`` and ``_lag_seconds`` (:mod:`shared_kernel.follower_lag`)
say how far the stream is behind the event store, like the saga's and the projector's.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from shared_kernel.follower_lag import FollowerLag

PUBLISHED = Counter(
    "ledger_relay_published_events_total",
    "Events the relay added to the Redis Stream (re-publishes excluded).",
)
POSITION = Gauge("ledger_relay_position", "Position of the newest event the relay has published.")
STORE_HEAD = Gauge(
    "ledger_relay_store_head", "Position of the newest event in the event store, as last read."
)
LAG = FollowerLag("relay")
ACTIVE = Gauge(
    "ledger_relay_active", "1 while this relay holds the lock and publishes, 0 on standby."
)
