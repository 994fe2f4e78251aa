"""``python -m query_service``: serve the query API with uvicorn."""

from __future__ import annotations

import uvicorn

from query_service.bootstrap import build_app
from query_service.settings import QueryServiceSettings
from shared_kernel.observability import configure_logging
from shared_kernel.settings import load_settings
from shared_kernel.tracing import setup_tracing


def main() -> None:
    settings = load_settings(QueryServiceSettings)
    configure_logging("query_service", settings.log_level, settings.log_format)
    setup_tracing("query_service")
    uvicorn.run(
        build_app(settings),
        host=settings.host,
        port=settings.query_service_port,
        log_config=None,  # keep the JSON lines configure_logging set up
        access_log=False,
    )


if __name__ == "__main__":
    main()
