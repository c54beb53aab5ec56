"""The worker in this process on a real redis-server: wake-up latency, delayed promotion, heartbeats, async concurrency."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Self

import pytest
from jobqueue_redis import RedisBackend, Worker
from pydantic import BaseModel

from jobqueue import JobDefinition, JobQueue, JobState
from tests.redis.cycles import record_cycles
from tests.redis_servers import RedisServer


class Nap(BaseModel):
    seconds: float = 0.0


@pytest.fixture
def app(redis_server: RedisServer) -> Iterator[JobQueue]:
    made = JobQueue(backend=RedisBackend(redis_server.url, prefix=f"jqw-{uuid.uuid4().hex[:8]}", lease=1.0, idle_poll=5.0))
    made.queue("w", attempts=3)
    yield made
    made.close()


class Running:
    """Workers in threads, stopped at the end."""

    def __init__(self, app: JobQueue, count: int = 1, concurrency: int = 4) -> None:
        backend = app.backend
        assert isinstance(backend, RedisBackend)
        self.workers = [Worker(backend, ["w"], concurrency=concurrency, grace=5) for _ in range(count)]
        self.threads = [threading.Thread(target=w.run, kwargs={"install_signals": False}, daemon=True) for w in self.workers]

    def __enter__(self) -> Self:
        for thread in self.threads:
            thread.start()
        time.sleep(0.3)  # listening
        return self

    def __exit__(self, *exc: object) -> None:
        for worker in self.workers:
            worker.stop()
        for thread in self.threads:
            thread.join(10)
        assert not any(t.is_alive() for t in self.threads)


def test_an_idle_worker_picks_up_new_work_at_once(app: JobQueue) -> None:
    job = app.job(name="quick", queue="w")(lambda payload: None)
    with Running(app):
        for _ in range(3):
            handle = job.enqueue()
            status = handle.wait(timeout=5)
            assert status.state is JobState.COMPLETED
            assert status.started_at - status.created_at < 1.0, "woken by the enqueue, not by a poll (idle_poll is 5s)"
            time.sleep(0.2)


def test_a_delayed_job_starts_on_time(app: JobQueue) -> None:
    job = app.job(name="later", queue="w")(lambda payload: None)
    with Running(app):
        handle = job.enqueue(_delay=1.0)
        status = handle.wait(timeout=5)
        assert status.started_at - status.created_at == pytest.approx(1.0, abs=0.5)


def test_heartbeats_keep_a_long_job_from_being_delivered_twice(app: JobQueue) -> None:
    runs: list[int] = []

    @app.job(queue="w")
    def long(payload: Nap) -> int:
        runs.append(1)
        time.sleep(payload.seconds)
        return len(runs)

    with Running(app, count=2):
        handles = [long.enqueue(seconds=3.5) for _ in range(2)]  # three and a half leases of 1s
        statuses = [h.wait(timeout=15) for h in handles]
    assert [s.state for s in statuses] == [JobState.COMPLETED] * 2
    assert [s.attempt for s in statuses] == [1, 1] and len(runs) == 2


def test_async_jobs_run_concurrently_on_the_worker_loop(app: JobQueue) -> None:
    @app.job(queue="w")
    async def nap(payload: Nap) -> str:
        await asyncio.sleep(payload.seconds)
        return "ok"

    with Running(app, concurrency=10):
        started = time.monotonic()
        handles = nap.enqueue_many([{"seconds": 0.5}] * 10)
        assert [h.result(timeout=10) for h in handles] == ["ok"] * 10
        assert time.monotonic() - started < 3.0  # one after another would take 5s


def _async_nap(app: JobQueue) -> JobDefinition[Nap]:
    @app.job(queue="w")
    async def nap(payload: Nap) -> str:
        await asyncio.sleep(payload.seconds)
        return "ok"

    return nap


def test_async_outcomes_are_recorded_in_batches_on_the_event_loop(app: JobQueue) -> None:
    """An async job's outcome joins the outbox the def jobs' outcomes use, and the event loop records the outcomes
    that ended in one of its turns with one script call, claiming for the freed slots: no hand-off to a job thread
    (before, an idle thread was woken to record each batch; before that, each outcome waited in a thread for an
    outcome batcher of its own)."""
    backend = app.backend
    assert isinstance(backend, RedisBackend)
    nap = _async_nap(app)
    handles = nap.enqueue_many([{"seconds": 0.01}] * 30)
    on_loop: list[bool] = []
    calls = record_cycles(backend, on_loop)
    finish_many = backend.finish_many
    recorded_apart: list[int] = []

    def counting_finish_many(items: list[object]) -> list[int]:
        recorded_apart.append(len(items))
        return finish_many(items)  # type: ignore[arg-type]

    backend.finish_many = counting_finish_many  # type: ignore[method-assign,assignment]
    with Running(app, concurrency=10):
        assert [h.result(timeout=10) for h in handles] == ["ok"] * 30
    assert recorded_apart == []
    assert sum(done for done, _ in calls) == 30
    on_the_loop = [done for (done, _), loop in zip(calls, on_loop) if loop]
    # the last ones may end while a thread blocks for work on the drained queue, claiming as it returns: a job thread
    # records those beside it
    assert sum(on_the_loop) >= 20, (calls, on_loop)
    assert max(on_the_loop) > 1, calls  # ten at once end close together: recorded together


def test_an_async_outcome_held_back_for_a_batch_is_recorded_within_milliseconds_when_the_slots_turn_slow(app: JobQueue) -> None:
    """While jobs claimed ahead wait in line, the loop records its outcomes in batches of up to the concurrency. Here a
    slow job takes the second slot right after a quick one ended, with a quick job still in line: that outcome is a
    batch short, and is recorded within milliseconds, not once a slow job ends a second and a half later."""
    backend = app.backend
    assert isinstance(backend, RedisBackend)
    nap = _async_nap(app)
    # the first claim takes S1 and q1 (the free slots); q1 ends quick, so the next claim takes the rest ahead; q2 ends
    # as S2 starts, with q3 still in line
    s1, q1, q2, s2, q3 = (nap.enqueue(seconds=s) for s in (1.5, 0.0, 0.0, 1.5, 0.0))
    calls = record_cycles(backend)
    with Running(app, concurrency=2):
        assert [h.result(timeout=15) for h in (s1, q1, q2, s2, q3)] == ["ok"] * 5
    assert any(count > 2 for _, count in calls), f"no claim took jobs ahead: {calls}"
    held = q2.status()
    assert held.finished_at is not None and held.started_at is not None
    assert held.finished_at - held.started_at < 0.5, calls


@pytest.mark.parametrize(("kind", "concurrency"), [("def", 2), ("async def", 2), ("async def", 1)])
def test_an_outcome_is_recorded_as_the_job_ends_while_the_watcher_waits_for_work(
    redis_server: RedisServer, kind: str, concurrency: int
) -> None:
    """On a drained queue, while the job runs, an idle thread blocks on the wake-up list, claiming the moment work
    arrives (here a wait of up to 5s); the job's outcome is recorded beside that wait, not after it. With one slot
    taken by an async job, the one thread waits for the job to end instead of blocking on Redis."""
    app = JobQueue(backend=RedisBackend(redis_server.url, prefix=f"jqw-{uuid.uuid4().hex[:8]}", lease=1.0, idle_poll=5.0,
                                        block=5.0, socket_timeout=10.0))
    app.queue("w")
    if kind == "def":

        @app.job(name="nap", queue="w")
        def nap(payload: Nap) -> str:
            time.sleep(payload.seconds)
            return "ok"

    else:

        @app.job(name="nap", queue="w")
        async def nap(payload: Nap) -> str:
            await asyncio.sleep(payload.seconds)
            return "ok"

    try:
        with Running(app, concurrency=concurrency):
            for _ in range(2):
                status = nap.enqueue(seconds=0.3).wait(timeout=10)
                assert status.state is JobState.COMPLETED
                assert status.finished_at is not None and status.started_at is not None
                assert status.finished_at - status.started_at < 2.0, "recorded after the blocking wait, not as it ended"
    finally:
        app.close()


def test_a_stopping_worker_records_the_async_jobs_still_running(app: JobQueue) -> None:
    @app.job(queue="w")
    async def nap(payload: Nap) -> str:
        await asyncio.sleep(payload.seconds)
        return "ok"

    running = Running(app, concurrency=4)
    with running:
        handles = nap.enqueue_many([{"seconds": 0.5}] * 4)
        deadline = time.monotonic() + 5
        while running.workers[0].active_count < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert running.workers[0].active_count == 4
    # the stop came while all four ran: each got the grace period, and its outcome was written before the exit
    assert [h.status().state for h in handles] == [JobState.COMPLETED] * 4


def test_an_async_job_still_running_past_the_grace_goes_back_to_waiting_and_the_job_threads_end(app: JobQueue) -> None:
    @app.job(queue="w")
    async def nap(payload: Nap) -> str:
        await asyncio.sleep(payload.seconds)
        return "ok"

    backend = app.backend
    assert isinstance(backend, RedisBackend)
    handle = nap.enqueue(seconds=30)
    worker = Worker(backend, ["w"], concurrency=2, grace=0.3)
    thread = threading.Thread(target=worker.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while worker.active_count < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert worker.active_count == 1
    worker.stop()
    thread.join(10)
    assert not thread.is_alive()
    for job_thread in worker._job_threads:  # none left waiting for the given-back job's outcome
        job_thread.join(2)
    assert not any(t.is_alive() for t in worker._job_threads)
    assert handle.status().state is JobState.WAITING


def test_a_stop_gives_back_the_async_jobs_held_ahead_and_lets_the_running_ones_finish(
    app: JobQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobqueue_redis import worker as worker_module

    monkeypatch.setattr(worker_module, "QUICK", 10.0)  # every batch counts as quick: the worker claims ahead

    @app.job(queue="w")
    async def nap(payload: Nap) -> str:
        await asyncio.sleep(payload.seconds)
        return "ok"

    handles = nap.enqueue_many([{"seconds": 0.5}] * 20)
    running = Running(app, concurrency=2)
    worker = running.workers[0]
    with running:
        deadline = time.monotonic() + 10
        while not (worker._line and worker._async) and time.monotonic() < deadline:
            time.sleep(0.005)
        assert worker._line and worker._async, "no jobs held in line while others ran"
    states = [h.status().state for h in handles]
    assert JobState.ACTIVE not in states, states  # none left claimed by the stopped worker
    assert states.count(JobState.COMPLETED) >= 2, states  # the ones running at the stop got their grace period
    assert JobState.WAITING in states, states  # the ones held in line went back


def test_the_first_claim_goes_out_before_the_heartbeat_ticker_and_recovery_start(app: JobQueue, monkeypatch: pytest.MonkeyPatch) -> None:
    job = app.job(name="early", queue="w")(lambda payload: None)
    job.enqueue_many([{}] * 3)
    backend = app.backend
    assert isinstance(backend, RedisBackend)
    worker = Worker(backend, ["w"], concurrency=2, grace=5)
    steps: list[str] = []
    cycle, start_helpers = backend.cycle, worker._start_helpers

    def recording_cycle(*args: object, **kwargs: object) -> object:
        steps.append("claim")
        return cycle(*args, **kwargs)  # type: ignore[arg-type]

    def recording_start_helpers() -> None:
        steps.append("helpers")
        start_helpers()

    monkeypatch.setattr(backend, "cycle", recording_cycle)
    monkeypatch.setattr(worker, "_start_helpers", recording_start_helpers)
    assert worker.run_burst() == 3
    assert steps[0] == "claim" and "helpers" in steps


def test_after_a_job_on_a_drained_queue_the_worker_blocks_for_work_without_claiming_again(app: JobQueue) -> None:
    """The call that records an outcome also claims; when it comes back short the queue is drained, so the worker
    goes back to its blocking wait at once (a second claim would find nothing and delay the next job's pick-up)."""
    backend = app.backend
    assert isinstance(backend, RedisBackend)
    job = app.job(name="once", queue="w")(lambda payload: None)
    calls = record_cycles(backend)
    with Running(app, concurrency=4):
        calls.clear()  # the worker is idle, blocked on the wake-up list
        for _ in range(3):
            assert job.enqueue().wait(timeout=5).state is JobState.COMPLETED
            time.sleep(0.2)
    recorded = [i for i, (finished, _) in enumerate(calls) if finished]
    assert len(recorded) == 3, calls
    after = [calls[i + 1] for i in recorded if i + 1 < len(calls)]
    assert not any(finished == 0 for finished, _ in after), f"a claim-only call right after recording an outcome: {calls}"
