"""The projector's spans, when tracing is on: one per applied batch, one per event.

The batch span is current while the batch's transaction runs, so the read-model
writes (psycopg's spans) and any dead-lettering (redis's) nest under it; it
links to the command of every event in the batch. Each event also gets a
short span in the trace of the command that recorded it (its metadata's
``traceparent``), linked back to the batch: from a command's trace one sees
where its event went and when it reached the read models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.trace import SpanKind
from psycopg import AsyncConnection

from projector.batch import BatchApplier, BatchOutcome, Item
from shared_kernel import tracing
from shared_kernel.event_log import LogEntry

_tracer = tracing.tracer(__name__)


class TracedBatchApplier(BatchApplier):
    """A :class:`BatchApplier` that traces each :meth:`apply`."""

    async def apply(
        self, conn: AsyncConnection[Any], items: Sequence[Item], *, advance_to: int | None = None
    ) -> BatchOutcome:
        if not items:
            return await super().apply(conn, items, advance_to=advance_to)
        traceparents = [
            tracing.traceparent_in(item.data) if isinstance(item, LogEntry) else None
            for item in items
        ]
        with _tracer.start_as_current_span(
            "ledger.projector.apply_batch",
            kind=SpanKind.CONSUMER,
            links=tracing.links_to(traceparents),
            attributes={
                "ledger.items": len(items),
                "ledger.first_position": items[0].position,
                "ledger.last_position": items[-1].position,
                "ledger.projections": self.names,
            },
        ) as batch:
            outcome = await super().apply(conn, items, advance_to=advance_to)
            batch.set_attribute("ledger.applied", outcome.applied)
            batch.set_attribute("ledger.checkpoint", outcome.checkpoint)
            batch.set_attribute("ledger.dead_lettered", len(outcome.dead_lettered))
        dead = {poison.position for poison in outcome.dead_lettered}
        consumed = zip(items[: outcome.consumed], traceparents, strict=False)
        tracing.event_spans(
            "ledger.projector.apply",
            SpanKind.CONSUMER,
            (
                (traceparent, {
                    "ledger.position": item.position,
                    "ledger.event_type": item.topic if isinstance(item, LogEntry) else "",
                    "ledger.outcome": "dead-lettered" if item.position in dead else "projected",
                    "ledger.checkpoint": outcome.checkpoint,
                })
                for item, traceparent in consumed
            ),
            batch,
        )  # fmt: skip
        return outcome


def applier_class() -> type[BatchApplier]:
    """The traced applier when tracing is on, else the plain one (no cost at all)."""
    return TracedBatchApplier if tracing.enabled() else BatchApplier
