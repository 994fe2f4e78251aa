"""Where each process of the running stack listens, and whether it is ready.

`make status` prints one line per process; the benchmark uses the same URLs.
Ports come from the processes' own settings classes, so an exported
``COMMAND_SERVICE_PORT`` (and friends) moves both the process and this check.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import httpx

from command_service.settings import CommandServiceSettings, RelaySettings, TransferSagaSettings
from projector.settings import ProjectorSettings
from query_service.settings import QueryServiceSettings


@dataclass(frozen=True, slots=True)
class Process:
    name: str
    module: str
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def processes() -> list[Process]:
    """The processes of ``make run``, in Procfile order, with their ports from the env."""
    return [
        Process("command", "command_service", CommandServiceSettings().command_service_port),
        Process("relay", "command_service.relay", RelaySettings().relay_port),
        Process(
            "saga", "command_service.transfer_saga", TransferSagaSettings().transfer_saga_port
        ),
        Process("projector", "projector", ProjectorSettings().projector_port),
        Process("query", "query_service", QueryServiceSettings().query_service_port),
    ]


def readiness(process: Process, timeout: float = 2.0) -> str | None:
    """None when ``/health/ready`` answers 200, else why not."""
    try:
        response = httpx.get(f"{process.url}/health/ready", timeout=timeout)
    except httpx.HTTPError as error:
        return f"no answer ({type(error).__name__})"
    if response.status_code != httpx.codes.OK:
        return f"{response.status_code} {response.text[:200]}"
    return None


def main() -> int:
    failing = 0
    for process in processes():
        problem = readiness(process)
        state = "ready" if problem is None else f"NOT READY: {problem}"
        print(f"{process.name:<10} {process.url:<24} {state}")
        failing += problem is not None
    if failing:
        print("start the stack with `make run`", file=sys.stderr)
    return 1 if failing else 0


if __name__ == "__main__":
    raise SystemExit(main())
