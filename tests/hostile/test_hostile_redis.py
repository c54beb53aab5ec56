"""Hostile input on the Redis backend: what another writer put in Redis, run by a real worker on a real redis-server.

Every bad job ends ``failed`` with an error naming the problem; the worker carries on and the jobs next to it
complete; nothing a message names is imported.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from pydantic import BaseModel

from jobqueue import JobQueue, JobState
from jobqueue.envelope import Envelope
from tests.hostile.conftest import HOSTILE_NAMES, Probe
from tests.redis_servers import RedisServer

QUEUE = "q"


class Anything(BaseModel):
    data: Any = None


@pytest.fixture
def app(redis_server: RedisServer) -> Iterator[JobQueue]:
    made = JobQueue.from_env({"JOBQUEUE_BACKEND": "redis", "REDIS_URL": redis_server.url, "JOBQUEUE_PREFIX": f"hostile-{uuid.uuid4().hex[:8]}",
                              "JOBQUEUE_FALLBACK": "raise"})
    made.queue(QUEUE, attempts=3)

    @made.job(queue=QUEUE)
    def take(payload: Anything) -> str:
        return "ok"

    yield made
    made.close()


def raw_client(app: JobQueue) -> redis.Redis:
    return redis.Redis.from_url(app.backend.settings.url)  # type: ignore[attr-defined]


def job_key(app: JobQueue, job_id: str) -> str:
    return app.backend.keys(QUEUE).job(job_id)  # type: ignore[attr-defined]


def run_burst(app: JobQueue) -> None:
    app.backend.run_worker(queues=[QUEUE], burst=True)  # returns once nothing is due: it did not crash


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        (b'{"v": 1, "id": "x", "name": "take", "queue": "q", "payload": {"data": "caf\xe9"}}', "not UTF-8"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b"{not json", "not JSON"),
        (b"[1, 2, 3]", "JSON object"),
        (b'{"id": 5}', "not a job envelope"),
        (b'{"v": 99, "id": "x", "name": "take", "queue": "q"}', "envelope version 99"),
        (b"[" * 5000 + b"]" * 5000, "not JSON"),
    ],
)
def test_a_broken_stored_envelope_fails_its_job_and_spares_the_rest(app: JobQueue, stored: bytes, message: str) -> None:
    take = app.registry["take"]
    bad = take.enqueue(data=1)
    good = take.enqueue_many([{"data": i} for i in range(5)])
    raw_client(app).hset(job_key(app, bad.id), "env", stored)  # as another writer to Redis could
    run_burst(app)
    status = bad.status()
    assert status is not None and status.state is JobState.FAILED
    assert message in status.error.message and not status.error.retryable
    assert [h.status().state for h in good] == [JobState.COMPLETED] * 5


def test_message_chosen_names_are_never_imported_on_redis(app: JobQueue, probe: Probe) -> None:
    envelopes = [Envelope(id=f"h{i}", name=name, queue=QUEUE, payload={"data": "x"}, max_attempts=3) for i, name in enumerate(HOSTILE_NAMES)]
    app.submit(envelopes)
    pickled = app.registry["take"].enqueue(data="cos\nsystem\n(S'touch /tmp/pwned'\ntR.")  # a pickle is only ever a string here
    run_burst(app)
    for envelope in envelopes:
        status = app.get(envelope.id, QUEUE)
        assert status is not None and status.state is JobState.FAILED and status.attempt == 1
        assert "no handler is registered" in status.error.message
    assert pickled.status().state is JobState.COMPLETED and pickled.status().payload["data"].startswith("cos\n")
    assert not probe.imported


def test_a_stored_payload_invalid_for_its_model_fails_clearly(app: JobQueue) -> None:
    @app.job(queue=QUEUE)
    def typed(payload: Typed) -> int:
        return payload.count

    handle = typed.enqueue(count=1)
    env = Envelope.model_validate_json(raw_client(app).hget(job_key(app, handle.id), "env"))  # type: ignore[arg-type]
    raw_client(app).hset(job_key(app, handle.id), "env", env.model_copy(update={"payload": {"count": "many" * 10_000}}).encode())
    run_burst(app)
    status = handle.status()
    assert status.state is JobState.FAILED and "invalid payload for job 'typed'" in status.error.message and status.attempt == 1
    assert len(status.error.message) < 1000, "the error names the field, it does not echo the value"


class Typed(BaseModel):
    count: int
