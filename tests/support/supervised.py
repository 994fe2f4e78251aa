"""Run ``make run`` for a test, as a user would in a terminal, and read what it says.

``make run`` starts in a session of its own (a terminal's foreground process
group), with the test's database, stream, ports and supervisord run directory
in its environment. Its console (supervisord's lines and every process's
output) goes to a file; the pids come from supervisord's own ``spawned:``
lines, the ones an operator reads, and are checked against ``/proc``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from supervisor.options import ServerOptions

from tests.support.infra import free_port
from tests.support.processes import PROJECT_ROOT, SERVICES, Stack
from tests.support.streams import wait_for

_SPAWNED = re.compile(r"spawned: '(?P<name>\w+)' with pid (?P<pid>\d+)")
_SUPERVISORD = re.compile(r"supervisord started with pid (?P<pid>\d+)")
#: supervisord's own line about a process: "2026-01-02 03:04:05,678 WARN exited: relay (...)".
_EVENT = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) [A-Z]+ "
    r"(?P<event>spawned|exited|success|stopped|gave up): '?(?P<name>\w+)'?",
    re.MULTILINE,
)
#: What a nested ``make`` would inherit from a ``make pytest`` around the tests.
_MAKE_VARIABLES = ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")
SUPERVISOR_CONF = PROJECT_ROOT / "ops" / "supervisord.conf"


def supervisor_options() -> Any:
    """ops/supervisord.conf as supervisord itself reads it (``%(here)s`` etc. expanded)."""
    with tempfile.TemporaryDirectory() as run_dir:
        options = ServerOptions()
        options.environ_expansions["ENV_LEDGER_RUN_DIR"] = run_dir
        options.realize(["-c", str(SUPERVISOR_CONF)])
    return options


def supervisor_programs() -> dict[str, Any]:
    """Program name -> supervisord's ProcessConfig (command, directory, restart policy, ...)."""
    return {
        process.name: process
        for group in supervisor_options().process_group_configs
        for process in group.process_configs
    }


def program_command(program: Any) -> list[str]:
    return shlex.split(program.command)


def running(pid: int, program: str) -> bool:
    """True while ``pid`` is a live ``python -m program`` or ``.../program`` (not a zombie,
    not a reused pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    name = program.encode()
    return state != "Z" and any(arg == name or arg.endswith(b"/" + name) for arg in argv)


@dataclass
class SupervisedRun:
    """One ``make run`` of the whole ledger, wired to a test's database and stream."""

    stack: Stack
    run_dir: Path
    ports: dict[str, int] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None

    @property
    def console_path(self) -> Path:
        return self.run_dir / "console.log"

    def start(self) -> SupervisedRun:
        env = {k: v for k, v in self.stack.env().items() if k not in _MAKE_VARIABLES}
        for name, (_, port_variable) in SERVICES.items():
            self.ports[name] = free_port()
            env[port_variable] = str(self.ports[name])
        env["LEDGER_RUN_DIR"] = str(self.run_dir)
        self.env = env
        with self.console_path.open("ab") as console:
            self.popen = subprocess.Popen(
                ["make", "--no-print-directory", "run"],
                cwd=PROJECT_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def ctl(self, *args: str) -> str:
        """``make ctl ARGS=...`` against this run: what supervisorctl prints."""
        completed = subprocess.run(
            ["make", "--no-print-directory", "ctl", f"ARGS={' '.join(args)}"],
            cwd=PROJECT_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return completed.stdout + completed.stderr

    def console(self) -> str:
        return self.console_path.read_text(errors="replace")

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def spawned(self) -> dict[str, list[int]]:
        """Every pid supervisord said it started, per process, oldest first."""
        pids: dict[str, list[int]] = {name: [] for name in SERVICES}
        for match in _SPAWNED.finditer(self.console()):
            pids[match["name"]].append(int(match["pid"]))
        return pids

    def events(self, name: str, event: str) -> list[datetime]:
        """When supervisord logged ``event`` (spawned, exited, ...) for process ``name``."""
        return [
            datetime.strptime(match["time"], "%Y-%m-%d %H:%M:%S,%f")
            for match in _EVENT.finditer(self.console())
            if (match["name"], match["event"]) == (name, event)
        ]

    def json_lines(self) -> list[dict[str, Any]]:
        """The processes' own log lines on the console."""
        lines = self.console().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def pids(self) -> dict[str, int]:
        """The newest pid of each process that is running now."""
        current = {}
        for name, pids in self.spawned().items():
            if pids and running(pids[-1], SERVICES[name][0]):
                current[name] = pids[-1]
        return current

    def supervisord_pid(self) -> int:
        match = _SUPERVISORD.search(self.console())
        assert match is not None, self.console()
        return int(match["pid"])

    def ready(self, name: str) -> bool:
        try:
            return httpx.get(f"{self.url(name)}/health/ready", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, *names: str, timeout: float = 120.0) -> dict[str, int]:
        """Wait until ``names`` (default: all five) answer ready; their pids."""
        wanted = names or tuple(SERVICES)

        def up() -> bool:
            assert self.popen is not None and self.popen.poll() is None, self.console()
            pids = self.pids()
            return all(name in pids and self.ready(name) for name in wanted)

        wait_for(up, timeout, f"{', '.join(wanted)} ready")
        return {name: pid for name, pid in self.pids().items() if name in wanted}

    def interrupt(self, timeout: float = 60.0) -> int:
        """Ctrl-C: SIGINT to the foreground process group; make's exit status."""
        assert self.popen is not None
        os.killpg(self.popen.pid, signal.SIGINT)
        return self.popen.wait(timeout=timeout)

    def kill_everything(self) -> None:
        """After a failed test: nothing of this run may outlive it (children have own groups)."""
        if self.popen is None or self.popen.poll() is not None:
            return
        try:
            self.interrupt(timeout=30)
        except subprocess.TimeoutExpired:
            for name, pid in self.pids().items():
                if running(pid, SERVICES[name][0]):
                    os.kill(pid, signal.SIGKILL)
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)
