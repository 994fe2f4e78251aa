"""The ``Idempotency-Key`` header on every POST: the first answer, once, for every retry.

An ASGI middleware around the command routes, so the handlers stay unaware
of it and every answer they give (2xx, and 4xx refusals such as a 422 body or
an insufficient-funds withdrawal) is stored and replayed alike:

1. validate the key (1 to 255 visible ASCII characters) and read the body;
2. claim the key with the request's fingerprint (method, path, canonical
   JSON body); concurrent duplicates wait, bounded, for the first to answer;
3. execute, buffer the answer, store it (below 500) before sending it, so no
   client ever sees an answer that a retry would not get again.

A 5xx answer or a crash gives the claim back (at once, or when its lease
runs out); the next attempt keeps the request's command id and executes in
*recovering* mode (see :mod:`command_service.batch_writer`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import msgspec
from litestar import Request
from litestar.enums import ScopeType
from litestar.params import HeaderParameter
from litestar.status_codes import (
    HTTP_409_CONFLICT,
    HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    HTTP_422_UNPROCESSABLE_ENTITY,
)
from litestar.types import ASGIApp, HTTPScope, Message, Receive, ReceiveMessage, Scope, Send

from command_service import metrics
from command_service.idempotency.keys import (
    Claimed,
    ClaimOutcome,
    IdempotencyKeys,
    KeyBusy,
    KeyReused,
    StoredAnswer,
)
from shared_kernel.ids import random_uuid
from shared_kernel.problems import problem

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
_KEY = re.compile(KEY_PATTERN)
#: Response headers that are part of the answer (the correlation id is per request).
_STORED_HEADERS = frozenset({b"content-type", b"etag", b"location"})
_STATE_KEY = "idempotent_attempt"


#: Documents the header on every POST (the middleware, not the handler, acts on it).
IDEMPOTENCY_PARAMETERS = {
    "idempotency_key": HeaderParameter(
        annotation=str | None,
        name=HEADER,
        required=False,
        pattern=KEY_PATTERN,
        min_length=1,
        max_length=255,
        description="Retries with the same key and body get the first answer, without a"
        " second effect; the same key with another body gets 422.",
    )
}


@dataclass(frozen=True, slots=True)
class IdempotentAttempt:
    """What a handler needs to know: the request's command id, and whether it recovers."""

    command_id: UUID
    recovering: bool


def attempt_of(request: Request[Any, Any, Any]) -> IdempotentAttempt:
    """This request's attempt: the claimed command id, or a new one without a key."""
    attempt = request.scope.get("state", {}).get(_STATE_KEY)
    if isinstance(attempt, IdempotentAttempt):
        return attempt
    return IdempotentAttempt(random_uuid(), recovering=False)


def fingerprint(scope: HTTPScope, body: bytes) -> bytes:
    """Same method, path, query and JSON body (key order and spacing aside) -> same bytes."""
    try:
        canonical = msgspec.json.encode(msgspec.json.decode(body), order="sorted")
    except (msgspec.DecodeError, msgspec.EncodeError, RecursionError):
        # Not JSON, or nested too deeply to canonicalise: the route refuses it
        # anyway (4xx), and the raw bytes fingerprint it as well as any.
        canonical = body
    digest = hashlib.sha256()
    for part in (scope["method"].encode(), scope.get("raw_path") or scope["path"].encode()):
        digest.update(part + b"\n")
    digest.update(scope.get("query_string", b"") + b"\n")
    digest.update(canonical)
    return digest.digest()


def _header(scope: Scope, name: bytes) -> bytes | None:
    return next((value for key, value in scope["headers"] if key == name), None)


def _invalid_key() -> Exception:
    return problem(
        HTTP_422_UNPROCESSABLE_ENTITY,
        "validation-failed",
        "The Idempotency-Key header is not valid",
        "Idempotency-Key must be 1 to 255 visible ASCII characters.",
        errors=[
            {"source": "header", "key": HEADER, "message": "1 to 255 visible ASCII characters"}
        ],
    )


class IdempotencyMiddleware:
    def __init__(
        self, app: ASGIApp, *, keys: IdempotencyKeys, max_body_bytes: int, wait_seconds: float
    ) -> None:
        self.app = app
        self._keys = keys
        self._max_body = max_body_bytes
        self._wait = wait_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        raw_key = _header(scope, b"idempotency-key")
        if raw_key is None:
            await self.app(scope, receive, send)
            return
        key = raw_key.decode("latin-1")
        if not _KEY.match(key):
            raise _invalid_key()
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_body:
            await self.app(scope, receive, send)  # litestar answers 413; nothing to remember
            return
        body = await self._read_body(receive)
        outcome = await self._claim(key, fingerprint(scope, body))
        if isinstance(outcome, StoredAnswer):
            metrics.IDEMPOTENT_REQUESTS.labels("replayed").inc()
            await _send_answer(send, outcome, replayed=True)
            return
        if isinstance(outcome, KeyReused):
            metrics.IDEMPOTENT_REQUESTS.labels("reused").inc()
            raise problem(
                HTTP_422_UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "The Idempotency-Key was used for another request",
                "This key already belongs to a request with another method, path or body;"
                " use a new key for a new request.",
            )
        if isinstance(outcome, KeyBusy):
            metrics.IDEMPOTENT_REQUESTS.labels("in-progress").inc()
            raise problem(
                HTTP_409_CONFLICT,
                "idempotency-key-in-progress",
                "A request with this Idempotency-Key is still executing",
                "Retry shortly to get its answer.",
                headers={"Retry-After": "1"},
            )
        metrics.IDEMPOTENT_REQUESTS.labels("recovering" if outcome.recovering else "first").inc()
        await self._execute(scope, body, key, outcome, (receive, send))

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:
                raise problem(HTTP_413_REQUEST_ENTITY_TOO_LARGE, "body-too-large", "Body too large")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _claim(self, key: str, print_: bytes) -> ClaimOutcome:
        """Claim ``key``; while another attempt holds it, wait (bounded) for its answer."""
        deadline = time.monotonic() + self._wait
        pause = 0.01
        while True:
            outcome = await self._keys.claim(key, print_)
            if not isinstance(outcome, KeyBusy) or time.monotonic() >= deadline:
                return outcome
            remaining = min(outcome.remaining.total_seconds(), deadline - time.monotonic())
            await asyncio.sleep(max(0.001, min(pause, remaining)))
            pause = min(pause * 2, 0.2)

    async def _execute(
        self,
        scope: HTTPScope,
        body: bytes,
        key: str,
        claim: Claimed,
        channel: tuple[Receive, Send],
    ) -> None:
        receive, send = channel
        scope.setdefault("state", {})[_STATE_KEY] = IdempotentAttempt(
            claim.command_id, claim.recovering
        )
        delivered = False

        async def replay_body() -> ReceiveMessage:
            nonlocal delivered
            if delivered:
                return await receive()  # a disconnect, if the handler asks again
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        messages: list[Message] = []

        async def capture(message: Message) -> None:
            messages.append(message)

        try:
            await self.app(scope, replay_body, capture)
        except BaseException:
            await self._give_back(key, claim.owner)
            raise
        answer = _answer_of(messages)
        if answer.status >= 500:
            await self._give_back(key, claim.owner)
        else:
            try:
                kept = await self._keys.answer(key, claim.owner, answer)
            except Exception:  # the answer still goes out; a retry recovers from the store
                log.exception("storing an idempotent answer failed", extra={"key": key})
            else:
                if not kept:
                    log.warning(
                        "idempotency lease ran out before the answer; another attempt took over",
                        extra={"key": key, "command_id": str(claim.command_id)},
                    )
        for message in messages:
            await send(message)

    async def _give_back(self, key: str, owner: UUID) -> None:
        try:
            await self._keys.abandon(key, owner)
        except Exception:  # the lease then simply runs out
            log.exception("giving an idempotency key back failed", extra={"key": key})


def _answer_of(messages: list[Message]) -> StoredAnswer:
    start = next(m for m in messages if m["type"] == "http.response.start")
    headers = [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in start.get("headers", [])
        if name.lower() in _STORED_HEADERS
    ]
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return StoredAnswer(int(start["status"]), headers, body)


async def _send_answer(send: Send, answer: StoredAnswer, *, replayed: bool) -> None:
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in answer.headers]
    headers.append((b"content-length", str(len(answer.body)).encode()))
    if replayed:
        headers.append((REPLAYED_HEADER.lower().encode(), b"true"))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body, "more_body": False})
