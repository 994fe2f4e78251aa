"""Drive the deposit load with wrk, a C load generator, when it is installed.

On a small machine the load generator competes with the ledger for CPU. A
Python client spends more CPU per request than the command service does, so
it measures itself; wrk spends a small fraction of that, so the numbers say
what the ledger can do. The Python side then only samples visibility lag at a
low rate. Without wrk (``apt-get install wrk``) the bench falls back to its
Python workers and says so in the report.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.stats import rate

#: The Lua script: deposits of a fixed amount to random accounts, and at the end one
#: JSON line with exact counts and percentiles (wrk's own text output is rounded).
_SCRIPT = """
ids = {%(ids)s}
body = '{"amount": %(amount)d}'
headers = {["Content-Type"] = "application/json"}
request = function()
  return wrk.format("POST", "/accounts/" .. ids[math.random(#ids)] .. "/deposits", headers, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %%d, "duration_us": %%d, "non_2xx": %%d, "socket_errors": %%d,'
    .. ' "timeouts": %%d, "p50_us": %%d, "p99_us": %%d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


class WrkFailed(RuntimeError):
    """wrk did not run or printed no result line."""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    timeouts: int
    p50_seconds: float
    p99_seconds: float

    @property
    def accepted(self) -> int:
        """Requests answered 2xx (wrk counts every completed request in ``requests``)."""
        return self.requests - self.non_2xx

    @property
    def per_second(self) -> float:
        return rate(self.accepted, self.seconds)


def wrk_executable() -> str | None:
    return shutil.which("wrk")


def parse_result(output: str) -> WrkResult:
    for line in output.splitlines():
        if line.startswith("WRK_RESULT "):
            data = json.loads(line.removeprefix("WRK_RESULT "))
            return WrkResult(
                requests=int(data["requests"]),
                seconds=data["duration_us"] / 1e6,
                non_2xx=int(data["non_2xx"]),
                socket_errors=int(data["socket_errors"]),
                timeouts=int(data["timeouts"]),
                p50_seconds=data["p50_us"] / 1e6,
                p99_seconds=data["p99_us"] / 1e6,
            )
    raise WrkFailed(f"wrk printed no result line:\n{output[-2000:]}")


def run_deposits(
    command_service_url: str,
    account_ids: list[str],
    *,
    amount: int,
    clients: int,
    seconds: float,
    threads: int = 1,
) -> WrkResult:
    """Deposit ``amount`` into random accounts from ``clients`` connections for ``seconds``."""
    executable = wrk_executable()
    if executable is None:
        raise WrkFailed("wrk is not installed")
    script = _SCRIPT % {"ids": ",".join(f'"{i}"' for i in account_ids), "amount": amount}
    with tempfile.TemporaryDirectory() as folder:
        script_path = Path(folder) / "deposits.lua"
        script_path.write_text(script)
        completed = subprocess.run(
            [executable, f"-t{max(1, min(threads, clients))}", f"-c{clients}",
             f"-d{max(1, round(seconds))}s", "--timeout", "10s", "-s", str(script_path),
             command_service_url],
            capture_output=True, text=True, timeout=seconds + 60, check=False,
        )  # fmt: skip
    if completed.returncode != 0:
        raise WrkFailed(f"wrk exited {completed.returncode}: {completed.stderr.strip()[:500]}")
    return parse_result(completed.stdout)
