"""Gzip for large answers only, as the services configure it (no database needed)."""

from __future__ import annotations

import gzip

import pytest
from litestar import Litestar, Response, get
from litestar.params import FromPath
from litestar.response import Stream
from litestar.testing import TestClient

from query_service.contract import QUERY_CONTRACT
from shared_kernel.openapi_contract import http_options

MINIMUM = http_options("t", "d", QUERY_CONTRACT)["compression_config"].minimum_size


@get("/sized/{size:int}", sync_to_thread=False)
def sized(size: FromPath[int]) -> Response[bytes]:
    return Response(b"x" * size, media_type="text/plain")


@get("/streamed", sync_to_thread=False)
def streamed() -> Stream:
    # Two body parts, the first one small: compressed all the same.
    return Stream(iter([b"x" * 10, b"y" * (2 * MINIMUM)]), media_type="text/plain")


def client() -> TestClient[Litestar]:
    app = Litestar([sized, streamed], **http_options("t", "d", QUERY_CONTRACT))
    return TestClient(app)


@pytest.mark.parametrize("size", [0, 1, MINIMUM - 1])
def test_a_small_body_is_sent_as_is_to_a_client_accepting_gzip(size: int) -> None:
    with client() as http:
        answer = http.get(f"/sized/{size}", headers={"Accept-Encoding": "gzip"})
    assert answer.status_code == 200
    assert "content-encoding" not in answer.headers
    assert answer.headers["content-length"] == str(size)
    assert answer.content == b"x" * size


@pytest.mark.parametrize("size", [MINIMUM, 4 * MINIMUM])
def test_a_large_body_is_gzipped_for_a_client_accepting_it(size: int) -> None:
    with client() as http:
        answer = http.get(f"/sized/{size}", headers={"Accept-Encoding": "gzip"})
        plain = http.get(f"/sized/{size}", headers={"Accept-Encoding": "identity"})
    assert answer.headers["content-encoding"] == "gzip"
    assert "Accept-Encoding" in answer.headers["vary"]
    assert answer.content == b"x" * size  # the test client decodes it
    assert "content-encoding" not in plain.headers


def test_a_streamed_body_is_gzipped_from_its_first_part() -> None:
    gzip_accepted = {"Accept-Encoding": "gzip"}
    with client() as http, http.stream("GET", "/streamed", headers=gzip_accepted) as answer:
        raw = b"".join(answer.iter_raw())
    assert answer.headers["content-encoding"] == "gzip"
    assert gzip.decompress(raw) == b"x" * 10 + b"y" * (2 * MINIMUM)
