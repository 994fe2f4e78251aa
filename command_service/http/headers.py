"""The headers the command service reads and writes: If-Match, ETag, X-Correlation-ID."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request
from litestar.params import HeaderParameter

from shared_kernel.entity_tags import (
    ENTITY_TAGS_MAX_LENGTH,
    ENTITY_TAGS_PATTERN,
    entity_tags_of,
)
from shared_kernel.observability import (
    CORRELATION_HEADER,
    CORRELATION_ID_PATTERN,
    correlation_id_of,
)


def expected_versions(if_match: str | None) -> frozenset[int] | None:
    """The versions an ``If-Match`` header accepts; None when absent or ``*`` (any version).

    Strong comparison (RFC 9110 section 13.1.1): ``W/"3"`` or a tag that is not a
    version matches nothing, so the command is refused with 412 whatever the
    account's version.
    """
    if if_match is None:
        return None
    tags = entity_tags_of("If-Match", if_match)
    return None if tags.any else tags.strong_versions()


IfMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-Match",
        required=False,
        pattern=ENTITY_TAGS_PATTERN,
        max_length=ENTITY_TAGS_MAX_LENGTH,
        description='The account versions the command expects, as entity tags ("3", or a list'
        ' "3", "4"; * for any): 412 with current_version when the account is at another.',
    ),
]


CorrelationIdHeader = Annotated[
    str | None,
    HeaderParameter(
        name=CORRELATION_HEADER,
        required=False,
        pattern=CORRELATION_ID_PATTERN,
        max_length=100,
        description="Ties together everything one request causes; generated when absent.",
    ),
]


def correlation_id(request: Request[Any, Any, Any], given: str | None) -> str:
    """The request's correlation id: the client's (litestar validated it) or a generated one.

    A plain function, not a litestar dependency: two dependencies are resolved
    in an anyio task group, which costs more than the whole handler.
    """
    return given or correlation_id_of(request.scope)


def location(request: Request[Any, Any, Any], path: str) -> str:
    """The absolute URL of ``path`` on the query service, where the resource can be read."""
    return f"{request.app.state.query_service_url}{path}"
