"""A PNG of the open-loop phase: each request's latency at the time it was due.

Percentiles hide when things went wrong; the plot shows it (a stall is a
diagonal of requests queued behind it, a backlog a rising band).
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure  # no pyplot: no display, no global state

from bench.open_loop import OpenLoopResult


def plot_latency(result: OpenLoopResult, path: Path) -> Path:
    """Scatter of command, visibility and transfer-completion latency (ms, log scale)."""
    figure = Figure(figsize=(10, 5), dpi=100)
    axes = figure.subplots()
    series = (
        ("command (due -> answered)", result.commands, 2),
        ("visibility (answered -> read shows it)", result.visibility, 4),
        ("transfer (due -> terminal shown)", result.transfers, 6),
    )
    for label, points, size in series:
        if points:
            axes.scatter(
                [at for at, _ in points], [1000 * s for _, s in points], s=size, label=label,
                alpha=0.6,
            )  # fmt: skip
    axes.set_yscale("log")
    axes.set_xlabel("seconds into the phase (due time)")
    axes.set_ylabel("latency, ms")
    axes.set_title(f"open loop at {result.rate:.0f} deposits/s")
    axes.grid(True, which="both", alpha=0.3)
    if any(points for _, points, _ in series):
        axes.legend(loc="upper left")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path
