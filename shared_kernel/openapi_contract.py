"""What litestar's generated OpenAPI document cannot say by itself, added once per service.

Litestar documents routes, parameters and bodies from the handlers; it has no
place for the response headers a middleware or hook adds (``X-Correlation-ID``,
``X-Projection-Position``, ``Retry-After``), for OpenAPI links between
operations, or for ``additionalProperties: false`` on bodies the services
refuse or never send extra members in. :func:`openapi_config` serves the
document with a :class:`Contract` applied, so the published schema is what a
client (or Schemathesis) finds on the wire.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
from litestar import Request
from litestar.config.compression import CompressionConfig
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from shared_kernel.observability import CORRELATION_HEADER
from shared_kernel.small_bodies import CompressionAboveMinimum

#: A header as OpenAPI declares it in a response.
Header = dict[str, Any]


def header(description: str, *, required: bool = True, **schema: Any) -> Header:
    return {
        "description": description,
        "required": required,
        "schema": schema or {"type": "string"},
    }


CORRELATION_ID = header("The request's X-Correlation-ID, or the one generated for it.")
RETRY_AFTER = header("Seconds to wait before retrying.", required=False, type="integer", minimum=0)
ETAG = header('The resource\'s version as a strong entity tag, like "3".', pattern='^"[0-9]+"$')


class ProblemDocument(msgspec.Struct, kw_only=True, omit_defaults=True):
    """RFC 9457 problem details (``shared_kernel.problems``); ``code`` is the member to branch on.

    Open: a problem type adds members of its own (``errors``, ``current_version``, ...).
    """

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None


def problem_response(description: str, document: type[Any] = ProblemDocument) -> ResponseSpec:
    """An ``application/problem+json`` answer of ``document``'s shape, for ``responses=``."""
    return ResponseSpec(
        data_container=document,
        description=description,
        media_type="application/problem+json",
        generate_examples=False,
    )


@dataclass(frozen=True)
class Contract:
    """Additions to a generated document.

    ``headers``: per operationId (``"*"`` for every operation), per status
    (``"*"`` for every status), the headers the responses carry.
    ``links``: per (operationId, status), the OpenAPI links of that response.
    ``open_schemas``: component schemas that may carry members they do not list
    (problem documents); every other object schema gets ``additionalProperties: false``.
    ``properties``: per component schema and property, keywords to add (an ``enum``
    that a validator checks in code).
    """

    headers: Mapping[str, Mapping[str, Mapping[str, Header]]] = field(default_factory=dict)
    links: Mapping[tuple[str, str], Mapping[str, Any]] = field(default_factory=dict)
    open_schemas: frozenset[str] = frozenset({"ProblemDocument"})
    properties: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)

    def apply(self, document: dict[str, Any]) -> dict[str, Any]:
        """A refined copy of ``document``."""
        document = copy.deepcopy(document)
        for name, schema in document.get("components", {}).get("schemas", {}).items():
            if name not in self.open_schemas and schema.get("type") == "object":
                schema["additionalProperties"] = False
            for prop, keywords in self.properties.get(name, {}).items():
                schema["properties"][prop].update(keywords)
        for item in document.get("paths", {}).values():
            for operation in item.values():
                if isinstance(operation, dict) and "responses" in operation:
                    self._refine(operation)
        return document

    def _refine(self, operation: dict[str, Any]) -> None:
        operation_id = operation.get("operationId", "")
        everywhere, own = self.headers.get("*", {}), self.headers.get(operation_id, {})
        for status, response in operation["responses"].items():
            declared = response.setdefault("headers", {})
            for table in (everywhere, own):
                declared.update(table.get("*", {}))
                declared.update(table.get(status, {}))
            declared.setdefault(CORRELATION_HEADER, CORRELATION_ID)
            links = self.links.get((operation_id, status))
            if links:
                response["links"] = dict(links)


class _ContractJson(JsonRenderPlugin):
    """Serves the document with the contract applied (computed once)."""

    def __init__(self, contract: Contract) -> None:
        super().__init__(path=["/openapi.json", "/"])
        self._contract = contract
        self._rendered: bytes | None = None

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        if self._rendered is None:
            self._rendered = self.render_json(request, self._contract.apply(openapi_schema))
        return self._rendered


def http_options(
    title: str,
    description: str,
    contract: Contract,
    *,
    security_schemes: Mapping[str, SecurityScheme] | None = None,
) -> dict[str, Any]:
    """``Litestar(...)`` options of an HTTP service: its OpenAPI document at ``/schema`` and
    ``/schema/openapi.json`` with ``contract`` applied, and gzip for large answers.
    ``security_schemes`` are named by the ``security`` of the routes that need them."""
    return {
        "openapi_config": OpenAPIConfig(
            title=title,
            version="0.1.0",
            description=description,
            path="/schema",
            render_plugins=[_ContractJson(contract)],
            components=Components(security_schemes=dict(security_schemes or {})),
        ),
        # /metrics is compressed by prometheus-client's own app when the scraper asks.
        "compression_config": CompressionConfig(
            backend="gzip",
            minimum_size=1024,
            exclude=["/metrics"],
            middleware_class=CompressionAboveMinimum,
        ),
    }


def link(operation_id: str, description: str, **parameters: str) -> dict[str, Any]:
    """An OpenAPI link to ``operation_id`` whose parameters come from this response."""
    return {"operationId": operation_id, "description": description, "parameters": parameters}
