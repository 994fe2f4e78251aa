"""The open-loop phase: requests at a fixed rate, latency counted from when each was due.

A closed loop (N clients, each sending when its last answer came) slows down
with the server, so a stall shows as a few slow requests instead of the
hundreds that would have queued behind it (coordinated omission). Here each
request has a due time fixed before the run, ``i / rate`` seconds after the
start; it is sent at that time whatever happened before, and its latency is
counted from the due time, so time spent waiting for the client or for a
connection counts too.

Deposits go to the bench accounts, ``hot_share`` of them to one hot account
(with a long history); every ``visibility_every``-th deposit is followed by a
read of the query service with ``min_position`` (command answered -> read
answered: the visibility lag); transfers at their own rate are followed
until the query service shows them terminal (due -> terminal visible).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import random
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, TypeVar

from bench.lean_http import Answer, LeanHttp, lean_session
from bench.transfer_watch import TransferWatch
from bench.transfers import TERMINAL, describe_status
from shared_kernel.heap import keep_startup_heap

T = TypeVar("T")

try:  # the client's processes run on the services' event loop: 7% less CPU per request
    from uvloop import run as _run_loop
except ImportError:  # uvloop is Unix-only
    from asyncio import run as _run_loop  # type: ignore[assignment]  # same call here


def due_times(rate: float, seconds: float) -> list[float]:
    """Offsets (seconds from the start) at which requests are due: ``rate`` per second."""
    if rate <= 0 or seconds <= 0:
        return []
    return [index / rate for index in range(int(rate * seconds))]


@dataclass
class OpenLoopResult:
    rate: float
    seconds: float
    #: (due offset, seconds from due to answered) per accepted deposit.
    commands: list[tuple[float, float]] = field(default_factory=list)
    #: (due offset, seconds from the command's answer to the read showing it).
    visibility: list[tuple[float, float]] = field(default_factory=list)
    #: (due offset, seconds from due to the transfer shown terminal).
    transfers: list[tuple[float, float]] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    #: Requests sent more than 5 ms after their due time (the client fell behind).
    late_sends: int = 0
    #: Seconds from each request's due time to its send: the client's own part of a latency.
    send_delays: list[float] = field(default_factory=list)
    events: int = 0
    #: CPU the client process(es) spent, so the report shows what the driver took.
    client_cpu_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Targets:
    """Where the phase sends its requests."""

    command_url: str
    query_url: str
    accounts: list[str]
    hot_account: str | None
    hot_share: float
    transfer_pairs: list[tuple[str, str]]
    #: The store's database, where the transfer watch listens for the projector.
    database_url: str = ""


def _failed(answer: Answer) -> str:
    return describe_status(answer.status, answer.body)


class Phase:
    """The requests of one client: deposits (every ``visibility_every``-th read back) and
    transfers (followed until shown terminal), each counted into ``result``."""

    def __init__(
        self, http: LeanHttp, targets: Targets, result: OpenLoopResult, *,
        visibility_every: int, follow_seconds: float, watch: TransferWatch | None,
    ) -> None:  # fmt: skip
        self._http = http
        self._watch = watch
        self._targets = targets
        self._result = result
        self._visibility_every = visibility_every
        self._follow = follow_seconds
        self._rng = random.Random(7)

    def _account(self) -> str:
        targets = self._targets
        if targets.hot_account is not None and self._rng.random() < targets.hot_share:
            return targets.hot_account
        return self._rng.choice(targets.accounts)

    async def deposit(self, index: int, due: float, offset: float) -> None:
        account = self._account()
        url = f"{self._targets.command_url}/accounts/{account}/deposits"
        try:
            answer = await self._http.request("POST", url, json={"amount": 1})
        except OSError as error:  # ConnectionError, TimeoutError
            self._result.errors[type(error).__name__] += 1
            return
        answered = time.perf_counter()
        if answer.status != HTTPStatus.OK:
            self._result.errors[_failed(answer)] += 1
            return
        self._result.commands.append((offset, answered - due))
        self._result.events += 1
        if self._visibility_every and index % self._visibility_every == 0:
            await self._visible(account, int(answer.body["position"]), answered, offset)

    async def _visible(self, account: str, position: int, answered: float, offset: float) -> None:
        url = f"{self._targets.query_url}/accounts/{account}"
        try:
            answer = await self._http.request("GET", url, params={"min_position": position})
        except OSError as error:  # ConnectionError, TimeoutError
            self._result.errors[f"visibility {type(error).__name__}"] += 1
            return
        if answer.status != HTTPStatus.OK:
            self._result.errors[f"visibility {_failed(answer)}"] += 1
            return
        self._result.visibility.append((offset, time.perf_counter() - answered))

    async def transfer(self, index: int, due: float, offset: float) -> None:
        source, target = self._targets.transfer_pairs[index % len(self._targets.transfer_pairs)]
        body = {"from_account": source, "to_account": target, "amount": 1}
        url = f"{self._targets.command_url}/transfers"
        try:
            answer = await self._http.request("POST", url, json=body)
        except OSError as error:  # ConnectionError, TimeoutError
            self._result.errors[f"transfer {type(error).__name__}"] += 1
            return
        if answer.status != HTTPStatus.ACCEPTED:
            self._result.errors[f"transfer {_failed(answer)}"] += 1
            return
        transfer_id = str(answer.body["transfer_id"])
        url = f"{self._targets.query_url}/transfers/{transfer_id}"
        assert self._watch is not None, "transfers need the watch"
        try:
            await asyncio.wait_for(
                self._watch.terminal(transfer_id), due + self._follow - time.perf_counter()
            )
        except TimeoutError:
            self._result.errors["transfer not terminal in time"] += 1
            return
        shown = await self._http.request("GET", url)
        if shown.status != HTTPStatus.OK or shown.body["status"] not in TERMINAL:
            self._result.errors[f"transfer terminal in the store, not shown: {_failed(shown)}"] += 1
            return
        self._result.transfers.append((offset, time.perf_counter() - due))
        self._result.events += 4  # request, debit, credit + settle, completion


def schedule_of(
    rate: float, transfer_rate: float, seconds: float, *, with_transfers: bool
) -> list[tuple[float, str, int]]:
    """(due offset, kind, index) of every request of the phase, in due order."""
    deposits = [(at, "deposit", i) for i, at in enumerate(due_times(rate, seconds))]
    transfers = [(at, "transfer", i) for i, at in enumerate(due_times(transfer_rate, seconds))]
    return sorted(deposits + transfers) if with_transfers else deposits


async def run_open_loop(
    targets: Targets,
    *,
    rate: float,
    transfer_rate: float,
    seconds: float,
    visibility_every: int = 5,
    follow_seconds: float = 10.0,
    connections: int = 64,
    share: tuple[int, int] = (0, 1),
    start_at: float | None = None,
) -> OpenLoopResult:
    """Deposits at ``rate``/s and transfers at ``transfer_rate``/s for ``seconds``.

    ``share`` ``(k, n)`` sends only every n-th request from the k-th on, so n
    processes split one schedule; ``start_at`` (a ``time.monotonic()`` value,
    the same clock in every process) starts them together.
    """
    result = OpenLoopResult(rate=rate, seconds=seconds)
    worker, workers = share
    schedule = schedule_of(
        rate, transfer_rate, seconds, with_transfers=bool(targets.transfer_pairs)
    )[worker::workers]
    keep_startup_heap()  # the schedule's thousands of tuples: out of every collection's scan
    cpu_at_start = time.process_time()
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(
            lean_session(connections // workers, timeout_seconds=30.0)
        )
        watch = None
        if any(kind == "transfer" for _, kind, _ in schedule):
            watch = await stack.enter_async_context(TransferWatch(targets.database_url))
        phase = Phase(
            http, targets, result, visibility_every=visibility_every,
            follow_seconds=follow_seconds, watch=watch,
        )  # fmt: skip
        tasks: set[asyncio.Task[None]] = set()
        if start_at is not None:
            await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        start = time.perf_counter()
        for offset, kind, index in schedule:
            due = start + offset
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            lateness = time.perf_counter() - due
            result.send_delays.append(lateness)
            if lateness > 0.005:
                result.late_sends += 1
            send = phase.deposit if kind == "deposit" else phase.transfer
            task = asyncio.create_task(send(index, due, offset))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)
    result.client_cpu_seconds = time.process_time() - cpu_at_start
    return result


async def closed_loop_capacity(
    targets: Targets, *, seconds: float, connections: int, share: tuple[int, int] = (0, 1),
    start_at: float | None = None,
) -> int:  # fmt: skip
    """Deposits accepted in ``seconds`` by this process's part of ``connections`` busy loops.

    The same client, mix and pool as the open loop, each loop sending its next
    deposit when the last is answered: the most this client gets through while it
    shares the machine with the stack, the base the open loop's rate is a share of.
    """
    result = OpenLoopResult(rate=0.0, seconds=seconds)
    worker, workers = share
    loops = max(1, connections // workers + (worker < connections % workers))
    async with lean_session(loops, timeout_seconds=30.0) as http:
        phase = Phase(http, targets, result, visibility_every=0, follow_seconds=0.0, watch=None)
        if start_at is not None:
            await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        end = time.perf_counter() + seconds

        async def busy() -> None:
            while (sent := time.perf_counter()) < end:
                await phase.deposit(1, sent, 0.0)

        await asyncio.gather(*(busy() for _ in range(loops)))
    return len(result.commands)


def _capacity_share(targets: Targets, **options: Any) -> int:
    return _run_loop(closed_loop_capacity(targets, **options))


def measure_client_capacity(
    targets: Targets, *, seconds: float, connections: int, workers: int
) -> float:
    """Deposits per second the open loop's own client processes reach in a closed loop."""
    accepted = _in_processes(
        _capacity_share, targets, workers, seconds=seconds, connections=connections
    )
    return sum(accepted) / seconds


def _in_processes(run: Callable[..., T], targets: Targets, workers: int, **options: Any) -> list[T]:
    """``run(targets, share=(k, workers), start_at=..., **options)`` in ``workers`` processes.

    One Python process falls behind its schedule well below the rates these
    phases need; several share the work, started together on the monotonic clock.
    """
    context = multiprocessing.get_context("spawn")
    start_at = time.monotonic() + 2.0 + 0.5 * workers  # time for every process to start
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [
            pool.submit(run, targets, share=(k, workers), start_at=start_at, **options)
            for k in range(workers)
        ]
        return [future.result() for future in futures]


def _run_share(targets: Targets, **options: Any) -> OpenLoopResult:
    """One client process's part of the schedule (``options`` of :func:`run_open_loop`)."""
    return _run_loop(run_open_loop(targets, **options))


def run_open_loop_processes(
    targets: Targets, *, rate: float, transfer_rate: float, seconds: float, workers: int
) -> OpenLoopResult:
    """The open loop split over ``workers`` client processes, their results merged."""
    parts = _in_processes(
        _run_share, targets, workers, rate=rate, transfer_rate=transfer_rate, seconds=seconds
    )
    merged = OpenLoopResult(rate=rate, seconds=seconds)
    for part in parts:
        merged.commands += part.commands
        merged.visibility += part.visibility
        merged.transfers += part.transfers
        merged.errors += part.errors
        merged.late_sends += part.late_sends
        merged.send_delays += part.send_delays
        merged.events += part.events
        merged.client_cpu_seconds += part.client_cpu_seconds
    for points in (merged.commands, merged.visibility, merged.transfers):
        points.sort()
    return merged
