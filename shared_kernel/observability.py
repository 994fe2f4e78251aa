"""Logs, metrics and health checks shared by every process.

Logs are one JSON object per line (time, level, process, message and any
``extra`` fields such as ``position`` or ``correlation_id``), so an operator
can grep or ship them without parsing prose.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from litestar import Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

#: Record attributes that are not extra context (uvicorn adds an ANSI-coloured copy
#: of its message, which would only be noise in a JSON line).
_IGNORED_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"color_message"}


class JsonLineFormatter(logging.Formatter):
    """Formats each record as one JSON object on one line."""

    def __init__(self, process_name: str) -> None:
        super().__init__()
        self.process_name = process_name

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "process": self.process_name,
            "pid": record.process,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _IGNORED_FIELDS and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(process_name: str, level: str) -> None:
    """Send JSON lines to stderr at ``level`` for this process."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLineFormatter(process_name))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Access logs of every request would drown the signal; errors still show.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")


#: A check raises when its dependency is unusable. It may return a value to show
#: in place of "ok" (a relay's "standby", a projector's dead-letter count).
HealthCheck = Callable[[], Awaitable[object]]


def health_routes(checks: Mapping[str, HealthCheck]) -> list[HTTPRouteHandler]:
    """``/health/live`` (the process answers) and ``/health/ready`` (its dependencies do).

    Each check raises when its dependency is unusable; ready answers 503 with
    the failing check's error so the operator sees which one and why.
    """

    @get("/health/live", include_in_schema=True, sync_to_thread=False, tags=["operations"])
    def live() -> dict[str, str]:
        return {"status": "live"}

    @get("/health/ready", tags=["operations"])
    async def ready() -> Response[dict[str, Any]]:
        results: dict[str, object] = {}
        healthy = True
        for name, check in checks.items():
            try:
                outcome = await check()
            except Exception as error:  # a failing dependency is the answer, not a crash
                healthy = False
                results[name] = f"failing: {type(error).__name__}: {error}"
            else:
                results[name] = "ok" if outcome is None else outcome
        return Response(
            {"status": "ready" if healthy else "not ready", "checks": results},
            status_code=HTTP_200_OK if healthy else HTTP_503_SERVICE_UNAVAILABLE,
        )

    return [live, ready]


@get("/metrics", media_type=CONTENT_TYPE_LATEST, tags=["operations"], sync_to_thread=False)
def metrics() -> Response[bytes]:
    """Prometheus text exposition of this process's metrics."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
