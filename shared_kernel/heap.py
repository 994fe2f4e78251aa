"""Garbage collection for a long-running service: the start-up heap kept out of every scan.

CPython's cycle collector scans every tracked object of a generation when it
runs. A service builds most of its objects once (modules, the web framework's
routes and signature models, OpenAPI schemas) and keeps them for life, so
with the defaults each full collection walked all of them again: about once a
second under load, 40-50 ms with the interpreter lock held, every request in
flight late by as much. Freezing the heap once the app is built moves it into
a permanent generation no collection scans, and a larger young generation
(almost every request's objects die by reference count, not by the
collector) makes the scans that remain rare.

Every collection is timed into ``ledger_gc_pause_seconds`` so a latency tail
can be told apart from one the collector caused.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import Histogram

#: Net allocations between young-generation collections (CPython's default is 700).
YOUNG_GENERATION_THRESHOLD = 10_000

PAUSE = Histogram(
    "ledger_gc_pause_seconds",
    "Pauses of Python's cycle collector (the interpreter lock held), by generation.",
    ["generation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
)

_started: list[float] = []


def _time_collections(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started.append(time.perf_counter())
    elif _started:
        PAUSE.labels(str(info["generation"])).observe(time.perf_counter() - _started.pop())


def keep_startup_heap() -> None:
    """Freeze what the process has built so far and widen the young generation.

    Call once, when the app is built and before it serves. Idempotent in effect.
    """
    if _time_collections not in gc.callbacks:
        gc.callbacks.append(_time_collections)
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)
