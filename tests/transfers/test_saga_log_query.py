"""The saga reads only the transfer events it acts on, without their payload.

Checked against real PostgreSQL: what the query returns equals the log
filtered in Python (the independent answer), and its plan (EXPLAIN VERBOSE)
names only transfer topics and outputs no ``state``. A pass over a log of
deposits with one transfer request in the middle advances that transfer and
ends at the head.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import psycopg

from command_service.domain.transfer import TRANSFER_EVENTS
from command_service.event_store import LedgerEventStore, event_store_env
from command_service.settings import TransferSagaSettings
from command_service.transfer_saga.log_reading import (
    ACTIONABLE,
    ACTIONABLE_TOPICS,
    Actionable,
    actionable_events,
)
from command_service.transfer_saga.saga import TransferSaga
from command_service.transfer_saga.steps import TransferSteps
from shared_kernel.event_log import head_position, read_log
from shared_kernel.worker_app import operations_pool
from tests.support.ledger_writer import LedgerWriter
from tests.support.transfer_writer import TransferWriter


async def connect(database_url: str) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(database_url, autocommit=True)


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _mixed_history(writer: LedgerWriter) -> None:
    """Deposits, and transfers left at each stage: requested, debited, completed, failed."""
    transfers = TransferWriter(writer)
    alice, bob = writer.open(), writer.open()
    writer.deposit(alice, 1_000)
    requested = transfers.request(alice, bob, 10)
    debited = transfers.request(alice, bob, 20)
    transfers.debit(debited)
    completed = transfers.request(alice, bob, 30)
    transfers.debit(completed)
    transfers.complete(completed)
    transfers.fail(transfers.request(bob, alice, 5_000))
    for amount in range(1, 6):
        writer.deposit(bob, amount)
    assert requested


async def test_the_query_returns_exactly_the_actionable_transfer_events(
    database_url: str, writer: LedgerWriter
) -> None:
    _mixed_history(writer)
    async with await connect(database_url) as conn:
        head = await head_position(conn)
        log = await read_log(conn, 0, 10_000)
        found = await actionable_events(conn, 0, head, 1_000)
        first_two = await actionable_events(conn, 0, head, 2)
        below = await actionable_events(conn, 0, found[2].position - 1, 1_000)

    expected = [
        Actionable(e.position, e.stream_id, e.version) for e in log if e.topic in ACTIONABLE_TOPICS
    ]
    assert found == expected
    assert len(found) == 6  # four requests, two debits
    assert first_two == found[:2]
    assert below == found[:2]


async def test_the_plan_reads_only_the_transfer_steps_index_and_no_payload(
    database_url: str, writer: LedgerWriter
) -> None:
    _mixed_history(writer)
    async with await connect(database_url) as conn:
        # A history this short fits in a page, where a sequential scan wins; the
        # question is which index the planner can use for the saga's statement.
        await conn.execute("SET enable_seqscan = off")
        cursor = await conn.execute(f"EXPLAIN (VERBOSE, FORMAT JSON) {ACTIONABLE}", (0, 100, 10))
        row = await cursor.fetchone()
    assert row is not None
    document = row[0] if isinstance(row[0], list) else json.loads(row[0])
    nodes = list(_nodes(document[0]["Plan"]))

    outputs = [column for node in nodes for column in node.get("Output", [])]
    assert outputs and not any("state" in column for column in outputs), outputs
    scans = {node.get("Index Name") for node in nodes if "Scan" in node["Node Type"]}
    assert scans == {"ledger_events_transfer_steps"}, nodes


async def test_the_index_holds_exactly_the_topics_the_saga_asks_for(database_url: str) -> None:
    transfer_topics = {cls.TOPIC for cls in TRANSFER_EVENTS}
    assert set(ACTIONABLE_TOPICS) <= transfer_topics
    async with await connect(database_url) as conn:
        cursor = await conn.execute(
            "SELECT pg_get_indexdef(indexrelid) FROM pg_index"
            " WHERE indexrelid = 'ledger_events_transfer_steps'::regclass"
        )
        row = await cursor.fetchone()
    assert row is not None
    assert set(re.findall(r"ledger\.\w+\.v\d+", row[0])) == set(ACTIONABLE_TOPICS), row[0]


async def test_a_pass_advances_the_transfer_among_deposits_and_ends_at_the_head(
    database_url: str, writer: LedgerWriter
) -> None:
    transfers = TransferWriter(writer)
    alice, bob = writer.open(), writer.open()
    for amount in range(1, 51):
        writer.deposit(alice, amount)
    transfer_id = transfers.request(alice, bob, 100)
    for amount in range(1, 51):
        writer.deposit(bob, amount)

    settings = TransferSagaSettings(database_url=database_url)
    store = LedgerEventStore(env=event_store_env(settings.database_url, pool_size=1))
    saga = TransferSaga(
        settings, operations_pool(settings.database_url, "test"), TransferSteps(store)
    )
    try:
        async with await connect(settings.database_url) as reader:
            head = await head_position(reader)
            position = await saga._follow(reader, 0)
    finally:
        store.close()

    assert position >= head
    transfer = writer.store.get_transfer(transfer_id)
    assert transfer is not None and transfer.status == "completed"
