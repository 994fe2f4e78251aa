"""Reading back what the relay published and what a process reports, to compare with the store."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import redis
from prometheus_client.parser import text_string_to_metric_families

from shared_kernel.event_log import LogEntry, from_fields, read_log_sync
from tests.support.reference_fold import store_head


def raw_entries(client: redis.Redis, stream: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """Every entry of the stream as redis-py returns it: (id, fields), in stream order."""
    entries: list[tuple[bytes, dict[bytes, bytes]]] = client.xrange(stream)  # type: ignore[assignment]
    return entries


def published(client: redis.Redis, stream: str) -> list[tuple[str, LogEntry]]:
    """Every entry of the stream as (entry id, parsed entry), in stream order."""
    return [
        (entry_id.decode(), from_fields(fields)) for entry_id, fields in raw_entries(client, stream)
    ]


def stored(database_url: str) -> list[LogEntry]:
    """The whole log, as the relay reads it."""
    with psycopg.connect(database_url) as conn:
        return read_log_sync(conn, after=0, limit=1_000_000)


def stream_top(client: redis.Redis, stream: str) -> int:
    try:
        info = client.xinfo_stream(stream)
    except redis.ResponseError:
        return 0
    return int(info["last-generated-id"].decode().partition("-")[0])


def wait_for_stream_top(
    client: redis.Redis, stream: str, position: int, timeout: float = 30
) -> None:
    """Bounds the wait for the relay to publish up to ``position``; measures nothing."""
    deadline = time.monotonic() + timeout
    while stream_top(client, stream) < position:
        if time.monotonic() > deadline:
            raise TimeoutError(f"stream {stream} at {stream_top(client, stream)}, not {position}")
        time.sleep(0.02)


def wait_until_published(client: redis.Redis, stream: str, database_url: str) -> int:
    """Bounds the wait for the relay to publish every event stored now; the store's head."""
    head = store_head(database_url)
    wait_for_stream_top(client, stream, head)
    return head


def metric_value(base_url: str, name: str) -> float:
    """One sample of a process's /metrics by its full name (e.g. ``ledger_relay_active``)."""
    text = httpx.get(f"{base_url}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    raise KeyError(name)


def ready_checks(base_url: str) -> dict[str, object]:
    response = httpx.get(f"{base_url}/health/ready", timeout=5)
    response.raise_for_status()
    checks: dict[str, object] = response.json()["checks"]
    return checks


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    """Bounds a wait for a state change (an ack, a takeover); measures nothing."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached after {timeout}s")
        time.sleep(0.05)


def pending_count(client: redis.Redis, stream: str, group: str) -> int:
    summary: dict[str, Any] = client.xpending(stream, group)  # type: ignore[assignment]
    return int(summary["pending"])


def consumer_names(client: redis.Redis, stream: str, group: str) -> set[str]:
    consumers: list[dict[str, Any]] = client.xinfo_consumers(stream, group)  # type: ignore[assignment]
    return {consumer["name"].decode() for consumer in consumers}
