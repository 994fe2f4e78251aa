"""OpenTelemetry tracing: on when an exporter is configured, off and free when not.

Turned on at start-up by :func:`setup_tracing` when the environment names a
destination for spans:

- ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``): OTLP over
  HTTP/protobuf to a collector (Jaeger, Tempo, the OpenTelemetry Collector);
- ``OTEL_TRACES_EXPORTER``: ``otlp``, ``console`` (JSON on stdout) or ``none``, as in
  the OpenTelemetry SDK's own configuration;
- ``LEDGER_TRACE_FILE``: one JSON object per finished span, appended to that file
  (the SDK's console exporter pointed at a file; tests read it).

Otherwise nothing is installed: no tracer provider, no instrumentation, no
middleware, and the ledger's own spans are skipped behind :func:`enabled`, so
the hot paths pay one boolean test. When on, the official instrumentations
trace the ASGI apps (litestar's OpenTelemetry plugin), psycopg and redis, and
the ledger adds the spans they cannot know: the command, the appender's batch,
the relay's publish and the projector's apply. An event carries the W3C
``traceparent`` of the command that recorded it in its metadata
(:class:`shared_kernel.language.events.EventMetadata`), so the relay and the projector,
in other processes and much later, add their spans to the command's trace.

Batches serve many commands: a batch span is a root of its own with a link to
every command (or event) in it, and each event also gets a short span in its
command's trace that links back to the batch. Client spans without a parent
(a health check's ``SELECT 1``, an idle ``XREADGROUP``) are not sampled: they
would be thousands of one-span traces saying nothing.
"""

from __future__ import annotations

import atexit
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec
from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanContext, SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)

__all__ = [
    "TRACE_FILE_VARIABLE",
    "asgi_plugins",
    "context_of",
    "current_ids",
    "current_traceparent",
    "enabled",
    "exporters_from_env",
    "link_to",
    "links_to",
    "setup_tracing",
    "traceparent_in",
    "tracer",
]

#: A path: finished spans are appended to it as JSON lines.
TRACE_FILE_VARIABLE = "LEDGER_TRACE_FILE"
#: Paths whose requests are never traced: probes and scrapes would drown the rest.
UNTRACED_PATHS = ("/health", "/metrics", "/schema")

_propagator = TraceContextTextMapPropagator()


class _Switch:
    """Whether this process traces; set once at start-up."""

    on = False


def enabled() -> bool:
    """True once :func:`setup_tracing` installed a tracer provider in this process."""
    return _Switch.on


def exporters_from_env(env: Mapping[str, str] | None = None) -> list[str]:
    """The span destinations the environment asks for: ``otlp``, ``console``, ``file``."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    named = [
        name.strip().lower()
        for name in env.get("OTEL_TRACES_EXPORTER", "").split(",")
        if name.strip()
    ]
    if not named and (
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ):
        named = ["otlp"]
    chosen = [name for name in named if name in ("otlp", "console")]
    unknown = sorted(set(named) - {"otlp", "console", "none"})
    if unknown:
        log.warning("unknown OTEL_TRACES_EXPORTER values ignored", extra={"values": unknown})
    if env.get(TRACE_FILE_VARIABLE):
        chosen.append("file")
    return chosen


def setup_tracing(service_name: str, env: Mapping[str, str] | None = None) -> bool:
    """Install tracing for this process if the environment asks for it; True when on.

    Call once, first thing in ``main()``: the psycopg and redis instrumentations
    patch the client classes, so connections made before would go untraced.
    """
    env = os.environ if env is None else env
    exporters = exporters_from_env(env)
    if not exporters or _Switch.on:
        return _Switch.on
    service = env.get("OTEL_SERVICE_NAME") or service_name
    resource = Resource.create({"service.name": service, "service.namespace": "ledger"})
    # OTEL_TRACES_SAMPLER, when set, is the SDK's to read; else: no orphan client spans.
    sampler = None if env.get("OTEL_TRACES_SAMPLER") else ParentBased(NoOrphanClientSpans())
    provider = TracerProvider(resource=resource, sampler=sampler)
    for name in exporters:
        provider.add_span_processor(BatchSpanProcessor(_exporter(name, env)))
    trace.set_tracer_provider(provider)
    PsycopgInstrumentor().instrument(tracer_provider=provider, skip_dep_check=True)
    RedisInstrumentor().instrument(tracer_provider=provider, skip_dep_check=True)
    _Switch.on = True
    log.info("tracing on", extra={"exporters": exporters, "service": service_name})
    return True


def _exporter(name: str, env: Mapping[str, str]) -> SpanExporter:
    if name == "otlp":
        # Imported only when asked for: protobuf is a heavy import.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )

        return OTLPSpanExporter()  # endpoint, headers, timeout: the OTEL_EXPORTER_OTLP_* env
    if name == "console":
        return ConsoleSpanExporter(formatter=_line)
    path = Path(env[TRACE_FILE_VARIABLE])
    path.parent.mkdir(parents=True, exist_ok=True)
    out = path.open("a", encoding="utf-8")
    atexit.register(out.close)  # registered before the SDK's flush at exit, so runs after it
    return ConsoleSpanExporter(out=out, formatter=_line)


def _line(span: Any) -> str:
    return str(span.to_json(indent=None)) + "\n"


class NoOrphanClientSpans(Sampler):
    """Root sampler: every span but a client span (SQL, Redis) that has no parent."""

    def should_sample(  # noqa: PLR0917 (the SDK's signature)
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Any = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        if kind is SpanKind.CLIENT:
            return SamplingResult(Decision.DROP)
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)

    def get_description(self) -> str:
        return "NoOrphanClientSpans"


def tracer(name: str) -> Tracer:
    return trace.get_tracer(name)


def asgi_plugins() -> list[Any]:
    """Litestar's OpenTelemetry plugin (the official ASGI middleware), or none when off."""
    if not _Switch.on:
        return []
    config = OpenTelemetryConfig(
        exclude=[f"^{path}" for path in UNTRACED_PATHS],
        exclude_spans=["receive", "send"],
        scope_span_details_extractor=_span_details,
    )
    return [OpenTelemetryPlugin(config)]


def _span_details(scope: Any) -> tuple[str, dict[str, Any]]:
    """Name the server span by method only: the route is not known yet, and a raw path
    (with its account id) would make every span name unique. See :func:`name_route_span`."""
    return str(scope.get("method", "HTTP")), {}


def name_route_span(scope: Mapping[str, Any]) -> None:
    """Once routed: name the request span ``POST /accounts/{account_id:uuid}/deposits``."""
    span = trace.get_current_span()
    template = scope.get("path_template")
    if template and span.is_recording():
        span.update_name(f"{scope.get('method', 'HTTP')} {template}")
        span.set_attribute("http.route", str(template))


def format_traceparent(context: SpanContext) -> str | None:
    """The W3C ``traceparent`` header value of ``context`` (None when invalid)."""
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def current_traceparent() -> str | None:
    """The ``traceparent`` of the current span, or None without one."""
    return format_traceparent(trace.get_current_span().get_span_context())


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span in hex; None without one, or when its
    trace is not sampled (an id that leads to no exported trace would only mislead)."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid or not context.trace_flags.sampled:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def span_context_of(traceparent: str | None) -> SpanContext | None:
    """The remote span context a ``traceparent`` names; None when absent or malformed."""
    if not traceparent:
        return None
    context = trace.get_current_span(_propagator.extract({"traceparent": traceparent}))
    span_context = context.get_span_context()
    return span_context if span_context.is_valid else None


def context_of(traceparent: str | None) -> Context | None:
    """A context whose parent is the span a ``traceparent`` names (None when it names none)."""
    span_context = span_context_of(traceparent)
    if span_context is None:
        return None
    return trace.set_span_in_context(trace.NonRecordingSpan(span_context))


def link_to(traceparent: str | None) -> Link | None:
    span_context = span_context_of(traceparent)
    return Link(span_context) if span_context is not None else None


def links_to(traceparents: Iterable[str | None], limit: int = 128) -> list[Link]:
    """Links to the distinct spans named (at most ``limit``: the SDK keeps 128 per span)."""
    links: list[Link] = []
    seen: set[str] = set()
    for traceparent in traceparents:
        if traceparent is None or traceparent in seen:
            continue
        seen.add(traceparent)
        link = link_to(traceparent)
        if link is not None:
            links.append(link)
            if len(links) >= limit:
                break
    return links


class _Metadata(msgspec.Struct):
    traceparent: str | None = None


class _TracedEvent(msgspec.Struct):
    metadata: _Metadata = msgspec.field(default_factory=_Metadata)


_traced_event = msgspec.json.Decoder(_TracedEvent)


def traceparent_in(data: bytes) -> str | None:
    """The ``traceparent`` in an encoded event's metadata, without decoding the rest.

    For the relay, which forwards stored bytes without decoding them, and for
    entries the projector cannot decode; None for bytes that do not parse.
    """
    try:
        return _traced_event.decode(data).metadata.traceparent
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def start_time_of(span: Any) -> int | None:
    """When an SDK span started (ns since the epoch); None for a non-recording span."""
    started = getattr(span, "start_time", None)
    return started if isinstance(started, int) else None


def event_spans(
    name: str,
    kind: SpanKind,
    events: Iterable[tuple[str | None, Mapping[str, Any]]],
    batch: Any,
) -> None:
    """One span per event of a batch, in the trace of the command that recorded it.

    ``events`` are (traceparent, attributes) pairs; each span is a child of
    that traceparent, covers the batch's time (from its start to now) and links
    to the ``batch`` span, under which the batch's SQL and Redis spans are.
    Events without a traceparent (recorded while tracing was off) get none.
    """
    start_time, end_time = start_time_of(batch), time.time_ns()
    link = [Link(batch.get_span_context())]
    tracer_ = trace.get_tracer(__name__)
    for traceparent, attributes in events:
        parent = context_of(traceparent)
        if parent is None:
            continue
        span = tracer_.start_span(
            name, context=parent, kind=kind, links=link, attributes=attributes,
            start_time=start_time,
        )  # fmt: skip
        span.end(end_time=end_time)
