"""The shell entry points: the service check `make run` and CI share, and `.ci/run`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.infra import POSTGRES_SERVER_URL, REDIS_URL

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "ops" / "services.sh"


def run_services(mode: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SERVICES), mode],
        env={**os.environ, "SERVICES_WAIT_SECONDS": "2", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("script", ["ops/services.sh", ".ci/run"])
def test_scripts_are_executable_bash(script: str) -> None:
    path = ROOT / script
    assert os.access(path, os.X_OK), f"chmod +x {script}"
    subprocess.run(["bash", "-n", str(path)], check=True)


def test_check_passes_when_both_servers_answer() -> None:
    completed = run_services("check", DATABASE_URL=POSTGRES_SERVER_URL, REDIS_URL=REDIS_URL)
    assert completed.returncode == 0, completed.stderr


def test_one_clear_line_per_missing_server() -> None:
    completed = run_services(
        "ensure",
        DATABASE_URL="postgresql://postgres@db.invalid:5432/ledger",
        REDIS_URL="redis://cache.invalid:6379/0",
    )
    assert completed.returncode == 1
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("PostgreSQL does not answer at db.invalid:5432")
    assert lines[1].startswith("Redis does not answer at cache.invalid:6379")


def test_make_run_checks_migrates_then_supervises() -> None:
    completed = subprocess.run(
        ["make", "--dry-run", "--always-make", "run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    steps = completed.stdout
    assert steps.index("ops/services.sh ensure") < steps.index("schema.migrate")
    assert steps.index("schema.migrate") < steps.index("supervisord -c ops/supervisord.conf")


def test_ci_fails_when_make_test_fails() -> None:
    text = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "set -euo pipefail" in text
    assert "ops/services.sh ensure" in text
    assert "make test" in text
