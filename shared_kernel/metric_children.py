"""A labelled metric's child, looked up once per label values.

``labels()`` validates the values and takes the metric's lock on every call; on a
hot path (every command, query or answer) that was a measurable share of the
work. The label values here are few (command kinds, outcomes, route templates,
status codes), so each child is kept once found.
"""

from __future__ import annotations

import functools
from typing import TypeVar, cast

from prometheus_client.metrics import MetricWrapperBase

Metric = TypeVar("Metric", bound=MetricWrapperBase)


@functools.cache
def _child(metric: MetricWrapperBase, values: tuple[str, ...]) -> MetricWrapperBase:
    return metric.labels(*values)


def child(metric: Metric, *values: str) -> Metric:
    """``metric.labels(*values)``, the same object every time for the same values."""
    return cast("Metric", _child(metric, values))
