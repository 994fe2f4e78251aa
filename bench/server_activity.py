"""What PostgreSQL did on its own during a phase: checkpoints, WAL written, autovacuum runs.

Latency that jumps for a second or two at once, for every request, is often
not the ledger's code but the server writing a checkpoint or vacuuming a big
table. The phase's report counts them (differences of PostgreSQL's own
statistics, before and after), so a stall in the plot can be told apart.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg

_SAMPLE = (
    "SELECT (SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter),"
    " (SELECT buffers_checkpoint FROM pg_stat_bgwriter),"
    " pg_current_wal_lsn() - '0/0'::pg_lsn,"
    " (SELECT coalesce(sum(autovacuum_count + autoanalyze_count), 0) FROM pg_stat_user_tables)"
)


@dataclass(frozen=True, slots=True)
class ServerActivity:
    checkpoints: int
    checkpoint_buffers: int
    wal_bytes: int
    autovacuum_runs: int

    def since(self, earlier: ServerActivity) -> dict[str, int]:
        """The counts between ``earlier`` and this sample (WAL in MiB)."""
        return {
            "checkpoints": self.checkpoints - earlier.checkpoints,
            "checkpoint_buffers_written": self.checkpoint_buffers - earlier.checkpoint_buffers,
            "wal_mib": (self.wal_bytes - earlier.wal_bytes) // (1024 * 1024),
            "autovacuum_and_analyze_runs": self.autovacuum_runs - earlier.autovacuum_runs,
        }


def server_activity(database_url: str) -> ServerActivity:
    """The counters now (checkpoints and WAL server-wide; autovacuum in this database)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(_SAMPLE).fetchone()
    assert row is not None
    return ServerActivity(*(int(value) for value in row))


def settle_server(database_url: str) -> dict[str, float | str]:
    """Leave no work of a fill behind: VACUUM (ANALYZE) the database, then CHECKPOINT.

    A phase after a million-event fill would otherwise pay for the fill's
    autovacuum and checkpoint and call it the cost of the store's size. Seconds
    each took; a server that refuses CHECKPOINT (no pg_checkpoint role) says why.
    """
    settled: dict[str, float | str] = {}
    with psycopg.connect(database_url, autocommit=True) as conn:
        for statement in ("VACUUM (ANALYZE)", "CHECKPOINT"):
            began = time.perf_counter()
            try:
                conn.execute(statement)
            except psycopg.errors.InsufficientPrivilege as error:
                settled[statement] = f"refused: {error}"
                continue
            settled[statement] = round(time.perf_counter() - began, 1)
    return settled
