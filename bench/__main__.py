"""``python -m bench`` (``make bench``): run the benchmark against the running stack.

Checks first that the command and query services answer (else one line on how
to start them, exit 2), then measures the ceiling with pgbench, then loads the
stack over HTTP, prints the table and writes ``bench-reports/<time>.{json,md}``.
Exits 1 when the read side disagrees with the accepted commands.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from rich.console import Console

from bench.ceiling import Ceiling, CeilingUnavailable, higher_of, measure_ceiling
from bench.fixed_rate import (
    library_section,
    open_loop_base,
    open_loop_section,
    prepare_targets,
)
from bench.latency_steps import steps_section
from bench.load import BenchAborted, StackNotRunning, preflight, run_load
from bench.lone_deposits import lone_deposits_section
from bench.partition_scaling import scaling_rows, scaling_section
from bench.rebuild import rebuild_failed, rebuild_rows, rebuild_section
from bench.report import build_report, print_table, write_report
from bench.settings import BenchSettings
from bench.transfers import TransferResult, run_transfers, transfers_failed


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark the running ledger (start it with `make run`) against pgbench.",
        epilog="Every option also reads BENCH_<NAME> from the environment, e.g. BENCH_SECONDS=20;"
        " COMMAND_SERVICE_URL, QUERY_SERVICE_URL and DATABASE_URL say where the stack is.",
    )
    parser.add_argument("--seconds", type=float, help="length of the load phase")
    parser.add_argument("--clients", type=int, help="concurrent clients (pgbench and HTTP)")
    parser.add_argument("--accounts", type=int, help="accounts the deposits spread over")
    parser.add_argument("--ceiling-seconds", type=float, help="length of the pgbench run")
    parser.add_argument("--no-ceiling", action="store_true", help="skip pgbench")
    parser.add_argument("--transfer-seconds", type=float, help="length of the transfers phase")
    parser.add_argument("--no-transfers", action="store_true", help="skip the transfers phase")
    parser.add_argument(
        "--rebuild-events", type=int, help="events in the store the rebuild phase fills (0 skips)"
    )
    parser.add_argument(
        "--rebuild-only", action="store_true", help="only the rebuild phase (needs no stack)"
    )
    parser.add_argument(
        "--scaling-only",
        action="store_true",
        help="only the projector replicas over partitions phase (needs no stack)",
    )
    return parser.parse_args(argv)


def load_settings(args: argparse.Namespace) -> BenchSettings:
    overrides = {
        "bench_seconds": args.seconds,
        "bench_clients": args.clients,
        "bench_accounts": args.accounts,
        "bench_ceiling_seconds": args.ceiling_seconds,
        "bench_transfer_seconds": args.transfer_seconds,
    }
    try:
        return BenchSettings(
            **{key: value for key, value in overrides.items() if value is not None}
        )
    except ValidationError as error:
        for problem in error.errors():
            variable, *within = problem["loc"]
            item = f", item {int(within[0]) + 1}" if within else ""  # of a list setting
            print(
                f"bench: {str(variable).upper()}{item}: {problem['msg']}"
                f" (got {problem.get('input')!r})",
                file=sys.stderr,
            )
        raise SystemExit(2) from None


def _rebuild_phase(database_url: str, events: int | None, console: Console) -> dict[str, Any]:
    """Rebuild speed on a scratch store of its own (``bench/rebuild.py``)."""
    console.print("rebuild: filling a scratch event store, then rebuilding from it ...")
    return rebuild_section(database_url, events)


def _scaling_phase(database_url: str, console: Console) -> dict[str, Any]:
    """Projector replicas over partitions on a scratch store (``bench/partition_scaling.py``)."""
    console.print("scaling: a backlog drained by 1 and 2 projectors over partitions ...")
    return scaling_section(database_url)


def _rebuild_only(settings: BenchSettings, events: int | None, console: Console) -> int:
    section = _rebuild_phase(settings.database_url, events, console)
    for measure, value, beside in rebuild_rows(section):
        console.print(f"{measure}: {value} ({beside})")
    return 1 if rebuild_failed(section) else 0


def _fixed_rate_phases(
    settings: BenchSettings, max_rate: float, started_at: datetime, console: Console
) -> dict[str, Any]:
    """The library's own rate, then the open loop below the measured maximum."""
    sections: dict[str, Any] = {}
    if settings.bench_library_seconds > 0:
        console.print(
            f"library: eventsourcing, {settings.bench_library_threads} threads get+save,"
            f" {settings.bench_library_seconds:g} s ..."
        )
        sections["library"] = library_section(
            settings.database_url,
            threads=settings.bench_library_threads,
            seconds=settings.bench_library_seconds,
        )
    if settings.bench_open_loop_seconds > 0:
        console.print(
            f"open loop: a hot account of {settings.bench_hot_events} events, then its"
            f" client's own closed-loop rate for {settings.bench_capacity_seconds:g} s ..."
        )
        targets = asyncio.run(
            prepare_targets(
                settings.command_service_url, settings.query_service_url, settings.database_url,
                accounts=settings.bench_open_loop_accounts, hot_events=settings.bench_hot_events,
                hot_share=settings.bench_hot_share,
                transfer_pairs=10 if settings.bench_open_loop_transfers_per_second else 0,
            )
        )  # fmt: skip
        base = open_loop_base(
            targets, max_rate, share=settings.bench_open_loop_share,
            capacity_seconds=settings.bench_capacity_seconds, connections=settings.bench_clients,
            workers=settings.bench_open_loop_processes,
        )  # fmt: skip
        rate = base["rate_per_second"]
        if settings.bench_lone_seconds > 0:
            console.print(
                f"one deposit at a time, each read back, {settings.bench_lone_seconds:g} s ..."
            )
            sections["lone_deposits"] = asyncio.run(
                lone_deposits_section(
                    targets, settings.database_url, seconds=settings.bench_lone_seconds
                )
            )
        if settings.bench_open_loop_steps:
            console.print(
                f"open loop: {settings.bench_open_loop_step_seconds:g} s at each of"
                f" {', '.join(f'{share:.0%}' for share in sorted(settings.bench_open_loop_steps))}"
                " of its base first ..."
            )
            below = min(max_rate, base["client_capacity_per_second"])
            sections["open_loop_steps"] = steps_section(
                targets, below, settings.bench_open_loop_steps,
                seconds=settings.bench_open_loop_step_seconds,
                workers=settings.bench_open_loop_processes,
            )  # fmt: skip
        console.print(
            f"open loop: {base['client_capacity_per_second']:,.0f} deposits/s closed loop with"
            f" its own client (max {max_rate:,.0f}/s); {rate:,.0f} deposits/s for"
            f" {settings.bench_open_loop_seconds:g} s ..."
        )
        sections["open_loop"] = open_loop_section(
            targets, settings.database_url, rate=rate,
            transfer_rate=settings.bench_open_loop_transfers_per_second,
            seconds=settings.bench_open_loop_seconds, report_dir=settings.bench_report_dir,
            stem=started_at.strftime("%Y%m%dT%H%M%S"),
            workers=settings.bench_open_loop_processes,
        )  # fmt: skip
        sections["open_loop"]["base"] = base
    return sections


def _ceiling_phase(
    settings: BenchSettings, console: Console, *, again: bool = False
) -> tuple[Ceiling | None, str | None]:
    """pgbench's one-row INSERT rate on the ledger's server, or why it was not measured."""
    when = "again, after the deposits" if again else f"{settings.bench_clients} clients"
    console.print(f"ceiling: pgbench, {when}, {settings.bench_ceiling_seconds:g} s ...")
    try:
        ceiling = measure_ceiling(
            settings.database_url, settings.bench_clients, settings.bench_ceiling_seconds
        )
    except CeilingUnavailable as error:
        console.print(f"ceiling not measured: {error}")
        return None, str(error)
    return ceiling, None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = load_settings(args)
    console = Console(stderr=False)
    if args.rebuild_only:
        return _rebuild_only(settings, args.rebuild_events, console)
    if args.scaling_only:
        for row in scaling_rows(_scaling_phase(settings.database_url, console)):
            console.print(" | ".join(row))
        return 0
    started_at = datetime.now(tz=UTC)
    try:
        asyncio.run(preflight(settings))
    except StackNotRunning as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2

    ceiling: Ceiling | None = None
    ceiling_error: str | None = "skipped (--no-ceiling)" if args.no_ceiling else None
    if not args.no_ceiling:
        ceiling, ceiling_error = _ceiling_phase(settings, console)

    console.print(
        f"stack: {settings.bench_accounts} accounts, then {settings.bench_clients} clients"
        f" depositing for {settings.bench_seconds:g} s ..."
    )
    try:
        load = asyncio.run(run_load(settings, checked=True))
    except (StackNotRunning, BenchAborted) as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2
    if ceiling is not None:
        again, _ = _ceiling_phase(settings, console, again=True)
        ceiling = higher_of(ceiling, again) if again is not None else ceiling

    transfers: TransferResult | None = None
    if not args.no_transfers and settings.bench_transfer_seconds > 0:
        console.print(
            f"transfers: {settings.bench_transfer_accounts} accounts, then"
            f" {settings.bench_clients} clients transferring for"
            f" {settings.bench_transfer_seconds:g} s ..."
        )
        run_id = started_at.strftime("%Y%m%dT%H%M%S")
        try:
            transfers = asyncio.run(run_transfers(settings, run_id))
        except RuntimeError as error:  # the stack refused the set-up
            print(f"bench: transfers: {error}", file=sys.stderr)
            return 2

    rebuild = _rebuild_phase(settings.database_url, args.rebuild_events, console)
    report = build_report(
        settings, started_at, ceiling, ceiling_error, load, transfers=transfers, rebuild=rebuild
    )
    max_rate = report["commands"]["per_second"]
    report.update(_fixed_rate_phases(settings, max_rate, started_at, console))
    report["partition_scaling"] = _scaling_phase(settings.database_url, console)
    print_table(report, console)
    json_path, md_path = write_report(report, settings.bench_report_dir)
    console.print(f"report: {json_path} and {md_path}")
    if report["balances"]["mismatch_count"] or not report["commands"]["accepted"]:
        print("bench: the read side disagrees with the accepted commands", file=sys.stderr)
        return 1
    if rebuild_failed(rebuild):
        print("bench: the rebuild was refused or failed", file=sys.stderr)
        return 1
    if transfers_failed(report["transfers"]):
        print("bench: transfers did not all end, or money was not conserved", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
