"""Helpers of the rebuild tests: a history with transfers, projected by the real batch code."""

from __future__ import annotations

import itertools

import psycopg
from psycopg import AsyncConnection
from redis.asyncio import Redis

from projector.batch import BatchApplier
from projector.dead_letters import DeadLetters
from projector.projections import PROJECTIONS
from shared_kernel.event_log import read_log
from tests.support.infra import REDIS_URL
from tests.support.ledger_writer import LedgerWriter
from tests.support.sql import rows, value
from tests.support.transfer_writer import Outcome, TransferWriter

TOKEN = "test-admin-token-7f3a"


def write_history(writer: LedgerWriter, seed: int, events: int = 80) -> None:
    """Opens, deposits, withdrawals, closes, and transfers ending every way they can."""
    writer.write_random(events, seed=seed)
    emptied = writer.open("carol", currency="USD")
    writer.deposit(emptied, 500)
    writer.withdraw(emptied, 500)
    writer.close(emptied)
    transfers = TransferWriter(writer)
    endings: tuple[Outcome, ...] = ("completed", "refunded", "failed", "debited", "completed")
    outcomes = itertools.cycle(endings)
    funded = [a for a in writer.accounts.values() if a.status == "open" and a.balance > 1]
    for source in funded[:6]:
        target = writer.open("payee", currency=source.currency)
        transfers.transfer(source.id, target, source.balance // 2, next(outcomes))


async def project(database_url: str, dead_letters: str) -> None:
    """Everything in the store, through the projector's BatchApplier (stale ones left alone)."""
    async with Redis.from_url(REDIS_URL) as client:
        applier = BatchApplier(PROJECTIONS, DeadLetters(client, dead_letters))
        async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
            after = 0
            while entries := await read_log(conn, after=after, limit=250):
                outcome = await applier.apply(conn, entries)
                assert not outcome.dead_lettered, outcome.dead_lettered
                after = entries[-1].position


def table_oid(database_url: str, table: str) -> int:
    """The table an unqualified name finds (a swap moves another one under the name)."""
    oid = value(database_url, "SELECT to_regclass(%s)::oid", (table,))
    assert oid is not None, table
    return int(oid)


def schemas(database_url: str) -> set[str]:
    query = (
        "SELECT nspname FROM pg_namespace"
        " WHERE nspname LIKE 'rebuild\\_%' OR nspname LIKE 'retired\\_%'"
    )
    return {name for (name,) in rows(database_url, query)}


def versions(database_url: str) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        return dict(conn.execute("SELECT projection, version FROM projection_checkpoints"))


