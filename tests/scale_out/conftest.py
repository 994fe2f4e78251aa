"""Servers of their own for the scale-out tests: a Redis Cluster, a primary with a standby."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.postgres_server import PrivatePostgres
from tests.support.redis_cluster import PrivateRedisCluster, private_redis_cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateRedisCluster]:
    """Three masters on free ports, for this module only."""
    with private_redis_cluster() as started:
        yield started


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[PrivatePostgres, PrivatePostgres]]:
    """A migrated primary and a hot standby streaming from it (``pg_basebackup -R``)."""
    primary, standby = PrivatePostgres(), PrivatePostgres()
    try:
        primary.start()
        primary.migrated_database()
        standby.init_standby_of(primary).start()
        yield primary, standby
    finally:
        standby.destroy()
        primary.destroy()
