"""Writes account histories straight into the event store, without the HTTP service.

Tests of the relay and the projector need real events in ``ledger_events``
exactly as the command side records them: this uses the same
:class:`~command_service.event_store.LedgerEventStore` and the same pure
domain functions, and keeps each account's state in memory so it can choose
only commands the rules accept.
"""

from __future__ import annotations

import random
import threading
import uuid
from uuid import UUID

from command_service.domain.account import Account, apply, close, deposit, open_account, withdraw
from command_service.event_store import LedgerEventStore, event_store_env
from shared_kernel.language.events import EventMetadata, LedgerEvent

CURRENCIES = ("EUR", "USD", "JPY")


def _metadata() -> EventMetadata:
    request = str(uuid.uuid4())
    return EventMetadata(correlation_id=request, causation_id=request)


class LedgerWriter:
    """Appends events one save at a time; each method returns the event's position."""

    def __init__(self, database_url: str) -> None:
        self.store = LedgerEventStore(env=event_store_env(database_url, pool_size=2))
        self.accounts: dict[UUID, Account] = {}

    def record(self, event: LedgerEvent) -> int:
        recordings = self.store.save(event)
        self.accounts[event.originator_id] = apply(self.accounts.get(event.originator_id), event)
        return int(recordings[-1].notification.id)

    def open(self, owner: str = "alice", currency: str = "EUR") -> UUID:
        account_id = uuid.uuid4()
        self.record(open_account(account_id, owner, currency, _metadata()))
        return account_id

    def deposit(self, account_id: UUID, amount: int, reference: str | None = None) -> int:
        event = deposit(self.accounts[account_id], amount, None, reference, _metadata())
        return self.record(event)

    def withdraw(self, account_id: UUID, amount: int, reference: str | None = None) -> int:
        event = withdraw(self.accounts[account_id], amount, None, reference, _metadata())
        return self.record(event)

    def close(self, account_id: UUID) -> int:
        return self.record(close(self.accounts[account_id], _metadata()))

    def random_step(self, rng: random.Random) -> None:
        """One command the rules accept: mostly deposits and withdrawals, some opens and closes."""
        open_accounts = [a for a in self.accounts.values() if a.status == "open"]
        roll = rng.random()
        if not open_accounts or roll < 0.1:
            self.open(owner=rng.choice(("alice", "bob", "carol")), currency=rng.choice(CURRENCIES))
            return
        account = rng.choice(open_accounts)
        if roll < 0.6 or account.balance == 0:
            if account.balance == 0 and roll > 0.97:
                self.close(account.id)
            else:
                reference = rng.choice((None, f"ref-{rng.randrange(1000)}"))
                self.deposit(account.id, rng.randrange(1, 10_000), reference)
        else:
            self.withdraw(account.id, rng.randrange(1, account.balance + 1))

    def write_random(self, count: int, seed: int = 0) -> None:
        rng = random.Random(seed)
        for _ in range(count):
            self.random_step(rng)

    def close_store(self) -> None:
        self.store.close()


class BackgroundWriter:
    """A thread appending random commands until stopped: "a stream of writes" for crash tests.

    It runs until :meth:`stop` rather than for a fixed count, so whatever a test
    does meanwhile (kill -9 a process, flush Redis) happens mid-stream by
    construction, however slow the machine is.
    """

    def __init__(self, database_url: str, seed: int = 0, at_least: int = 200) -> None:
        self._database_url = database_url
        self._seed = seed
        self._at_least = at_least
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self.written = 0
        self.error: BaseException | None = None

    def _run(self) -> None:
        ledger = LedgerWriter(self._database_url)
        rng = random.Random(self._seed)
        try:
            while self.written < self._at_least or not self._stopping.is_set():
                ledger.random_step(rng)
                self.written += 1
        except BaseException as error:
            self.error = error
        finally:
            ledger.close_store()

    def __enter__(self) -> BackgroundWriter:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> int:
        """Stop (after at least ``at_least`` commands), re-raise its error; returns the count."""
        self._stopping.set()
        self._thread.join(timeout=120)
        if self.error is not None:
            raise self.error
        return self.written

    @property
    def running(self) -> bool:
        return self._thread.is_alive()
