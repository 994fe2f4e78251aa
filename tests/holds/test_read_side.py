"""Holds through the whole spine, and through the projector's registry alone: the query
service shows them, a rebuild verifies and swaps them, time travel and replay show an
account's available as it was, and none of that machinery names holds."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import httpx
import pytest

from command_service.replay.cli import run as replay
from projector.projections import projection_named
from projector.rebuild.rebuilder import Rebuild, RebuildOptions
from projector.time_travel.cli import run as time_travel
from tests.support.processes import Stack
from tests.support.reference_fold import (
    expected_read_models,
    live_read_models,
    wait_until_projected,
)

pytestmark = pytest.mark.processes


def _post(stack: Stack, path: str, body: Any = None, status: int = 200) -> Any:
    answer = httpx.post(f"{stack.process('command').url}{path}", json=body, timeout=10)
    assert answer.status_code == status, answer.text
    return answer.json()


def _get(stack: Stack, path: str, position: int, **params: Any) -> Any:
    answer = httpx.get(
        f"{stack.process('query').url}{path}",
        params={"min_position": position, **params},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def _hold(stack: Stack, account_id: str, amount: int) -> dict[str, Any]:
    body = {"amount": amount, "reference": f"card-{amount}", "expires_in_seconds": 3600}
    placed: dict[str, Any] = _post(stack, f"/accounts/{account_id}/holds", body, 201)
    return placed


def test_holds_are_read_rebuilt_and_travelled(stack: Stack) -> None:
    account_id = _post(stack, "/accounts", {"owner": "erin", "currency": "EUR"}, 201)["account_id"]
    _post(stack, f"/accounts/{account_id}/deposits", {"amount": 100})
    kept = _hold(stack, account_id, 30)
    captured = _hold(stack, account_id, 40)
    released = _hold(stack, account_id, 20)
    while_held = released["position"]
    _post(stack, f"/holds/{captured['hold_id']}/capture", {"amount": 25})
    end = _post(stack, f"/holds/{released['hold_id']}/release")["position"]

    account = _get(stack, f"/accounts/{account_id}", end)
    assert (account["balance"], account["available"]) == (75, 45)
    hold = _get(stack, f"/holds/{captured['hold_id']}", end)
    assert (hold["status"], hold["amount"], hold["captured"]) == ("captured", 40, 25)
    first = _get(stack, f"/accounts/{account_id}/holds", end, limit=2)
    rest = _get(stack, f"/accounts/{account_id}/holds", end, limit=2, cursor=first["next_cursor"])
    assert [h["hold_id"] for h in first["items"] + rest["items"]] == [
        released["hold_id"], captured["hold_id"], kept["hold_id"],
    ]  # fmt: skip
    assert rest["next_cursor"] is None
    assert [h["status"] for h in first["items"] + rest["items"]] == [
        "released", "captured", "placed",
    ]  # fmt: skip

    # Time travel: the account as it was while all three holds were active.
    past = _get(stack, f"/accounts/{account_id}", end, as_of=while_held)
    assert (past["balance"], past["available"], past["as_of"]) == (100, 10, while_held)

    url = stack.database_url
    wait_until_projected(url)
    before = live_read_models(url)
    assert before == expected_read_models(url)
    assert before.holds and before.balances
    for name in ("holds", "account_balances"):
        job = Rebuild(url, projection_named(name), RebuildOptions(batch_size=3, swap_within=0))
        asyncio.run(_run(job))
    assert live_read_models(url) == expected_read_models(url) == before

    # Replay of the account stream: each state after its event, held funds included.
    out, err = io.StringIO(), io.StringIO()
    assert replay([account_id, "--format", "json", "--database-url", url], out, err) == 0, (
        err.getvalue()
    )
    records = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    states = [r["state"] for r in records if "state" in r]
    assert max(s["held"] for s in states) == 90 and states[-1]["held"] == 30
    assert states[-1]["balance"] == 75

    # ... and of a hold's own stream, folded by its registered aggregate type.
    out = io.StringIO()
    assert replay([captured["hold_id"], "--database-url", url], out, err) == 0, err.getvalue()
    text = out.getvalue()
    assert text.startswith(f"hold {captured['hold_id']}: 2 events"), text
    assert "-> captured: 40 EUR" in text and "hold streams are not snapshotted" in text

    # Time travel of the hold's own stream: the holds projection describes it alone.
    out = io.StringIO()
    at = ["--at", str(while_held), "--database-url", url]
    assert time_travel([captured["hold_id"], *at], out, err) == 0, err.getvalue()
    text = out.getvalue()
    assert "holds (1 row)" in text and "status=placed" in text and "amount=40" in text, text


async def _run(job: Rebuild) -> None:
    await job.claim()
    final = await job.run()
    assert final.state == "swapped", final.error
