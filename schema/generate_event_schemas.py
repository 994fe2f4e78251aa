"""Write one JSON Schema per published event version to ``schema/events/<TOPIC>.json``.

The msgspec definitions in :mod:`shared_kernel.language.events` are the only source of
truth; these files are generated from them so that consumers in other
languages (and reviewers of a pull request) can see the wire format and its
changes. The output is deterministic (sorted keys, two-space indent, trailing
newline) so that a regenerated file differs only when a definition does, and
``tests/schema`` fails when the committed files drift from the definitions.

Run ``python -m schema.generate_event_schemas`` (``make schemas``) to rewrite
the files, or with ``--check`` to list drifted files and exit 1 without writing.
"""

from __future__ import annotations

import argparse
import inspect
import json
from pathlib import Path
from typing import Any

import msgspec

from shared_kernel.language.events import EVENT_TYPES, LedgerEvent
from shared_kernel.language.upcasting import RETIRED

#: Where the committed schemas live, beside the SQL DDL.
EVENTS_DIR = Path(__file__).resolve().parent / "events"

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _normalised(node: Any) -> Any:
    """Docstring-derived descriptions as ``inspect.cleandoc`` gives them.

    Python 3.13 dedents docstrings at compile time and older versions keep the
    indentation, so the raw text depends on the interpreter; the wire format
    does not, and neither may the committed files.
    """
    if isinstance(node, dict):
        return {
            key: inspect.cleandoc(value)
            if key == "description" and isinstance(value, str)
            else _normalised(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_normalised(item) for item in node]
    return node


def schema_for(topic: str, event_type: type[LedgerEvent]) -> dict[str, Any]:
    """The JSON Schema of one event type, named by its wire name."""
    schema = _normalised(msgspec.json.schema(event_type))
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"urn:ledger:event:{topic}",
        "title": topic,
        **schema,
    }


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def published_types() -> dict[str, type[LedgerEvent]]:
    """Every wire name this code reads: the current versions and the retired ones."""
    retired = {topic: version.struct for topic, version in RETIRED.items()}
    return dict(sorted({**EVENT_TYPES, **retired}.items()))


def expected_files() -> dict[str, str]:
    """File name -> text, for every current and retired event version."""
    return {
        f"{topic}.json": render(schema_for(topic, event_type))
        for topic, event_type in published_types().items()
    }


def drift(directory: Path = EVENTS_DIR) -> list[str]:
    """Describe every file that differs from what the definitions generate."""
    expected = expected_files()
    present = {path.name for path in directory.glob("*.json")} if directory.is_dir() else set()
    problems = []
    for name, text in expected.items():
        if name not in present:
            problems.append(f"{name}: missing (an event type has no schema file)")
        elif (directory / name).read_text(encoding="utf-8") != text:
            problems.append(f"{name}: differs from its definition in shared_kernel.language.events")
    problems.extend(
        f"{name}: no event type of that name (stale file)"
        for name in sorted(present - set(expected))
    )
    return problems


def write(directory: Path = EVENTS_DIR) -> list[str]:
    """Bring ``directory`` in line with the definitions; returns the names changed."""
    directory.mkdir(parents=True, exist_ok=True)
    expected = expected_files()
    changed = []
    for name, text in expected.items():
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(name)
    for path in sorted(directory.glob("*.json")):
        if path.name not in expected:
            path.unlink()
            changed.append(path.name)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m schema.generate_event_schemas", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--check", action="store_true", help="list drifted files and exit 1 instead of writing"
    )
    parser.add_argument("--dir", type=Path, default=EVENTS_DIR, help="output folder")
    args = parser.parse_args(argv)
    if args.check:
        problems = drift(args.dir)
        for problem in problems:
            print(problem)
        if problems:
            print("run `make schemas` to regenerate schema/events")
            return 1
        print(f"schema/events is up to date ({len(published_types())} event versions)")
        return 0
    changed = write(args.dir)
    print(f"wrote {', '.join(changed)}" if changed else "schema/events is up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
