"""Verifying rebuilt tables against an independent fold of the event store, before a swap.

A rebuild writes its tables through the projection's own ``apply``; checking
them against that same code would prove nothing. So each projection also
declares ``REFERENCE``: per table, an SQL fold of ``ledger_events`` (aggregates
over the stored JSON) that must give exactly the table's rows at a position.
Here both sides are reduced, in PostgreSQL, to a row count and an
order-independent checksum (the sum of a 64-bit hash of each row's text);
only when those differ are the differing rows themselves looked up (``EXCEPT
ALL`` both ways, a sample of each) so the report can say which rows are wrong.

The fold's columns are renamed and cast to the table's own columns and types,
so both sides print every value the same way and the checksums compare.

A stream blocked in the tables checked (the projection refused one of its
events, so its later events are held; see :mod:`projector.blocks`) is
compared as the projection shows it: the fold leaves out that stream's events
from the refused one on, so its rows, and the sums and listings computed over
it, must hold exactly the events before. A blocked stream therefore never
refuses a swap, and what the projection did apply of it is still checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from psycopg import AsyncConnection, sql

from projector.projections import Projection
from projector.rebuild.build_blocks import build_blocks

#: Differing rows shown per table and side.
SAMPLE_ROWS = 20
#: The parameters of a reference fold: ``up_to`` and the held streams.
Params = dict[str, Any]

_COLUMNS = (
    "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
    " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
)


@dataclass(frozen=True)
class TableCheck:
    """One table: rows and checksum on each side, and samples of rows on one side only."""

    table: str
    rows: int
    expected_rows: int
    checksum: str
    expected_checksum: str
    only_rebuilt: list[dict[str, str | None]] = field(default_factory=list)
    only_expected: list[dict[str, str | None]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.rows == self.expected_rows and self.checksum == self.expected_checksum


@dataclass(frozen=True)
class Verification:
    """The verdict on a projection's rebuilt tables at one position of the log."""

    projection: str
    position: int
    tables: list[TableCheck]
    held: dict[str, int] = field(default_factory=dict)
    """Blocked streams (id -> first refused position), compared up to that event only."""

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.tables)

    def to_json(self) -> dict[str, Any]:
        return {
            "projection": self.projection,
            "position": self.position,
            "ok": self.ok,
            "tables": [asdict(check) | {"ok": check.ok} for check in self.tables],
            "blocked": [{"stream_id": stream, "position": at} for stream, at in self.held.items()],
        }

    def describe(self) -> str:
        """One line per table; the rows that differ when a table does not match."""
        lines = []
        for check in self.tables:
            if check.ok:
                lines.append(f"{check.table}: {check.rows} rows, checksums equal")
                continue
            lines.append(
                f"{check.table}: {check.rows} rows rebuilt, {check.expected_rows} in the fold"
                f" of the store at position {self.position}; checksums"
                f" {check.checksum} and {check.expected_checksum}"
            )
            lines += [f"  only in the rebuilt table: {row}" for row in check.only_rebuilt]
            lines += [f"  only in the fold of the store: {row}" for row in check.only_expected]
        if self.held:
            lines.append(
                f"{len(self.held)} blocked stream(s) compared up to their refused event:"
                f" {', '.join(list(self.held)[:SAMPLE_ROWS])}"
            )
        return "\n".join(lines)


async def verify(
    conn: AsyncConnection[Any],
    projection: Projection,
    schema: str,
    position: int,
    *,
    reference: Mapping[str, str] | None = None,
) -> Verification:
    """Compare ``schema``'s copies of the projection's tables with its fold at ``position``.

    ``reference`` replaces the projection's own folds (tests inject a wrong one).
    The blocks are those of ``schema``'s ``projection_blocks`` (none without one).
    """
    folds = projection.REFERENCE if reference is None else reference
    held = {
        block.stream_id: block.position
        for block in await build_blocks(conn, schema)
        if block.projection == projection.NAME
    }
    params = {
        "up_to": position,
        "held_streams": list(held),
        "held_from": list(held.values()),
    }
    checks = []
    for table in projection.TABLES:
        rebuilt, expected = await _sides(conn, schema, table, folds[table], params)
        checks.append(await _check(conn, table, rebuilt, expected, params))
    shown = {str(stream): at for stream, at in held.items()}
    return Verification(projection.NAME, position, checks, shown)


async def _sides(
    conn: AsyncConnection[Any], schema: str, table: str, fold: str, params: Params
) -> tuple[sql.Composed, sql.Composed]:
    """SELECTs of the rebuilt rows and of the fold's, with the same columns and types."""
    qualified = sql.Identifier(schema, table)
    cursor = await conn.execute(_COLUMNS, (qualified.as_string(conn),))
    columns = [(name, type_name) for name, type_name in await cursor.fetchall()]
    probe = await conn.execute(
        sql.SQL("SELECT * FROM ({}) AS fold LIMIT 0").format(sql.SQL(fold)), params | {"up_to": 0}
    )
    width = len(probe.description or ())
    if width != len(columns):
        msg = f"the reference fold of {table} gives {width} columns, the table has {len(columns)}"
        raise ValueError(msg)
    names = sql.SQL(", ").join(sql.Identifier(name) for name, _ in columns)
    cast = sql.SQL(", ").join(
        sql.SQL("fold.{}::{}").format(sql.Identifier(name), sql.SQL(type_name))
        for name, type_name in columns
    )
    rebuilt = sql.SQL("SELECT {} FROM {}").format(names, qualified)
    expected = sql.SQL("SELECT {} FROM ({}) AS fold ({})").format(cast, sql.SQL(fold), names)
    return rebuilt, expected


async def _summary(
    conn: AsyncConnection[Any], rows: sql.Composed, params: Params
) -> tuple[int, str]:
    query = sql.SQL(
        "SELECT count(*), COALESCE(sum(hashtextextended(r::text, 0)::numeric), 0)::text"
        " FROM ({}) AS r"
    ).format(rows)
    cursor = await conn.execute(query, params)
    count, checksum = await cursor.fetchone() or (0, "0")
    return int(count), str(checksum)


async def _sample(
    conn: AsyncConnection[Any], left: sql.Composed, right: sql.Composed, params: Params
) -> list[dict[str, str | None]]:
    query = sql.SQL("({}) EXCEPT ALL ({}) LIMIT {}").format(left, right, sql.Literal(SAMPLE_ROWS))
    cursor = await conn.execute(query, params)
    names = [column.name for column in cursor.description or ()]
    return [
        {name: None if cell is None else str(cell) for name, cell in zip(names, row, strict=True)}
        for row in await cursor.fetchall()
    ]


async def _check(
    conn: AsyncConnection[Any],
    table: str,
    rebuilt: sql.Composed,
    expected: sql.Composed,
    params: Params,
) -> TableCheck:
    rows, checksum = await _summary(conn, rebuilt, params)
    expected_rows, expected_checksum = await _summary(conn, expected, params)
    check = TableCheck(table, rows, expected_rows, checksum, expected_checksum)
    if check.ok:
        return check
    return TableCheck(
        table,
        rows,
        expected_rows,
        checksum,
        expected_checksum,
        only_rebuilt=await _sample(conn, rebuilt, expected, params),
        only_expected=await _sample(conn, expected, rebuilt, params),
    )
