"""Read-your-writes: ?min_position / X-Min-Position wait for the projection, bounded.

The test plays the projector: it moves rows and checkpoints in one
transaction and NOTIFYs, exactly as ``projector`` does, and checks what the
real query service process answers.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import psycopg
import pytest

from query_service.projection_position import LISTENER_APPLICATION_NAME
from shared_kernel.checkpoint_news import checkpoints_advanced
from tests.query_service.read_model_writer import SERVED, ReadModelWriter
from tests.query_service.test_account_queries import assert_problem
from tests.support.processes import ServiceProcess, Stack

pytestmark = pytest.mark.processes


def start_query(stack: Stack, **env: str) -> ServiceProcess:
    stack.extra_env.update(env)
    return stack.process("query").start()


def later(action: Callable[[], object], delay: float = 0.3) -> threading.Thread:
    """Run ``action`` in a thread after ``delay`` s, while the test's request waits."""

    def run() -> None:
        time.sleep(delay)
        action()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def projection_position(response: httpx.Response) -> int:
    return int(response.headers["x-projection-position"])


@pytest.fixture
def writer(database_url: str) -> ReadModelWriter:
    return ReadModelWriter(database_url)


@pytest.fixture
def client(stack: Stack) -> Iterator[Callable[[], httpx.Client]]:
    clients: list[httpx.Client] = []

    def make() -> httpx.Client:
        clients.append(httpx.Client(base_url=stack.process("query").url, timeout=30.0))
        return clients[-1]

    yield make
    for made in clients:
        made.close()


@pytest.mark.parametrize("via", ["query", "header"])
def test_a_read_waits_for_the_position_and_then_sees_the_write(
    stack: Stack,
    writer: ReadModelWriter,
    client: Callable[[], httpx.Client],
    via: str,
) -> None:
    account_id = writer.open_account("rosa")
    start_query(stack)
    http = client()
    assert http.get(f"/accounts/{account_id}").json()["balance"] == 0
    written = writer.position + 1

    projector = later(lambda: writer.record(account_id, "deposit", 42))
    if via == "query":
        response = http.get(f"/accounts/{account_id}", params={"min_position": written})
    else:
        response = http.get(f"/accounts/{account_id}", headers={"X-Min-Position": str(written)})
    projector.join()

    assert response.status_code == 200, response.text
    assert response.json()["balance"] == 42
    assert response.json()["version"] == 2
    assert projection_position(response) >= written


def test_a_statement_read_waits_for_its_line(
    stack: Stack, writer: ReadModelWriter, client: Callable[[], httpx.Client]
) -> None:
    account_id = writer.open_account("sam")
    start_query(stack)
    written = writer.position + 1

    projector = later(lambda: writer.record(account_id, "deposit", 7, reference="gift"))
    response = client().get(
        f"/accounts/{account_id}/transactions", params={"min_position": written}
    )
    projector.join()

    assert response.status_code == 200, response.text
    [line] = response.json()["items"]
    assert (line["position"], line["reference"]) == (written, "gift")


def test_a_position_never_reached_is_412_projection_behind(
    stack: Stack, writer: ReadModelWriter, client: Callable[[], httpx.Client]
) -> None:
    account_id = writer.open_account("tom")
    reached = writer.position
    start_query(stack, MAX_WAIT_SECONDS="0.5")

    response = client().get(f"/accounts/{account_id}", params={"min_position": reached + 100})

    body = assert_problem(response, 412, "projection-behind")
    assert body["min_position"] == reached + 100
    assert body["projection_position"] == reached
    assert int(response.headers["retry-after"]) >= 1
    assert projection_position(response) == reached


def test_a_notification_is_only_a_doorbell_the_checkpoint_decides(
    stack: Stack, writer: ReadModelWriter, client: Callable[[], httpx.Client]
) -> None:
    account_id = writer.open_account("uma")
    reached = writer.position
    start_query(stack, MAX_WAIT_SECONDS="0.5")

    later(lambda: writer.notify(str(reached + 50)), delay=0.1)
    response = client().get(f"/accounts/{account_id}", params={"min_position": reached + 50})

    body = assert_problem(response, 412, "projection-behind")
    assert body["projection_position"] == reached


def test_a_batch_s_news_is_taken_as_it_stands_without_a_re_read(
    stack: Stack, writer: ReadModelWriter, client: Callable[[], httpx.Client]
) -> None:
    """One partition, no new blocks: the projector's NOTIFY alone moves the position.

    The checkpoint rows stay where they were, so only the payload can have said so."""
    account_id = writer.open_account("una")
    reached = writer.position
    start_query(stack, MAX_WAIT_SECONDS="10")
    told = checkpoints_advanced(reached + 50, SERVED, partition=0, partitions=1, blocked=False)

    later(lambda: writer.notify(told), delay=0.1)
    response = client().get(f"/accounts/{account_id}", params={"min_position": reached + 50})

    assert response.status_code == 200, response.text
    assert projection_position(response) == reached + 50


@pytest.mark.parametrize(
    "batch",
    [(0, 2, False), (0, 1, True)],
    ids=["one of two partitions", "a batch that blocked a stream"],
)
def test_news_the_payload_cannot_settle_alone_is_a_doorbell(
    stack: Stack, writer: ReadModelWriter, client: Callable[[], httpx.Client],
    batch: tuple[int, int, bool],
) -> None:  # fmt: skip
    """(partition, partitions, blocked) of the batch the payload tells about."""
    account_id = writer.open_account("ugo")
    reached = writer.position
    start_query(stack, MAX_WAIT_SECONDS="0.5")
    partition, partitions, blocked = batch
    told = checkpoints_advanced(
        reached + 50, SERVED, partition=partition, partitions=partitions, blocked=blocked
    )

    later(lambda: writer.notify(told), delay=0.1)
    response = client().get(f"/accounts/{account_id}", params={"min_position": reached + 50})

    body = assert_problem(response, 412, "projection-behind")
    assert body["projection_position"] == reached


def test_a_route_waits_for_the_projections_it_reads_and_no_others(
    stack: Stack, writer: ReadModelWriter, client: Callable[[], httpx.Client]
) -> None:
    account_id = writer.open_account("vic")
    transfer_id, _ = writer.transfer(account_id, writer.open_account("vera"), 1)
    reached = writer.position
    start_query(stack, MAX_WAIT_SECONDS="0.5")
    http = client()
    ahead = {"min_position": reached + 1}

    writer.set_checkpoint(reached + 1, projections=("account_balances",))
    balance = http.get(f"/accounts/{account_id}", params=ahead)
    assert balance.status_code == 200, balance.text
    assert projection_position(balance) == reached + 1
    for path in (f"/accounts/{account_id}/transactions", f"/accounts/{account_id}/transfers",
                 f"/transfers/{transfer_id}", "/totals"):  # fmt: skip
        body = assert_problem(http.get(path, params=ahead), 412, "projection-behind")
        assert body["projection_position"] == reached

    writer.set_checkpoint(reached + 1, projections=("account_transactions",))
    statement = http.get(f"/accounts/{account_id}/transactions", params=ahead)
    assert statement.status_code == 200, statement.text
    assert_problem(http.get(f"/transfers/{transfer_id}", params=ahead), 412, "projection-behind")

    writer.set_checkpoint(reached + 1, projections=("transfers", "currency_totals"))
    for path in (f"/accounts/{account_id}/transfers", f"/transfers/{transfer_id}", "/totals"):
        response = http.get(path, params=ahead)
        assert response.status_code == 200, response.text
        assert projection_position(response) == reached + 1


def test_a_projection_without_a_checkpoint_row_holds_back_only_its_own_routes(
    stack: Stack, writer: ReadModelWriter, client: Callable[[], httpx.Client], database_url: str
) -> None:
    """A database the new projector has not reached yet: no row for transfers or totals."""
    account_id = writer.open_account("wim")
    reached = writer.position
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "DELETE FROM projection_checkpoints"
            " WHERE projection IN ('transfers', 'currency_totals')"
        )
    start_query(stack, MAX_WAIT_SECONDS="0.5")
    http = client()

    account = http.get(f"/accounts/{account_id}", params={"min_position": reached})
    assert account.status_code == 200, account.text
    assert projection_position(account) == reached
    assert projection_position(http.get("/health/live")) == reached
    for path in (f"/transfers/{uuid.uuid4()}", "/totals"):
        body = assert_problem(http.get(path, params={"min_position": 1}), 412, "projection-behind")
        assert body["projection_position"] == 0


def test_a_transfer_read_waits_for_the_transfer_to_be_projected(
    stack: Stack, writer: ReadModelWriter, client: Callable[[], httpx.Client]
) -> None:
    source, target = writer.open_account("xan"), writer.open_account("yul")
    start_query(stack)
    http = client()
    transfer_id = uuid.uuid4()
    assert_problem(http.get(f"/transfers/{transfer_id}"), 404, "transfer-not-found")
    written = writer.position + 1

    projector = later(lambda: writer.transfer(source, target, 9, transfer_id=transfer_id))
    response = http.get(f"/transfers/{transfer_id}", params={"min_position": written})
    listing = http.get(f"/accounts/{target}/transfers", headers={"X-Min-Position": str(written)})
    projector.join()

    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["amount"]) == ("requested", 9)
    assert [item["transfer_id"] for item in listing.json()["items"]] == [str(transfer_id)]

    finished = writer.position + 1
    projector = later(lambda: writer.finish_transfer(transfer_id, "completed"))
    done = http.get(f"/transfers/{transfer_id}", params={"min_position": finished})
    projector.join()
    assert done.json()["status"] == "completed"
    assert projection_position(done) >= finished


def test_totals_wait_for_the_position(
    stack: Stack, writer: ReadModelWriter, client: Callable[[], httpx.Client]
) -> None:
    start_query(stack)
    written = writer.position + 1

    projector = later(lambda: writer.add_totals("XTS", 70, 1, 1, 0))
    response = client().get("/totals", params={"min_position": written})
    projector.join()

    assert response.status_code == 200, response.text
    assert response.json() == {
        "currencies": [
            {"currency": "XTS", "balance": 70, "accounts": 1, "open_accounts": 1,
             "closed_accounts": 0},
        ]
    }  # fmt: skip


def test_a_missed_notification_is_covered_by_the_slow_poll(
    stack: Stack, writer: ReadModelWriter, client: Callable[[], httpx.Client]
) -> None:
    account_id = writer.open_account("wes")
    start_query(stack, PROJECTION_POLL_SECONDS="0.2")
    written = writer.position + 1

    projector = later(lambda: writer.record(account_id, "deposit", 5, notify=False))
    response = client().get(f"/accounts/{account_id}", params={"min_position": written})
    projector.join()

    assert response.status_code == 200, response.text
    assert response.json()["balance"] == 5


def listener_pids(database_url: str) -> set[int]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
            " AND datname = current_database()",
            (LISTENER_APPLICATION_NAME,),
        ).fetchall()
    return {pid for (pid,) in rows}


def test_the_listener_reconnects_after_its_connection_is_killed(
    stack: Stack, database_url: str, writer: ReadModelWriter, client: Callable[[], httpx.Client]
) -> None:
    account_id = writer.open_account("xia")
    # A poll slower than the wait: only a live LISTEN connection can answer in time.
    start_query(stack, PROJECTION_POLL_SECONDS="60")
    [killed] = listener_pids(database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (killed,))

    deadline = time.monotonic() + 20
    while not (listener_pids(database_url) - {killed}) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert listener_pids(database_url) - {killed}, "the listener never came back"

    written = writer.position + 1
    projector = later(lambda: writer.record(account_id, "deposit", 9))
    response = client().get(f"/accounts/{account_id}", params={"min_position": written})
    projector.join()
    assert response.status_code == 200, response.text
    assert response.json()["balance"] == 9


def test_every_response_carries_a_position_that_never_goes_backwards(
    stack: Stack, writer: ReadModelWriter, client: Callable[[], httpx.Client]
) -> None:
    account_id = writer.open_account("yan")
    start_query(stack, MAX_WAIT_SECONDS="0.2")
    http = client()
    stop = threading.Event()

    def project() -> None:
        while not stop.is_set():
            writer.record(account_id, "deposit", 1)

    projector = threading.Thread(target=project, daemon=True)
    projector.start()
    paths = [
        f"/accounts/{account_id}",
        f"/accounts/{account_id}/transactions?limit=3",
        f"/accounts/{account_id}/transfers?limit=3",
        f"/transfers/{uuid.uuid4()}",
        "/totals",
        "/accounts?owner=yan",
        f"/accounts/{uuid.uuid4()}",
        "/accounts/not-an-id",
        "/accounts?limit=0",
        "/accounts?min_position=999999999",
        "/nowhere",
        "/health/live",
        "/health/ready",
        "/metrics",
        "/schema/openapi.json",
    ]
    seen: list[int] = []
    try:
        for _ in range(3):
            for path in paths:
                response = http.get(path)
                assert response.status_code < 500, (path, response.text)
                seen.append(projection_position(response))
    finally:
        stop.set()
        projector.join()

    assert seen == sorted(seen), "X-Projection-Position went backwards"
    final = http.get(f"/accounts/{account_id}", params={"min_position": writer.position})
    assert final.status_code == 200
    assert projection_position(final) == writer.position >= seen[-1]
