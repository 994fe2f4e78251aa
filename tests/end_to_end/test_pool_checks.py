"""Pooled connections are checked for free while nothing happened, and pinged when stirred.

The oracle is the server's own record of each session (``pg_stat_activity``):
a ping is a statement, so it moves the session's ``state_change``; a connection
handed out unpinged leaves it where the last real statement put it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from command_service.event_store import LedgerEventStore, event_store_env
from shared_kernel.pools import postgres_pool
from tests.end_to_end.test_database_outages import end_every_backend


def state_changes(database_url: str) -> dict[int, datetime]:
    """When each other session of the database last began or ended a statement."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid, state_change FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return {int(pid): changed for pid, changed in rows}


def backend_of(conn: Any) -> int:
    pid: int = conn.pgconn.backend_pid
    return pid


async def test_an_untouched_idle_connection_is_handed_out_without_a_ping(
    database_url: str,
) -> None:
    pool = postgres_pool(database_url, "check-test", max_size=1, min_size=1)
    await pool.open(wait=True)
    try:
        async with pool.connection() as conn:
            await conn.execute("SELECT 1")
            pid = backend_of(conn)
        used = state_changes(database_url)
        async with pool.connection() as conn:
            assert backend_of(conn) == pid
            assert state_changes(database_url)[pid] == used[pid], "the check sent a statement"

        # Stirred: the server ended the session; the pool notices and connects afresh.
        end_every_backend(database_url)
        async with pool.connection() as conn:
            cursor = await conn.execute("SELECT 1")
            assert await cursor.fetchone() == (1,)
            assert backend_of(conn) != pid
    finally:
        await pool.close()


def test_the_event_store_pool_pings_only_a_connection_the_server_ended(
    database_url: str,
) -> None:
    store = LedgerEventStore(env=event_store_env(database_url, pool_size=1))
    datastore = store.recorder.datastore  # type: ignore[attr-defined]
    try:
        with datastore.get_connection() as conn:
            conn.execute("SELECT 1")
        used = state_changes(database_url)
        with datastore.get_connection() as conn:
            pid = backend_of(conn)  # the pool hands its idle connections out in turn
            assert state_changes(database_url)[pid] == used[pid], "the check sent a statement"

        ended = end_every_backend(database_url)
        with datastore.get_connection() as conn:
            assert conn.execute("SELECT 1").fetchone() == {"?column?": 1}
            assert backend_of(conn) not in ended
    finally:
        store.close()


async def test_service_connections_never_compile_just_in_time_and_may_keep_generic_plans(
    database_url: str,
) -> None:
    with psycopg.connect(database_url, autocommit=True) as plain:
        assert plain.execute("SHOW jit").fetchone() == ("on",)  # the server's default here
    pool = postgres_pool(database_url, "jit-test", max_size=1, min_size=1)
    await pool.open(wait=True)
    generic = postgres_pool(database_url, "generic", max_size=1, min_size=1, generic_plans=True)
    await generic.open(wait=True)
    store = LedgerEventStore(env=event_store_env(database_url, pool_size=1))
    datastore = store.recorder.datastore  # type: ignore[attr-defined]
    try:
        async with pool.connection() as conn:
            cursor = await conn.execute("SHOW jit")
            assert await cursor.fetchone() == ("off",)
            cursor = await conn.execute("SHOW plan_cache_mode")
            assert await cursor.fetchone() == ("auto",)
        async with generic.connection() as conn:
            cursor = await conn.execute("SHOW jit")
            assert await cursor.fetchone() == ("off",)
            cursor = await conn.execute("SHOW plan_cache_mode")
            assert await cursor.fetchone() == ("force_generic_plan",)
        with datastore.get_connection() as conn:
            assert conn.execute("SHOW jit").fetchone() == {"jit": "off"}
    finally:
        await pool.close()
        await generic.close()
        store.close()
