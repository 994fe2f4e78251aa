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
    first = supervised.wait_ready()
    expected_status = sorted([name, "RUNNING", "pid", f"{first[name]},"] for name in SERVICES)

    def all_running() -> bool:
        status = supervised.ctl("status").splitlines()
        return sorted(line.split()[:4] for line in status) == expected_status

    # RUNNING once up for `startsecs`, however soon it answered ready.
    wait_for(all_running, 60, "make ctl status: five RUNNING with their pids")

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
    # Every process's output reaches the console, each line naming the process that wrote it.
    logged = {(line["process"], line["pid"]) for line in supervised.json_lines()}
    assert {pid for _, pid in logged} == {pid for pids in spawned.values() for pid in pids}
    assert len({process for process, _ in logged}) == len(SERVICES)

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


def retry_delays(run: SupervisedRun, name: str) -> list[tuple[int, float]]:
    """Per failed start: how many failed in a row so far (k), and the wait before the next.

    A start fails when the process exits before `startsecs`, i.e. without supervisord's
    `success:` line; one that got that far resets the count (a loaded machine can be slow
    enough to fail late), as supervisord's own backoff does.
    """
    spawns, exits = run.events(name, "spawned"), run.events(name, "exited")
    successes = run.events(name, "success")
    delays, in_a_row = [], 0
    for started, died, next_start in zip(spawns, exits, spawns[1:], strict=False):
        if any(started <= success <= died for success in successes):
            in_a_row = 0
            continue
        in_a_row += 1
        delays.append((in_a_row, (next_start - died).total_seconds()))
    return delays


def test_a_process_that_fails_at_start_is_retried_with_growing_delays(
    supervised: SupervisedRun,
) -> None:
    # Only the projector reads this setting: it exits 2 at start-up, the others run.
    supervised.stack.extra_env["PROJECTOR_BATCH_SIZE"] = "0"
    supervised.start()
    others = ("command", "relay", "saga", "query")
    first = supervised.wait_ready(*others)

    def third_failure_in_a_row() -> bool:
        return any(k >= 3 for k, _ in retry_delays(supervised, "projector"))

    wait_for(third_failure_in_a_row, 150, "three failed starts of the projector in a row")
    console = supervised.console()
    assert "exited: projector (exit status 2; not expected)" in console
    assert "invalid configuration for ProjectorSettings" in console
    assert "PROJECTOR_BATCH_SIZE" in console
    for k, delay in retry_delays(supervised, "projector"):
        assert delay >= k - 0.1, f"retry after the failure #{k} in a row came after {delay}s"
    assert supervised.wait_ready(*others) == first, "the others were not restarted"

    assert supervised.interrupt() in (0, -signal.SIGINT)
    assert "make: ***" not in supervised.console()
