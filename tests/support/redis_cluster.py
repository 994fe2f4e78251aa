"""A private three-master Redis Cluster, for tests of the cluster client.

Three ``redis-server --cluster-enabled yes`` on free ports (each also needs
its port + 10000 free, for the cluster bus), joined with ``redis-cli
--cluster create``, no replicas, no persistence; the machine's Redis is never
touched. Ready once every node reports ``cluster_state:ok``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from tests.support.redis_server import PrivateRedis

#: The cluster bus listens on the node's port plus this.
BUS_OFFSET = 10_000


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_ports(count: int) -> list[int]:
    """``count`` ports whose cluster-bus ports are free too."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + BUS_OFFSET <= 65_535 and _bindable(port + BUS_OFFSET) and port not in ports:
            ports.append(port)
    return ports


class PrivateRedisCluster:
    def __init__(self, directory: Path, masters: int = 3) -> None:
        self.nodes = [
            PrivateRedis(port, args=(
                "--cluster-enabled", "yes", "--cluster-node-timeout", "2000",
                "--cluster-config-file", str(directory / f"nodes-{port}.conf"),
                "--dir", str(directory),
            ))
            for port in cluster_ports(masters)
        ]  # fmt: skip

    @property
    def url(self) -> str:
        """Any node's URL: the cluster client finds the others from it."""
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    def start(self, timeout: float = 30.0) -> PrivateRedisCluster:
        for node in self.nodes:
            node.start()
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli is not on PATH")
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=timeout,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not all(self._ok(node) for node in self.nodes):
            if time.monotonic() > deadline:
                raise TimeoutError("the private Redis Cluster never reported cluster_state:ok")
            time.sleep(0.05)
        return self

    @staticmethod
    def _ok(node: PrivateRedis) -> bool:
        with node.client() as client:
            info = client.execute_command("CLUSTER INFO")  # parsed into a dict by redis-py
        return isinstance(info, dict) and info.get("cluster_state") == "ok"

    def client(self) -> redis.cluster.RedisCluster:
        return redis.cluster.RedisCluster.from_url(self.url)

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()


@contextmanager
def private_redis_cluster() -> Iterator[PrivateRedisCluster]:
    with tempfile.TemporaryDirectory(prefix="redis-cluster-") as directory:
        cluster = PrivateRedisCluster(Path(directory))
        try:
            yield cluster.start()
        finally:
            cluster.stop()
