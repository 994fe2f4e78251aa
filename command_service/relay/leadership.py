"""One relay publishes at a time: the one holding a PostgreSQL advisory lock.

The lock belongs to the session of one dedicated connection, so it is released
the moment that session ends, including when the process is killed with -9:
a standby relay, retrying every second, then takes over. The same connection
LISTENs for the event store's NOTIFY, which ties "I still lead" and "I am told
about appends" to one socket: if it breaks, the relay stops and re-elects.
"""

from __future__ import annotations

import time
from typing import Any

from psycopg import AsyncConnection, sql

from shared_kernel.advisory_locks import advisory_lock_key
from shared_kernel.settings import EVENTS_CHANNEL


def leader_lock_key(stream_name: str) -> int:
    """A constant advisory-lock key per stream: relays of one stream exclude each other."""
    return advisory_lock_key(f"ledger-relay:{stream_name}")


async def try_to_lead(conn: AsyncConnection[Any], key: int) -> bool:
    """Take the relay lock in this session if nobody holds it; never waits."""
    cursor = await conn.execute("SELECT pg_try_advisory_lock(%s)", (key,))
    row = await cursor.fetchone()
    return bool(row and row[0])


#: The longest channel name PostgreSQL takes (NAMEDATALEN - 1 bytes).
_LONGEST_CHANNEL = 63


def wire_name_channel(wire_name: str) -> str | None:
    """The channel the store's append also NOTIFYs for each wire name it appended;
    None for a name too long to make one (its followers listen to every append)."""
    channel = f"{EVENTS_CHANNEL}:{wire_name}"
    return channel if len(channel.encode()) <= _LONGEST_CHANNEL else None


def append_channels(wanted: frozenset[str] | None) -> list[str]:
    """The channels to LISTEN on for appends of ``wanted`` (None: every append)."""
    if wanted is None:
        return [EVENTS_CHANNEL]
    channels = [wire_name_channel(name) for name in sorted(wanted)]
    if any(channel is None for channel in channels):
        return [EVENTS_CHANNEL]
    return [channel for channel in channels if channel is not None]


async def listen_for_appends(
    conn: AsyncConnection[Any], wanted: frozenset[str] | None = None
) -> None:
    """Subscribe to the store's NOTIFY of every append, or only of those holding ``wanted``.

    A follower of a few wire names listens on their own channels, so the appends of
    everything else (most of them, deposits) never wake it.
    """
    for channel in append_channels(wanted):
        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))


async def wait_for_append(
    conn: AsyncConnection[Any], seconds: float, wanted: frozenset[str] | None = None
) -> bool:
    """Wait up to ``seconds`` for an append (of one of the ``wanted`` wire names, when
    given); False when the wait timed out.

    The store's NOTIFY on the channel of every append names the wire names appended
    (``schema/sql/011_append_function.sql``); an empty payload (a NOTIFY on a wire
    name's own channel, from elsewhere, or too many names) counts as any. The
    generator is run to its end (``stop_after=1``) rather than left with ``break``,
    because it holds the connection's lock until it finishes.
    """
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        payloads = [n.payload async for n in conn.notifies(timeout=remaining, stop_after=1)]
        if not payloads:
            return False
        if wanted is None or appended_any(payloads[0], wanted):
            return True
    return False


def appended_any(payload: str, wanted: frozenset[str]) -> bool:
    """Whether an append NOTIFY with ``payload`` may hold an event of ``wanted``."""
    return not payload or not wanted.isdisjoint(payload.split())
