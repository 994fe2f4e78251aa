"""Every event of the ledger, defined once.

The command service records these, the relay forwards their bytes unchanged,
and the projector decodes them. Each class carries a stable, versioned wire
name in ``TOPIC`` (for example ``ledger.MoneyDeposited.v1``): the event store
stores that name instead of a Python class path, so renaming or moving a class
can never orphan history. A changed shape gets a new ``.vN`` name and an
upcaster, never an edit in place.

The structs follow the shape the eventsourcing library expects of a domain
event (``originator_id``, ``originator_version``, ``timestamp``), so the same
object is what the aggregate emits, what the store records and what the
projector reads.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar, Literal, get_args
from uuid import UUID

import msgspec
from eventsourcing.utils import register_topic

from shared_kernel.language.upcasting import RETIRED, upcast_retired


def utc_now() -> datetime:
    return datetime.now(tz=UTC)


class EventMetadata(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Why an event happened and what it belongs to.

    ``correlation_id`` ties together everything one request caused;
    ``causation_id`` names the message that caused this event directly;
    ``traceparent`` is the W3C trace context of the request that recorded it.
    """

    correlation_id: str
    causation_id: str
    traceparent: str | None = None


class LedgerEvent(msgspec.Struct, frozen=True, kw_only=True):
    """Base of all ledger events: which stream, which version, when, why."""

    TOPIC: ClassVar[str] = ""

    originator_id: UUID
    originator_version: int
    timestamp: datetime = msgspec.field(default_factory=utc_now)
    metadata: EventMetadata


class AccountOpened(LedgerEvent, frozen=True, kw_only=True):
    TOPIC: ClassVar[str] = "ledger.AccountOpened.v1"

    owner: str
    currency: str


#: Where a deposit came in. v1 deposits (before channels existed) read as "api".
DepositChannel = Literal["api", "branch", "card", "atm"]
DEPOSIT_CHANNELS: tuple[str, ...] = get_args(DepositChannel)


class MoneyDeposited(LedgerEvent, frozen=True, kw_only=True):
    TOPIC: ClassVar[str] = "ledger.MoneyDeposited.v2"

    amount: int
    currency: str
    reference: str | None = None
    channel: DepositChannel


class MoneyWithdrawn(LedgerEvent, frozen=True, kw_only=True):
    TOPIC: ClassVar[str] = "ledger.MoneyWithdrawn.v1"

    amount: int
    currency: str
    reference: str | None = None


class AccountClosed(LedgerEvent, frozen=True, kw_only=True):
    TOPIC: ClassVar[str] = "ledger.AccountClosed.v1"


# -- Money moving between accounts ---------------------------------------------
# A transfer is its own stream (originator_id = transfer id) driven by a process
# manager. Each leg is recorded on the account it touches, in the SAME append as
# the transfer's own next event: the transfer stream's version key then makes a
# repeated leg impossible, whoever retries it.


class TransferRequested(LedgerEvent, frozen=True, kw_only=True):
    """A client asked to move ``amount`` from one account to another (transfer stream)."""

    TOPIC: ClassVar[str] = "ledger.TransferRequested.v1"

    from_account: UUID
    to_account: UUID
    amount: int
    currency: str


class TransferDebited(LedgerEvent, frozen=True, kw_only=True):
    """The source account was debited; the credit comes next (transfer stream)."""

    TOPIC: ClassVar[str] = "ledger.TransferDebited.v1"


class TransferCompleted(LedgerEvent, frozen=True, kw_only=True):
    """The target account was credited: the transfer is done (transfer stream)."""

    TOPIC: ClassVar[str] = "ledger.TransferCompleted.v1"


class TransferRefunded(LedgerEvent, frozen=True, kw_only=True):
    """The credit could not happen, so the source got its money back (transfer stream)."""

    TOPIC: ClassVar[str] = "ledger.TransferRefunded.v1"

    reason: str


class TransferFailed(LedgerEvent, frozen=True, kw_only=True):
    """The source could not be debited; no money moved (transfer stream)."""

    TOPIC: ClassVar[str] = "ledger.TransferFailed.v1"

    reason: str


class MoneyTransferredOut(LedgerEvent, frozen=True, kw_only=True):
    """The source leg: ``amount`` left this account for ``to_account`` (account stream)."""

    TOPIC: ClassVar[str] = "ledger.MoneyTransferredOut.v1"

    transfer_id: UUID
    to_account: UUID
    amount: int
    currency: str


class MoneyTransferredIn(LedgerEvent, frozen=True, kw_only=True):
    """The target leg: ``amount`` arrived from ``from_account`` (account stream)."""

    TOPIC: ClassVar[str] = "ledger.MoneyTransferredIn.v1"

    transfer_id: UUID
    from_account: UUID
    amount: int
    currency: str


class TransferSettled(LedgerEvent, frozen=True, kw_only=True):
    """The source learns its outgoing transfer completed; no balance change (account stream).

    Until then the transfer is pending on the source, which may not close, so
    a refund always has an open account to return to.
    """

    TOPIC: ClassVar[str] = "ledger.TransferSettled.v1"

    transfer_id: UUID


class MoneyRefunded(LedgerEvent, frozen=True, kw_only=True):
    """The refund leg: a failed transfer's ``amount`` came back (source account stream)."""

    TOPIC: ClassVar[str] = "ledger.MoneyRefunded.v1"

    transfer_id: UUID
    to_account: UUID
    amount: int
    currency: str
    reason: str


# -- Holds (authorisations) ------------------------------------------------------
# A hold is its own stream (originator_id = hold id). What it reserves is also
# recorded on the account's stream, in the SAME append as the hold's own event:
# the account's version key then keeps concurrent withdrawals and holds from
# promising the same money twice, and the hold's version key makes a second
# capture, release or expiry impossible.


class HoldPlaced(LedgerEvent, frozen=True, kw_only=True):
    """``amount`` of ``account_id`` is reserved until captured, released or ``expires_at``
    (hold stream)."""

    TOPIC: ClassVar[str] = "ledger.HoldPlaced.v1"

    account_id: UUID
    amount: int
    currency: str
    reference: str | None = None
    expires_at: datetime


class HoldCaptured(LedgerEvent, frozen=True, kw_only=True):
    """``amount`` of the hold was withdrawn and ``released`` (the rest) freed (hold stream)."""

    TOPIC: ClassVar[str] = "ledger.HoldCaptured.v1"

    amount: int
    released: int


class HoldReleased(LedgerEvent, frozen=True, kw_only=True):
    """The client gave the held amount back, untouched (hold stream)."""

    TOPIC: ClassVar[str] = "ledger.HoldReleased.v1"


class HoldExpired(LedgerEvent, frozen=True, kw_only=True):
    """The deadline passed with the hold neither captured nor released; freed (hold stream)."""

    TOPIC: ClassVar[str] = "ledger.HoldExpired.v1"


class FundsHeld(LedgerEvent, frozen=True, kw_only=True):
    """``amount`` of the balance is reserved for ``hold_id``: no longer available (account
    stream)."""

    TOPIC: ClassVar[str] = "ledger.FundsHeld.v1"

    hold_id: UUID
    amount: int
    currency: str


class HeldFundsReleased(LedgerEvent, frozen=True, kw_only=True):
    """The reservation of ``hold_id`` ended: ``amount`` is available again (account stream).
    A capture records it together with the withdrawal of the captured part."""

    TOPIC: ClassVar[str] = "ledger.HeldFundsReleased.v1"

    hold_id: UUID
    amount: int
    currency: str


#: Every published event type by its wire name.
EVENT_TYPES: dict[str, type[LedgerEvent]] = {
    cls.TOPIC: cls
    for cls in (
        AccountOpened,
        MoneyDeposited,
        MoneyWithdrawn,
        AccountClosed,
        TransferRequested,
        TransferDebited,
        TransferCompleted,
        TransferRefunded,
        TransferFailed,
        MoneyTransferredOut,
        MoneyTransferredIn,
        TransferSettled,
        MoneyRefunded,
        HoldPlaced,
        HoldCaptured,
        HoldReleased,
        HoldExpired,
        FundsHeld,
        HeldFundsReleased,
    )
}

for _topic, _cls in EVENT_TYPES.items():
    # Lets the event store resolve the wire name back to the class.
    register_topic(_topic, _cls)

_decoders: dict[str, msgspec.json.Decoder[LedgerEvent]] = {
    topic: msgspec.json.Decoder(cls) for topic, cls in EVENT_TYPES.items()
}
_encoder = msgspec.json.Encoder()


class UnknownEventType(ValueError):
    """A stored or streamed event names a type this code does not know."""


def encode_event(event: LedgerEvent) -> bytes:
    """The bytes stored in the event store and published on the stream."""
    return _encoder.encode(event)


def decode_event(topic: str, data: bytes) -> LedgerEvent:
    """Decode ``data`` as the event type named ``topic``.

    A retired wire name is read as the current version of its event
    (:mod:`shared_kernel.language.upcasting`). Raises :class:`UnknownEventType` for a
    name this code does not know and
    ``msgspec.ValidationError`` / ``msgspec.DecodeError`` for bad bytes.
    """
    decoder = _decoders.get(topic)
    if decoder is not None:
        return decoder.decode(data)
    if topic in RETIRED:
        event: LedgerEvent = upcast_retired(topic, data)
        return event
    raise UnknownEventType(topic)


# The retired versions register their upcasters (RETIRED) when this module loads.
from shared_kernel.language import retired_events  # noqa: E402, F401
