"""An account command travels the whole spine and comes back out of the query service.

Command service -> PostgreSQL event store -> outbox relay -> Redis Stream ->
projector -> read models -> query service, all as real processes.
"""

from __future__ import annotations

import httpx

from tests.support.processes import Stack


def test_open_deposit_withdraw_is_visible_with_read_your_writes(stack: Stack) -> None:
    stack.start("command", "relay", "projector", "query")
    command = httpx.Client(base_url=stack.process("command").url, timeout=10)
    query = httpx.Client(base_url=stack.process("query").url, timeout=10)

    opened = command.post("/accounts", json={"owner": "alice", "currency": "EUR"})
    assert opened.status_code == 201, opened.text
    account_id = opened.json()["account_id"]
    deposited = command.post(
        f"/accounts/{account_id}/deposits", json={"amount": 100, "reference": "salary"}
    )
    assert deposited.status_code == 200, deposited.text
    withdrawn = command.post(f"/accounts/{account_id}/withdrawals", json={"amount": 30})
    assert withdrawn.status_code == 200, withdrawn.text
    position = withdrawn.json()["position"]
    assert opened.json()["position"] < deposited.json()["position"] < position
    assert withdrawn.json()["version"] == 3

    account = query.get(f"/accounts/{account_id}", params={"min_position": position})
    assert account.status_code == 200, account.text
    assert int(account.headers["X-Projection-Position"]) >= position
    body = account.json()
    assert (body["owner"], body["currency"], body["balance"], body["status"], body["version"]) == (
        "alice",
        "EUR",
        70,
        "open",
        3,
    )

    statement = query.get(
        f"/accounts/{account_id}/transactions", headers={"X-Min-Position": str(position)}
    )
    assert statement.status_code == 200, statement.text
    lines = [
        (line["kind"], line["amount"], line["balance_after"], line["reference"])
        for line in statement.json()["items"]
    ]
    assert lines == [("withdrawal", 30, 70, None), ("deposit", 100, 100, "salary")]
