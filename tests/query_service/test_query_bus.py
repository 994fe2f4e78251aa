"""The query bus: one handler per query type, behaviours around it in order.

Pure: the handlers here are plain functions; the real features are checked for
what they register (every projection the projector keeps is read by some query,
each query type once), not run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
from psycopg_pool import AsyncConnectionPool

from projector.projections import PROJECTIONS
from query_service.behaviours import checked
from query_service.blocked_streams import BlockedStreams
from query_service.feature import ReadSide
from query_service.features import FEATURES
from query_service.query_bus import (
    Ask,
    Asked,
    Next,
    Query,
    QueryBus,
    UnknownQuery,
    projections_read,
    registrations,
)


@dataclass(frozen=True)
class Double(Query[int]):
    READS: ClassVar[tuple[str, ...]] = ("numbers",)
    value: int

    def check(self) -> None:
        if self.value < 0:
            raise ValueError("negative")


@dataclass(frozen=True)
class Unregistered(Query[int]):
    pass


async def double(query: Double) -> int:
    return query.value * 2


async def test_a_query_is_answered_by_its_handler_through_every_behaviour_in_order() -> None:
    seen: list[str] = []

    def behaviour(name: str) -> Any:
        async def step(asked: Asked, inner: Next) -> Any:
            seen.append(f"{name} before")
            answer = await inner(asked)
            seen.append(f"{name} after {answer}")
            return answer

        return step

    bus = QueryBus({Double: double}, [behaviour("outer"), behaviour("inner")])
    state: dict[str, Any] = {}
    assert await Ask(bus, 7, "/numbers", state)(Double(21)) == 42
    assert seen == ["outer before", "inner before", "inner after 42", "outer after 42"]


async def test_a_query_that_cannot_be_answered_is_refused_before_its_handler_runs() -> None:
    answered: list[int] = []

    async def recording(query: Double) -> int:
        answered.append(query.value)
        return query.value

    bus = QueryBus({Double: recording}, [checked])
    with pytest.raises(ValueError, match="negative"):
        await Ask(bus, None, "/", {})(Double(-1))
    assert answered == []


async def test_an_unregistered_query_is_an_error_not_a_silent_answer() -> None:
    bus = QueryBus({Double: double}, [])
    with pytest.raises(UnknownQuery, match="Unregistered"):
        await Ask(bus, None, "/", {})(Unregistered())


def test_a_query_type_cannot_have_two_handlers() -> None:
    with pytest.raises(ValueError, match="Double has two handlers"):
        registrations({Double: double}, {Double: double})


def test_the_features_register_each_query_once_and_read_every_projection() -> None:
    pool = AsyncConnectionPool("postgresql://unused", open=False)
    side = ReadSide(pool, BlockedStreams(), pool)
    handlers = registrations(*(feature.handlers(side) for feature in FEATURES))
    assert len(handlers) == 11
    assert sorted(projections_read(handlers)) == sorted(p.NAME for p in PROJECTIONS)
