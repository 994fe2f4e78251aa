"""The one policy of every PostgreSQL connection pool: checked connections, bounded waits.

After PostgreSQL restarts (or an operator ends a backend), an idle pooled
connection is dead, and a pool that hands it out turns the next request into
a 500. So every pool checks a connection before handing it out and replaces a
dead one. The check costs no round trip while nothing happened: a server that
ends a session writes to its socket (an error, then end of file), so an idle
connection whose socket has nothing to read is as alive as an empty query
would find it, and only a stirred one is pinged (:func:`stirred_while_idle`).
A connection that dies without a word (a cut network) fails its next statement
instead, which its user retries or answers as an outage, as it must anyway for
a connection that dies between the check and the statement. And a request never waits
long for a connection: after :data:`POOL_WAIT_SECONDS` the pool raises
``PoolTimeout`` (a ``psycopg.OperationalError``), which the HTTP services
answer as a 503 with Retry-After (:mod:`shared_kernel.outages`) and the
workers treat as an outage.

The eventsourcing library builds its own (synchronous) pool from ``POSTGRES_*``
variables; :func:`event_store_pool_env` gives it the same policy.
"""

from __future__ import annotations

import asyncio
import select
from typing import Any

from psycopg import AsyncConnection, Connection
from psycopg.pq import ConnStatus
from psycopg_pool import AsyncConnectionPool, ConnectionPool

#: Longest a caller waits for a pooled connection before the pool gives up.
POOL_WAIT_SECONDS = 2
#: Longest one connection attempt may take (a host that drops packets, not refuses).
CONNECT_TIMEOUT_SECONDS = 2
#: How long the pool keeps re-trying one lost connection, with a doubling delay,
#: before it drops the attempt. psycopg_pool's 300 s default lets that delay grow
#: to tens of seconds during an outage, so a server that came back would wait for
#: it; once the attempt is dropped, the next request starts a fresh one at once.
RECONNECT_GIVE_UP_SECONDS = 5


def stirred_while_idle(conn: Connection[Any] | AsyncConnection[Any]) -> bool:
    """Whether anything reached an idle connection since its last use (no round trip).

    A session the server ended has an error and end of file waiting on its socket;
    a notification or a parameter change also makes it readable, and then the
    caller pings to find out (one round trip, only then).
    """
    pgconn = conn.pgconn
    if pgconn.status != ConnStatus.OK:
        return True
    # poll, not select: select refuses a descriptor above 1023, which a service
    # holding many client sockets reaches.
    poller = select.poll()
    poller.register(pgconn.socket, select.POLLIN)
    return bool(poller.poll(0))


def check_when_stirred(conn: Connection[Any]) -> None:
    """A synchronous pool's check: ping only a connection :func:`stirred_while_idle`."""
    if stirred_while_idle(conn):
        ConnectionPool.check_connection(conn)


#: Every service connection's session settings. No JIT: statements here take a
#: fraction of a millisecond, and compiling one costs 8-25 ms, which PostgreSQL decides
#: to pay from cost estimates alone (a store without fresh statistics estimates every
#: stream at thousands of events, and a prepared load then compiled at every call).
SESSION_OPTIONS = "-c jit=off"
#: For a connection whose repeated statements read by arrays of keys (``= ANY($1)``,
#: ``unnest($1)``): a generic plan estimates such an array at 10 to 100 elements, so
#: PostgreSQL finds it dearer than a plan for the one or two keys at hand and plans
#: the statement anew at every execution. Seen in the projector: its two reads of a
#: one-deposit batch got 286 custom plans in 286 runs; forced generic, the batch took
#: 0.85 ms of the server's CPU instead of 1.03. Only prepared statements are affected
#: (psycopg prepares a statement from its fifth run), and those are key lookups.
GENERIC_PLANS = "-c plan_cache_mode=force_generic_plan"


def adopt_library_pool(pool: ConnectionPool[Any]) -> None:
    """Give the eventsourcing library's pool, before it opens, what :func:`postgres_pool`
    gives ours: the session settings, and the check that pings only a stirred
    connection (the library's pre-ping is an empty query before every use: a round
    trip per append)."""
    kwargs = pool.kwargs
    assert isinstance(kwargs, dict), "the library gives its pool a dict of arguments"
    kwargs["options"] = SESSION_OPTIONS
    if pool._check is not None:  # pre-ping on (event_store_pool_env)
        pool._check = check_when_stirred


def postgres_pool(
    url: str, name: str, *, max_size: int, min_size: int = 1, generic_plans: bool = False
) -> AsyncConnectionPool[Any]:
    """An autocommit pool named ``name`` (also its ``application_name``); opened by its owner.

    ``generic_plans``: prepared statements always take their generic plan (:data:`GENERIC_PLANS`).

    Autocommit: most users run one statement per connection use, and those that
    need a transaction open one explicitly (``conn.transaction()``).
    """
    sweeps: set[asyncio.Task[None]] = set()

    async def check(conn: AsyncConnection[Any]) -> None:
        if not stirred_while_idle(conn):
            return
        try:
            await AsyncConnectionPool.check_connection(conn)
        except Exception:
            # The idle connections beside a dead one most likely died with it (a restart,
            # an operator ending backends). psycopg_pool would try them one by one, backing
            # off 1 s, then 2 s, between failed checks, past POOL_WAIT_SECONDS: have it
            # test and replace them all at once instead (the waiting request then gets a
            # fresh one).
            if not sweeps:
                sweep = asyncio.get_running_loop().create_task(pool.check())
                sweeps.add(sweep)
                sweep.add_done_callback(sweeps.discard)
            raise

    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        url,
        min_size=min(min_size, max_size),
        max_size=max_size,
        open=False,
        kwargs={
            "autocommit": True,
            "application_name": name,
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "options": f"{SESSION_OPTIONS} {GENERIC_PLANS}" if generic_plans else SESSION_OPTIONS,
        },
        check=check,
        timeout=POOL_WAIT_SECONDS,
        reconnect_timeout=RECONNECT_GIVE_UP_SECONDS,
        name=name,
    )
    return pool


def event_store_pool_env() -> dict[str, str]:
    """The same policy for the eventsourcing library's pool, as its environment variables.

    ``POSTGRES_PRE_PING`` makes it check connections (the library pings every time;
    :func:`adopt_library_pool` swaps in :func:`check_when_stirred`); ``POSTGRES_CONNECT_TIMEOUT``
    is, despite its name, how long it waits for a pooled connection. The command
    service's recorder retries a failed append three times (the library's reads ten),
    then asks the store whether the append committed (``COMMIT_SETTLE_SECONDS``).
    """
    return {"POSTGRES_PRE_PING": "y", "POSTGRES_CONNECT_TIMEOUT": str(POOL_WAIT_SECONDS)}
