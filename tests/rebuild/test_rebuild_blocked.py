"""A rebuild meets a refused event as the projector does: the stream stays blocked, it swaps.

The live stack (relay, projector, query service) projects a history with one
poisoned account (a NUL in its owner, which ``account_balances`` and
``owner_summaries`` cannot store; see ``tests/projector/test_blocked_stream.py``),
so the projector has blocked that account in those two projections. Then:

1. ``python -m projector.rebuild account_balances`` (a real process, the
   projector's own role) completes and swaps: the rebuilt tables block the
   same stream, so reads of it still answer 503 while every other account is
   the fold; ``--status`` and the admin route name the build's blocked stream.
   ``owner_summaries`` and ``currency_totals`` (which applies the opening:
   the verification's fold reads the NUL as U+FFFD instead of failing) rebuild too.
2. A rebuild with the fix (the same monkeypatched decoder as the blocked-stream
   test) applies the stream: the swap unblocks it, and the read models equal
   the fold with the owner as the fix stores it.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from projector.projections import projection_named
from projector.rebuild.rebuilder import Rebuild, RebuildOptions
from projector.rebuild.records import RebuildRecord
from tests.projector.test_blocked_stream import (
    FIXED_OWNER,
    POISONED_OWNER,
    assert_reads_are_blocked,
    blocks,
    fixed_decode,
    read,
    with_fixed_owner,
    write_poisoned_history,
)
from tests.rebuild.support import TOKEN, table_oid
from tests.support.ledger_writer import LedgerWriter
from tests.support.processes import Stack
from tests.support.reference_fold import (
    expected_read_models,
    live_read_models,
    store_head,
    wait_until_projected,
)
from tests.support.sql import rows

pytestmark = pytest.mark.processes

OPTIONS = RebuildOptions(batch_size=9, swap_within=0)


def block_rows(database_url: str) -> dict[str, tuple[Any, ...]]:
    """projection -> (stream, position, held, blocked_at) of every live block."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT projection, stream_id, position, held, blocked_at FROM projection_blocks"
        )
        return {name: tuple(rest) for name, *rest in rows}


def rebuild(stack: Stack, name: str) -> dict[str, Any]:
    """Rebuild ``name`` in this process (its code, patched or not); the swapped row's report.

    As the projector's role, as ``make rebuild`` does: tables it creates are the
    projector's, so the running projector goes on writing them after the swap.
    """
    database_url = stack.env()["PROJECTOR_DATABASE_URL"]

    async def run() -> RebuildRecord:
        job = Rebuild(database_url, projection_named(name), OPTIONS)
        await job.claim()
        return await job.run()

    final = asyncio.run(run())
    assert final.state == "swapped", final.error
    assert final.report is not None
    return final.report


def rebuild_process(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "projector.rebuild", "--no-progress", *args],
        env=stack.env(), capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def assert_others_equal_the_fold(database_url: str, poisoned: UUID) -> None:
    """Every account but the blocked one, and the sums that do not include it, are the fold."""
    live, expected = live_read_models(database_url), expected_read_models(database_url)
    assert poisoned not in live.balances
    del expected.balances[poisoned]
    assert live.balances == expected.balances
    assert live.transactions == expected.transactions
    assert live.totals == expected.totals  # currency_totals applied the opening
    expected_owners = {k: v for k, v in expected.owners.items() if k[0] != POISONED_OWNER}
    assert live.owners == expected_owners


def assert_operators_see_the_build_blocks(stack: Stack, poisoned: UUID, refused_at: int) -> None:
    """--status and the admin route name the stream the swapped-in build blocked."""
    projector = stack.process("projector").url
    status = rebuild_process(stack, "--status", "account_balances")
    assert status.returncode == 0, status.stderr
    shown = json.loads(status.stdout)["account_balances"]
    assert shown["state"] == "swapped"
    assert shown["blocked_streams"]["count"] == 1
    [stream] = shown["blocked_streams"]["streams"]
    assert (stream["stream_id"], stream["position"]) == (str(poisoned), refused_at)
    assert shown["unblocked_streams"] == []
    admin = httpx.get(f"{projector}/admin/projections",
                      headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)  # fmt: skip
    assert admin.status_code == 200, admin.text
    [balances] = [p for p in admin.json()["projections"] if p["name"] == "account_balances"]
    assert balances["rebuild"]["blocked_streams"]["count"] == 1


def test_a_rebuild_keeps_a_refused_stream_blocked_and_one_with_the_fix_unblocks_it(
    stack: Stack, writer: LedgerWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    database_url = stack.database_url
    stack.extra_env.update(ADMIN_TOKEN=TOKEN, IDLE_CATCH_UP_SECONDS="1")
    stack.start("relay", "projector", "query")
    query = stack.process("query").url
    healthy, poisoned, head = write_poisoned_history(writer, database_url, seed=3)
    live_blocks = block_rows(database_url)
    assert sorted(live_blocks) == ["account_balances", "owner_summaries"]
    old_table = table_oid(database_url, "account_balances")

    # 1. Unfixed code: the rebuild completes, swaps, and blocks the same stream.
    done = rebuild_process(stack, "account_balances")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"BLOCKED stream {poisoned}: account_balances refuses" in done.stdout
    assert "swapped in" in done.stdout
    assert table_oid(database_url, "account_balances") != old_table
    [(report,)] = rows(database_url, "SELECT report FROM projection_rebuilds")
    refused_at = live_blocks["account_balances"][1]
    assert report["ok"] and report["blocked"] == [{"stream_id": str(poisoned),
                                                   "position": refused_at}]  # fmt: skip
    assert rebuild(stack, "owner_summaries")["blocked_streams"]["count"] == 1
    assert rebuild(stack, "currency_totals")["blocked_streams"]["count"] == 0
    # The same blocks, history kept (first seen, held events), and nothing else.
    assert block_rows(database_url) == live_blocks
    assert blocks(database_url)["account_balances"][0] == poisoned
    assert_reads_are_blocked(query, poisoned, head)
    assert_others_equal_the_fold(database_url, poisoned)
    position = writer.deposit(healthy, 5)  # the projector goes on in the rebuilt tables
    answer = read(query, f"/accounts/{healthy}", min_position=position)
    assert answer.status_code == 200, answer.text
    assert answer.json()["balance"] == writer.accounts[healthy].balance

    assert_operators_see_the_build_blocks(stack, poisoned, refused_at)

    # 2. The fix: a rebuild applies the stream, and the swap unblocks it.
    monkeypatch.setattr("projector.batch.decode_event", fixed_decode)
    monkeypatch.setattr("projector.projections.openings.decode_event", fixed_decode)
    for name in ("account_balances", "owner_summaries"):
        report = rebuild(stack, name)
        assert report["unblocked_streams"] == [str(poisoned)]
        assert report["blocked_streams"]["count"] == 0
        assert report["blocked"] == []  # the verification compared every stream
    assert blocks(database_url) == {}
    head = store_head(database_url)
    wait_until_projected(database_url, head)
    answer = read(query, f"/accounts/{poisoned}", min_position=head)
    assert answer.status_code == 200, answer.text
    assert answer.json()["owner"] == FIXED_OWNER
    assert answer.json()["balance"] == writer.accounts[poisoned].balance
    assert read(query, "/owners/bob", min_position=head).status_code == 200
    assert live_read_models(database_url) == with_fixed_owner(
        expected_read_models(database_url), poisoned
    )
