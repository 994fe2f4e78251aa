"""``python -m projector.time_travel STREAM --at N``: a stream's read-model rows as of position N.

Prints, for an account, its ``account_balances`` row and its
``account_transactions`` lines, for a transfer its ``transfers`` row, as the
projection code computes them from the stream's events at or below N (see
:mod:`projector.time_travel.scratch`). Nothing is written. When a projection
refuses one of the stream's events, the rows are incomplete (the live
projector blocks the stream there): an ``INCOMPLETE`` line says which event
and why. Exit codes: 0; 2 for an id that is not a UUID or a stream with no
event at or below N; 3 for an incomplete state (the rows are still printed).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TextIO
from uuid import UUID

import msgspec
import psycopg
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from projector.projections import projection_named
from projector.time_travel.scratch import ScratchFold, StreamNotFound, scratch_read_models
from shared_kernel.cli import MAX_BIGINT, bounded_int, parse_stream_id
from shared_kernel.settings import QueryDatabaseSettings, load_settings

MAX_POSITION = MAX_BIGINT
EXIT_USAGE = 2
#: A projection refused an event of the stream: the rows shown lack it and what follows.
EXIT_INCOMPLETE = 3


class AsOfRecord(msgspec.Struct, kw_only=True):
    """The whole answer as one JSON line (``--format json``)."""

    stream: UUID
    kind: str
    as_of: int
    events: int
    last_position: int
    tables: dict[str, list[dict[str, Any]]]
    complete: bool
    refused: list[dict[str, Any]]


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m projector.time_travel",
        description="Show what the read models said for one account or transfer when the"
        " event log stood at a position: the stream's events at or below it are folded by"
        " the projector's own projection code into scratch tables, which are then rolled"
        " back. The live tables are never written.",
    )
    parser.add_argument("stream", metavar="STREAM", help="account id or transfer id (a UUID)")
    parser.add_argument(
        "--at",
        type=bounded_int(0, MAX_POSITION),
        required=True,
        metavar="POSITION",
        help="global log position",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument(
        "--database-url",
        help="PostgreSQL (default: the read-only query role's, QUERY_DATABASE_URL)",
    )
    return parser


async def read_twins(
    conn: AsyncConnection[Any], fold: ScratchFold
) -> dict[str, list[dict[str, Any]]]:
    """Every row of the scratch tables (they hold this stream only), in key order."""
    tables: dict[str, list[dict[str, Any]]] = {}
    cursor = conn.cursor(row_factory=dict_row)
    for name in fold.projections:
        for table in projection_named(name).TABLES:
            await cursor.execute(
                sql.SQL("SELECT * FROM {} ORDER BY 1").format(sql.Identifier(table))
            )
            tables[table] = await cursor.fetchall()
    return tables


async def as_of(database_url: str, stream_id: UUID, position: int) -> AsOfRecord:
    conn = await AsyncConnection.connect(database_url, autocommit=True)
    async with conn, scratch_read_models(conn, stream_id, position) as fold:
        tables = await read_twins(conn, fold)
    return AsOfRecord(
        stream=stream_id,
        kind=fold.kind,
        as_of=position,
        events=fold.events,
        last_position=fold.last_position,
        tables=tables,
        complete=fold.complete,
        refused=[
            {"projection": r.projection, "position": r.position, "error": r.error}
            for r in fold.refused
        ],
    )


def _value(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def print_text(record: AsOfRecord, out: TextIO) -> None:
    print(
        f"{record.kind} {record.stream} as of position {record.as_of}: {record.events} of its"
        f" events folded, the last at position {record.last_position}",
        file=out,
    )
    for table, rows in record.tables.items():
        print(f"{table} ({len(rows)} row{'' if len(rows) == 1 else 's'}):", file=out)
        for row in rows:
            print("  " + " ".join(f"{k}={_value(v)}" for k, v in row.items()), file=out)


def run(argv: Sequence[str] | None, out: TextIO, err: TextIO) -> int:
    args = parser().parse_args(argv)
    stream_id = parse_stream_id(args.stream, "time travel", err)
    if stream_id is None:
        return EXIT_USAGE
    database_url = args.database_url or load_settings(QueryDatabaseSettings).database_url
    try:
        record = asyncio.run(as_of(database_url, stream_id, args.at))
    except StreamNotFound as error:
        print(f"time travel: {error}", file=err)
        return EXIT_USAGE
    if args.format == "json":
        print(msgspec.json.encode(record).decode(), file=out)
    else:
        print_text(record, out)
    for refused in record.refused:
        line = (
            f"INCOMPLETE: {refused['projection']} refuses the event at position"
            f" {refused['position']} ({refused['error']}); the projector blocks the stream there"
            " and holds its later events, so its rows above lack them"
        )
        if args.format == "text":
            print(line, file=out)
        print(f"time travel: {line}", file=err)
    return 0 if record.complete else EXIT_INCOMPLETE


def main(argv: Sequence[str] | None = None) -> None:
    try:
        code = run(argv, sys.stdout, sys.stderr)
    except psycopg.OperationalError as error:
        print(f"time travel: cannot reach PostgreSQL: {error}".rstrip(), file=sys.stderr)
        code = 1
    raise SystemExit(code)
