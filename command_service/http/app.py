"""The litestar application of the command service, given its collaborators.

:mod:`command_service.bootstrap` builds the collaborators (store, command bus,
clients); this module only wires HTTP: routes, problem documents, OpenAPI.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import eventsourcing.persistence
from litestar import Litestar, Request, Response
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.plugins.problem_details import ProblemDetailsPlugin

from command_service.bus.bus import CommandBus
from command_service.domain.account import DomainError
from command_service.errors import ServiceUnavailable
from command_service.http.accounts import AccountCommands
from command_service.http.contract import COMMAND_CONTRACT
from command_service.http.holds import HoldCommands
from command_service.http.refusals import refused, title
from command_service.http.transfers import TransferCommands
from command_service.idempotency.keys import IdempotencyKeys
from command_service.idempotency.middleware import IdempotencyMiddleware
from shared_kernel import tracing
from shared_kernel.head_requests import answer_head_as_get
from shared_kernel.http_metrics import count_response, metrics
from shared_kernel.observability import (
    HealthCheck,
    RequestContext,
    echo_correlation_id,
    health_routes,
)
from shared_kernel.openapi_contract import http_options
from shared_kernel.outages import outage_handlers, unavailable
from shared_kernel.problems import EXCEPTION_HANDLERS, problem_details_config
from shared_kernel.storable_text import StorableParameters


def _unavailable(request: Request[Any, Any, Any], error: ServiceUnavailable) -> Response[Any]:
    return unavailable(request, error.code, title(error.code), error.detail)


#: The event store's own wrappers of psycopg's outage errors, should one escape the bus.
_STORE_OUTAGES = (
    eventsourcing.persistence.OperationalError,
    eventsourcing.persistence.InterfaceError,
)


def create_app(
    commands: CommandBus,
    *,
    idempotency_keys: IdempotencyKeys,
    idempotency_wait_seconds: float,
    health_checks: Mapping[str, HealthCheck],
    max_body_bytes: int,
    query_service_url: str = "http://127.0.0.1:8002",
    on_startup: Sequence[Callable[[], Any]] = (),
    on_shutdown: Sequence[Callable[[], Any]] = (),
) -> Litestar:
    app = Litestar(
        route_handlers=[
            AccountCommands,
            TransferCommands,
            HoldCommands,
            *health_routes(health_checks),
            metrics,
        ],
        dependencies={"commands": Provide(lambda: commands, sync_to_thread=False)},
        middleware=[
            RequestContext(),
            StorableParameters(),
            DefineMiddleware(
                IdempotencyMiddleware,
                keys=idempotency_keys,
                max_body_bytes=max_body_bytes,
                wait_seconds=idempotency_wait_seconds,
            )
        ],
        exception_handlers={
            **EXCEPTION_HANDLERS,
            **outage_handlers(
                "store-unavailable", "The store cannot be reached right now", *_STORE_OUTAGES
            ),
            DomainError: refused,
            ServiceUnavailable: _unavailable,
        },
        plugins=[ProblemDetailsPlugin(problem_details_config()), *tracing.asgi_plugins()],
        before_send=[count_response, echo_correlation_id],
        **http_options(
            "Ledger command service",
            "Commands on accounts, transfer requests and holds; answers carry the new version and"
            " the global position. Every POST takes an optional Idempotency-Key.",
            COMMAND_CONTRACT,
        ),
        state=State({"query_service_url": query_service_url.rstrip("/")}),
        request_max_body_size=max_body_bytes,
        on_startup=list(on_startup),
        on_shutdown=list(on_shutdown),
        debug=False,
        logging_config=None,  # keep the JSON logging configure_logging set up
    )
    return answer_head_as_get(app)
