"""The legs on the accounts and the transfer's state machine (pure domain: plain values)."""

from __future__ import annotations

from uuid import UUID, uuid4

import msgspec
import pytest
from eventsourcing.persistence import StoredEvent

from command_service.domain import account as accounts
from command_service.domain import transfer as transfers
from command_service.domain.account import (
    Account,
    AccountIsClosed,
    CurrencyMismatch,
    InsufficientFunds,
    InvalidAmount,
    TransfersPending,
    close,
    deposit,
    open_account,
)
from command_service.domain.legs import (
    TransferAlreadyPending,
    TransferNotPending,
    refund_transfer,
    settle_transfer,
    transfer_in,
    transfer_out,
)
from command_service.domain.transfer import SameAccount, Transfer, next_step, request_transfer
from command_service.event_store import AccountSnapshot, MsgspecMapper, UnusedTranscoder
from command_service.http.refusals import http_status
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
    TransferSettled,
)
from shared_kernel.language.money import MAX_AMOUNT

META = EventMetadata(correlation_id="test", causation_id="test")


def opened(currency: str = "EUR", balance: int = 0) -> Account:
    account = accounts.apply(None, open_account(uuid4(), "alice", currency, META))
    if balance:
        account = accounts.apply(account, deposit(account, balance, None, None, META))
    return account


def closed_account() -> Account:
    account = opened()
    return accounts.apply(account, close(account, META))


def requested(source: Account, target: Account | UUID, amount: int) -> Transfer:
    target_id = target if isinstance(target, UUID) else target.id
    known = None if isinstance(target, UUID) else target
    event = request_transfer(
        uuid4(), source, to_account=target_id, target=known, amount=amount, metadata=META
    )
    return transfers.apply(None, event)


def run(
    transfer: Transfer, source: Account | None, target: Account | None
) -> tuple[Transfer, Account | None, Account | None, list[LedgerEvent]]:
    """One step, applied to everything it touches."""
    events = next_step(transfer, source, target)
    for event in events:
        if transfers.is_transfer_event(event):
            after = transfers.apply(transfer, event)
            transfer = after
        elif source is not None and event.originator_id == source.id:
            source = accounts.apply(source, event)
        else:
            target = accounts.apply(target, event)
    return transfer, source, target, events


# -- legs ---------------------------------------------------------------------------


def test_debit_moves_money_out_and_marks_the_transfer_pending() -> None:
    source, transfer_id, target_id = opened(balance=100), uuid4(), uuid4()
    event = transfer_out(source, transfer_id, target_id, 30, META)
    assert (event.originator_version, event.amount, event.currency) == (3, 30, "EUR")
    after = accounts.apply(source, event)
    assert after.balance == 70 and after.pending_transfers == {transfer_id}
    with pytest.raises(TransferAlreadyPending):
        transfer_out(after, transfer_id, target_id, 1, META)


@pytest.mark.parametrize(
    ("account", "amount", "error"),
    [
        (opened(balance=10), 11, InsufficientFunds),
        (closed_account(), 1, AccountIsClosed),
        (opened(balance=10), 0, InvalidAmount),
        (opened(balance=10), MAX_AMOUNT + 1, InvalidAmount),
    ],
)
def test_debit_is_refused_like_a_withdrawal(
    account: Account, amount: int, error: type[Exception]
) -> None:
    with pytest.raises(error):
        transfer_out(account, uuid4(), uuid4(), amount, META)


def test_credit_is_refused_when_closed_or_in_another_currency() -> None:
    def credit(account: Account, currency: str) -> MoneyTransferredIn:
        return transfer_in(
            account, uuid4(), from_account=uuid4(), amount=5, currency=currency, metadata=META
        )

    assert accounts.apply(opened(), credit(opened(), "EUR")).balance == 5
    with pytest.raises(AccountIsClosed):
        credit(closed_account(), "EUR")
    with pytest.raises(CurrencyMismatch):
        credit(opened("USD"), "EUR")


def test_settlement_and_refund_clear_the_pending_mark_once() -> None:
    source, transfer_id, target_id = opened(balance=100), uuid4(), uuid4()
    debited = accounts.apply(source, transfer_out(source, transfer_id, target_id, 40, META))
    settled = accounts.apply(debited, settle_transfer(debited, transfer_id, META))
    assert (settled.balance, settled.pending_transfers) == (60, frozenset())
    refund = refund_transfer(
        debited, transfer_id, to_account=target_id, amount=40, reason="target-closed", metadata=META
    )
    refunded = accounts.apply(debited, refund)
    assert (refunded.balance, refunded.pending_transfers) == (100, frozenset())
    for account in (settled, refunded):
        with pytest.raises(TransferNotPending):
            settle_transfer(account, transfer_id, META)


def test_an_account_with_a_pending_transfer_does_not_close() -> None:
    source = opened(balance=10)
    transfer_id = uuid4()
    debited = accounts.apply(source, transfer_out(source, transfer_id, uuid4(), 10, META))
    assert debited.balance == 0
    with pytest.raises(TransfersPending) as refused:
        close(debited, META)
    assert http_status(refused.value) == 409 and refused.value.code == "transfers-pending"
    settled = accounts.apply(debited, settle_transfer(debited, transfer_id, META))
    assert accounts.apply(settled, close(settled, META)).status == "closed"


# -- the request --------------------------------------------------------------------


def test_a_request_is_refused_only_for_what_can_never_succeed() -> None:
    source = opened(balance=5)
    with pytest.raises(SameAccount):
        requested(source, source, 1)
    with pytest.raises(CurrencyMismatch):
        requested(source, opened("USD"), 1)
    with pytest.raises(InvalidAmount):
        requested(source, opened(), 0)
    # Too little money, a closed or unknown target: recorded; the saga decides.
    assert requested(source, closed_account(), 500).status == "requested"
    transfer = requested(source, uuid4(), 500)
    assert (transfer.currency, transfer.version, transfer.amount) == ("EUR", 1, 500)


# -- the steps ----------------------------------------------------------------------


def test_completed_transfer_debits_then_credits_and_settles_together() -> None:
    source: Account | None = opened(balance=100)
    target: Account | None = opened()
    assert source is not None and target is not None
    transfer = requested(source, target, 30)
    transfer, source, target, events = run(transfer, source, target)
    assert [type(e) for e in events] == [MoneyTransferredOut, TransferDebited]
    assert transfer.status == "debited" and source is not None and source.balance == 70
    transfer, source, target, events = run(transfer, source, target)
    assert [type(e) for e in events] == [MoneyTransferredIn, TransferCompleted, TransferSettled]
    assert transfer.status == "completed" and transfer.version == 3
    assert source is not None and target is not None
    assert (source.balance, target.balance, source.pending_transfers) == (70, 30, frozenset())
    assert next_step(transfer, source, target) == []


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        (None, "target-missing"),
        (closed_account(), "target-closed"),
        (opened("USD"), "currency-mismatch"),
    ],
)
def test_a_credit_that_cannot_happen_refunds_the_source(
    target: Account | None, reason: str
) -> None:
    funded = opened(balance=100)
    transfer = requested(funded, uuid4(), 30)
    transfer, source, _, _ = run(transfer, funded, None)
    transfer, source, _, events = run(transfer, source, target)
    assert [type(e) for e in events] == [MoneyRefunded, TransferRefunded]
    assert (transfer.status, transfer.reason) == ("refunded", reason)
    assert source is not None and (source.balance, source.pending_transfers) == (100, frozenset())


@pytest.mark.parametrize(
    ("source", "reason"),
    [(None, "source-missing"), (opened(balance=10), "insufficient-funds")],
)
def test_a_debit_that_cannot_happen_fails_the_transfer_and_moves_nothing(
    source: Account | None, reason: str
) -> None:
    known = opened(balance=10)
    transfer = requested(known, uuid4(), 30)
    transfer, after, _, events = run(transfer, source, None)
    assert [type(e) for e in events] == [TransferFailed]
    assert (transfer.status, transfer.reason, transfer.version) == ("failed", reason, 2)
    assert after == source


def test_a_source_closed_after_the_request_fails_the_transfer() -> None:
    source = opened()
    transfer = requested(source, uuid4(), 30)
    source = accounts.apply(source, close(source, META))
    transfer, _, _, _ = run(transfer, source, None)
    assert (transfer.status, transfer.reason) == ("failed", "source-closed")


def test_the_transfer_stream_holds_only_transfer_events() -> None:
    source = opened(balance=5)
    transfer = requested(source, uuid4(), 1)
    leg = transfer_out(source, transfer.id, uuid4(), 1, META)
    with pytest.raises(ValueError, match="does not belong"):
        transfers.apply(transfer, leg)


def test_a_v1_snapshot_reads_as_an_account_with_nothing_pending() -> None:
    account = opened(balance=7)
    state = msgspec.json.decode(msgspec.json.encode(AccountSnapshot.take(account)))
    del state["state"]["pending_transfers"]  # what the v1 code wrote
    stored = StoredEvent(
        originator_id=account.id,
        originator_version=account.version,
        topic="ledger.AccountSnapshot.v1",
        state=msgspec.json.encode(state),
    )
    snapshot = MsgspecMapper(UnusedTranscoder()).to_domain_event(stored)
    assert isinstance(snapshot, AccountSnapshot)
    assert snapshot.state == account and snapshot.state.pending_transfers == frozenset()
