"""What one feature of the query service brings: its routes and its query handlers.

A feature (accounts, transfers, owners, totals) is a folder with its routes,
views, reads and queries. Bootstrap wires every feature listed in
:data:`query_service.features.FEATURES` the same way, so adding one touches
neither the bus nor any other feature.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from litestar.types import ControllerRouterHandler
from psycopg_pool import AsyncConnectionPool

from query_service.blocked_streams import BlockedStreams
from query_service.query_bus import Handler, Query


@dataclass(frozen=True)
class ReadSide:
    """What handlers read from: the read models' pool, the blocked streams, time travel's pool."""

    pool: AsyncConnectionPool[Any]
    blocked: BlockedStreams
    travel_pool: AsyncConnectionPool[Any]


@dataclass(frozen=True)
class Feature:
    routes: Sequence[ControllerRouterHandler]
    handlers: Callable[[ReadSide], Mapping[type[Query[Any]], Handler]]
