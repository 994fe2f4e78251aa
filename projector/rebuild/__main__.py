"""``python -m projector.rebuild``: rebuild a read model from the event store, with a progress bar.

    python -m projector.rebuild account_balances             # build beside, verify, swap
    python -m projector.rebuild --rollback account_balances  # back to the replaced tables
    python -m projector.rebuild --drop-old account_balances  # drop the replaced tables
    python -m projector.rebuild --status                     # every projection's last rebuild

Exit status: 0 done, 1 refused or failed (the live tables stay), 2 bad
arguments (unknown projection), 3 a rebuild of it is already running, 4
nothing to roll back.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from projector.projections import PROJECTIONS, UnknownProjection, projection_named
from projector.rebuild import records
from projector.rebuild.rebuilder import Rebuild, RebuildOptions, RebuildRunning, connect
from projector.rebuild.records import RebuildRecord
from projector.rebuild.retired import NothingToRollBack, drop_old, rollback
from projector.rebuild.status import rebuild_progress
from projector.settings import ProjectorSettings
from shared_kernel.observability import configure_logging
from shared_kernel.settings import load_settings


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m projector.rebuild",
        description="Rebuild a read model beside the live one while everything keeps running,"
        " verify it against an independent fold of the event store, and swap it in.",
        epilog="Projections: " + ", ".join(p.NAME for p in PROJECTIONS)
        + ". DATABASE_URL says where; REBUILD_BATCH_SIZE sets the events per batch.",
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument(
        "--rollback", action="store_true", help="swap back the tables the last rebuild replaced"
    )
    action.add_argument(
        "--drop-old", action="store_true", help="drop the tables kept by finished rebuilds"
    )
    action.add_argument(
        "--status", action="store_true", help="show the last rebuild of each projection (JSON)"
    )
    parser.add_argument("projection", nargs="?", help="the projection's name")
    parser.add_argument("--batch-size", type=int, help="events per batch")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.projection is None and not args.status:
        parser.error("name the projection to rebuild")
    return args


def options_from(settings: ProjectorSettings, batch_size: int | None) -> RebuildOptions:
    return RebuildOptions(
        batch_size=batch_size or settings.rebuild_batch_size,
        swap_within=settings.rebuild_swap_within,
        lock_timeout_seconds=settings.rebuild_lock_timeout_seconds,
    )


async def _rebuild(settings: ProjectorSettings, args: argparse.Namespace) -> int:
    projection = projection_named(args.projection)
    bar: Any = None

    def on_progress(done: int, total: int) -> None:
        if bar is None:
            return
        if total != bar.total:
            bar.total = total
        bar.update(done - bar.n)

    rebuild = Rebuild(
        settings.database_url,
        projection,
        options_from(settings, args.batch_size),
        on_progress=on_progress,
    )
    record = await rebuild.claim()
    print(
        f"rebuild {record.id} of {projection.NAME} (version {projection.VERSION})"
        + (f", resumed at position {record.built_position}" if record.events_done else ""),
        file=sys.stderr,
    )
    bar = tqdm(
        total=record.events_total,
        initial=record.events_done,
        unit=" events",
        unit_scale=record.events_total >= 100_000,
        desc=f"rebuild {projection.NAME}",
        disable=args.no_progress,
        dynamic_ncols=True,
    )
    try:
        with logging_redirect_tqdm():  # log lines above the bar, not through it
            final = await rebuild.run()
    finally:
        bar.close()
    if final.state == "refused":
        print(f"rebuild {final.id} of {projection.NAME} REFUSED: the live tables stay.")
        print(final.error)
        return 1
    print_blocks(final)
    print(
        f"rebuild {final.id} of {projection.NAME} swapped in at position {final.built_position};"
        f" the replaced tables are kept in schema {final.retired_schema}"
        f" (roll back: python -m projector.rebuild --rollback {projection.NAME};"
        f" drop them: python -m projector.rebuild --drop-old {projection.NAME})"
    )
    return 0


def print_blocks(final: RebuildRecord) -> None:
    """One line per stream the swapped-in tables hold back, and one for those it unblocked."""
    report = final.report or {}
    blocked = report.get("blocked_streams") or {"count": 0, "streams": []}
    for block in blocked["streams"]:
        print(
            f"BLOCKED stream {block['stream_id']}: {final.projection} refuses its event at"
            f" position {block['position']} ({block['reason']}); {block['held']} later events"
            " held until `make dead-letters REPLAY=...` after a fix"
        )
    if blocked["count"] > len(blocked["streams"]):
        print(f"... {blocked['count']} blocked streams in all (make dead-letters lists them)")
    unblocked = report.get("unblocked_streams") or []
    if unblocked:
        print(f"unblocked {len(unblocked)} stream(s) this code applies: {', '.join(unblocked)}")


async def _status(settings: ProjectorSettings, name: str | None) -> int:
    if name is not None:
        projection_named(name)
    conn = await connect(settings.database_url)
    try:
        latest = await records.latest_of_each(conn)
        shown = {
            p.NAME: await rebuild_progress(conn, latest[p.NAME]) if p.NAME in latest else None
            for p in PROJECTIONS
            if name in (None, p.NAME)
        }
    finally:
        await conn.close()
    print(json.dumps(shown, indent=2))
    return 0


#: The exit status of each refusal an operator can act on (1: anything else failed).
_EXIT_CODES: dict[type[Exception], int] = {
    UnknownProjection: 2,
    RebuildRunning: 3,
    NothingToRollBack: 4,
}


async def run(args: argparse.Namespace, settings: ProjectorSettings) -> int:
    try:
        if args.status:
            return await _status(settings, args.projection)
        if args.drop_old:
            dropped = await drop_old(settings.database_url, args.projection)
            print("dropped " + (", ".join(dropped) if dropped else "nothing: no kept tables"))
            return 0
        if args.rollback:
            projection = projection_named(args.projection)
            options = options_from(settings, args.batch_size)
            record = await rollback(settings.database_url, projection, options)
            print(
                f"{projection.NAME} rolled back to the tables rebuild {record.id} replaced;"
                f" the rebuilt ones are kept in schema {record.beside_schema}"
            )
            return 0
        return await _rebuild(settings, args)
    except (UnknownProjection, RebuildRunning, NothingToRollBack) as error:
        print(f"rebuild: {error}", file=sys.stderr)
        return next(code for kind, code in _EXIT_CODES.items() if isinstance(error, kind))
    except Exception as error:
        print(f"rebuild: failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = load_settings(ProjectorSettings)
    configure_logging("projector.rebuild", settings.log_level, settings.log_format)
    return asyncio.run(run(args, settings))


if __name__ == "__main__":
    raise SystemExit(main())
