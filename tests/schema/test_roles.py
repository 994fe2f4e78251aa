"""Each process role may do what ``schema/privileges.py`` declares and nothing else.

Every check connects as the role itself to a migrated scratch database and
tries the statement, so what is proven is what PostgreSQL enforces, not what
the catalog is expected to say.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg import sql

from schema.grant import UngrantedTable
from schema.migrate import migrate
from schema.privileges import OWNS, TABLE_PRIVILEGES
from schema.roles import RoleRefused
from shared_kernel.settings import (
    DATABASE_ROLES,
    DEFAULT_ROLE_NAMES,
    DatabaseRole,
    url_as_role,
)
from tests.support.infra import POSTGRES_SERVER_URL, scratch_database
from tests.support.ledger_writer import LedgerWriter

DENIED = psycopg.errors.InsufficientPrivilege
PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
READ_MODELS = [t for t, grants in TABLE_PRIVILEGES.items() if grants.get("projector") == OWNS]


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    """One migrated database with a little history, shared: every check here rolls back."""
    with scratch_database() as url:
        writer = LedgerWriter(url)
        account = writer.open("alice", "EUR")
        writer.deposit(account, 100)
        writer.close_store()
        with psycopg.connect(url) as conn:
            conn.execute(
                "INSERT INTO projection_checkpoints (projection, position) VALUES ('x', 1)"
            )
        yield url


def tables(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        ).fetchall()
    return [name for (name,) in rows]


def first_column(conn: psycopg.Connection[Any], table: str) -> str:
    row = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum = 1", (table,)
    ).fetchone()
    assert row is not None
    return str(row[0])


def statements(conn: psycopg.Connection[Any], table: str) -> dict[str, sql.Composed]:
    """One statement per way of changing ``table``."""
    name, column = sql.Identifier(table), sql.Identifier(first_column(conn, table))
    return {
        "INSERT": sql.SQL("INSERT INTO {} DEFAULT VALUES").format(name),
        "UPDATE": sql.SQL("UPDATE {} SET {} = {}").format(name, column, column),
        "DELETE": sql.SQL("DELETE FROM {}").format(name),
        "TRUNCATE": sql.SQL("TRUNCATE {}").format(name),
        "DROP": sql.SQL("DROP TABLE {}").format(name),
        "ALTER": sql.SQL("ALTER TABLE {} ADD COLUMN intruder int").format(name),
    }


def attempt(url: str, role: DatabaseRole, statement: sql.Composed | sql.SQL) -> Exception | None:
    """Run ``statement`` as ``role`` in a transaction that is rolled back; the error, if any."""
    with psycopg.connect(url_as_role(url, DEFAULT_ROLE_NAMES[role])) as conn:
        try:
            with conn.transaction(force_rollback=True):
                conn.execute(statement)
        except psycopg.Error as error:
            return error
    return None


def test_the_query_role_can_change_nothing(database_url: str) -> None:
    checked, every_table = 0, tables(database_url)
    assert len(every_table) >= 13
    for table in every_table:
        with psycopg.connect(database_url) as conn:
            tried = statements(conn, table)
        for what, statement in tried.items():
            error = attempt(database_url, "query", statement)
            assert isinstance(error, DENIED), f"query role: {what} {table} gave {error!r}"
            checked += 1
    assert checked == 6 * len(every_table)
    for text in (
        "CREATE TABLE public.intruder (id int)",
        "CREATE SCHEMA intruder",
        "SELECT nextval('ledger_events_notification_id_seq')",
        "SELECT * FROM ledger_snapshots",
        "SELECT * FROM idempotency_keys",
    ):
        assert isinstance(attempt(database_url, "query", sql.SQL(text)), DENIED), text


def test_the_query_role_reads_what_it_serves_and_folds_into_temp_tables(database_url: str) -> None:
    for statement in (
        "SELECT count(*) FROM account_balances",
        "SELECT max(notification_id) FROM ledger_events",
        "SELECT position FROM projection_checkpoints",
        "CREATE TEMP TABLE scratch (LIKE account_balances INCLUDING ALL) ON COMMIT DROP",
    ):
        assert attempt(database_url, "query", sql.SQL(statement)) is None, statement


def test_the_writer_cannot_write_read_models_or_checkpoints(database_url: str) -> None:
    for table in [*READ_MODELS, "projection_checkpoints", "projection_rebuilds"]:
        with psycopg.connect(database_url) as conn:
            tried = statements(conn, table)
        for what, statement in tried.items():
            error = attempt(database_url, "writer", statement)
            assert isinstance(error, DENIED), f"writer: {what} {table} gave {error!r}"


def test_the_projector_cannot_write_the_event_store_or_the_command_side(
    database_url: str,
) -> None:
    command_side = ["ledger_events", "ledger_snapshots", "idempotency_keys", "saga_positions"]
    for table in [*command_side, "relay_positions"]:
        with psycopg.connect(database_url) as conn:
            tried = statements(conn, table)
        for what, statement in tried.items():
            error = attempt(database_url, "projector", statement)
            assert isinstance(error, DENIED), f"projector: {what} {table} gave {error!r}"


@pytest.mark.parametrize("table", ["ledger_events", "ledger_snapshots"])
@pytest.mark.parametrize("role", DATABASE_ROLES)
def test_nobody_but_the_owner_changes_history(
    database_url: str, role: DatabaseRole, table: str
) -> None:
    with psycopg.connect(database_url) as conn:
        tried = statements(conn, table)
        count = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        row = count.fetchone()
    assert row is not None and (table == "ledger_snapshots" or row[0] > 0)
    for what in ("UPDATE", "DELETE", "TRUNCATE"):
        error = attempt(database_url, role, tried[what])
        assert isinstance(error, DENIED), f"{role}: {what} {table} gave {error!r}"
    with psycopg.connect(database_url) as owner:  # the owner may, e.g. to repair
        for what in ("UPDATE", "DELETE", "TRUNCATE"):
            with owner.transaction(force_rollback=True):
                owner.execute(tried[what])


def test_the_writer_may_lock_the_events_table_but_its_update_is_refused(
    database_url: str,
) -> None:
    lock = sql.SQL("LOCK TABLE ledger_events IN EXCLUSIVE MODE")
    assert attempt(database_url, "writer", lock) is None
    with psycopg.connect(database_url) as conn:
        update = statements(conn, "ledger_events")["UPDATE"]
    error = attempt(database_url, "writer", update)
    assert isinstance(error, DENIED) and "append-only" in str(error)


def test_each_role_holds_exactly_the_declared_table_privileges(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        for table in tables(database_url):
            declared = TABLE_PRIVILEGES[table]
            for role in DATABASE_ROLES:
                grants = declared.get(role, "")
                for privilege in PRIVILEGES:
                    row = conn.execute(
                        "SELECT has_table_privilege(%s, %s, %s)",
                        (DEFAULT_ROLE_NAMES[role], f"public.{table}", privilege),
                    ).fetchone()
                    expected = grants == OWNS or privilege in grants
                    assert row == (expected,), f"{role} {privilege} on {table}"


def test_a_table_without_declared_privileges_stops_the_migration() -> None:
    with scratch_database() as url:
        with psycopg.connect(url) as conn:
            conn.execute("CREATE TABLE forgotten (id int)")
        with pytest.raises(UngrantedTable, match="forgotten"):
            migrate(url)


def test_a_superuser_is_refused_as_a_process_role() -> None:
    with scratch_database(migrated=False) as url:
        urls = {r: url_as_role(url, n) for r, n in DEFAULT_ROLE_NAMES.items()}
        with pytest.raises(RoleRefused, match="WRITER_DATABASE_URL"):
            migrate(url, {**urls, "writer": url})


@contextmanager
def fresh_roles(password: str | None = None) -> Iterator[Callable[[str], dict[DatabaseRole, str]]]:
    """Role names no migration has used yet; the roles are dropped afterwards."""
    prefix = f"ledger_t{uuid.uuid4().hex[:8]}"
    names = {role: f"{prefix}_{role}" for role in DATABASE_ROLES}
    secret = f":{password}" if password else ""

    def urls(url: str) -> dict[DatabaseRole, str]:
        return {
            role: url_as_role(url, name).replace(f"{name}@", f"{name}{secret}@", 1)
            for role, name in names.items()
        }

    try:
        yield urls
    finally:
        with psycopg.connect(POSTGRES_SERVER_URL, autocommit=True) as conn:
            for name in names.values():
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def test_concurrent_migrations_create_the_same_new_roles_once() -> None:
    migrations = 4
    barrier = threading.Barrier(migrations)
    errors: list[BaseException] = []
    with fresh_roles() as urls:

        def run(url: str) -> None:
            try:
                barrier.wait(timeout=30)
                migrate(url, urls(url))
            except BaseException as error:  # reported below, with the others
                errors.append(error)

        with (
            scratch_database(migrated=False) as a,
            scratch_database(migrated=False) as b,
            scratch_database(migrated=False) as c,
            scratch_database(migrated=False) as d,
        ):
            threads = [threading.Thread(target=run, args=(url,)) for url in (a, b, c, d)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
            assert not errors, errors
            for url in (a, b, c, d):
                role_url = urls(url)["query"]
                with psycopg.connect(role_url) as conn:
                    conn.execute("SELECT count(*) FROM account_balances")


def test_a_password_in_a_role_url_becomes_the_role_password() -> None:
    with fresh_roles(password="s3cret") as urls, scratch_database(migrated=False) as url:
        migrate(url, urls(url))
        name = urls(url)["writer"].split("://", 1)[1].split(":", 1)[0]
        with psycopg.connect(POSTGRES_SERVER_URL) as conn:
            row = conn.execute(
                "SELECT rolpassword, rolsuper FROM pg_authid WHERE rolname = %s", (name,)
            ).fetchone()
    assert row is not None
    assert str(row[0]).startswith("SCRAM-SHA-256$") and "s3cret" not in str(row[0])
    assert row[1] is False
