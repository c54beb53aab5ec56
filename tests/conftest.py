"""Session-wide fixtures: throw-away Redis servers on free loopback ports, started on first use."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.redis_servers import RedisClusterNodes, RedisServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server for the whole session (tests keep apart by key prefix)."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterNodes]:
    """A real three-node Redis Cluster for the whole session."""
    cluster = RedisClusterNodes().start()
    try:
        yield cluster
    finally:
        cluster.cleanup()
