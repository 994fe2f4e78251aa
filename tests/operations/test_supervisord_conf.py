"""ops/supervisord.conf, read by supervisord's own parser: what `make run` promises an operator.

The behaviour (a killed process comes back alone, Ctrl-C stops all) is proven with real
processes in test_supervised_run; this pins the settings that make it so, and that the
processes run the project's interpreter in the project directory (where `.env` is read).
"""

from __future__ import annotations

from pathlib import Path

from supervisor.datatypes import RestartUnconditionally

from tests.support.processes import PROJECT_ROOT, SERVICES
from tests.support.supervised import program_command, supervisor_options, supervisor_programs


def test_supervisord_stays_in_the_foreground_and_logs_to_the_console() -> None:
    options = supervisor_options()
    assert options.nodaemon
    assert not options.silent, "its own lines (exited:, spawned:) must reach the console"
    assert options.logfile == "/dev/null", "the console is the log; no second copy"


def test_every_process_is_supervised_with_the_project_interpreter_in_the_project_directory() -> (
    None
):
    programs = supervisor_programs()
    assert set(programs) == set(SERVICES)
    for name, program in programs.items():
        command = program_command(program)
        assert Path(command[0]).resolve() == (PROJECT_ROOT / ".venv/bin/python").resolve(), name
        assert command[1:] == ["-m", SERVICES[name][0]], name
        assert Path(program.directory).resolve() == PROJECT_ROOT.resolve(), f"{name}: .env"
        assert not program.environment, f"{name}: inherits the environment of make run"


def test_a_dead_process_is_restarted_with_backoff_and_stopped_cleanly() -> None:
    for name, program in supervisor_programs().items():
        assert program.autorestart is RestartUnconditionally, name
        assert program.startsecs >= 1, f"{name}: a crash at start-up counts as a failed start"
        # Backoff grows 1 s per failed start; this many keep trying for minutes.
        assert program.startretries >= 20, name
        assert program.stopasgroup and program.killasgroup, name
        assert program.stopwaitsecs >= 5, f"{name}: time for a graceful shutdown"


def test_every_process_writes_to_the_console() -> None:
    for name, program in supervisor_programs().items():
        assert program.redirect_stderr, name
        assert program.stdout_logfile == "/dev/stdout", name
        assert program.stdout_logfile_maxbytes == 0, f"{name}: the console cannot be rotated"
