"""`make status`: each process's health, the event store's head, each projection's lag.

One screen answers "is a projection behind, and by how much": a line per
process (``/health/ready``, with the check that fails when one does), the
position of the newest event in the store, how far the relay has published,
per projection its checkpoint, its lag in positions and in seconds (now
minus the time of the last event it applied, while the store is ahead), and
the streams a projection holds back after refusing one of their events.
Ports come from the processes' own settings classes, so an exported
``COMMAND_SERVICE_PORT`` (and friends) moves both the process and this check;
the database is read as the read-only query role (``QUERY_DATABASE_URL``).
Exit status 1 when anything is not ready.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg

from command_service.settings import CommandServiceSettings, RelaySettings, TransferSagaSettings
from projector.settings import ProjectorSettings
from query_service.settings import QueryServiceSettings
from shared_kernel.observability import mask_secrets, redacted_url
from shared_kernel.settings import EVENTS_TABLE, QueryDatabaseSettings


@dataclass(frozen=True, slots=True)
class Process:
    name: str
    module: str
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def processes() -> list[Process]:
    """The processes of ``make run`` (ops/supervisord.conf), with their ports from the env."""
    return [
        Process("command", "command_service", CommandServiceSettings().command_service_port),
        Process("relay", "command_service.relay", RelaySettings().relay_port),
        Process(
            "saga", "command_service.transfer_saga", TransferSagaSettings().transfer_saga_port
        ),
        Process("projector", "projector", ProjectorSettings().projector_port),
        Process("query", "query_service", QueryServiceSettings().query_service_port),
    ]


@dataclass(frozen=True, slots=True)
class Health:
    ready: bool
    detail: str


def health(process: Process, timeout: float = 3.0) -> Health:
    """What ``/health/ready`` says: ready or not, and the checks worth showing."""
    try:
        response = httpx.get(f"{process.url}/health/ready", timeout=timeout)
    except httpx.HTTPError as error:
        return Health(False, f"no answer ({type(error).__name__})")
    try:
        checks: dict[str, Any] = dict(response.json().get("checks", {}))
    except ValueError:
        checks = {}
    ready = response.status_code == httpx.codes.OK
    if not checks:
        return Health(ready, "" if ready else f"{response.status_code} {response.text[:200]}")
    failing = [f"{name}: {value}" for name, value in checks.items() if _failing(value)]
    shown = failing or [f"{name} {_short(value)}" for name, value in checks.items()]
    return Health(ready, "; ".join(shown))


def _failing(value: object) -> bool:
    return isinstance(value, str) and value.startswith("failing")


def _short(value: object) -> str:
    if isinstance(value, dict):
        return ",".join(f"{key}={item}" for key, item in value.items())
    return str(value)


def readiness(process: Process, timeout: float = 2.0) -> str | None:
    """None when ``/health/ready`` answers 200, else why not."""
    result = health(process, timeout)
    return None if result.ready else result.detail


@dataclass(frozen=True, slots=True)
class ProjectionLag:
    name: str
    checkpoint: int
    lag_events: int
    lag_seconds: float
    last_event_at: datetime | None
    partitions: tuple[int, ...] = ()
    """Each partition's checkpoint, partition 0 first (one entry without partitions)."""


@dataclass(frozen=True, slots=True)
class BlockedStream:
    projection: str
    stream_id: str
    position: int
    held: int
    reason: str


@dataclass(frozen=True, slots=True)
class StoreStatus:
    head: int
    relay_positions: dict[str, int]
    projections: list[ProjectionLag]
    blocked: list[BlockedStream]


_HEAD = f"SELECT COALESCE(MAX(notification_id), 0) FROM {EVENTS_TABLE}"
_RELAY = "SELECT stream_name, position FROM relay_positions ORDER BY stream_name"
_BLOCKED = (
    "SELECT projection, stream_id::text, position, held, reason FROM projection_blocks"
    " ORDER BY position, projection"
)
#: A projection has reached the lowest of its partitions' checkpoints.
_CHECKPOINTS = (
    "SELECT projection, min(position),"
    " (array_agg(last_event_at ORDER BY position, partition))[1],"
    " array_agg(position ORDER BY partition)"
    " FROM projection_checkpoints GROUP BY projection ORDER BY projection"
)


def store_status(database_url: str, now: datetime | None = None) -> StoreStatus:
    """The head, the relay's positions and every projection's checkpoint and lag."""
    now = now or datetime.now(tz=UTC)
    with psycopg.connect(database_url, connect_timeout=3, autocommit=True) as conn:
        row = conn.execute(_HEAD).fetchone()
        head = int(row[0]) if row else 0
        relay = {str(name): int(at) for name, at in conn.execute(_RELAY).fetchall()}
        projections = []
        for name, at, last_event_at, partitions in conn.execute(_CHECKPOINTS).fetchall():
            behind = max(0, head - int(at))
            age = (now - last_event_at).total_seconds() if behind and last_event_at else 0.0
            projections.append(
                ProjectionLag(
                    name, int(at), behind, max(0.0, age), last_event_at, tuple(partitions)
                )
            )
        blocked = [BlockedStream(*row) for row in conn.execute(_BLOCKED).fetchall()]
    return StoreStatus(head, relay, projections, blocked)


def print_store(status: StoreStatus) -> None:
    print(f"\nevent store head: position {status.head}")
    for stream, at in status.relay_positions.items():
        print(f"relay published:  position {at} on {stream} (lag {max(0, status.head - at)})")
    if not status.projections:
        print("no projection has a checkpoint yet (is the projector running?)")
        return
    print(f"\n{'projection':<24} {'checkpoint':>10} {'lag events':>10} {'lag s':>8}  last event")
    for p in status.projections:
        last = p.last_event_at.isoformat(timespec="seconds") if p.last_event_at else "-"
        print(f"{p.name:<24} {p.checkpoint:>10} {p.lag_events:>10} {p.lag_seconds:>8.1f}  {last}")
        if len(p.partitions) > 1:
            each = "  ".join(f"p{k} {at}" for k, at in enumerate(p.partitions))
            print(f"    partitions: {each}")
    if status.blocked:
        print(f"\nBLOCKED streams: {len(status.blocked)} (reads of them answer 503; see"
              " `make dead-letters`)")  # fmt: skip
        print(f"{'projection':<24} {'stream':<36} {'position':>10} {'held':>6}  reason")
        for b in status.blocked:
            print(f"{b.projection:<24} {b.stream_id:<36} {b.position:>10} {b.held:>6}  {b.reason}")
    else:
        print("\nno blocked streams")


def main() -> int:
    failing = 0
    print(f"{'process':<10} {'url':<24} state")
    for process in processes():
        result = health(process)
        state = "ready" if result.ready else "NOT READY"
        print(f"{process.name:<10} {process.url:<24} {state:<9}  {result.detail}")
        failing += not result.ready
    database_url = QueryDatabaseSettings().database_url  # read-only role
    try:
        print_store(store_status(database_url))
    except psycopg.Error as error:
        message = mask_secrets(str(error).strip().splitlines()[0] if str(error) else repr(error))
        print(f"\ncannot read the event store at {redacted_url(database_url)}: {message}")
        failing += 1
    if failing:
        print("\nstart the stack with `make run`", file=sys.stderr)
    return 1 if failing else 0


if __name__ == "__main__":
    raise SystemExit(main())
