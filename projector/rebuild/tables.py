"""The tables of a rebuild: copies beside the live ones, and moving tables between schemas.

A rebuild builds in its own schema (``rebuild_<id>``) tables created ``LIKE``
the live ones (columns, defaults, constraints, indexes), so the projection's
unchanged SQL writes them once the connection's ``search_path`` puts that
schema first. The copies' indexes are renamed to the live indexes' names, so
after a swap the live tables look exactly as ``schema/sql`` made them.

A swap is ``ALTER TABLE ... SET SCHEMA`` twice per table in one transaction:
queries name the tables unqualified, so from its commit on they resolve to
the other table (PostgreSQL re-plans prepared statements whose tables moved).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection, sql

_SCHEMA_OF = (
    "SELECT n.nspname FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace"
    " WHERE c.oid = to_regclass(%s)"
)
#: Each index of a table with its shape: unique or not, and its definition from USING on.
_INDEXES = (
    "SELECT c.relname, i.indisunique, regexp_replace(pg_get_indexdef(i.indexrelid),"
    " '^.*? USING ', 'USING ') FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid"
    " WHERE i.indrelid = %s::regclass ORDER BY c.relname"
)


class MissingTable(LookupError):
    """A projection declares a table the database does not have (not migrated?)."""


async def live_schema(conn: AsyncConnection[Any], table: str) -> str:
    """The schema of the table an unqualified ``table`` names on this connection."""
    cursor = await conn.execute(_SCHEMA_OF, (table,))
    row = await cursor.fetchone()
    if row is None:
        msg = f"table {table} does not exist; run `make migrate`"
        raise MissingTable(msg)
    return str(row[0])


async def schema_exists(conn: AsyncConnection[Any], schema: str) -> bool:
    cursor = await conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
    return await cursor.fetchone() is not None


async def tables_in(conn: AsyncConnection[Any], schema: str, tables: Sequence[str]) -> list[str]:
    """Which of ``tables`` exist in ``schema``."""
    cursor = await conn.execute(
        "SELECT c.relname FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = ANY(%s) AND c.relkind = 'r'",
        (schema, list(tables)),
    )
    return [str(name) for (name,) in await cursor.fetchall()]


async def create_beside(
    conn: AsyncConnection[Any], schema: str, source_schema: str, tables: Sequence[str]
) -> None:
    """Schema ``schema`` with an empty copy of each table of ``source_schema``, same index names."""
    await conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    for table in tables:
        source, copy = sql.Identifier(source_schema, table), sql.Identifier(schema, table)
        await conn.execute(
            sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(copy, source)
        )
        await _name_indexes_like(conn, copy.as_string(conn), source.as_string(conn), schema)


async def _name_indexes_like(
    conn: AsyncConnection[Any], copy: str, source: str, schema: str
) -> None:
    wanted: dict[tuple[bool, str], list[str]] = {}
    for name, unique, shape in await (await conn.execute(_INDEXES, (source,))).fetchall():
        wanted.setdefault((unique, shape), []).append(name)
    for name, unique, shape in await (await conn.execute(_INDEXES, (copy,))).fetchall():
        names = wanted.get((unique, shape))
        if not names:
            continue
        target = names.pop(0)
        if target != name:
            await conn.execute(
                sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                    sql.Identifier(schema, name), sql.Identifier(target)
                )
            )


async def move_tables(
    conn: AsyncConnection[Any], tables: Sequence[str], from_schema: str, to_schema: str
) -> None:
    """``ALTER TABLE ... SET SCHEMA`` for each table (creating ``to_schema`` if needed)."""
    await conn.execute(
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(to_schema))
    )
    for table in tables:
        await conn.execute(
            sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
                sql.Identifier(from_schema, table), sql.Identifier(to_schema)
            )
        )


async def analyze(conn: AsyncConnection[Any], schema: str, tables: Sequence[str]) -> None:
    """Planner statistics for freshly filled tables, before queries start reading them."""
    for table in tables:
        await conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema, table)))


async def drop_schema(conn: AsyncConnection[Any], schema: str) -> bool:
    """Drop ``schema`` and its tables; True if it existed."""
    existed = await schema_exists(conn, schema)
    await conn.execute(
        sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
    )
    return existed


async def put_first_on_path(conn: AsyncConnection[Any], schema: str) -> None:
    """Until the transaction ends, unqualified names find ``schema``'s tables first."""
    cursor = await conn.execute("SELECT current_setting('search_path')")
    row = await cursor.fetchone()
    path = str(row[0]) if row else "public"
    first = sql.Identifier(schema).as_string(conn)
    if not path.startswith(first + ","):
        await conn.execute("SELECT set_config('search_path', %s, true)", (f"{first}, {path}",))
