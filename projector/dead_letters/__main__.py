"""``python -m projector.dead_letters`` (``make dead-letters``): what is parked, and replaying it.

    python -m projector.dead_letters                    # the dead-letter stream and the blocks
    python -m projector.dead_letters --format json      # the same, one JSON document
    python -m projector.dead_letters --replay all       # replay every blocked stream
    python -m projector.dead_letters --replay 1234      # those first refused at position 1234

A replay re-applies each blocked stream's events from the event store with the
projections' own code (see :mod:`projector.dead_letters.replay`), then deletes
the dead-letter entries of the streams it unblocked. Exit status: 0 done (or
nothing to do), 1 some streams still fail (each printed with its error), 2 bad
arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection

from projector.blocks import Block, read_blocks
from projector.dead_letters import DeadLetters
from projector.dead_letters.replay import ReplayResult, replay_blocked
from projector.projections import PROJECTIONS
from projector.settings import ProjectorSettings
from shared_kernel.cli import bounded_int
from shared_kernel.observability import configure_logging
from shared_kernel.partitions import dead_letter_stream
from shared_kernel.redis_connection import connect_redis
from shared_kernel.settings import load_settings

APPLICATION_NAME = "projector.dead_letters"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m projector.dead_letters",
        description="List the events the projector parked and the streams it holds back;"
        " replay them once the cause is fixed.",
        epilog="DATABASE_URL, REDIS_URL and STREAM_NAME say where.",
    )
    parser.add_argument(
        "--replay",
        metavar="all|POSITION",
        type=lambda text: text if text == "all" else bounded_int(1)(text),
        help="replay every blocked stream, or those first refused at POSITION",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    return parser.parse_args(argv)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return "-" if value is None else str(value)


def _parked(entries: list[tuple[bytes, dict[bytes, bytes]]]) -> list[dict[str, str]]:
    return [
        {
            "entry_id": _text(entry_id),
            "position": _text(fields.get(b"dead_letter_position")),
            "stream": _text(fields.get(b"stream")),
            "type": _text(fields.get(b"type")),
            "parked_at": _text(fields.get(b"dead_letter_at")),
            "reason": _text(fields.get(b"dead_letter_error")),
        }
        for entry_id, fields in entries
    ]


def _block(block: Block) -> dict[str, Any]:
    return {
        "projection": block.projection,
        "stream": str(block.stream_id),
        "position": block.position,
        "type": block.event_type,
        "held": block.held,
        "blocked_at": block.blocked_at.isoformat(),
        "reason": block.reason,
        "replay_error": block.replay_error,
    }


def print_listing(stream: str, parked: list[dict[str, str]], blocks: list[Block]) -> None:
    print(f"dead-letter stream {stream}: {len(parked)} parked")
    if parked:
        print(f"{'position':>10}  {'stream':<36}  {'type':<32}  {'parked at':<32}  reason")
        for p in parked:
            print(f"{p['position']:>10}  {p['stream']:<36}  {p['type']:<32}  "
                  f"{p['parked_at']:<32}  {p['reason']}")  # fmt: skip
    print(f"\nblocked streams (projection_blocks): {len(blocks)}")
    if blocks:
        print(f"{'projection':<22} {'stream':<36} {'position':>10} {'held':>6}  {'type':<32}"
              "  blocked at                 reason")  # fmt: skip
        for b in blocks:
            last = f"  [last replay: {b.replay_error}]" if b.replay_error else ""
            print(f"{b.projection:<22} {b.stream_id!s:<36} {b.position:>10} {b.held:>6}  "
                  f"{b.event_type:<32}  {b.blocked_at.isoformat(timespec='seconds'):<25}  "
                  f"{b.reason}{last}")  # fmt: skip
        print("\nreplay after a fix: make dead-letters REPLAY=all (or REPLAY=<position>)")


def print_replay(results: list[ReplayResult], forgotten: int) -> None:
    if not results:
        print("nothing to replay: no stream is blocked")
    for r in results:
        name = f"{r.block.projection} {r.block.stream_id} (from {r.block.position})"
        if r.unblocked:
            print(f"replayed {name}: {r.applied} events applied, unblocked")
        else:
            at = f" at position {r.failed_position}" if r.failed_position else ""
            print(f"STILL FAILING {name}{at}: {r.error}")
    if forgotten:
        print(f"{forgotten} dead-letter entries of unblocked streams deleted")


async def run(settings: ProjectorSettings, argv: Sequence[str] | None = None) -> int:
    """The command, on ``settings``' database and Redis; returns the exit status."""
    args = parse_args(argv)
    redis = connect_redis(
        settings.redis_url, cluster=settings.redis_cluster, socket_connect_timeout=5
    )
    # One dead-letter stream per partition of the log, beside it (same slot).
    every = [DeadLetters(redis, dead_letter_stream(key)) for key in settings.partition_streams]
    try:
        async with await AsyncConnection.connect(
            settings.database_url, autocommit=True, application_name=APPLICATION_NAME
        ) as conn:
            if args.replay is None:
                parked = _parked([entry for d in every for entry in await d.entries()])
                blocks = await read_blocks(conn)
                if args.format == "json":
                    listing = {"dead_letters": parked, "blocks": [_block(b) for b in blocks]}
                    print(json.dumps(listing, indent=2))
                else:
                    print_listing(", ".join(d.stream_name for d in every), parked, blocks)
                return 0
            position = None if args.replay == "all" else int(args.replay)
            results = await replay_blocked(
                conn, PROJECTIONS, position=position, partitions=settings.stream_partitions
            )
            still = await read_blocks(conn)
        # Parked copies go once no projection holds their event back any more.
        held_back = {b.position for b in still}
        done = {r.block.position for r in results if r.unblocked} - held_back
        forgotten = sum([await d.forget(done) for d in every])
        if args.format == "json":
            report = [{**_block(r.block), "applied": r.applied, "error": r.error} for r in results]
            print(json.dumps({"replayed": report, "dead_letters_deleted": forgotten}, indent=2))
        else:
            print_replay(results, forgotten)
        return 0 if all(r.unblocked for r in results) else 1
    finally:
        await redis.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    settings = load_settings(ProjectorSettings)
    configure_logging("dead_letters", settings.log_level, settings.log_format)
    return asyncio.run(run(settings, argv))


if __name__ == "__main__":
    sys.exit(main())
