"""The benchmark's report: a table on the terminal, JSON and Markdown on disk.

Every throughput sits beside its ratio to the ceiling measured in the same
run, because the absolute numbers move with whatever else the machine does.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.ceiling import Ceiling
from bench.fixed_rate import fixed_rate_rows
from bench.latency_steps import step_rows
from bench.load import LoadResult
from bench.lone_deposits import lone_deposit_rows
from bench.partition_scaling import scaling_rows
from bench.process_cpu import per_event_ms
from bench.rebuild import rebuild_rows
from bench.settings import BenchSettings
from bench.stats import Summary, format_ms, latency_text, rate_cells, summarize
from bench.transfers import TransferResult, transfer_rows, transfer_section


def build_report(
    settings: BenchSettings,
    started_at: datetime,
    ceiling: Ceiling | None,
    ceiling_error: str | None,
    load: LoadResult,
    *,
    transfers: TransferResult | None = None,
    rebuild: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything measured, as plain JSON-able data."""
    commands = len(load.command_latencies)
    per_second = commands / load.load_seconds if load.load_seconds else 0.0
    latency = asdict(summarize(load.command_latencies))
    if load.wrk is not None:
        commands, per_second = load.wrk.accepted, load.wrk.per_second
        wrk = load.wrk
        latency = asdict(
            Summary(wrk.requests, None, wrk.p50_seconds * 1e3, wrk.p99_seconds * 1e3, None)
        )
    cpu_percent = 100.0 * load.client_cpu_seconds / load.load_seconds if load.load_seconds else None
    notes = []
    if cpu_percent is not None and cpu_percent > 80:
        notes.append(
            f"the benchmark client itself used {cpu_percent:.0f}% of a core: on this machine"
            " the load generator may be what limits commands/s"
        )
    if load.hot_account is not None:
        notes.append(
            f"{settings.bench_hot_share:.0%} of the deposits went to one account holding"
            f" {settings.bench_hot_events:,} events of history"
        )
    if ceiling is None:
        notes.append(f"no ceiling: {ceiling_error}")
    if load.wrk is not None:
        notes.append(
            "deposits were sent by wrk (C); the Python client only sampled visibility lag"
        )
        low, high = load.wrk_expected_range
        grown = load.wrk_balance_total - load.wrk_initial_total
        if not low <= grown <= high:
            load.balance_mismatches.append(
                f"the {load.wrk_accounts} wrk accounts grew by {grown},"
                f" answered deposits add up to {low} (at most {high} with those in flight)"
            )
        else:
            load.balances_checked += load.wrk_accounts
    else:
        notes.append(
            "deposits were sent by Python httpx workers (install wrk for a lighter client)"
        )
    return {
        "started_at": started_at.isoformat(timespec="seconds"),
        "settings": {
            "seconds": settings.bench_seconds,
            "clients": settings.bench_clients,
            "accounts": settings.bench_accounts,
            "ceiling_seconds": settings.bench_ceiling_seconds,
            "query_seconds": settings.bench_query_seconds,
            "lag_samples_per_second": settings.bench_lag_samples_per_second,
            "lag_poll_ms": settings.bench_lag_poll_ms,
            "command_service_url": settings.command_service_url,
            "query_service_url": settings.query_service_url,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "postgres": ceiling.server_version if ceiling else None,
        },
        "ceiling": asdict(ceiling) if ceiling else {"error": ceiling_error},
        "commands": {
            "accepted": commands,
            "per_second": per_second,
            "ratio_to_ceiling": per_second / ceiling.tps if ceiling and ceiling.tps else None,
            "latency": latency,
            "driver": load.driver,
            "errors": dict(load.command_errors) | _wrk_errors(load),
            "setup_seconds": load.setup_seconds,
            "load_seconds": load.load_seconds,
            # Beside the open loop's: what batching saves at full load, per line of the stack.
            "cpu_ms_per_event": per_event_ms({}, load.stack_cpu_seconds, commands),
        },
        "visibility_lag": {
            "latency": asdict(summarize(load.lag_samples)),
            "not_visible_within_timeout": load.lag_timeouts,
            "polls": load.lag_polls,
        },
        "queries": {
            "min_position": load.final_position,
            "latency": asdict(summarize(load.query_latencies)),
            "errors": dict(load.query_errors),
        },
        "balances": {
            "checked": load.balances_checked,
            "mismatches": load.balance_mismatches[:20],
            "mismatch_count": len(load.balance_mismatches),
        },
        "transfers": transfer_section(transfers, ceiling.tps if ceiling else None),
        "rebuild": rebuild if rebuild is not None else {"skipped": "not measured"},
        "client_cpu_percent": cpu_percent,
        "notes": notes,
    }


def _wrk_errors(load: LoadResult) -> dict[str, int]:
    if load.wrk is None:
        return {}
    counts = {
        "non-2xx (wrk)": load.wrk.non_2xx,
        "socket errors (wrk)": load.wrk.socket_errors,
        "timeouts (wrk)": load.wrk.timeouts,
    }
    return {name: count for name, count in counts.items() if count}



def rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(measure, value, beside it) rows shared by the terminal and Markdown tables."""
    ceiling = report["ceiling"]
    commands = report["commands"]
    clients = report["settings"]["clients"]
    ratio = commands["ratio_to_ceiling"]
    lag = report["visibility_lag"]
    queries = report["queries"]
    balances = report["balances"]
    errors = sum(commands["errors"].values())
    return [
        (
            "ceiling: pgbench 1-row INSERT",
            f"{ceiling['tps']:,.0f} tx/s" if "tps" in ceiling else "not measured",
            _ceiling_note(ceiling, clients) if "tps" in ceiling else str(ceiling.get("error")),
        ),
        ("commands (HTTP deposits)", *rate_cells(commands["per_second"], ratio)),
        ("command latency", latency_text(commands["latency"]), f"{errors} refused or failed"),
        (
            "visibility lag (answered -> query shows it)",
            latency_text(lag["latency"]),
            f"{lag['not_visible_within_timeout']} not visible in time",
        ),
        (
            "query latency (?min_position)",
            latency_text(queries["latency"]),
            f"{sum(queries['errors'].values())} errors",
        ),
        (
            "balances equal accepted deposits",
            f"{balances['checked'] - balances['mismatch_count']}/{balances['checked']}",
            "ok" if balances["mismatch_count"] == 0 else "MISMATCH",
        ),
        *transfer_rows(report.get("transfers", {"skipped": "not in this report"})),
        *rebuild_rows(report.get("rebuild", {"skipped": "not in this report"})),
        *fixed_rate_rows(report),
        *lone_deposit_rows(report),
        *step_rows(report),
        *scaling_rows(report.get("partition_scaling", {"skipped": "not in this report"})),
    ]


def print_table(report: dict[str, Any], console: Console) -> None:
    table = Table(title=f"ledger bench {report['started_at']}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("beside it")
    for row in rows(report):
        table.add_row(*row)
    console.print(table)
    for note in report["notes"]:
        console.print(f"note: {note}")


def markdown(report: dict[str, Any]) -> str:
    settings = report["settings"]
    machine = report["machine"]
    lines = [
        f"# ledger bench {report['started_at']}",
        "",
        f"{settings['clients']} clients, {settings['accounts']} accounts,"
        f" {settings['seconds']:g} s of deposits; {machine['cpus']} CPUs, {machine['platform']},"
        f" PostgreSQL {machine['postgres'] or '?'}.",
        "",
        "| measure | value | beside it |",
        "|---|---:|---|",
        *(f"| {a} | {b} | {c} |" for a, b, c in rows(report)),
        "",
    ]
    if report["commands"]["errors"]:
        lines += ["Command errors: " + json.dumps(report["commands"]["errors"]), ""]
    if report.get("transfers", {}).get("errors"):
        lines += ["Transfer errors: " + json.dumps(report["transfers"]["errors"]), ""]
    lines += [f"Note: {note}" for note in report["notes"]]
    return "\n".join(lines).rstrip() + "\n"


def write_report(report: dict[str, Any], folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    stem = report["started_at"].replace(":", "").replace("-", "")
    json_path = folder / f"{stem}.json"
    md_path = folder / f"{stem}.md"
    json_path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    md_path.write_text(markdown(report), encoding="utf-8")
    return json_path, md_path


def _ceiling_note(ceiling: dict[str, Any], clients: int) -> str:
    note = f"{clients} clients, avg {format_ms(ceiling.get('latency_avg_ms'))}"
    samples = ceiling.get("samples_tps") or ()
    if len(samples) > 1:
        runs = " and ".join(f"{tps:,.0f}" for tps in samples)
        note += f"; the higher of two runs, before and after the deposits ({runs})"
    return note
