"""What the projector's OpenAPI document says about ``/admin/...``, beyond the handlers.

The admin routes take a bearer token (the ``adminToken`` security scheme);
every refusal is a problem document: 401 without the token, 403 when the
routes are off, 404 for an unknown projection, 409 while one of its rebuilds
runs, 503 (with ``Retry-After``) when PostgreSQL cannot be reached. The
answer of a started rebuild links to starting it again (a 409 while it runs)
and to the status of every projection.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import SecurityScheme
from litestar.params import Parameter
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_401_UNAUTHORIZED,
    HTTP_403_FORBIDDEN,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
    HTTP_503_SERVICE_UNAVAILABLE,
)

from projector.projections import PROJECTIONS
from projector.rebuild.records import State
from shared_kernel.openapi_contract import RETRY_AFTER, Contract, header, link, problem_response

#: The scheme the admin routes' ``security`` names.
ADMIN_SCHEMES = {
    "adminToken": SecurityScheme(
        type="http",
        scheme="bearer",
        description="The projector's ADMIN_TOKEN; with none configured the routes answer 403.",
    )
}
ADMIN_SECURITY: list[dict[str, list[str]]] = [{"adminToken": []}]
UNAUTHORIZED_CHALLENGE = 'Bearer realm="ledger-admin"'


class ProjectionStatus(msgspec.Struct, kw_only=True):
    """One projection as ``python -m projector.rebuild --status`` shows it."""

    name: str
    version: int
    live_tables_version: int
    tables: list[str]
    checkpoint: int
    partitions: list[int]
    """Each partition's checkpoint, partition 0 first; ``checkpoint`` is the lowest."""
    store_head: int
    lag_events: int
    lag_seconds: float
    last_event_at: str | None
    state: str
    stale: bool
    rebuild: dict[str, Any] | None


class ProjectionList(msgspec.Struct, kw_only=True):
    projections: list[ProjectionStatus]


class RebuildAccepted(msgspec.Struct, kw_only=True):
    """A claimed rebuild; ``status`` is where its progress shows."""

    rebuild_id: int
    projection: str
    state: State
    status: str


ProjectionName = Annotated[
    str,
    Parameter(
        description="The projection to rebuild (404 for any other name).",
        schema_extra={"enum": [projection.NAME for projection in PROJECTIONS]},
    ),
]

_GUARDED: dict[int, ResponseSpec] = {
    HTTP_401_UNAUTHORIZED: problem_response(
        "unauthorized: no bearer token, or not the projector's ADMIN_TOKEN"
    ),
    HTTP_403_FORBIDDEN: problem_response("admin-disabled: ADMIN_TOKEN is not set"),
    HTTP_503_SERVICE_UNAVAILABLE: problem_response(
        "database-unavailable: PostgreSQL cannot be reached; retry after Retry-After"
    ),
}
LIST_RESPONSES = _GUARDED
REBUILD_RESPONSES = {
    **_GUARDED,
    # Litestar documents a 400 for every handler with parameters; a path cannot fail here.
    HTTP_400_BAD_REQUEST: problem_response("bad-request: the request could not be parsed"),
    HTTP_404_NOT_FOUND: problem_response("projection-not-found: no projection of this name"),
    HTTP_409_CONFLICT: problem_response("rebuild-running: a rebuild of it runs already"),
}

ADMIN_CONTRACT = Contract(
    headers={
        "*": {
            "401": {
                "WWW-Authenticate": header("The bearer challenge.", enum=[UNAUTHORIZED_CHALLENGE])
            },
            "503": {"Retry-After": RETRY_AFTER},
        },
    },
    links={
        ("rebuildProjection", "202"): {
            "again": link(
                "rebuildProjection",
                "Start it again: 409 while this rebuild runs",
                name="$response.body#/projection",
            ),
            "status": link("listProjections", "Every projection and its last rebuild"),
        },
    },
)
