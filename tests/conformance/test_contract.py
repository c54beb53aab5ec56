"""The behaviour every backend keeps (see shared/ARCHITECTURE.md, "The contract every backend keeps")."""

from __future__ import annotations

import asyncio

import pytest

from jobqueue import InvalidPayload, JobCancelled, JobFailed, JobState
from jobqueue.backends.base import Capability
from jobqueue.envelope import Envelope
from jobqueue.hooks import JobEvent
from tests.conformance.harness import Harness
from tests.conformance.jobs import BACKOFF_SECONDS, QUEUE, Jobs, Nap

requires = pytest.mark.requires


def test_enqueue_runs_and_keeps_result(harness: Harness, jobs: Jobs) -> None:
    handle = jobs.echo.enqueue(value="hi")
    assert isinstance(handle.id, str) and handle.id
    harness.drain(jobs.app)
    status = handle.status()
    assert status is not None and status.state is JobState.COMPLETED
    assert status.result == {"echo": "hi", "attempt": 1}
    assert status.name == "echo" and status.queue == QUEUE
    assert status.attempt == 1 and status.max_attempts == 3
    assert status.progress == 100
    assert status.started_at is not None and status.finished_at is not None
    assert status.created_at <= status.started_at <= status.finished_at
    assert handle.result(timeout=5) == {"echo": "hi", "attempt": 1}
    assert jobs.app.get(handle.id) == status


@requires(Capability.PAUSE)
def test_waiting_until_resumed(harness: Harness, jobs: Jobs) -> None:
    jobs.app.pause(QUEUE)
    handle = jobs.echo.enqueue(value=1)
    harness.drain(jobs.app)
    assert handle.status().state is JobState.WAITING
    stats = jobs.app.stats(QUEUE)
    assert stats.paused and stats[JobState.WAITING] == 1
    assert jobs.log == []
    jobs.app.resume(QUEUE)
    harness.drain(jobs.app)
    assert handle.status().state is JobState.COMPLETED
    assert not jobs.app.stats(QUEUE).paused


def test_flaky_job_completes_on_third_attempt(harness: Harness, jobs: Jobs) -> None:
    handle = jobs.flaky.enqueue(succeed_on=3)
    harness.settle(jobs.app, QUEUE, step=BACKOFF_SECONDS)
    status = handle.status()
    assert status.state is JobState.COMPLETED and status.result == 3 and status.attempt == 3
    assert [entry for entry in jobs.log if entry[0] == "flaky"] == [("flaky", 1), ("flaky", 2), ("flaky", 3)]


def test_spent_attempts_end_failed_with_traceback(harness: Harness, jobs: Jobs) -> None:
    handle = jobs.always_fails.enqueue(value=7)
    harness.settle(jobs.app, QUEUE, step=BACKOFF_SECONDS)
    status = handle.status()
    assert status.state is JobState.FAILED
    assert status.attempt == 2 and jobs.log.count("always_fails") == 2
    assert status.error is not None and status.error.type == "ValueError" and status.error.message == "boom 7"
    assert "boom 7" in (status.error.traceback or "") and "always_fails" in (status.error.traceback or "")
    with pytest.raises(JobFailed, match="boom 7"):
        handle.result(timeout=1)


def test_error_outside_retry_on_fails_at_once(harness: Harness, jobs: Jobs) -> None:
    handle = jobs.not_retryable.enqueue(value=None)
    harness.settle(jobs.app, QUEUE, step=BACKOFF_SECONDS)
    status = handle.status()
    assert status.state is JobState.FAILED and status.attempt == 1
    assert jobs.log.count("not_retryable") == 1
    assert status.error.type == "KeyError" and not status.error.retryable


@requires(Capability.RETRY_BACKOFF)
def test_failed_attempt_waits_its_backoff(harness: Harness, jobs: Jobs) -> None:
    handle = jobs.flaky.enqueue(succeed_on=2)
    harness.drain(jobs.app)
    status = handle.status()
    assert status.state is JobState.DELAYED and status.attempt == 2
    assert status.error is not None and "attempt 1" in status.error.message
    assert status.not_before is not None
    assert status.not_before - status.started_at == pytest.approx(BACKOFF_SECONDS, abs=0.5)
    harness.drain(jobs.app)
    assert handle.status().state is JobState.DELAYED
    harness.advance(BACKOFF_SECONDS + max(harness.time_resolution, 0.2))
    harness.drain(jobs.app)
    assert handle.status().state is JobState.COMPLETED


@requires(Capability.RETRY_BACKOFF)
def test_retry_exception_sets_the_delay(harness: Harness, jobs: Jobs) -> None:
    wait = max(3.0, harness.time_resolution)
    handle = jobs.ask_retry.enqueue(seconds=wait)
    harness.drain(jobs.app)
    status = handle.status()
    assert status.state is JobState.DELAYED
    assert status.not_before - status.started_at == pytest.approx(wait, abs=0.5)
    harness.advance(wait + 0.5)
    harness.drain(jobs.app)
    assert handle.result(timeout=5) == 2


def test_same_job_id_is_one_job(harness: Harness, jobs: Jobs) -> None:
    first = jobs.echo.enqueue(value="a", _job_id="welcome:42")
    second = jobs.echo.enqueue(value="b", _job_id="welcome:42")
    assert first.id == second.id == "welcome:42"
    assert first.created and not second.created
    harness.drain(jobs.app)
    assert [entry for entry in jobs.log if entry[0] == "echo"] == [("echo", "a", 1)]
    third = jobs.echo.enqueue(value="c", _job_id="welcome:42")
    assert not third.created
    assert jobs.app.stats(QUEUE)[JobState.COMPLETED] == 1


@requires(Capability.DELAY)
def test_delayed_job_waits_for_its_time(harness: Harness, jobs: Jobs) -> None:
    delay = max(3.0, harness.time_resolution)
    handle = jobs.echo.enqueue(value="later", _delay=delay)
    assert handle.status().state is JobState.DELAYED
    harness.drain(jobs.app)
    assert handle.status().state is JobState.DELAYED
    assert jobs.app.stats(QUEUE)[JobState.DELAYED] == 1
    harness.advance(delay + 0.5)
    harness.drain(jobs.app)
    assert handle.result(timeout=5)["echo"] == "later"


@requires(Capability.PRIORITY, Capability.PAUSE)
def test_priority_order_then_fifo(harness: Harness, jobs: Jobs) -> None:
    jobs.app.pause(QUEUE)
    for tag, priority in [("low", 10), ("first-urgent", 1), ("normal", 5), ("second-urgent", 1)]:
        jobs.record.enqueue(tag=tag, _priority=priority)
    jobs.app.resume(QUEUE)
    harness.drain(jobs.app)
    assert jobs.log == ["first-urgent", "second-urgent", "normal", "low"]


def test_progress_is_readable_while_running(harness: Harness, jobs: Jobs) -> None:
    handle = jobs.watch_progress.enqueue(value=None)
    harness.drain(jobs.app)
    assert ("progress", 50.0, "active") in jobs.log
    assert handle.status().progress == 100


def test_pydantic_result_is_stored_as_json(harness: Harness, jobs: Jobs) -> None:
    handle = jobs.model_result.enqueue(value=21)
    harness.drain(jobs.app)
    assert handle.result(timeout=5) == {"doubled": 42}


def test_async_handler(harness: Harness, jobs: Jobs) -> None:
    handle = jobs.async_echo.enqueue(value="async")
    harness.drain(jobs.app)
    assert handle.result(timeout=5) == {"echo": "async"}


def test_async_twins(harness: Harness, jobs: Jobs) -> None:
    async def produce() -> str:
        handle = await jobs.echo.aenqueue(value="twin")
        status = await handle.astatus()
        assert status is not None
        return handle.id

    job_id = asyncio.run(produce())
    harness.drain(jobs.app)
    handle = jobs.app.handle(job_id)
    assert handle is not None
    assert asyncio.run(handle.aresult(timeout=5)) == {"echo": "twin", "attempt": 1}


@requires(Capability.RETENTION_COUNT)
def test_retention_keeps_the_last_n(harness: Harness, jobs: Jobs) -> None:
    handles = [jobs.kept.enqueue(value=i) for i in range(4)]
    harness.drain(jobs.app)
    assert [h.status() is not None for h in handles] == [False, False, True, True]
    assert jobs.app.stats("kept")[JobState.COMPLETED] == 2
    failed = [jobs.kept.enqueue(value="fail") for _ in range(3)]
    harness.drain(jobs.app)
    assert [h.status() is not None for h in failed] == [False, True, True]


def test_retention_by_age_frees_the_id(harness: Harness, jobs: Jobs) -> None:
    aged = jobs.aged_echo
    first = aged.enqueue(_job_id="once")
    harness.drain(jobs.app)
    assert first.status().state is JobState.COMPLETED
    harness.advance(11 + harness.time_resolution)
    assert jobs.app.get("once") is None
    again = aged.enqueue(_job_id="once")
    assert again.created


@requires(Capability.PAUSE)
def test_cancel_pending_job(harness: Harness, jobs: Jobs) -> None:
    jobs.app.pause(QUEUE)
    handle = jobs.echo.enqueue(value="never")
    assert handle.cancel() is True
    assert handle.status().state is JobState.CANCELLED
    jobs.app.resume(QUEUE)
    harness.drain(jobs.app)
    assert jobs.log == []
    assert handle.cancel() is False
    with pytest.raises(JobCancelled):
        handle.result(timeout=1)


@requires(Capability.CANCEL_ACTIVE)
def test_cancel_active_job(harness: Harness, jobs: Jobs) -> None:
    handle = jobs.cancel_self.enqueue(value=None)
    harness.drain(jobs.app)
    assert ("cancelled-flag", True) in jobs.log
    status = handle.status()
    assert status.state is JobState.CANCELLED and status.attempt == 1


def test_retry_a_failed_job(harness: Harness, jobs: Jobs) -> None:
    handle = jobs.until_allowed.enqueue(tag="gate")
    harness.drain(jobs.app)
    assert handle.status().state is JobState.FAILED
    jobs.switches["gate"] = True
    assert jobs.app.retry(handle.id) is True
    harness.drain(jobs.app)
    status = handle.status()
    assert status.state is JobState.COMPLETED and status.result == "gate" and status.error is None
    assert jobs.app.retry(handle.id) is False


def test_retry_all_failed_of_a_queue(harness: Harness, jobs: Jobs) -> None:
    handles = [jobs.until_allowed.enqueue(tag=f"t{i}") for i in range(3)]
    harness.drain(jobs.app)
    assert jobs.app.stats(QUEUE)[JobState.FAILED] == 3
    jobs.switches.update({"t0": True, "t1": True, "t2": True})
    assert jobs.app.retry_failed(QUEUE) == 3
    harness.drain(jobs.app)
    assert [h.result(timeout=5) for h in handles] == ["t0", "t1", "t2"]
    assert jobs.app.stats(QUEUE)[JobState.FAILED] == 0


def test_stats_count_each_state(harness: Harness, jobs: Jobs) -> None:
    jobs.echo.enqueue(value=1)
    jobs.echo.enqueue(value=2)
    jobs.until_allowed.enqueue(tag="no")
    harness.drain(jobs.app)
    stats = jobs.app.stats(QUEUE)
    assert stats.queue == QUEUE
    assert stats[JobState.COMPLETED] == 2 and stats[JobState.FAILED] == 1
    assert stats[JobState.WAITING] == 0 and stats[JobState.ACTIVE] == 0
    assert QUEUE in jobs.app.stats()


def test_hooks_fire_in_order(harness: Harness, jobs: Jobs) -> None:
    events: list[tuple[str, str, int]] = []

    def remember(event: JobEvent) -> None:
        events.append((event.kind, event.job_id, event.envelope.attempt))

    for kind in ("job_started", "job_completed", "attempt_failed", "job_failed"):
        jobs.app.on(kind)(remember)  # type: ignore[arg-type]
    ok = jobs.echo.enqueue(value=1)
    bad = jobs.always_fails.enqueue(value=2)
    harness.settle(jobs.app, QUEUE, step=BACKOFF_SECONDS)
    assert [e for e in events if e[1] == ok.id] == [("job_started", ok.id, 1), ("job_completed", ok.id, 1)]
    assert [e for e in events if e[1] == bad.id] == [
        ("job_started", bad.id, 1), ("attempt_failed", bad.id, 1), ("job_started", bad.id, 2), ("job_failed", bad.id, 2),
    ]


def test_a_raising_hook_does_not_break_the_job(harness: Harness, jobs: Jobs) -> None:
    @jobs.app.on_job_completed
    def broken(event: JobEvent) -> None:
        raise RuntimeError("hook bug")

    handle = jobs.echo.enqueue(value="safe")
    harness.drain(jobs.app)
    assert handle.status().state is JobState.COMPLETED


def test_invalid_payload_raises_and_stores_nothing(harness: Harness, jobs: Jobs) -> None:
    with pytest.raises(InvalidPayload, match="flaky.*succeed_on"):
        jobs.flaky.enqueue(succeed_on="three")
    with pytest.raises(InvalidPayload):
        jobs.flaky.enqueue_many([{"succeed_on": 1}, {"succeed_on": "x"}])
    harness.drain(jobs.app)
    assert sum(jobs.app.stats(QUEUE).counts.values()) == 0
    assert jobs.log == []


def test_unknown_job_name_ends_failed(harness: Harness, jobs: Jobs) -> None:
    envelope = Envelope(id="ghost-1", name="no_such_job", queue=QUEUE, max_attempts=3, enqueued_at=harness.clock.now())
    handle = jobs.app.submit([envelope])[0]
    harness.settle(jobs.app, QUEUE, step=BACKOFF_SECONDS)
    status = handle.status()
    assert status.state is JobState.FAILED and status.attempt == 1
    assert "no_such_job" in status.error.message and not status.error.retryable


def test_payload_invalid_at_the_worker_ends_failed(harness: Harness, jobs: Jobs) -> None:
    envelope = Envelope(id="bad-payload", name="flaky", queue=QUEUE, payload={"succeed_on": "x"}, max_attempts=3)
    handle = jobs.app.submit([envelope])[0]
    harness.settle(jobs.app, QUEUE, step=BACKOFF_SECONDS)
    status = handle.status()
    assert status.state is JobState.FAILED and status.attempt == 1
    assert "invalid payload for job 'flaky'" in status.error.message


def test_newer_envelope_version_ends_failed(harness: Harness, jobs: Jobs) -> None:
    envelope = Envelope(v=2, id="from-the-future", name="echo", queue=QUEUE, payload={"value": 1}, max_attempts=3)
    handle = jobs.app.submit([envelope])[0]
    harness.settle(jobs.app, QUEUE, step=BACKOFF_SECONDS)
    status = handle.status()
    assert status.state is JobState.FAILED and "envelope version 2" in status.error.message
    assert jobs.log == []


def test_unserialisable_result_fails_the_attempt(harness: Harness, jobs: Jobs) -> None:
    handle = jobs.bad_result.enqueue(value=None)
    harness.drain(jobs.app)
    status = handle.status()
    assert status.state is JobState.FAILED
    assert status.error.type == "ResultNotSerializable" and "bad_result" in status.error.message


def test_timeouts_fail_the_attempt(harness: Harness, jobs: Jobs) -> None:
    async_handle = jobs.slow_async.enqueue(seconds=5)
    sync_handle = jobs.slow_sync.enqueue(seconds=2)
    harness.drain(jobs.app)
    for handle in (async_handle, sync_handle):
        status = handle.status()
        assert status.state is JobState.FAILED, status
        assert status.error.type == "JobTimeout" and "timeout of 0.3s" in status.error.message


@pytest.fixture
def short_default_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """JOBQUEUE_DEFAULT_TIMEOUT for the app the ``jobs`` fixture makes next (list this fixture before it)."""
    monkeypatch.setenv("JOBQUEUE_DEFAULT_TIMEOUT", "0.3")


def test_jobs_without_a_timeout_get_the_default_one(short_default_timeout: None, harness: Harness, jobs: Jobs) -> None:
    import time

    app = jobs.app
    assert app.settings.default_timeout == 0.3

    @app.job(queue=QUEUE, attempts=1)
    def dawdle(payload: Nap) -> str:
        end = time.monotonic() + payload.seconds
        while time.monotonic() < end:
            time.sleep(0.01)
        return "finished"

    @app.job(queue=QUEUE, attempts=1)
    async def adawdle(payload: Nap) -> str:
        await asyncio.sleep(payload.seconds)
        return "finished"

    slow = [dawdle.enqueue(seconds=5), adawdle.enqueue(seconds=5)]
    quick = [dawdle.enqueue(seconds=0.01), adawdle.enqueue(seconds=0.01)]
    own = jobs.slow_sync.enqueue(seconds=0.5)  # its own timeout (0.3 s) still rules, with its own words
    harness.drain(app)
    for handle in slow:
        status = handle.status()
        assert status.state is JobState.FAILED, status
        assert status.error.type == "JobTimeout" and "default timeout of 0.3s (JOBQUEUE_DEFAULT_TIMEOUT)" in status.error.message
    assert [h.result(timeout=5) for h in quick] == ["finished", "finished"]
    assert "its thread was abandoned" in own.status().error.message


def test_enqueue_many(harness: Harness, jobs: Jobs) -> None:
    handles = jobs.echo.enqueue_many([{"value": i} for i in range(5)] + [{"value": "x", "_job_id": "bulk-x"}])
    assert len({h.id for h in handles}) == 6 and handles[-1].id == "bulk-x"
    harness.drain(jobs.app)
    assert [h.result(timeout=5)["echo"] for h in handles] == [0, 1, 2, 3, 4, "x"]


def test_clean_removes_finished_jobs(harness: Harness, jobs: Jobs) -> None:
    done = [jobs.echo.enqueue(value=i) for i in range(3)]
    harness.drain(jobs.app)
    assert jobs.app.clean(QUEUE, JobState.COMPLETED, older_than="1h") == 0
    assert jobs.app.clean(QUEUE, JobState.COMPLETED) == 3
    assert all(h.status() is None for h in done)
    assert jobs.app.stats(QUEUE)[JobState.COMPLETED] == 0


@requires(Capability.LIST_JOBS)
def test_list_jobs_in_pages(harness: Harness, jobs: Jobs) -> None:
    ids = [jobs.echo.enqueue(value=i).id for i in range(5)]
    harness.drain(jobs.app)
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = jobs.app.list_jobs(QUEUE, "completed", limit=2, cursor=cursor)
        seen.extend(job.id for job in page.jobs)
        assert len(page.jobs) <= 2
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 5


@requires(Capability.RATE_LIMIT)
def test_rate_limit_spreads_starts(harness: Harness, jobs: Jobs) -> None:
    for i in range(5):
        jobs.limited.enqueue(tag=f"r{i}")
    harness.drain(jobs.app)
    assert len(jobs.log) == 2
    harness.advance(3.1)
    harness.drain(jobs.app)
    assert len(jobs.log) == 4
    harness.advance(3.1)
    harness.drain(jobs.app)
    assert jobs.log == ["r0", "r1", "r2", "r3", "r4"]


def test_health_is_healthy(harness: Harness, jobs: Jobs) -> None:
    health = jobs.app.health()
    assert health.status == "healthy" and health.broker_reachable
    assert health.backend == harness.name.split("-")[0]
