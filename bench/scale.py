"""``python -m bench.scale`` (``make bench-scale``): the same figures at each size of store.

Costs must stay flat as the store grows. This fills a scratch database of its
own through the event store's own append (thousands of events per append,
the events made by the domain's functions), with a few hot accounts holding
``BENCH_SCALE_HOT_SHARE`` of the events between them, and at each size of
``BENCH_SCALE_SIZES`` starts a stack of its own on it and measures:

- projector catch-up: the events added since the last size (the whole store
  at the first), from the stack's start until every checkpoint reaches the head;
  then the server is settled (VACUUM ANALYZE, CHECKPOINT) so the fill's own
  aftermath does not land in the next figures;
- the closed-loop deposit rate and latency, and the visibility lag, as
  ``make bench`` measures them;
- the open loop at ``BENCH_OPEN_LOOP_SHARE`` of that rate or of its own client's
  closed-loop rate, whichever is lower, a hot account taking ``BENCH_HOT_SHARE``
  of the deposits (:mod:`bench.fixed_rate`);
- a rebuild of every projection from the whole store (events/s of its replay).

The report puts the sizes side by side with the ratio of the largest to the
smallest (goal: every cost within 1.5x) in ``bench-reports/<time>-scale.{json,md}``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import redis
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from bench.fixed_rate import open_loop_base, open_loop_section, prepare_targets
from bench.history import fill_store, new_metadata
from bench.hot_account import grow_history
from bench.load import run_load
from bench.open_loop import Targets
from bench.rebuild import measure_rebuild_of
from bench.server_activity import settle_server
from bench.settings import BenchSettings
from bench.stack import stack
from bench.stats import summarize
from command_service.domain.account import open_account
from command_service.event_store import LedgerEventStore, event_store_env
from projector.projections import PROJECTIONS
from schema.scratch import scratch_database
from shared_kernel.settings import EVENTS_TABLE, CommonSettings, default_role_urls


class ScaleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    bench_scale_sizes: str = Field(
        default="100000,1000000", description="Store sizes (events) to measure, ascending."
    )
    bench_scale_hot_accounts: int = Field(default=4, ge=1)
    bench_scale_hot_share: float = Field(
        default=0.1, ge=0, lt=1, description="Share of the store's events in the hot accounts."
    )
    bench_scale_seconds: float = Field(default=10.0, gt=0)
    bench_scale_open_loop_seconds: float = Field(default=10.0, ge=0)
    bench_hot_share: float = Field(default=0.3, ge=0, le=1)
    bench_open_loop_processes: int = Field(default=2, ge=1, le=16)
    bench_report_dir: Path = Path("bench-reports")

    def sizes(self) -> list[int]:
        return sorted(int(part) for part in self.bench_scale_sizes.split(",") if part.strip())


def open_hot_accounts(database_url: str, count: int) -> list[UUID]:
    store = LedgerEventStore(env=event_store_env(database_url, pool_size=1))
    try:
        events = [open_account(uuid.uuid4(), "hot", "EUR", new_metadata()) for _ in range(count)]
        store.record(events)
    finally:
        store.close()
    return [event.originator_id for event in events]


def grow(database_url: str, added: int, hot: list[UUID], share: float, seed: int) -> float:
    """Add ``added`` events (``share`` of them to the hot accounts); seconds it took."""
    started = time.perf_counter()
    per_hot = int(added * share) // len(hot)
    fill_store(database_url, added - per_hot * len(hot), accounts=2_000, seed=seed)
    for account_id in hot:
        grow_history(database_url, str(account_id), per_hot)
    return time.perf_counter() - started


def _head_and_floor(database_url: str) -> tuple[int, int]:
    with psycopg.connect(database_url) as conn:
        head = conn.execute(f"SELECT coalesce(max(notification_id), 0) FROM {EVENTS_TABLE}")
        floor = conn.execute("SELECT coalesce(min(position), 0) FROM projection_checkpoints")
        return int(head.fetchone()[0]), int(floor.fetchone()[0])  # type: ignore[index]


def wait_caught_up(database_url: str, timeout: float = 3_600) -> float:
    """Seconds until every projection's checkpoint reaches the store's head."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        head, floor = _head_and_floor(database_url)
        if floor >= head:
            return time.perf_counter() - started
        time.sleep(0.2)
    msg = f"the projector did not catch up within {timeout:g} s"
    raise RuntimeError(msg)


def measure_size(
    database_url: str, settings: ScaleSettings, env: dict[str, str], *, backlog: int,
    hot: list[UUID], stem: str,
) -> dict[str, Any]:  # fmt: skip
    """Every figure at the store's present size."""
    figures: dict[str, Any] = {"events": _head_and_floor(database_url)[0], "backlog": backlog}
    with stack(env, log_dir=settings.bench_report_dir) as urls:
        seconds = wait_caught_up(database_url)
        figures["catch_up_events_per_second"] = backlog / seconds if seconds else None
        figures["settled_seconds"] = settle_server(database_url)
        bench = BenchSettings(
            command_service_url=urls["command"], query_service_url=urls["query"],
            database_url=database_url, bench_seconds=settings.bench_scale_seconds,
            bench_accounts=200, bench_query_seconds=2.0, bench_transfer_seconds=0,
        )  # fmt: skip
        load = asyncio.run(run_load(bench))
        if load.wrk is not None:
            rate, p50, p99 = load.wrk.per_second, load.wrk.p50_seconds, load.wrk.p99_seconds
            figures["command_ms"] = {"p50_ms": 1e3 * p50, "p99_ms": 1e3 * p99}
        else:
            rate = len(load.command_latencies) / load.load_seconds
            figures["command_ms"] = asdict(summarize(load.command_latencies))
        figures["deposits_per_second"] = rate
        figures["visibility_ms"] = asdict(summarize(load.lag_samples))
        if settings.bench_scale_open_loop_seconds > 0:
            targets = asyncio.run(prepare_targets(
                urls["command"], urls["query"], database_url, accounts=100, hot_events=0,
                hot_share=0, transfer_pairs=5,
            ))  # fmt: skip
            targets = Targets(targets.command_url, targets.query_url, targets.accounts,
                              str(hot[0]), settings.bench_hot_share, targets.transfer_pairs,
                              database_url)
            base = open_loop_base(
                targets, rate, share=bench.bench_open_loop_share,
                capacity_seconds=bench.bench_capacity_seconds, connections=bench.bench_clients,
                workers=settings.bench_open_loop_processes,
            )  # fmt: skip
            figures["open_loop"] = open_loop_section(
                targets, database_url, rate=base["rate_per_second"], transfer_rate=5,
                seconds=settings.bench_scale_open_loop_seconds,
                report_dir=settings.bench_report_dir, stem=f"{stem}-{figures['events']}",
                workers=settings.bench_open_loop_processes,
            )  # fmt: skip
            figures["open_loop"]["base"] = base
    # As `make rebuild` runs it: the projector's role owns what it swaps in.
    as_projector = default_role_urls(database_url)["projector"]
    figures["rebuild_events_per_second"] = {
        projection.NAME: measure_rebuild_of(as_projector, projection.NAME)
        for projection in PROJECTIONS
    }
    return figures


def _rebuild_rate(name: str) -> Any:
    return lambda figures: figures["rebuild_events_per_second"][name]


#: (label, how to read it from a size's figures, lower is better)
FIGURES: list[tuple[str, Any, bool]] = [
    ("deposits/s (closed loop)", lambda f: f["deposits_per_second"], False),
    ("command p99 ms (closed loop)", lambda f: f["command_ms"]["p99_ms"], True),
    ("visibility p50 ms (closed loop)", lambda f: f["visibility_ms"]["p50_ms"], True),
    ("open loop command p99 ms", lambda f: f["open_loop"]["command"]["p99_ms"], True),
    ("open loop visibility p50 ms", lambda f: f["open_loop"]["visibility"]["p50_ms"], True),
    ("open loop visibility p99 ms", lambda f: f["open_loop"]["visibility"]["p99_ms"], True),
    ("open loop transfer p50 ms", lambda f: f["open_loop"]["transfer_completion"]["p50_ms"], True),
    ("projector catch-up events/s", lambda f: f["catch_up_events_per_second"], False),
    *((f"rebuild {p.NAME} events/s", _rebuild_rate(p.NAME), False) for p in PROJECTIONS),
]


def _read(figures: dict[str, Any], how: Any) -> float | None:
    try:
        value = how(figures)
    except (KeyError, TypeError):
        return None
    return float(value) if value is not None else None


def comparison(sizes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each figure at each size, and the cost ratio largest/smallest (goal at most 1.5)."""
    rows = []
    for label, how, lower_is_better in FIGURES:
        values = [_read(figures, how) for figures in sizes]
        first, last = values[0], values[-1]
        ratio = None
        if first and last:
            ratio = last / first if lower_is_better else first / last  # as a cost: >1 is worse
        rows.append({"figure": label, "values": values, "cost_ratio": ratio,
                     "within_1_5x": None if ratio is None else ratio <= 1.5})  # fmt: skip
    return rows


def markdown(report: dict[str, Any]) -> str:
    sizes = [f"{figures['events']:,} events" for figures in report["sizes"]]
    lines = [
        f"# ledger bench-scale {report['started_at']}", "",
        f"{os.cpu_count()} CPUs; hot accounts: {report['settings']['hot_accounts']} holding"
        f" {report['settings']['hot_share']:.0%} of the store.", "",
        "| figure | " + " | ".join(sizes) + " | cost ratio (goal <= 1.5) |",
        "|---|" + "---:|" * len(sizes) + "---:|",
    ]  # fmt: skip
    for row in report["comparison"]:
        cells = ["-" if v is None else f"{v:,.1f}" for v in row["values"]]
        ratio = "-" if row["cost_ratio"] is None else f"{row['cost_ratio']:.2f}"
        lines.append(f"| {row['figure']} | " + " | ".join(cells) + f" | {ratio} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    settings = ScaleSettings()
    common = CommonSettings()
    started_at = datetime.now(tz=UTC)
    stem = started_at.strftime("%Y%m%dT%H%M%S")
    stream = f"bench:scale:{uuid.uuid4().hex[:8]}:events"
    results: list[dict[str, Any]] = []
    try:
        with scratch_database(common.database_url, "ledger_bench_scale") as url:
            env = {**os.environ, "DATABASE_URL": url, "STREAM_NAME": stream,
                   "LOG_LEVEL": "WARNING"}  # fmt: skip
            hot = open_hot_accounts(url, settings.bench_scale_hot_accounts)
            filled = len(hot)
            for size in settings.sizes():
                print(f"bench-scale: filling the store to {size:,} events ...", flush=True)
                fill_seconds = grow(url, size - filled, hot, settings.bench_scale_hot_share, size)
                print(f"bench-scale: measuring at {size:,} events ...", flush=True)
                added = size - filled
                figures = measure_size(url, settings, env, backlog=added, hot=hot, stem=stem)
                figures["fill_events_per_second"] = added / fill_seconds
                filled = figures["events"]
                results.append(figures)
    finally:
        client = redis.Redis.from_url(common.redis_url)
        for key in client.scan_iter(match=f"{stream}*"):
            client.delete(key)
        client.close()
    report = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "settings": {
            "sizes": settings.sizes(),
            "hot_accounts": settings.bench_scale_hot_accounts,
            "hot_share": settings.bench_scale_hot_share,
        },
        "sizes": results,
        "comparison": comparison(results),
    }
    settings.bench_report_dir.mkdir(parents=True, exist_ok=True)
    json_path = settings.bench_report_dir / f"{stem}-scale.json"
    md_path = settings.bench_report_dir / f"{stem}-scale.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(markdown(report), encoding="utf-8")
    print(markdown(report))
    print(f"report: {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
