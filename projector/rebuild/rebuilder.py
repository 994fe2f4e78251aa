"""One rebuild of one projection, while the live projector and the queries keep running.

1. **claim**: take the projection's rebuild lock (another run: :class:`RebuildRunning`);
   resume the unfinished rebuild a killed run left (its tables beside are
   exactly as far as its row says), or start one: a ``projection_rebuilds``
   row and empty copies of the tables in ``rebuild_<id>``, in one transaction.
2. **build**: replay the store up to its head into the copies, in large batches.
3. **verify**: row counts and checksums of the copies against the projection's
   independent SQL fold of the store at the same position. On a mismatch the
   swap is refused: the live tables stay, the row says which rows differ.
4. **catch up** near the head again (writes went on meanwhile), then **swap**
   in one transaction (:mod:`projector.rebuild.swap`); the replaced tables are
   kept in ``retired_<id>`` for a rollback until dropped.

Nothing here touches the live tables before the swap, so a run killed at any
point leaves the live read model as it was.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.errors import LockNotAvailable

from projector import metrics
from projector.projections import PROJECTIONS, Projection
from projector.rebuild import records
from projector.rebuild.build_blocks import ensure_blocks_table
from projector.rebuild.history import replay_into
from projector.rebuild.lock import try_lock, unlock
from projector.rebuild.records import RebuildRecord
from projector.rebuild.swap import SwapOutcome, swap_in
from projector.rebuild.tables import analyze, create_beside, drop_schema, live_schema, tables_in
from projector.verification import verify
from shared_kernel.event_log import head_position
from shared_kernel.settings import EVENTS_TABLE

log = logging.getLogger(__name__)

#: States a new run picks up where the last one stopped (if its tables are there).
RESUMABLE: tuple[records.State, ...] = (*records.UNFINISHED, "failed")
#: ``application_name`` of a rebuild's connection (visible in ``pg_stat_activity``).
APPLICATION_NAME = "projector.rebuild"

#: Told after each batch: events read so far, events to read in all.
OnProgress = Callable[[int, int], None]
#: Runs just before the verification, on the rebuild's connection (tests corrupt a row).
BeforeVerify = Callable[[AsyncConnection[Any], RebuildRecord], Awaitable[None]]

_COUNT = f"SELECT count(*) FROM {EVENTS_TABLE} WHERE notification_id > %s AND notification_id <= %s"


class RebuildRunning(Exception):
    """Another run holds this projection's rebuild lock."""

    def __init__(self, projection: str) -> None:
        super().__init__(f"a rebuild of {projection} is already running")
        self.projection = projection


class SwapNotPossible(Exception):
    """The swap could not take its locks in any of its attempts."""


@dataclass(frozen=True)
class RebuildOptions:
    batch_size: int = 10_000
    swap_within: int = 2_000
    """Enter the swap once the copies are at most this many positions behind the head."""
    lock_timeout_seconds: float = 5.0
    swap_attempts: int = 5


async def connect(database_url: str) -> AsyncConnection[Any]:
    return await AsyncConnection.connect(
        database_url, autocommit=True, application_name=APPLICATION_NAME
    )


async def count_events(conn: AsyncConnection[Any], after: int, up_to: int) -> int:
    cursor = await conn.execute(_COUNT, (after, up_to))
    row = await cursor.fetchone()
    return int(row[0]) if row else 0


class Rebuild:
    def __init__(
        self,
        database_url: str,
        projection: Projection,
        options: RebuildOptions | None = None,
        *,
        on_progress: OnProgress | None = None,
        before_verify: BeforeVerify | None = None,
        registry: Sequence[Projection] = PROJECTIONS,
    ) -> None:
        self._database_url = database_url
        self.projection = projection
        self.options = options or RebuildOptions()
        self._on_progress = on_progress
        self._before_verify = before_verify
        self._versions = {p.NAME: p.VERSION for p in registry}
        self._conn: AsyncConnection[Any] | None = None
        self._reader: AsyncConnection[Any] | None = None
        self._record: RebuildRecord | None = None
        self._total = 0
        self._done = 0
        self._counted_to = 0

    @property
    def record(self) -> RebuildRecord:
        if self._record is None:
            msg = "claim() first"
            raise RuntimeError(msg)
        return self._record

    async def claim(self) -> RebuildRecord:
        """Take the lock and resume or start the rebuild; raises :class:`RebuildRunning`."""
        name = self.projection.NAME
        conn = await connect(self._database_url)
        if not await try_lock(conn, name):
            await conn.close()
            raise RebuildRunning(name)
        self._conn = conn
        try:
            head = await head_position(conn)
            record = await self._resumable(conn)
            if record is not None:
                await ensure_blocks_table(conn, record.beside_schema)  # kept by older builds
                remaining = await count_events(conn, record.built_position, head)
                self._total = record.events_done + remaining
                await records.add_to_total(conn, record.id, self._total - record.events_total)
                log.info(
                    "resuming the rebuild its last run left unfinished",
                    extra={"projection": name, "rebuild_id": record.id,
                           "built_position": record.built_position},
                )  # fmt: skip
            else:
                self._total = await count_events(conn, 0, head)
                source = await live_schema(conn, self.projection.TABLES[0])
                async with conn.transaction():
                    record = await records.create(conn, name, self.projection.VERSION, self._total)
                    await create_beside(conn, record.beside_schema, source, self.projection.TABLES)
                    await ensure_blocks_table(conn, record.beside_schema)
                log.info(
                    "rebuild started",
                    extra={"projection": name, "rebuild_id": record.id, "events": self._total},
                )
            self._counted_to = head
            self._record = await records.by_id(conn, record.id)
            self._done = self._record.events_done
        except BaseException:
            await self.close()
            raise
        return self._record

    async def _resumable(self, conn: AsyncConnection[Any]) -> RebuildRecord | None:
        previous = await records.latest(conn, self.projection.NAME)
        if previous is None or previous.state not in RESUMABLE or previous.old_dropped_at:
            return None
        tables = self.projection.TABLES
        present = await tables_in(conn, previous.beside_schema, tables)
        if previous.version == self.projection.VERSION and len(present) == len(tables):
            return previous
        if previous.state in records.UNFINISHED:
            await drop_schema(conn, previous.beside_schema)
            await records.set_state(
                conn, previous.id, "abandoned", finished=True,
                error="superseded by a new rebuild (other version, or its tables were gone)",
            )  # fmt: skip
            await records.mark_dropped(conn, previous.id)
        return None

    async def run(self) -> RebuildRecord:
        """Build, verify, catch up and swap; returns the final row (``swapped`` or ``refused``).

        Raises on a failure after recording it; a cancelled run stays resumable.
        """
        conn, record = self._connection(), self.record
        try:
            self._reader = await AsyncConnection.connect(
                self._database_url, autocommit=True, application_name=f"{APPLICATION_NAME}.reader"
            )
            if record.state != "building":
                await records.set_state(conn, record.id, "building")
            position = await self._build(conn, await head_position(conn))
            await records.set_state(conn, record.id, "verifying")
            await analyze(conn, record.beside_schema, self.projection.TABLES)
            if self._before_verify is not None:
                await self._before_verify(conn, record)
            verification = await verify(conn, self.projection, record.beside_schema, position)
            if not verification.ok:
                log.error(
                    "rebuild refused: the rebuilt tables differ from the fold of the store",
                    extra={"projection": record.projection, "rebuild_id": record.id,
                           "report": verification.describe()},
                )  # fmt: skip
                await records.set_state(
                    conn, record.id, "refused", error=verification.describe(),
                    report=verification.to_json(), verified_position=position, finished=True,
                )  # fmt: skip
                return await records.by_id(conn, record.id)
            await records.set_state(
                conn, record.id, "verifying", report=verification.to_json(),
                verified_position=position,
            )  # fmt: skip
            outcome = await self._swap(conn, position)
            log.info(
                "rebuild swapped in",
                extra={"projection": record.projection, "rebuild_id": record.id,
                       "checkpoint": outcome.position, "kept_in": record.retired_schema,
                       "blocked_streams": [str(b.stream_id) for b in outcome.blocks.blocked],
                       "unblocked_streams": [str(s) for s in outcome.blocks.unblocked]},
            )  # fmt: skip
            return await records.by_id(conn, record.id)
        except Exception as error:
            with contextlib.suppress(Exception):
                await records.set_state(
                    conn, record.id, "failed", error=f"{type(error).__name__}: {error}",
                    finished=True,
                )  # fmt: skip
            log.exception("rebuild failed", extra={"projection": record.projection})
            raise
        finally:
            await self.close()

    def _connection(self) -> AsyncConnection[Any]:
        if self._conn is None:
            msg = "claim() first"
            raise RuntimeError(msg)
        return self._conn

    async def _build(self, conn: AsyncConnection[Any], up_to: int) -> int:
        record = await records.by_id(conn, self.record.id)
        if up_to > self._counted_to:
            more = await count_events(conn, self._counted_to, up_to)
            self._total += more
            self._counted_to = up_to
            await records.add_to_total(conn, record.id, more)

        async def save(batch_conn: AsyncConnection[Any], position: int, done: int) -> None:
            await records.record_progress(batch_conn, record.id, position, done)

        def on_batch(done: int) -> None:
            self._done = done
            metrics.rebuild_progress(self.projection.NAME, done, max(self._total, done))
            if self._on_progress is not None:
                self._on_progress(done, max(self._total, done))

        replayed = await replay_into(
            conn, self.projection, record.beside_schema, after=record.built_position,
            up_to=max(up_to, record.built_position), batch_size=self.options.batch_size,
            events_done=record.events_done, save=save, on_batch=on_batch, reader=self._reader,
        )  # fmt: skip
        return replayed.position

    async def _swap(self, conn: AsyncConnection[Any], position: int) -> SwapOutcome:
        record = self.record

        async def save(batch_conn: AsyncConnection[Any], at: int, done: int) -> None:
            await records.record_progress(batch_conn, record.id, at, self._done + done)

        async def after_swap(swap_conn: AsyncConnection[Any], outcome: SwapOutcome) -> None:
            await records.record_swap(
                swap_conn, record.id, state="swapped", built_position=outcome.position,
                retired_version=outcome.retired_version, retired_position=outcome.retired_position,
                blocks=outcome.blocks,
            )  # fmt: skip

        for attempt in range(1, self.options.swap_attempts + 1):
            head = await head_position(conn)
            while head - position > self.options.swap_within:
                position = await self._build(conn, head)
                head = await head_position(conn)
            try:
                return await swap_in(
                    conn, self.projection, candidate_schema=record.beside_schema,
                    candidate_position=position, park_schema=record.retired_schema,
                    version=self.projection.VERSION, all_versions=self._versions,
                    batch_size=self.options.batch_size,
                    lock_timeout_seconds=self.options.lock_timeout_seconds,
                    save=save, after_swap=after_swap,
                )  # fmt: skip
            except LockNotAvailable:
                log.warning(
                    "swap could not take its locks in time; catching up and trying again",
                    extra={"projection": record.projection, "attempt": attempt},
                )
        msg = f"the swap could not take its locks in {self.options.swap_attempts} attempts"
        raise SwapNotPossible(msg)

    async def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            await reader.close()
        conn, self._conn = self._conn, None
        if conn is None or conn.closed:
            return
        with contextlib.suppress(Exception):
            await unlock(conn, self.projection.NAME)
        await conn.close()
