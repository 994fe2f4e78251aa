"""``kill -9`` of ``python -m projector.rebuild`` halfway: the live model stays, a rerun resumes.

The test holds the rebuild's row locked (``FOR UPDATE``) from the moment it
reads half the events done, so the rebuild's next batch (which updates that
row in its own transaction) waits, and the kill lands mid-rebuild by
construction rather than by timing.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from bench.history import fill_store
from projector.rebuild.rebuilder import APPLICATION_NAME
from tests.rebuild.support import project, schemas, table_oid
from tests.support.processes import PROJECT_ROOT
from tests.support.reference_fold import (
    checkpoints,
    expected_read_models,
    live_read_models,
)
from tests.support.sql import value
from tests.support.streams import wait_for

REBUILD = [sys.executable, "-m", "projector.rebuild", "account_balances", "--no-progress"]


def rebuild_env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return env | {"DATABASE_URL": database_url, "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"}


def rebuild_backends(database_url: str) -> int:
    query = (
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE application_name = %s AND datname = current_database()"
    )
    return int(value(database_url, query, (APPLICATION_NAME,)))


def kill_when_half_done(process: subprocess.Popen[bytes], database_url: str) -> tuple[int, int]:
    """kill -9 the rebuild once its row says half the events are done; (done, total) then."""
    with psycopg.connect(database_url) as conn:
        while True:
            assert process.poll() is None, "the rebuild ended before it was half done"
            with conn.transaction():
                row = conn.execute(
                    "SELECT events_done, events_total FROM projection_rebuilds"
                    " ORDER BY id DESC LIMIT 1 FOR UPDATE"
                ).fetchone()
                if row is not None and row[1] and 2 * row[0] >= row[1]:
                    process.send_signal(signal.SIGKILL)
                    process.wait(timeout=30)
                    return int(row[0]), int(row[1])


@pytest.mark.processes
def test_a_rebuild_killed_halfway_leaves_the_live_model_and_resumes(
    database_url: str, stream_name: str, tmp_path: Path
) -> None:
    fill_store(database_url, 8_000, accounts=150, seed=3)
    asyncio.run(project(database_url, f"{stream_name}:dead-letter"))
    before, reached = live_read_models(database_url), checkpoints(database_url)
    live_table = table_oid(database_url, "account_balances")
    log_path = tmp_path / "rebuild.log"
    env = rebuild_env(database_url)

    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [*REBUILD, "--batch-size", "40"], cwd=PROJECT_ROOT, env=env, stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        done, total = kill_when_half_done(process, database_url)
    assert process.returncode == -signal.SIGKILL
    assert 0 < done < total
    wait_for(lambda: rebuild_backends(database_url) == 0, what="the killed rebuild's session gone")

    # the live read model never saw the rebuild
    assert live_read_models(database_url) == before
    assert checkpoints(database_url) == reached
    assert table_oid(database_url, "account_balances") == live_table
    with psycopg.connect(database_url) as conn:
        rebuild_id, state, built = conn.execute(
            "SELECT id, state, events_done FROM projection_rebuilds"
        ).fetchone() or (0, "", 0)
        copied = conn.execute(f'SELECT count(*) FROM "rebuild_{rebuild_id}".account_balances')
        assert (copied.fetchone() or (0,))[0] > 0
    assert (state, built) == ("building", done)
    assert schemas(database_url) == {f"rebuild_{rebuild_id}"}

    rerun = subprocess.run(
        [*REBUILD, "--batch-size", "500"], cwd=PROJECT_ROOT, env=env, capture_output=True,
        text=True, timeout=300, check=False,
    )  # fmt: skip

    assert rerun.returncode == 0, log_path.read_text() + rerun.stdout + rerun.stderr
    assert f"rebuild {rebuild_id} of account_balances" in rerun.stdout
    assert "resumed at position" in rerun.stderr
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT id, state, events_done, events_total FROM projection_rebuilds")
        assert rows.fetchall() == [(rebuild_id, "swapped", total, total)]
    assert table_oid(database_url, "account_balances") != live_table
    assert live_read_models(database_url) == expected_read_models(database_url) == before
    assert schemas(database_url) == {f"retired_{rebuild_id}"}
