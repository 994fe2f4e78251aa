"""CPU time of each process of the stack, so a phase can report CPU per event.

Read from ``/proc`` (Linux): each ledger process is found by its command line
(``python -m command_service`` ...), and PostgreSQL's backends by the
database they serve (their process title names user and database), so the
figure for PostgreSQL is the work the stack's own connections caused, not
the server's other clients. Backends that start and end inside a phase are
missed (the pools keep theirs open, so in practice none). A ledger process
whose environment names another database (another stack on the machine, a
test's) is left out, so one that ends meanwhile cannot skew the figures.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

#: Report name -> the module a process runs (``python -m <module>``).
STACK_MODULES: Mapping[str, str] = {
    "command service": "command_service",
    "transfer saga": "command_service.transfer_saga",
    "outbox relay": "command_service.relay",
    "projector": "projector",
    "query service": "query_service",
}
POSTGRES = "PostgreSQL backends"
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PROC = Path("/proc")


def _cpu_seconds(stat: str) -> float:
    """utime + stime of a ``/proc/<pid>/stat`` line (fields 14 and 15, after the name)."""
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def database_name(url: str) -> str:
    """The database a PostgreSQL URL names (its path)."""
    return urlsplit(url).path.lstrip("/")


def database_of(environ: bytes) -> str | None:
    """The database a process's ``DATABASE_URL`` names (None when it has none: the default)."""
    for variable in environ.split(b"\0"):
        if variable.startswith(b"DATABASE_URL="):
            return database_name(variable.partition(b"=")[2].decode(errors="replace"))
    return None


def classify(argv: list[str], database: str, *, serves: str | None = None) -> str | None:
    """Which report line a process with command line ``argv`` counts under, if any.

    ``serves``: the database the process's environment names; a ledger process
    of another database (another stack on this machine) is not counted.
    """
    if len(argv) == 1 and argv[0].startswith("postgres: "):
        # A backend's title: "postgres: [<cluster>:] <user> <database> <client> <state>".
        words = argv[0].split()[1:]
        if words and words[0].endswith(":"):
            words = words[1:]
        return POSTGRES if len(words) > 2 and words[1] == database else None
    if serves is not None and serves != database:
        return None
    if "-m" in argv:
        module = argv[argv.index("-m") + 1] if argv.index("-m") + 1 < len(argv) else ""
        for name, wanted in STACK_MODULES.items():
            if module == wanted:
                return name
    return None


def sample(database: str, proc: Path = _PROC) -> dict[str, float]:
    """CPU seconds used so far by each report line's processes, summed."""
    totals: dict[str, float] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().rstrip(b"\0").split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:  # ended meanwhile, or not ours to read
            continue
        try:
            environ = (entry / "environ").read_bytes() if b"-m" in argv else b""
        except OSError:
            environ = b""
        name = classify(
            [a.decode(errors="replace") for a in argv], database, serves=database_of(environ)
        )
        if name is not None:
            totals[name] = totals.get(name, 0.0) + _cpu_seconds(stat)
    return totals


def per_event_ms(
    before: Mapping[str, float], after: Mapping[str, float], events: int
) -> dict[str, float]:
    """CPU milliseconds per event of each line between two samples (none for no events)."""
    if events <= 0:
        return {}
    return {
        name: 1000.0 * (after[name] - before.get(name, 0.0)) / events
        for name in after
        if after[name] >= before.get(name, 0.0)
    }
