"""The query service's Prometheus metrics (the query bus's ``timed`` behaviour observes them).

Metric objects live in the process-wide registry that ``/metrics`` exposes
(``shared_kernel.http_metrics.metrics``); creating them touches no network.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

#: Reads from an indexed table answer in milliseconds; the upper buckets catch
#: pool starvation and slow plans.
_MILLISECOND_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
#: Read-your-writes waits span "already there" to the longest allowed wait.
_WAIT_BUCKETS = (0.0, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

QUERY_DURATION = Histogram(
    "ledger_query_duration_seconds",
    "Time to answer a query, read-your-writes wait included, by route template.",
    ["route"],
    buckets=_MILLISECOND_BUCKETS,
)
READ_YOUR_WRITES_WAIT = Histogram(
    "ledger_query_read_your_writes_wait_seconds",
    "Time a query with min_position waited for the projection to reach it.",
    buckets=_WAIT_BUCKETS,
)
BLOCKED_READS = Counter(
    "ledger_query_blocked_reads_total",
    "Reads answered 503 read-model-blocked: what they show includes a stream the projector holds.",
)
PROJECTION_POSITION = Gauge(
    "ledger_query_projection_position",
    "Event log position the read models served here are known to have reached.",
)

