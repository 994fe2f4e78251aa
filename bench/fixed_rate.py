"""The phases that measure the ledger below saturation, beside the library's own rate.

After the closed-loop phase has found the maximum deposit rate, this:

1. gives one account a long history (``BENCH_HOT_EVENTS`` deposits, written
   through the event store's own append in big batches) and waits until the
   read side has it, so the hot account costs what a real one would;
2. runs the open loop (:mod:`bench.open_loop`) at ``BENCH_OPEN_LOOP_SHARE`` of
   the maximum, ``BENCH_HOT_SHARE`` of the deposits to the hot account, with
   transfers beside them, sampling each process's CPU before and after;
3. measures the eventsourcing library's own 8-thread get + save rate
   (:mod:`bench.library_ceiling`) on a scratch database.

Each figure is reported beside the goal it is held to.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx

from bench.hot_account import grow_history, wait_shown
from bench.latency_plot import plot_latency
from bench.library_ceiling import measure_library_rate
from bench.machine import cpu_times, python_reference_ms, shares
from bench.open_loop import (
    OpenLoopResult,
    Targets,
    measure_client_capacity,
    run_open_loop_processes,
)
from bench.process_cpu import database_name, per_event_ms, sample
from bench.server_activity import server_activity
from bench.stats import format_ms, summarize

#: Goals of the open-loop phase (milliseconds).
GOALS_MS = {"command_p99": 10.0, "visibility_p50": 5.0, "visibility_p99": 50.0,
            "transfer_p50": 50.0}  # fmt: skip


async def _open(client: httpx.AsyncClient, command_url: str, owner: str, amount: int) -> str:
    opened = await client.post(f"{command_url}/accounts", json={"owner": owner, "currency": "EUR"})
    opened.raise_for_status()
    account_id = str(opened.json()["account_id"])
    if amount:
        funded = await client.post(
            f"{command_url}/accounts/{account_id}/deposits", json={"amount": amount}
        )
        funded.raise_for_status()
    return account_id


async def prepare_targets(
    command_url: str, query_url: str, database_url: str, *, accounts: int, hot_events: int,
    hot_share: float, transfer_pairs: int,
) -> Targets:  # fmt: skip
    """Accounts to deposit to, a hot account with ``hot_events`` of history, transfer pairs."""
    run = uuid.uuid4().hex[:8]
    async with httpx.AsyncClient(timeout=30) as client:
        ids = [await _open(client, command_url, f"open-loop-{run}", 0) for _ in range(accounts)]
        hot = await _open(client, command_url, f"open-loop-hot-{run}", 0) if hot_events else None
        pairs = [
            (await _open(client, command_url, f"open-loop-tx-{run}", 1_000_000),
             await _open(client, command_url, f"open-loop-tx-{run}", 0))
            for _ in range(transfer_pairs)
        ]  # fmt: skip
        if hot is not None:
            version = await asyncio.to_thread(grow_history, database_url, hot, hot_events)
            await wait_shown(client, query_url, hot, version)
    return Targets(command_url, query_url, ids, hot, hot_share, pairs, database_url)


def summary_ms(points: list[tuple[float, float]]) -> dict[str, Any]:
    return asdict(summarize([seconds for _, seconds in points]))


def open_loop_base(
    targets: Targets, max_rate: float, *, share: float, capacity_seconds: float,
    connections: int, workers: int,
) -> dict[str, float]:  # fmt: skip
    """The open loop's rate: ``share`` of the lower of wrk's max and its own client's.

    The open loop's Python clients share the cores with the stack, which wrk's
    max never paid for, so a share of wrk's max alone can overload the machine
    and measure the queue: the client first runs a closed loop of the same mix.
    """
    capacity = measure_client_capacity(
        targets, seconds=capacity_seconds, connections=connections, workers=workers
    )
    return {
        "max_rate_per_second": max_rate,
        "client_capacity_per_second": capacity,
        "share": share,
        "rate_per_second": share * min(max_rate, capacity),
    }


def open_loop_section(
    targets: Targets, database_url: str, *, rate: float, transfer_rate: float, seconds: float,
    report_dir: Path, stem: str, workers: int = 2,
) -> dict[str, Any]:  # fmt: skip
    """Run the open loop and describe it: latencies, goals, CPU per event, the plot."""
    dbname = database_name(database_url)
    python_ms = python_reference_ms()
    activity = server_activity(database_url)
    before, started, machine = sample(dbname), time.perf_counter(), cpu_times()
    result: OpenLoopResult = run_open_loop_processes(
        targets, rate=rate, transfer_rate=transfer_rate, seconds=seconds, workers=workers
    )
    elapsed, after = time.perf_counter() - started, sample(dbname)
    machine_shares = shares(machine, cpu_times())
    server = server_activity(database_url).since(activity)
    plot = plot_latency(result, report_dir / f"{stem}-open-loop.png")
    section: dict[str, Any] = {
        "rate_per_second": rate,
        "transfer_rate_per_second": transfer_rate,
        "seconds": seconds,
        "hot_share": targets.hot_share,
        "command": summary_ms(result.commands),
        "visibility": summary_ms(result.visibility),
        "transfer_completion": summary_ms(result.transfers),
        "errors": dict(result.errors),
        "late_sends": result.late_sends,
        "send_delay": asdict(summarize(result.send_delays)),
        "postgresql_background": server,
        "machine": {**machine_shares, "python_reference_ms": python_ms},
        "client_processes": workers,
        "client_cpu_ms_per_request": 1000.0
        * result.client_cpu_seconds
        / max(1, len(result.commands)),
        "events": result.events,
        "cpu_ms_per_event": per_event_ms(before, after, result.events),
        "cpu_percent_of_a_core": {
            name: 100.0 * (after[name] - before.get(name, 0.0)) / elapsed for name in after
        },
        "plot": str(plot),
        "goals_ms": GOALS_MS,
    }
    section["goals_met"] = {
        "command_p99": at_most(section["command"]["p99_ms"], GOALS_MS["command_p99"]),
        "visibility_p50": at_most(section["visibility"]["p50_ms"], GOALS_MS["visibility_p50"]),
        "visibility_p99": at_most(section["visibility"]["p99_ms"], GOALS_MS["visibility_p99"]),
        "transfer_p50": at_most(
            section["transfer_completion"]["p50_ms"], GOALS_MS["transfer_p50"]
        ),
    }
    return section


def at_most(value: float | None, goal: float) -> bool | None:
    return None if value is None else value <= goal


def library_section(database_url: str, *, threads: int, seconds: float) -> dict[str, Any]:
    rate = measure_library_rate(database_url, threads=threads, seconds=seconds)
    return {**asdict(rate), "per_second": rate.per_second}



def _p50_p99(summary: dict[str, Any]) -> str:
    return f"p50 {format_ms(summary['p50_ms'])} · p99 {format_ms(summary['p99_ms'])}"


def _machine(machine: dict[str, float]) -> str:
    if "busy_percent" not in machine:
        return "-"
    return (
        f"busy {machine['busy_percent']:.0f}% · idle {machine['idle_percent']:.0f}% · stolen"
        f" {machine['stolen_percent']:.0f}% of {machine['cores']:.0f} cores; a fixed Python loop"
        f" {machine['python_reference_ms']:.0f} ms"
    )


#: Lines whose work per deposit differs between the two phases by design: the ratio
#: would measure the mix, not batching.
_OTHER_WORK_AT_MAX = {
    "query service": "the open loop reads every fifth deposit back, the max rate a few",
    "transfer saga": "the open loop sends transfers, the max rate none",
}


def _at_max(name: str, ms: float, at_max: float | None) -> str:
    """The same line's CPU per event at the max rate, where batches are biggest.

    Below saturation each process wakes for fewer events, so its fixed cost per
    wake-up (round trips, a transaction, a loop turn) is shared by fewer: the
    ratio says how much of the open loop's CPU is that, process by process.
    """
    if not at_max:
        return ""
    if name in _OTHER_WORK_AT_MAX:
        return f"; {at_max:.3f} ms at the max rate ({_OTHER_WORK_AT_MAX[name]})"
    return f"; {at_max:.3f} ms at the max rate ({ms / at_max:.1f}x)"


def _goal(met: bool | None) -> str:
    return {True: "goal met", False: "goal MISSED", None: "not measured"}[met]


def fixed_rate_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Rows of the library comparison, the open loop and CPU per event."""
    rows: list[tuple[str, str, str]] = []
    library = report.get("library")
    deposits = report["commands"]["per_second"]
    if library:
        ratio = deposits / library["per_second"] if library["per_second"] else None
        rows.append((
            f"eventsourcing library, {library['threads']} threads get+save",
            f"{library['per_second']:,.0f} /s",
            f"deposits are {ratio:.1f}x it (goal 2x)" if ratio else "-",
        ))  # fmt: skip
    loop = report.get("open_loop")
    if loop:
        met = loop["goals_met"]
        base = loop.get("base")
        if base:
            rows.append((
                "open loop's own client, closed loop (its rate's base)",
                f"{base['client_capacity_per_second']:,.0f} /s",
                f"{base['share']:.0%} of the lower of it and the max"
                f" ({base['max_rate_per_second']:,.0f}/s): the Python client shares the cores",
            ))  # fmt: skip
        rows += [
            (
                f"open loop: {loop['rate_per_second']:,.0f} deposits/s,"
                f" {loop['hot_share']:.0%} to a hot account",
                _p50_p99(loop["command"]),
                f"from due time; {_goal(met['command_p99'])} (p99 10 ms);"
                f" {loop['late_sends']} sent late by {loop.get('client_processes', 1)} client"
                f" process(es), {loop.get('client_cpu_ms_per_request', 0):.2f} ms client CPU"
                " per deposit",
            ),
            (
                "open loop: the client's own delay (due -> dispatched)",
                _p50_p99(loop.get("send_delay", {"p50_ms": None, "p99_ms": None})),
                "part of every latency above; not the server's",
            ),
            (
                "open loop: PostgreSQL's own work meanwhile",
                ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in
                          loop.get("postgresql_background", {}).items()) or "-",
                "checkpoints and vacuums stall every request at once (see the plot)",
            ),
            (
                "open loop: the machine meanwhile",
                _machine(loop.get("machine", {})),
                "of all its cores; time stolen by the hypervisor is time no process had",
            ),
            (
                "open loop: visibility (answered -> read shows it)",
                _p50_p99(loop["visibility"]),
                f"p50 {_goal(met['visibility_p50'])} (5 ms), p99 {_goal(met['visibility_p99'])}"
                " (50 ms)",
            ),
            (
                f"open loop: transfer completion ({loop['transfer_rate_per_second']:g}/s)",
                _p50_p99(loop["transfer_completion"]),
                f"{_goal(met['transfer_p50'])} (p50 50 ms)",
            ),
        ]
        at_max = report["commands"].get("cpu_ms_per_event", {})
        for name, ms in sorted(loop["cpu_ms_per_event"].items()):
            share = loop["cpu_percent_of_a_core"].get(name, 0)
            rows.append((
                f"CPU per event: {name}", f"{ms:.3f} ms",
                f"{share:.0f}% of a core{_at_max(name, ms, at_max.get(name))}",
            ))  # fmt: skip
    return rows
