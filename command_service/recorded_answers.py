"""Answers rebuilt from what the store recorded, for commands not to be decided again."""

from __future__ import annotations

import re
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from command_service.commands import (
    Command,
    CommandResult,
    OpenAccount,
    RequestTransfer,
    TransferAccepted,
)
from command_service.event_store import LedgerEventStore
from command_service.recorder import RecordedCommand

#: PostgreSQL's detail of a unique violation on the events' primary key:
#: ``Key (originator_id, originator_version)=(<uuid>, <n>) already exists.``
_TAKEN_KEY = re.compile(r"=\(([0-9a-f-]{36}), \d+\)")


def answer_from_record(
    store: LedgerEventStore, command: Command, record: RecordedCommand
) -> CommandResult | TransferAccepted:
    """The answer ``command`` got (or would have got) when ``record`` was written.

    The account's state is read as of the recorded version, so a deposit
    answered late still reports the balance right after it.
    """
    if isinstance(command, RequestTransfer):
        return TransferAccepted(command.transfer_id, record.position)
    if isinstance(command, OpenAccount):
        return CommandResult(command.account_id, record.version, record.position, 0)
    account = store.get_account(record.stream_id, version=record.version)
    return CommandResult(account.id, record.version, record.position, account.balance)


def conflicting_stream(error: IntegrityError) -> UUID | None:
    """The stream whose version key a refused append hit, when PostgreSQL names it."""
    diag = getattr(error.__cause__, "diag", None)
    detail = getattr(diag, "message_detail", None) or ""
    match = _TAKEN_KEY.search(detail)
    return UUID(match.group(1)) if match else None
