"""The worker's threads run under Linux's ``SCHED_BATCH`` policy (``JOBQUEUE_REDIS_SCHED_BATCH``, on by default): the
job threads and the event loop do, the thread that runs the worker keeps its own, and a platform that refuses the
policy gets a worker that runs as before. Against a real redis-server."""

from __future__ import annotations

import os
import threading
import uuid
from typing import Any

import pytest
from jobqueue_redis import RedisBackend, Worker
from jobqueue_redis.scheduling import batch_this_thread
from jobqueue_redis.settings import RedisSettings
from pydantic import BaseModel

from jobqueue import JobQueue, JobState
from jobqueue.errors import ConfigurationError
from tests.redis_servers import RedisServer

BATCH = getattr(os, "SCHED_BATCH", None)
needs_batch = pytest.mark.skipif(BATCH is None, reason="SCHED_BATCH is Linux's")


class Empty(BaseModel):
    pass


def _policies_seen(url: str, **options: Any) -> dict[str, int]:
    """Run one ``def`` job and one ``async def`` job through a worker; the policy each ran under, and the caller's after."""
    backend = RedisBackend(url, prefix=f"jqs-{uuid.uuid4().hex[:8]}", **options)
    app = JobQueue(backend=backend)
    app.queue("s")
    seen: dict[str, int] = {}

    @app.job(name="plain", queue="s")
    def plain(payload: Empty) -> None:
        seen["def"] = os.sched_getscheduler(0)

    @app.job(name="coro", queue="s")
    async def coro(payload: Empty) -> None:
        seen["async"] = os.sched_getscheduler(0)

    try:
        handles = [plain.enqueue(), coro.enqueue()]
        assert Worker(backend, ["s"], concurrency=2).run_burst() == 2
        assert {h.status().state for h in handles} == {JobState.COMPLETED}
    finally:
        app.close()
    seen["caller"] = os.sched_getscheduler(0)
    return seen


@needs_batch
def test_job_threads_and_the_event_loop_run_under_sched_batch_and_the_caller_keeps_its_policy(redis_server: RedisServer) -> None:
    before = os.sched_getscheduler(0)
    assert before != BATCH, "the test process itself must not run under SCHED_BATCH for this test to mean anything"
    seen = _policies_seen(redis_server.url)
    assert seen == {"def": BATCH, "async": BATCH, "caller": before}


@needs_batch
def test_sched_batch_off_leaves_every_thread_on_the_default_policy(redis_server: RedisServer) -> None:
    before = os.sched_getscheduler(0)
    assert _policies_seen(redis_server.url, sched_batch=False) == {"def": before, "async": before, "caller": before}


@needs_batch
def test_a_platform_that_refuses_the_policy_gets_a_worker_that_runs_as_before(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> None:
        raise PermissionError(1, "Operation not permitted")  # as a seccomp filter that forbids the call would

    before = os.sched_getscheduler(0)
    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    assert batch_this_thread() is False
    assert _policies_seen(redis_server.url) == {"def": before, "async": before, "caller": before}


def test_a_platform_without_the_policy_is_told_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "SCHED_BATCH", raising=False)
    assert batch_this_thread() is False


@needs_batch
def test_batch_this_thread_changes_only_the_calling_thread() -> None:
    before = os.sched_getscheduler(0)
    inside: list[int] = []

    def body() -> None:
        inside.append(int(batch_this_thread()))
        inside.append(os.sched_getscheduler(0))

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert inside == [1, BATCH]
    assert os.sched_getscheduler(0) == before


def test_the_setting_reads_its_variable_and_names_it_when_wrong() -> None:
    assert RedisSettings.from_environ({}).sched_batch is True
    assert RedisSettings.from_environ({"JOBQUEUE_REDIS_SCHED_BATCH": "0"}).sched_batch is False
    assert RedisSettings.from_environ({"JOBQUEUE_REDIS_SCHED_BATCH": "off"}, sched_batch=True).sched_batch is True
    with pytest.raises(ConfigurationError, match="JOBQUEUE_REDIS_SCHED_BATCH='sometimes'"):
        RedisSettings.from_environ({"JOBQUEUE_REDIS_SCHED_BATCH": "sometimes"})
