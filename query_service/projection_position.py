"""How far the read models have got, kept in memory and followed live.

Read-your-writes needs "has the projection reached position N?" answered for
every request without a query per request. So one task owns one dedicated
connection that LISTENs on the projector's channel and re-reads the
checkpoints whenever it is told they moved; waiting requests sleep on an
:class:`asyncio.Condition` that this task wakes.

The notification is only a doorbell: its payload may arrive out of order or
name one projection of several, so the position always comes from re-reading
``projection_checkpoints``. A slow poll covers a notification lost between
a dropped connection and its replacement, and the connection is re-opened
(and the checkpoints re-read) whenever it fails.
"""

from __future__ import annotations

import asyncio
import logging

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from query_service.metrics import PROJECTION_POSITION
from shared_kernel.settings import PROJECTION_CHANNEL

log = logging.getLogger(__name__)

#: The projections whose tables this service reads. It is only as fresh as
#: the one furthest behind; a projection without a checkpoint row is at 0.
SERVED_PROJECTIONS = ("account_balances", "account_transactions")
#: ``application_name`` of the listening connection, so an operator (or a
#: test) can find it in ``pg_stat_activity``.
LISTENER_APPLICATION_NAME = "query_service.projection_listener"

_SLOWEST_CHECKPOINT = (
    "SELECT min(coalesce(c.position, 0)) FROM unnest(%s::text[]) AS p(name)"
    " LEFT JOIN projection_checkpoints AS c ON c.projection = p.name"
)
_RECONNECT_DELAY_FIRST = 0.05
_RECONNECT_DELAY_MAX = 2.0


class ProjectionPosition:
    """The served projections' position, never going backwards, and a way to wait for it."""

    def __init__(self, database_url: str, *, poll_interval: float) -> None:
        self._database_url = database_url
        self._poll_interval = poll_interval
        self._position = 0
        self._changed = asyncio.Condition()
        self._listening = False

    @property
    def current(self) -> int:
        return self._position

    async def wait_for(self, position: int) -> None:
        """Return once the projection has reached ``position``; bound it with a timeout."""
        if self._position >= position:
            return
        async with self._changed:
            await self._changed.wait_for(lambda: self._position >= position)

    async def check(self) -> int:
        """Readiness: without the listener, read-your-writes would stall; shows the position."""
        if not self._listening:
            msg = "not following the projection checkpoints"
            raise RuntimeError(msg)
        return self._position

    async def follow(self) -> None:
        """Track the checkpoints until cancelled, reconnecting whenever the connection fails."""
        delay = _RECONNECT_DELAY_FIRST
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._database_url,
                    autocommit=True,
                    application_name=LISTENER_APPLICATION_NAME,
                    connect_timeout=5,
                ) as conn:
                    await conn.execute(
                        sql.SQL("LISTEN {}").format(sql.Identifier(PROJECTION_CHANNEL))
                    )
                    # Read only after LISTEN is in place: a checkpoint moved in
                    # between is then either in this read or notified after it.
                    await self._refresh(conn)
                    self._listening = True
                    delay = _RECONNECT_DELAY_FIRST
                    log.info("following projection checkpoints", extra={"position": self._position})
                    await self._listen(conn)
            except psycopg.Error as error:
                log.warning(
                    "projection listener lost its connection; reconnecting",
                    extra={"error": repr(error), "retry_in_seconds": delay},
                )
            except Exception:  # a bug here must not end read-your-writes for good
                log.exception("projection listener failed; restarting it")
            finally:
                self._listening = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RECONNECT_DELAY_MAX)

    async def _listen(self, conn: psycopg.AsyncConnection[TupleRow]) -> None:
        while True:
            # Returns after the first notification (together with any that
            # came in the same packet) or after one poll interval of silence;
            # either way the checkpoints are re-read. Notifications arriving
            # during the re-read are kept by psycopg for the next round.
            async for _ in conn.notifies(timeout=self._poll_interval, stop_after=1):
                pass
            await self._refresh(conn)

    async def _refresh(self, conn: psycopg.AsyncConnection[TupleRow]) -> None:
        cursor = await conn.execute(_SLOWEST_CHECKPOINT, (list(SERVED_PROJECTIONS),))
        row = await cursor.fetchone()
        position = row[0] if row is not None else None
        if isinstance(position, int):
            await self._advance(position)

    async def _advance(self, position: int) -> None:
        if position <= self._position:
            return
        self._position = position
        PROJECTION_POSITION.set(position)
        async with self._changed:
            self._changed.notify_all()
