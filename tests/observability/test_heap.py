"""A service's start-up heap is frozen and its young generation widened, once."""

from __future__ import annotations

import subprocess
import sys

from shared_kernel.heap import YOUNG_GENERATION_THRESHOLD
from tests.support.processes import PROJECT_ROOT

_PROBE = """
import gc
from prometheus_client import REGISTRY
from shared_kernel.heap import keep_startup_heap
keep_startup_heap()
keep_startup_heap()
gc.collect(0)
def count(generation):
    return REGISTRY.get_sample_value("ledger_gc_pause_seconds_count", {"generation": generation})
print(gc.get_freeze_count(), gc.get_threshold()[0], count("0"), count("2"), len(gc.callbacks))
"""


def test_the_heap_built_at_start_is_frozen_and_every_pause_timed() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=PROJECT_ROOT, capture_output=True, text=True,
        check=True, timeout=60,
    )  # fmt: skip
    frozen, young, gen0_pauses, gen2_pauses, callbacks = probe.stdout.split()
    assert int(frozen) > 10_000  # modules, classes and functions: no collection scans them
    assert int(young) == YOUNG_GENERATION_THRESHOLD
    assert float(gen0_pauses) >= 1 and float(gen2_pauses) == 2  # one full collection per call
    assert int(callbacks) == 1  # calling twice adds no second timer
