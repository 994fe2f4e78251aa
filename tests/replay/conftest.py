"""Fixtures of the replay, time-travel and republish tests, and what they share."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import psycopg

from command_service.bus.bus import CommandBus
from command_service.commands import Command, DepositMoney, OpenAccount, WithdrawMoney
from command_service.event_store import LedgerEventStore, event_store_env
from command_service.replay.cli import run
from shared_kernel.language.events import decode_event
from shared_kernel.settings import EVENTS_TABLE


@dataclass(frozen=True)
class Replayed:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def replay(database_url: str, *args: str) -> Replayed:
    """``python -m command_service.replay`` in this process."""
    out, err = io.StringIO(), io.StringIO()
    code = run([*args, "--database-url", database_url], out, err)
    return Replayed(code, out.getvalue(), err.getvalue())


@dataclass(frozen=True)
class Recorded:
    version: int
    position: int
    at: datetime


def recorded(database_url: str, stream_id: UUID) -> list[Recorded]:
    """Version, position and time of each stored event of the stream."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            f"SELECT originator_version, notification_id, topic, state FROM {EVENTS_TABLE}"
            " WHERE originator_id = %s ORDER BY originator_version",
            (stream_id,),
        ).fetchall()
    return [Recorded(v, p, decode_event(t, bytes(s)).timestamp) for v, p, t, s in rows]


def appended_with_snapshots(database_url: str, amounts: list[int], interval: int) -> UUID:
    """An account opened and moved by ``amounts`` (+ deposit, - withdrawal) through the real
    appender, which snapshots whenever the account crosses a multiple of ``interval``."""
    account_id = uuid4()
    commands: list[Command[Any]] = [
        OpenAccount(account_id=account_id, owner="erin", currency="USD", correlation_id="t")
    ]
    for amount in amounts:
        move = DepositMoney if amount > 0 else WithdrawMoney
        commands.append(move(account_id=account_id, amount=abs(amount), correlation_id="t"))
    store = LedgerEventStore(env=event_store_env(database_url, pool_size=2))
    appender = CommandBus(store, snapshot_interval=interval)

    async def submit_all() -> None:
        appender.start()
        try:
            for command in commands:
                await appender.dispatch(command)
        finally:
            await asyncio.to_thread(appender.stop)

    try:
        asyncio.run(submit_all())
    finally:
        store.close()
    return account_id
