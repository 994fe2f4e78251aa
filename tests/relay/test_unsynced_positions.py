"""Positions are written without an fsync, and only their own transaction is affected."""

from __future__ import annotations

from typing import Any

import psycopg

from command_service.relay.positions import load_relay_position, save_relay_position
from command_service.transfer_saga.positions import load_saga_position, save_saga_position


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
