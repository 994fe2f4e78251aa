"""Time travel over an event the projection code refuses says the state is incomplete.

The live projector blocks such a stream (see ``tests/projector/test_blocked_stream.py``),
so its reads answer 503 ``read-model-blocked``; a time-travelled read of it is
the same problem, never a 200 that lacks the event, and ``make replay AT=``
prints an ``INCOMPLETE`` line and exits 3. Two poisons, written straight into
the store: an account opened with a NUL in its owner (``account_balances``
refuses the opening), and a deposit with a NUL in its reference (only
``account_transactions`` stores it: the balance stays complete).
"""

from __future__ import annotations

import io
import json

import httpx
import psycopg
import pytest

from projector.time_travel.cli import EXIT_INCOMPLETE, run
from tests.projector.test_blocked_stream import POISONED_OWNER
from tests.support.ledger_writer import LedgerWriter
from tests.support.processes import Stack

pytestmark = pytest.mark.processes


def travel(database_url: str, stream: object, at: int, *extra: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run([str(stream), "--at", str(at), "--database-url", database_url, *extra], out, err)
    return code, out.getvalue(), err.getvalue()


def test_time_travel_over_a_refused_event_answers_that_the_state_is_incomplete(
    stack: Stack, writer: LedgerWriter
) -> None:
    database_url = stack.database_url
    poisoned = writer.open(owner=POISONED_OWNER)
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT notification_id FROM ledger_events WHERE originator_id = %s", (poisoned,)
        ).fetchone()
    assert row is not None
    opened_at = row[0]
    writer.deposit(poisoned, 10)
    mixed = writer.open(owner="erin")
    before = writer.deposit(mixed, 10, reference="fine")
    refused_at = writer.deposit(mixed, 20, reference="bad\x00ref")
    after = writer.deposit(mixed, 5)
    stack.start("query")
    url = f"{stack.process('query').url}/accounts"

    # The balance cannot be shown: the same problem as a live read of a blocked stream.
    answer = httpx.get(f"{url}/{poisoned}", params={"as_of": after}, timeout=15)
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.headers["retry-after"] == "60"
    problem = answer.json()
    assert problem["code"] == "read-model-blocked"
    [blocked] = problem["blocked"]
    assert blocked["projection"] == "account_balances"
    assert blocked["stream_id"] == str(poisoned)
    assert "NUL" in blocked["reason"]
    assert blocked["position"] == opened_at
    code, out, err = travel(database_url, poisoned, after)
    assert code == EXIT_INCOMPLETE, out + err
    assert f"INCOMPLETE: account_balances refuses the event at position {opened_at}" in out
    assert "account_balances (0 rows):" in out

    # A balance the refused reference does not touch is complete; the statement is not.
    answer = httpx.get(f"{url}/{mixed}", params={"as_of": after}, timeout=15)
    assert answer.status_code == 200, answer.text
    assert answer.json()["balance"] == 35
    code, out, err = travel(database_url, mixed, after, "--format", "json")
    assert code == EXIT_INCOMPLETE, out + err
    record = json.loads(out)
    assert record["complete"] is False
    [refused] = record["refused"]
    assert (refused["projection"], refused["position"]) == ("account_transactions", refused_at)
    # As the projector does: the stream's later events are held, not applied around the gap.
    assert [line["position"] for line in record["tables"]["account_transactions"]] == [before]
    assert f"INCOMPLETE: account_transactions refuses the event at position {refused_at}" in err

    # Before the refused event, the state is complete.
    code, out, err = travel(database_url, mixed, before)
    assert code == 0, out + err
    assert "INCOMPLETE" not in out + err
