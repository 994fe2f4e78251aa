"""Transfers in the read models: legs on statements, the transfers table, currency totals.

Histories are written into the real event store as the saga records them
(``tests.support.transfer_writer``) and applied with the projector's own
batch code; the read models must equal the independent reference fold.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import AsyncConnection
from redis.asyncio import Redis

from projector.batch import BatchApplier
from shared_kernel.event_log import read_log
from shared_kernel.language.events import EventMetadata, TransferCompleted
from tests.support.ledger_writer import LedgerWriter
from tests.support.reference_fold import (
    PROJECTION_NAMES,
    checkpoints,
    expected_read_models,
    live_read_models,
    store_head,
)
from tests.support.transfer_writer import TransferWriter


@pytest.fixture
def transfers(writer: LedgerWriter) -> Iterator[TransferWriter]:
    yield TransferWriter(writer)


async def project_all(database_url: str, applier: BatchApplier, batch: int = 1_000) -> None:
    async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
        log = await read_log(conn, after=0, limit=100_000)
        for start in range(0, len(log), batch):
            await applier.apply(conn, log[start : start + batch])


def statement(database_url: str, account_id: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT kind, amount, balance_after, counterparty, transfer_id"
            " FROM account_transactions WHERE account_id = %s ORDER BY version",
            (account_id,),
        ).fetchall()


async def test_every_outcome_lands_in_every_read_model(
    database_url: str, writer: LedgerWriter, transfers: TransferWriter, applier: BatchApplier
) -> None:
    alice, bob = writer.open("alice"), writer.open("bob")
    yen = writer.open("carol", currency="JPY")
    writer.deposit(alice, 1_000)
    writer.deposit(yen, 50)
    completed = transfers.transfer(alice, bob, 300)
    refunded = transfers.transfer(alice, bob, 200, "refunded")
    failed = transfers.transfer(bob, alice, 5_000, "failed")
    halfway = transfers.transfer(alice, bob, 100, "debited")
    writer.withdraw(bob, 50)

    await project_all(database_url, applier, batch=3)

    live = live_read_models(database_url)
    assert live == expected_read_models(database_url)
    assert {t: live.transfers[t].status for t in (completed, refunded, failed, halfway)} == {
        completed: "completed",
        refunded: "refunded",
        failed: "failed",
        halfway: "debited",
    }
    assert live.transfers[refunded].reason == "target account is closed"
    assert live.transfers[failed].reason == "insufficient funds"
    assert live.transfers[halfway].finished_at is None
    assert (live.balances[alice].balance, live.balances[bob].balance) == (600, 250)
    assert statement(database_url, alice) == [
        ("deposit", 1_000, 1_000, None, None),
        ("transfer_out", 300, 700, bob, completed),
        ("transfer_out", 200, 500, bob, refunded),
        ("refund", 200, 700, bob, refunded),
        ("transfer_out", 100, 600, bob, halfway),
    ]
    assert statement(database_url, bob) == [
        ("transfer_in", 300, 300, alice, completed),
        ("withdrawal", 50, 250, None, None),
    ]
    # open, deposit, out + settled, out + refund, out: TransferSettled moved the
    # version without a line or a balance change.
    assert live.balances[alice].version == 7
    eur, jpy = live.totals["EUR"], live.totals["JPY"]
    assert (eur.balance, eur.accounts, eur.open_accounts, eur.closed_accounts) == (850, 2, 2, 0)
    assert (jpy.balance, jpy.accounts) == (50, 1)
    assert checkpoints(database_url) == dict.fromkeys(PROJECTION_NAMES, store_head(database_url))


async def test_totals_count_closed_accounts_opened_in_an_earlier_batch(
    database_url: str, writer: LedgerWriter, transfers: TransferWriter, applier: BatchApplier
) -> None:
    source, target = writer.open("dana"), writer.open("eli")
    writer.deposit(source, 40)
    await project_all(database_url, applier)
    transfers.transfer(source, target, 40)
    writer.close(source)

    await project_all(database_url, applier)

    live = live_read_models(database_url)
    assert live == expected_read_models(database_url)
    eur = live.totals["EUR"]
    assert (eur.balance, eur.accounts, eur.open_accounts, eur.closed_accounts) == (40, 2, 1, 1)


async def test_a_transfer_event_out_of_order_is_dead_lettered_not_shown(
    *,
    database_url: str,
    writer: LedgerWriter,
    transfers: TransferWriter,
    applier: BatchApplier,
    redis: Redis,
    stream_name: str,
) -> None:
    source, target = writer.open("fay"), writer.open("gus")
    writer.deposit(source, 10)
    transfer_id = transfers.request(source, target, 10)
    # Completed without ever being debited: the published language forbids it.
    writer.store.save(
        TransferCompleted(
            originator_id=transfer_id,
            originator_version=2,
            metadata=EventMetadata(correlation_id="bad", causation_id="bad"),
        )
    )

    await project_all(database_url, applier)

    row = live_read_models(database_url).transfers[transfer_id]
    assert (row.status, row.version) == ("requested", 1)
    parked: list[tuple[bytes, dict[bytes, bytes]]] = await redis.xrange(
        f"{stream_name}:dead-letter"
    )  # type: ignore[assignment]
    [(_, fields)] = parked
    assert b"needs debited" in fields[b"dead_letter_error"]
    assert set(checkpoints(database_url).values()) == {store_head(database_url)}
