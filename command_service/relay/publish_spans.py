"""The relay's spans, when tracing is on: one per published batch, one per event.

The relay forwards stored bytes without decoding them; only when tracing is
on does it read each event's ``traceparent`` (a small partial decode). The
batch span holds the Redis pipeline's span and links to every event's
command; each event also gets a short span in its command's trace.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.trace import SpanKind

from command_service.relay.publisher import StreamPublisher
from shared_kernel import tracing
from shared_kernel.event_log import LogEntry

_tracer = tracing.tracer(__name__)


class TracedStreamPublisher(StreamPublisher):
    """A :class:`StreamPublisher` that traces each :meth:`publish`."""

    async def publish(self, entries: Sequence[LogEntry]) -> int:
        if not entries:
            return await super().publish(entries)
        traceparents = [tracing.traceparent_in(entry.data) for entry in entries]
        with _tracer.start_as_current_span(
            "ledger.relay.publish_batch",
            kind=SpanKind.PRODUCER,
            links=tracing.links_to(traceparents),
            attributes={
                "messaging.system": "redis",
                "messaging.destination.name": self.stream_name,
                "ledger.events": len(entries),
                "ledger.first_position": entries[0].position,
                "ledger.last_position": entries[-1].position,
            },
        ) as batch:
            added = await super().publish(entries)
            batch.set_attribute("ledger.added", added)
        tracing.event_spans(
            "ledger.relay.publish",
            SpanKind.PRODUCER,
            (
                (traceparent, {"ledger.position": entry.position, "ledger.event_type": entry.topic,
                               "messaging.destination.name": self.stream_name})
                for entry, traceparent in zip(entries, traceparents, strict=True)
            ),
            batch,
        )  # fmt: skip
        return added


def publisher_class() -> type[StreamPublisher]:
    """The traced publisher when tracing is on, else the plain one (no cost at all)."""
    return TracedStreamPublisher if tracing.enabled() else StreamPublisher
