"""A hold's deadline, run by the real transfer saga process: released once, across a kill -9."""

from __future__ import annotations

import uuid

import httpx
import psycopg
import pytest

from shared_kernel.language.events import HeldFundsReleased, HoldExpired
from tests.support.processes import Stack
from tests.support.streams import wait_for

pytestmark = pytest.mark.processes


def _count(database_url: str, sql: str, *params: object) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(sql, params).fetchone()
    return int(row[0]) if row else 0


def _ends(database_url: str, hold_id: str) -> int:
    """The events that ended the hold, on its stream and on its account's."""
    return _count(
        database_url,
        "SELECT count(*) FROM ledger_events WHERE (originator_id = %s AND topic = %s)"
        " OR (topic = %s AND convert_from(state, 'UTF8')::jsonb->>'hold_id' = %s)",
        uuid.UUID(hold_id), HoldExpired.TOPIC, HeldFundsReleased.TOPIC, hold_id,
    )  # fmt: skip


def _hold(stack: Stack, amount: int, seconds: int) -> tuple[str, str]:
    client = httpx.Client(base_url=stack.process("command").url, timeout=10)
    opened = client.post("/accounts", json={"owner": "dana", "currency": "EUR"})
    account_id = opened.json()["account_id"]
    assert client.post(f"/accounts/{account_id}/deposits", json={"amount": 100}).status_code == 200
    placed = client.post(
        f"/accounts/{account_id}/holds",
        json={"amount": amount, "reference": "card", "expires_in_seconds": seconds},
    )
    assert placed.status_code == 201, placed.text
    return account_id, placed.json()["hold_id"]


def _withdraw_all(stack: Stack, account_id: str) -> httpx.Response:
    return httpx.post(
        f"{stack.process('command').url}/accounts/{account_id}/withdrawals", json={"amount": 100}
    )


def test_a_hold_past_its_deadline_is_released_once(stack: Stack) -> None:
    account_id, hold_id = _hold(stack, 60, 1)
    url = stack.database_url
    wait_for(lambda: _ends(url, hold_id) == 2, timeout=30, what="the hold expired")
    assert _withdraw_all(stack, account_id).status_code == 200  # all 100 available again
    released = httpx.post(f"{stack.process('command').url}/holds/{hold_id}/release")
    assert released.status_code == 409
    assert _ends(url, hold_id) == 2


def test_a_deadline_survives_a_kill_of_the_process_that_runs_it(stack: Stack) -> None:
    account_id, hold_id = _hold(stack, 60, 2)
    url = stack.database_url
    filed = "SELECT count(*) FROM scheduled_commands WHERE stream_id = %s"
    wait_for(lambda: _count(url, filed, uuid.UUID(hold_id)) == 1, what="the deadline filed")
    saga = stack.process("saga")
    saga.kill()
    saga.start()
    wait_for(lambda: _ends(url, hold_id) == 2, timeout=30, what="the hold expired")
    wait_for(lambda: _count(url, filed, uuid.UUID(hold_id)) == 0, what="the deadline settled")
    assert _withdraw_all(stack, account_id).status_code == 200
    assert _ends(url, hold_id) == 2
