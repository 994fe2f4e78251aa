"""Concurrent writers on one account: no lost update, no overdraft, conflicts answered.

Real processes, real PostgreSQL; many requests in flight at once, so the
appender decides them in shared batches (and, with two processes, conflicts
on the store's primary key).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from command_service.event_store import LedgerEventStore, event_store_env
from tests.support.infra import unique_stream_name
from tests.support.processes import ServiceProcess, Stack


def open_with(url: str, balance: int) -> str:
    with httpx.Client(base_url=url, timeout=10) as client:
        opened = client.post("/accounts", json={"owner": "alice", "currency": "EUR"})
        account_id = str(opened.json()["account_id"])
        deposited = client.post(f"/accounts/{account_id}/deposits", json={"amount": balance})
        assert deposited.status_code == 200, deposited.text
    return account_id


async def withdraw_concurrently(
    urls: list[str], account_id: str, count: int, amount: int, if_match: str | None = None
) -> list[httpx.Response]:
    headers = {"If-Match": if_match} if if_match else {}
    limits = httpx.Limits(max_connections=count)
    clients = [httpx.AsyncClient(base_url=url, timeout=30, limits=limits) for url in urls]
    try:
        return list(
            await asyncio.gather(
                *(
                    clients[i % len(clients)].post(
                        f"/accounts/{account_id}/withdrawals", json={"amount": amount},
                        headers=headers,
                    )
                    for i in range(count)
                )
            )
        )
    finally:
        for client in clients:
            await client.aclose()


def withdrawals_in_store(database_url: str, account_id: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM ledger_events WHERE originator_id = %s AND topic = %s",
            (uuid.UUID(account_id), "ledger.MoneyWithdrawn.v1"),
        ).fetchone()
    assert row is not None
    return int(row[0])


def balance_in_store(database_url: str, account_id: str) -> int:
    store = LedgerEventStore(env=event_store_env(database_url))
    try:
        return store.get_account(uuid.UUID(account_id)).balance
    finally:
        store.close()


def assert_refusals(responses: list[httpx.Response], status: int, code: str) -> None:
    for response in responses:
        assert response.status_code == status, response.text
        assert response.headers["Content-Type"] == "application/problem+json"
        assert response.json()["code"] == code


async def test_fifty_withdrawals_of_ten_from_a_hundred(
    command_service: ServiceProcess, command_database: str
) -> None:
    account_id = open_with(command_service.url, 100)

    responses = await withdraw_concurrently([command_service.url], account_id, 50, 10)

    accepted = [r for r in responses if r.status_code == 200]
    assert len(accepted) == 10
    assert_refusals([r for r in responses if r.status_code != 200], 422, "insufficient-funds")
    last = max(accepted, key=lambda r: int(r.json()["version"]))
    assert last.json()["balance"] == 0
    assert sorted(int(r.json()["version"]) for r in accepted) == list(range(3, 13))
    assert balance_in_store(command_database, account_id) == 0
    assert withdrawals_in_store(command_database, account_id) == 10


async def test_one_winner_per_expected_version(
    command_service: ServiceProcess, command_database: str
) -> None:
    account_id = open_with(command_service.url, 1_000)
    version = 2
    for _ in range(3):
        responses = await withdraw_concurrently(
            [command_service.url], account_id, 20, 10, if_match=f'"{version}"'
        )
        winners = [r for r in responses if r.status_code == 200]
        assert len(winners) == 1
        assert winners[0].json()["version"] == version + 1
        losers = [r for r in responses if r.status_code != 200]
        assert_refusals(losers, 412, "precondition-failed")
        assert {(r.json()["current_version"], *r.json()["expected_versions"]) for r in losers} == {
            (version + 1, version)
        }
        version += 1
    assert balance_in_store(command_database, account_id) == 970
    assert withdrawals_in_store(command_database, account_id) == 3


@pytest.fixture
def two_command_services(database_url: str, tmp_path: Path) -> Iterator[list[ServiceProcess]]:
    """Two command processes on one store: each has its own cache and its own batches.

    Retries are generous so that no command runs out of them while the other
    process keeps committing: the test is about the outcome, not the bound.
    """
    stacks = [
        Stack(
            database_url=database_url,
            stream_name=unique_stream_name(),
            log_dir=tmp_path / name,
            extra_env={"APPEND_RETRIES": "50"},
        )
        for name in ("a", "b")
    ]
    try:
        for stack in stacks:
            stack.log_dir.mkdir()
            stack.start("command")
        yield [stack.process("command") for stack in stacks]
    finally:
        for stack in stacks:
            stack.stop()


async def test_two_processes_withdrawing_from_one_account(
    two_command_services: list[ServiceProcess], database_url: str
) -> None:
    first, second = two_command_services
    account_id = open_with(first.url, 100)
    # Both processes hold the account in their caches before the race.
    assert (await withdraw_concurrently([second.url], account_id, 1, 1))[0].status_code == 200

    responses = await withdraw_concurrently([first.url, second.url], account_id, 60, 10)

    accepted = [r for r in responses if r.status_code == 200]
    # 99 left: nine withdrawals of ten fit, whichever process decides them.
    assert len(accepted) == 9
    assert_refusals([r for r in responses if r.status_code != 200], 422, "insufficient-funds")
    assert sorted(int(r.json()["version"]) for r in accepted) == list(range(4, 13))
    assert balance_in_store(database_url, account_id) == 9
    assert withdrawals_in_store(database_url, account_id) == 10


async def test_holds_and_withdrawals_racing_on_two_processes_never_overspend(
    two_command_services: list[ServiceProcess], database_url: str
) -> None:
    first, second = two_command_services
    account_id = open_with(first.url, 100)
    hold = {"amount": 10, "reference": "card", "expires_in_seconds": 600}
    clients = [httpx.AsyncClient(base_url=p.url, timeout=30) for p in (first, second)]
    try:
        responses = await asyncio.gather(
            *(
                clients[i % 2].post(f"/accounts/{account_id}/holds", json=hold)
                if i % 3
                else clients[i % 2].post(
                    f"/accounts/{account_id}/withdrawals", json={"amount": 10}
                )
                for i in range(40)
            )
        )
    finally:
        for client in clients:
            await client.aclose()

    accepted = [r for r in responses if r.status_code in (200, 201)]
    assert len(accepted) == 10  # ten tens fit in a hundred, held or withdrawn
    refused = [r for r in responses if r.status_code not in (200, 201)]
    assert_refusals(refused, 422, "insufficient-funds")
    store = LedgerEventStore(env=event_store_env(database_url))
    try:
        account = store.get_account(uuid.UUID(account_id))
    finally:
        store.close()
    withdrawn = sum(1 for r in accepted if r.status_code == 200)
    left = 100 - 10 * withdrawn
    assert (account.balance, account.held, account.available) == (left, left, 0)
