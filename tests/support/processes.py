"""Start the real service processes for a test, and kill them like an operator would.

Each process runs ``python -m <module>`` with the test's own database, stream
and ports in its environment; its output goes to a log file that the test
prints when something fails.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from shared_kernel.settings import default_role_urls
from tests.support.infra import (
    REDIS_URL,
    delete_stream,
    free_port,
    scratch_database,
    unique_stream_name,
)
from tests.support.streams import wait_for

PROJECT_ROOT = Path(__file__).resolve().parents[2]

#: module to run, and the environment variable that sets its HTTP port.
SERVICES: dict[str, tuple[str, str]] = {
    "command": ("command_service", "COMMAND_SERVICE_PORT"),
    "relay": ("command_service.relay", "RELAY_PORT"),
    "saga": ("command_service.transfer_saga", "TRANSFER_SAGA_PORT"),
    "projector": ("projector", "PROJECTOR_PORT"),
    "query": ("query_service", "QUERY_SERVICE_PORT"),
}


def kind_of(name: str) -> str:
    """The service a process name runs: ``projector#2`` is a second projector."""
    return name.partition("#")[0]


@dataclass
class ServiceProcess:
    name: str
    env: dict[str, str]
    log_path: Path
    port: int
    popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, wait_ready: bool = True, timeout: float = 30.0) -> ServiceProcess:
        module, _ = SERVICES[kind_of(self.name)]
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        if wait_ready:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        last_error = "never answered"
        while time.monotonic() < deadline:
            if self.popen is not None and self.popen.poll() is not None:
                code = self.popen.returncode
                raise RuntimeError(f"{self.name} exited with {code}:\n{self.logs()}")
            try:
                response = httpx.get(f"{self.url}/health/ready", timeout=2.0)
                if response.status_code == 200:
                    return
                last_error = response.text
            except httpx.HTTPError as error:
                last_error = repr(error)
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready after {timeout}s ({last_error}):\n{self.logs()}")

    def kill(self) -> None:
        """kill -9: no cleanup, no flush, like a crash."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")[-20_000:] if self.log_path.exists() else ""


@dataclass
class Stack:
    """The ledger's processes sharing one database and one stream."""

    database_url: str
    stream_name: str
    log_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, ServiceProcess] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            # A *_DATABASE_URL of the caller's would point a process at another database.
            if not key.endswith(("_PORT", "DATABASE_URL"))
            and key not in ("REDIS_URL", "STREAM_NAME")
        }
        env.update(
            DATABASE_URL=self.database_url,
            REDIS_URL=REDIS_URL,
            STREAM_NAME=self.stream_name,
            LOG_LEVEL="INFO",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        # Every role URL explicit (unless the test gives one): a developer's .env must
        # not point a process elsewhere. Each is the test's database as the role.
        for role, url in default_role_urls(env["DATABASE_URL"]).items():
            env.setdefault(f"{role.upper()}_DATABASE_URL", url)
        return env

    def process(self, name: str) -> ServiceProcess:
        if name not in self.processes:
            port = free_port()
            env = self.env()
            env[SERVICES[kind_of(name)][1]] = str(port)
            self.processes[name] = ServiceProcess(
                name=name, env=env, log_path=self.log_dir / f"{name}.log", port=port
            )
        return self.processes[name]

    def start(self, *names: str) -> Stack:
        for name in names or tuple(SERVICES):
            self.process(name).start()
        return self

    def restart(self, name: str) -> ServiceProcess:
        process = self.process(name)
        process.stop()
        return process.start()

    def stop(self) -> None:
        for process in self.processes.values():
            process.stop()

    def logs(self) -> str:
        return "\n".join(f"==== {p.name}\n{p.logs()}" for p in self.processes.values())


@contextmanager
def scratch_stack(log_dir: Path, **extra_env: str) -> Iterator[Stack]:
    """A stack (nothing started yet) on a scratch database and a stream of its own. On exit
    its processes stop (their logs printed if the block failed) and the stream is deleted."""
    stream_name = unique_stream_name()
    with scratch_database() as database_url:
        stack = Stack(database_url, stream_name, log_dir, extra_env=extra_env)
        try:
            yield stack
        except BaseException:
            print(stack.logs())
            raise
        finally:
            stack.stop()
            delete_stream(stream_name)


def complete_transfer(
    stack: Stack, source: object, target: object, amount: int, *, timeout: float = 60.0
) -> str:
    """Request a transfer through the stack's command service; once its query service
    shows it ``completed``, its id. The stack's command, saga, relay, projector and query
    service must be running."""
    body = {"from_account": str(source), "to_account": str(target), "amount": amount}
    requested = httpx.post(f"{stack.process('command').url}/transfers", json=body)
    assert requested.status_code == 202, requested.text
    transfer_id = str(requested.json()["transfer_id"])
    url = f"{stack.process('query').url}/transfers/{transfer_id}"

    def completed() -> bool:
        shown = httpx.get(url)
        return shown.status_code == 200 and shown.json()["status"] == "completed"

    wait_for(completed, timeout=timeout, what=f"transfer {transfer_id} shown completed")
    return transfer_id


def held_partitions(stack: Stack, name: str) -> dict[str, int]:
    """The partitions a projector process applies now (and each one's checkpoint)."""
    body = httpx.get(f"{stack.process(name).url}/health/ready", timeout=5).json()
    projector = body["checks"]["projector"]
    return dict(projector["held"]) if isinstance(projector, dict) else {}


def wait_for_shares(stack: Stack, shares: dict[str, int], timeout: float = 30.0) -> None:
    """Bounds the wait until each named projector holds its number of partitions."""

    def balanced() -> bool:
        held = {name: set(held_partitions(stack, name)) for name in shares}
        if any(len(held[name]) != n for name, n in shares.items()):
            return False
        # Each partition applied by one process at a time.
        assert sum(map(len, held.values())) == len(set().union(*held.values())), held
        return True

    wait_for(balanced, timeout=timeout, what=f"partitions shared as {shares}")
