"""Writes valid transfer histories straight into the event store, for projection tests.

The saga's own code is the command side's business; what the read side must
handle is the published language, so this builds the ``shared_kernel`` events
directly and saves them with the real
:class:`~command_service.event_store.LedgerEventStore`, grouped as the design
in ``shared_kernel/language/events.py`` groups them: each leg in the SAME save as the
transfer stream's next event.

    request     TransferRequested                                    (transfer v1)
    debit       MoneyTransferredOut (source) + TransferDebited       (transfer v2)
    complete    MoneyTransferredIn (target) + TransferSettled (source)
                + TransferCompleted                                  (transfer v3)
    refund      MoneyRefunded (source) + TransferRefunded            (transfer v3)
    fail        TransferFailed                                       (transfer v2)

It keeps the accounts of the wrapped :class:`LedgerWriter` up to date itself
(version and balance), so deposits, withdrawals and closes written through
that writer afterwards stay valid; ``pending`` remembers debited transfers not
yet settled, whose source must not close.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal
from uuid import UUID

import msgspec

from shared_kernel.language.events import (
    EventMetadata,
    LedgerEvent,
    MoneyRefunded,
    MoneyTransferredIn,
    MoneyTransferredOut,
    TransferCompleted,
    TransferDebited,
    TransferFailed,
    TransferRefunded,
    TransferRequested,
    TransferSettled,
)
from tests.support.ledger_writer import LedgerWriter

Outcome = Literal["completed", "refunded", "failed", "requested", "debited"]


@dataclass
class Transfer:
    transfer_id: UUID
    from_account: UUID
    to_account: UUID
    amount: int
    currency: str
    version: int = 1
    status: str = "requested"


def _metadata(transfer_id: UUID) -> EventMetadata:
    return EventMetadata(correlation_id=str(transfer_id), causation_id=str(uuid.uuid4()))


@dataclass
class TransferWriter:
    ledger: LedgerWriter
    transfers: dict[UUID, Transfer] = field(default_factory=dict)
    pending: dict[UUID, set[UUID]] = field(default_factory=dict)
    """Per source account, its debited transfers not yet completed or refunded."""

    def _save(self, *events: LedgerEvent) -> int:
        """One save (one transaction); returns the last position and tracks the accounts."""
        recordings = self.ledger.store.save(*events)
        for event in events:
            account = self.ledger.accounts.get(event.originator_id)
            if account is None:
                continue  # the transfer stream
            change = 0
            if isinstance(event, MoneyTransferredOut):
                change = -event.amount
            elif isinstance(event, MoneyTransferredIn | MoneyRefunded):
                change = event.amount
            self.ledger.accounts[event.originator_id] = msgspec.structs.replace(
                account, version=event.originator_version, balance=account.balance + change
            )
        return int(recordings[-1].notification.id)

    def _next(self, account_id: UUID) -> int:
        return self.ledger.accounts[account_id].version + 1

    def request(self, from_account: UUID, to_account: UUID, amount: int) -> UUID:
        transfer_id = uuid.uuid4()
        currency = self.ledger.accounts[from_account].currency
        self.transfers[transfer_id] = Transfer(
            transfer_id, from_account, to_account, amount, currency
        )
        self._save(
            TransferRequested(
                originator_id=transfer_id, originator_version=1,
                metadata=_metadata(transfer_id), from_account=from_account,
                to_account=to_account, amount=amount, currency=currency,
            )
        )  # fmt: skip
        return transfer_id

    def _advance(self, transfer: Transfer, status: str) -> int:
        transfer.version += 1
        transfer.status = status
        return transfer.version

    def debit(self, transfer_id: UUID) -> int:
        t = self.transfers[transfer_id]
        source = self.ledger.accounts[t.from_account]
        assert source.status == "open" and source.balance >= t.amount, "debit needs funds"
        meta = _metadata(transfer_id)
        out = MoneyTransferredOut(
            originator_id=t.from_account, originator_version=self._next(t.from_account),
            metadata=meta, transfer_id=transfer_id, to_account=t.to_account,
            amount=t.amount, currency=t.currency,
        )  # fmt: skip
        version = self._advance(t, "debited")
        self.pending.setdefault(t.from_account, set()).add(transfer_id)
        return self._save(
            out,
            TransferDebited(originator_id=transfer_id, originator_version=version, metadata=meta),
        )

    def complete(self, transfer_id: UUID) -> int:
        t = self.transfers[transfer_id]
        assert t.status == "debited"
        meta = _metadata(transfer_id)
        credit = MoneyTransferredIn(
            originator_id=t.to_account, originator_version=self._next(t.to_account),
            metadata=meta, transfer_id=transfer_id, from_account=t.from_account,
            amount=t.amount, currency=t.currency,
        )  # fmt: skip
        settled = TransferSettled(
            originator_id=t.from_account, originator_version=self._next(t.from_account),
            metadata=meta, transfer_id=transfer_id,
        )  # fmt: skip
        version = self._advance(t, "completed")
        self.pending[t.from_account].discard(transfer_id)
        completed = TransferCompleted(
            originator_id=transfer_id, originator_version=version, metadata=meta
        )
        return self._save(credit, settled, completed)

    def refund(self, transfer_id: UUID, reason: str = "target account is closed") -> int:
        t = self.transfers[transfer_id]
        assert t.status == "debited"
        meta = _metadata(transfer_id)
        refund = MoneyRefunded(
            originator_id=t.from_account, originator_version=self._next(t.from_account),
            metadata=meta, transfer_id=transfer_id, to_account=t.to_account,
            amount=t.amount, currency=t.currency, reason=reason,
        )  # fmt: skip
        version = self._advance(t, "refunded")
        self.pending[t.from_account].discard(transfer_id)
        refunded = TransferRefunded(
            originator_id=transfer_id, originator_version=version, metadata=meta, reason=reason
        )
        return self._save(refund, refunded)

    def fail(self, transfer_id: UUID, reason: str = "insufficient funds") -> int:
        t = self.transfers[transfer_id]
        assert t.status == "requested"
        version = self._advance(t, "failed")
        return self._save(
            TransferFailed(
                originator_id=transfer_id, originator_version=version,
                metadata=_metadata(transfer_id), reason=reason,
            )
        )  # fmt: skip

    def transfer(
        self, from_account: UUID, to_account: UUID, amount: int, outcome: Outcome = "completed"
    ) -> UUID:
        """A whole transfer up to ``outcome`` (``requested``/``debited`` stop mid-way)."""
        transfer_id = self.request(from_account, to_account, amount)
        if outcome == "failed":
            self.fail(transfer_id)
        elif outcome != "requested":
            self.debit(transfer_id)
            if outcome == "completed":
                self.complete(transfer_id)
            elif outcome == "refunded":
                self.refund(transfer_id)
        return transfer_id

    def can_close(self, account_id: UUID) -> bool:
        account = self.ledger.accounts[account_id]
        return (
            account.status == "open"
            and account.balance == 0
            and not self.pending.get(account_id)
        )
