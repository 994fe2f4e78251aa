"""An upgrade opens the stores earlier releases wrote, and carries on from them.

Each fixture (``fixtures/<commit>.sql.gz``, written by that commit's own
processes, see :mod:`tests.upgrade.make_fixtures`) holds events, snapshots
taken every five events, read models, transfers that completed and that
failed, closed accounts and idempotency keys, every deposit stored as
``ledger.MoneyDeposited.v1``. It is restored into a scratch database and
migrated as ``make migrate`` does; then every stream replays (its snapshot
plus tail folding to the same state as its whole history), time travel shows
each account mid-history as its replay does, every account and transfer
loads as the independent reference fold of the store says (with its old
snapshot and without), every old snapshot is read (not passed over) as the
account was at its version, every projection rebuilds equal to that fold,
and new commands work on the old accounts.
"""

from __future__ import annotations

import gzip
import io
import json
import subprocess
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import httpx
import psycopg
import pytest

from command_service.event_store import (
    AccountSnapshot,
    LedgerEventStore,
    event_store_env,
    project_account,
)
from command_service.replay.cli import run as replay
from projector.projections import PROJECTIONS
from projector.rebuild.rebuilder import Rebuild, RebuildOptions
from projector.time_travel.cli import as_of
from schema.migrate import migrate
from shared_kernel.language.events import AccountClosed, AccountOpened, LedgerEvent
from tests.support.infra import scratch_database
from tests.support.processes import Stack, complete_transfer
from tests.support.reference_fold import (
    expected_read_models,
    live_read_models,
    stored_events,
    wait_until_projected,
)
from tests.upgrade.make_fixtures import RELEASES, fixture_path

OLD_DEPOSIT = "ledger.MoneyDeposited.v1"
DEPOSIT = "ledger.MoneyDeposited.v2"


@pytest.fixture(params=RELEASES)
def upgraded(request: pytest.FixtureRequest) -> Iterator[str]:
    """A release's store, restored and migrated by this code; its URL."""
    dump = gzip.decompress(fixture_path(request.param).read_bytes())
    with scratch_database(migrated=False) as url:
        subprocess.run(
            ["psql", "--quiet", "--no-psqlrc", "-v", "ON_ERROR_STOP=1", "--dbname", url],
            input=dump, check=True, capture_output=True,
        )  # fmt: skip
        migrate(url)
        yield url


def streams(database_url: str) -> dict[UUID, int]:
    """Every stream of the store and its number of events."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT originator_id, count(*) FROM ledger_events GROUP BY originator_id"
        ).fetchall()
    return {stream: int(count) for stream, count in rows}


def test_the_old_store_holds_what_an_upgrade_must_carry(upgraded: str) -> None:
    topics = Counter(topic for (topic,) in _rows(upgraded, "SELECT topic FROM ledger_events"))
    assert topics[OLD_DEPOSIT] > 100 and topics[DEPOSIT] == 0
    assert {"ledger.TransferCompleted.v1", "ledger.TransferFailed.v1"} <= set(topics)
    assert topics["ledger.AccountClosed.v1"] == 3
    assert _count(upgraded, "ledger_snapshots") > 50
    assert _count(upgraded, "account_balances") == 30


def replayed(database_url: str, stream: UUID) -> list[dict[str, Any]]:
    """``make replay FORMAT=json`` of one stream: its event lines; the check must pass."""
    out, err = io.StringIO(), io.StringIO()
    status = replay([str(stream), "--format", "json", "--database-url", database_url], out, err)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert status == 0, (stream, err.getvalue(), lines[-1:])
    assert lines[-1]["record"] == "check" and lines[-1]["ok"] is True
    return [line for line in lines if line["record"] == "event"]


def test_every_stream_replays_with_old_deposits_read_as_the_current_version(
    upgraded: str,
) -> None:
    read_as: Counter[tuple[str, str]] = Counter()
    channels: set[str] = set()
    for stream, count in streams(upgraded).items():
        events = replayed(upgraded, stream)
        assert len(events) == count
        for event in events:
            read_as[(event["type"], event["read_as"])] += 1
            if event["type"] == OLD_DEPOSIT:
                channels.add(event["data"]["channel"])
    assert read_as[(OLD_DEPOSIT, DEPOSIT)] > 100
    assert not [pair for pair in read_as if pair[0] != pair[1] and pair[0] != OLD_DEPOSIT]
    assert channels == {"api"}


async def test_time_travel_shows_old_accounts_as_their_replay_does(upgraded: str) -> None:
    accounts = expected_read_models(upgraded).balances
    for account in accounts:
        events = replayed(upgraded, account)
        middle = events[len(events) // 2]
        travelled = await as_of(upgraded, account, middle["position"])
        assert travelled.complete, travelled.refused
        (row,) = travelled.tables["account_balances"]
        assert (row["balance"], row["version"]) == (
            middle["state"]["balance"], middle["version"],
        )  # fmt: skip


def test_every_aggregate_loads_as_the_fold_of_its_events_says(upgraded: str) -> None:
    expected = expected_read_models(upgraded)
    store = LedgerEventStore(env=event_store_env(upgraded, pool_size=1))
    try:
        loaded = store.get_accounts(expected.balances)
        one_by_one = {account_id: store.get_account(account_id) for account_id in expected.balances}
        # The old snapshots passed over: each account folded from its events alone.
        from_events = {
            account_id: project_account(
                None, cast(Iterable[LedgerEvent], store.events.get(account_id))
            )
            for account_id in expected.balances
        }
        transfers = store.get_transfers(expected.transfers)
        transfers_one_by_one = {t: store.get_transfer(t) for t in expected.transfers}
    finally:
        store.close()
    for account_id, row in expected.balances.items():
        for account in (loaded[account_id], one_by_one[account_id], from_events[account_id]):
            assert account is not None
            assert (account.owner, account.currency, account.balance, account.status,
                    account.version) == (
                row.owner, row.currency, row.balance, row.status, row.version,
            )  # fmt: skip
            assert not account.pending_transfers  # every old transfer is terminal
    for transfer_id, transfer_row in expected.transfers.items():
        for transfer in (transfers[transfer_id], transfers_one_by_one[transfer_id]):
            assert transfer is not None
            assert (transfer.from_account, transfer.to_account, transfer.amount,
                    transfer.currency, transfer.status, transfer.reason, transfer.version) == (
                transfer_row.from_account, transfer_row.to_account, transfer_row.amount,
                transfer_row.currency, transfer_row.status, transfer_row.reason,
                transfer_row.version,
            )  # fmt: skip


def test_every_old_snapshot_reads_as_the_fold_at_its_version(upgraded: str) -> None:
    """Old snapshots are read, not passed over, and each holds the account as it was."""
    expected = expected_read_models(upgraded)
    at_version = states_by_version(upgraded)
    store = LedgerEventStore(env=event_store_env(upgraded, pool_size=1))
    try:
        assert store.snapshots is not None
        snapshots = [s for a in expected.balances for s in store.snapshots.get(a)]
    finally:
        store.close()
    assert len(snapshots) == _count(upgraded, "ledger_snapshots")
    for snapshot in snapshots:
        assert isinstance(snapshot, AccountSnapshot)
        account, row = snapshot.state, expected.balances[snapshot.originator_id]
        assert account.id == snapshot.originator_id
        assert account.version == snapshot.originator_version
        assert (account.owner, account.currency, account.balance, account.status) == (
            row.owner, row.currency, *at_version[(account.id, account.version)],
        )  # fmt: skip


def states_by_version(database_url: str) -> dict[tuple[UUID, int], tuple[int, str]]:
    """(balance, status) of every account after each of its versions, from the stored
    events and the reference fold's running balances."""
    balance_after = {
        (row.account_id, row.version): row.balance_after
        for row in expected_read_models(database_url).transactions.values()
    }
    states: dict[tuple[UUID, int], tuple[int, str]] = {}
    latest: dict[UUID, tuple[int, str]] = {}
    for _, event in stored_events(database_url):
        key = (event.originator_id, event.originator_version)
        if isinstance(event, AccountOpened):
            latest[event.originator_id] = (0, "open")
        elif event.originator_id not in latest:
            continue  # a transfer's stream
        balance, status = latest[event.originator_id]
        if isinstance(event, AccountClosed):
            status = "closed"
        latest[event.originator_id] = states[key] = (balance_after.get(key, balance), status)
    return states


async def test_every_projection_rebuilds_equal_to_the_fold(upgraded: str) -> None:
    for projection in PROJECTIONS:
        job = Rebuild(upgraded, projection, RebuildOptions(batch_size=97, swap_within=0))
        await job.claim()
        final = await job.run()
        assert final.state == "swapped", final
    assert live_read_models(upgraded) == expected_read_models(upgraded)


@pytest.mark.processes
def test_new_commands_work_on_the_old_accounts(
    upgraded: str, stream_name: str, tmp_path: Path
) -> None:
    before = expected_read_models(upgraded).balances
    by_currency: dict[str, list[UUID]] = {}
    for account_id, row in sorted(before.items(), key=lambda item: -item[1].balance):
        if row.status == "open":
            by_currency.setdefault(row.currency, []).append(account_id)
    source, target = next(ids for ids in by_currency.values() if len(ids) >= 2)[:2]
    stack = Stack(database_url=upgraded, stream_name=stream_name, log_dir=tmp_path).start()
    try:
        command = stack.process("command").url
        deposit = httpx.post(
            f"{command}/accounts/{source}/deposits", json={"amount": 250, "channel": "card"}
        )
        assert deposit.status_code == 200, deposit.text
        withdrawal = httpx.post(f"{command}/accounts/{target}/withdrawals", json={"amount": 1})
        assert withdrawal.status_code == 200, withdrawal.text
        complete_transfer(stack, source, target, 100)
        wait_until_projected(upgraded)
        after = expected_read_models(upgraded)
        assert after.balances[source].balance == before[source].balance + 250 - 100
        assert after.balances[target].balance == before[target].balance - 1 + 100
        assert live_read_models(upgraded) == after
        channels = Counter(getattr(e, "channel", None) for _, e in stored_events(upgraded))
        assert channels["card"] == 1 and channels["api"] > 100
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.stop()


def _rows(database_url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(query).fetchall()


def _count(database_url: str, table: str) -> int:
    return int(_rows(database_url, f"SELECT count(*) FROM {table}")[0][0])
