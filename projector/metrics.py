"""What an operator watches on the projector: where it is, how far behind, what it refused."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CHECKPOINT = Gauge(
    "ledger_projector_position",
    "Position up to which the read models are applied (the lowest checkpoint).",
)
LAG_EVENTS = Gauge(
    "ledger_projector_lag_events", "Event store head minus the checkpoint, in positions."
)
LAG_SECONDS = Gauge(
    "ledger_projector_lag_seconds",
    "Age of the newest applied event while the store is ahead, else 0.",
)
BATCH_SIZE = Histogram(
    "ledger_projector_batch_events",
    "Stream entries handled per read-model transaction.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000),
)
BATCH_SECONDS = Histogram(
    "ledger_projector_batch_seconds",
    "Time one read-model transaction took, its first statement to its commit.",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)
APPLIED_EVENT_AGE = Histogram(
    "ledger_projector_applied_event_age_seconds",
    "Age of a live batch's newest event when the batch committed: from its decision in the"
    " command service to its read models (what a read with min_position waits for, at most).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0),
)
APPLIED = Counter("ledger_projector_applied_events_total", "Events applied to the read models.")
DEAD_LETTERED = Counter(
    "ledger_projector_dead_lettered_events_total", "Events parked in the dead-letter stream."
)
BLOCKED_STREAMS = Gauge(
    "ledger_projector_blocked_streams",
    "Streams a projection refused an event of and holds back until a replay (projection_blocks).",
    ["projection"],
)
HELD = Counter(
    "ledger_projector_held_events_total",
    "Events of blocked streams the checkpoint passed without applying them (kept for a replay).",
)
CATCH_UP = Counter(
    "ledger_projector_catch_up_events_total",
    "Events applied from the event store rather than the stream.",
)
STALE_PROJECTIONS = Gauge(
    "ledger_projector_stale_projections",
    "Projections whose live tables another version of their code built (found at start-up).",
)
REBUILD_EVENTS_DONE = Gauge(
    "ledger_projector_rebuild_replayed_events",
    "Events the current (or last) rebuild of a projection has replayed.",
    ["projection"],
)
REBUILD_EVENTS_TARGET = Gauge(
    "ledger_projector_rebuild_target_events",
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
