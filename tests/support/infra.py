"""Scratch PostgreSQL databases and Redis key names, unique per test run.

Tests never touch the database or stream a developer's ``make run`` uses:
each gets a database named ``ledger_test_<random>`` (dropped afterwards) and a
stream key under ``test:<random>:``.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from schema.scratch import scratch_database as scratch
from schema.scratch import with_database

#: The server the tests use; override with TEST_POSTGRES_URL / TEST_REDIS_URL.
POSTGRES_SERVER_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def database_url_for(dbname: str) -> str:
    return with_database(POSTGRES_SERVER_URL, dbname)


@contextmanager
def scratch_database(*, migrated: bool = True) -> Iterator[str]:
    """A new, empty (or migrated) database; dropped when the block ends."""
    with scratch(POSTGRES_SERVER_URL, "ledger_test", migrated=migrated) as url:
        yield url


def unique_stream_name() -> str:
    return f"test:{uuid.uuid4().hex[:12]}:events"


def delete_stream(name: str) -> None:
    """Delete the stream ``name`` and every key under it (groups' and relays' state)."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        for key in client.scan_iter(match=f"{name}*"):
            client.delete(key)
    finally:
        client.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: Every variable that points a process or a make target at a server.
URL_VARIABLES = (
    "DATABASE_URL",
    "WRITER_DATABASE_URL",
    "PROJECTOR_DATABASE_URL",
    "QUERY_DATABASE_URL",
    "REDIS_URL",
)


def environ_without_urls() -> dict[str, str]:
    """This environment less its server URLs, so that only what a test gives counts."""
    return {key: value for key, value in os.environ.items() if key not in URL_VARIABLES}
