"""The query bus's cross-cutting steps (read-your-writes is :mod:`query_service.read_your_writes`).

Each is ``async (asked, inner) -> answer``: it may act before and after the
steps inside it. Bootstrap puts them in order, outermost first.
"""

from __future__ import annotations

import time
from typing import Any

from query_service.metrics import QUERY_DURATION
from query_service.query_bus import Asked, Next
from shared_kernel import tracing
from shared_kernel.metric_children import child

_tracer = tracing.tracer(__name__)


async def checked(asked: Asked, inner: Next) -> Any:
    """The query's own check (a cursor of another query, say) before anything waits."""
    asked.query.check()
    return await inner(asked)


async def timed(asked: Asked, inner: Next) -> Any:
    """``ledger_query_duration_seconds`` by route template, the wait included."""
    started = time.perf_counter()
    try:
        return await inner(asked)
    finally:
        child(QUERY_DURATION, asked.route).observe(time.perf_counter() - started)


async def traced(asked: Asked, inner: Next) -> Any:
    """A span per query (when tracing is on), inside the request's span."""
    if not tracing.enabled():
        return await inner(asked)
    with _tracer.start_as_current_span(
        "ledger.query", attributes={"ledger.query": type(asked.query).__name__}
    ):
        return await inner(asked)
