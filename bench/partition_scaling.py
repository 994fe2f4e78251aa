"""Projector replicas over partitions: how fast a backlog drains with 1 and 2 of them.

On a scratch store of its own (``BENCH_SCALING_EVENTS`` events, filled by
:func:`bench.history.fill_store`), for each layout in :data:`LAYOUTS` the
read models and checkpoints are emptied and a new stream name is used; the
projectors start first (on an empty stream, their partitions shared out),
then the relay, which publishes the whole store as a backlog. Measured: the
relay's publishing rate, and the projectors' catch-up rate (from the relay's
start until every checkpoint reaches the head: the pipeline's rate, which the
projectors bound). One partition with one projector against two partitions
with one projector is the cost of partitioning on a single node; two
partitions with two projectors is the gain of a replica (on a 2-core machine,
where the replicas share the cores with PostgreSQL and the relay, expect little).
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import httpx
import psycopg
import redis
from psycopg import sql
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from bench.history import fill_store
from bench.stack import stack
from projector.projections import PROJECTIONS
from schema.scratch import scratch_database
from shared_kernel.settings import EVENTS_TABLE, CommonSettings

#: (partitions, projector processes) measured, in this order.
LAYOUTS = ((1, 1), (2, 1), (2, 2))


class ScalingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    bench_scaling_events: int = Field(
        default=100_000, ge=0, description="Events of the backlog (0 skips the phase)."
    )


def _one(conn: psycopg.Connection[Any], query: str, *args: object) -> int:
    row = conn.execute(query, args).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _empty_read_models(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [table for projection in PROJECTIONS for table in projection.TABLES]
        conn.execute(
            sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, tables)))
        )
        conn.execute("DELETE FROM projection_checkpoints")
        conn.execute("DELETE FROM projection_blocks")


def _wait(condition: Any, timeout: float, what: str) -> float:
    """Seconds until ``condition()`` holds (polled every 20 ms)."""
    started = time.perf_counter()
    while not condition():
        if time.perf_counter() - started > timeout:
            msg = f"{what} not within {timeout:g} s"
            raise RuntimeError(msg)
        time.sleep(0.02)
    return time.perf_counter() - started


def _held(url: str) -> int:
    body = httpx.get(f"{url}/health/ready", timeout=5).json()
    projector = body["checks"]["projector"]
    return len(projector["held"]) if isinstance(projector, dict) else 0


def measure_layout(url: str, partitions: int, replicas: int, head: int) -> dict[str, Any]:
    """Drain the whole store through the relay into ``replicas`` projectors."""
    _empty_read_models(url)
    stream = f"bench:scaling:{uuid.uuid4().hex[:8]}:events"
    env = {**os.environ, "DATABASE_URL": url, "STREAM_NAME": stream, "LOG_LEVEL": "WARNING",
           "STREAM_PARTITIONS": str(partitions), "PARTITION_BALANCE_SECONDS": "0.2"}  # fmt: skip
    for role in ("WRITER", "PROJECTOR", "QUERY"):
        env.pop(f"{role}_DATABASE_URL", None)  # each process: this database, as its role
    names = ["projector", "projector#2"][:replicas]
    try:
        with psycopg.connect(url, autocommit=True) as conn, stack(env, names) as urls:
            share = partitions // replicas
            _wait(lambda: all(_held(u) == share for u in urls.values()), 30, "partitions shared")
            started = time.perf_counter()
            with stack(env, ["relay"]):
                published = _wait(
                    lambda: _one(conn, "SELECT position FROM relay_positions"
                                 " WHERE stream_name = %s", stream) >= head,
                    600, "the relay publishing the backlog",
                )  # fmt: skip
                _wait(lambda: _one(conn, "SELECT min(position) FROM projection_checkpoints")
                      >= head, 1_800, "the projectors catching up")  # fmt: skip
            drained = time.perf_counter() - started
    finally:
        client = redis.Redis.from_url(CommonSettings().redis_url)
        for key in client.scan_iter(match=f"{stream}*"):
            client.delete(key)
        client.close()
    return {
        "partitions": partitions,
        "projectors": replicas,
        "relay_events_per_second": head / published if published else None,
        "catch_up_events_per_second": head / drained if drained else None,
        "catch_up_seconds": drained,
    }


def scaling_section(database_url: str, events: int | None = None) -> dict[str, Any]:
    """The report's ``partition_scaling`` section: measured, or why not (``skipped``)."""
    count = ScalingSettings().bench_scaling_events if events is None else events
    if count <= 0:
        return {"skipped": "BENCH_SCALING_EVENTS=0"}
    with scratch_database(database_url, "ledger_bench_scaling") as url:
        fill_store(url, count, accounts=2_000)
        with psycopg.connect(url) as conn:
            head = _one(conn, f"SELECT max(notification_id) FROM {EVENTS_TABLE}")
        layouts = [measure_layout(url, p, r, head) for p, r in LAYOUTS]
    base = layouts[0]["catch_up_events_per_second"]
    return {"events": head, "cpus": os.cpu_count(), "layouts": layouts,
            "gain_of_a_replica": layouts[2]["catch_up_events_per_second"]
            / layouts[1]["catch_up_events_per_second"],
            "cost_of_partitioning": base / layouts[1]["catch_up_events_per_second"]}  # fmt: skip


def scaling_rows(section: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The report's rows for this phase (a note when it was skipped)."""
    if "skipped" in section:
        return [("projector replicas over partitions", "skipped", str(section["skipped"]))]
    rows = [
        (
            f"catch-up of {section['events']:,} events: {layout['partitions']} partition(s),"
            f" {layout['projectors']} projector(s)",
            f"{layout['catch_up_events_per_second']:,.0f} events/s",
            f"relay published {layout['relay_events_per_second']:,.0f} events/s",
        )
        for layout in section["layouts"]
    ]
    rows.append((
        "a second projector replica (2 partitions)", f"{section['gain_of_a_replica']:.2f}x",
        f"partitioning on one projector costs {section['cost_of_partitioning']:.2f}x"
        f" ({section['cpus']} CPUs)",
    ))  # fmt: skip
    return rows
