"""What a benchmark run does, from the environment (``BENCH_*``) or the command line.

Bounded by construction: a run lasts about BENCH_CEILING_SECONDS + BENCH_SECONDS
+ BENCH_QUERY_SECONDS + BENCH_TRANSFER_SECONDS (+ at most
BENCH_TRANSFER_DRAIN_SECONDS) plus the set-up of BENCH_ACCOUNTS accounts, with at
most BENCH_CLIENTS requests in flight (plus a few lag probes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from command_service.settings import CommandServiceSettings
from query_service.settings import QueryServiceSettings
from shared_kernel.settings import CommonSettings


def _command_url() -> str:
    return f"http://127.0.0.1:{CommandServiceSettings().command_service_port}"


def _query_url() -> str:
    return f"http://127.0.0.1:{QueryServiceSettings().query_service_port}"


#: A share of a rate: more than nothing, at most all of it.
Share = Annotated[float, Field(gt=0, le=1)]


class BenchSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    bench_seconds: float = Field(default=20.0, gt=0, description="Length of the load phase.")
    bench_clients: int = Field(default=32, ge=1, le=512, description="Concurrent HTTP workers.")
    bench_accounts: int = Field(
        default=1_000, ge=1, description="Accounts the deposits spread over."
    )
    bench_initial_deposit: int = Field(default=1_000_000, ge=1)
    bench_ceiling_seconds: float = Field(
        default=5.0, gt=0, description="Length of the pgbench run."
    )
    bench_query_seconds: float = Field(
        default=5.0, ge=0, description="Length of the read phase (queries with min_position)."
    )
    bench_lag_samples_per_second: float = Field(
        default=20.0, gt=0, description="How often a command is followed until the query shows it."
    )
    bench_lag_poll_ms: float = Field(default=2.0, gt=0, description="Poll interval of a lag probe.")
    bench_lag_timeout_seconds: float = Field(default=10.0, gt=0)
    bench_transfer_seconds: float = Field(
        default=10.0, ge=0, description="Length of the transfers phase (0 skips it)."
    )
    bench_transfer_accounts: int = Field(
        default=50, ge=2, description="Accounts the transfers move money between."
    )
    bench_transfer_drain_seconds: float = Field(
        default=60.0, gt=0, description="Longest wait, after the load, for every transfer to end."
    )
    bench_request_timeout_seconds: float = Field(default=10.0, gt=0)
    bench_driver: Literal["auto", "wrk", "httpx"] = Field(
        default="auto",
        description="Who sends the deposits: wrk (C, when installed) or Python httpx workers.",
    )
    bench_open_loop_seconds: float = Field(
        default=20.0, ge=0, description="Length of the fixed-rate (open-loop) phase (0 skips it)."
    )
    bench_open_loop_share: float = Field(
        default=0.5, gt=0, le=1, description="Its deposit rate, as a share of the measured max."
    )
    bench_capacity_seconds: float = Field(
        default=8.0,
        gt=0,
        description="Length of the open loop's own client's closed-loop run, the base of its rate.",
    )
    bench_lone_seconds: float = Field(
        default=5.0, ge=0,
        description="Deposits one at a time, each read back before the next, before the open"
        " loop: the latency floor and each process's CPU per lone deposit (0 skips it).",
    )
    bench_open_loop_steps: Annotated[list[Share], NoDecode] = Field(
        default=[0.1, 0.25],
        description="Shorter open loops first, at these shares of its base (comma-separated,"
        " e.g. 0.1,0.25): up to what rate the latency goals hold (empty skips them).",
    )
    bench_open_loop_step_seconds: float = Field(
        default=8.0, gt=0, description="Length of each of those steps."
    )
    bench_open_loop_accounts: int = Field(default=200, ge=1)
    bench_open_loop_processes: int = Field(
        default=2, ge=1, le=16, description="Client processes sharing the open loop's schedule."
    )
    bench_open_loop_transfers_per_second: float = Field(
        default=10.0, ge=0, description="Transfers sent beside the open loop's deposits."
    )
    bench_hot_events: int = Field(
        default=20_000, ge=0, description="History of the hot account before the open loop."
    )
    bench_hot_share: float = Field(
        default=0.3, ge=0, le=1, description="Share of the open loop's deposits to the hot account."
    )
    bench_library_threads: int = Field(default=8, ge=1, le=64)
    bench_library_seconds: float = Field(
        default=5.0, ge=0, description="Length of the eventsourcing library's own run (0 skips)."
    )
    bench_currency: str = Field(default="EUR", min_length=3, max_length=3)
    bench_report_dir: Path = Path("bench-reports")
    command_service_url: str = Field(default_factory=_command_url)
    query_service_url: str = Field(default_factory=_query_url)
    database_url: str = Field(
        default_factory=lambda: CommonSettings().database_url,
        description="The PostgreSQL server pgbench measures (a scratch database is used).",
    )

    @field_validator("bench_open_loop_steps", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        """``0.1,0.25`` from the environment or ``.env`` (a list from code is kept)."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value
