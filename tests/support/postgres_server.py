"""A private PostgreSQL server for tests that restart, crash or freeze the database.

The shared server on 5432 is never stopped, paused or reconfigured by a test;
a test that needs that starts its own: ``initdb`` into a temporary folder,
trust authentication, listening on 127.0.0.1 on a free port only (no Unix
socket in a shared place), run by ``pg_ctl``. PostgreSQL refuses to run as
root, so when the tests run as root the folder is handed to the ``postgres``
OS user and every server command runs as that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Literal

import psycopg

from schema.migrate import migrate
from tests.support.infra import free_port

BIN_DIR = Path(os.environ.get("TEST_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))
SERVER_USER = "postgres"
#: Small and quick: a test server holds little, and shares 2 cores with others.
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "60",
    "shared_buffers": "32MB",
    # Only the server process dies in these tests, never the machine: WAL written to
    # the OS at commit (synchronous_commit) survives an immediate restart without fsync.
    "fsync": "off",
    "synchronous_commit": "on",
    "log_min_messages": "warning",
    "logging_collector": "off",
}


class PrivatePostgres:
    """One server: ``start``, ``restart(mode)``, ``pause(seconds)``, ``stop``; ``url(db)``."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="ledger-pg-"))
        self.data_dir = self.root / "data"
        self.log_file = self.root / "server.log"
        self._as_server_user = os.geteuid() == 0

    # -- addresses ----------------------------------------------------------------

    def url(self, dbname: str = "ledger", port: int | None = None) -> str:
        """The URL of ``dbname`` here (through ``port`` instead, e.g. a proxy in front)."""
        return f"postgresql://postgres@127.0.0.1:{port or self.port}/{dbname}"

    def migrated_database(self, dbname: str = "ledger") -> str:
        """Create ``dbname`` with the ledger's schema; its URL."""
        url = self.url(dbname)
        migrate(url)
        return url

    # -- life cycle ---------------------------------------------------------------

    def init(self) -> PrivatePostgres:
        if self._as_server_user:
            user = pwd.getpwnam(SERVER_USER)
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self._run(
            "initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust",
            "--no-sync", "-E", "UTF8", "--locale=C.UTF-8",
        )  # fmt: skip
        lines = [f"{name} = {value}" for name, value in SETTINGS.items()]
        lines += [f"port = {self.port}", f"unix_socket_directories = '{self.data_dir}'"]
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n".join(lines) + "\n")
        return self

    def init_standby_of(self, primary: PrivatePostgres) -> PrivatePostgres:
        """A hot standby streaming from ``primary``: ``pg_basebackup -R``, then its own port."""
        if self._as_server_user:
            user = pwd.getpwnam(SERVER_USER)
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self._run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
            "-D", str(self.data_dir), "-R", "-X", "stream", "--no-sync", "--checkpoint=fast",
        )  # fmt: skip
        lines = [f"port = {self.port}", f"unix_socket_directories = '{self.data_dir}'"]
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n".join(lines) + "\n")
        return self

    def start(self, timeout: float = 60.0) -> PrivatePostgres:
        if not self.data_dir.exists():
            self.init()
        self._run(
            "pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w",
            "-t", str(int(timeout)), "start",
        )  # fmt: skip
        self.wait_accepting(timeout)
        return self

    def stop(self, mode: Literal["smart", "fast", "immediate"] = "fast") -> None:
        if self.postmaster_pid() is None:
            return
        self._resume_all()  # a frozen server cannot shut down
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def restart(self, mode: Literal["fast", "immediate"] = "fast") -> float:
        """Stop (``fast``: clean shutdown; ``immediate``: like a crash, recovery at start)
        and start again; the seconds it was down."""
        began = time.monotonic()
        self.stop(mode)
        self.start()
        return time.monotonic() - began

    def pause(self, seconds: float) -> None:
        """SIGSTOP the postmaster and every backend for ``seconds``, then SIGCONT them.

        Connections stay open and nothing answers: a hung database, not a dead one.
        Blocks for ``seconds``.
        """
        pids = self._server_pids()
        for pid in pids:
            _signal(pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            for pid in reversed(pids):
                _signal(pid, signal.SIGCONT)

    def destroy(self) -> None:
        """Stop at once and delete the folder."""
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    # -- checks -------------------------------------------------------------------

    def wait_accepting(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url("postgres"), connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    message = f"PostgreSQL on {self.port} not up:\n{self.logs()}"
                    raise TimeoutError(message) from None
                time.sleep(0.1)

    def postmaster_pid(self) -> int | None:
        try:
            first = (self.data_dir / "postmaster.pid").read_text().splitlines()[0]
        except (FileNotFoundError, IndexError):
            return None
        pid = int(first)
        return pid if Path(f"/proc/{pid}").exists() else None

    def logs(self) -> str:
        return self.log_file.read_text(errors="replace")[-20_000:] if self.log_file.exists() else ""

    # -- internals ----------------------------------------------------------------

    def _server_pids(self) -> list[int]:
        """The postmaster first, then its children (backends and helpers)."""
        postmaster = self.postmaster_pid()
        if postmaster is None:
            return []
        return [postmaster, *_children(postmaster)]

    def _resume_all(self) -> None:
        for pid in self._server_pids():
            _signal(pid, signal.SIGCONT)

    def _run(self, program: str, *args: str) -> None:
        command = [str(BIN_DIR / program), *args]
        if self._as_server_user:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        result = subprocess.run(
            command, cwd=self.root, capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{program} failed ({result.returncode}): {result.stderr.strip()}\n{self.logs()}"
            )


def _children(parent: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after its ')'.
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            children.append(int(entry.name))
    return children


def _signal(pid: int, signum: signal.Signals) -> None:
    with suppress(ProcessLookupError):  # it ended meanwhile
        os.kill(pid, signum)


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres().start()
    try:
        yield server
    finally:
        server.destroy()
