"""Small HTTP helpers: open (and fund) an account, request a transfer."""

from __future__ import annotations

import httpx


def open_account(client: httpx.Client, currency: str = "EUR", deposit: int = 0) -> str:
    opened = client.post("/accounts", json={"owner": "tester", "currency": currency})
    assert opened.status_code == 201, opened.text
    account_id = str(opened.json()["account_id"])
    if deposit:
        response = client.post(f"/accounts/{account_id}/deposits", json={"amount": deposit})
        assert response.status_code == 200, response.text
    return account_id


def transfer(client: httpx.Client, source: str, target: str, amount: int) -> httpx.Response:
    return client.post(
        "/transfers", json={"from_account": source, "to_account": target, "amount": amount}
    )
