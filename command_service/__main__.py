"""``python -m command_service``: once PostgreSQL and Redis answer, serve the command API.

One uvicorn worker, no reload, on purpose: the command bus batches the commands of
all requests into shared transactions, which only works when they meet in one
process. The check of the servers comes first: the imports of the app take
seconds, and a process that cannot start should say why at once
(:mod:`shared_kernel.startup`).
"""

from __future__ import annotations

from command_service.settings import CommandServiceSettings
from shared_kernel.startup import checked_settings


def main() -> None:
    settings = checked_settings("command_service", CommandServiceSettings)
    from command_service.bootstrap import build_app  # noqa: PLC0415
    from command_service.event_store import build_or_exit  # noqa: PLC0415
    from shared_kernel.observability import configure_logging  # noqa: PLC0415
    from shared_kernel.tracing import setup_tracing  # noqa: PLC0415
    from shared_kernel.worker_app import serve  # noqa: PLC0415

    configure_logging("command_service", settings.log_level, settings.log_format)
    setup_tracing("command_service")
    app = build_or_exit("command_service", settings.database_url, lambda: build_app(settings))
    serve(app, settings.host, settings.command_service_port, access_log=False, workers=1)


if __name__ == "__main__":
    main()
