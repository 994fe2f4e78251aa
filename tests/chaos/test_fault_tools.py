"""The fault injectors themselves: a private PostgreSQL that restarts and freezes, and
the proxy that loses a COMMIT's answer after the server committed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from tests.support.postgres_server import PrivatePostgres, private_postgres
from tests.support.tcp_proxy import CommitReplyDroppingProxy

EVENT_INSERT = r"INSERT INTO\s+\S*ledger_events|ledger_append\("


@pytest.fixture(scope="module")
def server() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        server.migrated_database()
        yield server


@pytest.fixture
def proxy(server: PrivatePostgres) -> Iterator[CommitReplyDroppingProxy]:
    proxy = CommitReplyDroppingProxy(server.port).start()
    yield proxy
    proxy.stop()


def _count(url: str, table: str = "marks") -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def marks(server: PrivatePostgres) -> str:
    url = server.url()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS marks")
        conn.execute("CREATE TABLE marks (n int)")
    return url


def test_a_dropped_commit_reply_is_committed_but_never_answered(
    proxy: CommitReplyDroppingProxy, marks: str
) -> None:
    proxy.drop_next_commit_reply()
    with psycopg.connect(proxy.url("ledger")) as conn:
        conn.execute("INSERT INTO marks VALUES (1)")
        with pytest.raises(psycopg.OperationalError):
            conn.commit()
    assert _count(marks) == 1
    assert proxy.commit_replies_dropped == 1 and proxy.drops_pending == 0
    # Disarmed: the next commit is answered.
    with psycopg.connect(proxy.url("ledger")) as conn, conn.transaction():
        conn.execute("INSERT INTO marks VALUES (2)")
    assert _count(marks) == 2 and proxy.commit_replies_dropped == 1


def test_in_pipeline_mode_only_a_matching_transaction_loses_its_reply(
    proxy: CommitReplyDroppingProxy, marks: str
) -> None:
    insert = "INSERT INTO marks VALUES (%s)"
    with psycopg.connect(proxy.url("ledger")) as conn:
        with conn.pipeline(), conn.transaction():
            conn.execute(insert, (1,), prepare=True)  # Parse names the statement once
        proxy.drop_next_commit_reply(touching=r"INSERT INTO\s+marks")
        with conn.pipeline(), conn.transaction():
            conn.execute("SELECT 1")
        assert proxy.commit_replies_dropped == 0
        with pytest.raises(psycopg.OperationalError), conn.pipeline(), conn.transaction():
            conn.execute(insert, (2,), prepare=True)  # only a Bind to the named statement
    assert _count(marks) == 2
    assert proxy.commit_replies_dropped == 1


def test_a_failed_commit_is_answered_and_the_drop_waits_for_the_next(
    proxy: CommitReplyDroppingProxy, marks: str
) -> None:
    proxy.drop_next_commit_reply()
    with psycopg.connect(proxy.url("ledger")) as conn:
        with pytest.raises(psycopg.errors.DivisionByZero):
            conn.execute("SELECT 1 / 0")
        conn.commit()  # the server answers ROLLBACK: nothing committed, nothing dropped
        assert proxy.drops_pending == 1 and proxy.commit_replies_dropped == 0
        conn.execute("INSERT INTO marks VALUES (1)")
        with pytest.raises(psycopg.OperationalError):
            conn.commit()
    assert _count(marks) == 1 and proxy.commit_replies_dropped == 1


def test_an_autocommitted_statement_loses_its_answer_after_committing(
    proxy: CommitReplyDroppingProxy, marks: str
) -> None:
    """The event store's append is one autocommitted statement: its own transaction."""
    insert = "INSERT INTO marks VALUES (%s)"
    proxy.drop_next_commit_reply(touching=r"INSERT INTO\s+marks")
    with psycopg.connect(proxy.url("ledger"), autocommit=True) as conn:
        conn.execute("SELECT count(*) FROM marks")  # not touching: answered
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("INSERT INTO marks_missing VALUES (1)")  # failed: answered, still armed
        assert proxy.drops_pending == 1
        with pytest.raises(psycopg.OperationalError):
            conn.execute(insert, (1,), prepare=True)
    assert _count(marks) == 1
    assert proxy.commit_replies_dropped == 1 and proxy.drops_pending == 0


def test_cut_closes_every_connection(proxy: CommitReplyDroppingProxy, marks: str) -> None:
    conn = psycopg.connect(proxy.url("ledger"), autocommit=True)
    conn.execute("SELECT 1")
    assert proxy.cut() == 1
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1")
    conn.close()
    assert _count(proxy.url("ledger")) == 0


def test_restarts_keep_what_was_committed(server: PrivatePostgres, marks: str) -> None:
    with psycopg.connect(marks, autocommit=True) as conn:
        conn.execute("INSERT INTO marks VALUES (1)")
    server.restart("fast")
    with psycopg.connect(marks, autocommit=True) as conn:
        conn.execute("INSERT INTO marks VALUES (2)")
    server.restart("immediate")
    assert _count(marks) == 2


def test_pause_freezes_the_server_then_it_answers_again(
    server: PrivatePostgres, marks: str
) -> None:
    conn = psycopg.connect(marks, autocommit=True)
    answered = threading.Event()
    pausing = threading.Thread(target=server.pause, args=(2.0,))
    pausing.start()
    time.sleep(0.2)  # the pause has begun (SIGSTOP is immediate)

    def query() -> None:
        conn.execute("SELECT 1")
        answered.set()

    querying = threading.Thread(target=query)
    querying.start()
    assert not answered.wait(1.0), "a frozen server answered"
    pausing.join()
    assert answered.wait(10), "the server never answered after SIGCONT"
    querying.join()
    conn.close()
