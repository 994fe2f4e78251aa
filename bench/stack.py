"""A stack of the ledger's processes of its own, for the benchmarks that need one.

Started as ``python -m <module>`` on free ports with the environment given
(its own database and stream), waited for until every process is ready,
stopped (SIGTERM, then SIGKILL) when the block ends.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]

#: Process name -> (module, the setting naming its port).
PROCESSES = {
    "command": ("command_service", "COMMAND_SERVICE_PORT"),
    "relay": ("command_service.relay", "RELAY_PORT"),
    "saga": ("command_service.transfer_saga", "TRANSFER_SAGA_PORT"),
    "projector": ("projector", "PROJECTOR_PORT"),
    "query": ("query_service", "QUERY_SERVICE_PORT"),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(name: str, url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    msg = f"{name} not ready at {url} after {timeout}s"
    raise RuntimeError(msg)


@contextmanager
def stack(
    env: dict[str, str], names: Sequence[str] = tuple(PROCESSES), log_dir: Path | None = None
) -> Iterator[dict[str, str]]:
    """The processes ``names`` with ``env``; yields their URLs by name. Their output goes
    to ``<log_dir>/<name>.log`` when given (appended), else nowhere."""
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
    urls, popens = {}, []
    try:
        for name in names:
            # "projector#2": a second process of the same kind.
            module, port_variable = PROCESSES[name.partition("#")[0]]
            port = free_port()
            output = open(log_dir / f"{name}.log", "ab") if log_dir else subprocess.DEVNULL  # noqa: SIM115
            popens.append(subprocess.Popen(
                [sys.executable, "-m", module], cwd=ROOT, env={**env, port_variable: str(port)},
                stdout=output, stderr=subprocess.STDOUT,
            ))  # fmt: skip
            urls[name] = f"http://127.0.0.1:{port}"
        for name, url in urls.items():
            wait_ready(name, url)
        yield urls
    finally:
        for popen in popens:
            popen.send_signal(signal.SIGTERM)
        for popen in popens:
            try:
                popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                popen.kill()
