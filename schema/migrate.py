"""Apply ``schema/sql/*.sql`` to the database, idempotently.

Creates the database when it does not exist, and the processes' login roles
(:mod:`schema.roles`), then applies each file not applied yet, in name order,
inside one transaction under an advisory lock, so two processes migrating at
once cannot interleave. ``schema_migrations`` records each file applied and its
checksum. A file is applied once: one edited after it was applied is refused,
naming it, and nothing is applied (a change to the schema is a new numbered
file), unless its first line declares it re-runnable (:data:`RERUNNABLE`), which
re-applies it whenever it changes. Last, in the same transaction and on every
run, each role gets exactly the privileges :mod:`schema.privileges` declares
(:mod:`schema.grant`). Run it as the owner (``DATABASE_URL``).

Run as ``python -m schema.migrate`` (``make migrate``).
"""

from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import Mapping, Sequence
from importlib import resources
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from schema.grant import UngrantedTable, apply_privileges
from schema.roles import RoleRefused, ensure_roles, role_logins
from shared_kernel.observability import redacted_url
from shared_kernel.settings import CommonSettings, DatabaseRole, default_role_urls, load_settings

log = logging.getLogger("schema.migrate")

#: Any constant works; it only has to be the same for every migrating process.
MIGRATION_LOCK_KEY = 0x1ED6E5
#: The first line of a file that may be re-applied when it changes (``CREATE OR REPLACE``
#: only, say): without it, an applied file that changed is refused.
RERUNNABLE = "-- migrate: re-runnable"


class EditedMigration(Exception):
    """An applied file changed since; applying it again could do anything, so nothing is."""

    def __init__(self, name: str, database: str) -> None:
        super().__init__(
            f"schema/sql/{name} was edited after it was applied to database {database};"
            " put the change in a new numbered file (or restore the file), or declare it"
            f" re-runnable with a first line {RERUNNABLE!r}; nothing was applied"
        )


def sql_files() -> list[tuple[str, str]]:
    """The (name, text) of every DDL file, in the order they apply."""
    folder = resources.files("schema") / "sql"
    files = sorted(
        (entry.name, entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    )
    return files


def ensure_database(database_url: str) -> bool:
    """Create the database named in ``database_url`` if missing; True if created."""
    parts = urlsplit(database_url)
    dbname = parts.path.lstrip("/")
    maintenance_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(maintenance_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if exists:
            return False
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        except psycopg.errors.DuplicateDatabase:
            return False  # another process won the race
        return True


def migrate(
    database_url: str,
    role_urls: Mapping[DatabaseRole, str] | None = None,
    files: Sequence[tuple[str, str]] | None = None,
) -> list[str]:
    """Bring the schema and its privileges up to date; returns the files newly applied.

    ``role_urls`` say which role each kind of process connects as (and its
    password, if any); by default ``database_url``'s with the default role names.
    ``files`` are the (name, text) to apply, by default :func:`sql_files`.
    """
    ensure_database(database_url)
    logins = role_logins(role_urls or default_role_urls(database_url))
    with psycopg.connect(database_url, autocommit=True) as conn:
        ensure_roles(conn, logins)
    applied: list[str] = []
    with psycopg.connect(database_url) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name text PRIMARY KEY, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        rows = conn.execute("SELECT name, checksum FROM schema_migrations").fetchall()
        known: dict[str, str] = dict(rows)
        for name, text in sql_files() if files is None else files:
            checksum = hashlib.sha256(text.encode()).hexdigest()
            if known.get(name) == checksum:
                continue
            if name in known and not text.startswith(RERUNNABLE):
                raise EditedMigration(name, urlsplit(database_url).path.lstrip("/"))
            conn.execute(text.encode())
            conn.execute(
                "INSERT INTO schema_migrations (name, checksum) VALUES (%s, %s)"
                " ON CONFLICT (name) DO UPDATE SET checksum = EXCLUDED.checksum,"
                " applied_at = now()",
                (name, checksum),
            )
            applied.append(name)
        apply_privileges(conn, {role: login.name for role, login in logins.items()})
    return applied


def main() -> None:
    settings = load_settings(CommonSettings)
    try:
        applied = migrate(settings.database_url, settings.role_urls())
    except psycopg.OperationalError as error:
        where = redacted_url(settings.database_url)
        print(f"migrate: cannot reach PostgreSQL at {where}: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    except (
        EditedMigration,
        RoleRefused,
        UngrantedTable,
        psycopg.errors.InsufficientPrivilege,
    ) as error:
        print(f"migrate: {error}".rstrip(), file=sys.stderr)
        raise SystemExit(1) from None
    where = urlsplit(settings.database_url).path.lstrip("/")
    if applied:
        print(f"migrate: applied {', '.join(applied)} to database {where}")
    else:
        print(f"migrate: database {where} is up to date")
    roles = ", ".join(
        f"{role} as {urlsplit(url).username}" for role, url in settings.role_urls().items()
    )
    print(f"migrate: privileges granted to the processes' roles ({roles})")


if __name__ == "__main__":
    main()
