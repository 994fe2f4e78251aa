"""Fuzzed POSTs to the command service: bodies, Idempotency-Keys, If-Match. Never a 5xx.

Every answer is a 2xx or a 4xx problem document, whatever JSON (or not
JSON) a client sends, to whichever POST route, with whatever key.
"""

from __future__ import annotations

import string
from typing import Any

import httpx
import msgspec
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared_kernel.language.money import MAX_AMOUNT
from tests.transfers.commands import open_account

pytestmark = pytest.mark.processes

FIELDS = ("from_account", "to_account", "amount", "currency", "owner", "reference", "account_id")
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, MAX_AMOUNT, MAX_AMOUNT + 1, 2**63]),
    st.floats(allow_nan=False),
)
texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts, st.uuids().map(str))
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
bodies = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), scalars, max_size=5),
    json_values,
)
# What msgspec cannot encode (lone surrogates) or PostgreSQL cannot store (NUL), written
# as JSON escapes into raw bodies: in a field's value, in a field's name.
unstorable = st.sampled_from(["\\u0000", "\\ud800", "\\udfff", "a\\u0000b", "\\udc00x"])
unstorable_bodies = st.builds(
    lambda field, bad, in_name: (
        f'{{"{field}{bad}": 1}}' if in_name else f'{{"{field}": "{bad}", "amount": 5}}'
    ).encode(),
    st.sampled_from(FIELDS),
    unstorable,
    st.booleans(),
)
# Nested far beyond any recursion limit, yet under the body size limit.
deep_bodies = st.builds(
    lambda depth, inside: (b'{"owner": ' if inside else b"") + b"[" * depth,
    st.integers(min_value=500, max_value=7_000),
    st.booleans(),
)
raw_bodies = st.none() | st.binary(max_size=30) | unstorable_bodies | deep_bodies
keys = st.one_of(
    st.none(),
    # What HTTP can carry in a header: visible ASCII, spaces and tabs inside.
    st.text(string.ascii_letters + string.digits + string.punctuation + " \t", max_size=12).map(
        str.strip
    ),
    st.sampled_from(["fuzz-key-1", "fuzz-key-2", "x" * 255, "x" * 256]),
)
if_match = st.one_of(st.none(), st.sampled_from(['"1"', "2", 'W/"3"', "*", "abc", '"-1"']))


@pytest.fixture(scope="module")
def accounts(client: httpx.Client) -> dict[str, str]:
    return {"eur": open_account(client, deposit=1_000), "usd": open_account(client, "USD")}


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    route=st.sampled_from(["transfers", "open", "deposits", "withdrawals", "close"]),
    body=bodies,
    use_known_accounts=st.booleans(),
    idempotency_key=keys,
    version=if_match,
    raw=raw_bodies,
)
def test_no_command_input_makes_a_server_error(
    client: httpx.Client,
    accounts: dict[str, str],
    ledger_database: str,
    *,
    route: str,
    body: Any,
    use_known_accounts: bool,
    idempotency_key: str | None,
    version: str | None,
    raw: bytes | None,
) -> None:
    if use_known_accounts and isinstance(body, dict):
        body = {**body, "from_account": accounts["eur"]}
        body.setdefault("to_account", accounts["usd"])
    account = accounts["eur"] if use_known_accounts else "not-a-uuid"
    path = {
        "transfers": "/transfers",
        "open": "/accounts",
        "deposits": f"/accounts/{account}/deposits",
        "withdrawals": f"/accounts/{account}/withdrawals",
        "close": f"/accounts/{account}/close",
    }[route]
    headers = {"content-type": "application/json"}
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    if version is not None:
        headers["If-Match"] = version
    content = raw if raw is not None else msgspec.json.encode(body)

    response = client.post(path, content=content, headers=headers)

    assert response.status_code < 500, (path, content, response.text)
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"]
    assert unstorable_events(ledger_database) == 0, (path, content, response.text)


def unstorable_events(database_url: str) -> int:
    """Stored events whose JSON holds a NUL or a surrogate escape (a projection could not
    write them)."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM ledger_events"
            " WHERE convert_from(state, 'UTF8') ~* '\\\\u(0000|d[89a-f])'"
        ).fetchone()
    assert row is not None
    return int(row[0])
