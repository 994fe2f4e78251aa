"""The committed JSON Schemas in ``schema/events`` match the msgspec definitions.

A consumer in another language reads those files, so a definition changed
without regenerating them (``make schemas``) would silently lie to it. The
samples check that what the writer really encodes validates against them.
"""

from __future__ import annotations

import json
import typing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import msgspec
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from schema.generate_event_schemas import (
    EVENTS_DIR,
    drift,
    expected_files,
    published_types,
    write,
)
from shared_kernel.language.events import (
    EVENT_TYPES,
    EventMetadata,
    LedgerEvent,
    decode_event,
    encode_event,
)


def test_committed_schemas_match_the_definitions() -> None:
    assert drift() == [], "run `make schemas` and commit schema/events"


def test_every_event_version_has_a_file_and_every_file_an_event_version() -> None:
    committed = {path.name for path in EVENTS_DIR.glob("*.json")}
    assert committed == {f"{topic}.json" for topic in published_types()}
    assert set(EVENT_TYPES) < set(published_types())  # the retired versions keep theirs


def test_drift_names_changed_missing_and_stale_files(tmp_path: Path) -> None:
    write(tmp_path)
    assert drift(tmp_path) == []
    names = sorted(expected_files())
    (tmp_path / names[0]).write_text("{}\n")
    (tmp_path / names[1]).unlink()
    (tmp_path / "ledger.Gone.v1.json").write_text("{}\n")
    problems = drift(tmp_path)
    assert any(p.startswith(names[0]) and "differs" in p for p in problems)
    assert any(p.startswith(names[1]) and "missing" in p for p in problems)
    assert any(p.startswith("ledger.Gone.v1.json") and "stale" in p for p in problems)
    write(tmp_path)
    assert drift(tmp_path) == []


def test_generation_is_deterministic() -> None:
    assert expected_files() == expected_files()
    for text in expected_files().values():
        assert text.endswith("}\n")
        assert json.loads(text)["$schema"].startswith("https://json-schema.org/draft/2020-12")


def _sample_value(annotation: Any) -> Any:
    """A plausible value of a field's type, so new event types need no test edits."""
    if typing.get_origin(annotation) is typing.Literal:  # a closed set: its first member
        return typing.get_args(annotation)[0]
    if typing.get_origin(annotation) is not None:  # Optional[...] and friends
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return _sample_value(args[0])
    samples: dict[Any, Any] = {
        UUID: uuid4(),
        int: 1250,
        str: "EUR",
        datetime: datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
        EventMetadata: EventMetadata(correlation_id="corr-1", causation_id="cause-1"),
    }
    if annotation not in samples:
        raise AssertionError(f"no sample value for {annotation!r}: extend _sample_value")
    return samples[annotation]


def sample_event(event_type: type[LedgerEvent]) -> LedgerEvent:
    hints = typing.get_type_hints(event_type)
    values = {
        field.name: _sample_value(hints[field.name]) for field in msgspec.structs.fields(event_type)
    }
    return event_type(**values)


def _validator(topic: str) -> Draft202012Validator:
    schema = json.loads((EVENTS_DIR / f"{topic}.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


@pytest.mark.parametrize("topic", sorted(EVENT_TYPES))
def test_encoded_events_validate_against_their_schema(topic: str) -> None:
    event = sample_event(EVENT_TYPES[topic])
    encoded = encode_event(event)
    _validator(topic).validate(json.loads(encoded))
    assert decode_event(topic, encoded) == event


@pytest.mark.parametrize("topic", sorted(EVENT_TYPES))
def test_schema_rejects_missing_required_fields_and_wrong_types(topic: str) -> None:
    validator = _validator(topic)
    document = json.loads(encode_event(sample_event(EVENT_TYPES[topic])))
    schema = json.loads((EVENTS_DIR / f"{topic}.json").read_text(encoding="utf-8"))
    definition = schema["$defs"][EVENT_TYPES[topic].__name__]
    assert definition["required"], "every event has required fields"
    for name in definition["required"]:
        incomplete = {key: value for key, value in document.items() if key != name}
        assert not validator.is_valid(incomplete), f"{name} should be required"
    wrong = dict(document, originator_version="seven")
    assert not validator.is_valid(wrong)
    wrong = dict(document, originator_id="not-a-uuid")
    assert not validator.is_valid(wrong)


def test_integer_amounts_only() -> None:
    """Money is never a float on the wire: the schema says integer."""
    for topic, event_type in EVENT_TYPES.items():
        fields = {field.name for field in msgspec.structs.fields(event_type)}
        if "amount" not in fields:
            continue
        validator = _validator(topic)
        document = json.loads(encode_event(sample_event(event_type)))
        assert validator.is_valid(document)
        assert not validator.is_valid(dict(document, amount=12.5))
