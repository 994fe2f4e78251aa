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
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.transfers import describe_answer

TERMINAL = frozenset({"completed", "refunded", "failed"})


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


class _Clients:
    """Idle one-connection clients: a request takes one, and waits when none is idle.

    One shared httpx pool spends more CPU choosing a connection than sending
    the request (on this benchmark's scale it starves the scheduler); a queue
    of single-connection clients costs next to nothing. Waiting for one counts
    in the request's latency, as waiting for a connection would for any client.
    """

    def __init__(self, clients: list[httpx.AsyncClient]) -> None:
        self._idle: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
        for client in clients:
            self._idle.put_nowait(client)

    async def request(self, method: str, url: str, **options: Any) -> httpx.Response:
        client = await self._idle.get()
        try:
            return await client.request(method, url, **options)
        finally:
            self._idle.put_nowait(client)

    async def post(self, url: str, json: Any) -> httpx.Response:
        return await self.request("POST", url, json=json)

    async def get(self, url: str, params: Any = None) -> httpx.Response:
        return await self.request("GET", url, params=params)


class _Phase:
    def __init__(
        self, client: _Clients, targets: Targets, result: OpenLoopResult, *,
        visibility_every: int, poll_seconds: float, follow_seconds: float,
    ) -> None:  # fmt: skip
        self._client = client
        self._targets = targets
        self._result = result
        self._visibility_every = visibility_every
        self._poll = poll_seconds
        self._follow = follow_seconds
        self._rng = random.Random(7)

    def _account(self) -> str:
        targets = self._targets
        if targets.hot_account is not None and self._rng.random() < targets.hot_share:
            return targets.hot_account
        return self._rng.choice(targets.accounts)

    async def deposit(self, index: int, due: float, offset: float) -> None:
        account = self._account()
        try:
            response = await self._client.post(
                f"{self._targets.command_url}/accounts/{account}/deposits", json={"amount": 1}
            )
        except httpx.HTTPError as error:
            self._result.errors[type(error).__name__] += 1
            return
        answered = time.perf_counter()
        if response.status_code != httpx.codes.OK:
            self._result.errors[describe_answer(response)] += 1
            return
        self._result.commands.append((offset, answered - due))
        self._result.events += 1
        if index % self._visibility_every == 0:
            position = int(response.json()["position"])
            await self._visible(account, position, answered, offset)

    async def _visible(self, account: str, position: int, answered: float, offset: float) -> None:
        url = f"{self._targets.query_url}/accounts/{account}"
        try:
            response = await self._client.get(url, params={"min_position": position})
        except httpx.HTTPError as error:
            self._result.errors[f"visibility {type(error).__name__}"] += 1
            return
        if response.status_code != httpx.codes.OK:
            self._result.errors[f"visibility {describe_answer(response)}"] += 1
            return
        self._result.visibility.append((offset, time.perf_counter() - answered))

    async def transfer(self, index: int, due: float, offset: float) -> None:
        source, target = self._targets.transfer_pairs[index % len(self._targets.transfer_pairs)]
        body = {"from_account": source, "to_account": target, "amount": 1}
        try:
            response = await self._client.post(f"{self._targets.command_url}/transfers", json=body)
        except httpx.HTTPError as error:
            self._result.errors[f"transfer {type(error).__name__}"] += 1
            return
        if response.status_code != httpx.codes.ACCEPTED:
            self._result.errors[f"transfer {describe_answer(response)}"] += 1
            return
        url = f"{self._targets.query_url}/transfers/{response.json()['transfer_id']}"
        deadline = due + self._follow
        while time.perf_counter() < deadline:
            shown = await self._client.get(url)
            if shown.status_code == httpx.codes.OK and shown.json()["status"] in TERMINAL:
                self._result.transfers.append((offset, time.perf_counter() - due))
                self._result.events += 4  # request, debit, credit + settle, completion
                return
            await asyncio.sleep(self._poll)
        self._result.errors["transfer not terminal in time"] += 1


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
    poll_seconds: float = 0.01,
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
    async with contextlib.AsyncExitStack() as stack:
        one = httpx.Limits(max_connections=1)
        clients = [
            await stack.enter_async_context(httpx.AsyncClient(limits=one, timeout=30.0))
            for _ in range(max(1, connections // workers))
        ]
        phase = _Phase(
            _Clients(clients), targets, result, visibility_every=visibility_every,
            poll_seconds=poll_seconds, follow_seconds=follow_seconds,
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
            elif wait < -0.005:
                result.late_sends += 1
            send = phase.deposit if kind == "deposit" else phase.transfer
            task = asyncio.create_task(send(index, due, offset))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)
    result.client_cpu_seconds = time.process_time()
    return result


def _run_share(targets: Targets, **options: Any) -> OpenLoopResult:
    """One client process's part of the schedule (``options`` of :func:`run_open_loop`)."""
    return asyncio.run(run_open_loop(targets, **options))


def run_open_loop_processes(
    targets: Targets, *, rate: float, transfer_rate: float, seconds: float, workers: int
) -> OpenLoopResult:
    """The open loop split over ``workers`` client processes, their results merged.

    One Python process falls behind its schedule well below the rates this
    phase needs (sends go out late, which the due-time latency would then
    blame on the server); several share the work and each keeps its pace.
    """
    context = multiprocessing.get_context("spawn")
    start_at = time.monotonic() + 2.0 + 0.5 * workers  # time for every process to start
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [
            pool.submit(
                _run_share, targets, rate=rate, transfer_rate=transfer_rate, seconds=seconds,
                share=(k, workers), start_at=start_at,
            )
            for k in range(workers)
        ]  # fmt: skip
        parts = [future.result() for future in futures]
    merged = OpenLoopResult(rate=rate, seconds=seconds)
    for part in parts:
        merged.commands += part.commands
        merged.visibility += part.visibility
        merged.transfers += part.transfers
        merged.errors += part.errors
        merged.late_sends += part.late_sends
        merged.events += part.events
        merged.client_cpu_seconds += part.client_cpu_seconds
    for points in (merged.commands, merged.visibility, merged.transfers):
        points.sort()
    return merged
