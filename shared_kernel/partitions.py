"""Partitions of the published log: which Redis Stream carries an event.

The relay fans the log out to ``STREAM_PARTITIONS`` streams so that several
projector replicas (and several Redis Cluster nodes) can share the work. An
event goes to partition ``crc32(stream id) % partitions``: stable across
processes, Python versions and restarts (``hash()`` is salted per process), and
every event of one account or one transfer lands in one partition, in order.

With one partition the stream is ``STREAM_NAME`` itself, exactly as before
partitions existed. With more, partition ``k`` is ``STREAM_NAME:{p<k>}``: the
hash tag puts each partition in its own Redis Cluster slot while every key of
one partition (its dead letters, a copy built beside it) shares that slot.
"""

from __future__ import annotations

import zlib
from uuid import UUID


def partition_of(stream_id: UUID, partitions: int) -> int:
    """The partition that carries every event of ``stream_id``."""
    if partitions == 1:
        return 0
    return zlib.crc32(stream_id.bytes) % partitions


def partition_stream(stream_name: str, partition: int, partitions: int) -> str:
    """The Redis key of ``partition`` when the log is split ``partitions`` ways."""
    if not 0 <= partition < partitions:
        msg = f"partition {partition} is not one of 0..{partitions - 1}"
        raise ValueError(msg)
    if partitions == 1:
        return stream_name
    return f"{stream_name}:{{p{partition}}}"


def partition_streams(stream_name: str, partitions: int) -> list[str]:
    """Every partition's Redis key, partition 0 first."""
    return [partition_stream(stream_name, k, partitions) for k in range(partitions)]


def dead_letter_stream(stream_name: str) -> str:
    """Where the projector parks what it cannot apply from ``stream_name`` (same slot)."""
    return f"{stream_name}:dead-letter"
