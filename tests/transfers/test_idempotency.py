"""``Idempotency-Key`` on every POST, over real HTTP, checked against the event store.

One key, one effect: under 20 concurrent duplicates, after a restart of the
command service, and after an attempt that died between recording its event
and storing its answer. The same key with another request is a 422.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from command_service.idempotency.middleware import fingerprint
from shared_kernel.language.events import MoneyDeposited
from tests.support.processes import Stack
from tests.transfers.commands import open_account
from tests.transfers.ledger_view import read_ledger, stream, wait_until_finished


def key() -> str:
    return f"key-{uuid.uuid4()}"


def answer(response: httpx.Response) -> tuple[int, bytes, str | None, str | None]:
    """What must be identical across retries: status, body and the headers that name things."""
    return (
        response.status_code,
        response.content,
        response.headers.get("location"),
        response.headers.get("etag"),
    )


async def post_concurrently(
    url: str, path: str, body: dict[str, Any], idempotency_key: str, count: int
) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        start = asyncio.Event()

        async def one() -> httpx.Response:
            await start.wait()
            return await client.post(path, json=body, headers={"Idempotency-Key": idempotency_key})

        tasks = [asyncio.create_task(one()) for _ in range(count)]
        await asyncio.sleep(0)
        start.set()
        return list(await asyncio.gather(*tasks))


async def test_twenty_concurrent_transfer_requests_with_one_key_have_one_effect(
    client: httpx.Client, ledger_stack: Stack, ledger_database: str
) -> None:
    source, target = open_account(client, deposit=100), open_account(client)
    body = {"from_account": source, "to_account": target, "amount": 40}
    same_key = key()

    responses = await post_concurrently(
        ledger_stack.process("command").url, "/transfers", body, same_key, 20
    )

    assert {answer(r) for r in responses} == {answer(responses[0])}
    assert responses[0].status_code == 202
    replayed = Counter(r.headers.get("idempotent-replayed") for r in responses)
    assert replayed == {None: 1, "true": 19}
    transfer_id = UUID(responses[0].json()["transfer_id"])
    view = wait_until_finished(ledger_database, [transfer_id])
    requests_from_source = [r for r in view.requests.values() if r.from_account == UUID(source)]
    assert len(requests_from_source) == 1
    assert view.balances[UUID(source)] == 60 and view.balances[UUID(target)] == 40


async def test_twenty_concurrent_deposits_with_one_key_deposit_once(
    client: httpx.Client, ledger_stack: Stack, ledger_database: str
) -> None:
    account = open_account(client)
    responses = await post_concurrently(
        ledger_stack.process("command").url,
        f"/accounts/{account}/deposits",
        {"amount": 7, "reference": "once"},
        key(),
        20,
    )
    assert {answer(r) for r in responses} == {answer(responses[0])}
    assert responses[0].status_code == 200 and responses[0].json()["balance"] == 7
    deposits = [e for e in stream(ledger_database, account) if isinstance(e, MoneyDeposited)]
    assert len(deposits) == 1


def test_every_post_replays_its_first_answer_after_a_restart(
    client: httpx.Client, ledger_stack: Stack, ledger_database: str
) -> None:
    keys = {name: key() for name in ("open", "deposit", "withdraw", "refused", "close", "transfer")}

    def post(name: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return client.post(path, json=body, headers={"Idempotency-Key": keys[name]})

    first: dict[str, httpx.Response] = {}
    first["open"] = post("open", "/accounts", {"owner": "idem", "currency": "EUR"})
    account = first["open"].json()["account_id"]
    other = open_account(client)
    first["deposit"] = post("deposit", f"/accounts/{account}/deposits", {"amount": 50})
    first["withdraw"] = post("withdraw", f"/accounts/{account}/withdrawals", {"amount": 20})
    first["refused"] = post("refused", f"/accounts/{account}/withdrawals", {"amount": 1_000})
    first["transfer"] = post(
        "transfer", "/transfers", {"from_account": account, "to_account": other, "amount": 30}
    )
    wait_until_finished(ledger_database)
    first["close"] = post("close", f"/accounts/{account}/close")
    assert [r.status_code for r in first.values()] == [201, 200, 200, 422, 202, 200]
    assert first["refused"].json()["code"] == "insufficient-funds"
    events_before = read_ledger(ledger_database).events

    ledger_stack.restart("command")
    # Money arrives: a fresh withdrawal of 1,000 would now be accepted, the retried one not.
    assert client.post(f"/accounts/{other}/deposits", json={"amount": 5_000}).status_code == 200

    again = {
        "open": post("open", "/accounts", {"owner": "idem", "currency": "EUR"}),
        "deposit": post("deposit", f"/accounts/{account}/deposits", {"amount": 50}),
        "withdraw": post("withdraw", f"/accounts/{account}/withdrawals", {"amount": 20}),
        "refused": post("refused", f"/accounts/{account}/withdrawals", {"amount": 1_000}),
        "transfer": post(
            "transfer", "/transfers", {"from_account": account, "to_account": other, "amount": 30}
        ),
        "close": post("close", f"/accounts/{account}/close"),
    }
    for name, response in again.items():
        assert answer(response) == answer(first[name]), name
        assert response.headers["idempotent-replayed"] == "true", name
    assert read_ledger(ledger_database).events == events_before + 1  # the one new deposit


def test_the_same_key_with_another_request_is_refused(client: httpx.Client) -> None:
    account = open_account(client)
    same_key = {"Idempotency-Key": key()}
    path = f"/accounts/{account}/deposits"
    assert client.post(path, json={"amount": 5}, headers=same_key).status_code == 200
    # Key order and spacing do not make another request...
    spaced = client.post(
        path,
        content=b'{ "amount" : 5 }',
        headers={**same_key, "content-type": "application/json"},
    )
    assert spaced.status_code == 200 and spaced.headers["idempotent-replayed"] == "true"
    # ...another body, path or method does.
    for response in (
        client.post(path, json={"amount": 6}, headers=same_key),
        client.post(f"/accounts/{account}/withdrawals", json={"amount": 5}, headers=same_key),
        client.post("/accounts", json={"owner": "x", "currency": "EUR"}, headers=same_key),
    ):
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "idempotency-key-reused"


@pytest.mark.parametrize("bad", ["", "two words", "tab\tinside", "x" * 256, "caf\u00e9"])
def test_a_key_that_is_not_1_to_255_visible_ascii_is_refused(
    client: httpx.Client, ledger_database: str, bad: str
) -> None:
    account = open_account(client)
    before = read_ledger(ledger_database).events
    response = client.post(
        f"/accounts/{account}/deposits",
        json={"amount": 5},
        headers=[(b"Idempotency-Key", bad.encode("latin-1"))],
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation-failed"
    assert read_ledger(ledger_database).events == before


def abandon_answered_attempt(database_url: str, idempotency_key: str) -> None:
    """Make the key look like an attempt that recorded its event, then died before answering."""
    with psycopg.connect(database_url) as conn:
        changed = conn.execute(
            "UPDATE idempotency_keys SET response_status = NULL, response_headers = NULL,"
            " response_body = NULL, owner = gen_random_uuid(),"
            " locked_until = now() - interval '1 second' WHERE idempotency_key = %s",
            (idempotency_key,),
        ).rowcount
    assert changed == 1


@pytest.mark.parametrize("kind", ["deposit", "open", "transfer"])
def test_a_retry_after_an_attempt_died_mid_way_finds_its_effect(
    client: httpx.Client, ledger_database: str, kind: str
) -> None:
    account, other = open_account(client, deposit=100), open_account(client)
    path, body = {
        "deposit": (f"/accounts/{account}/deposits", {"amount": 9}),
        "open": ("/accounts", {"owner": "phoenix", "currency": "EUR"}),
        "transfer": ("/transfers", {"from_account": account, "to_account": other, "amount": 9}),
    }[kind]
    headers = {"Idempotency-Key": key()}
    first = client.post(path, json=body, headers=headers)
    assert first.status_code < 300, first.text
    wait_until_finished(ledger_database)
    abandon_answered_attempt(ledger_database, headers["Idempotency-Key"])
    before = read_ledger(ledger_database)

    retried = client.post(path, json=body, headers=headers)

    assert answer(retried) == answer(first)
    assert "idempotent-replayed" not in retried.headers  # recovered from the store, not replayed
    after = wait_until_finished(ledger_database)
    assert after.events == before.events
    assert after.balances == before.balances
    assert client.post(path, json=body, headers=headers).headers["idempotent-replayed"] == "true"


def test_a_retry_after_an_attempt_died_before_recording_executes_once(
    client: httpx.Client, ledger_database: str
) -> None:
    account = open_account(client)
    path, body = f"/accounts/{account}/deposits", b'{"amount":3}'
    scope: Any = {"method": "POST", "path": path, "raw_path": path.encode(), "query_string": b""}
    idempotency_key = key()
    with psycopg.connect(ledger_database) as conn:  # a claim whose owner died at once
        conn.execute(
            "INSERT INTO idempotency_keys (idempotency_key, fingerprint, command_id, owner,"
            " locked_until, expires_at) VALUES (%s, %s, gen_random_uuid(), gen_random_uuid(),"
            " now() - interval '1 second', now() + interval '1 hour')",
            (idempotency_key, fingerprint(scope, body)),
        )

    retried = client.post(
        path,
        content=body,
        headers={"Idempotency-Key": idempotency_key, "content-type": "application/json"},
    )

    assert retried.status_code == 200 and retried.json()["balance"] == 3
    deposits = [e for e in stream(ledger_database, account) if isinstance(e, MoneyDeposited)]
    assert len(deposits) == 1
