"""A process that cannot use its servers at start says where and why in one line, and exits 1.

Each of the five processes is started for real against real servers: a free
port with nothing listening, a database that does not exist, a role that does
not exist (on the shared PostgreSQL), and Redis on a free port.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from shared_kernel.startup import postgres_problem, redis_problem
from tests.support.infra import POSTGRES_SERVER_URL, REDIS_URL, environ_without_urls, free_port
from tests.support.postgres_server import private_postgres
from tests.support.processes import SERVICES
from tests.support.redis_server import private_redis

#: How each process names itself in its lines.
PROCESS_NAMES = {
    "command": "command_service",
    "relay": "relay",
    "saga": "transfer_saga",
    "projector": "projector",
    "query": "query_service",
}
#: The processes that use Redis (the saga follows the event store only).
USES_REDIS = ("command", "relay", "projector", "query")
PG = urlsplit(POSTGRES_SERVER_URL)
PG_WHERE = f"{PG.hostname}:{PG.port or 5432}"


def pg_url(*, user: str = "postgres", dbname: str = "postgres", port: int | None = None) -> str:
    return urlunsplit(PG._replace(netloc=f"{user}@{PG.hostname}:{port or PG.port or 5432}",
                                  path=f"/{dbname}"))  # fmt: skip


def every_role_at(url: str) -> dict[str, str]:
    """Each kind of process's database URL set to ``url``."""
    return {f"{kind}_DATABASE_URL": url for kind in ("WRITER", "PROJECTOR", "QUERY")}


def start(name: str, tmp_path: Path, **env: str) -> tuple[int, list[str], float]:
    """Run process ``name`` until it exits; its exit code, stderr lines and seconds taken."""
    began = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-m", SERVICES[name][0]],
        cwd=tmp_path,  # no .env here: only the test's environment counts
        env={**environ_without_urls(), "REDIS_URL": REDIS_URL, "LOG_FORMAT": "json", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return completed.returncode, completed.stderr.splitlines(), time.monotonic() - began


def assert_one_line_failure(
    name: str, outcome: tuple[int, list[str], float], *expected: str
) -> None:
    code, lines, seconds = outcome
    assert code == 1, (name, code, lines)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{PROCESS_NAMES[name]}: cannot start: "), lines
    for text in expected:
        assert text in lines[0], (text, lines[0])
    assert seconds < 10, f"{name} took {seconds:.1f}s to give up"


@pytest.mark.parametrize("name", list(SERVICES))
def test_nothing_listening_on_the_postgres_port(name: str, tmp_path: Path) -> None:
    port = free_port()
    outcome = start(name, tmp_path, DATABASE_URL=pg_url(port=port, dbname="ledger"))
    assert_one_line_failure(
        name, outcome, f"PostgreSQL at {PG.hostname}:{port}", "connection refused"
    )


@pytest.mark.parametrize("missing", ["database", "role"])
@pytest.mark.parametrize("name", list(SERVICES))
def test_a_database_or_role_that_does_not_exist(name: str, missing: str, tmp_path: Path) -> None:
    # The other of the two exists (the owner's role, its database) on the shared server.
    absent = f"ledger_missing_{uuid.uuid4().hex[:8]}"
    url = pg_url(dbname=absent) if missing == "database" else pg_url(user=absent)
    outcome = start(name, tmp_path, **every_role_at(url))
    expected = f'{missing} "{absent}" does not exist'
    assert_one_line_failure(name, outcome, f"PostgreSQL at {PG_WHERE}", expected)


@pytest.mark.parametrize("name", USES_REDIS)
def test_nothing_listening_on_the_redis_port(name: str, tmp_path: Path) -> None:
    port = free_port()
    redis_url = f"redis://127.0.0.1:{port}/0"
    outcome = start(name, tmp_path, REDIS_URL=redis_url, **every_role_at(pg_url()))
    assert_one_line_failure(name, outcome, f"Redis at 127.0.0.1:{port}", "connection refused")


def test_servers_that_answer_pass_the_check() -> None:
    assert postgres_problem(POSTGRES_SERVER_URL) is None
    assert redis_problem(REDIS_URL) is None
    problem = postgres_problem(pg_url(user=f"nobody_{uuid.uuid4().hex[:8]}"))
    assert problem is not None and "\n" not in problem


@pytest.mark.parametrize("name", USES_REDIS)
def test_a_redis_that_refuses_the_password(name: str, tmp_path: Path) -> None:
    with private_redis() as server:
        server.client().config_set("requirepass", "right-password")
        host_port = server.url.split("//", 1)[1].split("/", 1)[0]
        wrong = f"redis://:wrong-password@{host_port}/0"
        outcome = start(name, tmp_path, REDIS_URL=wrong, **every_role_at(pg_url()))
        assert_one_line_failure(name, outcome, f"Redis at {host_port}", "authentication failed")
        assert "wrong-password" not in outcome[1][0]
        assert redis_problem(f"redis://{host_port}/0") == (
            f"Redis at {host_port}: authentication failed: a password is required"
        )


def test_a_postgres_that_refuses_the_password(tmp_path: Path) -> None:
    with private_postgres() as server:
        with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
            conn.execute("CREATE ROLE app LOGIN PASSWORD 'right-password'")
            # Everyone but the superuser this test administers with must give a password.
            (server.data_dir / "pg_hba.conf").write_text(
                "host all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n",
                "utf-8",
            )
            conn.execute("SELECT pg_reload_conf()")
        where = f"PostgreSQL at 127.0.0.1:{server.port} (database postgres, user app)"
        wrong = f"postgresql://app:wrong-password@127.0.0.1:{server.port}/postgres"
        outcome = start("projector", tmp_path, PROJECTOR_DATABASE_URL=wrong)
        assert_one_line_failure("projector", outcome, where, 'authentication failed for "app"')
        assert "wrong-password" not in outcome[1][0]
        missing = f"postgresql://app@127.0.0.1:{server.port}/postgres"
        assert postgres_problem(missing) == (
            f"{where}: authentication failed: no password supplied"
        )
