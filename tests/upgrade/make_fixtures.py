"""Writes the stores the upgrade test opens, each by the release that wrote such stores.

    .venv/bin/python -m tests.upgrade.make_fixtures [COMMIT ...]   (default: every RELEASES)

For each commit: a detached ``git worktree`` of it, a scratch database that
commit's own migrations create, and that commit's own processes (command
service, transfer saga, outbox relay, projector, query service) driven over
HTTP through one fixed-seed history: accounts in three currencies, deposits
and withdrawals (some with idempotency keys), transfers that complete and
transfers refused for want of funds, an account with enough events for
several snapshots, accounts emptied and closed. Once every transfer is
terminal and every projection has reached the head, the processes stop and
``pg_dump`` writes the database to ``fixtures/<commit>.sql.gz``.

Each release runs with its own ``.venv`` (``make install`` in its tree: the
versions its ``uv.lock`` names, or what its ``pyproject.toml`` allows when it
has no lock), not with this checkout's: an old release may import a library
this code dropped (4ce8e21's ``shared_kernel.language.money`` imports ``pycountry``).
Run it as a module from this checkout's root, so that ``tests`` imports. The
history is driven by code running inside the old tree (``--inside``), with
that tree's own test helpers and nothing of this checkout. The saga runs
beside the driver, so a rerun may see a transfer or two fail that passed
before; the test asserts the store's shape, not its exact counts.
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis

# Inside an old tree (``--inside``) these are that release's own helpers.
from tests.support.infra import REDIS_URL, scratch_database, unique_stream_name
from tests.support.processes import Stack

#: The releases whose stores this code must open: the first release, and the code
#: just before events could evolve (every deposit stored as ``MoneyDeposited.v1``).
RELEASES = ("4ce8e21", "ea97c2b")
FIXTURES = Path(__file__).resolve().parent / "fixtures"
REPOSITORY = Path(__file__).resolve().parents[2]
SEED = 20261204
OWNERS = ("alice", "bob", "carol", "dan", "erin", "frank", "grace", "heidi")
CURRENCIES = ("EUR", "USD", "JPY")
TERMINAL = {"completed", "refunded", "failed"}


def fixture_path(commit: str) -> Path:
    return FIXTURES / f"{commit}.sql.gz"


def write_fixture(commit: str) -> Path:
    """Check ``commit`` out beside this one and let its own code write the store."""
    out = fixture_path(commit)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"ledger-{commit}-") as scratch:
        tree = Path(scratch) / "tree"
        git = ["git", "-C", str(REPOSITORY)]
        subprocess.run([*git, "worktree", "add", "--detach", str(tree), commit], check=True)
        try:
            # The release's own libraries, at the versions its lock named.
            subprocess.run(["make", "install"], cwd=tree, check=True)
            env = {**os.environ, "PYTHONPATH": str(tree)}
            env.pop("DATABASE_URL", None)
            env.pop("VIRTUAL_ENV", None)
            python = str(tree / ".venv" / "bin" / "python")
            subprocess.run([python, __file__, "--inside", str(out)], cwd=tree, env=env, check=True)
        finally:
            subprocess.run([*git, "worktree", "remove", "--force", str(tree)], check=True)
    return out


# --- what runs inside the old tree (its `tests` package is the one imported) ---


class _Driver:
    """Sends one fixed-seed history of commands; remembers what it needs to stay valid."""

    def __init__(self, client: Any, command_url: str, query_url: str) -> None:
        self.http = client
        self.command = command_url
        self.query = query_url
        self.rng = random.Random(SEED)
        self.accounts: dict[str, str] = {}  # id -> currency
        self.transfers: list[str] = []
        self.refused: dict[int, int] = {}
        self.position = 0

    def post(self, path: str, body: dict[str, Any] | None = None, **headers: str) -> Any:
        response = self.http.post(f"{self.command}{path}", json=body, headers=headers)
        if response.status_code >= 500:
            raise RuntimeError(f"POST {path}: {response.status_code} {response.text}")
        if response.status_code >= 400:
            self.refused[response.status_code] = self.refused.get(response.status_code, 0) + 1
            return None
        answer = response.json()
        self.position = max(self.position, int(answer.get("position", 0)))
        return answer

    def balance(self, account: str) -> int:
        params = {"min_position": self.position}
        response = self.http.get(f"{self.query}/accounts/{account}", params=params)
        response.raise_for_status()
        return int(response.json()["balance"])

    def open_accounts(self, count: int) -> None:
        for index in range(count):
            body = {"owner": OWNERS[index % len(OWNERS)], "currency": CURRENCIES[index % 3]}
            answer = self.post("/accounts", body)
            self.accounts[str(answer["account_id"])] = body["currency"]

    def step(self) -> None:
        account = self.rng.choice(list(self.accounts))
        roll = self.rng.random()
        amount = self.rng.randint(1, 900)
        headers = {"Idempotency-Key": f"upgrade-{self.rng.getrandbits(64):x}"}
        if roll < 0.55:
            reference = f"invoice {self.rng.randint(1, 99)}" if roll < 0.2 else None
            self.post(f"/accounts/{account}/deposits", {"amount": amount, "reference": reference},
                      **(headers if roll < 0.3 else {}))  # fmt: skip
        elif roll < 0.85:
            self.post(f"/accounts/{account}/withdrawals", {"amount": amount // 2 + 1})
        else:
            currency = self.accounts[account]
            peers = [a for a, c in self.accounts.items() if c == currency and a != account]
            body = {"from_account": account, "to_account": self.rng.choice(peers),
                    "amount": amount}  # fmt: skip
            answer = self.post("/transfers", body)
            if answer is not None:
                self.transfers.append(str(answer["transfer_id"]))

    def wait_terminal(self) -> None:
        deadline = time.monotonic() + 120
        for transfer in self.transfers:
            while True:
                url = f"{self.query}/transfers/{transfer}"
                shown = self.http.get(url, params={"min_position": self.position})
                if shown.status_code == 200 and shown.json()["status"] in TERMINAL:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"transfer {transfer} not terminal: {shown.text}")
                time.sleep(0.05)

    def empty_and_close(self, account: str, head: int) -> None:
        self.position = max(self.position, head)
        balance = self.balance(account)
        if balance:
            self.post(f"/accounts/{account}/withdrawals", {"amount": balance})
        self.post(f"/accounts/{account}/close")


def _wait_projected(database_url: str) -> int:
    """Wait until every projection reached the store's head; returns the head."""
    deadline = time.monotonic() + 120
    with psycopg.connect(database_url, autocommit=True) as conn:
        while True:
            head = conn.execute("SELECT COALESCE(MAX(notification_id), 0) FROM ledger_events")
            checkpoints = conn.execute("SELECT MIN(position) FROM projection_checkpoints")
            at, reached = head.fetchone(), checkpoints.fetchone()
            if at and reached and reached[0] is not None and reached[0] >= at[0]:
                return int(at[0])
            if time.monotonic() > deadline:
                raise TimeoutError(f"projections at {reached} of {at}")
            time.sleep(0.05)


def write_inside(out: Path) -> None:
    """Run in the old tree: its stack, the history, then the dump."""
    stream = unique_stream_name()
    with scratch_database() as url, tempfile.TemporaryDirectory() as logs:
        stack = Stack(database_url=url, stream_name=stream, log_dir=Path(logs),
                      extra_env={"SNAPSHOT_INTERVAL": "5"})  # fmt: skip
        try:
            stack.start()
            with httpx.Client(timeout=30.0) as client:
                driver = _Driver(client, stack.process("command").url, stack.process("query").url)
                driver.open_accounts(30)
                hot = next(iter(driver.accounts))
                for _ in range(60):
                    driver.post(f"/accounts/{hot}/deposits", {"amount": 7})
                for _ in range(400):
                    driver.step()
                driver.wait_terminal()
                for account in list(driver.accounts)[-3:]:
                    driver.empty_and_close(account, _wait_projected(url))
            _wait_projected(url)
        except BaseException:
            print(stack.logs(), file=sys.stderr)
            raise
        finally:
            stack.stop()
            client_redis = redis.Redis.from_url(REDIS_URL)
            for key in client_redis.scan_iter(match=f"{stream}*"):
                client_redis.delete(key)
            client_redis.close()
        dump = subprocess.run(
            ["pg_dump", "--no-owner", "--no-privileges", "--dbname", url],
            check=True, capture_output=True,
        )  # fmt: skip
    out.write_bytes(gzip.compress(dump.stdout, mtime=0))
    print(f"{out.name}: {len(driver.transfers)} transfers, refused {driver.refused}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("commits", nargs="*", default=list(RELEASES))
    parser.add_argument("--inside", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inside is not None:
        write_inside(args.inside)
        return 0
    for commit in args.commits:
        print(f"wrote {write_fixture(commit)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
