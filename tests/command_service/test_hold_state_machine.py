"""The random ledger of :mod:`.test_transfer_state_machine`, with holds placed among it all.

Holds are placed, captured (any part), released and expired in any
interleaving with deposits, withdrawals, closings and transfer steps, and
sometimes an end is decided again on a hold state that has moved on (a
client retrying, a deadline run twice): the store's (stream, version) key
must refuse it.

After every step, besides the transfer machine's invariants: no account's
``available`` below zero; what each account holds is exactly the amounts of
its placed holds; each hold ended at most once. At the end every hold still
placed expires, and each ended exactly once, with its reservation released
exactly once.
"""

from __future__ import annotations

from collections import Counter
from uuid import UUID

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule

from command_service.domain import account as accounts
from command_service.domain import hold as holds
from command_service.domain.account import DomainError
from command_service.domain.hold import Hold
from command_service.event_store import LedgerEventStore
from shared_kernel.language.events import HeldFundsReleased, LedgerEvent, MoneyWithdrawn, utc_now
from tests.command_service.test_transfer_state_machine import META, Ledger, amounts, run_on_postgres

LATER = utc_now().replace(year=2100)


class LedgerWithHolds(Ledger):
    def __init__(self) -> None:
        super().__init__()
        self.holds: dict[UUID, Hold] = {}
        self.hold_history: dict[UUID, list[Hold]] = {}
        #: Per hold: the events that ended it, and the releases of its reservation.
        self.hold_ends: Counter[UUID] = Counter()
        self.reservations_released: Counter[UUID] = Counter()

    def record(self, events: list[LedgerEvent]) -> bool:
        hold_events = [e for e in events if isinstance(e, holds.HOLD_EVENTS)]
        if not hold_events:
            return super().record(events)
        # A hold's batch: its own event, and on the account the reservation (and a
        # capture's withdrawal), never a transfer leg.
        if not self.store.save(events):
            return False
        for event in hold_events:
            after = holds.apply(self.holds.get(event.originator_id), event)
            self.holds[after.id] = after
            self.hold_history.setdefault(after.id, []).append(after)
            if not after.active:
                self.hold_ends[after.id] += 1
        rest = [e for e in events if not isinstance(e, holds.HOLD_EVENTS)]
        for event in rest:
            self.accounts[event.originator_id] = accounts.apply(
                self.accounts.get(event.originator_id), event
            )
            if isinstance(event, HeldFundsReleased):
                self.reservations_released[event.hold_id] += 1
            if isinstance(event, MoneyWithdrawn):
                self.withdrawn += event.amount
        return True

    def end(self, hold: Hold, how: str, amount: int) -> list[LedgerEvent]:
        account = self.accounts[hold.account_id]
        try:
            if how == "capture":
                return holds.capture_hold(hold, account, min(amount, hold.amount), META)
            if how == "release":
                return holds.release_hold(hold, account, META)
            return holds.expire_hold(hold, account, LATER, META)
        except DomainError:
            return []

    @precondition(lambda self: self.accounts)
    @rule(data=st.data(), amount=amounts)
    def place(self, data: st.DataObject, amount: int) -> None:
        self.record_on_some_account(
            data,
            lambda account: holds.place_hold(
                self.new_id(), account, amount=amount, reference=None, expires_at=LATER,
                metadata=META,
            ),
        )  # fmt: skip

    @precondition(lambda self: any(h.active for h in self.holds.values()))
    @rule(
        data=st.data(),
        how=st.sampled_from(["capture", "release", "expire"]),
        amount=amounts,
    )
    def end_a_hold(self, data: st.DataObject, how: str, amount: int) -> None:
        placed = [h.id for h in self.holds.values() if h.active]
        events = self.end(self.holds[self.pick(data, placed)], how, amount)
        assert events, "a placed hold can always end"
        assert self.record(events)

    @precondition(lambda self: any(len(h) > 1 for h in self.hold_history.values()))
    @rule(data=st.data(), how=st.sampled_from(["capture", "release", "expire"]), amount=amounts)
    def end_a_hold_again(self, data: st.DataObject, how: str, amount: int) -> None:
        """An end decided on the hold as it was before it ended: the store refuses it."""
        ended = [i for i, h in self.hold_history.items() if len(h) > 1]
        stale = self.hold_history[self.pick(data, ended)][0]
        events = self.end(stale, how, amount)
        if events:
            assert not self.record(events), "a hold must never end twice"

    @invariant()
    def available_is_never_negative(self) -> None:
        for account in self.accounts.values():
            assert account.available >= 0
            placed = [h for h in self.holds.values() if h.account_id == account.id and h.active]
            assert account.held == sum(h.amount for h in placed)
            assert account.holds == {h.id for h in placed}

    @invariant()
    def each_hold_ends_at_most_once(self) -> None:
        assert all(count == 1 for count in self.hold_ends.values())
        assert all(count == 1 for count in self.reservations_released.values())

    def teardown(self) -> None:
        for hold in list(self.holds.values()):
            if hold.active:
                assert self.record(self.end(hold, "expire", 0))
        super().teardown()
        assert set(self.hold_ends) == set(self.holds)
        self.each_hold_ends_at_most_once()
        assert set(self.reservations_released) == set(self.holds)


LedgerWithHolds.TestCase.settings = settings(
    max_examples=150, stateful_step_count=60, deadline=None
)
TestHoldStateMachine = LedgerWithHolds.TestCase


def test_holds_hold_on_the_real_event_store(database_url: str) -> None:
    """Every save goes to PostgreSQL; afterwards each stream folds back to the model's state."""

    def holds_fold_back(ledger: LedgerWithHolds, store: LedgerEventStore) -> None:
        for hold in ledger.holds.values():
            assert holds.fold(None, store.events.get(hold.id)) == hold  # type: ignore[arg-type]

    run_on_postgres(database_url, LedgerWithHolds, max_examples=20, then=holds_fold_back)
