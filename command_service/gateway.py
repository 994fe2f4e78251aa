"""What the HTTP handlers call: the appender, behind the two operations they need.

An idempotent request keeps one command id across its attempts; an attempt
that takes over an abandoned one (``command.recovering``) is answered from
the store when that command id is already recorded. The appender does that
lookup in its writer thread, after every append in flight has ended (see
:mod:`command_service.batch_writer`), so it cannot miss a commit that was
still under way.
"""

from __future__ import annotations

from command_service.appender import Appender
from command_service.commands import Command, CommandResult, RequestTransfer, TransferAccepted


class CommandGateway:
    def __init__(self, appender: Appender) -> None:
        self._appender = appender

    async def submit(self, command: Command) -> CommandResult:
        """Decide and record a command on an account (or find it recorded, when recovering)."""
        return await self._appender.submit(command)

    async def request_transfer(self, command: RequestTransfer) -> TransferAccepted:
        """Record a transfer request (or find it recorded, when recovering)."""
        return await self._appender.request_transfer(command)
