"""The registry: every projection declares what the machinery needs, and the DDL has its tables.

Adding a read model must be one module plus its DDL; these checks are what
tell its author they forgot a piece (a version, a table's DDL, a fold to
verify rebuilds against), before any projector runs it.
"""

from __future__ import annotations

import psycopg
import pytest

from projector.projections import PROJECTIONS, UnknownProjection, projection_named
from shared_kernel.language.events import EVENT_TYPES


def test_every_projection_declares_name_version_events_tables_and_folds() -> None:
    names = [projection.NAME for projection in PROJECTIONS]
    assert len(set(names)) == len(names)
    tables = [table for projection in PROJECTIONS for table in projection.TABLES]
    assert len(set(tables)) == len(tables), "a table belongs to one projection"
    for projection in PROJECTIONS:
        assert isinstance(projection.VERSION, int) and projection.VERSION >= 1
        assert projection.HANDLES and set(projection.HANDLES) <= set(EVENT_TYPES.values())
        assert projection.TABLES
        assert set(projection.REFERENCE) == set(projection.TABLES), projection.NAME
        assert all("%(up_to)s" in fold for fold in projection.REFERENCE.values())
        assert callable(projection.apply)
        assert projection_named(projection.NAME) is projection
    with pytest.raises(UnknownProjection, match="known: account_balances"):
        projection_named("no_such_projection")


def test_the_migrated_schema_has_every_declared_table(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        for projection in PROJECTIONS:
            for table in projection.TABLES:
                found = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()
                assert found is not None and found[0] is not None, f"no DDL creates {table}"
