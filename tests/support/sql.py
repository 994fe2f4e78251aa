"""One statement on a connection of its own: what tests read from a database to check it.

Without ``params`` the statement is sent as written (a ``%`` in it is no placeholder).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg


def rows(
    database_url: str, query: str, params: Sequence[Any] | None = None
) -> list[tuple[Any, ...]]:
    """Every row ``query`` returns (committed, connection closed)."""
    with psycopg.connect(database_url) as conn:
        return conn.execute(query, params).fetchall()


def value(database_url: str, query: str, params: Sequence[Any] | None = None) -> Any:
    """The first column of the first row ``query`` returns; there must be a row."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(query, params).fetchone()
    assert row is not None, query
    return row[0]
