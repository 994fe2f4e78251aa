"""Entries the projector cannot apply are parked in the dead-letter stream, visibly.

Bogus entries are placed at positions the store will never use (sequence
values consumed without an event), so the real events around them keep
their positions and the read models must still equal the fold of the store.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
import redis

from shared_kernel.language.events import AccountOpened, EventMetadata, MoneyDeposited, encode_event
from shared_kernel.settings import EVENTS_TABLE
from tests.support.ledger_writer import LedgerWriter
from tests.support.processes import Stack
from tests.support.reference_fold import (
    checkpoints,
    expected_read_models,
    live_read_models,
    store_head,
    wait_until_projected,
)
from tests.support.sql import value
from tests.support.streams import (
    metric_value,
    raw_entries,
    stream_top,
    wait_until_published,
)

pytestmark = pytest.mark.processes

METADATA = EventMetadata(correlation_id="poison-test", causation_id="poison-test")


def consume_position(database_url: str) -> int:
    """A position no event will ever get: a hole, as a rejected append leaves."""
    query = "SELECT nextval(pg_get_serial_sequence(%s, 'notification_id'))"
    return int(value(database_url, query, (EVENTS_TABLE,)))


def write_and_publish(
    writer: LedgerWriter, client: redis.Redis, stream: str, database_url: str, seed: int
) -> int:
    writer.write_random(10, seed=seed)
    return wait_until_published(client, stream, database_url)


def test_poison_entries_are_dead_lettered_and_the_read_models_stay_true(
    stack: Stack,
    writer: LedgerWriter,
    redis_client: redis.Redis,
    stream_name: str,
    database_url: str,
) -> None:
    stack.extra_env.update(IDLE_CATCH_UP_SECONDS="1", PROJECTOR_BATCH_SIZE="500")
    stack.process("relay").start()
    projector = stack.process("projector")
    write_and_publish(writer, redis_client, stream_name, database_url, seed=0)

    # An unknown event type, among real events.
    head = write_and_publish(writer, redis_client, stream_name, database_url, seed=1)
    unknown_type = consume_position(database_url)
    redis_client.xadd(
        stream_name,
        {
            "position": str(unknown_type),
            "previous": str(head),
            "stream": str(uuid.uuid4()),
            "version": "1",
            "type": "ledger.NoSuchEvent.v1",
            "data": b"{}",
        },
        id=f"{unknown_type}-0",
    )
    # A well-formed deposit into an account that does not exist: it decodes but
    # cannot be applied, and it arrives in one batch with real events.
    head = write_and_publish(writer, redis_client, stream_name, database_url, seed=2)
    bad_data = consume_position(database_url)
    ghost = uuid.uuid4()
    deposit = MoneyDeposited(
        originator_id=ghost, originator_version=2, metadata=METADATA, amount=5, currency="EUR",
        channel="api",
    )
    redis_client.xadd(
        stream_name,
        {
            "position": str(bad_data),
            "previous": str(head),
            "stream": str(ghost),
            "version": "2",
            "type": MoneyDeposited.TOPIC,
            "data": encode_event(deposit),
        },
        id=f"{bad_data}-0",
    )
    # An entry missing most of its fields.
    write_and_publish(writer, redis_client, stream_name, database_url, seed=3)
    malformed = consume_position(database_url)
    redis_client.xadd(stream_name, {"position": str(malformed)}, id=f"{malformed}-0")
    write_and_publish(writer, redis_client, stream_name, database_url, seed=4)

    projector.start()
    wait_until_projected(database_url)

    assert live_read_models(database_url) == expected_read_models(database_url)
    parked = {
        int(fields[b"dead_letter_position"]): fields
        for _, fields in raw_entries(redis_client, f"{stream_name}:dead-letter")
    }
    assert sorted(parked) == [unknown_type, bad_data, malformed]
    assert b"NoSuchEvent" in parked[unknown_type][b"dead_letter_error"]
    # The store holds no such event: it is parked as made up, and blocks nothing.
    assert b"not in the event store" in parked[bad_data][b"dead_letter_error"]
    assert parked[bad_data][b"data"] == encode_event(deposit)  # the original fields, kept
    assert b"MalformedEntry" in parked[malformed][b"dead_letter_error"]
    assert metric_value(projector.url, "ledger_projector_dead_lettered_events_total") == 3
    ready = httpx.get(f"{projector.url}/health/ready", timeout=5)
    assert ready.status_code == 200
    assert ready.json()["checks"]["dead_lettered"] == 3
    assert ready.json()["checks"]["blocked_streams"] == {}


def test_an_entry_beyond_the_store_head_cannot_make_later_events_look_applied(
    stack: Stack,
    writer: LedgerWriter,
    redis_client: redis.Redis,
    stream_name: str,
    database_url: str,
) -> None:
    stack.extra_env.update(IDLE_CATCH_UP_SECONDS="1")
    stack.process("relay").start()
    projector = stack.process("projector").start()
    head = write_and_publish(writer, redis_client, stream_name, database_url, seed=0)
    wait_until_projected(database_url)

    # A valid-looking event at a position far ahead of the store.
    far = head + 1_000_000
    account = uuid.uuid4()
    opened = AccountOpened(
        originator_id=account, originator_version=1, metadata=METADATA, owner="eve", currency="EUR"
    )
    redis_client.xadd(
        stream_name,
        {
            "position": str(far),
            "previous": str(head),
            "stream": str(account),
            "version": "1",
            "type": AccountOpened.TOPIC,
            "data": encode_event(opened),
        },
        id=f"{far}-0",
    )
    # The relay's next entries now sit below the stream's top, so Redis refuses
    # them; the projector must get them from the store.
    writer.write_random(10, seed=1)
    wait_until_projected(database_url)

    head = store_head(database_url)
    assert stream_top(redis_client, stream_name) == far
    assert live_read_models(database_url) == expected_read_models(database_url)
    assert set(checkpoints(database_url).values()) == {head}
    assert metric_value(projector.url, "ledger_projector_dead_lettered_events_total") == 1
