"""The ledger on a real three-master Redis Cluster: every process uses the cluster client.

With ``REDIS_CLUSTER=true`` and ``REDIS_URL`` naming one node, the five
processes come up ready, commands over HTTP reach the read models equal to a
fold of the store, and a re-publish (which swaps a stream built beside the
live one with a two-key script) works: the stream's keys share its name's
hash tag, so they live in one slot. A stream name without a tag is refused
at start, in one line.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pydantic
import pytest
from redis.crc import key_slot

from command_service.relay.republish import republish
from shared_kernel.settings import CommonSettings, has_hash_tag
from tests.support.infra import environ_without_urls
from tests.support.processes import PROJECT_ROOT, Stack, complete_transfer
from tests.support.redis_cluster import PrivateRedisCluster
from tests.support.reference_fold import (
    expected_read_models,
    live_read_models,
    store_head,
    wait_until_projected,
)

pytestmark = pytest.mark.processes



def test_a_stream_name_without_a_hash_tag_is_refused_on_a_cluster() -> None:
    assert has_hash_tag("{ledger}:events") and not has_hash_tag("ledger:events")
    assert not has_hash_tag("{}:events") and not has_hash_tag("}ledger{")
    with pytest.raises(pydantic.ValidationError, match="needs a Redis Cluster hash tag"):
        CommonSettings(redis_cluster=True, stream_name="ledger:events")
    assert CommonSettings(redis_cluster=True, stream_name="{ledger}:events").redis_cluster


def test_a_process_told_of_a_cluster_without_a_tag_exits_with_one_line(
    cluster: PrivateRedisCluster,
) -> None:
    env = environ_without_urls() | {
        "REDIS_URL": cluster.url, "REDIS_CLUSTER": "true", "STREAM_NAME": "ledger:events",
    }  # fmt: skip
    started = subprocess.run(
        [sys.executable, "-m", "command_service.relay"], cwd=PROJECT_ROOT, env=env,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert started.returncode != 0
    assert "needs a Redis Cluster hash tag" in started.stderr, started.stderr


def test_the_ledger_runs_on_the_cluster_and_republishes_there(
    cluster: PrivateRedisCluster, database_url: str, tmp_path: Path
) -> None:
    stream = f"{{test-{uuid.uuid4().hex[:12]}}}:events"
    stack = Stack(database_url=database_url, stream_name=stream, log_dir=tmp_path,
                  extra_env={"REDIS_URL": cluster.url, "REDIS_CLUSTER": "true"})  # fmt: skip
    client = cluster.client()
    try:
        stack.start()
        command = stack.process("command").url
        accounts = [
            httpx.post(f"{command}/accounts", json={"owner": "ada", "currency": "EUR"}).json()
            for _ in range(2)
        ]
        source, target = (str(account["account_id"]) for account in accounts)
        for amount in (500, 250):
            deposit = httpx.post(f"{command}/accounts/{source}/deposits", json={"amount": amount})
            assert deposit.status_code == 200, deposit.text
        complete_transfer(stack, source, target, 300)
        wait_until_projected(database_url)
        assert live_read_models(database_url) == expected_read_models(database_url)
        assert client.xlen(stream) == store_head(database_url)
        # The projector read them from the cluster (not only from the store): its group
        # was handed the stream's last entry and acknowledged everything.
        (group,) = client.xinfo_groups(stream)
        newest = client.xrevrange(stream, count=1)
        assert newest
        top = newest[0][0]
        assert (group["last-delivered-id"], group["pending"]) == (top, 0), group

        report = asyncio.run(republish(
            CommonSettings(database_url=database_url, redis_url=cluster.url, redis_cluster=True,
                           stream_name=stream),
            stream=stream, from_position=1,
        ))  # fmt: skip
        assert report.events == store_head(database_url)
        assert client.xlen(stream) == store_head(database_url)
        assert key_slot(stream.encode()) == key_slot(f"{stream}:dead-letter".encode())
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.stop()
        client.close()
