"""A worker's job threads run under Linux's ``SCHED_BATCH`` while jobs wait in line behind the one they run, and under
the default policy again while they wait for work (``JOBQUEUE_REDIS_SCHED_BATCH``, on by default). The thread that runs
the worker keeps its own policy, and a platform that refuses the policy gets a worker that runs as before. Against a
real redis-server."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from jobqueue_redis import RedisBackend, Worker
from jobqueue_redis.scheduling import ThreadPolicy
from jobqueue_redis.settings import RedisSettings
from pydantic import BaseModel

from jobqueue import JobQueue, JobState
from jobqueue.errors import ConfigurationError
from tests.redis_servers import RedisServer

BATCH = getattr(os, "SCHED_BATCH", None)
needs_batch = pytest.mark.skipif(BATCH is None, reason="SCHED_BATCH is Linux's")


class Tag(BaseModel):
    n: int = 0


class Policies:
    """A queue whose job notes the scheduling policy of the thread it runs on."""

    def __init__(self, url: str, **options: Any) -> None:
        self.backend = RedisBackend(url, prefix=f"jqs-{uuid.uuid4().hex[:8]}", **options)
        self.app = JobQueue(backend=self.backend)
        self.app.queue("s")
        self.seen: dict[int, int] = {}

        @self.app.job(name="note", queue="s")
        def note(payload: Tag) -> None:
            self.seen[payload.n] = os.sched_getscheduler(0)

        self.note = note

    def burst(self, count: int, concurrency: int = 2) -> list[int]:
        """Queue ``count`` jobs, run them to the end in a burst; the policies they ran under, in order."""
        handles = self.note.enqueue_many([{"n": n} for n in range(count)])
        assert Worker(self.backend, ["s"], concurrency=concurrency).run_burst() == count
        assert {h.status().state for h in handles} == {JobState.COMPLETED}
        return [self.seen[n] for n in range(count)]


@pytest.fixture
def policies(redis_server: RedisServer) -> Iterator[Policies]:
    made = Policies(redis_server.url)
    yield made
    made.app.close()


@needs_batch
def test_jobs_run_with_others_in_line_behind_them_run_under_sched_batch_and_the_caller_keeps_its_policy(policies: Policies) -> None:
    before = os.sched_getscheduler(0)
    assert before != BATCH, "the test process itself must not run under SCHED_BATCH for this test to mean anything"
    seen = policies.burst(200)  # quick jobs: claimed ahead of the free slots, they wait in line behind the running ones
    assert BATCH in seen, "jobs with others queued behind them ran under the default policy"
    assert set(seen) <= {before, BATCH}
    assert os.sched_getscheduler(0) == before


@needs_batch
def test_sched_batch_off_leaves_every_job_on_the_default_policy(redis_server: RedisServer) -> None:
    before = os.sched_getscheduler(0)
    made = Policies(redis_server.url, sched_batch=False)
    try:
        assert set(made.burst(200)) == {before}
    finally:
        made.app.close()


@needs_batch
def test_a_job_handed_to_a_thread_waiting_for_work_runs_under_the_default_policy(policies: Policies) -> None:
    before = os.sched_getscheduler(0)
    backend = policies.backend
    busy = policies.note.enqueue_many([{"n": n} for n in range(200)])  # before the start: the threads take SCHED_BATCH
    worker = Worker(backend, ["s"], concurrency=2, grace=5)
    thread = threading.Thread(target=worker.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    try:
        for handle in busy:
            assert handle.result(timeout=10) is None
        assert BATCH in policies.seen.values()
        for n in range(1000, 1005):
            deadline = time.monotonic() + 5
            while not backend.client.zcard(backend.keys("s").set("idle")) and time.monotonic() < deadline:
                time.sleep(0.002)  # the worker waits for work again
            policies.note.enqueue(n=n).result(timeout=5)
            assert policies.seen[n] == before, "a thread waiting for work took the default policy back"
    finally:
        worker.stop()
        thread.join(10)


@needs_batch
def test_the_policy_switches_the_calling_thread_only_and_only_on_a_change(monkeypatch: pytest.MonkeyPatch) -> None:
    before = os.sched_getscheduler(0)
    calls: list[int] = []
    setscheduler = os.sched_setscheduler

    def counted(pid: int, policy: int, param: os.sched_param) -> None:
        calls.append(policy)
        setscheduler(pid, policy, param)

    monkeypatch.setattr(os, "sched_setscheduler", counted)
    policy = ThreadPolicy()
    inside: list[int] = []

    def body() -> None:
        policy.batch()
        policy.batch()
        inside.append(os.sched_getscheduler(0))
        policy.default()
        policy.default()
        inside.append(os.sched_getscheduler(0))

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert inside == [BATCH, os.SCHED_OTHER]
    assert calls == [BATCH, os.SCHED_OTHER], "one system call per change"
    assert os.sched_getscheduler(0) == before


@needs_batch
def test_a_platform_that_refuses_the_policy_gets_a_worker_that_runs_as_before(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> None:
        raise PermissionError(1, "Operation not permitted")  # as a seccomp filter that forbids the call would

    before = os.sched_getscheduler(0)
    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    policy = ThreadPolicy()
    policy.batch()
    assert not policy.enabled and os.sched_getscheduler(0) == before
    made = Policies(redis_server.url)
    try:
        assert set(made.burst(50)) == {before}
    finally:
        made.app.close()


def test_a_platform_without_the_policy_never_switches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "SCHED_BATCH", raising=False)
    policy = ThreadPolicy()
    assert not policy.enabled
    policy.batch()
    policy.default()


def test_the_setting_reads_its_variable_and_names_it_when_wrong() -> None:
    assert RedisSettings.from_environ({}).sched_batch is True
    assert RedisSettings.from_environ({"JOBQUEUE_REDIS_SCHED_BATCH": "0"}).sched_batch is False
    assert RedisSettings.from_environ({"JOBQUEUE_REDIS_SCHED_BATCH": "off"}, sched_batch=True).sched_batch is True
    with pytest.raises(ConfigurationError, match="JOBQUEUE_REDIS_SCHED_BATCH='sometimes'"):
        RedisSettings.from_environ({"JOBQUEUE_REDIS_SCHED_BATCH": "sometimes"})
    assert not ThreadPolicy(enabled=False).enabled
