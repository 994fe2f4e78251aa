"""The machine's ceiling: pgbench doing one-row INSERT transactions on the same server.

An event append is, at bottom, one INSERT into a table shaped like
``ledger_events`` committed by one transaction; no HTTP service can beat that
on the same PostgreSQL server with the same number of clients. The run uses a
scratch database of its own (created and dropped here), never the ledger's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

#: The same columns, key and index as the event store, so one row costs the same.
TABLE_DDL = """
CREATE TABLE bench_appends (
    originator_id uuid NOT NULL,
    originator_version bigint NOT NULL,
    topic text,
    state bytea,
    notification_id bigserial,
    PRIMARY KEY (originator_id, originator_version)
);
CREATE UNIQUE INDEX bench_appends_notification_id_idx ON bench_appends (notification_id);
"""

#: One transaction of the pgbench script: one row, about the size of a deposit event.
SCRIPT = (
    "INSERT INTO bench_appends (originator_id, originator_version, topic, state)"
    " VALUES (gen_random_uuid(), 1, 'ledger.MoneyDeposited.v2',"
    " convert_to(repeat('x', 250), 'UTF8'));\n"
)

_TPS = re.compile(r"^tps = ([0-9.]+) \((.*)\)$", re.MULTILINE)
_LATENCY = re.compile(r"^latency average = ([0-9.]+) ms$", re.MULTILINE)
_PROCESSED = re.compile(r"^number of transactions actually processed: (\d+)", re.MULTILINE)
_FAILED = re.compile(r"^number of failed transactions: (\d+)", re.MULTILINE)


class CeilingUnavailable(RuntimeError):
    """pgbench is missing or could not run; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class PgbenchResult:
    tps: float
    latency_avg_ms: float | None
    transactions: int | None
    failed: int


@dataclass(frozen=True, slots=True)
class Ceiling:
    tps: float
    latency_avg_ms: float | None
    transactions: int | None
    failed: int
    clients: int
    threads: int
    seconds: float
    server_version: str
    samples_tps: tuple[float, ...] = ()
    """Every pgbench run behind ``tps`` (see :func:`higher_of`); empty for one run."""


def higher_of(before: Ceiling, after: Ceiling) -> Ceiling:
    """The higher of two runs around the stack's load, both kept in ``samples_tps``.

    This machine's speed drifts by a third within an hour: one run before the load
    may catch a slow spell the load then does not have, and flatter the ratio. The
    higher of a run before and one after holds the stack to the faster machine.
    """
    higher = after if after.tps > before.tps else before
    return replace(higher, samples_tps=(before.tps, after.tps))


def parse_pgbench_output(output: str) -> PgbenchResult:
    """Read tps (excluding connection set-up when pgbench reports both) and latency."""
    rates = _TPS.findall(output)
    if not rates:
        msg = f"no 'tps = ' line in pgbench output:\n{output}"
        raise ValueError(msg)
    tps = float(rates[-1][0])
    for value, qualifier in rates:
        if "without initial connection" in qualifier or "excluding" in qualifier:
            tps = float(value)
    latency = _LATENCY.search(output)
    processed = _PROCESSED.search(output)
    failed = _FAILED.search(output)
    return PgbenchResult(
        tps=tps,
        latency_avg_ms=float(latency.group(1)) if latency else None,
        transactions=int(processed.group(1)) if processed else None,
        failed=int(failed.group(1)) if failed else 0,
    )


def _with_database(database_url: str, dbname: str) -> str:
    return urlunsplit(urlsplit(database_url)._replace(path=f"/{dbname}"))


def measure_ceiling(database_url: str, clients: int, seconds: float) -> Ceiling:
    """Run pgbench against a scratch database on ``database_url``'s server."""
    pgbench = shutil.which("pgbench")
    if pgbench is None:
        msg = "pgbench is not installed (apt-get install postgresql-client)"
        raise CeilingUnavailable(msg)
    parts = urlsplit(database_url)
    maintenance_url = _with_database(database_url, "postgres")
    dbname = f"ledger_bench_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(maintenance_url, autocommit=True) as conn:
            server_version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    except psycopg.Error as error:
        msg = f"cannot create a scratch database on {parts.hostname}:{parts.port or 5432}: {error}"
        raise CeilingUnavailable(msg) from error
    threads = max(1, min(clients, os.cpu_count() or 1))
    try:
        with psycopg.connect(_with_database(database_url, dbname), autocommit=True) as conn:
            conn.execute(TABLE_DDL)
        with tempfile.TemporaryDirectory() as folder:
            script = Path(folder) / "append.sql"
            script.write_text(SCRIPT, encoding="utf-8")
            command = [
                pgbench, "--no-vacuum", "--file", str(script),
                "--client", str(clients), "--jobs", str(threads),
                "--time", str(max(1, round(seconds))),
                "--host", parts.hostname or "127.0.0.1", "--port", str(parts.port or 5432),
                "--username", unquote(parts.username or "postgres"), dbname,
            ]  # fmt: skip
            env = dict(os.environ)
            if parts.password:
                env["PGPASSWORD"] = unquote(parts.password)
            completed = subprocess.run(
                command, capture_output=True, text=True, env=env, timeout=seconds + 60, check=False
            )
        if completed.returncode != 0:
            msg = f"pgbench failed ({completed.returncode}): {completed.stderr.strip()[-500:]}"
            raise CeilingUnavailable(msg)
        result = parse_pgbench_output(completed.stdout)
    finally:
        with psycopg.connect(maintenance_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )
    return Ceiling(
        tps=result.tps,
        latency_avg_ms=result.latency_avg_ms,
        transactions=result.transactions,
        failed=result.failed,
        clients=clients,
        threads=threads,
        seconds=max(1, round(seconds)),
        server_version=server_version,
    )
