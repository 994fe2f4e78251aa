"""``python -m bench.tracing_overhead`` (``make bench-tracing``): tracing on against tracing off.

The same load twice over, on a scratch database of its own (created on the
``DATABASE_URL`` server, dropped at the end) and a stream of its own: the
command service, relay and projector are started without an exporter (tracing
off: nothing installed), driven with deposits for ``--seconds``, stopped; then
started again exporting every span over OTLP/HTTP to a throwaway collector in
this process (it answers 200 and discards), and driven the same way. Rounds
alternate off/on so drift on a shared machine hits both. Printed: accepted
commands/s and p50/p99 latency per mode (median over rounds) and the ratio.

wrk drives the load when installed (as in ``make bench``); otherwise Python
clients do, which load the same CPU the services use, so the ratio is the
number to read rather than the absolute rates.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import redis

from bench.stack import stack
from bench.wrk_driver import run_deposits, wrk_executable
from schema.scratch import scratch_database
from shared_kernel.settings import CommonSettings

#: The processes a deposit's path crosses (no saga, no query service).
TRACED = ("command", "relay", "projector")


@dataclass(frozen=True)
class Run:
    mode: str
    per_second: float
    p50_ms: float
    p99_ms: float


class _Discard(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that accepts every export and keeps nothing."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@contextmanager
def collector() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Discard)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def _open_accounts(url: str, count: int) -> list[str]:
    with httpx.Client(base_url=url, timeout=10) as client:
        ids = []
        for _ in range(count):
            answer = client.post("/accounts", json={"owner": "bench", "currency": "EUR"})
            answer.raise_for_status()
            ids.append(str(answer.json()["account_id"]))
        return ids


async def _python_load(url: str, ids: list[str], clients: int, seconds: float) -> Run:
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        while time.perf_counter() < stop:
            started = time.perf_counter()
            answer = await client.post(
                f"/accounts/{random.choice(ids)}/deposits", json={"amount": 1}
            )
            if answer.status_code == 200:
                latencies.append(time.perf_counter() - started)

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=10, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(clients)))
    ordered = sorted(latencies) or [0.0]
    return Run("", len(latencies) / seconds, 1000 * ordered[len(ordered) // 2],
               1000 * ordered[int(len(ordered) * 0.99)])  # fmt: skip


def measure(mode: str, env: dict[str, str], clients: int, seconds: float, accounts: int) -> Run:
    with stack(env, TRACED) as urls:
        ids = _open_accounts(urls["command"], accounts)
        if wrk_executable():
            result = run_deposits(urls["command"], ids, amount=1, clients=clients, seconds=seconds)
            return Run(mode, result.per_second, 1000 * result.p50_seconds,
                       1000 * result.p99_seconds)  # fmt: skip
        run = asyncio.run(_python_load(urls["command"], ids, clients, seconds))
        return Run(mode, run.per_second, run.p50_ms, run.p99_ms)


def _median(runs: list[Run], mode: str) -> tuple[float, float, float]:
    mine = [r for r in runs if r.mode == mode]
    return (
        statistics.median(r.per_second for r in mine),
        statistics.median(r.p50_ms for r in mine),
        statistics.median(r.p99_ms for r in mine),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tracing_overhead", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="load per run")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of every mode")
    parser.add_argument(
        "--ratio", type=float, default=0.1,
        help="also run with this share of traces sampled (parentbased_traceidratio); 0 skips",
    )  # fmt: skip
    args = parser.parse_args(argv)
    settings = CommonSettings()
    stream = f"bench:tracing:{uuid.uuid4().hex[:8]}:events"
    base = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("OTEL_", "LEDGER_TRACE")) and not key.endswith("_PORT")
    }  # fmt: skip
    runs: list[Run] = []
    driver = "wrk" if wrk_executable() else "python clients"
    print(f"tracing overhead: {args.rounds} rounds, {args.clients} clients, "
          f"{args.seconds:g} s each, load by {driver}")  # fmt: skip
    with (
        scratch_database(settings.database_url, "ledger_bench_tracing") as database_url,
        collector() as endpoint,
    ):
        base |= {"DATABASE_URL": database_url, "REDIS_URL": settings.redis_url,
                 "STREAM_NAME": stream, "LOG_LEVEL": "WARNING"}  # fmt: skip
        traced = base | {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
        modes = [("off", base), ("on", traced)]
        if args.ratio:
            sampled = traced | {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                                "OTEL_TRACES_SAMPLER_ARG": str(args.ratio)}  # fmt: skip
            modes.append((f"{args.ratio:.0%}", sampled))
        try:
            for _ in range(args.rounds):
                for mode, env in modes:
                    run = measure(mode, env, args.clients, args.seconds, args.accounts)
                    runs.append(run)
                    print(f"  tracing {mode:<4} {run.per_second:8.0f} commands/s"
                          f"  p50 {run.p50_ms:6.2f} ms  p99 {run.p99_ms:6.2f} ms")  # fmt: skip
        finally:
            client = redis.Redis.from_url(settings.redis_url)
            for key in client.scan_iter(match=f"{stream}*"):
                client.delete(key)
            client.close()
    off = _median(runs, "off")
    for mode, _ in modes:
        rate, p50, p99 = _median(runs, mode)
        share = f", {100 * rate / off[0]:.0f}% of off's throughput" if off[0] else ""
        kept = share if mode != "off" else ""
        print(f"median tracing {mode:<4} {rate:6.0f}/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms{kept}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
