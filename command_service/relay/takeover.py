"""Taking the relay's advisory lock from a running relay, for an operator tool.

A relay holds its stream's lock for as long as its lock session lives and
never hands it back on request. A tool that must be the only writer of the
stream for a moment (``republish``) therefore queues for the lock FIRST, then
ends the holder's session with ``pg_terminate_backend``: the lock goes to the
queued request, not to the relay reconnecting (PostgreSQL serves a lock's
waiters before newcomers). The relay sees its lock connection fail, logs an
outage and comes back as a standby, asking every second; when the tool ends
and its session with it, a relay takes the lock again and resumes from where
the stream ends.

Ending another session needs a role that may: the same role as the relay's,
a member of ``pg_signal_backend``, or a superuser.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
from psycopg import AsyncConnection

from command_service.relay.leadership import try_to_lead

_LOCKS = (
    "SELECT l.pid, l.granted, COALESCE(a.application_name, '') FROM pg_locks AS l"
    " LEFT JOIN pg_stat_activity AS a ON a.pid = l.pid"
    " WHERE l.locktype = 'advisory' AND l.objsubid = 1"
    " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND ((l.classid::bigint << 32) | l.objid::bigint) = %s"
)
#: ``application_name`` of a tool's lock session: one such tool never ends another's.
TOOL_APPLICATION_NAME = "ledger-relay-takeover"
#: How often the queue for the lock is looked at while waiting for it.
_POLL_SECONDS = 0.05


class LockUnavailable(RuntimeError):
    """The lock could not be taken (not in time, or the holder may not be stopped)."""


async def _locks(conn: AsyncConnection[Any], key: int) -> list[tuple[int, bool, str]]:
    cursor = await conn.execute(_LOCKS, (key,))
    return [(int(pid), bool(granted), str(app)) for pid, granted, app in await cursor.fetchall()]


async def take_over(
    lock_conn: AsyncConnection[Any], watch_conn: AsyncConnection[Any], key: int, wait_seconds: float
) -> list[int]:
    """Hold advisory lock ``key`` in ``lock_conn``'s session; returns the pids of sessions ended.

    ``watch_conn`` is a second connection to look at the queue and end the holder.
    A holder that is another such tool (its ``application_name`` is
    :data:`TOOL_APPLICATION_NAME`) is never ended: two would both write.
    """
    await lock_conn.execute(
        "SELECT set_config('application_name', %s, false)", (TOOL_APPLICATION_NAME,)
    )
    if await try_to_lead(lock_conn, key):
        return []
    me = lock_conn.info.backend_pid
    await lock_conn.execute(
        "SELECT set_config('lock_timeout', %s, false)", (f"{int(wait_seconds * 1000)}ms",)
    )
    waiting = asyncio.ensure_future(lock_conn.execute("SELECT pg_advisory_lock(%s)", (key,)))
    ended: list[int] = []
    try:
        async with asyncio.timeout(wait_seconds):
            while not waiting.done():
                locks = await _locks(watch_conn, key)
                if any(pid == me and not granted for pid, granted, _ in locks):
                    # Queued: whoever asks next is behind us. Now end the holder.
                    for pid, granted, application in locks:
                        if not granted or pid == me or pid in ended:
                            continue
                        if application == TOOL_APPLICATION_NAME:
                            msg = f"another republish of this stream runs (PostgreSQL pid {pid})"
                            raise LockUnavailable(msg)
                        await _terminate(watch_conn, pid)
                        ended.append(pid)
                await asyncio.wait({waiting}, timeout=_POLL_SECONDS)
            await waiting
    except (TimeoutError, psycopg.errors.LockNotAvailable):
        waiting.cancel()
        msg = f"the relay's lock was not free after {wait_seconds:g} s"
        raise LockUnavailable(msg) from None
    finally:
        if not waiting.done():
            waiting.cancel()
    await lock_conn.execute("SELECT set_config('lock_timeout', '0', false)")
    return ended


async def _terminate(conn: AsyncConnection[Any], pid: int) -> None:
    try:
        await conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    except psycopg.errors.InsufficientPrivilege as error:
        msg = (
            f"a relay holds the lock (PostgreSQL pid {pid}) and this role may not end its"
            f" session ({error}); stop the relay, or run as its role or a pg_signal_backend"
            " member"
        )
        raise LockUnavailable(msg) from None
