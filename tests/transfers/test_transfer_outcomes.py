"""Transfers over real HTTP, finished by the real saga process; outcomes read from the store.

Each outcome the design names: completed; refunded because the target is
missing or closed after the request; failed for lack of funds or a closed
source. And everything refused up front, before anything is recorded.
"""

from __future__ import annotations

import os
from uuid import UUID, uuid4

import httpx
import pytest

from command_service.domain.account import apply
from command_service.domain.legs import transfer_out
from command_service.domain.transfer import request_transfer
from command_service.event_store import LedgerEventStore, event_store_env
from shared_kernel.language.events import (
    EventMetadata,
    MoneyRefunded,
    MoneyTransferredIn,
    MoneyTransferredOut,
    TransferCompleted,
    TransferDebited,
    TransferFailed,
    TransferRefunded,
    TransferRequested,
    TransferSettled,
)
from shared_kernel.language.money import MAX_AMOUNT
from tests.support.processes import Stack
from tests.transfers.commands import open_account, transfer
from tests.transfers.ledger_view import read_ledger, stream, wait_until_finished

PROBLEM = "application/problem+json"


def requested(response: httpx.Response) -> UUID:
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["position"] > 0
    # An absolute URL of the transfer on the query service (QUERY_SERVICE_PUBLIC_URL).
    query_service = os.environ.get("QUERY_SERVICE_PUBLIC_URL", "http://127.0.0.1:8002")
    assert response.headers["Location"] == f"{query_service}/transfers/{body['transfer_id']}"
    return UUID(body["transfer_id"])


def types(stream_id: UUID | str, database_url: str) -> list[type]:
    return [type(event) for event in stream(database_url, stream_id)]


def test_a_transfer_completes(client: httpx.Client, ledger_database: str) -> None:
    source, target = open_account(client, deposit=100), open_account(client)
    transfer_id = requested(transfer(client, source, target, 30))

    view = wait_until_finished(ledger_database, [transfer_id])

    assert view.status[transfer_id] == "completed"
    assert (view.balances[UUID(source)], view.balances[UUID(target)]) == (70, 30)
    assert types(transfer_id, ledger_database) == [
        TransferRequested,
        TransferDebited,
        TransferCompleted,
    ]
    source_events = stream(ledger_database, source)
    assert [type(e) for e in source_events][-2:] == [MoneyTransferredOut, TransferSettled]
    incoming = stream(ledger_database, target)[-1]
    assert isinstance(incoming, MoneyTransferredIn)
    assert (incoming.transfer_id, incoming.from_account, incoming.amount) == (
        transfer_id,
        UUID(source),
        30,
    )
    # The whole transfer belongs to the request's correlation id.
    request = stream(ledger_database, transfer_id)[0]
    assert {e.metadata.correlation_id for e in stream(ledger_database, transfer_id)} == {
        request.metadata.correlation_id
    }
    # Settled: the source has nothing pending and may close once empty.
    assert transfer(client, source, target, 70).status_code == 202
    wait_until_finished(ledger_database)
    assert client.post(f"/accounts/{source}/close").status_code == 200


def test_a_missing_target_gets_the_money_refunded(
    client: httpx.Client, ledger_database: str
) -> None:
    source = open_account(client, deposit=50)
    transfer_id = requested(transfer(client, source, str(uuid4()), 20))

    view = wait_until_finished(ledger_database, [transfer_id])

    assert (view.status[transfer_id], view.reasons[transfer_id]) == ("refunded", "target-missing")
    assert view.balances[UUID(source)] == 50
    assert [type(e) for e in stream(ledger_database, source)][-2:] == [
        MoneyTransferredOut,
        MoneyRefunded,
    ]
    assert types(transfer_id, ledger_database)[-1] is TransferRefunded


def test_a_target_closed_after_the_request_gets_the_money_refunded(
    client: httpx.Client, ledger_database: str, ledger_stack: Stack
) -> None:
    source, target = open_account(client, deposit=50), open_account(client)
    saga = ledger_stack.process("saga")
    saga.stop()  # so the target closes between the request and the credit
    try:
        transfer_id = requested(transfer(client, source, target, 20))
        assert client.post(f"/accounts/{target}/close").status_code == 200
    finally:
        saga.start()

    view = wait_until_finished(ledger_database, [transfer_id])

    assert (view.status[transfer_id], view.reasons[transfer_id]) == ("refunded", "target-closed")
    assert (view.balances[UUID(source)], view.balances.get(UUID(target), 0)) == (50, 0)


@pytest.mark.parametrize("close_source", [False, True])
def test_a_transfer_the_source_cannot_pay_fails_and_moves_nothing(
    client: httpx.Client, ledger_database: str, close_source: bool
) -> None:
    source, target = open_account(client, deposit=10), open_account(client)
    if close_source:
        emptied = client.post(f"/accounts/{source}/withdrawals", json={"amount": 10})
        assert emptied.status_code == 200
        assert client.post(f"/accounts/{source}/close").status_code == 200
    before = len(stream(ledger_database, source))
    transfer_id = requested(transfer(client, source, target, 11))

    view = wait_until_finished(ledger_database, [transfer_id])

    reason = "source-closed" if close_source else "insufficient-funds"
    assert (view.status[transfer_id], view.reasons[transfer_id]) == ("failed", reason)
    assert types(transfer_id, ledger_database) == [TransferRequested, TransferFailed]
    assert len(stream(ledger_database, source)) == before
    assert stream(ledger_database, target)[-1].originator_version == 1
    assert transfer_id not in view.legs


def test_an_account_with_a_transfer_in_flight_does_not_close(
    client: httpx.Client, ledger_database: str, ledger_stack: Stack
) -> None:
    """Debited but not yet credited (written here while the saga is stopped): close is 409."""
    source, target = open_account(client, deposit=25), open_account(client)
    saga = ledger_stack.process("saga")
    saga.stop()
    store = LedgerEventStore(env=event_store_env(ledger_database, pool_size=1))
    try:
        account = store.get_account(UUID(source))
        meta = EventMetadata(correlation_id="test", causation_id="test")
        request = request_transfer(
            uuid4(), account, to_account=UUID(target), target=None, amount=25, metadata=meta
        )
        debit = transfer_out(account, request.originator_id, UUID(target), 25, meta)
        debited = TransferDebited(
            originator_id=request.originator_id, originator_version=2, metadata=meta
        )
        store.save(request)
        store.save(debit, debited)
        assert apply(account, debit).balance == 0

        refused = client.post(f"/accounts/{source}/close")
        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "transfers-pending"
        assert refused.json()["pending_transfers"] == [str(request.originator_id)]
    finally:
        store.close()
        saga.start()  # its start-up sweep finishes the transfer
    view = wait_until_finished(ledger_database)
    assert view.balances[UUID(target)] == 25
    assert client.post(f"/accounts/{source}/close").status_code == 200


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"amount": 1, "to_account": "same"}, "same-account"),
        ({"amount": 0}, "validation-failed"),
        ({"amount": -5}, "validation-failed"),
        ({"amount": MAX_AMOUNT + 1}, "validation-failed"),
        ({"amount": "10"}, "validation-failed"),
        ({"amount": 10.0}, "validation-failed"),
        ({"amount": True}, "validation-failed"),
        ({"amount": 1, "memo": "x"}, "validation-failed"),
        ({"amount": 1, "to_account": "not-a-uuid"}, "validation-failed"),
        ({"amount": 1, "to_account": None}, "validation-failed"),
        ({"amount": 1, "to_account": "usd"}, "currency-mismatch"),
    ],
)
def test_refused_up_front_with_a_problem_and_nothing_recorded(
    client: httpx.Client, ledger_database: str, body: dict[str, object], code: str
) -> None:
    source, target, usd = open_account(client, deposit=10), open_account(client), open_account(
        client, "USD"
    )
    chosen = {"same": source, "usd": usd}
    to_account = body.get("to_account", target)
    request = {
        "from_account": source,
        **body,
        "to_account": chosen.get(str(to_account), to_account),
    }
    before = read_ledger(ledger_database).events

    response = client.post("/transfers", json=request)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["code"] == code
    assert read_ledger(ledger_database).events == before


def test_unknown_source_is_404_and_bad_json_is_400(
    client: httpx.Client, ledger_database: str
) -> None:
    target = open_account(client)
    before = read_ledger(ledger_database).events
    missing = transfer(client, str(uuid4()), target, 5)
    assert missing.status_code == 404 and missing.json()["code"] == "account-not-found"
    garbage = client.post(
        "/transfers", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert garbage.status_code == 400 and garbage.json()["code"] == "malformed-json"
    assert client.post("/transfers", json={"amount": 5}).status_code == 422
    assert read_ledger(ledger_database).events == before
