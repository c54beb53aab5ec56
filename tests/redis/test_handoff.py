"""A job enqueued while a worker waits is handed to that worker already claimed (enqueue.lua, idle.lua, wake.lua),
on a real redis-server: the hand-off itself, the race with the end of a wait, a wait that breaks off, when no job
is handed, and a handed job whose worker died or whose envelope is malformed."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from jobqueue_redis import RedisBackend, Worker
from jobqueue_redis.scripts import load_once
from pydantic import BaseModel

from jobqueue import JobQueue, JobState
from jobqueue.options import RateLimit
from jobqueue.runner import Outcome
from tests.redis_servers import RedisServer


class Tick(BaseModel):
    n: int = 0


@pytest.fixture
def backend(redis_server: RedisServer) -> Iterator[RedisBackend]:
    made = RedisBackend(redis_server.url, prefix=f"jqh-{uuid.uuid4().hex[:8]}", lease=1.0)
    yield made
    made.close()


@pytest.fixture
def app(backend: RedisBackend) -> JobQueue:
    made = JobQueue(backend=backend)
    made.queue("q")
    assert made.backend is backend  # bound now: the tests call it directly
    return made


def _tick(app: JobQueue, queue: str = "q") -> Any:
    @app.job(name=f"tick-{queue}", queue=queue)
    def tick(payload: Tick) -> int:
        return payload.n

    return tick


def _register(backend: RedisBackend, queue: str, token: str, wait: float) -> str:
    """Register a worker as idle the way wait_and_claim does (without blocking): its registration."""
    registration = f"{token}|{backend.settings.lease!r}"
    backend.scripts.idle(backend.client, backend.keys(queue).base, [registration, repr(wait)])
    return registration


def _waiting_in_thread(backend: RedisBackend, queue: str, prefix: str, timeout: float) -> tuple[threading.Thread, list[Any]]:
    got: list[Any] = []
    thread = threading.Thread(target=lambda: got.append(backend.wait_and_claim(queue, timeout, 4, prefix)), daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not backend.client.zcard(backend.keys(queue).set("idle")) and time.monotonic() < deadline:
        time.sleep(0.005)
    return thread, got


def test_a_job_enqueued_while_a_worker_waits_is_handed_to_it_already_claimed(app: JobQueue, backend: RedisBackend) -> None:
    client, keys = backend.client, backend.keys("q")
    tick = _tick(app)
    thread, got = _waiting_in_thread(backend, "q", "w:1", timeout=2.0)
    assert client.zcard(keys.set("idle")) == 1, "the waiting worker registered"
    handle = tick.enqueue(n=7)
    thread.join(5)
    assert got and got[0] is not None
    jobs, hint = got[0]
    assert [(env.id, token) for env, token in jobs] == [(handle.id, "w:1:0")], "the BLPOP answered with the job, claimed"
    assert hint is None
    envelope = jobs[0][0]
    assert envelope.payload == {"n": 7} and envelope.attempt == 1
    assert handle.status().state is JobState.ACTIVE
    assert client.hget(keys.job(handle.id), "token") == "w:1:0"
    score = client.zscore(keys.set("active"), handle.id)
    assert score is not None and score == int(score), "leases are scored in whole milliseconds"
    lease, server_now = score / 1000, float(client.time()[0])
    assert server_now < lease <= server_now + backend.settings.lease + 1
    assert client.zcard(keys.set("waiting")) == 0 and client.llen(keys.signal) == 0, "neither waiting nor a wake-up"
    assert client.zcard(keys.set("idle")) == 0 and not client.exists(f"{keys.base}inbox:w:1:0")
    assert backend.finish(envelope, "w:1:0", Outcome(JobState.COMPLETED, result=7)), "the handed token holds the lease"
    assert handle.result(timeout=1) == 7


def test_a_job_handed_after_the_wait_ended_is_taken_by_the_claim_that_ends_the_registration(app: JobQueue, backend: RedisBackend) -> None:
    client, keys = backend.client, backend.keys("q")
    tick = _tick(app)
    registration = _register(backend, "q", "w:2:0", wait=5.0)
    first = tick.enqueue(n=1)  # handed to the inbox of a worker whose BLPOP already returned (signal or timeout)
    assert client.llen(f"{keys.base}inbox:w:2:0") == 1
    second = tick.enqueue(n=2)  # the registration is used up: this one waits, with a wake-up
    assert client.zscore(keys.set("waiting"), second.id) is not None and client.llen(keys.signal) == 1
    args = backend._claim_args("q", 2, "w:2")
    args[2] = repr(backend.settings.lease)
    reply = backend.scripts.wake(client, keys.base, [*args, registration])
    assert reply[1] is not None, "the handed job came back with the claim"
    jobs, _ = backend._woken("q", reply, "w:2:0")
    assert [(env.id, token) for env, token in jobs] == [(first.id, "w:2:0"), (second.id, "w:2:1")]
    assert not client.exists(f"{keys.base}inbox:w:2:0") and client.zcard(keys.set("idle")) == 0


def test_a_wait_that_ends_without_a_job_leaves_no_registration_and_claims(app: JobQueue, backend: RedisBackend) -> None:
    client, keys = backend.client, backend.keys("q")
    assert backend.wait_and_claim("q", 0.05, 4, "w:3") == ([], None)
    assert client.zcard(keys.set("idle")) == 0, "the claim after the wait removed the registration"
    tick = _tick(app)
    handle = tick.enqueue()
    assert client.zscore(keys.set("waiting"), handle.id) is not None, "no worker waits: the job waits"


def test_no_job_is_handed_past_jobs_in_line_a_pause_a_concurrency_key_or_a_wait_that_is_over(app: JobQueue, backend: RedisBackend) -> None:
    client, keys = backend.client, backend.keys("q")
    tick = _tick(app)
    idle, inbox = keys.set("idle"), f"{keys.base}inbox:w:4:0"

    _register(backend, "q", "w:4:0", wait=-1.0)  # a wait that is over (a worker that died, say)
    stale = tick.enqueue()
    assert client.zscore(keys.set("waiting"), stale.id) is not None and client.zcard(idle) == 0, "stale: dropped"

    _register(backend, "q", "w:4:0", wait=5.0)
    behind = tick.enqueue()  # the stale one is still in line: this one goes behind it
    assert client.zscore(keys.set("waiting"), behind.id) is not None and client.zcard(idle) == 1
    client.delete(keys.set("waiting"))

    app.pause("q")
    assert client.zcard(idle) == 0, "a pause ends the registrations"
    _register(backend, "q", "w:4:0", wait=5.0)
    assert client.zcard(idle) == 0, "a paused queue takes none"
    paused = tick.enqueue()
    assert client.hget(keys.job(paused.id), "state") == "waiting"
    app.resume("q")
    client.delete(keys.set("waiting"))
    _register(backend, "q", "w:4:0", wait=5.0)

    keyed = tick.enqueue(_concurrency_key="tenant-1")  # its key's count is kept by the claim
    assert client.hget(keys.job(keyed.id), "state") == "waiting" and client.zcard(idle) == 1
    client.delete(keys.set("waiting"))

    delayed = tick.enqueue(_delay=60)
    assert client.hget(keys.job(delayed.id), "state") == "delayed" and client.zcard(idle) == 1
    assert not client.exists(inbox), "nothing was handed"

    handed = tick.enqueue()
    assert client.hget(keys.job(handed.id), "state") == "active" and client.llen(inbox) == 1


def test_a_worker_on_a_rate_limited_or_capped_queue_does_not_register(app: JobQueue, backend: RedisBackend) -> None:
    client = backend.client
    load_once(client, backend.scripts)  # on a fresh server the first pipelined claim would load its script and claim nothing
    for queue, options in (("limited", {"rate_limit": RateLimit(limit=100, period=1.0)}), ("capped", {"concurrency": 2})):
        app.queue(queue, **options)
        tick = _tick(app, queue)
        got: list[Any] = []

        def wait(queue: str = queue, got: list[Any] = got) -> None:
            got.append(backend.wait_and_claim(queue, 1.0, 4, "w:5"))

        thread = threading.Thread(target=wait, daemon=True)
        thread.start()
        time.sleep(0.2)
        assert client.zcard(backend.keys(queue).set("idle")) == 0
        handle = tick.enqueue()
        thread.join(5)
        assert got and got[0] is not None
        assert [(env.id, token) for env, token in got[0][0]] == [(handle.id, "w:5:1")], "claimed after the wake-up, as before"


def test_a_wait_that_breaks_off_ends_its_registration_and_claims(redis_server: RedisServer) -> None:
    # a reply that times out stands for any connection failure during the wait (block is shorter than the socket's
    # timeout in settings; a wait passed a longer timeout, as here, times out on the client)
    backend = RedisBackend(redis_server.url, prefix=f"jqh-{uuid.uuid4().hex[:8]}", lease=1.0, socket_timeout=0.3, block=0.2)
    app = JobQueue(backend=backend)
    app.queue("q")
    assert app.backend is backend
    tick = _tick(app)
    try:
        client, keys = backend.client, backend.keys("q")
        first = tick.enqueue(n=1)  # waiting, so the claim after the failed wait has something to take
        client.delete(keys.signal)  # ... but no wake-up: the wait blocks
        got = backend.wait_and_claim("q", 1.0, 4, "w:8")
        assert got is not None
        assert [(env.id, token) for env, token in got[0]] == [(first.id, "w:8:1")]
        assert client.zcard(keys.set("idle")) == 0, "no registration outlives the failed wait"
        later = tick.enqueue(n=2)
        assert client.zscore(keys.set("waiting"), later.id) is not None, "so no job is handed to a wait no one keeps"
    finally:
        app.close()


def test_a_handed_job_whose_worker_died_is_delivered_again_once_its_lease_runs_out(app: JobQueue, backend: RedisBackend) -> None:
    client, keys = backend.client, backend.keys("q")
    tick = _tick(app)
    _register(backend, "q", "dead:1:0", wait=5.0)  # the worker registered, then died before its BLPOP took the job
    handle = tick.enqueue(n=3)
    inbox = f"{keys.base}inbox:dead:1:0"
    assert client.hget(keys.job(handle.id), "state") == "active"
    assert client.llen(inbox) == 1
    time.sleep(backend.settings.lease + 0.2)
    jobs, _ = backend.claim("q", 4, "w:6")
    assert [(env.id, env.attempt, token) for env, token in jobs] == [(handle.id, 2, "w:6:1")]
    assert not client.exists(inbox), "the claim that reaped the lease deleted the dead worker's inbox"


def test_a_malformed_envelope_handed_to_a_worker_fails_the_job_with_the_reason(app: JobQueue, backend: RedisBackend) -> None:
    client, keys = backend.client, backend.keys("q")
    thread, got = _waiting_in_thread(backend, "q", "w:7", timeout=2.0)
    # what another client could send enqueue.lua: an envelope that is JSON but not a job envelope
    fields = ["bad-1", '{"id": "bad-1"}', "5", "", "1.0", "1", "1", "", ""]
    assert backend.scripts.enqueue(client, keys.base, ["1.0", "origin", backend.retention("q"), *fields]) == 1
    thread.join(5)
    assert got == [([], None)], "handed, then nothing to run"
    status = app.get("bad-1")
    assert status is not None and status.state is JobState.FAILED
    assert status.error is not None and "not a job envelope" in status.error.message


def test_a_running_worker_takes_handed_jobs_and_records_them(app: JobQueue, backend: RedisBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[int] = []
    handed: list[str] = []
    hand = backend._handed
    monkeypatch.setattr(backend, "_handed", lambda queue, fields, token: handed.append(token) or hand(queue, fields, token))

    @app.job(name="note", queue="q")
    def note(payload: Tick) -> int:
        ran.append(payload.n)
        return payload.n

    worker = Worker(backend, ["q"], concurrency=4, grace=5)
    thread = threading.Thread(target=worker.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    try:
        handles = []
        for n in range(5):
            deadline = time.monotonic() + 5
            while not backend.client.zcard(backend.keys("q").set("idle")) and time.monotonic() < deadline:
                time.sleep(0.002)  # the worker waits again after each job
            handles.append(note.enqueue(n=n))
            assert handles[-1].result(timeout=5) == n
        tokens = {backend.client.hget(backend.keys("q").job(h.id), "token") for h in handles}
        assert ran == [0, 1, 2, 3, 4]
        assert all(h.status().state is JobState.COMPLETED for h in handles)
        assert tokens == {""}, "each handed token was released when its outcome was recorded"
        assert worker.ran == 5
        assert len(handed) == 5 and all(token.endswith(":0") for token in handed), "every job came through the inbox"
    finally:
        worker.stop()
        thread.join(10)
