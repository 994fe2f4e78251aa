"""The projector's admin side: rebuilds over HTTP, the start-up version check, retention.

``POST /admin/projections/{name}/rebuild`` claims the rebuild (409 when one
of that projection runs anywhere, 404 for an unknown name) and runs it in the
background of this process, the same :class:`~projector.rebuild.rebuilder.Rebuild`
as ``python -m projector.rebuild``; ``GET /admin/projections`` shows every
projection (see :mod:`projector.rebuild.status`).

Every admin route needs ``Authorization: Bearer <ADMIN_TOKEN>``: a missing or
wrong token is a 401 problem and nothing happens; with no token configured
the routes are off (403). The token is compared in constant time and never
logged.

At start-up every projection whose live tables another version of its code
built is rebuilt, or only flagged stale (``ON_STALE_PROJECTION``); the
projector leaves it alone either way until tables of this version are swapped
in. Tables that rebuilds replaced are dropped once ``REBUILD_RETENTION_HOURS``
have passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Callable, Coroutine, Sequence
from datetime import timedelta
from typing import Any

import msgspec
import psycopg
from litestar import Request, Response, Router, get, post
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.plugins.problem_details import ProblemDetailsException
from litestar.status_codes import (
    HTTP_202_ACCEPTED,
    HTTP_401_UNAUTHORIZED,
    HTTP_403_FORBIDDEN,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from pydantic import SecretStr

from projector import metrics
from projector.admin_contract import (
    ADMIN_SECURITY,
    LIST_RESPONSES,
    REBUILD_RESPONSES,
    UNAUTHORIZED_CHALLENGE,
    ProjectionList,
    ProjectionName,
    RebuildAccepted,
)
from projector.checkpoints import adopt_versions, read_checkpoints
from projector.projections import PROJECTIONS, Projection, UnknownProjection, projection_named
from projector.rebuild.rebuilder import Rebuild, RebuildOptions, RebuildRunning, connect
from projector.rebuild.records import RebuildRecord
from projector.rebuild.retired import drop_old
from projector.rebuild.status import projection_statuses
from projector.settings import ProjectorSettings
from shared_kernel.language.events import utc_now
from shared_kernel.problems import EXCEPTION_HANDLERS, problem

log = logging.getLogger(__name__)

#: How often the retention of replaced tables is applied, and the version check retried.
HOUSEKEEPING_SECONDS = 600.0
_RETRY_SECONDS = 5.0


def admin_guard(token: SecretStr | None) -> Any:
    """A Litestar guard: 403 when no token is configured, 401 unless the request carries it."""
    expected = token.get_secret_value().encode() if token is not None else None

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
        if expected is None:
            raise problem(
                HTTP_403_FORBIDDEN,
                "admin-disabled",
                "The admin routes are off",
                "set ADMIN_TOKEN on the projector to turn them on",
            )
        scheme, _space, given = connection.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise problem(
                HTTP_401_UNAUTHORIZED,
                "unauthorized",
                "A valid admin token is required",
                "send Authorization: Bearer <ADMIN_TOKEN>",
                headers={"WWW-Authenticate": UNAUTHORIZED_CHALLENGE},
            )

    return guard


class ProjectionAdmin:
    def __init__(
        self, settings: ProjectorSettings, registry: Sequence[Projection] = PROJECTIONS
    ) -> None:
        self._settings = settings
        self._registry = list(registry)
        self._options = RebuildOptions(
            batch_size=settings.rebuild_batch_size,
            swap_within=settings.rebuild_swap_within,
            lock_timeout_seconds=settings.rebuild_lock_timeout_seconds,
        )
        self._running: dict[str, asyncio.Task[None]] = {}

    async def start_rebuild(self, name: str) -> RebuildRecord:
        """Claim a rebuild of ``name`` and run it in the background; its row as claimed."""
        projection = projection_named(name)
        task = self._running.get(name)
        if task is not None and not task.done():
            raise RebuildRunning(name)
        rebuild = Rebuild(
            self._settings.database_url, projection, self._options, registry=self._registry
        )
        record = await rebuild.claim()
        self._running[name] = asyncio.create_task(self._run(rebuild), name=f"rebuild-{name}")
        return record

    async def join(self) -> None:
        """Wait until the rebuilds this process started have ended."""
        for task in list(self._running.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @staticmethod
    async def _run(rebuild: Rebuild) -> None:
        with contextlib.suppress(Exception):  # logged and recorded by the rebuild itself
            await rebuild.run()

    async def statuses(self) -> list[dict[str, Any]]:
        conn = await connect(self._settings.database_url)
        try:
            return await projection_statuses(conn, self._registry)
        finally:
            await conn.close()

    async def check_versions(self) -> list[str]:
        """Rebuild (or flag) every stale projection; returns their names."""
        versions = {p.NAME: p.VERSION for p in self._registry}
        conn = await connect(self._settings.database_url)
        try:
            await adopt_versions(conn, versions)
            checkpoints = await read_checkpoints(conn, list(versions), versions=versions)
        finally:
            await conn.close()
        stale = sorted(checkpoints.stale)
        metrics.STALE_PROJECTIONS.set(len(stale))
        for name in stale:
            if self._settings.on_stale_projection == "flag":
                log.warning(
                    "projection built by another version of its code: flagged stale, not applied"
                    " to until rebuilt (python -m projector.rebuild %s)",
                    name,
                    extra={"projection": name, "code_version": versions[name]},
                )
                continue
            try:
                record = await self.start_rebuild(name)
            except RebuildRunning:
                log.info("stale projection already being rebuilt", extra={"projection": name})
            else:
                log.warning(
                    "projection built by another version of its code: rebuilding it",
                    extra={"projection": name, "rebuild_id": record.id},
                )
        return stale

    async def housekeeping(self) -> None:
        """The start-up version check (retried until it could run), then the retention."""
        checked = False
        while True:
            try:
                if not checked:
                    await self.check_versions()
                    checked = True
                retention = timedelta(hours=self._settings.rebuild_retention_hours)
                await drop_old(self._settings.database_url, finished_before=utc_now() - retention)
            except Exception as error:
                log.warning(
                    "projection housekeeping failed; retrying",
                    extra={"error": f"{type(error).__name__}: {error}"},
                )
                await asyncio.sleep(_RETRY_SECONDS)
                continue
            await asyncio.sleep(HOUSEKEEPING_SECONDS)

    def alongside(
        self, work: Callable[[], Coroutine[Any, Any, None]]
    ) -> Callable[[], Coroutine[Any, Any, None]]:
        """``work`` with the housekeeping beside it; stopping it stops both and the rebuilds."""

        async def both() -> None:
            keeper = asyncio.create_task(self.housekeeping(), name="projection-housekeeping")
            try:
                await work()
            finally:
                tasks = [keeper, *self._running.values()]
                for task in tasks:
                    task.cancel()  # a cancelled rebuild stays resumable
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

        return both

    def routes(self) -> list[Router]:
        """``/admin/...``, guarded, answering problem documents of their own."""
        admin = self

        @get("/projections", tags=["admin"], operation_id="listProjections",
             responses=LIST_RESPONSES)  # fmt: skip
        async def projections() -> ProjectionList:
            """Every projection: version, checkpoint, lag, state and last rebuild."""
            return msgspec.convert({"projections": await admin.statuses()}, ProjectionList)

        @post(
            "/projections/{name:str}/rebuild",
            tags=["admin"],
            operation_id="rebuildProjection",
            status_code=HTTP_202_ACCEPTED,
            responses=REBUILD_RESPONSES,
        )
        async def rebuild(name: ProjectionName) -> RebuildAccepted:
            """Rebuild ``name`` beside the live tables, verify, swap; runs in the background."""
            try:
                record = await admin.start_rebuild(name)
            except UnknownProjection as error:
                raise problem(
                    HTTP_404_NOT_FOUND, "projection-not-found", "No such projection", str(error)
                ) from None
            except RebuildRunning as error:
                raise problem(
                    HTTP_409_CONFLICT, "rebuild-running", "A rebuild is already running",
                    str(error), projection=name,
                ) from None  # fmt: skip
            return RebuildAccepted(
                rebuild_id=record.id,
                projection=record.projection,
                state=record.state,
                status="/admin/projections",
            )

        return [
            Router(
                "/admin",
                route_handlers=[projections, rebuild],
                guards=[admin_guard(self._settings.admin_token)],
                security=ADMIN_SECURITY,
                exception_handlers=_PROBLEM_HANDLERS,
            )
        ]


def _problem_response(
    request: Request[Any, Any, Any], exc: ProblemDetailsException
) -> Response[Any]:
    return exc.to_response(request)


def _database_unavailable(
    request: Request[Any, Any, Any], exc: psycopg.OperationalError
) -> Response[Any]:
    log.warning("admin route: PostgreSQL unavailable", extra={"error": repr(exc)})
    return problem(
        HTTP_503_SERVICE_UNAVAILABLE,
        "database-unavailable",
        "PostgreSQL cannot be reached right now",
        headers={"Retry-After": "1"},
    ).to_response(request)


#: The projector's app has no problem-details plugin; the admin routes bring their own.
_PROBLEM_HANDLERS: dict[type[Exception] | int, Any] = {
    **EXCEPTION_HANDLERS,
    ProblemDetailsException: _problem_response,
    psycopg.OperationalError: _database_unavailable,
}
