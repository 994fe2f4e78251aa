"""A private redis-server for tests that flush, kill or restart Redis.

The shared Redis on 6379 is never flushed or restarted by a test; a test
that needs that starts its own server on a free port, without persistence,
like a Redis that loses everything when it goes down.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import redis

from tests.support.infra import free_port


class PrivateRedis:
    def __init__(self, port: int | None = None, args: Sequence[str] = ()) -> None:
        self.port = port or free_port()
        self._args = list(args)
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def start(self, timeout: float = 10.0) -> PrivateRedis:
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError("redis-server is not on PATH")
        self._popen = subprocess.Popen(
            [executable, "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--bind", "127.0.0.1", *self._args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        with self.client() as client:
            while True:
                try:
                    client.ping()
                    return self
                except redis.ConnectionError:
                    if time.monotonic() > deadline or self._popen.poll() is not None:
                        raise
                    time.sleep(0.05)

    def kill(self) -> None:
        """kill -9: the server and everything it held in memory are gone."""
        if self._popen is not None and self._popen.poll() is None:
            self._popen.send_signal(signal.SIGKILL)
            self._popen.wait(timeout=10)

    def restart(self) -> None:
        """A fresh, empty server on the same port."""
        self.kill()
        self.start()

    def pause(self) -> None:
        """SIGSTOP: the server keeps its connections open and answers nothing (a hang)."""
        if self._popen is not None and self._popen.poll() is None:
            self._popen.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT: a paused server answers again, everything it held intact."""
        if self._popen is not None and self._popen.poll() is None:
            self._popen.send_signal(signal.SIGCONT)


@contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis().start()
    try:
        yield server
    finally:
        server.kill()
