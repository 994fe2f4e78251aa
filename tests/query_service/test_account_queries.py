"""GET /accounts/{id} and GET /accounts: rows as projected, filters, keyset pages."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.query_service.conftest import QueryService

pytestmark = pytest.mark.processes


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:ledger:problem:{code}"
    return body


def assert_refused_as_a_problem(response: httpx.Response) -> None:
    """A path that names no resource: a 404 or 422 problem document, never a 500."""
    assert response.status_code in (404, 422), response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "x-projection-position" in response.headers


def walk(client: httpx.Client, path: str, **params: str | int) -> list[list[dict[str, Any]]]:
    """Every page of a listing, following next_cursor to the end."""
    pages = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.get(path, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


def test_an_account_is_served_as_projected(query_service: QueryService) -> None:
    writer = query_service.writer
    account_id = writer.open_account("dora", currency="JPY")
    writer.record(account_id, "deposit", 700)
    writer.record(account_id, "withdrawal", 200)

    response = query_service.client.get(f"/accounts/{account_id}")

    assert response.status_code == 200
    body = response.json()
    assert body.pop("opened_at") and body.pop("updated_at")
    assert body == {
        "account_id": str(account_id),
        "owner": "dora",
        "currency": "JPY",
        "balance": 500,
        "available": 500,
        "status": "open",
        "version": 3,
    }
    assert int(response.headers["x-projection-position"]) >= 0


def test_an_unknown_account_is_a_404_problem(query_service: QueryService) -> None:
    unknown = uuid.uuid4()
    for path in (f"/accounts/{unknown}", f"/accounts/{unknown}/transactions"):
        body = assert_problem(query_service.client.get(path), 404, "account-not-found")
        assert body["account_id"] == str(unknown)


@pytest.mark.parametrize(
    "bad_id", ["not-a-uuid", "123", "' OR 1=1 --", "%00", "0" * 33, "g" * 32, "%F0%9F%92%B8"]
)
def test_an_id_that_is_no_uuid_is_a_problem_never_a_500(
    query_service: QueryService, bad_id: str
) -> None:
    for path in (f"/accounts/{bad_id}", f"/accounts/{bad_id}/transactions"):
        assert_refused_as_a_problem(query_service.client.get(path))


def test_accounts_are_filtered_by_owner_status_and_balance(query_service: QueryService) -> None:
    writer = query_service.writer
    owner, other = f"erin-{uuid.uuid4()}", f"frank-{uuid.uuid4()}"
    open_rich = writer.open_account(owner, balance=900)
    open_poor = writer.open_account(owner, balance=5)
    closed = writer.open_account(owner, status="closed")
    writer.open_account(other, balance=900)

    def ids(**params: str | int) -> list[str]:
        response = query_service.client.get("/accounts", params=params)
        assert response.status_code == 200, response.text
        return [item["account_id"] for item in response.json()["items"]]

    assert ids(owner=owner) == sorted(str(a) for a in (open_rich, open_poor, closed))
    assert ids(owner=owner, status="open") == sorted(str(a) for a in (open_rich, open_poor))
    assert ids(owner=owner, status="closed") == [str(closed)]
    assert ids(owner=owner, min_balance=100) == [str(open_rich)]
    assert ids(owner=owner, status="closed", min_balance=1) == []
    assert ids(owner=f"nobody-{uuid.uuid4()}") == []


def test_account_pages_walk_every_match_once_in_id_order(query_service: QueryService) -> None:
    writer = query_service.writer
    owner = f"gina-{uuid.uuid4()}"
    opened = {str(writer.open_account(owner, balance=n)) for n in range(11)}

    pages = walk(query_service.client, "/accounts", owner=owner, limit=3)

    assert [len(page) for page in pages] == [3, 3, 3, 2]
    served = [item["account_id"] for page in pages for item in page]
    assert served == sorted(opened)


def test_unfiltered_account_pages_are_strictly_ordered(query_service: QueryService) -> None:
    writer = query_service.writer
    mine = {str(writer.open_account(f"hal-{uuid.uuid4()}")) for _ in range(3)}

    pages = walk(query_service.client, "/accounts", limit=7)

    served = [item["account_id"] for page in pages for item in page]
    assert served == sorted(set(served)), "pages overlap or are out of order"
    assert mine <= set(served)


def test_a_cursor_only_continues_the_query_it_came_from(query_service: QueryService) -> None:
    writer = query_service.writer
    owner = f"ivy-{uuid.uuid4()}"
    account_id = writer.open_account(owner)
    writer.open_account(owner)
    for amount in (1, 2, 3):
        writer.record(account_id, "deposit", amount)
    client = query_service.client
    accounts_cursor = client.get("/accounts", params={"owner": owner, "limit": 1}).json()[
        "next_cursor"
    ]
    statement_cursor = client.get(
        f"/accounts/{account_id}/transactions", params={"limit": 1}
    ).json()["next_cursor"]
    assert accounts_cursor and statement_cursor

    other_owner = {"owner": f"jim-{uuid.uuid4()}", "cursor": accounts_cursor}
    assert_problem(client.get("/accounts", params=other_owner), 422, "invalid-cursor")
    assert_problem(
        client.get("/accounts", params={"cursor": statement_cursor}), 422, "invalid-cursor"
    )
    other_account = writer.open_account(owner)
    assert_problem(
        client.get(f"/accounts/{other_account}/transactions", params={"cursor": statement_cursor}),
        422,
        "invalid-cursor",
    )
