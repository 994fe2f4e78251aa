"""``owner_summaries``, the read model added in issue 4: projected, then served over HTTP.

Its rows must equal the independent fold of the store (tests/support/reference_fold.py)
for a history with every kind of event, and ``GET /owners/{owner}`` must add
them up the same way, with read-your-writes like every other route.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import httpx
import pytest

from tests.rebuild.support import project, write_history
from tests.support.ledger_writer import LedgerWriter
from tests.support.processes import Stack
from tests.support.reference_fold import (
    OwnerRow,
    expected_read_models,
    live_read_models,
    store_head,
)


def expected_owner_views(owners: dict[tuple[str, str], OwnerRow]) -> dict[str, dict[str, Any]]:
    """What GET /owners/{owner} must answer, from the fold."""
    by_owner: dict[str, list[tuple[str, OwnerRow]]] = defaultdict(list)
    for (owner, currency), row in sorted(owners.items()):
        by_owner[owner].append((currency, row))
    return {
        owner: {
            "owner": owner,
            "accounts": sum(row.accounts for _, row in rows),
            "open_accounts": sum(row.open_accounts for _, row in rows),
            "closed_accounts": sum(row.closed_accounts for _, row in rows),
            "currencies": [
                {
                    "currency": currency,
                    "balance": row.balance,
                    "accounts": row.accounts,
                    "open_accounts": row.open_accounts,
                    "closed_accounts": row.closed_accounts,
                }
                for currency, row in rows
            ],
        }
        for owner, rows in by_owner.items()
    }


async def test_owner_summaries_equal_the_fold_of_the_store(
    database_url: str, stream_name: str, writer: LedgerWriter
) -> None:
    write_history(writer, seed=21, events=120)
    await project(database_url, f"{stream_name}:dead-letter")

    expected = expected_read_models(database_url).owners
    assert {owner for owner, _ in expected} >= {"alice", "bob", "carol", "payee"}
    assert any(row.closed_accounts for row in expected.values()), "the history closes accounts"
    assert live_read_models(database_url).owners == expected


@pytest.mark.processes
async def test_get_owner_answers_the_fold_and_waits_for_the_position(
    database_url: str, stream_name: str, writer: LedgerWriter, stack: Stack
) -> None:
    write_history(writer, seed=22, events=60)
    await project(database_url, f"{stream_name}:dead-letter")
    stack.extra_env["MAX_WAIT_SECONDS"] = "0.3"
    service = stack.process("query").start()
    expected = expected_owner_views(expected_read_models(database_url).owners)

    async with httpx.AsyncClient(base_url=service.url, timeout=10) as client:
        for owner, view in expected.items():
            response = await client.get(f"/owners/{owner}")
            assert response.status_code == 200, response.text
            assert response.json() == view
            assert int(response.headers["x-projection-position"]) == store_head(database_url)
        listed: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = (await client.get("/owners", params=params)).json()
            listed += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert listed == [expected[owner] for owner in sorted(expected)]
        missing = await client.get("/owners/nobody-at-all")
        assert missing.status_code == 404
        assert missing.json()["code"] == "owner-not-found"

        # read-your-writes: a new account is served once the projection reached it
        writer.open("zoe", currency="EUR")
        position = store_head(database_url)
        behind = await client.get("/owners/zoe", params={"min_position": position})
        assert behind.status_code == 412  # nothing projects it in this test ...
        await project(database_url, f"{stream_name}:dead-letter")  # ... until now
        answer = await client.get("/owners/zoe", headers={"X-Min-Position": str(position)})
        assert answer.status_code == 200
        assert answer.json()["accounts"] == 1
        assert int(answer.headers["x-projection-position"]) >= position
