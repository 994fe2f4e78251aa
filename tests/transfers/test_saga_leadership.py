"""Two saga processes on one store: one works, one stands by and takes over after a kill -9."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import httpx
import pytest

from tests.support.infra import unique_stream_name
from tests.support.processes import ServiceProcess, Stack
from tests.transfers.commands import open_account, transfer
from tests.transfers.ledger_view import wait_until_finished


def role(saga: ServiceProcess) -> str:
    return str(httpx.get(f"{saga.url}/health/ready", timeout=5).json()["checks"]["saga"])


def wait_for_role(saga: ServiceProcess, wanted: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while (current := role(saga)) != wanted:
        assert time.monotonic() < deadline, f"saga still {current!r}, not {wanted!r}"
        time.sleep(0.1)


@pytest.fixture
def stacks(database_url: str, tmp_path: Path) -> Iterator[list[Stack]]:
    stacks = [
        Stack(database_url=database_url, stream_name=unique_stream_name(), log_dir=tmp_path / n)
        for n in ("a", "b")
    ]
    for stack in stacks:
        stack.log_dir.mkdir()
    try:
        yield stacks
    finally:
        for stack in stacks:
            stack.stop()


def test_a_standby_saga_takes_over_after_a_kill(stacks: list[Stack], database_url: str) -> None:
    first, second = stacks
    command = first.process("command").start()
    leader = first.process("saga").start()
    wait_for_role(leader, "active")
    standby = second.process("saga").start()
    wait_for_role(standby, "standby")

    with httpx.Client(base_url=command.url, timeout=30) as client:
        source, target = open_account(client, deposit=100), open_account(client)
        before = UUID(transfer(client, source, target, 10).json()["transfer_id"])
        wait_until_finished(database_url, [before])
        assert role(standby) == "standby"

        leader.kill()
        after = UUID(transfer(client, source, target, 15).json()["transfer_id"])
        wait_for_role(standby, "active")

    view = wait_until_finished(database_url, [before, after])
    assert (view.status[before], view.status[after]) == ("completed", "completed")
    assert view.balances[UUID(target)] == 25
