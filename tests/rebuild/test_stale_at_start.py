"""A projection whose definition changed (its version) is flagged stale, or rebuilt, at start-up.

The recorded version of ``currency_totals`` is set to 0, as if its live tables
had been built by an older version of its code. Flagged, the projector leaves
it alone (its checkpoint and rows stay as the old code left them, so it never
serves a mix of shapes) while the others go on; rebuilt, it comes back at
the code's version, equal to the fold of the store.
"""

from __future__ import annotations

import httpx
import psycopg
import pytest

from tests.rebuild.support import TOKEN, versions, write_history
from tests.support.ledger_writer import LedgerWriter
from tests.support.processes import Stack
from tests.support.reference_fold import (
    checkpoints,
    expected_read_models,
    live_read_models,
    store_head,
    wait_until_projected,
)
from tests.support.streams import wait_for


def others_at_head(database_url: str) -> bool:
    reached = checkpoints(database_url)
    reached.pop("currency_totals")
    return min(reached.values()) >= store_head(database_url)


@pytest.mark.processes
def test_a_changed_version_is_flagged_stale_or_rebuilt_at_start(
    database_url: str, stack: Stack, writer: LedgerWriter
) -> None:
    write_history(writer, seed=41, events=50)
    stack.extra_env.update(
        ADMIN_TOKEN=TOKEN, IDLE_CATCH_UP_SECONDS="0.2", ON_STALE_PROJECTION="flag"
    )
    projector = stack.process("projector").start()
    wait_until_projected(database_url)
    projector.stop()
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE projection_checkpoints SET version = 0 WHERE projection = 'currency_totals'"
        )
    frozen_at = checkpoints(database_url)["currency_totals"]
    old_totals = live_read_models(database_url).totals
    writer.write_random(30, seed=42)

    projector.start()
    wait_for(lambda: others_at_head(database_url), what="the other projections at the head")

    status = httpx.get(
        f"{projector.url}/admin/projections", headers={"Authorization": f"Bearer {TOKEN}"}
    ).json()["projections"]
    [totals] = [p for p in status if p["name"] == "currency_totals"]
    assert (totals["state"], totals["version"], totals["live_tables_version"]) == ("stale", 1, 0)
    assert totals["lag_events"] == store_head(database_url) - frozen_at > 0
    assert checkpoints(database_url)["currency_totals"] == frozen_at
    assert live_read_models(database_url).totals == old_totals
    assert "flagged stale" in projector.logs()
    projector.stop()

    projector.env["ON_STALE_PROJECTION"] = "rebuild"
    projector.start()
    wait_for(
        lambda: versions(database_url)["currency_totals"] == 1
        and checkpoints(database_url)["currency_totals"] >= store_head(database_url),
        timeout=60,
        what="currency_totals rebuilt at start-up",
    )
    assert live_read_models(database_url) == expected_read_models(database_url)
    assert "rebuilding it" in projector.logs()
