"""The published language may grow, never break: a check against the last release.

``schema/events/released/`` holds the JSON Schemas of every wire name as the
last release published them. Every store written since holds events of those
shapes, so this code must still read each one exactly:

- a released wire name must still exist, as a current or a retired version
  (a retired one reads as the current version through its upcaster);
- its fields may not disappear or change type, and no field may become
  required that old events lack;
- new optional fields are fine (old events decode with the default).

A breaking change is made as a new version instead: the old struct moves to
:mod:`shared_kernel.language.retired_events`, unchanged, with an upcaster. ``make test``
runs this check (``tests/schema/test_compatibility.py``); ``python -m
schema.compatibility`` prints what breaks, and ``--release`` records the
current schemas as released once a release ships.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from schema.generate_event_schemas import EVENTS_DIR, published_types, render, schema_for

RELEASED_DIR = EVENTS_DIR / "released"

Schema = Mapping[str, Any]


def load(directory: Path) -> dict[str, Schema]:
    """Wire name -> schema, for every ``<wire name>.json`` in ``directory``."""
    return {
        path.name.removesuffix(".json"): json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(directory.glob("*.json"))
    }


def current() -> dict[str, Schema]:
    """Wire name -> schema, of every version this code reads."""
    return {topic: schema_for(topic, cls) for topic, cls in published_types().items()}


def _shape(node: Any) -> Any:
    """A schema without its prose: descriptions and titles say nothing about the bytes."""
    if isinstance(node, dict):
        return {k: _shape(v) for k, v in node.items() if k not in ("description", "title")}
    if isinstance(node, list):
        return [_shape(item) for item in node]
    return node


def _root(schema: Schema) -> str:
    return str(schema["$ref"]).rsplit("/", 1)[-1]


def _object_changes(where: str, old: Schema, new: Schema) -> list[str]:
    problems = []
    old_fields, new_fields = old.get("properties", {}), new.get("properties", {})
    for name, spec in old_fields.items():
        if name not in new_fields:
            problems.append(f"{where}: field {name!r} removed")
        elif _shape(spec) != _shape(new_fields[name]):
            problems.append(f"{where}: field {name!r} changed type")
    newly_required = set(new.get("required", ())) - set(old.get("required", ()))
    problems += [
        f"{where}: field {name!r} became required (old events lack it)"
        for name in sorted(newly_required)
    ]
    return problems


def breaking_changes(released: Mapping[str, Schema], now: Mapping[str, Schema]) -> list[str]:
    """Every way ``now`` fails to read what ``released`` describes (empty: compatible)."""
    problems: list[str] = []
    for topic, old in sorted(released.items()):
        new = now.get(topic)
        if new is None:
            problems.append(f"{topic}: wire name removed (its stored events become unreadable)")
            continue
        old_defs, new_defs = old.get("$defs", {}), new.get("$defs", {})
        pairs = [(_root(old), _root(new))] + [
            (name, name) for name in old_defs if name != _root(old)
        ]
        for old_name, new_name in pairs:
            if new_name not in new_defs:
                problems.append(f"{topic}: {old_name} is gone")
                continue
            where = f"{topic} {old_name}"
            problems += _object_changes(where, old_defs[old_name], new_defs[new_name])
    return problems


def release(directory: Path = RELEASED_DIR) -> list[str]:
    """Record the current schemas as the released ones; the wire names written."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    for topic, schema in current().items():
        (directory / f"{topic}.json").write_text(render(dict(schema)), encoding="utf-8")
    return sorted(current())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m schema.compatibility", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--release", action="store_true", help="record the current schemas as released"
    )
    args = parser.parse_args(argv)
    if args.release:
        print(f"released {len(release())} event versions into {RELEASED_DIR}")
        return 0
    problems = breaking_changes(load(RELEASED_DIR), current())
    for problem in problems:
        print(problem)
    if problems:
        print(
            "a released event changed shape: give it a new version and move the old struct,"
            " unchanged, to shared_kernel/language/retired_events.py with an upcaster"
        )
        return 1
    print(f"compatible with the {len(load(RELEASED_DIR))} released event versions")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
