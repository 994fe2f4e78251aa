"""The replay command line: parse, read the stream, print, check; the exit code says how it went.

Exit codes: 0 when snapshot + tail equals the full fold (or there is no
snapshot), 1 when they differ or the history cannot be folded, 2 for an id
that is not a UUID or names no stream (one line on stderr).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TextIO

import psycopg

from command_service.replay.fold import StreamFold
from command_service.replay.history import (
    StreamEvent,
    UnknownStream,
    UnreadableEvent,
    latest_snapshot,
    stream_events,
    summary,
)
from command_service.replay.render import JsonReport, Report, TextReport
from shared_kernel.cli import MAX_BIGINT, bounded_int, parse_stream_id
from shared_kernel.settings import WriterDatabaseSettings, load_settings

MAX_VERSION = MAX_BIGINT
EXIT_MISMATCH = 1
EXIT_USAGE = 2




def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m command_service.replay",
        description="Print every event of one account or transfer stream from the event store"
        " with the state the domain folds after it, then check that the latest snapshot plus"
        " the tail folds to the same state as the full history. Reads only.",
        epilog="Exit status: 0 the check passed (or there is no snapshot), 1 snapshot + tail"
        " differs from the full fold (or the history cannot be folded), 2 a bad or unknown id.",
    )
    parser.add_argument("stream", metavar="STREAM", help="account id or transfer id (a UUID)")
    parser.add_argument(
        "--version",
        type=bounded_int(1, MAX_VERSION),
        metavar="N",
        help="stop at version N; the check then uses the latest snapshot at or below N",
    )
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text for people (default); json: one JSON object per line, a last `check` line",
    )
    parser.add_argument(
        "--database-url",
        help="the event store's PostgreSQL (default: the writer role's, WRITER_DATABASE_URL)",
    )
    return parser


def run(argv: Sequence[str] | None, out: TextIO, err: TextIO) -> int:
    args = parser().parse_args(argv)
    stream_id = parse_stream_id(args.stream, "replay", err)
    if stream_id is None:
        return EXIT_USAGE
    database_url = args.database_url or load_settings(WriterDatabaseSettings).database_url
    report: Report = JsonReport(out) if args.format == "json" else TextReport(out)
    with psycopg.connect(database_url) as conn:
        try:
            stream = summary(conn, stream_id)
        except UnknownStream as error:
            print(f"replay: {error}", file=err)
            return EXIT_USAGE
        bound: int | None = args.version
        up_to = bound if bound is not None else stream.last_version
        fold = StreamFold(latest_snapshot(conn, stream_id, up_to if bound else MAX_VERSION))
        recorded: StreamEvent | None = None
        try:
            for recorded in stream_events(conn, stream_id, up_to):
                state = fold.step(recorded)
                assert fold.kind is not None
                if fold.events == 1:
                    report.header(stream, fold.kind, up_to)
                report.event(stream_id, fold.kind, recorded, state)
        except UnreadableEvent as error:
            print(f"replay: stream {stream_id}: {error}", file=err)
            return EXIT_MISMATCH
        except ValueError as error:  # the domain refuses an event out of place
            where = f"v{recorded.version} at position {recorded.position}" if recorded else "?"
            print(f"replay: stream {stream_id} cannot be folded at {where}: {error}", file=err)
            return EXIT_MISMATCH
    verdict = fold.verdict(bound)
    report.verdict(stream_id, verdict)
    if not verdict.ok:
        print(f"replay: stream {stream_id}: {verdict.message}", file=err)
        return EXIT_MISMATCH
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    try:
        code = run(argv, sys.stdout, sys.stderr)
        sys.stdout.flush()
    except psycopg.OperationalError as error:
        print(f"replay: cannot read the event store: {error}".rstrip(), file=sys.stderr)
        code = EXIT_MISMATCH
    except BrokenPipeError:
        # Piped into `head`: the reader has seen enough. Silence the flush at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    raise SystemExit(code)
