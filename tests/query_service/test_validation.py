"""Every malformed query parameter or header is a 422 problem document, never a 500."""

from __future__ import annotations

import pytest

from tests.query_service.conftest import PAGE_SIZE_MAX, QueryService
from tests.query_service.test_account_queries import assert_problem

pytestmark = pytest.mark.processes

MAX_BIGINT = 2**63 - 1


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": -1},
        {"limit": PAGE_SIZE_MAX + 1},
        {"limit": "ten"},
        {"limit": "1.5"},
        {"limit": MAX_BIGINT + 1},
        {"status": "frozen"},
        {"status": ""},
        {"owner": ""},
        {"owner": "x" * 201},
        {"owner": "nul\x00byte"},
        {"min_balance": -1},
        {"min_balance": "lots"},
        {"min_position": -1},
        {"min_position": MAX_BIGINT + 1},
        {"min_position": "latest"},
    ],
)
def test_bad_list_parameters_are_validation_problems(
    query_service: QueryService, params: dict[str, str | int]
) -> None:
    response = query_service.client.get("/accounts", params=params)

    body = assert_problem(response, 422, "validation-failed")
    assert "x-projection-position" in response.headers
    assert body["errors"], "the problem names the failing parameter"


@pytest.mark.parametrize("header", ["-1", "soon", str(MAX_BIGINT + 1), "1.5", "0x10", ""])
def test_a_bad_min_position_header_is_a_validation_problem(
    query_service: QueryService, header: str
) -> None:
    account_id = query_service.writer.open_account("otto")

    response = query_service.client.get(
        f"/accounts/{account_id}", headers={"X-Min-Position": header}
    )

    assert_problem(response, 422, "validation-failed")


@pytest.mark.parametrize(
    "cursor",
    ["garbage", "!!!!", "AAAA", "é", "k" * 4000, "=="],
)
def test_a_cursor_not_issued_by_the_service_is_refused(
    query_service: QueryService, cursor: str
) -> None:
    account_id = query_service.writer.open_account("pia")
    client = query_service.client
    for path in ("/accounts", f"/accounts/{account_id}/transactions"):
        response = client.get(path, params={"cursor": cursor})
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] in ("invalid-cursor", "validation-failed")


def test_a_tampered_cursor_is_refused(query_service: QueryService) -> None:
    writer = query_service.writer
    account_id = writer.open_account("quinn")
    for amount in range(1, 5):
        writer.record(account_id, "deposit", amount)
    path = f"/accounts/{account_id}/transactions"
    cursor = query_service.client.get(path, params={"limit": 2}).json()["next_cursor"]
    assert query_service.client.get(path, params={"cursor": cursor}).status_code == 200

    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for index in range(len(cursor)):
        swapped = alphabet[(alphabet.index(cursor[index]) + 1) % len(alphabet)]
        tampered = cursor[:index] + swapped + cursor[index + 1 :]
        response = query_service.client.get(path, params={"cursor": tampered})
        assert_problem(response, 422, "invalid-cursor")
    for truncated in (cursor[:-1], cursor[:-4], cursor[4:]):
        assert_problem(
            query_service.client.get(path, params={"cursor": truncated}), 422, "invalid-cursor"
        )
