"""The hold's rules and what holds do to an account's ``available`` (pure domain, no I/O)."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from command_service.domain import hold as holds
from command_service.domain.account import (
    Account,
    AccountNotEmpty,
    InsufficientFunds,
    apply,
    close,
    deposit,
    open_account,
    withdraw,
)
from command_service.domain.hold import (
    CaptureExceedsHold,
    Hold,
    HoldNotActive,
    InvalidExpiry,
    capture_hold,
    expire_hold,
    place_hold,
    release_hold,
)
from command_service.domain.legs import transfer_out
from command_service.http.refusals import http_status
from shared_kernel.language.events import EventMetadata, LedgerEvent, MoneyWithdrawn, utc_now

META = EventMetadata(correlation_id="test", causation_id="test")
LATER = utc_now() + timedelta(hours=1)


def funded(amount: int) -> Account:
    account = apply(None, open_account(uuid4(), "alice", "EUR", META))
    return apply(account, deposit(account, amount, None, None, META))


def _fold(
    account: Account, hold: Hold | None, events: list[LedgerEvent]
) -> tuple[Account, Hold]:
    for event in events:
        if event.originator_id == account.id:
            account = apply(account, event)
        else:
            hold = holds.apply(hold, event)
    assert hold is not None
    return account, hold


def placed(account: Account, amount: int, hold_id: UUID | None = None) -> tuple[Account, Hold]:
    events = place_hold(
        hold_id or uuid4(), account, amount=amount, reference="card", expires_at=LATER,
        metadata=META,
    )  # fmt: skip
    return _fold(account, None, events)


def test_a_hold_reserves_money_without_moving_it() -> None:
    account, hold = placed(funded(100), 30)
    assert (account.balance, account.held, account.available) == (100, 30, 70)
    assert hold.status == "placed" and hold.account_id == account.id and hold.version == 1


def test_withdrawals_transfers_holds_and_closing_respect_available() -> None:
    account, _ = placed(funded(100), 60)
    with pytest.raises(InsufficientFunds) as refused:
        withdraw(account, 41, None, None, META)
    assert refused.value.context["available"] == 40 and http_status(refused.value) == 422
    with pytest.raises(InsufficientFunds):
        transfer_out(account, uuid4(), uuid4(), 41, META)
    with pytest.raises(InsufficientFunds):
        placed(account, 41)
    withdraw(account, 40, None, None, META)
    with pytest.raises(AccountNotEmpty):
        close(apply(account, withdraw(account, 40, None, None, META)), META)


def test_capture_withdraws_up_to_the_held_amount_and_frees_the_rest() -> None:
    account, hold = placed(funded(100), 60)
    events = capture_hold(hold, account, 45, META)
    account, hold = _fold(account, hold, events)
    assert (account.balance, account.held, account.available) == (55, 0, 55)
    assert hold.status == "captured" and hold.captured == 45
    assert [type(e) for e in events if isinstance(e, MoneyWithdrawn)] == [MoneyWithdrawn]
    account, small = placed(account, 10)
    with pytest.raises(CaptureExceedsHold):
        capture_hold(small, account, 11, META)


def test_a_hold_ends_once() -> None:
    account, hold = placed(funded(100), 60)
    account, released = _fold(account, hold, release_hold(hold, account, META))
    assert released.status == "released" and account.available == 100
    with pytest.raises(HoldNotActive) as refused:
        release_hold(released, account, META)
    assert http_status(refused.value) == 409
    with pytest.raises(HoldNotActive):
        capture_hold(released, account, 1, META)
    assert expire_hold(released, account, LATER + timedelta(days=1), META) == []


def test_expiry_frees_a_due_hold_and_nothing_before_its_deadline() -> None:
    account, hold = placed(funded(100), 60)
    assert expire_hold(hold, account, utc_now(), META) == []
    account, expired = _fold(account, hold, expire_hold(hold, account, LATER, META))
    assert expired.status == "expired" and account.available == 100


def test_expiry_bounds() -> None:
    with pytest.raises(InvalidExpiry):
        holds.expiry_after(utc_now(), 0)
    with pytest.raises(InvalidExpiry):
        holds.expiry_after(utc_now(), holds.MAX_EXPIRY_SECONDS + 1)


def test_an_unknown_event_on_a_hold_stream_is_an_error() -> None:
    account, hold = placed(funded(100), 10)
    with pytest.raises(ValueError, match="does not belong on hold stream"):
        holds.apply(hold, withdraw(account, 1, None, None, META))


@given(st.lists(st.tuples(st.sampled_from(["place", "capture", "release", "withdraw"]),
                          st.integers(min_value=1, max_value=80)), max_size=40))  # fmt: skip
def test_available_is_never_negative_and_held_matches_active_holds(
    steps: list[tuple[str, int]],
) -> None:
    account = funded(200)
    active: dict[UUID, Hold] = {}
    for action, amount in steps:
        try:
            if action == "place":
                account, hold = placed(account, amount)
                active[hold.id] = hold
            elif action == "withdraw":
                account = apply(account, withdraw(account, amount, None, None, META))
            elif active:
                hold = active.pop(next(iter(active)))
                events = (
                    capture_hold(hold, account, min(amount, hold.amount), META)
                    if action == "capture"
                    else release_hold(hold, account, META)
                )
                account, _ = _fold(account, hold, events)
        except InsufficientFunds:
            pass
        assert account.available >= 0
        assert account.held == sum(h.amount for h in active.values())
        assert account.holds == set(active)
