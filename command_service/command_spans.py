"""The command service's own spans: each command, each batch the writer saves.

Used only when tracing is on (:func:`shared_kernel.tracing.enabled`). A
command's span is a child of its HTTP request's span and lasts until the
command is answered (queueing, decision and append); its ``traceparent`` goes
into the metadata of the event the command records, so the relay's and the
projector's spans join this trace. The writer saves many commands in one
transaction: the batch span (with the store's SQL spans under it) is a trace
of its own that links to every command in it, and each command links back to
its batch, so "why was this command slow" leads to the batch it waited for.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any

from opentelemetry.trace import Span, SpanContext, SpanKind, Status, StatusCode

from command_service.bus.registry import command_name
from command_service.commands import AccountCommand, Command, CommandResult, TransferAccepted
from command_service.domain.account import DomainError
from shared_kernel import tracing

_tracer = tracing.tracer(__name__)

Result = CommandResult | TransferAccepted


@dataclass(slots=True)
class CommandTrace:
    """Written by the writer thread: the span of the batch that saved the command."""

    batch: SpanContext | None = None


#: The trace of the command being dispatched in this task, for the writer thread to fill in.
_CURRENT: ContextVar[CommandTrace | None] = ContextVar("command_trace", default=None)


def current_trace() -> CommandTrace | None:
    return _CURRENT.get()


def _attributes(command: Command[Any]) -> dict[str, str]:
    """The command's name, stream and correlation id; the account too for a command on one."""
    attributes = {
        "ledger.command": command_name(command),
        "ledger.stream_id": str(command.stream_id),
        "ledger.correlation_id": command.correlation_id,
    }
    if isinstance(command, AccountCommand):
        attributes["ledger.account_id"] = str(command.account_id)
    return attributes


async def traced(
    command: Command[Any], proceed: Callable[[Command[Any]], Awaitable[Result]]
) -> Result:
    """``proceed(command)`` inside the command's span, the command carrying its traceparent."""
    with _tracer.start_as_current_span(
        f"ledger.command {command_name(command)}",
        kind=SpanKind.INTERNAL,
        attributes=_attributes(command),
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        command = replace(
            command, traceparent=tracing.format_traceparent(span.get_span_context())
        )
        trace = CommandTrace()
        token = _CURRENT.set(trace)
        try:
            result = await proceed(command)
        except DomainError as refusal:  # a refusal is an answer (4xx), not a failure
            span.set_attribute("ledger.outcome", refusal.code)
            raise
        except BaseException as error:
            span.set_attribute("ledger.outcome", str(getattr(error, "code", type(error).__name__)))
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            raise
        finally:
            _CURRENT.reset(token)
            if trace.batch is not None:
                span.add_link(trace.batch)
        _answered(span, result)
        return result


def _answered(span: Span, result: Result) -> None:
    span.set_attribute("ledger.outcome", "ok")
    span.set_attribute("ledger.position", result.position)
    if isinstance(result, CommandResult):
        span.set_attribute("ledger.version", result.version)
    else:
        span.set_attribute("ledger.transfer_id", str(result.transfer_id))


@contextmanager
def append_batch(
    commands: Sequence[Command[Any]], traces: Sequence[CommandTrace | None]
) -> Iterator[Span]:
    """The span of one batch of the writer, linked to each command's span."""
    links = tracing.links_to(command.traceparent for command in commands)
    with _tracer.start_as_current_span(
        "ledger.append_batch", links=links, attributes={"ledger.commands": len(commands)}
    ) as span:
        context = span.get_span_context()
        for trace in traces:
            if trace is not None:
                trace.batch = context
        yield span


@contextmanager
def save(events: int) -> Iterator[Span]:
    """The span of one ``store.save`` (one transaction); SQL spans nest under it."""
    with _tracer.start_as_current_span(
        "ledger.save", attributes={"ledger.events": events}
    ) as span:
        yield span
