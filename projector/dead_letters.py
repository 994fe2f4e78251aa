"""The dead-letter stream: events the projector could not apply, parked for an operator.

Each parked entry keeps the original stream fields untouched (so it can be
re-driven as it was) plus ``dead_letter_error``, ``dead_letter_position`` and
``dead_letter_at``. Ids are Redis's own: a crash between parking and the
commit of the batch parks that event once more when the batch is retried
(at least once, like every delivery here), and ``dead_letter_position``
tells the copies apart from a new event.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from shared_kernel.events import utc_now

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Poison:
    """An event the projector cannot apply, and why."""

    position: int
    error: str
    fields: Mapping[Any, Any]


class DeadLetters:
    def __init__(self, redis: Redis, stream_name: str) -> None:
        self._redis = redis
        self.stream_name = stream_name

    async def park(self, poison: Sequence[Poison]) -> None:
        """XADD every poison event; raises on a Redis outage so the batch is retried."""
        pipe = self._redis.pipeline(transaction=False)
        now = utc_now().isoformat()
        for item in poison:
            fields: dict[Any, Any] = dict(item.fields)
            fields.update(
                dead_letter_error=item.error,
                dead_letter_position=str(item.position),
                dead_letter_at=now,
            )
            pipe.xadd(self.stream_name, fields)
        await pipe.execute()
        for item in poison:
            log.error(
                "event dead-lettered",
                extra={
                    "position": item.position,
                    "error": item.error,
                    "dead_letter_stream": self.stream_name,
                },
            )

    async def count(self) -> int:
        return int(await self._redis.xlen(self.stream_name))
