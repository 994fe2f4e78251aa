"""The query service's one composition root: settings in, a Litestar app out.

Nothing here connects at import time. ``build_app`` wires the objects; the
lifespan opens the pool and starts following the projection position when
the server starts, and closes them in reverse order when it stops.
"""

from __future__ import annotations

from litestar import Litestar
from litestar.di import Provide
from litestar.plugins.problem_details import ProblemDetailsPlugin

from query_service.behaviours import checked, timed, traced
from query_service.blocked_streams import BlockedStreams
from query_service.contract import QUERY_CONTRACT
from query_service.feature import ReadSide
from query_service.features import FEATURES
from query_service.projection_position import ProjectionPosition
from query_service.query_bus import QueryBus, projections_read, registrations
from query_service.read_your_writes import ReadYourWrites, asking
from query_service.responses import QUERY_EXCEPTION_HANDLERS, page_size
from query_service.settings import QueryServiceSettings
from shared_kernel import tracing
from shared_kernel.head_requests import answer_head_as_get
from shared_kernel.http_metrics import count_response, metrics
from shared_kernel.observability import RequestContext, echo_correlation_id, health_routes
from shared_kernel.openapi_contract import http_options
from shared_kernel.pools import postgres_pool
from shared_kernel.problems import EXCEPTION_HANDLERS, problem_details_config
from shared_kernel.redis_connection import connect_redis
from shared_kernel.storable_text import StorableParameters
from shared_kernel.worker_app import background_lifespan, postgres_check, redis_check

#: Longest a readiness probe waits on one dependency before calling it failing.
_HEALTH_TIMEOUT_SECONDS = 2.0


def build_app(settings: QueryServiceSettings) -> Litestar:
    """The query service, wired to the database and Redis named in ``settings``."""
    # Every read is one statement: the pool's autocommit spares a BEGIN/ROLLBACK per request.
    pool = postgres_pool(
        settings.database_url,
        "query_service",
        min_size=2,
        max_size=settings.postgres_pool_size,
    )
    redis = connect_redis(
        settings.redis_url,
        cluster=settings.redis_cluster,
        socket_connect_timeout=_HEALTH_TIMEOUT_SECONDS,
        socket_timeout=_HEALTH_TIMEOUT_SECONDS,
    )
    # Time travel builds TEMP tables, which a hot standby refuses: with the reads on a
    # standby, it goes to the primary named by TIME_TRAVEL_DATABASE_URL.
    travel_pool = pool
    if settings.time_travel_database_url:
        travel_pool = postgres_pool(
            settings.time_travel_database_url, "query_service.time_travel", max_size=2
        )
    blocked = BlockedStreams()
    side = ReadSide(pool, blocked, travel_pool)
    handlers = registrations(*(feature.handlers(side) for feature in FEATURES))
    position = ProjectionPosition(
        settings.database_url,
        projections_read(handlers),
        blocked,
        poll_interval=settings.projection_poll_seconds,
        standby_poll_interval=settings.standby_poll_seconds,
    )
    read_your_writes = ReadYourWrites(position, max_wait_seconds=settings.max_wait_seconds)
    # Outermost first: a query that cannot be answered is refused before anything
    # waits; the time measured includes the wait for min_position.
    bus = QueryBus(handlers, [checked, traced, timed, read_your_writes])

    # The pools open without waiting: the process comes up even while PostgreSQL
    # is down, and /health/ready says so until it is back.
    running = background_lifespan(
        "projection-position", position.follow, pool=pool, on_close=[redis.aclose],
        more_pools=[travel_pool] if travel_pool is not pool else [],
    )  # fmt: skip

    app = Litestar(
        route_handlers=[
            *(route for feature in FEATURES for route in feature.routes),
            *health_routes(
                {
                    "postgres": postgres_check(pool, timeout=_HEALTH_TIMEOUT_SECONDS),
                    "redis": redis_check(redis),
                    "projection_position": position.check,
                }
            ),
            metrics,
        ],
        dependencies={
            "ask": Provide(asking(bus), sync_to_thread=False),
            "page_size": Provide(page_size(settings.page_size_max), sync_to_thread=False),
        },
        exception_handlers={
            **EXCEPTION_HANDLERS,
            **QUERY_EXCEPTION_HANDLERS,
        },
        plugins=[ProblemDetailsPlugin(problem_details_config()), *tracing.asgi_plugins()],
        middleware=[RequestContext(), StorableParameters()],
        before_send=[count_response, read_your_writes.header_hook(), echo_correlation_id],
        lifespan=[running],
        # configure_logging owns the log format (JSON lines); Litestar must not replace it.
        logging_config=None,
        **http_options(
            "Ledger query service",
            "Reads of the ledger's read models (accounts, statements, transfers, totals,"
            " owners), with read-your-writes (min_position) and conditional reads (ETag).",
            QUERY_CONTRACT,
        ),
    )
    return answer_head_as_get(app)
