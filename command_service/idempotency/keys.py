"""``idempotency_keys`` in PostgreSQL: claim a key, store its answer, purge the expired.

A claim is decided under a row lock, in one short transaction, before the
request executes; execution itself holds no lock, only a *lease*
(``locked_until``). That gives, for one key:

- the first request claims it (the primary key picks one winner among
  concurrent ones) and executes;
- a request while the owner executes finds the lease active (:class:`KeyBusy`)
  and waits for the answer;
- a request after the answer gets it back (:class:`StoredAnswer`);
- a request after an abandoned attempt (the owner died, or answered 5xx and
  gave the lease back) takes over with the SAME command id and
  ``recovering=True``, so it can find in the event store what the abandoned
  attempt recorded instead of recording it twice;
- another request under the same key is refused (:class:`KeyReused`).

Rows live ``ttl`` seconds; an expired row is treated as absent and purged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """A response as it was first given: replayed byte for byte."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True, slots=True)
class Claimed:
    """This attempt owns the key and executes the request."""

    command_id: UUID
    owner: UUID
    recovering: bool
    attempt: int


@dataclass(frozen=True, slots=True)
class KeyBusy:
    """Another attempt executes the request now; its lease runs ``remaining`` longer."""

    remaining: timedelta


@dataclass(frozen=True, slots=True)
class KeyReused:
    """The key belongs to another request (method, path or body differ)."""


ClaimOutcome = Claimed | StoredAnswer | KeyBusy | KeyReused

_SELECT = (
    "SELECT fingerprint, command_id, locked_until, response_status, response_headers,"
    " response_body, expires_at, attempts, now()"
    " FROM idempotency_keys WHERE idempotency_key = %s FOR UPDATE"
)
_INSERT = (
    "INSERT INTO idempotency_keys"
    " (idempotency_key, fingerprint, command_id, owner, locked_until, expires_at)"
    " VALUES (%(key)s, %(fingerprint)s, %(command_id)s, %(owner)s,"
    "  now() + %(lease)s, now() + %(ttl)s)"
    " ON CONFLICT (idempotency_key) DO NOTHING RETURNING 1"
)
_RENEW_EXPIRED = (
    "UPDATE idempotency_keys SET fingerprint = %(fingerprint)s, command_id = %(command_id)s,"
    " owner = %(owner)s, locked_until = now() + %(lease)s, response_status = NULL,"
    " response_headers = NULL, response_body = NULL, attempts = 1, created_at = now(),"
    " expires_at = now() + %(ttl)s WHERE idempotency_key = %(key)s"
)
_TAKE_OVER = (
    "UPDATE idempotency_keys SET owner = %(owner)s, locked_until = now() + %(lease)s,"
    " attempts = attempts + 1 WHERE idempotency_key = %(key)s"
)
_ANSWER = (
    "UPDATE idempotency_keys SET response_status = %s, response_headers = %s,"
    " response_body = %s, owner = NULL, locked_until = NULL"
    " WHERE idempotency_key = %s AND owner = %s"
)
_ABANDON = (
    "UPDATE idempotency_keys SET owner = NULL, locked_until = now()"
    " WHERE idempotency_key = %s AND owner = %s AND response_status IS NULL"
)
_PURGE = (
    "DELETE FROM idempotency_keys WHERE idempotency_key IN ("
    " SELECT idempotency_key FROM idempotency_keys WHERE expires_at < now()"
    " ORDER BY expires_at LIMIT %s FOR UPDATE SKIP LOCKED)"
)


class IdempotencyKeys:
    def __init__(
        self, pool: AsyncConnectionPool[Any], *, ttl_seconds: float, lease_seconds: float
    ) -> None:
        self._pool = pool
        self._ttl = timedelta(seconds=ttl_seconds)
        self._lease = timedelta(seconds=lease_seconds)

    async def claim(self, key: str, fingerprint: bytes) -> ClaimOutcome:
        """Decide what this attempt at ``key`` does (see the module docstring)."""
        owner = uuid4()
        params: dict[str, Any] = {
            "key": key,
            "fingerprint": fingerprint,
            "command_id": uuid4(),
            "owner": owner,
            "lease": self._lease,
            "ttl": self._ttl,
        }
        async with self._pool.connection() as conn, conn.transaction():
            row = await (await conn.execute(_SELECT, (key,))).fetchone()
            if row is None:
                if await (await conn.execute(_INSERT, params)).fetchone():
                    return Claimed(params["command_id"], owner, recovering=False, attempt=1)
                # A concurrent first attempt inserted it (and has committed): read that.
                row = await (await conn.execute(_SELECT, (key,))).fetchone()
                assert row is not None
            stored_fp, command_id, locked_until, status, headers, body, expires_at = row[:7]
            attempts, now = row[7:]
            if expires_at <= now:
                await conn.execute(_RENEW_EXPIRED, params)
                return Claimed(params["command_id"], owner, recovering=False, attempt=1)
            if bytes(stored_fp) != fingerprint:
                return KeyReused()
            if status is not None:
                pairs = [(str(name), str(value)) for name, value in headers or []]
                return StoredAnswer(int(status), pairs, bytes(body or b""))
            if locked_until is not None and locked_until > now:
                return KeyBusy(locked_until - now)
            await conn.execute(_TAKE_OVER, params)
            return Claimed(command_id, owner, recovering=True, attempt=int(attempts) + 1)

    async def answer(self, key: str, owner: UUID, answer: StoredAnswer) -> bool:
        """Store the answer; False when this attempt had lost the key (its lease ran out)."""
        headers = Jsonb([list(pair) for pair in answer.headers])
        async with self._pool.connection() as conn:
            cursor = await conn.execute(_ANSWER, (answer.status, headers, answer.body, key, owner))
            return bool(cursor.rowcount == 1)

    async def abandon(self, key: str, owner: UUID) -> None:
        """Give the lease back at once: the next attempt takes over and recovers."""
        async with self._pool.connection() as conn:
            await conn.execute(_ABANDON, (key, owner))

    async def purge(self, batch: int = 1_000) -> int:
        """Delete expired keys, ``batch`` rows per transaction; how many went."""
        purged = 0
        while True:
            async with self._pool.connection() as conn:
                deleted = int((await conn.execute(_PURGE, (batch,))).rowcount)
            purged += deleted
            if deleted < batch:
                return purged
