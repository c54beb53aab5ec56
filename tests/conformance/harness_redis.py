"""Conformance harnesses of the Redis backend: a real redis-server, fakeredis, and a real 3-node cluster."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from jobqueue import JobQueue
from tests.conformance.harness import Harness, HarnessFactory, RealClockHarness


def _prefix() -> str:
    return f"jqtest-{uuid.uuid4().hex[:10]}"


class RedisHarness(RealClockHarness):
    """A real server (or cluster) on the wall clock; each test's app has its own key prefix."""

    def __init__(self, name: str, url: str, *, cluster: bool = False) -> None:
        super().__init__()
        self.name = name
        self.url = url
        self.cluster = cluster
        self.prefix = _prefix()

    def make_app(self) -> JobQueue:
        from jobqueue_redis import RedisBackend

        app = JobQueue(backend=RedisBackend(self.url, cluster=self.cluster, prefix=self.prefix), clock=self.clock)
        self.lacks = app.backend.lacks
        return app

    def drain(self, app: JobQueue) -> None:
        backend: Any = app.backend
        backend.drain()


class FakeRedisHarness(Harness):
    """fakeredis (with Lua) on a fake clock: the scripts take "now" from the app's clock."""

    def __init__(self) -> None:
        super().__init__()
        import fakeredis

        # the backend's name is "redis"; the health test compares with the part before "-"
        self.name = "redis-fakeredis"
        # fakeredis compiles a whole script on every call: 10,000 members take minutes and prove nothing more
        self.runs_size_cases = False
        self.server = fakeredis.FakeServer()

    def make_app(self) -> JobQueue:
        import fakeredis
        from jobqueue_redis import RedisBackend

        backend = RedisBackend(
            client=fakeredis.FakeRedis(server=self.server, decode_responses=True),
            async_client_factory=lambda: fakeredis.FakeAsyncRedis(server=self.server, decode_responses=True),
        )
        app = JobQueue(backend=backend, clock=self.clock)
        self.lacks = app.backend.lacks
        return app

    def drain(self, app: JobQueue) -> None:
        backend: Any = app.backend
        backend.drain()


def _real(request: pytest.FixtureRequest) -> Harness:
    return RedisHarness("redis", request.getfixturevalue("redis_server").url)


def _cluster(request: pytest.FixtureRequest) -> Harness:
    return RedisHarness("redis-cluster", request.getfixturevalue("redis_cluster").url, cluster=True)


HARNESSES: dict[str, HarnessFactory] = {
    "redis": _real,
    "fakeredis": lambda request: FakeRedisHarness(),
    "redis-cluster": _cluster,
}
