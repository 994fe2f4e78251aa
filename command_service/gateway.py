"""What the HTTP handlers call: the appender, plus recovery for a retried idempotent request.

An idempotent request keeps one command id across its attempts, and that id
is the ``causation_id`` of the event it records (and the stream id of an
account or transfer it creates). When an attempt takes over an abandoned one
(``command.recovering``), the abandoned one may have recorded its event and
died before storing its answer; the gateway first looks for that event and,
when it is there, answers from it instead of recording the command again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from psycopg_pool import AsyncConnectionPool

from command_service import metrics
from command_service.appender import Appender
from command_service.commands import (
    Command,
    CommandResult,
    OpenAccount,
    RequestTransfer,
    TransferAccepted,
)
from command_service.event_store import LedgerEventStore
from shared_kernel.settings import EVENTS_TABLE

log = logging.getLogger(__name__)

# The event's stored JSON names its cause as "causation_id":"<command id>"
# (msgspec writes no spaces); only the one stream is searched, by its key.
_CAUSED_BY = (
    "SELECT originator_version, notification_id"
    f" FROM {EVENTS_TABLE} WHERE originator_id = %s AND position(%s::bytea IN state) > 0"
    " ORDER BY originator_version DESC LIMIT 1"
)


class CommandGateway:
    def __init__(
        self, appender: Appender, store: LedgerEventStore, pool: AsyncConnectionPool[Any]
    ) -> None:
        self._appender = appender
        self._store = store
        self._pool = pool

    async def submit(self, command: Command) -> CommandResult:
        """Decide and record a command on an account (or find it recorded, when recovering)."""
        if command.recovering:
            recorded = await self._recorded(command)
            if recorded is not None:
                version, position = recorded
                if isinstance(command, OpenAccount):
                    return CommandResult(command.account_id, version, position, 0)
                account = await asyncio.to_thread(
                    self._store.get_account, command.account_id, version
                )
                return CommandResult(account.id, version, position, account.balance)
        return await self._appender.submit(command)

    async def request_transfer(self, command: RequestTransfer) -> TransferAccepted:
        """Record a transfer request (or find it recorded, when recovering)."""
        if command.recovering:
            recorded = await self._recorded(command)
            if recorded is not None:
                return TransferAccepted(command.transfer_id, recorded[1])
        return await self._appender.request_transfer(command)

    async def _recorded(self, command: Command) -> tuple[int, int] | None:
        """(version, position) of the event ``command`` recorded in an earlier attempt."""
        needle = f'"causation_id":"{command.command_id}"'.encode()
        async with self._pool.connection() as conn:
            cursor = await conn.execute(_CAUSED_BY, (command.recorded_stream, needle))
            row = await cursor.fetchone()
        found = row is not None
        metrics.RECOVERIES.labels("found" if found else "not-found").inc()
        log.info(
            "recovering an idempotent request",
            extra={
                "command_id": str(command.command_id),
                "stream": str(command.recorded_stream),
                "found": found,
            },
        )
        return (int(row[0]), int(row[1])) if row is not None else None
