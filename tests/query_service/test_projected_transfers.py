"""Transfers recorded in the event store, through relay and projector, read back over HTTP.

The histories come from ``tests.support.transfer_writer`` (the published
language, not the saga's code), so this checks the whole read side on its own:
what the query service answers with ``min_position`` equals the reference fold.
"""

from __future__ import annotations

from uuid import UUID

import httpx
import pytest

from tests.support.ledger_writer import LedgerWriter
from tests.support.processes import Stack
from tests.support.reference_fold import expected_read_models, store_head
from tests.support.transfer_writer import TransferWriter

pytestmark = pytest.mark.processes


def test_transfers_statements_and_totals_answer_as_the_fold(
    stack: Stack, database_url: str
) -> None:
    stack.start("relay", "projector", "query")
    writer = LedgerWriter(database_url)
    try:
        transfers = TransferWriter(writer)
        alice, bob, carol = (writer.open(name) for name in ("alice", "bob", "carol"))
        dollars = writer.open("dan", currency="USD")
        writer.deposit(alice, 1_000)
        writer.deposit(dollars, 75)
        done = transfers.transfer(alice, bob, 400)
        writer.close(carol)
        refunded = transfers.transfer(alice, carol, 100, "refunded")
        failed = transfers.transfer(bob, alice, 10_000, "failed")
        pending = transfers.transfer(bob, alice, 50, "debited")
    finally:
        writer.close_store()
    head = store_head(database_url)
    expected = expected_read_models(database_url)
    fresh = {"min_position": head}

    with httpx.Client(base_url=stack.process("query").url, timeout=30) as http:
        for transfer_id, row in expected.transfers.items():
            body = http.get(f"/transfers/{transfer_id}", params=fresh).json()
            assert (body["status"], body["reason"], body["amount"], body["version"]) == (
                row.status, row.reason, row.amount, row.version,
            )  # fmt: skip
            assert (UUID(body["from_account"]), UUID(body["to_account"])) == (
                row.from_account, row.to_account,
            )  # fmt: skip
        statuses = {t: expected.transfers[t].status for t in (done, refunded, failed, pending)}
        assert list(statuses.values()) == ["completed", "refunded", "failed", "debited"]

        listed = http.get(f"/accounts/{alice}/transfers", params=fresh).json()["items"]
        assert [UUID(item["transfer_id"]) for item in listed] == [pending, failed, refunded, done]

        lines = http.get(f"/accounts/{alice}/transactions", params=fresh).json()["items"]
        assert [(line["kind"], line["amount"], line["balance_after"]) for line in lines] == [
            ("refund", 100, 600), ("transfer_out", 100, 500), ("transfer_out", 400, 600),
            ("deposit", 1_000, 1_000),
        ]  # fmt: skip
        assert (lines[0]["counterparty"], lines[0]["transfer_id"]) == (str(carol), str(refunded))

        totals = http.get("/totals", params=fresh)
        assert int(totals.headers["x-projection-position"]) >= head
        assert {
            item["currency"]: (item["balance"], item["accounts"], item["open_accounts"],
                               item["closed_accounts"])
            for item in totals.json()["currencies"]
        } == {
            currency: (row.balance, row.accounts, row.open_accounts, row.closed_accounts)
            for currency, row in expected.totals.items()
        }  # fmt: skip
        assert expected.totals["EUR"].balance == 1_000 - 50  # the pending debit is in flight
