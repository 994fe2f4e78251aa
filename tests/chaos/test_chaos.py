"""Exactly-once under every fault: the five real processes, load, and a schedule of faults.

The command service, the transfer saga, the relay, the projector and the
query service run on a private PostgreSQL (behind proxies that can lose a
COMMIT's reply) and a private Redis. Client threads send a mixed load of
commands, each retried with the same Idempotency-Key until it gets a final
answer, while the schedule kills each process with SIGKILL, restarts
PostgreSQL (fast and immediate), freezes it for 10 s, loses commit replies of
the command service and of the saga, cuts every database connection at once,
flushes Redis and restarts it.

Afterwards, every acknowledged command is in the event store exactly once and
no refused one is; no balance is negative; the sum of balances equals
deposits minus withdrawals; every transfer ended with exactly its legs; and
the read models equal an independent fold of the store. ``CHAOS_ROUNDS=n``
repeats the schedule (``make soak``).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.chaos.audit import Audit, audit
from tests.chaos.faults import FaultRecord, Faults, Step
from tests.chaos.load import ChaosClients
from tests.support.infra import unique_stream_name
from tests.support.postgres_server import private_postgres
from tests.support.processes import Stack
from tests.support.redis_server import private_redis
from tests.support.reference_fold import (
    expected_read_models,
    live_read_models,
    wait_until_projected,
)
from tests.support.tcp_proxy import CommitReplyDroppingProxy
from tests.transfers.ledger_view import (
    EXPECTED_LEGS,
    LedgerView,
    read_ledger,
    wait_until_finished,
)

ROUNDS = int(os.environ.get("CHAOS_ROUNDS", "1"))
#: Commands acknowledged between two faults.
STEP = int(os.environ.get("CHAOS_STEP", "40"))
PAUSE_SECONDS = 10.0


@pytest.fixture
def chaos(tmp_path: Path) -> Iterator[tuple[Stack, Faults]]:
    with private_postgres() as postgres, private_redis() as redis_server:
        database = "ledger"
        database_url = postgres.migrated_database(database)
        proxies = {
            name: CommitReplyDroppingProxy(postgres.port).start() for name in ("command", "workers")
        }
        stack = Stack(
            database_url=proxies["workers"].url(database),
            stream_name=unique_stream_name(),
            log_dir=tmp_path,
            extra_env={
                "REDIS_URL": redis_server.url,
                # A retry after a kill takes over the dead attempt soon; a retry while the
                # first attempt still waits (a frozen database) must still not execute twice.
                "IDEMPOTENCY_LEASE_SECONDS": "2",
                "IDEMPOTENCY_WAIT_SECONDS": "1",
                "IDLE_CATCH_UP_SECONDS": "1",
                "TRANSFER_SAGA_SWEEP_SECONDS": "5",
            },
        )
        _through(stack.process("command").env, proxies["workers"], proxies["command"])
        faults = Faults(stack, postgres, redis_server, proxies, database_url)
        try:
            stack.start()
            yield stack, faults
        finally:
            stack.stop()
            for proxy in proxies.values():
                proxy.stop()


def _through(
    env: dict[str, str], shared: CommitReplyDroppingProxy, own: CommitReplyDroppingProxy
) -> None:
    """Point every database URL of a process (one per role, when roles are in use) at its
    own proxy, so a lost COMMIT reply can be aimed at that process alone."""
    for key, value in env.items():
        if key.endswith("DATABASE_URL"):
            env[key] = value.replace(f":{shared.port}/", f":{own.port}/")


def schedule(faults: Faults) -> list[Step]:
    steps: list[tuple[str, Callable[[], object]]] = [
        ("kill -9 command service", faults.kill("command")),
        ("COMMIT reply lost (command service)", faults.drop_commit_reply("command")),
        ("kill -9 transfer saga", faults.kill("saga")),
        ("PostgreSQL fast restart", faults.postgres_restart("fast")),
        ("kill -9 relay", faults.kill("relay")),
        ("Redis FLUSHALL", faults.redis_flushall),
        ("kill -9 projector", faults.kill("projector")),
        ("PostgreSQL immediate restart", faults.postgres_restart("immediate")),
        ("COMMIT reply lost (saga)", faults.drop_commit_reply("workers")),
        ("kill -9 query service", faults.kill("query")),
        ("Redis restart (empty)", faults.redis_restart),
        (f"PostgreSQL SIGSTOP {PAUSE_SECONDS:.0f}s", faults.postgres_pause(PAUSE_SECONDS)),
        ("every PostgreSQL connection cut", faults.cut_connections),
    ]
    planned = steps * ROUNDS
    return [(STEP * (n + 1), name, inject) for n, (name, inject) in enumerate(planned)]


def test_every_acknowledged_command_is_recorded_exactly_once_under_every_fault(
    chaos: tuple[Stack, Faults],
) -> None:
    stack, faults = chaos
    url = faults.database_url
    clients = ChaosClients(stack.process("command").url, stack.process("query").url)
    with clients:
        stalled = faults.run(clients, schedule(faults))
        if stalled is None:
            try:
                clients.wait_for_acknowledged(clients.acknowledged + STEP, timeout=60)
            except AssertionError as error:
                stalled = f"after the last fault: {error}; {clients.in_flight()}"
    problems = [f"STALLED: {stalled}"] if stalled else []
    problems += [f"CLIENT FAILED: {error}" for error in clients.errors]
    problems += [f"NOT A 503 WITH RETRY-AFTER: {error}" for error in clients.server_errors[:20]]
    try:
        view = wait_until_finished(url, timeout=90)
    except AssertionError as error:
        problems.append(f"TRANSFERS UNFINISHED: {error}")
        view = read_ledger(url)
    found = audit(url, clients.answered)
    problems += found.findings + _ledger_problems(view)
    print(_summary(faults.records, clients, found, view))
    if problems:
        print(stack.logs()[-50_000:])
    assert not problems, "\n".join(problems)

    wait_until_projected(url, timeout=90)
    expected = expected_read_models(url)
    assert live_read_models(url) == expected


def _ledger_problems(view: LedgerView) -> list[str]:
    problems = [f"NEGATIVE BALANCE: {a} has {b}" for a, b in view.balances.items() if b < 0]
    total, in_flight = sum(view.balances.values()), view.in_flight
    if total + in_flight != view.deposited - view.withdrawn:
        problems.append(
            f"MONEY NOT CONSERVED: balances sum to {total} (+{in_flight} in flight),"
            f" deposits - withdrawals = {view.deposited} - {view.withdrawn}"
            f" = {view.deposited - view.withdrawn}"
        )
    for transfer_id, status in view.status.items():
        legs = view.legs.get(transfer_id, Counter())
        if status in EXPECTED_LEGS and legs != EXPECTED_LEGS[status]:
            problems.append(f"TRANSFER {transfer_id} is {status} with legs {dict(legs)}")
    return problems


def _summary(
    records: list[FaultRecord], clients: ChaosClients, found: Audit, view: LedgerView
) -> str:
    kinds = Counter(a.kind for a in clients.answered if a.acknowledged)
    outcomes = Counter(view.status.values())
    lines = [
        "",
        f"chaos: {len(records)} faults injected, {found.acknowledged} commands acknowledged"
        f" ({dict(kinds)}), {found.refused} refused, {clients.retries} client retries,"
        f" {clients.reads} reads",
        f"  unanswered when the load stopped: {found.unanswered}",
        f"  lost: {len(found.lost)}, doubled: {len(found.doubled)}, recorded although refused:"
        f" {len(found.recorded_although_refused)}, recorded by no request:"
        f" {len(found.unaccounted)}; transfers {dict(outcomes)}",
        f"  {'fault':<40} {'at ack':>7} {'took s':>7} {'commands back s':>16} {'projected s':>12}",
    ]
    for r in records:
        lines.append(
            f"  {r.name:<40} {r.at_acknowledged:>7} {r.seconds:>7.1f}"
            f" {_seconds(r.commands_back):>16} {_seconds(r.projected):>12}"
        )
    return "\n".join(lines)


def _seconds(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else "NEVER"
