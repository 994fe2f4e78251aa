"""Latency summaries: count, mean, p50, p99 and max, in milliseconds.

Percentiles come from :func:`statistics.quantiles` (the "inclusive" method,
linear interpolation between the closest ranks), so p50 of [1, 2, 3, 4] is 2.5.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Summary:
    count: int
    mean_ms: float | None
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None


def format_ms(value: float | None) -> str:
    """A duration in milliseconds for a report cell; ``-`` when not measured."""
    return "-" if value is None else f"{value:.1f} ms"


def latency_text(summary: Mapping[str, Any]) -> str:
    """``p50 … · p99 … · n=…`` of a :class:`Summary` as the reports hold it (a dict)."""
    return (
        f"p50 {format_ms(summary['p50_ms'])} · p99 {format_ms(summary['p99_ms'])}"
        f" · n={summary['count']}"
    )


def rate(count: float, seconds: float) -> float:
    """``count`` per second over ``seconds``; 0 for a run that took no time."""
    return count / seconds if seconds else 0.0


def rate_cells(per_second: float, ratio_to_ceiling: float | None) -> tuple[str, str]:
    """A report row's value and note for a rate: it, and its share of the ceiling."""
    beside = (
        f"{ratio_to_ceiling:.1%} of the ceiling"
        if ratio_to_ceiling is not None
        else "no ceiling to compare"
    )
    return f"{per_second:,.0f} /s", beside


def percentile(values: Sequence[float], q: int) -> float:
    """The ``q``-th percentile (1..99) of ``values``; needs at least one value."""
    if not 1 <= q <= 99:
        msg = f"percentile must be within 1..99, got {q}"
        raise ValueError(msg)
    if not values:
        msg = "percentile of no values"
        raise ValueError(msg)
    if len(values) == 1:
        return float(values[0])
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def summarize(seconds: Sequence[float]) -> Summary:
    """Summarize durations given in seconds, reported in milliseconds."""
    if not seconds:
        return Summary(0, None, None, None, None)
    millis = [value * 1000.0 for value in seconds]
    return Summary(
        count=len(millis),
        mean_ms=statistics.fmean(millis),
        p50_ms=percentile(millis, 50),
        p99_ms=percentile(millis, 99),
        max_ms=max(millis),
    )
