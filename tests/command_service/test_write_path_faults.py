"""The real command service when its write path is held up: no second execution, no wedge.

A test connection holds the event store's table lock, as a slow or stuck
commit would. While it does, an Idempotency-Key retry whose first attempt's
lease ran out must not execute the command a second time, and readiness must
say the writer makes no progress; once the lock goes, both attempts give the
same answer and the store holds the command once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID, uuid4

import httpx
import psycopg
import pytest

from tests.command_service.test_exactly_once import events_caused_by, wait_for_lock_waiters
from tests.support.infra import unique_stream_name
from tests.support.processes import ServiceProcess, Stack
from tests.support.sql import rows


@pytest.fixture
def command_service(database_url: str, tmp_path: Path) -> Iterator[ServiceProcess]:
    stack = Stack(
        database_url=database_url,
        stream_name=unique_stream_name(),
        log_dir=tmp_path,
        extra_env={
            "IDEMPOTENCY_LEASE_SECONDS": "0.5",
            "IDEMPOTENCY_WAIT_SECONDS": "0",
            "WRITER_STALL_SECONDS": "1",
        },
    )
    stack.start("command")
    yield stack.process("command")
    stack.stop()


async def wait_until_status(
    client: httpx.AsyncClient, path: str, status: int, within: float = 15.0
) -> httpx.Response:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        response = await client.get(path)
        if response.status_code == status:
            return response
        assert asyncio.get_running_loop().time() < deadline, f"{path} never answered {status}"
        await asyncio.sleep(0.05)


async def test_a_retry_after_the_lease_ran_out_adopts_the_first_attempt(
    command_service: ServiceProcess, database_url: str
) -> None:
    async with httpx.AsyncClient(base_url=command_service.url, timeout=30) as client:
        opened = await client.post("/accounts", json={"owner": "o", "currency": "EUR"})
        account_id = opened.json()["account_id"]
        await client.post(f"/accounts/{account_id}/deposits", json={"amount": 100})
        key = {"Idempotency-Key": f"withdraw-{uuid4()}"}
        body = {"amount": 100}
        blocker = await psycopg.AsyncConnection.connect(database_url)
        await blocker.execute("LOCK TABLE ledger_events IN EXCLUSIVE MODE")
        try:
            first = asyncio.ensure_future(
                client.post(f"/accounts/{account_id}/withdrawals", json=body, headers=key)
            )
            await wait_for_lock_waiters(database_url, 1)
            # The writer holds commands and finishes nothing: not ready.
            stalled = await wait_until_status(client, "/health/ready", 503)
            assert "writer" in stalled.text
            # The first attempt's lease (0.5 s) runs out while it waits to commit; the
            # retry takes over the same command id and waits for the first to end.
            await wait_for_lease_expiry(database_url, key["Idempotency-Key"])
            second = asyncio.ensure_future(
                client.post(f"/accounts/{account_id}/withdrawals", json=body, headers=key)
            )
            await wait_for_takeover(database_url, key["Idempotency-Key"])
        finally:
            await blocker.rollback()
            await blocker.close()
        answers = await asyncio.gather(first, second)
        assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
        assert answers[0].json() == answers[1].json()
        assert answers[0].json()["balance"] == 0
        await wait_until_status(client, "/health/ready", 200)
    command_ids = recorded_withdrawals(database_url, account_id)
    assert len(command_ids) == 1
    assert events_caused_by(database_url, command_ids[0]) == 1


async def wait_for_lease_expiry(database_url: str, key: str, within: float = 10.0) -> None:
    await _wait_for_row(
        database_url, key, "locked_until < now()", within, "the first attempt's lease never ran out"
    )


async def wait_for_takeover(database_url: str, key: str, within: float = 10.0) -> None:
    await _wait_for_row(database_url, key, "attempts >= 2", within, "the retry never took over")


async def _wait_for_row(
    database_url: str, key: str, condition: str, within: float, why: str
) -> None:
    deadline = asyncio.get_running_loop().time() + within
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        while True:
            cursor = await conn.execute(
                f"SELECT 1 FROM idempotency_keys WHERE idempotency_key = %s AND {condition}",
                (key,),
            )
            if await cursor.fetchone():
                return
            assert asyncio.get_running_loop().time() < deadline, why
            await asyncio.sleep(0.02)


def recorded_withdrawals(database_url: str, account_id: str) -> list[UUID]:
    query = (
        "SELECT command_id FROM ledger_commands c JOIN ledger_events e"
        " USING (originator_id, originator_version)"
        " WHERE c.originator_id = %s AND e.topic LIKE 'ledger.MoneyWithdrawn%%'"
    )
    return [command_id for (command_id,) in rows(database_url, query, (account_id,))]
