"""A batch costs a fixed, small number of round trips, whatever it holds.

Every round trip of the batch transaction is time the checkpoint rows stay
locked and the projector waits; the count must not grow with the number of
events or projections unnoticed. The proxy in front of PostgreSQL counts the
times the projector's connection asked for answers, an oracle outside the
code under test.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from psycopg import AsyncConnection

from projector.batch import BatchApplier
from shared_kernel.event_log import read_log
from tests.support.ledger_writer import LedgerWriter
from tests.support.reference_fold import expected_read_models, live_read_models
from tests.support.tcp_proxy import CommitReplyDroppingProxy
from tests.support.transfer_writer import TransferWriter

#: At most, for a batch that touches every projection, whatever its size: BEGIN, lock
#: the checkpoints (with the streams' blocks and the store's head), one read for each
#: projection that keeps state (balances, statement lines, transfers, holds), the
#: openings lookup of the delta projections when an account opened before the batch,
#: every projection's writes with the checkpoints' advance and NOTIFY, COMMIT. (The
#: writes went one statement each: 12 round trips for this test's batches.)
BATCH_ROUND_TRIPS = 9


@pytest.fixture
def proxy(database_url: str) -> Iterator[CommitReplyDroppingProxy]:
    proxy = CommitReplyDroppingProxy(urlsplit(database_url).port or 5432).start()
    yield proxy
    proxy.stop()


async def _round_trips_of_a_batch(
    database_url: str, proxy: CommitReplyDroppingProxy, applier: BatchApplier, after: int
) -> tuple[int, int]:
    """(round trips, last position) of applying everything after ``after`` in one batch."""
    url = proxy.url(urlsplit(database_url).path.lstrip("/"))
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        log = await read_log(conn, after=after, limit=10_000)
        proxy.clear_round_trips()
        outcome = await applier.apply(conn, log)
        trips = len(proxy.round_trips())
    return trips, outcome.checkpoint


@pytest.mark.parametrize("events", [40, 400])
async def test_a_batch_of_every_kind_of_event_takes_a_fixed_number_of_round_trips(
    database_url: str,
    writer: LedgerWriter,
    applier: BatchApplier,
    proxy: CommitReplyDroppingProxy,
    events: int,
) -> None:
    writer.write_random(events)
    transfers = TransferWriter(writer)
    source, target = writer.open(), writer.open()
    writer.deposit(source, 1_000)
    for outcome in ("completed", "refunded", "failed"):
        transfers.transfer(source, target, 10, outcome)  # type: ignore[arg-type]

    # The first batch of a database creates the checkpoint rows: not the everyday cost.
    _, applied = await _round_trips_of_a_batch(database_url, proxy, applier, after=0)
    writer.write_random(events)
    for outcome in ("completed", "refunded", "failed"):
        transfers.transfer(source, target, 10, outcome)  # type: ignore[arg-type]

    trips, _ = await _round_trips_of_a_batch(database_url, proxy, applier, after=applied)

    assert trips <= BATCH_ROUND_TRIPS, [t[0][:60] if t else "" for t in proxy.round_trips()]
    assert live_read_models(database_url) == expected_read_models(database_url)
