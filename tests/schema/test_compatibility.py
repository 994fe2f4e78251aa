"""The published language against the last release: growing is fine, breaking is refused.

The first test is the check itself, run by ``make test``. The others feed it
changed schemas and show which changes it refuses and which it lets through,
including the one it must accept: a new version with the old one retired.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from schema.compatibility import RELEASED_DIR, breaking_changes, current, load
from shared_kernel.language.events import EventMetadata, MoneyDeposited, decode_event, encode_event
from shared_kernel.language.retired_events import MoneyDeposited as MoneyDepositedV1

DEPOSIT_V1 = "ledger.MoneyDeposited.v1"


def _released() -> dict[str, Any]:
    return copy.deepcopy(load(RELEASED_DIR))


def _deposit_fields(schemas: dict[str, Any], topic: str = DEPOSIT_V1) -> dict[str, Any]:
    schema = schemas[topic]
    root = schema["$ref"].rsplit("/", 1)[-1]
    fields: dict[str, Any] = schema["$defs"][root]
    return fields


def test_this_code_reads_everything_the_last_release_published() -> None:
    released = load(RELEASED_DIR)
    assert DEPOSIT_V1 in released and len(released) >= 13
    assert breaking_changes(released, current()) == []


def test_a_removed_field_a_retyped_field_and_a_new_required_field_are_refused() -> None:
    now = _released()
    deposit = _deposit_fields(now)
    del deposit["properties"]["reference"]
    deposit["properties"]["amount"] = {"type": "string"}
    deposit["properties"]["channel"] = {"type": "string"}
    deposit["required"].append("channel")

    problems = breaking_changes(load(RELEASED_DIR), now)

    assert problems == [  # in the order of the released fields, then the required ones
        f"{DEPOSIT_V1} MoneyDeposited: field 'amount' changed type",
        f"{DEPOSIT_V1} MoneyDeposited: field 'reference' removed",
        f"{DEPOSIT_V1} MoneyDeposited: field 'channel' became required (old events lack it)",
    ]


def test_a_renamed_wire_name_and_a_changed_shared_definition_are_refused() -> None:
    now = _released()
    now["ledger.MoneyDeposited.v9"] = now.pop(DEPOSIT_V1)
    del now["ledger.AccountOpened.v1"]["$defs"]["EventMetadata"]["properties"]["causation_id"]

    problems = breaking_changes(load(RELEASED_DIR), now)

    assert f"{DEPOSIT_V1}: wire name removed (its stored events become unreadable)" in problems
    assert (
        "ledger.AccountOpened.v1 EventMetadata: field 'causation_id' removed" in problems
    )


def test_a_new_optional_field_and_a_new_version_beside_the_retired_one_are_accepted() -> None:
    now = _released()
    _deposit_fields(now)["properties"]["note"] = {"type": "string", "default": ""}
    assert breaking_changes(load(RELEASED_DIR), now) == []
    # What this code does: v1 retired unchanged, v2 with a required channel beside it.
    assert "ledger.MoneyDeposited.v2" in current()
    assert "channel" in _deposit_fields(current(), "ledger.MoneyDeposited.v2")["required"]


def test_a_stored_v1_deposit_reads_as_v2_through_the_api_channel() -> None:
    old = MoneyDepositedV1(
        originator_id=uuid.uuid4(), originator_version=2,
        metadata=EventMetadata(correlation_id="c", causation_id="c"),
        amount=150, currency="EUR", reference="salary",
    )  # fmt: skip

    read = decode_event(DEPOSIT_V1, encode_event(old))

    assert isinstance(read, MoneyDeposited) and read.TOPIC == "ledger.MoneyDeposited.v2"
    assert (read.amount, read.currency, read.reference, read.channel) == (
        150, "EUR", "salary", "api",
    )  # fmt: skip
    assert read.originator_version == 2 and read.timestamp == old.timestamp
