"""How far the read models have got, kept in memory and followed live.

Read-your-writes needs "has the projection reached position N?" answered for
every request without a query per request. So one task owns one dedicated
connection that LISTENs on the projector's channel and re-reads the
checkpoints whenever it is told they moved; waiting requests sleep on an
:class:`asyncio.Condition` that this task wakes.

The same statement reads ``projection_blocks``: the streams the projector holds
back, which reads answer 503 for (see :mod:`query_service.blocked_streams`).

A batch's notification says which projections reached which position, and with
one partition and no new blocks that is taken as it stands (see
:mod:`shared_kernel.checkpoint_news`); any other notification is a doorbell, and
the position comes from re-reading ``projection_checkpoints``. Each served
projection's position is kept: a query waits only for the projections its route
reads (a projection without a checkpoint row counts as 0 there), while
:attr:`ProjectionPosition.current`, the position of the service as a whole, is
the slowest projection that HAS a row. So a projection added by a newer
release, whose row does not exist until the new projector starts, never stalls
the routes that do not read it. With several partitions of the log a projection
has one row per partition and has reached the lowest of them (the relay's
markers move quiet partitions along).

A slow poll covers a notification lost between a dropped connection and its
replacement, and the connection is re-opened (and the checkpoints re-read)
whenever it fails.

On a hot standby (``QUERY_DATABASE_URL`` naming a streaming replica) there is
no LISTEN, and the primary's NOTIFY never reaches it: the checkpoints are
re-read every ``standby_poll_seconds`` while a read waits for a position, and
every ``projection_poll_seconds`` while none does. Read-your-writes stays exact
there: a checkpoint row and the read-model rows it covers were committed in
one transaction on the primary, so the standby replays them together and a
checkpoint it shows at N means the rows up to N are there too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from query_service.blocked_streams import BlockedStream, BlockedStreams
from query_service.metrics import PROJECTION_POSITION
from shared_kernel.checkpoint_news import positions_told
from shared_kernel.settings import PROJECTION_CHANNEL

log = logging.getLogger(__name__)

#: ``application_name`` of the listening connection, so an operator (or a
#: test) can find it in ``pg_stat_activity``.
LISTENER_APPLICATION_NAME = "query_service.projection_listener"

#: Checkpoints and blocks in ONE statement (one snapshot): a position is never
#: known without the blocks as of that position (see ``blocked_streams``).
_CHECKPOINTS_AND_BLOCKS = (
    "SELECT (SELECT coalesce(json_agg(json_build_array(projection, position)), '[]')"
    "  FROM (SELECT projection, min(position) AS position FROM projection_checkpoints"
    "  WHERE projection = ANY(%(served)s) GROUP BY projection) AS reached),"
    " (SELECT coalesce(json_agg(json_build_array(projection, stream_id, position, reason,"
    "  blocked_at)), '[]') FROM projection_blocks WHERE projection = ANY(%(served)s))"
)
_RECONNECT_DELAY_FIRST = 0.05
_RECONNECT_DELAY_MAX = 2.0


async def _in_recovery(conn: psycopg.AsyncConnection[TupleRow]) -> bool:
    cursor = await conn.execute("SELECT pg_is_in_recovery()")
    row = await cursor.fetchone()
    return bool(row and row[0])


class ProjectionPosition:
    """The served projections' positions, never going backwards, and a way to wait for them."""

    def __init__(
        self,
        database_url: str,
        served: Sequence[str],
        blocked: BlockedStreams | None = None,
        *,
        poll_interval: float,
        standby_poll_interval: float = 0.005,
    ) -> None:
        self._database_url = database_url
        #: The projections some query of this service reads (the query bus knows which).
        self._served = list(served)
        self._poll_interval = poll_interval
        self._standby_poll_interval = standby_poll_interval
        self._position = 0
        self._positions: dict[str, int] = {}
        self._changed = asyncio.Condition()
        #: Reads waiting for a position: on a standby, only they call for the fast poll.
        self._waiting = 0
        self._someone_waits = asyncio.Event()
        self._listening = False
        self.blocked = blocked if blocked is not None else BlockedStreams()

    @property
    def current(self) -> int:
        """The slowest served projection that has a checkpoint row (0 before any has)."""
        return self._position

    def reached(self, projections: Sequence[str] | None = None) -> int:
        """The position every one of ``projections`` has reached; :attr:`current` for None."""
        if projections is None:
            return self._position
        return min((self._positions.get(name, 0) for name in projections), default=self._position)

    async def wait_for(self, position: int, projections: Sequence[str] | None = None) -> None:
        """Return once ``projections`` (default: all served) reached ``position``; bound it."""
        if self.reached(projections) >= position:
            return
        self._waiting += 1
        self._someone_waits.set()
        try:
            async with self._changed:
                await self._changed.wait_for(lambda: self.reached(projections) >= position)
        finally:
            self._waiting -= 1

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
                    standby = await _in_recovery(conn)
                    if not standby:
                        await conn.execute(
                            sql.SQL("LISTEN {}").format(sql.Identifier(PROJECTION_CHANNEL))
                        )
                    # Read only after LISTEN is in place: a checkpoint moved in
                    # between is then either in this read or notified after it.
                    await self._refresh(conn)
                    self._listening = True
                    delay = _RECONNECT_DELAY_FIRST
                    log.info(
                        "following projection checkpoints",
                        extra={"position": self._position, "hot_standby": standby},
                    )
                    await (self._poll(conn) if standby else self._listen(conn))
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
            # came in the same packet) or after one poll interval of silence.
            # A batch's own news moves the positions; anything else, and
            # silence, re-reads the checkpoints. Notifications arriving
            # during the re-read are kept by psycopg for the next round.
            heard, reread = False, False
            async for note in conn.notifies(timeout=self._poll_interval, stop_after=1):
                heard, told = True, positions_told(note.payload)
                if told is None:
                    reread = True
                else:
                    await self._advance({name: told[name] for name in self._served if name in told})
            if reread or not heard:
                await self._refresh(conn)

    async def _poll(self, conn: psycopg.AsyncConnection[TupleRow]) -> None:
        while True:
            if self._waiting:
                await asyncio.sleep(self._standby_poll_interval)
            else:  # nobody waits: the slow poll, unless a read starts waiting first
                self._someone_waits.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._poll_interval):
                        await self._someone_waits.wait()
            await self._refresh(conn)

    async def _refresh(self, conn: psycopg.AsyncConnection[TupleRow]) -> None:
        cursor = await conn.execute(_CHECKPOINTS_AND_BLOCKS, {"served": self._served})
        row = await cursor.fetchone()
        checkpoints, blocks = row if row is not None else ([], [])
        # Blocks first: a request woken by the new position must see them.
        self.blocked.replace(
            BlockedStream(str(name), UUID(str(stream)), int(at), str(reason), str(since))
            for name, stream, at, reason, since in blocks
        )
        await self._advance({str(name): int(position) for name, position in checkpoints})

    async def _advance(self, found: dict[str, int]) -> None:
        moved = False
        for name, position in found.items():
            if position > self._positions.get(name, -1):
                self._positions[name] = position
                moved = True
        if not moved:
            return
        self._position = max(self._position, min(self._positions.values()))
        PROJECTION_POSITION.set(self._position)
        async with self._changed:
            self._changed.notify_all()
