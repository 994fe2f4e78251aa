"""One deposit at a time: what the stack pays for an event that travels alone.

Every process on an event's way (command service, PostgreSQL, relay, Redis,
projector, query service) pays a fixed cost each time it wakes: a loop turn,
round trips, a transaction. At the max rate those costs are shared by big
batches; an event that travels alone pays all of them. This phase measures
that end of the curve: one client on one connection sends a deposit, reads it
back through the query service (``min_position``), and only then sends the
next, so no two events ever share a wake-up anywhere.

Two figures follow. The latencies are the floor under any load: no batching,
no queueing. And the stack's CPU per lone deposit, summed over its
processes, divided into the machine's cores, is the rate the stack could
carry if it never batched: above it the processes must batch, every core is
busy with fixed costs shared by fewer events than at the max rate, and the
latencies below saturation are mostly waiting for a core (the open loop's
steps show where the goals stop holding). So the rows say where a cut counts:
a process's cost here is what it adds to every wake-up below saturation.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from bench.fixed_rate import summary_ms
from bench.lean_http import lean_session
from bench.machine import cpu_times, shares
from bench.open_loop import OpenLoopResult, Phase, Targets
from bench.process_cpu import database_name, per_event_ms, sample
from bench.stats import format_ms

#: Longest one request may take before the phase counts it failed.
_REQUEST_TIMEOUT_SECONDS = 10.0


async def _one_at_a_time(targets: Targets, seconds: float) -> OpenLoopResult:
    """The open loop's deposits and reads back, each awaited before the next is sent."""
    result = OpenLoopResult(rate=0.0, seconds=seconds)
    async with lean_session(1, _REQUEST_TIMEOUT_SECONDS) as http:
        # Every deposit read back; the ordinary accounts only (no hot one: a lone deposit
        # should cost what any does).
        phase = Phase(
            http, replace(targets, hot_account=None), result, visibility_every=1,
            follow_seconds=0.0, watch=None,
        )  # fmt: skip
        started = time.perf_counter()
        index = 0
        while (sent := time.perf_counter()) - started < seconds:
            await phase.deposit(index, sent, sent - started)
            index += 1
    return result


async def lone_deposits_section(
    targets: Targets, database_url: str, *, seconds: float
) -> dict[str, Any]:
    """Deposits one at a time for ``seconds``: latencies and each process's CPU per deposit."""
    database = database_name(database_url)
    machine, before = cpu_times(), sample(database)
    lone = await _one_at_a_time(targets, seconds)
    after, machine_shares = sample(database), shares(machine, cpu_times())
    deposits = len(lone.commands)
    cpu = per_event_ms(before, after, deposits)
    stack_ms = sum(cpu.values())
    cores = machine_shares.get("cores")
    return {
        "seconds": seconds,
        "deposits": deposits,
        "command": summary_ms(lone.commands),
        "visibility": summary_ms(lone.visibility),
        "errors": dict(lone.errors),
        "cpu_ms_per_deposit": cpu,
        "stack_cpu_ms_per_deposit": stack_ms,
        "cores": cores,
        "unbatched_limit_per_second": 1000.0 * cores / stack_ms if cores and stack_ms else None,
    }


def lone_deposit_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The floor latencies, then the CPU a lone deposit costs and the rate that caps."""
    lone = report.get("lone_deposits")
    if not lone:
        return []
    errors = sum(lone["errors"].values())
    command, visibility = lone["command"], lone["visibility"]
    rows = [(
        f"one deposit at a time ({lone['deposits']:,}, each read back before the next)",
        f"command p50 {format_ms(command['p50_ms'])}, p99 {format_ms(command['p99_ms'])}"
        f" · visibility p50 {format_ms(visibility['p50_ms'])}, p99"
        f" {format_ms(visibility['p99_ms'])}",
        "the floor under any load: nothing batched, nothing queued"
        + (f"; {errors} failed" if errors else ""),
    )]  # fmt: skip
    cpu: dict[str, float] = lone["cpu_ms_per_deposit"]
    if cpu:
        parts = ", ".join(f"{name} {ms:.2f}" for name, ms in sorted(cpu.items(), key=_costliest))
        limit = lone["unbatched_limit_per_second"]
        rows.append((
            "CPU per deposit travelling alone",
            f"{lone['stack_cpu_ms_per_deposit']:.2f} ms ({parts})",
            f"{lone['cores']:.0f} cores carry {limit:,.0f} deposits/s like this; faster, the"
            " stack must batch and its latencies are mostly waiting for a core"
            if limit else "-",
        ))  # fmt: skip
    return rows


def _costliest(item: tuple[str, float]) -> tuple[float, str]:
    return (-item[1], item[0])
