"""The eventsourcing library's own rate, measured beside the ledger in the same run.

What a plain eventsourcing ``Application`` on the same PostgreSQL does with
``BENCH_LIBRARY_THREADS`` threads, each looping get + one event + save on a
small aggregate: the rate a team would get by using the library as its
documentation shows. The ledger's deposit rate is reported as a multiple of
it. It runs in a scratch database of its own (the library creates its tables
there), so the stack's store is never touched.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError

from bench.stats import rate
from command_service.event_store import event_store_env
from schema.scratch import scratch_database


class Tally(Aggregate):
    """The smallest aggregate worth saving: a running sum."""

    def __init__(self) -> None:
        self.total = 0

    @event("Added")
    def add(self, amount: int) -> None:
        self.total += amount


class TallyApplication(Application[UUID]):
    """The library's application class as its documentation uses it (tables created)."""


@dataclass(frozen=True, slots=True)
class LibraryRate:
    threads: int
    seconds: float
    saves: int
    conflicts: int

    @property
    def per_second(self) -> float:
        return rate(self.saves, self.seconds)


def measure_library_rate(
    server_url: str, *, threads: int = 8, seconds: float = 5.0, aggregates: int = 1_000
) -> LibraryRate:
    """get + add + save in ``threads`` threads for ``seconds`` on a scratch database."""
    with scratch_database(server_url, "bench_library", migrated=False) as url:
        env = {**event_store_env(url, pool_size=threads), "PERSISTENCE_MODULE":
               "eventsourcing.postgres", "CREATE_TABLE": "y"}  # fmt: skip
        app = TallyApplication(env=env)
        try:
            ids = []
            for _ in range(aggregates):
                tally = Tally()
                app.save(tally)
                ids.append(tally.id)
            saves, conflicts = [0] * threads, [0] * threads
            deadline = time.perf_counter() + seconds

            def loop(index: int) -> None:
                rng = random.Random(index)
                while time.perf_counter() < deadline:
                    tally: Tally = app.repository.get(rng.choice(ids))
                    tally.add(1)
                    try:
                        app.save(tally)
                    except IntegrityError:  # another thread saved it first
                        conflicts[index] += 1
                        continue
                    saves[index] += 1

            started = time.perf_counter()
            workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            elapsed = time.perf_counter() - started
        finally:
            app.close()
    return LibraryRate(threads, elapsed, sum(saves), sum(conflicts))
