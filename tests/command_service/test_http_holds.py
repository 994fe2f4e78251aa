"""Holds over real HTTP, against the real command service process and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.command_service.test_http_commands import open_account
from tests.support.processes import ServiceProcess

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def client(command_service: ServiceProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=command_service.url, timeout=10) as client:
        yield client


def funded(client: httpx.Client, amount: int = 100) -> str:
    account_id = open_account(client)
    deposited = client.post(f"/accounts/{account_id}/deposits", json={"amount": amount})
    assert deposited.status_code == 200, deposited.text
    return account_id


def place(client: httpx.Client, account_id: str, amount: int, **headers: str) -> httpx.Response:
    return client.post(
        f"/accounts/{account_id}/holds",
        json={"amount": amount, "reference": "card-1", "expires_in_seconds": 600},
        headers=headers,
    )


def test_place_capture_and_release(client: httpx.Client) -> None:
    account_id = funded(client)
    placed = place(client, account_id, 60)
    assert placed.status_code == 201, placed.text
    hold_id = placed.json()["hold_id"]
    assert placed.json()["position"] > 0
    assert placed.headers["Location"] == f"http://127.0.0.1:8002/holds/{hold_id}"

    refused = client.post(f"/accounts/{account_id}/withdrawals", json={"amount": 41})
    assert refused.status_code == 422 and refused.json()["type"].endswith("insufficient-funds")
    assert refused.json()["available"] == 40
    too_much = place(client, account_id, 41)
    assert too_much.status_code == 422 and too_much.headers["content-type"] == PROBLEM
    assert too_much.json()["type"].endswith("insufficient-funds")
    assert client.post(f"/accounts/{account_id}/close").status_code == 409

    over = client.post(f"/holds/{hold_id}/capture", json={"amount": 61})
    assert over.status_code == 422 and over.json()["type"].endswith("capture-exceeds-hold")
    captured = client.post(f"/holds/{hold_id}/capture", json={"amount": 25})
    assert captured.status_code == 200, captured.text
    assert captured.json()["status"] == "captured" and captured.json()["captured"] == 25
    again = client.post(f"/holds/{hold_id}/release")
    assert again.status_code == 409 and again.json()["type"].endswith("hold-not-active")

    # 35 released by the capture: 75 left, all of it available
    second = place(client, account_id, 75).json()["hold_id"]
    released = client.post(f"/holds/{second}/release")
    assert released.status_code == 200 and released.json()["status"] == "released"
    withdrawn = client.post(f"/accounts/{account_id}/withdrawals", json={"amount": 75})
    assert withdrawn.status_code == 200 and withdrawn.json()["balance"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"amount": 0, "reference": "r", "expires_in_seconds": 10},
        {"amount": 1, "reference": "r", "expires_in_seconds": 0},
        {"amount": 1, "reference": "r", "expires_in_seconds": 10**9},
        {"amount": "1", "reference": "r", "expires_in_seconds": 10},
        {"amount": 1, "expires_in_seconds": 10},
        {"amount": 1, "reference": "r", "expires_in_seconds": 10, "extra": 1},
        {"amount": 1, "reference": "a\u0000b", "expires_in_seconds": 10},
    ],
)
def test_bad_hold_bodies_are_422_problems(client: httpx.Client, body: object) -> None:
    answer = client.post(f"/accounts/{uuid.uuid4()}/holds", json=body)
    assert answer.status_code == 422 and answer.headers["content-type"] == PROBLEM


def test_unknown_account_and_hold_are_404(client: httpx.Client) -> None:
    assert place(client, str(uuid.uuid4()), 1).status_code == 404
    unknown = uuid.uuid4()
    for answer in (
        client.post(f"/holds/{unknown}/capture", json={"amount": 1}),
        client.post(f"/holds/{unknown}/release"),
    ):
        assert answer.status_code == 404 and answer.json()["type"].endswith("hold-not-found")
    assert client.post("/holds/not-a-uuid/release").status_code in (400, 404)


def test_idempotency_key_returns_the_first_answer(client: httpx.Client) -> None:
    account_id = funded(client)
    key = str(uuid.uuid4())
    first = place(client, account_id, 30, **{"Idempotency-Key": key})
    second = place(client, account_id, 30, **{"Idempotency-Key": key})
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    other = place(client, account_id, 31, **{"Idempotency-Key": key})
    assert other.status_code == 422
    assert place(client, account_id, 71).status_code == 422  # only one hold of 30 was placed


def test_an_account_id_is_no_hold(client: httpx.Client) -> None:
    account_id = funded(client)
    for answer in (
        client.post(f"/holds/{account_id}/capture", json={"amount": 1}),
        client.post(f"/holds/{account_id}/release"),
    ):
        assert answer.status_code == 404 and answer.json()["type"].endswith("hold-not-found")
    deposited = client.post(f"/accounts/{account_id}/deposits", json={"amount": 1})
    assert deposited.status_code == 200 and deposited.json()["balance"] == 101


def test_a_capture_retried_with_its_key_is_answered_once(client: httpx.Client) -> None:
    account_id = funded(client)
    hold_id = place(client, account_id, 50).json()["hold_id"]
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    first = client.post(f"/holds/{hold_id}/capture", json={"amount": 20}, headers=headers)
    again = client.post(f"/holds/{hold_id}/capture", json={"amount": 20}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() and again.headers.get("Idempotent-Replayed") == "true"
    withdrawn = client.post(f"/accounts/{account_id}/withdrawals", json={"amount": 80})
    assert withdrawn.status_code == 200 and withdrawn.json()["balance"] == 0  # captured once
