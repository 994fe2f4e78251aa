"""The account's rules, over any sequence of commands (pure domain: no I/O, no fakes needed)."""

from __future__ import annotations

from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from command_service.commands import CloseAccount, DepositMoney, OpenAccount, WithdrawMoney
from command_service.domain.account import (
    Account,
    AccountIsClosed,
    AccountNotEmpty,
    DomainError,
    InsufficientFunds,
    InvalidAmount,
    apply,
    close,
    deposit,
    open_account,
    withdraw,
)
from command_service.errors import AccountAlreadyExists, AccountNotFound, PreconditionFailed
from command_service.handlers import handle
from command_service.http.refusals import http_status
from shared_kernel.language.events import EventMetadata, TransferCompleted
from shared_kernel.language.money import MAX_AMOUNT

META = EventMetadata(correlation_id="test", causation_id="test")

amounts = st.one_of(
    st.integers(min_value=1, max_value=500),  # mostly valid, small enough to overdraw often
    st.integers(min_value=-5, max_value=0),  # never valid
    st.just(MAX_AMOUNT + 1),  # too large
)
commands = st.lists(
    st.tuples(st.sampled_from(["deposit", "withdraw", "close"]), amounts), max_size=80
)


def opened() -> Account:
    account = apply(None, open_account(uuid4(), "alice", "EUR", META))
    assert account.balance == 0 and account.version == 1
    return account


@given(commands)
def test_balance_is_deposits_minus_withdrawals_and_never_negative(
    history: list[tuple[str, int]],
) -> None:
    account = opened()
    deposited = withdrawn = 0
    for kind, amount in history:
        before = account
        valid_amount = 0 < amount <= MAX_AMOUNT
        try:
            if kind == "deposit":
                account = apply(account, deposit(account, amount, "EUR", None, META))
                deposited += amount
            elif kind == "withdraw":
                account = apply(account, withdraw(account, amount, None, None, META))
                withdrawn += amount
            else:
                account = apply(account, close(account, META))
        except DomainError as refusal:
            # A refusal changes nothing, and says why in a stable code.
            assert account is before
            if before.status == "closed" and (valid_amount or kind == "close"):
                assert isinstance(refusal, AccountIsClosed)
            elif kind == "close":
                assert isinstance(refusal, AccountNotEmpty) and before.balance != 0
            elif not valid_amount:
                assert isinstance(refusal, InvalidAmount)
            else:
                assert kind == "withdraw" and isinstance(refusal, InsufficientFunds)
                assert amount > before.balance
        else:
            assert account.version == before.version + 1
            assert before.status == "open", "a closed account accepted a command"
            if kind == "close":
                assert before.balance == 0, "an account closed with money in it"
            if kind in ("deposit", "withdraw"):
                assert valid_amount
        assert account.balance == deposited - withdrawn
        assert account.balance >= 0


@given(st.lists(amounts, max_size=10))
def test_a_closed_account_refuses_everything(amounts_after: list[int]) -> None:
    account = apply(opened(), close(opened(), META))
    assert account.status == "closed"
    for amount in amounts_after:
        with pytest.raises(DomainError):
            deposit(account, amount, None, None, META)
        with pytest.raises(DomainError):
            withdraw(account, amount, None, None, META)
    with pytest.raises(AccountIsClosed):
        close(account, META)


def test_handlers_check_existence_and_expected_version_before_the_rules() -> None:
    account = opened()
    missing = uuid4()
    with pytest.raises(AccountNotFound):
        handle(DepositMoney(account_id=missing, correlation_id="c", amount=1), None)
    with pytest.raises(AccountAlreadyExists):
        handle(
            OpenAccount(account_id=account.id, correlation_id="c", owner="bob", currency="EUR"),
            account,
        )
    with pytest.raises(PreconditionFailed) as conflict:
        handle(
            WithdrawMoney(
                account_id=account.id,
                correlation_id="c",
                amount=1,
                expected_versions=frozenset({7, 8}),
            ),
            account,
        )
    assert http_status(conflict.value) == 412
    assert conflict.value.context == {
        "account_id": str(account.id),
        "current_version": 1,
        "expected_versions": [7, 8],
    }
    command = CloseAccount(
        account_id=account.id, correlation_id="corr", expected_versions=frozenset({0, 1})
    )
    event = handle(command, account)
    assert event.originator_version == 2
    assert event.metadata.correlation_id == "corr"
    assert event.metadata.causation_id == str(command.command_id)


def test_an_event_the_account_fold_does_not_know_is_an_error_not_a_no_op() -> None:
    account = opened()
    stray = TransferCompleted(
        originator_id=account.id, originator_version=2, timestamp=account.opened_at,
        metadata=META,
    )  # fmt: skip
    with pytest.raises(ValueError, match="does not belong on account stream"):
        apply(account, stray)
