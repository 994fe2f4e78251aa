"""Fill an event store fast: many accounts' histories saved thousands of events per append.

The rebuild benchmark (and the rebuild tests) need a store of a given size in
seconds, not the minutes one HTTP command per event would take. The events
are made by the command side's own domain functions and saved through
:class:`~command_service.event_store.LedgerEventStore`, so the store holds
exactly what the service would have written; only the batching differs (one
``save`` of ``batch`` events, one lock and one commit).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from uuid import UUID

from command_service.domain.account import Account, apply, deposit, open_account, withdraw
from command_service.event_store import LedgerEventStore, event_store_env
from shared_kernel.language.events import EventMetadata, LedgerEvent

OWNERS = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi")
CURRENCIES = ("EUR", "USD", "JPY")


def new_metadata() -> EventMetadata:
    """Metadata of a bench-made event: a cause of its own, as a request would give it."""
    request = str(uuid.uuid4())
    return EventMetadata(correlation_id=request, causation_id=request)


def fill_store(
    database_url: str,
    events: int,
    *,
    accounts: int = 1_000,
    batch: int = 2_000,
    seed: int = 0,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Append ``events`` events (openings, then deposits and withdrawals); returns how many."""
    rng = random.Random(seed)
    store = LedgerEventStore(env=event_store_env(database_url, pool_size=1))
    state: dict[UUID, Account] = {}
    ids: list[UUID] = []
    pending: list[LedgerEvent] = []
    written = 0

    def record(event: LedgerEvent) -> None:
        nonlocal written
        state[event.originator_id] = apply(state.get(event.originator_id), event)
        pending.append(event)
        if len(pending) >= batch:
            store.save(*pending)
            written += len(pending)
            pending.clear()
            if on_batch is not None:
                on_batch(written)

    try:
        for _ in range(min(accounts, events)):
            account_id = uuid.uuid4()
            ids.append(account_id)
            owner, currency = rng.choice(OWNERS), rng.choice(CURRENCIES)
            record(open_account(account_id, owner, currency, new_metadata()))
        for _ in range(events - len(ids)):
            account = state[rng.choice(ids)]
            if account.balance > 0 and rng.random() < 0.3:
                amount = rng.randrange(1, account.balance + 1)
                record(withdraw(account, amount, None, None, new_metadata()))
            else:
                record(deposit(account, rng.randrange(1, 10_000), None, None, new_metadata()))
        if pending:
            store.save(*pending)
            written += len(pending)
            if on_batch is not None:
                on_batch(written)
    finally:
        store.close()
    return written
