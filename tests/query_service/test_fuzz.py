"""Fuzzed query strings, headers and ids: every answer is 2xx or a 4xx problem, never 5xx."""

from __future__ import annotations

import string

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.query_service.conftest import QueryService

pytestmark = pytest.mark.processes

PARAMETERS = (
    "limit", "cursor", "owner", "status", "min_balance", "min_position", "as_of", "extra",
)  # fmt: skip

# Texts a client might send: numbers at and past every boundary, words, and
# arbitrary unicode (surrogates excluded, as no HTTP client can encode them).
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, 50, 500, 2**63 - 1, 2**63, -(2**63)]),
).map(str)
words = st.sampled_from(["open", "closed", "", "null", "true", "1.5", "1e3", "NaN", " 1", "\uff10"])
any_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=60)
values = st.one_of(numbers, words, any_text)
account_ids = st.one_of(
    st.uuids().map(str),
    st.text(string.ascii_letters + string.digits + "-_.~%", min_size=1, max_size=40),
)
header_text = st.text(string.ascii_letters + string.digits + string.punctuation + " ", max_size=30)
# Header values are what HTTP can carry: visible ASCII, no surrounding whitespace.
header_values = st.one_of(numbers, words, header_text).map(str.strip).filter(str.isascii)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    route=st.sampled_from(["account", "statement", "accounts", "transfer", "transfers", "totals"]),
    account_id=account_ids,
    params=st.dictionaries(st.sampled_from(PARAMETERS), values, max_size=4),
    min_position_header=st.none() | header_values,
)
def test_no_query_input_makes_a_server_error(
    query_service: QueryService,
    route: str,
    account_id: str,
    params: dict[str, str],
    min_position_header: str | None,
) -> None:
    path = {
        "account": f"/accounts/{account_id}",
        "statement": f"/accounts/{account_id}/transactions",
        "accounts": "/accounts",
        "transfer": f"/transfers/{account_id}",
        "transfers": f"/accounts/{account_id}/transfers",
        "totals": "/totals",
    }[route]
    headers = {} if min_position_header is None else {"X-Min-Position": min_position_header}

    try:
        response = query_service.client.get(path, params=params, headers=headers)
    except httpx.InvalidURL:
        return  # the client refuses to send it, so the server never sees it

    assert response.status_code < 500, (path, params, headers, response.text)
    assert "x-projection-position" in response.headers
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["status"] == response.status_code
