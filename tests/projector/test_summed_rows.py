"""Rows summed over accounts stay exact when projectors of two partitions add to them at once.

Two transactions add to the same new currency: the second waits for the
first's new row instead of inserting a duplicate (or failing on the key), and
adds to what the first committed. Then both subtract from it concurrently.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import psycopg

from projector.projections.currency_totals import SUMMED

NOW = datetime(2026, 12, 4, tzinfo=UTC)


async def waiting_on_a_lock(url: str, pid: int) -> bool:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cursor = await conn.execute(
            "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", (pid,)
        )
        row = await cursor.fetchone()
    return bool(row and row[0])


async def test_two_partitions_adding_to_a_new_row_at_once_both_count(database_url: str) -> None:
    async def add_concurrently(first: tuple[object, ...], second: tuple[object, ...]) -> None:
        async with (
            await psycopg.AsyncConnection.connect(database_url) as one,
            await psycopg.AsyncConnection.connect(database_url) as other,
        ):
            await SUMMED.apply(one, [first])  # in its transaction, not committed yet
            later = asyncio.create_task(_commit_after(other, second))
            for _ in range(500):  # until the second waits for the first's row
                if await waiting_on_a_lock(database_url, other.info.backend_pid):
                    break
                await asyncio.sleep(0.01)
            else:
                raise AssertionError("the second batch never waited for the first's row")
            await one.commit()
            await later

    await add_concurrently(("XTS", 100, 1, 1, 0, NOW, 10), ("XTS", 50, 1, 1, 0, NOW, 11))
    await add_concurrently(("XTS", -30, 0, 0, 0, NOW, 12), ("XTS", -20, 0, -1, 1, NOW, 13))
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT balance, accounts, open_accounts, closed_accounts, last_position"
            " FROM currency_totals WHERE currency = 'XTS'"
        ).fetchone()
    assert row == (100, 2, 1, 1, 13)


async def _commit_after(conn: psycopg.AsyncConnection, row: tuple[object, ...]) -> None:
    await SUMMED.apply(conn, [row])
    await conn.commit()
