"""Prometheus metrics of the command service.

Defined once at import (prometheus-client's registry is process-wide); they
hold no connection, only counters.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

#: Millisecond-scale buckets: a batched append answers in a few ms when healthy.
_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
)  # fmt: skip

COMMANDS = Counter(
    "ledger_commands_total",
    "Commands decided, by command and outcome (ok or the problem code).",
    ["command", "outcome"],
)
COMMAND_DURATION = Histogram(
    "ledger_command_duration_seconds",
    "Time from a command's submission to its answer (queueing, decision and append).",
    ["command"],
    buckets=_LATENCY_BUCKETS,
)
APPEND_BATCH_SIZE = Histogram(
    "ledger_append_batch_commands",
    "Commands the writer took together into one attempt.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)
APPEND_CONFLICTS = Counter(
    "ledger_append_conflicts_total",
    "Saves rejected because another writer had moved an account (IntegrityError).",
)
APPEND_RETRIES = Counter(
    "ledger_append_retries_total", "Commands decided again after a conflicting save."
)
EVENTS_APPENDED = Counter("ledger_appended_events_total", "Events committed to the event store.")
SNAPSHOTS_WRITTEN = Counter(
    "ledger_snapshots_written_total",
    "Account snapshots written with the events that made them due.",
)
APPEND_BACKLOG = Gauge(
    "ledger_append_backlog_commands", "Commands waiting for the command bus's writer thread."
)
IDEMPOTENT_REQUESTS = Counter(
    "ledger_idempotent_requests_total",
    "POSTs with an Idempotency-Key, by what happened: first, replayed (the stored answer),"
    " recovering (took over an abandoned attempt), reused (422) or in-progress (409).",
    ["outcome"],
)
RECOVERIES = Counter(
    "ledger_idempotent_recoveries_total",
    "Take-overs of an abandoned idempotent attempt, by whether its event was already recorded.",
    ["outcome"],
)
# Every outcome exists from the start (at 0), so a dashboard's rate() has a series to read.
for _outcome in ("first", "replayed", "recovering", "reused", "in-progress"):
    IDEMPOTENT_REQUESTS.labels(_outcome)
for _outcome in ("found", "not-found"):
    RECOVERIES.labels(_outcome)
IDEMPOTENCY_KEYS_PURGED = Counter(
    "ledger_idempotency_keys_purged_total",
    "Expired idempotency keys deleted by the periodic purge.",
)
ALREADY_RECORDED = Counter(
    "ledger_commands_already_recorded_total",
    "Commands answered from what the store had recorded instead of being decided again,"
    " by when it was found: recovering (an Idempotency-Key retry took over), retried-save"
    " (a save refused because the command was recorded, e.g. after a lost COMMIT reply)"
    " or unknown-outcome (asked after a save failed).",
    ["when"],
)
for _when in ("recovering", "retried-save", "unknown-outcome"):
    ALREADY_RECORDED.labels(_when)
UNKNOWN_OUTCOMES = Counter(
    "ledger_append_unknown_outcomes_total",
    "Saves that failed with the store (connection lost, server restart) so that whether they"
    " committed had to be asked.",
)
WRITER_STALLED_SECONDS = Gauge(
    "ledger_append_writer_stalled_seconds",
    "How long commands have waited without the writer finishing a batch (0 when idle).",
)
