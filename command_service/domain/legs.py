"""The legs of a transfer as the accounts see them: decisions, no I/O.

A transfer moves money in legs, each an event on one account's stream:

- the *debit* (:func:`transfer_out`) takes the amount from the source like a
  withdrawal would, and leaves the transfer *pending* on the source;
- the *credit* (:func:`transfer_in`) adds it to the target like a deposit;
- the *settlement* (:func:`settle_transfer`) tells the source its transfer
  completed, clearing the pending mark without moving money;
- the *refund* (:func:`refund_transfer`) returns the amount to the source and
  clears the mark, when the credit could not happen.

A source with a pending transfer may not close, so the refund is always
accepted: it needs no open check. The transfer's own stream decides which leg
comes next (:mod:`command_service.domain.transfer`); how each leg changes an
account stays in :func:`command_service.domain.account.apply`.
"""

from __future__ import annotations

from uuid import UUID

from command_service.domain import streams
from command_service.domain.account import (
    Account,
    DomainError,
    check_amount,
    check_credit,
    check_funds,
    check_open,
)
from shared_kernel.language.events import (
    EventMetadata,
    MoneyRefunded,
    MoneyTransferredIn,
    MoneyTransferredOut,
    TransferSettled,
)


class TransferNotPending(DomainError):
    """A settlement or refund for a transfer the account does not hold as pending.

    It cannot happen through the saga (the transfer stream's version key stops
    a repeated leg first); it guards against a leg reaching the wrong account.
    """

    code = "transfer-not-pending"


class TransferAlreadyPending(DomainError):
    """A second debit for a transfer this account already paid out."""

    code = "transfer-already-pending"


def transfer_out(
    account: Account, transfer_id: UUID, to_account: UUID, amount: int, metadata: EventMetadata
) -> MoneyTransferredOut:
    """Debit the source; refused like a withdrawal (closed, insufficient funds)."""
    check_amount(amount)
    check_open(account)
    if transfer_id in account.pending_transfers:
        raise TransferAlreadyPending(
            f"account {account.id} already paid out transfer {transfer_id}",
            transfer_id=str(transfer_id),
        )
    check_funds(account, amount, "transfer")
    return MoneyTransferredOut(
        **streams.next_event_of(account, metadata),
        transfer_id=transfer_id,
        to_account=to_account,
        amount=amount,
        currency=account.currency,
    )


def transfer_in(
    account: Account,
    transfer_id: UUID,
    *,
    from_account: UUID,
    amount: int,
    currency: str,
    metadata: EventMetadata,
) -> MoneyTransferredIn:
    """Credit the target; refused when it is closed, holds another currency or would overflow."""
    check_credit(account, amount, currency)
    return MoneyTransferredIn(
        **streams.next_event_of(account, metadata),
        transfer_id=transfer_id,
        from_account=from_account,
        amount=amount,
        currency=currency,
    )


def _check_pending(account: Account, transfer_id: UUID) -> None:
    if transfer_id not in account.pending_transfers:
        raise TransferNotPending(
            f"transfer {transfer_id} is not pending on account {account.id}",
            transfer_id=str(transfer_id),
        )


def settle_transfer(
    account: Account, transfer_id: UUID, metadata: EventMetadata
) -> TransferSettled:
    """The source learns its transfer completed: no money moves, the pending mark goes."""
    _check_pending(account, transfer_id)
    return TransferSettled(
        **streams.next_event_of(account, metadata),
        transfer_id=transfer_id,
    )


def refund_transfer(
    account: Account,
    transfer_id: UUID,
    *,
    to_account: UUID,
    amount: int,
    reason: str,
    metadata: EventMetadata,
) -> MoneyRefunded:
    """Return a debited amount to the source. Accepted whenever the transfer is pending."""
    _check_pending(account, transfer_id)
    return MoneyRefunded(
        **streams.next_event_of(account, metadata),
        transfer_id=transfer_id,
        to_account=to_account,
        amount=amount,
        currency=account.currency,
        reason=reason,
    )
