"""The Redis schedule store on a real redis-server and on a real 3-node cluster (its lease is timed by Redis: real sleeps)."""

from __future__ import annotations

import time
import uuid

import pytest

from jobqueue import JobQueue
from tests.schedules.stores import StoreFactory, StoreUnderTest


def _store(url: str | None, *, cluster: bool = False, client: object = None) -> StoreUnderTest:
    from jobqueue_redis import RedisBackend
    from jobqueue_redis.schedule_store import RedisScheduleStore

    app = JobQueue(backend=RedisBackend(url, cluster=cluster, client=client, prefix=f"jqsched-{uuid.uuid4().hex[:10]}"))
    store = app.backend.schedule_store()
    assert isinstance(store, RedisScheduleStore)

    def close() -> None:
        app.backend.client.delete(store.defs, store.cursors, store.leader_key)  # type: ignore[attr-defined]
        app.close()

    return StoreUnderTest(store, time.sleep, close)


def _real(request: pytest.FixtureRequest) -> StoreUnderTest:
    return _store(request.getfixturevalue("redis_server").url)


def _cluster(request: pytest.FixtureRequest) -> StoreUnderTest:
    return _store(request.getfixturevalue("redis_cluster").url, cluster=True)


def _fake(request: pytest.FixtureRequest) -> StoreUnderTest:
    import fakeredis

    return _store(None, client=fakeredis.FakeRedis(decode_responses=True))


STORES: dict[str, StoreFactory] = {"redis": _real, "redis-cluster": _cluster, "fakeredis": _fake}
