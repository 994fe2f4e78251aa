"""``make migrate`` is idempotent, and our event-store DDL is the library's own.

The services run the eventsourcing library with ``CREATE_TABLE=no`` against
the tables ``schema/sql/001_event_store.sql`` creates, so that file must
create exactly what the library would: same columns and types, same keys,
same indexes, same composite type. The comparison asks the library to create
its tables in one scratch database and our DDL in another.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from eventsourcing.application import Application

from command_service.event_store import event_store_env
from schema.migrate import RERUNNABLE, EditedMigration, migrate, sql_files
from shared_kernel.settings import EVENT_STORE_NAME, EVENTS_TABLE, SNAPSHOTS_TABLE
from tests.support.infra import environ_without_urls, scratch_database

ROOT = Path(__file__).resolve().parents[2]

TABLES = (EVENTS_TABLE, SNAPSHOTS_TABLE)


def test_migrate_creates_then_applies_nothing() -> None:
    with scratch_database(migrated=False) as url:
        first = migrate(url)
        assert first == [name for name, _ in sql_files()]
        assert migrate(url) == []
        with psycopg.connect(url) as conn:
            recorded = conn.execute("SELECT name FROM schema_migrations ORDER BY name").fetchall()
        assert [name for (name,) in recorded] == first


def test_an_edited_applied_file_is_refused_by_name_and_nothing_is_applied() -> None:
    with scratch_database() as url:
        name = sql_files()[2][0]
        with psycopg.connect(url) as conn:
            edit = "UPDATE schema_migrations SET checksum = 'edited' WHERE name = %s"
            conn.execute(edit, (name,))
        files = [*sql_files(), ("999_next.sql", "CREATE TABLE next_step (id int)")]
        with pytest.raises(EditedMigration, match=rf"schema/sql/{name} was edited after"):
            migrate(url, files=files)
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT to_regclass('next_step')").fetchone() == (None,)
        completed = subprocess.run(
            [sys.executable, "-m", "schema.migrate"],
            env={**environ_without_urls(), "DATABASE_URL": url},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert completed.returncode == 1
        [line] = completed.stderr.splitlines()
        assert line.startswith(f"migrate: schema/sql/{name} was edited after it was applied")


def test_a_file_declared_re_runnable_is_applied_again_when_it_changes() -> None:
    view = "{}\nCREATE OR REPLACE VIEW answer AS SELECT {} AS value".format
    with scratch_database() as url:
        assert migrate(url, files=[("100_view.sql", view(RERUNNABLE, 41))]) == ["100_view.sql"]
        assert migrate(url, files=[("100_view.sql", view(RERUNNABLE, 41))]) == []
        assert migrate(url, files=[("100_view.sql", view(RERUNNABLE, 42))]) == ["100_view.sql"]
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT value FROM answer").fetchone() == (42,)


class _LibraryLedger(Application[UUID]):
    """The library left to create its own tables, under the same application name."""

    name = EVENT_STORE_NAME


def _library_schema(url: str) -> None:
    env = {
        **event_store_env(url, pool_size=1),
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "IS_SNAPSHOTTING_ENABLED": "y",
        "CREATE_TABLE": "yes",
    }
    app = _LibraryLedger(env=env)
    app.close()


def _describe(url: str) -> dict[str, Any]:
    """Columns, indexes, key constraints, storage options and composite types."""
    with psycopg.connect(url) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name, ordinal_position, data_type, is_nullable,"
            " column_default FROM information_schema.columns"
            " WHERE table_schema = 'public' AND table_name = ANY(%s)"
            " ORDER BY table_name, ordinal_position",
            (list(TABLES),),
        ).fetchall()
        indexes = conn.execute(
            "SELECT tablename, indexname, indexdef FROM pg_indexes"
            " WHERE schemaname = 'public' AND tablename = ANY(%s) AND indexname <> ALL(%s)"
            " ORDER BY indexname",
            (list(TABLES), list(PROJECT_INDEXES)),
        ).fetchall()
        keys = conn.execute(
            "SELECT tc.table_name, tc.constraint_name, tc.constraint_type,"
            " array_agg(kcu.column_name::text ORDER BY kcu.ordinal_position)"
            " FROM information_schema.table_constraints tc"
            " JOIN information_schema.key_column_usage kcu"
            "   ON kcu.constraint_name = tc.constraint_name"
            "  AND kcu.table_schema = tc.table_schema AND kcu.table_name = tc.table_name"
            " WHERE tc.table_schema = 'public' AND tc.table_name = ANY(%s)"
            " GROUP BY tc.table_name, tc.constraint_name, tc.constraint_type"
            " ORDER BY tc.constraint_name",
            (list(TABLES),),
        ).fetchall()
        options = conn.execute(
            "SELECT relname, reloptions FROM pg_class WHERE relname = ANY(%s) ORDER BY relname",
            (list(TABLES),),
        ).fetchall()
        types = conn.execute(
            "SELECT t.typname, a.attname, a.attnum, format_type(a.atttypid, a.atttypmod)"
            " FROM pg_type t JOIN pg_class c ON c.oid = t.typrelid"
            " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0"
            " JOIN pg_namespace n ON n.oid = t.typnamespace"
            " WHERE t.typtype = 'c' AND c.relkind = 'c' AND n.nspname = 'public'"
            " AND t.typname LIKE 'stored_event%%'"
            " ORDER BY t.typname, a.attnum"
        ).fetchall()
        sequences = conn.execute(
            "SELECT sequence_name, data_type FROM information_schema.sequences"
            " WHERE sequence_schema = 'public' AND sequence_name LIKE %s ORDER BY sequence_name",
            (f"{EVENT_STORE_NAME}_%",),
        ).fetchall()
    return {
        "columns": columns,
        "indexes": indexes,
        "keys": keys,
        "options": options,
        "types": types,
        "sequences": sequences,
    }


#: Indexes the project adds to the library's tables for its own readers (the library's
#: own code neither needs nor minds them).
PROJECT_INDEXES = ("ledger_events_transfer_steps",)


def test_event_store_ddl_matches_what_the_library_creates() -> None:
    with scratch_database(migrated=False) as ours, scratch_database(migrated=False) as theirs:
        migrate(ours)
        _library_schema(theirs)
        mine, library = _describe(ours), _describe(theirs)
    assert library["columns"], "the library created no tables: check the test's env"
    for aspect in ("columns", "indexes", "keys", "options", "types", "sequences"):
        assert mine[aspect] == library[aspect], aspect
