"""``make bench``'s rebuild phase: a real rebuild on a scratch store it fills and drops."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg

from bench.rebuild import measure_rebuild, rebuild_failed, rebuild_rows
from tests.support.infra import POSTGRES_SERVER_URL
from tests.support.processes import PROJECT_ROOT


def scratch_databases() -> set[str]:
    with psycopg.connect(POSTGRES_SERVER_URL) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'ledger\\_bench\\_rebuild\\_%'"
        ).fetchall()
    return {name for (name,) in rows}


def test_rebuild_speed_is_measured_on_a_store_it_fills_and_drops() -> None:
    before = scratch_databases()
    result = measure_rebuild(POSTGRES_SERVER_URL, 1_500, "owner_summaries", batch_size=200)

    assert (result.state, result.events, result.projection) == ("swapped", 1_500, "owner_summaries")
    assert result.events_per_second > 0 and result.seconds_per_million > 0
    assert result.total_seconds == result.replay_seconds + result.verify_and_swap_seconds
    section = result.to_json()
    assert not rebuild_failed(section)
    [(measure, value, beside)] = rebuild_rows(section)
    assert "owner_summaries (1,500 events)" in measure
    assert value.endswith("events/s") and "per million events" in beside
    assert scratch_databases() <= before


def test_bench_rebuild_only_needs_no_stack() -> None:
    env = dict(os.environ, DATABASE_URL=POSTGRES_SERVER_URL)
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--rebuild-only", "--rebuild-events", "500"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "events/s" in completed.stdout
    skipped = subprocess.run(
        [sys.executable, "-m", "bench", "--rebuild-only", "--rebuild-events", "0"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert skipped.returncode == 0
    assert "skipped" in skipped.stdout
