"""Load the running stack over HTTP: deposits, visibility lag and reads.

Three phases, each bounded in time:

1. set-up: open BENCH_ACCOUNTS accounts and give each an initial deposit;
2. load: BENCH_CLIENTS workers post deposits to random accounts for
   BENCH_SECONDS. A few commands a second are followed by a lag probe that
   polls ``GET /accounts/{id}`` (no ``min_position``, so it sees the
   projection as it is) until the version reaches the command's, which gives
   the end-to-end visibility lag (command answered -> query shows it);
3. read: ``GET /accounts/{id}?min_position=<last position>`` over all accounts
   for BENCH_QUERY_SECONDS, which gives query latency and checks every
   balance against what the accepted deposits add up to.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import httpx
from rich.progress import Progress

from bench import process_cpu
from bench.hot_account import grow_history, wait_shown
from bench.lean_http import Answer, LeanHttp, lean_session
from bench.settings import BenchSettings
from bench.wrk_driver import WrkResult, wrk_executable


class StackNotRunning(RuntimeError):
    """The command or query service does not answer; the message says how to start it."""


class BenchAborted(RuntimeError):
    """The stack answered in a way the benchmark cannot work with."""


@dataclass
class LoadResult:
    """Raw observations; the report summarises them."""

    setup_seconds: float = 0.0
    load_seconds: float = 0.0
    command_latencies: list[float] = field(default_factory=list)
    command_errors: Counter[str] = field(default_factory=Counter)
    lag_samples: list[float] = field(default_factory=list)
    lag_timeouts: int = 0
    lag_polls: int = 0
    query_latencies: list[float] = field(default_factory=list)
    query_errors: Counter[str] = field(default_factory=Counter)
    final_position: int = 0
    balances_checked: int = 0
    balance_mismatches: list[str] = field(default_factory=list)
    client_cpu_seconds: float = 0.0  # CPU the benchmark process used during the load phase
    #: CPU seconds each line of the stack (:mod:`bench.process_cpu`) used during the load phase.
    stack_cpu_seconds: dict[str, float] = field(default_factory=dict)
    driver: str = "httpx"
    wrk: WrkResult | None = None  # set when wrk drove the load phase
    wrk_accounts: int = 0
    wrk_initial_total: int = 0
    wrk_expected_range: tuple[int, int] = (0, 0)
    wrk_balance_total: int = 0  # what the query service shows for the wrk accounts together
    hot_account: str | None = None  # the account with a long history taking a share of deposits


def weighted_ids(ids: list[str], hot: str | None, share: float) -> list[str]:
    """``ids`` with ``hot`` repeated so a uniform pick lands on it with probability ``share``."""
    if hot is None or share <= 0:
        return list(ids)
    others = [i for i in ids if i != hot]
    if share >= 1 or not others:
        return [hot]
    copies = max(1, round(share * len(others) / (1 - share)))
    return others + [hot] * copies


@dataclass
class _Account:
    account_id: str
    expected_balance: int
    certain: bool = True  # False once a deposit's outcome is unknown (timeout, 5xx)


def _describe_error(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} {response.text[:200]}"
    code = body.get("code") if isinstance(body, dict) else None
    return f"{response.status_code} {code or ''}".strip()


def _shown_version(answer: Answer) -> int:
    """The account version a query answer shows, or -1 when it shows none."""
    if answer.status != HTTPStatus.OK or not isinstance(answer.body, dict):
        return -1
    try:
        return int(answer.body["version"])
    except (ValueError, KeyError, TypeError):
        return -1


async def check_stack(client: httpx.AsyncClient, settings: BenchSettings) -> None:
    """Fail with one clear line unless both HTTP services are ready."""
    for name, url in (
        ("command service", settings.command_service_url),
        ("query service", settings.query_service_url),
    ):
        try:
            response = await client.get(f"{url}/health/ready", timeout=3.0)
        except httpx.HTTPError as error:
            msg = (
                f"the {name} does not answer at {url} ({type(error).__name__}); "
                "start the stack with `make run` in another terminal, then run `make bench` again"
            )
            raise StackNotRunning(msg) from error
        if response.status_code != httpx.codes.OK:
            msg = f"the {name} at {url} is not ready: {response.status_code} {response.text[:300]}"
            raise StackNotRunning(msg)


async def _post(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> httpx.Response:
    return await client.post(url, json=body)


async def _setup(
    clients: list[httpx.AsyncClient], settings: BenchSettings, result: LoadResult, run_id: str
) -> list[_Account]:
    """Open the accounts and give each its initial deposit, BENCH_CLIENTS at a time."""
    accounts: list[_Account] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(settings.bench_accounts):
        queue.put_nowait(index)
    command = settings.command_service_url

    with Progress(transient=True) as progress:
        task = progress.add_task("opening accounts", total=settings.bench_accounts)

        async def worker(client: httpx.AsyncClient) -> None:
            while not queue.empty():
                index = queue.get_nowait()
                owner = f"bench-{run_id}-{index}"
                opened = await _post(
                    client, f"{command}/accounts",
                    {"owner": owner, "currency": settings.bench_currency},
                )  # fmt: skip
                if opened.status_code != httpx.codes.CREATED:
                    msg = f"POST /accounts answered {_describe_error(opened)}: {opened.text[:300]}"
                    raise BenchAborted(msg)
                account_id = str(opened.json()["account_id"])
                deposited = await _post(
                    client, f"{command}/accounts/{account_id}/deposits",
                    {"amount": settings.bench_initial_deposit},
                )  # fmt: skip
                if deposited.status_code != httpx.codes.OK:
                    msg = f"the initial deposit answered {_describe_error(deposited)}"
                    raise BenchAborted(msg)
                accounts.append(_Account(account_id, settings.bench_initial_deposit))
                position = max(int(opened.json()["position"]), int(deposited.json()["position"]))
                result.final_position = max(result.final_position, position)
                progress.advance(task)

        await asyncio.gather(*(worker(client) for client in clients))
    return accounts


async def _make_hot(
    client: httpx.AsyncClient, settings: BenchSettings, account: _Account, result: LoadResult
) -> None:
    """Give ``account`` BENCH_HOT_EVENTS deposits of 1 of history; wait until it is read."""
    version = await asyncio.to_thread(
        grow_history, settings.database_url, account.account_id, settings.bench_hot_events
    )
    account.expected_balance += settings.bench_hot_events
    await wait_shown(client, settings.query_service_url, account.account_id, version)
    result.hot_account = account.account_id


async def _probe_lag(
    http: LeanHttp,
    settings: BenchSettings,
    *,
    result: LoadResult,
    account_id: str,
    position: int,
    version: int,
    answered_at: float,
) -> None:
    """Read the account with the deposit's ``min_position`` until it shows ``version``.

    The query service holds the read until its projections reach the position,
    so one read usually does; a 412 (not reached within its bound) or an older
    row is read again after BENCH_LAG_POLL_MS, until BENCH_LAG_TIMEOUT_SECONDS.
    """
    url = f"{settings.query_service_url}/accounts/{account_id}"
    deadline = answered_at + settings.bench_lag_timeout_seconds
    interval = settings.bench_lag_poll_ms / 1000.0
    while True:
        result.lag_polls += 1
        try:
            answer = await http.request("GET", url, params={"min_position": position})
        except OSError:  # ConnectionError, TimeoutError
            answer = None
        now = time.perf_counter()
        if answer is not None and _shown_version(answer) >= version:
            result.lag_samples.append(now - answered_at)
            return
        if now >= deadline:
            result.lag_timeouts += 1
            return
        await asyncio.sleep(interval)


def probe_after(
    http: LeanHttp,
    settings: BenchSettings,
    result: LoadResult,
    probes: set[asyncio.Task[None]],
    *,
    account_id: str,
    body: dict[str, Any],
    answered_at: float,
) -> None:
    """Start a lag probe for the deposit that answered ``body`` (kept in ``probes`` till done)."""
    probe = asyncio.create_task(
        _probe_lag(http, settings, result=result, account_id=account_id,
                   position=int(body["position"]), version=int(body["version"]),
                   answered_at=answered_at)
    )  # fmt: skip
    probes.add(probe)
    probe.add_done_callback(probes.discard)


async def http_clients(
    stack: contextlib.AsyncExitStack, settings: BenchSettings
) -> tuple[list[httpx.AsyncClient], httpx.AsyncClient]:
    """A client of one keep-alive connection per worker, and one small client for probes.

    One shared httpx pool of BENCH_CLIENTS connections spends more CPU choosing a
    connection than sending the request, which would measure httpx rather than the ledger.
    """
    timeout = httpx.Timeout(settings.bench_request_timeout_seconds)
    clients = [
        await stack.enter_async_context(
            httpx.AsyncClient(limits=httpx.Limits(max_connections=1), timeout=timeout)
        )
        for _ in range(settings.bench_clients)
    ]
    probe_client = await stack.enter_async_context(
        httpx.AsyncClient(limits=httpx.Limits(max_connections=8), timeout=timeout)
    )
    return clients, probe_client


async def _load(
    clients: list[httpx.AsyncClient],
    sampler: LeanHttp,
    settings: BenchSettings,
    accounts: list[_Account],
    result: LoadResult,
) -> None:
    """Deposits to random accounts from BENCH_CLIENTS workers, for BENCH_SECONDS."""
    command = settings.command_service_url
    probes: set[asyncio.Task[None]] = set()
    sample_every = 1.0 / settings.bench_lag_samples_per_second
    next_sample = time.perf_counter()
    started = time.perf_counter()
    cpu_started = time.process_time()
    deadline = started + settings.bench_seconds
    rng = random.Random()
    by_id = {account.account_id: account for account in accounts}
    picks = weighted_ids(list(by_id), result.hot_account, settings.bench_hot_share)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal next_sample
        while time.perf_counter() < deadline:
            account = by_id[rng.choice(picks)]
            amount = rng.randint(1, 1_000)
            sent = time.perf_counter()
            try:
                response = await _post(
                    client, f"{command}/accounts/{account.account_id}/deposits", {"amount": amount}
                )
            except httpx.HTTPError as error:
                result.command_errors[type(error).__name__] += 1
                account.certain = False
                continue
            answered = time.perf_counter()
            if response.status_code != httpx.codes.OK:
                result.command_errors[_describe_error(response)] += 1
                if response.status_code >= httpx.codes.INTERNAL_SERVER_ERROR:
                    account.certain = False
                continue
            result.command_latencies.append(answered - sent)
            account.expected_balance += amount
            body = response.json()
            result.final_position = max(result.final_position, int(body["position"]))
            if answered >= next_sample:
                next_sample = answered + sample_every
                probe_after(
                    sampler, settings, result, probes,
                    account_id=account.account_id, body=body, answered_at=answered,
                )  # fmt: skip

    with Progress(transient=True) as progress:
        task = progress.add_task("loading", total=settings.bench_seconds)

        async def ticker() -> None:
            while time.perf_counter() < deadline:
                await asyncio.sleep(0.25)
                progress.update(
                    task, completed=min(settings.bench_seconds, time.perf_counter() - started)
                )

        await asyncio.gather(ticker(), *(worker(client) for client in clients))
    result.load_seconds = time.perf_counter() - started
    result.client_cpu_seconds = time.process_time() - cpu_started
    if probes:
        await asyncio.gather(*probes)


async def _read(
    clients: list[httpx.AsyncClient],
    settings: BenchSettings,
    accounts: list[_Account],
    result: LoadResult,
) -> None:
    """Queries with min_position over every account, checking each balance."""
    query = settings.query_service_url
    position = result.final_position
    deadline = time.perf_counter() + settings.bench_query_seconds
    counter = iter(range(10**12))

    async def worker(client: httpx.AsyncClient) -> None:
        # One full round over the accounts (checking balances), then more until the deadline.
        for index in counter:
            first_round = index < len(accounts)
            if not first_round and time.perf_counter() >= deadline:
                return
            account = accounts[index % len(accounts)]
            sent = time.perf_counter()
            try:
                response = await client.get(
                    f"{query}/accounts/{account.account_id}", params={"min_position": position}
                )
            except httpx.HTTPError as error:
                result.query_errors[type(error).__name__] += 1
                continue
            elapsed = time.perf_counter() - sent
            if response.status_code != httpx.codes.OK:
                result.query_errors[_describe_error(response)] += 1
                continue
            result.query_latencies.append(elapsed)
            header = response.headers.get("x-projection-position")
            if header is None or int(header) < position:
                result.query_errors[f"X-Projection-Position {header} below {position}"] += 1
            if first_round and not account.certain:
                result.wrk_balance_total += int(response.json()["balance"])
            if first_round and account.certain:
                result.balances_checked += 1
                balance = int(response.json()["balance"])
                if balance != account.expected_balance:
                    result.balance_mismatches.append(
                        f"{account.account_id}: query shows {balance},"
                        f" accepted deposits add up to {account.expected_balance}"
                    )

    await asyncio.gather(*(worker(client) for client in clients))


async def run_load(settings: BenchSettings, *, checked: bool = False) -> LoadResult:
    """All three phases against the running stack.

    Each worker owns a client with a single keep-alive connection (see
    :func:`http_clients`); the visibility sampler has a light client of its own,
    so measuring the lag takes little of the CPU the ledger is measured on.
    """
    result = LoadResult()
    async with contextlib.AsyncExitStack() as stack:
        clients, probe_client = await http_clients(stack, settings)
        sampler = await stack.enter_async_context(
            lean_session(8, timeout_seconds=settings.bench_request_timeout_seconds)
        )
        if not checked:
            await check_stack(probe_client, settings)
        started = time.perf_counter()
        accounts = await _setup(clients, settings, result, run_id=f"{int(time.time())}")
        if settings.bench_hot_events > 0 and accounts:
            await _make_hot(probe_client, settings, accounts[-1], result)
        result.setup_seconds = time.perf_counter() - started
        driver = settings.bench_driver
        if driver == "auto":
            driver = "wrk" if wrk_executable() else "httpx"
        result.driver = driver
        database = process_cpu.database_name(settings.database_url)
        before = process_cpu.sample(database)
        if driver == "wrk":
            # wrk_load builds on this module's probes, so it can only be imported here.
            from bench.wrk_load import load_with_wrk  # noqa: PLC0415

            result.wrk = await load_with_wrk(sampler, settings, accounts, result)
        else:
            await _load(clients, sampler, settings, accounts, result)
        after = process_cpu.sample(database)
        result.stack_cpu_seconds = {
            name: seconds - before.get(name, 0.0) for name, seconds in after.items()
        }
        await _read(clients, settings, accounts, result)
    return result


async def preflight(settings: BenchSettings) -> None:
    """Check the stack before anything slow runs (the ceiling takes seconds)."""
    async with httpx.AsyncClient() as client:
        await check_stack(client, settings)
