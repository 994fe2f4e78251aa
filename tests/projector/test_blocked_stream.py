"""An event a projection cannot store blocks its stream visibly, and a replay after a fix clears it.

The poison is an account opened with a NUL in its owner, written straight into
the store (the command side's edge will refuse such text, but a projection can
always meet an event it cannot apply): PostgreSQL text cannot hold NUL, so
``account_balances`` and ``owner_summaries`` refuse the opening, while
``currency_totals`` (which stores no owner) applies it.

The fix is a correction of the data path, applied by the replay command run
in this test's process: the decoder the projector reads events with (also the
one that reads an account's opening back from the store) is monkeypatched to
replace NUL by U+FFFD, which is what a release fixing this would deploy. The
projections' own ``apply`` then writes the account. The expected read models
are the reference fold with the same replacement in the owner, the one field
the fix changes. The projector process keeps the unfixed code, which the end
of the test uses: the account's next event blocks ``owner_summaries`` again
(it re-reads the opening), visibly, while ``account_balances`` goes on.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any
from uuid import UUID

import httpx
import msgspec
import psycopg
import pytest
import redis

from projector.dead_letters.__main__ import run
from projector.settings import ProjectorSettings
from shared_kernel.language import events
from tests.support.infra import REDIS_URL
from tests.support.ledger_writer import LedgerWriter
from tests.support.processes import Stack
from tests.support.reference_fold import (
    OwnerRow,
    ReadModels,
    expected_read_models,
    live_read_models,
    store_head,
    wait_until_projected,
)
from tests.support.streams import raw_entries, ready_checks, wait_for

pytestmark = pytest.mark.processes

POISONED_OWNER = "eve\x00il"
FIXED_OWNER = "eve\ufffdil"


def blocks(database_url: str) -> dict[str, tuple[UUID, int, int]]:
    """projection -> (stream, first refused position, held events)."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT projection, stream_id, position, held FROM projection_blocks")
        return {name: (stream, position, held) for name, stream, position, held in rows}


def read(query: str, path: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{query}{path}", params=params, timeout=15)


def blocked_metric(projector_url: str) -> dict[str, float]:
    text = httpx.get(f"{projector_url}/metrics", timeout=5).text
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("ledger_projector_blocked_streams{"):
            labels, value = line.rsplit(" ", 1)
            values[labels.split('"')[1]] = float(value)
    return values


def fixed_decode(topic: str, data: bytes) -> events.LedgerEvent:
    """The corrected data path: text PostgreSQL cannot store has its NUL replaced."""
    event = events.decode_event(topic, data)
    changes = {
        name: value.replace("\x00", "\ufffd")
        for name in ("owner", "reference")
        if isinstance(value := getattr(event, name, None), str) and "\x00" in value
    }
    return msgspec.structs.replace(event, **changes) if changes else event


def with_fixed_owner(expected: ReadModels, account: UUID) -> ReadModels:
    """The fold, with the owner as the fix stores it."""
    expected.balances[account] = expected.balances[account]._replace(owner=FIXED_OWNER)
    owners: dict[tuple[str, str], OwnerRow] = {}
    for (owner, currency), row in expected.owners.items():
        owners[(owner.replace("\x00", "\ufffd"), currency)] = row
    expected.owners = owners
    return expected


def assert_reads_are_blocked(query: str, account: UUID, head: int) -> None:
    """Reads of the account and of sums over its owner are a problem, min_position or not."""
    answer = read(query, f"/accounts/{account}", min_position=head)
    assert answer.status_code == 503, answer.text
    problem = answer.json()
    assert problem["code"] == "read-model-blocked"
    assert problem["blocked"][0]["stream_id"] == str(account)
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert read(query, f"/accounts/{account}").status_code == 503
    assert read(query, f"/accounts/{account}/transactions").status_code == 503
    assert read(query, "/owners/bob").status_code == 503  # sums may include the blocked one
    assert read(query, "/accounts", owner="bob").status_code == 503


def assert_operators_see_it(stack: Stack, account: UUID) -> None:
    """Metrics, the readiness body, the listing; a replay without the fix changes nothing."""
    projector = stack.process("projector").url
    wait_for(lambda: blocked_metric(projector).get("account_balances") == 1, what="gauge")
    assert ready_checks(projector)["blocked_streams"] == {
        "account_balances": 1,
        "owner_summaries": 1,
    }
    env = stack.env()
    listing = subprocess.run(
        [sys.executable, "-m", "projector.dead_letters", "--format", "json"],
        env=env, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    listed = json.loads(listing.stdout)
    assert [d["stream"] for d in listed["dead_letters"]] == [str(account)]
    assert {b["projection"] for b in listed["blocks"]} == {"account_balances", "owner_summaries"}
    unfixed = subprocess.run(
        [sys.executable, "-m", "projector.dead_letters", "--replay", "all"],
        env=env, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert unfixed.returncode == 1, unfixed.stdout + unfixed.stderr
    assert "STILL FAILING" in unfixed.stdout
    assert len(blocks(stack.database_url)) == 2


def replay_with_the_fix(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("projector.batch.decode_event", fixed_decode)
    monkeypatch.setattr("projector.projections.openings.decode_event", fixed_decode)
    settings = ProjectorSettings(
        database_url=stack.database_url, redis_url=REDIS_URL, stream_name=stack.stream_name
    )
    assert asyncio.run(run(settings, ["--replay", "all"])) == 0
    assert blocks(stack.database_url) == {}
    client = redis.Redis.from_url(REDIS_URL)
    try:
        assert raw_entries(client, f"{stack.stream_name}:dead-letter") == []
    finally:
        client.close()


def write_poisoned_history(
    writer: LedgerWriter, database_url: str, seed: int
) -> tuple[UUID, UUID, int]:
    """Random accounts, bob's healthy one, the poisoned one with three deposits; projected.

    Returns the healthy account, the poisoned one and the store's head.
    """
    writer.write_random(20, seed=seed)
    healthy = writer.open(owner="bob")
    writer.deposit(healthy, 100)
    poisoned = writer.open(owner=POISONED_OWNER)
    for amount in (10, 20, 30):
        writer.deposit(poisoned, amount, reference="held")
    writer.write_random(10, seed=seed + 1)
    head = store_head(database_url)
    wait_until_projected(database_url, head)
    return healthy, poisoned, head


def test_a_refused_event_blocks_its_stream_until_a_replay_after_the_fix(
    stack: Stack, writer: LedgerWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    database_url = stack.database_url
    stack.extra_env.update(IDLE_CATCH_UP_SECONDS="1")
    stack.start("relay", "projector", "query")
    projector, query = stack.process("projector").url, stack.process("query").url
    healthy, poisoned, head = write_poisoned_history(writer, database_url, seed=0)

    # The stream is blocked in the two projections that store the owner, with
    # its later events held; currency_totals applied everything.
    found = blocks(database_url)
    assert sorted(found) == ["account_balances", "owner_summaries"]
    assert found["account_balances"][0] == poisoned
    later = writer.accounts[poisoned].version - 1  # random steps may have chosen it too
    assert found["account_balances"][2] == later >= 3
    assert_reads_are_blocked(query, poisoned, head)
    # What is not blocked answers, and equals the fold.
    expected = expected_read_models(database_url)
    totals = read(query, "/totals", min_position=head)
    assert totals.status_code == 200
    assert {t["currency"]: t["balance"] for t in totals.json()["currencies"]} == {
        currency: row.balance for currency, row in expected.totals.items()
    }
    # Other accounts keep projecting.
    position = writer.deposit(healthy, 5)
    answer = read(query, f"/accounts/{healthy}", min_position=position)
    assert answer.status_code == 200
    assert answer.json()["balance"] == writer.accounts[healthy].balance
    assert_operators_see_it(stack, poisoned)

    # The fix, then the replay, while the projector runs and writes go on.
    writer.deposit(healthy, 1)
    replay_with_the_fix(stack, monkeypatch)

    # Unblocked: the account reads again, and every read model equals the fold.
    head = store_head(database_url)
    wait_until_projected(database_url, head)
    answer = read(query, f"/accounts/{poisoned}", min_position=head)
    assert answer.status_code == 200, answer.text
    assert answer.json()["balance"] == writer.accounts[poisoned].balance
    assert answer.json()["owner"] == FIXED_OWNER
    owner = read(query, "/owners/bob", min_position=head)
    assert owner.status_code == 200, owner.text
    assert live_read_models(database_url) == with_fixed_owner(
        expected_read_models(database_url), poisoned
    )
    wait_for(lambda: blocked_metric(projector).get("account_balances") == 0, what="gauge at 0")

    # The running projector still has the unfixed code: the account's next event
    # flows into account_balances in order, while owner_summaries (which reads
    # the opening's owner back from the store) refuses it and blocks again, visibly.
    position = writer.deposit(poisoned, 40)
    wait_until_projected(database_url, position)
    answer = read(query, f"/accounts/{poisoned}", min_position=position)
    assert answer.status_code == 200, answer.text
    assert answer.json()["balance"] == writer.accounts[poisoned].balance
    assert blocks(database_url) == {"owner_summaries": (poisoned, position, 0)}
    assert read(query, "/owners/bob", min_position=position).status_code == 503
