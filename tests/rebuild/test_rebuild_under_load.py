"""A rebuild of ``account_balances`` under a steady write load, with queries running throughout.

Real processes: relay, projector (which runs the rebuild, started over its
admin route) and query service, while a writer thread appends commands and a
query thread reads accounts in a loop. The queries must never notice: no
error, no 404 for an account that exists, no ``X-Projection-Position`` and no
account version going backwards, before, during or after the swap. Once the
writes stop, the read models equal a fresh fold of the store.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from uuid import UUID

import httpx
import psycopg
import pytest

from bench.history import fill_store
from tests.rebuild.support import TOKEN
from tests.support.ledger_writer import BackgroundWriter
from tests.support.processes import Stack
from tests.support.reference_fold import (
    expected_read_models,
    live_read_models,
    wait_until_projected,
)
from tests.support.streams import wait_for


@dataclass
class Answer:
    account: UUID | None
    status: int
    position: int
    version: int | None


@dataclass
class QueryLoop:
    """Reads accounts (and every tenth time a listing) until stopped, keeping every answer."""

    base_url: str
    accounts: list[UUID]
    answers: list[Answer] = field(default_factory=list)
    error: BaseException | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        try:
            with httpx.Client(base_url=self.base_url, timeout=30) as client:
                for turn, account in enumerate(itertools.cycle(self.accounts)):
                    if self._stopping.is_set():
                        return
                    if turn % 10 == 9:
                        response = client.get("/accounts", params={"owner": "alice", "limit": 5})
                        version = None
                    else:
                        response = client.get(f"/accounts/{account}")
                        ok = response.status_code == 200
                        version = response.json()["version"] if ok else None
                    header = response.headers.get("x-projection-position", "-1")
                    self.answers.append(
                        Answer(None if turn % 10 == 9 else account, response.status_code,
                               int(header), version)
                    )  # fmt: skip
        except BaseException as error:
            self.error = error

    def stop(self) -> None:
        self._stopping.set()


def rebuild_state(projector_url: str, rebuild_id: int) -> str:
    response = httpx.get(
        f"{projector_url}/admin/projections",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    response.raise_for_status()
    [balances] = [p for p in response.json()["projections"] if p["name"] == "account_balances"]
    rebuild = balances["rebuild"]
    assert rebuild is not None and rebuild["rebuild_id"] == rebuild_id
    assert rebuild["state"] not in ("refused", "failed"), rebuild
    return str(rebuild["state"])


@pytest.mark.processes
def test_queries_never_notice_a_rebuild_under_write_load(database_url: str, stack: Stack) -> None:
    fill_store(database_url, 4_000, accounts=60, seed=5)
    stack.extra_env.update(
        ADMIN_TOKEN=TOKEN, REBUILD_BATCH_SIZE="100", REBUILD_SWAP_WITHIN="50"
    )
    stack.start("relay", "projector", "query")
    wait_until_projected(database_url)
    with psycopg.connect(database_url) as conn:
        accounts = [row[0] for row in conn.execute("SELECT account_id FROM account_balances")]
    loop = QueryLoop(stack.process("query").url, accounts)
    reader = threading.Thread(target=loop.run, name="query-loop", daemon=True)

    with BackgroundWriter(database_url, seed=9, at_least=100) as writer:
        reader.start()
        wait_for(lambda: len(loop.answers) >= 50, what="queries before the rebuild")
        projector = stack.process("projector").url
        response = httpx.post(
            f"{projector}/admin/projections/account_balances/rebuild",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
        assert response.status_code == 202, response.text
        rebuild_id = response.json()["rebuild_id"]
        asked_at = len(loop.answers)
        wait_for(
            lambda: rebuild_state(projector, rebuild_id) == "swapped", timeout=120,
            what="the rebuild swapped in",
        )  # fmt: skip
        swapped_at = len(loop.answers)
        wait_for(lambda: len(loop.answers) >= swapped_at + 100, what="queries after the swap")
        assert writer.running, "the writes went on during the whole rebuild"
    loop.stop()
    reader.join(timeout=30)

    assert loop.error is None, loop.error
    assert swapped_at > asked_at, "queries were answered while the rebuild ran"
    refused = [answer for answer in loop.answers if answer.status != 200]
    assert refused == []
    positions = [answer.position for answer in loop.answers]
    assert all(a <= b for a, b in itertools.pairwise(positions)), "a position went back"
    latest: dict[UUID, int] = {}
    for answer in loop.answers:
        if answer.account is None or answer.version is None:
            continue
        assert answer.version >= latest.get(answer.account, 0), "an account went back"
        latest[answer.account] = answer.version
    wait_until_projected(database_url)
    assert live_read_models(database_url) == expected_read_models(database_url)
