"""Opaque page cursors: where the next page starts, and for which query.

A cursor is the keyset of the last row served (never an offset, so rows
inserted meanwhile neither repeat nor vanish), packed with msgspec and written
as unpadded base64url. It also records the query it continues, and a short
digest, so an edited, truncated or transplanted cursor is refused with a 422
instead of silently continuing from somewhere else. The digest is an
integrity check, not a secret: forging a cursor only reaches rows the same
client could page to anyway.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Annotated, TypeVar
from uuid import UUID

import msgspec

#: The largest value a PostgreSQL ``bigint`` holds; a cursor beyond it is garbage.
MAX_BIGINT = 2**63 - 1
#: Longest cursor text accepted; real ones are far shorter (owner filter included).
MAX_CURSOR_LENGTH = 2048

_DIGEST_SIZE = 8
_PERSON = b"ledger-cursor"

Version = Annotated[int, msgspec.Meta(ge=0, le=MAX_BIGINT)]


class InvalidCursor(ValueError):
    """The client sent a cursor this service did not issue for this query."""


class StatementCursor(msgspec.Struct, frozen=True, array_like=True, tag="statement"):
    """Continue an account's statement with the lines older than ``before_version``."""

    account_id: UUID
    before_version: Version


class AccountsCursor(msgspec.Struct, frozen=True, array_like=True, tag="accounts"):
    """Continue the account list after ``after_account_id``, under the same filters."""

    after_account_id: UUID
    owner: str | None
    status: str | None
    min_balance: Version | None


class TransfersCursor(msgspec.Struct, frozen=True, array_like=True, tag="transfers"):
    """Continue an account's transfers with those requested before ``before_position``."""

    account_id: UUID
    before_position: Version


class HoldsCursor(msgspec.Struct, frozen=True, array_like=True, tag="holds"):
    """Continue an account's holds with those placed before ``before_position``."""

    account_id: UUID
    before_position: Version


class OwnersCursor(msgspec.Struct, frozen=True, array_like=True, tag="owners"):
    """Continue the owner list after ``after_owner``."""

    after_owner: str


Cursor = StatementCursor | AccountsCursor | TransfersCursor | HoldsCursor | OwnersCursor
C = TypeVar("C", StatementCursor, AccountsCursor, TransfersCursor, HoldsCursor, OwnersCursor)

_encoder = msgspec.msgpack.Encoder(uuid_format="bytes")
_decoder = msgspec.msgpack.Decoder(Cursor)


def _digest(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=_DIGEST_SIZE, person=_PERSON).digest()


def _base64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def encode_cursor(cursor: Cursor) -> str:
    payload = _encoder.encode(cursor)
    return _base64url(payload + _digest(payload))


def decode_cursor(text: str, expected: type[C]) -> C:
    """The cursor in ``text``, or :class:`InvalidCursor` saying why not."""
    if len(text) > MAX_CURSOR_LENGTH:
        raise InvalidCursor("the cursor is too long")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise InvalidCursor("the cursor is not base64url") from None
    if _base64url(raw) != text:
        # Several texts decode to the same bytes (padding, unused low bits);
        # only the one this service writes is a cursor.
        raise InvalidCursor("the cursor is not in canonical form")
    payload, digest = raw[:-_DIGEST_SIZE], raw[-_DIGEST_SIZE:]
    if len(raw) <= _DIGEST_SIZE or not hmac.compare_digest(digest, _digest(payload)):
        raise InvalidCursor("the cursor was altered or truncated")
    try:
        cursor = _decoder.decode(payload)
    except msgspec.DecodeError:
        raise InvalidCursor("the cursor does not decode") from None
    if not isinstance(cursor, expected):
        raise InvalidCursor("the cursor belongs to another kind of query")
    return cursor


def continued_after(text: str | None, expected: type[C]) -> C | None:
    """The cursor a page continues after: None (the first page) when the client sent none."""
    return decode_cursor(text, expected) if text is not None else None
