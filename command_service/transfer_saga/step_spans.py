"""The transfer saga's spans, when tracing is on: one per saved step batch, one per transfer.

A step (debit, credit) is decided for many transfers and saved in one
transaction: the batch span holds the store's SQL spans and links to each
transfer's request; each transfer also gets a short span in the trace of the
request that asked for it (its ``traceparent``, which the saga copies into
the legs it appends, so the relay's and projector's spans follow).
"""

from __future__ import annotations

from opentelemetry.trace import SpanKind

from command_service.domain.transfer import Transfer
from command_service.transfer_saga.steps import Step, TransferSteps
from shared_kernel import tracing

_tracer = tracing.tracer(__name__)


class TracedTransferSteps(TransferSteps):
    """:class:`TransferSteps` that traces each step batch."""

    def _step(self, step: Step, batch: list[Transfer]) -> list[Transfer]:
        if not batch:
            return super()._step(step, batch)
        with _tracer.start_as_current_span(
            f"ledger.saga.{step}_batch",
            links=tracing.links_to(transfer.traceparent for transfer in batch),
            attributes={"ledger.transfers": len(batch)},
        ) as span:
            results = super()._step(step, batch)
            span.set_attribute("ledger.stepped", len(results))
        after = {transfer.id: transfer for transfer in results}
        tracing.event_spans(
            f"ledger.saga.{step}",
            SpanKind.INTERNAL,
            (
                (transfer.traceparent, {
                    "ledger.transfer_id": str(transfer.id),
                    "ledger.status": after[transfer.id].status if transfer.id in after else "",
                })
                for transfer in batch
            ),
            span,
        )  # fmt: skip
        return results


def steps_class() -> type[TransferSteps]:
    """The traced steps when tracing is on, else the plain ones (no cost at all)."""
    return TracedTransferSteps if tracing.enabled() else TransferSteps
