"""``python -m command_service``: serve the command API with uvicorn (one worker, no reload).

One process on purpose: the appender batches the commands of all requests
into shared transactions, which only works when they meet in one process.
"""

from __future__ import annotations

import sys

import uvicorn
from eventsourcing.persistence import PersistenceError

from command_service.bootstrap import build_app
from command_service.settings import CommandServiceSettings
from shared_kernel.observability import configure_logging
from shared_kernel.settings import load_settings


def main() -> None:
    settings = load_settings(CommandServiceSettings)
    configure_logging("command_service", settings.log_level)
    try:
        app = build_app(settings)
    except PersistenceError as error:  # the store's recorder connects when it is built
        print(
            f"command_service: cannot use the event store at {settings.database_url}: {error}",
            file=sys.stderr,
        )
        raise SystemExit(1) from None
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
