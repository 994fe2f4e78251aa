"""Rebuild speed: how fast a read model is rebuilt from an event store of a known size.

Runs on a scratch database of its own on the stack's PostgreSQL server
(created, filled with ``BENCH_REBUILD_EVENTS`` events by
:func:`bench.history.fill_store`, dropped): the real
:class:`~projector.rebuild.rebuilder.Rebuild` builds the projection beside the
(empty) live tables, verifies it against the store's fold and swaps it in.
Reported: events/s of the replay, the verification's and swap's seconds, and
the whole rebuild in seconds per million events.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from typing import Any

import psycopg
from psycopg import AsyncConnection
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from bench.history import fill_store
from bench.stats import rate
from projector.projections import projection_named
from projector.rebuild.rebuilder import Rebuild, RebuildOptions
from projector.rebuild.records import RebuildRecord
from schema.scratch import scratch_database
from shared_kernel.settings import EVENTS_TABLE


class RebuildBenchSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    bench_rebuild_events: int = Field(
        default=200_000, ge=0, description="Events in the rebuilt store (0 skips the phase)."
    )
    bench_rebuild_projection: str = Field(default="account_balances", min_length=1)
    bench_rebuild_batch_size: int = Field(default=10_000, ge=1)


@dataclass(frozen=True)
class RebuildResult:
    projection: str
    events: int
    fill_seconds: float
    replay_seconds: float
    verify_and_swap_seconds: float
    total_seconds: float
    batch_size: int
    state: str

    @property
    def events_per_second(self) -> float:
        return rate(self.events, self.replay_seconds)

    @property
    def seconds_per_million(self) -> float:
        return self.total_seconds * 1_000_000 / self.events if self.events else 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {
            "events_per_second": self.events_per_second,
            "seconds_per_million_events": self.seconds_per_million,
        }


async def _rebuild(url: str, name: str, batch_size: int) -> tuple[RebuildRecord, float, float]:
    """Run the rebuild; (its final row, replay seconds, seconds from then to the end)."""
    replayed_at: list[float] = []

    async def mark(_: AsyncConnection[Any], __: RebuildRecord) -> None:
        replayed_at.append(time.perf_counter())

    rebuild = Rebuild(
        url,
        projection_named(name),
        RebuildOptions(batch_size=batch_size),
        before_verify=mark,
    )
    started = time.perf_counter()
    await rebuild.claim()
    final = await rebuild.run()
    ended = time.perf_counter()
    middle = replayed_at[0] if replayed_at else ended
    return final, middle - started, ended - middle


def measure_rebuild(
    database_url: str, events: int, projection: str, batch_size: int = 10_000
) -> RebuildResult:
    """Fill a scratch store with ``events`` events and time a rebuild of ``projection``."""
    projection_named(projection)  # unknown name: fail before filling anything
    with scratch_database(database_url, "ledger_bench_rebuild") as url:
        started = time.perf_counter()
        written = fill_store(url, events)
        fill_seconds = time.perf_counter() - started
        final, replay, rest = asyncio.run(_rebuild(url, projection, batch_size))
    return RebuildResult(
        projection=projection,
        events=written,
        fill_seconds=fill_seconds,
        replay_seconds=replay,
        verify_and_swap_seconds=rest,
        total_seconds=replay + rest,
        batch_size=batch_size,
        state=final.state,
    )


def measure_rebuild_of(database_url: str, projection: str, batch_size: int = 10_000) -> float:
    """Events/s of the replay of a rebuild of ``projection`` from the store as it is."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {EVENTS_TABLE}").fetchone()
    events = int(row[0]) if row else 0
    _, replay, _ = asyncio.run(_rebuild(database_url, projection, batch_size))
    return events / replay if replay else 0.0


def rebuild_rows(section: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The report's rows for this phase (a note when it was skipped)."""
    if "skipped" in section:
        return [("rebuild", "skipped", str(section["skipped"]))]
    return [
        (
            f"rebuild {section['projection']} ({section['events']:,} events)",
            f"{section['events_per_second']:,.0f} events/s",
            f"{section['seconds_per_million_events']:.1f} s per million events in all"
            f" (replay {section['replay_seconds']:.1f} s, verify + swap"
            f" {section['verify_and_swap_seconds']:.1f} s; {section['state']})",
        )
    ]


def rebuild_section(database_url: str, events: int | None = None) -> dict[str, Any]:
    """The report's ``rebuild`` section: measured, or why not (``skipped``)."""
    settings = RebuildBenchSettings()
    count = settings.bench_rebuild_events if events is None else events
    if count <= 0:
        return {"skipped": "BENCH_REBUILD_EVENTS=0"}
    try:
        result = measure_rebuild(
            database_url,
            count,
            settings.bench_rebuild_projection,
            settings.bench_rebuild_batch_size,
        )
    except (psycopg.Error, LookupError) as error:
        return {"skipped": f"rebuild not measured: {type(error).__name__}: {error}"}
    return result.to_json()


def rebuild_failed(section: dict[str, Any]) -> bool:
    """A measured rebuild that did not end swapped in (refused or failed)."""
    return "skipped" not in section and section.get("state") != "swapped"
