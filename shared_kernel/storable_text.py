"""Text PostgreSQL can store: no NUL character, no lone UTF-16 surrogate.

PostgreSQL ``text`` refuses NUL, and a lone surrogate is not encodable as
UTF-8 at all. A string holding either, once accepted into an event, can never
be projected: the projector would dead-letter it forever. So both HTTP
services refuse such text at the edge, as a 422 ``validation-failed`` naming
the field, wherever a client can put it: query, path, headers (the
:class:`StorableParameters` middleware) and JSON bodies (the command
service's strict body decoding calls :func:`refuse_unstorable`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.exceptions import ValidationException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable_reason(text: str) -> str | None:
    """Why PostgreSQL cannot store ``text``, or None when it can."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character (\\u0000), which cannot be stored"
    return "contains a lone UTF-16 surrogate, which is not valid Unicode text"


def printable(text: str) -> str:
    """``text`` with NUL and surrogates written as ``\\uXXXX``: safe to echo and to encode."""
    return _UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def unstorable_errors(source: str, named: Iterable[tuple[str, Any]]) -> list[dict[str, str]]:
    """One validation error per unstorable string in ``named`` values (keys included).

    Values may be decoded JSON of any depth: the walk uses an explicit stack,
    never recursion. Nested fields are named like ``owner``, ``items[2]``, ``a.b``.
    """
    errors: list[dict[str, str]] = []
    stack: list[tuple[str, Any]] = list(named)[::-1]
    while stack:
        key, value = stack.pop()
        reason = unstorable_reason(key)
        if reason is not None:
            errors.append({"source": source, "key": printable(key), "message": reason})
            continue
        if isinstance(value, str):
            reason = unstorable_reason(value)
            if reason is not None:
                errors.append({"source": source, "key": key, "message": reason})
        elif isinstance(value, dict):
            stack.extend((f"{key}.{k}" if key else str(k), v) for k, v in value.items())
        elif isinstance(value, list | tuple):
            stack.extend((f"{key}[{i}]", v) for i, v in enumerate(value))
    return errors


def document_errors(source: str, document: Any) -> list[dict[str, str]]:
    """:func:`unstorable_errors` of a decoded JSON document, its members named by key."""
    named = document.items() if isinstance(document, dict) else [("", document)]
    return unstorable_errors(source, named)


def refuse_unstorable(errors: list[dict[str, str]]) -> None:
    """Raise litestar's validation error (a 422 problem) when ``errors`` is not empty."""
    if errors:
        names = ", ".join(f"{error['source']} {error['key']}" for error in errors)
        raise ValidationException(
            f"The request holds text that cannot be stored: {names}", extra=errors
        )


def storable_at_a_glance(scope: Scope) -> bool:
    """True when nothing in the path, query or headers can decode to unstorable text.

    The everyday request, checked on its raw bytes without parsing anything:
    the path is already decoded (path parameters are slices of it); a query
    string can only produce NUL or a surrogate through a percent escape, a NUL
    byte or a non-ASCII byte; header values decode as Latin-1, which has no
    surrogates, so only a NUL byte there matters. Anything else takes the full
    check, which names the offending field.
    """
    query: bytes = scope.get("query_string", b"")
    return (
        _UNSTORABLE.search(scope["path"]) is None
        and query.isascii()
        and b"%" not in query
        and b"\x00" not in query
        and not any(b"\x00" in name or b"\x00" in value for name, value in scope["headers"])
    )


class StorableParameters(ASGIMiddleware):
    """Refuses a request whose path, query or headers hold unstorable text, before any work.

    Runs after routing (path parameters are parsed) and before the handler,
    its dependencies and the Idempotency-Key middleware, so such a request
    never reaches a store. Every header is checked: RFC 9110 forbids NUL in
    any field value.
    """

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if storable_at_a_glance(scope):
            await next_app(scope, receive, send)
            return
        request = ASGIConnection[Any, Any, Any, Any](scope)
        refuse_unstorable(
            unstorable_errors("path", ((str(k), v) for k, v in request.path_params.items()))
            + unstorable_errors("query", request.query_params.multi_items())
            + unstorable_errors("header", request.headers.items())
        )
        await next_app(scope, receive, send)
