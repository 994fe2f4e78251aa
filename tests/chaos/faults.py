"""The chaos suite's fault schedule: every fault, in a fixed order, at fixed points of the load.

A step waits (by condition, with a deadline) until the clients have had a
given number of commands acknowledged in all, injects its fault, and then
measures recovery: the seconds from the end of the fault until commands are
acknowledged again AND every projection has reached what the store held
when the fault ended. Nothing here is left to chance or to a sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.chaos.load import ChaosClients
from tests.support.postgres_server import PrivatePostgres
from tests.support.processes import Stack
from tests.support.redis_server import PrivateRedis
from tests.support.reference_fold import checkpoints, store_head
from tests.support.tcp_proxy import CommitReplyDroppingProxy

#: What the command service and the saga send when they append to the event store.
EVENT_INSERT = r"INSERT INTO\s+\S*ledger_events|ledger_append\("
RECOVERY_DEADLINE = 60.0
#: Commands acknowledged after a fault before it counts as recovered from.
ACKS_TO_RECOVER = 3


#: (commands acknowledged in all before it, its name, what injects it)
Step = tuple[int, str, Callable[[], object]]


@dataclass(frozen=True)
class FaultRecord:
    name: str
    at_acknowledged: int
    seconds: float  # how long injecting it took (a restart, a pause)
    #: From the fault's end until commands are acknowledged again, and until every
    #: projection reached the store's head of that moment; None: not within the deadline.
    commands_back: float | None
    projected: float | None

    @property
    def recovered(self) -> bool:
        return self.commands_back is not None and self.projected is not None


@dataclass
class Faults:
    """The injectors of one chaos run, and what each injection did."""

    stack: Stack
    postgres: PrivatePostgres
    redis: PrivateRedis
    proxies: dict[str, CommitReplyDroppingProxy]
    database_url: str  # straight to PostgreSQL, not through a proxy
    records: list[FaultRecord] = field(default_factory=list)

    def kill(self, name: str) -> Callable[[], object]:
        def inject() -> None:
            process = self.stack.process(name)
            process.kill()
            process.start(timeout=60)

        return inject

    def drop_commit_reply(self, proxy: str) -> Callable[[], object]:
        """Lose the reply to the next event-store commit of the processes behind ``proxy``."""

        def inject() -> None:
            dropping = self.proxies[proxy]
            before = dropping.commit_replies_dropped
            dropping.drop_next_commit_reply(touching=EVENT_INSERT)
            _wait(lambda: dropping.commit_replies_dropped > before, f"a {proxy} commit dropped")

        return inject

    def postgres_restart(self, mode: str) -> Callable[[], object]:
        assert mode in ("fast", "immediate")
        return lambda: self.postgres.restart("fast" if mode == "fast" else "immediate")

    def postgres_pause(self, seconds: float) -> Callable[[], object]:
        return lambda: self.postgres.pause(seconds)

    def cut_connections(self) -> None:
        """Every process loses every PostgreSQL connection at once (a network blip)."""
        for proxy in self.proxies.values():
            proxy.cut()

    def redis_flushall(self) -> None:
        with self.redis.client() as client:
            client.flushall()

    def redis_restart(self) -> None:
        self.redis.restart()

    def run(self, clients: ChaosClients, schedule: list[Step]) -> str | None:
        """Each step in turn; why the run stopped early (the ledger stopped recovering)."""
        last = "the start"
        for acknowledged, name, inject in schedule:
            try:
                clients.wait_for_acknowledged(acknowledged, timeout=RECOVERY_DEADLINE)
            except AssertionError as error:
                return f"after {last}, waiting to inject {name}: {error}; {clients.in_flight()}"
            last = name
            began = time.monotonic()
            try:
                inject()
            except Exception as error:
                took = time.monotonic() - began
                self.records.append(FaultRecord(name, acknowledged, took, None, None))
                return f"injecting {name} failed: {error!r}"
            ended = time.monotonic()
            record = FaultRecord(name, acknowledged, ended - began, *self._recovery(clients))
            self.records.append(record)
            if not record.recovered:
                return (
                    f"no recovery from {name} within {RECOVERY_DEADLINE:.0f}s;"
                    f" {clients.in_flight()}"
                )
        return None

    def _recovery(self, clients: ChaosClients) -> tuple[float | None, float | None]:
        """Seconds until commands were acknowledged again, and until the read side
        had projected what the store held when the fault ended (None: not in time)."""
        began = time.monotonic()
        head = store_head(self.database_url)
        wanted = clients.acknowledged + ACKS_TO_RECOVER
        try:
            _wait(lambda: clients.acknowledged >= wanted, "commands acknowledged again")
            commands = time.monotonic() - began
        except TimeoutError:
            return None, None
        try:
            _wait(lambda: _projected(self.database_url, head), "projected")
        except TimeoutError:
            return commands, None
        return commands, time.monotonic() - began


def _projected(database_url: str, position: int) -> bool:
    reached = checkpoints(database_url)
    return bool(reached) and min(reached.values()) >= position


def _wait(condition: Callable[[], bool], what: str, timeout: float = RECOVERY_DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not {what} after {timeout}s")
        time.sleep(0.05)
