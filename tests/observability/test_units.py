"""The parts of tracing, logging and health that need no process: switches, formats, masks.

Nothing here installs tracing in the test process (that would patch psycopg
and redis for every other test); spans come from a private SDK provider.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from projector.stall import StallWatch
from shared_kernel import tracing
from shared_kernel.follower_lag import FollowerLag
from shared_kernel.language.events import EventMetadata, MoneyDeposited, encode_event
from shared_kernel.logs import log_context, log_handler, mask_secrets, redacted_url


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}, []),  # compose's "unset"
        ({"OTEL_TRACES_EXPORTER": "console"}, ["console"]),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, []),
        ({"LEDGER_TRACE_FILE": "/tmp/spans.jsonl"}, ["file"]),
        ({"OTEL_TRACES_EXPORTER": "otlp,console", "LEDGER_TRACE_FILE": "/x"},
         ["otlp", "console", "file"]),
        ({"OTEL_SDK_DISABLED": "true", "LEDGER_TRACE_FILE": "/x"}, []),
    ],
)  # fmt: skip
def test_the_environment_decides_where_spans_go(env: dict[str, str], expected: list[str]) -> None:
    assert tracing.exporters_from_env(env) == expected


def test_without_a_destination_tracing_stays_off_and_installs_nothing() -> None:
    assert tracing.setup_tracing("test", env={}) is False
    assert not tracing.enabled()
    assert tracing.asgi_plugins() == []
    assert tracing.current_traceparent() is None


def test_an_events_traceparent_is_read_without_decoding_the_event() -> None:
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    def event(metadata: EventMetadata) -> bytes:
        return encode_event(
            MoneyDeposited(
                originator_id=uuid.uuid4(), originator_version=2, metadata=metadata,
                amount=5, currency="EUR", channel="api",
            )
        )  # fmt: skip

    traced = event(EventMetadata(correlation_id="c", causation_id="k", traceparent=traceparent))
    untraced = event(EventMetadata(correlation_id="c", causation_id="k"))
    assert tracing.traceparent_in(traced) == traceparent
    assert b"traceparent" not in untraced  # tracing off: not a byte more per event
    assert tracing.traceparent_in(untraced) is None
    assert tracing.traceparent_in(b"not json") is None

    context = tracing.span_context_of(traceparent)
    assert context is not None and context.is_remote
    assert tracing.format_traceparent(context) == traceparent
    assert tracing.span_context_of("00-garbage") is None
    [link] = tracing.links_to([traceparent, traceparent, None, "bad"])
    assert link.context == context


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = log_handler("tester", out, "json")
    logger = logging.getLogger("tests.observability.lines")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield out
    logger.removeHandler(handler)


def _records(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_log_line_carries_span_ids_correlation_and_position(
    log_lines: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    logger = logging.getLogger("tests.observability.lines")
    logger.info("outside everything")
    monkeypatch.setattr(tracing._Switch, "on", True)
    tracer = TracerProvider().get_tracer("tests")
    with tracer.start_as_current_span("work") as span, log_context(
        correlation_id="corr-1", position=42
    ):
        logger.info("inside", extra={"events": 3})
        logger.info("explicit", extra={"position": 7, "correlation_id": "given"})
    outside, inside, explicit = _records(log_lines)
    assert outside["trace_id"] is None and outside["span_id"] is None
    assert outside["correlation_id"] is None and "position" not in outside
    context = span.get_span_context()
    assert inside["trace_id"] == f"{context.trace_id:032x}"
    assert inside["span_id"] == f"{context.span_id:016x}"
    assert (inside["correlation_id"], inside["position"], inside["events"]) == ("corr-1", 42, 3)
    assert (explicit["correlation_id"], explicit["position"]) == ("given", 7)
    for record in (outside, inside):
        assert list(record)[:9] == [
            "time", "level", "process", "pid", "logger", "message",
            "trace_id", "span_id", "correlation_id",
        ]  # fmt: skip
        assert record["process"] == "tester" and record["level"] == "INFO"


def test_secrets_are_masked_in_every_log_line(log_lines: io.StringIO) -> None:
    logger = logging.getLogger("tests.observability.lines")
    logger.warning(
        "cannot reach postgresql://ledger:hunter2@db:5432/ledger with Bearer abc.def-123",
        extra={"admin_token": "tok-1", "password": "pw-2", "Authorization": "Basic x", "n": 1},
    )
    [record] = _records(log_lines)
    text = log_lines.getvalue()
    for secret in ("hunter2", "abc.def-123", "tok-1", "pw-2", "Basic x"):
        assert secret not in text
    assert record["message"] == (
        "cannot reach postgresql://ledger:***@db:5432/ledger with Bearer ***"
    )
    assert record["n"] == 1
    assert mask_secrets("redis://:pw@host:6379/0") == "redis://:***@host:6379/0"
    assert redacted_url("postgresql://u:p@h:5/d") == "postgresql://u:***@h:5/d"
    assert redacted_url("postgresql://u@h:5/d") == "postgresql://u@h:5/d"


def test_the_stall_watch_needs_an_unchanged_checkpoint_with_the_store_ahead() -> None:
    now = [100.0]
    watch = StallWatch(stall_seconds=5, clock=lambda: now[0])
    assert watch.observe(head=10, checkpoint=10) == 0  # idle at the head
    now[0] += 60
    assert watch.observe(head=11, checkpoint=10) == 0  # an event just arrived: not stalled
    now[0] += 3
    assert watch.observe(head=12, checkpoint=10) == 3
    now[0] += 3
    assert watch.observe(head=12, checkpoint=11) == 0  # it moved: behind, but advancing
    now[0] += 6
    assert watch.observe(head=13, checkpoint=11) == 6  # stood still 6 s with work waiting
    assert watch.observe(head=13, checkpoint=13) == 0


def test_a_followers_lag_in_seconds_counts_from_when_it_last_reached_the_head() -> None:
    now = [100.0]
    registry = CollectorRegistry()
    lag = FollowerLag("relay", clock=lambda: now[0], registry=registry)

    def sample(unit: str) -> float | None:
        return registry.get_sample_value(f"ledger_relay_lag_{unit}")

    assert (sample("events"), sample("seconds")) == (0, 0)
    lag.observe(head=10, position=10)  # caught up at 100
    now[0] = 103.0
    lag.observe(head=15, position=10)
    assert (sample("events"), sample("seconds")) == (5, 3.0)
    now[0] = 110.0  # still stuck: the age keeps growing without a new observation
    assert sample("seconds") == 10.0
    lag.observe(head=15, position=15)
    assert (sample("events"), sample("seconds")) == (0, 0)
