"""Apply :mod:`schema.privileges` to a database, in the migration's transaction.

Runs after every SQL file on every ``make migrate``, and is idempotent: per
table it revokes all the roles had and grants what the table of privileges
says, hands owned tables to their role, and makes those grants the owner's
default privileges (a rebuild's copies start with them). Tables a rebuild
keeps beside the live ones (schemas ``rebuild_<id>``, ``retired_<id>``) get
the same as their live namesakes, so an older rebuild stays droppable and a
rollback readable. Everything is sent as one batch of statements.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql

from schema.privileges import (
    DATABASE_PRIVILEGES,
    OWNS,
    PUBLIC_SCHEMA_PRIVILEGES,
    TABLE_PRIVILEGES,
    grants_on_owned_tables,
    owner_of,
)
from shared_kernel.settings import DATABASE_ROLES, DatabaseRole

#: The schemas a rebuild creates beside the live tables (see projector/rebuild).
_BESIDE_SCHEMAS = r"^(rebuild|retired)_[0-9]+$"
_TABLES = (
    "SELECT n.nspname, c.relname, pg_get_userbyid(n.nspowner), pg_get_userbyid(c.relowner)"
    " FROM pg_class AS c"
    " JOIN pg_namespace AS n ON n.oid = c.relnamespace"
    " WHERE c.relkind IN ('r', 'p') AND (n.nspname = 'public' OR n.nspname ~ %s)"
    " ORDER BY 1, 2"
)
_SEQUENCES = (
    "SELECT s.relname FROM pg_depend AS d JOIN pg_class AS s ON s.oid = d.objid"
    " WHERE d.classid = 'pg_class'::regclass AND d.refobjid = %s::regclass"
    " AND s.relkind = 'S' AND d.deptype IN ('a', 'i')"
)


class UngrantedTable(LookupError):
    """A table of the schema that :data:`schema.privileges.TABLE_PRIVILEGES` does not list."""


def apply_privileges(conn: psycopg.Connection[Any], names: Mapping[DatabaseRole, str]) -> None:
    """Grant each role (``names``: role -> its login name) exactly what it is declared to have."""
    tables = conn.execute(_TABLES, (_BESIDE_SCHEMAS,)).fetchall()
    unknown = [t for schema, t, *_ in tables if schema == "public" and t not in TABLE_PRIVILEGES]
    if unknown:
        msg = (
            f"no privileges declared for table(s) {', '.join(unknown)}: add a line per table to"
            " TABLE_PRIVILEGES in schema/privileges.py"
        )
        raise UngrantedTable(msg)
    statements = _database_statements(conn, names) + _default_privileges(names)
    for schema, table, schema_owner, table_owner in tables:
        if table in TABLE_PRIVILEGES:
            owners = (schema_owner, table_owner)
            statements += _table_statements(conn, names, schema, table, owners)
    conn.execute(sql.SQL(";\n").join(statements))
    append_only = resources.files("schema").joinpath("append_only.sql").read_text("utf-8")
    conn.execute(append_only.encode())


def _database_statements(
    conn: psycopg.Connection[Any], names: Mapping[DatabaseRole, str]
) -> list[sql.Composable]:
    row = conn.execute("SELECT current_database()").fetchone()
    assert row is not None
    database = sql.Identifier(row[0])
    public = sql.Identifier("public")
    statements: list[sql.Composable] = [
        sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(database),
        sql.SQL("REVOKE CREATE ON SCHEMA {} FROM PUBLIC").format(public),
    ]
    for role in DATABASE_ROLES:
        who = sql.Identifier(names[role])
        statements += [
            sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(database, who),
            sql.SQL("GRANT {} ON DATABASE {} TO {}").format(
                sql.SQL(DATABASE_PRIVILEGES[role]), database, who
            ),
            sql.SQL("REVOKE ALL ON SCHEMA {} FROM {}").format(public, who),
            sql.SQL("GRANT {} ON SCHEMA {} TO {}").format(
                sql.SQL(", ".join(["USAGE", *_listed(PUBLIC_SCHEMA_PRIVILEGES.get(role))])),
                public,
                who,
            ),
        ]
    return statements


def _default_privileges(names: Mapping[DatabaseRole, str]) -> list[sql.Composable]:
    statements: list[sql.Composable] = []
    owners = {owner_of(table) for table in TABLE_PRIVILEGES} - {None}
    for owner in sorted(o for o in owners if o is not None):
        grants = grants_on_owned_tables(owner)
        for role in DATABASE_ROLES:
            if role == owner:
                continue
            statements.append(
                sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} REVOKE ALL ON TABLES FROM {}").format(
                    sql.Identifier(names[owner]), sql.Identifier(names[role])
                )
            )
            if role in grants:
                statements.append(
                    sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} GRANT {} ON TABLES TO {}").format(
                        sql.Identifier(names[owner]),
                        sql.SQL(grants[role]),
                        sql.Identifier(names[role]),
                    )
                )
    return statements


def _table_statements(
    conn: psycopg.Connection[Any],
    names: Mapping[DatabaseRole, str],
    schema: str,
    table: str,
    owned_by: tuple[str, str],
) -> list[sql.Composable]:
    declared = TABLE_PRIVILEGES[table]
    target = sql.Identifier(schema, table)
    owner = owner_of(table)
    statements: list[sql.Composable] = []
    # Ownership moves only when it must: ALTER ... OWNER locks the table exclusively.
    if owner is not None:
        if schema != "public" and owned_by[0] != names[owner]:
            statements.append(
                sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(
                    sql.Identifier(schema), sql.Identifier(names[owner])
                )
            )
        if owned_by[1] != names[owner]:
            statements.append(
                sql.SQL("ALTER TABLE {} OWNER TO {}").format(target, sql.Identifier(names[owner]))
            )
    qualified = f"{sql.Identifier(schema, table).as_string(conn)}"
    sequences = [
        sql.Identifier(schema, name) for (name,) in conn.execute(_SEQUENCES, (qualified,))
    ]
    for role in DATABASE_ROLES:
        if role == owner:
            continue
        who = sql.Identifier(names[role])
        granted = declared.get(role)
        statements.append(sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(target, who))
        if granted and granted != OWNS:
            statements.append(
                sql.SQL("GRANT {} ON TABLE {} TO {}").format(sql.SQL(granted), target, who)
            )
        for sequence in sequences:
            statements.append(sql.SQL("REVOKE ALL ON SEQUENCE {} FROM {}").format(sequence, who))
            if "INSERT" in _listed(granted):
                statements.append(
                    sql.SQL("GRANT USAGE ON SEQUENCE {} TO {}").format(sequence, who)
                )
    return statements


def _listed(privileges: str | None) -> list[str]:
    return [p.strip() for p in (privileges or "").split(",") if p.strip()]
