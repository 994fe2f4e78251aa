"""``python -m query_service``: once PostgreSQL and Redis answer, serve the query API.

The check of the servers comes first: the imports of the app take seconds, and a
process that cannot start should say why at once (:mod:`shared_kernel.startup`).
"""

from __future__ import annotations

from query_service.settings import QueryServiceSettings
from shared_kernel.startup import checked_settings


def main() -> None:
    settings = checked_settings("query_service", QueryServiceSettings)
    from query_service.bootstrap import build_app  # noqa: PLC0415
    from shared_kernel.observability import configure_logging  # noqa: PLC0415
    from shared_kernel.tracing import setup_tracing  # noqa: PLC0415
    from shared_kernel.worker_app import serve  # noqa: PLC0415

    configure_logging("query_service", settings.log_level, settings.log_format)
    setup_tracing("query_service")
    serve(build_app(settings), settings.host, settings.query_service_port, access_log=False)


if __name__ == "__main__":
    main()
