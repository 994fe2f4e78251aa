"""What the machine itself did during a phase: busy, idle, and time the hypervisor stole.

A latency below saturation is mostly time spent waiting for a core, so it
depends on how many cores the phase really had. On a virtual machine the
hypervisor can give a vCPU's time to other guests ("steal", the eighth
field of ``/proc/stat``'s ``cpu`` line): seen here, 4-24% of both cores while
the open loop ran, on a day when the same code answered in 15 ms or in 1 s.
The report shows it beside the latencies so a slow run can be told from a
slow ledger, and a fixed pure-Python loop's time so runs on machines of
different speeds can be compared (the stack is Python; pgbench's ceiling is
not, and does not move with the interpreter's speed).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

_STAT = Path("/proc/stat")


@dataclass(frozen=True, slots=True)
class CpuTimes:
    """Clock ticks of all cores since boot, by what they were spent on."""

    busy: int
    idle: int
    stolen: int


def cpu_times(stat: Path = _STAT) -> CpuTimes | None:
    """The ``cpu`` line of ``/proc/stat``; None where there is none (not Linux)."""
    try:
        line = stat.read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    # cpu user nice system idle iowait irq softirq steal [guest guest_nice: inside user]
    ticks = [int(field) for field in line.split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = ticks + [0] * (8 - len(ticks))
    return CpuTimes(busy=user + nice + system + irq + softirq, idle=idle + iowait, stolen=steal)


def shares(before: CpuTimes | None, after: CpuTimes | None) -> dict[str, float]:
    """Percent of all the cores' time between two readings: busy, idle, stolen."""
    if before is None or after is None:
        return {}
    busy, idle = after.busy - before.busy, after.idle - before.idle
    stolen = after.stolen - before.stolen
    total = busy + idle + stolen
    if total <= 0:
        return {}
    return {
        "busy_percent": 100.0 * busy / total,
        "idle_percent": 100.0 * idle / total,
        "stolen_percent": 100.0 * stolen / total,
        "cores": float(os.cpu_count() or 1),
    }


def python_reference_ms(repeats: int = 5) -> float:
    """Best of ``repeats`` timings of a fixed pure-Python loop (dict, str and int work)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        table: dict[str, int] = {}
        for number in range(200_000):
            key = f"k{number % 1000}"
            table[key] = table.get(key, 0) + number
        best = min(best, time.perf_counter() - started)
    return 1000.0 * best
