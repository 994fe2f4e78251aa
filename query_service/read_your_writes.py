"""Read-your-writes: hold a query until the read models reach the client's position.

A command answers with the global position of its event; a client that passes
it back (``?min_position=`` or ``X-Min-Position``) is served only from read
models at or past it. The wait is bounded; past it the answer is 412
``projection-behind`` with a Retry-After, so clients never hang on a stalled
projector.

Each query names the projections it reads (``READS``, see
:mod:`query_service.query_bus`): it waits for those only, so a projection
catching up (or not deployed yet) holds back only the queries that read it.
The wait is a behaviour of the query bus, not code in any route.

Every response carries ``X-Projection-Position``. For a query it is the
position its projections had reached *before* the rows were read, so it is a
lower bound of what the data reflects; for anything else it is the position
of the service as a whole when the response started. Both only grow; as the
projector moves every checkpoint in one transaction, they are the same number
except while a projection catches up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from litestar import Request
from litestar.params import HeaderParameter, QueryParameter
from litestar.status_codes import HTTP_412_PRECONDITION_FAILED
from litestar.types import BeforeMessageSendHookHandler, Message, Scope

from query_service.cursors import MAX_BIGINT
from query_service.metrics import READ_YOUR_WRITES_WAIT
from query_service.projection_position import ProjectionPosition
from query_service.query_bus import Ask, Asked, Next, QueryBus
from shared_kernel.problems import problem

PROJECTION_POSITION_HEADER = "X-Projection-Position"
MIN_POSITION_HEADER = "X-Min-Position"
#: Where a query records the position its rows are at least as fresh as.
_READ_POSITION_KEY = "ledger.read_position"
#: ASGI header names are lower-case bytes; built once, not per response.
_HEADER_NAME = PROJECTION_POSITION_HEADER.lower().encode()


def asking(bus: QueryBus) -> Callable[..., Ask]:
    """The litestar dependency ``ask``: the bus, asked with the request's ``min_position``.

    The wait happens when the handler asks, after litestar validated every
    parameter, and the query's own check runs before it: a bad parameter is an
    immediate 4xx, never a wait.
    """

    def ask(
        request: Request[Any, Any, Any],
        min_position: MinPositionQuery = None,
        x_min_position: MinPositionHeader = None,
    ) -> Ask:
        wanted = None
        if min_position is not None or x_min_position is not None:
            wanted = max(min_position or 0, x_min_position or 0)
        route = str(request.scope.get("path_template") or "unmatched")
        return Ask(bus, wanted, route, request.scope["state"])

    return ask

MinPositionQuery = Annotated[
    int | None,
    QueryParameter(
        name="min_position",
        ge=0,
        le=MAX_BIGINT,
        description="Serve only read models that have applied this event log position.",
    ),
]
MinPositionHeader = Annotated[
    int | None,
    HeaderParameter(
        name=MIN_POSITION_HEADER,
        ge=0,
        le=MAX_BIGINT,
        description="Same as ?min_position; the larger of the two wins.",
    ),
]


class ReadYourWrites:
    """The bus behaviour that holds a query until its projections reached the asked position."""

    def __init__(self, position: ProjectionPosition, *, max_wait_seconds: float) -> None:
        self._position = position
        self._max_wait = max_wait_seconds

    async def __call__(self, asked: Asked, inner: Next) -> Any:
        projections = type(asked.query).READS
        if projections:
            await self._wait(asked, projections)
        return await inner(asked)

    async def _wait(self, asked: Asked, projections: Sequence[str]) -> None:
        """Hold the read until ``projections`` reached the position (412 after the bound)."""
        wanted = asked.min_position
        if wanted is not None and self._position.reached(projections) < wanted:
            await self._held(asked, wanted, projections)
        elif wanted is not None:
            # The everyday read-your-writes read: the position is already there, so
            # no timer is armed (a timeout schedules and cancels a loop callback).
            READ_YOUR_WRITES_WAIT.observe(0.0)
        asked.state[_READ_POSITION_KEY] = self._position.reached(projections)

    async def _held(self, asked: Asked, wanted: int, projections: Sequence[str]) -> None:
        """Wait, at most the bound, for ``projections`` to reach ``wanted``; else 412."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._max_wait):
                await self._position.wait_for(wanted, projections)
        except TimeoutError:
            reached = self._position.reached(projections)
            asked.state[_READ_POSITION_KEY] = reached
            raise problem(
                HTTP_412_PRECONDITION_FAILED,
                "projection-behind",
                "The read models have not reached the requested position yet",
                f"waited {self._max_wait:g} s for position {wanted}",
                headers={"Retry-After": "1"},
                min_position=wanted,
                projection_position=reached,
            ) from None
        finally:
            READ_YOUR_WRITES_WAIT.observe(time.perf_counter() - started)

    def header_hook(self) -> BeforeMessageSendHookHandler:
        """A ``before_send`` hook adding ``X-Projection-Position`` to every response."""
        position = self._position

        async def add_projection_position(message: Message, scope: Scope) -> None:
            if message["type"] != "http.response.start":
                return
            state = scope.get("state") or {}
            value = state.get(_READ_POSITION_KEY, position.current)
            headers = list(message.get("headers") or [])
            headers.append((_HEADER_NAME, str(value).encode()))
            message["headers"] = headers

        return add_projection_position
