"""``make republish FROM=N``: the log re-published into the Redis Stream, harmless to the projector.

The swap's own rules are checked against the shared Redis with this test's
keys; the last test re-publishes from 0 under write load while the real relay
and projector run, and the read models must still equal a fresh fold.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import psycopg
import pytest
import redis
from redis.asyncio import Redis

from command_service.relay.leadership import leader_lock_key
from command_service.relay.republish import Republished, describe, republish
from command_service.relay.stream_swap import add, create_empty, swap_in
from command_service.relay.takeover import TOOL_APPLICATION_NAME, LockUnavailable
from shared_kernel.event_log import LogEntry
from shared_kernel.settings import CommonSettings
from tests.support.infra import REDIS_URL
from tests.support.ledger_writer import BackgroundWriter, LedgerWriter
from tests.support.processes import PROJECT_ROOT, Stack
from tests.support.reference_fold import (
    expected_read_models,
    live_read_models,
    store_head,
    wait_until_projected,
)
from tests.support.streams import (
    published,
    raw_entries,
    stored,
    stream_top,
    wait_for,
    wait_for_stream_top,
)


def settings(database_url: str, stream: str) -> CommonSettings:
    return CommonSettings(database_url=database_url, redis_url=REDIS_URL, stream_name=stream)


def run_republish(database_url: str, stream: str, **options: Any) -> Republished:
    return asyncio.run(republish(settings(database_url, stream), stream=stream, **options))


def groups(client: redis.Redis, stream: str) -> dict[str, str]:
    found: list[dict[str, Any]] = client.xinfo_groups(stream)  # type: ignore[assignment]
    return {g["name"].decode(): g["last-delivered-id"].decode() for g in found}


def publish_log(stream: str, entries: list[LogEntry]) -> None:
    async def go() -> None:
        client = Redis.from_url(REDIS_URL)
        try:
            await add(client, stream, entries)
        finally:
            await client.aclose()

    asyncio.run(go())


def test_a_fresh_key_gets_the_log_from_the_position_as_the_relay_writes_it(
    database_url: str, writer: LedgerWriter, redis_client: redis.Redis, stream_name: str
) -> None:
    writer.write_random(30)
    fresh = f"{stream_name}:copy"

    report = run_republish(database_url, fresh, from_position=10)

    log = stored(database_url)
    assert published(redis_client, fresh) == [(e.entry_id, e) for e in log if e.position >= 10]
    assert published(redis_client, fresh)[0][1].previous == 9
    assert (report.events, report.kept_below, report.last_position) == (21, 0, log[-1].position)
    assert report.groups == () and report.relay_sessions_ended == ()
    assert redis_client.keys(f"{fresh}:republish:*") == []  # nothing left beside


def test_groups_are_rewound_to_the_position_or_kept_and_older_entries_stay(
    database_url: str, writer: LedgerWriter, redis_client: redis.Redis, stream_name: str
) -> None:
    writer.write_random(30)
    log = stored(database_url)
    publish_log(stream_name, log[:25])
    redis_client.xadd(stream_name, {"foreign": "entry"}, id="25-1")  # not from the store
    redis_client.xgroup_create(stream_name, "ahead", id="20-0")
    redis_client.xgroup_create(stream_name, "behind", id="5-0")
    below = raw_entries(redis_client, stream_name)[:11]  # positions 1..11

    report = run_republish(database_url, stream_name, from_position=12)

    assert groups(redis_client, stream_name) == {"ahead": "11-0", "behind": "5-0"}
    assert {(g.name, g.was, g.now) for g in report.groups} == {
        ("ahead", "20-0", "11-0"), ("behind", "5-0", "5-0"),
    }  # fmt: skip
    assert raw_entries(redis_client, stream_name)[:11] == below  # kept as they were
    assert [e for e in published(redis_client, stream_name) if e[1].position >= 12] == [
        (e.entry_id, e) for e in log if e.position >= 12
    ]
    assert report.kept_below == 11
    assert b"25-1" not in {entry_id for entry_id, _ in raw_entries(redis_client, stream_name)}

    redis_client.xgroup_setid(stream_name, "ahead", id="30-0")
    kept = run_republish(database_url, stream_name, from_position=1, keep_groups=True)
    assert groups(redis_client, stream_name) == {"ahead": "30-0", "behind": "5-0"}
    assert {(g.name, g.was, g.now) for g in kept.groups} == {
        ("ahead", "30-0", "30-0"), ("behind", "5-0", "5-0"),
    }  # fmt: skip


def test_a_second_republish_never_ends_the_first_and_leftovers_are_cleaned(
    database_url: str, writer: LedgerWriter, redis_client: redis.Redis, stream_name: str
) -> None:
    writer.write_random(5)
    key = leader_lock_key(stream_name)
    with psycopg.connect(database_url, autocommit=True) as first:
        first.execute("SELECT set_config('application_name', %s, false)", (TOOL_APPLICATION_NAME,))
        first.execute("SELECT pg_advisory_lock(%s)", (key,))
        with pytest.raises(LockUnavailable, match="another republish of this stream runs"):
            run_republish(database_url, stream_name, from_position=0, lock_wait_seconds=10)
        assert first.execute("SELECT 1").fetchone() == (1,)  # its session lives on

    redis_client.xadd(f"{stream_name}:republish:killed", {"a": "1"})  # a killed run's copy
    run_republish(database_url, stream_name, from_position=0)
    assert redis_client.keys(f"{stream_name}:republish:*") == []
    assert len(published(redis_client, stream_name)) == 5


def test_ids_beyond_the_store_are_dropped_but_the_top_never_goes_back(
    database_url: str, writer: LedgerWriter, redis_client: redis.Redis, stream_name: str
) -> None:
    writer.write_random(5)
    log = stored(database_url)
    publish_log(stream_name, log)
    redis_client.xadd(stream_name, {"bogus": "entry"}, id="99-0")  # no such position stored

    run_republish(database_url, stream_name, from_position=0)

    assert published(redis_client, stream_name) == [(e.entry_id, e) for e in log]
    assert stream_top(redis_client, stream_name) == 99  # a relay resumes past it, as before


def test_the_swap_refuses_a_copy_the_live_stream_has_moved_past(
    redis_client: redis.Redis, stream_name: str
) -> None:
    beside = f"{stream_name}:beside"
    redis_client.xadd(stream_name, {"a": "1"}, id="7-0")
    redis_client.xgroup_create(stream_name, "projector", id="0")

    async def attempt() -> Any:
        client = Redis.from_url(REDIS_URL)
        try:
            await create_empty(client, beside)
            await client.xadd(beside, {"a": "1"}, id="6-0")
            return await swap_in(client, stream_name, beside, rewind_to=0)
        finally:
            await client.aclose()

    outcome = asyncio.run(attempt())

    assert (outcome.swapped, outcome.live_top) == (False, "7-0")
    assert [entry_id for entry_id, _ in raw_entries(redis_client, stream_name)] == [b"7-0"]
    assert groups(redis_client, stream_name) == {"projector": "0-0"}


@pytest.mark.processes
def test_republish_from_zero_under_load_leaves_the_read_models_equal_to_a_fresh_fold(
    stack: Stack, redis_client: redis.Redis
) -> None:
    database_url, stream = stack.database_url, stack.stream_name
    stack.start("relay", "projector")
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": REDIS_URL}
    env["STREAM_NAME"] = stream
    with BackgroundWriter(database_url, seed=11, at_least=300) as writer:
        wait_until_projected(database_url, position=150)
        done = subprocess.run(
            [sys.executable, "-m", "command_service.relay.republish", "--from", "0"],
            cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        republished_at = writer.written
        wait_for(lambda: writer.written >= republished_at + 100, what="writes after the republish")

    lines = done.stdout.splitlines()
    assert lines[0].startswith("republish: the relay's lock session (PostgreSQL pid ")
    assert lines[1].startswith(f"republish: {stream} re-published from position 0: ")
    rewound = [line for line in lines if "consumer group projector" in line]
    assert len(rewound) == 1 and rewound[0].endswith("now reads after 0-0")

    head = store_head(database_url)
    wait_until_projected(database_url, head)
    live = live_read_models(database_url)
    assert live == expected_read_models(database_url)
    lines_per_event = {(row.account_id, row.version) for row in live.transactions.values()}
    assert len(lines_per_event) == len(live.transactions)  # no statement line twice
    # The relay came back and the stream is the whole log again, once each, in order.
    wait_for_stream_top(redis_client, stream, head)
    assert published(redis_client, stream) == [(e.entry_id, e) for e in stored(database_url)]
    assert stream_top(redis_client, stream) == head


def test_describe_names_every_step() -> None:
    report = Republished("s", 3, events=5, kept_below=2, last_position=9, topped_up=1,
                         relay_sessions_ended=(42,))  # fmt: skip
    assert describe(report) == [
        "republish: the relay's lock session (PostgreSQL pid 42) was ended: the relay stood by"
        " meanwhile and resumes from the stream's top",
        "republish: s re-published from position 3: 5 events from the event store, 2 earlier"
        " entries kept, 1 appended meanwhile; it ends at position 9",
    ]
