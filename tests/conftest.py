"""Session-wide fixtures: throw-away Redis servers and a moto server on free loopback ports, started on first use."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.redis_servers import RedisClusterNodes, RedisServer
from tests.sqs.moto_server import DUMMY_ENV, MotoServer


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


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """A moto server on a free loopback port; the AWS variables point at it with dummy keys."""
    saved = {name: os.environ.get(name) for name in [*DUMMY_ENV, "AWS_ENDPOINT_URL"]}
    server = MotoServer()
    os.environ.update(DUMMY_ENV)
    os.environ["AWS_ENDPOINT_URL"] = server.endpoint
    try:
        yield server
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
