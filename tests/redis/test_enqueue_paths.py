"""Enqueue on a real redis-server: the one-job script and the bulk script (``enqueue_many.lua``) store the same records."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
from jobqueue_redis import RedisBackend
from jobqueue_redis.backend import BULK_CHUNK
from pydantic import BaseModel

from jobqueue import JobQueue, JobState
from tests.redis_servers import RedisServer


class Item(BaseModel):
    n: int = 0


def handle_item(payload: Item) -> None: ...


@pytest.fixture
def app(redis_server: RedisServer) -> Iterator[JobQueue]:
    made = JobQueue(backend=RedisBackend(redis_server.url, prefix=f"jqe-{uuid.uuid4().hex[:8]}"))
    made.queue("e")
    made.queue("other")
    yield made
    made.close()


def _record(app: JobQueue, queue: str, job_id: str) -> dict[str, str]:
    backend = app.backend
    assert isinstance(backend, RedisBackend)
    data: dict[str, str] = backend.client.hgetall(backend.keys(queue).job(job_id))
    return data


def _waiting_ids(app: JobQueue, queue: str) -> list[str]:
    backend = app.backend
    assert isinstance(backend, RedisBackend)
    ids: list[str] = backend.client.zrange(backend.keys(queue).set("waiting"), 0, -1)
    return ids


def test_one_job_and_a_bulk_job_store_the_same_fields(app: JobQueue) -> None:
    job = app.job(name="item", queue="e")(handle_item)
    one = job.enqueue(n=1, _job_id="one", _priority=3)
    [many] = job.enqueue_many([{"n": 2, "_job_id": "many", "_priority": 3}])
    first, second = _record(app, "e", one.id), _record(app, "e", many.id)
    assert set(first) == set(second)
    assert (first["state"], second["state"]) == ("waiting", "waiting")
    assert {k: v for k, v in first.items() if k not in ("env", "seq", "origin", "created_at")} == {
        k: v for k, v in second.items() if k not in ("env", "seq", "origin", "created_at")
    }
    assert app.get("many", "e").payload == {"n": 2}  # type: ignore[union-attr]


def test_bulk_keeps_order_across_chunks_and_queues_and_dedups_ids(app: JobQueue) -> None:
    job = app.job(name="item", queue="e")(handle_item)
    elsewhere = app.job(name="away", queue="other")(handle_item)
    count = BULK_CHUNK + 7
    handles = job.enqueue_many([{"n": i} for i in range(count)])
    assert [h.created for h in handles] == [True] * count
    assert _waiting_ids(app, "e") == [h.id for h in handles]  # FIFO over both chunks
    again = job.enqueue_many([{"n": 0, "_job_id": handles[0].id}, {"n": 1, "_job_id": "fresh"}, {"n": 2, "_job_id": "fresh"}])
    assert [h.created for h in again] == [False, True, True]  # one call: its own first store counts as created
    assert elsewhere.enqueue_many([{}, {}])[0].queue == "other"
    assert app.stats("e")[JobState.WAITING] == count + 1 and app.stats("other")[JobState.WAITING] == 2


def test_bulk_mixes_plain_delayed_and_idempotent_jobs_in_order(app: JobQueue) -> None:
    job = app.job(name="item", queue="e")(handle_item)
    first = job.enqueue(n=0, _idempotency_key="k")
    handles = job.enqueue_many([{"n": 1}, {"n": 2, "_idempotency_key": "k"}, {"n": 3, "_delay": 60}, {"n": 4}])
    assert handles[1].id == first.id and not handles[1].created
    states = [app.get(h.id, "e").state for h in handles]  # type: ignore[union-attr]
    assert states == [JobState.WAITING, JobState.WAITING, JobState.DELAYED, JobState.WAITING]
    assert _record(app, "e", handles[2].id)["not_before"] != ""


def test_wake_up_list_stays_bounded(app: JobQueue) -> None:
    job = app.job(name="item", queue="e")(handle_item)
    job.enqueue_many([{"n": i} for i in range(1200)])
    for i in range(1200):
        job.enqueue(n=i)
    backend = app.backend
    assert isinstance(backend, RedisBackend)
    assert 0 < backend.client.llen(backend.keys("e").signal) <= 1000


def test_a_fresh_server_gets_the_bulk_script_loaded(app: JobQueue, redis_server: RedisServer) -> None:
    job = app.job(name="item", queue="e")(handle_item)
    redis.Redis.from_url(redis_server.url).script_flush()
    assert len(job.enqueue_many([{"n": 1}, {"n": 2}])) == 2
    redis.Redis.from_url(redis_server.url).script_flush()
    assert job.enqueue(n=3).created
