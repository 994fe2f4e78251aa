"""What the projector's NOTIFY says when a batch commits, so a listener need not ask.

The query service waits for checkpoints (read-your-writes). It used to treat the
notification as a doorbell and re-read ``projection_checkpoints`` and
``projection_blocks`` after every batch: one statement per batch in the query
service and in PostgreSQL, and one more round trip between a commit and the
reads waiting for it. The payload now carries what the batch did, and a
listener may take a position from it when the payload alone settles it:

- the log has ONE partition, so a projection's position is its one row, which
  the batch moved to at least ``position`` (the advance never moves a row back);
- the batch blocked no stream, so the blocked streams a listener knows are still
  all there are (blocks are added only by batches; a dead-letter replay that lifts
  some, and a rebuild's swap, notify a bare position, which asks for a re-read).

Anything else (several partitions, new blocks, a bare number from an older
projector or another notifier, a payload that does not decode) is a doorbell:
re-read. Taking less than the truth is always safe (a read waits a little
longer); taking more would break read-your-writes, hence the narrow rule.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec


class CheckpointsAdvanced(msgspec.Struct, frozen=True):
    """One committed batch: ``projections`` of ``partition`` (of ``partitions``) reached
    ``position``; ``blocked`` is True when the batch blocked a stream."""

    position: int
    projections: tuple[str, ...]
    partition: int = 0
    partitions: int = 1
    blocked: bool = False


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(CheckpointsAdvanced)


def checkpoints_advanced(
    position: int, projections: Sequence[str], *, partition: int, partitions: int, blocked: bool
) -> str:
    """The NOTIFY payload of a batch (well under PostgreSQL's 8,000-byte limit)."""
    news = CheckpointsAdvanced(position, tuple(projections), partition, partitions, blocked)
    return _ENCODER.encode(news).decode()


def positions_told(payload: str) -> dict[str, int] | None:
    """The positions ``payload`` settles on its own, by projection; None: re-read."""
    try:
        news = _DECODER.decode(payload)
    except msgspec.DecodeError:
        return None
    if news.partitions != 1 or news.blocked:
        return None
    return dict.fromkeys(news.projections, news.position)
