"""A hot account: one account given a long history fast, through the store's own append.

The benchmarks send a share of their deposits to such an account, so its
cost (loading it, its statement lines, its snapshots) is measured as a real
busy account's would be. Its history is written in big batches with a
snapshot per batch, as the command service leaves an account it snapshots.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx

from bench.history import new_metadata
from command_service.domain.account import Account, apply, deposit
from command_service.event_store import LedgerEventStore, event_store_env
from shared_kernel.language.events import LedgerEvent


def grow_history(database_url: str, account_id: str, events: int, batch: int = 2_000) -> int:
    """Append ``events`` deposits of 1 to ``account_id`` (snapshots as the service takes
    them); the account's version afterwards."""
    store = LedgerEventStore(env=event_store_env(database_url, pool_size=1))
    try:
        account: Account = store.get_account(uuid.UUID(account_id))
        written = 0
        while written < events:
            pending: list[LedgerEvent] = []
            for _ in range(min(batch, events - written)):
                event = deposit(account, 1, None, "bench history", new_metadata())
                after = apply(account, event)
                assert after is not None
                account = after
                pending.append(event)
            store.record(pending, snapshots=[account])
            written += len(pending)
        return account.version
    finally:
        store.close()


async def wait_shown(
    client: httpx.AsyncClient, query_url: str, account_id: str, version: int
) -> None:
    """Wait until the query service shows the account at ``version`` (the read side caught up)."""
    deadline = time.perf_counter() + 300
    while time.perf_counter() < deadline:
        response = await client.get(f"{query_url}/accounts/{account_id}")
        if response.status_code == httpx.codes.OK and response.json()["version"] >= version:
            return
        await asyncio.sleep(0.2)
    msg = f"the read side did not show the hot account at version {version} within 300 s"
    raise RuntimeError(msg)
