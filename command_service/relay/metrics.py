"""What an operator watches on the relay: how far it has published, and who leads.

``relay_store_head - relay_position`` is the relay's lag in positions.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

PUBLISHED = Counter(
    "relay_published_events", "Events the relay added to the Redis Stream (re-publishes excluded)."
)
POSITION = Gauge("relay_position", "Position of the newest event the relay has published.")
STORE_HEAD = Gauge("relay_store_head", "Position of the newest event in the event store.")
ACTIVE = Gauge("relay_active", "1 while this relay holds the lock and publishes, 0 on standby.")
