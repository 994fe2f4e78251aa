"""One lock file (uv.lock) is what every install uses, and it names only PyPI.

The venv the tests run in was made by `make install`; it must hold exactly the locked
versions. The runtime dependencies are what the processes import, no more, no less.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCK = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
RUNTIME_PACKAGES = ("shared_kernel", "command_service", "query_service", "projector", "schema")
#: Installed by `python -m venv` itself, not by the lock.
VENV_SEED = {"pip", "setuptools", "wheel"}
#: Runtime dependencies no module imports by name: uvicorn loads the first two when
#: installed, redis-py hiredis, litestar's OpenTelemetry plugin the ASGI instrumentation (and the
#: instrumentations' base is pinned only to keep the OpenTelemetry set in lockstep).
LOADED_BY_OTHERS = {
    "uvloop",
    "httptools",
    "hiredis",
    "opentelemetry-instrumentation-asgi",
    "opentelemetry-instrumentation",
}
PYPI_FILES = "https://files.pythonhosted.org/"


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return normalized(match.group(0))


def locked_packages() -> dict[str, dict[str, Any]]:
    return {normalized(package["name"]): package for package in LOCK["package"]}


def test_the_venv_holds_exactly_the_locked_versions() -> None:
    locked = locked_packages()
    installed = {
        normalized(dist.metadata["Name"]): dist.version for dist in metadata.distributions()
    }
    unlocked = set(installed) - set(locked) - VENV_SEED
    assert not unlocked, f"installed but not in uv.lock (run make install): {sorted(unlocked)}"
    # A package may be locked at one version per Python range (numpy, for matplotlib).
    versions: dict[str, set[str]] = {}
    for package in LOCK["package"]:
        versions.setdefault(normalized(package["name"]), set()).add(package["version"])
    differing = {
        name: (version, sorted(versions[name]))
        for name, version in installed.items()
        if name in versions and version not in versions[name]
    }
    assert not differing, f"installed vs locked: {differing}"
    project = PYPROJECT["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    for requirement in wanted:
        name = requirement_name(requirement)
        if name != "ledger":
            assert name in installed, f"{name} is locked but not installed"


def test_every_locked_package_comes_from_pypi_with_hashes() -> None:
    for name, package in locked_packages().items():
        if name == "ledger":
            assert package["source"] == {"editable": "."}
            continue
        assert package["source"] == {"registry": "https://pypi.org/simple"}, name
        files = [*package.get("wheels", []), *([package["sdist"]] if "sdist" in package else [])]
        assert files, name
        for file in files:
            assert file["url"].startswith(PYPI_FILES), (name, file["url"])
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", file["hash"]), (name, file)


def run(*command: str | Path, cwd: Path = ROOT, timeout: float = 120) -> str:
    """Run ``command``; its stderr when it fails (an empty string when it succeeds)."""
    completed = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return "" if completed.returncode == 0 else completed.stderr or "failed"


def test_the_lock_is_current_with_pyproject() -> None:
    uv = Path(sys.executable).with_name("uv")
    assert not run(uv, "lock", "--check", "--offline")


#: Operator commands that run under make with the ops extra, not in the processes.
#: (The rebuild's command line also runs inside the image, so it counts as runtime.)
OPS_TOOLS: set[Path] = set()


def module_owners() -> dict[str, str]:
    """Dotted module name -> the distribution whose files hold it (namespace packages too)."""
    owners: dict[str, str] = {}
    for dist in metadata.distributions():
        for file in dist.files or []:
            if file.suffix == ".py" and ".." not in file.parts:
                parts = list(file.with_suffix("").parts)
                if parts[-1] == "__init__":
                    parts.pop()
                owners.setdefault(".".join(parts), normalized(dist.metadata["Name"]))
    return owners


def imported_distributions() -> set[str]:
    """The distributions the processes import (the standard library and our own left out)."""
    owners = module_owners()
    found: set[str] = set()
    for package in RUNTIME_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if path.relative_to(ROOT) in OPS_TOOLS:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [f"{node.module}.{alias.name}" for alias in node.names]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in sys.stdlib_module_names or top in RUNTIME_PACKAGES:
                        continue
                    parts = name.split(".")
                    prefixes = (".".join(parts[:n]) for n in range(len(parts), 0, -1))
                    owner = next((owners[p] for p in prefixes if p in owners), None)
                    assert owner, f"{path}: {name} is not installed"
                    found.add(owner)
    return found


def test_runtime_dependencies_are_what_the_processes_import() -> None:
    declared = {requirement_name(r) for r in PYPROJECT["project"]["dependencies"]}
    imported = imported_distributions()
    missing = imported - declared
    # A distribution imported but declared only through another (opentelemetry's API via
    # the SDK, psycopg's pool via psycopg[pool]) must still be a locked runtime package.
    runtime = runtime_closure()
    assert not (missing - runtime), f"imported but not runtime dependencies: {missing - runtime}"
    unused = declared - imported - LOADED_BY_OTHERS
    assert not unused, f"runtime dependencies no process imports (move to an extra): {unused}"


def runtime_closure() -> set[str]:
    """Every locked package the runtime dependencies pull in, extras of the project left out."""
    locked = locked_packages()
    todo = [normalized(d["name"]) for d in locked["ledger"]["dependencies"]]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        package = locked[name]
        deps = list(package.get("dependencies", []))
        for extra in package.get("optional-dependencies", {}).values():
            deps.extend(extra)
        todo.extend(normalized(d["name"]) for d in deps)
    return seen


@pytest.mark.timeout(600)
def test_the_runtime_install_alone_starts_every_process(tmp_path: Path) -> None:
    """What the Dockerfile installs (the lock without extras) imports every process's entry."""
    uv = Path(sys.executable).with_name("uv")
    venv = tmp_path / "venv"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)}
    subprocess.run(
        [str(uv), "sync", "--locked", "--no-editable", "--quiet", "--python", sys.executable],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=540,
    )
    entries = [
        "command_service.bootstrap",
        "command_service.relay.bootstrap",
        "command_service.transfer_saga.bootstrap",
        "projector.bootstrap",
        "query_service.bootstrap",
        "schema.migrate",
        "projector.rebuild.__main__",
    ]
    code = "import importlib, sys; [importlib.import_module(m) for m in sys.argv[1:]]"
    python = venv / "bin" / "python"
    failed = run(python, "-c", code, *entries, cwd=tmp_path)
    assert not failed, failed
    for absent in ("supervisor", "pytest", "hypothesis", "mypy"):
        assert run(python, "-c", f"import {absent}", cwd=tmp_path), f"{absent} is installed"
