"""The dead-letter stream: events the projector could not apply, parked for an operator.

Each parked entry keeps the original stream fields untouched (so it can be
re-driven as it was) plus ``dead_letter_error``, ``dead_letter_position`` and
``dead_letter_at``. Ids are Redis's own: a crash between parking and the
commit of the batch parks that event once more when the batch is retried
(at least once, like every delivery here), and ``dead_letter_position``
tells the copies apart from a new event.

An event of a real stream is parked here AND blocks that stream for the
projection that refused it (:mod:`projector.blocks`); ``python -m
projector.dead_letters`` lists both and replays blocked streams after a fix
(:mod:`projector.dead_letters.replay`), deleting the entries it replayed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared_kernel.language.events import utc_now
from shared_kernel.redis_connection import RedisClient

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Poison:
    """An event the projector cannot apply, and why."""

    position: int
    error: str
    fields: Mapping[Any, Any]


class DeadLetters:
    def __init__(self, redis: RedisClient, stream_name: str) -> None:
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

    async def entries(self) -> list[tuple[bytes, dict[bytes, bytes]]]:
        """Every parked entry, oldest first (the stream holds only what awaits an operator)."""
        response: Any = await self._redis.xrange(self.stream_name)
        return [(bytes(entry_id), dict(fields or {})) for entry_id, fields in response or ()]

    async def forget(self, positions: set[int]) -> int:
        """Delete the parked copies of ``positions`` (replayed); how many entries went."""
        doomed = [
            entry_id
            for entry_id, fields in await self.entries()
            if _parked_position(fields) in positions
        ]
        if doomed:
            await self._redis.xdel(self.stream_name, *doomed)
        return len(doomed)


def _parked_position(fields: Mapping[bytes, bytes]) -> int | None:
    raw = fields.get(b"dead_letter_position")
    return int(raw) if raw is not None and raw.isdigit() else None
