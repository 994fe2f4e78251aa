"""The consumer acknowledges a committed batch in the round trip of its next read."""

from __future__ import annotations

from redis.asyncio import Redis

from projector.consumer import StreamConsumer

GROUP = "projector"


def _consumer(redis: Redis, stream_name: str) -> StreamConsumer:
    return StreamConsumer(
        redis, stream_name=stream_name, group=GROUP, consumer="c1", batch_size=100, block_ms=50
    )


async def _added(redis: Redis, stream_name: str, count: int) -> list[bytes]:
    """The ids of ``count`` new entries on the stream."""
    added = [await redis.xadd(stream_name, {"n": str(n)}) for n in range(count)]
    return [entry_id for entry_id in added if isinstance(entry_id, bytes)]


async def _pending_ids(redis: Redis, stream_name: str) -> set[bytes]:
    pending = await redis.xpending_range(stream_name, GROUP, min="-", max="+", count=100)
    return {entry["message_id"] for entry in pending if isinstance(entry["message_id"], bytes)}


async def _delivered(redis: Redis, stream_name: str) -> tuple[StreamConsumer, list[bytes]]:
    """A consumer of a new group that has been delivered one entry, and that entry's id."""
    consumer = _consumer(redis, stream_name)
    await consumer.ensure_group()
    ids = await _added(redis, stream_name, 1)
    await consumer.read_new()
    return consumer, ids


async def test_a_read_acknowledges_the_entries_it_is_given_and_delivers_the_new_ones(
    redis: Redis, stream_name: str
) -> None:
    consumer = _consumer(redis, stream_name)
    await consumer.ensure_group()
    first_ids = await _added(redis, stream_name, 3)
    first = await consumer.read_new()
    assert [entry_id for entry_id, _ in first] == first_ids
    assert await _pending_ids(redis, stream_name) == set(first_ids)

    later_ids = await _added(redis, stream_name, 2)
    later = await consumer.read_new(acknowledging=first_ids)

    assert [entry_id for entry_id, _ in later] == later_ids
    assert await _pending_ids(redis, stream_name) == set(later_ids)


async def test_an_acknowledging_read_with_nothing_new_still_acknowledges(
    redis: Redis, stream_name: str
) -> None:
    consumer, ids = await _delivered(redis, stream_name)

    assert await consumer.read_new(acknowledging=ids) == []
    assert await _pending_ids(redis, stream_name) == set()


async def test_an_acknowledging_read_recreates_a_vanished_group(
    redis: Redis, stream_name: str
) -> None:
    consumer, ids = await _delivered(redis, stream_name)
    await redis.delete(stream_name)  # Redis flushed: the entries and the group are gone

    assert await consumer.read_new(acknowledging=ids) == []
    groups = await redis.xinfo_groups(stream_name)
    assert [group["name"] for group in groups] == [GROUP.encode()]
