"""``python -m command_service``: serve the command API with uvicorn (one worker, no reload).

One process on purpose: the appender batches the commands of all requests
into shared transactions, which only works when they meet in one process.
"""

from __future__ import annotations

import uvicorn

from command_service.bootstrap import build_app
from command_service.event_store import build_or_exit
from command_service.settings import CommandServiceSettings
from shared_kernel.observability import configure_logging
from shared_kernel.settings import load_settings
from shared_kernel.tracing import setup_tracing


def main() -> None:
    settings = load_settings(CommandServiceSettings)
    configure_logging("command_service", settings.log_level, settings.log_format)
    setup_tracing("command_service")
    app = build_or_exit("command_service", settings.database_url, lambda: build_app(settings))
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.command_service_port,
        log_config=None,  # keep the JSON logging configured above
        access_log=False,
        workers=1,
        reload=False,
    )


if __name__ == "__main__":
    main()
