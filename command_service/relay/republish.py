"""``python -m command_service.relay.republish --from N``: re-publish the event log to Redis.

:data:`SEMANTICS` (the ``--help`` text, repeated in the README) says exactly
what it does; the pieces are :mod:`command_service.relay.takeover` (being the
stream's only writer for a moment) and :mod:`command_service.relay.stream_swap`
(building the new stream beside the live one and swapping it in atomically).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import AsyncConnection
from redis.exceptions import RedisError

from command_service.relay.leadership import leader_lock_key
from command_service.relay.stream_swap import (
    GroupMove,
    add,
    copy_below,
    create_empty,
    id_order,
    position_of,
    raise_top,
    swap_in,
    top_id,
    top_of,
)
from command_service.relay.takeover import LockUnavailable, take_over
from shared_kernel.cli import MAX_BIGINT, bounded_int
from shared_kernel.event_log import PositionMarker, head_position, of_partition, read_log
from shared_kernel.partitions import partition_streams
from shared_kernel.redis_connection import RedisClient, connect_redis
from shared_kernel.settings import (
    EVENTS_TABLE,
    CommonSettings,
    WriterDatabaseSettings,
    load_settings,
)

MAX_POSITION = MAX_BIGINT
SEMANTICS = """\
Re-publish the event store's log into a Redis Stream, from position N on.

1. Take the relay's PostgreSQL advisory lock for the stream. A running relay
   holding it has its lock session ended (pg_terminate_backend): it logs an
   outage, stands by, and resumes from the stream's top once this command
   ends. Meanwhile this command is the stream's only writer.
2. Build the new stream beside the live key: the live stream's entries below N
   unchanged, then every stored event from position N to the head, exactly as
   the relay writes them (id <position>-0, same fields, `previous` naming the
   event before it in the log).
3. Swap it in atomically (one Lua script RENAMEs it over the live key; if a
   relay added entries meanwhile, copy up to them first and try again), with
   every consumer group recreated: rewound so it reads again from N, or, with
   --keep-groups, where it was. Pending (delivered, unacknowledged) entries
   are not carried over.
4. Add what was appended meanwhile, and release the lock.

Harmless to the projector: it skips every position at or below its
checkpoint, so a re-delivered event changes nothing, and it reads the store
whenever an entry's `previous` shows a gap. --stream KEY re-publishes into
another key instead (say, a fresh stream for a new consumer): no relay feeds
it, nothing trims it. The live relay trims its stream to about
STREAM_MAX_LENGTH entries at every add, so re-publishing more than that into
the live stream is cut back at the next add. Redis holds both copies for the
duration. Killed halfway, it leaves the live stream as it was (the swap is
atomic), and the next run deletes the copy it left. A second run for the same
stream refuses to start while one runs. Exit status 0, or 1 with one line on
stderr.
"""
#: Swap attempts before giving up on a live stream that keeps moving past the copy.
SWAP_ATTEMPTS = 20
_BEFORE = f"SELECT COALESCE(MAX(notification_id), 0) FROM {EVENTS_TABLE} WHERE notification_id < %s"


def _glob_escape(text: str) -> str:
    """``text`` matched literally by a Redis glob pattern."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


@dataclass
class Republished:
    stream: str
    from_position: int
    events: int = 0
    kept_below: int = 0
    last_position: int = 0
    topped_up: int = 0
    groups: tuple[GroupMove, ...] = ()
    relay_sessions_ended: tuple[int, ...] = ()


@dataclass
class _Chain:
    """Where a copy has read the log to, and the last position it wrote to its partition."""

    read_to: int
    previous: int


async def _copy_log(
    reader: AsyncConnection[Any],
    redis: RedisClient,
    key: str,
    chain: _Chain,
    *,
    up_to: int,
    batch: int,
    partition: tuple[int, int],
) -> int:
    """Add the partition's events in (``chain.read_to``, ``up_to``] to ``key``; returns added."""
    added = 0
    index, partitions = partition
    while True:
        entries = await read_log(reader, after=chain.read_to, limit=batch, up_to=up_to)
        if not entries:
            return added
        mine = of_partition(entries, index, partitions, after=chain.previous)
        added += await add(redis, key, mine)
        chain.read_to = entries[-1].position
        if mine:
            chain.previous = mine[-1].position


async def republish(
    settings: CommonSettings,
    *,
    from_position: int,
    stream: str,
    keep_groups: bool = False,
    batch_size: int = 1_000,
    lock_wait_seconds: float = 30.0,
) -> Republished:
    """Re-publish into every partition of ``stream`` (``STREAM_PARTITIONS`` of them)."""
    report = Republished(stream, from_position)
    redis = connect_redis(
        settings.redis_url, cluster=settings.redis_cluster, socket_connect_timeout=5,
        socket_timeout=30,
    )  # fmt: skip
    lock_conn = await AsyncConnection.connect(settings.database_url, autocommit=True)
    reader = await AsyncConnection.connect(settings.database_url, autocommit=True)
    try:
        ended = await take_over(lock_conn, reader, leader_lock_key(stream), lock_wait_seconds)
        report.relay_sessions_ended = tuple(ended)
        partitions = settings.stream_partitions
        tops = []
        for index, key in enumerate(partition_streams(stream, partitions)):
            copy = _PartitionCopy(redis, reader, key, (index, partitions), batch_size)
            await copy.run(from_position, report, keep_groups=keep_groups)
            tops.append(await top_of(redis, key))
        report.last_position = min(tops)
    finally:
        await redis.aclose()
        await reader.close()
        await lock_conn.close()  # releases the lock: a relay resumes from the stream's top
    return report


@dataclass
class _PartitionCopy:
    """Re-publishing one partition: a copy beside it, swapped in, then topped up."""

    redis: RedisClient
    reader: AsyncConnection[Any]
    key: str
    partition: tuple[int, int]
    batch_size: int

    async def run(self, from_position: int, report: Republished, *, keep_groups: bool) -> None:
        redis, reader, key = self.redis, self.reader, self.key
        beside = f"{key}:republish:{uuid.uuid4().hex[:12]}"
        try:
            # Holding the lock, no other republish of this stream runs: what lies beside
            # it was left by one that was killed.
            async for leftover in redis.scan_iter(match=f"{_glob_escape(key)}:republish:*"):
                await redis.delete(leftover)
            await create_empty(redis, beside)
            report.kept_below += await copy_below(
                redis, key, beside, from_position, self.batch_size
            )
            cursor = await reader.execute(_BEFORE, (from_position,))
            row = await cursor.fetchone()
            before = int(row[0]) if row else 0
            # The first entry names the log's position before N: a consumer further
            # behind in this partition then reads the store (see publisher.py).
            chain = _Chain(before, before)
            report.events += await self._copy(beside, chain, await head_position(reader))
            rewind_to = None if keep_groups else max(from_position - 1, 0)
            for _ in range(SWAP_ATTEMPTS):
                outcome = await swap_in(redis, key, beside, rewind_to=rewind_to)
                if outcome.swapped:
                    report.groups += outcome.groups
                    break
                # A relay added entries while the copy was built: copy up to them, retry.
                head = max(position_of(outcome.live_top), await head_position(reader))
                report.events += await self._copy(beside, chain, head)
                if id_order(await top_id(redis, beside)) < id_order(outcome.live_top):
                    # The live stream has ids the store has no event for: keep its top.
                    await raise_top(redis, beside, outcome.live_top)
            else:
                msg = f"{key} kept moving past the copy; is a relay without the lock writing?"
                raise RuntimeError(msg)
            top = await top_of(redis, key)
            head = await head_position(reader)
            report.topped_up += await self._copy(key, _Chain(top, top), head)
            if self.partition[1] > 1 and await top_of(redis, key) < head:
                # As the relay does: the partition says it has everything up to the head.
                await add(redis, key, [PositionMarker(head, await top_of(redis, key))])
        finally:
            await redis.delete(beside)

    async def _copy(self, key: str, chain: _Chain, up_to: int) -> int:
        return await _copy_log(
            self.reader, self.redis, key, chain,
            up_to=up_to, batch=self.batch_size, partition=self.partition,
        )  # fmt: skip


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m command_service.relay.republish",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=SEMANTICS,
    )
    parser.add_argument(
        "--from",
        dest="from_position",
        type=bounded_int(0, MAX_POSITION),
        required=True,
        metavar="N",
        help="first position to re-publish (0 or 1: the whole log)",
    )
    parser.add_argument(
        "--stream", metavar="KEY", help="Redis Stream key to re-publish into (default: STREAM_NAME)"
    )
    parser.add_argument(
        "--keep-groups",
        action="store_true",
        help="leave each consumer group where it was instead of rewinding it to N",
    )
    parser.add_argument("--batch-size", type=int, default=1_000, metavar="B")
    parser.add_argument(
        "--lock-wait", type=float, default=30.0, metavar="SECONDS", help="longest wait for the lock"
    )
    return parser


def describe(report: Republished) -> list[str]:
    lines = [
        f"republish: the relay's lock session (PostgreSQL pid {pid}) was ended: the relay stood"
        " by meanwhile and resumes from the stream's top"
        for pid in report.relay_sessions_ended
    ]
    lines.append(
        f"republish: {report.stream} re-published from position {report.from_position}:"
        f" {report.events} events from the event store, {report.kept_below} earlier entries"
        f" kept, {report.topped_up} appended meanwhile; it ends at position {report.last_position}"
    )
    lines += [
        f"republish: consumer group {group.name} was at {group.was}, now reads after {group.now}"
        for group in report.groups
    ]
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.batch_size < 1:
        parser().error("--batch-size must be at least 1")
    # The relay's own role: it may end the relay's session (same role) and read the log.
    settings = load_settings(WriterDatabaseSettings)
    try:
        report = asyncio.run(
            republish(
                settings,
                from_position=args.from_position,
                stream=args.stream or settings.stream_name,
                keep_groups=args.keep_groups,
                batch_size=args.batch_size,
                lock_wait_seconds=args.lock_wait,
            )
        )
    except (LockUnavailable, psycopg.OperationalError, RedisError, RuntimeError) as error:
        print(f"republish: {error}".rstrip(), file=sys.stderr)
        raise SystemExit(1) from None
    print("\n".join(describe(report)))


if __name__ == "__main__":
    main()
