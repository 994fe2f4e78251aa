"""``make replay STREAM=..``: each event and the state after it, then snapshot + tail vs full fold.

The expected output is written out by hand from the history each test records
(its amounts, and the positions and times the store gave them), so a change in
what the replay prints or folds shows up as a plain diff.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import datetime

import msgspec
import psycopg
import pytest

from command_service.domain.account import Account
from command_service.event_store import AccountSnapshot
from shared_kernel.language.events import EventMetadata
from shared_kernel.language.retired_events import MoneyDeposited as MoneyDepositedV1
from shared_kernel.settings import SNAPSHOTS_TABLE
from tests.replay.conftest import appended_with_snapshots, recorded, replay
from tests.support.ledger_writer import LedgerWriter
from tests.support.processes import PROJECT_ROOT
from tests.support.sql import rows
from tests.support.transfer_writer import TransferWriter


def snapshot_versions(database_url: str, stream_id: uuid.UUID) -> list[int]:
    query = (
        f"SELECT originator_version FROM {SNAPSHOTS_TABLE} WHERE originator_id = %s"
        " ORDER BY originator_version"
    )
    return [version for (version,) in rows(database_url, query, (stream_id,))]


def test_text_replay_is_each_event_then_its_state_then_the_check(
    database_url: str, writer: LedgerWriter
) -> None:
    account = writer.open("alice", "EUR")
    writer.deposit(account, 1000, "salary")
    writer.withdraw(account, 1000, "rent")
    writer.close(account)
    v1, v2, v3, v4 = recorded(database_url, account)

    result = replay(database_url, str(account))

    assert result.code == 0, result.err
    assert result.err == ""
    assert result.lines == [
        f"account {account}: 4 events (v1..v4)",
        f"v1 @{v1.position} {v1.at.isoformat()} ledger.AccountOpened.v1"
        ' {"owner":"alice","currency":"EUR"}',
        "    -> balance 0 EUR, open",
        f"v2 @{v2.position} {v2.at.isoformat()} ledger.MoneyDeposited.v2"
        ' {"amount":1000,"currency":"EUR","reference":"salary","channel":"api"}',
        "    -> balance 1000 EUR, open",
        f"v3 @{v3.position} {v3.at.isoformat()} ledger.MoneyWithdrawn.v1"
        ' {"amount":1000,"currency":"EUR","reference":"rent"}',
        "    -> balance 0 EUR, open",
        f"v4 @{v4.position} {v4.at.isoformat()} ledger.AccountClosed.v1 {{}}",
        "    -> balance 0 EUR, closed",
        "no snapshot; full fold of 4 events only",
    ]


def test_json_replay_is_one_record_per_line_with_the_full_state(
    database_url: str, writer: LedgerWriter
) -> None:
    account = writer.open("bob", "JPY")
    writer.deposit(account, 700)
    opened, deposited = recorded(database_url, account)

    result = replay(database_url, str(account), "--format", "json")

    assert result.code == 0, result.err
    first, second, check = (json.loads(line) for line in result.lines)
    for line, event in ((first, opened), (second, deposited)):
        assert datetime.fromisoformat(line.pop("recorded_at")) == event.at
        assert line.pop("metadata").keys() == {"correlation_id", "causation_id"}
    state = {
        "id": str(account), "version": 1, "owner": "bob", "currency": "JPY", "balance": 0,
        "status": "open", "opened_at": opened.at, "modified_at": opened.at,
        "pending_transfers": [], "held": 0, "holds": [],
    }  # fmt: skip
    for line in (first, second):
        line["state"]["opened_at"] = datetime.fromisoformat(line["state"]["opened_at"])
        line["state"]["modified_at"] = datetime.fromisoformat(line["state"]["modified_at"])
    assert first == {
        "record": "event", "stream": str(account), "kind": "account", "version": 1,
        "position": opened.position, "type": "ledger.AccountOpened.v1",
        "read_as": "ledger.AccountOpened.v1",
        "data": {"owner": "bob", "currency": "JPY"}, "state": state,
    }  # fmt: skip
    assert second == {
        "record": "event", "stream": str(account), "kind": "account", "version": 2,
        "position": deposited.position, "type": "ledger.MoneyDeposited.v2",
        "read_as": "ledger.MoneyDeposited.v2",
        "data": {"amount": 700, "currency": "JPY", "reference": None, "channel": "api"},
        "state": {**state, "version": 2, "balance": 700, "modified_at": deposited.at},
    }  # fmt: skip
    assert check == {
        "record": "check", "stream": str(account), "ok": True, "events": 2,
        "snapshot_version": None, "tail_events": None,
        "message": "no snapshot; full fold of 2 events only",
    }  # fmt: skip


def test_snapshot_plus_tail_is_checked_against_the_full_fold_up_to_any_version(
    database_url: str,
) -> None:
    account = appended_with_snapshots(database_url, [10] * 6 + [-5], interval=3)
    assert snapshot_versions(database_url, account) == [3, 6]

    head = replay(database_url, str(account))
    assert head.code == 0, head.err
    assert head.lines[0] == f"account {account}: 8 events (v1..v8)"
    assert [line for line in head.lines if line.startswith("    -> ")] == [
        f"    -> balance {balance} USD, open" for balance in (0, 10, 20, 30, 40, 50, 60, 55)
    ]
    assert head.lines[-1] == "snapshot at v6 + 2 events == full fold of 8 events: OK"

    middle = replay(database_url, str(account), "--version", "5")
    assert middle.code == 0, middle.err
    assert middle.lines[0] == f"account {account}: 8 events (v1..v8), showing v1..v5"
    assert len([line for line in middle.lines if line.startswith("v")]) == 5
    assert middle.lines[-2] == "    -> balance 40 USD, open"
    assert middle.lines[-1] == "snapshot at v3 + 2 events == full fold of 5 events: OK"

    early = replay(database_url, str(account), "--version", "2", "--format", "json")
    assert early.code == 0, early.err
    assert [json.loads(line)["record"] for line in early.lines] == ["event", "event", "check"]
    assert json.loads(early.lines[-1])["message"] == (
        "no snapshot at or below v2; full fold of 2 events only"
    )

    exact = replay(database_url, str(account), "--version", "6")
    assert exact.lines[-1] == "snapshot at v6 + 0 events == full fold of 6 events: OK"


def _insert_snapshot(database_url: str, account: uuid.UUID, version: int, state: bytes) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(
            f"INSERT INTO {SNAPSHOTS_TABLE} (originator_id, originator_version, topic, state)"
            " VALUES (%s, %s, %s, %s)",
            (account, version, AccountSnapshot.TOPIC, state),
        )


def test_a_snapshot_that_disagrees_with_the_history_fails_the_check(database_url: str) -> None:
    account = appended_with_snapshots(database_url, [10] * 6 + [-5], interval=3)
    v7 = json.loads(replay(database_url, str(account), "--format", "json").lines[6])
    assert v7["version"] == 7
    # A snapshot at v7 claiming a balance the history never had.
    at_v7 = msgspec.structs.replace(msgspec.convert(v7["state"], Account), balance=999)
    bogus = AccountSnapshot(originator_id=account, originator_version=7, state=at_v7)
    _insert_snapshot(database_url, account, 7, msgspec.json.encode(bogus))

    result = replay(database_url, str(account))

    assert result.code == 1
    assert result.lines[-1] == (
        "MISMATCH: snapshot at v7 + 1 event != full fold of 8 events;"
        " they differ in balance: 994 vs 55;"
        " the snapshot itself differs from the fold of v1..v7 in balance: 999 vs 60"
    )
    assert result.err == f"replay: stream {account}: {result.lines[-1]}\n"
    # Below the bogus snapshot the real one at v6 is used, and agrees.
    assert replay(database_url, str(account), "--version", "6").code == 0


def test_a_snapshot_that_does_not_decode_fails_the_check(database_url: str) -> None:
    account = appended_with_snapshots(database_url, [10, 10], interval=100)
    _insert_snapshot(database_url, account, 2, b'{"not": "an account"}')

    result = replay(database_url, str(account), "--format", "json")

    assert result.code == 1
    check = json.loads(result.lines[-1])
    assert check["ok"] is False and check["snapshot_version"] == 2
    assert check["message"].startswith("MISMATCH: snapshot at v2 cannot be decoded (")


def test_a_transfer_stream_replays_with_the_transfer_state(
    database_url: str, writer: LedgerWriter
) -> None:
    transfers = TransferWriter(writer)
    source, target = writer.open("carol", "EUR"), writer.open("dan", "EUR")
    writer.deposit(source, 800)
    transfer = transfers.transfer(source, target, 500, "completed")
    requested, debited, completed = recorded(database_url, transfer)

    result = replay(database_url, str(transfer))

    assert result.code == 0, result.err
    moved = f"500 EUR from {source} to {target}"
    assert result.lines == [
        f"transfer {transfer}: 3 events (v1..v3)",
        f"v1 @{requested.position} {requested.at.isoformat()} ledger.TransferRequested.v1"
        f' {{"from_account":"{source}","to_account":"{target}","amount":500,"currency":"EUR"}}',
        f"    -> requested: {moved}",
        f"v2 @{debited.position} {debited.at.isoformat()} ledger.TransferDebited.v1 {{}}",
        f"    -> debited: {moved}",
        f"v3 @{completed.position} {completed.at.isoformat()} ledger.TransferCompleted.v1 {{}}",
        f"    -> completed: {moved}",
        "transfer streams are not snapshotted; full fold of 3 events only",
    ]
    states = [line for line in replay(database_url, str(source)).lines if "->" in line]
    assert states == [
        "    -> balance 0 EUR, open",
        "    -> balance 800 EUR, open",
        f"    -> balance 300 EUR, open, pending transfers: {transfer}",
        "    -> balance 300 EUR, open",
    ]


def test_an_unknown_or_malformed_id_is_one_line_on_stderr_and_exit_2(database_url: str) -> None:
    unknown = uuid.uuid4()
    result = replay(database_url, str(unknown))
    assert (result.code, result.out) == (2, "")
    assert result.err == f"replay: no stream {unknown} in the event store\n"

    result = replay(database_url, "not-an-id")
    assert (result.code, result.out) == (2, "")
    assert result.err == (
        "replay: STREAM must be an account or transfer id (a UUID), not 'not-an-id'\n"
    )
    with pytest.raises(SystemExit) as exited:
        replay(database_url, str(unknown), "--version", "0")
    assert exited.value.code == 2


def test_the_module_runs_as_a_command(database_url: str, writer: LedgerWriter) -> None:
    account = writer.open("erin", "EUR")
    env = {"DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "command_service.replay"]
    done = subprocess.run(
        [*command, str(account)], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "no snapshot; full fold of 1 event only"
    missing = subprocess.run(
        [*command, str(uuid.uuid4())], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    assert missing.returncode == 2
    assert len(missing.stderr.splitlines()) == 1


def test_make_replay_dispatches_on_its_variables() -> None:
    """``make -n`` shows the command each form of ``make replay`` runs, without running it."""

    def planned(*variables: str) -> str:
        done = subprocess.run(
            ["make", "-n", "--no-print-directory", *variables], cwd=PROJECT_ROOT,
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return done.stdout

    stream = str(uuid.uuid4())
    assert f"-m command_service.replay {stream} --version 7 --format json" in planned(
        "replay", f"STREAM={stream}", "VERSION=7", "FORMAT=json"
    )
    assert f"-m projector.time_travel {stream} --at 42" in planned(
        "replay", f"STREAM={stream}", "AT=42"
    )
    assert "-m command_service.relay.republish --from 10" in planned("replay", "FROM=10")
    assert "-m command_service.relay.republish --from 0" in planned("republish", "FROM=0")


def test_a_stored_v1_deposit_shows_its_wire_name_and_the_version_it_was_read_as(
    database_url: str, writer: LedgerWriter
) -> None:
    account = writer.open("carol", "EUR")
    cause = EventMetadata(correlation_id="old", causation_id="old")
    writer.store.save(
        MoneyDepositedV1(originator_id=account, originator_version=2, metadata=cause,
                         amount=250, currency="EUR")
    )  # fmt: skip

    text = replay(database_url, str(account))
    as_json = replay(database_url, str(account), "--format", "json")

    assert text.code == 0 and as_json.code == 0, (text.err, as_json.err)
    assert any(
        "ledger.MoneyDeposited.v1 (read as ledger.MoneyDeposited.v2)" in line
        and '"channel":"api"' in line
        for line in text.lines
    ), text.lines
    deposit = json.loads(as_json.lines[1])
    assert (deposit["type"], deposit["read_as"]) == (
        "ledger.MoneyDeposited.v1", "ledger.MoneyDeposited.v2",
    )  # fmt: skip
    assert deposit["data"]["channel"] == "api" and deposit["state"]["balance"] == 250

