"""Log lines for machines and for people, from one structlog processor chain.

``LOG_FORMAT=json`` (the default when stderr is not a terminal): one JSON object per
line, so an operator can grep or ship them without parsing prose: ``time``,
``level``, ``process``, ``pid``, ``logger``, ``message``, ``trace_id`` and ``span_id``
of the current span (null when tracing is off or no span is current),
``correlation_id`` (the request's or the batch's, from :func:`log_context`),
``position`` when the line is about an event, then any ``extra`` fields.
``LOG_FORMAT=console`` (the default on a terminal): the same fields as one readable
line, ``time level process: message key=value ...``. The code logs with the standard
library; structlog only formats.

Secrets stay out of both: a URL's password and a bearer token anywhere in the line,
and the value of any field named like ``password``, ``token`` or ``authorization``,
are masked; no code logs a request body.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import structlog
from structlog.dev import Column, ConsoleRenderer, KeyValueColumnFormatter, LogLevelColumnFormatter
from structlog.typing import EventDict, WrappedLogger

from shared_kernel import tracing
from shared_kernel.settings import LogFormat

#: Extra fields whose values are never written, whatever they hold.
_SECRET_FIELD = re.compile(r"pass(word)?|secret|token|authorization|cookie|api_key", re.I)
#: ``scheme://user:password@host`` and ``Bearer <token>`` inside any text.
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s\"]*:)[^@/\s\"]+@", re.I)
_BEARER = re.compile(r"(?P<head>\bbearer\s+)[A-Za-z0-9._~+/=-]+", re.I)
MASK = "***"
#: structlog's bookkeeping keys, and uvicorn's ANSI-coloured copy of its message.
_NOT_FIELDS = frozenset({"event", "_record", "_from_structlog", "color_message"})

#: The correlation id of the request or batch being handled (None outside one).
CORRELATION_ID: ContextVar[str | None] = ContextVar("correlation_id", default=None)
#: The log position of the event being handled (None when no single event is).
POSITION: ContextVar[int | None] = ContextVar("position", default=None)


@contextmanager
def log_context(
    *, correlation_id: str | None = None, position: int | None = None
) -> Iterator[None]:
    """Every line logged inside carries ``correlation_id`` and ``position`` (if given)."""
    correlation = CORRELATION_ID.set(correlation_id) if correlation_id is not None else None
    at = POSITION.set(position) if position is not None else None
    try:
        yield
    finally:
        if at is not None:
            POSITION.reset(at)
        if correlation is not None:
            CORRELATION_ID.reset(correlation)


def mask_secrets(text: str) -> str:
    """``text`` with URL passwords and bearer tokens replaced by ``***``."""
    if "@" in text:
        text = _URL_PASSWORD.sub(rf"\g<head>{MASK}@", text)
    if "earer" in text:
        text = _BEARER.sub(rf"\g<head>{MASK}", text)
    return text


def redacted_url(url: str) -> str:
    """``url`` without its password, for messages that must name a server."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{MASK}@{netloc[-1]}"))


def _line_fields(process_name: str) -> structlog.typing.Processor:
    """The record as the line's fields, in their order; extras (masked by name) last.

    A value the call gave in ``extra`` wins over the context's. Span ids are
    looked up only when tracing is on; otherwise they are null at the cost of one
    boolean test.
    """

    def fields(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
        record: logging.LogRecord = event["_record"]
        ids = tracing.current_ids() if tracing.enabled() else None
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "process": process_name,
            "pid": record.process,
            "logger": record.name,
            "message": event["event"],
            "trace_id": ids[0] if ids else None,
            "span_id": ids[1] if ids else None,
            "correlation_id": CORRELATION_ID.get(),
        }
        position = POSITION.get()
        if position is not None:
            line["position"] = position
        for key, value in event.items():
            if key not in _NOT_FIELDS and (value is not None or key not in line):
                line[key] = MASK if _SECRET_FIELD.search(key) else value
        return {**line, "_record": record, "_from_structlog": event["_from_structlog"]}

    return fields


#: Fields a person reading a console does not need on every line (the JSON lines keep them).
_CONSOLE_OMITS = frozenset({"pid", "logger"})


def _console_fields(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """On a console, a null field (no span, no correlation id) is only noise."""
    return {k: v for k, v in event.items() if v is not None and k not in _CONSOLE_OMITS}


def _console_renderer(colors: bool) -> ConsoleRenderer:
    """``time LEVEL process: message key=value ...``, coloured on a terminal."""
    styles = ConsoleRenderer.get_default_column_styles(colors)
    levels = {k.upper(): v for k, v in ConsoleRenderer.get_default_level_styles(colors).items()}

    def plain(style: str, *, postfix: str = "", width: int = 0) -> KeyValueColumnFormatter:
        return KeyValueColumnFormatter(None, style, styles.reset, str, width, "", postfix)

    return ConsoleRenderer(
        sort_keys=False,
        columns=[
            Column("time", plain(styles.timestamp)),
            Column("level", LogLevelColumnFormatter(levels, styles.reset, width=7)),
            Column("process", plain(styles.logger_name, postfix=":")),
            Column("message", plain(styles.bright)),
            Column("", KeyValueColumnFormatter(styles.kv_key, styles.kv_value, styles.reset, str)),
        ],
    )


def log_handler(process_name: str, stream: IO[str], log_format: LogFormat) -> logging.Handler:
    """A handler writing ``stream`` in ``log_format``, secrets masked."""
    if log_format == "json":
        renderer: Any = structlog.processors.JSONRenderer(default=str)
        last: list[structlog.typing.Processor] = []
    else:
        renderer = _console_renderer(colors=stream.isatty())
        last = [_console_fields]

    def rendered(logger: WrappedLogger, name: str, event: EventDict) -> str:
        return mask_secrets(str(renderer(logger, name, event)))

    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.ExtraAdder(), structlog.processors.format_exc_info],
            processors=[
                _line_fields(process_name),
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *last,
                rendered,
            ],
        )
    )
    return handler


def configure_logging(process_name: str, level: str, log_format: LogFormat | None = None) -> None:
    """Send this process's log lines to stderr at ``level``, as ``log_format``.

    Without a format: console lines on a terminal, JSON lines otherwise
    (supervisord, containers, files).
    """
    chosen: LogFormat = log_format or ("console" if sys.stderr.isatty() else "json")
    root = logging.getLogger()
    root.handlers[:] = [log_handler(process_name, sys.stderr, chosen)]
    root.setLevel(level)
    # Access logs of every request would drown the signal; errors still show.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
