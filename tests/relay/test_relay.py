"""The outbox relay as a real process: order, resume, crash, and one active relay at a time."""

from __future__ import annotations

import pytest
import redis

from tests.support.infra import free_port
from tests.support.ledger_writer import BackgroundWriter, LedgerWriter
from tests.support.processes import ServiceProcess, Stack
from tests.support.reference_fold import store_head
from tests.support.sql import rows
from tests.support.streams import (
    metric_value,
    published,
    ready_checks,
    stored,
    stream_top,
    wait_for,
    wait_for_stream_top,
    wait_until_published,
)

pytestmark = pytest.mark.processes


def assert_stream_is_the_log(client: redis.Redis, stream: str, database_url: str) -> None:
    """Every stored event exactly once, in order, id == position, same bytes, same `previous`."""
    log = stored(database_url)
    entries = published(client, stream)
    assert [entry_id for entry_id, _ in entries] == [entry.entry_id for entry in log]
    assert [entry for _, entry in entries] == log


def relay_position(database_url: str, stream: str) -> int:
    found = rows(database_url, "SELECT position FROM relay_positions WHERE stream_name = %s",
                 (stream,))  # fmt: skip
    return int(found[0][0]) if found else 0


def test_publishes_every_stored_event_in_order_and_wakes_on_notify(
    stack: Stack,
    writer: LedgerWriter,
    redis_client: redis.Redis,
    stream_name: str,
    database_url: str,
) -> None:
    writer.write_random(120)
    # Batches of 50 split the backlog; with an hour-long poll only NOTIFY can
    # wake the relay for the events written while it runs.
    stack.extra_env.update(RELAY_BATCH_SIZE="50", RELAY_POLL_SECONDS="3600")
    relay = stack.process("relay").start()
    wait_until_published(redis_client, stream_name, database_url)

    for _ in range(3):
        writer.write_random(10, seed=stream_top(redis_client, stream_name))
        wait_until_published(redis_client, stream_name, database_url)

    assert_stream_is_the_log(redis_client, stream_name, database_url)
    head = store_head(database_url)
    # Recorded within POSITION_SAVE_SECONDS of the last publish, with no append to wake it.
    wait_for(lambda: relay_position(database_url, stream_name) == head, what="position recorded")
    assert metric_value(relay.url, "ledger_relay_published_events_total") == 150
    assert metric_value(relay.url, "ledger_relay_position") == head
    assert metric_value(relay.url, "ledger_relay_store_head") == head
    assert metric_value(relay.url, "ledger_relay_active") == 1
    assert ready_checks(relay.url)["relay"] == "active"


def test_restarted_relay_resumes_where_the_stream_ends(
    stack: Stack,
    writer: LedgerWriter,
    redis_client: redis.Redis,
    stream_name: str,
    database_url: str,
) -> None:
    relay = stack.process("relay").start()
    writer.write_random(60)
    wait_until_published(redis_client, stream_name, database_url)
    relay.stop()
    writer.write_random(40, seed=1)  # written while no relay runs

    relay.start()
    wait_until_published(redis_client, stream_name, database_url)

    assert_stream_is_the_log(redis_client, stream_name, database_url)
    # Nothing re-published.
    assert metric_value(relay.url, "ledger_relay_published_events_total") == 40


def test_relay_resumes_from_its_recorded_position_when_redis_lost_the_stream(
    stack: Stack,
    writer: LedgerWriter,
    redis_client: redis.Redis,
    stream_name: str,
    database_url: str,
) -> None:
    relay = stack.process("relay").start()
    writer.write_random(50)
    before = store_head(database_url)
    wait_for_stream_top(redis_client, stream_name, before)
    wait_for(lambda: relay_position(database_url, stream_name) == before, what="position recorded")
    relay.stop()
    redis_client.delete(stream_name)
    writer.write_random(20, seed=1)

    relay.start()
    wait_until_published(redis_client, stream_name, database_url)

    entries = [entry for _, entry in published(redis_client, stream_name)]
    later = [entry for entry in stored(database_url) if entry.position > before]
    assert [entry.position for entry in entries] == [entry.position for entry in later]
    # The first entry names the resume point, so a consumer sees what Redis lost.
    assert entries[0].previous == before
    assert entries == later


def test_kill_9_mid_stream_then_restart_publishes_every_event_exactly_once(
    stack: Stack, redis_client: redis.Redis, stream_name: str, database_url: str
) -> None:
    stack.extra_env.update(RELAY_BATCH_SIZE="20")
    relay = stack.process("relay").start()
    with BackgroundWriter(database_url, seed=7) as writer:
        wait_for_stream_top(redis_client, stream_name, 300)
        relay.kill()
        assert writer.running
        relay.start()
        wait_until_published(redis_client, stream_name, database_url)  # while writing

    wait_until_published(redis_client, stream_name, database_url)
    assert_stream_is_the_log(redis_client, stream_name, database_url)
    head = store_head(database_url)
    wait_for(lambda: relay_position(database_url, stream_name) == head, what="position recorded")


def test_standby_relay_waits_for_the_lock_and_takes_over_when_the_active_dies(
    stack: Stack,
    writer: LedgerWriter,
    redis_client: redis.Redis,
    stream_name: str,
    database_url: str,
) -> None:
    active = stack.process("relay").start()
    port = free_port()
    standby = ServiceProcess(
        name="relay",
        env={**active.env, "RELAY_PORT": str(port)},
        log_path=stack.log_dir / "relay-standby.log",
        port=port,
    )
    stack.processes["relay-standby"] = standby
    standby.start()  # ready: a hot standby is healthy
    wait_for(lambda: ready_checks(standby.url)["relay"] == "standby")

    writer.write_random(50)
    wait_until_published(redis_client, stream_name, database_url)
    assert metric_value(active.url, "ledger_relay_published_events_total") == 50
    assert metric_value(standby.url, "ledger_relay_published_events_total") == 0
    assert metric_value(standby.url, "ledger_relay_active") == 0

    active.kill()
    wait_for(lambda: ready_checks(standby.url)["relay"] == "active")
    writer.write_random(30, seed=1)
    wait_until_published(redis_client, stream_name, database_url)

    assert_stream_is_the_log(redis_client, stream_name, database_url)
    assert metric_value(standby.url, "ledger_relay_published_events_total") == 30
    assert metric_value(standby.url, "ledger_relay_active") == 1
