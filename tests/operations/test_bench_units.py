"""The benchmark's pure helpers, its real pgbench ceiling and its refusal to run blind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from bench.__main__ import load_settings, parse_args
from bench.ceiling import Ceiling, higher_of, measure_ceiling, parse_pgbench_output
from bench.stats import percentile, summarize
from tests.support.infra import POSTGRES_SERVER_URL, free_port

ROOT = Path(__file__).resolve().parents[2]

PGBENCH_15 = """\
transaction type: /tmp/append.sql
scaling factor: 1
query mode: simple
number of clients: 32
number of threads: 2
maximum number of tries: 1
duration: 3 s
number of transactions actually processed: 41734
number of failed transactions: 0 (0.000%)
latency average = 2.291 ms
initial connection time = 21.503 ms
tps = 13966.110375 (without initial connection time)
"""

PGBENCH_13 = """\
number of transactions actually processed: 30000
latency average = 3.200 ms
tps = 9950.1 (including connections establishing)
tps = 10000.5 (excluding connections establishing)
"""


def test_percentiles_interpolate_between_ranks() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile(list(range(1, 101)), 99) == pytest.approx(99.01)
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match="within"):
        percentile([1, 2], 100)


def test_summaries_are_in_milliseconds() -> None:
    summary = summarize([0.001, 0.002, 0.003])
    assert summary.count == 3
    assert summary.p50_ms == pytest.approx(2.0)
    assert summary.max_ms == pytest.approx(3.0)
    assert summarize([]).p99_ms is None


def test_parse_pgbench_15() -> None:
    result = parse_pgbench_output(PGBENCH_15)
    assert result.tps == pytest.approx(13966.110375)
    assert result.latency_avg_ms == pytest.approx(2.291)
    assert result.transactions == 41734
    assert result.failed == 0


def test_parse_pgbench_13_prefers_tps_without_connection_set_up() -> None:
    result = parse_pgbench_output(PGBENCH_13)
    assert result.tps == pytest.approx(10000.5)
    assert result.transactions == 30000


def test_parse_rejects_output_without_tps() -> None:
    with pytest.raises(ValueError, match="tps"):
        parse_pgbench_output("pgbench: error: connection refused\n")


def _bench_databases() -> set[str]:
    with psycopg.connect(POSTGRES_SERVER_URL) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'ledger_bench_%'"
        ).fetchall()
    return {name for (name,) in rows}


def _ceiling(tps: float) -> Ceiling:
    return Ceiling(tps, 2.0, int(tps * 5), 0, 32, 2, 5.0, "15")


@pytest.mark.parametrize(("before", "after"), [(11_525.0, 16_069.0), (16_069.0, 11_525.0)])
def test_the_ceiling_is_the_higher_of_the_runs_around_the_load_and_keeps_both(
    before: float, after: float
) -> None:
    ceiling = higher_of(_ceiling(before), _ceiling(after))

    assert ceiling.tps == 16_069.0
    assert ceiling.transactions == int(16_069.0 * 5)
    assert ceiling.samples_tps == (before, after)


@pytest.mark.skipif(shutil.which("pgbench") is None, reason="pgbench is not installed")
def test_ceiling_runs_pgbench_for_real_and_drops_its_database() -> None:
    before = _bench_databases()
    ceiling = measure_ceiling(POSTGRES_SERVER_URL, clients=2, seconds=1)
    assert ceiling.tps > 0
    assert ceiling.transactions and ceiling.transactions > 0
    assert ceiling.failed == 0
    assert ceiling.server_version
    assert _bench_databases() <= before


def test_bench_says_how_to_start_the_stack_when_it_is_not_running(tmp_path: Path) -> None:
    env = dict(
        os.environ,
        COMMAND_SERVICE_URL=f"http://127.0.0.1:{free_port()}",
        QUERY_SERVICE_URL=f"http://127.0.0.1:{free_port()}",
        BENCH_REPORT_DIR=str(tmp_path),
    )
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--seconds", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2
    assert "make run" in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_bad_settings_are_refused_one_line_each_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BENCH_OPEN_LOOP_STEPS", "0.1, abc, 1.5")
    monkeypatch.setenv("BENCH_SECONDS", "-1")
    with pytest.raises(SystemExit) as exited:
        load_settings(parse_args([]))
    assert exited.value.code == 2
    assert sorted(capsys.readouterr().err.splitlines()) == [
        "bench: BENCH_OPEN_LOOP_STEPS, item 2: Input should be a valid number, unable to parse"
        " string as a number (got 'abc')",
        "bench: BENCH_OPEN_LOOP_STEPS, item 3: Input should be less than or equal to 1"
        " (got '1.5')",
        "bench: BENCH_SECONDS: Input should be greater than 0 (got '-1')",
    ]


def test_the_open_loop_steps_are_shares_written_comma_separated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BENCH_OPEN_LOOP_STEPS", " 0.05,0.2 ")
    assert load_settings(parse_args([])).bench_open_loop_steps == [0.05, 0.2]
    monkeypatch.setenv("BENCH_OPEN_LOOP_STEPS", "")
    assert load_settings(parse_args([])).bench_open_loop_steps == []
