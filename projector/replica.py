"""One projector process among replicas: lease partitions, run a :class:`Projector` for each.

The leases (:mod:`projector.leases`) live on one dedicated connection. Every
``partition_balance_seconds`` the process counts the members, releases the
partitions beyond its share (stopping their projectors first) and leases free
ones up to its share (starting a projector for each). When that connection
fails, PostgreSQL has let go of every lease, so every projector here stops at
once, and the process joins again after a backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from typing import Any

import psycopg

from projector.leases import LEASE_APPLICATION_NAME, PartitionLeases
from projector.projector import Projector, ProjectorStatus, show_status
from shared_kernel.retries import RetryPause

log = logging.getLogger(__name__)


class ProjectorReplica:
    """Holds a fair share of the partitions and applies them."""

    def __init__(
        self,
        database_url: str,
        stream_name: str,
        partitions: int,
        worker: Callable[[int, Callable[[], None]], Projector],
        *,
        balance_seconds: float,
    ) -> None:
        self._database_url = database_url
        self._stream_name = stream_name
        self.partitions = partitions
        self._worker = worker
        self._balance_seconds = balance_seconds
        self._running: dict[int, tuple[Projector, asyncio.Task[None]]] = {}
        self._retry = RetryPause()
        self.failing = ""

    @property
    def held(self) -> list[int]:
        """The partitions this process applies now."""
        return sorted(self._running)

    @property
    def statuses(self) -> dict[int, ProjectorStatus]:
        return {k: projector.status for k, (projector, _) in sorted(self._running.items())}

    @property
    def checkpoint(self) -> int | None:
        """The lowest checkpoint of the partitions held; None while holding none."""
        return min((status.checkpoint for status in self.statuses.values()), default=None)

    def report(self) -> None:
        show_status(list(self.statuses.values()))

    async def run(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._database_url, autocommit=True, connect_timeout=5,
                    application_name=LEASE_APPLICATION_NAME,
                ) as conn:  # fmt: skip
                    leases = PartitionLeases(conn, self._stream_name)
                    member = await leases.join()
                    log.info(
                        "projector joined",
                        extra={"member": member, "partitions": self.partitions},
                    )
                    self.failing = ""
                    self._retry.recovered()
                    while True:
                        await self._balance(leases, member)
                        await asyncio.sleep(self._balance_seconds)
            except psycopg.Error as error:
                self.failing = f"{type(error).__name__}: {error}"
                log.warning(
                    "projector lost its partition leases (PostgreSQL); stopping its partitions",
                    extra={"error": self.failing, "partitions": self.held},
                )
            finally:
                await self._stop_all()
            await self._retry.after_failure()

    async def _balance(self, leases: PartitionLeases, member: int) -> None:
        share = math.ceil(self.partitions / await leases.members())
        for partition in self.held[share:]:
            await self._stop(partition)
            await leases.release(partition)
            log.info("partition handed back", extra={"partition": partition, "share": share})
        if len(self._running) >= share:
            return
        # Start looking where this member's share would begin, so members that
        # balance at the same moment mostly try different partitions.
        start = (member * share) % self.partitions
        for offset in range(self.partitions):
            partition = (start + offset) % self.partitions
            if partition in self._running or not await leases.take(partition):
                continue
            projector = self._worker(partition, self.report)
            task = asyncio.create_task(projector.run(), name=f"projector-partition-{partition}")
            self._running[partition] = (projector, task)
            log.info("partition taken", extra={"partition": partition, "share": share})
            if len(self._running) >= share:
                return

    async def _stop(self, partition: int) -> None:
        _, task = self._running.pop(partition)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _stop_all(self) -> None:
        for partition in self.held:
            await self._stop(partition)


def worker_failures(replica: ProjectorReplica) -> list[str]:
    """Why each failing partition fails, for the readiness check."""
    failures = [f"partition {k}: {s.failing}" for k, s in replica.statuses.items() if s.failing]
    return [f"leases: {replica.failing}", *failures] if replica.failing else failures


def partition_body(replica: ProjectorReplica) -> dict[str, Any]:
    """What /health/ready shows of the partitions: which are held, and how far each is."""
    return {
        "partitions": replica.partitions,
        "held": {str(k): status.checkpoint for k, status in replica.statuses.items()},
    }
