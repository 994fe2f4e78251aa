"""Rebuilding beside the live tables, verified, swapped, rolled back: the rebuild's own code.

These drive :class:`~projector.rebuild.rebuilder.Rebuild` in this process
against real PostgreSQL, on a history with every kind of event; the tests
under load and with ``kill -9`` run the real processes (see the other modules).
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import AsyncConnection

from projector.projections import PROJECTIONS, projection_named
from projector.rebuild.rebuilder import Rebuild, RebuildOptions, RebuildRunning
from projector.rebuild.records import RebuildRecord
from projector.rebuild.retired import NothingToRollBack, drop_old, rollback
from projector.verification import verify
from tests.rebuild.support import project, schemas, table_oid, versions, write_history
from tests.support.ledger_writer import LedgerWriter
from tests.support.reference_fold import (
    checkpoints,
    expected_read_models,
    live_read_models,
    store_head,
)

#: Small batches, so even these short histories take many of them.
OPTIONS = RebuildOptions(batch_size=7, swap_within=0)
BALANCES = projection_named("account_balances")


async def rebuild(database_url: str, name: str, **kwargs: Any) -> RebuildRecord:
    job = Rebuild(database_url, projection_named(name), OPTIONS, **kwargs)
    await job.claim()
    return await job.run()


async def test_every_projection_rebuilt_beside_and_swapped_equals_the_fold(
    database_url: str, stream_name: str, writer: LedgerWriter
) -> None:
    write_history(writer, seed=11)
    await project(database_url, f"{stream_name}:dead-letter")
    before = live_read_models(database_url)
    old_tables = {t: table_oid(database_url, t) for p in PROJECTIONS for t in p.TABLES}

    for projection in PROJECTIONS:
        final = await rebuild(database_url, projection.NAME)
        assert final.state == "swapped", final.error
        assert final.report is not None and final.report["ok"]
        assert final.events_done == final.events_total == len(writer_events(database_url))

    assert live_read_models(database_url) == expected_read_models(database_url) == before
    for table, oid in old_tables.items():
        assert table_oid(database_url, table) != oid, f"{table} was not swapped"
    assert len(schemas(database_url)) == len(PROJECTIONS)  # one retired_<id> each
    head = store_head(database_url)
    assert set(checkpoints(database_url).values()) == {head}
    assert versions(database_url) == {p.NAME: p.VERSION for p in PROJECTIONS}


def writer_events(database_url: str) -> list[Any]:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT notification_id FROM ledger_events").fetchall()


async def test_a_rebuilt_row_that_differs_from_the_fold_refuses_the_swap(
    database_url: str, stream_name: str, writer: LedgerWriter
) -> None:
    write_history(writer, seed=12)
    await project(database_url, f"{stream_name}:dead-letter")
    victim = next(iter(writer.accounts))
    before = live_read_models(database_url)
    oid = table_oid(database_url, "account_balances")
    reached = checkpoints(database_url)

    async def corrupt(conn: AsyncConnection[Any], record: RebuildRecord) -> None:
        await conn.execute(
            f'UPDATE "{record.beside_schema}".account_balances SET balance = balance + 1'
            " WHERE account_id = %s",
            (victim,),
        )

    final = await rebuild(database_url, "account_balances", before_verify=corrupt)

    assert final.state == "refused"
    assert final.error is not None and str(victim) in final.error
    assert final.report is not None and not final.report["ok"]
    [table] = final.report["tables"]
    assert [row["account_id"] for row in table["only_rebuilt"]] == [str(victim)]
    assert [row["account_id"] for row in table["only_expected"]] == [str(victim)]
    assert int(table["only_rebuilt"][0]["balance"]) == int(table["only_expected"][0]["balance"]) + 1
    # the live read model never moved
    assert table_oid(database_url, "account_balances") == oid
    assert live_read_models(database_url) == before
    assert checkpoints(database_url) == reached
    assert schemas(database_url) == {final.beside_schema}  # kept to inspect; nothing retired


async def test_a_wrong_fold_is_caught_by_the_verification(
    database_url: str, stream_name: str, writer: LedgerWriter
) -> None:
    write_history(writer, seed=13, events=30)
    await project(database_url, f"{stream_name}:dead-letter")
    head = store_head(database_url)
    wrong = {"account_balances": BALANCES.REFERENCE["account_balances"] + " LIMIT 3"}
    async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
        right = await verify(conn, BALANCES, "public", head)
        verdict = await verify(conn, BALANCES, "public", head, reference=wrong)

    assert right.ok, right.describe()
    assert not verdict.ok
    [check] = verdict.tables
    assert (check.rows, check.expected_rows) == (len(writer.accounts), 3)
    assert len(check.only_rebuilt) == min(len(writer.accounts) - 3, 20)
    assert check.only_expected == []


async def test_rollback_puts_back_the_replaced_tables_caught_up(
    database_url: str, stream_name: str, writer: LedgerWriter
) -> None:
    write_history(writer, seed=14)
    await project(database_url, f"{stream_name}:dead-letter")
    old = table_oid(database_url, "account_balances")
    swapped = await rebuild(database_url, "account_balances")
    assert swapped.state == "swapped"
    rebuilt = table_oid(database_url, "account_balances")
    writer.write_random(40, seed=15)  # the live projector goes on, in the rebuilt tables
    await project(database_url, f"{stream_name}:dead-letter")

    rolled_back = await rollback(database_url, BALANCES, OPTIONS)

    assert rolled_back.state == "rolled_back"
    assert table_oid(database_url, "account_balances") == old
    assert live_read_models(database_url) == expected_read_models(database_url)
    assert checkpoints(database_url)["account_balances"] == store_head(database_url)
    with pytest.raises(NothingToRollBack):
        await rollback(database_url, BALANCES, OPTIONS)
    # the rebuilt tables are kept until dropped
    assert schemas(database_url) == {swapped.beside_schema}
    kept = f'"{swapped.beside_schema}".account_balances'
    assert table_oid(database_url, kept) == rebuilt
    assert await drop_old(database_url, "account_balances") == [swapped.beside_schema]
    assert schemas(database_url) == set()


async def test_one_rebuild_per_projection_and_a_stopped_one_resumes(
    database_url: str, stream_name: str, writer: LedgerWriter
) -> None:
    write_history(writer, seed=16)
    await project(database_url, f"{stream_name}:dead-letter")
    first = Rebuild(database_url, BALANCES, OPTIONS)
    claimed = await first.claim()
    with pytest.raises(RebuildRunning):
        await Rebuild(database_url, BALANCES, OPTIONS).claim()
    other = Rebuild(database_url, projection_named("transfers"), OPTIONS)
    await other.claim()  # another projection is not in the way
    await other.close()
    await first.close()  # stopped before building anything: the row stays resumable

    again = Rebuild(database_url, BALANCES, OPTIONS)
    resumed = await again.claim()
    final = await again.run()

    assert resumed.id == claimed.id
    assert final.state == "swapped"
    assert live_read_models(database_url) == expected_read_models(database_url)


async def test_a_stale_projection_is_left_alone_until_rebuilt(
    database_url: str, stream_name: str, writer: LedgerWriter
) -> None:
    write_history(writer, seed=17)
    await project(database_url, f"{stream_name}:dead-letter")
    frozen_at = checkpoints(database_url)["account_balances"]
    with psycopg.connect(database_url) as conn:  # as if the code's version had moved on
        conn.execute(
            "UPDATE projection_checkpoints SET version = 0 WHERE projection = 'account_balances'"
        )
    old_rows = live_read_models(database_url).balances
    writer.write_random(40, seed=18)

    await project(database_url, f"{stream_name}:dead-letter")

    reached = checkpoints(database_url)
    head = store_head(database_url)
    assert reached.pop("account_balances") == frozen_at
    assert set(reached.values()) == {head}
    assert live_read_models(database_url).balances == old_rows  # no new rows in an old shape

    final = await rebuild(database_url, "account_balances")

    assert final.state == "swapped"
    assert final.retired_version == 0
    assert versions(database_url)["account_balances"] == BALANCES.VERSION
    assert checkpoints(database_url)["account_balances"] == head
    assert live_read_models(database_url) == expected_read_models(database_url)
