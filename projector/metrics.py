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
BLOCKED_STREAMS = Gauge(
    "projector_blocked_streams",
    "Streams a projection refused an event of and holds back until a replay (projection_blocks).",
    ["projection"],
)
HELD = Counter(
    "projector_held_events",
    "Events of blocked streams the checkpoint passed without applying them (kept for a replay).",
)
CATCH_UP = Counter(
    "projector_catch_up_events", "Events applied from the event store rather than the stream."
)
STALE_PROJECTIONS = Gauge(
    "projector_stale_projections",
    "Projections whose live tables another version of their code built (found at start-up).",
)
REBUILD_EVENTS_DONE = Gauge(
    "projector_rebuild_events_done",
    "Events the current (or last) rebuild of a projection has replayed.",
    ["projection"],
)
REBUILD_EVENTS_TARGET = Gauge(
    "projector_rebuild_events_target",
    "Events the current (or last) rebuild of a projection has to replay in all.",
    ["projection"],
)


def blocked_streams(counts: dict[str, int], projections: list[str]) -> None:
    """Blocked streams per projection; every projection gets a sample, 0 when none."""
    for name in projections:
        BLOCKED_STREAMS.labels(name).set(counts.get(name, 0))


def rebuild_progress(projection: str, done: int, total: int) -> None:
    """A rebuild's progress: ``done / total`` of its events replayed."""
    REBUILD_EVENTS_DONE.labels(projection).set(done)
    REBUILD_EVENTS_TARGET.labels(projection).set(total)
