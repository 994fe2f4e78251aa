"""GET /transfers/{id}, GET /accounts/{id}/transfers and GET /totals, as projected."""

from __future__ import annotations

import random
import string
import uuid
from typing import Any
from uuid import UUID

import pytest

from tests.query_service.conftest import PAGE_SIZE_MAX, QueryService
from tests.query_service.test_account_queries import (
    assert_problem,
    assert_refused_as_a_problem,
    walk,
)

pytestmark = pytest.mark.processes

TRANSFER_FIELDS = {
    "transfer_id", "from_account", "to_account", "amount", "currency", "status", "reason",
    "requested_at", "debited_at", "finished_at", "version",
}  # fmt: skip


def ids(items: list[dict[str, Any]]) -> list[UUID]:
    return [UUID(item["transfer_id"]) for item in items]


def test_a_transfer_is_served_as_projected(query_service: QueryService) -> None:
    writer = query_service.writer
    source, target = writer.open_account("ana"), writer.open_account("ben")
    transfer_id, _ = writer.transfer(source, target, 120, status="debited")
    writer.finish_transfer(transfer_id, "refunded", reason="target account is closed")

    response = query_service.client.get(f"/transfers/{transfer_id}")

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == TRANSFER_FIELDS
    assert body["requested_at"] and body["debited_at"] and body["finished_at"]
    assert {key: body[key] for key in TRANSFER_FIELDS - {"requested_at", "debited_at",
                                                         "finished_at"}} == {
        "transfer_id": str(transfer_id),
        "from_account": str(source),
        "to_account": str(target),
        "amount": 120,
        "currency": "EUR",
        "status": "refunded",
        "reason": "target account is closed",
        "version": 3,
    }  # fmt: skip
    assert int(response.headers["x-projection-position"]) >= 0


def test_a_requested_transfer_has_no_debit_or_end_yet(query_service: QueryService) -> None:
    writer = query_service.writer
    transfer_id, _ = writer.transfer(writer.open_account("cy"), writer.open_account("di"), 5)

    body = query_service.client.get(f"/transfers/{transfer_id}").json()

    assert (body["status"], body["debited_at"], body["finished_at"], body["reason"]) == (
        "requested", None, None, None,
    )  # fmt: skip


def test_an_unknown_transfer_is_a_404_problem(query_service: QueryService) -> None:
    unknown = uuid.uuid4()
    body = assert_problem(query_service.client.get(f"/transfers/{unknown}"), 404,
                          "transfer-not-found")  # fmt: skip
    assert body["transfer_id"] == str(unknown)


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", "' OR 1=1 --", "%00", "g" * 32])
def test_an_id_that_is_no_uuid_is_a_problem_never_a_500(
    query_service: QueryService, bad_id: str
) -> None:
    for path in (f"/transfers/{bad_id}", f"/accounts/{bad_id}/transfers"):
        assert_refused_as_a_problem(query_service.client.get(path))


@pytest.mark.parametrize("limit", [1, 3, 20])
def test_an_accounts_transfers_are_both_sides_newest_first(
    query_service: QueryService, limit: int
) -> None:
    writer = query_service.writer
    mine, other, third = (writer.open_account(name) for name in ("eva", "flo", "gil"))
    made = []
    for n in range(11):
        source, target = (mine, other) if n % 3 else (other, mine)
        made.append(writer.transfer(source, target, 10 + n, status="completed")[0])
        writer.transfer(other, third, 1)  # not mine: never listed

    pages = walk(query_service.client, f"/accounts/{mine}/transfers", limit=limit)

    assert all(len(page) <= limit for page in pages)
    served = [item for page in pages for item in page]
    assert ids(served) == made[::-1]
    assert all(str(mine) in (item["from_account"], item["to_account"]) for item in served)


def test_transfers_requested_while_walking_neither_repeat_nor_hide_older_ones(
    query_service: QueryService,
) -> None:
    writer = query_service.writer
    mine, other = writer.open_account("hal"), writer.open_account("ira")
    before = [writer.transfer(mine, other, 1)[0] for _ in range(7)]
    client = query_service.client

    served: list[UUID] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = client.get(f"/accounts/{mine}/transfers", params=params).json()
        served.extend(ids(body["items"]))
        writer.transfer(other, mine, 2)  # newer than every cursor
        cursor = body["next_cursor"]
        if cursor is None:
            break

    assert served == before[::-1]


def test_an_account_without_transfers_has_an_empty_page_and_an_unknown_one_a_404(
    query_service: QueryService,
) -> None:
    account_id = query_service.writer.open_account("jo")
    client = query_service.client

    assert client.get(f"/accounts/{account_id}/transfers").json() == {
        "items": [],
        "next_cursor": None,
    }
    unknown = uuid.uuid4()
    body = assert_problem(client.get(f"/accounts/{unknown}/transfers"), 404, "account-not-found")
    assert body["account_id"] == str(unknown)


def test_a_transfers_cursor_only_continues_its_own_listing(query_service: QueryService) -> None:
    writer = query_service.writer
    mine, other = writer.open_account("kai"), writer.open_account("lea")
    for _ in range(3):
        writer.transfer(mine, other, 1)
        writer.record(mine, "deposit", 1)
    client = query_service.client
    transfers_cursor = client.get(f"/accounts/{mine}/transfers", params={"limit": 1}).json()[
        "next_cursor"
    ]
    statement_cursor = client.get(f"/accounts/{mine}/transactions", params={"limit": 1}).json()[
        "next_cursor"
    ]
    assert transfers_cursor and statement_cursor

    for path, cursor in (
        (f"/accounts/{other}/transfers", transfers_cursor),
        (f"/accounts/{mine}/transfers", statement_cursor),
        (f"/accounts/{mine}/transactions", transfers_cursor),
        ("/accounts", transfers_cursor),
        (f"/accounts/{mine}/transfers", "garbage"),
    ):
        assert_problem(client.get(path, params={"cursor": cursor}), 422, "invalid-cursor")


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": PAGE_SIZE_MAX + 1}, {"limit": "many"}, {"min_position": -1},
     {"cursor": ""}],
)  # fmt: skip
def test_bad_transfer_listing_parameters_are_validation_problems(
    query_service: QueryService, params: dict[str, str | int]
) -> None:
    account_id = query_service.writer.open_account("max")

    response = query_service.client.get(f"/accounts/{account_id}/transfers", params=params)

    assert_problem(response, 422, "validation-failed")


def test_totals_are_per_currency_in_currency_order(query_service: QueryService) -> None:
    writer = query_service.writer
    rng = random.Random()
    codes = sorted({"Q" + "".join(rng.choices(string.ascii_uppercase, k=2)) for _ in range(3)})
    for code in codes:
        writer.add_totals(code, 1_000, 3, 3, 0)
    writer.add_totals(codes[0], -400, 0, -1, 1)
    huge = 2**62
    writer.add_totals(codes[-1], huge, 2, 2, 0)
    writer.add_totals(codes[-1], huge, 0, 0, 0)  # beyond a bigint, summed exactly

    response = query_service.client.get("/totals")

    assert response.status_code == 200, response.text
    currencies = response.json()["currencies"]
    assert [c["currency"] for c in currencies] == sorted(c["currency"] for c in currencies)
    mine = {c["currency"]: c for c in currencies if c["currency"] in codes}
    assert mine[codes[0]] == {
        "currency": codes[0], "balance": 600, "accounts": 3, "open_accounts": 2,
        "closed_accounts": 1,
    }  # fmt: skip
    assert mine[codes[-1]]["balance"] == 1_000 + 2 * huge
    assert int(response.headers["x-projection-position"]) >= 0
