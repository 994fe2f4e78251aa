"""Conditional reads (RFC 9110 section 13): ``ETag`` on a versioned resource, 304 for a match.

An account's and a transfer's read carry ``ETag: "<version>"``; a client that
sends it back in ``If-None-Match`` gets 304 Not Modified, with no body, while
the resource is still at that version (weak comparison, ``*`` matches any).
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Response
from litestar.openapi import ResponseSpec
from litestar.params import HeaderParameter
from litestar.status_codes import HTTP_200_OK, HTTP_304_NOT_MODIFIED

from shared_kernel.entity_tags import (
    ENTITY_TAGS_MAX_LENGTH,
    ENTITY_TAGS_PATTERN,
    entity_tags_of,
    etag,
)

IfNoneMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-None-Match",
        required=False,
        pattern=ENTITY_TAGS_PATTERN,
        max_length=ENTITY_TAGS_MAX_LENGTH,
        description='ETags the client holds ("3", a list, or *): 304 while one still matches.',
    ),
]

NOT_MODIFIED = ResponseSpec(
    data_container=None, description="Not Modified: the resource is at a version the client named"
)


def conditional(view: Any, version: int, if_none_match: str | None) -> Response[Any]:
    """``view`` with its ETag, or a bodiless 304 when ``If-None-Match`` names its version."""
    tag = etag(version)
    if if_none_match is not None and entity_tags_of("If-None-Match", if_none_match).weakly_match(
        version
    ):
        return Response(None, status_code=HTTP_304_NOT_MODIFIED, headers={"ETag": tag})
    return Response(view, status_code=HTTP_200_OK, headers={"ETag": tag})
