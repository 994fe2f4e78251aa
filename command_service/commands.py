"""The commands of the ledger's write side: what a client asks the ledger to do.

A command is a request, not a fact: the handlers registered on the bus
(``command_service.handlers``) decide whether it becomes an event. Each one
names the stream its event goes to (``stream_id``), the versions the client
expects of that stream (from ``If-Match``, when given) and the ids that tie
the resulting event to the request that caused it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar
from uuid import UUID

from shared_kernel.ids import random_uuid
from shared_kernel.language.events import DepositChannel


def new_command_id() -> UUID:
    return random_uuid()


@dataclass(frozen=True, slots=True)
class TransferAccepted:
    """What a client learns of its recorded transfer request."""

    transfer_id: UUID
    position: int


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a client learns of its accepted command."""

    account_id: UUID
    version: int
    position: int
    balance: int


R_co = TypeVar("R_co", covariant=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class Command(Generic[R_co]):
    """What every command carries besides its own arguments.

    ``expected_versions`` None means "whatever the current version is": the
    bus may then retry a conflicting append. Otherwise the stream must
    be at one of them (an empty set, from tags that are no version, matches
    none). ``command_id`` becomes the
    causation id of the event the command records; an idempotent request
    keeps one ``command_id`` across its attempts, so an attempt that takes
    over from a dead one (``recovering``) can find what that one recorded.
    ``R_co`` is what the command is answered with when it is recorded.
    ``traceparent`` is the W3C trace context of the command's span (None when
    tracing is off); the event it records carries it to the relay and projector.
    """

    correlation_id: str
    expected_versions: frozenset[int] | None = None
    command_id: UUID = field(default_factory=new_command_id)
    recovering: bool = False
    traceparent: str | None = None

    @property
    def stream_id(self) -> UUID:
        """The aggregate stream this command is about: its event goes there."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountCommand(Command[R_co]):
    """A command on an account: the account's stream unless the command starts another."""

    account_id: UUID

    @property
    def stream_id(self) -> UUID:
        return self.account_id


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenAccount(AccountCommand[CommandResult]):
    owner: str
    currency: str
    #: True when the client chose the id: an existing account is then a conflict,
    #: not an impossibility, so the writer must look it up.
    client_supplied_id: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class DepositMoney(AccountCommand[CommandResult]):
    amount: int
    currency: str | None = None
    reference: str | None = None
    channel: DepositChannel = "api"


@dataclass(frozen=True, slots=True, kw_only=True)
class WithdrawMoney(AccountCommand[CommandResult]):
    amount: int
    currency: str | None = None
    reference: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CloseAccount(AccountCommand[CommandResult]):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestTransfer(AccountCommand[TransferAccepted]):
    """Move ``amount`` from ``account_id`` (the source) to ``to_account``.

    The transfer's stream id is the command id: one request, one transfer,
    and an attempt recovering an idempotent request finds the stream of the
    attempt it replaces.
    """

    to_account: UUID
    amount: int

    @property
    def transfer_id(self) -> UUID:
        return self.command_id

    @property
    def stream_id(self) -> UUID:
        return self.transfer_id
