"""Seeing transfers become terminal without polling the query service for each one.

Polling every open transfer every few milliseconds costs the query service
hundreds of requests a second, more the slower transfers get, which slows
them further. Instead one connection LISTENs to the projector's NOTIFY (sent
once per applied batch): after each, one statement asks which of the open
transfers the read model shows terminal. The caller then reads each of those
once through the query service, so what is measured is still "visible to a
client". Without a notification within ``idle_seconds`` it asks anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import psycopg
from psycopg import sql

from bench.transfers import TERMINAL
from shared_kernel.settings import PROJECTION_CHANNEL

_TERMINAL_AMONG = (
    "SELECT transfer_id::text FROM transfers"
    " WHERE transfer_id = ANY(%s::uuid[]) AND status = ANY(%s)"
)


class TransferWatch:
    """``await watch.terminal(transfer_id)`` returns once the read model shows it terminal."""

    def __init__(self, database_url: str, *, idle_seconds: float = 0.05) -> None:
        self._database_url = database_url
        self._idle = idle_seconds
        self._open: dict[str, asyncio.Future[None]] = {}
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> TransferWatch:
        conn = await psycopg.AsyncConnection.connect(self._database_url, autocommit=True)
        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(PROJECTION_CHANNEL)))
        self._task = asyncio.create_task(self._watch(conn), name="transfer-watch")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def terminal(self, transfer_id: str) -> None:
        future = self._open.get(transfer_id)
        if future is None:
            future = self._open[transfer_id] = asyncio.get_running_loop().create_future()
        await future

    async def _watch(self, conn: psycopg.AsyncConnection[Any]) -> None:
        async with conn:
            while True:
                async for _ in conn.notifies(timeout=self._idle, stop_after=1):
                    pass
                if not self._open:
                    continue
                cursor = await conn.execute(_TERMINAL_AMONG, (list(self._open), sorted(TERMINAL)))
                for (transfer_id,) in await cursor.fetchall():
                    future = self._open.pop(transfer_id, None)
                    if future is not None and not future.done():
                        future.set_result(None)
