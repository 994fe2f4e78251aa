"""PostgreSQL is the source of truth: losing Redis under load loses nothing.

The whole stack runs on a private redis-server while HTTP clients deposit and
withdraw. Redis is flushed (FLUSHALL) and later killed and restarted empty,
with commands flowing throughout; afterwards the read models equal a fresh
fold of the event store and the query service answers every account right.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.processes import Stack
from tests.support.redis_server import PrivateRedis, private_redis
from tests.support.reference_fold import (
    expected_read_models,
    live_read_models,
    wait_until_projected,
)


@pytest.fixture
def redis_server() -> Iterator[PrivateRedis]:
    with private_redis() as server:
        yield server


class CommandTraffic:
    """Deposits and withdrawals over HTTP from a thread until stopped."""

    def __init__(self, base_url: str, account_ids: list[str]) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=10)
        self.account_ids = account_ids
        self.accepted = 0
        self.statuses: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        rng = random.Random(7)
        while not self._stop.is_set():
            account_id = rng.choice(self.account_ids)
            kind = rng.choice(["deposits", "withdrawals"])
            response = self.client.post(
                f"/accounts/{account_id}/{kind}", json={"amount": rng.randint(1, 50)}
            )
            self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
            if response.status_code == 200:
                self.accepted += 1

    def run_until(self, accepted: int) -> None:
        target = self.accepted + accepted
        while self.accepted < target:
            self._stop.wait(0.02)

    def __enter__(self) -> CommandTraffic:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.client.close()


def test_flush_and_restart_of_redis_under_http_load_lose_nothing(
    database_url: str, stream_name: str, tmp_path: Path, redis_server: PrivateRedis
) -> None:
    stack = Stack(
        database_url=database_url,
        stream_name=stream_name,
        log_dir=tmp_path,
        extra_env={"REDIS_URL": redis_server.url, "IDLE_CATCH_UP_SECONDS": "1"},
    )
    try:
        stack.start("command", "relay", "projector", "query")
        command = httpx.Client(base_url=stack.process("command").url, timeout=10)
        accounts = []
        for owner in ("ann", "bob", "cyd", "dan"):
            opened = command.post("/accounts", json={"owner": owner, "currency": "EUR"})
            assert opened.status_code == 201, opened.text
            accounts.append(opened.json()["account_id"])

        with CommandTraffic(stack.process("command").url, accounts) as traffic:
            traffic.run_until(accepted=100)
            redis_server.client().flushall()
            traffic.run_until(accepted=100)
            redis_server.restart()
            traffic.run_until(accepted=100)
        # Deposits, and withdrawals within the balance, are accepted; the rest
        # are refused with a 4xx. A command service answer is never a 5xx.
        assert all(status < 500 for status in traffic.statuses), traffic.statuses

        wait_until_projected(database_url, timeout=60)
        expected = expected_read_models(database_url)
        assert live_read_models(database_url) == expected
        assert len(expected.transactions) >= 300

        query = httpx.Client(base_url=stack.process("query").url, timeout=10)
        for account_id in accounts:
            shown = query.get(f"/accounts/{account_id}").json()
            row = next(r for a, r in expected.balances.items() if str(a) == account_id)
            assert (shown["balance"], shown["version"]) == (row.balance, row.version)
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.stop()
