"""The transfers section of the benchmark: transfers/s and completion latency.

Runs after the deposit phases, on accounts of its own (so the deposit
phase's balance check stays exact), in four bounded steps:

1. probe: ``POST /transfers`` with an empty body must answer 422 (deployed,
   body refused); a 404 means the command service has no transfers, and the
   section is skipped with that note;
2. set-up: open BENCH_TRANSFER_ACCOUNTS accounts, each with
   BENCH_INITIAL_DEPOSIT, so transfers of 1 between them never lack funds;
3. load: BENCH_CLIENTS workers post transfers between random distinct pairs
   for BENCH_TRANSFER_SECONDS. Some a second are followed by a probe that
   polls ``GET /transfers/{id}`` until its status is terminal, which gives
   the completion latency (request sent -> terminal status visible);
4. drain: every accepted transfer is read back until it is terminal (bounded
   by BENCH_TRANSFER_DRAIN_SECONDS), then every balance with ``min_position``:
   the sum must still equal what was deposited, whatever moved.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from bench.load import http_clients
from bench.settings import BenchSettings
from bench.stats import latency_text, rate_cells, summarize

TERMINAL = frozenset({"completed", "refunded", "failed"})


@dataclass
class TransferResult:
    """Raw observations of the transfers section; :func:`transfer_section` summarises them."""

    skipped: str | None = None
    accounts: int = 0
    load_seconds: float = 0.0
    drain_seconds: float = 0.0
    request_latencies: list[float] = field(default_factory=list)
    completion_latencies: list[float] = field(default_factory=list)
    completion_timeouts: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    not_terminal: int = 0
    deposited: int = 0
    balances_sum: int | None = None


def describe_answer(response: httpx.Response) -> str:
    """``<status> <problem code>`` of an answer, for counting refusals by kind."""
    try:
        body = response.json()
    except ValueError:
        body = None
    return describe_status(response.status_code, body)


def describe_status(status: int, body: Any) -> str:
    """``<status> <problem code>`` of an answer whose JSON body is ``body`` (None if not JSON)."""
    code = body.get("code") if isinstance(body, dict) else None
    return f"{status} {code or ''}".strip()


async def _probe(client: httpx.AsyncClient, settings: BenchSettings) -> str | None:
    """Why the section cannot run, or None when both services know transfers."""
    response = await client.post(f"{settings.command_service_url}/transfers", json={})
    if response.status_code == httpx.codes.NOT_FOUND:
        return "POST /transfers answers 404: this command service has no transfers (not deployed)"
    if response.status_code != httpx.codes.UNPROCESSABLE_ENTITY:
        return f"POST /transfers with an empty body answered {describe_answer(response)}, not 422"
    probe = await client.get(f"{settings.query_service_url}/transfers/{_NIL}")
    answered = describe_answer(probe)
    if answered != "404 transfer-not-found":
        return f"GET /transfers/{{id}} answered {answered}: the query service has none"
    return None


_NIL = "00000000-0000-0000-0000-000000000000"


async def _open_funded(
    client: httpx.AsyncClient, settings: BenchSettings, result: TransferResult, owner: str
) -> str:
    command = settings.command_service_url
    opened = await client.post(
        f"{command}/accounts", json={"owner": owner, "currency": settings.bench_currency}
    )
    if opened.status_code != httpx.codes.CREATED:
        raise RuntimeError(f"POST /accounts answered {describe_answer(opened)}")
    account_id = str(opened.json()["account_id"])
    funded = await client.post(
        f"{command}/accounts/{account_id}/deposits", json={"amount": settings.bench_initial_deposit}
    )
    if funded.status_code != httpx.codes.OK:
        raise RuntimeError(f"the initial deposit answered {describe_answer(funded)}")
    result.deposited += settings.bench_initial_deposit
    return account_id


async def _status(client: httpx.AsyncClient, url: str) -> str | None:
    try:
        response = await client.get(url)
    except httpx.HTTPError:
        return None
    if response.status_code != httpx.codes.OK:
        return None
    status: str = response.json()["status"]
    return status


async def _follow(
    client: httpx.AsyncClient,
    settings: BenchSettings,
    result: TransferResult,
    transfer_id: str,
    sent: float,
) -> None:
    """Poll the transfer until the query service shows it terminal; record sent -> visible."""
    url = f"{settings.query_service_url}/transfers/{transfer_id}"
    deadline = sent + settings.bench_lag_timeout_seconds
    while True:
        status = await _status(client, url)
        now = time.perf_counter()
        if status in TERMINAL:
            result.completion_latencies.append(now - sent)
            return
        if now >= deadline:
            result.completion_timeouts += 1
            return
        await asyncio.sleep(settings.bench_lag_poll_ms / 1000.0)


async def _load(
    clients: list[httpx.AsyncClient],
    probe_client: httpx.AsyncClient,
    settings: BenchSettings,
    accounts: list[str],
    result: TransferResult,
) -> list[str]:
    """Transfers of 1 between random distinct accounts; returns the accepted transfer ids."""
    url = f"{settings.command_service_url}/transfers"
    accepted: list[str] = []
    probes: set[asyncio.Task[None]] = set()
    sample_every = 1.0 / settings.bench_lag_samples_per_second
    next_sample = time.perf_counter()
    started = time.perf_counter()
    deadline = started + settings.bench_transfer_seconds
    rng = random.Random()

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal next_sample
        while time.perf_counter() < deadline:
            source, target = rng.sample(accounts, 2)
            body = {"from_account": source, "to_account": target, "amount": 1}
            sent = time.perf_counter()
            try:
                response = await client.post(url, json=body)
            except httpx.HTTPError as error:
                result.errors[type(error).__name__] += 1
                continue
            answered = time.perf_counter()
            if response.status_code != httpx.codes.ACCEPTED:
                result.errors[describe_answer(response)] += 1
                continue
            result.request_latencies.append(answered - sent)
            transfer_id = str(response.json()["transfer_id"])
            accepted.append(transfer_id)
            if answered >= next_sample:
                next_sample = answered + sample_every
                probe = asyncio.create_task(
                    _follow(probe_client, settings, result, transfer_id, sent)
                )
                probes.add(probe)
                probe.add_done_callback(probes.discard)

    await asyncio.gather(*(worker(client) for client in clients))
    result.load_seconds = time.perf_counter() - started
    if probes:
        await asyncio.gather(*probes)
    return accepted


async def _drain(
    clients: list[httpx.AsyncClient],
    settings: BenchSettings,
    accepted: list[str],
    result: TransferResult,
) -> None:
    """Read every accepted transfer until it is terminal, or the drain time is up."""
    started = time.perf_counter()
    deadline = started + settings.bench_transfer_drain_seconds

    async def read_round(waiting: list[str]) -> list[str]:
        """Read each waiting transfer once (all clients at once); returns those not ended."""
        queue = iter(waiting)
        still: list[str] = []

        async def worker(client: httpx.AsyncClient) -> None:
            for transfer_id in queue:
                url = f"{settings.query_service_url}/transfers/{transfer_id}"
                status = await _status(client, url)
                if status in TERMINAL:
                    result.outcomes[str(status)] += 1
                else:
                    still.append(transfer_id)

        await asyncio.gather(*(worker(client) for client in clients))
        return still

    waiting = list(accepted)
    while waiting and time.perf_counter() < deadline:
        waiting = await read_round(waiting)
        if waiting:
            await asyncio.sleep(0.2)
    result.drain_seconds = time.perf_counter() - started
    result.not_terminal = len(waiting)


async def _sum_balances(
    client: httpx.AsyncClient, settings: BenchSettings, accounts: list[str]
) -> int | None:
    """The accounts' balances summed, or None when one cannot be read.

    Read after the drain: a transfer shows terminal only once its last leg's
    position is projected, and the projector moves every read model together.
    """
    total = 0
    for account_id in accounts:
        response = await client.get(f"{settings.query_service_url}/accounts/{account_id}")
        if response.status_code != httpx.codes.OK:
            return None
        total += int(response.json()["balance"])
    return total


async def run_transfers(settings: BenchSettings, run_id: str) -> TransferResult:
    """The whole section against the running stack; skipped (with the reason) when not deployed."""
    result = TransferResult()
    async with contextlib.AsyncExitStack() as stack:
        clients, probe_client = await http_clients(stack, settings)
        result.skipped = await _probe(probe_client, settings)
        if result.skipped is not None:
            return result
        count = settings.bench_transfer_accounts
        accounts = await asyncio.gather(
            *(
                _open_funded(clients[i % len(clients)], settings, result, f"bench-t-{run_id}-{i}")
                for i in range(count)
            )
        )
        result.accounts = len(accounts)
        accepted = await _load(clients, probe_client, settings, list(accounts), result)
        await _drain(clients, settings, accepted, result)
        result.balances_sum = await _sum_balances(probe_client, settings, list(accounts))
    return result


def transfer_section(result: TransferResult | None, ceiling_tps: float | None) -> dict[str, Any]:
    """The report's ``transfers`` entry, as plain JSON-able data."""
    if result is None:
        return {"skipped": "not run (--no-transfers or BENCH_TRANSFER_SECONDS=0)"}
    if result.skipped is not None:
        return {"skipped": result.skipped}
    accepted = len(result.request_latencies)
    per_second = accepted / result.load_seconds if result.load_seconds else 0.0
    finished = sum(result.outcomes.values())
    elapsed = result.load_seconds + result.drain_seconds
    return {
        "accounts": result.accounts,
        "accepted": accepted,
        "per_second": per_second,
        "ratio_to_ceiling": per_second / ceiling_tps if ceiling_tps else None,
        "finished_per_second": finished / elapsed if elapsed else 0.0,
        "request_latency": asdict(summarize(result.request_latencies)),
        "completion_latency": asdict(summarize(result.completion_latencies)),
        "completion_not_seen_within_timeout": result.completion_timeouts,
        "errors": dict(result.errors),
        "outcomes": dict(result.outcomes),
        "not_terminal_after_drain": result.not_terminal,
        "load_seconds": result.load_seconds,
        "drain_seconds": result.drain_seconds,
        "money_conserved": result.balances_sum == result.deposited,
        "deposited": result.deposited,
        "balances_sum": result.balances_sum,
    }



def transfer_rows(section: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(measure, value, beside it) rows of the transfers section for the report tables."""
    if "skipped" in section:
        return [("transfers", "skipped", section["skipped"])]
    ratio = section["ratio_to_ceiling"]
    outcomes = ", ".join(f"{n} {status}" for status, n in sorted(section["outcomes"].items()))
    return [
        ("transfers (HTTP POST /transfers, 202)", *rate_cells(section["per_second"], ratio)),
        (
            "transfer request latency",
            latency_text(section["request_latency"]),
            f"{sum(section['errors'].values())} refused or failed",
        ),
        (
            "transfer completion (sent -> terminal visible)",
            latency_text(section["completion_latency"]),
            f"{section['completion_not_seen_within_timeout']} not seen in time",
        ),
        (
            "transfers finished",
            f"{section['finished_per_second']:,.0f} /s",
            f"{outcomes or 'none'}; {section['not_terminal_after_drain']} not terminal"
            f" after {section['drain_seconds']:.1f} s of drain",
        ),
        (
            "money conserved across transfers",
            f"{section['balances_sum']}/{section['deposited']}",
            "ok" if section["money_conserved"] else "MISMATCH",
        ),
    ]


def transfers_failed(section: dict[str, Any]) -> bool:
    """True when the section ran and the read side disagrees with what was accepted."""
    if "skipped" in section:
        return False
    return bool(section["not_terminal_after_drain"]) or not section["money_conserved"]
