"""The benchmark's transfers section: its report, its skip note, and one short real run."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from bench.report import markdown
from bench.settings import BenchSettings
from bench.transfers import (
    TransferResult,
    run_transfers,
    transfer_rows,
    transfer_section,
    transfers_failed,
)
from tests.support.processes import Stack


def finished_run() -> TransferResult:
    return TransferResult(
        accounts=4,
        load_seconds=2.0,
        drain_seconds=0.5,
        request_latencies=[0.01] * 100,
        completion_latencies=[0.2, 0.3, 0.4],
        outcomes=Counter(completed=100),
        deposited=4_000,
        balances_sum=4_000,
    )


def test_a_finished_run_reports_rates_latencies_and_conservation() -> None:
    section = transfer_section(finished_run(), ceiling_tps=1_000.0)

    assert section["per_second"] == pytest.approx(50.0)
    assert section["ratio_to_ceiling"] == pytest.approx(0.05)
    assert section["finished_per_second"] == pytest.approx(40.0)
    assert section["completion_latency"]["p50_ms"] == pytest.approx(300.0)
    assert section["money_conserved"] is True
    assert not transfers_failed(section)
    measures = [measure for measure, _, _ in transfer_rows(section)]
    assert "transfer completion (sent -> terminal visible)" in measures


def test_transfers_left_unfinished_or_money_lost_fail_the_bench() -> None:
    unfinished = finished_run()
    unfinished.not_terminal = 3
    lost = finished_run()
    lost.balances_sum = 3_999

    assert transfers_failed(transfer_section(unfinished, None))
    assert transfers_failed(transfer_section(lost, None))
    assert transfer_rows(transfer_section(lost, None))[-1][2] == "MISMATCH"


def test_a_skipped_section_is_one_row_with_its_reason() -> None:
    skipped = transfer_section(TransferResult(skipped="POST /transfers answers 404"), None)

    assert transfer_rows(skipped) == [("transfers", "skipped", "POST /transfers answers 404")]
    assert not transfers_failed(skipped)
    assert "skipped" in transfer_section(None, None)


def test_the_markdown_report_carries_the_transfer_rows() -> None:
    report = {
        "started_at": "2026-01-01T00:00:00+00:00",
        "settings": {"clients": 2, "accounts": 4, "seconds": 1.0},
        "machine": {"cpus": 2, "platform": "test", "postgres": "16"},
        "ceiling": {"error": "skipped"},
        "commands": {"per_second": 1.0, "ratio_to_ceiling": None, "errors": {},
                     "latency": {"count": 0, "mean_ms": None, "p50_ms": None, "p99_ms": None,
                                 "max_ms": None}},
        "visibility_lag": {"latency": {"count": 0, "mean_ms": None, "p50_ms": None,
                                       "p99_ms": None, "max_ms": None},
                           "not_visible_within_timeout": 0},
        "queries": {"errors": {}, "latency": {"count": 0, "mean_ms": None, "p50_ms": None,
                                              "p99_ms": None, "max_ms": None}},
        "balances": {"checked": 0, "mismatch_count": 0},
        "transfers": transfer_section(finished_run(), None),
        "notes": [],
    }  # fmt: skip

    text = markdown(report)

    assert "| transfers (HTTP POST /transfers, 202) | 50 /s |" in text
    assert "| money conserved across transfers | 4000/4000 | ok |" in text


def bench_settings(stack: Stack, **overrides: object) -> BenchSettings:
    values: dict[str, object] = {
        "command_service_url": stack.process("command").url,
        "query_service_url": stack.process("query").url,
        "database_url": stack.database_url,
        "bench_clients": 2,
        "bench_transfer_accounts": 3,
        "bench_transfer_seconds": 1.0,
        "bench_transfer_drain_seconds": 60.0,
        "bench_lag_samples_per_second": 5.0,
        **overrides,
    }
    return BenchSettings(**values)  # type: ignore[arg-type]


@pytest.mark.processes
def test_without_post_transfers_the_section_is_skipped_with_a_note(stack: Stack) -> None:
    stack.start("query")
    # A real process that serves GET /transfers/{id} but no POST /transfers.
    settings = bench_settings(stack, command_service_url=stack.process("query").url)

    result = asyncio.run(run_transfers(settings, "skip"))

    assert result.skipped is not None
    assert "404" in result.skipped and "not deployed" in result.skipped
    assert result.accounts == 0


@pytest.mark.processes
def test_a_short_run_moves_money_and_every_transfer_ends(stack: Stack) -> None:
    stack.start("command", "relay", "saga", "projector", "query")

    result = asyncio.run(run_transfers(bench_settings(stack), "short"))
    section = transfer_section(result, None)

    assert result.skipped is None
    assert section["accepted"] > 0 and not section["errors"]
    assert section["outcomes"] == {"completed": section["accepted"]}
    assert section["not_terminal_after_drain"] == 0
    assert section["money_conserved"], (result.balances_sum, result.deposited)
    assert section["completion_latency"]["count"] > 0
