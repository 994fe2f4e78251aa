"""A NUL in any parameter of a query is a 422 naming it, before any wait or read.

Over real HTTP a query or path parameter can carry a NUL (``%00``); a lone
surrogate cannot (percent-decoding replaces invalid UTF-8 with U+FFFD, which
PostgreSQL stores fine). Raw NUL bytes in a header are refused by the HTTP
server itself (400) before the application sees them, so the header check,
which guards against a server that lets them through, is exercised by calling
the real application in-process, against the real database.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from query_service.bootstrap import build_app
from query_service.settings import QueryServiceSettings
from tests.query_service.conftest import QueryService
from tests.query_service.test_account_queries import assert_problem
from tests.support.infra import REDIS_URL, scratch_database

pytestmark = pytest.mark.processes


def assert_names(body: dict[str, Any], source: str, key: str) -> None:
    assert [(e.get("source"), e.get("key")) for e in body["errors"]] == [(source, key)], body


@pytest.mark.parametrize(
    ("path", "source", "key"),
    [
        ("/accounts?owner=a%00b", "query", "owner"),
        ("/accounts?status=open%00", "query", "status"),
        ("/accounts?cursor=%00abc", "query", "cursor"),
        ("/accounts?min_balance=1%00", "query", "min_balance"),
        ("/accounts?limit=5&no%00te=1", "query", "no\\u0000te"),
        ("/owners?cursor=x%00", "query", "cursor"),
        ("/owners/al%00ice", "path", "owner"),
        ("/owners/al%00ice?min_position=10", "path", "owner"),
        ("/totals?min_position=1%00", "query", "min_position"),
    ],
)
def test_a_nul_in_a_parameter_is_a_validation_problem_naming_it(
    query_service: QueryService, path: str, source: str, key: str
) -> None:
    response = query_service.client.get(path)

    body = assert_problem(response, 422, "validation-failed")
    assert_names(body, source, key)
    assert "x-projection-position" in response.headers


@pytest.mark.parametrize("raw", ["%ED%A0%80", "%ED%B0%80", "%C0%80"])
def test_encoded_surrogates_decode_to_storable_text(query_service: QueryService, raw: str) -> None:
    response = query_service.client.get(f"/accounts?owner=a{raw}b")

    assert response.status_code == 200, response.text
    assert response.json()["items"] == []


@pytest.mark.parametrize("header", ["X-Min-Position", "X-Correlation-ID", "If-None-Match"])
def test_a_raw_nul_in_a_header_is_refused_by_the_server(
    query_service: QueryService, header: str
) -> None:
    url = query_service.client.base_url
    conn = http.client.HTTPConnection(str(url.host), url.port, timeout=10)
    try:
        conn.request("GET", "/totals", headers={header: "1\x00"})
        status = conn.getresponse().status
    finally:
        conn.close()

    assert status == 400


@pytest.fixture(scope="module")
def in_process() -> Iterator[TestClient[Any]]:
    with scratch_database() as database_url:
        settings = QueryServiceSettings(database_url=database_url, redis_url=REDIS_URL)
        with TestClient(build_app(settings)) as client:
            yield client


@pytest.mark.parametrize("header", ["X-Min-Position", "X-Correlation-ID", "X-Anything"])
def test_a_nul_in_a_header_is_a_validation_problem_naming_it(
    in_process: TestClient[Any], header: str
) -> None:
    response = in_process.get("/totals", headers={header: "1\x00"})

    body = assert_problem(response, 422, "validation-failed")  # type: ignore[arg-type]
    assert_names(body, "header", header.lower())
