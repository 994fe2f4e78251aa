"""What an operator watches on the projector: where it is, how far behind, what it refused."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CHECKPOINT = Gauge("projector_checkpoint", "Position up to which the read models are applied.")
LAG_EVENTS = Gauge("projector_lag_events", "Event store head minus the checkpoint, in positions.")
LAG_SECONDS = Gauge(
    "projector_lag_seconds", "Age of the newest applied event while the store is ahead, else 0."
)
BATCH_SIZE = Histogram(
    "projector_batch_size",
    "Entries handled per read-model transaction.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000),
)
APPLIED = Counter("projector_events_applied", "Events applied to the read models.")
DEAD_LETTERED = Counter("projector_dead_lettered", "Events parked in the dead-letter stream.")
CATCH_UP = Counter(
    "projector_catch_up_events", "Events applied from the event store rather than the stream."
)
