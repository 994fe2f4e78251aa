"""/health/ready says no when a dependency is gone or hangs, or the projector stands still.

Real processes. The projector's stall is made by holding the lock every
batch takes first (its checkpoint rows, FOR UPDATE) while the store moves on:
PostgreSQL and Redis both answer, so only the "advancing" check can see it.
A hung Redis is a private redis-server stopped with SIGSTOP; an unreachable
PostgreSQL is a private server stopped after the processes started.
"""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
import pytest

from tests.support.postgres_server import private_postgres
from tests.support.processes import Stack
from tests.support.redis_server import private_redis
from tests.support.reference_fold import store_head, wait_until_projected
from tests.support.streams import wait_for
from tests.transfers.commands import open_account

pytestmark = pytest.mark.processes


def ready(url: str) -> tuple[int, dict[str, Any]]:
    response = httpx.get(f"{url}/health/ready", timeout=10)
    return response.status_code, dict(response.json()["checks"])


def test_a_projector_that_stops_advancing_while_events_wait_is_not_ready(
    stack: Stack, database_url: str
) -> None:
    stack.extra_env.update(PROJECTOR_STALL_SECONDS="1", IDLE_CATCH_UP_SECONDS="0.2")
    stack.start("command", "relay", "projector")
    projector = stack.process("projector").url
    with httpx.Client(base_url=stack.process("command").url, timeout=15) as client:
        account = open_account(client, deposit=10)
        wait_until_projected(database_url)
        status, checks = ready(projector)
        assert status == 200, checks
        assert checks["advancing"]["lag_events"] == 0

        with psycopg.connect(database_url) as holder:
            # Every batch locks these rows first: the projector's apply now waits.
            holder.execute("SELECT position FROM projection_checkpoints FOR UPDATE")
            answer = client.post(f"/accounts/{account}/deposits", json={"amount": 5})
            assert answer.status_code == 200, answer.text
            head = store_head(database_url)

            def stalled() -> bool:
                return ready(projector)[0] == 503

            wait_for(stalled, timeout=30, what="the projector reported as stalled")
            status, checks = ready(projector)
            assert status == 503
            assert str(checks["advancing"]).startswith("failing: ProjectorStalled")
            assert f"head is {head}" in str(checks["advancing"])
            # Its dependencies are fine: only the stall makes it unready.
            assert checks["postgres"] == "ok" and checks["redis"] == "ok"
            assert httpx.get(f"{projector}/health/live", timeout=5).status_code == 200
            holder.rollback()

    wait_until_projected(database_url, head)
    wait_for(lambda: ready(projector)[0] == 200, timeout=30, what="ready again")


def test_a_hung_redis_makes_the_relay_and_projector_unready_and_they_recover(
    stack: Stack,
) -> None:
    with private_redis() as server:
        stack.extra_env.update(REDIS_URL=server.url)
        stack.start("relay", "projector")
        urls = [stack.process(name).url for name in ("relay", "projector")]
        for url in urls:
            assert ready(url)[0] == 200
        server.pause()
        try:
            for url in urls:
                status, checks = ready(url)  # answers, within the checks' timeout
                assert status == 503, checks
                assert str(checks["redis"]).startswith("failing"), checks
                assert checks["postgres"] == "ok"
        finally:
            server.resume()
        for url in urls:

            def back(url: str = url) -> bool:
                return ready(url)[0] == 200

            wait_for(back, timeout=60, what="ready again")


def test_an_unreachable_database_makes_each_process_unready_but_live(stack: Stack) -> None:
    # A process that cannot reach PostgreSQL at start exits (tests/operations/
    # test_startup_checks.py); one that loses it later stays live and says so.
    names = ("relay", "projector", "query")
    with private_postgres() as server:
        stack.extra_env.update(DATABASE_URL=server.migrated_database())
        stack.start(*names)
        server.stop("immediate")
        for name in names:
            url = stack.process(name).url

            def unready(url: str = url) -> bool:
                return ready(url)[0] == 503

            wait_for(unready, timeout=30, what=f"{name} unready")
            assert httpx.get(f"{url}/health/live", timeout=5).status_code == 200
            status, checks = ready(url)
            assert status == 503, (name, checks)
            assert str(checks["postgres"]).startswith("failing"), (name, checks)
