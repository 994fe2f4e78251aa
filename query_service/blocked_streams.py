"""Streams the projector holds back, so reads say so instead of serving an old state.

When a projection refuses an event of a stream, the projector blocks that
stream for it (``projection_blocks``): its later events are not applied, so
the projection's rows for the stream, and any sum that includes it, stop
moving while the checkpoint goes on. A 200 would then be a stale answer that
claims to be fresh (even for a ``min_position`` past the checkpoint). So each
read checks the blocks of what it shows and answers 503 ``read-model-blocked``
instead: the server cannot give a true answer right now, through no fault of
the request (not a 4xx), and it will once an operator fixes the cause and
replays (``make dead-letters REPLAY=...``), so a later retry succeeds; it is
not 412 ``projection-behind``, which waiting resolves by itself.

The blocks are kept in memory, read in the same statement as the checkpoints
(:mod:`query_service.projection_position`), so a position a request waited
for always comes with the blocks as of that position: a stream blocked later
was blocked at a position beyond it, and its rows still show everything up
to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from litestar import Request, Response
from litestar.status_codes import HTTP_503_SERVICE_UNAVAILABLE

from query_service.metrics import BLOCKED_READS
from shared_kernel.problems import problem

#: Blocks last a while (an operator must act): clients need not come back at once.
RETRY_AFTER_SECONDS = 60


@dataclass(frozen=True, slots=True)
class BlockedStream:
    projection: str
    stream_id: UUID
    position: int
    """The first event of the stream the projection did not apply."""
    reason: str
    blocked_at: str

    def document(self) -> dict[str, Any]:
        return {
            "projection": self.projection,
            "stream_id": str(self.stream_id),
            "position": self.position,
            "reason": self.reason,
            "blocked_at": self.blocked_at,
        }


class ReadModelBlocked(Exception):
    """What a read would show includes a blocked stream."""

    def __init__(self, blocked: Sequence[BlockedStream], what: str) -> None:
        super().__init__(what)
        self.blocked = list(blocked)
        self.what = what


class BlockedStreams:
    """The current blocks, per projection and stream."""

    def __init__(self) -> None:
        self._blocks: dict[str, dict[UUID, BlockedStream]] = {}

    def replace(self, blocks: Iterable[BlockedStream]) -> None:
        fresh: dict[str, dict[UUID, BlockedStream]] = {}
        for block in blocks:
            fresh.setdefault(block.projection, {})[block.stream_id] = block
        self._blocks = fresh

    def of(self, projections: Iterable[str]) -> list[BlockedStream]:
        """Every block of ``projections``."""
        return [b for name in projections for b in self._blocks.get(name, {}).values()]

    def check_stream(self, projections: Iterable[str], stream_id: UUID, what: str) -> None:
        """Raise :class:`ReadModelBlocked` if ``stream_id`` is blocked in any of ``projections``."""
        found = [
            block
            for name in projections
            if (block := self._blocks.get(name, {}).get(stream_id)) is not None
        ]
        if found:
            raise ReadModelBlocked(found, what)

    def check_none(self, projections: Iterable[str], what: str) -> None:
        """For reads that list or sum many streams: raise if any stream is blocked in them."""
        found = self.of(projections)
        if found:
            raise ReadModelBlocked(found, what)


def read_model_blocked(request: Request[Any, Any, Any], exc: ReadModelBlocked) -> Response[Any]:
    BLOCKED_READS.inc()
    first = exc.blocked[0]
    return problem(
        HTTP_503_SERVICE_UNAVAILABLE,
        "read-model-blocked",
        "The read model cannot show this until an operator replays a refused event",
        f"{exc.what}: projection {first.projection} refused event {first.position} of stream"
        f" {first.stream_id} ({first.reason}) and holds that stream's later events back",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        blocked=[block.document() for block in exc.blocked[:20]],
    ).to_response(request)
