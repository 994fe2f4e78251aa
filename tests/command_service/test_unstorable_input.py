"""Text PostgreSQL cannot store, and JSON nested too deeply, never reach the event store.

A NUL or a lone surrogate anywhere a client can put a string (each body field
of each route, the query, the path) is a 422 ``validation-failed`` naming the
field, with or without an Idempotency-Key, and no event is recorded. Deeply
nested JSON is a 4xx with or without a key (it was a 500 in the key's
fingerprint); a body over the limit stays 413. Raw NUL bytes in a header never
reach the application: the HTTP server refuses the request (400).
"""

from __future__ import annotations

import http.client
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.processes

PROBLEM = "application/problem+json"
NUL = "\\u0000"  # as written inside JSON text
SURROGATE = "\\ud800"


@pytest.fixture(scope="module")
def client(command_service: ServiceProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=command_service.url, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def accounts(client: httpx.Client) -> dict[str, str]:
    ids = {}
    for name in ("source", "target"):
        opened = client.post("/accounts", json={"owner": name, "currency": "EUR"})
        assert opened.status_code == 201, opened.text
        ids[name] = opened.json()["account_id"]
    funded = client.post(f"/accounts/{ids['source']}/deposits", json={"amount": 100})
    assert funded.status_code == 200, funded.text
    return ids


def event_count(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM ledger_events").fetchone()
    assert row is not None
    return int(row[0])


def raw_post(
    client: httpx.Client, path: str, body: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    """POST ``body`` as it is written: JSON escapes like \\u0000 reach the server unchanged."""
    return client.post(
        path,
        content=body.encode(),
        headers={"content-type": "application/json", **(headers or {})},
    )


def assert_names_field(response: httpx.Response, source: str, key: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem: dict[str, Any] = response.json()
    assert problem["code"] == "validation-failed"
    assert {"source": source, "key": key} in [
        {"source": e.get("source"), "key": e.get("key")} for e in problem["errors"]
    ], problem


# (route, JSON body with {bad} where the unstorable escape goes, the field it names)
BODIES = [
    ("open", '{{"owner": "a{bad}b", "currency": "EUR"}}', "owner"),
    ("open", '{{"owner": "ann", "currency": "E{bad}R"}}', "currency"),
    ("open", '{{"owner": "ann", "currency": "EUR", "account_id": "{bad}"}}', "account_id"),
    ("open", '{{"owner": "ann", "currency": "EUR", "no{bad}te": 1}}', "no\\u{hex}te"),
    ("deposits", '{{"amount": 10, "reference": "pay{bad}"}}', "reference"),
    ("deposits", '{{"amount": 10, "currency": "{bad}"}}', "currency"),
    ("withdrawals", '{{"amount": 10, "reference": "{bad}"}}', "reference"),
    ("transfers", '{{"from_account": "{source}", "to_account": "{bad}", "amount": 1}}',
     "to_account"),
    ("transfers", '{{"from_account": "{bad}", "to_account": "{target}", "amount": 1}}',
     "from_account"),
]  # fmt: skip


def path_of(route: str, accounts: dict[str, str]) -> str:
    return {
        "open": "/accounts",
        "deposits": f"/accounts/{accounts['source']}/deposits",
        "withdrawals": f"/accounts/{accounts['source']}/withdrawals",
        "transfers": "/transfers",
    }[route]


@pytest.mark.parametrize("with_key", [False, True], ids=["no-key", "idempotency-key"])
@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
@pytest.mark.parametrize(("route", "template", "field"), BODIES)
def test_unstorable_text_in_a_body_is_refused_naming_the_field(
    client: httpx.Client,
    command_database: str,
    accounts: dict[str, str],
    *,
    route: str,
    template: str,
    field: str,
    bad: str,
    with_key: bool,
) -> None:
    body = template.format(bad=bad, **accounts)
    headers = {"Idempotency-Key": f"unstorable-{uuid.uuid4()}"} if with_key else {}
    before = event_count(command_database)

    response = raw_post(client, path_of(route, accounts), body, headers)

    assert_names_field(response, "body", field.format(hex=bad[2:]))  # a key is shown escaped
    assert event_count(command_database) == before, "nothing may be recorded"


@pytest.mark.parametrize("query", ["note=%00", "a%00b=1"])
def test_a_nul_in_the_query_string_is_refused(
    client: httpx.Client, command_database: str, query: str
) -> None:
    before = event_count(command_database)

    response = raw_post(client, f"/accounts?{query}", '{"owner": "ann", "currency": "EUR"}')

    assert_names_field(response, "query", "note" if query.startswith("note") else "a\\u0000b")
    assert event_count(command_database) == before


def test_a_nul_in_an_account_id_path_is_not_found(
    client: httpx.Client, command_database: str
) -> None:
    before = event_count(command_database)

    response = raw_post(client, "/accounts/%00/deposits", '{"amount": 1}')

    assert response.status_code == 404 and response.headers["content-type"].startswith(PROBLEM)
    assert event_count(command_database) == before


@pytest.mark.parametrize("header", ["X-Correlation-ID", "If-Match", "Idempotency-Key"])
def test_a_raw_nul_in_a_header_never_reaches_the_store(
    command_service: ServiceProcess, command_database: str, header: str
) -> None:
    before = event_count(command_database)
    # http.client sends what it is given; httpx would refuse to.
    conn = http.client.HTTPConnection("127.0.0.1", command_service.port, timeout=10)
    try:
        conn.request(
            "POST",
            "/accounts",
            body=b'{"owner": "ann", "currency": "EUR"}',
            headers={"content-type": "application/json", header: "1\x00"},
        )
        status = conn.getresponse().status
    finally:
        conn.close()

    assert 400 <= status < 500
    assert event_count(command_database) == before


DEPTH = 7_000  # ~14 KB of brackets: under MAX_BODY_BYTES (16 KiB), far beyond any recursion limit


@pytest.mark.parametrize("with_key", [False, True], ids=["no-key", "idempotency-key"])
@pytest.mark.parametrize(
    "body",
    [
        "[" * DEPTH,
        "[" * DEPTH + "]" * DEPTH,
        '{"owner": ' + "[" * DEPTH + "]" * DEPTH + ', "currency": "EUR"}',
        '{"x": ' + '{"x": ' * (DEPTH // 6) + "1" + "}" * (DEPTH // 6) + "}",
    ],
    ids=["open-arrays", "closed-arrays", "in-a-field", "objects"],
)
def test_deeply_nested_json_is_a_client_error(
    client: httpx.Client, command_database: str, body: str, with_key: bool
) -> None:
    headers = {"Idempotency-Key": f"deep-{uuid.uuid4()}"} if with_key else {}
    before = event_count(command_database)

    response = raw_post(client, "/accounts", body, headers)

    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert event_count(command_database) == before


@pytest.mark.parametrize("with_key", [False, True], ids=["no-key", "idempotency-key"])
def test_deep_json_over_the_size_limit_stays_413(client: httpx.Client, with_key: bool) -> None:
    headers = {"Idempotency-Key": f"huge-{uuid.uuid4()}"} if with_key else {}

    response = raw_post(client, "/accounts", "[" * 100_000, headers)

    assert response.status_code == 413, response.text
    assert response.json()["code"] == "body-too-large"
