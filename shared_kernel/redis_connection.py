"""The one place a process gets its Redis client: a single server or a Redis Cluster.

With ``REDIS_CLUSTER=true`` the URL names any node of a cluster and redis-py's
cluster client finds the rest and routes each command to the node owning its
key's slot. Every key of the event log's stream carries the stream name's hash
tag (checked by the settings), so commands touching two of them (a stream and
its republish beside it) stay in one slot. Nothing else in the code knows
which kind of Redis it talks to.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio
import redis.cluster

#: What every process holds: the asyncio client of either kind (same command API).
RedisClient = redis.asyncio.Redis | redis.asyncio.RedisCluster


def connect_redis(url: str, *, cluster: bool, **options: Any) -> RedisClient:
    """An asyncio client of ``url`` (a cluster node when ``cluster``); connects lazily."""
    if cluster:
        return redis.asyncio.RedisCluster.from_url(url, **options)
    return redis.asyncio.Redis.from_url(url, **options)


def connect_redis_blocking(
    url: str, *, cluster: bool, **options: Any
) -> redis.Redis | redis.cluster.RedisCluster:
    """The blocking client, for start-up checks and command-line tools."""
    if cluster:
        return redis.cluster.RedisCluster.from_url(url, **options)
    return redis.Redis.from_url(url, **options)
