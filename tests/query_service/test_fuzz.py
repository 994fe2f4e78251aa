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
# Text PostgreSQL cannot store: a NUL anywhere in it.
nul_text = st.builds(lambda a, b: f"{a}\x00{b}", any_text, any_text)
# Deep nesting: a parameter is flat text, but a parser that recursed on brackets would not be.
deep_text = st.integers(min_value=100, max_value=2_000).map(lambda n: "[" * n + "{" * n)
values = st.one_of(numbers, words, any_text, nul_text, deep_text)
# Percent-escapes sent as they are: a NUL, UTF-8 encoded surrogates, overlong forms.
raw_queries = st.lists(
    st.builds(
        "{}={}".format,
        st.sampled_from([*PARAMETERS, "a%00b"]),
        st.sampled_from(["%00", "%ED%A0%80", "%ED%BF%BF", "%C0%80", "x%00y", "%F4%90%80%80"]),
    ),
    max_size=2,
).map("&".join)
account_ids = st.one_of(
    st.uuids().map(str),
    st.sampled_from(["%00", "al%00ice", "%ED%A0%80", "a%00" * 50]),
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
    route=st.sampled_from(
        ["account", "statement", "accounts", "transfer", "transfers", "totals", "owner", "owners"]
    ),
    account_id=account_ids,
    params=st.dictionaries(st.sampled_from(PARAMETERS), values, max_size=4),
    min_position_header=st.none() | header_values,
    raw_query=raw_queries,
)
def test_no_query_input_makes_a_server_error(
    query_service: QueryService,
    *,
    route: str,
    account_id: str,
    params: dict[str, str],
    min_position_header: str | None,
    raw_query: str,
) -> None:
    path = {
        "account": f"/accounts/{account_id}",
        "statement": f"/accounts/{account_id}/transactions",
        "accounts": "/accounts",
        "transfer": f"/transfers/{account_id}",
        "transfers": f"/accounts/{account_id}/transfers",
        "totals": "/totals",
        "owner": f"/owners/{account_id}",
        "owners": "/owners",
    }[route]
    if raw_query:
        path = f"{path}?{raw_query}"
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
    sent_nul = "%00" in str(response.request.url) or any("\x00" in k + v for k, v in params.items())
    if sent_nul and response.status_code != 404:  # a route matched: the NUL is refused
        assert response.status_code == 422, (path, params, response.text)
        assert response.json()["code"] == "validation-failed"
