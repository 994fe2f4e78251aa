"""``/metrics`` of every process, and the count of every HTTP answer by its status.

The exposition is prometheus-client's own ASGI app: it negotiates the format
with the scraper (Prometheus 3 asks for OpenMetrics), compresses when asked,
and sends one well-formed ``Content-Type`` (a litestar text response would
append a second ``charset``, which Prometheus 3 refuses).

Answers are counted in a ``before_send`` hook, which litestar calls with the
outermost ``send``: a problem raised by a middleware (an idempotency 422 or
409, a 413) or by the router (404, 405) is counted with its real status,
like any route's answer.
"""

from __future__ import annotations

from litestar.exceptions import MethodNotAllowedException
from litestar.handlers import asgi
from litestar.types import Message, Receive, Scope, Send
from prometheus_client import Counter, make_asgi_app

from shared_kernel.metric_children import child

#: Probes and scrapes: neither counted nor given a correlation id.
OPERATIONS_PATHS = ("/health/", "/metrics")

HTTP_RESPONSES = Counter(
    "ledger_http_responses_total",
    "HTTP answers, by status code, whichever layer gave them (probes and scrapes excluded).",
    ["code"],
)

async def count_response(message: Message, scope: Scope) -> None:
    """A ``before_send`` hook: counts each answer's status in :data:`HTTP_RESPONSES`."""
    if message["type"] != "http.response.start" or scope["path"].startswith(OPERATIONS_PATHS):
        return
    child(HTTP_RESPONSES, str(message["status"])).inc()


_exposition = make_asgi_app()


@asgi("/metrics", copy_scope=True)
async def metrics(scope: Scope, receive: Receive, send: Send) -> None:
    """The process-wide registry (the process_ and python_ collectors included)."""
    if scope.get("method") not in ("GET", "HEAD"):
        raise MethodNotAllowedException(headers={"Allow": "GET, HEAD"})
    await _exposition(scope, receive, send)
