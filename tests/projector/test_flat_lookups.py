"""A batch's statement-line lookup reads O(batch) rows, not an account's whole history.

The plan is asked from PostgreSQL itself (EXPLAIN ANALYZE, BUFFERS) on a
scratch database where one account holds 20k statement lines: what the scans
of ``account_transactions`` return and the pages they touch must not depend on
that history. The same holds for the time-travel twins and a rebuild's copies,
which are created ``LIKE`` the live table with its indexes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from projector.projections.account_transactions import LAST_BALANCES
from projector.time_travel.scratch import CHUNK, SELECT_STREAM
from shared_kernel.settings import EVENTS_TABLE

HISTORY = 20_000

_FILL = (
    "INSERT INTO account_transactions (position, account_id, version, kind, amount, currency,"
    " balance_after, reference, recorded_at)"
    " SELECT %(base)s + v, %(account)s, v, 'deposit', 1, 'EUR', v, NULL, now()"
    " FROM generate_series(2, %(history)s + 1) AS v"
)


#: A hot stream interleaved with another one, as the store holds them (bytes are never decoded).
_FILL_EVENTS = (
    f"INSERT INTO {EVENTS_TABLE} (originator_id, originator_version, topic, state)"
    " SELECT CASE WHEN n %% 2 = 0 THEN %(hot)s::uuid ELSE %(cold)s::uuid END, n / 2 + 1, 'x',"
    " '\\x7b7d'::bytea FROM generate_series(0, 2 * %(history)s - 1) AS n ORDER BY n"
)


def _scans(plan: dict[str, Any], table: str) -> Iterator[dict[str, Any]]:
    """Every node of ``plan`` that reads ``table``."""
    if plan.get("Relation Name") == table:
        yield plan
    for child in plan.get("Plans", []):
        yield from _scans(child, table)


def _rows_read(scans: list[dict[str, Any]]) -> int:
    """Rows the scans produced plus those their filters threw away, over all their loops."""
    return sum(
        (node["Actual Rows"] + node.get("Rows Removed by Filter", 0)) * node["Actual Loops"]
        for node in scans
    )


def _explain(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...]) -> dict[str, Any]:
    row = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {query}", params).fetchone()
    assert row is not None
    document = row[0] if isinstance(row[0], list) else json.loads(row[0])
    return dict(document[0]["Plan"])


@pytest.mark.parametrize("analyzed", [True, False], ids=["analyzed", "no-statistics"])
def test_the_last_balance_lookup_reads_one_line_per_account(
    database_url: str, analyzed: bool
) -> None:
    hot, warm, unknown = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(_FILL, {"base": 0, "account": hot, "history": HISTORY})
        conn.execute(_FILL, {"base": 10 * HISTORY, "account": warm, "history": 3})
        if analyzed:
            conn.execute("ANALYZE account_transactions")

        rows = conn.execute(LAST_BALANCES, ([hot, warm, unknown],)).fetchall()
        plan = _explain(conn, LAST_BALANCES, ([hot, warm, unknown],))

    assert dict(rows) == {hot: HISTORY + 1, warm: 4}
    scans = list(_scans(plan, "account_transactions"))
    assert scans, json.dumps(plan, indent=1)
    read = _rows_read(scans)
    pages = sum(node["Shared Hit Blocks"] + node["Shared Read Blocks"] for node in scans)
    assert read <= 3, f"the lookup read {read} lines for 3 accounts: {json.dumps(plan)}"
    # Three index descents of a 20k-row btree touch a handful of pages (not ~150 heap pages).
    assert pages <= 20, f"the lookup touched {pages} pages: {json.dumps(plan)}"
    assert all(node["Node Type"].startswith("Index") for node in scans), json.dumps(plan)


def test_time_travel_reads_a_hot_stream_chunk_by_chunk(database_url: str) -> None:
    hot, cold = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(_FILL_EVENTS, {"hot": hot, "cold": cold, "history": HISTORY})
        conn.execute(f"ANALYZE {EVENTS_TABLE}")
        # A chunk from the middle of the stream, the log standing at its end.
        params = (hot, HISTORY // 2, 2 * HISTORY + 1, CHUNK)
        rows = conn.execute(SELECT_STREAM, params).fetchall()
        plan = _explain(conn, SELECT_STREAM, params)

    assert [row[2] for row in rows] == list(range(HISTORY // 2 + 1, HISTORY // 2 + 1 + CHUNK))
    scans = list(_scans(plan, EVENTS_TABLE))
    read = _rows_read(scans)
    assert read == CHUNK, f"a chunk of {CHUNK} read {read} events: {json.dumps(plan)}"
    assert all(node["Node Type"].startswith("Index") for node in scans), json.dumps(plan)
