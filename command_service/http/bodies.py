"""Request and response bodies, and the strict decoding of requests.

Bodies are msgspec Structs with ``forbid_unknown_fields``. Litestar converts
bodies in msgspec's *lax* mode, where ``"10"``, ``10.0`` and ``1e3`` all
become the integer 10; money must not be guessed at, so
:func:`decode_strictly` (a ``before_request`` hook) first decodes the raw
bytes against the handler's body type in strict mode and refuses anything
that is not exactly the declared JSON type.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request
from litestar.exceptions import ValidationException
from litestar.status_codes import HTTP_400_BAD_REQUEST

from command_service.domain.account import OWNER_MAX_LENGTH
from shared_kernel.language.events import DepositChannel
from shared_kernel.language.money import MAX_AMOUNT, is_currency
from shared_kernel.problems import problem
from shared_kernel.storable_text import document_errors, printable, refuse_unstorable

REFERENCE_MAX_LENGTH = 200

Amount = Annotated[
    int,
    msgspec.Meta(gt=0, le=MAX_AMOUNT, description="A positive integer count of minor units."),
]
CurrencyCode = Annotated[
    str,
    msgspec.Meta(pattern="^[A-Z]{3}$", description="An ISO 4217 code, like EUR.", examples=["EUR"]),
]
Owner = Annotated[str, msgspec.Meta(min_length=1, max_length=OWNER_MAX_LENGTH)]
Reference = Annotated[str, msgspec.Meta(max_length=REFERENCE_MAX_LENGTH)]


def _check_currency(code: str | None) -> None:
    # Raised inside __post_init__, msgspec reports it as a ValidationError at the field.
    if code is not None and not is_currency(code):
        msg = f"{code!r} is not an ISO 4217 currency code"
        raise ValueError(msg)


class OpenAccountRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    owner: Owner
    currency: CurrencyCode
    account_id: UUID | None = None

    def __post_init__(self) -> None:
        _check_currency(self.currency)


class MoneyRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A deposit or a withdrawal; ``currency``, when given, must be the account's."""

    amount: Amount
    currency: CurrencyCode | None = None
    reference: Reference | None = None

    def __post_init__(self) -> None:
        _check_currency(self.currency)


class DepositRequest(MoneyRequest, forbid_unknown_fields=True, kw_only=True):
    """A deposit; ``channel`` says where it came in (default ``api``)."""

    channel: DepositChannel = "api"


class TransferRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Move ``amount`` (in the source account's currency) between two accounts."""

    from_account: UUID
    to_account: UUID
    amount: Amount


class TransferAcceptedResponse(msgspec.Struct, kw_only=True):
    """The transfer is recorded; the saga finishes it (see ``GET /transfers/{id}``)."""

    transfer_id: UUID
    position: int


class AccountOpenedResponse(msgspec.Struct, kw_only=True):
    account_id: UUID
    version: int
    position: int


class AccountChangedResponse(msgspec.Struct, kw_only=True):
    account_id: UUID
    version: int
    position: int
    balance: int


@cache
def _decoder(body_type: Any) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(body_type, strict=True)


def _malformed(detail: str) -> Exception:
    return problem(
        HTTP_400_BAD_REQUEST, "malformed-json", "The request body is not valid JSON", detail
    )


def _refuse_unstorable_json(body: bytes) -> None:
    """The body holds text PostgreSQL cannot store: raise the 422 naming its fields.

    Called when msgspec refused the body, to name the field rather than give
    msgspec's message: it refuses a lone surrogate escape (``"\\ud800"``) as
    malformed JSON without saying where, and a NUL in a field with a pattern
    as a mismatch. The standard library's parser accepts both; a body it
    refuses too (or cannot nest that deep) keeps msgspec's answer.
    """
    try:
        document = json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return
    refuse_unstorable(document_errors("body", document))


def _no_constant(name: str) -> Any:
    raise ValueError(name)  # NaN and Infinity are not JSON


async def decode_strictly(request: Request[Any, Any, Any]) -> None:
    """Refuse a body that is not exactly the handler's body type, before litestar's lax parse.

    Beyond the type, every string in it must be text PostgreSQL can store
    (:mod:`shared_kernel.storable_text`).
    """
    field = request.route_handler.parsed_data_field
    if field is None:
        return
    body = await request.body()  # over the size limit, this raises the 413
    if not body.strip():
        raise problem(
            HTTP_400_BAD_REQUEST, "malformed-json", "The request body is missing",
            "This request needs a JSON object body.",
        )
    try:
        decoded = _decoder(field.annotation).decode(body)
    except msgspec.ValidationError as error:
        _refuse_unstorable_json(body)
        raise ValidationException(
            f"Validation failed for {request.method} {request.url.path}",
            extra=[{"source": "body", "message": printable(str(error))}],
        ) from None
    except msgspec.DecodeError as error:
        _refuse_unstorable_json(body)
        raise _malformed(str(error)) from None
    except RecursionError:
        raise _malformed("The JSON is nested too deeply.") from None
    refuse_unstorable(document_errors("body", msgspec.to_builtins(decoded)))
