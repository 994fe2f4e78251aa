"""GET /accounts/{id}/transactions: newest first, keyset pages that survive concurrent inserts."""

from __future__ import annotations

import dataclasses
from typing import Literal
from uuid import UUID

import httpx
import pytest

from tests.query_service.conftest import QueryService
from tests.query_service.read_model_writer import Line

pytestmark = pytest.mark.processes


def statement_page(
    client: httpx.Client, account_id: UUID, limit: int, cursor: str | None
) -> tuple[list[Line], str | None]:
    params: dict[str, str | int] = {"limit": limit}
    if cursor is not None:
        params["cursor"] = cursor
    response = client.get(f"/accounts/{account_id}/transactions", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    lines = []
    for item in body["items"]:
        assert item.pop("currency") == "EUR"
        assert item.pop("recorded_at")
        assert (item.pop("counterparty"), item.pop("transfer_id")) == (None, None)
        lines.append(Line(**item))
    return lines, body["next_cursor"]


def record_lines(query_service: QueryService, account_id: UUID, count: int) -> list[Line]:
    writer = query_service.writer
    lines = []
    for n in range(count):
        kind: Literal["deposit", "withdrawal"] = "deposit" if n % 3 != 2 else "withdrawal"
        lines.append(writer.record(account_id, kind, 10 + n, reference=f"ref-{n}"))
    return lines


@pytest.mark.parametrize("limit", [1, 4, 7, 20])
def test_pages_walk_every_line_once_newest_first(query_service: QueryService, limit: int) -> None:
    account_id = query_service.writer.open_account("kim", balance=1000)
    lines = record_lines(query_service, account_id, 23)

    served: list[Line] = []
    cursor = None
    while True:
        page, cursor = statement_page(query_service.client, account_id, limit, cursor)
        assert len(page) <= limit
        served.extend(page)
        if cursor is None:
            break

    assert served == lines[::-1]


def test_lines_inserted_while_walking_neither_repeat_nor_hide_older_ones(
    query_service: QueryService,
) -> None:
    writer = query_service.writer
    account_id = writer.open_account("lou", balance=1000)
    before_walk = record_lines(query_service, account_id, 10)

    served: list[Line] = []
    page, cursor = statement_page(query_service.client, account_id, 3, None)
    served.extend(page)
    inserted = []
    while cursor is not None:
        # A projector keeps appending newer lines between the client's page fetches.
        inserted.append(writer.record(account_id, "deposit", 1))
        inserted.append(writer.record(account_id, "deposit", 2))
        page, cursor = statement_page(query_service.client, account_id, 3, cursor)
        served.extend(page)

    assert served == before_walk[::-1]
    positions = [line.position for line in served]
    assert len(positions) == len(set(positions))

    fresh_walk: list[Line] = []
    cursor = None
    while True:
        page, cursor = statement_page(query_service.client, account_id, 5, cursor)
        fresh_walk.extend(page)
        if cursor is None:
            break
    assert fresh_walk == (before_walk + inserted)[::-1]


def test_an_account_without_lines_has_an_empty_statement(query_service: QueryService) -> None:
    account_id = query_service.writer.open_account("max")

    page, cursor = statement_page(query_service.client, account_id, 5, None)

    assert (page, cursor) == ([], None)


def test_a_line_keeps_its_reference_and_balance_after(query_service: QueryService) -> None:
    writer = query_service.writer
    account_id = writer.open_account("ned")
    deposit = writer.record(account_id, "deposit", 250, reference="salary")
    withdrawal = writer.record(account_id, "withdrawal", 100)

    page, _ = statement_page(query_service.client, account_id, 10, None)

    assert page == [withdrawal, deposit]
    assert dataclasses.astuple(page[0])[-2:] == (150, None)
    assert dataclasses.astuple(page[1])[-2:] == (250, "salary")
