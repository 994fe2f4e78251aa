"""The command API over real HTTP, against the real process and PostgreSQL.

Every answer is either the documented success or a problem document with a
stable code: never a 500, never an HTML error page.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import psycopg
import pytest

from shared_kernel.language.events import decode_event
from shared_kernel.language.money import MAX_AMOUNT
from tests.support.processes import ServiceProcess

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def client(command_service: ServiceProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=command_service.url, timeout=10) as client:
        yield client


def open_account(client: httpx.Client, currency: str = "EUR") -> str:
    response = client.post("/accounts", json={"owner": "alice", "currency": currency})
    assert response.status_code == 201, response.text
    return str(response.json()["account_id"])


@pytest.fixture(scope="module")
def funded(client: httpx.Client) -> str:
    """An EUR account holding 100 that no test below moves (bad inputs change nothing)."""
    account_id = open_account(client)
    assert client.post(f"/accounts/{account_id}/deposits", json={"amount": 100}).status_code == 200
    return account_id


@pytest.fixture(scope="module")
def closed(client: httpx.Client) -> str:
    account_id = open_account(client)
    assert client.post(f"/accounts/{account_id}/close").status_code == 200
    return account_id


def stored_events(database_url: str, account_id: str) -> list[Any]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT topic, state FROM ledger_events WHERE originator_id = %s"
            " ORDER BY originator_version",
            (uuid.UUID(account_id),),
        ).fetchall()
    return [decode_event(topic, bytes(state)) for topic, state in rows]


def test_open_deposit_withdraw_close(client: httpx.Client, command_database: str) -> None:
    opened = client.post(
        "/accounts", json={"owner": "bob", "currency": "JPY"}, headers={"X-Correlation-ID": "c-1"}
    )
    assert opened.status_code == 201, opened.text
    body = opened.json()
    account_id = body["account_id"]
    assert body["version"] == 1 and body["position"] > 0
    assert opened.headers["Location"] == f"http://127.0.0.1:8002/accounts/{account_id}"
    assert opened.headers["ETag"] == '"1"'
    assert opened.headers["X-Correlation-ID"] == "c-1"

    deposited = client.post(
        f"/accounts/{account_id}/deposits",
        json={"amount": 500, "currency": "JPY", "reference": "gift"},
        headers={"If-Match": '"1"'},
    )
    assert deposited.status_code == 200, deposited.text
    withdrawn = client.post(
        f"/accounts/{account_id}/withdrawals",
        json={"amount": 500},
        headers={"If-Match": '"7", "2"'},  # a list matches when one tag does
    )
    assert withdrawn.status_code == 200, withdrawn.text
    closing = client.post(f"/accounts/{account_id}/close", headers={"If-Match": "*"})
    assert closing.status_code == 200, closing.text

    answers = [opened.json(), deposited.json(), withdrawn.json(), closing.json()]
    assert [a["version"] for a in answers] == [1, 2, 3, 4]
    positions = [a["position"] for a in answers]
    assert positions == sorted(positions) and len(set(positions)) == 4
    assert [a.get("balance") for a in answers] == [None, 500, 0, 0]
    assert closing.headers["ETag"] == '"4"'
    generated = closing.headers["X-Correlation-ID"]
    assert generated and generated != "c-1"

    events = stored_events(command_database, account_id)
    assert [type(e).__name__ for e in events] == [
        "AccountOpened",
        "MoneyDeposited",
        "MoneyWithdrawn",
        "AccountClosed",
    ]
    assert events[0].metadata.correlation_id == "c-1"
    assert events[3].metadata.correlation_id == generated
    causes = {e.metadata.causation_id for e in events}
    assert len(causes) == 4 and all(uuid.UUID(cause) for cause in causes)
    assert (events[1].amount, events[1].currency, events[1].reference) == (500, "JPY", "gift")


def test_opening_with_a_chosen_id(client: httpx.Client) -> None:
    account_id = str(uuid.uuid4())
    first = client.post(
        "/accounts", json={"owner": "carol", "currency": "USD", "account_id": account_id}
    )
    assert first.status_code == 201 and first.json()["account_id"] == account_id
    again = client.post(
        "/accounts", json={"owner": "carol", "currency": "USD", "account_id": account_id}
    )
    assert again.status_code == 409
    assert again.headers["Content-Type"] == PROBLEM
    assert again.json()["code"] == "account-exists"


MONEY_BODIES: list[tuple[str, object, int, str]] = [
    ("amount as string", {"amount": "10"}, 422, "validation-failed"),
    ("amount as float", {"amount": 10.5}, 422, "validation-failed"),
    ("amount as whole float", {"amount": 10.0}, 422, "validation-failed"),
    ("amount as bool", {"amount": True}, 422, "validation-failed"),
    ("zero amount", {"amount": 0}, 422, "validation-failed"),
    ("negative amount", {"amount": -1}, 422, "validation-failed"),
    ("huge amount", {"amount": MAX_AMOUNT + 1}, 422, "validation-failed"),
    ("amount beyond int64", {"amount": 2**70}, 422, "validation-failed"),
    ("missing amount", {}, 422, "validation-failed"),
    ("null amount", {"amount": None}, 422, "validation-failed"),
    ("unknown field", {"amount": 10, "memo": "x"}, 422, "validation-failed"),
    ("lowercase currency", {"amount": 10, "currency": "eur"}, 422, "validation-failed"),
    ("not ISO 4217", {"amount": 10, "currency": "XYZ"}, 422, "validation-failed"),
    ("four letters", {"amount": 10, "currency": "EURO"}, 422, "validation-failed"),
    ("long reference", {"amount": 10, "reference": "r" * 201}, 422, "validation-failed"),
    ("array body", [10], 422, "validation-failed"),
    ("wrong currency", {"amount": 10, "currency": "USD"}, 422, "currency-mismatch"),
]


@pytest.mark.parametrize("operation", ["deposits", "withdrawals"])
@pytest.mark.parametrize(
    ("case", "body", "status", "code"), MONEY_BODIES, ids=[c[0] for c in MONEY_BODIES]
)
def test_bad_money_bodies_are_refused(
    client: httpx.Client,
    funded: str,
    *,
    operation: str,
    case: str,
    body: object,
    status: int,
    code: str,
) -> None:
    response = client.post(f"/accounts/{funded}/{operation}", json=body)
    assert_problem(response, status, code)


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == PROBLEM
    problem: dict[str, Any] = response.json()
    assert problem["code"] == code
    assert problem["type"] == f"urn:ledger:problem:{code}"
    assert problem["status"] == status
    assert problem["title"]
    assert response.headers["X-Correlation-ID"]
    return problem


RAW_REQUESTS: list[tuple[str, str, bytes, dict[str, str], int, str]] = [
    # case, path ({funded}/{closed}/{unknown} filled in), body, headers, status, code
    ("bad JSON", "/accounts/{funded}/deposits", b'{"amount": ', {}, 400, "malformed-json"),
    ("not JSON at all", "/accounts/{funded}/deposits", b"amount=10", {}, 400, "malformed-json"),
    ("empty body", "/accounts/{funded}/deposits", b"", {}, 400, "malformed-json"),
    ("non-UUID id", "/accounts/12345/deposits", b'{"amount": 1}', {}, 404, "not-found"),
    ("unknown account", "/accounts/{unknown}/deposits", b'{"amount": 1}', {}, 404,
     "account-not-found"),
    ("unknown account close", "/accounts/{unknown}/close", b"", {}, 404, "account-not-found"),
    ("If-Match garbage", "/accounts/{funded}/deposits", b'{"amount": 1}',
     {"If-Match": "banana"}, 422, "validation-failed"),
    ("If-Match not an entity tag", "/accounts/{funded}/deposits", b'{"amount": 1}',
     {"If-Match": "2"}, 422, "validation-failed"),
    ("bad correlation id", "/accounts/{funded}/deposits", b'{"amount": 1}',
     {"X-Correlation-ID": "has spaces; and <tags>"}, 422, "validation-failed"),
    ("long correlation id", "/accounts/{funded}/deposits", b'{"amount": 1}',
     {"X-Correlation-ID": "x" * 101}, 422, "validation-failed"),
    ("insufficient funds", "/accounts/{funded}/withdrawals", b'{"amount": 101}', {}, 422,
     "insufficient-funds"),
    ("close non-empty", "/accounts/{funded}/close", b"", {}, 409, "account-not-empty"),
    ("withdraw from closed", "/accounts/{closed}/withdrawals", b'{"amount": 1}', {}, 409,
     "account-closed"),
    ("deposit to closed", "/accounts/{closed}/deposits", b'{"amount": 1}', {}, 409,
     "account-closed"),
    ("close closed", "/accounts/{closed}/close", b"", {}, 409, "account-closed"),
    ("body too large", "/accounts/{funded}/deposits",
     b'{"amount": 1, "reference": "' + b"x" * 20_000 + b'"}', {}, 413, "body-too-large"),
    ("open: empty owner", "/accounts", b'{"owner": "", "currency": "EUR"}', {}, 422,
     "validation-failed"),
    ("open: blank owner", "/accounts", b'{"owner": "   ", "currency": "EUR"}', {}, 422,
     "invalid-owner"),
    ("open: long owner", "/accounts", b'{"owner": "' + b"o" * 201 + b'", "currency": "EUR"}',
     {}, 422, "validation-failed"),
    ("open: no currency", "/accounts", b'{"owner": "dan"}', {}, 422, "validation-failed"),
    ("open: bad currency", "/accounts", b'{"owner": "dan", "currency": "QQQ"}', {}, 422,
     "validation-failed"),
    ("open: bad id", "/accounts", b'{"owner": "dan", "currency": "EUR", "account_id": "x"}',
     {}, 422, "validation-failed"),
    ("open: unknown field", "/accounts", b'{"owner": "dan", "currency": "EUR", "bonus": 5}',
     {}, 422, "validation-failed"),
    ("open: JSON null", "/accounts", b"null", {}, 422, "validation-failed"),
]


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "code"),
    [r[1:] for r in RAW_REQUESTS],
    ids=[r[0] for r in RAW_REQUESTS],
)
def test_bad_requests_get_problem_documents(
    client: httpx.Client,
    funded: str,
    closed: str,
    *,
    path: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    url = path.format(funded=funded, closed=closed, unknown=uuid.uuid4())
    response = client.post(
        url, content=body, headers={"Content-Type": "application/json", **headers}
    )
    assert_problem(response, status, code)


def test_nothing_above_moved_the_funded_account(
    client: httpx.Client, funded: str, command_database: str
) -> None:
    events = stored_events(command_database, funded)
    assert [type(e).__name__ for e in events] == ["AccountOpened", "MoneyDeposited"]


@pytest.mark.parametrize("if_match", ['"1"', 'W/"2"', '"1", "3"', '"x"'])
def test_if_match_mismatch_is_a_failed_precondition_with_the_current_version(
    client: httpx.Client, funded: str, if_match: str
) -> None:
    response = client.post(
        f"/accounts/{funded}/withdrawals", json={"amount": 1}, headers={"If-Match": if_match}
    )
    problem = assert_problem(response, 412, "precondition-failed")
    assert problem["current_version"] == 2
    assert problem["instance"] == f"/accounts/{funded}/withdrawals"


def test_openapi_and_operations_endpoints(client: httpx.Client) -> None:
    schema = client.get("/schema/openapi.json")
    assert schema.status_code == 200
    document = msgspec.json.decode(schema.content)
    assert document["openapi"].startswith("3.")
    assert {"/accounts", "/accounts/{account_id}/deposits", "/accounts/{account_id}/close"} <= set(
        document["paths"]
    )
    assert client.get("/health/live").status_code == 200
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"postgres": "ok", "redis": "ok", "writer": "ok"}
    exposition = client.get("/metrics").text
    for name in (
        "ledger_commands_total",
        "ledger_command_duration_seconds_bucket",
        "ledger_append_batch_commands_bucket",
        "ledger_append_conflicts_total",
        "ledger_append_retries_total",
        "ledger_appended_events_total",
    ):
        assert name in exposition
    assert 'ledger_commands_total{command="deposit_money",outcome="ok"}' in exposition
    method = client.get(f"/accounts/{uuid.uuid4()}/deposits")
    assert method.status_code == 405 and method.headers["Content-Type"] == PROBLEM
