"""`make run` keeps the ledger up: kill -9 of one process restarts it alone; Ctrl-C stops all.

The real `make run` (services check, migration, supervisord with ops/supervisord.conf)
runs against the test's own database, stream and ports, in its own session like a
terminal's foreground job, and is stopped the way Ctrl-C stops it.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.processes import SERVICES, Stack
from tests.support.streams import wait_for
from tests.support.supervised import SupervisedRun, running

pytestmark = pytest.mark.processes


@pytest.fixture
def supervised(
    stack: Stack, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[SupervisedRun]:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    run = SupervisedRun(stack=stack, run_dir=run_dir)
    yield run
    run.kill_everything()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(run.console()[-30_000:])


def deposit(run: SupervisedRun, account_id: str, amount: int) -> int:
    """A deposit through the command service; the position it was recorded at."""
    response = httpx.post(
        f"{run.url('command')}/accounts/{account_id}/deposits", json={"amount": amount}, timeout=10
    )
    assert response.status_code == 200, response.text
    return int(response.json()["position"])


def balance(run: SupervisedRun, account_id: str, min_position: int) -> int:
    """The balance the query service reads once the projection reached ``min_position``."""
    response = httpx.get(
        f"{run.url('query')}/accounts/{account_id}",
        params={"min_position": min_position},
        timeout=15,
    )
    assert response.status_code == 200, response.text
    return int(response.json()["balance"])


def kill_and_wait_for_restart(run: SupervisedRun, name: str) -> None:
    """kill -9 ``name``; it comes back ready under a new pid and nothing else moved."""
    before = run.pids()
    os.kill(before[name], signal.SIGKILL)

    def restarted() -> bool:
        pid = run.pids().get(name)
        return pid is not None and pid != before[name] and run.ready(name)

    wait_for(restarted, 90, f"{name} back and ready under a new pid")
    assert f"exited: {name} (terminated by SIGKILL; not expected)" in run.console()
    after = run.pids()
    assert not running(before[name], SERVICES[name][0])
    assert {n: p for n, p in after.items() if n != name} == {
        n: p for n, p in before.items() if n != name
    }, "only the killed process was restarted"


def test_a_killed_process_is_restarted_alone_and_ctrl_c_stops_everything(
    supervised: SupervisedRun,
) -> None:
    supervised.start()
    first = supervised.wait_all_ready()
    status_lines = supervised.ctl("status").splitlines()
    assert sorted(line.split()[:4] for line in status_lines) == sorted(
        [name, "RUNNING", "pid", f"{first[name]},"] for name in SERVICES
    ), status_lines

    opened = httpx.post(
        f"{supervised.url('command')}/accounts",
        json={"owner": "supervised", "currency": "EUR"},
        timeout=10,
    )
    assert opened.status_code == 201, opened.text
    account_id = opened.json()["account_id"]
    assert balance(supervised, account_id, deposit(supervised, account_id, 100)) == 100

    kill_and_wait_for_restart(supervised, "projector")
    kill_and_wait_for_restart(supervised, "command")

    assert balance(supervised, account_id, deposit(supervised, account_id, 25)) == 125
    spawned = supervised.spawned()
    assert {name: len(pids) for name, pids in spawned.items()} == {
        "command": 2,
        "relay": 1,
        "saga": 1,
        "projector": 2,
        "query": 1,
    }
    assert all(first[name] == spawned[name][0] for name in SERVICES)

    supervisord = supervised.supervisord_pid()
    status = supervised.interrupt()
    console = supervised.console()
    assert status in (0, -signal.SIGINT), f"make run ended with {status}"
    assert "make: ***" not in console, "make reported an error"
    assert "received SIGINT indicating exit request" in console
    for name in SERVICES:
        assert f"stopped: {name} (" in console, f"{name} was not stopped by supervisord"
    assert "with SIGKILL" not in console, "a process ignored SIGTERM and had to be killed"
    assert not running(supervisord, "supervisord")
    for name, pids in spawned.items():
        for pid in pids:
            assert not running(pid, SERVICES[name][0]), f"{name} (pid {pid}) outlived make run"
