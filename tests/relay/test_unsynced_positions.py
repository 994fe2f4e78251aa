"""Positions are written without an fsync, and only their own transaction is affected."""

from __future__ import annotations

from typing import Any

import psycopg

from command_service.relay.positions import load_relay_position, save_relay_position
from command_service.transfer_saga.positions import load_saga_position, save_saga_position
from tests.support.postgres_server import private_postgres


async def _setting(conn: psycopg.AsyncConnection[Any]) -> str:
    cursor = await conn.execute("SHOW synchronous_commit")
    row = await cursor.fetchone()
    assert row is not None
    return str(row[0])


async def test_positions_commit_and_leave_the_connections_setting_alone(database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        before = await _setting(conn)
        await save_relay_position(conn, "test:stream", 42)
        await save_relay_position(conn, "test:stream", 7)  # never backwards
        await save_saga_position(conn, 99)
        after = await _setting(conn)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE

    assert before == after == "on"
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as other:
        assert await load_relay_position(other, "test:stream") == 42
        assert await load_saga_position(other) == (99, 0)


async def _wal_writes(conn: psycopg.AsyncConnection[Any]) -> int:
    """WAL writes of the whole server so far (this backend's own counts flushed first)."""
    await conn.execute("SELECT pg_stat_force_next_flush()")
    await conn.execute("SELECT 1")  # the forced report goes out before this answers
    cursor = await conn.execute("SELECT wal_write FROM pg_stat_wal")
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def test_a_position_write_does_not_wait_for_the_wal_while_a_plain_commit_does() -> None:
    # A server of its own: nothing else writes WAL there meanwhile.
    with private_postgres() as server:
        url = server.migrated_database()
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            start = await _wal_writes(conn)
            for position in range(1, 101):
                await save_relay_position(conn, "test:stream", position)
            unsynced = await _wal_writes(conn) - start
            start = await _wal_writes(conn)
            for position in range(101, 201):  # the same row, committed the usual way
                await conn.execute(
                    "UPDATE relay_positions SET position = %s WHERE stream_name = %s",
                    (position, "test:stream"),
                )
            synced = await _wal_writes(conn) - start
            assert await load_relay_position(conn, "test:stream") == 200

    assert synced >= 100  # each commit wrote its WAL before answering
    assert unsynced < 50  # the WAL writer wrote theirs, a few at a time
