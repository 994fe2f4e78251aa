"""Throw-away databases on a server: created (and migrated), used, then dropped.

Tests and benchmarks fill their own database instead of the one ``make run`` uses.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from schema.migrate import migrate


def with_database(server_url: str, dbname: str) -> str:
    """``server_url`` naming the database ``dbname``."""
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{dbname}"))


@contextmanager
def scratch_database(server_url: str, prefix: str, *, migrated: bool = True) -> Iterator[str]:
    """A new database ``<prefix>_<random>`` on ``server_url``'s server (migrated unless told
    otherwise); yields its URL, as ``server_url``'s user, and drops it when the block ends."""
    dbname = f"{prefix}_{uuid.uuid4().hex[:12]}"
    maintenance = with_database(server_url, "postgres")
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    try:
        url = with_database(server_url, dbname)
        if migrated:
            migrate(url)
        yield url
    finally:
        with psycopg.connect(maintenance, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )
