"""``make replay STREAM=.. AT=N`` and ``GET /accounts/{id}?as_of=N``: the read models of the past.

The live stack (relay, projector, query service) projects a history step by
step; after each step, once projected, the test keeps what the live tables
and ``GET /accounts/{id}`` said. Then it writes more, and asks time travel
for every kept position: the answers must be exactly what was said then, and
the live tables must be left as they were.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from projector.time_travel import StreamNotFound
from projector.time_travel.cli import as_of, run
from tests.support.ledger_writer import LedgerWriter
from tests.support.processes import Stack
from tests.support.reference_fold import (
    expected_read_models,
    live_read_models,
    store_head,
    wait_until_projected,
)
from tests.support.transfer_writer import TransferWriter

pytestmark = pytest.mark.processes

Row = dict[str, Any]


@dataclass
class Said:
    """What the live read models and the query service said at one position."""

    position: int
    balances: dict[UUID, list[Row]] = field(default_factory=dict)
    lines: dict[UUID, list[Row]] = field(default_factory=dict)
    transfers: dict[UUID, list[Row]] = field(default_factory=dict)
    http: dict[UUID, tuple[int, Any]] = field(default_factory=dict)


def capture(database_url: str, query_url: str, accounts: list[UUID], transfers: list[UUID]) -> Said:
    position = store_head(database_url)
    wait_until_projected(database_url, position)
    said = Said(position)
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        for account in accounts:
            said.balances[account] = conn.execute(
                "SELECT * FROM account_balances WHERE account_id = %s", (account,)
            ).fetchall()
            said.lines[account] = conn.execute(
                "SELECT * FROM account_transactions WHERE account_id = %s ORDER BY position",
                (account,),
            ).fetchall()
            response = httpx.get(f"{query_url}/accounts/{account}", timeout=10)
            said.http[account] = (response.status_code, response.json())
        for transfer in transfers:
            said.transfers[transfer] = conn.execute(
                "SELECT * FROM transfers WHERE transfer_id = %s", (transfer,)
            ).fetchall()
    return said


def travelled(database_url: str, stream: UUID, position: int) -> dict[str, list[Row]] | None:
    try:
        return asyncio.run(as_of(database_url, stream, position)).tables
    except StreamNotFound:
        return None


def test_time_travel_shows_exactly_what_the_live_read_models_said_then(
    stack: Stack, writer: LedgerWriter
) -> None:
    stack.start("relay", "projector", "query")
    database_url, query_url = stack.database_url, stack.process("query").url
    transfers = TransferWriter(writer)
    accounts: list[UUID] = []
    made: list[UUID] = []

    def open_both() -> None:
        accounts.extend([writer.open("alice", "EUR"), writer.open("bob", "EUR")])

    def transfer(amount: int, outcome: str) -> Callable[[], None]:
        return lambda: made.append(transfers.transfer(accounts[0], accounts[1], amount, outcome))  # type: ignore[arg-type]

    steps: list[Callable[[], object]] = [
        open_both,
        lambda: writer.deposit(accounts[0], 1000, "salary"),
        transfer(300, "debited"),
        lambda: transfers.complete(made[0]),
        transfer(100, "refunded"),
        lambda: (writer.withdraw(accounts[0], 100), writer.deposit(accounts[1], 5)),
    ]
    history = [capture(database_url, query_url, [], [])]
    for step in steps:
        step()
        history.append(capture(database_url, query_url, accounts, made))
    writer.write_random(40, seed=7)  # the live tables move on
    wait_until_projected(database_url)
    live_before = live_read_models(database_url)

    for said in history:
        for account in accounts:
            tables = travelled(database_url, account, said.position)
            response = httpx.get(
                f"{query_url}/accounts/{account}", params={"as_of": said.position}, timeout=10
            )
            if not said.balances.get(account):
                assert tables is None, said.position
                assert response.status_code == 404
                assert response.json()["code"] == "account-not-found"
                continue
            assert tables == {
                "account_balances": said.balances[account],
                "account_transactions": said.lines[account],
            }, said.position
            status, body = said.http[account]
            assert status == 200
            assert response.status_code == 200, response.text
            assert response.json() == {**body, "as_of": said.position}
        for transfer_id in made:
            tables = travelled(database_url, transfer_id, said.position)
            if not said.transfers.get(transfer_id):
                assert tables is None
            else:
                assert tables == {"transfers": said.transfers[transfer_id]}, said.position

    # Nothing the time travel did reached the live tables.
    assert live_read_models(database_url) == live_before == expected_read_models(database_url)


def test_as_of_is_validated_and_unknown_accounts_are_404(
    stack: Stack, writer: LedgerWriter
) -> None:
    account = writer.open("carol", "EUR")
    stack.start("query")
    url = f"{stack.process('query').url}/accounts"
    for bad in ("-1", str(2**63), "x", "1.5", ""):
        response = httpx.get(f"{url}/{account}", params={"as_of": bad}, timeout=10)
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["code"] == "validation-failed"
    for missing, position in ((uuid4(), 2**63 - 1), (account, 0)):
        response = httpx.get(f"{url}/{missing}", params={"as_of": position}, timeout=10)
        assert response.status_code == 404, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "account-not-found"
    transfer = TransferWriter(writer).request(account, uuid4(), 1)
    response = httpx.get(f"{url}/{transfer}", params={"as_of": 2**63 - 1}, timeout=10)
    assert response.status_code == 404


def test_the_command_line_prints_rows_and_refuses_bad_ids(
    database_url: str, writer: LedgerWriter
) -> None:
    account = writer.open("dora", "EUR")
    position = writer.deposit(account, 40, "gift")

    out, err = io.StringIO(), io.StringIO()
    code = run([str(account), "--at", str(position), "--database-url", database_url], out, err)
    assert code == 0, err.getvalue()
    lines = out.getvalue().splitlines()
    assert lines[0] == (
        f"account {account} as of position {position}: 2 of its events folded,"
        f" the last at position {position}"
    )
    assert lines[1] == "account_balances (1 row):"
    assert " balance=40 status=open version=2 " in lines[2]
    assert lines[3] == "account_transactions (1 row):"
    assert " kind=deposit amount=40 currency=EUR balance_after=40 reference=gift " in lines[4]

    out = io.StringIO()
    assert run([str(account), "--at", "1", "--format", "json", "--database-url", database_url],
               out, err) == 0  # fmt: skip
    record = json.loads(out.getvalue())
    assert record["tables"]["account_balances"][0]["balance"] == 0
    assert record["tables"]["account_transactions"] == []

    for stream, expected in (
        ("nope", "time travel: STREAM must be an account or transfer id (a UUID), not 'nope'"),
        (str(account), f"time travel: stream {account} has no event at or below position 0"
                       " (its first is at position 1)"),
    ):  # fmt: skip
        err = io.StringIO()
        assert run([stream, "--at", "0", "--database-url", database_url], io.StringIO(), err) == 2
        assert err.getvalue() == expected + "\n"
