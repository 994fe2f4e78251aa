"""Every make target and ops/services.sh read `.env` (ENV_FILE), and services.sh claims no start
it did not make.

The targets run for real against a temporary `.env` that points at a scratch database
or at ports where nothing listens, with no URL in the environment, so what they print
and change can only have come from the file.
"""

from __future__ import annotations

import re
import subprocess
from contextlib import suppress
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
import redis

from tests.support.infra import (
    POSTGRES_SERVER_URL,
    environ_without_urls,
    free_port,
    scratch_database,
)

ROOT = Path(__file__).resolve().parents[2]
#: Targets whose recipes run the project's python (or supervisord) and must see `.env`.
PYTHON_TARGETS = (
    "migrate",
    "run",
    "status",
    "replay",
    "republish",
    "rebuild",
    "dead-letters",
    "bench",
    "bench-tracing",
    "pytest",
)


def env_file(tmp_path: Path, **values: str) -> Path:
    path = tmp_path / "test.env"
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()), "utf-8")
    return path


def run(*command: str, timeout: float = 180, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(command),
        cwd=ROOT,
        env={**environ_without_urls(), "SERVICES_WAIT_SECONDS": "5", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_make_migrate_applies_the_schema_to_the_database_env_names(tmp_path: Path) -> None:
    with scratch_database(migrated=False) as url:
        dbname = urlsplit(url).path.lstrip("/")
        dotenv = env_file(tmp_path, DATABASE_URL=url)
        completed = run("make", "--no-print-directory", "migrate", f"ENV_FILE={dotenv}")
        assert completed.returncode == 0, completed.stdout + completed.stderr
        assert f"to database {dbname}" in completed.stdout, completed.stdout
        with psycopg.connect(url) as conn:
            (applied,) = conn.execute("SELECT count(*) FROM schema_migrations").fetchone() or (0,)
        assert applied > 0


def test_make_status_checks_the_servers_env_names(tmp_path: Path) -> None:
    port = free_port()
    dotenv = env_file(
        tmp_path, DATABASE_URL=POSTGRES_SERVER_URL, REDIS_URL=f"redis://127.0.0.1:{port}/0"
    )
    completed = run("make", "--no-print-directory", "status", f"ENV_FILE={dotenv}")
    assert completed.returncode != 0
    assert f"Redis does not answer at 127.0.0.1:{port}" in completed.stderr, completed.stderr


@pytest.mark.parametrize("target", PYTHON_TARGETS)
def test_every_python_step_of_a_target_runs_with_the_env_file(target: str, tmp_path: Path) -> None:
    dotenv = env_file(tmp_path, DATABASE_URL=POSTGRES_SERVER_URL)
    completed = run(
        "make", "--dry-run", "--no-print-directory", target, f"ENV_FILE={dotenv}",
        "STREAM=x", "PROJECTION=x", "FROM=0",
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    steps = [
        line
        for line in completed.stdout.splitlines()
        if re.search(r"\.venv/bin/(python -m (?!pip)|supervisord)", line)
    ]
    assert steps, completed.stdout
    loader = f".venv/bin/dotenv -f {dotenv} run --no-override -- "
    for step in steps:
        assert loader in step, step


def test_services_starts_only_what_will_answer_and_says_so(tmp_path: Path) -> None:
    pg_port, redis_port = free_port(), free_port()
    dotenv = env_file(
        tmp_path,
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:{pg_port}/ledger",
        REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
    )
    completed = run("bash", "ops/services.sh", "ensure", ENV_FILE=str(dotenv))
    client = redis.Redis(port=redis_port, socket_connect_timeout=2)
    try:
        assert completed.returncode == 1  # PostgreSQL could not be started
        lines = completed.stderr.strip().splitlines()
        # No cluster here is configured for that port: it says so and claims nothing.
        assert any(
            line.startswith(f"PostgreSQL does not answer at 127.0.0.1:{pg_port}")
            and "was not started here: no PostgreSQL cluster" in line
            for line in lines
        ), lines
        assert not any("started PostgreSQL" in line for line in lines), lines
        # Redis can be started on any port: it is claimed only because it answers there.
        claim = "services: started Redis (log: /var/log/redis/ci.log), answering at"
        assert f"{claim} 127.0.0.1:{redis_port}" in lines, lines
        assert client.ping()
    finally:
        with suppress(redis.ConnectionError):
            client.shutdown(nosave=True)  # the server this test had started
        client.close()


def test_services_without_dotenv_installed_refuses_rather_than_ignore_env(tmp_path: Path) -> None:
    dotenv = env_file(tmp_path, REDIS_URL="redis://127.0.0.1:1/0")
    script = tmp_path / "ops" / "services.sh"
    script.parent.mkdir()
    script.write_text((ROOT / "ops" / "services.sh").read_text("utf-8"), "utf-8")
    completed = run("bash", str(script), "check", ENV_FILE=str(dotenv))
    assert completed.returncode == 2
    assert "python-dotenv is not installed" in completed.stderr
