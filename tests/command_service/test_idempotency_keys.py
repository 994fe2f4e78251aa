"""``idempotency_keys`` against real PostgreSQL: claims, leases, answers, expiry, purge."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from command_service.idempotency.keys import (
    Claimed,
    IdempotencyKeys,
    KeyBusy,
    KeyReused,
    StoredAnswer,
)

ANSWER = StoredAnswer(201, [("content-type", "application/json"), ("location", "/x")], b"{}")


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        database_url, min_size=1, max_size=8, open=False, kwargs={"autocommit": True}
    )
    await pool.open()
    yield pool
    await pool.close()


@pytest.fixture
def keys(pool: AsyncConnectionPool[Any]) -> IdempotencyKeys:
    return IdempotencyKeys(pool, ttl_seconds=3600, lease_seconds=30)


async def test_the_first_claim_executes_and_later_ones_get_its_answer(
    keys: IdempotencyKeys,
) -> None:
    first = await keys.claim("k", b"print")
    assert isinstance(first, Claimed) and not first.recovering and first.attempt == 1
    assert isinstance(await keys.claim("k", b"print"), KeyBusy)
    assert isinstance(await keys.claim("k", b"other"), KeyReused)

    assert await keys.answer("k", first.owner, ANSWER)

    assert await keys.claim("k", b"print") == ANSWER
    assert isinstance(await keys.claim("k", b"other"), KeyReused)


async def test_concurrent_first_claims_have_one_winner(keys: IdempotencyKeys) -> None:
    outcomes = await asyncio.gather(*(keys.claim("race", b"p") for _ in range(20)))
    assert sum(isinstance(o, Claimed) for o in outcomes) == 1
    assert sum(isinstance(o, KeyBusy) for o in outcomes) == 19


async def test_an_abandoned_claim_is_taken_over_with_the_same_command_id(
    keys: IdempotencyKeys,
) -> None:
    first = await keys.claim("k", b"p")
    assert isinstance(first, Claimed)
    await keys.abandon("k", first.owner)  # a 5xx answer gives the lease back

    second = await keys.claim("k", b"p")

    assert isinstance(second, Claimed)
    assert (second.command_id, second.recovering, second.attempt) == (first.command_id, True, 2)
    assert not await keys.answer("k", first.owner, ANSWER), "the first attempt lost the key"
    assert await keys.answer("k", second.owner, ANSWER)


async def test_a_lease_runs_out(pool: AsyncConnectionPool[Any]) -> None:
    keys = IdempotencyKeys(pool, ttl_seconds=3600, lease_seconds=0.2)
    first = await keys.claim("k", b"p")
    assert isinstance(await keys.claim("k", b"p"), KeyBusy)
    await asyncio.sleep(0.3)
    second = await keys.claim("k", b"p")
    assert isinstance(first, Claimed) and isinstance(second, Claimed) and second.recovering


async def test_expired_keys_are_new_again_and_purged(
    keys: IdempotencyKeys, database_url: str
) -> None:
    for name in ("old-1", "old-2", "fresh"):
        claim = await keys.claim(name, b"p")
        assert isinstance(claim, Claimed)
        await keys.answer(name, claim.owner, ANSWER)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE idempotency_keys SET expires_at = now() - interval '1 second'"
            " WHERE idempotency_key LIKE 'old-%'"
        )

    reused = await keys.claim("old-1", b"another request")
    assert isinstance(reused, Claimed) and not reused.recovering

    assert await keys.purge(batch=1) == 1  # old-2; old-1 lives again
    with psycopg.connect(database_url) as conn:
        left = conn.execute("SELECT idempotency_key FROM idempotency_keys ORDER BY 1").fetchall()
    assert [k for (k,) in left] == ["fresh", "old-1"]
