"""What an operator watches on the transfer saga.

``ledger_saga_lag_events`` and ``_lag_seconds`` (:mod:`shared_kernel.follower_lag`)
say how far behind the log the saga is; ``ledger_saga_transfers_total`` how transfers end;
``ledger_saga_active`` who leads.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from shared_kernel.follower_lag import FollowerLag

TRANSFERS = Counter(
    "ledger_saga_transfers_total",
    "Transfers the saga brought to an end, by outcome (completed, refunded, failed) and reason.",
    ["outcome", "reason"],
)
STEP_DURATION = Histogram(
    "ledger_saga_step_duration_seconds",
    "Time to decide and save one step (debit or credit) for a batch of transfers.",
    ["step"],
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
)
STEP_BATCH = Histogram(
    "ledger_saga_step_batch_transfers",
    "Transfers whose step was saved together in one transaction.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)
STEPS_ALREADY_DONE = Counter(
    "ledger_saga_steps_already_done_total",
    "Steps skipped because the transfer had moved on (a repeat after a crash, or another saga).",
)
STEP_CONFLICTS = Counter(
    "ledger_saga_step_conflicts_total",
    "Step saves rejected by the store's version key (then decided again one by one).",
)
COMPLETION = Histogram(
    "ledger_saga_transfer_completion_seconds",
    "Time from a transfer's request to the end the saga recorded for it.",
    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0),
)
POSITION = Gauge("ledger_saga_position", "Position of the newest log event the saga has handled.")
STORE_HEAD = Gauge(
    "ledger_saga_store_head", "Position of the newest event in the event store, as last read."
)
LAG = FollowerLag("saga")
ACTIVE = Gauge("ledger_saga_active", "1 while this saga holds the lock and works, 0 on standby.")
UNFINISHED_SWEPT = Counter(
    "ledger_saga_swept_transfers_total", "Unfinished transfers the sweep found and advanced."
)
