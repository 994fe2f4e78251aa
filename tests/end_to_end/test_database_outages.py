"""PostgreSQL outages at the HTTP edge: dead pooled connections are replaced, a down
database is a quick 503 with Retry-After, and service resumes when it is back.

The first test ends every backend of its own scratch database on the shared
server (``pg_terminate_backend``), as a PostgreSQL restart would; the second
stops a private server of its own.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from shared_kernel.pools import postgres_pool
from tests.support.infra import POSTGRES_SERVER_URL, scratch_database, unique_stream_name
from tests.support.postgres_server import PrivatePostgres, private_postgres
from tests.support.processes import Stack

pytestmark = pytest.mark.processes

#: An outage must be answered within this (the pools wait 2 s for a connection).
OUTAGE_ANSWER_SECONDS = 5.0
#: A command meets the outage in the event store: three append attempts (each up to the
#: pool's 2 s wait), then up to COMMIT_SETTLE_SECONDS (5) asking whether it committed.
STORE_OUTAGE_ANSWER_SECONDS = 20.0


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Callable[[str], Stack]]:
    started: list[Stack] = []

    def start(database_url: str) -> Stack:
        stack = Stack(
            database_url=database_url, stream_name=unique_stream_name(), log_dir=tmp_path
        )
        started.append(stack)
        return stack.start("command", "query")

    yield start
    for stack in started:
        stack.stop()


def clients(stack: Stack) -> tuple[httpx.Client, httpx.Client]:
    return (
        httpx.Client(base_url=stack.process("command").url, timeout=60),
        httpx.Client(base_url=stack.process("query").url, timeout=60),
    )


def open_account(command: httpx.Client, key: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return command.post("/accounts", json={"owner": "olga", "currency": "EUR"}, headers=headers)


def end_every_backend(database_url: str) -> list[int]:
    """pg_terminate_backend on every session of the database; waits until they are gone."""
    dbname = database_url.rsplit("/", 1)[1]
    with psycopg.connect(POSTGRES_SERVER_URL, autocommit=True) as conn:
        pids = [
            int(row[0])
            for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (dbname,),
            ).fetchall()
        ]
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + 10
        while conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)
        ).fetchone() != (0,):
            assert time.monotonic() < deadline, "terminated backends did not go away"
            time.sleep(0.05)
    return pids


def test_dead_pooled_connections_are_replaced_not_answered_with_500(
    stack: Callable[[str], Stack],
) -> None:
    with scratch_database() as database_url:
        command, query = clients(stack(database_url))
        # Fill the pools: the event store's, the idempotency keys', the read models'.
        for _ in range(3):
            assert open_account(command).status_code == 201
            assert open_account(command, f"warm-{uuid.uuid4()}").status_code == 201
            assert query.get("/accounts", params={"owner": "olga"}).status_code == 200

        assert len(end_every_backend(database_url)) >= 3

        # Each pool's idle connections are all dead now; every request still succeeds.
        for _ in range(3):
            keyed = open_account(command, f"after-{uuid.uuid4()}")
            assert keyed.status_code == 201, keyed.text
            plain = open_account(command)
            assert plain.status_code == 201, plain.text
            deposit = command.post(
                f"/accounts/{plain.json()['account_id']}/deposits", json={"amount": 5}
            )
            assert deposit.status_code == 200, deposit.text
            read = query.get("/accounts", params={"owner": "olga"})
            assert read.status_code == 200, read.text


async def test_a_pool_whose_idle_connections_all_died_hands_out_a_fresh_one_in_time() -> None:
    """Four dead idle connections: checked one by one with psycopg_pool's backoff between
    failed checks (0, 1, 2 s), the wait would run past POOL_WAIT_SECONDS."""
    with scratch_database() as database_url:
        pool = postgres_pool(database_url, "sweep-test", max_size=4, min_size=4)
        await pool.open(wait=True)
        try:
            assert pool.get_stats()["pool_available"] == 4
            end_every_backend(database_url)
            async with pool.connection() as conn:
                cursor = await conn.execute("SELECT 1")
                assert await cursor.fetchone() == (1,)
        finally:
            await pool.close()


def assert_outage(response: httpx.Response, seconds: float) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["Retry-After"]) >= 1
    assert seconds < OUTAGE_ANSWER_SECONDS, f"the 503 took {seconds:.1f} s"


def timed(request: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    began = time.monotonic()
    response = request()
    return response, time.monotonic() - began


@pytest.fixture
def server() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        yield server


def test_a_stopped_database_is_a_quick_503_and_service_resumes(
    stack: Callable[[str], Stack], server: PrivatePostgres
) -> None:
    command, query = clients(stack(server.migrated_database()))
    opened = open_account(command, f"before-{uuid.uuid4()}")
    assert opened.status_code == 201, opened.text
    account = opened.json()["account_id"]

    server.stop("immediate")

    read, took = timed(lambda: query.get("/accounts", params={"owner": "olga"}))
    assert_outage(read, took)
    assert read.json()["code"] == "read-models-unavailable"
    keyed, took = timed(lambda: open_account(command, f"down-{uuid.uuid4()}"))
    assert_outage(keyed, took)
    plain, took = timed(
        lambda: command.post(f"/accounts/{account}/deposits", json={"amount": 1})
    )
    # Whether the failed append committed is unknown until the store answers: bounded
    # by STORE_OUTAGE_ANSWER_SECONDS, then 503 (commit-outcome-unknown).
    assert plain.status_code == 503, plain.text
    assert int(plain.headers["Retry-After"]) >= 1
    assert took < STORE_OUTAGE_ANSWER_SECONDS, f"the 503 took {took:.1f} s"
    print(f"a command meeting a stopped event store was answered 503 in {took:.1f} s")

    server.start()
    deadline = time.monotonic() + 30
    while (resumed := open_account(command, f"back-{uuid.uuid4()}")).status_code != 201:
        assert resumed.status_code == 503, resumed.text
        assert time.monotonic() < deadline, "no recovery after the database came back"
        time.sleep(0.2)
    deposit = command.post(f"/accounts/{account}/deposits", json={"amount": 1})
    assert deposit.status_code == 200, deposit.text
    while (listed := query.get("/accounts", params={"owner": "olga"})).status_code != 200:
        assert listed.status_code == 503, listed.text
        assert time.monotonic() < deadline, "the query service never recovered"
        time.sleep(0.2)
