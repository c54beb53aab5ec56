"""A long-running worker on a real three-node Redis Cluster, serving queues whose keys live on different nodes."""

from __future__ import annotations

import threading
import uuid

from jobqueue_redis import RedisBackend, Worker
from pydantic import BaseModel

from jobqueue import JobQueue, JobState
from tests.redis_servers import RedisClusterNodes


class Item(BaseModel):
    n: int


def _queues_on_different_nodes(backend: RedisBackend, count: int) -> list[str]:
    client = backend.client
    by_node: dict[str, str] = {}
    for i in range(200):
        name = f"q{i}"
        node = client.get_node_from_key(backend.keys(name).base).name
        by_node.setdefault(node, name)
        if len(by_node) == count:
            return list(by_node.values())
    raise AssertionError("could not find queues on distinct nodes")


def test_a_worker_serves_queues_on_different_nodes(redis_cluster: RedisClusterNodes) -> None:
    app = JobQueue(backend=RedisBackend(redis_cluster.url, cluster=True, prefix=f"jqc-{uuid.uuid4().hex[:8]}"))
    backend = app.backend
    assert isinstance(backend, RedisBackend)
    names = _queues_on_different_nodes(backend, 3)

    def square(payload: Item) -> int:
        return payload.n * payload.n

    jobs = [app.job(name=f"square_{name}", queue=name)(square) for name in names]
    worker = Worker(backend, names, concurrency=4)
    thread = threading.Thread(target=worker.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    try:
        handles = [h for job in jobs for h in job.enqueue_many([{"n": i} for i in range(10)])]
        for handle in handles:
            assert handle.result(timeout=20) is not None
        for name in names:
            stats = app.stats(name)
            assert stats[JobState.COMPLETED] == 10 and stats[JobState.WAITING] == 0
        assert app.health().status == "healthy"
    finally:
        worker.stop()
        thread.join(15)
        app.close()
    assert not thread.is_alive()
