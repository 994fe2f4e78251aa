"""What an operator watches on the relay: how far it has published, and who leads.

``relay_lag_events`` is the relay's lag in positions: the store's head, as the
relay last read it, minus the newest position it has put on the stream.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

PUBLISHED = Counter(
    "relay_published_events", "Events the relay added to the Redis Stream (re-publishes excluded)."
)
POSITION = Gauge("relay_position", "Position of the newest event the relay has published.")
STORE_HEAD = Gauge("relay_store_head", "Position of the newest event in the event store.")
LAG = Gauge(
    "relay_lag_events",
    "Positions between the event store's head (when last read) and the newest published event.",
)
ACTIVE = Gauge("relay_active", "1 while this relay holds the lock and publishes, 0 on standby.")
