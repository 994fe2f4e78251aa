"""The open-loop phase, the CPU sampling, the library's rate and the plot.

The pure parts against hand-made inputs; then one short real run of the open
loop against a stack of real processes, checking what it reports (never how
fast: speed is `make bench`'s business).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bench.fixed_rate import GOALS_MS, fixed_rate_rows, open_loop_section, prepare_targets
from bench.latency_plot import plot_latency
from bench.latency_steps import goals_hold_up_to, step_rows, steps_section
from bench.library_ceiling import measure_library_rate
from bench.load import LoadResult, weighted_ids
from bench.lone_deposits import lone_deposit_rows, lone_deposits_section
from bench.machine import CpuTimes, cpu_times, python_reference_ms, shares
from bench.open_loop import OpenLoopResult, due_times, measure_client_capacity
from bench.process_cpu import POSTGRES, classify, database_of, per_event_ms, sample
from bench.report import build_report
from bench.scale import comparison
from bench.scale import markdown as scale_markdown
from bench.settings import BenchSettings
from shared_kernel.language.events import MoneyDeposited
from shared_kernel.settings import EVENTS_TABLE
from tests.support.infra import POSTGRES_SERVER_URL
from tests.support.processes import Stack

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_due_times_are_fixed_before_the_run_at_the_rate() -> None:
    assert due_times(4, 1) == [0.0, 0.25, 0.5, 0.75]
    assert len(due_times(100, 2.5)) == 250
    assert due_times(0, 10) == [] and due_times(10, 0) == []


def test_processes_are_told_apart_by_module_and_backends_by_database() -> None:
    python = "/srv/ledger/.venv/bin/python"
    assert classify([python, "-m", "command_service"], "ledger") == "command service"
    assert classify([python, "-m", "command_service.relay"], "ledger") == "outbox relay"
    assert classify([python, "-m", "command_service.transfer_saga"], "ledger") == "transfer saga"
    assert classify([python, "-m", "projector"], "ledger") == "projector"
    assert classify([python, "-m", "pytest"], "ledger") is None
    backend = "postgres: 15/main: ledger_writer ledger 127.0.0.1(40112) idle"
    assert classify([backend], "ledger") == POSTGRES
    assert classify(["postgres: ledger_writer ledger [local] idle"], "ledger") == POSTGRES
    assert classify([backend], "other") is None
    assert classify(["postgres: 15/main: checkpointer"], "ledger") is None
    assert classify([python, "-m", "projector"], "ledger", serves="ledger") == "projector"
    assert classify([python, "-m", "projector"], "ledger", serves="test_1") is None
    assert database_of(b"HOME=/root\0DATABASE_URL=postgresql://u@h:5/test_1?x=1\0") == "test_1"
    assert database_of(b"HOME=/root\0") is None


def test_cpu_per_event_is_the_difference_over_the_events() -> None:
    before = {"projector": 1.0, POSTGRES: 2.0}
    after = {"projector": 1.5, POSTGRES: 3.0, "relay": 0.25}
    assert per_event_ms(before, after, 1_000) == {"projector": 0.5, POSTGRES: 1.0, "relay": 0.25}
    assert per_event_ms(before, after, 0) == {}


def test_each_lines_cpu_per_event_stands_beside_its_cost_at_the_max_rate() -> None:
    """What batching saves: the open loop's CPU per event over the max rate's, line by line."""
    load = LoadResult(load_seconds=2.0, stack_cpu_seconds={"projector": 0.5, POSTGRES: 1.0})
    load.command_latencies = [0.001] * 5_000
    report = build_report(BenchSettings(), datetime.now(tz=UTC), None, "skipped", load)
    assert report["commands"]["cpu_ms_per_event"] == {"projector": 0.1, POSTGRES: 0.2}

    load.stack_cpu_seconds["transfer saga"] = 0.05
    report = build_report(BenchSettings(), datetime.now(tz=UTC), None, "skipped", load)
    loop = {"cpu_ms_per_event": {"projector": 0.25, "query service": 0.5, "transfer saga": 0.1},
            "cpu_percent_of_a_core": {"projector": 30.0, "query service": 10.0}}  # fmt: skip
    rows = dict((name, beside) for name, _, beside in _cpu_rows(report, loop))
    assert rows["CPU per event: projector"] == "30% of a core; 0.100 ms at the max rate (2.5x)"
    assert rows["CPU per event: query service"] == "10% of a core"  # not seen at the max rate
    # Work the max rate does not have (transfers): no ratio, which would measure the mix.
    assert rows["CPU per event: transfer saga"] == (
        "0% of a core; 0.010 ms at the max rate (the open loop sends transfers, the max rate none)"
    )


def _cpu_rows(report: dict[str, Any], loop: dict[str, Any]) -> list[tuple[str, str, str]]:
    empty = {"p50_ms": None, "p99_ms": None}
    section = {
        "rate_per_second": 10.0, "transfer_rate_per_second": 0.0, "hot_share": 0.0,
        "late_sends": 0, "goals_met": dict.fromkeys(GOALS_MS, None),
        "command": empty, "visibility": empty, "transfer_completion": empty, **loop,
    }  # fmt: skip
    rows = fixed_rate_rows({**report, "open_loop": section})
    return [row for row in rows if row[0].startswith("CPU per event")]


def test_the_goals_hold_up_to_the_highest_rate_that_met_them_all() -> None:
    def step(rate: float, *, met: bool) -> dict[str, Any]:
        summary = {"p50_ms": 1.0, "p99_ms": 2.0}
        return {"share": rate / 1000, "rate_per_second": rate, "goals_met": met, "errors": {},
                "command": summary, "visibility": summary,
                "machine": {"busy_percent": 50.0}}  # fmt: skip

    met_all = {"command_p99": True, "visibility_p50": True, "visibility_p99": True}
    steps = [step(100, met=True), step(250, met=False)]  # a noisy step above a good one
    assert goals_hold_up_to(steps, {}) == 100
    assert goals_hold_up_to(steps, {"rate_per_second": 500, "goals_met": met_all}) == 500
    missed = met_all | {"visibility_p50": False}
    assert goals_hold_up_to(steps, {"rate_per_second": 500, "goals_met": missed}) == 100
    assert goals_hold_up_to([step(100, met=False)], {}) is None

    rows = step_rows({"open_loop_steps": steps})
    assert rows[0] == (
        "open loop at 10% of its base: 100 deposits/s",
        "command p99 2.0 ms · visibility p50 1.0 ms, p99 2.0 ms",
        "goals met; machine 50% busy",
    )
    assert rows[1][2].startswith("goals MISSED")
    assert rows[-1][:2] == ("open loop: the goals hold up to", "100 deposits/s")
    assert step_rows({}) == []


def test_sampling_reads_this_machines_processes(tmp_path: Path) -> None:
    fake = tmp_path / "4242"
    fake.mkdir()
    (fake / "cmdline").write_bytes(b"/usr/bin/python\0-m\0projector\0")
    ticks = 100  # the usual clock ticks per second
    (fake / "stat").write_text(f"4242 (python) S 1 1 1 0 -1 0 0 0 0 0 {3 * ticks} {ticks} 0 0")
    other = tmp_path / "4343"  # the projector of another stack, on another database
    other.mkdir()
    (other / "cmdline").write_bytes(b"/usr/bin/python\0-m\0projector\0")
    (other / "stat").write_text(f"4343 (python) S 1 1 1 0 -1 0 0 0 0 0 {5 * ticks} 0 0 0")
    (other / "environ").write_bytes(b"DATABASE_URL=postgresql://127.0.0.1/other\0")
    (tmp_path / "self").mkdir()
    assert sample("ledger", proc=tmp_path) == {"projector": pytest.approx(4.0, rel=0.01)}


def test_the_machine_is_read_as_busy_idle_and_stolen_shares(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    #            user nice system idle iowait irq softirq steal guest guest_nice
    stat.write_text("cpu  100 0 50 800 20 5 5 20 0 0\ncpu0 50 0 25 400 10 2 3 10 0 0\n")
    before = cpu_times(stat)
    stat.write_text("cpu  400 0 150 1300 20 5 5 120 0 0\n")
    after = cpu_times(stat)

    assert before == CpuTimes(busy=160, idle=820, stolen=20)
    got = shares(before, after)
    # busy 560 - 160, idle 1320 - 820, stolen 120 - 20: of 1000 ticks in all
    assert (got["busy_percent"], got["idle_percent"], got["stolen_percent"]) == (40, 50, 10)
    assert cpu_times(tmp_path / "absent") is None and shares(None, after) == {}
    assert python_reference_ms(repeats=1) > 0


def test_the_plot_is_a_png(tmp_path: Path) -> None:
    result = OpenLoopResult(rate=100, seconds=2)
    result.commands = [(i / 100, 0.002 + i / 10_000) for i in range(200)]
    result.visibility = [(i / 20, 0.01) for i in range(40)]
    path = plot_latency(result, tmp_path / "plot.png")
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    empty = plot_latency(OpenLoopResult(rate=1, seconds=1), tmp_path / "empty.png")
    assert empty.read_bytes()[:8] == PNG_SIGNATURE


def test_the_library_rate_is_measured_on_a_scratch_database() -> None:
    rate = measure_library_rate(POSTGRES_SERVER_URL, threads=2, seconds=0.5, aggregates=20)
    assert rate.threads == 2 and rate.saves > 0 and rate.per_second > 0


@pytest.mark.processes
def test_a_short_open_loop_reports_every_figure(stack: Stack, tmp_path: Path) -> None:
    stack.start("command", "relay", "saga", "projector", "query")
    command, query = stack.process("command").url, stack.process("query").url
    targets = asyncio.run(
        prepare_targets(command, query, stack.database_url, accounts=5, hot_events=500,
                        hot_share=0.3, transfer_pairs=2)
    )  # fmt: skip

    section = open_loop_section(
        targets, stack.database_url, rate=40, transfer_rate=4, seconds=1.5,
        report_dir=tmp_path, stem="short",
    )  # fmt: skip

    assert section["errors"] == {}
    assert section["command"]["count"] == 60
    assert section["visibility"]["count"] == 12  # every fifth deposit
    assert section["transfer_completion"]["count"] == 6
    assert section["events"] == 60 + 6 * 4
    assert {"command service", "projector", POSTGRES} <= set(section["cpu_ms_per_event"])

    # The base of the open loop's rate: its own client in a closed loop, every
    # deposit it counts accepted by the command service.
    deposits_before = _deposits(stack.database_url)
    capacity = measure_client_capacity(targets, seconds=1.0, connections=4, workers=2)
    assert capacity > 0
    assert _deposits(stack.database_url) - deposits_before == capacity  # per 1 s

    assert Path(section["plot"]).read_bytes()[:8] == PNG_SIGNATURE
    background = section["postgresql_background"]
    assert set(background) == {"checkpoints", "checkpoint_buffers_written", "wal_mib",
                               "autovacuum_and_analyze_runs"}  # fmt: skip
    assert all(count >= 0 for count in background.values())
    machine = section["machine"]
    assert sum(machine[k] for k in ("busy_percent", "idle_percent", "stolen_percent")) == (
        pytest.approx(100.0)
    )
    assert machine["python_reference_ms"] > 0
    steps = steps_section(targets, 40.0, [0.5, 0.25], seconds=1.0, workers=1)
    assert [(step["share"], step["rate_per_second"]) for step in steps] == [(0.25, 10), (0.5, 20)]
    assert [step["command"]["count"] for step in steps] == [10, 20]
    assert [step["visibility"]["count"] for step in steps] == [2, 4]
    assert all(step["errors"] == {} and step["machine"]["busy_percent"] > 0 for step in steps)

    # One deposit at a time: every one the store holds was answered and read back.
    deposits_before = _deposits(stack.database_url)
    lone = asyncio.run(lone_deposits_section(targets, stack.database_url, seconds=1.0))
    assert lone["errors"] == {}
    assert lone["deposits"] == _deposits(stack.database_url) - deposits_before > 0
    assert lone["visibility"]["count"] == lone["command"]["count"] == lone["deposits"]
    assert {"command service", "projector", POSTGRES} <= set(lone["cpu_ms_per_deposit"])
    assert lone["stack_cpu_ms_per_deposit"] == pytest.approx(
        sum(lone["cpu_ms_per_deposit"].values())
    )
    assert lone["unbatched_limit_per_second"] == pytest.approx(
        1000.0 * lone["cores"] / lone["stack_cpu_ms_per_deposit"]
    )

    rows = fixed_rate_rows({"commands": {"per_second": 100.0}, "open_loop": section})
    assert any(name.startswith("open loop: visibility") for name, _, _ in rows)
    assert any(name == "open loop: the machine meanwhile" and "stolen" in value
               for name, value, _ in rows)  # fmt: skip


def test_a_lone_deposits_cpu_is_listed_costliest_first_with_the_rate_it_caps() -> None:
    lone = {
        "deposits": 900, "errors": {"deposit 503": 2},
        "command": {"p50_ms": 2.1, "p99_ms": 4.6}, "visibility": {"p50_ms": 3.1, "p99_ms": 5.9},
        "cpu_ms_per_deposit": {"outbox relay": 0.5, "projector": 1.5, POSTGRES: 2.0},
        "stack_cpu_ms_per_deposit": 4.0, "cores": 2.0, "unbatched_limit_per_second": 500.0,
    }  # fmt: skip

    floor, cpu = lone_deposit_rows({"lone_deposits": lone})

    assert floor[0] == "one deposit at a time (900, each read back before the next)"
    assert floor[1] == "command p50 2.1 ms, p99 4.6 ms · visibility p50 3.1 ms, p99 5.9 ms"
    assert floor[2].endswith("; 2 failed")
    assert cpu[1] == f"4.00 ms ({POSTGRES} 2.00, projector 1.50, outbox relay 0.50)"
    assert cpu[2].startswith("2 cores carry 500 deposits/s like this")
    assert lone_deposit_rows({}) == []


def _deposits(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            f"SELECT count(*) FROM {EVENTS_TABLE} WHERE topic = %s", (MoneyDeposited.TOPIC,)
        ).fetchone()
    return int(row[0]) if row else 0


def test_the_scale_report_sets_each_figure_beside_its_cost_ratio() -> None:
    small = {"events": 100_000, "deposits_per_second": 1_000.0,
             "command_ms": {"p99_ms": 10.0}, "catch_up_events_per_second": 20_000.0}
    large = {"events": 1_000_000, "deposits_per_second": 800.0,
             "command_ms": {"p99_ms": 20.0}, "catch_up_events_per_second": 20_000.0}  # fmt: skip
    rows = {row["figure"]: row for row in comparison([small, large])}

    assert rows["deposits/s (closed loop)"]["cost_ratio"] == 1.25  # a rate: lower is worse
    assert rows["deposits/s (closed loop)"]["within_1_5x"] is True
    assert rows["command p99 ms (closed loop)"]["cost_ratio"] == 2.0
    assert rows["command p99 ms (closed loop)"]["within_1_5x"] is False
    assert rows["projector catch-up events/s"]["cost_ratio"] == 1.0
    assert rows["open loop visibility p50 ms"]["values"] == [None, None]
    report = {"started_at": "t", "settings": {"hot_accounts": 4, "hot_share": 0.1},
              "sizes": [small, large], "comparison": list(rows.values())}  # fmt: skip
    assert "| command p99 ms (closed loop) | 10.0 | 20.0 | 2.00 |" in scale_markdown(report)


def test_a_hot_account_is_picked_with_its_share() -> None:
    ids = [f"a{i}" for i in range(70)]
    picks = weighted_ids(ids, "a0", 0.3)
    assert picks.count("a0") / len(picks) == pytest.approx(0.3, abs=0.01)
    assert set(picks) == set(ids)
    assert weighted_ids(ids, None, 0.3) == ids and weighted_ids(ids, "a0", 0) == ids
    assert weighted_ids(ids, "a0", 1) == ["a0"]
