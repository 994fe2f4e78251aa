"""Random ledgers with transfers driven step by step, over the domain and the real store.

A hypothesis state machine opens accounts, deposits, withdraws, closes,
requests transfers and advances them one step at a time in any interleaving,
and sometimes repeats a step decided on a transfer state that has since moved
on (what a second saga, or a saga restarted after a crash, would do). The
appends go to a tiny in-memory store with the real store's one rule: a
(stream, version) key is taken once, and a save is all or nothing.

The same machine runs once more with PostgreSQL as the store: every save is
real, and at the end every stream folds back to the state the model holds.

After every step: no balance below zero; the sum of balances plus the money
in flight (debited, not yet credited or refunded) equals deposits minus
withdrawals; each account's pending transfers are exactly its debited ones;
no leg twice. At the end, running every remaining step brings each transfer
to completed, refunded or failed, with exactly the legs its outcome implies.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TypeVar
from uuid import UUID, uuid4

from eventsourcing.persistence import IntegrityError
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from command_service.domain import account as accounts
from command_service.domain import transfer as transfers
from command_service.domain.account import Account, DomainError
from command_service.domain.transfer import Transfer, next_step, request_transfer
from command_service.event_store import LedgerEventStore, event_store_env
from shared_kernel.language.events import EventMetadata, LedgerEvent

META = EventMetadata(correlation_id="model", causation_id="model")
amounts = st.integers(min_value=1, max_value=120)
deposits = st.integers(min_value=1, max_value=600)


class FakeStore:
    """The event store's one rule: each (stream, version) once, a save all or nothing."""

    def __init__(self) -> None:
        self.versions: dict[UUID, int] = {}
        self.saves_refused = 0

    def save(self, events: list[LedgerEvent]) -> bool:
        seen = dict(self.versions)
        for event in events:
            if event.originator_version != seen.get(event.originator_id, 0) + 1:
                self.saves_refused += 1
                return False
            seen[event.originator_id] = event.originator_version
        self.versions = seen
        return True


class Ledger(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.store = FakeStore()
        self.accounts: dict[UUID, Account] = {}
        self.transfers: dict[UUID, Transfer] = {}
        #: Every state each transfer has been in, to decide stale (repeated) steps on.
        self.history: dict[UUID, list[Transfer]] = {}
        self.legs: dict[UUID, Counter[str]] = {}
        self.deposited = 0
        self.withdrawn = 0
        self._ids = 0

    def new_id(self) -> UUID:
        """Ids from a counter: random ones would make hypothesis's choices unreproducible."""
        self._ids += 1
        return UUID(int=self._ids)

    # -- writing through the fake store ---------------------------------------------

    def record(self, events: list[LedgerEvent]) -> bool:
        if not self.store.save(events):
            return False
        for event in events:
            if transfers.is_transfer_event(event):
                after = transfers.apply(self.transfers.get(event.originator_id), event)
                self.transfers[after.id] = after
                self.history.setdefault(after.id, []).append(after)
            else:
                self.accounts[event.originator_id] = accounts.apply(
                    self.accounts.get(event.originator_id), event
                )
                transfer_id = getattr(event, "transfer_id", None)
                if transfer_id is not None:
                    self.legs.setdefault(transfer_id, Counter())[type(event).__name__] += 1
        return True

    def pick(self, data: st.DataObject, pool: list[UUID]) -> UUID:
        return data.draw(st.sampled_from(pool))

    def record_on_some_account(
        self, data: st.DataObject, decide: Callable[[Account], list[LedgerEvent]]
    ) -> bool:
        """Record what ``decide`` makes of an account ``data`` picks; False if the rules
        refuse it (and nothing is recorded)."""
        account = self.accounts[self.pick(data, list(self.accounts))]
        try:
            events = decide(account)
        except DomainError:
            return False
        assert self.record(events)
        return True

    def step(self, transfer: Transfer) -> list[LedgerEvent]:
        source = self.accounts.get(transfer.from_account)
        target = self.accounts.get(transfer.to_account)
        try:
            return next_step(transfer, source, target)
        except DomainError:
            return []  # what the saga does with a step the rules refuse: nothing

    # -- rules ------------------------------------------------------------------------

    @rule(currency=st.sampled_from(["EUR", "EUR", "USD"]))
    def open(self, currency: str) -> None:
        assert self.record([accounts.open_account(self.new_id(), "owner", currency, META)])

    @precondition(lambda self: self.accounts)
    @rule(data=st.data(), amount=deposits)
    def deposit(self, data: st.DataObject, amount: int) -> None:
        if self.record_on_some_account(
            data, lambda account: [accounts.deposit(account, amount, None, None, META)]
        ):
            self.deposited += amount

    @precondition(lambda self: self.accounts)
    @rule(data=st.data(), amount=amounts)
    def withdraw(self, data: st.DataObject, amount: int) -> None:
        if self.record_on_some_account(
            data, lambda account: [accounts.withdraw(account, amount, None, None, META)]
        ):
            self.withdrawn += amount

    @precondition(lambda self: self.accounts)
    @rule(data=st.data())
    def close(self, data: st.DataObject) -> None:
        self.record_on_some_account(data, lambda account: [accounts.close(account, META)])

    @precondition(lambda self: self.accounts)
    @rule(
        data=st.data(),
        amount=amounts,
        missing_target=st.sampled_from([False, False, False, True]),
        affordable=st.booleans(),
    )
    def request(
        self, data: st.DataObject, amount: int, missing_target: bool, affordable: bool
    ) -> None:
        funded = [a.id for a in self.accounts.values() if a.balance > 0]
        pool = funded if affordable and funded else list(self.accounts)
        source = self.accounts[self.pick(data, pool)]
        if affordable and source.balance > 0:
            amount = data.draw(st.integers(1, source.balance))
        target_id = self.new_id() if missing_target else self.pick(data, list(self.accounts))
        try:
            event = request_transfer(
                self.new_id(),
                source,
                to_account=target_id,
                target=self.accounts.get(target_id),
                amount=amount,
                metadata=META,
            )
        except DomainError:
            return
        assert self.record([event])

    @precondition(lambda self: any(not t.terminal for t in self.transfers.values()))
    @rule(data=st.data())
    def advance(self, data: st.DataObject) -> None:
        unfinished = [t.id for t in self.transfers.values() if not t.terminal]
        transfer = self.transfers[self.pick(data, unfinished)]
        events = self.step(transfer)
        assert events, f"an unfinished transfer always has a next step: {transfer}"
        assert self.record(events)

    @precondition(lambda self: any(len(h) > 1 for h in self.history.values()))
    @rule(data=st.data())
    def repeat_a_step(self, data: st.DataObject) -> None:
        """A step decided again on a transfer state that moved on: the store refuses it."""
        moved = [i for i, h in self.history.items() if len(h) > 1]
        history = self.history[self.pick(data, moved)]
        stale = history[data.draw(st.integers(0, len(history) - 2))]
        events = self.step(stale)
        if events:
            assert not self.record(events), "a repeated step must never be saved"

    # -- invariants -------------------------------------------------------------------

    @invariant()
    def money_is_conserved(self) -> None:
        in_flight = sum(t.amount for t in self.transfers.values() if t.status == "debited")
        balances = sum(a.balance for a in self.accounts.values())
        assert all(a.balance >= 0 for a in self.accounts.values())
        assert balances + in_flight == self.deposited - self.withdrawn

    @invariant()
    def pending_means_debited(self) -> None:
        for account in self.accounts.values():
            debited = {
                t.id
                for t in self.transfers.values()
                if t.from_account == account.id and t.status == "debited"
            }
            assert account.pending_transfers == debited
            if account.status == "closed":
                assert not debited

    @invariant()
    def no_leg_twice(self) -> None:
        for legs in self.legs.values():
            assert all(count == 1 for count in legs.values()), legs

    def teardown(self) -> None:
        for transfer_id in list(self.transfers):
            while not self.transfers[transfer_id].terminal:
                assert self.record(self.step(self.transfers[transfer_id]))
        self.money_is_conserved()
        expected = {
            "completed": {"MoneyTransferredOut", "MoneyTransferredIn", "TransferSettled"},
            "refunded": {"MoneyTransferredOut", "MoneyRefunded"},
            "failed": set(),
        }
        for transfer in self.transfers.values():
            assert transfer.status in expected
            legs = self.legs.get(transfer.id, Counter())
            assert set(legs) == expected[transfer.status], (transfer, legs)
            assert all(count == 1 for count in legs.values())


Ledger.TestCase.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)
TestTransferStateMachine = Ledger.TestCase


# -- the same state machine on the real event store ---------------------------------


class PostgresStore:
    """The real event store behind the model's ``save``: its primary key decides."""

    def __init__(self, store: LedgerEventStore) -> None:
        self.store = store
        self.saves_refused = 0

    def save(self, events: list[LedgerEvent]) -> bool:
        try:
            self.store.save(*events)
        except IntegrityError:
            self.saves_refused += 1
            return False
        return True


M = TypeVar("M", bound=Ledger)


def run_on_postgres(
    database_url: str,
    machine: type[M],
    *,
    max_examples: int,
    then: Callable[[M, LedgerEventStore], None],
) -> None:
    """``machine`` saving to the real store; at its end every account folds back to the
    model, and ``then`` checks the machine's other streams against the store."""
    store = LedgerEventStore(env=event_store_env(database_url))

    class PostgresLedger(machine):  # type: ignore[valid-type,misc]
        def __init__(self) -> None:
            super().__init__()
            self.store = PostgresStore(store)
            # One database serves every example: ids differ per example, not per run.
            self._prefix = uuid4().int >> 64 << 64

        def new_id(self) -> UUID:
            self._ids += 1
            return UUID(int=self._prefix | self._ids)

        def teardown(self) -> None:
            super().teardown()
            for account in self.accounts.values():
                assert store.get_account(account.id) == account
            then(self, store)

    try:
        run_state_machine_as_test(
            PostgresLedger,
            settings=settings(max_examples=max_examples, stateful_step_count=40, deadline=None),
        )
    finally:
        store.close()


def test_the_state_machine_holds_on_the_real_event_store(database_url: str) -> None:
    """Every save goes to PostgreSQL; afterwards each stream folds back to the model's state."""

    def transfers_fold_back(ledger: Ledger, store: LedgerEventStore) -> None:
        for transfer in ledger.transfers.values():
            assert store.get_transfer(transfer.id) == transfer

    run_on_postgres(database_url, Ledger, max_examples=25, then=transfers_fold_back)
