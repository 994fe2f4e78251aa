"""Which exceptions are an outage of PostgreSQL or Redis rather than a bug or bad data."""

from __future__ import annotations

import psycopg
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

#: Failures of a dependency: retried with backoff, never a reason to dead-letter or give up.
OUTAGES: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
)
