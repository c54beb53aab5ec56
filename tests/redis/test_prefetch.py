"""Claiming ahead (``prefetch``): a worker whose jobs are quick claims four times its free slots per call, never more
running at once than its concurrency (``def`` jobs and ``async def`` ones alike), and runs quick ``def`` jobs on two
threads, one of them claiming while the other runs the last jobs in line; slow jobs get only the free slots.
And the claim's shortcuts when it got all it asked for."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from jobqueue_redis import RedisBackend, Worker
from pydantic import BaseModel

from jobqueue import JobQueue, JobState
from jobqueue.errors import ConfigurationError
from tests.redis.cycles import record_cycles
from tests.redis_servers import RedisServer


class Nap(BaseModel):
    seconds: float = 0.0


def _app(url: str, **options: Any) -> JobQueue:
    made = JobQueue(backend=RedisBackend(url, prefix=f"jqp-{uuid.uuid4().hex[:8]}", **options))
    made.queue("p")
    return made


@pytest.fixture
def app(redis_server: RedisServer) -> Iterator[JobQueue]:
    made = _app(redis_server.url)
    yield made
    made.close()


class Claims:
    """Records the count each cycle call asks to claim, and the most jobs running at once."""

    def __init__(self, backend: RedisBackend) -> None:
        self.calls = record_cycles(backend)
        self.running = 0
        self.most = 0
        self._lock = threading.Lock()

    @property
    def asked(self) -> list[int]:
        return [count for _, count in self.calls]

    def enter(self) -> None:
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)

    def leave(self) -> None:
        with self._lock:
            self.running -= 1


def _drain(app: JobQueue, count: int, seconds: float, concurrency: int = 5, *, is_async: bool = False) -> Claims:
    backend = app.backend
    assert isinstance(backend, RedisBackend)
    claims = Claims(backend)

    if is_async:

        @app.job(name="nap", queue="p")
        async def nap(payload: Nap) -> None:
            claims.enter()
            try:
                await asyncio.sleep(payload.seconds)
            finally:
                claims.leave()

    else:

        @app.job(name="nap", queue="p")
        def nap(payload: Nap) -> None:
            claims.enter()
            try:
                time.sleep(payload.seconds)
            finally:
                claims.leave()

    handles = nap.enqueue_many([{"seconds": seconds}] * count)
    assert Worker(backend, ["p"], concurrency=concurrency).run_burst() == count
    assert {h.status().state for h in handles} == {JobState.COMPLETED}
    return claims


def test_quick_jobs_are_claimed_ahead_but_run_no_more_at_once_than_the_concurrency(app: JobQueue) -> None:
    claims = _drain(app, 300, 0.0)
    # the default prefetch (3) claims three more batches' worth while jobs are quick, less the last job that the other
    # thread running the line may still run (see test_quick_jobs_claimed_ahead_run_on_two_threads_at_once)
    assert max(claims.asked) in (19, 20)
    assert sum(asked >= 19 for asked in claims.asked) >= 5
    assert claims.most <= 5


def test_no_claim_ahead_with_prefetch_zero(redis_server: RedisServer) -> None:
    app = _app(redis_server.url, prefetch=0)
    try:
        claims = _drain(app, 100, 0.0)
        assert max(claims.asked) == 5
    finally:
        app.close()


def test_slow_jobs_get_only_the_free_slots(app: JobQueue) -> None:
    claims = _drain(app, 40, 0.004)  # 4 ms each: past a millisecond per job
    assert max(claims.asked) <= 5
    assert claims.most <= 5


def test_quick_async_jobs_are_claimed_ahead_but_run_no_more_at_once_than_the_concurrency(app: JobQueue) -> None:
    """Held in line, an async job starts when one ends (on the event loop, without a claim in between)."""
    claims = _drain(app, 300, 0.0, is_async=True)
    assert max(claims.asked) == 20, "the default prefetch (3) claims three more batches' worth while jobs are quick"
    assert 1 <= claims.most <= 5


def test_slow_async_jobs_get_only_the_free_slots(app: JobQueue) -> None:
    claims = _drain(app, 40, 0.02, is_async=True)
    assert max(claims.asked) <= 5
    assert claims.most <= 5


@pytest.mark.parametrize("value", ["-1", "nan", "101"])
def test_prefetch_out_of_range_is_refused_by_name(value: str) -> None:
    from jobqueue_redis.settings import RedisSettings

    with pytest.raises(ConfigurationError, match="(?i)prefetch"):
        RedisSettings.from_environ({"JOBQUEUE_REDIS_PREFETCH": value})


def test_a_claim_that_got_all_it_asked_for_skips_the_hint_and_keeps_the_wake_ups(app: JobQueue) -> None:
    backend = app.backend
    assert isinstance(backend, RedisBackend)
    job = app.job(name="idle", queue="p")(lambda payload: None)
    job.enqueue_many([{}] * 3)
    later = job.enqueue(_delay=60)
    signal = backend.keys("p").signal

    _, full, hint = backend.cycle("p", [], 2, "t:1")
    assert len(full) == 2 and hint is None, "a full claim: the caller comes back soon, no hint needed"
    assert backend.client.llen(signal) > 0, "a full claim leaves the wake-ups (work is likely still waiting)"

    _, rest, hint = backend.cycle("p", [], 5, "t:2")
    assert len(rest) == 1
    # when to look again: the first lease to run out (the claimed jobs'), before the delayed job is due
    assert hint is not None and time.time() < hint <= (later.status().not_before or 0), "a short claim says when to look again"
    assert backend.client.llen(signal) == 0, "a short claim that left nothing waiting drops the stale wake-ups"


class _Waits(threading.Event):
    """An Event that records the timeouts it is waited on with (the watcher's checks)."""

    def __init__(self) -> None:
        super().__init__()
        self.timeouts: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.timeouts.append(timeout)
        return super().wait(timeout)


def _watch_timeouts(app: JobQueue, count: int, seconds: float) -> list[float | None]:
    from jobqueue_redis import worker as worker_module

    backend = app.backend
    assert isinstance(backend, RedisBackend)

    @app.job(name="nap", queue="p")
    def nap(payload: Nap) -> None:
        time.sleep(payload.seconds)

    nap.enqueue_many([{"seconds": seconds}] * count)
    worker = Worker(backend, ["p"], concurrency=5)
    waits = worker._poke = _Waits()
    assert worker_module.WATCH_AHEAD > worker_module.WATCH
    assert worker.run_burst() == count
    return waits.timeouts


def test_while_jobs_are_quick_and_claimed_ahead_the_watcher_checks_less_often(app: JobQueue) -> None:
    from jobqueue_redis.worker import WATCH, WATCH_AHEAD

    quick = _watch_timeouts(app, 2000, 0.0)
    # each check takes the GIL from the thread running the jobs: while claiming ahead it looks every WATCH_AHEAD
    assert quick.count(WATCH_AHEAD) >= 1 and quick.count(WATCH_AHEAD) >= quick.count(WATCH), quick


def test_slow_jobs_are_watched_every_two_milliseconds(app: JobQueue) -> None:
    from jobqueue_redis.worker import WATCH, WATCH_AHEAD

    slow = _watch_timeouts(app, 20, 0.01)  # past a millisecond per job: no claim ahead
    assert slow.count(WATCH) >= 5 and WATCH_AHEAD not in slow, slow


class Served:
    """What a serving worker did with a list of naps: how many jobs started while another ran, how many slow ones (a nap
    of 10 ms or more) ran as each of them started, the claims, and how many jobs waited in line as each claim went out."""

    def __init__(self, claims: Claims) -> None:
        self.claims = claims
        self.overlapped = 0
        self.slow = 0  # slow jobs running now
        self.slow_at_start: list[int] = []  # slow jobs running as each slow one started (itself included)
        self.line_at_claim: list[int] = []


def _serve(app: JobQueue, naps: list[float]) -> Served:
    """Run a job per nap (seconds) through a worker serving at concurrency 5 (not in burst mode, whose idle threads
    look for work every 50 ms)."""
    backend = app.backend
    assert isinstance(backend, RedisBackend)
    served = Served(Claims(backend))
    claims = served.claims
    ended = 0
    worker = Worker(backend, ["p"], concurrency=5)
    cycle = backend.cycle

    def watched(queue: str, finished: Any, count: int, prefix: str) -> Any:
        if count:
            served.line_at_claim.append(len(worker._line))
        return cycle(queue, finished, count, prefix)

    backend.cycle = watched  # type: ignore[method-assign,assignment]

    @app.job(name="nap", queue="p")
    def nap(payload: Nap) -> None:
        nonlocal ended
        slow = payload.seconds >= 0.01
        with claims._lock:
            served.overlapped += claims.running > 0
            if slow:
                served.slow += 1
                served.slow_at_start.append(served.slow)
        claims.enter()
        try:
            time.sleep(payload.seconds)
        finally:
            claims.leave()
            with claims._lock:
                ended += 1
                served.slow -= slow

    nap.enqueue_many([{"seconds": seconds} for seconds in naps])
    thread = threading.Thread(target=worker.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while ended < len(naps) and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop()
    thread.join(10)
    assert ended == len(naps)
    return served


def test_quick_jobs_claimed_ahead_run_on_two_threads_at_once(
    app: JobQueue, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One thread's Python runs while the other's job waits (here in a sleep that lets go of the GIL, as a Redis round
    trip does). With one thread running the line, jobs this quick start one after another."""
    from jobqueue_redis import worker as worker_module

    assert worker_module.QUICK_THREADS == 2
    served = _serve(app, [0.0002] * 400)
    assert max(served.claims.asked) in (19, 20), "the jobs count as quick: claimed ahead"
    assert served.overlapped > 200, f"{served.overlapped} of 400 jobs started while another one ran"
    assert served.claims.most <= 5

    monkeypatch.setattr(worker_module, "QUICK_THREADS", 1)
    alone = _app(redis_server.url)
    try:
        overlapped = _serve(alone, [0.0002] * 400).overlapped
    finally:
        alone.close()
    assert overlapped < 100, f"{overlapped} of 400 jobs started while another one ran"


def test_a_claim_counts_as_quick_only_on_quick_outcomes_of_its_own_jobs(app: JobQueue) -> None:
    """The other thread's last job may still run as the line runs dry, but a job that merely started says nothing of
    its speed: no outcomes, or a slow one, and the next claim takes only the free slots."""
    from jobqueue.envelope import Envelope
    from jobqueue.runner import Outcome

    backend = app.backend
    assert isinstance(backend, RedisBackend)
    worker = Worker(backend, ["p"], concurrency=5)
    envelope = Envelope(id="j", name="nap", queue="p")

    def ended(seconds: float) -> tuple[Envelope, str, Outcome]:
        return envelope, "token", Outcome(JobState.COMPLETED, duration=seconds)

    worker._claimed, worker._claimed_at, worker._running = 4, time.monotonic(), 1
    assert worker._quick([ended(0.0001)] * 3), "three ended quick, the fourth runs in the other thread"
    assert not worker._quick([ended(0.0001)] * 2), "one of the claim's jobs is unaccounted for"
    assert not worker._quick([ended(0.0001), ended(0.0001), ended(0.004)]), "one ran slow"
    worker._claimed = 10
    assert worker._quick([*[ended(0.0001)] * 8, ended(0.004)]), "one of nine waited behind the claim (the other thread's)"
    assert not worker._quick([*[ended(0.0001)] * 7, ended(0.002), ended(0.004)]), "two of nine ran slow"
    assert not worker._quick([*[ended(0.0001)] * 8, ended(0.02)]), "one of nine ran slow"
    worker._claimed = 1
    assert not worker._quick([]), "the one job claimed has only started"
    worker._running = 2
    assert not worker._quick([ended(0.0001)] * 4), "two jobs still run"


def test_the_next_claim_goes_out_while_the_other_thread_runs_the_last_jobs_in_line(
    app: JobQueue, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With two threads running quick jobs from the line, the one that finds EARLY_LINE jobs or fewer left records and
    claims while the other runs them, instead of both waiting for the claim once the line is empty."""
    from jobqueue_redis import worker as worker_module

    served = _serve(app, [0.0002] * 400)
    early = [n for n in served.line_at_claim if 0 < n <= worker_module.EARLY_LINE]
    assert len(early) >= 5, f"claims sent with jobs still in line: {served.line_at_claim}"
    assert max(served.claims.asked) >= 15, "the jobs still count as quick: claimed ahead"
    assert served.claims.most <= 5

    monkeypatch.setattr(worker_module, "EARLY_LINE", 0)
    dry = _app(redis_server.url)
    try:
        served = _serve(dry, [0.0002] * 400)
    finally:
        dry.close()
    assert not [n for n in served.line_at_claim if n > 0], f"claims sent with jobs still in line: {served.line_at_claim}"


def test_a_third_thread_neither_takes_quick_jobs_from_the_line_nor_claims(app: JobQueue) -> None:
    from jobqueue.envelope import Envelope

    backend = app.backend
    assert isinstance(backend, RedisBackend)
    worker = Worker(backend, ["p"], concurrency=5)
    item = (Envelope(id="j", name="nap", queue="p"), "token")
    worker._line.append(item)
    worker._ahead_now, worker._running = True, 2
    assert worker._held_back() and worker._take() is None, "two threads run the line already"
    worker._running = 1
    assert not worker._held_back() and worker._take() == item
    worker._line.append(item)
    worker._ahead_now, worker._running = False, 2
    assert not worker._held_back() and worker._take() == item, "jobs not claimed ahead: every free thread takes one"


def test_jobs_in_line_that_turn_slow_get_every_slot(redis_server: RedisServer) -> None:
    """Quick jobs claimed ahead run on two threads; once the ones in line turn slow, no job starts or ends for a while,
    and the watcher lets the other threads take from the line too. Three times: a thread woken to take the watch that
    ran from the line instead used to leave no thread watching, in about a third of the runs (stuck at three slots)."""
    for _ in range(3):
        app = _app(redis_server.url)
        try:
            served = _serve(app, [0.0] * 300 + [0.05] * 30)
        finally:
            app.close()
        assert max(served.slow_at_start[:10]) >= 4, f"slow jobs running as each slow one started: {served.slow_at_start}"
