"""The log in several partitions, applied by projector replicas that share them.

With ``STREAM_PARTITIONS=4`` the relay publishes each event to the stream of
its stream id's partition (every event of an account or a transfer in one
partition, in order), and every partition that got nothing of a batch gets a
position marker, so no partition lags the relay. Two projector processes lease
two partitions each; killed with -9, one's partitions move to the survivor,
and back when it returns. Throughout, a read with ``min_position`` shows its
write, and afterwards the read models equal a fold of the store.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import httpx
import psycopg
import pytest
import redis

from command_service.relay.republish import republish
from ops.health import store_status
from projector.checkpoints import PartitionLayoutChanged, lay_out_partitions
from projector.projections import PROJECTIONS
from shared_kernel.event_log import LogEntry, PositionMarker, read_entry
from shared_kernel.partitions import partition_of, partition_stream, partition_streams
from shared_kernel.settings import CommonSettings
from tests.support.infra import REDIS_URL
from tests.support.processes import Stack, complete_transfer, wait_for_shares
from tests.support.reference_fold import (
    expected_read_models,
    live_read_models,
    store_head,
    wait_until_projected,
)
from tests.support.streams import raw_entries, stored, wait_for

PARTITIONS = 4


def deposit_and_read_back(stack: Stack, account: str, amount: int, expected: int) -> None:
    """A deposit, then a read with its position: the balance must show it, never older."""
    answer = httpx.post(
        f"{stack.process('command').url}/accounts/{account}/deposits", json={"amount": amount}
    )
    assert answer.status_code == 200, answer.text
    position = answer.json()["position"]
    shown = httpx.get(
        f"{stack.process('query').url}/accounts/{account}", params={"min_position": position}
    )
    assert shown.status_code == 200, shown.text
    assert shown.json()["balance"] == expected


def assert_partitions_carry_the_log(
    redis_client: redis.Redis, stream: str, database_url: str
) -> None:
    # Each partition carries exactly the events of its streams, in log order, chained by
    # `previous` within the partition, and ends at the relay's position.
    published: dict[int, LogEntry] = {}
    for partition, key in enumerate(partition_streams(stream, PARTITIONS)):
        previous = 0
        for entry_id, fields in raw_entries(redis_client, key):
            entry = read_entry(fields)
            assert entry.previous == previous  # one relay term: no resume point in between
            previous = entry.position
            if isinstance(entry, PositionMarker):
                continue
            assert partition_of(entry.stream_id, PARTITIONS) == partition
            assert entry_id.decode() == entry.entry_id
            published[entry.position] = entry
        assert previous == store_head(database_url)
    assert sorted(published) == [entry.position for entry in stored(database_url)]


def rebuild_balances(stack: Stack) -> None:
    """Through the admin API, while everything runs; returns once swapped in."""
    admin = f"{stack.process('projector').url}/admin/projections"
    token = {"Authorization": "Bearer partitions"}
    started = httpx.post(f"{admin}/account_balances/rebuild", headers=token, timeout=10)
    assert started.status_code == 202, started.text

    def swapped() -> bool:
        listed = httpx.get(admin, headers=token, timeout=10).json()["projections"]
        (balances_status,) = [p for p in listed if p["name"] == "account_balances"]
        return (balances_status["rebuild"] or {}).get("state") == "swapped"

    wait_for(swapped, timeout=60, what="the rebuild swapped in")


def test_the_stream_of_an_event_decides_its_partition_and_one_partition_is_the_stream() -> None:
    ids = [uuid.uuid4() for _ in range(2_000)]
    spread = Counter(partition_of(stream_id, PARTITIONS) for stream_id in ids)
    assert set(spread) == set(range(PARTITIONS))
    assert min(spread.values()) > 2_000 / PARTITIONS / 2  # no partition starved
    assert [partition_of(stream_id, 1) for stream_id in ids[:10]] == [0] * 10
    assert partition_stream("ledger:events", 0, 1) == "ledger:events"
    assert partition_streams("ledger:events", 2) == ["ledger:events:{p0}", "ledger:events:{p1}"]
    with pytest.raises(ValueError, match="not one of"):
        partition_stream("ledger:events", 4, 4)


def test_replicas_share_the_partitions_and_take_over_from_a_killed_one(
    stack: Stack, database_url: str, redis_client: redis.Redis
) -> None:
    stack.extra_env.update(STREAM_PARTITIONS=str(PARTITIONS), PARTITION_BALANCE_SECONDS="0.2",
                           ADMIN_TOKEN="partitions")  # fmt: skip
    stack.start("command", "relay", "saga", "projector", "query")
    stack.process("projector#2").start()
    wait_for_shares(stack, {"projector": 2, "projector#2": 2})
    command = stack.process("command").url
    accounts = [
        str(httpx.post(f"{command}/accounts", json={"owner": f"o{i}", "currency": "EUR"})
            .json()["account_id"])
        for i in range(8)
    ]  # fmt: skip
    balances = dict.fromkeys(accounts, 0)

    def round_of_deposits(amount: int) -> None:
        for account in accounts:
            balances[account] += amount
            deposit_and_read_back(stack, account, amount, balances[account])

    round_of_deposits(100)
    complete_transfer(stack, accounts[0], accounts[1], 30)
    balances[accounts[0]] -= 30
    balances[accounts[1]] += 30

    stack.process("projector#2").kill()
    wait_for_shares(stack, {"projector": PARTITIONS})
    round_of_deposits(10)
    complete_transfer(stack, accounts[2], accounts[3], 5)
    balances[accounts[2]] -= 5
    balances[accounts[3]] += 5

    stack.process("projector#2").start()
    wait_for_shares(stack, {"projector": 2, "projector#2": 2})
    round_of_deposits(1)

    # A rebuild swaps in tables built to one position and sets every partition there;
    # the partitions go on from it (deposits after it show), each applied once.
    rebuild_balances(stack)
    round_of_deposits(2)
    # Time travel folds the store, whatever the partitions: the first deposit's balance.
    first = httpx.post(f"{command}/accounts/{accounts[0]}/deposits", json={"amount": 3}).json()
    balances[accounts[0]] += 3
    travelled = httpx.get(f"{stack.process('query').url}/accounts/{accounts[0]}",
                          params={"as_of": first["position"]})  # fmt: skip
    assert travelled.json()["balance"] == balances[accounts[0]]

    wait_until_projected(database_url)
    assert live_read_models(database_url) == expected_read_models(database_url)
    shown = {a: httpx.get(f"{stack.process('query').url}/accounts/{a}").json()["balance"]
             for a in accounts}  # fmt: skip
    assert shown == balances

    assert_partitions_carry_the_log(redis_client, stack.stream_name, database_url)
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT projection, count(*), min(position) FROM projection_checkpoints"
            " GROUP BY projection"
        ).fetchall()
    assert {name: count for name, count, _ in rows} == dict.fromkeys(
        [p.NAME for p in PROJECTIONS], PARTITIONS
    )
    # `make status` and the admin API show every partition's checkpoint, the lowest first.
    head = store_head(database_url)
    status = store_status(database_url)
    assert {p.name: p.partitions for p in status.projections} == {
        p.NAME: (head,) * PARTITIONS for p in PROJECTIONS
    }
    admin = f"{stack.process('projector').url}/admin/projections"
    token = {"Authorization": "Bearer partitions"}
    listed = httpx.get(admin, headers=token).json()["projections"]
    assert {p["name"]: (p["checkpoint"], p["partitions"]) for p in listed} == {
        p.NAME: (head, [head] * PARTITIONS) for p in PROJECTIONS
    }


def partition_contents(client: redis.Redis, stream: str, partitions: int) -> dict[int, list[int]]:
    """Per partition, the positions of the events on it (markers left out), checked to
    belong there and to be in order."""
    found: dict[int, list[int]] = {}
    for partition, key in enumerate(partition_streams(stream, partitions)):
        positions = found.setdefault(partition, [])
        for _, fields in raw_entries(client, key):
            entry = read_entry(fields)
            if isinstance(entry, LogEntry):
                assert partition_of(entry.stream_id, partitions) == partition
                positions.append(entry.position)
        assert positions == sorted(positions)
    return found


def test_a_partition_that_lost_entries_is_caught_up_and_republish_rebuilds_every_partition(
    stack: Stack, database_url: str, redis_client: redis.Redis
) -> None:
    stack.extra_env.update(STREAM_PARTITIONS="2")
    stack.start("command", "relay", "projector", "query")
    command = stack.process("command").url
    accounts = [
        str(httpx.post(f"{command}/accounts", json={"owner": "o", "currency": "EUR"})
            .json()["account_id"])
        for _ in range(6)
    ]  # fmt: skip
    wait_until_projected(database_url)
    stack.process("projector").stop()
    for account in accounts:
        for amount in (5, 7):
            deposit = httpx.post(f"{command}/accounts/{account}/deposits", json={"amount": amount})
            assert deposit.status_code == 200, deposit.text
    # Redis loses part of partition 1 before the projector reads it.
    lossy = partition_stream(stack.stream_name, 1, 2)
    wait_for(lambda: redis_client.xlen(lossy) > 0, what="partition 1 published")
    lost = [entry_id for entry_id, _ in raw_entries(redis_client, lossy)][-6:-2]
    assert lost and redis_client.xdel(lossy, *lost) == len(lost)
    stack.process("projector").start()
    wait_until_projected(database_url)
    assert live_read_models(database_url) == expected_read_models(database_url)

    # ... which it noticed by `previous` naming a position its partition never showed.
    assert "the stream lacks events; catching up" in stack.process("projector").logs()

    settings = CommonSettings(
        database_url=database_url, redis_url=REDIS_URL, stream_name=stack.stream_name,
        stream_partitions=2,
    )  # fmt: skip
    report = asyncio.run(republish(settings, stream=stack.stream_name, from_position=1))
    assert report.events == store_head(database_url) == report.last_position
    contents = partition_contents(redis_client, stack.stream_name, 2)
    assert sorted(contents[0] + contents[1]) == [e.position for e in stored(database_url)]
    deposit_and_read_back(stack, accounts[0], 1, 13)
    wait_until_projected(database_url)
    assert live_read_models(database_url) == expected_read_models(database_url)


async def test_checkpoints_carry_over_to_another_number_of_partitions_only_when_level(
    database_url: str,
) -> None:
    names = [p.NAME for p in PROJECTIONS]
    versions = {p.NAME: p.VERSION for p in PROJECTIONS}
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await lay_out_partitions(conn, names, versions, 1)
        await conn.execute("UPDATE projection_checkpoints SET position = 40")
        assert sorted(await lay_out_partitions(conn, names, versions, 3)) == sorted(names)
        cursor = await conn.execute(
            "SELECT partition, position FROM projection_checkpoints WHERE projection = %s"
            " ORDER BY partition", (names[0],),
        )  # fmt: skip
        assert await cursor.fetchall() == [(0, 40), (1, 40), (2, 40)]
        assert await lay_out_partitions(conn, names, versions, 3) == []  # already laid out
        await conn.execute("UPDATE projection_checkpoints SET position = 41 WHERE partition = 1")
        with pytest.raises(PartitionLayoutChanged, match="set STREAM_PARTITIONS back"):
            await lay_out_partitions(conn, names, versions, 2)
        await conn.execute("UPDATE projection_checkpoints SET position = 41")
        await lay_out_partitions(conn, names, versions, 2)
        cursor = await conn.execute(
            "SELECT count(*), min(position), max(position) FROM projection_checkpoints"
            " WHERE projection = %s", (names[0],),
        )  # fmt: skip
        assert await cursor.fetchone() == (2, 41, 41)
