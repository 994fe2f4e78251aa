"""The query bus: one handler per query type, cross-cutting steps as behaviours around it.

A route only turns HTTP parameters into a query and asks the bus. The bus runs
the behaviours (validation, tracing, metrics, read-your-writes waiting: see
:mod:`query_service.behaviours`) around the handler registered for the query's
type, so no route repeats them and a new feature registers handlers without
touching the bus. An unknown query type is an error, never a silent default.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar, cast

Answer_co = TypeVar("Answer_co", covariant=True)
A = TypeVar("A")


class Query(Generic[Answer_co]):
    """A question to the read models; ``Answer_co`` is what its handler returns.

    ``READS`` names the projections the answer is read from: a read waiting for
    a position waits for those only. A query reading none (time travel folds
    the store itself) waits for nothing.
    """

    READS: ClassVar[tuple[str, ...]] = ()

    def check(self) -> None:
        """Refuse, before any wait, a query that cannot be answered as asked."""


@dataclass(slots=True)
class Asked:
    """A query with what the request says about it."""

    query: Query[Any]
    min_position: int | None
    route: str
    #: The request's state: behaviours leave what the response must say here.
    state: dict[str, Any]


Handler = Callable[[Any], Awaitable[Any]]
Next = Callable[[Asked], Awaitable[Any]]
Behaviour = Callable[[Asked, Next], Awaitable[Any]]


class UnknownQuery(LookupError):
    def __init__(self, query: Query[Any]) -> None:
        super().__init__(f"no handler registered for {type(query).__name__}")


class QueryBus:
    """Asks the handler of a query's type, through every behaviour, outermost first."""

    def __init__(
        self, handlers: Mapping[type[Query[Any]], Handler], behaviours: Sequence[Behaviour]
    ) -> None:
        self._handlers = dict(handlers)
        chain: Next = self._handle
        for behaviour in reversed(behaviours):
            chain = _around(behaviour, chain)
        self._chain = chain

    async def ask(self, asked: Asked) -> Any:
        return await self._chain(asked)

    async def _handle(self, asked: Asked) -> Any:
        handler = self._handlers.get(type(asked.query))
        if handler is None:
            raise UnknownQuery(asked.query)
        return await handler(asked.query)


def _around(behaviour: Behaviour, inner: Next) -> Next:
    async def step(asked: Asked) -> Any:
        return await behaviour(asked, inner)

    return step


def projections_read(handlers: Mapping[type[Query[Any]], Handler]) -> tuple[str, ...]:
    """Every projection some registered query reads, in registration order."""
    return tuple(dict.fromkeys(name for kind in handlers for name in kind.READS))


def registrations(*features: Mapping[type[Query[Any]], Handler]) -> dict[type[Query[Any]], Handler]:
    """The handlers of every feature; a query type registered twice is an error."""
    merged: dict[type[Query[Any]], Handler] = {}
    for handlers in features:
        for kind, handler in handlers.items():
            if kind in merged:
                msg = f"{kind.__name__} has two handlers"
                raise ValueError(msg)
            merged[kind] = handler
    return merged


class Ask:
    """What a route holds: asks the bus on behalf of one request."""

    def __init__(
        self, bus: QueryBus, min_position: int | None, route: str, state: dict[str, Any]
    ) -> None:
        self._bus = bus
        self._min_position = min_position
        self._route = route
        self._state = state

    async def __call__(self, query: Query[A]) -> A:
        asked = Asked(query, self._min_position, self._route, self._state)
        return cast(A, await self._bus.ask(asked))


def names(projections: Iterable[Any]) -> tuple[str, ...]:
    """``READS`` of a query from the projection modules it reads (their ``NAME``)."""
    return tuple(projection.NAME for projection in projections)
