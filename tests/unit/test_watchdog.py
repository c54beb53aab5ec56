"""The watchdog behind JOBQUEUE_DEFAULT_TIMEOUT: a def job past its deadline is interrupted in its own thread,
one that returns in time is left alone (no late exception lands in what the thread runs next)."""

from __future__ import annotations

import threading
import time

import pytest
from pydantic import BaseModel

from jobqueue import JobQueue, JobState, Settings
from jobqueue.watchdog import DeadlineExceeded, OuterDeadlineExceeded, Watchdog


def _busy(seconds: float) -> str:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.005)
    return "finished"


def test_a_call_past_its_deadline_is_interrupted_soon_after_it() -> None:
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        Watchdog().call(_busy, (5.0,), 0.2)
    assert 0.2 <= time.monotonic() - started < 1.5


def test_a_call_in_time_returns_and_nothing_lands_later() -> None:
    watchdog = Watchdog()
    for _ in range(200):  # deadlines that pass just as the calls return
        try:
            watchdog.call(_busy, (0.0,), 0.0005)
        except DeadlineExceeded:
            pass
    assert watchdog.call(_busy, (0.01,), 5.0) == "finished"
    _busy(0.3)  # a late exception would land here
    assert not watchdog._armed


def test_a_handlers_except_exception_does_not_swallow_it() -> None:
    def stubborn() -> str:
        for _ in range(400):
            try:
                time.sleep(0.005)
            except Exception:  # noqa: BLE001 - what a careless handler does
                pass
        return "swallowed"

    with pytest.raises(DeadlineExceeded):
        Watchdog().call(stubborn, (), 0.1)


def test_threads_have_their_own_deadlines() -> None:
    watchdog = Watchdog()
    results: dict[str, str] = {}

    def run(name: str, seconds: float, limit: float) -> None:
        try:
            results[name] = watchdog.call(_busy, (seconds,), limit)
        except DeadlineExceeded:
            results[name] = "interrupted"

    threads = [threading.Thread(target=run, args=("slow", 3.0, 0.2)), threading.Thread(target=run, args=("quick", 0.3, 5.0))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == {"slow": "interrupted", "quick": "finished"}


def test_a_nested_call_passes_an_enclosing_calls_deadline_up_to_it() -> None:
    watchdog = Watchdog()
    seen: list[str] = []

    def inner() -> str:
        try:
            return watchdog.call(_busy, (5.0,), 30.0)  # its own deadline is far off: the outer one interrupts it
        except OuterDeadlineExceeded:
            seen.append("inner saw the outer deadline")
            raise

    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        watchdog.call(inner, (), 0.2)
    assert seen == ["inner saw the outer deadline"]
    assert time.monotonic() - started < 1.5
    assert not watchdog._armed


def test_a_nested_call_past_its_own_deadline_leaves_the_enclosing_call_running() -> None:
    watchdog = Watchdog()

    def outer() -> str:
        try:
            watchdog.call(_busy, (5.0,), 0.1)
        except DeadlineExceeded:
            pass
        return _busy(0.05)

    assert watchdog.call(outer, (), 30.0) == "finished"
    assert not watchdog._armed


class Empty(BaseModel):
    pass


def test_on_the_sync_backend_a_job_run_inline_is_not_charged_with_its_callers_timeout() -> None:
    app = JobQueue(backend="sync", settings=Settings(default_timeout=0.3))

    @app.job(attempts=1)
    def inner(payload: Empty) -> str:
        return _busy(5.0)

    @app.job(attempts=1)
    def outer(payload: Empty) -> str:
        inner.enqueue()  # runs here, inline, inside this job's deadline (and, started later, ends its own later)
        return "outer finished"

    started = time.monotonic()
    receipt = outer.enqueue()
    assert time.monotonic() - started < 3.0
    status = receipt.status()
    assert status is not None and status.state is JobState.FAILED and status.error is not None
    assert status.error.type == "JobTimeout"
    assert status.error.message.startswith("job 'outer' ran longer than the default timeout")  # charged to the outer job
    failed = app.list_jobs(app.settings.default_queue, JobState.FAILED).jobs
    interrupted = [job for job in failed if job.name == "inner"]
    assert len(interrupted) == 1 and interrupted[0].error is not None
    assert interrupted[0].error.message.startswith("interrupted: the job that ran this one inline")
    app.close()


def test_a_jobs_own_timeout_error_is_not_taken_for_the_default_timeout() -> None:
    app = JobQueue(backend="sync", settings=Settings(default_timeout=30.0))

    @app.job(attempts=1)
    async def upstream(payload: Empty) -> None:
        raise TimeoutError("the upstream API took too long")

    @app.job(attempts=1, timeout=30)
    async def upstream_own(payload: Empty) -> None:
        raise TimeoutError("the upstream API took too long")

    @app.job(attempts=1)
    def upstream_sync(payload: Empty) -> None:
        raise TimeoutError("the upstream API took too long")

    for job in (upstream, upstream_own, upstream_sync):
        status = job.enqueue().status()
        assert status is not None and status.state is JobState.FAILED
        assert (status.error.type, status.error.message) == ("TimeoutError", "the upstream API took too long")
    app.close()


def _watchdog_threads() -> int:
    return sum(t.name == "jobqueue-watchdog" for t in threading.enumerate())


def test_one_watchdog_thread_serves_every_app_in_the_process() -> None:
    before = None
    for _ in range(20):  # an app per request, say: no thread each
        app = JobQueue(backend="sync", settings=Settings(default_timeout=30.0))

        @app.job(attempts=1)
        def noop(payload: Empty) -> str:
            return "done"

        assert noop.enqueue().result(timeout=5) == "done"
        app.close()
        before = _watchdog_threads() if before is None else before  # the process's, once the first job started it
    assert before is not None and _watchdog_threads() == before
