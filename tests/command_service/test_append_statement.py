"""The append is one statement: one round trip, its own transaction, snapshots inside it.

The table lock every append takes serialises all writers, so what matters is
how long it is held: here only while the server runs ``ledger_append``, never
while it waits for the client. The proxy in front of PostgreSQL sees what the
client sends and when it waits for answers, an oracle independent of the code
under test.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit
from uuid import UUID

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError

from command_service.domain.account import Account, apply, deposit, open_account
from command_service.event_store import LedgerEventStore, event_store_env
from command_service.recorder import CommandRecord, refused_by_recorded_command
from shared_kernel.language.events import EventMetadata, LedgerEvent
from tests.support.sql import rows, value
from tests.support.tcp_proxy import CommitReplyDroppingProxy


def _metadata() -> EventMetadata:
    cause = str(uuid.uuid4())
    return EventMetadata(correlation_id=cause, causation_id=cause)


def _through(proxy: CommitReplyDroppingProxy, database_url: str) -> str:
    return proxy.url(urlsplit(database_url).path.lstrip("/"))


@pytest.fixture
def proxy(database_url: str) -> Iterator[CommitReplyDroppingProxy]:
    proxy = CommitReplyDroppingProxy(urlsplit(database_url).port or 5432).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def store(proxy: CommitReplyDroppingProxy, database_url: str) -> Iterator[LedgerEventStore]:
    store = LedgerEventStore(env=event_store_env(_through(proxy, database_url), pool_size=1))
    yield store
    store.close()


def _opened(store: LedgerEventStore) -> Account:
    event = open_account(uuid.uuid4(), "alice", "EUR", _metadata())
    store.record([event], [CommandRecord(uuid.uuid4(), event.originator_id, 1)])
    account = apply(None, event)
    assert account is not None
    return account


def _deposits(account: Account, count: int) -> tuple[list[LedgerEvent], Account]:
    events: list[LedgerEvent] = []
    for _ in range(count):
        event = deposit(account, 100, None, None, _metadata())
        events.append(event)
        after = apply(account, event)
        assert after is not None
        account = after
    return events, account


def _snapshot_versions(database_url: str, account_id: UUID) -> list[int]:
    query = (
        "SELECT originator_version FROM ledger_snapshots WHERE originator_id = %s"
        " ORDER BY originator_version"
    )
    return [int(version) for (version,) in rows(database_url, query, (account_id,))]


def test_an_append_with_commands_and_a_snapshot_is_one_statement_in_one_round_trip(
    store: LedgerEventStore, proxy: CommitReplyDroppingProxy, database_url: str
) -> None:
    account = _opened(store)
    events, after = _deposits(account, 3)
    commands = [CommandRecord(uuid.uuid4(), e.originator_id, e.originator_version) for e in events]
    proxy.clear_round_trips()

    positions = store.record(events, commands, snapshots=[after])

    appends = [trip for trip in proxy.round_trips() if any(trip)]  # not the pool's empty ping
    assert len(appends) == 1, appends
    (statements,) = appends
    assert len(statements) == 1 and "ledger_append(" in statements[0], statements
    assert len(positions) == 3 and positions == sorted(positions)
    assert _snapshot_versions(database_url, account.id) == [after.version]


def test_a_refused_append_leaves_no_snapshot_and_no_command(
    store: LedgerEventStore, database_url: str
) -> None:
    account = _opened(store)
    events, after = _deposits(account, 2)
    recorded = CommandRecord(uuid.uuid4(), account.id, 2)
    store.record(events[:1], [recorded])

    # The same command again, with a snapshot due: refused as a whole.
    with pytest.raises(IntegrityError) as refused:
        store.record(events[1:], [recorded], snapshots=[after])
    assert refused_by_recorded_command(refused.value)
    # A taken version: refused as a whole too, and told apart from the command.
    with pytest.raises(IntegrityError) as conflict:
        store.record(events[:1], [CommandRecord(uuid.uuid4(), account.id, 2)], snapshots=[after])
    assert not refused_by_recorded_command(conflict.value)

    assert _snapshot_versions(database_url, account.id) == []
    commands = "SELECT count(*) FROM ledger_commands WHERE originator_id = %s"
    assert value(database_url, commands, (account.id,)) == 2  # the opening and the first deposit
    assert store.get_account(account.id).version == 2


def test_positions_follow_commit_order_under_concurrent_appenders(database_url: str) -> None:
    """A reader tailing the log never finds a position below one it has already seen:
    each append's positions are taken and committed while it holds the table lock,
    so no gap it passed over fills in later."""
    stores = [LedgerEventStore(env=event_store_env(database_url, pool_size=1)) for _ in range(4)]
    writing = threading.Event()
    writing.set()
    late: list[tuple[int, int]] = []
    seen: set[int] = set()

    def tail() -> None:
        highest = 0
        with psycopg.connect(database_url, autocommit=True) as conn:
            while True:
                done = not writing.is_set()
                rows = conn.execute("SELECT notification_id FROM ledger_events").fetchall()
                new = sorted(int(r[0]) for r in rows if int(r[0]) not in seen)
                late.extend((position, highest) for position in new if position < highest)
                seen.update(new)
                highest = max([highest, *new])
                if done:
                    return

    def append_many(store: LedgerEventStore) -> None:
        account = _opened(store)
        for _ in range(40):
            events, account = _deposits(account, 2)
            store.record(events)

    reader = threading.Thread(target=tail)
    reader.start()
    writers = [threading.Thread(target=append_many, args=(s,)) for s in stores]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    writing.clear()
    reader.join()
    for store in stores:
        store.close()

    assert len(seen) == 4 * (1 + 40 * 2)
    assert late == []
