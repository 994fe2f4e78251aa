"""The open loop at lower rates: how far below the max the latency goals hold.

The open-loop phase answers one question, "are the goals met at half the
max?". An operator sizing a machine asks another: "up to what rate are they
met here?". Below saturation each process wakes for fewer events and pays
its fixed cost per wake-up (round trips, a transaction, a loop turn) for
fewer of them, so the stack's CPU grows much faster than linearly from idle
(see the CPU per event rows beside the max rate's): the answer is not half
of anything, it has to be measured. These steps run the same client and mix
(deposits only, no transfers, every fifth one read back) for a few seconds
at each share of the open loop's base, lowest first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.fixed_rate import GOALS_MS, at_most, summary_ms
from bench.machine import cpu_times, shares
from bench.open_loop import Targets, run_open_loop_processes
from bench.stats import format_ms

#: The goals the steps are held to: the open loop's, except transfers (none are sent).
STEP_GOALS_MS = {name: ms for name, ms in GOALS_MS.items() if name != "transfer_p50"}


def step_section(targets: Targets, *, rate: float, seconds: float, workers: int) -> dict[str, Any]:
    """Deposits at ``rate``/s for ``seconds``: latencies, errors, the machine's busy share."""
    machine = cpu_times()
    result = run_open_loop_processes(
        targets, rate=rate, transfer_rate=0.0, seconds=seconds, workers=workers
    )
    command, visibility = summary_ms(result.commands), summary_ms(result.visibility)
    measured = {
        "command_p99": command["p99_ms"],
        "visibility_p50": visibility["p50_ms"],
        "visibility_p99": visibility["p99_ms"],
    }
    return {
        "rate_per_second": rate,
        "seconds": seconds,
        "command": command,
        "visibility": visibility,
        "errors": dict(result.errors),
        "machine": shares(machine, cpu_times()),
        "goals_met": all(at_most(value, STEP_GOALS_MS[name]) for name, value in measured.items())
        and not result.errors,
    }


def steps_section(
    targets: Targets, base: float, step_shares: Sequence[float], *, seconds: float, workers: int
) -> list[dict[str, Any]]:
    """A step at each share of ``base``, lowest first."""
    return [
        {"share": share, **step_section(targets, rate=share * base, seconds=seconds,
                                        workers=workers)}
        for share in sorted(step_shares)
    ]  # fmt: skip


def goals_hold_up_to(steps: Sequence[dict[str, Any]], open_loop: dict[str, Any]) -> float | None:
    """The highest rate whose run met the goals: a step's, or the open loop's own."""
    held = [step["rate_per_second"] for step in steps if step["goals_met"]]
    met = open_loop.get("goals_met", {})
    if met and all(met.get(name) for name in STEP_GOALS_MS) and not open_loop.get("errors"):
        held.append(open_loop["rate_per_second"])
    return max(held) if held else None


def step_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """One row per step, then the highest rate at which the goals held."""
    steps = report.get("open_loop_steps")
    if not steps:
        return []
    rows: list[tuple[str, str, str]] = []
    for step in steps:
        busy = step["machine"].get("busy_percent")
        errors = sum(step["errors"].values())
        rows.append((
            f"open loop at {step['share']:.0%} of its base: {step['rate_per_second']:,.0f}"
            " deposits/s",
            f"command p99 {format_ms(step['command']['p99_ms'])} · visibility p50"
            f" {format_ms(step['visibility']['p50_ms'])}, p99"
            f" {format_ms(step['visibility']['p99_ms'])}",
            ("goals met" if step["goals_met"] else "goals MISSED")
            + (f"; machine {busy:.0f}% busy" if busy is not None else "")
            + (f"; {errors} failed" if errors else ""),
        ))  # fmt: skip
    held = goals_hold_up_to(steps, report.get("open_loop", {}))
    rows.append((
        "open loop: the goals hold up to",
        f"{held:,.0f} deposits/s" if held is not None else "none of the rates tried",
        f"command p99 {STEP_GOALS_MS['command_p99']:g} ms, visibility p50"
        f" {STEP_GOALS_MS['visibility_p50']:g} ms and p99 {STEP_GOALS_MS['visibility_p99']:g} ms:"
        " the highest rate meeting all",
    ))  # fmt: skip
    return rows
