"""The bench's own light HTTP client: aiohttp, each answer as its status and JSON body.

The load generator shares the machine's cores with the ledger it measures, so
every millisecond of CPU it spends per request is taken from the services.
aiohttp parses in C: a request costs this client about 0.25 ms of CPU here, a
fraction of what httpx needs (so the max-rate phase's visibility sampler, on
httpx, took 7% of a core and cost the ledger's measured rate as much).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any


class LeanHttp:
    """One aiohttp session with a bounded pool.

    Waiting for a free connection counts in a request's latency, as it would
    for any client.
    """

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def request(self, method: str, url: str, **options: Any) -> Answer:
        async with self._session.request(method, url, **options) as response:
            body = await response.read()
            try:
                return Answer(response.status, json.loads(body) if body else None)
            except ValueError:
                return Answer(response.status, None)


def lean_session(connections: int, timeout_seconds: float) -> aiohttp.ClientSession:
    """A session of at most ``connections`` keep-alive connections (enter it to use it)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=max(1, connections)),
        timeout=aiohttp.ClientTimeout(total=timeout_seconds),
    )
